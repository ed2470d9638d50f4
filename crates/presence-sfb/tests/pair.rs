//! The endpoint against the simulator, in memory: no sockets, no clock. Bytes are moved
//! between the two state machines until both are quiet; time moves only when the test says.
//!
//! Where a test needs retries or latest-wins, the caller is the engine's own
//! `presence_push::Publisher`, driven as the engine drives a transport: `set` per state
//! change, `poll_publish` only with credit in hand, every outcome reported back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_model::{
    Activities, ActivityText, AggregatedStateId, Availability, Lcid, Presence, Publication, SipUri,
};
use presence_push::{Publisher, PublisherConfig, Ticket};
use presence_sfb::settings::Transport;
use presence_sfb::{Endpoint, EndpointConfig, Event, PublishId};
use presence_sfb_sim::{ConnId, SimConfig, SimEvent, Simulator};
use presence_transport::TransportError;

struct Pair {
    ep: Endpoint,
    sim: Simulator,
    conn: ConnId,
    now: Instant,
    events: Vec<Event>,
    sim_events: Vec<SimEvent>,
}

fn uri(s: &str) -> SipUri {
    SipUri::new(s).unwrap()
}

fn presence(availability: u32, text: &str) -> Presence {
    Presence {
        availability: Availability::new(availability).unwrap(),
        activities: Activities::new(vec![
            (Lcid::EN_US, ActivityText::new(text)),
            (Lcid::new(3082), ActivityText::new(&format!("{text} (es)"))),
        ])
        .unwrap(),
    }
}

fn config() -> EndpointConfig {
    let mut c = EndpointConfig::new(uri("sip:bridge@contoso.com"), Transport::Tcp);
    c.keepalive = None;
    c.retry_initial = Duration::from_millis(100);
    c.retry_max = Duration::from_millis(500);
    c
}

impl Pair {
    fn new(config: EndpointConfig, sim: SimConfig) -> Pair {
        let now = Instant::now();
        let mut sim = Simulator::new(sim);
        let conn = sim.open(now);
        let mut ep = Endpoint::new(config, 42);
        ep.connected(now);
        let mut pair = Pair {
            ep,
            sim,
            conn,
            now,
            events: Vec::new(),
            sim_events: Vec::new(),
        };
        pair.drive();
        pair
    }

    /// Moves bytes both ways until neither side has anything to say.
    fn drive(&mut self) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.ep.poll_transmit() {
                self.sim
                    .handle_bytes(self.conn, &bytes, self.now)
                    .expect("the simulator reads the endpoint");
                moved = true;
            }
            while let Some(bytes) = self.sim.poll_transmit(self.conn) {
                self.ep
                    .handle_bytes(&bytes, self.now)
                    .expect("the endpoint reads the simulator");
                moved = true;
            }
            while let Some(event) = self.ep.poll_event() {
                self.events.push(event);
            }
            while let Some(event) = self.sim.poll_event() {
                self.sim_events.push(event);
            }
            if !moved {
                break;
            }
        }
    }

    /// Lets `d` pass, firing every timer due on either side on the way.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [self.ep.poll_timeout(), self.sim.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            let Some(at) = next else { break };
            self.now = at.max(self.now);
            self.ep.handle_timeout(self.now);
            self.sim.handle_timeout(self.now);
            self.drive();
        }
        self.now = end;
        self.ep.handle_timeout(self.now);
        self.sim.handle_timeout(self.now);
        self.drive();
    }

    fn publish(&mut self, user: &SipUri, p: Presence) -> PublishId {
        let id = self.ep.publish(user.clone(), p, self.now);
        self.drive();
        id
    }

    fn published(&self, id: PublishId) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::Published { id: i, .. } if *i == id))
    }

    fn failure(&self, id: PublishId) -> Option<&TransportError> {
        self.events.iter().find_map(|e| match e {
            Event::PublishFailed { id: i, error, .. } if *i == id => Some(error),
            _ => None,
        })
    }

    fn shows(&self, user: &SipUri) -> Option<(u32, String)> {
        self.sim.shows(user).map(|s| {
            (
                s.availability,
                s.texts.first().map(|(_, t)| t.clone()).unwrap_or_default(),
            )
        })
    }

    fn presence_events(&mut self) -> Vec<(SipUri, u64)> {
        let out = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Presence {
                    user,
                    raw_availability,
                    ..
                } => Some((user.clone(), *raw_availability)),
                _ => None,
            })
            .collect();
        self.events.retain(|e| !matches!(e, Event::Presence { .. }));
        out
    }

    /// How many sim events match (and forgets every sim event seen so far).
    fn sim_events_matching(&mut self, want: impl Fn(&SimEvent) -> bool) -> usize {
        self.drive();
        let n = self.sim_events.iter().filter(|e| want(e)).count();
        self.sim_events.clear();
        n
    }
}

