//! `presence-bridge demo`: the embedded default. An SfB simulator on loopback, the bridge on
//! the example configuration, and a scripted contact-centre day over the real WebSocket
//! link, told as a live account.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use presence_config::{LoadOptions, Source, load};
use presence_model::{AvailabilityClass, Lcid, SipUri};
use presence_sfb_sim::{ServerConfig, SimConfig, SimEvent, SimServer};
use presence_tlib::{
    ClientMessage, ClientRequest, ConnId, ErrorCode, Extensions, ServerEvent, WorkMode, ext,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::DemoArgs;
use crate::files::Sections;
use crate::run::{Bridge, Start, metrics_recorder};

/// The example configuration, up to its deployment settings, which the demo replaces.
const EXAMPLE: &str = include_str!("../../../examples/bridge.toml");
const EXAMPLE_MAP: &[u8] = include_bytes!("../../../examples/agent-states.xml");
const MARKER: &str = "# ---- Transports and listeners";

fn demo_config(pool: &str) -> Result<String> {
    let Some(at) = EXAMPLE.find(MARKER) else {
        bail!("examples/bridge.toml lost its `{MARKER}` line, which the demo relies on");
    };
    Ok(format!(
        "{}\n[sfb]\npool = \"{pool}\"\ntransport = \"tcp\"\napplication-uri = \"sip:presence-bridge@contoso.com\"\nkeepalive = \"5s\"\nretry-initial = \"100ms\"\nreconnect-initial = \"100ms\"\n\n[cti]\nlisten = \"127.0.0.1:0\"\n",
        &EXAMPLE[..at]
    ))
}

struct Narrator {
    start: Instant,
}

impl Narrator {
    fn say(&self, line: impl AsRef<str>) {
        let t = self.start.elapsed().as_secs_f64();
        println!("[{t:5.1}s] {}", line.as_ref());
    }

    fn detail(&self, line: impl AsRef<str>) {
        println!("         {}", line.as_ref());
    }
}

fn describe_texts(texts: &[(u32, String)]) -> String {
    let mut parts = texts.iter().map(|(lcid, text)| {
        let tag = Lcid::new(*lcid).tag().unwrap_or("?");
        format!("{tag} \"{text}\"")
    });
    let first = parts
        .next()
        .unwrap_or_else(|| "no activity text".to_owned());
    let rest: Vec<String> = parts.collect();
    if rest.is_empty() {
        first
    } else {
        format!("{first} (+ {})", rest.join(", "))
    }
}

fn class(availability: u64) -> &'static str {
    presence_model::Availability::from_wire(availability)
        .class()
        .name()
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The scripted contact centre: one WebSocket client.
struct Desk {
    ws: Ws,
    next_ref: u64,
    /// Who is who, for the narration.
    names: BTreeMap<String, &'static str>,
}

impl Desk {
    async fn send(&mut self, narrator: &Narrator, body: ClientRequest) -> Result<ServerEvent> {
        self.next_ref += 1;
        let reference_id = self.next_ref;
        let message = ClientMessage::new(reference_id, body);
        let dn = message.body.this_dn().to_string();
        let who = self.names.get(&dn).copied().unwrap_or("");
        let label = format!("{} {dn} {who}", message.body.name());
        narrator.say(format!(
            "CC → {}{}",
            label.trim_end(),
            describe_request(&message.body)
        ));
        self.ws
            .send(Message::text(message.to_json()))
            .await
            .context("the contact-centre link closed")?;
        loop {
            let event = self.next_event(narrator).await?;
            if event.reference_id() == Some(reference_id) {
                narrator.detail(format!("← {}{}", event.name(), describe_answer(&event)));
                return Ok(event);
            }
        }
    }

    /// Reads one event; DND events met on the way are narrated.
    async fn next_event(&mut self, narrator: &Narrator) -> Result<ServerEvent> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .context("no answer from the bridge within 10 s")?
                .context("the contact-centre link closed")??;
            let Message::Text(text) = frame else { continue };
            let event =
                ServerEvent::from_json(&text).context("the bridge sent an unreadable event")?;
            if event.reference_id().is_none() {
                self.narrate_unsolicited(narrator, &event);
                continue;
            }
            return Ok(event);
        }
    }

    fn narrate_unsolicited(&self, narrator: &Narrator, event: &ServerEvent) {
        match event {
            ServerEvent::EventDNDOn {
                this_dn,
                availability,
                activity,
                ..
            }
            | ServerEvent::EventDNDOff {
                this_dn,
                availability,
                activity,
                ..
            } => {
                let who = self.names.get(this_dn.as_str()).copied().unwrap_or("");
                narrator.say(format!(
                    "CC ← {} on {this_dn} {who}: SfB availability {availability} ({}){}",
                    event.name(),
                    class(*availability),
                    activity
                        .as_deref()
                        .map(|a| format!(", \"{a}\""))
                        .unwrap_or_default()
                ));
            }
            other => narrator.say(format!("CC ← {}", other.name())),
        }
    }

    /// Collects unsolicited events for a moment (DND events caused by SfB changes).
    async fn drain(&mut self, narrator: &Narrator, wait: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(frame) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            let Some(frame) = frame else {
                bail!("the contact-centre link closed")
            };
            if let Message::Text(text) = frame? {
                let event = ServerEvent::from_json(&text)?;
                self.narrate_unsolicited(narrator, &event);
            }
        }
        Ok(())
    }
}

