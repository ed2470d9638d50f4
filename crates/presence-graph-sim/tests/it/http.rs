//! The Graph and token endpoints over plain HTTP.

use presence_graph_sim::{Availability, Budget, GraphSimServer, ServerConfig, SimConfig, SimUser};
use serde_json::json;

use crate::support::{Client, ID, SECRET};

async fn server(sim: SimConfig) -> GraphSimServer {
    GraphSimServer::start(ServerConfig {
        sim,
        ..ServerConfig::default()
    })
    .await
    .expect("a server")
}

#[tokio::test]
async fn start_token_set_presence_shows() {
    let server = server(SimConfig::default().with_generated_users(3)).await;
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(server.authority(), server.base_url());
    assert_eq!(server.graph_url(), format!("{}/v1.0", server.base_url()));
    assert_eq!(
        server.token_url(),
        format!(
            "{}/contoso.onmicrosoft.com/oauth2/v2.0/token",
            server.base_url()
        )
    );
    let client = Client::of(&server);
    let token = client.token().await;

    let user = client
        .get("/v1.0/users/agent2@contoso.com?$select=id", &token)
        .await;
    assert_eq!(user.status, 200);
    let id = user.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(id, SimUser::generated(2).id);

    let reply = client
        .post_json(
            &format!("/v1.0/users/{id}/presence/setPresence"),
            &token,
            &json!({"sessionId": ID, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert!(reply.header("request-id").is_some());

    let shown = server.shows("agent2@contoso.com").unwrap();
    assert_eq!(
        (shown.availability, shown.activity.as_str()),
        (Availability::Busy, "InACall")
    );

    let presence = client
        .get(&format!("/v1.0/communications/presences/{id}"), &token)
        .await;
    assert_eq!(presence.json()["availability"], "Busy");
    let batch = client
        .post_json(
            "/v1.0/communications/getPresencesByUserId",
            &token,
            &json!({"ids": [id, SimUser::generated(1).id]}),
        )
        .await;
    let value = batch.json()["value"].clone();
    assert_eq!(value[0]["activity"], "InACall");
    assert_eq!(value[1]["availability"], "Offline");

    let writes = server.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].app.as_deref(), Some(ID));
    assert_eq!(writes[0].status, 200);
    let stats = server.stats();
    assert_eq!(stats.tokens_issued, 1);
    assert_eq!(stats.accepted, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_keep_their_headers_on_the_wire() {
    let server = server(SimConfig {
        budget: Budget {
            requests: 1,
            window: std::time::Duration::from_secs(3600),
        },
        ..SimConfig::default().with_generated_users(1)
    })
    .await;
    let client = Client::of(&server);
    let id = SimUser::generated(1).id;
    let path = format!("/v1.0/users/{id}/presence");

    let reply = client
        .send("GET", &path, &[("client-request-id", "abc-123")], b"")
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.code(), "InvalidAuthenticationToken");
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(
        reply.json()["error"]["innerError"]["client-request-id"],
        "abc-123"
    );
    assert_eq!(reply.header("client-request-id"), Some("abc-123"));

    let wrong = client
        .token_reply("contoso.onmicrosoft.com", ID, "wrong")
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "invalid_client");
    assert_eq!(wrong.json()["error_codes"][0], 7000215);

    let token = client.token().await;
    assert_eq!(client.get(&path, &token).await.status, 200);
    let throttled = client.get(&path, &token).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.code(), "TooManyRequests");
    let retry_after: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after));
    assert_eq!(server.stats().refused_budget.get(ID), Some(&1));

    server.fail_next(1, 503, Some(2)).unwrap();
    let failed = client.get(&format!("/v1.0/users/{id}"), &token).await;
    assert_eq!(
        (failed.status, failed.code().as_str()),
        (503, "ServiceUnavailable")
    );
    assert_eq!(failed.header("retry-after"), Some("2"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_stalled_server_reads_but_does_not_answer_until_released() {
    let server = server(SimConfig::default().with_generated_users(1)).await;
    let client = Client::of(&server);
    let token = client.token().await;
    let id = SimUser::generated(1).id;
    server.stall(true);
    let pending = {
        let client = client.clone();
        let token = token.clone();
        let id = id.clone();
        tokio::spawn(async move {
            client
                .post_json(
                    &format!("/v1.0/users/{id}/presence/setPresence"),
                    &token,
                    &json!({"sessionId": ID, "availability": "Away", "activity": "Away"}),
                )
                .await
        })
    };
    crate::support::eventually(|| server.held_requests() == 1).await;
    assert!(server.writes().is_empty(), "not applied while stalled");
    // The control surface still works.
    assert_eq!(
        client
            .control("GET", "/_sim/stats", &json!(null))
            .await
            .status,
        200
    );
    server.stall(false);
    let reply = pending.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(server.shows(&id).unwrap().availability, Availability::Away);
    assert_eq!(server.held_requests(), 0);

    // Latency: answers come, later.
    server.set_latency(std::time::Duration::from_millis(20));
    assert_eq!(
        client
            .get(&format!("/v1.0/users/{id}"), &token)
            .await
            .status,
        200
    );
    server.clear_faults();

    // A shutdown answers stalled requests 503 and ends.
    server.stall(true);
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.get("/v1.0/users/x", "t").await })
    };
    crate::support::eventually(|| server.held_requests() == 1).await;
    server.shutdown().await;
    let reply = pending.await.unwrap();
    assert_eq!(reply.status, 503);
}

