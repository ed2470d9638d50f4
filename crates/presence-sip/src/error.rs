//! The crate's one error type.

use std::str::Utf8Error;

/// Everything that can go wrong while framing, parsing or building SIP messages.
///
/// Every variant says WHERE (`offset`) and WHAT (`token`, the offending text, cut to
/// [`MAX_TOKEN_CHARS`] characters) and its message says what would have been valid.
///
/// Offsets count bytes:
/// - from the [`Framer`](crate::Framer): from the start of the stream (the first byte ever
///   pushed is offset 0);
/// - from [`Message::parse`](crate::Message::parse): from the start of the given bytes;
/// - from the parsers of single header values ([`NameAddr::parse`](crate::NameAddr::parse),
///   [`CSeq::parse`](crate::CSeq::parse), …): from the start of that value. The typed helpers
///   of [`Headers`](crate::Headers) wrap those in [`SipError::InHeader`], naming the header.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SipError {
    /// No empty line (`CRLFCRLF`) ends the header section within the limit.
    #[error(
        "header section of the message starting at byte {offset} exceeds the limit of {limit} \
         bytes (no empty line ends it within the limit); raise Limits::max_header_section or \
         reset the connection"
    )]
    HeaderSectionTooLarge {
        /// Where the message starts.
        offset: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The header section ended but more bytes are needed (only from [`Message::parse`]).
    ///
    /// [`Message::parse`]: crate::Message::parse
    #[error(
        "incomplete header section: {len} bytes without the empty line (CRLFCRLF) that ends \
         the headers"
    )]
    IncompleteHeaderSection {
        /// How many bytes were given.
        len: usize,
    },
    /// The declared (or, without `Content-Length`, actual) body is larger than the limit.
    #[error(
        "body of {declared} bytes (Content-Length at byte {offset}) exceeds the limit of \
         {limit} bytes; raise Limits::max_body or reset the connection"
    )]
    BodyTooLarge {
        /// Where the `Content-Length` header (or the body) starts.
        offset: usize,
        /// The declared body size.
        declared: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More header fields than the limit.
    #[error(
        "too many header fields: the field at byte {offset} is number {count}, above the \
         limit of {limit}"
    )]
    TooManyHeaders {
        /// Where the first field above the limit starts.
        offset: usize,
        /// Its position (1-based).
        count: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A line feed that does not follow a carriage return.
    #[error("bare line feed at byte {offset}: SIP lines end with CRLF (\\r\\n)")]
    BareLineFeed {
        /// Where the LF is.
        offset: usize,
    },
    /// A carriage return that is not followed by a line feed.
    #[error("bare carriage return at byte {offset}: CR may only appear in a CRLF line end")]
    BareCarriageReturn {
        /// Where the CR is.
        offset: usize,
    },
    /// A control character in the start line or a header line.
    #[error(
        "control character 0x{byte:02x} at byte {offset}: only HTAB, SP and printable \
         characters (UTF-8 allowed) may appear in SIP lines"
    )]
    ControlCharacter {
        /// Where it is.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The header section is not UTF-8.
    #[error("invalid UTF-8 at byte {offset}: SIP start lines and headers are UTF-8 text")]
    InvalidUtf8 {
        /// Where the first invalid byte is.
        offset: usize,
        /// The decoder's error.
        #[source]
        source: Utf8Error,
    },
    /// The first line is neither a Request-Line nor a Status-Line.
    #[error(
        "invalid start line at byte {offset}: `{token}`; expected `METHOD SP Request-URI SP \
         SIP/2.0` or `SIP/2.0 SP 3-digit-code SP Reason-Phrase`"
    )]
    InvalidStartLine {
        /// Where the line starts.
        offset: usize,
        /// The line.
        token: String,
    },
    /// A method that is not an RFC 3261 token.
    #[error(
        "invalid method `{token}` at byte {offset}: expected an RFC 3261 token (letters, \
         digits and -.!%*_+`'~), e.g. INVITE, SERVICE, BENOTIFY"
    )]
    InvalidMethod {
        /// Where the method starts.
        offset: usize,
        /// The method text.
        token: String,
    },
    /// An empty Request-URI or one with whitespace or control characters.
    #[error(
        "invalid Request-URI `{token}` at byte {offset}: expected a non-empty URI without \
         whitespace or control characters, e.g. sip:user@contoso.com"
    )]
    InvalidRequestUri {
        /// Where the URI starts.
        offset: usize,
        /// The URI text.
        token: String,
    },
    /// A SIP version other than 2.0.
    #[error("unsupported SIP version `{token}` at byte {offset}: expected `SIP/2.0`")]
    InvalidVersion {
        /// Where the version starts.
        offset: usize,
        /// The version text.
        token: String,
    },
    /// A status code that is not three digits in 100..=699.
    #[error("invalid status code `{token}` at byte {offset}: expected three digits, 100 to 699")]
    InvalidStatusCode {
        /// Where the code starts.
        offset: usize,
        /// The code text.
        token: String,
    },
    /// A reason phrase with CR, LF or control characters.
    #[error(
        "invalid reason phrase `{token}` at byte {offset}: expected text without CR, LF or \
         control characters other than HTAB"
    )]
    InvalidReasonPhrase {
        /// Where the phrase starts.
        offset: usize,
        /// The phrase.
        token: String,
    },
    /// A header name that is not an RFC 3261 token.
    #[error(
        "invalid header name `{token}` at byte {offset}: expected an RFC 3261 token (letters, \
         digits and -.!%*_+`'~), e.g. Call-ID or i"
    )]
    InvalidHeaderName {
        /// Where the name starts.
        offset: usize,
        /// The name.
        token: String,
    },
    /// A header line without a colon.
    #[error("header line at byte {offset} has no colon: `{token}`; expected `Name: value`")]
    MissingColon {
        /// Where the line starts.
        offset: usize,
        /// The line.
        token: String,
    },
    /// A folded continuation line before the first header field.
    #[error(
        "continuation line at byte {offset} before any header field: a line starting with SP \
         or HTAB continues the header line above it"
    )]
    UnexpectedContinuation {
        /// Where the line starts.
        offset: usize,
    },
    /// A header value that does not have the expected form.
    #[error("invalid `{name}` value `{token}` at byte {offset}: expected {expected}")]
    InvalidHeaderValue {
        /// The header name (canonical form).
        name: String,
        /// Where the value (or the offending part) starts.
        offset: usize,
        /// The offending text.
        token: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// Two `Content-Length` headers with different values.
    #[error(
        "conflicting Content-Length values {first} and {second} (the second at byte {offset}); \
         a message has one body length"
    )]
    ConflictingContentLength {
        /// Where the second value is.
        offset: usize,
        /// The first value.
        first: usize,
        /// The conflicting value.
        second: usize,
    },
    /// No `Content-Length` on a stream transport.
    #[error(
        "missing Content-Length in the message starting at byte {offset}: it is required on \
         stream transports (RFC 3261 §18.3), e.g. `Content-Length: 0`"
    )]
    MissingContentLength {
        /// Where the message starts.
        offset: usize,
    },
    /// Fewer body bytes than `Content-Length` (only from [`Message::parse`]).
    ///
    /// [`Message::parse`]: crate::Message::parse
    #[error(
        "message truncated at byte {offset}: Content-Length says {expected} body bytes but \
         only {actual} follow the header section"
    )]
    Truncated {
        /// Where the body starts.
        offset: usize,
        /// The declared length.
        expected: usize,
        /// The bytes present.
        actual: usize,
    },
    /// Bytes after the body (only from [`Message::parse`]).
    ///
    /// [`Message::parse`]: crate::Message::parse
    #[error(
        "{extra} unexpected bytes at byte {offset}, after the body: one message ends where \
         its Content-Length says; use the Framer for a stream of messages"
    )]
    TrailingData {
        /// Where the extra bytes start.
        offset: usize,
        /// How many.
        extra: usize,
    },
    /// A name-addr or addr-spec (`From`, `To`, `Contact`, …) that does not parse.
    #[error("invalid name-addr `{token}` at byte {offset}: expected {expected}")]
    InvalidNameAddr {
        /// Where the problem is, from the start of the value.
        offset: usize,
        /// The offending text.
        token: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// A SIP URI that does not parse.
    #[error("invalid SIP URI `{token}` at byte {offset}: expected {expected}")]
    InvalidUri {
        /// Where the problem is, from the start of the URI.
        offset: usize,
        /// The offending text.
        token: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// A header parameter list (`;name=value…`) that does not parse.
    #[error("invalid parameter `{token}` at byte {offset}: expected {expected}")]
    InvalidParam {
        /// Where the problem is, from the start of the value.
        offset: usize,
        /// The offending text.
        token: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// A typed header helper failed; `source` says where in the value.
    #[error("in header `{name}`: {source}")]
    InHeader {
        /// The header (canonical name).
        name: String,
        /// What went wrong inside its value.
        source: Box<SipError>,
    },
    /// The framer failed earlier and must be discarded.
    #[error(
        "the framer is poisoned by an earlier error: the stream position is lost; close the \
         connection and start a new Framer"
    )]
    Poisoned,
}

