//! End-to-end load: the real `presence-bridge run` (release build) with 10,000 configured DNs
//! against the SfB simulator on loopback, driven over the contact-centre WebSocket.
//!
//! Reports the daemon's resident memory once it has started and resynchronised (idle), then
//! agent events per second through the CTI link (each answered by the bridge) and the
//! publications the simulator accepted.
//!
//! ```sh
//! cargo build --release -p presence-bridge
//! cargo run --release -p presence-bridge --example load -- [DNS] [CLIENTS] [EVENTS]
//! cargo run --release -p presence-bridge --example load -- --startup-only [DNS]
//! ```
//! Defaults: 10000 DNs (half push, half pull), 8 clients, 100000 events. `cargo xtask bench`
//! runs it.
//!
//! `--startup-only` stops after the start-up and reports it in parts: the time from `run`
//! until the daemon logs `bridge running` (configuration loaded, engine built, listeners
//! up), until the simulator has accepted every push user's publication, and until every
//! pull user is in a subscription dialog; the daemon's resident memory 3 s after that and
//! its peak (`VmHWM`); the CPU time of the daemon and of this process (the simulator's).

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use presence_sfb_sim::{ServerConfig, SimServer};
use presence_tlib::{ClientMessage, ClientRequest, Extensions, WorkMode};
use tokio_tungstenite::tungstenite::Message;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .filter(|a| !a.starts_with("--"))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), support::Error> {
    let startup_only = std::env::args().any(|a| a == "--startup-only");
    let dns = arg(1, 10_000);
    let clients = arg(2, 8);
    let events = arg(3, 100_000);
    let sim = SimServer::start(ServerConfig::default()).await?;
    let dir = support::scratch("load")?;
    let mut config = support::head("sfb", Some(sim.local_addr()));
    for i in 0..dns {
        config.push_str(&support::dn(
            100_000 + i,
            &format!("sip:user{i}@contoso.com"),
            "sfb",
            support::half(i),
        ));
    }
    let started = Instant::now();
    let (child, cti) = support::spawn(&dir, &config)?;
    let running = started.elapsed();
    // Idle: every push user published (Logout/Idle), every pull user subscribed.
    let push = dns.div_ceil(2) as u64;
    let dialogs = (dns / 2).div_ceil(100);
    let (mut published_at, mut subscribed_at) = (None, None);
    loop {
        let now = started.elapsed();
        if published_at.is_none() && sim.published_count() >= push {
            published_at = Some(now);
        }
        if subscribed_at.is_none() && sim.dialog_count() >= dialogs {
            subscribed_at = Some(now);
        }
        if published_at.is_some() && subscribed_at.is_some() {
            break;
        }
        if now > Duration::from_secs(120) {
            return Err("the bridge did not resynchronise within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(if startup_only { 5 } else { 50 })).await;
    }
    let startup = started.elapsed();
    if startup_only {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let idle = support::rss_kib(child.id());
        let fmt = |d: Option<Duration>| d.map_or_else(String::new, |d| format!("{d:.2?}"));
        println!(
            "{dns} DNs, start-up only: bridge running after {running:.2?}; {push} publications accepted after {}; {dialogs} subscription dialogs after {}; resynchronised after {startup:.2?}; idle RSS 3 s later {:.1} MiB (peak {:.1} MiB); CPU: daemon {:.2?}, simulator and this example {:.2?}",
            fmt(published_at),
            fmt(subscribed_at),
            idle as f64 / 1024.0,
            support::peak_rss_kib(child.id()) as f64 / 1024.0,
            support::cpu_time(child.id()),
            support::cpu_time(std::process::id()),
        );
        support::stop(child);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = support::rss_kib(child.id());
    println!(
        "{dns} DNs: started and resynchronised in {startup:.2?} ({push} publications, {} subscription dialogs); idle RSS {:.1} MiB",
        sim.dialog_count(),
        idle as f64 / 1024.0
    );

    // Each client owns a slice of the push DNs: log in, then toggle Ready / NotReady(ACW).
    let per_client = events / clients;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let cti = cti.clone();
        tasks.push(tokio::spawn(async move {
            let (ws, _) =
                tokio_tungstenite::connect_async_with_config(cti.as_str(), None, true).await?;
            let (mut sink, mut stream) = ws.split();
            let mine: Vec<String> = (0..dns)
                .filter(|i| i % 2 == 0 && (i / 2) % clients == c)
                .map(|i| (100_000 + i).to_string())
                .collect();
            let mut reference = 0u64;
            for d in &mine {
                reference += 1;
                let body = ClientRequest::RequestAgentLogin {
                    this_dn: d.parse()?,
                    agent_id: format!("a{d}").parse()?,
                    workmode: None,
                    extensions: Extensions::new(),
                };
                sink.send(Message::text(ClientMessage::new(reference, body).to_json()))
                    .await?;
            }
            // A window of requests in flight; count every answer.
            let sender = tokio::spawn(async move {
                for k in 0..per_client {
                    let d = &mine[k % mine.len()];
                    let body = if (k / mine.len()).is_multiple_of(2) {
                        ClientRequest::RequestAgentReady {
                            this_dn: d.parse()?,
                        }
                    } else {
                        ClientRequest::RequestAgentNotReady {
                            this_dn: d.parse()?,
                            workmode: Some(WorkMode::AfterCallWork),
                        }
                    };
                    sink.send(Message::text(
                        ClientMessage::new(1_000_000 + k as u64, body).to_json(),
                    ))
                    .await?;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(sink)
            });
            let want = per_client + reference as usize;
            let mut answers = 0usize;
            while answers < want {
                match stream.next().await {
                    Some(Ok(Message::Text(_))) => answers += 1,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err("the link closed".into()),
                }
            }
            let _sink = sender.await??;
            Ok::<usize, Box<dyn std::error::Error + Send + Sync>>(answers)
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let elapsed = t0.elapsed();
    let before = sim.published_count();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "{answered} contact-centre messages answered over {clients} WebSocket clients in {elapsed:.2?}: {:.0} events/s; the simulator accepted {} publications during the run (latest-wins coalescing sends fewer than events); RSS now {:.1} MiB",
        answered as f64 / elapsed.as_secs_f64(),
        sim.published_count().max(before) - push,
        support::rss_kib(child.id()) as f64 / 1024.0
    );
    support::stop(child);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
