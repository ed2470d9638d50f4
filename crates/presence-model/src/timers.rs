//! Keyed deadlines on caller-given [`Instant`]s, for the sans-IO protocol cores: at most one
//! pending deadline per key, earliest first, `O(log n)` to set, move, cancel and pop. The
//! structure reads no clock: every time is an argument.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use presence_model::timers::Timers;
//!
//! let t0 = Instant::now();
//! let mut timers = Timers::new();
//! timers.set("refresh", t0 + Duration::from_secs(5));
//! timers.set("timeout", t0 + Duration::from_secs(1));
//! timers.set("refresh", t0 + Duration::from_secs(2)); // moved
//! assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
//! assert_eq!(timers.pop_due(t0 + Duration::from_secs(3)), Some("timeout"));
//! assert_eq!(timers.pop_due(t0 + Duration::from_secs(3)), Some("refresh"));
//! assert_eq!(timers.pop_due(t0 + Duration::from_secs(3)), None);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// A set of deadlines, at most one per key. Keys due at the same instant pop in the order
/// they were set.
#[derive(Debug, Clone)]
pub struct Timers<K> {
    by_time: BTreeMap<(Instant, u64), K>,
    by_key: HashMap<K, (Instant, u64)>,
    seq: u64,
}

impl<K: Clone + Eq + Hash> Default for Timers<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash> Timers<K> {
    /// No deadlines.
    pub fn new() -> Self {
        Timers {
            by_time: BTreeMap::new(),
            by_key: HashMap::new(),
            seq: 0,
        }
    }

    /// Sets (or moves) the deadline of `key`.
    pub fn set(&mut self, key: K, at: Instant) {
        self.cancel(&key);
        self.seq += 1;
        self.by_time.insert((at, self.seq), key.clone());
        self.by_key.insert(key, (at, self.seq));
    }

    /// Removes the deadline of `key`, if any.
    pub fn cancel(&mut self, key: &K) {
        if let Some(slot) = self.by_key.remove(key) {
            self.by_time.remove(&slot);
        }
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_time.keys().next().map(|(at, _)| *at)
    }

    /// The deadline of `key`, if one is set.
    pub fn deadline(&self, key: &K) -> Option<Instant> {
        self.by_key.get(key).map(|(at, _)| *at)
    }

    /// Removes and returns one key whose deadline is at or before `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let (&(at, seq), _) = self.by_time.iter().next()?;
        if at > now {
            return None;
        }
        let key = self.by_time.remove(&(at, seq))?;
        self.by_key.remove(&key);
        Some(key)
    }

    /// Whether `key` has a deadline.
    pub fn contains(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }

    /// How many deadlines are set.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no deadline is set.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Removes every deadline.
    pub fn clear(&mut self) {
        self.by_time.clear();
        self.by_key.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn set_move_cancel_pop_in_order() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.set("b", t0 + Duration::from_secs(2));
        timers.set("a", t0 + Duration::from_secs(1));
        timers.set("c", t0 + Duration::from_secs(3));
        timers.set("b", t0 + Duration::from_secs(5));
        timers.cancel(&"c");
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.deadline(&"b"), Some(t0 + Duration::from_secs(5)));
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(10)), Some("a"));
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(10)), Some("b"));
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(10)), None);
        assert!(!timers.contains(&"b"));
        timers.set("d", t0);
        timers.clear();
        assert!(timers.is_empty());
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn equal_deadlines_pop_in_setting_order() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        for key in [3, 1, 2] {
            timers.set(key, t0);
        }
        let order: Vec<_> = std::iter::from_fn(|| timers.pop_due(t0)).collect();
        assert_eq!(order, [3, 1, 2]);
    }
}
