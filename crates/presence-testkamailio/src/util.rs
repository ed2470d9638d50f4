//! Process, port and file helpers shared by the harness parts.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use presence_testproc::process_alive;
pub(crate) use presence_testproc::{
    find_program, make_unique_dir, port_is_free, read_lossy, send_signal, tail, unique_token,
    wait_timeout, write_file,
};

use crate::HarnessError;

/// A loopback port free for both UDP and TCP at the time of the call (both are bound on
/// 127.0.0.1 to check, then released), never handed out before by this process (nor by
/// `presence-testetcd` in the same process: the set is `presence-testproc`'s).
///
/// # Errors
/// [`HarnessError::Proc`] after 100 unlucky attempts.
pub fn free_port() -> Result<u16, HarnessError> {
    Ok(presence_testproc::free_port(
        presence_testproc::Ports::TcpAndUdp,
    )?)
}

/// The current time as Unix seconds (what Kamailio stores in `expires` and
/// `received_time`).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// [`find_program`] or [`HarnessError::NotInstalled`].
pub(crate) fn require_program(name: &str) -> Result<PathBuf, HarnessError> {
    find_program(name).ok_or_else(|| HarnessError::NotInstalled {
        what: name.to_owned(),
    })
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
