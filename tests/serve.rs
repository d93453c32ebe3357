//! `runbook serve` end to end: the real binary on a loopback port, a temp runbook dir and
//! audit DB, deliveries posted with reqwest. Every wait is bounded.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use insta_cmd::get_cargo_bin;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use common::{Case, SSE_DOWN, Server, TOKEN};

/// Helpers only these tests use.
impl Case {
    /// A case with the `sse-down` runbook.
    fn sse_down() -> Case {
        Case::new(&[("sse-down", SSE_DOWN)])
    }

    /// Deliveries recorded in the audit DB.
    fn deliveries(&self) -> i64 {
        self.sql("SELECT COUNT(*) FROM alerts")
    }
}

impl Server {
    /// The body of `GET path` as text (`/healthz`, `/metrics`).
    fn text(&self, path: &str) -> String {
        self.http(Method::GET, path).send().unwrap().text().unwrap()
    }
}

fn alertmanager(status: &str, alerts: &[(&str, &str)]) -> Vec<u8> {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(name, fp)| {
            json!({
                "status": status,
                "labels": { "alertname": name, "instance": "aurora-1", "marker": "/nonexistent/m" },
                "annotations": { "summary": "SSE availability below SLO" },
                "startsAt": "2026-11-23T10:00:00.123456789Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": fp,
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"SseAvailabilitySLOViolation\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "runbook",
        "groupLabels": { "alertname": "SseAvailabilitySLOViolation" },
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
        "someFutureField": true,
    }))
    .unwrap()
}

