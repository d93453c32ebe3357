//! `prometheus`: read a metric from a `/metrics` page (text exposition format) or query a
//! Prometheus server's HTTP API (`/api/v1/query`), like `curl /metrics | grep NAME`.
//!
//! With `url` + `metric` (and optional `labels`), the page is scraped: counters, gauges and
//! histograms; `value` is the sum over matching series, `samples` lists them (the first 100),
//! and for a histogram `quantile` (e.g. 0.99) gives the estimated quantile from its buckets.
//! With `server` + `query`, a `PromQL` instant query (recording rules such as
//! `sse:availability_ratio:5m`); `value` is the first sample's value.
//!
//! A histogram's or summary's base name without `quantile` gives its `_count` as `value`
//! (with `count` and `sum`). Values JSON cannot hold are the strings `NaN`, `+Inf`, `-Inf`.
//! A metric absent from the page is an observation: `value` null, reason `metric not found`.
//! A page or query answer over 16 MiB is read no further and not parsed, and a page with over
//! 100 000 samples of the metric is not summed (as Prometheus' `sample_limit` refuses a
//! scrape): `value` null, with a `reason` naming the cap. Everything, the body included, ends
//! within the step's `timeout`.
//!
//! Result: `status`, `value`, `samples` (`[{name, labels, value}]`), `quantile`, `count`,
//! `sum`, `reason`.

use std::time::Instant;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::probes::http;
use crate::probes::{ProbeContext, ProbeOutcome};

/// Parameters of the `prometheus` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusParams {
    /// A `/metrics` page to scrape.
    #[serde(default)]
    pub url: Option<String>,
    /// Metric name on that page.
    #[serde(default)]
    pub metric: Option<String>,
    /// Label matchers (exact values).
    #[serde(default)]
    pub labels: IndexMap<String, String>,
    /// For a histogram: the quantile to estimate (0..1).
    #[serde(default)]
    pub quantile: Option<f64>,
    /// A Prometheus server's base URL (for `query`).
    #[serde(default)]
    pub server: Option<String>,
    /// A `PromQL` instant query.
    #[serde(default)]
    pub query: Option<String>,
    /// Skip TLS verification.
    #[serde(default)]
    pub insecure: Option<bool>,
}

impl PrometheusParams {
    /// Either `url` + `metric` or `server` + `query`.
    ///
    /// # Errors
    /// A message when the combination is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.url, &self.metric, &self.server, &self.query) {
            (Some(_), Some(_), None, None) | (None, None, Some(_), Some(_)) => Ok(()),
            (Some(_), None, None, None) => Err("`url` needs `metric`".into()),
            (None, None, Some(_), None) => Err("`server` needs `query`".into()),
            _ => Err("give either `url` + `metric` (scrape) or `server` + `query` (PromQL)".into()),
        }
    }
}

/// Result fields of the `prometheus` probe.
pub const FIELDS: &[&str] = &[
    "status",
    "value",
    "samples",
    "quantile",
    "count",
    "sum",
    "reason",
    "unreachable",
    "duration_ms",
];

/// The scraped page is read up to this size.
const PAGE_CAP: usize = 16 * 1024 * 1024;
/// A page with more samples than this of the metric asked for gives no value: its samples
/// would take hundreds of MiB (each with its labels) to sum.
const SERIES_LIMIT: usize = 100_000;
/// `samples` lists at most this many series; `value` still counts them all. A page of half
/// a million series must not become half a million rows of result (and of audit trail).
const SAMPLES_SHOWN: usize = 100;

