//! Heap and time of one hostile-input case, for the `tests/hostile.rs` binaries.
//!
//! Each such binary declares the counting allocator as its global allocator (the counters
//! are `peak_alloc`'s, shared by every `PeakAlloc` value, so this module reads what the
//! binary's allocator counts):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: presence_testproc::heap::PeakAlloc = presence_testproc::heap::PeakAlloc;
//! ```
//!
//! and holds [`serial`] for each test's whole run, so that only one case allocates at a
//! time and a case's peak is its own.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use peak_alloc::PeakAlloc;

static SERIAL: Mutex<()> = Mutex::new(());

/// Held by every test of a hostile-input binary for its whole run: one case at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A case being measured: the heap in use and the time when it began.
#[derive(Debug)]
pub struct Probe {
    base: usize,
    started: Instant,
}

impl Probe {
    /// Starts measuring: the peak is reset to what is in use now.
    pub fn start() -> Probe {
        let base = PeakAlloc.current_usage();
        PeakAlloc.reset_peak_usage();
        Probe {
            base,
            started: Instant::now(),
        }
    }

    /// The peak of heap bytes added since [`start`](Self::start) and the time taken;
    /// prints one `HOSTILE` line (crate, case, bytes, time) for the report.
    pub fn report(self, krate: &str, name: &str) -> (usize, Duration) {
        let elapsed = self.started.elapsed();
        let peak = PeakAlloc.peak_usage().saturating_sub(self.base);
        println!("HOSTILE\t{krate}\t{name}\t{peak}\t{elapsed:?}");
        (peak, elapsed)
    }
}

/// Runs `case` under a [`Probe`]: its result, the peak of heap bytes it added, its time.
pub fn measure<T>(krate: &str, name: &str, case: impl FnOnce() -> T) -> (T, usize, Duration) {
    let probe = Probe::start();
    let value = case();
    let (peak, elapsed) = probe.report(krate, name);
    (value, peak, elapsed)
}
