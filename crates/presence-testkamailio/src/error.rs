//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

/// What to install when a program of the test peer is missing.
pub const INSTALL_HINT: &str = "run .ci/run, or apt-get install kamailio \
     kamailio-presence-modules kamailio-sqlite-modules kamailio-tls-modules sqlite3 sip-tester";

/// Why the test Kamailio, a SIPp run or the raw user agent failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A program or file the harness needs is not on this machine.
    #[error("{what} is not installed: {INSTALL_HINT}")]
    NotInstalled {
        /// `kamailio`, `kamcmd`, `sqlite3`, `sipp`, or a module's package (for example
        /// `kamailio-tls-modules (…/tls.so missing, needed by Options::tls)`) or a schema file.
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
    /// A socket could not be opened, or a datagram sent or received.
    #[error("network error: {what}")]
    Net {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A program could not be started.
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
    /// A started process exited when it should have kept running.
    #[error("{program} died ({status}); last lines of its log:\n{log_tail}")]
    Died {
        /// `kamailio` or `sipp`.
        program: &'static str,
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
    /// A helper program ran but failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error (or output).
        output: String,
    },
    /// Output of a helper program (sqlite3, kamcmd, SIPp) could not be understood.
    #[error("cannot read {what}: {detail}")]
    Parse {
        /// What was being read.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A SIP message could not be built or parsed.
    #[error("SIP message error")]
    Sip(#[from] presence_sip::SipError),
    /// The operation needs a running Kamailio, and it is stopped.
    #[error("kamailio is not running (stopped, or a restart failed)")]
    NotRunning,
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
    fn a_missing_program_says_what_to_install() {
        let e = HarnessError::NotInstalled {
            what: "kamailio".to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "kamailio is not installed: run .ci/run, or apt-get install kamailio \
             kamailio-presence-modules kamailio-sqlite-modules kamailio-tls-modules sqlite3 \
             sip-tester"
        );
    }
}
