//! # presence-transport
//!
//! The port between the bridge's engine and a presence platform (Skype for Business,
//! Microsoft Teams, SIP SIMPLE, or one of your own). A transport is two halves:
//!
//! - a [`PresenceTransport`] handle that the engine calls: [`publish`] and [`unpublish`] a
//!   user's presence, [`subscribe`] to and [`unsubscribe`] from users' presence, read its
//!   [`status`], [`shutdown`];
//! - an [`EventSender`] it reports into: [`TransportEvent`]s for connection changes, flow
//!   control credit, presence updates of subscribed users and per-user problems. The engine
//!   reads them from the matching [`EventReceiver`]; several transports share one channel.
//!
//! The trait is object safe (`async-trait`), so the binary picks transports from the
//! configuration at run time and holds them as `Arc<dyn PresenceTransport>`; a [`Router`]
//! holds several and sends each user to the transport of its platform. Users are named by
//! a [`UserId`]: the platform and the address the platform knows them by (a SIP URI for SfB
//! and SIP SIMPLE, an Entra object id or UPN for Teams).
//!
//! ## The contract: who owns what
//!
//! Each concern has exactly one owner, so a new transport implements only its protocol.
//!
//! | concern | owner | what the other side does |
//! |---|---|---|
//! | **dedup** (publish only what differs from what the platform confirmed) | caller (the engine's `presence_push::Publisher`) | a transport sends every publication it is given |
//! | **coalescing** (latest wins per user, most recent change first) | caller | a transport keeps no per-user backlog of its own: it is handed a publication only when it has credit |
//! | **retry** of a failed publication (back-off with jitter, honouring `retry_after`) | caller | a transport reports each failure once, with [`TransportError::retry_after`] when the platform said when; it never re-sends on its own, except to complete one publication (SfB's 409 version fix-up, Graph's token refresh after a 401) |
//! | **resync** (publish every user again, subscribe every user again) | caller, on every [`TransportEvent::Connected`] of the platform | a transport forgets what it published when its connection (or token) is lost |
//! | **pacing** (in-flight window, the platform's rate budget, `429`/`Retry-After` pauses) | transport, through **credit** | the caller hands out at most as many publications as it has credit for |
//! | **subscription upkeep** (refresh before expiry, re-subscribe after the platform ends one or after a reconnect) | transport | the caller states the subscription set once |
//! | **protocol state** (SfB category versions, Teams sessions and their refresh, SIP ETags) | transport | — |
//! | **logging a failed publication** (warn once, then one line per 10 s per platform with the count, and a line when publications succeed again) | caller (the engine) | a transport logs each failure at debug level only: it returns the error, which is the caller's to report |
//! | **batching writes** (requests handed over together leave in one socket write) | transport: a session takes the commands already queued before it writes | the caller hands over everything that is due in one turn, then waits |
//! | **fencing** (only the leader of a hot-standby group writes to a platform) | the [`Gate`], in front of every transport of the node | a transport is started for one leadership term and shut down when it ends; it never asks who leads |
//!
//! In detail:
//!
//! - **Publish** resolves when the platform accepted the publication (`Ok`) or when it cannot
//!   be delivered (`Err`, once). Callers keep at most one publication per user outstanding; a
//!   transport that is given a second for the same user may refuse it with
//!   [`TransportError::Busy`] or send it after the first, but never reorders them.
//! - **Credit** (flow control): [`TransportEvent::Connected`] grants an initial credit and
//!   [`TransportEvent::Credit`] grants more, typically one per settled publication (SfB), or
//!   as the platform's rate budget refills (Teams). Each [`publish`] consumes one; credit
//!   ends with the connection (a [`TransportEvent::Disconnected`] makes it zero). A caller
//!   that ignores credit still gets correct results, only later: a transport may queue such
//!   publications in order. Credit is what lets the caller, not the transport, decide which
//!   user's publication goes next. (A publication started just before a reconnect may
//!   give its credit back on the new connection: the grant can exceed the window by the
//!   few calls in transit, which then wait in order.)
//! - **Unpublish** ends what the bridge published for a user, so the platform shows the
//!   user's own presence again (SfB removes the bridge's category instances, Teams clears
//!   the bridge's presence session, SIP SIMPLE removes the publication). It needs no
//!   credit. Ordered with the user's publications: it is sent after one outstanding.
//! - **Subscriptions** are a set per transport: subscribing to a user already subscribed is
//!   a no-op. The transport reports each new (or re-made) subscription as
//!   [`TransportEvent::Subscribed`] and presence as [`TransportEvent::Presence`], mapped
//!   onto the SfB availability scale.
//! - **Connection events**: [`TransportEvent::Connected`] after every (re)connection, when
//!   the platform is ready for publications; [`TransportEvent::Disconnected`] when it is
//!   lost (reconnecting is the transport's job). A Teams transport is "connected" while it
//!   holds a valid token.
//! - **Per-user problems** (a Teams UPN that does not resolve) are reported as
//!   [`TransportEvent::UserProblem`]; they never affect other users.
//! - **Bounded memory**: the event channel holds at most one pending presence update per
//!   user and one pending credit grant per platform.
//! - The handle is `Send + Sync`; calls may come from several tasks at once.
//! - **Fencing** (bridges run as a hot-standby group, `[ha]`): the engine holds a [`Gate`]
//!   instead of the [`Router`]. The gate asks its [`Fence`] (the elector) for the current
//!   term's token before **every** write and refuses with [`TransportError::NotConnected`]
//!   when it does not match; it starts a term's transports when the node becomes leader and
//!   hands them back to be shut down when the term ends, dropping every event they send
//!   afterwards and telling the engine [`TransportEvent::Disconnected`]. No other code checks
//!   leadership before a write: the gate is the one place.
//!
//! [`settings`] holds what every transport's configuration table shares: `Finding`s for
//! `check` and durations written `10s`.
//!
//! Invariant: this crate performs no I/O, starts no threads and reads no clock; it builds
//! with no async runtime. [`MemoryTransport`] implements the port in memory, and the
//! `testkit` feature holds the contract above as a conformance suite that every transport
//! crate runs against its own peer.
//!
//! ```
//! use presence_model::{Activities, AggregatedStateId, Availability, Platform, Presence, Publication, UserId};
//! use presence_transport::{MemoryTransport, PresenceTransport, TransportEvent};
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let waker = std::task::Waker::noop();
//! #     let mut cx = std::task::Context::from_waker(&waker);
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! let (transport, mut events) = MemoryTransport::new(Platform::sfb());
//! transport.connect();
//! assert!(matches!(events.try_recv(), Some(TransportEvent::Connected { credit, .. }) if credit > 0));
//!
//! let user = UserId::sip(Platform::sfb(), "sip:agent1@contoso.com".parse()?);
//! let busy = Publication {
//!     id: AggregatedStateId::new("INCALL")?,
//!     presence: Presence { availability: Availability::new(7001)?, activities: Activities::empty() },
//! };
//! block_on(transport.publish(&user, &busy))?;
//! assert_eq!(transport.shows(&user), Some(busy));
//!
//! block_on(transport.subscribe(std::slice::from_ref(&user)))?;
//! transport.set_user_presence(&user, 3500, Some("Available"));
//! let presence = std::iter::from_fn(|| events.try_recv())
//!     .find_map(|e| match e { TransportEvent::Presence(p) => Some(p), _ => None })
//!     .expect("a presence update");
//! assert_eq!(presence.availability.get(), 3500);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`publish`]: PresenceTransport::publish
//! [`unpublish`]: PresenceTransport::unpublish
//! [`subscribe`]: PresenceTransport::subscribe
//! [`unsubscribe`]: PresenceTransport::unsubscribe
//! [`status`]: PresenceTransport::status
//! [`shutdown`]: PresenceTransport::shutdown
#![deny(missing_docs)]

