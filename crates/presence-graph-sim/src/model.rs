//! The values of Graph presence: availabilities, the pairs each API accepts, and
//! application permissions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::GraphSimError;

/// A presence availability, as Graph names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Availability {
    /// `Available`.
    Available,
    /// `AvailableIdle`.
    AvailableIdle,
    /// `Away`.
    Away,
    /// `BeRightBack`.
    BeRightBack,
    /// `Busy`.
    Busy,
    /// `BusyIdle`.
    BusyIdle,
    /// `DoNotDisturb`.
    DoNotDisturb,
    /// `Offline`.
    Offline,
    /// `PresenceUnknown`.
    PresenceUnknown,
}

impl Availability {
    /// Every availability.
    pub const ALL: [Availability; 9] = [
        Availability::Available,
        Availability::AvailableIdle,
        Availability::Away,
        Availability::BeRightBack,
        Availability::Busy,
        Availability::BusyIdle,
        Availability::DoNotDisturb,
        Availability::Offline,
        Availability::PresenceUnknown,
    ];

    /// The name Graph uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "Available",
            Availability::AvailableIdle => "AvailableIdle",
            Availability::Away => "Away",
            Availability::BeRightBack => "BeRightBack",
            Availability::Busy => "Busy",
            Availability::BusyIdle => "BusyIdle",
            Availability::DoNotDisturb => "DoNotDisturb",
            Availability::Offline => "Offline",
            Availability::PresenceUnknown => "PresenceUnknown",
        }
    }

    /// The availability named `text`, case-insensitively.
    pub fn from_name(text: &str) -> Option<Availability> {
        Availability::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(text))
    }

    /// The simulator's aggregation precedence (higher wins): DoNotDisturb > Busy >
    /// BusyIdle > Available > AvailableIdle > BeRightBack > Away > Offline >
    /// PresenceUnknown.
    pub fn precedence(self) -> u8 {
        match self {
            Availability::DoNotDisturb => 8,
            Availability::Busy => 7,
            Availability::BusyIdle => 6,
            Availability::Available => 5,
            Availability::AvailableIdle => 4,
            Availability::BeRightBack => 3,
            Availability::Away => 2,
            Availability::Offline => 1,
            Availability::PresenceUnknown => 0,
        }
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Availability {
    type Err = GraphSimError;

    fn from_str(text: &str) -> Result<Availability, GraphSimError> {
        Availability::from_name(text)
            .ok_or_else(|| GraphSimError::UnknownAvailability(text.chars().take(64).collect()))
    }
}

/// The (availability, activity) pairs `setPresence` accepts.
pub const SESSION_PAIRS: [(Availability, &str); 5] = [
    (Availability::Available, "Available"),
    (Availability::Busy, "InACall"),
    (Availability::Busy, "InAConferenceCall"),
    (Availability::Away, "Away"),
    (Availability::DoNotDisturb, "Presenting"),
];

/// The (availability, activity) pairs `setUserPreferredPresence` accepts.
pub const PREFERRED_PAIRS: [(Availability, &str); 6] = [
    (Availability::Available, "Available"),
    (Availability::Busy, "Busy"),
    (Availability::DoNotDisturb, "DoNotDisturb"),
    (Availability::BeRightBack, "BeRightBack"),
    (Availability::Away, "Away"),
    (Availability::Offline, "OffWork"),
];

/// The pair of `pairs` that `availability` and `activity` name (case-insensitively), in
/// its canonical spelling.
pub(crate) fn find_pair(
    pairs: &[(Availability, &'static str)],
    availability: &str,
    activity: &str,
) -> Option<(Availability, &'static str)> {
    pairs.iter().copied().find(|(a, b)| {
        a.as_str().eq_ignore_ascii_case(availability) && b.eq_ignore_ascii_case(activity)
    })
}

/// An application permission (app role) of Microsoft Graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// `Presence.Read.All`: read every user's presence.
    #[serde(rename = "Presence.Read.All")]
    PresenceReadAll,
    /// `Presence.ReadWrite.All`: read and write every user's presence.
    #[serde(rename = "Presence.ReadWrite.All")]
    PresenceReadWriteAll,
    /// `User.Read.All`: read every user's profile.
    #[serde(rename = "User.Read.All")]
    UserReadAll,
}

impl Permission {
    /// Every permission the simulator knows.
    pub const ALL: [Permission; 3] = [
        Permission::PresenceReadAll,
        Permission::PresenceReadWriteAll,
        Permission::UserReadAll,
    ];

    /// The name Graph uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::PresenceReadAll => "Presence.Read.All",
            Permission::PresenceReadWriteAll => "Presence.ReadWrite.All",
            Permission::UserReadAll => "User.Read.All",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = GraphSimError;

    fn from_str(text: &str) -> Result<Permission, GraphSimError> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| GraphSimError::UnknownPermission(text.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for availability in Availability::ALL {
            assert_eq!(
                availability.as_str().parse::<Availability>().ok(),
                Some(availability)
            );
            assert_eq!(
                serde_json::to_string(&availability).unwrap(),
                format!("\"{availability}\"")
            );
        }
        assert_eq!(
            Availability::from_name("donotdisturb"),
            Some(Availability::DoNotDisturb)
        );
        assert!("Sleepy".parse::<Availability>().is_err());
        for permission in Permission::ALL {
            assert_eq!(
                permission.as_str().parse::<Permission>().ok(),
                Some(permission)
            );
            assert_eq!(
                serde_json::to_string(&permission).unwrap(),
                format!("\"{permission}\"")
            );
        }
        assert_eq!(
            find_pair(&SESSION_PAIRS, "busy", "inacall"),
            Some((Availability::Busy, "InACall"))
        );
        assert_eq!(find_pair(&SESSION_PAIRS, "Busy", "Busy"), None);
        assert_eq!(
            find_pair(&PREFERRED_PAIRS, "Offline", "OffWork"),
            Some((Availability::Offline, "OffWork"))
        );
    }
}
