//! Whole exchanges with the simulator in memory: a scripted trusted application on one
//! side, the sans-IO core on the other.

use std::time::{Duration, Instant};

use presence_model::SipUri;
use presence_mspres::{
    BatchSubscribe, Fault, FaultOperation, Notification, Publication, Publish,
    STATIC_STATE_INSTANCE, StateBody, SubscribeAction, content_type, parse_notification,
};
use presence_sip::{Frame, Framer, Message, Method, Request, Response};

use super::*;

const APP: &str = "sip:bridge@contoso.com";
const CONTACT: &str = "sip:bridge@10.0.0.5:5061;transport=tls";
const SUPPORTED_ALL: &str = "ms-benotify, ms-piggyback-first-notify, eventlist";

fn uri(name: &str) -> SipUri {
    SipUri::new(&format!("sip:{name}@contoso.com")).unwrap()
}

/// The bridge's side of one connection, building requests as presence-sfb does.
struct App {
    sim: Simulator,
    conn: ConnId,
    now: Instant,
    framer: Framer,
    next: u32,
}

impl App {
    fn new(config: SimConfig) -> Self {
        let mut sim = Simulator::new(config);
        let now = Instant::now();
        let conn = sim.open(now);
        App {
            sim,
            conn,
            now,
            framer: Framer::default(),
            next: 0,
        }
    }

    fn default() -> Self {
        App::new(SimConfig::default())
    }

    fn id(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.sim.handle_timeout(self.now);
    }

    fn send(&mut self, message: impl Into<Message>) {
        let bytes = message.into().to_bytes();
        self.sim.handle_bytes(self.conn, &bytes, self.now).unwrap();
    }

    /// Everything the simulator wrote since the last call, as frames.
    fn received(&mut self) -> Vec<Frame> {
        while let Some(bytes) = self.sim.poll_transmit(self.conn) {
            self.framer.push(&bytes);
        }
        std::iter::from_fn(|| self.framer.next_frame().unwrap()).collect()
    }