mod events;
mod gate;
mod memory;
mod router;
pub mod settings;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::time::Duration;

pub use events::{EventReceiver, EventSender, event_channel};
pub use gate::{Fence, Gate};
pub use memory::MemoryTransport;
use presence_model::{Availability, Platform, Publication, UserId};
pub use router::Router;

/// Polls a future once: the in-memory transports never wait (unit tests only).
#[cfg(test)]
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the memory transports never wait"),
    }
}

/// The handle half of a presence transport: what the engine calls. Object safe: hold it as
/// `Arc<dyn PresenceTransport>`. Each call returns one boxed future (the price of choosing
/// the transport at run time).
#[async_trait::async_trait]
pub trait PresenceTransport: Send + Sync {
    /// Publishes `publication` as `user`'s presence. Resolves once the platform accepted it,
    /// or with an error once it cannot be delivered. Consumes one credit.
    async fn publish(&self, user: &UserId, publication: &Publication)
    -> Result<(), TransportError>;

    /// Ends what the bridge published for `user` (the platform shows the user's own
    /// presence again). A transport that knows nothing of the bridge's can be on the
    /// platform may answer `Ok` at once; one whose publications outlive its connections
    /// (SfB's static category instances) always sends the removal.
    async fn unpublish(&self, user: &UserId) -> Result<(), TransportError>;

    /// Adds users to the subscription set; their presence arrives as
    /// [`TransportEvent::Presence`]. Resolves once the request was taken (subscriptions are
    /// made, and re-made after every reconnection, by the transport).
    async fn subscribe(&self, users: &[UserId]) -> Result<(), TransportError>;

    /// Removes users from the subscription set.
    async fn unsubscribe(&self, users: &[UserId]) -> Result<(), TransportError>;

    /// The state of each platform this handle serves (one entry; a [`Router`]: one per
    /// transport), for readiness checks and the admin API.
    fn status(&self) -> Vec<TransportStatus>;

    /// Stops: waits up to `grace` for publications outstanding, then closes the connection.
    /// Later calls fail with [`TransportError::Shutdown`].
    async fn shutdown(&self, grace: Duration);
}

