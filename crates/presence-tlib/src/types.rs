//! Attribute value types: work modes, agent and connection IDs, extensions.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use presence_model::AgentState;

use crate::MessageErrorKind;

/// A T-Library `AgentWorkMode`: the `workmode` attribute of `RequestAgentLogin` and
/// `RequestAgentNotReady`.
///
/// Names are accepted in any case and with or without T-Library's `Agent` prefix
/// (`AfterCallWork`, `aftercallwork`, `AgentAfterCallWork`) **(decision)**; they are written
/// as in [`WorkMode::NAMES`].
///
/// ```
/// use presence_model::AgentState;
/// use presence_tlib::WorkMode;
/// let mode: WorkMode = "aftercallwork".parse()?;
/// assert_eq!(mode, WorkMode::AfterCallWork);
/// assert_eq!(mode.agent_state(), AgentState::Acw);
/// assert_eq!(WorkMode::WalkAway.agent_state(), AgentState::WalkAway);
/// assert_eq!(WorkMode::AuxWork.agent_state(), AgentState::NotReady);
/// assert!("Lunch".parse::<WorkMode>().unwrap_err().to_string().contains("AfterCallWork"));
/// # Ok::<(), presence_tlib::MessageErrorKind>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkMode {
    /// `AgentWorkModeUnknown`.
    Unknown,
    /// `AgentAutoIn`.
    AutoIn,
    /// `AgentManualIn`.
    ManualIn,
    /// `AgentAfterCallWork`: not ready, wrapping up the last call (the agent state `ACW`).
    AfterCallWork,
    /// `AgentAuxWork`.
    AuxWork,
    /// `AgentNoCallDisconnect`.
    NoCallDisconnect,
    /// `AgentWalkAway`: not ready, away from the desk (the agent state `Walk_Away`).
    WalkAway,
    /// `AgentReturnBack`.
    ReturnBack,
}

impl WorkMode {
    /// Every work mode.
    pub const ALL: [WorkMode; 8] = [
        WorkMode::Unknown,
        WorkMode::AutoIn,
        WorkMode::ManualIn,
        WorkMode::AfterCallWork,
        WorkMode::AuxWork,
        WorkMode::NoCallDisconnect,
        WorkMode::WalkAway,
        WorkMode::ReturnBack,
    ];

    /// The names, in the order of [`WorkMode::ALL`].
    pub const NAMES: [&'static str; 8] = [
        "Unknown",
        "AutoIn",
        "ManualIn",
        "AfterCallWork",
        "AuxWork",
        "NoCallDisconnect",
        "WalkAway",
        "ReturnBack",
    ];

    /// The name as written on the wire (`AfterCallWork`).
    pub const fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The agent state of an agent that is not ready in this work mode:
    /// `AfterCallWork` → `ACW`, `WalkAway` → `Walk_Away`, every other mode → `NotReady`.
    pub const fn agent_state(self) -> AgentState {
        match self {
            WorkMode::AfterCallWork => AgentState::Acw,
            WorkMode::WalkAway => AgentState::WalkAway,
            _ => AgentState::NotReady,
        }
    }
}

impl fmt::Display for WorkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WorkMode {
    type Err = MessageErrorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let find = |name: &str| {
            WorkMode::ALL
                .into_iter()
                .find(|mode| mode.name().eq_ignore_ascii_case(name))
        };
        let prefixed = s
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("agent"))
            .and_then(|_| s.get(5..));
        find(s)
            .or_else(|| prefixed.and_then(find))
            .or_else(|| {
                // T-Library's own constant for Unknown is `AgentWorkModeUnknown`.
                s.eq_ignore_ascii_case("AgentWorkModeUnknown")
                    .then_some(WorkMode::Unknown)
            })
            .ok_or_else(|| MessageErrorKind::UnknownWorkMode { token: shorten(s) })
    }
}

/// Checks an identifier: non-empty, at most `max` bytes, no spaces or control characters.
fn check_id(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() {
        Err("it is empty")
    } else if s.len() > max {
        Err("it is too long")
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("it contains a space or a control character")
    } else {
        Ok(())
    }
}

/// A contact-centre identifier's checks: non-empty, at most `max` bytes, no spaces or
/// control characters; the error names the attribute and what it should be.
fn checked<T>(
    s: &str,
    max: usize,
    attribute: &str,
    expected: &'static str,
    make: impl FnOnce(Arc<str>) -> T,
) -> Result<T, MessageErrorKind> {
    check_id(s, max)
        .map(|()| make(Arc::from(s)))
        .map_err(|reason| MessageErrorKind::InvalidValue {
            attribute: attribute.to_owned(),
            value: shorten(s),
            reason,
            expected,
        })
}

presence_model::string_id! {
    /// An agent's login ID (`agentID`): non-empty, at most 255 bytes, no spaces or control
    /// characters. A JSON number is accepted and kept as its decimal text.
    AgentId, MessageErrorKind
}

impl AgentId {
    /// The longest value accepted, in bytes.
    pub const MAX_LEN: usize = 255;

    /// A value, validated.
    pub fn new(s: &str) -> Result<Self, MessageErrorKind> {
        checked(
            s,
            Self::MAX_LEN,
            "agentID",
            "the agent's login ID: non-empty, no spaces, at most 255 bytes",
            AgentId,
        )
    }
}

