//! The loaded configuration and profile resolution.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::diag::{Diagnostic, Location, Severity};
use crate::{ConfigError, Mode as ProfileKind};
use presence_map::AgentPresenceMap;
use presence_model::{
    AggregatedStates, AvailabilityRange, DnNumber, EntraId, Platform, ProfileSource, SipUri, Upn,
    UserAddress, UserId,
};

/// The default of `presence-availability-range`: Online only **(decision)**.
pub const DEFAULT_AVAILABLE_RANGE: &str = "3000-4499";

/// A validated configuration: presence profiles, Extension DNs, the application's default
/// profile, and the transport / listener sections for the layers above.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) file: Arc<str>,
    pub(crate) application_profile: Option<(DnNumber, Location)>,
    pub(crate) application_platform: Option<(Platform, Location)>,
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
    /// The user's SIP address (SfB, SIP SIMPLE; for Teams, its `user@host` is the UPN).
    pub uri: Option<SipUri>,
    /// The user's Microsoft Entra object id (Teams), when given.
    pub entra_id: Option<EntraId>,
    /// The platform the DN's user lives on, when the DN names one, and where it does.
    pub platform: Option<(Platform, Location)>,
    /// The annex `presence-profile`, if set (always a known profile).
    pub profile: Option<DnNumber>,
    /// Where the DN is defined.
    pub location: Location,
}

fn error_at(
    location: &Location,
    dn: Option<&DnNumber>,
    option: &str,
    error: ConfigError,
) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        location: location.clone(),
        dn: dn.map(ToString::to_string),
        option: Some(option.to_owned()),
        error,
    }
}

/// A platform the running bridge serves, and how it knows users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// The platform's name (the transport table's name: `sfb`, `teams`, `simple`).
    pub name: Platform,
    /// The address its users are known by.
    pub addressing: Addressing,
}

/// The kind of address a platform knows users by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// The DN's `uri` (SfB, SIP SIMPLE).
    Sip,
    /// The DN's `entra-id`, else its `uri`'s `user@host` taken as the UPN (Teams).
    Entra,
}

impl Addressing {
    fn key(self) -> &'static str {
        match self {
            Addressing::Sip => "uri",
            Addressing::Entra => "entra-id",
        }
    }

    fn needs(self) -> &'static str {
        match self {
            Addressing::Sip => "a SIP address: add `uri = \"sip:user@domain\"`",
            Addressing::Entra => {
                "a Teams user: add `uri = \"sip:user@domain\"` (its user@domain is the UPN) or `entra-id = \"<object id>\"`"
            }
        }
    }
}

/// The user of each Extension DN that has one ([`Config::users`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    by_dn: BTreeMap<DnNumber, UserId>,
}

impl Users {
    /// The DN's user.
    pub fn get(&self, dn: &str) -> Option<&UserId> {
        self.by_dn.get(dn)
    }

