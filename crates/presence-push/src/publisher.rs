//! The per-user publication state machine: dedup against what was confirmed, one
//! publication in flight per user, latest wins, most recent change first, retries with
//! jittered back-off, resync.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_model::random::{Backoff, SplitMix64};

use crate::Publication;

/// The ready queue's buffer kept once it is drained (entries).
const READY_KEEP: usize = 1024;

/// Retry timing of a [`Publisher`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PublisherConfig {
    /// Delay before the first retry of a failed publication; doubled for each further
    /// failure in a row.
    pub retry_initial: Duration,
    /// The longest delay between retries.
    pub retry_max: Duration,
    /// Relative jitter of each delay, `0.0..=1.0` (`0.2`: ±20 %), so that users that failed
    /// together do not retry together.
    pub jitter: f64,
    /// Seed of the jitter's generator (the publisher stays deterministic).
    pub seed: u64,
}

impl Default for PublisherConfig {
    /// 1 s, doubling up to 60 s, ±20 %.
    fn default() -> Self {
        PublisherConfig {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            jitter: 0.2,
            seed: 0x5eed,
        }
    }
}

impl PublisherConfig {
    /// The delay before retry number `failures` (1 = the first), given a uniform `draw`
    /// in `0.0..1.0`: `min(retry_initial × 2^(failures-1), retry_max)`, ± jitter.
    pub fn delay(&self, failures: u32, draw: f64) -> Duration {
        Backoff {
            initial: self.retry_initial,
            max: self.retry_max,
            jitter: self.jitter,
        }
        .delay(failures, draw)
    }
}

/// Proof of one publication handed out by [`Publisher::poll_publish`]; give it back to
/// [`complete`](Publisher::complete), [`fail`](Publisher::fail) or [`park`](Publisher::park).
/// A ticket from before a [`resync`](Publisher::resync) is stale and ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket<K> {
    /// The user.
    pub user: K,
    seq: u64,
}

#[derive(Debug, Default)]
struct Slot {
    /// What the user should show: the last publication the engine asked for.
    target: Option<Arc<Publication>>,
    /// What the service confirmed last (on the current connection).
    published: Option<Arc<Publication>>,
    /// The publication in flight and its sequence number.
    in_flight: Option<(u64, Arc<Publication>)>,
    /// The generation of its live entry in the ready queue, if queued.
    queued: Option<u64>,
    /// Waiting for a retry deadline (its sequence number identifies the heap entry).
    retry: Option<u64>,
    /// Waiting for the next resync.
    parked: bool,
    /// A publication the transport refused for good: not sent again until the target
    /// changes or a resync.
    refused: Option<Arc<Publication>>,
    /// Failures in a row.
    failures: u32,
}

impl Slot {
    fn is_due(&self) -> bool {
        self.in_flight.is_none()
            && self.retry.is_none()
            && !self.parked
            && match (&self.target, &self.published) {
                (Some(target), Some(published)) => !same(target, published),
                (Some(_), None) => true,
                (None, _) => false,
            }
            && match (&self.target, &self.refused) {
                (Some(target), Some(refused)) => !same(target, refused),
                _ => true,
            }
    }
}

fn same(a: &Arc<Publication>, b: &Arc<Publication>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// Decides, per user, what to publish and when. Deterministic: no clock, randomness only
/// from a seeded generator, users in a resync come out in key order.
///
/// **Order**: the user whose state changed most recently goes first; users made due by a
/// resync or a retry line up behind, in key order. Under a backlog (a slow platform, a
/// rate budget) fresh changes therefore overtake the replay of states that are probably
/// already shown. A change of a user already waiting moves it to the front.
///
/// The caller loop: [`set`](Self::set) on every state change;
/// [`poll_publish`](Self::poll_publish) while it has capacity (credit), sending each
/// publication; report each outcome with the ticket ([`complete`](Self::complete),
/// [`fail`](Self::fail) for transient failures, [`reject`](Self::reject) for permanent
/// ones, [`park`](Self::park) for "not connected"); call
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout);
/// [`resync`](Self::resync) after every reconnect.
#[derive(Debug)]
pub struct Publisher<K> {
    config: PublisherConfig,
    users: BTreeMap<K, Slot>,
    /// Users due, front first; entries whose generation is not their slot's are stale.
    ready: VecDeque<(K, u64)>,
    /// Slots with a live entry in `ready`.
    queued: usize,
    retries: BinaryHeap<Reverse<(Instant, u64, K)>>,
    next_seq: u64,
    in_flight: usize,
    rng: SplitMix64,
}

