//! The real `presence-bridge run` against the SfB simulator on loopback, driven over the
//! contact-centre WebSocket and the admin API.

use std::process::Command;
use std::time::Duration;

use presence_model::{SipUri, StateIndex};
use presence_sfb_sim::{ServerConfig, SimConfig, SimServer};
use presence_tlib::{ClientRequest, ErrorCode, ServerEvent};
use tokio::time::{Instant, sleep};

use crate::harness::{Client, Daemon, PROFILES, conn, dn, dnd, drive, login};
use crate::support::Scratch;

pub(crate) fn config(pool: &str) -> String {
    let mut text = format!(
        r#"
[options.TServer]
presence-profile = "Pull"
{PROFILES}
[dn."6001"]
type = "Extension"
uri = "sip:expert1@contoso.com"

[sfb]
pool = "{pool}"
transport = "tcp"
application-uri = "sip:presence-bridge@contoso.com"
retry-initial = "100ms"
reconnect-initial = "100ms"
reconnect-max = "500ms"

[cti]
listen = "127.0.0.1:0"
max-message-bytes = 4096

[admin]
listen = "127.0.0.1:0"
"#
    );
    for i in 1..=5 {
        text.push_str(&format!(
            "\n[dn.\"500{i}\"]\ntype = \"Extension\"\nuri = \"sip:agent{i}@contoso.com\"\nannex.TServer = {{ presence-profile = \"Push\" }}\n"
        ));
    }
    text
}

