//! The HTTP side of `runbook serve` (axum): webhooks in, runs out.
//!
//! A delivery goes through, in this order, and stops at the first refusal:
//! 1. the body cap (413, before anything reads it);
//! 2. authentication (401, nothing recorded);
//! 3. the media type (415 unless `application/json`), then parsing (400 with the parser's
//!    message);
//! 4. routing: each firing alert → the runbooks whose `triggers.alerts` name its `alertname`
//!    and whose `triggers.match` labels it carries; one job per (runbook, fingerprint), and
//!    none for a key already queued, running or in its cooldown (an alert storm over a few
//!    fingerprints starts one run per fingerprint);
//! 5. queue room for those jobs is reserved (503 when full: Alertmanager retries 5xx and drops
//!    other 4xx, so never 429), and only then
//! 6. the delivery is recorded in the same transaction that checks its dedup key
//!    (`groupKey` + status + sorted fingerprints): a duplicate answers 200 and starts nothing;
//! 7. the reserved jobs are sent to the workers. 200 when something was started or resolved,
//!    202 when a firing alert matched no runbook (recorded all the same).
//!
//! Workers are OS threads, each with its own single-threaded runtime, so a run is exactly
//! what `runbook run` does, with `trigger: webhook`, the alert as the `alert` context, params
//! from the alert through `from:`, and mutating actions allowed when `policy.yaml`'s
//! `auto_remediation` allows them for the runbook's severity.
//!
//! Besides deliveries, a background thread ([`spawn_background`]) every `poll`:
//! - starts the runbooks with `triggers.schedule` (cron, UTC) whose latest slot is later than
//!   the last slot claimed in the audit file (`schedule_slots`): a slot missed while the server
//!   was down runs once at start, not once per missed slot; trigger `schedule`, key `schedule`,
//!   through the same queue and one-at-a-time-per-key rule;
//! - performs the pending reverts (`revert_after`) that are due ([`crate::revert`]), consenting
//!   only where `auto_remediation` allows for the runbook's severity; the others stay pending
//!   and are reported once;
//! - re-runs, for approvals recorded by `runbook approve`, the approved run's runbook for the
//!   same alert and key with that one action allowed (an expired approval runs nothing).
//!
//! `GET /api/runs[/ID]`, `GET /api/incidents`, `POST /api/incidents/ID/ack` and
//! `POST /api/runs/ID/approve` take the credentials of `/hooks/alertmanager`; so does the
//! read-only dashboard at `/` (`crate::serve::dashboard`), which also takes a login cookie.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::{Map, Value, json};

use crate::audit::{Approval, ApprovalUse, AuditStore};
use crate::escalation::{self, AckOutcome, HostNotifier, Incident, Spec};
use crate::exec::{Approver, Executor, Ledger, Options, StepStatus};
use crate::host::RealHost;
use crate::runbook::model::Runbook;
use crate::runbook::{Catalog, param};
use crate::serve::auth::Authenticator;
use crate::serve::payload::{
    Alert, Delivery, Limits, ParamValue, Source, Status, parse_alertmanager, parse_generic,
    parse_grafana,
};

/// How to serve.
pub struct Config {
    /// Where to listen (loopback by default).
    pub listen: SocketAddr,
    /// The largest body read; larger is 413 before parsing.
    pub body_limit: usize,
    /// Jobs waiting for a worker; more is 503.
    pub queue: usize,
    /// Runs at the same time.
    pub workers: usize,
    /// After a run of (runbook, fingerprint), alerts for it start nothing for this long.
    pub cooldown: Duration,
    /// The audit DB.
    pub db: PathBuf,
    /// Who may deliver to `/hooks/alertmanager` (bearer or basic auth).
    pub auth_alertmanager: Authenticator,
    /// Who may deliver to `/hooks/grafana` (bearer/basic, and its HMAC when configured).
    pub auth_grafana: Authenticator,
    /// Who may deliver to `/hooks/generic` (HMAC over `timestamp.body`, required).
    pub auth_generic: Authenticator,
    /// Who may use `/api/*` and the dashboard (`--api-token-file`, else the Alertmanager
    /// hook's credentials).
    pub auth_api: Authenticator,
    /// Payload limits.
    pub limits: Limits,
    /// The runbooks' directory (for messages).
    pub runbooks_dir: PathBuf,
    /// How often the background thread looks for schedule slots, due reverts and approvals.
    pub poll: Duration,
    /// The scheduler's clock at start (hidden `--schedule-now`); `None`: the wall clock. It
    /// runs on from there.
    pub schedule_now: Option<DateTime<Utc>>,
    /// How long an approval by `POST /api/runs/ID/approve` stays valid unless its body says.
    pub approval_ttl: Duration,
    /// Where the background thread reports what it did (a line each).
    pub log: fn(&str),
    /// The `--follow` counters, if any (rendered in `/metrics`).
    pub tail: Option<Arc<crate::serve::tail::TailStats>>,
}

/// One run to do.
#[derive(Debug)]
pub struct Job {
    runbook: String,
    key: String,
    params: Map<String, Value>,
    alert: Option<Value>,
    delivery: i64,
    /// `webhook`, `schedule`, `approval`.
    trigger: &'static str,
    /// Actions approved beforehand.
    approved: HashSet<String>,
    /// The approval this run performs.
    approval: Option<i64>,
    /// When it was queued (`runbook_run_queue_wait_seconds`).
    queued_at: Instant,
}

/// What the workers and handlers share.
pub struct App {
    catalog: Catalog,
    config: Config,
    deliveries: Mutex<Connection>,
    /// To the recorder thread, which commits deliveries in groups ([`recorder`]).
    recorder: std::sync::mpsc::Sender<Record>,
    queue: tokio::sync::mpsc::Sender<Job>,
    keys: Mutex<Keys>,
    metrics: Metrics,
    stopping: std::sync::atomic::AtomicBool,
    /// The audit store of the handlers and timers, opened once (workers have their own).
    store: AuditStore,
}

/// (runbook, fingerprint) keys queued or running, and when each last finished; the runbooks
/// with a run in progress that may change the host, and their jobs waiting for it.
#[derive(Default)]
struct Keys {
    busy: HashSet<(String, String)>,
    /// Busy keys whose alert was resolved meanwhile: the incident their run opens is
    /// resolved when the run is settled.
    resolved: HashSet<(String, String)>,
    finished: HashMap<(String, String), Instant>,
    changing: HashSet<String>,
    deferred: HashMap<String, std::collections::VecDeque<Job>>,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    deliveries: Mutex<BTreeMap<(String, u16), u64>>,
    runs: Mutex<BTreeMap<(String, String), u64>>,
    durations: Mutex<Histogram>,
    waits: Mutex<Histogram>,
    queued: AtomicU64,
    coalesced: AtomicU64,
    escalations: AtomicU64,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        use std::fmt::Write as _;
        header(out, name, "histogram", help);
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", self.buckets[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Metrics {
    fn delivery(&self, endpoint: &str, code: StatusCode) {
        *lock(&self.deliveries)
            .entry((endpoint.to_owned(), code.as_u16()))
            .or_default() += 1;
    }

