//! The header multimap.

use std::fmt;

use crate::chars::{is_forbidden_in_line, is_token, push_decimal, trim_wsp};
use crate::error::{SipError, snippet_str};
use crate::params::split_list;

/// Full names of the headers with an RFC compact form, with that form. The position + 1 is
/// the header's id.
const COMPACT: [(&str, u8); 18] = [
    ("Call-ID", b'i'),
    ("Contact", b'm'),
    ("Content-Length", b'l'),
    ("Content-Type", b'c'),
    ("From", b'f'),
    ("To", b't'),
    ("Via", b'v'),
    ("Supported", b'k'),
    ("Event", b'o'),
    ("Content-Encoding", b'e'),
    ("Subject", b's'),
    ("Allow-Events", b'u'),
    ("Refer-To", b'r'),
    ("Referred-By", b'b'),
    ("Session-Expires", b'x'),
    ("Accept-Contact", b'a'),
    ("Reject-Contact", b'j'),
    ("Request-Disposition", b'd'),
];

/// Id of `Content-Length` (see [`COMPACT`]).
pub(crate) const CONTENT_LENGTH_ID: u8 = 3;

/// Ids of the [`COMPACT`] entries by full-name length (for a quick first filter).
const BY_LEN: [&[u8]; 20] = [
    &[],
    &[],
    &[6],
    &[7],
    &[5],
    &[9],
    &[],
    &[1, 2, 11],
    &[13],
    &[8],
    &[],
    &[14],
    &[4, 12],
    &[],
    &[3, 16, 17],
    &[15],
    &[10],
    &[],
    &[],
    &[18],
];

/// The id of a header name: 1..=18 for the headers with a compact form (full or compact
/// spelling, any case), 0 for every other name.
#[inline]
pub(crate) fn known_id(name: &[u8]) -> u8 {
    if let [single] = name {
        let lower = single.to_ascii_lowercase();
        return COMPACT
            .iter()
            .position(|&(_, c)| c == lower)
            .map_or(0, |i| i as u8 + 1);
    }
    let Some(candidates) = BY_LEN.get(name.len()) else {
        return 0;
    };
    candidates
        .iter()
        .copied()
        .find(|&id| {
            COMPACT
                .get(usize::from(id) - 1)
                .is_some_and(|(full, _)| full.as_bytes().eq_ignore_ascii_case(name))
        })
        .unwrap_or(0)
}

/// The canonical spelling of a header name: the full name for a compact form or a known
/// name in any case (`i` and `call-id` → `Call-ID`), otherwise `name` unchanged.
///
/// ```
/// assert_eq!(presence_sip::canonical_name("v"), "Via");
/// assert_eq!(presence_sip::canonical_name("CONTENT-length"), "Content-Length");
/// assert_eq!(presence_sip::canonical_name("ms-diagnostics"), "ms-diagnostics");
/// ```
pub fn canonical_name(name: &str) -> &str {
    match known_id(name.as_bytes()) {
        0 => name,
        id => COMPACT
            .get(usize::from(id) - 1)
            .map_or(name, |(full, _)| full),
    }
}

/// The compact form of a header name, if it has one (`Call-ID` → `i`).
///
/// ```
/// assert_eq!(presence_sip::compact_name("content-type"), Some("c"));
/// assert_eq!(presence_sip::compact_name("CSeq"), None);
/// ```
pub fn compact_name(name: &str) -> Option<&'static str> {
    const SINGLE: [&str; 18] = [
        "i", "m", "l", "c", "f", "t", "v", "k", "o", "e", "s", "u", "r", "b", "x", "a", "j", "d",
    ];
    match known_id(name.as_bytes()) {
        0 => None,
        id => SINGLE.get(usize::from(id) - 1).copied(),
    }
}

/// One header field: byte ranges of its name and value in [`Headers::buf`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) name: (u32, u32),
    pub(crate) value: (u32, u32),
    pub(crate) id: u8,
}

