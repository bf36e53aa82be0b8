//! A registry as a [`BlobStore`]: the OCI distribution API over HTTP(S), with token auth,
//! retries and streaming blob reads (feature `registry`).
//!
//! Async stays inside this module. The store owns a small tokio runtime; [`BlobStore::open`]
//! returns a synchronous `Read` whose `read` drives the next body chunk with
//! `Handle::block_on` on the caller's thread — the layer worker threads of
//! [`crate::audit::Auditor`] — so layers stream straight into the same verifying pipeline as
//! local sources, concurrently (bounded by the auditor's `jobs`), with no temp file and no
//! whole-blob buffer. The layer pipeline checks each blob's digest and size while it streams;
//! manifests and configs go through the bounded, verified reads of [`super::resolve`].
//!
//! Protocol notes (distribution spec and `token.md`):
//! * `GET /v2/` first: it tells whether auth is needed (401 + `WWW-Authenticate`) and, for a
//!   host declared insecure, whether it speaks TLS at all (HTTPS with no verification is
//!   tried first, then plain HTTP, as Docker does).
//! * `Bearer` challenges: a token is fetched from the realm (`service`, and the challenge's
//!   `scope` or `repository:<name>:pull`), anonymously, with HTTP Basic credentials, or with
//!   an identity (refresh) token by `POST grant_type=refresh_token`. `token` and
//!   `access_token` are equivalent; `expires_in` defaults to 60 s. A 401 later in the pull
//!   (expired token, new scope) re-authenticates once for that request.
//! * `Basic` challenges: the credentials go on every request.
//! * Blob requests may redirect to another host; the HTTP client drops `Authorization` when
//!   the host changes.
//! * A body that breaks off (reset, stall, truncation) is resumed with `Range: bytes=N-`;
//!   a server that ignores the range answers 200 and the first N bytes are skipped.
//!
//! A long-running process (the admission webhook) keeps one [`RegistryPool`]: its runtime,
//! HTTP clients (with their connection pools), the `/v2/` ping result per host and the token
//! per repository are shared by every store taken from it, so a tag lookup costs one `HEAD`
//! on a warm connection. [`RegistryStore::new`] makes a private pool.

mod parse;

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE, RANGE, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use reqwest::{Client, Method, Response, StatusCode, Url};
use tokio::runtime::Runtime;
use tokio::time::Instant;

use super::options::{RegistryAuth, RegistryLimits, SourceOptions};
use super::reference::ImageReference;
use super::{BlobStore, RootObject};
use crate::digest::Digest;
use crate::error::SourceError;
use crate::limits::{
    MAX_ERROR_BODY_BYTES, MAX_MANIFEST_BYTES, MAX_TOKEN_RESPONSE_BYTES, REGISTRY_MAX_REDIRECTS,
};
use crate::oci::{self, Descriptor};

use parse::Challenge;

/// Every manifest and index type the resolver understands, for `Accept`.
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Tokens are refreshed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(5);

/// How long a [`RegistryPool`] keeps a repository's credentials and token: 10 minutes. After
/// that the next store for the repository looks its credentials up again, so a rotated
/// mounted docker config is picked up without a restart.
pub const POOL_AUTH_MAX_AGE: Duration = Duration::from_secs(600);

/// Most registry hosts, and most repositories, a [`RegistryPool`] keeps state for: 1,024
/// each (a few KiB per entry). Past it the oldest half is dropped and set up again on use.
pub const POOL_MAX_ENTRIES: usize = 1024;

/// Shared network state for many registry pulls (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct RegistryPool {
    shared: Arc<Shared>,
}

struct Shared {
    rt: Rt,
    opts: SourceOptions,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
    repos: Mutex<HashMap<(String, String), RepoAuth>>,
}

/// When a repository's auth state was made, and the state (shared by its stores).
type RepoAuth = (Instant, Arc<Mutex<AuthState>>);

/// The pool's runtime; shut down without blocking when the last user goes (dropping a
/// runtime inside another one would panic).
struct Rt(Option<Runtime>);

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Per registry host: HTTP clients and the scheme chosen by the first ping.
struct HostState {
    created: Instant,
    secure: Client,
    /// Unverified-TLS client, only when the registry host is declared insecure.
    insecure: Option<Client>,
    /// `https://host` or `http://host`, decided by the first successful ping.
    base: tokio::sync::OnceCell<String>,
}

/// An image in a registry.
pub struct RegistryStore {
    shared: Arc<Shared>,
    inner: Inner,
}

struct Inner {
    reference: ImageReference,
    /// API host (`registry-1.docker.io` for Hub).
    host: String,
    location: String,
    hs: Arc<HostState>,
    opts: SourceOptions,
    limits: RegistryLimits,
    deadline: Instant,
    auth: Arc<Mutex<AuthState>>,
}

