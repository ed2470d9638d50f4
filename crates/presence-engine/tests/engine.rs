//! The engine against mocked ports (mockall) on tokio's paused clock.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockall::mock;
use presence_config::{LoadOptions, NoSections, Source, load};
use presence_engine::{Engine, EngineConfig, EngineHandle, EngineOptions};
use presence_model::{AgentState, DeviceState, Presence, SipUri, StateIndex};
use presence_tlib::{
    ClientId, ClientMessage, ClientRequest, ClientSink, ConnId, ErrorCode, Extensions, LinkInput,
    MemorySink, ServerEvent, WorkMode, ext,
};
use presence_transport::{
    EventSender, PresenceTransport, PresenceUpdate, TransportError, TransportEvent, event_channel,
};
use tokio::sync::mpsc;
use tokio::time::sleep;

mock! {
    pub Transport {}
    impl PresenceTransport for Transport {
        fn publish(&self, user: &SipUri, presence: &Presence) -> impl Future<Output = Result<(), TransportError>> + Send;
        fn subscribe(&self, users: &[SipUri]) -> impl Future<Output = Result<(), TransportError>> + Send;
        fn unsubscribe(&self, users: &[SipUri]) -> impl Future<Output = Result<(), TransportError>> + Send;
    }
}

mock! {
    pub Sink {}
    impl ClientSink for Sink {
        fn send(&self, client: ClientId, event: ServerEvent);
    }
}

const SEED_MAP: &str = include_str!("../../../examples/agent-states.xml");

const CONFIG: &str = r#"
[options.TServer]
presence-profile = "Pull"

[dn.Push]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", agent-presence-map = "map.xml", aggregated-states = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7=INCALL, 8=INCALL, 9=INCALL, 10=INCALL, 11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS" }

[dn.Pull]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true", presence-availability-range = "3000-5999" }

[dn."5001"]
type = "Extension"
uri = "sip:agent1@contoso.com"
annex.TServer = { presence-profile = "Push" }

[dn."6001"]
type = "Extension"
uri = "sip:expert1@contoso.com"
"#;

fn engine_config(text: &str, map: &str) -> EngineConfig {
    let source = Source {
        path: Path::new("conf/bridge.toml"),
        text,
    };
    let map = map.as_bytes().to_vec();
    let loaded = load::<NoSections>(&source, &LoadOptions::default(), &mut |_| Ok(map.clone()))
        .unwrap_or_else(|d| panic!("{d}"));
    EngineConfig::new(loaded.config).unwrap()
}

fn uri(s: &str) -> SipUri {
    SipUri::new(s).unwrap()
}

/// What the mocked transport saw.
#[derive(Default)]
struct Seen {
    published: Vec<(SipUri, Presence)>,
    subscribed: Vec<Vec<SipUri>>,
    unsubscribed: Vec<Vec<SipUri>>,
}

type Shared = Arc<Mutex<Seen>>;

/// A transport mock that records everything and answers publications after `delay`
/// (paused time) with what `outcome` says.
fn recording_transport(
    seen: &Shared,
    delay: Duration,
    outcome: impl Fn(usize) -> Result<(), TransportError> + Send + Sync + 'static,
) -> MockTransport {
    let mut t = MockTransport::new();
    let s = Arc::clone(seen);
    let outcome = Arc::new(outcome);
    t.expect_publish().returning(move |user, presence| {
        let n = {
            let mut seen = s.lock().unwrap();
            seen.published.push((user.clone(), presence.clone()));
            seen.published.len()
        };
        let outcome = Arc::clone(&outcome);
        Box::pin(async move {
            sleep(delay).await;
            outcome(n)
        })
    });
    let s = Arc::clone(seen);
    t.expect_subscribe().returning(move |users| {
        s.lock().unwrap().subscribed.push(users.to_vec());
        Box::pin(async { Ok(()) })
    });
    let s = Arc::clone(seen);
    t.expect_unsubscribe().returning(move |users| {
        s.lock().unwrap().unsubscribed.push(users.to_vec());
        Box::pin(async { Ok(()) })
    });
    t
}

