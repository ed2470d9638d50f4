//! `[ha]`: two real bridges as a hot-standby pair against one SfB simulator, elected in a
//! real etcd on loopback (presence-testetcd; a test whose etcd cannot start fails with the
//! reason). Lease TTL 2 s, request timeout 300 ms: a leader fences itself 1.6 s after the
//! start of its last good renewal. For figures, `PRESENCE_E2E_HA_AGENTS` (default 40) and
//! `PRESENCE_E2E_HA_TTL` (seconds, default 2) change the burst's size and the TTL.
//!
//! What the simulator received is judged from its own log of which connection sent what
//! (`SimEvent::Request`: SfB publications are `SERVICE` requests). The standby never
//! connects, so every connection opened before a failover is the old leader's.
//!
//! Timings are printed (`cargo nextest run --no-capture`), never asserted.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use presence_model::SipUri;
use presence_sfb_sim::{ConnId, SimEvent, SimServer};
use presence_testetcd::{EtcdCluster, Options};
use presence_tlib::{ClientMessage, ClientRequest, ServerEvent};
use tokio::time::{Instant, sleep};

use crate::daemon::sim;
use crate::harness::{Client, Daemon, dn, dnd, login};

/// Extra push DNs of the burst, `7001..`: 40, or `PRESENCE_E2E_HA_AGENTS` (for figures).
fn agents() -> usize {
    std::env::var("PRESENCE_E2E_HA_AGENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40)
}

/// The lease TTL in seconds: 2, or `PRESENCE_E2E_HA_TTL` (for figures; the request timeout
/// is 300 ms with 2 s, else 1 s).
fn ttl() -> u64 {
    std::env::var("PRESENCE_E2E_HA_TTL")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2)
}
/// How long a test waits for what must happen before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

fn config(pool: &str, endpoints: &[String], node: &str) -> String {
    // The burst goes as fast as the clients can send: no rate limit on the link.
    let mut text = crate::daemon::config(pool).replace(
        "max-message-bytes = 4096\n",
        "max-message-bytes = 4096\nrate-per-second = 1000000\nburst = 1000000\n",
    );
    assert!(
        text.contains("rate-per-second"),
        "the [cti] table of daemon::config"
    );
    for i in 1..=agents() {
        text.push_str(&format!(
            "\n[dn.\"{}\"]\ntype = \"Extension\"\nuri = \"sip:burst{i}@contoso.com\"\nannex.TServer = {{ presence-profile = \"Push\" }}\n",
            7000 + i
        ));
    }
    let endpoints: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    text.push_str(&format!(
        r#"
[ha]
endpoints = [{}]
node-id = "{node}"
election = "presence-bridge/e2e-{}"
lease-ttl = "{ttl}s"
request-timeout = "{timeout}"
retry-initial = "100ms"
retry-max = "1s"
"#,
        endpoints.join(", "),
        std::process::id(),
        ttl = ttl(),
        timeout = if ttl() == 2 { "300ms" } else { "1s" },
    ));
    text
}

fn burst_dn(i: usize) -> String {
    (7000 + i).to_string()
}

fn burst_user(i: usize) -> SipUri {
    SipUri::new(&format!("sip:burst{i}@contoso.com")).unwrap()
}

/// Runs blocking harness work (starting or killing etcd) off the runtime's threads.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(work)
}

fn etcd(members: usize) -> EtcdCluster {
    blocking(|| EtcdCluster::start(Options::default().members(members)))
        .unwrap_or_else(|e| panic!("etcd must start for this test: {e}"))
}

/// What the simulator saw: connections opened and `SERVICE` requests, by connection.
#[derive(Default)]
struct Seen {
    connected: Vec<(Instant, ConnId)>,
    services: Vec<(Instant, ConnId)>,
    lagged: bool,
}

