//! Command-line definitions (clap). One variant per verb; each verb's code lives in
//! `commands/<verb>.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::serve::auth::SignatureScheme;

/// Runbook-as-code: run, test and audit operations runbooks.
#[derive(Debug, Parser)]
#[command(name = "runbook", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  runbook list\n  runbook validate runbooks/\n  runbook plan sse-not-connecting --set base_url=http://127.0.0.1:8001\n  runbook graph sse-not-connecting --format dot | dot -Tsvg > graph.svg"
)]
pub struct Cli {
    /// Directory of runbooks (default: $`RUNBOOK_DIR`, else ./runbooks).
    #[arg(long, global = true, env = "RUNBOOK_DIR", value_name = "DIR")]
    pub runbooks: Option<PathBuf>,
    /// Audit database (default: $`RUNBOOK_DB`, else the XDG state dir).
    #[arg(long, global = true, env = "RUNBOOK_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Output format: human, json; `validate` also takes github, `graph` mermaid, dot or svg,
    /// `report` md or html.
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,
    /// Colour: auto (a terminal, unless `NO_COLOR` is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `runbook audit` operations.
#[derive(Debug, Subcommand)]
pub enum AuditOp {
    /// Recompute the hash chain; name the first altered row.
    Verify,
    /// Every row as JSON lines, for a log pipeline.
    Export,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Human,
    /// One JSON document.
    Json,
    /// GitHub workflow commands (`validate`).
    Github,
    /// Mermaid flowchart (`graph`).
    Mermaid,
    /// Graphviz dot (`graph`).
    Dot,
    /// One self-contained SVG picture (`graph`).
    Svg,
    /// Markdown (`report`).
    Md,
    /// One self-contained HTML file (`report`).
    Html,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `runbook serve`'s options for Grafana's webhook signature: what the contact point's
/// `hmacConfig` says (`secret`, `header`, `timestampHeader`). The headers are checked by
/// `commands::serve`, which reports a bad name as invalid input.
#[derive(Debug, Clone, clap::Args)]
pub struct GrafanaHmacArgs {
    /// File with Grafana's webhook HMAC secret(s) for `/hooks/grafana` (`hmacConfig.secret`;
    /// several: rotation).
    #[arg(long = "grafana-hmac-secret-file", value_name = "FILE")]
    pub secret_files: Vec<PathBuf>,
    /// The header Grafana sends the signature in: `hmacConfig.header`, or this default when
    /// that is left empty (the form's placeholder `X-Grafana-Alerting-Signature` is not sent).
    #[arg(
        long = "grafana-signature-header",
        value_name = "NAME",
        default_value = SignatureScheme::GRAFANA_SIGNATURE_HEADER,
        requires = "secret_files"
    )]
    pub signature_header: String,
    /// The header Grafana sends the signed unix time in: `hmacConfig.timestampHeader`, or
    /// `none` when that is left empty (Grafana's default): then the body alone is signed and
    /// there is no replay window.
    #[arg(
        long = "grafana-timestamp-header",
        value_name = "NAME|none",
        default_value = SignatureScheme::GRAFANA_TIMESTAMP_HEADER,
        requires = "secret_files"
    )]
    pub timestamp_header: String,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List runbooks with severity and triggers.
    #[command(after_help = "Example:\n  runbook list --runbooks runbooks/ --format json")]
    List,
    /// Check runbooks: syntax, references, graph, safety lint. Every problem in every file at once.
    #[command(
        after_help = "Examples:\n  runbook validate                       # every runbook in the runbook dir\n  runbook validate runbooks/x.yaml other/\n  runbook validate --format github       # annotations in a GitHub Actions log\n\nExit status: 0 valid, 2 invalid."
    )]
    Validate {
        /// Files or directories (default: the runbook dir).
        paths: Vec<PathBuf>,
    },
    /// Show the step graph in execution order, with templates rendered. Touches no host.
    #[command(
        after_help = "Example:\n  runbook plan sse-not-connecting --set base_url=http://127.0.0.1:8001 --set unit=aurora-live-feed"
    )]
    Plan {
        /// Runbook name.
        name: String,
        /// Set a parameter: `--set name=value` (repeatable).
        #[arg(long = "set", value_name = "K=V")]
        sets: Vec<String>,
    },
    /// Draw the step graph as Mermaid (default), Graphviz dot or a self-contained SVG.
    #[command(
        after_help = "Examples:\n  runbook graph sse-not-connecting > graph.mmd\n  runbook graph sse-not-connecting --format dot | dot -Tsvg > graph.svg\n  runbook graph sse-not-connecting --format svg > graph.svg   # no Graphviz needed"
    )]
    Graph {
        /// Runbook name.
        name: String,
        /// Set a parameter: `--set name=value` (repeatable).
        #[arg(long = "set", value_name = "K=V")]
        sets: Vec<String>,
    },
    /// Run a runbook against this host: checks, causes, remedies (with --yes), verification.
    #[command(
        after_help = "Examples:\n  runbook run sse-not-connecting --dry-run      # probes only, no action\n  runbook run service-down --yes                # run remedies without asking\n  runbook run sse-not-connecting --set base_url=http://127.0.0.1:8001 --format json\n  runbook run sse-not-connecting --answer dashboard_token=yes   # no question asked\n\nExit status: 0 healthy or remediated, 1 problem remains, 2 invalid input, 3 engine fault."
    )]
    Run {
        /// Runbook name.
        name: String,
        /// Set a parameter: `--set name=value` (repeatable).
        #[arg(long = "set", value_name = "K=V")]
        sets: Vec<String>,
        /// Run probes, execute no action.
        #[arg(long)]
        dry_run: bool,
        /// Run mutating actions without asking.
        #[arg(long)]
        yes: bool,
        /// How long to wait for another run of this runbook that may change the host (one
        /// such run at a time per host); then exit 3. Read-only runs do not wait.
        #[arg(long, value_name = "DURATION", default_value = "10s")]
        lock_wait: String,
        /// Answer a `manual` check beforehand: `--answer ID=yes|no` (repeatable). The check
        /// takes the answer without asking, so a script or CI can run a runbook with a question.
        #[arg(long = "answer", value_name = "ID=yes|no")]
        answers: Vec<String>,
    },
    /// Run one probe ad hoc and print its result as JSON.
    #[command(
        disable_help_flag = true,
        after_help = "Examples:\n  runbook probe http --with url=http://127.0.0.1:8001/healthz\n  runbook probe system --with path=/opt/aurora\n  runbook probe --help jsonl           # the probe's documentation"
    )]
    Probe {
        /// Probe kind (http, file, system, ...).
        #[arg(required_unless_present = "help")]
        kind: Option<String>,
        /// A parameter: `--with key=value` (repeatable; values are YAML scalars or flow collections).
        #[arg(long = "with", value_name = "K=V")]
        with: Vec<String>,
        /// Print the probe's documentation instead of running it.
        #[arg(long)]
        doc: bool,
        /// Timeout.
        #[arg(long, default_value = "10s")]
        timeout: String,
        /// Print help; with a probe kind (`--help KIND`), the probe's documentation.
        #[arg(short = 'h', long)]
        help: bool,
        /// `jsonl` only: keep watching the files and print one JSON line of counts per
        /// interval, like `tail -F` (with `--with incremental=true`, from the saved positions).
        #[arg(long)]
        follow: bool,
        /// With `--follow`: how often to report.
        #[arg(long, default_value = "5s", requires = "follow")]
        interval: String,
        /// With `--follow`: stop after this many reports.
        #[arg(long, requires = "follow")]
        count: Option<u64>,
        /// With `--follow`: poll the files instead of inotify (for network filesystems).
        #[arg(long, requires = "follow")]
        poll: bool,
    },
    /// Past runs, newest first.
    #[command(after_help = "Example:\n  runbook history --runbook service-down --limit 20")]
    History {
        /// Only this runbook.
        #[arg(long)]
        runbook: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One run: every step with resolved inputs, result, status and timing.
    #[command(after_help = "Example:\n  runbook show 42")]
    Show {
        /// Run id.
        run: String,
    },
    /// A post-mortem draft of a run, or of an incident across its runs, from the audit trail:
    /// timeline, impact against the severity's targets, root cause, actions, lessons.
    #[command(
        after_help = "Examples:\n  runbook report 20250101T120000Z-3fa2c1 > postmortem.md\n  runbook report --incident 7 --format html -o incident-7.html\n  runbook report 3fa2 --templates my-templates/   # report.md.j2 and partials by file name\n\nThe audit database is only read. Exit status: 0 written, 2 no such run or incident, or a template error (file and line named), 3 the audit database cannot be read or FILE cannot be written."
    )]
    Report {
        /// Run id (or a unique prefix); or give `--incident`.
        #[arg(required_unless_present = "incident")]
        run: Option<String>,
        /// One report spanning every run of this incident.
        #[arg(long, value_name = "ID", conflicts_with = "run")]
        incident: Option<i64>,
        /// A directory of templates overriding the built-in ones by file name (`report.md.j2`,
        /// `report.html.j2`, partials); a template it lacks is the built-in one.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Write to FILE instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The audit trail: verify its hash chain, or export it as JSON lines.
    #[command(
        after_help = "Examples:\n  runbook audit verify\n  runbook audit export > audit.jsonl"
    )]
    Audit {
        /// What to do.
        #[command(subcommand)]
        op: AuditOp,
    },
    /// Perform what is due, for cron: undo temporary changes (`revert_after`) that are due,
    /// recheck incidents whose symptom should be gone after a remediation
    /// (`escalation.after_action_unresolved`), and fire the escalation levels of open incidents
    /// that are due.
    #[command(
        after_help = "Examples:\n  runbook tick --dry-run        # what is due, without running or notifying anything\n  runbook tick --yes            # run due rollbacks without asking\n  runbook tick --format json\n  # crontab: * * * * * runbook --runbooks /etc/runbooks tick --yes\n\nA recheck re-runs the runbook's checks read-only (a run with trigger `recheck` that changes nothing, so it needs no --yes): the checks pass -> the incident is resolved; the symptom persists -> its next level fires at once. Rechecks come before the levels due by their time, so one tick does not climb twice.\nA level fires once and a recheck runs once, even with several ticks at once; a channel that fails is reported and not retried.\n\nExit status: 0 nothing due or all done (a recheck that resolved or escalated is done), 1 a revert failed or waits for approval, or a recheck could not run, 2 invalid input (a runbook to recheck does not compile), 3 engine fault."
    )]
    Tick {
        /// Say what is due and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run mutating rollback actions without asking.
        #[arg(long)]
        yes: bool,
        /// Pretend it is this time (RFC 3339), to perform what is due by then.
        #[arg(long, value_name = "RFC3339", hide = true)]
        now: Option<String>,
    },
    /// Alert webhooks start runbooks: Alertmanager, Grafana and signed generic deliveries.
    #[command(
        after_help = "Examples:\n  runbook serve --listen 127.0.0.1:9095 --token-file /etc/runbook/token\n  runbook serve --listen 0.0.0.0:9095 --token-file /etc/runbook/token --hmac-secret-file /etc/runbook/hmac\n  # Grafana's hmacConfig with only `secret` set (no timestampHeader):\n  runbook serve --token-file /etc/runbook/token --grafana-hmac-secret-file /etc/runbook/grafana-hmac --grafana-timestamp-header none\n\nEndpoints: POST /hooks/alertmanager, /hooks/grafana, /hooks/generic; GET /healthz, /metrics; with the API credentials (--api-token-file, else the Alertmanager ones): GET /api/runs, /api/runs/ID, /api/incidents, POST /api/incidents/ID/ack, POST /api/runs/ID/approve, and the read-only dashboard at / (a browser logs in at /login with a token).\nRunbooks with `triggers.schedule` run on their cron expression (UTC); due `revert_after` rollbacks run where policy allows auto-remediation; escalation levels fire at their time; due rechecks (`escalation.after_action_unresolved`) re-run a runbook's checks read-only: passing resolves the incident, a persisting symptom fires its next level at once.\nThe first line printed is `listening on http://ADDR`. SIGTERM drains the queued runs, then exits 0."
    )]
    Serve {
        /// Address to listen on (`127.0.0.1:0` picks a free port).
        #[arg(long, default_value = "127.0.0.1:9095")]
        listen: String,
        /// File with the accepted bearer token(s), one per line (Alertmanager's
        /// `http_config.authorization.credentials_file`).
        #[arg(long = "token-file", value_name = "FILE")]
        token_files: Vec<std::path::PathBuf>,
        /// File with the bearer token(s) of the API and the dashboard, one per line. Given, the
        /// delivery credentials no longer open them: whoever can send alerts cannot approve
        /// remedies or acknowledge incidents. Not given, the `/hooks/alertmanager` credentials
        /// open them.
        #[arg(long = "api-token-file", value_name = "FILE")]
        api_token_files: Vec<std::path::PathBuf>,
        /// Basic auth user (with `--basic-auth-password-file`).
        #[arg(long, value_name = "NAME")]
        basic_auth_user: Option<String>,
        /// File with the basic auth password(s).
        #[arg(long, value_name = "FILE")]
        basic_auth_password_file: Option<std::path::PathBuf>,
        /// File with HMAC-SHA256 secret(s) for `/hooks/generic` (several: rotation).
        #[arg(long = "hmac-secret-file", value_name = "FILE")]
        hmac_secret_files: Vec<std::path::PathBuf>,
        /// Grafana's webhook signature: `--grafana-hmac-secret-file` and its two headers. The
        /// field keeps the name of the one option it used to be, which `commands::run` names;
        /// boxed, as the largest verb's options would otherwise make every `Command` large.
        #[command(flatten)]
        grafana_hmac: Box<GrafanaHmacArgs>,
        /// Largest request body, in bytes (larger: 413, before parsing).
        #[arg(long, default_value_t = 256 * 1024)]
        body_limit: usize,
        /// Runs waiting for a worker (more: 503, so Alertmanager retries).
        #[arg(long, default_value_t = 1024)]
        queue: usize,
        /// Runs at the same time (a runbook's runs that may change the host still run one at
        /// a time).
        #[arg(long, default_value_t = 16)]
        workers: usize,
        /// After a run of a runbook for an alert fingerprint, the same alert starts nothing
        /// for this long.
        #[arg(long, default_value = "5m")]
        cooldown: String,
        /// Accept unauthenticated deliveries on a non-loopback address.
        #[arg(long)]
        allow_unauthenticated: bool,
        /// How long an approval by `POST /api/runs/ID/approve` stays valid (unless its body
        /// gives `ttl`).
        #[arg(long, default_value = "15m", value_name = "DURATION")]
        approval_ttl: String,
        /// Pretend the scheduler starts at this time (RFC 3339); its clock runs on from there.
        #[arg(long, value_name = "RFC3339", hide = true)]
        schedule_now: Option<String>,
        /// Follow these JSON-lines files (a path or glob) like `probe jsonl --follow`, with
        /// positions in the audit DB; their counts appear in `/metrics` as `runbook_jsonl_*`.
        #[arg(long, value_name = "GLOB")]
        follow: Option<String>,
        /// With `--follow`: how often the counts are taken.
        #[arg(long, default_value = "10s", value_name = "DURATION")]
        follow_interval: String,
    },
    /// Approve one action of a run that waited for approval: a running `runbook serve` runs
    /// that runbook again for the same alert with this action allowed, if it takes the
    /// approval before it expires.
    #[command(
        after_help = "Examples:\n  runbook show 0193...            # the action that needs approval\n  runbook approve 0193... restart_service --ttl 10m\n\nExit status: 0 recorded, 2 no such run or the action did not wait for approval, 3 engine fault."
    )]
    Approve {
        /// Run id (or a unique prefix).
        run: String,
        /// The action to allow.
        action: String,
        /// How long the approval stays valid.
        #[arg(long, default_value = "15m", value_name = "DURATION")]
        ttl: String,
        /// Who approves (default: $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Open and acknowledged incidents: severity, level, next level due, response and
    /// resolution deadlines and whether they are breached.
    #[command(after_help = "Examples:\n  runbook incidents\n  runbook incidents --format json")]
    Incidents {
        /// Pretend it is this time (RFC 3339), for the deadlines.
        #[arg(long, value_name = "RFC3339", hide = true)]
        now: Option<String>,
    },
    /// Acknowledge an incident: no further escalation level fires; it stays listed until a
    /// healthy run resolves it.
    #[command(after_help = "Example:\n  runbook ack 3 --by alice")]
    Ack {
        /// Incident id (from `runbook incidents`).
        id: i64,
        /// Who acknowledges (default: $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// Pretend it is this time (RFC 3339).
        #[arg(long, value_name = "RFC3339", hide = true)]
        now: Option<String>,
    },
    /// Scenario tests: given probe results and action outcomes, expect the decision path
    /// (checks, causes, actions, verification, outcome, escalation). Touches no host.
    #[command(
        after_help = "Examples:\n  runbook test                          # runbooks/tests/*.yaml\n  runbook test runbooks/ --junit report.xml\n  runbook test runbooks/tests/service-down.yaml\n\nA scenario file `runbooks/tests/<runbook>.yaml` names its runbook (looked up in the directory holding `tests/`) and lists scenarios: `checks` (each check's probe result fields: `{status: 200}`, `{values: [1, 2]}` for a sampled check, `{unreachable: reason}`, `{error: reason}`, `{unknown: reason}`, `{answer: true}` for a manual one), `after` (verification re-runs), `actions` (`ok` or `{failed: reason}`), `yes`, `set`, and `expect` (`outcome`, `matched`, `ruled_out`, `unknown`, `symptoms`, `checks`, `actions`, `rollbacks`, `verify`, `escalation`). Every check that runs needs a result (`baseline:` gives them for the whole file).\n\nExit status: 0 all pass, 1 a scenario failed, 2 an invalid scenario file or scenario."
    )]
    Test {
        /// Scenario files or directories (a runbook dir: its `tests/`; default: the runbook
        /// dir's `tests/`).
        paths: Vec<PathBuf>,
        /// Also write a `JUnit` XML report here (a suite per file, a case per scenario).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Re-decide a recorded run with the runbook as it is now (or an edited version) on the
    /// probe results the run recorded, with no host access; show where decisions differ.
    #[command(
        after_help = "Examples:\n  runbook replay 0193ab                       # the runbook as it is now\n  runbook replay 0193ab --runbook edited/sse-not-connecting.yaml\n  runbook replay 0193ab --format json\n  runbook replay 0193ab --emit-scenario > runbooks/tests/sse-not-connecting-0193ab.yaml\n\nChecks take the results the run recorded (re-judged by today's `expect`); a check it did not record is `unknown`; an action it never ran would run, with an unknown outcome (taken as not succeeded). Nothing is written to the audit database.\n\nWith --emit-scenario the scenario is run as `runbook test` would (against FILE, or the runbook dir) before it is printed; exit 1 says it does not pass, and why, on stderr.\n\nExit status: 0 no decision differs (the scenario passes), 1 decisions differ (it does not), 2 no such run, FILE invalid or a run with no scenario (dry run, unfinished, fault), 3 the audit database cannot be read."
    )]
    Replay {
        /// Run id (or a unique prefix).
        run: String,
        /// An edited version of the run's runbook to decide with (default: the runbook of the
        /// same name in the runbook dir).
        #[arg(long, value_name = "FILE")]
        runbook: Option<PathBuf>,
        /// Assume the run had consent to mutating actions (`--yes`) even where it shows none.
        #[arg(long)]
        yes: bool,
        /// Print a scenario file (for `runbook test`) that gives the results the run recorded
        /// and expects the decisions it took, instead of the comparison; NAME names the
        /// scenario (default: `run <id>: <outcome>`).
        #[arg(long, value_name = "NAME", require_equals = true, num_args = 0..=1)]
        emit_scenario: Option<Option<String>>,
    },
    /// Print the JSON Schema of the runbook format (for editors' YAML language servers).
    #[command(
        after_help = "Example:\n  runbook schema > schema/runbook.schema.json\n  # then in a runbook: # yaml-language-server: $schema=../schema/runbook.schema.json"
    )]
    Schema,
    /// Run the Aurora simulator in the foreground (what `demo` and the end-to-end tests use):
    /// prints its endpoints and the runbook parameters that point at it, as JSON.
    #[command(
        after_help = "Faults: down, auth, cors, dead-stream, malformed, oversized, rotation, latency,\n  queueing, deny-rate, breaker, ece, disk, clock, data-loss, nginx-down, model-invalid\n\nSwitch faults while it runs:\n  curl -X POST $CONTROL/faults/down     curl -X DELETE $CONTROL/faults/down\n  curl -X PUT $CONTROL/faults -d '{\"faults\": [\"ece\", \"breaker\"]}' -H 'content-type: application/json'"
    )]
    Sim {
        /// The simulated host's directory (default: a new temporary directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// A fault on from the start (repeatable).
        #[arg(long = "fault", value_name = "FAULT")]
        faults: Vec<String>,
        /// Stop after this long (default: until interrupted), e.g. `10m`.
        #[arg(long, value_name = "DURATION")]
        duration: Option<String>,
    },
    /// Run every runbook's symptom checks (read-only), rank the runbooks whose symptoms are
    /// present by severity and evidence, and say which to run.
    #[command(
        after_help = "Examples:\n  runbook triage\n  runbook triage --service aurora-live-feed --set base_url=http://127.0.0.1:8001\n\nExit status: 0 no symptom present, 1 a runbook's symptoms are present, 2 invalid input."
    )]
    Triage {
        /// Only the runbooks of this service.
        #[arg(long, value_name = "SERVICE")]
        service: Option<String>,
        /// Set a parameter in every runbook that declares it: `--set k=v` (repeatable).
        #[arg(long = "set", value_name = "K=V")]
        sets: Vec<String>,
    },
    /// See it work with no setup: the Aurora simulator with a fault, triage, the matching
    /// runbook run with remediation allowed, what changed, the escalation state, the audit.
    #[command(
        after_help = "Examples:\n  runbook demo                    # sse-not-connecting: the live feed died\n  runbook demo --list\n  runbook demo circuit-breaker-open\n\nExit status: the run's (0 remediated, 1 a problem remains and was escalated)."
    )]
    Demo {
        /// The scenario (default: sse-not-connecting).
        scenario: Option<String>,
        /// List the scenarios.
        #[arg(long)]
        list: bool,
    },
    /// A program of the simulated host (`bin/systemctl` and the others call this).
    #[command(hide = true)]
    SimTool {
        /// The simulator's control endpoint.
        #[arg(long, value_name = "URL")]
        control: String,
        /// The program: systemctl, journalctl, nginx, ufw, chronyc, timedatectl, sysctl, process.
        program: String,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}