#[derive(Default)]
struct AuthState {
    /// Looked up once, on the first 401.
    creds: Option<RegistryAuth>,
    header: Option<HeaderValue>,
    expires: Option<Instant>,
    /// The Bearer challenge the current token answers, to refresh it before it expires.
    bearer: Option<Challenge>,
}

/// Why one attempt failed, before retries decide.
enum Attempt {
    Status(u16),
    RateLimited(Option<Duration>),
    Timeout,
    Transport(String),
}

impl RegistryPool {
    /// A pool with its own small runtime (one network thread). Nothing is sent yet.
    pub fn new(opts: &SourceOptions) -> Result<Self, SourceError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("imgaudit-net")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| SourceError::Registry {
                registry: "registry".into(),
                reason: format!("starting the network runtime: {e}"),
            })?;
        Ok(Self {
            shared: Arc::new(Shared {
                rt: Rt(Some(rt)),
                opts: opts.clone(),
                hosts: Mutex::default(),
                repos: Mutex::default(),
            }),
        })
    }

    /// A store for `reference` sharing this pool's runtime, clients, pings and tokens. Its
    /// overall deadline ([`RegistryLimits::total_timeout`]) starts now.
    pub fn store(&self, reference: ImageReference) -> Result<RegistryStore, SourceError> {
        let sh = &self.shared;
        let opts = &sh.opts;
        let host = reference.api_host().to_string();
        let hs = {
            let mut hosts = sh.hosts.lock().unwrap_or_else(PoisonError::into_inner);
            match hosts.get(&host) {
                Some(h) => Arc::clone(h),
                None => {
                    let insecure =
                        opts.is_insecure(reference.registry()) || opts.is_insecure(&host);
                    let Some(rt) = &sh.rt.0 else {
                        unreachable!("runtime present until drop")
                    };
                    let _guard = rt.enter();
                    let h = Arc::new(HostState {
                        created: Instant::now(),
                        secure: build_client(opts, &host, true)?,
                        insecure: if insecure {
                            Some(build_client(opts, &host, false)?)
                        } else {
                            None
                        },
                        base: tokio::sync::OnceCell::new(),
                    });
                    prune(&mut hosts, |v| v.created);
                    hosts.insert(host.clone(), Arc::clone(&h));
                    h
                }
            }
        };
        let auth = {
            let mut repos = sh.repos.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (host.clone(), reference.repository().to_string());
            match repos.get(&key) {
                Some((t, a)) if t.elapsed() < POOL_AUTH_MAX_AGE => Arc::clone(a),
                _ => {
                    let a = Arc::new(Mutex::new(AuthState::default()));
                    prune(&mut repos, |v| v.0);
                    repos.insert(key, (Instant::now(), Arc::clone(&a)));
                    a
                }
            }
        };
        let inner = Inner {
            location: format!("docker://{reference}"),
            hs,
            limits: opts.limits.clone(),
            deadline: Instant::now() + opts.limits.total_timeout,
            opts: opts.clone(),
            auth,
            host,
            reference,
        };
        Ok(RegistryStore {
            shared: Arc::clone(&self.shared),
            inner,
        })
    }
}

impl RegistryPool {
    /// [`RegistryStore::resolve_digest`] for async callers: the request runs on the pool's
    /// runtime and the returned future can be awaited from any runtime (no blocking thread).
    pub fn resolve_digest(
        &self,
        reference: ImageReference,
    ) -> impl std::future::Future<Output = Result<Digest, SourceError>> + Send + 'static {
        let store = self.store(reference);
        let handle = self.shared.rt.0.as_ref().map(|rt| rt.handle().clone());
        async move {
            let RegistryStore { inner, .. } = store?;
            if let Some(d) = inner.reference.digest() {
                return Ok(d.clone());
            }
            let Some(handle) = handle else {
                unreachable!("runtime present until drop")
            };
            let host = inner.host.clone();
            let task = handle.spawn(async move {
                let what = format!("resolving {}", inner.reference);
                match tokio::time::timeout_at(inner.deadline, inner.resolve()).await {
                    Ok(r) => r,
                    Err(_) => Err(SourceError::Timeout {
                        registry: inner.host.clone(),
                        what,
                        secs: inner.limits.total_timeout.as_secs(),
                    }),
                }
            });
            task.await.map_err(|e| SourceError::Registry {
                registry: host,
                reason: format!("resolution task failed: {e}"),
            })?
        }
    }
}

/// Drops the older half of a map that reached [`POOL_MAX_ENTRIES`].
fn prune<K: Clone + Eq + std::hash::Hash, V>(
    m: &mut HashMap<K, V>,
    created: impl Fn(&V) -> Instant,
) {
    if m.len() < POOL_MAX_ENTRIES {
        return;
    }
    let mut ages: Vec<(Instant, K)> = m.iter().map(|(k, v)| (created(v), k.clone())).collect();
    ages.sort_by_key(|(t, _)| *t);
    for (_, k) in ages.into_iter().take(POOL_MAX_ENTRIES / 2) {
        m.remove(&k);
    }
}

