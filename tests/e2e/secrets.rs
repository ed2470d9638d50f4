//! Secrets and the boundaries around them, end to end on the real binary: no secret (the
//! contact-centre token, the admin token, the Teams client secret, the SIP SIMPLE digest
//! password, the contents of a private key) reaches anything the bridge prints, logs or
//! answers; both listeners take bearer tokens by the same rules; listeners off loopback
//! need a token; the Graph client verifies the CA and the name, and refuses plain HTTP off
//! loopback.
//!
//! Everything runs on loopback: the SfB simulator over mutual TLS, the Graph simulator over
//! HTTPS, and a small SIP presence server stand-in (in this file) that challenges every
//! request with digest authentication.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use presence_graph_sim::{AppRegistration, GraphSimServer, SimConfig};
use presence_sfb_sim::tls::{TestPki, TestPkiFiles};
use presence_tlib::{ClientMessage, ClientRequest, WorkMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{Daemon, PROFILES, dn};
use crate::support::{Scratch, example, run, stderr, stdout};

/// The secrets of the configuration: distinctive, so that any copy of one is found.
const CTI_TOKEN: &str = "ctiTOKEN-9f27c4e1b85a3d60";
const ADMIN_TOKEN: &str = "adminTOKEN-3b8e1f6a0d927c54";
const TEAMS_SECRET: &str = "teamsSECRET-71d0a9e4c3b6f258";
const SIMPLE_PASSWORD: &str = "simplePASSWORD-c5e83f1a07b92d64";
/// A client secret Entra refuses (`check --online` with it).
const WRONG_TEAMS_SECRET: &str = "wrongTEAMS-0e6b2d9f4a1c8375";
/// A secret written as a TOML number instead of a string, in each secret's key.
const NUMERIC_SECRET: &str = "7315920468271";

const TEAMS_USER: &str = "agent3@contoso.com";

/// Everything the bridge printed, logged or answered, by where it came from.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }

    fn output(&mut self, what: &str, output: &Output) {
        self.add(format!("{what} (stdout)"), stdout(output));
        self.add(format!("{what} (stderr)"), stderr(output));
    }

    /// Every line that holds a secret, named by source and secret.
    fn leaks(&self, secrets: &[(String, String)]) -> Vec<String> {
        let mut found = Vec::new();
        for (what, text) in &self.0 {
            for (name, secret) in secrets {
                for line in text.lines().filter(|l| l.contains(secret.as_str())) {
                    found.push(format!("{name} in {what}: {line}"));
                }
            }
        }
        found
    }

    fn text(&self, what: &str) -> &str {
        self.0
            .iter()
            .find(|(w, _)| w == what)
            .map_or("", |(_, t)| t.as_str())
    }
}

/// The secret parts of a PEM private key: each base64 line of its body (any one of them is
/// a piece of the key).
fn key_secrets(name: &str, path: &Path) -> Vec<(String, String)> {
    let pem = std::fs::read_to_string(path).unwrap();
    let lines: Vec<(String, String)> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(|l| (format!("a line of {name}"), l.to_owned()))
        .collect();
    assert!(!lines.is_empty(), "{name} has a PEM body:\n{pem}");
    lines
}

fn all_secrets(files: &TestPkiFiles) -> Vec<(String, String)> {
    let mut secrets: Vec<(String, String)> = [
        ("the contact-centre token", CTI_TOKEN),
        ("the admin token", ADMIN_TOKEN),
        ("the Teams client secret", TEAMS_SECRET),
        ("the SIP SIMPLE password", SIMPLE_PASSWORD),
        ("a refused Teams client secret", WRONG_TEAMS_SECRET),
        ("a secret written as a number", NUMERIC_SECRET),
        // The marker of a PEM key copied out whole.
        ("a private key's PEM marker", "PRIVATE KEY-----"),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_owned(), s.to_owned()))
    .collect();
    secrets.extend(key_secrets("the bridge's private key", &files.client_key));
    secrets.extend(key_secrets(
        "another client's private key",
        &files.other_client_key,
    ));
    secrets
}

fn toml_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "/")
}

// --- a SIP SIMPLE server stand-in that wants digest authentication -----------------------

/// A SIP server on loopback (TCP) that answers every request without credentials `401`
/// with a digest challenge, and every request with them `200`. It keeps every request it
/// received, so that the test sees what went on the wire.
struct SipServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SipServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SipServer {
    async fn start() -> SipServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_sip(socket, Arc::clone(&kept)));
            }
        });
        SipServer {
            addr,
            received,
            task,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A header's full name (SIP's compact forms expanded), lower case.
fn sip_header_name(name: &str) -> String {
    match name.trim().to_ascii_lowercase().as_str() {
        "v" => "via".to_owned(),
        "f" => "from".to_owned(),
        "t" => "to".to_owned(),
        "i" => "call-id".to_owned(),
        "l" => "content-length".to_owned(),
        other => other.to_owned(),
    }
}

async fn serve_sip(mut socket: tokio::net::TcpStream, received: Arc<Mutex<Vec<String>>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Keep-alive CRLFs between messages.
        while buffer.starts_with(b"\r\n") {
            buffer.drain(..2);
        }
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| sip_header_name(n) == "content-length")
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                let message: Vec<u8> = buffer.drain(..end + 4 + length).collect();
                received
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&message).into_owned());
                let answer = sip_answer(&head);
                if socket.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

