//! The users' category instances: versions, contents, expiry, and the simplified
//! aggregation that gives what watchers see.
//!
//! Every publication request reads and writes here, so the layout is made for it: users
//! are found by hash (nothing here depends on the order of users), a user's instances are
//! grouped by category name so that a lookup borrows the name instead of building a key,
//! and stored states are moved in from the parsed request rather than copied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use presence_model::SipUri;
use presence_mspres::{Category, ExpireType, FaultOperation, Publication, StateBody};

/// The containers whose `state` instances feed the aggregation.
pub(crate) const AGGREGATION_CONTAINERS: [u32; 2] = [2, 3];

/// What watchers of a user see: the aggregate state (see the crate docs for how the
/// simulator derives it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shown {
    /// The availability number (3500 Online, 6500 Busy, ...), as published.
    pub availability: u32,
    /// The activity texts: (LCID, text), in the order they were published.
    pub texts: Vec<(u32, String)>,
    /// The activity token (`on-the-phone`, ...), if one was published.
    pub activity_token: Option<String>,
}

impl Shown {
    /// The `state` category of a notification: an `aggregateState` with the availability,
    /// the activity token and the custom texts.
    pub(crate) fn category(&self) -> Category {
        let mut state = StateBody::aggregate_state(self.availability);
        state.activity_token.clone_from(&self.activity_token);
        state.custom.clone_from(&self.texts);
        Category {
            name: "state".to_owned(),
            instance: Some(0),
            container: None,
            publish_time: None,
            state: Some(state),
        }
    }
}

/// A category instance's key: (category name, instance, container), borrowing the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct InstanceKey<'a> {
    pub(crate) category: &'a str,
    pub(crate) instance: u32,
    pub(crate) container: u32,
}

impl<'a> InstanceKey<'a> {
    pub(crate) fn of(publication: &'a Publication) -> Self {
        InstanceKey {
            category: &publication.category,
            instance: publication.instance,
            container: publication.container,
        }
    }
}

/// One stored instance. A removed instance keeps its version (a tombstone) so that the next
/// publication must still send the current version.
#[derive(Clone, Debug)]
struct Instance {
    version: u32,
    state: Option<StateBody>,
    expires_at: Option<Instant>,
    /// The write order (global), for "most recently written".
    written: u64,
}

/// One user's instances: by category name, then by (instance, container).
type Instances = BTreeMap<String, BTreeMap<(u32, u32), Instance>>;

/// The instance of `key` in `instances`.
fn find<'m>(instances: &'m Instances, key: InstanceKey<'_>) -> Option<&'m Instance> {
    instances
        .get(key.category)?
        .get(&(key.instance, key.container))
}

/// The instance of `key` in `instances`, created (version 0, no state, `written`) if
/// missing.
fn slot<'m>(instances: &'m mut Instances, key: InstanceKey<'_>, written: u64) -> &'m mut Instance {
    instances
        .entry(key.category.to_owned())
        .or_default()
        .entry((key.instance, key.container))
        .or_insert(Instance {
            version: 0,
            state: None,
            expires_at: None,
            written,
        })
}

/// Every user's instances.
#[derive(Debug, Default)]
pub(crate) struct World {
    users: HashMap<SipUri, Instances>,
    writes: u64,
    /// Expiry deadlines of time-bounded instances, by user. An entry may be stale (the
    /// instance was written again since): it then only wakes the simulator early.
    deadlines: BTreeSet<(Instant, SipUri)>,
}

impl World {
    /// The current version of an instance: 0 when it does not exist.
    pub(crate) fn version(&self, user: &SipUri, key: InstanceKey<'_>) -> u32 {
        self.users
            .get(user)
            .and_then(|m| find(m, key))
            .map_or(0, |i| i.version)
    }