/// Run the probe.
pub async fn probe(params: PrometheusParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    if let Err(e) = params.validate() {
        return ProbeOutcome::Error(e);
    }
    if let Some(q) = params.quantile
        && !(0.0..=1.0).contains(&q)
    {
        return ProbeOutcome::Error(format!("`quantile` must be within 0..1, got {q}"));
    }
    let started = Instant::now();
    let insecure = params.insecure.unwrap_or(false);
    match (&params.url, &params.metric, &params.server, &params.query) {
        (Some(url), Some(metric), _, _) => {
            let url = match http::parse_url(url) {
                Ok(u) => u,
                Err(e) => return ProbeOutcome::Error(e),
            };
            let (status, bytes, over_cap) = match get(cx, url, insecure, started).await {
                Ok(r) => r,
                Err(outcome) => return outcome,
            };
            let mut out = Map::new();
            out.insert("status".into(), json!(status));
            if over_cap {
                out.insert("value".into(), Value::Null);
                out.insert("reason".into(), over_cap_reason("page").into());
            } else if (200..300).contains(&status) {
                match parse_exposition_of(&String::from_utf8_lossy(&bytes), metric) {
                    Ok(samples) => {
                        select(&samples, metric, &params.labels, params.quantile, &mut out);
                    }
                    Err(PageError::Malformed(e)) => {
                        out.insert("value".into(), Value::Null);
                        out.insert(
                            "reason".into(),
                            format!("cannot parse metrics page: {e}").into(),
                        );
                    }
                    Err(PageError::TooManySamples(n)) => {
                        out.insert("value".into(), Value::Null);
                        out.insert(
                            "reason".into(),
                            format!("over the cap of {n} samples of `{metric}`: not summed").into(),
                        );
                    }
                }
            } else {
                out.insert("value".into(), Value::Null);
                out.insert("reason".into(), format!("HTTP {status}").into());
            }
            out.insert("duration_ms".into(), json!(http::elapsed_ms(started)));
            ProbeOutcome::Observed(out)
        }
        (_, _, Some(server), Some(query)) => {
            let mut url =
                match http::parse_url(&format!("{}/api/v1/query", server.trim_end_matches('/'))) {
                    Ok(u) => u,
                    Err(e) => return ProbeOutcome::Error(e),
                };
            url.query_pairs_mut().append_pair("query", query);
            let (status, bytes, over_cap) = match get(cx, url, insecure, started).await {
                Ok(r) => r,
                Err(outcome) => return outcome,
            };
            if over_cap {
                let mut out = Map::new();
                out.insert("status".into(), json!(status));
                out.insert("value".into(), Value::Null);
                out.insert("reason".into(), over_cap_reason("answer").into());
                out.insert("duration_ms".into(), json!(http::elapsed_ms(started)));
                return ProbeOutcome::Observed(out);
            }
            let mut out = match query_result(status, &bytes) {
                Ok(m) => m,
                Err(e) => return ProbeOutcome::Error(e),
            };
            out.insert("duration_ms".into(), json!(http::elapsed_ms(started)));
            ProbeOutcome::Observed(out)
        }
        _ => ProbeOutcome::Error("give either `url` + `metric` or `server` + `query`".into()),
    }
}

/// Why a page or answer over [`PAGE_CAP`] gives no value.
fn over_cap_reason(what: &str) -> String {
    format!(
        "{what} over the {} cap: read no further, not parsed",
        http::size_label(PAGE_CAP as u64)
    )
}

/// GET a page within the step's timeout (the body included, however slowly it comes): its
/// status, its body up to [`PAGE_CAP`] and whether there was more, or the outcome of a target
/// that refused or did not answer in time.
async fn get(
    cx: &ProbeContext<'_>,
    url: reqwest::Url,
    insecure: bool,
    started: Instant,
) -> Result<(u16, Vec<u8>, bool), ProbeOutcome> {
    let fetch = async {
        let client = cx.host.http_for(&url, insecure);
        let resp = client.get(url).timeout(cx.timeout).send().await?;
        let status = resp.status().as_u16();
        let (bytes, over_cap) = http::read_capped(resp, PAGE_CAP).await?;
        Ok::<_, reqwest::Error>((status, bytes, over_cap))
    };
    match tokio::time::timeout(cx.timeout, fetch).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(http::unreachable(&e, cx.timeout, started)),
        Err(_) => Err(http::timed_out(cx.timeout, started)),
    }
}