impl<K: Ord + Clone> Publisher<K> {
    /// An empty publisher.
    pub fn new(config: PublisherConfig) -> Self {
        Publisher {
            config,
            users: BTreeMap::new(),
            ready: VecDeque::new(),
            queued: 0,
            retries: BinaryHeap::new(),
            next_seq: 0,
            in_flight: 0,
            rng: SplitMix64::new(config.seed),
        }
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Queues `user` if it is due: at the front (a fresh change: moved there even when it
    /// already waits) or at the back (resync, retry: keeps its place when it waits).
    fn enqueue_if_due(&mut self, user: &K, front: bool) {
        let generation = self.next_seq + 1;
        let Some(slot) = self.users.get_mut(user) else {
            return;
        };
        if !slot.is_due() || (slot.queued.is_some() && !front) {
            return;
        }
        if slot.queued.replace(generation).is_none() {
            self.queued += 1;
        }
        self.next_seq = generation;
        if front {
            self.ready.push_front((user.clone(), generation));
        } else {
            self.ready.push_back((user.clone(), generation));
        }
        // Moving users to the front leaves stale entries behind: drop them before they
        // outnumber the live ones, so the queue stays proportional to the users due.
        if self.ready.len() > 2 * self.queued + 64 {
            let users = &self.users;
            self.ready.retain(|(user, generation)| {
                users.get(user).and_then(|s| s.queued) == Some(*generation)
            });
        }
    }

    /// Sets what `user` should show now. `None` (a combination the profile leaves out)
    /// changes nothing: the user keeps the last target.
    pub fn set(&mut self, user: K, publication: Option<Arc<Publication>>) {
        let Some(publication) = publication else {
            return;
        };
        let slot = self.users.entry(user.clone()).or_default();
        match &slot.target {
            Some(target) if same(target, &publication) => return,
            _ => slot.target = Some(publication),
        }
        self.enqueue_if_due(&user, true);
    }

    /// The next publication to send, if one is due, with its ticket. The user then has a
    /// publication in flight until its outcome is reported.
    pub fn poll_publish(&mut self) -> Option<(Ticket<K>, Arc<Publication>)> {
        while let Some((user, generation)) = self.ready.pop_front() {
            let Some(slot) = self.users.get_mut(&user) else {
                continue;
            };
            if slot.queued != Some(generation) {
                continue; // stale: the user moved to the front since
            }
            slot.queued = None;
            self.queued -= 1;
            if !slot.is_due() {
                continue;
            }
            let Some(target) = slot.target.clone() else {
                continue;
            };
            let seq = self.seq();
            let slot = self.users.get_mut(&user).expect("present above");
            slot.in_flight = Some((seq, Arc::clone(&target)));
            self.in_flight += 1;
            return Some((Ticket { user, seq }, target));
        }
        // Drained: a resync of every user left a buffer as large as their number.
        if self.ready.capacity() > READY_KEEP {
            self.ready.shrink_to(READY_KEEP);
        }
        None
    }

    /// Takes the in-flight publication of a ticket, if the ticket is current.
    fn settle(&mut self, ticket: &Ticket<K>) -> Option<(&mut Slot, Arc<Publication>)> {
        let slot = self.users.get_mut(&ticket.user)?;
        match &slot.in_flight {
            Some((seq, _)) if *seq == ticket.seq => {}
            _ => return None,
        }
        let (_, publication) = slot.in_flight.take()?;
        self.in_flight -= 1;
        Some((slot, publication))
    }

    /// The service accepted the ticket's publication.
    pub fn complete(&mut self, ticket: &Ticket<K>) {
        if let Some((slot, publication)) = self.settle(ticket) {
            slot.published = Some(publication);
            slot.failures = 0;
            // Due again only if the target changed while in flight: a fresh change.
            self.enqueue_if_due(&ticket.user, true);
        }
    }

    /// The ticket's publication failed for now (a timeout, a 5xx, a 429); the user's
    /// target is retried after `retry_after` when the platform said when, else after the
    /// back-off ([`PublisherConfig::delay`]).
    pub fn fail(&mut self, ticket: &Ticket<K>, now: Instant, retry_after: Option<Duration>) {
        let config = self.config;
        let draw = self.rng.next_f64();
        let seq = self.seq();
        if let Some((slot, _)) = self.settle(ticket) {
            slot.failures = slot.failures.saturating_add(1);
            let delay = retry_after.unwrap_or_else(|| config.delay(slot.failures, draw));
            slot.retry = Some(seq);
            self.retries
                .push(Reverse((now + delay, seq, ticket.user.clone())));
        }
    }

    /// What the platform shows for `user` is not known any more: a request of the user's
    /// timed out, and the platform may still apply it (a stalled pool reads it once it
    /// reads again). The user's target is then sent again even when it is back to the
    /// last confirmed publication. Call it with [`fail`](Self::fail) for a timeout.
    pub fn forget_confirmed(&mut self, user: &K) {
        if let Some(slot) = self.users.get_mut(user) {
            slot.published = None;
        }
    }

    /// The platform refused the ticket's publication for good (a 4xx): it is not sent
    /// again until the user's target changes, or until the next resync.
    pub fn reject(&mut self, ticket: &Ticket<K>) {
        if let Some((slot, publication)) = self.settle(ticket) {
            slot.failures = 0;
            slot.refused = Some(publication);
            self.enqueue_if_due(&ticket.user, true);
        }
    }

    /// The ticket's publication could not be sent for want of a connection; the user waits
    /// for the next [`resync`](Self::resync).
    pub fn park(&mut self, ticket: &Ticket<K>) {
        if let Some((slot, _)) = self.settle(ticket) {
            slot.parked = true;
        }
    }

    /// The earliest retry deadline, if any retry waits.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, seq, user))) = self.retries.peek() {
            match self.users.get(user) {
                Some(slot) if slot.retry == Some(*seq) => return Some(*deadline),
                _ => {
                    self.retries.pop();
                }
            }
        }
        None
    }