    /// The operations of `publications` whose `version` is not the current one; empty when
    /// the whole request may be applied. Publications are checked in order, so a key that
    /// appears twice must carry the version the first one would leave.
    pub(crate) fn check(&self, user: &SipUri, publications: &[Publication]) -> Vec<FaultOperation> {
        let instances = self.users.get(user);
        let mut scratch: BTreeMap<InstanceKey<'_>, u32> = BTreeMap::new();
        let mut wrong = Vec::new();
        for (position, publication) in publications.iter().enumerate() {
            let key = InstanceKey::of(publication);
            let current = scratch.get(&key).copied().unwrap_or_else(|| {
                instances
                    .and_then(|m| find(m, key))
                    .map_or(0, |i| i.version)
            });
            let index = u32::try_from(position + 1).unwrap_or(u32::MAX);
            if publication.version == current {
                scratch.insert(key, current.wrapping_add(1));
            } else {
                wrong.push(FaultOperation {
                    index,
                    version: Some(publication.version),
                    cur_version: Some(current),
                });
            }
        }
        wrong
    }

    /// Stores every publication (after a successful [`check`](Self::check)), moving its
    /// state in, and bumps each instance's version by one.
    pub(crate) fn apply(&mut self, user: &SipUri, publications: Vec<Publication>, now: Instant) {
        if publications.is_empty() {
            return;
        }
        let World {
            users,
            writes,
            deadlines,
        } = self;
        let instances = users.entry(user.clone()).or_default();
        for publication in publications {
            let removal = publication.is_removal();
            let Publication {
                category,
                instance,
                container,
                expire_type,
                expires,
                state,
                ..
            } = publication;
            let state = if removal { None } else { state };
            let expires_at = match (expire_type, expires) {
                (ExpireType::Time, Some(seconds)) if state.is_some() => {
                    now.checked_add(Duration::from_secs(u64::from(seconds)))
                }
                _ => None,
            };
            *writes += 1;
            let written = *writes;
            // The parsed name becomes the map's key when the category is new.
            let slot = instances
                .entry(category)
                .or_default()
                .entry((instance, container))
                .or_insert(Instance {
                    version: 0,
                    state: None,
                    expires_at: None,
                    written,
                });
            write(slot, state, expires_at, written);
            if let Some(at) = expires_at {
                deadlines.insert((at, user.clone()));
            }
        }
    }

    /// Another endpoint published the same instance: its version goes up, its content stays.
    pub(crate) fn bump(&mut self, user: &SipUri, key: InstanceKey<'_>) {
        let instances = self.users.entry(user.clone()).or_default();
        let slot = slot(instances, key, 0);
        slot.version = slot.version.wrapping_add(1);
    }

    /// What the user's own client does when the user picks a state: the static manual
    /// `userState` (instance 0x20000000) in containers 2 and 3, versions bumped.
    pub(crate) fn set_manual_state(&mut self, user: &SipUri, state: &StateBody) {
        let instances = self.users.entry(user.clone()).or_default();
        for container in AGGREGATION_CONTAINERS {
            let key = InstanceKey {
                category: "state",
                instance: presence_mspres::STATIC_STATE_INSTANCE,
                container,
            };
            self.writes += 1;
            let written = self.writes;
            write(
                slot(instances, key, written),
                Some(state.clone()),
                None,
                written,
            );
        }
    }

    /// The aggregate state: the most recently written `state` instance of type `userState`
    /// with an availability among containers 2 and 3.
    pub(crate) fn shown(&self, user: &SipUri) -> Option<Shown> {
        let states = self.users.get(user)?.get("state")?;
        let (_, state) = states
            .iter()
            .filter(|((_, container), _)| AGGREGATION_CONTAINERS.contains(container))
            .filter_map(|(_, instance)| {
                let state = instance.state.as_ref()?;
                (state.state_type == StateBody::USER_STATE && state.availability.is_some())
                    .then_some((instance.written, state))
            })
            .max_by_key(|(written, _)| *written)?;
        Some(Shown {
            availability: state.availability?,
            texts: state.custom.clone(),
            activity_token: state.activity_token.clone(),
        })
    }

