//! Fault soak: the real `presence-bridge run` (release build) with DNs on all three
//! platforms, push and pull, under a steady contact-centre load and users' presence changes,
//! while faults are injected one at a time; then every user must converge and the daemon's
//! memory must stay flat.
//!
//! ```sh
//! cargo xtask soak --minutes 30            # builds, then runs this example
//! target/release/examples/soak --minutes 2 [--dns N] [--rate R] [--presence-rate P]
//!                              [--clients C] [--seed S] [--converge-timeout SECS]
//! ```
//!
//! What runs at once, on loopback:
//!
//! - the daemon, with `--dns` DNs per platform (default 200: even push, odd pull) on the SfB
//!   simulator, the Microsoft Graph simulator and a real Kamailio (in-memory publications),
//!   its contact-centre link and admin API on 127.0.0.1;
//! - `--clients` contact-centre clients (default 2) sending random agent and device events
//!   (login, ready, not ready, ACW, walk away, calls ringing / dialing / established /
//!   released, out of service and back) for the push DNs at `--rate` events/s in total
//!   (default 200), each registered on its share of the pull DNs;
//! - presence changes of the pull users at `--presence-rate` per second (default 30): the
//!   SfB simulator's `set_user_presence`, the Graph simulator's `set_client_presence`, and a
//!   PUBLISH by a second user agent (`RawUa`) into Kamailio;
//! - one fault at a time, every 2 to 6 s, drawn from a seeded generator (the seed is printed;
//!   `--seed` repeats a run): SfB connections dropped, SfB stops reading for 10 s, SfB answers
//!   503 for 30 s, a 409 storm for 20 s, garbage on the SfB connection, Graph 429 for 60 s,
//!   Graph tokens revoked, Graph stalls 10 s, Kamailio restarted, a CTI client dropping its
//!   connection in the middle of a burst (it reconnects and registers again), the
//!   configuration replaced by a broken one and reloaded (the reload must be refused and the
//!   daemon keep running; then the file is restored and reloaded), and the map file removed
//!   during a reload (refused; restored and reloaded).
//!
//! At the end the faults are cleared and the load stops; then the **convergence check**:
//! every push user shows on its platform the state that its last (agent, device) combination
//! maps to, and every pull DN's last DND state at its client matches the last presence set
//! for its user. The expectation is computed here, independently of the daemon, from the
//! events this soak sent (the agent and device state of each DN, kept by the client that
//! owns it) with the project's own mapping crates: the example map and `aggregated-states`
//! through `presence-push`'s `PushTable`, then `presence-graph`'s and `presence-simple`'s
//! mappings built from the same `[teams]` and `[simple]` tables the daemon runs with; pull
//! through `presence-pull`'s `PullMapper` on the profile's ranges. Asking the daemon's
//! `/v1/dns/{dn}` for its target instead would not catch a daemon that lost or misapplied an
//! event; its view is printed only to explain a user that differs.
//!
//! Memory must stay flat: the daemon's resident memory one minute into the load (after the
//! warm-up) against the end, at most 50 % + 8 MiB more; its thread count at the same two
//! moments, at most 8 more. A soak that does not converge within `--converge-timeout`
//! (default 300 s), whose daemon dies or grows, or whose daemon answers a contact-centre
//! request otherwise than the events sent imply, fails with a non-zero exit status and says
//! which users differ.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use presence_graph::GraphSettings;
use presence_graph::mapping::{Mapping as TeamsMapping, Target as TeamsTarget};
use presence_graph_sim::{Availability as GraphAvailability, GraphSimServer, SimConfig};
use presence_model::random::SplitMix64;
use presence_model::{
    Activities, ActivityText, AgentState, DeviceState, DndState, Lcid, Platform, Publication,
    SipUri, UserId,
};
use presence_pull::PullMapper;
use presence_push::PushTable;
use presence_sfb_sim::SimServer;
use presence_simple::mapping::{Mapping as SimpleMapping, PushTarget};
use presence_simple::{SimpleSettings, SimpleTransport, pidf};
use presence_testkamailio::{Kamailio, Options as KamailioOptions, RawUa, Storage};
use presence_tlib::{ClientMessage, ClientRequest, ServerEvent};
use presence_transport::{PresenceTransport, TransportEvent, event_channel};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use support::Error;

const USAGE: &str = "\
soak --minutes M [--dns N] [--rate R] [--presence-rate P] [--clients C] [--seed S]
     [--converge-timeout SECS] [--only FAULT,...]

  --minutes M           how long the load and the faults run (default 2; fractions allowed)
  --dns N               DNs per platform, half push, half pull (default 200)
  --rate R              contact-centre agent/device events per second, all clients (default 200)
  --presence-rate P     presence changes of pull users per second, all platforms (default 30)
  --clients C           contact-centre clients (default 2)
  --seed S              the fault and load generator's seed (default: from the clock)
  --converge-timeout S  how long the users may take to converge at the end (default 300)
  --only FAULT,...      inject only these faults (default all): sfb-drop, sfb-stop-reading,
                        sfb-503, sfb-409, sfb-garbage, graph-429, graph-revoke, graph-stall,
                        kamailio-restart, cti-drop, reload-broken, reload-no-map
";

/// The SIP domain of the SIP SIMPLE users (the test Kamailio's).
const SIMPLE_DOMAIN: &str = presence_testkamailio::DOMAIN;
/// Events a client sends at full speed before it drops its connection.
const BURST: usize = 200;
/// Resident memory may grow by this factor plus [`RSS_SLACK_KIB`] from the warm-up to the end.
const RSS_FACTOR: f64 = 1.5;
const RSS_SLACK_KIB: u64 = 8 * 1024;
/// Threads the daemon may have more at the end than after the warm-up.
const THREAD_SLACK: u64 = 8;
/// The warm-up before the first memory reading.
const WARM_UP: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Arguments

#[derive(Clone, Debug)]
struct Args {
    minutes: f64,
    dns: usize,
    rate: f64,
    presence_rate: f64,
    clients: usize,
    seed: u64,
    converge_timeout: Duration,
    faults: Vec<Fault>,
}

