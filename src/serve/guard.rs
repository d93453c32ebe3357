//! Browsers on the same host must not be able to drive an unauthenticated loopback server.
//!
//! `runbook serve` with no credentials for a route is allowed on a loopback address only:
//! "whoever can reach 127.0.0.1" is then the only check. A browser on that host can reach it
//! too, on behalf of any page it shows:
//! - **cross-site requests**: a page on `https://evil.example` posts a form to
//!   `http://127.0.0.1:9095/api/incidents/1/ack` (an empty body is a valid ack, and a form post
//!   needs no CORS preflight), silencing an incident's escalation;
//! - **DNS rebinding**: `evil.example` resolves to the attacker's server, then to 127.0.0.1;
//!   the page is then same-origin with the server and can post JSON alerts and read
//!   `/api/runs`.
//!
//! The guard closes both where a route's credentials are open and the server listens on
//! loopback: a request whose `Host` names anything but a loopback address or `localhost`, or
//! whose `Origin` is not a loopback origin (browsers send `Origin` on every cross-origin
//! request and on every POST; Alertmanager, Grafana, curl and Prometheus send none), is
//! refused with 403 before any handler runs. With credentials configured the guard stands
//! aside: a browser cannot attach a bearer token cross-site, and the dashboard's session cookie
//! is `SameSite=Strict`. On a non-loopback address without credentials
//! (`--allow-unauthenticated`) the operator has said every caller is welcome.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What the guard needs to know of the server.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// The server listens on a loopback address.
    loopback: bool,
    /// `/hooks/alertmanager` takes no credentials.
    open_alertmanager: bool,
    /// `/hooks/grafana` takes no credentials.
    open_grafana: bool,
    /// The API, the dashboard and `/metrics` take no credentials.
    open_api: bool,
}

impl Guard {
    /// The guard of a server listening on `listen` whose Alertmanager hook, Grafana hook and
    /// API are open or not.
    #[must_use]
    pub fn new(
        listen: SocketAddr,
        open_alertmanager: bool,
        open_grafana: bool,
        open_api: bool,
    ) -> Guard {
        Guard {
            loopback: listen.ip().is_loopback(),
            open_alertmanager,
            open_grafana,
            open_api,
        }
    }

    /// Why a request to `path` with `headers` is refused, if it is.
    #[must_use]
    pub fn refusal(&self, path: &str, headers: &HeaderMap) -> Option<String> {
        let open = match path {
            // Unsigned deliveries are refused there whatever the guard says.
            "/hooks/generic" => false,
            "/hooks/alertmanager" => self.open_alertmanager,
            "/hooks/grafana" => self.open_grafana,
            _ => self.open_api,
        };
        if !self.loopback || !open {
            return None;
        }
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("");
            if !is_loopback_authority(host) {
                return Some(format!(
                    "Host `{}` is not a loopback name: this server takes no credentials, so it \
                     answers loopback names only (a DNS rebinding guard); give it --token-file \
                     to serve other names",
                    host.escape_debug()
                ));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            if !authority.is_some_and(is_loopback_authority) {
                return Some(format!(
                    "Origin `{}` is another site: this server takes no credentials, so it refuses \
                     requests a browser makes on behalf of other pages",
                    origin.escape_debug()
                ));
            }
        }
        None
    }
}

/// The middleware: 403 with the reason as JSON, or on to the routes.
pub async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    match g.refusal(req.uri().path(), req.headers()) {
        Some(reason) => (
            StatusCode::FORBIDDEN,
            axum::Json(json!({ "error": reason })),
        )
            .into_response(),
        None => next.run(req).await,
    }
}

/// `127.0.0.1`, `127.1.2.3:9095`, `[::1]:9095`, `localhost`, `LOCALHOST:80`: yes. Anything
/// else, including an empty authority, userinfo or a path: no.
fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, "")) => ip,
            Some((ip, port)) if port.strip_prefix(':').is_some_and(is_port) => ip,
            _ => return false,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if is_port(port) => h,
            Some(_) => return false,
            None => authority,
        }
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `9095`: 1 to 5 digits.
fn is_port(s: &str) -> bool {
    (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{Guard, is_loopback_authority};

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        if let Some(v) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_authorities() {
        for yes in [
            "127.0.0.1",
            "127.0.0.1:9095",
            "127.9.8.7:1",
            "[::1]",
            "[::1]:9095",
            "localhost",
            "LocalHost:80",
        ] {
            assert!(is_loopback_authority(yes), "{yes}");
        }
        for no in [
            "",
            "evil.example",
            "evil.example:9095",
            "localhost.evil.example",
            "10.0.0.1:9095",
            "[::2]:1",
            "[::1]x",
            "127.0.0.1:",
            "127.0.0.1:123456",
            "user@127.0.0.1",
            "127.0.0.1/x",
            "0.0.0.0:9095",
        ] {
            assert!(!is_loopback_authority(no), "{no}");
        }
    }

    #[test]
    fn an_open_loopback_server_refuses_foreign_hosts_and_origins_only() {
        let g = Guard::new("127.0.0.1:9095".parse().unwrap(), true, false, true);
        let ok = [
            headers(Some("127.0.0.1:9095"), None),
            headers(Some("localhost:9095"), Some("http://localhost:9095")),
            headers(None, None),
        ];
        for h in &ok {
            assert_eq!(g.refusal("/api/incidents/1/ack", h), None, "{h:?}");
        }
        let rebinding = headers(Some("evil.example:9095"), None);
        let cross_site = headers(Some("127.0.0.1:9095"), Some("https://evil.example"));
        let sandboxed = headers(Some("127.0.0.1:9095"), Some("null"));
        for h in [&rebinding, &cross_site, &sandboxed] {
            let why = g.refusal("/hooks/alertmanager", h).expect("refused");
            assert!(why.contains("no credentials"), "{why}");
        }
        // Grafana's hook has its credentials here; the generic one always wants a signature.
        assert_eq!(g.refusal("/hooks/grafana", &cross_site), None);
        assert_eq!(g.refusal("/hooks/generic", &rebinding), None);
    }

    #[test]
    fn credentials_or_a_public_address_disarm_it() {
        let h = headers(Some("evil.example"), Some("https://evil.example"));
        let with_token = Guard::new("127.0.0.1:9095".parse().unwrap(), false, false, false);
        assert_eq!(with_token.refusal("/api/runs", &h), None);
        let public = Guard::new("0.0.0.0:9095".parse().unwrap(), true, true, true);
        assert_eq!(public.refusal("/api/runs", &h), None);
    }
}
