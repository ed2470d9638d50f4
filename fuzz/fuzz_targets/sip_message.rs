//! Arbitrary bytes parsed as one SIP message: never a panic, and whatever parses
//! re-serializes to a fixed point. The body is `presence_sip::fuzzing::message`, which the
//! crate's proptests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_sip::fuzzing::message(data);
});
