//! # presence-map
//!
//! Reads, validates and writes the Genesys *agent-presence map*: the XML file that gives
//! each aggregated state ID (`INCALL`) the Skype for Business availability number and the
//! per-locale activity texts that push mode publishes. Pure: it takes bytes and
//! returns values; it opens no file and reads no clock.
//!
//! ```
//! use presence_map::AgentPresenceMap;
//! use presence_model::Lcid;
//!
//! let xml = r#"<?xml version="1.0"?>
//! <agentStates xmlns="http://schemas.genesys.com/09/2014/mslyncserver/agentStates">
//!   <agentState ID="INCALL" availability="7001">
//!     <activity LCID="1033"> Working with customer, do not disturb </activity>
//!     <activity LCID="3082">Trabajar con los clientes, no molestar</activity>
//!   </agentState>
//!   <agentState ID="OOS" availability="18000"/>
//! </agentStates>"#;
//! let parsed = AgentPresenceMap::parse(xml.as_bytes())?;
//! assert!(parsed.warnings.is_empty());
//! let incall = parsed.map.get("INCALL").expect("INCALL is in the map");
//! assert_eq!(incall.presence.availability.get(), 7001);
//! assert_eq!(
//!     incall.presence.activities.get(Lcid::EN_US).map(|t| t.as_str()),
//!     Some("Working with customer, do not disturb"),
//! );
//! assert_eq!(incall.location.to_string(), "line 3, column 3");
//! assert!(parsed.map.get("OOS").expect("OOS").presence.activities.is_empty());
//!
//! // What is written reads back to an equal map.
//! let again = AgentPresenceMap::parse(parsed.map.to_xml().as_bytes())?;
//! assert_eq!(again.map, parsed.map);
//!
//! // Errors say where, what was found, and what would be valid.
//! let err = AgentPresenceMap::parse(br#"<agentStates xmlns="urn:other"/>"#).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "line 1, column 1: the root element is `<agentStates>` in namespace `urn:other`: \
//!      expected `<agentStates>` in namespace \
//!      `http://schemas.genesys.com/09/2014/mslyncserver/agentStates`",
//! );
//! # Ok::<(), presence_map::MapError>(())
//! ```
//!
//! ## The format and its rules
//!
//! - **Root.** Exactly one root element, `agentStates` in [`NAMESPACE`]. Namespaces are
//!   matched by URI and local name, never by prefix: `<agentStates xmlns="…">` and
//!   `<g:agentStates xmlns:g="…">` with `g:agentState`/`g:activity` children read the same.
//!   The URI is compared literally (no normalization). Another root name, another
//!   namespace or no namespace is a [`MapError::WrongRoot`] that names what was found and
//!   what was expected. A second root element, or text before or after the root, is an
//!   error ([`MapError::SecondRoot`], [`MapError::ContentOutsideRoot`]); a file that is
//!   empty or only whitespace is [`MapError::Empty`]; one with no element is
//!   [`MapError::MissingRoot`]. An empty root (`<agentStates …/>`) is a valid, empty map.
//! - **`agentState`**, directly inside the root: `ID` is required and must be a valid
//!   [`AggregatedStateId`](presence_model::AggregatedStateId) (case-sensitive, unique in the
//!   file: a repeat names the ID and the location of the first one). `availability` is
//!   required, a decimal integer `0..=18000` (`-1`, `18001`, `x` and the empty string are
//!   errors that name the value and `0..=18000`; surrounding spaces are accepted, as
//!   `presence-model` parses them). A state may have no activity.
//! - **`activity`**, directly inside a state: `LCID` is required, a decimal Microsoft
//!   locale ID (non-numeric values are errors naming the value), unique within its state
//!   (a repeat names the LCID, the state ID and the first one's location). The text is the
//!   concatenation of all the text, entity/character references and CDATA sections inside
//!   the element, with line ends normalized (`\r\n` → `\n`), then trimmed at both ends
//!   (Unicode whitespace, as [`ActivityText`](presence_model::ActivityText) trims). An empty
//!   text (`<activity LCID="1033"/>` or only spaces) is **allowed** and gives an empty
//!   [`ActivityText`](presence_model::ActivityText) (decision: the seed does not forbid it,
//!   and an empty text is a valid SfB publication). At most [`MAX_ACTIVITIES_PER_STATE`]
//!   activities per state (decision: more locales than exist is a broken file, and the
//!   bound keeps the per-state uniqueness checks cheap).
//! - **Forward compatibility.** Unknown elements anywhere (another name, another
//!   namespace, or a known name in the wrong place) and unknown attributes (including
//!   prefixed ones such as `g:ID`: the map's attributes are unprefixed) are **warnings**
//!   ([`MapWarning`], with a location; at most [`MAX_WARNINGS`], then one that counts the
//!   rest), never errors; an unknown element is skipped with its whole subtree (which is
//!   still checked for well-formedness). Namespace declarations (`xmlns`, `xmlns:*`) are
//!   not attributes and give no warning. Text other than whitespace outside `<activity>`
//!   but inside the root is a warning. Comments and processing instructions are ignored.
//! - **Safety.** A `<!DOCTYPE …>` anywhere is refused ([`MapError::Doctype`]: "DOCTYPE is
//!   not allowed: the map may not declare entities"), so there is no entity expansion, no
//!   external entity and no "billion laughs". Only the five predefined entities (`&lt;`
//!   `&gt;` `&amp;` `&apos;` `&quot;`) and character references are accepted; any other
//!   reference is [`MapError::UndefinedEntity`]. Errors and warnings quote at most 40
//!   characters of any name or value they found, so a 10 MB attribute makes a short
//!   message. Input larger than [`ParseOptions::max_size`] (default [`DEFAULT_MAX_SIZE`],
//!   4 MiB: a real map is a few kilobytes, 4 MiB is about 10,000 states with 4 texts each)
//!   is refused before parsing with its size and the limit. Namespace-prefix declarations in scope are limited by
//!   `quick-xml` (128) and so is nesting depth (65,535); an undeclared prefix is an error.
//! - **Encoding.** The input must be UTF-8 (a UTF-8 byte-order mark is accepted and
//!   skipped); the first invalid byte is reported with its location. An XML declaration,
//!   if present, must be the very first thing in the file and may only declare UTF-8 (or
//!   US-ASCII). Characters XML 1.0 forbids (C0 controls other than tab, line feed and
//!   carriage return; U+FFFE; U+FFFF), raw or as character references, are errors.
//! - **Well-formedness.** Malformed tags and attributes, mismatched or unmatched end tags,
//!   duplicate attributes and an unclosed `&` are [`MapError::Xml`] with the location and
//!   the text found there; a file that ends inside an element is [`MapError::Truncated`],
//!   naming the open element and where it was opened.
//!
//! ## Locations
//!
//! Every error (except [`MapError::TooLarge`], which gives sizes) and every warning carries
//! a [`Location`]: a 1-based line (lines end at `\n`) and a 1-based column counted in
//! **characters** (Unicode scalar values, so a Cyrillic letter is one column; a tab is one
//! column), not bytes. The byte offsets `quick-xml` reports are converted with a running
//! cursor that only moves forward, so locating every state costs one pass over the file in
//! total. A [`StateEntry`]'s location is the `<` of its start tag.
//!
//! ## Writing and equality
//!
//! [`AgentPresenceMap::to_xml`] writes canonical, indented UTF-8 XML with the default
//! namespace; it is deterministic and escapes `&`, `<`, `>` (and quotes, tabs and line
//! breaks in attribute values, carriage returns everywhere). For every map,
//! `parse(to_xml(map)) == map` as long as the output fits the size limit.
//! **Equality** of [`AgentPresenceMap`] (`==`) compares the entries' IDs and presences in
//! order and ignores locations; [`StateEntry`]'s own derived equality includes the
//! location.
//!
//! ## Robustness and speed
//!
//! No input makes the parser panic or loop: one forward pass of `quick-xml`'s
//! [`NsReader`](quick_xml::reader::NsReader) over the borrowed input (no per-event copy;
//! one reused buffer for activity text), an iterative skip of unknown subtrees, and no
//! work that grows faster than the input (the per-state LCID checks are bounded by
//! [`MAX_ACTIVITIES_PER_STATE`]). The `parse` benchmark reads a generated multi-megabyte
//! map; property tests and the `map_xml` fuzz target feed arbitrary bytes and mutated maps.
#![deny(missing_docs)]

