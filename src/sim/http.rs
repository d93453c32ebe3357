//! The simulator's HTTP routes, one router per listener.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::state::Fault;
use super::{Inner, Role};

type App = AxState<Arc<Inner>>;

/// One router per listener.
pub(super) fn routers(inner: &Arc<Inner>) -> Vec<(Role, Router)> {
    let feed = || {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/health", get(health))
            .route("/sse", get(sse))
            .route("/metrics", get(feed_metrics))
            .route("/recalibrate", post(recalibrate))
    };
    let public = feed()
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(inner),
            behind_nginx,
        ))
        .with_state(Arc::clone(inner));
    let feed = feed()
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(inner),
            feed_alive,
        ))
        .with_state(Arc::clone(inner));
    let runner = Router::new()
        .route("/metrics", get(runner_metrics))
        .route("/recalibrate", post(recalibrate))
        .with_state(Arc::clone(inner));
    let prometheus = Router::new()
        .route("/api/v1/query", get(prom_query).post(prom_query_form))
        .with_state(Arc::clone(inner));
    let exchange = Router::new()
        .route("/status", get(exchange_status))
        .with_state(Arc::clone(inner));
    let control = Router::new()
        .route("/state", get(control_state))
        .route("/faults", get(control_state).put(set_faults))
        .route(
            "/faults/{name}",
            post(fault_on_route).delete(fault_off_route),
        )
        .route("/units/{unit}", get(unit_show))
        .route("/units/{unit}/{op}", post(unit_op))
        .route("/journal/{unit}", get(journal))
        .route("/nginx/test", get(nginx_test))
        .route("/ufw", get(ufw))
        .route("/chrony/tracking", get(chrony_tracking))
        .route("/timedatectl", get(timedatectl))
        .route("/sysctl", post(sysctl))
        .route("/recalibrate", post(recalibrate))
        .route("/notify/{channel}", post(notify))
        .with_state(Arc::clone(inner));
    vec![
        (Role::Public, public),
        (Role::Feed, feed),
        (Role::Runner, runner),
        (Role::Prometheus, prometheus),
        (Role::Exchange, exchange),
        (Role::Control, control),
    ]
}

/// A connection kept alive from before the feed went down gets what a dead process gives: an
/// error and the connection closed.
async fn feed_alive(
    AxState(inner): App,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !inner.lock().feed_up() {
        return closed(StatusCode::SERVICE_UNAVAILABLE, "aurora-live-feed is down");
    }
    next.run(req).await
}

/// nginx in front of the feed: 502 when the upstream is down.
async fn behind_nginx(
    AxState(inner): App,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (nginx, feed) = {
        let st = inner.lock();
        (st.units["nginx"].active(), st.feed_up())
    };
    if !nginx {
        return closed(StatusCode::SERVICE_UNAVAILABLE, "nginx is down");
    }
    if !feed {
        return closed(
            StatusCode::BAD_GATEWAY,
            "502 Bad Gateway: connect() failed (111: Connection refused) while connecting to upstream",
        );
    }
    next.run(req).await
}

fn closed(status: StatusCode, why: &'static str) -> Response {
    let mut r = (status, why).into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

async fn healthz() -> &'static str {
    "ok"
}

async fn health(AxState(inner): App) -> axum::Json<Value> {
    axum::Json(inner.lock().health())
}

/// Counts a stream client while its stream lives.
struct Client(Arc<Inner>);

impl Drop for Client {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.sse_clients = st.sse_clients.saturating_sub(1);
    }
}

