//! Fuzz entry points: one function per `cargo fuzz` target (`fuzz/fuzz_targets/*.rs`), each
//! taking arbitrary bytes and driving the same code path the binary runs on that input.
//!
//! They live in the library, not in the fuzz crate, so that `tests/fuzz_regressions.rs` can
//! replay the seed corpora (`fixtures/fuzz/<target>/`) and every crash found
//! (`fixtures/fuzz/regressions/<target>/`) on the stable toolchain in the normal test suite.
//!
//! None of these may panic on any input: a parser returns an error instead. Where a cheap
//! invariant holds whatever the input (a strict JSON validator never rejects what `serde_json`
//! accepts; a file read in two steps counts the same lines as in one), it is asserted, so the
//! fuzzer also finds wrong answers, not only crashes. Each function returns whether the input
//! was accepted as valid, so the regression test can tell a good seed from a bad one.
//!
//! Targets: [`runbook_loader`], [`template`], [`jsonl_scanner`], [`prometheus_text`],
//! [`alert_payload`]. The audit trail is exported (`runbook audit export`) but never read
//! back, so there is no export reader to fuzz.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::plan::Plan;
use crate::probes::json_strict::Validator;
use crate::probes::jsonl::{self, Opts};
use crate::probes::{TailPosition, jq, prometheus};
use crate::runbook::catalog::Catalog;
use crate::runbook::compile::is_runbook_name;
use crate::runbook::load::MAX_FILE_BYTES;
use crate::runbook::value::is_template;
use crate::runbook::{Runbook, expr};
use crate::serve::payload::{
    self, Alert, Delivery, Labels, Limits, ParamValue, Source, Status, dedup_key,
};

/// The names of the targets, as `fuzz/fuzz_targets/<name>.rs` and `fixtures/fuzz/<name>/`.
pub const TARGETS: &[&str] = &[
    "runbook_loader",
    "template",
    "jsonl_scanner",
    "prometheus_text",
    "alert_payload",
];

/// Run the target called `name` on `data`; `None` for an unknown name.
#[must_use]
pub fn run(name: &str, data: &[u8]) -> Option<bool> {
    Some(match name {
        "runbook_loader" => runbook_loader(data),
        "template" => template(data),
        "jsonl_scanner" => jsonl_scanner(data),
        "prometheus_text" => prometheus_text(data),
        "alert_payload" => alert_payload(data),
        _ => return None,
    })
}

/// A scratch directory of this process and thread (the test harness runs targets on several
/// threads at once), removed again by [`Scratch::drop`].
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Option<Scratch> {
        let thread = format!("{:?}", std::thread::current().id());
        let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
        let dir =
            std::env::temp_dir().join(format!("runbook-fuzz-{}-{thread}", std::process::id()));
        // A directory left by a killed run of a process with the same id.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        Some(Scratch(dir))
    }

    fn write(&self, name: &str, data: &[u8]) -> Option<PathBuf> {
        let path = self.0.join(name);
        std::fs::write(&path, data).ok()?;
        Some(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The repository's `runbooks/` directory (its `policy.yaml` and runbooks).
fn runbooks_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks"))
}

/// The repository's runbooks, compiled once: the targets of hostile alerts.
fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::load(&[runbooks_dir().to_path_buf()], runbooks_dir()))
}

// ---------------------------------------------------------------------------------------------
// runbook_loader
// ---------------------------------------------------------------------------------------------

