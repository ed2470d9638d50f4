//! The etcd members: start, health, kill, freeze, thaw, restart, inspection, clean-up.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::util::{
    find_program, free_port, http, is_executable, make_unique_dir, process_state, read_lossy,
    send_signal, tail, unique_token, wait_timeout, write_file,
};

/// The environment variable that keeps the cluster's directory (its path is printed)
/// instead of deleting it when an [`EtcdCluster`] is dropped.
pub const KEEP_ENV: &str = "PRESENCE_KEEP_ETCD";

/// Timeout of one HTTP exchange of the harness with a member.
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a stop waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Start attempts when a port is taken between choosing it and etcd binding it.
const START_ATTEMPTS: u32 = 3;

/// How to start the test cluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many members (1 or 3 in the tests; default 1).
    pub members: usize,
    /// The etcd program; default `etcd` on `PATH` (Debian's `etcd-server`: `/usr/bin/etcd`).
    pub program: Option<PathBuf>,
    /// How long to wait for every member to be healthy (default 30 s).
    pub startup_timeout: Duration,
    /// `--heartbeat-interval` (default 100 ms, etcd's own default).
    pub heartbeat: Duration,
    /// `--election-timeout` (default 1 s, etcd's own default). etcd's smallest lease TTL
    /// is 1.5 × this, rounded up to whole seconds.
    pub election_timeout: Duration,
    /// Serve clients over TLS as well ([`TlsOptions`]); default plain HTTP only.
    pub tls: Option<TlsOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            members: 1,
            program: None,
            startup_timeout: Duration::from_secs(30),
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_secs(1),
            tls: None,
        }
    }
}

impl Options {
    /// Sets [`members`](Self::members) (at least 1).
    #[must_use]
    pub fn members(mut self, members: usize) -> Self {
        self.members = members.max(1);
        self
    }

    /// Sets [`program`](Self::program).
    #[must_use]
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Sets [`startup_timeout`](Self::startup_timeout).
    #[must_use]
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Sets [`tls`](Self::tls).
    #[must_use]
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// TLS for the clients of the test cluster ([`Options::tls`]). Each member then serves
/// clients on `https://127.0.0.1:PORT` ([`EtcdCluster::client_url`]) with this certificate
/// (`--cert-file`, `--key-file`) and, with [`client_ca_pem`](Self::client_ca_pem), requires
/// client certificates signed by that CA (`--trusted-ca-file`, `--client-cert-auth`). The
/// harness keeps a plain-HTTP client listener of its own on each member
/// ([`EtcdCluster::control_url`]) for its health checks and inspection. Peers talk plain
/// HTTP on loopback.
///
/// Two rules of etcd 3.4 when client certificates are required: its JSON gateway connects to
/// its own gRPC server presenting the member's certificate, so that certificate must allow
/// client authentication too (extended key usages `serverAuth` and `clientAuth`, or none);
/// and once users are enabled ([`EtcdCluster::enable_auth`]) the gateway refuses (HTTP 400)
/// every client certificate that has a Common Name.
#[derive(Clone)]
pub struct TlsOptions {
    /// The server certificate chain, PEM, leaf first: it should name `127.0.0.1`.
    pub certificate_pem: String,
    /// Its private key, PEM.
    pub private_key_pem: String,
    /// When set, the CA (PEM) whose client certificates etcd requires.
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field(
                "certificate_pem",
                &format_args!("{} bytes", self.certificate_pem.len()),
            )
            .field("private_key_pem", &"<redacted>")
            .field(
                "client_ca_pem",
                &self.client_ca_pem.as_ref().map(String::len),
            )
            .finish()
    }
}

/// Where a member stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Running.
    Running,
    /// Frozen with SIGSTOP ([`EtcdCluster::freeze`]): its sockets stay open, it answers
    /// nothing.
    Frozen,
    /// Killed with SIGKILL ([`EtcdCluster::kill`]) or stopped; [`EtcdCluster::restart`]
    /// starts it again with its data.
    Killed,
}

#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// With TLS: the plain-HTTP listener of the harness.
    control_port: Option<u16>,
    child: Option<Child>,
    state: MemberState,
    starts: u32,
}

