//! Reading a large configuration a few hundred DNs at a time.
//!
//! Parsed in one go, a document of 100,000 DNs (14 MB of TOML) becomes a tree of about
//! 220 MB of small allocations (toml's lexer and event buffers add 290 MB more): the
//! process's memory peaks at 440 MB, and the allocator keeps most of those pages after the
//! tree is freed, because what is allocated next lands in its holes. Parsed in slices of
//! [`CHUNK_DNS`] DNs, each slice's tree is freed before the next is made.
//!
//! The DN tables are read in slices only when that gives exactly the document the whole
//! parse would give ([`split`]), so that values, errors, warnings and their order stay the
//! same; any other document is parsed in one go, as before.

use std::collections::HashSet;
use std::ops::Range;

/// DNs per slice: a slice of this many typical DNs is about 40 KB of TOML.
pub(crate) const CHUNK_DNS: usize = 256;

/// A document cut into its DN tables and the rest.
#[derive(Debug)]
pub(crate) struct Layout {
    /// Slices of the text holding DN tables (each table whole), in document order.
    pub(crate) chunks: Vec<Range<usize>>,
    /// The text with the slices' bytes replaced by spaces: the rest of the document, at
    /// the same offsets.
    pub(crate) rest: String,
}

impl Layout {
    /// Where the first DN table starts.
    pub(crate) fn first_dn(&self) -> usize {
        self.chunks.first().map_or(usize::MAX, |c| c.start)
    }
}

/// What a line that starts with `[` is.
#[derive(Debug, PartialEq, Eq)]
enum Header<'t> {
    /// `[dn.KEY]` or `[dn.KEY. ...]`: the table of DN `KEY` (its key as TOML reads it).
    Dn(&'t str),
    /// The header of a table outside `[dn]`, `[table]` or `[[array]]`.
    Other,
    /// Anything else: `[dn]`, `[[dn. ...]]`, a key with an escape, or not a header at all
    /// (a line of a multi-line array).
    Unknown,
}

/// Cuts `text` into slices of DN tables (`chunk_dns` DNs each, [`CHUNK_DNS`] but in tests)
/// and the rest, or `None` when reading the slices
/// apart could differ from reading the document at once. The caller must also parse every
/// slice and the rest without error, and find no `dn` key in the rest; otherwise it parses
/// the document at once.
///
/// Why that is enough: a slice is cut only before a line that starts with a `[dn.KEY]`
/// header (possibly indented), and a line that starts inside a multi-line string, array or
/// inline table leaves the slice before it unclosed, which does not parse. So when every
/// slice parses, every cut is at a real table header. Each DN's headers are contiguous and
/// no other part of the document names `dn` (the `KEY`s are distinct, the rest has no
/// `dn`), so each slice's DN tables are exactly those of the whole document, and the rest
/// holds everything else.
pub(crate) fn split(text: &str, chunk_dns: usize) -> Option<Layout> {
    let mut chunks = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut chunk: Option<(usize, usize)> = None; // (start, DNs in it)
    let mut current: Option<&str> = None;
    let mut start = 0;
    while start < text.len() {
        let end = text[start..]
            .find('\n')
            .map_or(text.len(), |i| start + i + 1);
        let line = &text[start..end];
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.starts_with('[') {
            match header(trimmed) {
                Header::Dn(key) if current == Some(key) => {} // a sub-table of the same DN
                Header::Dn(key) => {
                    if !seen.insert(key) {
                        return None; // its tables are not contiguous (or it is defined twice)
                    }
                    current = Some(key);
                    chunk = match chunk {
                        Some((from, dns)) if dns < chunk_dns => Some((from, dns + 1)),
                        Some((from, _)) => {
                            chunks.push(from..start);
                            Some((start, 1))
                        }
                        None => Some((start, 1)),
                    };
                }
                Header::Other => {
                    if let Some((from, _)) = chunk.take() {
                        chunks.push(from..start);
                    }
                    current = None;
                }
                Header::Unknown => return None,
            }
        }
        start = end;
    }
    if let Some((from, _)) = chunk {
        chunks.push(from..text.len());
    }
    if chunks.is_empty() {
        return None;
    }
    let mut rest = String::with_capacity(text.len());
    let mut at = 0;
    for c in &chunks {
        rest.push_str(&text[at..c.start]);
        rest.extend(std::iter::repeat_n(' ', c.len()));
        at = c.end;
    }
    rest.push_str(&text[at..]);
    Some(Layout { chunks, rest })
}

