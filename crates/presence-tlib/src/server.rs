//! Events from the bridge to contact-centre clients.

use presence_model::{DnNumber, DndState};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::read::{Fields, key, parse_object};
use crate::write::{Field, entries_to_json, serialize_entries};
use crate::{AgentId, ErrorCode, Extensions, MessageError, MessageErrorKind, WorkMode, ext};

/// One event from the bridge to a contact-centre client. The variant names are the
/// T-Library event names.
///
/// Answers to a client's message echo its `referenceID`; `EventDNDOn`/`EventDNDOff` are
/// unsolicited and carry none; `EventError` carries one when the failed message's could be
/// read.
///
/// ```
/// use presence_model::{DnNumber, DndState};
/// use presence_tlib::ServerEvent;
/// let event = ServerEvent::dnd(
///     DndState::On,
///     DnNumber::new("5001")?,
///     6500,
///     Some("In a call".to_owned()),
///     DnNumber::new("PullProfile")?,
/// );
/// assert_eq!(
///     event.to_json(),
///     r#"{"message":"EventDNDOn","thisDN":"5001","extensions":{"availability":6500,"activity":"In a call","profile":"PullProfile"}}"#
/// );
/// assert_eq!(ServerEvent::from_json(&event.to_json()).unwrap(), event);
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // the T-Library names, as on the wire
pub enum ServerEvent {
    /// Answer to `RegisterAddress`.
    EventRegistered {
        /// `referenceID` of the request.
        reference_id: u64,
        /// `thisDN`.
        this_dn: DnNumber,
        /// The DN's current DND state as `extensions` `{"dnd":"on"|"off"}`; `None` (no
        /// `dnd`) when the bridge does not know it yet or the DN is not in pull mode.
        dnd: Option<DndState>,
        /// `extensions` `{"ha-role":"leader"|"standby"}`: the answering node's role when the
        /// bridge is one of a hot-standby group; `None` (no `ha-role`) when it runs alone.
        ha_role: Option<&'static str>,
    },
    /// Answer to `UnregisterAddress`.
    EventUnregistered {
        /// `referenceID` of the request.
        reference_id: u64,
        /// `thisDN`.
        this_dn: DnNumber,
    },
    /// Answer to `RequestAgentLogin`.
    EventAgentLogin {
        /// `referenceID` of the request.
        reference_id: u64,
        /// `thisDN`.
        this_dn: DnNumber,
        /// `agentID`.
        agent_id: AgentId,
        /// `presence-profile` (the profile that now applies to the DN, absent when none),
        /// `presence-profile-source` ([`ProfileSource`](crate::ProfileSource)) and, when the
        /// login's own `presence-profile` was refused, `presence-profile-error` with the
        /// reason; see [`ext`](crate::ext).
        extensions: Extensions,
    },
    /// Answer to `RequestAgentLogout`.
    EventAgentLogout {
        /// `referenceID` of the request.
        reference_id: u64,
        /// `thisDN`.
        this_dn: DnNumber,
    },
    /// Answer to `RequestAgentReady`.
    EventAgentReady {
        /// `referenceID` of the request.
        reference_id: u64,
        /// `thisDN`.
        this_dn: DnNumber,
    },
    /// Answer to `RequestAgentNotReady`.
    EventAgentNotReady {
        /// `referenceID` of the request.
        reference_id: u64,
        /// `thisDN`.
        this_dn: DnNumber,
        /// `workmode` as requested.
        workmode: Option<WorkMode>,
    },
    /// Answer to a call or device event the client reported (`EventRinging`, ...).
    EventACK {
        /// `referenceID` of the reported event.
        reference_id: u64,
    },
    /// Unsolicited: the DN's user is unavailable in SfB (pull mode).
    EventDNDOn {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `extensions.availability`: the SfB availability number as received.
        availability: u64,
        /// `extensions.activity`: the SfB activity text, when there is one.
        activity: Option<String>,
        /// `extensions.profile`: the presence profile that mapped it.
        profile: DnNumber,
    },
    /// Unsolicited: the DN's user is available in SfB (pull mode).
    EventDNDOff {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `extensions.availability`: the SfB availability number as received.
        availability: u64,
        /// `extensions.activity`: the SfB activity text, when there is one.
        activity: Option<String>,
        /// `extensions.profile`: the presence profile that mapped it.
        profile: DnNumber,
    },
    /// A message failed.
    EventError {
        /// `referenceID` of the failed message, when it could be read.
        reference_id: Option<u64>,
        /// `errorCode`.
        error_code: ErrorCode,
        /// `errorMessage`: what is wrong and what would be valid.
        error_message: String,
    },
}

