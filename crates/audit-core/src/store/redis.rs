//! Redis: one store shared by webhook replicas and sweep workers.
//!
//! Keys follow trivy's scheme (`fanal::blob::<id>`, `pkg/cache/redis.go`):
//! `imgaudit::<LayerKey::name>` for layer analyses, and whatever names callers give
//! [`RedisStore::get_sealed`] / [`RedisStore::put_sealed`] (the webhook's verdicts). Every
//! value is sealed with HMAC-SHA256 under the shared key and has a TTL (`SET … EX`). Reads
//! use `GETRANGE key 0 MAX`, so a forged huge value costs at most the bound.
//!
//! Sync connections (the store is called from layer worker threads) with connect, read and
//! write timeouts, kept in a small pool. A failure opens a circuit breaker: for
//! [`REDIS_RETRY_AFTER_SECS`] no request is sent (each is a miss, counted), then one request
//! probes; so a slow or dead Redis costs about one timeout per period, and is logged once
//! when it goes away and once when it comes back. The password never appears in logs or
//! errors: only [`RedisOptions::redacted_url`] is shown.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::codec::{self, Seal};
use super::{Counters, LayerKey, LayerStore, StoreError, StoreStats};
use crate::layer::LayerAnalysis;
use crate::limits::{
    MAX_STORE_ENTRY_BYTES, REDIS_ENTRY_TTL_SECS, REDIS_RETRY_AFTER_SECS, REDIS_TIMEOUT_MS,
};

/// Connections kept open between requests.
const POOL_SIZE: usize = 8;

/// How to reach Redis and seal its entries.
#[derive(Clone)]
pub struct RedisOptions {
    url: String,
    redacted: String,
    key: Arc<[u8]>,
    ttl: Duration,
    timeout: Duration,
    retry_after: Duration,
    prefix: String,
    ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.redacted)
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisOptions {
    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` or `rediss://…` (TLS through rustls, the
    /// system's roots), and the shared key entries are sealed with.
    pub fn new(url: &str, key: Vec<u8>) -> Result<Self, StoreError> {
        let redacted = redact_url(url);
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(StoreError::Config {
                reason: format!("{redacted}: not a redis:// or rediss:// URL"),
            });
        }
        if key.is_empty() {
            return Err(StoreError::Config {
                reason: "the shared key is empty".into(),
            });
        }
        Ok(Self {
            url: url.to_string(),
            redacted,
            key: key.into(),
            ttl: Duration::from_secs(REDIS_ENTRY_TTL_SECS),
            timeout: Duration::from_millis(REDIS_TIMEOUT_MS),
            retry_after: Duration::from_secs(REDIS_RETRY_AFTER_SECS),
            prefix: "imgaudit::".into(),
            ca_pem: None,
        })
    }

    /// Lifetime of written entries (default [`REDIS_ENTRY_TTL_SECS`]).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Connect, read and write timeout (default [`REDIS_TIMEOUT_MS`]).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t.max(Duration::from_millis(1));
        self
    }

    /// How long the circuit stays open after a failure (default [`REDIS_RETRY_AFTER_SECS`]).
    pub fn retry_after(mut self, t: Duration) -> Self {
        self.retry_after = t;
        self
    }

    /// Prefix of every key (default `imgaudit::`).
    pub fn prefix(mut self, p: impl Into<String>) -> Self {
        self.prefix = p.into();
        self
    }

    /// PEM CA certificates to trust for `rediss://` instead of the system's.
    pub fn ca_pem(mut self, pem: Vec<u8>) -> Self {
        self.ca_pem = Some(pem);
        self
    }

    /// The URL with any user name and password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }
}

/// `scheme://***@host…` when the URL has user information.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".into();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The Redis [`LayerStore`], with sealed get/put for other shared values and a lock.
pub struct RedisStore {
    opts: RedisOptions,
    client: Result<redis::Client, String>,
    seal: Seal,
    pool: Mutex<Vec<redis::Connection>>,
    breaker: Mutex<Breaker>,
    counters: Counters,
}

