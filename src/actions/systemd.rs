//! `systemd`: `systemctl <op> <unit>` with op restart, reload, start or stop. Mutating.
//!
//! `systemctl` (default `systemctl`; may be a template, like `unit`) is the program to run: a
//! path to another program speaking systemctl's verbs: a container's replacement, the
//! simulator's. It is argv[0], never shell; an empty value or one starting with `-` is refused.
//!
//! ```yaml
//! - id: restart_service
//!   systemd: { unit: "{{ params.unit }}", op: restart, systemctl: "{{ params.systemctl }}" }
//!   limit: { max: 3, per: 1h }
//! ```

use schemars::JsonSchema;
use serde::Deserialize;

use crate::actions::run::{proc_spec, process_outcome};
use crate::host::Intent;
use crate::probes::systemd::Program;
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
    /// The program to run (default `systemctl`); may be a template.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub systemctl: Option<SString>,
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
        let mut t = vec![&self.unit];
        t.extend(&self.systemctl);
        t
    }
}

/// Run the action with the host's `systemctl`.
pub async fn execute(
    unit: &str,
    op: SystemdOp,
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    execute_with(None, unit, op, cx).await
}

/// Run the action: `systemctl` (or the program named) with the op's verb and the unit.
pub async fn execute_with(
    systemctl: Option<&str>,
    unit: &str,
    op: SystemdOp,
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    let program = systemctl.unwrap_or("systemctl");
    let label = format!("`{program} {} {unit}`", op.verb());
    // A program or unit that looks like an option (`--help`, `-H host`) would change what
    // runs or what systemctl does.
    if let Err(e) = Program::new(program) {
        return crate::actions::ActionOutcome::failed(format!("{label}: {e}"));
    }
    if unit.is_empty() || unit.starts_with('-') {
        return crate::actions::ActionOutcome::failed(format!(
            "{label}: refused unit name `{}`",
            unit.escape_debug()
        ));
    }
    let argv = vec![program.to_owned(), op.verb().to_owned(), unit.to_owned()];
    let result = cx.host.spawn(&proc_spec(argv, cx), Intent::Mutate).await;
    process_outcome(&label, result)
}
