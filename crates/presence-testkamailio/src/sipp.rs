//! SIPp runs against the test Kamailio: a long-running watcher, the RFC 3903 publisher
//! scenario and a PUBLISH load run.

use std::fs::File;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use presence_sip::{Message, Method, Request};

use crate::trace::{Direction, TracedMessage, parse_trace};
use crate::util::{
    free_port, read_lossy, require_program, run, tail, terminate, unique_token, wait_timeout,
    write_file,
};
use crate::{DOMAIN, HarnessError, Kamailio};

/// The watcher scenario (`sipp/watcher.xml`).
pub const WATCHER_XML: &str = include_str!("../sipp/watcher.xml");
/// The RFC 3903 publisher scenario (`sipp/publish.xml`).
pub const PUBLISH_XML: &str = include_str!("../sipp/publish.xml");
/// The PUBLISH load scenario (`sipp/publish-load.xml`).
pub const PUBLISH_LOAD_XML: &str = include_str!("../sipp/publish-load.xml");
/// The injection file for manual runs of `publish.xml` (`sipp/target.csv`: `agent1`).
pub const TARGET_CSV: &str = include_str!("../sipp/target.csv");

/// The SIP transport a SIPp run uses (always one socket: `-t u1` / `-t t1`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    #[default]
    Udp,
    /// One TCP connection.
    Tcp,
}

impl Transport {
    /// SIPp's `-t` value: `u1` or `t1`.
    pub fn sipp_flag(self) -> &'static str {
        match self {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
        }
    }

    /// `UDP` or `TCP`, as in a Via header.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// A directory for one SIPp run, under the Kamailio run directory.
