//! Teams load: the real `presence-bridge run` (release build) against the Microsoft Graph
//! simulator on loopback, with the simulator's real budget (1,500 presence requests per
//! 30 s per app), driven over the contact-centre WebSocket.
//!
//! ```sh
//! cargo build --release -p presence-bridge --bins --examples
//! target/release/examples/teams_load restart [AGENTS]   # default 5000
//! target/release/examples/teams_load idle [DNS]         # default 10000 SfB + 10000 Teams
//! ```
//!
//! - `restart`: a bridge restarts while AGENTS Teams agents work (their status messages,
//!   set by the previous run, are still on Teams); the contact centre logs every agent in
//!   and makes it Ready at once. Reports the time until Teams shows every agent's state
//!   (pair, status message, the bridge's session) against the floor AGENTS ÷ (budget /
//!   30 s), the requests Graph refused for budget (the goal is none), then the latency from
//!   a CTI event to the simulator's write with no backlog (p50, p99).
//! - `idle`: DNS SfB DNs and DNS Teams DNs (half push, half pull); the daemon's resident
//!   memory once started, and its CPU time per poll round of the Teams pull users,
//!   normalised to 10,000 users.
//!
//! `cargo xtask bench` runs both. Every run checks convergence: a run that does not
//! converge fails.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use presence_graph_sim::{GraphSimServer, ServerConfig, SimConfig, SimEvent, WriteKind};
use presence_tlib::{ClientMessage, ClientRequest, Extensions, WorkMode};
use tokio_tungstenite::tungstenite::Message;

/// The configured budget: the bridge's default, 90 % of Graph's 1,500 per 30 s.
const BUDGET: f64 = 1350.0;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn upn(i: usize) -> String {
    format!("agent{i}@contoso.com")
}

async fn graph(users: usize) -> Result<GraphSimServer, support::Error> {
    Ok(GraphSimServer::start(ServerConfig {
        sim: SimConfig::default().with_generated_users(users),
        ..ServerConfig::default()
    })
    .await?)
}

fn teams_table(graph: &GraphSimServer) -> String {
    format!(
        "\n[teams]\ntenant = \"{}\"\nclient-id = \"{}\"\nclient-secret = \"{}\"\nauthority = \"{}\"\ngraph-url = \"{}\"\n",
        graph.tenant(),
        SimConfig::DEFAULT_CLIENT_ID,
        SimConfig::DEFAULT_CLIENT_SECRET,
        graph.authority(),
        graph.graph_url()
    )
}

fn request(reference: u64, body: ClientRequest) -> Message {
    Message::text(ClientMessage::new(reference, body).to_json())
}

#[tokio::main]
async fn main() -> Result<(), support::Error> {
    match std::env::args().nth(1).as_deref() {
        Some("idle") => idle(arg(2, 10_000)).await,
        Some("restart") | None => restart(arg(2, 5_000)).await,
        Some(other) => Err(format!("unknown mode `{other}`: restart or idle").into()),
    }
}