async fn sse(AxState(inner): App, headers: HeaderMap) -> Response {
    let (token_ok, presented, cors) = {
        let st = inner.lock();
        let expected = if st.has(Fault::Auth) {
            format!("{}-rotated", st.token)
        } else {
            st.token.clone()
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        (
            given == Some(expected.as_str()),
            given.is_some(),
            !st.has(Fault::Cors),
        )
    };
    let mut resp = if token_ok {
        let rx = inner.events.subscribe();
        inner.lock().sse_clients += 1;
        let client = Client(Arc::clone(&inner));
        // Ends when the feed goes down, the simulator stops, or the client leaves.
        let stream = futures::stream::unfold((rx, client), |(mut rx, client)| async move {
            loop {
                match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                    Ok(Ok(data)) => {
                        let event = Event::default().event("decision").data(data);
                        return Some((Ok::<_, Infallible>(event), (rx, client)));
                    }
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {}
                }
                if !client.0.lock().feed_up() {
                    return None;
                }
            }
        });
        Sse::new(stream).into_response()
    } else {
        // A request without credentials (a CORS check, a preflight) is refused quietly; a
        // wrong token is worth a line in the log.
        if presented {
            inner.lock().log(
                "aurora-live-feed",
                "SSE auth: 401 unauthorized (invalid token)",
            );
        }
        (StatusCode::UNAUTHORIZED, "unauthorized").into_response()
    };
    if cors {
        resp.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    resp
}

/// One metric of an exposition: name, type, samples (label set as text, value).
type Metric<'a> = (&'a str, &'a str, Vec<(String, f64)>);

fn metrics_text(lines: &[Metric<'_>]) -> Response {
    let mut s = String::new();
    for (name, kind, samples) in lines {
        let _ = writeln!(s, "# HELP {name} Aurora simulator.");
        let _ = writeln!(s, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(s, "{name}{labels} {v}");
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s,
    )
        .into_response()
}

#[allow(clippy::cast_precision_loss)]
async fn feed_metrics(AxState(inner): App) -> Response {
    let st = inner.lock();
    let (p50, p90, p99) = st.decision_ms();
    let denied: Vec<(String, f64)> = st
        .denied
        .iter()
        .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), *n as f64))
        .collect();
    metrics_text(&[
        (
            "sse_events_total",
            "counter",
            vec![(String::new(), st.events_total as f64)],
        ),
        (
            "sse_clients",
            "gauge",
            vec![(String::new(), st.sse_clients as f64)],
        ),
        ("policy_denied_total", "counter", denied),
        ("metrics_buffer_size", "gauge", vec![(String::new(), 12.0)]),
        (
            "decision_ms",
            "summary",
            vec![
                ("{quantile=\"0.5\"}".into(), p50),
                ("{quantile=\"0.9\"}".into(), p90),
                ("{quantile=\"0.99\"}".into(), p99),
            ],
        ),
    ])
}

#[allow(clippy::cast_precision_loss)]
async fn runner_metrics(AxState(inner): App) -> Response {
    let st = inner.lock();
    let denied: Vec<(String, f64)> = st
        .denied
        .iter()
        .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), *n as f64))
        .collect();
    // Cumulative bucket shares: the healthy p99 lands near 190 ms, the spike's near 490 ms.
    let shares: [(&str, f64); 7] = if st.has(Fault::Queueing) {
        // A normal median, a long tail: decisions wait in the runner's queue.
        [
            ("50", 0.4),
            ("100", 0.8),
            ("200", 0.9),
            ("300", 0.95),
            ("500", 0.97),
            ("1000", 1.0),
            ("+Inf", 1.0),
        ]
    } else if st.exec_p99_ms() > 300.0 {
        [
            ("50", 0.1),
            ("100", 0.3),
            ("200", 0.6),
            ("300", 0.85),
            ("500", 0.995),
            ("1000", 1.0),
            ("+Inf", 1.0),
        ]
    } else {
        [
            ("50", 0.4),
            ("100", 0.8),
            ("200", 0.995),
            ("300", 1.0),
            ("500", 1.0),
            ("1000", 1.0),
            ("+Inf", 1.0),
        ]
    };
    let count = 1000.0 + st.orders_total as f64;
    let mut buckets: Vec<(String, f64)> = shares
        .iter()
        .map(|(le, share)| (format!("_bucket{{le=\"{le}\"}}"), (share * count).round()))
        .collect();
    buckets.push(("_sum".into(), count * 95.0));
    buckets.push(("_count".into(), count));
    metrics_text(&[
        ("calibration_ece", "gauge", vec![(String::new(), st.ece)]),
        (
            "calibration_age_seconds",
            "gauge",
            vec![(String::new(), st.calibration_age_s().round())],
        ),
        (
            "circuit_breaker_state",
            "gauge",
            vec![(String::new(), f64::from(st.breaker()))],
        ),
        ("exec_latency_ms", "histogram", buckets),
        ("policy_denied_total", "counter", denied),
        (
            "orders_total",
            "counter",
            vec![(String::new(), st.orders_total as f64)],
        ),
    ])
}

