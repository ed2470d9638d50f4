//! # presence-config
//!
//! The bridge's configuration, shaped like the Genesys Configuration Server objects it
//! stands for, read from TOML:
//!
//! ```toml
//! [options.TServer]                 # the application's own options
//! presence-profile = "PullProfile"  # the default profile
//!
//! [dn.PushProfile]                  # a VoIP Service DN: its number is the profile name
//! type = "VoIPService"
//! [dn.PushProfile.annex.TServer]
//! service-type = "presence-profile"
//! agent-presence-map = "agent-states.xml"
//! aggregated-states = "1=IDLE_OUT, 2=IDLE_READY, 6=INCALL"
//!
//! [dn."5001"]                       # an Extension DN
//! type = "Extension"
//! uri = "sip:agent1@contoso.com"
//! annex.TServer = { presence-profile = "PushProfile" }
//! ```
//!
//! - [`options`]: parsers of option values in Genesys' own syntax (booleans,
//!   `presence-availability-range`, `aggregated-states`), forgiving about spaces and a
//!   trailing `.`, strict about everything else.
//! - [`load`]: reads the document, decides each profile's [`Mode`] (pull, push, or none
//!   with a warning), reads each agent-presence map once through a caller-given function,
//!   cross-checks `aggregated-states` against its map (a missing ID is an error, an unused
//!   one a warning), checks every profile name and every SIP address, and deserializes the
//!   transport and listener tables into the caller's type.
//! - [`Config::resolve`]: the profile in force for a DN, login > DN > application, as a pure
//!   function the engine calls at login time.
//! - Every error and warning is a [`Diagnostic`]: file:line:column, DN, option, the
//!   offending value, and what would be valid.
//!
//! Invariant: the crate is pure. It takes text and a function to read map files; it opens
//! no file, reads no environment and no clock.
//!
//! ```
//! use std::path::Path;
//! use presence_config::{load, LoadOptions, Mode, NoSections, ProfileSource, Source};
//!
//! let text = r#"
//! [options.TServer]
//! presence-profile = "Pull"
//!
//! [dn.Pull]
//! type = "VoIPService"
//! annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true", presence-availability-range = "3000-5999" }
//!
//! [dn."5001"]
//! type = "Extension"
//! uri = "sip:agent1@contoso.com"
//! "#;
//! let source = Source { path: Path::new("bridge.toml"), text };
//! let loaded = load::<NoSections>(&source, &LoadOptions::default(), &mut |p| {
//!     Err(std::io::Error::new(std::io::ErrorKind::NotFound, p.display().to_string()))
//! })?;
//! let resolution = loaded.config.resolve("5001", None);
//! assert_eq!(resolution.profile.unwrap().mode.kind(), Mode::Pull);
//! assert_eq!(resolution.source, Some(ProfileSource::Application));
//!
//! // A login naming no profile is refused for that level only.
//! let resolution = loaded.config.resolve("5001", Some("Nope"));
//! assert!(resolution.rejected.is_some());
//! assert_eq!(resolution.source, Some(ProfileSource::Application));
//! # Ok::<(), presence_config::Diagnostics>(())
//! ```
#![deny(missing_docs)]

mod config;
mod diag;
pub mod fuzzing;
mod load;
pub mod options;
mod split;

pub use config::{
    Addressing, Config, DEFAULT_AVAILABLE_RANGE, ExtensionDn, Mode, PlatformSpec, Profile,
    ProfileMode, PullSettings, PushSettings, Resolution, Users,
};
pub use diag::{ConfigError, Diagnostic, Diagnostics, Location, Severity};
pub use load::{
    DEFAULT_MAX_CONFIG_SIZE, LoadOptions, Loaded, NoSections, Source, load, locate_key,
};
/// Where a DN's profile comes from (defined in `presence-model`, shared with the
/// contact-centre link).
pub use presence_model::ProfileSource;
