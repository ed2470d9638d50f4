//! The engine against mocked ports (mockall) on tokio's paused clock.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockall::mock;
use presence_config::{Addressing, LoadOptions, NoSections, PlatformSpec, Source, load};
use presence_engine::{Engine, EngineConfig, EngineHandle, EngineOptions};
use presence_model::{
    AgentState, DeviceState, Platform, Presence, Publication, SipUri, StateIndex, UserId,
};
use presence_tlib::{
    ClientId, ClientMessage, ClientRequest, ClientSink, ConnId, ErrorCode, Extensions, LinkInput,
    MemorySink, ServerEvent, WorkMode, ext,
};
use presence_transport::{
    EventSender, PresenceTransport, PresenceUpdate, TransportError, TransportEvent,
    TransportStatus, event_channel,
};
use tokio::sync::mpsc;
use tokio::time::sleep;

mock! {
    pub Transport {}
    #[async_trait::async_trait]
    impl PresenceTransport for Transport {
        async fn publish(&self, user: &UserId, publication: &Publication) -> Result<(), TransportError>;
        async fn unpublish(&self, user: &UserId) -> Result<(), TransportError>;
        async fn subscribe(&self, users: &[UserId]) -> Result<(), TransportError>;
        async fn unsubscribe(&self, users: &[UserId]) -> Result<(), TransportError>;
        fn status(&self) -> Vec<TransportStatus>;
        async fn shutdown(&self, grace: Duration);
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

fn sfb() -> Platform {
    Platform::sfb()
}

fn teams() -> Platform {
    Platform::teams()
}

/// The platforms of a hybrid bridge: SfB (SIP URIs) and Teams (UPNs / Entra ids).
fn hybrid() -> Vec<PlatformSpec> {
    vec![
        PlatformSpec {
            name: sfb(),
            addressing: Addressing::Sip,
        },
        PlatformSpec {
            name: teams(),
            addressing: Addressing::Entra,
        },
    ]
}

fn engine_config_on(text: &str, map: &str, platforms: &[PlatformSpec]) -> EngineConfig {
    let source = Source {
        path: Path::new("conf/bridge.toml"),
        text,
    };
    let map = map.as_bytes().to_vec();
    let loaded = load::<NoSections>(&source, &LoadOptions::default(), &mut |_| Ok(map.clone()))
        .unwrap_or_else(|d| panic!("{d}"));
    let users = loaded.config.users(platforms).unwrap_or_else(|d| {
        panic!(
            "{}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    EngineConfig::new(loaded.config, users).unwrap()
}

fn engine_config(text: &str, map: &str) -> EngineConfig {
    engine_config_on(text, map, &hybrid()[..1])
}

fn uri(s: &str) -> UserId {
    UserId::sip(sfb(), SipUri::new(s).unwrap())
}

fn upn(s: &str) -> UserId {
    UserId::new(
        teams(),
        presence_model::UserAddress::Upn(s.parse().unwrap()),
    )
}

/// What the fake transport saw.
#[derive(Default)]
struct Seen {
    published: Vec<(UserId, Presence)>,
    unpublished: Vec<UserId>,
    subscribed: Vec<Vec<UserId>>,
    unsubscribed: Vec<Vec<UserId>>,
}

type Shared = Arc<Mutex<Seen>>;
type Outcome = dyn Fn(usize) -> Result<(), TransportError> + Send + Sync;

/// A transport that records everything, answers publications after `delay` (paused time)
/// with what `outcome` says, and grants one credit back per settled publication.
struct Recording {
    seen: Shared,
    delay: Duration,
    outcome: Arc<Outcome>,
    events: Mutex<Option<EventSender>>,
}

#[async_trait::async_trait]
impl PresenceTransport for Recording {
    async fn publish(
        &self,
        user: &UserId,
        publication: &Publication,
    ) -> Result<(), TransportError> {
        let n = {
            let mut seen = self.seen.lock().unwrap();
            seen.published
                .push((user.clone(), publication.presence.clone()));
            seen.published.len()
        };
        sleep(self.delay).await;
        let events = self.events.lock().unwrap().clone();
        if let Some(events) = events {
            events.send(TransportEvent::Credit {
                platform: user.platform().clone(),
                credit: 1,
            });
        }
        (self.outcome)(n)
    }

    async fn unpublish(&self, user: &UserId) -> Result<(), TransportError> {
        self.seen.lock().unwrap().unpublished.push(user.clone());
        Ok(())
    }

    async fn subscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        self.seen.lock().unwrap().subscribed.push(users.to_vec());
        Ok(())
    }

    async fn unsubscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        self.seen.lock().unwrap().unsubscribed.push(users.to_vec());
        Ok(())
    }

    fn status(&self) -> Vec<TransportStatus> {
        Vec::new()
    }

    async fn shutdown(&self, _grace: Duration) {}
}

fn recording_transport(
    seen: &Shared,
    delay: Duration,
    outcome: impl Fn(usize) -> Result<(), TransportError> + Send + Sync + 'static,
) -> Recording {
    Recording {
        seen: Arc::clone(seen),
        delay,
        outcome: Arc::new(outcome),
        events: Mutex::new(None),
    }
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
    async fn start(config: EngineConfig, transport: Recording, seen: Shared) -> Harness {
        let (events, receiver) = event_channel();
        *transport.events.lock().unwrap() = Some(events.clone());
        let sink = Arc::new(MemorySink::new());
        let (link, link_rx) = mpsc::channel(1024);
        let (engine, handle) = Engine::new(
            config,
            Arc::new(transport),
            Arc::clone(&sink),
            EngineOptions::default(),
        );
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
        self.connect_platform(sfb(), 16).await;
    }

    async fn connect_platform(&self, platform: Platform, credit: u32) {
        self.events.send(TransportEvent::Connected {
            platform,
            peer: "mock".into(),
            credit,
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

    fn shows(&self, user: &UserId) -> Option<Presence> {
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
            .any(|u| *u == uri("sip:expert1@contoso.com"))
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
            .any(|u| *u == uri("sip:agent1@contoso.com"))
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
            .any(|u| *u == uri("sip:agent1@contoso.com"))
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
        platform: sfb(),
        reason: "test".into(),
    });
    h.settle().await;
    assert_eq!(h.publish_count(), 4);
}

/// Found by the fault soak (examples/soak.rs, Graph 429 for 60 s): a change whose
/// publication failed and that was undone before its retry left the DN in sync with the
/// platform, yet its view kept the failure for good, since no later publication succeeded
/// to clear it.
#[tokio::test(start_paused = true)]
async fn a_failure_is_not_shown_once_the_target_is_back_to_what_the_platform_confirmed() {
    let seen = Shared::default();
    // The second publication (the login's NotReady) is throttled; the others succeed.
    let transport = recording_transport(&seen, Duration::ZERO, |n| {
        if n == 2 {
            Err(TransportError::Rejected {
                status: 429,
                reason: "TooManyRequests".into(),
                retry_after: Some(Duration::from_secs(30)),
            })
        } else {
            Ok(())
        }
    });
    let mut h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    h.connect().await;
    assert_eq!(h.publish_count(), 1, "Logout/Idle confirmed");
    h.request(login("5001", None)).await;
    assert_eq!(h.publish_count(), 2);
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    let error = v
        .last_publication_error
        .expect("the throttled publication is shown");
    assert!(error.contains("429"), "{error}");
    // The agent logs out again before the retry: the target is what the platform shows.
    h.request(ClientRequest::RequestAgentLogout {
        this_dn: dn("5001"),
    })
    .await;
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    assert_eq!(v.target_state.as_deref(), Some("IDLE_OUT"));
    assert_eq!(v.last_published_state.as_deref(), Some("IDLE_OUT"));
    assert!(
        v.last_publication_error.is_none(),
        "in sync: the abandoned state's failure no longer applies: {v:?}"
    );
    sleep(Duration::from_secs(60)).await;
    assert_eq!(h.publish_count(), 2, "nothing was due, nothing was sent");
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
async fn a_reload_that_removes_a_dn_tells_its_registered_clients() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let mut h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    h.connect().await;
    let answer = h
        .request(ClientRequest::RegisterAddress {
            this_dn: dn("6001"),
        })
        .await;
    assert!(matches!(answer, ServerEvent::EventRegistered { .. }));
    h.sink.take();
    let fewer = CONFIG.replace(
        "[dn.\"6001\"]\ntype = \"Extension\"\nuri = \"sip:expert1@contoso.com\"\n",
        "",
    );
    assert_ne!(fewer, CONFIG);
    let report = h
        .handle
        .reload(engine_config(&fewer, SEED_MAP))
        .await
        .unwrap();
    assert_eq!(report.removed, 1);
    h.settle().await;
    let told = h.sink.sent_to(CLIENT);
    assert!(
        matches!(
            told.as_slice(),
            [ServerEvent::EventError { reference_id: None, error_code: ErrorCode::UnknownDn, error_message }]
                if error_message.contains("`6001`") && error_message.contains("removed")
        ),
        "{told:?}"
    );
    // Reloading the same file again tells nobody anything more.
    h.handle
        .reload(engine_config(&fewer, SEED_MAP))
        .await
        .unwrap();
    h.settle().await;
    assert_eq!(h.sink.sent_to(CLIENT).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn reload_switches_modes_and_republishes_edited_entries() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let h = Harness::start(engine_config(CONFIG, SEED_MAP), transport, seen).await;
    h.connect().await;
    let agent = uri("sip:agent1@contoso.com");
    assert_eq!(h.shows(&agent).unwrap().availability.get(), 18000);
    assert!(h.seen.lock().unwrap().unpublished.is_empty());
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
        (
            report.dns,
            report.added,
            report.removed,
            report.reassigned,
            report.moved
        ),
        (2, 0, 0, 0, 0)
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
    assert_eq!(
        h.seen.lock().unwrap().unpublished,
        vec![agent.clone()],
        "leaving push ends the bridge's publication"
    );
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
            .any(|u| *u == uri("sip:expert1@contoso.com"))
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
    let _ = &seen;
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

/// Five push DNs on SfB and one on Teams, for credit and hybrid tests.
fn many(teams_dn: &str) -> String {
    let mut text = CONFIG.replace(
        "[dn.\"6001\"]\ntype = \"Extension\"\nuri = \"sip:expert1@contoso.com\"\n",
        "[dn.\"6001\"]\ntype = \"Extension\"\nuri = \"sip:expert1@contoso.com\"\nplatform = \"sfb\"\n",
    );
    text = text.replace(
        "uri = \"sip:agent1@contoso.com\"\nannex",
        "uri = \"sip:agent1@contoso.com\"\nplatform = \"sfb\"\nannex",
    );
    for n in 2..=5 {
        text.push_str(&format!(
            "\n[dn.\"500{n}\"]\ntype = \"Extension\"\nuri = \"sip:agent{n}@contoso.com\"\nplatform = \"sfb\"\nannex.TServer = {{ presence-profile = \"Push\" }}\n"
        ));
    }
    text.push_str(&format!(
        "\n[dn.\"7001\"]\ntype = \"Extension\"\nuri = \"sip:teams1@contoso.com\"\nplatform = \"{teams_dn}\"\nannex.TServer = {{ presence-profile = \"Push\" }}\n"
    ));
    text
}

#[tokio::test(start_paused = true)]
async fn publications_go_out_only_with_credit() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::from_secs(10), |_| Ok(()));
    let config = engine_config_on(&many("teams"), SEED_MAP, &hybrid());
    let h = Harness::start(config, transport, seen).await;
    h.connect_platform(sfb(), 2).await;
    assert_eq!(h.publish_count(), 2, "two credits, two publications out");
    let stats = h.handle.stats().await.unwrap();
    let lane = stats
        .platforms
        .iter()
        .find(|p| p.platform == "sfb")
        .unwrap();
    assert_eq!((lane.credit, lane.publications_in_flight), (0, 2));
    assert_eq!(lane.publications_queued, 3);
    // Each settled publication gives its credit back (the fake grants one per settle).
    sleep(Duration::from_secs(11)).await;
    assert_eq!(h.publish_count(), 4);
    sleep(Duration::from_secs(11)).await;
    assert_eq!(h.publish_count(), 5);
    // The Teams DN waits for its own platform: nothing was sent to it.
    assert!(h.shows(&upn("teams1@contoso.com")).is_none());
    // An explicit grant releases work at once.
    h.connect_platform(teams(), 1).await;
    assert_eq!(h.publish_count(), 6);
    assert!(h.shows(&upn("teams1@contoso.com")).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_reload_moves_a_dn_from_sfb_to_teams() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let config = engine_config_on(&many("teams"), SEED_MAP, &hybrid());
    let mut h = Harness::start(config, transport, seen).await;
    h.connect_platform(sfb(), 16).await;
    h.connect_platform(teams(), 16).await;
    h.request(login("5001", None)).await;
    h.request(ClientRequest::RequestAgentReady {
        this_dn: dn("5001"),
    })
    .await;
    let on_sfb = uri("sip:agent1@contoso.com");
    assert_eq!(h.shows(&on_sfb).unwrap().availability.get(), 3501);
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    assert_eq!(
        (v.platform.as_deref(), v.user.as_deref()),
        (Some("sfb"), Some("sip:agent1@contoso.com"))
    );
    // Move 5001 to Teams: SfB's publication ends, Teams gets the current state.
    let moved = many("teams").replace(
        "uri = \"sip:agent1@contoso.com\"\nplatform = \"sfb\"",
        "uri = \"sip:agent1@contoso.com\"\nplatform = \"teams\"",
    );
    let report = h
        .handle
        .reload(engine_config_on(&moved, SEED_MAP, &hybrid()))
        .await
        .unwrap();
    assert_eq!((report.moved, report.removed, report.added), (1, 0, 0));
    h.settle().await;
    assert_eq!(h.seen.lock().unwrap().unpublished, vec![on_sfb.clone()]);
    let on_teams = upn("agent1@contoso.com");
    assert_eq!(
        h.shows(&on_teams).unwrap().availability.get(),
        3501,
        "Ready/Idle on Teams now"
    );
    let v = h.handle.dn("5001").await.unwrap().unwrap();
    assert_eq!(
        (v.platform.as_deref(), v.agent_state, v.mode),
        (Some("teams"), "Ready", "push")
    );
    // State changes now go to Teams only.
    let sfb_before = h.seen.lock().unwrap().published.len();
    h.request(ClientRequest::EventEstablished {
        this_dn: dn("5001"),
        conn_id: conn("c1"),
    })
    .await;
    assert_eq!(h.shows(&on_teams).unwrap().availability.get(), 7001);
    let seen = h.seen.lock().unwrap();
    assert!(
        seen.published[sfb_before..]
            .iter()
            .all(|(u, _)| u.platform() == &teams())
    );
}

#[tokio::test(start_paused = true)]
async fn one_platform_down_does_not_hold_up_another() {
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let config = engine_config_on(&many("teams"), SEED_MAP, &hybrid());
    let h = Harness::start(config, transport, seen).await;
    h.connect_platform(teams(), 4).await;
    h.connect_platform(sfb(), 16).await;
    h.events.send(TransportEvent::Disconnected {
        platform: teams(),
        reason: "token refused".into(),
    });
    h.settle().await;
    let before = h.publish_count();
    let mut h = h;
    h.request(login("5002", None)).await;
    assert_eq!(h.publish_count(), before + 1, "SfB still publishes");
    h.request(login("7001", None)).await;
    assert_eq!(
        h.publish_count(),
        before + 1,
        "Teams waits for its reconnect"
    );
    let stats = h.handle.stats().await.unwrap();
    assert!(!stats.transport_connected);
    let teams_lane = stats
        .platforms
        .iter()
        .find(|p| p.platform == "teams")
        .unwrap();
    assert_eq!((teams_lane.connected, teams_lane.push), (false, 1));
    h.connect_platform(teams(), 4).await;
    assert_eq!(
        h.shows(&upn("teams1@contoso.com"))
            .unwrap()
            .availability
            .get(),
        6001,
        "the resync publishes the latest state: NotReady"
    );
}

#[tokio::test(start_paused = true)]
async fn user_problems_and_refusals_show_in_the_dn_view() {
    let seen = Shared::default();
    // The first publication (the Teams user's, as only Teams connects) is refused for good.
    let transport = recording_transport(&seen, Duration::ZERO, |n| {
        if n == 1 {
            Err(TransportError::Unsupported {
                user: upn("teams1@contoso.com"),
                reason: "no such user in the tenant".into(),
            })
        } else {
            Ok(())
        }
    });
    let config = engine_config_on(&many("teams"), SEED_MAP, &hybrid());
    let mut h = Harness::start(config, transport, seen).await;
    h.connect_platform(teams(), 4).await;
    assert_eq!(h.publish_count(), 1);
    let v = h.handle.dn("7001").await.unwrap().unwrap();
    let error = v.last_publication_error.expect("the refusal is shown");
    assert!(error.contains("no such user"), "{error}");
    // Not retried as it is...
    sleep(Duration::from_secs(120)).await;
    assert_eq!(h.publish_count(), 1, "a refused state is not sent again");
    // ...but a change is sent, and success clears the error.
    h.request(login("7001", None)).await;
    assert_eq!(h.publish_count(), 2);
    let v = h.handle.dn("7001").await.unwrap().unwrap();
    assert!(v.last_publication_error.is_none(), "{v:?}");
    assert_eq!(v.last_published_state.as_deref(), Some("IDLE_NOTREADY"));
    // A problem the transport reports for a user shows in its DN and goes away.
    h.events.send(TransportEvent::UserProblem {
        user: upn("teams1@contoso.com"),
        problem: Some("`teams1@contoso.com` does not resolve in the tenant".into()),
    });
    h.settle().await;
    let v = h.handle.dn("7001").await.unwrap().unwrap();
    assert!(v.user_problem.unwrap().contains("does not resolve"));
    let stats = h.handle.stats().await.unwrap();
    let lane = stats
        .platforms
        .iter()
        .find(|p| p.platform == "teams")
        .unwrap();
    assert_eq!(lane.user_problems, 1);
    h.events.send(TransportEvent::UserProblem {
        user: upn("teams1@contoso.com"),
        problem: None,
    });
    h.settle().await;
    assert!(
        h.handle
            .dn("7001")
            .await
            .unwrap()
            .unwrap()
            .user_problem
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn removing_a_push_dn_ends_its_publication_once() {
    let mut transport = MockTransport::new();
    transport.expect_publish().returning(|_, _| Ok(()));
    transport.expect_subscribe().returning(|_| Ok(()));
    transport.expect_unsubscribe().returning(|_| Ok(()));
    transport
        .expect_unpublish()
        .withf(|user| *user == uri("sip:agent1@contoso.com"))
        .times(1)
        .returning(|_| Ok(()));
    let (events, receiver) = event_channel();
    let (_link, link_rx) = mpsc::channel(8);
    let (engine, handle) = Engine::new(
        engine_config(CONFIG, SEED_MAP),
        Arc::new(transport),
        Arc::new(MemorySink::new()),
        EngineOptions::default(),
    );
    let running = tokio::spawn(engine.run(link_rx, receiver));
    events.send(TransportEvent::Connected {
        platform: sfb(),
        peer: "mock".into(),
        credit: 8,
    });
    sleep(Duration::from_millis(50)).await;
    let without_5001 = CONFIG.replace(
        "[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"sip:agent1@contoso.com\"\nannex.TServer = { presence-profile = \"Push\" }\n",
        "",
    );
    let report = handle
        .reload(engine_config(&without_5001, SEED_MAP))
        .await
        .unwrap();
    assert_eq!(report.removed, 1);
    sleep(Duration::from_millis(50)).await;
    // Reloading the same configuration again unpublishes nothing more (times(1) above).
    handle
        .reload(engine_config(&without_5001, SEED_MAP))
        .await
        .unwrap();
    sleep(Duration::from_millis(50)).await;
    handle.shutdown(Duration::from_secs(1)).await;
    running.await.unwrap();
}

/// docs/cti-protocol.md quotes the engine's answers (codes 7 and 8, a refused login
/// profile, a DN removed by a reload) on the example configuration: they must be the
/// engine's own words.
#[tokio::test(start_paused = true)]
async fn the_protocol_document_quotes_the_engines_own_texts() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/cti-protocol.md"
    ))
    .unwrap();
    // Quoted inside JSON strings there (these texts hold no control characters).
    let quoted = |text: &str| {
        let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
        assert!(
            doc.contains(&escaped),
            "docs/cti-protocol.md should quote the engine's text:\n{text}"
        );
    };
    let example = include_str!("../../../examples/bridge.toml");
    let example = &example[..example
        .find("# ---- Transports")
        .expect("the example's transport marker")];
    let seen = Shared::default();
    let transport = recording_transport(&seen, Duration::ZERO, |_| Ok(()));
    let mut h = Harness::start(
        engine_config_on(example, SEED_MAP, &hybrid()),
        transport,
        seen,
    )
    .await;
    h.connect().await;
    let error_text = |answer: ServerEvent| match answer {
        ServerEvent::EventError { error_message, .. } => error_message,
        other => panic!("an EventError: {other:?}"),
    };
    let answer = h
        .request(ClientRequest::RequestAgentReady {
            this_dn: dn("9999"),
        })
        .await;
    quoted(&error_text(answer));
    let answer = h
        .request(ClientRequest::RequestAgentReady {
            this_dn: dn("5001"),
        })
        .await;
    quoted(&error_text(answer));
    let answer = h.request(login("5001", Some("Nope"))).await;
    let ServerEvent::EventAgentLogin { extensions, .. } = answer else {
        panic!("a login: {answer:?}");
    };
    quoted(
        extensions
            .get(ext::PRESENCE_PROFILE_ERROR)
            .expect("the refusal is explained"),
    );
    h.request(ClientRequest::RegisterAddress {
        this_dn: dn("6001"),
    })
    .await;
    h.sink.take();
    let fewer = example.replace(
        "[dn.\"6001\"]\ntype = \"Extension\"\nuri = \"sip:expert1@contoso.com\"\n",
        "",
    );
    assert_ne!(fewer, example);
    h.handle
        .reload(engine_config_on(&fewer, SEED_MAP, &hybrid()))
        .await
        .unwrap();
    h.settle().await;
    let told = h.sink.sent_to(CLIENT);
    assert_eq!(told.len(), 1, "{told:?}");
    quoted(&error_text(told.into_iter().next().unwrap()));
}
