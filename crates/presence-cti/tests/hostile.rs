//! Hostile contact-centre clients against a link started in the test on 127.0.0.1: each
//! kind of abuse is refused within bounded memory, and another client on the same link is
//! served throughout.
//!
//! A counting global allocator ([`peak_alloc`]) measures the peak of heap bytes in use
//! while each case runs (the link and the test's clients live in this one process, so both
//! sides are counted); the tests of this binary run one at a time ([`serial`]). Memory
//! bounds are asserted generously; times are printed (`HOSTILE` lines, run with
//! `--nocapture`), never asserted.
//!
//! Reused rather than repeated (in `tests/link.rs`): the error answers to non-JSON and
//! binary frames (`bad_input_gets_event_error_and_the_connection_keeps_working`), oversize
//! frames (`oversize_frames`, `a_frame_far_over_the_limit_sent_whole_gets_close_1009`), the
//! rate limit's answers (`rate_limit`), the client that never reads
//! (`a_slow_client_is_disconnected_and_others_keep_their_events`) and the connection limit
//! (`connection_limit_and_other_paths`,
//! `beyond_the_limit_connections_are_refused_then_closed_at_once`); `tests/memory.rs`
//! measures an idle connection. Requests for DNs a client never registered are the engine's
//! to refuse (presence-engine's `refused_requests_get_event_error_and_others_carry_on`):
//! the link passes them on like any other message, tagged with the client that sent them.
#![cfg(target_os = "linux")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use presence_cti::listener::REFUSING;
use presence_cti::{CtiConfig, CtiError, CtiServer, CtiSink};
use presence_testproc::heap::{self, PeakAlloc};
use presence_tlib::{ClientId, ClientSink, ErrorCode, LinkInput, ServerEvent};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held by every test of this binary for its whole run: only one case allocates at a time.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// Runs `case` under a [`heap::Probe`]: its result, the peak of heap bytes it added (both
/// ends of the link are in this process), and its time.
async fn measure<T>(name: &str, case: impl Future<Output = T>) -> (T, usize, Duration) {
    let probe = heap::Probe::start();
    let value = case.await;
    let (peak, elapsed) = probe.report(env!("CARGO_PKG_NAME"), name);
    (value, peak, elapsed)
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// A guard against hangs, never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(20);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Link {
    addr: SocketAddr,
    sink: CtiSink,
    inputs: mpsc::Receiver<LinkInput>,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<Result<(), CtiError>>,
}

impl Link {
    async fn start(config: CtiConfig) -> Link {
        let (tx, inputs) = mpsc::channel(1024);
        let config = CtiConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let server = CtiServer::bind(config, tx).await.unwrap();
        let addr = server.local_addr();
        let sink = server.sink();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        Link {
            addr,
            sink,
            inputs,
            stop,
            serving,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}{}", self.addr, presence_cti::PATH)
    }

    async fn input(&mut self) -> LinkInput {
        tokio::time::timeout(PATIENCE, self.inputs.recv())
            .await
            .expect("an input in time")
            .expect("the link is running")
    }

    /// Connects a client; returns its socket and its id.
    async fn client(&mut self) -> (Ws, ClientId) {
        let (ws, _) = tokio_tungstenite::connect_async(self.url()).await.unwrap();
        loop {
            match self.input().await {
                LinkInput::Connected(id, _) => return (ws, id),
                LinkInput::Disconnected(_) => {}
                other => panic!("expected Connected, got {other:?}"),
            }
        }
    }