    fn messages(&mut self) -> Vec<Message> {
        self.received()
            .into_iter()
            .filter_map(|f| match f {
                Frame::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn only_response(&mut self) -> Response {
        let mut messages = self.messages();
        assert_eq!(messages.len(), 1, "{messages:#?}");
        match messages.pop() {
            Some(Message::Response(r)) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn base(
        &mut self,
        method: Method,
        target: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        call_id: &str,
        cseq: u32,
    ) -> Request {
        let branch = format!("z9hG4bKapp{}", self.id());
        let mut to = format!("<{target}>");
        if let Some(tag) = to_tag {
            to = format!("{to};tag={tag}");
        }
        Request::new(method.clone(), target)
            .unwrap()
            .header("Via", format!("SIP/2.0/TLS 10.0.0.5:5061;branch={branch}"))
            .unwrap()
            .header("Max-Forwards", "70")
            .unwrap()
            .header("From", format!("<{target}>;tag={from_tag};epid=0d4e5f"))
            .unwrap()
            .header("To", to)
            .unwrap()
            .header("Call-ID", call_id)
            .unwrap()
            .header("CSeq", format!("{cseq} {method}"))
            .unwrap()
            .header("Contact", format!("<{CONTACT}>"))
            .unwrap()
    }

    fn service(&mut self, publish: &Publish) -> Request {
        let n = self.id();
        self.base(
            Method::Service,
            &publish.uri,
            &format!("p{n}"),
            None,
            &format!("pub{n}"),
            n,
        )
        .with_body(content_type::PUBLISH, publish.to_xml().into_bytes())
        .unwrap()
    }

    /// Publishes `availability` for `user` to containers 2 and 3 at `versions`.
    fn publish(&mut self, user: &SipUri, versions: [u32; 2], availability: u32) -> Response {
        let state = StateBody::user_state(availability).with_custom(1033, "from the bridge");
        let publish = Publish::state_in_containers(
            user.as_str(),
            STATIC_STATE_INSTANCE,
            &state,
            &[(2, versions[0]), (3, versions[1])],
        );
        let request = self.service(&publish);
        self.send(request);
        self.only_response()
    }

    fn subscribe_request(
        &mut self,
        dialog: &Dialog,
        users: &[SipUri],
        expires: u32,
        supported: &str,
    ) -> Request {
        let body = BatchSubscribe {
            uri: APP.to_owned(),
            action: SubscribeAction::Subscribe,
            id: "63792024".to_owned(),
            resources: users.iter().map(ToString::to_string).collect(),
            categories: vec!["state".to_owned()],
        }
        .to_xml();
        self.base(
            Method::Subscribe,
            APP,
            &dialog.local_tag,
            dialog.remote_tag.as_deref(),
            &dialog.call_id,
            dialog.cseq,
        )
        .header("Event", "presence")
        .unwrap()
        .header(
            "Accept",
            "application/msrtc-event-categories+xml, application/rlmi+xml, multipart/related",
        )
        .unwrap()
        .header("Supported", supported)
        .unwrap()
        .header("Proxy-Require", "ms-benotify")
        .unwrap()
        .header("Require", "adhoclist, categoryList")
        .unwrap()
        .header("Expires", expires.to_string())
        .unwrap()
        .with_body(content_type::BATCH_SUBSCRIBE, body.into_bytes())
        .unwrap()
    }

    /// Subscribes to `users`: the 200 and whatever followed it.
    fn subscribe(
        &mut self,
        users: &[SipUri],
        expires: u32,
        supported: &str,
    ) -> (Dialog, Response, Vec<Message>) {
        let n = self.id();
        let mut dialog = Dialog {
            call_id: format!("sub{n}"),
            local_tag: format!("t{n}"),
            remote_tag: None,
            cseq: 1,
        };
        let request = self.subscribe_request(&dialog, users, expires, supported);
        self.send(request);
        let mut messages = self.messages().into_iter();
        let Some(Message::Response(ok)) = messages.next() else {
            panic!("no response to SUBSCRIBE");
        };
        dialog.remote_tag = ok.headers().to_tag().unwrap();
        (dialog, ok, messages.collect())
    }
}

/// The bridge's view of a subscription dialog.
#[derive(Clone, Debug)]
struct Dialog {
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    cseq: u32,
}

fn notification_of(message: &Message) -> Notification {
    let ct = message.headers().get("Content-Type").unwrap_or_default();
    parse_notification(ct, message.body()).unwrap()
}

fn request(message: &Message) -> &Request {
    message.as_request().expect("a request")
}

fn fault_of(response: &Response) -> Fault {
    assert_eq!(response.status().as_u16(), 409);
    assert_eq!(
        response.headers().get("Content-Type"),
        Some(content_type::FAULT)
    );
    let diagnostics = response.headers().ms_diagnostics().unwrap().unwrap();
    assert_eq!(diagnostics.code, diagnostics::VERSION_CONFLICT);
    let fault = Fault::parse(response.body()).unwrap();
    assert!(fault.is_wrong_delta());
    fault
}

fn op(index: u32, version: u32, cur: u32) -> FaultOperation {
    FaultOperation {
        index,
        version: Some(version),
        cur_version: Some(cur),
    }
}

fn events(sim: &mut Simulator) -> Vec<SimEvent> {
    std::iter::from_fn(|| sim.poll_event()).collect()
}

// ------------------------------------------------------------------------ publications

#[test]
fn publish_version_zero_then_a_stale_zero_then_one() {
    let mut app = App::default();
    let agent = uri("agent1");
    let ok = app.publish(&agent, [0, 0], 6500);
    assert_eq!(ok.status().as_u16(), 200);
    assert!(ok.headers().to_tag().unwrap().is_some());
    assert_eq!(app.sim.published_count(), 1);
    assert_eq!(
        app.sim.shows(&agent),
        Some(Shown {
            availability: 6500,
            texts: vec![(1033, "from the bridge".to_owned())],
            activity_token: None,
        })
    );

    let conflict = app.publish(&agent, [0, 0], 3500);
    assert_eq!(fault_of(&conflict).operations, [op(1, 0, 1), op(2, 0, 1)]);
    assert_eq!(app.sim.shows(&agent).map(|s| s.availability), Some(6500));
    assert_eq!(app.sim.published_count(), 1);

    let ok = app.publish(&agent, [1, 1], 3500);
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(app.sim.shows(&agent).map(|s| s.availability), Some(3500));
    for container in [2, 3] {
        assert_eq!(
            app.sim
                .version(&agent, "state", STATIC_STATE_INSTANCE, container),
            2
        );
    }
    let log = events(&mut app.sim);
    assert!(log.iter().any(|e| matches!(e, SimEvent::Conflict { injected: false, operations, .. } if operations.len() == 2)));
    assert!(log.iter().any(|e| matches!(
        e,
        SimEvent::Published {
            availability: Some(3500),
            ..
        }
    )));
}

#[test]
fn a_request_with_one_stale_publication_applies_nothing() {
    let mut app = App::default();
    let agent = uri("agent1");
    // Only container 2 exists (version 1).
    let state = StateBody::user_state(6500);
    let only_two =
        Publish::state_in_containers(agent.as_str(), STATIC_STATE_INSTANCE, &state, &[(2, 0)]);
    let request = app.service(&only_two);
    app.send(request);
    assert_eq!(app.only_response().status().as_u16(), 200);
    // Container 2 right (1), container 3 wrong (1 instead of 0): the fault names only the
    // second publication, and container 2 is left alone.
    let conflict = app.publish(&agent, [1, 1], 9500);
    assert_eq!(fault_of(&conflict).operations, [op(2, 1, 0)]);
    assert_eq!(
        app.sim.version(&agent, "state", STATIC_STATE_INSTANCE, 2),
        1
    );
    assert_eq!(
        app.sim.version(&agent, "state", STATIC_STATE_INSTANCE, 3),
        0
    );
    assert_eq!(app.sim.shows(&agent).map(|s| s.availability), Some(6500));
    // Both wrong: both named, in request order.
    let conflict = app.publish(&agent, [0, 4], 9500);
    assert_eq!(fault_of(&conflict).operations, [op(1, 0, 1), op(2, 4, 0)]);
}

#[test]
fn removal_clears_the_state_and_bumps_the_version() {
    let mut app = App::default();
    let agent = uri("agent1");
    assert_eq!(app.publish(&agent, [0, 0], 6500).status().as_u16(), 200);
    let removal = Publish::remove_state_in_containers(
        agent.as_str(),
        STATIC_STATE_INSTANCE,
        &[(2, 1), (3, 1)],
    );
    let request = app.service(&removal);
    app.send(request);
    assert_eq!(app.only_response().status().as_u16(), 200);
    assert_eq!(app.sim.shows(&agent), None);
    assert_eq!(
        app.sim.version(&agent, "state", STATIC_STATE_INSTANCE, 3),
        2
    );
    // The next publication continues from the tombstone's version.
    assert_eq!(app.publish(&agent, [0, 0], 3500).status().as_u16(), 409);
    assert_eq!(app.publish(&agent, [2, 2], 3500).status().as_u16(), 200);
    let log = events(&mut app.sim);
    assert!(log.iter().any(|e| matches!(
        e,
        SimEvent::Published {
            availability: None,
            ..
        }
    )));
}

#[test]
fn the_user_picking_a_state_wins_and_makes_the_bridge_recover() {
    let mut app = App::default();
    let agent = uri("agent1");
    assert_eq!(app.publish(&agent, [0, 0], 6500).status().as_u16(), 200);
    app.sim
        .set_user_presence(&agent, 3500, Some("Free"), app.now);
    assert_eq!(
        app.sim.shows(&agent),
        Some(Shown {
            availability: 3500,
            texts: vec![(1033, "Free".to_owned())],
            activity_token: None
        })
    );
    // The bridge still believes version 1: it gets 409 with the user's version 2.
    let conflict = app.publish(&agent, [1, 1], 9500);
    assert_eq!(fault_of(&conflict).operations, [op(1, 1, 2), op(2, 1, 2)]);
    // It takes curVersion and publishes again: now the bridge's state is the latest write.
    assert_eq!(app.publish(&agent, [2, 2], 9500).status().as_u16(), 200);
    assert_eq!(app.sim.shows(&agent).map(|s| s.availability), Some(9500));
    let log = events(&mut app.sim);
    assert!(log.iter().any(|e| matches!(
        e,
        SimEvent::UserChanged {
            source: ChangeSource::User,
            shown: Some(Shown {
                availability: 3500,
                ..
            }),
            ..
        }
    )));
}

#[test]
fn bad_publications_are_refused_with_diagnostics() {
    let mut app = App::default();
    // Not a category publication.
    let request = app
        .base(Method::Service, "sip:a@contoso.com", "x", None, "c1", 1)
        .with_body("application/xml", &b"<x/>"[..])
        .unwrap();
    app.send(request);
    let r = app.only_response();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(r.headers().get("Accept"), Some(content_type::PUBLISH));
    // Unreadable XML.
    let request = app
        .base(Method::Service, "sip:a@contoso.com", "x", None, "c2", 2)
        .with_body(content_type::PUBLISH, &b"<publish"[..])
        .unwrap();
    app.send(request);
    let r = app.only_response();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.headers().ms_diagnostics().unwrap().unwrap().code,
        diagnostics::BAD_BODY
    );
    // For another user than the Request-URI.
    let publish = Publish::state_in_containers(
        "sip:b@contoso.com",
        STATIC_STATE_INSTANCE,
        &StateBody::user_state(3500),
        &[(2, 0)],
    );
    let request = app
        .base(Method::Service, "sip:a@contoso.com", "x", None, "c3", 3)
        .with_body(content_type::PUBLISH, publish.to_xml().into_bytes())
        .unwrap();
    app.send(request);
    let r = app.only_response();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.headers()
            .ms_diagnostics()
            .unwrap()
            .unwrap()
            .reason()
            .unwrap()
            .contains("sip:b@contoso.com")
    );
    assert_eq!(app.sim.published_count(), 0);
}

// ------------------------------------------------------------------------ subscriptions

#[test]
fn a_single_user_subscription_gets_200_then_a_benotify_with_the_state() {
    let mut app = App::new(SimConfig {
        max_expires: 3600,
        ..SimConfig::default()
    });
    let agent = uri("agent1");
    app.sim
        .set_user_presence(&agent, 6500, Some("In a call"), app.now);
    let (dialog, ok, rest) = app.subscribe(std::slice::from_ref(&agent), 7200, SUPPORTED_ALL);
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers().expires().unwrap(), Some(3600));
    assert!(dialog.remote_tag.is_some());
    assert!(ok.body().is_empty());
    assert_eq!(rest.len(), 1);
    let notify = request(&rest[0]);
    assert_eq!(notify.method(), &Method::Benotify);
    assert_eq!(notify.uri(), CONTACT);
    let h = notify.headers();
    assert_eq!(h.call_id(), Some(dialog.call_id.as_str()));
    assert_eq!(h.from_tag().unwrap(), dialog.remote_tag);
    assert_eq!(h.from_addr().unwrap().unwrap().uri, APP);
    assert_eq!(
        h.to_tag().unwrap().as_deref(),
        Some(dialog.local_tag.as_str())
    );
    assert_eq!(h.to_addr().unwrap().unwrap().epid(), Some("0d4e5f"));
    assert_eq!(h.cseq().unwrap().unwrap().to_string(), "1 BENOTIFY");
    assert_eq!(h.get("Event"), Some("presence"));
    assert_eq!(h.get("Subscription-State"), Some("active;expires=3600"));
    assert!(h.via_branch().unwrap().unwrap().starts_with("z9hG4bK"));
    assert_eq!(h.get("Content-Type"), Some(content_type::CATEGORIES));
    let n = notification_of(&rest[0]);
    assert_eq!(n.categories.len(), 1);
    assert_eq!(n.categories[0].uri, agent.as_str());
    let state = n.categories[0].aggregate_state().unwrap();
    assert_eq!(state.availability, Some(6500));
    assert_eq!(state.custom_text(1033), Some("In a call"));

    // A change is notified on the same dialog with the next CSeq.
    app.sim.set_user_presence(&agent, 3500, None, app.now);
    let next = app.messages();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].headers().cseq().unwrap().unwrap().seq, 2);
    assert_eq!(
        notification_of(&next[0]).categories[0].availability(),
        Some(3500)
    );
    // No change, no notification.
    app.sim.set_user_presence(&agent, 3500, None, app.now);
    assert!(app.messages().is_empty());
}

