//! `http`: one HTTP request (GET, HEAD, POST, ...), like `curl [-k] [-I] URL | jq PATH`.
//!
//! A bearer token can come from a secret file (`token_file`), never from the runbook text.
//! `insecure: true` skips TLS verification like `curl -k`. `jq` extracts `value` from a JSON
//! body. A refused connection or a timeout is an observation: the check is `failed` with a
//! `reason`, not an `error`.
//!
//! Result: `status` (HTTP code), `headers` (lowercase names), `body` (capped), `json`
//! (parsed body when JSON), `value` (the `jq` result, else the JSON body), `reason`.
//! `body` keeps the first 64 KiB (`body_truncated` says more was there); a body over 4 MiB
//! is read no further and not parsed (`reason` says so). The whole exchange, connecting,
//! redirects and body included, ends within the step's `timeout`, however slowly the server
//! answers. Redirects are followed only with `follow_redirects: true`.

use std::time::{Duration, Instant};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::probes::jq;
use crate::probes::readfile::read_regular_file;
// Re-exported: `prometheus` names its cap through `http::size_label`.
pub(crate) use crate::probes::readfile::size_label;
use crate::probes::{ProbeContext, ProbeOutcome};

/// Parameters of the `http` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpParams {
    /// The URL; may be a template.
    pub url: String,
    /// GET (default), HEAD, POST, PUT, PATCH, DELETE, OPTIONS.
    #[serde(default)]
    pub method: Option<HttpMethod>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// jq path applied to the JSON body; its result becomes `value`.
    #[serde(default)]
    pub jq: Option<String>,
    /// Skip TLS verification (`curl -k`).
    #[serde(default)]
    pub insecure: Option<bool>,
    /// File holding a bearer token (secret: never stored).
    #[serde(default)]
    pub token_file: Option<String>,
    /// Follow redirects (default false).
    #[serde(default)]
    pub follow_redirects: Option<bool>,
}

/// HTTP methods a probe may use.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
}

/// Result fields of the `http` probe.
pub const FIELDS: &[&str] = &[
    "status",
    "headers",
    "body",
    "body_truncated",
    "json",
    "value",
    "jq_error",
    "reason",
    "unreachable",
    "duration_ms",
];

/// The `body` field keeps at most this many bytes.
pub const BODY_CAP: usize = 64 * 1024;
/// A JSON body is parsed when it is at most this long.
const JSON_CAP: usize = 4 * 1024 * 1024;
/// Redirects followed at most (with `follow_redirects`).
const MAX_REDIRECTS: usize = 10;
/// A `token_file` larger than this is refused: a token is one line.
const TOKEN_CAP: u64 = 64 * 1024;

