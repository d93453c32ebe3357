//! `systemd`: the state of a unit, like `systemctl status UNIT` (`systemctl show`). Where
//! there is no systemd the check is `error: unavailable`, never a false ok.
//!
//! Result: `active_state`, `sub_state`, `load_state`, `restarts`, `main_pid`, `since`.

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of the `systemd` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemdParams {
    /// The unit, e.g. `aurora-live-feed` or `nginx.service`.
    pub unit: String,
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
