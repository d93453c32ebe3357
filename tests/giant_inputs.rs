//! Giant inputs through the real binary (issue 9): a 5 GiB line and 50 million empty lines for
//! the `jsonl` probe, with peak RSS measured, and an Alertmanager delivery as large as the body
//! cap allows. They assert outcomes and memory, never wall time; every wait is bounded.

mod common;
mod measured;
mod record;

use std::fs::File;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use insta_cmd::get_cargo_bin;
use reqwest::Method;
use serde_json::{Value, json};

use common::{Case, SSE_DOWN, TOKEN};
use measured::run_within;

/// The most a probe run may take before it is killed and the test fails.
const PROBE_WAIT: Duration = Duration::from_secs(120);
/// The most resident memory a scan may use, in KiB.
const MAX_RSS_KIB: u64 = 64 * 1024;
/// `runbook serve`'s default body cap.
const BODY_LIMIT: usize = 256 * 1024;

/// What one `runbook probe jsonl` run gave.
struct ProbeRun {
    code: Option<i32>,
    out: Value,
    peak_kib: u64,
}

/// `runbook probe jsonl --with ARGS`, waited for (bounded) while its peak RSS is measured:
/// by `/usr/bin/time -f %M` when present (exact: the kernel's `ru_maxrss`), else by polling
/// `VmHWM` (a high-water mark, so a late poll still sees an earlier peak).
fn probe_jsonl(with: &[String]) -> ProbeRun {
    let mut cmd = Command::new(get_cargo_bin("runbook"));
    cmd.args(["probe", "jsonl", "--timeout", "120s"]);
    for w in with {
        cmd.arg("--with").arg(w);
    }
    let ran = run_within(&cmd, PROBE_WAIT);
    eprintln!("`runbook probe jsonl` took {:?}", ran.elapsed);
    let out = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\nstderr: {}", ran.stdout, ran.stderr));
    ProbeRun {
        code: ran.status.code(),
        out,
        peak_kib: ran.peak_kib,
    }
}

/// The counts of a result, in the order lines, empty, malformed, oversized, invalid UTF-8.
fn counts(r: &Value) -> [u64; 5] {
    ["lines", "empty", "malformed", "oversized", "invalid_utf8"]
        .map(|k| r[k].as_u64().unwrap_or_else(|| panic!("no `{k}` in {r}")))
}

#[test]
fn a_five_gib_line_without_newline_is_one_oversized_line_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("giant.jsonl");
    // Sparse: 5 GiB of NUL bytes that take no disk, and no `\n` anywhere.
    File::create(&path).unwrap().set_len(5 << 30).unwrap();
    let run = probe_jsonl(&[
        format!("path={}", path.display()),
        "max_line_bytes=1048576".into(),
    ]);
    eprintln!("5 GiB line: peak RSS {} KiB", run.peak_kib);
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert_eq!(run.out["outcome"], "observed", "{}", run.out);
    let r = &run.out["result"];
    // An oversized line is skipped, never validated: not malformed, not invalid UTF-8.
    assert_eq!(counts(r), [1, 0, 0, 1, 0], "{r}");
    assert_eq!(r["value"], 1, "{r}");
    assert_eq!(
        r["file_positions"][path.display().to_string()],
        json!(5u64 << 30),
        "{r}"
    );
    assert!(
        run.peak_kib > 0 && run.peak_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        run.peak_kib
    );
    record::row(
        file!(),
        "a_five_gib_line_without_newline_is_one_oversized_line_in_bounded_memory",
        "`probe jsonl` on a file that is one line with no newline (sparse)",
        &format!("{} GiB line", (5u64 << 30) >> 30),
        "one oversized line, skipped unread; file position at the end; peak RSS under 64 MiB",
    );
}

