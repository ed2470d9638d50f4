//! The SIP SIMPLE endpoint's state machine driven by a script read from the input: calls,
//! answers of a presence server to the requests it really sent (any status, ETags,
//! Min-Expires, digest challenges), NOTIFYs in its dialogs, raw bytes, time and lost
//! connections. Never a panic; every publication settles at most once; a subscription is
//! reported before its presence. The body is `presence_simple::fuzzing::endpoint`, which the
//! crate's proptests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = presence_simple::fuzzing::endpoint(data);
});