/// `runbook validate FILE` and `runbook plan`: the bytes as a runbook file beside no policy
/// (the repository's `policy.yaml` is the fallback, as `--dir runbooks` makes it), loaded and
/// compiled by [`Catalog::load`], every diagnostic rendered the three ways `validate` renders
/// them, then a plan built and serialized for each runbook that compiled. The bytes are also
/// loaded as a `policy.yaml`. Accepted: the file compiled with no error.
#[must_use]
pub fn runbook_loader(data: &[u8]) -> bool {
    // `read_source` refuses a larger file before reading it; keep the fuzzer's inputs to what
    // reaches the parser.
    if data.len() as u64 > MAX_FILE_BYTES {
        return false;
    }
    let Some(scratch) = Scratch::new() else {
        return false;
    };
    // The file is named after its `runbook:` so the name check passes and compiling goes on
    // to the later passes.
    let name = std::str::from_utf8(data)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("runbook:"))
                .map(|n| n.trim().trim_matches(['"', '\'']).to_owned())
        })
        .filter(|n| is_runbook_name(n))
        .unwrap_or_else(|| "fuzz".to_owned());
    let Some(path) = scratch.write(&format!("{name}.yaml"), data) else {
        return false;
    };
    let cat = Catalog::load(&[path], runbooks_dir());
    for d in &cat.diagnostics {
        let _ = d.render(false);
        let _ = d.render(true);
        let _ = d.render_github();
        let _ = d.to_json();
    }
    for rb in &cat.runbooks {
        if let Ok(plan) = Plan::build(rb, cat.policy.as_ref(), &[]) {
            let _ = serde_json::to_string(&plan);
        }
    }
    let accepted = !cat.has_errors() && cat.runbooks.len() == 1;

    if let Some(path) = scratch.write(crate::runbook::catalog::POLICY_FILE, data)
        && let Ok(src) = crate::runbook::load::read_source(&path)
    {
        match crate::runbook::Policy::load(&src) {
            Ok(policy) => {
                for rb in &catalog().runbooks {
                    let _ = policy.ladder_levels(rb);
                }
            }
            Err(diags) => {
                for d in &diags {
                    let _ = d.render(false);
                }
            }
        }
    }
    accepted
}

// ---------------------------------------------------------------------------------------------
// template
// ---------------------------------------------------------------------------------------------

/// Most alerts of one delivery that are run through a runbook's templates.
const MAX_ALERTS: usize = 4;
/// Longest fuzzer-written template or expression: the runbook author writes those, so a
/// template that is slow by itself (`range` inside `range`) is not the finding looked for.
const MAX_TEMPLATE: usize = 256;

/// Templates and expressions with hostile params, as `runbook serve` meets them: the bytes
/// are `[TEMPLATE 0xff] BODY`. BODY is parsed as a generic, Alertmanager or Grafana webhook
/// body; if none parses, its text becomes the value of every label of one alert, so hostile
/// strings always get through. Each firing alert is routed to its runbook among the
/// repository's (by name, alertname or else by length); its params are taken from the alert
/// like the server does (`from: alert.labels.x`, generic `params`); then every template of the
/// runbook is rendered and every `when` / `expect` evaluated against a run context holding
/// those params, the alert, and check results whose values are the hostile strings; the plan
/// is built with the same values as `--set`. TEMPLATE, if given, is rendered and evaluated
/// against the same context. Accepted: BODY parsed as a webhook body.
#[must_use]
pub fn template(data: &[u8]) -> bool {
    let (tpl, body) = match memchr::memchr(0xff, data) {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let (delivery, accepted) = match parse_any(body) {
        Some(d) => (d, true),
        None => (fallback_delivery(body), false),
    };
    let cat = catalog();
    if cat.runbooks.is_empty() {
        return accepted;
    }
    let tpl = tpl
        .filter(|t| t.len() <= MAX_TEMPLATE)
        .and_then(|t| std::str::from_utf8(t).ok());
    for alert in delivery.firing().take(MAX_ALERTS) {
        let rb = route(cat, &delivery, alert, body.len());
        let alert_ctx = crate::serve::server::alert_context(alert);
        let params = crate::serve::server::params_from(rb, &alert_ctx, &delivery.params);
        // The same values given on the command line, as `runbook plan --set` takes them.
        let sets: Vec<String> = params
            .iter()
            .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
            .collect();
        if let Ok(plan) = Plan::build(rb, cat.policy.as_ref(), &sets) {
            let _ = serde_json::to_string(&plan);
        }
        let hostile: Vec<&str> = alert
            .labels
            .values()
            .chain(alert.annotations.values())
            .map(String::as_str)
            .collect();
        let ctx = run_context(rb, &params, &alert_ctx, &hostile);
        render_runbook(rb, &ctx);
        if let Some(t) = tpl {
            let _ = expr::render(t, &ctx);
            let _ = expr::eval_bool(t, &ctx);
        }
    }
    accepted
}

/// Parse `body` as each kind of webhook, generic first (it is the strictest).
fn parse_any(body: &[u8]) -> Option<Delivery> {
    let limits = Limits::default();
    payload::parse_generic(body, None, &limits)
        .or_else(|_| payload::parse_alertmanager(body, &limits))
        .or_else(|_| payload::parse_grafana(body, &limits))
        .ok()
}

/// One firing alert whose every label and annotation is `body` as text.
fn fallback_delivery(body: &[u8]) -> Delivery {
    let text = String::from_utf8_lossy(body).into_owned();
    let labels: Labels = [
        "alertname",
        "instance",
        "service",
        "job",
        "base_url",
        "unit",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), text.clone()))
    .collect();
    let alert = Alert {
        status: Status::Firing,
        annotations: labels.clone(),
        fingerprint: payload::label_fingerprint(&labels),
        labels,
        starts_at: None,
        ends_at: None,
        generator_url: None,
    };
    let params: BTreeMap<String, ParamValue> = catalog()
        .runbooks
        .iter()
        .flat_map(|rb| &rb.params)
        .map(|p| (p.name.clone(), ParamValue::String(text.clone())))
        .collect();
    let alerts = vec![alert];
    Delivery {
        source: Source::Generic,
        group_key: String::new(),
        status: Status::Firing,
        receiver: String::new(),
        truncated_alerts: 0,
        dedup_key: dedup_key(Source::Generic, "", Status::Firing, &alerts),
        alerts,
        runbook: None,
        params,
    }
}