    /// Makes the retries whose deadline is at or before `now` due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((deadline, _, _))) = self.retries.peek() {
            if *deadline > now {
                break;
            }
            let Some(Reverse((_, seq, user))) = self.retries.pop() else {
                break;
            };
            if let Some(slot) = self.users.get_mut(&user)
                && slot.retry == Some(seq)
            {
                slot.retry = None;
                self.enqueue_if_due(&user, false);
            }
        }
    }

    /// After a (re)connection: forget what was confirmed, drop tickets in flight, retries and
    /// parking, so that every user's current target is due again (in key order).
    pub fn resync(&mut self) {
        self.ready.clear();
        self.queued = 0;
        self.retries.clear();
        self.in_flight = 0;
        for (user, slot) in &mut self.users {
            slot.published = None;
            slot.in_flight = None;
            slot.retry = None;
            slot.parked = false;
            slot.refused = None;
            slot.failures = 0;
            slot.queued = None;
            if slot.is_due() {
                self.next_seq += 1;
                slot.queued = Some(self.next_seq);
                self.queued += 1;
                self.ready.push_back((user.clone(), self.next_seq));
            }
        }
    }

    /// Forgets a user (it left push mode); a ticket in flight for it becomes stale.
    pub fn remove(&mut self, user: &K) {
        if let Some(slot) = self.users.remove(user) {
            if slot.in_flight.is_some() {
                self.in_flight -= 1;
            }
            if slot.queued.is_some() {
                self.queued -= 1;
            }
        }
    }

    /// What the service last confirmed for `user` on the current connection.
    pub fn published(&self, user: &K) -> Option<&Arc<Publication>> {
        self.users.get(user)?.published.as_ref()
    }

    /// What `user` should show.
    pub fn target(&self, user: &K) -> Option<&Arc<Publication>> {
        self.users.get(user)?.target.as_ref()
    }

    /// Users with a publication due but not yet handed out (an upper bound: a user whose
    /// target went back to what is confirmed is skipped when polled).
    pub fn ready_len(&self) -> usize {
        self.queued
    }

    /// Publications in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Users known to the publisher.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is known.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_model::{Activities, AggregatedStateId, Availability, Presence};
    use proptest::prelude::*;

    fn publication(id: &str, availability: u32) -> Arc<Publication> {
        Arc::new(Publication {
            id: AggregatedStateId::new(id).unwrap(),
            presence: Presence {
                availability: Availability::new(availability).unwrap(),
                activities: Activities::empty(),
            },
        })
    }

    #[test]
    fn dedups_against_what_was_confirmed() {
        let mut p = Publisher::new(PublisherConfig::default());
        let ready = publication("READY", 3500);
        p.set(1, Some(Arc::clone(&ready)));
        let (t, sent) = p.poll_publish().unwrap();
        assert_eq!(sent.id.as_str(), "READY");
        p.complete(&t);
        // Same state again (even as a different Arc): nothing to do.
        p.set(1, Some(publication("READY", 3500)));
        assert!(p.poll_publish().is_none());
        // An edited entry under the same ID is a change (reload).
        p.set(1, Some(publication("READY", 3600)));
        assert!(p.poll_publish().is_some());
    }

    #[test]
    fn latest_wins_while_in_flight() {
        let mut p = Publisher::new(PublisherConfig::default());
        p.set(1, Some(publication("A", 3500)));
        let (t, _) = p.poll_publish().unwrap();
        p.set(1, Some(publication("B", 6500)));
        p.set(1, Some(publication("C", 9500)));
        p.set(1, Some(publication("D", 12500)));
        assert!(p.poll_publish().is_none(), "one in flight per user");
        p.complete(&t);
        let (t, sent) = p.poll_publish().unwrap();
        assert_eq!(sent.id.as_str(), "D");
        p.complete(&t);
        assert!(p.poll_publish().is_none());
        // Back to what is confirmed while one is in flight: after it completes, the target
        // (A) differs from confirmed (B), so A goes out; nothing stale in between.
        p.set(1, Some(publication("B", 6500)));
        let (t, sent) = p.poll_publish().unwrap();
        assert_eq!(sent.id.as_str(), "B");
        p.set(1, Some(publication("D", 12500)));
        p.complete(&t);
        let (_, sent) = p.poll_publish().unwrap();
        assert_eq!(sent.id.as_str(), "D");
    }

    #[test]
    fn left_out_combinations_change_nothing() {
        let mut p = Publisher::new(PublisherConfig::default());
        p.set(1, None);
        assert!(p.is_empty());
        p.set(1, Some(publication("A", 3500)));
        p.set(1, None);
        assert_eq!(p.poll_publish().unwrap().1.id.as_str(), "A");
    }

    #[test]
    fn failures_back_off_and_retry_the_latest() {
        let config = PublisherConfig {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(5),
            jitter: 0.0,
            ..PublisherConfig::default()
        };
        let mut p = Publisher::new(config);
        let t0 = Instant::now();
        p.set(1, Some(publication("A", 3500)));
        let mut expected = Vec::new();
        let mut now = t0;
        for delay in [1, 2, 4, 5, 5] {
            let (ticket, _) = p.poll_publish().unwrap();
            p.fail(&ticket, now, None);
            assert!(p.poll_publish().is_none());
            let deadline = p.poll_timeout().unwrap();
            expected.push(delay);
            assert_eq!(deadline - now, Duration::from_secs(delay));
            p.handle_timeout(deadline - Duration::from_millis(1));
            assert!(p.poll_publish().is_none(), "not before the deadline");
            now = deadline;
            p.set(1, Some(publication("B", 6500)));
            p.handle_timeout(now);
        }
        let (ticket, sent) = p.poll_publish().unwrap();
        assert_eq!(sent.id.as_str(), "B", "the retry sends the latest target");
        p.complete(&ticket);
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.published(&1).unwrap().id.as_str(), "B");
    }

    #[test]
    fn after_a_timeout_a_target_back_to_the_confirmed_one_is_sent_again() {
        // A timed-out publication may still be applied by the platform later: confirmed A,
        // B times out (and is applied late), the target goes back to A: A must go out.
        let mut p = Publisher::new(PublisherConfig {
            jitter: 0.0,
            ..PublisherConfig::default()
        });
        let now = Instant::now();
        p.set(1, Some(publication("A", 3500)));
        let (t, _) = p.poll_publish().unwrap();
        p.complete(&t);
        p.set(1, Some(publication("B", 6500)));
        let (t, _) = p.poll_publish().unwrap();
        p.fail(&t, now, None);
        p.forget_confirmed(&1);
        assert!(p.published(&1).is_none(), "unknown after a timeout");
        p.set(1, Some(publication("A", 3500)));
        let deadline = p.poll_timeout().unwrap();
        p.handle_timeout(deadline);
        let (t, sent) = p.poll_publish().unwrap();
        assert_eq!(sent.id.as_str(), "A");
        p.complete(&t);
        assert_eq!(p.published(&1).unwrap().id.as_str(), "A");
        assert!(p.poll_publish().is_none());
    }

    #[test]
    fn resync_republishes_everyone_in_order_and_ignores_stale_tickets() {
        let mut p = Publisher::new(PublisherConfig::default());
        for user in [3, 1, 2] {
            p.set(user, Some(publication("A", 3500)));
        }
        let (t1, _) = p.poll_publish().unwrap();
        p.complete(&t1);
        let (t2, _) = p.poll_publish().unwrap();
        p.park(&t2);
        let (t3, _) = p.poll_publish().unwrap();
        assert_eq!(p.in_flight(), 1);
        p.resync();
        assert_eq!(p.in_flight(), 0);
        // The old ticket is ignored after resync.
        p.complete(&t3);
        let users: Vec<i32> =
            std::iter::from_fn(|| p.poll_publish().map(|(t, _)| t.user)).collect();
        assert_eq!(users, vec![1, 2, 3]);
        assert_eq!(p.in_flight(), 3);
    }

    #[test]
    fn the_most_recent_change_goes_first_and_replays_wait_behind() {
        let mut p = Publisher::new(PublisherConfig::default());
        for user in [1, 2, 3] {
            p.set(user, Some(publication("A", 3500)));
        }
        // 3 changed last, so it goes first.
        let order: Vec<i32> =
            std::iter::from_fn(|| p.poll_publish().map(|(t, _)| t.user)).collect();
        assert_eq!(order, vec![3, 2, 1]);
        p.resync(); // all three due again, in key order
        p.set(9, Some(publication("B", 6500))); // a fresh change overtakes the replay
        p.set(1, Some(publication("B", 6500))); // and a waiting user that changes moves up
        let order: Vec<i32> =
            std::iter::from_fn(|| p.poll_publish().map(|(t, _)| t.user)).collect();
        assert_eq!(order, vec![1, 9, 2, 3]);
    }

    #[test]
    fn the_ready_queue_stays_proportional_to_the_users_due() {
        let mut p = Publisher::new(PublisherConfig::default());
        for n in 0..10_000u32 {
            // Two users flip state over and over while nothing is polled.
            p.set(
                n % 2,
                Some(publication(if n % 4 < 2 { "A" } else { "B" }, 3500)),
            );
        }
        assert_eq!(p.ready_len(), 2);
        assert!(p.ready.len() <= 2 * 2 + 64 + 1, "{}", p.ready.len());
        assert_eq!(std::iter::from_fn(|| p.poll_publish()).count(), 2);
    }

    #[test]
    fn refused_publications_wait_for_a_change_or_a_resync() {
        let mut p = Publisher::new(PublisherConfig::default());
        p.set(1, Some(publication("A", 3500)));
        let (t, _) = p.poll_publish().unwrap();
        p.reject(&t);
        assert!(p.poll_publish().is_none(), "not sent again as it is");
        assert_eq!(p.poll_timeout(), None, "and no retry timer");
        p.set(1, Some(publication("B", 6500)));
        let (t, sent) = p.poll_publish().unwrap();
        assert_eq!(sent.id.as_str(), "B");
        p.reject(&t);
        p.resync();
        assert_eq!(
            p.poll_publish().unwrap().1.id.as_str(),
            "B",
            "a resync tries again"
        );
    }

    #[test]
    fn retry_after_wins_over_the_back_off_and_jitter_stays_in_bounds() {
        let mut p = Publisher::new(PublisherConfig::default());
        let now = Instant::now();
        p.set(1, Some(publication("A", 3500)));
        let (t, _) = p.poll_publish().unwrap();
        p.fail(&t, now, Some(Duration::from_secs(42)));
        assert_eq!(p.poll_timeout().unwrap() - now, Duration::from_secs(42));
        let config = PublisherConfig::default();
        for failures in 1..10 {
            for draw in [0.0, 0.5, 0.999] {
                let d = config.delay(failures, draw);
                let base = (1u64 << (failures - 1)).min(60) as f64;
                assert!(d.as_secs_f64() >= base * 0.8 - 1e-9, "{d:?}");
                assert!(d.as_secs_f64() <= base * 1.2 + 1e-9, "{d:?}");
            }
        }
    }

    #[test]
    fn removed_users_are_skipped() {
        let mut p = Publisher::new(PublisherConfig::default());
        p.set(1, Some(publication("A", 3500)));
        p.set(2, Some(publication("A", 3500)));
        let (t, _) = p.poll_publish().unwrap();
        assert_eq!(t.user, 2, "the most recent change first");
        p.remove(&2);
        p.complete(&t);
        assert_eq!(p.in_flight(), 0);
        assert_eq!(p.poll_publish().unwrap().0.user, 1);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Set(u8, u8),
        Poll,
        Complete(usize),
        Fail(usize),
        FailAfter(usize, u64),
        Reject(usize),
        Park(usize),
        Tick(u64),
        Resync,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..4, 0u8..4).prop_map(|(u, s)| Op::Set(u, s)),
            Just(Op::Poll),
            (0usize..8).prop_map(Op::Complete),
            (0usize..8).prop_map(Op::Fail),
            (0usize..8, 0u64..5).prop_map(|(i, s)| Op::FailAfter(i, s)),
            (0usize..8).prop_map(Op::Reject),
            (0usize..8).prop_map(Op::Park),
            (0u64..5000).prop_map(Op::Tick),
            Just(Op::Resync),
        ]
    }

    proptest! {
        /// Invariants under any sequence of operations: at most one ticket in flight per
        /// user; what is sent is always the user's current target; once everything settles
        /// successfully, every user's confirmed publication equals its target.
        #[test]
        fn invariants_hold(ops in proptest::collection::vec(op(), 0..200)) {
            let states: Vec<Arc<Publication>> = (0..4).map(|i| publication(&format!("S{i}"), 3000 + i)).collect();
            let mut p = Publisher::new(PublisherConfig::default());
            let start = Instant::now();
            let mut now = start;
            let mut outstanding: Vec<Ticket<u8>> = Vec::new();
            for op in ops {
                match op {
                    Op::Set(u, s) => p.set(u, Some(Arc::clone(&states[s as usize]))),
                    Op::Poll => {
                        if let Some((ticket, sent)) = p.poll_publish() {
                            prop_assert!(Arc::ptr_eq(&sent, p.target(&ticket.user).unwrap()) || *sent == **p.target(&ticket.user).unwrap());
                            prop_assert!(!outstanding.iter().any(|t| t.user == ticket.user && p.users[&t.user].in_flight.as_ref().map(|(s, _)| *s) == Some(t.seq)));
                            outstanding.push(ticket);
                        }
                    }
                    Op::Complete(i) if i < outstanding.len() => { let t = outstanding.remove(i); p.complete(&t); }
                    Op::Fail(i) if i < outstanding.len() => { let t = outstanding.remove(i); p.fail(&t, now, None); }
                    Op::FailAfter(i, s) if i < outstanding.len() => { let t = outstanding.remove(i); p.fail(&t, now, Some(Duration::from_secs(s))); }
                    Op::Reject(i) if i < outstanding.len() => { let t = outstanding.remove(i); p.reject(&t); }
                    Op::Park(i) if i < outstanding.len() => { let t = outstanding.remove(i); p.park(&t); }
                    Op::Tick(ms) => { now += Duration::from_millis(ms); p.handle_timeout(now); }
                    Op::Resync => p.resync(),
                    _ => {}
                }
                let live = p.users.values().filter(|s| s.in_flight.is_some()).count();
                prop_assert_eq!(p.in_flight(), live);
                let queued = p.users.values().filter(|s| s.queued.is_some()).count();
                prop_assert_eq!(p.ready_len(), queued);
                prop_assert!(p.ready.len() <= 2 * queued + 65);
            }
            // Settle: everything succeeds from now on.
            for t in outstanding.drain(..) { p.complete(&t); }
            p.resync();
            while let Some((t, _)) = p.poll_publish() { p.complete(&t); }
            for slot in p.users.values() {
                prop_assert_eq!(&slot.published, &slot.target);
            }
        }
    }
}