fn sip_answer(head: &str) -> String {
    let mut lines = head.lines();
    let method = lines
        .next()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_owned();
    let mut copied = String::new();
    let mut authorized = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match sip_header_name(name).as_str() {
            "via" => copied.push_str(&format!("Via: {value}\r\n")),
            "from" => copied.push_str(&format!("From: {value}\r\n")),
            "to" if value.contains(";tag=") => copied.push_str(&format!("To: {value}\r\n")),
            "to" => copied.push_str(&format!("To: {value};tag=stand-in\r\n")),
            "call-id" => copied.push_str(&format!("Call-ID: {value}\r\n")),
            "cseq" => copied.push_str(&format!("CSeq: {value}\r\n")),
            "authorization" | "proxy-authorization" => authorized = true,
            _ => {}
        }
    }
    if !authorized {
        return format!(
            "SIP/2.0 401 Unauthorized\r\n{copied}WWW-Authenticate: Digest realm=\"presence.test\", nonce=\"6f1c2e9a\", qop=\"auth\", algorithm=SHA-256\r\nContent-Length: 0\r\n\r\n"
        );
    }
    let extra = match method.as_str() {
        "PUBLISH" => "SIP-ETag: e1\r\nExpires: 600\r\n",
        "SUBSCRIBE" => "Expires: 600\r\nContact: <sip:stand-in@127.0.0.1>\r\n",
        _ => "",
    };
    format!("SIP/2.0 200 OK\r\n{copied}{extra}Content-Length: 0\r\n\r\n")
}

// --- the simulators -------------------------------------------------------------------------

/// The SfB simulator over mutual TLS: it requires a client certificate from the test CA.
async fn sfb_over_mutual_tls(pki: &TestPki) -> presence_sfb_sim::SimServer {
    presence_sfb_sim::SimServer::start(presence_sfb_sim::ServerConfig {
        tls: Some(pki.server_tls(true)),
        sim: presence_sfb_sim::SimConfig {
            seed: 11,
            ..presence_sfb_sim::SimConfig::default()
        },
        ..presence_sfb_sim::ServerConfig::default()
    })
    .await
    .expect("the SfB simulator starts")
}

/// The Graph simulator over HTTPS with `pki`'s server certificate, its one app taking
/// `secret`.
async fn graph_over_https(pki: &TestPki, secret: &str) -> GraphSimServer {
    let sim = SimConfig {
        seed: 11,
        apps: vec![AppRegistration::new(SimConfig::DEFAULT_CLIENT_ID, secret)],
        ..SimConfig::default()
    }
    .with_user(TEAMS_USER);
    GraphSimServer::start(presence_graph_sim::ServerConfig {
        sim,
        tls: Some(
            pki.server_tls(false)
                .server_config()
                .expect("a server configuration"),
        ),
        ..presence_graph_sim::ServerConfig::default()
    })
    .await
    .expect("the Graph simulator starts")
}

/// Where the peers are, and what the configuration names.
struct Site {
    pool: String,
    authority: String,
    graph_url: String,
    tenant: String,
    sip: SocketAddr,
    files: TestPkiFiles,
}

/// The whole configuration: SfB over mutual TLS, Teams over HTTPS, SIP SIMPLE with digest,
/// and both listeners with tokens; every secret given inline.
fn config(site: &Site) -> String {
    let f = &site.files;
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

[dn."5003"]
type = "Extension"
uri = "sip:{TEAMS_USER}"
platform = "teams"
annex.TServer = {{ presence-profile = "Push" }}

[dn."5004"]
type = "Extension"
uri = "sip:agent4@presence.test"
platform = "simple"
annex.TServer = {{ presence-profile = "Push" }}

[dn."6001"]
type = "Extension"
uri = "sip:expert1@contoso.com"

[sfb]
pool = "{pool}"
application-uri = "sip:presence-bridge@contoso.com"
reconnect-initial = "100ms"
reconnect-max = "500ms"

[sfb.tls]
certificate = "{cert}"
private-key = "{key}"
ca = "{ca}"

[teams]
tenant = "{tenant}"
client-id = "{client_id}"
client-secret = "{TEAMS_SECRET}"
authority = "{authority}"
graph-url = "{graph_url}"
ca = "{ca}"
poll-interval = "1s"
reconnect-initial = "200ms"
reconnect-max = "1s"

[simple]
server = "{sip}"
transport = "tcp"
domain = "presence.test"
reconnect-initial = "100ms"

[simple.auth]
username = "presence-bridge"
password = "{SIMPLE_PASSWORD}"

[cti]
listen = "127.0.0.1:0"
token = "{CTI_TOKEN}"

[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"
"#,
        pool = site.pool,
        cert = toml_path(&f.client_cert),
        key = toml_path(&f.client_key),
        ca = toml_path(&f.ca),
        tenant = site.tenant,
        client_id = SimConfig::DEFAULT_CLIENT_ID,
        authority = site.authority,
        graph_url = site.graph_url,
        sip = site.sip,
    )
}

/// `config` with `from` replaced by `to` (exactly once).
fn edited(config: &str, from: &str, to: &str) -> String {
    assert_eq!(
        config.matches(from).count(),
        1,
        "`{from}` is in the config once"
    );
    config.replacen(from, to, 1)
}

// --- the daemon, with every line it writes kept -------------------------------------------