struct Harness {
    link: mpsc::Sender<LinkInput>,
    events: EventSender,
    sink: Arc<MemorySink>,
    handle: EngineHandle,
    seen: Shared,
    next_ref: u64,
}

const CLIENT: ClientId = ClientId::new(1);

impl Harness {
    async fn start(config: EngineConfig, transport: MockTransport, seen: Shared) -> Harness {
        let (events, receiver) = event_channel();
        let sink = Arc::new(MemorySink::new());
        let (link, link_rx) = mpsc::channel(1024);
        let options = EngineOptions {
            max_in_flight: 16,
            ..EngineOptions::default()
        };
        let (engine, handle) = Engine::new(config, Arc::new(transport), Arc::clone(&sink), options);
        tokio::spawn(engine.run(link_rx, receiver));
        link.send(LinkInput::Connected(CLIENT, "test".into()))
            .await
            .unwrap();
        Harness {
            link,
            events,
            sink,
            handle,
            seen,
            next_ref: 0,
        }
    }

    async fn settle(&self) {
        sleep(Duration::from_millis(50)).await;
    }

    async fn connect(&self) {
        self.events.send(TransportEvent::Connected {
            peer: "mock".into(),
        });
        self.settle().await;
    }

    /// Sends a request from `client` and returns the answer it got.
    async fn request_from(&mut self, client: ClientId, body: ClientRequest) -> ServerEvent {
        self.next_ref += 1;
        let reference_id = self.next_ref;
        self.link
            .send(LinkInput::Message(
                client,
                ClientMessage::new(reference_id, body),
            ))
            .await
            .unwrap();
        self.settle().await;
        let answers: Vec<ServerEvent> = self
            .sink
            .take()
            .into_iter()
            .filter(|(c, e)| *c == client && e.reference_id() == Some(reference_id))
            .map(|(_, e)| e)
            .collect();
        assert_eq!(answers.len(), 1, "one answer per request: {answers:?}");
        answers.into_iter().next().unwrap()
    }

    async fn request(&mut self, body: ClientRequest) -> ServerEvent {
        self.request_from(CLIENT, body).await
    }

    fn shows(&self, user: &SipUri) -> Option<Presence> {
        let seen = self.seen.lock().unwrap();
        seen.published
            .iter()
            .rev()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
    }

    fn publish_count(&self) -> usize {
        self.seen.lock().unwrap().published.len()
    }
}

fn dn(n: &str) -> presence_model::DnNumber {
    n.parse().unwrap()
}

fn login(this_dn: &str, profile: Option<&str>) -> ClientRequest {
    let mut extensions = Extensions::new();
    if let Some(p) = profile {
        extensions.insert(ext::PRESENCE_PROFILE, p);
    }
    ClientRequest::RequestAgentLogin {
        this_dn: dn(this_dn),
        agent_id: "agent1".parse().unwrap(),
        workmode: None,
        extensions,
    }
}

fn conn(id: &str) -> ConnId {
    id.parse().unwrap()
}

/// Drives DN 5001 to (agent, device) with the messages a contact centre would send.
async fn drive(h: &mut Harness, agent: AgentState, device: DeviceState) {
    let this_dn = dn("5001");
    // Device first: OOS, a call, or neither.
    let call = ClientRequest::EventReleased {
        this_dn: this_dn.clone(),
        conn_id: conn("c1"),
    };
    h.request(call).await;
    h.request(ClientRequest::EventDNBackInService {
        this_dn: this_dn.clone(),
    })
    .await;
    match device {
        DeviceState::Idle => {}
        DeviceState::Busy => {
            h.request(ClientRequest::EventEstablished {
                this_dn: this_dn.clone(),
                conn_id: conn("c1"),
            })
            .await;
        }
        DeviceState::Oos => {
            h.request(ClientRequest::EventDNOutOfService {
                this_dn: this_dn.clone(),
            })
            .await;
        }
    }
    let view = h.handle.dn("5001").await.unwrap().unwrap();
    let logged_in = view.agent_state != "Logout";
    match agent {
        AgentState::Logout => {
            if logged_in {
                h.request(ClientRequest::RequestAgentLogout { this_dn })
                    .await;
            }
        }
        other => {
            if !logged_in {
                h.request(login("5001", None)).await;
            }
            let body = match other {
                AgentState::Ready => ClientRequest::RequestAgentReady { this_dn },
                AgentState::NotReady => ClientRequest::RequestAgentNotReady {
                    this_dn,
                    workmode: Some(WorkMode::AuxWork),
                },
                AgentState::Acw => ClientRequest::RequestAgentNotReady {
                    this_dn,
                    workmode: Some(WorkMode::AfterCallWork),
                },
                _ => ClientRequest::RequestAgentNotReady {
                    this_dn,
                    workmode: Some(WorkMode::WalkAway),
                },
            };
            h.request(body).await;
        }
    }
    h.settle().await;
}

