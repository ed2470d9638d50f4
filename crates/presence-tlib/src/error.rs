//! Error codes sent to clients and the errors of the codec.

use std::fmt;

use presence_model::ModelError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::ServerEvent;

/// The `errorCode` of an `EventError`: a stable, documented set of numbers.
///
/// The numbers never change meaning; new codes may be added (hence `#[non_exhaustive]`).
///
/// | code | name | meaning |
/// |---:|---|---|
/// | 1 | `MalformedJson` | the frame is not one JSON object (syntax error, an array, a binary frame, ...) |
/// | 2 | `UnknownMessage` | `message` names no request this link accepts |
/// | 3 | `InvalidAttribute` | a required attribute is missing or an attribute has a wrong type or value |
/// | 4 | `MessageTooLarge` | the frame is larger than the link's `max_message_bytes` |
/// | 5 | `RateLimited` | the connection sends faster than its rate limit; the message was dropped |
/// | 6 | `Unauthorized` | the client may not do this |
/// | 7 | `UnknownDn` | `thisDN` is not a DN of the configuration, or the client has not registered it |
/// | 8 | `InvalidState` | the request does not fit the DN's state (agent request while logged out, ...) |
/// | 9 | `ServiceUnavailable` | the bridge cannot serve the request now (shutting down, engine gone) |
/// | 10 | `InternalError` | a fault of the bridge itself |
///
/// ```
/// use presence_tlib::ErrorCode;
/// assert_eq!(ErrorCode::InvalidAttribute.as_u32(), 3);
/// assert_eq!(ErrorCode::from_u32(8), Some(ErrorCode::InvalidState));
/// assert_eq!(serde_json::to_string(&ErrorCode::RateLimited).unwrap(), "5");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 1: the frame is not one JSON object.
    MalformedJson,
    /// 2: `message` names no request this link accepts.
    UnknownMessage,
    /// 3: a required attribute is missing, or an attribute has a wrong type or value.
    InvalidAttribute,
    /// 4: the frame is larger than the link's limit.
    MessageTooLarge,
    /// 5: over the connection's rate limit; the message was dropped.
    RateLimited,
    /// 6: the client may not do this.
    Unauthorized,
    /// 7: `thisDN` is unknown to the bridge or not registered by this client.
    UnknownDn,
    /// 8: the request does not fit the DN's current state.
    InvalidState,
    /// 9: the bridge cannot serve the request now.
    ServiceUnavailable,
    /// 10: a fault of the bridge itself.
    InternalError,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::MalformedJson,
        ErrorCode::UnknownMessage,
        ErrorCode::InvalidAttribute,
        ErrorCode::MessageTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::UnknownDn,
        ErrorCode::InvalidState,
        ErrorCode::ServiceUnavailable,
        ErrorCode::InternalError,
    ];

    /// The number sent as `errorCode`.
    pub const fn as_u32(self) -> u32 {
        match self {
            ErrorCode::MalformedJson => 1,
            ErrorCode::UnknownMessage => 2,
            ErrorCode::InvalidAttribute => 3,
            ErrorCode::MessageTooLarge => 4,
            ErrorCode::RateLimited => 5,
            ErrorCode::Unauthorized => 6,
            ErrorCode::UnknownDn => 7,
            ErrorCode::InvalidState => 8,
            ErrorCode::ServiceUnavailable => 9,
            ErrorCode::InternalError => 10,
        }
    }

    /// The code with this number, if any.
    pub fn from_u32(value: u32) -> Option<ErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_u32() == value)
    }

    /// The code's name (`MalformedJson`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "MalformedJson",
            ErrorCode::UnknownMessage => "UnknownMessage",
            ErrorCode::InvalidAttribute => "InvalidAttribute",
            ErrorCode::MessageTooLarge => "MessageTooLarge",
            ErrorCode::RateLimited => "RateLimited",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::UnknownDn => "UnknownDn",
            ErrorCode::InvalidState => "InvalidState",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::InternalError => "InternalError",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_u32(), self.name())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.as_u32())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u32::deserialize(deserializer)?;
        ErrorCode::from_u32(value).ok_or_else(|| {
            serde::de::Error::custom(MessageErrorKind::UnknownErrorCode {
                value: u64::from(value),
            })
        })
    }
}

