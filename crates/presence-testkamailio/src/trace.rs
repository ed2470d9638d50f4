//! SIPp's `-trace_msg` message log.
//!
//! SIPp 3.6 writes one entry per message:
//!
//! ```text
//! ----------------------------------------------- 2026-12-02 04:43:58.628981
//! UDP message received [482] bytes :
//!
//! NOTIFY sip:watcher1@127.0.0.1:59351;transport=UDP SIP/2.0
//! ...exactly 482 bytes of the message...
//!
//! ```
//!
//! and `UDP message sent (399 bytes):` for sent ones (`TCP` over TCP). The count is the
//! message's exact length; a newline follows. SIPp flushes each entry, so the file can be
//! read while SIPp runs (an entry still being written is left for the next read).

use presence_sip::{Framer, Limits, Message};

/// Which way a traced message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// SIPp received it.
    Received,
    /// SIPp sent it.
    Sent,
}

/// One message from SIPp's message trace.
#[derive(Clone, Debug)]
pub struct TracedMessage {
    /// Received or sent.
    pub direction: Direction,
    /// `UDP` or `TCP`.
    pub transport: String,
    /// SIPp's timestamp (`2026-12-02 04:43:58.628981`).
    pub at: String,
    /// The message.
    pub message: Message,
}

const RECEIVED: &[u8] = b" message received [";
const SENT: &[u8] = b" message sent (";

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Parses a trace. Entries whose message is not complete yet, or does not parse as SIP,
/// are skipped.
pub fn parse_trace(data: &[u8]) -> Vec<TracedMessage> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let r = find(data, RECEIVED, pos);
        let s = find(data, SENT, pos);
        let (at, direction, needle, close): (usize, Direction, &[u8], &[u8]) = match (r, s) {
            (Some(r), Some(s)) if r < s => (r, Direction::Received, RECEIVED, b"] bytes :\n\n"),
            (Some(r), None) => (r, Direction::Received, RECEIVED, b"] bytes :\n\n"),
            (_, Some(s)) => (s, Direction::Sent, SENT, b" bytes):\n\n"),
            (None, None) => return out,
        };
        let line_start = data[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let transport = String::from_utf8_lossy(&data[line_start..at]).into_owned();
        // The separator line before: "-----... DATE TIME".
        let stamp = line_start
            .checked_sub(1)
            .and_then(|end| {
                let start = data[..end]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let line = String::from_utf8_lossy(&data[start..end]).into_owned();
                line.trim_start_matches('-').trim().to_owned().into()
            })
            .unwrap_or_default();
        let digits_start = at + needle.len();
        let digits_len = data[digits_start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let count: Option<usize> =
            std::str::from_utf8(&data[digits_start..digits_start + digits_len])
                .ok()
                .and_then(|d| d.parse().ok());
        let after_digits = digits_start + digits_len;
        let Some(count) = count else {
            pos = after_digits.max(at + 1);
            continue;
        };
        if !data[after_digits..].starts_with(close) {
            if data.len() < after_digits + close.len() {
                return out; // still being written
            }
            pos = after_digits;
            continue;
        }
        let body_start = after_digits + close.len();
        let Some(chunk) = data.get(body_start..body_start + count) else {
            return out; // still being written
        };
        for message in split_messages(chunk) {
            out.push(TracedMessage {
                direction,
                transport: transport.clone(),
                at: stamp.clone(),
                message,
            });
        }
        pos = body_start + count;
    }
}

/// One logged chunk is normally one message; a TCP read could hold several.
fn split_messages(chunk: &[u8]) -> Vec<Message> {
    let mut framer = Framer::new(Limits::default());
    framer.push(chunk);
    let mut messages = Vec::new();
    while let Ok(Some(m)) = framer.next_message() {
        messages.push(m);
    }
    if messages.is_empty()
        && let Ok(m) = Message::parse(chunk)
    {
        messages.push(m);
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_parsed_and_a_partial_one_is_left() {
        let notify = "NOTIFY sip:w@127.0.0.1:5 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6;branch=z9hG4bK1\r\nCall-ID: c1\r\nCSeq: 2 NOTIFY\r\nSubscription-State: active;expires=600\r\nContent-Type: application/pidf+xml\r\nContent-Length: 4\r\n\r\n<a/>";
        let ok = "SIP/2.0 200 OK\r\nCall-ID: c1\r\nCSeq: 2 NOTIFY\r\nContent-Length: 0\r\n\r\n";
        let mut log = format!(
            "----------------------------------------------- 2026-12-02 04:43:58.628981\n\
             UDP message received [{}] bytes :\n\n{notify}\n\n\
             ----------------------------------------------- 2026-12-02 04:43:58.629115\n\
             UDP message sent ({} bytes):\n\n{ok}\n\n",
            notify.len(),
            ok.len()
        );
        log.push_str(
            "----------------------------------------------- 2026-12-02 04:43:59.0\n\
             UDP message received [500] bytes :\n\nNOTIFY sip:",
        );
        let got = parse_trace(log.as_bytes());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].direction, Direction::Received);
        assert_eq!(got[0].transport, "UDP");
        assert_eq!(got[0].at, "2026-12-02 04:43:58.628981");
        assert_eq!(&got[0].message.body()[..], b"<a/>");
        assert_eq!(got[1].direction, Direction::Sent);
        assert!(!got[1].message.is_request());
    }
}
