//! Contact-centre link messages (presence-tlib JSON): any input either parses into a message
//! that is written and read back equal, or is refused with an error that converts into a
//! valid `EventError`. Mirrors the proptests `arbitrary_strings_never_panic` and
//! `arbitrary_json_never_panics` in presence-tlib/src/tests.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use presence_tlib::{ClientMessage, ServerEvent};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientMessage::from_json(text) {
        Ok(msg) => {
            let again = ClientMessage::from_json(&msg.to_json()).expect("a written message reads back");
            assert_eq!(again, msg);
        }
        Err(err) => {
            let event = err.to_event();
            let again = ServerEvent::from_json(&event.to_json()).expect("an EventError reads back");
            assert_eq!(again, event);
        }
    }
    if let Ok(event) = ServerEvent::from_json(text) {
        let again = ServerEvent::from_json(&event.to_json()).expect("a written event reads back");
        assert_eq!(again, event);
    }
});
