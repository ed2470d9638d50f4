//! The server over loopback TCP, and its connection-level faults.

use std::time::Duration;

use presence_mspres::parse_notification;
use presence_sfb_sim::{ServerConfig, SimConfig, SimEvent};
use presence_sip::{Frame, Method, PONG};
use tokio::net::TcpStream;

use crate::support::{Client, Read, eventually, start, uri};

async fn connect(addr: std::net::SocketAddr) -> Client<TcpStream> {
    Client::new(TcpStream::connect(addr).await.unwrap())
}

#[tokio::test]
async fn publish_subscribe_and_notify_over_tcp() {
    let server = start(ServerConfig::default()).await;
    let mut events = server.events();
    let mut client = connect(server.local_addr()).await;
    eventually("the connection is registered", || {
        server.connection_count() == 1
    })
    .await;

    let agent = uri("agent1");
    let publish = client.publish(&agent, 0, 6500);
    client.send(&publish).await;
    let ok = client.response().await;
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(server.published_count(), 1);
    assert_eq!(server.shows(&agent).map(|s| s.availability), Some(6500));

    let subscribe = client.subscribe(std::slice::from_ref(&agent), 600);
    client.send(&subscribe).await;
    let ok = client.response().await;
    assert_eq!(ok.headers().expires().unwrap(), Some(600));
    let first = client.request().await;
    assert_eq!(first.method(), &Method::Benotify);
    assert!(first.headers().top_via().unwrap().unwrap().transport == "TCP");
    let n = parse_notification(first.headers().get("Content-Type").unwrap(), first.body()).unwrap();
    assert_eq!(n.categories[0].availability(), Some(6500));

    // The user picks a state in their own client: watchers hear of it.
    server.set_user_presence(&agent, 3500, Some("Free"));
    let change = client.request().await;
    let n =
        parse_notification(change.headers().get("Content-Type").unwrap(), change.body()).unwrap();
    assert_eq!(n.categories[0].availability(), Some(3500));
    assert_eq!(server.dialog_count(), 1);

    // And the bridge's next stale publication is a conflict.
    let stale = client.publish(&agent, 1, 9500);
    client.send(&stale).await;
    assert_eq!(client.response().await.status().as_u16(), 409);

    let mut published = false;
    while let Ok(event) = events.try_recv() {
        published |= matches!(
            event,
            SimEvent::Published {
                availability: Some(6500),
                ..
            }
        );
    }
    assert!(published);
    server.shutdown().await;
    assert!(matches!(client.read().await, Read::Closed));
}

#[tokio::test]
async fn keepalive_options_and_delayed_answers() {
    let server = start(ServerConfig::default()).await;
    let mut client = connect(server.local_addr()).await;
    client.write(presence_sip::PING).await;
    // The pong is a lone CRLF: read it as bytes.
    let mut pong = [0u8; 2];
    tokio::io::AsyncReadExt::read_exact(&mut client.stream, &mut pong)
        .await
        .unwrap();
    assert_eq!(&pong, PONG);

    server.delay_responses(Duration::from_millis(200));
    let options = client.options();
    client.send(&options).await;
    assert_eq!(
        client.response().await.status().as_u16(),
        200,
        "released by the timer task"
    );
}

