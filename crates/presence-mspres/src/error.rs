//! The one error type of this crate and the [`Location`] it reports.

use std::fmt;

use thiserror::Error;

/// A position in a body: the byte offset, and the 1-based line and column.
///
/// Lines are separated by `\n` (`\r\n` counts as one break). The column counts Unicode
/// characters from the start of the line, not bytes. Inside a `multipart/related` part the
/// position is relative to the start of that part's content (the error that wraps it,
/// [`MsPresError::Part`], says which part).
///
/// ```
/// use presence_mspres::Location;
/// let at = Location::of(b"<a>\n  <b x='1'/>", 6);
/// assert_eq!((at.line, at.column), (2, 3));
/// assert_eq!(at.to_string(), "line 2, column 3 (byte 6)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The byte offset from the start of the body, starting at 0.
    pub offset: usize,
    /// The line, starting at 1.
    pub line: u32,
    /// The column in characters, starting at 1.
    pub column: u32,
}

impl Location {
    /// The location of byte `offset` of `body` (clamped to the end of the body).
    pub fn of(body: &[u8], offset: usize) -> Location {
        let offset = offset.min(body.len());
        let before = body.get(..offset).unwrap_or_default();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let lines = before.iter().filter(|&&b| b == b'\n').count();
        let chars = before
            .get(line_start..)
            .unwrap_or_default()
            .iter()
            .filter(|&&b| (b & 0xC0) != 0x80)
            .count();
        Location {
            offset,
            line: u32::try_from(lines.saturating_add(1)).unwrap_or(u32::MAX),
            column: u32::try_from(chars.saturating_add(1)).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {} (byte {})",
            self.line, self.column, self.offset
        )
    }
}

