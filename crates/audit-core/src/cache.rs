//! Bounded in-memory caches: a size-weighted LRU, and the per-layer analysis cache an
//! [`Auditor`](crate::audit::Auditor) can be given so images sharing base layers audit fast.
//!
//! A layer's analysis depends only on its blob bytes (and the auditor's [`Limits`]), so it
//! is keyed by the blob digest. Entries are only taken from the cache for layers whose
//! digest is verified by the store ([`crate::source::BlobStore::verifies_layer_digests`]), and
//! only when the descriptor's size and the config's diff_id agree with what was computed
//! when the entry was made; anything else is analysed afresh, so errors (digest or diff_id
//! mismatches) are reported exactly as without a cache. Failed analyses are never cached.
//!
//! Share one [`LayerCache`] only between auditors with equal [`Limits`]: the limits decide how
//! much of each file is captured.
//!
//! [`Limits`]: crate::limits::Limits

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::digest::Digest;
use crate::inspect::FileFacts;
use crate::layer::{EntryKind, LayerAnalysis};

/// A least-recently-used map bounded by the summed weight (bytes) of its values. Not
/// synchronised: wrap it in a `Mutex`.
#[derive(Debug)]
pub struct Lru<K, V> {
    map: HashMap<K, Slot<V>>,
    order: BTreeMap<u64, K>,
    tick: u64,
    bytes: u64,
    max_bytes: u64,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    weight: u64,
    tick: u64,
}

impl<K: Clone + Eq + Hash, V> Lru<K, V> {
    /// An empty cache holding at most `max_bytes` of summed weights.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            max_bytes,
        }
    }

    /// The value for `k`, marking it most recently used.
    pub fn get(&mut self, k: &K) -> Option<&V> {
        self.tick += 1;
        let tick = self.tick;
        let slot = self.map.get_mut(k)?;
        self.order.remove(&slot.tick);
        slot.tick = tick;
        self.order.insert(tick, k.clone());
        Some(&slot.value)
    }

    /// The value for `k` without touching its recency.
    pub fn peek(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|s| &s.value)
    }

    /// Inserts (or replaces) `k` with `weight` bytes, evicting the least recently used
    /// entries until the total fits. A value heavier than the whole bound is not kept.
    /// Returns how many entries were evicted.
    pub fn insert(&mut self, k: K, value: V, weight: u64) -> usize {
        self.remove(&k);
        if weight > self.max_bytes {
            return 0;
        }
        let mut evicted = 0;
        while self.bytes + weight > self.max_bytes {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some(s) = self.map.remove(&old) {
                self.bytes -= s.weight;
                evicted += 1;
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, k.clone());
        self.map.insert(
            k,
            Slot {
                value,
                weight,
                tick: self.tick,
            },
        );
        self.bytes += weight;
        evicted
    }

    /// Removes `k`, returning its value.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        let s = self.map.remove(k)?;
        self.order.remove(&s.tick);
        self.bytes -= s.weight;
        Some(s.value)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Summed weight of the entries held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The weight bound.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// A cache of layer analyses by blob digest, consulted by the auditor before a layer blob is
/// opened. Implementations must be cheap and must not block for long: they are called from
/// the layer worker threads.
pub trait LayerCache: Send + Sync {
    /// The analysis of the blob with this digest, if held.
    fn get(&self, digest: &Digest) -> Option<Arc<LayerAnalysis>>;
    /// Offers a fresh, successful analysis.
    fn insert(&self, analysis: Arc<LayerAnalysis>);
}

/// Hit and miss counters of a [`MemoryLayerCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found an entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Entries held now.
    pub entries: u64,
    /// Estimated bytes held now.
    pub bytes: u64,
}

/// An in-memory [`LayerCache`] bounded by the estimated size of its entries
/// ([`LayerAnalysis::approx_bytes`]).
pub struct MemoryLayerCache {
    lru: Mutex<Lru<Digest, Arc<LayerAnalysis>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl MemoryLayerCache {
    /// A cache holding analyses whose estimated sizes add up to at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            lru: Mutex::new(Lru::new(max_bytes)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Counters and occupancy.
    pub fn stats(&self) -> CacheStats {
        let l = self.lru.lock().unwrap_or_else(PoisonError::into_inner);
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            entries: l.len() as u64,
            bytes: l.bytes(),
        }
    }
}

impl std::fmt::Debug for MemoryLayerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLayerCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl LayerCache for MemoryLayerCache {
    fn get(&self, digest: &Digest) -> Option<Arc<LayerAnalysis>> {
        let hit = self
            .lru
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
            .cloned();
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    fn insert(&self, analysis: Arc<LayerAnalysis>) {
        let weight = analysis.approx_bytes();
        let digest = analysis.digest.clone();
        let n = self
            .lru
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest, analysis, weight);
        self.evictions.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Counts bytes written.
struct CountingSink(u64);

impl io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FileFacts {
    /// Estimated heap bytes: the struct, kept content, and the JSON length of the ELF, Go
    /// and secret facts (an over-estimate of their strings and vectors).
    pub fn approx_bytes(&self) -> u64 {
        let mut sink = CountingSink(0);
        // Serialising plain data into a counter cannot fail.
        let _ = serde_json::to_writer(&mut sink, self);
        let elf = if self.elf.is_some() {
            std::mem::size_of::<crate::inspect::ElfInfo>() as u64
        } else {
            0
        };
        std::mem::size_of::<Self>() as u64
            + elf
            + sink.0
            + self.content.as_ref().map_or(0, |c| c.len() as u64)
    }
}

impl LayerAnalysis {
    /// Estimated heap bytes held by this analysis: entries with their paths and link
    /// targets, file facts ([`FileFacts::approx_bytes`]) and anomalies. Used to bound
    /// [`MemoryLayerCache`]; a layer of 10,000 plain files weighs about 1.5 MB.
    pub fn approx_bytes(&self) -> u64 {
        let entry = std::mem::size_of::<crate::layer::Entry>() as u64;
        let mut n = std::mem::size_of::<Self>() as u64;
        for e in &self.entries {
            n += entry + e.path.len() as u64;
            if let EntryKind::Symlink(t) | EntryKind::Hardlink(t) = &e.kind {
                n += t.len() as u64;
            }
            if let Some(f) = &e.facts {
                n += f.approx_bytes();
            }
        }
        for a in &self.anomalies {
            n += std::mem::size_of::<crate::layer::Anomaly>() as u64
                + (a.path.len() + a.problem.len()) as u64;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recently_used_by_weight() {
        let mut l = Lru::new(100);
        l.insert("a", 1, 40);
        l.insert("b", 2, 40);
        assert_eq!(l.get(&"a"), Some(&1)); // a is now the most recent
        assert_eq!(l.insert("c", 3, 40), 1, "b goes");
        assert!(l.peek(&"b").is_none());
        assert_eq!((l.len(), l.bytes()), (2, 80));
        assert_eq!(
            l.insert("huge", 9, 101),
            0,
            "heavier than the bound: not kept"
        );
        assert!(l.peek(&"huge").is_none());
        l.insert("a", 10, 10);
        assert_eq!(l.bytes(), 50, "replacing re-weighs");
        assert_eq!(l.get(&"a"), Some(&10));
        assert_eq!(l.remove(&"c"), Some(3));
        assert_eq!((l.len(), l.bytes()), (1, 10));
        assert_eq!(l.max_bytes(), 100);
    }
}
