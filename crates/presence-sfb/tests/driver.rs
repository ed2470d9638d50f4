//! The tokio driver against the simulator over real loopback sockets: TCP, mutual TLS with
//! certificates made by rcgen for the test, TLS failures, faults, credit.
//!
//! Where a test needs retries, latest-wins or resync, the caller is the engine's own
//! `presence_push::Publisher`, driven as the engine drives a transport ([`Caller`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use presence_model::{
    Activities, ActivityText, AggregatedStateId, Availability, Lcid, Platform, Presence,
    Publication, SipUri, UserAddress, UserId,
};
use presence_push::{Publisher, PublisherConfig, Ticket};
use presence_sfb::{SfbError, SfbSettings, SfbTransport};
use presence_sfb_sim::tls::TestPki;
use presence_sfb_sim::{ServerConfig, SimConfig, SimServer};
use presence_transport::testkit::Logs;
use presence_transport::{
    EventReceiver, PresenceTransport, TransportError, TransportEvent, event_channel,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

fn user(s: &str) -> UserId {
    UserId::sip(Platform::sfb(), SipUri::new(s).unwrap())
}

fn sip(user: &UserId) -> &SipUri {
    user.sip_uri().expect("a SIP user")
}

fn publication(availability: u32, text: &str) -> Publication {
    Publication {
        id: AggregatedStateId::new(&format!("S{availability}")).unwrap(),
        presence: Presence {
            availability: Availability::new(availability).unwrap(),
            activities: Activities::new(vec![(Lcid::EN_US, ActivityText::new(text))]).unwrap(),
        },
    }
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("presence-sfb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings(pool: &str, extra: &str) -> SfbSettings {
    toml::from_str(&format!(
        "pool = \"{pool}\"\napplication-uri = \"sip:bridge@contoso.com\"\nretry-initial = \"50ms\"\nretry-max = \"200ms\"\nreconnect-initial = \"50ms\"\nreconnect-max = \"200ms\"\n{extra}"
    ))
    .unwrap()
}

fn tcp(sim: &SimServer, extra: &str) -> SfbSettings {
    settings(
        &sim.local_addr().to_string(),
        &format!("transport = \"tcp\"\n{extra}"),
    )
}

fn tls_settings(
    pool: &str,
    ca: &Path,
    cert: Option<(&Path, &Path)>,
    server_name: &str,
) -> SfbSettings {
    let mut extra = format!(
        "transport = \"tls\"\n[tls]\nca = \"{}\"\nserver-name = \"{server_name}\"\n",
        ca.display()
    );
    if let Some((c, k)) = cert {
        extra.push_str(&format!(
            "certificate = \"{}\"\nprivate-key = \"{}\"\n",
            c.display(),
            k.display()
        ));
    }
    settings(pool, &extra)
}

async fn sim(tls: Option<presence_sfb_sim::tls::ServerTls>) -> SimServer {
    SimServer::start(ServerConfig {
        tls,
        sim: SimConfig {
            seed: 11,
            ..SimConfig::default()
        },
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

/// Starts the transport for platform `sfb` on its own event channel.
fn start(settings: &SfbSettings) -> (SfbTransport, EventReceiver, JoinHandle<()>) {
    let (events, receiver) = event_channel();
    let (transport, task) = SfbTransport::start(settings, Platform::sfb(), events).unwrap();
    (transport, receiver, task)
}

/// Waits for the next event matching `want`, failing after `within`.
async fn wait_for(
    events: &mut EventReceiver,
    within: Duration,
    want: impl Fn(&TransportEvent) -> bool,
) -> TransportEvent {
    let deadline = Instant::now() + within;
    loop {
        let event = timeout(deadline - Instant::now(), events.recv())
            .await
            .expect("the event came in time")
            .expect("the driver runs");
        if want(&event) {
            return event;
        }
    }
}

/// The credit of the next `Connected`.
async fn connected(events: &mut EventReceiver) -> u32 {
    match wait_for(events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await
    {
        TransportEvent::Connected { credit, .. } => credit,
        _ => unreachable!(),
    }
}

/// Every event that arrives within `d`.
async fn events_within(events: &mut EventReceiver, d: Duration) -> Vec<TransportEvent> {
    let deadline = Instant::now() + d;
    let mut out = Vec::new();
    while let Ok(Some(event)) = timeout(deadline - Instant::now(), events.recv()).await {
        out.push(event);
    }
    out
}

fn credit_in(events: &[TransportEvent]) -> u32 {
    events
        .iter()
        .map(|e| match e {
            TransportEvent::Credit { credit, .. } => *credit,
            _ => 0,
        })
        .sum()
}

async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        sleep(Duration::from_millis(20)).await;
    }
    check()
}

#[tokio::test]
async fn publish_and_subscribe_over_tcp() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = start(&tcp(&sim, ""));
    let event = wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    assert_eq!(
        event,
        TransportEvent::Connected {
            platform: Platform::sfb(),
            peer: sim.local_addr().to_string(),
            credit: 256,
        },
        "the credit is max-in-flight"
    );
    let agent = user("sip:agent1@contoso.com");
    transport
        .publish(&agent, &publication(7001, "In a call"))
        .await
        .unwrap();
    let shown = sim.shows(sip(&agent)).unwrap();
    assert_eq!(
        (shown.availability, shown.texts[0].1.as_str()),
        (7001, "In a call")
    );

    let expert = user("sip:expert1@contoso.com");
    transport
        .subscribe(std::slice::from_ref(&expert))
        .await
        .unwrap();
    let subscribed = wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Subscribed { .. })
    })
    .await;
    assert_eq!(
        subscribed,
        TransportEvent::Subscribed {
            users: vec![expert.clone()]
        }
    );
    sim.set_user_presence(sip(&expert), 6500, Some("Busy"));
    let TransportEvent::Presence(update) = wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Presence(_))
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(
        (
            update.user,
            update.raw_availability,
            update.activity.as_deref()
        ),
        (expert, 6500, Some("Busy"))
    );
    let status = transport.status();
    assert_eq!(status.len(), 1);
    assert_eq!(
        (
            &status[0].platform,
            status[0].connected,
            status[0].peer.as_str(),
            &status[0].detail,
            status[0].publications_in_flight
        ),
        (
            &Platform::sfb(),
            true,
            sim.local_addr().to_string().as_str(),
            &None,
            0
        )
    );
    transport.shutdown(Duration::from_secs(1)).await;
    assert!(matches!(
        transport.publish(&agent, &publication(3500, "a")).await,
        Err(TransportError::Shutdown)
    ));
    assert!(matches!(
        transport.unpublish(&agent).await,
        Err(TransportError::Shutdown)
    ));
    let status = &transport.status()[0];
    assert!(!status.connected);
    assert_eq!(status.detail.as_deref(), Some("shut down"));
}

