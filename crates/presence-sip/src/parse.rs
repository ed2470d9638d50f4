//! Parsing a header section (start line + header fields) and a single message.

use std::sync::LazyLock;

use bytes::Bytes;
use memchr::{memchr, memmem};

use crate::chars::{is_token, is_token_byte, is_wsp, scan_section, trim_wsp_range};
use crate::error::{SipError, snippet};
use crate::headers::{CONTENT_LENGTH_ID, Entry, Headers, known_id};
use crate::message::{Message, Request, Response, StatusCode, check_reason, check_request_uri};
use crate::method::Method;
use crate::typed::parse_content_length;

/// Size limits for parsing and framing. Exceeding one is an error, never a reason to buffer
/// more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest header section in bytes, start line and the final empty line included.
    /// Default 64 KiB.
    pub max_header_section: usize,
    /// Largest body in bytes (checked against `Content-Length` as soon as the header
    /// section is parsed). Default 1 MiB.
    pub max_body: usize,
    /// Most header fields (lines, continuation lines not counted). Default 256.
    pub max_headers: usize,
}

impl Limits {
    /// The defaults: 64 KiB header section, 1 MiB body, 256 header fields.
    pub const DEFAULT: Limits = Limits {
        max_header_section: 64 * 1024,
        max_body: 1024 * 1024,
        max_headers: 256,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The searcher for the empty line that ends a header section, built once.
static TERMINATOR: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\r\n\r\n"));

/// Result of looking for the end of a header section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The header section is `buf[..end]` (it ends with CRLFCRLF).
    Found(usize),
    /// Not complete yet; resume the search from this index.
    NeedMore(usize),
}

/// Looks for the CRLFCRLF that ends the header section at the start of `buf`, from `from`
/// (a value returned earlier as [`Scan::NeedMore`], or 0). Rejects header sections longer
/// than `limit`, and bare LFs in an incomplete section (so an LF-only peer fails at once
/// instead of at the limit); in a complete section [`parse_head`] reports them. Offsets are
/// relative to `buf`.
pub(crate) fn find_head_end(buf: &[u8], from: usize, limit: usize) -> Result<Scan, SipError> {
    let window = buf.get(..buf.len().min(limit)).unwrap_or(buf);
    // Fast path: one SIMD search for the terminator. A CRLFCRLF that straddles the end of
    // the previous search starts at `from - 1` at the earliest. Bare LFs before it are
    // reported by `parse_head`, which checks every line end.
    let start = from.saturating_sub(1);
    if let Some(at) = window.get(start..).and_then(|w| TERMINATOR.find(w)) {
        return Ok(Scan::Found(start + at + 4));
    }
    // Slow path over the incomplete section: fail early on bare LFs (an LF-only peer) and
    // on the limit, and find where to resume.
    let too_large = || SipError::HeaderSectionTooLarge { offset: 0, limit };
    let mut pos = from;
    loop {
        let Some(i) = window
            .get(pos..)
            .and_then(|rest| memchr(b'\n', rest))
            .map(|rel| pos + rel)
        else {
            if buf.len() >= limit {
                return Err(too_large());
            }
            return Ok(Scan::NeedMore(window.len()));
        };
        if i == 0 || buf.get(i - 1) != Some(&b'\r') {
            return Err(SipError::BareLineFeed { offset: i });
        }
        match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\r'), Some(b'\n')) => {
                let end = i + 3;
                return if end > limit {
                    Err(too_large())
                } else {
                    Ok(Scan::Found(end))
                };
            }
            (None, _) | (Some(b'\r'), None) => {
                if buf.len() >= limit {
                    return Err(too_large());
                }
                return Ok(Scan::NeedMore(i));
            }
            _ => pos = i + 1,
        }
    }
}

/// The first line of a message.
#[derive(Debug, Clone)]
pub(crate) enum StartLine {
    Request { method: Method, uri: String },
    Response { status: StatusCode, reason: String },
}

/// A parsed header section.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) start: StartLine,
    pub(crate) headers: Headers,
    /// The agreed `Content-Length` and the offset of its (first) value.
    pub(crate) content_length: Option<(usize, usize)>,
}

impl Head {
    /// Completes the message with its body.
    pub(crate) fn into_message(self, body: Bytes) -> Message {
        match self.start {
            StartLine::Request { method, uri } => {
                Message::Request(Request::from_parts(method, uri, self.headers, body))
            }
            StartLine::Response { status, reason } => {
                Message::Response(Response::from_parts(status, reason, self.headers, body))
            }
        }
    }
}

