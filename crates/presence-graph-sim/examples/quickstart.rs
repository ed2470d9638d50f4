//! Start the simulator, get a token, set a user's presence, and see what Teams shows.
//!
//! ```text
//! cargo run -p presence-graph-sim --example quickstart
//! ```

use presence_graph_sim::{GraphSimServer, ServerConfig, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One plain HTTP/1.1 request on a fresh connection: (status, body).
async fn request(
    server: &GraphSimServer,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr()).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Length: {}\r\n{headers}\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    tcp.write_all(body.as_bytes()).await?;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = GraphSimServer::start(ServerConfig {
        sim: SimConfig::default().with_generated_users(3),
        ..ServerConfig::default()
    })
    .await?;
    println!("token URL: {}", server.token_url());
    println!("Graph:     {}", server.graph_url());

    // 1. A client-credentials token.
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}\
         &scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        SimConfig::DEFAULT_CLIENT_ID,
        SimConfig::DEFAULT_CLIENT_SECRET
    );
    let (status, body) = request(
        &server,
        "POST",
        "/contoso.onmicrosoft.com/oauth2/v2.0/token",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &form,
    )
    .await?;
    let json: serde_json::Value = serde_json::from_str(&body)?;
    let token = json["access_token"].as_str().ok_or("no token")?.to_owned();
    println!("token:     {status}, expires in {} s", json["expires_in"]);

    // 2. setPresence for agent1 (by object id).
    let id = server.user_id("agent1@contoso.com").ok_or("no user")?;
    let set = serde_json::json!({
        "sessionId": SimConfig::DEFAULT_CLIENT_ID,
        "availability": "Busy",
        "activity": "InACall",
        "expirationDuration": "PT1H",
    });
    let (status, _) = request(
        &server,
        "POST",
        &format!("/v1.0/users/{id}/presence/setPresence"),
        &format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"),
        &set.to_string(),
    )
    .await?;
    println!("setPresence: {status}");

    // 3. What Teams shows now.
    let shown = server.shows("agent1@contoso.com").ok_or("no user")?;
    println!(
        "agent1 shows {}/{} (sequence {})",
        shown.availability, shown.activity, shown.sequence_number
    );
    assert_eq!(shown.activity, "InACall");
    server.shutdown().await;
    Ok(())
}
