//! The layer store: analyses of verified layers, kept across audits, processes and machines.
//!
//! A layer's analysis depends only on its blob bytes and on what
//! [`analysis_fingerprint`](crate::layer::analysis_fingerprint) covers (the analysis version
//! and the [`Limits`](crate::limits::Limits)), so it is kept under a [`LayerKey`] of both. The
//! auditor asks the store before it opens a layer blob, and offers every analysis of a fully
//! verified layer (blob digest, size and diff_id checked) afterwards; an entry is used only when
//! its size and diff_id agree with the manifest and config at hand
//! ([`crate::audit::Auditor`]). A store never changes an answer: whatever goes wrong in it (a
//! corrupt, truncated, forged, foreign-version or oversized entry, a dead backend) is a miss,
//! and the layer is analysed afresh.
//!
//! Backends: [`MemoryStore`] (a byte-bounded LRU of decoded analyses), [`DiskStore`] (one file
//! per entry, atomic writes, LRU eviction by size), `RedisStore` (feature `redis`: shared by
//! replicas and sweep workers, entries sealed with an HMAC so a writer without the key cannot
//! plant a clean result), [`Tiered`] (memory in front of a shared backend), and
//! [`SingleFlight`] (in front of any of them: concurrent audits in one process analyse a
//! shared layer once; a sweep uses it). Entries on disk
//! and in Redis use one binary encoding ([`codec`](self#entry-encoding)).
//!
//! # Entry encoding
//!
//! ```text
//! "IMGAUDIT" | format u16 | seal u16 | key length u16 | key | payload length u64 | tag [32] | payload
//! ```
//!
//! All integers little-endian. The key echo is the entry's [`LayerKey::name`]; the tag is
//! SHA-256 (disk) or HMAC-SHA256 with the shared key (Redis) over everything before it and
//! the payload; the payload is the zstd-compressed CBOR (RFC 8949) of the
//! [`LayerAnalysis`]. Reads are bounded by [`MAX_STORE_ENTRY_BYTES`] and
//! [`MAX_STORE_PAYLOAD_BYTES`](crate::limits::MAX_STORE_PAYLOAD_BYTES).

mod codec;
mod disk;
mod flight;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::digest::Digest;
use crate::layer::{LayerAnalysis, ANALYSIS_VERSION};
#[cfg(doc)]
use crate::limits::MAX_STORE_ENTRY_BYTES;

pub use disk::{DiskInfo, DiskStore, Pruned};
pub use flight::SingleFlight;
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{RedisOptions, RedisStore};

/// What a stored analysis is kept under: the verified blob digest and the analysis
/// fingerprint of the auditor that made it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LayerKey {
    digest: Digest,
    fingerprint: Arc<str>,
}

impl LayerKey {
    /// The key of the blob `digest` for an auditor with this
    /// [`analysis_fingerprint`](crate::layer::analysis_fingerprint).
    pub fn new(digest: Digest, fingerprint: &str) -> Self {
        Self {
            digest,
            fingerprint: fingerprint.into(),
        }
    }

    /// The blob digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// `layer:v<ANALYSIS_VERSION>:<fingerprint>:<algorithm>:<hex>`: the entry's name in Redis
    /// (after the key prefix) and, with `:` as `_`, on disk; echoed in the entry's header.
    pub fn name(&self) -> String {
        format!(
            "layer:v{ANALYSIS_VERSION}:{}:{}",
            self.fingerprint, self.digest
        )
    }
}

/// A store of layer analyses. Called from the layer worker threads: implementations block
/// for bounded times only (a Redis backend has timeouts and a circuit breaker) and never fail
/// an audit; a lookup that goes wrong is a miss, a write that goes wrong is dropped.
pub trait LayerStore: Send + Sync + fmt::Debug {
    /// The analysis kept under `key`, if any and intact.
    fn get(&self, key: &LayerKey) -> Option<Arc<LayerAnalysis>>;
    /// Keeps a fresh analysis of a fully verified layer.
    fn put(&self, key: &LayerKey, analysis: &Arc<LayerAnalysis>);
    /// A lookup of `key` that missed is followed by no [`put`](Self::put): the layer failed,
    /// or could not be fully verified. A store that makes other lookups of the key wait for
    /// the first one's analysis ([`SingleFlight`]) lets them go; others ignore it.
    fn release(&self, _key: &LayerKey) {}
    /// Counters and occupancy.
    fn stats(&self) -> StoreStats;
}

/// Counters of a [`LayerStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Lookups that found an intact entry.
    pub hits: u64,
    /// Lookups that did not (including rejected entries and backend failures).
    pub misses: u64,
    /// Entries written.
    pub writes: u64,
    /// Entries found but not used: corrupt, truncated, forged, foreign version, oversized.
    pub rejected: u64,
    /// Backend failures (I/O errors, Redis timeouts and refusals, requests skipped while the
    /// circuit is open).
    pub errors: u64,
    /// Entries removed to keep the size bound.
    pub evictions: u64,
    /// Entries held now (memory store; 0 where unknown).
    pub entries: u64,
    /// Bytes held now (memory store: estimated; 0 where unknown).
    pub bytes: u64,
}

/// The counters every backend keeps ([`StoreStats`] without the occupancy).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) evictions: AtomicU64,
}

impl Counters {
    /// Adds one.
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot (entries and bytes 0: the memory store fills them in).
    pub(crate) fn stats(&self) -> StoreStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StoreStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            writes: get(&self.writes),
            rejected: get(&self.rejected),
            errors: get(&self.errors),
            evictions: get(&self.evictions),
            entries: 0,
            bytes: 0,
        }
    }
}

/// A fast store in front of a shared one: lookups try `front` first and copy hits from `back`
/// into it; writes go to both.
pub struct Tiered {
    front: Arc<dyn LayerStore>,
    back: Arc<dyn LayerStore>,
}

impl Tiered {
    /// `front` (usually a [`MemoryStore`]) before `back`.
    pub fn new(front: Arc<dyn LayerStore>, back: Arc<dyn LayerStore>) -> Self {
        Self { front, back }
    }
}

impl fmt::Debug for Tiered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tiered")
            .field("front", &self.front.stats())
            .field("back", &self.back.stats())
            .finish()
    }
}

impl LayerStore for Tiered {
    fn get(&self, key: &LayerKey) -> Option<Arc<LayerAnalysis>> {
        if let Some(hit) = self.front.get(key) {
            return Some(hit);
        }
        let hit = self.back.get(key)?;
        self.front.put(key, &hit);
        Some(hit)
    }

    fn put(&self, key: &LayerKey, analysis: &Arc<LayerAnalysis>) {
        self.front.put(key, analysis);
        self.back.put(key, analysis);
    }

    fn release(&self, key: &LayerKey) {
        self.front.release(key);
        self.back.release(key);
    }

    /// The back store's counters, with the front's hits added (a front hit is a lookup the
    /// back store never saw).
    fn stats(&self) -> StoreStats {
        let (f, b) = (self.front.stats(), self.back.stats());
        StoreStats {
            hits: f.hits + b.hits,
            ..b
        }
    }
}

/// A store operation that failed where the caller asked for it (opening a store, `cache
/// info|prune|clear`). Lookups and writes during audits never return errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The store's address or options are unusable (bad URL, unreadable key).
    #[error("layer store: {reason}")]
    Config {
        /// What is wrong (never contains a password).
        reason: String,
    },
}

#[cfg(test)]
mod tests;
