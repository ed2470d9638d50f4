//! The one place where the bridge reads configuration and map files from disk.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use presence_config::{Diagnostics, LoadOptions, Loaded, PlatformSpec, Source, Users, load};
use presence_cti::CtiConfig;
use presence_graph::GraphSettings;
use presence_sfb::SfbSettings;
use presence_simple::SimpleSettings;
use serde::Deserialize;

use crate::admin::AdminSettings;
use crate::transports::{Configured, specs};

/// The top-level tables besides `[options]` and `[dn]` (documented in
/// docs/configuration.md): the transports, the contact-centre link, the admin API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sections {
    /// `[sfb]`: the Skype for Business pool.
    pub sfb: Option<SfbSettings>,
    /// `[teams]`: Microsoft Teams through Microsoft Graph.
    pub teams: Option<GraphSettings>,
    /// `[simple]`: a SIP SIMPLE presence server (Kamailio, OpenSIPS, Asterisk, ...).
    pub simple: Option<SimpleSettings>,
    /// `[cti]`: the contact-centre WebSocket link.
    pub cti: Option<CtiConfig>,
    /// `[admin]`: the admin HTTP API.
    pub admin: Option<AdminSettings>,
    /// `[ha]`: run as one of a hot-standby group, elected in etcd.
    pub ha: Option<presence_ha::HaSettings>,
}

