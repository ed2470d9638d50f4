//! # presence-simple
//!
//! The standards-based SIP presence transport of the presence bridge: for Kamailio and
//! OpenSIPS presence servers, Asterisk/FreeSWITCH SIP presence, and any RFC 3903/3856
//! server. It implements the port of [`presence_transport`]: [`SimpleTransport`] is a
//! [`PresenceTransport`](presence_transport::PresenceTransport).
//!
//! - **Publish** (RFC 3903): one publication per user, kept by its `SIP-ETag`: modified and
//!   refreshed with `SIP-If-Match` before `Expires` runs out, removed with `Expires: 0` when
//!   the state maps to Offline (availability >= 18000). `412` publishes anew; `423` takes
//!   the server's `Min-Expires`; a conditional `500` is tried once more, then the tag is
//!   abandoned, published anew and the abandoned tag removed, so that no second live
//!   publication is left behind (servers merge all live publications of a user, and a stale
//!   tuple masks the new state).
//! - **Body**: PIDF (RFC 3863) with RPID (RFC 4480) and the data model (RFC 4479), both
//!   ways ([`pidf`]); the SfB availability classes map to `basic` and RPID activities by a
//!   documented table that `[simple.classes]` and `[simple.states]` override ([`mapping`]);
//!   activity texts become `note`s, one per language (`xml:lang` from the LCID).
//! - **Subscribe** (RFC 3856, RFC 6665): one dialog per pull user, refreshed before expiry,
//!   made anew after `terminated`, `481`, a refusal (back-off) or a reconnect; NOTIFY bodies
//!   back onto the SfB scale (an empty body: nothing published, Offline).
//! - **Auth**: digest (RFC 8760: MD5, SHA-256, SHA-512-256, `qop=auth`) for 401/407
//!   ([`digest`]), with the application's credentials from `[simple.auth]`.
//! - **Transports**: UDP (RFC 3261 retransmissions, retransmitted NOTIFYs answered alike),
//!   TCP and TLS (rustls with ring). An `OPTIONS` probe after every (re)connection and every
//!   `keepalive` tells that the server is there.
//!
//! ## Who owns what
//!
//! As the port's contract says: dedup, coalescing, retry and resync are the caller's (the
//! engine's publisher); this crate owns pacing through credit (`max-in-flight`),
//! subscription upkeep and the protocol state (entity tags, dialogs, digest nonces). It
//! re-sends on its own only to complete one publication (412, 423, a conditional 500, a
//! digest challenge). Entity tags outlive a lost connection (the server keeps
//! publications), so the caller's resync modifies them instead of adding new ones.
//!
//! ## Two layers
//!
//! [`Endpoint`] is the sans-IO state machine (bytes or datagrams and `now` in; bytes,
//! timers and [`Event`]s out; Call-IDs, tags and cnonces from a seeded generator), tested
//! step by step in memory. [`SimpleTransport`] is the tokio driver that owns the socket,
//! reconnects with back-off and maps events onto the port. The crate's integration tests run
//! the port's conformance suite over TCP and UDP against a real Kamailio.
//!
//! ## Known limits
//!
//! - A bridge restart forgets its entity tags: the previous process's publications stay
//!   until their `Expires` (`publish-expires`, 10 minutes by default) while the new ones
//!   are newer and show first.
//! - Over UDP, a PUBLISH whose answer is lost may have been applied: the next one can leave
//!   a duplicate that expires unrefreshed within `publish-expires`.
//! - RFC 4662 resource-list subscriptions are not used (one dialog per user).
//!
//! ```no_run
//! use presence_model::Platform;
//! use presence_simple::{SimpleSettings, SimpleTransport};
//! use presence_transport::event_channel;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let settings: SimpleSettings = toml::from_str(r#"
//!     server = "presence.example.com:5060"
//!     transport = "tcp"
//!     [classes]
//!     Busy = "open; on-the-phone"
//! "#)?;
//! let (events, _receiver) = event_channel();
//! let (_transport, _task) = SimpleTransport::start(&settings, Platform::simple(), events)?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod digest;
mod driver;
pub mod endpoint;
pub mod fuzzing;
pub mod mapping;
pub mod pidf;
pub mod settings;
mod tls;

pub use driver::SimpleTransport;
pub use endpoint::{Endpoint, Event, PublishId};
pub use settings::{EndpointConfig, SimpleSettings, Transport};
pub use tls::client_config;

/// Why the SIP SIMPLE transport cannot do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimpleError {
    /// A setting of `[simple]` is not valid.
    #[error("`{key}`: {message}")]
    Setting {
        /// The key, with its table (`simple.tls.ca`).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// TLS material of `[simple.tls]` cannot be read or used.
    #[error(transparent)]
    Tls(#[from] presence_tls::TlsError),
    /// The presence server cannot be reached (the driver reconnects; this is the reason it
    /// reports).
    #[error("cannot {what} `{server}`")]
    Connect {
        /// What failed: `resolve the server`, `connect to the server`, `open a UDP socket
        /// for`, `reach over UDP`.
        what: &'static str,
        /// The server's `host:port`.
        server: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server's name resolves to no address.
    #[error("the server `{server}` resolves to no address")]
    NoAddress {
        /// The server's `host:port`.
        server: String,
    },
    /// `[simple.tls] server-name` is not a DNS name or an IP address.
    #[error("[simple.tls] server-name `{name}` is not valid")]
    ServerName {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: rustls_pki_types::InvalidDnsNameError,
    },
    /// The TLS handshake with the server failed: `explained` says why and what to change.
    #[error("{explained}")]
    Handshake {
        /// The cause and the setting that fixes it (`presence-tls`).
        explained: String,
        /// The handshake's error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting took longer than `connect-timeout`.
    #[error("connecting to `{server}` took longer than {after:?}")]
    ConnectTimeout {
        /// The server's `host:port`.
        server: String,
        /// The time allowed.
        after: std::time::Duration,
    },
    /// A PIDF body cannot be read: where (byte offset in the body, and the element path
    /// when known) and what.
    #[error("PIDF body, byte {position}{}: {what}", path.as_deref().map(|p| format!(" (in {p})")).unwrap_or_default())]
    Pidf {
        /// Byte offset in the body where the problem was found.
        position: u64,
        /// The element path, such as `presence/tuple/status`, when known.
        path: Option<String>,
        /// What is wrong.
        what: String,
        /// The XML reader's error, when it was one.
        #[source]
        source: Option<quick_xml::Error>,
    },
    /// A digest challenge (`WWW-Authenticate` / `Proxy-Authenticate`) cannot be used.
    #[error("digest challenge, byte {position}: {what}")]
    Challenge {
        /// Byte offset in the header value.
        position: usize,
        /// What is wrong (a malformed parameter, an algorithm or qop not supported).
        what: String,
    },
    /// A mapping override of `[simple.classes]` or `[simple.states]` is not valid.
    #[error("mapping `{key}`: {what}")]
    Mapping {
        /// The table, as `check` names it: `simple.classes` or `simple.states`.
        table: &'static str,
        /// The override's key (`Busy`, `INCALL`).
        key: String,
        /// What is wrong.
        what: String,
    },
}
