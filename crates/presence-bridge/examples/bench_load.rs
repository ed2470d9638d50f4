//! Delivery under load, measured end to end (issue 10): the SfB simulator
//! (`presence-sfb-sim`) and the real `presence-bridge run` as separate processes on
//! loopback, N configured DNs (even push, odd pull), driven over the contact-centre
//! WebSocket with the soak's realistic mix of agent and device events (login, ready, not
//! ready, ACW, walk away, calls ringing / dialled / established / released, out of service)
//! at a fixed rate or as fast as the link answers, while the pull users' presence changes.
//!
//! ```sh
//! cargo xtask bench load [--dns N] [--rate R | --max] [--mix push|pull|both] ...
//! target/release/examples/bench_load [--dns N] [--rate R | --max] [--seconds S]
//!     [--presence-rate P] [--clients C] [--mix push|pull|both] [--seed S]
//!     [--overload stall|503] [--fault-seconds F] [--startup-only] [--keep]
//! ```
//! `--keep` leaves the scratch folder (configuration, the simulator's record) in place.
//! Defaults: 10,000 DNs, 20,000 agent events/s for 10 s, 2,000 presence changes/s, 4
//! clients, both directions.
//!
//! The clients first register their pull DNs; the load, its clock and its CPU account start
//! when every client has.
//!
//! Measured, from timestamps at both ends (the wall clock, one machine): push, from the
//! CTI message leaving this generator to the simulator accepting the publication that shows
//! it (the simulator's `--record` file); pull, from the simulator applying a user's change
//! to the `EventDNDOn`/`EventDNDOff` reaching the client. A sample is taken for each event
//! whose state is the newest one sent for that user when a write arrives (an event
//! superseded before its write is coalesced: latest wins). Also the writes accepted against
//! the events that changed a user's state, the bridge's peak RSS (`VmHWM`) and its CPU
//! time per event (/proc), start-up until resynchronised.
//!
//! **Every run ends with a convergence check**: each push user shows on the simulator the
//! availability and texts its last (agent, device) combination maps to (computed here with
//! `presence-push` from the example map, not asked of the daemon), and each client holds,
//! for each pull DN (every pull user starts Busy, before the bridge), the DND its last
//! availability maps to by `presence-pull` (from `EventRegistered` or the last
//! `EventDNDOn`/`EventDNDOff`). A run that
//! does not converge within 60 s exits non-zero.
//!
//! `--overload stall|503`: after 3 s of load the simulator stops reading its sockets (or
//! answers every request 503) for `--fault-seconds` (10) while the load goes on; the load
//! stops when the simulator recovers; reported: the bridge's peak RSS against its idle RSS,
//! the answers the clients got during the fault, and the time from recovery to convergence.
//!
//! The last line is `BENCH {json}` with the figures, for `cargo xtask bench`.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use presence_model::random::SplitMix64;
use presence_model::{DndState, Publication};
use presence_push::PushTable;
use presence_tlib::{ClientMessage, ClientRequest, ServerEvent};
use support::Error;
use tokio_tungstenite::tungstenite::Message;

/// The availability every pull user has before the bridge starts: Busy.
const INITIAL_PULL: u32 = 6500;

/// Wall-clock nanoseconds: comparable across processes on one machine.
fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Overload {
    Stall,
    Unavailable,
}

