//! Webhook bodies, as sent (`AlertmanagerPayload`, `GrafanaPayload`, `GenericPayload`) and
//! normalized (`Delivery`), with the dedup key the server records each delivery under.
//!
//! Parsing is pure: bytes in, a `Delivery` or a `PayloadError` (answered 400) out. The server
//! caps the body size before calling these; the limits here bound what a body within that cap may
//! still ask of us (alert count, label sizes).
//!
//! Formats:
//! - Alertmanager webhook payload version 4 (`notify/webhook` in Alertmanager): `version`,
//!   `groupKey`, `truncatedAlerts`, `status`, `receiver`, `groupLabels`, `commonLabels`,
//!   `commonAnnotations`, `externalURL`, `alerts[]`. Unknown fields are ignored, so a newer
//!   Alertmanager that adds fields still gets through.
//! - Grafana unified alerting, contact point "webhook": the same shape, `version` "1", plus
//!   `orgId`, `title`, `state`, `message` and per alert `silenceURL`, `dashboardURL`,
//!   `panelURL`, `values`, `valueString`, `imageURL`. Legacy (pre-unified) Grafana bodies are
//!   refused.
//! - Generic: `{"runbook": "name", "params": {"k": "v" | 1 | true}}`; unknown fields refused
//!   (it is our own format: a typo such as `parms` should fail loudly).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Label or annotation set: name → value, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Bounds on what one body may carry, checked after parsing (the body size cap comes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most alerts in one delivery.
    pub max_alerts: usize,
    /// Longest label or annotation name or value, and longest `groupKey`, in bytes.
    pub max_label_bytes: usize,
    /// Most labels (and, separately, annotations) on one alert; most generic params.
    pub max_labels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_alerts: 10_000,
            max_label_bytes: 64 * 1024,
            max_labels: 1_000,
        }
    }
}

/// Where a delivery came from (which endpoint parsed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// `POST /hooks/alertmanager`.
    Alertmanager,
    /// `POST /hooks/grafana`.
    Grafana,
    /// `POST /hooks/generic`.
    Generic,
}

impl Source {
    /// Lowercase name, as stored and used in metrics labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alertmanager => "alertmanager",
            Self::Grafana => "grafana",
            Self::Generic => "generic",
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            Self::Alertmanager => "Alertmanager",
            Self::Grafana => "Grafana",
            Self::Generic => "generic",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status of a group or of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The alert is active.
    Firing,
    /// The alert has ended.
    Resolved,
}

impl Status {
    /// `firing` or `resolved`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// As sent
// ---------------------------------------------------------------------------------------------

/// Alertmanager webhook body, version 4, as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerPayload {
    /// Payload format version; only `"4"` is accepted.
    pub version: String,
    /// Identifies the alert group (route path and group labels).
    pub group_key: String,
    /// Alerts left out because of the receiver's `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// `firing` if any alert of the group fires, else `resolved`.
    pub status: Status,
    /// Name of the Alertmanager receiver that sent this.
    pub receiver: String,
    /// Labels the group is formed by.
    #[serde(default, deserialize_with = "map_or_null")]
    pub group_labels: Labels,
    /// Labels every alert of the group shares.
    #[serde(default, deserialize_with = "map_or_null")]
    pub common_labels: Labels,
    /// Annotations every alert of the group shares.
    #[serde(default, deserialize_with = "map_or_null")]
    pub common_annotations: Labels,
    /// Link back to the Alertmanager.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alerts of the group.
    pub alerts: Vec<AlertmanagerAlert>,
}

/// One alert of an Alertmanager body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerAlert {
    /// `firing` or `resolved`.
    pub status: Status,
    /// Identifying labels (`alertname`, `instance`, ...).
    #[serde(deserialize_with = "map_or_null")]
    pub labels: Labels,
    /// Non-identifying annotations (`summary`, `runbook_url`, ...).
    #[serde(default, deserialize_with = "map_or_null")]
    pub annotations: Labels,
    /// Start time; `None` for Go's zero time.
    #[serde(default, deserialize_with = "go_time")]
    pub starts_at: Option<DateTime<Utc>>,
    /// End time; `None` for Go's zero time (a firing alert with no end yet).
    #[serde(default, deserialize_with = "go_time")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Link to the rule in the sender (Prometheus graph URL).
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint of the label set (16 hex digits); empty if absent.
    #[serde(default)]
    pub fingerprint: String,
}

impl From<AlertmanagerAlert> for Alert {
    fn from(a: AlertmanagerAlert) -> Self {
        Alert {
            status: a.status,
            labels: a.labels,
            annotations: a.annotations,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            fingerprint: a.fingerprint,
            generator_url: non_empty(a.generator_url),
        }
    }
}

