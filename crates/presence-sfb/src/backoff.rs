//! Capped exponential back-off with jitter, as a pure function of the attempt number and a
//! random draw (the caller owns the randomness and the clock).

use std::time::Duration;

/// Back-off settings: the first delay, the cap, and the jitter fraction (`0.2` = ±20 %).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Relative jitter, `0.0..=1.0`.
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

/// A small, fast, deterministic random source (SplitMix64) for identifiers and jitter.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
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

    /// `n` random hexadecimal digits.
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
    fn rng_is_deterministic_and_hex_has_the_right_length() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let h = a.hex(20);
        assert_eq!(h.len(), 20);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        let f = a.next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