impl RegistryStore {
    /// Prepares a store for `reference` with a private [`RegistryPool`]. Nothing is sent
    /// until [`BlobStore::root`].
    pub fn new(reference: ImageReference, opts: &SourceOptions) -> Result<Self, SourceError> {
        RegistryPool::new(opts)?.store(reference)
    }

    /// The reference this store pulls.
    pub fn reference(&self) -> &ImageReference {
        &self.inner.reference
    }

    /// The digest the reference names now. A digest reference answers at once; a tag costs
    /// one `HEAD` of the manifest (its `Docker-Content-Digest`), or a `GET` whose bytes are
    /// hashed when the registry sends no digest header. For a multi-platform image this is
    /// the index digest.
    pub fn resolve_digest(&self) -> Result<Digest, SourceError> {
        if let Some(d) = self.inner.reference.digest() {
            return Ok(d.clone());
        }
        self.block_on(
            &format!("resolving {}", self.inner.reference),
            self.inner.resolve(),
        )
    }

    /// Runs a future on the store's runtime from a synchronous caller, under the overall
    /// deadline.
    fn block_on<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SourceError::Registry {
                registry: self.inner.host.clone(),
                reason: "the registry source was used from inside an async runtime; call it from spawn_blocking".into(),
            });
        }
        let Some(rt) = &self.shared.rt.0 else {
            unreachable!("runtime present until drop")
        };
        let i = &self.inner;
        rt.block_on(async {
            match tokio::time::timeout_at(i.deadline, fut).await {
                Ok(r) => r,
                Err(_) => Err(SourceError::Timeout {
                    registry: i.host.clone(),
                    what: what.to_string(),
                    secs: i.limits.total_timeout.as_secs(),
                }),
            }
        })
    }
}

impl BlobStore for RegistryStore {
    fn location(&self) -> String {
        self.inner.location.clone()
    }

    fn kind(&self) -> &'static str {
        "registry"
    }

    fn root(&self) -> Result<RootObject, SourceError> {
        let i = &self.inner;
        let r = &i.reference;
        let target = r.target();
        let shown = match r.digest() {
            Some(d) => format!("{}@{d}", r.repository()),
            None => format!("{}:{target}", r.repository()),
        };
        self.block_on(&format!("fetching manifest {shown}"), async {
            let resp = i
                .get(
                    &format!("/v2/{}/manifests/{target}", r.repository()),
                    Some(ACCEPT_MANIFESTS),
                    None,
                    &format!("manifest {shown}"),
                )
                .await?;
            let status = resp.status();
            if status == StatusCode::NOT_FOUND {
                return Err(SourceError::ManifestUnknown {
                    registry: i.host.clone(),
                    reference: shown,
                });
            }
            let resp = i.check_status(resp, &format!("manifest {shown}")).await?;
            let media_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
                .filter(|v| !v.is_empty());
            if media_type
                .as_deref()
                .is_some_and(|m| m.starts_with("application/vnd.docker.distribution.manifest.v1"))
            {
                return Err(SourceError::NotAnImage {
                    reason: format!(
                        "{shown} is a Docker schema 1 manifest, which is not supported"
                    ),
                });
            }
            let header_digest = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<Digest>().ok());
            let bytes = i
                .read_bounded(resp, MAX_MANIFEST_BYTES, &format!("manifest {shown}"))
                .await?;
            // A digest in the reference is authoritative; otherwise the registry's header
            // (which `resolve` checks against the bytes), otherwise computed there.
            let digest = r.digest().cloned().or(header_digest);
            Ok(RootObject {
                bytes,
                media_type,
                digest,
                synthetic: false,
            })
        })
    }

    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let i = &self.inner;
        let is_manifest = matches!(
            desc.media_type.as_str(),
            oci::media::OCI_INDEX
                | oci::media::DOCKER_LIST
                | oci::media::OCI_MANIFEST
                | oci::media::DOCKER_MANIFEST
        );
        let repo = i.reference.repository();
        let manifest_path = format!("/v2/{repo}/manifests/{}", desc.digest);
        let mut path = if is_manifest {
            manifest_path.clone()
        } else {
            format!("/v2/{repo}/blobs/{}", desc.digest)
        };
        let what = format!(
            "{} {}",
            if is_manifest { "manifest" } else { "blob" },
            desc.digest
        );
        let mut accept = is_manifest.then_some(ACCEPT_MANIFESTS);
        let resp = self.block_on(&format!("fetching {what}"), async {
            let mut resp = i.get(&path, accept, None, &what).await?;
            if resp.status() == StatusCode::NOT_FOUND && desc.media_type.is_empty() {
                // An index entry without a media type may name a manifest, which registries
                // serve only from the manifests endpoint.
                let m = i
                    .get(&manifest_path, Some(ACCEPT_MANIFESTS), None, &what)
                    .await?;
                if m.status().is_success() {
                    (resp, path, accept) = (m, manifest_path.clone(), Some(ACCEPT_MANIFESTS));
                }
            }
            i.check_blob_response(resp, desc, 0, &what).await
        })?;
        Ok(Box::new(BlobReader {
            store: self,
            path,
            accept,
            what,
            desc: desc.clone(),
            resp: Some(resp),
            chunk: bytes::Bytes::new(),
            pos: 0,
            skip: 0,
            failures: 0,
            window: None,
            failed: None,
        }))
    }
}