mod error;
pub mod fuzzing;
mod location;
mod map;
mod parse;
mod write;

pub use error::{MapError, MapWarning};
pub use location::Location;
pub use map::{AgentPresenceMap, Parsed, StateEntry};

/// The namespace URI of every element of the map.
pub const NAMESPACE: &str = "http://schemas.genesys.com/09/2014/mslyncserver/agentStates";

/// The default size limit of a map file: 4 MiB (decision). A real map is a few kilobytes;
/// 4 MiB holds about 10,000 states with four texts each, so a bigger file is a mistake or
/// an attack, and it is refused before any parsing.
pub const DEFAULT_MAX_SIZE: usize = 4 * 1024 * 1024;

/// The most activities one state may have (decision): far more than there are locales,
/// and a bound on the per-state uniqueness checks.
pub const MAX_ACTIVITIES_PER_STATE: usize = 256;

/// The most warnings a parse lists (decision): beyond them one last warning says how many
/// more there were, so a file of a million unknown elements costs no more memory than its
/// text.
pub const MAX_WARNINGS: usize = 100;

/// How to parse a map.
///
/// ```
/// use presence_map::{AgentPresenceMap, DEFAULT_MAX_SIZE, MapError, ParseOptions};
/// assert_eq!(ParseOptions::default().max_size, DEFAULT_MAX_SIZE);
/// let tiny = ParseOptions { max_size: 10 };
/// let err = AgentPresenceMap::parse_with(b"<agentStates/>", &tiny).unwrap_err();
/// assert!(matches!(err, MapError::TooLarge { size: 14, limit: 10 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParseOptions {
    /// The largest input accepted, in bytes (the byte-order mark included).
    pub max_size: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_size: DEFAULT_MAX_SIZE,
        }
    }
}

/// Whether XML 1.0 allows `c` in a document (the `Char` production, which a Rust `char`
/// already restricts to non-surrogates).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}