struct Running {
    child: Child,
    cti: String,
    admin: String,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// `run --log-level debug`: every line of stdout and stderr is kept.
    fn start(config: &Path) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
            .args([
                "run",
                "--config",
                config.to_str().unwrap(),
                "--log-format",
                "json",
                "--log-level",
                "debug",
            ])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [out, err] {
            let kept = Arc::clone(&lines);
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    kept.lock().unwrap().push(line);
                }
            }));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let (cti, admin) = loop {
            let found = lines.lock().unwrap().iter().find_map(|line| {
                let json: serde_json::Value = serde_json::from_str(line).ok()?;
                (json["fields"]["message"] == "bridge running").then(|| {
                    (
                        json["fields"]["cti"].as_str().unwrap().to_owned(),
                        json["fields"]["admin"]
                            .as_str()
                            .unwrap()
                            .trim_start_matches("http://")
                            .to_owned(),
                    )
                })
            });
            if let Some(found) = found {
                break found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not say where it listens:\n{}",
                lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Running {
            child,
            cti,
            admin,
            lines,
            readers,
        }
    }

    fn cti_addr(&self) -> String {
        self.cti
            .trim_start_matches("ws://")
            .trim_end_matches("/v1/cti")
            .to_owned()
    }

    fn log_text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal}");
    }

    /// How many log lines hold `needle`.
    fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until `n` log lines hold `needle`.
    async fn until_count(&self, needle: &str, n: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.count(needle) >= n {
                return true;
            }
            sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// SIGTERM, the exit status, and every line written.
    fn stop(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon stops within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        (status.code(), self.log_text())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            let skip = lines.len().saturating_sub(60);
            eprintln!("the daemon's last lines:\n{}", lines[skip..].join("\n"));
        }
    }
}

/// Runs the binary with `args` for at most `patience`; one still running then is stopped
/// (SIGTERM, SIGKILL 15 s later). Its output, and whether it ended by itself.
fn run_briefly(args: &[&str], patience: Duration) -> (Output, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("PRESENCE_BRIDGE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let drain = |stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = BufReader::new(stream).read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let wait = |child: &mut Child, within: Duration| {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (status, ended) = match wait(&mut child, patience) {
        Some(status) => (status, true),
        None => {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let status = wait(&mut child, Duration::from_secs(15)).unwrap_or_else(|| {
                let _ = child.kill();
                child.wait().unwrap()
            });
            (status, false)
        }
    };
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, ended)
}

// --- HTTP, raw, so that every header sent and received is under the test's control -------

/// A response: its status and its whole text (status line, headers, body).
struct Answer {
    status: u16,
    text: String,
}

/// Sends `request` (a whole HTTP/1.1 request) and reads the answer: up to the end of the
/// head for `101 Switching Protocols`, else the head and `Content-Length` bytes of body
/// (or up to the close).
fn exchange(addr: &str, request: &str) -> Answer {
    let mut stream = std::net::TcpStream::connect(addr).expect("the listener accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let done = head.starts_with("http/1.1 101")
                || length.is_some_and(|n| buffer.len() >= end + 4 + n);
            if done {
                break;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buffer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer { status, text }
}

fn header_lines(authorization: &[String]) -> String {
    authorization
        .iter()
        .map(|value| format!("Authorization: {value}\r\n"))
        .collect()
}

/// An admin request with these `Authorization` header values.
fn admin(addr: &str, method: &str, path: &str, authorization: &[String]) -> Answer {
    exchange(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{}Content-Length: 0\r\nConnection: close\r\n\r\n",
            header_lines(authorization)
        ),
    )
}

/// A WebSocket upgrade request to the contact-centre link with these `Authorization`
/// header values.
fn upgrade(addr: &str, authorization: &[String]) -> Answer {
    exchange(
        addr,
        &format!(
            "GET /v1/cti HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
            header_lines(authorization)
        ),
    )
}

fn bearer(token: &str) -> Vec<String> {
    vec![format!("Bearer {token}")]
}

async fn until_ready(admin_addr: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = admin(admin_addr, "GET", "/readyz", &[]);
        if answer.status == 200 || Instant::now() > deadline {
            return answer;
        }
        sleep(Duration::from_millis(100)).await;
    }
}

// --- the tests ----------------------------------------------------------------------------

