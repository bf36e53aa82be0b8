//! A size-weighted LRU (the memory layer store and the webhook's verdict cache use it), and
//! the size estimates of layer analyses it is weighted by. Layer analyses kept across audits:
//! [`crate::store`].

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::io;

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
    /// Estimated heap bytes: the struct, and the CBOR length of the kept content and the ELF,
    /// Go and secret facts (an over-estimate of their strings and vectors).
    pub fn approx_bytes(&self) -> u64 {
        let mut sink = CountingSink(0);
        // Serialising plain data into a counter cannot fail.
        let _ = ciborium::into_writer(self, &mut sink);
        let elf = if self.elf.is_some() {
            std::mem::size_of::<crate::inspect::ElfInfo>() as u64
        } else {
            0
        };
        std::mem::size_of::<Self>() as u64 + elf + sink.0
    }
}

impl LayerAnalysis {
    /// Estimated heap bytes held by this analysis: entries with their paths and link
    /// targets, file facts ([`FileFacts::approx_bytes`]) and anomalies. Used to bound
    /// [`crate::store::MemoryStore`]; a layer of 10,000 plain files weighs about 1.5 MB.
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