fn run_dir(kamailio: &Kamailio, kind: &str) -> Result<PathBuf, HarnessError> {
    let dir = kamailio
        .run_dir()
        .join("sipp")
        .join(format!("{kind}-{}", unique_token()));
    std::fs::create_dir_all(&dir).map_err(|source| HarnessError::Io {
        action: "create",
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn create(path: &Path) -> Result<File, HarnessError> {
    File::create(path).map_err(|source| HarnessError::Io {
        action: "create",
        path: path.to_owned(),
        source,
    })
}

/// The common SIPp arguments: scenario, local address and port, transport, no TTY.
fn sipp_command(sipp: &Path, scenario: &Path, port: u16, transport: Transport) -> Command {
    let mut cmd = Command::new(sipp);
    cmd.arg("-sf")
        .arg(scenario)
        .arg("-i")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .arg("-t")
        .arg(transport.sipp_flag())
        .arg("-nostdin");
    cmd
}

fn secs_arg(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// One NOTIFY a [`Watcher`] received (retransmissions are dropped).
#[derive(Clone, Debug)]
pub struct Notify {
    /// Its CSeq number (Kamailio starts at 2).
    pub cseq: u32,
    /// The `Subscription-State` header (`active;expires=599`, `terminated;reason=timeout`).
    pub subscription_state: String,
    /// The `Content-Type`, when there is a body.
    pub content_type: Option<String>,
    /// The body (the PIDF document); empty when Kamailio has nothing live to show.
    pub body: String,
    /// SIPp's receive timestamp.
    pub at: String,
    /// The whole message.
    pub message: Message,
}

impl Notify {
    /// The state without parameters: `active`, `pending` or `terminated`.
    pub fn state(&self) -> &str {
        self.subscription_state
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
    }

    /// Whether the subscription is over.
    pub fn is_terminated(&self) -> bool {
        self.state().eq_ignore_ascii_case("terminated")
    }

    /// Whether it carries a body.
    pub fn has_body(&self) -> bool {
        !self.body.trim().is_empty()
    }

    fn from_traced(t: &TracedMessage) -> Option<Notify> {
        let request = t.message.as_request()?;
        if request.method() != &Method::Notify {
            return None;
        }
        let headers = request.headers();
        let cseq = headers.cseq().ok().flatten().map_or(0, |c| c.seq);
        Some(Notify {
            cseq,
            subscription_state: headers
                .get("Subscription-State")
                .unwrap_or_default()
                .to_owned(),
            content_type: headers.get("Content-Type").map(str::to_owned),
            body: String::from_utf8_lossy(request.body()).into_owned(),
            at: t.at.clone(),
            message: t.message.clone(),
        })
    }
}

/// What a [`Watcher`] subscribes with.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// UDP (default) or TCP.
    pub transport: Transport,
    /// The SUBSCRIBE's `Expires` (default 600; Kamailio's `max_expires` is 3600).
    pub expires: u32,
    /// The watcher's user part (`From: sip:USER@test.local`, default `watcher`).
    pub watcher_user: String,
    /// How long to wait for the 2xx and the initial NOTIFY (default 5 s).
    pub ready_timeout: Duration,
    /// SIPp's global `-timeout`: the watcher ends by itself after this (default 300 s).
    pub lifetime: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            transport: Transport::Udp,
            expires: 600,
            watcher_user: "watcher".to_owned(),
            ready_timeout: Duration::from_secs(5),
            lifetime: Duration::from_secs(300),
        }
    }
}

impl WatchOptions {
    /// Sets [`transport`](Self::transport).
    #[must_use]
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Sets [`expires`](Self::expires).
    #[must_use]
    pub fn expires(mut self, expires: u32) -> Self {
        self.expires = expires;
        self
    }

    /// Sets [`watcher_user`](Self::watcher_user).
    #[must_use]
    pub fn watcher_user(mut self, user: impl Into<String>) -> Self {
        self.watcher_user = user.into();
        self
    }
}

/// A SIPp watcher (`sipp/watcher.xml`): subscribes to one presentity from its own free
/// port, answers every NOTIFY with 200 and records everything in SIPp's message trace,
/// which [`notifies`](Self::notifies) reads. [`unsubscribe`](Self::unsubscribe) ends the
/// subscription cleanly; dropping it kills SIPp without un-SUBSCRIBE (Kamailio then drops
/// the subscription when a NOTIFY fails: over UDP after `fr_timer`, 5 s of retransmissions).
#[derive(Debug)]
pub struct Watcher {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    transport: Transport,
    user: String,
    call_id: String,
}

impl Watcher {
    /// Starts SIPp and waits until the SUBSCRIBE got its 2xx and the initial NOTIFY came
    /// (so [`notifies`](Self::notifies)`()[0]` is the initial NOTIFY).
    ///
    /// # Errors
    /// [`HarnessError::NotInstalled`] without `sipp`; [`HarnessError::Died`] when SIPp
    /// exits (a refused SUBSCRIBE, a port problem); [`HarnessError::Timeout`].
    pub fn subscribe(
        kamailio: &Kamailio,
        user: &str,
        options: WatchOptions,
    ) -> Result<Watcher, HarnessError> {
        let sipp = require_program("sipp")?;
        let dir = run_dir(kamailio, &format!("watcher-{user}"))?;
        let scenario = dir.join("watcher.xml");
        write_file(&scenario, WATCHER_XML)?;
        let csv = dir.join("watcher.csv");
        write_file(
            &csv,
            &format!(
                "SEQUENTIAL\n{user};{};{}\n",
                options.expires, options.watcher_user
            ),
        )?;
        let port = free_port()?;
        let out = create(&dir.join("sipp.out"))?;
        let err = out.try_clone().map_err(|source| HarnessError::Io {
            action: "write",
            path: dir.join("sipp.out"),
            source,
        })?;
        let mut cmd = sipp_command(&sipp, &scenario, port, options.transport);
        cmd.arg("-inf")
            .arg(&csv)
            .arg("-m")
            .arg("1")
            .arg("-l")
            .arg("1")
            .arg("-max_socket")
            .arg("100")
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.join("messages.log"))
            .arg("-trace_err")
            .arg("-error_file")
            .arg(dir.join("errors.log"))
            .arg("-timeout")
            .arg(secs_arg(options.lifetime))
            .arg(kamailio.addr().to_string())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            program: sipp.display().to_string(),
            source,
        })?;
        let mut watcher = Watcher {
            child: Some(child),
            dir,
            port,
            transport: options.transport,
            user: user.to_owned(),
            call_id: String::new(),
        };
        watcher.wait_ready(options.ready_timeout)?;
        Ok(watcher)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let trace = self.trace();
            if self.call_id.is_empty()
                && let Some(id) = trace
                    .iter()
                    .find(|t| t.direction == Direction::Sent && t.message.is_request())
                    .and_then(|t| t.message.headers().call_id())
            {
                self.call_id = id.to_owned();
            }
            let answered = trace.iter().any(|t| {
                t.direction == Direction::Received
                    && t.message.as_response().is_some_and(|r| {
                        r.status().is_success()
                            && r.headers()
                                .cseq()
                                .ok()
                                .flatten()
                                .is_some_and(|c| c.method == Method::Subscribe)
                    })
            });
            let notified = trace
                .iter()
                .any(|t| t.direction == Direction::Received && Notify::from_traced(t).is_some());
            if answered && notified && !self.call_id.is_empty() {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                return Err(self.timeout("the SUBSCRIBE's 2xx and the initial NOTIFY", timeout));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIPp's own port (the watcher's Contact), on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The watched user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The subscription's Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The run's directory: `watcher.xml`, `watcher.csv`, `messages.log` (the trace),
    /// `errors.log`, `sipp.out` (SIPp's screens).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The message trace file (`-trace_msg -message_file`).
    pub fn trace_path(&self) -> PathBuf {
        self.dir.join("messages.log")
    }

    /// SIPp's standard output and error so far.
    pub fn output(&self) -> String {
        read_lossy(&self.dir.join("sipp.out"))
    }

    /// Every message sent and received so far.
    pub fn trace(&self) -> Vec<TracedMessage> {
        parse_trace(&std::fs::read(self.trace_path()).unwrap_or_default())
    }

    /// The NOTIFYs received so far, in order, without retransmissions (same CSeq).
    pub fn notifies(&self) -> Vec<Notify> {
        let mut out: Vec<Notify> = Vec::new();
        for t in self.trace() {
            if t.direction != Direction::Received {
                continue;
            }
            if let Some(n) = Notify::from_traced(&t)
                && !out.iter().any(|seen| seen.cseq == n.cseq)
            {
                out.push(n);
            }
        }
        out
    }

    /// Waits until `done` holds for the NOTIFYs received so far, and returns them.
    ///
    /// # Errors
    /// [`HarnessError::Timeout`] (with the NOTIFYs seen), [`HarnessError::Died`] when SIPp
    /// exits first.
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[Notify]) -> bool,
    ) -> Result<Vec<Notify>, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let notifies = self.notifies();
            if done(&notifies) {
                return Ok(notifies);
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                return Err(self.timeout("the awaited NOTIFY", timeout));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the first NOTIFY (counting from the initial one) for which `matches`
    /// holds.
    ///
    /// # Errors
    /// As [`wait_until`](Self::wait_until).
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&Notify) -> bool,
    ) -> Result<Notify, HarnessError> {
        let notifies = self.wait_until(timeout, |all| all.iter().any(&matches))?;
        notifies
            .into_iter()
            .find(|n| matches(n))
            .ok_or_else(|| HarnessError::Parse {
                what: "the NOTIFYs",
                detail: "a matching NOTIFY vanished".to_owned(),
            })
    }

    /// Waits until at least `count` NOTIFYs came.
    ///
    /// # Errors
    /// As [`wait_until`](Self::wait_until).
    pub fn wait_for_count(
        &mut self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Notify>, HarnessError> {
        self.wait_until(timeout, |all| all.len() >= count)
    }

    /// Whether SIPp still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Ends the subscription cleanly: sends SIPp a MESSAGE with the subscription's Call-ID
    /// (over UDP, or a new TCP connection to SIPp's port), on which the scenario
    /// un-SUBSCRIBEs (`Expires: 0`), takes the 200 and the final NOTIFY
    /// (`Subscription-State: terminated`) and ends; waits for SIPp to exit 0. Returns every
    /// NOTIFY, the final one last.
    ///
    /// # Errors
    /// [`HarnessError::Died`] when SIPp fails (for example Kamailio is down),
    /// [`HarnessError::Timeout`] after 5 s (SIPp is then killed).
    pub fn unsubscribe(mut self) -> Result<Vec<Notify>, HarnessError> {
        self.check_alive()?;
        let token = unique_token();
        let message = Request::new(
            Method::Message,
            format!("sip:watcher@127.0.0.1:{}", self.port),
        )?
        .header(
            "Via",
            format!(
                "SIP/2.0/{} 127.0.0.1:9;branch=z9hG4bKstop{token}",
                self.transport.as_str()
            ),
        )?
        .header("From", format!("<sip:harness@{DOMAIN}>;tag=stop{token}"))?
        .header("To", format!("<sip:watcher@{DOMAIN}>"))?
        .header("Call-ID", &self.call_id)?
        .header("CSeq", "1 MESSAGE")?
        .header("Max-Forwards", "70")?
        .to_bytes();
        let net = |what: &str| {
            let what = what.to_owned();
            move |source| HarnessError::Net { what, source }
        };
        // Keep a TCP connection open until SIPp is done with it.
        let _connection = match self.transport {
            Transport::Udp => {
                let socket = UdpSocket::bind("127.0.0.1:0").map_err(net("binding a UDP socket"))?;
                socket
                    .send_to(&message, ("127.0.0.1", self.port))
                    .map_err(net("sending the stop MESSAGE to SIPp"))?;
                None
            }
            Transport::Tcp => {
                let mut stream = TcpStream::connect(("127.0.0.1", self.port))
                    .map_err(net("connecting to SIPp"))?;
                stream
                    .write_all(&message)
                    .map_err(net("sending the stop MESSAGE to SIPp"))?;
                Some(stream)
            }
        };
        let timeout = Duration::from_secs(5);
        let status = match self.child.as_mut() {
            Some(child) => wait_timeout(child, timeout),
            None => None,
        };
        match status {
            Some(s) if s.success() => {
                self.child = None;
                Ok(self.notifies())
            }
            Some(s) => {
                self.child = None;
                Err(HarnessError::Died {
                    program: "sipp",
                    status: s.to_string(),
                    log_tail: self.log_tail(),
                })
            }
            None => {
                let err = self.timeout("SIPp un-SUBSCRIBing and exiting", timeout);
                self.kill();
                Err(err)
            }
        }
    }

    /// Stops SIPp at once (SIGTERM, then SIGKILL), without un-SUBSCRIBE.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate(&mut child, Duration::from_secs(1));
        }
    }

    fn check_alive(&mut self) -> Result<(), HarnessError> {
        let Some(child) = self.child.as_mut() else {
            return Err(HarnessError::Died {
                program: "sipp",
                status: "already stopped".to_owned(),
                log_tail: self.log_tail(),
            });
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Err(HarnessError::Died {
                    program: "sipp",
                    status: status.to_string(),
                    log_tail: self.log_tail(),
                })
            }
            _ => Ok(()),
        }
    }

    fn log_tail(&self) -> String {
        let errors = read_lossy(&self.dir.join("errors.log"));
        let trace: Vec<String> = self
            .trace()
            .iter()
            .map(|t| {
                let m = &t.message;
                let first = match m {
                    Message::Request(r) => format!("{} {}", r.method(), r.uri()),
                    Message::Response(r) => format!("{} {}", r.status().as_u16(), r.reason()),
                };
                format!("  {:?} {first}", t.direction)
            })
            .collect();
        format!(
            "messages:\n{}\nerrors:\n{}\nsipp output:\n{}",
            trace.join("\n"),
            tail(&errors, 10),
            tail(&self.output(), 15)
        )
    }

    fn timeout(&self, what: &str, after: Duration) -> HarnessError {
        let seen: Vec<String> = self
            .notifies()
            .iter()
            .map(|n| {
                format!(
                    "  NOTIFY CSeq {} [{}] {}",
                    n.cseq,
                    n.subscription_state,
                    n.body.replace('\n', " ")
                )
            })
            .collect();
        HarnessError::Timeout {
            what: format!("watcher of {} on port {}: {what}", self.user, self.port),
            after,
            log_tail: format!("NOTIFYs so far:\n{}\n{}", seen.join("\n"), self.log_tail()),
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The end of a finished SIPp run.
#[derive(Clone, Debug)]
pub struct SippRun {
    /// SIPp's exit code: 0 every call succeeded, 1 some failed, 97/99/255 errors.
    pub exit_code: Option<i32>,
    /// The run's directory (scenario, trace, output).
    pub dir: PathBuf,
    /// Every message sent and received (`-trace_msg`).
    pub messages: Vec<TracedMessage>,
    /// SIPp's standard output and error.
    pub output: String,
}

impl SippRun {
    /// Whether SIPp exited 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Runs the RFC 3903 publisher scenario (`sipp/publish.xml`) once for `user`: an initial
/// PUBLISH (open, note "Busy", RPID busy), two modifies with `SIP-If-Match` (closed
/// "Offline", then open "Busy"), 500 ms apart, and with `remove` a remove (`Expires: 0`).
/// Takes about 1-1.5 s.
///
/// # Errors
/// [`HarnessError::NotInstalled`] without `sipp`, [`HarnessError::Timeout`] after 20 s,
/// I/O errors. A failed scenario is an `Ok` run with a non-zero exit code.
pub fn run_publisher(
    kamailio: &Kamailio,
    user: &str,
    transport: Transport,
    remove: bool,
) -> Result<SippRun, HarnessError> {
    let sipp = require_program("sipp")?;
    let dir = run_dir(kamailio, &format!("publisher-{user}"))?;
    let scenario = dir.join("publish.xml");
    write_file(&scenario, PUBLISH_XML)?;
    let csv = dir.join("target.csv");
    write_file(&csv, &format!("SEQUENTIAL\n{user}\n"))?;
    let mut cmd = sipp_command(&sipp, &scenario, free_port()?, transport);
    cmd.arg("-inf")
        .arg(&csv)
        .arg("-m")
        .arg("1")
        .arg("-max_socket")
        .arg("100")
        .arg("-set")
        .arg("remove")
        .arg(if remove { "1" } else { "0" })
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(dir.join("messages.log"))
        .arg("-trace_err")
        .arg("-error_file")
        .arg(dir.join("errors.log"))
        .arg("-timeout")
        .arg("15s")
        .arg(kamailio.addr().to_string())
        .current_dir(&dir);
    let ran = run(cmd, None, Duration::from_secs(20))?;
    let mut output = String::from_utf8_lossy(&ran.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&ran.stderr));
    let _ = write_file(&dir.join("sipp.out"), &output);
    Ok(SippRun {
        exit_code: ran.status.code(),
        messages: parse_trace(&std::fs::read(dir.join("messages.log")).unwrap_or_default()),
        dir,
        output,
    })
}

/// A PUBLISH load run (`sipp/publish-load.xml`).
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Calls (PUBLISHes) per second (`-r`, with `-rp 1000`).
    pub rate: u32,
    /// Total PUBLISHes (`-m`).
    pub count: u32,
    /// TCP (one connection, default) or UDP (one socket).
    pub transport: Transport,
    /// Call N publishes for `PREFIXN@test.local` (default `user`: user1, user2, ...).
    pub user_prefix: String,
    /// The publications' `Expires` (default 3600).
    pub expires: u32,
    /// How long each PUBLISH may wait for its 200 (`-recv_timeout`, default 5 s).
    pub recv_timeout: Duration,
    /// At most this many calls in flight (`-l`, default 5000).
    pub limit: u32,
    /// SIPp's global `-timeout` (default: the run's nominal length + 10 s).
    pub max_duration: Option<Duration>,
}

impl LoadOptions {
    /// `count` PUBLISHes at `rate` per second over one TCP connection.
    pub fn new(rate: u32, count: u32) -> Self {
        LoadOptions {
            rate,
            count,
            transport: Transport::Tcp,
            user_prefix: "user".to_owned(),
            expires: 3600,
            recv_timeout: Duration::from_secs(5),
            limit: 5000,
            max_duration: None,
        }
    }

    /// Sets [`transport`](Self::transport).
    #[must_use]
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Sets [`user_prefix`](Self::user_prefix).
    #[must_use]
    pub fn user_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.user_prefix = prefix.into();
        self
    }

    /// Sets [`expires`](Self::expires).
    #[must_use]
    pub fn expires(mut self, expires: u32) -> Self {
        self.expires = expires;
        self
    }
}