fn service_request(e: &SimEvent) -> bool {
    matches!(e, SimEvent::Request { method, .. } if method == "SERVICE")
}

fn conflict(e: &SimEvent) -> bool {
    matches!(e, SimEvent::Conflict { .. })
}

#[test]
fn a_publication_lands_and_versions_follow_the_pool() {
    let mut pair = Pair::new(config(), SimConfig::default());
    let user = uri("sip:agent1@contoso.com");
    for (i, (availability, text)) in [(3501, "I am available"), (7001, "In a call"), (6001, "ACW")]
        .into_iter()
        .enumerate()
    {
        let id = pair.publish(&user, presence(availability, text));
        assert!(pair.published(id), "publication {i}");
        assert_eq!(pair.shows(&user), Some((availability, text.to_owned())));
        assert_eq!(
            pair.sim.version(&user, "state", 0x2000_0000, 2),
            i as u32 + 1
        );
        assert_eq!(
            pair.sim.version(&user, "state", 0x2000_0000, 3),
            i as u32 + 1
        );
    }
    let shown = pair.sim.shows(&user).unwrap();
    assert_eq!(shown.texts[1], (3082, "ACW (es)".to_owned()));
}

#[test]
fn wrong_delta_after_the_user_changed_state_is_recovered() {
    let mut pair = Pair::new(config(), SimConfig::default());
    let user = uri("sip:agent1@contoso.com");
    let id = pair.publish(&user, presence(3501, "available"));
    assert!(pair.published(id));
    // The user picks Busy in their own client: the instance's versions move on.
    pair.sim
        .set_user_presence(&user, 6500, Some("Busy (client)"), pair.now);
    pair.drive();
    assert_eq!(pair.shows(&user).map(|s| s.0), Some(6500));
    pair.sim_events_matching(|_| true);
    // The bridge's next publication carries stale versions: 409, then a re-send with
    // curVersion, which completes this one publication.
    let id = pair.publish(&user, presence(7001, "In a call"));
    assert!(pair.published(id), "{:?}", pair.events);
    assert_eq!(pair.shows(&user), Some((7001, "In a call".to_owned())));
    pair.drive();
    let conflicts = pair.sim_events.iter().filter(|e| conflict(e)).count();
    let requests = pair
        .sim_events
        .iter()
        .filter(|e| service_request(e))
        .count();
    assert_eq!((conflicts, requests), (1, 2), "one 409, one re-send");
}

#[test]
fn a_second_publication_for_a_user_goes_out_after_the_first() {
    let mut pair = Pair::new(config(), SimConfig::default());
    let user = uri("sip:agent1@contoso.com");
    // Given back to back, before either is answered.
    let first = pair
        .ep
        .publish(user.clone(), presence(3501, "first"), pair.now);
    let second = pair
        .ep
        .publish(user.clone(), presence(7001, "second"), pair.now);
    pair.drive();
    assert!(pair.published(first) && pair.published(second));
    let published: Vec<Option<u32>> = pair
        .sim_events
        .iter()
        .filter_map(|e| match e {
            SimEvent::Published { availability, .. } => Some(*availability),
            _ => None,
        })
        .collect();
    assert_eq!(
        published,
        vec![Some(3501), Some(7001)],
        "in the order given"
    );
    assert_eq!(pair.shows(&user), Some((7001, "second".to_owned())));
}

