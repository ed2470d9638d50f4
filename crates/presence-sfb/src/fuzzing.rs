//! The body of the fuzz target `sfb_endpoint` (in the repository's `fuzz/` folder), also
//! run by this crate's proptests: one function, two callers, so the fuzzer and CI check the
//! same property and cannot drift apart.
//!
//! It drives the sans-IO [`Endpoint`] (the state machine, not only its parser) with a
//! script read from the input: calls of the caller (publish, unpublish, subscribe,
//! unsubscribe), answers of a pool to the requests the endpoint really sent (any status,
//! with a `409` fault, a piggybacked first notification or a `Retry-After`), notifications
//! in its subscription dialogs, raw bytes, time passing, and lost connections.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use presence_model::{Activities, ActivityText, Availability, Lcid, Presence, SipUri};
use presence_mspres::{Categories, Category, Fault, FaultOperation, StateBody};
use presence_sip::fuzzing::{Peer, Script};
use presence_sip::{Method, Request};

use crate::endpoint::{Endpoint, Event, PublishId};
use crate::settings::{EndpointConfig, Transport};

/// Statuses a pool may answer with, picked by a byte of the script.
const STATUSES: [u16; 18] = [
    100, 180, 200, 202, 400, 401, 403, 404, 408, 409, 413, 423, 480, 481, 486, 500, 503, 504,
];

fn user(n: u8) -> SipUri {
    SipUri::new(&format!("sip:agent{}@contoso.com", n % 4)).expect("a valid URI")
}

fn presence(availability: u16) -> Presence {
    let availability = Availability::new(u32::from(availability) % 18_001).expect("0..=18000");
    let activities = Activities::new(vec![(Lcid::EN_US, ActivityText::new("fuzz"))])
        .unwrap_or_else(|_| Activities::empty());
    Presence {
        availability,
        activities,
    }
}

/// What one run of [`endpoint`] saw: the endpoint's events, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Publications accepted.
    pub published: usize,
    /// Publications given up.
    pub failed: usize,
    /// Presence updates of subscribed users.
    pub presence: usize,
    /// Subscription dialogs accepted.
    pub subscribed: usize,
}

/// Target `sfb_endpoint`: the endpoint never panics whatever the pool sends or when; every
/// publication settles at most once, and only publications that were asked for settle;
/// publications in flight never exceed the configured window. Returns what it saw, so that
/// a test can check that a script reaches where it means to.
pub fn endpoint(data: &[u8]) -> Seen {
    let mut seen = Seen::default();
    let mut script = Script::new(data);
    let mut config = EndpointConfig::new(
        SipUri::new("sip:bridge@contoso.com").expect("a valid URI"),
        Transport::Tcp,
    );
    config.subscription.batch_size = 2;
    config.max_in_flight = 4;
    let window = config.max_in_flight;
    let mut endpoint = Endpoint::new(config, u64::from(script.byte()));
    let mut now = Instant::now();
    let mut pool = Peer::default();
    let mut asked: HashSet<PublishId> = HashSet::new();
    let mut settled: HashSet<PublishId> = HashSet::new();
    endpoint.connected(now);
    pool.read(std::iter::from_fn(|| endpoint.poll_transmit()));
    for _ in 0..256 {
        if script.is_empty() {
            break;
        }
        match script.byte() % 10 {
            0 => {
                let who = user(script.byte());
                let what = presence(script.u16());
                asked.insert(endpoint.publish(who, what, now));
            }
            1 => {
                asked.insert(endpoint.unpublish(user(script.byte()), now));
            }
            2 => {
                let mask = script.byte();
                endpoint.subscribe((0..4).filter(|i| mask & (1 << i) != 0).map(user), now);
            }
            3 => {
                let mask = script.byte();
                endpoint.unsubscribe((0..4).filter(|i| mask & (1 << i) != 0).map(user), now);
            }
            4 | 5 => answer(&mut script, &mut endpoint, &mut pool, now),
            6 => notify(&mut script, &mut endpoint, &pool, now),
            7 => {
                let n = usize::from(script.byte());
                let raw = script.bytes(n).to_vec();
                if endpoint.handle_bytes(&raw, now).is_err() {
                    endpoint.disconnected(now);
                    pool = Peer::default();
                    endpoint.connected(now);
                }
            }
            8 => {
                now += Duration::from_millis(u64::from(script.u16()) * 10);
                endpoint.handle_timeout(now);
            }
            _ => {
                endpoint.disconnected(now);
                pool = Peer::default();
                if script.byte().is_multiple_of(2) {
                    endpoint.connected(now);
                }
            }
        }
        pool.read(std::iter::from_fn(|| endpoint.poll_transmit()));
        while let Some(event) = endpoint.poll_event() {
            match &event {
                Event::Published { .. } => seen.published += 1,
                Event::PublishFailed { .. } => seen.failed += 1,
                Event::Presence { .. } => seen.presence += 1,
                Event::Subscribed { .. } => seen.subscribed += 1,
                _ => {}
            }
            if let Event::Published { id, .. } | Event::PublishFailed { id, .. } = event {
                assert!(
                    asked.contains(&id),
                    "{id:?} settled but was never asked for"
                );
                assert!(settled.insert(id), "{id:?} settled twice");
            }
        }
        assert!(
            endpoint.publications_in_flight() <= window,
            "{} publications in flight, window {window}",
            endpoint.publications_in_flight()
        );
    }
    seen
}

