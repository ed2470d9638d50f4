//! The link over real sockets on 127.0.0.1 (ephemeral ports), with a WebSocket client.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use presence_cti::listener::REFUSING;
use presence_cti::{CtiConfig, CtiError, CtiServer, CtiSink};
use presence_model::{DnNumber, DndState};
use presence_tlib::{
    ClientId, ClientMessage, ClientRequest, ClientSink, ErrorCode, LinkInput, ServerEvent,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A guard against hangs, never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(20);

struct Harness {
    addr: SocketAddr,
    sink: CtiSink,
    inputs: mpsc::Receiver<LinkInput>,
    stop: Option<oneshot::Sender<()>>,
    serving: JoinHandle<Result<(), CtiError>>,
}

fn loopback(config: CtiConfig) -> CtiConfig {
    CtiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config
    }
}

async fn start(config: CtiConfig) -> Harness {
    let (tx, inputs) = mpsc::channel(64);
    let server = CtiServer::bind(loopback(config), tx).await.unwrap();
    let addr = server.local_addr();
    let sink = server.sink();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Harness {
        addr,
        sink,
        inputs,
        stop: Some(stop),
        serving,
    }
}

impl Harness {
    fn url(&self) -> String {
        format!("ws://{}/v1/cti", self.addr)
    }

    async fn connect(&self) -> Ws {
        connect(&self.url(), None).await.unwrap()
    }

    /// Connects and returns the socket with its client ID (from `Connected`).
    async fn client(&mut self) -> (Ws, ClientId) {
        let ws = self.connect().await;
        match self.input().await {
            LinkInput::Connected(id, peer) => {
                assert!(peer.starts_with("127.0.0.1:"), "{peer}");
                (ws, id)
            }
            other => panic!("expected Connected, got {other:?}"),
        }
    }

    async fn input(&mut self) -> LinkInput {
        tokio::time::timeout(PATIENCE, self.inputs.recv())
            .await
            .expect("an input in time")
            .expect("the link is running")
    }

    /// The next message from `client`, answered with `EventACK` as a toy engine would.
    async fn ack_next(&mut self, client: ClientId) -> ClientMessage {
        match self.input().await {
            LinkInput::Message(id, msg) if id == client => {
                self.sink.send(
                    client,
                    ServerEvent::EventACK {
                        reference_id: msg.reference_id,
                    },
                );
                msg
            }
            other => panic!("expected a message from {client}, got {other:?}"),
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, self.serving)
            .await
            .expect("serve returns in time")
            .expect("serve task")
            .expect("serve ok");
    }
}

async fn connect(url: &str, token: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(ws)
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// The next frame that is not a ping or pong.
async fn next_frame(ws: &mut Ws) -> Option<Message> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(message)) => return Some(message),
            Some(Err(_)) | None => return None,
        }
    }
}

