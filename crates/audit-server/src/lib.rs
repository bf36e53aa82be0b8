//! imgaudit's HTTP services, one engine behind one HTTP stack (hyper + rustls): today the
//! Kubernetes validating admission webhook that `imgaudit serve` runs. HTTPS only (certificate
//! reloaded on change); the decision itself is `audit_core::admission`. Modules: `review`
//! (AdmissionReview envelope, images of workloads), `engine` (resolution, caches, audits,
//! deadline), `http` (routes, body bounds), `memo` (expiring single-flight cache), `tls`,
//! `metrics`.
//!
//! The crate never installs a log subscriber and never exits: the binary does.
#![deny(missing_docs)]

mod engine;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod memo;
mod metrics;
mod review;
mod shared;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use audit_core::audit::AuditorBuilder;
use audit_core::error::SourceError;
use audit_core::policy::Policy;
use audit_core::source::{RegistryPool, SourceOptions};
use audit_core::store::{LayerStore, MemoryStore, RedisStore, Tiered};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use engine::Engine;
pub use engine::Settings;

/// A TLS handshake must finish within 10 s, and request headers arrive within 10 s.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Registry connections are given up after 5 s in the webhook (a hung registry must not hold
/// the request past its deadline; audits in the background keep the `--timeout` bound).
const REGISTRY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `imgaudit serve` is given: where to listen, the certificate, timing and capacity. The
/// caller (the CLI) resolves flags, files and the environment into it.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain served (reloaded when the file changes).
    pub tls_cert: PathBuf,
    /// PEM private key of the certificate.
    pub tls_key: PathBuf,
    /// Between checks of the certificate files for changes.
    pub tls_reload_interval: Duration,
    /// Timing and capacity of the audits behind the answers.
    pub settings: Settings,
    /// Bytes of per-layer analyses kept in memory.
    pub layer_cache_bytes: u64,
    /// A layer store behind the memory one (Redis or a directory), if any.
    pub layer_store: Option<Arc<dyn LayerStore>>,
    /// Redis shared by the replicas: verdicts are shared through it, and a new image is
    /// audited by one replica at a time (`lock:` keys). Usually also `layer_store`.
    pub shared: Option<SharedVerdicts>,
    /// Client connections served at once.
    pub max_connections: usize,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: u64,
    /// Images audited at start-up; `/readyz` answers 200 once they are done.
    pub prefetch: Vec<String>,
    /// Given to open requests after SIGTERM.
    pub shutdown_grace: Duration,
}

/// Verdicts shared through Redis, under a scope.
#[derive(Clone)]
pub struct SharedVerdicts {
    /// The store.
    pub redis: Arc<RedisStore>,
    /// Everything besides the image that decides its findings (policy file bytes, profile,
    /// platforms): replicas share verdicts only when their scopes are equal.
    pub scope: String,
}

impl std::fmt::Debug for SharedVerdicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedVerdicts")
            .field("redis", &self.redis.options().redacted_url())
            .finish_non_exhaustive()
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The serving certificate or key is unusable.
    #[error("{0}")]
    Certificate(String),
    /// A setting is out of its range.
    #[error("{0}")]
    Setting(String),
    /// The registry client could not be set up.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Binding the listener, or another I/O failure of the server itself.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// Runs the webhook until SIGTERM or SIGINT, then drains open requests. `auditor` carries the
/// policy, profile, platforms and jobs of every audit; `today` gives the date for expiring
/// ignores and the Go support table, asked once per audit.
pub fn run(
    config: Config,
    policy: Policy,
    auditor: AuditorBuilder,
    source_options: &SourceOptions,
    today: fn() -> String,
) -> Result<(), ServeError> {
    let deadline = config.settings.deadline;
    if deadline.is_zero() || deadline > Duration::from_secs(30) {
        return Err(ServeError::Setting("--deadline: must be above 0 and at most 30 s (the API server's timeoutSeconds range is 1–30)".into()));
    }
    let memory: Arc<dyn LayerStore> = Arc::new(MemoryStore::new(config.layer_cache_bytes));
    let layers: Arc<dyn LayerStore> = match &config.layer_store {
        Some(back) => Arc::new(Tiered::new(memory, Arc::clone(back))),
        None => memory,
    };
    let builder = auditor
        .policy(policy.clone())
        .layer_store(Arc::clone(&layers));
    let mut opts = source_options.clone();
    opts.limits.connect_timeout = opts.limits.connect_timeout.min(REGISTRY_CONNECT_TIMEOUT);
    let pool = RegistryPool::new(&opts)?;
    let certs = tls::Reloading::new(&config.tls_cert, &config.tls_key)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("imgaudit-serve")
        .enable_all()
        .build()
        .map_err(io_error("starting the runtime"))?;
    let shared = config.shared.as_ref().map(|s| {
        let scope = format!(
            "{}\n{}",
            s.scope,
            audit_core::layer::analysis_fingerprint(
                &audit_core::limits::Limits::default(),
                audit_core::audit::content_plan(),
            )
        );
        shared::Shared::new(Arc::clone(&s.redis), &scope)
    });
    let engine = Arc::new(Engine::new(
        policy,
        builder,
        pool,
        layers,
        shared,
        config.settings.clone(),
        today,
    ));
    let listen = Listen {
        addr: config.listen,
        certs,
        reload: config.tls_reload_interval,
        max_connections: config.max_connections.max(1),
        max_body: config.max_body_bytes,
        grace: config.shutdown_grace,
    };
    let result = rt.block_on(serve(engine, listen, config.prefetch));
    rt.shutdown_timeout(Duration::from_secs(1));
    result
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

async fn serve(engine: Arc<Engine>, l: Listen, prefetch: Vec<String>) -> Result<(), ServeError> {
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
        .map_err(io_error(format!("listening on {addr}")))?;
    let local = listener.local_addr().map_err(io_error("listening"))?;
    if !prefetch.is_empty() {
        engine.prefetch_at_start(prefetch);
    }
    let p = &engine.policy.admission;
    tracing::info!(addr = %local, deadline_ms = engine.settings.deadline.as_millis() as u64, deny_on = ?p.thresholds.deny_on, mode = ?p.thresholds.mode, failure_policy = ?p.failure_policy, "listening");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io_error("installing the SIGTERM handler"))?;
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
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => break "shutdown",
            },
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
