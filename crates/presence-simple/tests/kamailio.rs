//! The SIP SIMPLE transport against a real Kamailio presence server on loopback (started by
//! `presence-testkamailio` on a free port, stopped by its PID): the port's conformance suite
//! over TCP and UDP, and the publication rules Kamailio makes visible in its `presentity`
//! table. These tests fail, with the reason, when Kamailio cannot be started.

use std::sync::Arc;
use std::time::Duration;

use presence_model::{Availability, Platform, SipUri, UserId};
use presence_simple::mapping::{Mapping, PushTarget};
use presence_simple::{SimpleSettings, SimpleTransport, pidf};
use presence_testkamailio::{Kamailio, Options, RawUa, Storage, unix_now};
use presence_transport::testkit::{Harness, Shown, publication};
use presence_transport::{EventReceiver, PresenceTransport, TransportEvent, event_channel};
use tokio::sync::Mutex;

struct Simple {
    kamailio: std::sync::Mutex<Kamailio>,
    transport: SimpleTransport,
    events: Mutex<EventReceiver>,
    domain: String,
    udp: bool,
}

/// Kamailio with one worker per socket: its SQLite mode answers 500 (and can lose a
/// removal) when two workers write at once, which would make the suite's exact checks
/// flaky (the endpoint's own tests cover the 500 fix-ups).
fn kamailio() -> Kamailio {
    Kamailio::start(Options::default().workers(1))
        .unwrap_or_else(|e| panic!("Kamailio must start for this test: {e}"))
}

fn settings(kamailio: &Kamailio, transport: &str, extra: &str) -> SimpleSettings {
    toml::from_str(&format!(
        "server = \"{}\"\ntransport = \"{transport}\"\ndomain = \"{}\"\nreconnect-initial = \"50ms\"\nreconnect-max = \"300ms\"\nkeepalive = \"1s\"\nrequest-timeout = \"2s\"\nretry-initial = \"50ms\"\n{extra}",
        kamailio.addr(),
        kamailio.domain()
    ))
    .expect("valid settings")
}

impl Simple {
    async fn start(transport: &str) -> Simple {
        let kamailio = kamailio();
        let settings = settings(&kamailio, transport, "");
        let (events, receiver) = event_channel();
        let (handle, _task) =
            SimpleTransport::start(&settings, Platform::simple(), events).expect("starts");
        Simple {
            domain: kamailio.domain().to_owned(),
            kamailio: std::sync::Mutex::new(kamailio),
            transport: handle,
            events: Mutex::new(receiver),
            udp: transport == "udp",
        }
    }

    fn kamailio(&self) -> std::sync::MutexGuard<'_, Kamailio> {
        self.kamailio.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the bridge's default mapping makes of a PIDF body, as a class.
fn class_of_body(body: &str) -> Shown {
    let document = pidf::read(body.as_bytes()).expect("Kamailio stores the PIDF as sent");
    let (raw, _) = Mapping::default().pull(&document);
    Shown::Class(Availability::from_wire(raw).class())
}

/// The class the default mapping shows once `p` is published (`Nothing` when it removes).
fn expected_class(p: &presence_model::Publication) -> Shown {
    match Mapping::default().push(p) {
        PushTarget::Publish(state) => {
            let body = pidf::write("sip:x@test.local", "t", "p", &state, &p.presence.activities);
            class_of_body(&body)
        }
        PushTarget::Remove | PushTarget::Nothing => Shown::Nothing,
    }
}

#[async_trait::async_trait]
impl Harness for Simple {
    fn transport(&self) -> Arc<dyn PresenceTransport> {
        Arc::new(self.transport.clone())
    }

    fn platform(&self) -> Platform {
        Platform::simple()
    }

    fn user(&self, n: usize) -> UserId {
        UserId::sip(
            Platform::simple(),
            SipUri::new(&format!("sip:user{n}@{}", self.domain)).expect("a valid URI"),
        )
    }

    async fn next_event(&self, wait: Duration) -> Option<TransportEvent> {
        let mut events = self.events.lock().await;
        if let Some(event) = events.try_recv() {
            return Some(event);
        }
        tokio::time::timeout(wait, events.recv())
            .await
            .ok()
            .flatten()
    }

