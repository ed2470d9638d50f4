//! Reading T-Library attributes out of a parsed JSON object, with errors that name the
//! attribute, what was found and what would be valid. Shared by both directions.

use presence_model::DnNumber;
use serde_json::{Map, Value};

use crate::types::shorten;
use crate::{AgentId, ConnId, Extensions, MessageError, MessageErrorKind, WorkMode};

/// The largest text [`parse_object`] accepts, in bytes (1 MiB). The link's own limit
/// (`max_message_bytes`) is lower.
pub(crate) const MAX_JSON_BYTES: usize = 1 << 20;

/// Attribute names.
pub(crate) mod key {
    pub(crate) const MESSAGE: &str = "message";
    pub(crate) const REFERENCE_ID: &str = "referenceID";
    pub(crate) const THIS_DN: &str = "thisDN";
    pub(crate) const AGENT_ID: &str = "agentID";
    pub(crate) const WORKMODE: &str = "workmode";
    pub(crate) const CONN_ID: &str = "connID";
    pub(crate) const EXTENSIONS: &str = "extensions";
    pub(crate) const ERROR_CODE: &str = "errorCode";
    pub(crate) const ERROR_MESSAGE: &str = "errorMessage";
}

/// Parses text into a JSON object, enforcing [`MAX_JSON_BYTES`].
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, MessageError> {
    if text.len() > MAX_JSON_BYTES {
        return Err(MessageError::too_large(text.len(), MAX_JSON_BYTES));
    }
    let value: Value = serde_json::from_str(text).map_err(|source| {
        MessageError::new(
            None,
            MessageErrorKind::MalformedJson {
                line: source.line(),
                column: source.column(),
                source,
            },
        )
    })?;
    into_object(value)
}

/// The object of a parsed value.
pub(crate) fn into_object(value: Value) -> Result<Map<String, Value>, MessageError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(MessageError::new(
            None,
            MessageErrorKind::NotAnObject {
                found: describe(&other),
            },
        )),
    }
}