/// Every row of the seed table: after driving the DN to the combination, SfB shows the row's
/// availability and text.
#[tokio::test(start_paused = true)]
async fn every_row_of_the_state_table_is_published() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let mut h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    h.connect().await;
    let user = uri("sip:agent1@contoso.com");
    // Start-up: Logout/Idle is published once connected.
    assert_eq!(h.shows(&user).unwrap().availability.get(), 18000);
    let expected: [(u16, &str); 15] = [
        (18000, "Logged out"),
        (3501, "I am available"),
        (6001, "I am not available"),
        (6001, "I am in After Call Work, do not disturb me"),
        (4501, "I am away from my desk"),
        (7001, "Working with customer, do not disturb"),
        (7001, "Working with customer, do not disturb"),
        (7001, "Working with customer, do not disturb"),
        (7001, "Working with customer, do not disturb"),
        (7001, "Working with customer, do not disturb"),
        (18000, "The device is out of service"),
        (18000, "The device is out of service"),
        (18000, "The device is out of service"),
        (18000, "The device is out of service"),
        (18000, "The device is out of service"),
    ];
    for index in StateIndex::ALL {
        drive(&mut h, index.agent(), index.device()).await;
        let view = h.handle.dn("5001").await.unwrap().unwrap();
        assert_eq!(
            (view.agent_state, view.device_state),
            (index.agent().name(), index.device().name())
        );
        let shows = h.shows(&user).unwrap();
        let (availability, text) = expected[index.slot()];
        assert_eq!(shows.availability.get(), availability, "row {index}");
        let first = shows
            .activities
            .iter()
            .next()
            .map(|(_, t)| t.as_str().to_owned());
        assert_eq!(first.as_deref(), Some(text), "row {index}");
        assert_eq!(
            view.last_published_state, view.target_state,
            "row {index} confirmed"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn profile_resolution_login_dn_application_and_refusals() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let mut h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    h.connect().await;
    // DN level (5001: Push) and application level (6001: Pull).
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    assert_eq!(
        (v.profile.as_deref(), v.profile_source, v.mode),
        (Some("Push"), Some("dn"), "push")
    );
    let v = h.handle.dn("6001").await.unwrap().unwrap();
    assert_eq!(
        (v.profile.as_deref(), v.profile_source, v.mode),
        (Some("Pull"), Some("application"), "pull")
    );
    assert!(
        h.seen
            .lock()
            .unwrap()
            .subscribed
            .iter()
            .flatten()
            .any(|u| u.as_str() == "sip:expert1@contoso.com")
    );

    // Login level wins: 5001 switches to pull for the session.
    let answer = h.request(login("5001", Some("Pull"))).await;
    let ServerEvent::EventAgentLogin { extensions, .. } = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(extensions.get(ext::PRESENCE_PROFILE), Some("Pull"));
    assert_eq!(extensions.get(ext::PRESENCE_PROFILE_SOURCE), Some("login"));
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    assert_eq!((v.mode, v.profile_source), ("pull", Some("login")));
    assert!(
        h.seen
            .lock()
            .unwrap()
            .subscribed
            .iter()
            .flatten()
            .any(|u| u.as_str() == "sip:agent1@contoso.com")
    );
    // Logout: back to the DN level, unsubscribed.
    h.request(ClientRequest::RequestAgentLogout {
        this_dn: dn("5001"),
    })
    .await;
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    assert_eq!((v.mode, v.profile_source), ("push", Some("dn")));
    assert!(
        h.seen
            .lock()
            .unwrap()
            .unsubscribed
            .iter()
            .flatten()
            .any(|u| u.as_str() == "sip:agent1@contoso.com")
    );

    // A login naming no profile: refused for that level only, the login succeeds.
    let answer = h.request(login("5001", Some("Nope"))).await;
    let ServerEvent::EventAgentLogin { extensions, .. } = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(extensions.get(ext::PRESENCE_PROFILE), Some("Push"));
    assert_eq!(extensions.get(ext::PRESENCE_PROFILE_SOURCE), Some("dn"));
    assert!(
        extensions
            .get(ext::PRESENCE_PROFILE_ERROR)
            .unwrap()
            .contains("`Nope`")
    );
    assert_eq!(
        h.handle.dn("5001").await.unwrap().unwrap().agent_state,
        "NotReady"
    );
}

#[tokio::test(start_paused = true)]
async fn pull_sends_dnd_on_change_to_every_registered_client() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let mut h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    h.connect().await;
    let second = ClientId::new(2);
    h.link
        .send(LinkInput::Connected(second, "second".into()))
        .await
        .unwrap();
    let answer = h
        .request(ClientRequest::RegisterAddress {
            this_dn: dn("6001"),
        })
        .await;
    assert!(matches!(
        answer,
        ServerEvent::EventRegistered { dnd: None, .. }
    ));
    h.request_from(
        second,
        ClientRequest::RegisterAddress {
            this_dn: dn("6001"),
        },
    )
    .await;
    let expert = uri("sip:expert1@contoso.com");
    let update = |raw: u64| {
        TransportEvent::Presence(PresenceUpdate::new(expert.clone(), raw, Some("x".into())))
    };
    let dnd_events = |h: &Harness| -> Vec<(ClientId, &'static str, u64)> {
        h.sink
            .take()
            .into_iter()
            .filter_map(|(c, e)| match e {
                ServerEvent::EventDNDOn { availability, .. } => Some((c, "on", availability)),
                ServerEvent::EventDNDOff { availability, .. } => Some((c, "off", availability)),
                _ => None,
            })
            .collect()
    };
    for (raw, expected) in [
        (3500, Some("off")), // first: always
        (4500, None),        // still available
        (0, None),           // not set
        (6500, Some("on")),
        (18500, None), // still unavailable (clamped)
        (5999, Some("off")),
    ] {
        h.events.send(update(raw));
        h.settle().await;
        let got = dnd_events(&h);
        match expected {
            None => assert!(got.is_empty(), "{raw}: {got:?}"),
            Some(state) => assert_eq!(
                got,
                vec![(CLIENT, state, raw), (second, state, raw)],
                "{raw}"
            ),
        }
    }
    // A second registration now reports the current DND state.
    let answer = h
        .request(ClientRequest::RegisterAddress {
            this_dn: dn("6001"),
        })
        .await;
    assert!(matches!(
        answer,
        ServerEvent::EventRegistered {
            dnd: Some(presence_model::DndState::Off),
            ..
        }
    ));
    // After a reconnect the first update emits again, and users are subscribed again.
    let subscriptions_before = h.seen.lock().unwrap().subscribed.len();
    h.connect().await;
    assert!(h.seen.lock().unwrap().subscribed.len() > subscriptions_before);
    h.events.send(update(5000));
    h.settle().await;
    assert_eq!(dnd_events(&h).len(), 2);
    // A re-subscription (the service ended the previous one) also makes the next update
    // report, even though the DND state did not change.
    h.events.send(TransportEvent::Subscribed {
        users: vec![expert.clone()],
    });
    h.events.send(update(5100));
    h.settle().await;
    assert_eq!(dnd_events(&h).len(), 2);
    h.events.send(update(5200));
    h.settle().await;
    assert!(dnd_events(&h).is_empty());
    // An unregistered client gets nothing more.
    h.request_from(
        second,
        ClientRequest::UnregisterAddress {
            this_dn: dn("6001"),
        },
    )
    .await;
    h.events.send(update(9000));
    h.settle().await;
    assert_eq!(dnd_events(&h), vec![(CLIENT, "on", 9000)]);
}