/// The end (exclusive, at the CR) of the line that starts at `start` in `bytes`, checking
/// that it ends with CRLF and, if `check_cr`, holds no other CR. Returns `(cr, lf)`.
fn line_end(
    bytes: &[u8],
    start: usize,
    base: usize,
    check_cr: bool,
) -> Result<(usize, usize), SipError> {
    let Some(lf) = bytes
        .get(start..)
        .and_then(|rest| memchr(b'\n', rest))
        .map(|rel| start + rel)
    else {
        return Err(SipError::IncompleteHeaderSection { len: bytes.len() });
    };
    if lf == 0 || lf <= start || bytes.get(lf - 1) != Some(&b'\r') {
        return Err(SipError::BareLineFeed { offset: base + lf });
    }
    let cr = lf - 1;
    if !check_cr {
        return Ok((cr, lf));
    }
    if let Some(rel) = bytes.get(start..cr).and_then(|line| memchr(b'\r', line)) {
        return Err(SipError::BareCarriageReturn {
            offset: base + start + rel,
        });
    }
    Ok((cr, lf))
}

/// Parses a header section: `head` must be what [`find_head_end`] found (it ends with
/// CRLFCRLF). Offsets in errors are relative to `head`.
pub(crate) fn parse_head(head: &[u8], limits: &Limits) -> Result<Head, SipError> {
    if head.len() > u32::MAX as usize {
        return Err(SipError::HeaderSectionTooLarge {
            offset: 0,
            limit: u32::MAX as usize,
        });
    }
    let text = std::str::from_utf8(head).map_err(|source| SipError::InvalidUtf8 {
        offset: source.valid_up_to(),
        source,
    })?;
    let (forbidden, balanced) = scan_section(head);
    if let Some(at) = forbidden {
        return Err(SipError::ControlCharacter {
            offset: at,
            byte: head.get(at).copied().unwrap_or_default(),
        });
    }
    // As many CRs as LFs, and every LF checked to follow a CR: no CR is bare.
    let check_cr = !balanced;
    let (cr, lf) = line_end(head, 0, 0, check_cr)?;
    let start = parse_start_line(text.get(..cr).unwrap_or_default())?;

    // Header lines: [fields_start, fields_end) ends with the CRLF of the last field.
    let fields_start = lf + 1;
    let fields_end = head.len().saturating_sub(2).max(fields_start);
    let region = text.get(fields_start..fields_end).unwrap_or_default();
    let rb = region.as_bytes();
    let mut buf = String::with_capacity(region.len());
    buf.push_str(region);
    let mut entries: Vec<Entry> = Vec::with_capacity(16);
    let mut folded: Vec<(usize, String)> = Vec::new();
    let mut content_length: Option<(usize, usize)> = None;
    let mut p = 0;
    while p < rb.len() {
        let (cr, lf) = line_end(rb, p, fields_start, check_cr)?;
        let line = rb.get(p..cr).unwrap_or_default();
        let Some(&first) = line.first() else {
            return Err(SipError::MissingColon {
                offset: fields_start + p,
                token: String::new(),
            });
        };
        if is_wsp(first) {
            return Err(SipError::UnexpectedContinuation {
                offset: fields_start + p,
            });
        }
        // The name: token characters, optional SP/HTAB, then the colon.
        let mut name_end = p;
        while name_end < cr && rb.get(name_end).is_some_and(|&b| is_token_byte(b)) {
            name_end += 1;
        }
        let mut colon = name_end;
        while colon < cr && rb.get(colon).is_some_and(|&b| is_wsp(b)) {
            colon += 1;
        }
        if name_end == p || colon >= cr || rb.get(colon) != Some(&b':') {
            return Err(match memchr(b':', line) {
                None => SipError::MissingColon {
                    offset: fields_start + p,
                    token: snippet(line),
                },
                Some(rel) => SipError::InvalidHeaderName {
                    offset: fields_start + p,
                    token: snippet(line.get(..rel).unwrap_or_default()),
                },
            });
        }
        let (name_start, name) = (p, rb.get(p..name_end).unwrap_or_default());
        let (value_start, value_end) = trim_wsp_range(rb, colon + 1, cr);
        let mut next = lf + 1;
        let mut fold: Option<String> = None;
        while rb.get(next).is_some_and(|&b| is_wsp(b)) {
            let (cont_cr, cont_lf) = line_end(rb, next, fields_start, check_cr)?;
            let (s, e) = trim_wsp_range(rb, next, cont_cr);
            let joined = fold.get_or_insert_with(|| {
                region
                    .get(value_start..value_end)
                    .unwrap_or_default()
                    .to_owned()
            });
            if s < e {
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(region.get(s..e).unwrap_or_default());
            }
            next = cont_lf + 1;
        }
        if entries.len() >= limits.max_headers {
            return Err(SipError::TooManyHeaders {
                offset: fields_start + p,
                count: entries.len() + 1,
                limit: limits.max_headers,
            });
        }
        let id = known_id(name);
        if id == CONTENT_LENGTH_ID {
            let value = fold
                .as_deref()
                .unwrap_or_else(|| region.get(value_start..value_end).unwrap_or_default());
            let offset = fields_start + value_start;
            let Some(n) = parse_content_length(value) else {
                return Err(SipError::InvalidHeaderValue {
                    name: "Content-Length".to_owned(),
                    offset,
                    token: crate::error::snippet_str(value),
                    expected: "a decimal byte count without sign, e.g. `0` or `1024`",
                });
            };
            match content_length {
                Some((first, _)) if first != n => {
                    return Err(SipError::ConflictingContentLength {
                        offset,
                        first,
                        second: n,
                    });
                }
                Some(_) => {}
                None => content_length = Some((n, offset)),
            }
        }
        if let Some(value) = fold {
            folded.push((entries.len(), value));
        }
        // In range: the region is shorter than u32::MAX (checked above).
        entries.push(Entry {
            name: (name_start as u32, name_end as u32),
            value: (value_start as u32, value_end as u32),
            id,
        });
        p = next;
    }
    for (index, value) in folded {
        let start = buf.len();
        buf.push_str(&value);
        let end = buf.len();
        let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(end)) else {
            return Err(SipError::HeaderSectionTooLarge {
                offset: 0,
                limit: u32::MAX as usize,
            });
        };
        if let Some(entry) = entries.get_mut(index) {
            entry.value = (start, end);
        }
    }
    Ok(Head {
        start,
        headers: Headers::from_parts(buf, entries),
        content_length,
    })
}

