//! `imgaudit serve`: flags, files and the environment into an `audit_server::Config`, then the
//! server runs until SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use std::sync::Arc;

use audit_core::source::Secret;
use audit_core::store::LayerStore;
use audit_server::{AdapterAuth, Config, HarborConfig, Settings, SharedVerdicts};

use crate::cli::{HarborArgs, HarborAuthArg, ServeArgs};

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
    // Memory in front of Redis (--cache: layer analyses and verdicts shared by replicas) or a
    // disk store (--cache-dir); memory alone by default.
    let redis = match &args.store.cache {
        Some(url) if !args.store.no_cache => Some(crate::store::redis(&args.store, url)?),
        _ => None,
    };
    let layer_store = match (&redis, &args.store.cache_dir) {
        (Some(r), _) => Some(Arc::clone(r) as Arc<dyn LayerStore>),
        (None, Some(_)) => crate::store::open(&args.store, |k| std::env::var_os(k))?,
        (None, None) => None,
    };
    let shared = redis.map(|redis| {
        // Everything besides the image that decides findings: the policy file's bytes (the
        // file `load_policy` reads), profile, platforms.
        let file = args
            .scope
            .config
            .clone()
            .unwrap_or_else(|| crate::cmd::audit::POLICY_FILE.into());
        let scope = format!(
            "{}\n{:?}\n{:?}\n{:?}",
            String::from_utf8_lossy(&std::fs::read(file).unwrap_or_default()),
            args.scope.profile,
            args.scope.platform,
            args.scope.all_platforms,
        );
        SharedVerdicts { redis, scope }
    });
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
            provider_deadline: secs(args.provider_deadline, "--provider-deadline")?,
        },
        layer_cache_bytes: args.layer_cache_bytes,
        layer_store,
        shared,
        max_connections: args.max_connections,
        max_body_bytes: args.max_body_bytes,
        prefetch,
        shutdown_grace: secs(args.shutdown_grace, "--shutdown-grace")?,
        harbor: harbor(&args.harbor)?,
    };
    let policy = args.scope.policy()?;
    let auditor = args.scope.builder()?;
    let opts = crate::registry::source_options(&args.registry)?;
    audit_server::run(config, policy, auditor, &opts, crate::cmd::audit::today)?;
    Ok(ExitCode::SUCCESS)
}

/// The Harbor adapter's settings, if `--harbor-listen` is given.
fn harbor(a: &HarborArgs) -> anyhow::Result<Option<HarborConfig>> {
    let Some(listen) = &a.harbor_listen else {
        return Ok(None);
    };
    let listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("--harbor-listen {listen}"))?;
    let secret = || -> anyhow::Result<String> {
        let f = a
            .harbor_auth_file
            .as_ref()
            .context("--harbor-auth needs --harbor-auth-file")?;
        let s = std::fs::read_to_string(f)
            .with_context(|| format!("--harbor-auth-file {}", f.display()))?;
        let s = s.trim_end_matches(['\r', '\n']).to_string();
        anyhow::ensure!(!s.is_empty(), "--harbor-auth-file {}: empty", f.display());
        Ok(s)
    };
    let auth = match a.harbor_auth {
        HarborAuthArg::None => AdapterAuth::None,
        HarborAuthArg::Basic => {
            let s = secret()?;
            let (user, password) = s
                .split_once(':')
                .context("--harbor-auth-file: expected USER:PASSWORD for basic")?;
            AdapterAuth::Basic {
                user: user.to_string(),
                password: Secret::new(password),
            }
        }
        HarborAuthArg::Bearer => AdapterAuth::Bearer(Secret::new(secret()?)),
        HarborAuthArg::ApiKey => AdapterAuth::ApiKey(Secret::new(secret()?)),
    };
    let job_ttl = Duration::try_from_secs_f64(a.harbor_job_ttl)
        .map_err(|_| anyhow::anyhow!("--harbor-job-ttl: not a number of seconds"))?;
    Ok(Some(HarborConfig {
        listen,
        tls: !a.harbor_plain_http,
        auth,
        max_queue: a.harbor_max_queue.max(1),
        job_ttl,
        job_memory_bytes: a.harbor_job_memory_bytes,
    }))
}
