//! # presence-tlib
//!
//! The vocabulary of the bridge's contact-centre link, after Genesys T-Library: the
//! messages clients send ([`ClientMessage`]: `RegisterAddress`, `RequestAgentLogin`, the
//! call and device events they report, ...), the events the bridge sends back
//! ([`ServerEvent`]: `EventAgentLogin`, `EventDNDOn`, `EventError`, ...), their JSON codec,
//! the stable [`ErrorCode`]s, and the port between the link and the engine ([`ClientId`],
//! [`ClientSink`], [`LinkInput`]).
//!
//! ## Wire format
//!
//! One JSON object per message. The key `message` holds the T-Library name; the other keys
//! are T-Library attribute names: `referenceID`, `thisDN`, `agentID`, `workmode`, `connID`,
//! `extensions`, `errorCode`, `errorMessage`. `docs/cti-protocol.md` has an example of every
//! message.
//!
//! ```json
//! {"message":"RequestAgentNotReady","referenceID":7,"thisDN":"5001","workmode":"AfterCallWork"}
//! ```
//!
//! Decisions, where T-Library leaves a JSON encoding open:
//! - every client message carries an integer `referenceID`, echoed by its answer;
//! - attributes a message does not use are ignored (T-Library clients send `userData` and
//!   more); attribute and message names are case-sensitive, work mode names are not;
//! - `thisDN`, `agentID` and `connID` are strings; a non-negative JSON integer (`5001`) is
//!   accepted and becomes its decimal text; an optional attribute set to `null` is absent;
//! - every other type is strict, and every error names the attribute, what was found and
//!   what would be valid; the codec never panics, whatever the input.
//!
//! Invariant: no I/O, no async runtime, no clock. The link (`presence-cti`) and the engine
//! both depend on this crate; the engine depends on nothing that does I/O.
//!
//! ```
//! use presence_tlib::{ClientMessage, ClientRequest, ErrorCode, ServerEvent, ext};
//!
//! let text = r#"{"message":"RequestAgentLogin","referenceID":3,"thisDN":"5001",
//!                "agentID":"agent1","extensions":{"presence-profile":"PushProfile"}}"#;
//! let msg = ClientMessage::from_json(text)?;
//! let ClientRequest::RequestAgentLogin { this_dn, agent_id, extensions, .. } = &msg.body else {
//!     panic!("a login");
//! };
//! assert_eq!(extensions.presence_profile(), Some("PushProfile"));
//!
//! // The answer echoes the referenceID.
//! let mut answer = extensions.clone();
//! answer.insert(ext::PRESENCE_PROFILE_SOURCE, "login");
//! let event = ServerEvent::EventAgentLogin {
//!     reference_id: msg.reference_id,
//!     this_dn: this_dn.clone(),
//!     agent_id: agent_id.clone(),
//!     extensions: answer,
//! };
//! assert_eq!(
//!     event.to_json(),
//!     r#"{"message":"EventAgentLogin","referenceID":3,"thisDN":"5001","agentID":"agent1","extensions":{"presence-profile":"PushProfile","presence-profile-source":"login"}}"#
//! );
//!
//! // A bad message: the error says what is wrong and converts into the answer.
//! let err = ClientMessage::from_json(r#"{"message":"RequestAgentReady","referenceID":4,"thisDN":""}"#)
//!     .unwrap_err();
//! assert_eq!(err.code(), ErrorCode::InvalidAttribute);
//! assert_eq!(err.to_event().reference_id(), Some(4));
//! assert!(err.to_string().contains("`thisDN` is not valid"));
//! # Ok::<(), presence_tlib::MessageError>(())
//! ```
#![deny(missing_docs)]

mod client;
mod error;
pub mod fuzzing;
mod link;
mod read;
mod server;
mod types;
mod write;

#[cfg(test)]
mod tests;

pub use client::{ClientMessage, ClientRequest};
pub use error::{ErrorCode, MessageError, MessageErrorKind};
pub use link::{ClientId, ClientSink, LinkInput, MemorySink};
/// Where a DN's profile comes from: `presence-profile-source` in `EventAgentLogin`
/// (defined in `presence-model`, shared with the configuration).
pub use presence_model::ProfileSource;
pub use server::ServerEvent;
pub use types::{AgentId, ConnId, Extensions, WorkMode, ext};

/// The largest text [`ClientMessage::from_json`] and [`ServerEvent::from_json`] accept, in
/// bytes (1 MiB); longer texts get [`ErrorCode::MessageTooLarge`] without being parsed.
pub const MAX_JSON_BYTES: usize = read::MAX_JSON_BYTES;
