//! What the load examples share: the release binary, a scratch folder with the example
//! map, a configuration with the two example profiles, a `run` child process, and /proc
//! readings (resident memory, CPU time).

#![allow(dead_code)] // each example uses its own part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The release binary: `PRESENCE_BRIDGE_BIN`, else `release/presence-bridge` under
/// `CARGO_TARGET_DIR` (or the workspace's `target`).
pub(crate) fn binary() -> Result<PathBuf, Error> {
    let binary = std::env::var_os("PRESENCE_BRIDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| root().join("target"), PathBuf::from)
                .join("release/presence-bridge")
        });
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "{} is missing: run `cargo build --release -p presence-bridge` first",
            binary.display()
        )
        .into())
    }
}

/// A scratch folder holding the example map as `agent-states.xml`.
pub(crate) fn scratch(name: &str) -> Result<PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!("presence-bridge-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(
        root().join("examples/agent-states.xml"),
        dir.join("agent-states.xml"),
    )?;
    Ok(dir)
}

/// The example's two profiles (`PushProfile`: the seed's 15 rows; `PullProfile`:
/// 3000-5999 available), and a CTI link that does not limit a load generator.
pub(crate) const PROFILES: &str = r#"
[dn.PushProfile]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", agent-presence-map = "agent-states.xml", aggregated-states = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7=INCALL, 8=INCALL, 9=INCALL, 10=INCALL, 11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS" }

[dn.PullProfile]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true", presence-availability-range = "3000-5999" }

[cti]
listen = "127.0.0.1:0"
rate-per-second = 1000000
burst = 1000000
queue = 100000
"#;

/// A configuration's start: `presence-platform`, the example profiles, and an `[sfb]` table
/// for the simulator at `pool` (none when `pool` is `None`).
pub(crate) fn head(platform: &str, pool: Option<std::net::SocketAddr>) -> String {
    let mut text = format!("[options.TServer]\npresence-platform = \"{platform}\"\n{PROFILES}");
    if let Some(pool) = pool {
        text.push_str(&format!(
            "\n[sfb]\npool = \"{pool}\"\ntransport = \"tcp\"\napplication-uri = \"sip:bridge@contoso.com\"\n"
        ));
    }
    text
}

/// The profile of the `i`-th DN of a load run: even push, odd pull.
pub(crate) fn half(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "PushProfile"
    } else {
        "PullProfile"
    }
}

/// One Extension DN.
pub(crate) fn dn(number: usize, uri: &str, platform: &str, profile: &str) -> String {
    format!(
        "\n[dn.\"{number}\"]\ntype = \"Extension\"\nuri = \"{uri}\"\nplatform = \"{platform}\"\nannex.TServer = {{ presence-profile = \"{profile}\" }}\n"
    )
}

/// `presence-bridge run` on `config` (written into `dir`), and the CTI URL once it runs.
pub(crate) fn spawn(dir: &Path, config: &str) -> Result<(Child, String), Error> {
    let path = dir.join("bridge.toml");
    std::fs::write(&path, config)?;
    let mut child = Command::new(binary()?)
        .args([
            "run",
            "--config",
            path.to_str().ok_or("path")?,
            "--no-admin",
            "--log-format",
            "json",
            "--log-level",
            "warn,presence_bridge=info",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("bridge running") {
                let _ = tx.send(Ok(line));
            } else if line.contains("\"ERROR\"") {
                eprintln!("daemon: {line}");
            }
        }
        let _ = tx.send(Err(()));
    });
    let Ok(Ok(line)) = rx.recv_timeout(Duration::from_secs(120)) else {
        return Err("the daemon did not start (see its errors above)".into());
    };
    let json: serde_json::Value = serde_json::from_str(&line)?;
    let cti = json["fields"]["cti"]
        .as_str()
        .ok_or("cti address")?
        .to_owned();
    Ok((child, cti))
}

/// Stops a daemon with SIGTERM and waits for it.
pub(crate) fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A `NAME: value ...` line's first number in /proc/PID/status, 0 when unknown.
fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory of a process (`VmRSS`), KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS")
}

