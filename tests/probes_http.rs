//! The `http`, `sse` and `prometheus` probes against real loopback servers (127.0.0.1 only).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, post};
use runbook::host::RealHost;
use runbook::probes::{ProbeContext, ProbeKind, ProbeOutcome};
use serde_json::{Map, Value, json};

const TOKEN: &str = "secret-token-123";

const METRICS: &str = r#"# HELP sse_events_total Events sent.
# TYPE sse_events_total counter
sse_events_total 1234
# HELP policy_denied_total Denied requests.
# TYPE policy_denied_total counter
policy_denied_total{reason="rate_limit"} 7
policy_denied_total{reason="scope"} 3
policy_denied_total{reason="bad \"quote\"\\path\n"} 2
# HELP calibration_ece Expected calibration error.
# TYPE calibration_ece gauge
calibration_ece 0.042
# TYPE circuit_breaker_state gauge
circuit_breaker_state{name="upstream"} 0
# TYPE weird untyped
weird NaN
# HELP exec_latency_ms Execution latency.
# TYPE exec_latency_ms histogram
exec_latency_ms_bucket{le="5"} 10
exec_latency_ms_bucket{le="10"} 30
exec_latency_ms_bucket{le="25"} 70
exec_latency_ms_bucket{le="50"} 90
exec_latency_ms_bucket{le="100"} 98
exec_latency_ms_bucket{le="+Inf"} 100
exec_latency_ms_sum 2100
exec_latency_ms_count 100
"#;

fn sse_stream(events: bool) -> Body {
    // Bounded: at most 100 chunks, one every 50 ms.
    let stream = futures_util::stream::unfold(0_u32, move |n| async move {
        if n >= 100 {
            return None;
        }
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let chunk = if n == 0 {
            ": welcome\n\n".to_owned()
        } else if events {
            format!("id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n\n")
        } else {
            ": keepalive\n\n".to_owned()
        };
        Some((Ok::<_, Infallible>(chunk), n + 1))
    });
    Body::from_stream(stream)
}

async fn sse(headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, "missing or bad token").into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        sse_stream(true),
    )
        .into_response()
}

async fn query(Query(q): Query<HashMap<String, String>>) -> Response {
    match q.get("query").map(String::as_str) {
        Some("sse:availability_ratio:5m") => Json(json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"__name__": "sse:availability_ratio:5m", "job": "api"},
                 "value": [1_700_000_000.0, "0.9995"]}
            ]}
        }))
        .into_response(),
        Some("bad(") => (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "error", "errorType": "bad_data", "error": "parse error"})),
        )
            .into_response(),
        _ => Json(json!({"status": "success", "data": {"resultType": "vector", "result": []}}))
            .into_response(),
    }
}

async fn serve() -> SocketAddr {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/health",
            get(|| async {
                Json(json!({
                    "status": "ok",
                    "sse_clients": {"active": 3, "max": 100},
                    "tailer_stats": {"file_positions": {"/var/log/a.jsonl": 4096, "/var/log/b.jsonl": 10}},
                    "current_metrics": {"circuit_breaker": "closed", "error_rate": 0.01},
                }))
            }),
        )
        .route("/sse", get(sse))
        .route(
            "/sse-quiet",
            get(|| async { ([(header::CONTENT_TYPE, "text/event-stream")], sse_stream(false)) }),
        )
        .route(
            "/metrics",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], METRICS) }),
        )
        .route(
            "/cors",
            head(|| async { [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")] }),
        )
        .route("/api/v1/query", get(query))
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/healthz")]) }),
        )
        .route(
            "/echo-auth",
            post(|headers: HeaderMap, body: String| async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                // Echoes whether the token arrived, never the token itself.
                Json(json!({"authorized": auth == format!("Bearer {TOKEN}"), "body": body}))
            }),
        )
        .route(
            "/echo-token",
            get(|headers: HeaderMap| async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                (
                    [("x-echo", auth.clone())],
                    Json(json!({"auth": auth, "nested": [auth]})),
                )
            }),
        )
        .route("/big", get(|| async { "x".repeat(100 * 1024) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn run_with(kind: ProbeKind, params: &Value, timeout: Duration) -> ProbeOutcome {
    let host = RealHost::new();
    let cx = ProbeContext::new(&host, timeout, false);
    kind.run(params, &cx).await
}

async fn run(kind: ProbeKind, params: &Value) -> ProbeOutcome {
    run_with(kind, params, Duration::from_secs(5)).await
}

fn observed(outcome: ProbeOutcome) -> Map<String, Value> {
    match outcome {
        ProbeOutcome::Observed(m) => m,
        other => panic!("expected an observation, got {other:?}"),
    }
}

fn token_file() -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), format!("  {TOKEN}\n")).unwrap();
    f
}

