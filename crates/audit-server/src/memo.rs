//! A bounded, expiring result cache with single-flight: the first caller for a key starts the
//! work, later callers wait for the same result, and the result is cached for a TTL. Cache
//! and in-flight table sit under one lock, so a result is either cached or in flight when a
//! caller looks — never neither while the work is being finished (no duplicate work).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use audit_core::cache::Lru;
use tokio::sync::watch;

/// What [`Memo::lookup`] found.
pub(crate) enum Lookup<V> {
    /// A cached, unexpired result.
    Hit(V),
    /// Someone is computing it: wait on this.
    Wait(watch::Receiver<Option<V>>),
    /// Nobody is: the caller must compute it and call [`Memo::complete`] (also on failure).
    /// Wait on the receiver like the others.
    Start(watch::Receiver<Option<V>>),
    /// Too many computations in flight.
    Busy,
}

struct State<K, V> {
    lru: Lru<K, (Instant, V)>,
    flights: HashMap<K, watch::Sender<Option<V>>>,
}

pub(crate) struct Memo<K, V> {
    state: Mutex<State<K, V>>,
    max_flights: usize,
}

impl<K: Clone + Eq + Hash, V: Clone> Memo<K, V> {
    /// At most `max_bytes` of results and `max_flights` computations at once.
    pub(crate) fn new(max_bytes: u64, max_flights: usize) -> Self {
        Self {
            state: Mutex::new(State {
                lru: Lru::new(max_bytes),
                flights: HashMap::new(),
            }),
            max_flights,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lookup(&self, k: &K) -> Lookup<V> {
        let mut s = self.state();
        let now = Instant::now();
        match s.lru.get(k) {
            Some((expires, v)) if *expires > now => return Lookup::Hit(v.clone()),
            Some(_) => {
                s.lru.remove(k);
            }
            None => {}
        }
        if let Some(tx) = s.flights.get(k) {
            return Lookup::Wait(tx.subscribe());
        }
        if s.flights.len() >= self.max_flights {
            return Lookup::Busy;
        }
        let (tx, rx) = watch::channel(None);
        s.flights.insert(k.clone(), tx);
        Lookup::Start(rx)
    }

    /// Finishes the flight for `k`: caches `v` for `ttl` (not at all when `ttl` is zero) with
    /// `weight` bytes, and wakes the waiters.
    pub(crate) fn complete(&self, k: &K, v: V, ttl: Duration, weight: u64) {
        let tx = {
            let mut s = self.state();
            if !ttl.is_zero() {
                s.lru
                    .insert(k.clone(), (Instant::now() + ttl, v.clone()), weight);
            }
            s.flights.remove(k)
        };
        if let Some(tx) = tx {
            tx.send_replace(Some(v));
        }
    }

    /// Entries, bytes and flights now.
    pub(crate) fn occupancy(&self) -> (usize, u64, usize) {
        let s = self.state();
        (s.lru.len(), s.lru.bytes(), s.flights.len())
    }
}

/// Waits for a flight's result until `deadline`; `None` when it is not done by then.
pub(crate) async fn wait<V: Clone>(
    mut rx: watch::Receiver<Option<V>>,
    deadline: tokio::time::Instant,
) -> Option<V> {
    match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
        Ok(Ok(v)) => v.clone(),
        // The sender went away without a result (a bug, or shutdown): no verdict.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn single_flight_then_cached_until_expiry() {
        let m: Memo<&str, u32> = Memo::new(1 << 20, 2);
        let Lookup::Start(rx1) = m.lookup(&"a") else {
            panic!("first caller starts")
        };
        let Lookup::Wait(rx2) = m.lookup(&"a") else {
            panic!("second caller waits")
        };
        let Lookup::Start(_rx) = m.lookup(&"b") else {
            panic!()
        };
        assert!(
            matches!(m.lookup(&"c"), Lookup::Busy),
            "two flights at most"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let waiter = tokio::spawn(wait(rx2, deadline));
        m.complete(&"a", 7, Duration::from_millis(200), 8);
        assert_eq!(wait(rx1, deadline).await, Some(7));
        assert_eq!(waiter.await.unwrap(), Some(7));
        assert!(matches!(m.lookup(&"a"), Lookup::Hit(7)));
        assert_eq!(m.occupancy(), (1, 8, 1));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(matches!(m.lookup(&"a"), Lookup::Start(_)), "expired");
        m.complete(&"a", 8, Duration::ZERO, 8);
        assert!(
            matches!(m.lookup(&"a"), Lookup::Start(_)),
            "a zero TTL caches nothing"
        );
    }

    #[tokio::test]
    async fn a_waiter_gives_up_at_the_deadline() {
        let m: Memo<u8, u8> = Memo::new(1 << 10, 4);
        let Lookup::Start(rx) = m.lookup(&1) else {
            panic!()
        };
        let t = std::time::Instant::now();
        assert_eq!(
            wait(rx, tokio::time::Instant::now() + Duration::from_millis(50)).await,
            None
        );
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