/// Reads the header at the start of `line` (which starts with `[`).
fn header(line: &str) -> Header<'_> {
    let (array, mut s) = match line.strip_prefix("[[") {
        Some(s) => (true, s),
        None => (false, &line[1..]),
    };
    let mut first = None;
    let mut second = None;
    let mut count = 0usize;
    loop {
        s = s.trim_start_matches([' ', '\t']);
        let Some((key, after)) = key(s) else {
            return Header::Unknown;
        };
        match count {
            0 => first = Some(key),
            1 => second = Some(key),
            _ => {}
        }
        count += 1;
        s = after.trim_start_matches([' ', '\t']);
        match s.strip_prefix('.') {
            Some(after_dot) => s = after_dot,
            None => break,
        }
    }
    let close = if array { "]]" } else { "]" };
    let Some(after) = s.strip_prefix(close) else {
        return Header::Unknown;
    };
    // Then only whitespace and a comment before the end of the line.
    let after = after.trim_start_matches([' ', '\t']);
    let end_of_line =
        after.is_empty() || after.starts_with('#') || after == "\n" || after == "\r\n";
    if !end_of_line {
        return Header::Unknown;
    }
    match (first, second, array) {
        (Some("dn"), Some(key), false) => Header::Dn(key),
        (Some("dn"), _, _) => Header::Unknown,
        _ => Header::Other,
    }
}

/// A key at the start of `s` as TOML reads it, and what follows: a bare key, a basic string
/// without escapes, or a literal string.
fn key(s: &str) -> Option<(&str, &str)> {
    let is_bare = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if let Some(inner) = s.strip_prefix('"') {
        let close = inner.find(['"', '\\', '\n'])?;
        return (inner.as_bytes()[close] == b'"').then(|| (&inner[..close], &inner[close + 1..]));
    }
    if let Some(inner) = s.strip_prefix('\'') {
        let close = inner.find(['\'', '\n'])?;
        return (inner.as_bytes()[close] == b'\'').then(|| (&inner[..close], &inner[close + 1..]));
    }
    let end = s.find(|c: char| !is_bare(c)).unwrap_or(s.len());
    (end > 0).then(|| (&s[..end], &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(header("[dn.\"5001\"]\n"), Header::Dn("5001"));
        assert_eq!(
            header("[ dn . 5001 . annex ] # note\r\n"),
            Header::Dn("5001")
        );
        assert_eq!(header("[dn.'a.b'.annex.TServer]"), Header::Dn("a.b"));
        assert_eq!(header("[\"dn\".x]\n"), Header::Dn("x"));
        assert_eq!(header("[options.TServer]\n"), Header::Other);
        assert_eq!(header("[[teams.apps]]\n"), Header::Other);
        for unknown in [
            "[dn]\n",
            "[[dn.x]]\n",
            "[dn.\"a\\u0062\"]\n",
            "[dn.x] y = 1\n",
            "[1, 2],\n",
            "[dn.x\n",
            "[]\n",
        ] {
            assert_eq!(header(unknown), Header::Unknown, "{unknown:?}");
        }
    }

    #[test]
    fn slices_hold_whole_dns_and_the_rest_keeps_offsets() {
        let mut text = String::from("[options.TServer]\npresence-profile = \"P\"\n");
        for i in 0..(CHUNK_DNS + 10) {
            text.push_str(&format!(
                "[dn.\"{i}\"]\ntype = \"Extension\"\n[dn.\"{i}\".annex.TServer]\npresence-profile = \"P\"\n"
            ));
        }
        text.push_str("[cti]\nlisten = \"127.0.0.1:0\"\n");
        let layout = split(&text, CHUNK_DNS).unwrap();
        assert_eq!(layout.chunks.len(), 2);
        assert_eq!(layout.rest.len(), text.len());
        assert!(text[layout.chunks[1].clone()].starts_with(&format!("[dn.\"{CHUNK_DNS}\"]")));
        assert!(layout.rest.trim_end().ends_with("listen = \"127.0.0.1:0\""));
        assert!(!layout.rest.contains("[dn"));
        assert_eq!(layout.first_dn(), text.find("[dn").unwrap());
    }

    #[test]
    fn documents_read_at_once() {
        // A DN's tables apart, a DN again after another, `[dn]` itself, arrays of DN
        // tables, no DN table. (A DN defined twice in a row stays in one slice, whose parse
        // reports it.)
        for text in [
            "[dn.a]\n[dn.b]\n[dn.a.annex]\n",
            "[dn.a]\n[dn.b]\n[dn.\"a\"]\n",
            "[dn]\na.type = \"Extension\"\n",
            "[[dn.a]]\n",
            "[options]\n",
        ] {
            assert!(split(text, CHUNK_DNS).is_none(), "{text:?}");
        }
    }
}
