//! Per-user publication state: latest wins, one in flight, versions per container,
//! 409 WrongDelta recovery, transient retries, resync after reconnect.

use std::collections::{BTreeMap, VecDeque};

use presence_model::{Presence, SipUri};
use presence_transport::TransportError;

use super::PublishId;
use crate::settings::PublicationSettings;

/// What a step settled: callers whose publication was accepted, and those whose
/// publication will not be delivered.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) published: Vec<(PublishId, SipUri)>,
    pub(super) failed: Vec<(PublishId, SipUri, TransportError)>,
}

#[derive(Debug, Default)]
struct UserPub {
    /// The latest presence asked for: what the user should show. Kept across connections.
    latest: Option<Presence>,
    /// Callers waiting on `latest` (not yet sent).
    waiters: Vec<PublishId>,
    /// What the pool confirmed on the current connection.
    confirmed: Option<Presence>,
    /// The publication in flight and the callers it will settle.
    in_flight: Option<(Presence, Vec<PublishId>)>,
    /// A presence given up on (permanent error, retries exhausted): not sent again until it
    /// changes or the connection is made again.
    given_up: Option<Presence>,
    /// The version of each container's instance, in the order of the settings' containers.
    versions: Vec<u32>,
    /// In the send queue.
    queued: bool,
    /// Waiting for a retry timer.
    retrying: bool,
    retries: u32,
    conflicts: u32,
}

impl UserPub {
    fn is_due(&self) -> bool {
        self.in_flight.is_none()
            && !self.retrying
            && self.latest.is_some()
            && self.latest != self.confirmed
            && self.latest != self.given_up
    }
}

/// Every user's publication state.
#[derive(Debug)]
pub(super) struct Publications {
    settings: PublicationSettings,
    users: BTreeMap<SipUri, UserPub>,
    queue: VecDeque<SipUri>,
    in_flight: usize,
}

