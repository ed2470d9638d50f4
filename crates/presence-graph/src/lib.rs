//! # presence-graph
//!
//! The Microsoft Teams transport of the presence bridge. It writes users' presence into
//! Teams through Microsoft Graph as an application (client-credentials tokens, application
//! permissions `Presence.ReadWrite.All` and `User.Read.All`), and reads subscribed users'
//! presence back by polling.
//!
//! ## Layers (quinn-proto / quinn style)
//!
//! - [`GraphCore`] (module [`core`]): a **sans-IO** state machine. Inputs, each with `now`:
//!   [`publish`](GraphCore::publish), [`unpublish`](GraphCore::unpublish),
//!   [`subscribe`](GraphCore::subscribe), [`unsubscribe`](GraphCore::unsubscribe),
//!   [`handle_response`](GraphCore::handle_response),
//!   [`handle_failure`](GraphCore::handle_failure),
//!   [`handle_timeout`](GraphCore::handle_timeout). Outputs:
//!   [`poll_request`](GraphCore::poll_request) (an [`HttpRequest`](core::HttpRequest) with its URL, headers and
//!   body), [`poll_timeout`](GraphCore::poll_timeout), [`poll_event`](GraphCore::poll_event).
//!   No sockets, no clock, no tokio; jitter and `client-request-id`s come from a seeded
//!   SplitMix64, so a run is deterministic. It owns tokens (cached, refreshed at 80 % of
//!   `expires_in` or 5 minutes before it ends, whichever is earlier, and after a 401 of a
//!   token that worked, when the refused request is sent once more: a renewal, not a
//!   reconnection; only when no new token can be had, or a fresh one is refused too, is the
//!   platform reported disconnected), the request budget and the credit it grants,
//!   the bridge's presence sessions and their refresh, status messages, preferred
//!   presence, UPN lookups and batched polling.
//! - [`GraphTransport`] (the driver): one tokio task that owns the core, sends its requests
//!   with reqwest (rustls with the ring provider: no aws-lc, no OpenSSL), feeds answers and
//!   timeouts back, and implements [`PresenceTransport`](presence_transport::PresenceTransport).
//!   [`probe`] serves `check --online`.
//! - [`GraphSettings`] is the `[teams]` table of the bridge's configuration (its rustdoc
//!   has the table of keys), [`mapping`] the state mapping, [`wire`] the bodies.
//!
//! ## Mapping
//!
//! | SfB class | pushed to Teams | Teams → SfB scale |
//! |---|---|---|
//! | Online, IdleOnline | session Available/Available | Available → 3500, AvailableIdle → 5000 |
//! | Busy, IdleBusy | session Busy/InACall (preferred Busy/Busy with `preferred-presence`) | Busy → 6500, BusyIdle → 7500 |
//! | DoNotDisturb | session DoNotDisturb/Presenting (preferred DoNotDisturb/DoNotDisturb) | DoNotDisturb → 9500 |
//! | BeRightBack | session Away/Away (preferred BeRightBack/BeRightBack) | BeRightBack → 12500 |
//! | Away | session Away/Away | Away → 15500 |
//! | Offline | `clearPresence` (the user's own presence shows again) and the bridge's status message cleared | Offline → 18000 |
//! | None (0) | nothing | PresenceUnknown and unknown values: no update |
//!
//! `[teams.classes]` and `[teams.states]` override pairs (a state's wins); see [`mapping`].
//! The activity text of `status-message-lcid` becomes the Teams status message when it
//! differs from what the user is known to show (after a restart the messages are learnt
//! with batched reads first, so a resync does not cost a second request per agent).
//!
//! ## Budget, credit, and the arithmetic
//!
//! Graph accepts 1,500 presence requests per 30 s per app registration and tenant (reads
//! and writes alike, a 650-id batch read counting as one), over a sliding window; over it
//! answers 429 with `Retry-After`. The core spends a GCRA bucket of `budget` (default
//! 1,350 = 90 %) per 30 s with a burst of 2 × `max-concurrency` (at most 64, and at most
//! 1,500 − `budget`), shared by every presence request of the app: writes, reads, session
//! refreshes, status messages, clears. Any sliding 30 s window then sees at most
//! `budget + burst` requests (1,382 by default). A 429 pauses the app's writes (or reads)
//! for `Retry-After`, or an exponential back-off when it is absent.
//!
//! The engine hands a publication over only with **credit**. The core grants one credit per
//! budget token and concurrency slot it sets aside, after the internal work that is due
//! (refreshes, polls, status messages, clears) took what it needs, and keeps at most
//! min(`max-concurrency`, burst) / 2 credit outstanding per app (8 by default): so a
//! publication handed over is sent at once (unless a request for the same user is still in
//! flight, or its UPN must be looked up first), the core holds no backlog of writes, and
//! under a backlog the engine's queue (latest wins, most recent change first) decides who
//! goes next: a superseded state is never sent. Tokens set aside and not used are simply
//! spent later; the 10 % the default budget leaves covers them. With several apps a
//! publication for a user of an app without room waits briefly in that app's queue.
//!
//! Arithmetic: 45 requests/s per app at the default budget (50/s is Graph's ceiling). A full
//! resync of 5,000 agents takes at least 5,000 ÷ 45 ≈ 111 s on one app (100 s at the
//! ceiling); `[[teams.apps]]` divides it. Polling 5,000 users every 5 s costs 8 batch reads
//! per 5 s, 48 of the 1,500 per 30 s. Sessions are refreshed at 80 % of
//! `session-duration` (a Busy agent on a 1 h session: one request per 48 minutes), but an
//! Available/Available session every 4 minutes, before Graph lets it decay to
//! AvailableInactive and then Away: 5,000 Available agents cost 21 requests/s of the 45, so
//! large deployments spread their users over more app registrations (`[[teams.apps]]`).
//!
//! ## Out of scope
//!
//! Change-notification webhooks (`/subscriptions` on presence) need a delegated token and a
//! public HTTPS endpoint; the transport polls instead. Delegated (per-user) tokens,
//! certificate credentials and `Retry-After` given as an HTTP date are not supported.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use presence_graph::core::{CoreConfig, Event, GraphCore, HttpResponse, PublishId, RequestKind};
//! use presence_graph::settings::Secret;
//! use presence_model::{Activities, AggregatedStateId, Availability, Platform, Presence, Publication, UserAddress, UserId};
//! use presence_transport::TransportEvent;
//!
//! let t0 = Instant::now();
//! let config = CoreConfig::new(
//!     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
//!     "https://graph.microsoft.com/v1.0",
//!     "11111111-2222-3333-4444-555555555555",
//!     Secret::new("not a real secret"),
//! );
//! let mut core = GraphCore::new(config, 42, t0);
//! let token = core.poll_request().expect("a token request");
//! assert_eq!(token.kind, RequestKind::Token);
//! core.handle_response(token.id, HttpResponse::new(200,
//!     r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0"}"#), t0);
//! let Some(Event::Transport(TransportEvent::Connected { credit, .. })) = core.poll_event() else { panic!() };
//! assert!(credit > 0);
//!
//! let user = UserId::new(Platform::teams(), UserAddress::EntraId("6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f".parse()?));
//! let busy = Publication {
//!     id: AggregatedStateId::new("INCALL")?,
//!     presence: Presence { availability: Availability::new(6500)?, activities: Activities::empty() },
//! };
//! core.publish(&user, &busy, PublishId(1), t0);
//! let write = core.poll_request().expect("sent at once");
//! assert!(write.url.ends_with("/presence/setPresence"));
//! assert!(String::from_utf8_lossy(&write.body).contains(r#""activity":"InACall""#));
//! core.handle_response(write.id, HttpResponse::new(200, ""), t0 + Duration::from_millis(80));
//! let settled = std::iter::from_fn(|| core.poll_event())
//!     .find_map(|e| match e { Event::Settled { id, result, .. } => Some((id, result)), _ => None });
//! assert!(matches!(settled, Some((PublishId(1), Ok(())))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod core;
mod driver;
pub mod mapping;
pub mod rate;
pub mod settings;
mod tls;
pub mod wire;

