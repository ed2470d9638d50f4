//! `multipart/related` (RFC 2046 section 5.1, RFC 2387): the framing of batched
//! notifications, and the `Content-Type` header value that announces it.

use std::borrow::Cow;
use std::fmt;

use memchr::memmem;

use crate::error::{quote, quote_str};
use crate::{Limits, Location, MsPresError};

/// How many header fields a part may have.
pub const MAX_PART_HEADERS: usize = 64;

/// The longest `Content-Type` value [`ContentType::parse`] reads, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 4096;

/// A parsed `Content-Type` header value (RFC 2045 section 5.1).
///
/// The media type and the parameter names are lower-cased; parameter values are kept as
/// sent (quoted values unescaped). Values may be quoted or not; an unquoted value may
/// contain any character but white space, `;` and `"` (leniency: `start=<a@b>` is accepted
/// unquoted). White space around `;`, `=` and the value is allowed, an empty parameter
/// (`;;`, a trailing `;`) is skipped, and a repeated parameter is an error.
///
/// ```
/// use presence_mspres::ContentType;
/// let ct = ContentType::parse(r#"multipart/related; type="application/rlmi+xml"; start=<list@x>; boundary="Next_Part""#)?;
/// assert!(ct.is("multipart/related"));
/// assert_eq!(ct.param("TYPE"), Some("application/rlmi+xml"));
/// assert_eq!(ct.param("start"), Some("<list@x>"));
/// assert_eq!(ct.param("boundary"), Some("Next_Part"));
/// # Ok::<(), presence_mspres::MsPresError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ContentType {
    /// `type/subtype`, lower case.
    pub media_type: String,
    /// The parameters in order: (lower-case name, value).
    pub params: Vec<(String, String)>,
}

impl ContentType {
    /// Reads a `Content-Type` value.
    pub fn parse(value: &str) -> Result<ContentType, MsPresError> {
        ContentTypeParser {
            value,
            bytes: value.as_bytes(),
            pos: 0,
        }
        .run()
    }

    /// The value of parameter `name` (ASCII case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the media type is `media_type` (ASCII case-insensitive).
    pub fn is(&self, media_type: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(media_type)
    }
}

impl fmt::Display for ContentType {
    /// Writes the value back, quoting parameter values that are not tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.media_type)?;
        for (name, value) in &self.params {
            write!(f, ";{name}=")?;
            if !value.is_empty() && value.bytes().all(is_token_byte) {
                f.write_str(value)?;
            } else {
                f.write_str("\"")?;
                for c in value.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")?;
            }
        }
        Ok(())
    }
}

/// A token character of RFC 2045: printable ASCII except space and the tspecials.
fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

/// [`is_token_byte`] as a table (it is asked of every byte of every header name and
/// content type).
const TOKEN_BYTES: [bool; 256] = {
    let specials = b"()<>@,;:\\\"/[]?=";
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut special = false;
        let mut i = 0;
        while i < specials.len() {
            if specials[i] == c {
                special = true;
            }
            i += 1;
        }
        table[b] = c.is_ascii_graphic() && !special;
        b += 1;
    }
    table
};

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

