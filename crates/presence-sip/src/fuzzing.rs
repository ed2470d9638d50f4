//! The bodies of the fuzz targets `sip_framer` and `sip_message` (in the repository's
//! `fuzz/` folder), also run by this crate's proptests: one function, two callers, so the
//! fuzzer and CI check the same property and cannot drift apart. Each panics when the
//! property does not hold.

use crate::{Framer, Limits, Message, SipError};

/// Target `sip_framer`: the first byte picks a chunk size (1..=64), the rest is a stream
/// pushed through a [`Framer`] in chunks of that size. Never a panic, never more frames
/// than bytes, and after an error the framer stays poisoned. Returns the number of frames
/// and the error that ended the stream, if any.
pub fn framer(data: &[u8]) -> (usize, Option<SipError>) {
    let Some((&size, stream)) = data.split_first() else {
        return (0, None);
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
                Err(error) => {
                    assert!(framer.is_poisoned(), "an error poisons the framer");
                    assert!(
                        matches!(framer.next_frame(), Err(SipError::Poisoned)),
                        "a poisoned framer says so"
                    );
                    return (frames, Some(error));
                }
            }
        }
    }
    (frames, None)
}

/// Target `sip_message`: arbitrary bytes parsed as one SIP message. Never a panic, and
/// what parses re-serializes to a fixed point.
pub fn message(data: &[u8]) {
    if let Ok(message) = Message::parse(data) {
        let once = message.to_bytes();
        let roomy = Limits {
            max_header_section: usize::MAX,
            max_body: usize::MAX,
            max_headers: usize::MAX,
        };
        let reparsed = Message::parse_with_limits(&once, &roomy).expect("own output parses");
        assert_eq!(reparsed.to_bytes(), once, "serialization is a fixed point");
    }
}