#[test]
fn a_batch_of_three_gets_a_multipart_first_notification_with_rlmi() {
    let mut app = App::default();
    let users = [uri("a1"), uri("a2"), uri("a3")];
    app.sim.set_users_presence(
        &[
            (users[0].clone(), 3500, Some("Available")),
            (users[1].clone(), 6500, None),
            (users[2].clone(), 9500, Some("Presenting")),
        ],
        app.now,
    );
    let (_, ok, rest) = app.subscribe(&users, 600, SUPPORTED_ALL);
    assert_eq!(ok.headers().expires().unwrap(), Some(600));
    assert_eq!(rest.len(), 1);
    let ct = rest[0].headers().content_type().unwrap().unwrap();
    assert!(ct.is("multipart/related"));
    assert_eq!(ct.param("type").as_deref(), Some(content_type::RLMI));
    let n = notification_of(&rest[0]);
    let rlmi = n.rlmi.as_ref().unwrap();
    assert!(rlmi.full_state);
    assert_eq!(rlmi.uri, APP);
    assert_eq!(rlmi.resources.len(), 3);
    assert!(n.terminated.is_empty());
    let got: Vec<(String, Option<u64>)> = n
        .categories
        .iter()
        .map(|c| (c.uri.clone(), c.availability()))
        .collect();
    assert_eq!(
        got,
        [
            (users[0].to_string(), Some(3500)),
            (users[1].to_string(), Some(6500)),
            (users[2].to_string(), Some(9500))
        ]
    );
    assert_eq!(
        n.categories[2].aggregate_state().unwrap().custom_text(1033),
        Some("Presenting")
    );
}

