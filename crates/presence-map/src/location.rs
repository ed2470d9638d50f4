//! Line/column positions and the byte-offset → position conversion.

use std::fmt;

/// A position in the map file: 1-based line and 1-based column.
///
/// Lines are separated by `\n` (so `\r\n` counts as one line break). The column counts
/// Unicode characters (scalar values) from the start of the line, not bytes: `é` or `Р` is
/// one column, a tab is one column. A UTF-8 byte-order mark at the start of the file is not
/// counted.
///
/// ```
/// use presence_map::Location;
/// assert_eq!(Location::new(3, 14).to_string(), "line 3, column 14");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The line, starting at 1.
    pub line: u32,
    /// The column in characters, starting at 1.
    pub column: u32,
}

impl Location {
    /// The first character of a file: line 1, column 1. Use it for entries that do not come
    /// from a file.
    pub const START: Location = Location { line: 1, column: 1 };

    /// A location from its line and column (both 1-based).
    pub const fn new(line: u32, column: u32) -> Self {
        Location { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Converts byte offsets into [`Location`]s with a running cursor.
///
/// Offsets are normally asked for in increasing order (the parser walks the file once), so
/// each byte is looked at once in total: the cursor only moves forward from the last
/// answer. An offset before the cursor (only on error paths) restarts from the beginning.
#[derive(Debug, Clone)]
pub(crate) struct Locator<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    column: u32,
}

impl<'a> Locator<'a> {
    /// A cursor at the start of `bytes` (which must be the UTF-8 text being parsed).
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Locator {
            bytes,
            pos: 0,
            line: 1,
            column: 1,
        }
    }

    /// The location of the byte at `offset` (clamped to the end of the text).
    pub(crate) fn locate(&mut self, offset: usize) -> Location {
        let offset = offset.min(self.bytes.len());
        if offset < self.pos {
            self.pos = 0;
            self.line = 1;
            self.column = 1;
        }
        let chunk = self.bytes.get(self.pos..offset).unwrap_or_default();
        match chunk.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                let breaks = count_newlines(chunk);
                self.line = self
                    .line
                    .saturating_add(u32::try_from(breaks).unwrap_or(u32::MAX));
                let rest = chunk.get(last + 1..).unwrap_or_default();
                self.column = 1u32.saturating_add(count_chars(rest));
            }
            None => self.column = self.column.saturating_add(count_chars(chunk)),
        }
        self.pos = offset;
        Location::new(self.line, self.column)
    }
}

/// The number of `\n` in `bytes`, counted in blocks small enough for byte-wide counters
/// (which the compiler turns into vector code).
fn count_newlines(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|block| {
            let n = block
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'\n')));
            usize::from(n)
        })
        .sum()
}

/// The number of UTF-8 characters in `bytes`: every byte that is not a continuation byte.
fn count_chars(bytes: &[u8]) -> u32 {
    let n = bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slow, obviously right answer.
    fn reference(text: &str, offset: usize) -> Location {
        let before = &text.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        Location::new(line as u32, column as u32)
    }

    #[test]
    fn counts_lines_and_characters() {
        let text = "ab\nРабота\r\nx\n\né";
        let mut locator = Locator::new(text.as_bytes());
        let boundaries: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &offset in &boundaries {
            assert_eq!(
                locator.locate(offset),
                reference(text, offset),
                "offset {offset}"
            );
        }
        // Backwards and past the end.
        assert_eq!(locator.locate(1), Location::new(1, 2));
        assert_eq!(locator.locate(3), Location::new(2, 1));
        assert_eq!(locator.locate(10_000), reference(text, text.len()));
    }

    #[test]
    fn display() {
        assert_eq!(Location::START.to_string(), "line 1, column 1");
    }

    proptest::proptest! {
        #[test]
        fn matches_the_reference(text in "[a\nР\r é]{0,40}", picks in proptest::collection::vec(0usize..60, 0..8)) {
            let mut locator = Locator::new(text.as_bytes());
            for pick in picks {
                let mut offset = pick.min(text.len());
                while !text.is_char_boundary(offset) {
                    offset -= 1;
                }
                proptest::prop_assert_eq!(locator.locate(offset), reference(&text, offset));
            }
        }
    }
}
