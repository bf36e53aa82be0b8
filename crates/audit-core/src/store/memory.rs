//! Decoded analyses in memory, bounded by their estimated size.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Counters, LayerKey, LayerStore, StoreStats};
use crate::cache::Lru;
use crate::layer::LayerAnalysis;

/// A [`LayerStore`] in memory, bounded by the estimated size of its entries
/// ([`LayerAnalysis::approx_bytes`]); the least recently used go first.
pub struct MemoryStore {
    lru: Mutex<Lru<LayerKey, Arc<LayerAnalysis>>>,
    counters: Counters,
}

impl MemoryStore {
    /// A store holding analyses whose estimated sizes add up to at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            lru: Mutex::new(Lru::new(max_bytes)),
            counters: Counters::default(),
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
        let c = &self.counters;
        Counters::inc(if hit.is_some() { &c.hits } else { &c.misses });
        hit
    }

    fn put(&self, key: &LayerKey, analysis: &Arc<LayerAnalysis>) {
        let weight = analysis.approx_bytes();
        let n = self
            .lru
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), Arc::clone(analysis), weight);
        Counters::inc(&self.counters.writes);
        self.counters
            .evictions
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    fn stats(&self) -> StoreStats {
        let l = self.lru.lock().unwrap_or_else(PoisonError::into_inner);
        StoreStats {
            entries: l.len() as u64,
            bytes: l.bytes(),
            ..self.counters.stats()
        }
    }
}