#[test]
fn a_batch_first_notification_lists_every_resource_but_carries_only_known_states() {
    let mut app = App::default();
    let users = [uri("a1"), uri("a2")];
    app.sim.set_user_presence(&users[1], 6500, None, app.now);
    let (_, _, rest) = app.subscribe(&users, 600, SUPPORTED_ALL);
    let n = notification_of(&rest[0]);
    assert_eq!(n.rlmi.as_ref().unwrap().resources.len(), 2);
    assert_eq!(n.categories.len(), 1);
    assert_eq!(n.categories[0].uri, users[1].as_str());
    // A single user without a state: a NOTIFY without body.
    let (_, _, rest) = app.subscribe(&[uri("nobody")], 600, "eventlist");
    assert_eq!(rest.len(), 1);
    assert_eq!(request(&rest[0]).method(), &Method::Notify);
    assert!(rest[0].body().is_empty());
}

#[test]
fn several_pending_changes_are_batched() {
    let mut app = App::default();
    let users = [uri("a1"), uri("a2"), uri("a3")];
    let (_, _, first) = app.subscribe(&users, 600, SUPPORTED_ALL);
    assert_eq!(notification_of(&first[0]).categories.len(), 0);
    app.sim.set_users_presence(
        &[
            (users[0].clone(), 3500, None),
            (users[2].clone(), 15500, None),
        ],
        app.now,
    );
    let next = app.messages();
    assert_eq!(next.len(), 1);
    let n = notification_of(&next[0]);
    let rlmi = n.rlmi.as_ref().unwrap();
    assert!(!rlmi.full_state);
    assert_eq!(rlmi.version, 2);
    assert_eq!(rlmi.resources.len(), 2);
    let availabilities: Vec<_> = n.categories.iter().map(|c| c.availability()).collect();
    assert_eq!(availabilities, [Some(3500), Some(15500)]);
    // Two publications in one read are one batch too.
    let mut bytes = Vec::new();
    for (user, availability) in [(&users[0], 6500), (&users[1], 7500)] {
        let publish = Publish::state_in_containers(
            user.as_str(),
            STATIC_STATE_INSTANCE,
            &StateBody::user_state(availability),
            &[(2, u32::from(user == &users[0]))],
        );
        bytes.extend(app.service(&publish).to_bytes());
    }
    app.sim.handle_bytes(app.conn, &bytes, app.now).unwrap();
    let out = app.messages();
    assert_eq!(out.len(), 3, "two 200s and one notification");
    assert!(
        out[..2]
            .iter()
            .all(|m| m.as_response().is_some_and(|r| r.status().as_u16() == 200))
    );
    assert_eq!(notification_of(&out[2]).categories.len(), 2);
}

#[test]
fn refresh_unknown_dialog_and_unsubscribe() {
    let mut app = App::new(SimConfig {
        max_expires: 600,
        ..SimConfig::default()
    });
    let agent = uri("agent1");
    let (mut dialog, _, _) = app.subscribe(std::slice::from_ref(&agent), 300, SUPPORTED_ALL);
    app.advance(Duration::from_secs(250));
    // Refresh: same Call-ID and tags, next CSeq.
    dialog.cseq += 1;
    let refresh = app.subscribe_request(&dialog, std::slice::from_ref(&agent), 900, SUPPORTED_ALL);
    app.send(refresh);
    let ok = app.only_response();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers().expires().unwrap(), Some(600));
    assert_eq!(ok.headers().to_tag().unwrap(), dialog.remote_tag);
    app.advance(Duration::from_secs(100)); // 350 s after the start: alive thanks to the refresh
    assert_eq!(app.sim.dialog_count(), 1);
    app.sim.set_user_presence(&agent, 6500, None, app.now);
    let n = app.messages();
    assert_eq!(
        n[0].headers().get("Subscription-State"),
        Some("active;expires=500")
    );

    // Unknown dialog: 481.
    let mut stranger = dialog.clone();
    stranger.remote_tag = Some("nope".to_owned());
    let request = app.subscribe_request(&stranger, &[], 300, SUPPORTED_ALL);
    app.send(request);
    let r = app.only_response();
    assert_eq!(r.status().as_u16(), 481);
    assert_eq!(
        r.headers().ms_diagnostics().unwrap().unwrap().code,
        diagnostics::NO_DIALOG
    );

    // Expires: 0 ends it.
    dialog.cseq += 1;
    let end = app
        .base(
            Method::Subscribe,
            APP,
            &dialog.local_tag,
            dialog.remote_tag.as_deref(),
            &dialog.call_id,
            dialog.cseq,
        )
        .header("Event", "presence")
        .unwrap()
        .header("Expires", "0")
        .unwrap();
    app.send(end);
    let r = app.only_response();
    assert_eq!(
        (r.status().as_u16(), r.headers().expires().unwrap()),
        (200, Some(0))
    );
    assert_eq!(app.sim.dialog_count(), 0);
    app.sim.set_user_presence(&agent, 3500, None, app.now);
    assert!(app.messages().is_empty());
    // And the old dialog is unknown now.
    dialog.cseq += 1;
    let late = app.subscribe_request(&dialog, std::slice::from_ref(&agent), 300, SUPPORTED_ALL);
    app.send(late);
    assert_eq!(app.only_response().status().as_u16(), 481);
}

