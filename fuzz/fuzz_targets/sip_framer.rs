//! Arbitrary bytes, cut into chunks, through the SIP framer: never a panic, termination, and
//! a poisoned framer after an error. The body is `presence_sip::fuzzing::framer`, which the
//! crate's proptests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = presence_sip::fuzzing::framer(data);
});
