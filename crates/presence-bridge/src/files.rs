//! The one place where the bridge reads configuration and map files from disk.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use presence_config::{Diagnostics, LoadOptions, Loaded, Source, load};
use presence_cti::CtiConfig;
use presence_sfb::SfbSettings;
use serde::Deserialize;

use crate::admin::AdminSettings;

/// The top-level tables besides `[options]` and `[dn]` (documented in
/// docs/configuration.md): the SfB transport, the contact-centre link, the admin API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sections {
    /// `[sfb]`: the Skype for Business pool (needed by `run`).
    pub sfb: Option<SfbSettings>,
    /// `[cti]`: the contact-centre WebSocket link.
    pub cti: Option<CtiConfig>,
    /// `[admin]`: the admin HTTP API.
    pub admin: Option<AdminSettings>,
}

impl Sections {
    /// Makes relative file paths of the sections relative to `base` (the configuration's
    /// folder), as for agent-presence maps.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(sfb) = &mut self.sfb {
            for path in [
                &mut sfb.tls.certificate,
                &mut sfb.tls.private_key,
                &mut sfb.tls.ca,
            ]
            .into_iter()
            .flatten()
            {
                *path = join(base, path);
            }
        }
    }
}

fn join(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Reads and validates the configuration at `path` and every agent-presence map it names.
///
/// The outer error is for a configuration file that cannot be read at all; the inner one
/// lists what is wrong with a configuration that was read.
pub fn load_config(path: &Path) -> Result<Result<Loaded<Sections>, Diagnostics>> {
    Ok(load_text(path, &read_config(path)?))
}

/// The configuration file's text.
pub fn read_config(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration `{}`", path.display()))
}

/// [`load_config`] for a text already read.
pub fn load_text(path: &Path, text: &str) -> Result<Loaded<Sections>, Diagnostics> {
    let source = Source { path, text };
    let mut loaded = load::<Sections>(&source, &LoadOptions::default(), &mut |map| {
        std::fs::read(map)
    })?;
    loaded
        .sections
        .resolve_paths(path.parent().unwrap_or(Path::new("")));
    Ok(loaded)
}