#[tokio::test]
async fn secrets_can_go_wrong_and_right_and_tokens_can_be_revoked() {
    let server = server(SimConfig::default().with_generated_users(1)).await;
    let client = Client::of(&server);
    let token = client.token().await;
    let path = format!("/v1.0/users/{}", SimUser::generated(1).id);
    server.set_client_secret(ID, "new-secret").unwrap();
    assert_eq!(
        client
            .token_reply("contoso.onmicrosoft.com", ID, SECRET)
            .await
            .status,
        401
    );
    assert_eq!(
        client
            .token_reply("contoso.onmicrosoft.com", ID, "new-secret")
            .await
            .status,
        200
    );
    server.set_client_secret(ID, SECRET).unwrap();
    server.revoke_tokens();
    assert_eq!(client.get(&path, &token).await.status, 401);
    let fresh = client.token().await;
    assert_eq!(client.get(&path, &fresh).await.status, 200);
    // By tenant id too.
    let tenant_id = server.tenant_id().to_owned();
    assert_eq!(client.token_reply(&tenant_id, ID, SECRET).await.status, 200);
    assert_eq!(
        client.token_reply("fabrikam.com", ID, SECRET).await.json()["error_codes"][0],
        90002
    );
    server.shutdown().await;
}

#[tokio::test]
async fn events_narrate_what_happens() {
    let server = server(SimConfig::default().with_generated_users(1)).await;
    let mut events = server.events();
    let client = Client::of(&server);
    let token = client.token().await;
    let id = SimUser::generated(1).id;
    client
        .post_json(
            &format!("/v1.0/users/{id}/presence/setPresence"),
            &token,
            &json!({"sessionId": ID, "availability": "Busy", "activity": "InACall"}),
        )
        .await;
    let first = events.recv().await.unwrap();
    assert!(
        matches!(first, presence_graph_sim::SimEvent::TokenIssued { .. }),
        "{first:?}"
    );
    let second = events.recv().await.unwrap();
    assert_eq!(
        second.to_string(),
        format!("setPresence by {ID} for {id}: Busy/InACall")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let server = server(SimConfig::default()).await;
    let client = Client::of(&server);
    let big = vec![b'a'; 1024 * 1024 + 1];
    let reply = client
        .send(
            "POST",
            "/v1.0/communications/getPresencesByUserId",
            &[],
            &big,
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 413);
    server.shutdown().await;
}