presence_model::string_id! {
    /// A call's connection ID (`connID`, T-Library's `ConnID`, usually 16 hex digits such as
    /// `006e02b1a8c5b001`): non-empty, at most 64 bytes, no spaces or control characters. A
    /// JSON number is accepted and kept as its decimal text.
    ConnId, MessageErrorKind
}

impl ConnId {
    /// The longest value accepted, in bytes.
    pub const MAX_LEN: usize = 64;

    /// A value, validated.
    pub fn new(s: &str) -> Result<Self, MessageErrorKind> {
        checked(
            s,
            Self::MAX_LEN,
            "connID",
            "the call's connection ID (e.g. \"006e02b1a8c5b001\"): non-empty, no spaces, at most 64 bytes",
            ConnId,
        )
    }
}

/// Key names used in `extensions` (T-Library's AttributeExtensions).
pub mod ext {
    /// Request and `EventAgentLogin`: the presence profile for the login session; in the
    /// event, the profile that applies to the DN (absent when none does).
    pub const PRESENCE_PROFILE: &str = "presence-profile";
    /// `EventAgentLogin`: which level the applying profile comes from
    /// ([`ProfileSource`](crate::ProfileSource)), or [`NO_PROFILE_SOURCE`] when no level
    /// names one (the DN propagates nothing).
    pub const PRESENCE_PROFILE_SOURCE: &str = "presence-profile-source";
    /// The value of [`PRESENCE_PROFILE_SOURCE`] when no level names a profile.
    pub const NO_PROFILE_SOURCE: &str = "none";
    /// `EventAgentLogin`: why the login session's `presence-profile` was refused (the login
    /// still succeeded; the next level applies).
    pub const PRESENCE_PROFILE_ERROR: &str = "presence-profile-error";
    /// `EventRegistered`: the DN's current DND state, `on` or `off`.
    pub const DND: &str = "dnd";
    /// `EventRegistered` from a bridge of a hot-standby group (`[ha]`): `leader` or
    /// `standby`, the answering node's role. Absent from a bridge that runs alone.
    pub const HA_ROLE: &str = "ha-role";
    /// `EventDNDOn`/`EventDNDOff`: the SfB availability number as received.
    pub const AVAILABILITY: &str = "availability";
    /// `EventDNDOn`/`EventDNDOff`: the SfB activity text, when there is one.
    pub const ACTIVITY: &str = "activity";
    /// `EventDNDOn`/`EventDNDOff`: the presence profile that mapped the presence.
    pub const PROFILE: &str = "profile";
}

/// A string → string map: T-Library's AttributeExtensions (`extensions`).
///
/// On input the values may be JSON strings, numbers or booleans (kept as their text)
/// **(decision)**; `null`, arrays and objects are errors naming the key. Keys are kept as
/// given (case-sensitive); see [`ext`] for the keys the bridge reads and writes.
///
/// ```
/// use presence_tlib::{Extensions, ext};
/// let mut extensions = Extensions::new();
/// extensions.insert(ext::PRESENCE_PROFILE, "PushProfile");
/// assert_eq!(extensions.presence_profile(), Some("PushProfile"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions(BTreeMap<String, String>);

impl Extensions {
    /// An empty map.
    pub fn new() -> Self {
        Extensions(BTreeMap::new())
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Sets a key, returning the value it replaces.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }

    /// Removes a key, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// The `presence-profile` key.
    pub fn presence_profile(&self) -> Option<&str> {
        self.get(ext::PRESENCE_PROFILE)
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Extensions {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Extensions(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// A value shortened to at most 60 characters for an error text (on a char boundary).
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_modes_parse_in_any_case_and_with_prefix() {
        for mode in WorkMode::ALL {
            assert_eq!(mode.name().parse::<WorkMode>().unwrap(), mode);
            assert_eq!(
                mode.name()
                    .to_ascii_uppercase()
                    .parse::<WorkMode>()
                    .unwrap(),
                mode
            );
            assert_eq!(
                format!("Agent{}", mode.name()).parse::<WorkMode>().unwrap(),
                mode
            );
        }
        assert_eq!(
            "AgentWorkModeUnknown".parse::<WorkMode>().unwrap(),
            WorkMode::Unknown
        );
        for bad in ["", "Agent", "Lunch", "After Call Work", "é", "agentéé"] {
            let err = bad.parse::<WorkMode>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(
                err.contains("Unknown, AutoIn, ManualIn, AfterCallWork, AuxWork, NoCallDisconnect, WalkAway, ReturnBack"),
                "{err}"
            );
        }
    }

    #[test]
    fn work_mode_states() {
        let states: Vec<AgentState> = WorkMode::ALL.iter().map(|m| m.agent_state()).collect();
        use AgentState::*;
        assert_eq!(
            states,
            [
                NotReady, NotReady, NotReady, Acw, NotReady, NotReady, WalkAway, NotReady
            ]
        );
    }

    #[test]
    fn ids() {
        assert_eq!(AgentId::new("agent1").unwrap().as_str(), "agent1");
        assert!(ConnId::new("006e02b1a8c5b001").is_ok());
        for bad in ["", "a b", "a\u{0}", &"x".repeat(65)] {
            let err = ConnId::new(bad).unwrap_err().to_string();
            assert!(err.starts_with("`connID` value"), "{err}");
        }
        assert!(AgentId::new(&"x".repeat(255)).is_ok());
        assert!(AgentId::new(&"x".repeat(256)).is_err());
    }

    #[test]
    fn shorten_is_char_safe() {
        assert_eq!(shorten("abc"), "abc");
        let long = "é".repeat(100);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), 61);
    }
}
