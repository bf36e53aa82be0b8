//! imgaudit's HTTP services, one engine behind one HTTP stack (hyper + rustls), run by
//! `imgaudit serve`: the Kubernetes validating admission webhook and Gatekeeper's external-data
//! provider on the HTTPS listener (certificate reloaded on change; the decision itself is
//! `audit_core::admission`), and Harbor's Pluggable Scanner API on a listener of its own
//! (`--harbor-listen`, HTTPS or plain HTTP). Modules: `review` (AdmissionReview envelope, images
//! of workloads), `engine` (resolution, caches, audits, deadline), `http` (routes, body
//! bounds), `gatekeeper`, `harbor` (the scanner adapter, its jobs and reports), `memo`
//! (expiring single-flight cache), `shared` (verdicts shared through Redis), `tls`, `metrics`.
//!
//! The crate never installs a log subscriber and never exits: the binary does.
#![deny(missing_docs)]
#![warn(unnameable_types)]

mod engine;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod gatekeeper;
mod harbor;
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

use audit_core::source::{RegistryPool, SourceOptions};
use audit_core::store::{LayerStore, MemoryStore, RedisStore, Tiered};
use audit_core::AuditorBuilder;
use audit_core::Policy;
use audit_core::SourceError;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use engine::Engine;
pub use engine::Settings;
pub use gatekeeper::MAX_PROVIDER_KEYS;
pub use harbor::{
    AdapterAuth, HarborConfig, API_KEY_HEADER, MAX_FIELD_BYTES, MAX_QUEUED,
    QUEUE_FULL_RETRY_AFTER_SECS, REFRESH_AFTER_SECS,
};

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
    /// Harbor's scanner adapter on its own listener, if wanted.
    pub harbor: Option<HarborConfig>,
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
    let fingerprint = builder.clone().build().analysis_fingerprint().to_owned();
    let shared = config.shared.as_ref().map(|s| {
        let scope = format!("{}\n{}", s.scope, fingerprint);
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
    let harbor = config.harbor.as_ref().map(|h| {
        let scope = format!(
            "{}\n{}",
            config.shared.as_ref().map_or("", |s| s.scope.as_str()),
            fingerprint
        );
        let redis = config.shared.as_ref().map(|s| Arc::clone(&s.redis));
        let adapter = Arc::new(harbor::Harbor::new(
            Arc::clone(&engine),
            h,
            source_options.clone(),
            redis,
            &scope,
        ));
        let _ = engine.harbor.set(Arc::downgrade(&adapter));
        (adapter, h.listen, h.tls)
    });
    let listen = Listen {
        addr: config.listen,
        certs,
        reload: config.tls_reload_interval,
        max_connections: config.max_connections.max(1),
        max_body: config.max_body_bytes,
        grace: config.shutdown_grace,
    };
    let result = rt.block_on(serve(engine, listen, config.prefetch, harbor));
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

/// What a listener serves.
#[derive(Clone)]
enum Routes {
    /// The webhook, the Gatekeeper provider and the probes.
    Webhook(Arc<Engine>),
    /// Harbor's scanner API and the probes.
    Harbor(Arc<harbor::Harbor>),
}

/// One listener's accept loop, until `stop` turns true. Connections share `slots` and are
/// tracked by `graceful`.
struct Accept<'a> {
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    routes: Routes,
    max_body: u64,
    slots: &'a Arc<Semaphore>,
    graceful: &'a hyper_util::server::graceful::GracefulShutdown,
}

async fn accept_loop(a: Accept<'_>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let permit = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            p = Arc::clone(a.slots).acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => return,
            },
        };
        let tcp = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            r = a.listener.accept() => match r {
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
        let (tls, routes, watcher, max_body) = (
            a.tls.clone(),
            a.routes.clone(),
            a.graceful.watcher(),
            a.max_body,
        );
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let routes = routes.clone();
                async move {
                    match routes {
                        Routes::Webhook(engine) => http::handle(engine, req, max_body).await,
                        Routes::Harbor(h) => harbor::handle(h, req, max_body).await,
                    }
                }
            });
            let builder = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.timer(TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT)
                    .keep_alive(true);
                b
            };
            let Some(acceptor) = tls else {
                let conn = builder.serve_connection(TokioIo::new(tcp), service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            };
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

async fn serve(
    engine: Arc<Engine>,
    l: Listen,
    prefetch: Vec<String>,
    harbor: Option<(Arc<harbor::Harbor>, SocketAddr, bool)>,
) -> Result<(), ServeError> {
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
    let harbor = match harbor {
        Some((h, at, tls)) => {
            let l = tokio::net::TcpListener::bind(at)
                .await
                .map_err(io_error(format!("listening on {at} (Harbor adapter)")))?;
            let local = l.local_addr().map_err(io_error("listening"))?;
            tracing::info!(addr = %local, tls, "harbor adapter listening");
            Some((h, l, tls))
        }
        None => None,
    };
    if !prefetch.is_empty() {
        engine.prefetch_at_start(prefetch);
    }
    let p = &engine.policy.admission;
    tracing::info!(addr = %local, deadline_ms = engine.settings.deadline.as_millis() as u64, deny_on = ?p.thresholds.deny_on, mode = ?p.thresholds.mode, failure_policy = ?p.failure_policy, "listening");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io_error("installing the SIGTERM handler"))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections));
    let webhook = accept_loop(
        Accept {
            listener,
            tls: Some(acceptor.clone()),
            routes: Routes::Webhook(Arc::clone(&engine)),
            max_body,
            slots: &slots,
            graceful: &graceful,
        },
        stop_rx.clone(),
    );
    let adapter = async {
        if let Some((h, listener, tls)) = harbor {
            accept_loop(
                Accept {
                    listener,
                    tls: tls.then(|| acceptor.clone()),
                    routes: Routes::Harbor(h),
                    max_body,
                    slots: &slots,
                    graceful: &graceful,
                },
                stop_rx.clone(),
            )
            .await;
        }
    };
    let signal = async {
        let s = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        };
        let _ = stop_tx.send(true);
        s
    };
    let (signal, (), ()) = tokio::join!(signal, webhook, adapter);
    engine.stop();
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
