//! Deadlines keyed by what they are for, ordered by time, cancellable.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// A set of deadlines, at most one per key. `O(log n)` to set, cancel and find the earliest.
#[derive(Debug)]
pub(crate) struct Timers<K> {
    by_time: BTreeSet<(Instant, u64)>,
    by_key: HashMap<K, (Instant, u64)>,
    keys: HashMap<u64, K>,
    next: u64,
}

impl<K: Clone + Eq + Hash> Timers<K> {
    pub(crate) fn new() -> Self {
        Timers {
            by_time: BTreeSet::new(),
            by_key: HashMap::new(),
            keys: HashMap::new(),
            next: 0,
        }
    }

    /// Sets (or moves) the deadline of `key`.
    pub(crate) fn set(&mut self, key: K, at: Instant) {
        self.cancel(&key);
        self.next += 1;
        let id = self.next;
        self.by_time.insert((at, id));
        self.by_key.insert(key.clone(), (at, id));
        self.keys.insert(id, key);
    }

    /// Removes the deadline of `key`, if any.
    pub(crate) fn cancel(&mut self, key: &K) {
        if let Some(entry) = self.by_key.remove(key) {
            self.by_time.remove(&entry);
            self.keys.remove(&entry.1);
        }
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns one key whose deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let &(at, id) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, id));
        let key = self.keys.remove(&id)?;
        self.by_key.remove(&key);
        Some(key)
    }

    /// Removes every deadline.
    pub(crate) fn clear(&mut self) {
        self.by_time.clear();
        self.by_key.clear();
        self.keys.clear();
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn set_cancel_pop_in_order() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.set("b", t0 + Duration::from_secs(2));
        timers.set("a", t0 + Duration::from_secs(1));
        timers.set("c", t0 + Duration::from_secs(3));
        timers.set("b", t0 + Duration::from_secs(5));
        timers.cancel(&"c");
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(10)), Some("a"));
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(10)), Some("b"));
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(10)), None);
        assert!(!timers.contains(&"b"));
    }
}
