//! `prometheus`: read a metric from a `/metrics` page (text exposition format) or query a
//! Prometheus server's HTTP API (`/api/v1/query`), like `curl /metrics | grep NAME`.
//!
//! With `url` + `metric` (and optional `labels`), the page is scraped: counters, gauges and
//! histograms; `value` is the sum over matching series, `samples` lists them, and for a
//! histogram `quantile` (e.g. 0.99) gives the estimated quantile from its buckets. With
//! `server` + `query`, a `PromQL` instant query (recording rules such as
//! `sse:availability_ratio:5m`); `value` is the first sample's value.
//!
//! Result: `value`, `samples`, `quantile`, `reason`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

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
pub const FIELDS: &[&str] = &["value", "samples", "quantile", "reason"];
