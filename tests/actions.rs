//! Every action against real temp files, real processes and a loopback HTTP server; and the
//! dry-run host refusing every mutation while `notify` still goes out.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use indexmap::IndexMap;
use runbook::actions::{
    ActionContext, ActionOutcome, NotifyTarget, SystemdOp, backup, http, notify, restore, run,
    set_env, shell, systemd,
};
use runbook::host::{DryRunHost, Host, RealHost};
use runbook::probes::http::HttpMethod;

const TIMEOUT: Duration = Duration::from_secs(10);

/// One request the loopback server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Answers `/status/<code>` with that code, anything else with 200, and records every request.
async fn record(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    log.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let status = uri
        .path()
        .strip_prefix("/status/")
        .and_then(|c| c.parse().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    (status, "answer body")
}

async fn server() -> (String, Log) {
    let log = Log::default();
    let app = Router::new().fallback(record).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, log)
}

fn cx<'a>(host: &'a dyn Host, env: &'a IndexMap<String, String>) -> ActionContext<'a> {
    ActionContext {
        runbook: "test-runbook",
        host,
        timeout: TIMEOUT,
        env,
        cwd: None,
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn detail_str<'o>(outcome: &'o ActionOutcome, key: &str) -> Option<&'o str> {
    outcome.detail.get(key).and_then(|v| v.as_str())
}

#[tokio::test]
async fn run_passes_argv_and_reports_exit() {
    let dir = tempfile::tempdir().unwrap();
    let host = RealHost::new();
    let env = IndexMap::new();
    let target = dir.path().join("made by run; rm -rf ~");
    let outcome = run::execute(&["/usr/bin/touch".into(), s(&target)], &cx(&host, &env)).await;
    assert!(outcome.ok, "{outcome:?}");
    assert!(target.exists());
    assert_eq!(outcome.detail["exit_code"], 0);

    let failing = script(dir.path(), "fail", "echo 'disk full' >&2; exit 3");
    let outcome = run::execute(&[s(&failing)], &cx(&host, &env)).await;
    assert!(!outcome.ok);
    assert!(outcome.summary.contains("exited 3"), "{}", outcome.summary);
    assert!(outcome.summary.contains("disk full"), "{}", outcome.summary);

    let outcome = run::execute(&["/nonexistent/tool".into()], &cx(&host, &env)).await;
    assert!(!outcome.ok);
    assert!(
        outcome.summary.contains("cannot start"),
        "{}",
        outcome.summary
    );

    let outcome = run::execute(&["/bin/echo".into(), "a\nb".into()], &cx(&host, &env)).await;
    assert!(!outcome.ok);
    assert!(outcome.summary.contains("refused"), "{}", outcome.summary);
}

#[tokio::test]
async fn run_honours_the_timeout() {
    let host = RealHost::new();
    let env = IndexMap::new();
    let mut cx = cx(&host, &env);
    cx.timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let outcome = run::execute(&["/bin/sleep".into(), "1000".into()], &cx).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!outcome.ok);
    assert!(outcome.summary.contains("timed out"), "{}", outcome.summary);
    assert_eq!(outcome.detail["timed_out"], true);
}

#[tokio::test]
async fn shell_gets_values_only_through_env() {
    let dir = tempfile::tempdir().unwrap();
    let host = RealHost::new();
    let out = dir.path().join("out");
    let hostile = "$(touch pwned) `id` ; 'q' \"d\"";
    let env = IndexMap::from([
        ("OUT".to_owned(), s(&out)),
        ("MSG".to_owned(), hostile.to_owned()),
    ]);
    let mut cx = cx(&host, &env);
    let cwd = s(dir.path());
    cx.cwd = Some(&cwd);
    let outcome = shell::execute("printf '%s' \"$MSG\" > \"$OUT\"", &cx).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), hostile);
    assert!(!dir.path().join("pwned").exists());

    let outcome = shell::execute("exit 4", &cx).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.detail["exit_code"], 4);
}

#[tokio::test]
async fn systemd_runs_systemctl_with_op_and_unit() {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    script(
        dir.path(),
        "systemctl",
        &format!("printf '%s\\n' \"$@\" >> '{}'", calls.display()),
    );
    let host = RealHost::new();
    let env = IndexMap::from([(
        "PATH".to_owned(),
        format!("{}:/usr/bin:/bin", s(dir.path())),
    )]);
    let outcome = systemd::execute("aurora-live-feed", SystemdOp::Restart, &cx(&host, &env)).await;
    assert!(outcome.ok, "{outcome:?}");
    let outcome = systemd::execute("aurora-runner", SystemdOp::Reload, &cx(&host, &env)).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "restart\naurora-live-feed\nreload\naurora-runner\n"
    );

    // A unit that is an option would change what systemctl does.
    let outcome = systemd::execute("--help", SystemdOp::Stop, &cx(&host, &env)).await;
    assert!(!outcome.ok);
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap().lines().count(),
        4,
        "systemctl was called"
    );
}