/// What a load run achieved, from SIPp's statistics file (`-trace_stat -stf`, the last,
/// cumulative row).
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// SIPp's exit code (0 all calls succeeded, 1 some failed).
    pub exit_code: Option<i32>,
    /// Calls created (`TotalCallCreated`).
    pub created: u64,
    /// PUBLISHes answered 200 (`SuccessfulCall(C)`).
    pub successful: u64,
    /// Failed calls (`FailedCall(C)`): another answer, a timeout, ...
    pub failed: u64,
    /// Of those, no answer within the receive timeout (`FailedTimeoutOnRecv(C)`).
    pub timeouts: u64,
    /// Of those, an unexpected answer such as a 500 (`FailedUnexpectedMessage(C)`).
    pub unexpected: u64,
    /// Retransmissions (UDP) (`Retransmissions(C)`).
    pub retransmissions: u64,
    /// From the first call to the end of the run (SIPp's start and current times).
    pub elapsed: Duration,
    /// `successful / elapsed`, per second.
    pub rate: f64,
    /// SIPp's cumulative call rate (`CallRate(C)`).
    pub sipp_call_rate: f64,
    /// The mean time from PUBLISH to 200 (`ResponseTime1(C)`).
    pub response_time: Option<Duration>,
    /// Response time repartition: (bucket, calls), for example (`<1`, 324), (`<5`, 76),
    /// (`>=1000`, 0); milliseconds.
    pub repartition: Vec<(String, u64)>,
    /// The wall-clock time the harness waited for SIPp.
    pub wall_time: Duration,
    /// The run's directory (statistics, screens, errors).
    pub dir: PathBuf,
}

