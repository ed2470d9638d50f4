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

    /// `n` random hexadecimal digits (lower case).
    pub fn hex(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(n);
        while out.len() < n {
            let word = self.next_u64();
            for shift in (0..16).rev() {
                if out.len() == n {
                    break;
                }
                let digit = ((word >> (shift * 4)) & 0xf) as u32;
                out.push(char::from_digit(digit, 16).unwrap_or('0'));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