    /// The users with a time-bounded instance whose time is up.
    pub(crate) fn expire_candidates(&self, now: Instant) -> Vec<SipUri> {
        let users: BTreeSet<&SipUri> = self
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, user)| user)
            .filter(|user| {
                self.users.get(*user).is_some_and(|instances| {
                    instances
                        .values()
                        .flat_map(BTreeMap::values)
                        .any(|i| i.expires_at.is_some_and(|at| at <= now))
                })
            })
            .collect();
        users.into_iter().cloned().collect()
    }

    /// Drops the content of time-bounded instances whose time is up; returns the users
    /// that had one.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<SipUri> {
        let mut touched = Vec::new();
        while let Some((at, _)) = self.deadlines.first() {
            if *at > now {
                break;
            }
            let Some((_, user)) = self.deadlines.pop_first() else {
                break;
            };
            let Some(instances) = self.users.get_mut(&user) else {
                continue;
            };
            let mut any = false;
            for instance in instances.values_mut().flat_map(BTreeMap::values_mut) {
                if instance.expires_at.is_some_and(|at| at <= now) {
                    instance.expires_at = None;
                    instance.state = None;
                    any = true;
                }
            }
            if any && !touched.contains(&user) {
                touched.push(user);
            }
        }
        touched
    }

    /// The next time a time-bounded instance expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }
}

/// A write of an instance: a new version with `state`, `expires_at` and write order
/// `written`.
fn write(slot: &mut Instance, state: Option<StateBody>, expires_at: Option<Instant>, written: u64) {
    slot.version = slot.version.wrapping_add(1);
    slot.state = state;
    slot.expires_at = expires_at;
    slot.written = written;
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_mspres::STATIC_STATE_INSTANCE;

    fn user() -> SipUri {
        SipUri::new("sip:agent1@contoso.com").unwrap()
    }

    fn publication(container: u32, version: u32, availability: u32) -> Publication {
        Publication::state(
            STATIC_STATE_INSTANCE,
            container,
            version,
            StateBody::user_state(availability),
        )
    }

    #[test]
    fn duplicate_keys_in_one_request_are_checked_in_sequence() {
        let world = World::default();
        let u = user();
        assert!(
            world
                .check(&u, &[publication(2, 0, 3500), publication(2, 1, 6500)])
                .is_empty()
        );
        let wrong = world.check(&u, &[publication(2, 0, 3500), publication(2, 0, 6500)]);
        assert_eq!(
            wrong,
            [FaultOperation {
                index: 2,
                version: Some(0),
                cur_version: Some(1)
            }]
        );
    }

    #[test]
    fn aggregation_takes_the_latest_user_state_of_containers_2_and_3() {
        let mut world = World::default();
        let u = user();
        let now = Instant::now();
        assert_eq!(world.shown(&u), None);
        world.apply(&u, vec![publication(2, 0, 3500)], now);
        world.apply(&u, vec![publication(3, 0, 6500)], now);
        assert_eq!(world.shown(&u).map(|s| s.availability), Some(6500));
        // Another container, or another state type, does not count.
        world.apply(&u, vec![publication(400, 0, 9500)], now);
        let mut machine = publication(2, 1, 15500);
        if let Some(state) = &mut machine.state {
            state.state_type = "machineState".to_owned();
        }
        world.apply(&u, vec![machine], now);
        assert_eq!(world.shown(&u).map(|s| s.availability), Some(6500));
        // Removing the winner falls back to the next most recent one that is left.
        world.apply(
            &u,
            vec![Publication::removal("state", STATIC_STATE_INSTANCE, 3, 1)],
            now,
        );
        assert_eq!(
            world.shown(&u),
            None,
            "container 2 holds a machineState now"
        );
        assert_eq!(
            world.version(
                &u,
                InstanceKey::of(&Publication::removal("state", STATIC_STATE_INSTANCE, 3, 0))
            ),
            2,
            "a removed instance keeps its version"
        );
    }

    #[test]
    fn time_bounded_instances_expire() {
        let mut world = World::default();
        let u = user();
        let now = Instant::now();
        let mut p = publication(2, 0, 6500);
        p.expire_type = ExpireType::Time;
        p.expires = Some(60);
        world.apply(&u, vec![p], now);
        assert_eq!(world.next_expiry(), Some(now + Duration::from_secs(60)));
        assert!(world.expire(now + Duration::from_secs(59)).is_empty());
        assert_eq!(
            world.expire(now + Duration::from_secs(60)),
            std::slice::from_ref(&u)
        );
        assert_eq!(world.shown(&u), None);
        assert_eq!(world.next_expiry(), None);
    }
}