async fn event(ws: &mut Ws) -> ServerEvent {
    match next_frame(ws).await {
        Some(Message::Text(text)) => ServerEvent::from_json(text.as_str())
            .unwrap_or_else(|e| panic!("the bridge sent an invalid event {text}: {e}")),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[track_caller]
fn assert_error(event: &ServerEvent, code: ErrorCode, reference_id: Option<u64>, text: &str) {
    match event {
        ServerEvent::EventError {
            reference_id: r,
            error_code,
            error_message,
        } => {
            assert_eq!(*error_code, code, "{error_message}");
            assert_eq!(*r, reference_id, "{error_message}");
            assert!(
                error_message.contains(text),
                "`{error_message}` lacks `{text}`"
            );
        }
        other => panic!("expected EventError, got {other:?}"),
    }
}

fn dn(s: &str) -> DnNumber {
    DnNumber::new(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_exchange_messages() {
    let mut h = start(CtiConfig::default()).await;
    let (mut ws, client) = h.client().await;
    send(
        &mut ws,
        r#"{"message":"RegisterAddress","referenceID":1,"thisDN":"5001"}"#,
    )
    .await;
    let LinkInput::Message(id, msg) = h.input().await else {
        panic!()
    };
    assert_eq!(id, client);
    assert_eq!(
        msg,
        ClientMessage::new(
            1,
            ClientRequest::RegisterAddress {
                this_dn: dn("5001")
            }
        )
    );
    h.sink.send(
        client,
        ServerEvent::EventRegistered {
            reference_id: 1,
            this_dn: dn("5001"),
            dnd: Some(DndState::Off),
            ha_role: None,
        },
    );
    let Some(Message::Text(text)) = next_frame(&mut ws).await else {
        panic!()
    };
    assert_eq!(
        text.as_str(),
        r#"{"message":"EventRegistered","referenceID":1,"thisDN":"5001","extensions":{"dnd":"off"}}"#
    );

    // Pings are answered.
    ws.send(Message::Ping(b"hi"[..].into())).await.unwrap();
    let pong = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    assert!(
        matches!(&pong, Some(Ok(Message::Pong(p))) if &p[..] == b"hi"),
        "{pong:?}"
    );

    // Closing is reported.
    ws.close(None).await.unwrap();
    assert_eq!(h.input().await, LinkInput::Disconnected(client));
    assert_eq!(h.sink.connected(), 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_event_error_and_the_connection_keeps_working() {
    let mut h = start(CtiConfig::default()).await;
    let (mut ws, client) = h.client().await;

    send(&mut ws, r#"{"message":"RegisterAddress","#).await;
    assert_error(
        &event(&mut ws).await,
        ErrorCode::MalformedJson,
        None,
        "malformed JSON at line 1, column 29",
    );
    send(&mut ws, r#"{"message":"RequestCoffee","referenceID":5}"#).await;
    assert_error(
        &event(&mut ws).await,
        ErrorCode::UnknownMessage,
        Some(5),
        "\"RequestCoffee\" is not known",
    );
    send(
        &mut ws,
        r#"{"message":"RequestAgentLogin","referenceID":6,"agentID":"a1"}"#,
    )
    .await;
    assert_error(
        &event(&mut ws).await,
        ErrorCode::InvalidAttribute,
        Some(6),
        "`thisDN` is missing: every RequestAgentLogin needs the DN",
    );
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_error(
        &event(&mut ws).await,
        ErrorCode::MalformedJson,
        None,
        "binary frames are not accepted",
    );

    // Still working; and the engine saw only the valid message.
    send(
        &mut ws,
        r#"{"message":"EventDNOutOfService","referenceID":7,"thisDN":"5001"}"#,
    )
    .await;
    let msg = h.ack_next(client).await;
    assert_eq!(msg.reference_id, 7);
    assert_eq!(
        event(&mut ws).await,
        ServerEvent::EventACK { reference_id: 7 }
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames() {
    let mut h = start(CtiConfig {
        max_message_bytes: 1024,
        ..CtiConfig::default()
    })
    .await;
    let (mut ws, client) = h.client().await;
    let (mut other, other_client) = h.client().await;
    let padded = |len: usize| {
        let head = r#"{"message":"RegisterAddress","referenceID":3,"thisDN":"5001","userData":""#;
        format!("{head}{}\"}}", "x".repeat(len - head.len() - 2))
    };

    // Over the limit but within 4 × the limit: refused, the connection continues.
    send(&mut ws, &padded(2000)).await;
    assert_error(
        &event(&mut ws).await,
        ErrorCode::MessageTooLarge,
        None,
        "the message is 2000 bytes, more than the limit of 1024 bytes",
    );
    send(&mut ws, &padded(1024)).await;
    assert_eq!(h.ack_next(client).await.reference_id, 3);
    assert_eq!(
        event(&mut ws).await,
        ServerEvent::EventACK { reference_id: 3 }
    );

    // Beyond 4 × the limit: refused, then closed with 1009.
    send(&mut ws, &padded(5000)).await;
    assert_error(
        &event(&mut ws).await,
        ErrorCode::MessageTooLarge,
        None,
        "the message is 5000 bytes, more than the limit of 1024 bytes",
    );
    match next_frame(&mut ws).await {
        Some(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(h.input().await, LinkInput::Disconnected(client));

    // The other connection is unaffected.
    send(
        &mut other,
        r#"{"message":"RequestAgentReady","referenceID":4,"thisDN":"5002"}"#,
    )
    .await;
    assert_eq!(h.ack_next(other_client).await.reference_id, 4);
    assert_eq!(
        event(&mut other).await,
        ServerEvent::EventACK { reference_id: 4 }
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit() {
    let mut h = start(CtiConfig {
        rate_per_second: 1,
        burst: 2,
        ..CtiConfig::default()
    })
    .await;
    let (mut ws, client) = h.client().await;
    for reference_id in 1..=6 {
        send(
            &mut ws,
            &format!(
                r#"{{"message":"RequestAgentReady","referenceID":{reference_id},"thisDN":"5001"}}"#
            ),
        )
        .await;
    }
    // The burst passes to the engine; the rest (bar any that a slow machine lets through
    // after a second) is dropped and answered directly.
    let mut passed = Vec::new();
    let mut limited = Vec::new();
    while passed.len() + limited.len() < 6 {
        tokio::select! {
            input = h.inputs.recv() => match input {
                Some(LinkInput::Message(_, msg)) => passed.push(msg.reference_id),
                other => panic!("{other:?}"),
            },
            answer = event(&mut ws) => {
                let reference_id = answer.reference_id().unwrap();
                assert_error(
                    &answer,
                    ErrorCode::RateLimited,
                    Some(reference_id),
                    "1 messages per second (bursts of 2)",
                );
                limited.push(reference_id);
            }
        }
    }
    passed.sort_unstable();
    assert!(passed.starts_with(&[1, 2]), "{passed:?}");
    assert!(limited.len() >= 3, "{limited:?}");

    // After a pause the connection is served again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(
        &mut ws,
        r#"{"message":"RequestAgentReady","referenceID":9,"thisDN":"5001"}"#,
    )
    .await;
    assert_eq!(h.ack_next(client).await.reference_id, 9);
    assert_eq!(
        event(&mut ws).await,
        ServerEvent::EventACK { reference_id: 9 }
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_to_the_right_client() {
    let mut h = start(CtiConfig::default()).await;
    let (mut a, client_a) = h.client().await;
    let (mut b, client_b) = h.client().await;
    assert_ne!(client_a, client_b);
    assert_eq!(h.sink.connected(), 2);

    let on = ServerEvent::dnd(DndState::On, dn("5001"), 6500, None, dn("PullProfile"));
    let off = ServerEvent::dnd(
        DndState::Off,
        dn("5002"),
        3500,
        Some("Available".into()),
        dn("PullProfile"),
    );
    h.sink.send(client_b, off.clone());
    h.sink.send(client_a, on.clone());
    assert_eq!(event(&mut a).await, on);
    assert_eq!(event(&mut b).await, off);
    // Nothing else arrived in between: the next frame is the next event sent to each.
    h.sink
        .send(client_a, ServerEvent::EventACK { reference_id: 1 });
    h.sink
        .send(client_b, ServerEvent::EventACK { reference_id: 2 });
    assert_eq!(
        event(&mut a).await,
        ServerEvent::EventACK { reference_id: 1 }
    );
    assert_eq!(
        event(&mut b).await,
        ServerEvent::EventACK { reference_id: 2 }
    );

    // Events for a client that has gone are dropped quietly.
    drop(a);
    assert_eq!(h.input().await, LinkInput::Disconnected(client_a));
    h.sink.send(client_a, on);
    h.sink.send(ClientId::new(999), off);
    h.sink
        .send(client_b, ServerEvent::EventACK { reference_id: 3 });
    assert_eq!(
        event(&mut b).await,
        ServerEvent::EventACK { reference_id: 3 }
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token() {
    let mut h = start(CtiConfig {
        token: Some("s3cret".to_owned()),
        ..CtiConfig::default()
    })
    .await;
    for token in [None, Some("wrong"), Some("s3cre"), Some("s3cret2")] {
        match connect(&h.url(), token).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{token:?}");
                assert!(response.headers().contains_key("www-authenticate"));
            }
            Ok(_) => panic!("{token:?} was accepted"),
            Err(other) => panic!("{token:?}: {other}"),
        }
    }
    let mut ws = connect(&h.url(), Some("s3cret")).await.unwrap();
    let LinkInput::Connected(client, _) = h.input().await else {
        panic!()
    };
    send(
        &mut ws,
        r#"{"message":"RegisterAddress","referenceID":1,"thisDN":"5001"}"#,
    )
    .await;
    assert_eq!(h.ack_next(client).await.reference_id, 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_needs_a_token() {
    let (tx, _rx) = mpsc::channel(1);
    let open = CtiConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..CtiConfig::default()
    };
    let err = CtiServer::bind(open.clone(), tx.clone()).await.unwrap_err();
    assert!(matches!(err, CtiError::TokenRequired { .. }), "{err}");
    assert!(err.to_string().contains("`cti.token` is required"), "{err}");
    let guarded = CtiConfig {
        token: Some("s3cret".into()),
        ..open
    };
    let server = CtiServer::bind(guarded, tx).await.unwrap();
    assert!(server.local_addr().ip().is_unspecified());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_errors_name_the_address() {
    let (tx, _rx) = mpsc::channel(1);
    let first = CtiServer::bind(loopback(CtiConfig::default()), tx.clone())
        .await
        .unwrap();
    let taken = CtiConfig {
        listen: first.local_addr(),
        ..CtiConfig::default()
    };
    let err = CtiServer::bind(taken, tx).await.unwrap_err();
    assert!(matches!(err, CtiError::Bind { .. }), "{err}");
    assert!(
        err.to_string().contains(&first.local_addr().to_string()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_disconnected_and_others_keep_their_events() {
    let mut h = start(CtiConfig {
        queue: 4,
        ..CtiConfig::default()
    })
    .await;
    // `slow` never reads.
    let (_slow, slow_client) = h.client().await;
    let (mut fast, fast_client) = h.client().await;
    let big = ServerEvent::error(None, ErrorCode::InternalError, "x".repeat(32 * 1024));

    let mut sent = 0u32;
    let disconnected = loop {
        h.sink.send(slow_client, big.clone());
        sent += 1;
        match h.inputs.try_recv() {
            Ok(LinkInput::Disconnected(id)) => break id,
            Ok(other) => panic!("{other:?}"),
            Err(_) => {}
        }
        // Meanwhile the fast client gets every event it is sent.
        if sent.is_multiple_of(64) {
            h.sink.send(
                fast_client,
                ServerEvent::EventACK {
                    reference_id: u64::from(sent),
                },
            );
            assert_eq!(
                event(&mut fast).await,
                ServerEvent::EventACK {
                    reference_id: u64::from(sent)
                }
            );
        }
        tokio::task::yield_now().await;
        assert!(sent < 1_000_000, "the slow client was never disconnected");
    };
    assert_eq!(disconnected, slow_client);

    // The fast client is still served.
    h.sink
        .send(fast_client, ServerEvent::EventACK { reference_id: 1 });
    assert_eq!(
        event(&mut fast).await,
        ServerEvent::EventACK { reference_id: 1 }
    );
    assert_eq!(h.sink.connected(), 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_connections_with_a_close_frame() {
    let mut h = start(CtiConfig::default()).await;
    let (mut ws, client) = h.client().await;
    let _ = h.stop.take().unwrap().send(());
    match next_frame(&mut ws).await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 1001);
            assert_eq!(frame.reason.as_str(), "bridge shutting down");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(h.input().await, LinkInput::Disconnected(client));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_and_other_paths() {
    let mut h = start(CtiConfig {
        max_connections: 1,
        ..CtiConfig::default()
    })
    .await;
    let (ws, client) = h.client().await;
    let other_path = format!("ws://{}/v2/other", h.addr);
    match connect(&h.url(), None).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        Ok(_) => panic!("a second connection was accepted"),
        Err(other) => panic!("{other}"),
    }
    // Every connection counts, whatever it asks for.
    match connect(&other_path, None).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("{other:?}"),
    }
    // Room again once the first has gone (its place is given back when its socket has
    // closed, just after `Disconnected`).
    drop(ws);
    assert_eq!(h.input().await, LinkInput::Disconnected(client));
    match connect_when_room(&other_path).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("{other:?}"),
    }
    let _ws = connect_when_room(&h.url()).await.unwrap();
    assert!(matches!(h.input().await, LinkInput::Connected(..)));
    h.shutdown().await;
}

/// Connects, trying again while the server answers 503 (a connection that just closed
/// gives its place back a moment later).
async fn connect_when_room(url: &str) -> Result<Ws, tungstenite::Error> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match connect(url, None).await {
            Err(tungstenite::Error::Http(response))
                if response.status() == 503 && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_gone_gets_service_unavailable() {
    let mut h = start(CtiConfig::default()).await;
    let (mut ws, _client) = h.client().await;
    h.inputs.close();
    send(
        &mut ws,
        r#"{"message":"RequestAgentReady","referenceID":4,"thisDN":"5001"}"#,
    )
    .await;
    assert_error(
        &event(&mut ws).await,
        ErrorCode::ServiceUnavailable,
        Some(4),
        "not serving requests",
    );
    h.shutdown().await;
}

/// Reads until the bridge closes `socket`: what it sent first (a reset counts as a close).
async fn until_closed(socket: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, socket.read_to_end(&mut received)).await;
    assert!(
        read.is_ok(),
        "the bridge did not close the connection in time"
    );
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_far_over_the_limit_sent_whole_gets_close_1009() {
    let mut h = start(CtiConfig {
        max_message_bytes: 1024,
        ..CtiConfig::default()
    })
    .await;
    let (mut ws, client) = h.client().await;
    // Sent as any client sends it, header and payload: 8 MiB is more than the sockets'
    // buffers hold, so the client is still sending when the bridge closes the connection.
    let sent = tokio::time::timeout(PATIENCE, ws.send(Message::text("x".repeat(8 << 20))))
        .await
        .expect("the frame is sent in time");
    assert!(
        sent.is_ok(),
        "the client could not send its frame: {sent:?}"
    );
    assert_error(
        &event(&mut ws).await,
        ErrorCode::MessageTooLarge,
        None,
        "the message is 8388608 bytes, more than the limit of 1024 bytes",
    );
    match next_frame(&mut ws).await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 1009);
            assert_eq!(frame.reason.as_str(), "message too big");
        }
        other => panic!("expected a close frame with code 1009, got {other:?}"),
    }
    assert_eq!(h.input().await, LinkInput::Disconnected(client));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_half_sent_and_dripping_requests_are_closed_after_the_handshake_timeout() {
    let mut h = start(CtiConfig {
        handshake_timeout: Duration::from_millis(300),
        ..CtiConfig::default()
    })
    .await;
    let mut silent = TcpStream::connect(h.addr).await.unwrap();
    let mut half = TcpStream::connect(h.addr).await.unwrap();
    half.write_all(b"GET /v1/cti HTTP/1.1\r\nHost: bridge\r\n")
        .await
        .unwrap();
    // A byte at a time, never quite finishing: the timeout bounds the whole head, not
    // the gaps between bytes.
    let mut dripping = TcpStream::connect(h.addr).await.unwrap();
    let (mut drip_reader, mut drip_writer) = dripping.split();
    let drip = async {
        for byte in b"GET /v1/cti HTTP/1.1\r\nHost: bridge\r\nX-Padding: "
            .iter()
            .cycle()
        {
            if drip_writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut dripped = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            () = drip => {}
            read = drip_reader.read_to_end(&mut dripped) => drop(read),
        }
    })
    .await;
    assert!(closed.is_ok(), "the dripping connection was never closed");
    assert!(dripped.is_empty(), "{dripped:?}");
    assert!(until_closed(&mut silent).await.is_empty());
    assert!(until_closed(&mut half).await.is_empty());

    // A client that sends its request is served as before.
    let (mut ws, client) = h.client().await;
    send(
        &mut ws,
        r#"{"message":"RegisterAddress","referenceID":1,"thisDN":"5001"}"#,
    )
    .await;
    assert_eq!(h.ack_next(client).await.reference_id, 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_waiting_for_their_request_count_against_the_limit() {
    let mut h = start(CtiConfig {
        max_connections: 2,
        handshake_timeout: Duration::from_secs(2),
        ..CtiConfig::default()
    })
    .await;
    let mut silent = [
        TcpStream::connect(h.addr).await.unwrap(),
        TcpStream::connect(h.addr).await.unwrap(),
    ];
    match connect(&h.url(), None).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("`cti.max-connections`"), "{body}");
        }
        Ok(_) => panic!("the limit ignored two connections that have not sent a request"),
        Err(other) => panic!("{other}"),
    }
    // Once the handshake timeout has closed them, there is room again.
    for socket in &mut silent {
        assert!(until_closed(socket).await.is_empty());
    }
    let _ws = connect_when_room(&h.url()).await.unwrap();
    assert!(matches!(h.input().await, LinkInput::Connected(..)));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_limit_connections_are_refused_then_closed_at_once() {
    let h = start(CtiConfig {
        max_connections: 1,
        // Longer than the test: only the limit closes connections here.
        handshake_timeout: Duration::from_secs(60),
        ..CtiConfig::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..1 + REFUSING {
        held.push(TcpStream::connect(h.addr).await.unwrap());
    }
    // One served, REFUSING waiting to be answered 503: the next ones are closed at once,
    // so the listener holds a bounded number of sockets however many arrive.
    for _ in 0..3 {
        let mut extra = TcpStream::connect(h.addr).await.unwrap();
        assert!(until_closed(&mut extra).await.is_empty());
    }
    let mut scratch = [0u8; 16];
    for socket in &held {
        let open = socket.try_read(&mut scratch);
        assert!(
            matches!(&open, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{open:?}"
        );
    }
    // A refused connection that sends its request gets the 503.
    let refused = held.last_mut().unwrap();
    refused
        .write_all(b"GET /v1/cti HTTP/1.1\r\nHost: bridge\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(until_closed(refused).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("`cti.max-connections`"), "{answer}");
    // Shutdown does not wait for the handshake timeout of the connections still waiting.
    h.shutdown().await;
}
