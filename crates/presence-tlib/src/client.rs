//! Messages from contact-centre clients to the bridge.

use presence_model::DnNumber;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::read::{Fields, key, parse_object};
use crate::write::{Field, entries_to_json, serialize_entries};
use crate::{AgentId, ConnId, Extensions, MessageError, WorkMode};

/// One message from a contact-centre client: its `referenceID` and what it says.
///
/// Every message from a client carries an integer `referenceID` **(decision)**: the bridge
/// echoes it in the answer (`EventRegistered`, `EventACK`, `EventError`, ...), so a client can
/// match answers to requests even for the call and device events it reports. A message
/// without one is refused with `EventError` code 3.
///
/// ```
/// use presence_tlib::{ClientMessage, ClientRequest, WorkMode};
/// let text = r#"{"message":"RequestAgentNotReady","referenceID":7,"thisDN":"5001","workmode":"AfterCallWork"}"#;
/// let msg = ClientMessage::from_json(text)?;
/// assert_eq!(msg.reference_id, 7);
/// assert!(matches!(
///     &msg.body,
///     ClientRequest::RequestAgentNotReady { this_dn, workmode: Some(WorkMode::AfterCallWork) }
///         if this_dn.as_str() == "5001"
/// ));
/// assert_eq!(msg.to_json(), text);
/// # Ok::<(), presence_tlib::MessageError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMessage {
    /// `referenceID`: echoed in the answer.
    pub reference_id: u64,
    /// The request or reported event.
    pub body: ClientRequest,
}

/// What a client asks for or reports. The variant names are the T-Library message names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRequest {
    /// Starts monitoring a DN: the client gets its DND events. Answer: `EventRegistered`.
    RegisterAddress {
        /// `thisDN`.
        this_dn: DnNumber,
    },
    /// Stops monitoring a DN. Answer: `EventUnregistered`.
    UnregisterAddress {
        /// `thisDN`.
        this_dn: DnNumber,
    },
    /// An agent logs in on a DN. Answer: `EventAgentLogin`.
    RequestAgentLogin {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `agentID`: the agent's login ID.
        agent_id: AgentId,
        /// `workmode` (optional).
        workmode: Option<WorkMode>,
        /// `extensions`: `presence-profile` chooses the login session's presence profile.
        extensions: Extensions,
    },
    /// The agent on a DN logs out. Answer: `EventAgentLogout`.
    RequestAgentLogout {
        /// `thisDN`.
        this_dn: DnNumber,
    },
    /// The agent becomes ready. Answer: `EventAgentReady`.
    RequestAgentReady {
        /// `thisDN`.
        this_dn: DnNumber,
    },
    /// The agent becomes not ready, in a work mode. Answer: `EventAgentNotReady`.
    RequestAgentNotReady {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `workmode`: `AfterCallWork` → ACW, `WalkAway` → Walk_Away, other or absent →
        /// NotReady.
        workmode: Option<WorkMode>,
    },
    /// A call rings on the DN. Answer: `EventACK`.
    EventRinging {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `connID`: the call.
        conn_id: ConnId,
    },
    /// The DN dials out. Answer: `EventACK`.
    EventDialing {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `connID`: the call.
        conn_id: ConnId,
    },
    /// A call is established on the DN. Answer: `EventACK`.
    EventEstablished {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `connID`: the call.
        conn_id: ConnId,
    },
    /// A call on the DN is put on hold. Answer: `EventACK`.
    EventHeld {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `connID`: the call.
        conn_id: ConnId,
    },
    /// A held call is taken back. Answer: `EventACK`.
    EventRetrieved {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `connID`: the call.
        conn_id: ConnId,
    },
    /// A call leaves the DN. Answer: `EventACK`.
    EventReleased {
        /// `thisDN`.
        this_dn: DnNumber,
        /// `connID`: the call.
        conn_id: ConnId,
    },
    /// The DN's device goes out of service. Answer: `EventACK`.
    EventDNOutOfService {
        /// `thisDN`.
        this_dn: DnNumber,
    },
    /// The DN's device is back in service. Answer: `EventACK`.
    EventDNBackInService {
        /// `thisDN`.
        this_dn: DnNumber,
    },
}

/// Every message name a client may send.
pub(crate) const CLIENT_NAMES: [&str; 14] = [
    "RegisterAddress",
    "UnregisterAddress",
    "RequestAgentLogin",
    "RequestAgentLogout",
    "RequestAgentReady",
    "RequestAgentNotReady",
    "EventRinging",
    "EventDialing",
    "EventEstablished",
    "EventHeld",
    "EventRetrieved",
    "EventReleased",
    "EventDNOutOfService",
    "EventDNBackInService",
];