/// One sample of the text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sample name (`http_requests_total`, `latency_bucket`).
    pub name: String,
    /// Labels in page order, unescaped.
    pub labels: IndexMap<String, String>,
    /// The value (`NaN`, `+Inf` included).
    pub value: f64,
}

/// Parse a text exposition page (format 0.0.4). `# HELP` / `# TYPE` and other comments are
/// skipped; timestamps are ignored.
///
/// # Errors
/// The first malformed line, with its number.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    parse_kept(text, usize::MAX, |_| true).map_err(|e| match e {
        PageError::Malformed(why) => why,
        PageError::TooManySamples(n) => format!("over {n} samples"),
    })
}

/// [`parse_exposition`] keeping only the samples [`select`] may use for `metric` (its own, and
/// its `_bucket`, `_count` and `_sum`): every line is still checked, but a page of a million
/// other series costs no memory, and more than [`SERIES_LIMIT`] of the metric's own are
/// refused, as Prometheus' `sample_limit` refuses a scrape.
///
/// # Errors
/// The first malformed line, with its number, or too many samples.
pub fn parse_exposition_of(text: &str, metric: &str) -> Result<Vec<Sample>, PageError> {
    parse_kept(text, SERIES_LIMIT, |name| {
        name.strip_prefix(metric)
            .is_some_and(|rest| matches!(rest, "" | "_bucket" | "_count" | "_sum"))
    })
}

/// Why a scraped page gives no samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// A line is not in the text format: its number and why.
    Malformed(String),
    /// More samples of the metric than the limit.
    TooManySamples(usize),
}

fn parse_kept(
    text: &str,
    limit: usize,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<Sample>, PageError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample =
            parse_line(line).map_err(|e| PageError::Malformed(format!("line {}: {e}", i + 1)))?;
        if keep(&sample.name) {
            if out.len() == limit {
                return Err(PageError::TooManySamples(limit));
            }
            out.push(sample);
        }
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("expected a metric name".into());
    }
    let mut rest = line[name_end..].trim_start();
    let mut labels = IndexMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let mut parts = rest.split_whitespace();
    let raw = parts.next().ok_or("expected a value")?;
    let value = parse_value(raw).ok_or_else(|| format!("bad value `{raw}`"))?;
    if let Some(ts) = parts.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("bad timestamp `{ts}`"));
    }
    if parts.next().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parse `a="x",b="y"}` (after the `{`); returns the text after the `}`.
