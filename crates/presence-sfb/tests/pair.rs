//! The endpoint against the simulator, in memory: no sockets, no clock. Bytes are moved
//! between the two state machines until both are quiet; time moves only when the test says.

use std::time::{Duration, Instant};

use presence_model::{Activities, ActivityText, Availability, Lcid, Presence, SipUri};
use presence_sfb::settings::Transport;
use presence_sfb::{Endpoint, EndpointConfig, Event, PublishId};
use presence_sfb_sim::{ConnId, SimConfig, Simulator};
use presence_transport::TransportError;

struct Pair {
    ep: Endpoint,
    sim: Simulator,
    conn: ConnId,
    now: Instant,
    events: Vec<Event>,
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
                Event::Presence(u) => Some((u.user.clone(), u.raw_availability)),
                _ => None,
            })
            .collect();
        self.events.retain(|e| !matches!(e, Event::Presence(_)));
        out
    }
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
    // The bridge's next publication carries stale versions: 409, then a retry with curVersion.
    let id = pair.publish(&user, presence(7001, "In a call"));
    assert!(pair.published(id), "{:?}", pair.events);
    assert_eq!(pair.shows(&user), Some((7001, "In a call".to_owned())));
    let conflicts = pair.sim_events_matching("Conflict");
    assert!(conflicts >= 1, "the simulator answered 409 at least once");
}

impl Pair {
    fn sim_events_matching(&mut self, needle: &str) -> usize {
        let mut n = 0;
        while let Some(e) = self.sim.poll_event() {
            if format!("{e:?}").contains(needle) {
                n += 1;
            }
        }
        n
    }
}

#[test]
fn random_conflicts_and_errors_are_ridden_out() {
    let mut pair = Pair::new(
        config(),
        SimConfig {
            seed: 7,
            ..SimConfig::default()
        },
    );
    pair.sim.random_conflicts(0.3);
    pair.sim.random_errors(0.2, 503).unwrap();
    let users: Vec<SipUri> = (0..200)
        .map(|i| uri(&format!("sip:u{i}@contoso.com")))
        .collect();
    for (i, user) in users.iter().enumerate() {
        pair.ep
            .publish(user.clone(), presence(3000 + i as u32, "first"), pair.now);
    }
    pair.drive();
    for user in &users {
        pair.ep
            .publish(user.clone(), presence(9000, "latest"), pair.now);
    }
    pair.drive();
    pair.advance(Duration::from_secs(60));
    pair.sim.clear_faults();
    pair.advance(Duration::from_secs(5));
    for user in &users {
        let shown = pair.shows(user);
        // Either the latest state landed, or the endpoint gave it up and said so.
        if shown != Some((9000, "latest".to_owned())) {
            assert!(
                pair.events
                    .iter()
                    .any(|e| matches!(e, Event::PublishFailed { user: u, .. } if u == user)),
                "{user}: {shown:?}"
            );
        }
    }
    let landed = users
        .iter()
        .filter(|u| pair.shows(u) == Some((9000, "latest".to_owned())))
        .count();
    assert!(landed >= 190, "only {landed} of 200 landed");
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
    while pair.sim.poll_event().is_some() {}
    pair.sim.set_user_presence(&user, 6500, None, pair.now);
    pair.drive();
    assert_eq!(pair.presence_events(), vec![(user.clone(), 6500)]);
    assert!(
        pair.sim_events_matching("status: 200") >= 1,
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
fn injected_failures_retry_then_give_up_with_the_reason() {
    let mut pair = Pair::new(config(), SimConfig::default());
    let user = uri("sip:agent1@contoso.com");
    pair.sim
        .fail_next(presence_sip::Method::Service, 2, 503)
        .unwrap();
    let id = pair.publish(&user, presence(3500, "a"));
    pair.advance(Duration::from_secs(5));
    assert!(pair.published(id), "{:?}", pair.events);
    pair.sim
        .fail_next(presence_sip::Method::Service, 100, 500)
        .unwrap();
    let id = pair.publish(&user, presence(6500, "b"));
    pair.advance(Duration::from_secs(60));
    let failure = pair.events.iter().find_map(|e| match e {
        Event::PublishFailed { id: i, error, .. } if *i == id => Some(error),
        _ => None,
    });
    assert!(
        matches!(failure, Some(TransportError::Rejected { status: 500, reason }) if reason.contains("ms-diagnostics")),
        "{failure:?}"
    );
    assert_eq!(pair.shows(&user).map(|s| s.0), Some(3500));
}