/// Run the probe.
pub async fn probe(params: HttpParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    let started = Instant::now();
    let mut url = match parse_url(&params.url) {
        Ok(u) => u,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let token = match params.token_file.as_deref().map(read_token).transpose() {
        Ok(t) => t,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let program = match params.jq.as_deref().map(jq::Program::new).transpose() {
        Ok(p) => p,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let headers = match request_headers(&params.headers) {
        Ok(h) => h,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let secret = token.clone();
    let mut token = token;
    let mut method = params.method.unwrap_or(HttpMethod::Get);
    let mut body = params.body.clone();
    let insecure = params.insecure.unwrap_or(false);
    let follow = params.follow_redirects.unwrap_or(false);

    let exchange = async {
        let mut hops = 0;
        loop {
            let mut req = cx
                .host
                .http_for(&url, insecure)
                .request(method.as_reqwest(), url.clone())
                .timeout(cx.timeout);
            req = req.headers(headers.clone());
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let resp = req.send().await?;
            let status = resp.status();
            if follow && status.is_redirection() && hops < MAX_REDIRECTS {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                if let Some(next) = next {
                    hops += 1;
                    // Like browsers and curl -L: 303, and 301/302 after a POST, become a GET.
                    let code = status.as_u16();
                    if code == 303 || (matches!(code, 301 | 302) && method == HttpMethod::Post) {
                        method = HttpMethod::Get;
                        body = None;
                    }
                    // Like curl: credentials do not follow a redirect to another origin.
                    if next.origin() != url.origin() {
                        token = None;
                    }
                    url = next;
                    continue;
                }
            }
            let headers = header_map(resp.headers());
            let (bytes, total_over) = read_capped(resp, JSON_CAP).await?;
            return Ok::<_, reqwest::Error>((status.as_u16(), headers, bytes, total_over));
        }
    };
    let (status, headers, bytes, over_json_cap) =
        match tokio::time::timeout(cx.timeout, exchange).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return unreachable(&e, cx.timeout, started),
            Err(_) => return timed_out(cx.timeout, started),
        };

    let mut out = response_fields(status, headers, &bytes, over_json_cap, program.as_ref());
    if let Some(t) = &secret {
        out = redact(out, t);
    }
    out.insert("duration_ms".into(), json!(elapsed_ms(started)));
    ProbeOutcome::Observed(out)
}

/// A server that echoes the bearer token (in a header, the body, a JSON field) must not get
/// it into the result: every occurrence becomes `[redacted]`.
fn redact(out: Map<String, Value>, token: &str) -> Map<String, Value> {
    let Ok(text) = serde_json::to_string(&out) else {
        return out;
    };
    // The token as it appears inside a JSON string (quotes and backslashes escaped).
    let escaped = serde_json::to_string(token).unwrap_or_default();
    let escaped = &escaped[1..escaped.len().saturating_sub(1).max(1)];
    if escaped.is_empty() || !text.contains(escaped) {
        return out;
    }
    serde_json::from_str(&text.replace(escaped, "[redacted]")).unwrap_or_default()
}

/// The result fields of an answered request.
fn response_fields(
    status: u16,
    headers: Map<String, Value>,
    bytes: &[u8],
    over_json_cap: bool,
    jq_path: Option<&jq::Program>,
) -> Map<String, Value> {
    let truncated = bytes.len() > BODY_CAP || over_json_cap;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(BODY_CAP)]).into_owned();
    let content_type = headers
        .get("content-type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let json = if over_json_cap {
        None
    } else {
        parse_json_body(&content_type, bytes)
    };
    let mut out = Map::new();
    out.insert("status".into(), json!(status));
    out.insert("headers".into(), Value::Object(headers));
    out.insert("body".into(), Value::String(text));
    out.insert("body_truncated".into(), Value::Bool(truncated));
    if over_json_cap {
        // The rest was never read: say so, as a value built from half a document would lie.
        out.insert(
            "reason".into(),
            Value::String(format!(
                "body over the {} cap: read no further, not parsed",
                size_label(JSON_CAP as u64)
            )),
        );
    }
    let value = match (jq_path, &json) {
        (Some(program), Some(doc)) => match program.eval(doc) {
            Ok(v) => v,
            Err(e) => {
                out.insert("jq_error".into(), Value::String(e));
                Value::Null
            }
        },
        (Some(_), None) => Value::Null,
        (None, doc) => doc.clone().unwrap_or(Value::Null),
    };
    out.insert("json".into(), json.unwrap_or(Value::Null));
    out.insert("value".into(), value);
    out
}

impl HttpMethod {
    /// The reqwest method.
    #[must_use]
    pub fn as_reqwest(self) -> reqwest::Method {
        match self {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Head => reqwest::Method::HEAD,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
            HttpMethod::Options => reqwest::Method::OPTIONS,
        }
    }
}

/// The `headers` parameter as a header map; a bad name or value is a parameter error whose
/// message names the header but never shows its value (it may hold a secret).
fn request_headers(
    headers: &IndexMap<String, String>,
) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("bad header name `{k}`"))?;
        let value = HeaderValue::from_str(v).map_err(|_| format!("bad value for header `{k}`"))?;
        map.append(name, value);
    }
    Ok(map)
}

