//! The simulator's files: the layout of an Aurora host in one directory (logs, archive, last
//! good backup, secrets, governance, the runner's `EnvironmentFile`, the nginx site, the log
//! rotation script, a certificate, the calibration scripts) and the programs in `bin/` that
//! speak the command lines of systemctl, journalctl, nginx, ufw, chronyc, timedatectl and
//! sysctl by asking the simulator's control endpoint.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The certificate nginx would serve (self-signed, valid to 2126).
const CERT: &str = include_str!("aurora-sim.pem");

/// The programs written into `bin/`.
pub const PROGRAMS: &[&str] = &[
    "systemctl",
    "journalctl",
    "nginx",
    "ufw",
    "chronyc",
    "timedatectl",
    "sysctl",
];

/// Where everything lives under the simulator's directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory itself (`/opt/aurora` of the seeds).
    pub dir: PathBuf,
    /// `logs/`.
    pub logs: PathBuf,
    /// `logs/archive/`.
    pub archive: PathBuf,
    /// `logs/aurora_events.jsonl`.
    pub events: PathBuf,
    /// `logs/orders_denied.jsonl`.
    pub denied: PathBuf,
    /// `logs/trades.jsonl`.
    pub trades: PathBuf,
    /// `logs.backup/`: where new backups go (`logs.<stamp>/`).
    pub backup_prefix: PathBuf,
    /// `logs.backup.latest/`: holds the last known good backup (`logs.<stamp>/`).
    pub backup_latest: PathBuf,
    /// `secrets/auth_token`.
    pub token: PathBuf,
    /// `config/governance.yaml`.
    pub governance: PathBuf,
    /// `env/aurora-runner`: the runner's `EnvironmentFile`.
    pub env_file: PathBuf,
    /// `nginx/sites-enabled/aurora`.
    pub nginx_site: PathBuf,
    /// `nginx/error.log`.
    pub nginx_error_log: PathBuf,
    /// `scripts/log_rotate.sh`.
    pub rotate_script: PathBuf,
    /// `certs/aurora.pem`.
    pub cert: PathBuf,
    /// `bin/`: the programs.
    pub bin: PathBuf,
}

