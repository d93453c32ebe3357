//! `systemd`: `systemctl <op> <unit>` with op restart, reload, start or stop. Mutating.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::actions::run::{proc_spec, process_outcome};
use crate::host::Intent;
use crate::runbook::raw::SString;

/// `systemd:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSystemdAction {
    /// The unit; may be a template.
    #[schemars(with = "String")]
    pub unit: SString,
    /// What to do.
    pub op: SystemdOp,
}

/// Operations of the `systemd` action.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SystemdOp {
    /// `systemctl restart`
    Restart,
    /// `systemctl reload`
    Reload,
    /// `systemctl start`
    Start,
    /// `systemctl stop`
    Stop,
}

impl SystemdOp {
    /// The systemctl verb.
    #[must_use]
    pub fn verb(self) -> &'static str {
        match self {
            SystemdOp::Restart => "restart",
            SystemdOp::Reload => "reload",
            SystemdOp::Start => "start",
            SystemdOp::Stop => "stop",
        }
    }
}

impl RawSystemdAction {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        vec![&self.unit]
    }
}

/// Run the action.
pub async fn execute(
    unit: &str,
    op: SystemdOp,
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    let label = format!("`systemctl {} {unit}`", op.verb());
    // A unit that looks like an option (`--help`, `-H host`) would change what systemctl does.
    if unit.is_empty() || unit.starts_with('-') {
        return crate::actions::ActionOutcome::failed(format!(
            "{label}: refused unit name `{}`",
            unit.escape_debug()
        ));
    }
    let argv = vec![
        "systemctl".to_owned(),
        op.verb().to_owned(),
        unit.to_owned(),
    ];
    let result = cx.host.spawn(&proc_spec(argv, cx), Intent::Mutate).await;
    process_outcome(&label, result)
}