fn record(sim: &SimServer) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut events = sim.events();
    let kept = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(SimEvent::Connected { conn }) => {
                    kept.lock().unwrap().connected.push((Instant::now(), conn));
                }
                Ok(SimEvent::Request { conn, method, .. }) if method == "SERVICE" => {
                    kept.lock().unwrap().services.push((Instant::now(), conn));
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    kept.lock().unwrap().lagged = true;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    seen
}

fn ha(daemon: &Daemon) -> serde_json::Value {
    let (status, body) = daemon.http("GET", "/v1/ha");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if check() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until exactly one of `daemons` leads and returns its index.
async fn one_leader(daemons: &[&Daemon]) -> usize {
    let mut leader = None;
    wait_for("one leader", || {
        let leaders: Vec<usize> = (0..daemons.len())
            .filter(|&i| ha(daemons[i])["role"] == "leader")
            .collect();
        leader = leaders.first().copied().filter(|_| leaders.len() == 1);
        leader.is_some()
    })
    .await;
    leader.unwrap()
}

/// The availability SfB shows for a burst agent after round `round` (even: Ready, odd:
/// NotReady, both idle).
fn round_availability(round: usize) -> u32 {
    if round.is_multiple_of(2) { 3501 } else { 6001 }
}

fn round_request(round: usize, d: &str) -> ClientRequest {
    if round.is_multiple_of(2) {
        ClientRequest::RequestAgentReady { this_dn: dn(d) }
    } else {
        ClientRequest::RequestAgentNotReady {
            this_dn: dn(d),
            workmode: None,
        }
    }
}

async fn converged(sim: &SimServer, want: u32) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let wrong: Vec<String> = (1..=agents())
            .filter_map(|i| {
                let shown = sim.shows(&burst_user(i)).map(|s| s.availability);
                (shown != Some(want)).then(|| format!("burst{i}: {shown:?}"))
            })
            .collect();
        if wrong.is_empty() {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "SfB does not show {want} within {PATIENCE:?}: {}",
            wrong.join(", ")
        );
        sleep(Duration::from_millis(20)).await;
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The first `SERVICE` on a connection not in `old`, and every `SERVICE` on an old one
/// at or after it.
fn first_new_and_late_old(seen: &Seen, old: &BTreeSet<ConnId>) -> (Option<Instant>, usize) {
    let first_new = seen
        .services
        .iter()
        .find(|(_, conn)| !old.contains(conn))
        .map(|(at, _)| *at);
    let late_old = first_new.map_or(0, |first| {
        seen.services
            .iter()
            .filter(|(at, conn)| old.contains(conn) && *at >= first)
            .count()
    });
    (first_new, late_old)
}

/// Two bridges on a 3-member etcd and one simulator, both with every burst agent logged
/// in through a client of each (clients connect to every node of the pair).
struct Pair {
    etcd: EtcdCluster,
    sim: SimServer,
    seen: Arc<Mutex<Seen>>,
    daemons: [Daemon; 2],
    clients: Vec<Client>,
    leader: usize,
}

impl Pair {
    async fn start(name: &str) -> Pair {
        let etcd = etcd(3);
        let sim = sim().await;
        let seen = record(&sim);
        let pool = sim.local_addr().to_string();
        let daemons = ["a", "b"].map(|node| {
            Daemon::start(
                &format!("{name}-{node}"),
                &config(&pool, &etcd.client_urls(), &format!("bridge-{node}")),
            )
        });
        let leader = one_leader(&[&daemons[0], &daemons[1]]).await;
        let mut clients = vec![
            Client::connect(&daemons[0]).await,
            Client::connect(&daemons[1]).await,
        ];
        for i in 1..=agents() {
            to_all(&mut clients, &login(&burst_dn(i))).await;
        }
        Pair {
            etcd,
            sim,
            seen,
            daemons,
            clients,
            leader,
        }
    }
}

/// Every connection the simulator saw opened so far.
fn connections(seen: &Mutex<Seen>) -> BTreeSet<ConnId> {
    seen.lock()
        .unwrap()
        .connected
        .iter()
        .map(|(_, c)| *c)
        .collect()
}

/// Sends `request` to every client's node, each waiting for its answer, which must not be
/// an error.
async fn to_all(clients: &mut [Client], request: &ClientRequest) {
    for client in clients {
        let answer = client.request(request.clone()).await;
        assert!(
            !matches!(answer, ServerEvent::EventError { .. }),
            "{request:?}: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_a_killed_leader_mid_burst_and_sfb_ends_on_every_latest_state() {
    let mut pair = Pair::start("ha-kill").await;
    let (leader, standby) = (pair.leader, 1 - pair.leader);
    let daemons = [&pair.daemons[0], &pair.daemons[1]];
    let leader_id = ha(daemons[leader])["node_id"].clone();
    wait_for("the standby names the leader", || {
        let view = ha(daemons[standby]);
        view["role"] == "standby" && view["leader"] == leader_id
    })
    .await;
    // Readiness: both are ready (a healthy standby can take over), only one is the leader.
    let ready = |d: &Daemon, path: &str| -> (u16, serde_json::Value) {
        let (status, body) = d.http("GET", path);
        (status, serde_json::from_str(&body).unwrap())
    };
    let (status, body) = ready(daemons[leader], "/readyz");
    assert_eq!((status, &body["role"]), (200, &"leader".into()), "{body}");
    let (status, body) = ready(daemons[standby], "/readyz");
    assert_eq!((status, &body["role"]), (200, &"standby".into()), "{body}");
    assert_eq!(ready(daemons[leader], "/readyz?role=leader").0, 200);
    assert_eq!(ready(daemons[standby], "/readyz?role=leader").0, 503);
    let (_, metrics) = daemons[leader].http("GET", "/metrics");
    for line in [
        "presence_ha_leader 1",
        "presence_ha_transitions_total 1",
        "presence_ha_lease_renew_latency_seconds",
        "presence_ha_seconds_since_renewal",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    let (_, metrics) = daemons[standby].http("GET", "/metrics");
    assert!(metrics.contains("presence_ha_leader 0"), "{metrics}");
    assert!(
        metrics.contains("presence_ha_fencing_revision 0"),
        "{metrics}"
    );
    let clients = &mut pair.clients;
    const ROUNDS: usize = 6;
    let mut killed_at = None;
    let mut old = BTreeSet::new();
    for round in 0..ROUNDS {
        if round == ROUNDS / 2 {
            // Mid-burst: the leader dies with publications in flight.
            daemons[leader].signal("KILL");
            killed_at = Some(Instant::now());
            old = connections(&pair.seen);
            clients.remove(leader);
        }
        for i in 1..=agents() {
            to_all(clients, &round_request(round, &burst_dn(i))).await;
        }
    }
    let killed_at = killed_at.unwrap();
    // The rest of the burst went to the survivor meanwhile (its answers come whether or
    // not it leads yet).
    let burst_sent = Instant::now();
    assert!(!old.is_empty(), "the leader was connected before the kill");
    let done = converged(&pair.sim, round_availability(ROUNDS - 1)).await;
    let view = ha(daemons[standby]);
    assert_eq!(view["role"], "leader", "{view}");
    assert!(view["fencing_revision"].as_u64().is_some(), "{view}");
    let seen = pair.seen.lock().unwrap();
    assert!(
        !seen.lagged,
        "the simulator's event log was read completely"
    );
    let (first_new, _) = first_new_and_late_old(&seen, &old);
    let first_new = first_new.expect("the new leader published");
    println!(
        "failover after SIGKILL (lease TTL {} s, {} burst agents): first publication of the new leader {} after the kill; the rest of the burst sent {} after the kill; SfB converged {} after the kill",
        ttl(),
        agents(),
        ms(first_new - killed_at),
        ms(burst_sent - killed_at),
        ms(done - killed_at)
    );
    assert!(
        !daemons[standby]
            .logged("this node is now the leader")
            .is_empty(),
        "the transition is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_resumed_after_a_takeover_never_publishes_again() {
    let mut pair = Pair::start("ha-freeze").await;
    let (leader, standby) = (pair.leader, 1 - pair.leader);
    let daemons = [&pair.daemons[0], &pair.daemons[1]];
    let old_fencing = ha(daemons[leader])["fencing_revision"].as_u64().unwrap();
    let (sim, clients) = (&pair.sim, &mut pair.clients);
    converged(sim, round_availability(1)).await;

    daemons[leader].signal("STOP");
    let frozen_at = Instant::now();
    let old = connections(&pair.seen);
    // While it is frozen, agents go Ready: the frozen node's messages wait in its socket
    // and reach its engine when it resumes, long after its lease expired.
    let mut reference = 50_000;
    for i in 1..=agents() {
        reference += 1;
        let request = round_request(0, &burst_dn(i));
        clients[leader]
            .send_raw(&ClientMessage::new(reference, request.clone()).to_json())
            .await;
        clients[standby].request(request).await;
    }
    wait_for("the standby takes over", || {
        ha(daemons[standby])["role"] == "leader"
    })
    .await;
    converged(sim, round_availability(0)).await;
    let new_fencing = ha(daemons[standby])["fencing_revision"].as_u64().unwrap();
    assert!(new_fencing > old_fencing, "{new_fencing} > {old_fencing}");

    daemons[leader].signal("CONT");
    let resumed_at = Instant::now();
    // After it resumes, agents go NotReady, told to both nodes.
    for i in 1..=agents() {
        to_all(clients, &round_request(1, &burst_dn(i))).await;
    }
    let done = converged(sim, round_availability(1)).await;
    wait_for("the old leader knows it is standby", || {
        ha(daemons[leader])["role"] == "standby"
    })
    .await;
    // Give the resumed node time to do whatever it would do.
    sleep(Duration::from_secs(2)).await;
    let seen = pair.seen.lock().unwrap();
    assert!(
        !seen.lagged,
        "the simulator's event log was read completely"
    );
    let (first_new, late_old) = first_new_and_late_old(&seen, &old);
    let first_new = first_new.expect("the new leader published");
    let old_total = seen
        .services
        .iter()
        .filter(|(_, c)| old.contains(c))
        .count();
    println!(
        "fencing (lease TTL {} s): frozen at 0, new leader's first publication at {}, resumed at {}, converged at {}; SERVICE requests from the old leader: {old_total} in all, {late_old} after the new leader's first",
        ttl(),
        ms(first_new - frozen_at),
        ms(resumed_at - frozen_at),
        ms(done - frozen_at)
    );
    assert_eq!(
        late_old, 0,
        "the old leader published after the new leader's first publication"
    );
    let logged = daemons[leader].logged("no longer the leader");
    assert!(
        !logged.is_empty(),
        "the old leader logs that it stopped leading"
    );
    assert!(
        daemons[leader].logged("lease-not-renewed").len()
            + daemons[leader].logged("leadership-lost").len()
            + daemons[leader].logged("lease-lost").len()
            > 0,
        "it says why"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reachable_etcd_a_node_stays_standby_says_why_and_keeps_trying() {
    // An "etcd" that accepts connections and closes them at once, counting them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let sim = sim().await;
    let daemon = Daemon::start(
        "ha-no-etcd",
        &config(
            &sim.local_addr().to_string(),
            std::slice::from_ref(&endpoint),
            "bridge-a",
        ),
    );
    wait_for("/v1/ha says etcd is unreachable", || {
        ha(&daemon)["why_code"] == "etcd-unreachable"
    })
    .await;
    let view = ha(&daemon);
    assert_eq!(view["role"], "standby", "{view}");
    assert!(view["leader"].is_null(), "{view}");
    assert!(view["fencing_revision"].is_null(), "{view}");
    let why = view["why"].as_str().unwrap();
    assert!(why.contains("etcd is unreachable"), "{why}");
    assert!(
        view["etcd_trouble"]
            .as_str()
            .is_some_and(|t| t.contains(&endpoint)),
        "{view}"
    );
    let first = attempts.load(std::sync::atomic::Ordering::SeqCst);
    wait_for("it keeps trying", || {
        attempts.load(std::sync::atomic::Ordering::SeqCst) >= first + 3
    })
    .await;
    let logged = daemon.logged("this node is standby");
    assert!(
        logged.iter().any(|l| l.contains("etcd-unreachable")),
        "{}",
        daemon.log_text()
    );
    let (status, body) = daemon.http("GET", "/readyz");
    assert_eq!(status, 503, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["role"], "standby", "{body}");
    // A standby answers the contact-centre link, and never talks to the platform.
    let mut client = Client::connect(&daemon).await;
    assert!(matches!(
        client.request(login("5001")).await,
        ServerEvent::EventAgentLogin { .. }
    ));
    let (status, body) = daemon.http("GET", "/v1/dns/5001");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"agent_state\":\"NotReady\""), "{body}");
    assert_eq!(sim.connection_count(), 0, "a standby never connects");
    // A reload may change the DNs, never [ha].
    let text = std::fs::read_to_string(daemon.config_path()).unwrap();
    std::fs::write(
        daemon.config_path(),
        text.replace("node-id = \"bridge-a\"", "node-id = \"bridge-z\""),
    )
    .unwrap();
    let (status, body) = daemon.http("POST", "/v1/reload");
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("changes the [ha] table: [ha] cannot change while the bridge runs"),
        "{body}"
    );
    assert_eq!(ha(&daemon)["node_id"], "bridge-a");
    assert_eq!(daemon.stop().code(), Some(0));
}

/// `check` reports `[ha]`'s findings at their keys' lines, `run` refuses its errors, and
/// the password never shows.
#[test]
fn check_reports_ha_findings_at_their_lines_and_run_refuses_errors() {
    let dir = crate::support::Scratch::new("check-ha");
    let config = dir.write(
        "bridge.toml",
        "[sfb]\npool = \"127.0.0.1:5061\"\ntransport = \"tcp\"\napplication-uri = \"sip:presence-bridge@contoso.com\"\n\n\
         [ha]\n\
         endpoints = [\"http://10.0.0.5:2379\"]\n\
         node-id = \"bridge 1\"\n\
         lease-ttl = \"5s\"\n\
         request-timeout = \"2s\"\n\
         \n\
         [ha.auth]\n\
         username = \"bridge\"\n\
         password = \"etcd-s3cret-pw\"\n",
    );
    let path = config.to_str().unwrap();
    let out = crate::support::run(&["check", "--config", path, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let at = |needle: &str| -> u64 {
        json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["message"].as_str().unwrap().starts_with(needle))
            .unwrap_or_else(|| panic!("an error about {needle}: {json:#}"))["line"]
            .as_u64()
            .unwrap()
    };
    // Plain HTTP off loopback with a password, a node id with a space, a request timeout
    // too long for the TTL: each at its own line.
    assert_eq!(at("`ha.endpoints`"), 7);
    assert_eq!(at("`ha.node-id`"), 8);
    assert_eq!(at("`ha.request-timeout`"), 10);
    let text = crate::support::stdout(&crate::support::run(&["check", "--config", path]));
    assert!(
        text.contains("bridge.toml:8:1: error: `ha.node-id`"),
        "{text}"
    );
    let out = crate::support::run(&["run", "--config", path, "--no-admin"]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = crate::support::stderr(&out);
    assert!(stderr.contains("`ha.node-id`"), "{stderr}");
    for output in [text, stderr, json.to_string()] {
        assert!(!output.contains("etcd-s3cret-pw"), "{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_across_a_failover_the_new_leader_sends_the_true_dnd_once() {
    let mut pair = Pair::start("ha-pull").await;
    let (leader, standby) = (pair.leader, 1 - pair.leader);
    let expert = SipUri::new("sip:expert1@contoso.com").unwrap();
    pair.sim.set_user_presence(&expert, 6500, Some("In a call"));
    let daemons = [&pair.daemons[0], &pair.daemons[1]];
    wait_for("the leader knows the expert is DND", || {
        let (_, body) = daemons[leader].http("GET", "/v1/dns/6001");
        body.contains("\"dnd\":\"on\"")
    })
    .await;
    // One client, connected to both nodes, registers on the pull DN on each.
    let watchers = &mut pair.clients;
    let register = ClientRequest::RegisterAddress {
        this_dn: dn("6001"),
    };
    let answers = [
        watchers[0].request(register.clone()).await,
        watchers[1].request(register).await,
    ];
    assert!(
        matches!(
            &answers[leader],
            ServerEvent::EventRegistered {
                dnd: Some(presence_model::DndState::On),
                ha_role: Some("leader"),
                ..
            }
        ),
        "{:?}",
        answers[leader]
    );
    assert!(
        matches!(
            &answers[standby],
            ServerEvent::EventRegistered {
                dnd: None,
                ha_role: Some("standby"),
                ..
            }
        ),
        "{:?}",
        answers[standby]
    );
    // A change reaches the client from the leader only.
    pair.sim.set_user_presence(&expert, 3500, Some("Available"));
    assert_eq!(
        dnd(watchers[leader].collect(Duration::from_secs(1)).await),
        vec![("off", 3500)]
    );
    assert_eq!(
        dnd(watchers[standby].collect(Duration::from_millis(200)).await),
        vec![]
    );
    pair.sim.set_user_presence(&expert, 6500, Some("In a call"));
    assert_eq!(
        dnd(watchers[leader].collect(Duration::from_secs(1)).await),
        vec![("on", 6500)]
    );

    daemons[leader].signal("KILL");
    let killed_at = Instant::now();
    wait_for("the standby takes over", || {
        ha(daemons[standby])["role"] == "leader"
    })
    .await;
    // The new leader subscribes again; the first update tells the true state, once.
    let after = dnd(watchers[standby].collect(Duration::from_secs(3)).await);
    println!(
        "pull across a failover: the new leader's DND events within {} of the kill: {after:?}",
        ms(killed_at.elapsed())
    );
    assert_eq!(after, vec![("on", 6500)]);
    pair.sim.set_user_presence(&expert, 3500, Some("Available"));
    assert_eq!(
        dnd(watchers[standby].collect(Duration::from_secs(1)).await),
        vec![("off", 3500)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_losing_one_member_changes_nothing_and_losing_quorum_stops_every_publication() {
    let mut pair = Pair::start("ha-quorum").await;
    let leader = pair.leader;
    let daemons = [&pair.daemons[0], &pair.daemons[1]];
    let fencing = ha(daemons[leader])["fencing_revision"].as_u64().unwrap();
    let raft_leader = blocking(|| pair.etcd.raft_leader())
        .unwrap()
        .expect("etcd has a raft leader");
    let clients = &mut pair.clients;

    // One member of three down: a quorum remains; nothing changes, nothing is lost.
    blocking(|| pair.etcd.kill((raft_leader + 1) % 3)).unwrap();
    for i in 1..=agents() {
        to_all(clients, &round_request(0, &burst_dn(i))).await;
    }
    converged(&pair.sim, round_availability(0)).await;
    sleep(Duration::from_secs(3)).await;
    let view = ha(daemons[leader]);
    assert_eq!(view["role"], "leader", "{view}");
    assert_eq!(view["fencing_revision"].as_u64(), Some(fencing), "{view}");
    assert_eq!(view["transitions"], 1, "{view}");

    // Two down: no quorum. The leader fences itself on its own deadline and nobody leads.
    blocking(|| pair.etcd.kill((raft_leader + 2) % 3)).unwrap();
    let killed = Instant::now();
    wait_for("the leader fences itself", || {
        ha(daemons[leader])["role"] == "standby"
    })
    .await;
    let view = ha(daemons[leader]);
    let why = view["last_transition"]["why"].as_str().unwrap();
    assert!(
        why.starts_with("fenced: the lease was not renewed"),
        "{view}"
    );
    wait_for("the old leader logs that it stopped its transports", || {
        !daemons[leader]
            .logged("no longer the leader: presence transports stopped")
            .is_empty()
    })
    .await;
    let ago = view["last_transition"]["seconds_ago"].as_f64().unwrap();
    let fenced = Instant::now() - Duration::from_secs_f64(ago);
    for i in 1..=agents() {
        to_all(clients, &round_request(1, &burst_dn(i))).await;
    }
    sleep(Duration::from_secs(4)).await;
    for daemon in daemons {
        assert_eq!(
            ha(daemon)["role"],
            "standby",
            "nobody leads without a quorum"
        );
    }
    let published_after_fence = pair
        .seen
        .lock()
        .unwrap()
        .services
        .iter()
        .filter(|(at, _)| *at > fenced)
        .count();
    assert_eq!(
        published_after_fence, 0,
        "nobody publishes without a quorum"
    );

    // The quorum returns: one leader resumes and SfB converges on the latest states.
    let restarting = Instant::now();
    blocking(|| {
        pair.etcd
            .restart(&[(raft_leader + 1) % 3, (raft_leader + 2) % 3])
    })
    .unwrap();
    let back = Instant::now();
    let second = one_leader(&daemons).await;
    let elected = Instant::now();
    let new_fencing = ha(daemons[second])["fencing_revision"].as_u64().unwrap();
    assert!(new_fencing > fencing, "{new_fencing} > {fencing}");
    let done = converged(&pair.sim, round_availability(1)).await;
    println!(
        "etcd quorum lost: fenced {} after the second member died (TTL {} s); members restarted in {}; one leader {} after, SfB converged {} after",
        ms(fenced.saturating_duration_since(killed)),
        ttl(),
        ms(back - restarting),
        ms(elected - back),
        ms(done - back)
    );
}

/// With `[ha]` the transports start only when a node leads: a leader whose transports
/// cannot start (here an SfB certificate missing on its host) resigns, and the other node
/// takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_transports_cannot_start_resigns_and_the_other_takes_over() {
    let etcd = etcd(1);
    let sim = sim().await;
    let pool = sim.local_addr().to_string();
    let good = config(&pool, &etcd.client_urls(), "bridge-good");
    let broken = config(&pool, &etcd.client_urls(), "bridge-broken")
        .replace("transport = \"tcp\"\n", "transport = \"tls\"\n")
        + "\n[sfb.tls]\ncertificate = \"missing.pem\"\nprivate-key = \"missing.key\"\nca = \"missing-ca.pem\"\n";
    assert!(broken.contains("missing.pem"));
    let a = Daemon::start("ha-broken", &broken);
    wait_for("the broken node resigns", || {
        !a.logged("the presence transports cannot start").is_empty()
    })
    .await;
    wait_for("it says so on /v1/ha", || {
        ha(&a)["why_code"] == "shutting-down"
    })
    .await;
    let b = Daemon::start("ha-good", &good);
    wait_for("the good node leads", || ha(&b)["role"] == "leader").await;
    // Nobody logged in: SfB shows every agent logged out, published by the good node.
    converged(&sim, 18000).await;
    assert_eq!(ha(&a)["role"], "standby");
}

/// Both nodes killed and started again at once: exactly one leads (after the dead leader's
/// lease expired), and its resync publishes every agent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_nodes_restarted_at_once_elect_exactly_one_leader() {
    let etcd = etcd(3);
    let sim = sim().await;
    let pool = sim.local_addr().to_string();
    let configs = ["a", "b"].map(|n| config(&pool, &etcd.client_urls(), &format!("bridge-{n}")));
    let first = [
        Daemon::start("ha-restart-a", &configs[0]),
        Daemon::start("ha-restart-b", &configs[1]),
    ];
    one_leader(&[&first[0], &first[1]]).await;
    for daemon in first {
        daemon.signal("KILL");
    }
    let published = sim.published_count();
    let again = [
        Daemon::start("ha-restart-a2", &configs[0]),
        Daemon::start("ha-restart-b2", &configs[1]),
    ];
    let nodes = [&again[0], &again[1]];
    let leader = one_leader(&nodes).await;
    // For two lease TTLs, never two leaders (polled).
    let end = Instant::now() + Duration::from_secs(2 * ttl());
    while Instant::now() < end {
        let leaders = nodes.iter().filter(|d| ha(d)["role"] == "leader").count();
        assert!(leaders <= 1, "two leaders at once");
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ha(nodes[leader])["role"], "leader");
    // The new leader's resync publishes every push user again.
    wait_for("the new leader publishes every agent", || {
        sim.published_count() >= published + agents() as u64
    })
    .await;
    converged(&sim, 18000).await;
}

/// `demo --ha` shows a failover in one command, and says how to install etcd when it is
/// missing.
#[test]
fn demo_ha_shows_a_failover_and_names_etcd_when_it_is_missing() {
    let out = crate::support::run(&["demo", "--ha", "--step-ms", "50"]);
    let text = crate::support::stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        crate::support::stderr(&out)
    );
    for needle in [
        "bridge-1: leader",
        "bridge-1 crashes",
        "bridge-2: leader",
        "published by bridge-2",
        "agent1 7001, agent2 6001, agent3 3501",
        "demo finished",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
    // Without etcd.
    let out = crate::support::run(&["demo", "--ha", "--etcd", "/nonexistent/etcd"]);
    assert_eq!(out.status.code(), Some(1));
    let err = crate::support::stderr(&out);
    assert!(err.contains("apt-get install etcd-server"), "{err}");
}

/// With etcd's authentication on, the pair elects a leader with `[ha.auth]`, and the
/// password appears in no output: the logs at trace level (every etcd request), `/v1/ha`,
/// `/readyz`, `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_password_never_shows_while_the_pair_runs() {
    const PASSWORD: &str = "etcd-Pa55-d0-not-leak";
    let etcd = etcd(1);
    blocking(|| etcd.enable_auth(PASSWORD)).unwrap();
    let sim = sim().await;
    let pool = sim.local_addr().to_string();
    let with_auth = |node: &str| {
        config(&pool, &etcd.client_urls(), node)
            + &format!("\n[ha.auth]\nusername = \"root\"\npassword = \"{PASSWORD}\"\n")
    };
    let a = Daemon::start_at("ha-auth-a", &with_auth("bridge-a"), "trace");
    let b = Daemon::start_at("ha-auth-b", &with_auth("bridge-b"), "trace");
    one_leader(&[&a, &b]).await;
    converged(&sim, 18000).await;
    for daemon in [&a, &b] {
        for path in ["/v1/ha", "/readyz", "/metrics", "/v1/dns/5001"] {
            let (_, body) = daemon.http("GET", path);
            assert!(!body.contains(PASSWORD), "{path}: {body}");
        }
    }
    // Their logs, read once they stopped (resignation and revocation included).
    for daemon in [&a, &b] {
        daemon.signal("TERM");
    }
    for daemon in [&a, &b] {
        wait_for("the node stops", || {
            !daemon.logged("\"stopped\"").is_empty()
        })
        .await;
        let logs = daemon.log_text();
        assert!(
            logs.contains("/v3/auth/authenticate"),
            "the authentication is in the trace logs"
        );
        assert!(!logs.contains(PASSWORD), "{logs}");
    }
}
