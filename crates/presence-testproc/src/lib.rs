//! # presence-testproc
//!
//! What the crates that start real peers in tests (`presence-testkamailio` for Kamailio
//! and SIPp, `presence-testetcd` for etcd) need of the machine: free loopback ports,
//! scratch folders, programs found on `PATH` (or in the `sbin` folders a test's `PATH` often
//! lacks), signals sent by PID, and waits with a timeout. One set of ports is handed out per
//! process, so that a test starting Kamailio and etcd side by side never gives both the same
//! port. Linux only (`/proc`, the `kill` program: the workspace forbids the unsafe code a
//! direct `kill(2)` would need). Module [`heap`] measures the heap and time of one
//! hostile-input case, for the `tests/hostile.rs` binaries.
//!
//! ```
//! let port = presence_testproc::free_port(presence_testproc::Ports::TcpAndUdp)?;
//! assert_ne!(port, presence_testproc::free_port(presence_testproc::Ports::Tcp)?);
//! let dir = presence_testproc::make_unique_dir("presence-testproc-doc")?;
//! presence_testproc::write_file(&dir.join("a.txt"), "one\ntwo\nthree")?;
//! let text = presence_testproc::read_lossy(&dir.join("a.txt"));
//! assert_eq!(presence_testproc::tail(&text, 2), "two\nthree");
//! std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), presence_testproc::ProcError>(())
//! ```
#![deny(missing_docs)]

pub mod heap;

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What went wrong preparing a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcError {
    /// No loopback port was free.
    #[error("no free loopback port ({ports}) after {attempts} attempts")]
    NoFreePort {
        /// Which protocols the port had to be free for.
        ports: Ports,
        /// How many ports were tried.
        attempts: u32,
    },
    /// A file or folder could not be made or written.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// `create`, `write`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Which protocols a port from [`free_port`] must be free for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ports {
    /// TCP only (etcd's client and peer ports).
    Tcp,
    /// UDP and TCP on the same number (a SIP server listens on both).
    TcpAndUdp,
}

impl std::fmt::Display for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ports::Tcp => "TCP",
            Ports::TcpAndUdp => "TCP and UDP",
        })
    }
}

/// Ports this process has handed out: never twice, so parallel tests do not collide.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A token unique within this machine for a while: pid, a process counter and the clock.
pub fn unique_token() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{n}-{nanos:x}", std::process::id())
}

/// A loopback port free for `ports` at the time of the call (bound on 127.0.0.1 to check,
/// then released), never handed out before by this process.
///
/// # Errors
/// [`ProcError::NoFreePort`] after 100 unlucky attempts.
pub fn free_port(ports: Ports) -> Result<u16, ProcError> {
    const ATTEMPTS: u32 = 100;
    for _ in 0..ATTEMPTS {
        let Ok(tcp) = TcpListener::bind(("127.0.0.1", 0)) else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else {
            continue;
        };
        let port = addr.port();
        let udp = match ports {
            Ports::Tcp => None,
            Ports::TcpAndUdp => match UdpSocket::bind(("127.0.0.1", port)) {
                Ok(udp) => Some(udp),
                Err(_) => continue,
            },
        };
        drop((tcp, udp));
        let mut guard = HANDED_OUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(ProcError::NoFreePort {
        ports,
        attempts: ATTEMPTS,
    })
}

/// Whether `port` can be bound on 127.0.0.1 for both UDP and TCP right now.
pub fn port_is_free(port: u16) -> bool {
    let tcp = TcpListener::bind(("127.0.0.1", port));
    let udp = UdpSocket::bind(("127.0.0.1", port));
    tcp.is_ok() && udp.is_ok()
}

/// Makes a new, empty directory `<temp>/<prefix>-<unique>`.
///
/// # Errors
/// [`ProcError::Io`] when it cannot be made.
pub fn make_unique_dir(prefix: &str) -> Result<PathBuf, ProcError> {
    let base = std::env::temp_dir();
    loop {
        let dir = base.join(format!("{prefix}-{}", unique_token()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(ProcError::Io {
                    action: "create",
                    path: dir,
                    source,
                });
            }
        }
    }
}

/// Writes `text` to `path`.
///
/// # Errors
/// [`ProcError::Io`] when it cannot be written.
pub fn write_file(path: &Path, text: &str) -> Result<(), ProcError> {
    std::fs::write(path, text).map_err(|source| ProcError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

/// The file as text (lossy UTF-8); a missing file is empty.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether `path` is an executable file.
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds `name` on `PATH`, then in the usual folders a test's `PATH` may lack (the `sbin`
/// ones first: Kamailio lives in `/usr/sbin`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/local/sbin",
                "/sbin",
                "/usr/bin",
                "/usr/local/bin",
                "/bin",
            ]
            .iter()
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`) to `pid` with the `kill` program;
/// whether it was delivered.
pub fn send_signal(pid: u32, signal: &str) -> bool {
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
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next()?.chars().next()
}

/// Whether a process with this pid exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    process_state(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// Waits for `child` to exit, at most `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice_and_are_free() {
        let mut seen = HashSet::new();
        for i in 0..50 {
            let ports = if i % 2 == 0 {
                Ports::Tcp
            } else {
                Ports::TcpAndUdp
            };
            let port = free_port(ports).unwrap();
            assert!(seen.insert(port), "{port} twice");
            assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
        }
    }

    #[test]
    fn a_child_is_signalled_waited_for_and_seen_gone() {
        let mut child = Command::new(find_program("sleep").expect("sleep"))
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(process_alive(pid));
        assert!(send_signal(pid, "STOP"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_state(pid) != Some('T') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(process_state(pid), Some('T'));
        assert!(wait_timeout(&mut child, Duration::from_millis(50)).is_none());
        assert!(send_signal(pid, "KILL"));
        assert!(wait_timeout(&mut child, Duration::from_secs(5)).is_some());
        assert!(!process_alive(pid));
    }

    #[test]
    fn folders_are_unique_and_errors_name_the_path() {
        let a = make_unique_dir("presence-testproc-test").unwrap();
        let b = make_unique_dir("presence-testproc-test").unwrap();
        assert_ne!(a, b);
        let err = write_file(&a.join("no/such/folder/f"), "x").unwrap_err();
        assert!(err.to_string().contains("no/such/folder/f"), "{err}");
        std::fs::remove_dir_all(a).unwrap();
        std::fs::remove_dir_all(b).unwrap();
    }
}
