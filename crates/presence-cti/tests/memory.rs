//! What an idle connection costs in memory, measured as the growth of this process's
//! resident set (Linux only, `/proc/self/status`) while clients connect. The bound is
//! generous (a measured idle connection costs about 11 KiB in the bridge, and the clients
//! here are in the same process); tungstenite's default 128 KiB read buffer per connection
//! alone would break it. Its own test binary, so no other test's memory is counted.
#![cfg(target_os = "linux")]

use std::time::Duration;

use presence_cti::{CtiConfig, CtiServer, CtiSink};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connections measured.
const CONNECTIONS: usize = 256;

/// The bound per connection, server and client sides together.
const BOUND_BYTES: usize = 48 * 1024;

fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: usize = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// Connects `n` more clients and waits until the server serves all of `clients`.
async fn connect(url: &str, sink: &CtiSink, clients: &mut Vec<Ws>, n: usize) {
    // Small buffers of their own: the server's side is what is measured.
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0);
    for _ in 0..n {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .unwrap();
        clients.push(ws);
    }
    // Every server-side connection is set up and has started reading.
    let total = clients.len();
    tokio::time::timeout(Duration::from_secs(20), async {
        while sink.connected() < total {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every connection is served");
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_costs_far_less_than_a_default_read_buffer() {
    let config = CtiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_connections: 2 * CONNECTIONS,
        ..CtiConfig::default()
    };
    let (inputs, mut received) = mpsc::channel(4 * CONNECTIONS);
    let server = CtiServer::bind(config, inputs).await.unwrap();
    let url = format!("ws://{}{}", server.local_addr(), presence_cti::PATH);
    let sink = server.sink();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    tokio::spawn(async move { while received.recv().await.is_some() {} });
    let mut clients = Vec::new();
    // Warm up first: the runtime's and the tables' one-time allocations are not counted.
    connect(&url, &sink, &mut clients, 32).await;
    let before = resident_bytes();
    connect(&url, &sink, &mut clients, CONNECTIONS).await;
    let per_connection = resident_bytes().saturating_sub(before) / CONNECTIONS;
    eprintln!("resident memory per idle connection (both sides): {per_connection} bytes");
    assert!(
        per_connection < BOUND_BYTES,
        "an idle connection costs {per_connection} bytes of resident memory (bound {BOUND_BYTES})"
    );
    drop(clients);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
