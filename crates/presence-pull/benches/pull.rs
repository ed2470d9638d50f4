//! Pull lookup: availability -> DND. `cargo xtask bench pull` (target: <= 2 ns a lookup).

use divan::{Bencher, black_box};
use presence_model::AvailabilityRange;
use presence_pull::{DndTracker, PullMapper};

fn main() {
    divan::main();
}

fn mapper() -> PullMapper {
    let ranges: Vec<AvailabilityRange> = ["3000-5999", "9000-9100", "12000-14999", "17000"]
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
    PullMapper::new(&ranges)
}

/// One lookup of a wire availability (clamp, zero check, bit test); inputs cycle through
/// a precomputed spread so that input generation costs only an index increment.
#[divan::bench]
fn lookup(bencher: Bencher<'_, '_>) {
    let mapper = mapper();
    let inputs: Vec<u64> = (0..1024u64).map(|i| (i * 7919) % 20000).collect();
    let mut i = 0usize;
    bencher.bench_local(|| {
        i = (i + 1) & 1023;
        mapper.map_wire(black_box(inputs[i]))
    });
}

/// 1,024 lookups over a spread of availabilities, counted per lookup.
#[divan::bench(counters = [divan::counter::ItemsCount::new(1024usize)])]
fn lookup_batch(bencher: Bencher<'_, '_>) {
    let mapper = mapper();
    let inputs: Vec<u64> = (0..1024u64).map(|i| (i * 7919) % 20000).collect();
    bencher.bench_local(|| {
        let mut off = 0u32;
        for &raw in black_box(&inputs) {
            off += u32::from(mapper.map_wire(raw) == Some(presence_model::DndState::Off));
        }
        off
    });
}

/// Lookup plus change detection for one of 10,000 users.
#[divan::bench]
fn lookup_and_track(bencher: Bencher<'_, '_>) {
    let mapper = mapper();
    let mut tracker = DndTracker::new();
    let mut i = 0u64;
    bencher.bench_local(|| {
        i += 1;
        let user = (i % 10_000) as u32;
        let raw = (i * 7919) % 20000;
        tracker.update(user, mapper.map_wire(black_box(raw)))
    });
}
