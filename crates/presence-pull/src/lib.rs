//! # presence-pull
//!
//! Pull mode: a Skype for Business presence update becomes a DND state on the
//! user's DN.
//!
//! - [`PullMapper`] compiles a profile's `presence-availability-range` into a bitmap of the
//!   18,001 possible availabilities, so that a lookup is one load and one bit test whatever
//!   the number of ranges. Inside a range → [`DndState::Off`] (available), otherwise
//!   [`DndState::On`]; availability 0 ("not set") maps to nothing. Wire values above 18000
//!   count as 18000.
//! - [`DndTracker`] keeps the last DND state reported per user and says when an event is
//!   due: on a change only, always for the first update after start-up or after a
//!   re-subscription ([`DndTracker::reset`]), never for availability 0.
//!
//! Invariant: no I/O, no clock, no allocation per lookup.
//!
//! ```
//! use presence_model::{AvailabilityRange, DndState};
//! use presence_pull::{DndTracker, PullMapper};
//!
//! let mapper = PullMapper::new(&["3000-5999".parse::<AvailabilityRange>()?]);
//! let mut tracker = DndTracker::new();
//! let user = "5001";
//! assert_eq!(tracker.update(user, mapper.map_wire(3500)), Some(DndState::Off)); // first: emits
//! assert_eq!(tracker.update(user, mapper.map_wire(4500)), None);                // no change
//! assert_eq!(tracker.update(user, mapper.map_wire(0)), None);                   // not set
//! assert_eq!(tracker.update(user, mapper.map_wire(6500)), Some(DndState::On));  // change
//! # Ok::<(), presence_model::ModelError>(())
//! ```
#![deny(missing_docs)]

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use presence_model::{Availability, AvailabilityRange, DndState};

const WORDS: usize = (Availability::MAX as usize + 1).div_ceil(64);

/// A compiled set of "available" ranges: availability → DND in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct PullMapper {
    bits: Box<[u64; WORDS]>,
    ranges: Vec<AvailabilityRange>,
}

impl PullMapper {
    /// Compiles ranges (they may overlap and come in any order).
    pub fn new(ranges: &[AvailabilityRange]) -> Self {
        let mut bits = Box::new([0u64; WORDS]);
        for range in ranges {
            for value in range.start().get()..=range.end().get() {
                let value = usize::from(value);
                bits[value >> 6] |= 1 << (value & 63);
            }
        }
        PullMapper {
            bits,
            ranges: ranges.to_vec(),
        }
    }

    /// The ranges this mapper was compiled from, as given.
    pub fn ranges(&self) -> &[AvailabilityRange] {
        &self.ranges
    }

    /// Whether `availability` lies in one of the ranges.
    #[inline]
    pub fn is_available(&self, availability: Availability) -> bool {
        let value = usize::from(availability.get());
        // `value <= 18000` by `Availability`'s invariant, so the index is in bounds.
        (self.bits[value >> 6] >> (value & 63)) & 1 == 1
    }

    /// The DND state for an availability: `Off` inside the ranges, `On` outside, `None` for
    /// 0 ("not set", which changes nothing).
    #[inline]
    pub fn map(&self, availability: Availability) -> Option<DndState> {
        if availability.is_none() {
            None
        } else if self.is_available(availability) {
            Some(DndState::Off)
        } else {
            Some(DndState::On)
        }
    }

    /// [`map`](Self::map) for a number as received: values above 18000 count as 18000.
    #[inline]
    pub fn map_wire(&self, raw: u64) -> Option<DndState> {
        self.map(Availability::from_wire(raw))
    }
}

impl fmt::Debug for PullMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullMapper")
            .field("ranges", &self.ranges)
            .finish_non_exhaustive()
    }
}

/// The last DND state reported for each user, and whether a new one is worth an event.
#[derive(Clone, Debug)]
pub struct DndTracker<K> {
    last: HashMap<K, DndState>,
}

impl<K: Hash + Eq> DndTracker<K> {
    /// A tracker that has reported nothing yet.
    pub fn new() -> Self {
        DndTracker {
            last: HashMap::new(),
        }
    }

    /// Records the DND state a presence update maps to (`None` for availability 0) and
    /// returns the state to report, if an event is due: the first state after start-up or
    /// [`reset`](Self::reset), or a change. `None` changes nothing.
    pub fn update(&mut self, user: K, dnd: Option<DndState>) -> Option<DndState> {
        let dnd = dnd?;
        match self.last.insert(user, dnd) {
            Some(previous) if previous == dnd => None,
            _ => Some(dnd),
        }
    }

    /// The last state reported for a user.
    pub fn last(&self, user: &K) -> Option<DndState> {
        self.last.get(user).copied()
    }

    /// Forgets a user (after a re-subscription, or when it leaves pull mode): its next
    /// update reports again.
    pub fn reset(&mut self, user: &K) {
        self.last.remove(user);
    }

