//! # presence-sfb
//!
//! The Skype for Business transport of the presence bridge: it talks to a Front End pool as a
//! **trusted application** (mutual TLS on 5061, no NTLM/Kerberos), publishes users'
//! presence with MS-PRES category publications, removes them again, and watches users'
//! presence with batched subscriptions. It implements the port of
//! [`presence_transport`]: [`SfbTransport`] is a
//! [`PresenceTransport`](presence_transport::PresenceTransport).
//!
//! ## Who owns what
//!
//! The port's contract (the table "who owns what" in [`presence_transport`]) gives each
//! concern one owner. This crate keeps only what is the transport's:
//!
//! | concern | owner | here |
//! |---|---|---|
//! | dedup against what the pool shows | caller (the engine's `presence_push::Publisher`) | every publication given is sent |
//! | coalescing, latest wins, which user goes next | caller | no per-user backlog of its own: a second publication for a user with one outstanding waits behind it, in order (FIFO), and is sent after it |
//! | retry of a failed publication, back-off | caller | each failure is reported once: [`TransportError::Timeout`](presence_transport::TransportError::Timeout), [`TransportError::Rejected`](presence_transport::TransportError::Rejected) with the status, the reason and `ms-diagnostics`, and `retry_after` from a `Retry-After` header, or `NotConnected` |
//! | resync after a reconnect | caller, on [`TransportEvent::Connected`](presence_transport::TransportEvent::Connected) | nothing is published again on its own |
//! | pacing | transport, through credit | `max-in-flight` requests on the wire; `Connected` grants `max-in-flight` credit, each publication settled on the connection grants one |
//! | subscription upkeep | transport | batched `SUBSCRIBE` dialogs, refreshed before expiry, made again after a `481`, a termination or a reconnect (back-off `retry-initial` / `retry-max`) |
//! | protocol state | transport | category versions per user and container, the bounded `409 WrongDelta` fix-up (take `curVersion`, send again, at most `max-conflict-retries` times: it completes one publication) |
//!
//! ## Two layers, quinn-proto / quinn style
//!
//! - [`Endpoint`]: a sans-IO state machine. Inputs: [`Endpoint::connected`],
//!   [`Endpoint::disconnected`], [`Endpoint::handle_bytes`], [`Endpoint::handle_timeout`],
//!   [`Endpoint::publish`], [`Endpoint::unpublish`], [`Endpoint::subscribe`],
//!   [`Endpoint::unsubscribe`]. Outputs: [`Endpoint::poll_transmit`],
//!   [`Endpoint::poll_timeout`], [`Endpoint::poll_event`]. It keeps, per user, the category
//!   versions of each container (first publication version 0, +1 after each `200`, the
//!   pool's `curVersion` after a `409 WrongDelta`), one request per user on the wire, the
//!   connection's in-flight window, batched `SUBSCRIBE` dialogs refreshed at 80 % of their
//!   `Expires` (re-made on `481` or a terminated `Subscription-State`), `200` to `NOTIFY`
//!   and nothing to `BENOTIFY`, piggy-backed first notifications, CRLF keep-alives with an
//!   answer deadline, and `ms-diagnostics` in every failure it reports. It reports SfB-level
//!   [`Event`]s (SIP URIs). Time comes in as `now`, and Call-IDs, tags and branches come
//!   from a seeded generator, so an exchange is deterministic and is tested in memory
//!   against the simulator (`tests/pair.rs`).
//! - [`SfbTransport`]: the tokio driver that owns the TCP or TLS (rustls, ring) connection,
//!   pumps the endpoint, maps its events onto the port's [`UserId`](presence_model::UserId)s and
//!   [`TransportEvent`](presence_transport::TransportEvent)s and grants credit. It
//!   reconnects with capped exponential back-off and jitter, and subscribes every user of
//!   the set again after each reconnect. A stalled pool cannot make memory grow without
//!   bound: a caller that spends only its credit has at most `max-in-flight` publications
//!   outstanding, and a write backlog over 16 MiB resets the connection.
//!
//! The `[sfb]` table of the bridge's configuration is [`SfbSettings`];
//! [`SfbSettings::findings`] judges it ([`Finding`], [`Severity`]).
//!
//! ```no_run
//! use presence_model::{Activities, AggregatedStateId, Availability, Platform, Presence, Publication, UserId};
//! use presence_sfb::{SfbSettings, SfbTransport};
//! use presence_transport::{event_channel, PresenceTransport, TransportEvent};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let settings: SfbSettings = toml::from_str(r#"
//!     pool = "pool01.contoso.com:5061"
//!     application-uri = "sip:presence-bridge@contoso.com"
//!     [tls]
//!     certificate = "/etc/presence-bridge/bridge.pem"
//!     private-key = "/etc/presence-bridge/bridge.key"
//!     ca = "/etc/presence-bridge/contoso-ca.pem"
//! "#)?;
//! let (events, mut receiver) = event_channel();
//! let (transport, _task) = SfbTransport::start(&settings, Platform::sfb(), events)?;
//! // Publish only with credit in hand: Connected grants some, Credit more.
//! let mut credit = loop {
//!     if let Some(TransportEvent::Connected { credit, .. }) = receiver.recv().await {
//!         break credit;
//!     }
//! };
//! let user = UserId::sip(Platform::sfb(), "sip:agent1@contoso.com".parse()?);
//! let busy = Publication {
//!     id: AggregatedStateId::new("INCALL")?,
//!     presence: Presence { availability: Availability::new(7001)?, activities: Activities::empty() },
//! };
//! credit -= 1;
//! transport.publish(&user, &busy).await?;
//! transport.unpublish(&user).await?;
//! # let _ = credit;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod bodies;
mod driver;
pub mod endpoint;
pub mod fuzzing;
pub mod settings;
mod tls;

pub use driver::SfbTransport;
pub use endpoint::{Endpoint, Event, PublishId};
pub use settings::{EndpointConfig, Finding, Severity, SfbSettings};
pub use tls::client_config;

/// Why the SfB transport cannot do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfbError {
    /// A setting of `[sfb]` is not valid.
    #[error("`{key}`: {message}")]
    Setting {
        /// The key, with its table (`sfb.tls.ca`).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `application-uri` is not a SIP URI.
    #[error("`sfb.application-uri` is not a SIP URI")]
    ApplicationUri(#[source] presence_model::ModelError),
    /// TLS material of `[sfb.tls]` cannot be read or used.
    #[error(transparent)]
    Tls(#[from] presence_tls::TlsError),
    /// The pool cannot be reached (the driver reconnects; this is the reason it reports).
    #[error("cannot connect to the pool `{pool}`")]
    Connect {
        /// The pool's `host:port`.
        pool: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `[sfb.tls] server-name` is not a DNS name or an IP address.
    #[error("[sfb.tls] server-name `{name}` is not valid")]
    ServerName {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// The TLS handshake with the pool failed: `explained` says why and what to change.
    #[error("{explained}")]
    Handshake {
        /// The cause and the setting that fixes it (`presence-tls`).
        explained: String,
        /// The handshake's error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting took longer than `connect-timeout`.
    #[error("connecting to the pool `{pool}` took longer than {after:?}")]
    ConnectTimeout {
        /// The pool's `host:port`.
        pool: String,
        /// The time allowed.
        after: std::time::Duration,
    },
}
