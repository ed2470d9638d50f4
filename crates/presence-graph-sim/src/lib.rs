//! # presence-graph-sim
//!
//! A Microsoft Graph presence and Entra token-endpoint **simulator, for tests and demos:
//! not a server**. It answers what a daemon application that keeps Microsoft Teams
//! presence in step asks of Microsoft's cloud (a client-credentials token, then Graph's
//! presence API) with the documented wire shapes, so the bridge's Teams transport can be
//! tested end to end on loopback and its demo can run with no tenant at all. Never expose
//! it to a network: its control API has no authentication.
//!
//! Two layers, like the Skype for Business simulator of this workspace:
//!
//! - [`GraphWorld`]: the **sans-IO core**. No runtime, no sockets, no clock:
//!   [`handle`](GraphWorld::handle) takes an [`HttpRequest`] and `now` and gives an
//!   [`HttpResponse`]; token strings and request GUIDs come from a SplitMix64 generator
//!   seeded by [`SimConfig::seed`], user ids are derived from UPNs, and session expiry and
//!   the Available decay are evaluated when a user is read. A run is a deterministic
//!   function of its inputs. The control surface (the user's own Teams client, what a
//!   user shows, the log of writes, counters, events) and the fault menu are methods too.
//! - [`GraphSimServer`] (feature `server`, on by default): the **tokio layer**, an axum
//!   server on loopback HTTP or HTTPS (rustls with ring; [`ServerConfig::with_self_signed_tls`]
//!   makes a throw-away CA with presence-testpki), the same control surface as
//!   synchronous methods, server-level faults (latency, stall), and an HTTP control API
//!   under `/_sim/` (see [`server`]). The `presence-graph-sim` command runs it from a
//!   shell.
//!
//! ## What it simulates
//!
//! **Token endpoint**: `POST /{tenant}/oauth2/v2.0/token` (tenant = [`SimConfig::tenant`]
//! or [`SimConfig::tenant_id`], case-insensitive), a form with `grant_type=client_credentials`,
//! `client_id`, `client_secret` and `scope=https://graph.microsoft.com/.default`. Success:
//! 200 `{"token_type":"Bearer","expires_in":N,"ext_expires_in":N,"access_token":"..."}`
//! with N the whole seconds of [`SimConfig::token_lifetime`] (default 3599); the token is
//! opaque and stops working N seconds later. Errors are Entra's JSON
//! (`error`, `error_description` starting `AADSTSnnnn: `, `error_codes`, `timestamp`,
//! `trace_id`, `correlation_id` = the `client-request-id` header when it is a GUID):
//!
//! | case | status | `error` | code |
//! |---|---|---|---|
//! | not `POST` | 400 | `invalid_request` | 900561 |
//! | unknown tenant | 400 | `invalid_request` | 90002 |
//! | a field missing (`grant_type`, `client_id`, `scope`, `client_secret`) | 400 | `invalid_request` | 900144 |
//! | another grant type | 400 | `unsupported_grant_type` | 70003 |
//! | another scope | 400 | `invalid_scope` | 1002012 |
//! | unknown client id | 400 | `unauthorized_client` | 700016 |
//! | wrong secret | 401 | `invalid_client` | 7000215 |
//!
//! **Graph** (`/v1.0`, path segments case-insensitive): every call needs
//! `Authorization: Bearer <token>` (scheme case-insensitive), else 401
//! `InvalidAuthenticationToken` ("Access token is empty." without one; "Access token has
//! expired or is not yet valid." for an expired or revoked one; "Access token validation
//! failure." for an unknown one) with `WWW-Authenticate: Bearer ...`. Error bodies are
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`;
//! every answer carries `request-id` and `client-request-id` headers (the client's own
//! `client-request-id` is echoed).
//!
//! | request | answer |
//! |---|---|
//! | `GET /users/{id-or-upn}` (`$select` ignored) | 200 `{"id","userPrincipalName"}`; 404 `Request_ResourceNotFound` |
//! | `GET /users/{id-or-upn}/presence`, `GET /communications/presences/{id}` | 200 presence; 404 |
//! | `POST /communications/getPresencesByUserId` `{"ids":[...]}` | 200 `{"value":[...]}` in request order, `PresenceUnknown` for ids that are no user; over [`SimConfig::max_batch_ids`] (650) ids: 400 `BadRequest` |
//! | `POST /users/{id}/presence/setPresence` `{"sessionId","availability","activity","expirationDuration"?}` | 200, empty: creates or replaces the app's session |
//! | `POST /users/{id}/presence/clearPresence` `{"sessionId"}` | 200; 404 `NotFound` without a session |
//! | `POST /users/{id}/presence/setUserPreferredPresence` `{"availability","activity","expirationDuration"?}` | 200 |
//! | `POST /users/{id}/presence/clearUserPreferredPresence` | 200 |
//! | `POST /users/{id}/presence/setStatusMessage` `{"statusMessage":{"message":{"content","contentType"},"expiryDateTime"?}}` | 200; empty content clears |
//!
//! A presence object is `{"id","availability","activity","statusMessage","sequenceNumber"}`
//! (`statusMessage` null or `{"message":{"content","contentType":"text"},"publishedDateTime",
//! "expiryDateTime"?}`); `sequenceNumber` is a 20-digit zero-padded counter per user that
//! grows whenever what the user shows (availability, activity, status message) changes,
//! so it sorts as text.
//!
//! Rules of the writes: `sessionId` must be the calling token's client id, else 400
//! `InvalidArgument`; `setPresence` takes only the [`SESSION_PAIRS`] and
//! `setUserPreferredPresence` only the [`PREFERRED_PAIRS`] (case-insensitive), else 400
//! `InvalidArgument` naming the pair; `expirationDuration` is an ISO 8601 duration
//! ([`parse_iso8601_duration`]): for `setPresence` PT5M by default and PT5M..=PT4H, else
//! 400 `InvalidArgument` "The provided \[ExpirationDuration\] is out of range"; for the
//! preferred presence one day by default for Busy and DoNotDisturb, seven days otherwise;
//! a write's `{id}` must be an object id (a UPN gets the 404 of the users call);
//! malformed JSON is 400 `BadRequest`; `contentType` other than `text` is 400.
//!
//! **Aggregation** (what a user shows, [`GraphWorld::shows`]): the user-preferred
//! presence while set and not expired; otherwise, among the live sessions (each app's,
//! and the user's own Teams client's, [`TEAMS_CLIENT`], set with
//! [`GraphWorld::set_client_presence`]), the one of highest availability by the
//! simulator's precedence DoNotDisturb > Busy > BusyIdle > Available > AvailableIdle >
//! BeRightBack > Away > Offline ([`Availability::precedence`]; the latest set wins among
//! equals) with its activity; no live session: Offline/Offline. A session is gone once
//! its `expirationDuration` ran out. An app session set to Available/Available that is
//! not set again shows Available/AvailableInactive after [`SimConfig::available_timeout`]
//! (5 min) and Away/Away after [`SimConfig::away_timeout`] (10 min); setting it again
//! restarts both. The Teams client's session never expires and does not decay.
//!
//! **Throttling**: every presence request (all of the table above but the users call;
//! token calls neither) that passed authentication counts against its app's budget: at
//! most [`Budget::requests`] (1500) accepted in any sliding window of [`Budget::window`]
//! (30 s). Over it: 429 `TooManyRequests` "Too many requests" with
//! `Retry-After` = the whole seconds until the oldest counted request leaves the window
//! (at least 1); the refused request is neither applied nor counted
//! ([`SimStats::refused_budget`] counts them per app).
//!
//! **Permissions** ([`AppRegistration::permissions`], default Presence.ReadWrite.All and
//! User.Read.All): writes need Presence.ReadWrite.All, presence reads Presence.Read.All or
//! Presence.ReadWrite.All, users calls User.Read.All; else 403 `Forbidden`
//! "Insufficient privileges to complete the operation.".
//!
//! Checks run in this order: faults (`fail_next`, `fail_for`), authentication,
//! `throttle_for`, the budget, permissions, the user, the body.
//!
//! ## What it simplifies
//!
//! - One tenant, app-only (client-credentials) access: no delegated tokens, `/me` is a
//!   400, no certificates or federated credentials, no consent flow. Tokens are opaque
//!   strings, not JWTs; nothing checks their audience or roles but the simulator itself.
//! - The aggregation precedence and its tie-break are the simulator's choice; Teams' own
//!   rules (and its treatment of the client's activity) are not published in full.
//! - A status message's `expiryDateTime` is stored and echoed, not honoured; HTML status
//!   messages are refused. Out-of-office, calendar and call states do not exist.
//! - Only the Graph error codes above; messages of some refusals (session mismatch,
//!   unsupported pair) are the simulator's own wording. Users are never listed, and
//!   `$select` and other query options are ignored.
//! - Throttling is one sliding window per app; Graph's other limits (per tenant, per
//!   user, per resource unit) are not simulated.
//!
//! ## The fault menu
//!
//! | fault | effect |
//! |---|---|
//! | [`revoke_tokens()`](GraphWorld::revoke_tokens) | every token issued so far gets 401 from now on; new tokens work |
//! | [`set_client_secret(id, secret)`](GraphWorld::set_client_secret) | the token endpoint answers 401 `invalid_client` to the old secret |
//! | [`set_permissions(id, perms)`](GraphWorld::set_permissions) | the app's permissions change at once |
//! | [`fail_next(n, status, retry_after)`](GraphWorld::fail_next) | the next n Graph calls get `status` (503: `ServiceUnavailable`) |
//! | [`fail_for(duration, status)`](GraphWorld::fail_for) | every Graph call gets `status` for a while |
//! | [`throttle_for(duration, retry_after)`](GraphWorld::throttle_for) | 429 to every call of every app for a while |
//! | [`GraphSimServer::set_latency`] | every answer held back (server layer) |
//! | [`GraphSimServer::stall`] | requests read but not answered until released (server layer) |
//! | [`clear_faults()`](GraphWorld::clear_faults) | all of them off |
//!
//! Secrets and tokens never appear in logs, events or `Debug` output (client ids do).
//!
//! ## Example: the core in memory
//!
//! ```
//! use std::time::{Duration, Instant};
//! use presence_graph_sim::{Availability, GraphWorld, HttpRequest, SimConfig};
//!
//! let t0 = Instant::now();
//! let mut world = GraphWorld::new(SimConfig::default().with_generated_users(2), t0)?;
//!
//! // A token for the default app.
//! let token = world.handle(
//!     &HttpRequest::post("/contoso.onmicrosoft.com/oauth2/v2.0/token").with_form(&[
//!         ("grant_type", "client_credentials"),
//!         ("client_id", SimConfig::DEFAULT_CLIENT_ID),
//!         ("client_secret", SimConfig::DEFAULT_CLIENT_SECRET),
//!         ("scope", "https://graph.microsoft.com/.default"),
//!     ]),
//!     t0,
//! );
//! assert_eq!(token.status, 200);
//! let token = token.json()["access_token"].as_str().unwrap_or_default().to_owned();
//!
//! // setPresence: Busy/InACall for an hour.
//! let id = world.user_id("agent1@contoso.com").unwrap_or_default().to_owned();
//! let set = world.handle(
//!     &HttpRequest::post(format!("/v1.0/users/{id}/presence/setPresence"))
//!         .with_bearer(&token)
//!         .with_json(&serde_json::json!({
//!             "sessionId": SimConfig::DEFAULT_CLIENT_ID,
//!             "availability": "Busy",
//!             "activity": "InACall",
//!             "expirationDuration": "PT1H",
//!         })),
//!     t0,
//! );
//! assert_eq!(set.status, 200);
//!
//! // What Teams shows: now, and once the session has expired.
//! let shown = world.shows("agent1@contoso.com", t0).expect("a user");
//! assert_eq!((shown.availability, shown.activity.as_str()), (Availability::Busy, "InACall"));
//! let later = world.shows(&id, t0 + Duration::from_secs(3600)).expect("a user");
//! assert_eq!(later.availability, Availability::Offline);
//! assert!(later.sequence_number > shown.sequence_number);
//! # Ok::<(), presence_graph_sim::GraphSimError>(())
//! ```
//!
//! The [`server`] module shows the same over a socket, and `examples/quickstart.rs`
//! runs it.
#![deny(missing_docs)]
// Without the `server` feature the documentation still names the server layer.
#![cfg_attr(not(feature = "server"), allow(rustdoc::broken_intra_doc_links))]

mod config;
mod error;
mod event;
mod http;
mod model;
mod rng;
#[cfg(feature = "server")]
pub mod server;
mod time;
mod world;

pub use config::{AppRegistration, Budget, SimConfig, SimUser};
pub use error::GraphSimError;
pub use event::{RequestKind, SessionView, Shown, SimEvent, SimStats, WriteKind, WriteRecord};
pub use http::{HttpRequest, HttpResponse};
pub use model::{Availability, PREFERRED_PAIRS, Permission, SESSION_PAIRS};
pub use time::parse_iso8601_duration;
pub use world::{GraphWorld, TEAMS_CLIENT};

#[cfg(feature = "server")]
pub use server::{Fault, GraphSimServer, ServerConfig, TlsListener};
