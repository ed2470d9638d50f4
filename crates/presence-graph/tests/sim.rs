//! The driver against presence-graph-sim over loopback HTTP and HTTPS: the port's
//! conformance suite, bursts under the real budget, and a credential revoked mid-run.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use presence_graph::mapping::{self, Mapping, Target};
use presence_graph::settings::{GraphSettings, Secret, SecretSource};
use presence_graph::{GraphTransport, probe};
use presence_graph_sim::{
    Availability as SimAvailability, GraphSimServer, ServerConfig, SimConfig, WriteKind,
};
use presence_model::{
    Activities, AggregatedStateId, Availability, EntraId, Platform, Presence, Publication, Upn,
    UserAddress, UserId,
};
use presence_transport::testkit::{Harness, Shown};
use presence_transport::{
    EventReceiver, PresenceTransport, TransportError, TransportEvent, event_channel,
};

static SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// A test's own folder for the files the transport reads (CA, secrets), removed when the
/// test ends, also when it fails: nothing of a test stays behind in the temporary folder.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let n = SCRATCH.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("presence-graph-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Scratch(dir)
    }

    /// Writes `contents` to the file `name` in the folder.
    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        let mut f = std::fs::File::create(&path).expect("temp file");
        f.write_all(contents.as_bytes()).expect("write");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A simulator and the settings that point the transport at it.
async fn simulator(tls: bool, users: usize) -> (GraphSimServer, GraphSettings, Scratch) {
    let files = Scratch::new();
    let mut config = ServerConfig {
        sim: SimConfig::default().with_generated_users(users),
        ..ServerConfig::default()
    };
    let mut ca = None;
    if tls {
        let (with_tls, pki) = config.with_self_signed_tls().expect("a test PKI");
        config = with_tls;
        ca = Some(files.file("ca.pem", &pki.ca_pem));
    }
    let server = GraphSimServer::start(config).await.expect("the simulator");
    let secret = if tls {
        // Over HTTPS the secret comes from a file, as in production.
        SecretSource::File(files.file("secret", SimConfig::DEFAULT_CLIENT_SECRET))
    } else {
        SecretSource::Inline(Secret::new(SimConfig::DEFAULT_CLIENT_SECRET))
    };
    let mut settings = GraphSettings::new(server.tenant(), SimConfig::DEFAULT_CLIENT_ID, secret);
    settings.authority = server.authority();
    settings.graph_url = server.graph_url();
    settings.ca = ca;
    settings.poll_interval = Duration::from_secs(1);
    settings.reconnect_initial = Duration::from_millis(200);
    settings.reconnect_max = Duration::from_secs(1);
    assert!(
        settings
            .findings()
            .iter()
            .all(|f| f.severity != presence_graph::Severity::Error),
        "{:?}",
        settings.findings()
    );
    (server, settings, files)
}

fn sim_availability(a: Availability) -> (SimAvailability, &'static str) {
    use presence_model::AvailabilityClass as C;
    match a.class() {
        C::None | C::Online => (SimAvailability::Available, "Available"),
        C::IdleOnline => (SimAvailability::AvailableIdle, "AvailableIdle"),
        C::Busy => (SimAvailability::Busy, "Busy"),
        C::IdleBusy => (SimAvailability::BusyIdle, "BusyIdle"),
        C::DoNotDisturb => (SimAvailability::DoNotDisturb, "DoNotDisturb"),
        C::BeRightBack => (SimAvailability::BeRightBack, "BeRightBack"),
        C::Away => (SimAvailability::Away, "Away"),
        C::Offline => (SimAvailability::Offline, "Offline"),
    }
}

fn shown_class(availability: &str) -> Shown {
    match mapping::pull(availability) {
        Some(n) => Shown::Class(Availability::from_wire(u64::from(n)).class()),
        None => Shown::Nothing,
    }
}

// --- the conformance suite -------------------------------------------------------------

struct Sim {
    server: Arc<GraphSimServer>,
    transport: Arc<GraphTransport>,
    events: tokio::sync::Mutex<EventReceiver>,
    mapping: Mapping,
    _task: tokio::task::JoinHandle<()>,
}