const CLIENT_EXPECTED: &str = "RegisterAddress, UnregisterAddress, RequestAgentLogin, RequestAgentLogout, \
     RequestAgentReady, RequestAgentNotReady, EventRinging, EventDialing, EventEstablished, \
     EventHeld, EventRetrieved, EventReleased, EventDNOutOfService, EventDNBackInService";

impl ClientRequest {
    /// The T-Library message name (`RequestAgentLogin`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ClientRequest::RegisterAddress { .. } => "RegisterAddress",
            ClientRequest::UnregisterAddress { .. } => "UnregisterAddress",
            ClientRequest::RequestAgentLogin { .. } => "RequestAgentLogin",
            ClientRequest::RequestAgentLogout { .. } => "RequestAgentLogout",
            ClientRequest::RequestAgentReady { .. } => "RequestAgentReady",
            ClientRequest::RequestAgentNotReady { .. } => "RequestAgentNotReady",
            ClientRequest::EventRinging { .. } => "EventRinging",
            ClientRequest::EventDialing { .. } => "EventDialing",
            ClientRequest::EventEstablished { .. } => "EventEstablished",
            ClientRequest::EventHeld { .. } => "EventHeld",
            ClientRequest::EventRetrieved { .. } => "EventRetrieved",
            ClientRequest::EventReleased { .. } => "EventReleased",
            ClientRequest::EventDNOutOfService { .. } => "EventDNOutOfService",
            ClientRequest::EventDNBackInService { .. } => "EventDNBackInService",
        }
    }

    /// The DN the message is about (`thisDN`; every client message has one).
    pub fn this_dn(&self) -> &DnNumber {
        match self {
            ClientRequest::RegisterAddress { this_dn }
            | ClientRequest::UnregisterAddress { this_dn }
            | ClientRequest::RequestAgentLogin { this_dn, .. }
            | ClientRequest::RequestAgentLogout { this_dn }
            | ClientRequest::RequestAgentReady { this_dn }
            | ClientRequest::RequestAgentNotReady { this_dn, .. }
            | ClientRequest::EventRinging { this_dn, .. }
            | ClientRequest::EventDialing { this_dn, .. }
            | ClientRequest::EventEstablished { this_dn, .. }
            | ClientRequest::EventHeld { this_dn, .. }
            | ClientRequest::EventRetrieved { this_dn, .. }
            | ClientRequest::EventReleased { this_dn, .. }
            | ClientRequest::EventDNOutOfService { this_dn }
            | ClientRequest::EventDNBackInService { this_dn } => this_dn,
        }
    }

    /// The call a call event is about (`connID`), `None` for the other messages.
    pub fn conn_id(&self) -> Option<&ConnId> {
        match self {
            ClientRequest::EventRinging { conn_id, .. }
            | ClientRequest::EventDialing { conn_id, .. }
            | ClientRequest::EventEstablished { conn_id, .. }
            | ClientRequest::EventHeld { conn_id, .. }
            | ClientRequest::EventRetrieved { conn_id, .. }
            | ClientRequest::EventReleased { conn_id, .. } => Some(conn_id),
            _ => None,
        }
    }

    /// Whether this is a call or device event the client reports (answered with `EventACK`)
    /// rather than a request.
    pub fn is_reported_event(&self) -> bool {
        self.name().starts_with("Event")
    }
}

impl ClientMessage {
    /// A message.
    pub fn new(reference_id: u64, body: ClientRequest) -> Self {
        ClientMessage { reference_id, body }
    }

    /// Parses one message.
    ///
    /// Strict about what matters, lenient about what does not **(decisions)**:
    /// - attributes the message does not use (`userData`, `otherDN`, ...) are ignored, as a
    ///   T-Library client sends many; attribute names are case-sensitive;
    /// - an optional attribute that is `null` counts as absent;
    /// - `thisDN`, `agentID` and `connID` are strings, but a non-negative JSON integer is
    ///   accepted and converted to its decimal text (`5001` → `"5001"`);
    /// - `referenceID` is required and must be a non-negative integer;
    /// - texts over 1 MiB are refused before parsing.
    ///
    /// The error carries the `referenceID` when it could be read, an [`ErrorCode`] and a
    /// text that names the offending attribute and what would be valid. Never panics.
    ///
    /// [`ErrorCode`]: crate::ErrorCode
    pub fn from_json(text: &str) -> Result<ClientMessage, MessageError> {
        ClientMessage::from_object(&parse_object(text)?)
    }

