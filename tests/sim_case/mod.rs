//! The simulator harness of the tests that run against the Aurora simulator
//! (`tests/sim.rs`, `tests/sim_e2e.rs`, `tests/triage.rs`): a [`SimCase`] is a temp dir with
//! the simulator's host directory (`aurora/`), the seed runbooks pointed at it (`runbooks/`)
//! and room for an audit DB, and a runtime that keeps the simulator serving while the test
//! drives it from outside (the `runbook` binary, HTTP, the programs in `bin/`).
//!
//! A module of its own, like `tests/cli_case`: each test crate compiles it; what one file
//! alone needs stays in that file (`tests/sim.rs` uses neither the runbooks nor the audit DB).

use std::path::{Path, PathBuf};
use std::time::Duration;

use runbook::sim::scenarios::write_runbooks;
use runbook::sim::{Fault, Sim, SimConfig};

/// A running simulator and its temp dir; dropping it stops the simulator.
pub struct SimCase {
    rt: tokio::runtime::Runtime,
    sim: Option<Sim>,
    #[allow(
        dead_code,
        reason = "tests/sim.rs drives the simulator without runbooks or audit"
    )]
    dir: tempfile::TempDir,
}

impl SimCase {
    /// A simulator with `faults` on.
    pub fn start(faults: &[Fault]) -> SimCase {
        SimCase::start_with(faults, |_| {})
    }

    /// [`SimCase::start`] with `prepare` run on the host directory before its files are
    /// written (a test mounts a small filesystem there).
    pub fn start_with(faults: &[Fault], prepare: impl FnOnce(&Path)) -> SimCase {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("aurora");
        std::fs::create_dir(&host).unwrap();
        prepare(&host);
        let config = SimConfig {
            dir: host,
            faults: faults.to_vec(),
            exe: env!("CARGO_BIN_EXE_runbook").into(),
            tick: Duration::from_millis(100),
        };
        let sim = rt.block_on(Sim::start(config)).unwrap();
        write_runbooks(&dir.path().join("runbooks"), &sim.control_url()).unwrap();
        SimCase {
            rt,
            sim: Some(sim),
            dir,
        }
    }

    /// The simulator.
    pub fn sim(&self) -> &Sim {
        self.sim.as_ref().unwrap()
    }

    /// The seed runbooks, their policy's channels pointed at the simulator.
    #[allow(
        dead_code,
        reason = "tests/sim.rs drives the simulator without runbooks"
    )]
    pub fn runbooks(&self) -> PathBuf {
        self.dir.path().join("runbooks")
    }

    /// The audit DB's path (not created until a run writes it).
    #[allow(dead_code, reason = "tests/sim.rs writes no audit")]
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("audit.db")
    }
}

impl Drop for SimCase {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(async move { sim.stop() });
        }
    }
}
