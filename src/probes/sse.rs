//! `sse`: open a Server-Sent Events stream (with a bearer token from a file) and wait for events.
//!
//! Reports whether the stream connected, how long the first event took, and how many events
//! arrived within `window`. A 401 is an observation (`status == 401`), not an error.
//!
//! `connected` means a 2xx answer with `Content-Type: text/event-stream`. `first_event_ms`
//! counts from sending the request and is null when no event came within
//! `first_event_within` (default 5s). Without `window` the probe stops at the first event;
//! with it, `events` counts the events completed within `window` after connecting. `closed`
//! says the server ended the stream early.
//!
//! Everything, connecting included, ends within the step's `timeout`: a stream that sends
//! its head and then nothing, or one endless line, ends with `events: 0` and a `reason` (`no
//! event within 5s`); an endless stream of events is read for `window` only.
//!
//! Result: `status`, `connected`, `first_event_ms`, `events` (also `value`), `closed`, `reason`.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::probes::http;
use crate::probes::{ProbeContext, ProbeOutcome};
use crate::runbook::value::{DurationParam, format_duration};

/// Parameters of the `sse` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SseParams {
    /// The stream URL.
    pub url: String,
    /// File holding a bearer token (secret).
    #[serde(default)]
    pub token_file: Option<String>,
    /// The first event must arrive within this long (default 5s).
    #[serde(default)]
    pub first_event_within: Option<DurationParam>,
    /// Count events for this long after connecting (default: until the first event).
    #[serde(default)]
    pub window: Option<DurationParam>,
    /// Skip TLS verification (`curl -k`).
    #[serde(default)]
    pub insecure: Option<bool>,
}

/// Result fields of the `sse` probe.
pub const FIELDS: &[&str] = &[
    "status",
    "connected",
    "first_event_ms",
    "events",
    "closed",
    "reason",
    "unreachable",
    "duration_ms",
];

/// Default for `first_event_within`.
const DEFAULT_FIRST_EVENT: Duration = Duration::from_secs(5);

/// Run the probe.
pub async fn probe(params: SseParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    let started = Instant::now();
    let url = match http::parse_url(&params.url) {
        Ok(u) => u,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let first_within = match duration(params.first_event_within.as_ref(), "first_event_within") {
        Ok(d) => d.unwrap_or(DEFAULT_FIRST_EVENT),
        Err(e) => return ProbeOutcome::Error(e),
    };
    let window = match duration(params.window.as_ref(), "window") {
        Ok(d) => d,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let token = match params
        .token_file
        .as_deref()
        .map(http::read_token)
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return ProbeOutcome::Error(e),
    };
    // Everything, connecting included, stays within the step's timeout.
    let hard_deadline = started + cx.timeout;

    let client = cx.host.http_for(&url, params.insecure.unwrap_or(false));
    let mut req = client
        .get(url)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .header(reqwest::header::CACHE_CONTROL, "no-cache");
    if let Some(t) = &token {
        req = req.bearer_auth(t);
    }
    let mut resp = match tokio::time::timeout_at(hard_deadline.into(), req.send()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return http::unreachable(&e, cx.timeout, started),
        Err(_) => return http::timed_out(cx.timeout, started),
    };
    let connected_at = Instant::now();
    let status = resp.status();
    let is_stream = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        });
    let connected = status.is_success() && is_stream;
    let mut out = Map::new();
    out.insert("status".into(), json!(status.as_u16()));
    out.insert("connected".into(), json!(connected));
    if !connected {
        out.insert("first_event_ms".into(), Value::Null);
        out.insert("events".into(), json!(0));
        out.insert("closed".into(), json!(false));
        out.insert("value".into(), json!(0));
        out.insert("duration_ms".into(), json!(http::elapsed_ms(started)));
        return ProbeOutcome::Observed(out);
    }

    let first_deadline = (started + first_within).min(hard_deadline);
    let window_deadline = window.map(|w| (connected_at + w).min(hard_deadline));
    let seen = watch(
        &mut resp,
        started,
        first_deadline,
        window_deadline,
        cx.timeout,
    )
    .await;
    // Dropping the response closes the stream.
    drop(resp);
    out.insert("first_event_ms".into(), json!(seen.first_event_ms));
    out.insert("events".into(), json!(seen.events));
    out.insert("closed".into(), json!(seen.closed));
    out.insert("value".into(), json!(seen.events));
    if seen.events == 0 {
        // Say why there is nothing: a stream that stays silent (or sends one endless line) is
        // cut at the deadline, and the reason names it.
        let reason = seen.failure.unwrap_or_else(|| {
            if seen.closed {
                "the stream ended before any event".to_owned()
            } else if first_deadline < hard_deadline {
                format!("no event within {}", format_duration(first_within))
            } else {
                format!("timed out after {}", format_duration(cx.timeout))
            }
        });
        out.insert("reason".into(), Value::String(reason));
    }
    out.insert("duration_ms".into(), json!(http::elapsed_ms(started)));
    ProbeOutcome::Observed(out)
}

