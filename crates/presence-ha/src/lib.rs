//! # presence-ha
//!
//! High availability for the presence bridge: several bridges run as one, and exactly one
//! of them, the **leader**, talks to the presence platforms. The leader is elected with
//! etcd v3 (a lease, a campaign on an election, the lease kept alive) and is **fenced on a
//! local deadline**: a leader that cannot renew its lease stops being leader before etcd can
//! expire that lease and elect another node, so an old and a new leader never act at once.
//!
//! ## Layers (quinn-proto / quinn style)
//!
//! - [`ElectorCore`] (module [`core`]): a **sans-IO** state machine. Inputs, each with
//!   `now`: [`handle_response`](ElectorCore::handle_response),
//!   [`handle_failure`](ElectorCore::handle_failure),
//!   [`handle_timeout`](ElectorCore::handle_timeout), [`shutdown`](ElectorCore::shutdown).
//!   Outputs: [`poll_request`](ElectorCore::poll_request) (JSON requests for etcd's
//!   gateway), [`poll_cancel`](ElectorCore::poll_cancel),
//!   [`poll_timeout`](ElectorCore::poll_timeout), [`poll_event`](ElectorCore::poll_event)
//!   ([`Event::Role`] on every role change). No sockets, no clock, no tokio: every
//!   deadline is computed from the `now` values it is given.
//! - [`Elector`] (the driver): one tokio task that owns the core, sends its requests with
//!   reqwest (HTTP/1.1; rustls with the ring provider for `https://` endpoints), and
//!   publishes the [`Role`] on a watch channel. [`Elector::fencing`] is the check to make
//!   before every write to a presence platform; [`Elector::status`] feeds the admin API.
//! - [`HaSettings`] is the `[ha]` table (module [`settings`] has the table of keys), with
//!   [`HaSettings::findings`] for `check`.
//!
//! ## etcd's JSON gateway rather than gRPC
//!
//! etcd serves its v3 API as gRPC and, on the same client port, as JSON over HTTP through
//! its gateway (`/v3/lease/grant`, `/v3/lease/keepalive`, `/v3/election/campaign`,
//! `/v3/election/leader`, `/v3/election/resign`, `/v3/lease/revoke`,
//! `/v3/auth/authenticate`). The crate uses the gateway, through the reqwest + rustls (ring)
//! client the Teams transport already brings. The gRPC client (`etcd-client`) would need
//! `protoc` at build time and bring tonic, prost and their code generation: minutes of
//! build on the project's two cores and a few dozen crates, for six small request types.
//! The election needs nothing the gateway lacks: a lease is granted and renewed with one
//! request each (one message of the keepalive stream), a campaign is one long-polling
//! request that returns when won, and the leader is one request. The price: JSON (int64 as
//! strings, keys and values as base64, read by [`core`] with limits), one HTTP/1.1
//! connection per request in flight (three at most: campaign, keepalive, leader check),
//! and no server push — the leader check is polled with each renewal instead of watched.
//!
//! ## The election
//!
//! Each node grants a lease of `lease-ttl`, keeps it alive, and campaigns on the election
//! `election` with its `node-id` as the value: etcd creates the key `<election>/<lease in
//! hex>` with that lease, and the node whose key is the oldest holds the election. The
//! campaign's answer (or a leader check that finds the node's own key) makes it leader;
//! the key's create revision (`leader.rev`) is the **fencing token** ([`Fencing`]): a
//! later term always has a larger one. With each renewal every node also asks who leads,
//! so a standby can name the leader and a leader notices when its key is gone.
//!
//! One campaign per lease: a campaign that fails, or a lease that is lost or not renewed in
//! time, is given up as a whole (campaign cancelled, lease revoked now or once etcd answers
//! again) and the node starts over with a new lease, and so a new key. etcd deletes the key
//! of a cancelled campaign; reusing the lease would let that clean-up delete the new
//! campaign's key behind the node's back.
//!
//! ## Fencing: the timing formula
//!
//! Let `S` be the start of the last successful lease renewal (the instant its request was
//! created, before it was sent; the grant counts as the first renewal), `TTL` the smaller
//! of the TTL asked for and the one etcd granted, and
//!
//! ```text
//! margin     = request-timeout + 100 ms       (CLOCK_SLACK: timer granularity, clock drift)
//! fence at   = S + TTL − margin               (the local deadline)
//! renew at   = S + (TTL − margin) / 3         (after a failure: again after (TTL − margin) / 24, ≥ 20 ms)
//! ```
//!
//! etcd received that renewal no earlier than `S`, so it expires the lease no earlier than
//! `S + TTL` (its lease checker runs every 500 ms, and a change of etcd leader extends
//! every lease: both only make the expiry later). Another node can win only after the key
//! is gone, so the leader's last instant is at least `margin` before any successor's first:
//! a write checked against [`Elector::fencing`] just before the deadline still has one
//! request timeout to complete before a successor can exist. The deadline is computed in
//! the core from the node's own monotonic clock, never from etcd's answers alone, and
//! [`Elector::fencing`] compares it with the clock at each call, so a driver task that
//! runs late cannot extend leadership. `request-timeout` is at most
//! `(lease-ttl − 100 ms) / 4`, so that after a failed renewal two more attempts fit before
//! the deadline.
//!
//! With the defaults (`lease-ttl` 5 s, `request-timeout` 1 s): margin 1.1 s, a renewal
//! every 1.3 s, the leader fences itself 3.9 s after the start of its last good renewal; a
//! crashed leader's lease expires after at most 5 s (+ etcd's 0.5 s checker), and the
//! standby, whose campaign is waiting on that key, wins at once. A leader that resigns
//! (shutdown) is replaced at once. Steady-state traffic: two requests (a keepalive and a
//! leader check) per node per renewal interval.
//!
//! ## What each trouble does
//!
//! | trouble | the node |
//! |---|---|
//! | etcd unreachable at start | standby ([`Why::EtcdUnreachable`], naming the endpoint and the error), asks again with back-off (`retry-initial` doubling to `retry-max`, ±20 %), moving to the next endpoint after each failure |
//! | one member down (a quorum remains) | its requests fail over to the next endpoint; the leader stays leader as long as a renewal succeeds before the deadline |
//! | no quorum | renewals fail; the leader fences itself at the deadline ([`Why::LeaseNotRenewed`]) and nobody can be elected until the quorum returns; then the given-up leases are revoked and exactly one node wins |
//! | the lease expired or was revoked | [`Why::LeaseLost`]: standby at once, a new lease, a new campaign |
//! | the leader key deleted, or another node named leader | [`Why::LeadershipLost`] at the next leader check (within one renewal interval) |
//! | shutdown | [`Why::ShuttingDown`] at once, then resign and revoke (a standby takes over at once) |
//!
//! ## Example (the core, with hand-written answers)
//!
//! ```
//! use std::time::{Duration, Instant};
//! use presence_ha::core::{CoreConfig, ElectorCore, Event, NodeId, RequestKind, Response, Role};
//!
//! let t0 = Instant::now();
//! let config = CoreConfig::new(NodeId::new("bridge-1")?, "presence-bridge", vec!["http://127.0.0.1:2379".into()]);
//! let mut core = ElectorCore::new(config, 7, t0);
//! let grant = core.poll_request().expect("a lease grant");
//! assert_eq!(grant.kind, RequestKind::Grant);
//! core.handle_response(grant.id, Response::new(200, r#"{"ID":"4660","TTL":"5"}"#), t0);
//! let campaign = core.poll_request().expect("a campaign");
//! assert_eq!(campaign.kind, RequestKind::Campaign);
//! // The key is `presence-bridge/1234` (the lease in hex), created at revision 42.
//! core.handle_response(campaign.id, Response::new(200,
//!     r#"{"header":{"revision":"42"},"leader":{"name":"cHJlc2VuY2UtYnJpZGdl","key":"cHJlc2VuY2UtYnJpZGdlLzEyMzQ=","rev":"42","lease":"4660"}}"#),
//!     t0 + Duration::from_millis(5));
//! assert_eq!(core.role(), &Role::Leader { fencing: presence_ha::core::Fencing(42) });
//! // Without a renewal, leadership ends at t0 + 5 s − (1 s + 100 ms).
//! assert_eq!(core.leader_until(), Some(t0 + Duration::from_millis(3900)));
//! assert!(core.fencing(t0 + Duration::from_millis(3899)).is_some());
//! assert!(core.fencing(t0 + Duration::from_millis(3900)).is_none());
//! # Ok::<(), presence_ha::HaError>(())
//! ```
#![deny(missing_docs)]

pub mod core;
mod driver;
pub mod settings;

pub use crate::core::{ElectorCore, Event, Fencing, HaStatus, NodeId, Role, Transition, Why};
pub use driver::Elector;
pub use settings::{Finding, HaSettings, Severity};

/// Why the elector cannot start. Never holds the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HaError {
    /// A setting of `[ha]` is not valid.
    #[error("`{key}`: {message}")]
    Setting {
        /// The key (`ha.lease-ttl`).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The TLS material of `[ha.tls]` (or the system's trust anchors) cannot be used.
    #[error(transparent)]
    Tls(#[from] presence_tls::TlsError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for etcd")]
    Client(#[source] reqwest::Error),
    /// [`Elector::start`] was called outside a tokio runtime.
    #[error("the HA elector needs a tokio runtime")]
    NoRuntime,
}
