//! Endpoint unit tests against a hand-driven peer: every message the endpoint writes is
//! parsed back, and the test answers as a pool would.

use std::time::{Duration, Instant};

use presence_model::{Activities, ActivityText, Availability, Lcid, Presence, SipUri};
use presence_mspres::{Fault, FaultOperation, Publish};
use presence_sip::{Frame, Framer, Limits, Message, Method, Request, Response};
use presence_transport::TransportError;

use super::*;
use crate::settings::{EndpointConfig, Transport};

fn uri(s: &str) -> SipUri {
    SipUri::new(s).unwrap()
}

fn presence(availability: u32, text: &str) -> Presence {
    Presence {
        availability: Availability::new(availability).unwrap(),
        activities: Activities::new(vec![(Lcid::EN_US, ActivityText::new(text))]).unwrap(),
    }
}

fn config() -> EndpointConfig {
    let mut c = EndpointConfig::new(uri("sip:bridge@contoso.com"), Transport::Tcp);
    c.keepalive = None;
    c.retry_initial = Duration::from_millis(100);
    c.retry_max = Duration::from_millis(400);
    c.subscription.batch_size = 2;
    c
}

struct Peer {
    framer: Framer,
}

impl Peer {
    fn new() -> Self {
        Peer {
            framer: Framer::new(Limits::default()),
        }
    }

    /// Everything the endpoint wrote, as messages (keep-alives dropped).
    fn take(&mut self, ep: &mut Endpoint) -> Vec<Message> {
        while let Some(bytes) = ep.poll_transmit() {
            self.framer.push(&bytes);
        }
        let mut out = Vec::new();
        while let Some(frame) = self.framer.next_frame().unwrap() {
            if let Frame::Message(m) = frame {
                out.push(m);
            }
        }
        out
    }

    fn requests(&mut self, ep: &mut Endpoint) -> Vec<Request> {
        self.take(ep)
            .into_iter()
            .filter_map(|m| match m {
                Message::Request(r) => Some(r),
                Message::Response(_) => None,
            })
            .collect()
    }
}

fn answer(ep: &mut Endpoint, request: &Request, status: u16, now: Instant) {
    let mut response = Response::for_request(request, status, "X").unwrap();
    response.set_to_tag("pool").unwrap();
    ep.handle_bytes(&response.to_bytes(), now).unwrap();
}

fn conflict(ep: &mut Endpoint, request: &Request, current: &[(u32, u32)], now: Instant) {
    let fault = Fault::wrong_delta(
        current
            .iter()
            .map(|&(index, cur)| FaultOperation {
                index,
                version: Some(0),
                cur_version: Some(cur),
            })
            .collect(),
    );
    let response = Response::for_request(request, 409, "Conflict")
        .unwrap()
        .header(
            "ms-diagnostics",
            "2008;reason=\"Version mismatch\";source=\"pool\"",
        )
        .unwrap()
        .with_body(Fault::CONTENT_TYPE, fault.to_xml().into_bytes())
        .unwrap();
    ep.handle_bytes(&response.to_bytes(), now).unwrap();
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn versions_of(request: &Request) -> Vec<(u32, u32)> {
    Publish::parse(request.body())
        .unwrap()
        .publications
        .iter()
        .map(|p| (p.container, p.version))
        .collect()
}

#[test]
fn publish_writes_a_service_request_as_the_user() {
    let now = Instant::now();
    let mut ep = Endpoint::new(config(), 1);
    let mut peer = Peer::new();
    ep.connected(now);
    let user = uri("sip:agent1@contoso.com");
    let id = ep.publish(user.clone(), presence(7001, "In a call"), now);
    let requests = peer.requests(&mut ep);
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method(), &Method::Service);
    assert_eq!(r.uri(), "sip:agent1@contoso.com");
    assert_eq!(
        r.headers().from_addr().unwrap().unwrap().uri,
        "sip:agent1@contoso.com"
    );
    assert!(r.headers().epid().unwrap().is_some());
    assert!(
        r.headers()
            .via_branch()
            .unwrap()
            .unwrap()
            .starts_with("z9hG4bK")
    );
    assert_eq!(
        r.headers().content_type().unwrap().unwrap().to_string(),
        "application/msrtc-category-publish+xml"
    );
    let body = Publish::parse(r.body()).unwrap();
    assert_eq!(body.uri, "sip:agent1@contoso.com");
    assert_eq!(versions_of(r), vec![(2, 0), (3, 0)]);
    let state = body.publications[0].state.as_ref().unwrap();
    assert_eq!(state.availability, Some(7001));
    assert_eq!(state.custom, vec![(1033, "In a call".to_owned())]);
    answer(&mut ep, r, 200, now);
    assert!(matches!(&events(&mut ep)[..], [Event::Published { id: i, .. }] if *i == id));
    // The same presence again is sent again (dedup is the caller's), with the bumped
    // versions.
    let again = ep.publish(user.clone(), presence(7001, "In a call"), now);
    let r = peer.requests(&mut ep).remove(0);
    assert_eq!(versions_of(&r), vec![(2, 1), (3, 1)]);
    answer(&mut ep, &r, 200, now);
    assert!(matches!(&events(&mut ep)[..], [Event::Published { id: i, .. }] if *i == again));
    ep.publish(user, presence(3500, "Available"), now);
    assert_eq!(
        versions_of(&peer.requests(&mut ep)[0]),
        vec![(2, 2), (3, 2)]
    );
}