impl Sim {
    async fn start(tls: bool) -> Sim {
        let (server, settings, _files) = simulator(tls, 400).await;
        let (tx, rx) = event_channel();
        let (transport, task) =
            GraphTransport::start(&settings, Platform::teams(), tx).expect("the transport starts");
        Sim {
            server: Arc::new(server),
            transport: Arc::new(transport),
            events: tokio::sync::Mutex::new(rx),
            mapping: settings.mapping().expect("mapping"),
            _task: task,
        }
    }

    fn upn(n: usize) -> String {
        format!("agent{}@contoso.com", n + 1)
    }
}

#[async_trait::async_trait]
impl Harness for Sim {
    fn transport(&self) -> Arc<dyn PresenceTransport> {
        self.transport.clone()
    }

    fn platform(&self) -> Platform {
        Platform::teams()
    }

    fn user(&self, n: usize) -> UserId {
        UserId::new(
            Platform::teams(),
            UserAddress::Upn(Sim::upn(n).parse().expect("a UPN")),
        )
    }

    async fn next_event(&self, wait: Duration) -> Option<TransportEvent> {
        let mut events = self.events.lock().await;
        if wait.is_zero() {
            return events.try_recv();
        }
        tokio::time::timeout(wait, events.recv())
            .await
            .ok()
            .flatten()
    }

    async fn shows(&self, user: &UserId) -> Shown {
        let Some(shown) = self.server.shows(&user.address().to_string()) else {
            return Shown::Nothing;
        };
        let ours = shown
            .sessions
            .iter()
            .any(|s| s.source == SimConfig::DEFAULT_CLIENT_ID)
            || shown.preferred.is_some();
        if ours {
            shown_class(shown.availability.as_str())
        } else {
            Shown::Nothing
        }
    }

    fn expected(&self, publication: &Publication) -> Shown {
        match self.mapping.push(publication) {
            Target::Session(pair) | Target::Preferred(pair) => shown_class(pair.availability),
            Target::Clear | Target::Nothing => Shown::Nothing,
        }
    }

    async fn set_user_presence(&self, user: &UserId, availability: Availability) {
        let (a, activity) = sim_availability(availability);
        self.server
            .set_client_presence(&user.address().to_string(), a, activity)
            .expect("a known user");
    }

