//! Arbitrary bytes as a configuration file (with the seed map available): never a panic.
//! Mirrored by the `arbitrary_text_never_panics` and `mutated_configs_never_panic`
//! proptests in crates/presence-config/tests/config.rs.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use presence_config::{LoadOptions, NoSections, Source, load};

const SEED_MAP: &[u8] = include_bytes!("../../examples/agent-states.xml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source { path: Path::new("fuzz/bridge.toml"), text };
    let _ = load::<NoSections>(&source, &LoadOptions::default(), &mut |path| {
        if path.ends_with("agent-states.xml") {
            Ok(SEED_MAP.to_vec())
        } else {
            Err(std::io::ErrorKind::NotFound.into())
        }
    });
});