fn build_client(opts: &SourceOptions, host: &str, verify: bool) -> Result<Client, SourceError> {
    let tls = |reason: String| SourceError::Tls {
        registry: host.to_string(),
        reason,
    };
    // reqwest's `rustls-no-provider` takes the process default; ring unless the embedding
    // program installed another one first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = Client::builder()
        .tls_backend_rustls()
        .no_proxy()
        .connect_timeout(opts.limits.connect_timeout)
        .redirect(reqwest::redirect::Policy::limited(REGISTRY_MAX_REDIRECTS))
        .user_agent(concat!("imgaudit/", env!("CARGO_PKG_VERSION")));
    for pem in &opts.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| tls(format!("reading a CA certificate: {}", deepest(&e))))?;
        if certs.is_empty() {
            return Err(tls("a CA file holds no PEM certificate".into()));
        }
        b = b.tls_certs_merge(certs);
    }
    if !verify {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| tls(format!("setting up TLS: {}", deepest(&e))))
}

/// The innermost cause's message (reqwest wraps hyper wraps io wraps rustls).
fn deepest(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = next_cause(cur) {
        cur = next;
    }
    parse::one_line(&cur.to_string(), 300)
}

/// The next error in a chain. `io::Error::source` skips the error an `io::Error` wraps, so
/// look inside those explicitly.
fn next_cause<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    match e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
        Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    }
}

/// Whether a transport error is a TLS failure (permanent: not retried).
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            let hint = match r {
                rustls::Error::InvalidMessage(_) => " (is it a plain-HTTP registry?)",
                _ => "",
            };
            return Some(format!("{r}{hint}"));
        }
        cur = next_cause(c);
    }
    None
}

