//! The tokio driver against the simulator over real loopback sockets: TCP, mutual TLS with
//! certificates made by rcgen for the test, TLS failures, and faults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use presence_model::{Activities, ActivityText, Availability, Lcid, Presence, SipUri};
use presence_sfb::{SfbSettings, SfbTransport};
use presence_sfb_sim::tls::TestPki;
use presence_sfb_sim::{ServerConfig, SimConfig, SimServer};
use presence_transport::{EventReceiver, PresenceTransport, TransportError, TransportEvent};
use tokio::time::{Instant, sleep, timeout};

fn uri(s: &str) -> SipUri {
    SipUri::new(s).unwrap()
}

fn presence(availability: u32, text: &str) -> Presence {
    Presence {
        availability: Availability::new(availability).unwrap(),
        activities: Activities::new(vec![(Lcid::EN_US, ActivityText::new(text))]).unwrap(),
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
    let (transport, mut events, _task) = SfbTransport::start(&settings(
        &sim.local_addr().to_string(),
        "transport = \"tcp\"",
    ))
    .unwrap();
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    let agent = uri("sip:agent1@contoso.com");
    transport
        .publish(&agent, &presence(7001, "In a call"))
        .await
        .unwrap();
    let shown = sim.shows(&agent).unwrap();
    assert_eq!(
        (shown.availability, shown.texts[0].1.as_str()),
        (7001, "In a call")
    );

    let expert = uri("sip:expert1@contoso.com");
    transport
        .subscribe(std::slice::from_ref(&expert))
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || sim.dialog_count() == 1).await);
    sim.set_user_presence(&expert, 6500, Some("Busy"));
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
    assert!(transport.status().is_connected());
    transport.shutdown(Duration::from_secs(1)).await;
    assert!(matches!(
        transport.publish(&agent, &presence(3500, "a")).await,
        Err(TransportError::Shutdown)
    ));
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
    let (transport, mut events, _task) = SfbTransport::start(&s).unwrap();
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    let agent = uri("sip:agent1@contoso.com");
    transport
        .publish(&agent, &presence(3501, "I am available"))
        .await
        .unwrap();
    assert_eq!(sim.shows(&agent).unwrap().availability, 3501);
    transport.shutdown(Duration::from_secs(1)).await;
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
        let (transport, mut events, _task) = SfbTransport::start(&settings).unwrap();
        // With TLS 1.3 the server refuses a missing client certificate after the client
        // finished its handshake: the refusal then ends the connection at the first read.
        let event = wait_for(&mut events, Duration::from_secs(5), |e| {
            matches!(e, TransportEvent::Disconnected { .. })
        })
        .await;
        let TransportEvent::Disconnected { reason } = event else {
            unreachable!()
        };
        for needle in needles {
            assert!(reason.contains(needle), "{name}: {reason}");
        }
        transport.shutdown(Duration::from_millis(100)).await;
    }
    // Unreadable TLS material is refused at start, not retried.
    let missing = tls_settings(&pool, Path::new("/nonexistent/ca.pem"), None, "localhost");
    let err = SfbTransport::start(&missing).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

