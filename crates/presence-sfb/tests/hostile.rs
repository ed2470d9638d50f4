//! Hostile SIP streams from the pool (or anything posing as it) into the SfB endpoint, where
//! the framer feeds the state machine: each is refused with a reset of the connection,
//! within bounded memory, and the next connection publishes as if nothing had happened.
//!
//! A counting global allocator ([`peak_alloc`]) measures the peak of heap bytes in use
//! while each case runs, beyond the test's own input; the tests of this binary run one at a
//! time ([`serial`]). Memory bounds are asserted generously; times are printed (`HOSTILE`
//! lines, run with `--nocapture`), never asserted.
//!
//! `src/endpoint/tests.rs` (`garbage_asks_for_a_reset_and_keepalives_expect_an_answer`)
//! checks the reset on garbage; presence-sip's `tests/hostile.rs` the framer's errors.

use std::time::{Duration, Instant};

use presence_model::{Activities, ActivityText, Availability, Lcid, Presence, SipUri};
use presence_sfb::settings::Transport;
use presence_sfb::{Endpoint, EndpointConfig, Event};
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

const HEAD: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.5:5061;branch=z9hG4bKx\r\nFrom: <sip:bridge@contoso.com>;tag=a\r\nTo: <sip:agent1@contoso.com>;tag=b\r\nCall-ID: hostile\r\nCSeq: 1 SERVICE\r\n";

fn user() -> SipUri {
    SipUri::new("sip:agent1@contoso.com").unwrap()
}

fn presence() -> Presence {
    Presence {
        availability: Availability::new(6500).unwrap(),
        activities: Activities::new(vec![(Lcid::EN_US, ActivityText::new("In a call"))]).unwrap(),
    }
}

fn endpoint() -> Endpoint {
    let mut config = EndpointConfig::new(
        SipUri::new("sip:bridge@contoso.com").unwrap(),
        Transport::Tcp,
    );
    config.keepalive = None;
    Endpoint::new(config, 42)
}

/// Publishes one state and answers it with a 200 delivered `chunk` bytes per read: the
/// publication must be settled as accepted.
fn publish_and_accept(ep: &mut Endpoint, now: Instant, chunk: usize) {
    let id = ep.publish(user(), presence(), now);
    let wire: Vec<u8> = std::iter::from_fn(|| ep.poll_transmit())
        .flatten()
        .collect();
    let Message::Request(request) = Message::parse(&wire).unwrap() else {
        panic!("the publication is a request");
    };
    assert_eq!(request.method(), &Method::Service);
    let mut ok = Response::for_request(&request, 200, "OK").unwrap();
    ok.set_to_tag("pool").unwrap();
    for piece in ok.to_bytes().chunks(chunk) {
        ep.handle_bytes(piece, now).unwrap();
    }
    let events: Vec<Event> = std::iter::from_fn(|| ep.poll_event()).collect();
    assert!(
        matches!(events.as_slice(), [Event::Published { id: done, .. }] if *done == id),
        "{events:?}"
    );
}

#[test]
fn hostile_streams_reset_the_connection_and_the_next_one_publishes() {
    let _serial = serial();
    let now = Instant::now();
    let mut ep = endpoint();
    ep.connected(now);
    let (_, peak, _) = measure("valid answer, one byte per read", || {
        publish_and_accept(&mut ep, now, 1);
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
        assert!(
            fed <= 128 * KIB,
            "{name}: {fed} bytes read before the refusal"
        );
        assert!(peak < 512 * KIB, "{name}: {peak} bytes");
        // The driver closes the socket and connects again: a clean start.
        ep.disconnected(now);
        ep.connected(now);
        publish_and_accept(&mut ep, now, 4096);
    }
}
