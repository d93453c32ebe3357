//! `runbook demo [SCENARIO] [--list]`: with no setup, start the Aurora simulator with the
//! scenario's fault in a new temporary directory, triage, run the matching runbook with
//! remediation allowed (each step shown as it happens), then show what changed on the
//! simulator, the escalation state and where the audit trail is.
//!
//! The runbooks are the seed runbooks built into the binary (written into the directory, the
//! policy's notification channels pointed at the simulator), so the demo runs from anywhere.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::commands::Ctx;
use crate::commands::triage::{print_human, sets_for, triage_all};
use crate::exit;
use crate::sim::scenarios::{SCENARIOS, Scenario, scenario, write_runbooks};
use crate::sim::{Sim, SimConfig};

/// Sampling intervals for the demo: the runbooks' defaults (10–30 s) shortened.
const FAST: &[&str] = &[
    "growth_every=1s",
    "sustain_every=1s",
    "first_event_within=3s",
];

/// Print the scenarios.
fn list(out: &mut impl Write) {
    let _ = writeln!(
        out,
        "scenarios (runbook demo NAME; default {}):",
        SCENARIOS[0].name
    );
    for s in SCENARIOS {
        let faults: Vec<&str> = s.faults.iter().map(|f| f.name()).collect();
        let faults = if faults.is_empty() {
            "no fault".to_owned()
        } else {
            format!("fault {}", faults.join(" + "))
        };
        let _ = writeln!(
            out,
            "  {:<22} {:<24} {faults}: {}",
            s.name, s.runbook, s.about
        );
    }
}

/// Run the verb.
pub fn run(ctx: &Ctx, name: Option<&str>, list_only: bool) -> u8 {
    let mut out = std::io::stdout();
    if list_only {
        list(&mut out);
        return exit::OK;
    }
    let name = name.unwrap_or(SCENARIOS[0].name);
    let Some(sc) = scenario(name) else {
        eprintln!("error: no demo scenario `{name}`");
        list(&mut std::io::stderr());
        return exit::INVALID;
    };
    let dir = match super::sim::temp_dir("runbook-demo") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot create the demo's directory: {e}");
            return exit::FAULT;
        }
    };
    // The simulator lives on its own runtime, so the run below can use the CLI's own.
    let Ok(sim_rt) = super::common::runtime() else {
        return exit::FAULT;
    };
    let config = match SimConfig::new(&dir.join("aurora")) {
        Ok(mut c) => {
            c.faults = sc.faults.to_vec();
            c
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
    };
    let sim = match sim_rt.block_on(Sim::start(config)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the simulator could not start: {e}");
            return exit::FAULT;
        }
    };
    let code = demo(ctx, sc, &sim, &dir, &mut out);
    sim_rt.block_on(async move { sim.stop() });
    code
}

/// Section 1: triage every built-in runbook against the simulator; the scenario's runbook's
/// place among the matching ones (`(place, of)`), and the catalog.
fn triage_section(
    out: &mut impl Write,
    sc: &Scenario,
    demo_ctx: &Ctx,
    params: &[String],
) -> Result<(Option<(usize, usize)>, crate::runbook::catalog::Catalog), u8> {
    let cat = demo_ctx.catalog();
    if !cat.diagnostics.is_empty() {
        for d in &cat.diagnostics {
            eprintln!("error: built-in runbook: {}", d.message);
        }
        return Err(exit::FAULT);
    }
    let mut with_params = Vec::new();
    for rb in &cat.runbooks {
        match crate::plan::resolve_params(rb, &sets_for(rb, params)) {
            Ok(p) => with_params.push((rb, p)),
            Err(e) => {
                eprintln!("error: {}: {e}", rb.name);
                return Err(exit::FAULT);
            }
        }
    }
    let rt = super::common::runtime()?;
    let started = Instant::now();
    let entries = rt.block_on(triage_all(with_params)).map_err(|e| {
        eprintln!("error: triage: {e}");
        exit::FAULT
    })?;
    print_human(out, &entries, started.elapsed().as_millis());
    let matching: Vec<&str> = entries
        .iter()
        .filter(|e| e.matches())
        .map(|e| e.runbook.as_str())
        .collect();
    let rank = matching
        .iter()
        .position(|r| *r == sc.runbook)
        .map(|i| (i + 1, matching.len()));
    Ok((rank, cat))
}

