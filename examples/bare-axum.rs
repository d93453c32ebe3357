//! The framework's ceiling for `benches/serve/serve.sh`: an axum server on a loopback port
//! whose `/hooks/alertmanager` reads the body and answers 200, doing nothing else.
//!
//! ```text
//! cargo run --release --example bare-axum -- 127.0.0.1:18802
//! ```

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18802".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let app = Router::new().route(
            "/hooks/alertmanager",
            post(|body: Bytes| async move { format!("{{\"bytes\":{}}}", body.len()) }),
        );
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .expect("a free port");
        println!(
            "listening on http://{}",
            listener.local_addr().expect("an address")
        );
        axum::serve(listener, app).await.expect("serving");
    });
}
