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
    // Written as the run is settled, just after the run is listed (bounded wait).
    for _ in 0..200 {
        if !open().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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

/// Grafana's fixture notification as Grafana sends it: marshalled without a trailing newline.
fn grafana_body() -> Vec<u8> {
    let fixture = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/alerts/grafana-firing.json"),
    )
    .unwrap();
    fixture.trim_ascii_end().to_vec()
}

/// `/metrics` counts `refused` 401s and `accepted` 200s on `/hooks/grafana`.
fn assert_grafana_deliveries(s: &Server, refused: u32, accepted: u32) {
    let metrics = s.text("/metrics");
    for line in [
        format!("runbook_deliveries_total{{endpoint=\"grafana\",code=\"401\"}} {refused}"),
        format!("runbook_deliveries_total{{endpoint=\"grafana\",code=\"200\"}} {accepted}"),
    ] {
        assert!(metrics.contains(&line), "missing `{line}` in\n{metrics}");
    }
}

/// `/hooks/grafana` with `--grafana-hmac-secret-file` and the default headers (a contact
/// point with `hmacConfig.timestampHeader: X-Grafana-Alerting-Timestamp`): a unified alerting
/// body signed as Grafana signs it, with either secret of the file (rotation), starts the
/// runbook of its alert; no signature, no timestamp (a contact point that signs the body
/// alone), a flipped signature byte, a stale or future timestamp, a retired secret, or a
/// signature without the bearer token is a 401 that records and starts nothing.
#[test]
fn grafana_deliveries_signed_with_a_current_secret_start_their_runbook_and_others_nothing() {
    const NEW: &str = "grafana-new-4d1e";
    const OLD: &str = "grafana-old-93b0";
    let case = Case::new(&[("exec-latency", EXEC_LATENCY)]);
    // During a rotation the file holds the new secret and the old one.
    let secrets = case.secret_file("grafana-hmac", &format!("{NEW}\n{OLD}\n"));
    let s = case.serve(&["--grafana-hmac-secret-file", secrets.to_str().unwrap()]);
    let body: &[u8] = &grafana_body();
    // The status and, for a refusal, its reason: a 401 for another reason proves nothing.
    let post = |body: &[u8], ts: Option<i64>, signature: Option<&str>, token: Option<&str>| {
        let mut req = s
            .http(Method::POST, "/hooks/grafana")
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(ts) = ts {
            req = req.header("X-Grafana-Alerting-Timestamp", ts.to_string());
        }
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
        refusal(post(body, Some(now), None, Some(TOKEN))),
        (401, json!("missing signature"))
    );
    let body_only = grafana_body_signature(NEW, body);
    assert_eq!(
        refusal(post(body, None, Some(&body_only), Some(TOKEN))),
        (401, json!("missing timestamp")),
        "a body-only signature, to a server that wants the time"
    );
    let mut flipped = hex::decode(&signed).unwrap();
    flipped[16] ^= 0x01;
    assert_eq!(
        refusal(post(
            body,
            Some(now),
            Some(&hex::encode(flipped)),
            Some(TOKEN)
        )),
        (401, json!("bad signature")),
        "one flipped signature byte"
    );
    // Well outside ±300 s, whatever the seconds this test takes.
    for ts in [now - 360, now + 360] {
        let sig = grafana_signature(NEW, ts, body);
        assert_eq!(
            refusal(post(body, Some(ts), Some(&sig), Some(TOKEN))),
            (401, json!("stale timestamp")),
            "{ts} against {now}"
        );
    }
    let retired = grafana_signature("grafana-retired-07aa", now, body);
    assert_eq!(
        refusal(post(body, Some(now), Some(&retired), Some(TOKEN))),
        (401, json!("bad signature")),
        "a secret no longer in the file"
    );
    // With `--token-file`, the signature adds to the token; it does not replace it.
    assert_eq!(
        refusal(post(body, Some(now), Some(&signed), None)),
        (401, json!("unauthorized"))
    );
    assert_eq!(case.deliveries(), 0, "a refused delivery was recorded");
    assert_eq!(s.runs("webhook", 0), Vec::<Value>::new());

    // The new secret: the fixture's alert starts its runbook.
    let (code, r) = post(body, Some(now), Some(&signed), Some(TOKEN));
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
    let (code, r) = post(other, Some(now), Some(&sig), Some(TOKEN));
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
    assert_grafana_deliveries(&s, 7, 2);
}