pub(crate) async fn sim() -> SimServer {
    SimServer::start(ServerConfig {
        sim: SimConfig {
            seed: 5,
            ..SimConfig::default()
        },
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

/// Waits until SfB shows `availability` for `user`.
async fn shows(sim: &SimServer, user: &SipUri, availability: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if sim
            .shows(user)
            .is_some_and(|s| s.availability == availability)
        {
            return true;
        }
        sleep(Duration::from_millis(20)).await;
    }
    false
}

const ROW_AVAILABILITY: [u32; 15] = [
    18000, 3501, 6001, 6001, 4501, 7001, 7001, 7001, 7001, 7001, 18000, 18000, 18000, 18000, 18000,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_flow_through_all_fifteen_combinations() {
    push_flow(&[]).await;
}

/// The same on tokio's multi-thread scheduler (`run --threads 2`; one thread is the default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_flow_on_two_threads() {
    push_flow(&["--threads", "2"]).await;
}

async fn push_flow(run_args: &[&str]) {
    let sim = sim().await;
    let daemon = Daemon::start_args("push", &config(&sim.local_addr().to_string()), run_args);
    if run_args.contains(&"--threads") {
        // The main thread and two workers, at least.
        assert!(daemon.threads() >= 3, "{} threads", daemon.threads());
    }
    let mut client = Client::connect(&daemon).await;
    let agent = SipUri::new("sip:agent1@contoso.com").unwrap();
    assert!(
        shows(&sim, &agent, 18000).await,
        "start-up publishes Logout/Idle"
    );
    // Walk the table backwards so that every step changes what SfB shows at least sometimes.
    for index in StateIndex::ALL.into_iter().rev() {
        drive(&mut client, "5001", index.agent(), index.device()).await;
        let want = ROW_AVAILABILITY[index.slot()];
        assert!(
            shows(&sim, &agent, want).await,
            "row {index}: SfB shows {:?}, want {want}",
            sim.shows(&agent)
        );
        let (status, body) = daemon.http("GET", "/v1/dns/5001");
        assert_eq!(status, 200);
        let view: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(view["agent_state"], index.agent().name(), "row {index}");
        assert_eq!(view["device_state"], index.device().name(), "row {index}");
    }
    let (status, metrics) = daemon.http("GET", "/metrics");
    assert_eq!(status, 200);
    for name in [
        "presence_cti_messages_total",
        "presence_publications_total",
        "presence_transport_connected{platform=\"sfb\"} 1",
        "presence_publications_in_flight",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    let texts = sim.shows(&agent).unwrap().texts;
    assert_eq!(texts[0], (1033, "Logged out".to_owned()));
    assert_eq!(daemon.stop().code(), Some(0), "SIGTERM: a clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_flow_sends_dnd_on_change_to_every_registered_client() {
    let sim = sim().await;
    let daemon = Daemon::start_sfb("pull", &sim.local_addr().to_string());
    let mut first = Client::connect(&daemon).await;
    let mut second = Client::connect(&daemon).await;
    for c in [&mut first, &mut second] {
        assert!(matches!(
            c.request(ClientRequest::RegisterAddress {
                this_dn: dn("6001")
            })
            .await,
            ServerEvent::EventRegistered { .. }
        ));
    }
    let expert = SipUri::new("sip:expert1@contoso.com").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.dialog_count() == 0 {
        assert!(Instant::now() < deadline, "the bridge subscribes");
        sleep(Duration::from_millis(20)).await;
    }
    for (availability, expected) in [
        (6500, Some("on")),
        (9500, None),
        (3500, Some("off")),
        (4500, None),
        (18500, Some("on")),
    ] {
        sim.set_user_presence(&expert, availability, Some("x"));
        let want: Vec<(&str, u64)> = expected
            .map(|s| (s, u64::from(availability)))
            .into_iter()
            .collect();
        assert_eq!(
            dnd(first.collect(Duration::from_millis(500)).await),
            want,
            "{availability}"
        );
        assert_eq!(
            dnd(second.collect(Duration::from_millis(100)).await),
            want,
            "{availability}, second client"
        );
    }
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_pool_drops_the_connection_sfb_shows_every_latest_state() {
    let sim = sim().await;
    let daemon = Daemon::start_sfb("reconnect", &sim.local_addr().to_string());
    let mut client = Client::connect(&daemon).await;
    for i in 1..=5 {
        client.request(login(&format!("500{i}"))).await;
    }
    sim.drop_connections();
    // While the bridge reconnects, agents keep changing state.
    for i in 1..=5 {
        let d = format!("500{i}");
        client
            .request(ClientRequest::RequestAgentReady { this_dn: dn(&d) })
            .await;
        if i % 2 == 0 {
            client
                .request(ClientRequest::EventEstablished {
                    this_dn: dn(&d),
                    conn_id: conn("c9"),
                })
                .await;
        }
    }
    for i in 1..=5u32 {
        let agent = SipUri::new(&format!("sip:agent{i}@contoso.com")).unwrap();
        let want = if i % 2 == 0 { 7001 } else { 3501 };
        assert!(
            shows(&sim, &agent, want).await,
            "agent{i}: {:?}",
            sim.shows(&agent)
        );
    }
    let (status, _) = daemon.http("GET", "/readyz");
    assert_eq!(status, 200);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_half_written_file_is_refused_on_reload_and_removed_dns_tell_their_clients() {
    let sim = sim().await;
    let daemon = Daemon::start_sfb("reload-empty", &sim.local_addr().to_string());
    let mut client = Client::connect(&daemon).await;
    let agent = SipUri::new("sip:agent1@contoso.com").unwrap();
    client.request(login("5001")).await;
    client
        .request(ClientRequest::RequestAgentReady {
            this_dn: dn("5001"),
        })
        .await;
    assert!(matches!(
        client
            .request(ClientRequest::RegisterAddress {
                this_dn: dn("6001")
            })
            .await,
        ServerEvent::EventRegistered { .. }
    ));
    assert!(shows(&sim, &agent, 3501).await);
    let path = daemon.config_path();
    let good = std::fs::read_to_string(&path).unwrap();
    let ready = |daemon: &Daemon| {
        let (status, body) = daemon.http("GET", "/v1/dns/5001");
        assert_eq!(status, 200, "the DN is still there: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["agent_state"], "Ready", "{v}");
    };

    // `: > bridge.toml`, then a reload: refused as `run` refuses it; nothing changes.
    std::fs::write(&path, "").unwrap();
    let (status, body) = daemon.http("POST", "/v1/reload");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("no transport table"), "{body}");
    daemon.signal("HUP");
    sleep(Duration::from_millis(400)).await;
    ready(&daemon);
    assert_eq!(sim.shows(&agent).unwrap().availability, 3501);

    // The same good file rewritten in place (truncate, then two writes) while reloads run:
    // no reload takes a half-written file.
    std::fs::write(&path, &good).unwrap();
    let writer_path = path.clone();
    let writer_text = good.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        // Cut where the first part alone is a valid file with fewer DNs: the worst case.
        let cut = writer_text.find("\n[dn.\"5003\"]").unwrap();
        let (head, tail) = writer_text.split_at(cut);
        for _ in 0..40 {
            let mut file = std::fs::File::create(&writer_path).unwrap();
            file.write_all(head.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            file.write_all(tail.as_bytes()).unwrap();
            drop(file);
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let mut answers = 0;
    while !writer.is_finished() {
        let (status, body) = daemon.http("POST", "/v1/reload");
        answers += 1;
        assert!(
            (status == 200 && body.contains("\"removed\":0") && body.contains("\"dns\":6"))
                || status == 422,
            "a reload during a rewrite: {status} {body}"
        );
    }
    writer.join().unwrap();
    assert!(answers > 0);
    ready(&daemon);
    let (status, body) = daemon.http("POST", "/v1/reload");
    assert_eq!(status, 200, "{body}");
    assert!(
        client.collect(Duration::from_millis(100)).await.is_empty(),
        "nobody was told anything"
    );

    // A valid file without 6001: its registered client is told.
    let fewer = good.replace(
        "[dn.\"6001\"]\ntype = \"Extension\"\nuri = \"sip:expert1@contoso.com\"\n",
        "",
    );
    assert_ne!(fewer, good);
    std::fs::write(&path, &fewer).unwrap();
    let (status, body) = daemon.http("POST", "/v1/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"removed\":1"), "{body}");
    let told = client.collect(Duration::from_millis(300)).await;
    assert!(
        matches!(
            told.as_slice(),
            [ServerEvent::EventError { reference_id: None, error_code: ErrorCode::UnknownDn, error_message }]
                if error_message.contains("`6001`")
        ),
        "{told:?}"
    );
    ready(&daemon);
    // One log line per applied reload, none in Rust's debug form.
    let applied = daemon.logged("configuration reloaded");
    assert!(!applied.is_empty());
    assert!(
        applied.iter().all(|l| !l.contains("ReloadReport")),
        "{applied:?}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_map_is_refused_on_reload_and_the_old_mapping_stays() {
    let sim = sim().await;
    let daemon = Daemon::start_sfb("reload", &sim.local_addr().to_string());
    let mut client = Client::connect(&daemon).await;
    let agent = SipUri::new("sip:agent1@contoso.com").unwrap();
    let map = daemon.dir.0.join("map.xml");
    let good = std::fs::read_to_string(&map).unwrap();
    std::fs::write(&map, good.replace("</agentStates>", "")).unwrap();
    let (status, body) = daemon.http("POST", "/v1/reload");
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("map.xml") && body.contains("running one stays"),
        "{body}"
    );
    daemon.signal("HUP");
    sleep(Duration::from_millis(300)).await;
    // The old mapping is still in force.
    client.request(login("5001")).await;
    client
        .request(ClientRequest::RequestAgentReady {
            this_dn: dn("5001"),
        })
        .await;
    assert!(shows(&sim, &agent, 3501).await);
    // A valid edit applies without a restart and republishes the DNs it affects.
    std::fs::write(
        &map,
        good.replace("availability=\"3501\"", "availability=\"3999\""),
    )
    .unwrap();
    let (status, body) = daemon.http("POST", "/v1/reload");
    assert_eq!(status, 200, "{body}");
    assert!(shows(&sim, &agent, 3999).await, "{:?}", sim.shows(&agent));
    let _ = daemon.config_path();
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_refuses_listener_tables_a_restart_would_refuse() {
    let sim = sim().await;
    let daemon = Daemon::start_sfb("reload-listeners", &sim.local_addr().to_string());
    let path = daemon.config_path();
    let good = std::fs::read_to_string(&path).unwrap();
    for (bad, needle) in [
        (
            "[cti]\nlisten = \"127.0.0.1:0\"\nmax-message-bytes = 1\n",
            "max-message-bytes",
        ),
        ("[admin]\nlisten = \"0.0.0.0:0\"\n", "token"),
    ] {
        // The table replaces the file's own (the daemon's listeners are bound already).
        let table = bad.lines().next().unwrap();
        let mut text = String::new();
        let mut skipping = false;
        for line in good.lines() {
            if line.starts_with('[') {
                skipping = line == table;
            }
            if !skipping {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str(bad);
        std::fs::write(&path, text).unwrap();
        let (status, body) = daemon.http("POST", "/v1/reload");
        assert_eq!(status, 422, "{table}: {body}");
        assert!(body.contains(needle), "{table}: {body}");
    }
    std::fs::write(&path, &good).unwrap();
    let (status, body) = daemon.http("POST", "/v1/reload");
    assert_eq!(status, 200, "{body}");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_event_error_and_everything_carries_on() {
    let sim = sim().await;
    let daemon = Daemon::start_sfb("bad-input", &sim.local_addr().to_string());
    let mut client = Client::connect(&daemon).await;
    let mut other = Client::connect(&daemon).await;
    for (input, code) in [
        ("{not json".to_owned(), ErrorCode::MalformedJson),
        (
            r#"{"message":"RequestCoffee","referenceID":1}"#.to_owned(),
            ErrorCode::UnknownMessage,
        ),
        (
            r#"{"message":"RequestAgentReady","referenceID":2,"thisDN":"9999"}"#.to_owned(),
            ErrorCode::UnknownDn,
        ),
        (
            format!(
                r#"{{"message":"RegisterAddress","referenceID":3,"thisDN":"5001","pad":"{}"}}"#,
                "x".repeat(6000)
            ),
            ErrorCode::MessageTooLarge,
        ),
    ] {
        client.send_raw(&input).await;
        let event = client.next().await;
        assert!(
            matches!(&event, ServerEvent::EventError { error_code, .. } if *error_code == code),
            "{event:?}"
        );
    }
    // The same connection and the other DNs carry on.
    assert!(matches!(
        client.request(login("5002")).await,
        ServerEvent::EventAgentLogin { .. }
    ));
    assert!(matches!(
        other.request(login("5003")).await,
        ServerEvent::EventAgentLogin { .. }
    ));
    let agent3 = SipUri::new("sip:agent3@contoso.com").unwrap();
    assert!(shows(&sim, &agent3, 6001).await);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn run_without_a_transport_table_says_so() {
    let dir = Scratch::new("no-transport");
    let config = dir.write("bridge.toml", "[cti]\nlisten = \"127.0.0.1:0\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .args(["run", "--config", config.to_str().unwrap(), "--no-admin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no transport table")
            && stderr.contains("[sfb]")
            && stderr.contains("[teams]"),
        "{stderr}"
    );
}

#[test]
fn the_demo_runs_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .args(["demo", "--step-ms", "60"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "EventDNDOn on 6002",
        "EventDNDOff on 6001",
        "SfB now shows sip:agent1@contoso.com (DN 5001): 7001 Busy",
        "Работа с клиентом",
        // Teams: the pull user's own presence drives DND, the push user's pairs and texts.
        "EventDNDOn on 6003",
        "Teams now shows agent3@contoso.com (DN 5003): Busy/InACall — status \"Working with customer, do not disturb\"",
        "Teams now shows agent3@contoso.com (DN 5003): Away/Away — status \"I am not available\"",
        "Teams now shows agent3@contoso.com (DN 5003): DoNotDisturb/Presenting",
        // Logged out: the bridge's session ends and the user's own presence shows.
        "(no bridge session: the user's own presence)",
        // agent2's login with PullProfile: the label is the bridge's mode, and the narration
        // says why the DN's DND is what it is (on, from the presence SfB reports first, or
        // not known yet when that came before the subscription).
        "CC → RegisterAddress 5002 (agent2, pull, SfB)",
        "DN 5002 is in pull mode with profile PullProfile (from login), and SfB ",
        "CC → RequestAgentReady 5002 (agent2, push, SfB)",
        // The move of agent2 from SfB to Teams by a reload.
        "SfB: the bridge's publication for sip:agent2@contoso.com (DN 5002) is removed",
        "Teams now shows agent2@contoso.com (DN 5002): Available/Available",
        "demo finished",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_admin_wins_over_the_admin_table_and_start_up_logs_each_listener_once() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let sim = sim().await;
    let dir = Scratch::new("no-admin");
    std::fs::write(
        dir.0.join("map.xml"),
        std::fs::read(crate::support::example("agent-states.xml")).unwrap(),
    )
    .unwrap();
    let config = dir.write("bridge.toml", &config(&sim.local_addr().to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .args(["run", "--config", config.to_str().unwrap(), "--no-admin"])
        .args(["--log-format", "text"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let done = line.contains("bridge running");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let lines = tokio::time::timeout(Duration::from_secs(20), lines)
        .await
        .expect("the daemon starts")
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let running = lines.last().expect("a log line");
    assert!(running.contains("admin=off"), "{running}");
    let listening = lines
        .iter()
        .filter(|l| l.contains("contact-centre link listening"))
        .count();
    assert_eq!(listening, 1, "{lines:#?}");
    assert!(
        lines.iter().all(|l| !l.contains("\u{1b}[")),
        "no colour codes in a log that is not a terminal"
    );
}

/// `config(pool)` with `extra` lines in the `[cti]` table and `admin_extra` in `[admin]`.
fn config_with(pool: &str, extra: &str, admin_extra: &str) -> String {
    let base = config(pool);
    let cti = "[cti]\nlisten = \"127.0.0.1:0\"\n";
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\n";
    assert!(base.contains(cti) && base.contains(admin));
    base.replace(cti, &format!("{cti}{extra}\n"))
        .replace(admin, &format!("{admin}{admin_extra}\n"))
}

/// A GET to the admin API that gives up after `patience`: (status, body), status 0 when
/// there was no answer.
fn admin_get(admin: &str, path: &str, patience: Duration) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(admin) else {
        return (0, String::new());
    };
    stream.set_read_timeout(Some(patience)).unwrap();
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Opens `n` TCP connections to `addr` that never send anything.
async fn silent_sockets(addr: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let connect = tokio::net::TcpStream::connect(addr);
        let socket = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .unwrap_or_else(|_| panic!("connection {i} to {addr}: not even queued in 10 s"));
        sockets.push(socket.unwrap());
    }
    sockets
}

/// Waits until the daemon has closed every socket (end of stream or reset), at most
/// `patience`; returns how many are still open then.
async fn still_open(sockets: &mut [tokio::net::TcpStream], patience: Duration) -> usize {
    use tokio::io::AsyncReadExt;
    let deadline = Instant::now() + patience;
    let mut open = 0;
    for socket in sockets {
        let mut scratch = [0u8; 64];
        match tokio::time::timeout_at(deadline, socket.read(&mut scratch)).await {
            Ok(Ok(0) | Err(_)) => {}
            Ok(Ok(n)) => panic!("a silent connection got an answer: {:?}", &scratch[..n]),
            Err(_) => open += 1,
        }
    }
    open
}

/// The real `presence-bridge run` under `ulimit -n LIMIT`, with its JSON log lines.
struct Limited {
    child: std::process::Child,
    cti: String,
    admin: String,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _dir: Scratch,
}

impl Limited {
    fn start(name: &str, config: &str, open_files: u32) -> Limited {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let dir = Scratch::new(name);
        std::fs::write(
            dir.0.join("map.xml"),
            std::fs::read(crate::support::example("agent-states.xml")).unwrap(),
        )
        .unwrap();
        let path = dir.write("bridge.toml", config);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_presence-bridge"))
            .args(["run", "--config", path.to_str().unwrap()])
            .args(["--log-format", "json", "--log-level", "info"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (running, started) = std::sync::mpsc::channel::<String>();
        let kept = std::sync::Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("bridge running") {
                    let _ = running.send(line.clone());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let line = started
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the daemon did not start: {:?}", logs.lock().unwrap()));
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        let cti = json["fields"]["cti"].as_str().unwrap();
        let admin = json["fields"]["admin"].as_str().unwrap();
        Limited {
            child,
            cti: cti
                .trim_start_matches("ws://")
                .trim_end_matches(presence_cti::PATH)
                .to_owned(),
            admin: admin.trim_start_matches("http://").to_owned(),
            logs,
            _dir: dir,
        }
    }

    fn logged(&self, needle: &str) -> Vec<String> {
        let logs = self.logs.lock().unwrap();
        logs.iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "the daemon logged:\n{}",
                self.logs.lock().unwrap().join("\n")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_past_the_open_file_limit_are_logged_and_shed_and_service_resumes() {
    use futures_util::{SinkExt, StreamExt};
    let sim = sim().await;
    let config = config_with(
        &sim.local_addr().to_string(),
        "handshake-timeout = \"1s\"",
        "handshake-timeout = \"1s\"",
    );
    // `max-connections` stays at 1024, above what 128 open files allow: accept() fails
    // with EMFILE, as in production without `LimitNOFILE=`.
    let daemon = Limited::start("fd-limit", &config, 128);
    let flood = Instant::now();
    let mut cti = silent_sockets(&daemon.cti, 300).await;
    let mut admin = silent_sockets(&daemon.admin, 5).await;
    let patience = Duration::from_secs(60);
    let out_of_files = "out of file descriptors";
    while daemon.logged(out_of_files).is_empty() {
        assert!(
            flood.elapsed() < Duration::from_secs(20),
            "accept() never failed for lack of file descriptors, or it was not logged"
        );
        sleep(Duration::from_millis(50)).await;
    }
    // The daemon closes every silent socket (handshake timeout), those it could not
    // accept at first included, on both listeners.
    assert_eq!(still_open(&mut cti, patience).await, 0, "CTI sockets held");
    assert_eq!(
        still_open(&mut admin, patience).await,
        0,
        "admin sockets held"
    );
    // One line per listener per 10 s at most, however often accept() failed.
    let most = 1 + flood.elapsed().as_secs() / 10;
    let lines = daemon.logged(out_of_files);
    for listener in ["contact-centre link", "admin API"] {
        let n = lines.iter().filter(|l| l.contains(listener)).count() as u64;
        assert!(n <= most, "{n} lines for the {listener}: {lines:#?}");
    }
    assert!(
        lines.iter().any(|l| l.contains("contact-centre link")),
        "{lines:#?}"
    );
    assert!(!daemon.logged("sent no complete request in time").is_empty());

    // Service resumes: health checks and a new contact-centre client.
    let (status, body) = admin_get(&daemon.admin, "/healthz", Duration::from_secs(10));
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let url = format!("ws://{}{}", daemon.cti, presence_cti::PATH);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .expect("a client connects in time")
    .expect("the link accepts a client");
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"message":"RegisterAddress","referenceID":7,"thisDN":"6001"}"#,
    ))
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an answer in time")
        .unwrap()
        .unwrap();
    assert!(
        answer.to_text().unwrap().contains("EventRegistered"),
        "{answer:?}"
    );
    drop(ws);
    assert_eq!(daemon.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_sockets_stays_within_max_connections_and_health_checks_answer() {
    use presence_cti::listener::REFUSING;
    let sim = sim().await;
    let config = config_with(
        &sim.local_addr().to_string(),
        "max-connections = 16\nhandshake-timeout = \"2s\"",
        "max-connections = 4",
    );
    let daemon = Daemon::start("flood", &config);
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.http("GET", "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "the bridge gets ready");
        sleep(Duration::from_millis(50)).await;
    }
    let cti = daemon
        .cti
        .trim_start_matches("ws://")
        .trim_end_matches(presence_cti::PATH)
        .to_owned();
    let flood = Instant::now();
    let mut sockets = silent_sockets(&cti, 200).await;
    // The admin API has its own limit: health checks are answered during the flood.
    for path in ["/healthz", "/readyz"] {
        let (status, _) = admin_get(&daemon.admin, path, Duration::from_secs(10));
        assert_eq!(status, 200, "{path} during the flood");
    }
    // A new client is refused (503, or closed when too many wait for their 503), not
    // served beyond the limit.
    match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(daemon.cti.as_str()),
    )
    .await
    .expect("the link answers a new client when it is full")
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        Err(_) => {}
        Ok(_) => panic!("a client was served beyond `cti.max-connections`"),
    }
    // The daemon holds at most 16 served + REFUSING waiting for their 503; it closes the
    // rest at once.
    let is_open = |socket: &tokio::net::TcpStream| {
        let mut scratch = [0u8; 1];
        matches!(socket.try_read(&mut scratch), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let held = sockets.iter().filter(|s| is_open(s)).count();
        if held <= 16 + REFUSING {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{held} of 200 silent sockets held, more than max-connections + {REFUSING}"
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(still_open(&mut sockets, Duration::from_secs(60)).await, 0);
    let lines = daemon.logged("connection limit reached").len() as u64;
    assert!(
        (1..=1 + flood.elapsed().as_secs() / 10).contains(&lines),
        "{lines} lines in {:?}",
        flood.elapsed()
    );
    // Room again once the handshake timeout has closed them (and they have gone).
    drop(sockets);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio_tungstenite::connect_async(daemon.cti.as_str())
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "room again for a client");
        sleep(Duration::from_millis(20)).await;
    }
    let mut client = Client::connect(&daemon).await;
    assert!(matches!(
        client.request(login("5001")).await,
        ServerEvent::EventAgentLogin { .. }
    ));
    assert_eq!(daemon.stop().code(), Some(0));
}
