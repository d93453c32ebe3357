//! `runbook sim`: the Aurora simulator in the foreground; `runbook sim-tool`: its programs.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::commands::Ctx;
use crate::exit;
use crate::sim::{Fault, Sim, SimConfig};

/// Parse fault names; the error names the bad one and the known ones.
pub(crate) fn parse_faults(names: &[String]) -> Result<Vec<Fault>, String> {
    names
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// A new directory under the system's temporary directory.
pub(crate) fn temp_dir(prefix: &str) -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos:09}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Run the simulator until SIGINT/SIGTERM or `duration`.
pub fn run(_ctx: &Ctx, dir: Option<&Path>, faults: &[String], duration: Option<&str>) -> u8 {
    let faults = match parse_faults(faults) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let duration = match duration
        .map(crate::runbook::value::parse_duration)
        .transpose()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --duration: {e}");
            return exit::INVALID;
        }
    };
    let dir = match dir.map_or_else(|| temp_dir("runbook-sim"), |d| Ok(d.to_path_buf())) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot create the simulator's directory: {e}");
            return exit::FAULT;
        }
    };
    let Ok(rt) = super::common::runtime() else {
        return exit::FAULT;
    };
    rt.block_on(async move {
        let mut config = match SimConfig::new(&dir) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAULT;
            }
        };
        config.faults = faults;
        let sim = match Sim::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: the simulator could not start: {e}");
                return exit::FAULT;
            }
        };
        let info = json!({
            "dir": sim.layout().dir,
            "control": sim.control_url(),
            "faults": sim.faults().iter().map(|f| f.name()).collect::<Vec<_>>(),
            "params": sim.params(),
        });
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{info}");
        let _ = out.flush();
        drop(out);
        let stop = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        };
        match duration {
            Some(d) => {
                tokio::select! {
                    () = stop => {}
                    () = tokio::time::sleep(d) => {}
                }
            }
            None => stop.await,
        }
        sim.stop();
        exit::OK
    })
}

/// `runbook sim-tool`: one program of the simulated host.
pub fn tool(control: &str, program: &str, args: &[String]) -> u8 {
    let code = crate::sim::tools::main(control, program, args);
    u8::try_from(code).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use crate::cli::Cli;
    use crate::sim::Fault;

    #[test]
    fn the_help_names_every_fault() {
        let cmd = Cli::command();
        let help = cmd
            .find_subcommand("sim")
            .and_then(|c| c.get_after_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        for f in Fault::ALL {
            assert!(
                help.split([' ', ',', '\n']).any(|w| w == f.name()),
                "`runbook sim --help` does not name `{f}`:\n{help}"
            );
        }
    }

    #[test]
    fn fault_lists_split_on_commas_and_name_the_bad_one() {
        let ok = super::parse_faults(&["down,ece".into(), "breaker".into()]).unwrap();
        assert_eq!(ok, [Fault::Down, Fault::Ece, Fault::Breaker]);
        let e = super::parse_faults(&["down,nope".into()]).unwrap_err();
        assert!(e.contains("unknown fault `nope`"), "{e}");
    }
}
