//! The endpoint's exchanges, step by step, against answers written here (the real server is
//! Kamailio, in the crate's integration tests).

use std::time::{Duration, Instant};

use presence_model::{
    Activities, ActivityText, AggregatedStateId, Availability, Lcid, Presence, Publication, SipUri,
};
use presence_sip::{Message, Request, Response};
use presence_transport::TransportError;

use super::*;
use crate::settings::{EndpointConfig, Transport};

fn user(n: u32) -> SipUri {
    format!("sip:agent{n}@test.local").parse().unwrap()
}

fn publication(availability: u32, text: &str) -> Publication {
    Publication {
        id: AggregatedStateId::new("STATE").unwrap(),
        presence: Presence {
            availability: Availability::new(availability).unwrap(),
            activities: Activities::new(vec![(Lcid::EN_US, ActivityText::new(text))]).unwrap(),
        },
    }
}

struct Pair {
    ep: Endpoint,
    now: Instant,
}

impl Pair {
    fn new(transport: Transport) -> Pair {
        Pair::with(EndpointConfig::new(
            transport,
            "127.0.0.1:40000",
            "test.local",
        ))
    }

    fn with(config: EndpointConfig) -> Pair {
        let mut ep = Endpoint::new(config, 7);
        let now = Instant::now();
        ep.connected(now);
        let mut pair = Pair { ep, now };
        let probe = pair.request();
        assert_eq!(probe.method(), &Method::Options);
        assert_eq!(probe.uri(), "sip:test.local");
        pair.answer(&probe, 200, &[]);
        assert!(matches!(pair.event(), Some(Event::Ready)));
        pair
    }

    /// The next request the endpoint sent (keep-alive probes answered on the way).
    fn request(&mut self) -> Request {
        self.next_request().expect("a request was sent")
    }

    fn next_request(&mut self) -> Option<Request> {
        loop {
            let bytes = self.ep.poll_transmit()?;
            match Message::parse(&bytes).unwrap() {
                Message::Request(r) if r.method() == &Method::Options && self.ep.is_ready() => {
                    self.answer(&r, 200, &[]);
                }
                Message::Request(r) => return Some(r),
                Message::Response(r) => panic!("a response: {}", r.status().as_u16()),
            }
        }
    }

    fn nothing_sent(&mut self) {
        if let Some(r) = self.next_request() {
            panic!("unexpected: {}", String::from_utf8_lossy(&r.to_bytes()));
        }
    }

    fn answer(&mut self, request: &Request, status: u16, headers: &[(&str, &str)]) {
        let mut response = Response::for_request(request, status, "X").unwrap();
        response.set_to_tag("srv").unwrap();
        for (name, value) in headers {
            response.headers_mut().append(name, value).unwrap();
        }
        self.ep
            .handle_bytes(&response.to_bytes(), self.now)
            .unwrap();
    }

    fn event(&mut self) -> Option<Event> {
        self.ep.poll_event()
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.ep.handle_timeout(self.now);
    }
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers().get(name)
}