fn assert_no_token(outcome: &ProbeOutcome) {
    let text = match outcome {
        ProbeOutcome::Observed(m) => serde_json::to_string(m).unwrap(),
        other => format!("{other:?}"),
    };
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    assert!(!format!("{outcome:?}").contains(TOKEN));
}

#[tokio::test]
async fn http_status_and_body() {
    let addr = serve().await;
    let out = observed(
        run(
            ProbeKind::Http,
            &json!({"url": format!("http://{addr}/healthz")}),
        )
        .await,
    );
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["body"], json!("ok"));
    assert_eq!(out["body_truncated"], json!(false));
    assert_eq!(out["value"], Value::Null);
    assert!(out["duration_ms"].is_u64());
    assert!(out.get("reason").is_none());
}

#[tokio::test]
async fn http_jq_values() {
    let addr = serve().await;
    let url = format!("http://{addr}/health");
    for (path, want) in [
        (".sse_clients.active", json!(3)),
        (".tailer_stats.file_positions | length", json!(2)),
        (".current_metrics.circuit_breaker", json!("closed")),
        (
            ".tailer_stats.file_positions | keys | .[0]",
            json!("/var/log/a.jsonl"),
        ),
        (".sse_clients.active < .sse_clients.max", json!(true)),
    ] {
        let out = observed(run(ProbeKind::Http, &json!({"url": url, "jq": path})).await);
        assert_eq!(out["status"], json!(200));
        assert_eq!(out["value"], want, "jq {path}");
        assert_eq!(out["json"]["status"], json!("ok"));
    }
    // Without `jq`, `value` is the whole JSON body.
    let out = observed(run(ProbeKind::Http, &json!({"url": url})).await);
    assert_eq!(out["value"]["sse_clients"]["max"], json!(100));
    // A jq path with a syntax error is a bad parameter.
    let bad = run(ProbeKind::Http, &json!({"url": url, "jq": ".a["})).await;
    assert!(matches!(bad, ProbeOutcome::Error(e) if e.contains("invalid jq path")));
}

#[tokio::test]
async fn http_head_cors_header() {
    let addr = serve().await;
    let out = observed(
        run(
            ProbeKind::Http,
            &json!({"url": format!("http://{addr}/cors"), "method": "HEAD", "headers": {"Origin": "https://example.test"}}),
        )
        .await,
    );
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["headers"]["access-control-allow-origin"], json!("*"));
    assert_eq!(out["body"], json!(""));
}

#[tokio::test]
async fn http_bearer_token_sent_never_shown() {
    let addr = serve().await;
    let tf = token_file();
    let outcome = run(
        ProbeKind::Http,
        &json!({
            "url": format!("http://{addr}/echo-auth"),
            "method": "POST",
            "body": "hello",
            "token_file": tf.path(),
            "jq": ".authorized",
        }),
    )
    .await;
    assert_no_token(&outcome);
    let out = observed(outcome);
    assert_eq!(out["value"], json!(true));
    assert_eq!(out["json"]["body"], json!("hello"));

    // A server echoing the token back: the result redacts it.
    let outcome = run(
        ProbeKind::Http,
        &json!({"url": format!("http://{addr}/echo-token"), "token_file": tf.path()}),
    )
    .await;
    assert_no_token(&outcome);
    let out = observed(outcome);
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["headers"]["x-echo"], json!("Bearer [redacted]"));
    assert_eq!(out["value"]["auth"], json!("Bearer [redacted]"));

    let missing = run(
        ProbeKind::Http,
        &json!({"url": format!("http://{addr}/healthz"), "token_file": "/nonexistent/token"}),
    )
    .await;
    assert!(matches!(&missing, ProbeOutcome::Error(e) if e.contains("token_file")));
}

