//! # presence-sip
//!
//! A pure, sans-I/O SIP (RFC 3261) message codec for the Skype for Business transport (a
//! trusted application over TCP/TLS) and the SfB simulator: bytes in, messages out, and back.
//! No sockets, no runtime, no clock.
//!
//! ## Model
//!
//! - [`Message`] is a [`Request`] (method, Request-URI, headers, body) or a [`Response`]
//!   (status code, reason phrase, headers, body).
//! - [`Method`] knows the RFC 3261 methods and the MS-SIP extensions `SERVICE` and
//!   `BENOTIFY`; any other RFC 3261 token is [`Method::Extension`]. Methods are
//!   case-sensitive.
//! - The Request-URI is kept as text ([`Request::uri`]) with a parsed view
//!   ([`Request::uri_ref`] → [`SipUriRef`]: scheme, user, host, port, parameters such as
//!   `;gruu;opaque=…`).
//! - [`Headers`] is an ordered multimap: order, repetition and the spelling of names are
//!   kept; lookups ignore case and map compact forms to full names.
//! - Bodies are [`bytes::Bytes`]; the framer hands them out without copying.
//! - Typed views: [`CSeq`], [`Via`], [`NameAddr`] (`From`/`To`/`Contact`: display name, URI,
//!   `tag`, `epid`), [`ContentType`], [`SubscriptionState`], [`MsDiagnostics`], reachable
//!   through helpers such as [`Headers::cseq`], [`Headers::via_branch`],
//!   [`Headers::from_tag`], [`Headers::epid`] and [`Headers::ms_diagnostics`].
//!
//! ## Compact header names
//!
//! `i` Call-ID, `m` Contact, `l` Content-Length, `c` Content-Type, `f` From, `t` To, `v` Via,
//! `k` Supported, `o` Event, `e` Content-Encoding, `s` Subject, `u` Allow-Events, and also
//! `r` Refer-To, `b` Referred-By, `x` Session-Expires, `a` Accept-Contact, `j`
//! Reject-Contact, `d` Request-Disposition. `headers.get("Call-ID")` finds an `i:` line and
//! `headers.get("i")` a `Call-ID:` line. Names are written back as they were given.
//!
//! ## Parsing rules
//!
//! - Lines end with CRLF; a bare LF or CR is an error. Folded (continuation) lines are
//!   joined with one space. Leading/trailing whitespace of values is dropped.
//! - Start lines and headers are UTF-8 without control characters other than HTAB.
//! - The version must be `SIP/2.0` (case-insensitive); status codes are `100..=699`.
//! - Several `Content-Length` fields must agree; values are plain decimal digits.
//!
//! ## Limits
//!
//! [`Limits`] bounds the header section (default 64 KiB, start line and empty line
//! included), the body (default 1 MiB) and the number of header fields (default 256).
//! Breaking a limit is an error; nothing is buffered beyond what the limits allow, and a
//! declared `Content-Length` above the body limit fails as soon as the header section is
//! parsed, before the body arrives.
//!
//! ## The framer and its poisoning
//!
//! [`Framer`] splits a TCP/TLS byte stream into [`Frame`]s: messages (delimited by
//! `Content-Length`, which is **required** on streams — a message without it is
//! [`SipError::MissingContentLength`]), RFC 5626 keep-alive pings (`\r\n\r\n`, answer with
//! [`PONG`]) and pongs (a lone `\r\n`). After any error the framer is **poisoned**: it
//! cannot find the next message boundary, so it drops its buffer and answers every later
//! call with [`SipError::Poisoned`]. Close the connection and start again with a new framer.
//!
//! ## Serializing
//!
//! [`Message::to_bytes`] / [`Message::write_to`] write the canonical wire form: CRLF line
//! ends, `Name: value` fields in order, and exactly one `Content-Length` equal to the body
//! length (at the position of the first given one, otherwise last). Builders
//! ([`Request::new`], [`Request::header`], [`Request::with_body`],
//! [`Response::for_request`]) validate what they are given, so a built message always
//! serializes to bytes that parse back to an equal message (plus `Content-Length`).
//!
//! ## Errors
//!
//! One error type, [`SipError`]: every variant says where (byte offset; a header name for
//! typed helpers) and what (the offending token) and what would be valid. No input makes
//! the parser panic.
//!
//! ## Example
//!
//! ```
//! use presence_sip::{Frame, Framer, Limits, Message, Method, Request, Response};
//!
//! // Build a category publication as an SfB trusted application would.
//! let publish = Request::new(Method::Service, "sip:agent1@contoso.com")?
//!     .header("Via", "SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK5a1")?
//!     .header("From", "<sip:agent1@contoso.com>;tag=8f1;epid=0d4e5f")?
//!     .header("To", "<sip:agent1@contoso.com>")?
//!     .header("Call-ID", "4f2a9c")?
//!     .header("CSeq", "1 SERVICE")?
//!     .with_body(
//!         "application/msrtc-category-publish+xml",
//!         &b"<publish xmlns=\"http://schemas.microsoft.com/2006/09/sip/rich-presence\"/>"[..],
//!     )?;
//! let wire = publish.to_bytes();
//!
//! // The server's side: bytes arrive in pieces, with a keep-alive ping first.
//! let mut framer = Framer::new(Limits::default());
//! framer.push(b"\r\n\r\n");
//! framer.push(&wire[..40]);
//! assert_eq!(framer.next_frame()?, Some(Frame::Ping));
//! assert_eq!(framer.next_frame()?, None);
//! framer.push(&wire[40..]);
//! let Some(Frame::Message(Message::Request(received))) = framer.next_frame()? else {
//!     panic!("expected a request");
//! };
//! assert_eq!(received.method(), &Method::Service);
//! assert_eq!(received.headers().epid()?.as_deref(), Some("0d4e5f"));
//! assert_eq!(received.headers().content_length()?, Some(received.body().len()));
//!
//! // Answer it.
//! let mut ok = Response::for_request(&received, 200, "OK")?;
//! ok.set_to_tag("srv1")?;
//! let parsed = Message::parse(&ok.to_bytes())?;
//! assert_eq!(parsed.headers().to_tag()?.as_deref(), Some("srv1"));
//! assert_eq!(parsed.headers().via_branch()?.as_deref(), Some("z9hG4bK5a1"));
//! # Ok::<(), presence_sip::SipError>(())
//! ```
#![deny(missing_docs)]

mod chars;
mod error;
mod framer;
pub mod fuzzing;
mod headers;
mod message;
mod method;
mod name_addr;
mod params;
mod parse;
mod typed;

pub use bytes;
pub use error::{MAX_TOKEN_CHARS, SipError};
pub use framer::{Frame, Framer, PING, PONG};
pub use headers::{Headers, canonical_name, compact_name};
pub use message::{Message, Request, Response, StatusCode, check_header};
pub use method::Method;
pub use name_addr::{NameAddr, SipUriRef};
pub use params::{Params, quote, unquote};
pub use parse::Limits;
pub use typed::{CSeq, ContentType, MsDiagnostics, SubState, SubscriptionState, Via};
