//! Arbitrary bytes as a configuration file (with the seed map available): never a panic,
//! and every error located inside the file. The body is
//! `presence_config::fuzzing::config_file`, which the crate's proptests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SEED_MAP: &[u8] = include_bytes!("../../examples/agent-states.xml");

fuzz_target!(|data: &[u8]| {
    presence_config::fuzzing::config_file(data, SEED_MAP);
});
