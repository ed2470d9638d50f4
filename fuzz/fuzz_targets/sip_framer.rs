//! Arbitrary bytes, cut into chunks, through the SIP framer: it must never panic, must
//! terminate, and must stay poisoned after an error. Mirrors the proptest
//! `framer_survives_arbitrary_bytes` in crates/presence-sip/tests/properties.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use presence_sip::{Framer, Limits, SipError};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size (1..=64), the rest is the stream.
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let size = usize::from(size % 64) + 1;
    let mut framer = Framer::new(Limits::default());
    let mut frames = 0usize;
    for chunk in stream.chunks(size) {
        framer.push(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(_)) => {
                    frames += 1;
                    assert!(frames <= stream.len(), "more frames than bytes");
                }
                Ok(None) => break,
                Err(_) => {
                    assert!(framer.is_poisoned());
                    assert!(matches!(framer.next_frame(), Err(SipError::Poisoned)));
                    return;
                }
            }
        }
    }
});
