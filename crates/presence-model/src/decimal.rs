//! Numbers written in decimal without the formatter, for the hot paths of the wire writers.

/// `n` in decimal, exactly as `n.to_string()` writes it, on the stack: no formatter, no
/// allocation.
///
/// ```
/// use presence_model::Decimal;
/// let mut out = String::from("CSeq: ");
/// out.push_str(Decimal::new(42).as_str());
/// assert_eq!(out, "CSeq: 42");
/// assert_eq!(Decimal::new(u64::MAX).as_str(), u64::MAX.to_string());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    /// The digits of `n`.
    #[must_use]
    pub fn new(n: u64) -> Decimal {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        let mut n = n;
        loop {
            start -= 1;
            // `n % 10` is below 10, so the cast cannot truncate.
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Decimal { digits, start }
    }

    /// The digits as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // ASCII digits only: always UTF-8.
        std::str::from_utf8(self.digits.get(self.start..).unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Decimal;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn writes_what_to_string_writes(n in any::<u64>()) {
            let digits = Decimal::new(n);
            prop_assert_eq!(digits.as_str(), n.to_string());
        }
    }

    #[test]
    fn edges() {
        for n in [0, 9, 10, 99, 100, u64::MAX] {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
        }
    }
}
