//! `http`: send a request (e.g. `curl -X POST http://127.0.0.1:8001/recalibrate`). Mutating.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};

use crate::actions::run::host_refusal;
use crate::actions::{ActionContext, ActionOutcome};
use crate::probes::http::HttpMethod;
use crate::runbook::raw::SString;

/// `http:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpAction {
    /// The URL; may be a template.
    #[schemars(with = "String")]
    pub url: SString,
    /// POST (default), PUT, PATCH, DELETE, GET.
    #[serde(default)]
    pub method: Option<crate::probes::http::HttpMethod>,
    /// Request headers; values may be templates.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub headers: IndexMap<String, SString>,
    /// Request body; may be a template.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body: Option<SString>,
    /// File holding a bearer token (secret).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub token_file: Option<SString>,
    /// Skip TLS verification.
    #[serde(default)]
    pub insecure: bool,
    /// Status codes that count as success (default: any 2xx).
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

impl RawHttpAction {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        let mut out = vec![&self.url];
        out.extend(self.headers.values());
        out.extend(self.body.iter());
        out.extend(self.token_file.iter());
        out
    }
}

/// An HTTP request action; its strings are templates until the executor renders them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HttpRequest {
    /// URL.
    pub url: String,
    /// Method.
    pub method: crate::probes::http::HttpMethod,
    /// Headers.
    pub headers: IndexMap<String, String>,
    /// Body.
    pub body: Option<String>,
    /// Bearer token file (secret).
    pub token_file: Option<String>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Accepted status codes (default any 2xx).
    pub expect_status: Vec<u16>,
}

/// How much of a response body is kept in the outcome.
const BODY_CAP: usize = 64 * 1024;

/// Run the action.
pub async fn execute(
    req: &HttpRequest,
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    let method = req.method;
    let label = format!("`{} {}`", method_name(method), req.url);
    if let Err(e) = cx.host.permit_mutation(&format!("send {label}")) {
        return host_refusal(&label, &e);
    }
    match tokio::time::timeout(cx.timeout, send(req, cx)).await {
        Ok(outcome) => outcome,
        Err(_) => ActionOutcome::failed(format!(
            "{label} timed out after {} ms",
            cx.timeout.as_millis()
        )),
    }
}

async fn send(req: &HttpRequest, cx: &ActionContext<'_>) -> ActionOutcome {
    let label = format!("`{} {}`", method_name(req.method), req.url);
    let mut builder = cx
        .host
        .http_for_text(&req.url, req.insecure)
        .request(req.method.as_reqwest(), &req.url)
        .timeout(cx.timeout);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    if let Some(path) = &req.token_file {
        // The token is a secret: only the file's path may appear in an outcome.
        let token = match tokio::fs::read_to_string(path).await {
            Ok(t) => t.trim().to_owned(),
            Err(e) => {
                return ActionOutcome::failed(format!(
                    "{label}: cannot read token file `{path}`: {e}"
                ));
            }
        };
        if token.is_empty() {
            return ActionOutcome::failed(format!("{label}: token file `{path}` is empty"));
        }
        let Ok(mut value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        else {
            return ActionOutcome::failed(format!(
                "{label}: token file `{path}` holds characters not allowed in a header"
            ));
        };
        value.set_sensitive(true);
        builder = builder.header(reqwest::header::AUTHORIZATION, value);
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let mut response = match builder.send().await {
        Ok(r) => r,
        // `without_url`: the URL is already in the label, once.
        Err(e) => return ActionOutcome::failed(format!("{label} failed: {}", e.without_url())),
    };
    let status = response.status().as_u16();
    let mut body = Vec::new();
    let mut truncated = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_CAP.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    truncated = true;
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return ActionOutcome::failed(format!(
                    "{label}: status {status}, reading the body failed: {}",
                    e.without_url()
                ));
            }
        }
    }
    let ok = if req.expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        req.expect_status.contains(&status)
    };
    let mut detail = Map::new();
    detail.insert("status".into(), json!(status));
    detail.insert("body".into(), json!(String::from_utf8_lossy(&body)));
    detail.insert("truncated".into(), json!(truncated));
    let verdict = if ok { "" } else { " (unexpected)" };
    ActionOutcome {
        ok,
        summary: format!("{label} answered {status}{verdict}"),
        detail,
    }
}

fn method_name(method: HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Head => "HEAD",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Options => "OPTIONS",
    }
}