#[test]
fn wrong_delta_takes_the_current_versions_and_retries_a_bounded_number_of_times() {
    let now = Instant::now();
    let mut ep = Endpoint::new(config(), 2);
    let mut peer = Peer::new();
    ep.connected(now);
    let user = uri("sip:a@x.com");
    let id = ep.publish(user.clone(), presence(6500, "Busy"), now);
    let r = peer.requests(&mut ep).remove(0);
    conflict(&mut ep, &r, &[(1, 4), (2, 7)], now);
    let retry = peer.requests(&mut ep).remove(0);
    assert_eq!(versions_of(&retry), vec![(2, 4), (3, 7)]);
    answer(&mut ep, &retry, 200, now);
    assert!(matches!(&events(&mut ep)[..], [Event::Published { id: i, .. }] if *i == id));

    // Conflicts forever: reported after max_conflict_retries (3) re-sends.
    let id = ep.publish(user, presence(9500, "DND"), now);
    let mut sent = 0;
    loop {
        let mut requests = peer.requests(&mut ep);
        let Some(r) = requests.pop() else { break };
        sent += 1;
        conflict(&mut ep, &r, &[(1, 100 + sent)], now);
    }
    assert_eq!(sent, 4);
    let evs = events(&mut ep);
    assert!(
        matches!(
            &evs[..],
            [Event::PublishFailed { id: i, error: TransportError::Rejected { status: 409, reason, retry_after: None }, .. }]
                if *i == id && reason.contains("Version mismatch") && reason.contains("after 3 version retries")
        ),
        "{evs:?}"
    );
    // The fix-up counts per publication: the next one has its own three re-sends.
    let id = ep.publish(uri("sip:a@x.com"), presence(3500, "a"), now);
    let r = peer.requests(&mut ep).remove(0);
    assert_eq!(versions_of(&r), vec![(2, 104), (3, 8)]);
    conflict(&mut ep, &r, &[(1, 200), (2, 200)], now);
    let r = peer.requests(&mut ep).remove(0);
    answer(&mut ep, &r, 200, now);
    assert!(matches!(&events(&mut ep)[..], [Event::Published { id: i, .. }] if *i == id));
}