impl Publications {
    pub(super) fn new(settings: PublicationSettings) -> Self {
        Publications {
            settings,
            users: BTreeMap::new(),
            queue: VecDeque::new(),
            in_flight: 0,
        }
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn enqueue_if_due(&mut self, user: &SipUri) {
        if let Some(slot) = self.users.get_mut(user)
            && !slot.queued
            && slot.is_due()
        {
            slot.queued = true;
            self.queue.push_back(user.clone());
        }
    }

    /// Settles waiters whose presence is already what the pool shows.
    fn settle_confirmed(slot: &mut UserPub, user: &SipUri, outcome: &mut Outcome) {
        if slot.in_flight.is_none() && slot.latest.is_some() && slot.latest == slot.confirmed {
            outcome
                .published
                .extend(slot.waiters.drain(..).map(|id| (id, user.clone())));
        }
    }

    /// A caller asks for `presence`.
    pub(super) fn request(
        &mut self,
        user: SipUri,
        presence: Presence,
        id: PublishId,
        connected: bool,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let containers = self.settings.containers.len();
        let slot = self.users.entry(user.clone()).or_insert_with(|| UserPub {
            versions: vec![0; containers],
            ..UserPub::default()
        });
        if slot.latest.as_ref() != Some(&presence) {
            // A newer presence: callers still waiting on an older one are superseded.
            outcome.failed.extend(
                slot.waiters
                    .drain(..)
                    .map(|old| (old, user.clone(), TransportError::Superseded)),
            );
            slot.latest = Some(presence.clone());
        }
        if !connected {
            outcome
                .failed
                .push((id, user, TransportError::NotConnected));
            return outcome;
        }
        match &mut slot.in_flight {
            Some((sending, waiters)) if *sending == presence => waiters.push(id),
            _ => slot.waiters.push(id),
        }
        Self::settle_confirmed(slot, &user, &mut outcome);
        self.enqueue_if_due(&user);
        outcome
    }

    /// The next publication to send: the user and the body.
    pub(super) fn next_to_send(&mut self) -> Option<(SipUri, String)> {
        while let Some(user) = self.queue.pop_front() {
            let Some(slot) = self.users.get_mut(&user) else {
                continue;
            };
            slot.queued = false;
            if !slot.is_due() {
                continue;
            }
            let presence = slot.latest.clone()?;
            let body = crate::bodies::publish(&user, &self.settings, &slot.versions, &presence);
            slot.in_flight = Some((presence, std::mem::take(&mut slot.waiters)));
            self.in_flight += 1;
            return Some((user, body));
        }
        None
    }

    fn take_in_flight(
        &mut self,
        user: &SipUri,
    ) -> Option<(&mut UserPub, Presence, Vec<PublishId>)> {
        let slot = self.users.get_mut(user)?;
        let (presence, waiters) = slot.in_flight.take()?;
        self.in_flight -= 1;
        Some((slot, presence, waiters))
    }

    /// The pool accepted the publication in flight.
    pub(super) fn on_success(&mut self, user: &SipUri) -> Outcome {
        let mut outcome = Outcome::default();
        if let Some((slot, presence, waiters)) = self.take_in_flight(user) {
            for version in &mut slot.versions {
                *version = version.wrapping_add(1);
            }
            slot.confirmed = Some(presence);
            slot.retries = 0;
            slot.conflicts = 0;
            outcome
                .published
                .extend(waiters.into_iter().map(|id| (id, user.clone())));
            Self::settle_confirmed(slot, user, &mut outcome);
        }
        self.enqueue_if_due(user);
        outcome
    }

    /// Puts the in-flight publication back so that it is sent again (the latest state, with
    /// its callers: those of an older state are superseded).
    fn requeue(&mut self, user: &SipUri) -> Outcome {
        let mut outcome = Outcome::default();
        if let Some((slot, presence, waiters)) = self.take_in_flight(user) {
            if slot.latest.as_ref() == Some(&presence) {
                let newer = std::mem::take(&mut slot.waiters);
                slot.waiters = waiters;
                slot.waiters.extend(newer);
            } else {
                outcome.failed.extend(
                    waiters
                        .into_iter()
                        .map(|id| (id, user.clone(), TransportError::Superseded)),
                );
            }
        }
        outcome
    }

    /// 409 WrongDelta: take the pool's current versions and send again, up to `max` times
    /// in a row. `Err` when the retries are used up (the caller reports the failure).
    pub(super) fn on_conflict(
        &mut self,
        user: &SipUri,
        operations: &[(u32, u32)],
        max: u32,
    ) -> Result<Outcome, ()> {
        let Some(slot) = self.users.get_mut(user) else {
            return Ok(Outcome::default());
        };
        slot.conflicts += 1;
        if slot.conflicts > max {
            return Err(());
        }
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
        let outcome = self.requeue(user);
        // A conflict is resolved by sending again at once, ahead of other users.
        if let Some(slot) = self.users.get_mut(user)
            && !slot.queued
            && slot.is_due()
        {
            slot.queued = true;
            self.queue.push_front(user.clone());
        }
        Ok(outcome)
    }

    /// A transient failure (timeout, 408, 5xx): returns the attempt number to wait for, or
    /// `None` when the retries are used up (the caller reports the failure).
    pub(super) fn on_transient(&mut self, user: &SipUri, max: u32) -> Option<(u32, Outcome)> {
        let slot = self.users.get_mut(user)?;
        slot.retries += 1;
        if slot.retries > max {
            return None;
        }
        let attempt = slot.retries;
        let outcome = self.requeue(user);
        if let Some(slot) = self.users.get_mut(user) {
            slot.retrying = true;
        }
        Some((attempt, outcome))
    }

    /// A retry timer fired.
    pub(super) fn retry_due(&mut self, user: &SipUri) {
        if let Some(slot) = self.users.get_mut(user) {
            slot.retrying = false;
        }
        self.enqueue_if_due(user);
    }

    /// The publication in flight will not be delivered: its callers get `error()`. The
    /// user's latest state is kept (and published again after a reconnect); if it is the
    /// one that failed, it is not sent again before then.
    pub(super) fn on_rejected(
        &mut self,
        user: &SipUri,
        error: impl Fn() -> TransportError,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        if let Some((slot, presence, waiters)) = self.take_in_flight(user) {
            slot.retries = 0;
            slot.conflicts = 0;
            if slot.latest.as_ref() == Some(&presence) {
                outcome
                    .failed
                    .extend(slot.waiters.drain(..).map(|id| (id, user.clone(), error())));
            }
            slot.given_up = Some(presence);
            outcome
                .failed
                .extend(waiters.into_iter().map(|id| (id, user.clone(), error())));
        }
        self.enqueue_if_due(user);
        outcome
    }

    /// A new connection: nothing is confirmed on it yet; every user's latest state is due.
    pub(super) fn on_connected(&mut self) {
        self.queue.clear();
        self.in_flight = 0;
        for (user, slot) in &mut self.users {
            slot.confirmed = None;
            slot.in_flight = None;
            slot.given_up = None;
            slot.retrying = false;
            slot.retries = 0;
            slot.conflicts = 0;
            slot.queued = slot.is_due();
            if slot.queued {
                self.queue.push_back(user.clone());
            }
        }
    }

    /// The connection is gone: every caller still waiting is told so.
    pub(super) fn on_disconnected(&mut self) -> Vec<(PublishId, SipUri)> {
        let mut failed = Vec::new();
        self.queue.clear();
        self.in_flight = 0;
        for (user, slot) in &mut self.users {
            if let Some((_, waiters)) = slot.in_flight.take() {
                failed.extend(waiters.into_iter().map(|id| (id, user.clone())));
            }
            failed.extend(slot.waiters.drain(..).map(|id| (id, user.clone())));
            slot.queued = false;
            slot.retrying = false;
        }
        failed
    }
}
