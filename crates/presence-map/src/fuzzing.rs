//! The body of the fuzz target `map_xml` (in the repository's `fuzz/` folder), also run by
//! this crate's proptests: one function, two callers, so the fuzzer and CI check the same
//! property and cannot drift apart.

use crate::{AgentPresenceMap, ParseOptions};

/// Target `map_xml`: any input is either refused with an error whose location is 1-based
/// and inside the input, or gives a map (only from UTF-8) that is written and read back
/// equal, without warnings. Panics when that does not hold.
pub fn map_xml(input: &[u8]) {
    match AgentPresenceMap::parse(input) {
        Ok(parsed) => {
            let body = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
            assert!(
                std::str::from_utf8(body).is_ok(),
                "accepted non-UTF-8: {input:?}"
            );
            let written = parsed.map.to_xml();
            let big = ParseOptions {
                max_size: usize::MAX,
            };
            let again = AgentPresenceMap::parse_with(written.as_bytes(), &big)
                .unwrap_or_else(|e| panic!("written map refused: {e}\n{written}"));
            assert_eq!(again.map, parsed.map, "a written map reads back equal");
            assert!(again.warnings.is_empty(), "a written map has no warnings");
        }
        Err(err) => {
            let _ = err.to_string();
            if let Some(location) = err.location() {
                assert!(location.line >= 1 && location.column >= 1, "{err}");
                let lines = input.iter().filter(|&&b| b == b'\n').count() + 1;
                assert!(location.line as usize <= lines, "{err}");
            }
        }
    }
}
