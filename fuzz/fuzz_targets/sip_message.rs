//! Arbitrary bytes parsed as one SIP message: it must never panic, and whatever parses must
//! re-serialize to a fixed point. Mirrors the proptest `message_parse_survives_arbitrary_bytes`
//! in crates/presence-sip/tests/properties.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use presence_sip::{Limits, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::parse(data) {
        let once = message.to_bytes();
        let roomy = Limits {
            max_header_section: usize::MAX,
            max_body: usize::MAX,
            max_headers: usize::MAX,
        };
        let reparsed = Message::parse_with_limits(&once, &roomy).expect("own output parses");
        assert_eq!(reparsed.to_bytes(), once);
    }
});