    fn run(&self, runbook: &str, outcome: &str, secs: f64) {
        *lock(&self.runs)
            .entry((runbook.to_owned(), outcome.to_owned()))
            .or_default() += 1;
        lock(&self.durations).observe(secs);
    }

    /// Prometheus text exposition.
    fn render(&self, open_incidents: Option<u64>) -> String {
        let mut out = String::new();
        counters(
            &mut out,
            "runbook_deliveries_total",
            "Webhook deliveries by endpoint and status code.",
            ("endpoint", "code"),
            &lock(&self.deliveries),
        );
        counters(
            &mut out,
            "runbook_runs_total",
            "Runs started by alerts, by runbook and outcome.",
            ("runbook", "outcome"),
            &lock(&self.runs),
        );
        lock(&self.durations).render(
            &mut out,
            "runbook_run_duration_seconds",
            "Wall time of runs started by alerts.",
        );
        lock(&self.waits).render(
            &mut out,
            "runbook_run_queue_wait_seconds",
            "Time from a job queued (its alert received) to its run started by a worker.",
        );
        scalar(
            &mut out,
            "runbook_queue_depth",
            "gauge",
            "Jobs waiting for a worker.",
            self.queued.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "runbook_alerts_coalesced_total",
            "counter",
            "Alerts that started nothing: their runbook and fingerprint were queued, running or cooling down.",
            self.coalesced.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "runbook_escalations_fired_total",
            "counter",
            "Escalation levels fired by this server's timer.",
            self.escalations.load(Ordering::Relaxed),
        );
        if let Some(n) = open_incidents {
            scalar(
                &mut out,
                "runbook_incidents_open",
                "gauge",
                "Incidents open or acknowledged.",
                n,
            );
        }
        out
    }
}

/// `# HELP` and `# TYPE` lines of a metric.
/// A counter family with two labels, one sample per key.
fn counters<A: std::fmt::Display, B: std::fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    (la, lb): (&str, &str),
    values: &BTreeMap<(A, B), u64>,
) {
    use std::fmt::Write as _;
    header(out, name, "counter", help);
    for ((a, b), n) in values {
        let _ = writeln!(out, "{name}{{{la}=\"{a}\",{lb}=\"{b}\"}} {n}");
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A metric with one unlabelled value.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    use std::fmt::Write as _;
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Build the app: the router and the job receiver the workers drain.
///
/// # Errors
/// When the audit DB cannot be opened.
pub fn app(
    catalog: Catalog,
    config: Config,
) -> Result<(Arc<App>, tokio::sync::mpsc::Receiver<Job>), String> {
    // The store migrates the schema; the server's own connection then records deliveries.
    let store = AuditStore::open(&config.db).map_err(|e| e.to_string())?;
    let mut conn = Connection::open(&config.db).map_err(|e| e.to_string())?;
    crate::audit::wait_when_busy(&mut conn, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    // A delivery's row is committed (atomic, and safe from a crash of this process) before it
    // is answered; with NORMAL the WAL reaches the disk at the next checkpoint or durable commit
    // (an intent row, a run's end), not once per delivery: a power cut can lose the last
    // acknowledged deliveries, never corrupt the file.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| e.to_string())?;
    let mut writer = Connection::open(&config.db).map_err(|e| e.to_string())?;
    crate::audit::wait_when_busy(&mut writer, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    writer
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| e.to_string())?;
    let (records, incoming) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("runbook-recorder".into())
        .spawn(move || recorder(writer, &incoming))
        .map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::mpsc::channel(config.queue.max(1));
    Ok((
        Arc::new(App {
            catalog,
            config,
            deliveries: Mutex::new(conn),
            recorder: records,
            queue: tx,
            keys: Mutex::new(Keys::default()),
            metrics: Metrics::default(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            store,
        }),
        rx,
    ))
}

/// The routes.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.body_limit;
    let guard = crate::serve::guard::Guard::new(
        app.config.listen,
        app.config.auth_alertmanager.is_open(),
        app.config.auth_grafana.is_open(),
        app.config.auth_api.is_open(),
    );
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/hooks/alertmanager", post(alertmanager))
        .route("/hooks/grafana", post(grafana))
        .route("/hooks/generic", post(generic))
        .route("/api/runs", get(api_runs))
        .route("/api/runs/{id}", get(api_run))
        .route("/api/runs/{id}/approve", post(api_approve))
        .route("/api/incidents", get(api_incidents))
        .route("/api/incidents/{id}/ack", post(api_ack))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::clone(&app))
        .merge(crate::serve::dashboard::routes(app))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            crate::serve::guard::guard,
        ))
}

impl App {
    /// The audit store the handlers read.
    pub(crate) fn store(&self) -> &AuditStore {
        &self.store
    }

    /// The runbooks served.
    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The credentials of the API and the dashboard.
    pub(crate) fn api_credentials(&self) -> &Authenticator {
        &self.config.auth_api
    }

    /// The audit DB's path.
    pub(crate) fn db(&self) -> &FsPath {
        &self.config.db
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let open = {
        let conn = lock(&app.deliveries);
        conn.query_row(
            "SELECT COUNT(*) FROM incidents WHERE status IN ('open', 'acked')",
            [],
            |r| r.get::<_, i64>(0),
        )
        .ok()
        .and_then(|n| u64::try_from(n).ok())
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], {
        let mut text = app.metrics.render(open);
        if let Some(t) = &app.config.tail {
            text.push_str(&t.render());
        }
        text
    })
        .into_response()
}

async fn alertmanager(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    deliver(&app, Source::Alertmanager, &headers, &body).await
}

async fn grafana(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    deliver(&app, Source::Grafana, &headers, &body).await
}

async fn generic(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    deliver(&app, Source::Generic, &headers, &body).await
}

fn reply(app: &App, endpoint: &str, code: StatusCode, body: Value) -> Response {
    app.metrics.delivery(endpoint, code);
    (code, axum::Json(body)).into_response()
}

