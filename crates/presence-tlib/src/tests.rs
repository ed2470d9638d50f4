//! The codec's tests: one literal example per message (the same examples as
//! docs/cti-protocol.md), round trips, robustness and the bad-input table.

use presence_model::{DnNumber, DndState};
use proptest::prelude::*;

use crate::*;

fn dn(s: &str) -> DnNumber {
    DnNumber::new(s).unwrap()
}

fn conn(s: &str) -> ConnId {
    ConnId::new(s).unwrap()
}

/// Parses `text`, checks it equals `expected` and that `expected` writes exactly `text`.
#[track_caller]
fn client_example(text: &str, expected: ClientMessage) {
    let parsed = ClientMessage::from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(parsed, expected);
    assert_eq!(expected.to_json(), text);
    assert_eq!(serde_json::to_string(&expected).unwrap(), text);
    assert_eq!(
        serde_json::from_str::<ClientMessage>(text).unwrap(),
        expected
    );
}

#[track_caller]
fn server_example(text: &str, expected: ServerEvent) {
    assert_eq!(expected.to_json(), text);
    assert_eq!(serde_json::to_string(&expected).unwrap(), text);
    let parsed = ServerEvent::from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(parsed, expected);
}

#[test]
fn register_address() {
    client_example(
        r#"{"message":"RegisterAddress","referenceID":1,"thisDN":"5001"}"#,
        ClientMessage::new(
            1,
            ClientRequest::RegisterAddress {
                this_dn: dn("5001"),
            },
        ),
    );
}

#[test]
fn unregister_address() {
    client_example(
        r#"{"message":"UnregisterAddress","referenceID":2,"thisDN":"5001"}"#,
        ClientMessage::new(
            2,
            ClientRequest::UnregisterAddress {
                this_dn: dn("5001"),
            },
        ),
    );
}

#[test]
fn request_agent_login() {
    client_example(
        r#"{"message":"RequestAgentLogin","referenceID":3,"thisDN":"5001","agentID":"agent1","workmode":"ManualIn","extensions":{"presence-profile":"PushProfile"}}"#,
        ClientMessage::new(
            3,
            ClientRequest::RequestAgentLogin {
                this_dn: dn("5001"),
                agent_id: AgentId::new("agent1").unwrap(),
                workmode: Some(WorkMode::ManualIn),
                extensions: [(ext::PRESENCE_PROFILE, "PushProfile")]
                    .into_iter()
                    .collect(),
            },
        ),
    );
    // Minimal form: no workmode, no extensions.
    client_example(
        r#"{"message":"RequestAgentLogin","referenceID":3,"thisDN":"5001","agentID":"agent1"}"#,
        ClientMessage::new(
            3,
            ClientRequest::RequestAgentLogin {
                this_dn: dn("5001"),
                agent_id: AgentId::new("agent1").unwrap(),
                workmode: None,
                extensions: Extensions::new(),
            },
        ),
    );
}

#[test]
fn request_agent_logout() {
    client_example(
        r#"{"message":"RequestAgentLogout","referenceID":4,"thisDN":"5001"}"#,
        ClientMessage::new(
            4,
            ClientRequest::RequestAgentLogout {
                this_dn: dn("5001"),
            },
        ),
    );
}

#[test]
fn request_agent_ready() {
    client_example(
        r#"{"message":"RequestAgentReady","referenceID":5,"thisDN":"5001"}"#,
        ClientMessage::new(
            5,
            ClientRequest::RequestAgentReady {
                this_dn: dn("5001"),
            },
        ),
    );
}

#[test]
fn request_agent_not_ready() {
    client_example(
        r#"{"message":"RequestAgentNotReady","referenceID":7,"thisDN":"5001","workmode":"AfterCallWork"}"#,
        ClientMessage::new(
            7,
            ClientRequest::RequestAgentNotReady {
                this_dn: dn("5001"),
                workmode: Some(WorkMode::AfterCallWork),
            },
        ),
    );
    client_example(
        r#"{"message":"RequestAgentNotReady","referenceID":6,"thisDN":"5001"}"#,
        ClientMessage::new(
            6,
            ClientRequest::RequestAgentNotReady {
                this_dn: dn("5001"),
                workmode: None,
            },
        ),
    );
}