/// Why a body was refused (parsers) or could not be written (the multipart writer).
///
/// Every parse error says where (a [`Location`], a byte offset in a header value, or the
/// index of a multipart part) and what was found, and most say what would be valid.
/// Errors of the lower layers are kept as [`std::error::Error::source`]: the
/// [`quick_xml::Error`] of a well-formedness problem, the [`std::str::Utf8Error`] of a
/// body that is not UTF-8, the inner [`MsPresError`] of a multipart part.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum MsPresError {
    /// The body is larger than [`crate::Limits::max_body_bytes`]; checked before parsing.
    #[error(
        "the {body} body is {size} bytes, more than the limit of {limit} bytes (Limits::max_body_bytes)"
    )]
    TooLarge {
        /// Which body (for example `msrtc-category-publish+xml`).
        body: &'static str,
        /// The size of the body, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },

    /// The body is not UTF-8.
    #[error(
        "{at}: the body is not UTF-8: byte 0x{byte:02X} does not start or continue a UTF-8 character here"
    )]
    NotUtf8 {
        /// Where the first bad byte is.
        at: Location,
        /// The first bad byte (0 if the body ends inside a character).
        byte: u8,
        /// The decoder's error.
        #[source]
        source: std::str::Utf8Error,
    },

    /// A character XML 1.0 does not allow (a control character other than tab, line feed
    /// and carriage return, or U+FFFE / U+FFFF), written as is or as a character reference.
    #[error(
        "{at}: character U+{code:04X} is not allowed in XML 1.0: only tab, line feed, carriage return and printable characters may appear"
    )]
    ForbiddenCharacter {
        /// Where the character (or the reference, or the attribute holding it) is.
        at: Location,
        /// The character's code point.
        code: u32,
    },

    /// The XML is not well-formed (as the XML reader found).
    #[error("{at}: the XML is not well-formed near `{near}`: {source}")]
    Xml {
        /// Where the reader found the problem.
        at: Location,
        /// A few characters of the body at that place.
        near: String,
        /// The XML reader's error.
        #[source]
        source: quick_xml::Error,
    },

    /// A `<!DOCTYPE>` declaration: refused in every body (no DTD, no entity expansion).
    #[error("{at}: a <!DOCTYPE> declaration is not allowed in an MS-PRES body")]
    DocType {
        /// Where the declaration starts.
        at: Location,
    },

    /// The XML declaration names an encoding other than UTF-8.
    #[error("{at}: the XML declaration names encoding `{encoding}`: only UTF-8 is accepted")]
    Encoding {
        /// Where the declaration starts.
        at: Location,
        /// The declared encoding.
        encoding: String,
    },

    /// An XML declaration (`<?xml ...?>`) somewhere other than the very start.
    #[error("{at}: an XML declaration may only appear at the very start of the body")]
    MisplacedDeclaration {
        /// Where the declaration starts.
        at: Location,
    },

    /// A reference to an entity that is not one of the five predefined ones.
    #[error(
        "{at}: entity `&{name};` is not defined: only &lt; &gt; &amp; &apos; &quot; and character references (&#...;) are"
    )]
    UndefinedEntity {
        /// Where the reference (or the attribute holding it) is.
        at: Location,
        /// The entity name.
        name: String,
    },

    /// A namespace prefix (of an element, an attribute or an `xsi:type` value) that is not
    /// declared.
    #[error(
        "{at}: namespace prefix `{prefix}` of `{name}` is not declared: add xmlns:{prefix}=\"...\" or remove the prefix"
    )]
    UndeclaredPrefix {
        /// Where the name is.
        at: Location,
        /// The prefix.
        prefix: String,
        /// The qualified name as written.
        name: String,
    },

    /// Elements nest deeper than [`crate::Limits::max_depth`].
    #[error("{at}: elements nest deeper than the limit of {limit} (Limits::max_depth)")]
    TooDeep {
        /// The element that went past the limit.
        at: Location,
        /// The limit.
        limit: usize,
    },

    /// The body has more elements than [`crate::Limits::max_elements`].
    #[error("{at}: the body has more than {limit} elements (Limits::max_elements)")]
    TooManyElements {
        /// The element that went past the limit.
        at: Location,
        /// The limit.
        limit: usize,
    },

    /// The body has no root element (it is empty or only whitespace and comments).
    #[error("{at}: the body has no root element: expected <{expected}> in namespace `{namespace}`")]
    MissingRoot {
        /// The end of the body.
        at: Location,
        /// The expected root element's local name.
        expected: &'static str,
        /// The expected root element's namespace (`*` when any namespace is accepted).
        namespace: &'static str,
    },

    /// Text or a second element before or after the root element.
    #[error(
        "{at}: `{found}` is outside the root element: only one root element, whitespace, comments and processing instructions may appear"
    )]
    ContentOutsideRoot {
        /// Where it is.
        at: Location,
        /// What was found (a few characters).
        found: String,
    },

    /// The body ends while elements are still open.
    #[error("{at}: the body ends inside <{open}> (opened at {opened_at})")]
    Truncated {
        /// The end of the body.
        at: Location,
        /// The innermost open element, as written.
        open: String,
        /// Where it was opened.
        opened_at: Location,
    },

    /// The root element is not the one this body type has.
    #[error(
        "{at}: the root element is <{found}> {}: expected <{expected}> in namespace `{namespace}`",
        describe_namespace(.found_namespace.as_deref())
    )]
    WrongRoot {
        /// Where the root element starts.
        at: Location,
        /// The root element's name, as written.
        found: String,
        /// The root element's namespace, if it has one.
        found_namespace: Option<String>,
        /// The expected local name.
        expected: &'static str,
        /// The expected namespace (`*` when any namespace is accepted).
        namespace: &'static str,
    },

    /// A required child element is missing.
    #[error("{at}: <{parent}> has no <{element}> child element, which is required")]
    MissingElement {
        /// Where the parent starts.
        at: Location,
        /// The parent's local name.
        parent: &'static str,
        /// The missing child's local name.
        element: &'static str,
    },

    /// An element that may appear only once appears again.
    #[error("{at}: a second <{element}> where only one is allowed (the first is at {first})")]
    RepeatedElement {
        /// Where the repeat starts.
        at: Location,
        /// The element's local name.
        element: &'static str,
        /// Where the first one starts.
        first: Location,
    },

    /// A required attribute is missing.
    #[error("{at}: <{element}> has no `{attribute}` attribute, which is required")]
    MissingAttribute {
        /// Where the element starts.
        at: Location,
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
    },

    /// An attribute value is not valid.
    #[error("{at}: `{attribute}=\"{value}\"` on <{element}> is not valid: expected {expected}")]
    InvalidAttribute {
        /// Where the attribute is.
        at: Location,
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
        /// The value found (after entity expansion and normalization).
        value: String,
        /// What would be valid.
        expected: &'static str,
    },

    /// The text of an element is not valid.
    #[error("{at}: the text `{value}` of <{element}> is not valid: expected {expected}")]
    InvalidText {
        /// Where the element starts.
        at: Location,
        /// The element's local name.
        element: &'static str,
        /// The text found.
        value: String,
        /// What would be valid.
        expected: &'static str,
    },

    /// A `Content-Type` value that cannot be parsed, or that lacks a required parameter.
    #[error("Content-Type `{content_type}`, byte {offset}: found `{found}`: expected {expected}")]
    InvalidContentType {
        /// The whole header value.
        content_type: String,
        /// The byte offset in the header value.
        offset: usize,
        /// What was found there (a few characters, or `end of value`).
        found: String,
        /// What would be valid.
        expected: &'static str,
    },

    /// A body whose media type this crate does not read where it was given.
    #[error("unsupported content type `{content_type}`: expected {expected}")]
    UnsupportedContentType {
        /// The media type found (`type/subtype`, lower case).
        content_type: String,
        /// What would be valid.
        expected: &'static str,
    },

    /// A multipart boundary that RFC 2046 does not allow.
    #[error(
        "multipart boundary `{boundary}` is not valid: {reason} (1 to 70 characters of letters, digits and '()+_,-./:=? and space, not ending with a space)"
    )]
    InvalidBoundary {
        /// The boundary.
        boundary: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The framing of a `multipart/related` body is wrong (RFC 2046 section 5.1.1).
    #[error("{at}: multipart body: found `{found}`: expected {expected}")]
    Multipart {
        /// Where the problem is.
        at: Location,
        /// What was found (a few characters, or `end of body`).
        found: String,
        /// What would be valid.
        expected: &'static str,
    },

    /// A `multipart/related` body has more parts than [`crate::Limits::max_parts`].
    #[error("{at}: the multipart body has more than {limit} parts (Limits::max_parts)")]
    TooManyParts {
        /// Where the part past the limit starts.
        at: Location,
        /// The limit.
        limit: usize,
    },

    /// A part's `Content-Transfer-Encoding` is not an identity encoding.
    #[error(
        "multipart part {part}: Content-Transfer-Encoding `{encoding}` is not supported: expected 7bit, 8bit or binary"
    )]
    UnsupportedTransferEncoding {
        /// The 0-based index of the part.
        part: usize,
        /// The encoding found.
        encoding: String,
    },

    /// The multipart writer was given a header it cannot write.
    #[error("multipart part {part}: header `{name}: {value}` cannot be written: {reason}")]
    InvalidHeader {
        /// The 0-based index of the part.
        part: usize,
        /// The header name.
        name: String,
        /// The header value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// The multipart writer was given a part whose content contains the boundary delimiter.
    #[error(
        "multipart part {part}: the content contains the delimiter `--{boundary}` at the start of a line: choose another boundary"
    )]
    BoundaryInContent {
        /// The 0-based index of the part.
        part: usize,
        /// The boundary.
        boundary: String,
    },

    /// The multipart writer was given no part (RFC 2046 needs at least one).
    #[error("a multipart body needs at least one part")]
    NoParts,

    /// A part of a `multipart/related` notification could not be read.
    #[error(
        "multipart part {index} ({content_type}{}): {source}",
        describe_content_id(.content_id.as_deref())
    )]
    Part {
        /// The 0-based index of the part.
        index: usize,
        /// The part's media type.
        content_type: String,
        /// The part's `Content-ID`, if any.
        content_id: Option<String>,
        /// What is wrong inside the part (locations are relative to the part's content).
        #[source]
        source: Box<MsPresError>,
    },
}

