//! Arbitrary bytes as the value of each option in Genesys' syntax (`map-presence-to-dnd`,
//! `presence-availability-range`, `aggregated-states`): never a panic, error offsets inside
//! the value, ranges written back read back equal. The body is
//! `presence_config::fuzzing::option_values`, which the crate's proptests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_config::fuzzing::option_values(data);
});
