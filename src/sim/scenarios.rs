//! Demo scenarios (a fault on the simulator and the runbook that answers it) and the seed
//! runbooks built into the binary, so `runbook demo` needs no checkout and no setup.

use super::state::Fault;

/// One demo scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its name (`runbook demo NAME`).
    pub name: &'static str,
    /// The runbook that answers it.
    pub runbook: &'static str,
    /// Faults switched on before the run.
    pub faults: &'static [Fault],
    /// Answers to the runbook's `manual` checks (an operator would give them).
    pub answers: &'static [(&'static str, bool)],
    /// What happens.
    pub about: &'static str,
}

/// Every scenario; the first is the default.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "sse-not-connecting",
        runbook: "sse-not-connecting",
        faults: &[Fault::Down],
        answers: &[("dashboard_token", true)],
        about: "the live feed died; the runbook finds it, restarts it, verifies the stream",
    },
    Scenario {
        name: "service-down",
        runbook: "service-down",
        faults: &[Fault::Down],
        answers: &[],
        about: "the live feed died; restart, nginx reload, verification within the 5 min SLA",
    },
    Scenario {
        name: "dead-empty-stream",
        runbook: "dead-empty-stream",
        faults: &[Fault::Rotation],
        answers: &[],
        about: "the event log was rotated under the tailer; a restart makes it reopen the file",
    },
    Scenario {
        name: "sse-availability-slo",
        runbook: "sse-availability-slo",
        faults: &[Fault::NginxDown],
        answers: &[],
        about: "nginx stopped: availability under the SLO; nginx restarted and verified",
    },
    Scenario {
        name: "latency-spikes",
        runbook: "latency-spikes",
        faults: &[Fault::Clock],
        answers: &[],
        about: "chrony stopped, the clock drifts, decisions slow down; chrony restarted",
    },
    Scenario {
        name: "exec-latency-p99",
        runbook: "exec-latency-p99",
        faults: &[Fault::Latency],
        answers: &[],
        about: "the exchange slowed down; the runner's decision rate is lowered and it restarts",
    },
    Scenario {
        name: "circuit-breaker-open",
        runbook: "circuit-breaker-open",
        faults: &[Fault::Breaker],
        answers: &[("spreads", false)],
        about: "the exchange rate-limits us and the breaker opened; Kelly reduced, runner restarted",
    },
    Scenario {
        name: "calibration-ece-high",
        runbook: "calibration-ece-high",
        faults: &[Fault::Ece],
        answers: &[],
        about: "calibration drifted (ECE 0.09); the model is recalibrated",
    },
    Scenario {
        name: "policy-deny-rate-high",
        runbook: "policy-deny-rate-high",
        faults: &[Fault::DenyRate],
        answers: &[("market_conditions", false), ("model_drift", false)],
        about: "policy denies most orders; P_THRESHOLD shrunk for 2 h, runner restarted",
    },
    Scenario {
        name: "high-denial-rate",
        runbook: "high-denial-rate",
        faults: &[Fault::DenyRate],
        answers: &[("market_conditions", false)],
        about: "orders denied for no known reason: nothing to fix by machine, escalated to Dev",
    },
    Scenario {
        name: "data-loss-incident",
        runbook: "data-loss-incident",
        faults: &[Fault::DataLoss],
        answers: &[("data_loss_confirmed", true)],
        about: "the event log was lost; stop, back up, restore the last good backup, resume",
    },
    Scenario {
        name: "daily-checks",
        runbook: "daily-checks",
        faults: &[Fault::Down],
        answers: &[],
        about: "the daily check finds the feed down and hands it to Level 1",
    },
    Scenario {
        name: "weekly-maintenance",
        runbook: "weekly-maintenance",
        faults: &[],
        answers: &[],
        about: "the weekly routine: rotate the logs by hand, check the archive and the certificate",
    },
    Scenario {
        name: "two-faults",
        runbook: "sse-not-connecting",
        faults: &[Fault::Down, Fault::Auth],
        answers: &[("dashboard_token", true)],
        about: "the feed is down and the token was rotated: two causes, one fixed, one escalated",
    },
];

/// A scenario by name.
#[must_use]
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The channel URLs of the seed policy, and where [`write_runbooks`] points them.
const CHANNELS: &[(&str, &str)] = &[
    ("http://127.0.0.1:9097/hooks/runbook", "/notify/ops"),
    (
        "http://127.0.0.1:9096/services/aurora-incidents",
        "/notify/slack",
    ),
];

/// Write the built-in runbooks into `dir`, the policy's notification channels pointed at the
/// simulator's control endpoint `control` (which records them).
///
/// # Errors
/// A file that cannot be written.
pub fn write_runbooks(dir: &std::path::Path, control: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in RUNBOOKS {
        let mut text = (*text).to_owned();
        if *name == "policy.yaml" {
            for (from, to) in CHANNELS {
                text = text.replace(from, &format!("{control}{to}"));
            }
        }
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        /// The seed runbooks and policy as built into the binary: (file name, text).
        pub const RUNBOOKS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../runbooks/", $name))),)*
        ];
    };
}

embedded!(
    "policy.yaml",
    "calibration-ece-high.yaml",
    "circuit-breaker-open.yaml",
    "daily-checks.yaml",
    "data-loss-incident.yaml",
    "dead-empty-stream.yaml",
    "exec-latency-p99.yaml",
    "high-denial-rate.yaml",
    "latency-spikes.yaml",
    "policy-deny-rate-high.yaml",
    "service-down.yaml",
    "sse-availability-slo.yaml",
    "sse-not-connecting.yaml",
    "weekly-maintenance.yaml",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_runbook_is_embedded_and_has_a_scenario() {
        let dir = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks")).unwrap();
        let mut on_disk: Vec<String> = dir
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                std::path::Path::new(n)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<&str> = RUNBOOKS.iter().map(|(n, _)| *n).collect();
        embedded.sort_unstable();
        assert_eq!(on_disk, embedded);
        for (name, _) in RUNBOOKS.iter().filter(|(n, _)| *n != "policy.yaml") {
            let rb = name.trim_end_matches(".yaml");
            assert!(
                SCENARIOS.iter().any(|s| s.runbook == rb),
                "no demo scenario runs {rb}"
            );
        }
        assert_eq!(SCENARIOS[0].name, "sse-not-connecting");
        let policy = RUNBOOKS
            .iter()
            .find(|(n, _)| *n == "policy.yaml")
            .unwrap()
            .1;
        for (url, _) in CHANNELS {
            assert!(policy.contains(url), "policy.yaml no longer names {url}");
        }
    }
}