/// `count` PUBLISHes at `rate` per second, call N for `userN@test.local`, over one
/// `transport` socket (see [`LoadOptions::new`] for the other defaults).
///
/// # Errors
/// As [`publish_load_with`].
pub fn publish_load(
    kamailio: &Kamailio,
    rate: u32,
    count: u32,
    transport: Transport,
) -> Result<LoadReport, HarnessError> {
    publish_load_with(
        kamailio,
        &LoadOptions::new(rate, count).transport(transport),
    )
}

/// Runs the PUBLISH load scenario as in the README's throughput anchor:
/// `sipp -sf publish-load.xml -t t1 -r RATE -rp 1000 -m COUNT -l 5000 -recv_timeout 5000
/// -max_socket 1000 -nostdin -trace_stat -trace_screen -trace_err`, and reads its final
/// statistics.
///
/// # Errors
/// [`HarnessError::NotInstalled`] without `sipp`; [`HarnessError::Died`] when SIPp ends
/// with a fatal error (exit code other than 0 and 1) or writes no statistics;
/// [`HarnessError::Timeout`]; [`HarnessError::Parse`].
pub fn publish_load_with(
    kamailio: &Kamailio,
    options: &LoadOptions,
) -> Result<LoadReport, HarnessError> {
    let sipp = require_program("sipp")?;
    let dir = run_dir(kamailio, "load")?;
    let scenario = dir.join("publish-load.xml");
    write_file(&scenario, PUBLISH_LOAD_XML)?;
    let nominal =
        Duration::from_secs_f64(f64::from(options.count) / f64::from(options.rate.max(1)));
    let max = options
        .max_duration
        .unwrap_or(nominal + Duration::from_secs(10));
    let stat = dir.join("stat.csv");
    let mut cmd = sipp_command(&sipp, &scenario, free_port()?, options.transport);
    cmd.arg("-set")
        .arg("prefix")
        .arg(&options.user_prefix)
        .arg("-set")
        .arg("expires")
        .arg(options.expires.to_string())
        .arg("-r")
        .arg(options.rate.to_string())
        .arg("-rp")
        .arg("1000")
        .arg("-m")
        .arg(options.count.to_string())
        .arg("-l")
        .arg(options.limit.to_string())
        .arg("-recv_timeout")
        .arg(options.recv_timeout.as_millis().to_string())
        .arg("-max_socket")
        .arg("1000")
        .arg("-trace_stat")
        .arg("-stf")
        .arg(&stat)
        .arg("-trace_screen")
        .arg("-screen_file")
        .arg(dir.join("screen.log"))
        .arg("-trace_err")
        .arg("-error_file")
        .arg(dir.join("errors.log"))
        .arg("-timeout")
        .arg(secs_arg(max))
        .arg(kamailio.addr().to_string())
        .current_dir(&dir);
    let started = Instant::now();
    let ran = run(cmd, None, max + Duration::from_secs(10))?;
    let wall_time = started.elapsed();
    let mut output = String::from_utf8_lossy(&ran.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&ran.stderr));
    let _ = write_file(&dir.join("sipp.out"), &output);
    let exit_code = ran.status.code();
    let stats = read_lossy(&stat);
    let died = || HarnessError::Died {
        program: "sipp",
        status: ran.status.to_string(),
        log_tail: format!(
            "{}\n{}",
            tail(&read_lossy(&dir.join("errors.log")), 10),
            tail(&output, 20)
        ),
    };
    if !matches!(exit_code, Some(0 | 1)) || stats.trim().is_empty() {
        return Err(died());
    }
    let mut report = parse_stats(&stats)?;
    report.exit_code = exit_code;
    report.wall_time = wall_time;
    report.dir = dir;
    Ok(report)
}

