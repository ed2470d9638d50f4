//! The server over loopback TLS and mutual TLS, with a PKI made by rcgen at test time.

use std::sync::Arc;

use presence_sfb_sim::tls::{ClientIdentity, TestPki};
use presence_sfb_sim::{ServerConfig, ServerTls, SimEvent, SimServer};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::support::{Client, Read, eventually, start};

async fn connect(
    server: &SimServer,
    config: Arc<ClientConfig>,
) -> std::io::Result<Client<TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(server.local_addr()).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let stream = TlsConnector::from(config).connect(name, tcp).await?;
    Ok(Client::new(stream))
}

async fn tls_server(tls: ServerTls) -> SimServer {
    start(ServerConfig {
        tls: Some(tls),
        ..ServerConfig::default()
    })
    .await
}

/// A refused client: the handshake fails, or (TLS 1.3, where the client finishes first)
/// the first read does.
async fn refused(server: &SimServer, config: Arc<ClientConfig>) {
    let mut events = server.events();
    if let Ok(mut client) = connect(server, config).await {
        let options = client.options();
        let _ = tokio::io::AsyncWriteExt::write_all(&mut client.stream, &options.to_bytes()).await;
        assert!(matches!(client.read().await, Read::Closed));
    }
    let mut failed = false;
    while !failed {
        match tokio::time::timeout(crate::support::PATIENCE, events.recv()).await {
            Ok(Ok(SimEvent::HandshakeFailed { .. })) => failed = true,
            Ok(Ok(_)) => {}
            other => panic!("no HandshakeFailed event: {other:?}"),
        }
    }
    assert_eq!(server.connection_count(), 0);
}

#[tokio::test]
async fn mutual_tls_accepts_a_trusted_client() {
    let pki = TestPki::localhost().unwrap();
    let server = tls_server(pki.server_tls(true)).await;
    let mut client = connect(&server, pki.client_config(ClientIdentity::Trusted).unwrap())
        .await
        .unwrap();
    let options = client.options();
    client.send(&options).await;
    assert_eq!(client.response().await.status().as_u16(), 200);
    eventually("one connection", || server.connection_count() == 1).await;
    // The simulator says TLS in its Via.
    let subscribe = client.subscribe(&[crate::support::uri("a")], 60);
    client.send(&subscribe).await;
    client.response().await;
    let notify = client.request().await;
    assert_eq!(
        notify.headers().top_via().unwrap().unwrap().transport,
        "TLS"
    );
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_certificate() {
    let pki = TestPki::localhost().unwrap();
    let server = tls_server(pki.server_tls(true)).await;
    refused(&server, pki.client_config(ClientIdentity::None).unwrap()).await;
}

#[tokio::test]
async fn mutual_tls_refuses_a_certificate_from_another_ca() {
    let pki = TestPki::localhost().unwrap();
    let server = tls_server(pki.server_tls(true)).await;
    refused(
        &server,
        pki.client_config(ClientIdentity::Untrusted).unwrap(),
    )
    .await;
}

#[tokio::test]
async fn plain_tls_needs_no_client_certificate() {
    let pki = TestPki::localhost().unwrap();
    let server = tls_server(pki.server_tls(false)).await;
    let mut client = connect(&server, pki.client_config(ClientIdentity::None).unwrap())
        .await
        .unwrap();
    let options = client.options();
    client.send(&options).await;
    assert_eq!(client.response().await.status().as_u16(), 200);
}

#[tokio::test]
async fn a_client_that_trusts_another_ca_refuses_the_simulator() {
    let pki = TestPki::localhost().unwrap();
    let server = tls_server(pki.server_tls(true)).await;
    // The same identity, but the roots of the unrelated CA.
    let stranger = TestPki {
        ca_pem: pki.other_ca_pem.clone(),
        ..pki.clone()
    };
    let error = connect(
        &server,
        stranger.client_config(ClientIdentity::Trusted).unwrap(),
    )
    .await
    .err()
    .expect("the handshake fails on the client's side");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn pem_files_configure_the_server() {
    let dir = std::env::temp_dir().join(format!("presence-sfb-sim-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = TestPki::localhost().unwrap();
    let files = pki.write_to(&dir).unwrap();
    let tls =
        ServerTls::from_files(&files.server_cert, &files.server_key, Some(&files.ca)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let server = tls_server(tls).await;
    let mut client = connect(&server, pki.client_config(ClientIdentity::Trusted).unwrap())
        .await
        .unwrap();
    let options = client.options();
    client.send(&options).await;
    assert_eq!(client.response().await.status().as_u16(), 200);
}