/// Every output of every command, with a configuration whose every secret is distinctive:
/// none of them, and no piece of a private key, appears anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output() {
    let dir = Scratch::new("secrets");
    let pki = TestPki::localhost().unwrap();
    let files = pki.write_to(&dir.0).unwrap();
    std::fs::write(
        dir.0.join("map.xml"),
        std::fs::read(example("agent-states.xml")).unwrap(),
    )
    .unwrap();
    let sfb = sfb_over_mutual_tls(&pki).await;
    let graph = graph_over_https(&pki, TEAMS_SECRET).await;
    let sip = SipServer::start().await;
    let site = Site {
        pool: format!("localhost:{}", sfb.local_addr().port()),
        authority: graph.authority(),
        graph_url: graph.graph_url(),
        tenant: graph.tenant().to_owned(),
        sip: sip.addr,
        files: files.clone(),
    };
    assert!(site.authority.starts_with("https://"), "{}", site.authority);
    let good = config(&site);
    let path = dir.write("bridge.toml", &good);
    let file = path.to_str().unwrap().to_owned();
    let mut seen = Seen::default();

    // check, text and JSON, offline and online (a token from Entra, UPNs looked up).
    for args in [
        vec!["check", "--config", &file],
        vec!["check", "--config", &file, "--json"],
        vec!["check", "--config", &file, "--all-dns"],
        vec!["check", "--config", &file, "--online"],
        vec!["check", "--config", &file, "--online", "--json"],
    ] {
        let output = run(&args);
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        seen.output(&args.join(" "), &output);
    }
    let online = seen.text(&format!("check --config {file} --online --json (stdout)"));
    assert!(
        online.contains("resolved to"),
        "check --online got a token and looked the Teams user up:\n{online}"
    );
    // explain, text and JSON, push and pull, on each platform.
    for (dn, question) in [
        ("5001", ["--agent-state", "Ready", "--device-state", "Idle"]),
        ("5003", ["--agent-state", "ACW", "--device-state", "Busy"]),
        (
            "5004",
            ["--agent-state", "NotReady", "--device-state", "Idle"],
        ),
    ] {
        for json in [false, true] {
            let mut args = vec!["explain", "--config", &file, "--dn", dn];
            args.extend(question);
            if json {
                args.push("--json");
            }
            let output = run(&args);
            assert!(output.status.success(), "{args:?}: {}", stderr(&output));
            seen.output(&args.join(" "), &output);
        }
    }
    let output = run(&[
        "explain",
        "--config",
        &file,
        "--dn",
        "6001",
        "--availability",
        "6500",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    seen.output("explain 6001 --json", &output);

    // run, at debug level.
    let daemon = Running::start(&path);
    let ready = until_ready(&daemon.admin).await;
    assert_eq!(
        ready.status, 200,
        "SfB over mutual TLS, Teams over HTTPS and SIP SIMPLE with digest all connect:\n{}",
        ready.text
    );
    seen.add("GET /readyz", &ready.text);
    let token = bearer(ADMIN_TOKEN);
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/v1/dns"),
        ("GET", "/v1/dns/5001"),
        ("GET", "/v1/dns/5003"),
        ("GET", "/v1/dns/5004"),
        ("GET", "/v1/dns/6001"),
        ("GET", "/v1/dns/9999"),
        ("POST", "/v1/reload"),
    ] {
        let answer = admin(&daemon.admin, method, path, &token);
        assert_ne!(answer.status, 401, "{method} {path}:\n{}", answer.text);
        seen.add(format!("{method} {path}"), answer.text);
    }

    // The contact-centre link with the token: agents on every platform change state.
    let mut request = daemon.cti.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {CTI_TOKEN}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the link takes the token");
    let mut reference = 100;
    let mut events = String::new();
    for d in ["5001", "5003", "5004"] {
        for body in [
            ClientRequest::RequestAgentLogin {
                this_dn: dn(d),
                agent_id: format!("agent-{d}").parse().unwrap(),
                workmode: None,
                extensions: presence_tlib::Extensions::new(),
            },
            ClientRequest::RequestAgentNotReady {
                this_dn: dn(d),
                workmode: Some(WorkMode::AfterCallWork),
            },
            ClientRequest::RequestAgentReady { this_dn: dn(d) },
        ] {
            reference += 1;
            ws.send(Message::text(ClientMessage::new(reference, body).to_json()))
                .await
                .unwrap();
            let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("an answer in time")
                .unwrap()
                .unwrap();
            events.push_str(&frame.to_string());
            events.push('\n');
        }
    }
    ws.send(Message::text(
        ClientMessage::new(
            900,
            ClientRequest::RegisterAddress {
                this_dn: dn("6001"),
            },
        )
        .to_json(),
    ))
    .await
    .unwrap();
    seen.add("the contact-centre link's events", events);
    // Teams shows the agent Available: the bridge holds a token got with the secret.
    let deadline = Instant::now() + Duration::from_secs(10);
    while graph
        .shows(TEAMS_USER)
        .is_none_or(|s| s.availability.as_str() != "Available")
    {
        assert!(Instant::now() < deadline, "Teams shows the agent Available");
        sleep(Duration::from_millis(50)).await;
    }
    // The SIP SIMPLE server got a PUBLISH with digest credentials.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sip
        .requests()
        .iter()
        .any(|r| r.starts_with("PUBLISH") && r.contains("Authorization: Digest"))
    {
        assert!(
            Instant::now() < deadline,
            "an authorized PUBLISH reaches the SIP server: {:?}",
            sip.requests()
        );
        sleep(Duration::from_millis(50)).await;
    }

    // Refused: wrong tokens, each listener's token on the other, the token in another
    // scheme, on both listeners.
    let cti_addr = daemon.cti_addr();
    for authorization in [
        vec![],
        bearer("wrong-token"),
        bearer(ADMIN_TOKEN),
        vec![format!("Basic {CTI_TOKEN}")],
    ] {
        let answer = upgrade(&cti_addr, &authorization);
        assert_eq!(answer.status, 401, "{authorization:?}:\n{}", answer.text);
        seen.add(format!("upgrade with {authorization:?}"), answer.text);
    }
    for authorization in [
        vec![],
        bearer("wrong-token"),
        bearer(CTI_TOKEN),
        vec![format!("Basic {ADMIN_TOKEN}")],
    ] {
        for (method, path) in [
            ("GET", "/metrics"),
            ("GET", "/v1/dns/5001"),
            ("POST", "/v1/reload"),
        ] {
            let answer = admin(&daemon.admin, method, path, &authorization);
            assert_eq!(answer.status, 401, "{method} {path}:\n{}", answer.text);
            seen.add(
                format!("{method} {path} with {authorization:?}"),
                answer.text,
            );
        }
    }
    assert!(
        daemon
            .until_count(
                "contact-centre connection refused: missing or wrong bearer token",
                4
            )
            .await
    );

    // Reloads: by signal, then of bad files holding the secrets next to their errors.
    let applied = daemon.count("configuration reloaded");
    daemon.signal("HUP");
    assert!(
        daemon
            .until_count("configuration reloaded", applied + 1)
            .await
    );
    let bad_reloads = [
        // a secret written as a number
        edited(
            &good,
            &format!("password = \"{SIMPLE_PASSWORD}\""),
            &format!("password = {NUMERIC_SECRET}"),
        ),
        // errors in the tables that hold the secrets
        edited(
            &good,
            "poll-interval = \"1s\"",
            "poll-interval = \"1s\"\nbudget = 0",
        ),
        edited(&good, "username = \"presence-bridge\"", "username = \"\""),
        // a TOML syntax error on a secret's own line
        edited(
            &good,
            &format!("client-secret = \"{TEAMS_SECRET}\""),
            &format!("client-secret = \"{TEAMS_SECRET}"),
        ),
    ];
    for (i, bad) in bad_reloads.iter().enumerate() {
        std::fs::write(&path, bad).unwrap();
        let answer = admin(&daemon.admin, "POST", "/v1/reload", &token);
        assert_eq!(answer.status, 422, "bad reload {i}:\n{}", answer.text);
        seen.add(format!("POST /v1/reload of bad file {i}"), answer.text);
        daemon.signal("HUP");
        assert!(
            daemon.until_count("reload refused", 2 * (i + 1)).await,
            "the signalled reload of bad file {i} is refused"
        );
    }
    std::fs::write(&path, &good).unwrap();
    let answer = admin(&daemon.admin, "POST", "/v1/reload", &token);
    assert_eq!(answer.status, 200, "{}", answer.text);
    seen.add("POST /v1/reload (restored)", answer.text);
    let metrics = admin(&daemon.admin, "GET", "/metrics", &token);
    assert!(
        metrics.text.contains("presence_reloads_total"),
        "{}",
        metrics.text
    );
    seen.add("GET /metrics at the end", metrics.text);
    drop(ws);
    let (code, logs) = daemon.stop();
    assert_eq!(code, Some(0), "a clean exit");
    assert!(
        logs.contains("\"level\":\"DEBUG\""),
        "the daemon logged at debug level"
    );
    seen.add("run --log-level debug (stdout and stderr)", logs);

    // Bad configurations: check (text and JSON), explain and run each say what is wrong.
    let bad_files: Vec<(&str, String)> = vec![
        (
            "the contact-centre token as a number",
            edited(
                &good,
                &format!("token = \"{CTI_TOKEN}\""),
                &format!("token = {NUMERIC_SECRET}"),
            ),
        ),
        (
            "the admin token as a number",
            edited(
                &good,
                &format!("token = \"{ADMIN_TOKEN}\""),
                &format!("token = {NUMERIC_SECRET}"),
            ),
        ),
        (
            "the Teams secret as a number",
            edited(
                &good,
                &format!("client-secret = \"{TEAMS_SECRET}\""),
                &format!("client-secret = {NUMERIC_SECRET}"),
            ),
        ),
        (
            "the SIP password as a number",
            edited(
                &good,
                &format!("password = \"{SIMPLE_PASSWORD}\""),
                &format!("password = {NUMERIC_SECRET}"),
            ),
        ),
        (
            "an unterminated token",
            edited(
                &good,
                &format!("token = \"{ADMIN_TOKEN}\""),
                &format!("token = \"{ADMIN_TOKEN}"),
            ),
        ),
        (
            "a token with a space",
            edited(
                &good,
                &format!("token = \"{CTI_TOKEN}\""),
                &format!("token = \"{CTI_TOKEN} {ADMIN_TOKEN}\""),
            ),
        ),
        (
            "errors beside every secret",
            [
                (
                    "poll-interval = \"1s\"",
                    "poll-interval = \"1s\"\nbudget = 0".to_owned(),
                ),
                (
                    "username = \"presence-bridge\"",
                    "username = \"\"".to_owned(),
                ),
                (
                    &format!("token = \"{CTI_TOKEN}\""),
                    format!("token = \"{CTI_TOKEN}\"\nmax-message-bytes = 1"),
                ),
                (
                    &format!("token = \"{ADMIN_TOKEN}\""),
                    format!("token = \"{ADMIN_TOKEN}\"\nmax-connections = 0"),
                ),
            ]
            .iter()
            .fold(good.clone(), |text, (from, to)| edited(&text, from, to)),
        ),
        (
            "the private key named as the certificate and the CA",
            edited(
                &edited(
                    &good,
                    &format!("certificate = \"{}\"", toml_path(&files.client_cert)),
                    &format!("certificate = \"{}\"", toml_path(&files.client_key)),
                ),
                &format!("ca = \"{}\"\n\n[teams]", toml_path(&files.ca)),
                &format!("ca = \"{}\"\n\n[teams]", toml_path(&files.client_key)),
            ),
        ),
        (
            "a private key that does not fit the certificate",
            edited(
                &good,
                &format!("private-key = \"{}\"", toml_path(&files.client_key)),
                &format!("private-key = \"{}\"", toml_path(&files.other_client_key)),
            ),
        ),
        (
            "a client secret Entra refuses",
            edited(
                &good,
                &format!("client-secret = \"{TEAMS_SECRET}\""),
                &format!("client-secret = \"{WRONG_TEAMS_SECRET}\""),
            ),
        ),
    ];
    for (name, text) in &bad_files {
        let mut refused = false;
        let bad = dir.write("bad.toml", text);
        let bad = bad.to_str().unwrap();
        for args in [
            vec!["check", "--config", bad],
            vec!["check", "--config", bad, "--json"],
            vec!["check", "--config", bad, "--online", "--json"],
            vec![
                "explain",
                "--config",
                bad,
                "--dn",
                "5001",
                "--agent-state",
                "Ready",
                "--device-state",
                "Idle",
                "--json",
            ],
        ] {
            let output = run(&args);
            refused |= !output.status.success();
            if name.ends_with("as a number") && args[..3] == ["check", "--config", bad] {
                let said = stdout(&output);
                assert!(
                    said.contains("invalid type: integer") && said.contains("is not shown"),
                    "{name}: {said}"
                );
            }
            seen.output(&format!("{name}: {}", args.join(" ")), &output);
        }
        // run: refused at start, or (a key that does not fit, a refused secret) running
        // and saying so in its log; stopped either way.
        let (output, _) = run_briefly(
            &["run", "--config", bad, "--log-level", "debug"],
            Duration::from_secs(3),
        );
        refused |= !output.status.success();
        seen.output(&format!("{name}: run"), &output);
        assert!(refused, "{name}: some command refuses it");
    }
    // What went on the wire to the SIP server carries no password either.
    seen.add("what the SIP server received", sip.requests().join("\n"));

    let leaks = seen.leaks(&all_secrets(&files));
    assert!(
        leaks.is_empty(),
        "secrets in the output:\n{}",
        leaks.join("\n")
    );
}

