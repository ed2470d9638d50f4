//! Arbitrary bytes as a PIDF body (a NOTIFY or PUBLISH body): never a panic, and what
//! parses survives pull, push, write and read unchanged. Shares its body with the
//! proptests of crates/presence-simple/src/pidf/tests.rs (`presence_simple::pidf::fuzz_read`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_simple::pidf::fuzz_read(data);
});