#[tokio::test]
async fn mutual_tls_with_test_certificates() {
    let dir = Scratch::new("mtls");
    let pki = TestPki::localhost().unwrap();
    let files = pki.write_to(&dir.0).unwrap();
    let sim = sim(Some(pki.server_tls(true))).await;
    let pool = format!("localhost:{}", sim.local_addr().port());
    let s = tls_settings(
        &pool,
        &files.ca,
        Some((&files.client_cert, &files.client_key)),
        "localhost",
    );
    assert!(s.findings().is_empty(), "{:?}", s.findings());
    let (transport, mut events, _task) = start(&s);
    connected(&mut events).await;
    let agent = user("sip:agent1@contoso.com");
    transport
        .publish(&agent, &publication(3501, "I am available"))
        .await
        .unwrap();
    assert_eq!(sim.shows(sip(&agent)).unwrap().availability, 3501);
    transport.unpublish(&agent).await.unwrap();
    assert_eq!(sim.shows(sip(&agent)), None);
    transport.shutdown(Duration::from_secs(1)).await;
}

/// A pool whose certificate is a self-signed CA (CA:TRUE), as some lab pools and
/// appliances have: the bridge trusts it (it is in `ca`) and still refuses it; the reason
/// says why in plain words and what to issue instead.
#[tokio::test]
async fn a_self_signed_ca_as_the_pools_certificate_is_explained() {
    let dir = Scratch::new("tls-ca-as-leaf");
    let server =
        presence_sfb_sim::tls::ServerTls::self_signed(&["localhost", "127.0.0.1"], true).unwrap();
    let ca = dir.0.join("pool-self-signed.pem");
    std::fs::write(&ca, &server.cert_chain_pem).unwrap();
    let sim = sim(Some(server)).await;
    let pool = format!("localhost:{}", sim.local_addr().port());
    let (transport, mut events, _task) = start(&tls_settings(&pool, &ca, None, "localhost"));
    let TransportEvent::Disconnected { reason, .. } =
        wait_for(&mut events, Duration::from_secs(5), |e| {
            matches!(e, TransportEvent::Disconnected { .. })
        })
        .await
    else {
        unreachable!()
    };
    for needle in [
        "TLS handshake with `localhost` failed: the pool presented a CA certificate as its own (self-signed with CA:TRUE",
        "issue the pool a leaf certificate (CA:FALSE, for server authentication) signed by that CA",
        "`[sfb.tls] ca`",
        "CaUsedAsEndEntity",
    ] {
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
    transport.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn tls_failures_say_what_is_wrong() {
    let dir = Scratch::new("tls-failures");
    let pki = TestPki::localhost().unwrap();
    let files = pki.write_to(&dir.0).unwrap();
    let sim = sim(Some(pki.server_tls(true))).await;
    let pool = format!("localhost:{}", sim.local_addr().port());
    let cases: [(&str, SfbSettings, &[&str]); 3] = [
        (
            "unknown CA",
            tls_settings(
                &pool,
                &files.other_ca,
                Some((&files.client_cert, &files.client_key)),
                "localhost",
            ),
            &["UnknownIssuer", "[sfb.tls] ca"],
        ),
        (
            "wrong name",
            tls_settings(
                &pool,
                &files.ca,
                Some((&files.client_cert, &files.client_key)),
                "pool01.contoso.com",
            ),
            &["not valid for name", "server-name"],
        ),
        (
            "no client certificate",
            tls_settings(&pool, &files.ca, None, "localhost"),
            &["certificate"],
        ),
    ];
    for (name, settings, needles) in cases {
        let (transport, mut events, _task) = start(&settings);
        // With TLS 1.3 the server refuses a missing client certificate after the client
        // finished its handshake: the refusal then ends the connection at the first read.
        let event = wait_for(&mut events, Duration::from_secs(5), |e| {
            matches!(e, TransportEvent::Disconnected { .. })
        })
        .await;
        let TransportEvent::Disconnected { platform, reason } = event else {
            unreachable!()
        };
        assert_eq!(platform, Platform::sfb());
        for needle in needles {
            assert!(reason.contains(needle), "{name}: {reason}");
        }
        // The status says why it is not connected, until it is.
        let status = &transport.status()[0];
        assert!(!status.connected, "{name}");
        let detail = status.detail.as_deref().unwrap_or_default();
        for needle in needles {
            assert!(detail.contains(needle), "{name}: {detail}");
        }
        transport.shutdown(Duration::from_millis(100)).await;
    }
    // Unreadable TLS material is refused at start, not retried.
    let missing = tls_settings(&pool, Path::new("/nonexistent/ca.pem"), None, "localhost");
    let (events, _receiver) = event_channel();
    let err = SfbTransport::start(&missing, Platform::sfb(), events)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    // So are settings with an error finding.
    let no_ca = settings(&pool, "transport = \"tls\"");
    let (events, _receiver) = event_channel();
    let err = SfbTransport::start(&no_ca, Platform::sfb(), events).unwrap_err();
    assert!(
        matches!(
            &err,
            SfbError::Setting {
                key: "sfb.tls.ca",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn users_of_other_platforms_or_without_a_sip_uri_are_refused() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = start(&tcp(&sim, ""));
    connected(&mut events).await;
    let other_platform = UserId::sip(Platform::simple(), "sip:a@contoso.com".parse().unwrap());
    let upn = UserId::new(
        Platform::sfb(),
        UserAddress::Upn("a@contoso.com".parse().unwrap()),
    );
    let p = publication(3500, "a");
    for stranger in [&other_platform, &upn] {
        for result in [
            transport.publish(stranger, &p).await,
            transport.unpublish(stranger).await,
            transport.subscribe(std::slice::from_ref(stranger)).await,
            transport.unsubscribe(std::slice::from_ref(stranger)).await,
        ] {
            let err = result.expect_err("refused");
            assert!(
                matches!(&err, TransportError::Unsupported { user, .. } if user == stranger),
                "{err:?}"
            );
            assert!(!err.is_transient());
        }
    }
    // A refused publication gives its credit back (two were refused above).
    let grants = events_within(&mut events, Duration::from_millis(300)).await;
    assert_eq!(credit_in(&grants), 2, "{grants:?}");
    // Nothing reached the pool, and a mixed subscription is refused as a whole.
    assert_eq!(sim.published_count(), 0);
    let mixed = [user("sip:b@contoso.com"), upn];
    assert!(transport.subscribe(&mixed).await.is_err());
    sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.dialog_count(), 0);
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn credit_comes_with_the_connection_and_each_settled_publication_and_ends_with_it() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = start(&tcp(&sim, "max-in-flight = 4"));
    assert_eq!(connected(&mut events).await, 4);
    // Three publications settle: three credits.
    let (a, b, c) = (
        user("sip:a@contoso.com"),
        user("sip:b@contoso.com"),
        user("sip:c@contoso.com"),
    );
    let p = publication(6500, "busy");
    let (ra, rb, rc) = tokio::join!(
        transport.publish(&a, &p),
        transport.publish(&b, &p),
        transport.publish(&c, &p)
    );
    ra.unwrap();
    rb.unwrap();
    rc.unwrap();
    let grants = events_within(&mut events, Duration::from_millis(300)).await;
    assert_eq!(credit_in(&grants), 3, "{grants:?}");
    // A failed publication settles too: one credit.
    sim.fail_next(presence_sip::Method::Service, 1, 486)
        .unwrap();
    assert!(transport.publish(&a, &p).await.is_err());
    let grants = events_within(&mut events, Duration::from_millis(300)).await;
    assert_eq!(credit_in(&grants), 1, "{grants:?}");
    // A removal needs no credit and grants none.
    transport.unpublish(&a).await.unwrap();
    let grants = events_within(&mut events, Duration::from_millis(300)).await;
    assert_eq!(credit_in(&grants), 0, "{grants:?}");

    // A publication on the wire when the connection is lost fails and grants nothing.
    sim.stop_reading(true);
    sleep(Duration::from_millis(100)).await; // the simulator's readers saw it
    let stuck = {
        let transport = transport.clone();
        let p = p.clone();
        tokio::spawn(async move { transport.publish(&b, &p).await })
    };
    assert!(
        eventually(Duration::from_secs(2), || transport.status()[0]
            .publications_in_flight
            == 1)
        .await
    );
    sleep(Duration::from_millis(100)).await; // written to the socket by now
    sim.drop_connections();
    let result = timeout(Duration::from_secs(5), stuck)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(result, Err(TransportError::NotConnected)),
        "{result:?}"
    );
    sim.stop_reading(false);
    let mut seen = Vec::new();
    loop {
        let event = timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        let done = matches!(event, TransportEvent::Connected { .. });
        seen.push(event);
        if done {
            break;
        }
    }
    assert!(
        matches!(seen.first(), Some(TransportEvent::Disconnected { .. })),
        "{seen:?}"
    );
    assert_eq!(credit_in(&seen), 0, "{seen:?}");
    assert!(
        matches!(
            seen.last(),
            Some(TransportEvent::Connected { credit: 4, .. })
        ),
        "{seen:?}"
    );
    let later = events_within(&mut events, Duration::from_millis(300)).await;
    assert_eq!(credit_in(&later), 0, "{later:?}");
    // On the new connection, settling grants again.
    transport
        .publish(&c, &publication(3500, "back"))
        .await
        .unwrap();
    let grants = events_within(&mut events, Duration::from_millis(300)).await;
    assert_eq!(credit_in(&grants), 1, "{grants:?}");
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn retry_after_of_a_503_reaches_the_caller_and_nothing_is_resent() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = start(&tcp(&sim, ""));
    connected(&mut events).await;
    sim.fail_next(presence_sip::Method::Service, 1, 503)
        .unwrap();
    let agent = user("sip:agent1@contoso.com");
    let err = transport
        .publish(&agent, &publication(7001, "In a call"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::Rejected { status: 503, reason, retry_after: Some(d) }
            if reason.contains("ms-diagnostics") && *d == Duration::from_secs(1)),
        "{err:?}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(err.is_transient());
    // The transport does not try again on its own.
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.shows(sip(&agent)), None);
    assert_eq!(sim.published_count(), 0);
    transport
        .publish(&agent, &publication(7001, "In a call"))
        .await
        .unwrap();
    assert_eq!(sim.published_count(), 1);
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_second_publication_for_a_user_is_sent_after_the_first() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = start(&tcp(&sim, ""));
    connected(&mut events).await;
    let mut log = sim.events();
    let agent = user("sip:agent1@contoso.com");
    // join! polls in order, so the commands reach the driver in order.
    let (p1, p2) = (publication(3501, "first"), publication(7001, "second"));
    let (first, second) = tokio::join!(
        transport.publish(&agent, &p1),
        transport.publish(&agent, &p2)
    );
    first.unwrap();
    second.unwrap();
    let mut published = Vec::new();
    while let Ok(event) = log.try_recv() {
        if let presence_sfb_sim::SimEvent::Published { availability, .. } = event {
            published.push(availability);
        }
    }
    assert_eq!(published, vec![Some(3501), Some(7001)], "both, in order");
    assert_eq!(sim.shows(sip(&agent)).map(|s| s.availability), Some(7001));
    transport.shutdown(Duration::from_secs(1)).await;
}

/// An engine-like caller: the engine's publisher over the transport, publishing only with
/// credit from `Connected` / `Credit`, reporting every outcome, resyncing on `Connected`.
struct Caller {
    transport: SfbTransport,
    events: EventReceiver,
    users: Vec<UserId>,
    publisher: Publisher<usize>,
    credit: u64,
    connected: bool,
    done_tx: mpsc::UnboundedSender<(Ticket<usize>, Result<(), TransportError>)>,
    done: mpsc::UnboundedReceiver<(Ticket<usize>, Result<(), TransportError>)>,
    connects: usize,
    disconnects: usize,
    parked: usize,
    failed: usize,
    refused: usize,
}

impl Caller {
    fn new(transport: SfbTransport, events: EventReceiver, users: Vec<UserId>) -> Caller {
        let (done_tx, done) = mpsc::unbounded_channel();
        Caller {
            transport,
            events,
            users,
            publisher: Publisher::new(PublisherConfig {
                retry_initial: Duration::from_millis(50),
                retry_max: Duration::from_millis(500),
                ..PublisherConfig::default()
            }),
            credit: 0,
            connected: false,
            done_tx,
            done,
            connects: 0,
            disconnects: 0,
            parked: 0,
            failed: 0,
            refused: 0,
        }
    }

    fn set(&mut self, user: usize, publication: Publication) {
        self.publisher.set(user, Some(Arc::new(publication)));
    }

    fn flush(&mut self) {
        while self.connected && self.credit > 0 {
            let Some((ticket, publication)) = self.publisher.poll_publish() else {
                break;
            };
            self.credit -= 1;
            let transport = self.transport.clone();
            let user = self.users[ticket.user].clone();
            let done = self.done_tx.clone();
            tokio::spawn(async move {
                let result = transport.publish(&user, &publication).await;
                let _ = done.send((ticket, result));
            });
        }
    }

    fn on_event(&mut self, event: TransportEvent) {
        match event {
            TransportEvent::Connected { credit, .. } => {
                self.connects += 1;
                self.connected = true;
                self.credit = u64::from(credit);
                self.publisher.resync();
            }
            TransportEvent::Disconnected { .. } => {
                self.disconnects += 1;
                self.connected = false;
                self.credit = 0;
            }
            TransportEvent::Credit { credit, .. } => self.credit += u64::from(credit),
            _ => {}
        }
    }

    fn on_done(&mut self, ticket: &Ticket<usize>, result: Result<(), TransportError>) {
        match result {
            Ok(()) => self.publisher.complete(ticket),
            Err(TransportError::NotConnected | TransportError::Shutdown) => {
                self.parked += 1;
                self.publisher.park(ticket);
            }
            Err(error) if error.is_transient() => {
                self.failed += 1;
                let now = Instant::now().into_std();
                self.publisher.fail(ticket, now, error.retry_after());
            }
            Err(_) => {
                self.refused += 1;
                self.publisher.reject(ticket);
            }
        }
    }

    /// Runs the loop until `done` holds (checked every 20 ms) or `within` passes.
    async fn run_until(&mut self, within: Duration, mut done: impl FnMut(&Caller) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            self.flush();
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let retry = self.publisher.poll_timeout().map(Instant::from_std);
            let tick = (Instant::now() + Duration::from_millis(20)).min(deadline);
            let wake = retry.map_or(tick, |r| r.min(tick));
            tokio::select! {
                event = self.events.recv() => {
                    if let Some(event) = event { self.on_event(event) }
                }
                Some((ticket, result)) = self.done.recv() => self.on_done(&ticket, result),
                () = sleep_until(wake) => self.publisher.handle_timeout(Instant::now().into_std()),
            }
        }
    }
}

fn shows_all(
    sim: &SimServer,
    users: &[UserId],
    availability: impl Fn(usize) -> u32,
    text: &str,
) -> bool {
    users.iter().enumerate().all(|(i, u)| {
        sim.shows(sip(u))
            .is_some_and(|s| s.availability == availability(i) && s.texts[0].1 == text)
    })
}

fn wrong(sim: &SimServer, users: &[UserId], availability: impl Fn(usize) -> u32) -> Vec<String> {
    users
        .iter()
        .enumerate()
        .filter(|(i, u)| sim.shows(sip(u)).map(|s| s.availability) != Some(availability(*i)))
        .map(|(_, u)| format!("{u}: {:?}", sim.shows(sip(u))))
        .take(5)
        .collect()
}

/// The simulator drops the connection in the middle of a burst for 1,000 users; the
/// caller's resync after the driver reconnects leaves the latest state of every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_mid_burst_loses_nothing() {
    let sim = sim(None).await;
    let (transport, events, _task) = start(&tcp(&sim, "max-in-flight = 64"));
    let users: Vec<UserId> = (0..1000)
        .map(|i| user(&format!("sip:agent{i:04}@contoso.com")))
        .collect();
    let mut caller = Caller::new(transport.clone(), events, users.clone());
    assert!(
        caller
            .run_until(Duration::from_secs(5), |c| c.connected)
            .await
    );
    for i in 0..users.len() {
        caller.set(i, publication(4000 + i as u32, "round 1"));
    }
    // Round 2 comes while round 1 is still going out; the connection drops at once.
    assert!(
        caller
            .run_until(Duration::from_secs(10), |_| sim.published_count() >= 100)
            .await
    );
    for i in 0..users.len() {
        caller.set(i, publication(5000 + i as u32, "round 2"));
    }
    sim.drop_connections();
    let round2 = |i: usize| 5000 + i as u32;
    let ok = caller
        .run_until(Duration::from_secs(20), |c| {
            c.connects >= 2 && shows_all(&sim, &users, round2, "round 2")
        })
        .await;
    assert!(
        ok,
        "not every user shows round 2: {:?}",
        wrong(&sim, &users, round2)
    );
    assert!(caller.disconnects >= 1);
    assert!(
        caller.parked > 0,
        "the drop failed publications on the wire"
    );
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_conflicts_and_busy_answers_still_leave_the_latest_state() {
    let sim = sim(None).await;
    sim.random_conflicts(0.2);
    sim.random_errors(0.1, 503).unwrap();
    // A 409 the fix-up cannot end is a refusal the caller does not retry: allow enough
    // re-sends that a 20 % conflict rate never uses them up.
    let (transport, events, _task) = start(&tcp(&sim, "max-conflict-retries = 10"));
    let users: Vec<UserId> = (0..300)
        .map(|i| user(&format!("sip:u{i}@contoso.com")))
        .collect();
    let mut caller = Caller::new(transport.clone(), events, users.clone());
    assert!(
        caller
            .run_until(Duration::from_secs(5), |c| c.connected)
            .await
    );
    // Three rounds per user, each while the previous one is still going out.
    for (round, availability) in [3000, 3001, 3002].into_iter().enumerate() {
        for i in 0..users.len() {
            caller.set(i, publication(availability, "r"));
        }
        let after = 60 * (round as u64 + 1);
        assert!(
            caller
                .run_until(Duration::from_secs(10), |_| sim.published_count() >= after)
                .await
        );
    }
    let ok = caller
        .run_until(Duration::from_secs(30), |_| {
            shows_all(&sim, &users, |_| 3002, "r")
        })
        .await;
    assert!(ok, "{:?}", wrong(&sim, &users, |_| 3002));
    assert!(caller.failed > 0, "the 503s were felt");
    assert_eq!(caller.refused, 0);
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn garbage_from_the_peer_resets_and_the_driver_recovers() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = start(&tcp(&sim, ""));
    connected(&mut events).await;
    let expert = user("sip:expert@contoso.com");
    transport
        .subscribe(std::slice::from_ref(&expert))
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || sim.dialog_count() == 1).await);
    sim.send_garbage();
    let TransportEvent::Disconnected { reason, .. } =
        wait_for(&mut events, Duration::from_secs(5), |e| {
            matches!(e, TransportEvent::Disconnected { .. })
        })
        .await
    else {
        unreachable!()
    };
    assert!(reason.contains("unreadable"), "{reason}");
    connected(&mut events).await;
    // Subscriptions are renewed on the new connection, and reported again.
    wait_for(
        &mut events,
        Duration::from_secs(5),
        |e| matches!(e, TransportEvent::Subscribed { users } if users.contains(&expert)),
    )
    .await;
    assert!(eventually(Duration::from_secs(5), || sim.dialog_count() >= 1).await);
    sim.set_user_presence(sip(&expert), 9500, None);
    let event = wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Presence(_))
    })
    .await;
    assert!(
        matches!(event, TransportEvent::Presence(u) if u.raw_availability == 9500 && u.user == expert)
    );
    let agent = user("sip:a@contoso.com");
    transport
        .publish(&agent, &publication(3500, "back"))
        .await
        .unwrap();
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_does_not_block_the_driver() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = start(&tcp(&sim, "request-timeout = \"300ms\""));
    connected(&mut events).await;
    sim.stop_reading(true);
    sleep(Duration::from_millis(100)).await; // the simulator's readers saw it
    let users: Vec<UserId> = (0..20)
        .map(|i| user(&format!("sip:a{i}@contoso.com")))
        .collect();
    let calls: Vec<_> = users
        .iter()
        .map(|u| {
            let transport = transport.clone();
            let u = u.clone();
            tokio::spawn(async move { transport.publish(&u, &publication(3000, "x")).await })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(2), || transport.status()[0]
            .publications_in_flight
            == 20)
        .await
    );
    // Each is reported once, as a timeout; none hangs.
    for call in calls {
        let outcome = timeout(Duration::from_secs(5), call)
            .await
            .expect("settles")
            .unwrap();
        assert!(
            matches!(outcome, Err(TransportError::Timeout)),
            "{outcome:?}"
        );
    }
    assert_eq!(transport.status()[0].publications_in_flight, 0);
    // The pool reads again and answers the old requests late (ignored): its versions moved
    // on, so the next publication meets a 409, which the fix-up ends.
    sim.stop_reading(false);
    assert!(eventually(Duration::from_secs(2), || sim.published_count() == 20).await);
    transport
        .publish(&users[0], &publication(4000, "after"))
        .await
        .unwrap();
    assert_eq!(
        sim.shows(sip(&users[0])).map(|s| s.availability),
        Some(4000)
    );
    transport.shutdown(Duration::from_secs(1)).await;
}

