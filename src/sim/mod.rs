//! The Aurora simulator: the system the seed runbooks describe, on loopback, with faults that
//! can be switched on and off while it runs.
//!
//! Listeners (each on its own loopback port):
//! - **public** (nginx in front of the feed): the feed's routes; refuses while nginx is stopped,
//!   answers 502 while the feed is down.
//! - **feed** (aurora-live-feed, `:8001` of the seeds): `/healthz`, `/health`, `/sse` (bearer
//!   token, CORS), `/metrics`, `POST /recalibrate`; refuses while the unit is down.
//! - **runner** (aurora-runner, `:9000`): `/metrics` (`calibration_ece`,
//!   `circuit_breaker_state`, `exec_latency_ms`, `policy_denied_total`), `POST /recalibrate`.
//! - **prometheus** (`:9090`): `/api/v1/query` for the recording rules the runbooks read.
//! - **exchange**: `/status` (429 while rate limiting).
//! - **control**: `/state`, `/faults`, `/units/{unit}[/{op}]`, `/journal/{unit}`, and what the
//!   programs in `bin/` ask (see [`tools`]).
//!
//! Files (see [`files::Layout`]): the logs the producer writes every tick, the archive, the
//! last good backup, the token, governance, the runner's `EnvironmentFile`, the nginx site, the
//! rotation script, a certificate, the calibration scripts, and `bin/` with the programs.
//! Remediations act on the simulator through these: `systemctl restart` via `bin/systemctl`,
//! `set_env` on the `EnvironmentFile` (read when the runner restarts), `POST /recalibrate`, the
//! rotation script on the log directory.

pub mod files;
mod http;
pub mod scenarios;
pub mod state;
pub mod tools;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use files::Layout;
pub use state::{Fault, State};

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Its directory (created if missing): the `/opt/aurora` of the simulated host.
    pub dir: PathBuf,
    /// Faults on from the start.
    pub faults: Vec<Fault>,
    /// The `runbook` binary the programs in `bin/` run (`sim-tool`).
    pub exe: PathBuf,
    /// How often the producer writes and the stream sends (default 200 ms).
    pub tick: Duration,
}

impl SimConfig {
    /// A healthy simulator in `dir`, with this process's binary for the programs.
    ///
    /// # Errors
    /// The current executable cannot be found.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        Ok(SimConfig {
            dir: dir.to_path_buf(),
            faults: Vec::new(),
            exe: std::env::current_exe()?,
            tick: Duration::from_millis(200),
        })
    }
}

/// Why the simulator could not start or change.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file or a listener.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A fault that cannot be switched on here.
    #[error("{0}")]
    Fault(String),
}

/// A listener that can stop accepting (its process is down) and start again on the same port.
struct Port {
    addr: SocketAddr,
    router: axum::Router,
    task: Option<JoinHandle<()>>,
}

impl Port {
    fn up(&mut self) -> std::io::Result<()> {
        if self.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(self.addr)?;
        let listener = socket.listen(256)?;
        self.addr = listener.local_addr()?;
        let router = self.router.clone();
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
        Ok(())
    }

    fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The simulator's listeners by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Public,
    Feed,
    Runner,
    Prometheus,
    Exchange,
    Control,
}