    async fn shows(&self, user: &UserId) -> Shown {
        let name = user.sip_uri().expect("SIP users").user().to_owned();
        let live = self
            .kamailio()
            .live_presentity(unix_now())
            .expect("the presentity table reads");
        let mine: Vec<_> = live.iter().filter(|p| p.username == name).collect();
        assert!(
            mine.len() <= 1,
            "more than one live publication for {name}: {mine:?}"
        );
        match mine.first().and_then(|p| p.body.as_deref()) {
            Some(body) => class_of_body(body),
            None => Shown::Nothing,
        }
    }

    fn expected(&self, p: &presence_model::Publication) -> Shown {
        expected_class(p)
    }

    fn reported(&self, set: Availability) -> presence_model::AvailabilityClass {
        match expected_class(&publication(u32::from(set.get()))) {
            Shown::Class(class) => class,
            Shown::Nothing => presence_model::AvailabilityClass::Offline,
        }
    }

    async fn set_user_presence(&self, user: &UserId, availability: Availability) {
        let uri = user.sip_uri().expect("SIP users").clone();
        let p = publication(u32::from(availability.get()));
        let PushTarget::Publish(state) = Mapping::default().push(&p) else {
            panic!("the suite sets presences that publish");
        };
        let body = pidf::write(
            uri.as_str(),
            "phone",
            "phone-p",
            &state,
            &p.presence.activities,
        );
        let addr = self.kamailio().addr();
        let domain = self.domain.clone();
        tokio::task::spawn_blocking(move || {
            let mut ua = RawUa::connect(addr, &domain).expect("a UDP socket");
            let answer = ua
                .publish(uri.user(), &body, 600, None)
                .expect("Kamailio answers");
            assert!(
                answer.is_success(),
                "the second user agent's PUBLISH: {}",
                answer.status
            );
        })
        .await
        .expect("the publisher ran");
    }

    async fn drop_connection(&self) {
        // A server restart ends every TCP connection. UDP has no connection: the server
        // stays away longer than `request-timeout`, so that the probe notices.
        let udp = self.udp;
        let mut kamailio = self.kamailio();
        if udp {
            kamailio.stop();
            std::thread::sleep(Duration::from_millis(2500));
        }
        kamailio
            .restart()
            .expect("Kamailio restarts on the same port");
    }