/// The longest offending token quoted in an error, in characters.
pub const MAX_TOKEN_CHARS: usize = 80;

/// Quotes `bytes` for an error message: lossy UTF-8, cut to [`MAX_TOKEN_CHARS`].
pub(crate) fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    snippet_str(&text)
}

/// Quotes `text` for an error message, cut to [`MAX_TOKEN_CHARS`].
pub(crate) fn snippet_str(text: &str) -> String {
    let mut chars = text.char_indices();
    match chars.nth(MAX_TOKEN_CHARS) {
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut + 3);
            out.push_str(text.get(..cut).unwrap_or_default());
            out.push('…');
            out
        }
        None => text.to_owned(),
    }
}

/// Matches the variants whose `offset` counts from the start of the message (or stream),
/// binding it to `$offset` for `$body`; the other arms follow. One list for [`SipError::shifted`]
/// and [`SipError::offset`], so that a new variant cannot be forgotten in one of them.
macro_rules! with_message_offset {
    ($error:expr, $offset:ident => $body:expr, $($other:pat => $alt:expr),+ $(,)?) => {
        match $error {
            E::HeaderSectionTooLarge { offset: $offset, .. }
            | E::BodyTooLarge { offset: $offset, .. }
            | E::TooManyHeaders { offset: $offset, .. }
            | E::BareLineFeed { offset: $offset }
            | E::BareCarriageReturn { offset: $offset }
            | E::ControlCharacter { offset: $offset, .. }
            | E::InvalidUtf8 { offset: $offset, .. }
            | E::InvalidStartLine { offset: $offset, .. }
            | E::InvalidMethod { offset: $offset, .. }
            | E::InvalidRequestUri { offset: $offset, .. }
            | E::InvalidVersion { offset: $offset, .. }
            | E::InvalidStatusCode { offset: $offset, .. }
            | E::InvalidReasonPhrase { offset: $offset, .. }
            | E::InvalidHeaderName { offset: $offset, .. }
            | E::MissingColon { offset: $offset, .. }
            | E::UnexpectedContinuation { offset: $offset }
            | E::InvalidHeaderValue { offset: $offset, .. }
            | E::ConflictingContentLength { offset: $offset, .. }
            | E::MissingContentLength { offset: $offset }
            | E::Truncated { offset: $offset, .. }
            | E::TrailingData { offset: $offset, .. } => $body,
            $($other => $alt),+
        }
    };
}

