//! # presence-sfb
//!
//! The Skype for Business transport of the presence bridge: it talks to a Front End pool as a
//! **trusted application** (mutual TLS on 5061, no NTLM/Kerberos), publishes users'
//! presence with MS-PRES category publications and watches users' presence with batched
//! subscriptions (`../shared/PROTOCOLS.md` §1 in the project's brief; docs/operations.md).
//!
//! Two layers, quinn-proto / quinn style:
//!
//! - [`Endpoint`]: a sans-IO state machine. Inputs: [`Endpoint::connected`],
//!   [`Endpoint::disconnected`], [`Endpoint::handle_bytes`], [`Endpoint::handle_timeout`],
//!   [`Endpoint::publish`], [`Endpoint::subscribe`], [`Endpoint::unsubscribe`]. Outputs:
//!   [`Endpoint::poll_transmit`], [`Endpoint::poll_timeout`], [`Endpoint::poll_event`]. It
//!   keeps, per user, the category versions of each container (first publication version 0,
//!   +1 after each `200`, the pool's `curVersion` after a `409 WrongDelta`, bounded retries),
//!   one publication in flight per user with latest-wins (a publication not yet sent when a
//!   newer one arrives is reported superseded), transient-failure retries with back-off and
//!   `Retry-After`, batched `SUBSCRIBE` dialogs refreshed at 80 % of their `Expires`
//!   (re-made on `481` or a terminated `Subscription-State`), `200` to `NOTIFY` and nothing
//!   to `BENOTIFY`, piggy-backed first notifications, CRLF keep-alives with an answer
//!   deadline, and `ms-diagnostics` in every failure it reports. Time comes in as `now`, and
//!   Call-IDs, tags and branches come from a seeded generator, so an exchange is
//!   deterministic and is tested in memory against the simulator (`tests/pair.rs`).
//! - [`SfbTransport`]: the tokio driver that owns the TCP or TLS (rustls, ring) connection,
//!   pumps the endpoint and implements
//!   [`PresenceTransport`](presence_transport::PresenceTransport). It reconnects with capped
//!   exponential back-off and jitter; after every reconnect the endpoint subscribes every user
//!   again and publishes the latest state of every published user again. A stalled pool
//!   cannot make memory grow without bound: publications coalesce per user, at most
//!   `max-in-flight` are outstanding, and a write backlog over 16 MiB resets the connection.
//!
//! The `[sfb]` table of the bridge's configuration is [`SfbSettings`].
//!
//! ```no_run
//! use presence_model::{Activities, Availability, Presence, SipUri};
//! use presence_sfb::{SfbSettings, SfbTransport};
//! use presence_transport::PresenceTransport;
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
//! let (transport, mut events, _task) = SfbTransport::start(&settings)?;
//! let user: SipUri = "sip:agent1@contoso.com".parse()?;
//! let busy = Presence { availability: Availability::new(7001)?, activities: Activities::empty() };
//! transport.publish(&user, &busy).await?;
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod backoff;
mod bodies;
mod driver;
pub mod endpoint;
pub mod settings;
mod tls;

pub use driver::{DriverStatus, SfbTransport};
pub use endpoint::{Endpoint, Event, PublishId};
pub use settings::{EndpointConfig, SfbSettings};
pub use tls::client_config;

/// Why the SfB transport cannot do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfbError {
    /// A setting of `[sfb]` is not valid.
    #[error("[sfb] `{key}`: {message}")]
    Setting {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// TLS material cannot be read or used.
    #[error("[sfb.tls] {message}")]
    Tls {
        /// What and why.
        message: String,
    },
}
