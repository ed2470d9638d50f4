//! docs/cti-protocol.md cannot drift from the codec: every message it shows (each line of
//! its ```json blocks, and the `→` / `←` lines of its sessions) is read by this crate's
//! codec, as a client message or as a server event, and written back to the same JSON; and
//! the error texts it quotes are the ones the codec writes.

use presence_tlib::{ClientMessage, MessageError, ServerEvent};
use serde_json::Value;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cti-protocol.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Which side sends a message, when the document says so.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Client,
    Server,
    Either,
}

/// Every message of the document: (line number, side, JSON text).
fn messages(doc: &str) -> Vec<(usize, Side, String)> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for (i, line) in doc.lines().enumerate() {
        let number = i + 1;
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(info.trim().to_owned()),
            };
            continue;
        }
        let Some(info) = &fence else { continue };
        if info == "json" {
            if !trimmed.is_empty() {
                out.push((number, Side::Either, trimmed.to_owned()));
            }
        } else if let Some(json) = trimmed.strip_prefix("→ ") {
            out.push((number, Side::Client, json.to_owned()));
        } else if let Some(json) = trimmed.strip_prefix("← ") {
            out.push((number, Side::Server, json.to_owned()));
        }
    }
    out
}

fn same_json(a: &str, b: &str) -> bool {
    serde_json::from_str::<Value>(a).ok() == serde_json::from_str::<Value>(b).ok()
}

#[test]
fn every_message_in_the_protocol_document_is_read_and_written_back_by_the_codec() {
    let doc = doc();
    let messages = messages(&doc);
    let mut failures = Vec::new();
    let (mut clients, mut servers) = (0, 0);
    // A session may show a bad client message on purpose: the next line from the bridge
    // must then be exactly the `EventError` the codec answers it with.
    let mut refused: Option<(usize, MessageError)> = None;
    for (line, side, json) in &messages {
        let client = ClientMessage::from_json(json);
        let server = ServerEvent::from_json(json);
        if let Some((at, error)) = refused.take() {
            let answer = error.to_event().to_json();
            if *side != Side::Server || !same_json(&answer, json) {
                failures.push(format!(
                    "docs/cti-protocol.md:{line}: the answer to the bad message of line {at} must be\n  {answer}\nnot\n  {json}"
                ));
            }
            servers += 1;
            continue;
        }
        let written = match (side, client, server) {
            (Side::Client | Side::Either, Ok(message), _) => {
                clients += 1;
                message.to_json()
            }
            (Side::Server | Side::Either, _, Ok(event)) => {
                servers += 1;
                event.to_json()
            }
            (Side::Client, Err(error), _) => {
                refused = Some((*line, error));
                continue;
            }
            (side, client, server) => {
                failures.push(format!(
                    "docs/cti-protocol.md:{line}: {json}\n  as a client message ({side:?}): {}\n  as a server event: {}",
                    client.err().map_or("read".to_owned(), |e| e.to_string()),
                    server.err().map_or("read".to_owned(), |e| e.to_string()),
                ));
                continue;
            }
        };
        if !same_json(&written, json) {
            failures.push(format!(
                "docs/cti-protocol.md:{line}: the codec writes it differently:\n  doc:   {json}\n  codec: {written}"
            ));
        }
    }
    if let Some((at, error)) = refused {
        failures.push(format!(
            "docs/cti-protocol.md:{at}: a bad client message ({error}) without the bridge's answer"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Every request and every event is shown somewhere.
    assert!(
        clients >= 14 && servers >= 14,
        "{clients} client messages, {servers} server events"
    );
}

/// The inputs behind the document's "Examples of `errorMessage` texts" that the codec
/// itself writes: each text must be what the codec says, word for word.
#[test]
fn the_quoted_error_texts_are_the_codecs() {
    let doc = doc();
    let cases = [
        r#"{"message":"RequestAgentLogin","referenceID":3,"agentID":"agent1"}"#,
        r#"{"message":"RequestAgentNotReady","referenceID":7,"thisDN":"5001","workmode":"Lunch"}"#,
        r#"{"message":"RequestAgentReady","referenceID":"7","thisDN":"5001"}"#,
        r#"{"message":"requestagentlogin","referenceID":3,"thisDN":"5001","agentID":"agent1"}"#,
        r#"{"message":"RequestAgentReady","referenceID":5,"thisDN":"50 01"}"#,
        r#"{"message":"RequestAgentReady","referenceID":5,"thisdn":"5001"}"#,
        r#"{"message":"RegisterAddress","#,
    ];
    let mut texts: Vec<String> = cases
        .iter()
        .map(|input| {
            ClientMessage::from_json(input)
                .expect_err(input)
                .to_string()
        })
        .collect();
    texts.push(MessageError::too_large(70_000, 65_536).to_string());
    for text in texts {
        // Quoted in a list item, or inside an `EventError` (where JSON escapes quotes).
        let escaped = serde_json::to_string(&text).unwrap();
        let escaped = &escaped[1..escaped.len() - 1];
        assert!(
            doc.contains(&text) || doc.contains(escaped),
            "docs/cti-protocol.md should quote the codec's text:\n{text}"
        );
    }
}
