//! Decoded analyses in memory, bounded by their estimated size.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{LayerKey, LayerStore, StoreStats};
use crate::cache::Lru;
use crate::layer::LayerAnalysis;

/// A [`LayerStore`] in memory, bounded by the estimated size of its entries
/// ([`LayerAnalysis::approx_bytes`]); the least recently used go first.
pub struct MemoryStore {
    lru: Mutex<Lru<LayerKey, Arc<LayerAnalysis>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    evictions: AtomicU64,
}

impl MemoryStore {
    /// A store holding analyses whose estimated sizes add up to at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            lru: Mutex::new(Lru::new(max_bytes)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("stats", &self.stats())
            .finish()
    }
}

impl LayerStore for MemoryStore {
    fn get(&self, key: &LayerKey) -> Option<Arc<LayerAnalysis>> {
        let hit = self
            .lru
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned();
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    fn put(&self, key: &LayerKey, analysis: &Arc<LayerAnalysis>) {
        let weight = analysis.approx_bytes();
        let n = self
            .lru
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), Arc::clone(analysis), weight);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.evictions.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn stats(&self) -> StoreStats {
        let l = self.lru.lock().unwrap_or_else(PoisonError::into_inner);
        StoreStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            entries: l.len() as u64,
            bytes: l.bytes(),
            ..StoreStats::default()
        }
    }
}