struct ContentTypeParser<'a> {
    value: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl ContentTypeParser<'_> {
    fn error(&self, expected: &'static str) -> MsPresError {
        let rest = self.value.get(self.pos..).unwrap_or_default();
        MsPresError::InvalidContentType {
            content_type: quote_str(self.value),
            offset: self.pos,
            found: if rest.is_empty() {
                "end of value".to_owned()
            } else {
                quote_str(rest)
            },
            expected,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn token(&mut self, expected: &'static str) -> Result<&str, MsPresError> {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error(expected));
        }
        Ok(self.value.get(start..self.pos).unwrap_or_default())
    }

    fn run(mut self) -> Result<ContentType, MsPresError> {
        if self.bytes.len() > MAX_CONTENT_TYPE_BYTES {
            return Err(self.error("a Content-Type value of at most 4096 bytes"));
        }
        self.skip_space();
        let kind = self
            .token("a media type such as `multipart/related`")?
            .to_ascii_lowercase();
        if self.peek() != Some(b'/') {
            return Err(self.error("`/` and a subtype, as in `multipart/related`"));
        }
        self.pos += 1;
        let subtype = self
            .token("a subtype, as in `multipart/related`")?
            .to_ascii_lowercase();
        let mut params: Vec<(String, String)> = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => break,
                Some(b';') => self.pos += 1,
                Some(_) => return Err(self.error("`;` and a parameter, or the end of the value")),
            }
            self.skip_space();
            if matches!(self.peek(), None | Some(b';')) {
                continue;
            }
            let name_at = self.pos;
            let name = self.token("a parameter name")?.to_ascii_lowercase();
            self.skip_space();
            if self.peek() != Some(b'=') {
                return Err(self.error("`=` and the parameter's value"));
            }
            self.pos += 1;
            self.skip_space();
            let value = if self.peek() == Some(b'"') {
                self.quoted()?
            } else {
                self.unquoted()?
            };
            if params.iter().any(|(n, _)| *n == name) {
                self.pos = name_at;
                return Err(self.error("each parameter at most once"));
            }
            params.push((name, value));
        }
        Ok(ContentType {
            media_type: format!("{kind}/{subtype}"),
            params,
        })
    }

    fn quoted(&mut self) -> Result<String, MsPresError> {
        self.pos += 1;
        let mut out = String::new();
        let rest = self.value.get(self.pos..).unwrap_or_default();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                c if c.is_control() && c != '\t' => {
                    self.pos += i;
                    return Err(self.error("a printable character or the closing `\"`"));
                }
                c => out.push(c),
            }
        }
        self.pos = self.bytes.len();
        Err(self.error("the closing `\"` of the quoted value"))
    }

    fn unquoted(&mut self) -> Result<String, MsPresError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| !is_space(b) && b != b';' && b != b'"' && !b.is_ascii_control())
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("a parameter value (a token or a quoted string)"));
        }
        Ok(self
            .value
            .get(start..self.pos)
            .unwrap_or_default()
            .to_owned())
    }
}

/// Checks a boundary against RFC 2046: 1 to 70 characters from the `bchars` set, not
/// ending with a space.
pub fn validate_boundary(boundary: &str) -> Result<(), MsPresError> {
    let invalid = |reason| MsPresError::InvalidBoundary {
        boundary: quote_str(boundary),
        reason,
    };
    if boundary.is_empty() {
        return Err(invalid("it is empty"));
    }
    if boundary.len() > 70 {
        return Err(invalid("it is longer than 70 characters"));
    }
    if !boundary
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b))
    {
        return Err(invalid("it has a character outside the allowed set"));
    }
    if boundary.ends_with(' ') {
        return Err(invalid("it ends with a space"));
    }
    Ok(())
}

/// The `Content-Type` value of a `multipart/related` body: `root_type` is the media type of
/// the root part (`application/rlmi+xml` for a batched notification) and `start` its
/// `Content-ID` (with angle brackets), if given.
///
/// ```
/// assert_eq!(
///     presence_mspres::related_content_type("application/rlmi+xml", Some("<list@x>"), "b1"),
///     r#"multipart/related;type="application/rlmi+xml";start="<list@x>";boundary="b1""#,
/// );
/// ```
pub fn related_content_type(root_type: &str, start: Option<&str>, boundary: &str) -> String {
    let quoted = |s: &str| {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    };
    let mut out = format!("multipart/related;type={}", quoted(root_type));
    if let Some(start) = start {
        out.push_str(";start=");
        out.push_str(&quoted(start));
    }
    out.push_str(";boundary=");
    out.push_str(&quoted(boundary));
    out
}

/// One body part: its header fields and its content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Part {
    /// The header fields in order: (name as written, value). Values are unfolded and
    /// trimmed when read.
    pub headers: Vec<(String, String)>,
    /// The content, as bytes (no transfer decoding).
    pub body: Vec<u8>,
}

