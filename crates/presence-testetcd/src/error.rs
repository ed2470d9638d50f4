//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

/// What to install when etcd is missing.
pub const INSTALL_HINT: &str = "run .ci/run, or apt-get install etcd-server";

/// Why the test cluster could not be started, inspected or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The etcd program is not on this machine.
    #[error("{what} is not installed: {INSTALL_HINT}")]
    NotInstalled {
        /// `etcd`, or the path that was given and is not an executable file.
        what: String,
    },
    /// A file or directory could not be made, read or written.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// `create`, `read`, `write`, ...
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// etcd could not be started.
    #[error("cannot start `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A port, folder or file for the peer could not be had.
    #[error(transparent)]
    Proc(#[from] presence_testproc::ProcError),
    /// A member exited when it should have kept running.
    #[error("etcd member {member} died ({status}); last lines of its log:\n{log_tail}")]
    Died {
        /// The member's index.
        member: usize,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// Something did not happen in time.
    #[error("{what} did not happen within {after:?}{}", tail_suffix(log_tail))]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the harness waited.
        after: Duration,
        /// The end of the relevant log (may be empty).
        log_tail: String,
    },
    /// An HTTP exchange with a member failed.
    #[error("HTTP {what} failed")]
    Http {
        /// The request (`POST http://127.0.0.1:PORT/v3/...`).
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A member answered, but not as expected.
    #[error("unexpected answer to {what}: {detail}")]
    Answer {
        /// The request.
        what: String,
        /// The status and body, or what is wrong with them.
        detail: String,
    },
    /// There is no member with this index.
    #[error("there is no member {member}: the cluster has {members}")]
    NoSuchMember {
        /// The index asked for.
        member: usize,
        /// How many members there are.
        members: usize,
    },
    /// The operation needs the member running (not killed, not frozen).
    #[error("etcd member {member} is {state}")]
    NotRunning {
        /// The member's index.
        member: usize,
        /// `killed` or `frozen (SIGSTOP)`.
        state: &'static str,
    },
    /// A signal could not be sent.
    #[error("cannot send SIG{signal} to etcd member {member} (pid {pid})")]
    Signal {
        /// `KILL`, `STOP`, `CONT`.
        signal: &'static str,
        /// The member's index.
        member: usize,
        /// Its pid.
        pid: u32,
    },
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last lines of the log:\n{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_etcd_says_what_to_install() {
        let e = HarnessError::NotInstalled {
            what: "etcd".to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "etcd is not installed: run .ci/run, or apt-get install etcd-server"
        );
    }
}
