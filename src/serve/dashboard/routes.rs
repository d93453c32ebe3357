//! [`Dashboard`]: the dashboard's state and its routes; [`routes`] is what the server merges
//! into its router.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::serve::server::App;

use super::events::{Events, Stamp};
use super::pages::{self, RunPageError, RunsFilter};
use super::sessions::{self, Sessions};
use super::views::{Views, urlencode};

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Logins kept at a time (past it, the one expiring first ends).
const MAX_SESSIONS: usize = 10_000;
/// The login form is a few hundred bytes.
const FORM_LIMIT: usize = 16 * 1024;

/// What the dashboard's handlers share.
pub struct Dashboard {
    app: Arc<App>,
    views: Views,
    sessions: Sessions,
    events: Arc<Events>,
    /// Each runbook's plain step graph (SVG, or why there is none), rendered once: the
    /// catalog does not change while the server runs.
    graphs: OnceLock<BTreeMap<String, Result<String, String>>>,
}

/// Who a request is, once let in.
struct Caller {
    /// By a login cookie (the page offers to log out).
    session: bool,
}

/// The dashboard's routes, over `app`.
pub fn routes(app: Arc<App>) -> Router {
    let events = Arc::new(Events::new(app.db().to_path_buf()));
    let dash = Arc::new(Dashboard {
        app,
        views: Views::new(),
        sessions: Sessions::new(SESSION_TTL, MAX_SESSIONS),
        events,
        graphs: OnceLock::new(),
    });
    Router::new()
        .route("/", get(runs_page))
        .route("/runs", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/incidents", get(incidents_page))
        .route("/runbooks", get(runbooks_page))
        .route("/dashboard/events", get(live_events))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .with_state(dash)
}

impl Dashboard {
    /// Let the request in by its login cookie, else by the API's credentials (bearer or
    /// basic, constant-time); `None`: refused.
    fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        if let Some(id) = sessions::from_cookies(headers)
            && self.sessions.check(id, Instant::now())
        {
            return Some(Caller { session: true });
        }
        self.app
            .api_credentials()
            .check(headers, b"", chrono::Utc::now().timestamp())
            .ok()
            .map(|_| Caller { session: false })
    }

    /// Render `template` with `ctx` as a page for `caller`.
    /// A page read off the audit store (`None`: the reading task failed): rendered with the
    /// stamp it was read at, or the store's error.
    fn store_page<E: std::fmt::Display, S: serde::Serialize>(
        &self,
        page: Option<Result<Value, E>>,
        template: &str,
        stamp: &S,
        caller: &Caller,
    ) -> Response {
        match page {
            Some(Ok(mut page)) => {
                page["stamp"] = json!(stamp);
                self.page(StatusCode::OK, template, page, caller)
            }
            Some(Err(e)) => self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Audit store",
                &e.to_string(),
                caller,
            ),
            None => fault("the page could not be read"),
        }
    }

    fn page(&self, code: StatusCode, template: &str, mut ctx: Value, caller: &Caller) -> Response {
        let nonce = sessions::random_hex(16).unwrap_or_default();
        ctx["nonce"] = json!(nonce);
        ctx["logout"] = json!(caller.session);
        match self.views.render(template, &ctx) {
            Ok(html) => html_response(code, html, &nonce),
            Err(e) => fault(&format!("template `{template}`: {e}")),
        }
    }

    /// An error page.
    fn error(&self, code: StatusCode, title: &str, message: &str, caller: &Caller) -> Response {
        self.page(
            code,
            "error.html",
            json!({ "title": title, "message": message }),
            caller,
        )
    }

    /// The stamp now, as a page records it (read before the page's data, so its live
    /// stream starts from there and misses nothing).
    async fn stamp(&self) -> String {
        self.events.stamp().await.unwrap_or_default().id()
    }

    /// The runbooks' graphs, rendered on first use.
    fn graphs(&self) -> &BTreeMap<String, Result<String, String>> {
        self.graphs.get_or_init(|| {
            let cat = self.app.catalog();
            cat.runbooks
                .iter()
                .map(|rb| (rb.name.clone(), pages::plain_graph(rb, cat.policy.as_ref())))
                .collect()
        })
    }
}

/// The security headers of every page: nothing but this origin, inline styles, and the one
/// script carrying the response's nonce.
fn html_response(code: StatusCode, html: String, nonce: &str) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
         script-src 'nonce-{nonce}'; connect-src 'self'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
    );
    let mut resp = (code, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn fault(message: &str) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, message.to_owned()).into_response()
}

