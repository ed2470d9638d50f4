//! The real `presence-bridge run` serving Skype for Business and Microsoft Teams at once,
//! against both simulators on loopback, driven over the contact-centre WebSocket and the
//! admin API.

use std::process::Command;
use std::time::Duration;

use presence_graph_sim::{GraphSimServer, ServerConfig, SimConfig};
use presence_model::{SipUri, StateIndex};
use presence_tlib::{ClientRequest, ServerEvent};
use tokio::time::{Instant, sleep};

use crate::harness::{Client, Daemon, PROFILES, dn, drive};
use crate::support::{Scratch, example, run, stderr, stdout};

/// The Teams users of the test tenant.
const TEAMS_USERS: [&str; 3] = [
    "agent2@contoso.com",
    "agent3@contoso.com",
    "expert3@contoso.com",
];

async fn graph() -> GraphSimServer {
    let mut sim = SimConfig {
        seed: 7,
        ..SimConfig::default()
    };
    for upn in TEAMS_USERS {
        sim = sim.with_user(upn);
    }
    GraphSimServer::start(ServerConfig {
        sim,
        ..ServerConfig::default()
    })
    .await
    .expect("the Graph simulator starts")
}

async fn sfb() -> presence_sfb_sim::SimServer {
    presence_sfb_sim::SimServer::start(presence_sfb_sim::ServerConfig {
        sim: presence_sfb_sim::SimConfig {
            seed: 7,
            ..presence_sfb_sim::SimConfig::default()
        },
        ..presence_sfb_sim::ServerConfig::default()
    })
    .await
    .expect("the SfB simulator starts")
}

/// The `[teams]` table for the simulator, with the secret given as `secret`.
fn teams_table(graph: &GraphSimServer, secret: &str) -> String {
    format!(
        r#"
[teams]
tenant = "{tenant}"
client-id = "{client_id}"
{secret}
authority = "{authority}"
graph-url = "{graph_url}"
poll-interval = "1s"
reconnect-initial = "200ms"
reconnect-max = "1s"

[teams.states]
IDLE_NOTREADY = "Away/Away"
IDLE_ACW = "DoNotDisturb/Presenting"
IDLE_AWAY = "Away/Away"
"#,
        tenant = graph.tenant(),
        client_id = SimConfig::DEFAULT_CLIENT_ID,
        authority = graph.authority(),
        graph_url = graph.graph_url(),
    )
}

/// SfB and Teams DNs: 5001/5002 push on SfB, 5003 push on Teams, 6001 pull on SfB, 6003 pull
/// on Teams.
fn hybrid(pool: &str, teams: &str) -> String {
    format!(
        r#"
[options.TServer]
presence-profile = "Pull"
presence-platform = "sfb"
{PROFILES}
[dn."5001"]
type = "Extension"
uri = "sip:agent1@contoso.com"
annex.TServer = {{ presence-profile = "Push" }}

[dn."5002"]
type = "Extension"
uri = "sip:agent2@contoso.com"
annex.TServer = {{ presence-profile = "Push" }}

[dn."5003"]
type = "Extension"
uri = "sip:agent3@contoso.com"
platform = "teams"
annex.TServer = {{ presence-profile = "Push" }}

[dn."6001"]
type = "Extension"
uri = "sip:expert1@contoso.com"

[dn."6003"]
type = "Extension"
uri = "sip:expert3@contoso.com"
platform = "teams"

[sfb]
pool = "{pool}"
transport = "tcp"
application-uri = "sip:presence-bridge@contoso.com"
reconnect-initial = "100ms"
{teams}
[cti]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
"#
    )
}

fn inline_secret() -> String {
    format!("client-secret = \"{}\"", SimConfig::DEFAULT_CLIENT_SECRET)
}

/// What Teams shows for `upn`: (availability/activity, status message, the bridge has a
/// session).
fn teams_shows(graph: &GraphSimServer, upn: &str) -> Option<(String, Option<String>, bool)> {
    graph.shows(upn).map(|s| {
        let bridge = s
            .sessions
            .iter()
            .any(|session| session.source == SimConfig::DEFAULT_CLIENT_ID);
        (
            format!("{}/{}", s.availability.as_str(), s.activity),
            s.status_message,
            bridge,
        )
    })
}