#[derive(Clone, Debug)]
struct Args {
    dns: usize,
    rate: Option<f64>,
    seconds: f64,
    presence_rate: f64,
    clients: usize,
    push: bool,
    pull: bool,
    seed: u64,
    overload: Option<Overload>,
    fault_seconds: f64,
    startup_only: bool,
    keep: bool,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        dns: 10_000,
        rate: Some(20_000.0),
        seconds: 10.0,
        presence_rate: 2_000.0,
        clients: 4,
        push: true,
        pull: true,
        seed: 1,
        overload: None,
        fault_seconds: 10.0,
        startup_only: false,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dns" => args.dns = value()?.parse()?,
            "--rate" => args.rate = Some(value()?.parse()?),
            "--max" => args.rate = None,
            "--seconds" => args.seconds = value()?.parse()?,
            "--presence-rate" => args.presence_rate = value()?.parse()?,
            "--clients" => args.clients = value()?.parse::<usize>()?.max(1),
            "--seed" => args.seed = value()?.parse()?,
            "--fault-seconds" => args.fault_seconds = value()?.parse()?,
            "--startup-only" => args.startup_only = true,
            "--keep" => args.keep = true,
            "--transport" => {
                let t = value()?;
                if t != "sfb" {
                    return Err(format!(
                        "this generator drives SfB; `cargo xtask bench load --transport {t}` runs the {t} example"
                    )
                    .into());
                }
            }
            "--mix" => match value()?.as_str() {
                "push" => (args.push, args.pull) = (true, false),
                "pull" => (args.push, args.pull) = (false, true),
                "both" => (args.push, args.pull) = (true, true),
                other => return Err(format!("--mix push|pull|both, not {other}").into()),
            },
            "--overload" => {
                args.overload = Some(match value()?.as_str() {
                    "stall" => Overload::Stall,
                    "503" => Overload::Unavailable,
                    other => return Err(format!("--overload stall|503, not {other}").into()),
                });
            }
            other => return Err(format!("unknown argument {other} (see the file's docs)").into()),
        }
    }
    if !args.push {
        args.rate = Some(0.0);
    }
    if !args.pull {
        args.presence_rate = 0.0;
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------
// The simulator as a child process: commands on stdin, answers on stdout.

struct Sim {
    child: Child,
    addr: std::net::SocketAddr,
    stdin: std::sync::mpsc::Sender<String>,
    stdout: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Sim {
    fn start(record: &std::path::Path) -> Result<Sim, Error> {
        let bridge = support::binary()?;
        let binary = bridge.with_file_name("presence-sfb-sim");
        if !binary.exists() {
            return Err(format!(
                "{} is missing: run `cargo build --release -p presence-sfb-sim --features server` first",
                binary.display()
            )
            .into());
        }
        let mut child = Command::new(&binary)
            .args(["--listen", "127.0.0.1:0", "--quiet", "--record"])
            .arg(record)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err("the simulator's standard streams are not pipes".into());
        };
        // The banner names the address: "... on 127.0.0.1:PORT (TCP); ...".
        let mut lines = BufReader::new(stderr).lines();
        let banner = lines.next().and_then(Result::ok).unwrap_or_default();
        let addr = banner
            .split(" on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("no address in the simulator's banner: {banner}"))?;
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("simulator: {line}");
            }
        });
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut stdin = std::io::BufWriter::new(stdin);
            while let Ok(line) = rx.recv() {
                let _ = writeln!(stdin, "{line}");
                // Write out when nothing more is queued.
                let mut more = true;
                while more {
                    match rx.try_recv() {
                        Ok(line) => {
                            let _ = writeln!(stdin, "{line}");
                        }
                        Err(_) => more = false,
                    }
                }
                let _ = stdin.flush();
            }
        });
        let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if out_tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Sim {
            child,
            addr,
            stdin: tx,
            stdout: out_rx,
        })
    }

    fn send(&self, line: String) {
        let _ = self.stdin.send(line);
    }

    /// Waits for a stdout line that `want` accepts (others are dropped).
    async fn line(&mut self, want: impl Fn(&str) -> bool) -> Result<String, Error> {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.stdout.recv())
                .await
                .map_err(|_| "the simulator did not answer within 30 s")?
                .ok_or("the simulator exited")?;
            if want(&line) {
                return Ok(line);
            }
        }
    }

    /// (publications accepted, subscription dialogs), from `status`.
    async fn status(&mut self) -> Result<(u64, u64), Error> {
        self.send("status".to_owned());
        let line = self.line(|l| l.contains("publication(s) accepted")).await?;
        let numbers: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        Ok((
            numbers.get(2).copied().unwrap_or(0),
            numbers.get(1).copied().unwrap_or(0),
        ))
    }

    /// Stops it (`quit`, then SIGKILL after 10 s).
    fn stop(mut self) {
        self.send("quit".to_owned());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The clients

/// What a client sent and received, in wall-clock nanoseconds.
#[derive(Default)]
struct Log {
    /// (send time, push DN index, the publication expected after it).
    sent: Vec<(u64, u32, Arc<Publication>)>,
    /// (arrival time, pull DN index, DND), kept up to date by the client's reader.
    dnd: Arc<Mutex<Vec<(u64, u32, DndState)>>>,
    /// The last state of each of its push DNs.
    push: HashMap<u32, support::AgentDn>,
    /// The link's sending half: the link stays open while the log lives.
    _sink: Option<WsSink>,
}

type WsSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    answered: AtomicU64,
    errors: AtomicU64,
}