    /// Teams has no connection to drop: the transport is "connected" while it holds a
    /// token. A revoked token alone is renewed silently, so the peer also refuses the
    /// credential for a moment (as after a secret rotation), which the transport must
    /// report as a loss and recover from on its own.
    async fn drop_connection(&self) {
        self.server
            .set_client_secret(SimConfig::DEFAULT_CLIENT_ID, "rotated")
            .expect("the app exists");
        self.server.revoke_tokens();
        let server = Arc::clone(&self.server);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = server.set_client_secret(
                SimConfig::DEFAULT_CLIENT_ID,
                SimConfig::DEFAULT_CLIENT_SECRET,
            );
        });
    }

    fn report_within(&self) -> Duration {
        // Three poll intervals of 1 s.
        Duration::from_secs(3)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

mod http {
    presence_transport::conformance_suite!(async { super::Sim::start(false).await });
}

mod https {
    presence_transport::conformance_suite!(async { super::Sim::start(true).await });
}

// --- bursts under the real budget --------------------------------------------------------

fn publication(availability: u32) -> Publication {
    Publication {
        id: AggregatedStateId::new(&format!("S{availability}")).expect("an id"),
        presence: Presence {
            availability: Availability::new(availability).expect("valid"),
            activities: Activities::empty(),
        },
    }
}

/// A model of the engine: latest wins per user, most recent change first, publishes only
/// with credit, one publication outstanding per user, retries failures.
struct Engine {
    transport: Arc<GraphTransport>,
    events: EventReceiver,
    credit: u64,
    latest: HashMap<UserId, u32>,
    confirmed: HashMap<UserId, u32>,
    /// Users whose latest is not confirmed, most recent change last.
    queue: Vec<UserId>,
    outstanding: HashMap<UserId, u32>,
    /// What was handed over, per user, in order.
    handed: HashMap<UserId, Vec<u32>>,
    /// States superseded while waiting in the queue (never to be sent).
    superseded: HashMap<UserId, Vec<u32>>,
    done: tokio::sync::mpsc::UnboundedReceiver<(UserId, u32, Result<(), TransportError>)>,
    done_tx: tokio::sync::mpsc::UnboundedSender<(UserId, u32, Result<(), TransportError>)>,
    failures: usize,
}

impl Engine {
    fn new(transport: Arc<GraphTransport>, events: EventReceiver) -> Engine {
        let (done_tx, done) = tokio::sync::mpsc::unbounded_channel();
        Engine {
            transport,
            events,
            credit: 0,
            latest: HashMap::new(),
            confirmed: HashMap::new(),
            queue: Vec::new(),
            outstanding: HashMap::new(),
            handed: HashMap::new(),
            superseded: HashMap::new(),
            done,
            done_tx,
            failures: 0,
        }
    }

    fn set(&mut self, user: &UserId, availability: u32) {
        if let Some(old) = self.latest.insert(user.clone(), availability)
            && self.confirmed.get(user) != Some(&old)
            && !self.outstanding.contains_key(user)
        {
            self.superseded.entry(user.clone()).or_default().push(old);
        }
        self.queue.retain(|u| u != user);
        self.queue.push(user.clone());
    }

    async fn connected(&mut self) {
        loop {
            match self.events.recv().await {
                Some(TransportEvent::Connected { credit, .. }) => {
                    self.credit = u64::from(credit);
                    return;
                }
                Some(_) => {}
                None => panic!("the transport stopped"),
            }
        }
    }

    fn event(&mut self, event: TransportEvent) {
        match event {
            TransportEvent::Connected { credit, .. } => {
                self.credit = u64::from(credit);
                // Resync: publish every user again.
                self.confirmed.clear();
                for user in self.latest.keys() {
                    if !self.queue.contains(user) {
                        self.queue.push(user.clone());
                    }
                }
            }
            TransportEvent::Disconnected { .. } => self.credit = 0,
            TransportEvent::Credit { credit, .. } => self.credit += u64::from(credit),
            _ => {}
        }
    }

    fn hand_over(&mut self) {
        // Most recent change first.
        let mut i = self.queue.len();
        while self.credit > 0 && i > 0 {
            i -= 1;
            let user = self.queue[i].clone();
            if self.outstanding.contains_key(&user) {
                continue;
            }
            self.queue.remove(i);
            let availability = self.latest[&user];
            if self.confirmed.get(&user) == Some(&availability) {
                continue;
            }
            self.credit -= 1;
            self.outstanding.insert(user.clone(), availability);
            self.handed
                .entry(user.clone())
                .or_default()
                .push(availability);
            let transport = Arc::clone(&self.transport);
            let tx = self.done_tx.clone();
            tokio::spawn(async move {
                let result = transport.publish(&user, &publication(availability)).await;
                let _ = tx.send((user, availability, result));
            });
        }
    }

    fn settled(&mut self, user: UserId, availability: u32, result: Result<(), TransportError>) {
        self.outstanding.remove(&user);
        match result {
            Ok(()) => {
                self.confirmed.insert(user.clone(), availability);
            }
            Err(e) => {
                self.failures += 1;
                eprintln!("publication for {user} failed: {e}");
            }
        }
        if self.latest.get(&user) != self.confirmed.get(&user) && !self.queue.contains(&user) {
            self.queue.push(user);
        }
    }

    fn converged(&self) -> bool {
        self.outstanding.is_empty()
            && self.queue.is_empty()
            && self
                .latest
                .iter()
                .all(|(u, a)| self.confirmed.get(u) == Some(a))
    }

    /// Runs until every user's latest state is confirmed, or `limit` passes.
    async fn run(&mut self, limit: Duration, mut during: impl FnMut(&mut Engine, Duration)) {
        let start = Instant::now();
        while !self.converged() {
            assert!(start.elapsed() < limit, "no convergence within {limit:?}");
            during(self, start.elapsed());
            self.hand_over();
            tokio::select! {
                Some(event) = self.events.recv() => self.event(event),
                Some((user, availability, result)) = self.done.recv() => {
                    self.settled(user, availability, result);
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

/// `agents` change state at once (Busy), a tenth of them again shortly after (Available);
/// returns how long they took to converge.
async fn burst(tls: bool, agents: usize) {
    let (server, mut settings, _files) = simulator(tls, agents).await;
    settings.status_message = false;
    let (tx, rx) = event_channel();
    let (transport, _task) =
        GraphTransport::start(&settings, Platform::teams(), tx).expect("the transport starts");
    let transport = Arc::new(transport);
    let users: Vec<UserId> = (1..=agents)
        .map(|i| {
            let id = server
                .user_id(&format!("agent{i}@contoso.com"))
                .expect("a user");
            UserId::new(
                Platform::teams(),
                UserAddress::EntraId(EntraId::new(&id).expect("a GUID")),
            )
        })
        .collect();
    let mut engine = Engine::new(Arc::clone(&transport), rx);
    engine.connected().await;
    let start = Instant::now();
    for user in &users {
        engine.set(user, 6500);
    }
    let mut second_done = false;
    let twice: Vec<UserId> = users.iter().step_by(10).cloned().collect();
    engine
        .run(Duration::from_secs(600), |engine, elapsed| {
            if !second_done && elapsed >= Duration::from_millis(500) {
                second_done = true;
                for user in &twice {
                    engine.set(user, 3500);
                }
            }
        })
        .await;
    let took = start.elapsed();
    let stats = server.stats();
    let refused: u64 = stats.refused_budget.values().sum();
    let floor = agents as f64 / (f64::from(settings.budget) / 30.0);
    let writes = server.writes();
    eprintln!(
        "{} agents over {}: converged in {:.1} s (floor {:.1} s at budget {}/30 s), {} writes, {} refused for budget, {} failed publications",
        agents,
        if tls { "HTTPS" } else { "HTTP" },
        took.as_secs_f64(),
        floor,
        settings.budget,
        writes.len(),
        refused,
        engine.failures,
    );
    assert_eq!(refused, 0, "the simulator refused requests for budget");
    // Every user shows its latest state.
    for user in &users {
        let expected = if twice.contains(user) {
            SimAvailability::Available
        } else {
            SimAvailability::Busy
        };
        let shown = server.shows(&user.address().to_string()).expect("a user");
        assert_eq!(shown.availability, expected, "{user}");
    }
    // The simulator saw exactly the states handed over, in order, and none of them had been
    // superseded in the engine's queue before: the transport sent nothing stale of its own.
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for w in writes
        .iter()
        .filter(|w| w.kind == WriteKind::SetPresence && w.status == 200)
    {
        seen.entry(w.user_id.clone()).or_default().push(format!(
            "{}/{}",
            w.availability.clone().unwrap_or_default(),
            w.activity.clone().unwrap_or_default()
        ));
    }
    let mapping = settings.mapping().expect("mapping");
    for user in &users {
        let handed: Vec<String> = engine.handed[user]
            .iter()
            .map(|a| match mapping.push(&publication(*a)) {
                Target::Session(p) | Target::Preferred(p) => p.to_string(),
                other => other.to_string(),
            })
            .collect();
        let got = seen
            .get(&user.address().to_string())
            .cloned()
            .unwrap_or_default();
        assert_eq!(got, handed, "{user}");
        for stale in engine.superseded.get(user).into_iter().flatten() {
            assert!(
                !engine.handed[user].contains(stale) || engine.latest[user] == *stale,
                "{user}: superseded state {stale} was handed over"
            );
        }
    }
    let handed_total: usize = engine.handed.values().map(Vec::len).sum();
    eprintln!(
        "  {handed_total} publications handed over for {} state changes ({} superseded in the queue and never sent)",
        agents + twice.len(),
        engine.superseded.values().map(Vec::len).sum::<usize>()
    );
    transport.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_300_over_http_converges_without_throttling() {
    burst(false, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_5000_over_https_converges_without_throttling() {
    burst(true, 5000).await;
}

// --- a credential revoked mid-run --------------------------------------------------------

async fn wait_for(
    rx: &mut EventReceiver,
    what: &str,
    want: fn(&TransportEvent) -> bool,
) -> TransportEvent {
    let next = async {
        loop {
            match rx.recv().await {
                Some(e) if want(&e) => return e,
                Some(_) => {}
                None => panic!("the transport stopped"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), next)
        .await
        .unwrap_or_else(|_| panic!("{what} did not arrive"))
}

/// A transport connected to `server` with one subscribed user, then refused: Entra's
/// secret becomes `rotated` and every token is revoked, so its next poll's 401 leads to a
/// refused token request. Returns once it reported `Disconnected`.
async fn refused_after_a_rotation(
    server: &GraphSimServer,
    settings: &GraphSettings,
    rotated: &str,
) -> (GraphTransport, EventReceiver) {
    let (tx, mut rx) = event_channel();
    let (transport, _task) =
        GraphTransport::start(settings, Platform::teams(), tx).expect("the transport starts");
    wait_for(&mut rx, "Connected", |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    let user = UserId::new(
        Platform::teams(),
        UserAddress::Upn("agent1@contoso.com".parse().expect("a UPN")),
    );
    transport
        .subscribe(std::slice::from_ref(&user))
        .await
        .expect("subscribe");
    server
        .set_client_secret(SimConfig::DEFAULT_CLIENT_ID, rotated)
        .expect("the app");
    server.revoke_tokens();
    wait_for(&mut rx, "Disconnected", |e| {
        matches!(e, TransportEvent::Disconnected { .. })
    })
    .await;
    (transport, rx)
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_revoked_secret_is_reported_once_and_recovers() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (server, settings, _files) = simulator(false, 3).await;
    // The secret is rotated away and the tokens revoked: the next poll gets a 401, the
    // token request is refused.
    let (transport, mut rx) =
        refused_after_a_rotation(&server, &settings, "a-rotated-secret").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = transport.status().remove(0);
    assert!(!status.connected, "{status:?}");
    let detail = status.detail.clone().unwrap_or_default();
    assert!(detail.contains("invalid_client"), "{status:?}");
    assert!(!detail.contains(SimConfig::DEFAULT_CLIENT_SECRET));
    let refused_attempts = server.stats().tokens_refused;
    let text = logs.text();
    let reported = text.matches("refused the app's credential").count();
    eprintln!("refused token requests in 4 s: {refused_attempts}; error lines: {reported}");
    assert_eq!(reported, 1, "{text}");
    assert!((2..=10).contains(&refused_attempts), "{refused_attempts}");
    assert!(!text.contains(SimConfig::DEFAULT_CLIENT_SECRET) && !text.contains("a-rotated-secret"));

    // The secret is valid again: the transport recovers on its own.
    server
        .set_client_secret(
            SimConfig::DEFAULT_CLIENT_ID,
            SimConfig::DEFAULT_CLIENT_SECRET,
        )
        .expect("the app");
    wait_for(&mut rx, "Connected again", |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    wait_for(&mut rx, "Subscribed again", |e| {
        matches!(e, TransportEvent::Subscribed { .. })
    })
    .await;
    assert!(transport.status()[0].connected);
    let text = logs.text();
    assert_eq!(
        text.matches("accepts the app's credential again").count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches("refused the app's credential").count(),
        1,
        "{text}"
    );
    transport.shutdown(Duration::from_secs(1)).await;
}

/// A secret rotated in Entra and then in its file is taken without a restart: the refusal
/// makes the transport read the file again, and the new secret is used at once (not after
/// the token back-off, here made long to show it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotated_in_its_file_is_taken_without_a_restart() {
    let (server, mut settings, files) = simulator(false, 3).await;
    let file = files.file("rotated-secret", SimConfig::DEFAULT_CLIENT_SECRET);
    settings.client_secret = None;
    settings.client_secret_file = Some(file.clone());
    settings.reconnect_initial = Duration::from_secs(60);
    settings.reconnect_max = Duration::from_secs(60);
    // Entra's secret changes and the old tokens die: the transport is refused.
    let (transport, mut rx) = refused_after_a_rotation(&server, &settings, "the-next-secret").await;
    // The operator puts the new secret in the file: it is taken while the transport waits
    // out its 60 s token back-off (`wait_for` gives up after 15 s, so a transport that only
    // tried again after the back-off fails here).
    // (After the refusal was answered, so it is the periodic re-read that finds it.)
    while server.stats().tokens_refused == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&file, "the-next-secret").expect("rewrite the secret file");
    wait_for(&mut rx, "Connected again", |e| {
        matches!(e, TransportEvent::Connected { .. })
    })
    .await;
    assert!(transport.status()[0].connected);
    transport.shutdown(Duration::from_secs(1)).await;
}

// --- start-up errors and the probe ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_bad_settings_and_missing_files_naming_the_key() {
    let (_server, mut settings, files) = simulator(false, 1).await;
    settings.budget = 0;
    let (tx, _rx) = event_channel();
    let err = GraphTransport::start(&settings, Platform::teams(), tx.clone()).unwrap_err();
    assert!(err.to_string().contains("teams.budget"), "{err}");
    settings.budget = 1350;
    settings.client_secret = None;
    settings.client_secret_file = Some("/nonexistent/teams.secret".into());
    let err = GraphTransport::start(&settings, Platform::teams(), tx.clone()).unwrap_err();
    assert!(
        err.to_string().contains("teams.client-secret-file"),
        "{err}"
    );
    settings.client_secret_file = Some(files.file("secret", SimConfig::DEFAULT_CLIENT_SECRET));
    settings.ca = Some("/nonexistent/ca.pem".into());
    let err = GraphTransport::start(&settings, Platform::teams(), tx).unwrap_err();
    assert!(err.to_string().contains("teams.ca"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_gets_a_token_and_resolves_upns_without_writing() {
    let (server, mut settings, files) = simulator(true, 2).await;
    let upns: Vec<Upn> = ["agent1@contoso.com", "nobody@contoso.com"]
        .iter()
        .map(|u| u.parse().expect("a UPN"))
        .collect();
    let found = probe(&settings, &upns).await.expect("the probe");
    assert_eq!(
        found[0].1.as_ref().map(|id| id.to_string()).ok(),
        server.user_id("agent1@contoso.com")
    );
    assert!(
        found[1].1.as_ref().is_err_and(|e| e.contains("not found")),
        "{found:?}"
    );
    assert!(server.writes().is_empty());
    settings.client_secret_file = Some(files.file("wrong-secret", "wrong"));
    let err = probe(&settings, &upns).await.unwrap_err().to_string();
    assert!(
        err.contains("invalid_client") && !err.contains("wrong"),
        "{err}"
    );
}

/// A Graph (or Entra) endpoint whose certificate is a self-signed CA (CA:TRUE), as a
/// TLS-inspecting proxy may present: trusted through `ca` and refused all the same. The
/// status says why in plain words and what to change, not just `CaUsedAsEndEntity`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_ca_certificate_is_explained() {
    let tls = presence_testpki::ServerTls::self_signed(&["localhost", "127.0.0.1"], true)
        .expect("a self-signed CA certificate");
    let server = GraphSimServer::start(ServerConfig {
        sim: SimConfig::default().with_generated_users(1),
        tls: Some(tls.server_config().expect("a server configuration")),
        ..ServerConfig::default()
    })
    .await
    .expect("the simulator");
    let mut settings = GraphSettings::new(
        server.tenant(),
        SimConfig::DEFAULT_CLIENT_ID,
        SecretSource::Inline(Secret::new(SimConfig::DEFAULT_CLIENT_SECRET)),
    );
    settings.authority = server.authority();
    settings.graph_url = server.graph_url();
    let files = Scratch::new();
    settings.ca = Some(files.file("self-signed-ca.pem", &tls.cert_chain_pem));
    let (tx, _rx) = event_channel();
    let (transport, _task) =
        GraphTransport::start(&settings, Platform::teams(), tx).expect("the transport starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    let detail = loop {
        let status = transport.status().remove(0);
        assert!(!status.connected, "{status:?}");
        if let Some(detail) = status
            .detail
            .as_ref()
            .filter(|d| d.contains("CaUsedAsEndEntity"))
        {
            break detail.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no TLS refusal reported: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for needle in [
        "presented a CA certificate as its own (self-signed with CA:TRUE",
        "leaf certificate (CA:FALSE, for server authentication) signed by that CA",
        "`[teams] ca`",
    ] {
        assert!(detail.contains(needle), "{needle}: {detail}");
    }
    transport.shutdown(Duration::from_millis(100)).await;
}