    /// The bystander's round trip: a request reaches the engine from `client` and the
    /// engine's answer reaches the client. Inputs of other clients met on the way are
    /// dropped (they are the hostile client's).
    async fn round_trip(&mut self, ws: &mut Ws, client: ClientId, reference_id: u64) {
        let text = format!(
            r#"{{"message":"RequestAgentReady","referenceID":{reference_id},"thisDN":"5002"}}"#
        );
        ws.send(Message::text(text)).await.unwrap();
        loop {
            match self.input().await {
                LinkInput::Message(id, msg) if id == client => {
                    assert_eq!(msg.reference_id, reference_id);
                    break;
                }
                LinkInput::Message(..) | LinkInput::Connected(..) | LinkInput::Disconnected(_) => {}
            }
        }
        self.sink
            .send(client, ServerEvent::EventACK { reference_id });
        loop {
            let frame = tokio::time::timeout(PATIENCE, ws.next())
                .await
                .expect("an answer in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    assert_eq!(
                        ServerEvent::from_json(text.as_str()).unwrap(),
                        ServerEvent::EventACK { reference_id }
                    );
                    return;
                }
                Some(Ok(_)) => {}
                other => panic!("the bystander lost its connection: {other:?}"),
            }
        }
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.serving)
            .await
            .expect("serve returns in time")
            .expect("serve task")
            .expect("serve ok");
    }
}

