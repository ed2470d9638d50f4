//! Hostile input against the framer and the parser: every case is refused with a clear
//! error, within bounded memory, and without reading more than the limits allow.
//!
//! A counting global allocator ([`peak_alloc`]) measures the peak of heap bytes in use
//! while each case runs; the tests of this binary run one at a time ([`serial`]) so that
//! no other test's allocations are counted. Memory bounds are asserted (generously);
//! times are measured and printed (`HOSTILE` lines, run with `--nocapture`), never
//! asserted.
//!
//! The detailed error texts and offsets of most of these inputs are checked by the
//! framer's and parser's unit tests (`src/framer.rs`, `src/parse.rs`) and
//! `tests/properties.rs`; here each class is driven at full size and measured.

use std::time::Duration;

use presence_sip::{Frame, Framer, Limits, Message, SipError};
use presence_testproc::heap::{self, PeakAlloc, serial};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// [`heap::measure`] for this crate's cases.
fn measure<T>(name: &str, case: impl FnOnce() -> T) -> (T, usize, Duration) {
    heap::measure(env!("CARGO_PKG_NAME"), name, case)
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Pushes `stream` in `chunk`-byte reads, draining frames after each read as a driver
/// does; returns the frames and the first error, and the most bytes ever buffered.
fn feed(framer: &mut Framer, stream: &[u8], chunk: usize) -> (Vec<Frame>, Option<SipError>, usize) {
    let mut frames = Vec::new();
    let mut most = 0;
    for piece in stream.chunks(chunk) {
        framer.push(piece);
        most = most.max(framer.buffered());
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error), most),
            }
        }
    }
    (frames, None, most)
}

fn head(extra: &str) -> String {
    format!(
        "NOTIFY sip:bridge@contoso.com SIP/2.0\r\nVia: SIP/2.0/TCP pool:5061;branch=z9hG4bK1\r\nCall-ID: c1\r\nCSeq: 1 NOTIFY\r\n{extra}\r\n"
    )
}

#[test]
fn a_huge_content_length_is_refused_before_any_body_byte_is_buffered() {
    let _serial = serial();
    let mut stream = head("Content-Length: 1000000000000\r\n").into_bytes();
    let header_len = stream.len();
    // What a hostile peer sends after it: 4 MiB of body.
    stream.resize(header_len + 4 * MIB, b'x');
    let ((frames, error, most), peak, _) = measure("Content-Length 10^12", || {
        let mut framer = Framer::default();
        let fed = feed(&mut framer, &stream, 64 * KIB);
        // Poisoned: whatever else arrives is dropped, not buffered.
        framer.push(&stream[..64 * KIB]);
        assert_eq!(framer.buffered(), 0);
        fed
    });
    assert!(frames.is_empty());
    match error {
        Some(SipError::BodyTooLarge {
            declared, limit, ..
        }) => assert_eq!((declared, limit), (1_000_000_000_000, MIB)),
        other => panic!("{other:?}"),
    }
    // The first read only: the refusal comes with the header section.
    assert!(most <= 64 * KIB, "{most}");
    assert!(peak < 512 * KIB, "{peak} bytes");
}

#[test]
fn a_negative_content_length_is_an_invalid_value() {
    let _serial = serial();
    let stream = head("Content-Length: -5\r\n").into_bytes();
    let ((_, error, _), peak, _) = measure("Content-Length -5", || {
        feed(&mut Framer::default(), &stream, 4 * KIB)
    });
    match error {
        Some(SipError::InvalidHeaderValue { name, token, .. }) => {
            assert_eq!((name.as_str(), token.as_str()), ("Content-Length", "-5"));
        }
        other => panic!("{other:?}"),
    }
    assert!(peak < 64 * KIB, "{peak} bytes");
}

#[test]
fn a_missing_content_length_on_a_stream_is_refused() {
    let _serial = serial();
    let mut stream = head("").into_bytes();
    stream.extend_from_slice(b"a body the framer cannot delimit");
    let ((frames, error, _), peak, _) = measure("Content-Length missing", || {
        feed(&mut Framer::default(), &stream, 4 * KIB)
    });
    assert!(frames.is_empty());
    assert!(
        matches!(error, Some(SipError::MissingContentLength { offset: 0 })),
        "{error:?}"
    );
    assert!(peak < 64 * KIB, "{peak} bytes");
}