fn describe_namespace(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("in namespace `{ns}`"),
        None => "in no namespace".to_owned(),
    }
}

fn describe_content_id(content_id: Option<&str>) -> String {
    content_id.map_or_else(String::new, |id| format!(", Content-ID {id}"))
}

impl MsPresError {
    /// Where in the body the error is, when it has a [`Location`]. For
    /// [`MsPresError::Part`] this is the location inside the part.
    pub fn location(&self) -> Option<Location> {
        use MsPresError::*;
        match self {
            NotUtf8 { at, .. }
            | ForbiddenCharacter { at, .. }
            | Xml { at, .. }
            | DocType { at }
            | Encoding { at, .. }
            | MisplacedDeclaration { at }
            | UndefinedEntity { at, .. }
            | UndeclaredPrefix { at, .. }
            | TooDeep { at, .. }
            | TooManyElements { at, .. }
            | MissingRoot { at, .. }
            | ContentOutsideRoot { at, .. }
            | Truncated { at, .. }
            | WrongRoot { at, .. }
            | MissingElement { at, .. }
            | RepeatedElement { at, .. }
            | MissingAttribute { at, .. }
            | InvalidAttribute { at, .. }
            | InvalidText { at, .. }
            | Multipart { at, .. }
            | TooManyParts { at, .. } => Some(*at),
            Part { source, .. } => source.location(),
            TooLarge { .. }
            | InvalidContentType { .. }
            | UnsupportedContentType { .. }
            | InvalidBoundary { .. }
            | UnsupportedTransferEncoding { .. }
            | InvalidHeader { .. }
            | BoundaryInContent { .. }
            | NoParts => None,
        }
    }
}