/// A failed connection attempt, and a lost connection, say when the next attempt comes
/// (`retry_in`, within the configured back-off).
#[tokio::test]
async fn reconnect_warnings_say_when_the_next_attempt_comes() {
    let logs = Logs::default();
    let _guard = logs.capture();
    // A port nobody listens on: the connection is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut s = settings(&closed.to_string(), "transport = \"tcp\"\n");
    (s.reconnect_initial, s.reconnect_max) = (Duration::from_secs(2), Duration::from_secs(2));
    let (transport, mut events, _task) = start(&s);
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Disconnected { .. })
    })
    .await;
    let retry_in = logs.retry_in("SfB connection attempt failed");
    assert!((1.6..=2.4).contains(&retry_in), "{retry_in}");
    transport.shutdown(Duration::from_millis(100)).await;

    let sim = sim(None).await;
    let mut s = tcp(&sim, "");
    (s.reconnect_initial, s.reconnect_max) = (Duration::from_secs(3), Duration::from_secs(3));
    let (transport, mut events, _task) = start(&s);
    connected(&mut events).await;
    sim.drop_connections();
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Disconnected { .. })
    })
    .await;
    let retry_in = logs.retry_in("SfB connection lost");
    assert!((2.4..=3.6).contains(&retry_in), "{retry_in}");
    transport.shutdown(Duration::from_millis(100)).await;
}
