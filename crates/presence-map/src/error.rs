//! The one error type of this crate, and the warning type.

use std::fmt;

use presence_model::ModelError;
use thiserror::Error;

use crate::{Location, NAMESPACE};

/// Why a map was refused. Every variant says where ([`Location`], or the byte size for
/// [`MapError::TooLarge`]), what was found (the offending token) and what would be valid.
///
/// Errors from the lower layers are kept as [`std::error::Error::source`]: the
/// [`quick_xml::Error`] of a well-formedness problem, the [`ModelError`] of a value that
/// `presence-model` refused, the [`std::str::Utf8Error`] of a non-UTF-8 file.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum MapError {
    /// The input is larger than [`crate::ParseOptions::max_size`]; checked before parsing.
    #[error(
        "the file is {size} bytes, more than the limit of {limit} bytes: an agent-presence map is a few kilobytes; raise the limit only for a reason"
    )]
    TooLarge {
        /// The size of the input, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },

    /// The input is empty or only whitespace.
    #[error(
        "{location}: the file is empty; expected an <agentStates> root element in namespace `{NAMESPACE}`"
    )]
    Empty {
        /// Where the content was expected (line 1, column 1).
        location: Location,
    },

    /// The input is not UTF-8.
    #[error(
        "{location}: the file is not UTF-8: byte 0x{byte:02X} does not start or continue a UTF-8 character here; save the map as UTF-8"
    )]
    NotUtf8 {
        /// Where the first bad byte is.
        location: Location,
        /// The first bad byte.
        byte: u8,
        /// The decoder's error.
        #[source]
        source: std::str::Utf8Error,
    },

    /// A character that XML 1.0 does not allow (a control character other than tab, line
    /// feed and carriage return, or U+FFFE / U+FFFF), written as is or as a character
    /// reference.
    #[error(
        "{location}: character U+{code:04X} is not allowed in XML 1.0: only tab, line feed, carriage return and printable characters may appear"
    )]
    ForbiddenCharacter {
        /// Where the character is.
        location: Location,
        /// Its code point.
        code: u32,
    },

    /// The XML declaration names an encoding other than UTF-8.
    #[error(
        "{location}: the XML declaration says encoding `{declared}`: the map must be UTF-8 (`encoding=\"UTF-8\"` or no encoding)"
    )]
    UnsupportedEncoding {
        /// Where the declaration is.
        location: Location,
        /// The declared encoding.
        declared: String,
    },

    /// An XML declaration that is not the very first thing in the file.
    #[error(
        "{location}: the XML declaration `{found}` must be the very first thing in the file, before any whitespace, comment or element"
    )]
    MisplacedDeclaration {
        /// Where the declaration is.
        location: Location,
        /// The start of the declaration.
        found: String,
    },

    /// A document type declaration: refused, so that the map cannot declare entities
    /// (no entity expansion, no external entities, no "billion laughs").
    #[error(
        "{location}: DOCTYPE is not allowed: the map may not declare entities (found `<!DOCTYPE {found}`)"
    )]
    Doctype {
        /// Where the declaration starts.
        location: Location,
        /// The start of its content.
        found: String,
    },

    /// An entity reference other than the five predefined ones.
    #[error(
        "{location}: entity `&{name};` is not defined: only &lt; &gt; &amp; &apos; &quot; and character references such as &#233; are allowed"
    )]
    UndefinedEntity {
        /// Where the reference starts.
        location: Location,
        /// The entity's name.
        name: String,
    },

    /// A character reference that is malformed or names a character XML does not allow.
    #[error(
        "{location}: character reference `&{reference};` is not valid: expected `&#NNN;` (decimal) or `&#xHHH;` (hexadecimal) naming a character allowed in XML 1.0"
    )]
    InvalidCharacterReference {
        /// Where the reference starts.
        location: Location,
        /// The reference between `&` and `;`.
        reference: String,
        /// The XML reader's error, when it refused the number.
        #[source]
        source: Option<quick_xml::Error>,
    },

    /// The input is not well-formed XML (a tag or attribute is malformed, an end tag does
    /// not match, an `&` is not closed, nesting is too deep, ...). The message repeats the
    /// XML reader's description, which is also the [`std::error::Error::source`].
    #[error("{location}: the XML is not well-formed near `{near}`: {source}")]
    Xml {
        /// Where the problem was found.
        location: Location,
        /// The text at that place (at most a few characters, escaped).
        near: String,
        /// The XML reader's error.
        #[source]
        source: quick_xml::Error,
    },

    /// An element or attribute name uses a namespace prefix that is not declared.
    #[error(
        "{location}: namespace prefix `{prefix}` of `{name}` is not declared: add `xmlns:{prefix}=\"...\"` or remove the prefix"
    )]
    UndeclaredPrefix {
        /// Where the name is.
        location: Location,
        /// The prefix.
        prefix: String,
        /// The whole name.
        name: String,
    },

    /// The root element is not `agentStates` in [`NAMESPACE`].
    #[error(
        "{location}: the root element is `<{found}>` {}: expected `<agentStates>` in namespace `{NAMESPACE}`",
        describe_namespace(.namespace.as_deref())
    )]
    WrongRoot {
        /// Where the root element starts.
        location: Location,
        /// Its name as written (with any prefix).
        found: String,
        /// Its namespace URI, `None` if it has none.
        namespace: Option<String>,
    },

    /// There is no root element at all (only whitespace, comments or declarations).
    #[error(
        "{location}: the file has no root element: expected `<agentStates xmlns=\"{NAMESPACE}\">`"
    )]
    MissingRoot {
        /// The end of the file.
        location: Location,
    },

    /// A second element after the root element.
    #[error(
        "{location}: a second root element `<{found}>` after `</agentStates>`: a map has exactly one root element"
    )]
    SecondRoot {
        /// Where the element starts.
        location: Location,
        /// Its name as written.
        found: String,
    },

    /// Text, CDATA or an end tag before or after the root element.
    #[error(
        "{location}: `{found}` outside the root element: only whitespace, comments and processing instructions may surround `<agentStates>`"
    )]
    ContentOutsideRoot {
        /// Where the content starts.
        location: Location,
        /// The start of the content.
        found: String,
    },

    /// The file ends inside an element.
    #[error(
        "{location}: the file ends inside `<{open}>` (opened at {opened_at}): expected `</{open}>`; the file may be truncated"
    )]
    Truncated {
        /// The end of the file.
        location: Location,
        /// The innermost open element, as written.
        open: String,
        /// Where that element starts.
        opened_at: Location,
    },

    /// A required attribute is missing.
    #[error(
        "{location}: `<{element}>`{} has no `{attribute}` attribute: it is required",
        describe_state(.state.as_deref())
    )]
    MissingAttribute {
        /// Where the element starts.
        location: Location,
        /// The element (`agentState` or `activity`).
        element: &'static str,
        /// The missing attribute (`ID`, `availability` or `LCID`).
        attribute: &'static str,
        /// The state the element belongs to, when known.
        state: Option<String>,
    },

    /// An `ID` that is not a valid aggregated state ID.
    #[error(
        "{location}: state ID `{value}` is not valid: expected a non-empty name of at most 255 bytes without spaces, control characters, `,`, `=` or `:`"
    )]
    InvalidStateId {
        /// Where the attribute is.
        location: Location,
        /// The attribute's value (its first 40 characters at most).
        value: String,
        /// Why `presence-model` refused it.
        #[source]
        source: ModelError,
    },

    /// The same `ID` on two states.
    #[error(
        "{location}: state ID `{id}` is defined twice (first at {first}): each ID may appear once"
    )]
    DuplicateStateId {
        /// Where the second state starts.
        location: Location,
        /// The repeated ID.
        id: String,
        /// Where the first state with that ID starts.
        first: Location,
    },

    /// An `availability` that is not an integer `0..=18000`.
    #[error(
        "{location}: availability `{value}` of state `{state}` is not valid: expected an integer 0..=18000"
    )]
    InvalidAvailability {
        /// Where the attribute is.
        location: Location,
        /// The state's ID.
        state: String,
        /// The attribute's value (its first 40 characters at most).
        value: String,
        /// Why `presence-model` refused it.
        #[source]
        source: ModelError,
    },

    /// An `LCID` that is not a decimal number.
    #[error(
        "{location}: LCID `{value}` in state `{state}` is not valid: expected a decimal Microsoft locale ID such as 1033 (en-US) or 3082 (es-ES)"
    )]
    InvalidLcid {
        /// Where the attribute is.
        location: Location,
        /// The state's ID.
        state: String,
        /// The attribute's value (its first 40 characters at most).
        value: String,
        /// Why `presence-model` refused it.
        #[source]
        source: ModelError,
    },

    /// The same `LCID` twice in one state.
    #[error(
        "{location}: LCID {lcid} is given twice in state `{state}` (first at {first}): each locale may have one text per state"
    )]
    DuplicateLcid {
        /// Where the second activity starts.
        location: Location,
        /// The state's ID.
        state: String,
        /// The repeated LCID.
        lcid: u32,
        /// Where the first activity with that LCID starts.
        first: Location,
    },

    /// More activities in one state than [`crate::MAX_ACTIVITIES_PER_STATE`].
    #[error(
        "{location}: state `{state}` has more than {limit} activities: a state has at most one text per locale"
    )]
    TooManyActivities {
        /// Where the first activity over the limit starts.
        location: Location,
        /// The state's ID.
        state: String,
        /// The limit.
        limit: usize,
    },

    /// `presence-model` refused a state's activity texts for a reason not checked above.
    #[error("{location}: the activity texts of state `{state}` are not valid")]
    InvalidActivities {
        /// Where the state starts.
        location: Location,
        /// The state's ID.
        state: String,
        /// Why `presence-model` refused them.
        #[source]
        source: ModelError,
    },

    /// An activity text given to [`crate::AgentPresenceMap::from_entries`] contains a
    /// character that XML 1.0 cannot carry, so the map could not be written.
    #[error(
        "{location}: the text for LCID {lcid} in state `{state}` contains U+{code:04X}, which XML 1.0 cannot carry: remove it"
    )]
    UnwritableText {
        /// The entry's location.
        location: Location,
        /// The state's ID.
        state: String,
        /// The text's LCID.
        lcid: u32,
        /// The character's code point.
        code: u32,
    },
}