/// Parses a Request-Line or Status-Line (without CRLF).
fn parse_start_line(line: &str) -> Result<StartLine, SipError> {
    let bytes = line.as_bytes();
    let invalid = || SipError::InvalidStartLine {
        offset: 0,
        token: snippet(bytes),
    };
    let is_response = bytes
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"SIP/"));
    let Some(sp1) = memchr(b' ', bytes) else {
        return Err(invalid());
    };
    if is_response {
        let version = line.get(..sp1).unwrap_or_default();
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(SipError::InvalidVersion {
                offset: 0,
                token: snippet(version.as_bytes()),
            });
        }
        let rest = line.get(sp1 + 1..).unwrap_or_default();
        let (code_text, reason) = match rest.split_once(' ') {
            Some((code, reason)) => (code, reason),
            None => (rest, ""),
        };
        let status = code_text
            .parse::<u16>()
            .ok()
            .filter(|_| code_text.len() == 3 && code_text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|code| StatusCode::new(code).ok())
            .ok_or_else(|| SipError::InvalidStatusCode {
                offset: sp1 + 1,
                token: snippet(code_text.as_bytes()),
            })?;
        check_reason(reason).map_err(|e| e.shifted(sp1 + 5))?;
        return Ok(StartLine::Response {
            status,
            reason: reason.to_owned(),
        });
    }
    let method = line.get(..sp1).unwrap_or_default();
    if !is_token(method.as_bytes()) {
        return Err(SipError::InvalidMethod {
            offset: 0,
            token: snippet(method.as_bytes()),
        });
    }
    let rest = line.get(sp1 + 1..).unwrap_or_default();
    let Some((uri, version)) = rest.split_once(' ') else {
        return Err(invalid());
    };
    check_request_uri(uri).map_err(|e| e.shifted(sp1 + 1))?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(SipError::InvalidVersion {
            offset: sp1 + 1 + uri.len() + 1,
            token: snippet(version.as_bytes()),
        });
    }
    Ok(StartLine::Request {
        method: Method::from_valid_token(method),
        uri: uri.to_owned(),
    })
}