/// What Grafana sends when `hmacConfig.timestampHeader` is left empty (its default): the hex
/// HMAC-SHA256 of the body alone, and no timestamp header.
fn grafana_body_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `--grafana-timestamp-header none` with a custom `--grafana-signature-header`, as a contact
/// point with `hmacConfig: {secret, header: X-Hook-Signature}` sends: a body-only signature
/// in that header starts the runbook; a flipped body or signature byte, the signature in
/// Grafana's default header, or a `timestamp:body` signature is a 401 that records and starts
/// nothing; the same delivery again is a duplicate (no window, but dedup).
#[test]
fn grafana_body_only_signatures_in_a_custom_header_start_their_runbook_and_others_nothing() {
    const SECRET: &str = "grafana-body-only-5c2e";
    const HEADER: &str = "X-Hook-Signature";
    let case = Case::new(&[("exec-latency", EXEC_LATENCY)]);
    let secrets = case.secret_file("grafana-hmac", &format!("{SECRET}\n"));
    let s = case.serve(&[
        "--grafana-hmac-secret-file",
        secrets.to_str().unwrap(),
        "--grafana-signature-header",
        HEADER,
        "--grafana-timestamp-header",
        "none",
    ]);
    let body: &[u8] = &grafana_body();
    // The status and, for a refusal, its reason.
    let post = |body: &[u8], headers: &[(&str, &str)]| {
        let mut req = s
            .http(Method::POST, "/hooks/grafana")
            .header("content-type", "application/json")
            .bearer_auth(TOKEN)
            .body(body.to_vec());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().unwrap();
        let code = resp.status().as_u16();
        let r = resp.json::<Value>().unwrap_or(Value::Null);
        (code, r)
    };
    let refusal = |(code, r): (u16, Value)| (code, r["error"].clone());
    let signed = grafana_body_signature(SECRET, body);

    let mut flipped_body = body.to_vec();
    flipped_body[body.len() / 2] ^= 0x01;
    assert_eq!(
        refusal(post(&flipped_body, &[(HEADER, &signed)])),
        (401, json!("bad signature")),
        "one flipped body byte"
    );
    let mut flipped = hex::decode(&signed).unwrap();
    flipped[7] ^= 0x80;
    assert_eq!(
        refusal(post(body, &[(HEADER, &hex::encode(flipped))])),
        (401, json!("bad signature")),
        "one flipped signature byte"
    );
    assert_eq!(
        refusal(post(body, &[("X-Grafana-Alert-Signature", &signed)])),
        (401, json!("missing signature")),
        "the signature in Grafana's default header, not the one configured"
    );
    // A contact point that does set `timestampHeader` signs `<seconds>:<body>`.
    let now = chrono::Utc::now().timestamp();
    let with_time = grafana_signature(SECRET, now, body);
    let now = now.to_string();
    assert_eq!(
        refusal(post(
            body,
            &[(HEADER, &with_time), ("X-Grafana-Alerting-Timestamp", &now)]
        )),
        (401, json!("bad signature")),
        "a timestamp:body signature"
    );
    assert_eq!(case.deliveries(), 0, "a refused delivery was recorded");
    assert_eq!(s.runs("webhook", 0), Vec::<Value>::new());

    let (code, r) = post(body, &[(HEADER, &signed)]);
    assert_eq!((code, r["started"].clone()), (200, json!(1)), "{r}");
    let runs = s.runs("webhook", 1);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["runbook"], "exec-latency");
    assert_eq!(runs[0]["params"]["instance"], "api-2.example.internal:9100");
    // No timestamp, so nothing expires; the same delivery again is its group's last: a
    // duplicate, recorded once and started once.
    let (code, r) = post(body, &[(HEADER, &signed)]);
    assert_eq!((code, r["duplicate"].clone()), (200, json!(true)), "{r}");
    assert_eq!(case.deliveries(), 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.runs("webhook", 0).len(), 1, "a duplicate started a run");

    assert_grafana_deliveries(&s, 4, 2);
    let log = std::fs::read_to_string(case.path("serve.log")).unwrap();
    assert!(
        log.contains("warning: --grafana-timestamp-header none:"),
        "no warning about the missing replay window:\n{log}"
    );
}

/// Bad Grafana signature options stop `serve` before it listens, with exit 2 and a message
/// naming the option.
#[test]
fn bad_grafana_signature_options_are_refused() {
    let case = Case::new(&[("exec-latency", EXEC_LATENCY)]);
    let secrets = case.secret_file("grafana-hmac", "k\n");
    // The exit code (`None`: still running after 20 s, then killed), stdout and stderr.
    let serve = |args: &[&str]| {
        let mut child = Command::new(get_cargo_bin("runbook"))
            .arg("--runbooks")
            .arg(case.path("runbooks"))
            .arg("--db")
            .arg(case.db())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let with_secret = |args: &[&str]| {
        let mut all = vec!["--grafana-hmac-secret-file", secrets.to_str().unwrap()];
        all.extend_from_slice(args);
        serve(&all)
    };
    for (args, says) in [
        (
            with_secret(&["--grafana-signature-header", ""]),
            "error: --grafana-signature-header: give a header name",
        ),
        (
            with_secret(&["--grafana-timestamp-header", ""]),
            "error: --grafana-timestamp-header: give a header name",
        ),
        (
            with_secret(&["--grafana-signature-header", "X Signature"]),
            "error: --grafana-signature-header `X Signature`: not a header name",
        ),
        (
            with_secret(&["--grafana-timestamp-header", "X-Time:"]),
            "error: --grafana-timestamp-header `X-Time:`: not a header name",
        ),
        (
            with_secret(&["--grafana-signature-header", "authorization"]),
            "`Authorization` carries the token or basic credentials",
        ),
        (
            with_secret(&[
                "--grafana-signature-header",
                "X-Sig",
                "--grafana-timestamp-header",
                "x-sig",
            ]),
            "both name `x-sig`",
        ),
        // Without a secret the headers would mean nothing.
        (
            serve(&["--grafana-timestamp-header", "none"]),
            "--grafana-hmac-secret-file <FILE>",
        ),
    ] {
        let (code, stdout, stderr) = args;
        assert_eq!(code, Some(2), "{says}: {stderr}");
        assert!(stdout.is_empty(), "it listened: {stdout}");
        assert!(stderr.contains(says), "`{says}` not in:\n{stderr}");
    }
}
