//! The request budget: a GCRA token bucket, on `Instant`s given by the caller.
//!
//! Graph throttles presence requests per app and tenant over a *sliding* 30 s window. A
//! bucket that refills at `budget / 30 s` and holds at most `burst` tokens lets through, in
//! any window of length `W`, at most `burst + W × budget / 30 s` requests: with `W` = 30 s,
//! `budget + burst`. The burst is kept small for that reason.

use std::time::{Duration, Instant};

/// A GCRA bucket: `rate` tokens per `period`, at most `burst` at once.
#[derive(Clone, Debug)]
pub struct Gcra {
    /// Nanoseconds per token (rounded up, so the rate is never exceeded).
    interval: u128,
    burst: u32,
    origin: Option<Instant>,
    /// The virtual time (nanoseconds after `origin`) at which the bucket was empty.
    empty_at: u128,
}

impl Gcra {
    /// `rate` tokens per `period`, holding at most `burst` (both at least 1). It starts full.
    pub fn new(rate: u32, period: Duration, burst: u32) -> Self {
        let rate = u128::from(rate.max(1));
        Gcra {
            interval: period.as_nanos().div_ceil(rate).max(1),
            burst: burst.max(1),
            origin: None,
            empty_at: 0,
        }
    }

    /// The bucket's capacity.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time one token takes to refill.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.interval).unwrap_or(u64::MAX))
    }

    fn at(&mut self, now: Instant) -> u128 {
        let origin = *self.origin.get_or_insert(now);
        let t = now.saturating_duration_since(origin).as_nanos();
        // The first use: empty at `-burst × interval`, shifted so values stay unsigned.
        t + u128::from(self.burst) * self.interval
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Instant) -> u32 {
        let t = self.at(now);
        let tokens = t.saturating_sub(self.empty_at) / self.interval;
        u32::try_from(tokens.min(u128::from(self.burst))).unwrap_or(self.burst)
    }

    /// Takes one token; `false` (and nothing taken) when none is available.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.available(now) == 0 {
            return false;
        }
        let t = self.at(now);
        let floor = t.saturating_sub(u128::from(self.burst) * self.interval);
        self.empty_at = self.empty_at.max(floor) + self.interval;
        true
    }

    /// When `n` whole tokens will be available (at most `burst`; `now` when they already are).
    pub fn when_available(&mut self, n: u32, now: Instant) -> Instant {
        let n = n.min(self.burst);
        if self.available(now) >= n {
            return now;
        }
        let t = self.at(now);
        let due = self.empty_at + u128::from(n) * self.interval;
        let wait = due.saturating_sub(t);
        now + Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn starts_full_refills_at_the_rate_and_caps_at_the_burst() {
        let t0 = Instant::now();
        let mut g = Gcra::new(1350, Duration::from_secs(30), 4);
        assert_eq!(g.available(t0), 4);
        for _ in 0..4 {
            assert!(g.take(t0));
        }
        assert!(!g.take(t0));
        let next = g.when_available(1, t0);
        assert_eq!(next - t0, g.interval());
        assert!(g.take(next));
        assert_eq!(g.available(t0 + Duration::from_secs(3600)), 4);
    }

    proptest! {
        /// Whatever the pattern of attempts, no sliding 30 s window holds more than
        /// `budget + burst` granted tokens.
        #[test]
        fn no_window_exceeds_budget_plus_burst(
            budget in 1u32..1500, burst in 1u32..64,
            gaps in proptest::collection::vec(0u64..200, 1..3000),
        ) {
            let t0 = Instant::now();
            let mut g = Gcra::new(budget, Duration::from_secs(30), burst);
            let mut now = t0;
            let mut granted = Vec::new();
            for gap in gaps {
                now += Duration::from_millis(gap);
                while g.take(now) {
                    granted.push(now);
                }
            }
            let window = Duration::from_secs(30);
            let mut start = 0;
            for end in 0..granted.len() {
                while granted[end] - granted[start] >= window {
                    start += 1;
                }
                prop_assert!((end - start + 1) as u32 <= budget + burst,
                    "{} in a window, budget {} burst {}", end - start + 1, budget, burst);
            }
        }
    }
}
