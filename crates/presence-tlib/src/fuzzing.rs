//! The body of the fuzz target `tlib_json` (in the repository's `fuzz/` folder), also run
//! by this crate's proptests: one function, two callers, so the fuzzer and CI check the
//! same property and cannot drift apart.

use crate::{ClientMessage, ServerEvent};

/// Target `tlib_json`: any input (as UTF-8 text; other bytes are not a text frame) either
/// parses as a client message that is written and read back equal, or is refused with an
/// error that converts into a valid `EventError`; and whatever parses as a server event is
/// written and read back equal. Panics when that does not hold.
pub fn json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientMessage::from_json(text) {
        Ok(message) => {
            let again =
                ClientMessage::from_json(&message.to_json()).expect("a written message reads back");
            assert_eq!(again, message, "a written message reads back equal");
        }
        Err(error) => {
            let event = error.to_event();
            let again = ServerEvent::from_json(&event.to_json()).expect("an EventError reads back");
            assert_eq!(again, event, "an EventError reads back equal");
        }
    }
    if let Ok(event) = ServerEvent::from_json(text) {
        let again = ServerEvent::from_json(&event.to_json()).expect("a written event reads back");
        assert_eq!(again, event, "a written event reads back equal");
    }
}