#[test]
fn a_second_publication_for_a_user_waits_behind_the_first_in_order() {
    let now = Instant::now();
    let mut ep = Endpoint::new(config(), 3);
    let mut peer = Peer::new();
    ep.connected(now);
    let user = uri("sip:a@x.com");
    let other = uri("sip:b@x.com");
    let first = ep.publish(user.clone(), presence(3500, "a"), now);
    let r = peer.requests(&mut ep).remove(0);
    let second = ep.publish(user.clone(), presence(6500, "b"), now);
    let third = ep.publish(user, presence(9500, "c"), now);
    assert!(
        peer.requests(&mut ep).is_empty(),
        "one on the wire per user"
    );
    assert!(events(&mut ep).is_empty(), "nothing is superseded");
    assert_eq!(ep.publications_in_flight(), 1);
    assert_eq!(ep.publications_outstanding(), 3);
    // Another user is not held up by them.
    let unrelated = ep.publish(other, presence(4500, "d"), now);
    let o = peer.requests(&mut ep).remove(0);
    answer(&mut ep, &o, 200, now);
    // Each waiting one goes out after the one before settled, in order.
    let mut sent = Vec::new();
    answer(&mut ep, &r, 200, now);
    for _ in 0..2 {
        let mut requests = peer.requests(&mut ep);
        assert_eq!(requests.len(), 1, "still one at a time");
        let next = requests.remove(0);
        let state = Publish::parse(next.body()).unwrap().publications[0]
            .state
            .clone()
            .unwrap();
        sent.push(state.availability.unwrap());
        answer(&mut ep, &next, 200, now);
    }
    assert_eq!(sent, vec![6500, 9500]);
    let settled: Vec<PublishId> = events(&mut ep)
        .into_iter()
        .filter_map(|e| match e {
            Event::Published { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(settled, vec![unrelated, first, second, third]);
    assert_eq!(ep.publications_outstanding(), 0);
}

#[test]
fn failures_are_reported_once_with_retry_after_and_never_resent() {
    let start = Instant::now();
    let mut ep = Endpoint::new(config(), 4);
    let mut peer = Peer::new();
    ep.connected(start);
    let user = uri("sip:a@x.com");
    let id = ep.publish(user.clone(), presence(3500, "a"), start);
    let r = peer.requests(&mut ep).remove(0);
    let busy = Response::for_request(&r, 503, "Service Unavailable")
        .unwrap()
        .header(
            "ms-diagnostics",
            "1008;reason=\"Overloaded\";source=\"pool\"",
        )
        .unwrap()
        .header("Retry-After", "2")
        .unwrap();
    ep.handle_bytes(&busy.to_bytes(), start).unwrap();
    let evs = events(&mut ep);
    assert!(
        matches!(
            &evs[..],
            [Event::PublishFailed { id: i, error: error @ TransportError::Rejected { status: 503, reason, .. }, .. }]
                if *i == id && reason.contains("ms-diagnostics") && reason.contains("Overloaded")
                    && error.retry_after() == Some(Duration::from_secs(2))
        ),
        "{evs:?}"
    );
    // Nothing is sent again, now or later: no timer is left.
    assert!(peer.requests(&mut ep).is_empty());
    assert_eq!(ep.poll_timeout(), None);
    ep.handle_timeout(start + Duration::from_secs(60));
    assert!(peer.requests(&mut ep).is_empty());

    // No answer: reported as a timeout once `request-timeout` passed, not re-sent.
    let id = ep.publish(user.clone(), presence(6500, "b"), start);
    let r = peer.requests(&mut ep).remove(0);
    let t = start + config().request_timeout;
    ep.handle_timeout(t);
    assert!(
        matches!(&events(&mut ep)[..], [Event::PublishFailed { id: i, error: TransportError::Timeout, .. }] if *i == id)
    );
    ep.handle_timeout(t + Duration::from_secs(60));
    assert!(peer.requests(&mut ep).is_empty());
    // The late answer to the timed-out request is ignored.
    answer(&mut ep, &r, 200, t);
    assert!(events(&mut ep).is_empty());
    // The user is free again: the caller's next publication goes out at once.
    let id = ep.publish(user, presence(9500, "c"), t);
    let r = peer.requests(&mut ep).remove(0);
    answer(&mut ep, &r, 200, t);
    assert!(matches!(&events(&mut ep)[..], [Event::Published { id: i, .. }] if *i == id));
}

#[test]
fn permanent_refusals_are_reported_and_not_repeated() {
    let now = Instant::now();
    let mut ep = Endpoint::new(config(), 5);
    let mut peer = Peer::new();
    ep.connected(now);
    let user = uri("sip:ghost@x.com");
    let id = ep.publish(user, presence(3500, "a"), now);
    let r = peer.requests(&mut ep).remove(0);
    answer(&mut ep, &r, 404, now);
    assert!(
        matches!(&events(&mut ep)[..], [Event::PublishFailed { id: i, error: TransportError::Rejected { status: 404, retry_after: None, .. }, .. }] if *i == id)
    );
    assert!(peer.requests(&mut ep).is_empty());
    assert_eq!(ep.poll_timeout(), None);
}

#[test]
fn a_lost_connection_fails_what_is_outstanding_and_a_new_one_republishes_nothing() {
    let now = Instant::now();
    let mut ep = Endpoint::new(config(), 6);
    let mut peer = Peer::new();
    let a = uri("sip:a@x.com");
    let b = uri("sip:b@x.com");
    // While disconnected: the caller is told at once, nothing is kept.
    let id = ep.publish(a.clone(), presence(3500, "a"), now);
    let gone = ep.unpublish(b.clone(), now);
    let evs = events(&mut ep);
    assert!(
        matches!(&evs[..], [
            Event::PublishFailed { id: i, error: TransportError::NotConnected, .. },
            Event::PublishFailed { id: j, error: TransportError::NotConnected, .. },
        ] if *i == id && *j == gone),
        "{evs:?}"
    );
    ep.subscribe([b], now);
    ep.connected(now);
    let requests = peer.requests(&mut ep);
    let methods: Vec<&Method> = requests.iter().map(|r| r.method()).collect();
    assert_eq!(
        methods,
        vec![&Method::Subscribe],
        "no publication of its own"
    );
    let id = ep.publish(a.clone(), presence(3500, "a"), now);
    let r = peer.requests(&mut ep).remove(0);
    answer(&mut ep, &r, 200, now);
    assert!(matches!(&events(&mut ep)[..], [Event::Published { id: i, .. }] if *i == id));
    // Lost with one on the wire and one waiting behind it: both fail, in order.
    let on_wire = ep.publish(a.clone(), presence(6500, "b"), now);
    let waiting = ep.publish(a.clone(), presence(9500, "c"), now);
    assert_eq!(peer.requests(&mut ep).len(), 1);
    ep.disconnected(now);
    let failed: Vec<PublishId> = events(&mut ep)
        .into_iter()
        .map(|e| match e {
            Event::PublishFailed {
                id,
                error: TransportError::NotConnected,
                ..
            } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(failed, vec![on_wire, waiting]);
    assert_eq!(ep.publications_outstanding(), 0);
    let mut peer = Peer::new();
    ep.connected(now);
    let requests = peer.requests(&mut ep);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method(), &Method::Subscribe);
    // The versions are protocol state and survive: the pool saw one 200 (and maybe the
    // lost request; a 409 would fix that up).
    ep.publish(a, presence(3500, "d"), now);
    assert_eq!(
        versions_of(&peer.requests(&mut ep)[0]),
        vec![(2, 1), (3, 1)]
    );
}

#[test]
fn unpublish_removes_the_bridge_instances_in_order_with_the_conflict_fix_up() {
    let now = Instant::now();
    let mut ep = Endpoint::new(config(), 11);
    let mut peer = Peer::new();
    ep.connected(now);
    let user = uri("sip:agent1@contoso.com");
    let published = ep.publish(user.clone(), presence(7001, "In a call"), now);
    let r = peer.requests(&mut ep).remove(0);
    // Asked while the publication is on the wire: it waits behind it.
    let removed = ep.unpublish(user.clone(), now);
    assert!(peer.requests(&mut ep).is_empty());
    answer(&mut ep, &r, 200, now);
    let removal = peer.requests(&mut ep).remove(0);
    assert_eq!(removal.method(), &Method::Service);
    assert_eq!(removal.uri(), "sip:agent1@contoso.com");
    let body = Publish::parse(removal.body()).unwrap();
    assert_eq!(body.uri, "sip:agent1@contoso.com");
    assert_eq!(body.publications.len(), 2);
    for (p, container) in body.publications.iter().zip([2, 3]) {
        assert!(p.is_removal(), "{p:?}");
        assert_eq!(
            (
                p.category.as_str(),
                p.instance,
                p.container,
                p.version,
                p.expire_type,
                p.expires,
            ),
            (
                "state",
                0x2000_0000,
                container,
                1,
                presence_mspres::ExpireType::Time,
                Some(0)
            )
        );
        assert!(p.state.is_none());
    }
    // Another endpoint moved the versions on: the removal is sent again with curVersion.
    conflict(&mut ep, &removal, &[(1, 5), (2, 6)], now);
    let again = peer.requests(&mut ep).remove(0);
    assert!(Publish::parse(again.body()).unwrap().publications[0].is_removal());
    assert_eq!(versions_of(&again), vec![(2, 5), (3, 6)]);
    answer(&mut ep, &again, 200, now);
    let settled: Vec<PublishId> = events(&mut ep)
        .into_iter()
        .filter_map(|e| match e {
            Event::Published { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(settled, vec![published, removed]);
    // The next publication follows on from the removal's versions.
    ep.publish(user, presence(3500, "back"), now);
    assert_eq!(
        versions_of(&peer.requests(&mut ep)[0]),
        vec![(2, 6), (3, 7)]
    );
}

#[test]
fn subscriptions_batch_refresh_and_notifications() {
    let now = Instant::now();
    let mut ep = Endpoint::new(config(), 7);
    let mut peer = Peer::new();
    ep.connected(now);
    let users: Vec<SipUri> = ["sip:a@x.com", "sip:b@x.com", "sip:c@x.com"]
        .map(uri)
        .to_vec();
    ep.subscribe(users.clone(), now);
    let subs = peer.requests(&mut ep);
    assert_eq!(subs.len(), 2, "batch size 2");
    let first = &subs[0];
    assert_eq!(first.uri(), "sip:bridge@contoso.com");
    assert_eq!(first.headers().get("Event"), Some("presence"));
    assert!(
        first
            .headers()
            .get("Supported")
            .unwrap()
            .contains("ms-benotify")
    );
    let batch = presence_mspres::BatchSubscribe::parse(first.body()).unwrap();
    assert_eq!(batch.resources, vec!["sip:a@x.com", "sip:b@x.com"]);
    let mut ok = Response::for_request(first, 200, "OK").unwrap();
    ok.set_to_tag("pooltag").unwrap();
    let ok = ok.header("Expires", "100").unwrap();
    ep.handle_bytes(&ok.to_bytes(), now).unwrap();
    answer(&mut ep, &subs[1], 200, now);
    // Each new dialog is reported once; refreshes are not.
    let evs = events(&mut ep);
    assert!(
        matches!(&evs[..], [Event::Subscribed { users: a }, Event::Subscribed { users: c }] if a.len() == 2 && c.len() == 1),
        "{evs:?}"
    );
    // Refresh at 80 %: in the same dialog, next CSeq.
    ep.handle_timeout(now + Duration::from_secs(80));
    let refresh = peer.requests(&mut ep).remove(0);
    assert_eq!(refresh.headers().call_id(), first.headers().call_id());
    assert_eq!(
        refresh.headers().to_tag().unwrap().as_deref(),
        Some("pooltag")
    );
    assert_eq!(
        refresh.headers().cseq().unwrap().unwrap().seq,
        first.headers().cseq().unwrap().unwrap().seq + 1
    );

    // A BENOTIFY in the dialog gets no answer; its presence comes out.
    let categories = presence_mspres::Categories {
        uri: "sip:a@x.com".to_owned(),
        categories: vec![presence_mspres::Category {
            name: "state".to_owned(),
            instance: Some(0),
            container: None,
            publish_time: None,
            state: Some(
                presence_mspres::StateBody::aggregate_state(6500).with_custom(1033, "In a call"),
            ),
        }],
    };
    let notify = Request::new(Method::Benotify, "sip:bridge@contoso.com")
        .unwrap()
        .header("Via", "SIP/2.0/TCP pool;branch=z9hG4bKn1")
        .unwrap()
        .header("From", "<sip:bridge@contoso.com>;tag=pooltag")
        .unwrap()
        .header(
            "To",
            format!(
                "<sip:bridge@contoso.com>;tag={}",
                first.headers().from_tag().unwrap().unwrap()
            ),
        )
        .unwrap()
        .header("Call-ID", first.headers().call_id().unwrap())
        .unwrap()
        .header("CSeq", "1 BENOTIFY")
        .unwrap()
        .header("Event", "presence")
        .unwrap()
        .header("Subscription-State", "active;expires=100")
        .unwrap()
        .with_body(
            presence_mspres::Categories::CONTENT_TYPE,
            categories.to_xml().into_bytes(),
        )
        .unwrap();
    ep.handle_bytes(&notify.to_bytes(), now).unwrap();
    assert!(peer.take(&mut ep).is_empty(), "no answer to BENOTIFY");
    let evs = events(&mut ep);
    assert!(
        matches!(&evs[..], [Event::Presence { user, raw_availability: 6500, activity }] if *user == users[0] && activity.as_deref() == Some("In a call")),
        "{evs:?}"
    );

    // The same as a NOTIFY gets a 200; an unknown dialog gets a 481.
    let mut as_notify = notify.clone();
    as_notify.set_method(Method::Notify).unwrap();
    as_notify.headers_mut().set("CSeq", "2 NOTIFY").unwrap();
    ep.handle_bytes(&as_notify.to_bytes(), now).unwrap();
    let answers = peer.take(&mut ep);
    assert!(matches!(&answers[..], [Message::Response(r)] if r.status().as_u16() == 200));
    as_notify.headers_mut().set("Call-ID", "unknown").unwrap();
    ep.handle_bytes(&as_notify.to_bytes(), now).unwrap();
    let answers = peer.take(&mut ep);
    assert!(matches!(&answers[..], [Message::Response(r)] if r.status().as_u16() == 481));

    // Terminated: subscribe again in a new dialog.
    let mut ended = notify;
    ended
        .headers_mut()
        .set("Subscription-State", "terminated;reason=deactivated")
        .unwrap();
    ended.clear_body();
    ep.handle_bytes(&ended.to_bytes(), now).unwrap();
    ep.handle_timeout(now + Duration::from_secs(1));
    let again = peer.requests(&mut ep);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].headers().call_id(), first.headers().call_id());
    assert!(again[0].headers().to_tag().unwrap().is_none());
}

#[test]
fn garbage_asks_for_a_reset_and_keepalives_expect_an_answer() {
    let now = Instant::now();
    let mut c = config();
    c.keepalive = Some(Duration::from_secs(30));
    c.keepalive_timeout = Duration::from_secs(5);
    let mut ep = Endpoint::new(c, 8);
    ep.connected(now);
    ep.handle_timeout(now + Duration::from_secs(30));
    assert_eq!(ep.poll_transmit().as_deref(), Some(presence_sip::PING));
    ep.handle_timeout(now + Duration::from_secs(35));
    assert!(
        matches!(&events(&mut ep)[..], [Event::ResetConnection { reason }] if reason.contains("keep-alive"))
    );

    let mut ep = Endpoint::new(config(), 9);
    ep.connected(now);
    assert!(ep.handle_bytes(b"HELLO\n\n", now).is_err());
    assert!(matches!(
        &events(&mut ep)[..],
        [Event::ResetConnection { .. }]
    ));
}

#[test]
fn the_in_flight_limit_holds_back_publications_in_order() {
    let now = Instant::now();
    let mut c = config();
    c.max_in_flight = 3;
    let mut ep = Endpoint::new(c, 10);
    let mut peer = Peer::new();
    ep.connected(now);
    for i in 0..10 {
        ep.publish(uri(&format!("sip:u{i}@x.com")), presence(3500, "a"), now);
    }
    let mut sent = peer.requests(&mut ep);
    assert_eq!(sent.len(), 3);
    assert_eq!(ep.publications_outstanding(), 10);
    let mut order = Vec::new();
    // Answer the newest first: the ones waiting still go out in the order given.
    while let Some(r) = sent.pop() {
        order.push(r.uri().to_owned());
        answer(&mut ep, &r, 200, now);
        sent.extend(peer.requests(&mut ep));
        assert!(ep.publications_in_flight() <= 3);
    }
    assert_eq!(order.len(), 10);
    let waited: Vec<String> = order
        .iter()
        .filter(|u| !["sip:u0@x.com", "sip:u1@x.com", "sip:u2@x.com"].contains(&u.as_str()))
        .cloned()
        .collect();
    let expected: Vec<String> = (3..10).map(|i| format!("sip:u{i}@x.com")).collect();
    assert_eq!(waited, expected);
    assert_eq!(ep.publications_outstanding(), 0);
}

mod properties {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The body of the `sfb_endpoint` fuzz target: any script of calls, answers,
        /// notifications, raw bytes, time and lost connections leaves the endpoint sound.
        #[test]
        fn the_endpoint_survives_any_script(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = crate::fuzzing::endpoint(&data);
        }
    }

    /// A script that reaches the 409 fix-up: publish, answer 409 with a fault, answer the
    /// retry 200; subscribe, answer 200 with a piggybacked state, notify, lose the connection.
    #[test]
    fn a_script_through_conflict_subscription_and_reconnect() {
        let script = [
            7, // seed
            0, 1, 0x1b, 0x58, // publish agent1 7000
            4, 0, 9, 0, 1, 5, // answer the first open request 409, fault index 1, cur 5
            4, 0, 2, 0, // answer 200
            2, 0b11, // subscribe agent0, agent1
            4, 0, 2, 2, 1, 0x19, 0x64, // answer 200 with a piggybacked 6500
            6, 0, 0, 2, 1, 1, 0x0b, 0xb8, // NOTIFY agent1 at 3000 in that dialog
            8, 0x10, 0, // time passes
            9, 0, // lost and made again
            0, 2, 0x46, 0x50, // publish agent2 18000
        ];
        let seen = crate::fuzzing::endpoint(&script);
        assert!(seen.published >= 1, "{seen:?}");
        assert!(seen.subscribed >= 1, "{seen:?}");
        assert!(seen.presence >= 2, "{seen:?}");
    }
}

#[test]
fn at_most_sixteen_subscribes_wait_for_their_answer() {
    let now = Instant::now();
    let mut ep = Endpoint::new(config(), 21);
    let mut peer = Peer::new();
    ep.connected(now);
    // 40 users in batches of 2: 20 SUBSCRIBEs, 16 at first.
    ep.subscribe((0..40).map(|i| uri(&format!("sip:u{i}@x.com"))), now);
    let first = peer.requests(&mut ep);
    assert_eq!(first.len(), 16);
    assert!(first.iter().all(|r| r.method() == &Method::Subscribe));
    // Each answer (or a request given up on) lets the next one go.
    answer(&mut ep, &first[0], 200, now);
    answer(&mut ep, &first[1], 503, now);
    let next = peer.requests(&mut ep);
    assert_eq!(next.len(), 2, "{next:?}");
    ep.handle_timeout(now + Duration::from_secs(3600));
    let rest: Vec<Request> = peer
        .requests(&mut ep)
        .into_iter()
        .filter(|r| r.method() == &Method::Subscribe)
        .collect();
    assert!(!rest.is_empty() && rest.len() <= 16, "{}", rest.len());
}

/// Every byte the endpoint writes, in order.
fn written(ep: &mut Endpoint) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = ep.poll_transmit() {
        out.extend_from_slice(&bytes);
    }
    out
}

#[test]
fn publications_written_at_once_are_the_bytes_the_request_builder_gives() {
    let now = Instant::now();
    let mut configs = Vec::new();
    configs.push(config());
    let mut c = config();
    c.transport = Transport::Tls;
    c.p_asserted_identity = true;
    c.user_agent = " \tagent with spaces/1.0\t ".to_owned();
    c.local_host = "[2001:db8::1]:5061".to_owned();
    c.publication.containers = vec![2, 3, 400];
    configs.push(c);
    let mut c = config();
    c.user_agent = String::new();
    c.local_host = String::new();
    configs.push(c);
    for config in configs {
        let mut fast = Endpoint::new(config.clone(), 7);
        let mut built = Endpoint::new(config, 7);
        for ep in [&mut fast, &mut built] {
            ep.set_local_host(format!("{}:1234", ep.config().local_host));
            ep.connected(now);
        }
        built.head = None;
        assert!(fast.head.is_some());
        for user in ["sip:a@x", "sip:o'neil&co@contoso.com", "sip:a@x"] {
            for ep in [&mut fast, &mut built] {
                ep.publish(uri(user), presence(3500, "<Busy> & \"away\""), now);
                ep.unpublish(uri(user), now);
            }
        }
        // Every request answered as it comes: every third one with a version conflict,
        // whose body is sent again at once; the others with a 200.
        let mut peer = Peer::new();
        let mut answered = 0;
        loop {
            let bytes = written(&mut fast);
            assert_eq!(
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&written(&mut built)),
                "after {answered} answers"
            );
            if bytes.is_empty() {
                break;
            }
            peer.framer.push(&bytes);
            while let Some(Frame::Message(Message::Request(request))) =
                peer.framer.next_frame().unwrap()
            {
                answered += 1;
                for ep in [&mut fast, &mut built] {
                    if answered % 3 == 0 {
                        conflict(ep, &request, &[(1, 5)], now);
                    } else {
                        answer(ep, &request, 200, now);
                    }
                }
            }
        }
        assert_eq!(answered, 8, "six operations and two re-sends");
        assert_eq!(fast.publications_outstanding(), 0);
    }
}

#[test]
fn a_user_agent_refused_as_a_header_value_fails_each_publication() {
    let now = Instant::now();
    let mut c = config();
    c.user_agent = "bad\r\nX: y".to_owned();
    let mut ep = Endpoint::new(c, 1);
    assert!(ep.head.is_none());
    ep.connected(now);
    let id = ep.publish(uri("sip:a@x"), presence(3500, "x"), now);
    assert!(written(&mut ep).is_empty());
    let event = ep.poll_event();
    assert!(
        matches!(
            &event,
            Some(Event::PublishFailed { id: failed, error: TransportError::Rejected { status: 0, reason, .. }, .. })
                if *failed == id && reason.starts_with("cannot build the request")
        ),
        "{event:?}"
    );
}

#[test]
fn branches_are_the_hex_draws_and_read_back_to_their_number() {
    let (mut a, mut b) = (SplitMix64::new(3), SplitMix64::new(3));
    for _ in 0..100 {
        let (branch, id) = Endpoint::new_branch(&mut a);
        assert_eq!(branch, format!("z9hG4bK{}", b.hex(16)));
        assert_eq!(branch_id(&branch), Some(id));
    }
    assert_eq!(branch_id("z9hG4bK00000000000000ff"), Some(255));
    assert_eq!(branch_id("z9hG4bKffffffffffffffff"), Some(u64::MAX));
    for not_ours in [
        "z9hG4bK00000000000000FF",
        "z9hG4bK+0000000000000ff",
        "z9hG4bK00000000000000f",
        "z9hG4bK00000000000000fff",
        "z9hg4bK00000000000000ff",
        "00000000000000ff",
        "z9hG4bK",
        "",
    ] {
        assert_eq!(branch_id(not_ours), None, "{not_ours}");
    }
}