fn parse_labels<'a>(
    mut s: &'a str,
    labels: &mut IndexMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated labels")?;
        let key = &s[..end];
        if key.is_empty() {
            return Err("expected a label name".into());
        }
        s = s[end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or("expected `=` after a label name")?;
        s = s.trim_start();
        s = s
            .strip_prefix('"')
            .ok_or("expected `\"` to open a label value")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    // Unknown escapes are kept as written, like Prometheus does.
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err("unterminated label value".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        s = s[close + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

fn parse_value(raw: &str) -> Option<f64> {
    match raw {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => raw.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

/// A number as JSON; `NaN` and infinities, which JSON lacks, as the strings Prometheus writes.
fn num(v: f64) -> Value {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        json!(v)
    }
}

fn matches(sample: &Sample, want: &IndexMap<String, String>, ignore: &str) -> bool {
    want.iter()
        .filter(|(k, _)| k.as_str() != ignore)
        .all(|(k, v)| {
            // An empty matcher value also matches a missing label, as in PromQL.
            sample.labels.get(k).map_or(v.is_empty(), |got| got == v)
        })
}

fn sample_json(s: &Sample) -> Value {
    json!({ "name": s.name, "labels": s.labels, "value": num(s.value) })
}

/// Pick `metric` (a sample name, or a histogram's base name) out of a scraped page.
#[doc(hidden)]
pub fn select(
    samples: &[Sample],
    metric: &str,
    labels: &IndexMap<String, String>,
    quantile: Option<f64>,
    out: &mut Map<String, Value>,
) {
    let named = |name: &str, ignore: &str| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.name == name && matches(s, labels, ignore))
            .collect()
    };
    let sum_of = |v: &[&Sample]| v.iter().map(|s| s.value).sum::<f64>();
    let base_extras = |out: &mut Map<String, Value>| {
        let counts = named(&format!("{metric}_count"), "");
        if !counts.is_empty() {
            out.insert("count".into(), num(sum_of(&counts)));
        }
        let sums = named(&format!("{metric}_sum"), "");
        if !sums.is_empty() {
            out.insert("sum".into(), num(sum_of(&sums)));
        }
    };

    if let Some(q) = quantile {
        let buckets = named(&format!("{metric}_bucket"), "le");
        if !buckets.is_empty() {
            let est = histogram_quantile(q, &buckets);
            out.insert("quantile".into(), num(est));
            out.insert("value".into(), num(est));
            out.insert(
                "samples".into(),
                buckets
                    .iter()
                    .take(SAMPLES_SHOWN)
                    .map(|s| sample_json(s))
                    .collect(),
            );
            base_extras(out);
            return;
        }
        // A summary: its samples carry a `quantile` label.
        let direct: Vec<&Sample> = named(metric, "quantile")
            .into_iter()
            .filter(|s| {
                s.labels
                    .get("quantile")
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|v| (v - q).abs() < 1e-9)
            })
            .collect();
        if !direct.is_empty() {
            // Quantiles of several series do not add up: report the largest.
            let worst = direct
                .iter()
                .map(|s| s.value)
                .fold(f64::NEG_INFINITY, f64::max);
            out.insert("quantile".into(), num(worst));
            out.insert("value".into(), num(worst));
            out.insert(
                "samples".into(),
                direct
                    .iter()
                    .take(SAMPLES_SHOWN)
                    .map(|s| sample_json(s))
                    .collect(),
            );
            base_extras(out);
            return;
        }
    }
    let direct = named(metric, "");
    if !direct.is_empty() {
        out.insert("value".into(), num(sum_of(&direct)));
        out.insert(
            "samples".into(),
            direct
                .iter()
                .take(SAMPLES_SHOWN)
                .map(|s| sample_json(s))
                .collect(),
        );
        return;
    }
    // A histogram's or summary's base name without `quantile`: the number of observations.
    let counts = named(&format!("{metric}_count"), "");
    if !counts.is_empty() {
        out.insert("value".into(), num(sum_of(&counts)));
        out.insert(
            "samples".into(),
            counts
                .iter()
                .take(SAMPLES_SHOWN)
                .map(|s| sample_json(s))
                .collect(),
        );
        base_extras(out);
        return;
    }
    out.insert("value".into(), Value::Null);
    out.insert("samples".into(), json!([]));
    out.insert("reason".into(), "metric not found".into());
}

/// Estimate a quantile from cumulative `_bucket` samples (summed by `le` over series), by
/// linear interpolation inside the bucket, as `PromQL`'s `histogram_quantile` does.
#[must_use]
pub fn histogram_quantile(q: f64, buckets: &[&Sample]) -> f64 {
    let mut by_le: Vec<(f64, f64)> = Vec::new();
    for s in buckets {
        let Some(le) = s
            .labels
            .get("le")
            .and_then(|v| parse_value(v).or_else(|| v.parse().ok()))
        else {
            continue;
        };
        match by_le.iter_mut().find(|(b, _)| b.total_cmp(&le).is_eq()) {
            Some(entry) => entry.1 += s.value,
            None => by_le.push((le, s.value)),
        }
    }
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    if by_le.len() < 2 || by_le.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
        return f64::NAN;
    }
    // Counts must not decrease (a scrape racing an update can break that).
    let mut max = 0.0_f64;
    for b in &mut by_le {
        max = max.max(b.1);
        b.1 = max;
    }
    let observations = by_le[by_le.len() - 1].1;
    if observations <= 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let idx = by_le
        .iter()
        .position(|(_, c)| *c >= rank)
        .unwrap_or(by_le.len() - 1);
    if idx == by_le.len() - 1 {
        return by_le[by_le.len() - 2].0;
    }
    if idx == 0 && by_le[0].0 <= 0.0 {
        return by_le[0].0;
    }
    let (start, prev_count) = if idx == 0 { (0.0, 0.0) } else { by_le[idx - 1] };
    let (end, count) = by_le[idx];
    let in_bucket = count - prev_count;
    rank -= prev_count;
    if in_bucket <= 0.0 {
        return end;
    }
    start + (end - start) * (rank / in_bucket)
}

