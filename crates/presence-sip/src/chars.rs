//! Character classes of RFC 3261 §25.1 and small text helpers.

/// `token` characters: alphanumerics and `-.!%*_+`'~`.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    table
};

/// Whether `b` is an RFC 3261 `token` character.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Whether `s` is a non-empty RFC 3261 `token`.
#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_byte(b))
}

/// SP or HTAB.
#[inline]
pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A byte that may never appear in a SIP line: controls other than HTAB (CR and LF are
/// handled as line ends by the caller) and DEL.
#[inline]
pub(crate) fn is_forbidden_in_line(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// A byte that may never appear in a header section: like [`is_forbidden_in_line`] but
/// letting CR and LF through (line structure is checked separately).
#[inline]
fn is_forbidden_in_section(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != b'\r' && b != b'\n') || b == 0x7f
}

/// One pass over a header section: the first forbidden byte, if any, and whether there
/// are as many CRs as LFs (then, once every LF is known to follow a CR, no CR is bare).
///
/// The common (clean) case is a branch-free pass the compiler can vectorise.
pub(crate) fn scan_section(bytes: &[u8]) -> (Option<usize>, bool) {
    let mut forbidden = 0u8;
    let mut balance = 0isize;
    // Chunks of at most 255 bytes keep the per-chunk counters in `u8` lanes.
    for chunk in bytes.chunks(255) {
        let (mut cr, mut lf) = (0u8, 0u8);
        for &b in chunk {
            forbidden |= u8::from(is_forbidden_in_section(b));
            cr = cr.wrapping_add(u8::from(b == b'\r'));
            lf = lf.wrapping_add(u8::from(b == b'\n'));
        }
        balance += isize::from(cr) - isize::from(lf);
    }
    let first = if forbidden != 0 {
        bytes.iter().position(|&b| is_forbidden_in_section(b))
    } else {
        None
    };
    (first, balance == 0)
}

/// Trims SP and HTAB at both ends.
#[inline]
pub(crate) fn trim_wsp(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Trims SP and HTAB at both ends of a byte range of `bytes`, returning the new range.
#[inline]
pub(crate) fn trim_wsp_range(bytes: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && bytes.get(start).is_some_and(|&b| is_wsp(b)) {
        start += 1;
    }
    while end > start && bytes.get(end - 1).is_some_and(|&b| is_wsp(b)) {
        end -= 1;
    }
    (start, end)
}

/// Writes `n` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Parses a non-empty run of ASCII digits without sign, rejecting overflow.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_class_matches_rfc3261() {
        for b in b"azAZ09-.!%*_+`'~" {
            assert!(is_token_byte(*b), "{}", *b as char);
        }
        for b in b" \t:;,\"<>()[]{}/\\?=@\r\n\x00\x7f\x80" {
            assert!(!is_token_byte(*b), "{}", *b as char);
        }
        assert!(is_token(b"BENOTIFY"));
        assert!(!is_token(b""));
        assert!(!is_token(b"A B"));
    }

    #[test]
    fn forbidden_bytes() {
        assert_eq!(scan_section(b"Via: x\r\n\tq\r\n"), (None, true));
        assert_eq!(scan_section(b"ab\x00c"), (Some(2), true));
        assert_eq!(scan_section(b"ab\x7f\r"), (Some(2), false));
        assert_eq!(scan_section("é".as_bytes()), (None, true));
        assert!(is_forbidden_in_line(b'\r'));
        assert!(!is_forbidden_in_line(b'\t'));
    }

    #[test]
    fn trimming_and_numbers() {
        assert_eq!(trim_wsp(" \t a b \t"), "a b");
        assert_eq!(trim_wsp_range(b"  ab ", 0, 5), (2, 4));
        assert_eq!(trim_wsp_range(b"   ", 0, 3), (3, 3));
        let mut out = Vec::new();
        push_decimal(&mut out, 0);
        out.push(b' ');
        push_decimal(&mut out, usize::MAX);
        assert_eq!(out, format!("0 {}", usize::MAX).into_bytes());
        assert_eq!(parse_decimal("007"), Some(7));
        assert_eq!(parse_decimal("-1"), None);
        assert_eq!(parse_decimal("+1"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("99999999999999999999999"), None);
    }
}