    fn report_within(&self) -> Duration {
        Duration::from_secs(2)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

mod tcp {
    presence_transport::conformance_suite!(super::Simple::start("tcp"));
}

mod udp {
    presence_transport::conformance_suite!(super::Simple::start("udp"));
}

async fn wait_connected(events: &mut EventReceiver) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(TransportEvent::Connected { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await
    .expect("the transport connects to Kamailio");
}

/// A burst for 1,000 users over one TCP connection, each published three times: Kamailio
/// holds exactly one live publication per user at the end, and a watcher subscribed to all
/// of them sees each with the last state; logging them out (Offline) leaves none.
///
/// Kamailio keeps publications in memory here (`publ_cache=2`): in its SQLite mode a
/// removal whose `DELETE` hits "database is locked" (its clean-up timer writes too) was seen
/// answered `200` with the row left live, which is the server's storage failing, not the
/// protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_users_leaves_one_publication_each_and_logout_removes_them() {
    let kamailio = Kamailio::start(Options::default().workers(1).storage(Storage::Memory))
        .unwrap_or_else(|e| panic!("Kamailio must start for this test: {e}"));
    let settings = settings(&kamailio, "tcp", "max-in-flight = 32\n");
    let (events, mut receiver) = event_channel();
    let (transport, _task) =
        SimpleTransport::start(&settings, Platform::simple(), events).expect("starts");
    wait_connected(&mut receiver).await;
    let users: Vec<UserId> = (0..1000)
        .map(|n| {
            UserId::sip(
                Platform::simple(),
                SipUri::new(&format!("sip:agent{n}@test.local")).unwrap(),
            )
        })
        .collect();
    let publish_all = |p: presence_model::Publication| {
        let mut tasks = tokio::task::JoinSet::new();
        for user in &users {
            let (t, u, p) = (transport.clone(), user.clone(), p.clone());
            tasks.spawn(async move {
                // A transient failure is retried by the caller (the engine's publisher
                // does, with back-off).
                for attempt in 0..20 {
                    match t.publish(&u, &p).await {
                        Ok(()) => return,
                        Err(e) if e.is_transient() => {
                            tokio::time::sleep(Duration::from_millis(20 * (attempt + 1))).await;
                        }
                        Err(e) => panic!("{u}: {e}"),
                    }
                }
                panic!("{u}: still failing after 20 attempts");
            });
        }
        tasks
    };
    for availability in [3500, 6500, 15500] {
        let mut tasks = publish_all(publication(availability));
        while let Some(done) = tasks.join_next().await {
            done.expect("a publishing task");
        }
    }
    let live = kamailio
        .wait_live_presentity(Duration::from_secs(5), |rows| rows.len() >= 1000)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut per_user = std::collections::HashMap::<&str, usize>::new();
    for p in &live {
        *per_user.entry(p.username.as_str()).or_default() += 1;
    }
    assert_eq!(per_user.len(), 1000, "every user has a publication");
    assert!(
        per_user.values().all(|&n| n == 1),
        "exactly one live publication per user"
    );
    // What watchers see: the last state, for every user.
    let (watch_events, mut watched) = event_channel();
    let (watcher, _watch_task) =
        SimpleTransport::start(&settings, Platform::simple(), watch_events).expect("starts");
    wait_connected(&mut watched).await;
    watcher.subscribe(&users).await.expect("subscribes");
    let away = expected_class(&publication(15500));
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < users.len() {
        match tokio::time::timeout_at(deadline, watched.recv()).await {
            Ok(Some(TransportEvent::Presence(p))) => {
                if Shown::Class(p.availability.class()) == away {
                    seen.insert(p.user);
                }
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    assert_eq!(seen.len(), 1000, "the watcher saw every user Away");
    watcher.shutdown(Duration::from_secs(1)).await;

    let mut tasks = publish_all(publication(18000));
    while let Some(done) = tasks.join_next().await {
        done.expect("a removing task");
    }
    let left = kamailio
        .wait_live_presentity(Duration::from_secs(5), |rows| rows.is_empty())
        .map_or_else(|e| e.to_string(), |_| String::new());
    assert!(left.is_empty(), "logout removes every publication: {left}");
    transport.shutdown(Duration::from_secs(1)).await;
}

/// A pull user published by another user agent: the NOTIFY bodies come back mapped onto the
/// SfB scale, once per change; Kamailio's first NOTIFY (nothing published) is Offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_from_another_user_agent_map_onto_the_sfb_scale() {
    let kamailio = kamailio();
    let settings = settings(&kamailio, "udp", "");
    let (events, mut receiver) = event_channel();
    let (transport, _task) =
        SimpleTransport::start(&settings, Platform::simple(), events).expect("starts");
    wait_connected(&mut receiver).await;
    let user = UserId::sip(
        Platform::simple(),
        SipUri::new("sip:watched@test.local").unwrap(),
    );
    transport
        .subscribe(std::slice::from_ref(&user))
        .await
        .unwrap();
    let mut next_presence = async || {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(TransportEvent::Presence(p)) = receiver.recv().await {
                    return p;
                }
            }
        })
        .await
        .expect("a presence update")
    };
    assert_eq!(
        next_presence().await.raw_availability,
        18000,
        "nothing published yet"
    );
    let addr = kamailio.addr();
    let publish = move |body: String| {
        let mut ua = RawUa::connect(addr, "test.local").unwrap();
        let answer = ua.publish("watched", &body, 600, None).unwrap();
        assert!(answer.is_success(), "{}", answer.status);
    };
    let body = r#"<?xml version="1.0"?><p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" xmlns:d="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:watched@test.local"><p:tuple id="phone"><p:status><p:basic>open</p:basic></p:status></p:tuple><d:person id="x"><r:activities><r:on-the-phone/></r:activities><d:note xml:lang="en">On a call</d:note></d:person></p:presence>"#;
    tokio::task::spawn_blocking(move || publish(body.to_owned()))
        .await
        .unwrap();
    let busy = next_presence().await;
    assert_eq!(busy.raw_availability, 6500);
    assert_eq!(busy.activity.as_deref(), Some("On a call"));
    transport.shutdown(Duration::from_secs(1)).await;
}
