//! Per-user publication state, as far as it is protocol state: the category versions of
//! each container, one request per user on the wire (later ones wait behind it, in
//! order), the connection's in-flight window, and the bounded 409 WrongDelta fix-up.
//!
//! What to publish, whether it differs from what the pool shows, which user goes next
//! and whether to try again after a failure is the caller's business (the port's
//! contract): every operation given here is sent, and settles exactly once.

use std::collections::{HashMap, VecDeque};

use presence_model::{Presence, SipUri};
use presence_mspres::StateBody;

use super::PublishId;
use crate::settings::PublicationSettings;

/// What an operation writes: the bridge's state, or the removal of its instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum What {
    /// Publish this presence in every configured container.
    Publish(Presence),
    /// Remove the bridge's instance from every configured container.
    Remove,
}

#[derive(Debug)]
struct Op {
    id: PublishId,
    what: What,
}

/// One user's publication state. Every user the bridge ever published for keeps one (for
/// its versions), so what only a user with operations outstanding needs is held apart,
/// and only while it has some: 48 bytes a user at rest instead of 104.
#[derive(Debug)]
struct UserPub {
    /// The version of each container's instance, in the order of the settings'
    /// containers: 0 at first, +1 after each `200`, the pool's `curVersion` after a `409`.
    /// Kept across connections (the pool keeps them too).
    versions: Box<[u32]>,
    /// The user's operations outstanding, if any.
    ops: Option<Box<Ops>>,
    /// In the ready queue.
    ready: bool,
}

/// A user's operations outstanding.
#[derive(Debug, Default)]
struct Ops {
    /// The operation on the wire, if any.
    in_flight: Option<Op>,
    /// 409 re-sends of the operation on the wire so far.
    conflicts: u32,
    /// Operations waiting behind the one on the wire, oldest first.
    waiting: VecDeque<Op>,
}

impl UserPub {
    /// The operation on the wire.
    fn in_flight(&self) -> Option<&Op> {
        self.ops.as_ref()?.in_flight.as_ref()
    }
}

/// Every user's publication state.
#[derive(Debug)]
pub(super) struct Publications {
    settings: PublicationSettings,
    users: HashMap<SipUri, UserPub>,
    /// Users whose oldest waiting operation may be sent (nothing of theirs is on the wire),
    /// in the order they became ready: they wait only for room in the window.
    ready: VecDeque<SipUri>,
    in_flight: usize,
    waiting: usize,
    /// The state being written into a body (kept for its strings).
    state: StateBody,
}

impl Publications {
    pub(super) fn new(settings: PublicationSettings) -> Self {
        Publications {
            settings,
            users: HashMap::new(),
            ready: VecDeque::new(),
            in_flight: 0,
            waiting: 0,
            state: StateBody::default(),
        }
    }

    /// Operations on the wire.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Operations given and not settled: on the wire or waiting.
    pub(super) fn outstanding(&self) -> usize {
        self.in_flight + self.waiting
    }

    fn mark_ready(ready: &mut VecDeque<SipUri>, user: &SipUri, slot: &mut UserPub) {
        let sendable = slot
            .ops
            .as_ref()
            .is_some_and(|ops| ops.in_flight.is_none() && !ops.waiting.is_empty());
        if !slot.ready && sendable {
            slot.ready = true;
            ready.push_back(user.clone());
        }
    }

    /// A caller asks for `what` (while connected): it waits behind whatever the user has
    /// outstanding, then for room in the window.
    pub(super) fn request(&mut self, user: SipUri, what: What, id: PublishId) {
        let containers = self.settings.containers.len();
        let slot = self.users.entry(user.clone()).or_insert_with(|| UserPub {
            versions: vec![0; containers].into_boxed_slice(),
            ops: None,
            ready: false,
        });
        slot.ops
            .get_or_insert_default()
            .waiting
            .push_back(Op { id, what });
        self.waiting += 1;
        Self::mark_ready(&mut self.ready, &user, slot);
    }

    /// Appends the body of `what` for `user` at `versions` to `out` (`state`: scratch space).
    fn body(
        settings: &PublicationSettings,
        state: &mut StateBody,
        user: &SipUri,
        versions: &[u32],
        what: &What,
        out: &mut String,
    ) {
        match what {
            What::Publish(presence) => {
                crate::bodies::publish(out, user, settings, versions, presence, state);
            }
            What::Remove => crate::bodies::removal(out, user, settings, versions),
        }
    }