#[test]
fn a_refresh_with_a_new_list_notifies_the_added_users() {
    let mut app = App::default();
    let (a, b) = (uri("a"), uri("b"));
    app.sim.set_user_presence(&b, 12500, None, app.now);
    let (mut dialog, _, _) = app.subscribe(std::slice::from_ref(&a), 300, "eventlist");
    dialog.cseq += 1;
    let refresh = app.subscribe_request(&dialog, &[a.clone(), b.clone()], 300, "eventlist");
    app.send(refresh);
    let out = app.messages();
    assert_eq!(out.len(), 2);
    assert_eq!(notification_of(&out[1]).categories[0].uri, b.as_str());
    assert_eq!(app.sim.watched_users().len(), 2);
}

#[test]
fn a_change_notifies_exactly_the_dialogs_watching_the_user() {
    let mut app = App::default();
    let (a, b, c) = (uri("a"), uri("b"), uri("c"));
    let (mut d1, _, _) = app.subscribe(&[a.clone(), b.clone()], 300, "eventlist");
    let (d2, _, _) = app.subscribe(&[b.clone(), c.clone()], 300, "eventlist");
    assert!(app.sim.watchers_match_dialogs());
    let notified = |app: &mut App, user: &SipUri| -> Vec<String> {
        app.sim.set_user_presence(user, 6500, None, app.now);
        let mut ids: Vec<String> = app
            .messages()
            .iter()
            .filter_map(|m| m.as_request())
            .map(|r| r.headers().call_id().unwrap().to_owned())
            .collect();
        ids.sort();
        app.sim.set_user_presence(user, 3500, None, app.now);
        app.messages();
        ids
    };
    let mut both = vec![d1.call_id.clone(), d2.call_id.clone()];
    both.sort();
    assert_eq!(notified(&mut app, &b), both);
    assert_eq!(notified(&mut app, &a), [d1.call_id.clone()]);
    // d1 drops `b` and takes `c`.
    d1.cseq += 1;
    let refresh = app.subscribe_request(&d1, &[a, c.clone()], 300, "eventlist");
    app.send(refresh);
    app.messages();
    assert!(app.sim.watchers_match_dialogs());
    assert_eq!(notified(&mut app, &b), std::slice::from_ref(&d2.call_id));
    let mut d1_d2 = vec![d1.call_id, d2.call_id];
    d1_d2.sort();
    assert_eq!(notified(&mut app, &c), d1_d2);
    // One user's subscription ended, then a whole dialog.
    app.sim.terminate_resource(&c);
    app.messages();
    assert!(app.sim.watchers_match_dialogs());
    assert!(notified(&mut app, &c).is_empty());
    app.sim.close(app.conn);
    assert!(app.sim.watchers_match_dialogs());
    assert_eq!(app.sim.dialog_count(), 0);
}

