//! Agent states, device states, their 15 combinations and DND.

use std::fmt;
use std::str::FromStr;

use crate::ModelError;

/// The five agent states of the seed's table, in its order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgentState {
    /// Before `EventAgentLogin`, after `EventAgentLogout`.
    #[default]
    Logout,
    /// `EventAgentReady`.
    Ready,
    /// `EventAgentNotReady` with a work mode other than `AfterCallWork` and `WalkAway`.
    NotReady,
    /// `EventAgentNotReady` with work mode `AfterCallWork`.
    Acw,
    /// `EventAgentNotReady` with work mode `WalkAway`.
    WalkAway,
}

impl AgentState {
    /// Every agent state in the seed's order (the order of the index formula).
    pub const ALL: [AgentState; 5] = [
        AgentState::Logout,
        AgentState::Ready,
        AgentState::NotReady,
        AgentState::Acw,
        AgentState::WalkAway,
    ];

    /// The seed's spelling: `Logout`, `Ready`, `NotReady`, `ACW`, `Walk_Away`.
    pub const fn name(self) -> &'static str {
        match self {
            AgentState::Logout => "Logout",
            AgentState::Ready => "Ready",
            AgentState::NotReady => "NotReady",
            AgentState::Acw => "ACW",
            AgentState::WalkAway => "Walk_Away",
        }
    }

    const fn ordinal(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AgentState {
    type Err = ModelError;

    /// Parses the seed's spelling in any case (`walk_away`, `acw`, `NOTREADY`, ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentState::ALL
            .into_iter()
            .find(|state| state.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ModelError::UnknownAgentState {
                token: s.to_owned(),
            })
    }
}

/// The three device states of the seed's table, in its order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceState {
    /// No call on the DN and in service.
    #[default]
    Idle,
    /// At least one call on the DN (ringing, dialing, established, held).
    Busy,
    /// Between `EventDNOutOfService` and `EventDNBackInService`; wins over Busy.
    Oos,
}

impl DeviceState {
    /// Every device state in the seed's order (the major order of the index formula).
    pub const ALL: [DeviceState; 3] = [DeviceState::Idle, DeviceState::Busy, DeviceState::Oos];

    /// The seed's spelling: `Idle`, `Busy`, `OOS`.
    pub const fn name(self) -> &'static str {
        match self {
            DeviceState::Idle => "Idle",
            DeviceState::Busy => "Busy",
            DeviceState::Oos => "OOS",
        }
    }

    const fn ordinal(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceState {
    type Err = ModelError;

    /// Parses `Idle`, `Busy` or `OOS` in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceState::ALL
            .into_iter()
            .find(|state| state.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ModelError::UnknownDeviceState {
                token: s.to_owned(),
            })
    }
}

/// The index `1..=15` of an (agent state, device state) combination, numbered device-major
/// exactly as the seed's table: `index = 5 × device + agent + 1`.
///
/// ```
/// use presence_model::{AgentState, DeviceState, StateIndex};
/// let i = StateIndex::of(AgentState::Ready, DeviceState::Busy);
/// assert_eq!(i.get(), 7);
/// assert_eq!(i.agent(), AgentState::Ready);
/// assert_eq!(i.device(), DeviceState::Busy);
/// assert_eq!(StateIndex::ALL.len(), 15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateIndex(u8);

impl StateIndex {
    /// The number of combinations.
    pub const COUNT: usize = 15;

    /// All 15 indexes, 1 first.
    pub const ALL: [StateIndex; 15] = {
        let mut all = [StateIndex(1); 15];
        let mut i = 0;
        while i < 15 {
            all[i] = StateIndex(i as u8 + 1);
            i += 1;
        }
        all
    };

    /// The index of a combination.
    pub const fn of(agent: AgentState, device: DeviceState) -> Self {
        StateIndex(5 * device.ordinal() + agent.ordinal() + 1)
    }

    /// An index from its number; outside `1..=15` is an error.
    pub fn new(n: u64) -> Result<Self, ModelError> {
        if (1..=15).contains(&n) {
            Ok(StateIndex(n as u8))
        } else {
            Err(ModelError::IndexOutOfRange {
                token: n.to_string(),
            })
        }
    }