#[test]
fn call_events() {
    type Make = fn(DnNumber, ConnId) -> ClientRequest;
    let cases: [(&str, Make); 6] = [
        ("EventRinging", |this_dn, conn_id| {
            ClientRequest::EventRinging { this_dn, conn_id }
        }),
        ("EventDialing", |this_dn, conn_id| {
            ClientRequest::EventDialing { this_dn, conn_id }
        }),
        ("EventEstablished", |this_dn, conn_id| {
            ClientRequest::EventEstablished { this_dn, conn_id }
        }),
        ("EventHeld", |this_dn, conn_id| ClientRequest::EventHeld {
            this_dn,
            conn_id,
        }),
        ("EventRetrieved", |this_dn, conn_id| {
            ClientRequest::EventRetrieved { this_dn, conn_id }
        }),
        ("EventReleased", |this_dn, conn_id| {
            ClientRequest::EventReleased { this_dn, conn_id }
        }),
    ];
    for (i, (name, make)) in cases.into_iter().enumerate() {
        let reference_id = 8 + i as u64;
        let text = format!(
            r#"{{"message":"{name}","referenceID":{reference_id},"thisDN":"5001","connID":"006e02b1a8c5b001"}}"#
        );
        let expected = ClientMessage::new(reference_id, make(dn("5001"), conn("006e02b1a8c5b001")));
        assert!(expected.body.is_reported_event());
        assert_eq!(expected.body.conn_id(), Some(&conn("006e02b1a8c5b001")));
        client_example(&text, expected);
    }
}

#[test]
fn device_events() {
    client_example(
        r#"{"message":"EventDNOutOfService","referenceID":14,"thisDN":"5001"}"#,
        ClientMessage::new(
            14,
            ClientRequest::EventDNOutOfService {
                this_dn: dn("5001"),
            },
        ),
    );
    client_example(
        r#"{"message":"EventDNBackInService","referenceID":15,"thisDN":"5001"}"#,
        ClientMessage::new(
            15,
            ClientRequest::EventDNBackInService {
                this_dn: dn("5001"),
            },
        ),
    );
}

#[test]
fn lenient_where_documented() {
    // Numeric DN, agent ID and connection ID; unknown attributes ignored; null = absent;
    // work mode in any case; extension values that are numbers or booleans become text.
    let text = r#"{"message":"RequestAgentLogin","referenceID":3,"thisDN":5001,"agentID":1234,
        "workmode":"aftercallwork","userData":{"a":[1,2]},"otherDN":null,
        "extensions":{"presence-profile":"PushProfile","priority":5,"vip":true}}"#;
    let msg = ClientMessage::from_json(text).unwrap();
    let ClientRequest::RequestAgentLogin {
        this_dn,
        agent_id,
        workmode,
        extensions,
    } = &msg.body
    else {
        panic!("{msg:?}")
    };
    assert_eq!(this_dn.as_str(), "5001");
    assert_eq!(agent_id.as_str(), "1234");
    assert_eq!(*workmode, Some(WorkMode::AfterCallWork));
    assert_eq!(extensions.get("priority"), Some("5"));
    assert_eq!(extensions.get("vip"), Some("true"));
    let msg = ClientMessage::from_json(
        r#"{"message":"EventHeld","referenceID":0,"thisDN":"5001","connID":42,"workmode":null}"#,
    )
    .unwrap();
    assert_eq!(msg.body.conn_id().map(ConnId::as_str), Some("42"));
    let msg = ClientMessage::from_json(
        r#"{"message":"RequestAgentNotReady","referenceID":1,"thisDN":"5001","workmode":null,"extensions":null}"#,
    )
    .unwrap();
    assert!(matches!(
        msg.body,
        ClientRequest::RequestAgentNotReady { workmode: None, .. }
    ));
}