#[derive(Deserialize)]
struct PromQuery {
    query: Option<String>,
}

async fn prom_query(AxState(inner): App, Query(q): Query<PromQuery>) -> Response {
    prom_answer(&inner, q.query.as_deref())
}

async fn prom_query_form(AxState(inner): App, body: String) -> Response {
    let query = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "query")
        .map(|(_, v)| percent_decode(v));
    prom_answer(&inner, query.as_deref())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The instant-query API for the recording rules the runbooks read; any other series is
/// absent (an empty vector, as Prometheus answers for a series it does not have).
fn prom_answer(inner: &Inner, query: Option<&str>) -> Response {
    let Some(query) = query.map(str::trim).filter(|q| !q.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"status": "error", "errorType": "bad_data", "error": "missing query"}),
            ),
        )
            .into_response();
    };
    let st = inner.lock();
    let value = match query {
        "exec:latency_p99:10m" => Some(st.exec_p99_ms()),
        "policy:deny_ratio:15m" => Some(st.deny_rate()),
        "sse:availability_ratio:5m" => Some(st.availability()),
        "calibration_ece" => Some(st.ece),
        "circuit_breaker_state" => Some(f64::from(st.breaker())),
        _ => None,
    };
    #[allow(clippy::cast_precision_loss)]
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let result: Vec<Value> = value
        .map(|v| json!({"metric": {"__name__": query}, "value": [now, v.to_string()]}))
        .into_iter()
        .collect();
    axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
        .into_response()
}

async fn exchange_status(AxState(inner): App) -> Response {
    if inner.lock().has(Fault::Breaker) {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "60")],
            axum::Json(json!({"error": "rate limit exceeded"})),
        )
            .into_response()
    } else {
        axum::Json(json!({"status": "operational"})).into_response()
    }
}

async fn recalibrate(AxState(inner): App) -> axum::Json<Value> {
    let ece = inner.recalibrate();
    axum::Json(json!({"status": "recalibrated", "ece": ece}))
}

async fn control_state(AxState(inner): App) -> axum::Json<Value> {
    let st = inner.lock();
    let units: BTreeMap<&str, Value> = st
        .units
        .iter()
        .map(|(n, u)| {
            (
                *n,
                json!({"active_state": u.active_state, "restarts": u.restarts}),
            )
        })
        .collect();
    axum::Json(json!({
        "faults": st.faults.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "units": units,
        "calls": st.calls,
        "runner_env": {
            "DECISIONS_PER_MINUTE": st.runner_env.decisions_per_minute,
            "P_THRESHOLD": st.runner_env.p_threshold,
            "KELLY_MULTIPLIER": st.runner_env.kelly,
        },
        "sysctl": st.sysctl,
    }))
}

#[derive(Deserialize)]
struct Faults {
    faults: Vec<String>,
}

fn bad(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": msg.into()})),
    )
        .into_response()
}