#[tokio::test]
async fn http_redirects_only_when_asked() {
    let addr = serve().await;
    let url = format!("http://{addr}/redirect");
    let out = observed(run(ProbeKind::Http, &json!({"url": url})).await);
    assert_eq!(out["status"], json!(302));
    assert_eq!(out["headers"]["location"], json!("/healthz"));
    let out = observed(
        run(
            ProbeKind::Http,
            &json!({"url": url, "follow_redirects": true}),
        )
        .await,
    );
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["body"], json!("ok"));
}

#[tokio::test]
async fn http_body_is_capped() {
    let addr = serve().await;
    let out = observed(
        run(
            ProbeKind::Http,
            &json!({"url": format!("http://{addr}/big")}),
        )
        .await,
    );
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["body"].as_str().unwrap().len(), 64 * 1024);
    assert_eq!(out["body_truncated"], json!(true));
}

#[tokio::test]
async fn http_refused_and_timeout_are_observations() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = observed(
        run(
            ProbeKind::Http,
            &json!({"url": format!("http://{closed}/healthz")}),
        )
        .await,
    );
    assert!(
        out["reason"].as_str().unwrap().contains("refused"),
        "{out:?}"
    );
    assert_eq!(out["unreachable"], json!(true));

    let addr = serve().await;
    let started = std::time::Instant::now();
    let out = observed(
        run_with(
            ProbeKind::Http,
            &json!({"url": format!("http://{addr}/slow")}),
            Duration::from_millis(300),
        )
        .await,
    );
    assert!(
        out["reason"].as_str().unwrap().contains("timed out"),
        "{out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let bad = run(
        ProbeKind::Http,
        &json!({"url": format!("http://{addr}/healthz"), "headers": {"X-Key": "line\nbreak"}}),
    )
    .await;
    assert!(
        matches!(&bad, ProbeOutcome::Error(e) if e.contains("`X-Key`") && !e.contains("break"))
    );

    let bad = run(ProbeKind::Http, &json!({"url": "not a url"})).await;
    assert!(matches!(bad, ProbeOutcome::Error(e) if e.contains("bad url")));
}

#[tokio::test]
async fn sse_first_event_and_window() {
    let addr = serve().await;
    let tf = token_file();
    let url = format!("http://{addr}/sse");
    let outcome = run(
        ProbeKind::Sse,
        &json!({"url": url, "token_file": tf.path()}),
    )
    .await;
    assert_no_token(&outcome);
    let out = observed(outcome);
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["connected"], json!(true));
    let first = out["first_event_ms"].as_u64().unwrap();
    // The first event follows a comment by 50 ms.
    assert!((40..2000).contains(&first), "first_event_ms {first}");
    assert_eq!(out["events"], json!(1));
    assert_eq!(out["value"], json!(1));

    let out = observed(
        run(
            ProbeKind::Sse,
            &json!({"url": url, "token_file": tf.path(), "window": "600ms"}),
        )
        .await,
    );
    let events = out["events"].as_u64().unwrap();
    // One event every 50 ms for 600 ms: about 11; allow for a slow machine.
    assert!((5..=13).contains(&events), "events {events}");
    assert_eq!(out["value"], json!(events));
    assert_eq!(out["closed"], json!(false));
}

#[tokio::test]
async fn sse_unauthorized_is_an_observation() {
    let addr = serve().await;
    let out = observed(
        run(
            ProbeKind::Sse,
            &json!({"url": format!("http://{addr}/sse")}),
        )
        .await,
    );
    assert_eq!(out["status"], json!(401));
    assert_eq!(out["connected"], json!(false));
    assert_eq!(out["events"], json!(0));
    assert_eq!(out["first_event_ms"], Value::Null);
}

#[tokio::test]
async fn sse_no_event_in_time() {
    let addr = serve().await;
    let started = std::time::Instant::now();
    let out = observed(
        run(
            ProbeKind::Sse,
            &json!({"url": format!("http://{addr}/sse-quiet"), "first_event_within": "300ms"}),
        )
        .await,
    );
    assert_eq!(out["connected"], json!(true));
    assert_eq!(out["first_event_ms"], Value::Null);
    assert_eq!(out["events"], json!(0));
    assert!(started.elapsed() < Duration::from_secs(2));

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = observed(
        run(
            ProbeKind::Sse,
            &json!({"url": format!("http://{closed}/sse")}),
        )
        .await,
    );
    assert!(out["reason"].as_str().unwrap().contains("refused"));
}

