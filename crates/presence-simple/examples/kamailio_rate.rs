//! PUBLISH throughput into one Kamailio (in-memory publications), side by side in one run:
//! SIPp's own PUBLISH load, then the bridge's SIP SIMPLE transport over one TCP connection,
//! each publishing for fresh users. Prints both rates and their ratio; the run fails unless
//! a second transport, watching every user, sees each with the published state.
//!
//! ```sh
//! cargo run --release -p presence-simple --example kamailio_rate -- [USERS] [SIPP_RATE]
//! ```
//! Defaults: 20,000 users (the transport publishes each once: a burst), SIPp at 8,000/s.

use std::time::{Duration, Instant};

use presence_model::{Platform, SipUri, UserId};
use presence_simple::{SimpleSettings, SimpleTransport};
use presence_testkamailio::{Kamailio, LoadOptions, Options, Storage, publish_load_with};
use presence_transport::testkit::publication;
use presence_transport::{PresenceTransport, TransportEvent, event_channel};

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let users: u32 = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let sipp_rate: u32 = args.next().map_or(Ok(8_000), |a| a.parse())?;
    let kamailio = Kamailio::start(Options::default().storage(Storage::Memory).shm_mb(2048))?;

    // SIPp alone first: Kamailio's own ceiling on this machine.
    let mut load = LoadOptions::new(sipp_rate, users);
    load.user_prefix = "sipp".to_owned();
    let sipp = publish_load_with(&kamailio, &load)?;
    println!(
        "SIPp: {} ok, {} failed, {:.0} PUBLISH/s (asked {sipp_rate}/s)",
        sipp.successful, sipp.failed, sipp.rate
    );
    tokio::time::sleep(Duration::from_secs(6)).await; // tm's finished transactions drain

    let settings: SimpleSettings = toml::from_str(&format!(
        "server = \"{}\"\ntransport = \"tcp\"\ndomain = \"test.local\"\nmax-in-flight = 256\npublish-expires = \"3600s\"\n",
        kamailio.addr()
    ))?;
    let (events, mut receiver) = event_channel();
    let (transport, _task) = SimpleTransport::start(&settings, Platform::simple(), events)?;
    loop {
        if let Some(TransportEvent::Connected { .. }) = receiver.recv().await {
            break;
        }
    }
    let p = publication(6500);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut failed = 0u64;
    for n in 0..users {
        let user = UserId::sip(
            Platform::simple(),
            SipUri::new(&format!("sip:bridge{n}@test.local"))?,
        );
        let (t, p) = (transport.clone(), p.clone());
        tasks.spawn(async move { t.publish(&user, &p).await.is_ok() });
        while tasks.len() >= 1024 {
            if let Some(Ok(false)) = tasks.join_next().await {
                failed += 1;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if !done.unwrap_or(false) {
            failed += 1;
        }
    }
    let elapsed = started.elapsed();
    let bridge_rate = f64::from(users) / elapsed.as_secs_f64();
    println!(
        "bridge: {} ok, {failed} failed in {:.2} s, {bridge_rate:.0} PUBLISH/s over one TCP connection",
        u64::from(users) - failed,
        elapsed.as_secs_f64()
    );
    println!("ratio bridge / SIPp: {:.2}", bridge_rate / sipp.rate);
    // Convergence: a second transport watches every user (kamcmd cannot list this many
    // in-memory publications): each must be seen Busy.
    let (events, mut watched) = event_channel();
    let (watcher, _task) = SimpleTransport::start(&settings, Platform::simple(), events)?;
    let all: Vec<UserId> = (0..users)
        .map(|n| {
            UserId::sip(
                Platform::simple(),
                SipUri::new(&format!("sip:bridge{n}@test.local")).expect("valid"),
            )
        })
        .collect();
    watcher.subscribe(&all).await?;
    let mut busy = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while busy.len() < users as usize {
        match tokio::time::timeout_at(deadline, watched.recv()).await {
            Ok(Some(TransportEvent::Presence(p))) if p.raw_availability == 6500 => {
                busy.insert(p.user);
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let mine = busy.len();
    println!("a watcher saw {mine} of the bridge's {users} users Busy");
    watcher.shutdown(Duration::from_secs(1)).await;
    transport.shutdown(Duration::from_secs(1)).await;
    if failed > 0 || mine != users as usize {
        return Err(format!("not converged: {failed} failed, {mine} of {users} live").into());
    }
    Ok(())
}
