//! HTTP to one registry host: the clients (trust, per-host `--insecure`, redirects, no proxy),
//! one request with retries (transport failures, timeouts, 429 with `Retry-After`, 5xx),
//! bounded reads of small bodies, and transport errors turned into [`SourceError`]s.
//!
//! Nothing here knows about credentials or the distribution API's paths: see `auth.rs` and
//! the store in `mod.rs`.

use std::io;
use std::time::{Duration, SystemTime};

use reqwest::header::RETRY_AFTER;
use reqwest::{Client, Response, Url};
use tokio::time::Instant;

use super::parse;
use crate::error::SourceError;
use crate::limits::{MAX_ERROR_BODY_BYTES, REGISTRY_MAX_REDIRECTS};
use crate::source::options::{RegistryLimits, SourceOptions};

/// Per registry host: HTTP clients and the scheme chosen by the first ping. Shared by every
/// store of a [`super::RegistryPool`].
pub(super) struct HostState {
    pub(super) created: Instant,
    secure: Client,
    /// Unverified-TLS client, only when the registry host is declared insecure.
    insecure: Option<Client>,
    /// `https://host` or `http://host`, decided by the first successful ping.
    pub(super) base: tokio::sync::OnceCell<String>,
}

impl HostState {
    /// Clients for `host`; `insecure` adds the unverified one. Must run inside the pool's
    /// runtime (the clients' connection pools live there).
    pub(super) fn new(
        opts: &SourceOptions,
        host: &str,
        insecure: bool,
    ) -> Result<Self, SourceError> {
        Ok(Self {
            created: Instant::now(),
            secure: build_client(opts, host, true)?,
            insecure: if insecure {
                Some(build_client(opts, host, false)?)
            } else {
                None
            },
            base: tokio::sync::OnceCell::new(),
        })
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

/// One registry host as one store sees it: its clients, bounds and retry policy.
pub(super) struct Transport {
    /// API host (`registry-1.docker.io` for Hub), as named in errors.
    pub(super) host: String,
    pub(super) hs: std::sync::Arc<HostState>,
    pub(super) opts: SourceOptions,
    pub(super) limits: RegistryLimits,
}

/// Why one attempt failed, before retries decide.
enum Attempt {
    Status(u16),
    RateLimited(Option<Duration>),
    Timeout,
    Transport(String),
}

impl Transport {
    /// Whether this host was declared insecure (plain HTTP or unverified TLS allowed).
    pub(super) fn insecure(&self) -> bool {
        self.hs.insecure.is_some()
    }

    /// The client for `url`: the unverified one only for hosts declared insecure.
    pub(super) fn client_for(&self, url: &Url) -> &Client {
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

    pub(super) fn backoff(&self, failures: u32) -> Duration {
        let d = self
            .limits
            .backoff_base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        d.min(self.limits.backoff_max)
    }

    /// Sends one request with retries on transport failures, timeouts, 429 and 5xx.
    pub(super) async fn send(
        &self,
        what: &str,
        mk: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, SourceError> {
        self.send_with(what, self.limits.max_attempts, mk).await
    }

    pub(super) async fn send_with(
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

    /// Reads a whole small body, refusing more than `limit` bytes.
    pub(super) async fn read_bounded(
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
    pub(super) async fn error_detail(&self, resp: Response) -> String {
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
}

/// The innermost cause's message (reqwest wraps hyper wraps io wraps rustls).
pub(crate) fn deepest(e: &(dyn std::error::Error + 'static)) -> String {
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
