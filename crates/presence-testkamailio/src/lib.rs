//! # presence-testkamailio
//!
//! A **real SIP SIMPLE presence server for tests**: a private Kamailio 5.6 (RFC 3903
//! PUBLISH, RFC 3856 SUBSCRIBE/NOTIFY with PIDF and RPID) on a free loopback port, with
//! SIPp watchers and load runs and a tiny blocking SIP user agent. Blocking (std) code; it
//! installs nothing, runs everything on 127.0.0.1, and stops what it started by pid.
//!
//! - [`Kamailio::start`]: writes the configuration ([`CONFIG_TEMPLATE`]), creates the
//!   SQLite database from Kamailio's own schema, starts `kamailio -DD -E`, waits for its
//!   control socket; [`Kamailio::restart`] keeps the port and the database; dropping it
//!   stops the process and deletes the run directory (set `PRESENCE_KEEP_KAMAILIO` to keep
//!   it). Inspection: [`Kamailio::presentity`], [`Kamailio::active_watchers`],
//!   [`Kamailio::kamcmd`], [`Kamailio::log`].
//! - [`Options::tls`] with [`TlsOptions`]: a TLS listener too, on its own free port
//!   ([`Kamailio::tls_addr`]), with the certificate you give (and optionally required
//!   client certificates); it needs `kamailio-tls-modules`.
//! - [`Watcher`]: a SIPp watcher that SUBSCRIBEs to one presentity and records every
//!   NOTIFY ([`Watcher::notifies`] reads SIPp's message trace).
//! - [`run_publisher`]: SIPp's RFC 3903 publisher scenario (initial, two modifies, remove).
//! - [`publish_load`]: a PUBLISH load run, SIPp's final statistics as a [`LoadReport`].
//! - [`RawUa`]: PUBLISH from Rust over UDP ([`RawUa::publish`]), built with presence-sip.
//!
//! The crate's `README.md` describes the files, where they came from, how this server
//! behaves and how to inspect it by hand.
//!
//! A missing program is an error, not a skip: [`HarnessError::NotInstalled`] says what to
//! install (`run .ci/run, or apt-get install kamailio kamailio-presence-modules
//! kamailio-sqlite-modules kamailio-tls-modules sqlite3 sip-tester`).
//!
//! ```no_run
//! use std::time::Duration;
//! use presence_testkamailio::{Kamailio, Options, RawUa, WatchOptions, Watcher};
//!
//! let kamailio = Kamailio::start(Options::default())?;
//! let mut watcher = Watcher::subscribe(&kamailio, "agent1", WatchOptions::default())?;
//! let mut ua = RawUa::new(&kamailio)?;
//! let pidf = r#"<?xml version="1.0" encoding="UTF-8"?>
//! <presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:agent1@test.local">
//! <tuple id="bridge"><status><basic>open</basic></status></tuple></presence>"#;
//! let answer = ua.publish("agent1", pidf, 600, None)?;
//! assert_eq!(answer.status, 200);
//! let notify = watcher.wait_for(Duration::from_secs(3), |n| n.body.contains("open"))?;
//! assert_eq!(notify.state(), "active");
//! assert_eq!(kamailio.presentity()?.len(), 1);
//! # Ok::<(), presence_testkamailio::HarnessError>(())
//! ```
#![deny(missing_docs)]

mod error;
mod kamailio;
mod raw_ua;
mod sipp;
mod trace;
mod util;

pub use error::{HarnessError, INSTALL_HINT};
pub use kamailio::{
    ActiveWatcher, CONFIG_TEMPLATE, DOMAIN, KEEP_ENV, Kamailio, Options, Presentity, SCHEMA_DIR,
    Storage, TlsOptions, render_config, render_tls_config,
};
pub use raw_ua::{PublishAnswer, RawUa};
pub use sipp::{
    LoadOptions, LoadReport, Notify, PUBLISH_LOAD_XML, PUBLISH_XML, SippRun, TARGET_CSV, Transport,
    WATCHER_XML, WatchOptions, Watcher, publish_load, publish_load_with, run_publisher,
};
pub use trace::{Direction, TracedMessage, parse_trace};
pub use util::{free_port, process_alive, unix_now};
