//! `runbook serve` building blocks (design §7): webhook bodies (`payload`) and request
//! authentication (`auth`).
//!
//! Both are pure: bytes and headers in, a [`payload::Delivery`] or an [`auth::AuthError`] out,
//! with the current time passed in. The only I/O is reading secret files, once, at start
//! ([`auth::read_secret_file`]). The HTTP server on top (`server`) owns routing, the body
//! size cap (413 before any parsing), the delivery table with its dedup, the run queue and
//! its workers, and metrics; `dashboard` is the read-only web view it serves at `/`.

pub mod auth;
pub mod dashboard;
pub mod guard;
pub mod payload;
pub mod server;
pub mod tail;