/// The runbook an alert starts, as the server routes it; else one picked by `salt`, so every
/// input reaches some runbook's templates.
fn route<'c>(cat: &'c Catalog, d: &Delivery, alert: &Alert, salt: usize) -> &'c Runbook {
    let named = d
        .runbook
        .as_deref()
        .and_then(|n| cat.runbooks.iter().find(|r| r.name == n));
    let by_alert = || {
        let name = alert.alertname().unwrap_or("");
        cat.runbooks.iter().find(|r| {
            r.triggers.alerts.iter().any(|a| a == name)
                && r.triggers
                    .matchers
                    .iter()
                    .all(|(k, v)| alert.labels.get(k) == Some(v))
        })
    };
    named
        .or_else(by_alert)
        .unwrap_or(&cat.runbooks[salt % cat.runbooks.len()])
}

/// The executor's context (`params`, `checks`, `causes`, `symptoms`, `alert`, `host`, `now`)
/// with every check's `value` and fields taken from the hostile strings.
fn run_context(
    rb: &Runbook,
    params: &Map<String, Value>,
    alert: &Value,
    hostile: &[&str],
) -> Value {
    let pick = |i: usize| -> Value {
        hostile
            .get(i % hostile.len().max(1))
            .map_or(Value::Null, |s| {
                // A probe's value is JSON when the target answered JSON (`jq`), else text.
                serde_json::from_str(s).unwrap_or_else(|_| Value::String((*s).to_owned()))
            })
    };
    let mut checks = Map::new();
    for (i, c) in rb.checks.iter().enumerate() {
        let mut m = Map::new();
        // The probe's own fields: null but for two hostile ones (every field holding a copy of
        // a large label would make each `expect`'s copy of the context slow, not hostile).
        for (j, f) in c.probe.fields().iter().enumerate() {
            let v = if j < 2 { pick(i + j + 1) } else { Value::Null };
            m.insert((*f).to_owned(), v);
        }
        m.insert("value".into(), pick(i));
        m.insert("ok".into(), Value::Bool(i % 2 == 0));
        m.insert("failed".into(), Value::Bool(i % 2 == 1));
        m.insert("error".into(), Value::Bool(false));
        m.insert("skipped".into(), Value::Bool(false));
        m.insert("unknown".into(), Value::Bool(false));
        checks.insert(c.id.clone(), Value::Object(m));
    }
    let causes: Map<String, Value> = rb
        .causes
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                json!({"matched": false, "status": "ruled_out"}),
            )
        })
        .collect();
    let symptoms: Map<String, Value> = rb
        .symptoms
        .iter()
        .map(|s| (s.id.clone(), json!({"present": true})))
        .collect();
    json!({
        "params": params,
        "checks": checks,
        "causes": causes,
        "symptoms": symptoms,
        "alert": alert,
        "host": "fuzz-host",
        "now": "2026-01-01T00:00:00Z",
    })
}