#[test]
fn dialogs_not_refreshed_expire_with_a_final_notify() {
    let mut app = App::default();
    let agent = uri("agent1");
    let (dialog, _, _) = app.subscribe(std::slice::from_ref(&agent), 120, SUPPORTED_ALL);
    assert_eq!(
        app.sim.poll_timeout(),
        Some(app.now + Duration::from_secs(120))
    );
    app.advance(Duration::from_secs(119));
    assert_eq!(app.sim.dialog_count(), 1);
    app.advance(Duration::from_secs(1));
    assert_eq!(app.sim.dialog_count(), 0);
    assert_eq!(app.sim.poll_timeout(), None);
    let out = app.messages();
    assert_eq!(out.len(), 1);
    let end = request(&out[0]);
    assert_eq!(
        end.method(),
        &Method::Notify,
        "a termination is sent reliably"
    );
    assert_eq!(end.headers().call_id(), Some(dialog.call_id.as_str()));
    assert_eq!(
        end.headers().get("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    app.sim.set_user_presence(&agent, 3500, None, app.now);
    assert!(app.messages().is_empty());
}

#[test]
fn notify_without_benotify_support_or_when_switched_off() {
    for (config_benotify, supported, expected) in [
        (true, "eventlist", Method::Notify),
        (false, SUPPORTED_ALL, Method::Notify),
        (true, "MS-BENOTIFY", Method::Benotify),
    ] {
        let mut app = App::new(SimConfig {
            benotify: config_benotify,
            ..SimConfig::default()
        });
        let agent = uri("agent1");
        app.sim.set_user_presence(&agent, 3500, None, app.now);
        let (_, ok, rest) = app.subscribe(std::slice::from_ref(&agent), 300, supported);
        assert_eq!(
            request(&rest[0]).method(),
            &expected,
            "{config_benotify} {supported}"
        );
        assert_eq!(
            ok.headers().values("Supported").any(|s| s == "ms-benotify"),
            expected == Method::Benotify
        );
    }
}

#[test]
fn responses_to_notify_are_read_and_481_ends_the_dialog() {
    let mut app = App::default();
    let agent = uri("agent1");
    app.sim.set_user_presence(&agent, 3500, None, app.now);
    let (_, _, rest) = app.subscribe(std::slice::from_ref(&agent), 300, "eventlist");
    let notify = request(&rest[0]).clone();
    app.send(Response::for_request(&notify, 200, "OK").unwrap());
    assert!(app.messages().is_empty(), "a 200 gets no answer");
    assert_eq!(app.sim.dialog_count(), 1);
    app.send(Response::for_request(&notify, 481, "Call Leg/Transaction Does Not Exist").unwrap());
    assert_eq!(app.sim.dialog_count(), 0);
    let log = events(&mut app.sim);
    assert!(
        log.iter()
            .any(|e| matches!(e, SimEvent::Response { status: 481, .. }))
    );
}

#[test]
fn piggyback_puts_the_first_notification_in_the_200() {
    let mut app = App::new(SimConfig {
        piggyback_first_notify: true,
        ..SimConfig::default()
    });
    let users = [uri("a1"), uri("a2")];
    app.sim.set_user_presence(&users[0], 6500, None, app.now);
    let (_, ok, rest) = app.subscribe(&users, 300, SUPPORTED_ALL);
    assert!(rest.is_empty(), "no separate notification");
    let n = parse_notification(ok.headers().get("Content-Type").unwrap(), ok.body()).unwrap();
    assert_eq!(n.categories[0].availability(), Some(6500));
    assert!(n.rlmi.unwrap().full_state);
    // Nothing to carry yet: the usual separate notification (without body).
    let (_, ok, rest) = app.subscribe(&[uri("nobody")], 300, SUPPORTED_ALL);
    assert!(ok.body().is_empty());
    assert_eq!(rest.len(), 1);
    assert!(rest[0].body().is_empty());
    // Without the client's support, the usual separate notification.
    let (_, ok, rest) = app.subscribe(&users, 300, "ms-benotify");
    assert!(ok.body().is_empty());
    assert_eq!(rest.len(), 1);
}

#[test]
fn bad_subscriptions() {
    let mut app = App::default();
    let dialog = Dialog {
        call_id: "s".to_owned(),
        local_tag: "t".to_owned(),
        remote_tag: None,
        cseq: 1,
    };
    // Wrong event package.
    let mut request = app.subscribe_request(&dialog, &[uri("a")], 300, "");
    request.headers_mut().set("Event", "dialog").unwrap();
    app.send(request);
    let r = app.only_response();
    assert_eq!(r.status().as_u16(), 489);
    assert_eq!(r.headers().get("Allow-Events"), Some("presence"));
    // No body.
    let request = app
        .base(Method::Subscribe, APP, "t", None, "s2", 1)
        .header("Event", "presence")
        .unwrap();
    app.send(request);
    assert_eq!(app.only_response().status().as_u16(), 415);
    // Unsubscribe action outside a dialog: accepted, nothing created.
    let mut request = app.subscribe_request(&dialog, &[uri("a")], 300, "");
    let body = BatchSubscribe {
        uri: APP.to_owned(),
        action: SubscribeAction::Unsubscribe,
        id: "1".to_owned(),
        resources: vec![],
        categories: vec![],
    };
    request
        .set_body(content_type::BATCH_SUBSCRIBE, body.to_xml().into_bytes())
        .unwrap();
    app.send(request);
    let r = app.only_response();
    assert_eq!(
        (r.status().as_u16(), r.headers().expires().unwrap()),
        (200, Some(0))
    );
    assert_eq!(app.sim.dialog_count(), 0);
}

// ------------------------------------------------------------------------ other requests

#[test]
fn options_keepalive_unknown_methods_and_malformed_requests() {
    let mut app = App::default();
    let options = app.base(Method::Options, "sip:pool.contoso.com", "o", None, "o1", 1);
    app.send(options);
    let r = app.only_response();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().values("Allow").any(|m| m == "SERVICE"));

    app.sim
        .handle_bytes(app.conn, presence_sip::PING, app.now)
        .unwrap();
    assert_eq!(
        app.sim.poll_transmit(app.conn).as_deref(),
        Some(presence_sip::PONG)
    );

    let message = app.base(Method::Message, "sip:a@contoso.com", "m", None, "m1", 1);
    app.send(message);
    let r = app.only_response();
    assert_eq!(r.status().as_u16(), 501);
    assert!(r.headers().get("Allow").is_some());

    // ACK and BENOTIFY get no answer.
    let ack = app.base(Method::Ack, "sip:a@contoso.com", "m", None, "m1", 1);
    app.send(ack);
    let benotify = app.base(Method::Benotify, "sip:a@contoso.com", "m", None, "m2", 1);
    app.send(benotify);
    assert!(app.messages().is_empty());

    // No Call-ID: 400.
    let mut bad = app.base(Method::Options, "sip:a@contoso.com", "m", None, "m3", 1);
    bad.headers_mut().remove("Call-ID");
    app.send(bad);
    let r = app.only_response();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.headers()
            .ms_diagnostics()
            .unwrap()
            .unwrap()
            .reason()
            .unwrap()
            .contains("Call-ID")
    );
}

#[test]
fn garbage_is_a_framing_error_the_caller_closes_on() {
    let mut app = App::default();
    let err = app
        .sim
        .handle_bytes(app.conn, b"HELLO\nTHERE\r\n\r\n", app.now)
        .unwrap_err();
    assert!(matches!(err, SimError::Framing { conn, .. } if conn == app.conn));
    assert!(matches!(
        app.sim.handle_bytes(app.conn, b"OPTIONS", app.now),
        Err(SimError::Framing { .. })
    ));
    app.sim.close(app.conn);
    assert!(!app.sim.is_open(app.conn));
    assert!(matches!(
        app.sim.handle_bytes(app.conn, b"x", app.now),
        Err(SimError::UnknownConnection(_))
    ));
    let log = events(&mut app.sim);
    assert!(matches!(log.last(), Some(SimEvent::Closed { .. })));
}

#[test]
fn closing_a_connection_ends_its_dialogs() {
    let mut app = App::default();
    app.subscribe(&[uri("a")], 300, "");
    let other = app.sim.open(app.now);
    assert_eq!(app.sim.connections().count(), 2);
    app.sim.close(app.conn);
    assert_eq!(app.sim.dialog_count(), 0);
    assert!(app.sim.is_open(other));
}

#[test]
fn a_peer_that_never_reads_is_cut_off() {
    let mut app = App::new(SimConfig {
        max_backlog: 4096,
        ..SimConfig::default()
    });
    let agent = uri("agent1");
    app.subscribe(std::slice::from_ref(&agent), 3600, "");
    for availability in 0..100 {
        app.sim
            .set_user_presence(&agent, 3500 + availability, None, app.now);
    }
    assert!(!app.sim.is_open(app.conn));
    assert_eq!(app.sim.dialog_count(), 0);
}

// ------------------------------------------------------------------------ faults

