//! # presence-mspres
//!
//! Reads and writes the Microsoft [MS-PRES] XML bodies that a Skype for Business trusted
//! application exchanges with a Front End pool, **in both directions**: the bridge's SfB
//! endpoint writes publish and subscribe bodies and reads notifications and faults; the SfB
//! simulator reads publish and subscribe bodies and writes notifications and faults. Pure:
//! it takes bytes and returns values (no I/O, no clock), and each body has a parser and a
//! writer whose output reads back to an equal value.
//!
//! | module | `Content-Type` | type | what the bridge does with it |
//! |---|---|---|---|
//! | [`publish`] | `application/msrtc-category-publish+xml` | [`Publish`] | body of the `SERVICE` request that publishes an agent's `state` (a `userState` with availability and per-locale activity texts) to containers 2 and 3, or removes it |
//! | [`fault`] | `application/msrtc-fault+xml` | [`Fault`] | body of a `409 Conflict` answer to a publication: `Client.BadCall.WrongDelta` names the publication (`index`) and the server's `curVersion` to publish again with |
//! | [`batch_subscribe`] | `application/msrtc-adrl-categorylist+xml` | [`BatchSubscribe`] | body of the batched `SUBSCRIBE` that watches the `state` category of many users at once (pull mode) |
//! | [`categories`] | `application/msrtc-event-categories+xml` | [`Categories`] | body of a `NOTIFY`/`BENOTIFY` with one user's categories; the bridge reads the `aggregateState` availability ([`Categories::availability`]) |
//! | [`rlmi`] | `application/rlmi+xml` | [`Rlmi`] | root part of a batched notification: which users it covers and which subscriptions were terminated (subscribe again) |
//! | [`multipart`] | `multipart/related` | [`Multipart`], [`ContentType`] | framing of a batched notification: an RLMI part and one categories part per user |
//! | [`notification`] | any of the last three | [`Notification`] | [`parse_notification`] reads whatever a `NOTIFY`/`BENOTIFY` carries |
//!
//! ```
//! use presence_mspres::{parse_notification, Fault, Publish, StateBody, STATIC_STATE_INSTANCE};
//!
//! // Publish: the agent is in a call (7001, Busy) with texts in two languages, to
//! // containers 2 and 3 at the versions last seen for each.
//! let state = StateBody::user_state(7001)
//!     .with_custom(1033, "Working with customer, do not disturb")
//!     .with_custom(3082, "Trabajar con los clientes, no molestar");
//! let mut publish = Publish::state_in_containers(
//!     "sip:agent1@contoso.com", STATIC_STATE_INSTANCE, &state, &[(2, 0), (3, 0)]);
//! let body = publish.to_xml();
//! assert_eq!(Publish::parse(body.as_bytes())?, publish); // what the simulator reads
//!
//! // The pool answers 409 with a version conflict on the second publication.
//! let fault = Fault::parse(br#"<Fault><Faultcode>Client.BadCall.WrongDelta</Faultcode>
//!     <details><operation index="2" version="0" curVersion="4"/></details></Fault>"#)?;
//! assert!(fault.is_wrong_delta());
//! for op in &fault.operations {
//!     let index = usize::try_from(op.index)
//!         .ok()
//!         .and_then(|i| i.checked_sub(1))
//!         .expect("`index` counts publications from 1");
//!     publish.publications[index].version = op.cur_version.unwrap_or_default();
//! }
//! assert_eq!(publish.publications[1].version, 4);
//!
//! // A notification about a watched agent.
//! let notification = parse_notification(
//!     "application/msrtc-event-categories+xml",
//!     br#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:agent2@contoso.com">
//!       <category name="state" instance="0" publishTime="2012-07-12T13:58:54.237">
//!         <s:state xmlns:s="http://schemas.microsoft.com/2006/09/sip/state"
//!                  xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:type="s:aggregateState">
//!           <s:availability>6500</s:availability>
//!         </s:state>
//!       </category>
//!     </categories>"#,
//! )?;
//! assert_eq!(notification.categories[0].availability(), Some(6500));
//! # Ok::<(), presence_mspres::MsPresError>(())
//! ```
//!
//! ## Rules every parser follows
//!
//! - **Namespaces, not prefixes.** XML is read with `quick-xml`'s `NsReader`; elements and
//!   attributes are matched by namespace URI and local name ([`ns`] lists the URIs), so
//!   `<publish xmlns="...">` and `<p:publish xmlns:p="...">` read the same. `xsi:type` is
//!   found by the XML Schema instance namespace and its value is resolved as a QName (see
//!   [`StateBody`]). The fault body is the exception: its elements are matched by local
//!   name in any namespace (see [`Fault`]).
//! - **Tolerant of additions.** Unknown elements (with their content) and unknown
//!   attributes are ignored anywhere, so newer servers' extra data does not break reading.
//!   Known attributes are validated (numbers are decimal and fit their type, booleans are
//!   `true`/`false`/`1`/`0`, enumerations are one of their values) and an element that may
//!   appear once must not appear twice.
//! - **Plain XML only.** The body must be UTF-8 (a byte-order mark is skipped; a declared
//!   encoding other than UTF-8 is refused) and contain only characters XML 1.0 allows
//!   (also through character references); a `<!DOCTYPE>` is refused, so no entity other
//!   than the five predefined ones and character references exists; text outside the root
//!   element, a second root element and a misplaced XML declaration are errors.
//! - **Limits.** Every body is at most [`Limits::max_body_bytes`] (1 MiB by default),
//!   elements nest at most [`Limits::max_depth`] deep and number at most
//!   [`Limits::max_elements`]; a multipart body has at most [`Limits::max_parts`] parts.
//! - **Never panics; errors say where and what.** Every [`MsPresError`] of a parser names
//!   the place (a [`Location`]: byte offset, line and column; a byte offset in a
//!   `Content-Type` value; a multipart part index) and the offending token, and most say
//!   what would be valid. Errors of `quick-xml` and of UTF-8 decoding are kept as
//!   `source()`.
//!
//! ## Rules every writer follows
//!
//! Output is UTF-8 without an XML declaration or insignificant white space, with the
//! namespaces declared as the skeletons of the protocol show (default namespaces, `xsi`
//! prefix). Texts and attribute values are escaped (`&`, `<`, `>`, and in attributes `"`,
//! `'`, tab, line feed and carriage return as references; a carriage return in text as
//! `&#13;`), so any string reads back unchanged, except characters that XML 1.0 forbids
//! (most C0 controls, U+FFFE, U+FFFF), which are written as U+FFFD ([`xml_safe`] gives the
//! string as it reads back).
//!
//! [MS-PRES]: https://learn.microsoft.com/en-us/openspecs/office_protocols/ms-pres/
#![deny(missing_docs)]