#[expect(
    clippy::too_many_lines,
    reason = "the delivery pipeline, step by step, as the module doc lists it"
)]
async fn deliver(app: &Arc<App>, source: Source, headers: &HeaderMap, body: &[u8]) -> Response {
    let endpoint = match source {
        Source::Alertmanager => "alertmanager",
        Source::Grafana => "grafana",
        Source::Generic => "generic",
    };
    let auth = match source {
        Source::Alertmanager => &app.config.auth_alertmanager,
        Source::Grafana => &app.config.auth_grafana,
        Source::Generic => &app.config.auth_generic,
    };
    // The generic endpoint takes only signed deliveries.
    let unsigned_generic = source == Source::Generic && auth.is_open();
    let verified = match auth.check(headers, body, chrono::Utc::now().timestamp()) {
        Ok(v) if !unsigned_generic => v,
        Ok(_) => {
            return reply(
                app,
                endpoint,
                StatusCode::UNAUTHORIZED,
                json!({ "error": "unauthorized: no HMAC secret configured for /hooks/generic" }),
            );
        }
        Err(e) => {
            return reply(
                app,
                endpoint,
                StatusCode::UNAUTHORIZED,
                json!({ "error": e.to_string() }),
            );
        }
    };
    if !is_json(headers) {
        return reply(
            app,
            endpoint,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({ "error": "Content-Type must be application/json" }),
        );
    }
    let limits = &app.config.limits;
    let parsed = match source {
        Source::Alertmanager => parse_alertmanager(body, limits),
        Source::Grafana => parse_grafana(body, limits),
        Source::Generic => parse_generic(body, verified.signed_timestamp, limits),
    };
    let delivery = match parsed {
        Ok(d) => d,
        Err(e) => {
            return reply(
                app,
                endpoint,
                StatusCode::BAD_REQUEST,
                json!({ "error": e.to_string() }),
            );
        }
    };
    // Route, coalesce, reserve room, record (dedup), send.
    let (jobs, unrouted, coalesced) = route(app, &delivery);
    let permits = if jobs.is_empty() {
        None
    } else {
        let Ok(p) = app.queue.try_reserve_many(jobs.len()) else {
            release(app, &jobs);
            return reply(
                app,
                endpoint,
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "queue full; retry" }),
            );
        };
        Some(p)
    };
    let runbooks: Vec<&str> = jobs.iter().map(|j| j.runbook.as_str()).collect();
    let recorded = record(app, endpoint, &delivery, &runbooks, body).await;
    let id = match recorded {
        Ok(Some(id)) => id,
        Ok(None) => {
            release(app, &jobs);
            return reply(
                app,
                endpoint,
                StatusCode::OK,
                json!({ "duplicate": true, "started": 0 }),
            );
        }
        Err(e) => {
            release(app, &jobs);
            return reply(
                app,
                endpoint,
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": format!("cannot record the delivery: {e}") }),
            );
        }
    };
    let started = jobs.len();
    if let Some(permits) = permits {
        for (permit, mut job) in permits.zip(jobs) {
            job.delivery = id;
            app.metrics.queued.fetch_add(1, Ordering::Relaxed);
            permit.send(job);
        }
    }
    app.metrics
        .coalesced
        .fetch_add(coalesced as u64, Ordering::Relaxed);
    // Closing incidents writes to the audit store: off the runtime's threads.
    let resolved = if delivery.resolved().next().is_some() {
        let app = Arc::clone(app);
        let d = delivery.clone();
        tokio::task::spawn_blocking(move || resolve_incidents(&app, &d))
            .await
            .unwrap_or(0)
    } else {
        0
    };
    let code = if started == 0 && resolved == 0 && unrouted > 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    reply(
        app,
        endpoint,
        code,
        json!({
            "delivery": id,
            "started": started,
            "coalesced": coalesced,
            "unrouted": unrouted,
            "resolved": resolved,
        }),
    )
}

/// Whether the body is declared JSON: `application/json` or a `+json` type, any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// The jobs a delivery starts; how many firing alerts matched no runbook; how many were
/// coalesced into a queued, running or cooling-down run.
fn route(app: &App, d: &Delivery) -> (Vec<Job>, usize, usize) {
    let mut jobs = Vec::new();
    let (mut unrouted, mut coalesced) = (0, 0);
    let mut keys = lock(&app.keys);
    let cooldown = app.config.cooldown;
    for alert in d.alerts.iter().filter(|a| a.status == Status::Firing) {
        let targets = targets(app, d, alert);
        if targets.is_empty() {
            unrouted += 1;
            continue;
        }
        for rb in targets {
            let key = (rb.name.clone(), alert.fingerprint.clone());
            let cooling = keys
                .finished
                .get(&key)
                .is_some_and(|t| t.elapsed() < cooldown);
            if keys.busy.contains(&key) || cooling {
                coalesced += 1;
                continue;
            }
            keys.busy.insert(key.clone());
            let alert_ctx = alert_context(alert);
            jobs.push(Job {
                queued_at: Instant::now(),
                runbook: rb.name.clone(),
                key: alert.fingerprint.clone(),
                params: params_from(rb, &alert_ctx, &d.params),
                alert: Some(alert_ctx),
                delivery: 0,
                trigger: "webhook",
                approved: HashSet::new(),
                approval: None,
            });
        }
    }
    (jobs, unrouted, coalesced)
}

/// The runbooks an alert starts: a generic delivery names its runbook; otherwise the
/// runbooks whose `triggers.alerts` holds the alertname and whose `triggers.match` labels
/// the alert carries.
fn targets<'a>(app: &'a App, d: &Delivery, alert: &Alert) -> Vec<&'a Runbook> {
    let runbooks = app.catalog.runbooks.iter();
    if let Some(name) = &d.runbook {
        return runbooks.filter(|r| &r.name == name).collect();
    }
    let name = alert.alertname().unwrap_or("");
    runbooks
        .filter(|r| r.triggers.alerts.iter().any(|a| a == name))
        .filter(|r| {
            r.triggers
                .matchers
                .iter()
                .all(|(k, v)| alert.labels.get(k) == Some(v))
        })
        .collect()
}

/// Jobs not sent after all: their keys are free again.
fn release(app: &App, jobs: &[Job]) {
    let mut keys = lock(&app.keys);
    for j in jobs {
        keys.busy.remove(&(j.runbook.clone(), j.key.clone()));
    }
}

/// The `alert` a firing alert's run sees in its templates (and records).
#[doc(hidden)]
#[must_use]
pub fn alert_context(alert: &crate::serve::payload::Alert) -> Value {
    json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "status": "firing",
        "starts_at": alert.starts_at.map(|t| t.to_rfc3339()),
        "fingerprint": alert.fingerprint,
    })
}

/// Params: defaults, then each param's `from:` (`alert.labels.x`, `alert.annotations.y`),
/// then a generic delivery's `params`. A value that does not parse as the param's type is
/// left out (the default stays).
#[doc(hidden)]
pub fn params_from(
    rb: &Runbook,
    alert: &Value,
    given: &BTreeMap<String, ParamValue>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for p in &rb.params {
        if let Some(d) = &p.default {
            out.insert(p.name.clone(), d.clone());
        }
        let from = p.from.as_deref().and_then(|f| {
            let mut v = alert;
            for part in f.strip_prefix("alert.")?.split('.') {
                v = v.get(part)?;
            }
            v.as_str().map(str::to_owned)
        });
        let given = given.get(&p.name).map(ParamValue::to_text);
        if let Some(text) = given.or(from)
            && let Ok(v) = param::admit(p, &text)
        {
            out.insert(p.name.clone(), v);
        }
    }
    out
}