    /// Every DN and its user, in DN order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&DnNumber, &UserId)> {
        self.by_dn.iter()
    }

    /// How many DNs have a user.
    pub fn len(&self) -> usize {
        self.by_dn.len()
    }

    /// Whether no DN has a user.
    pub fn is_empty(&self) -> bool {
        self.by_dn.is_empty()
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

    /// The application-level default platform (`presence-platform`), if set.
    pub fn application_platform(&self) -> Option<&Platform> {
        self.application_platform.as_ref().map(|(p, _)| p)
    }

    /// The user of every Extension DN that has one, on its platform: the DN's `platform`,
    /// else the application's `presence-platform`, else the only platform when exactly one
    /// is configured. The address is the one the platform uses ([`Addressing`]).
    ///
    /// Errors (each with the DN's file:line): a platform that is not among `platforms`; a
    /// DN that gets presence (at DN or application level) but has no platform, or no
    /// address of the kind its platform needs. DNs without presence and without a usable
    /// address simply have no user.
    ///
    /// A pure function: the binary calls it at start-up and on every reload with the
    /// platforms of the running transports.
    pub fn users(&self, platforms: &[PlatformSpec]) -> Result<Users, Vec<Diagnostic>> {
        let configured: Vec<String> = platforms.iter().map(|p| p.name.to_string()).collect();
        let mut errors = Vec::new();
        let find = |name: &Platform| platforms.iter().find(|p| &p.name == name);
        let default = match &self.application_platform {
            Some((platform, location)) => match find(platform) {
                Some(spec) => Some(spec),
                None => {
                    errors.push(error_at(
                        location,
                        None,
                        "presence-platform",
                        ConfigError::UnknownPlatform {
                            name: platform.to_string(),
                            configured: configured.clone(),
                        },
                    ));
                    None
                }
            },
            None if platforms.len() == 1 => platforms.first(),
            None => None,
        };
        // Collected, then built at once: a map built in one go has full nodes, about half
        // the memory of one filled a DN at a time.
        let mut users = Vec::with_capacity(self.extensions.len());
        for ext in &self.extensions {
            let has_presence = self
                .dn_or_application_profile(Some(ext))
                .0
                .is_some_and(|p| p.mode.kind() != ProfileKind::None);
            let spec = match &ext.platform {
                Some((platform, location)) => match find(platform) {
                    Some(spec) => spec,
                    None => {
                        errors.push(error_at(
                            location,
                            Some(&ext.number),
                            "platform",
                            ConfigError::UnknownPlatform {
                                name: platform.to_string(),
                                configured: configured.clone(),
                            },
                        ));
                        continue;
                    }
                },
                None => match default {
                    Some(spec) => spec,
                    None => {
                        // With no platform at all configured there is nothing to name.
                        if has_presence && platforms.len() > 1 {
                            errors.push(error_at(
                                &ext.location,
                                Some(&ext.number),
                                "platform",
                                ConfigError::NoPlatform {
                                    dn: ext.number.to_string(),
                                    configured: configured.clone(),
                                },
                            ));
                        }
                        continue;
                    }
                },
            };
            let address = match spec.addressing {
                Addressing::Sip => ext.uri.clone().map(UserAddress::Sip),
                Addressing::Entra => match (&ext.entra_id, &ext.uri) {
                    (Some(id), _) => Some(UserAddress::EntraId(id.clone())),
                    (None, Some(uri)) => match Upn::from_sip(uri) {
                        Ok(upn) => Some(UserAddress::Upn(upn)),
                        Err(source) => {
                            errors.push(error_at(
                                &ext.location,
                                Some(&ext.number),
                                "uri",
                                ConfigError::BadAddress {
                                    dn: ext.number.to_string(),
                                    source,
                                },
                            ));
                            continue;
                        }
                    },
                    (None, None) => None,
                },
            };
            match address {
                Some(address) => {
                    users.push((ext.number.clone(), UserId::new(spec.name.clone(), address)));
                }
                None if has_presence => errors.push(error_at(
                    &ext.location,
                    Some(&ext.number),
                    spec.addressing.key(),
                    ConfigError::MissingAddress {
                        dn: ext.number.to_string(),
                        platform: spec.name.to_string(),
                        needs: spec.addressing.needs(),
                    },
                )),
                None => {}
            }
        }
        if errors.is_empty() {
            Ok(Users {
                by_dn: users.into_iter().collect(),
            })
        } else {
            Err(errors)
        }
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
        let (profile, source) = self.dn_or_application_profile(self.extension(dn));
        Resolution {
            profile,
            source,
            rejected,
        }
    }

    /// The profile of an Extension DN (`None`: a DN the configuration does not have)
    /// without a login-level name: the DN's annex option, else the application's.
    fn dn_or_application_profile(
        &self,
        ext: Option<&ExtensionDn>,
    ) -> (Option<&Profile>, Option<ProfileSource>) {
        let dn_level = ext
            .and_then(|ext| ext.profile.as_ref())
            .and_then(|name| self.profiles.get(name));
        match dn_level {
            Some(profile) => (Some(profile), Some(ProfileSource::Dn)),
            None => match self
                .application_profile()
                .and_then(|name| self.profiles.get(name))
            {
                Some(profile) => (Some(profile), Some(ProfileSource::Application)),
                None => (None, None),
            },
        }
    }
}
