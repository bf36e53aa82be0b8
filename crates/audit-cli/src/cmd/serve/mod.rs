//! `imgaudit serve`: the validating admission webhook. HTTPS only (rustls, certificate
//! reloaded on change); the decision itself is `audit_core::admission`. Modules: `review`
//! (AdmissionReview envelope, images of workloads), `engine` (resolution, caches, audits,
//! deadline), `http` (routes, body bounds), `memo` (expiring single-flight cache), `tls`,
//! `metrics`.

mod engine;
mod http;
mod memo;
mod metrics;
mod review;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use audit_core::cache::{LayerCache, MemoryLayerCache};
use audit_core::source::RegistryPool;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::cli::{LogFormat, ServeArgs};
use engine::{Engine, Settings};

/// A TLS handshake must finish within 10 s, and request headers arrive within 10 s.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Registry connections are given up after 5 s in the webhook (a hung registry must not hold
/// the request past its deadline; audits in the background keep the `--timeout` bound).
const REGISTRY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format, args.verbose);
    let secs = |v: f64, flag: &str| -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(v)
            .map_err(|_| anyhow::anyhow!("{flag}: {v} is not a number of seconds"))
    };
    let deadline = secs(args.deadline, "--deadline")?;
    if deadline.is_zero() || deadline > Duration::from_secs(30) {
        bail!("--deadline: must be above 0 and at most 30 s (the API server's timeoutSeconds range is 1–30)");
    }
    let policy = args.scope.policy()?;
    let layers = Arc::new(MemoryLayerCache::new(args.layer_cache_bytes));
    let builder = args
        .scope
        .builder()?
        .policy(policy.clone())
        .layer_cache(Arc::clone(&layers) as Arc<dyn LayerCache>);
    let mut opts = crate::registry::source_options(&args.registry)?;
    opts.limits.connect_timeout = opts.limits.connect_timeout.min(REGISTRY_CONNECT_TIMEOUT);
    let pool = RegistryPool::new(&opts)?;
    let settings = Settings {
        deadline,
        resolve_ttl: secs(args.resolve_ttl, "--resolve-ttl")?,
        cache_ttl: secs(args.cache_ttl, "--cache-ttl")?,
        error_ttl: secs(args.error_ttl, "--error-ttl")?,
        cache_bytes: args.cache_bytes,
        max_audits: args.max_audits.max(1),
        max_queued_audits: args.max_queued_audits.max(1),
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
    let certs = tls::Reloading::new(&args.tls_cert, &args.tls_key)?;
    let reload = secs(args.tls_reload_interval, "--tls-reload-interval")?;
    let addr: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen {}", args.listen))?;
    let grace = secs(args.shutdown_grace, "--shutdown-grace")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("imgaudit-serve")
        .enable_all()
        .build()?;
    let engine = Arc::new(Engine::new(policy, builder, pool, layers, settings));
    let listen = Listen {
        addr,
        certs,
        reload,
        max_connections: args.max_connections.max(1),
        max_body: args.max_body_bytes,
        grace,
    };
    let result = rt.block_on(serve(engine, listen, prefetch));
    rt.shutdown_timeout(Duration::from_secs(1));
    result.map(|()| ExitCode::SUCCESS)
}

/// The HTTPS side's settings.
struct Listen {
    addr: SocketAddr,
    certs: Arc<tls::Reloading>,
    /// Between checks of the certificate files.
    reload: Duration,
    max_connections: usize,
    max_body: u64,
    /// Given to open requests after SIGTERM.
    grace: Duration,
}

async fn serve(engine: Arc<Engine>, l: Listen, prefetch: Vec<String>) -> anyhow::Result<()> {
    let Listen {
        addr,
        certs,
        reload,
        max_connections,
        max_body,
        grace,
    } = l;
    let acceptor = tokio_rustls::TlsAcceptor::from(certs.server_config()?);
    Arc::clone(&certs).watch(reload);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    if !prefetch.is_empty() {
        engine.prefetch_at_start(prefetch);
    }
    let p = &engine.policy.admission;
    tracing::info!(addr = %local, deadline_ms = engine.settings.deadline.as_millis() as u64, deny_on = ?p.thresholds.deny_on, mode = ?p.thresholds.mode, failure_policy = ?p.failure_policy, "listening");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    };
    tokio::pin!(stop);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections));
    let signal = loop {
        let permit = tokio::select! {
            s = &mut stop => break s,
            p = Arc::clone(&slots).acquire_owned() => p?,
        };
        let tcp = tokio::select! {
            s = &mut stop => break s,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, engine, watcher) =
            (acceptor.clone(), Arc::clone(&engine), graceful.watcher());
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            let service = hyper::service::service_fn(move |req| {
                http::handle(Arc::clone(&engine), req, max_body)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    };
    engine.stop();
    drop(listener);
    tracing::info!(signal, open = graceful.count(), "shutting down");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = grace.as_secs_f64(),
            "connections still open after the grace period; closing"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// Structured logs on stderr: JSON lines by default, info level (`-v` debug, `-vv` trace).
/// Nothing logged carries a secret: objects are not logged, credentials never reach here.
fn init_logging(format: LogFormat, verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let b = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => b
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => b.try_init(),
    };
}
