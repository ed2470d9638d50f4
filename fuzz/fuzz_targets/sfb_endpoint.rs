//! The SfB endpoint's state machine driven by a script read from the input: calls,
//! answers of a pool to the requests it really sent (any status, 409 faults, piggybacked
//! notifications), NOTIFY/BENOTIFY in its dialogs, raw bytes, time and lost connections.
//! Never a panic; every publication settles at most once. The body is
//! `presence_sfb::fuzzing::endpoint`, which the crate's proptests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = presence_sfb::fuzzing::endpoint(data);
});
