//! The bodies of the fuzz targets `config_toml` and `option_values` (in the repository's
//! `fuzz/` folder), also run by this crate's proptests: one function, two callers, so the
//! fuzzer and CI check the same properties and cannot drift apart. Each panics when its
//! property does not hold.

use std::path::Path;

use crate::options::{parse_aggregated_states, parse_availability_ranges, parse_bool};
use crate::{LoadOptions, NoSections, Source, load};

/// The configuration file's name in [`config_file`]'s diagnostics.
const FILE: &str = "fuzz/bridge.toml";

/// Target `config_toml`: `data` (as UTF-8; other bytes are refused before parsing) as a
/// configuration file whose agent-presence maps named `*agent-states.xml` read as `map`.
/// Never a panic, and every diagnostic that points into the file points at one of its
/// lines (1-based, at most one past the last line) and a 1-based column.
pub fn config_file(data: &[u8], map: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source {
        path: Path::new(FILE),
        text,
    };
    let result = load::<NoSections>(&source, &LoadOptions::default(), &mut |path| {
        if path.ends_with("agent-states.xml") {
            Ok(map.to_vec())
        } else {
            Err(std::io::ErrorKind::NotFound.into())
        }
    });
    if let Err(diagnostics) = result {
        let lines = u32::try_from(text.lines().count().max(1) + 1).unwrap_or(u32::MAX);
        for d in diagnostics.errors() {
            let _ = d.to_string();
            if d.location.file.as_ref() == FILE {
                assert!(
                    d.location.line >= 1 && d.location.line <= lines,
                    "a diagnostic outside the file: {d}"
                );
                assert!(d.location.column >= 1, "a 0 column: {d}");
            }
        }
    }
}

/// An option value's error renders and points at a character of the value.
fn located(value: &str, error: &crate::options::OptionValueError) {
    let _ = error.to_string();
    assert!(
        error.offset <= value.len(),
        "offset {} past the value",
        error.offset
    );
    assert!(
        value.is_char_boundary(error.offset),
        "offset inside a character"
    );
}

/// Target `option_values`: `data` (as UTF-8) as the value of each option in Genesys'
/// syntax (`map-presence-to-dnd`, `presence-availability-range`, `aggregated-states`).
/// Never a panic; an error's offset lies inside the value and on a character boundary;
/// what parses writes back (`Display`) to a value that parses to the same.
pub fn option_values(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_bool(value).map_err(|e| e.to_string());
    match parse_availability_ranges(value) {
        Ok(ranges) => {
            let written: Vec<String> = ranges.iter().map(ToString::to_string).collect();
            let again =
                parse_availability_ranges(&written.join(", ")).expect("written ranges read back");
            assert_eq!(again, ranges, "written ranges read back equal");
        }
        Err(e) => located(value, &e),
    }
    match parse_aggregated_states(value) {
        Ok(table) => {
            let _ = format!("{table:?}");
        }
        Err(e) => located(value, &e),
    }
}