    /// Reads a message from an already parsed JSON value (see [`from_json`](Self::from_json)).
    pub fn from_value(value: Value) -> Result<ClientMessage, MessageError> {
        ClientMessage::from_object(&crate::read::into_object(value)?)
    }

    fn from_object(map: &Map<String, Value>) -> Result<ClientMessage, MessageError> {
        let fields = Fields::envelope(
            map,
            &CLIENT_NAMES,
            CLIENT_EXPECTED,
            (
                &crate::server::SERVER_NAMES,
                "that is an event the bridge sends, not one a client sends",
            ),
        )?;
        // The message name first, then the referenceID: "unknown message" is the more
        // useful error for a wrong name.
        let reference_id = fields.reference_id()?;
        let f = &fields;
        let dn = || f.dn(key::THIS_DN);
        let call = |make: fn(DnNumber, ConnId) -> ClientRequest| -> Result<_, MessageError> {
            Ok(make(dn()?, f.conn_id()?))
        };
        let body = match f.message {
            "RegisterAddress" => ClientRequest::RegisterAddress { this_dn: dn()? },
            "UnregisterAddress" => ClientRequest::UnregisterAddress { this_dn: dn()? },
            "RequestAgentLogin" => ClientRequest::RequestAgentLogin {
                this_dn: dn()?,
                agent_id: f.agent_id()?,
                workmode: f.workmode()?,
                extensions: f.extensions()?,
            },
            "RequestAgentLogout" => ClientRequest::RequestAgentLogout { this_dn: dn()? },
            "RequestAgentReady" => ClientRequest::RequestAgentReady { this_dn: dn()? },
            "RequestAgentNotReady" => ClientRequest::RequestAgentNotReady {
                this_dn: dn()?,
                workmode: f.workmode()?,
            },
            "EventRinging" => {
                call(|this_dn, conn_id| ClientRequest::EventRinging { this_dn, conn_id })?
            }
            "EventDialing" => {
                call(|this_dn, conn_id| ClientRequest::EventDialing { this_dn, conn_id })?
            }
            "EventEstablished" => {
                call(|this_dn, conn_id| ClientRequest::EventEstablished { this_dn, conn_id })?
            }
            "EventHeld" => call(|this_dn, conn_id| ClientRequest::EventHeld { this_dn, conn_id })?,
            "EventRetrieved" => {
                call(|this_dn, conn_id| ClientRequest::EventRetrieved { this_dn, conn_id })?
            }
            "EventReleased" => {
                call(|this_dn, conn_id| ClientRequest::EventReleased { this_dn, conn_id })?
            }
            "EventDNOutOfService" => ClientRequest::EventDNOutOfService { this_dn: dn()? },
            // `envelope` admits only CLIENT_NAMES, so this is EventDNBackInService.
            _ => ClientRequest::EventDNBackInService { this_dn: dn()? },
        };
        Ok(ClientMessage { reference_id, body })
    }

    /// The message as one line of JSON, attributes in a fixed order (`message`,
    /// `referenceID`, `thisDN`, `agentID`, `workmode`, `connID`, `extensions`); empty
    /// `extensions` and absent `workmode` are left out.
    pub fn to_json(&self) -> String {
        entries_to_json(&self.entries())
    }

    fn entries(&self) -> Vec<(&'static str, Field)> {
        let mut out = vec![
            (key::MESSAGE, Field::from(self.body.name())),
            (key::REFERENCE_ID, Field::from(self.reference_id)),
            (key::THIS_DN, Field::from(self.body.this_dn().as_str())),
        ];
        match &self.body {
            ClientRequest::RequestAgentLogin {
                agent_id,
                workmode,
                extensions,
                ..
            } => {
                out.push((key::AGENT_ID, Field::from(agent_id.as_str())));
                if let Some(mode) = workmode {
                    out.push((key::WORKMODE, Field::from(mode.name())));
                }
                if !extensions.is_empty() {
                    out.push((key::EXTENSIONS, Field::extensions(extensions)));
                }
            }
            ClientRequest::RequestAgentNotReady {
                workmode: Some(mode),
                ..
            } => out.push((key::WORKMODE, Field::from(mode.name()))),
            other => {
                if let Some(conn_id) = other.conn_id() {
                    out.push((key::CONN_ID, Field::from(conn_id.as_str())));
                }
            }
        }
        out
    }
}

impl Serialize for ClientMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_entries(&self.entries(), serializer)
    }
}

impl<'de> Deserialize<'de> for ClientMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        ClientMessage::from_value(value).map_err(serde::de::Error::custom)
    }
}
