//! MS-PRES bodies: any input, fed to every parser of `presence-mspres`, is either refused
//! with an error (whose location is 1-based) or gives a value that is written and read back
//! equal. The body is `presence_mspres::fuzzing::every_parser`, which the crate's proptests
//! also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_mspres::fuzzing::every_parser(data);
});