/// Describes a JSON value for an error text: `null`, `the string "7"`, `an array`, ...
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {}", shorten(&n.to_string())),
        Value::String(s) => format!("the string {:?}", shorten(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// The attributes of one message, with what is needed to word errors.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// The message's name, for "every X needs ...".
    pub(crate) message: &'static str,
    /// The `referenceID`, echoed in every error.
    pub(crate) reference_id: Option<u64>,
}

impl<'a> Fields<'a> {
    /// Reads the envelope: the `referenceID` (when it is there and valid) and the message
    /// name, which must be one of `names`; `expected` lists them for the error text, and
    /// `other_side` names the other direction's messages for a better hint.
    pub(crate) fn envelope(
        map: &'a Map<String, Value>,
        names: &[&'static str],
        expected: &'static str,
        other_side: (&[&'static str], &'static str),
    ) -> Result<Fields<'a>, MessageError> {
        // The referenceID first, so that every later error can echo it.
        let reference_id = match map.get(key::REFERENCE_ID) {
            None | Some(Value::Null) => None,
            Some(value) => Some(reference_id(value).map_err(|e| MessageError::new(None, e))?),
        };
        let err = |kind| MessageError::new(reference_id, kind);
        let name = match map.get(key::MESSAGE) {
            None | Some(Value::Null) => {
                return Err(err(MessageErrorKind::MissingAttribute {
                    attribute: key::MESSAGE,
                    message: "message object",
                    need: "the T-Library message name, e.g. \"message\":\"RegisterAddress\"",
                    hint: case_hint(map, key::MESSAGE),
                }));
            }
            Some(Value::String(name)) => name,
            Some(other) => {
                return Err(err(MessageErrorKind::WrongType {
                    attribute: key::MESSAGE.to_owned(),
                    expected: "a string holding the T-Library message name",
                    found: describe(other),
                }));
            }
        };
        let Some(&message) = names.iter().find(|n| **n == name.as_str()) else {
            let hint = if let Some(n) = names.iter().find(|n| n.eq_ignore_ascii_case(name)) {
                format!(" (did you mean {n:?}? message names are case-sensitive)")
            } else if other_side.0.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                format!(" ({})", other_side.1)
            } else {
                String::new()
            };
            return Err(err(MessageErrorKind::UnknownMessage {
                name: shorten(name),
                hint,
                expected,
            }));
        };
        Ok(Fields {
            map,
            message,
            reference_id,
        })
    }

    fn err(&self, kind: MessageErrorKind) -> MessageError {
        MessageError::new(self.reference_id, kind)
    }

    /// A present, non-null attribute.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn missing(&self, attribute: &'static str, need: &'static str) -> MessageError {
        self.err(MessageErrorKind::MissingAttribute {
            attribute,
            message: self.message,
            need,
            hint: case_hint(self.map, attribute),
        })
    }

    fn wrong_type(&self, attribute: &str, expected: &'static str, found: &Value) -> MessageError {
        self.err(MessageErrorKind::WrongType {
            attribute: attribute.to_owned(),
            expected,
            found: describe(found),
        })
    }

    /// The required `referenceID`.
    pub(crate) fn reference_id(&self) -> Result<u64, MessageError> {
        self.reference_id.ok_or_else(|| {
            self.missing(
                key::REFERENCE_ID,
                "an integer `referenceID` (0..=18446744073709551615) that its answer echoes",
            )
        })
    }

    /// A required identifier that may be written as a JSON string or a non-negative integer.
    fn id_text(
        &self,
        attribute: &'static str,
        need: &'static str,
        expected: &'static str,
    ) -> Result<String, MessageError> {
        match self.get(attribute) {
            None => Err(self.missing(attribute, need)),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
            Some(other) => Err(self.wrong_type(attribute, expected, other)),
        }
    }

    /// A required DN attribute (`thisDN`).
    pub(crate) fn dn(&self, attribute: &'static str) -> Result<DnNumber, MessageError> {
        let text = self.id_text(
            attribute,
            "the DN",
            "a string holding the DN number such as \"5001\" (a non-negative integer is accepted too)",
        )?;
        DnNumber::new(&text)
            .map_err(|source| self.err(MessageErrorKind::InvalidDn { attribute, source }))
    }

    /// The required `agentID`.
    pub(crate) fn agent_id(&self) -> Result<AgentId, MessageError> {
        let text = self.id_text(
            key::AGENT_ID,
            "the agent's login ID",
            "a string holding the agent's login ID (a non-negative integer is accepted too)",
        )?;
        AgentId::new(&text).map_err(|e| self.err(e))
    }

    /// The required `connID`.
    pub(crate) fn conn_id(&self) -> Result<ConnId, MessageError> {
        let text = self.id_text(
            key::CONN_ID,
            "the call's connection ID",
            "a string holding the call's connection ID such as \"006e02b1a8c5b001\" (a non-negative integer is accepted too)",
        )?;
        ConnId::new(&text).map_err(|e| self.err(e))
    }

    /// The optional `workmode`.
    pub(crate) fn workmode(&self) -> Result<Option<WorkMode>, MessageError> {
        match self.get(key::WORKMODE) {
            None => Ok(None),
            Some(Value::String(s)) => s.parse().map(Some).map_err(|e| self.err(e)),
            Some(other) => Err(self.wrong_type(
                key::WORKMODE,
                "a string holding a T-Library work mode such as \"AfterCallWork\"",
                other,
            )),
        }
    }

    /// The optional `extensions` object, as a map of strings.
    pub(crate) fn extensions(&self) -> Result<Extensions, MessageError> {
        let mut extensions = Extensions::new();
        for (k, v) in self.extensions_object()?.into_iter().flatten() {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(self.wrong_type(
                        &format!("{}.{}", key::EXTENSIONS, shorten(k)),
                        "a string (or a number or boolean, kept as text)",
                        other,
                    ));
                }
            };
            extensions.insert(k.clone(), text);
        }
        Ok(extensions)
    }

    /// The optional `extensions` object as JSON.
    pub(crate) fn extensions_object(&self) -> Result<Option<&'a Map<String, Value>>, MessageError> {
        match self.get(key::EXTENSIONS) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.wrong_type(
                key::EXTENSIONS,
                "an object of key-value pairs such as {\"presence-profile\":\"PushProfile\"}",
                other,
            )),
        }
    }

    /// A required string attribute.
    pub(crate) fn string(
        &self,
        attribute: &'static str,
        need: &'static str,
    ) -> Result<&'a str, MessageError> {
        match self.get(attribute) {
            None => Err(self.missing(attribute, need)),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.wrong_type(attribute, "a string", other)),
        }
    }

    /// A required non-negative integer attribute.
    pub(crate) fn integer(
        &self,
        attribute: &'static str,
        need: &'static str,
    ) -> Result<u64, MessageError> {
        match self.get(attribute) {
            None => Err(self.missing(attribute, need)),
            Some(value) => value
                .as_u64()
                .ok_or_else(|| self.wrong_type(attribute, "a non-negative integer", value)),
        }
    }

    /// Wraps an error from a nested reader with this message's `referenceID`.
    pub(crate) fn wrap(&self, kind: MessageErrorKind) -> MessageError {
        self.err(kind)
    }

    /// Reports a missing attribute inside a nested object.
    pub(crate) fn missing_in(&self, attribute: &'static str, need: &'static str) -> MessageError {
        self.missing(attribute, need)
    }

    /// Reports a value of a wrong type.
    pub(crate) fn wrong(
        &self,
        attribute: &str,
        expected: &'static str,
        found: &Value,
    ) -> MessageError {
        self.wrong_type(attribute, expected, found)
    }
}

/// Reads a `referenceID` value: a non-negative integer that fits 64 bits.
fn reference_id(value: &Value) -> Result<u64, MessageErrorKind> {
    value.as_u64().ok_or_else(|| MessageErrorKind::WrongType {
        attribute: key::REFERENCE_ID.to_owned(),
        expected: "an integer 0..=18446744073709551615",
        found: describe(value),
    })
}

/// When the object has a key equal to `attribute` but for case, a hint naming it.
fn case_hint(map: &Map<String, Value>, attribute: &str) -> String {
    map.keys()
        .find(|k| k.as_str() != attribute && k.eq_ignore_ascii_case(attribute))
        .map(|k| {
            format!(
                " (found {:?}: attribute names are case-sensitive)",
                shorten(k)
            )
        })
        .unwrap_or_default()
}