/// Render every template and evaluate every expression of `rb`, as the executor does.
fn render_runbook(rb: &Runbook, ctx: &Value) {
    for c in &rb.checks {
        render_tree(&c.with, ctx);
        if let Some(w) = &c.when {
            let _ = expr::eval_bool(w, ctx);
        }
        if let Some(e) = &c.expect {
            // Inside `expect`, the check's own fields are top-level.
            let mut scope = ctx.as_object().cloned().unwrap_or_default();
            if let Some(Value::Object(own)) = ctx["checks"].get(&c.id) {
                scope.extend(own.clone());
            }
            let _ = expr::eval_bool(e, &Value::Object(scope));
        }
    }
    for s in &rb.symptoms {
        if let Some(w) = &s.when {
            let _ = expr::eval_bool(w, ctx);
        }
    }
    for c in &rb.causes {
        let _ = expr::eval_bool(&c.when, ctx);
    }
    for a in &rb.actions {
        if let Ok(form) = serde_json::to_value(&a.form) {
            render_tree(&form, ctx);
        }
        if let Some(cwd) = &a.cwd {
            render_tree(&Value::String(cwd.clone()), ctx);
        }
        for v in a.env.values() {
            render_tree(&Value::String(v.clone()), ctx);
        }
        if let Some(approve) = &a.approve {
            render_tree(&Value::String(approve.prompt.clone()), ctx);
        }
    }
}

