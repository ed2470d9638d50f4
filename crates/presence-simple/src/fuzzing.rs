//! The body of the fuzz target `simple_endpoint` (in the repository's `fuzz/` folder), also
//! run by this crate's proptests: one function, two callers, so the fuzzer and CI check the
//! same property and cannot drift apart. (The PIDF reader's and the digest reader's bodies
//! are [`crate::pidf::fuzz_read`] and [`crate::digest::fuzz_challenge`].)
//!
//! It drives the sans-IO [`Endpoint`] (the state machine, not only its parsers) with a
//! script read from the input: calls of the caller, answers of a presence server to the
//! requests the endpoint really sent (any status, with `SIP-ETag`, `Expires`,
//! `Min-Expires`, `Retry-After` or a digest challenge), NOTIFYs in its dialogs (PIDF bodies,
//! empty bodies, `terminated`), raw bytes, time passing, and lost connections.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use presence_model::{
    Activities, ActivityText, AggregatedStateId, Availability, Lcid, Presence, Publication, SipUri,
};
use presence_sip::fuzzing::{Peer, Script};
use presence_sip::{Method, Request};

use crate::digest::Credentials;
use crate::endpoint::{Endpoint, Event, PublishId};
use crate::settings::{EndpointConfig, Transport};

/// Statuses a server may answer with, picked by a byte of the script.
const STATUSES: [u16; 18] = [
    100, 180, 200, 202, 400, 401, 403, 404, 407, 408, 412, 423, 480, 481, 489, 500, 503, 504,
];

/// NOTIFY bodies, picked by a byte of the script (the last: the script's own bytes).
const BODIES: [&str; 4] = [
    "",
    r#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:agent1@test.local"><tuple id="t"><status><basic>open</basic></status></tuple><dm:person id="p"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person></presence>"#,
    r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:agent1@test.local"><tuple id="t"><status><basic>closed</basic></status><note xml:lang="en">Gone</note></tuple></presence>"#,
    r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:agent1@test.local"><tuple id="t"><status><basic>open</basic></status></tuple></presence>"#,
];

fn user(n: u8) -> SipUri {
    SipUri::new(&format!("sip:agent{}@test.local", n % 4)).expect("a valid URI")
}

fn publication(availability: u16) -> Publication {
    let availability = Availability::new(u32::from(availability) % 18_001).expect("0..=18000");
    Publication {
        id: AggregatedStateId::new("FUZZ").expect("a valid ID"),
        presence: Presence {
            availability,
            activities: Activities::new(vec![(Lcid::EN_US, ActivityText::new("fuzz"))])
                .unwrap_or_else(|_| Activities::empty()),
        },
    }
}

/// The server's side: the peer of the endpoint, and its NOTIFY CSeqs (increasing).
#[derive(Default)]
struct Server {
    peer: Peer,
    cseq: u32,
}

/// What one run of [`endpoint`] saw: the endpoint's events, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The server answered a probe.
    pub ready: usize,
    /// Publications (and removals) accepted.
    pub published: usize,
    /// Publications given up.
    pub failed: usize,
    /// Presence updates of subscribed users.
    pub presence: usize,
    /// Subscription dialogs accepted.
    pub subscribed: usize,
}

/// Target `simple_endpoint`: the endpoint never panics whatever the server sends or when;
/// every publication settles at most once and only publications that were asked for
/// settle; publications on the wire never exceed the configured window; a user's
/// `Subscribed` comes before its presence updates of the same dialog. Returns what it saw,
/// so that a test can check that a script reaches where it means to.
pub fn endpoint(data: &[u8]) -> Seen {
    let mut script = Script::new(data);
    let mut config = EndpointConfig::new(Transport::Tcp, "127.0.0.1:40000", "test.local");
    config.max_in_flight = 3;
    config.credentials = Some(Credentials::new("bridge", "secret"));
    let window = config.max_in_flight;
    let mut endpoint = Endpoint::new(config, u64::from(script.byte()));
    let mut now = Instant::now();
    let mut server = Server::default();
    let mut seen = Seen::default();
    let mut asked: HashSet<PublishId> = HashSet::new();
    let mut settled: HashSet<PublishId> = HashSet::new();
    let mut announced: HashSet<SipUri> = HashSet::new();
    endpoint.connected(now);
    server
        .peer
        .read(std::iter::from_fn(|| endpoint.poll_transmit()));
    for _ in 0..256 {
        if script.is_empty() {
            break;
        }
        // Whether this step's NOTIFY (if any) was in an active dialog.
        let mut active_notify = false;
        match script.byte() % 10 {
            0 => {
                let who = user(script.byte());
                let what = publication(script.u16());
                asked.insert(endpoint.publish(who, &what, now));
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
                let gone: Vec<SipUri> = (0..4).filter(|i| mask & (1 << i) != 0).map(user).collect();
                for u in &gone {
                    announced.remove(u);
                }
                endpoint.unsubscribe(gone, now);
            }
            4 | 5 => answer(&mut script, &mut endpoint, &mut server, now),
            6 => active_notify = notify(&mut script, &mut endpoint, &mut server, now),
            7 => {
                let n = usize::from(script.byte());
                let raw = script.bytes(n).to_vec();
                if endpoint.handle_bytes(&raw, now).is_err() {
                    endpoint.disconnected(now);
                    server = Server::default();
                    announced.clear();
                    endpoint.connected(now);
                }
            }
            8 => {
                now += Duration::from_millis(u64::from(script.u16()) * 10);
                endpoint.handle_timeout(now);
            }
            _ => {
                endpoint.disconnected(now);
                server = Server::default();
                announced.clear();
                if script.byte().is_multiple_of(2) {
                    endpoint.connected(now);
                }
            }
        }
        server
            .peer
            .read(std::iter::from_fn(|| endpoint.poll_transmit()));
        while let Some(event) = endpoint.poll_event() {
            match event {
                Event::Ready => seen.ready += 1,
                Event::Published { id, .. } | Event::PublishFailed { id, .. } => {
                    if matches!(event, Event::Published { .. }) {
                        seen.published += 1;
                    } else {
                        seen.failed += 1;
                    }
                    assert!(
                        asked.contains(&id),
                        "{id:?} settled but was never asked for"
                    );
                    assert!(settled.insert(id), "{id:?} settled twice");
                }
                Event::Presence { user, .. } => {
                    seen.presence += 1;
                    // A terminated NOTIFY may carry a last state without its dialog
                    // having been reported (the subscription is made anew and reported
                    // then); an active one never does.
                    assert!(
                        !active_notify || announced.contains(&user),
                        "presence of {user} in an active dialog before its subscription was reported"
                    );
                }
                Event::Subscribed { users } => {
                    seen.subscribed += 1;
                    announced.extend(users);
                }
                _ => {}
            }
        }
        assert!(
            endpoint.publications_in_flight() <= window,
            "{} publications on the wire, window {window}",
            endpoint.publications_in_flight()
        );
    }
    seen
}