/// The simulator drops the connection in the middle of a burst for 1,000 users; after the
/// driver reconnects, the simulator shows the latest state of every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_mid_burst_loses_nothing() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = SfbTransport::start(&settings(
        &sim.local_addr().to_string(),
        "transport = \"tcp\"",
    ))
    .unwrap();
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    let users: Vec<SipUri> = (0..1000)
        .map(|i| uri(&format!("sip:agent{i:04}@contoso.com")))
        .collect();
    // One task per user: round 1 now, round 2 a little later (so the order per user is
    // fixed); the connection drops in between, in the middle of the burst.
    let mut tasks = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let transport = transport.clone();
        let user = user.clone();
        let first = presence(4000 + i as u32 % 1000, "round 1");
        let second = presence(5000 + i as u32 % 1000, "round 2");
        tasks.push(tokio::spawn(async move {
            tokio::join!(transport.publish(&user, &first), async {
                sleep(Duration::from_millis(20)).await;
                transport.publish(&user, &second).await
            })
        }));
    }
    sleep(Duration::from_millis(10)).await;
    sim.drop_connections();
    for task in tasks {
        // Each call settles (accepted, superseded or not connected); none hangs.
        let _ = timeout(Duration::from_secs(20), task)
            .await
            .expect("every publication settles");
    }
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    let all_latest = || {
        users.iter().enumerate().all(|(i, user)| {
            sim.shows(user).is_some_and(|s| {
                s.availability == 5000 + i as u32 % 1000 && s.texts[0].1 == "round 2"
            })
        })
    };
    let ok = eventually(Duration::from_secs(20), all_latest).await;
    if !ok {
        let wrong: Vec<String> = users
            .iter()
            .enumerate()
            .filter(|(i, user)| {
                !sim.shows(user).is_some_and(|s| {
                    s.availability == 5000 + *i as u32 % 1000 && s.texts[0].1 == "round 2"
                })
            })
            .map(|(_, u)| format!("{u}: {:?}", sim.shows(u)))
            .take(5)
            .collect();
        panic!("not every user shows round 2: {wrong:?}");
    }
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_conflicts_and_busy_answers_still_leave_the_latest_state() {
    let sim = sim(None).await;
    sim.random_conflicts(0.2);
    sim.random_errors(0.1, 503).unwrap();
    let (transport, mut events, _task) = SfbTransport::start(&settings(
        &sim.local_addr().to_string(),
        "transport = \"tcp\"\nmax-retries = 10\nmax-conflict-retries = 10",
    ))
    .unwrap();
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    let users: Vec<SipUri> = (0..300)
        .map(|i| uri(&format!("sip:u{i}@contoso.com")))
        .collect();
    // Three rounds per user, issued in order (join! polls them in order, so their commands
    // reach the driver in order); only the last one must show.
    let mut tasks = Vec::new();
    for user in &users {
        let transport = transport.clone();
        let user = user.clone();
        tasks.push(tokio::spawn(async move {
            let (p0, p1, p2) = (
                presence(3000, "r"),
                presence(3001, "r"),
                presence(3002, "r"),
            );
            let (a, b, c) = tokio::join!(
                transport.publish(&user, &p0),
                transport.publish(&user, &p1),
                transport.publish(&user, &p2),
            );
            [a, b, c].into_iter().filter(Result::is_ok).count()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap();
    }
    assert!(accepted >= 300, "{accepted}");
    for user in &users {
        assert_eq!(
            sim.shows(user).map(|s| s.availability),
            Some(3002),
            "{user}"
        );
    }
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn garbage_from_the_peer_resets_and_the_driver_recovers() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = SfbTransport::start(&settings(
        &sim.local_addr().to_string(),
        "transport = \"tcp\"",
    ))
    .unwrap();
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    let expert = uri("sip:expert@contoso.com");
    transport
        .subscribe(std::slice::from_ref(&expert))
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || sim.dialog_count() == 1).await);
    sim.send_garbage();
    let TransportEvent::Disconnected { reason } =
        wait_for(&mut events, Duration::from_secs(5), |e| {
            matches!(e, TransportEvent::Disconnected { .. })
        })
        .await
    else {
        unreachable!()
    };
    assert!(reason.contains("unreadable"), "{reason}");
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    // Subscriptions are renewed on the new connection.
    assert!(eventually(Duration::from_secs(5), || sim.dialog_count() >= 1).await);
    sim.set_user_presence(&expert, 9500, None);
    let event = wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Presence(_))
    })
    .await;
    assert!(matches!(event, TransportEvent::Presence(u) if u.raw_availability == 9500));
    let agent = uri("sip:a@contoso.com");
    transport
        .publish(&agent, &presence(3500, "back"))
        .await
        .unwrap();
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_peer_that_stops_reading_does_not_block_the_driver() {
    let sim = sim(None).await;
    let (transport, mut events, _task) = SfbTransport::start(&settings(
        &sim.local_addr().to_string(),
        "transport = \"tcp\"\nrequest-timeout = \"300ms\"\nmax-retries = 1",
    ))
    .unwrap();
    wait_for(&mut events, Duration::from_secs(5), |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    sim.stop_reading(true);
    let agent = uri("sip:a@contoso.com");
    // The same user over and over: latest wins, the outcome comes back (no hang).
    let mut last = None;
    for i in 0..50u32 {
        let transport = transport.clone();
        let agent = agent.clone();
        last = Some(tokio::spawn(async move {
            transport.publish(&agent, &presence(3000 + i, "x")).await
        }));
    }
    let outcome = timeout(Duration::from_secs(10), last.unwrap())
        .await
        .expect("settles")
        .unwrap();
    assert!(outcome.is_err(), "the pool never answered");
    sim.stop_reading(false);
    transport
        .publish(&agent, &presence(4000, "after"))
        .await
        .unwrap();
    assert_eq!(sim.shows(&agent).map(|s| s.availability), Some(4000));
    transport.shutdown(Duration::from_secs(1)).await;
}