impl Part {
    /// A part with a `Content-Type` header.
    pub fn new(content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Part {
        Part {
            headers: vec![("Content-Type".to_owned(), content_type.into())],
            body: body.into(),
        }
    }

    /// Adds a header field.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Part {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The value of the first header field `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Type`.
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// `Content-ID` (with its angle brackets, as sent).
    pub fn content_id(&self) -> Option<&str> {
        self.header("Content-ID")
    }

    /// `Content-Transfer-Encoding`.
    pub fn content_transfer_encoding(&self) -> Option<&str> {
        self.header("Content-Transfer-Encoding")
    }
}

/// A `multipart/related` body: its parts (the preamble and epilogue are dropped).
///
/// Parsing follows RFC 2046 section 5.1.1 strictly: lines end with CRLF; a delimiter is
/// CRLF (or the start of the body), `--`, the boundary, optional spaces or tabs (transport
/// padding) and CRLF; the close delimiter is `--boundary--`, after which only padding and
/// either the end or CRLF and an epilogue may follow; there must be at least one part. A
/// line that starts with `--boundary` followed by anything else is an error (the boundary
/// must not appear in content). A part is its header fields (`Name: value`, folded lines
/// allowed), an empty line, and the content; a part without the empty line is headers
/// only.
///
/// ```
/// use presence_mspres::{Multipart, Part};
/// let multipart = Multipart {
///     parts: vec![
///         Part::new("application/rlmi+xml", "<list/>").with_header("Content-ID", "<list@x>"),
///         Part::new("text/plain", "hello"),
///     ],
/// };
/// let body = multipart.to_bytes("next-part")?;
/// assert!(body.starts_with(b"--next-part\r\nContent-Type: application/rlmi+xml\r\n"));
/// assert!(body.ends_with(b"hello\r\n--next-part--\r\n"));
/// assert_eq!(Multipart::parse("next-part", &body)?, multipart);
/// # Ok::<(), presence_mspres::MsPresError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Multipart {
    /// The body parts in order.
    pub parts: Vec<Part>,
}

impl Multipart {
    /// Splits `body` on `boundary` (the `boundary` parameter of the `Content-Type`) with the
    /// default [`Limits`].
    pub fn parse(boundary: &str, body: &[u8]) -> Result<Multipart, MsPresError> {
        Multipart::parse_with(boundary, body, &Limits::DEFAULT)
    }

    /// Splits `body` on `boundary`.
    pub fn parse_with(
        boundary: &str,
        body: &[u8],
        limits: &Limits,
    ) -> Result<Multipart, MsPresError> {
        Ok(Multipart {
            parts: parse_parts(boundary, body, limits)?
                .into_iter()
                .map(RawPart::into_part)
                .collect(),
        })
    }
}

/// [`Multipart::parse_with`] without copying: the parts borrow from `body`.
pub(crate) fn parse_parts<'a>(
    boundary: &str,
    body: &'a [u8],
    limits: &Limits,
) -> Result<Vec<RawPart<'a>>, MsPresError> {
    if body.len() > limits.max_body_bytes {
        return Err(MsPresError::TooLarge {
            body: "multipart/related",
            size: body.len(),
            limit: limits.max_body_bytes,
        });
    }
    validate_boundary(boundary)?;
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let finder = memmem::Finder::new(delimiter.as_bytes());
    let error = |offset: usize, expected: &'static str| MsPresError::Multipart {
        at: Location::of(body, offset),
        found: quote(body, offset),
        expected,
    };
    // `pos` is where a `--boundary` starts.
    let mut pos = if body.starts_with(dash.as_bytes()) {
        0
    } else {
        match finder.find(body) {
            Some(i) => i + 2,
            None => {
                return Err(error(
                    body.len(),
                    "a delimiter line: `--` and the boundary at the start of a line",
                ));
            }
        }
    };
    let mut parts = Vec::new();
    loop {
        let after = pos + dash.len();
        let rest = body.get(after..).unwrap_or_default();
        if rest.starts_with(b"--") {
            if parts.is_empty() {
                return Err(error(pos, "a body part before the close delimiter"));
            }
            let mut end = after + 2;
            while body.get(end).copied().is_some_and(is_space) {
                end += 1;
            }
            let tail = body.get(end..).unwrap_or_default();
            if !tail.is_empty() && !tail.starts_with(b"\r\n") {
                return Err(error(
                    end,
                    "CRLF or the end of the body after the close delimiter",
                ));
            }
            return Ok(parts);
        }
        let mut line_end = after;
        while body.get(line_end).copied().is_some_and(is_space) {
            line_end += 1;
        }
        if !body
            .get(line_end..)
            .unwrap_or_default()
            .starts_with(b"\r\n")
        {
            return Err(error(
                line_end,
                "CRLF after the boundary, or `--` to close the body",
            ));
        }
        let start = line_end + 2;
        if parts.len() >= limits.max_parts {
            return Err(MsPresError::TooManyParts {
                at: Location::of(body, start),
                limit: limits.max_parts,
            });
        }
        let content = body.get(start..).unwrap_or_default();
        let Some(len) = finder.find(content) else {
            return Err(error(
                body.len(),
                "the close delimiter: `--`, the boundary and `--`",
            ));
        };
        let slice = content.get(..len).unwrap_or_default();
        parts.push(parse_part(body, start, slice)?);
        pos = start + len + 2;
    }
}