    /// The number, `1..=15`.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The number minus one, `0..15`: a position in a 15-element table.
    pub const fn slot(self) -> usize {
        self.0 as usize - 1
    }

    /// The agent state of the combination.
    pub const fn agent(self) -> AgentState {
        AgentState::ALL[(self.0 as usize - 1) % 5]
    }

    /// The device state of the combination.
    pub const fn device(self) -> DeviceState {
        DeviceState::ALL[(self.0 as usize - 1) / 5]
    }
}

impl fmt::Display for StateIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for StateIndex {
    type Err = ModelError;

    /// Parses a decimal `1..=15` (surrounding spaces allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match crate::availability::parse_decimal(s.trim()) {
            Some(n) if (1..=15).contains(&n) => Ok(StateIndex(n as u8)),
            _ => Err(ModelError::IndexOutOfRange {
                token: s.trim().to_owned(),
            }),
        }
    }
}

/// The Do-Not-Disturb state of a DN, as the pull mode reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DndState {
    /// Unavailable: the contact centre gets `EventDNDOn`.
    On,
    /// Available: the contact centre gets `EventDNDOff`.
    Off,
}

impl DndState {
    /// `"on"` or `"off"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DndState::On => "on",
            DndState::Off => "off",
        }
    }

    /// The T-Library event that announces this state: `EventDNDOn` or `EventDNDOff`.
    pub const fn event_name(self) -> &'static str {
        match self {
            DndState::On => "EventDNDOn",
            DndState::Off => "EventDNDOff",
        }
    }
}

impl fmt::Display for DndState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's table, verbatim.
    const SEED_TABLE: [(u8, &str, &str); 15] = [
        (1, "Logout", "Idle"),
        (2, "Ready", "Idle"),
        (3, "NotReady", "Idle"),
        (4, "ACW", "Idle"),
        (5, "Walk_Away", "Idle"),
        (6, "Logout", "Busy"),
        (7, "Ready", "Busy"),
        (8, "NotReady", "Busy"),
        (9, "ACW", "Busy"),
        (10, "Walk_Away", "Busy"),
        (11, "Logout", "OOS"),
        (12, "Ready", "OOS"),
        (13, "NotReady", "OOS"),
        (14, "ACW", "OOS"),
        (15, "Walk_Away", "OOS"),
    ];

    #[test]
    fn numbering_is_the_seed_table_in_both_directions() {
        for (n, agent, device) in SEED_TABLE {
            let agent: AgentState = agent.parse().unwrap();
            let device: DeviceState = device.parse().unwrap();
            let index = StateIndex::of(agent, device);
            assert_eq!(index.get(), n);
            assert_eq!((index.agent(), index.device()), (agent, device));
            assert_eq!(StateIndex::new(u64::from(n)).unwrap(), index);
            assert_eq!(StateIndex::ALL[index.slot()], index);
        }
    }

    #[test]
    fn states_parse_in_any_case() {
        assert_eq!(
            "walk_away".parse::<AgentState>().unwrap(),
            AgentState::WalkAway
        );
        assert_eq!("acw".parse::<AgentState>().unwrap(), AgentState::Acw);
        assert_eq!("oos".parse::<DeviceState>().unwrap(), DeviceState::Oos);
        let err = "Lunch".parse::<AgentState>().unwrap_err().to_string();
        assert!(
            err.contains("`Lunch`") && err.contains("Walk_Away"),
            "{err}"
        );
        let err = "Ringing".parse::<DeviceState>().unwrap_err().to_string();
        assert!(err.contains("`Ringing`") && err.contains("OOS"), "{err}");
    }

    #[test]
    fn index_bounds() {
        for bad in ["0", "16", "x", "", "-1", "1.5"] {
            let err = bad.parse::<StateIndex>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
            assert!(err.contains("1..=15"), "{err}");
        }
        assert!(StateIndex::new(0).is_err());
        assert!(StateIndex::new(16).is_err());
    }
}
