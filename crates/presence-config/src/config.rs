//! The loaded configuration and profile resolution.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::ConfigError;
use crate::diag::Location;
use presence_map::AgentPresenceMap;
use presence_model::{AggregatedStates, AvailabilityRange, DnNumber, SipUri};

/// The default of `presence-availability-range`: Online only **(decision)**.
pub const DEFAULT_AVAILABLE_RANGE: &str = "3000-4499";

/// A validated configuration: presence profiles, Extension DNs, the application's default
/// profile, and the transport / listener sections for the layers above.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) file: Arc<str>,
    pub(crate) application_profile: Option<(DnNumber, Location)>,
    pub(crate) profiles: BTreeMap<DnNumber, Profile>,
    pub(crate) extensions: Vec<ExtensionDn>,
    pub(crate) by_number: HashMap<DnNumber, usize>,
}

/// A presence profile: a VoIP Service DN with `service-type = presence-profile`.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The DN's number, which is the profile's name.
    pub name: DnNumber,
    /// Where the DN is defined.
    pub location: Location,
    /// What the profile does.
    pub mode: ProfileMode,
}

/// What a profile does.
#[derive(Debug, Clone)]
// A handful of profiles exist per configuration: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ProfileMode {
    /// SfB presence → DND (`map-presence-to-dnd = true`).
    Pull(PullSettings),
    /// Agent and device state → SfB presence.
    Push(PushSettings),
    /// Neither: the profile propagates nothing (a warning was given at load).
    None,
}

impl ProfileMode {
    /// `pull`, `push` or `none`.
    pub fn kind(&self) -> Mode {
        match self {
            ProfileMode::Pull(_) => Mode::Pull,
            ProfileMode::Push(_) => Mode::Push,
            ProfileMode::None => Mode::None,
        }
    }
}

/// The three modes, as printed and as in JSON (`push`, `pull`, `none`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Agent state → SfB.
    Push,
    /// SfB → DND.
    Pull,
    /// Nothing.
    None,
}

impl Mode {
    /// `push`, `pull` or `none`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Push => "push",
            Mode::Pull => "pull",
            Mode::None => "none",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pull profile's settings.
#[derive(Debug, Clone)]
pub struct PullSettings {
    /// The availabilities that count as available (DND off).
    pub ranges: Vec<AvailabilityRange>,
    /// Whether `ranges` is the default because the option was not set.
    pub default_ranges: bool,
}

/// A push profile's settings.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// The map file as resolved (relative paths against the configuration's folder).
    pub map_path: PathBuf,
    /// The map, validated.
    pub map: Arc<AgentPresenceMap>,
    /// `aggregated-states`, every ID of which the map defines.
    pub states: AggregatedStates,
}

/// An Extension DN.
#[derive(Debug, Clone)]
pub struct ExtensionDn {
    /// The DN number.
    pub number: DnNumber,
    /// The user's SfB address.
    pub uri: Option<SipUri>,
    /// The annex `presence-profile`, if set (always a known profile).
    pub profile: Option<DnNumber>,
    /// Where the DN is defined.
    pub location: Location,
}

/// The level a profile came from: login session > Extension DN annex > application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileSource {
    /// `presence-profile` in the login's AttributeExtensions.
    Login,
    /// `presence-profile` in the Extension DN's annex.
    Dn,
    /// `presence-profile` in the application's `[TServer]` options.
    Application,
}

impl ProfileSource {
    /// `login`, `dn` or `application`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProfileSource::Login => "login",
            ProfileSource::Dn => "dn",
            ProfileSource::Application => "application",
        }
    }
}

impl fmt::Display for ProfileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The profile in force for a DN, and where it came from.
#[derive(Debug)]
pub struct Resolution<'c> {
    /// The profile, if any level names one.
    pub profile: Option<&'c Profile>,
    /// The level that named it.
    pub source: Option<ProfileSource>,
    /// A login-level name that was refused (it names no presence profile), with the reason
    /// to give the client.
    pub rejected: Option<ConfigError>,
}

impl Config {
    /// The name of the configuration file, as given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The application-level default profile.
    pub fn application_profile(&self) -> Option<&DnNumber> {
        self.application_profile.as_ref().map(|(name, _)| name)
    }

    /// All presence profiles, by name.
    pub fn profiles(&self) -> impl ExactSizeIterator<Item = &Profile> {
        self.profiles.values()
    }

    /// One profile by name.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// All Extension DNs in file order.
    pub fn extensions(&self) -> &[ExtensionDn] {
        &self.extensions
    }

    /// One Extension DN by number.
    pub fn extension(&self, number: &str) -> Option<&ExtensionDn> {
        self.by_number.get(number).map(|&i| &self.extensions[i])
    }

    /// The profile in force for `dn`: the login's `presence-profile` if it names a profile,
    /// else the DN's annex option, else the application's. A login-level name that names
    /// no profile is refused for that level only; the reason is in
    /// [`Resolution::rejected`].
    ///
    /// A pure function of the configuration and its arguments: the engine calls it at every
    /// login and logout, and whenever a reload changes the configuration.
    pub fn resolve(&self, dn: &str, login_profile: Option<&str>) -> Resolution<'_> {
        let mut rejected = None;
        if let Some(name) = login_profile {
            match self.profiles.get(name.trim()) {
                Some(profile) => {
                    return Resolution {
                        profile: Some(profile),
                        source: Some(ProfileSource::Login),
                        rejected: None,
                    };
                }
                None => {
                    rejected = Some(ConfigError::UnknownProfile {
                        name: name.to_owned(),
                        known: self.profiles.keys().map(|k| k.to_string()).collect(),
                    });
                }
            }
        }
        let dn_level = self
            .extension(dn)
            .and_then(|ext| ext.profile.as_ref())
            .and_then(|name| self.profiles.get(name));
        let (profile, source) = match dn_level {
            Some(profile) => (Some(profile), Some(ProfileSource::Dn)),
            None => match self
                .application_profile()
                .and_then(|name| self.profiles.get(name))
            {
                Some(profile) => (Some(profile), Some(ProfileSource::Application)),
                None => (None, None),
            },
        };
        Resolution {
            profile,
            source,
            rejected,
        }
    }
}