    /// Forgets every user (after the transport reconnects).
    pub fn reset_all(&mut self) {
        self.last.clear();
    }

    /// How many users have a reported state.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether no user has a reported state.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

impl<K: Hash + Eq> Default for DndTracker<K> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges(text: &[&str]) -> Vec<AvailabilityRange> {
        text.iter().map(|r| r.parse().unwrap()).collect()
    }

    #[test]
    fn seed_example_3000_5999() {
        // The seed: "a value of 3000-5999 would consider a user in Online or IdleOnline
        // states as available".
        let mapper = PullMapper::new(&ranges(&["3000-5999"]));
        for (availability, dnd) in [
            (2999, Some(DndState::On)),
            (3000, Some(DndState::Off)),
            (3500, Some(DndState::Off)),
            (4500, Some(DndState::Off)),
            (5999, Some(DndState::Off)),
            (6000, Some(DndState::On)),
            (6500, Some(DndState::On)),
            (18000, Some(DndState::On)),
            (18500, Some(DndState::On)),
            (0, None),
        ] {
            assert_eq!(mapper.map_wire(availability), dnd, "{availability}");
        }
    }

    #[test]
    fn edges_of_the_domain() {
        let mapper = PullMapper::new(&ranges(&["18000", "1"]));
        assert_eq!(mapper.map_wire(18000), Some(DndState::Off));
        assert_eq!(mapper.map_wire(u64::MAX), Some(DndState::Off));
        assert_eq!(mapper.map_wire(1), Some(DndState::Off));
        assert_eq!(mapper.map_wire(2), Some(DndState::On));
        let empty = PullMapper::new(&[]);
        assert_eq!(empty.map_wire(3500), Some(DndState::On));
        let zero = PullMapper::new(&ranges(&["0-10"]));
        assert_eq!(
            zero.map_wire(0),
            None,
            "0 changes nothing even inside a range"
        );
    }

    #[test]
    fn tracker_emits_first_and_on_change_only() {
        let mapper = PullMapper::new(&ranges(&["3000-4499"]));
        let mut t = DndTracker::new();
        assert_eq!(
            t.update(1, mapper.map_wire(0)),
            None,
            "0 is not a first update"
        );
        assert_eq!(t.update(1, mapper.map_wire(6500)), Some(DndState::On));
        assert_eq!(t.update(1, mapper.map_wire(9500)), None);
        assert_eq!(
            t.update(2, mapper.map_wire(9500)),
            Some(DndState::On),
            "per user"
        );
        assert_eq!(t.update(1, mapper.map_wire(3500)), Some(DndState::Off));
        t.reset(&1);
        assert_eq!(
            t.update(1, mapper.map_wire(3500)),
            Some(DndState::Off),
            "after reset"
        );
        t.reset_all();
        assert!(t.is_empty());
        assert_eq!(t.update(2, mapper.map_wire(9500)), Some(DndState::On));
    }

    fn range_strategy() -> impl Strategy<Value = AvailabilityRange> {
        (0u16..=18000, 0u16..=18000).prop_map(|(a, b)| {
            let (lo, hi) = (a.min(b), a.max(b));
            AvailabilityRange::new(
                Availability::new(lo.into()).unwrap(),
                Availability::new(hi.into()).unwrap(),
            )
            .unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// For random range sets and every availability 0..=65535, the mapper equals a
        /// naive reference.
        #[test]
        fn equals_naive_reference(set in proptest::collection::vec(range_strategy(), 0..8)) {
            let mapper = PullMapper::new(&set);
            for raw in 0u64..=65535 {
                let clamped = raw.min(18000) as u16;
                let naive = if raw == 0 {
                    None
                } else if set.iter().any(|r| r.start().get() <= clamped && clamped <= r.end().get()) {
                    Some(DndState::Off)
                } else {
                    Some(DndState::On)
                };
                prop_assert_eq!(mapper.map_wire(raw), naive, "availability {}", raw);
            }
        }

        /// The tracker equals a naive model: emit iff the mapped state is Some and differs
        /// from the last emitted one (or none was emitted).
        #[test]
        fn tracker_matches_model(updates in proptest::collection::vec((0u8..3, 0u64..20000), 0..100)) {
            let mapper = PullMapper::new(&[AvailabilityRange::new(Availability::new(3000).unwrap(), Availability::new(5999).unwrap()).unwrap()]);
            let mut tracker = DndTracker::new();
            let mut model: HashMap<u8, DndState> = HashMap::new();
            for (user, raw) in updates {
                let dnd = mapper.map_wire(raw);
                let expected = match dnd {
                    None => None,
                    Some(d) if model.get(&user) == Some(&d) => None,
                    Some(d) => { model.insert(user, d); Some(d) }
                };
                prop_assert_eq!(tracker.update(user, dnd), expected);
            }
        }
    }
}
