//! The dashboard of `runbook serve` (`src/serve/dashboard/`), end to end: the real binary on a
//! loopback port, real runs (an Alertmanager delivery, and `runbook run` into the same audit
//! file), then
//! - over HTTP: who gets in (bearer, basic, the login cookie) and who does not (401, or the
//!   login form for a browser), login and logout, the run filters, a run's steps, `/api/runs`
//!   behind the same credentials, escaping of hostile titles and labels, the live stream;
//! - in headless Chromium (`tests/browser`): logging in through the form, each page without a
//!   console error or a request past loopback, the run's steps and the incident's level as the
//!   API has them, and a new run showing up on the open runs page without navigation.
//!
//! Screenshots: `target/test-artifacts/dashboard-*.png`. Every wait is bounded.

mod browser;
mod common;

use std::fmt::Write as _;
use std::io::Read as _;
use std::process::Command;
use std::time::{Duration, Instant};

use insta_cmd::get_cargo_bin;
use reqwest::Method;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use browser::Browser;
use common::{Case, SSE_DOWN, Server, TOKEN};

/// What a hostile runbook title or alert label holds.
const XSS: &str = "<script>alert(1)</script>";
/// The same, as the pages must show it (minijinja's HTML escaping).
const XSS_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;";

/// A healthy runbook run from the CLI, whose title is markup.
const HOSTILE: &str = r#"runbook: hostile
title: "<script>alert(1)</script> (test)"
severity: P3
checks:
  - id: root_exists
    probe: file
    with: { path: "/" }
    expect: "exists"
"#;

/// A run that takes a few seconds: its page is open while it goes on.
const SLOW: &str = r#"runbook: slow
title: Slow (test)
severity: P3
checks:
  - id: takes_a_while
    probe: command
    with: { run: ["sleep", "3"] }
    expect: "exit_code == 0"
"#;

/// The basic auth user the servers here also accept.
const USER: &str = "admin";
const PASSWORD: &str = "basic-pass-81c2";

/// Wait (bounded) until `f` gives something.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A case with the incident-opening `sse-down` and the `hostile` runbook, served with the
/// token and basic auth; one alert delivered (its run finished, its incident open) and one
/// CLI run of `hostile` recorded.
fn served() -> (Case, Server) {
    let case = Case::new(&[("sse-down", SSE_DOWN), ("hostile", HOSTILE), ("slow", SLOW)]);
    let password = case.secret_file("password", &format!("{PASSWORD}\n"));
    let s = case.serve(&[
        "--basic-auth-user",
        USER,
        "--basic-auth-password-file",
        password.to_str().unwrap(),
    ]);
    alert(&s, "fp-dash-0001");
    let runs = s.runs("webhook", 1);
    assert_eq!(runs.len(), 1, "{runs:?}");
    cli_run(&case, "hostile");
    eventually("the incident of the alert", || {
        let (code, v) = s.get("/api/incidents", Some(TOKEN));
        assert_eq!(code, 200, "{v}");
        (v["incidents"].as_array()?.len() == 1).then_some(())
    });
    (case, s)
}

/// An Alertmanager delivery of `SseAvailabilitySLOViolation` with a hostile label.
fn alert(s: &Server, fingerprint: &str) {
    let body = json!({
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
            "labels": {
                "alertname": "SseAvailabilitySLOViolation",
                "instance": "sse-1:9100",
                "note": XSS,
            },
            "annotations": {},
            "startsAt": "2026-11-23T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": fingerprint,
        }],
    });
    let (code, r) = s.post(
        "/hooks/alertmanager",
        Some(TOKEN),
        body.to_string().as_bytes(),
    );
    assert_eq!((code, r["started"].clone()), (200, json!(1)), "{r}");
}

/// `runbook run NAME` into the case's audit file, next to the server.
fn runbook_run(case: &Case, name: &str) -> Command {
    let mut cmd = Command::new(get_cargo_bin("runbook"));
    cmd.arg("--runbooks")
        .arg(case.path("runbooks"))
        .arg("--db")
        .arg(case.db())
        .args(["run", name]);
    cmd
}

