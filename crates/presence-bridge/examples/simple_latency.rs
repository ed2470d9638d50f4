//! Latency of the whole push path on SIP SIMPLE, measured at both ends in one process: a
//! contact-centre message leaves this generator, the real `presence-bridge run` (release
//! build, its own process) maps it and PUBLISHes into a real Kamailio (in-memory
//! publications), and Kamailio's NOTIFY reaches a watcher here (the `presence-simple`
//! transport, subscribed to every user). Reports p50, p99, p99.9 and max of CTI message →
//! NOTIFY at the watcher, at a fixed rate, and fails unless every user converges: the
//! watcher's last view of each user is the state of the last message sent for it.
//!
//! ```sh
//! cargo build --release -p presence-bridge
//! cargo run --release -p presence-bridge --example simple_latency -- [USERS] [RATE] [SECONDS]
//! ```
//! Defaults: 1,000 users, 1,000 agent events/s, 10 s. Each event toggles one agent between
//! Ready (IDLE_READY, Online: PIDF `open`) and NotReady (IDLE_NOTREADY, Busy: `open` +
//! `busy`), round robin, so each user changes once per `USERS / RATE` seconds and every event
//! is a change the bridge must publish. `cargo xtask bench` runs it.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use presence_model::{AvailabilityClass, Platform, SipUri, UserId};
use presence_simple::{SimpleSettings, SimpleTransport};
use presence_testkamailio::{Kamailio, Options, Storage};
use presence_tlib::{ClientMessage, ClientRequest, Extensions, WorkMode};
use presence_transport::{PresenceTransport, TransportEvent, event_channel};
use tokio_tungstenite::tungstenite::Message;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// What the watcher must see next for a user, and when the message that asks for it left.
#[derive(Default)]
struct Book {
    /// User → (sent at, the class the message leads to).
    pending: HashMap<UserId, (Instant, AvailabilityClass)>,
    /// User → the class of the last message sent.
    last_sent: HashMap<UserId, AvailabilityClass>,
    /// User → the class the watcher saw last.
    last_seen: HashMap<UserId, AvailabilityClass>,
    /// From message to NOTIFY, one per message seen through.
    latencies: Vec<Duration>,
}

fn dn(i: u64) -> String {
    (100_000 + i).to_string()
}