#[test]
fn publication_life_cycle_initial_modify_refresh_remove() {
    let mut p = Pair::new(Transport::Tcp);
    let u = user(1);
    let id =
        p.ep.publish(u.clone(), &publication(3500, "Available"), p.now);
    let initial = p.request();
    assert_eq!(initial.method(), &Method::Publish);
    assert_eq!(initial.uri(), u.as_str());
    assert_eq!(header(&initial, "Event"), Some("presence"));
    assert_eq!(header(&initial, "Expires"), Some("600"));
    assert_eq!(header(&initial, "SIP-If-Match"), None);
    assert_eq!(
        header(&initial, "Content-Type"),
        Some("application/pidf+xml")
    );
    assert!(String::from_utf8_lossy(initial.body()).contains("open"));
    p.answer(&initial, 200, &[("SIP-ETag", "e1"), ("Expires", "600")]);
    assert!(matches!(p.event(), Some(Event::Published { id: i, .. }) if i == id));
    assert_eq!(p.ep.etag(&u), Some("e1"));

    // Modify: SIP-If-Match and a body; the answer's tag is the next one.
    p.ep.publish(u.clone(), &publication(6500, "On the phone"), p.now);
    let modify = p.request();
    assert_eq!(header(&modify, "SIP-If-Match"), Some("e1"));
    assert!(!modify.body().is_empty());
    p.answer(&modify, 200, &[("SIP-ETag", "e2"), ("Expires", "600")]);
    assert!(matches!(p.event(), Some(Event::Published { .. })));

    // Refresh before expiry (at 80 % of 600 s): no body.
    p.advance(Duration::from_secs(479));
    p.nothing_sent();
    p.advance(Duration::from_secs(2));
    let refresh = p.request();
    assert_eq!(header(&refresh, "SIP-If-Match"), Some("e2"));
    assert!(refresh.body().is_empty());
    p.answer(&refresh, 200, &[("SIP-ETag", "e3"), ("Expires", "600")]);
    assert!(
        p.event().is_none(),
        "a refresh is not a caller's publication"
    );

    // Offline removes it: Expires 0 with the tag.
    p.ep.publish(u.clone(), &publication(18000, "Logged out"), p.now);
    let remove = p.request();
    assert_eq!(header(&remove, "Expires"), Some("0"));
    assert_eq!(header(&remove, "SIP-If-Match"), Some("e3"));
    assert!(remove.body().is_empty());
    p.answer(&remove, 200, &[("SIP-ETag", "e3"), ("Expires", "0")]);
    assert!(matches!(p.event(), Some(Event::Published { .. })));
    assert_eq!(p.ep.live_publications(), 0);
    // No refresh after a removal, and a second removal sends nothing.
    p.advance(Duration::from_secs(3600));
    p.nothing_sent();
    p.ep.unpublish(u, p.now);
    p.nothing_sent();
    assert!(matches!(p.event(), Some(Event::Published { .. })));
}

#[test]
fn a_412_publishes_anew_without_the_tag() {
    let mut p = Pair::new(Transport::Tcp);
    let u = user(2);
    p.ep.publish(u.clone(), &publication(3500, "Available"), p.now);
    let first = p.request();
    p.answer(&first, 200, &[("SIP-ETag", "e1")]);
    p.event();
    p.ep.publish(u.clone(), &publication(6500, "Busy"), p.now);
    let modify = p.request();
    p.answer(&modify, 412, &[]);
    let anew = p.request();
    assert_eq!(header(&anew, "SIP-If-Match"), None);
    assert_eq!(anew.body(), modify.body());
    assert!(
        p.event().is_none(),
        "the fix-up completes the one publication"
    );
    p.answer(&anew, 200, &[("SIP-ETag", "e9")]);
    assert!(matches!(p.event(), Some(Event::Published { .. })));
    assert_eq!(p.ep.etag(&u), Some("e9"));
}

#[test]
fn a_423_takes_min_expires() {
    let mut p = Pair::new(Transport::Tcp);
    p.ep.publish(user(3), &publication(3500, "Available"), p.now);
    let first = p.request();
    p.answer(&first, 423, &[("Min-Expires", "1800")]);
    let again = p.request();
    assert_eq!(header(&again, "Expires"), Some("1800"));
    p.answer(&again, 200, &[("SIP-ETag", "e1"), ("Expires", "1800")]);
    assert!(matches!(p.event(), Some(Event::Published { .. })));
    // A 423 without a longer Min-Expires is a refusal.
    p.ep.publish(user(4), &publication(3500, "Available"), p.now);
    let other = p.request();
    p.answer(&other, 423, &[("Min-Expires", "60")]);
    assert!(matches!(
        p.event(),
        Some(Event::PublishFailed {
            error: TransportError::Rejected { status: 423, .. },
            ..
        })
    ));
}