/// The header fields of a message: an ordered multimap with case-insensitive names.
///
/// - Order and repetition are kept exactly (several `Via` lines stay several entries, in
///   order), and so is each name's spelling; serialization writes them back as given.
/// - Lookups ignore ASCII case and treat compact forms as their full names: `get("Call-ID")`,
///   `get("call-id")` and `get("i")` all find an `i:` line (see [`canonical_name`]).
/// - Values are stored unfolded and trimmed: continuation lines are joined with one space and
///   leading/trailing SP/HTAB are removed.
/// - Storage is one string plus byte ranges, so parsing allocates twice however many fields
///   there are.
///
/// Two `Headers` are equal when they hold the same fields in the same order, names compared
/// as lookups compare them, values exactly.
#[derive(Clone, Default)]
pub struct Headers {
    buf: String,
    entries: Vec<Entry>,
}

/// Which entries a lookup name selects.
#[derive(Clone, Copy)]
struct Matcher<'q> {
    id: u8,
    name: &'q str,
}

impl<'q> Matcher<'q> {
    fn new(name: &'q str) -> Self {
        Matcher {
            id: known_id(name.as_bytes()),
            name,
        }
    }

    #[inline]
    fn matches(&self, buf: &str, entry: &Entry) -> bool {
        if self.id != 0 {
            entry.id == self.id
        } else {
            entry.id == 0 && Headers::slice_of(buf, entry.name).eq_ignore_ascii_case(self.name)
        }
    }
}

const VALUE_EXPECTED: &str = "text without CR, LF or control characters other than HTAB";

impl Headers {
    /// No header fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Assembles headers from the parser's buffer and ranges (already validated).
    pub(crate) fn from_parts(buf: String, entries: Vec<Entry>) -> Self {
        Headers { buf, entries }
    }

    /// How many header fields (lines) there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no header fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn slice(&self, (start, end): (u32, u32)) -> &str {
        self.buf
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    fn name_of(&self, entry: &Entry) -> &str {
        self.slice(entry.name)
    }

    fn value_of(&self, entry: &Entry) -> &str {
        self.slice(entry.value)
    }