/// A pool's answer to one of the open requests, shaped by the script.
fn answer(script: &mut Script<'_>, endpoint: &mut Endpoint, pool: &mut Peer, now: Instant) {
    let Some(request) = pool.take(script) else {
        return;
    };
    let status = script.pick(&STATUSES);
    let extra = script.byte();
    let mut headers = Vec::new();
    if extra & 1 != 0 {
        headers.push(("Retry-After", (extra >> 4).to_string()));
    }
    let Some(mut response) = Peer::answer(&request, status, &headers) else {
        return;
    };
    if status == 409 && request.method() == &Method::Service {
        let fault = Fault::wrong_delta(vec![FaultOperation {
            index: u32::from(script.byte() % 3),
            version: Some(0),
            cur_version: Some(u32::from(script.byte())),
        }]);
        response = match response.with_body(Fault::CONTENT_TYPE, fault.to_xml().into_bytes()) {
            Ok(r) => r,
            Err(_) => return,
        };
    }
    if (200..300).contains(&status) && request.method() == &Method::Subscribe && extra & 2 != 0 {
        let body = categories(&user(script.byte()), script.u16());
        response = match response.with_body(Categories::CONTENT_TYPE, body) {
            Ok(r) => r,
            Err(_) => return,
        };
    }
    let _ = endpoint.handle_bytes(&response.to_bytes(), now);
}

/// A NOTIFY or BENOTIFY in one of the subscription dialogs, shaped by the script.
fn notify(script: &mut Script<'_>, endpoint: &mut Endpoint, pool: &Peer, now: Instant) {
    let Some(dialog) = pool.subscribe(script) else {
        return;
    };
    let method = if script.byte().is_multiple_of(2) {
        Method::Notify
    } else {
        Method::Benotify
    };
    let state = match script.byte() % 4 {
        0 => "terminated;reason=timeout",
        1 => "terminated;reason=rejected",
        _ => "active;expires=300",
    };
    let cseq = format!("{} {method}", script.byte());
    let body = categories(&user(script.byte()), script.u16());
    let built = Request::new(method, "sip:bridge@contoso.com")
        .and_then(|r| r.header("Via", "SIP/2.0/TCP pool;branch=z9hG4bKfuzz"))
        .and_then(|r| r.header("From", "<sip:bridge@contoso.com>;tag=peer"))
        .and_then(|r| {
            let tag = dialog
                .headers()
                .from_tag()
                .ok()
                .flatten()
                .unwrap_or_default();
            r.header("To", format!("<sip:bridge@contoso.com>;tag={tag}"))
        })
        .and_then(|r| r.header("Call-ID", dialog.headers().call_id().unwrap_or("none")))
        .and_then(|r| r.header("CSeq", cseq))
        .and_then(|r| r.header("Event", "presence"))
        .and_then(|r| r.header("Subscription-State", state))
        .and_then(|r| r.with_body(Categories::CONTENT_TYPE, body));
    if let Ok(request) = built {
        let _ = endpoint.handle_bytes(&request.to_bytes(), now);
    }
}

/// A categories body with the aggregate state of `user`.
fn categories(user: &SipUri, availability: u16) -> Vec<u8> {
    Categories {
        uri: user.to_string(),
        categories: vec![Category {
            name: "state".to_owned(),
            instance: Some(0),
            container: None,
            publish_time: None,
            state: Some(StateBody::aggregate_state(u32::from(availability))),
        }],
    }
    .to_xml()
    .into_bytes()
}