fn user(i: u64) -> Result<UserId, support::Error> {
    Ok(UserId::sip(
        Platform::simple(),
        SipUri::new(&format!("sip:lat{i}@test.local"))?,
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), support::Error> {
    let users = arg(1, 1_000).max(1);
    let rate = arg(2, 1_000).max(1);
    let seconds = arg(3, 10).max(1);
    let kamailio = Kamailio::start(Options::default().storage(Storage::Memory).shm_mb(1024))?;

    // The bridge: every DN a push DN on SIP SIMPLE.
    let dir = support::scratch("simple-latency")?;
    let mut config = support::head("simple", None);
    config.push_str(&format!(
        "\n[simple]\nserver = \"{}\"\ntransport = \"tcp\"\ndomain = \"test.local\"\nmax-in-flight = 256\n",
        kamailio.addr()
    ));
    for i in 0..users {
        config.push_str(&support::dn(
            100_000 + i as usize,
            &format!("sip:lat{i}@test.local"),
            "simple",
            "PushProfile",
        ));
    }
    let (child, cti) = support::spawn(&dir, &config)?;

    // The watcher: subscribed to every user; the first NOTIFY of each says "nothing".
    let settings: SimpleSettings = toml::from_str(&format!(
        "server = \"{}\"\ntransport = \"tcp\"\ndomain = \"test.local\"\napplication-uri = \"sip:watcher@test.local\"\nmax-subscribes-in-flight = 256\n",
        kamailio.addr()
    ))?;
    let (events, mut receiver) = event_channel();
    let (watcher, _task) = SimpleTransport::start(&settings, Platform::simple(), events)?;
    let all: Vec<UserId> = (0..users).map(user).collect::<Result<_, _>>()?;
    loop {
        if let Some(TransportEvent::Connected { .. }) = receiver.recv().await {
            break;
        }
    }
    watcher.subscribe(&all).await?;
    let book = Arc::new(Mutex::new(Book::default()));
    let seen = Arc::clone(&book);
    let watching = tokio::spawn(async move {
        while let Some(event) = receiver.recv().await {
            let TransportEvent::Presence(update) = event else {
                continue;
            };
            let now = Instant::now();
            let class = update.availability.class();
            let mut book = seen.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(&(sent, want)) = book.pending.get(&update.user)
                && want == class
            {
                book.pending.remove(&update.user);
                book.latencies.push(now.duration_since(sent));
            }
            book.last_seen.insert(update.user, class);
        }
    });

    // The contact-centre client: log every agent in NotReady, answers read on the side.
    let (ws, _) = tokio_tungstenite::connect_async_with_config(cti.as_str(), None, true).await?;
    let (mut sink, mut stream) = ws.split();
    let answers = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(Ok(frame)) = stream.next().await {
            if frame.is_text() {
                n += 1;
            }
        }
        n
    });
    let mut reference = 0u64;
    let mut send = async |body: ClientRequest| -> Result<(), support::Error> {
        reference += 1;
        sink.send(Message::text(ClientMessage::new(reference, body).to_json()))
            .await?;
        Ok(())
    };
    {
        let mut b = book.lock().unwrap_or_else(|p| p.into_inner());
        for u in &all {
            b.pending
                .insert(u.clone(), (Instant::now(), AvailabilityClass::Busy));
            b.last_sent.insert(u.clone(), AvailabilityClass::Busy);
        }
    }
    for i in 0..users {
        send(ClientRequest::RequestAgentLogin {
            this_dn: dn(i).parse()?,
            agent_id: format!("a{i}").parse()?,
            workmode: Some(WorkMode::AuxWork),
            extensions: Extensions::new(),
        })
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !book
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pending
        .is_empty()
    {
        if Instant::now() > deadline {
            return Err("the logins did not reach the watcher within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    book.lock()
        .unwrap_or_else(|p| p.into_inner())
        .latencies
        .clear();
    let cpu_before = support::cpu_time(child.id());

    // The measured phase: `rate` events a second, each a change for its user.
    let total = rate * seconds;
    let started = tokio::time::Instant::now();
    let mut late = 0u64;
    for k in 0..total {
        let at = started + Duration::from_secs_f64(k as f64 / rate as f64);
        if tokio::time::Instant::now() > at + Duration::from_millis(5) {
            late += 1;
        }
        tokio::time::sleep_until(at).await;
        let i = k % users;
        let ready = (k / users).is_multiple_of(2);
        let (body, class) = if ready {
            (
                ClientRequest::RequestAgentReady {
                    this_dn: dn(i).parse()?,
                },
                AvailabilityClass::Online,
            )
        } else {
            (
                ClientRequest::RequestAgentNotReady {
                    this_dn: dn(i).parse()?,
                    workmode: Some(WorkMode::AuxWork),
                },
                AvailabilityClass::Busy,
            )
        };
        let u = &all[i as usize];
        {
            let mut b = book.lock().unwrap_or_else(|p| p.into_inner());
            b.pending.insert(u.clone(), (Instant::now(), class));
            b.last_sent.insert(u.clone(), class);
        }
        send(body).await?;
    }
    let sending = started.elapsed();

    // Convergence: every user's last view is its last state sent (at most 10 s more).
    let deadline = Instant::now() + Duration::from_secs(10);
    let converged = loop {
        let diverged = {
            let b = book.lock().unwrap_or_else(|p| p.into_inner());
            b.last_sent
                .iter()
                .filter(|(u, class)| b.last_seen.get(*u) != Some(*class))
                .count()
        };
        if diverged == 0 {
            break true;
        }
        if Instant::now() > deadline {
            eprintln!("{diverged} of {users} users did not converge");
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cpu = support::cpu_time(child.id()).saturating_sub(cpu_before);
    let rss = support::rss_kib(child.id());
    let (unmatched, mut l) = {
        let mut b = book.lock().unwrap_or_else(|p| p.into_inner());
        (b.pending.len(), std::mem::take(&mut b.latencies))
    };
    l.sort_unstable();
    let l = &l;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| ms(support::percentile(l, q));
    println!(
        "{total} agent events for {users} users at {rate}/s ({:.0}/s achieved, {late} sent late by > 5 ms): \
         CTI message → PUBLISH → NOTIFY at the watcher, {} measured: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; \
         {unmatched} changes overtaken before the watcher saw them; bridge CPU {:.1} µs/event, RSS {:.1} MiB",
        total as f64 / sending.as_secs_f64(),
        l.len(),
        p(50.0),
        p(99.0),
        p(99.9),
        ms(l.last().copied().unwrap_or_default()),
        cpu.as_secs_f64() * 1e6 / total as f64,
        rss as f64 / 1024.0,
    );
    watching.abort();
    watcher.shutdown(Duration::from_secs(1)).await;
    support::stop(child);
    let answered = answers.await.unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    if !converged {
        return Err("not converged: the watcher's view differs from the last state sent".into());
    }
    println!(
        "converged: every user's last state seen by the watcher; {answered} CTI answers received"
    );
    Ok(())
}