/// A delivery to record, and where to answer: its row id, `None` for a duplicate.
struct Record {
    endpoint: &'static str,
    generic: bool,
    group_key: String,
    dedup_key: String,
    runbooks: Option<String>,
    payload: String,
    received_at: String,
    reply: tokio::sync::oneshot::Sender<Result<Option<i64>, String>>,
}

/// Record a delivery unless its dedup key was seen: `Ok(None)` for a duplicate. The row is
/// committed by the recorder thread before this returns.
async fn record(
    app: &App,
    endpoint: &'static str,
    d: &Delivery,
    runbooks: &[&str],
    body: &[u8],
) -> Result<Option<i64>, String> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let rec = Record {
        endpoint,
        generic: d.source == Source::Generic,
        group_key: d.group_key.clone(),
        dedup_key: d.dedup_key.clone(),
        runbooks: (!runbooks.is_empty()).then(|| runbooks.join(",")),
        // The body as received (it parsed, so it is JSON text); not parsed a second time.
        payload: String::from_utf8_lossy(body).into_owned(),
        received_at: chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        reply,
    };
    app.recorder
        .send(rec)
        .map_err(|_| "the recorder has stopped".to_owned())?;
    answer
        .await
        .map_err(|_| "the recorder has stopped".to_owned())?
}

