//! The simulator's state: which faults are on, the units, the counters, the journal. Every
//! answer the simulator gives is read off this state, so the same fault shows the same way on
//! `/health`, `/metrics`, the Prometheus API, the log files and the programs in `bin/`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A failure the simulator can show; several may be on at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The live feed is not running: its unit `failed`, its port refuses connections.
    Down,
    /// The stream refuses the token in the secrets file (it was rotated on the server).
    Auth,
    /// The stream answers without `Access-Control-Allow-Origin`.
    Cors,
    /// The producer stalled: the stream connects and sends nothing, the event log is not
    /// written, `sse_events_total` stands still.
    DeadStream,
    /// The producer writes lines that are not JSON; the tailer counts them.
    Malformed,
    /// The producer writes lines over 1 MiB; the tailer drops and counts them.
    Oversized,
    /// The event log was rotated under the tailer, which lost its position: no events flow.
    Rotation,
    /// Latency spike: decision and execution latency far above their SLAs.
    Latency,
    /// Most orders are denied by policy.
    DenyRate,
    /// The circuit breaker is open: the exchange rate-limits us (HTTP 429).
    Breaker,
    /// Calibration drifted: `calibration_ece` above 0.05.
    Ece,
    /// The data directory's filesystem is nearly full (a rotated log fills it).
    Disk,
    /// chrony stopped; the clock is not synchronised.
    Clock,
    /// The event log was lost: truncated to a broken line.
    DataLoss,
    /// nginx is stopped: the public side refuses while the service itself runs.
    NginxDown,
    /// The model fails `calibration.validate()`.
    ModelInvalid,
    /// Decisions queue up in the runner: a long tail over a normal median.
    Queueing,
}

impl Fault {
    /// Every fault, in the order they are listed.
    pub const ALL: &'static [Fault] = &[
        Fault::Down,
        Fault::Auth,
        Fault::Cors,
        Fault::DeadStream,
        Fault::Malformed,
        Fault::Oversized,
        Fault::Rotation,
        Fault::Latency,
        Fault::DenyRate,
        Fault::Breaker,
        Fault::Ece,
        Fault::Disk,
        Fault::Clock,
        Fault::DataLoss,
        Fault::NginxDown,
        Fault::ModelInvalid,
        Fault::Queueing,
    ];

    /// The name used on the command line and the control API.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Fault::Down => "down",
            Fault::Auth => "auth",
            Fault::Cors => "cors",
            Fault::DeadStream => "dead-stream",
            Fault::Malformed => "malformed",
            Fault::Oversized => "oversized",
            Fault::Rotation => "rotation",
            Fault::Latency => "latency",
            Fault::DenyRate => "deny-rate",
            Fault::Breaker => "breaker",
            Fault::Ece => "ece",
            Fault::Disk => "disk",
            Fault::Clock => "clock",
            Fault::DataLoss => "data-loss",
            Fault::NginxDown => "nginx-down",
            Fault::ModelInvalid => "model-invalid",
            Fault::Queueing => "queueing",
        }
    }

    /// One line on what the fault does and what clears it.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Fault::Down => {
                "live feed down: unit failed, port refuses; cleared by restarting aurora-live-feed"
            }
            Fault::Auth => "the stream answers 401 to the token on disk; cleared by a human",
            Fault::Cors => {
                "the stream has no Access-Control-Allow-Origin header; cleared by reloading nginx"
            }
            Fault::DeadStream => {
                "producer stalled: stream silent, event log idle; cleared by restarting aurora-runner"
            }
            Fault::Malformed => "the producer writes lines that are not JSON",
            Fault::Oversized => "the producer writes lines over 1 MiB",
            Fault::Rotation => {
                "event log rotated under the tailer: no events; cleared by restarting aurora-live-feed"
            }
            Fault::Latency => {
                "latency spike (decision p90, exec p99); cleared by DECISIONS_PER_MINUTE <= 10 and a runner restart"
            }
            Fault::DenyRate => {
                "most orders denied; cleared by P_THRESHOLD <= 0.5 and a runner restart"
            }
            Fault::Breaker => {
                "circuit breaker open, exchange answers 429; cleared by KELLY_MULTIPLIER <= 0.5 and a runner restart"
            }
            Fault::Ece => "calibration ECE 0.09; cleared by a recalibration",
            Fault::Disk => {
                "data filesystem nearly full (needs a small filesystem); cleared by the log rotation script"
            }
            Fault::Clock => "chrony stopped, clock unsynchronised; cleared by restarting chrony",
            Fault::DataLoss => {
                "the event log truncated to a broken line; cleared by restoring the last good backup"
            }
            Fault::NginxDown => "nginx stopped; cleared by restarting nginx",
            Fault::ModelInvalid => "the model fails calibration.validate(); cleared by a human",
            Fault::Queueing => {
                "decisions queue in the runner (p99 far above the median); cleared by DECISIONS_PER_MINUTE <= 10 and a runner restart"
            }
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Fault::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s || f.name().replace('-', "_") == s)
            .ok_or_else(|| {
                format!(
                    "unknown fault `{s}` (known: {})",
                    Fault::ALL
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// The units the simulator manages, as `systemctl` names them.
pub const UNITS: &[&str] = &["aurora-live-feed", "aurora-runner", "nginx", "chrony"];

/// A unit's state.
#[derive(Debug, Clone)]
pub struct Unit {
    /// `active`, `inactive` or `failed`.
    pub active_state: &'static str,
    /// How many times it was restarted.
    pub restarts: u64,
    /// When it last entered its state.
    pub since: chrono::DateTime<chrono::Utc>,
}

impl Unit {
    fn new(active: bool) -> Self {
        Unit {
            active_state: if active { "active" } else { "failed" },
            restarts: 0,
            since: chrono::Utc::now(),
        }
    }

    /// Running.
    #[must_use]
    pub fn active(&self) -> bool {
        self.active_state == "active"
    }
}

/// The runner's settings, read from its `EnvironmentFile` at (re)start.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerEnv {
    /// `DECISIONS_PER_MINUTE`.
    pub decisions_per_minute: f64,
    /// `P_THRESHOLD`.
    pub p_threshold: f64,
    /// `KELLY_MULTIPLIER`.
    pub kelly: f64,
}

impl RunnerEnv {
    /// Read from `EnvironmentFile` text; unknown or unreadable keys keep the defaults.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut env = RunnerEnv {
            decisions_per_minute: 30.0,
            p_threshold: 0.7,
            kelly: 1.0,
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let Ok(v) = v.trim().trim_matches('"').parse::<f64>() else {
                continue;
            };
            match k.trim() {
                "DECISIONS_PER_MINUTE" => env.decisions_per_minute = v,
                "P_THRESHOLD" => env.p_threshold = v,
                "KELLY_MULTIPLIER" => env.kelly = v,
                _ => {}
            }
        }
        env
    }
}