#[derive(Default)]
struct Breaker {
    /// Requests are skipped until then.
    open_until: Option<Instant>,
    /// One request is probing after the period.
    probing: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.opts.redacted)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisStore {
    /// A store on `opts`. Nothing is connected yet: a Redis that is down now is a miss on
    /// every lookup until it is up, never an error.
    pub fn new(opts: RedisOptions) -> Self {
        // The same rustls provider as the registry client (a no-op when already installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match &opts.ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                opts.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(opts.url.as_str()),
        }
        // The parse error may quote the URL: keep only its kind.
        .map_err(|e| format!("{}: invalid Redis URL ({:?})", opts.redacted, e.kind()));
        if let Err(e) = &client {
            tracing::warn!(error = %e, "layer store: Redis not used");
        }
        Self {
            seal: Seal::Hmac(Arc::clone(&opts.key)),
            opts,
            client,
            pool: Mutex::new(Vec::new()),
            breaker: Mutex::new(Breaker::default()),
            counters: Counters::default(),
        }
    }

    /// The options (for the redacted URL).
    pub fn options(&self) -> &RedisOptions {
        &self.opts
    }

    /// Runs `f` on a pooled connection, unless the circuit is open. `None` when skipped or
    /// failed (counted, and logged when Redis goes away).
    fn with_conn<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Option<T> {
        let Ok(client) = &self.client else {
            Counters::inc(&self.counters.errors);
            return None;
        };
        let probe = {
            let mut b = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
            match b.open_until {
                Some(t) if Instant::now() < t || b.probing => {
                    Counters::inc(&self.counters.errors);
                    return None;
                }
                Some(_) => {
                    b.probing = true;
                    true
                }
                None => false,
            }
        };
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => Ok(c),
            None => client
                .get_connection_with_timeout(self.opts.timeout)
                .and_then(|c| {
                    c.set_read_timeout(Some(self.opts.timeout))?;
                    c.set_write_timeout(Some(self.opts.timeout))?;
                    Ok(c)
                }),
        };
        let result = conn.and_then(|mut c| f(&mut c).map(|v| (v, c)));
        let mut b = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok((v, c)) => {
                if probe || b.open_until.is_some() {
                    tracing::warn!(url = %self.opts.redacted, "layer store: Redis is back");
                }
                *b = Breaker::default();
                drop(b);
                let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
                if pool.len() < POOL_SIZE {
                    pool.push(c);
                }
                Some(v)
            }
            Err(e) => {
                Counters::inc(&self.counters.errors);
                let was_up = b.open_until.is_none();
                b.open_until = Some(Instant::now() + self.opts.retry_after);
                b.probing = false;
                drop(b);
                // Connections opened before the failure may be broken too.
                self.pool
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                if was_up {
                    tracing::warn!(
                        url = %self.opts.redacted,
                        op = what,
                        error = %describe(&e),
                        retry_in_secs = self.opts.retry_after.as_secs(),
                        "layer store: Redis unavailable, audits go on without it"
                    );
                } else {
                    tracing::debug!(op = what, error = %describe(&e), "layer store: Redis still unavailable");
                }
                None
            }
        }
    }

    fn full(&self, name: &str) -> String {
        format!("{}{name}", self.opts.prefix)
    }

    /// The bytes under `name`, at most [`MAX_STORE_ENTRY_BYTES`] + 1 of them read.
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        let key = self.full(name);
        self.with_conn("get", |c| {
            redis::cmd("GETRANGE")
                .arg(&key)
                .arg(0)
                .arg(MAX_STORE_ENTRY_BYTES)
                .query::<Vec<u8>>(c)
        })
    }

    /// The payload sealed under `name` by [`RedisStore::put_sealed`], if present and intact.
    pub fn get_sealed(&self, name: &str) -> Option<Vec<u8>> {
        let bytes = self.read(name).filter(|b| !b.is_empty())?;
        match codec::open_raw(name, &bytes, &self.seal) {
            Ok(p) => Some(p.to_vec()),
            Err(why) => {
                Counters::inc(&self.counters.rejected);
                tracing::debug!(name, %why, "layer store: Redis value not used");
                None
            }
        }
    }

    /// Seals `payload` under `name` and writes it with the store's TTL, or `ttl` if given.
    pub fn put_sealed(&self, name: &str, payload: &[u8], ttl: Option<Duration>) {
        if let Some(bytes) = codec::seal_raw(name, payload, &self.seal) {
            self.write(name, &bytes, ttl);
        }
    }

    fn write(&self, name: &str, bytes: &[u8], ttl: Option<Duration>) {
        let key = self.full(name);
        let ttl = ttl.unwrap_or(self.opts.ttl).as_secs().max(1);
        let done = self.with_conn("set", |c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(bytes)
                .arg("EX")
                .arg(ttl)
                .query::<()>(c)
        });
        if done.is_some() {
            Counters::inc(&self.counters.writes);
        }
    }

    /// Takes the lock `name` for `ttl` if nobody holds it (`SET NX PX`): `Some(true)` taken,
    /// `Some(false)` held by another, `None` Redis unavailable.
    pub fn try_lock(&self, name: &str, token: &str, ttl: Duration) -> Option<bool> {
        let key = self.full(name);
        self.with_conn("lock", |c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query::<Option<String>>(c)
                .map(|r| r.is_some())
        })
    }

    /// Releases the lock `name` if `token` still holds it (compare and delete in one script,
    /// as the Redis documentation of `SET` describes for locks).
    pub fn unlock(&self, name: &str, token: &str) {
        let key = self.full(name);
        let _ = self.with_conn("unlock", |c| {
            redis::cmd("EVAL")
                .arg("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end")
                .arg(1)
                .arg(&key)
                .arg(token)
                .query::<i64>(c)
        });
    }
}

/// An error's kind and detail, which for the redis crate never include the URL or password
/// (`tests::password_never_in_errors` checks both on a refused login).
fn describe(e: &redis::RedisError) -> String {
    e.to_string()
}

impl LayerStore for RedisStore {
    fn get(&self, key: &LayerKey) -> Option<Arc<LayerAnalysis>> {
        let name = key.name();
        let hit = self
            .read(&name)
            .filter(|b| !b.is_empty())
            .and_then(|bytes| {
                match codec::decode(key, &bytes, &self.seal) {
                    Ok(a) => Some(Arc::new(a)),
                    Err(why) => {
                        // Replaced when the layer's fresh analysis is written.
                        Counters::inc(&self.counters.rejected);
                        tracing::debug!(name, %why, "layer store: Redis entry not used");
                        None
                    }
                }
            });
        let c = &self.counters;
        Counters::inc(if hit.is_some() { &c.hits } else { &c.misses });
        hit
    }

    fn put(&self, key: &LayerKey, analysis: &Arc<LayerAnalysis>) {
        if let Some(bytes) = codec::encode(key, analysis, &self.seal) {
            self.write(&key.name(), &bytes, None);
        }
    }

    fn stats(&self) -> StoreStats {
        self.counters.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://:s3cret@cache:6379/0"),
            "redis://***@cache:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:p@ss@cache/0"),
            "rediss://***@cache/0"
        );
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        let e = RedisOptions::new("http://:s3cret@x", b"k".to_vec()).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let o = RedisOptions::new("redis://:s3cret@x", b"k".to_vec()).unwrap();
        assert!(!format!("{o:?}").contains("s3cret"));
    }
}
