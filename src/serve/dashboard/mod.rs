//! The read-only dashboard `runbook serve` serves at `/` (issue 8): what ran, what is open,
//! what could run — for people, in a browser, on the same port as the webhooks.
//!
//! Routes ([`routes`], merged into the server's router):
//! - `GET /` (also `/runs`): runs, newest first, filtered by `?runbook=` and `?outcome=`
//!   (`running` for runs still going); each links to its page;
//! - `GET /runs/ID`: one run's post-mortem (the step graph coloured by status, the timeline,
//!   the steps);
//! - `GET /incidents`: open and acknowledged incidents with their escalation clocks (level,
//!   next level due in, response and resolution deadlines, breached or not, acknowledged by);
//! - `GET /runbooks`: the runbooks served (name, title, severity, triggers) with their plain
//!   step graphs;
//! - `GET /dashboard/events`: the live stream that makes open pages refresh (`events`);
//! - `GET /login`, `POST /login`, `POST /logout`.
//!
//! **Access.** The credentials of the API (`--token-file` bearer tokens, basic auth), checked
//! by the same [`crate::serve::auth::Authenticator`] — or a login cookie, since a browser does
//! not send a bearer header: `POST /login` checks the token as a bearer token and opens a
//! session (`sessions`: random, in memory, 8 h, `HttpOnly; SameSite=Strict; Path=/`). A
//! browser's navigation without either is sent to the login form; any other request gets 401.
//! Login and logout refuse forms posted from another site.
//!
//! **Read-only.** Nothing here changes a run or an incident: no approve or acknowledge
//! buttons (those stay in the API and the CLI).
//!
//! **Self-contained and escaped.** Pages carry their CSS and their one script inline (a
//! per-response CSP nonce; `default-src 'none'`, `connect-src 'self'`), no font, image or CDN
//! request; every value is HTML-escaped by the templates (`views`). What the audit holds is
//! already redacted; pages add nothing from elsewhere.
//!
//! **Live.** Pages refresh themselves in place: the script listens to `/dashboard/events`
//! (server-sent events from one shared, bounded poller) and on `runs` or `incidents` fetches
//! its own URL again and swaps the page's `<main>` — no reload, no flicker; deadline clocks
//! count down each second in the page.

mod events;
mod pages;
mod routes;
mod sessions;
mod views;

pub use routes::{SESSION_TTL, routes};