/// Reads SIPp's `-trace_stat` CSV (`;`-separated, a header row, then one row per dump; the
/// last row is the final, cumulative one).
fn parse_stats(text: &str) -> Result<LoadReport, HarnessError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| HarnessError::Parse {
            what: "SIPp's statistics",
            detail: "empty file".to_owned(),
        })?
        .split(';')
        .collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(';').collect()).collect();
    let last = rows.last().ok_or_else(|| HarnessError::Parse {
        what: "SIPp's statistics",
        detail: "no data row".to_owned(),
    })?;
    let col = |row: &[&str], name: &str| -> Option<String> {
        let i = header.iter().position(|h| *h == name)?;
        row.get(i)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let count = |name: &str| -> u64 { col(last, name).and_then(|v| v.parse().ok()).unwrap_or(0) };
    // "2026-12-02\t05:04:18.189605\t1796187858.189605": the epoch is the last part.
    let epoch =
        |name: &str| -> Option<f64> { col(last, name)?.split('\t').next_back()?.parse().ok() };
    let elapsed = match (epoch("StartTime"), epoch("CurrentTime")) {
        (Some(start), Some(now)) if now >= start => Duration::from_secs_f64(now - start),
        _ => Duration::ZERO,
    };
    let successful = count("SuccessfulCall(C)");
    let secs = elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = if secs > 0.0 {
        successful as f64 / secs
    } else {
        0.0
    };
    // The repartition columns are filled in the last row that has them.
    let mut repartition = Vec::new();
    if let Some(row) = rows.iter().rev().find(|r| {
        col(r, "ResponseTimeRepartition1_<1").is_some()
            || header
                .iter()
                .position(|h| h.starts_with("ResponseTimeRepartition1_"))
                .is_some_and(|i| r.get(i).is_some_and(|v| !v.trim().is_empty()))
    }) {
        for (i, h) in header.iter().enumerate() {
            if let Some(bucket) = h.strip_prefix("ResponseTimeRepartition1_")
                && let Some(n) = row.get(i).and_then(|v| v.trim().parse::<u64>().ok())
            {
                repartition.push((bucket.to_owned(), n));
            }
        }
    }
    Ok(LoadReport {
        exit_code: None,
        created: count("TotalCallCreated"),
        successful,
        failed: count("FailedCall(C)"),
        timeouts: count("FailedTimeoutOnRecv(C)"),
        unexpected: count("FailedUnexpectedMessage(C)"),
        retransmissions: count("Retransmissions(C)"),
        elapsed,
        rate,
        sipp_call_rate: col(last, "CallRate(C)")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        response_time: rows
            .iter()
            .rev()
            .find_map(|r| col(r, "ResponseTime1(C)").and_then(|v| sipp_duration(&v)))
            .filter(|d| !d.is_zero()),
        repartition,
        wall_time: Duration::ZERO,
        dir: PathBuf::new(),
    })
}