/// Whether the client reads HTML (a browser's navigation): it is sent to the login form
/// rather than answered 401.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The answer to a request without valid credentials: a browser's navigation goes to the
/// login form (and back here after it); anything else gets 401.
fn refuse(headers: &HeaderMap, uri: &Uri) -> Response {
    if wants_html(headers) {
        let here = uri.path_and_query().map_or("/", |p| p.as_str());
        return redirect(&format!("/login?next={}", urlencode(here)));
    }
    unauthorized()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"runbook\"")],
        axum::Json(json!({ "error": "unauthorized" })),
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response(),
    }
}

/// Where to go after logging in: a path on this server, never another site (`//host`,
/// `/\host`, a scheme).
fn local(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/",
    }
}

/// A form posted from another site (login CSRF, forced logout): browsers say so in
/// `Sec-Fetch-Site` and `Origin`. (The pages' `Referrer-Policy: same-origin` keeps a real
/// `Origin` on their own forms: under `no-referrer` a browser sends `Origin: null`.)
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if text("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return true;
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => {
            let origin = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            origin != Some(host)
        }
        _ => false,
    }
}

/// Run `f` on the blocking pool (it reads `SQLite`).
async fn blocking<T: Send + 'static>(
    dash: &Arc<Dashboard>,
    f: impl FnOnce(&Dashboard) -> T + Send + 'static,
) -> Option<T> {
    let dash = Arc::clone(dash);
    tokio::task::spawn_blocking(move || f(&dash)).await.ok()
}

/// `GET /` (and `/runs`): runs, newest first, `?runbook=NAME&outcome=OUTCOME`.
async fn runs_page(State(dash): State<Arc<Dashboard>>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(caller) = dash.caller(&headers) else {
        return refuse(&headers, &uri);
    };
    let filter = match Query::<RunsFilter>::try_from_uri(&uri) {
        Ok(Query(f)) => f.normalized(),
        Err(e) => {
            return dash.error(
                StatusCode::BAD_REQUEST,
                "Bad filter",
                &e.body_text(),
                &caller,
            );
        }
    };
    let stamp = dash.stamp().await;
    let page = blocking(&dash, move |d| pages::runs(&d.app, &filter)).await;
    dash.store_page(page, "runs.html", &stamp, &caller)
}

/// `GET /runs/ID`: the run's post-mortem.
async fn run_page(
    State(dash): State<Arc<Dashboard>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(caller) = dash.caller(&headers) else {
        return refuse(&headers, &uri);
    };
    let stamp = dash.stamp().await;
    let now = chrono::Utc::now();
    let found = blocking(&dash, move |d| pages::run(&d.app, &id, now)).await;
    let report = match found {
        Some(Ok(r)) => r,
        Some(Err(e @ RunPageError::NotFound(_))) => {
            return dash.error(
                StatusCode::NOT_FOUND,
                "No such run",
                &e.to_string(),
                &caller,
            );
        }
        Some(Err(e @ RunPageError::Store(_))) => {
            return dash.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Audit store",
                &e.to_string(),
                &caller,
            );
        }
        Some(Err(e @ RunPageError::Template(_))) => return fault(&e.to_string()),
        None => return fault("the page could not be read"),
    };
    let nonce = sessions::random_hex(16).unwrap_or_default();
    let ctx = json!({
        "nonce": nonce,
        "logout": caller.session,
        "live": if report.running { "runs" } else { "" },
        "stamp": stamp,
    });
    match dash.views.around_report(&report.html, &ctx) {
        Ok(html) => html_response(StatusCode::OK, html, &nonce),
        Err(e) => fault(&format!("run page: {e}")),
    }
}

/// `GET /incidents`: open and acknowledged incidents with their clocks.
async fn incidents_page(
    State(dash): State<Arc<Dashboard>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(caller) = dash.caller(&headers) else {
        return refuse(&headers, &uri);
    };
    let stamp = dash.stamp().await;
    let now = chrono::Utc::now();
    let page = blocking(&dash, move |d| pages::incidents(&d.app, now)).await;
    dash.store_page(page, "incidents.html", &stamp, &caller)
}