/// A few characters of `bytes` from `offset`, with control characters escaped, for
/// messages.
pub(crate) fn quote(bytes: &[u8], offset: usize) -> String {
    const CHARS: usize = 24;
    let mut start = offset.min(bytes.len());
    while start > 0 && bytes.get(start).is_some_and(|&b| (b & 0xC0) == 0x80) {
        start -= 1;
    }
    let end = start.saturating_add(4 * CHARS).min(bytes.len());
    let window = String::from_utf8_lossy(bytes.get(start..end).unwrap_or_default());
    if window.is_empty() {
        return "end of body".to_owned();
    }
    quote_str(&window)
}

/// The first few characters of `s`, with control characters escaped.
pub(crate) fn quote_str(s: &str) -> String {
    const CHARS: usize = 24;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_characters() {
        let body = "ab\nРабота\r\nx".as_bytes();
        assert_eq!(
            Location::of(body, 0),
            Location {
                offset: 0,
                line: 1,
                column: 1
            }
        );
        assert_eq!(Location::of(body, 3).line, 2);
        // "Раб" is 6 bytes, 3 characters.
        assert_eq!(
            Location::of(body, 9),
            Location {
                offset: 9,
                line: 2,
                column: 4
            }
        );
        let end = Location::of(body, 10_000);
        assert_eq!((end.offset, end.line, end.column), (body.len(), 3, 2));
    }

    #[test]
    fn quotes_are_short_and_escaped() {
        assert_eq!(quote(b"a\nb", 0), "a\\nb");
        assert_eq!(quote(b"abc", 3), "end of body");
        let long = "x".repeat(100);
        assert_eq!(quote(long.as_bytes(), 0).chars().count(), 25);
        // Starts at a character boundary even inside a character.
        assert_eq!(quote("é".as_bytes(), 1), "é");
    }

    #[test]
    fn messages_name_the_place_and_the_token() {
        let err = MsPresError::InvalidAttribute {
            at: Location::of(b"<a>", 1),
            element: "publication",
            attribute: "version",
            value: "x".into(),
            expected: "a decimal number 0..=4294967295",
        };
        assert_eq!(
            err.to_string(),
            "line 1, column 2 (byte 1): `version=\"x\"` on <publication> is not valid: expected a decimal number 0..=4294967295"
        );
        assert_eq!(err.location().map(|l| l.offset), Some(1));
    }
}