/// How many journal lines a unit keeps.
const JOURNAL_KEEP: usize = 2000;

/// Everything the simulator knows.
#[derive(Debug)]
pub struct State {
    /// Faults on now.
    pub faults: BTreeSet<Fault>,
    /// Units by name.
    pub units: BTreeMap<&'static str, Unit>,
    /// The token the stream accepts.
    pub token: String,
    /// Events sent (the counter behind `sse_events_total`).
    pub events_total: u64,
    /// Denials by WHY code.
    pub denied: BTreeMap<&'static str, u64>,
    /// Orders decided.
    pub orders_total: u64,
    /// Malformed lines the tailer skipped.
    pub malformed_lines: u64,
    /// Oversized lines the tailer dropped.
    pub oversized_lines: u64,
    /// The tailer's position per file; `None` after a rotation it missed.
    pub file_positions: Option<BTreeMap<String, u64>>,
    /// Connected stream clients.
    pub sse_clients: u64,
    /// Calibration ECE now.
    pub ece: f64,
    /// The runner's settings as of its last start.
    pub runner_env: RunnerEnv,
    /// `sysctl -w` writes.
    pub sysctl: BTreeMap<String, String>,
    /// Journal lines per unit: (when, line).
    pub journal: BTreeMap<&'static str, VecDeque<(Instant, String)>>,
    /// Every control request and program call, in order (for the demo and tests).
    pub calls: Vec<String>,
    /// When the simulator started.
    pub started: Instant,
    /// When the model was last recalibrated (`None`: a day before the start).
    pub recalibrated: Option<Instant>,
}

/// Healthy calibration error.
pub const ECE_OK: f64 = 0.021;
/// Drifted calibration error.
pub const ECE_HIGH: f64 = 0.09;

