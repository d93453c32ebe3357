//! The harness of the `runbook serve` end-to-end tests (`tests/serve.rs`, `tests/serve_more.rs`):
//! a [`Case`] is a temp dir with runbooks, an audit DB and a token file; [`Case::serve`] starts
//! the real binary on it on a free loopback port and returns a [`Server`], killed on drop.
//!
//! Each test crate compiles this module on its own, so everything here is used by both; what
//! one file alone needs stays in that file. Every wait is bounded, and requests go to the
//! loopback address the server printed, never through a proxy.

mod case;
mod server;

pub use case::{Case, SSE_DOWN, TOKEN};
pub use server::Server;