    /// Every field as `(name as written, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (self.name_of(e), self.value_of(e)))
    }

    /// The value of the first field called `name` (case-insensitive, compact forms
    /// included).
    pub fn get(&self, name: &str) -> Option<&str> {
        let m = Matcher::new(name);
        self.entries
            .iter()
            .find(|e| m.matches(&self.buf, e))
            .map(|e| self.value_of(e))
    }

    /// The values of every field called `name`, one per line, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let m = Matcher::new(name);
        self.entries
            .iter()
            .filter(move |e| m.matches(&self.buf, e))
            .map(|e| self.value_of(e))
    }

    /// The comma-separated elements of every field called `name`, in order: the values of
    /// [`get_all`](Self::get_all) split at commas that are not inside a quoted string or
    /// `<…>`, trimmed, empty elements skipped.
    ///
    /// Use it for list-valued headers (`Via`, `Supported`, `Contact`, `Allow`, `Require`, …),
    /// not for headers whose single value may contain commas (`Date`, `Authorization`).
    ///
    /// ```
    /// let mut h = presence_sip::Headers::new();
    /// h.append("k", "ms-benotify, eventlist")?;
    /// h.append("Contact", r#""Smith, J" <sip:j@x;a=1,2>, <sip:k@y>"#)?;
    /// assert_eq!(h.values("Supported").collect::<Vec<_>>(), ["ms-benotify", "eventlist"]);
    /// assert_eq!(h.values("m").count(), 2);
    /// # Ok::<(), presence_sip::SipError>(())
    /// ```
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name).flat_map(split_list)
    }

    /// Whether any field is called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a field at the end.
    ///
    /// The value is trimmed of leading and trailing SP/HTAB (as a parser would see it).
    ///
    /// # Errors
    /// [`SipError::InvalidHeaderName`] if `name` is not an RFC 3261 token;
    /// [`SipError::InvalidHeaderValue`] if `value` holds CR, LF or another control character
    /// (HTAB is fine) — that would let a value inject header lines.
    pub fn append(&mut self, name: &str, value: &str) -> Result<(), SipError> {
        check_name(name)?;
        let value = check_value(name, value)?;
        self.push_checked(name, value)
    }

    /// Replaces the fields called `name`: the first keeps its position (and its name as
    /// written) and takes `value`; the others are removed. Appends when there is none.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SipError> {
        check_name(name)?;
        let value = check_value(name, value)?;
        let m = Matcher::new(name);
        let Some(first) = self.entries.iter().position(|e| m.matches(&self.buf, e)) else {
            return self.push_checked(name, value);
        };
        let range = self.push_text(value)?;
        if let Some(entry) = self.entries.get_mut(first) {
            entry.value = range;
        }
        let mut index = 0;
        let buf = &self.buf;
        self.entries.retain(|e| {
            let keep = index <= first || !m.matches(buf, e);
            index += 1;
            keep
        });
        self.compact_if_wasteful();
        Ok(())
    }

    /// Removes every field called `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let m = Matcher::new(name);
        let before = self.entries.len();
        let buf = &self.buf;
        self.entries.retain(|e| !m.matches(buf, e));
        let removed = before - self.entries.len();
        self.compact_if_wasteful();
        removed
    }

    fn slice_of(buf: &str, (start, end): (u32, u32)) -> &str {
        buf.get(start as usize..end as usize).unwrap_or_default()
    }

    /// Appends text to the buffer, returning its range.
    fn push_text(&mut self, text: &str) -> Result<(u32, u32), SipError> {
        let start = self.buf.len();
        let end = start.saturating_add(text.len());
        let (Ok(start32), Ok(end32)) = (u32::try_from(start), u32::try_from(end)) else {
            return Err(SipError::InvalidHeaderValue {
                name: "(headers)".to_owned(),
                offset: start,
                token: snippet_str(text),
                expected: "header fields totalling less than 4 GiB",
            });
        };
        self.buf.push_str(text);
        Ok((start32, end32))
    }

    fn push_checked(&mut self, name: &str, value: &str) -> Result<(), SipError> {
        let name_range = self.push_text(name)?;
        let value_range = self.push_text(value)?;
        self.entries.push(Entry {
            name: name_range,
            value: value_range,
            id: known_id(name.as_bytes()),
        });
        Ok(())
    }

    /// Rebuilds the buffer when removed fields waste more than half of it.
    fn compact_if_wasteful(&mut self) {
        let live: usize = self
            .entries
            .iter()
            .map(|e| {
                e.name.1.saturating_sub(e.name.0) as usize
                    + e.value.1.saturating_sub(e.value.0) as usize
            })
            .sum();
        if self.buf.len() <= live.saturating_mul(2).saturating_add(1024) {
            return;
        }
        let mut fresh = Headers {
            buf: String::with_capacity(live),
            entries: Vec::with_capacity(self.entries.len()),
        };
        for (name, value) in self.iter() {
            // Cannot fail: the live text is smaller than the current buffer.
            if fresh.push_checked(name, value).is_err() {
                return;
            }
        }
        *self = fresh;
    }

    /// Copies the fields called `name` from `other`, in order, names as written.
    pub(crate) fn copy_from(&mut self, other: &Headers, name: &str) -> Result<(), SipError> {
        let m = Matcher::new(name);
        for e in other.entries.iter().filter(|e| m.matches(&other.buf, e)) {
            self.push_checked(other.name_of(e), other.value_of(e))?;
        }
        Ok(())
    }

    /// Writes every field as `Name: value\r\n`, with one `Content-Length` equal to
    /// `body_len`: at the position (and with the spelling) of the first given one, or last.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>, body_len: usize) {
        let mut wrote_length = false;
        for e in &self.entries {
            if e.id == CONTENT_LENGTH_ID {
                if !wrote_length {
                    out.extend_from_slice(self.name_of(e).as_bytes());
                    out.extend_from_slice(b": ");
                    push_decimal(out, body_len);
                    out.extend_from_slice(b"\r\n");
                    wrote_length = true;
                }
                continue;
            }
            out.extend_from_slice(self.name_of(e).as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(self.value_of(e).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !wrote_length {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, body_len);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Bytes the fields take on the wire (without `Content-Length`'s digits).
    pub(crate) fn wire_len_hint(&self) -> usize {
        self.entries
            .iter()
            .map(|e| {
                e.name.1.saturating_sub(e.name.0) as usize
                    + e.value.1.saturating_sub(e.value.0) as usize
                    + 4
            })
            .sum::<usize>()
            + 24
    }
}

/// Checks a header name for [`Headers::append`].
pub(crate) fn check_name(name: &str) -> Result<(), SipError> {
    if is_token(name.as_bytes()) {
        Ok(())
    } else {
        Err(SipError::InvalidHeaderName {
            offset: 0,
            token: snippet_str(name),
        })
    }
}

/// Checks and trims a header value for [`Headers::append`].
pub(crate) fn check_value<'v>(name: &str, value: &'v str) -> Result<&'v str, SipError> {
    if let Some(pos) = value.bytes().position(is_forbidden_in_line) {
        return Err(SipError::InvalidHeaderValue {
            name: canonical_name(name).to_owned(),
            offset: pos,
            token: snippet_str(value),
            expected: VALUE_EXPECTED,
        });
    }
    Ok(trim_wsp(value))
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self.entries.iter().zip(&other.entries).all(|(a, b)| {
                a.id == b.id
                    && (a.id != 0 || self.name_of(a).eq_ignore_ascii_case(other.name_of(b)))
                    && self.value_of(a) == other.value_of(b)
            })
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Headers {
        let mut h = Headers::new();
        h.append("v", "SIP/2.0/TLS a;branch=z9hG4bK1").unwrap();
        h.append("Via", "SIP/2.0/TLS b;branch=z9hG4bK2, SIP/2.0/TLS c")
            .unwrap();
        h.append("i", "abc@host").unwrap();
        h.append("X-Custom", "  padded\t ").unwrap();
        h.append("x-custom", "second").unwrap();
        h
    }

    #[test]
    fn compact_and_case_insensitive_lookup() {
        let h = sample();
        assert_eq!(h.get("Call-ID"), Some("abc@host"));
        assert_eq!(h.get("call-id"), Some("abc@host"));
        assert_eq!(h.get("I"), Some("abc@host"));
        assert_eq!(h.get("VIA"), Some("SIP/2.0/TLS a;branch=z9hG4bK1"));
        assert_eq!(h.get_all("via").count(), 2);
        assert_eq!(h.values("v").count(), 3);
        assert_eq!(h.get("X-CUSTOM"), Some("padded"));
        assert_eq!(
            h.get_all("x-Custom").collect::<Vec<_>>(),
            ["padded", "second"]
        );
        assert!(h.contains("x-custom"));
        assert!(!h.contains("Contact"));
        assert!(!h.contains("m"));
        assert_eq!(h.len(), 5);
        assert_eq!(
            h.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["v", "Via", "i", "X-Custom", "x-custom"]
        );
    }

    #[test]
    fn every_compact_form_maps_to_its_full_name() {
        let pairs = [
            ("i", "Call-ID"),
            ("m", "Contact"),
            ("l", "Content-Length"),
            ("c", "Content-Type"),
            ("f", "From"),
            ("t", "To"),
            ("v", "Via"),
            ("k", "Supported"),
            ("o", "Event"),
            ("e", "Content-Encoding"),
            ("s", "Subject"),
            ("u", "Allow-Events"),
        ];
        for (short, full) in pairs {
            assert_eq!(canonical_name(short), full);
            assert_eq!(canonical_name(&short.to_uppercase()), full);
            assert_eq!(compact_name(full), Some(short));
            let mut h = Headers::new();
            h.append(short, "x").unwrap();
            assert_eq!(h.get(full), Some("x"), "{full}");
            assert_eq!(h.get(&full.to_lowercase()), Some("x"), "{full}");
        }
        assert_eq!(canonical_name("q"), "q");
        assert_eq!(canonical_name("CSeq"), "CSeq");
        assert_eq!(known_id(b""), 0);
        for (i, (full, _)) in COMPACT.iter().enumerate() {
            assert_eq!(usize::from(known_id(full.as_bytes())), i + 1, "{full}");
            assert_eq!(
                usize::from(known_id(full.to_lowercase().as_bytes())),
                i + 1,
                "{full}"
            );
        }
        assert_eq!(known_id(b"Call-IX"), 0);
        assert_eq!(known_id(&[b'x'; 40]), 0);
    }

    #[test]
    fn append_rejects_injection_and_bad_names() {
        let mut h = Headers::new();
        assert!(matches!(
            h.append("Subject", "a\r\nVia: evil"),
            Err(SipError::InvalidHeaderValue { offset: 1, .. })
        ));
        assert!(matches!(
            h.append("Subject", "a\nb"),
            Err(SipError::InvalidHeaderValue { .. })
        ));
        assert!(matches!(
            h.append("Subject", "a\0b"),
            Err(SipError::InvalidHeaderValue { .. })
        ));
        assert!(matches!(
            h.append("Bad Name", "x"),
            Err(SipError::InvalidHeaderName { .. })
        ));
        assert!(matches!(
            h.append("", "x"),
            Err(SipError::InvalidHeaderName { .. })
        ));
        assert!(h.is_empty());
        h.append("Subject", "tab\tinside").unwrap();
        assert_eq!(h.get("s"), Some("tab\tinside"));
    }

    #[test]
    fn set_replaces_first_in_place_and_drops_the_rest() {
        let mut h = sample();
        h.set("Via", "SIP/2.0/TCP new").unwrap();
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [
                ("v", "SIP/2.0/TCP new"),
                ("i", "abc@host"),
                ("X-Custom", "padded"),
                ("x-custom", "second")
            ]
        );
        h.set("X-CUSTOM", "one").unwrap();
        assert_eq!(h.get_all("x-custom").collect::<Vec<_>>(), ["one"]);
        h.set("Expires", "60").unwrap();
        assert_eq!(h.iter().last(), Some(("Expires", "60")));
        assert_eq!(h.remove("CALL-ID"), 1);
        assert_eq!(h.remove("call-id"), 0);
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn repeated_sets_do_not_grow_the_buffer_forever() {
        let mut h = Headers::new();
        h.append("To", "<sip:a@b>").unwrap();
        for i in 0..10_000 {
            h.set("Expires", &i.to_string()).unwrap();
        }
        assert!(h.buf.len() < 4096, "{}", h.buf.len());
        assert_eq!(h.get("Expires"), Some("9999"));
        assert_eq!(h.get("t"), Some("<sip:a@b>"));
    }

    #[test]
    fn equality_is_semantic() {
        let mut a = Headers::new();
        a.append("i", "x").unwrap();
        a.append("X-A", "1").unwrap();
        let mut b = Headers::new();
        b.append("CALL-ID", "x").unwrap();
        b.append("x-a", "1").unwrap();
        assert_eq!(a, b);
        b.set("x-a", "2").unwrap();
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), r#"[("i", "x"), ("X-A", "1")]"#);
    }

    #[test]
    fn write_emits_one_correct_content_length() {
        let mut h = Headers::new();
        h.append("l", "999").unwrap();
        h.append("To", "<sip:a@b>").unwrap();
        h.append("Content-Length", "5").unwrap();
        let mut out = Vec::new();
        h.write_to(&mut out, 12);
        assert_eq!(out, b"l: 12\r\nTo: <sip:a@b>\r\n");
        let mut out = Vec::new();
        Headers::new().write_to(&mut out, 0);
        assert_eq!(out, b"Content-Length: 0\r\n");
    }
}