impl Multipart {
    /// Writes the body with `boundary`: no preamble, each part as a delimiter line, its
    /// header fields, an empty line and its content, then the close delimiter and CRLF.
    ///
    /// Refused: an invalid boundary, no part, a header name that is not a token, a header
    /// value with a control character (other than tab), and a part whose text contains
    /// the delimiter (choose another boundary).
    pub fn to_bytes(&self, boundary: &str) -> Result<Vec<u8>, MsPresError> {
        validate_boundary(boundary)?;
        if self.parts.is_empty() {
            return Err(MsPresError::NoParts);
        }
        let delimiter = format!("\r\n--{boundary}");
        let finder = memmem::Finder::new(delimiter.as_bytes());
        let size: usize = self
            .parts
            .iter()
            .map(|p| p.body.len() + 64 * p.headers.len() + 2 * delimiter.len())
            .sum();
        let mut out = Vec::with_capacity(size + 8);
        for (index, part) in self.parts.iter().enumerate() {
            let mut text = Vec::with_capacity(part.body.len() + 128);
            text.extend_from_slice(b"\r\n");
            for (name, value) in &part.headers {
                let bad = |reason| MsPresError::InvalidHeader {
                    part: index,
                    name: quote_str(name),
                    value: quote_str(value),
                    reason,
                };
                if name.is_empty() || !name.bytes().all(is_token_byte) {
                    return Err(bad("the name must be a token"));
                }
                if value.chars().any(|c| c.is_control() && c != '\t') {
                    return Err(bad(
                        "the value must not contain CR, LF or control characters",
                    ));
                }
                text.extend_from_slice(name.as_bytes());
                text.extend_from_slice(b": ");
                text.extend_from_slice(value.as_bytes());
                text.extend_from_slice(b"\r\n");
            }
            text.extend_from_slice(b"\r\n");
            text.extend_from_slice(&part.body);
            if finder.find(&text).is_some() {
                return Err(MsPresError::BoundaryInContent {
                    part: index,
                    boundary: quote_str(boundary),
                });
            }
            // `text` starts with the CRLF that ends the delimiter line.
            if index > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"--");
            out.extend_from_slice(boundary.as_bytes());
            out.extend_from_slice(&text);
        }
        out.extend_from_slice(delimiter.as_bytes());
        out.extend_from_slice(b"--\r\n");
        Ok(out)
    }
}