/// A private etcd cluster on loopback: 1 or more members, each with its own free client
/// and peer ports and its data directory in the cluster's temporary directory. Dropping it
/// stops every member by PID (frozen ones are resumed first) and deletes the directory
/// (unless [`KEEP_ENV`] is set).
#[derive(Debug)]
pub struct EtcdCluster {
    options: Options,
    program: PathBuf,
    dir: PathBuf,
    token: String,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts the members and waits until every one answers `/health` with `true`.
    ///
    /// # Errors
    /// [`HarnessError::NotInstalled`] when etcd is not installed (it says what to install);
    /// [`HarnessError::Died`] (with the log's tail) when a member exits;
    /// [`HarnessError::Timeout`] when the cluster is not healthy within
    /// [`Options::startup_timeout`]; I/O errors for the directory.
    pub fn start(options: Options) -> Result<EtcdCluster, HarnessError> {
        let program = match &options.program {
            Some(path) if is_executable(path) => path.clone(),
            Some(path) => {
                return Err(HarnessError::NotInstalled {
                    what: format!("etcd (`{}` is not an executable file)", path.display()),
                });
            }
            None => find_program("etcd").ok_or_else(|| HarnessError::NotInstalled {
                what: "etcd".to_owned(),
            })?,
        };
        let dir = make_unique_dir("presence-etcd")?;
        let mut cluster = EtcdCluster {
            options,
            program,
            dir,
            token: String::new(),
            members: Vec::new(),
        };
        // From here on, an error drops `cluster`, which stops what started and cleans up.
        cluster.write_tls_files()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            cluster.token = format!("presence-test-{}", unique_token());
            cluster.pick_ports()?;
            let all: Vec<usize> = (0..cluster.members.len()).collect();
            for &i in &all {
                cluster.spawn(i)?;
            }
            match cluster.wait_all_healthy(&all, cluster.options.startup_timeout) {
                Err(HarnessError::Died { log_tail, .. })
                    if attempt < START_ATTEMPTS && log_tail.contains("address already in use") =>
                {
                    cluster.stop_all();
                    for m in &cluster.members {
                        let _ =
                            std::fs::remove_dir_all(cluster.dir.join(format!("{}.etcd", m.name)));
                    }
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(cluster),
            }
        }
    }

    /// A one-member cluster with the default [`Options`].
    ///
    /// # Errors
    /// As [`EtcdCluster::start`].
    pub fn single() -> Result<EtcdCluster, HarnessError> {
        EtcdCluster::start(Options::default())
    }

    /// A three-member cluster with the default [`Options`] otherwise.
    ///
    /// # Errors
    /// As [`EtcdCluster::start`].
    pub fn three() -> Result<EtcdCluster, HarnessError> {
        EtcdCluster::start(Options::default().members(3))
    }

