//! `systemd`: the state of a unit, like `systemctl status UNIT` (`systemctl show`). Where
//! there is no systemd the check is `error: unavailable`, never a false ok.
//!
//! `value` is `active_state`; a unit that is not loaded is an observation (`load_state:
//! not-found`).
//!
//! `systemctl` (default `systemctl`) is the program to run: a path to another program speaking
//! systemctl's verbs: a container's replacement, the simulator's. It is argv[0], never shell;
//! an empty value or one starting with `-` is refused. Another program than the plain
//! `systemctl` skips the `/run/systemd/system` test (whoever named it knows it answers); its
//! failures are reported like `systemctl`'s.
//!
//! Result: `active_state`, `sub_state`, `load_state`, `restarts`, `main_pid`, `since`.

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};

use crate::host::{DEFAULT_OUTPUT_CAP, HostError, Intent, ProcSpec};
use crate::probes::{ProbeContext, ProbeOutcome};
use crate::runbook::value::format_duration;

/// Parameters of the `systemd` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemdParams {
    /// The unit, e.g. `aurora-live-feed` or `nginx.service`.
    pub unit: String,
    /// The program to run (default `systemctl`): a name or a path to a program speaking
    /// systemctl's verbs.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub systemctl: Option<Program>,
}

/// A program run in place of a standard tool (`systemctl`, `journalctl`, `chronyc`, ...):
/// argv[0] as given, never shell. Empty, or starting with `-` (an option, not a program), is
/// refused when the parameters are read, so `validate` reports a literal and a run reports a
/// rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program(String);

impl Program {
    /// Check a program value.
    ///
    /// # Errors
    /// A message when `text` is empty or starts with `-`.
    pub fn new(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            Err("a program may not be empty".into())
        } else if text.starts_with('-') {
            Err(format!(
                "refused program `{}`: it would be read as an option",
                text.escape_debug()
            ))
        } else {
            Ok(Program(text.to_owned()))
        }
    }

    /// The program as argv[0].
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The program to run for an optional parameter, and whether it was named on purpose:
    /// `None` and the standard name itself are the host's own tool, which keeps the
    /// `/run/systemd/system` test.
    #[must_use]
    pub fn or_default<'p>(param: Option<&'p Program>, standard: &'p str) -> (&'p str, bool) {
        match param {
            Some(p) if p.0 != standard => (&p.0, true),
            _ => (standard, false),
        }
    }
}

impl<'de> Deserialize<'de> for Program {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Program;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a program: a name or a path, not starting with `-`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Program, E> {
                Program::new(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Result fields of the `systemd` probe.
pub const FIELDS: &[&str] = &[
    "active_state",
    "sub_state",
    "load_state",
    "restarts",
    "main_pid",
    "since",
];

/// Run the probe: `systemctl show UNIT --property=...`.
pub async fn probe(params: SystemdParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    let (systemctl, named) = Program::or_default(params.systemctl.as_ref(), "systemctl");
    if !named && let Some(why) = unavailable() {
        return ProbeOutcome::Error(why);
    }
    let spec = ProcSpec {
        argv: vec![
            systemctl.to_owned(),
            "show".into(),
            params.unit.clone(),
            "--property=ActiveState,SubState,LoadState,NRestarts,MainPID,ActiveEnterTimestamp"
                .into(),
        ],
        env: IndexMap::new(),
        cwd: None,
        timeout: cx.timeout,
        output_cap: DEFAULT_OUTPUT_CAP,
    };
    let out = match cx.host.spawn(&spec, Intent::Observe).await {
        Ok(out) => out,
        Err(HostError::Spawn { source, .. }) => {
            return ProbeOutcome::Error(format!(
                "unavailable: no systemd (`{systemctl}`: {source})"
            ));
        }
        Err(e) => return ProbeOutcome::Error(format!("cannot run `{systemctl}`: {e}")),
    };
    if out.timed_out {
        return ProbeOutcome::unreachable(format!(
            "`{systemctl} show` timed out after {}",
            format_duration(cx.timeout)
        ));
    }
    if out.exit_code != Some(0) {
        return ProbeOutcome::Error(format!(
            "`{systemctl} show {}` failed: {}",
            params.unit,
            out.stderr.trim()
        ));
    }
    let props: HashMap<&str, &str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let text = |k: &str| props.get(k).copied().unwrap_or("");
    let number = |k: &str| text(k).parse::<u64>().ok();
    let active = text("ActiveState").to_owned();
    let since = Some(text("ActiveEnterTimestamp")).filter(|s| !s.is_empty());
    let mut m = Map::new();
    m.insert("value".into(), json!(active));
    m.insert("active_state".into(), json!(active));
    m.insert("sub_state".into(), json!(text("SubState")));
    m.insert("load_state".into(), json!(text("LoadState")));
    m.insert("restarts".into(), json!(number("NRestarts")));
    m.insert("main_pid".into(), json!(number("MainPID")));
    m.insert("since".into(), json!(since));
    if text("LoadState") == "not-found" {
        m.insert(
            "reason".into(),
            json!(format!("unit `{}` not found", params.unit)),
        );
    }
    ProbeOutcome::Observed(m)
}

/// `Some(reason)` where this machine does not run systemd (shared with `journal`).
pub(crate) fn unavailable() -> Option<String> {
    // The same test `sd_booted()` makes.
    if Path::new("/run/systemd/system").is_dir() {
        None
    } else {
        Some("unavailable: no systemd (`/run/systemd/system` is absent)".into())
    }
}