#[test]
fn event_registered() {
    server_example(
        r#"{"message":"EventRegistered","referenceID":1,"thisDN":"5001","extensions":{"dnd":"off"}}"#,
        ServerEvent::EventRegistered {
            reference_id: 1,
            this_dn: dn("5001"),
            dnd: Some(DndState::Off),
            ha_role: None,
        },
    );
    server_example(
        r#"{"message":"EventRegistered","referenceID":1,"thisDN":"5001"}"#,
        ServerEvent::EventRegistered {
            reference_id: 1,
            this_dn: dn("5001"),
            dnd: None,
            ha_role: None,
        },
    );
    server_example(
        r#"{"message":"EventRegistered","referenceID":1,"thisDN":"5001","extensions":{"dnd":"on","ha-role":"leader"}}"#,
        ServerEvent::EventRegistered {
            reference_id: 1,
            this_dn: dn("5001"),
            dnd: Some(DndState::On),
            ha_role: Some("leader"),
        },
    );
    server_example(
        r#"{"message":"EventRegistered","referenceID":1,"thisDN":"5001","extensions":{"ha-role":"standby"}}"#,
        ServerEvent::EventRegistered {
            reference_id: 1,
            this_dn: dn("5001"),
            dnd: None,
            ha_role: Some("standby"),
        },
    );
    let err = ServerEvent::from_json(
        r#"{"message":"EventRegistered","referenceID":1,"thisDN":"5001","extensions":{"ha-role":"boss"}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("extensions.ha-role"), "{err}");
}

#[test]
fn event_unregistered() {
    server_example(
        r#"{"message":"EventUnregistered","referenceID":2,"thisDN":"5001"}"#,
        ServerEvent::EventUnregistered {
            reference_id: 2,
            this_dn: dn("5001"),
        },
    );
}

#[test]
fn event_agent_login() {
    server_example(
        r#"{"message":"EventAgentLogin","referenceID":3,"thisDN":"5001","agentID":"agent1","extensions":{"presence-profile":"PushProfile","presence-profile-source":"login"}}"#,
        ServerEvent::EventAgentLogin {
            reference_id: 3,
            this_dn: dn("5001"),
            agent_id: AgentId::new("agent1").unwrap(),
            extensions: [
                (ext::PRESENCE_PROFILE, "PushProfile"),
                (ext::PRESENCE_PROFILE_SOURCE, ProfileSource::Login.as_str()),
            ]
            .into_iter()
            .collect(),
        },
    );
    // A refused login profile: the login succeeds, the DN's level applies, the client is told.
    server_example(
        r#"{"message":"EventAgentLogin","referenceID":3,"thisDN":"5001","agentID":"agent1","extensions":{"presence-profile":"PullProfile","presence-profile-error":"presence profile `Nope` is not a presence-profile DN","presence-profile-source":"dn"}}"#,
        ServerEvent::EventAgentLogin {
            reference_id: 3,
            this_dn: dn("5001"),
            agent_id: AgentId::new("agent1").unwrap(),
            extensions: [
                (ext::PRESENCE_PROFILE, "PullProfile"),
                (ext::PRESENCE_PROFILE_SOURCE, ProfileSource::Dn.as_str()),
                (
                    ext::PRESENCE_PROFILE_ERROR,
                    "presence profile `Nope` is not a presence-profile DN",
                ),
            ]
            .into_iter()
            .collect(),
        },
    );
}

#[test]
fn agent_state_events() {
    server_example(
        r#"{"message":"EventAgentLogout","referenceID":4,"thisDN":"5001"}"#,
        ServerEvent::EventAgentLogout {
            reference_id: 4,
            this_dn: dn("5001"),
        },
    );
    server_example(
        r#"{"message":"EventAgentReady","referenceID":5,"thisDN":"5001"}"#,
        ServerEvent::EventAgentReady {
            reference_id: 5,
            this_dn: dn("5001"),
        },
    );
    server_example(
        r#"{"message":"EventAgentNotReady","referenceID":7,"thisDN":"5001","workmode":"AfterCallWork"}"#,
        ServerEvent::EventAgentNotReady {
            reference_id: 7,
            this_dn: dn("5001"),
            workmode: Some(WorkMode::AfterCallWork),
        },
    );
}

#[test]
fn event_ack() {
    server_example(
        r#"{"message":"EventACK","referenceID":8}"#,
        ServerEvent::EventACK { reference_id: 8 },
    );
}

#[test]
fn dnd_events() {
    server_example(
        r#"{"message":"EventDNDOn","thisDN":"5001","extensions":{"availability":6500,"activity":"In a call","profile":"PullProfile"}}"#,
        ServerEvent::dnd(
            DndState::On,
            dn("5001"),
            6500,
            Some("In a call".to_owned()),
            dn("PullProfile"),
        ),
    );
    server_example(
        r#"{"message":"EventDNDOff","thisDN":"5001","extensions":{"availability":3500,"profile":"PullProfile"}}"#,
        ServerEvent::EventDNDOff {
            this_dn: dn("5001"),
            availability: 3500,
            activity: None,
            profile: dn("PullProfile"),
        },
    );
}

#[test]
fn event_error() {
    server_example(
        r#"{"message":"EventError","referenceID":7,"errorCode":8,"errorMessage":"no agent is logged in on DN 5001: send RequestAgentLogin first"}"#,
        ServerEvent::error(
            Some(7),
            ErrorCode::InvalidState,
            "no agent is logged in on DN 5001: send RequestAgentLogin first",
        ),
    );
    server_example(
        r#"{"message":"EventError","errorCode":1,"errorMessage":"x"}"#,
        ServerEvent::error(None, ErrorCode::MalformedJson, "x"),
    );
}

#[test]
fn parse_errors_become_event_errors() {
    let err = ClientMessage::from_json(
        r#"{"message":"RequestAgentNotReady","referenceID":9,"thisDN":"5001","workmode":"Lunch"}"#,
    )
    .unwrap_err();
    let event = err.to_event();
    let ServerEvent::EventError {
        reference_id,
        error_code,
        error_message,
    } = &event
    else {
        panic!("{event:?}")
    };
    assert_eq!(*reference_id, Some(9));
    assert_eq!(*error_code, ErrorCode::InvalidAttribute);
    assert!(error_message.contains("\"Lunch\""), "{error_message}");
    assert!(error_message.contains("WalkAway"), "{error_message}");
    assert_eq!(ServerEvent::from_json(&event.to_json()).unwrap(), event);
    assert_eq!(
        MessageError::binary_frame().to_event().to_json(),
        r#"{"message":"EventError","errorCode":1,"errorMessage":"binary frames are not accepted: send each message as one JSON object in a text frame"}"#
    );
}

/// The bad-input table: (input, expected code, expected referenceID, texts the message must
/// contain).
#[test]
fn bad_input_table() {
    let too_big = format!(
        r#"{{"message":"RegisterAddress","referenceID":1,"thisDN":"5001","userData":"{}"}}"#,
        "x".repeat(MAX_JSON_BYTES)
    );
    #[rustfmt::skip]
    let table: Vec<(&str, ErrorCode, Option<u64>, &[&str])> = vec![
        // Malformed JSON: where and what.
        (r#"{"message":"RegisterAddress","referenceID":1,"#, ErrorCode::MalformedJson, None,
            &["malformed JSON at line 1, column 45: EOF while parsing a value; expected one JSON object"]),
        ("{\n  \"message\": 'x'\n}", ErrorCode::MalformedJson, None, &["line 2, column 14"]),
        ("", ErrorCode::MalformedJson, None, &["malformed JSON at line 1, column 0"]),
        (r#"{"a":1} {"b":2}"#, ErrorCode::MalformedJson, None, &["trailing characters"]),
        // Not an object.
        ("[1,2]", ErrorCode::MalformedJson, None, &["must be a JSON object", "not an array"]),
        ("\"RegisterAddress\"", ErrorCode::MalformedJson, None, &["not the string \"RegisterAddress\""]),
        ("null", ErrorCode::MalformedJson, None, &["not null"]),
        // Message name.
        (r#"{"referenceID":1,"thisDN":"5001"}"#, ErrorCode::InvalidAttribute, Some(1),
            &["`message` is missing", "\"message\":\"RegisterAddress\""]),
        (r#"{"Message":"RegisterAddress","referenceID":1}"#, ErrorCode::InvalidAttribute, Some(1),
            &["`message` is missing", "found \"Message\": attribute names are case-sensitive"]),
        (r#"{"message":7,"referenceID":1}"#, ErrorCode::InvalidAttribute, Some(1),
            &["`message` must be a string", "not the number 7"]),
        (r#"{"message":"RequestCoffee","referenceID":2,"thisDN":"5001"}"#, ErrorCode::UnknownMessage, Some(2),
            &["`message` value \"RequestCoffee\" is not known", "RegisterAddress", "EventDNBackInService"]),
        (r#"{"message":"requestagentlogin","referenceID":2}"#, ErrorCode::UnknownMessage, Some(2),
            &["did you mean \"RequestAgentLogin\"?"]),
        (r#"{"message":"EventDNDOn","referenceID":2}"#, ErrorCode::UnknownMessage, Some(2),
            &["an event the bridge sends"]),
        // referenceID.
        (r#"{"message":"RegisterAddress","thisDN":"5001"}"#, ErrorCode::InvalidAttribute, None,
            &["`referenceID` is missing: every RegisterAddress needs an integer `referenceID`"]),
        (r#"{"message":"RegisterAddress","referenceID":"7","thisDN":"5001"}"#, ErrorCode::InvalidAttribute, None,
            &["`referenceID` must be an integer", "not the string \"7\""]),
        (r#"{"message":"RegisterAddress","referenceID":-1,"thisDN":"5001"}"#, ErrorCode::InvalidAttribute, None,
            &["not the number -1"]),
        (r#"{"message":"RegisterAddress","referenceID":1.5,"thisDN":"5001"}"#, ErrorCode::InvalidAttribute, None,
            &["not the number 1.5"]),
        (r#"{"message":"RegisterAddress","referenceID":18446744073709551616,"thisDN":"5001"}"#, ErrorCode::InvalidAttribute, None,
            &["`referenceID` must be an integer 0..=18446744073709551615"]),
        // thisDN.
        (r#"{"message":"RequestAgentLogin","referenceID":3,"agentID":"a1"}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`thisDN` is missing: every RequestAgentLogin needs the DN"]),
        (r#"{"message":"RequestAgentReady","referenceID":3,"thisdn":"5001"}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`thisDN` is missing", "found \"thisdn\""]),
        (r#"{"message":"RequestAgentReady","referenceID":3,"thisDN":null}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`thisDN` is missing"]),
        (r#"{"message":"RequestAgentReady","referenceID":3,"thisDN":["5001"]}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`thisDN` must be a string holding the DN number", "not an array"]),
        (r#"{"message":"RequestAgentReady","referenceID":3,"thisDN":-5001}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`thisDN` must be", "not the number -5001"]),
        (r#"{"message":"RequestAgentReady","referenceID":3,"thisDN":"50 01"}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`thisDN` is not valid", "`50 01`", "space"]),
        (r#"{"message":"RequestAgentReady","referenceID":3,"thisDN":""}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`thisDN` is not valid", "empty"]),
        // agentID, connID.
        (r#"{"message":"RequestAgentLogin","referenceID":3,"thisDN":"5001"}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`agentID` is missing: every RequestAgentLogin needs the agent's login ID"]),
        (r#"{"message":"RequestAgentLogin","referenceID":3,"thisDN":"5001","agentID":true}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`agentID` must be a string", "not the boolean true"]),
        (r#"{"message":"EventRinging","referenceID":8,"thisDN":"5001"}"#, ErrorCode::InvalidAttribute, Some(8),
            &["`connID` is missing: every EventRinging needs the call's connection ID"]),
        (r#"{"message":"EventRinging","referenceID":8,"thisDN":"5001","connID":"a b"}"#, ErrorCode::InvalidAttribute, Some(8),
            &["`connID` value \"a b\" is not valid", "space"]),
        // workmode.
        (r#"{"message":"RequestAgentNotReady","referenceID":7,"thisDN":"5001","workmode":"Lunch"}"#, ErrorCode::InvalidAttribute, Some(7),
            &["`workmode` value \"Lunch\" is not known", "Unknown, AutoIn, ManualIn, AfterCallWork, AuxWork, NoCallDisconnect, WalkAway, ReturnBack"]),
        (r#"{"message":"RequestAgentNotReady","referenceID":7,"thisDN":"5001","workmode":3}"#, ErrorCode::InvalidAttribute, Some(7),
            &["`workmode` must be a string holding a T-Library work mode", "not the number 3"]),
        // extensions.
        (r#"{"message":"RequestAgentLogin","referenceID":3,"thisDN":"5001","agentID":"a","extensions":"PushProfile"}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`extensions` must be an object", "not the string \"PushProfile\""]),
        (r#"{"message":"RequestAgentLogin","referenceID":3,"thisDN":"5001","agentID":"a","extensions":{"presence-profile":["x"]}}"#, ErrorCode::InvalidAttribute, Some(3),
            &["`extensions.presence-profile` must be a string", "not an array"]),
        // Size.
        (&too_big, ErrorCode::MessageTooLarge, None, &["more than the limit of 1048576 bytes"]),
    ];
    for (input, code, reference_id, texts) in table {
        let shown = &input[..input.len().min(120)];
        let err = match ClientMessage::from_json(input) {
            Ok(msg) => panic!("{shown} parsed as {msg:?}"),
            Err(err) => err,
        };
        let message = err.to_string();
        assert_eq!(err.code(), code, "{shown}: {message}");
        assert_eq!(err.reference_id(), reference_id, "{shown}: {message}");
        for text in texts {
            assert!(
                message.contains(text),
                "{shown}: `{message}` lacks `{text}`"
            );
        }
        // The answer is itself a valid event.
        let event = err.to_event();
        assert_eq!(ServerEvent::from_json(&event.to_json()).unwrap(), event);
    }
}

#[test]
fn server_bad_input() {
    for (input, text) in [
        (
            r#"{"message":"RegisterAddress","referenceID":1,"thisDN":"5001"}"#,
            "a message a client sends",
        ),
        (
            r#"{"message":"EventError","errorCode":99,"errorMessage":"x"}"#,
            "`errorCode` 99 is not known",
        ),
        (
            r#"{"message":"EventError","errorCode":1}"#,
            "`errorMessage` is missing",
        ),
        (
            r#"{"message":"EventDNDOn","thisDN":"5001"}"#,
            "`extensions` is missing",
        ),
        (
            r#"{"message":"EventDNDOn","thisDN":"5001","extensions":{"profile":"P"}}"#,
            "`extensions.availability` is missing",
        ),
        (
            r#"{"message":"EventDNDOn","thisDN":"5001","extensions":{"availability":"3500","profile":"P"}}"#,
            "`extensions.availability` must be a non-negative integer",
        ),
        (
            r#"{"message":"EventRegistered","referenceID":1,"thisDN":"5001","extensions":{"dnd":"maybe"}}"#,
            "`extensions.dnd` must be \"on\" or \"off\"",
        ),
    ] {
        let err = ServerEvent::from_json(input).unwrap_err().to_string();
        assert!(err.contains(text), "{input}: {err}");
    }
}

fn arb_dn() -> impl Strategy<Value = DnNumber> {
    "[!-~]{1,20}".prop_map(|s| DnNumber::new(&s).unwrap())
}

fn arb_id() -> impl Strategy<Value = String> {
    "[!-~\u{e9}\u{4e2d}]{1,20}"
}

fn arb_workmode() -> impl Strategy<Value = Option<WorkMode>> {
    proptest::option::of(proptest::sample::select(WorkMode::ALL.to_vec()))
}

fn arb_extensions() -> impl Strategy<Value = Extensions> {
    proptest::collection::btree_map("\\PC{0,12}", "\\PC{0,20}", 0..4)
        .prop_map(|map| map.into_iter().collect())
}

fn arb_request() -> impl Strategy<Value = ClientRequest> {
    let call = (0..6u8, arb_dn(), arb_id()).prop_map(|(kind, this_dn, c)| {
        let conn_id = ConnId::new(&c[..c.len().min(64)]).unwrap();
        match kind {
            0 => ClientRequest::EventRinging { this_dn, conn_id },
            1 => ClientRequest::EventDialing { this_dn, conn_id },
            2 => ClientRequest::EventEstablished { this_dn, conn_id },
            3 => ClientRequest::EventHeld { this_dn, conn_id },
            4 => ClientRequest::EventRetrieved { this_dn, conn_id },
            _ => ClientRequest::EventReleased { this_dn, conn_id },
        }
    });
    prop_oneof![
        arb_dn().prop_map(|this_dn| ClientRequest::RegisterAddress { this_dn }),
        arb_dn().prop_map(|this_dn| ClientRequest::UnregisterAddress { this_dn }),
        (arb_dn(), arb_id(), arb_workmode(), arb_extensions()).prop_map(
            |(this_dn, agent, workmode, extensions)| ClientRequest::RequestAgentLogin {
                this_dn,
                agent_id: AgentId::new(&agent).unwrap(),
                workmode,
                extensions,
            }
        ),
        arb_dn().prop_map(|this_dn| ClientRequest::RequestAgentLogout { this_dn }),
        arb_dn().prop_map(|this_dn| ClientRequest::RequestAgentReady { this_dn }),
        (arb_dn(), arb_workmode()).prop_map(|(this_dn, workmode)| {
            ClientRequest::RequestAgentNotReady { this_dn, workmode }
        }),
        call,
        arb_dn().prop_map(|this_dn| ClientRequest::EventDNOutOfService { this_dn }),
        arb_dn().prop_map(|this_dn| ClientRequest::EventDNBackInService { this_dn }),
    ]
}

fn arb_event() -> impl Strategy<Value = ServerEvent> {
    let reference_id = any::<u64>();
    prop_oneof![
        (
            reference_id,
            arb_dn(),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(r, d, dnd, leader)| {
                ServerEvent::EventRegistered {
                    reference_id: r,
                    this_dn: d,
                    dnd: dnd.map(|on| if on { DndState::On } else { DndState::Off }),
                    ha_role: leader.map(|l| if l { "leader" } else { "standby" }),
                }
            }),
        (reference_id, arb_dn()).prop_map(|(r, d)| ServerEvent::EventUnregistered {
            reference_id: r,
            this_dn: d
        }),
        (reference_id, arb_dn(), arb_id(), arb_extensions()).prop_map(|(r, d, a, extensions)| {
            ServerEvent::EventAgentLogin {
                reference_id: r,
                this_dn: d,
                agent_id: AgentId::new(&a).unwrap(),
                extensions,
            }
        }),
        (reference_id, arb_dn()).prop_map(|(r, d)| ServerEvent::EventAgentLogout {
            reference_id: r,
            this_dn: d
        }),
        (reference_id, arb_dn()).prop_map(|(r, d)| ServerEvent::EventAgentReady {
            reference_id: r,
            this_dn: d
        }),
        (reference_id, arb_dn(), arb_workmode()).prop_map(|(r, d, workmode)| {
            ServerEvent::EventAgentNotReady {
                reference_id: r,
                this_dn: d,
                workmode,
            }
        }),
        reference_id.prop_map(|r| ServerEvent::EventACK { reference_id: r }),
        (
            any::<bool>(),
            arb_dn(),
            any::<u64>(),
            proptest::option::of("\\PC{0,30}"),
            arb_dn()
        )
            .prop_map(|(on, d, availability, activity, profile)| {
                let state = if on { DndState::On } else { DndState::Off };
                ServerEvent::dnd(state, d, availability, activity, profile)
            }),
        (
            proptest::option::of(any::<u64>()),
            proptest::sample::select(ErrorCode::ALL.to_vec()),
            "\\PC{0,60}"
        )
            .prop_map(|(r, code, message)| ServerEvent::error(r, code, message)),
    ]
}

/// A JSON value of bounded depth, with the attribute names the codec reads among its keys.
fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop_oneof![
        Just("message".to_owned()),
        Just("referenceID".to_owned()),
        Just("thisDN".to_owned()),
        Just("agentID".to_owned()),
        Just("workmode".to_owned()),
        Just("connID".to_owned()),
        Just("extensions".to_owned()),
        Just("errorCode".to_owned()),
        Just("errorMessage".to_owned()),
        Just("availability".to_owned()),
        Just("profile".to_owned()),
        Just("dnd".to_owned()),
        "\\PC{0,8}",
    ];
    let name = prop_oneof![
        proptest::sample::select(client::CLIENT_NAMES.to_vec()).prop_map(str::to_owned),
        proptest::sample::select(server::SERVER_NAMES.to_vec()).prop_map(str::to_owned),
        "\\PC{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        name.prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn client_round_trip(reference_id in any::<u64>(), body in arb_request()) {
        let msg = ClientMessage::new(reference_id, body);
        let json = msg.to_json();
        prop_assert_eq!(&ClientMessage::from_json(&json).unwrap(), &msg);
        prop_assert_eq!(&serde_json::from_str::<ClientMessage>(&json).unwrap(), &msg);
    }

    #[test]
    fn server_round_trip(event in arb_event()) {
        let json = event.to_json();
        prop_assert_eq!(&ServerEvent::from_json(&json).unwrap(), &event);
        prop_assert_eq!(&serde_json::from_str::<ServerEvent>(&json).unwrap(), &event);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC{0,200}") {
        // The body of the `tlib_json` fuzz target.
        fuzzing::json(text.as_bytes());
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        let text = value.to_string();
        let errors = [ClientMessage::from_json(&text).err(), ClientMessage::from_value(value.clone()).err()];
        for err in errors.into_iter().flatten() {
            // Every error converts into a valid answer.
            let event = err.to_event();
            prop_assert_eq!(ServerEvent::from_json(&event.to_json()).unwrap(), event);
        }
        // Whatever parses writes back to itself: the body of the `tlib_json` fuzz target.
        fuzzing::json(text.as_bytes());
        let _ = ServerEvent::from_value(value);
    }

    #[test]
    fn mutated_messages_never_panic(body in arb_request(), cut in any::<prop::sample::Index>(), insert in "\\PC{0,3}") {
        let json = ClientMessage::new(1, body).to_json();
        let mut at = cut.index(json.len() + 1);
        while !json.is_char_boundary(at) {
            at -= 1;
        }
        let mutated = format!("{}{}{}", &json[..at], insert, &json[at..]);
        for text in [mutated.as_str(), &json[..at]] {
            match ClientMessage::from_json(text) {
                Ok(msg) => prop_assert_eq!(ClientMessage::from_json(&msg.to_json()).unwrap(), msg),
                Err(err) => prop_assert!(!err.to_string().is_empty()),
            }
        }
    }
}

/// Every JSON example in docs/cti-protocol.md (code blocks and the session transcript) is
/// exactly what the codec reads and writes.
#[test]
fn protocol_doc_examples_are_exact() {
    const DOC: &str = include_str!("../../../docs/cti-protocol.md");
    let mut in_json = false;
    let mut checked = (0, 0);
    let mut refused = None;
    for line in DOC.lines() {
        if line.starts_with("```") {
            in_json = line == "```json";
            continue;
        }
        let (direction, text) = if let Some(text) = line.strip_prefix("→ ") {
            (Some(true), text)
        } else if let Some(text) = line.strip_prefix("← ") {
            (Some(false), text)
        } else if in_json && line.starts_with('{') {
            (None, line)
        } else {
            continue;
        };
        let from_client = direction.unwrap_or_else(|| {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let name = value["message"].as_str().unwrap_or_default();
            client::CLIENT_NAMES.contains(&name)
        });
        if from_client {
            match ClientMessage::from_json(text) {
                Ok(msg) => assert_eq!(msg.to_json(), text),
                // A bad message in the transcript: the next line is the link's exact answer.
                Err(err) if direction.is_some() => refused = Some(err.to_event().to_json()),
                Err(err) => panic!("{text}: {err}"),
            }
            checked.0 += 1;
        } else {
            if let Some(answer) = refused.take() {
                assert_eq!(text, answer);
            }
            let event = ServerEvent::from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(event.to_json(), text);
            checked.1 += 1;
        }
    }
    // Every message name appears.
    for name in client::CLIENT_NAMES.iter().chain(&server::SERVER_NAMES) {
        assert!(
            DOC.contains(&format!("{{\"message\":\"{name}\"")),
            "{name} has no example"
        );
    }
    assert!(checked.0 >= 14 && checked.1 >= 10, "{checked:?}");
    assert_eq!(refused, None, "a refused message without its answer");
}

#[test]
fn an_unsolicited_error_has_no_reference_id() {
    let event = ServerEvent::error(
        None,
        ErrorCode::UnknownDn,
        "DN `6001` was removed from the configuration by a reload: its registration ended",
    );
    assert_eq!(
        event.to_json(),
        r#"{"message":"EventError","errorCode":7,"errorMessage":"DN `6001` was removed from the configuration by a reload: its registration ended"}"#
    );
    assert_eq!(ServerEvent::from_json(&event.to_json()).unwrap(), event);
}