#[test]
fn unpublish_removes_the_bridge_instances_with_a_conflict_recovered() {
    let mut pair = Pair::new(config(), SimConfig::default());
    let user = uri("sip:agent1@contoso.com");
    let id = pair.publish(&user, presence(7001, "In a call"));
    assert!(pair.published(id));
    assert!(pair.shows(&user).is_some());
    let before = pair.sim.version(&user, "state", 0x2000_0000, 2);
    pair.sim_events_matching(|_| true);
    // The first removal meets a conflict (another endpoint just wrote the instances); the
    // conflicts stop before the fix-up arrives.
    pair.sim.random_conflicts(1.0);
    let id = pair.ep.unpublish(user.clone(), pair.now);
    while let Some(bytes) = pair.ep.poll_transmit() {
        pair.sim.handle_bytes(pair.conn, &bytes, pair.now).unwrap();
    }
    pair.sim.random_conflicts(0.0);
    pair.drive();
    assert!(pair.published(id), "{:?}", pair.events);
    assert_eq!(pair.sim_events_matching(conflict), 1);
    // The simulator shows nothing of the bridge's for the user any more.
    assert_eq!(pair.sim.shows(&user), None);
    // A removal leaves a tombstone: bumped by the conflict, then by the removal.
    assert_eq!(pair.sim.version(&user, "state", 0x2000_0000, 2), before + 2);
    // Publishing again later starts from the removal's versions: no conflict.
    let id = pair.publish(&user, presence(3501, "back"));
    assert!(pair.published(id));
    assert_eq!(pair.sim_events_matching(conflict), 0);
    assert_eq!(pair.shows(&user), Some((3501, "back".to_owned())));
}

#[test]
fn unpublish_after_the_user_changed_state_ends_on_a_fix_up_too() {
    let mut pair = Pair::new(config(), SimConfig::default());
    let user = uri("sip:agent1@contoso.com");
    assert!({
        let id = pair.publish(&user, presence(7001, "In a call"));
        pair.published(id)
    });
    pair.sim.set_user_presence(&user, 3500, None, pair.now);
    pair.drive();
    pair.sim_events_matching(|_| true);
    let id = pair.ep.unpublish(user.clone(), pair.now);
    pair.drive();
    assert!(pair.published(id), "{:?}", pair.events);
    assert_eq!(pair.sim_events_matching(conflict), 1);
    assert_eq!(pair.sim.shows(&user), None);
}

/// An engine-like caller: the engine's publisher, the transport's credit, tickets by id.
struct Caller {
    publisher: Publisher<SipUri>,
    tickets: HashMap<PublishId, Ticket<SipUri>>,
    credit: usize,
    refused: usize,
    /// Every failure reported, in order.
    failures: Vec<TransportError>,
}

impl Caller {
    fn new(credit: usize) -> Caller {
        Caller {
            publisher: Publisher::new(PublisherConfig {
                retry_initial: Duration::from_millis(100),
                retry_max: Duration::from_millis(500),
                ..PublisherConfig::default()
            }),
            tickets: HashMap::new(),
            credit,
            refused: 0,
            failures: Vec::new(),
        }
    }

    fn set(&mut self, user: &SipUri, availability: u32, text: &str) {
        let publication = Publication {
            id: AggregatedStateId::new(&format!("S{availability}")).unwrap(),
            presence: presence(availability, text),
        };
        self.publisher
            .set(user.clone(), Some(Arc::new(publication)));
    }