#[tokio::test]
async fn set_env_edits_in_place_and_keeps_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aurora-runner");
    let old =
        "# Aurora runner\nP_THRESHOLD=0.7\n\n# sizing\nexport KELLY_MULTIPLIER=\"1.0\"\nOTHER=x\n";
    std::fs::write(&file, old).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let host = RealHost::new();
    let env = IndexMap::new();

    let outcome = set_env::execute(&s(&file), "KELLY_MULTIPLIER", "0.5", &cx(&host, &env)).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# Aurora runner\nP_THRESHOLD=0.7\n\n# sizing\nexport KELLY_MULTIPLIER=0.5\nOTHER=x\n"
    );
    assert_eq!(detail_str(&outcome, "previous"), Some("1.0"));
    let backup = PathBuf::from(detail_str(&outcome, "backup").expect("a backup path"));
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), old);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640,
        "the file's mode changed"
    );

    // A new key is appended; a value with spaces is quoted.
    let outcome = set_env::execute(&s(&file), "NOTE", "two words", &cx(&host, &env)).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.detail["previous"], serde_json::Value::Null);
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .ends_with("OTHER=x\nNOTE=\"two words\"\n")
    );

    // A missing file is empty: it is created, with no backup.
    let fresh = dir.path().join("fresh");
    let outcome = set_env::execute(&s(&fresh), "A", "1", &cx(&host, &env)).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "A=1\n");
    assert_eq!(outcome.detail["backup"], serde_json::Value::Null);

    for (key, value) in [("BAD KEY", "1"), ("A", "x\ny")] {
        let outcome = set_env::execute(&s(&fresh), key, value, &cx(&host, &env)).await;
        assert!(!outcome.ok, "{key:?}={value:?} accepted");
    }
    assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "A=1\n");
}

#[tokio::test]
async fn backup_and_restore_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("sub")).unwrap();
    std::fs::write(logs.join("app.log"), "line 1\n").unwrap();
    std::fs::write(logs.join("sub/deep.log"), "deep\n").unwrap();
    let backups = dir.path().join("backups");
    let host = RealHost::new();
    let env = IndexMap::new();

    let first = backup::execute(&s(&logs), &s(&backups), &cx(&host, &env)).await;
    assert!(first.ok, "{first:?}");
    let first_path = PathBuf::from(detail_str(&first, "path").unwrap());
    let name = first_path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("logs.") && name.len() == "logs.YYYYmmdd_HHMMSS".len(),
        "{name}"
    );
    assert_eq!(
        std::fs::read_to_string(first_path.join("sub/deep.log")).unwrap(),
        "deep\n"
    );

    // A second backup within the same second gets its own directory.
    std::fs::write(logs.join("app.log"), "line 1\nline 2\n").unwrap();
    let second = backup::execute(&s(&logs), &s(&backups), &cx(&host, &env)).await;
    assert!(second.ok, "{second:?}");
    assert_ne!(second.detail["path"], first.detail["path"]);

    // Damage, then restore the newest.
    std::fs::write(logs.join("app.log"), "garbage").unwrap();
    std::fs::remove_file(logs.join("sub/deep.log")).unwrap();
    let outcome = restore::execute(&s(&backups), &s(&logs), None, &cx(&host, &env)).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.detail["backup"], second.detail["path"]);
    assert_eq!(
        std::fs::read_to_string(logs.join("app.log")).unwrap(),
        "line 1\nline 2\n"
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("sub/deep.log")).unwrap(),
        "deep\n"
    );

    // A named backup.
    let outcome = restore::execute(&s(&backups), &s(&logs), Some(&name), &cx(&host, &env)).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(
        std::fs::read_to_string(logs.join("app.log")).unwrap(),
        "line 1\n"
    );

    for bad in ["../logs", "nope"] {
        let outcome = restore::execute(&s(&backups), &s(&logs), Some(bad), &cx(&host, &env)).await;
        assert!(!outcome.ok, "{bad}: {outcome:?}");
    }
    let outcome = restore::execute(
        &s(&backups),
        &s(&dir.path().join("other")),
        None,
        &cx(&host, &env),
    )
    .await;
    assert!(!outcome.ok);
    assert!(outcome.summary.contains("no backup"), "{}", outcome.summary);

    let outcome = backup::execute(
        &s(&dir.path().join("missing")),
        &s(&backups),
        &cx(&host, &env),
    )
    .await;
    assert!(!outcome.ok);
}

fn request(url: String, token_file: Option<String>) -> http::HttpRequest {
    http::HttpRequest {
        url,
        method: HttpMethod::Post,
        headers: IndexMap::from([("x-runbook".to_owned(), "yes".to_owned())]),
        body: Some("{\"recalibrate\":true}".into()),
        token_file,
        insecure: false,
        expect_status: Vec::new(),
    }
}