/// A server's answer to one of the open requests, shaped by the script.
fn answer(script: &mut Script<'_>, endpoint: &mut Endpoint, server: &mut Server, now: Instant) {
    let Some(request) = server.peer.take(script) else {
        return;
    };
    let status = script.pick(&STATUSES);
    let extra = script.byte();
    let mut headers: Vec<(&str, String)> = Vec::new();
    if (200..300).contains(&status) {
        headers.push(("Expires", (u32::from(extra) * 10).to_string()));
        if request.method() == &Method::Publish {
            headers.push(("SIP-ETag", format!("e{}", script.byte())));
        }
    }
    if status == 423 {
        headers.push(("Min-Expires", (u32::from(script.byte()) * 10).to_string()));
    }
    if extra & 1 != 0 {
        headers.push(("Retry-After", (extra >> 5).to_string()));
    }
    if status == 401 || status == 407 {
        let name = if status == 401 {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        let algorithm = ["MD5", "SHA-256", "SHA-512-256", "MD5-sess"][usize::from(extra >> 6)];
        let stale = if extra & 2 != 0 { ", stale=true" } else { "" };
        headers.push((
            name,
            format!(
                "Digest realm=\"test.local\", nonce=\"n{}\", qop=\"auth\", algorithm={algorithm}{stale}",
                script.byte()
            ),
        ));
    }
    if let Some(response) = Peer::answer(&request, status, &headers) {
        let _ = endpoint.handle_bytes(&response.to_bytes(), now);
    }
}

/// A NOTIFY in one of the subscription dialogs, shaped by the script. Returns whether one
/// was sent with an active `Subscription-State`.
fn notify(
    script: &mut Script<'_>,
    endpoint: &mut Endpoint,
    server: &mut Server,
    now: Instant,
) -> bool {
    let Some(dialog) = server.peer.subscribe(script).cloned() else {
        return false;
    };
    let state = match script.byte() % 6 {
        0 => "terminated;reason=timeout",
        1 => "terminated;reason=rejected;retry-after=5",
        2 => "terminated",
        _ => "active;expires=300",
    };
    let pick = usize::from(script.byte()) % (BODIES.len() + 1);
    let body: Vec<u8> = match BODIES.get(pick) {
        Some(text) => text.as_bytes().to_vec(),
        None => {
            let n = usize::from(script.byte());
            script.bytes(n).to_vec()
        }
    };
    server.cseq += 1;
    let from_tag = dialog
        .headers()
        .from_tag()
        .ok()
        .flatten()
        .unwrap_or_default();
    let to = dialog
        .headers()
        .get("To")
        .unwrap_or("<sip:x@test.local>")
        .to_owned();
    let built = Request::new(Method::Notify, "sip:presence-bridge@127.0.0.1:40000")
        .and_then(|r| {
            r.header(
                "Via",
                format!("SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKn{}", server.cseq),
            )
        })
        .and_then(|r| r.header("From", format!("{to};tag=peer")))
        .and_then(|r| {
            r.header(
                "To",
                format!("<sip:presence-bridge@test.local>;tag={from_tag}"),
            )
        })
        .and_then(|r| r.header("Call-ID", dialog.headers().call_id().unwrap_or("none")))
        .and_then(|r| r.header("CSeq", format!("{} NOTIFY", server.cseq)))
        .and_then(|r| r.header("Event", "presence"))
        .and_then(|r| r.header("Subscription-State", state));
    let built = match built {
        Ok(r) if body.is_empty() => Ok(r),
        Ok(r) => r.with_body("application/pidf+xml", body),
        Err(e) => Err(e),
    };
    match built {
        Ok(request) => {
            let _ = endpoint.handle_bytes(&request.to_bytes(), now);
            state.starts_with("active")
        }
        Err(_) => false,
    }
}