#[tokio::test(start_paused = true)]
async fn coalescing_under_a_slow_transport_sends_only_the_latest() {
    let seen = Shared::default();
    // Each publication takes 10 s to be accepted.
    let transport = recording_transport(&seen, Duration::from_secs(10), |_| Ok(()));
    let mut h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    h.connect().await;
    assert_eq!(h.publish_count(), 1, "Logout/Idle in flight");
    h.request(login("5001", None)).await;
    h.request(ClientRequest::RequestAgentReady {
        this_dn: dn("5001"),
    })
    .await;
    h.request(ClientRequest::EventRinging {
        this_dn: dn("5001"),
        conn_id: conn("c9"),
    })
    .await;
    h.request(ClientRequest::EventReleased {
        this_dn: dn("5001"),
        conn_id: conn("c9"),
    })
    .await;
    h.request(ClientRequest::RequestAgentNotReady {
        this_dn: dn("5001"),
        workmode: Some(WorkMode::AfterCallWork),
    })
    .await;
    assert_eq!(h.publish_count(), 1, "one in flight per user");
    sleep(Duration::from_secs(11)).await;
    assert_eq!(h.publish_count(), 2);
    let user = uri("sip:agent1@contoso.com");
    assert_eq!(
        h.shows(&user).unwrap().availability.get(),
        6001,
        "the latest: ACW"
    );
    sleep(Duration::from_secs(11)).await;
    assert_eq!(h.publish_count(), 2, "nothing stale follows");
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    assert_eq!(v.last_published_state.as_deref(), Some("IDLE_ACW"));
}