/// The `Authorization` header values of a case, given the listener's own token and the
/// other listener's.
type Headers = fn(&str, &str) -> Vec<String>;

/// The contact-centre link and the admin API take the same `Authorization` headers and
/// refuse the same ones, with the same challenge: one check serves both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_listeners_take_bearer_tokens_by_the_same_rules() {
    let sfb = presence_sfb_sim::SimServer::start(presence_sfb_sim::ServerConfig::default())
        .await
        .expect("the SfB simulator starts");
    let config = format!(
        r#"
[options.TServer]
presence-profile = "Pull"
{PROFILES}
[dn."5001"]
type = "Extension"
uri = "sip:agent1@contoso.com"
annex.TServer = {{ presence-profile = "Push" }}

[sfb]
pool = "{pool}"
transport = "tcp"
application-uri = "sip:presence-bridge@contoso.com"

[cti]
listen = "127.0.0.1:0"
token = "{CTI_TOKEN}"

[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"
"#,
        pool = sfb.local_addr()
    );
    let daemon = Daemon::start("secrets-bearer", &config);
    let cti_addr = daemon
        .cti
        .trim_start_matches("ws://")
        .trim_end_matches("/v1/cti")
        .to_owned();
    let cut = |t: &str| t[..t.len() - 1].to_owned();
    // (case, the Authorization headers given the listener's own token, accepted?)
    let cases: [(&str, Headers, bool); 17] = [
        ("Bearer", |t, _| vec![format!("Bearer {t}")], true),
        ("bearer", |t, _| vec![format!("bearer {t}")], true),
        ("BEARER", |t, _| vec![format!("BEARER {t}")], true),
        (
            "several spaces",
            |t, _| vec![format!("Bearer    {t}")],
            true,
        ),
        ("a tab", |t, _| vec![format!("Bearer\t{t}")], true),
        ("no header", |_, _| vec![], false),
        (
            "a wrong token",
            |_, _| vec!["Bearer wrong-token".to_owned()],
            false,
        ),
        (
            "the other listener's token",
            |_, other| vec![format!("Bearer {other}")],
            false,
        ),
        (
            "the token and more",
            |t, _| vec![format!("Bearer {t}x")],
            false,
        ),
        (
            "the token in another case",
            |t, _| vec![format!("Bearer {}", t.to_ascii_uppercase())],
            false,
        ),
        ("another scheme", |t, _| vec![format!("Basic {t}")], false),
        ("no scheme", |t, _| vec![t.to_owned()], false),
        ("no space", |t, _| vec![format!("Bearer{t}")], false),
        ("an empty token", |_, _| vec!["Bearer ".to_owned()], false),
        (
            "two headers, both right",
            |t, _| vec![format!("Bearer {t}"), format!("Bearer {t}")],
            false,
        ),
        (
            "two headers, wrong then right",
            |t, _| vec!["Bearer wrong-token".to_owned(), format!("Bearer {t}")],
            false,
        ),
        (
            "two headers, right then another scheme",
            |t, _| vec![format!("Bearer {t}"), "Basic dXNlcjpwdw==".to_owned()],
            false,
        ),
    ];
    let mut wrong = Vec::new();
    for (case, headers, accepted) in cases {
        let link = upgrade(&cti_addr, &headers(CTI_TOKEN, ADMIN_TOKEN));
        let admin_answers: Vec<Answer> = [("GET", "/metrics"), ("GET", "/v1/dns/5001")]
            .into_iter()
            .map(|(method, path)| {
                admin(
                    &daemon.admin,
                    method,
                    path,
                    &headers(ADMIN_TOKEN, CTI_TOKEN),
                )
            })
            .collect();
        let want_link = if accepted { 101 } else { 401 };
        let want_admin = if accepted { 200 } else { 401 };
        if link.status != want_link {
            wrong.push(format!("link, {case}: {}", link.text));
        }
        for answer in &admin_answers {
            if answer.status != want_admin {
                wrong.push(format!("admin, {case}: {}", answer.text));
            }
        }
        if !accepted {
            for answer in std::iter::once(&link).chain(&admin_answers) {
                let head = answer.text.to_ascii_lowercase();
                if !head.contains("www-authenticate: bearer realm=\"presence-bridge\"") {
                    wrong.push(format!("no Bearer challenge, {case}: {}", answer.text));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    // A token truncated by one character is refused too (the comparison is exact).
    assert_eq!(upgrade(&cti_addr, &bearer(&cut(CTI_TOKEN))).status, 401);
    assert_eq!(
        admin(&daemon.admin, "GET", "/metrics", &bearer(&cut(ADMIN_TOKEN))).status,
        401
    );
    // Health and readiness answer without a token (load balancers, systemd), nothing else
    // does; a refused reload is not applied.
    assert_eq!(admin(&daemon.admin, "GET", "/healthz", &[]).status, 200);
    assert_ne!(admin(&daemon.admin, "GET", "/readyz", &[]).status, 401);
    assert_eq!(admin(&daemon.admin, "POST", "/v1/reload", &[]).status, 401);
    assert!(daemon.logged("configuration reloaded").is_empty());
    assert_eq!(
        admin(&daemon.admin, "POST", "/v1/reload", &bearer(ADMIN_TOKEN)).status,
        200
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

/// Both listeners refuse an address off loopback without a token, and a token that cannot
/// be a bearer token anywhere; `check` says so as `run` does.
#[test]
fn listeners_off_loopback_need_a_token_and_tokens_must_be_usable() {
    let dir = Scratch::new("secrets-listeners");
    let base = r#"
[options.TServer]
presence-profile = "Pull"

[dn.Pull]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true" }

[dn."6001"]
type = "Extension"
uri = "sip:expert1@contoso.com"

[sfb]
pool = "127.0.0.1:9"
transport = "tcp"
application-uri = "sip:presence-bridge@contoso.com"
"#;
    let cases = [
        (
            "[cti]\nlisten = \"0.0.0.0:0\"\n",
            "`cti.token` is required when `cti.listen` (0.0.0.0:0) is not a loopback address",
        ),
        (
            "[cti]\nlisten = \"[::]:0\"\n",
            "`cti.token` is required when `cti.listen` ([::]:0) is not a loopback address",
        ),
        (
            "[admin]\nlisten = \"0.0.0.0:0\"\n",
            "[admin] `token` is required because `listen` (0.0.0.0:0) is not a loopback address",
        ),
        (
            "[admin]\nlisten = \"[::]:0\"\n",
            "[admin] `token` is required because `listen` ([::]:0) is not a loopback address",
        ),
        (
            "[cti]\nlisten = \"127.0.0.1:0\"\ntoken = \"\"\n[admin]\nlisten = \"127.0.0.1:0\"\n",
            "`cti.token` = (hidden) is not valid",
        ),
        (
            "[cti]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"0.0.0.0:0\"\ntoken = \"\"\n",
            "`admin.token` = (hidden) is not valid",
        ),
        (
            "[cti]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"two words\"\n",
            "`admin.token` = (hidden) is not valid",
        ),
    ];
    for (tables, message) in cases {
        let path = dir.write("bridge.toml", &format!("{base}{tables}"));
        let path = path.to_str().unwrap();
        let checked = run(&["check", "--config", path]);
        assert_eq!(checked.status.code(), Some(1), "check, {tables}");
        assert!(
            stdout(&checked).contains(message),
            "check, {tables}: {}",
            stdout(&checked)
        );
        let (started, ended) = run_briefly(
            &["run", "--config", path, "--log-level", "warn"],
            Duration::from_secs(10),
        );
        assert!(ended, "run, {tables}: refused at start, not running");
        assert_eq!(started.status.code(), Some(1), "run, {tables}");
        assert!(
            stderr(&started).contains(message),
            "run, {tables}: {}",
            stderr(&started)
        );
        assert!(!stderr(&started).contains("two words"));
    }
    // With a token, any address is accepted (checked only: the tests listen on loopback).
    let path = dir.write(
        "bridge.toml",
        &format!(
            "{base}[cti]\nlisten = \"0.0.0.0:7070\"\ntoken = \"{CTI_TOKEN}\"\n[admin]\nlisten = \"[::]:7071\"\ntoken = \"{ADMIN_TOKEN}\"\n"
        ),
    );
    let checked = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(checked.status.success(), "{}", stdout(&checked));
}

/// The Graph client (token and Graph requests alike) verifies the certificate's CA and
/// name, whatever `[teams] ca` adds; plain HTTP is refused off loopback; SfB is TLS by
/// default and asks for its CA and the client certificate of mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_and_never_silently_off() {
    let dir = Scratch::new("secrets-tls");
    // A certificate for `localhost` only: `127.0.0.1` is a name it does not carry.
    let pki = TestPki::new(&["localhost"]).unwrap();
    let files = pki.write_to(&dir.0).unwrap();
    let graph = graph_over_https(&pki, TEAMS_SECRET).await;
    let port = graph.local_addr().port();
    let teams = |host: &str, ca: &Path, scheme: &str| {
        format!(
            r#"
[options.TServer]
presence-profile = "Pull"

[dn.Pull]
type = "VoIPService"
annex.TServer = {{ service-type = "presence-profile", map-presence-to-dnd = "true" }}

[dn."6003"]
type = "Extension"
uri = "sip:{TEAMS_USER}"

[teams]
tenant = "{tenant}"
client-id = "{client_id}"
client-secret = "{TEAMS_SECRET}"
authority = "{scheme}://{host}:{port}"
graph-url = "{scheme}://{host}:{port}/v1.0"
ca = "{ca}"
reconnect-initial = "200ms"
reconnect-max = "1s"

[cti]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
"#,
            tenant = graph.tenant(),
            client_id = SimConfig::DEFAULT_CLIENT_ID,
            ca = toml_path(ca),
        )
    };
    // The daemon on `text`: whether Teams connected, and the readiness answer's detail,
    // once it is ready or its detail says all of `expected` (a detail on the way there,
    // such as a first attempt still connecting, is not yet the answer), or after 20 s.
    let teams_ready = async |name: &str, text: &str, expected: &[&str]| -> (bool, String) {
        let daemon = Daemon::start(name, text);
        let deadline = Instant::now() + Duration::from_secs(20);
        let answer = loop {
            let (status, body) = daemon.http("GET", "/readyz");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let detail = json["transports"][0]["detail"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let said = !expected.is_empty() && expected.iter().all(|e| detail.contains(e));
            if status == 200 || said || Instant::now() > deadline {
                break (status == 200, format!("{detail}\n{body}"));
            }
            sleep(Duration::from_millis(50)).await;
        };
        daemon.stop();
        answer
    };
    // The control: the right CA and a name the certificate carries.
    let (ok, said) = teams_ready("tls-right", &teams("localhost", &files.ca, "https"), &[]).await;
    assert!(ok, "{said}");
    for (name, host, ca, needles) in [
        (
            "unknown CA",
            "localhost",
            &files.other_ca,
            &[
                "is not signed by a CA the bridge trusts",
                "`[teams] ca`",
                "UnknownIssuer",
            ][..],
        ),
        (
            "wrong name",
            "127.0.0.1",
            &files.ca,
            &[
                "is not valid for `127.0.0.1`",
                "`[teams] authority` and `graph-url`",
                "certificate not valid for name",
            ][..],
        ),
    ] {
        let (ok, said) = teams_ready("tls-refused", &teams(host, ca, "https"), needles).await;
        assert!(!ok, "{name}: accepted:\n{said}");
        for needle in needles {
            assert!(said.contains(needle), "{name}: `{needle}` in:\n{said}");
        }
    }
    // Plain HTTP would send the client secret in clear: refused off loopback, for both
    // URLs, by check and run alike; accepted for a loopback simulator.
    let plain = teams("login.example.com", &files.ca, "http");
    let path = dir.write("plain.toml", &plain);
    let checked = run(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(1));
    let said = stdout(&checked);
    for key in ["`teams.authority`", "`teams.graph-url`"] {
        assert!(
            said.lines()
                .any(|l| l.contains(key) && l.contains("is plain HTTP")),
            "{key}: {said}"
        );
    }
    let (started, ended) = run_briefly(
        &["run", "--config", path.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert!(ended, "run refuses plain HTTP at start");
    assert_eq!(started.status.code(), Some(1));
    assert!(
        stderr(&started).contains("is plain HTTP"),
        "{}",
        stderr(&started)
    );
    for host in ["127.0.0.1", "localhost", "[::1]"] {
        let path = dir.write("loopback.toml", &teams(host, &files.ca, "http"));
        let checked = run(&["check", "--config", path.to_str().unwrap()]);
        assert!(
            !stdout(&checked).contains("plain HTTP"),
            "{host}: {}",
            stdout(&checked)
        );
    }
    // SfB: TLS unless `transport = "tcp"` is written, with the pool's CA required and a
    // warning without the client certificate of mutual TLS.
    let path = dir.write(
        "sfb.toml",
        "[options.TServer]\n[sfb]\npool = \"pool01.contoso.com:5061\"\napplication-uri = \"sip:presence-bridge@contoso.com\"\n",
    );
    let checked = run(&["check", "--config", path.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&checked)).unwrap();
    let messages = |kind: &str| -> String {
        report[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["message"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        messages("errors").contains("`sfb.tls.ca`"),
        "{}",
        messages("errors")
    );
    assert!(
        messages("warnings").contains("`sfb.tls.certificate`"),
        "{}",
        messages("warnings")
    );
}

/// A plain-HTTP stub on loopback: keeps every request it reads (head and body) and answers
/// each with `answer(request)`.
async fn http_stub(answer: fn(&str) -> String) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if let Some(end) = find(&buffer, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buffer.len() >= end + 4 + length {
                            let request = String::from_utf8_lossy(&buffer).into_owned();
                            let reply = answer(&request);
                            kept.lock().unwrap().push(request);
                            let _ = socket.write_all(reply.as_bytes()).await;
                            let _ = socket.shutdown().await;
                            return;
                        }
                    }
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, received)
}

/// Where the token endpoint stand-in redirects to (set once the second stub listens).
static REDIRECT_TO: std::sync::OnceLock<SocketAddr> = std::sync::OnceLock::new();

/// A token endpoint that answers `307 Temporary Redirect` elsewhere: the bridge does not
/// follow it, so the client secret in the request's body goes nowhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_never_takes_the_client_secret_elsewhere() {
    let (elsewhere, taken) = http_stub(|_| {
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
    })
    .await;
    REDIRECT_TO.set(elsewhere).unwrap();
    let (authority, asked) = http_stub(|request| {
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            REDIRECT_TO.get().unwrap()
        )
    })
    .await;
    let dir = Scratch::new("secrets-redirect");
    let path = dir.write(
        "bridge.toml",
        &format!(
            r#"
[options.TServer]
presence-profile = "Pull"

[dn.Pull]
type = "VoIPService"
annex.TServer = {{ service-type = "presence-profile", map-presence-to-dnd = "true" }}

[dn."6003"]
type = "Extension"
uri = "sip:{TEAMS_USER}"

[teams]
tenant = "contoso.onmicrosoft.com"
client-id = "{client_id}"
client-secret = "{TEAMS_SECRET}"
authority = "http://{authority}"
graph-url = "http://{authority}/v1.0"
"#,
            client_id = SimConfig::DEFAULT_CLIENT_ID,
        ),
    );
    let checked = run(&["check", "--config", path.to_str().unwrap(), "--online"]);
    let said = stdout(&checked) + &stderr(&checked);
    assert_eq!(checked.status.code(), Some(1), "{said}");
    let asked = asked.lock().unwrap().clone();
    assert!(
        asked.iter().any(|r| r.contains(TEAMS_SECRET)),
        "the token request reached the authority: {asked:?}"
    );
    let taken = taken.lock().unwrap().clone();
    assert!(
        taken.is_empty(),
        "the redirect was followed, with the secret: {taken:?}"
    );
    assert!(!said.contains(TEAMS_SECRET), "{said}");
}