#[test]
fn a_firing_alert_starts_its_runbook_once_and_bad_deliveries_start_nothing() {
    let case = Case::sse_down();
    let s = case.serve(&["--body-limit", "65536"]);
    assert_eq!(s.text("/healthz").trim(), "ok");
    let body = alertmanager(
        "firing",
        &[("SseAvailabilitySLOViolation", "aaaa000000000001")],
    );

    // Refused, nothing recorded: no token, a wrong token, oversized, malformed.
    assert_eq!(s.post("/hooks/alertmanager", None, &body).0, 401);
    assert_eq!(s.post("/hooks/alertmanager", Some("wrong"), &body).0, 401);
    let big = vec![b' '; 70_000];
    assert_eq!(s.post("/hooks/alertmanager", Some(TOKEN), &big).0, 413);
    let (code, err) = s.post("/hooks/alertmanager", Some(TOKEN), b"{\"version\": ");
    assert_eq!(code, 400, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("Alertmanager"),
        "{err}"
    );
    // The right token and body, declared as something else: 415.
    let resp = s
        .http(Method::POST, "/hooks/alertmanager")
        .header("content-type", "application/x-www-form-urlencoded")
        .bearer_auth(TOKEN)
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert_eq!(case.deliveries(), 0);

    // Accepted: one run, with the alert's label as the param.
    let (code, r) = s.post("/hooks/alertmanager", Some(TOKEN), &body);
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["started"], 1, "{r}");
    let runs = s.runs("webhook", 1);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["runbook"], "sse-down");
    assert_eq!(runs[0]["outcome"], "problem_remains");
    assert_eq!(runs[0]["params"]["marker"], "/nonexistent/m");

    // The same delivery again (Alertmanager retries): 200, nothing started.
    let (code, r) = s.post("/hooks/alertmanager", Some(TOKEN), &body);
    assert_eq!((code, r["duplicate"].clone()), (200, json!(true)), "{r}");
    assert_eq!(case.deliveries(), 1);

    // An alert no runbook handles: recorded, 202.
    let other = alertmanager("firing", &[("NobodyHandlesThis", "bbbb000000000001")]);
    let (code, r) = s.post("/hooks/alertmanager", Some(TOKEN), &other);
    assert_eq!(code, 202, "{r}");
    assert_eq!(case.deliveries(), 2);

    // The run left a problem: an incident for this runbook and fingerprint is open; the
    // resolved notification closes it.
    let open = || -> Vec<Value> {
        let out = Command::new(get_cargo_bin("runbook"))
            .arg("--db")
            .arg(case.db())
            .args(["incidents", "--format", "json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v.as_array()
            .cloned()
            .or_else(|| v["incidents"].as_array().cloned())
            .unwrap_or_default()
    };
    assert_eq!(open().len(), 1, "{:?}", open());
    let resolved = alertmanager(
        "resolved",
        &[("SseAvailabilitySLOViolation", "aaaa000000000001")],
    );
    let (code, r) = s.post("/hooks/alertmanager", Some(TOKEN), &resolved);
    assert_eq!((code, r["resolved"].clone()), (200, json!(1)), "{r}");
    assert!(open().is_empty(), "{:?}", open());

    let metrics = s.text("/metrics");
    for line in [
        "runbook_deliveries_total{endpoint=\"alertmanager\",code=\"401\"} 2",
        "runbook_deliveries_total{endpoint=\"alertmanager\",code=\"400\"} 1",
        "runbook_deliveries_total{endpoint=\"alertmanager\",code=\"415\"} 1",
        "runbook_deliveries_total{endpoint=\"alertmanager\",code=\"200\"} 3",
        "runbook_deliveries_total{endpoint=\"alertmanager\",code=\"202\"} 1",
        "runbook_runs_total{runbook=\"sse-down\",outcome=\"problem_remains\"} 1",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in\n{metrics}");
    }
    assert_eq!(
        s.runs("webhook", 1).len(),
        1,
        "a bad or duplicate delivery started a run"
    );
}

#[test]
fn an_alert_storm_over_a_few_fingerprints_starts_one_run_per_fingerprint() {
    let case = Case::sse_down();
    let s = case.serve(&[]);
    // 3000 alerts in 30 deliveries over 3 fingerprints.
    for batch in 0..30 {
        let alerts: Vec<(&str, String)> = (0..100)
            .map(|i| {
                (
                    "SseAvailabilitySLOViolation",
                    format!("cccc00000000000{}", (batch * 100 + i) % 3),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = alerts.iter().map(|(a, f)| (*a, f.as_str())).collect();
        let mut body: Value = serde_json::from_slice(&alertmanager("firing", &refs)).unwrap();
        body["groupKey"] = json!(format!("storm-{batch}"));
        let (code, r) = s.post(
            "/hooks/alertmanager",
            Some(TOKEN),
            &serde_json::to_vec(&body).unwrap(),
        );
        assert_eq!(code, 200, "{r}");
    }
    let runs = s.runs("webhook", 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.runs("webhook", 3).len(), 3, "{runs:#?}");
    assert_eq!(case.deliveries(), 30);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let case = Case::sse_down();
    let mut s = case.serve(&[]);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(s.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_public_address_without_authentication_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(get_cargo_bin("runbook"))
        .args(["--runbooks"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks"))
        .arg("--db")
        .arg(dir.path().join("a.db"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without authentication"));
}

/// `serve --follow`: the jsonl follower inside the server counts into `/metrics`, and a
/// restart goes on from the position saved in the audit DB (lines written while it was down
/// are counted once, nothing twice).
#[test]
fn serve_follows_json_lines_files_into_metrics_across_a_restart() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("events.jsonl");
    // Written before the first start: with no saved position the follower reads from 0.
    std::fs::write(&log, "{\"seq\":0}\n").unwrap();
    let glob = format!("{}/*.jsonl", logs.path().display());
    let metric = |s: &Server, name: &str| -> Option<u64> {
        s.text("/metrics").lines().find_map(|l| {
            l.strip_prefix(&format!("runbook_jsonl_{name}_total "))
                .and_then(|v| v.parse().ok())
        })
    };
    let wait = |s: &Server, name: &str, want: u64| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = metric(s, name);
            if got == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "runbook_jsonl_{name}_total = {got:?}, want {want}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let case = Case::sse_down();
    let mut s = case.serve(&["--follow", &glob, "--follow-interval", "200ms"]);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":1}\n{\"seq\":2}\nnot json\n").unwrap();
    wait(&s, "lines", 4);
    wait(&s, "malformed", 1);
    // Stop; write while it is down; the same DB in a new server reads only those.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(s.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::io::Write::write_all(&mut f, b"{\"seq\":3}\n{\"seq\":4}\n").unwrap();
    let again = case.serve(&["--follow", &glob, "--follow-interval", "200ms"]);
    wait(&again, "lines", 2);
    wait(&again, "malformed", 0);
    assert!(again.text("/metrics").contains("runbook_jsonl_follow_up 1"));
}

/// `/hooks/generic` takes only signed deliveries: a valid HMAC starts the named runbook with
/// its params; a flipped byte, a stale timestamp, no signature or a replay start nothing.
#[test]
fn generic_deliveries_must_be_signed_fresh_and_unique() {
    use runbook::serve::auth::SignatureScheme;
    let case = Case::sse_down();
    let secret_file = case.secret_file("hmac", "s3cret-hmac\n");
    let s = case.serve(&["--hmac-secret-file", secret_file.to_str().unwrap()]);
    let scheme = SignatureScheme::runbook();
    let post = |body: &[u8], ts: i64, sig: Option<String>| -> (u16, Value) {
        let mut req = s
            .http(Method::POST, "/hooks/generic")
            .header("content-type", "application/json")
            .header("X-Runbook-Timestamp", ts.to_string())
            .body(body.to_vec());
        if let Some(sig) = sig {
            req = req.header("X-Runbook-Signature", sig);
        }
        let resp = req.send().unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().unwrap_or(Value::Null))
    };
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"runbook": "sse-down", "params": {"marker": "/nonexistent/generic"}}"#;
    let sign = |ts: i64, body: &[u8]| Some(scheme.sign(b"s3cret-hmac", ts, body));

    assert_eq!(post(body, now, None).0, 401, "unsigned");
    let mut flipped = sign(now, body).unwrap();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        post(body, now, Some(flipped)).0,
        401,
        "one flipped hex digit"
    );
    // Well outside ±300 s, whatever the seconds this test takes.
    assert_eq!(post(body, now - 360, sign(now - 360, body)).0, 401, "stale");
    assert_eq!(
        post(body, now + 360, sign(now + 360, body)).0,
        401,
        "from the future"
    );
    assert_eq!(case.deliveries(), 0);

    let (code, r) = post(body, now, sign(now, body));
    assert_eq!((code, r["started"].clone()), (200, json!(1)), "{r}");
    let runs = s.runs("webhook", 1);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["params"]["marker"], "/nonexistent/generic");
    // The same signed request again is a replay: 200, nothing started.
    let (code, r) = post(body, now, sign(now, body));
    assert_eq!((code, r["duplicate"].clone()), (200, json!(true)), "{r}");
    // Signed but not a generic delivery: 400.
    let bad = br#"{"runbook": "sse-down", "parms": {}}"#;
    assert_eq!(post(bad, now, sign(now, bad)).0, 400);
    assert_eq!(s.runs("webhook", 1).len(), 1);
}

/// `kill -9` during a storm: every delivery that was answered is in the DB, the file is
/// sound and its chain verifies, no run is duplicated, none is left `running` after the next
/// start, and the next server runs what was accepted but still queued at the kill.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one storm, one kill, two starts: checked in the order they happen"
)]
fn a_server_killed_during_a_storm_keeps_every_accepted_delivery() {
    let case = Case::sse_down();
    let mut s = case.serve(&[]);
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let base = s.base.clone();
    let sender = {
        let accepted = std::sync::Arc::clone(&accepted);
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            for i in 0..400 {
                let mut body: Value = serde_json::from_slice(&alertmanager(
                    "firing",
                    &[(
                        "SseAvailabilitySLOViolation",
                        &format!("dddd00000000000{}", i % 4),
                    )],
                ))
                .unwrap();
                body["groupKey"] = json!(format!("crash-{i}"));
                let Ok(resp) = client
                    .post(format!("{base}/hooks/alertmanager"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                else {
                    break; // the server is gone
                };
                if resp.status().as_u16() == 200
                    && let Ok(v) = resp.json::<Value>()
                    && let Some(id) = v["delivery"].as_i64()
                {
                    accepted.lock().unwrap().push(id);
                }
            }
        })
    };
    // Kill it mid-storm (bounded wait for some deliveries first).
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.lock().unwrap().len() < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    sender.join().unwrap();
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= 50,
        "only {} accepted before the kill",
        accepted.len()
    );

    let conn = rusqlite::Connection::open(case.db()).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    for id in &accepted {
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM alerts WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1, "accepted delivery {id} is not in the DB");
    }
    // One run at most per fingerprint (4 fingerprints, cooldown 1h).
    let runs: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE trigger = 'webhook'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(runs <= 4, "{runs} runs for 4 fingerprints");
    drop(conn);
    // The next start marks what the kill interrupted; the chain verifies.
    let out = Command::new(get_cargo_bin("runbook"))
        .arg("--db")
        .arg(case.db())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let conn = rusqlite::Connection::open(case.db()).unwrap();
    let running: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE finished_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(running, 0, "a run is left running after the next start");
    drop(conn);

    // A new server on the same DB runs what was accepted but still queued at the kill, once
    // per fingerprint, and then nothing is pending.
    let again = case.serve(&[]);
    let pending = || -> i64 {
        rusqlite::Connection::open(case.db())
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM alerts WHERE runbook IS NOT NULL AND run_id IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while pending() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} deliveries never ran",
            pending()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(again);
    let conn = rusqlite::Connection::open(case.db()).unwrap();
    let most: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM runs \
             WHERE trigger = 'webhook' AND outcome != 'interrupted' \
             GROUP BY json_extract(params, '$.marker'))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(most >= 1, "nothing ran");
}

