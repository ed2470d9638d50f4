//! The real `presence-bridge run` as a child process, and a contact-centre client for it:
//! shared by the end-to-end modules.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use presence_model::{AgentState, DeviceState};
use presence_tlib::{
    ClientMessage, ClientRequest, ConnId, ErrorCode, Extensions, ServerEvent, WorkMode,
};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{Scratch, example};

/// The two presence profiles every daemon test runs on: `Push` (the example map, all 15
/// combinations mapped) and `Pull` (3000-5999 available).
pub(crate) const PROFILES: &str = r#"
[dn.Push]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", agent-presence-map = "map.xml", aggregated-states = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7=INCALL, 8=INCALL, 9=INCALL, 10=INCALL, 11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS" }

[dn.Pull]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true", presence-availability-range = "3000-5999" }
"#;

/// A running `presence-bridge run` process and where it listens.
pub(crate) struct Daemon {
    child: Child,
    pub cti: String,
    pub admin: String,
    pub dir: Scratch,
    /// Every line the daemon logged so far (JSON).
    logs: Arc<Mutex<Vec<String>>>,
    _stderr: std::thread::JoinHandle<()>,
}

impl Daemon {
    /// The daemon on the SfB-only configuration of the `daemon` module.
    pub(crate) fn start_sfb(name: &str, pool: &str) -> Daemon {
        Daemon::start(name, &crate::daemon::config(pool))
    }

    /// The daemon on `config` (with the example map as `map.xml` beside it).
    pub(crate) fn start(name: &str, config: &str) -> Daemon {
        Daemon::start_args(name, config, &[])
    }

    /// [`Daemon::start`] with more arguments for `run` (such as `--threads 2`).
    pub(crate) fn start_args(name: &str, config: &str, extra: &[&str]) -> Daemon {
        let level = std::env::var(LOG_LEVEL_ENV).unwrap_or_else(|_| "info".to_owned());
        Daemon::start_with(name, config, &level, extra)
    }

    /// [`Daemon::start`] with this `--log-level`.
    pub(crate) fn start_at(name: &str, config: &str, level: &str) -> Daemon {
        Daemon::start_with(name, config, level, &[])
    }

    /// [`Daemon::start_at`] with more arguments for `run`.
    fn start_with(name: &str, config: &str, level: &str, extra: &[&str]) -> Daemon {
        let dir = Scratch::new(name);
        std::fs::write(
            dir.0.join("map.xml"),
            std::fs::read(example("agent-states.xml")).unwrap(),
        )
        .unwrap();
        let config = dir.write("bridge.toml", config);
        let mut child = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
            .args([
                "run",
                "--config",
                config.to_str().unwrap(),
                "--log-format",
                "json",
                "--log-level",
                level,
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std_mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut early = Vec::new();
        let (cti, admin) = loop {
            let Ok(line) =
                rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            else {
                panic!(
                    "the daemon did not say where it listens; it logged:\n{}",
                    early.join("\n")
                );
            };
            early.push(line.clone());
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if json["fields"]["message"] == "bridge running" {
                let cti = json["fields"]["cti"].as_str().unwrap().to_owned();
                let admin = json["fields"]["admin"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("http://")
                    .to_owned();
                break (cti, admin);
            }
        };
        // Keep draining stderr so that the daemon never blocks on a full pipe; the lines
        // logged before it said where it listens are kept too.
        let logs = Arc::new(Mutex::new(early));
        let kept = Arc::clone(&logs);
        let drain = std::thread::spawn(move || {
            while let Ok(line) = rx.recv() {
                kept.lock().unwrap().push(line);
            }
            let _ = reader.join();
        });
        Daemon {
            child,
            cti,
            admin,
            dir,
            logs,
            _stderr: drain,
        }
    }

    /// The log lines so far that contain `needle`.
    pub(crate) fn logged(&self, needle: &str) -> Vec<String> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// Every log line so far.
    pub(crate) fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.0.join("bridge.toml")
    }

    /// A minimal HTTP/1.1 request to the admin API: (status, body).
    pub(crate) fn http(&self, method: &str, path: &str) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(&self.admin).expect("admin listens");
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.admin).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
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

    pub(crate) fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal}");
    }

    /// The daemon's thread count (`Threads:` of /proc/PID/status).
    pub(crate) fn threads(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the daemon's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("a Threads line")
    }

    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon stops within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The daemon's `--log-level` in these tests (default `info`), e.g.
/// `PRESENCE_E2E_LOG=info,presence_simple=debug` to see every request of a failing test.
const LOG_LEVEL_ENV: &str = "PRESENCE_E2E_LOG";