fn parse_json_body(content_type: &str, bytes: &[u8]) -> Option<Value> {
    let looks_json = content_type.contains("json")
        || matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
    if looks_json {
        serde_json::from_slice(bytes).ok()
    } else {
        None
    }
}

/// Parse a rendered URL: only `http` and `https`.
///
/// # Errors
/// A message for a URL that does not parse or has another scheme.
pub(crate) fn parse_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("bad url `{raw}`: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "bad url `{raw}`: scheme `{other}` is not http or https"
        )),
    }
}

/// Read a bearer token from a secret file, trimmed. The token never appears in the error.
///
/// # Errors
/// The file cannot be read, is not UTF-8, or is empty.
pub(crate) fn read_token(path: &str) -> Result<String, String> {
    let raw = read_regular_file(path, TOKEN_CAP)
        .map_err(|e| format!("cannot read `token_file` `{path}`: {e}"))?;
    let text =
        String::from_utf8(raw).map_err(|_| format!("`token_file` `{path}` is not UTF-8 text"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("`token_file` `{path}` is empty"));
    }
    if token.contains(['\r', '\n']) || reqwest::header::HeaderValue::from_str(token).is_err() {
        return Err(format!(
            "`token_file` `{path}` does not hold a single-line token"
        ));
    }
    Ok(token.to_owned())
}

/// Response headers as a JSON object: lowercase names, values as strings (repeated headers
/// joined with `, `).
pub(crate) fn header_map(headers: &reqwest::header::HeaderMap) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                out.insert(name.as_str().to_owned(), Value::String(v));
            }
        }
    }
    out
}

/// Read a response body up to `cap` bytes; the flag says more was there.
///
/// # Errors
/// The connection failed while reading.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > cap {
            buf.extend_from_slice(&chunk[..cap - buf.len()]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf, false))
}

/// Milliseconds since `start`.
pub(crate) fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Why a request failed, in a few words (`connection refused`, `timed out after 2s`, ...).
/// Never holds request headers, so never the token.
pub(crate) fn failure_reason(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("timed out after {}", humantime::format_duration(timeout));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            let what = match io.kind() {
                K::ConnectionRefused => "connection refused".to_owned(),
                K::ConnectionReset => "connection reset".to_owned(),
                K::ConnectionAborted => "connection aborted".to_owned(),
                K::TimedOut => format!("timed out after {}", humantime::format_duration(timeout)),
                K::UnexpectedEof => "connection closed early".to_owned(),
                _ => io.to_string(),
            };
            return what;
        }
        source = e.source();
    }
    // The deepest message is the most telling (`dns error: ...`, `invalid peer certificate`).
    let mut msg = err.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        msg = e.to_string();
        source = e.source();
    }
    if err.is_connect() {
        format!("cannot connect: {msg}")
    } else {
        msg
    }
}

/// A request failure as an observation.
pub(crate) fn unreachable(
    err: &reqwest::Error,
    timeout: Duration,
    started: Instant,
) -> ProbeOutcome {
    let mut out = ProbeOutcome::unreachable(failure_reason(err, timeout));
    if let ProbeOutcome::Observed(m) = &mut out {
        m.insert("value".into(), Value::Null);
        m.insert("duration_ms".into(), json!(elapsed_ms(started)));
    }
    out
}

/// The probe's own timeout fired: an observation.
pub(crate) fn timed_out(timeout: Duration, started: Instant) -> ProbeOutcome {
    let mut out = ProbeOutcome::unreachable(format!(
        "timed out after {}",
        humantime::format_duration(timeout)
    ));
    if let ProbeOutcome::Observed(m) = &mut out {
        m.insert("value".into(), Value::Null);
        m.insert("duration_ms".into(), json!(elapsed_ms(started)));
    }
    out
}
