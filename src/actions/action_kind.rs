//! The action registry: a closed enum of the action forms.

/// The form of an action; its name equals its key in the runbook and its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// `run:` argv.
    Run,
    /// `shell:` script + `env:`.
    Shell,
    /// `http:` request.
    Http,
    /// `systemd:` unit operation.
    Systemd,
    /// `set_env:` `EnvironmentFile` edit.
    SetEnv,
    /// `backup:` timestamped copy.
    Backup,
    /// `restore:` copy back from a backup.
    Restore,
    /// `notify:` message to a channel.
    Notify,
}

impl ActionKind {
    /// Every form.
    pub const ALL: &'static [ActionKind] = &[
        ActionKind::Run,
        ActionKind::Shell,
        ActionKind::Http,
        ActionKind::Systemd,
        ActionKind::SetEnv,
        ActionKind::Backup,
        ActionKind::Restore,
        ActionKind::Notify,
    ];

    /// The key used in runbooks.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Run => "run",
            ActionKind::Shell => "shell",
            ActionKind::Http => "http",
            ActionKind::Systemd => "systemd",
            ActionKind::SetEnv => "set_env",
            ActionKind::Backup => "backup",
            ActionKind::Restore => "restore",
            ActionKind::Notify => "notify",
        }
    }

    /// True for every form but `notify`.
    #[must_use]
    pub fn mutating(self) -> bool {
        self != ActionKind::Notify
    }

    /// The form's documentation (its module doc).
    #[must_use]
    pub fn help(self) -> String {
        let src = match self {
            ActionKind::Run => include_str!("run.rs"),
            ActionKind::Shell => include_str!("shell.rs"),
            ActionKind::Http => include_str!("http.rs"),
            ActionKind::Systemd => include_str!("systemd.rs"),
            ActionKind::SetEnv => include_str!("set_env.rs"),
            ActionKind::Backup => include_str!("backup.rs"),
            ActionKind::Restore => include_str!("restore.rs"),
            ActionKind::Notify => include_str!("notify.rs"),
        };
        src.lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