#[test]
fn duplicated_content_lengths_that_differ_are_refused() {
    let _serial = serial();
    let mut stream = head("Content-Length: 4\r\nl: 400\r\n").into_bytes();
    stream.extend_from_slice(b"body");
    let ((_, error, _), peak, _) = measure("Content-Length twice, 4 and 400", || {
        feed(&mut Framer::default(), &stream, 4 * KIB)
    });
    assert!(
        matches!(
            error,
            Some(SipError::ConflictingContentLength {
                first: 4,
                second: 400,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(peak < 64 * KIB, "{peak} bytes");
}

#[test]
fn a_body_longer_than_its_content_length_breaks_at_the_excess() {
    let _serial = serial();
    let mut stream = head("Content-Length: 2\r\n").into_bytes();
    let body_start = stream.len();
    stream.extend_from_slice(b"hello\r\n\r\n");
    let ((frames, error, _), peak, _) = measure("body longer than Content-Length", || {
        feed(&mut Framer::default(), &stream, 4 * KIB)
    });
    // The message ends where Content-Length says; the excess is read as the next
    // message's start line, which it is not.
    let [Frame::Message(message)] = frames.as_slice() else {
        panic!("{frames:?}");
    };
    assert_eq!(message.body().as_ref(), b"he");
    match error {
        Some(SipError::InvalidStartLine { offset, token }) => {
            assert_eq!((offset, token.as_str()), (body_start + 2, "llo"));
        }
        other => panic!("{other:?}"),
    }
    assert!(peak < 64 * KIB, "{peak} bytes");
}

#[test]
fn a_body_shorter_than_its_content_length_holds_at_most_the_declared_bytes() {
    let _serial = serial();
    let mut stream = head("Content-Length: 1000\r\n").into_bytes();
    let header_len = stream.len();
    stream.extend_from_slice(b"short");
    // The peer goes on with well-formed messages: they are swallowed into the body.
    let next = head("Content-Length: 0\r\n").into_bytes();
    for _ in 0..100 {
        stream.extend_from_slice(&next);
    }
    let ((frames, error, most), peak, _) = measure("body shorter than Content-Length", || {
        feed(&mut Framer::default(), &stream, 512)
    });
    assert!(
        error.is_some(),
        "the excess after the body is not a message"
    );
    let Some(Frame::Message(first)) = frames.first() else {
        panic!("{frames:?}");
    };
    assert_eq!(first.body().len(), 1000);
    assert!(most <= header_len + 1000 + 512, "{most}");
    assert!(peak < 64 * KIB, "{peak} bytes");
    // As one message (a datagram), the shortfall is named.
    let mut datagram = head("Content-Length: 1000\r\n").into_bytes();
    datagram.extend_from_slice(b"short");
    assert!(matches!(
        Message::parse(&datagram),
        Err(SipError::Truncated {
            expected: 1000,
            actual: 5,
            ..
        })
    ));
}

#[test]
fn a_header_section_that_never_ends_stops_at_the_limit() {
    let _serial = serial();
    let mut stream = b"NOTIFY sip:bridge@contoso.com SIP/2.0\r\n".to_vec();
    while stream.len() < 16 * MIB {
        stream.extend_from_slice(b"X-Endless: more and more and more\r\n");
    }
    let ((frames, error, most), peak, _) = measure("endless header lines (16 MiB offered)", || {
        feed(&mut Framer::default(), &stream, 16 * KIB)
    });
    assert!(frames.is_empty());
    assert!(
        matches!(
            error,
            Some(SipError::HeaderSectionTooLarge {
                offset: 0,
                limit: 65536
            })
        ),
        "{error:?}"
    );
    assert!(most <= 64 * KIB + 16 * KIB, "{most}");
    assert!(peak < 512 * KIB, "{peak} bytes");
}

#[test]
fn nul_bytes_and_invalid_utf8_in_headers_are_refused() {
    let _serial = serial();
    let nul = head("X-Evil: a\0b\r\nContent-Length: 0\r\n").into_bytes();
    let ((_, error, _), peak, _) = measure("NUL byte in a header", || {
        feed(&mut Framer::default(), &nul, 4 * KIB)
    });
    let at = nul.iter().position(|&b| b == 0).unwrap();
    assert!(
        matches!(error, Some(SipError::ControlCharacter { offset, byte: 0 }) if offset == at),
        "{error:?}"
    );
    assert!(peak < 64 * KIB, "{peak} bytes");

    let mut bad = head("X-Evil: caf#\r\nContent-Length: 0\r\n").into_bytes();
    let at = bad.iter().position(|&b| b == b'#').unwrap();
    bad[at] = 0xC3; // a lead byte without its continuation
    let ((_, error, _), peak, _) = measure("invalid UTF-8 in a header", || {
        feed(&mut Framer::default(), &bad, 4 * KIB)
    });
    assert!(
        matches!(error, Some(SipError::InvalidUtf8 { offset, .. }) if offset == at),
        "{error:?}"
    );
    assert!(peak < 64 * KIB, "{peak} bytes");
}

/// `n` Via lines, as a real proxy chain would write them (about 40 bytes each).
fn vias(n: usize) -> String {
    (0..n)
        .map(|i| format!("Via: SIP/2.0/TCP proxy{i}.contoso.com;branch=z9hG4bK{i}\r\n"))
        .collect()
}

#[test]
fn ten_thousand_via_headers_are_refused_by_the_limits_and_parse_linearly_without_them() {
    let _serial = serial();
    // Full lines: the header section limit (64 KiB) is met first.
    let full = format!("{}Content-Length: 0\r\n\r\n", head(&vias(10_000))).into_bytes();
    let ((_, error, _), peak, _) = measure("10,000 Via headers (512 KB)", || {
        feed(&mut Framer::default(), &full, 64 * KIB)
    });
    assert!(
        matches!(error, Some(SipError::HeaderSectionTooLarge { .. })),
        "{error:?}"
    );
    assert!(peak < 512 * KIB, "{peak} bytes");

    // Compact lines fit the size limit: the field count limit (256) refuses them.
    let compact = format!("{}l: 0\r\n\r\n", head(&"v: x\r\n".repeat(10_000))).into_bytes();
    assert!(compact.len() < 64 * KIB);
    let ((_, error, _), peak, _) = measure("10,000 compact Via headers (60 KB)", || {
        feed(&mut Framer::default(), &compact, 64 * KIB)
    });
    assert!(
        matches!(
            error,
            Some(SipError::TooManyHeaders {
                count: 257,
                limit: 256,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(peak < 512 * KIB, "{peak} bytes");

    // With the limits raised, the parse and the typed helpers stay linear.
    let roomy = Limits {
        max_header_section: MIB,
        max_headers: 20_000,
        ..Limits::DEFAULT
    };
    let (message, peak, _) = measure("10,000 Via headers, limits raised", || {
        let message = Message::parse_with_limits(&full, &roomy).unwrap();
        assert_eq!(message.headers().get_all("v").count(), 10_001);
        assert_eq!(
            message.headers().via_branch().unwrap().as_deref(),
            Some("z9hG4bK1")
        );
        message
    });
    assert!(
        peak < 4 * full.len(),
        "{peak} bytes for {} bytes",
        full.len()
    );
    drop(message);
}

#[test]
fn a_body_of_megabytes_is_refused_from_its_content_length() {
    let _serial = serial();
    let body = 8 * MIB;
    let mut stream = head(&format!("Content-Length: {body}\r\n")).into_bytes();
    stream.resize(stream.len() + body, b'<');
    let ((frames, error, most), peak, _) = measure("8 MiB body", || {
        feed(&mut Framer::default(), &stream, 64 * KIB)
    });
    assert!(frames.is_empty());
    assert!(
        matches!(error, Some(SipError::BodyTooLarge { declared, .. }) if declared == body),
        "{error:?}"
    );
    assert!(most <= 64 * KIB, "{most}");
    assert!(peak < 512 * KIB, "{peak} bytes");

    // Within a raised limit the body is taken whole: memory is the body and not much more.
    let roomy = Limits {
        max_body: 16 * MIB,
        ..Limits::DEFAULT
    };
    let ((frames, error, _), peak, _) = measure("8 MiB body, limit raised", || {
        feed(&mut Framer::new(roomy), &stream, 64 * KIB)
    });
    assert!(error.is_none(), "{error:?}");
    assert!(matches!(frames.as_slice(), [Frame::Message(m)] if m.body().len() == body));
    assert!(peak < body + body / 2, "{peak} bytes for a body of {body}");
}

#[test]
fn a_valid_message_one_byte_per_read_is_the_same_message() {
    let _serial = serial();
    let mut stream = head(&format!(
        "From: <sip:pool@contoso.com>;tag=1\r\nTo: <sip:bridge@contoso.com>;tag=2\r\nContent-Type: application/msrtc-event-categories+xml\r\n{}Content-Length: 2048\r\n",
        "X-Filler: abcdefghijklmnopqrstuvwxyz0123456789\r\n".repeat(20)
    ))
    .into_bytes();
    stream.resize(stream.len() + 2048, b'a');
    let whole = Message::parse(&stream).unwrap();
    let ((frames, error, most), peak, _) = measure("valid message, one byte per read", || {
        feed(&mut Framer::default(), &stream, 1)
    });
    assert!(error.is_none(), "{error:?}");
    assert_eq!(frames, vec![Frame::Message(whole)]);
    assert!(most <= stream.len());
    assert!(
        peak < 16 * stream.len(),
        "{peak} bytes for {}",
        stream.len()
    );
}
