//! Contact-centre link messages (presence-tlib JSON): any input either parses into a message
//! that is written and read back equal, or is refused with an error that converts into a
//! valid `EventError`. The body is `presence_tlib::fuzzing::json`, which the crate's
//! proptests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_tlib::fuzzing::json(data);
});