/// Peak resident memory of a process (`VmHWM`), KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmHWM")
}

/// CPU time a process used so far (user + system, all threads), from /proc/PID/stat,
/// assuming the usual 100 clock ticks per second.
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A percentile of sorted samples.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

// ---------------------------------------------------------------------------------------
// For the soak (examples/soak.rs): a daemon with the admin API, stopped when dropped; a
// scratch folder removed when dropped; transport tables; a tiny HTTP client; thread counts.

/// A scratch folder (as [`scratch`]) that is removed when dropped, also on failure.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A new scratch folder holding the example map as `agent-states.xml`.
    pub(crate) fn new(name: &str) -> Result<ScratchDir, Error> {
        scratch(name)
            .map(ScratchDir)
            .map_err(|e| format!("cannot make the scratch folder for {name}: {e}").into())
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the daemon wrote to standard error so far: counts and the latest lines.
#[derive(Debug, Default)]
pub(crate) struct DaemonLog {
    /// Lines at WARN level.
    pub(crate) warnings: u64,
    /// Lines at ERROR level.
    pub(crate) errors: u64,
    /// Lines that report a panic.
    pub(crate) panics: u64,
    /// The latest lines (at most [`DaemonLog::TAIL`]).
    pub(crate) tail: std::collections::VecDeque<String>,
}

impl DaemonLog {
    /// How many lines [`DaemonLog::tail`] keeps.
    pub(crate) const TAIL: usize = 60;
}

/// A `presence-bridge run` child process: SIGTERM when dropped (SIGKILL after 10 s), so
/// that no daemon outlives its example, also on failure.
pub(crate) struct Daemon {
    child: Option<Child>,
    /// The contact-centre link's URL (`ws://127.0.0.1:PORT/v1/cti`).
    pub(crate) cti: String,
    /// The admin API's address, when it is on.
    pub(crate) admin: Option<std::net::SocketAddr>,
    /// What the daemon logs (`--log-format json`).
    pub(crate) log: std::sync::Arc<std::sync::Mutex<DaemonLog>>,
}

impl Daemon {
    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `Some(status)` once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The admin API's address, or an error saying that it is off.
    pub(crate) fn admin(&self) -> Result<std::net::SocketAddr, Error> {
        self.admin
            .ok_or_else(|| "the daemon runs without its admin API ([admin] or --no-admin)".into())
    }

    /// The latest lines of its log, one string.
    pub(crate) fn log_tail(&self) -> String {
        let log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Stops it: SIGTERM, then SIGKILL when it has not exited within 10 s; the exit status.
    pub(crate) fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `presence-bridge run` on `config` (written into `dir` as `bridge.toml`) with `--log-level
/// log_level`, the admin API on when `admin` (the configuration then needs an `[admin]`
/// table, e.g. `listen = "127.0.0.1:0"`). Returns once it logs `bridge running`; its error
/// lines are echoed to standard error as `daemon: ...`.
pub(crate) fn start_daemon(
    dir: &Path,
    config: &str,
    admin: bool,
    log_level: &str,
) -> Result<Daemon, Error> {
    let path = dir.join("bridge.toml");
    std::fs::write(&path, config).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let binary = binary()?;
    let mut command = Command::new(&binary);
    command.args([
        "run",
        "--config",
        path.to_str().ok_or("the scratch path is not UTF-8")?,
        "--log-format",
        "json",
        "--log-level",
        log_level,
    ]);
    if !admin {
        command.arg("--no-admin");
    }
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let Some(stderr) = child.stderr.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("the daemon's standard error is not a pipe".into());
    };
    let log = std::sync::Arc::new(std::sync::Mutex::new(DaemonLog::default()));
    let mut daemon = Daemon {
        child: Some(child),
        cti: String::new(),
        admin: None,
        log: std::sync::Arc::clone(&log),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let error = line.contains("\"ERROR\"");
            {
                let mut log = log
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.warnings += u64::from(line.contains("\"WARN\""));
                log.errors += u64::from(error);
                log.panics += u64::from(line.contains("panicked"));
                if log.tail.len() == DaemonLog::TAIL {
                    log.tail.pop_front();
                }
                log.tail.push_back(line.clone());
            }
            if line.contains("bridge running") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Ok(line));
                }
            } else if error || line.contains("panicked") {
                eprintln!("daemon: {line}");
            }
        }
        if let Some(tx) = tx {
            let _ = tx.send(Err(()));
        }
    });
    let Ok(Ok(line)) = rx.recv_timeout(Duration::from_secs(120)) else {
        return Err(format!(
            "the daemon did not start within 120 s; its log ends with:\n{}",
            daemon.log_tail()
        )
        .into());
    };
    let json: serde_json::Value = serde_json::from_str(&line)
        .map_err(|e| format!("the `bridge running` line is not JSON ({e}): {line}"))?;
    daemon.cti = json["fields"]["cti"]
        .as_str()
        .ok_or_else(|| format!("no `cti` field in the `bridge running` line: {line}"))?
        .to_owned();
    if admin {
        let url = json["fields"]["admin"]
            .as_str()
            .ok_or_else(|| format!("no `admin` field in the `bridge running` line: {line}"))?;
        let address = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("the admin API is not on http:// ({url})"))?;
        daemon.admin = Some(
            address
                .parse()
                .map_err(|e| format!("the admin address `{address}` does not parse: {e}"))?,
        );
    }
    Ok(daemon)
}