#[tokio::test]
async fn prometheus_scrape() {
    let addr = serve().await;
    let url = format!("http://{addr}/metrics");
    let scrape = |metric: &str, extra: Value| {
        let mut p = json!({"url": url, "metric": metric});
        if let Value::Object(m) = extra {
            p.as_object_mut().unwrap().extend(m);
        }
        p
    };

    let out = observed(
        run(
            ProbeKind::Prometheus,
            &scrape("sse_events_total", json!({})),
        )
        .await,
    );
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["value"], json!(1234.0));

    let out = observed(
        run(
            ProbeKind::Prometheus,
            &scrape("policy_denied_total", json!({})),
        )
        .await,
    );
    assert_eq!(out["value"], json!(12.0));
    assert_eq!(out["samples"].as_array().unwrap().len(), 3);
    assert_eq!(
        out["samples"][2]["labels"]["reason"],
        json!("bad \"quote\"\\path\n")
    );

    let out = observed(
        run(
            ProbeKind::Prometheus,
            &scrape(
                "policy_denied_total",
                json!({"labels": {"reason": "rate_limit"}}),
            ),
        )
        .await,
    );
    assert_eq!(out["value"], json!(7.0));

    let out = observed(run(ProbeKind::Prometheus, &scrape("calibration_ece", json!({}))).await);
    assert!((out["value"].as_f64().unwrap() - 0.042).abs() < 1e-12);
    let out = observed(
        run(
            ProbeKind::Prometheus,
            &scrape(
                "circuit_breaker_state",
                json!({"labels": {"name": "upstream"}}),
            ),
        )
        .await,
    );
    assert_eq!(out["value"], json!(0.0));
    let out = observed(run(ProbeKind::Prometheus, &scrape("weird", json!({}))).await);
    assert_eq!(out["value"], json!("NaN"));

    let out = observed(run(ProbeKind::Prometheus, &scrape("no_such_metric", json!({}))).await);
    assert_eq!(out["value"], Value::Null);
    assert_eq!(out["reason"], json!("metric not found"));
}

#[tokio::test]
async fn prometheus_histogram_quantile() {
    let addr = serve().await;
    let url = format!("http://{addr}/metrics");
    // 50th percentile: rank 50 falls in (10, 25] holding ranks 30..70: 10 + 15 * 20/40.
    // 95th: rank 95 in (50, 100] holding 90..98: 50 + 50 * 5/8.
    // 99th: rank 99 is beyond the last finite bucket: its bound, 100.
    for (q, want) in [(0.5, 17.5), (0.95, 81.25), (0.99, 100.0)] {
        let out = observed(
            run(
                ProbeKind::Prometheus,
                &json!({"url": url, "metric": "exec_latency_ms", "quantile": q}),
            )
            .await,
        );
        let got = out["quantile"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-6, "q{q}: {got} != {want}");
        assert_eq!(out["value"], out["quantile"]);
        assert_eq!(out["count"], json!(100.0));
    }
    let out = observed(
        run(
            ProbeKind::Prometheus,
            &json!({"url": url, "metric": "exec_latency_ms"}),
        )
        .await,
    );
    assert_eq!(out["value"], json!(100.0));
    assert_eq!(out["sum"], json!(2100.0));
}

#[tokio::test]
async fn prometheus_query_api() {
    let addr = serve().await;
    let server = format!("http://{addr}");
    let out = observed(
        run(
            ProbeKind::Prometheus,
            &json!({"server": server, "query": "sse:availability_ratio:5m"}),
        )
        .await,
    );
    assert_eq!(out["status"], json!(200));
    assert!((out["value"].as_f64().unwrap() - 0.9995).abs() < 1e-12);
    assert_eq!(out["samples"][0]["labels"]["job"], json!("api"));

    let out = observed(
        run(
            ProbeKind::Prometheus,
            &json!({"server": server, "query": "absent_rule"}),
        )
        .await,
    );
    assert_eq!(out["value"], Value::Null);
    assert!(out["reason"].as_str().unwrap().contains("no samples"));

    let bad = run(
        ProbeKind::Prometheus,
        &json!({"server": server, "query": "bad("}),
    )
    .await;
    assert!(matches!(bad, ProbeOutcome::Error(e) if e.contains("parse error")));

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = observed(
        run(
            ProbeKind::Prometheus,
            &json!({"url": format!("http://{closed}/metrics"), "metric": "up"}),
        )
        .await,
    );
    assert!(out["reason"].as_str().unwrap().contains("refused"));
}
