//! Agent-presence map XML: any input either is refused with a located error or gives a map
//! that is written and read back equal. The body is `presence_map::fuzzing::map_xml`, which
//! the crate's proptests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_map::fuzzing::map_xml(data);
});
