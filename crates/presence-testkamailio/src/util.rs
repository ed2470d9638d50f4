//! Process, port and file helpers shared by the harness parts.

use std::collections::HashSet;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::HarnessError;

/// Ports this process has handed out: never twice, so parallel tests do not collide.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The current time as Unix seconds (what Kamailio stores in `expires` and
/// `received_time`).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A token unique within this machine for a while: pid, a process counter and the clock.
pub(crate) fn unique_token() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{n}-{nanos:x}", std::process::id())
}

/// Whether `port` can be bound on 127.0.0.1 for both UDP and TCP right now.
pub(crate) fn port_is_free(port: u16) -> bool {
    let tcp = TcpListener::bind(("127.0.0.1", port));
    let udp = UdpSocket::bind(("127.0.0.1", port));
    tcp.is_ok() && udp.is_ok()
}

/// A loopback port free for both UDP and TCP at the time of the call (both are bound on
/// 127.0.0.1 to check, then released), never handed out before by this process.
///
/// # Errors
/// [`HarnessError::NoFreePort`] after 100 unlucky attempts.
pub fn free_port() -> Result<u16, HarnessError> {
    const ATTEMPTS: u32 = 100;
    for _ in 0..ATTEMPTS {
        let Ok(tcp) = TcpListener::bind(("127.0.0.1", 0)) else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else {
            continue;
        };
        let port = addr.port();
        let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) else {
            continue;
        };
        drop((tcp, udp));
        let mut guard = HANDED_OUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(HarnessError::NoFreePort { attempts: ATTEMPTS })
}

/// Makes a new, empty directory `<temp>/<prefix>-<unique>`.
pub(crate) fn make_unique_dir(prefix: &str) -> Result<PathBuf, HarnessError> {
    let base = std::env::temp_dir();
    loop {
        let dir = base.join(format!("{prefix}-{}", unique_token()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(HarnessError::Io {
                    action: "create",
                    path: dir,
                    source,
                });
            }
        }
    }
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), HarnessError> {
    std::fs::write(path, text).map_err(|source| HarnessError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

/// The file as text (lossy UTF-8); a missing file is empty.
pub(crate) fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds `name` on `PATH`, then in the sbin directories a test's `PATH` often lacks.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// [`find_program`] or [`HarnessError::NotInstalled`].
pub(crate) fn require_program(name: &str) -> Result<PathBuf, HarnessError> {
    find_program(name).ok_or_else(|| HarnessError::NotInstalled {
        what: name.to_owned(),
    })
}

/// Sends `signal` (`TERM`, `KILL`, ...) to `pid` with the `kill` program.
pub(crate) fn send_signal(pid: u32, signal: &str) -> bool {
    let kill = find_program("kill").unwrap_or_else(|| PathBuf::from("kill"));
    Command::new(kill)
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a process with this pid exists and is not a zombie (Linux `/proc`).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pids of the direct children of `parent` (Linux `/proc`).
pub(crate) fn child_pids(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// Waits for `child` to exit, at most `timeout`.
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Stops `child`: SIGTERM, up to `grace` to exit, then SIGKILL to it and its children.
pub(crate) fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let pid = child.id();
    send_signal(pid, "TERM");
    if let Some(status) = wait_timeout(child, grace) {
        return Some(status);
    }
    for c in child_pids(pid) {
        send_signal(c, "KILL");
    }
    let _ = child.kill();
    wait_timeout(child, Duration::from_secs(2))
}

/// What [`run`] got from a finished program.
#[derive(Debug)]
pub(crate) struct Ran {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `command` to the end with `stdin` as its input, killing it after `timeout`.
pub(crate) fn run(
    mut command: Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Ran, HarnessError> {
    let line = format!("{command:?}");
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|source| HarnessError::Spawn { program, source })?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => Some(std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&input);
        })),
        _ => None,
    };
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let Some(status) = wait_timeout(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(HarnessError::Timeout {
            what: format!("`{line}` finishing"),
            after: timeout,
            log_tail: String::new(),
        });
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// [`run`], and a non-zero exit is [`HarnessError::Command`]; returns stdout.
pub(crate) fn run_ok(
    command: Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Vec<u8>, HarnessError> {
    let line = format!("{command:?}");
    let ran = run(command, stdin, timeout)?;
    if ran.status.success() {
        Ok(ran.stdout)
    } else {
        let mut output = String::from_utf8_lossy(&ran.stderr).trim().to_owned();
        if output.is_empty() {
            output = String::from_utf8_lossy(&ran.stdout).trim().to_owned();
        }
        Err(HarnessError::Command {
            command: line,
            status: ran.status.to_string(),
            output,
        })
    }
}
