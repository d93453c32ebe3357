//! [`Hooks`]: a loopback HTTP server standing in for a policy's webhook channels, recording
//! every POST (its path and JSON body), for the tests that watch pages being sent
//! (`tests/escalation.rs`, `tests/recheck.rs`, `tests/clock_jumps.rs`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::{StatusCode, Uri};
use axum::routing::post;
use serde_json::Value;

/// What the server received: (path, JSON body), in order.
pub type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// The server; it stops with its runtime when dropped.
pub struct Hooks {
    /// `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    /// Every POST so far.
    pub received: Received,
    _rt: tokio::runtime::Runtime,
}

/// Record a POST and answer 200.
#[allow(
    clippy::unused_async,
    reason = "an axum handler; only a crate that calls it directly sees no await"
)]
pub async fn record(State(rx): State<Received>, uri: Uri, body: axum::body::Bytes) -> StatusCode {
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    rx.lock().unwrap().push((uri.path().to_owned(), v));
    StatusCode::OK
}

impl Hooks {
    /// A server whose every POST goes to `handler`: [`record`], or a handler of the test's
    /// own that calls it and answers as it likes.
    pub fn with<H, T>(handler: H) -> Hooks
    where
        H: Handler<T, Received>,
        T: 'static,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let received: Received = Arc::default();
        let app = Router::new()
            .route("/{*path}", post(handler))
            .with_state(Arc::clone(&received));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Hooks {
            addr,
            received,
            _rt: rt,
        }
    }
}