/// Starts on Grafana's fixture alert (`ExecLatencyP99SLA`); its `instance` label becomes the
/// param. Healthy: the run only shows that it started, and for which alert.
const EXEC_LATENCY: &str = r#"runbook: exec-latency
title: Exec latency (test)
severity: P3
triggers:
  alerts: [ExecLatencyP99SLA]
params:
  instance: { type: name, default: none, from: alert.labels.instance }
checks:
  - id: root_exists
    probe: file
    with: { path: "/" }
    expect: "exists"
"#;

/// What Grafana's webhook contact point sends in `X-Grafana-Alert-Signature` (its default
/// `hmacConfig.header`) when `hmacConfig.timestampHeader` is set: the hex HMAC-SHA256 of
/// `<unix seconds>:<body>`. Computed here from `hmac` and `sha2`, not by the crate's signer,
/// so a server that agrees only with itself fails.
fn grafana_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}:").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `/hooks/grafana` with `--grafana-hmac-secret-file`: a unified alerting body signed as
/// Grafana signs it, with either secret of the file (rotation), starts the runbook of its
/// alert; no signature, a flipped signature byte, a stale or future timestamp, a retired
/// secret, or a signature without the bearer token is a 401 that records and starts nothing.
#[test]
fn grafana_deliveries_signed_with_a_current_secret_start_their_runbook_and_others_nothing() {
    const NEW: &str = "grafana-new-4d1e";
    const OLD: &str = "grafana-old-93b0";
    let case = Case::new(&[("exec-latency", EXEC_LATENCY)]);
    // During a rotation the file holds the new secret and the old one.
    let secrets = case.secret_file("grafana-hmac", &format!("{NEW}\n{OLD}\n"));
    let s = case.serve(&["--grafana-hmac-secret-file", secrets.to_str().unwrap()]);
    let fixture = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/alerts/grafana-firing.json"),
    )
    .unwrap();
    // Grafana marshals the body without a trailing newline.
    let body = fixture.trim_ascii_end();
    // The status and, for a refusal, its reason: a 401 for another reason proves nothing.
    let post = |body: &[u8], ts: i64, signature: Option<&str>, token: Option<&str>| {
        let mut req = s
            .http(Method::POST, "/hooks/grafana")
            .header("content-type", "application/json")
            .header("X-Grafana-Alerting-Timestamp", ts.to_string())
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("X-Grafana-Alert-Signature", sig);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let code = resp.status().as_u16();
        (code, resp.json::<Value>().unwrap_or(Value::Null))
    };
    let refusal = |(code, r): (u16, Value)| (code, r["error"].clone());
    let now = chrono::Utc::now().timestamp();
    let signed = grafana_signature(NEW, now, body);

    assert_eq!(
        refusal(post(body, now, None, Some(TOKEN))),
        (401, json!("missing signature"))
    );
    let mut flipped = hex::decode(&signed).unwrap();
    flipped[16] ^= 0x01;
    assert_eq!(
        refusal(post(body, now, Some(&hex::encode(flipped)), Some(TOKEN))),
        (401, json!("bad signature")),
        "one flipped signature byte"
    );
    // Well outside ±300 s, whatever the seconds this test takes.
    for ts in [now - 360, now + 360] {
        let sig = grafana_signature(NEW, ts, body);
        assert_eq!(
            refusal(post(body, ts, Some(&sig), Some(TOKEN))),
            (401, json!("stale timestamp")),
            "{ts} against {now}"
        );
    }
    let retired = grafana_signature("grafana-retired-07aa", now, body);
    assert_eq!(
        refusal(post(body, now, Some(&retired), Some(TOKEN))),
        (401, json!("bad signature")),
        "a secret no longer in the file"
    );
    // With `--token-file`, the signature adds to the token; it does not replace it.
    assert_eq!(
        refusal(post(body, now, Some(&signed), None)),
        (401, json!("unauthorized"))
    );
    assert_eq!(case.deliveries(), 0, "a refused delivery was recorded");
    assert_eq!(s.runs("webhook", 0), Vec::<Value>::new());

    // The new secret: the fixture's alert starts its runbook.
    let (code, r) = post(body, now, Some(&signed), Some(TOKEN));
    assert_eq!((code, r["started"].clone()), (200, json!(1)), "{r}");
    let runs = s.runs("webhook", 1);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["runbook"], "exec-latency");
    assert_eq!(runs[0]["outcome"], "healthy");
    assert_eq!(runs[0]["params"]["instance"], "api-2.example.internal:9100");

    // The old secret, still in the file: another instance's alert starts a second run.
    let other = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("api-2.example.internal", "api-3.example.internal")
        .replace("cc652e70123bb43b", "5e1d0c3b2a496f87");
    let other = other.as_bytes();
    let sig = grafana_signature(OLD, now, other);
    let (code, r) = post(other, now, Some(&sig), Some(TOKEN));
    assert_eq!((code, r["started"].clone()), (200, json!(1)), "{r}");
    let runs = s.runs("webhook", 2);
    let mut instances: Vec<&str> = runs
        .iter()
        .filter_map(|r| r["params"]["instance"].as_str())
        .collect();
    instances.sort_unstable();
    assert_eq!(
        instances,
        ["api-2.example.internal:9100", "api-3.example.internal:9100"],
        "{runs:?}"
    );
    assert_eq!(case.deliveries(), 2);
    let metrics = s.text("/metrics");
    for line in [
        "runbook_deliveries_total{endpoint=\"grafana\",code=\"401\"} 6",
        "runbook_deliveries_total{endpoint=\"grafana\",code=\"200\"} 2",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in\n{metrics}");
    }
}
