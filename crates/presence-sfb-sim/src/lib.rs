//! # presence-sfb-sim
//!
//! A Skype for Business Front End **simulator, for tests and demos — not a server**. It
//! speaks the same wire protocol as a Front End pool towards a *trusted application*
//! (SIP over TCP or mutual TLS, MS-SIP + MS-PRES), so the bridge's
//! SfB transport can be tested end to end on loopback and its demo can run with no pool at
//! all. Never expose it to a network: it trusts whatever a connection says.
//!
//! Two layers:
//!
//! - [`Simulator`] — the **sans-IO core**: no runtime, no sockets, no clock. Connections
//!   are [`open`](Simulator::open)ed, fed with [`handle_bytes`](Simulator::handle_bytes)
//!   and drained with [`poll_transmit`](Simulator::poll_transmit); time comes in as `now`
//!   arguments ([`handle_timeout`](Simulator::handle_timeout) at
//!   [`poll_timeout`](Simulator::poll_timeout)); tags, branches, boundaries and random
//!   faults come from a generator seeded by [`SimConfig::seed`], so a run is a
//!   deterministic function of its inputs. The world API
//!   ([`set_user_presence`](Simulator::set_user_presence), [`shows`](Simulator::shows),
//!   [`poll_event`](Simulator::poll_event), ...) and the fault menu are methods too.
//! - [`SimServer`] (feature `server`, on by default) — the **tokio layer**: a listener on
//!   loopback TCP or TLS (mutual TLS when a client CA is given), one task per connection,
//!   the world API and faults forwarded, plus connection-level faults. [`tls::TestPki`]
//!   makes a throw-away PKI with rcgen for tests (of this crate and others). The
//!   `presence-sfb-sim` command runs it from a shell.
//!
//! ## What it simulates
//!
//! - **Publications**: `SERVICE` with `application/msrtc-category-publish+xml`, sent to
//!   the user's own address. Each user has category instances keyed by (category,
//!   instance, container), each with a version (0 when it does not exist). A request is
//!   applied **atomically**: if any publication's `version` is not its instance's current
//!   version, the answer is `409 Conflict` with an `application/msrtc-fault+xml`
//!   `Client.BadCall.WrongDelta` fault listing every mismatched operation (`index`: the
//!   1-based position of the publication in the request, `version` sent, `curVersion`
//!   current) and an `ms-diagnostics` header, and nothing is applied. Otherwise every
//!   publication is stored (a removal — `expireType="time" expires="0"` — drops the
//!   content and keeps the instance with its version), every instance's version goes up
//!   by one and the answer is `200 OK`. A client publishes version 0 first, then the
//!   version plus one after each 200, and takes `curVersion` after a 409. Time-bounded
//!   publications (`expireType="time"` with `expires` > 0) lose their content when the
//!   time is up.
//! - **Subscriptions**: a `SUBSCRIBE` without To-tag, `Event: presence` and an
//!   `application/msrtc-adrl-categorylist+xml` batch (`action` `subscribe`) makes a
//!   dialog: `200 OK` with a To-tag and `Expires` = min(asked, [`SimConfig::max_expires`]),
//!   then the first notification with the current state of every resource that has one.
//!   Within the dialog (To-tag present): unknown dialog → `481`; `Expires: 0` → `200` and
//!   the dialog ends; otherwise a refresh → `200` with `Expires` (a body replaces the list
//!   of users, and users new to it are notified). Dialogs not refreshed in time end at
//!   [`handle_timeout`](Simulator::handle_timeout) with a final `NOTIFY`
//!   `terminated;reason=timeout`. A `481` answer to a notification ends the dialog too.
//! - **Notifications**: `NOTIFY`, or `BENOTIFY` when the `SUBSCRIBE`'s `Supported` listed
//!   `ms-benotify` and [`SimConfig::benotify`] is on (terminations always go as `NOTIFY`).
//!   Request-URI = the subscriber's Contact URI; `From` = the subscriber's `To` with the
//!   simulator's tag; `To` = the subscriber's `From` with its tag; the same Call-ID; the
//!   simulator's own CSeq per dialog; `Event: presence`; `Subscription-State:
//!   active;expires=N` (the seconds left). One user → `application/msrtc-event-categories+xml`
//!   with a `state` category holding an `aggregateState` (availability, activity token,
//!   custom texts); several users at once (the first notification of a batch, or several
//!   changes made by one input) → `multipart/related;type="application/rlmi+xml"` with an
//!   RLMI part and one categories part per user. Changes are gathered during each input
//!   call and sent at its end, one notification per dialog. Answers to `NOTIFY` are read
//!   and ignored (except `481`); `BENOTIFY` gets none. With
//!   [`SimConfig::piggyback_first_notify`] and `ms-piggyback-first-notify` in `Supported`,
//!   the first notification rides in the `200 OK` of the `SUBSCRIBE` instead.
//! - **Other requests**: `OPTIONS` → `200`; a CRLF CRLF keep-alive → a CRLF pong; `ACK`
//!   and `BENOTIFY` → nothing; other methods → `501`; a request without `Call-ID`, `CSeq`,
//!   `From`, `To` or `Via` → `400`. Bytes that are not SIP make the framer fail:
//!   [`handle_bytes`](Simulator::handle_bytes) returns [`SimError::Framing`] and the
//!   caller closes the connection.
//!
//! ## What it simplifies
//!
//! - **Aggregation**: what watchers see ([`Simulator::shows`]) is the most recently
//!   written `state` instance of `xsi:type` `userState` with an availability among
//!   containers 2 and 3 — whether written by a publication or by
//!   [`set_user_presence`](Simulator::set_user_presence) — else nothing (a notification
//!   then carries an empty `state` category). A real pool runs an aggregation script over
//!   every endpoint's states, machine states, calendars and containers 100 to 400.
//! - **No authentication** other than mutual TLS in the tokio layer (which is what a
//!   trusted application gets), no authorization, no throttling, no container ACLs.
//! - **No routing**: one pool, every user local; a connection may publish for any user
//!   (the `<publications uri>` must match the Request-URI) and subscribe to anyone.
//!   Resource URIs that are not `sip:user@host` are ignored.
//! - `ms-diagnostics` codes are the simulator's own ([`diagnostics`]), not a pool's.
//! - `SERVICE` bodies other than category publications are answered `415`.
//!
//! ## The fault menu
//!
//! Runtime-settable and deterministic with the seed:
//!
//! | fault | effect |
//! |---|---|
//! | [`fail_next(method, count, status)`](Simulator::fail_next) | the next `count` requests of `method` are answered `status` (`503`/`429` with `Retry-After: 1`) |
//! | [`random_conflicts(rate)`](Simulator::random_conflicts) | a publication is answered `409` WrongDelta as if another endpoint had just published: the instances' versions go up first |
//! | [`random_errors(rate, status)`](Simulator::random_errors) | any request is answered `status` |
//! | [`delay_responses(duration)`](Simulator::delay_responses) | answers are held back and released by `handle_timeout` (order kept) |
//! | [`terminate_subscriptions()`](Simulator::terminate_subscriptions) | `NOTIFY` `terminated;reason=deactivated` to every dialog, which is forgotten |
//! | [`terminate_resource(user)`](Simulator::terminate_resource) | an RLMI part with `state="terminated"` for that user in every dialog that watches it |
//! | [`set_user_presence`](Simulator::set_user_presence) | the user picks a state in their own client: the next publication of the bridge for that user gets a `409` |
//! | [`SimServer::drop_connections`] | every socket closed now (tokio layer) |
//! | [`SimServer::stop_reading`] | sockets are not read: a stalled pool (tokio layer) |
//! | [`SimServer::send_garbage`] | bytes that are not SIP to every connection (tokio layer) |
//!
//! ## Example: the core in memory
//!
//! ```
//! use std::time::Instant;
//! use presence_model::SipUri;
//! use presence_mspres::{Fault, Publish, StateBody, STATIC_STATE_INSTANCE};
//! use presence_sfb_sim::{SimConfig, Simulator};
//! use presence_sip::{Message, Method, Request};
//!
//! let now = Instant::now();
//! let mut sim = Simulator::new(SimConfig::default());
//! let conn = sim.open(now);
//! let agent = SipUri::new("sip:agent1@contoso.com")?;
//!
//! // The bridge publishes "Busy" for the agent, to containers 2 and 3, at version 0.
//! let service = |versions: [u32; 2], availability: u32| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
//!     let state = StateBody::user_state(availability).with_custom(1033, "In a call");
//!     let body = Publish::state_in_containers(
//!         agent.as_str(), STATIC_STATE_INSTANCE, &state,
//!         &[(2, versions[0]), (3, versions[1])]).to_xml();
//!     Ok(Request::new(Method::Service, agent.as_str())?
//!         .header("Via", "SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK1")?
//!         .header("From", format!("<{agent}>;tag=a1;epid=e1"))?
//!         .header("To", format!("<{agent}>"))?
//!         .header("Call-ID", "c1")?
//!         .header("CSeq", "1 SERVICE")?
//!         .with_body("application/msrtc-category-publish+xml", body.into_bytes())?
//!         .to_bytes())
//! };
//! let status = |sim: &mut Simulator| -> Result<(u16, Vec<u8>), presence_sip::SipError> {
//!     let bytes = sim.poll_transmit(conn).expect("an answer");
//!     let Message::Response(r) = Message::parse(&bytes)? else { panic!("a response") };
//!     Ok((r.status().as_u16(), r.body().to_vec()))
//! };
//! sim.handle_bytes(conn, &service([0, 0], 6500)?, now)?;
//! assert_eq!(status(&mut sim)?.0, 200);
//! assert_eq!(sim.shows(&agent).map(|s| s.availability), Some(6500));
//!
//! // The agent picks "Available" in their own client: versions go up to 2.
//! sim.set_user_presence(&agent, 3500, Some("Free"), now);
//! assert_eq!(sim.shows(&agent).map(|s| s.availability), Some(3500));
//!
//! // The bridge's next publication still says version 1: 409 with curVersion 2.
//! sim.handle_bytes(conn, &service([1, 1], 6500)?, now)?;
//! let (code, body) = status(&mut sim)?;
//! assert_eq!(code, 409);
//! let fault = Fault::parse(&body)?;
//! assert!(fault.is_wrong_delta());
//! assert_eq!(fault.operations[0].cur_version, Some(2));
//!
//! // Publishing again with curVersion works.
//! sim.handle_bytes(conn, &service([2, 2], 6500)?, now)?;
//! assert_eq!(status(&mut sim)?.0, 200);
//! assert_eq!(sim.published_count(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The [`server`] module shows the same over a socket.
#![deny(missing_docs)]

mod error;
pub mod fuzzing;
#[cfg(feature = "server")]
pub mod server;
mod simulator;
/// TLS for the simulator and its tests: the server's rustls configuration from PEM
/// ([`tls::ServerTls`]) and a throw-away PKI made with rcgen ([`tls::TestPki`]): the
/// `presence-testpki` crate, re-exported.
#[cfg(feature = "server")]
pub use presence_testpki as tls;

pub use error::SimError;
#[cfg(feature = "server")]
pub use server::{ServerConfig, SimServer};
pub use simulator::{ChangeSource, ConnId, Shown, SimConfig, SimEvent, Simulator, diagnostics};
#[cfg(feature = "server")]
pub use tls::{ServerTls, TestPki};