/// Grafana unified alerting webhook body, as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrafanaPayload {
    /// Grafana's own payload version (`"1"`); not checked.
    #[serde(default)]
    pub version: String,
    /// Identifies the alert group.
    pub group_key: String,
    /// Alerts left out because of the contact point's `maxAlerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// Grafana organization id.
    #[serde(default)]
    pub org_id: i64,
    /// Rendered title template.
    #[serde(default)]
    pub title: String,
    /// `alerting` or `ok`.
    #[serde(default)]
    pub state: String,
    /// Rendered message template.
    #[serde(default)]
    pub message: String,
    /// `firing` if any alert of the group fires, else `resolved`.
    pub status: Status,
    /// Name of the contact point.
    #[serde(default)]
    pub receiver: String,
    /// Labels the group is formed by.
    #[serde(default, deserialize_with = "map_or_null")]
    pub group_labels: Labels,
    /// Labels every alert of the group shares.
    #[serde(default, deserialize_with = "map_or_null")]
    pub common_labels: Labels,
    /// Annotations every alert of the group shares.
    #[serde(default, deserialize_with = "map_or_null")]
    pub common_annotations: Labels,
    /// Link back to Grafana.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alerts of the group.
    pub alerts: Vec<GrafanaAlert>,
}

/// One alert of a Grafana body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrafanaAlert {
    /// What an Alertmanager alert carries (status, labels, annotations, times, generator URL,
    /// fingerprint).
    #[serde(flatten)]
    pub alert: AlertmanagerAlert,
    /// Link that pre-fills a silence.
    #[serde(default, rename = "silenceURL")]
    pub silence_url: String,
    /// Dashboard of the rule, if any.
    #[serde(default, rename = "dashboardURL")]
    pub dashboard_url: String,
    /// Panel of the rule, if any.
    #[serde(default, rename = "panelURL")]
    pub panel_url: String,
    /// Query and expression results by reference id (`B`, `C`, ...).
    #[serde(default, deserialize_with = "map_or_null")]
    pub values: BTreeMap<String, Option<f64>>,
    /// The same values as text.
    #[serde(default)]
    pub value_string: String,
    /// Screenshot of the panel, if image rendering is on.
    #[serde(default, rename = "imageURL")]
    pub image_url: String,
}

/// Generic webhook body: which runbook to run, with which parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericPayload {
    /// Runbook name.
    pub runbook: String,
    /// Parameter values.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
}

/// A generic parameter value: a string, a number or a boolean.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A string.
    String(String),
    /// A number (integer or float, as written).
    Number(serde_json::Number),
    /// A boolean.
    Bool(bool),
}

impl ParamValue {
    /// As JSON, for the engine's parameter values.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::String(s) => serde_json::Value::String(s.clone()),
            Self::Number(n) => serde_json::Value::Number(n.clone()),
            Self::Bool(b) => serde_json::Value::Bool(*b),
        }
    }

    /// As text, to be parsed against the runbook's declared type like a `--set k=v` value.
    #[must_use]
    pub fn to_text(&self) -> String {
        match self {
            Self::String(s) => s.clone(),
            Self::Number(n) => n.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamVisitor;
        impl Visitor<'_> for ParamVisitor {
            type Value = ParamValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue::Number(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ParamValue, E> {
                Ok(ParamValue::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ParamValue, E> {
                serde_json::Number::from_f64(v)
                    .map(ParamValue::Number)
                    .ok_or_else(|| E::custom("a number must be finite"))
            }
        }
        deserializer.deserialize_any(ParamVisitor)
    }
}

/// A map that Go may have encoded as `null` (a nil map).
fn map_or_null<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    Ok(Option::<BTreeMap<String, V>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Go's zero time, `0001-01-01T00:00:00Z`, as unix seconds.
const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// Go's `time.Time` as JSON: RFC 3339 with optional fractional seconds and an offset. Go's zero
/// time (`0001-01-01T00:00:00Z`, "not set"), `""` and `null` read as `None`.
fn go_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(None);
    }
    let t = DateTime::parse_from_rfc3339(&text)
        .map_err(|e| de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}")))?
        .with_timezone(&Utc);
    let is_zero = t.timestamp() == GO_ZERO_UNIX && t.timestamp_subsec_nanos() == 0;
    Ok((!is_zero).then_some(t))
}

// ---------------------------------------------------------------------------------------------
// Normalized
// ---------------------------------------------------------------------------------------------

/// One webhook delivery, whatever its source: what the server records and routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The endpoint that parsed it.
    pub source: Source,
    /// The sender's group key; for generic, `generic:<runbook>`.
    pub group_key: String,
    /// Group status (generic: always firing).
    pub status: Status,
    /// Receiver or contact point name (empty for generic).
    pub receiver: String,
    /// Alerts the sender left out (`truncatedAlerts`).
    pub truncated_alerts: u64,
    /// The alerts, in the order sent; never empty.
    pub alerts: Vec<Alert>,
    /// Hex SHA-256 identifying the delivery: a re-sent delivery has the same key (see
    /// [`dedup_key`]).
    pub dedup_key: String,
    /// The runbook asked for (generic only).
    pub runbook: Option<String>,
    /// Parameters given (generic only).
    pub params: BTreeMap<String, ParamValue>,
}

impl Delivery {
    /// The alerts that fire.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.status == Status::Firing)
    }

    /// The alerts that have resolved.
    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.status == Status::Resolved)
    }
}

