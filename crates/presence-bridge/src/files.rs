//! The one place where the bridge reads configuration and map files from disk.

use std::path::Path;

use anyhow::{Context, Result};
use presence_config::{Diagnostics, LoadOptions, Loaded, NoSections, Source, load};

/// Reads and validates the configuration at `path` and every agent-presence map it names.
///
/// The outer error is for a configuration file that cannot be read at all; the inner one
/// lists what is wrong with a configuration that was read.
pub fn load_config(path: &Path) -> Result<Result<Loaded<NoSections>, Diagnostics>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration `{}`", path.display()))?;
    let source = Source { path, text: &text };
    Ok(load(&source, &LoadOptions::default(), &mut |map| {
        std::fs::read(map)
    }))
}
