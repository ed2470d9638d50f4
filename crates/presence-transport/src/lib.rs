//! # presence-transport
//!
//! The port between the bridge's engine and a presence service (Skype for Business, Teams,
//! SIP SIMPLE, ...). A transport is two halves:
//!
//! - a [`PresenceTransport`] handle that the engine calls: [`publish`] a user's presence,
//!   [`subscribe`] to and [`unsubscribe`] from users' presence;
//! - an [`EventReceiver`] that the engine reads: [`TransportEvent`]s for connection changes
//!   and for presence updates of subscribed users.
//!
//! A transport crate creates both halves together (with [`event_channel`]) and hands them
//! to whoever drives the engine. The engine knows nothing else of it, so a new transport is a
//! new crate, not an engine change.
//!
//! ## The contract a transport keeps
//!
//! - **Publish** resolves when the service has accepted the publication (`Ok`) or when it
//!   cannot be delivered (`Err`). Callers keep at most one publication per user in flight;
//!   a transport may still receive several (other callers) and then sends only the latest
//!   (latest wins), resolving the superseded ones with [`TransportError::Superseded`].
//!   Publishing what the service already shows for that user on the current connection
//!   may complete at once without traffic.
//! - **Subscriptions** are a set: subscribing to a user already subscribed is a no-op. The
//!   transport keeps its subscriptions alive (refresh before expiry, re-subscribe when the
//!   service ends one), reports each new (or re-made) subscription as
//!   [`TransportEvent::Subscribed`] and their presence as [`TransportEvent::Presence`].
//! - **Connection events**: [`TransportEvent::Connected`] after every (re)connection, when
//!   the service is ready for publications; [`TransportEvent::Disconnected`] when the
//!   connection is lost. On `Connected` the engine publishes every user's current state
//!   again and subscribes to every user again, so nothing stays stale after an outage.
//! - **Bounded memory**: presence updates for the same user that the engine has not read yet
//!   are merged in the event channel (the newest replaces the older), so a slow reader
//!   never makes the channel grow beyond one pending update per user.
//! - The engine may call the handle from several tasks at once (`Send + Sync`); the futures
//!   it returns are `Send`.
//!
//! Invariant: this crate performs no I/O, starts no threads and reads no clock; it builds
//! with no async runtime. [`MemoryTransport`] implements the port in memory for tests.
//!
//! ```
//! use presence_model::{Activities, Availability, Presence, SipUri};
//! use presence_transport::{MemoryTransport, PresenceTransport, TransportEvent};
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let waker = std::task::Waker::noop();
//! #     let mut cx = std::task::Context::from_waker(&waker);
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! let (transport, mut events) = MemoryTransport::new();
//! transport.connect();
//! assert!(matches!(events.try_recv(), Some(TransportEvent::Connected { .. })));
//!
//! let user: SipUri = "sip:agent1@contoso.com".parse()?;
//! let busy = Presence { availability: Availability::new(7001)?, activities: Activities::empty() };
//! block_on(transport.publish(&user, &busy))?;
//! assert_eq!(transport.shows(&user), Some(busy));
//!
//! block_on(transport.subscribe(std::slice::from_ref(&user)))?;
//! assert!(matches!(events.try_recv(), Some(TransportEvent::Subscribed { .. })));
//! transport.set_user_presence(&user, 3500, Some("Available"));
//! let Some(TransportEvent::Presence(update)) = events.try_recv() else { panic!() };
//! assert_eq!(update.availability.get(), 3500);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`publish`]: PresenceTransport::publish
//! [`subscribe`]: PresenceTransport::subscribe
//! [`unsubscribe`]: PresenceTransport::unsubscribe
#![deny(missing_docs)]

mod events;
mod memory;

use std::future::Future;

pub use events::{EventReceiver, EventSender, event_channel};
pub use memory::MemoryTransport;
use presence_model::{Availability, Presence, SipUri};

/// The handle half of a presence transport: what the engine calls.
pub trait PresenceTransport: Send + Sync + 'static {
    /// Publishes `presence` as `user`'s presence. Resolves once the service accepted it, or
    /// with an error once it cannot be delivered.
    fn publish(
        &self,
        user: &SipUri,
        presence: &Presence,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Adds users to the subscription set; their presence arrives as
    /// [`TransportEvent::Presence`]. Resolves once the request was handed to the service
    /// (or at once while disconnected: subscriptions are made on the next connection).
    fn subscribe(
        &self,
        users: &[SipUri],
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Removes users from the subscription set.
    fn unsubscribe(
        &self,
        users: &[SipUri],
    ) -> impl Future<Output = Result<(), TransportError>> + Send;
}

/// What a transport reports to the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportEvent {
    /// The transport is (again) connected and ready: publish current states, subscribe.
    Connected {
        /// A human-readable name of the peer, for logs (`pool.contoso.com:5061`).
        peer: String,
    },
    /// The connection was lost; the transport is reconnecting on its own.
    Disconnected {
        /// Why, for logs.
        reason: String,
    },
    /// A subscribed user's presence, as the service reports it.
    Presence(PresenceUpdate),
    /// The service accepted a new subscription for these users (a first one, or one made
    /// again after the service ended the previous one): the next presence update of each is
    /// the first after a (re-)subscription.
    Subscribed {
        /// The users.
        users: Vec<SipUri>,
    },
}

/// A subscribed user's presence as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceUpdate {
    /// Whose presence.
    pub user: SipUri,
    /// The availability as compared by the bridge (values above 18000 count as 18000).
    pub availability: Availability,
    /// The availability number exactly as received.
    pub raw_availability: u64,
    /// The activity text or token the service sent with it, if any.
    pub activity: Option<String>,
}

impl PresenceUpdate {
    /// An update from a received number: `availability` is clamped, `raw_availability` kept.
    pub fn new(user: SipUri, raw_availability: u64, activity: Option<String>) -> Self {
        PresenceUpdate {
            user,
            availability: Availability::from_wire(raw_availability),
            raw_availability,
            activity,
        }
    }
}

/// Why a transport could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// There is no connection to the service now; the caller retries after `Connected`.
    #[error("not connected to the presence service")]
    NotConnected,
    /// A later publication for the same user replaced this one before it was sent.
    #[error("superseded by a later publication for the same user")]
    Superseded,
    /// The service answered with an error.
    #[error("the presence service refused the request: {status} {reason}")]
    Rejected {
        /// The service's status code (a SIP or HTTP status).
        status: u16,
        /// The service's reason and diagnostics.
        reason: String,
    },
    /// The service did not answer in time.
    #[error("the presence service did not answer in time")]
    Timeout,
    /// The transport has been shut down.
    #[error("the transport is shut down")]
    Shutdown,
    /// A failure specific to one transport.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl TransportError {
    /// Whether trying again later may succeed (everything but `Shutdown` and a 4xx refusal).
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Shutdown => false,
            TransportError::Rejected { status, .. } => {
                !(400..500).contains(status) || *status == 408
            }
            _ => true,
        }
    }
}
