//! `runbook serve` behind a real Prometheus Alertmanager (Debian's `prometheus-alertmanager`),
//! all on loopback: alerts pushed to Alertmanager's `POST /api/v2/alerts` are grouped, sent to
//! our `/hooks/alertmanager` with the bearer token from `credentials_file`, and start the
//! runbook their `alertname` names; the resolved notification closes the incident.
//!
//! Between the two sits a small proxy in this test. It records every request Alertmanager
//! makes (so the assertions see what a real Alertmanager sends, and `RUNBOOK_CAPTURE=1` keeps
//! those bodies as fixtures under `fixtures/alerts/captured/`), and it can answer 500 to one
//! delivery *after* passing it on: the server has then recorded the delivery and started its
//! run, Alertmanager sees a failure and retries the same body, and the retry must start
//! nothing.
//!
//! No silent skip: without the Alertmanager binary the tests fail and say how to install it.
//! Every wait is bounded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use insta_cmd::get_cargo_bin;
use runbook::serve::payload::{Limits, Status, label_fingerprint, parse_alertmanager};
use serde_json::{Value, json};

/// The seed alert names and the runbook each starts in this test.
const SEED: [(&str, &str); 5] = [
    ("SseAvailabilitySLOViolation", "e2e-sse-availability"),
    ("CircuitBreakerOpen", "e2e-circuit-breaker"),
    ("ExecLatencyP99SLA", "e2e-exec-latency"),
    ("PolicyDenyRateHigh", "e2e-policy-deny-rate"),
    ("CalibrationECEHigh", "e2e-calibration-ece"),
];

/// The token our server accepts.
const TOKEN: &str = "e2e-bearer-5d1c9a7f";

/// What Alertmanager's link back to itself says; fixed, so captured bodies do not carry this
/// machine's host name or a random port.
const EXTERNAL_URL: &str = "http://alertmanager.test:9093";

const CAPTURED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/alerts/captured");

/// A runbook for `alert` whose one check fails cheaply (a file that is not there), so every
/// run ends `problem_remains` and opens an incident.
fn runbook_yaml(alert: &str, name: &str) -> String {
    format!(
        r#"runbook: {name}
title: {alert} (Alertmanager end to end)
severity: P3
triggers:
  alerts: [{alert}]
params:
  instance: {{ type: string, default: unknown, from: alert.labels.instance }}
checks:
  - id: marker_present
    probe: file
    with: {{ path: "/nonexistent/runbook-e2e/{name}" }}
    expect: "exists"
causes:
  - id: missing
    title: Marker missing
    when: checks.marker_present.failed
    escalate: L1
escalation: {{ ladder: p3d }}
"#
    )
}