#[test]
fn fail_next_answers_the_given_status_then_recovers() {
    let mut app = App::default();
    let agent = uri("agent1");
    app.sim.fail_next(Method::Service, 3, 503).unwrap();
    app.sim.fail_next(Method::Service, 1, 408).unwrap();
    for expected in [503, 503, 503] {
        let r = app.publish(&agent, [0, 0], 6500);
        assert_eq!(r.status().as_u16(), expected);
        assert_eq!(r.headers().get("Retry-After"), Some("1"));
        assert_eq!(
            r.headers().ms_diagnostics().unwrap().unwrap().code,
            diagnostics::INJECTED
        );
    }
    let r = app.publish(&agent, [0, 0], 6500);
    assert_eq!(r.status().as_u16(), 408);
    assert_eq!(r.headers().get("Retry-After"), None);
    assert_eq!(app.sim.shows(&agent), None, "failed requests apply nothing");
    assert_eq!(app.publish(&agent, [0, 0], 6500).status().as_u16(), 200);
    // Other methods are not affected.
    app.sim.fail_next(Method::Subscribe, 1, 500).unwrap();
    assert_eq!(app.publish(&agent, [1, 1], 3500).status().as_u16(), 200);
    let (_, ok, _) = app.subscribe(std::slice::from_ref(&agent), 300, "");
    assert_eq!(ok.status().as_u16(), 500);
    assert_eq!(app.sim.dialog_count(), 0);
    assert!(matches!(
        app.sim.fail_next(Method::Service, 1, 200),
        Err(SimError::InvalidStatus(200))
    ));
    assert!(matches!(
        app.sim.random_errors(0.5, 99),
        Err(SimError::InvalidStatus(99))
    ));
    let log = events(&mut app.sim);
    let injected = log
        .iter()
        .filter(|e| {
            matches!(
                e,
                SimEvent::FaultInjected {
                    fault: "fail_next",
                    ..
                }
            )
        })
        .count();
    assert_eq!(injected, 5);
}

#[test]
fn random_conflicts_bump_the_version_first() {
    let mut app = App::default();
    let agent = uri("agent1");
    app.sim.random_conflicts(1.0);
    let r = app.publish(&agent, [0, 0], 6500);
    assert_eq!(fault_of(&r).operations, [op(1, 0, 1), op(2, 0, 1)]);
    let r = app.publish(&agent, [1, 1], 6500);
    assert_eq!(fault_of(&r).operations, [op(1, 1, 2), op(2, 1, 2)]);
    app.sim.random_conflicts(0.0);
    assert_eq!(app.publish(&agent, [2, 2], 6500).status().as_u16(), 200);
    let log = events(&mut app.sim);
    assert!(
        log.iter()
            .any(|e| matches!(e, SimEvent::Conflict { injected: true, .. }))
    );
    assert!(log.iter().any(|e| matches!(
        e,
        SimEvent::FaultInjected {
            status: 409,
            fault: "random_conflicts",
            ..
        }
    )));
}