impl Inner {
    /// `HEAD` of the tag's manifest; a `GET` (digest header, else the hash of the bytes) when
    /// the registry sends no digest header.
    async fn resolve(&self) -> Result<Digest, SourceError> {
        let r = &self.reference;
        let target = r.target();
        let shown = format!("{}:{target}", r.repository());
        let path = format!("/v2/{}/manifests/{target}", r.repository());
        let what = format!("manifest {shown}");
        for method in [Method::HEAD, Method::GET] {
            let resp = self
                .request(method.clone(), &path, Some(ACCEPT_MANIFESTS), None, &what)
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Err(SourceError::ManifestUnknown {
                    registry: self.host.clone(),
                    reference: shown,
                });
            }
            let resp = self.check_status(resp, &what).await?;
            let header = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<Digest>().ok());
            if method == Method::HEAD {
                if let Some(d) = header {
                    return Ok(d);
                }
                continue;
            }
            let bytes = self.read_bounded(resp, MAX_MANIFEST_BYTES, &what).await?;
            let computed = Digest::sha256_of(&bytes);
            return match header {
                Some(d) if d.algorithm() == computed.algorithm() && d != computed => {
                    Err(SourceError::DigestMismatch {
                        what: what.clone(),
                        expected: d,
                        actual: computed,
                    })
                }
                Some(d) => Ok(d),
                None => Ok(computed),
            };
        }
        unreachable!("GET returns")
    }

    fn client_for(&self, url: &Url) -> &Client {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        };
        match &self.hs.insecure {
            Some(c) if host == self.host || self.opts.is_insecure(&host) => c,
            _ => &self.hs.secure,
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let d = self
            .limits
            .backoff_base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        d.min(self.limits.backoff_max)
    }

    /// Sends one request with retries on transport failures, timeouts, 429 and 5xx.
    async fn send(
        &self,
        what: &str,
        mk: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, SourceError> {
        self.send_with(what, self.limits.max_attempts, mk).await
    }

    async fn send_with(
        &self,
        what: &str,
        max_attempts: u32,
        mk: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, SourceError> {
        let l = &self.limits;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let fail = match tokio::time::timeout(l.request_timeout, mk().send()).await {
                Ok(Ok(resp)) => {
                    let st = resp.status().as_u16();
                    if st == 429 {
                        let ra = resp
                            .headers()
                            .get(RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| parse::retry_after(v, SystemTime::now()));
                        if let Some(d) = ra.filter(|d| *d > l.max_retry_after) {
                            return Err(SourceError::RateLimited {
                                registry: self.host.clone(),
                                retry_after: Some(d.as_secs()),
                            });
                        }
                        Attempt::RateLimited(ra)
                    } else if matches!(st, 500 | 502 | 503 | 504) {
                        Attempt::Status(st)
                    } else {
                        return Ok(resp);
                    }
                }
                Ok(Err(e)) => {
                    if let Some(reason) = tls_failure(&e) {
                        let registry = e
                            .url()
                            .and_then(|u| u.host_str())
                            .map_or_else(|| self.host.clone(), |h| h.to_string());
                        let registry = if registry == self.host.split(':').next().unwrap_or("") {
                            self.host.clone()
                        } else {
                            registry
                        };
                        return Err(SourceError::Tls { registry, reason });
                    }
                    Attempt::Transport(deepest(&e))
                }
                Err(_) => Attempt::Timeout,
            };
            if attempt >= max_attempts {
                return Err(match fail {
                    Attempt::RateLimited(ra) => SourceError::RateLimited {
                        registry: self.host.clone(),
                        retry_after: ra.map(|d| d.as_secs()),
                    },
                    Attempt::Status(st) => SourceError::Registry {
                        registry: self.host.clone(),
                        reason: format!("HTTP {st} for {what} (after {attempt} attempts)"),
                    },
                    Attempt::Timeout => SourceError::Timeout {
                        registry: self.host.clone(),
                        what: format!("waiting for {what} (after {attempt} attempts)"),
                        secs: l.request_timeout.as_secs(),
                    },
                    Attempt::Transport(reason) => SourceError::Unreachable {
                        registry: self.host.clone(),
                        reason: format!("{reason} (after {attempt} attempts)"),
                    },
                });
            }
            let delay = match &fail {
                Attempt::RateLimited(Some(d)) => *d,
                _ => self.backoff(attempt),
            };
            let why = match &fail {
                Attempt::RateLimited(_) => "429".to_string(),
                Attempt::Status(s) => s.to_string(),
                Attempt::Timeout => "timeout".into(),
                Attempt::Transport(t) => t.clone(),
            };
            tracing::debug!(host = %self.host, %what, attempt, %why, delay_ms = delay.as_millis() as u64, "registry request failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Pings `/v2/` once: chooses the scheme and authenticates if asked to.
    async fn base(&self) -> Result<&str, SourceError> {
        self.hs
            .base
            .get_or_try_init(|| async {
                let schemes: &[&str] = if self.hs.insecure.is_some() { &["https", "http"] } else { &["https"] };
                let mut last = None;
                for scheme in schemes {
                    let base = format!("{scheme}://{}", self.host);
                    let url = Url::parse(&format!("{base}/v2/"))
                        .map_err(|e| SourceError::BadReference { reference: self.reference.to_string(), reason: format!("registry URL: {e}") })?;
                    let client = self.client_for(&url);
                    // For an insecure host, HTTPS gets one try: any failure (a TLS error, or a
                    // plain-HTTP server hanging up on the handshake) falls back to HTTP.
                    let probe = *scheme == "https" && schemes.len() > 1;
                    let attempts = if probe { 1 } else { self.limits.max_attempts };
                    match self.send_with("GET /v2/", attempts, || client.get(url.clone())).await {
                        Ok(resp) => {
                            tracing::debug!(host = %self.host, status = resp.status().as_u16(), %scheme, "registry ping");
                            if resp.status() == StatusCode::UNAUTHORIZED {
                                self.authenticate(resp.headers()).await?;
                            }
                            return Ok(base);
                        }
                        Err(e @ (SourceError::Tls { .. } | SourceError::Unreachable { .. } | SourceError::Timeout { .. })) if probe => {
                            tracing::debug!(host = %self.host, error = %e, "HTTPS probe failed; trying plain HTTP");
                            last = Some(e);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(last.unwrap_or_else(|| SourceError::Unreachable { registry: self.host.clone(), reason: "no scheme to try".into() }))
            })
            .await
            .map(String::as_str)
    }

    /// GET with the current credentials; a 401 re-authenticates once.
    async fn get(
        &self,
        path: &str,
        accept: Option<&'static str>,
        range_from: Option<u64>,
        what: &str,
    ) -> Result<Response, SourceError> {
        self.request(Method::GET, path, accept, range_from, what)
            .await
    }

    /// A request with the current credentials; a 401 re-authenticates once.
    async fn request(
        &self,
        method: Method,
        path: &str,
        accept: Option<&'static str>,
        range_from: Option<u64>,
        what: &str,
    ) -> Result<Response, SourceError> {
        let base = self.base().await?;
        let url = Url::parse(&format!("{base}{path}")).map_err(|e| SourceError::Registry {
            registry: self.host.clone(),
            reason: format!("bad URL for {what}: {e}"),
        })?;
        let client = self.client_for(&url);
        let mut may_reauth = true;
        loop {
            let header = self.auth_header().await?;
            let resp = self
                .send(what, || {
                    let mut r = client.request(method.clone(), url.clone());
                    if let Some(h) = &header {
                        r = r.header(AUTHORIZATION, h.clone());
                    }
                    if let Some(a) = accept {
                        r = r.header(ACCEPT, a);
                    }
                    if let Some(n) = range_from.filter(|n| *n > 0) {
                        r = r.header(RANGE, format!("bytes={n}-"));
                    }
                    r
                })
                .await?;
            tracing::debug!(host = %self.host, %what, status = resp.status().as_u16(), "registry {method}");
            if resp.status() == StatusCode::UNAUTHORIZED {
                if may_reauth {
                    may_reauth = false;
                    self.authenticate(resp.headers()).await?;
                    continue;
                }
                return Err(self.unauthorized());
            }
            return Ok(resp);
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.auth.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `Authorization` value to send, refreshing a Bearer token about to expire.
    async fn auth_header(&self) -> Result<Option<HeaderValue>, SourceError> {
        let refresh = {
            let s = self.state();
            match (s.expires, &s.bearer) {
                (Some(exp), Some(ch)) if Instant::now() + TOKEN_MARGIN >= exp => Some(ch.clone()),
                _ => None,
            }
        };
        if let Some(ch) = refresh {
            let creds = self.creds()?;
            self.bearer(&ch, &creds).await?;
        }
        Ok(self.state().header.clone())
    }

    fn creds(&self) -> Result<RegistryAuth, SourceError> {
        if let Some(c) = &self.state().creds {
            return Ok(c.clone());
        }
        let registry = self.reference.registry();
        let c = match &self.opts.credentials {
            None => RegistryAuth::Anonymous,
            Some(p) => p.lookup(registry).map_err(|e| SourceError::Credentials {
                registry: registry.to_string(),
                reason: parse::one_line(&e.to_string(), 300),
            })?,
        };
        tracing::debug!(
            registry,
            anonymous = c.is_anonymous(),
            "credentials looked up"
        );
        self.state().creds = Some(c.clone());
        Ok(c)
    }

    fn unauthorized(&self) -> SourceError {
        let anonymous = self
            .state()
            .creds
            .as_ref()
            .is_none_or(RegistryAuth::is_anonymous);
        let reason = if anonymous {
            format!(
                "authentication required to pull {} and no credentials were found for {} (or the repository does not exist)",
                self.reference.repository(),
                self.reference.registry()
            )
        } else {
            format!(
                "credentials for {} were rejected (HTTP 401)",
                self.reference.registry()
            )
        };
        SourceError::Unauthorized {
            registry: self.host.clone(),
            reason,
        }
    }

    /// Answers the challenges of a 401 response.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<(), SourceError> {
        let chs: Vec<Challenge> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse::challenges)
            .collect();
        let creds = self.creds()?;
        if let Some(ch) = chs.iter().find(|c| c.scheme == "bearer") {
            return match &creds {
                RegistryAuth::Bearer(t) => {
                    if self.state().header.is_some() {
                        return Err(self.unauthorized());
                    }
                    self.set_header(format!("Bearer {}", t.expose()), None, None)
                }
                _ => self.bearer(ch, &creds).await,
            };
        }
        if chs.iter().any(|c| c.scheme == "basic") {
            return match &creds {
                RegistryAuth::Basic { username, password } => {
                    if self.state().header.is_some() {
                        return Err(self.unauthorized());
                    }
                    use base64::Engine as _;
                    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.expose()));
                    self.set_header(format!("Basic {enc}"), None, None)
                }
                RegistryAuth::Anonymous => Err(self.unauthorized()),
                _ => Err(SourceError::Unauthorized {
                    registry: self.host.clone(),
                    reason: "the registry wants a user name and password (Basic auth), but only a token is configured".into(),
                }),
            };
        }
        if chs.is_empty() {
            return Err(self.unauthorized());
        }
        let schemes: Vec<&str> = chs.iter().map(|c| c.scheme.as_str()).collect();
        Err(SourceError::Unauthorized {
            registry: self.host.clone(),
            reason: format!("unsupported authentication scheme {}", schemes.join(", ")),
        })
    }

    fn set_header(
        &self,
        value: String,
        expires: Option<Instant>,
        bearer: Option<Challenge>,
    ) -> Result<(), SourceError> {
        let mut h = HeaderValue::from_str(&value).map_err(|_| SourceError::Unauthorized {
            registry: self.host.clone(),
            reason: "the credentials contain characters that cannot be sent in an HTTP header"
                .into(),
        })?;
        h.set_sensitive(true);
        let mut s = self.state();
        s.header = Some(h);
        s.expires = expires;
        s.bearer = bearer;
        Ok(())
    }

    /// Fetches a token from a Bearer challenge's realm.
    async fn bearer(&self, ch: &Challenge, creds: &RegistryAuth) -> Result<(), SourceError> {
        let bad = |reason: String| SourceError::Registry {
            registry: self.host.clone(),
            reason,
        };
        let realm = ch
            .param("realm")
            .ok_or_else(|| bad("Bearer challenge without a realm".into()))?;
        let mut url = Url::parse(realm).map_err(|_| {
            bad(format!(
                "token realm {:?} is not a URL",
                parse::one_line(realm, 100)
            ))
        })?;
        let realm_host = url.host_str().unwrap_or("").to_string();
        let realm_hostport = url
            .port()
            .map_or_else(|| realm_host.clone(), |p| format!("{realm_host}:{p}"));
        match url.scheme() {
            "https" => {}
            "http"
                if self.hs.insecure.is_some()
                    && (realm_hostport == self.host || self.opts.is_insecure(&realm_hostport)) => {}
            s => {
                return Err(bad(format!(
                    "token realm uses {s}://, which is only accepted for hosts given as insecure"
                )))
            }
        }
        let service = ch.param("service").map(str::to_string);
        let scopes: Vec<String> = match ch.param("scope") {
            Some(s) if !s.is_empty() => s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
            _ => vec![format!("repository:{}:pull", self.reference.repository())],
        };
        let client = self.client_for(&url);
        let what = format!("token from {realm_host}");
        let resp = match creds {
            RegistryAuth::IdentityToken(tok) => {
                let mut form: Vec<(&str, String)> = vec![
                    ("grant_type", "refresh_token".into()),
                    ("refresh_token", tok.expose().to_string()),
                    ("client_id", "imgaudit".into()),
                    ("scope", scopes.join(" ")),
                ];
                if let Some(s) = &service {
                    form.push(("service", s.clone()));
                }
                self.send(&what, || client.post(url.clone()).form(&form))
                    .await?
            }
            _ => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = &service {
                        q.append_pair("service", s);
                    }
                    for s in &scopes {
                        q.append_pair("scope", s);
                    }
                }
                self.send(&what, || {
                    let r = client.get(url.clone());
                    match creds {
                        RegistryAuth::Basic { username, password } => {
                            r.basic_auth(username, Some(password.expose()))
                        }
                        _ => r,
                    }
                })
                .await?
            }
        };
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(SourceError::Unauthorized {
                    registry: self.host.clone(),
                    reason: format!(
                        "credentials for {} were rejected by the token service {realm_host}",
                        self.reference.registry()
                    ),
                })
            }
            st => {
                let detail = self.error_detail(resp).await;
                return Err(bad(format!(
                    "token service {realm_host} answered HTTP {}{detail}",
                    st.as_u16()
                )));
            }
        }
        let body = self
            .read_bounded(resp, MAX_TOKEN_RESPONSE_BYTES, &what)
            .await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("token service {realm_host}: invalid JSON: {e}")))?;
        let token = t
            .token
            .filter(|s| !s.is_empty())
            .or(t.access_token.filter(|s| !s.is_empty()))
            .ok_or_else(|| bad(format!("token service {realm_host} returned no token")))?;
        let ttl = Duration::from_secs(t.expires_in.unwrap_or(60).max(10));
        tracing::debug!(host = %self.host, ttl_s = ttl.as_secs(), "bearer token obtained");
        self.set_header(
            format!("Bearer {token}"),
            Some(Instant::now() + ttl),
            Some(ch.clone()),
        )
    }

    /// Reads a whole small body, refusing more than `limit` bytes.
    async fn read_bounded(
        &self,
        mut resp: Response,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, SourceError> {
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(SourceError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        let mut buf = Vec::new();
        let read = async {
            while let Some(c) = resp.chunk().await.map_err(|e| deepest(&e))? {
                if (buf.len() + c.len()) as u64 > limit {
                    return Ok(false);
                }
                buf.extend_from_slice(&c);
            }
            Ok::<bool, String>(true)
        };
        match tokio::time::timeout(self.limits.request_timeout, read).await {
            Ok(Ok(true)) => Ok(buf),
            Ok(Ok(false)) => Err(SourceError::TooLarge {
                what: what.to_string(),
                limit,
            }),
            Ok(Err(reason)) => Err(SourceError::Registry {
                registry: self.host.clone(),
                reason: format!("reading {what}: {reason}"),
            }),
            Err(_) => Err(SourceError::Timeout {
                registry: self.host.clone(),
                what: format!("reading {what}"),
                secs: self.limits.request_timeout.as_secs(),
            }),
        }
    }

    /// `: CODE: message` from an error body, or nothing.
    async fn error_detail(&self, resp: Response) -> String {
        match self
            .read_bounded(resp, MAX_ERROR_BODY_BYTES, "error body")
            .await
        {
            Ok(b) => parse::error_summary(&b)
                .map(|s| format!(": {s}"))
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Maps 401/403/404/other failures of a manifest or blob request.
    async fn check_status(&self, resp: Response, what: &str) -> Result<Response, SourceError> {
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
            StatusCode::FORBIDDEN => Err(SourceError::Forbidden {
                registry: self.host.clone(),
                repository: self.reference.repository().to_string(),
            }),
            s => {
                let detail = self.error_detail(resp).await;
                Err(SourceError::Registry {
                    registry: self.host.clone(),
                    reason: format!("HTTP {} for {what}{detail}", s.as_u16()),
                })
            }
        }
    }

    /// Checks a blob response: status, announced length, and for a resumed request where
    /// the body starts. Returns the bytes to skip (a 200 answer to a range request).
    async fn check_blob_response(
        &self,
        resp: Response,
        desc: &Descriptor,
        from: u64,
        what: &str,
    ) -> Result<Response, SourceError> {
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(SourceError::MissingBlob {
                digest: desc.digest.clone(),
                location: self.location.clone(),
            });
        }
        let resp = self.check_status(resp, what).await?;
        let remaining = desc.size.saturating_sub(from);
        if let Some(n) = resp.content_length() {
            let expect = if resp.status() == StatusCode::PARTIAL_CONTENT {
                remaining
            } else {
                desc.size
            };
            if n > expect {
                return Err(SourceError::Registry {
                    registry: self.host.clone(),
                    reason: format!(
                        "{what}: the registry announces {n} bytes, the descriptor says {expect}"
                    ),
                });
            }
        }
        Ok(resp)
    }
}

/// A blob body as a synchronous reader; resumes after transport failures.
struct BlobReader<'a> {
    store: &'a RegistryStore,
    path: String,
    accept: Option<&'static str>,
    what: String,
    desc: Descriptor,
    resp: Option<Response>,
    chunk: bytes::Bytes,
    /// Bytes handed to the caller.
    pos: u64,
    /// Bytes still to discard from the current response (a 200 answer to a range request).
    skip: u64,
    failures: u32,
    /// Start of the throughput window and bytes seen in it.
    window: Option<(Instant, u64)>,
    /// The error that ended the transfer: later reads repeat it instead of retrying again.
    failed: Option<String>,
}