/// The `[teams]` table for the Graph simulator (its default app registration).
pub(crate) fn teams_table(graph: &presence_graph_sim::GraphSimServer) -> String {
    format!(
        "\n[teams]\ntenant = \"{}\"\nclient-id = \"{}\"\nclient-secret = \"{}\"\nauthority = \"{}\"\ngraph-url = \"{}\"\n",
        graph.tenant(),
        presence_graph_sim::SimConfig::DEFAULT_CLIENT_ID,
        presence_graph_sim::SimConfig::DEFAULT_CLIENT_SECRET,
        graph.authority(),
        graph.graph_url()
    )
}

/// The `[simple]` table for a SIP SIMPLE server at `server` (TCP) serving `domain`.
pub(crate) fn simple_table(server: std::net::SocketAddr, domain: &str) -> String {
    format!(
        "\n[simple]\nserver = \"{server}\"\ntransport = \"tcp\"\ndomain = \"{domain}\"\napplication-uri = \"sip:presence-bridge@{domain}\"\n"
    )
}

/// An HTTP/1.0 request without a body to `addr` (the admin API): the status and the body.
/// Errors name the request and what failed.
pub(crate) async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> Result<(u16, String), Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let what = format!("{method} http://{addr}{path}");
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{what}: cannot connect: {e}"))?;
        let request =
            format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("{what}: cannot send: {e}"))?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer)
            .await
            .map_err(|e| format!("{what}: cannot read the answer: {e}"))?;
        Ok::<_, Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| format!("{what}: no answer within 30 s"))??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{what}: the answer has no header section end: {text:.200}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "{what}: no status in `{}`",
                head.lines().next().unwrap_or("")
            )
        })?;
    Ok((status, body.to_owned()))
}

/// The daemon's view of a DN, in one line, to explain a difference.
pub(crate) async fn daemon_view(admin: std::net::SocketAddr, dn: &str) -> String {
    match http(admin, "GET", &format!("/v1/dns/{dn}")).await {
        Ok((200, body)) => match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(v) => {
                let keys = [
                    "agent_state",
                    "device_state",
                    "mode",
                    "target_state",
                    "last_published_state",
                    "last_publication_error",
                    "last_reported_availability",
                    "dnd",
                    "registered_clients",
                    "user_problem",
                ];
                keys.iter()
                    .filter(|k| !v[**k].is_null())
                    .map(|k| format!("{k}={}", v[*k]))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            Err(_) => body,
        },
        Ok((status, body)) => format!("HTTP {status}: {body:.200}"),
        Err(e) => e.to_string(),
    }
}

