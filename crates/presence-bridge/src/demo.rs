//! `presence-bridge demo`: the embedded default. An SfB simulator and a Microsoft Graph
//! simulator on loopback, the bridge on the example configuration (some users on SfB, some
//! on Teams), and a scripted contact-centre day over the real WebSocket link, told as a live
//! account of what each platform shows.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use presence_config::{Config, ProfileMode};
use presence_engine::{DnView, EngineHandle};
use presence_graph_sim::{GraphSimServer, SimConfig as GraphConfig};
use presence_model::{AvailabilityClass, Lcid, SipUri};
use presence_sfb_sim::{ServerConfig, SimConfig, SimEvent, SimServer};
use presence_tlib::{
    ClientMessage, ClientRequest, ConnId, ErrorCode, Extensions, ServerEvent, WorkMode, ext,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::DemoArgs;
use crate::run::{Bridge, Start, metrics_recorder};

/// The example configuration, up to its deployment settings, which the demo replaces.
const EXAMPLE: &str = include_str!("../../../examples/bridge.toml");
const EXAMPLE_MAP: &[u8] = include_bytes!("../../../examples/agent-states.xml");
const MARKER: &str = "# ---- Transports and listeners";

/// The Teams users of the demo's tenant: the example's Teams DNs and agent2, who moves.
const TEAMS_USERS: [&str; 3] = [
    "agent2@contoso.com",
    "agent3@contoso.com",
    "expert3@contoso.com",
];

/// The Teams users whose presence the bridge publishes (the narration follows them).
const TEAMS_PUSH_USERS: [&str; 2] = ["agent2@contoso.com", "agent3@contoso.com"];

/// The example configuration with its transports pointed at the simulators. The example's
/// `[teams.states]` choices are kept, so the demo shows what a site gets.
fn demo_config(pool: &str, graph: &GraphSimServer) -> Result<String> {
    let Some(at) = EXAMPLE.find(MARKER) else {
        bail!("examples/bridge.toml lost its `{MARKER}` line, which the demo relies on");
    };
    let example: toml::Table = EXAMPLE
        .parse()
        .context("examples/bridge.toml is not valid TOML")?;
    let mut states = String::new();
    if let Some(table) = example
        .get("teams")
        .and_then(|t| t.get("states"))
        .and_then(|s| s.as_table())
    {
        for (id, pair) in table {
            let pair = pair.as_str().unwrap_or_default();
            states.push_str(&format!("{id} = \"{pair}\"\n"));
        }
    }
    Ok(format!(
        "{}
[sfb]
pool = \"{pool}\"
transport = \"tcp\"
application-uri = \"sip:presence-bridge@contoso.com\"
keepalive = \"5s\"
retry-initial = \"100ms\"
reconnect-initial = \"100ms\"

[teams]
tenant = \"{tenant}\"
client-id = \"{client_id}\"
client-secret = \"{secret}\"
authority = \"{authority}\"
graph-url = \"{graph_url}\"
poll-interval = \"1s\"
reconnect-initial = \"200ms\"

[teams.states]
{states}
[cti]
listen = \"127.0.0.1:0\"
",
        &EXAMPLE[..at],
        tenant = graph.tenant(),
        client_id = GraphConfig::DEFAULT_CLIENT_ID,
        secret = GraphConfig::DEFAULT_CLIENT_SECRET,
        authority = graph.authority(),
        graph_url = graph.graph_url(),
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
    /// The bridge, asked what each DN is now (its mode and platform change with logins
    /// and reloads).
    engine: EngineHandle,
    /// Who works on each DN, for the narration.
    people: BTreeMap<&'static str, &'static str>,
    /// Each DN's label, `(agent2, pull, SfB)`: the person, and the mode and platform the
    /// bridge has for the DN, as of its last request.
    labels: BTreeMap<String, String>,
}

/// How the narration names a platform.
fn platform_name(platform: &str) -> &str {
    match platform {
        "sfb" => "SfB",
        "teams" => "Teams",
        "simple" => "SIP SIMPLE",
        other => other,
    }
}

impl Desk {
    /// Reads the DN's mode and platform from the bridge for its label.
    async fn relabel(&mut self, dn: &str) -> Result<()> {
        let Some(person) = self.people.get(dn).copied() else {
            return Ok(());
        };
        let label = match self.engine.dn(dn).await? {
            Some(view) => format!(
                "({person}, {}, {})",
                view.mode,
                platform_name(view.platform.as_deref().unwrap_or("no platform"))
            ),
            None => format!("({person})"),
        };
        self.labels.insert(dn.to_owned(), label);
        Ok(())
    }

    /// Reads every DN's label from the bridge (after a reload).
    async fn relabel_all(&mut self) -> Result<()> {
        let dns: Vec<&'static str> = self.people.keys().copied().collect();
        for dn in dns {
            self.relabel(dn).await?;
        }
        Ok(())
    }

    fn label(&self, dn: &str) -> &str {
        self.labels.get(dn).map_or("", String::as_str)
    }

    async fn send(&mut self, narrator: &Narrator, body: ClientRequest) -> Result<ServerEvent> {
        self.next_ref += 1;
        let reference_id = self.next_ref;
        let message = ClientMessage::new(reference_id, body);
        let dn = message.body.this_dn().to_string();
        let label = format!("{} {dn} {}", message.body.name(), self.label(&dn));
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
                // A login or logout may change the DN's profile, so its mode.
                self.relabel(&dn).await?;
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
                let who = self.label(this_dn.as_str());
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

/// The two platforms the demo's users live on, and what each showed last.
struct Platforms {
    sfb: SimServer,
    sfb_events: SimEvents,
    teams: GraphSimServer,
    /// What Teams showed each user last time we looked: (pair, status message).
    teams_shown: BTreeMap<&'static str, (String, Option<String>)>,
    names: BTreeMap<String, &'static str>,
}

impl Platforms {
    /// Tells what the platforms show now that the bridge published since the last look:
    /// SfB from the simulator's log, Teams by comparing what it shows.
    fn narrate(&mut self, narrator: &Narrator) {
        while let Ok(event) = self.sfb_events.try_recv() {
            if let SimEvent::Published {
                user,
                availability,
                texts,
            } = &event
            {
                let who = self.names.get(user.as_str()).copied().unwrap_or("");
                match availability {
                    Some(availability) => narrator.detail(format!(
                        "SfB now shows {user} {who}: {availability} {} — {}",
                        class(u64::from(*availability)),
                        describe_texts(texts)
                    )),
                    None => narrator.detail(format!(
                        "SfB: the bridge's publication for {user} {who} is removed: the user's own presence shows"
                    )),
                }
            }
        }
        for upn in TEAMS_PUSH_USERS {
            let Some(shown) = self.teams.shows(upn) else {
                continue;
            };
            let now = (
                format!("{}/{}", shown.availability.as_str(), shown.activity),
                shown.status_message.clone(),
            );
            if self.teams_shown.get(upn) == Some(&now) {
                continue;
            }
            let who = self.names.get(upn).copied().unwrap_or("");
            let bridge_session = shown
                .sessions
                .iter()
                .any(|s| s.source == GraphConfig::DEFAULT_CLIENT_ID);
            let message = now.1.as_deref().map_or_else(
                || "no status message".to_owned(),
                |m| format!("status \"{m}\""),
            );
            if bridge_session || self.teams_shown.contains_key(upn) {
                narrator.detail(format!(
                    "Teams now shows {upn} {who}: {} — {message}{}",
                    now.0,
                    if bridge_session {
                        ""
                    } else {
                        " (no bridge session: the user's own presence)"
                    }
                ));
            }
            self.teams_shown.insert(upn, now);
        }
    }

    /// Lets the bridge act, then tells what the platforms show.
    async fn settle(&mut self, narrator: &Narrator, step: Duration) {
        tokio::time::sleep(step).await;
        self.narrate(narrator);
    }
}

pub(crate) async fn run(args: &DemoArgs) -> Result<ExitCode> {
    let narrator = Narrator {
        start: Instant::now(),
    };
    let step = Duration::from_millis(args.step_ms);
    // Teams is polled every second: a pull change there needs that long to be seen.
    let teams_step = step.max(Duration::from_millis(1500));
    println!(
        "presence-bridge demo: in-process Skype for Business and Microsoft Teams simulators, the"
    );
    println!(
        "bridge on the example configuration (some users on SfB, some on Teams), and a scripted"
    );
    println!("contact-centre day over the real links. Nothing leaves this machine.\n");

    let sfb = SimServer::start(ServerConfig {
        sim: SimConfig {
            seed: 2026,
            ..SimConfig::default()
        },
        ..ServerConfig::default()
    })
    .await
    .context("cannot start the SfB simulator")?;
    let sfb_events = sfb.events();
    let pool = sfb.local_addr().to_string();
    narrator.say(format!(
        "SfB simulator (a Front End pool stand-in) listening on {pool}, TCP, loopback"
    ));
    let mut tenant = GraphConfig {
        seed: 2026,
        ..GraphConfig::default()
    };
    for upn in TEAMS_USERS {
        tenant = tenant.with_user(upn);
    }
    let teams = GraphSimServer::start(presence_graph_sim::ServerConfig {
        sim: tenant,
        ..presence_graph_sim::ServerConfig::default()
    })
    .await
    .context("cannot start the Microsoft Graph simulator")?;
    narrator.say(format!(
        "Microsoft Graph simulator (Teams presence + Entra token endpoint) on {}, HTTP, loopback",
        teams.base_url()
    ));

    let text = demo_config(&pool, &teams)?;
    let path = Path::new("examples/bridge.toml");
    let prepare = |text: &str| {
        let mut read_map = |_: &Path| Ok(EXAMPLE_MAP.to_vec());
        crate::files::prepare_with(path, text, None, &mut read_map)
            .map_err(|d| anyhow::anyhow!("the built-in configuration is invalid: {d}"))
    };
    let bridge = Bridge::start(Start {
        prepared: prepare(&text)?,
        config_path: None,
        admin: false,
        metrics: metrics_recorder()?,
    })
    .await?;
    narrator.say(format!(
        "bridge started: contact-centre link ws://{}{}, SfB pool {pool}, Graph {}",
        bridge.cti_addr,
        presence_cti::PATH,
        teams.graph_url()
    ));
    let connected = async {
        while !bridge.transport.status().iter().all(|s| s.connected) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), connected)
        .await
        .context("the bridge did not connect to both simulators within 10 s")?;
    narrator.say(
        "bridge connected to SfB and to Teams (it holds a Graph token): every push user's current state is published, every pull user subscribed",
    );

    let people: BTreeMap<&'static str, &'static str> = [
        ("5001", "agent1"),
        ("5002", "agent2"),
        ("5003", "agent3"),
        ("6001", "expert1"),
        ("6002", "expert2"),
        ("6003", "expert3"),
    ]
    .into_iter()
    .collect();
    let names: BTreeMap<String, &'static str> = [
        ("sip:agent1@contoso.com", "(DN 5001)"),
        ("sip:agent2@contoso.com", "(DN 5002)"),
        ("agent2@contoso.com", "(DN 5002)"),
        ("agent3@contoso.com", "(DN 5003)"),
        ("expert3@contoso.com", "(DN 6003)"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut platforms = Platforms {
        sfb,
        sfb_events,
        teams,
        teams_shown: BTreeMap::new(),
        names,
    };
    platforms.settle(&narrator, step).await;

    let url = format!("ws://{}{}", bridge.cti_addr, presence_cti::PATH);
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .with_context(|| format!("cannot connect to the contact-centre link {url}"))?;
    let mut desk = Desk {
        ws,
        next_ref: 0,
        engine: bridge.engine.clone(),
        people,
        labels: BTreeMap::new(),
    };
    desk.relabel_all().await?;
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

    println!("\n--- Pull mode: SfB and Teams presence become DND on the DN ---");
    for d in ["6001", "6002", "6003"] {
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
        platforms
            .sfb
            .set_user_presence(user, availability as u32, Some(activity));
        desk.drain(&narrator, step).await?;
        if let Some(note) = note {
            narrator.detail(format!("({note}: {no_change})"));
        }
    }
    for (availability, activity, note) in [
        (
            "Available",
            "Available",
            "Teams Available reads as 3500 (Online)",
        ),
        ("Busy", "InACall", "Teams Busy reads as 6500 (Busy)"),
        (
            "Away",
            "Away",
            "Teams Away reads as 15500: still unavailable",
        ),
        ("Available", "Available", "back to 3500"),
    ] {
        narrator.say(format!(
            "Teams: expert3@contoso.com picks {availability}/{activity} in their own client ({note})"
        ));
        platforms
            .teams
            .set_client_presence("expert3@contoso.com", availability.parse()?, activity)
            .context("the Graph simulator refused a client presence")?;
        desk.drain(&narrator, teams_step).await?;
    }

    println!("\n--- Push mode: agent and device state become SfB presence ---");
    desk.send(&narrator, login("5001", "agent1", None)).await?;
    platforms.settle(&narrator, step).await;
    for request in agent_day("5001", &dn, &conn) {
        desk.send(&narrator, request).await?;
        platforms.settle(&narrator, step).await;
    }

    println!("\n--- Push mode on Teams: the same profile, through Microsoft Graph ---");
    narrator.detail(
        "(Teams sets only five pairs: the example maps NotReady to Away/Away and ACW to DoNotDisturb/Presenting, and the activity text becomes the status message)",
    );
    // A Teams write is a request to Graph, and the status message a second one: give
    // each step time to land before telling what Teams shows.
    let graph_step = step.max(Duration::from_millis(400));
    desk.send(&narrator, login("5003", "agent3", None)).await?;
    platforms.settle(&narrator, graph_step).await;
    for request in agent_day("5003", &dn, &conn) {
        desk.send(&narrator, request).await?;
        platforms.settle(&narrator, graph_step).await;
    }

    println!("\n--- Profiles per login session ---");
    // What the bridge last published for agent2 in push mode, to tell it when it comes
    // back as agent2's presence.
    let pushed = bridge.engine.dn("5002").await?.and_then(|view| {
        Some((
            view.last_published_availability?,
            view.last_published_state?,
        ))
    });
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
    desk.drain(&narrator, step).await?;
    // The subscription's first presence decides the DND: give it a moment to arrive.
    let waited = Instant::now();
    while bridge
        .engine
        .dn("5002")
        .await?
        .is_some_and(|view| view.dnd.is_none() && view.last_reported_availability.is_none())
        && waited.elapsed() < Duration::from_millis(1500)
    {
        desk.drain(&narrator, Duration::from_millis(50)).await?;
    }
    let config = prepare(&text)?.loaded.config;
    if let Some(view) = bridge.engine.dn("5002").await? {
        narrator.detail(dnd_reason(&view, &config, pushed.as_ref()));
    }
    let agent2 = SipUri::new("sip:agent2@contoso.com")?;
    narrator.say("SfB: agent2 picks 3500 (Online) \"Available\" in their own client");
    platforms
        .sfb
        .set_user_presence(&agent2, 3500, Some("Available"));
    desk.drain(&narrator, step).await?;
    desk.send(
        &narrator,
        ClientRequest::RequestAgentLogout {
            this_dn: dn("5002"),
        },
    )
    .await?;
    platforms.settle(&narrator, step).await;
    let answer = desk
        .send(&narrator, login("5002", "agent2", Some("NoSuchProfile")))
        .await?;
    if !matches!(answer, ServerEvent::EventAgentLogin { .. }) {
        bail!("a login naming no profile must still succeed");
    }
    platforms.settle(&narrator, step).await;
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
    desk.send(
        &narrator,
        ClientRequest::RequestAgentReady {
            this_dn: dn("5002"),
        },
    )
    .await?;
    platforms.settle(&narrator, step).await;

    println!("\n--- Moving agent2 from SfB to Teams: a configuration edit and a reload ---");
    let moved = text.replacen(
        "uri = \"sip:agent2@contoso.com\"\n",
        "uri = \"sip:agent2@contoso.com\"\nplatform = \"teams\"\n",
        1,
    );
    if moved == text {
        bail!("examples/bridge.toml no longer has DN 5002's uri line, which the demo edits");
    }
    narrator.say("the configuration now says `platform = \"teams\"` for DN 5002; reloading");
    let prepared = prepare(&moved)?;
    let report = bridge
        .engine
        .reload(presence_engine::EngineConfig::new(
            prepared.loaded.config,
            prepared.users,
        )?)
        .await?;
    narrator.detail(format!(
        "reload applied: {} DN moved, {} reassigned, agent2 still logged in and Ready",
        report.moved, report.reassigned
    ));
    desk.relabel_all().await?;
    platforms.settle(&narrator, teams_step).await;

    println!("\n--- At the end of the day ---");
    for (user, who) in [
        ("sip:agent1@contoso.com", "DN 5001"),
        ("sip:agent2@contoso.com", "DN 5002 before the move"),
    ] {
        let user = SipUri::new(user)?;
        match platforms.sfb.shows(&user) {
            Some(shown) => narrator.say(format!(
                "SfB shows {user} ({who}): {} {} — {}",
                shown.availability,
                AvailabilityClass::of(shown.availability.min(18000) as u16).name(),
                describe_texts(&shown.texts)
            )),
            None => narrator.say(format!(
                "SfB shows nothing from the bridge for {user} ({who})"
            )),
        }
    }
    for (upn, who) in [
        ("agent2@contoso.com", "DN 5002 after the move"),
        ("agent3@contoso.com", "DN 5003"),
    ] {
        if let Some(shown) = platforms.teams.shows(upn) {
            narrator.say(format!(
                "Teams shows {upn} ({who}): {}/{} — {}",
                shown.availability.as_str(),
                shown.activity,
                shown.status_message.as_deref().map_or_else(
                    || "no status message".to_owned(),
                    |m| format!("status \"{m}\"")
                )
            ));
        }
    }
    for d in ["6001", "6002", "6003", "5001", "5002", "5003"] {
        if let Some(view) = bridge.engine.dn(d).await? {
            narrator.say(format!(
                "DN {d} on {}: agent {}, device {}, profile {} ({}), mode {}, DND {}",
                view.platform.as_deref().unwrap_or("-"),
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
    let writes = platforms
        .teams
        .writes()
        .iter()
        .filter(|w| (200..300).contains(&w.status))
        .count();
    narrator.say(format!(
        "{} publications accepted by SfB, {writes} presence writes accepted by Teams; {} DNs ({} push, {} pull)",
        platforms.sfb.published_count(),
        stats.dns,
        stats.push,
        stats.pull
    ));
    let _ = desk.ws.close(None).await;
    bridge.shutdown().await;
    platforms.sfb.shutdown().await;
    platforms.teams.shutdown().await;
    narrator.say("demo finished");
    Ok(ExitCode::SUCCESS)
}

/// Why a DN's DND is what it is, in one line, from the bridge's view of the DN: its mode
/// and profile, the presence its platform reported and the profile's available ranges.
/// `pushed` is what the bridge last published for the DN in push mode (availability and
/// state), named when it is what the platform reports back.
fn dnd_reason(view: &DnView, config: &Config, pushed: Option<&(u16, String)>) -> String {
    let dn = &view.dn;
    let platform = platform_name(view.platform.as_deref().unwrap_or("its platform"));
    let Some(profile) = view.profile.as_deref() else {
        return format!("(DN {dn} has no presence profile, so no DND from {platform})");
    };
    let source = view.profile_source.unwrap_or("none");
    let ranges = config.profiles().find_map(|p| match &p.mode {
        ProfileMode::Pull(pull) if p.name.as_str() == profile => {
            Some(crate::check::ranges_text(&pull.ranges))
        }
        _ => None,
    });
    let mode = view.mode;
    let (Some(dnd), Some(availability), Some(ranges)) =
        (view.dnd, view.last_reported_availability, ranges)
    else {
        let why = match view.last_reported_availability {
            Some(0) => format!(
                "{platform} reports no availability (0, not set) for its user, and availability 0 changes nothing"
            ),
            Some(availability) => format!("{platform} reports {availability} for its user"),
            None => format!("{platform} has reported no presence for its user yet"),
        };
        return format!(
            "(why no DND yet: DN {dn} is in {mode} mode with profile {profile} (from {source}), and {why})"
        );
    };
    let class = AvailabilityClass::of(availability.min(18_000) as u16).name();
    let activity = view
        .last_reported_activity
        .as_deref()
        .map(|a| format!(" \"{a}\""))
        .unwrap_or_default();
    let side = if dnd == "on" { "outside" } else { "inside" };
    let echo = match pushed {
        Some((published, state)) if u64::from(*published) == availability => format!(
            "; that is the {state} presence the bridge itself published for DN {dn} while it was in push mode"
        ),
        _ => String::new(),
    };
    format!(
        "(why DND {dnd}: DN {dn} is in {mode} mode with profile {profile} (from {source}), and {platform} reports {availability} ({class}){activity} for its user, {side} {profile}'s available range {ranges}{echo})"
    )
}

/// An agent's day on DN `d`, after login: ready, a call, after-call work, ready, walk
/// away, out of service and back, logout.
fn agent_day(
    d: &str,
    dn: &dyn Fn(&str) -> presence_model::DnNumber,
    conn: &dyn Fn(&str) -> ConnId,
) -> Vec<ClientRequest> {
    vec![
        ClientRequest::RequestAgentReady { this_dn: dn(d) },
        ClientRequest::EventRinging {
            this_dn: dn(d),
            conn_id: conn("0001"),
        },
        ClientRequest::EventEstablished {
            this_dn: dn(d),
            conn_id: conn("0001"),
        },
        ClientRequest::EventReleased {
            this_dn: dn(d),
            conn_id: conn("0001"),
        },
        ClientRequest::RequestAgentNotReady {
            this_dn: dn(d),
            workmode: Some(WorkMode::AfterCallWork),
        },
        ClientRequest::RequestAgentReady { this_dn: dn(d) },
        ClientRequest::RequestAgentNotReady {
            this_dn: dn(d),
            workmode: Some(WorkMode::WalkAway),
        },
        ClientRequest::EventDNOutOfService { this_dn: dn(d) },
        ClientRequest::EventDNBackInService { this_dn: dn(d) },
        ClientRequest::RequestAgentLogout { this_dn: dn(d) },
    ]
}