#[tokio::test(start_paused = true)]
async fn failed_publications_are_retried_and_resync_republishes() {
    let seen = Shared::default();
    // The first two publications fail.
    let transport = recording_transport(&seen, Duration::ZERO, |n| {
        if n <= 2 {
            Err(TransportError::Timeout)
        } else {
            Ok(())
        }
    });
    let h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    h.connect().await;
    assert_eq!(h.publish_count(), 1);
    sleep(Duration::from_secs(5)).await;
    assert_eq!(h.publish_count(), 3, "retried with back-off until accepted");
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    assert_eq!(v.last_published_state.as_deref(), Some("IDLE_OUT"));
    // A reconnect publishes the current state again even though it did not change.
    h.connect().await;
    assert_eq!(h.publish_count(), 4);
    // Not connected: parked until the next Connected, nothing is sent meanwhile.
    h.events.send(TransportEvent::Disconnected {
        reason: "test".into(),
    });
    h.settle().await;
    assert_eq!(h.publish_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn refused_requests_get_event_error_and_others_carry_on() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let mut h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    let answer = h
        .request(ClientRequest::RegisterAddress {
            this_dn: dn("9999"),
        })
        .await;
    assert!(
        matches!(&answer, ServerEvent::EventError { error_code: ErrorCode::UnknownDn, error_message, .. } if error_message.contains("9999"))
    );
    let answer = h
        .request(ClientRequest::RequestAgentReady {
            this_dn: dn("5001"),
        })
        .await;
    assert!(matches!(
        &answer,
        ServerEvent::EventError {
            error_code: ErrorCode::InvalidState,
            ..
        }
    ));
    h.request(login("5001", None)).await;
    let answer = h.request(login("5001", None)).await;
    assert!(
        matches!(&answer, ServerEvent::EventError { error_code: ErrorCode::InvalidState, error_message, .. } if error_message.contains("already logged in"))
    );
    let answer = h
        .request(ClientRequest::UnregisterAddress {
            this_dn: dn("5001"),
        })
        .await;
    assert!(matches!(
        &answer,
        ServerEvent::EventError {
            error_code: ErrorCode::UnknownDn,
            ..
        }
    ));
    let answer = h
        .request(ClientRequest::RequestAgentReady {
            this_dn: dn("5001"),
        })
        .await;
    assert!(matches!(answer, ServerEvent::EventAgentReady { .. }));
}

#[tokio::test(start_paused = true)]
async fn reload_switches_modes_and_republishes_edited_entries() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    h.connect().await;
    let agent = uri("sip:agent1@contoso.com");
    assert_eq!(h.shows(&agent).unwrap().availability.get(), 18000);
    // Edit the IDLE_OUT entry: the DN shows the new entry without a restart.
    let edited = SEED_MAP.replace(
        "availability=\"18000\">\n    <activity LCID=\"1033\">Logged out",
        "availability=\"15500\">\n    <activity LCID=\"1033\">Gone home",
    );
    assert_ne!(edited, SEED_MAP);
    let report = h
        .handle
        .reload(engine_config(CONFIG, &edited))
        .await
        .unwrap();
    assert_eq!(
        (report.dns, report.added, report.removed, report.reassigned),
        (2, 0, 0, 0)
    );
    h.settle().await;
    assert_eq!(h.shows(&agent).unwrap().availability.get(), 15500);
    // Move 5001 to the pull profile: it leaves the publisher and is subscribed.
    let switched = CONFIG.replace("annex.TServer = { presence-profile = \"Push\" }", "");
    let report = h
        .handle
        .reload(engine_config(&switched, &edited))
        .await
        .unwrap();
    assert_eq!(report.reassigned, 1);
    h.settle().await;
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    assert_eq!((v.mode, v.profile_source), ("pull", Some("application")));
    assert!(
        h.seen
            .lock()
            .unwrap()
            .subscribed
            .iter()
            .flatten()
            .any(|u| *u == agent)
    );
    let published = h.publish_count();
    h.events.send(TransportEvent::Presence(PresenceUpdate::new(
        agent.clone(),
        3500,
        None,
    )));
    h.settle().await;
    assert_eq!(h.publish_count(), published, "pull DNs publish nothing");
    // Remove 6001 from the configuration.
    let fewer = switched.replace(
        "[dn.\"6001\"]\ntype = \"Extension\"\nuri = \"sip:expert1@contoso.com\"\n",
        "",
    );
    let report = h
        .handle
        .reload(engine_config(&fewer, &edited))
        .await
        .unwrap();
    assert_eq!((report.dns, report.removed), (1, 1));
    h.settle().await;
    assert!(h.handle.dn("6001").await.unwrap().is_none());
    assert!(
        h.seen
            .lock()
            .unwrap()
            .unsubscribed
            .iter()
            .flatten()
            .any(|u| u.as_str() == "sip:expert1@contoso.com")
    );
}

#[tokio::test(start_paused = true)]
async fn the_sink_mock_sees_each_answer_once() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let mut sink = MockSink::new();
    sink.expect_send()
        .withf(|client, event| {
            *client == CLIENT
                && matches!(
                    event,
                    ServerEvent::EventAgentLogin {
                        reference_id: 7,
                        ..
                    }
                )
        })
        .times(1)
        .return_const(());
    let (events, receiver) = event_channel();
    let (link, link_rx) = mpsc::channel(8);
    let (engine, handle) = Engine::new(
        engine_config(CONFIG, SEED_MAP),
        Arc::new(transport),
        sink,
        EngineOptions::default(),
    );
    let running = tokio::spawn(engine.run(link_rx, receiver));
    link.send(LinkInput::Message(
        CLIENT,
        ClientMessage::new(7, login("5001", None)),
    ))
    .await
    .unwrap();
    sleep(Duration::from_millis(10)).await;
    drop(events);
    handle.shutdown(Duration::from_secs(1)).await;
    running.await.unwrap();
}
