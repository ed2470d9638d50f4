//! What idle contact-centre connections cost a running bridge: connects CLIENTS WebSocket
//! clients to URL, leaves them idle, and reads the resident memory of process PID (the
//! bridge, from `/proc/PID/status`) before, while they are connected and after they closed.
//!
//! ```sh
//! cargo build --release -p presence-bridge
//! target/release/presence-bridge run --config bridge.toml &   # [cti] listen = "127.0.0.1:17070"
//! cargo run --release -p presence-cti --example idle_clients -- ws://127.0.0.1:17070/v1/cti $! 1000
//! ```
//!
//! Linux only (`/proc`). The clients run in this process, so they do not count against the
//! bridge's figure; the bridge's open-file limit must allow CLIENTS sockets.

use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `VmRSS` and `VmHWM` (peak) of `pid`, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64), Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64, Error> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status").into())
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: idle_clients URL PID [CLIENTS]";
    let url = args.next().ok_or(usage)?;
    let pid: u32 = args.next().ok_or(usage)?.parse()?;
    let clients: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let settle = Duration::from_secs(2);

    let (before, _) = memory_kib(pid)?;
    println!("bridge RSS before: {before} KiB");
    // Small client buffers: only the bridge's memory matters here.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut open = Vec::with_capacity(clients);
    for i in 0..clients {
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false)
                .await
                .map_err(|e| format!("client {i}: {e}"))?;
        open.push(ws);
    }
    tokio::time::sleep(settle).await;
    let (connected, peak) = memory_kib(pid)?;
    let per = (connected.saturating_sub(before)) as f64 / clients as f64;
    println!(
        "bridge RSS with {clients} idle clients: {connected} KiB ({per:.1} KiB per connection), peak {peak} KiB"
    );
    for ws in &mut open {
        let _ = ws.send(Message::Close(None)).await;
    }
    drop(open);
    tokio::time::sleep(settle).await;
    let (after, _) = memory_kib(pid)?;
    println!("bridge RSS after they closed: {after} KiB");
    Ok(())
}
