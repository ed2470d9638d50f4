//! The driver's reconnect warnings, on loopback without a presence server: a refused
//! connection attempt and a connection the server closes both say when the next attempt
//! comes (`retry_in`, within the configured back-off).

use std::time::Duration;

use presence_model::Platform;
use presence_simple::{SimpleSettings, SimpleTransport};
use presence_transport::testkit::Logs;
use presence_transport::{EventReceiver, PresenceTransport, TransportEvent, event_channel};

fn settings(server: &str, reconnect: &str) -> SimpleSettings {
    toml::from_str(&format!(
        "server = \"{server}\"\ntransport = \"tcp\"\nreconnect-initial = \"{reconnect}\"\nreconnect-max = \"{reconnect}\"\n"
    ))
    .expect("valid settings")
}

async fn disconnected(events: &mut EventReceiver) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(TransportEvent::Disconnected { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await
    .expect("a Disconnected event in time");
}

#[tokio::test]
async fn reconnect_warnings_say_when_the_next_attempt_comes() {
    let logs = Logs::default();
    let _guard = logs.capture();

    // A port nobody listens on: the connection is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (events, mut receiver) = event_channel();
    let (transport, _task) = SimpleTransport::start(
        &settings(&closed.to_string(), "2s"),
        Platform::simple(),
        events,
    )
    .expect("starts");
    disconnected(&mut receiver).await;
    let retry_in = logs.retry_in("SIP SIMPLE connection attempt failed");
    assert!((1.6..=2.4).contains(&retry_in), "{retry_in}");
    transport.shutdown(Duration::from_millis(100)).await;

    // A server that accepts the connection and closes it at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let closer = tokio::spawn(async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }
    });
    let (events, mut receiver) = event_channel();
    let (transport, _task) = SimpleTransport::start(
        &settings(&server.to_string(), "3s"),
        Platform::simple(),
        events,
    )
    .expect("starts");
    disconnected(&mut receiver).await;
    let retry_in = logs.retry_in("SIP SIMPLE connection lost");
    assert!((2.4..=3.6).contains(&retry_in), "{retry_in}");
    transport.shutdown(Duration::from_millis(100)).await;
    closer.abort();
}
