//! Agent-presence map XML: any input either is refused with a located error or gives a map
//! that is written and read back equal. Mirrors the proptest
//! `presence-map/tests/properties.rs::never_panics_on_mutated_maps`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use presence_map::{AgentPresenceMap, ParseOptions};

fuzz_target!(|data: &[u8]| {
    match AgentPresenceMap::parse(data) {
        Ok(parsed) => {
            let written = parsed.map.to_xml();
            let big = ParseOptions { max_size: usize::MAX };
            let again = AgentPresenceMap::parse_with(written.as_bytes(), &big)
                .expect("a written map reads back");
            assert_eq!(again.map, parsed.map);
            assert!(again.warnings.is_empty());
        }
        Err(err) => {
            let _ = err.to_string();
            if let Some(location) = err.location() {
                assert!(location.line >= 1 && location.column >= 1);
            }
        }
    }
});
