//! Every procedure of both seed documents exists as a runbook under `runbooks/`, compiles, and
//! keeps the seed's alert names, metric names and thresholds.

use std::path::{Path, PathBuf};

use runbook::runbook::Catalog;

fn catalog() -> Catalog {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    Catalog::load(std::slice::from_ref(&dir), &dir)
}

/// (runbook, seed file, words that must appear in the runbook file: alert names, metrics,
/// thresholds of the seed section)
const SEED: &[(&str, &str, &[&str])] = &[
    (
        "sse-not-connecting",
        "aurora-p3d-operations-runbook.md",
        &[
            "/healthz",
            ".sse_clients",
            "auth_token",
            "nginx",
            "Access-Control-Allow-Origin",
            "ufw",
            "8001",
        ],
    ),
    (
        "dead-empty-stream",
        "aurora-p3d-operations-runbook.md",
        &[
            ".tailer_stats",
            "1048576",
            "archive",
            "rotation",
            "Malformed JSON",
            "file_positions",
        ],
    ),
    (
        "latency-spikes",
        "aurora-p3d-operations-runbook.md",
        &[
            "decision_ms",
            "50",
            "circuit_breaker",
            "live_feed.py",
            "metrics_buffer_size",
        ],
    ),
    (
        "high-denial-rate",
        "aurora-p3d-operations-runbook.md",
        &[
            "deny_rate",
            "0.5",
            ".current_metrics.governance",
            "orders_denied.jsonl",
            ".reason",
            "governance.yaml",
        ],
    ),
    (
        "service-down",
        "aurora-p3d-operations-runbook.md",
        &["aurora-live-feed", "nginx", "/healthz", ".status"],
    ),
    (
        "data-loss-incident",
        "aurora-p3d-operations-runbook.md",
        &["stop", "/opt/aurora/logs", "backup", "restore", "start"],
    ),
    (
        "daily-checks",
        "aurora-p3d-operations-runbook.md",
        &["/healthz", ".status", "/opt/aurora", "archive"],
    ),
    (
        "weekly-maintenance",
        "aurora-p3d-operations-runbook.md",
        &["log_rotate.sh", "tls_cert", "unauthorized"],
    ),
    (
        "sse-availability-slo",
        "aurora-p3e-incidents-triage.uk.md",
        &[
            "SseAvailabilitySLOViolation",
            "sse:availability_ratio:5m",
            "0.999",
            "sse_events",
            "ufw",
            "nginx",
        ],
    ),
    (
        "circuit-breaker-open",
        "aurora-p3e-incidents-triage.uk.md",
        &[
            "CircuitBreakerOpen",
            "circuit_breaker_state",
            "2",
            "policy_denied",
            "calibration",
            "KELLY_MULTIPLIER",
            "SPREAD_THRESHOLD",
        ],
    ),
    (
        "exec-latency-p99",
        "aurora-p3e-incidents-triage.uk.md",
        &[
            "ExecLatencyP99SLA",
            "exec:latency_p99:10m",
            "300",
            "exec_latency",
            "run_live_aurora",
            "tcp_low_latency",
            "DECISIONS_PER_MINUTE",
        ],
    ),
    (
        "policy-deny-rate-high",
        "aurora-p3e-incidents-triage.uk.md",
        &[
            "PolicyDenyRateHigh",
            "policy:deny_ratio:15m",
            "0.35",
            "policy_denied",
            "P_THRESHOLD",
            "recalibrate",
            "KELLY_MULTIPLIER",
        ],
    ),
    (
        "calibration-ece-high",
        "aurora-p3e-incidents-triage.uk.md",
        &[
            "CalibrationECEHigh",
            "calibration_ece",
            "0.05",
            "trades.jsonl",
            "calibrate.py",
            "CONFIDENCE_THRESHOLD",
            "CALIBRATION_DAYS",
        ],
    ),
];

#[test]
fn every_seed_procedure_has_a_runbook_that_compiles() {
    let cat = catalog();
    let errors: Vec<String> = cat
        .diagnostics
        .iter()
        .filter(|d| d.severity == runbook::runbook::diagnostic::Severity::Error)
        .map(|d| d.render(false))
        .collect();
    assert!(
        errors.is_empty(),
        "runbooks/ does not compile:\n{}",
        errors.join("\n")
    );
    for (name, seed, words) in SEED {
        let rb = cat
            .find(name)
            .unwrap_or_else(|| panic!("no runbook `{name}` for a procedure of {seed}"));
        let source = rb.source.as_deref().unwrap_or_default();
        assert!(
            source.starts_with(&format!("{seed}#")),
            "`{name}` has source `{source}`, expected {seed}#<section>"
        );
        assert!(!rb.checks.is_empty(), "`{name}` has no checks");
        let text = &rb.file.text;
        for w in *words {
            assert!(
                text.contains(w),
                "runbook `{name}` does not mention `{w}` from its seed section"
            );
        }
    }
}