/// Parses exactly one message; see [`Message::parse_with_limits`].
pub(crate) fn parse_message(bytes: &[u8], limits: &Limits) -> Result<Message, SipError> {
    let mut skip = 0;
    while bytes.get(skip..skip + 2) == Some(b"\r\n") {
        skip += 2;
    }
    let data = bytes.get(skip..).unwrap_or_default();
    let end =
        match find_head_end(data, 0, limits.max_header_section).map_err(|e| e.shifted(skip))? {
            Scan::Found(end) => end,
            Scan::NeedMore(_) => {
                return Err(SipError::IncompleteHeaderSection { len: bytes.len() });
            }
        };
    let head =
        parse_head(data.get(..end).unwrap_or_default(), limits).map_err(|e| e.shifted(skip))?;
    let rest = data.get(end..).unwrap_or_default();
    let body_len = match head.content_length {
        Some((declared, offset)) => {
            if declared > limits.max_body {
                return Err(SipError::BodyTooLarge {
                    offset: skip + offset,
                    declared,
                    limit: limits.max_body,
                });
            }
            if rest.len() < declared {
                return Err(SipError::Truncated {
                    offset: skip + end,
                    expected: declared,
                    actual: rest.len(),
                });
            }
            if rest.len() > declared {
                return Err(SipError::TrailingData {
                    offset: skip + end + declared,
                    extra: rest.len() - declared,
                });
            }
            declared
        }
        None => {
            if rest.len() > limits.max_body {
                return Err(SipError::BodyTooLarge {
                    offset: skip + end,
                    declared: rest.len(),
                    limit: limits.max_body,
                });
            }
            rest.len()
        }
    };
    let body = Bytes::copy_from_slice(rest.get(..body_len).unwrap_or_default());
    Ok(head.into_message(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test input and a check of the error it must produce.
    type Case = (&'static [u8], fn(&SipError) -> bool);

    #[test]
    fn head_end_search_resumes_and_rejects_bare_lf() {
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\nrest";
        assert_eq!(find_head_end(msg, 0, 1024).unwrap(), Scan::Found(33));
        for cut in 0..33 {
            let first = find_head_end(&msg[..cut], 0, 1024).unwrap();
            let Scan::NeedMore(resume) = first else {
                panic!("{cut}: {first:?}");
            };
            assert!(resume <= cut);
            assert_eq!(find_head_end(msg, resume, 1024).unwrap(), Scan::Found(33));
        }
        assert!(matches!(
            find_head_end(b"OPTIONS x SIP/2.0\nl: 0\n\n", 0, 1024),
            Err(SipError::BareLineFeed { offset: 17 })
        ));
        assert!(matches!(
            find_head_end(b"\n", 0, 1024),
            Err(SipError::BareLineFeed { offset: 0 })
        ));
    }

    #[test]
    fn head_end_search_enforces_the_limit() {
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";
        assert_eq!(find_head_end(msg, 0, 33).unwrap(), Scan::Found(33));
        assert!(matches!(
            find_head_end(msg, 0, 32),
            Err(SipError::HeaderSectionTooLarge { limit: 32, .. })
        ));
        assert!(matches!(
            find_head_end(&msg[..20], 0, 20),
            Err(SipError::HeaderSectionTooLarge { .. })
        ));
        assert_eq!(
            find_head_end(&msg[..19], 0, 20).unwrap(),
            Scan::NeedMore(19)
        );
    }

    #[test]
    fn folding_joins_with_one_space() {
        let head = b"NOTIFY sip:a@b SIP/2.0\r\nSubject: I know you're there,\r\n   pretty well\r\n\tknown \r\nX-Empty:\r\n  \r\n next\r\nl: 0\r\n\r\n";
        let parsed = parse_head(head, &Limits::DEFAULT).unwrap();
        assert_eq!(
            parsed.headers.get("s"),
            Some("I know you're there, pretty well known")
        );
        assert_eq!(parsed.headers.get("x-empty"), Some("next"));
        assert_eq!(parsed.headers.len(), 3);
        assert_eq!(parsed.content_length.map(|c| c.0), Some(0));
    }

    #[test]
    fn start_line_errors() {
        let cases: [Case; 11] = [
            (b"INVITE\r\n\r\n", |e| {
                matches!(e, SipError::InvalidStartLine { .. })
            }),
            (b"INVITE sip:a\r\n\r\n", |e| {
                matches!(e, SipError::InvalidStartLine { .. })
            }),
            (b"INV/ITE sip:a SIP/2.0\r\n\r\n", |e| {
                matches!(e, SipError::InvalidMethod { .. })
            }),
            (b"INVITE  sip:a SIP/2.0\r\n\r\n", |e| {
                matches!(e, SipError::InvalidRequestUri { offset: 7, .. })
            }),
            (b"INVITE sip:a SIP/3.0\r\n\r\n", |e| {
                matches!(e, SipError::InvalidVersion { offset: 13, .. })
            }),
            (b"INVITE sip:a SIP/2.0 \r\n\r\n", |e| {
                matches!(e, SipError::InvalidVersion { .. })
            }),
            (b"SIP/2.1 200 OK\r\n\r\n", |e| {
                matches!(e, SipError::InvalidVersion { offset: 0, .. })
            }),
            (b"SIP/2.0 99 Low\r\n\r\n", |e| {
                matches!(e, SipError::InvalidStatusCode { offset: 8, .. })
            }),
            (b"SIP/2.0 700 High\r\n\r\n", |e| {
                matches!(e, SipError::InvalidStatusCode { .. })
            }),
            (b"SIP/2.0 +20 X\r\n\r\n", |e| {
                matches!(e, SipError::InvalidStatusCode { .. })
            }),
            (b"SIP/2.0\r\n\r\n", |e| {
                matches!(e, SipError::InvalidStartLine { .. })
            }),
        ];
        for (input, check) in cases {
            let err = parse_head(input, &Limits::DEFAULT).unwrap_err();
            assert!(check(&err), "{:?}: {err:?}", String::from_utf8_lossy(input));
        }
        let ok = parse_head(b"sip/2.0 200\r\n\r\n", &Limits::DEFAULT).unwrap();
        assert!(matches!(ok.start, StartLine::Response { ref reason, .. } if reason.is_empty()));
    }

    #[test]
    fn header_line_errors() {
        let cases: [Case; 7] = [
            (b"A sip:a SIP/2.0\r\n folded\r\n\r\n", |e| {
                matches!(e, SipError::UnexpectedContinuation { offset: 17 })
            }),
            (b"A sip:a SIP/2.0\r\nNoColon\r\n\r\n", |e| {
                matches!(e, SipError::MissingColon { offset: 17, .. })
            }),
            (b"A sip:a SIP/2.0\r\nBad Name: x\r\n\r\n", |e| {
                matches!(e, SipError::InvalidHeaderName { offset: 17, .. })
            }),
            (b"A sip:a SIP/2.0\r\n: x\r\n\r\n", |e| {
                matches!(e, SipError::InvalidHeaderName { .. })
            }),
            (b"A sip:a SIP/2.0\r\nX: a\rb\r\n\r\n", |e| {
                matches!(e, SipError::BareCarriageReturn { offset: 21 })
            }),
            (b"A sip:a SIP/2.0\r\nX: a\x01b\r\n\r\n", |e| {
                matches!(
                    e,
                    SipError::ControlCharacter {
                        offset: 21,
                        byte: 1
                    }
                )
            }),
            (b"A sip:a SIP/2.0\r\nX: \xff\r\n\r\n", |e| {
                matches!(e, SipError::InvalidUtf8 { offset: 20, .. })
            }),
        ];
        for (input, check) in cases {
            let err = parse_head(input, &Limits::DEFAULT).unwrap_err();
            assert!(check(&err), "{:?}: {err:?}", String::from_utf8_lossy(input));
        }
        let ok = parse_head(b"A sip:a SIP/2.0\r\nName  :  v  \r\n\r\n", &Limits::DEFAULT).unwrap();
        assert_eq!(ok.headers.iter().next(), Some(("Name", "v")));
    }

    #[test]
    fn single_message_body_rules() {
        let limits = Limits::DEFAULT;
        let m = parse_message(b"\r\n\r\nMESSAGE sip:a SIP/2.0\r\nl: 2\r\n\r\nhi", &limits).unwrap();
        assert_eq!(m.body().as_ref(), b"hi");
        let m = parse_message(b"MESSAGE sip:a SIP/2.0\r\n\r\nno length", &limits).unwrap();
        assert_eq!(m.body().as_ref(), b"no length");
        assert!(matches!(
            parse_message(b"MESSAGE sip:a SIP/2.0\r\nl: 5\r\n\r\nhi", &limits),
            Err(SipError::Truncated {
                offset: 31,
                expected: 5,
                actual: 2
            })
        ));
        assert!(matches!(
            parse_message(b"MESSAGE sip:a SIP/2.0\r\nl: 1\r\n\r\nhi", &limits),
            Err(SipError::TrailingData {
                offset: 32,
                extra: 1
            })
        ));
        assert!(matches!(
            parse_message(b"MESSAGE sip:a SIP/2.0\r\nl: 1\r\n", &limits),
            Err(SipError::IncompleteHeaderSection { .. })
        ));
        let small = Limits {
            max_body: 3,
            ..Limits::DEFAULT
        };
        assert!(matches!(
            parse_message(b"MESSAGE sip:a SIP/2.0\r\n\r\nfour", &small),
            Err(SipError::BodyTooLarge {
                declared: 4,
                limit: 3,
                ..
            })
        ));
        assert!(matches!(
            parse_message(b"\r\nMESSAGE sip:a SIP/2.0\r\nl: 4\r\n\r\nfour", &small),
            Err(SipError::BodyTooLarge {
                offset: 28,
                declared: 4,
                limit: 3
            })
        ));
    }
}
