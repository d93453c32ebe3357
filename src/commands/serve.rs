//! `runbook serve [--listen ADDR]`: alert webhooks start runbooks; schedules, due reverts and
//! approvals run from a background thread (see `crate::serve::server`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::GrafanaHmacArgs;
use crate::commands::Ctx;
use crate::commands::common::runtime;
use crate::exit;
use crate::runbook::value::parse_duration;
use crate::serve::auth::{
    Authenticator, Secret, SignatureScheme, SignatureVerifier, read_secret_file,
};
use crate::serve::payload::Limits;
use crate::serve::server::{self, Config};
use crate::serve::tail::TailStats;

/// The verb's options.
pub struct ServeArgs {
    /// `host:port`.
    pub listen: String,
    /// Body cap in bytes.
    pub body_limit: usize,
    /// Queue length.
    pub queue: usize,
    /// Concurrent runs.
    pub workers: usize,
    /// Cooldown after a run of one (runbook, fingerprint).
    pub cooldown: String,
    /// Files holding accepted bearer tokens (one per line).
    pub token_files: Vec<PathBuf>,
    /// Files holding the API's and the dashboard's own bearer tokens (none: the delivery
    /// credentials open them).
    pub api_token_files: Vec<PathBuf>,
    /// Basic auth user name.
    pub basic_auth_user: Option<String>,
    /// A file holding the basic auth password(s).
    pub basic_auth_password_file: Option<PathBuf>,
    /// Files holding HMAC secrets for `/hooks/generic`.
    pub hmac_secret_files: Vec<PathBuf>,
    /// Grafana's webhook signature on `/hooks/grafana`: secret files and headers. Named for
    /// the one option it used to be (see `Command::Serve`).
    pub grafana_hmac: Box<GrafanaHmacArgs>,
    /// Let unauthenticated deliveries in on a non-loopback address.
    pub allow_unauthenticated: bool,
    /// How long an approval by the API stays valid unless its request says.
    pub approval_ttl: String,
    /// JSON-lines files to follow (a path or glob).
    pub follow: Option<String>,
    /// How often the followed files' counts are taken.
    pub follow_interval: String,
    /// The scheduler's "now" at start (RFC 3339), for tests.
    pub schedule_now: Option<String>,
}

/// Read secret files; warnings go to stderr.
fn secrets(files: &[PathBuf]) -> Result<Vec<Secret>, String> {
    let mut out = Vec::new();
    for f in files {
        let loaded = read_secret_file(f).map_err(|e| e.to_string())?;
        if let Some(w) = loaded.warning {
            eprintln!("warning: {w}");
        }
        out.extend(loaded.secrets);
    }
    Ok(out)
}

/// One authenticator per door: bearer/basic for the hooks; HMAC for generic (required) and
/// Grafana (when secrets are given); the API and dashboard's own tokens, else the hooks'
/// credentials. In that order: Alertmanager, Grafana, generic, API.
fn authenticators(args: &ServeArgs) -> Result<[Authenticator; 4], String> {
    let tokens = secrets(&args.token_files)?;
    let basic = match (&args.basic_auth_user, &args.basic_auth_password_file) {
        (Some(u), Some(f)) => Some((u.clone(), secrets(std::slice::from_ref(f))?)),
        (None, None) => None,
        _ => return Err("--basic-auth-user and --basic-auth-password-file go together".into()),
    };
    let credentials = || {
        let mut a = Authenticator::open().with_bearer_tokens(tokens.iter().cloned());
        if let Some((u, p)) = &basic {
            a = a.with_basic_auth(u, p.iter().cloned());
        }
        a
    };
    let generic = Authenticator::open().with_signature(SignatureVerifier::new(
        SignatureScheme::runbook(),
        secrets(&args.hmac_secret_files)?,
    ));
    let grafana_secrets = secrets(&args.grafana_hmac.secret_files)?;
    let grafana = if grafana_secrets.is_empty() {
        credentials()
    } else {
        let scheme = grafana_scheme(&args.grafana_hmac)?;
        if scheme.timestamp_header.is_none() {
            eprintln!(
                "warning: --grafana-timestamp-header none: Grafana signs the body alone, so there is no replay window: a copy of a group's latest delivery is ignored as a duplicate, an older delivery is accepted again"
            );
        }
        credentials().with_signature(SignatureVerifier::new(scheme, grafana_secrets))
    };
    let generic = if args.hmac_secret_files.is_empty() {
        Authenticator::open()
    } else {
        generic
    };
    let api = if args.api_token_files.is_empty() {
        credentials()
    } else {
        Authenticator::open().with_bearer_tokens(secrets(&args.api_token_files)?)
    };
    Ok([credentials(), grafana, generic, api])
}