impl MapError {
    /// Where the problem is; `None` for [`MapError::TooLarge`], which is about the whole
    /// input.
    pub fn location(&self) -> Option<Location> {
        use MapError::*;
        match self {
            TooLarge { .. } => None,
            Empty { location }
            | NotUtf8 { location, .. }
            | ForbiddenCharacter { location, .. }
            | UnsupportedEncoding { location, .. }
            | MisplacedDeclaration { location, .. }
            | Doctype { location, .. }
            | UndefinedEntity { location, .. }
            | InvalidCharacterReference { location, .. }
            | Xml { location, .. }
            | UndeclaredPrefix { location, .. }
            | WrongRoot { location, .. }
            | MissingRoot { location }
            | SecondRoot { location, .. }
            | ContentOutsideRoot { location, .. }
            | Truncated { location, .. }
            | MissingAttribute { location, .. }
            | InvalidStateId { location, .. }
            | DuplicateStateId { location, .. }
            | InvalidAvailability { location, .. }
            | InvalidLcid { location, .. }
            | DuplicateLcid { location, .. }
            | TooManyActivities { location, .. }
            | InvalidActivities { location, .. }
            | UnwritableText { location, .. } => Some(*location),
        }
    }
}

fn describe_namespace(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("in namespace `{ns}`"),
        None => "in no namespace".to_owned(),
    }
}

fn describe_state(state: Option<&str>) -> String {
    match state {
        Some(id) => format!(" in state `{id}`"),
        None => String::new(),
    }
}

/// Something in the map that was ignored: an unknown element (with its content), an
/// unknown attribute, or text outside `<activity>`. Warnings never stop a map from loading.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MapWarning {
    /// Where the ignored thing starts.
    pub location: Location,
    /// What was ignored and why.
    pub message: String,
}

impl fmt::Display for MapWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}