fn parse_args() -> Result<Option<Args>, Error> {
    let mut args = Args {
        minutes: 2.0,
        dns: 200,
        rate: 200.0,
        presence_rate: 30.0,
        clients: 2,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        converge_timeout: Duration::from_secs(300),
        faults: Fault::ALL.to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            print!("{USAGE}");
            return Ok(None);
        }
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        let bad = |name: &str, v: &str| format!("{name} `{v}` is not valid\n\n{USAGE}");
        match arg.as_str() {
            "--minutes" => {
                let v = value("--minutes")?;
                args.minutes = v.parse().map_err(|_| bad("--minutes", &v))?;
            }
            "--dns" => {
                let v = value("--dns")?;
                args.dns = v.parse().map_err(|_| bad("--dns", &v))?;
            }
            "--rate" => {
                let v = value("--rate")?;
                args.rate = v.parse().map_err(|_| bad("--rate", &v))?;
            }
            "--presence-rate" => {
                let v = value("--presence-rate")?;
                args.presence_rate = v.parse().map_err(|_| bad("--presence-rate", &v))?;
            }
            "--clients" => {
                let v = value("--clients")?;
                args.clients = v.parse().map_err(|_| bad("--clients", &v))?;
            }
            "--seed" => {
                let v = value("--seed")?;
                args.seed = v.parse().map_err(|_| bad("--seed", &v))?;
            }
            "--converge-timeout" => {
                let v = value("--converge-timeout")?;
                let secs: u64 = v.parse().map_err(|_| bad("--converge-timeout", &v))?;
                args.converge_timeout = Duration::from_secs(secs);
            }
            "--only" => {
                let v = value("--only")?;
                args.faults = v
                    .split(',')
                    .map(|name| {
                        Fault::ALL
                            .into_iter()
                            .find(|f| f.id() == name.trim())
                            .ok_or_else(|| bad("--only", name))
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}").into()),
        }
    }
    if !(args.minutes > 0.0 && args.minutes.is_finite()) {
        return Err(format!("--minutes must be positive\n\n{USAGE}").into());
    }
    if args.dns < 2 || args.clients == 0 || args.rate <= 0.0 || args.presence_rate < 0.0 {
        return Err(format!(
            "--dns must be at least 2, --clients at least 1, --rate positive\n\n{USAGE}"
        )
        .into());
    }
    if args.clients > args.dns / 2 {
        return Err("--clients may not exceed the push DNs of one platform (--dns / 2)".into());
    }
    Ok(Some(args))
}

// ---------------------------------------------------------------------------------------
// Small helpers

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

use support::{AgentDn, below, pick};

/// `[mm:ss]` since `start`.
fn stamp(start: Instant) -> String {
    let s = start.elapsed().as_secs();
    format!("[{:>3}:{:02}]", s / 60, s % 60)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The first error a background task ran into: the soak stops and fails with it.
#[derive(Clone, Default)]
struct Fatal(Arc<Mutex<Option<String>>>);

impl Fatal {
    fn set(&self, error: impl std::fmt::Display) {
        let mut slot = lock(&self.0);
        if slot.is_none() {
            *slot = Some(error.to_string());
        }
    }

    fn get(&self) -> Option<String> {
        lock(&self.0).clone()
    }
}

// ---------------------------------------------------------------------------------------
// The DNs

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Plat {
    Sfb,
    Teams,
    Simple,
}

impl Plat {
    const ALL: [Plat; 3] = [Plat::Sfb, Plat::Teams, Plat::Simple];

    fn name(self) -> &'static str {
        match self {
            Plat::Sfb => "sfb",
            Plat::Teams => "teams",
            Plat::Simple => "simple",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// One configured DN.
#[derive(Clone, Debug)]
struct Dn {
    number: String,
    plat: Plat,
    push: bool,
    /// The user on its platform: a SIP URI (SfB, SIP SIMPLE) or a UPN (Teams).
    user: String,
    /// The configured `uri`.
    uri: String,
}

/// `n` DNs per platform: 100000+i on SfB, 200000+i on Teams, 300000+i on SIP SIMPLE; even
/// push, odd pull.
fn plan(n: usize) -> Vec<Dn> {
    let mut dns = Vec::with_capacity(3 * n);
    for plat in Plat::ALL {
        for i in 0..n {
            let (number, user, uri) = match plat {
                Plat::Sfb => {
                    let uri = format!("sip:soak-sfb{i}@contoso.com");
                    (100_000 + i, uri.clone(), uri)
                }
                Plat::Teams => {
                    let upn = format!("agent{}@contoso.com", i + 1);
                    (200_000 + i, upn.clone(), format!("sip:{upn}"))
                }
                Plat::Simple => {
                    let uri = format!("sip:soak{i}@{SIMPLE_DOMAIN}");
                    (300_000 + i, uri.clone(), uri)
                }
            };
            dns.push(Dn {
                number: number.to_string(),
                plat,
                push: i % 2 == 0,
                user,
                uri,
            });
        }
    }
    dns
}

/// The SIP SIMPLE pull user's name at Kamailio (`soak7`).
fn simple_name(uri: &str) -> &str {
    uri.trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The expectation, from the project's own crates

struct Expect {
    table: PushTable,
    pull: PullMapper,
    teams: TeamsMapping,
    simple: SimpleMapping,
    tuple_id: String,
}

/// The table `name` of a configuration fragment, deserialized.
fn config_table<T: serde::de::DeserializeOwned>(fragment: &str, name: &str) -> Result<T, Error> {
    let parsed: toml::Table =
        toml::from_str(fragment).map_err(|e| format!("the [{name}] table does not parse: {e}"))?;
    parsed
        .get(name)
        .cloned()
        .ok_or_else(|| format!("no [{name}] table in {fragment}"))?
        .try_into()
        .map_err(|e| format!("the [{name}] table is not valid: {e}").into())
}

impl Expect {
    fn build(map: &Path, teams_table: &str, simple_table: &str) -> Result<Expect, Error> {
        let table = support::push_table(map)?;
        let teams: GraphSettings = config_table(teams_table, "teams")?;
        let simple: SimpleSettings = config_table(simple_table, "simple")?;
        Ok(Expect {
            table,
            pull: support::pull_mapper()?,
            teams: teams
                .mapping()
                .map_err(|e| format!("the [teams] mapping: {e}"))?,
            simple: simple
                .mapping()
                .map_err(|e| format!("the [simple] mapping: {e}"))?,
            tuple_id: simple.tuple_id,
        })
    }

    fn publication(&self, agent: AgentState, device: DeviceState) -> Option<Arc<Publication>> {
        self.table.get(agent, device).cloned()
    }

    fn dnd(&self, raw: u64) -> Option<DndState> {
        self.pull.map_wire(raw)
    }

    /// What a SIP SIMPLE watcher reads for a user whose bridge publication is `p`: the
    /// document the bridge writes for it, read back through the pull mapping; `None` when
    /// the bridge sends nothing for it.
    fn simple_view(&self, uri: &str, p: &Publication) -> Option<(u64, Option<String>)> {
        match self.simple.push(p) {
            PushTarget::Nothing => None,
            PushTarget::Remove => Some((18000, None)),
            PushTarget::Publish(state) => {
                let body = pidf::write(
                    uri,
                    &self.tuple_id,
                    &format!("{}-p", self.tuple_id),
                    &state,
                    &p.presence.activities,
                );
                let document = pidf::read(body.as_bytes()).ok()?;
                Some(self.simple.pull(&document))
            }
        }
    }
}

/// The SfB texts of a publication: (LCID, text) in its order.
fn texts(p: &Publication) -> Vec<(u32, String)> {
    p.presence
        .activities
        .iter()
        .map(|(lcid, text)| (lcid.get(), text.as_str().to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Counters

#[derive(Default)]
struct Counters {
    /// Agent and device events sent for push DNs.
    events: AtomicU64,
    /// Every message sent (events, registrations, the re-drive after a reconnect).
    messages: AtomicU64,
    /// Answers received (with a referenceID).
    answers: AtomicU64,
    /// EventDNDOn/Off received.
    dnd_events: AtomicU64,
    /// Presence changes per platform (Plat::slot).
    presence: [AtomicU64; 3],
    /// SIP SIMPLE publications by the second user agent that failed and were retried.
    presence_retries: AtomicU64,
    /// Reloads answered 200 / refused 422.
    reloads_applied: AtomicU64,
    reloads_refused: AtomicU64,
}

// ---------------------------------------------------------------------------------------
// Contact-centre clients

/// What an answer to a request must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Success,
    /// Either (a logout sent to bring a DN of unknown state back to a known one).
    Either,
}

#[derive(Clone, Debug)]
struct Pending {
    dn: String,
    what: &'static str,
    expect: Outcome,
    /// The call an `EventReleased` ends.
    released: Option<String>,
}

/// One client's view: its push DNs' state, its pull DNs' last DND, what it waits for.
#[derive(Default)]
struct ClientModel {
    push: BTreeMap<String, AgentDn>,
    pull: BTreeMap<String, Option<DndState>>,
    pending: HashMap<u64, Pending>,
    /// Answers that contradict the events sent, and unsolicited errors.
    unexpected: Vec<String>,
    /// Answers for requests not waited for (after a reconnect: none expected).
    strays: u64,
}

enum ClientCmd {
    /// Send a burst, drop the connection without closing it, reconnect, register again
    /// and bring the DNs whose last requests went unanswered back to a known state. The
    /// reply says how many DNs that was.
    Disconnect(oneshot::Sender<Result<String, String>>),
}

struct Client {
    id: usize,
    cti: String,
    admin: SocketAddr,
    clients: usize,
    rate: f64,
    model: Arc<Mutex<ClientModel>>,
    counters: Arc<Counters>,
    load_on: Arc<AtomicBool>,
    rng: SplitMix64,
    reference: u64,
    calls: u64,
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type WsSink = futures_util::stream::SplitSink<WsStream, Message>;

impl Client {
    fn push_dns(&self) -> Vec<String> {
        lock(&self.model).push.keys().cloned().collect()
    }

    fn pull_dns(&self) -> Vec<String> {
        lock(&self.model).pull.keys().cloned().collect()
    }

    /// Queues one message on `sink` (not flushed) and records what its answer must be.
    async fn send(
        &mut self,
        sink: &mut WsSink,
        body: ClientRequest,
        expect: Outcome,
        released: Option<String>,
    ) -> Result<(), Error> {
        self.reference += 1;
        let dn = body.this_dn().to_string();
        let what = body.name();
        lock(&self.model).pending.insert(
            self.reference,
            Pending {
                dn,
                what,
                expect,
                released,
            },
        );
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        sink.feed(Message::text(
            ClientMessage::new(self.reference, body).to_json(),
        ))
        .await
        .map_err(|e| format!("client {}: cannot send to {}: {e}", self.id, self.cti))?;
        Ok(())
    }

    /// One random agent or device event on one of its push DNs that is valid in the DN's
    /// state (so that every answer must be a success), applied to the model as it is sent.
    async fn send_event(&mut self, sink: &mut WsSink, dns: &[String]) -> Result<(), Error> {
        let dn = pick(&mut self.rng, dns).clone();
        let state = lock(&self.model).push.get(&dn).cloned().unwrap_or_default();
        let (id, calls) = (self.id, &mut self.calls);
        let (body, next, released) = support::mix_event(&mut self.rng, &dn, &state, || {
            *calls += 1;
            format!("c{id}k{calls:x}")
        })?;
        lock(&self.model).push.insert(dn, next);
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        self.send(sink, body, Outcome::Success, released).await
    }

    fn on_frame(&self, text: &str) {
        let event = match ServerEvent::from_json(text) {
            Ok(event) => event,
            Err(e) => {
                lock(&self.model).unexpected.push(format!(
                    "client {}: unreadable event ({e}): {text:.200}",
                    self.id
                ));
                return;
            }
        };
        let mut model = lock(&self.model);
        let mut settle = |reference: u64, ok: bool, detail: &str| {
            self.counters.answers.fetch_add(1, Ordering::Relaxed);
            let Some(pending) = model.pending.remove(&reference) else {
                model.strays += 1;
                return;
            };
            if ok {
                if let Some(call) = &pending.released
                    && let Some(state) = model.push.get_mut(&pending.dn)
                {
                    state.maybe_open.remove(call);
                }
            } else if pending.expect == Outcome::Success {
                model.unexpected.push(format!(
                    "client {}: {} on DN {} (referenceID {reference}) was answered {detail}",
                    self.id, pending.what, pending.dn
                ));
            }
        };
        match event {
            ServerEvent::EventDNDOn { this_dn, .. } => {
                self.counters.dnd_events.fetch_add(1, Ordering::Relaxed);
                model.pull.insert(this_dn.to_string(), Some(DndState::On));
            }
            ServerEvent::EventDNDOff { this_dn, .. } => {
                self.counters.dnd_events.fetch_add(1, Ordering::Relaxed);
                model.pull.insert(this_dn.to_string(), Some(DndState::Off));
            }
            ServerEvent::EventRegistered {
                reference_id,
                this_dn,
                dnd,
                ..
            } => {
                settle(reference_id, true, "");
                if let Some(dnd) = dnd {
                    model.pull.insert(this_dn.to_string(), Some(dnd));
                }
            }
            ServerEvent::EventError {
                reference_id: Some(reference),
                error_code,
                error_message,
            } => settle(
                reference,
                false,
                &format!("EventError {}: {error_message}", error_code.as_u32()),
            ),
            ServerEvent::EventError {
                reference_id: None,
                error_code,
                error_message,
            } => model.unexpected.push(format!(
                "client {}: unsolicited EventError {}: {error_message}",
                self.id,
                error_code.as_u32()
            )),
            other => {
                if let Some(reference) = other.reference_id() {
                    settle(reference, true, "");
                }
            }
        }
    }

    async fn connect(&self) -> Result<WsStream, Error> {
        let mut last = String::new();
        for _ in 0..50 {
            match tokio_tungstenite::connect_async_with_config(self.cti.as_str(), None, true).await
            {
                Ok((ws, _)) => return Ok(ws),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("client {}: cannot connect to {}: {last}", self.id, self.cti).into())
    }

    /// Until the daemon counts `want` contact-centre clients (its `presence_cti_clients`):
    /// then the dropped connection's messages are all in the engine, and what follows on a
    /// new one cannot overtake them.
    async fn wait_clients(&self, want: f64) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, page) = support::http(self.admin, "GET", "/metrics").await?;
            let count = support::metric(&page, "presence_cti_clients");
            if status == 200 && count.is_some_and(|c| c <= want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "client {}: the daemon still counts {count:?} clients 30 s after the drop (want {want})",
                    self.id
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<ClientCmd>) -> Result<(), Error> {
        let push = self.push_dns();
        let pull = self.pull_dns();
        let per_client = self.rate / self.clients as f64;
        let mut uncertain: BTreeSet<String> = BTreeSet::new();
        let mut reply: Option<oneshot::Sender<Result<String, String>>> = None;
        loop {
            let ws = self.connect().await?;
            let (mut sink, mut stream) = ws.split();
            for dn in &pull {
                let body = ClientRequest::RegisterAddress {
                    this_dn: dn.parse()?,
                };
                self.send(&mut sink, body, Outcome::Success, None).await?;
            }
            // DNs whose last requests may or may not have reached the bridge: logged out,
            // every call that may be open released, back in service.
            let redriven = uncertain.len();
            for dn in std::mem::take(&mut uncertain) {
                let this_dn: presence_model::DnNumber = dn.parse()?;
                let state = lock(&self.model).push.get(&dn).cloned().unwrap_or_default();
                self.send(
                    &mut sink,
                    ClientRequest::RequestAgentLogout {
                        this_dn: this_dn.clone(),
                    },
                    Outcome::Either,
                    None,
                )
                .await?;
                for call in state.maybe_open.union(&state.calls) {
                    let body = ClientRequest::EventReleased {
                        this_dn: this_dn.clone(),
                        conn_id: call.parse()?,
                    };
                    self.send(&mut sink, body, Outcome::Success, Some(call.clone()))
                        .await?;
                }
                self.send(
                    &mut sink,
                    ClientRequest::EventDNBackInService { this_dn },
                    Outcome::Success,
                    None,
                )
                .await?;
                lock(&self.model).push.insert(
                    dn,
                    AgentDn {
                        maybe_open: state.maybe_open.union(&state.calls).cloned().collect(),
                        ..AgentDn::default()
                    },
                );
            }
            sink.flush()
                .await
                .map_err(|e| format!("client {}: cannot send: {e}", self.id))?;
            if let Some(reply) = reply.take() {
                let _ = reply.send(Ok(format!(
                    "client {} reconnected; {redriven} DNs with unanswered requests brought back to Logout/Idle",
                    self.id
                )));
            }
            let mut ticker = tokio::time::interval(Duration::from_millis(10));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut credit = 0.0f64;
            let mut last = Instant::now();
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        let now = Instant::now();
                        if self.load_on.load(Ordering::Relaxed) {
                            credit += per_client * now.duration_since(last).as_secs_f64();
                        } else {
                            credit = 0.0;
                        }
                        last = now;
                        let mut sent = false;
                        while credit >= 1.0 {
                            credit -= 1.0;
                            self.send_event(&mut sink, &push).await?;
                            sent = true;
                        }
                        if sent {
                            sink.flush().await.map_err(|e| format!("client {}: cannot send: {e}", self.id))?;
                        }
                    }
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => self.on_frame(text.as_str()),
                        Some(Ok(Message::Close(close))) => {
                            return Err(format!("client {}: the daemon closed the link: {close:?}", self.id).into());
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(format!("client {}: the link failed: {e}", self.id).into()),
                        None => return Err(format!("client {}: the link ended", self.id).into()),
                    },
                    cmd = cmds.recv() => match cmd {
                        Some(ClientCmd::Disconnect(r)) => {
                            for _ in 0..BURST {
                                self.send_event(&mut sink, &push).await?;
                            }
                            sink.flush().await.map_err(|e| format!("client {}: cannot send: {e}", self.id))?;
                            // No close handshake: the socket goes, unread answers and all.
                            drop(sink);
                            drop(stream);
                            let pending = std::mem::take(&mut lock(&self.model).pending);
                            uncertain = pending
                                .into_values()
                                .map(|p| p.dn)
                                .filter(|dn| push.contains(dn))
                                .collect();
                            if let Err(e) = self.wait_clients((self.clients - 1) as f64).await {
                                let _ = r.send(Err(e.to_string()));
                                return Err(e);
                            }
                            reply = Some(r);
                            break;
                        }
                        None => return Ok(()),
                    },
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Presence of the pull users

/// The last presence set for each pull DN: the availability on the SfB scale the bridge
/// must read, and a description.
type Truth = Arc<Mutex<HashMap<String, (u64, String)>>>;

/// What the SIP SIMPLE watcher last read for each user: (availability, activity).
type Watched = Arc<Mutex<HashMap<UserId, (u64, Option<String>)>>>;

const SFB_PRESENCE: [(u32, Option<&str>); 13] = [
    (3500, Some("Available")),
    (3000, None),
    (5999, None),
    (4500, Some("Inactive")),
    (5000, None),
    (2999, None),
    (6000, None),
    (6500, Some("In a call")),
    (7500, Some("Busy, inactive")),
    (9500, Some("Presenting")),
    (12500, Some("Be right back")),
    (15500, Some("Away")),
    (18000, None),
];

const TEAMS_PRESENCE: [(GraphAvailability, &str); 8] = [
    (GraphAvailability::Available, "Available"),
    (GraphAvailability::AvailableIdle, "Available"),
    (GraphAvailability::Busy, "InACall"),
    (GraphAvailability::BusyIdle, "Busy"),
    (GraphAvailability::DoNotDisturb, "Presenting"),
    (GraphAvailability::BeRightBack, "BeRightBack"),
    (GraphAvailability::Away, "Away"),
    (GraphAvailability::Offline, "OffWork"),
];

/// PIDF states a phone publishes, in the override syntax of presence-simple.
const SIMPLE_PRESENCE: [&str; 7] = [
    "open",
    "open; idle",
    "open; busy",
    "open; on-the-phone; idle",
    "open; away",
    "open; meeting",
    "closed",
];

enum PullerCmd {
    /// Publish this body for this user (its latest presence).
    Set(String, String),
    /// Kamailio lost every publication (a restart with in-memory storage): publish every
    /// user's presence again (a modify with a lost tag gets 412 and is published anew).
    RepublishAll,
    /// Until every user's latest presence is confirmed (200), at most the given time.
    Settle(Duration, std::sync::mpsc::Sender<Result<(), String>>),
}

/// A second SIP user agent publishing the SIP SIMPLE pull users' presence into Kamailio, on
/// a thread of its own (RawUa blocks): one publication per user kept by its entity tag,
/// published anew after a 412; failures are retried every half second.
fn start_puller(
    kamailio: SocketAddr,
    counters: Arc<Counters>,
) -> Result<std::sync::mpsc::Sender<PullerCmd>, Error> {
    let mut ua = RawUa::connect(kamailio, SIMPLE_DOMAIN)
        .map_err(|e| format!("the SIP SIMPLE presence user agent: {e}"))?;
    ua.set_user_agent("presence-soak-phone");
    let (tx, rx) = std::sync::mpsc::channel::<PullerCmd>();
    std::thread::spawn(move || {
        let mut etags: HashMap<String, String> = HashMap::new();
        let mut desired: HashMap<String, String> = HashMap::new();
        let mut confirmed: HashMap<String, Instant> = HashMap::new();
        let mut dirty: BTreeSet<String> = BTreeSet::new();
        fn publish(
            ua: &mut RawUa,
            etags: &mut HashMap<String, String>,
            user: &str,
            body: &str,
        ) -> bool {
            for _ in 0..2 {
                let etag = etags.get(user).cloned();
                match ua.publish(user, body, 3600, etag.as_deref()) {
                    Ok(answer) if answer.is_success() => {
                        if let Some(tag) = answer.etag {
                            etags.insert(user.to_owned(), tag);
                        }
                        return true;
                    }
                    // The tag is gone (expired, or Kamailio restarted): publish anew.
                    Ok(answer) if answer.status == 412 => {
                        etags.remove(user);
                    }
                    Ok(_) | Err(_) => return false,
                }
            }
            false
        }
        loop {
            let cmd = match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(cmd) => Some(cmd),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut settle = None;
            match cmd {
                Some(PullerCmd::Set(user, body)) => {
                    desired.insert(user.clone(), body);
                    dirty.insert(user);
                }
                // Not by forgetting the tags: a user already published anew since the
                // restart would get a second live publication, whose stale state Kamailio
                // merges into every NOTIFY. A stale tag gets 412 and is published anew.
                Some(PullerCmd::RepublishAll) => dirty.extend(desired.keys().cloned()),
                Some(PullerCmd::Settle(within, reply)) => {
                    settle = Some((Instant::now() + within, reply));
                }
                None => {}
            }
            // Kamailio keeps a publication an hour at most: refresh well before.
            let stale: Vec<String> = confirmed
                .iter()
                .filter(|(_, at)| at.elapsed() > Duration::from_secs(1800))
                .map(|(u, _)| u.clone())
                .collect();
            dirty.extend(stale);
            loop {
                for user in std::mem::take(&mut dirty) {
                    let Some(body) = desired.get(&user) else {
                        continue;
                    };
                    if publish(&mut ua, &mut etags, &user, body) {
                        confirmed.insert(user, Instant::now());
                    } else {
                        counters.presence_retries.fetch_add(1, Ordering::Relaxed);
                        dirty.insert(user);
                    }
                }
                let Some((deadline, reply)) = settle.take() else {
                    break;
                };
                if dirty.is_empty() {
                    let _ = reply.send(Ok(()));
                    break;
                }
                if Instant::now() > deadline {
                    let _ = reply.send(Err(format!(
                        "{} SIP SIMPLE pull users' presence not accepted by Kamailio: {:?}",
                        dirty.len(),
                        dirty.iter().take(5).collect::<Vec<_>>()
                    )));
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
                settle = Some((deadline, reply));
            }
        }
    });
    Ok(tx)
}

struct PresenceDriver {
    sfb: Arc<SimServer>,
    graph: Arc<GraphSimServer>,
    puller: std::sync::mpsc::Sender<PullerCmd>,
    expect: Arc<Expect>,
    truth: Truth,
    counters: Arc<Counters>,
    pulls: Vec<Dn>,
    rng: SplitMix64,
    changes: u64,
}

impl PresenceDriver {
    /// One presence change of a random pull user.
    fn change(&mut self) -> Result<(), Error> {
        let dn = pick(&mut self.rng, &self.pulls).clone();
        self.changes += 1;
        let (raw, what) = match dn.plat {
            Plat::Sfb => {
                let (availability, activity) = *pick(&mut self.rng, &SFB_PRESENCE);
                let uri = SipUri::new(&dn.user)?;
                self.sfb.set_user_presence(&uri, availability, activity);
                (
                    u64::from(availability),
                    format!("SfB {availability} {activity:?}"),
                )
            }
            Plat::Teams => {
                let (availability, activity) = *pick(&mut self.rng, &TEAMS_PRESENCE);
                self.graph
                    .set_client_presence(&dn.user, availability, activity)
                    .map_err(|e| format!("set_client_presence({}): {e}", dn.user))?;
                let raw = presence_graph::mapping::pull(availability.as_str())
                    .ok_or_else(|| format!("{availability:?} has no SfB value"))?;
                (
                    u64::from(raw),
                    format!("Teams {}/{activity}", availability.as_str()),
                )
            }
            Plat::Simple => {
                let text = *pick(&mut self.rng, &SIMPLE_PRESENCE);
                let PushTarget::Publish(state) = text.parse::<PushTarget>()? else {
                    return Err(format!("`{text}` is not a PIDF state").into());
                };
                let note = format!("soak change {}", self.changes);
                let notes = if self.rng.next_f64() < 0.5 {
                    Activities::new(vec![(Lcid::new(1033), ActivityText::new(&note))])?
                } else {
                    Activities::empty()
                };
                let body = pidf::write(&dn.user, "soak-phone", "soak-phone-p", &state, &notes);
                let document = pidf::read(body.as_bytes())?;
                let (raw, _) = self.expect.simple.pull(&document);
                self.puller
                    .send(PullerCmd::Set(simple_name(&dn.user).to_owned(), body))
                    .map_err(|_| "the SIP SIMPLE presence user agent stopped")?;
                (raw, format!("PIDF `{text}`"))
            }
        };
        self.counters.presence[dn.plat.slot()].fetch_add(1, Ordering::Relaxed);
        lock(&self.truth).insert(dn.number, (raw, what));
        Ok(())
    }

    async fn run(mut self, rate: f64, running: Arc<AtomicBool>) -> Result<(), Error> {
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut credit = 0.0f64;
        let mut last = Instant::now();
        while running.load(Ordering::Relaxed) {
            ticker.tick().await;
            let now = Instant::now();
            credit += rate * now.duration_since(last).as_secs_f64();
            last = now;
            while credit >= 1.0 {
                credit -= 1.0;
                self.change()?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Faults

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    SfbDrop,
    SfbStopReading,
    Sfb503,
    Sfb409Storm,
    SfbGarbage,
    Graph429,
    GraphTokenRevoked,
    GraphStall,
    KamailioRestart,
    CtiDisconnect,
    ConfigBroken,
    MapRemoved,
}

impl Fault {
    const ALL: [Fault; 12] = [
        Fault::SfbDrop,
        Fault::SfbStopReading,
        Fault::Sfb503,
        Fault::Sfb409Storm,
        Fault::SfbGarbage,
        Fault::Graph429,
        Fault::GraphTokenRevoked,
        Fault::GraphStall,
        Fault::KamailioRestart,
        Fault::CtiDisconnect,
        Fault::ConfigBroken,
        Fault::MapRemoved,
    ];

    /// The name `--only` takes.
    fn id(self) -> &'static str {
        match self {
            Fault::SfbDrop => "sfb-drop",
            Fault::SfbStopReading => "sfb-stop-reading",
            Fault::Sfb503 => "sfb-503",
            Fault::Sfb409Storm => "sfb-409",
            Fault::SfbGarbage => "sfb-garbage",
            Fault::Graph429 => "graph-429",
            Fault::GraphTokenRevoked => "graph-revoke",
            Fault::GraphStall => "graph-stall",
            Fault::KamailioRestart => "kamailio-restart",
            Fault::CtiDisconnect => "cti-drop",
            Fault::ConfigBroken => "reload-broken",
            Fault::MapRemoved => "reload-no-map",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Fault::SfbDrop => "sfb: connections dropped",
            Fault::SfbStopReading => "sfb: stops reading 10 s",
            Fault::Sfb503 => "sfb: 503 to everything 30 s",
            Fault::Sfb409Storm => "sfb: 409 storm 20 s",
            Fault::SfbGarbage => "sfb: garbage on the connection",
            Fault::Graph429 => "graph: 429 to everything 60 s",
            Fault::GraphTokenRevoked => "graph: tokens revoked",
            Fault::GraphStall => "graph: stalls 10 s",
            Fault::KamailioRestart => "kamailio: restarted",
            Fault::CtiDisconnect => "cti: client drops mid-burst, reconnects",
            Fault::ConfigBroken => "reload: broken configuration refused, restored",
            Fault::MapRemoved => "reload: map file removed, refused, restored",
        }
    }
}

struct FaultWorld {
    sfb: Arc<SimServer>,
    graph: Arc<GraphSimServer>,
    kamailio: Arc<Mutex<Kamailio>>,
    puller: std::sync::mpsc::Sender<PullerCmd>,
    admin: SocketAddr,
    config_path: PathBuf,
    config_text: String,
    map_path: PathBuf,
    clients: Vec<mpsc::Sender<ClientCmd>>,
    counters: Arc<Counters>,
}

/// Sleeps `duration`, but not past `until`.
async fn hold(duration: Duration, until: Instant) {
    let end = (Instant::now() + duration).min(until);
    tokio::time::sleep_until(tokio::time::Instant::from_std(end)).await;
}

/// Replaces a file atomically (a new file renamed over it), as operations.md advises.
fn replace(path: &Path, text: &str) -> Result<(), Error> {
    let new = path.with_extension("new");
    std::fs::write(&new, text).map_err(|e| format!("cannot write {}: {e}", new.display()))?;
    std::fs::rename(&new, path)
        .map_err(|e| format!("cannot rename {} to {}: {e}", new.display(), path.display()))?;
    Ok(())
}

impl FaultWorld {
    /// `POST /v1/reload`: the status and the body.
    async fn reload(&self) -> Result<(u16, String), Error> {
        let (status, body) = support::http(self.admin, "POST", "/v1/reload").await?;
        match status {
            200 => self
                .counters
                .reloads_applied
                .fetch_add(1, Ordering::Relaxed),
            _ => self
                .counters
                .reloads_refused
                .fetch_add(1, Ordering::Relaxed),
        };
        Ok((status, body))
    }

    /// A reload that must be refused (422, `"reloaded": false`) with the daemon serving on.
    async fn reload_refused(&self, what: &str) -> Result<String, Error> {
        let (status, body) = self.reload().await?;
        if status != 422 || !body.contains("\"reloaded\":false") {
            return Err(format!(
                "the reload of {what} was not refused: HTTP {status}: {body:.600}"
            )
            .into());
        }
        let (health, _) = support::http(self.admin, "GET", "/healthz").await?;
        if health != 200 {
            return Err(
                format!("after the refused reload of {what}, /healthz answers {health}").into(),
            );
        }
        let errors = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errors"].as_array().map(Vec::len))
            .unwrap_or(0);
        Ok(format!("refused with {errors} diagnostics"))
    }

    /// A reload of the original configuration that must be applied without changes.
    async fn reload_restored(&self, what: &str) -> Result<(), Error> {
        let (status, body) = self.reload().await?;
        let report: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let unchanged = ["added", "removed", "moved", "reassigned"]
            .iter()
            .all(|k| report["report"][k].as_u64() == Some(0));
        if status != 200 || report["reloaded"] != serde_json::Value::Bool(true) || !unchanged {
            return Err(format!(
                "the reload of the restored configuration after {what} failed or changed DNs: HTTP {status}: {body:.600}"
            )
            .into());
        }
        Ok(())
    }

    async fn inject(
        &self,
        fault: Fault,
        rng: &mut SplitMix64,
        until: Instant,
    ) -> Result<String, Error> {
        Ok(match fault {
            Fault::SfbDrop => {
                let n = self.sfb.connection_count();
                self.sfb.drop_connections();
                format!("{n} connection(s) closed")
            }
            Fault::SfbStopReading => {
                self.sfb.stop_reading(true);
                hold(Duration::from_secs(10), until).await;
                self.sfb.stop_reading(false);
                String::new()
            }
            Fault::Sfb503 => {
                self.sfb.random_errors(1.0, 503)?;
                hold(Duration::from_secs(30), until).await;
                self.sfb.clear_faults();
                String::new()
            }
            Fault::Sfb409Storm => {
                let rate = 0.3 + 0.6 * rng.next_f64();
                self.sfb.random_conflicts(rate);
                hold(Duration::from_secs(20), until).await;
                self.sfb.clear_faults();
                format!("{:.0} % of publications conflict", rate * 100.0)
            }
            Fault::SfbGarbage => {
                let n = self.sfb.connection_count();
                self.sfb.send_garbage();
                format!("to {n} connection(s)")
            }
            Fault::Graph429 => {
                let retry_after = 1 + below(rng, 10) as u32;
                self.graph
                    .throttle_for(Duration::from_secs(60), retry_after);
                hold(Duration::from_secs(60), until).await;
                self.graph.clear_faults();
                format!("Retry-After {retry_after} s")
            }
            Fault::GraphTokenRevoked => {
                self.graph.revoke_tokens();
                String::new()
            }
            Fault::GraphStall => {
                self.graph.stall(true);
                hold(Duration::from_secs(10), until).await;
                let held = self.graph.held_requests();
                self.graph.stall(false);
                format!("{held} request(s) held")
            }
            Fault::KamailioRestart => {
                let kamailio = Arc::clone(&self.kamailio);
                let started = Instant::now();
                tokio::task::spawn_blocking(move || lock(&kamailio).restart())
                    .await
                    .map_err(|e| format!("the Kamailio restart task: {e}"))?
                    .map_err(|e| format!("Kamailio did not restart: {e}"))?;
                self.puller
                    .send(PullerCmd::RepublishAll)
                    .map_err(|_| "the SIP SIMPLE presence user agent stopped")?;
                format!("back in {:.0?}; the phones publish anew", started.elapsed())
            }
            Fault::CtiDisconnect => {
                let k = below(rng, self.clients.len());
                let (tx, rx) = oneshot::channel();
                self.clients[k]
                    .send(ClientCmd::Disconnect(tx))
                    .await
                    .map_err(|_| format!("client {k} has stopped"))?;
                tokio::time::timeout(Duration::from_secs(60), rx)
                    .await
                    .map_err(|_| format!("client {k} did not reconnect within 60 s"))?
                    .map_err(|_| format!("client {k} stopped while reconnecting"))??
            }
            Fault::ConfigBroken => {
                let variants: [(&str, String); 4] = [
                    (
                        "a TOML syntax error",
                        format!(
                            "{}\n[dn.\"broken",
                            &self.config_text[..self.config_text.len() / 2]
                        ),
                    ),
                    ("an empty file", String::new()),
                    (
                        "a DN on an unknown platform",
                        format!(
                            "{}\n[dn.\"999999\"]\ntype = \"Extension\"\nuri = \"sip:nobody@contoso.com\"\nplatform = \"nosuch\"\nannex.TServer = {{ presence-profile = \"PushProfile\" }}\n",
                            self.config_text
                        ),
                    ),
                    (
                        "a state ID the map lacks",
                        self.config_text
                            .replacen("1=IDLE_OUT", "1=NO_SUCH_STATE", 1),
                    ),
                ];
                let (what, text) = &variants[below(rng, variants.len())];
                replace(&self.config_path, text)?;
                let refused = self.reload_refused(what).await;
                replace(&self.config_path, &self.config_text)?;
                let refused = refused?;
                self.reload_restored(what).await?;
                format!("{what}: {refused}; restored and applied")
            }
            Fault::MapRemoved => {
                let away = self.map_path.with_extension("xml.away");
                std::fs::rename(&self.map_path, &away)
                    .map_err(|e| format!("cannot move the map away: {e}"))?;
                let refused = self.reload_refused("a missing map").await;
                std::fs::rename(&away, &self.map_path)
                    .map_err(|e| format!("cannot put the map back: {e}"))?;
                let refused = refused?;
                self.reload_restored("a missing map").await?;
                format!("{refused}; restored and applied")
            }
        })
    }

    /// Every fault off.
    fn clear(&self) {
        self.sfb.clear_faults();
        self.graph.clear_faults();
        self.graph.stall(false);
    }

    /// Faults one at a time, 2 to 6 s apart, until `until`.
    async fn run(
        &self,
        kinds: Vec<Fault>,
        mut rng: SplitMix64,
        start: Instant,
        until: Instant,
    ) -> Result<(BTreeMap<Fault, u64>, Option<Instant>), Error> {
        let mut counts: BTreeMap<Fault, u64> = BTreeMap::new();
        let mut last = None;
        hold(Duration::from_secs(5), until).await;
        while Instant::now() + Duration::from_secs(1) < until {
            let fault = *pick(&mut rng, &kinds);
            let began = Instant::now();
            let detail = self
                .inject(fault, &mut rng, until)
                .await
                .map_err(|e| format!("fault `{}` at {}: {e}", fault.name(), stamp(start)))?;
            *counts.entry(fault).or_default() += 1;
            last = Some(Instant::now());
            println!(
                "{} fault {:>3}: {} ({:.1} s){}{}",
                stamp(start),
                counts.values().sum::<u64>(),
                fault.name(),
                began.elapsed().as_secs_f64(),
                if detail.is_empty() { "" } else { ": " },
                detail
            );
            hold(Duration::from_secs(2 + rng.next_u64() % 5), until).await;
        }
        Ok((counts, last))
    }
}

// ---------------------------------------------------------------------------------------
// The convergence check

struct Checker {
    sfb: Arc<SimServer>,
    graph: Arc<GraphSimServer>,
    expect: Arc<Expect>,
    dns: Vec<Dn>,
    models: Vec<Arc<Mutex<ClientModel>>>,
    truth: Truth,
    simple_seen: Watched,
}

impl Checker {
    fn agent_of(&self, dn: &str) -> Option<AgentDn> {
        self.models
            .iter()
            .find_map(|m| lock(m).push.get(dn).cloned())
    }

    fn pull_of(&self, dn: &str) -> Option<Option<DndState>> {
        self.models
            .iter()
            .find_map(|m| lock(m).pull.get(dn).copied())
    }

    /// What the check compares: push DNs with an expected state (by platform and state ID),
    /// pull DNs with a presence set (by platform).
    fn coverage(&self) -> String {
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        let (mut push, mut pull) = ([0usize; 3], [0usize; 3]);
        for dn in &self.dns {
            if dn.push {
                if let Some(state) = self.agent_of(&dn.number)
                    && let Some(p) = self.expect.publication(state.agent, state.device())
                {
                    push[dn.plat.slot()] += 1;
                    *states.entry(p.id.as_str().to_owned()).or_default() += 1;
                }
            } else if lock(&self.truth).contains_key(&dn.number) {
                pull[dn.plat.slot()] += 1;
            }
        }
        format!(
            "{} push DNs (SfB {}, Teams {}, SIP SIMPLE {}; final states {}) and {} pull DNs with a presence set (SfB {}, Teams {}, SIP SIMPLE {})",
            push.iter().sum::<usize>(),
            push[0],
            push[1],
            push[2],
            states
                .iter()
                .map(|(id, n)| format!("{id} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            pull.iter().sum::<usize>(),
            pull[0],
            pull[1],
            pull[2]
        )
    }

    /// Every DN whose platform (push) or client (pull) differs from the expectation, with
    /// what was expected and what was found.
    fn differences(&self) -> Result<Vec<(Dn, String)>, Error> {
        let mut diffs = Vec::new();
        for dn in &self.dns {
            let diff = if dn.push {
                self.push_difference(dn)?
            } else {
                self.pull_difference(dn)
            };
            if let Some(diff) = diff {
                diffs.push((dn.clone(), diff));
            }
        }
        Ok(diffs)
    }

    fn push_difference(&self, dn: &Dn) -> Result<Option<String>, Error> {
        let state = self
            .agent_of(&dn.number)
            .ok_or_else(|| format!("no client owns push DN {}", dn.number))?;
        let (agent, device) = (state.agent, state.device());
        let Some(publication) = self.expect.publication(agent, device) else {
            return Ok(None); // the combination publishes nothing: anything goes
        };
        let head = format!(
            "{}/{} → {}",
            agent.name(),
            device.name(),
            publication.id.as_str()
        );
        Ok(match dn.plat {
            Plat::Sfb => {
                let want = (
                    u32::from(publication.presence.availability.get()),
                    texts(&publication),
                );
                let shown = self.sfb.shows(&SipUri::new(&dn.user)?);
                let got = shown.as_ref().map(|s| (s.availability, s.texts.clone()));
                (got.as_ref() != Some(&want))
                    .then(|| format!("{head}: expected {want:?}, SfB shows {got:?}"))
            }
            Plat::Teams => {
                let target = self.expect.teams.push(&publication);
                let message = self.expect.teams.manages_status_messages().then(|| {
                    self.expect
                        .teams
                        .status_message(&publication)
                        .map(str::to_owned)
                });
                let shown = self
                    .graph
                    .shows(&dn.user)
                    .ok_or_else(|| format!("the Graph simulator has no user {}", dn.user))?;
                let ours = shown
                    .sessions
                    .iter()
                    .find(|s| s.source == SimConfig::DEFAULT_CLIENT_ID);
                let got_pair = ours.map(|s| format!("{}/{}", s.availability.as_str(), s.activity));
                let pair_ok = match target {
                    TeamsTarget::Session(pair) => got_pair.as_deref() == Some(&pair.to_string()),
                    TeamsTarget::Clear => ours.is_none(),
                    TeamsTarget::Preferred(pair) => {
                        shown.preferred.as_ref().is_some_and(|(a, act)| {
                            a.as_str() == pair.availability && act == pair.activity
                        })
                    }
                    TeamsTarget::Nothing => true,
                };
                let message_ok = match (&message, target) {
                    (None, _) | (_, TeamsTarget::Nothing) => true,
                    (Some(_), TeamsTarget::Clear) => shown.status_message.is_none(),
                    (Some(want), _) => &shown.status_message == want,
                };
                (!(pair_ok && message_ok)).then(|| {
                    format!(
                        "{head}: expected {target} with status message {message:?}; Teams shows the bridge's session {got_pair:?}, status message {:?} (aggregate {}/{})",
                        shown.status_message,
                        shown.availability.as_str(),
                        shown.activity
                    )
                })
            }
            Plat::Simple => {
                let Some(want) = self.expect.simple_view(&dn.user, &publication) else {
                    return Ok(None);
                };
                let user = UserId::sip(Platform::simple(), SipUri::new(&dn.user)?);
                let got = lock(&self.simple_seen).get(&user).cloned();
                (got.as_ref() != Some(&want)).then(|| {
                    format!("{head}: a watcher should read {want:?} from Kamailio, reads {got:?}")
                })
            }
        })
    }

    fn pull_difference(&self, dn: &Dn) -> Option<String> {
        let (raw, what) = lock(&self.truth).get(&dn.number).cloned()?;
        let want = self.expect.dnd(raw);
        let got = self.pull_of(&dn.number).flatten();
        (want.is_some() && got != want).then(|| {
            format!(
                "last presence set {what} (availability {raw}) → DND {}, the client's last DND is {}",
                want.map_or("-", DndState::as_str),
                got.map_or("none", DndState::as_str)
            )
        })
    }
}

/// Once converged, the daemon's own bookkeeping (`/v1/dns/{dn}`) must agree too: each push
/// DN's agent and device state as the events sent make them, its target the expected state
/// and confirmed by the platform without an error left; each pull DN's DND state the
/// expected one. Returns the DNs that disagree.
async fn daemon_disagreements(admin: SocketAddr, checker: &Checker) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for dn in &checker.dns {
        let (status, body) = support::http(admin, "GET", &format!("/v1/dns/{}", dn.number)).await?;
        let view: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
            format!(
                "/v1/dns/{} answered {status} with no JSON ({e}): {body:.200}",
                dn.number
            )
        })?;
        let text = |key: &str| view[key].as_str().map(str::to_owned);
        let mut wrong = Vec::new();
        if dn.push {
            let state = checker
                .agent_of(&dn.number)
                .ok_or_else(|| format!("no client owns push DN {}", dn.number))?;
            let want = checker
                .expect
                .publication(state.agent, state.device())
                .map(|p| p.id.as_str().to_owned());
            let checks = [
                ("agent_state", Some(state.agent.name().to_owned())),
                ("device_state", Some(state.device().name().to_owned())),
                ("target_state", want.clone()),
                ("last_published_state", want),
                ("last_publication_error", None),
            ];
            for (key, want) in checks {
                if text(key) != want {
                    wrong.push(format!("{key} {:?}, expected {want:?}", text(key)));
                }
            }
        } else if let Some((raw, _)) = lock(&checker.truth).get(&dn.number).cloned() {
            let want = checker.expect.dnd(raw).map(|d| d.as_str().to_owned());
            if text("dnd") != want {
                wrong.push(format!("dnd {:?}, expected {want:?}", text("dnd")));
            }
        }
        if !wrong.is_empty() {
            out.push(format!(
                "DN {} ({}): {}",
                dn.number,
                dn.user,
                wrong.join(", ")
            ));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The soak

#[tokio::main]
async fn main() -> Result<(), Error> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    tokio::select! {
        result = soak(args) => result,
        _ = tokio::signal::ctrl_c() => Err("interrupted: everything started was stopped".into()),
    }
}

async fn soak(args: Args) -> Result<(), Error> {
    let t0 = Instant::now();
    println!(
        "soak: seed {} ({} min; {} DNs per platform, half push, half pull; {} events/s over {} client(s); {} presence changes/s)",
        args.seed, args.minutes, args.dns, args.rate, args.clients, args.presence_rate
    );
    let mut rng = SplitMix64::new(args.seed);

    // The platforms.
    let kamailio = tokio::task::spawn_blocking(|| {
        Kamailio::start(KamailioOptions::default().storage(Storage::Memory))
    })
    .await
    .map_err(|e| format!("the Kamailio start task: {e}"))?
    .map_err(|e| format!("Kamailio did not start: {e}"))?;
    let kamailio_addr = kamailio.addr();
    let kamailio = Arc::new(Mutex::new(kamailio));
    let sfb = Arc::new(
        SimServer::start(presence_sfb_sim::ServerConfig::default())
            .await
            .map_err(|e| format!("the SfB simulator did not start: {e}"))?,
    );
    let graph = Arc::new(
        GraphSimServer::start(presence_graph_sim::ServerConfig {
            sim: SimConfig::default().with_generated_users(args.dns),
            ..presence_graph_sim::ServerConfig::default()
        })
        .await
        .map_err(|e| format!("the Graph simulator did not start: {e}"))?,
    );

    // The daemon.
    let dir = support::ScratchDir::new("soak")?;
    let dns = plan(args.dns);
    let teams_table = support::teams_table(&graph);
    let simple_table = support::simple_table(kamailio_addr, SIMPLE_DOMAIN);
    let mut config = support::head("sfb", Some(sfb.local_addr()));
    config.push_str(&teams_table);
    config.push_str(&simple_table);
    config.push_str("\n[admin]\nlisten = \"127.0.0.1:0\"\n");
    for dn in &dns {
        let number: usize = dn.number.parse()?;
        let profile = if dn.push {
            "PushProfile"
        } else {
            "PullProfile"
        };
        config.push_str(&support::dn(number, &dn.uri, dn.plat.name(), profile));
    }
    let expect = Arc::new(Expect::build(
        &dir.path().join("agent-states.xml"),
        &teams_table,
        &simple_table,
    )?);
    let mut daemon = support::start_daemon(dir.path(), &config, true, "warn,presence_bridge=info")?;
    let admin = daemon.admin()?;
    let pid = daemon.pid();
    let ready_by = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = support::http(admin, "GET", "/readyz").await?;
        if status == 200 {
            break;
        }
        if Instant::now() > ready_by {
            return Err(format!("the daemon was not ready within 90 s: {body}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{} daemon pid {pid} ready: CTI {}, admin http://{admin}; SfB simulator {}, Graph simulator {}, Kamailio {kamailio_addr}",
        stamp(t0),
        daemon.cti,
        sfb.local_addr(),
        graph.base_url()
    );

    // A watcher of the SIP SIMPLE push users (what Kamailio shows them as).
    let watcher_settings: SimpleSettings = toml::from_str(&format!(
        "server = \"{kamailio_addr}\"\ntransport = \"tcp\"\ndomain = \"{SIMPLE_DOMAIN}\"\napplication-uri = \"sip:soak-watcher@{SIMPLE_DOMAIN}\"\nmax-subscribes-in-flight = 256\n"
    ))?;
    let (events, mut receiver) = event_channel();
    let (watcher, _watcher_task) =
        SimpleTransport::start(&watcher_settings, Platform::simple(), events)?;
    let watched: Vec<UserId> = dns
        .iter()
        .filter(|d| d.plat == Plat::Simple && d.push)
        .map(|d| Ok::<_, Error>(UserId::sip(Platform::simple(), SipUri::new(&d.user)?)))
        .collect::<Result<_, _>>()?;
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = receiver.recv().await {
            if let TransportEvent::Connected { .. } = event {
                break;
            }
        }
    })
    .await
    .map_err(|_| "the SIP SIMPLE watcher did not connect to Kamailio within 30 s")?;
    watcher.subscribe(&watched).await?;
    let simple_seen: Watched = Arc::default();
    let seen = Arc::clone(&simple_seen);
    let watching = tokio::spawn(async move {
        while let Some(event) = receiver.recv().await {
            if let TransportEvent::Presence(update) = event {
                lock(&seen).insert(update.user, (update.raw_availability, update.activity));
            }
        }
    });

    // The load: contact-centre clients and the pull users' presence.
    let counters = Arc::new(Counters::default());
    let fatal = Fatal::default();
    let load_on = Arc::new(AtomicBool::new(false));
    let mut models = Vec::new();
    let mut client_cmds = Vec::new();
    let mut client_tasks = Vec::new();
    let push_dns: Vec<&Dn> = dns.iter().filter(|d| d.push).collect();
    let pull_dns: Vec<&Dn> = dns.iter().filter(|d| !d.push).collect();
    for id in 0..args.clients {
        let mut model = ClientModel::default();
        for dn in push_dns.iter().skip(id).step_by(args.clients) {
            model.push.insert(dn.number.clone(), AgentDn::default());
        }
        for dn in pull_dns.iter().skip(id).step_by(args.clients) {
            model.pull.insert(dn.number.clone(), None);
        }
        let model = Arc::new(Mutex::new(model));
        models.push(Arc::clone(&model));
        let (tx, rx) = mpsc::channel(4);
        client_cmds.push(tx);
        let client = Client {
            id,
            cti: daemon.cti.clone(),
            admin,
            clients: args.clients,
            rate: args.rate,
            model,
            counters: Arc::clone(&counters),
            load_on: Arc::clone(&load_on),
            rng: SplitMix64::new(rng.next_u64()),
            reference: 0,
            calls: 0,
        };
        let fatal = fatal.clone();
        client_tasks.push(tokio::spawn(async move {
            if let Err(e) = client.run(rx).await {
                fatal.set(e);
            }
        }));
    }
    let puller = start_puller(kamailio_addr, Arc::clone(&counters))?;
    let truth: Truth = Arc::default();
    let presence_on = Arc::new(AtomicBool::new(true));
    let driver = PresenceDriver {
        sfb: Arc::clone(&sfb),
        graph: Arc::clone(&graph),
        puller: puller.clone(),
        expect: Arc::clone(&expect),
        truth: Arc::clone(&truth),
        counters: Arc::clone(&counters),
        pulls: pull_dns.iter().map(|d| (*d).clone()).collect(),
        rng: SplitMix64::new(rng.next_u64()),
        changes: 0,
    };
    let presence_task = {
        let fatal = fatal.clone();
        let on = Arc::clone(&presence_on);
        let rate = args.presence_rate;
        tokio::spawn(async move {
            if let Err(e) = driver.run(rate, on).await {
                fatal.set(format!("presence changes: {e}"));
            }
        })
    };

    // Let every client register before the clock starts.
    let registered_by = Instant::now() + Duration::from_secs(30);
    while models.iter().any(|m| !lock(m).pending.is_empty())
        || counters.messages.load(Ordering::Relaxed) < pull_dns.len() as u64
    {
        if let Some(e) = fatal.get() {
            return Err(e.into());
        }
        if Instant::now() > registered_by {
            return Err("the clients' registrations were not answered within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load_on.store(true, Ordering::Relaxed);
    let load_start = Instant::now();
    let load_end = load_start + Duration::from_secs_f64(args.minutes * 60.0);
    println!(
        "{} load on: {} push and {} pull DNs; faults start in 5 s",
        stamp(t0),
        push_dns.len(),
        pull_dns.len()
    );

    // Faults, while the main loop watches the daemon.
    let world = Arc::new(FaultWorld {
        sfb: Arc::clone(&sfb),
        graph: Arc::clone(&graph),
        kamailio: Arc::clone(&kamailio),
        puller: puller.clone(),
        admin,
        config_path: dir.path().join("bridge.toml"),
        config_text: config.clone(),
        map_path: dir.path().join("agent-states.xml"),
        clients: client_cmds.clone(),
        counters: Arc::clone(&counters),
    });
    let fault_task = {
        let world = Arc::clone(&world);
        let fault_rng = SplitMix64::new(rng.next_u64());
        let kinds = args.faults.clone();
        tokio::spawn(async move { world.run(kinds, fault_rng, t0, load_end).await })
    };
    let mut warm: Option<(u64, u64)> = None;
    let mut next_report = load_start + Duration::from_secs(60);
    let mut samples: Vec<(Duration, u64, u64)> = Vec::new();
    while !fault_task.is_finished() {
        if let Some(e) = fatal.get() {
            world.clear();
            return Err(format!("the soak stopped at {}: {e}", stamp(t0)).into());
        }
        if let Some(status) = daemon.exited() {
            return Err(format!(
                "the daemon exited ({status}) at {}; its log ends with:\n{}",
                stamp(t0),
                daemon.log_tail()
            )
            .into());
        }
        let now = Instant::now();
        if warm.is_none() && now >= load_start + WARM_UP {
            warm = Some((support::rss_kib(pid), support::threads(pid)));
        }
        if now >= next_report {
            next_report += Duration::from_secs(60);
            let (rss, threads) = (support::rss_kib(pid), support::threads(pid));
            samples.push((load_start.elapsed(), rss, threads));
            let presence: u64 = counters
                .presence
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum();
            println!(
                "{} progress: {} events ({:.0}/s), {} answers, {} DND events, {} presence changes; daemon RSS {:.1} MiB, {} threads, {} warnings logged",
                stamp(t0),
                counters.events.load(Ordering::Relaxed),
                counters.events.load(Ordering::Relaxed) as f64 / load_start.elapsed().as_secs_f64(),
                counters.answers.load(Ordering::Relaxed),
                counters.dnd_events.load(Ordering::Relaxed),
                presence,
                mib(rss),
                threads,
                lock(&daemon.log).warnings
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (fault_counts, last_fault) = fault_task
        .await
        .map_err(|e| format!("the fault task: {e}"))?
        .inspect_err(|_| world.clear())?;
    let warm = warm.unwrap_or_else(|| (support::rss_kib(pid), support::threads(pid)));

    // Quiet: faults cleared, the load stops, every answer in, the phones' last PUBLISH in.
    world.clear();
    load_on.store(false, Ordering::Relaxed);
    presence_on.store(false, Ordering::Relaxed);
    let quiet = Instant::now();
    presence_task
        .await
        .map_err(|e| format!("the presence task: {e}"))?;
    let drain_by = Instant::now() + Duration::from_secs(60);
    while models.iter().any(|m| !lock(m).pending.is_empty()) {
        if let Some(e) = fatal.get() {
            return Err(e.into());
        }
        if Instant::now() > drain_by {
            let left: usize = models.iter().map(|m| lock(m).pending.len()).sum();
            return Err(format!(
                "{left} contact-centre requests still unanswered 60 s after the load stopped"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    puller
        .send(PullerCmd::Settle(Duration::from_secs(60), tx))
        .map_err(|_| "the SIP SIMPLE presence user agent stopped")?;
    tokio::task::spawn_blocking(move || rx.recv())
        .await
        .map_err(|e| format!("waiting for the SIP SIMPLE presence user agent: {e}"))?
        .map_err(|_| "the SIP SIMPLE presence user agent stopped")??;
    println!(
        "{} quiet: faults cleared, load stopped, every answer received; checking convergence (at most {:?})",
        stamp(t0),
        args.converge_timeout
    );

    // The convergence check.
    let checker = Checker {
        sfb: Arc::clone(&sfb),
        graph: Arc::clone(&graph),
        expect: Arc::clone(&expect),
        dns: dns.clone(),
        models: models.clone(),
        truth: Arc::clone(&truth),
        simple_seen: Arc::clone(&simple_seen),
    };
    let mut failures: Vec<String> = Vec::new();
    let mut diffs;
    let converged_at = loop {
        if let Some(e) = fatal.get() {
            return Err(e.into());
        }
        diffs = checker.differences()?;
        if diffs.is_empty() {
            break Some(Instant::now());
        }
        if quiet.elapsed() > args.converge_timeout {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if converged_at.is_none() {
        let mut per: BTreeMap<(Plat, bool), usize> = BTreeMap::new();
        for (dn, _) in &diffs {
            *per.entry((dn.plat, dn.push)).or_default() += 1;
        }
        println!(
            "NOT CONVERGED after {:?}: {} DN(s) differ ({})",
            args.converge_timeout,
            diffs.len(),
            per.iter()
                .map(|((p, push), n)| format!(
                    "{n} {} {}",
                    p.name(),
                    if *push { "push" } else { "pull" }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Kamailio's live publications per user: a SIP SIMPLE user with two shows both.
        let live: HashMap<String, usize> = {
            let kamailio = Arc::clone(&kamailio);
            tokio::task::spawn_blocking(move || {
                lock(&kamailio).live_presentity(presence_testkamailio::unix_now())
            })
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .fold(HashMap::new(), |mut m, p| {
                *m.entry(p.username).or_default() += 1;
                m
            })
        };
        for (dn, diff) in diffs.iter().take(40) {
            let at_kamailio = if dn.plat == Plat::Simple {
                format!(
                    "\n      Kamailio holds {} live publication(s) for the user",
                    live.get(simple_name(&dn.user)).copied().unwrap_or(0)
                )
            } else {
                String::new()
            };
            println!(
                "  DN {} ({} {}, {}): {diff}\n      daemon: {}{at_kamailio}",
                dn.number,
                dn.plat.name(),
                if dn.push { "push" } else { "pull" },
                dn.user,
                support::daemon_view(admin, &dn.number).await
            );
        }
        failures.push(format!(
            "{} user(s) did not converge within {:?}: {}",
            diffs.len(),
            args.converge_timeout,
            diffs
                .iter()
                .map(|(d, _)| d.user.as_str())
                .take(20)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let coverage = checker.coverage();
    if converged_at.is_some() {
        let disagree = daemon_disagreements(admin, &checker).await?;
        if !disagree.is_empty() {
            for line in disagree.iter().take(20) {
                println!("  daemon view differs: {line}");
            }
            failures.push(format!(
                "the daemon's /v1/dns view of {} DN(s) differs from the events sent, first: {}",
                disagree.len(),
                disagree[0]
            ));
        }
    }

    // Memory and threads.
    let (rss_end, threads_end) = (support::rss_kib(pid), support::threads(pid));
    let unexpected: Vec<String> = models
        .iter()
        .flat_map(|m| lock(m).unexpected.clone())
        .collect();
    let strays: u64 = models.iter().map(|m| lock(m).strays).sum();
    let rss_limit = (warm.0 as f64 * RSS_FACTOR) as u64 + RSS_SLACK_KIB;
    if rss_end > rss_limit {
        failures.push(format!(
            "the daemon's memory grew: RSS {:.1} MiB after the warm-up, {:.1} MiB at the end (limit {:.1} MiB = 150 % + 8 MiB)",
            mib(warm.0),
            mib(rss_end),
            mib(rss_limit)
        ));
    }
    if threads_end > warm.1 + THREAD_SLACK {
        failures.push(format!(
            "the daemon's threads grew: {} after the warm-up, {threads_end} at the end (limit +{THREAD_SLACK})",
            warm.1
        ));
    }
    if !unexpected.is_empty() {
        failures.push(format!(
            "{} contact-centre answer(s) contradict the events sent, first: {}",
            unexpected.len(),
            unexpected
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    let log = {
        let log = lock(&daemon.log);
        (log.warnings, log.errors, log.panics)
    };
    if log.2 > 0 {
        failures.push(format!("the daemon logged {} panic(s)", log.2));
    }

    // Stop everything started, by its handle.
    drop(client_cmds);
    drop(world);
    for task in client_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    watcher.shutdown(Duration::from_secs(1)).await;
    watching.abort();
    let exit = daemon.stop();
    if !exit.is_some_and(|s| s.success()) {
        failures.push(format!(
            "the daemon did not exit cleanly on SIGTERM: {exit:?}"
        ));
    }
    drop(puller);

    // The summary.
    let presence: Vec<u64> = counters
        .presence
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    let faults_total: u64 = fault_counts.values().sum();
    println!("\n== soak summary (seed {}) ==", args.seed);
    println!(
        "load: {:.1} min; {} agent/device events sent ({:.0}/s), {} contact-centre messages, {} answers ({} strays), {} DND events received",
        load_start
            .elapsed()
            .min(Duration::from_secs_f64(args.minutes * 60.0))
            .as_secs_f64()
            / 60.0,
        counters.events.load(Ordering::Relaxed),
        counters.events.load(Ordering::Relaxed) as f64 / (args.minutes * 60.0),
        counters.messages.load(Ordering::Relaxed),
        counters.answers.load(Ordering::Relaxed),
        strays,
        counters.dnd_events.load(Ordering::Relaxed)
    );
    println!(
        "presence changes: {} (SfB {}, Teams {}, SIP SIMPLE {}; {} SIP SIMPLE PUBLISH retries)",
        presence.iter().sum::<u64>(),
        presence[0],
        presence[1],
        presence[2],
        counters.presence_retries.load(Ordering::Relaxed)
    );
    println!("faults injected: {faults_total}");
    for fault in Fault::ALL {
        println!(
            "  {:>4}  {}",
            fault_counts.get(&fault).copied().unwrap_or(0),
            fault.name()
        );
    }
    println!(
        "reloads: {} applied, {} refused",
        counters.reloads_applied.load(Ordering::Relaxed),
        counters.reloads_refused.load(Ordering::Relaxed)
    );
    println!(
        "daemon RSS: {:.1} MiB after the warm-up minute, {:.1} MiB at the end (limit {:.1} MiB); threads: {} then {}",
        mib(warm.0),
        mib(rss_end),
        mib(rss_limit),
        warm.1,
        threads_end
    );
    if !samples.is_empty() {
        println!(
            "RSS each minute (MiB): {}",
            samples
                .iter()
                .map(|(_, rss, _)| format!("{:.1}", mib(*rss)))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!(
        "daemon log: {} warnings, {} errors, {} panics",
        log.0, log.1, log.2
    );
    match converged_at {
        Some(at) => println!(
            "converged: all {} push and {} pull DNs, {:.1} s after the faults were cleared and the load stopped ({:.1} s after the last fault ended)",
            push_dns.len(),
            pull_dns.len(),
            at.duration_since(quiet).as_secs_f64(),
            last_fault.map_or(0.0, |l| at.duration_since(l).as_secs_f64())
        ),
        None => println!("NOT converged"),
    }
    println!("compared: {coverage}");
    drop(kamailio);
    if failures.is_empty() {
        println!("soak passed");
        Ok(())
    } else {
        for failure in &failures {
            println!("FAIL: {failure}");
        }
        Err(format!("soak failed (seed {}): {}", args.seed, failures.join("; ")).into())
    }
}