/// Counts one publication as handed to a transport for as long as the guard lives (for
/// [`TransportStatus::publications_in_flight`]): a driver's `publish` holds one while it
/// waits for the outcome, so a cancelled call is uncounted too.
#[derive(Debug)]
pub struct Outstanding<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Outstanding<'a> {
    /// Adds one to `counter` until the guard is dropped.
    pub fn new(counter: &'a std::sync::atomic::AtomicUsize) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Outstanding(counter)
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One platform's state, as [`PresenceTransport::status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportStatus {
    /// The platform.
    pub platform: Platform,
    /// Whether it is connected and ready for publications.
    pub connected: bool,
    /// The peer, for people (`pool01.contoso.com:5061`, `https://graph.microsoft.com/v1.0`).
    pub peer: String,
    /// Why it is not connected (or what is degraded), when known: the last connection
    /// error, a refused credential. Never holds a secret.
    pub detail: Option<String>,
    /// Publications handed to the transport and not yet settled.
    pub publications_in_flight: usize,
}

/// What a transport reports to the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportEvent {
    /// The platform is (again) connected and ready: publish current states, subscribe.
    Connected {
        /// The platform.
        platform: Platform,
        /// A human-readable name of the peer, for logs.
        peer: String,
        /// The initial credit: how many publications may be outstanding now.
        credit: u32,
    },
    /// The connection was lost; the transport is reconnecting on its own. Credit is zero.
    Disconnected {
        /// The platform.
        platform: Platform,
        /// Why, for logs.
        reason: String,
    },
    /// More credit: the transport can take `credit` more publications.
    Credit {
        /// The platform.
        platform: Platform,
        /// How many.
        credit: u32,
    },
    /// A subscribed user's presence, as the platform reports it.
    Presence(PresenceUpdate),
    /// The platform accepted a new subscription for these users (a first one, or one made
    /// again after the platform ended the previous one or after a reconnect): the next
    /// presence update of each is the first after a (re-)subscription.
    Subscribed {
        /// The users.
        users: Vec<UserId>,
    },
    /// A user that the transport cannot serve, or can again (`problem: None`): a UPN that
    /// does not resolve, a user the platform does not know. Other users are not affected.
    UserProblem {
        /// The user.
        user: UserId,
        /// What is wrong, or `None` once it is resolved.
        problem: Option<String>,
    },
}

/// A subscribed user's presence as received, on the SfB availability scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceUpdate {
    /// Whose presence.
    pub user: UserId,
    /// The availability as compared by the bridge (values above 18000 count as 18000).
    pub availability: Availability,
    /// The availability number exactly as received (SfB), or as mapped (other platforms).
    pub raw_availability: u64,
    /// The activity text or token the platform sent with it, if any.
    pub activity: Option<String>,
}

impl PresenceUpdate {
    /// An update from a received number: `availability` is clamped, `raw_availability` kept.
    pub fn new(user: UserId, raw_availability: u64, activity: Option<String>) -> Self {
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
    /// There is no connection to the platform now; the caller retries after `Connected`.
    #[error("not connected to the presence platform")]
    NotConnected,
    /// A later publication for the same user replaced this one before it was sent.
    #[error("superseded by a later publication for the same user")]
    Superseded,
    /// A publication for this user is already outstanding (callers keep at most one).
    #[error("a publication for {user} is already outstanding")]
    Busy {
        /// The user.
        user: UserId,
    },
    /// The platform answered with an error.
    #[error("the presence platform refused the request: {status} {reason}")]
    Rejected {
        /// The platform's status code (a SIP or HTTP status).
        status: u16,
        /// The platform's reason and diagnostics.
        reason: String,
        /// When the platform asked to be tried again (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The platform did not answer in time.
    #[error("the presence platform did not answer in time")]
    Timeout,
    /// The transport cannot serve this user: another platform's user, an address kind it
    /// does not use, a user the platform does not know.
    #[error("{user} cannot be served here: {reason}")]
    Unsupported {
        /// The user.
        user: UserId,
        /// Why.
        reason: String,
    },
    /// The transport has been shut down.
    #[error("the transport is shut down")]
    Shutdown,
    /// A failure specific to one transport.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl TransportError {
    /// Whether trying again later may succeed: not for `Shutdown`, `Unsupported`, `Busy`,
    /// or a refusal other than 408 (timeout), 409 (a conflict with another writer that
    /// outlasted the transport's own fix-up: the next attempt starts from the platform's
    /// current version), 429 (throttled), 480/486 (SIP: temporarily unavailable, busy here)
    /// and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Shutdown
            | TransportError::Unsupported { .. }
            | TransportError::Busy { .. } => false,
            TransportError::Rejected { status, .. } => {
                matches!(status, 408 | 409 | 429 | 480 | 486) || (500..600).contains(status)
            }
            _ => true,
        }
    }

    /// Checks that `user` is of `platform`, the one a transport serves: else the
    /// permanent [`TransportError::Unsupported`] every transport gives.
    pub fn ensure_platform(platform: &Platform, user: &UserId) -> Result<(), TransportError> {
        if user.platform() == platform {
            Ok(())
        } else {
            Err(TransportError::Unsupported {
                user: user.clone(),
                reason: format!("this transport serves platform `{platform}`"),
            })
        }
    }

    /// When the platform asked to be tried again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TransportError::Rejected { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