/// Shared by every handler.
pub(crate) struct Inner {
    state: Mutex<State>,
    layout: Layout,
    exe: PathBuf,
    control_url: Mutex<String>,
    events: broadcast::Sender<String>,
    ports: Mutex<BTreeMap<Role, Port>>,
    children: Mutex<BTreeMap<&'static str, tokio::process::Child>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ports(&self) -> MutexGuard<'_, BTreeMap<Role, Port>> {
        self.ports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_port(&self, role: Role, up: bool) -> std::io::Result<()> {
        let mut ports = self.ports();
        let Some(p) = ports.get_mut(&role) else {
            return Ok(());
        };
        if up {
            p.up()
        } else {
            p.down();
            Ok(())
        }
    }

    /// The command line of the process standing for `unit` (for the `process` probe).
    fn process_pattern(&self, name: &str) -> String {
        let control = self
            .control_url
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        format!("--control {control} process {name}")
    }

    /// Start the process standing for `unit`: `runbook sim-tool process NAME`, which lives
    /// until its stdin closes (when the simulator stops or kills it).
    fn spawn_process(&self, unit: &'static str) {
        let name = match unit {
            "aurora-live-feed" => "live_feed.py",
            "aurora-runner" => "run_live_aurora",
            _ => return,
        };
        let control = self
            .control_url
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let child = tokio::process::Command::new(&self.exe)
            .args(["sim-tool", "--control", &control, "process", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut children = self
            .children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Ok(child) = child {
            children.insert(unit, child);
        } else {
            children.remove(unit);
        }
    }

    fn kill_process(&self, unit: &str) {
        let mut children = self
            .children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut c) = children.remove(unit) {
            let _ = c.start_kill();
        }
    }

    /// `systemctl OP UNIT` on the simulated host: `Ok(message)` or `Err((exit code, message))`.
    pub(crate) fn unit_op(&self, unit: &str, op: &str) -> Result<String, (i32, String)> {
        let name = unit.strip_suffix(".service").unwrap_or(unit);
        let Some(&unit) = state::UNITS.iter().find(|u| **u == name) else {
            return Err((
                5,
                format!("Failed to {op} {name}.service: Unit {name}.service not found."),
            ));
        };
        let mut st = self.lock();
        st.calls.push(format!("systemctl {op} {unit}"));
        let active = st.units[unit].active();
        match op {
            "reload" if !active => {
                return Err((1, format!("{unit}.service is not active, cannot reload.")));
            }
            "reload" => {
                st.log(unit, format!("Reloaded {unit}.service"));
                if unit == "nginx" {
                    st.faults.remove(&Fault::Cors);
                }
                return Ok(format!("reloaded {unit}"));
            }
            "stop" => {
                let u = st.units.get_mut(unit).expect("known unit");
                u.active_state = "inactive";
                u.since = chrono::Utc::now();
                st.log(unit, format!("Stopped {unit}.service"));
                drop(st);
                self.apply_unit(unit, false);
                return Ok(format!("stopped {unit}"));
            }
            "start" | "restart" => {}
            other => return Err((1, format!("Unknown command verb '{other}'."))),
        }
        let env = std::fs::read_to_string(&self.layout.env_file).unwrap_or_default();
        let u = st.units.get_mut(unit).expect("known unit");
        if op == "restart" {
            u.restarts += 1;
        }
        u.active_state = "active";
        u.since = chrono::Utc::now();
        match unit {
            "aurora-live-feed" => {
                st.faults.remove(&Fault::Down);
                st.faults.remove(&Fault::DataLoss);
                if st.faults.remove(&Fault::Rotation) {
                    st.log(unit, "tailer: reopened aurora_events.jsonl at its start");
                }
                st.file_positions = Some(BTreeMap::new());
            }
            "aurora-runner" => {
                let env = state::RunnerEnv::parse(&env);
                st.faults.remove(&Fault::DeadStream);
                if env.decisions_per_minute <= 10.0 {
                    st.faults.remove(&Fault::Latency);
                    st.faults.remove(&Fault::Queueing);
                }
                if env.p_threshold <= 0.5 {
                    st.faults.remove(&Fault::DenyRate);
                }
                if env.kelly <= 0.5 {
                    st.faults.remove(&Fault::Breaker);
                }
                st.runner_env = env;
            }
            "nginx" => {
                st.faults.remove(&Fault::NginxDown);
            }
            "chrony" => {
                st.faults.remove(&Fault::Clock);
            }
            _ => {}
        }
        st.log(unit, format!("Started {unit}.service"));
        drop(st);
        self.apply_unit(unit, true);
        Ok(format!("{op}ed {unit}"))
    }

    /// Bring a unit's listener and process in line with its state.
    fn apply_unit(&self, unit: &'static str, up: bool) {
        let role = match unit {
            "aurora-live-feed" => Role::Feed,
            "aurora-runner" => Role::Runner,
            "nginx" => Role::Public,
            _ => return,
        };
        if let Err(e) = self.set_port(role, up) {
            self.lock().log(unit, format!("cannot listen: {e}"));
        }
        if up {
            self.kill_process(unit);
            self.spawn_process(unit);
        } else {
            self.kill_process(unit);
        }
    }

    /// Switch a fault on, with its effect on files and units.
    pub(crate) fn fault_on(&self, fault: Fault) -> Result<(), SimError> {
        match fault {
            Fault::Disk => {
                self.layout
                    .fill_disk()
                    .map_err(|e| SimError::Fault(e.to_string()))?;
            }
            Fault::Rotation => self.layout.rotate_events()?,
            Fault::DataLoss => self.layout.lose_events()?,
            _ => {}
        }
        let mut st = self.lock();
        st.faults.insert(fault);
        st.calls.push(format!("fault on: {fault}"));
        let down = |st: &mut State, unit: &'static str, line: &str| {
            let u = st.units.get_mut(unit).expect("known unit");
            u.active_state = "failed";
            u.since = chrono::Utc::now();
            st.log(unit, line.to_owned());
        };
        match fault {
            Fault::Down => down(
                &mut st,
                "aurora-live-feed",
                "aurora-live-feed.service: Main process exited, code=killed, status=9/KILL; Failed with result 'signal'",
            ),
            Fault::NginxDown => down(
                &mut st,
                "nginx",
                "nginx.service: Failed with result 'exit-code' (error: bind() to 0.0.0.0:443 failed)",
            ),
            Fault::Clock => {
                down(
                    &mut st,
                    "chrony",
                    "chronyd exiting: cannot reach any NTP source",
                );
            }
            Fault::Rotation => {
                st.file_positions = None;
                st.log(
                    "aurora-live-feed",
                    "tailer: file rotation detected on aurora_events.jsonl (inode changed); position lost",
                );
            }
            Fault::DataLoss => st.log(
                "aurora-live-feed",
                "error: aurora_events.jsonl truncated; events missing",
            ),
            Fault::Ece => st.ece = state::ECE_HIGH,
            Fault::Auth => st.log(
                "aurora-live-feed",
                "SSE auth: token rotated; clients with the old token get 401 unauthorized",
            ),
            _ => {}
        }
        drop(st);
        match fault {
            Fault::Down => self.apply_unit("aurora-live-feed", false),
            Fault::NginxDown => self.apply_unit("nginx", false),
            _ => {}
        }
        Ok(())
    }

    /// Switch a fault off by hand (the control endpoint): the units come back; what a fault
    /// wrote into files stays.
    pub(crate) fn fault_off(&self, fault: Fault) {
        let unit = match fault {
            Fault::Down => Some("aurora-live-feed"),
            Fault::NginxDown => Some("nginx"),
            Fault::Clock => Some("chrony"),
            _ => None,
        };
        {
            let mut st = self.lock();
            st.faults.remove(&fault);
            st.calls.push(format!("fault off: {fault}"));
            if fault == Fault::Ece {
                st.ece = state::ECE_OK;
            }
            if fault == Fault::Rotation {
                st.file_positions = Some(BTreeMap::new());
            }
        }
        if let Some(unit) = unit {
            let _ = self.unit_op(unit, "start");
        }
    }

    /// `POST /recalibrate`.
    pub(crate) fn recalibrate(&self) -> f64 {
        let mut st = self.lock();
        st.faults.remove(&Fault::Ece);
        st.ece = state::ECE_OK;
        st.recalibrated = Some(std::time::Instant::now());
        st.calls.push("recalibrate".into());
        st.log("aurora-runner", "recalibration finished: ECE 0.021");
        st.ece
    }

    /// One tick of the producer and the tailer.
    fn tick(&self, seq: u64) {
        let mut st = self.lock();
        let runner = st.units["aurora-runner"].active();
        if !runner || st.has(Fault::DeadStream) {
            return;
        }
        if st.has(Fault::Auth) && seq % 10 == 0 {
            // The operators' dashboards keep trying with the token they have.
            st.log(
                "aurora-live-feed",
                "SSE auth: 401 unauthorized for a dashboard client (invalid token)",
            );
        }
        let mut events = vec![files::event_line(seq)];
        if st.has(Fault::Malformed) {
            // The producer died mid-line: not JSON.
            events.push(format!("{{\"type\":\"decision\",\"seq\":{seq},\"p\":"));
            st.malformed_lines += 1;
            st.log(
                "aurora-live-feed",
                format!("Malformed JSON in aurora_events.jsonl: EOF while parsing (seq {seq})"),
            );
        }
        if st.has(Fault::Oversized) && seq % 5 == 0 && st.oversized_lines < 20 {
            events.push(format!(
                "{{\"type\":\"snapshot\",\"seq\":{seq},\"book\":\"{}\"}}",
                "x".repeat(1_100_000)
            ));
            st.oversized_lines += 1;
            st.log(
                "aurora-live-feed",
                "tailer: oversized line (1100032 bytes > 1048576) dropped",
            );
        }
        st.orders_total += 1;
        let rate = st.deny_rate();
        // Deny when the running share falls behind the rate: deterministic, exact over time.
        #[allow(clippy::cast_precision_loss)]
        let denied_so_far = st.denied.values().sum::<u64>() as f64;
        #[allow(clippy::cast_precision_loss)]
        let deny = denied_so_far < rate * st.orders_total as f64;
        let reason =
            ["spread", "risk_limit", "low_confidence"][usize::try_from(seq % 3).unwrap_or(0)];
        if deny {
            *st.denied.entry(reason).or_default() += 1;
        }
        let streaming = st.streaming();
        drop(st);
        let size = Layout::append(&self.layout.events, &events);
        let _ = Layout::append(&self.layout.trades, &[files::trade_line(seq)]);
        if deny {
            let _ = Layout::append(&self.layout.denied, &[files::denial_line(seq, reason)]);
        }
        let mut st = self.lock();
        if let (Ok(size), Some(pos)) = (size, st.file_positions.as_mut()) {
            pos.insert("aurora_events.jsonl".into(), size);
        }
        if streaming {
            st.events_total += 1;
            drop(st);
            let _ = self.events.send(files::event_line(seq));
        }
    }
}

/// A running simulator. Dropping it stops the listeners and the processes.
pub struct Sim {
    inner: Arc<Inner>,
    ticker: JoinHandle<()>,
}

impl Sim {
    /// Create the files, bind every listener on loopback, switch the faults on, start the
    /// producer. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// A file or a listener; a fault that cannot be switched on here (`disk` on a big disk).
    #[allow(
        clippy::unused_async,
        reason = "it spawns the listeners and the producer: async says it needs a runtime"
    )]
    pub async fn start(config: SimConfig) -> Result<Sim, SimError> {
        std::fs::create_dir_all(&config.dir)?;
        let dir = config.dir.canonicalize()?;
        let layout = Layout::new(&dir);
        let token = format!("sim-{:016x}", rand_u64());
        let (events, _) = broadcast::channel(256);
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(token.clone())),
            layout,
            exe: config.exe.clone(),
            control_url: Mutex::new(String::new()),
            events,
            ports: Mutex::new(BTreeMap::new()),
            children: Mutex::new(BTreeMap::new()),
        });
        let routers = http::routers(&inner);
        {
            let mut ports = inner.ports();
            for (role, router) in routers {
                let mut p = Port {
                    addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                    router,
                    task: None,
                };
                p.up()?;
                ports.insert(role, p);
            }
        }
        let control = format!("http://{}", inner.ports()[&Role::Control].addr);
        control.clone_into(
            &mut inner
                .control_url
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        inner.layout.create(&token, &config.exe, &control)?;
        inner.spawn_process("aurora-live-feed");
        inner.spawn_process("aurora-runner");
        for f in &config.faults {
            inner.fault_on(*f)?;
        }
        let ticking = Arc::clone(&inner);
        let tick = config.tick.max(Duration::from_millis(10));
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval(tick);
            let mut seq = 1000u64;
            loop {
                every.tick().await;
                seq += 1;
                let t = Arc::clone(&ticking);
                let _ = tokio::task::spawn_blocking(move || t.tick(seq)).await;
            }
        });
        Ok(Sim { inner, ticker })
    }

    fn url(&self, role: Role) -> String {
        format!("http://{}", self.inner.ports()[&role].addr)
    }

    /// The control endpoint.
    #[must_use]
    pub fn control_url(&self) -> String {
        self.url(Role::Control)
    }

    /// The files.
    #[must_use]
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// Faults on now.
    #[must_use]
    pub fn faults(&self) -> Vec<Fault> {
        self.inner.lock().faults.iter().copied().collect()
    }

    /// Switch a fault on.
    ///
    /// # Errors
    /// The fault cannot be switched on here.
    pub fn fault_on(&self, fault: Fault) -> Result<(), SimError> {
        self.inner.fault_on(fault)
    }

    /// Switch a fault off.
    pub fn fault_off(&self, fault: Fault) {
        self.inner.fault_off(fault);
    }

    /// What was done to the simulator, in order (`systemctl restart aurora-live-feed`, ...).
    #[must_use]
    pub fn calls(&self) -> Vec<String> {
        self.inner.lock().calls.clone()
    }

    /// The value of every runbook parameter that points at this simulator, by name. A runbook
    /// takes the ones it declares.
    #[must_use]
    pub fn params(&self) -> BTreeMap<String, String> {
        let l = &self.inner.layout;
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let public = self.url(Role::Public);
        let feed = self.url(Role::Feed);
        let runner = self.url(Role::Runner);
        let exchange = self.inner.ports()[&Role::Exchange].addr;
        let mut m: BTreeMap<String, String> = [
            ("base_url", public.clone()),
            ("public_url", public),
            ("local_url", feed.clone()),
            ("feed_url", feed),
            ("runner_url", runner),
            ("prometheus", self.url(Role::Prometheus)),
            ("exchange_status_url", format!("http://{exchange}/status")),
            ("exchange_host", exchange.ip().to_string()),
            ("exchange_port", exchange.port().to_string()),
            ("ping_host", exchange.ip().to_string()),
            ("ping_port", exchange.port().to_string()),
            ("public_host", "localhost".into()),
            ("token_file", path(&l.token)),
            ("data_dir", path(&l.dir)),
            ("aurora_home", path(&l.dir)),
            ("log_dir", path(&l.logs)),
            ("archive_dir", path(&l.archive)),
            ("events_file", path(&l.events)),
            ("denied_log", path(&l.denied)),
            ("trades_file", path(&l.trades)),
            ("governance_config", path(&l.governance)),
            ("env_file", path(&l.env_file)),
            ("nginx_site", path(&l.nginx_site)),
            ("nginx_error_log", path(&l.nginx_error_log)),
            ("rotate_script", path(&l.rotate_script)),
            ("cert_file", path(&l.cert)),
            ("backup_prefix", path(&l.backup_prefix)),
            ("last_good_backup", path(&l.backup_latest)),
            ("python", "python3".into()),
            (
                "process_pattern",
                self.inner.process_pattern("live_feed.py"),
            ),
            (
                "runner_process_pattern",
                self.inner.process_pattern("run_live_aurora"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for p in files::PROGRAMS {
            m.insert((*p).to_owned(), path(&l.program(p)));
        }
        m
    }

    /// Stop: listeners closed, processes killed.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.ticker.abort();
        for p in self.inner.ports().values_mut() {
            p.down();
        }
        let mut children = self
            .inner
            .children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for c in children.values_mut() {
            let _ = c.start_kill();
        }
        children.clear();
    }
}

/// A random-enough 64-bit value for the token (no `rand` dependency: the clock and the pid).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}