fn availability(table: &PushTable, state: &support::AgentDn) -> Result<Arc<Publication>, Error> {
    table
        .get(state.agent, state.device())
        .cloned()
        .ok_or_else(|| {
            format!(
                "PushProfile publishes nothing for {:?}/{:?}",
                state.agent,
                state.device()
            )
            .into()
        })
}

/// The DN number of index `i`.
fn number(i: u32) -> String {
    (100_000 + i).to_string()
}

/// One client: registers its pull DNs, then sends events for its push DNs at `rate`
/// (or with at most 1,000 unanswered when `None`) until `stop`.
#[allow(clippy::too_many_arguments)]
async fn client(
    id: usize,
    cti: String,
    push: Vec<u32>,
    pull: Vec<u32>,
    rate: Option<f64>,
    table: Arc<PushTable>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    seed: u64,
    registered: Arc<tokio::sync::Barrier>,
) -> Result<Log, Error> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(cti.as_str(), None, true)
        .await
        .map_err(|e| format!("client {id}: cannot connect to {cti}: {e}"))?;
    let (mut sink, mut stream) = ws.split();
    let dnd = Arc::new(Mutex::new(Vec::new()));
    let answered = Arc::new(AtomicU64::new(0));
    {
        let (dnd, answered, counters) = (dnd.clone(), answered.clone(), counters.clone());
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                let Ok(Message::Text(text)) = frame else {
                    continue;
                };
                let at = wall_ns();
                match ServerEvent::from_json(&text) {
                    Ok(ServerEvent::EventDNDOn { this_dn, .. }) => {
                        dnd_at(&dnd, at, this_dn.as_str(), DndState::On);
                    }
                    Ok(ServerEvent::EventDNDOff { this_dn, .. }) => {
                        dnd_at(&dnd, at, this_dn.as_str(), DndState::Off);
                    }
                    Ok(ServerEvent::EventRegistered {
                        this_dn, dnd: held, ..
                    }) => {
                        if let Some(state) = held {
                            dnd_at(&dnd, at, this_dn.as_str(), state);
                        }
                        counters.answered.fetch_add(1, Ordering::Relaxed);
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(ServerEvent::EventError { .. }) | Err(_) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                        counters.answered.fetch_add(1, Ordering::Relaxed);
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        counters.answered.fetch_add(1, Ordering::Relaxed);
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    let mut reference = 0u64;
    for &dn in &pull {
        reference += 1;
        let body = ClientRequest::RegisterAddress {
            this_dn: number(dn).parse()?,
        };
        sink.feed(Message::text(ClientMessage::new(reference, body).to_json()))
            .await?;
    }
    sink.flush().await?;
    while answered.load(Ordering::Relaxed) < reference {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The load starts when every client has registered: a presence change of a DN not
    // registered yet would reach its client only with the registration.
    registered.wait().await;
    let mut log = Log::default();
    let mut rng = SplitMix64::new(seed);
    let mut calls = 0u64;
    let started = Instant::now();
    let mut sent_here = 0u64;
    while !push.is_empty() && !stop.load(Ordering::Relaxed) {
        // How many to send now: the schedule's due count, or the window's room (1,000
        // events unanswered at most; the registrations are answered already).
        let due = match rate {
            Some(rate) => {
                let due = (started.elapsed().as_secs_f64() * rate) as u64;
                due.saturating_sub(sent_here).min(2_000)
            }
            None => {
                let events_answered = answered.load(Ordering::Relaxed) - pull.len() as u64;
                1_000u64.saturating_sub(sent_here - events_answered)
            }
        };
        if due == 0 {
            tokio::time::sleep(Duration::from_micros(500)).await;
            continue;
        }
        for _ in 0..due {
            let dn = *support::pick(&mut rng, &push);
            let state = log.push.get(&dn).cloned().unwrap_or_default();
            let (body, next, _) = support::mix_event(&mut rng, &number(dn), &state, || {
                calls += 1;
                format!("c{id}k{calls:x}")
            })?;
            let expected = availability(&table, &next)?;
            log.push.insert(dn, next);
            reference += 1;
            sent_here += 1;
            let text = ClientMessage::new(reference, body).to_json();
            log.sent.push((wall_ns(), dn, expected));
            sink.feed(Message::text(text)).await?;
        }
        sink.flush().await?;
        counters.sent.fetch_add(due, Ordering::Relaxed);
    }
    // Every answer, then the DND events that may still come (the caller waits).
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::Relaxed) < reference && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.dnd = dnd;
    log._sink = Some(sink);
    Ok(log)
}

fn dnd_at(log: &Mutex<Vec<(u64, u32, DndState)>>, at: u64, dn: &str, state: DndState) {
    if let Some(i) = dn.parse::<u32>().ok().and_then(|n| n.checked_sub(100_000)) {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((at, i, state));
    }
}

// ---------------------------------------------------------------------------------------
// Latency: each arrival is matched to the newest event sent for its user before it with
// the same value; each event gets at most one sample.

fn latencies<V: PartialEq + Copy>(
    sent: &HashMap<u32, Vec<(u64, V)>>,
    arrived: &HashMap<u32, Vec<(u64, V)>>,
) -> Vec<Duration> {
    let mut out = Vec::new();
    for (user, arrivals) in arrived {
        let Some(sends) = sent.get(user) else {
            continue;
        };
        let mut used = vec![false; sends.len()];
        for &(at, value) in arrivals {
            // Sends are in time order: the newest before `at`.
            let before = sends.partition_point(|&(t, _)| t <= at);
            if let Some(k) = (0..before).rev().find(|&k| sends[k].1 == value)
                && !used[k]
                // Only when no newer event before `at` had already changed the value.
                && sends[k..before].iter().all(|&(_, v)| v == value)
            {
                used[k] = true;
                out.push(Duration::from_nanos(at - sends[k].0));
            }
        }
    }
    out.sort();
    out
}

fn summary(samples: &[Duration]) -> serde_json::Value {
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    serde_json::json!({
        "samples": samples.len(),
        "p50_ms": ms(support::percentile(samples, 50.0)),
        "p99_ms": ms(support::percentile(samples, 99.0)),
        "p99_9_ms": ms(support::percentile(samples, 99.9)),
        "max_ms": ms(samples.last().copied().unwrap_or_default()),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let dir = support::ScratchDir::new("bench-load")?;
    let record = dir.path().join("record.txt");
    let mut sim = Sim::start(&record)?;
    let result = run(&args, &dir, &mut sim, &record).await;
    sim.stop();
    if args.keep {
        eprintln!(
            "kept {} (bridge.toml, the simulator's record.txt)",
            dir.path().display()
        );
        std::mem::forget(dir);
    }
    result
}

async fn run(
    args: &Args,
    dir: &support::ScratchDir,
    sim: &mut Sim,
    record: &std::path::Path,
) -> Result<(), Error> {
    let table = Arc::new(support::push_table(&dir.path().join("agent-states.xml"))?);
    let mapper = support::pull_mapper()?;
    let n = args.dns as u32;
    let push: Vec<u32> = (0..n).filter(|i| i % 2 == 0).collect();
    let pull: Vec<u32> = (0..n).filter(|i| i % 2 == 1).collect();
    let uri = |i: u32| format!("sip:user{i}@contoso.com");
    let mut config = support::head("sfb", Some(sim.addr));
    for i in 0..n {
        config.push_str(&support::dn(
            100_000 + i as usize,
            &uri(i),
            "sfb",
            support::half(i as usize),
        ));
    }
    // Every pull user starts Busy (DND on), so that each pull DN has a known state from
    // its registration on.
    for dn in &pull {
        sim.send(format!("set {} {INITIAL_PULL}", uri(*dn)));
    }
    sim.status().await?;
    config.push_str("\n[admin]\nlisten = \"127.0.0.1:0\"\n");
    let started = Instant::now();
    let mut daemon = support::start_daemon(dir.path(), &config, true, "warn,presence_bridge=info")?;
    let pid = daemon.pid();
    let running = started.elapsed();
    let dialogs = pull.len().div_ceil(100) as u64;
    loop {
        let (published, subscribed) = sim.status().await?;
        if published >= push.len() as u64 && subscribed >= dialogs {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "not resynchronised within 120 s: {published} publications, {subscribed} dialogs"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resync = started.elapsed();
    println!(
        "{n} DNs (daemon pid {pid}, simulator pid {}): bridge running after {running:.2?}, resynchronised ({} publications, {dialogs} subscription dialogs) after {resync:.2?}",
        sim.child.id(),
        push.len()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_kib = support::rss_kib(pid);
    let mut figures = serde_json::json!({
        "dns": n,
        "startup_s": resync.as_secs_f64(),
        "idle_rss_mib": idle_kib as f64 / 1024.0,
    });
    if args.startup_only {
        println!("idle RSS {:.1} MiB", idle_kib as f64 / 1024.0);
        println!("BENCH {figures}");
        return Ok(());
    }

    // The load.
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let registered = Arc::new(tokio::sync::Barrier::new(args.clients + 1));
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let mine = |dns: &[u32]| -> Vec<u32> {
            dns.iter()
                .copied()
                .filter(|d| (*d as usize / 2) % args.clients == c)
                .collect()
        };
        tasks.push(tokio::spawn(client(
            c,
            daemon.cti.clone(),
            mine(&push),
            mine(&pull),
            args.rate.map(|r| r / args.clients as f64),
            Arc::clone(&table),
            Arc::clone(&stop),
            Arc::clone(&counters),
            args.seed.wrapping_mul(1_000).wrapping_add(c as u64),
            Arc::clone(&registered),
        )));
    }
    // The clients connect and register their pull DNs; then the load starts.
    tokio::time::timeout(Duration::from_secs(60), registered.wait())
        .await
        .map_err(|_| "the clients did not register their DNs within 60 s")?;
    let cpu_before = support::cpu_time(pid);
    let load_start_ns = wall_ns();
    let t0 = Instant::now();
    // Presence changes of the pull users: each flips between Online and Busy.
    let mut changed: HashMap<u32, u32> = pull.iter().map(|dn| (*dn, INITIAL_PULL)).collect();
    let mut rng = SplitMix64::new(args.seed ^ 0x5eed);
    let fault_at = Duration::from_secs(3);
    let fault_for = Duration::from_secs_f64(args.fault_seconds);
    let run_for = match args.overload {
        Some(_) => fault_at + fault_for,
        None => Duration::from_secs_f64(args.seconds),
    };
    let (mut faulted, mut peak_kib, mut answered_at_fault) = (false, idle_kib, 0);
    let mut answered_in_fault = 0;
    let mut sent_changes = 0u64;
    let mut next_sample = Instant::now();
    while t0.elapsed() < run_for {
        if let Some(kind) = args.overload
            && !faulted
            && t0.elapsed() >= fault_at
        {
            faulted = true;
            answered_at_fault = counters.answered.load(Ordering::Relaxed);
            sim.send(match kind {
                Overload::Stall => "stall on".to_owned(),
                Overload::Unavailable => "errors 1 503".to_owned(),
            });
        }
        let due = (t0.elapsed().as_secs_f64() * args.presence_rate) as u64;
        while sent_changes < due && !pull.is_empty() {
            let dn = *support::pick(&mut rng, &pull);
            let availability = if changed.get(&dn) == Some(&3500) {
                6500
            } else {
                3500
            };
            changed.insert(dn, availability);
            sim.send(format!("set {} {availability}", uri(dn)));
            sent_changes += 1;
        }
        if Instant::now() >= next_sample {
            peak_kib = peak_kib.max(support::rss_kib(pid));
            next_sample += Duration::from_millis(100);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let load_time = t0.elapsed();
    if args.overload.is_some() {
        answered_in_fault = counters.answered.load(Ordering::Relaxed) - answered_at_fault;
        sim.send("clear".to_owned());
    }
    stop.store(true, Ordering::Relaxed);
    let recovered = Instant::now();
    let sent = counters.sent.load(Ordering::Relaxed);
    // Wait for every answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut logs: Vec<Log> = Vec::new();
    for task in tasks {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let log = tokio::time::timeout(remaining, task)
            .await
            .map_err(|_| "a client did not get its answers within 60 s")?
            .map_err(|e| e.to_string())??;
        logs.push(log);
    }
    let cpu = support::cpu_time(pid).saturating_sub(cpu_before);

    // Convergence: the simulator shows each push user's final state; each client holds
    // each changed pull DN's final DND.
    let mut expected_push: HashMap<u32, Arc<Publication>> = HashMap::new();
    let untouched = availability(&table, &support::AgentDn::default())?;
    for dn in &push {
        expected_push.insert(*dn, Arc::clone(&untouched));
    }
    for log in &logs {
        for (dn, state) in &log.push {
            expected_push.insert(*dn, availability(&table, state)?);
        }
    }
    let mut converged_after = None;
    let mut differ = Vec::new();
    while recovered.elapsed() < Duration::from_secs(60) {
        differ.clear();
        // All the questions, then the answers, in order.
        let users: Vec<(&u32, &Arc<Publication>)> = expected_push.iter().collect();
        for (dn, _) in &users {
            sim.send(format!("show {}", uri(**dn)));
        }
        for (dn, p) in &users {
            let want = show_line(&uri(**dn), p);
            let got = sim.line(|l| l.contains(" shows ")).await?;
            if got != want {
                let view = if differ.len() < 5 {
                    support::daemon_view(daemon.admin()?, &number(**dn)).await
                } else {
                    String::new()
                };
                differ.push(format!(
                    "{dn}: simulator `{got}`, expected `{want}`; the daemon: {view}"
                ));
            }
        }
        let last_dnd = last_dnd(&logs);
        for (dn, availability) in &changed {
            let want = mapper.map_wire(u64::from(*availability));
            if want.is_some() && last_dnd.get(dn).copied() != want {
                differ.push(format!(
                    "pull DN {}: client holds {:?}, expected {want:?} (availability {availability})",
                    number(*dn),
                    last_dnd.get(dn)
                ));
            }
        }
        if differ.is_empty() {
            converged_after = Some(recovered.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak_kib = peak_kib.max(support::peak_rss_kib(pid));
    let errors = counters.errors.load(Ordering::Relaxed);
    let exited = daemon.exited();
    let log_tail = daemon.log_tail();
    daemon.stop();
    sim.send("quit".to_owned());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Latency, from the simulator's record and the clients' logs.
    let text = std::fs::read_to_string(record).unwrap_or_default();
    let start_ns = load_start_ns;
    let (mut writes, mut lagged) = (HashMap::<u32, Vec<(u64, u16)>>::new(), 0u64);
    let mut notified = HashMap::<u32, Vec<(u64, Option<DndState>)>>::new();
    let mut written = 0u64;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"L") {
            lagged += f.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
            continue;
        }
        let (Some(kind), Some(at), Some(user), Some(value)) =
            (f.first(), f.get(1), f.get(2), f.get(3))
        else {
            continue;
        };
        let (Ok(at), Some(i)) = (
            at.parse::<u64>(),
            user.strip_prefix("sip:user")
                .and_then(|u| u.strip_suffix("@contoso.com"))
                .and_then(|u| u.parse::<u32>().ok()),
        ) else {
            continue;
        };
        let value = value.parse::<u16>().ok();
        if *kind == "P" && at >= start_ns {
            written += 1;
            writes.entry(i).or_default().push((at, value.unwrap_or(0)));
        } else if *kind == "C" && at >= start_ns {
            let dnd = value.and_then(|v| mapper.map_wire(u64::from(v)));
            notified.entry(i).or_default().push((at, dnd));
        }
    }
    // Events that change what a user shows (another aggregated state), and the sends by
    // user, matched on the availability (what the record holds).
    let mut sends: HashMap<u32, Vec<(u64, u16)>> = HashMap::new();
    let mut changing = 0u64;
    let mut by_user: HashMap<u32, Vec<(u64, &Arc<Publication>)>> = HashMap::new();
    for log in &logs {
        for (at, dn, p) in &log.sent {
            by_user.entry(*dn).or_default().push((*at, p));
        }
    }
    for (dn, events) in &mut by_user {
        events.sort_by_key(|x| x.0);
        let mut last = &untouched;
        for (at, p) in events.iter() {
            changing += u64::from(p.id != last.id);
            last = p;
            sends
                .entry(*dn)
                .or_default()
                .push((*at, p.presence.availability.get()));
        }
    }
    let push_latency = latencies(&sends, &writes);
    let mut dnd_arrivals: HashMap<u32, Vec<(u64, Option<DndState>)>> = HashMap::new();
    for log in &logs {
        for &(at, dn, state) in log
            .dnd
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            if at < start_ns {
                continue; // the registration's state
            }
            dnd_arrivals.entry(dn).or_default().push((at, Some(state)));
        }
    }
    for v in dnd_arrivals.values_mut() {
        v.sort_by_key(|x| x.0);
    }
    let pull_latency = latencies(&notified, &dnd_arrivals);

    let dnd_events: usize = dnd_arrivals.values().map(Vec::len).sum();
    let events_per_s = sent as f64 / load_time.as_secs_f64();
    let changes_per_s = sent_changes as f64 / load_time.as_secs_f64();
    let per = |n: u64| {
        if n > 0 {
            ((cpu.as_secs_f64() * 1e6 / n as f64) * 100.0).round() / 100.0
        } else {
            0.0
        }
    };
    let cpu_us = per(sent);
    let obj = figures.as_object_mut().ok_or("figures")?;
    obj.insert("events".into(), sent.into());
    obj.insert("events_per_s".into(), events_per_s.round().into());
    obj.insert("presence_changes".into(), sent_changes.into());
    obj.insert(
        "presence_changes_per_s".into(),
        changes_per_s.round().into(),
    );
    obj.insert("dnd_events".into(), dnd_events.into());
    if sent == 0 {
        // A pull-only run: the bridge's CPU per presence change taken in.
        obj.insert("cpu_us_per_change".into(), per(sent_changes).into());
    }
    obj.insert("state_changing_events".into(), changing.into());
    obj.insert("writes_accepted".into(), written.into());
    obj.insert("cpu_us_per_event".into(), cpu_us.into());
    obj.insert("peak_rss_mib".into(), (peak_kib as f64 / 1024.0).into());
    obj.insert("push_latency".into(), summary(&push_latency));
    obj.insert("pull_latency".into(), summary(&pull_latency));
    obj.insert("recorder_missed".into(), lagged.into());
    obj.insert("cti_errors".into(), errors.into());
    obj.insert(
        "converged_after_s".into(),
        converged_after.map_or(serde_json::Value::Null, |d| d.as_secs_f64().into()),
    );
    if let Some(kind) = args.overload {
        obj.insert(
            "overload".into(),
            match kind {
                Overload::Stall => "stall",
                Overload::Unavailable => "503",
            }
            .into(),
        );
        obj.insert("answers_during_fault".into(), answered_in_fault.into());
        obj.insert(
            "peak_over_idle".into(),
            ((peak_kib as f64 / idle_kib.max(1) as f64 * 100.0).round() / 100.0).into(),
        );
    }
    let p = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let cpu_text = if sent > 0 {
        format!("{cpu_us:.2} µs per agent event")
    } else {
        format!("{:.2} µs per presence change", per(sent_changes))
    };
    println!(
        "load: {sent} agent events in {load_time:.2?} ({events_per_s:.0}/s) over {} clients, {sent_changes} presence changes ({changes_per_s:.0}/s, {dnd_events} DND events out); {changing} changed a user's state, {written} publications accepted (the rest coalesced); bridge CPU {cpu:.2?} = {cpu_text}; RSS idle {:.1} MiB, peak {:.1} MiB",
        args.clients,
        idle_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0
    );
    for (what, samples, key) in [
        ("push CTI -> simulator", &push_latency, "push_latency"),
        (
            "pull simulator change -> EventDND",
            &pull_latency,
            "pull_latency",
        ),
    ] {
        let f = &figures[key];
        println!(
            "{what}: {} samples, p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms",
            samples.len(),
            p(f, "p50_ms"),
            p(f, "p99_ms"),
            p(f, "p99_9_ms"),
            p(f, "max_ms")
        );
    }
    if args.overload.is_some() {
        println!(
            "overload: {answered_in_fault} CTI answers during the fault; peak RSS {:.2} x idle",
            peak_kib as f64 / idle_kib.max(1) as f64
        );
    }
    if lagged > 0 {
        println!("(the simulator's recorder missed {lagged} events: fewer samples)");
    }
    println!("BENCH {figures}");
    if let Some(status) = exited {
        return Err(format!("the daemon exited during the run ({status})").into());
    }
    if errors > 0 {
        return Err(format!("{errors} contact-centre requests were refused").into());
    }
    match converged_after {
        Some(after) => {
            println!(
                "converged {after:.2?} after the load stopped{}: {} push users, {} pull DNs checked",
                if args.overload.is_some() {
                    " (and the simulator recovered)"
                } else {
                    ""
                },
                expected_push.len(),
                changed.len()
            );
            Ok(())
        }
        None => {
            for d in differ.iter().take(20) {
                eprintln!("differs: {d}");
            }
            eprintln!("the daemon's log ends with:\n{log_tail}");
            Err(format!("NOT CONVERGED within 60 s: {} users differ", differ.len()).into())
        }
    }
}

/// The simulator's `show` line for a user showing `p`.
fn show_line(uri: &str, p: &Publication) -> String {
    let mut line = format!("{uri} shows {}", p.presence.availability.get());
    for (lcid, text) in p.presence.activities.iter() {
        line.push_str(&format!(" [{}] {:?}", lcid.get(), text.as_str()));
    }
    line
}

/// The last DND each client holds, by pull DN index.
fn last_dnd(logs: &[Log]) -> HashMap<u32, DndState> {
    let mut all: Vec<(u64, u32, DndState)> = logs
        .iter()
        .flat_map(|l| l.dnd.lock().unwrap_or_else(PoisonError::into_inner).clone())
        .collect();
    all.sort_by_key(|x| x.0);
    all.into_iter().map(|(_, dn, s)| (dn, s)).collect()
}
