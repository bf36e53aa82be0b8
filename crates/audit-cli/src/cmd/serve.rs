//! `imgaudit serve`: flags, files and the environment into an `audit_server::Config`, then the
//! server runs until SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use audit_server::{Config, Settings};

use crate::cli::ServeArgs;

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    // Info by default (one line per admission), `-v` debug, `-vv` trace.
    crate::logging::init(args.log_format, tracing::Level::INFO, args.verbose);
    let secs = |v: f64, flag: &str| -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(v)
            .map_err(|_| anyhow::anyhow!("{flag}: {v} is not a number of seconds"))
    };
    let prefetch = match &args.prefetch {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("--prefetch {}", p.display()))?
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        None => Vec::new(),
    };
    let listen: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen {}", args.listen))?;
    let config = Config {
        listen,
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        tls_reload_interval: secs(args.tls_reload_interval, "--tls-reload-interval")?,
        settings: Settings {
            deadline: secs(args.deadline, "--deadline")?,
            resolve_ttl: secs(args.resolve_ttl, "--resolve-ttl")?,
            cache_ttl: secs(args.cache_ttl, "--cache-ttl")?,
            error_ttl: secs(args.error_ttl, "--error-ttl")?,
            cache_bytes: args.cache_bytes,
            max_audits: args.max_audits.max(1),
            max_queued_audits: args.max_queued_audits.max(1),
        },
        layer_cache_bytes: args.layer_cache_bytes,
        max_connections: args.max_connections,
        max_body_bytes: args.max_body_bytes,
        prefetch,
        shutdown_grace: secs(args.shutdown_grace, "--shutdown-grace")?,
    };
    let policy = args.scope.policy()?;
    let auditor = args.scope.builder()?;
    let opts = crate::registry::source_options(&args.registry)?;
    audit_server::run(config, policy, auditor, &opts, crate::cmd::audit::today)?;
    Ok(ExitCode::SUCCESS)
}