#[test]
fn fifty_million_empty_lines_are_counted_in_bounded_memory() {
    const LINES: usize = 50_000_000;
    const CHUNK: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.jsonl");
    let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
    let chunk = vec![b'\n'; CHUNK];
    let mut left = LINES;
    while left > 0 {
        let n = left.min(CHUNK);
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    f.into_inner().unwrap().sync_all().unwrap();
    let run = probe_jsonl(&[format!("path={}", path.display())]);
    // 50 MB: gone before the assertions, whatever they say.
    drop(dir);
    eprintln!("50M empty lines: peak RSS {} KiB", run.peak_kib);
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert_eq!(run.out["outcome"], "observed", "{}", run.out);
    let r = &run.out["result"];
    let n = LINES as u64;
    assert_eq!(counts(r), [n, n, 0, 0, 0], "{r}");
    assert_eq!(r["value"], 0, "{r}");
    assert!(
        run.peak_kib > 0 && run.peak_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        run.peak_kib
    );
    record::row(
        file!(),
        "fifty_million_empty_lines_are_counted_in_bounded_memory",
        "`probe jsonl` on a file of empty lines",
        &format!("{LINES} lines"),
        "every line counted as empty, none malformed; peak RSS under 64 MiB",
    );
}

/// An Alertmanager v4 body of `n` alerts as small as the parser takes: `status` and
/// `labels` with only `alertname` (the fingerprint is then computed from the labels). The
/// names cycle `A`, `B`, `C`: `A` and `C` each have a runbook, `B` none.
fn storm(n: usize) -> Vec<u8> {
    let mut body =
        br#"{"version":"4","groupKey":"g","status":"firing","receiver":"r","alerts":["#.to_vec();
    for i in 0..n {
        if i > 0 {
            body.push(b',');
        }
        let name = ["A", "B", "C"][i % 3];
        body.extend_from_slice(
            format!(r#"{{"status":"firing","labels":{{"alertname":"{name}"}}}}"#).as_bytes(),
        );
    }
    body.extend_from_slice(b"]}");
    body
}

#[test]
fn the_largest_alert_storm_under_the_body_cap_is_routed_and_deduplicated() {
    // One runbook per routed alertname, each the harness's failing-check runbook.
    let rb = |name: &str, alert: &str| {
        SSE_DOWN
            .replace("runbook: sse-down", &format!("runbook: {name}"))
            .replace("[SseAvailabilitySLOViolation]", &format!("[{alert}]"))
    };
    let (storm_a, storm_c) = (rb("storm-a", "A"), rb("storm-c", "C"));
    let case = Case::new(&[("storm-a", &storm_a), ("storm-c", &storm_c)]);
    let s = case.serve(&[]);
    let deliveries = || case.sql("SELECT COUNT(*) FROM alerts");

    // The largest count whose body fits the cap; 10,000 such alerts do not fit.
    let per = storm(2).len() - storm(1).len();
    let n = (BODY_LIMIT - storm(1).len()) / per + 1;
    let body = storm(n);
    assert!(body.len() <= BODY_LIMIT && storm(n + 1).len() > BODY_LIMIT);
    let ten_thousand = storm(10_000);
    assert!(
        n < 10_000 && ten_thousand.len() > BODY_LIMIT,
        "{n} alerts fit: send 10,000"
    );
    eprintln!(
        "{n} alerts in {} bytes; 10,000 in {} bytes",
        body.len(),
        ten_thousand.len()
    );

    // 10,000: over the cap, refused before parsing, nothing recorded or started.
    let (code, r) = s.post("/hooks/alertmanager", Some(TOKEN), &ten_thousand);
    assert_eq!(code, 413, "{r}");
    assert_eq!(deliveries(), 0);

    // The largest that fits: one run per (runbook, fingerprint); the rest coalesced.
    let (for_a, for_b, for_c) = (n.div_ceil(3), (n + 1) / 3, n / 3);
    let (code, r) = s.post("/hooks/alertmanager", Some(TOKEN), &body);
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["started"], 2, "{r}");
    assert_eq!(r["coalesced"], for_a - 1 + for_c - 1, "{r}");
    assert_eq!(r["unrouted"], for_b, "{r}");
    assert_eq!(r["resolved"], 0, "{r}");
    assert_eq!(deliveries(), 1);
    // Recorded whole: every alert is in the audit trail's copy of the delivery.
    assert_eq!(
        case.sql("SELECT json_array_length(payload, '$.alerts') FROM alerts"),
        i64::try_from(n).unwrap()
    );
    let runs = s.runs("webhook", 2);
    let mut names: Vec<&str> = runs.iter().filter_map(|r| r["runbook"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["storm-a", "storm-c"], "{runs:?}");

    // Alertmanager retries the same body: a duplicate, nothing started or recorded.
    let (code, r) = s.post("/hooks/alertmanager", Some(TOKEN), &body);
    assert_eq!(
        (code, &r),
        (200, &json!({ "duplicate": true, "started": 0 }))
    );
    assert_eq!(deliveries(), 1);
    let (code, all) = s.get("/api/runs", Some(TOKEN));
    assert_eq!(code, 200, "{all}");
    let webhook_runs = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "webhook")
        .count();
    assert_eq!(webhook_runs, 2, "{all}");
    let metrics = s
        .http(Method::GET, "/metrics")
        .send()
        .unwrap()
        .text()
        .unwrap();
    let coalesced = format!("runbook_alerts_coalesced_total {}", for_a - 1 + for_c - 1);
    assert!(metrics.lines().any(|l| l == coalesced), "{metrics}");
    record::row(
        file!(),
        "the_largest_alert_storm_under_the_body_cap_is_routed_and_deduplicated",
        "an Alertmanager delivery of 10,000 alerts at the 256 KiB cap, then the largest that fits, then its retry",
        &format!(
            "10,000 alerts ({} bytes) refused; {n} alerts ({} bytes) answered",
            ten_thousand.len(),
            body.len()
        ),
        "413 before parsing, nothing recorded; then one run per (runbook, fingerprint), the rest coalesced or unrouted, the whole payload recorded; the retry a duplicate",
    );
}

/// With the cap raised (`--body-limit 1048576`), the full 10,000-alert storm is one delivery:
/// every alert recorded, one run per routed alertname, the rest coalesced or unrouted.
#[test]
fn ten_thousand_alerts_in_one_delivery_are_answered_once_the_cap_allows_them() {
    let rb = |name: &str, alert: &str| {
        SSE_DOWN
            .replace("runbook: sse-down", &format!("runbook: {name}"))
            .replace("[SseAvailabilitySLOViolation]", &format!("[{alert}]"))
    };
    let (storm_a, storm_c) = (rb("storm-a", "A"), rb("storm-c", "C"));
    let case = Case::new(&[("storm-a", &storm_a), ("storm-c", &storm_c)]);
    let s = case.serve(&["--body-limit", "1048576"]);
    let body = storm(10_000);
    assert!(body.len() > BODY_LIMIT && body.len() <= 1_048_576);
    let (code, r) = s.post("/hooks/alertmanager", Some(TOKEN), &body);
    assert_eq!(code, 200, "{r}");
    // 3,334 A, 3,333 B (no runbook), 3,333 C: one run each for A and C.
    assert_eq!(r["started"], 2, "{r}");
    assert_eq!(r["coalesced"], 3_333 + 3_332, "{r}");
    assert_eq!(r["unrouted"], 3_333, "{r}");
    assert_eq!(
        case.sql("SELECT json_array_length(payload, '$.alerts') FROM alerts"),
        10_000
    );
    let runs = s.runs("webhook", 2);
    assert_eq!(runs.len(), 2, "{runs:?}");
    record::row(
        file!(),
        "ten_thousand_alerts_in_one_delivery_are_answered_once_the_cap_allows_them",
        "the 10,000-alert delivery with `--body-limit 1048576`",
        &format!("{} alerts, {} bytes", 10_000, body.len()),
        "one delivery: every alert recorded, one run each for the two routed names, the rest coalesced or unrouted",
    );
}
