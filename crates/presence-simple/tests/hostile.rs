//! Hostile input against the SIP SIMPLE transport: PIDF bodies (the XML classes) and SIP
//! streams and datagrams that feed the sans-IO endpoint (the SIP classes). Each is refused
//! with a clear error within bounded memory, and the next connection (or datagram) is
//! served as if nothing had happened.
//!
//! A counting global allocator ([`peak_alloc`]) measures the peak of heap bytes in use
//! while each case runs, beyond the test's own input; the tests of this binary run one at a
//! time ([`serial`]). Memory bounds are asserted generously; times are printed (`HOSTILE`
//! lines, run with `--nocapture`), never asserted.
//!
//! The PIDF reader's unit tests (`src/pidf/tests.rs`) check its error texts and limits one
//! by one; `src/endpoint/tests.rs` checks that garbage on the stream resets the connection.

use std::time::{Duration, Instant};

use presence_simple::pidf::{self, Limits};
use presence_simple::{Endpoint, EndpointConfig, Event, SimpleError, Transport};
use presence_sip::fuzzing::{feed_until_refused, hostile_streams};
use presence_sip::{Message, Method, Response};
use presence_testproc::heap::{self, PeakAlloc, serial};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// [`heap::measure`] for this crate's cases.
fn measure<T>(name: &str, case: impl FnOnce() -> T) -> (T, usize, Duration) {
    heap::measure(env!("CARGO_PKG_NAME"), name, case)
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";

fn pidf_error(result: Result<pidf::PidfDocument, SimpleError>) -> String {
    match result {
        Err(err @ SimpleError::Pidf { .. }) => err.to_string(),
        other => panic!("expected a PIDF error, got {other:?}"),
    }
}

#[test]
fn pidf_nesting_100000_deep_is_refused_by_size_or_depth() {
    let _serial = serial();
    let body = format!(
        "<presence xmlns=\"{PIDF_NS}\" entity=\"sip:a@test.local\">{}{}</presence>",
        "<x>".repeat(100_000),
        "</x>".repeat(100_000)
    );
    let (result, peak, _) = measure("PIDF nesting 100,000 deep", || pidf::read(body.as_bytes()));
    let text = pidf_error(result);
    assert!(text.contains("more than the limit of 65536"), "{text}");
    assert!(peak < 16 * KIB, "{peak} bytes");

    let roomy = Limits {
        max_body_bytes: 16 * MIB,
        ..Limits::DEFAULT
    };
    let (result, peak, _) = measure("PIDF nesting 100,000 deep, size limit raised", || {
        pidf::read_with(body.as_bytes(), &roomy)
    });
    let text = pidf_error(result);
    assert!(text.contains("32"), "{text}");
    assert!(peak < 64 * KIB, "{peak} bytes");
}

#[test]
fn pidf_doctypes_entities_and_external_references_are_refused() {
    let _serial = serial();
    let mut laughs = String::from("<!DOCTYPE presence [<!ENTITY lol0 \"lol\">");
    for i in 1..10 {
        laughs.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&lol{};", i - 1).repeat(10)
        ));
    }
    laughs.push_str(&format!(
        "]><presence xmlns=\"{PIDF_NS}\" entity=\"sip:a@test.local\"><note>&lol9;</note></presence>"
    ));
    let cases = [
        ("PIDF billion laughs", laughs),
        (
            "PIDF external entity (file)",
            format!(
                "<!DOCTYPE presence [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><presence xmlns=\"{PIDF_NS}\" entity=\"sip:a@test.local\"><note>&xxe;</note></presence>"
            ),
        ),
        (
            "PIDF external DTD (http)",
            format!(
                "<!DOCTYPE presence SYSTEM \"http://127.0.0.1:9/x.dtd\"><presence xmlns=\"{PIDF_NS}\" entity=\"sip:a@test.local\"/>"
            ),
        ),
        (
            "PIDF DOCTYPE",
            format!("<?xml version=\"1.0\"?><!DOCTYPE presence><presence xmlns=\"{PIDF_NS}\"/>"),
        ),
    ];
    for (name, body) in cases {
        let (result, peak, _) = measure(name, || pidf::read(body.as_bytes()));
        let text = pidf_error(result);
        assert!(text.to_lowercase().contains("doctype"), "{name}: {text}");
        assert!(peak < 16 * KIB, "{name}: {peak} bytes");
    }
}

