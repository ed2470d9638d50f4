//! A hostile contact-centre client against the engine: what it reports cannot make a DN's
//! state grow without bound, and it does not disturb another client's DN.
//!
//! Requests for DNs that are not in the configuration, or unregistering a DN the client
//! never registered, are refused by `tests/engine.rs`
//! (`refused_requests_get_event_error_and_others_carry_on`).

use std::path::Path;
use std::sync::Arc;

use presence_config::{Addressing, LoadOptions, NoSections, PlatformSpec, Source, load};
use presence_engine::{Engine, EngineConfig, EngineOptions, MAX_CALLS_PER_DN};
use presence_model::{DnNumber, Platform};
use presence_tlib::{
    ClientId, ClientMessage, ClientRequest, ConnId, ErrorCode, LinkInput, MemorySink, ServerEvent,
};
use presence_transport::MemoryTransport;
use tokio::sync::mpsc;

const CONFIG: &str = r#"
[dn."5001"]
type = "Extension"
uri = "sip:agent1@contoso.com"

[dn."5002"]
type = "Extension"
uri = "sip:agent2@contoso.com"
"#;

fn engine_config() -> EngineConfig {
    let source = Source {
        path: Path::new("conf/bridge.toml"),
        text: CONFIG,
    };
    let loaded = load::<NoSections>(&source, &LoadOptions::default(), &mut |_| Ok(Vec::new()))
        .unwrap_or_else(|d| panic!("{d}"));
    let platforms = [PlatformSpec {
        name: Platform::sfb(),
        addressing: Addressing::Sip,
    }];
    let users = loaded
        .config
        .users(&platforms)
        .unwrap_or_else(|d| panic!("{d:?}"));
    EngineConfig::new(loaded.config, users).unwrap()
}

fn dn(s: &str) -> DnNumber {
    DnNumber::new(s).unwrap()
}

fn ringing(this_dn: &str, conn: u64) -> ClientRequest {
    ClientRequest::EventRinging {
        this_dn: dn(this_dn),
        conn_id: ConnId::new(&format!("{conn:016x}")).unwrap(),
    }
}

/// Waits (on the paused clock) until `client` has been sent `n` events.
async fn answered(sink: &MemorySink, client: ClientId, n: usize) {
    for _ in 0..1000 {
        if sink.sent_to(client).len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "{client} was sent {} events, not {n}",
        sink.sent_to(client).len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_invented_calls_is_capped_per_dn() {
    let (transport, events) = MemoryTransport::new(Platform::sfb());
    let sink = Arc::new(MemorySink::new());
    let (engine, handle) = Engine::new(
        engine_config(),
        Arc::new(transport),
        Arc::clone(&sink),
        EngineOptions::default(),
    );
    let (link, link_rx) = mpsc::channel(16);
    tokio::spawn(engine.run(link_rx, events));
    let (hostile, other) = (ClientId::new(1), ClientId::new(2));
    for client in [hostile, other] {
        link.send(LinkInput::Connected(client, "test".into()))
            .await
            .unwrap();
    }
    // 10,000 calls that never end, each with a new connID, on a DN the client never
    // registered.
    for conn in 0..10_000u64 {
        let message = ClientMessage::new(conn + 1, ringing("5001", conn));
        link.send(LinkInput::Message(hostile, message))
            .await
            .unwrap();
    }
    // And one real call on another DN, from another client.
    link.send(LinkInput::Message(
        other,
        ClientMessage::new(1, ringing("5002", 1)),
    ))
    .await
    .unwrap();
    answered(&sink, hostile, 10_000).await;
    answered(&sink, other, 1).await;
    let view = handle.dn("5001").await.unwrap().unwrap();
    assert_eq!(view.calls.len(), MAX_CALLS_PER_DN);
    let answers = sink.sent_to(hostile);
    assert_eq!(answers.len(), 10_000);
    let refused = answers
        .iter()
        .filter(|a| {
            matches!(a, ServerEvent::EventError { error_code: ErrorCode::InvalidState, error_message, .. }
                if error_message.contains("already has 64 calls") && error_message.contains("EventReleased"))
        })
        .count();
    assert_eq!(refused, 10_000 - MAX_CALLS_PER_DN);
    assert_eq!(
        sink.sent_to(other),
        vec![ServerEvent::EventACK { reference_id: 1 }]
    );
    assert_eq!(handle.dn("5002").await.unwrap().unwrap().calls.len(), 1);

    // A call already known is still reported, and a released one makes room.
    let known = ClientMessage::new(20_001, ringing("5001", 0));
    link.send(LinkInput::Message(hostile, known)).await.unwrap();
    let release = ClientMessage::new(
        20_002,
        ClientRequest::EventReleased {
            this_dn: dn("5001"),
            conn_id: ConnId::new(&format!("{:016x}", 1)).unwrap(),
        },
    );
    link.send(LinkInput::Message(hostile, release))
        .await
        .unwrap();
    let new = ClientMessage::new(20_003, ringing("5001", 99_999));
    link.send(LinkInput::Message(hostile, new)).await.unwrap();
    answered(&sink, hostile, 10_003).await;
    let view = handle.dn("5001").await.unwrap().unwrap();
    assert_eq!(view.calls.len(), MAX_CALLS_PER_DN);
    let last: Vec<ServerEvent> = sink.sent_to(hostile).into_iter().skip(10_000).collect();
    assert_eq!(
        last,
        vec![
            ServerEvent::EventACK {
                reference_id: 20_001
            },
            ServerEvent::EventACK {
                reference_id: 20_002
            },
            ServerEvent::EventACK {
                reference_id: 20_003
            },
        ]
    );
}