/// What is wrong with a message: the crate's error enum. Every text names the offending
/// attribute or value and says what would be valid.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MessageErrorKind {
    /// The text is longer than the codec accepts.
    #[error(
        "the message is {size} bytes, more than the limit of {max} bytes: send smaller messages (shorten `extensions`)"
    )]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The text is not JSON.
    #[error(
        "malformed JSON at line {line}, column {column}: {}; expected one JSON object such as {EXAMPLE}",
        json_reason(source)
    )]
    MalformedJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Valid JSON, but not an object.
    #[error("a message must be a JSON object such as {EXAMPLE}, not {found}")]
    NotAnObject {
        /// What was found instead (`an array`, `the number 7`, ...).
        found: String,
    },
    /// A binary WebSocket frame (used by the link, which reads text frames only).
    #[error("binary frames are not accepted: send each message as one JSON object in a text frame")]
    BinaryFrame,
    /// `message` names nothing this side accepts.
    #[error("`message` value {name:?} is not known{hint}: expected one of {expected}")]
    UnknownMessage {
        /// The name given.
        name: String,
        /// A hint (`; did you mean ...?`), possibly empty.
        hint: String,
        /// The valid names, comma-separated.
        expected: &'static str,
    },
    /// A required attribute is absent (or `null`).
    #[error("`{attribute}` is missing: every {message} needs {need}{hint}")]
    MissingAttribute {
        /// The attribute's T-Library name.
        attribute: &'static str,
        /// The message that needs it (`RequestAgentLogin`, or `message` when even the name is
        /// missing).
        message: &'static str,
        /// What it holds (`the DN`, ...).
        need: &'static str,
        /// A hint (` (found `thisdn`: attribute names are case-sensitive)`), possibly empty.
        hint: String,
    },
    /// An attribute has the wrong JSON type.
    #[error("`{attribute}` must be {expected}, not {found}")]
    WrongType {
        /// The attribute's name (`extensions.presence-profile` for a key of `extensions`).
        attribute: String,
        /// What would be valid.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// A DN attribute is not a valid DN number.
    #[error("`{attribute}` is not valid: {source}")]
    InvalidDn {
        /// The attribute's name.
        attribute: &'static str,
        /// Why the DN is not valid.
        #[source]
        source: ModelError,
    },
    /// An identifier attribute (`agentID`, `connID`, a key of `extensions`) is not valid.
    #[error("`{attribute}` value {value:?} is not valid: {reason}; expected {expected}")]
    InvalidValue {
        /// The attribute's name.
        attribute: String,
        /// The offending value (shortened when long).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
        /// What would be valid.
        expected: &'static str,
    },
    /// A work mode name that T-Library does not define.
    #[error("`workmode` value {token:?} is not known: expected one of {} (any case)", crate::WorkMode::NAMES.join(", "))]
    UnknownWorkMode {
        /// The name given.
        token: String,
    },
    /// An `errorCode` that is not one of [`ErrorCode`]'s numbers.
    #[error("`errorCode` {value} is not known: expected one of 1..=10")]
    UnknownErrorCode {
        /// The number given.
        value: u64,
    },
}

/// serde_json's message without the position it appends (` at line L column C`), which the
/// error text already gives.
fn json_reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&position) {
        Some(reason) => reason.to_owned(),
        None => text,
    }
}

/// The example every "expected one JSON object" message shows.
const EXAMPLE: &str = r#"{"message":"RegisterAddress","referenceID":1,"thisDN":"5001"}"#;

impl MessageErrorKind {
    /// The `errorCode` a client gets for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            MessageErrorKind::TooLarge { .. } => ErrorCode::MessageTooLarge,
            MessageErrorKind::MalformedJson { .. }
            | MessageErrorKind::NotAnObject { .. }
            | MessageErrorKind::BinaryFrame => ErrorCode::MalformedJson,
            MessageErrorKind::UnknownMessage { .. } => ErrorCode::UnknownMessage,
            MessageErrorKind::MissingAttribute { .. }
            | MessageErrorKind::WrongType { .. }
            | MessageErrorKind::InvalidDn { .. }
            | MessageErrorKind::InvalidValue { .. }
            | MessageErrorKind::UnknownWorkMode { .. }
            | MessageErrorKind::UnknownErrorCode { .. } => ErrorCode::InvalidAttribute,
        }
    }
}

/// Why a received text is not a valid message: what is wrong ([`MessageError::kind`]), the
/// [`ErrorCode`] to answer with, and the `referenceID` when one could be read, so that the
/// answer can echo it ([`MessageError::to_event`]).
///
/// ```
/// use presence_tlib::{ClientMessage, ErrorCode};
/// let err = ClientMessage::from_json(r#"{"message":"RequestAgentLogin","referenceID":9,"agentID":"a1"}"#)
///     .unwrap_err();
/// assert_eq!(err.reference_id(), Some(9));
/// assert_eq!(err.code(), ErrorCode::InvalidAttribute);
/// assert!(err.to_string().starts_with("`thisDN` is missing: every RequestAgentLogin needs the DN"));
/// ```
#[derive(Debug)]
pub struct MessageError {
    reference_id: Option<u64>,
    kind: MessageErrorKind,
}

impl MessageError {
    /// An error with the `referenceID` read so far.
    pub fn new(reference_id: Option<u64>, kind: MessageErrorKind) -> Self {
        MessageError { reference_id, kind }
    }

    /// The error for a binary WebSocket frame.
    pub fn binary_frame() -> Self {
        MessageError::new(None, MessageErrorKind::BinaryFrame)
    }

    /// The error for a frame of `size` bytes over a limit of `max` bytes.
    pub fn too_large(size: usize, max: usize) -> Self {
        MessageError::new(None, MessageErrorKind::TooLarge { size, max })
    }

    /// The message's `referenceID`, when it could be read.
    pub fn reference_id(&self) -> Option<u64> {
        self.reference_id
    }

    /// The `errorCode` to answer with.
    pub fn code(&self) -> ErrorCode {
        self.kind.code()
    }

    /// What is wrong.
    pub fn kind(&self) -> &MessageErrorKind {
        &self.kind
    }

    /// The `EventError` that answers the message: echoes the `referenceID` when known, carries
    /// [`code`](Self::code) and this error's text.
    pub fn to_event(&self) -> ServerEvent {
        ServerEvent::EventError {
            reference_id: self.reference_id,
            error_code: self.code(),
            error_message: self.kind.to_string(),
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_distinct() {
        let numbers: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.as_u32()).collect();
        assert_eq!(numbers, (1..=10).collect::<Vec<_>>());
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u32(code.as_u32()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, code.as_u32().to_string());
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        assert_eq!(ErrorCode::from_u32(0), None);
        assert_eq!(ErrorCode::from_u32(11), None);
        let err = serde_json::from_str::<ErrorCode>("42")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`errorCode` 42 is not known"), "{err}");
        assert_eq!(ErrorCode::UnknownDn.to_string(), "7 (UnknownDn)");
    }
}