fn demo(ctx: &Ctx, sc: &Scenario, sim: &Sim, dir: &Path, out: &mut impl Write) -> u8 {
    let runbooks = dir.join("runbooks");
    if let Err(e) = write_runbooks(&runbooks, &sim.control_url()) {
        eprintln!("error: cannot write the runbooks: {e}");
        return exit::FAULT;
    }
    let demo_ctx = Ctx {
        dir: runbooks.clone(),
        db: dir.join("audit.db"),
        format: None,
        color: ctx.color,
    };
    let faults: Vec<&str> = sc.faults.iter().map(|f| f.name()).collect();
    let _ = writeln!(out, "runbook demo {}: {}", sc.name, sc.about);
    let _ = writeln!(
        out,
        "simulator: Aurora on 127.0.0.1 (nginx, live feed, runner, chrony, Prometheus, exchange), {}",
        if faults.is_empty() {
            "no fault".to_owned()
        } else {
            format!("fault: {}", faults.join(" + "))
        }
    );
    for f in sc.faults {
        let _ = writeln!(out, "  {}: {}", f.name(), f.describe());
    }
    let _ = writeln!(out, "  host files: {}", sim.layout().dir.display());
    let params: Vec<String> = sim
        .params()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(FAST.iter().map(|s| (*s).to_owned()))
        .collect();

    let _ = writeln!(
        out,
        "\n== 1. triage: which runbook fits what the host shows?"
    );
    let (rank, cat) = match triage_section(out, sc, &demo_ctx, &params) {
        Ok(x) => x,
        Err(code) => return code,
    };

    let answers: Vec<String> = sc
        .answers
        .iter()
        .map(|(id, yes)| format!("{id}={}", if *yes { "yes" } else { "no" }))
        .collect();
    let shown: Vec<String> = answers.iter().map(|a| format!(" --answer {a}")).collect();
    let _ = writeln!(
        out,
        "\n== 2. runbook run {} --yes{}   (remediation allowed)",
        sc.runbook,
        shown.concat()
    );
    let _ = match rank {
        Some((1, _)) => writeln!(out, "triage's first pick, the scenario's runbook"),
        Some((n, of)) => writeln!(
            out,
            "the scenario's runbook, triage's pick {n} of {of}: the same outage seen from another side"
        ),
        None => writeln!(
            out,
            "the scenario's runbook (triage saw none of its symptoms: it has no observable one)"
        ),
    };
    let _ = out.flush();
    let Some(rb) = cat.runbooks.iter().find(|r| r.name == sc.runbook) else {
        eprintln!("error: no built-in runbook `{}`", sc.runbook);
        return exit::FAULT;
    };
    let sets = sets_for(rb, &params);
    let code = super::run::run(&demo_ctx, sc.runbook, &sets, false, true, "10s", &answers);
    let _ = std::io::stdout().flush();

    after_section(out, sim, &demo_ctx);
    let _ = writeln!(out, "exit {code}");
    code
}

/// Section 3: what the run changed on the simulator, the escalation state, the audit trail.
fn after_section(out: &mut impl Write, sim: &Sim, demo_ctx: &Ctx) {
    let _ = writeln!(out, "\n== 3. what changed");
    let now: Vec<&str> = sim.faults().iter().map(|f| f.name()).collect();
    let _ = writeln!(
        out,
        "simulator faults now: {}",
        if now.is_empty() {
            "none".to_owned()
        } else {
            now.join(" + ")
        }
    );
    let calls: Vec<String> = sim
        .calls()
        .into_iter()
        .filter(|c| !c.starts_with("fault on"))
        .collect();
    let _ = writeln!(out, "done to the simulator:");
    if calls.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for c in &calls {
        let _ = writeln!(out, "  {c}");
    }
    let _ = writeln!(out, "escalation:");
    let _ = out.flush();
    let _ = super::incidents::run(demo_ctx, None);
    let db = demo_ctx.db.display();
    let _ = writeln!(out, "\naudit trail: {db}");
    let _ = writeln!(
        out,
        "  runbook --db {db} history     (then: show RUN, audit verify)"
    );
    // The post-mortem draft of the run, as a page to open.
    let last = crate::audit::AuditStore::open(&demo_ctx.db)
        .and_then(|s| s.history(None, 1))
        .ok()
        .and_then(|runs| runs.into_iter().next());
    if let Some(run) = last {
        let html = demo_ctx.db.with_file_name("report.html");
        let report_ctx = Ctx {
            dir: demo_ctx.dir.clone(),
            db: demo_ctx.db.clone(),
            format: Some(crate::cli::Format::Html),
            color: demo_ctx.color,
        };
        let _ = out.flush();
        let code = super::report::run(
            &report_ctx,
            crate::cli::Command::Report {
                run: Some(run.id.clone()),
                incident: None,
                templates: None,
                output: Some(html.clone()),
            },
        );
        if code == exit::OK {
            let _ = writeln!(out, "post-mortem draft: {}", html.display());
            let _ = writeln!(
                out,
                "  runbook --db {db} report {}   (markdown; --format html for the page)",
                run.id
            );
        }
    }
}