/// `GET /runbooks`: the runbooks served, each with its step graph.
async fn runbooks_page(
    State(dash): State<Arc<Dashboard>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(caller) = dash.caller(&headers) else {
        return refuse(&headers, &uri);
    };
    match blocking(&dash, |d| pages::runbooks(&d.app, d.graphs())).await {
        Some(page) => dash.page(StatusCode::OK, "runbooks.html", page, &caller),
        None => fault("the page could not be rendered"),
    }
}

/// The live stream's query: the stamp its page was rendered at.
#[derive(serde::Deserialize)]
struct Since {
    since: Option<String>,
}

/// `GET /dashboard/events`: the live stream (module doc of `events`). 401 without
/// credentials, never a redirect: `EventSource` does not follow one to a form.
async fn live_events(State(dash): State<Arc<Dashboard>>, headers: HeaderMap, uri: Uri) -> Response {
    if dash.caller(&headers).is_none() {
        return unauthorized();
    }
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            Query::<Since>::try_from_uri(&uri)
                .ok()
                .and_then(|q| q.0.since)
        })
        .and_then(|s| Stamp::parse(&s));
    match dash.events.stream(since).await {
        Some(stream) => Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "too many live streams\n",
        )
            .into_response(),
    }
}

/// The login form's query and body.
#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// `GET /login`: the form (straight on when already let in).
async fn login_page(
    State(dash): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Query(q): Query<LoginForm>,
) -> Response {
    let next = local(q.next.as_deref()).to_owned();
    if dash.caller(&headers).is_some() {
        return redirect(&next);
    }
    login_form(&dash, StatusCode::OK, &next, None)
}

fn login_form(dash: &Dashboard, code: StatusCode, next: &str, error: Option<&str>) -> Response {
    dash.page(
        code,
        "login.html",
        json!({
            "anonymous": true,
            "next": next,
            "error": error,
            "hours": SESSION_TTL.as_secs() / 3600,
        }),
        &Caller { session: false },
    )
}

/// `POST /login` (`token`, `next`): the token is checked as the API checks a bearer token
/// (constant-time, against every configured one); a good one opens a session and sets its
/// cookie, a wrong one shows the form again with 401.
async fn login(
    State(dash): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if cross_site(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site login refused\n").into_response();
    }
    let next = local(form.next.as_deref()).to_owned();
    let presented = [(
        "Authorization".to_owned(),
        format!("Bearer {}", form.token.trim()),
    )];
    let accepted = dash
        .app
        .api_credentials()
        .check(&presented[..], b"", chrono::Utc::now().timestamp())
        .is_ok();
    if !accepted {
        return login_form(
            &dash,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That token is not accepted."),
        );
    }
    let Ok(id) = dash.sessions.open(Instant::now()) else {
        return fault("no random source for a session id");
    };
    let mut resp = redirect(&next);
    if let Ok(v) = HeaderValue::from_str(&sessions::set_cookie(&id, dash.sessions.ttl())) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /logout`: the session ends here and in the browser.
async fn logout(State(dash): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if cross_site(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site logout refused\n").into_response();
    }
    if let Some(id) = sessions::from_cookies(&headers) {
        dash.sessions.close(id);
    }
    let mut resp = redirect("/login");
    if let Ok(v) = HeaderValue::from_str(&sessions::clear_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_login_only_a_local_path() {
        assert_eq!(local(Some("/incidents?x=1")), "/incidents?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "x",
            "/a\nb",
        ] {
            assert_eq!(local(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local(None), "/");
    }

    #[test]
    fn a_form_from_another_site_is_told_apart() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(!cross_site(&h(&[])));
        assert!(!cross_site(&h(&[
            ("host", "127.0.0.1:9095"),
            ("origin", "http://127.0.0.1:9095")
        ])));
        assert!(!cross_site(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(cross_site(&h(&[
            ("host", "127.0.0.1:9095"),
            ("origin", "http://evil.example")
        ])));
        assert!(cross_site(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&h(&[("host", "a:1"), ("origin", "null")])));
    }

    #[test]
    fn a_browser_is_sent_to_the_form_and_a_client_gets_401() {
        let uri: Uri = "/runs?outcome=fault".parse().unwrap();
        let mut html = HeaderMap::new();
        html.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*"));
        let r = refuse(&html, &uri);
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()[header::LOCATION],
            "/login?next=%2Fruns%3Foutcome%3Dfault"
        );
        let r = refuse(&HeaderMap::new(), &uri);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}