impl Sections {
    /// Makes relative file paths of the sections relative to `base` (the configuration's
    /// folder), as for agent-presence maps.
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
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
        if let Some(teams) = &mut self.teams {
            teams.rebase(base);
        }
        if let Some(simple) = &mut self.simple {
            simple.rebase(base);
        }
        if let Some(ha) = &mut self.ha {
            ha.rebase(base);
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

/// The configuration file's text.
pub(crate) fn read_config(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration `{}`", path.display()))
}

/// Reads and validates a configuration text (from `path`) and every agent-presence map
/// it names (read from disk); `Err` lists what is wrong.
pub(crate) fn load_text(path: &Path, text: &str) -> Result<Loaded<Sections>, Diagnostics> {
    load_with(path, text, &mut |map| read_map_file(map))
}

/// Reads an agent-presence map file, never more than the map parser's size limit and one
/// byte: a file larger than the limit is refused from its size without being read, and one
/// that does not say its size or never ends (a device, a pipe) is cut there, so that the
/// parser refuses it by its size. Either way nothing near the file's size is allocated.
pub(crate) fn read_map_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let limit = LoadOptions::default().map.max_size;
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > limit as u64 {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            presence_map::MapError::TooLarge { size, limit },
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`load_text`] with maps read by `read_map` (the demo's are built in).
fn load_with(
    path: &Path,
    text: &str,
    read_map: &mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Loaded<Sections>, Diagnostics> {
    let source = Source { path, text };
    let mut loaded = load::<Sections>(&source, &LoadOptions::default(), read_map)?;
    loaded
        .sections
        .resolve_paths(path.parent().unwrap_or(Path::new("")));
    Ok(loaded)
}

/// A configuration ready to run: loaded, and every DN's user resolved on its platform.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub loaded: Loaded<Sections>,
    pub users: Users,
}

/// Loads the configuration at `path` and resolves every DN's user against `platforms`
/// (those of the running transports on reload), or against the file's own transport
/// tables when `None` (start-up). The same validation for `run`, reload and `check`.
pub(crate) fn prepare(
    path: &Path,
    platforms: Option<&[PlatformSpec]>,
) -> Result<Result<Prepared, Diagnostics>> {
    let text = read_config(path)?;
    Ok(prepare_with(path, &text, platforms, &mut |map| {
        read_map_file(map)
    }))
}

/// [`prepare`] for a reload: the file is read until two reads, [`SETTLE`] apart, agree
/// (at most [`SETTLE_LIMIT`]), so that a file rewritten in place (truncated, then
/// written) is not taken half-written. Replacing the file atomically (write a new file,
/// then rename it over the old one) never needs the wait.
pub(crate) fn prepare_settled(
    path: &Path,
    platforms: Option<&[PlatformSpec]>,
) -> Result<Result<Prepared, Diagnostics>> {
    let text = read_settled(path)?;
    Ok(prepare_with(path, &text, platforms, &mut |map| {
        read_map_file(map)
    }))
}

/// The pause between the two reads of [`prepare_settled`].
pub(crate) const SETTLE: std::time::Duration = std::time::Duration::from_millis(50);
/// How long [`prepare_settled`] waits for the file to stop changing.
pub(crate) const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

fn read_settled(path: &Path) -> Result<String> {
    let started = std::time::Instant::now();
    let mut last = read_unchanged(path)?;
    loop {
        std::thread::sleep(SETTLE);
        let again = read_unchanged(path)?;
        // The same bytes and the same modification time: nobody wrote in between (the
        // time matters: a writer that rewrites the file periodically could show the same
        // half-written bytes twice).
        if let (Some(a), Some(b)) = (&last, &again)
            && a == b
        {
            return Ok(b.1.clone());
        }
        if started.elapsed() >= SETTLE_LIMIT {
            anyhow::bail!(
                "the configuration `{}` kept changing for {} s while it was read: write the new file beside it and rename it over the old one",
                path.display(),
                SETTLE_LIMIT.as_secs()
            );
        }
        last = again;
    }
}

/// The file's text with its modification time, when the time is the same before and
/// after the read (`None`: it was written meanwhile).
fn read_unchanged(path: &Path) -> Result<Option<(std::time::SystemTime, String)>> {
    let modified = || -> Result<std::time::SystemTime> {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .with_context(|| format!("cannot read the configuration `{}`", path.display()))
    };
    let before = modified()?;
    let text = read_config(path)?;
    let after = modified()?;
    Ok((before == after).then_some((after, text)))
}

/// [`prepare`] for a text already read, with maps read by `read_map` (the demo's are
/// built in).
pub(crate) fn prepare_with(
    path: &Path,
    text: &str,
    platforms: Option<&[PlatformSpec]>,
    read_map: &mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Prepared, Diagnostics> {
    let loaded = load_with(path, text, read_map)?;
    let own;
    let platforms = match platforms {
        Some(platforms) => platforms,
        None => {
            own = specs(&Configured::all(&loaded.sections));
            &own
        }
    };
    match loaded.config.users(platforms) {
        Ok(users) => Ok(Prepared { loaded, users }),
        Err(mut errors) => {
            errors.extend(loaded.warnings);
            Err(Diagnostics(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in the temporary directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_100_mb_map_file_is_refused_from_its_size_without_being_read() {
        let path = std::env::temp_dir().join(format!("hostile-map-{}.xml", std::process::id()));
        let scratch = Scratch(path);
        // Sparse: 100 MB that take no disk and would take 100 MB of memory to read.
        let file = std::fs::File::create(&scratch.0).unwrap();
        file.set_len(100 * 1024 * 1024).unwrap();
        drop(file);
        let err = read_map_file(&scratch.0).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
        let text = err.to_string();
        assert!(
            text.contains("the file is 104857600 bytes, more than the limit of 4194304 bytes"),
            "{text}"
        );
        let inner = err.get_ref().expect("the map error is the source");
        assert!(inner.is::<presence_map::MapError>(), "{inner:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_endless_map_file_is_cut_at_the_limit_and_refused_by_the_parser() {
        let limit = LoadOptions::default().map.max_size;
        let bytes = read_map_file(Path::new("/dev/zero")).unwrap();
        assert_eq!(bytes.len(), limit + 1);
        let err = presence_map::AgentPresenceMap::parse(&bytes).unwrap_err();
        assert!(
            matches!(err, presence_map::MapError::TooLarge { size, .. } if size == limit + 1),
            "{err}"
        );
    }
}