/// The value of an unlabelled metric in a Prometheus text page, if present.
pub(crate) fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// How many threads a process has (`Threads:` of /proc/PID/status), 0 when unknown.
pub(crate) fn threads(pid: u32) -> u64 {
    status_field(pid, "Threads")
}

// ---------------------------------------------------------------------------------------
// The contact-centre mix and what it must show (the soak and the load generator)

/// A draw in `0..n`.
pub(crate) fn below(rng: &mut presence_model::random::SplitMix64, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// One of `items`, drawn.
pub(crate) fn pick<'a, T>(rng: &mut presence_model::random::SplitMix64, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len())]
}

/// The contact-centre side of one push DN, as the events sent make it.
#[derive(Clone, Debug, Default)]
pub(crate) struct AgentDn {
    /// The agent state.
    pub(crate) agent: presence_model::AgentState,
    /// The calls on the device.
    pub(crate) calls: std::collections::BTreeSet<String>,
    /// Out of service.
    pub(crate) oos: bool,
    /// Calls that may be open at the bridge: every call not known released (an
    /// `EventReleased` answered).
    pub(crate) maybe_open: std::collections::BTreeSet<String>,
}

impl AgentDn {
    /// The engine's rule (docs/cti-protocol.md): OOS wins over Busy; Busy while a call is on.
    pub(crate) fn device(&self) -> presence_model::DeviceState {
        use presence_model::DeviceState;
        if self.oos {
            DeviceState::Oos
        } else if self.calls.is_empty() {
            DeviceState::Idle
        } else {
            DeviceState::Busy
        }
    }
}

/// The agent state right after a login (docs/cti-protocol.md, a decision of the bridge).
pub(crate) fn login_state(workmode: Option<presence_tlib::WorkMode>) -> presence_model::AgentState {
    use presence_model::AgentState;
    use presence_tlib::WorkMode;
    match workmode {
        Some(WorkMode::AutoIn | WorkMode::ManualIn) => AgentState::Ready,
        Some(mode) => mode.agent_state(),
        None => AgentState::NotReady,
    }
}