/// Wait (bounded) until `f` gives something.
fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_secret(path: &Path, text: &str) {
    std::fs::write(path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// `runbook serve`
// ---------------------------------------------------------------------------------------------

struct Serve {
    child: Child,
    base: String,
    db: PathBuf,
}

impl Serve {
    fn start(dir: &Path, cooldown: &str) -> Serve {
        let rb = dir.join("runbooks");
        std::fs::create_dir(&rb).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/policy.yaml"),
            rb.join("policy.yaml"),
        )
        .unwrap();
        for (alert, name) in SEED {
            std::fs::write(rb.join(format!("{name}.yaml")), runbook_yaml(alert, name)).unwrap();
        }
        let token_file = dir.join("serve-token");
        write_secret(&token_file, TOKEN);
        let db = dir.join("audit.db");
        let mut child = Command::new(get_cargo_bin("runbook"))
            .arg("--runbooks")
            .arg(&rb)
            .arg("--db")
            .arg(&db)
            .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
            .arg(&token_file)
            .args(["--cooldown", cooldown])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        // Keep reading, so the server never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line of `runbook serve`: {first:?}"))
            .to_owned();
        Serve { child, base, db }
    }

    fn get(&self, path: &str) -> String {
        reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    /// Finished runs started by webhooks.
    fn webhook_runs(&self) -> Vec<Value> {
        let runs: Vec<Value> = serde_json::from_str(&self.get("/api/runs")).unwrap();
        runs.into_iter()
            .filter(|r| r["trigger"] == "webhook")
            .collect()
    }

    /// Finished webhook runs per runbook, with the `instance` param of each.
    fn runs_by_runbook(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in self.webhook_runs() {
            assert!(
                r["finished_at"].is_string(),
                "a run still going is not counted yet: {r}"
            );
            assert_eq!(r["outcome"], "problem_remains", "{r}");
            out.entry(r["runbook"].as_str().unwrap().to_owned())
                .or_default()
                .push(r["params"]["instance"].as_str().unwrap_or("?").to_owned());
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }

    /// `runbook incidents --format json`: the open incidents' runbooks, sorted.
    fn open_incidents(&self) -> Vec<String> {
        let out = Command::new(get_cargo_bin("runbook"))
            .arg("--db")
            .arg(&self.db)
            .args(["incidents", "--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut names: Vec<String> = v["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["runbook"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    fn deliveries_recorded(&self) -> i64 {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        conn.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0))
            .unwrap()
    }

    /// `runbook_deliveries_total{endpoint="alertmanager",code=CODE}`, 0 when absent.
    fn deliveries_metric(&self, code: u16) -> u64 {
        let prefix =
            format!("runbook_deliveries_total{{endpoint=\"alertmanager\",code=\"{code}\"}} ");
        self.get("/metrics")
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The recording proxy between Alertmanager and `runbook serve`
// ---------------------------------------------------------------------------------------------

/// One request Alertmanager made, and what came of it.
#[derive(Debug, Clone)]
struct Exchange {
    path: String,
    user_agent: String,
    authorization: String,
    body: Vec<u8>,
    /// What `runbook serve` answered.
    upstream: (u16, Value),
    /// What Alertmanager was told.
    answered: u16,
}

impl Exchange {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn status(&self) -> String {
        self.json()["status"].as_str().unwrap().to_owned()
    }

    fn alertname(&self) -> String {
        self.json()["groupLabels"]["alertname"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    log: Mutex<Vec<Exchange>>,
    /// The first delivery whose body holds this text is passed on, then answered 500.
    fail_once: Mutex<Option<String>>,
}

struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(upstream: &str, fail_once: Option<&str>) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            client: reqwest::Client::new(),
            log: Mutex::new(Vec::new()),
            fail_once: Mutex::new(fail_once.map(str::to_owned)),
        });
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&state));
        rt.spawn(async move { axum::serve(listener, app).await });
        Proxy {
            addr,
            state,
            _rt: rt,
        }
    }

    fn log(&self) -> Vec<Exchange> {
        self.state.log.lock().unwrap().clone()
    }
}

async fn forward(
    State(s): State<Arc<ProxyState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let authorization = text(header::AUTHORIZATION);
    let mut req = s
        .client
        .post(format!("{}{}", s.upstream, uri.path()))
        .header(header::CONTENT_TYPE, text(header::CONTENT_TYPE))
        .body(body.to_vec());
    if !authorization.is_empty() {
        req = req.header(header::AUTHORIZATION, &authorization);
    }
    let (code, reply) = match req.send().await {
        Ok(r) => {
            let code = r.status().as_u16();
            let bytes = r.bytes().await.unwrap_or_default();
            (code, bytes.to_vec())
        }
        Err(e) => (599, e.to_string().into_bytes()),
    };
    let fail = {
        let mut needle = s.fail_once.lock().unwrap();
        let hit = needle
            .as_deref()
            .is_some_and(|n| String::from_utf8_lossy(&body).contains(n));
        if hit {
            *needle = None;
        }
        hit
    };
    let answered = if fail { 500 } else { code };
    s.log.lock().unwrap().push(Exchange {
        path: uri.path().to_owned(),
        user_agent: text(header::USER_AGENT),
        authorization,
        body: body.to_vec(),
        upstream: (
            code,
            serde_json::from_slice(&reply)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&reply).into())),
        ),
        answered,
    });
    let status = StatusCode::from_u16(answered).unwrap_or(StatusCode::BAD_GATEWAY);
    if fail {
        (status, "injected failure: please retry").into_response()
    } else {
        (status, reply).into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus Alertmanager
// ---------------------------------------------------------------------------------------------

fn alertmanager_binary() -> PathBuf {
    let in_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("prometheus-alertmanager"))
            .find(|f| f.is_file())
    });
    let found = in_path.or_else(|| {
        let f = PathBuf::from("/usr/bin/prometheus-alertmanager");
        f.is_file().then_some(f)
    });
    found.unwrap_or_else(|| {
        panic!(
            "these tests need a real Prometheus Alertmanager, and `prometheus-alertmanager` is \
             neither on PATH nor in /usr/bin: apt-get install -y prometheus-alertmanager \
             (.ci/run does this)"
        )
    })
}

