//! Process, port, file and HTTP helpers.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
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

/// A token unique within this machine for a while: pid, a process counter and the clock.
pub(crate) fn unique_token() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{n}-{nanos:x}", std::process::id())
}

/// A loopback TCP port free at the time of the call (bound on 127.0.0.1 to check, then
/// released), never handed out before by this process.
///
/// # Errors
/// [`HarnessError::NoFreePort`] after 100 unlucky attempts.
pub fn free_port() -> Result<u16, HarnessError> {
    const ATTEMPTS: u32 = 100;
    for _ in 0..ATTEMPTS {
        let Ok(listener) = TcpListener::bind(("127.0.0.1", 0)) else {
            continue;
        };
        let Ok(addr) = listener.local_addr() else {
            continue;
        };
        drop(listener);
        let mut guard = HANDED_OUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.get_or_insert_with(HashSet::new).insert(addr.port()) {
            return Ok(addr.port());
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

pub(crate) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds `name` on `PATH`, then in the usual directories a test's `PATH` may lack.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to `pid` with the `kill` program (the
/// workspace forbids the unsafe code a direct `kill(2)` would need).
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

/// The state letter of a process from `/proc/<pid>/stat` (`R`, `S`, `T` when stopped,
/// `Z`), `None` when it does not exist.
pub(crate) fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next()?.chars().next()
}

/// Waits for `child` to exit, at most `timeout`.
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// An HTTP/1.0 request to a plain `http://host:port/path` URL (HTTP/1.0, so the answer is
/// neither chunked nor kept alive); returns the status and the body.
pub(crate) fn http(
    method: &str,
    url: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), HarnessError> {
    let what = format!("{method} {url}");
    let fail = |source: std::io::Error| HarnessError::Http {
        what: what.clone(),
        source,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HarnessError::Answer {
            what: what.clone(),
            detail: "only http:// URLs are supported by the harness's client".to_owned(),
        })?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr: SocketAddr = authority.parse().map_err(|_| HarnessError::Answer {
        what: what.clone(),
        detail: format!("`{authority}` is not an IP address and port"),
    })?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(fail)?;
    stream.set_read_timeout(Some(timeout)).map_err(fail)?;
    stream.set_write_timeout(Some(timeout)).map_err(fail)?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(fail)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| HarnessError::Answer {
            what: what.clone(),
            detail: format!("no HTTP status line in {:?}", tail(head, 1)),
        })?;
    Ok((status, body.to_owned()))
}