/// One random agent or device event for push DN `dn` in `state` that is valid there (so
/// that its answer must be a success): login (in any work mode), logout, ready, not ready
/// (ACW, walk away, aux work...), calls ringing or dialled, established and released, out
/// of service and back. Agent events more often than device events; a device leaves OOS
/// and its calls end more often than it enters them, so that every combination is common.
/// `new_call` names a new call. Returns the request, the DN's state after it, and the
/// call it releases.
pub(crate) fn mix_event(
    rng: &mut presence_model::random::SplitMix64,
    dn: &str,
    state: &AgentDn,
    mut new_call: impl FnMut() -> String,
) -> Result<(presence_tlib::ClientRequest, AgentDn, Option<String>), Error> {
    use presence_model::AgentState;
    use presence_tlib::{ClientRequest, Extensions, WorkMode};
    let this_dn: presence_model::DnNumber = dn.parse()?;
    let mut next = state.clone();
    let idle = state.calls.is_empty() && !state.oos;
    let agent_event = rng.next_f64() < if idle { 0.75 } else { 0.5 };
    let mut released = None;
    let mut call = |next: &mut AgentDn, ringing: bool| -> Result<ClientRequest, Error> {
        let call = new_call();
        next.calls.insert(call.clone());
        next.maybe_open.insert(call.clone());
        let conn_id = call.parse()?;
        Ok(if ringing {
            ClientRequest::EventRinging {
                this_dn: this_dn.clone(),
                conn_id,
            }
        } else {
            ClientRequest::EventDialing {
                this_dn: this_dn.clone(),
                conn_id,
            }
        })
    };
    let body = if agent_event {
        if state.agent == AgentState::Logout {
            let workmode = *pick(
                rng,
                &[
                    None,
                    Some(WorkMode::AutoIn),
                    Some(WorkMode::ManualIn),
                    Some(WorkMode::AfterCallWork),
                    Some(WorkMode::WalkAway),
                    Some(WorkMode::AuxWork),
                ],
            );
            next.agent = login_state(workmode);
            ClientRequest::RequestAgentLogin {
                this_dn,
                agent_id: format!("agent{dn}").parse()?,
                workmode,
                extensions: Extensions::new(),
            }
        } else {
            let r = rng.next_f64();
            if r < 0.1 {
                next.agent = AgentState::Logout;
                ClientRequest::RequestAgentLogout { this_dn }
            } else if r < 0.5 {
                next.agent = AgentState::Ready;
                ClientRequest::RequestAgentReady { this_dn }
            } else {
                let workmode = *pick(
                    rng,
                    &[
                        None,
                        Some(WorkMode::AfterCallWork),
                        Some(WorkMode::WalkAway),
                        Some(WorkMode::AuxWork),
                        Some(WorkMode::Unknown),
                    ],
                );
                next.agent = workmode.map_or(AgentState::NotReady, WorkMode::agent_state);
                ClientRequest::RequestAgentNotReady { this_dn, workmode }
            }
        }
    } else {
        let r = rng.next_f64();
        let calls: Vec<String> = state.calls.iter().cloned().collect();
        if (state.oos && r < 0.5) || (!state.oos && r < 0.06) {
            next.oos = !state.oos;
            if state.oos {
                ClientRequest::EventDNBackInService { this_dn }
            } else {
                ClientRequest::EventDNOutOfService { this_dn }
            }
        } else if calls.is_empty() {
            call(&mut next, r < 0.7)?
        } else if r < 0.3 {
            let call = pick(rng, &calls).clone();
            ClientRequest::EventEstablished {
                this_dn,
                conn_id: call.parse()?,
            }
        } else if r < 0.85 || calls.len() >= 2 {
            let call = pick(rng, &calls).clone();
            next.calls.remove(&call);
            released = Some(call.clone());
            ClientRequest::EventReleased {
                this_dn,
                conn_id: call.parse()?,
            }
        } else {
            call(&mut next, true)?
        }
    };
    Ok((body, next, released))
}

/// A value of a profile's `annex.TServer` in [`PROFILES`].
pub(crate) fn profile_option(profile: &str, key: &str) -> Result<String, Error> {
    let profiles: toml::Table =
        toml::from_str(PROFILES).map_err(|e| format!("support::PROFILES does not parse: {e}"))?;
    profiles
        .get("dn")
        .and_then(|d| d.get(profile))
        .and_then(|p| p.get("annex"))
        .and_then(|a| a.get("TServer"))
        .and_then(|t| t.get(key))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("support::PROFILES has no `{key}` in profile {profile}").into())
}

/// What each (agent, device) combination of `PushProfile` publishes, compiled by the
/// project's own `presence-push` from the map at `map` (the example map): the expectation,
/// computed independently of the daemon.
pub(crate) fn push_table(map: &Path) -> Result<presence_push::PushTable, Error> {
    let xml = std::fs::read(map).map_err(|e| format!("cannot read {}: {e}", map.display()))?;
    let map = presence_map::AgentPresenceMap::parse(&xml)
        .map_err(|e| format!("the example map does not parse: {e}"))?
        .map;
    let states = presence_config::options::parse_aggregated_states(&profile_option(
        "PushProfile",
        "aggregated-states",
    )?)
    .map_err(|e| format!("PushProfile's aggregated-states: {e}"))?;
    presence_push::PushTable::compile(&states, &map)
        .map_err(|e| format!("PushProfile does not compile against the map: {e}").into())
}

/// `PullProfile`'s mapping of availability to DND, by `presence-pull`.
pub(crate) fn pull_mapper() -> Result<presence_pull::PullMapper, Error> {
    let ranges = presence_config::options::parse_availability_ranges(&profile_option(
        "PullProfile",
        "presence-availability-range",
    )?)
    .map_err(|e| format!("PullProfile's ranges: {e}"))?;
    Ok(presence_pull::PullMapper::new(&ranges))
}
