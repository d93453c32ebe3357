//! The Aurora simulator itself: the control endpoint, each fault where the runbooks look for
//! it (HTTP, metrics, the Prometheus API, files, the programs in `bin/`), and what clears it.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use runbook::sim::{Fault, Sim};
use serde_json::Value;

mod sim_case;
use sim_case::SimCase;

struct Aurora {
    case: SimCase,
    http: reqwest::blocking::Client,
}

impl Aurora {
    fn start(faults: &[Fault]) -> Aurora {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        Aurora {
            case: SimCase::start(faults),
            http,
        }
    }

    fn sim(&self) -> &Sim {
        self.case.sim()
    }

    fn param(&self, k: &str) -> String {
        self.sim().params()[k].clone()
    }

    fn get(&self, url: &str) -> Result<(u16, String), String> {
        self.http
            .get(url)
            .send()
            .map(|r| {
                let s = r.status().as_u16();
                (s, r.text().unwrap_or_default())
            })
            .map_err(|e| e.to_string())
    }

    fn health(&self) -> Value {
        let (s, body) = self
            .get(&format!("{}/health", self.param("local_url")))
            .unwrap();
        assert_eq!(s, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// One sample's value from a /metrics page.
    fn metric(&self, base: &str, line_start: &str) -> f64 {
        let (_, text) = self.get(&format!("{base}/metrics")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("`{line_start}` not on the page:\n{text}"))
    }

    fn query(&self, q: &str) -> f64 {
        let (_, body) = self
            .get(&format!(
                "{}/api/v1/query?query={q}",
                self.param("prometheus")
            ))
            .unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// A program of the simulated host: (exit code, stdout, stderr).
    fn program(&self, name: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(self.param(name)).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn set_env(&self, key: &str, value: &str) {
        let path = self.param("env_file");
        let text = std::fs::read_to_string(&path).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key}=")) {
                    format!("{key}={value}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&path, text).unwrap();
    }

    fn control(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.sim().control_url()));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let r = req.send().unwrap();
        let s = r.status().as_u16();
        (s, r.json().unwrap_or(Value::Null))
    }
}

/// Wait (bounded) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not within 20 s: {what}");
}

#[test]
fn the_control_endpoint_sets_adds_and_clears_faults_and_refuses_unknown_ones() {
    let a = Aurora::start(&[]);
    let (s, v) = a.control(
        reqwest::Method::PUT,
        "/faults",
        Some(r#"{"faults": ["ece", "breaker"]}"#),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["faults"], serde_json::json!(["breaker", "ece"]));
    let (s, v) = a.control(reqwest::Method::POST, "/faults/deny-rate", None);
    assert_eq!(s, 200);
    assert_eq!(
        v["faults"],
        serde_json::json!(["deny-rate", "breaker", "ece"])
    );
    let (s, v) = a.control(reqwest::Method::DELETE, "/faults/ece", None);
    assert_eq!(s, 200);
    assert_eq!(v["faults"], serde_json::json!(["deny-rate", "breaker"]));
    let (s, v) = a.control(reqwest::Method::POST, "/faults/nope", None);
    assert_eq!(s, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unknown fault `nope`"),
        "{v}"
    );
    let (s, _) = a.control(
        reqwest::Method::PUT,
        "/faults",
        Some(r#"{"faults": ["down", "nope"]}"#),
    );
    assert_eq!(s, 400);
    // A refused list changes nothing.
    assert_eq!(a.sim().faults(), [Fault::DenyRate, Fault::Breaker]);
    let (s, v) = a.control(reqwest::Method::PUT, "/faults", Some(r#"{"faults": []}"#));
    assert_eq!(s, 200);
    assert_eq!(v["faults"], serde_json::json!([]));
}

#[test]
fn down_refuses_the_port_and_a_restart_through_systemctl_brings_it_back() {
    let a = Aurora::start(&[]);
    let local = a.param("local_url");
    let public = a.param("base_url");
    assert_eq!(a.get(&format!("{local}/healthz")).unwrap().0, 200);
    a.sim().fault_on(Fault::Down).unwrap();
    assert!(
        a.get(&format!("{local}/healthz")).is_err(),
        "the feed's port still answers"
    );
    assert_eq!(a.get(&format!("{public}/healthz")).unwrap().0, 502);
    let (code, out, _) = a.program(
        "systemctl",
        &["show", "aurora-live-feed", "--property=ActiveState"],
    );
    assert_eq!((code, out.as_str()), (0, "ActiveState=failed\n"));
    let (code, _, _) = a.program("systemctl", &["is-active", "aurora-live-feed"]);
    assert_eq!(code, 3);
    let (_, journal, _) = a.program(
        "journalctl",
        &["-u", "aurora-live-feed", "--since=-60s", "-o", "cat"],
    );
    assert!(journal.contains("status=9/KILL"), "{journal}");
    let (code, _, err) = a.program("systemctl", &["restart", "aurora-live-feed"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(a.get(&format!("{local}/healthz")).unwrap().0, 200);
    assert_eq!(a.get(&format!("{public}/healthz")).unwrap().0, 200);
    assert!(a.sim().faults().is_empty());
    assert_eq!(
        a.sim().calls().last().unwrap(),
        "systemctl restart aurora-live-feed"
    );
}

#[test]
fn nginx_down_refuses_the_public_side_only_and_reload_of_a_stopped_unit_fails() {
    let a = Aurora::start(&[Fault::NginxDown]);
    assert!(a.get(&format!("{}/healthz", a.param("base_url"))).is_err());
    assert_eq!(
        a.get(&format!("{}/healthz", a.param("local_url")))
            .unwrap()
            .0,
        200
    );
    let (code, _, err) = a.program("systemctl", &["reload", "nginx"]);
    assert_eq!(code, 1);
    assert!(err.contains("not active, cannot reload"), "{err}");
    assert_eq!(a.program("systemctl", &["restart", "nginx.service"]).0, 0);
    assert_eq!(
        a.get(&format!("{}/healthz", a.param("base_url")))
            .unwrap()
            .0,
        200
    );
}

/// The first SSE event within `wait`, with the token from the secrets file (or `None`).
fn first_event(a: &Aurora, wait: Duration) -> (u16, Option<String>, Option<String>) {
    let token = std::fs::read_to_string(a.param("token_file")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .timeout(wait)
        .no_proxy()
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/sse", a.param("base_url")))
        .bearer_auth(token.trim())
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let cors = resp
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut body = resp;
    let mut buf = [0u8; 512];
    let event = match body.read(&mut buf) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    };
    (status, cors, event)
}

#[test]
fn the_stream_wants_the_token_sends_cors_and_events_and_each_fault_breaks_its_part() {
    let a = Aurora::start(&[]);
    let (status, cors, event) = first_event(&a, Duration::from_secs(3));
    assert_eq!(status, 200);
    assert_eq!(cors.as_deref(), Some("*"));
    assert!(event.unwrap().contains("event: decision"));

    a.sim().fault_on(Fault::Auth).unwrap();
    let (status, _, _) = first_event(&a, Duration::from_secs(3));
    assert_eq!(status, 401);
    let (_, journal, _) = a.program("journalctl", &["-u", "aurora-live-feed"]);
    assert!(journal.contains("401 unauthorized"), "{journal}");
    a.sim().fault_off(Fault::Auth);

    a.sim().fault_on(Fault::Cors).unwrap();
    let (status, cors, _) = first_event(&a, Duration::from_secs(3));
    assert_eq!((status, cors), (200, None));
    a.sim().fault_off(Fault::Cors);

    a.sim().fault_on(Fault::DeadStream).unwrap();
    let before = a.metric(&a.param("local_url"), "sse_events_total ");
    let (status, _, event) = first_event(&a, Duration::from_millis(1500));
    assert_eq!(status, 200, "a dead stream still connects");
    assert_eq!(event, None, "a dead stream sent an event");
    let after = a.metric(&a.param("local_url"), "sse_events_total ");
    assert!(
        (after - before).abs() < 0.5,
        "events counted: {before} -> {after}"
    );
    // The producer is the runner: restarting it clears the stall.
    assert_eq!(a.program("systemctl", &["restart", "aurora-runner"]).0, 0);
    eventually("events flow again", || {
        a.metric(&a.param("local_url"), "sse_events_total ") > before
    });
}

#[test]
fn malformed_oversized_and_rotated_logs_show_in_the_files_and_the_tailer_stats() {
    let a = Aurora::start(&[Fault::Malformed, Fault::Oversized]);
    let events = a.param("events_file");
    eventually("the tailer counted both", || {
        let h = a.health();
        h["tailer_stats"]["malformed_lines"].as_u64() > Some(0)
            && h["tailer_stats"]["oversized_lines"].as_u64() > Some(0)
    });
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(
        text.lines()
            .any(|l| serde_json::from_str::<Value>(l).is_err() && l.len() < 1000)
    );
    assert!(text.lines().any(|l| l.len() > 1_048_576));
    let (_, journal, _) = a.program("journalctl", &["-u", "aurora-live-feed"]);
    assert!(journal.contains("Malformed JSON"), "{journal}");
    assert!(journal.contains("oversized line"), "{journal}");

    let a = Aurora::start(&[Fault::Rotation]);
    assert!(Path::new(&format!("{}.1", a.param("events_file"))).exists());
    assert!(a.health()["tailer_stats"]["file_positions"].is_null());
    assert_eq!(
        a.program("systemctl", &["restart", "aurora-live-feed"]).0,
        0
    );
    eventually("the tailer has positions again", || {
        a.health()["tailer_stats"]["file_positions"].is_object()
    });

    let a = Aurora::start(&[Fault::DataLoss]);
    let first = std::fs::read_to_string(a.param("events_file")).unwrap();
    assert!(serde_json::from_str::<Value>(first.lines().next().unwrap()).is_err());
}

#[test]
fn runner_faults_clear_only_with_the_runbooks_remedy_and_a_restart() {
    let a = Aurora::start(&[Fault::Latency, Fault::DenyRate, Fault::Breaker]);
    let runner = a.param("runner_url");
    assert!((a.query("exec:latency_p99:10m") - 460.0).abs() < 1e-9);
    assert!((a.query("policy:deny_ratio:15m") - 0.72).abs() < 1e-9);
    assert!((a.metric(&runner, "circuit_breaker_state ") - 2.0).abs() < 1e-9);
    assert_eq!(a.get(&a.param("exchange_status_url")).unwrap().0, 429);
    assert_eq!(a.health()["current_metrics"]["circuit_breaker"], "OPEN");
    // A restart alone changes nothing: the settings are the same.
    assert_eq!(a.program("systemctl", &["restart", "aurora-runner"]).0, 0);
    assert_eq!(a.sim().faults().len(), 3);
    a.set_env("DECISIONS_PER_MINUTE", "10");
    a.set_env("P_THRESHOLD", "0.5");
    a.set_env("KELLY_MULTIPLIER", "0.5");
    assert_eq!(a.sim().faults().len(), 3, "read only at the restart");
    assert_eq!(a.program("systemctl", &["restart", "aurora-runner"]).0, 0);
    assert!(a.sim().faults().is_empty(), "{:?}", a.sim().faults());
    assert!(a.query("exec:latency_p99:10m") < 300.0);
    assert!(a.query("policy:deny_ratio:15m") < 0.35);
    assert_eq!(a.get(&a.param("exchange_status_url")).unwrap().0, 200);
}

#[test]
fn queueing_shows_as_a_tail_far_above_the_median() {
    let a = Aurora::start(&[Fault::Queueing]);
    let probe = |q: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["probe", "prometheus", "--with"])
            .arg(format!("url={}/metrics", a.param("runner_url")))
            .args(["--with", "metric=exec_latency_ms", "--with"])
            .arg(format!("quantile={q}"))
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["result"]["quantile"].as_f64().unwrap()
    };
    let (p50, p99) = (probe("0.5"), probe("0.99"));
    assert!(p99 > 5.0 * p50, "p50 {p50}, p99 {p99}");
    assert!(a.query("exec:latency_p99:10m") > 300.0);
}

#[test]
fn ece_clears_with_a_recalibration_through_the_calibration_script() {
    let a = Aurora::start(&[Fault::Ece]);
    let runner = a.param("runner_url");
    assert!((a.metric(&runner, "calibration_ece ") - 0.09).abs() < 1e-9);
    assert!(a.metric(&runner, "calibration_age_seconds ") > 86_000.0);
    let out = Command::new("python3")
        .args(["tools/calibrate.py", "--force"])
        .current_dir(a.param("aurora_home"))
        .output()
        .expect("python3 runs (apt-get install -y python3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!((a.metric(&runner, "calibration_ece ") - 0.021).abs() < 1e-9);
    assert!(a.metric(&runner, "calibration_age_seconds ") < 60.0);
    assert!(a.sim().faults().is_empty());
}

#[test]
fn model_invalid_fails_the_models_validation() {
    let validate = |a: &Aurora| {
        Command::new("python3")
            .args(["-c", "import calibration; calibration.validate()"])
            .current_dir(a.param("aurora_home"))
            .env("PYTHONPATH", a.param("aurora_home"))
            .output()
            .expect("python3 runs")
    };
    let a = Aurora::start(&[]);
    assert!(validate(&a).status.success());
    a.sim().fault_on(Fault::ModelInvalid).unwrap();
    let out = validate(&a);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));
}

#[test]
fn clock_stops_chrony_and_a_restart_synchronises_it() {
    let a = Aurora::start(&[Fault::Clock]);
    let (code, _, err) = a.program("chronyc", &["-n", "tracking"]);
    assert_eq!(code, 1, "chrony is stopped: {err}");
    let (_, synced, _) = a.program("timedatectl", &["show", "-p", "NTPSynchronized", "--value"]);
    assert_eq!(synced, "no\n");
    assert_eq!(a.program("systemctl", &["restart", "chrony"]).0, 0);
    let (code, out, _) = a.program("chronyc", &["-n", "tracking"]);
    assert_eq!(code, 0);
    assert!(out.contains("Leap status     : Normal"), "{out}");
    let (_, synced, _) = a.program("timedatectl", &["show", "-p", "NTPSynchronized", "--value"]);
    assert_eq!(synced, "yes\n");
}

#[test]
fn the_programs_answer_what_the_runbooks_run_and_refuse_the_rest() {
    let a = Aurora::start(&[]);
    let (code, _, err) = a.program("nginx", &["-t"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("test is successful"));
    std::fs::write(a.param("nginx_site"), "server {\n").unwrap();
    let (code, _, err) = a.program("nginx", &["-t"]);
    assert_eq!(code, 1);
    assert!(err.contains("test failed"), "{err}");
    let (code, out, _) = a.program("ufw", &["status"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Status: active"));
    let (code, out, _) = a.program("sysctl", &["-w", "net.ipv4.tcp_low_latency=1"]);
    assert_eq!((code, out.as_str()), (0, "net.ipv4.tcp_low_latency = 1\n"));
    let (code, _, err) = a.program("systemctl", &["restart", "postgres"]);
    assert_eq!(code, 5);
    assert!(err.contains("Unit postgres.service not found"), "{err}");
    let (code, _, err) = a.program("ufw", &["disable"]);
    assert_eq!(code, 1);
    assert!(err.contains("answers only what the runbooks run"), "{err}");
    let (code, _, err) = a.program("journalctl", &["--since=yesterday", "-u", "nginx"]);
    assert_eq!(code, 1);
    assert!(err.contains("Failed to parse timestamp"), "{err}");
}

#[test]
fn the_processes_standing_for_the_units_follow_them_and_go_when_the_simulator_stops() {
    let a = Aurora::start(&[]);
    let pattern = a.param("process_pattern");
    let count = |p: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["probe", "process", "--with"])
            .arg(format!("cmdline={p}"))
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["result"]["count"].as_u64().unwrap()
    };
    assert_eq!(count(&pattern), 1);
    assert_eq!(count(&a.param("runner_process_pattern")), 1);
    a.sim().fault_on(Fault::Down).unwrap();
    eventually("the feed's process is gone", || count(&pattern) == 0);
    assert_eq!(a.program("systemctl", &["start", "aurora-live-feed"]).0, 0);
    eventually("the feed's process is back", || count(&pattern) == 1);
    drop(a);
    eventually("no process left", || count(&pattern) == 0);
}