impl Layout {
    /// The layout under `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        let logs = dir.join("logs");
        Layout {
            dir: dir.to_path_buf(),
            archive: logs.join("archive"),
            events: logs.join("aurora_events.jsonl"),
            denied: logs.join("orders_denied.jsonl"),
            trades: logs.join("trades.jsonl"),
            logs,
            backup_prefix: dir.join("logs.backup"),
            backup_latest: dir.join("logs.backup.latest"),
            token: dir.join("secrets/auth_token"),
            governance: dir.join("config/governance.yaml"),
            env_file: dir.join("env/aurora-runner"),
            nginx_site: dir.join("nginx/sites-enabled/aurora"),
            nginx_error_log: dir.join("nginx/error.log"),
            rotate_script: dir.join("scripts/log_rotate.sh"),
            cert: dir.join("certs/aurora.pem"),
            bin: dir.join("bin"),
        }
    }

    /// A program in `bin/`.
    #[must_use]
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// Write every file of a healthy host. `exe` is the `runbook` binary the programs call;
    /// `control` the control endpoint's base URL.
    ///
    /// # Errors
    /// Any file that cannot be written.
    pub fn create(&self, token: &str, exe: &Path, control: &str) -> io::Result<()> {
        for d in [
            &self.archive,
            &self.bin,
            &self.dir.join("secrets"),
            &self.dir.join("config"),
            &self.dir.join("env"),
            &self.dir.join("nginx/sites-enabled"),
            &self.dir.join("scripts"),
            &self.dir.join("certs"),
            &self.dir.join("tools"),
        ] {
            fs::create_dir_all(d)?;
        }
        write_mode(&self.token, format!("{token}\n").as_bytes(), 0o600)?;
        fs::set_permissions(self.dir.join("secrets"), fs::Permissions::from_mode(0o700))?;
        fs::write(
            &self.governance,
            "# Aurora governance (simulated)\nalpha_budget: 0.05\nalpha_spent: 0.029\nmax_position_usd: 250000\nmax_orders_per_minute: 30\nwhy_codes: [spread, risk_limit, low_confidence]\n",
        )?;
        fs::write(
            &self.env_file,
            "# EnvironmentFile of aurora-runner (simulated)\nP_THRESHOLD=0.7\nKELLY_MULTIPLIER=1.0\nSPREAD_THRESHOLD=1.5\nCONFIDENCE_THRESHOLD=0.9\nCALIBRATION_DAYS=30\nDECISIONS_PER_MINUTE=30\n",
        )?;
        fs::write(&self.nginx_site, NGINX_SITE)?;
        fs::write(&self.nginx_error_log, "")?;
        write_mode(&self.rotate_script, ROTATE_SCRIPT.as_bytes(), 0o755)?;
        fs::write(&self.cert, CERT)?;
        let mut events = String::new();
        for seq in 0..20 {
            events.push_str(&event_line(seq));
            events.push('\n');
        }
        fs::write(&self.events, &events)?;
        fs::write(&self.denied, "")?;
        let mut trades = String::new();
        for seq in 0..150 {
            trades.push_str(&trade_line(seq));
            trades.push('\n');
        }
        fs::write(&self.trades, &trades)?;
        // Yesterday's rotation left a file in the archive.
        fs::write(self.archive.join("aurora_events.jsonl.1.gz"), b"")?;
        // The last known good backup, as the `backup` action names them
        // (`<dir>/logs.<stamp>`): the logs as they were at start.
        let good = self.backup_latest.join(format!(
            "logs.{}",
            (chrono::Utc::now() - chrono::Duration::hours(6)).format("%Y%m%d_%H%M%S")
        ));
        fs::create_dir_all(&good)?;
        for f in [&self.events, &self.denied, &self.trades] {
            let name = f.file_name().unwrap_or_default();
            fs::copy(f, good.join(name))?;
        }
        for name in PROGRAMS {
            write_mode(
                &self.program(name),
                program_script(exe, control, name).as_bytes(),
                0o755,
            )?;
        }
        fs::write(
            self.dir.join("calibration.py"),
            calibration_module(control).as_bytes(),
        )?;
        fs::write(
            self.dir.join("tools/calibrate.py"),
            calibrate_script(control).as_bytes(),
        )?;
        Ok(())
    }

    /// Append lines to a log file (opened by path each time, so a rotation or a restore shows
    /// at once).
    ///
    /// # Errors
    /// The file cannot be opened or written.
    pub fn append(path: &Path, lines: &[String]) -> io::Result<u64> {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut buf = String::new();
        for l in lines {
            buf.push_str(l);
            buf.push('\n');
        }
        f.write_all(buf.as_bytes())?;
        Ok(f.metadata()?.len())
    }

    /// Rotate the event log under the tailer: rename it to `.1`; the producer starts a new one.
    ///
    /// # Errors
    /// The rename fails.
    pub fn rotate_events(&self) -> io::Result<()> {
        fs::rename(&self.events, self.logs.join("aurora_events.jsonl.1"))?;
        fs::write(&self.events, "")
    }

    /// Lose the event log: truncate it to a broken line.
    ///
    /// # Errors
    /// The write fails.
    pub fn lose_events(&self) -> io::Result<()> {
        fs::write(&self.events, "{\"ts\": \"2026-11-2\n")
    }

    /// Fill the data filesystem to about 95 % with a rotated log the rotation script will
    /// compress away. Refused on a filesystem over 512 MiB: the simulator does not fill a real
    /// disk (mount a small tmpfs on the directory, as the tests do).
    ///
    /// # Errors
    /// A big filesystem, or the write fails.
    pub fn fill_disk(&self) -> io::Result<u64> {
        let st = nix::sys::statvfs::statvfs(&self.dir).map_err(io::Error::from)?;
        let frag = st.fragment_size();
        let total = st.blocks() * frag;
        let avail = st.blocks_available() * frag;
        if total > 512 * 1024 * 1024 {
            return Err(io::Error::other(format!(
                "the `disk` fault fills the filesystem of {}, which is {} MiB; it only fills one of 512 MiB or less (mount a small tmpfs there)",
                self.dir.display(),
                total / (1024 * 1024)
            )));
        }
        let used = total - avail;
        let want = total / 100 * 95;
        let ballast = want.saturating_sub(used);
        let path = self.logs.join("aurora_events.jsonl.2");
        let f = fs::File::create(&path)?;
        // Written, not sparse: a sparse file would not use the space.
        let chunk = vec![b'\n'; 64 * 1024];
        let mut w = io::BufWriter::new(f);
        let mut left = ballast;
        while left > 0 {
            let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            match w.write_all(&chunk[..n]) {
                Ok(()) => left -= n as u64,
                // Full before the target: full enough.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => return Err(e),
            }
        }
        match w.flush() {
            Err(e) if e.raw_os_error() != Some(nix::libc::ENOSPC) => return Err(e),
            _ => {}
        }
        Ok(ballast - left)
    }
}