mod error;
mod state;
mod xml;

pub mod batch_subscribe;
pub mod categories;
pub mod fault;
pub mod fuzzing;
pub mod multipart;
pub mod notification;
pub mod publish;
pub mod rlmi;

pub use batch_subscribe::{BatchSubscribe, SubscribeAction, SubscribeAction as Action};
pub use categories::{Categories, Category};
pub use error::{Location, MsPresError};
pub use fault::{Fault, FaultOperation};
pub use multipart::{ContentType, Multipart, Part, related_content_type, validate_boundary};
pub use notification::{Notification, parse_notification, parse_notification_with};
pub use publish::{
    DEFAULT_STATE_CONTAINERS, ExpireType, Publication, Publish, STATIC_STATE_INSTANCE,
    TIME_BOUND_STATE_INSTANCE,
};
pub use rlmi::{Rlmi, RlmiInstance, RlmiResource};
pub use state::StateBody;
pub use xml::xml_safe;

/// The namespace URIs of the bodies.
pub mod ns {
    /// `publish` and `publications` / `publication` of a category publication.
    pub const RICH_PRESENCE: &str = "http://schemas.microsoft.com/2006/09/sip/rich-presence";
    /// `state` and its children (`availability`, `activity`, `custom`).
    pub const STATE: &str = "http://schemas.microsoft.com/2006/09/sip/state";
    /// XML Schema instance (`xsi:type`).
    pub const XSI: &str = crate::xml::XSI;
    /// `batchSub`, `action`, `adhocList`, `resource` of a batch subscription.
    pub const BATCH_SUBSCRIBE: &str = "http://schemas.microsoft.com/2006/01/sip/batch-subscribe";
    /// `categoryList` and `category` of a batch subscription.
    pub const CATEGORY_LIST: &str = "http://schemas.microsoft.com/2006/09/sip/categorylist";
    /// `categories` and `category` of a notification.
    pub const CATEGORIES: &str = "http://schemas.microsoft.com/2006/09/sip/categories";
    /// `list`, `resource`, `instance` of RLMI (RFC 4662).
    pub const RLMI: &str = "urn:ietf:params:xml:ns:rlmi";
}

/// The media types (`Content-Type` values) of the bodies.
pub mod content_type {
    /// A category publication ([`crate::Publish`]).
    pub const PUBLISH: &str = "application/msrtc-category-publish+xml";
    /// A fault ([`crate::Fault`]).
    pub const FAULT: &str = "application/msrtc-fault+xml";
    /// A batch subscription ([`crate::BatchSubscribe`]).
    pub const BATCH_SUBSCRIBE: &str = "application/msrtc-adrl-categorylist+xml";
    /// One user's categories in a notification ([`crate::Categories`]).
    pub const CATEGORIES: &str = "application/msrtc-event-categories+xml";
    /// Resource-list meta-information ([`crate::Rlmi`]).
    pub const RLMI: &str = "application/rlmi+xml";
    /// A batched notification ([`crate::Multipart`]).
    pub const MULTIPART_RELATED: &str = "multipart/related";
}

/// The largest body the parsers read by default: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Hard limits on what the parsers read. [`Limits::DEFAULT`] suits every real body (they
/// are a few kilobytes; a batch of a hundred users is some tens).
///
/// ```
/// use presence_mspres::{Limits, MsPresError, Publish};
/// let tight = Limits { max_body_bytes: 16, ..Limits::DEFAULT };
/// let err = Publish::parse_with(&[b' '; 17], &tight).unwrap_err();
/// assert!(matches!(err, MsPresError::TooLarge { size: 17, limit: 16, .. }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The largest body, in bytes (for a multipart body: the whole body).
    pub max_body_bytes: usize,
    /// How deep elements may nest.
    pub max_depth: usize,
    /// How many elements a body may have.
    pub max_elements: usize,
    /// How many parts a `multipart/related` body may have.
    pub max_parts: usize,
}

impl Limits {
    /// 1 MiB bodies, 32 levels of elements, 65 536 elements, 1 024 parts.
    pub const DEFAULT: Limits = Limits {
        max_body_bytes: MAX_BODY_BYTES,
        max_depth: 32,
        max_elements: 65_536,
        max_parts: 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