/// What a connected stream delivered.
struct Seen {
    first_event_ms: Option<u64>,
    events: u64,
    closed: bool,
    failure: Option<String>,
}

/// Read the stream until the first event (no window) or the end of the window, never past
/// `first_deadline` without an event.
async fn watch(
    resp: &mut reqwest::Response,
    started: Instant,
    first_deadline: Instant,
    window_deadline: Option<Instant>,
    timeout: Duration,
) -> Seen {
    let mut parser = SseParser::default();
    let mut first_event_ms: Option<u64> = None;
    let mut events: u64 = 0;
    let mut closed = false;
    let mut failure: Option<String> = None;
    loop {
        let deadline = match (first_event_ms, window_deadline) {
            // No window: the first event ends the probe.
            (Some(_), None) => break,
            (None, Some(w)) => first_deadline.min(w),
            (None, None) => first_deadline,
            (Some(_), Some(w)) => w,
        };
        match tokio::time::timeout_at(deadline.into(), resp.chunk()).await {
            Err(_) => break,
            Ok(Ok(None)) => {
                closed = true;
                break;
            }
            Ok(Err(e)) => {
                failure = Some(http::failure_reason(&e, timeout));
                closed = true;
                break;
            }
            Ok(Ok(Some(chunk))) => {
                let n = parser.feed(&chunk);
                if n > 0 {
                    if first_event_ms.is_none() {
                        first_event_ms = Some(http::elapsed_ms(started));
                    }
                    // Without a window, count up to the first event only.
                    events += if window_deadline.is_some() { n } else { 1 };
                }
            }
        }
    }
    Seen {
        first_event_ms,
        events,
        closed,
        failure,
    }
}

fn duration(p: Option<&DurationParam>, name: &str) -> Result<Option<Duration>, String> {
    match p {
        None => Ok(None),
        Some(DurationParam::Fixed(d)) => Ok(Some(*d)),
        Some(DurationParam::Template(t)) => Err(format!("`{name}` was not rendered: `{t}`")),
    }
}

/// The `text/event-stream` framing: lines end with CR, LF or CRLF; a blank line ends an
/// event; lines starting with `:` are comments. An event counts when it carried `data`, as
/// in the HTML standard (an event with only `event:` or `id:` is not dispatched).
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    last_was_cr: bool,
    has_data: bool,
}

impl SseParser {
    /// Feed bytes; returns how many events they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> u64 {
        let mut done = 0;
        for &b in bytes {
            match b {
                b'\n' if self.last_was_cr => self.last_was_cr = false,
                b'\r' | b'\n' => {
                    self.last_was_cr = b == b'\r';
                    done += u64::from(self.end_line());
                }
                _ => {
                    self.last_was_cr = false;
                    // A line longer than this is kept only as far as its field name needs.
                    if self.line.len() < 64 {
                        self.line.push(b);
                    }
                }
            }
        }
        done
    }

    fn end_line(&mut self) -> bool {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            return std::mem::take(&mut self.has_data);
        }
        if line[0] == b':' {
            return false;
        }
        let field = line.split(|&c| c == b':').next().unwrap_or(&[]);
        if field == b"data" {
            self.has_data = true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::SseParser;

    #[test]
    fn framing() {
        let mut p = SseParser::default();
        assert_eq!(p.feed(b": comment\n\n"), 0);
        assert_eq!(p.feed(b"data: a\n\ndata: b\ndata: c\n\n"), 2);
        assert_eq!(p.feed(b"event: ping\n\n"), 0);
        assert_eq!(p.feed(b"data: x\r"), 0);
        assert_eq!(p.feed(b"\n\r\n"), 1);
        assert_eq!(p.feed(b"data\r\rdata: split"), 1);
        assert_eq!(p.feed(b" across\n"), 0);
        assert_eq!(p.feed(b"\n"), 1);
    }
}