impl State {
    /// A healthy system with these faults on.
    #[must_use]
    pub fn new(token: String) -> Self {
        let units = UNITS.iter().map(|u| (*u, Unit::new(true))).collect();
        let journal = UNITS.iter().map(|u| (*u, VecDeque::new())).collect();
        let mut s = State {
            faults: BTreeSet::new(),
            units,
            token,
            events_total: 0,
            denied: [("spread", 0), ("risk_limit", 0), ("low_confidence", 0)]
                .into_iter()
                .collect(),
            orders_total: 0,
            malformed_lines: 0,
            oversized_lines: 0,
            file_positions: Some(BTreeMap::new()),
            sse_clients: 0,
            ece: ECE_OK,
            runner_env: RunnerEnv::parse(""),
            sysctl: BTreeMap::new(),
            journal,
            calls: Vec::new(),
            started: Instant::now(),
            recalibrated: None,
        };
        s.log(
            "aurora-live-feed",
            "aurora live feed started on the simulator",
        );
        s.log("aurora-runner", "aurora runner started on the simulator");
        s
    }

    /// Append a journal line to `unit`.
    pub fn log(&mut self, unit: &str, line: impl Into<String>) {
        if let Some(j) = self
            .journal
            .iter_mut()
            .find(|(u, _)| **u == unit)
            .map(|(_, j)| j)
        {
            if j.len() == JOURNAL_KEEP {
                j.pop_front();
            }
            j.push_back((Instant::now(), line.into()));
        }
    }