/// Grafana's scheme from `--grafana-signature-header` and `--grafana-timestamp-header`
/// (`none`: the body alone is signed), as the contact point's `hmacConfig.header` and
/// `hmacConfig.timestampHeader` name them.
fn grafana_scheme(args: &GrafanaHmacArgs) -> Result<SignatureScheme, String> {
    let signature = header_name("--grafana-signature-header", &args.signature_header)?;
    let timestamp = if args.timestamp_header.eq_ignore_ascii_case("none") {
        None
    } else {
        Some(header_name(
            "--grafana-timestamp-header",
            &args.timestamp_header,
        )?)
    };
    if let Some(t) = timestamp.filter(|t| t.eq_ignore_ascii_case(signature)) {
        return Err(format!(
            "--grafana-signature-header and --grafana-timestamp-header both name `{t}`: Grafana sends the signature and the time in two headers"
        ));
    }
    Ok(SignatureScheme::grafana(Some(signature), timestamp))
}

/// `name` if it can be a request header that carries a signature or a time.
fn header_name<'a>(flag: &str, name: &'a str) -> Result<&'a str, String> {
    if name.is_empty() {
        return Err(format!("{flag}: give a header name"));
    }
    if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!(
            "{flag} `{name}`: not a header name (letters, digits and `-`, no space or `:`)"
        ));
    }
    // The credentials of `--token-file` and basic auth travel there.
    if name.eq_ignore_ascii_case("authorization") {
        return Err(format!(
            "{flag} `{name}`: `Authorization` carries the token or basic credentials; name another header"
        ));
    }
    Ok(name)
}

/// The runbooks to serve: what compiles, with a warning for what does not; `None` when
/// nothing does.
fn catalog(ctx: &Ctx) -> Option<crate::runbook::Catalog> {
    let open = writable_by_anyone(&ctx.dir);
    if !open.is_empty() {
        // Whoever can write a runbook can make this service run any command it likes.
        for p in &open {
            eprintln!(
                "error: `{}` is writable by every user: anyone could change what this server runs (`chmod o-w` it)",
                p.display()
            );
        }
        return None;
    }
    let catalog = ctx.catalog();
    if catalog.runbooks.is_empty() {
        eprintln!(
            "error: no runbook compiles in `{}` (see `runbook validate`)",
            ctx.dir.display()
        );
        return None;
    }
    let broken = catalog
        .diagnostics
        .iter()
        .filter(|d| d.severity == crate::runbook::diagnostic::Severity::Error)
        .count();
    if broken > 0 {
        // Serve what compiles; say loudly what does not.
        eprintln!(
            "warning: {broken} error(s) in `{}`: those runbooks are not served (see `runbook validate`)",
            ctx.dir.display()
        );
    }
    Some(catalog)
}

/// The runbook directory and the YAML files in it that every user may write (mode `o+w`).
fn writable_by_anyone(dir: &std::path::Path) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let open = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o002 != 0)
    };
    let mut out: Vec<PathBuf> = Vec::new();
    if open(dir) {
        out.push(dir.to_owned());
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml") && open(p))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// `--cooldown`, `--approval-ttl`, `--schedule-now`.
/// Cooldown, approval TTL, the scheduler's start time.
type Times = (
    std::time::Duration,
    std::time::Duration,
    Option<chrono::DateTime<chrono::Utc>>,
);

fn times(args: &ServeArgs) -> Result<Times, String> {
    let cooldown = parse_duration(&args.cooldown).map_err(|e| format!("--cooldown: {e}"))?;
    let ttl = parse_duration(&args.approval_ttl).map_err(|e| format!("--approval-ttl: {e}"))?;
    let now = args
        .schedule_now
        .as_deref()
        .map(chrono::DateTime::parse_from_rfc3339)
        .transpose()
        .map_err(|e| format!("--schedule-now: {e} (write RFC 3339, e.g. 2025-01-01T12:00:00Z)"))?
        .map(|t| t.with_timezone(&chrono::Utc));
    Ok((cooldown, ttl, now))
}

/// What the options say, checked: the address, the times, the authenticators (an open one
/// only on loopback or with `--allow-unauthenticated`).
fn checked(args: &ServeArgs) -> Result<(std::net::SocketAddr, Times, [Authenticator; 4]), String> {
    let listen: std::net::SocketAddr = args
        .listen
        .parse()
        .map_err(|e| format!("--listen `{}`: {e}", args.listen))?;
    let times = times(args)?;
    let auth = authenticators(args)?;
    if auth[0].is_open() {
        if listen.ip().is_loopback() || args.allow_unauthenticated {
            eprintln!(
                "warning: no --token-file or basic auth: anyone who can reach {listen} can start runbooks"
            );
        } else {
            return Err(format!(
                "refusing to listen on {listen} without authentication: give --token-file (what Alertmanager's credentials_file holds), or --allow-unauthenticated"
            ));
        }
    }
    Ok((listen, times, auth))
}

/// `--follow`: the jsonl follower on its own thread, counting into `/metrics`.
fn start_follower(
    ctx: &Ctx,
    args: &ServeArgs,
    app: &Arc<server::App>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<Option<std::thread::JoinHandle<()>>, u8> {
    let (Some(pattern), Some(stats)) = (&args.follow, server::tail_stats(app)) else {
        return Ok(None);
    };
    let interval = match parse_duration(&args.follow_interval) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            eprintln!("error: --follow-interval: give a duration over 0, like 10s");
            return Err(exit::INVALID);
        }
    };
    crate::serve::tail::spawn(
        pattern.clone(),
        ctx.db.clone(),
        interval,
        stats,
        Arc::clone(stop),
    )
    .map(Some)
    .map_err(|e| {
        eprintln!("error: cannot start the follower: {e}");
        exit::FAULT
    })
}