#[test]
fn random_faults_are_deterministic_for_a_seed() {
    let run = |seed: u64| {
        let mut app = App::new(SimConfig {
            seed,
            ..SimConfig::default()
        });
        app.sim.random_errors(0.5, 500).unwrap();
        let agent = uri("agent1");
        let mut version = 0;
        let mut statuses = Vec::new();
        for i in 0..40 {
            let r = app.publish(&agent, [version, version], 3500 + i);
            if r.status().as_u16() == 200 {
                version += 1;
            }
            statuses.push(r.status().as_u16());
        }
        statuses
    };
    let a = run(42);
    assert_eq!(a, run(42));
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
    assert_ne!(a, run(43));
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let run = || {
        let mut app = App::new(SimConfig {
            seed: 9,
            ..SimConfig::default()
        });
        let users = [uri("a1"), uri("a2")];
        app.sim
            .set_user_presence(&users[0], 6500, Some("x"), app.now);
        let (_, ok, rest) = app.subscribe(&users, 300, SUPPORTED_ALL);
        let mut out = ok.to_bytes();
        for m in rest {
            out.extend(m.to_bytes());
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn delayed_responses_are_released_in_order_at_handle_timeout() {
    let mut app = App::default();
    let agent = uri("agent1");
    app.sim.set_user_presence(&agent, 6500, None, app.now);
    app.sim.delay_responses(Duration::from_secs(2));
    let dialog = Dialog {
        call_id: "d".to_owned(),
        local_tag: "t".to_owned(),
        remote_tag: None,
        cseq: 1,
    };
    let subscribe = app.subscribe_request(&dialog, std::slice::from_ref(&agent), 300, "eventlist");
    app.send(subscribe);
    // Keep-alives are not held.
    app.sim
        .handle_bytes(app.conn, presence_sip::PING, app.now)
        .unwrap();
    assert_eq!(
        app.sim.poll_transmit(app.conn).as_deref(),
        Some(presence_sip::PONG)
    );
    assert_eq!(app.sim.poll_transmit(app.conn), None);
    assert_eq!(
        app.sim.poll_timeout(),
        Some(app.now + Duration::from_secs(2))
    );
    app.advance(Duration::from_millis(1999));
    assert!(app.messages().is_empty());
    app.advance(Duration::from_millis(1));
    let out = app.messages();
    assert_eq!(out.len(), 2);
    assert!(out[0].as_response().is_some(), "the 200 first");
    assert_eq!(request(&out[1]).method(), &Method::Notify);
    // Switched off: immediate again.
    app.sim.delay_responses(Duration::ZERO);
    let options = app.base(Method::Options, "sip:pool", "o", None, "o", 1);
    app.send(options);
    assert_eq!(app.messages().len(), 1);
}

#[test]
fn terminate_subscriptions_sends_deactivated_and_forgets() {
    let mut app = App::default();
    let (d1, _, _) = app.subscribe(&[uri("a")], 300, SUPPORTED_ALL);
    let (d2, _, _) = app.subscribe(&[uri("b"), uri("c")], 300, SUPPORTED_ALL);
    app.sim.terminate_subscriptions();
    let out = app.messages();
    assert_eq!(out.len(), 2);
    let mut call_ids = Vec::new();
    for m in &out {
        let r = request(m);
        assert_eq!(r.method(), &Method::Notify);
        assert_eq!(
            r.headers().get("Subscription-State"),
            Some("terminated;reason=deactivated")
        );
        call_ids.push(r.headers().call_id().unwrap().to_owned());
    }
    call_ids.sort();
    assert_eq!(call_ids, [d1.call_id, d2.call_id]);
    assert_eq!(app.sim.dialog_count(), 0);
}

#[test]
fn terminate_resource_marks_it_terminated_in_rlmi() {
    let mut app = App::default();
    let users = [uri("a"), uri("b")];
    app.subscribe(&users, 300, SUPPORTED_ALL);
    app.sim.terminate_resource(&users[0]);
    let out = app.messages();
    assert_eq!(out.len(), 1);
    assert_eq!(request(&out[0]).method(), &Method::Benotify);
    let n = notification_of(&out[0]);
    assert_eq!(n.terminated, [users[0].to_string()]);
    assert!(n.categories.is_empty());
    let instance = &n.rlmi.unwrap().resources[0].instances[0];
    assert_eq!(instance.reason.as_deref(), Some("deactivated"));
    // The dialog lives on for the other user only.
    assert_eq!(app.sim.dialog_count(), 1);
    app.sim.set_users_presence(
        &[
            (users[0].clone(), 3500, None),
            (users[1].clone(), 6500, None),
        ],
        app.now,
    );
    let out = app.messages();
    let n = notification_of(&out[0]);
    assert_eq!(n.categories.len(), 1);
    assert_eq!(n.categories[0].uri, users[1].as_str());
}

#[test]
fn time_bounded_publications_expire_and_are_notified() {
    let mut app = App::default();
    let agent = uri("agent1");
    app.subscribe(std::slice::from_ref(&agent), 3600, "");
    let mut publication = Publication::state(
        presence_mspres::TIME_BOUND_STATE_INSTANCE,
        2,
        0,
        StateBody::user_state(9500),
    );
    publication.expire_type = presence_mspres::ExpireType::Time;
    publication.expires = Some(60);
    let request = app.service(&Publish {
        uri: agent.to_string(),
        publications: vec![publication],
    });
    app.send(request);
    let out = app.messages();
    assert_eq!(out.len(), 2);
    assert_eq!(
        notification_of(&out[1]).categories[0].availability(),
        Some(9500)
    );
    assert_eq!(
        app.sim.poll_timeout(),
        Some(app.now + Duration::from_secs(60))
    );
    app.advance(Duration::from_secs(60));
    assert_eq!(app.sim.shows(&agent), None);
    let out = app.messages();
    let n = notification_of(&out[0]);
    assert_eq!(
        n.categories[0].availability(),
        None,
        "an empty state category"
    );
    let log = events(&mut app.sim);
    assert!(log.iter().any(|e| matches!(
        e,
        SimEvent::UserChanged {
            source: ChangeSource::Expiry,
            shown: None,
            ..
        }
    )));
}

#[test]
fn events_print_as_one_line() {
    let mut app = App::default();
    let agent = uri("agent1");
    app.publish(&agent, [0, 0], 6500);
    app.publish(&agent, [0, 0], 6500);
    app.subscribe(std::slice::from_ref(&agent), 300, SUPPORTED_ALL);
    let lines: Vec<String> = events(&mut app.sim)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(lines.iter().all(|l| !l.contains('\n')));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("<- SERVICE sip:agent1@contoso.com"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("-> 409 Conflict to SERVICE"))
    );
    assert!(lines.iter().any(|l| l.contains("-> BENOTIFY")));
}

// ------------------------------------------------------------------------ snapshots

#[test]
fn snapshot_of_a_conflict_and_a_batched_notification() {
    let mut app = App::new(SimConfig {
        seed: 1,
        ..SimConfig::default()
    });
    let users = [uri("agent1"), uri("agent2")];
    app.sim.set_users_presence(
        &[
            (users[0].clone(), 6500, Some("In a call")),
            (users[1].clone(), 3500, None),
        ],
        app.now,
    );
    let conflict = app.publish(&users[0], [0, 0], 9500);
    insta::assert_snapshot!(
        "conflict_409",
        String::from_utf8_lossy(&conflict.to_bytes())
    );
    let (_, _, rest) = app.subscribe(&users, 300, SUPPORTED_ALL);
    insta::assert_snapshot!(
        "batched_first_benotify",
        String::from_utf8_lossy(&rest[0].to_bytes())
    );
}

// ------------------------------------------------------------------------ properties

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever a peer sends, the simulator does not panic: it answers, or it reports a
        /// framing error after which the connection is closed.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1600)) {
            crate::fuzzing::peer_bytes(&data, Instant::now());
        }

        /// Requests that are almost right (a valid publication or subscription cut or
        /// altered at one byte) never panic either.
        #[test]
        fn mutated_requests_never_panic(which in 0usize..3, at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
            let mut app = App::default();
            let agent = uri("agent1");
            let mut bytes = match which {
                0 => {
                    let publish = Publish::state_in_containers(agent.as_str(), STATIC_STATE_INSTANCE, &StateBody::user_state(6500).with_custom(1033, "x"), &[(2, 0), (3, 0)]);
                    app.service(&publish).to_bytes()
                }
                1 => {
                    let dialog = Dialog { call_id: "c".into(), local_tag: "t".into(), remote_tag: None, cseq: 1 };
                    app.subscribe_request(&dialog, &[agent, uri("b")], 300, SUPPORTED_ALL).to_bytes()
                }
                _ => Response::for_request(&app.base(Method::Notify, APP, "a", Some("b"), "c", 1), 481, "Gone").unwrap().to_bytes(),
            };
            let i = at.index(bytes.len());
            if cut { bytes.truncate(i) } else { bytes[i] = byte }
            bytes.insert(0, 63); // one chunk of up to 64 bytes at a time
            crate::fuzzing::peer_bytes(&bytes, Instant::now());
        }
    }
}