impl SipError {
    /// Moves every stream/message offset by `base` (framer: message start → stream offset).
    /// Offsets within a header value (name-addr, URI, parameter) stay as they are.
    pub(crate) fn shifted(mut self, base: usize) -> Self {
        use SipError as E;
        with_message_offset!(&mut self, offset => *offset = offset.saturating_add(base), _ => {});
        self
    }

    /// The byte offset this error points at, if it has one.
    pub fn offset(&self) -> Option<usize> {
        use SipError as E;
        with_message_offset!(self, offset => Some(*offset),
            E::InvalidNameAddr { offset, .. }
            | E::InvalidUri { offset, .. }
            | E::InvalidParam { offset, .. } => Some(*offset),
            E::InHeader { source, .. } => source.offset(),
            E::IncompleteHeaderSection { .. } | E::Poisoned => None,
        )
    }

    /// Wraps a value-level error with the header it came from.
    pub(crate) fn in_header(self, name: &str) -> Self {
        SipError::InHeader {
            name: name.to_owned(),
            source: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_cuts_long_tokens_on_char_boundaries() {
        let long = "é".repeat(200);
        let cut = snippet_str(&long);
        assert_eq!(cut.chars().count(), MAX_TOKEN_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(snippet(b"short"), "short");
        assert_eq!(snippet(b"\xffx"), "\u{fffd}x");
    }

    #[test]
    fn shifted_moves_offsets_and_keeps_value_offsets() {
        let e = SipError::BareLineFeed { offset: 3 }.shifted(100);
        assert_eq!(e.offset(), Some(103));
        let e = SipError::InvalidUri {
            offset: 2,
            token: "x".into(),
            expected: "y",
        }
        .shifted(100);
        assert_eq!(e.offset(), Some(2));
        let wrapped = SipError::InvalidParam {
            offset: 5,
            token: "t".into(),
            expected: "e",
        }
        .in_header("From");
        assert_eq!(wrapped.offset(), Some(5));
        assert!(
            wrapped
                .to_string()
                .starts_with("in header `From`: invalid parameter")
        );
        assert_eq!(SipError::Poisoned.offset(), None);
    }
}