/// Every event name the bridge sends.
pub(crate) const SERVER_NAMES: [&str; 10] = [
    "EventRegistered",
    "EventUnregistered",
    "EventAgentLogin",
    "EventAgentLogout",
    "EventAgentReady",
    "EventAgentNotReady",
    "EventACK",
    "EventDNDOn",
    "EventDNDOff",
    "EventError",
];

const SERVER_EXPECTED: &str = "EventRegistered, EventUnregistered, EventAgentLogin, \
     EventAgentLogout, EventAgentReady, EventAgentNotReady, EventACK, EventDNDOn, EventDNDOff, \
     EventError";

impl ServerEvent {
    /// `EventDNDOn` (for [`DndState::On`]) or `EventDNDOff`.
    pub fn dnd(
        state: DndState,
        this_dn: DnNumber,
        availability: u64,
        activity: Option<String>,
        profile: DnNumber,
    ) -> ServerEvent {
        match state {
            DndState::On => ServerEvent::EventDNDOn {
                this_dn,
                availability,
                activity,
                profile,
            },
            DndState::Off => ServerEvent::EventDNDOff {
                this_dn,
                availability,
                activity,
                profile,
            },
        }
    }

    /// An `EventError`.
    pub fn error(
        reference_id: Option<u64>,
        error_code: ErrorCode,
        error_message: impl Into<String>,
    ) -> ServerEvent {
        ServerEvent::EventError {
            reference_id,
            error_code,
            error_message: error_message.into(),
        }
    }

