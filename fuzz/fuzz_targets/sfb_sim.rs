//! Arbitrary bytes, cut into chunks, from a peer of the SfB simulator's sans-IO core: never
//! a panic; after a framing error the connection is closed. The body is
//! `presence_sfb_sim::fuzzing::peer_bytes`, which the crate's proptests also run.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_sfb_sim::fuzzing::peer_bytes(data, Instant::now());
});
