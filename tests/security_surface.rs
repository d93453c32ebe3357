//! Who can start what, over the real server (docs/security.md reads its table from here):
//! every route of `runbook serve`, without credentials, with wrong ones and with right ones;
//! and an unauthenticated loopback server against what a browser sends on behalf of another
//! site (a cross-site form post, a DNS-rebound page).

mod common;
mod record;

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HOST, LOCATION, ORIGIN};
use serde_json::{Value, json};

use common::{Case, SSE_DOWN, Server, TOKEN};

fn firing(fingerprint: &str) -> Value {
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"SseAvailabilitySLOViolation\"}}/{fingerprint}"),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "runbook",
        "groupLabels": { "alertname": "SseAvailabilitySLOViolation" },
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": { "alertname": "SseAvailabilitySLOViolation" },
            "annotations": {},
            "startsAt": "2026-11-23T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": fingerprint,
        }],
    })
}

/// `(method, path, body)`: every route but the two public ones and the login form.
const GUARDED: &[(&str, &str, &str)] = &[
    ("POST", "/hooks/alertmanager", "alert"),
    ("POST", "/hooks/grafana", "{}"),
    ("POST", "/hooks/generic", r#"{"runbook":"sse-down"}"#),
    ("GET", "/api/runs", ""),
    ("GET", "/api/runs/r-1", ""),
    ("POST", "/api/runs/r-1/approve", "{}"),
    ("GET", "/api/incidents", ""),
    ("POST", "/api/incidents/1/ack", ""),
    ("GET", "/", ""),
    ("GET", "/runs", ""),
    ("GET", "/runs/r-1", ""),
    ("GET", "/incidents", ""),
    ("GET", "/runbooks", ""),
    ("GET", "/dashboard/events", ""),
];

fn send(s: &Server, method: &str, path: &str, body: &str, auth: Option<&str>) -> (u16, String) {
    let m = if method == "GET" {
        Method::GET
    } else {
        Method::POST
    };
    let body = if body == "alert" {
        firing("f-surface").to_string()
    } else {
        body.to_owned()
    };
    let mut req = s.http(m, path);
    if method == "POST" {
        req = req.header(CONTENT_TYPE, "application/json").body(body);
    }
    if let Some(t) = auth {
        req = req.bearer_auth(t);
    }
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let resp = client.execute(req.build().unwrap()).unwrap();
    let code = resp.status().as_u16();
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // A 200 may be the dashboard's endless event stream: its body is not read.
    let text = if code == 200 {
        String::new()
    } else {
        resp.text().unwrap_or_default()
    };
    (code, location.unwrap_or(text))
}

#[test]
fn with_credentials_every_route_but_healthz_and_metrics_wants_them() {
    let case = Case::new(&[("sse-down", SSE_DOWN)]);
    let s = case.serve(&[]);
    for &(method, path, body) in GUARDED {
        for auth in [None, Some("wrong-token")] {
            let (code, why) = send(&s, method, path, body, auth);
            let refused = code == 401 || (code == 303 && why.starts_with("/login"));
            assert!(
                refused,
                "{method} {path} with {auth:?}: {code} {why} (expected 401, or 303 to /login)"
            );
        }
    }
    assert_eq!(
        case.sql("SELECT COUNT(*) FROM runs"),
        0,
        "a refused request ran"
    );
    for path in ["/healthz", "/metrics", "/login"] {
        assert_eq!(send(&s, "GET", path, "", None).0, 200, "{path}");
    }
    // The right token opens each one (the generic hook wants its HMAC signature, which no
    // token replaces; the test ids do not exist: 404 is past the door).
    for &(method, path, body) in GUARDED {
        let (code, why) = send(&s, method, path, body, Some(TOKEN));
        if path == "/hooks/generic" {
            assert_eq!(code, 401, "{why}");
            assert!(why.contains("HMAC"), "{why}");
        } else {
            assert!(
                code != 401 && code != 303 && code != 403,
                "{method} {path} with the token: {code} {why}"
            );
        }
    }
    record::row(
        file!(),
        "with_credentials_every_route_but_healthz_and_metrics_wants_them",
        "every route of `serve` with no token, a wrong one and the right one",
        &format!("{} routes x 3 credentials, 3 public routes", GUARDED.len()),
        "401 (or 303 to /login) without the right token, nothing run; the generic hook wants its HMAC whatever the token",
    );
}

#[test]
fn an_open_loopback_server_refuses_what_a_browser_sends_for_another_site() {
    let case = Case::new(&[("sse-down", SSE_DOWN)]);
    let s = Server::start(
        &case.path("runbooks"),
        &case.db(),
        &case.path("serve.log"),
        &["--cooldown", "1h"],
    );
    // Alertmanager (no Origin, a loopback Host) gets in and opens an incident.
    let (code, r) = s.post(
        "/hooks/alertmanager",
        None,
        firing("f-open").to_string().as_bytes(),
    );
    assert_eq!((code, r["started"].clone()), (200, json!(1)), "{r}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while case.sql("SELECT COUNT(*) FROM incidents WHERE status = 'open'") == 0 {
        assert!(std::time::Instant::now() < deadline, "no incident opened");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let id = case.sql("SELECT id FROM incidents WHERE status = 'open'");
    let ack = format!("/api/incidents/{id}/ack");

    // A page on another site posts a form: no preflight, an empty body is a valid ack.
    let cross_site = s
        .http(Method::POST, &ack)
        .header(ORIGIN, "https://evil.example")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .send()
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
    assert!(cross_site.text().unwrap().contains("another site"));
    // A DNS-rebound page is same-origin, but its Host names the attacker's domain.
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    for (method, path) in [(Method::POST, ack.as_str()), (Method::GET, "/api/runs")] {
        let rebound = s
            .http(method, path)
            .header(HOST, format!("evil.example:{port}"))
            .header(ORIGIN, format!("http://evil.example:{port}"))
            .header(CONTENT_TYPE, "application/json")
            .body(firing("f-rebound").to_string())
            .send()
            .unwrap();
        assert_eq!(rebound.status().as_u16(), 403, "{path}");
        assert!(rebound.text().unwrap().contains("not a loopback name"));
    }
    let rebound_alert = s
        .http(Method::POST, "/hooks/alertmanager")
        .header(HOST, format!("evil.example:{port}"))
        .header(CONTENT_TYPE, "application/json")
        .body(firing("f-rebound").to_string())
        .send()
        .unwrap();
    assert_eq!(rebound_alert.status().as_u16(), 403);
    assert_eq!(
        case.sql("SELECT COUNT(*) FROM incidents WHERE status = 'open'"),
        1,
        "the refused ack silenced the incident"
    );
    assert_eq!(
        case.sql("SELECT COUNT(*) FROM runs"),
        1,
        "a refused alert ran"
    );

    // The same ack from the host's own tools (no Origin) is taken: the door is the browser's.
    let (code, r) = s.post(&ack, None, b"");
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        case.sql("SELECT COUNT(*) FROM incidents WHERE status = 'acked'"),
        1
    );
    record::row(
        file!(),
        "an_open_loopback_server_refuses_what_a_browser_sends_for_another_site",
        "a cross-site form post (ack) and DNS-rebound requests (ack, read, alert) to a `serve` with no credentials",
        "4 requests",
        "403 for each, the incident still open, no run; the same ack from a local tool (no Origin) taken",
    );
}

/// A runbook whose check URL an alert label may set, pinned to 127.0.0.1.
const PINNED: &str = r#"runbook: pinned
title: Pinned target (test)
severity: P3
triggers:
  alerts: [PinnedDown]
params:
  target: { type: url, default: "http://127.0.0.1:9/pinned", from: alert.labels.target, hosts: [127.0.0.1] }
checks:
  - id: reach
    probe: http
    with: { url: "{{ params.target }}" }
    timeout: 1s
    expect: "status == 200"
causes:
  - id: down
    title: Down
    when: checks.reach.failed
    escalate: L1
escalation: { ladder: p3d }
"#;

#[test]
fn an_alert_cannot_point_a_pinned_param_at_another_host_nor_can_set() {
    let case = Case::new(&[("pinned", PINNED)]);
    let s = case.serve(&[]);
    let mut body = firing("f-pinned");
    body["groupLabels"]["alertname"] = json!("PinnedDown");
    // `localhost` is loopback too, but not among the param's hosts; userinfo does not fool it.
    for (fp, target) in [
        ("f-1", "http://localhost:9/stolen"),
        ("f-2", "http://127.0.0.1@localhost:9/stolen"),
        ("f-3", "http://127.0.0.1:9/allowed"),
    ] {
        body["alerts"][0]["fingerprint"] = json!(fp);
        body["alerts"][0]["labels"] = json!({ "alertname": "PinnedDown", "target": target });
        body["groupKey"] = json!(format!("pinned/{fp}"));
        let (code, r) = s.post(
            "/hooks/alertmanager",
            Some(TOKEN),
            body.to_string().as_bytes(),
        );
        assert_eq!((code, r["started"].clone()), (200, json!(1)), "{r}");
    }
    let runs = s.runs("webhook", 3);
    assert_eq!(runs.len(), 3);
    let conn = rusqlite::Connection::open(case.db()).unwrap();
    let mut urls: Vec<String> = conn
        .prepare("SELECT json_extract(inputs, '$.with.url') FROM steps WHERE step_id = 'reach'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    urls.sort();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:9/allowed",
            "http://127.0.0.1:9/pinned",
            "http://127.0.0.1:9/pinned"
        ]
    );
    drop(s);

    // At the terminal, `--set` to another host is an error, not a silent default.
    let out = std::process::Command::new(insta_cmd::get_cargo_bin("runbook"))
        .arg("--runbooks")
        .arg(case.path("runbooks"))
        .args(["plan", "pinned", "--set", "target=http://localhost:9/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("host `localhost` is not one this param may name (127.0.0.1)"),
        "{err}"
    );
    record::row(
        file!(),
        "an_alert_cannot_point_a_pinned_param_at_another_host_nor_can_set",
        "alert labels pointing a `hosts:`-pinned URL param at another host (plain, and hidden behind userinfo); `--set` to another host",
        "3 alerts, 1 `plan --set`",
        "the default kept for the foreign hosts, the allowed one used; `--set` exit 2 naming the host",
    );
}

#[test]
fn an_api_token_of_its_own_keeps_alert_senders_out_of_approvals_and_the_dashboard() {
    let case = Case::new(&[("sse-down", SSE_DOWN)]);
    let api = case.secret_file("api-token", "api-token-5c1d\n");
    let s = case.serve(&["--api-token-file", api.to_str().unwrap()]);
    // Alertmanager's token still delivers...
    let (code, r) = s.post(
        "/hooks/alertmanager",
        Some(TOKEN),
        firing("f-api").to_string().as_bytes(),
    );
    assert_eq!((code, r["started"].clone()), (200, json!(1)), "{r}");
    // ...and opens nothing else; the API's token opens those and delivers nothing.
    for &(method, path, body) in GUARDED.iter().filter(|g| !g.1.starts_with("/hooks/")) {
        let (code, why) = send(&s, method, path, body, Some(TOKEN));
        assert!(
            code == 401 || (code == 303 && why.starts_with("/login")),
            "{method} {path} with the delivery token: {code} {why}"
        );
        let (code, why) = send(&s, method, path, body, Some("api-token-5c1d"));
        assert!(
            ![401, 403, 303].contains(&code),
            "{method} {path} with the API token: {code} {why}"
        );
    }
    let (code, _) = send(
        &s,
        "POST",
        "/hooks/alertmanager",
        "alert",
        Some("api-token-5c1d"),
    );
    assert_eq!(code, 401);
    // The dashboard's login takes the API token only.
    for (token, expected) in [(TOKEN, 401), ("api-token-5c1d", 303)] {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = client
            .post(format!("{}/login", s.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("token={token}&next=%2F"))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), expected, "login with {token}");
    }
    record::row(
        file!(),
        "an_api_token_of_its_own_keeps_alert_senders_out_of_approvals_and_the_dashboard",
        "the delivery token against the API and dashboard, and the API token against the hook, with `--api-token-file`",
        &format!(
            "{} API/dashboard routes x 2 tokens, the hook, 2 logins",
            GUARDED
                .iter()
                .filter(|g| !g.1.starts_with("/hooks/"))
                .count()
        ),
        "each token opens only its own doors",
    );
}

#[test]
fn serve_refuses_runbooks_every_user_may_write() {
    use std::os::unix::fs::PermissionsExt;
    let case = Case::new(&[("sse-down", SSE_DOWN)]);
    let file = case.path("runbooks/sse-down.yaml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = std::process::Command::new(insta_cmd::get_cargo_bin("runbook"))
        .arg("--runbooks")
        .arg(case.path("runbooks"))
        .arg("--db")
        .arg(case.db())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sse-down.yaml` is writable by every user"),
        "{err}"
    );
    // Group-writable is a choice (a team's group); only `o+w` is refused.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
    let s = case.serve(&[]);
    assert_eq!(s.get("/healthz", None).0, 200);
    record::row(
        file!(),
        "serve_refuses_runbooks_every_user_may_write",
        "`serve` on a runbook file of mode 0666, then 0664",
        "2 starts",
        "0666 refused (exit 2, the file named); 0664 served",
    );
}