async fn set_faults(AxState(inner): App, axum::Json(body): axum::Json<Faults>) -> Response {
    let mut want = Vec::new();
    for name in &body.faults {
        match name.parse::<Fault>() {
            Ok(f) => want.push(f),
            Err(e) => return bad(e),
        }
    }
    let now: Vec<Fault> = inner.lock().faults.iter().copied().collect();
    for f in now.iter().filter(|f| !want.contains(f)) {
        inner.fault_off(*f);
    }
    for f in want.iter().filter(|f| !now.contains(f)) {
        if let Err(e) = inner.fault_on(*f) {
            return (
                StatusCode::CONFLICT,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    }
    control_state(AxState(inner)).await.into_response()
}

async fn fault_on_route(AxState(inner): App, Path(name): Path<String>) -> Response {
    match name.parse::<Fault>() {
        Err(e) => bad(e),
        Ok(f) => match inner.fault_on(f) {
            Ok(()) => control_state(AxState(inner)).await.into_response(),
            Err(e) => (
                StatusCode::CONFLICT,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response(),
        },
    }
}

async fn fault_off_route(AxState(inner): App, Path(name): Path<String>) -> Response {
    match name.parse::<Fault>() {
        Err(e) => bad(e),
        Ok(f) => {
            inner.fault_off(f);
            control_state(AxState(inner)).await.into_response()
        }
    }
}

async fn unit_show(AxState(inner): App, Path(unit): Path<String>) -> Response {
    inner.lock().unit_show(&unit).into_response()
}

async fn unit_op(AxState(inner): App, Path((unit, op)): Path<(String, String)>) -> Response {
    let inner2 = Arc::clone(&inner);
    let r = tokio::task::spawn_blocking(move || inner2.unit_op(&unit, &op)).await;
    match r {
        Ok(Ok(msg)) => axum::Json(json!({"exit": 0, "message": msg})).into_response(),
        Ok(Err((code, msg))) => axum::Json(json!({"exit": code, "message": msg})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct Since {
    since_s: Option<u64>,
}

async fn journal(AxState(inner): App, Path(unit): Path<String>, Query(q): Query<Since>) -> String {
    let unit = unit.strip_suffix(".service").unwrap_or(&unit).to_owned();
    let lines = inner
        .lock()
        .journal_since(&unit, Duration::from_secs(q.since_s.unwrap_or(3600)));
    let mut s = lines.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

async fn nginx_test(AxState(inner): App) -> axum::Json<Value> {
    let site = std::fs::read_to_string(&inner.layout.nginx_site).unwrap_or_default();
    let path = inner.layout.nginx_site.display().to_string();
    let opens = site.matches('{').count();
    let closes = site.matches('}').count();
    if site.is_empty() || opens != closes {
        axum::Json(json!({"exit": 1, "message": format!(
            "nginx: [emerg] unexpected end of file, expecting \"}}\" in {path}\nnginx: configuration file /etc/nginx/nginx.conf test failed"
        )}))
    } else {
        axum::Json(json!({"exit": 0, "message":
            "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\nnginx: configuration file /etc/nginx/nginx.conf test is successful"
        }))
    }
}

async fn ufw() -> &'static str {
    "Status: active\n\nTo                         Action      From\n--                         ------      ----\n443/tcp                    ALLOW       Anywhere\n8001/tcp                   ALLOW       127.0.0.1\n"
}

async fn chrony_tracking(AxState(inner): App) -> axum::Json<Value> {
    let st = inner.lock();
    if !st.units["chrony"].active() {
        return axum::Json(json!({"exit": 1, "message": "506 Cannot talk to daemon"}));
    }
    let (leap, offset) = if st.synced() {
        ("Normal", "0.000012345")
    } else {
        ("Not synchronised", "2.731000000")
    };
    axum::Json(json!({"exit": 0, "message": format!(
        "Reference ID    : 7F000001 (127.0.0.1)\nStratum         : 3\nRef time (UTC)  : {}\nSystem time     : {offset} seconds fast of NTP time\nLast offset     : +{offset} seconds\nRMS offset      : 0.000021000 seconds\nFrequency       : 1.234 ppm slow\nRoot delay      : 0.001000000 seconds\nRoot dispersion : 0.000500000 seconds\nUpdate interval : 64.0 seconds\nLeap status     : {leap}\n",
        chrono::Utc::now().format("%a %b %d %H:%M:%S %Y")
    )}))
}

async fn timedatectl(AxState(inner): App) -> String {
    if inner.lock().synced() {
        "yes\n"
    } else {
        "no\n"
    }
    .to_owned()
}

#[derive(Deserialize)]
struct Sysctl {
    key: String,
    value: String,
}

async fn sysctl(AxState(inner): App, axum::Json(s): axum::Json<Sysctl>) -> axum::Json<Value> {
    let mut st = inner.lock();
    st.calls.push(format!("sysctl -w {}={}", s.key, s.value));
    st.sysctl.insert(s.key.clone(), s.value.clone());
    axum::Json(json!({"exit": 0, "message": format!("{} = {}", s.key, s.value)}))
}

/// A notification channel pointed at the simulator (the demo's policy): recorded.
async fn notify(AxState(inner): App, Path(channel): Path<String>, body: String) -> StatusCode {
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let text = v["text"]
        .as_str()
        .or_else(|| v["message"].as_str())
        .map_or_else(|| body.chars().take(160).collect(), str::to_owned);
    let first = text.lines().next().unwrap_or_default().to_owned();
    inner
        .lock()
        .calls
        .push(format!("notified {channel}: {first}"));
    StatusCode::NO_CONTENT
}
