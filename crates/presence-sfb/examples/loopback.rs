//! Publications per second from the driver to the simulator over loopback TCP, with p50 and
//! p99 latency (from `publish` being called to the pool's `200 OK` reaching the caller).
//!
//! `cargo run --release -p presence-sfb --example loopback -- [USERS] [PUBLICATIONS] [CONCURRENCY]`
//! (defaults 10000, 200000, 1024). `cargo xtask bench` runs it too.

use std::time::{Duration, Instant};

use presence_model::{Activities, ActivityText, Availability, Lcid, Presence, SipUri};
use presence_sfb::{SfbSettings, SfbTransport};
use presence_sfb_sim::{ServerConfig, SimServer};
use presence_transport::{PresenceTransport, TransportEvent};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users = arg(1, 10_000);
    let total = arg(2, 200_000);
    let concurrency = arg(3, 1024);
    let sim = SimServer::start(ServerConfig::default()).await?;
    let settings: SfbSettings = toml::from_str(&format!(
        "pool = \"{}\"\ntransport = \"tcp\"\napplication-uri = \"sip:bridge@contoso.com\"\nmax-in-flight = {concurrency}\n",
        sim.local_addr()
    ))?;
    let (transport, mut events, _task) = SfbTransport::start(&settings)?;
    while !matches!(events.recv().await, Some(TransportEvent::Connected { .. })) {}
    let uris: Vec<SipUri> = (0..users)
        .map(|i| SipUri::new(&format!("sip:agent{i:05}@contoso.com")))
        .collect::<Result<_, _>>()?;
    let states: Vec<Presence> = [
        (3501, "I am available"),
        (7001, "Working with customer, do not disturb"),
        (6001, "I am not available"),
    ]
    .iter()
    .map(|(a, t)| Presence {
        availability: Availability::new(*a).expect("valid"),
        activities: Activities::new(vec![(Lcid::EN_US, ActivityText::new(t))]).expect("one LCID"),
    })
    .collect();

    let started = Instant::now();
    // `concurrency` workers; worker w publishes for users w, w + concurrency, ... in turn,
    // so one user never has two publications outstanding (as the engine guarantees).
    let per_worker = total / concurrency;
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let transport = transport.clone();
        let uris = uris.clone();
        let states = states.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            let mut failures = 0usize;
            for k in 0..per_worker {
                let user = &uris[(w + k * concurrency) % uris.len()];
                let presence = &states[(w + k) % states.len()];
                let t = Instant::now();
                match transport.publish(user, presence).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(_) => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(total);
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{} publications for {users} users, concurrency {concurrency}: {:.0}/s over {:.2?}; latency p50 {:.2?}, p99 {:.2?}, max {:.2?}; {failures} failed; simulator accepted {}",
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
