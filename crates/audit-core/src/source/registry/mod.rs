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
//!
//! Files, from the bottom up: `parse.rs` (pure header and error-body parsers),
//! `transport.rs` (clients, one request with retries, bounded reads), `auth.rs` (challenges,
//! credentials, tokens), `pool.rs` (what stores share), `blob.rs` (blob bodies as a resumable
//! `Read`), `list.rs` (catalog and tag listings for sweeps), and this file: the store,
//! authenticated requests and manifests. Why this is not
//! built on oci-client, piece by piece with the tests that hold each guarantee:
//! `docs/architecture.md`, "Registry client: what oci-client carries and what we keep".

mod auth;
mod blob;
mod list;
pub(crate) mod parse;
mod pool;
mod transport;

use std::io::Read;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RANGE};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::time::Instant;

#[cfg(feature = "engines")]
pub(crate) use pool::Rt;
pub use pool::{RegistryPool, POOL_AUTH_MAX_AGE, POOL_MAX_ENTRIES};
#[cfg(feature = "engines")]
pub(crate) use transport::deepest;

use super::{BlobStore, RootObject};
use crate::digest::Digest;
use crate::error::SourceError;
use crate::limits::MAX_MANIFEST_BYTES;
use crate::oci::Descriptor;
use crate::source::options::SourceOptions;
use crate::source::reference::ImageReference;
use auth::RepoAuth;
use transport::Transport;

#[cfg(test)]
use crate::source::options::RegistryLimits;

/// Every manifest and index type the resolver understands, for `Accept`.
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// An image in a registry.
pub struct RegistryStore {
    shared: std::sync::Arc<pool::Shared>,
    inner: Inner,
}

struct Inner {
    reference: ImageReference,
    location: String,
    deadline: Instant,
    net: Transport,
    auth: RepoAuth,
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
                registry: self.inner.net.host.clone(),
                reason: "the registry source was used from inside an async runtime; call it from spawn_blocking".into(),
            });
        }
        let i = &self.inner;
        self.shared.rt.get().block_on(async {
            match tokio::time::timeout_at(i.deadline, fut).await {
                Ok(r) => r,
                Err(_) => Err(i.timed_out(what.to_string())),
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
                    registry: i.net.host.clone(),
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
                .net
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
        Ok(Box::new(blob::open(self, desc)?))
    }
}

impl Inner {
    /// The error for a store whose overall deadline passed during `what`.
    fn timed_out(&self, what: String) -> SourceError {
        SourceError::Timeout {
            registry: self.net.host.clone(),
            what,
            secs: self.net.limits.total_timeout.as_secs(),
        }
    }

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
                    registry: self.net.host.clone(),
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
            let bytes = self
                .net
                .read_bounded(resp, MAX_MANIFEST_BYTES, &what)
                .await?;
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

    /// Pings `/v2/` once per host: chooses the scheme and authenticates if asked to.
    async fn base(&self) -> Result<&str, SourceError> {
        let net = &self.net;
        net.hs
            .base
            .get_or_try_init(|| async {
                let schemes: &[&str] = if net.insecure() { &["https", "http"] } else { &["https"] };
                let mut last = None;
                for scheme in schemes {
                    let base = format!("{scheme}://{}", net.host);
                    let url = Url::parse(&format!("{base}/v2/"))
                        .map_err(|e| SourceError::BadReference { reference: self.reference.to_string(), reason: format!("registry URL: {e}") })?;
                    let client = net.client_for(&url);
                    // For an insecure host, HTTPS gets one try: any failure (a TLS error, or a
                    // plain-HTTP server hanging up on the handshake) falls back to HTTP.
                    let probe = *scheme == "https" && schemes.len() > 1;
                    let attempts = if probe { 1 } else { net.limits.max_attempts };
                    match net.send_with("GET /v2/", attempts, || client.get(url.clone())).await {
                        Ok(resp) => {
                            tracing::debug!(host = %net.host, status = resp.status().as_u16(), %scheme, "registry ping");
                            if resp.status() == StatusCode::UNAUTHORIZED {
                                self.auth.answer(net, resp.headers()).await?;
                            }
                            return Ok(base);
                        }
                        Err(e @ (SourceError::Tls { .. } | SourceError::Unreachable { .. } | SourceError::Timeout { .. })) if probe => {
                            tracing::debug!(host = %net.host, error = %e, "HTTPS probe failed; trying plain HTTP");
                            last = Some(e);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(last.unwrap_or_else(|| SourceError::Unreachable { registry: net.host.clone(), reason: "no scheme to try".into() }))
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
        let net = &self.net;
        let base = self.base().await?;
        let url = Url::parse(&format!("{base}{path}")).map_err(|e| SourceError::Registry {
            registry: net.host.clone(),
            reason: format!("bad URL for {what}: {e}"),
        })?;
        let client = net.client_for(&url);
        let mut may_reauth = true;
        loop {
            let header = self.auth.header(net).await?;
            let resp = net
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
            tracing::debug!(host = %net.host, %what, status = resp.status().as_u16(), "registry {method}");
            if resp.status() == StatusCode::UNAUTHORIZED {
                if may_reauth {
                    may_reauth = false;
                    self.auth.answer(net, resp.headers()).await?;
                    continue;
                }
                return Err(self.auth.unauthorized(&net.host));
            }
            return Ok(resp);
        }
    }

    /// Maps 401/403/404/other failures of a manifest or blob request.
    async fn check_status(&self, resp: Response, what: &str) -> Result<Response, SourceError> {
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::UNAUTHORIZED => Err(self.auth.unauthorized(&self.net.host)),
            StatusCode::FORBIDDEN => Err(SourceError::Forbidden {
                registry: self.net.host.clone(),
                repository: self.reference.repository().to_string(),
            }),
            s => {
                let detail = self.net.error_detail(resp).await;
                Err(SourceError::Registry {
                    registry: self.net.host.clone(),
                    reason: format!("HTTP {} for {what}{detail}", s.as_u16()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