/// Reads one part: `slice` (at `start` in `body`) is everything between the CRLF that ends
/// its delimiter line and the CRLF that starts the next delimiter.
fn parse_part<'a>(body: &[u8], start: usize, slice: &'a [u8]) -> Result<RawPart<'a>, MsPresError> {
    let (head, content) = if let Some(rest) = slice.strip_prefix(b"\r\n") {
        (&[][..], rest)
    } else {
        match find_crlf_crlf(slice) {
            Some(i) => (
                slice.get(..i).unwrap_or_default(),
                slice.get(i + 4..).unwrap_or_default(),
            ),
            None => (slice.strip_suffix(b"\r\n").unwrap_or(slice), &[][..]),
        }
    };
    let error = |offset: usize, expected: &'static str| MsPresError::Multipart {
        at: Location::of(body, offset),
        found: quote(body, offset),
        expected,
    };
    let mut headers: Vec<(&'a str, Cow<'a, str>)> = Vec::new();
    let mut line_start = start;
    for line in split_crlf(head) {
        if let Some(bad) = line.iter().position(|&b| b == b'\r' || b == b'\n') {
            return Err(error(
                line_start + bad,
                "CRLF line ends in the part's header",
            ));
        }
        let text = std::str::from_utf8(line).map_err(|e| {
            error(
                line_start + e.valid_up_to(),
                "UTF-8 text in the part's header",
            )
        })?;
        if line.first().copied().is_some_and(is_space) {
            // A folded line continues the previous field.
            match headers.last_mut() {
                Some((_, value)) => {
                    let joined = value.to_mut();
                    joined.push_str(text);
                    *value = Cow::Owned(joined.trim_matches([' ', '\t']).to_owned());
                }
                None => return Err(error(line_start, "a header field `Name: value`")),
            }
        } else {
            let Some((name, value)) = text.split_once(':') else {
                return Err(error(line_start, "a header field `Name: value`"));
            };
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(error(
                    line_start,
                    "a header field name (a token) before `:`",
                ));
            }
            if headers.len() >= MAX_PART_HEADERS {
                return Err(error(line_start, "at most 64 header fields in a part"));
            }
            headers.push((name, Cow::Borrowed(value.trim_matches([' ', '\t']))));
        }
        line_start += line.len() + 2;
    }
    Ok(RawPart {
        headers,
        body: content,
    })
}

/// A [`Part`] that borrows from the body it was read from.
#[derive(Debug)]
pub(crate) struct RawPart<'a> {
    /// As [`Part::headers`].
    pub(crate) headers: Vec<(&'a str, Cow<'a, str>)>,
    /// As [`Part::body`].
    pub(crate) body: &'a [u8],
}

impl RawPart<'_> {
    /// As [`Part::header`].
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// The owned part.
    fn into_part(self) -> Part {
        Part {
            headers: self
                .headers
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.into_owned()))
                .collect(),
            body: self.body.to_vec(),
        }
    }
}

