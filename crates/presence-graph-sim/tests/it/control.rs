//! The `/_sim/` control API.

use presence_graph_sim::{Fault, GraphSimServer, ServerConfig, SimConfig, SimUser};
use serde_json::json;

use crate::support::{Client, ID};

#[tokio::test]
async fn the_control_api_drives_the_world() {
    let server = GraphSimServer::start(ServerConfig {
        sim: SimConfig::default().with_generated_users(2),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let client = Client::of(&server);
    let id = SimUser::generated(1).id;

    let reply = client
        .control(
            "PUT",
            "/_sim/users/agent1@contoso.com/client-presence",
            &json!({"availability": "Busy", "activity": "InACall"}),
        )
        .await;
    assert_eq!(reply.status, 204);
    let shown = client
        .control("GET", &format!("/_sim/users/{id}"), &json!(null))
        .await;
    assert_eq!(shown.status, 200);
    let shown = shown.json();
    assert_eq!(shown["availability"], "Busy");
    assert_eq!(shown["activity"], "InACall");
    assert_eq!(shown["upn"], "agent1@contoso.com");
    assert_eq!(shown["sessions"][0]["source"], "teams-client");
    assert_eq!(
        shown["sessions"][0]["expiresInSeconds"],
        serde_json::Value::Null
    );

    let reply = client
        .control(
            "DELETE",
            "/_sim/users/agent1@contoso.com/client-presence",
            &json!(null),
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(server.shows(&id).unwrap().activity, "Offline");

    for (path, body, status) in [
        (
            "/_sim/users/ghost@contoso.com/client-presence",
            json!({"availability": "Busy", "activity": "InACall"}),
            404,
        ),
        (
            "/_sim/users/agent1@contoso.com/client-presence",
            json!({"availability": "Sleepy", "activity": "Zzz"}),
            400,
        ),
        (
            "/_sim/users/agent1@contoso.com/client-presence",
            json!({"availability": "Busy"}),
            400,
        ),
    ] {
        assert_eq!(
            client.control("PUT", path, &body).await.status,
            status,
            "{body}"
        );
    }
    assert_eq!(
        client
            .control("GET", "/_sim/users/ghost", &json!(null))
            .await
            .status,
        404
    );

    let added = client
        .control("POST", "/_sim/users", &json!({"upn": "new@contoso.com"}))
        .await;
    assert_eq!(added.status, 201);
    assert_eq!(added.json()["id"], SimUser::new("new@contoso.com").id);

    // Faults by JSON.
    let token = client.token().await;
    let reply = client
        .control(
            "POST",
            "/_sim/faults",
            &json!({"fault": "fail_next", "count": 1, "status": 503, "retry_after": 3}),
        )
        .await;
    assert_eq!(reply.status, 204);
    let failed = client.get(&format!("/v1.0/users/{id}"), &token).await;
    assert_eq!(
        (failed.status, failed.header("retry-after")),
        (503, Some("3"))
    );
    client
        .control("POST", "/_sim/faults", &json!({"fault": "revoke_tokens"}))
        .await;
    assert_eq!(
        client
            .get(&format!("/v1.0/users/{id}"), &token)
            .await
            .status,
        401
    );
    let token = client.token().await;
    client
        .control(
            "POST",
            "/_sim/faults",
            &json!({"fault": "throttle_for", "seconds": 3600, "retry_after": 9}),
        )
        .await;
    let throttled = client
        .get(&format!("/v1.0/users/{id}/presence"), &token)
        .await;
    assert_eq!(
        (throttled.status, throttled.header("retry-after")),
        (429, Some("9"))
    );
    client
        .control(
            "POST",
            "/_sim/faults",
            &json!({"fault": "set_client_secret", "client_id": ID, "secret": "x"}),
        )
        .await;
    assert_eq!(
        client
            .token_reply("contoso.onmicrosoft.com", ID, "x")
            .await
            .status,
        200
    );
    assert_eq!(
        client
            .control("POST", "/_sim/faults/clear", &json!(null))
            .await
            .status,
        204
    );
    assert_eq!(
        client
            .get(&format!("/v1.0/users/{id}/presence"), &token)
            .await
            .status,
        200
    );
    for bad in [
        json!({"fault": "fail_next", "count": 1, "status": 200}),
        json!({"fault": "fail_for", "seconds": -1, "status": 503}),
        json!({"fault": "explode"}),
        json!({"fault": "set_client_secret", "client_id": "nobody", "secret": "x"}),
    ] {
        let status = client.control("POST", "/_sim/faults", &bad).await.status;
        assert!(status == 400 || status == 404, "{bad}: {status}");
    }
    // Huge durations are fine (they last "forever").
    let huge = json!({"fault": "throttle_for", "seconds": 1e18, "retry_after": 1});
    assert_eq!(
        client.control("POST", "/_sim/faults", &huge).await.status,
        204
    );
    let throttled = client
        .get(&format!("/v1.0/users/{id}/presence"), &token)
        .await;
    assert_eq!(throttled.status, 429);
    client
        .control("POST", "/_sim/faults/clear", &json!(null))
        .await;
    let raw = client
        .send("POST", "/_sim/faults", &[], b"{oops")
        .await
        .unwrap();
    assert_eq!(raw.status, 400);

    let stats = client
        .control("GET", "/_sim/stats", &json!(null))
        .await
        .json();
    assert_eq!(stats["tokensIssued"], 3);
    assert!(stats["faultsApplied"].as_u64().unwrap() >= 2);
    let writes = client.control("GET", "/_sim/writes", &json!(null)).await;
    assert_eq!(writes.json(), json!([]));

    // Secrets stay out of Debug output.
    let fault = Fault::SetClientSecret {
        client_id: ID.to_owned(),
        secret: "hunter2".to_owned(),
    };
    assert!(!format!("{fault:?}").contains("hunter2"));
    server.apply_fault(fault).unwrap();

    // Shutdown over the API.
    assert_eq!(
        client
            .control("POST", "/_sim/shutdown", &json!(null))
            .await
            .status,
        202
    );
    server.stopped().await;
    server.shutdown().await;
}