#[test]
fn a_conditional_500_is_tried_again_then_the_tag_is_abandoned_and_removed() {
    let mut p = Pair::new(Transport::Tcp);
    let u = user(5);
    p.ep.publish(u.clone(), &publication(3500, "Available"), p.now);
    let first = p.request();
    p.answer(&first, 200, &[("SIP-ETag", "old")]);
    p.event();
    p.ep.publish(u.clone(), &publication(6500, "Busy"), p.now);
    let modify = p.request();
    p.answer(&modify, 500, &[]);
    p.nothing_sent();
    p.advance(Duration::from_millis(400));
    let again = p.request();
    assert_eq!(header(&again, "SIP-If-Match"), Some("old"));
    p.answer(&again, 500, &[]);
    let anew = p.request();
    assert_eq!(header(&anew, "SIP-If-Match"), None);
    p.answer(&anew, 200, &[("SIP-ETag", "new")]);
    assert!(matches!(p.event(), Some(Event::Published { .. })));
    // The abandoned tag is removed so that no second publication stays live.
    let cleanup = p.request();
    assert_eq!(header(&cleanup, "SIP-If-Match"), Some("old"));
    assert_eq!(header(&cleanup, "Expires"), Some("0"));
    p.answer(&cleanup, 412, &[]);
    assert_eq!(p.ep.etag(&u), Some("new"));
    assert!(p.event().is_none());
}