/// Read a Prometheus `/api/v1/query` answer.
#[doc(hidden)]
pub fn query_result(status: u16, bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    out.insert("status".into(), json!(status));
    let doc = match serde_json::from_slice::<Answer>(bytes) {
        Ok(doc) => doc,
        // JSON, but not an object: no status, no data.
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
            Answer::default()
        }
        Err(_) => {
            out.insert("value".into(), Value::Null);
            let why = if (200..300).contains(&status) {
                "the answer is not JSON".to_owned()
            } else {
                format!("HTTP {status}")
            };
            out.insert("reason".into(), why.into());
            return Ok(out);
        }
    };
    if doc.status != "success" {
        let err = doc.error.as_str().unwrap_or("unknown error");
        if doc.error_type == "bad_data" {
            // The query itself is wrong: the probe could not look.
            return Err(format!("prometheus rejected the query: {err}"));
        }
        out.insert("value".into(), Value::Null);
        out.insert("reason".into(), format!("prometheus: {err}").into());
        return Ok(out);
    }
    let point = |p: &Value| -> Value {
        p.get(1)
            .and_then(Value::as_str)
            .and_then(parse_value_any)
            .map_or(Value::Null, num)
    };
    let result = doc.data.result.0;
    let mut samples = Vec::new();
    match doc.data.result_type.as_str() {
        Some("scalar" | "string") => {
            samples.push(json!({"labels": {}, "value": point(&result)}));
        }
        Some("matrix") => {
            for s in result.as_array().into_iter().flatten() {
                let last = s["values"]
                    .as_array()
                    .and_then(|v| v.last())
                    .map_or(Value::Null, point);
                samples.push(json!({"labels": s["metric"], "value": last}));
            }
        }
        _ => {
            for s in result.as_array().into_iter().flatten() {
                samples.push(json!({"labels": s["metric"], "value": point(&s["value"])}));
            }
        }
    }
    let first = samples.first().map_or(Value::Null, |s| s["value"].clone());
    if samples.is_empty() {
        out.insert("reason".into(), "query returned no samples".into());
    }
    out.insert("value".into(), first);
    out.insert("samples".into(), Value::Array(samples));
    Ok(out)
}

/// An `/api/v1/query` answer as far as the probe reads it. Of `data.result` only the first
/// [`SAMPLES_SHOWN`] elements are kept and the rest are skipped as they stream by, so an
/// answer of a million series never becomes a tree of a million objects in memory. Fields
/// keep any JSON type, as the probe judges them itself.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    status: Value,
    #[serde(default)]
    error: Value,
    #[serde(default, rename = "errorType")]
    error_type: Value,
    #[serde(default)]
    data: AnswerData,
}

/// `data` of an [`Answer`].
#[derive(Debug, Default, Deserialize)]
struct AnswerData {
    #[serde(default, rename = "resultType")]
    result_type: Value,
    #[serde(default)]
    result: FirstFew,
}

/// A JSON value whose arrays keep their first [`SAMPLES_SHOWN`] elements (the rest skipped,
/// never built); objects and other values are read as `null` except at the top of an array
/// element, which is kept whole (one series, or a scalar's `[time, "value"]` pair).
#[derive(Debug, Default)]
struct FirstFew(Value);