/// How many of the daemon's last log lines a failing test prints.
const LOG_TAIL: usize = 80;

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
            let skip = logs.len().saturating_sub(LOG_TAIL);
            eprintln!(
                "the daemon's last {} log lines ({LOG_LEVEL_ENV} sets the level):\n{}",
                logs.len() - skip,
                logs[skip..].join("\n")
            );
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A contact-centre client.
pub(crate) struct Client {
    pub ws: Ws,
    next_ref: u64,
    unsolicited: Vec<ServerEvent>,
}

impl Client {
    pub(crate) async fn connect(daemon: &Daemon) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(daemon.cti.as_str())
            .await
            .expect("the link accepts");
        Client {
            ws,
            next_ref: 1000,
            unsolicited: Vec::new(),
        }
    }

    pub(crate) async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    pub(crate) async fn next(&mut self) -> ServerEvent {
        loop {
            let frame = timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("an event in time")
                .unwrap()
                .unwrap();
            if let Message::Text(text) = frame {
                return ServerEvent::from_json(&text).unwrap();
            }
        }
    }

    pub(crate) async fn request(&mut self, body: ClientRequest) -> ServerEvent {
        self.next_ref += 1;
        let reference_id = self.next_ref;
        self.send_raw(&ClientMessage::new(reference_id, body).to_json())
            .await;
        loop {
            let event = self.next().await;
            if event.reference_id() == Some(reference_id) {
                return event;
            }
            self.unsolicited.push(event);
        }
    }

    /// Unsolicited events (DND) arriving within `wait`.
    pub(crate) async fn collect(&mut self, wait: Duration) -> Vec<ServerEvent> {
        let deadline = Instant::now() + wait;
        let mut out = std::mem::take(&mut self.unsolicited);
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            if let Message::Text(text) = frame {
                out.push(ServerEvent::from_json(&text).unwrap());
            }
        }
        out
    }
}

/// The DND events among `events`: (`on` | `off`, availability).
pub(crate) fn dnd(events: Vec<ServerEvent>) -> Vec<(&'static str, u64)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::EventDNDOn { availability, .. } => Some(("on", availability)),
            ServerEvent::EventDNDOff { availability, .. } => Some(("off", availability)),
            _ => None,
        })
        .collect()
}

pub(crate) fn dn(n: &str) -> presence_model::DnNumber {
    n.parse().unwrap()
}

pub(crate) fn conn(c: &str) -> ConnId {
    c.parse().unwrap()
}

pub(crate) fn login(d: &str) -> ClientRequest {
    ClientRequest::RequestAgentLogin {
        this_dn: dn(d),
        agent_id: format!("agent-{d}").parse().unwrap(),
        workmode: None,
        extensions: Extensions::new(),
    }
}

/// Drives DN `d` to (agent, device) with contact-centre messages.
pub(crate) async fn drive(client: &mut Client, d: &str, agent: AgentState, device: DeviceState) {
    client
        .request(ClientRequest::EventReleased {
            this_dn: dn(d),
            conn_id: conn("c1"),
        })
        .await;
    client
        .request(ClientRequest::EventDNBackInService { this_dn: dn(d) })
        .await;
    match device {
        DeviceState::Idle => {}
        DeviceState::Busy => {
            client
                .request(ClientRequest::EventRinging {
                    this_dn: dn(d),
                    conn_id: conn("c1"),
                })
                .await;
        }
        DeviceState::Oos => {
            client
                .request(ClientRequest::EventDNOutOfService { this_dn: dn(d) })
                .await;
        }
    }
    let logout = client
        .request(ClientRequest::RequestAgentLogout { this_dn: dn(d) })
        .await;
    assert!(matches!(
        logout,
        ServerEvent::EventAgentLogout { .. }
            | ServerEvent::EventError {
                error_code: ErrorCode::InvalidState,
                ..
            }
    ));
    if agent != AgentState::Logout {
        client.request(login(d)).await;
        let body = match agent {
            AgentState::Ready => ClientRequest::RequestAgentReady { this_dn: dn(d) },
            AgentState::NotReady => ClientRequest::RequestAgentNotReady {
                this_dn: dn(d),
                workmode: Some(WorkMode::AuxWork),
            },
            AgentState::Acw => ClientRequest::RequestAgentNotReady {
                this_dn: dn(d),
                workmode: Some(WorkMode::AfterCallWork),
            },
            _ => ClientRequest::RequestAgentNotReady {
                this_dn: dn(d),
                workmode: Some(WorkMode::WalkAway),
            },
        };
        client.request(body).await;
    }
}