#[test]
fn one_request_per_user_on_the_wire_in_order_and_failures_reported_once() {
    let mut p = Pair::new(Transport::Tcp);
    let u = user(6);
    let a =
        p.ep.publish(u.clone(), &publication(3500, "Available"), p.now);
    let b = p.ep.publish(u, &publication(6500, "Busy"), p.now);
    let first = p.request();
    p.nothing_sent();
    p.answer(&first, 503, &[("Retry-After", "7")]);
    match p.event() {
        Some(Event::PublishFailed {
            id,
            error:
                TransportError::Rejected {
                    status: 503,
                    retry_after,
                    ..
                },
            ..
        }) => {
            assert_eq!(id, a);
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("{other:?}"),
    }
    let second = p.request();
    assert!(String::from_utf8_lossy(second.body()).contains("busy"));
    p.advance(Duration::from_secs(11));
    match p.event() {
        Some(Event::PublishFailed {
            id,
            error: TransportError::Timeout,
            ..
        }) => assert_eq!(id, b),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.ep.publications_outstanding(), 0);
}

#[test]
fn the_window_bounds_requests_on_the_wire() {
    let mut config = EndpointConfig::new(Transport::Tcp, "127.0.0.1:40000", "test.local");
    config.max_in_flight = 2;
    let mut p = Pair::with(config);
    for n in 0..5 {
        p.ep.publish(user(n), &publication(3500, "Available"), p.now);
    }
    let r1 = p.request();
    let _r2 = p.request();
    p.nothing_sent();
    p.answer(&r1, 200, &[("SIP-ETag", "x")]);
    let _r3 = p.request();
    p.nothing_sent();
    assert_eq!(p.ep.publications_in_flight(), 2);
}

#[test]
fn udp_retransmits_until_answered_and_answers_retransmitted_notifies_once() {
    let mut p = Pair::new(Transport::Udp);
    p.ep.publish(user(7), &publication(3500, "Available"), p.now);
    let first = p.request();
    assert!(header(&first, "Via").unwrap().contains("SIP/2.0/UDP"));
    p.advance(Duration::from_millis(500));
    let again = p.request();
    assert_eq!(again.to_bytes(), first.to_bytes());
    p.advance(Duration::from_millis(999));
    p.nothing_sent();
    p.advance(Duration::from_millis(1));
    p.request();
    let mut response = Response::for_request(&first, 200, "OK").unwrap();
    response.headers_mut().append("SIP-ETag", "u1").unwrap();
    p.ep.handle_datagram(&response.to_bytes(), p.now);
    p.ep.handle_datagram(&response.to_bytes(), p.now); // retransmitted answer: ignored
    assert!(matches!(p.event(), Some(Event::Published { .. })));
    assert!(p.event().is_none());
    p.advance(Duration::from_secs(8));
    p.nothing_sent();
}

fn notify(subscribe: &Request, ok: &Response, cseq: u32, state: &str, body: &str) -> Vec<u8> {
    let from_tag = subscribe.headers().from_tag().unwrap().unwrap();
    let to_tag = ok.headers().to_tag().unwrap().unwrap();
    let mut r = Request::new(Method::Notify, "sip:presence-bridge@127.0.0.1:40000")
        .unwrap()
        .header(
            "Via",
            "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKsrv".to_owned() + &cseq.to_string(),
        )
        .unwrap()
        .header(
            "From",
            format!(
                "<{}>;tag={to_tag}",
                subscribe
                    .headers()
                    .get("To")
                    .unwrap()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
            ),
        )
        .unwrap()
        .header(
            "To",
            format!("<sip:presence-bridge@test.local>;tag={from_tag}"),
        )
        .unwrap()
        .header("Call-ID", subscribe.headers().call_id().unwrap())
        .unwrap()
        .header("CSeq", format!("{cseq} NOTIFY"))
        .unwrap()
        .header("Event", "presence")
        .unwrap()
        .header("Subscription-State", state)
        .unwrap()
        .header("Contact", "<sip:127.0.0.1:5060;transport=tcp>")
        .unwrap();
    if !body.is_empty() {
        r = r
            .with_body("application/pidf+xml", body.as_bytes().to_vec())
            .unwrap();
    }
    r.to_bytes()
}

const BUSY: &str = r#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:agent1@test.local"><tuple id="t"><status><basic>open</basic></status></tuple><dm:person id="p"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person></presence>"#;

fn response_to(p: &mut Pair) -> Response {
    let bytes = p.ep.poll_transmit().expect("an answer");
    match Message::parse(&bytes).unwrap() {
        Message::Response(r) => r,
        Message::Request(r) => panic!("a request {}", r.method()),
    }
}

#[test]
fn subscription_notify_refresh_and_termination() {
    let mut p = Pair::new(Transport::Tcp);
    let u = user(1);
    p.ep.subscribe([u.clone()], p.now);
    let sub = p.request();
    assert_eq!(sub.method(), &Method::Subscribe);
    assert_eq!(header(&sub, "Event"), Some("presence"));
    assert_eq!(header(&sub, "Accept"), Some("application/pidf+xml"));
    assert_eq!(header(&sub, "Expires"), Some("600"));
    let mut ok = Response::for_request(&sub, 200, "OK").unwrap();
    ok.set_to_tag("k1").unwrap();
    ok.headers_mut().append("Expires", "600").unwrap();
    ok.headers_mut()
        .append("Contact", "<sip:127.0.0.1:5060;transport=tcp>")
        .unwrap();
    p.ep.handle_bytes(&ok.to_bytes(), p.now).unwrap();
    assert!(matches!(p.event(), Some(Event::Subscribed { users }) if users == [u.clone()]));

    // Kamailio's first NOTIFY has no body when nothing is published: Offline.
    p.ep.handle_bytes(&notify(&sub, &ok, 2, "active;expires=600", ""), p.now)
        .unwrap();
    assert_eq!(response_to(&mut p).status().as_u16(), 200);
    assert!(matches!(
        p.event(),
        Some(Event::Presence {
            raw_availability: 18000,
            ..
        })
    ));
    p.ep.handle_bytes(&notify(&sub, &ok, 3, "active;expires=590", BUSY), p.now)
        .unwrap();
    response_to(&mut p);
    assert!(matches!(
        p.event(),
        Some(Event::Presence {
            raw_availability: 6500,
            ..
        })
    ));

    // Refresh in the dialog at 80 %.
    p.advance(Duration::from_secs(481));
    let refresh = p.request();
    assert_eq!(refresh.uri(), "sip:127.0.0.1:5060;transport=tcp");
    assert_eq!(refresh.headers().to_tag().unwrap().as_deref(), Some("k1"));
    assert_eq!(refresh.headers().call_id(), sub.headers().call_id());
    assert_eq!(refresh.headers().cseq().unwrap().unwrap().seq, 2);
    p.answer(&refresh, 200, &[("Expires", "600")]);
    assert!(p.event().is_none(), "a refresh is not a new subscription");

    // The server ends it: subscribe anew at once, a new dialog.
    p.ep.handle_bytes(
        &notify(&sub, &ok, 4, "terminated;reason=timeout", ""),
        p.now,
    )
    .unwrap();
    response_to(&mut p);
    assert!(
        p.event().is_none(),
        "an empty terminated NOTIFY says nothing of presence"
    );
    let anew = p.request();
    assert_eq!(anew.method(), &Method::Subscribe);
    assert_ne!(anew.headers().call_id(), sub.headers().call_id());
    assert_eq!(anew.headers().to_tag().unwrap(), None);

    // A 481 to a refresh also makes it anew; a NOTIFY for no dialog gets 481.
    p.answer(&anew, 200, &[("Expires", "600")]);
    p.event();
    p.ep.handle_bytes(&notify(&sub, &ok, 9, "active", BUSY), p.now)
        .unwrap();
    assert_eq!(response_to(&mut p).status().as_u16(), 481);

    // Unsubscribe: Expires 0 in the dialog, and later NOTIFYs of it are only answered.
    p.ep.unsubscribe([u], p.now);
    let un = p.request();
    assert_eq!(header(&un, "Expires"), Some("0"));
    assert!(p.ep.dialog_users().is_empty());
}

/// What the endpoint reports, as short names, until it has nothing more.
fn drain(p: &mut Pair) -> Vec<String> {
    std::iter::from_fn(|| p.event())
        .map(|e| match e {
            Event::Subscribed { users } => format!("subscribed {}", users.len()),
            Event::Presence {
                raw_availability, ..
            } => format!("presence {raw_availability}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn subscribed_comes_before_the_first_presence_whatever_the_order_on_the_wire() {
    // The 2xx and the first NOTIFY in one read: Subscribed first, then the presence (the
    // caller reports the first update after Subscribed unconditionally; the other order
    // would report the first update twice).
    let mut p = Pair::new(Transport::Tcp);
    p.ep.subscribe([user(1)], p.now);
    let sub = p.request();
    let mut ok = Response::for_request(&sub, 200, "OK").unwrap();
    ok.set_to_tag("k1").unwrap();
    ok.headers_mut().append("Expires", "600").unwrap();
    let mut bytes = ok.to_bytes();
    bytes.extend(notify(&sub, &ok, 1, "active;expires=600", ""));
    p.ep.handle_bytes(&bytes, p.now).unwrap();
    response_to(&mut p);
    assert_eq!(drain(&mut p), ["subscribed 1", "presence 18000"]);

    // RFC 6665: the NOTIFY may overtake the 2xx. It is announced by the NOTIFY, and the
    // 2xx that follows announces nothing again.
    let mut p = Pair::new(Transport::Tcp);
    p.ep.subscribe([user(2)], p.now);
    let sub = p.request();
    let mut ok = Response::for_request(&sub, 200, "OK").unwrap();
    ok.set_to_tag("k2").unwrap();
    ok.headers_mut().append("Expires", "600").unwrap();
    p.ep.handle_bytes(&notify(&sub, &ok, 1, "active;expires=600", BUSY), p.now)
        .unwrap();
    response_to(&mut p);
    assert_eq!(drain(&mut p), ["subscribed 1", "presence 6500"]);
    p.ep.handle_bytes(&ok.to_bytes(), p.now).unwrap();
    assert_eq!(drain(&mut p), Vec::<String>::new());
    // A refresh of an announced dialog announces nothing either.
    p.advance(Duration::from_secs(481));
    let refresh = p.request();
    p.answer(&refresh, 200, &[("Expires", "600")]);
    assert_eq!(drain(&mut p), Vec::<String>::new());
}

#[test]
fn a_notify_in_a_dialog_given_up_on_is_refused() {
    // The SUBSCRIBE gets no answer in time: the endpoint gives its dialog up (and makes a
    // new one after a back-off). If the server made that dialog after all, its NOTIFY is
    // refused with 481 (so that the server ends it) and reports nothing.
    let mut p = Pair::new(Transport::Tcp);
    p.ep.subscribe([user(1)], p.now);
    let sub = p.request();
    p.advance(Duration::from_secs(11));
    let events = drain(&mut p);
    assert!(
        events.iter().any(|e| e.contains("SubscriptionFailed")),
        "{events:?}"
    );
    let mut ok = Response::for_request(&sub, 200, "OK").unwrap();
    ok.set_to_tag("late").unwrap();
    p.ep.handle_bytes(&notify(&sub, &ok, 1, "active;expires=600", BUSY), p.now)
        .unwrap();
    assert_eq!(response_to(&mut p).status().as_u16(), 481);
    assert_eq!(drain(&mut p), Vec::<String>::new());
    // The new dialog, when it comes, is announced and reports as usual.
    p.advance(Duration::from_secs(1));
    let again = p.request();
    assert_ne!(again.headers().call_id(), sub.headers().call_id());
    let mut ok = Response::for_request(&again, 200, "OK").unwrap();
    ok.set_to_tag("k2").unwrap();
    p.ep.handle_bytes(&ok.to_bytes(), p.now).unwrap();
    p.ep.handle_bytes(&notify(&again, &ok, 1, "active;expires=600", BUSY), p.now)
        .unwrap();
    assert_eq!(response_to(&mut p).status().as_u16(), 200);
    assert_eq!(drain(&mut p), ["subscribed 1", "presence 6500"]);
}

#[test]
fn refused_subscriptions_back_off_and_reconnects_resubscribe() {
    let mut p = Pair::new(Transport::Tcp);
    p.ep.subscribe([user(1)], p.now);
    let sub = p.request();
    p.answer(&sub, 500, &[]);
    assert!(matches!(p.event(), Some(Event::SubscriptionFailed { .. })));
    p.nothing_sent();
    p.advance(Duration::from_secs(1));
    let again = p.request();
    assert_eq!(again.method(), &Method::Subscribe);
    p.answer(&again, 202, &[("Expires", "600")]);
    assert!(matches!(p.event(), Some(Event::Subscribed { .. })));
    // A lost connection: after the new probe is answered, every user is subscribed anew.
    p.ep.disconnected(p.now);
    p.ep.connected(p.now);
    let probe = p.request();
    p.answer(&probe, 404, &[]);
    assert!(matches!(p.event(), Some(Event::Ready)));
    let anew = p.request();
    assert_eq!(anew.method(), &Method::Subscribe);
    assert_ne!(anew.headers().call_id(), again.headers().call_id());
}

#[test]
fn digest_challenges_are_answered_once_per_nonce() {
    let mut config = EndpointConfig::new(Transport::Tcp, "127.0.0.1:40000", "test.local");
    config.credentials = Some(crate::digest::Credentials::new("bridge", "secret"));
    let mut p = Pair::with(config);
    p.ep.publish(user(1), &publication(3500, "Available"), p.now);
    let first = p.request();
    assert_eq!(header(&first, "Authorization"), None);
    p.answer(
        &first,
        401,
        &[
            (
                "WWW-Authenticate",
                "Digest realm=\"test.local\", nonce=\"n1\", qop=\"auth\", algorithm=MD5",
            ),
            (
                "WWW-Authenticate",
                "Digest realm=\"test.local\", nonce=\"n1\", qop=\"auth\", algorithm=SHA-256",
            ),
        ],
    );
    let answered = p.request();
    let auth = header(&answered, "Authorization").unwrap();
    assert!(
        auth.contains("algorithm=SHA-256") && auth.contains("nc=00000001"),
        "{auth}"
    );
    assert!(!auth.contains("secret"));
    assert_eq!(
        answered.headers().cseq().unwrap().unwrap().seq,
        first.headers().cseq().unwrap().unwrap().seq + 1
    );
    assert_ne!(
        answered.headers().via_branch().unwrap(),
        first.headers().via_branch().unwrap()
    );
    // Wrong credentials: the same challenge again is a refusal, reported once.
    p.answer(
        &answered,
        401,
        &[(
            "WWW-Authenticate",
            "Digest realm=\"test.local\", nonce=\"n2\", qop=\"auth\"",
        )],
    );
    assert!(matches!(
        p.event(),
        Some(Event::PublishFailed {
            error: TransportError::Rejected { status: 401, .. },
            ..
        })
    ));
    // Later requests are authorized up front with the next nonce count.
    p.ep.publish(user(2), &publication(3500, "Available"), p.now);
    let next = p.request();
    assert!(
        header(&next, "Authorization")
            .unwrap()
            .contains("nc=00000002")
    );
    // A stale nonce is answered again.
    p.answer(
        &next,
        407,
        &[(
            "Proxy-Authenticate",
            "Digest realm=\"test.local\", nonce=\"n3\", qop=\"auth\", stale=true",
        )],
    );
    let proxy = p.request();
    assert!(
        header(&proxy, "Proxy-Authorization")
            .unwrap()
            .contains("nonce=\"n3\"")
    );
}

#[test]
fn without_ready_everything_fails_with_not_connected() {
    let mut ep = Endpoint::new(EndpointConfig::new(Transport::Tcp, "h:1", "test.local"), 1);
    let now = Instant::now();
    ep.publish(user(1), &publication(3500, "x"), now);
    assert!(matches!(
        ep.poll_event(),
        Some(Event::PublishFailed {
            error: TransportError::NotConnected,
            ..
        })
    ));
    ep.connected(now);
    let _probe = ep.poll_transmit().unwrap();
    ep.handle_timeout(now + Duration::from_secs(10));
    assert!(matches!(
        ep.poll_event(),
        Some(Event::ResetConnection { .. })
    ));
}

#[test]
fn a_lost_connection_fails_what_is_outstanding_and_keeps_the_tags() {
    let mut p = Pair::new(Transport::Tcp);
    let u = user(1);
    p.ep.publish(u.clone(), &publication(3500, "Available"), p.now);
    let first = p.request();
    p.answer(&first, 200, &[("SIP-ETag", "keep")]);
    p.event();
    p.ep.publish(u.clone(), &publication(6500, "Busy"), p.now);
    p.request();
    p.ep.disconnected(p.now);
    assert!(matches!(
        p.event(),
        Some(Event::PublishFailed {
            error: TransportError::NotConnected,
            ..
        })
    ));
    assert_eq!(p.ep.etag(&u), Some("keep"));
    p.ep.connected(p.now);
    let probe = p.request();
    p.answer(&probe, 200, &[]);
    p.event();
    p.ep.publish(u, &publication(6500, "Busy"), p.now);
    assert_eq!(header(&p.request(), "SIP-If-Match"), Some("keep"));
}

mod properties {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The body of the `simple_endpoint` fuzz target: any script of calls, answers,
        /// NOTIFYs, raw bytes, time and lost connections leaves the endpoint sound.
        #[test]
        fn the_endpoint_survives_any_script(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = crate::fuzzing::endpoint(&data);
        }
    }

    /// A script through the probe, a publication (with a digest challenge on the modify),
    /// a subscription and its NOTIFYs.
    #[test]
    fn a_script_through_probe_challenge_and_subscription() {
        let script = [
            7, // seed
            4, 0, 2, 0, // answer the OPTIONS probe 200
            0, 1, 0x0d, 0xac, // publish agent1 3500
            4, 0, 2, 60, 1, // answer 200, Expires 600, SIP-ETag e1
            0, 1, 0x19, 0x64, // publish agent1 6500 (a modify)
            4, 0, 5, 0, 9, // answer 401 with an MD5 challenge, nonce n9
            4, 0, 2, 60, 2, // answer the authorized retry 200, SIP-ETag e2
            2, 0b10, // subscribe agent1
            4, 0, 2, 60, // answer 200
            6, 0, 3, 1, // NOTIFY active, on the phone
            6, 0, 3, 0, // NOTIFY active, empty body
            8, 0, 200, // 2 s pass
        ];
        let seen = crate::fuzzing::endpoint(&script);
        assert_eq!(seen.ready, 1, "{seen:?}");
        assert_eq!(seen.published, 2, "{seen:?}");
        assert_eq!(seen.subscribed, 1, "{seen:?}");
        assert_eq!(seen.presence, 2, "{seen:?}");
    }
}