fn describe_request(body: &ClientRequest) -> String {
    match body {
        ClientRequest::RequestAgentLogin {
            agent_id,
            extensions,
            ..
        } => match extensions.presence_profile() {
            Some(p) => format!(" agent {agent_id}, presence-profile {p}"),
            None => format!(" agent {agent_id}"),
        },
        ClientRequest::RequestAgentNotReady {
            workmode: Some(mode),
            ..
        } => format!(" ({mode})"),
        other => other
            .conn_id()
            .map(|c| format!(" call {c}"))
            .unwrap_or_default(),
    }
}

fn describe_answer(event: &ServerEvent) -> String {
    match event {
        ServerEvent::EventAgentLogin { extensions, .. } => {
            let mut s = format!(
                ": profile {} (from {})",
                extensions.get(ext::PRESENCE_PROFILE).unwrap_or("none"),
                extensions
                    .get(ext::PRESENCE_PROFILE_SOURCE)
                    .unwrap_or("none")
            );
            if let Some(e) = extensions.get(ext::PRESENCE_PROFILE_ERROR) {
                s.push_str(&format!("; refused at login level: {e}"));
            }
            s
        }
        ServerEvent::EventRegistered { dnd, .. } => match dnd {
            Some(d) => format!(": DND {d}"),
            None => ": DND not known yet".to_owned(),
        },
        ServerEvent::EventError {
            error_code,
            error_message,
            ..
        } => {
            format!(
                ": {} ({}) {error_message}",
                error_code.as_u32(),
                error_code.name()
            )
        }
        _ => String::new(),
    }
}

type SimEvents = tokio::sync::broadcast::Receiver<SimEvent>;

/// Prints what SfB shows each time the bridge publishes, from the simulator's log.
fn narrate_sim(
    narrator: &Narrator,
    events: &mut SimEvents,
    names: &BTreeMap<String, &'static str>,
) {
    while let Ok(event) = events.try_recv() {
        if let SimEvent::Published {
            user,
            availability: Some(availability),
            texts,
        } = &event
        {
            let who = names.get(user.as_str()).copied().unwrap_or("");
            narrator.detail(format!(
                "SfB now shows {user} {who}: {availability} {} — {}",
                class(u64::from(*availability)),
                describe_texts(texts)
            ));
        }
    }
}

/// Lets the bridge act, then tells what SfB shows.
async fn settle(
    narrator: &Narrator,
    events: &mut SimEvents,
    names: &BTreeMap<String, &'static str>,
    step: Duration,
) {
    tokio::time::sleep(step).await;
    narrate_sim(narrator, events, names);
}