#[tokio::test]
async fn http_sends_the_bearer_token_and_reports_status() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cr3t-token\n").unwrap();
    let host = RealHost::new();
    let env = IndexMap::new();

    let req = request(format!("{base}/recalibrate"), Some(s(&token_file)));
    let outcome = http::execute(&req, &cx(&host, &env)).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.detail["status"], 200);
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/recalibrate");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer s3cr3t-token")
    );
    assert_eq!(seen[0].body, "{\"recalibrate\":true}");
    let shown = format!("{} {:?}", outcome.summary, outcome.detail);
    assert!(!shown.contains("s3cr3t"), "the token leaked: {shown}");

    // Not 2xx: failed; unless the status is expected.
    let mut req = request(format!("{base}/status/503"), None);
    let outcome = http::execute(&req, &cx(&host, &env)).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.detail["status"], 503);
    assert!(outcome.summary.contains("503"), "{}", outcome.summary);
    req.expect_status = vec![503];
    assert!(http::execute(&req, &cx(&host, &env)).await.ok);

    // A missing token file fails before anything is sent.
    let before = log.lock().unwrap().len();
    let req = request(format!("{base}/x"), Some(s(&dir.path().join("none"))));
    let outcome = http::execute(&req, &cx(&host, &env)).await;
    assert!(!outcome.ok);
    assert!(
        outcome.summary.contains("token file"),
        "{}",
        outcome.summary
    );
    assert_eq!(log.lock().unwrap().len(), before);

    // Nobody listening: a failure, not a panic.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let outcome = http::execute(&request(format!("http://{addr}/"), None), &cx(&host, &env)).await;
    assert!(!outcome.ok);
}

#[tokio::test]
async fn notify_payloads_reach_webhook_and_slack() {
    let (base, log) = server().await;
    let host = RealHost::new();
    let env = IndexMap::new();

    let outcome = notify::execute(&NotifyTarget::Stdout, "hello ops", &cx(&host, &env)).await;
    assert!(outcome.ok);
    assert_eq!(detail_str(&outcome, "channel"), Some("stdout"));
    assert_eq!(detail_str(&outcome, "message"), Some("hello ops"));

    let hook = format!("{base}/hooks/T000/B000/XXXXSECRET");
    let outcome = notify::execute(
        &NotifyTarget::Webhook(hook.clone()),
        "SSE auth failing",
        &cx(&host, &env),
    )
    .await;
    assert!(outcome.ok, "{outcome:?}");
    let outcome = notify::execute(
        &NotifyTarget::Slack(hook),
        "SSE auth failing",
        &cx(&host, &env),
    )
    .await;
    assert!(outcome.ok, "{outcome:?}");
    let shown = format!("{} {:?}", outcome.summary, outcome.detail);
    assert!(
        !shown.contains("XXXXSECRET"),
        "the webhook URL leaked: {shown}"
    );

    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let webhook: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(webhook["message"], "SSE auth failing");
    assert_eq!(webhook["runbook"], "test-runbook");
    let slack: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(slack, serde_json::json!({ "text": "SSE auth failing" }));
    assert!(
        seen.iter()
            .all(|r| r.content_type.as_deref() == Some("application/json"))
    );

    let outcome = notify::execute(
        &NotifyTarget::Webhook(format!("{base}/status/500")),
        "m",
        &cx(&host, &env),
    )
    .await;
    assert!(!outcome.ok);
}

#[tokio::test]
async fn dry_run_refuses_every_mutation_but_notifies() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary");
    let touch_canary = format!("touch '{}'", canary.display());
    script(dir.path(), "systemctl", &touch_canary);
    let env = IndexMap::from([(
        "PATH".to_owned(),
        format!("{}:/usr/bin:/bin", s(dir.path())),
    )]);
    let host = DryRunHost::new();
    let cx = cx(&host, &env);

    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), "data").unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir_all(backups.join("src.20240101_000000")).unwrap();
    std::fs::write(backups.join("src.20240101_000000/restored"), "x").unwrap();
    let env_file = dir.path().join("envfile");

    let outcomes = [
        (
            "run",
            run::execute(&["/usr/bin/touch".into(), s(&canary)], &cx).await,
        ),
        ("shell", shell::execute(&touch_canary, &cx).await),
        (
            "systemd",
            systemd::execute("x.service", SystemdOp::Restart, &cx).await,
        ),
        (
            "set_env",
            set_env::execute(&s(&env_file), "A", "1", &cx).await,
        ),
        (
            "backup",
            backup::execute(&s(&src), &s(&dir.path().join("new-backups")), &cx).await,
        ),
        (
            "restore",
            restore::execute(&s(&backups), &s(&src), None, &cx).await,
        ),
        (
            "http",
            http::execute(&request(format!("{base}/mutate"), None), &cx).await,
        ),
    ];
    for (name, outcome) in &outcomes {
        assert!(!outcome.ok, "{name} ran in a dry run: {outcome:?}");
        assert!(
            outcome.summary.contains("dry run"),
            "{name}: {}",
            outcome.summary
        );
        assert_eq!(outcome.detail["dry_run"], true, "{name}");
    }
    assert!(!canary.exists(), "a dry run started a process");
    assert!(!env_file.exists(), "a dry run wrote a file");
    assert!(!dir.path().join("new-backups").exists(), "a dry run copied");
    assert!(!src.join("restored").exists(), "a dry run restored");
    assert!(log.lock().unwrap().is_empty(), "a dry run sent a request");

    let outcome = notify::execute(&NotifyTarget::Webhook(format!("{base}/hook")), "dry", &cx).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(log.lock().unwrap().len(), 1);
}