#[test]
fn seed_thresholds_are_kept_in_expressions() {
    let cat = catalog();
    // The seed's alert condition, or its complement written as the healthy expectation.
    let expect = |name: &str, forms: &[&str]| {
        let rb = cat
            .find(name)
            .unwrap_or_else(|| panic!("no runbook `{name}`"));
        let exprs: Vec<String> = rb
            .checks
            .iter()
            .filter_map(|c| c.expect.as_deref())
            .chain(rb.checks.iter().filter_map(|c| c.when.as_deref()))
            .chain(rb.causes.iter().map(|c| c.when.as_str()))
            .chain(rb.symptoms.iter().filter_map(|s| s.when.as_deref()))
            .map(|e| {
                // A threshold may be a param: read it with its default filled in.
                let mut e = e.to_owned();
                for p in &rb.params {
                    if let Some(d) = &p.default {
                        let shown = d.as_str().map_or_else(|| d.to_string(), str::to_owned);
                        e = e.replace(&format!("params.{}", p.name), &shown);
                    }
                }
                e.replace(' ', "")
            })
            .collect();
        assert!(
            forms
                .iter()
                .any(|f| exprs.iter().any(|e| e.contains(&f.replace(' ', "")))),
            "no expression of `{name}` contains any of {forms:?}: {exprs:#?}"
        );
    };
    expect("sse-availability-slo", &["< 0.999", ">= 0.999"]);
    expect("exec-latency-p99", &["> 300", "<= 300"]);
    expect("policy-deny-rate-high", &["> 0.35", "<= 0.35"]);
    expect("calibration-ece-high", &["> 0.05", "<= 0.05"]);
    expect("circuit-breaker-open", &[">= 2", "< 2"]);
    expect("latency-spikes", &["> 50", "<= 50"]);
    expect("high-denial-rate", &["> 0.5", "<= 0.5"]);
}

#[test]
fn alert_runbooks_trigger_on_the_seed_alert_names() {
    let cat = catalog();
    for (name, alert) in [
        ("sse-availability-slo", "SseAvailabilitySLOViolation"),
        ("circuit-breaker-open", "CircuitBreakerOpen"),
        ("exec-latency-p99", "ExecLatencyP99SLA"),
        ("policy-deny-rate-high", "PolicyDenyRateHigh"),
        ("calibration-ece-high", "CalibrationECEHigh"),
    ] {
        let rb = cat.find(name).unwrap();
        assert!(
            rb.triggers.alerts.iter().any(|a| a == alert),
            "`{name}` is not triggered by `{alert}`"
        );
    }
    for name in ["daily-checks", "weekly-maintenance"] {
        assert!(
            cat.find(name).unwrap().triggers.schedule.is_some(),
            "`{name}` has no schedule"
        );
    }
}

#[test]
fn policy_keeps_the_seed_severities_and_ladders() {
    use runbook::runbook::value::DurationParam;
    use std::time::Duration;
    let cat = catalog();
    let policy = cat.policy.as_ref().expect("runbooks/policy.yaml");
    let h = |n: u64| DurationParam::Fixed(Duration::from_secs(n * 3600));
    let m = |n: u64| DurationParam::Fixed(Duration::from_secs(n * 60));
    let want = [
        ("P0", m(5), h(1)),
        ("P1", m(15), h(4)),
        ("P2", h(1), h(24)),
        ("P3", h(4), h(24 * 7)),
    ];
    for (key, response, resolution) in want {
        let s = &policy.severities[key];
        assert_eq!(s.response, response, "{key} response");
        assert_eq!(s.resolution, resolution, "{key} resolution");
    }
    let p3e = &policy.ladders["p3e"].levels;
    let after: Vec<Duration> = p3e
        .iter()
        .map(runbook::runbook::policy::Level::after)
        .collect();
    assert_eq!(
        after,
        [
            Duration::ZERO,
            Duration::from_secs(1800),
            Duration::from_secs(7200),
            Duration::from_secs(14400)
        ]
    );
    assert_eq!(policy.ladders["p3d"].levels.len(), 3);
    let sections: Vec<&str> = policy
        .postmortem
        .as_ref()
        .unwrap()
        .sections
        .iter()
        .map(|s| s.title.as_str())
        .collect();
    assert_eq!(
        sections,
        ["Timeline", "Impact", "Root cause", "Actions", "Lessons"]
    );
    let _ = Path::new("");
}