    /// The journal lines of `unit` newer than `since`.
    #[must_use]
    pub fn journal_since(&self, unit: &str, since: Duration) -> Vec<String> {
        let cutoff = Instant::now().checked_sub(since);
        self.journal
            .get(unit)
            .map(|j| {
                j.iter()
                    .filter(|(t, _)| cutoff.is_none_or(|c| *t >= c))
                    .map(|(_, l)| l.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Is `fault` on?
    #[must_use]
    pub fn has(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }

    /// The live feed is serving.
    #[must_use]
    pub fn feed_up(&self) -> bool {
        self.units["aurora-live-feed"].active()
    }

    /// Events flow to clients.
    #[must_use]
    pub fn streaming(&self) -> bool {
        self.feed_up() && !self.has(Fault::DeadStream) && !self.has(Fault::Rotation)
    }

    /// Decision latency percentiles (ms).
    #[must_use]
    pub fn decision_ms(&self) -> (f64, f64, f64) {
        if self.has(Fault::Latency) {
            (48.0, 131.0, 212.0)
        } else if self.has(Fault::Clock) {
            (22.0, 78.0, 140.0)
        } else {
            (11.0, 27.0, 41.0)
        }
    }

    /// Execution latency p99 (ms) over the last ten minutes.
    #[must_use]
    pub fn exec_p99_ms(&self) -> f64 {
        if self.has(Fault::Queueing) {
            833.0
        } else if self.has(Fault::Latency) {
            460.0
        } else {
            182.0
        }
    }

    /// Share of orders denied.
    #[must_use]
    pub fn deny_rate(&self) -> f64 {
        if self.has(Fault::DenyRate) {
            0.72
        } else {
            0.12
        }
    }

    /// `circuit_breaker_state`: 0 closed, 1 half-open, 2 open.
    #[must_use]
    pub fn breaker(&self) -> u8 {
        if self.has(Fault::Breaker) { 2 } else { 0 }
    }

    /// `sse:availability_ratio:5m`.
    #[must_use]
    pub fn availability(&self) -> f64 {
        if !self.feed_up() || self.has(Fault::NginxDown) {
            0.962
        } else if !self.streaming() || self.has(Fault::Auth) {
            0.981
        } else {
            0.9996
        }
    }

    /// Seconds since the last recalibration.
    #[must_use]
    pub fn calibration_age_s(&self) -> f64 {
        self.recalibrated.map_or_else(
            || 86_400.0 + self.started.elapsed().as_secs_f64(),
            |t| t.elapsed().as_secs_f64(),
        )
    }

    /// The clock is synchronised.
    #[must_use]
    pub fn synced(&self) -> bool {
        !self.has(Fault::Clock) && self.units["chrony"].active()
    }

    /// `/health` as JSON.
    #[must_use]
    pub fn health(&self) -> Value {
        let (p50, p90, p99) = self.decision_ms();
        let degraded = self.faults.iter().any(|f| {
            matches!(
                f,
                Fault::DeadStream
                    | Fault::Rotation
                    | Fault::Malformed
                    | Fault::Oversized
                    | Fault::Breaker
                    | Fault::Latency
            )
        });
        let clients = if self.streaming() && !self.has(Fault::Auth) && !self.has(Fault::Cors) {
            // The operators' dashboards, plus whoever is connected now.
            2 + self.sse_clients
        } else {
            self.sse_clients
        };
        json!({
            "status": if degraded { "degraded" } else { "ok" },
            "sse_clients": clients,
            "tailer_stats": {
                "malformed_lines": self.malformed_lines,
                "oversized_lines": self.oversized_lines,
                "file_positions": self.file_positions,
            },
            "current_metrics": {
                "decision_ms": { "p50": p50, "p90": p90, "p99": p99 },
                "circuit_breaker": if self.breaker() == 2 { "OPEN" } else { "closed" },
                "governance": {
                    "alpha_exhausted": false,
                    "alpha_remaining": 0.42,
                },
                "orders": {
                    "total": self.orders_total,
                    "denied": self.denied.values().sum::<u64>(),
                    "deny_rate": self.deny_rate(),
                },
            },
        })
    }

    /// What `systemctl show UNIT` prints (`LoadState=not-found` for a unit the simulator does
    /// not have, as systemd says it).
    #[must_use]
    pub fn unit_show(&self, unit: &str) -> String {
        let name = unit.strip_suffix(".service").unwrap_or(unit);
        let Some(u) = self.units.get(name) else {
            return format!(
                "Id={name}.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nNRestarts=0\nMainPID=0\nActiveEnterTimestamp=\n"
            );
        };
        let sub = match u.active_state {
            "active" => "running",
            "failed" => "failed",
            _ => "dead",
        };
        format!(
            "Id={name}.service\nLoadState=loaded\nActiveState={}\nSubState={sub}\nNRestarts={}\nMainPID={}\nActiveEnterTimestamp={}\n",
            u.active_state,
            u.restarts,
            if u.active() { 4242 } else { 0 },
            u.since.format("%a %Y-%m-%d %H:%M:%S UTC"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip_and_unknown_names_list_the_known() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>().unwrap(), *f);
        }
        assert_eq!("dead_stream".parse::<Fault>().unwrap(), Fault::DeadStream);
        let e = "nope".parse::<Fault>().unwrap_err();
        assert!(
            e.contains("unknown fault `nope`") && e.contains("deny-rate"),
            "{e}"
        );
    }

    #[test]
    fn runner_env_reads_known_keys_and_keeps_defaults_for_the_rest() {
        let env = RunnerEnv::parse(
            "# c\nP_THRESHOLD=0.5\nKELLY_MULTIPLIER=\"0.3\"\nX=1\nDECISIONS_PER_MINUTE=bad\n",
        );
        assert!((env.p_threshold - 0.5).abs() < 1e-9);
        assert!((env.kelly - 0.3).abs() < 1e-9);
        assert!((env.decisions_per_minute - 30.0).abs() < 1e-9);
    }

    #[test]
    fn faults_show_on_health_and_units() {
        let mut s = State::new("t".into());
        assert_eq!(s.health()["status"], "ok");
        assert!(s.health()["sse_clients"].as_u64().unwrap() > 0);
        s.faults.insert(Fault::Breaker);
        assert_eq!(s.health()["current_metrics"]["circuit_breaker"], "OPEN");
        assert_eq!(s.breaker(), 2);
        s.units.get_mut("aurora-live-feed").unwrap().active_state = "failed";
        assert!(
            s.unit_show("aurora-live-feed.service")
                .contains("ActiveState=failed")
        );
        assert!(s.unit_show("nope").contains("LoadState=not-found"));
    }

    #[test]
    fn the_journal_is_bounded_and_filtered_by_age() {
        let mut s = State::new("t".into());
        for i in 0..(JOURNAL_KEEP + 10) {
            s.log("nginx", format!("line {i}"));
        }
        let lines = s.journal_since("nginx", Duration::from_secs(60));
        assert_eq!(lines.len(), JOURNAL_KEEP);
        assert_eq!(lines.last().unwrap(), &format!("line {}", JOURNAL_KEEP + 9));
        assert!(
            s.journal_since("unknown", Duration::from_secs(60))
                .is_empty()
        );
    }
}