use std::path::PathBuf;

pub use crate::core::GraphCore;
pub use driver::{GraphTransport, probe};
pub use settings::{Finding, GraphSettings, Secret, Severity};
pub use tls::client_config;

/// Why the Teams transport cannot do what was asked. Never holds a secret or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// A setting of `[teams]` is not valid.
    #[error("`{key}`: {message}")]
    Setting {
        /// The key (`teams.client-id`).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The secret file cannot be read.
    #[error("`{key}`: cannot read the secret file `{}`", path.display())]
    SecretFile {
        /// The key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The secret's environment variable is not usable.
    #[error("`{key}`: the environment variable `{name}` is not set or not UTF-8")]
    SecretEnv {
        /// The key.
        key: &'static str,
        /// The variable.
        name: String,
        /// Why.
        #[source]
        source: std::env::VarError,
    },
    /// The TLS material (`teams.ca`, or the system's trust anchors) cannot be used.
    #[error(transparent)]
    Tls(#[from] presence_tls::TlsError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// [`GraphTransport::start`] was called outside a tokio runtime.
    #[error("the Teams transport needs a tokio runtime")]
    NoRuntime,
    /// Entra refused an app's credential ([`probe`]).
    #[error("Entra refused the credential of app {client_id}: {description}")]
    Credential {
        /// The app.
        client_id: String,
        /// Entra's error and description.
        description: String,
    },
    /// An HTTP exchange of [`probe`] failed.
    #[error("{what} failed")]
    Http {
        /// Which exchange.
        what: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// An answer of [`probe`] was larger than the core reads ([`core::MAX_BODY`]).
    #[error("{what} is larger than {limit} bytes and was refused")]
    AnswerTooLarge {
        /// Which answer.
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// An answer could not be read ([`probe`]).
    #[error(transparent)]
    Answer(#[from] wire::WireError),
}
