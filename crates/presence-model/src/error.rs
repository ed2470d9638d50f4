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

/// An error and its sources on one line, `outer: inner: innermost`, for logs and status
/// texts. A source whose text the line already holds is not repeated (an error that
/// explains its source in its own words keeps the source for programs, not for people).
///
/// ```
/// use presence_model::error_chain;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot read `map.xml`")]
/// struct Outer(#[source] std::io::Error);
///
/// let error = Outer(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"));
/// assert_eq!(error_chain(&error), "cannot read `map.xml`: no such file");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    // A chain is short; the bound only guards against a cycle.
    for _ in 0..32 {
        let Some(s) = source else {
            break;
        };
        let part = s.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod chain_tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct E {
        text: &'static str,
        #[source]
        source: Option<Box<E>>,
    }

    fn e(text: &'static str, source: Option<E>) -> E {
        E {
            text,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn sources_join_and_repeats_are_dropped() {
        let chain = e("a", Some(e("b", Some(e("c", None)))));
        assert_eq!(error_chain(&chain), "a: b: c");
        let explained = e(
            "handshake failed: unknown issuer",
            Some(e("unknown issuer", None)),
        );
        assert_eq!(error_chain(&explained), "handshake failed: unknown issuer");
        assert_eq!(error_chain(&e("alone", None)), "alone");
    }
}
