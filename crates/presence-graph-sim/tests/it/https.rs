//! The same over HTTPS (rustls, ring), with a throw-away CA.

use std::sync::Arc;

use presence_graph_sim::{Availability, GraphSimServer, ServerConfig, SimConfig, SimUser};
use presence_testpki::{ClientIdentity, TestPki};
use serde_json::json;

use crate::support::{Client, ID};

#[tokio::test]
async fn https_serves_tokens_and_presence() {
    let (config, pki) = ServerConfig {
        sim: SimConfig::default().with_generated_users(2),
        ..ServerConfig::default()
    }
    .with_self_signed_tls()
    .unwrap();
    let server = GraphSimServer::start(config).await.unwrap();
    assert!(server.is_tls());
    assert!(
        server.base_url().starts_with("https://localhost:"),
        "{}",
        server.base_url()
    );
    let client = Client::tls(
        server.local_addr(),
        pki.client_config(ClientIdentity::None).unwrap(),
    );
    let token = client.token().await;
    let id = SimUser::generated(1).id;
    let reply = client
        .post_json(
            &format!("/v1.0/users/{id}/presence/setPresence"),
            &token,
            &json!({"sessionId": ID, "availability": "DoNotDisturb", "activity": "Presenting"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        server.shows(&id).unwrap().availability,
        Availability::DoNotDisturb
    );
    let shown = client
        .control("GET", "/_sim/users/agent1@contoso.com", &json!(null))
        .await;
    assert_eq!(shown.json()["activity"], "Presenting");

    // A client that trusts another CA fails the handshake; the server goes on.
    let stranger = TestPki::localhost().unwrap();
    let untrusting = Client::tls(
        server.local_addr(),
        stranger.client_config(ClientIdentity::None).unwrap(),
    );
    assert!(
        untrusting
            .send("GET", "/v1.0/users/x", &[], b"")
            .await
            .is_err()
    );
    // Plain HTTP to the TLS port gets no HTTP answer either.
    assert!(
        Client::plain(server.local_addr())
            .send("GET", "/", &[], b"")
            .await
            .is_err()
    );
    assert_eq!(
        client
            .get(&format!("/v1.0/users/{id}"), &token)
            .await
            .status,
        200
    );
    server.shutdown().await;
}

#[tokio::test]
async fn any_rustls_configuration_can_be_served() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let tls = pki.server_tls(false).server_config().unwrap();
    let server = GraphSimServer::start(ServerConfig {
        tls: Some(Arc::clone(&tls)),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let client = Client::tls(
        server.local_addr(),
        pki.client_config(ClientIdentity::None).unwrap(),
    );
    let reply = client
        .token_reply("contoso.onmicrosoft.com", ID, "wrong")
        .await;
    assert_eq!(reply.status, 401);
    server.shutdown().await;
}
