use thiserror::Error;

/// Why a value is not a valid presence value. Every message names the offending token and
/// says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A number was expected.
    #[error("{what} `{token}` is not valid: expected {expected}")]
    NotANumber {
        /// What was being read.
        what: &'static str,
        /// The offending text.
        token: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// An availability above 18000 (in configuration).
    #[error("availability `{value}` is out of range: expected an integer 0..=18000")]
    AvailabilityOutOfRange {
        /// The offending number.
        value: u64,
    },
    /// `N-M` with `N > M`.
    #[error(
        "availability range `{start}-{end}` is reversed: write the smaller number first (`{end}-{start}`)"
    )]
    ReversedRange {
        /// The first number given.
        start: u16,
        /// The second number given.
        end: u16,
    },
    /// Not one of the five agent states.
    #[error(
        "agent state `{token}` is not known: expected one of Logout, Ready, NotReady, ACW, Walk_Away"
    )]
    UnknownAgentState {
        /// The offending text.
        token: String,
    },
    /// Not one of the three device states.
    #[error("device state `{token}` is not known: expected one of Idle, Busy, OOS")]
    UnknownDeviceState {
        /// The offending text.
        token: String,
    },
    /// A combination index outside `1..=15`.
    #[error("state index `{token}` is not valid: expected an integer 1..=15")]
    IndexOutOfRange {
        /// The offending text.
        token: String,
    },
    /// The same combination index given twice.
    #[error("state index {index} is given more than once: each of 1..=15 may appear once")]
    DuplicateIndex {
        /// The repeated index.
        index: u8,
    },
    /// The same LCID given twice for one state.
    #[error("LCID {lcid} is given more than once: each locale may have one text per state")]
    DuplicateLcid {
        /// The repeated LCID.
        lcid: u32,
    },
    /// A bad DN number.
    #[error(
        "DN `{token}` is not valid: {reason}; expected a non-empty name without spaces, at most 255 bytes"
    )]
    InvalidDn {
        /// The offending text.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bad aggregated state ID.
    #[error(
        "aggregated state ID `{token}` is not valid: {reason}; expected a non-empty name without spaces, `,`, `=` or `:`"
    )]
    InvalidStateId {
        /// The offending text.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bad SIP URI.
    #[error("SIP URI `{token}` is not valid: {reason}; expected `sip:user@host`")]
    InvalidSipUri {
        /// The offending text.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bad platform name.
    #[error(
        "platform `{token}` is not valid: {reason}; expected a name such as `sfb`, `teams` or `simple`"
    )]
    InvalidPlatform {
        /// The offending text.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bad user principal name.
    #[error("user principal name `{token}` is not valid: {reason}; expected `user@domain`")]
    InvalidUpn {
        /// The offending text.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bad Entra object id.
    #[error(
        "Entra object id `{token}` is not valid: expected a GUID such as `6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f`"
    )]
    InvalidEntraId {
        /// The offending text (at most 64 characters of it).
        token: String,
    },
}
