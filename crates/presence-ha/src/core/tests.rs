//! The core against hand-written etcd answers, on a clock the tests move.

use super::*;
use proptest::prelude::*;

const ELECTION: &str = "presence-bridge";
const A: &str = "http://127.0.0.1:2379";
const B: &str = "http://127.0.0.1:2380";

/// TTL 2 s, request timeout 300 ms: margin 400 ms, trusted 1.6 s, renewals every 533 ms,
/// a pause of 66 ms after a failed one.
fn config(endpoints: &[&str]) -> CoreConfig {
    let mut c = CoreConfig::new(
        NodeId::new("bridge-1").unwrap(),
        ELECTION,
        endpoints.iter().map(|e| (*e).to_owned()).collect(),
    );
    c.lease_ttl = Duration::from_secs(2);
    c.request_timeout = Duration::from_millis(300);
    c
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Sim {
    core: ElectorCore,
    t0: Instant,
    now: Instant,
}

impl Sim {
    fn new(config: CoreConfig) -> Sim {
        let t0 = Instant::now();
        Sim {
            core: ElectorCore::new(config, 7, t0),
            t0,
            now: t0,
        }
    }

    fn at(&mut self, millis: u64) -> Instant {
        self.now = self.t0 + ms(millis);
        self.now
    }

    fn elapsed(&self, at: Instant) -> u128 {
        at.duration_since(self.t0).as_millis()
    }

    fn requests(&mut self) -> Vec<Request> {
        std::iter::from_fn(|| self.core.poll_request()).collect()
    }

    fn expect(&mut self, kinds: &[RequestKind]) -> Vec<Request> {
        let got = self.requests();
        let got_kinds: Vec<RequestKind> = got.iter().map(|r| r.kind).collect();
        assert_eq!(got_kinds, kinds, "{got:?}");
        got
    }

    fn one(&mut self, kind: RequestKind) -> Request {
        self.expect(&[kind]).remove(0)
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }

    fn roles(&mut self) -> Vec<Role> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Role(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn cancels(&mut self) -> Vec<RequestId> {
        std::iter::from_fn(|| self.core.poll_cancel()).collect()
    }

    fn answer(&mut self, request: &Request, status: u16, body: &str) {
        let now = self.now;
        self.core
            .handle_response(request.id, Response::new(status, body), now);
    }

    fn fail(&mut self, request: &Request, failure: Failure) {
        let now = self.now;
        self.core.handle_failure(request.id, failure, now);
    }

    fn tick(&mut self, millis: u64) {
        let now = self.at(millis);
        self.core.handle_timeout(now);
    }

    /// Moves the clock to the core's next timeout and handles it.
    fn next_timeout(&mut self) -> Instant {
        let at = self.core.poll_timeout().expect("a timeout");
        self.now = at;
        self.core.handle_timeout(at);
        at
    }

    /// Grants lease `id` at `millis` and answers the first leader check "no leader";
    /// returns the pending campaign.
    fn granted(&mut self, id: i64, millis: u64) -> Request {
        let grant = self.one(RequestKind::Grant);
        self.at(millis);
        self.answer(&grant, 200, &grant_ok(id, 2));
        let mut sent = self.expect(&[RequestKind::Campaign, RequestKind::Leader]);
        let query = sent.remove(1);
        self.answer(&query, 500, NO_LEADER_BODY);
        sent.remove(0)
    }

    /// A leader with lease `id` and fencing `rev`, granted and elected at `millis`.
    fn leader(&mut self, id: i64, rev: i64, millis: u64) {
        let campaign = self.granted(id, millis);
        self.answer(&campaign, 200, &campaign_won(id, rev, rev));
        assert_eq!(
            self.core.role(),
            &Role::Leader {
                fencing: Fencing(rev as u64)
            }
        );
        self.events();
    }
}

fn key(id: i64) -> String {
    format!("{ELECTION}/{id:x}")
}

fn grant_ok(id: i64, ttl: i64) -> String {
    format!(r#"{{"header":{{"revision":"1"}},"ID":"{id}","TTL":"{ttl}"}}"#)
}

fn keepalive_ok(id: i64, ttl: i64) -> String {
    format!(r#"{{"result":{{"header":{{"revision":"1"}},"ID":"{id}","TTL":"{ttl}"}}}}"#)
}

fn campaign_won(id: i64, rev: i64, header: i64) -> String {
    format!(
        r#"{{"header":{{"revision":"{header}"}},"leader":{{"name":"{}","key":"{}","rev":"{rev}","lease":"{id}"}}}}"#,
        wire::b64(ELECTION.as_bytes()),
        wire::b64(key(id).as_bytes())
    )
}

fn leader_is(id: i64, rev: i64, node: &str, header: i64) -> String {
    format!(
        r#"{{"header":{{"revision":"{header}"}},"kv":{{"key":"{}","create_revision":"{rev}","mod_revision":"{rev}","version":"1","value":"{}","lease":"{id}"}}}}"#,
        wire::b64(key(id).as_bytes()),
        wire::b64(node.as_bytes())
    )
}

const NO_LEADER_BODY: &str =
    r#"{"error":"election: no leader","message":"election: no leader","code":2}"#;

fn body(request: &Request) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

#[test]
fn a_node_grants_campaigns_and_leads() {
    let mut sim = Sim::new(config(&[A]));
    assert_eq!(
        sim.core.role(),
        &Role::Standby {
            leader: None,
            why: Why::Starting
        }
    );
    let grant = sim.one(RequestKind::Grant);
    assert_eq!(grant.url, format!("{A}/v3/lease/grant"));
    assert_eq!(body(&grant), r#"{"TTL":"2"}"#);
    assert_eq!(grant.timeout, Some(ms(300)));
    sim.at(4);
    sim.answer(&grant, 200, &grant_ok(0x1234, 2));
    let sent = sim.expect(&[RequestKind::Campaign, RequestKind::Leader]);
    assert_eq!(
        sent[0].timeout, None,
        "a campaign waits as long as it takes"
    );
    assert_eq!(
        body(&sent[0]),
        format!(
            r#"{{"name":"{}","lease":"{}","value":"{}"}}"#,
            wire::b64(ELECTION.as_bytes()),
            0x1234,
            wire::b64(b"bridge-1")
        )
    );
    assert_eq!(
        sim.roles(),
        vec![Role::Standby {
            leader: None,
            why: Why::Campaigning
        }]
    );
    // Nobody leads yet (the check may run before the campaign's key exists).
    sim.answer(&sent[1], 500, NO_LEADER_BODY);
    assert!(!sim.core.role().is_leader());
    sim.at(9);
    sim.answer(&sent[0], 200, &campaign_won(0x1234, 42, 42));
    assert_eq!(
        sim.roles(),
        vec![Role::Leader {
            fencing: Fencing(42)
        }]
    );
    let status = sim.core.status(sim.now);
    assert_eq!(status.fencing, Some(Fencing(42)));
    assert_eq!(status.leader.as_ref().map(NodeId::as_str), Some("bridge-1"));
    assert_eq!(status.transitions, 1);
    assert_eq!(status.recent.len(), 2, "the start and the election");
    assert_eq!(
        status.last_transition().unwrap().why(),
        "won the election (fencing revision 42)"
    );
    let lease = status.lease.clone().unwrap();
    assert_eq!(lease.id.to_string(), "1234");
    assert_eq!(lease.ttl, Duration::from_secs(2));
    assert_eq!(lease.ttl_left, ms(1991), "asked for at 0 ms, seen at 9 ms");
    assert_eq!(lease.renew_latency, Some(ms(4)));
    // The deadline: grant start (0 ms) + 2 s − (300 ms + 100 ms).
    assert_eq!(sim.core.leader_until(), Some(sim.t0 + ms(1600)));
    assert_eq!(status.fence_in(), Some(ms(1591)));
    // The first renewal: a third of the trusted 1.6 s after the grant's start.
    assert_eq!(sim.core.poll_timeout(), Some(sim.t0 + ms(533)));
}

#[test]
fn keepalives_move_the_deadline_and_failures_fence_exactly_at_it() {
    let mut sim = Sim::new(config(&[A, B]));
    sim.leader(7, 10, 0);
    sim.tick(533);
    let sent = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    assert_eq!(body(&sent[0]), r#"{"ID":"7"}"#);
    sim.at(545);
    sim.answer(&sent[0], 200, &keepalive_ok(7, 2));
    sim.answer(&sent[1], 200, &leader_is(7, 10, "bridge-1", 11));
    assert!(sim.core.role().is_leader());
    // Renewed from the keepalive's start: 533 + 1600.
    assert_eq!(sim.core.leader_until(), Some(sim.t0 + ms(2133)));
    assert_eq!(sim.core.poll_timeout(), Some(sim.t0 + ms(1066)));
    assert_eq!(
        sim.core.status(sim.now).lease.unwrap().renew_latency,
        Some(ms(12))
    );

    // From now on etcd does not answer: each renewal times out after 300 ms, the next goes
    // to the other endpoint 66 ms later.
    sim.tick(1066);
    let mut now = 1066;
    let mut urls = Vec::new();
    let mut troubles = 0;
    loop {
        let sent = sim.requests();
        let Some(keepalive) = sent.iter().find(|r| r.kind == RequestKind::KeepAlive) else {
            break;
        };
        urls.push(keepalive.url.clone());
        now += 300;
        if now >= 2133 {
            break;
        }
        sim.at(now);
        for r in &sent {
            sim.fail(r, Failure::Timeout);
        }
        troubles += sim
            .events()
            .iter()
            .filter(|e| matches!(e, Event::EtcdTrouble { .. }))
            .count();
        assert!(
            sim.core.role().is_leader(),
            "still before the deadline at {now} ms"
        );
        let next = sim.core.poll_timeout().unwrap();
        assert_eq!(sim.elapsed(next), (u128::from(now) + 66).min(2133));
        if sim.elapsed(next) == 2133 {
            break;
        }
        now += 66;
        sim.tick(now);
    }
    assert_eq!(troubles, 1, "reported once per episode");
    assert_eq!(urls[0], format!("{A}/v3/lease/keepalive"));
    assert_eq!(urls[1], format!("{B}/v3/lease/keepalive"), "failed over");
    assert!(urls.len() >= 3, "retried: {urls:?}");
    // One millisecond before the deadline it still leads; at the deadline it does not,
    // whether or not the timer has been handled.
    assert!(sim.core.fencing(sim.t0 + ms(2132)).is_some());
    assert!(sim.core.fencing(sim.t0 + ms(2133)).is_none());
    assert_eq!(sim.core.poll_timeout(), Some(sim.t0 + ms(2133)));
    sim.tick(2140);
    let roles = sim.roles();
    let Some(Role::Standby {
        why: Why::LeaseNotRenewed { after, message },
        ..
    }) = roles.first()
    else {
        panic!("{roles:?}");
    };
    assert_eq!(*after, ms(1600));
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("no answer in time"))
    );
    let status = sim.core.status(sim.now);
    assert_eq!(status.transitions, 2);
    assert_eq!(
        status.last_transition().unwrap().at,
        sim.t0 + ms(2133),
        "the fence is dated at the deadline, not when it was noticed"
    );
    assert!(status.last_transition().unwrap().why().starts_with(
        "fenced: the lease was not renewed within 1.6s of its last renewal (http://127.0.0.1:"
    ));
    assert_eq!(status.leader, None);
    // A new lease is asked for at once; the old one is revoked once etcd answers again.
    let grant = sim
        .requests()
        .into_iter()
        .find(|r| r.kind == RequestKind::Grant)
        .expect("a new grant");
    sim.at(2150);
    sim.answer(&grant, 200, &grant_ok(8, 2));
    let sent = sim.expect(&[
        RequestKind::Revoke,
        RequestKind::Campaign,
        RequestKind::Leader,
    ]);
    assert_eq!(body(&sent[0]), r#"{"ID":"7"}"#);
    assert!(
        sim.events()
            .iter()
            .any(|e| matches!(e, Event::EtcdRecovered { .. }))
    );
}

#[test]
fn a_renewal_answered_after_the_deadline_does_not_revive_the_leader() {
    let mut sim = Sim::new(config(&[A]));
    sim.leader(7, 10, 0);
    sim.tick(533);
    let sent = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    // Answered only after the deadline (0 + 1600).
    sim.at(1700);
    sim.answer(&sent[0], 200, &keepalive_ok(7, 2));
    assert!(!sim.core.role().is_leader());
    assert!(sim.core.fencing(sim.now).is_none());
    let roles = sim.roles();
    assert!(matches!(
        roles.as_slice(),
        [
            Role::Standby {
                why: Why::LeaseNotRenewed { .. },
                ..
            },
            ..
        ]
    ));
    assert_eq!(
        sim.core.status(sim.now).last_transition().unwrap().at,
        sim.t0 + ms(1600)
    );
}

#[test]
fn a_campaign_won_after_the_deadline_is_not_leadership() {
    let mut sim = Sim::new(config(&[A]));
    let campaign = sim.granted(5, 0);
    // Renewals time out until the lease's trusted time is over.
    let mut now = 533;
    sim.tick(now);
    while now < 1600 {
        let sent = sim.requests();
        now += 300;
        sim.at(now.min(1599));
        for r in sent.iter().filter(|r| r.kind != RequestKind::Campaign) {
            sim.fail(r, Failure::Network("connection refused".into()));
        }
        now += 66;
        sim.tick(now.min(1599));
    }
    sim.tick(1600);
    assert_eq!(
        sim.cancels(),
        vec![campaign.id],
        "the campaign is abandoned"
    );
    // etcd answers the campaign anyway: the node does not lead on it.
    sim.at(1610);
    sim.answer(&campaign, 200, &campaign_won(5, 3, 3));
    assert!(!sim.core.role().is_leader());
    assert!(
        sim.roles().iter().all(|r| !r.is_leader()),
        "never reported leader"
    );
}

#[test]
fn a_leader_check_naming_another_node_ends_leadership() {
    let mut sim = Sim::new(config(&[A]));
    sim.leader(7, 10, 0);
    sim.tick(533);
    let sent = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    sim.at(540);
    sim.answer(&sent[0], 200, &keepalive_ok(7, 2));
    sim.answer(&sent[1], 200, &leader_is(9, 12, "bridge-2", 13));
    let roles = sim.roles();
    let Some(Role::Standby {
        leader: Some(leader),
        why: Why::LeadershipLost { detail },
    }) = roles.first()
    else {
        panic!("{roles:?}");
    };
    assert_eq!(leader.as_str(), "bridge-2");
    assert!(
        detail.contains("etcd names `bridge-2` as the leader"),
        "{detail}"
    );
    // etcd answers: the lease is revoked at once and a new one asked for.
    let sent = sim.expect(&[RequestKind::Revoke, RequestKind::Grant]);
    assert_eq!(body(&sent[0]), r#"{"ID":"7"}"#);
}

#[test]
fn a_leader_check_asked_before_the_term_began_is_ignored() {
    let mut sim = Sim::new(config(&[A]));
    let grant = sim.one(RequestKind::Grant);
    sim.answer(&grant, 200, &grant_ok(7, 2));
    let sent = sim.expect(&[RequestKind::Campaign, RequestKind::Leader]);
    sim.at(5);
    sim.answer(&sent[0], 200, &campaign_won(7, 10, 10));
    assert!(sim.core.role().is_leader());
    // The check sent with the campaign comes back late, from before the key existed.
    sim.answer(&sent[1], 500, NO_LEADER_BODY);
    assert!(sim.core.role().is_leader());
    // A check sent during the term with an older store revision is stale too.
    sim.tick(533);
    let sent = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    sim.answer(&sent[1], 200, &leader_is(3, 2, "bridge-0", 9));
    assert!(sim.core.role().is_leader());
    // A current one that says nobody leads means the key is gone.
    sim.answer(&sent[0], 200, &keepalive_ok(7, 2));
    sim.tick(1066);
    let sent = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    sim.answer(&sent[1], 500, NO_LEADER_BODY);
    assert!(matches!(
        sim.core.role(),
        Role::Standby {
            why: Why::LeadershipLost { .. },
            ..
        }
    ));
}

#[test]
fn a_keepalive_without_ttl_means_the_lease_is_gone() {
    let mut sim = Sim::new(config(&[A]));
    sim.leader(7, 10, 0);
    sim.tick(533);
    let sent = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    sim.answer(
        &sent[0],
        200,
        r#"{"result":{"header":{"revision":"20"},"ID":"7"}}"#,
    );
    assert_eq!(
        sim.roles(),
        vec![Role::Standby {
            leader: None,
            why: Why::LeaseLost
        }]
    );
    sim.expect(&[RequestKind::Revoke, RequestKind::Grant]);
}

#[test]
fn a_standby_names_the_leader_and_leads_when_its_campaign_is_answered() {
    let mut sim = Sim::new(config(&[A]));
    let grant = sim.one(RequestKind::Grant);
    sim.answer(&grant, 200, &grant_ok(8, 2));
    let sent = sim.expect(&[RequestKind::Campaign, RequestKind::Leader]);
    sim.answer(&sent[1], 200, &leader_is(7, 10, "bridge-2", 11));
    let standby = Role::Standby {
        leader: Some(NodeId::new("bridge-2").unwrap()),
        why: Why::Campaigning,
    };
    assert_eq!(sim.core.role(), &standby);
    assert_eq!(
        standby.to_string(),
        "standby (leader bridge-2): campaigning: waiting for the election"
    );
    // The keepalives go on while the campaign waits.
    sim.tick(533);
    let renew = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    sim.answer(&renew[0], 200, &keepalive_ok(8, 2));
    sim.answer(&renew[1], 200, &leader_is(7, 10, "bridge-2", 12));
    assert_eq!(sim.core.role(), &standby);
    // The leader resigned: the campaign returns.
    sim.at(700);
    sim.answer(&sent[0], 200, &campaign_won(8, 13, 14));
    assert_eq!(
        sim.core.role(),
        &Role::Leader {
            fencing: Fencing(13)
        }
    );
    assert_eq!(
        sim.core.status(sim.now).leader.as_ref().map(NodeId::as_str),
        Some("bridge-1")
    );
}

#[test]
fn a_standby_whose_campaign_hangs_leads_when_the_leader_check_finds_its_key() {
    let mut sim = Sim::new(config(&[A, B]));
    let campaign = sim.granted(8, 0);
    sim.tick(533);
    let renew = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    sim.answer(&renew[0], 200, &keepalive_ok(8, 2));
    sim.answer(&renew[1], 200, &leader_is(8, 13, "bridge-1", 14));
    assert_eq!(
        sim.core.role(),
        &Role::Leader {
            fencing: Fencing(13)
        }
    );
    assert!(
        sim.cancels().is_empty(),
        "the campaign is left alone: cancelling it would make etcd delete the key"
    );
    // Its late answer changes nothing.
    sim.answer(&campaign, 200, &campaign_won(8, 13, 20));
    assert_eq!(
        sim.core.role(),
        &Role::Leader {
            fencing: Fencing(13)
        }
    );
}

#[test]
fn no_leader_at_all_long_after_the_campaign_began_means_its_key_was_deleted() {
    let mut sim = Sim::new(config(&[A]));
    let campaign = sim.granted(8, 0);
    sim.tick(533);
    let renew = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    sim.answer(&renew[0], 200, &keepalive_ok(8, 2));
    sim.answer(&renew[1], 500, NO_LEADER_BODY);
    assert!(matches!(
        sim.core.role(),
        Role::Standby {
            why: Why::LeadershipLost { .. },
            ..
        }
    ));
    assert_eq!(sim.cancels(), vec![campaign.id]);
    sim.expect(&[RequestKind::Revoke, RequestKind::Grant]);
}

#[test]
fn a_failed_campaign_gives_the_lease_up_and_backs_off() {
    let mut sim = Sim::new(config(&[A, B]));
    let campaign = sim.granted(8, 0);
    sim.at(100);
    sim.fail(&campaign, Failure::Network("connection reset".into()));
    assert!(matches!(
        sim.core.role(),
        Role::Standby {
            why: Why::EtcdUnreachable { .. },
            ..
        }
    ));
    assert!(sim.requests().is_empty(), "waits for the back-off");
    let retry = sim.next_timeout();
    let delay = sim.elapsed(retry) - 100;
    assert!((400..=600).contains(&delay), "{delay}");
    let grant = sim.one(RequestKind::Grant);
    assert!(grant.url.starts_with(B), "the next endpoint: {}", grant.url);
    sim.answer(&grant, 200, &grant_ok(9, 2));
    // etcd answers again: the lease of the failed campaign is revoked.
    let sent = sim.expect(&[
        RequestKind::Revoke,
        RequestKind::Campaign,
        RequestKind::Leader,
    ]);
    assert_eq!(body(&sent[0]), r#"{"ID":"8"}"#);
}

#[test]
fn without_etcd_a_node_is_standby_says_why_and_backs_off() {
    let mut sim = Sim::new(config(&[A]));
    let mut delays = Vec::new();
    for _ in 0..6 {
        let grant = sim.one(RequestKind::Grant);
        sim.fail(&grant, Failure::Network("connection refused".into()));
        let before = sim.now;
        let next = sim.next_timeout();
        delays.push(next.duration_since(before).as_millis() as u64);
    }
    let roles = sim.roles();
    assert_eq!(
        roles.len(),
        1,
        "one role change, not one per attempt: {roles:?}"
    );
    let Role::Standby {
        why: Why::EtcdUnreachable { message },
        leader: None,
    } = &roles[0]
    else {
        panic!("{roles:?}");
    };
    assert_eq!(message, "http://127.0.0.1:2379: connection refused");
    assert_eq!(
        roles[0].to_string(),
        "standby (no leader): etcd is unreachable: http://127.0.0.1:2379: connection refused"
    );
    // 500 ms doubling to 5 s, ±20 %.
    for (delay, base) in delays.iter().zip([500, 1000, 2000, 4000, 5000, 5000]) {
        assert!(
            (base * 8 / 10..=base * 12 / 10).contains(delay),
            "{delays:?}"
        );
    }
    let status = sim.core.status(sim.now);
    assert_eq!(status.transitions, 0);
    assert_eq!(
        status.etcd_trouble.as_deref(),
        Some("http://127.0.0.1:2379: connection refused")
    );
    // etcd comes back.
    let grant = sim.one(RequestKind::Grant);
    sim.answer(&grant, 200, &grant_ok(3, 2));
    assert!(
        sim.events()
            .iter()
            .any(|e| matches!(e, Event::EtcdRecovered { .. }))
    );
    assert_eq!(sim.core.status(sim.now).etcd_trouble, None);
}

#[test]
fn shutdown_ends_leadership_at_once_then_resigns_and_revokes() {
    let mut sim = Sim::new(config(&[A]));
    sim.leader(7, 10, 0);
    sim.at(100);
    sim.core.shutdown(sim.now);
    assert!(sim.core.fencing(sim.now).is_none());
    assert_eq!(
        sim.roles(),
        vec![Role::Standby {
            leader: None,
            why: Why::ShuttingDown
        }]
    );
    let sent = sim.expect(&[RequestKind::Resign, RequestKind::Revoke]);
    assert_eq!(
        body(&sent[0]),
        format!(
            r#"{{"leader":{{"name":"{}","key":"{}","rev":"10","lease":"7"}}}}"#,
            wire::b64(ELECTION.as_bytes()),
            wire::b64(key(7).as_bytes())
        )
    );
    assert_eq!(body(&sent[1]), r#"{"ID":"7"}"#);
    assert!(!sim.core.is_finished());
    sim.answer(&sent[0], 200, r#"{"header":{"revision":"11"}}"#);
    assert!(!sim.core.is_finished());
    sim.answer(&sent[1], 200, r#"{"header":{"revision":"11"}}"#);
    assert!(sim.core.is_finished());
    assert_eq!(sim.core.poll_timeout(), None);
}

#[test]
fn a_standby_shutting_down_cancels_its_campaign_and_gives_up_after_two_timeouts() {
    let mut sim = Sim::new(config(&[A]));
    let campaign = sim.granted(8, 0);
    sim.at(50);
    sim.core.shutdown(sim.now);
    assert_eq!(sim.cancels(), vec![campaign.id]);
    sim.one(RequestKind::Revoke);
    // etcd does not answer: finished after 2 × 300 ms + 100 ms.
    assert_eq!(sim.core.poll_timeout(), Some(sim.t0 + ms(750)));
    sim.tick(749);
    assert!(!sim.core.is_finished());
    sim.tick(750);
    assert!(sim.core.is_finished());
}

#[test]
fn credentials_come_first_and_an_expired_token_is_renewed() {
    let mut c = config(&[A]);
    c.credentials = Some(Credentials {
        username: "bridge".into(),
        password: Secret::new("s3cr3t"),
    });
    let mut sim = Sim::new(c);
    let auth = sim.one(RequestKind::Authenticate);
    assert_eq!(body(&auth), r#"{"name":"bridge","password":"s3cr3t"}"#);
    assert_eq!(auth.token, None);
    let debug = format!("{auth:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(!format!("{:?}", sim.core).contains("s3cr3t"));
    sim.answer(&auth, 200, r#"{"header":{},"token":"tok.1"}"#);
    let grant = sim.one(RequestKind::Grant);
    assert_eq!(grant.token.as_deref(), Some("tok.1"));
    assert!(!format!("{grant:?}").contains("tok.1"));
    sim.answer(&grant, 200, &grant_ok(7, 2));
    let sent = sim.expect(&[RequestKind::Campaign, RequestKind::Leader]);
    assert!(sent.iter().all(|r| r.token.as_deref() == Some("tok.1")));
    sim.answer(&sent[1], 500, NO_LEADER_BODY);
    sim.answer(&sent[0], 200, &campaign_won(7, 10, 10));
    sim.tick(533);
    let renew = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    // The token expired.
    sim.answer(
        &renew[1],
        401,
        r#"{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}"#,
    );
    sim.answer(&renew[0], 200, &keepalive_ok(7, 2));
    let auth = sim.one(RequestKind::Authenticate);
    assert!(sim.core.role().is_leader(), "a token is not leadership");
    sim.answer(&auth, 200, r#"{"token":"tok.2"}"#);
    assert!(sim.requests().is_empty());
    sim.tick(1066);
    let renew = sim.expect(&[RequestKind::KeepAlive, RequestKind::Leader]);
    assert!(renew.iter().all(|r| r.token.as_deref() == Some("tok.2")));
}

#[test]
fn refused_credentials_are_said_and_retried() {
    let mut c = config(&[A]);
    c.credentials = Some(Credentials {
        username: "bridge".into(),
        password: Secret::new("wrong"),
    });
    let mut sim = Sim::new(c);
    let auth = sim.one(RequestKind::Authenticate);
    sim.answer(
        &auth,
        400,
        r#"{"error":"etcdserver: authentication failed, invalid user ID or password","code":3}"#,
    );
    let roles = sim.roles();
    let [
        Role::Standby {
            why: Why::AuthenticationFailed { message },
            ..
        },
    ] = roles.as_slice()
    else {
        panic!("{roles:?}");
    };
    assert!(message.contains("invalid user ID or password"), "{message}");
    assert!(!message.contains("wrong"));
    sim.next_timeout();
    sim.one(RequestKind::Authenticate);
}

/// Random answers, failures and delays, then a shutdown: the core never claims leadership
/// past its local deadline, its fencing tokens never go down, and it never panics.
#[derive(Clone, Debug)]
enum Step {
    Ok,
    Fail,
    Refuse,
    Wait(u64),
    LeaderOther,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Ok),
        2 => Just(Step::Fail),
        1 => Just(Step::Refuse),
        3 => (1u64..900).prop_map(Step::Wait),
        1 => Just(Step::LeaderOther),
    ]
}

proptest! {
    #[test]
    fn leadership_never_outlives_the_deadline(steps in proptest::collection::vec(step(), 1..120)) {
        let mut sim = Sim::new(config(&[A, B]));
        let mut pending: VecDeque<Request> = VecDeque::new();
        let mut clock = 0u64;
        let mut last_fencing = 0u64;
        let mut next_lease = 100i64;
        let mut rev = 10i64;
        for step in steps {
            pending.extend(sim.requests());
            let _ = sim.cancels();
            match step {
                Step::Wait(n) => {
                    clock += n;
                    sim.tick(clock);
                }
                other => {
                    let Some(r) = pending.pop_front() else { continue };
                    clock += 3;
                    sim.at(clock);
                    let lease = sim.core.lease.as_ref().map_or(next_lease, |l| l.id.0);
                    match (other, r.kind) {
                        (Step::Fail, _) => sim.fail(&r, Failure::Timeout),
                        (Step::Refuse, _) => sim.answer(&r, 503, r#"{"error":"etcdserver: no leader","code":14}"#),
                        (Step::LeaderOther, _) => sim.answer(&r, 200, &leader_is(1, 2, "bridge-9", rev)),
                        (_, RequestKind::Grant) => {
                            next_lease += 1;
                            sim.answer(&r, 200, &grant_ok(next_lease, 2));
                        }
                        (_, RequestKind::KeepAlive) => sim.answer(&r, 200, &keepalive_ok(lease, 2)),
                        (_, RequestKind::Campaign) => {
                            rev += 5;
                            sim.answer(&r, 200, &campaign_won(lease, rev, rev));
                        }
                        (_, RequestKind::Leader) => sim.answer(&r, 200, &leader_is(lease, rev, "bridge-1", rev)),
                        (_, _) => sim.answer(&r, 200, "{}"),
                    }
                }
            }
            let now = sim.now;
            if let Role::Leader { fencing } = sim.core.role() {
                prop_assert!(sim.core.fencing(now).is_some(), "leader past its deadline at {clock} ms");
                prop_assert!(fencing.0 >= last_fencing);
                last_fencing = fencing.0;
            }
            let status = sim.core.status(now);
            prop_assert_eq!(status.fencing.is_some(), sim.core.fencing(now).is_some());
        }
        clock += 1;
        sim.at(clock);
        let now = sim.now;
        sim.core.shutdown(now);
        prop_assert!(!sim.core.role().is_leader());
        prop_assert!(sim.core.fencing(now).is_none());
        for r in sim.requests() {
            sim.answer(&r, 200, "{}");
        }
        prop_assert!(sim.core.is_finished() || sim.core.poll_timeout().is_some());
    }
}
