//! Publications per second from the driver to the simulator over loopback TCP, with p50 and
//! p99 latency (from `publish` being called to the pool's `200 OK` reaching the caller).
//!
//! The load is driven as the engine drives a transport: a publication is handed out only
//! with credit in hand (`Connected` grants `max-in-flight`, each settled publication grants
//! one more through `Credit`), one task per publication.
//!
//! `cargo run --release -p presence-sfb --example loopback -- [USERS] [PUBLICATIONS] [MAX_IN_FLIGHT]`
//! (defaults 10000, 200000, 1024). `cargo xtask bench` runs it too.

use std::time::{Duration, Instant};

use presence_model::{
    Activities, ActivityText, AggregatedStateId, Availability, Lcid, Platform, Presence,
    Publication, SipUri, UserId,
};
use presence_sfb::{SfbSettings, SfbTransport};
use presence_sfb_sim::{ServerConfig, SimServer};
use presence_transport::{PresenceTransport, TransportEvent, event_channel};
use tokio::task::JoinSet;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users = arg(1, 10_000).max(1);
    let total = arg(2, 200_000);
    let window = arg(3, 1024).max(1);
    let sim = SimServer::start(ServerConfig::default()).await?;
    let settings: SfbSettings = toml::from_str(&format!(
        "pool = \"{}\"\ntransport = \"tcp\"\napplication-uri = \"sip:bridge@contoso.com\"\nmax-in-flight = {window}\n",
        sim.local_addr()
    ))?;
    let (events, mut receiver) = event_channel();
    let (transport, _task) = SfbTransport::start(&settings, Platform::sfb(), events)?;
    let mut credit = loop {
        match receiver.recv().await {
            Some(TransportEvent::Connected { credit, .. }) => break u64::from(credit),
            Some(_) => {}
            None => return Err("the transport stopped before it connected".into()),
        }
    };
    let ids: Vec<UserId> = (0..users)
        .map(|i| SipUri::new(&format!("sip:agent{i:05}@contoso.com")))
        .map(|uri| uri.map(|uri| UserId::sip(Platform::sfb(), uri)))
        .collect::<Result<_, _>>()?;
    let states: Vec<Publication> = [
        ("IDLE_READY", 3501, "I am available"),
        ("INCALL", 7001, "Working with customer, do not disturb"),
        ("IDLE_NOTREADY", 6001, "I am not available"),
    ]
    .iter()
    .map(|(id, a, t)| Publication {
        id: AggregatedStateId::new(id).expect("valid"),
        presence: Presence {
            availability: Availability::new(*a).expect("valid"),
            activities: Activities::new(vec![(Lcid::EN_US, ActivityText::new(t))])
                .expect("one LCID"),
        },
    })
    .collect();

    let started = Instant::now();
    let mut latencies: Vec<Duration> = Vec::with_capacity(total);
    let mut failures = 0usize;
    let mut grants = 0u64;
    let mut running = JoinSet::new();
    let mut issued = 0usize;
    // Users in turn: with more users than credit, one user never has two publications
    // outstanding (the engine's guarantee; the transport would send a second one after
    // the first anyway).
    loop {
        while credit > 0 && issued < total {
            credit -= 1;
            let user = ids[issued % users].clone();
            let state = states[(issued + issued / users) % states.len()].clone();
            let transport = transport.clone();
            running.spawn(async move {
                let t = Instant::now();
                let result = transport.publish(&user, &state).await;
                (t.elapsed(), result.is_ok())
            });
            issued += 1;
        }
        if issued == total && running.is_empty() {
            break;
        }
        tokio::select! {
            Some(done) = running.join_next() => match done? {
                (latency, true) => latencies.push(latency),
                (_, false) => failures += 1,
            },
            event = receiver.recv() => match event {
                Some(TransportEvent::Credit { credit: more, .. }) => {
                    credit += u64::from(more);
                    grants += u64::from(more);
                }
                Some(TransportEvent::Connected { credit: initial, .. }) => credit = u64::from(initial),
                Some(TransportEvent::Disconnected { reason, .. }) => {
                    eprintln!("disconnected: {reason}");
                    credit = 0;
                }
                Some(_) => {}
                None => return Err("the transport stopped".into()),
            },
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{} publications for {users} users, max-in-flight {window} (credit-driven, {grants} credits granted): {:.0}/s over {:.2?}; latency p50 {:.2?}, p99 {:.2?}, max {:.2?}; {failures} failed; simulator accepted {}",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        elapsed,
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or_default(),
        sim.published_count()
    );
    transport.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
