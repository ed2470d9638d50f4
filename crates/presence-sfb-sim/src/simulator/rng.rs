//! A small seeded generator (SplitMix64): tags, branches, boundaries and fault draws are a
//! function of the seed and of the inputs, so a run can be replayed.

/// SplitMix64 (Steele, Lea, Flood 2014): fast, 64 bits of state, good enough for ids and
/// coin flips. Not for anything secret.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A draw in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        // 53 random bits as the mantissa.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `rate` (clamped to `[0, 1]`; NaN counts as 0). A rate of 0
    /// draws nothing, so switching a fault off does not shift the sequence.
    pub(crate) fn chance(&mut self, rate: f64) -> bool {
        if rate.is_nan() || rate <= 0.0 {
            return false;
        }
        self.next_f64() < rate
    }

    /// `n` lowercase hexadecimal digits.
    pub(crate) fn hex(&mut self, n: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(n);
        let mut bits = 0u64;
        for i in 0..n {
            if i % 16 == 0 {
                bits = self.next_u64();
            }
            let digit = DIGITS
                .get(usize::try_from(bits & 0xf).unwrap_or(0))
                .copied();
            out.push(char::from(digit.unwrap_or(b'0')));
            bits >>= 4;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.hex(40), b.hex(40));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(Rng::new(8).hex(16), Rng::new(7).hex(16));
    }

    #[test]
    fn draws_stay_in_range_and_rates_hold_roughly() {
        let mut rng = Rng::new(1);
        let hits = (0..10_000).filter(|_| rng.chance(0.25)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| (0.0..1.0).contains(&rng.next_f64())));
        assert!(!(0..100).any(|_| rng.chance(0.0) || rng.chance(f64::NAN)));
        assert!((0..100).all(|_| rng.chance(1.0)));
        let hex = rng.hex(37);
        assert_eq!(hex.len(), 37);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