struct Alertmanager {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Alertmanager {
    /// Alertmanager sending every alert to `webhook` with the token in `credentials_file`.
    fn start(dir: &Path, webhook: &str, credentials_file: &Path) -> Alertmanager {
        let bin = alertmanager_binary();
        let config = dir.join("alertmanager.yml");
        // group_by alertname: one delivery per seed alert (two alerts share one group).
        // repeat_interval 1h: nothing is re-sent while the test runs, so every delivery seen
        // is a first delivery or a retry.
        std::fs::write(
            &config,
            format!(
                r"global:
  # Only for alerts pushed without `endsAt`; these carry one, so it never decides anything.
  resolve_timeout: 1m
route:
  receiver: runbook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: runbook
    webhook_configs:
      - url: {webhook}
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials_file: {}
",
                credentials_file.display()
            ),
        )
        .unwrap();
        let storage = dir.join("alertmanager-data");
        std::fs::create_dir_all(&storage).unwrap();
        let log = dir.join("alertmanager.log");
        // The port is picked free, then bound by Alertmanager: another process may take it in
        // between, so a start that exits is tried again on another port.
        for _ in 0..3 {
            let addr = format!("127.0.0.1:{}", free_port());
            let mut child = Command::new(&bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", storage.display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg(format!("--web.external-url={EXTERNAL_URL}"))
                .arg("--web.route-prefix=/")
                // Empty: no clustering (no gossip port, no wait for peers to settle).
                .arg("--cluster.listen-address=")
                .arg("--log.level=debug")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let base = format!("http://{addr}");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                let ready = reqwest::blocking::get(format!("{base}/-/ready"))
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return Alertmanager { child, base, log };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "Alertmanager not ready after 10 s:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "Alertmanager exited at start three times:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `POST /api/v2/alerts`.
    fn push(&self, alerts: &Value) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/api/v2/alerts", self.base))
            .json(alerts)
            .send()
            .unwrap();
        let code = resp.status();
        assert!(code.is_success(), "{code}: {}", resp.text().unwrap());
    }

    fn metrics(&self) -> String {
        reqwest::blocking::get(format!("{}/metrics", self.base))
            .unwrap()
            .text()
            .unwrap()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything wired: `runbook serve`, the proxy in front of it, Alertmanager sending to the
/// proxy with `credentials` as its bearer token.
struct Rig {
    serve: Serve,
    proxy: Proxy,
    am: Alertmanager,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start(credentials: &str, fail_once: Option<&str>, cooldown: &str) -> Rig {
        // Before anything starts: a missing binary fails here, with the install command.
        alertmanager_binary();
        let dir = tempfile::tempdir().unwrap();
        let serve = Serve::start(dir.path(), cooldown);
        let proxy = Proxy::start(&serve.base, fail_once);
        let credentials_file = dir.path().join("alertmanager-credentials");
        write_secret(&credentials_file, credentials);
        let am = Alertmanager::start(
            dir.path(),
            &format!("http://{}/hooks/alertmanager", proxy.addr),
            &credentials_file,
        );
        Rig {
            serve,
            proxy,
            am,
            _dir: dir,
        }
    }

    /// Context for a failed assertion: what Alertmanager said and what went through the proxy.
    fn context(&self) -> String {
        let log: Vec<String> = self
            .proxy
            .log()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} -> upstream {} {}, answered {}",
                    e.path,
                    e.status(),
                    e.alertname(),
                    e.upstream.0,
                    e.upstream.1,
                    e.answered
                )
            })
            .collect();
        format!(
            "proxy log:\n{}\nAlertmanager log (tail):\n{}",
            log.join("\n"),
            self.am
                .log_text()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

/// The alerts as Prometheus would post them: one per seed name, and a second
/// `CircuitBreakerOpen` on another instance (so one delivery carries two alerts). `ends_at`
/// in the future keeps them firing; in the past, it resolves them.
fn alerts(
    starts_at: chrono::DateTime<chrono::Utc>,
    ends_at: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut out = Vec::new();
    let mut push = |alert: &str, instance: &str| {
        out.push(json!({
            "labels": {
                "alertname": alert,
                "instance": instance,
                "job": "aurora",
                "severity": "critical",
            },
            "annotations": {
                "summary": format!("{alert} on {instance}"),
                "runbook_url": "https://runbooks.test/aurora?alert=1&lang=en",
            },
            "startsAt": starts_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "endsAt": ends_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "generatorURL": format!("http://prometheus.test:9090/graph?g0.expr={alert}&g0.tab=1"),
        }));
    };
    for (alert, _) in SEED {
        push(alert, "aurora-1:9100");
    }
    push("CircuitBreakerOpen", "aurora-2:9100");
    Value::Array(out)
}

/// The webhook runs expected after [`alerts`] fired: runbook → the instances it ran for.
fn expected_runs() -> BTreeMap<String, Vec<String>> {
    SEED.iter()
        .map(|(alert, name)| {
            let mut instances = vec!["aurora-1:9100".to_owned()];
            if *alert == "CircuitBreakerOpen" {
                instances.push("aurora-2:9100".to_owned());
            }
            ((*name).to_owned(), instances)
        })
        .collect()
}

/// With `RUNBOOK_CAPTURE=1`, keep what Alertmanager really sent as fixtures (review, then
/// commit them); a normal run writes nothing into the repository.
fn capture(log: &[Exchange]) {
    if std::env::var_os("RUNBOOK_CAPTURE").is_none_or(|v| v != "1") {
        return;
    }
    let pick = |status: &str, alert: &str| {
        log.iter()
            .find(|e| e.status() == status && e.alertname() == alert && e.answered == 200)
            .unwrap_or_else(|| panic!("no {status} {alert} delivery to capture"))
    };
    let version = log[0]
        .user_agent
        .strip_prefix("Alertmanager/")
        .unwrap_or("unknown")
        .to_owned();
    std::fs::create_dir_all(CAPTURED).unwrap();
    for (file, status, alert) in [
        ("firing", "firing", "SseAvailabilitySLOViolation"),
        ("firing-two-alerts", "firing", "CircuitBreakerOpen"),
        ("resolved-two-alerts", "resolved", "CircuitBreakerOpen"),
    ] {
        let path = format!("{CAPTURED}/alertmanager-{version}-{file}.json");
        std::fs::write(&path, &pick(status, alert).body).unwrap();
    }
}

#[test]
fn alerts_through_a_real_alertmanager_start_their_runbooks_once_and_resolve_their_incidents() {
    // The exec-latency delivery reaches the server (recorded, run started), but Alertmanager
    // is told 500: it retries the same body, which must start nothing.
    let rig = Rig::start(TOKEN, Some("ExecLatencyP99SLA"), "1h");
    // Started now, not earlier: Alertmanager flushes a group at once when its first alert is
    // older than group_wait, which can split the two `CircuitBreakerOpen` alerts pushed
    // together into two deliveries; with group_wait they arrive in one.
    let started = chrono::Utc::now();
    rig.am
        .push(&alerts(started, started + chrono::Duration::hours(1)));
    let expected = expected_runs();
    fired_once_each(&rig, &expected);
    resolved_all(&rig, started, &expected);
    capture(&rig.proxy.log());
}

/// Every alert ran its runbook once, the failed delivery was retried and started nothing,
/// and each run opened an incident.
fn fired_once_each(rig: &Rig, expected: &BTreeMap<String, Vec<String>>) {
    let runs = wait_for(
        "a finished run for every alert",
        Duration::from_secs(20),
        || {
            let finished = rig
                .serve
                .webhook_runs()
                .iter()
                .filter(|r| r["finished_at"].is_string())
                .count();
            (finished >= 6).then(|| rig.serve.runs_by_runbook())
        },
    );
    assert_eq!(&runs, expected, "{}", rig.context());

    // The retry arrived and was a duplicate. Then, after more than a group_interval, nothing
    // else was sent and no other run started.
    let exec = |log: &[Exchange]| -> Vec<Exchange> {
        log.iter()
            .filter(|e| e.alertname() == "ExecLatencyP99SLA")
            .cloned()
            .collect()
    };
    wait_for(
        "Alertmanager's retry of the failed delivery",
        Duration::from_secs(10),
        || (exec(&rig.proxy.log()).len() >= 2).then_some(()),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let log = rig.proxy.log();
    let ctx = rig.context();
    let exec = exec(&log);
    assert_eq!(exec.len(), 2, "{ctx}");
    assert_eq!(exec[0].body, exec[1].body, "a retry re-sends the same body");
    let first = (
        exec[0].upstream.0,
        &exec[0].upstream.1["started"],
        exec[0].answered,
    );
    assert_eq!(first, (200, &json!(1), 500), "{ctx}");
    let retry = (
        exec[1].upstream.0,
        &exec[1].upstream.1["duplicate"],
        exec[1].answered,
    );
    assert_eq!(retry, (200, &json!(true), 200), "{ctx}");
    assert_eq!(&rig.serve.runs_by_runbook(), expected, "{ctx}");
    // One firing delivery per group, plus the retry; each recorded once.
    assert_eq!(log.len(), SEED.len() + 1, "{ctx}");
    assert_eq!(rig.serve.deliveries_recorded(), 5, "{ctx}");
    for e in &log {
        assert_eq!(e.path, "/hooks/alertmanager");
        assert_eq!(e.authorization, format!("Bearer {TOKEN}"), "{ctx}");
        assert!(
            e.user_agent.starts_with("Alertmanager/"),
            "{}",
            e.user_agent
        );
        assert_eq!(e.status(), "firing");
    }
    let two = log
        .iter()
        .find(|e| e.alertname() == "CircuitBreakerOpen")
        .unwrap();
    assert_eq!(two.json()["alerts"].as_array().unwrap().len(), 2, "{ctx}");
    assert_eq!(two.upstream.1["started"], 2, "{ctx}");

    // Each run left its problem: one incident per (runbook, alert).
    let open: Vec<String> = expected
        .iter()
        .flat_map(|(rb, inst)| std::iter::repeat_n(rb.clone(), inst.len()))
        .collect();
    // Written as each run is settled, just after the run is listed.
    wait_for("one incident per alert", Duration::from_secs(15), || {
        (rig.serve.open_incidents() == open).then_some(())
    });
    assert_eq!(rig.serve.open_incidents(), open, "{ctx}");
}

/// Prometheus ends the alerts: Alertmanager sends `resolved`, the incidents close, and
/// nothing new runs.
fn resolved_all(
    rig: &Rig,
    started: chrono::DateTime<chrono::Utc>,
    expected: &BTreeMap<String, Vec<String>>,
) {
    // Ended a moment ago (and after it started, or the API refuses it).
    let ended = (chrono::Utc::now() - chrono::Duration::milliseconds(500))
        .max(started + chrono::Duration::milliseconds(1));
    rig.am.push(&alerts(started, ended));
    wait_for("every incident resolved", Duration::from_secs(15), || {
        rig.serve.open_incidents().is_empty().then_some(())
    });
    let log = rig.proxy.log();
    let ctx = rig.context();
    // Everything after the firing phase (one delivery per group, and the retry): the
    // resolved notifications, one per group unless a group_interval tick fell between the
    // two `CircuitBreakerOpen` updates. Each answered 200, and together they close all six.
    let after = &log[SEED.len() + 1..];
    assert!(after.len() >= SEED.len(), "{ctx}");
    let closed: u64 = after
        .iter()
        .map(|e| {
            assert_eq!((e.upstream.0, e.answered), (200, 200), "{ctx}");
            assert_eq!(e.upstream.1["started"], 0, "{ctx}");
            e.upstream.1["resolved"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(closed, 6, "{ctx}");
    for (alert, _) in SEED {
        assert!(
            after
                .iter()
                .any(|e| e.alertname() == alert && e.status() == "resolved"),
            "no resolved notification for {alert}\n{ctx}"
        );
    }
    assert_eq!(&rig.serve.runs_by_runbook(), expected, "{ctx}");
    let metrics = rig.serve.get("/metrics");
    assert!(
        metrics.contains(
            "runbook_runs_total{runbook=\"e2e-circuit-breaker\",outcome=\"problem_remains\"} 2"
        ),
        "{metrics}"
    );
    // Every delivery Alertmanager made was answered 200 by the server; none refused.
    assert_eq!(
        rig.serve.deliveries_metric(200),
        log.len() as u64,
        "{metrics}"
    );
    assert_eq!(rig.serve.deliveries_metric(401), 0, "{metrics}");
}

#[test]
fn a_wrong_token_in_alertmanager_is_refused_and_starts_nothing() {
    let rig = Rig::start("not-the-token", None, "1h");
    rig.am.push(&alerts(
        chrono::Utc::now(),
        chrono::Utc::now() + chrono::Duration::hours(1),
    ));
    // Every group is tried and refused. Alertmanager does not retry a 4xx within a flush, but
    // tries again at the next group_interval: at least one 401 per group.
    wait_for("a 401 for every group", Duration::from_secs(15), || {
        (rig.serve.deliveries_metric(401) >= SEED.len() as u64).then_some(())
    });
    let ctx = rig.context();
    let log = rig.proxy.log();
    assert!(!log.is_empty(), "{ctx}");
    for e in &log {
        assert_eq!(e.authorization, "Bearer not-the-token", "{ctx}");
        assert_eq!((e.upstream.0, e.answered), (401, 401), "{ctx}");
    }
    assert!(
        rig.am.metrics().lines().any(|l| l
            .starts_with("alertmanager_notifications_failed_total{integration=\"webhook\"")
            && !l.ends_with(" 0")),
        "Alertmanager counts the failures:\n{}",
        rig.am.metrics()
    );
    assert!(rig.serve.webhook_runs().is_empty(), "{ctx}");
    assert_eq!(rig.serve.deliveries_recorded(), 0, "{ctx}");
    assert!(rig.serve.open_incidents().is_empty(), "{ctx}");
    assert_eq!(rig.serve.deliveries_metric(200), 0, "{ctx}");
}

/// An alert that fires, resolves, and fires again (a new `startsAt`) is a new episode and must
/// run its runbook again (no cooldown here, so only the dedup can stop it).
#[test]
fn an_alert_that_fires_again_after_resolving_runs_again() {
    let rig = Rig::start(TOKEN, None, "0s");
    let sse = |v: Value| -> Value {
        Value::Array(
            v.as_array()
                .unwrap()
                .iter()
                .filter(|a| a["labels"]["alertname"] == "SseAvailabilitySLOViolation")
                .cloned()
                .collect(),
        )
    };
    let runs = || {
        rig.serve
            .webhook_runs()
            .iter()
            .filter(|r| r["runbook"] == "e2e-sse-availability" && r["finished_at"].is_string())
            .count()
    };
    let first = chrono::Utc::now() - chrono::Duration::minutes(10);
    rig.am
        .push(&sse(alerts(first, first + chrono::Duration::hours(1))));
    wait_for("the first run", Duration::from_secs(15), || {
        (runs() == 1).then_some(())
    });
    rig.am.push(&sse(alerts(
        first,
        chrono::Utc::now() - chrono::Duration::seconds(1),
    )));
    wait_for("the incident resolved", Duration::from_secs(15), || {
        rig.serve.open_incidents().is_empty().then_some(())
    });
    let again = chrono::Utc::now() - chrono::Duration::seconds(5);
    rig.am
        .push(&sse(alerts(again, again + chrono::Duration::hours(1))));
    wait_for(
        "the firing notification of the second episode",
        Duration::from_secs(15),
        || {
            (rig.proxy
                .log()
                .iter()
                .filter(|e| e.status() == "firing")
                .count()
                >= 2)
                .then_some(())
        },
    );
    let ctx = rig.context();
    wait_for(
        &format!("a second run for the second episode\n{ctx}"),
        Duration::from_secs(10),
        || (runs() == 2).then_some(()),
    );
}

/// The bodies a real Alertmanager sent (kept by `RUNBOOK_CAPTURE=1`) parse, and mean what
/// they say.
#[test]
fn captured_alertmanager_bodies_parse() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CAPTURED)
        .unwrap_or_else(|e| panic!("{CAPTURED}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "captured fixtures: {files:?}");
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(path).unwrap();
        let d =
            parse_alertmanager(&body, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = if name.contains("resolved") {
            Status::Resolved
        } else {
            Status::Firing
        };
        assert_eq!(d.status, want, "{name}");
        assert_eq!(d.receiver, "runbook", "{name}");
        assert_eq!(d.truncated_alerts, 0, "{name}");
        let alertname = d.alerts[0].alertname().unwrap().to_owned();
        assert_eq!(
            d.group_key,
            format!("{{}}:{{alertname=\"{alertname}\"}}"),
            "{name}"
        );
        let expected_alerts = if name.contains("two-alerts") { 2 } else { 1 };
        assert_eq!(d.alerts.len(), expected_alerts, "{name}");
        for a in &d.alerts {
            assert_eq!(a.status, want, "{name}");
            assert_eq!(a.alertname(), Some(alertname.as_str()), "{name}");
            // Alertmanager's fingerprint is the FNV-1a hash we compute ourselves.
            assert_eq!(a.fingerprint, label_fingerprint(&a.labels), "{name}");
            assert!(a.starts_at.is_some(), "{name}");
            // Firing: Go's zero time, read as "no end"; resolved: when it ended.
            assert_eq!(a.ends_at.is_some(), want == Status::Resolved, "{name}");
            // Go escapes `&` as `\u0026`; parsed, it is `&` again.
            let url = a.generator_url.as_deref().unwrap();
            assert!(url.ends_with("&g0.tab=1"), "{name}: {url}");
            assert!(a.annotations["runbook_url"].contains("&lang=en"), "{name}");
        }
        // The raw body is Go's encoding, escaped `&` and all.
        assert!(
            String::from_utf8_lossy(&body).contains("\\u0026g0.tab=1"),
            "{name}"
        );
    }
}