/// The lines of `head`, split on CRLF (none for an empty head).
fn split_crlf(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = (!head.is_empty()).then_some(head);
    std::iter::from_fn(move || {
        let current = rest?;
        match find_crlf(current) {
            Some(i) => {
                rest = current.get(i + 2..);
                current.get(..i)
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// The offset of the first CRLF in `bytes` (as `memmem::find(bytes, b"\r\n")`, without
/// building a searcher for each call).
fn find_crlf(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\r', bytes.get(from..)?) {
        let at = from + i;
        if bytes.get(at + 1) == Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The offset of the first CRLF CRLF in `bytes` (as `memmem::find(bytes, b"\r\n\r\n")`).
fn find_crlf_crlf(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = find_crlf(bytes.get(from..)?) {
        let at = from + i;
        if bytes.get(at + 2..at + 4) == Some(&b"\r\n"[..]) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_searches_agree_with_memmem() {
        // Every string of up to 8 bytes from `\r`, `\n` and `a`.
        for len in 0..=8u32 {
            for mut n in 0..3usize.pow(len) {
                let mut bytes = Vec::new();
                for _ in 0..len {
                    bytes.push([b'\r', b'\n', b'a'][n % 3]);
                    n /= 3;
                }
                assert_eq!(find_crlf(&bytes), memmem::find(&bytes, b"\r\n"));
                assert_eq!(find_crlf_crlf(&bytes), memmem::find(&bytes, b"\r\n\r\n"));
            }
        }
        for b in 0..=255u8 {
            let listed = b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b);
            assert_eq!(is_token_byte(b), listed, "{b}");
        }
    }

    #[test]
    fn content_types() {
        let ct = ContentType::parse("Multipart/Related ; Boundary = abc ; ;type=\"a\\\"b\";")
            .expect("valid");
        assert_eq!(ct.media_type, "multipart/related");
        assert_eq!(ct.param("boundary"), Some("abc"));
        assert_eq!(ct.param("type"), Some("a\"b"));
        assert_eq!(
            ct.to_string(),
            "multipart/related;boundary=abc;type=\"a\\\"b\""
        );
        let again = ContentType::parse(&ct.to_string()).expect("reads back");
        assert_eq!(again, ct);
        let ct = ContentType::parse("application/msrtc-event-categories+xml").expect("valid");
        assert!(ct.is("APPLICATION/msrtc-event-categories+xml"));
        assert!(ct.params.is_empty());
    }

    #[test]
    fn content_type_errors_say_where() {
        let err = |v: &str| ContentType::parse(v).expect_err(v);
        let e = err("multipart");
        assert_eq!(
            e.to_string(),
            "Content-Type `multipart`, byte 9: found `end of value`: expected `/` and a subtype, as in `multipart/related`"
        );
        assert!(matches!(
            err(""),
            MsPresError::InvalidContentType { offset: 0, .. }
        ));
        assert!(matches!(
            err("a/b; x"),
            MsPresError::InvalidContentType { offset: 6, .. }
        ));
        assert!(matches!(
            err("a/b; x=\"y"),
            MsPresError::InvalidContentType { offset: 9, .. }
        ));
        assert!(matches!(
            err("a/b; x="),
            MsPresError::InvalidContentType { offset: 7, .. }
        ));
        assert!(matches!(
            err("a/b x"),
            MsPresError::InvalidContentType { offset: 4, .. }
        ));
        assert!(matches!(
            err("a/b;x=1;X=2"),
            MsPresError::InvalidContentType { offset: 8, .. }
        ));
    }

    #[test]
    fn boundaries() {
        assert!(validate_boundary("simple boundary").is_ok());
        assert!(validate_boundary("'()+_,-./:=?").is_ok());
        assert!(validate_boundary(&"a".repeat(70)).is_ok());
        for bad in ["", "a ", "a\"b", "a;b", "é", &"a".repeat(71)] {
            assert!(validate_boundary(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc_2046_framing() {
        let body = b"preamble line\r\n--b \t\r\nContent-Type: text/plain\r\n  ;charset=utf-8\r\nX-Empty:\r\n\r\nfirst\r\n--b\r\n\r\nno headers\r\n--b\r\nHeaders-Only: yes\r\n--b--  \r\nepilogue --b\r\n";
        let m = Multipart::parse("b", body).expect("valid");
        assert_eq!(m.parts.len(), 3);
        assert_eq!(
            m.parts[0].content_type(),
            Some("text/plain  ;charset=utf-8")
        );
        assert_eq!(m.parts[0].header("x-empty"), Some(""));
        assert_eq!(m.parts[0].body, b"first");
        assert!(m.parts[1].headers.is_empty());
        assert_eq!(m.parts[1].body, b"no headers");
        assert_eq!(m.parts[2].header("Headers-Only"), Some("yes"));
        assert!(m.parts[2].body.is_empty());
    }

    #[test]
    fn framing_errors() {
        let err = |body: &[u8]| Multipart::parse("b", body).expect_err("invalid");
        let e = err(b"no delimiter at all");
        assert!(
            matches!(e, MsPresError::Multipart { at, .. } if at.offset == 19),
            "{e}"
        );
        let e = err(b"--b\r\n\r\nunterminated");
        assert!(
            matches!(&e, MsPresError::Multipart { expected, .. } if expected.contains("close")),
            "{e}"
        );
        let e = err(b"--b--\r\n");
        assert!(
            matches!(&e, MsPresError::Multipart { expected, .. } if expected.contains("body part")),
            "{e}"
        );
        let e = err(b"--bX\r\n\r\nx\r\n--b--");
        assert!(
            matches!(e, MsPresError::Multipart { at, .. } if at.offset == 3),
            "{e}"
        );
        let e = err(b"--b\n\nx\n--b--");
        assert!(
            matches!(e, MsPresError::Multipart { at, .. } if at.offset == 3),
            "{e}"
        );
        let e = err(b"--b\r\n\r\nx\r\n--b--x");
        assert!(
            matches!(e, MsPresError::Multipart { at, .. } if at.offset == 15),
            "{e}"
        );
        let e = err(b"--b\r\nno colon\r\n\r\nx\r\n--b--");
        assert!(
            matches!(e, MsPresError::Multipart { at, .. } if at.offset == 5),
            "{e}"
        );
        let e = err(b"--b\r\nA: 1\nB: 2\r\n\r\nx\r\n--b--");
        assert!(
            matches!(e, MsPresError::Multipart { at, .. } if at.offset == 9),
            "{e}"
        );
        let e = err(b"--b\r\n folded: first\r\n\r\nx\r\n--b--");
        assert!(
            matches!(e, MsPresError::Multipart { at, .. } if at.offset == 5),
            "{e}"
        );
        let e = Multipart::parse("bad;", b"--bad;\r\n\r\n\r\n--bad;--").expect_err("boundary");
        assert!(matches!(e, MsPresError::InvalidBoundary { .. }));
    }

    #[test]
    fn limits() {
        let limits = Limits {
            max_parts: 2,
            ..Limits::DEFAULT
        };
        let body = b"--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--";
        assert!(Multipart::parse("b", body).is_ok());
        let e = Multipart::parse_with("b", body, &limits).expect_err("too many");
        assert!(matches!(e, MsPresError::TooManyParts { limit: 2, at } if at.offset == 25));
        let limits = Limits {
            max_body_bytes: 4,
            ..Limits::DEFAULT
        };
        assert!(matches!(
            Multipart::parse_with("b", body, &limits),
            Err(MsPresError::TooLarge { .. })
        ));
        let mut many = String::from("--b\r\n");
        for i in 0..=MAX_PART_HEADERS {
            many.push_str(&format!("H{i}: v\r\n"));
        }
        many.push_str("\r\nx\r\n--b--");
        assert!(matches!(
            Multipart::parse("b", many.as_bytes()),
            Err(MsPresError::Multipart { .. })
        ));
    }

    #[test]
    fn writer_refusals() {
        let m = |part: Part| Multipart { parts: vec![part] };
        assert!(matches!(
            m(Part::new("text/plain", "a\r\n--b\r\n")).to_bytes("b"),
            Err(MsPresError::BoundaryInContent { part: 0, .. })
        ));
        assert!(matches!(
            m(Part::new("text/plain", "--b starts")).to_bytes("b"),
            Err(MsPresError::BoundaryInContent { .. })
        ));
        assert!(m(Part::new("text/plain", "x--b")).to_bytes("b").is_ok());
        assert!(matches!(
            m(Part::new("text/plain\r\nX: y", "")).to_bytes("b"),
            Err(MsPresError::InvalidHeader { .. })
        ));
        assert!(matches!(
            m(Part::default().with_header("Bad Name", "v")).to_bytes("b"),
            Err(MsPresError::InvalidHeader { .. })
        ));
        assert!(matches!(
            m(Part::default().with_header("--b", "v")).to_bytes("b"),
            Err(MsPresError::BoundaryInContent { .. })
        ));
        assert!(Multipart::default().to_bytes("b").is_err());
        assert!(m(Part::default()).to_bytes("b ").is_err());
    }

    #[test]
    fn writes_a_related_body() {
        let multipart = Multipart {
            parts: vec![
                Part::new("application/rlmi+xml", "<list/>")
                    .with_header("Content-ID", "<list@contoso.com>"),
                Part::default(),
                Part::new("application/msrtc-event-categories+xml", "<categories/>")
                    .with_header("Content-Transfer-Encoding", "binary"),
            ],
        };
        let body = multipart.to_bytes("=_NextPart_000").expect("writable");
        insta::assert_snapshot!(String::from_utf8_lossy(&body).replace("\r\n", "␍␊\n"));
        assert_eq!(
            Multipart::parse("=_NextPart_000", &body).expect("reads back"),
            multipart
        );
    }
}