/// Run the verb until SIGINT or SIGTERM.
pub fn run(ctx: &Ctx, args: &ServeArgs) -> u8 {
    let Some(catalog) = catalog(ctx) else {
        return exit::INVALID;
    };
    let (
        listen,
        (cooldown, approval_ttl, schedule_now),
        [auth_alertmanager, auth_grafana, auth_generic, auth_api],
    ) = match checked(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let config = Config {
        listen,
        body_limit: args.body_limit,
        queue: args.queue,
        workers: args.workers,
        cooldown,
        db: ctx.db.clone(),
        auth_alertmanager,
        auth_grafana,
        auth_generic,
        auth_api,
        limits: Limits::default(),
        runbooks_dir: ctx.dir.clone(),
        poll: std::time::Duration::from_secs(1),
        schedule_now,
        approval_ttl,
        log: |line| eprintln!("{line}"),
        tail: args.follow.as_ref().map(|_| Arc::new(TailStats::default())),
    };
    let (app, rx) = match server::app(catalog, config) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: audit trail `{}`: {e}", ctx.db.display());
            return exit::FAULT;
        }
    };
    let workers = server::spawn_workers(&app, rx);
    let requeued = server::requeue(&app);
    if requeued > 0 {
        eprintln!("{requeued} run(s) of deliveries accepted before a stop queued again");
    }
    let background = match server::spawn_background(&app) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot start the background thread: {e}");
            server::stop(&app);
            return exit::FAULT;
        }
    };
    let stop_follow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = match start_follower(ctx, args, &app, &stop_follow) {
        Ok(f) => f,
        Err(code) => {
            server::stop(&app);
            return code;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // Catch SIGTERM before saying we listen: a supervisor may stop us at once.
        let shutdown = shutdown_signal()?;
        // The first line says where: a test or a supervisor reads it.
        println!("listening on http://{addr}");
        tokio::spawn(server::escalation_timer(
            Arc::clone(&app),
            std::time::Duration::from_secs(10),
        ));
        axum::serve(listener, server::router(Arc::clone(&app)))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| e.to_string())
    });
    // Accepted deliveries are in the DB and their jobs in the queue: drain them.
    server::stop(&app);
    stop_follow.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = background.join();
    for w in workers {
        let _ = w.join();
    }
    if let Some(f) = follower {
        let _ = f.join();
    }
    match served {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAULT
        }
    }
}

/// A future that ends at SIGINT or SIGTERM; the handlers are installed when this is called.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(signature: &str, timestamp: &str) -> GrafanaHmacArgs {
        GrafanaHmacArgs {
            secret_files: Vec::new(),
            signature_header: signature.into(),
            timestamp_header: timestamp.into(),
        }
    }

    #[test]
    fn grafana_scheme_follows_the_contact_points_hmac_config() {
        // The CLI's defaults: Grafana's default signature header, our usual timestamp header.
        let scheme = grafana_scheme(&args(
            SignatureScheme::GRAFANA_SIGNATURE_HEADER,
            SignatureScheme::GRAFANA_TIMESTAMP_HEADER,
        ))
        .unwrap();
        assert_eq!(
            scheme,
            SignatureScheme::grafana(None, Some("X-Grafana-Alerting-Timestamp"))
        );
        // `timestampHeader` left empty in Grafana: the body alone.
        for none in ["none", "NONE"] {
            let scheme = grafana_scheme(&args("X-Hook-Signature", none)).unwrap();
            assert_eq!(scheme.signature_header, "X-Hook-Signature");
            assert_eq!(scheme.timestamp_header, None, "{none}");
        }
        let scheme = grafana_scheme(&args("X-Sig", "X-Time")).unwrap();
        assert_eq!(scheme.timestamp_header.as_deref(), Some("X-Time"));
    }

    #[test]
    fn bad_header_names_say_which_option() {
        let err = |s: &str, t: &str| grafana_scheme(&args(s, t)).unwrap_err();
        assert_eq!(
            err("", "none"),
            "--grafana-signature-header: give a header name"
        );
        assert_eq!(
            err("X-Sig", ""),
            "--grafana-timestamp-header: give a header name"
        );
        assert!(
            err("X-Sig", "X Time").starts_with("--grafana-timestamp-header `X Time`: not a header")
        );
        assert!(err("X-Sig\n", "none").contains("not a header name"));
        assert!(err("Authorization", "none").contains("carries the token"));
        assert!(err("X-Sig", "AUTHORIZATION").contains("carries the token"));
        assert!(err("X-Sig", "x-SIG").contains("both name `x-SIG`"));
    }
}
