//! Single-flight in front of a store: when several audits in one process need the same layer
//! at once, the first lookup that misses analyses it and the others wait for its
//! [`put`](LayerStore::put) instead of pulling and analysing the same blob again.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Counters, LayerKey, LayerStore, StoreStats};
use crate::layer::LayerAnalysis;

/// A [`LayerStore`] that lets one lookup per key miss at a time. A lookup of a key whose
/// analysis is under way waits until that analysis is stored or
/// [released](LayerStore::release), at most `max_wait`; past it, it looks up (and, on a miss,
/// analyses) on its own, so a stuck audit costs time, never an answer.
///
/// Its [`stats`](LayerStore::stats) count its own lookups: `misses` are exactly the layers
/// the callers analysed, `hits` the ones they were given.
pub struct SingleFlight {
    inner: Arc<dyn LayerStore>,
    max_wait: Duration,
    flying: Mutex<HashSet<LayerKey>>,
    landed: Condvar,
    counters: Counters,
}

impl SingleFlight {
    /// Single-flight over `inner`; a lookup waits at most `max_wait` for another one's layer.
    pub fn new(inner: Arc<dyn LayerStore>, max_wait: Duration) -> Self {
        Self {
            inner,
            max_wait,
            flying: Mutex::default(),
            landed: Condvar::new(),
            counters: Counters::default(),
        }
    }

    /// The key's analysis is stored or abandoned: waiters look again.
    fn land(&self, key: &LayerKey) {
        self.flying
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        self.landed.notify_all();
    }
}

impl fmt::Debug for SingleFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("stats", &self.stats())
            .field("inner", &self.inner)
            .finish()
    }
}

impl LayerStore for SingleFlight {
    fn get(&self, key: &LayerKey) -> Option<Arc<LayerAnalysis>> {
        let deadline = Instant::now() + self.max_wait;
        let mut flying = self.flying.lock().unwrap_or_else(PoisonError::into_inner);
        let mut owner = true;
        while flying.contains(key) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                owner = false;
                break;
            }
            flying = self
                .landed
                .wait_timeout(flying, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if owner {
            flying.insert(key.clone());
        }
        drop(flying);
        let hit = self.inner.get(key);
        match &hit {
            Some(_) => {
                Counters::inc(&self.counters.hits);
                if owner {
                    self.land(key);
                }
            }
            // The caller analyses the layer and then puts or releases it.
            None => Counters::inc(&self.counters.misses),
        }
        hit
    }

    fn put(&self, key: &LayerKey, analysis: &Arc<LayerAnalysis>) {
        self.inner.put(key, analysis);
        self.land(key);
    }

    fn release(&self, key: &LayerKey) {
        self.inner.release(key);
        self.land(key);
    }

    fn stats(&self) -> StoreStats {
        let own = self.counters.stats();
        StoreStats {
            hits: own.hits,
            misses: own.misses,
            ..self.inner.stats()
        }
    }
}