/// One alert, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: Status,
    /// Identifying labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
    /// Start, if set.
    pub starts_at: Option<DateTime<Utc>>,
    /// End, if set (Go's zero time means not set).
    pub ends_at: Option<DateTime<Utc>>,
    /// The sender's fingerprint, or [`label_fingerprint`] of the labels when it sent none.
    pub fingerprint: String,
    /// Link to the rule, if any.
    pub generator_url: Option<String>,
}

impl Alert {
    /// The `alertname` label, the routing key.
    #[must_use]
    pub fn alertname(&self) -> Option<&str> {
        self.labels.get("alertname").map(String::as_str)
    }
}

/// Why a body was refused (answered 400); `Display` is the message to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, or JSON of the wrong shape (type, missing field); the message says where.
    #[error("invalid {0}")]
    Malformed(String),
    /// Well-formed, but not something we accept (version, empty `alerts`, reserved name).
    #[error("{0}")]
    Invalid(String),
    /// Over a bound of [`Limits`].
    #[error("{0}")]
    TooLarge(String),
}

fn malformed(source: Source, e: &serde_json::Error) -> PayloadError {
    let what = match e.classify() {
        serde_json::error::Category::Io
        | serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof => "JSON",
        serde_json::error::Category::Data => "payload",
    };
    PayloadError::Malformed(format!("{} webhook {what}: {e}", source.display_name()))
}

/// Parse an Alertmanager webhook body (version 4).
///
/// # Errors
/// Malformed JSON, a missing or mistyped field, a version other than `"4"`, no alerts, or a
/// bound of `limits` exceeded.
pub fn parse_alertmanager(body: &[u8], limits: &Limits) -> Result<Delivery, PayloadError> {
    let raw: AlertmanagerPayload =
        serde_json::from_slice(body).map_err(|e| malformed(Source::Alertmanager, &e))?;
    if raw.version != "4" {
        let hint = if raw.version == "1" {
            " (Grafana sends version 1: use `/hooks/grafana`)"
        } else {
            ""
        };
        return Err(PayloadError::Invalid(format!(
            "unsupported Alertmanager webhook version `{}`, expected `4`{hint}",
            raw.version
        )));
    }
    let alerts = raw.alerts.into_iter().map(Alert::from).collect();
    finish(
        Source::Alertmanager,
        raw.group_key,
        raw.status,
        raw.receiver,
        raw.truncated_alerts,
        alerts,
        limits,
    )
}

/// Parse a Grafana unified alerting webhook body.
///
/// # Errors
/// Malformed JSON, a missing or mistyped field (a legacy Grafana body lacks `groupKey` and
/// `alerts`), no alerts, or a bound of `limits` exceeded.
pub fn parse_grafana(body: &[u8], limits: &Limits) -> Result<Delivery, PayloadError> {
    let raw: GrafanaPayload =
        serde_json::from_slice(body).map_err(|e| malformed(Source::Grafana, &e))?;
    let alerts = raw
        .alerts
        .into_iter()
        .map(|a| Alert::from(a.alert))
        .collect();
    finish(
        Source::Grafana,
        raw.group_key,
        raw.status,
        raw.receiver,
        raw.truncated_alerts,
        alerts,
        limits,
    )
}

