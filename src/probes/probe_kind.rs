//! The probe registry: a closed enum with one entry per probe file.

use schemars::{Schema, SchemaGenerator};
use serde_saphyr::Spanned;

use crate::probes::context::{ProbeContext, ProbeOutcome};
use crate::runbook::node::{Node, NodeError, from_node};

/// Fields every check result has, whatever its probe.
pub const COMMON_FIELDS: &[&str] = &[
    "ok",
    "failed",
    "error",
    "skipped",
    "unknown",
    "state",
    "status",
    "value",
    "reason",
    "duration_ms",
];

/// Fields a check with `sample:` adds.
pub const SAMPLE_FIELDS: &[&str] = &["values", "delta", "rate_per_s"];

macro_rules! probes {
    ($( $variant:ident => $module:ident :: $params:ident $(, validate = $validate:literal)? ; )*) => {
        /// A probe kind; its name equals its file name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProbeKind {
            $(
                #[doc = concat!("`", stringify!($module), "`")]
                $variant,
            )*
        }

        impl ProbeKind {
            /// Every probe, in registry order.
            pub const ALL: &'static [ProbeKind] = &[$(ProbeKind::$variant),*];

            /// The name used in runbooks (`probe: http`).
            #[must_use]
            pub fn name(self) -> &'static str {
                match self { $(ProbeKind::$variant => stringify!($module),)* }
            }

            /// The probe's own result fields (besides [`COMMON_FIELDS`]).
            #[must_use]
            pub fn fields(self) -> &'static [&'static str] {
                match self { $(ProbeKind::$variant => super::$module::FIELDS,)* }
            }

            /// The probe's documentation (its module doc).
            #[must_use]
            pub fn doc(self) -> &'static str {
                match self {
                    $(ProbeKind::$variant => include_str!(concat!(stringify!($module), ".rs")),)*
                }
            }

            /// Check `with:` against the probe's params struct.
            ///
            /// # Errors
            /// The first mismatch, located at the node it concerns.
            pub fn check_params(self, with: &Spanned<Node>) -> Result<(), NodeError> {
                match self {
                    $(ProbeKind::$variant => {
                        let _params: super::$module::$params = from_node(with)?;
                        $( let _: &str = $validate; _params.validate().map_err(|message| NodeError {
                            message, location: Some(with.referenced) })?; )?
                        Ok(())
                    })*
                }
            }

            /// Run the probe with rendered parameters (templates already filled in).
            pub async fn run(self, with: &serde_json::Value, cx: &ProbeContext<'_>) -> ProbeOutcome {
                match self {
                    $(ProbeKind::$variant => {
                        let params: super::$module::$params = match serde_json::from_value(with.clone()) {
                            Ok(p) => p,
                            Err(e) => return ProbeOutcome::Error(format!("bad parameters after rendering: {e}")),
                        };
                        super::$module::probe(params, cx).await
                    })*
                }
            }

            /// JSON Schema of the probe's params.
            #[must_use]
            pub fn params_schema(self, generator: &mut SchemaGenerator) -> Schema {
                match self {
                    $(ProbeKind::$variant => generator.subschema_for::<super::$module::$params>(),)*
                }
            }
        }
    };
}

probes! {
    Http => http::HttpParams;
    Sse => sse::SseParams;
    Prometheus => prometheus::PrometheusParams, validate = "yes";
    Jsonl => jsonl::JsonlParams;
    Tcp => tcp::TcpParams;
    Dns => dns::DnsParams, validate = "yes";
    File => file::FileParams;
    System => system::SystemParams;
    Process => process::ProcessParams, validate = "yes";
    Command => command::CommandParams, validate = "yes";
    Systemd => systemd::SystemdParams;
    Journal => journal::JournalParams;
    TlsCert => tls_cert::TlsCertParams, validate = "yes";
    TimeSync => time_sync::TimeSyncParams;
    Config => config::ConfigParams;
    Manual => manual::ManualParams;
}

impl ProbeKind {
    /// Look a probe up by its runbook name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The documentation text only: the module's `//!` lines.
    #[must_use]
    pub fn help(self) -> String {
        self.doc()
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// True when `field` may follow `checks.<id>.` for this probe (or be top-level in `expect`).
    #[must_use]
    pub fn has_field(self, field: &str, sampled: bool) -> bool {
        COMMON_FIELDS.contains(&field)
            || self.fields().contains(&field)
            || (sampled && SAMPLE_FIELDS.contains(&field))
    }
}