/// Reads answers until `n` `EventError`s have come (or the connection ends); returns the
/// error codes seen.
async fn errors(ws: &mut Ws, n: usize) -> Vec<ErrorCode> {
    let mut codes = Vec::new();
    while codes.len() < n {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("an answer in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                if let Ok(ServerEvent::EventError { error_code, .. }) =
                    ServerEvent::from_json(text.as_str())
                {
                    codes.push(error_code);
                }
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_and_binary_floods_are_answered_and_the_bystander_is_served() {
    let _serial = serial().await;
    let mut link = Link::start(CtiConfig {
        rate_per_second: 100_000,
        burst: 100_000,
        ..CtiConfig::default()
    })
    .await;
    let (mut bystander, bystander_id) = link.client().await;
    let (hostile, _) = link.client().await;
    // 1,000 frames of 60 KiB that are not JSON, then 1,000 binary frames of 60 KiB.
    let garbage = "<not json/>".repeat(60 * KIB / 11);
    let (mut write, mut read) = hostile.split();
    let (codes, peak, _) = measure("1,000 non-JSON frames of 60 KiB", async {
        let sending = async {
            for _ in 0..1000 {
                write.send(Message::text(garbage.clone())).await.unwrap();
            }
        };
        let (_, codes) = tokio::join!(sending, async {
            let mut codes = Vec::new();
            while codes.len() < 1000 {
                match tokio::time::timeout(PATIENCE, read.next())
                    .await
                    .expect("in time")
                {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(ServerEvent::EventError { error_code, .. }) =
                            ServerEvent::from_json(text.as_str())
                        {
                            codes.push(error_code);
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("{other:?}"),
                }
            }
            codes
        });
        codes
    })
    .await;
    let mut hostile = write.reunite(read).unwrap();
    assert!(
        codes.iter().all(|c| *c == ErrorCode::MalformedJson),
        "{codes:?}"
    );
    assert!(peak < 16 * MIB, "{peak} bytes");
    link.round_trip(&mut bystander, bystander_id, 1).await;

    let blob = vec![0xFFu8; 60 * KIB];
    let (codes, peak, _) = measure("1,000 binary frames of 60 KiB", async {
        for _ in 0..1000 {
            hostile.feed(Message::binary(blob.clone())).await.unwrap();
        }
        hostile.flush().await.unwrap();
        errors(&mut hostile, 1000).await
    })
    .await;
    assert_eq!(codes.len(), 1000);
    assert!(
        codes.iter().all(|c| *c == ErrorCode::MalformedJson),
        "{codes:?}"
    );
    assert!(peak < 16 * MIB, "{peak} bytes");
    link.round_trip(&mut bystander, bystander_id, 2).await;
    link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_frames_close_that_connection_only() {
    let _serial = serial().await;
    let mut link = Link::start(CtiConfig::default()).await;
    let (mut bystander, bystander_id) = link.client().await;
    let (mut hostile, hostile_id) = link.client().await;
    let frame = "x".repeat(MIB);
    // The default limit is 64 KiB: a frame beyond 4 × that is refused at its header.
    let (end, peak, _) = measure("1 MiB frame (limit 64 KiB)", async {
        let _ = hostile.send(Message::text(frame.clone())).await;
        let codes = errors(&mut hostile, 1).await;
        let mut close = None;
        while let Ok(Some(message)) = tokio::time::timeout(PATIENCE, hostile.next()).await {
            match message {
                Ok(Message::Close(frame)) => {
                    close = frame.map(|f| u16::from(f.code));
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (codes, close)
    })
    .await;
    assert_eq!(end, (vec![ErrorCode::MessageTooLarge], Some(1009)));
    // The client's own 1 MiB frame is in the count; the link adds little to it.
    assert!(peak < 4 * MIB, "{peak} bytes");
    loop {
        if link.input().await == LinkInput::Disconnected(hostile_id) {
            break;
        }
    }
    link.round_trip(&mut bystander, bystander_id, 1).await;

    // Within 4 × the limit (a 200 KiB frame): refused, and the connection carries on.
    let (mut hostile, _) = link.client().await;
    let within = "y".repeat(200 * KIB);
    let (codes, peak, _) = measure("100 frames of 200 KiB (limit 64 KiB)", async {
        for _ in 0..100 {
            hostile.send(Message::text(within.clone())).await.unwrap();
        }
        errors(&mut hostile, 100).await
    })
    .await;
    assert_eq!(codes, vec![ErrorCode::MessageTooLarge; 100]);
    assert!(peak < 16 * MIB, "{peak} bytes");
    link.round_trip(&mut bystander, bystander_id, 2).await;
    link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_at_once_are_rate_limited_and_the_bystander_is_served() {
    let _serial = serial().await;
    let mut link = Link::start(CtiConfig {
        rate_per_second: 200,
        burst: 400,
        ..CtiConfig::default()
    })
    .await;
    let (mut bystander, bystander_id) = link.client().await;
    let (hostile, hostile_id) = link.client().await;
    let messages = 10_000u64;
    let ((forwarded, limited), peak, elapsed) = measure("10,000 messages at once", async {
        let (mut write, mut read) = hostile.split();
        let sending = async move {
            for reference_id in 1..=messages {
                let text = format!(
                    r#"{{"message":"RequestAgentReady","referenceID":{reference_id},"thisDN":"5001"}}"#
                );
                write.feed(Message::text(text)).await.unwrap();
            }
            write.flush().await.unwrap();
            write
        };
        // The engine's side: count what the link forwards, answering each.
        let sink = link.sink.clone();
        let inputs = &mut link.inputs;
        let engine = async {
            let mut forwarded = 0u64;
            let mut limited = 0u64;
            while forwarded + limited < messages {
                tokio::select! {
                    input = inputs.recv() => match input {
                        Some(LinkInput::Message(id, msg)) if id == hostile_id => {
                            forwarded += 1;
                            sink.send(id, ServerEvent::EventACK { reference_id: msg.reference_id });
                        }
                        Some(_) => {}
                        None => panic!("the link stopped"),
                    },
                    frame = tokio::time::timeout(PATIENCE, read.next()) => match frame.expect("in time") {
                        Some(Ok(Message::Text(text))) => {
                            if let Ok(ServerEvent::EventError { error_code, .. }) = ServerEvent::from_json(text.as_str()) {
                                assert_eq!(error_code, ErrorCode::RateLimited);
                                limited += 1;
                            }
                        }
                        Some(Ok(_)) => {}
                        other => panic!("{other:?}"),
                    },
                }
            }
            (forwarded, limited)
        };
        let (_write, counts) = tokio::join!(sending, engine);
        counts
    })
    .await;
    assert_eq!(forwarded + limited, messages);
    // The burst, and what the sustained rate allows while the flood lasted.
    let allowed = 400 + 200 * (elapsed.as_secs() + 1);
    assert!(forwarded <= allowed, "{forwarded} forwarded in {elapsed:?}");
    assert!(forwarded >= 400, "{forwarded}");
    assert!(peak < 32 * MIB, "{peak} bytes");
    link.round_trip(&mut bystander, bystander_id, 1).await;
    link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_costs_at_most_its_queue() {
    let _serial = serial().await;
    let queue = 64;
    let mut link = Link::start(CtiConfig {
        queue,
        ..CtiConfig::default()
    })
    .await;
    let (mut bystander, bystander_id) = link.client().await;
    let (_silent, silent_id) = link.client().await;
    let event = ServerEvent::error(None, ErrorCode::InternalError, "x".repeat(16 * KIB));
    let (sent, peak, _) = measure(
        "a client that never reads (16 KiB events, queue 64)",
        async {
            let mut sent = 0u32;
            loop {
                link.sink.send(silent_id, event.clone());
                sent += 1;
                if let Ok(LinkInput::Disconnected(id)) = link.inputs.try_recv() {
                    assert_eq!(id, silent_id);
                    return sent;
                }
                tokio::task::yield_now().await;
                assert!(sent < 1_000_000, "the silent client was never disconnected");
            }
        },
    )
    .await;
    // Its queue, the socket buffers and the frame in writing; never what was sent.
    let bound = (queue + 64) * 17 * KIB + 8 * MIB;
    assert!(peak < bound, "{peak} bytes after {sent} events");
    link.round_trip(&mut bystander, bystander_id, 1).await;
    link.shutdown().await;
}

/// File descriptors this process holds.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_connections_leave_the_link_within_its_limit() {
    let _serial = serial().await;
    let max_connections = 64;
    let mut link = Link::start(CtiConfig {
        max_connections,
        handshake_timeout: Duration::from_secs(60),
        ..CtiConfig::default()
    })
    .await;
    let (mut bystander, bystander_id) = link.client().await;
    let before = open_fds();
    let (sockets, peak, _) = measure("2,000 connections (max-connections 64)", async {
        let mut sockets = Vec::with_capacity(2000);
        for _ in 0..2000 {
            sockets.push(TcpStream::connect(link.addr).await.unwrap());
        }
        sockets
    })
    .await;
    // The link's own sockets: all this process holds beyond the 2,000 client ends. Those
    // it closed at once may take a moment to go.
    let deadline = Instant::now() + PATIENCE;
    let held = loop {
        let held = open_fds().saturating_sub(before + sockets.len());
        if held <= max_connections + REFUSING || Instant::now() > deadline {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("HOSTILE\tpresence-cti\tsockets the link holds under 2,000 connections\t{held}\t-");
    // The bystander's own connection is one of the limit.
    assert!(
        held <= max_connections + REFUSING,
        "the link holds {held} sockets"
    );
    assert!(peak < 32 * MIB, "{peak} bytes");
    link.round_trip(&mut bystander, bystander_id, 1).await;

    // A WebSocket client beyond the limit is refused with 503 while they are held...
    match tokio_tungstenite::connect_async(link.url()).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        Err(tungstenite::Error::Io(_) | tungstenite::Error::Protocol(_)) => {}
        other => panic!("{other:?}"),
    }
    // ... and served once they are gone.
    drop(sockets);
    let deadline = Instant::now() + PATIENCE;
    let (mut late, late_id) = loop {
        match tokio_tungstenite::connect_async(link.url()).await {
            Ok((ws, _)) => {
                let id = loop {
                    if let LinkInput::Connected(id, _) = link.input().await {
                        break id;
                    }
                };
                break (ws, id);
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("no room after the connections closed: {error}"),
        }
    };
    link.round_trip(&mut late, late_id, 2).await;
    link.round_trip(&mut bystander, bystander_id, 3).await;
    link.shutdown().await;
}