fn render_tree(v: &Value, ctx: &Value) {
    match v {
        Value::String(s) if is_template(s) => {
            let _ = expr::render(s, ctx);
        }
        Value::Array(items) => items.iter().for_each(|i| render_tree(i, ctx)),
        Value::Object(m) => m.values().for_each(|i| render_tree(i, ctx)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// jsonl_scanner
// ---------------------------------------------------------------------------------------------

/// The `jsonl` probe's scanner on a file: the bytes are `OPTS SPLIT DATA`. OPTS picks
/// `max_line_bytes` (1, 16, 256 or 1 MiB), `last` (0..3), `top` / `percentiles` jq paths
/// and a `since` cutoff; SPLIT picks where DATA is cut for an incremental read. DATA is
/// scanned whole (`scan_files`, as the probe does), and read incrementally in two steps (its
/// first part, then the rest appended), and each line is checked by the strict validator
/// against `serde_json`.
///
/// Asserted: the validator never rejects a line `serde_json` accepts; the two-step read counts
/// the same lines, empty, malformed and oversized lines as one read. Accepted: every line
/// (at least one) is JSON.
#[must_use]
pub fn jsonl_scanner(data: &[u8]) -> bool {
    let [opt, split, rest @ ..] = data else {
        return false;
    };
    let data = rest;
    let opts = &*scan_opts(*opt);
    cross_check_validator(data);

    let Some(scratch) = Scratch::new() else {
        return false;
    };
    let Some(path) = scratch.write("events.jsonl", data) else {
        return false;
    };
    let pattern = path.display().to_string();
    let whole = jsonl::scan_files(&pattern, opts, false, &[]);
    let accepted = whole.as_ref().is_ok_and(|(m, _)| {
        m["lines"].as_u64().unwrap_or(0) > 0
            && m["malformed"] == json!(0)
            && m["oversized"] == json!(0)
            && m["empty"] == json!(0)
    });

    // Incremental: the file as it was while being written, then as it is.
    let cut = data.len() * usize::from(*split) / 255;
    let once = incremental(&path, None, opts);
    let Some(first) = std::fs::write(&path, &data[..cut])
        .ok()
        .and_then(|()| incremental(&path, None, opts))
    else {
        return accepted;
    };
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&data[cut..]));
    if appended.is_err() {
        return accepted;
    }
    let second = incremental(&path, Some(&first.0), opts);
    if let (Some(once), Some(second)) = (once, second) {
        assert_eq!(
            second.2,
            jsonl::Change::Same,
            "a file that was only appended to was taken for a rotated one"
        );
        let sum: [u64; 4] = std::array::from_fn(|i| first.1[i] + second.1[i]);
        assert_eq!(
            once.1, sum,
            "[lines, empty, malformed, oversized] of one read differ from two reads cut at {cut}"
        );
        assert_eq!(
            once.0.offset, second.0.offset,
            "reads end at different offsets"
        );
    }
    accepted
}

/// Scan options from one byte, built once per byte (compiling a jq program loads its standard
/// library: too slow to do per input). Kept in a static, where the leak checker sees them.
fn scan_opts(b: u8) -> std::sync::Arc<Opts> {
    static CACHE: std::sync::Mutex<BTreeMap<u8, std::sync::Arc<Opts>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let opts = cache.entry(b).or_insert_with(|| {
        let cutoff = chrono::DateTime::parse_from_rfc3339("2026-11-24T04:30:46Z")
            .ok()
            .filter(|_| b & 0x40 != 0)
            .map(|t| t.with_timezone(&chrono::Utc));
        let program = |bit: u8, path: &str| {
            (b & bit != 0)
                .then(|| jq::Program::new(path).ok())
                .flatten()
        };
        std::sync::Arc::new(Opts {
            max_line_bytes: [1, 16, 256, 1 << 20][usize::from(b & 3)],
            keep_last: usize::from((b >> 2) & 3),
            top: program(0x10, ".reason"),
            percentiles: program(0x20, ".decision_ms"),
            cutoff,
        })
    });
    std::sync::Arc::clone(opts)
}

/// The tail reader's position, `[lines, empty, malformed, oversized]` and what it saw
/// happen to the file.
fn incremental(
    path: &Path,
    saved: Option<&TailPosition>,
    opts: &Opts,
) -> Option<(TailPosition, [u64; 4], jsonl::Change)> {
    let r = jsonl::read_incremental(path, saved, opts).ok()?;
    let t = &r.tally;
    Some((
        r.position,
        [t.lines, t.empty, t.malformed, t.oversized],
        r.change,
    ))
}

/// The strict validator never rejects what `serde_json` accepts (`serde_json` refuses more:
/// nesting past 128, numbers beyond `f64`, lone surrogates).
fn cross_check_validator(data: &[u8]) {
    let mut v = Validator::new();
    for line in data.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || std::str::from_utf8(line).is_err() {
            continue;
        }
        let ours = v.validate(line);
        let serde = serde_json::from_slice::<serde::de::IgnoredAny>(line);
        if let (Err(e), Ok(_)) = (&ours, &serde) {
            panic!(
                "the strict validator rejects a line serde_json accepts ({e}): {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// prometheus_text
// ---------------------------------------------------------------------------------------------

/// The `prometheus` probe on a scraped page and on a `PromQL` answer: the bytes are parsed as
/// a text exposition page (read as the probe reads it, lossy UTF-8), and the names found are
/// selected back out of it with and without label matchers and a quantile (histograms,
/// summaries, `_count`); the bytes are also read as an `/api/v1/query` answer. Accepted: the
/// page parsed with at least one sample.
#[must_use]
pub fn prometheus_text(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let parsed = prometheus::parse_exposition(&text);
    let accepted = parsed.as_ref().is_ok_and(|s| !s.is_empty());
    if let Ok(samples) = &parsed {
        let mut names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        names.dedup();
        for name in names.into_iter().take(8) {
            // The base name of a histogram or summary, as a runbook names it.
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            let labels: IndexMap<String, String> = samples
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.labels.clone())
                .unwrap_or_default();
            for (metric, want) in [(name, &IndexMap::new()), (base, &labels)] {
                for q in [None, Some(0.0), Some(0.5), Some(0.99), Some(1.0)] {
                    let mut out = Map::new();
                    prometheus::select(samples, metric, want, q, &mut out);
                    let _ = serde_json::to_string(&out);
                }
            }
        }
    }
    for status in [200, 400] {
        let _ = prometheus::query_result(status, data);
    }
    accepted
}

// ---------------------------------------------------------------------------------------------
// alert_payload
// ---------------------------------------------------------------------------------------------

/// The webhook bodies `runbook serve` takes: the bytes are parsed by each of the Alertmanager,
/// Grafana and generic parsers, under the default limits and under tight ones.
///
/// Asserted: a delivery has alerts, and its dedup key does not depend on the order of its
/// alerts. Accepted: some parser took the body under the default limits.
#[must_use]
pub fn alert_payload(data: &[u8]) -> bool {
    let tight = Limits {
        max_alerts: 2,
        max_label_bytes: 16,
        max_labels: 3,
    };
    let mut accepted = false;
    for limits in [Limits::default(), tight] {
        let results = [
            payload::parse_alertmanager(data, &limits),
            payload::parse_grafana(data, &limits),
            payload::parse_generic(data, Some(1_700_000_000), &limits),
        ];
        for r in results {
            match r {
                Ok(d) => {
                    accepted |= limits == Limits::default();
                    check_delivery(&d);
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
    accepted
}

fn check_delivery(d: &Delivery) {
    assert!(!d.alerts.is_empty(), "a delivery without alerts");
    let _ = d.firing().count() + d.resolved().count();
    for a in &d.alerts {
        let _ = a.alertname();
        let _ = payload::label_fingerprint(&a.labels);
    }
    if d.source != Source::Generic {
        let mut reversed = d.alerts.clone();
        reversed.reverse();
        assert_eq!(
            d.dedup_key,
            dedup_key(d.source, &d.group_key, d.status, &reversed),
            "the dedup key depends on the order of the alerts"
        );
    }
}