/// Waits until `check` holds for what Teams shows of `upn`.
async fn teams_until(
    graph: &GraphSimServer,
    upn: &str,
    mut check: impl FnMut(&(String, Option<String>, bool)) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if teams_shows(graph, upn).is_some_and(|s| check(&s)) {
            return true;
        }
        sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn ready(daemon: &Daemon) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = daemon.http("GET", "/readyz");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if status == 200 || Instant::now() > deadline {
            return json;
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// What each of the 15 combinations shows on Teams with the example's `[teams.states]`:
/// the pair, and the status message (`None`: the bridge's session and message are cleared,
/// the user's own presence shows).
fn expected(index: StateIndex) -> (&'static str, Option<&'static str>) {
    match index.get() {
        1 | 11..=15 => ("Offline/Offline", None),
        2 => ("Available/Available", Some("I am available")),
        3 => ("Away/Away", Some("I am not available")),
        4 => (
            "DoNotDisturb/Presenting",
            Some("I am in After Call Work, do not disturb me"),
        ),
        5 => ("Away/Away", Some("I am away from my desk")),
        _ => (
            "Busy/InACall",
            Some("Working with customer, do not disturb"),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_user_shows_the_right_pair_and_message_for_all_fifteen_combinations() {
    let sfb = sfb().await;
    let graph = graph().await;
    let config = hybrid(
        &sfb.local_addr().to_string(),
        &teams_table(&graph, &inline_secret()),
    );
    let daemon = Daemon::start("teams-push", &config);
    let json = ready(&daemon).await;
    assert_eq!(json["ready"], true, "{json}");
    let mut client = Client::connect(&daemon).await;
    for index in StateIndex::ALL.into_iter().rev() {
        drive(&mut client, "5003", index.agent(), index.device()).await;
        let (pair, message) = expected(index);
        let ok = teams_until(&graph, "agent3@contoso.com", |(p, m, bridge)| {
            p == pair && m.as_deref() == message && *bridge == message.is_some()
        })
        .await;
        assert!(
            ok,
            "row {index} ({} / {}): Teams shows {:?}, want {pair} with {message:?}",
            index.agent(),
            index.device(),
            teams_shows(&graph, "agent3@contoso.com")
        );
    }
    // The DN view names the platform and the user.
    let (status, body) = daemon.http("GET", "/v1/dns/5003");
    assert_eq!(status, 200);
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["platform"], "teams");
    assert_eq!(view["user"], "agent3@contoso.com");
    // SfB saw nothing of this user.
    let on_sfb = SipUri::new("sip:agent3@contoso.com").unwrap();
    assert!(sfb.shows(&on_sfb).is_none());
    // The metrics name the platform.
    let (_, metrics) = daemon.http("GET", "/metrics");
    for needle in [
        "presence_transport_connected{platform=\"teams\"} 1",
        "presence_transport_connected{platform=\"sfb\"} 1",
        "presence_publications_total{platform=\"teams\",result=\"ok\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
    }
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_user_on_teams_drives_dnd_only_on_change() {
    let sfb = sfb().await;
    let graph = graph().await;
    let config = hybrid(
        &sfb.local_addr().to_string(),
        &teams_table(&graph, &inline_secret()),
    );
    let daemon = Daemon::start("teams-pull", &config);
    assert_eq!(ready(&daemon).await["ready"], true);
    let mut client = Client::connect(&daemon).await;
    let registered = client
        .request(ClientRequest::RegisterAddress {
            this_dn: dn("6003"),
        })
        .await;
    let ServerEvent::EventRegistered { dnd: known, .. } = registered else {
        panic!("{registered:?}")
    };
    let dnd = |events: Vec<ServerEvent>| -> Vec<(&'static str, u64)> {
        events
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::EventDNDOn {
                    this_dn,
                    availability,
                    ..
                } if this_dn.as_str() == "6003" => Some(("on", availability)),
                ServerEvent::EventDNDOff {
                    this_dn,
                    availability,
                    ..
                } if this_dn.as_str() == "6003" => Some(("off", availability)),
                _ => None,
            })
            .collect()
    };
    // The first answer after the subscription always reports (Offline: no session yet):
    // as an event, or, when it came before the registration, in its answer.
    let first = dnd(client.collect(Duration::from_millis(2500)).await);
    match known {
        Some(presence_model::DndState::On) => assert!(first.is_empty(), "{first:?}"),
        _ => assert_eq!(
            first,
            vec![("on", 18000)],
            "the first update always reports"
        ),
    }
    for (availability, activity, want) in [
        ("Available", "Available", Some(("off", 3500))),
        ("AvailableIdle", "Inactive", None), // 5000: still inside 3000-5999
        ("Busy", "InACall", Some(("on", 6500))),
        ("DoNotDisturb", "Presenting", None), // 9500: still unavailable
        ("Available", "Available", Some(("off", 3500))),
    ] {
        graph
            .set_client_presence(
                "expert3@contoso.com",
                availability.parse().unwrap(),
                activity,
            )
            .unwrap();
        let got = dnd(client.collect(Duration::from_millis(2200)).await);
        assert_eq!(
            got,
            want.into_iter().collect::<Vec<_>>(),
            "after {availability}/{activity}"
        );
    }
    let (_, body) = daemon.http("GET", "/v1/dns/6003");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            view["platform"].as_str(),
            view["last_reported_availability"].as_u64(),
            view["dnd"].as_str()
        ),
        (Some("teams"), Some(3500), Some("off"))
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_a_dn_from_sfb_to_teams() {
    let sfb = sfb().await;
    let graph = graph().await;
    let pool = sfb.local_addr().to_string();
    let teams = teams_table(&graph, &inline_secret());
    let daemon = Daemon::start("teams-move", &hybrid(&pool, &teams));
    assert_eq!(ready(&daemon).await["ready"], true);
    let mut client = Client::connect(&daemon).await;
    drive(
        &mut client,
        "5002",
        presence_model::AgentState::Ready,
        presence_model::DeviceState::Busy,
    )
    .await;
    let agent2 = SipUri::new("sip:agent2@contoso.com").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sfb.shows(&agent2).map(|s| s.availability) != Some(7001) {
        assert!(Instant::now() < deadline, "SfB shows the call first");
        sleep(Duration::from_millis(20)).await;
    }
    assert!(teams_shows(&graph, "agent2@contoso.com").is_some_and(|(_, _, bridge)| !bridge));
    // Edit the file: 5002 now lives on Teams. Reload.
    let moved = hybrid(&pool, &teams).replace(
        "uri = \"sip:agent2@contoso.com\"\n",
        "uri = \"sip:agent2@contoso.com\"\nplatform = \"teams\"\n",
    );
    std::fs::write(daemon.config_path(), moved).unwrap();
    let (status, body) = daemon.http("POST", "/v1/reload");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["report"]["moved"], 1, "{report}");
    // Teams shows the agent's current state; SfB no longer shows the bridge's publication.
    assert!(
        teams_until(&graph, "agent2@contoso.com", |(pair, message, bridge)| {
            pair == "Busy/InACall"
                && message.as_deref() == Some("Working with customer, do not disturb")
                && *bridge
        })
        .await,
        "Teams shows {:?}",
        teams_shows(&graph, "agent2@contoso.com")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while sfb.shows(&agent2).is_some() {
        assert!(
            Instant::now() < deadline,
            "SfB still shows the bridge's publication: {:?}",
            sfb.shows(&agent2)
        );
        sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = daemon.http("GET", "/v1/dns/5002");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (view["platform"].as_str(), view["agent_state"].as_str()),
        (Some("teams"), Some("Ready"))
    );
    // And back: a second edit returns it to SfB, and Teams' session ends.
    std::fs::write(daemon.config_path(), hybrid(&pool, &teams)).unwrap();
    let (status, _) = daemon.http("POST", "/v1/reload");
    assert_eq!(status, 200);
    assert!(
        teams_until(&graph, "agent2@contoso.com", |(_, _, bridge)| !bridge).await,
        "the bridge's Teams session ends"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while sfb.shows(&agent2).map(|s| s.availability) != Some(7001) {
        assert!(Instant::now() < deadline, "SfB shows the call again");
        sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_secret_is_logged_once_and_recovers() {
    let sfb = sfb().await;
    let graph = graph().await;
    let config = hybrid(
        &sfb.local_addr().to_string(),
        &teams_table(&graph, &inline_secret()),
    );
    let daemon = Daemon::start("teams-revoked", &config);
    assert_eq!(ready(&daemon).await["ready"], true);
    // The secret is rotated in Entra and the running tokens revoked.
    graph
        .set_client_secret(SimConfig::DEFAULT_CLIENT_ID, "rotated-secret")
        .unwrap();
    graph.revoke_tokens();
    let mut client = Client::connect(&daemon).await;
    // Traffic that needs a token: a state change of the Teams agent.
    client.request(crate::harness::login("5003")).await;
    // /readyz goes unready for Teams, and says why once the token request was refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let teams_entry = |json: &serde_json::Value| {
        json["transports"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["platform"] == "teams"))
            .cloned()
            .unwrap_or_default()
    };
    let readyz = loop {
        let (status, body) = daemon.http("GET", "/readyz");
        let json = serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default();
        let teams = teams_entry(&json);
        if status == 503
            && teams["connected"] == false
            && teams["detail"]
                .as_str()
                .is_some_and(|d| d.contains("AADSTS7000215"))
        {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz goes unready for Teams with Entra's description: {status} {json}"
        );
        sleep(Duration::from_millis(50)).await;
    };
    let sfb_entry = readyz["transports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["platform"] == "sfb")
        .unwrap();
    assert_eq!(sfb_entry["connected"], true, "SfB is not affected");
    // Several token attempts later (back-off 200 ms .. 1 s), the refusal was logged once,
    // at error level, with Entra's description.
    sleep(Duration::from_secs(3)).await;
    let refusals = daemon.logged("AADSTS7000215");
    assert_eq!(refusals.len(), 1, "logged once:\n{}", refusals.join("\n"));
    assert!(refusals[0].contains("\"ERROR\""), "{}", refusals[0]);
    assert!(
        !daemon.log_text().contains(SimConfig::DEFAULT_CLIENT_SECRET)
            && !daemon.log_text().contains("rotated-secret"),
        "no secret in the logs"
    );
    // The secret becomes valid again: the bridge recovers and publishes the latest state.
    graph
        .set_client_secret(
            SimConfig::DEFAULT_CLIENT_ID,
            SimConfig::DEFAULT_CLIENT_SECRET,
        )
        .unwrap();
    let json = ready(&daemon).await;
    assert_eq!(json["ready"], true, "{json}");
    assert!(
        teams_until(&graph, "agent3@contoso.com", |(pair, message, _)| {
            pair == "Away/Away" && message.as_deref() == Some("I am not available")
        })
        .await,
        "after recovery Teams shows NotReady: {:?}",
        teams_shows(&graph, "agent3@contoso.com")
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

/// `check` and `run` refuse a bad `[teams]` table, naming the key.
#[test]
fn a_bad_teams_table_is_refused_by_check_and_run_with_the_key_named() {
    let dir = Scratch::new("teams-bad");
    std::fs::write(
        dir.0.join("map.xml"),
        std::fs::read(example("agent-states.xml")).unwrap(),
    )
    .unwrap();
    let good = "tenant = \"contoso.onmicrosoft.com\"\nclient-id = \"6e5f9a3c-1b2d-4c8e-9f0a-7b6c5d4e3f21\"\nclient-secret = \"x\"\n";
    for (name, table, key) in [
        (
            "missing-tenant",
            good.replace("tenant = \"contoso.onmicrosoft.com\"\n", ""),
            "tenant",
        ),
        (
            "bad-client-id",
            good.replace("6e5f9a3c-1b2d-4c8e-9f0a-7b6c5d4e3f21", "not-a-guid"),
            "client-id",
        ),
        (
            "secret-file-missing",
            good.replace(
                "client-secret = \"x\"",
                "client-secret-file = \"no-such-secret\"",
            ),
            "client-secret-file",
        ),
    ] {
        let text = hybrid("127.0.0.1:1", &format!("[teams]\n{table}"));
        let config = dir.write(&format!("{name}.toml"), &text);
        let path = config.to_str().unwrap();
        let checked = run(&["check", "--config", path]);
        let out = format!("{}{}", stdout(&checked), stderr(&checked));
        // A missing secret file is a warning for `check` (it may run elsewhere) but `run`
        // cannot start without it.
        if name != "secret-file-missing" {
            assert_eq!(
                checked.status.code(),
                Some(1),
                "{name}: check fails:\n{out}"
            );
        }
        assert!(out.contains(key), "{name}: check names `{key}`:\n{out}");
        let ran = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
            .args(["run", "--config", path, "--no-admin"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&ran.stderr);
        assert_eq!(ran.status.code(), Some(1), "{name}: run refuses:\n{err}");
        assert!(err.contains(key), "{name}: run names `{key}`:\n{err}");
        assert!(!err.contains("client-secret = \"x\""), "no secret echoed");
    }
}

/// `check --online` looks every Teams DN's UPN up in the tenant: one that does not resolve
/// is an error for its DN; the others show their object id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_looks_teams_users_up() {
    let graph = graph().await;
    let dir = Scratch::new("teams-online");
    std::fs::write(
        dir.0.join("map.xml"),
        std::fs::read(example("agent-states.xml")).unwrap(),
    )
    .unwrap();
    let text = hybrid("127.0.0.1:1", &teams_table(&graph, &inline_secret())).replace(
        "uri = \"sip:expert3@contoso.com\"",
        "uri = \"sip:nobody@contoso.com\"",
    );
    let config = dir.write("bridge.toml", &text);
    let path = config.to_str().unwrap().to_owned();
    let offline = run(&["check", "--config", &path]);
    assert_eq!(
        offline.status.code(),
        Some(0),
        "offline check is the default"
    );
    let online = tokio::task::spawn_blocking(move || {
        run(&["check", "--config", &path, "--online", "--json"])
    })
    .await
    .unwrap();
    assert_eq!(online.status.code(), Some(1), "{}", stdout(&online));
    let report: serde_json::Value = serde_json::from_str(&stdout(&online)).unwrap();
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["dn"] == "6003"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("`nobody@contoso.com` does not resolve")),
        "{report}"
    );
    let agent3 = report["dns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dn"] == "5003")
        .unwrap();
    let id = graph.user_id("agent3@contoso.com").unwrap();
    assert_eq!(agent3["online"], format!("resolved to {id}"), "{agent3}");
    assert!(!stdout(&online).contains(SimConfig::DEFAULT_CLIENT_SECRET));
}