/// The recorder thread: takes the deliveries waiting (up to 512) and commits them in one
/// `IMMEDIATE` transaction — each checked against its dedup key, earlier ones of the same
/// group included — then answers each. One commit for many deliveries: the handlers never
/// wait on `SQLite` on the runtime's threads, and the write lock is free more often for the
/// runs. Ends when the server's sender is dropped.
fn recorder(mut conn: Connection, incoming: &std::sync::mpsc::Receiver<Record>) {
    while let Ok(first) = incoming.recv() {
        let mut batch = vec![first];
        while batch.len() < 32 {
            match incoming.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        match record_batch(&mut conn, &batch) {
            Ok(ids) => {
                for (r, id) in batch.into_iter().zip(ids) {
                    let _ = r.reply.send(Ok(id));
                }
            }
            Err(e) => {
                for r in batch {
                    let _ = r.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

fn record_batch(
    conn: &mut Connection,
    batch: &[Record],
) -> Result<Vec<Option<i64>>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut ids = Vec::with_capacity(batch.len());
    {
        // Alertmanager and Grafana retry a failed delivery before sending the group's next
        // one, so a duplicate is the same as the group's last delivery. A generic delivery is
        // a signed request: any earlier one with its key is a replay.
        let mut replay =
            tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM alerts WHERE dedup_key = ?1)")?;
        let mut repeat = tx.prepare_cached(
            "SELECT COALESCE((SELECT dedup_key FROM alerts WHERE source = ?1 AND group_key = ?2 \
             ORDER BY id DESC LIMIT 1) = ?3, 0)",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO alerts (received_at, source, group_key, dedup_key, runbook, payload) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in batch {
            let seen: bool = if r.generic {
                replay.query_row([&r.dedup_key], |row| row.get(0))?
            } else {
                repeat.query_row(params![r.endpoint, r.group_key, r.dedup_key], |row| {
                    row.get(0)
                })?
            };
            if seen {
                ids.push(None);
                continue;
            }
            insert.execute(params![
                r.received_at,
                r.endpoint,
                r.group_key,
                r.dedup_key,
                r.runbooks,
                r.payload,
            ])?;
            ids.push(Some(tx.last_insert_rowid()));
        }
    }
    tx.commit()?;
    Ok(ids)
}

/// Run jobs until the queue closes: `workers` threads, each with its own runtime.
///
/// Plus one thread that settles the incidents of finished runs ([`escalations`]); it ends
/// after the last worker, once it has settled everything they handed it.
pub fn spawn_workers(
    app: &Arc<App>,
    rx: tokio::sync::mpsc::Receiver<Job>,
) -> Vec<std::thread::JoinHandle<()>> {
    let rx = Arc::new(Mutex::new(rx));
    let (settle, settled) = std::sync::mpsc::channel::<Settle>();
    let mut threads: Vec<_> = (0..app.config.workers.max(1))
        .map(|i| {
            let (app, rx, settle) = (Arc::clone(app), Arc::clone(&rx), settle.clone());
            std::thread::Builder::new()
                .name(format!("runbook-worker-{i}"))
                .spawn(move || worker(&app, &rx, settle))
                .expect("a worker thread")
        })
        .collect();
    drop(settle);
    let app = Arc::clone(app);
    threads.push(
        std::thread::Builder::new()
            .name("runbook-escalations".into())
            .spawn(move || escalations(&app, &settled))
            .expect("the escalation thread"),
    );
    threads
}

/// A finished run whose incident is to be opened, updated or resolved.
struct Settle {
    spec: Spec,
    key: (String, String),
    result: crate::exec::RunResult,
}

/// The escalation thread: for each finished run, in the order they ended, open, update or
/// resolve its incident and fire the level due now ([`escalation::after_run`]), then let the
/// next run of its runbook and key start (cooldown from now). Off the workers, so a storm of
/// new alerts starts its checks while the incidents of the first ones are being written.
fn escalations(app: &App, settled: &std::sync::mpsc::Receiver<Settle>) {
    let (Ok(rt), Ok(store)) = (
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        AuditStore::open(&app.config.db),
    ) else {
        // Nothing can be settled: release the keys so runs go on.
        while let Ok(s) = settled.recv() {
            release_key(app, &app.store, &s.key);
        }
        return;
    };
    let notifier = HostNotifier::default();
    while let Ok(s) = settled.recv() {
        if let Some(policy) = app.catalog.policy.as_ref() {
            let _ = rt.block_on(escalation::after_run(
                &store,
                policy,
                &s.spec,
                &s.key.1,
                &s.result,
                chrono::Utc::now(),
                &notifier,
            ));
        }
        release_key(app, &store, &s.key);
    }
}

/// The run of `key` is over: the next may start after the cooldown. If its alert was
/// resolved while it ran or waited to be settled, the incident it opened is resolved now.
fn release_key(app: &App, store: &AuditStore, key: &(String, String)) {
    let late = {
        let mut keys = lock(&app.keys);
        keys.busy.remove(key);
        keys.finished.insert(key.clone(), Instant::now());
        keys.resolved.remove(key)
    };
    if late {
        let _ = escalation::resolve(store, &key.0, &key.1, chrono::Utc::now());
    }
}

fn worker(
    app: &App,
    rx: &Mutex<tokio::sync::mpsc::Receiver<Job>>,
    settle: std::sync::mpsc::Sender<Settle>,
) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let Ok(store) = AuditStore::open(&app.config.db) else {
        return;
    };
    // One host and notifier per worker, for all its runs: their HTTP clients (and pooled
    // connections) belong to this worker's runtime and are built once.
    let on = Worker {
        store,
        rt,
        host: RealHost::new(),
        settle,
    };
    // A job of a runbook whose run that may change the host is ours, taken over from the
    // runbook's deferred jobs when that run ended.
    let mut next_owned: Option<Job> = None;
    loop {
        if let Some(job) = next_owned.take() {
            next_owned = work(app, &on, job, true);
            continue;
        }
        // Wait a little at a time, so another worker can take the receiver and a shutdown
        // is noticed; after a shutdown, drain what was accepted, then stop.
        let next = {
            let mut rx = lock(rx);
            on.rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
            })
        };
        let job = match next {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_) => {
                if app.stopping.load(Ordering::SeqCst)
                    && app.metrics.queued.load(Ordering::SeqCst) == 0
                {
                    return;
                }
                continue;
            }
        };
        next_owned = work(app, &on, job, false);
    }
}

/// Run `job`, unless it may change the host while another such run of its runbook is in
/// progress in this server: then it waits in the runbook's deferred jobs, and the worker of
/// that run takes it next (so diagnoses run side by side, changes one at a time, and no
/// worker sits waiting for a lock). `owned`: the job was handed over that way. Returns the
/// deferred job this worker takes over.
fn work(app: &App, on: &Worker, job: Job, owned: bool) -> Option<Job> {
    let rb = app.catalog.runbooks.iter().find(|r| r.name == job.runbook);
    let opts = rb.map(|rb| job_options(app, rb, &job));
    let exclusive = owned
        || rb
            .zip(opts.as_ref())
            .is_some_and(|(rb, o)| o.may_change(rb));
    if exclusive && !owned {
        let mut keys = lock(&app.keys);
        if !keys.changing.insert(job.runbook.clone()) {
            keys.deferred
                .entry(job.runbook.clone())
                .or_default()
                .push_back(job);
            return None;
        }
    }
    app.metrics.queued.fetch_sub(1, Ordering::Relaxed);
    lock(&app.metrics.waits).observe(job.queued_at.elapsed().as_secs_f64());
    let started = Instant::now();
    let (outcome, settling) = match rb.zip(opts) {
        Some((rb, opts)) => run_job(app, on, &job, rb, opts),
        None => ("fault".into(), false),
    };
    app.metrics
        .run(&job.runbook, &outcome, started.elapsed().as_secs_f64());
    if !settling {
        release_key(app, &on.store, &(job.runbook.clone(), job.key.clone()));
    }
    let mut keys = lock(&app.keys);
    if !exclusive {
        return None;
    }
    let next = keys
        .deferred
        .get_mut(&job.runbook)
        .and_then(std::collections::VecDeque::pop_front);
    if next.is_none() {
        keys.deferred.remove(&job.runbook);
        keys.changing.remove(&job.runbook);
    }
    next
}

/// At start: deliveries that were recorded with runbooks to run but have no run (the
/// process stopped — `kill -9`, a power cut — with their jobs still queued) are routed and
/// queued again, at least once as Alertmanager expects, one run per key as always. Returns
/// how many jobs were queued.
pub fn requeue(app: &App) -> usize {
    let pending: Vec<(i64, String, String)> = {
        let conn = lock(&app.deliveries);
        let Ok(mut st) = conn.prepare(
            "SELECT id, source, payload FROM alerts \
             WHERE runbook IS NOT NULL AND run_id IS NULL ORDER BY id",
        ) else {
            return 0;
        };
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map(|rows| rows.filter_map(Result::ok).collect())
            .unwrap_or_default()
    };
    let mut queued = 0;
    for (id, source, payload) in pending {
        let body = payload.as_bytes();
        let limits = &app.config.limits;
        let parsed = match source.as_str() {
            "alertmanager" => parse_alertmanager(body, limits),
            "grafana" => parse_grafana(body, limits),
            _ => parse_generic(body, None, limits),
        };
        let Ok(delivery) = parsed else {
            continue;
        };
        let (jobs, _, _) = route(app, &delivery);
        if jobs.is_empty() {
            // Every alert of it is covered by a job queued for an earlier delivery.
            let conn = lock(&app.deliveries);
            let _ = conn.execute(
                "UPDATE alerts SET run_id = '' WHERE id = ?1 AND run_id IS NULL",
                [id],
            );
            continue;
        }
        let Ok(permits) = app.queue.try_reserve_many(jobs.len()) else {
            release(app, &jobs);
            break;
        };
        for (permit, mut job) in permits.zip(jobs) {
            job.delivery = id;
            app.metrics.queued.fetch_add(1, Ordering::Relaxed);
            permit.send(job);
            queued += 1;
        }
    }
    queued
}

/// The `--follow` counters of this server.
#[must_use]
pub fn tail_stats(app: &App) -> Option<Arc<crate::serve::tail::TailStats>> {
    app.config.tail.clone()
}

/// Stop: no new jobs are taken from new deliveries (the listener is closed by then); the
/// workers finish the queued ones and return.
pub fn stop(app: &App) {
    app.stopping.store(true, Ordering::SeqCst);
}

/// How a job runs: unattended; mutating actions allowed where `auto_remediation` allows for
/// the runbook's severity, or approved beforehand.
fn job_options(app: &App, rb: &Runbook, job: &Job) -> Options {
    let policy = app.catalog.policy.as_ref();
    Options {
        yes: auto_remediation(app, rb),
        interactive: false,
        trigger: job.trigger.into(),
        alert: job.alert.clone(),
        // What an approval of one of this run's actions needs to run it again; the delivery
        // marked as having had its run — both in the run's first transaction.
        key: Some(job.key.clone()),
        delivery: (job.delivery > 0).then_some(job.delivery),
        channels: crate::actions::NotifyTarget::from_policy(policy),
        ladder: policy.map(|p| p.ladder_levels(rb)).unwrap_or_default(),
        // Jobs of one runbook that may change the host are run one after another by the
        // workers (`Keys::changing`); this only waits for a run of another process.
        lock_wait: Duration::from_secs(60),
        approved: job.approved.clone(),
        ..Options::default()
    }
}

/// What a worker thread runs its jobs with.
struct Worker {
    store: AuditStore,
    rt: tokio::runtime::Runtime,
    host: RealHost,
    /// To the escalation thread.
    settle: std::sync::mpsc::Sender<Settle>,
}

/// Run `job`; returns its outcome and whether its incident was handed to the escalation
/// thread (which then releases the job's key).
fn run_job(app: &App, on: &Worker, job: &Job, rb: &Runbook, opts: Options) -> (String, bool) {
    let (store, rt) = (&on.store, &on.rt);
    let policy = app.catalog.policy.as_ref();
    store.add_secrets(rb.params.iter().filter(|p| p.secret).filter_map(|p| {
        job.params
            .get(&p.name)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    }));
    let mut exec = Executor::new(rb, &on.host, store, job.params.clone(), opts);
    let Ok(result) = rt.block_on(exec.run()) else {
        return ("fault".into(), false);
    };
    if let Some(id) = job.approval {
        let _ = store.approval_rerun(id, &result.run_id);
    }
    let outcome = serde_json::to_value(result.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    // The incident of this runbook and alert — opened, updated or resolved, its first level
    // fired now, the next ones by the escalation timer — is settled by the escalation thread
    // while this worker takes the next job; the key stays busy until then.
    let settling = policy.and_then(|p| Spec::new(p, rb)).is_some_and(|spec| {
        on.settle
            .send(Settle {
                spec,
                key: (job.runbook.clone(), job.key.clone()),
                result,
            })
            .is_ok()
    });
    (outcome, settling)
}

/// Resolved alerts close their incidents (the runbooks their alertname routes to); returns
/// how many incidents were resolved.
fn resolve_incidents(app: &App, d: &Delivery) -> usize {
    let store = &app.store;
    let mut n = 0;
    for alert in d.resolved() {
        for rb in targets(app, d, alert) {
            let key = (rb.name.clone(), alert.fingerprint.clone());
            {
                let mut keys = lock(&app.keys);
                if keys.busy.contains(&key) {
                    keys.resolved.insert(key);
                }
            }
            if let Ok(Some(_)) =
                escalation::resolve(store, &rb.name, &alert.fingerprint, chrono::Utc::now())
            {
                n += 1;
            }
        }
    }
    n
}

/// Fire the escalation levels that are due, every `every`, until the server stops.
pub async fn escalation_timer(app: Arc<App>, every: Duration) {
    let Some(policy) = app.catalog.policy.clone() else {
        return;
    };
    let notifier = HostNotifier::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !app.stopping.load(Ordering::SeqCst) {
        tick.tick().await;
        // Runs of a process killed between their end and their incident (this server's
        // predecessor, a `runbook run`): their incident is opened and its level sent now.
        let _ = escalation::recover_runs(
            &app.store,
            &app.catalog,
            chrono::Utc::now(),
            &notifier,
            false,
        )
        .await;
        if let Ok(fired) =
            escalation::fire_due(&app.store, &policy, chrono::Utc::now(), &notifier).await
        {
            app.metrics
                .escalations
                .fetch_add(fired.len() as u64, Ordering::Relaxed);
        }
    }
}

async fn api_runs(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = api_auth(&app, &headers, b"") {
        return r;
    }
    match app.store.history(None, 100) {
        Ok(runs) => axum::Json(json!(runs)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn api_run(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = api_auth(&app, &headers, b"") {
        return r;
    }
    match app.store.show(&id) {
        Ok(Some((run, steps))) => axum::Json(json!({ "run": run, "steps": steps })).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": "no such run" })),
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// Check the credentials of `/hooks/alertmanager` on an API request: `Err` is the 401.
fn api_auth(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    app.config
        .auth_api
        .check(headers, body, Utc::now().timestamp())
        .map(|_| ())
        .map_err(|e| error(StatusCode::UNAUTHORIZED, &e.to_string()))
}

fn error(code: StatusCode, message: &str) -> Response {
    (code, axum::Json(json!({ "error": message }))).into_response()
}

/// `GET /api/incidents`: open and acknowledged incidents, as `runbook incidents --format json`.
async fn api_incidents(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = api_auth(&app, &headers, b"") {
        return r;
    }
    let store = &app.store;
    let now = Utc::now();
    match escalation::list(store) {
        Ok(list) => axum::Json(json!({
            "now": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "incidents": list.iter().map(|i| i.to_json(now)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `POST /api/incidents/ID/ack`, body optional `{"by": NAME}`: 200 with the incident (also
/// when acknowledged before), 404 unknown, 409 resolved already.
async fn api_ack(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = api_auth(&app, &headers, &body) {
        return r;
    }
    let by = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => match m.get("by") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(_) => return error(StatusCode::BAD_REQUEST, "`by` must be a name"),
            },
            Ok(_) => return error(StatusCode::BAD_REQUEST, "expected a JSON object"),
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        }
    };
    let store = &app.store;
    let now = Utc::now();
    let by = by.unwrap_or_else(|| "api".into());
    let show = |code: StatusCode, result: &str, i: &Incident| {
        (
            code,
            axum::Json(json!({ "result": result, "incident": i.to_json(now) })),
        )
            .into_response()
    };
    match escalation::ack(store, id, &by, now) {
        Ok(AckOutcome::Acked(i)) => show(StatusCode::OK, "acked", &i),
        Ok(AckOutcome::AlreadyAcked(i)) => show(StatusCode::OK, "already_acked", &i),
        Ok(AckOutcome::Resolved(i)) => show(StatusCode::CONFLICT, "resolved", &i),
        Ok(AckOutcome::NotFound) => error(StatusCode::NOT_FOUND, &format!("no incident #{id}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The run `run` (an id or a unique prefix) whose action `action` waited for approval.
///
/// # Errors
/// 404 when there is no such run; 409 when the action did not wait for approval in it or its
/// runbook is not served; 400 for an ambiguous prefix; 503 when the store fails.
pub fn waiting_for_approval(
    store: &AuditStore,
    run: &str,
    action: &str,
) -> Result<crate::audit::RunSummary, (StatusCode, String)> {
    let (run, steps) = match store.show(run) {
        Ok(Some(x)) => x,
        Ok(None) => return Err((StatusCode::NOT_FOUND, format!("no run `{run}`"))),
        Err(e @ crate::audit::AuditError::AmbiguousRun { .. }) => {
            return Err((StatusCode::BAD_REQUEST, e.to_string()));
        }
        Err(e) => return Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    };
    let waited = steps.iter().any(|s| {
        s.step_id == action
            && s.status.as_deref() == Some(crate::exec::status_name(StepStatus::NeedsApproval))
    });
    if !waited {
        return Err((
            StatusCode::CONFLICT,
            format!(
                "action `{action}` did not wait for approval in run {}",
                run.id
            ),
        ));
    }
    Ok(run)
}

/// The re-run an approval asks for: the approved run's runbook for the same key and alert,
/// the recorded params (secrets from their definitions), the one action allowed.
fn rerun_job(
    app: &App,
    store: &AuditStore,
    run: &crate::audit::RunSummary,
    action: &str,
) -> Result<Job, (StatusCode, String)> {
    let Some(rb) = app.catalog.runbooks.iter().find(|r| r.name == run.runbook) else {
        return Err((
            StatusCode::CONFLICT,
            format!("runbook `{}` is not served here", run.runbook),
        ));
    };
    let (key, alert) = store
        .run_context(&run.id)
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
        // A run of the CLI: its incident's key is the runbook's name.
        .unwrap_or_else(|| (rb.name.clone(), None));
    Ok(Job {
        queued_at: Instant::now(),
        runbook: rb.name.clone(),
        key,
        params: crate::revert::params_for(rb, &run.params),
        alert,
        delivery: 0,
        trigger: "approval",
        approved: HashSet::from([action.to_owned()]),
        approval: None,
    })
}

/// Why a job was not queued.
enum Refusal<E> {
    /// A run of the same runbook and key is queued or running.
    Busy,
    /// No room in the queue.
    Full,
    /// The claim in the audit file said no.
    Claim(E),
}

/// Queue `job` unless its key is busy or the queue full; `claim` (the audit file's claim of
/// the slot or approval) runs after room is reserved and before the job is sent, so a claimed
/// job is never dropped for want of room.
fn enqueue<E>(
    app: &App,
    job: Job,
    claim: impl FnOnce() -> Result<(), E>,
) -> Result<(), Refusal<E>> {
    let key = (job.runbook.clone(), job.key.clone());
    if !lock(&app.keys).busy.insert(key.clone()) {
        return Err(Refusal::Busy);
    }
    let free = |r| {
        lock(&app.keys).busy.remove(&key);
        Err(r)
    };
    let Ok(permit) = app.queue.try_reserve() else {
        return free(Refusal::Full);
    };
    if let Err(e) = claim() {
        return free(Refusal::Claim(e));
    }
    app.metrics.queued.fetch_add(1, Ordering::Relaxed);
    permit.send(job);
    Ok(())
}

/// Take approval `id` for `job` and queue it: `Ok` when queued; else the status to answer and
/// whether trying again later may succeed (busy key, full queue).
fn queue_approval(
    app: &App,
    store: &AuditStore,
    mut job: Job,
    id: i64,
) -> Result<(), (StatusCode, String, bool)> {
    job.approval = Some(id);
    enqueue(app, job, || match store.use_approval(id, Utc::now()) {
        Ok(ApprovalUse::Taken) => Ok(()),
        Ok(ApprovalUse::Expired) => Err((StatusCode::GONE, "the approval has expired".into())),
        Ok(ApprovalUse::Gone) => Err((StatusCode::CONFLICT, "the approval was used".into())),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    })
    .map_err(|r| match r {
        Refusal::Busy => (
            StatusCode::CONFLICT,
            "a run of this runbook for the same key is queued or running; try again".into(),
            true,
        ),
        Refusal::Full => (
            StatusCode::SERVICE_UNAVAILABLE,
            "queue full; retry".into(),
            true,
        ),
        Refusal::Claim((code, msg)) => (code, msg, false),
    })
}

/// `POST /api/runs/ID/approve`, body `{"action": ID, "by"?: NAME, "ttl"?: "15m"}`: record the
/// approval and queue the re-run (202); 404 unknown run, 409 the action did not wait for
/// approval (or its key is busy), 410 the approval expired before it could be taken.
async fn api_approve(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = api_auth(&app, &headers, &body) {
        return r;
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return error(StatusCode::BAD_REQUEST, "expected a JSON object"),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(action) = req["action"].as_str() else {
        return error(
            StatusCode::BAD_REQUEST,
            "`action` (an action id) is required",
        );
    };
    let by = req["by"].as_str().unwrap_or("api");
    let ttl = match req["ttl"]
        .as_str()
        .map(crate::runbook::value::parse_duration)
    {
        None => app.config.approval_ttl,
        Some(Ok(d)) => d,
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, &format!("`ttl`: {e}")),
    };
    let store = &app.store;
    let prepared = waiting_for_approval(store, &id, action)
        .and_then(|run| rerun_job(&app, store, &run, action).map(|job| (run, job)));
    let (run, job) = match prepared {
        Ok(x) => x,
        Err((code, msg)) => return error(code, &msg),
    };
    let approval = match store.add_approval(&run.id, action, by, ttl, Utc::now()) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    match queue_approval(&app, store, job, approval.id) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "approval": approval, "queued": true })),
        )
            .into_response(),
        Err((code, msg, _)) => (
            code,
            axum::Json(json!({ "error": msg, "approval": approval })),
        )
            .into_response(),
    }
}

/// A runbook with a schedule, and the last slot this process knows was claimed.
struct Scheduled {
    runbook: String,
    cron: croner::Cron,
    last: Option<DateTime<Utc>>,
}

/// What the background thread keeps between polls.
struct Background {
    started: Instant,
    scheduled: Vec<Scheduled>,
    /// Reverts and approvals reported already (each is said once).
    reported: HashSet<String>,
}

impl Background {
    fn new(app: &App, store: &AuditStore) -> Background {
        let scheduled = app
            .catalog
            .runbooks
            .iter()
            .filter_map(|rb| {
                let expr = rb.triggers.schedule.as_deref()?;
                let cron = match crate::runbook::cron::parse(expr) {
                    Ok(c) => c,
                    Err(e) => {
                        (app.config.log)(&format!("schedule of `{}`: {e}", rb.name));
                        return None;
                    }
                };
                let last = store
                    .last_slot(&rb.name)
                    .ok()
                    .flatten()
                    .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                    .map(|t| t.with_timezone(&Utc));
                Some(Scheduled {
                    runbook: rb.name.clone(),
                    cron,
                    last,
                })
            })
            .collect();
        Background {
            started: Instant::now(),
            scheduled,
            reported: HashSet::new(),
        }
    }

    /// The scheduler's clock: `--schedule-now` plus the time since start, else the wall clock.
    fn now(&self, app: &App) -> DateTime<Utc> {
        app.config.schedule_now.map_or_else(Utc::now, |t| {
            t + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
        })
    }

    /// Queue each scheduled runbook whose latest slot is later than the last one claimed.
    fn schedules(&mut self, app: &App, store: &AuditStore) {
        let now = self.now(app);
        // Whole seconds: croner carries the sub-second part of its start into the slot.
        let whole = chrono::Timelike::with_nanosecond(&now, 0).unwrap_or(now);
        for s in &mut self.scheduled {
            let Ok(slot) = s.cron.find_previous_occurrence(&whole, true) else {
                continue;
            };
            if s.last.is_some_and(|last| last >= slot) {
                continue;
            }
            let Some(rb) = app.catalog.runbooks.iter().find(|r| r.name == s.runbook) else {
                continue;
            };
            let job = Job {
                queued_at: Instant::now(),
                runbook: rb.name.clone(),
                key: "schedule".into(),
                params: params_from(rb, &Value::Null, &BTreeMap::new()),
                alert: None,
                delivery: 0,
                trigger: "schedule",
                approved: HashSet::new(),
                approval: None,
            };
            let claimed = enqueue(app, job, || match store.claim_slot(&rb.name, slot, now) {
                Ok(true) => Ok(()),
                Ok(false) => Err(None),
                Err(e) => Err(Some(e.to_string())),
            });
            match claimed {
                Ok(()) => {
                    s.last = Some(slot);
                    (app.config.log)(&format!(
                        "schedule: `{}` queued for its slot {}",
                        rb.name,
                        slot.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ));
                }
                // Another process ran this slot: take it as ours.
                Err(Refusal::Claim(None)) => s.last = Some(slot),
                Err(Refusal::Claim(Some(e))) => {
                    (app.config.log)(&format!("schedule of `{}`: {e}", rb.name));
                }
                // Busy or full: the next poll tries again.
                Err(Refusal::Busy | Refusal::Full) => {}
            }
        }
    }

    /// Perform the due pending reverts whose runbook's severity allows auto-remediation;
    /// report the others once.
    fn reverts(&mut self, app: &App, store: &AuditStore, rt: &tokio::runtime::Runtime) {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let Ok(due) = store.due_reverts(&now) else {
            return;
        };
        let auto = |rb: &Runbook| auto_remediation(app, rb);
        let no_one = || -> Option<Box<dyn Approver>> { None };
        let reverter = crate::revert::Reverter {
            store,
            catalog: &app.catalog,
            dir: FsPath::new(&app.config.runbooks_dir),
            rt,
            dry_run: false,
            yes: &auto,
            interactive: false,
            approver: &no_one,
            trigger: "serve",
            now: &now,
        };
        for row in due {
            let rb = app
                .catalog
                .runbooks
                .iter()
                .find(|r| r.name == row.revert.runbook);
            let waits = match rb {
                None => Some(format!(
                    "runbook `{}` is not served here",
                    row.revert.runbook
                )),
                Some(rb) if !auto(rb) => Some(format!(
                    "severity {} does not allow auto-remediation: run `runbook tick --yes`",
                    rb.severity
                )),
                Some(_) => None,
            };
            if let Some(why) = waits {
                if self.reported.insert(format!("revert {}", row.id)) {
                    (app.config.log)(&format!(
                        "revert `{}` of run {} ({}) is due and left pending: {why}",
                        row.revert.action_id, row.revert.run_id, row.revert.runbook
                    ));
                }
                continue;
            }
            let item = reverter.one(&row);
            if item.result != "pending" || self.reported.insert(format!("revert {}", row.id)) {
                (app.config.log)(&format!(
                    "revert `{}` of run {} ({}): {}{}",
                    item.action_id,
                    item.run_id,
                    item.runbook,
                    item.result,
                    item.reason.map(|r| format!(" — {r}")).unwrap_or_default()
                ));
            }
        }
    }

    /// Perform the due rechecks of `after_action_unresolved` on the scheduler's clock: the
    /// runbook's checks re-run read-only, then the incident resolved or its next level fired
    /// ([`escalation::recheck_due`]; each claimed once across processes). One left due is
    /// reported once.
    fn rechecks(&mut self, app: &App, store: &AuditStore, rt: &tokio::runtime::Runtime) {
        let now = self.now(app);
        let notifier = HostNotifier::default();
        let Ok(done) = rt.block_on(escalation::recheck_due(
            store,
            &app.catalog,
            now,
            &notifier,
            false,
        )) else {
            return;
        };
        for r in done {
            if r.result == "pending" && !self.reported.insert(format!("recheck {}", r.incident_id))
            {
                continue;
            }
            if r.fired.is_some() {
                app.metrics.escalations.fetch_add(1, Ordering::Relaxed);
            }
            (app.config.log)(&format!(
                "recheck of incident #{} `{}`: {}{}{}",
                r.incident_id,
                r.runbook,
                r.result,
                r.reason.map(|why| format!(" — {why}")).unwrap_or_default(),
                r.run_id
                    .map(|run| format!(" (run {run})"))
                    .unwrap_or_default()
            ));
        }
    }

    /// Queue the re-runs of approvals recorded by `runbook approve`.
    fn approvals(&mut self, app: &App, store: &AuditStore) {
        let Ok(pending) = store.pending_approvals() else {
            return;
        };
        for a in pending {
            let job = waiting_for_approval(store, &a.run_id, &a.action_id)
                .and_then(|run| rerun_job(app, store, &run, &a.action_id))
                .map_err(|(code, msg)| (code, msg, code == StatusCode::SERVICE_UNAVAILABLE));
            let queued = job.and_then(|job| queue_approval(app, store, job, a.id));
            match queued {
                Ok(()) => (app.config.log)(&approved_line(&a, "re-run queued")),
                // Busy, full, the store failing: the next poll tries again.
                Err((_, _, true)) => {}
                Err((_, msg, false)) => {
                    if self.reported.insert(format!("approval {}", a.id)) {
                        (app.config.log)(&approved_line(&a, &msg));
                    }
                }
            }
        }
    }
}

fn approved_line(a: &Approval, what: &str) -> String {
    format!(
        "approval #{} of `{}` in run {} by {}: {what}",
        a.id, a.action_id, a.run_id, a.approved_by
    )
}

/// Whether policy.yaml lets mutating actions of `rb` run with no one asked.
fn auto_remediation(app: &App, rb: &Runbook) -> bool {
    app.catalog
        .policy
        .as_ref()
        .and_then(|p| p.auto_remediation.get(&rb.severity))
        .copied()
        .unwrap_or(false)
}

/// Start the background thread: schedules, due reverts, due rechecks
/// (`after_action_unresolved`), approvals from the CLI, every `poll`, until [`stop`].
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn_background(app: &Arc<App>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let app = Arc::clone(app);
    std::thread::Builder::new()
        .name("runbook-background".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let Ok(store) = AuditStore::open(&app.config.db) else {
                (app.config.log)("background: cannot open the audit file");
                return;
            };
            let mut bg = Background::new(&app, &store);
            while !app.stopping.load(Ordering::SeqCst) {
                bg.schedules(&app, &store);
                bg.reverts(&app, &store, &rt);
                bg.rechecks(&app, &store, &rt);
                bg.approvals(&app, &store);
                // Sleep in small steps so a stop is noticed soon.
                let until = Instant::now() + app.config.poll;
                while Instant::now() < until && !app.stopping.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50).min(app.config.poll));
                }
            }
        })
}