    /// How many members the cluster has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no member (never: at least one is started).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The options it was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The cluster's directory: each member's data directory (`m0.etcd`, ...), its log
    /// (`m0.log`, all starts appended) and, with TLS, the PEM files (`tls/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn member(&self, i: usize) -> Result<&Member, HarnessError> {
        self.members.get(i).ok_or(HarnessError::NoSuchMember {
            member: i,
            members: self.members.len(),
        })
    }

    fn member_mut(&mut self, i: usize) -> Result<&mut Member, HarnessError> {
        let members = self.members.len();
        self.members
            .get_mut(i)
            .ok_or(HarnessError::NoSuchMember { member: i, members })
    }

    /// The URL clients use for member `i`: `http://127.0.0.1:PORT`, or `https://...` with
    /// [`Options::tls`]. It stays the same across [`restart`](Self::restart).
    ///
    /// # Panics
    /// When there is no member `i`.
    pub fn client_url(&self, i: usize) -> String {
        let scheme = if self.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Every member's [`client_url`](Self::client_url), in member order.
    pub fn client_urls(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|i| self.client_url(i))
            .collect()
    }

    /// The plain-HTTP URL the harness talks to for member `i`: the client URL, or with TLS
    /// the harness's own listener.
    ///
    /// # Panics
    /// When there is no member `i`.
    pub fn control_url(&self, i: usize) -> String {
        let m = &self.members[i];
        format!(
            "http://127.0.0.1:{}",
            m.control_port.unwrap_or(m.client_port)
        )
    }

    /// The pid of member `i`, when it has a process (running or frozen).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members.get(i)?.child.as_ref().map(Child::id)
    }

    /// Where member `i` stands.
    ///
    /// # Panics
    /// When there is no member `i`.
    pub fn state(&self, i: usize) -> MemberState {
        self.members[i].state
    }

    /// `m<i>.log`: member `i`'s output, all starts appended.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("m{i}.log"))
    }

    /// Member `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        read_lossy(&self.log_path(i))
    }

    /// Kills member `i` with SIGKILL (a frozen member too) and reaps it. Its data stays;
    /// [`restart`](Self::restart) starts it again. Killing a killed member does nothing.
    ///
    /// # Errors
    /// [`HarnessError::NoSuchMember`]; [`HarnessError::Signal`] when it cannot be killed.
    pub fn kill(&mut self, i: usize) -> Result<(), HarnessError> {
        let member = self.member_mut(i)?;
        let Some(mut child) = member.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        let _ = child.kill();
        if wait_timeout(&mut child, Duration::from_secs(5)).is_none() {
            member.child = Some(child);
            return Err(HarnessError::Signal {
                signal: "KILL",
                member: i,
                pid,
            });
        }
        member.state = MemberState::Killed;
        Ok(())
    }

    /// Freezes member `i` with SIGSTOP and waits until the kernel shows it stopped: its
    /// sockets stay open and accept connections, but it answers nothing and takes no part
    /// in the cluster until [`thaw`](Self::thaw).
    ///
    /// # Errors
    /// [`HarnessError::NotRunning`] for a killed member; [`HarnessError::Signal`].
    pub fn freeze(&mut self, i: usize) -> Result<(), HarnessError> {
        self.signal(i, "STOP", MemberState::Frozen)?;
        let pid = self.pid(i).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(2);
        while process_state(pid) != Some('T') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Resumes a frozen member `i` with SIGCONT. Thawing a running member does nothing.
    ///
    /// # Errors
    /// [`HarnessError::NotRunning`] for a killed member; [`HarnessError::Signal`].
    pub fn thaw(&mut self, i: usize) -> Result<(), HarnessError> {
        self.signal(i, "CONT", MemberState::Running)
    }

    fn signal(
        &mut self,
        i: usize,
        signal: &'static str,
        next: MemberState,
    ) -> Result<(), HarnessError> {
        let member = self.member_mut(i)?;
        let Some(pid) = member.child.as_ref().map(Child::id) else {
            return Err(HarnessError::NotRunning {
                member: i,
                state: "killed",
            });
        };
        if !send_signal(pid, signal) {
            return Err(HarnessError::Signal {
                signal,
                member: i,
                pid,
            });
        }
        member.state = next;
        Ok(())
    }

    /// Starts the killed members `which` again, on their ports and with their data, and
    /// waits until each is healthy (a member is healthy only with a quorum: restart enough
    /// of them at once). A running member among them is left as it is; a frozen one is
    /// thawed.
    ///
    /// # Errors
    /// As [`EtcdCluster::start`].
    pub fn restart(&mut self, which: &[usize]) -> Result<(), HarnessError> {
        for &i in which {
            match self.member(i)?.state {
                MemberState::Killed => self.spawn(i)?,
                MemberState::Frozen => self.thaw(i)?,
                MemberState::Running => {}
            }
        }
        self.wait_all_healthy(which, self.options.startup_timeout)
    }

    /// Whether member `i` answers `/health` with `true` (it is up and the cluster has a
    /// leader and a quorum).
    ///
    /// # Errors
    /// [`HarnessError::Http`] when it does not answer.
    pub fn health(&self, i: usize) -> Result<bool, HarnessError> {
        self.member(i)?;
        let (status, body) = http(
            "GET",
            &format!("{}/health", self.control_url(i)),
            None,
            HTTP_TIMEOUT,
        )?;
        Ok(status == 200 && body.replace(' ', "").contains("\"health\":\"true\""))
    }

    /// Waits until every member of `which` is healthy.
    ///
    /// # Errors
    /// [`HarnessError::Died`] when one exits, [`HarnessError::Timeout`].
    pub fn wait_all_healthy(
        &mut self,
        which: &[usize],
        timeout: Duration,
    ) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        for &i in which {
            loop {
                self.check_alive(i)?;
                if self.health(i).unwrap_or(false) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(HarnessError::Timeout {
                        what: format!("etcd member {i} answering /health with true"),
                        after: timeout,
                        log_tail: self.current_log_tail(i),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// [`HarnessError::Died`] when member `i` was started and has exited.
    fn check_alive(&mut self, i: usize) -> Result<(), HarnessError> {
        let exited = match self.member_mut(i)?.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten(),
            None => {
                return Err(HarnessError::NotRunning {
                    member: i,
                    state: "killed",
                });
            }
        };
        if let Some(status) = exited {
            let member = self.member_mut(i)?;
            member.child = None;
            member.state = MemberState::Killed;
            return Err(HarnessError::Died {
                member: i,
                status: status.to_string(),
                log_tail: self.current_log_tail(i),
            });
        }
        Ok(())
    }

    /// A JSON request to etcd's gateway on member `i`'s [`control_url`](Self::control_url)
    /// (`path` such as `/v3/kv/range`); returns the HTTP status and the body.
    ///
    /// # Errors
    /// [`HarnessError::Http`] when the member does not answer within 2 s.
    pub fn post(&self, i: usize, path: &str, json: &str) -> Result<(u16, String), HarnessError> {
        self.member(i)?;
        http(
            "POST",
            &format!("{}{path}", self.control_url(i)),
            Some(json),
            HTTP_TIMEOUT,
        )
    }

    /// The index of the member that is the Raft leader, asked of the running members
    /// (`/v3/maintenance/status`); `None` when none knows a leader among them.
    ///
    /// # Errors
    /// [`HarnessError::Answer`] when an answer cannot be read.
    pub fn raft_leader(&self) -> Result<Option<usize>, HarnessError> {
        let mut ids = Vec::new();
        let mut leader = None;
        for (i, m) in self.members.iter().enumerate() {
            if m.state != MemberState::Running {
                continue;
            }
            let Ok((200, body)) = self.post(i, "/v3/maintenance/status", "{}") else {
                continue;
            };
            let value: serde_json::Value =
                serde_json::from_str(&body).map_err(|e| HarnessError::Answer {
                    what: "/v3/maintenance/status".to_owned(),
                    detail: format!("{e}: {body}"),
                })?;
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if let Some(id) = text(&value["header"]["member_id"]) {
                ids.push((i, id));
            }
            if let Some(l) = text(&value["leader"]).filter(|l| l != "0") {
                leader = Some(l);
            }
        }
        Ok(leader.and_then(|l| ids.into_iter().find(|(_, id)| *id == l).map(|(i, _)| i)))
    }

    /// Turns on etcd's authentication: creates the user `root` with `root_password` and
    /// the `root` role, and enables auth. Requests then need a token
    /// (`/v3/auth/authenticate`), except the harness's health checks.
    ///
    /// # Errors
    /// [`HarnessError::Answer`] when etcd refuses a step.
    pub fn enable_auth(&self, root_password: &str) -> Result<(), HarnessError> {
        let password = serde_json::Value::String(root_password.to_owned());
        for (path, body) in [
            (
                "/v3/auth/user/add",
                format!("{{\"name\":\"root\",\"password\":{password}}}"),
            ),
            ("/v3/auth/role/add", "{\"name\":\"root\"}".to_owned()),
            (
                "/v3/auth/user/grant",
                "{\"user\":\"root\",\"role\":\"root\"}".to_owned(),
            ),
            ("/v3/auth/enable", "{}".to_owned()),
        ] {
            let (status, answer) = self.post(0, path, &body)?;
            if status != 200 {
                return Err(HarnessError::Answer {
                    what: path.to_owned(),
                    detail: format!("HTTP {status}: {answer}"),
                });
            }
        }
        Ok(())
    }

    /// The log of member `i` written since its current start.
    fn current_log_tail(&self, i: usize) -> String {
        let log = self.log(i);
        let starts = self.members.get(i).map_or(0, |m| m.starts);
        let marker = format!("==== presence-testetcd: start #{starts} ");
        let current = log.rfind(&marker).map_or(log.as_str(), |at| &log[at..]);
        tail(current, 25)
    }

    fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    fn write_tls_files(&self) -> Result<(), HarnessError> {
        let Some(tls) = &self.options.tls else {
            return Ok(());
        };
        let dir = self.tls_dir();
        std::fs::create_dir(&dir).map_err(|source| HarnessError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        write_file(&dir.join("server.pem"), &tls.certificate_pem)?;
        write_file(&dir.join("server.key"), &tls.private_key_pem)?;
        if let Some(ca) = &tls.client_ca_pem {
            write_file(&dir.join("client-ca.pem"), ca)?;
        }
        Ok(())
    }

    fn pick_ports(&mut self) -> Result<(), HarnessError> {
        let count = self.options.members.max(1);
        self.members.clear();
        for i in 0..count {
            self.members.push(Member {
                name: format!("m{i}"),
                client_port: free_port()?,
                peer_port: free_port()?,
                control_port: match self.options.tls {
                    Some(_) => Some(free_port()?),
                    None => None,
                },
                child: None,
                state: MemberState::Killed,
                starts: 0,
            });
        }
        Ok(())
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) -> Result<(), HarnessError> {
        let initial_cluster = self.initial_cluster();
        let client_url = self.client_url(i);
        let control_url = self.control_url(i);
        let log_path = self.log_path(i);
        let data_dir = self.dir.join(format!("m{i}.etcd"));
        let tls_dir = self.tls_dir();
        let options = self.options.clone();
        let program = self.program.clone();
        let token = self.token.clone();
        let member = self.member_mut(i)?;
        member.starts += 1;
        let io_err = |source| HarnessError::Io {
            action: "write",
            path: log_path.clone(),
            source,
        };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err)?;
        writeln!(
            log,
            "==== presence-testetcd: start #{} of {} on {client_url} ====",
            member.starts, member.name
        )
        .map_err(io_err)?;
        let log_err = log.try_clone().map_err(io_err)?;
        let listen_client = if options.tls.is_some() {
            format!("{client_url},{control_url}")
        } else {
            client_url.clone()
        };
        let peer_url = format!("http://127.0.0.1:{}", member.peer_port);
        let mut cmd = Command::new(&program);
        cmd.arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen-client-urls")
            .arg(listen_client)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(initial_cluster)
            .arg("--initial-cluster-token")
            .arg(token)
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--heartbeat-interval")
            .arg(options.heartbeat.as_millis().to_string())
            .arg("--election-timeout")
            .arg(options.election_timeout.as_millis().to_string())
            .arg("--logger")
            .arg("zap")
            .arg("--log-outputs")
            .arg("stderr");
        if let Some(tls) = &options.tls {
            cmd.arg("--cert-file")
                .arg(tls_dir.join("server.pem"))
                .arg("--key-file")
                .arg(tls_dir.join("server.key"));
            if tls.client_ca_pem.is_some() {
                cmd.arg("--trusted-ca-file")
                    .arg(tls_dir.join("client-ca.pem"))
                    .arg("--client-cert-auth");
            }
        }
        // etcd reads ETCD_* variables as flags and refuses a flag given both ways.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(name);
            }
        }
        cmd.current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
        let member = self.member_mut(i)?;
        member.child = Some(child);
        member.state = MemberState::Running;
        Ok(())
    }

    /// Stops every member: frozen ones are resumed, then SIGTERM to all, up to 3 s to exit,
    /// SIGKILL to the rest.
    fn stop_all(&mut self) {
        for m in &mut self.members {
            if let Some(child) = &m.child {
                if m.state == MemberState::Frozen {
                    send_signal(child.id(), "CONT");
                }
                send_signal(child.id(), "TERM");
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let left = deadline.saturating_duration_since(Instant::now());
                if wait_timeout(&mut child, left).is_none() {
                    let _ = child.kill();
                    let _ = wait_timeout(&mut child, Duration::from_secs(2));
                }
            }
            m.state = MemberState::Killed;
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.stop_all();
        if std::thread::panicking() {
            for i in 0..self.members.len() {
                eprintln!(
                    "presence-testetcd: member m{i} ({}), last lines of its log:\n{}",
                    self.client_url(i),
                    tail(&self.log(i), 15)
                );
            }
        }
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!(
                "presence-testetcd: kept the cluster directory {} ({KEEP_ENV} is set)",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