async fn restart(agents: usize) -> Result<(), support::Error> {
    let graph = graph(agents).await?;
    // What the previous run of the bridge left on Teams: each agent's status message.
    for i in 1..=agents {
        graph.set_user_status_message(&upn(i), "I am available")?;
    }
    let dir = support::scratch("teams-restart")?;
    let mut config = support::head("teams", None) + &teams_table(&graph);
    for i in 1..=agents {
        config.push_str(&support::dn(
            100_000 + i,
            &format!("sip:{}", upn(i)),
            "teams",
            "PushProfile",
        ));
    }
    let started = Instant::now();
    let (child, cti) = support::spawn(&dir, &config)?;
    // The contact centre logs every agent in and makes it Ready, as fast as it can.
    let (ws, _) = tokio_tungstenite::connect_async_with_config(cti.as_str(), None, true).await?;
    let (mut sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move {
        let mut answers = 0usize;
        while answers < 2 * agents {
            match stream.next().await {
                Some(Ok(Message::Text(_))) => answers += 1,
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        (answers, stream)
    });
    for i in 1..=agents {
        let this_dn: presence_model::DnNumber = (100_000 + i).to_string().parse()?;
        sink.send(request(
            2 * i as u64,
            ClientRequest::RequestAgentLogin {
                this_dn: this_dn.clone(),
                agent_id: format!("a{i}").parse()?,
                workmode: None,
                extensions: Extensions::new(),
            },
        ))
        .await?;
        sink.send(request(
            2 * i as u64 + 1,
            ClientRequest::RequestAgentReady { this_dn },
        ))
        .await?;
    }
    let (answers, mut stream) = reader.await?;
    if answers < 2 * agents {
        return Err(format!("only {answers} of {} answers", 2 * agents).into());
    }
    // Converged: Teams shows every agent Available/Available, the status message, and the
    // bridge's own session.
    let converged = |g: &GraphSimServer| {
        (1..=agents).all(|i| {
            g.shows(&upn(i)).is_some_and(|s| {
                s.availability.as_str() == "Available"
                    && s.activity == "Available"
                    && s.status_message.as_deref() == Some("I am available")
                    && s.sessions
                        .iter()
                        .any(|x| x.source == SimConfig::DEFAULT_CLIENT_ID)
            })
        })
    };
    let floor = agents as f64 / (BUDGET / 30.0);
    let deadline = Duration::from_secs_f64(floor * 3.0 + 60.0);
    while !converged(&graph) {
        if started.elapsed() > deadline {
            support::stop(child);
            return Err(format!(
                "did not converge within {deadline:?}: the run fails, whatever its speed"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = started.elapsed().as_secs_f64();
    let stats = graph.stats();
    let refused: u64 = stats.refused_budget.values().sum();
    let writes = graph.writes().len();
    println!(
        "restart with {agents} Teams agents: converged in {took:.1} s; floor {agents} ÷ ({BUDGET} / 30 s) = {floor:.1} s; ratio {:.3}; {writes} presence writes; {refused} refused for budget; daemon RSS {:.1} MiB",
        took / floor,
        support::rss_kib(child.id()) as f64 / 1024.0
    );

    // Latency with no backlog: let the budget refill, then single changes well below it.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let mut events = graph.events();
    let ids: HashMap<String, usize> = (1..=200)
        .filter_map(|i| graph.user_id(&upn(i)).map(|id| (id, i)))
        .collect();
    let mut sent: HashMap<usize, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut reference = 10_000_000u64;
    for i in 1..=200usize {
        let this_dn: presence_model::DnNumber = (100_000 + i).to_string().parse()?;
        reference += 1;
        sink.send(request(
            reference,
            ClientRequest::RequestAgentNotReady {
                this_dn,
                workmode: Some(WorkMode::AuxWork),
            },
        ))
        .await?;
        sent.insert(i, Instant::now());
        // 5 changes per second: well below the budget's 45.
        let pause = tokio::time::sleep(Duration::from_millis(200));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = &mut pause => break,
                event = events.recv() => {
                    if let Ok(SimEvent::WriteAccepted { user_id, kind: WriteKind::SetPresence, .. }) = event
                        && let Some(i) = ids.get(&user_id)
                        && let Some(at) = sent.remove(i)
                    {
                        latencies.push(at.elapsed());
                    }
                }
                _ = stream.next() => {}
            }
        }
    }
    let wait = Instant::now();
    while !sent.is_empty() && wait.elapsed() < Duration::from_secs(10) {
        if let Ok(Ok(SimEvent::WriteAccepted {
            user_id,
            kind: WriteKind::SetPresence,
            ..
        })) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await
            && let Some(i) = ids.get(&user_id)
            && let Some(at) = sent.remove(i)
        {
            latencies.push(at.elapsed());
        }
    }
    if !sent.is_empty() {
        support::stop(child);
        return Err(format!("{} changes never reached Teams", sent.len()).into());
    }
    latencies.sort();
    println!(
        "no backlog: CTI event -> Graph setPresence accepted, {} changes at 5/s: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        latencies.len(),
        support::percentile(&latencies, 50.0),
        support::percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or_default()
    );
    support::stop(child);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn idle(dns: usize) -> Result<(), support::Error> {
    let sfb = presence_sfb_sim::SimServer::start(presence_sfb_sim::ServerConfig::default()).await?;
    let graph = graph(dns).await?;
    let dir = support::scratch("teams-idle")?;
    let mut config = support::head("sfb", Some(sfb.local_addr())) + &teams_table(&graph);
    for i in 0..dns {
        config.push_str(&support::dn(
            200_000 + i,
            &format!("sip:user{i}@contoso.com"),
            "sfb",
            support::half(i),
        ));
        config.push_str(&support::dn(
            300_000 + i,
            &format!("sip:{}", upn(i + 1)),
            "teams",
            support::half(i),
        ));
    }
    let started = Instant::now();
    let (child, _cti) = support::spawn(&dir, &config)?;
    let push = dns.div_ceil(2);
    while sfb.published_count() < push as u64 {
        if started.elapsed() > Duration::from_secs(120) {
            support::stop(child);
            return Err("SfB did not resynchronise within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sfb_ready = started.elapsed();
    // Teams pull users: every one polled at least once (their first answers came back).
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss = support::rss_kib(child.id());
    println!(
        "{dns} SfB + {dns} Teams DNs (half push, half pull): SfB resynchronised in {sfb_ready:.2?}; RSS 10 s later {:.1} MiB",
        rss as f64 / 1024.0
    );
    support::stop(child);
    poll_cost(&graph, &dir, dns).await
}

/// The CPU a poll round costs the daemon: only Teams pull users, so nothing else runs.
async fn poll_cost(
    graph: &GraphSimServer,
    dir: &std::path::Path,
    users: usize,
) -> Result<(), support::Error> {
    let mut config = support::head("teams", None) + &teams_table(graph);
    for i in 0..users {
        config.push_str(&support::dn(
            400_000 + i,
            &format!("sip:{}", upn(i + 1)),
            "teams",
            "PullProfile",
        ));
    }
    let (child, _cti) = support::spawn(dir, &config)?;
    let reads = || {
        graph
            .stats()
            .requests
            .get(&presence_graph_sim::RequestKind::GetPresencesByUserId)
            .copied()
            .unwrap_or(0)
    };
    // Every user looked up and polled once before measuring.
    let per_round = users.div_ceil(650) as u64;
    let start = Instant::now();
    while reads() < 2 * per_round {
        if start.elapsed() > Duration::from_secs(120) {
            support::stop(child);
            return Err("the Teams pull users were not polled within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (cpu_before, reads_before) = (support::cpu_time(child.id()), reads());
    tokio::time::sleep(Duration::from_secs(30)).await;
    let cpu = support::cpu_time(child.id()) - cpu_before;
    let rounds = (reads() - reads_before) as f64 / per_round as f64;
    println!(
        "{users} Teams pull users polled every 5 s: {rounds:.0} rounds in 30 s, daemon CPU {cpu:.2?}: {:.1} ms per round per 10,000 polled users; RSS {:.1} MiB",
        cpu.as_secs_f64() * 1000.0 / rounds * (10_000.0 / users as f64),
        support::rss_kib(child.id()) as f64 / 1024.0
    );
    support::stop(child);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