    /// The next operation to send (the caller checks the window): the user, its body
    /// appended to `body`.
    pub(super) fn next_to_send(&mut self, body: &mut String) -> Option<SipUri> {
        while let Some(user) = self.ready.pop_front() {
            let Some(slot) = self.users.get_mut(&user) else {
                continue;
            };
            slot.ready = false;
            let Some(ops) = slot.ops.as_deref_mut() else {
                continue;
            };
            if ops.in_flight.is_some() {
                continue;
            }
            let Some(op) = ops.waiting.pop_front() else {
                continue;
            };
            self.waiting -= 1;
            self.in_flight += 1;
            ops.conflicts = 0;
            let what = &ops.in_flight.insert(op).what;
            Self::body(
                &self.settings,
                &mut self.state,
                &user,
                &slot.versions,
                what,
                body,
            );
            return Some(user);
        }
        None
    }

    /// Takes the user's operation off the wire; the next one of the user becomes ready.
    fn settle(&mut self, user: &SipUri) -> Option<(&mut UserPub, PublishId)> {
        let slot = self.users.get_mut(user)?;
        let ops = slot.ops.as_deref_mut()?;
        let op = ops.in_flight.take()?;
        self.in_flight -= 1;
        ops.conflicts = 0;
        if ops.waiting.is_empty() {
            slot.ops = None;
        }
        Self::mark_ready(&mut self.ready, user, slot);
        Some((slot, op.id))
    }

    /// The pool accepted the user's operation on the wire: every instance's version went
    /// up by one.
    pub(super) fn on_success(&mut self, user: &SipUri) -> Option<PublishId> {
        let (slot, id) = self.settle(user)?;
        for version in slot.versions.iter_mut() {
            *version = version.wrapping_add(1);
        }
        Some(id)
    }

    /// The user's operation on the wire failed (reported once by the caller).
    pub(super) fn on_failure(&mut self, user: &SipUri) -> Option<PublishId> {
        self.settle(user).map(|(_, id)| id)
    }

    /// 409 WrongDelta: takes the pool's current versions and appends the body to send
    /// again at once (the operation stays on the wire) to `body`, up to `max` times for one
    /// operation. `Err` when the re-sends are used up (or nothing is on the wire): the
    /// caller reports the failure.
    pub(super) fn on_conflict(
        &mut self,
        user: &SipUri,
        operations: &[(u32, u32)],
        max: u32,
        body: &mut String,
    ) -> Result<(), ()> {
        let slot = self.users.get_mut(user).ok_or(())?;
        if slot.in_flight().is_none() {
            return Err(());
        }
        // The pool's versions are taken even when the re-sends are used up: the next
        // operation for the user then starts from them.
        for &(index, current) in operations {
            // `index` is the 1-based position of the <publication> in the request, and the
            // request lists the containers in the settings' order.
            if let Some(version) = (index as usize)
                .checked_sub(1)
                .and_then(|i| slot.versions.get_mut(i))
            {
                *version = current;
            }
        }
        let ops = slot.ops.as_deref_mut().ok_or(())?;
        ops.conflicts += 1;
        if ops.conflicts > max {
            return Err(());
        }
        let what = &ops.in_flight.as_ref().ok_or(())?.what;
        Self::body(
            &self.settings,
            &mut self.state,
            user,
            &slot.versions,
            what,
            body,
        );
        Ok(())
    }

    /// The connection is gone: every operation outstanding (on the wire or waiting) is
    /// returned, oldest first, to be reported as not connected. The versions are kept.
    pub(super) fn on_disconnected(&mut self) -> Vec<(PublishId, SipUri)> {
        let mut failed = Vec::new();
        if self.outstanding() > 0 {
            for (user, slot) in &mut self.users {
                slot.ready = false;
                let Some(ops) = slot.ops.take() else {
                    continue;
                };
                let Ops {
                    in_flight, waiting, ..
                } = *ops;
                let ops = in_flight.into_iter().chain(waiting);
                failed.extend(ops.map(|op| (op.id, user.clone())));
            }
        }
        self.ready.clear();
        self.in_flight = 0;
        self.waiting = 0;
        failed.sort_unstable_by_key(|(id, _)| *id);
        failed
    }
}
