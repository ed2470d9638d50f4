//! Deterministic randomness and capped back-off, shared by every crate that needs them: the
//! caller owns the seed and the clock, so state machines that use them stay deterministic.

use std::time::Duration;

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator, good enough for jitter,
/// SIP tags and branches, and test identifiers. Not for secrets.
///
/// ```
/// use presence_model::random::SplitMix64;
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert_eq!(a.hex(12).len(), 12);
/// assert!((0.0..1.0).contains(&a.next_f64()));
/// ```
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw in `0.0..1.0`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` random hexadecimal digits (lower case): one draw for each 16 digits, most
    /// significant digit first (as [`HexDigits`] writes them).
    pub fn hex(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let digits = left.min(16);
            HexDigits::draw(self, digits).push_to(&mut out);
            left -= digits;
        }
        out
    }

    /// A random GUID shaped like a version-4 UUID, lower case.
    pub fn guid(&mut self) -> String {
        let hi = (self.next_u64() & !0xF000) | 0x4000;
        let lo = (self.next_u64() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

/// Capped exponential back-off with jitter, as a pure function of the attempt number and a
/// random draw (the caller owns the randomness and the clock).
///
/// ```
/// use std::time::Duration;
/// use presence_model::random::Backoff;
/// let b = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60), jitter: 0.0 };
/// assert_eq!(b.delay(1, 0.5), Duration::from_secs(1));
/// assert_eq!(b.delay(4, 0.5), Duration::from_secs(8));
/// assert_eq!(b.delay(99, 0.5), Duration::from_secs(60));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Relative jitter, `0.0..=1.0` (`0.2`: ±20 %).
    pub jitter: f64,
}

impl Backoff {
    /// The delay before retry number `attempt` (1 = the first), given a uniform random
    /// `draw` in `0.0..1.0`: `min(initial × 2^(attempt-1), max)`, then ± jitter.
    pub fn delay(&self, attempt: u32, draw: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1 << exponent).min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * draw.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(factor.max(0.0))
    }
}

/// Up to 32 random hexadecimal digits drawn as [`SplitMix64::hex`] draws them, kept as
/// the drawn words until they are written: the digits of an identifier can be drawn in the
/// order the protocol requires and written later, without a `String` each.
///
/// ```
/// use presence_model::random::{HexDigits, SplitMix64};
/// let (mut a, mut b) = (SplitMix64::new(3), SplitMix64::new(3));
/// let digits = HexDigits::draw(&mut a, 24);
/// assert_eq!(digits.to_string(), b.hex(24));
/// assert_eq!(HexDigits::of_word(0xab).to_string(), "00000000000000ab");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HexDigits {
    words: [u64; 2],
    len: usize,
}

impl HexDigits {
    /// Draws `len` digits (at most 32; more are cut to 32): one word for each 16.
    pub fn draw(rng: &mut SplitMix64, len: usize) -> HexDigits {
        let len = len.min(32);
        let mut words = [0; 2];
        for word in words.iter_mut().take(len.div_ceil(16)) {
            *word = rng.next_u64();
        }
        HexDigits { words, len }
    }

    /// The 16 digits of a word already drawn.
    pub fn of_word(word: u64) -> HexDigits {
        HexDigits {
            words: [word, 0],
            len: 16,
        }
    }

    /// The digits, in order.
    fn digits(self) -> impl Iterator<Item = char> {
        (0..self.len).map(move |i| {
            let word = self.words.get(i / 16).copied().unwrap_or_default();
            let nibble = (word >> ((15 - i % 16) * 4)) & 0xf;
            // A nibble is below 16, so the cast cannot truncate.
            char::from(b"0123456789abcdef"[nibble as usize])
        })
    }

    /// Appends the digits to `out`.
    pub fn push_to(self, out: &mut String) {
        out.extend(self.digits());
    }
}

impl std::fmt::Display for HexDigits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.digits()
            .try_for_each(|c| std::fmt::Write::write_char(f, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_are_the_drawn_words_most_significant_first() {
        let (mut a, mut b) = (SplitMix64::new(11), SplitMix64::new(11));
        for len in [24, 10, 16, 0, 1, 15, 17, 32, 40, 24] {
            let hex = a.hex(len);
            let mut words = String::new();
            for _ in 0..len.div_ceil(16) {
                words.push_str(&format!("{:016x}", b.next_u64()));
            }
            assert_eq!(hex, words[..len], "{len} digits");
        }
        let (mut a, mut b) = (SplitMix64::new(5), SplitMix64::new(5));
        for len in [24, 10, 32, 7] {
            let digits = HexDigits::draw(&mut a, len);
            let mut pushed = String::from("x");
            digits.push_to(&mut pushed);
            assert_eq!(pushed, format!("x{}", b.hex(len)), "{len} digits");
        }
        let word = a.next_u64();
        assert_eq!(HexDigits::of_word(word).to_string(), format!("{word:016x}"));
    }

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter() {
        let b = Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(4),
            jitter: 0.0,
        };
        let delays: Vec<u128> = (1..=6).map(|n| b.delay(n, 0.5).as_millis()).collect();
        assert_eq!(delays, vec![500, 1000, 2000, 4000, 4000, 4000]);
        let j = Backoff { jitter: 0.2, ..b };
        assert_eq!(j.delay(1, 0.0).as_millis(), 400);
        assert_eq!(j.delay(1, 1.0).as_millis(), 600);
        assert_eq!(j.delay(u32::MAX, 0.5), Duration::from_secs(4));
    }

    #[test]
    fn generator_is_deterministic_and_guids_are_shaped() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let h = a.hex(20);
        assert_eq!(h.len(), 20);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        let g = a.guid();
        assert!(crate::EntraId::new(&g).is_ok(), "{g}");
        assert_eq!(&g[14..15], "4");
    }
}