#[test]
fn a_pidf_10_mb_attribute_is_refused_by_size_and_by_text_limit() {
    let _serial = serial();
    let value = "a".repeat(10 * MIB);
    let body = format!("<presence xmlns=\"{PIDF_NS}\" entity=\"sip:{value}@test.local\"/>");
    let (result, peak, _) = measure("PIDF 10 MB attribute", || pidf::read(body.as_bytes()));
    let text = pidf_error(result);
    assert!(text.contains("more than the limit of 65536"), "{text}");
    assert!(peak < 16 * KIB, "{peak} bytes");

    let roomy = Limits {
        max_body_bytes: 16 * MIB,
        ..Limits::DEFAULT
    };
    let (result, peak, _) = measure("PIDF 10 MB attribute, size limit raised", || {
        pidf::read_with(body.as_bytes(), &roomy)
    });
    let text = pidf_error(result);
    assert!(text.contains("4096"), "{text:.300}");
    assert!(text.len() < 1024, "the error quotes {} bytes", text.len());
    assert!(peak < 2 * value.len(), "{peak} bytes");
}

// ----------------------------------------------------------------------------------------
// The endpoint

const HEAD: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKx\r\nFrom: <sip:presence-bridge@test.local>;tag=a\r\nTo: <sip:test.local>;tag=b\r\nCall-ID: hostile\r\nCSeq: 1 OPTIONS\r\n";

/// Connects `ep` and answers its probe with a 200 delivered `chunk` bytes per read; the
/// endpoint must then be ready.
fn connect_and_probe(ep: &mut Endpoint, now: Instant, chunk: usize) {
    ep.connected(now);
    let probe = ep.poll_transmit().expect("the probe");
    let Message::Request(probe) = Message::parse(&probe).unwrap() else {
        panic!("the probe is a request");
    };
    assert_eq!(probe.method(), &Method::Options);
    let mut ok = Response::for_request(&probe, 200, "OK").unwrap();
    ok.set_to_tag("srv").unwrap();
    for piece in ok.to_bytes().chunks(chunk) {
        ep.handle_bytes(piece, now).unwrap();
    }
    let events: Vec<Event> = std::iter::from_fn(|| ep.poll_event()).collect();
    assert!(matches!(events.as_slice(), [Event::Ready]), "{events:?}");
}

#[test]
fn hostile_streams_reset_the_connection_and_the_next_one_is_served() {
    let _serial = serial();
    let now = Instant::now();
    let mut ep = Endpoint::new(
        EndpointConfig::new(Transport::Tcp, "127.0.0.1:40000", "test.local"),
        7,
    );
    let (_, peak, _) = measure("valid answer, one byte per read", || {
        connect_and_probe(&mut ep, now, 1);
    });
    assert!(peak < 64 * KIB, "{peak} bytes");
    for (name, stream) in hostile_streams(HEAD) {
        let ((error, fed), peak, _) = measure(name, || {
            feed_until_refused(&stream, |piece| ep.handle_bytes(piece, now))
        });
        let error = error.unwrap_or_else(|| panic!("{name}: accepted"));
        let events: Vec<Event> = std::iter::from_fn(|| ep.poll_event()).collect();
        assert!(
            matches!(events.as_slice(), [Event::ResetConnection { reason }] if reason.contains(&error.to_string())),
            "{name}: {events:?}"
        );
        // Refused within the first read or two, whatever follows.
        assert!(
            fed <= 128 * KIB,
            "{name}: {fed} bytes read before the refusal"
        );
        assert!(peak < 512 * KIB, "{name}: {peak} bytes");
        // The driver closes the socket and connects again: a clean start.
        ep.disconnected(now);
        connect_and_probe(&mut ep, now, 4096);
    }
}

#[test]
fn hostile_datagrams_are_dropped_and_the_next_one_is_served() {
    let _serial = serial();
    let now = Instant::now();
    let mut ep = Endpoint::new(
        EndpointConfig::new(Transport::Udp, "127.0.0.1:40000", "test.local"),
        7,
    );
    ep.connected(now);
    let probe = ep.poll_transmit().expect("the probe");
    let Message::Request(probe) = Message::parse(&probe).unwrap() else {
        panic!("the probe is a request");
    };
    for (name, datagram) in hostile_streams(HEAD) {
        // A datagram is at most 64 KiB.
        let datagram = &datagram[..datagram.len().min(64 * KIB)];
        let (_, peak, _) = measure(&format!("{name} (UDP)"), || {
            ep.handle_datagram(datagram, now);
        });
        let events: Vec<Event> = std::iter::from_fn(|| ep.poll_event()).collect();
        if name == "Content-Length missing" {
            // Optional on UDP (the datagram delimits the body): a stray answer, ignored.
            assert!(events.is_empty(), "{name}: {events:?}");
        } else {
            assert!(
                matches!(events.as_slice(), [Event::Warning { message }] if message.starts_with("dropped an unreadable datagram")),
                "{name}: {events:?}"
            );
        }
        assert!(peak < 512 * KIB, "{name}: {peak} bytes");
    }
    // Then the real answer to the probe.
    let mut ok = Response::for_request(&probe, 200, "OK").unwrap();
    ok.set_to_tag("srv").unwrap();
    ep.handle_datagram(&ok.to_bytes(), now);
    assert!(matches!(ep.poll_event(), Some(Event::Ready)));
}
