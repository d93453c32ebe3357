//! `runbook plan NAME [--set k=v]`: the step graph in execution order, rendered; no host access.

use std::fmt::Write as _;
use std::io::Write;

use serde_json::Value;

use crate::cli::Format;
use crate::commands::Ctx;
use crate::exit;
use crate::plan::{ParamSource, Plan, PlannedAction};

/// Run the verb.
pub fn run(ctx: &Ctx, name: &str, sets: &[String]) -> u8 {
    let format = match ctx.format_in("plan", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let (cat, i) = match ctx.runbook(name) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let plan = match Plan::build(&cat.runbooks[i], cat.policy.as_ref(), sets) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let text = if format == Format::Json {
        serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n"
    } else {
        human(&plan)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    exit::OK
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<unset>".into(),
        other => other.to_string(),
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", inline(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        other => scalar(other),
    }
}

/// The plan for people.
#[must_use]
#[expect(clippy::too_many_lines, reason = "one section after another")]
pub fn human(plan: &Plan) -> String {
    let mut o = String::new();
    let service = plan
        .service
        .as_deref()
        .map(|s| format!(", {s}"))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "plan: {} — {} [{}{service}]",
        plan.runbook, plan.title, plan.severity
    );
    if let Some(src) = &plan.source {
        let _ = writeln!(o, "source: {src}");
    }
    if !plan.params.is_empty() {
        let _ = writeln!(o, "\nparams:");
        for p in &plan.params {
            let from = match p.source {
                ParamSource::Default => "default",
                ParamSource::Set => "--set",
                ParamSource::Alert => "from the alert at run time",
                ParamSource::Unset => "unset",
            };
            let _ = writeln!(o, "  {} = {}  ({from})", p.name, scalar(&p.value));
        }
    }
    if !plan.symptoms.is_empty() {
        let _ = writeln!(o, "\nsymptoms:");
        for s in &plan.symptoms {
            let when = s
                .when
                .as_deref()
                .map(|w| format!("  [when {w}]"))
                .unwrap_or_default();
            let _ = writeln!(o, "  - {}: {}{when}", s.id, s.text);
        }
    }
    let _ = writeln!(o, "\n1. checks (read-only; each wave runs concurrently)");
    for (w, wave) in plan.waves.iter().enumerate() {
        let _ = writeln!(
            o,
            "  wave {} ({} check{})",
            w + 1,
            wave.len(),
            if wave.len() == 1 { "" } else { "s" }
        );
        for c in wave {
            let rt = if c.at_run_time {
                "  (rendered at run time)"
            } else {
                ""
            };
            let _ = writeln!(o, "    {} [{}] {}{rt}", c.id, c.probe, inline(&c.with));
            if let Some(w) = &c.when {
                let _ = writeln!(o, "        when:   {w}");
            }
            if let Some(e) = &c.expect {
                let _ = writeln!(o, "        expect: {e}");
            }
            if let Some(s) = &c.sample {
                let _ = writeln!(o, "        sample: {s}");
            }
            let _ = writeln!(o, "        timeout: {}", c.timeout);
            if let Some(g) = &c.guidance {
                let _ = writeln!(o, "        guidance: {g}");
            }
        }
    }
    let _ = writeln!(
        o,
        "\n2. causes (evaluated in order; a matched cause runs its remedy, then verify)"
    );
    for (n, c) in plan.causes.iter().enumerate() {
        let _ = writeln!(o, "  {}. {} — {}", n + 1, c.id, c.title);
        let _ = writeln!(o, "       when: {}", c.when);
        for (i, a) in c.remedy.iter().enumerate() {
            action(&mut o, a, &format!("       remedy {}: ", i + 1));
        }
        if !c.verify.is_empty() {
            let _ = writeln!(o, "       verify: {}", c.verify.join(", "));
        }
        if let Some(g) = &c.guidance {
            let _ = writeln!(o, "       guidance: {g}");
        }
        if let Some(e) = &c.escalate {
            let _ = writeln!(o, "       escalate to: {e}");
        } else if c.remedy.iter().all(|a| !a.mutating) {
            let _ = writeln!(o, "       no automatic fix: escalate");
        }
    }
    if let Some(e) = &plan.escalation {
        let _ = writeln!(o, "\n3. escalation");
        if let Some(l) = &e.ladder {
            let _ = writeln!(o, "  ladder: {l}");
        }
        if let Some(a) = &e.after_action_unresolved {
            let _ = writeln!(
                o,
                "  next level when still unresolved {a} after remediation"
            );
        }
        for l in &e.levels {
            let when = if l.after_unresolved == "0s" {
                "immediately".to_owned()
            } else {
                format!("after {} unresolved", l.after_unresolved)
            };
            let _ = writeln!(o, "  {} {} — {when}", l.id, l.name);
        }
    }
    o
}

fn action(o: &mut String, a: &PlannedAction, prefix: &str) {
    let mut tags = Vec::new();
    if a.mutating {
        tags.push("mutating: needs --yes".to_owned());
    }
    if let Some(l) = &a.limit {
        tags.push(format!("limit {l}"));
    }
    if let Some(r) = &a.retry {
        tags.push(format!("retry {r}"));
    }
    if let Some(r) = &a.revert_after {
        tags.push(format!("reverted after {r}"));
    }
    if a.at_run_time {
        tags.push("rendered at run time".into());
    }
    let tags = if tags.is_empty() {
        String::new()
    } else {
        format!("  [{}]", tags.join(", "))
    };
    let _ = writeln!(o, "{prefix}{} ({}): {}{tags}", a.id, a.kind, a.summary);
    let pad = " ".repeat(prefix.len());
    if let Some(p) = &a.approve {
        let _ = writeln!(o, "{pad}approval: {p}");
    }
    if !a.verify.is_empty() {
        let _ = writeln!(o, "{pad}verify: {}", a.verify.join(", "));
    }
    for (i, rb) in a.rollback.iter().enumerate() {
        action(o, rb, &format!("{pad}rollback {}: ", i + 1));
    }
    if let Some(g) = &a.guidance {
        let _ = writeln!(o, "{pad}guidance: {g}");
    }
}