/// [`runbook_run`] to its end, which must be healthy.
fn cli_run(case: &Case, name: &str) {
    let out = runbook_run(case, name).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client that does not follow redirects (to see them), straight to loopback.
fn client() -> Client {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// How a request presents itself.
#[derive(Clone, Copy)]
enum Who<'a> {
    /// No credentials, not a browser.
    Anonymous,
    /// No credentials, a browser's navigation (`Accept: text/html`).
    Browser,
    Bearer,
    Basic,
    /// The login cookie `runbook_session=ID`.
    Cookie(&'a str),
}

fn send(s: &Server, method: Method, path: &str, who: Who<'_>) -> Response {
    let mut req = client().request(method, format!("{}{path}", s.base));
    req = match who {
        Who::Anonymous => req,
        Who::Browser => req.header("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        Who::Bearer => req.bearer_auth(TOKEN),
        Who::Basic => req.basic_auth(USER, Some(PASSWORD)),
        Who::Cookie(id) => req.header("cookie", format!("runbook_session={id}")),
    };
    req.send().unwrap()
}

/// `GET path` as `who`: the status and, for a redirect, where to; the body (an event stream
/// is not read).
fn get(s: &Server, path: &str, who: Who<'_>) -> (u16, String) {
    let resp = send(s, Method::GET, path, who);
    let code = resp.status().as_u16();
    let streaming = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if let Some(to) = resp.headers().get("location") {
        return (code, to.to_str().unwrap().to_owned());
    }
    if streaming {
        return (code, "(event stream)".into());
    }
    (code, resp.text().unwrap())
}

/// `POST /login` with `token` (and `extra` headers): the response.
fn login(s: &Server, token: &str, extra: &[(&str, &str)]) -> Response {
    let mut req = client()
        .post(format!("{}/login", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}&next=%2Fincidents", form_value(token)));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

/// `value` percent-encoded for a form body.
fn form_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The session id a successful login set.
fn session_of(resp: &Response) -> String {
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {resp:?}"))
        .to_str()
        .unwrap();
    let (pair, _) = cookie.split_once(';').unwrap();
    pair.strip_prefix("runbook_session=").unwrap().to_owned()
}

/// The values of attribute `attr` of the elements of `html` that carry it, in order.
fn attrs(html: &str, attr: &str) -> Vec<String> {
    let re = regex::Regex::new(&format!(r#"\s{attr}="([^"]*)""#)).unwrap();
    re.captures_iter(html).map(|c| c[1].to_owned()).collect()
}

/// The step rows of a run's page (the tags with `data-step-kind`): (kind, step id, status).
fn step_rows(html: &str) -> Vec<(String, String, String)> {
    let tag = regex::Regex::new(r"<[^>]*\sdata-step-kind=[^>]*>").unwrap();
    tag.find_iter(html)
        .map(|t| {
            let one = |attr: &str| attrs(t.as_str(), attr).pop().unwrap_or_default();
            (
                one("data-step-kind"),
                one("data-step-id"),
                one("data-status"),
            )
        })
        .collect()
}

/// The run ids listed on a runs page.
fn listed(html: &str) -> Vec<String> {
    attrs(html, "data-run-id")
}

/// Runs from `/api/runs`, newest first.
fn api_runs(s: &Server) -> Vec<Value> {
    let (code, v) = s.get("/api/runs", Some(TOKEN));
    assert_eq!(code, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// A run's steps as `/api/runs/ID` has them: (kind, step id, status or `intent`).
fn api_steps(s: &Server, run: &str) -> Vec<(String, String, String)> {
    let (code, v) = s.get(&format!("/api/runs/{run}"), Some(TOKEN));
    assert_eq!(code, 200, "{v}");
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| {
            (
                st["kind"].as_str().unwrap().to_owned(),
                st["step_id"].as_str().unwrap().to_owned(),
                st["status"].as_str().unwrap_or("intent").to_owned(),
            )
        })
        .collect()
}

#[test]
fn pages_take_the_api_credentials_or_a_login_cookie_and_nothing_else() {
    let (case, s) = served();
    let run = s.runs("webhook", 1)[0]["id"].as_str().unwrap().to_owned();

    let resp = login(&s, TOKEN, &[]);
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/incidents",
        "back where it was"
    );
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let session = session_of(&resp);
    assert_eq!(session.len(), 64, "{session}");

    // Each page as each caller: a table, snapshotted.
    let run_path = format!("/runs/{run}");
    let mut table = String::new();
    for path in [
        "/",
        "/runs",
        run_path.as_str(),
        "/incidents",
        "/runbooks",
        "/dashboard/events",
    ] {
        let shown = if path == run_path { "/runs/RUN" } else { path };
        let _ = write!(table, "GET {shown:<18}");
        for (name, who) in [
            ("anonymous", Who::Anonymous),
            ("browser", Who::Browser),
            ("bearer", Who::Bearer),
            ("basic", Who::Basic),
            ("cookie", Who::Cookie(&session)),
            ("bad cookie", Who::Cookie(&"0".repeat(64))),
        ] {
            let (code, body) = get(&s, path, who);
            let to = if code == 303 {
                format!(" {}", body.replace(&run, "RUN"))
            } else {
                String::new()
            };
            let _ = write!(table, " | {name} {code}{to}");
        }
        table.push('\n');
    }
    insta::assert_snapshot!("who_gets_in", table);

    // The API's run listing is behind the same credentials now.
    for path in [
        "/api/runs",
        run_path.replace("/runs/", "/api/runs/").as_str(),
    ] {
        assert_eq!(s.get(path, None).0, 401, "{path}");
        assert_eq!(s.get(path, Some("wrong")).0, 401, "{path}");
        assert_eq!(s.get(path, Some(TOKEN)).0, 200, "{path}");
        let basic = s
            .http(Method::GET, path)
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .unwrap();
        assert_eq!(basic.status().as_u16(), 200, "{path}");
    }

    // A wrong token is refused: the form again, no cookie.
    let resp = login(&s, "not-the-token", &[]);
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp.text().unwrap().contains("That token is not accepted."));
    let resp = login(&s, "", &[]);
    assert_eq!(resp.status().as_u16(), 401, "an empty token");
    // A form posted from another site is refused even with the right token.
    let resp = login(&s, TOKEN, &[("origin", "http://evil.example")]);
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers().get("set-cookie").is_none());
    let resp = login(&s, TOKEN, &[("sec-fetch-site", "cross-site")]);
    assert_eq!(resp.status().as_u16(), 403);

    // The login form, as a browser first sees it (no nonce, no time in it).
    let (code, form) = get(&s, "/login?next=%2Fincidents", Who::Browser);
    assert_eq!(code, 200);
    let main = &form[form.find("<main").unwrap()..form.find("</main>").unwrap()];
    insta::assert_snapshot!("login_form", main);
    // Already let in: straight on, and never to another site.
    let (code, to) = get(&s, "/login?next=//evil.example/x", Who::Cookie(&session));
    assert_eq!((code, to.as_str()), (303, "/"));

    // Logout ends the session: the same cookie no longer opens anything.
    let out = client()
        .post(format!("{}/logout", s.base))
        .header("cookie", format!("runbook_session={session}"))
        .send()
        .unwrap();
    assert_eq!(out.status().as_u16(), 303);
    assert_eq!(out.headers()["location"], "/login");
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(get(&s, "/", Who::Cookie(&session)).0, 401);
    assert_eq!(get(&s, "/dashboard/events", Who::Cookie(&session)).0, 401);
    // Another login gets another session.
    let again = session_of(&login(&s, TOKEN, &[]));
    assert_ne!(again, session);
    assert_eq!(get(&s, "/", Who::Cookie(&again)).0, 200);
    drop(case);
}

#[test]
fn runs_filter_link_to_their_steps_and_hostile_text_comes_out_escaped() {
    let (case, s) = served();
    let all = api_runs(&s);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        case.sql("SELECT COUNT(*) FROM runs"),
        2,
        "one alert run, one CLI run"
    );
    let id_of = |rb: &str| {
        all.iter()
            .find(|r| r["runbook"] == rb)
            .unwrap_or_else(|| panic!("no run of {rb}: {all:?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (alerted, hostile) = (id_of("sse-down"), id_of("hostile"));

    let (code, page) = get(&s, "/", Who::Bearer);
    assert_eq!(code, 200);
    let newest_first: Vec<String> = all
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed(&page), newest_first, "every run, newest first");
    for (query, expected) in [
        ("?runbook=sse-down", vec![alerted.clone()]),
        ("?runbook=hostile", vec![hostile.clone()]),
        ("?outcome=healthy", vec![hostile.clone()]),
        ("?outcome=problem_remains", vec![alerted.clone()]),
        ("?runbook=sse-down&outcome=healthy", vec![]),
        ("?runbook=&outcome=", newest_first.clone()),
        ("?outcome=running", vec![]),
    ] {
        let (code, page) = get(&s, &format!("/{query}"), Who::Bearer);
        assert_eq!(code, 200, "{query}");
        assert_eq!(listed(&page), expected, "{query}");
    }
    assert!(
        page.contains(&format!("href=\"/runs/{alerted}\"")),
        "each run links to its page"
    );

    // A run's page lists its steps as the API has them, in order, with their statuses.
    let (code, run_page) = get(&s, &format!("/runs/{alerted}"), Who::Bearer);
    assert_eq!(code, 200, "{run_page}");
    let api = api_steps(&s, &alerted);
    assert!(!api.is_empty());
    assert_eq!(step_rows(&run_page), api);
    assert!(
        run_page.contains("id=\"dashboard-bar\""),
        "the dashboard's bar"
    );
    assert!(run_page.contains("class=\"runbook-graph"), "the step graph");
    let (code, _) = get(&s, "/runs/no-such-run", Who::Bearer);
    assert_eq!(code, 404);

    // Hostile text: escaped wherever it shows, never markup. (The post-mortem does not list
    // alert labels: the alert's run page must only not carry the label as markup.)
    let hostile_page = format!("/runs/{hostile}");
    let alerted_page = format!("/runs/{alerted}");
    let pages = [
        ("/", "runbook title and alert label", true),
        ("/incidents", "alert label", true),
        ("/runbooks", "runbook title", true),
        (hostile_page.as_str(), "runbook title", true),
        (alerted_page.as_str(), "alert label", false),
    ];
    for (path, what, shown) in pages {
        let (code, body) = get(&s, path, Who::Bearer);
        assert_eq!(code, 200, "{path}");
        assert!(!body.contains(XSS), "{path}: {what} came out as markup");
        if shown {
            assert!(
                body.contains(XSS_ESCAPED),
                "{path}: the {what} is not shown"
            );
        }
    }
    // Every page is self-contained and says so to the browser.
    let resp = send(&s, Method::GET, "/", Who::Bearer);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let body = resp.text().unwrap();
    for external in ["http://", "https://", "//fonts", "@import", "url("] {
        assert!(!body.contains(external), "{external} in the runs page");
    }
}

#[test]
fn the_event_stream_says_when_runs_and_incidents_change() {
    let (_case, s) = served();
    // A page rendered before anything happened hears about both at once.
    let mut resp = send(&s, Method::GET, "/dashboard/events?since=0/0@", Who::Bearer);
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !(seen.contains("event: runs") && seen.contains("event: incidents")) {
        let n = resp.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended with {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("retry: 500"), "{seen}");
    // A page rendered now hears nothing until a run starts, then `runs`.
    let (_, page) = get(&s, "/", Who::Bearer);
    let stamp = attrs(&page, "data-stamp").pop().unwrap();
    let mut resp = send(
        &s,
        Method::GET,
        &format!("/dashboard/events?since={}", stamp.replace('@', "%40")),
        Who::Bearer,
    );
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains("event: runs") {
            let n = resp.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        seen
    });
    // Nothing changed yet: the stream stays quiet.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!waiter.is_finished(), "an event with nothing changed");
    alert(&s, "fp-dash-0002");
    let seen = waiter.join().unwrap();
    assert!(
        seen.contains("event: runs"),
        "no `runs` event after a run started: {seen:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A page `open`ed cleanly: no console error, nothing fetched past loopback, a screenshot.
fn clean(page: &browser::Page) {
    assert!(page.errors.is_empty(), "{:?}", page.errors);
    assert!(page.external_requests().is_empty(), "{:?}", page.requests);
    assert!(std::fs::metadata(&page.screenshot).unwrap().len() > 1000);
}

/// Not logged in: sent to the form; in through it, back on the page asked for.
fn log_in(b: &Browser, s: &Server) {
    clean(&b.open(&format!("{}/incidents", s.base), "dashboard-login"));
    assert_eq!(b.script("return location.pathname"), "/login");
    b.script(&format!(
        "document.getElementById('token').value = '{TOKEN}';
         document.querySelector('form[action=\"/login\"]').submit(); return true;"
    ));
    eventually("the login to land on the incidents page", || {
        (b.script("return location.pathname") == "/incidents").then_some(())
    });
    assert_eq!(
        b.script("return document.cookie"),
        "",
        "the session cookie is HttpOnly"
    );
}

/// The runs page lists every run, shows the hostile label as text, and a run started after
/// it loaded shows up without navigation.
fn runs_page_follows_new_runs(b: &Browser, s: &Server, case: &Case) {
    clean(&b.open(&format!("{}/", s.base), "dashboard-runs"));
    let rows = b.script(
        "return Array.from(document.querySelectorAll('tr[data-run-id]')).map(r => r.dataset.runId)",
    );
    let api: Vec<Value> = api_runs(s).iter().map(|r| r["id"].clone()).collect();
    assert_eq!(rows, json!(api));
    assert_eq!(
        b.script("return document.querySelectorAll('main script').length"),
        0,
        "the hostile label is text"
    );
    let text = b.script("return document.querySelector('main').textContent");
    assert!(text.as_str().unwrap().contains(XSS), "and shown as written");

    eventually("the live stream to open", || {
        (b.script("return document.body.dataset.liveState") == "open").then_some(())
    });
    b.script("window.stillHere = 42; return true");
    cli_run(case, "hostile");
    let newest = api_runs(s)[0]["id"].as_str().unwrap().to_owned();
    assert!(!rows.as_array().unwrap().contains(&json!(newest)));
    eventually("the new run on the open page", || {
        let shown = b.script(&format!(
            "return document.querySelector('tr[data-run-id=\"{newest}\"]') !== null"
        ));
        (shown == true).then_some(())
    });
    assert_eq!(
        b.script("return window.stillHere"),
        42,
        "refreshed in place, not reloaded"
    );
    assert_ne!(
        b.script("return document.body.dataset.refreshed || '0'"),
        "0"
    );
    let shot = b.screenshot("dashboard-runs-live");
    assert!(std::fs::metadata(shot).unwrap().len() > 1000);
}

/// A run's page: the steps the API has, with their statuses, and the coloured graph.
fn run_page_shows_its_steps(b: &Browser, s: &Server) {
    let run = s.runs("webhook", 1)[0]["id"].as_str().unwrap().to_owned();
    clean(&b.open(&format!("{}/runs/{run}", s.base), "dashboard-run"));
    let steps = b.script(
        "return Array.from(document.querySelectorAll('[data-step-id][data-step-kind]'))
           .map(e => [e.dataset.stepKind, e.dataset.stepId, e.dataset.status])",
    );
    let expected: Vec<Value> = api_steps(s, &run)
        .into_iter()
        .map(|(k, i, st)| json!([k, i, st]))
        .collect();
    assert_eq!(steps, json!(expected));
    let nodes = b.script("return document.querySelectorAll('#graph svg g.node').length");
    assert!(nodes.as_u64().unwrap() > 0, "{nodes}");
}

/// The page of a run still going follows it in place until it ends.
fn run_page_follows_its_run(b: &Browser, s: &Server, case: &Case) {
    let mut child = runbook_run(case, "slow")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run = eventually("the slow run to start", || {
        api_runs(s)
            .into_iter()
            .find(|r| r["runbook"] == "slow" && r["finished_at"].is_null())
            .map(|r| r["id"].as_str().unwrap().to_owned())
    });
    clean(&b.open(&format!("{}/runs/{run}", s.base), "dashboard-run-going"));
    assert_eq!(
        b.script("return document.body.dataset.live"),
        "runs",
        "a run still going is followed"
    );
    b.script("window.stillHere = 7; return true");
    eventually("the run's end on its open page", || {
        (b.script("return document.body.hasAttribute('data-live')") == false).then_some(())
    });
    assert_eq!(b.script("return window.stillHere"), 7, "not reloaded");
    assert!(child.wait().unwrap().success());
    let steps = b.script(
        "return Array.from(document.querySelectorAll('[data-step-id][data-step-kind]'))
           .map(e => [e.dataset.stepKind, e.dataset.stepId, e.dataset.status])",
    );
    assert_eq!(steps, json!([["check", "takes_a_while", "ok"]]));
    assert_eq!(
        api_steps(s, &run),
        [(
            "check".to_owned(),
            "takes_a_while".to_owned(),
            "ok".to_owned()
        )]
    );
    b.screenshot("dashboard-run-ended");
}

/// The incidents page: the open incident at the level the API says, its clocks counting.
fn incidents_page_shows_the_level(b: &Browser, s: &Server) {
    clean(&b.open(&format!("{}/incidents", s.base), "dashboard-incidents"));
    let (_, api) = s.get("/api/incidents", Some(TOKEN));
    let open = &api["incidents"][0];
    let level = open["level"]["id"].as_str().unwrap_or("");
    assert!(!level.is_empty(), "the first level fires at once: {open}");
    let shown = b.script(
        "return Array.from(document.querySelectorAll('[data-incident-id]'))
           .map(e => [Number(e.dataset.incidentId), e.dataset.level, e.dataset.status])",
    );
    assert_eq!(shown, json!([[open["id"], level, open["status"]]]));
    let clock = b.script("return document.querySelector('.response [data-due]').textContent");
    let clock = clock.as_str().unwrap();
    assert!(
        clock.starts_with("in ") || clock.ends_with(" ago"),
        "{clock}"
    );
}

/// The runbooks page: each runbook with its plain graph, the hostile title as text.
fn runbooks_page_shows_graphs(b: &Browser, s: &Server) {
    clean(&b.open(&format!("{}/runbooks", s.base), "dashboard-runbooks"));
    let cards = b.script(
        "return Array.from(document.querySelectorAll('[data-runbook]'))
           .map(e => [e.dataset.runbook, e.querySelector('h2').textContent,
                      e.querySelectorAll('svg g.node').length > 0])",
    );
    assert_eq!(
        cards,
        json!([
            ["hostile", format!("{XSS} (test)"), true],
            ["slow", "Slow (test)", true],
            ["sse-down", "SSE down (test)", true]
        ])
    );
}

#[test]
fn in_a_browser_the_pages_show_the_runs_incidents_and_runbooks_and_follow_new_runs() {
    let (case, s) = served();
    let b = Browser::start();
    log_in(&b, &s);
    runs_page_follows_new_runs(&b, &s, &case);
    run_page_shows_its_steps(&b, &s);
    run_page_follows_its_run(&b, &s, &case);
    incidents_page_shows_the_level(&b, &s);
    runbooks_page_shows_graphs(&b, &s);
    // Logging out from the page ends the session.
    b.script("document.querySelector('form[action=\"/logout\"]').submit(); return true;");
    eventually("the logout", || {
        (b.script("return location.pathname") == "/login").then_some(())
    });
    b.open(&format!("{}/", s.base), "dashboard-after-logout");
    assert_eq!(b.script("return location.pathname"), "/login");
}