#[tokio::test]
async fn unrefreshed_subscriptions_expire_on_the_timer() {
    let server = start(ServerConfig {
        sim: SimConfig {
            max_expires: 1,
            ..SimConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let mut client = connect(server.local_addr()).await;
    let subscribe = client.subscribe(&[uri("a"), uri("b")], 600);
    client.send(&subscribe).await;
    assert_eq!(
        client.response().await.headers().expires().unwrap(),
        Some(1)
    );
    let first = client.request().await;
    assert_eq!(first.method(), &Method::Benotify);
    let end = client.request().await;
    assert_eq!(end.method(), &Method::Notify);
    assert_eq!(
        end.headers().get("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(server.dialog_count(), 0);
}

#[tokio::test]
async fn drop_connections_closes_every_socket() {
    let server = start(ServerConfig::default()).await;
    let mut a = connect(server.local_addr()).await;
    let mut b = connect(server.local_addr()).await;
    eventually("two connections", || server.connection_count() == 2).await;
    let subscribe = a.subscribe(&[uri("x")], 600);
    a.send(&subscribe).await;
    a.response().await;
    server.drop_connections();
    assert!(matches!(
        a.read().await,
        Read::Closed | Read::Frame(Frame::Message(_))
    ));
    assert!(matches!(b.read().await, Read::Closed));
    eventually("no connection left", || server.connection_count() == 0).await;
    assert_eq!(server.dialog_count(), 0, "dialogs go with their connection");
    // New connections are accepted as before.
    let mut c = connect(server.local_addr()).await;
    let options = c.options();
    c.send(&options).await;
    assert_eq!(c.response().await.status().as_u16(), 200);
}

#[tokio::test]
async fn stop_reading_stalls_requests_until_resumed() {
    let server = start(ServerConfig::default()).await;
    let mut client = connect(server.local_addr()).await;
    eventually("connected", || server.connection_count() == 1).await;
    server.stop_reading(true);
    let options = client.options();
    client.send(&options).await;
    let nothing = tokio::time::timeout(Duration::from_millis(300), client.read()).await;
    assert!(
        nothing.is_err(),
        "a stalled pool answers nothing: {nothing:?}"
    );
    server.stop_reading(false);
    assert_eq!(client.response().await.status().as_u16(), 200);
}

#[tokio::test]
async fn send_garbage_reaches_the_client_as_bytes_that_are_not_sip() {
    let server = start(ServerConfig::default()).await;
    let mut client = connect(server.local_addr()).await;
    eventually("connected", || server.connection_count() == 1).await;
    server.send_garbage();
    assert!(matches!(client.read().await, Read::NotSip));
}

#[tokio::test]
async fn garbage_from_the_client_closes_its_connection() {
    let server = start(ServerConfig::default()).await;
    let mut events = server.events();
    let mut client = connect(server.local_addr()).await;
    client.write(b"HELLO\nWORLD\r\n\r\n").await;
    assert!(matches!(client.read().await, Read::Closed));
    eventually("the connection is gone", || server.connection_count() == 0).await;
    let mut seen = false;
    while let Ok(event) = events.try_recv() {
        seen |= matches!(event, SimEvent::ConnectionError { .. });
    }
    assert!(seen);
}

#[tokio::test]
async fn faults_are_forwarded() {
    let server = start(ServerConfig::default()).await;
    let mut client = connect(server.local_addr()).await;
    let agent = uri("agent1");
    server.fail_next(Method::Service, 2, 503).unwrap();
    for _ in 0..2 {
        let publish = client.publish(&agent, 0, 6500);
        client.send(&publish).await;
        let r = client.response().await;
        assert_eq!(
            (r.status().as_u16(), r.headers().get("Retry-After")),
            (503, Some("1"))
        );
    }
    server.random_conflicts(1.0);
    let publish = client.publish(&agent, 0, 6500);
    client.send(&publish).await;
    assert_eq!(client.response().await.status().as_u16(), 409);
    server.clear_faults();
    server.random_errors(1.0, 500).unwrap();
    let options = client.options();
    client.send(&options).await;
    assert_eq!(client.response().await.status().as_u16(), 500);
    server.clear_faults();

    let subscribe = client.subscribe(&[agent.clone(), uri("b")], 600);
    client.send(&subscribe).await;
    client.response().await;
    client.request().await;
    server.terminate_resource(&agent);
    let n = client.request().await;
    let n = parse_notification(n.headers().get("Content-Type").unwrap(), n.body()).unwrap();
    assert_eq!(n.terminated, [agent.to_string()]);
    server.terminate_subscriptions();
    let end = client.request().await;
    assert_eq!(
        end.headers().get("Subscription-State"),
        Some("terminated;reason=deactivated")
    );
    assert_eq!(server.dialog_count(), 0);
    let sim_dialogs = server.with_simulator(|sim, _| sim.dialog_count());
    assert_eq!(sim_dialogs, 0);
}