    /// Hands out what is due while credit lasts, and settles what came back (one credit
    /// per settled publication), as the engine does; then lets time run to `end`.
    fn run(&mut self, pair: &mut Pair, d: Duration) {
        let end = pair.now + d;
        loop {
            loop {
                while self.credit > 0 {
                    let Some((ticket, publication)) = self.publisher.poll_publish() else {
                        break;
                    };
                    self.credit -= 1;
                    let id = pair.ep.publish(
                        ticket.user.clone(),
                        publication.presence.clone(),
                        pair.now,
                    );
                    self.tickets.insert(id, ticket);
                }
                pair.drive();
                let settled: Vec<Event> = pair
                    .events
                    .extract_if(.., |e| {
                        matches!(e, Event::Published { .. } | Event::PublishFailed { .. })
                    })
                    .collect();
                if settled.is_empty() {
                    break;
                }
                for event in settled {
                    self.settle(event, pair.now);
                }
            }
            self.publisher.handle_timeout(pair.now);
            if self.publisher.ready_len() > 0 && self.credit > 0 {
                continue;
            }
            let next = [
                pair.ep.poll_timeout(),
                pair.sim.poll_timeout(),
                self.publisher.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .filter(|t| *t <= end)
            .min();
            let Some(at) = next else { break };
            pair.now = at.max(pair.now);
            pair.ep.handle_timeout(pair.now);
            pair.sim.handle_timeout(pair.now);
        }
        pair.now = end;
        pair.ep.handle_timeout(pair.now);
        pair.sim.handle_timeout(pair.now);
        pair.drive();
    }

    fn settle(&mut self, event: Event, now: Instant) {
        let (id, result) = match event {
            Event::Published { id, .. } => (id, Ok(())),
            Event::PublishFailed { id, error, .. } => (id, Err(error)),
            _ => return,
        };
        let ticket = self.tickets.remove(&id).expect("a ticket for every id");
        self.credit += 1;
        let Err(error) = result else {
            self.publisher.complete(&ticket);
            return;
        };
        match &error {
            TransportError::NotConnected => self.publisher.park(&ticket),
            error if error.is_transient() => {
                self.publisher.fail(&ticket, now, error.retry_after());
            }
            _ => {
                self.refused += 1;
                self.publisher.reject(&ticket);
            }
        }
        self.failures.push(error);
    }
}

#[test]
fn random_conflicts_and_errors_are_ridden_out_by_the_callers_retries() {
    let mut c = config();
    c.max_in_flight = 32;
    // A 409 the fix-up cannot end is a refusal the caller does not retry: allow enough
    // re-sends that a 30 % conflict rate never uses them up.
    c.max_conflict_retries = 10;
    let mut pair = Pair::new(
        c,
        SimConfig {
            seed: 7,
            ..SimConfig::default()
        },
    );
    pair.sim.random_conflicts(0.3);
    pair.sim.random_errors(0.2, 503).unwrap();
    let mut caller = Caller::new(32);
    let users: Vec<SipUri> = (0..200)
        .map(|i| uri(&format!("sip:u{i}@contoso.com")))
        .collect();
    for (i, user) in users.iter().enumerate() {
        caller.set(user, 3000 + i as u32, "first");
    }
    caller.run(&mut pair, Duration::from_millis(50));
    for user in &users {
        caller.set(user, 9000, "latest");
    }
    caller.run(&mut pair, Duration::from_secs(60));
    pair.sim.clear_faults();
    caller.run(&mut pair, Duration::from_secs(5));
    let failures = pair
        .sim_events
        .iter()
        .filter(|e| matches!(e, SimEvent::Answered { status: 503, .. }))
        .count();
    assert!(failures > 20, "the faults were felt: {failures} 503s");
    assert_eq!(caller.refused, 0);
    for user in &users {
        assert_eq!(
            pair.shows(user),
            Some((9000, "latest".to_owned())),
            "{user}"
        );
    }
    assert_eq!(caller.publisher.in_flight(), 0);
    assert_eq!(pair.ep.publications_outstanding(), 0);
    assert_eq!(caller.credit, 32, "every credit came back");
}

#[test]
fn a_thousand_users_subscribe_in_batches_and_notifications_arrive() {
    let mut c = config();
    c.subscription.batch_size = 100;
    let mut pair = Pair::new(c, SimConfig::default());
    let users: Vec<SipUri> = (0..1000)
        .map(|i| uri(&format!("sip:w{i:04}@contoso.com")))
        .collect();
    // Some users already have a presence: the first notification carries it.
    for user in users.iter().take(10) {
        pair.sim
            .set_user_presence(user, 3500, Some("Available"), pair.now);
    }
    pair.ep.subscribe(users.clone(), pair.now);
    pair.drive();
    assert_eq!(pair.sim.dialog_count(), 10);
    assert_eq!(pair.sim.watched_users().len(), 1000);
    let first = pair.presence_events();
    assert_eq!(first.len(), 10, "{first:?}");
    // Changes arrive as (BE)NOTIFY.
    pair.sim
        .set_user_presence(&users[500], 6500, Some("In a call"), pair.now);
    pair.sim
        .set_user_presence(&users[999], 18500, None, pair.now);
    pair.drive();
    let mut got = pair.presence_events();
    got.sort();
    assert_eq!(
        got,
        vec![(users[500].clone(), 6500), (users[999].clone(), 18500)]
    );
    // Subscriptions are refreshed before they expire (each refresh brings a notification of
    // the current state, RFC 6665): the same ten dialogs still watch everyone hours later.
    pair.advance(Duration::from_secs(3 * 3600));
    assert_eq!(pair.sim.dialog_count(), 10);
    assert_eq!(pair.sim.watched_users().len(), 1000);
    let refreshed = pair.presence_events();
    assert!(
        refreshed
            .iter()
            .all(|(u, _)| users[..10].contains(u) || *u == users[500] || *u == users[999])
    );
    pair.sim.set_user_presence(&users[1], 9500, None, pair.now);
    pair.drive();
    assert_eq!(pair.presence_events(), vec![(users[1].clone(), 9500)]);
    // Unsubscribed users report nothing more.
    pair.ep.unsubscribe(users[..100].to_vec(), pair.now);
    pair.drive();
    pair.sim.set_user_presence(&users[2], 6500, None, pair.now);
    pair.sim
        .set_user_presence(&users[600], 6500, None, pair.now);
    pair.drive();
    assert_eq!(pair.presence_events(), vec![(users[600].clone(), 6500)]);
}

#[test]
fn notify_gets_200_and_terminated_subscriptions_come_back() {
    let mut pair = Pair::new(
        config(),
        SimConfig {
            benotify: false,
            ..SimConfig::default()
        },
    );
    let user = uri("sip:w@contoso.com");
    pair.ep.subscribe([user.clone()], pair.now);
    pair.drive();
    pair.sim_events_matching(|_| true);
    pair.sim.set_user_presence(&user, 6500, None, pair.now);
    pair.drive();
    assert_eq!(pair.presence_events(), vec![(user.clone(), 6500)]);
    assert!(
        pair.sim_events_matching(|e| matches!(e, SimEvent::Response { status: 200, .. })) >= 1,
        "the NOTIFY was answered 200"
    );
    // The pool ends every subscription: the endpoint subscribes again after a short wait.
    pair.sim.terminate_subscriptions();
    pair.drive();
    assert_eq!(pair.sim.dialog_count(), 0);
    pair.advance(Duration::from_secs(5));
    assert_eq!(pair.sim.dialog_count(), 1);
    pair.sim.set_user_presence(&user, 3500, None, pair.now);
    pair.drive();
    assert_eq!(pair.presence_events().last(), Some(&(user.clone(), 3500)));
    // A terminated resource is subscribed again on its own.
    pair.sim.terminate_resource(&user);
    pair.drive();
    pair.advance(Duration::from_secs(1));
    assert!(pair.sim.watched_users().contains(&user));
}

#[test]
fn injected_failures_are_reported_once_and_the_caller_retries() {
    let mut pair = Pair::new(config(), SimConfig::default());
    let user = uri("sip:agent1@contoso.com");
    pair.sim
        .fail_next(presence_sip::Method::Service, 2, 503)
        .unwrap();
    // Reported once, with the pool's Retry-After and diagnostics; not sent again.
    let id = pair.publish(&user, presence(3500, "a"));
    let failure = pair.failure(id);
    assert!(
        matches!(failure, Some(error @ TransportError::Rejected { status: 503, reason, .. })
            if reason.contains("ms-diagnostics") && error.retry_after() == Some(Duration::from_secs(1))),
        "{failure:?}"
    );
    pair.advance(Duration::from_secs(5));
    assert_eq!(pair.sim_events_matching(service_request), 1);
    assert_eq!(pair.shows(&user), None);

    // The caller retries, honouring Retry-After: the second attempt fails too, the third
    // lands.
    pair.sim
        .fail_next(presence_sip::Method::Service, 1, 503)
        .unwrap();
    pair.events.clear();
    let mut caller = Caller::new(16);
    caller.set(&user, 3500, "a");
    caller.run(&mut pair, Duration::from_millis(500));
    assert_eq!(pair.sim_events_matching(service_request), 1);
    assert_eq!(caller.failures.len(), 1);
    caller.run(&mut pair, Duration::from_millis(600));
    assert_eq!(
        pair.sim_events_matching(service_request),
        1,
        "after Retry-After"
    );
    assert_eq!(caller.failures.len(), 2);
    assert_eq!(pair.shows(&user), None);
    caller.run(&mut pair, Duration::from_millis(1100));
    assert_eq!(pair.sim_events_matching(service_request), 1);
    assert_eq!(pair.shows(&user), Some((3500, "a".to_owned())));

    // A pool failing for a long time: each attempt is one request and one failure, the
    // caller backs off, the old state stays; once the pool is well, the new one lands.
    pair.sim
        .fail_next(presence_sip::Method::Service, 1000, 500)
        .unwrap();
    caller.set(&user, 6500, "b");
    caller.run(&mut pair, Duration::from_secs(10));
    let failed = &caller.failures[2..];
    assert!(failed.len() >= 10, "{}", failed.len());
    assert!(failed.iter().all(|e| matches!(e,
        TransportError::Rejected { status: 500, reason, retry_after: None } if reason.contains("ms-diagnostics"))));
    assert_eq!(pair.sim_events_matching(service_request), failed.len());
    assert_eq!(pair.shows(&user).map(|s| s.0), Some(3500));
    pair.sim.clear_faults();
    caller.run(&mut pair, Duration::from_secs(1));
    assert_eq!(pair.shows(&user), Some((6500, "b".to_owned())));
}