    /// The T-Library event name.
    pub fn name(&self) -> &'static str {
        match self {
            ServerEvent::EventRegistered { .. } => "EventRegistered",
            ServerEvent::EventUnregistered { .. } => "EventUnregistered",
            ServerEvent::EventAgentLogin { .. } => "EventAgentLogin",
            ServerEvent::EventAgentLogout { .. } => "EventAgentLogout",
            ServerEvent::EventAgentReady { .. } => "EventAgentReady",
            ServerEvent::EventAgentNotReady { .. } => "EventAgentNotReady",
            ServerEvent::EventACK { .. } => "EventACK",
            ServerEvent::EventDNDOn { .. } => "EventDNDOn",
            ServerEvent::EventDNDOff { .. } => "EventDNDOff",
            ServerEvent::EventError { .. } => "EventError",
        }
    }

    /// The `referenceID` the event echoes, if any.
    pub fn reference_id(&self) -> Option<u64> {
        match self {
            ServerEvent::EventRegistered { reference_id, .. }
            | ServerEvent::EventUnregistered { reference_id, .. }
            | ServerEvent::EventAgentLogin { reference_id, .. }
            | ServerEvent::EventAgentLogout { reference_id, .. }
            | ServerEvent::EventAgentReady { reference_id, .. }
            | ServerEvent::EventAgentNotReady { reference_id, .. }
            | ServerEvent::EventACK { reference_id } => Some(*reference_id),
            ServerEvent::EventError { reference_id, .. } => *reference_id,
            ServerEvent::EventDNDOn { .. } | ServerEvent::EventDNDOff { .. } => None,
        }
    }

    /// The DN the event is about, if it names one.
    pub fn this_dn(&self) -> Option<&DnNumber> {
        match self {
            ServerEvent::EventRegistered { this_dn, .. }
            | ServerEvent::EventUnregistered { this_dn, .. }
            | ServerEvent::EventAgentLogin { this_dn, .. }
            | ServerEvent::EventAgentLogout { this_dn, .. }
            | ServerEvent::EventAgentReady { this_dn, .. }
            | ServerEvent::EventAgentNotReady { this_dn, .. }
            | ServerEvent::EventDNDOn { this_dn, .. }
            | ServerEvent::EventDNDOff { this_dn, .. } => Some(this_dn),
            ServerEvent::EventACK { .. } | ServerEvent::EventError { .. } => None,
        }
    }

    /// The event as one line of JSON, attributes in a fixed order (`message`,
    /// `referenceID`, `thisDN`, `agentID`, `workmode`, `extensions`, `errorCode`,
    /// `errorMessage`).
    pub fn to_json(&self) -> String {
        entries_to_json(&self.entries())
    }

    /// Parses an event (what a client does with the bridge's frames; the demo's scripted
    /// client and the tests use it). Same rules as
    /// [`ClientMessage::from_json`](crate::ClientMessage::from_json).
    pub fn from_json(text: &str) -> Result<ServerEvent, MessageError> {
        ServerEvent::from_object(&parse_object(text)?)
    }

    /// Reads an event from an already parsed JSON value.
    pub fn from_value(value: Value) -> Result<ServerEvent, MessageError> {
        ServerEvent::from_object(&crate::read::into_object(value)?)
    }

    fn from_object(map: &Map<String, Value>) -> Result<ServerEvent, MessageError> {
        let f = Fields::envelope(
            map,
            &SERVER_NAMES,
            SERVER_EXPECTED,
            (
                &crate::client::CLIENT_NAMES,
                "that is a message a client sends, not one the bridge sends",
            ),
        )?;
        let dn = || f.dn(key::THIS_DN);
        Ok(match f.message {
            "EventRegistered" => {
                let reference_id = f.reference_id()?;
                let this_dn = dn()?;
                let dnd = match f.extensions_object()?.and_then(|m| m.get(ext::DND)) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s == "on" => Some(DndState::On),
                    Some(Value::String(s)) if s == "off" => Some(DndState::Off),
                    Some(other) => {
                        return Err(f.wrong("extensions.dnd", "\"on\" or \"off\"", other));
                    }
                };
                let ha_role = match f.extensions_object()?.and_then(|m| m.get(ext::HA_ROLE)) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s == "leader" => Some("leader"),
                    Some(Value::String(s)) if s == "standby" => Some("standby"),
                    Some(other) => {
                        return Err(f.wrong(
                            "extensions.ha-role",
                            "\"leader\" or \"standby\"",
                            other,
                        ));
                    }
                };
                ServerEvent::EventRegistered {
                    reference_id,
                    this_dn,
                    dnd,
                    ha_role,
                }
            }
            "EventUnregistered" => ServerEvent::EventUnregistered {
                reference_id: f.reference_id()?,
                this_dn: dn()?,
            },
            "EventAgentLogin" => ServerEvent::EventAgentLogin {
                reference_id: f.reference_id()?,
                this_dn: dn()?,
                agent_id: f.agent_id()?,
                extensions: f.extensions()?,
            },
            "EventAgentLogout" => ServerEvent::EventAgentLogout {
                reference_id: f.reference_id()?,
                this_dn: dn()?,
            },
            "EventAgentReady" => ServerEvent::EventAgentReady {
                reference_id: f.reference_id()?,
                this_dn: dn()?,
            },
            "EventAgentNotReady" => ServerEvent::EventAgentNotReady {
                reference_id: f.reference_id()?,
                this_dn: dn()?,
                workmode: f.workmode()?,
            },
            "EventACK" => ServerEvent::EventACK {
                reference_id: f.reference_id()?,
            },
            "EventDNDOn" | "EventDNDOff" => {
                let this_dn = dn()?;
                let Some(extensions) = f.extensions_object()? else {
                    return Err(f.missing_in(
                        key::EXTENSIONS,
                        "the presence that caused it: availability, activity and profile",
                    ));
                };
                let availability = match extensions.get(ext::AVAILABILITY) {
                    None | Some(Value::Null) => {
                        return Err(
                            f.missing_in("extensions.availability", "the SfB availability number")
                        );
                    }
                    Some(value) => value.as_u64().ok_or_else(|| {
                        f.wrong("extensions.availability", "a non-negative integer", value)
                    })?,
                };
                let activity = match extensions.get(ext::ACTIVITY) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => return Err(f.wrong("extensions.activity", "a string", other)),
                };
                let profile = match extensions.get(ext::PROFILE) {
                    None | Some(Value::Null) => {
                        return Err(
                            f.missing_in("extensions.profile", "the presence profile's name")
                        );
                    }
                    Some(Value::String(s)) => DnNumber::new(s).map_err(|source| {
                        f.wrap(MessageErrorKind::InvalidDn {
                            attribute: "extensions.profile",
                            source,
                        })
                    })?,
                    Some(other) => return Err(f.wrong("extensions.profile", "a string", other)),
                };
                let state = if f.message == "EventDNDOn" {
                    DndState::On
                } else {
                    DndState::Off
                };
                ServerEvent::dnd(state, this_dn, availability, activity, profile)
            }
            // `envelope` admits only SERVER_NAMES, so this is EventError.
            _ => {
                let code = f.integer(key::ERROR_CODE, "a numeric `errorCode`")?;
                let error_code = u32::try_from(code)
                    .ok()
                    .and_then(ErrorCode::from_u32)
                    .ok_or_else(|| f.wrap(MessageErrorKind::UnknownErrorCode { value: code }))?;
                ServerEvent::EventError {
                    reference_id: f.reference_id,
                    error_code,
                    error_message: f
                        .string(key::ERROR_MESSAGE, "an `errorMessage` text")?
                        .to_owned(),
                }
            }
        })
    }

    fn entries(&self) -> Vec<(&'static str, Field)> {
        let mut out = vec![(key::MESSAGE, Field::from(self.name()))];
        if let Some(reference_id) = self.reference_id() {
            out.push((key::REFERENCE_ID, Field::from(reference_id)));
        }
        if let Some(this_dn) = self.this_dn() {
            out.push((key::THIS_DN, Field::from(this_dn.as_str())));
        }
        match self {
            ServerEvent::EventRegistered { dnd, ha_role, .. } => {
                let extensions: Vec<(&'static str, Field)> = [
                    dnd.map(|dnd| (ext::DND, Field::from(dnd.as_str()))),
                    ha_role.map(|role| (ext::HA_ROLE, Field::from(role))),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !extensions.is_empty() {
                    out.push((key::EXTENSIONS, Field::Object(extensions)));
                }
            }
            ServerEvent::EventAgentLogin {
                agent_id,
                extensions,
                ..
            } => {
                out.push((key::AGENT_ID, Field::from(agent_id.as_str())));
                if !extensions.is_empty() {
                    out.push((key::EXTENSIONS, Field::extensions(extensions)));
                }
            }
            ServerEvent::EventAgentNotReady {
                workmode: Some(mode),
                ..
            } => out.push((key::WORKMODE, Field::from(mode.name()))),
            ServerEvent::EventDNDOn {
                availability,
                activity,
                profile,
                ..
            }
            | ServerEvent::EventDNDOff {
                availability,
                activity,
                profile,
                ..
            } => {
                // Written by hand to keep the documented order: availability, activity, profile.
                let mut extensions = vec![(ext::AVAILABILITY, Field::from(*availability))];
                if let Some(activity) = activity {
                    extensions.push((ext::ACTIVITY, Field::from(activity.as_str())));
                }
                extensions.push((ext::PROFILE, Field::from(profile.as_str())));
                out.push((key::EXTENSIONS, Field::Object(extensions)));
            }
            ServerEvent::EventError {
                error_code,
                error_message,
                ..
            } => {
                out.push((key::ERROR_CODE, Field::from(error_code.as_u32())));
                out.push((key::ERROR_MESSAGE, Field::from(error_message.as_str())));
            }
            _ => {}
        }
        out
    }
}

impl Serialize for ServerEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_entries(&self.entries(), serializer)
    }
}

impl<'de> Deserialize<'de> for ServerEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        ServerEvent::from_value(value).map_err(serde::de::Error::custom)
    }
}