fn write_mode(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    fs::write(path, contents)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// One event of the stream and the event log.
#[must_use]
pub fn event_line(seq: u64) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    #[allow(clippy::cast_precision_loss)]
    let p = 0.55 + (seq % 40) as f64 / 100.0;
    format!(
        "{{\"ts\":\"{now}\",\"type\":\"decision\",\"seq\":{seq},\"symbol\":\"BTC-USD\",\"p\":{p:.2},\"decision_ms\":{}}}",
        8 + seq % 17
    )
}

/// One trade of `trades.jsonl`.
#[must_use]
pub fn trade_line(seq: u64) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let side = if seq % 2 == 0 { "buy" } else { "sell" };
    #[allow(clippy::cast_precision_loss)]
    let p = 0.6 + (seq % 30) as f64 / 100.0;
    format!(
        "{{\"ts\":\"{now}\",\"order_id\":\"o-{seq}\",\"side\":\"{side}\",\"qty\":0.01,\"p\":{p:.2},\"won\":{}}}",
        seq % 3 != 0
    )
}

/// One denial of `orders_denied.jsonl`.
#[must_use]
pub fn denial_line(seq: u64, reason: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    format!("{{\"ts\":\"{now}\",\"order_id\":\"o-{seq}\",\"reason\":\"{reason}\"}}")
}

/// The shell script behind a program in `bin/`: it hands its arguments to `runbook sim-tool`.
fn program_script(exe: &Path, control: &str, name: &str) -> String {
    let mut s = String::from("#!/bin/sh\n# Written by the Aurora simulator: `");
    let _ = write!(
        s,
        "{name}` of the simulated host.\nexec {} sim-tool --control {} {name} \"$@\"\n",
        sh_quote(&exe.to_string_lossy()),
        sh_quote(control)
    );
    s
}

/// Single-quote for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn calibration_module(control: &str) -> String {
    format!(
        r#"# The simulated model's validation: `python3 -c "import calibration; calibration.validate()"`.
import json
import sys
import urllib.request

CONTROL = {control:?}


def validate():
    with urllib.request.urlopen(CONTROL + "/state", timeout=5) as r:
        state = json.load(r)
    if "model-invalid" in state.get("faults", []):
        sys.exit("calibration.validate: model parameters out of range")
    print("calibration.validate: ok")
"#
    )
}

fn calibrate_script(control: &str) -> String {
    format!(
        r#"#!/usr/bin/env python3
# Recalibrate the simulated model: `python3 tools/calibrate.py --force`.
import json
import sys
import urllib.request

CONTROL = {control:?}

if "--force" not in sys.argv[1:]:
    sys.exit("usage: calibrate.py --force")
req = urllib.request.Request(CONTROL + "/recalibrate", data=b"", method="POST")
with urllib.request.urlopen(req, timeout=10) as r:
    print(json.load(r))
"#
    )
}

/// The nginx site of the seeds: the stream unbuffered, CORS for the dashboard.
const NGINX_SITE: &str = r"server {
    listen 443 ssl;
    server_name aurora.sim.invalid;
    ssl_certificate /opt/aurora/certs/aurora.pem;

    location /sse {
        proxy_pass http://127.0.0.1:8001/sse;
        proxy_buffering off;
        proxy_cache off;
        proxy_read_timeout 3600s;
        add_header Access-Control-Allow-Origin *;
    }

    location / {
        proxy_pass http://127.0.0.1:8001;
    }
}
";

/// The log rotation script: every log is moved aside and compressed into the archive.
const ROTATE_SCRIPT: &str = r#"#!/bin/sh
# Aurora log rotation (simulated host): move each log aside, compress it into archive/.
set -eu
logs="$(cd "$(dirname "$0")/../logs" && pwd)"
mkdir -p "$logs/archive"
stamp="$(date -u +%Y%m%dT%H%M%S)"
for f in "$logs"/*.jsonl; do
  [ -s "$f" ] || continue
  mv "$f" "$f.rotating"
  : > "$f"
  gzip -c "$f.rotating" > "$logs/archive/$(basename "$f").$stamp.gz"
  rm -f "$f.rotating"
done
for f in "$logs"/*.jsonl.[0-9]*; do
  [ -e "$f" ] || continue
  gzip -c "$f" > "$logs/archive/$(basename "$f").$stamp.gz"
  rm -f "$f"
done
touch "$logs/archive"
echo "rotated into $logs/archive"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_and_the_program_script_quotes_its_paths() {
        for l in [event_line(3), trade_line(4), denial_line(5, "spread")] {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            assert!(v["ts"].is_string(), "{l}");
        }
        let s = program_script(Path::new("/x/it's/runbook"), "http://127.0.0.1:1", "nginx");
        assert!(
            s.contains(r"exec '/x/it'\''s/runbook' sim-tool --control 'http://127.0.0.1:1' nginx"),
            "{s}"
        );
    }
}