impl BlobReader<'_> {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, SourceError> {
        let i = &self.store.inner;
        let l = &i.limits;
        loop {
            if self.resp.is_none() {
                let resp = i
                    .get(&self.path, self.accept, Some(self.pos), &self.what)
                    .await?;
                let resp = i
                    .check_blob_response(resp, &self.desc, self.pos, &self.what)
                    .await?;
                self.skip = if resp.status() == StatusCode::PARTIAL_CONTENT {
                    let start = resp
                        .headers()
                        .get(CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("bytes "))
                        .and_then(|v| v.split('-').next())
                        .and_then(|v| v.parse::<u64>().ok());
                    if start != Some(self.pos) {
                        return Err(SourceError::Registry {
                            registry: i.host.clone(),
                            reason: format!("{}: resumed at the wrong offset", self.what),
                        });
                    }
                    0
                } else {
                    self.pos
                };
                self.resp = Some(resp);
                self.window = None;
            }
            let Some(resp) = self.resp.as_mut() else {
                unreachable!()
            };
            let now = Instant::now();
            let (w_start, w_bytes) = *self.window.get_or_insert((now, 0));
            let failure = match tokio::time::timeout(l.idle_timeout, resp.chunk()).await {
                Ok(Ok(Some(mut c))) => {
                    let got = c.len() as u64;
                    if self.skip > 0 {
                        let k = self.skip.min(got);
                        c = c.slice(k as usize..);
                        self.skip -= k;
                    }
                    let now = Instant::now();
                    let (mut ws, mut wb) = (w_start, w_bytes + got);
                    let elapsed = now.duration_since(ws);
                    let mut stalled = None;
                    if elapsed >= l.rate_window {
                        let floor = (l.min_bytes_per_sec as f64 * elapsed.as_secs_f64()) as u64;
                        if wb < floor {
                            stalled = Some(format!(
                                "transfer slower than {} bytes/s",
                                l.min_bytes_per_sec
                            ));
                        }
                        (ws, wb) = (now, 0);
                    }
                    self.window = Some((ws, wb));
                    match stalled {
                        Some(s) => s,
                        None if c.is_empty() => continue,
                        None => return Ok(Some(c)),
                    }
                }
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => deepest(&e),
                Err(_) => format!("no data for {} s", l.idle_timeout.as_secs()),
            };
            self.failures += 1;
            self.resp = None;
            if self.failures >= l.max_attempts {
                return Err(SourceError::Unreachable {
                    registry: i.host.clone(),
                    reason: format!(
                        "{}: {failure} at byte {} (after {} attempts)",
                        self.what, self.pos, self.failures
                    ),
                });
            }
            tracing::debug!(host = %i.host, what = %self.what, pos = self.pos, %failure, "blob transfer broke off; resuming");
            tokio::time::sleep(i.backoff(self.failures)).await;
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if let Some(e) = &self.failed {
            return Err(io::Error::other(e.clone()));
        }
        if self.chunk.is_empty() {
            let store = self.store;
            let what = format!("fetching {}", self.what);
            match store.block_on(&what, self.next_chunk()) {
                Ok(Some(c)) => self.chunk = c,
                Ok(None) => return Ok(0),
                Err(e) => {
                    let msg = e.to_string();
                    self.failed = Some(msg.clone());
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
