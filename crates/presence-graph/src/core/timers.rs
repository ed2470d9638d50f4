//! Keyed timers on caller-given `Instant`s: one pending deadline per key, earliest first.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Timers<K> {
    by_time: BTreeMap<(Instant, u64), K>,
    by_key: HashMap<K, (Instant, u64)>,
    seq: u64,
}

impl<K: Copy + Eq + Hash> Timers<K> {
    pub(crate) fn new() -> Self {
        Timers {
            by_time: BTreeMap::new(),
            by_key: HashMap::new(),
            seq: 0,
        }
    }

    /// Sets (or moves) the key's deadline.
    pub(crate) fn set(&mut self, key: K, at: Instant) {
        self.cancel(key);
        self.seq += 1;
        self.by_time.insert((at, self.seq), key);
        self.by_key.insert(key, (at, self.seq));
    }

    pub(crate) fn cancel(&mut self, key: K) {
        if let Some(slot) = self.by_key.remove(&key) {
            self.by_time.remove(&slot);
        }
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.by_time.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns the next key due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let (&(at, seq), &key) = self.by_time.iter().next()?;
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, seq));
        self.by_key.remove(&key);
        Some(key)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_moves() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        t.set(1u32, t0 + Duration::from_secs(5));
        t.set(2u32, t0 + Duration::from_secs(1));
        t.set(1u32, t0 + Duration::from_secs(2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        assert_eq!(t.pop_due(t0 + Duration::from_secs(3)), Some(2));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(3)), Some(1));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(30)), None);
        t.set(3, t0);
        t.cancel(3);
        assert_eq!(t.next(), None);
    }
}