/// SIPp's `HH:MM:SS:micros` durations.
fn sipp_duration(text: &str) -> Option<Duration> {
    let parts: Vec<u64> = text
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s, us] = parts[..] else {
        return None;
    };
    Some(Duration::from_secs(h * 3600 + m * 60 + s) + Duration::from_micros(us))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows as SIPp 3.6.1 wrote them for 400 PUBLISH at 200/s over TCP (shortened: the
    /// columns the report does not read are left out).
    const STAT: &str = "StartTime;CurrentTime;TotalCallCreated;CallRate(C);SuccessfulCall(C);FailedCall(C);FailedTimeoutOnRecv(C);Retransmissions(C);ResponseTime1(C);ResponseTimeRepartition1;ResponseTimeRepartition1_<1;ResponseTimeRepartition1_<5;ResponseTimeRepartition1_>=1000;\n\
        2026-12-02\t05:04:18.189605\t1796187858.189605;2026-12-02\t05:04:18.190425\t1796187858.190425;0;0;0;0;0;0;00:00:00:000000;;0;0;0;\n\
        2026-12-02\t05:04:18.189605\t1796187858.189605;2026-12-02\t05:04:20.194397\t1796187860.194397;400;199.601;400;0;0;0;00:00:00:001000;;324;76;0;\n\
        2026-12-02\t05:04:18.189605\t1796187858.189605;2026-12-02\t05:04:20.194678\t1796187860.194678;400;199.501;400;0;0;0;\n";

    #[test]
    fn final_statistics_are_read() {
        let r = parse_stats(STAT).unwrap();
        assert_eq!(r.created, 400);
        assert_eq!(r.successful, 400);
        assert_eq!(r.failed, 0);
        assert!(
            (r.elapsed.as_secs_f64() - 2.005).abs() < 0.001,
            "{:?}",
            r.elapsed
        );
        assert!((r.sipp_call_rate - 199.501).abs() < 1e-9);
        assert!((r.rate - 199.5).abs() < 0.1, "{}", r.rate);
        assert_eq!(r.response_time, Some(Duration::from_millis(1)));
        assert_eq!(
            r.repartition,
            vec![("<1".into(), 324), ("<5".into(), 76), (">=1000".into(), 0)]
        );
    }
}
