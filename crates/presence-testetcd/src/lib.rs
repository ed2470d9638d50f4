//! # presence-testetcd
//!
//! A **real etcd v3 cluster for tests**: 1 or 3 members of Debian's `etcd-server` (etcd
//! 3.4) on free loopback ports, their data directories in a temporary directory, started by
//! the test and stopped by PID when it is dropped. Blocking (std) code; it installs
//! nothing and runs everything on 127.0.0.1.
//!
//! - [`EtcdCluster::start`] (or [`EtcdCluster::single`], [`EtcdCluster::three`]) starts
//!   the members with a fresh cluster token and waits until each answers `/health` with
//!   `true` on its client URL. [`EtcdCluster::client_urls`] are what a client is given.
//! - Faults, by member index: [`kill`](EtcdCluster::kill) (SIGKILL; the data stays),
//!   [`restart`](EtcdCluster::restart) (same ports, same data; waits for health),
//!   [`freeze`](EtcdCluster::freeze) (SIGSTOP: the sockets stay open and nothing answers)
//!   and [`thaw`](EtcdCluster::thaw) (SIGCONT).
//! - Inspection: [`raft_leader`](EtcdCluster::raft_leader), [`health`](EtcdCluster::health),
//!   [`post`](EtcdCluster::post) (any JSON gateway request), [`log`](EtcdCluster::log);
//!   [`enable_auth`](EtcdCluster::enable_auth) turns on users and passwords.
//! - [`Options::tls`]: clients are served over HTTPS with the given certificate (and
//!   optionally required client certificates); the harness keeps a plain-HTTP listener of
//!   its own for its checks.
//!
//! Dropping the cluster resumes frozen members, sends SIGTERM to every member (SIGKILL
//! after 3 s) and deletes the directory; set `PRESENCE_KEEP_ETCD` to keep it. A test that
//! panics prints the end of every member's log.
//!
//! A missing etcd is an error, not a skip: [`HarnessError::NotInstalled`] says what to
//! install (`run .ci/run, or apt-get install etcd-server`).
//!
//! ```no_run
//! use presence_testetcd::EtcdCluster;
//!
//! let mut etcd = EtcdCluster::three()?;
//! let urls = etcd.client_urls(); // ["http://127.0.0.1:PORT", ...]
//! etcd.kill(2)?;                 // two of three: still a quorum
//! assert!(etcd.health(0)?);
//! etcd.restart(&[2])?;
//! # Ok::<(), presence_testetcd::HarnessError>(())
//! ```
#![deny(missing_docs)]

mod cluster;
mod error;
mod util;

pub use cluster::{EtcdCluster, KEEP_ENV, MemberState, Options, TlsOptions};
pub use error::{HarnessError, INSTALL_HINT};
pub use util::free_port;