impl<'de> Deserialize<'de> for FirstFew {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FirstFewVisitor).map(FirstFew)
    }
}

struct FirstFewVisitor;

impl<'de> serde::de::Visitor<'de> for FirstFewVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a query result")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut kept = Vec::new();
        while kept.len() < SAMPLES_SHOWN {
            match seq.next_element::<Value>()? {
                Some(v) => kept.push(v),
                None => return Ok(Value::Array(kept)),
            }
        }
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Value::Array(kept))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Value::Null)
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

fn parse_value_any(raw: &str) -> Option<f64> {
    parse_value(raw).or_else(|| raw.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="get",path="/a \"quoted\"\\back\nline"} 10 1700000000000
http_requests_total{method="post", path="/b",} 2.5e1
# a free comment
  up 1
temp NaN
lat_bucket{le="0.1"} 1
lat_bucket{le="0.5"} 3
lat_bucket{le="+Inf"} 4
lat_sum 1.2
lat_count 4
rpc{quantile="0.99"} 0.3
"#;

    #[test]
    fn parses_escapes_inf_nan_comments() {
        let s = parse_exposition(PAGE).unwrap();
        assert_eq!(s.len(), 10);
        assert_eq!(s[0].labels["path"], "/a \"quoted\"\\back\nline");
        assert!((s[0].value - 10.0).abs() < f64::EPSILON);
        assert!((s[1].value - 25.0).abs() < f64::EPSILON);
        assert_eq!(s[1].labels["path"], "/b");
        assert_eq!(s[2].name, "up");
        assert!(s[3].value.is_nan());
        assert_eq!(s[6].labels["le"], "+Inf");
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(num(f64::NAN), json!("NaN"));
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(
            parse_exposition("x{a=\"1} 2")
                .unwrap_err()
                .contains("line 1")
        );
        assert!(
            parse_exposition("ok 1\nx{a=1} 2")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(parse_exposition("x abc").is_err());
        assert!(parse_exposition("x 1 notatime").is_err());
    }

    #[test]
    fn quantile_interpolates() {
        let s = parse_exposition(PAGE).unwrap();
        let b: Vec<&Sample> = s.iter().filter(|s| s.name == "lat_bucket").collect();
        // rank 2 of 4 lies halfway through the (0.1, 0.5] bucket holding observations 2..3.
        assert!((histogram_quantile(0.5, &b) - 0.3).abs() < 1e-9);
        // rank 4: in the +Inf bucket, so the highest finite bound.
        assert!((histogram_quantile(1.0, &b) - 0.5).abs() < 1e-9);
        assert!((histogram_quantile(0.25, &b) - 0.1).abs() < 1e-9);
    }

    #[test]
    fn select_sums_and_reports_missing() {
        let s = parse_exposition(PAGE).unwrap();
        let mut out = Map::new();
        select(&s, "http_requests_total", &IndexMap::new(), None, &mut out);
        assert_eq!(out["value"], json!(35.0));
        let mut out = Map::new();
        let labels: IndexMap<String, String> = [("method".into(), "post".into())].into();
        select(&s, "http_requests_total", &labels, None, &mut out);
        assert_eq!(out["value"], json!(25.0));
        let mut out = Map::new();
        select(&s, "lat", &IndexMap::new(), None, &mut out);
        assert_eq!(out["value"], json!(4.0));
        assert_eq!(out["sum"], json!(1.2));
        let mut out = Map::new();
        select(&s, "rpc", &IndexMap::new(), Some(0.99), &mut out);
        assert_eq!(out["quantile"], json!(0.3));
        let mut out = Map::new();
        select(&s, "nope", &IndexMap::new(), None, &mut out);
        assert_eq!(out["value"], Value::Null);
        assert_eq!(out["reason"], json!("metric not found"));
    }
}