/// Parse a generic webhook body. `signed_timestamp` is the timestamp the HMAC signature
/// covered (see `auth`): it enters the dedup key, so a retried identical request dedups while
/// the same request signed again later does not.
///
/// The delivery carries one synthetic firing alert whose labels are the params as text plus
/// `__runbook__` = the runbook name; its fingerprint is [`label_fingerprint`] of those labels,
/// so the same runbook with the same params is the same "alert" for one-run-at-a-time.
///
/// # Errors
/// Malformed JSON, an unknown field, a param that is not a string, number or boolean, an
/// empty runbook name, a param name starting with `__` (reserved), or a bound exceeded.
pub fn parse_generic(
    body: &[u8],
    signed_timestamp: Option<i64>,
    limits: &Limits,
) -> Result<Delivery, PayloadError> {
    let raw: GenericPayload =
        serde_json::from_slice(body).map_err(|e| malformed(Source::Generic, &e))?;
    if raw.runbook.trim().is_empty() {
        return Err(PayloadError::Invalid("`runbook` is empty".into()));
    }
    check_len(&raw.runbook, "`runbook`", limits)?;
    if raw.params.len() > limits.max_labels {
        return Err(PayloadError::TooLarge(format!(
            "{} params, more than the limit of {}",
            raw.params.len(),
            limits.max_labels
        )));
    }
    let mut labels = Labels::new();
    for (name, value) in &raw.params {
        if name.starts_with("__") {
            return Err(PayloadError::Invalid(format!(
                "param name `{name}` is reserved (names starting with `__`)"
            )));
        }
        let text = value.to_text();
        check_len(name, "a param name", limits)?;
        check_len(&text, &format!("param `{name}`"), limits)?;
        labels.insert(name.clone(), text);
    }
    labels.insert("__runbook__".into(), raw.runbook.clone());
    let fingerprint = label_fingerprint(&labels);
    let alerts = vec![Alert {
        status: Status::Firing,
        labels,
        annotations: Labels::new(),
        starts_at: None,
        ends_at: None,
        fingerprint,
        generator_url: None,
    }];

    let body_hash = Sha256::digest(body);
    let mut h = Sha256::new();
    field(&mut h, Source::Generic.as_str().as_bytes());
    field(
        &mut h,
        signed_timestamp
            .map(|t| t.to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    field(&mut h, &body_hash);
    Ok(Delivery {
        source: Source::Generic,
        group_key: format!("generic:{}", raw.runbook),
        status: Status::Firing,
        receiver: String::new(),
        truncated_alerts: 0,
        alerts,
        dedup_key: hex::encode(h.finalize()),
        runbook: Some(raw.runbook),
        params: raw.params,
    })
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn check_len(text: &str, what: &str, limits: &Limits) -> Result<(), PayloadError> {
    if text.len() > limits.max_label_bytes {
        return Err(PayloadError::TooLarge(format!(
            "{what} is {} bytes, more than the limit of {}",
            text.len(),
            limits.max_label_bytes
        )));
    }
    Ok(())
}

fn check_labels(
    set: &Labels,
    what: &str,
    index: usize,
    limits: &Limits,
) -> Result<(), PayloadError> {
    if set.len() > limits.max_labels {
        return Err(PayloadError::TooLarge(format!(
            "alert {index} has {} {what}s, more than the limit of {}",
            set.len(),
            limits.max_labels
        )));
    }
    for (name, value) in set {
        let shown: String = name.chars().take(64).collect();
        check_len(name, &format!("a {what} name of alert {index}"), limits)?;
        check_len(value, &format!("{what} `{shown}` of alert {index}"), limits)?;
    }
    Ok(())
}

/// Shared tail of Alertmanager and Grafana parsing: limits, fingerprints, dedup key.
fn finish(
    source: Source,
    group_key: String,
    status: Status,
    receiver: String,
    truncated_alerts: u64,
    mut alerts: Vec<Alert>,
    limits: &Limits,
) -> Result<Delivery, PayloadError> {
    if alerts.is_empty() {
        return Err(PayloadError::Invalid(format!(
            "{} webhook payload has no alerts",
            source.display_name()
        )));
    }
    if alerts.len() > limits.max_alerts {
        return Err(PayloadError::TooLarge(format!(
            "{} alerts, more than the limit of {}",
            alerts.len(),
            limits.max_alerts
        )));
    }
    check_len(&group_key, "`groupKey`", limits)?;
    check_len(&receiver, "`receiver`", limits)?;
    for (index, alert) in alerts.iter_mut().enumerate() {
        check_labels(&alert.labels, "label", index, limits)?;
        check_labels(&alert.annotations, "annotation", index, limits)?;
        check_len(
            &alert.fingerprint,
            &format!("the fingerprint of alert {index}"),
            limits,
        )?;
        if alert.fingerprint.is_empty() {
            alert.fingerprint = label_fingerprint(&alert.labels);
        }
    }
    let dedup_key = dedup_key(source, &group_key, status, &alerts);
    Ok(Delivery {
        source,
        group_key,
        status,
        receiver,
        truncated_alerts,
        alerts,
        dedup_key,
        runbook: None,
        params: BTreeMap::new(),
    })
}

/// Fingerprint of a label set, computed as Alertmanager does (`model.LabelSet.Fingerprint` in
/// Prometheus' `common/model`): 64-bit FNV-1a over the label names in sorted order, each name
/// and value followed by the byte `0xff`, printed as 16 lowercase hex digits. Used when a sender
/// gives no fingerprint, so a computed one equals the one Alertmanager would have sent.
#[must_use]
pub fn label_fingerprint(labels: &Labels) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const SEPARATOR: u8 = 0xff;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    // BTreeMap iterates in sorted name order, as Alertmanager sorts label names.
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    format!("{hash:016x}")
}

/// The dedup key of a delivery (design §7): hex SHA-256 over the source, the group key, the
/// group status and the sorted `fingerprint:status:startsAt` triples of its alerts. Each part
/// is written with its length first (8 bytes, big endian), so no two different inputs hash the
/// same bytes.
///
/// Alert order does not matter; a re-sent delivery (Alertmanager retries after a 5xx with the
/// same body) has the same key. Each alert's own status is in the key, next to its
/// fingerprint: a group that stays `firing` while one of its alerts resolves is a new
/// delivery, not a duplicate. So is its start: an alert that fires again after it resolved
/// (same fingerprint, a new `startsAt`) is a new episode and starts its runbook again.
#[must_use]
pub fn dedup_key(source: Source, group_key: &str, status: Status, alerts: &[Alert]) -> String {
    let mut pairs: Vec<String> = alerts
        .iter()
        .map(|a| {
            let start = a.starts_at.map(|t| t.to_rfc3339()).unwrap_or_default();
            format!("{}:{}:{start}", a.fingerprint, a.status.as_str())
        })
        .collect();
    pairs.sort_unstable();
    let mut h = Sha256::new();
    field(&mut h, source.as_str().as_bytes());
    field(&mut h, group_key.as_bytes());
    field(&mut h, status.as_str().as_bytes());
    for pair in &pairs {
        field(&mut h, pair.as_bytes());
    }
    hex::encode(h.finalize())
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/alerts/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn am(body: &str) -> Result<Delivery, PayloadError> {
        parse_alertmanager(body.as_bytes(), &Limits::default())
    }

    /// A minimal valid version 4 body with the given alerts (JSON array text).
    fn am_body(status: &str, alerts: &str) -> String {
        format!(
            r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"X\"}}","status":"{status}","receiver":"r","alerts":{alerts}}}"#
        )
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn alertmanager_firing_fixture() {
        let d =
            parse_alertmanager(&fixture("alertmanager-firing.json"), &Limits::default()).unwrap();
        assert_eq!(d.source, Source::Alertmanager);
        assert_eq!(d.status, Status::Firing);
        assert_eq!(d.receiver, "runbook");
        assert_eq!(
            d.group_key,
            r#"{}/{team="platform"}:{instance="api-1.example.internal:9100"}"#
        );
        let names: Vec<_> = d.alerts.iter().filter_map(Alert::alertname).collect();
        assert_eq!(
            names,
            [
                "SseAvailabilitySLOViolation",
                "CircuitBreakerOpen",
                "ExecLatencyP99SLA"
            ]
        );
        let first = &d.alerts[0];
        // Nanoseconds and a +02:00 offset, normalized to UTC.
        assert_eq!(first.starts_at, Some(utc("2026-11-23T07:52:26.739266876Z")));
        assert_eq!(first.ends_at, None, "Go's zero time reads as not set");
        assert_eq!(first.fingerprint, "36fc9a3b2dde4c9f");
        assert!(
            first
                .generator_url
                .as_deref()
                .unwrap()
                .contains("&g0.tab=1")
        );
        assert_eq!(d.firing().count(), 3);
        assert_eq!(d.resolved().count(), 0);
        assert_eq!(d.dedup_key.len(), 64);
        assert!(d.runbook.is_none() && d.params.is_empty());
    }

    #[test]
    fn fixture_fingerprints_are_alertmanagers() {
        // The fixtures' fingerprints were computed with Alertmanager's algorithm; recomputing
        // them from the labels must give the same, for every fixture alert.
        for name in [
            "alertmanager-firing.json",
            "alertmanager-resolved.json",
            "alertmanager-truncated.json",
        ] {
            let d = parse_alertmanager(&fixture(name), &Limits::default()).unwrap();
            for a in &d.alerts {
                assert_eq!(a.fingerprint, label_fingerprint(&a.labels), "{name}");
            }
        }
    }

    #[test]
    fn alertmanager_resolved_fixture() {
        let d =
            parse_alertmanager(&fixture("alertmanager-resolved.json"), &Limits::default()).unwrap();
        assert_eq!(d.status, Status::Resolved);
        let a = &d.alerts[0];
        assert_eq!(a.alertname(), Some("PolicyDenyRateHigh"));
        assert_eq!(a.status, Status::Resolved);
        assert_eq!(a.starts_at, Some(utc("2026-11-23T06:10:41.5Z")));
        assert_eq!(a.ends_at, Some(utc("2026-11-23T06:45:41.5Z")));
        assert_eq!(d.resolved().count(), 1);
    }

    #[test]
    fn alertmanager_truncated_fixture() {
        let d = parse_alertmanager(&fixture("alertmanager-truncated.json"), &Limits::default())
            .unwrap();
        assert_eq!(d.truncated_alerts, 3);
        assert_eq!(d.alerts.len(), 2);
        assert!(
            d.alerts
                .iter()
                .all(|a| a.alertname() == Some("CalibrationECEHigh"))
        );
        assert_eq!(d.firing().count(), 1);
        assert_eq!(d.resolved().count(), 1);
    }

    #[test]
    fn grafana_fixture() {
        let body = fixture("grafana-firing.json");
        let d = parse_grafana(&body, &Limits::default()).unwrap();
        assert_eq!(d.source, Source::Grafana);
        assert_eq!(d.status, Status::Firing);
        assert_eq!(d.receiver, "runbook-webhook");
        assert_eq!(d.alerts[0].alertname(), Some("ExecLatencyP99SLA"));
        assert_eq!(d.alerts[0].fingerprint, "cc652e70123bb43b");
        assert_eq!(
            d.alerts[0].starts_at,
            Some(utc("2026-11-23T08:51:03.157076Z"))
        );
        assert_eq!(d.alerts[0].ends_at, None);
        // The Grafana-only fields are read too.
        let raw: GrafanaPayload = serde_json::from_slice(&body).unwrap();
        assert_eq!(raw.org_id, 1);
        assert_eq!(raw.state, "alerting");
        assert!(raw.title.starts_with("[FIRING:1] ExecLatencyP99SLA"));
        assert_eq!(raw.alerts[0].values.get("B"), Some(&Some(0.412)));
        assert!(raw.alerts[0].silence_url.contains("alertmanager=grafana"));
        assert!(raw.alerts[0].panel_url.ends_with("viewPanel=4"));
        // Same alert, different source: a different dedup key.
        let as_am = dedup_key(Source::Alertmanager, &d.group_key, d.status, &d.alerts);
        assert_ne!(as_am, d.dedup_key);
    }

    #[test]
    fn grafana_body_on_the_alertmanager_endpoint_points_to_the_right_one() {
        let err =
            parse_alertmanager(&fixture("grafana-firing.json"), &Limits::default()).unwrap_err();
        assert!(matches!(err, PayloadError::Invalid(_)));
        assert!(err.to_string().contains("use `/hooks/grafana`"), "{err}");
    }

    #[test]
    fn legacy_grafana_body_is_refused() {
        let legacy = r#"{"evalMatches":[],"message":"m","ruleId":0,"ruleName":"r","state":"alerting","title":"t"}"#;
        let err = parse_grafana(legacy.as_bytes(), &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
    }

    #[test]
    fn grafana_alert_without_fingerprint_gets_the_label_fingerprint() {
        let body = r#"{"groupKey":"g","status":"firing","alerts":[
            {"status":"firing","labels":{"alertname":"CircuitBreakerOpen","breaker":"payments"},"values":null}]}"#;
        let d = parse_grafana(body.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(
            d.alerts[0].fingerprint,
            label_fingerprint(&d.alerts[0].labels)
        );
        assert_eq!(d.alerts[0].fingerprint.len(), 16);
    }

    #[test]
    fn label_fingerprint_matches_prometheus_common() {
        // Test vector of `LabelsToSignature` in prometheus/common (same hash as
        // `LabelSet.Fingerprint`): 5799056148416392346.
        let labels = Labels::from([
            ("name".to_owned(), "garland, briggs".to_owned()),
            ("fear".to_owned(), "love is not enough".to_owned()),
        ]);
        assert_eq!(
            label_fingerprint(&labels),
            format!("{:016x}", 5_799_056_148_416_392_346_u64)
        );
        // The empty set is FNV's offset basis.
        assert_eq!(label_fingerprint(&Labels::new()), "cbf29ce484222325");
    }

    #[test]
    fn go_zero_time_empty_and_null_are_not_set() {
        let d = am(&am_body(
            "firing",
            r#"[{"status":"firing","labels":{"alertname":"A"},"startsAt":"0001-01-01T00:00:00Z","endsAt":""},
                {"status":"firing","labels":{"alertname":"B"},"startsAt":null}]"#,
        ))
        .unwrap();
        assert!(
            d.alerts
                .iter()
                .all(|a| a.starts_at.is_none() && a.ends_at.is_none())
        );
    }

    #[test]
    fn times_with_offsets_and_fractions() {
        let d = am(&am_body(
            "firing",
            r#"[{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-01-02T03:04:05.123456789-07:30","endsAt":"2026-01-02T10:34:06Z"}]"#,
        ))
        .unwrap();
        assert_eq!(
            d.alerts[0].starts_at,
            Some(utc("2026-01-02T10:34:05.123456789Z"))
        );
        assert_eq!(d.alerts[0].ends_at, Some(utc("2026-01-02T10:34:06Z")));
    }

    #[test]
    fn a_bad_time_is_refused_with_its_text() {
        let err = am(&am_body(
            "firing",
            r#"[{"status":"firing","labels":{"alertname":"A"},"startsAt":"yesterday"}]"#,
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`yesterday` is not an RFC 3339 time"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_accepted() {
        let body = r#"{"version":"4","groupKey":"g","status":"firing","receiver":"r","newTopLevel":{"x":[1,2]},
            "alerts":[{"status":"firing","labels":{"alertname":"A"},"newAlertField":true}]}"#;
        let d = am(body).unwrap();
        assert_eq!(d.alerts[0].alertname(), Some("A"));
    }

    #[test]
    fn nil_maps_read_as_empty() {
        let body = r#"{"version":"4","groupKey":"g","status":"firing","receiver":"r","groupLabels":null,"commonLabels":null,"commonAnnotations":null,
            "alerts":[{"status":"firing","labels":{"alertname":"A"},"annotations":null}]}"#;
        let d = am(body).unwrap();
        assert!(d.alerts[0].annotations.is_empty());
    }

    #[test]
    fn missing_fingerprint_is_computed_from_labels() {
        let d = am(&am_body(
            "firing",
            r#"[{"status":"firing","labels":{"job":"api","alertname":"A"}},{"status":"firing","labels":{"alertname":"A","job":"api"},"fingerprint":""}]"#,
        ))
        .unwrap();
        // Label order in the JSON does not matter; empty counts as missing.
        assert_eq!(d.alerts[0].fingerprint, d.alerts[1].fingerprint);
        assert_eq!(
            d.alerts[0].fingerprint,
            label_fingerprint(&d.alerts[0].labels)
        );
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_message() {
        let cases: &[(&str, &str)] = &[
            ("", "invalid Alertmanager webhook JSON: EOF"),
            ("{", "invalid Alertmanager webhook JSON"),
            ("[]", "invalid Alertmanager webhook payload"),
            ("{}", "missing field `version`"),
            (r#"{"version":"4"}"#, "missing field `groupKey`"),
            (
                r#"{"version":"4","groupKey":"g","status":"firing","receiver":"r"}"#,
                "missing field `alerts`",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"burning","receiver":"r","alerts":[]}"#,
                "unknown variant `burning`, expected `firing` or `resolved`",
            ),
            (
                r#"{"version":4,"groupKey":"g","status":"firing","receiver":"r","alerts":[]}"#,
                "invalid type: integer `4`, expected a string",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"a":1}}]}"#,
                "invalid type: integer `1`, expected a string",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"firing","receiver":"r","alerts":[{"status":"firing"}]}"#,
                "missing field `labels`",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"firing","receiver":"r","alerts":[]}"#,
                "Alertmanager webhook payload has no alerts",
            ),
            (
                r#"{"version":"5","groupKey":"g","status":"firing","receiver":"r","alerts":[]}"#,
                "unsupported Alertmanager webhook version `5`, expected `4`",
            ),
            ("\u{feff}{}", "invalid Alertmanager webhook JSON"),
        ];
        for (body, want) in cases {
            let err = am(body).unwrap_err().to_string();
            assert!(err.contains(want), "{body:?}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_alerts: 2,
            max_label_bytes: 8,
            max_labels: 2,
        };
        let alert = r#"{"status":"firing","labels":{"alertname":"A"}}"#;
        // A short group key, within the tight limits below.
        let am_body = |status: &str, alerts: &str| {
            format!(
                r#"{{"version":"4","groupKey":"g","status":"{status}","receiver":"r","alerts":{alerts}}}"#
            )
        };
        let three = am_body("firing", &format!("[{alert},{alert},{alert}]"));
        let err = parse_alertmanager(three.as_bytes(), &limits).unwrap_err();
        assert_eq!(
            err,
            PayloadError::TooLarge("3 alerts, more than the limit of 2".into())
        );

        let long_value = am_body(
            "firing",
            r#"[{"status":"firing","labels":{"a":"123456789"}}]"#,
        );
        let err = parse_alertmanager(long_value.as_bytes(), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "label `a` of alert 0 is 9 bytes, more than the limit of 8"
        );

        let long_name = am_body(
            "firing",
            r#"[{"status":"firing","labels":{"123456789":"a"}}]"#,
        );
        let err = parse_alertmanager(long_name.as_bytes(), &limits).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("a label name of alert 0 is 9 bytes"),
            "{err}"
        );

        let long_annotation = am_body(
            "firing",
            r#"[{"status":"firing","labels":{},"annotations":{"s":"123456789"}}]"#,
        );
        let err = parse_alertmanager(long_annotation.as_bytes(), &limits).unwrap_err();
        assert!(
            err.to_string().starts_with("annotation `s` of alert 0"),
            "{err}"
        );

        let many = am_body(
            "firing",
            r#"[{"status":"firing","labels":{"a":"1","b":"2","c":"3"}}]"#,
        );
        let err = parse_alertmanager(many.as_bytes(), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "alert 0 has 3 labels, more than the limit of 2"
        );

        let ok_alerts = r#"[{"status":"firing","labels":{"a":"1"}}]"#;
        assert!(parse_alertmanager(am_body("firing", ok_alerts).as_bytes(), &limits).is_ok());
        let long_group = super::tests::am_body("firing", ok_alerts);
        let err = parse_alertmanager(long_group.as_bytes(), &limits).unwrap_err();
        assert!(
            err.to_string().starts_with("`groupKey` is 18 bytes"),
            "{err}"
        );

        // The default limit is 10 000 alerts.
        let alerts = vec![alert; 10_001].join(",");
        let err = am(&super::tests::am_body("firing", &format!("[{alerts}]"))).unwrap_err();
        assert!(err.to_string().starts_with("10001 alerts"), "{err}");
    }

    #[test]
    fn dedup_key_ignores_alert_order() {
        let a = r#"{"status":"firing","labels":{"alertname":"A"},"fingerprint":"aaaa"}"#;
        let b = r#"{"status":"firing","labels":{"alertname":"B"},"fingerprint":"bbbb"}"#;
        let one = am(&am_body("firing", &format!("[{a},{b}]"))).unwrap();
        let two = am(&am_body("firing", &format!("[{b},{a}]"))).unwrap();
        assert_eq!(one.dedup_key, two.dedup_key);
        // The very same bytes re-sent (a retry) dedup too.
        assert_eq!(
            one.dedup_key,
            am(&am_body("firing", &format!("[{a},{b}]")))
                .unwrap()
                .dedup_key
        );
    }

    #[test]
    fn dedup_key_differs_by_status_alerts_group_and_source() {
        let firing = am(&am_body(
            "firing",
            r#"[{"status":"firing","labels":{},"fingerprint":"f1"}]"#,
        ))
        .unwrap();
        let resolved = am(&am_body(
            "resolved",
            r#"[{"status":"resolved","labels":{},"fingerprint":"f1"}]"#,
        ))
        .unwrap();
        assert_ne!(firing.dedup_key, resolved.dedup_key);

        // Group still firing, but one of its alerts resolved: a new delivery.
        let both = am(&am_body(
            "firing",
            r#"[{"status":"firing","labels":{},"fingerprint":"f1"},{"status":"firing","labels":{},"fingerprint":"f2"}]"#,
        ))
        .unwrap();
        let one_resolved = am(&am_body(
            "firing",
            r#"[{"status":"firing","labels":{},"fingerprint":"f1"},{"status":"resolved","labels":{},"fingerprint":"f2"}]"#,
        ))
        .unwrap();
        assert_ne!(both.dedup_key, one_resolved.dedup_key);
        assert_ne!(both.dedup_key, firing.dedup_key);

        let k =
            |group: &str| dedup_key(Source::Alertmanager, group, Status::Firing, &firing.alerts);
        assert_eq!(k(&firing.group_key), firing.dedup_key);
        assert_ne!(k("other"), firing.dedup_key);
        assert_ne!(
            dedup_key(
                Source::Grafana,
                &firing.group_key,
                Status::Firing,
                &firing.alerts
            ),
            firing.dedup_key
        );
        // Length prefixes: moving a byte across a field boundary changes the key.
        let mut shifted = firing.alerts.clone();
        shifted[0].fingerprint = "1".into();
        assert_ne!(
            dedup_key(Source::Alertmanager, "gf", Status::Firing, &shifted),
            dedup_key(Source::Alertmanager, "g", Status::Firing, &firing.alerts),
        );
    }

    #[test]
    fn generic_fixture() {
        let body = fixture("generic-run.json");
        let d = parse_generic(&body, Some(1_700_000_000), &Limits::default()).unwrap();
        assert_eq!(d.source, Source::Generic);
        assert_eq!(d.runbook.as_deref(), Some("sse-availability"));
        assert_eq!(d.group_key, "generic:sse-availability");
        assert_eq!(d.status, Status::Firing);
        assert_eq!(d.params["max_restarts"], ParamValue::Number(2.into()));
        assert_eq!(d.params["dry_run"], ParamValue::Bool(false));
        assert_eq!(d.params["window"].to_text(), "1h");
        assert_eq!(d.params["max_restarts"].to_json(), serde_json::json!(2));
        let alert = &d.alerts[0];
        assert_eq!(alert.labels["__runbook__"], "sse-availability");
        assert_eq!(alert.labels["instance"], "api-1.example.internal:9100");
        assert_eq!(alert.fingerprint, label_fingerprint(&alert.labels));
        assert_eq!(alert.alertname(), None);
    }

    #[test]
    fn generic_dedup_is_body_plus_signed_timestamp() {
        let body = br#"{"runbook":"r","params":{"a":"1"}}"#;
        let l = Limits::default();
        let key = |b: &[u8], t| parse_generic(b, t, &l).unwrap().dedup_key;
        assert_eq!(key(body, Some(100)), key(body, Some(100)), "a retry dedups");
        assert_ne!(
            key(body, Some(100)),
            key(body, Some(101)),
            "signed again later"
        );
        assert_ne!(key(body, Some(100)), key(body, None));
        let other = br#"{"runbook":"r","params":{"a":"2"}}"#;
        assert_ne!(key(body, Some(100)), key(other, Some(100)));
        // Same runbook and params, another timestamp: same fingerprint (one run at a time).
        let fp = |t| {
            parse_generic(body, t, &l).unwrap().alerts[0]
                .fingerprint
                .clone()
        };
        assert_eq!(fp(Some(1)), fp(Some(2)));
    }

    #[test]
    fn generic_errors() {
        let l = Limits::default();
        let err = |b: &str| {
            parse_generic(b.as_bytes(), None, &l)
                .unwrap_err()
                .to_string()
        };
        assert!(err("{}").contains("missing field `runbook`"));
        assert!(err(r#"{"runbook":"r","parms":{}}"#).contains("unknown field `parms`"));
        assert!(
            err(r#"{"runbook":"r","params":{"a":[1]}}"#)
                .contains("expected a string, number or boolean"),
        );
        assert!(
            err(r#"{"runbook":"r","params":{"a":null}}"#).contains("a string, number or boolean")
        );
        assert_eq!(err(r#"{"runbook":" "}"#), "`runbook` is empty");
        assert!(err(r#"{"runbook":"r","params":{"__runbook__":"x"}}"#).contains("reserved"));
        assert!(err("{\"runbook\":1}").starts_with("invalid generic webhook payload"));
        // Float params stay numbers; params may be omitted.
        let d = parse_generic(br#"{"runbook":"r","params":{"ratio":0.5}}"#, None, &l).unwrap();
        assert_eq!(d.params["ratio"].to_text(), "0.5");
        assert!(
            parse_generic(br#"{"runbook":"r"}"#, None, &l)
                .unwrap()
                .params
                .is_empty()
        );
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let l = Limits::default();
            let _ = parse_alertmanager(&bytes, &l);
            let _ = parse_grafana(&bytes, &l);
            let _ = parse_generic(&bytes, Some(0), &l);
        }

        #[test]
        fn mutated_fixtures_never_panic(index in 0usize..2048, byte in proptest::prelude::any::<u8>()) {
            let l = Limits::default();
            for name in ["alertmanager-firing.json", "grafana-firing.json", "generic-run.json"] {
                let mut body = fixture(name);
                let at = index % body.len();
                body[at] = byte;
                let _ = parse_alertmanager(&body, &l);
                let _ = parse_grafana(&body, &l);
                let _ = parse_generic(&body, None, &l);
            }
        }
    }
}