pub async fn run(args: &DemoArgs) -> Result<ExitCode> {
    let narrator = Narrator {
        start: Instant::now(),
    };
    let step = Duration::from_millis(args.step_ms);
    println!(
        "presence-bridge demo: an in-process SfB simulator, the bridge on the example configuration,"
    );
    println!(
        "and a scripted contact-centre day over the real links. Nothing leaves this machine.\n"
    );

    let sim = SimServer::start(ServerConfig {
        sim: SimConfig {
            seed: 2026,
            ..SimConfig::default()
        },
        ..ServerConfig::default()
    })
    .await
    .context("cannot start the SfB simulator")?;
    let mut sim_events = sim.events();
    let pool = sim.local_addr().to_string();
    narrator.say(format!(
        "SfB simulator (a Front End pool stand-in) listening on {pool}, TCP, loopback"
    ));

    let text = demo_config(&pool)?;
    let source = Source {
        path: Path::new("examples/bridge.toml"),
        text: &text,
    };
    let loaded = load::<Sections>(&source, &LoadOptions::default(), &mut |_| {
        Ok(EXAMPLE_MAP.to_vec())
    })
    .map_err(|d| anyhow::anyhow!("the built-in configuration is invalid: {d}"))?;
    let bridge = Bridge::start(Start {
        loaded,
        config_path: None,
        admin: false,
        metrics: metrics_recorder()?,
    })
    .await?;
    narrator.say(format!(
        "bridge started: contact-centre link ws://{}{}, SfB pool {pool}",
        bridge.cti_addr,
        presence_cti::PATH
    ));
    let connected = async {
        while !bridge.transport.status().is_connected() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), connected)
        .await
        .context("the bridge did not connect to the simulator within 10 s")?;
    narrator.say("bridge connected to SfB: every push user's current state is published, every pull user subscribed");

    let names: BTreeMap<String, &'static str> = [
        ("5001", "(agent1, push)"),
        ("5002", "(agent2, push)"),
        ("6001", "(expert1, pull)"),
        ("6002", "(expert2, pull)"),
        ("sip:agent1@contoso.com", "(DN 5001)"),
        ("sip:agent2@contoso.com", "(DN 5002)"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    settle(&narrator, &mut sim_events, &names, step).await;

    let url = format!("ws://{}{}", bridge.cti_addr, presence_cti::PATH);
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .with_context(|| format!("cannot connect to the contact-centre link {url}"))?;
    let mut desk = Desk {
        ws,
        next_ref: 0,
        names: names.clone(),
    };
    narrator.say("contact-centre desktop connected");

    let dn = |n: &str| n.parse::<presence_model::DnNumber>().expect("valid DN");
    let conn = |c: &str| c.parse::<ConnId>().expect("valid connID");
    let login = |d: &str, agent: &str, profile: Option<&str>| {
        let mut extensions = Extensions::new();
        if let Some(p) = profile {
            extensions.insert(ext::PRESENCE_PROFILE, p);
        }
        ClientRequest::RequestAgentLogin {
            this_dn: dn(d),
            agent_id: agent.parse().expect("valid agent ID"),
            workmode: None,
            extensions,
        }
    };

    println!("\n--- Pull mode: SfB presence becomes DND on the DN ---");
    for d in ["6001", "6002"] {
        desk.send(&narrator, ClientRequest::RegisterAddress { this_dn: dn(d) })
            .await?;
    }
    let expert1 = SipUri::new("sip:expert1@contoso.com")?;
    let expert2 = SipUri::new("sip:expert2@contoso.com")?;
    let no_change = "no DND change, so no event";
    for (user, availability, activity, note) in [
        (&expert1, 3500, "Available", None),
        (&expert2, 6500, "In a call", None),
        (
            &expert1,
            4500,
            "Inactive",
            Some("IdleOnline is inside 3000-5999: still available"),
        ),
        (&expert1, 9500, "Presenting", None),
        (&expert2, 3500, "Available", None),
        (
            &expert1,
            18500,
            "Appear offline",
            Some("18500 counts as 18000, Offline: still unavailable"),
        ),
        (&expert1, 3500, "Available", None),
    ] {
        narrator.say(format!(
            "SfB: {user} picks {availability} ({}) \"{activity}\"",
            class(availability)
        ));
        sim.set_user_presence(user, availability as u32, Some(activity));
        desk.drain(&narrator, step).await?;
        if let Some(note) = note {
            narrator.detail(format!("({note}: {no_change})"));
        }
    }

    println!("\n--- Push mode: agent and device state become SfB presence ---");
    desk.send(&narrator, login("5001", "agent1", None)).await?;
    settle(&narrator, &mut sim_events, &names, step).await;
    let day: Vec<ClientRequest> = vec![
        ClientRequest::RequestAgentReady {
            this_dn: dn("5001"),
        },
        ClientRequest::EventRinging {
            this_dn: dn("5001"),
            conn_id: conn("0001"),
        },
        ClientRequest::EventEstablished {
            this_dn: dn("5001"),
            conn_id: conn("0001"),
        },
        ClientRequest::EventReleased {
            this_dn: dn("5001"),
            conn_id: conn("0001"),
        },
        ClientRequest::RequestAgentNotReady {
            this_dn: dn("5001"),
            workmode: Some(WorkMode::AfterCallWork),
        },
        ClientRequest::RequestAgentReady {
            this_dn: dn("5001"),
        },
        ClientRequest::RequestAgentNotReady {
            this_dn: dn("5001"),
            workmode: Some(WorkMode::WalkAway),
        },
        ClientRequest::EventDNOutOfService {
            this_dn: dn("5001"),
        },
        ClientRequest::EventDNBackInService {
            this_dn: dn("5001"),
        },
        ClientRequest::RequestAgentLogout {
            this_dn: dn("5001"),
        },
    ];
    for request in day {
        desk.send(&narrator, request).await?;
        settle(&narrator, &mut sim_events, &names, step).await;
    }

    println!("\n--- Profiles per login session ---");
    let answer = desk
        .send(&narrator, login("5002", "agent2", Some("PullProfile")))
        .await?;
    let ServerEvent::EventAgentLogin { .. } = answer else {
        bail!("the login was refused: {answer:?}")
    };
    desk.send(
        &narrator,
        ClientRequest::RegisterAddress {
            this_dn: dn("5002"),
        },
    )
    .await?;
    narrator.detail("(5002 is in pull mode for this session: its SfB presence now drives its DND)");
    desk.drain(&narrator, step).await?;
    let agent2 = SipUri::new("sip:agent2@contoso.com")?;
    narrator.say("SfB: agent2 picks 3500 (Online) \"Available\" in their own client");
    sim.set_user_presence(&agent2, 3500, Some("Available"));
    desk.drain(&narrator, step).await?;
    desk.send(
        &narrator,
        ClientRequest::RequestAgentLogout {
            this_dn: dn("5002"),
        },
    )
    .await?;
    settle(&narrator, &mut sim_events, &names, step).await;
    let answer = desk
        .send(&narrator, login("5002", "agent2", Some("NoSuchProfile")))
        .await?;
    if !matches!(answer, ServerEvent::EventAgentLogin { .. }) {
        bail!("a login naming no profile must still succeed");
    }
    settle(&narrator, &mut sim_events, &names, step).await;
    let answer = desk
        .send(
            &narrator,
            ClientRequest::RequestAgentReady {
                this_dn: dn("9999"),
            },
        )
        .await?;
    if !matches!(
        answer,
        ServerEvent::EventError {
            error_code: ErrorCode::UnknownDn,
            ..
        }
    ) {
        bail!("an unknown DN must be refused");
    }

    println!("\n--- At the end of the day ---");
    for (user, who) in [
        ("sip:agent1@contoso.com", "DN 5001"),
        ("sip:agent2@contoso.com", "DN 5002"),
    ] {
        let user = SipUri::new(user)?;
        match sim.shows(&user) {
            Some(shown) => narrator.say(format!(
                "SfB shows {user} ({who}): {} {} — {}",
                shown.availability,
                AvailabilityClass::of(shown.availability.min(18000) as u16).name(),
                describe_texts(&shown.texts)
            )),
            None => narrator.say(format!("SfB shows nothing for {user}")),
        }
    }
    for d in ["6001", "6002", "5001", "5002"] {
        if let Some(view) = bridge.engine.dn(d).await? {
            narrator.say(format!(
                "DN {d}: agent {}, device {}, profile {} ({}), mode {}, DND {}",
                view.agent_state,
                view.device_state,
                view.profile.as_deref().unwrap_or("none"),
                view.profile_source.unwrap_or("-"),
                view.mode,
                view.dnd.unwrap_or("-")
            ));
        }
    }
    let stats = bridge.engine.stats().await?;
    narrator.say(format!(
        "{} publications accepted by SfB; {} DNs ({} push, {} pull)",
        sim.published_count(),
        stats.dns,
        stats.push,
        stats.pull
    ));
    let _ = desk.ws.close(None).await;
    bridge.shutdown().await;
    sim.shutdown().await;
    narrator.say("demo finished");
    Ok(ExitCode::SUCCESS)
}
