//! The core against a small in-test model of Graph and Entra, on simulated time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use presence_model::{
    Activities, ActivityText, AggregatedStateId, Availability, EntraId, Lcid, Platform, Presence,
    Publication, UserAddress, UserId,
};
use presence_transport::{TransportError, TransportEvent};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::mapping::{Mapping, Target, parse_target};

const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const TOKEN_URL: &str = "https://login.test/contoso/oauth2/v2.0/token";
const GRAPH: &str = "https://graph.test/v1.0";

// --- a model of Graph ------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
struct Person {
    sessions: BTreeMap<String, (String, String, Instant, Instant)>,
    preferred: Option<(String, String, Option<Instant>)>,
    own: (String, String),
    message: Option<String>,
    seq: u64,
}

#[derive(Clone, Debug)]
enum Fault {
    Status(u16, Option<u64>),
    Timeout { applied: bool },
}

#[derive(Clone, Debug)]
struct Logged {
    at: Instant,
    kind: RequestKind,
    op: String,
    user: Option<String>,
    body: Value,
    status: u16,
}

enum Reply {
    Answer(HttpResponse),
    Timeout,
}

struct FakeGraph {
    tokens: HashMap<String, Instant>,
    issued: u64,
    lifetime: u64,
    refuse_until: Option<Instant>,
    refusal: &'static str,
    down_until: Option<Instant>,
    upns: HashMap<String, String>,
    people: HashMap<String, Person>,
    faults: VecDeque<(RequestKind, Fault)>,
    log: Vec<Logged>,
    window: VecDeque<Instant>,
    limit: usize,
    budget_refusals: usize,
    seq: u64,
}

fn guid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

impl FakeGraph {
    fn new() -> Self {
        FakeGraph {
            tokens: HashMap::new(),
            issued: 0,
            lifetime: 3599,
            refuse_until: None,
            refusal: "AADSTS7000215: Invalid client secret provided.",
            down_until: None,
            upns: HashMap::new(),
            people: HashMap::new(),
            faults: VecDeque::new(),
            log: Vec::new(),
            window: VecDeque::new(),
            limit: 1500,
            budget_refusals: 0,
            seq: 0,
        }
    }

    fn add_upn(&mut self, upn: &str, id: &str) {
        self.upns.insert(upn.to_owned(), id.to_owned());
    }

    fn revoke(&mut self) {
        self.tokens.clear();
    }

    fn person(&mut self, id: &str) -> &mut Person {
        self.people.entry(id.to_owned()).or_insert_with(|| Person {
            own: ("Offline".into(), "Offline".into()),
            ..Person::default()
        })
    }

    /// What Graph shows from the bridge: the preferred presence, else the best session.
    fn bridge_shows(&self, id: &str, now: Instant) -> Option<(String, String)> {
        let p = self.people.get(id)?;
        if let Some((a, b, until)) = &p.preferred
            && until.is_none_or(|t| t > now)
        {
            return Some((a.clone(), b.clone()));
        }
        let rank = |a: &str| match a {
            "DoNotDisturb" => 4,
            "Busy" => 3,
            "Available" => 2,
            _ => 1,
        };
        p.sessions
            .values()
            .filter(|(_, _, _, until)| *until > now)
            .map(|(a, b, set, _)| {
                if a == "Available" && b == "Available" {
                    let age = now - *set;
                    if age >= Duration::from_secs(600) {
                        ("Away".to_owned(), "Away".to_owned())
                    } else if age >= Duration::from_secs(300) {
                        ("Available".to_owned(), "AvailableInactive".to_owned())
                    } else {
                        (a.clone(), b.clone())
                    }
                } else {
                    (a.clone(), b.clone())
                }
            })
            .max_by_key(|(a, _)| rank(a))
    }

    fn shows(&self, id: &str, now: Instant) -> (String, String) {
        self.bridge_shows(id, now)
            .or_else(|| self.people.get(id).map(|p| p.own.clone()))
            .unwrap_or(("Offline".into(), "Offline".into()))
    }

    fn error(status: u16, code: &str) -> HttpResponse {
        HttpResponse::new(
            status,
            json!({"error":{"code":code,"message":"m","innerError":{"request-id":"r","date":"d"}}})
                .to_string(),
        )
    }

    fn handle(&mut self, req: &HttpRequest, now: Instant) -> Reply {
        let op = req.operation().to_owned();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let user = req
            .url
            .strip_prefix(&format!("{GRAPH}/users/"))
            .map(|rest| rest.split(['/', '?']).next().unwrap_or("").to_owned());
        let mut log = Logged {
            at: now,
            kind: req.kind,
            op: op.clone(),
            user: user.clone(),
            body: body.clone(),
            status: 0,
        };
        let reply = self.answer(req, &op, &body, user.as_deref(), now);
        log.status = match &reply {
            Reply::Answer(r) => r.status,
            Reply::Timeout => 0,
        };
        self.log.push(log);
        reply
    }

    fn answer(
        &mut self,
        req: &HttpRequest,
        op: &str,
        body: &Value,
        user: Option<&str>,
        now: Instant,
    ) -> Reply {
        if req.kind == RequestKind::Token {
            assert!(String::from_utf8_lossy(&req.body).contains("grant_type=client_credentials"));
            if self.down_until.is_some_and(|t| t > now) {
                return Reply::Answer(HttpResponse::new(503, "{}"));
            }
            if self.refuse_until.is_some_and(|t| t > now) {
                return Reply::Answer(HttpResponse::new(
                    401,
                    json!({"error":"invalid_client","error_description":format!("{} Trace ID: {} Correlation ID: x Timestamp: now", self.refusal, self.issued),"error_codes":[7000215]}).to_string(),
                ));
            }
            self.issued += 1;
            let token = format!("tok-{}", self.issued);
            self.tokens
                .insert(token.clone(), now + Duration::from_secs(self.lifetime));
            return Reply::Answer(HttpResponse::new(
                200,
                json!({"token_type":"Bearer","expires_in":self.lifetime.to_string(),"access_token":token}).to_string(),
            ));
        }
        let auth = req
            .headers
            .iter()
            .find(|(n, _)| *n == "Authorization")
            .map(|(_, v)| v.trim_start_matches("Bearer ").to_owned())
            .unwrap_or_default();
        if self.tokens.get(&auth).is_none_or(|t| *t <= now) {
            return Reply::Answer(Self::error(401, "InvalidAuthenticationToken"));
        }
        if let Some(i) = self.faults.iter().position(|(k, _)| *k == req.kind) {
            let (_, fault) = self
                .faults
                .remove(i)
                .unwrap_or((req.kind, Fault::Timeout { applied: false }));
            match fault {
                Fault::Status(status, retry_after) => {
                    let mut r = Self::error(status, "Injected");
                    r.retry_after = retry_after.map(Duration::from_secs);
                    return Reply::Answer(r);
                }
                Fault::Timeout { applied } => {
                    if applied {
                        let _ = self.apply(req, op, body, user, now);
                    }
                    return Reply::Timeout;
                }
            }
        }
        if req.kind == RequestKind::Read || req.kind == RequestKind::Write {
            while self
                .window
                .front()
                .is_some_and(|t| now - *t >= Duration::from_secs(30))
            {
                self.window.pop_front();
            }
            if self.window.len() >= self.limit {
                self.budget_refusals += 1;
                let mut r = Self::error(429, "TooManyRequests");
                r.retry_after = Some(Duration::from_secs(5));
                return Reply::Answer(r);
            }
            self.window.push_back(now);
        }
        Reply::Answer(self.apply(req, op, body, user, now))
    }

    fn apply(
        &mut self,
        req: &HttpRequest,
        op: &str,
        body: &Value,
        user: Option<&str>,
        now: Instant,
    ) -> HttpResponse {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        match req.kind {
            RequestKind::User => {
                let upn = user.unwrap_or("");
                match self.upns.get(upn) {
                    Some(id) => HttpResponse::new(200, json!({ "id": id }).to_string()),
                    None => Self::error(404, "Request_ResourceNotFound"),
                }
            }
            RequestKind::Read => {
                let ids: Vec<String> = body["ids"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                assert!(ids.len() <= 650, "{} ids in one read", ids.len());
                let value: Vec<Value> = ids
                    .iter()
                    .map(|id| {
                        let (a, b) = self.shows(id, now);
                        let p = self.person(id);
                        json!({"id": id, "availability": a, "activity": b,
                            "statusMessage": p.message.as_ref().map(|m| json!({"message":{"content":m,"contentType":"text"}})),
                            "sequenceNumber": format!("{:020}", p.seq)})
                    })
                    .collect();
                HttpResponse::new(200, json!({ "value": value }).to_string())
            }
            RequestKind::Write => {
                let id = user.unwrap_or("").to_owned();
                self.seq += 1;
                let seq = self.seq;
                let p = self.person(&id);
                p.seq = seq;
                let until = |d: &str| -> Option<Instant> {
                    let d = d.strip_prefix("PT")?;
                    let secs = if let Some(h) = d.strip_suffix('H') {
                        h.parse::<u64>().ok()? * 3600
                    } else if let Some(m) = d.strip_suffix('M') {
                        m.parse::<u64>().ok()? * 60
                    } else {
                        d.strip_suffix('S')?.parse().ok()?
                    };
                    Some(now + Duration::from_secs(secs))
                };
                match op {
                    "setPresence" => {
                        let Some(end) = until(&s(body, "expirationDuration")) else {
                            return Self::error(400, "InvalidArgument");
                        };
                        p.sessions.insert(
                            s(body, "sessionId"),
                            (s(body, "availability"), s(body, "activity"), now, end),
                        );
                        HttpResponse::new(200, "")
                    }
                    "clearPresence" => {
                        if p.sessions.remove(&s(body, "sessionId")).is_some() {
                            HttpResponse::new(200, "")
                        } else {
                            Self::error(404, "NotFound")
                        }
                    }
                    "setUserPreferredPresence" => {
                        p.preferred = Some((
                            s(body, "availability"),
                            s(body, "activity"),
                            until(&s(body, "expirationDuration")),
                        ));
                        HttpResponse::new(200, "")
                    }
                    "clearUserPreferredPresence" => {
                        p.preferred = None;
                        HttpResponse::new(200, "")
                    }
                    "setStatusMessage" => {
                        let text = body["statusMessage"]["message"]["content"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned();
                        p.message = (!text.is_empty()).then_some(text);
                        HttpResponse::new(200, "")
                    }
                    other => panic!("unexpected write {other}"),
                }
            }
            RequestKind::Token => unreachable!(),
        }
    }

    fn writes(&self) -> impl Iterator<Item = &Logged> {
        self.log.iter().filter(|l| l.kind == RequestKind::Write)
    }

    fn count(&self, op: &str) -> usize {
        self.log.iter().filter(|l| l.op == op).count()
    }
}

// --- the rig: the core, the model, simulated time --------------------------------------

struct Rig {
    core: GraphCore,
    graph: FakeGraph,
    now: Instant,
    t0: Instant,
    latency: Duration,
    timeout: Duration,
    inflight: Vec<(Instant, RequestId, Option<HttpResponse>)>,
    events: VecDeque<Event>,
    sent: Vec<(Instant, HttpRequest)>,
    /// Send requests but answer none (a stalled Graph).
    hold: bool,
}

fn config() -> CoreConfig {
    CoreConfig::new(TOKEN_URL, GRAPH, CLIENT, Secret::new("s3cr3t"))
}

impl Rig {
    fn new(config: CoreConfig) -> Rig {
        Self::with_graph(config, FakeGraph::new())
    }

    fn with_graph(config: CoreConfig, graph: FakeGraph) -> Rig {
        let t0 = Instant::now();
        let mut rig = Rig {
            core: GraphCore::new(config, 7, t0),
            graph,
            now: t0,
            t0,
            latency: Duration::from_millis(20),
            timeout: Duration::from_secs(10),
            inflight: Vec::new(),
            events: VecDeque::new(),
            sent: Vec::new(),
            hold: false,
        };
        rig.io();
        rig
    }

    /// Sends what the core has to send, collects events.
    fn io(&mut self) {
        while let Some(req) = self.core.poll_request() {
            let debug = format!("{req:?}");
            assert!(
                !debug.contains("s3cr3t") && !debug.contains("tok-"),
                "{debug}"
            );
            self.sent.push((self.now, req.clone()));
            if self.hold {
                continue;
            }
            match self.graph.handle(&req, self.now) {
                Reply::Answer(r) => self
                    .inflight
                    .push((self.now + self.latency, req.id, Some(r))),
                Reply::Timeout => self.inflight.push((self.now + self.timeout, req.id, None)),
            }
        }
        while let Some(e) = self.core.poll_event() {
            if let Event::Transport(TransportEvent::Disconnected { reason, .. }) = &e {
                assert!(!reason.contains("s3cr3t"));
            }
            self.events.push_back(e);
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let a = self.core.poll_timeout();
        let b = self.inflight.iter().map(|(t, _, _)| *t).min();
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One step of simulated time up to `limit`; false when nothing happens before it.
    fn step(&mut self, limit: Instant) -> bool {
        self.io();
        let Some(next) = self.next_wake() else {
            self.now = self.now.max(limit);
            return false;
        };
        if next > limit {
            self.now = self.now.max(limit);
            self.core.handle_timeout(self.now);
            self.io();
            return false;
        }
        self.now = self.now.max(next);
        let now = self.now;
        let due: Vec<_> = {
            let (due, rest): (Vec<_>, Vec<_>) =
                self.inflight.drain(..).partition(|(t, _, _)| *t <= now);
            self.inflight = rest;
            due
        };
        for (_, id, reply) in due {
            match reply {
                Some(r) => self.core.handle_response(id, r, now),
                None => self.core.handle_failure(id, Failure::Timeout, now),
            }
            self.io();
        }
        self.core.handle_timeout(now);
        self.io();
        true
    }

    fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        while self.step(limit) {}
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.io();
        self.events.drain(..).collect()
    }

    fn connected(&mut self) -> u32 {
        self.run_for(Duration::from_millis(100));
        let credit = self
            .events
            .iter()
            .find_map(|e| match e {
                Event::Transport(TransportEvent::Connected { credit, .. }) => Some(*credit),
                _ => None,
            })
            .expect("Connected");
        self.events.clear();
        credit
    }

    fn settled(&mut self, id: PublishId) -> Option<Result<(), String>> {
        self.io();
        self.events.iter().find_map(|e| match e {
            Event::Settled { id: i, result, .. } if *i == id => {
                Some(result.as_ref().map(|_| ()).map_err(|e| format!("{e:?}")))
            }
            _ => None,
        })
    }
}

fn entra_user(n: usize) -> UserId {
    UserId::new(
        Platform::teams(),
        UserAddress::EntraId(EntraId::new(&guid(n)).unwrap()),
    )
}

fn upn_user(n: usize) -> UserId {
    UserId::new(
        Platform::teams(),
        UserAddress::Upn(format!("agent{n}@contoso.com").parse().unwrap()),
    )
}

fn publication(availability: u32, text: Option<&str>) -> Publication {
    publication_id("S", availability, text)
}

fn publication_id(id: &str, availability: u32, text: Option<&str>) -> Publication {
    Publication {
        id: AggregatedStateId::new(id).unwrap(),
        presence: Presence {
            availability: Availability::new(availability).unwrap(),
            activities: match text {
                Some(t) => Activities::new(vec![(Lcid::EN_US, ActivityText::new(t))]).unwrap(),
                None => Activities::empty(),
            },
        },
    }
}

fn pair(a: &str, b: &str) -> Option<(String, String)> {
    Some((a.to_owned(), b.to_owned()))
}

// --- tokens ------------------------------------------------------------------------------

#[test]
fn token_is_cached_and_refreshed_early_without_reconnecting() {
    let mut rig = Rig::new(config());
    let credit = rig.connected();
    assert!(credit > 0);
    rig.run_for(Duration::from_secs(3 * 3600));
    // 3599 s tokens refreshed at 80 % (2879 s): 1 + 3 h / 2879 s = 4 token requests.
    assert_eq!(rig.graph.count("token"), 4, "{:?}", rig.graph.log.len());
    let noisy: Vec<_> = rig
        .take_events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::Transport(
                    TransportEvent::Connected { .. } | TransportEvent::Disconnected { .. }
                )
            )
        })
        .collect();
    assert!(noisy.is_empty(), "{noisy:?}");
    assert!(rig.core.status().connected);
}

#[test]
fn a_short_token_is_refreshed_at_half_and_an_expired_one_disconnects() {
    let mut graph = FakeGraph::new();
    graph.lifetime = 600;
    let mut rig = Rig::with_graph(config(), graph);
    rig.connected();
    // 600 s: min(80 % = 480, 600 - 300 = 300) = 300 s.
    rig.run_for(Duration::from_secs(301));
    assert_eq!(rig.graph.count("token"), 2);
    // Entra goes down for longer than the token lives: Disconnected, then Connected again.
    rig.graph.down_until = Some(rig.now + Duration::from_secs(900));
    rig.run_for(Duration::from_secs(1200));
    let events = rig.take_events();
    let dis = events
        .iter()
        .position(|e| matches!(e, Event::Transport(TransportEvent::Disconnected { .. })));
    let con = events
        .iter()
        .position(|e| matches!(e, Event::Transport(TransportEvent::Connected { .. })));
    assert!(dis.is_some() && con.is_some() && dis < con, "{events:?}");
    let troubles = events
        .iter()
        .filter(|e| matches!(e, Event::TokenTrouble { .. }))
        .count();
    assert_eq!(troubles, 1, "one report per distinct message: {events:?}");
}

/// A failed or refused token request says when the token is asked for again: exactly the
/// pause before the next token request, within the configured back-off.
#[test]
fn token_failures_say_when_the_next_request_goes() {
    for refused in [false, true] {
        let mut graph = FakeGraph::new();
        let until = Some(Instant::now() + Duration::from_secs(3600));
        if refused {
            graph.refuse_until = until;
        } else {
            graph.down_until = until;
        }
        let mut rig = Rig::with_graph(config(), graph);
        rig.run_for(Duration::from_secs(60));
        let events = rig.take_events();
        let retry_in = events
            .iter()
            .find_map(|e| match e {
                Event::TokenTrouble { retry_in, .. } if !refused => Some(*retry_in),
                Event::CredentialRefused { retry_in, .. } if refused => Some(*retry_in),
                _ => None,
            })
            .unwrap_or_else(|| panic!("refused {refused}: {events:?}"));
        let tokens: Vec<Instant> = rig
            .sent
            .iter()
            .filter(|(_, r)| r.kind == RequestKind::Token)
            .map(|(at, _)| *at)
            .collect();
        assert!(tokens.len() >= 2, "{tokens:?}");
        // The answer comes `latency` after the request; the next request `retry_in` later.
        assert_eq!(
            tokens[1] - tokens[0] - rig.latency,
            retry_in,
            "refused {refused}"
        );
        // reconnect-initial 5 s, ±20 %.
        assert!(
            (Duration::from_secs(4)..=Duration::from_secs(6)).contains(&retry_in),
            "{retry_in:?}"
        );
    }
}

#[test]
fn a_401_refreshes_the_token_and_resends_the_request_once() {
    let mut rig = Rig::new(config());
    rig.connected();
    // The token works (a first publication), then Graph revokes it.
    rig.core.publish(
        &entra_user(2),
        &publication(3500, None),
        PublishId(2),
        rig.now,
    );
    rig.run_for(Duration::from_secs(1));
    assert_eq!(rig.settled(PublishId(2)), Some(Ok(())));
    rig.take_events();
    rig.graph.revoke();
    rig.core.publish(
        &entra_user(1),
        &publication(6500, None),
        PublishId(1),
        rig.now,
    );
    rig.run_for(Duration::from_secs(1));
    assert_eq!(rig.settled(PublishId(1)), Some(Ok(())));
    let sets: Vec<u16> = rig
        .graph
        .writes()
        .filter(|l| l.op == "setPresence")
        .map(|l| l.status)
        .collect();
    assert_eq!(sets, vec![200, 401, 200], "sent, refused, sent again once");
    assert_eq!(rig.graph.count("token"), 2);
    assert_eq!(
        rig.graph.bridge_shows(&guid(1), rig.now),
        pair("Busy", "InACall")
    );
    // A revoked token that can be renewed is not a lost connection: no Disconnected, no
    // Connected (which would make the engine resync every user), no Subscribed again.
    let events = rig.take_events();
    let noisy: Vec<_> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Transport(
                    TransportEvent::Connected { .. }
                        | TransportEvent::Disconnected { .. }
                        | TransportEvent::Subscribed { .. }
                )
            )
        })
        .collect();
    assert!(noisy.is_empty(), "{noisy:?}");
    assert!(rig.core.status().connected);
}

#[test]
fn a_revoked_token_whose_credential_is_refused_disconnects_then_recovers() {
    let mut rig = Rig::new(config());
    rig.connected();
    rig.graph.revoke();
    rig.graph.refuse_until = Some(rig.now + Duration::from_secs(20));
    rig.core.publish(
        &entra_user(1),
        &publication(6500, None),
        PublishId(1),
        rig.now,
    );
    rig.run_for(Duration::from_secs(60));
    assert_eq!(
        rig.settled(PublishId(1)),
        Some(Err("NotConnected".to_owned())),
        "the engine resyncs it after Connected"
    );
    let events = rig.take_events();
    let dis = events
        .iter()
        .position(|e| matches!(e, Event::Transport(TransportEvent::Disconnected { .. })));
    let con = events.iter().position(
        |e| matches!(e, Event::Transport(TransportEvent::Connected { credit, .. }) if *credit > 0),
    );
    assert!(dis.is_some() && con.is_some() && dis < con, "{events:?}");
}

#[test]
fn a_second_401_fails_the_publication() {
    let mut rig = Rig::new(config());
    rig.connected();
    // Every token is refused by Graph (say, a wrong tenant's token): 401 twice.
    rig.graph.lifetime = 3599;
    rig.core.publish(
        &entra_user(1),
        &publication(6500, None),
        PublishId(1),
        rig.now,
    );
    // Revoke at each token: answer the publish and its resend with 401.
    rig.graph.revoke();
    rig.io();
    rig.graph.revoke();
    rig.step(rig.now + Duration::from_secs(1));
    rig.graph.revoke();
    rig.run_for(Duration::from_secs(60));
    let r = rig.settled(PublishId(1));
    assert!(
        matches!(&r, Some(Err(e)) if e.contains("401")) || r == Some(Ok(())),
        "{r:?}"
    );
    let token_requests = rig.graph.count("token");
    assert!(token_requests <= 4, "no token loop: {token_requests}");
}

#[test]
fn a_refused_credential_is_reported_once_and_retried_with_back_off() {
    let mut graph = FakeGraph::new();
    graph.refuse_until = Some(Instant::now() + Duration::from_secs(3600));
    let mut rig = Rig::with_graph(config(), graph);
    rig.run_for(Duration::from_secs(3600) - Duration::from_millis(200));
    let attempts = rig.graph.count("token");
    // 5 s doubling to 5 min with ±20 % jitter: about 17 attempts in an hour; never a loop.
    assert!(
        (8..=30).contains(&attempts),
        "{attempts} token requests in an hour"
    );
    let gaps: Vec<Duration> = rig
        .graph
        .log
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_secs(4)),
        "{gaps:?}"
    );
    let events = rig.take_events();
    let refused: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::CredentialRefused { description, .. } => Some(description.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert!(
        refused[0].contains("AADSTS7000215") && !refused[0].contains("Trace ID"),
        "{refused:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Transport(TransportEvent::Connected { .. })))
    );
    let status = rig.core.status();
    assert!(!status.connected);
    assert!(
        status
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("AADSTS7000215")),
        "{status:?}"
    );
    // A new description is reported again; then the secret is fixed.
    rig.graph.refusal = "AADSTS7000222: The provided client secret keys are expired.";
    rig.graph.refuse_until = Some(rig.now + Duration::from_secs(400));
    rig.run_for(Duration::from_secs(400));
    rig.graph.refuse_until = None;
    rig.run_for(Duration::from_secs(400));
    let events = rig.take_events();
    let refused = events
        .iter()
        .filter(|e| matches!(e, Event::CredentialRefused { .. }))
        .count();
    assert_eq!(refused, 1, "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::CredentialRecovered { .. }))
            .count(),
        1
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Transport(TransportEvent::Connected { .. })))
    );
    assert!(rig.core.status().connected && rig.core.status().detail.is_none());
}

#[test]
fn a_credential_refused_mid_run_disconnects_once() {
    let mut graph = FakeGraph::new();
    graph.lifetime = 600;
    let mut rig = Rig::with_graph(config(), graph);
    rig.connected();
    rig.graph.refuse_until = Some(rig.now + Duration::from_secs(3600));
    rig.graph.revoke();
    rig.core.subscribe(&[entra_user(1)], rig.now);
    rig.run_for(Duration::from_secs(1800));
    let events = rig.take_events();
    let count = |f: &dyn Fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(count(&|e| matches!(e, Event::CredentialRefused { .. })), 1);
    assert_eq!(
        count(&|e| matches!(e, Event::Transport(TransportEvent::Disconnected { .. }))),
        1
    );
    assert!(rig.graph.count("token") < 20);
}

// --- sessions ------------------------------------------------------------------------------

#[test]
fn a_long_call_is_refreshed_and_never_lapses() {
    let mut rig = Rig::new(config());
    rig.connected();
    rig.core.publish(
        &entra_user(1),
        &publication(6500, Some("On a call")),
        PublishId(1),
        rig.now,
    );
    for _ in 0..(3 * 60) {
        rig.run_for(Duration::from_secs(60));
        assert_eq!(
            rig.graph.bridge_shows(&guid(1), rig.now),
            pair("Busy", "InACall"),
            "after {:?}",
            rig.now - rig.t0
        );
    }
    let sets = rig.graph.count("setPresence");
    // One write, then a refresh every 43..48 minutes (80 % of 1 h, up to 10 % earlier).
    assert!((4..=6).contains(&sets), "{sets}");
    assert_eq!(
        rig.graph.count("setStatusMessage"),
        1,
        "the message is not re-sent"
    );
    assert_eq!(rig.core.stats().throttled, 0);
}

#[test]
fn an_available_session_is_set_again_before_it_decays() {
    let mut rig = Rig::new(config());
    rig.connected();
    rig.core.publish(
        &entra_user(1),
        &publication(3500, None),
        PublishId(1),
        rig.now,
    );
    for _ in 0..(30 * 6) {
        rig.run_for(Duration::from_secs(10));
        assert_eq!(
            rig.graph.bridge_shows(&guid(1), rig.now),
            pair("Available", "Available")
        );
    }
    let times: Vec<Instant> = rig.graph.writes().map(|l| l.at).collect();
    assert!(times.len() >= 8, "{}", times.len());
    assert!(
        times
            .windows(2)
            .all(|w| w[1] - w[0] < Duration::from_secs(300))
    );
}

#[test]
fn offline_clears_the_session_and_the_message_the_bridge_set() {
    let mut rig = Rig::new(config());
    rig.connected();
    let user = entra_user(1);
    rig.core.publish(
        &user,
        &publication(6500, Some("On a call")),
        PublishId(1),
        rig.now,
    );
    rig.run_for(Duration::from_secs(3));
    assert_eq!(
        rig.graph.people[&guid(1)].message.as_deref(),
        Some("On a call")
    );
    rig.core.publish(
        &user,
        &publication(18000, Some("Logged out")),
        PublishId(2),
        rig.now,
    );
    rig.run_for(Duration::from_secs(3));
    assert_eq!(rig.settled(PublishId(2)), Some(Ok(())));
    assert_eq!(rig.graph.bridge_shows(&guid(1), rig.now), None);
    assert_eq!(rig.graph.people[&guid(1)].message, None);
    // Clearing again (nothing there: 404) is fine; availability 0 sends nothing.
    let before = rig.graph.log.len();
    rig.core
        .publish(&user, &publication(18000, None), PublishId(3), rig.now);
    rig.core
        .publish(&entra_user(2), &publication(0, None), PublishId(4), rig.now);
    rig.run_for(Duration::from_secs(1));
    assert_eq!(rig.settled(PublishId(3)), Some(Ok(())));
    assert_eq!(rig.settled(PublishId(4)), Some(Ok(())));
    let ops: Vec<_> = rig.graph.log[before..]
        .iter()
        .map(|l| (l.op.clone(), l.status))
        .collect();
    assert_eq!(ops, vec![("clearPresence".to_owned(), 404)]);
    // No refresh of a cleared session.
    rig.run_for(Duration::from_secs(3600));
    assert_eq!(rig.graph.count("setPresence"), 1);
}

#[test]
fn unpublish_clears_and_is_ok_at_once_for_unknown_users() {
    let mut rig = Rig::new(config());
    rig.connected();
    rig.core.unpublish(&entra_user(9), PublishId(1), rig.now);
    assert_eq!(rig.settled(PublishId(1)), Some(Ok(())));
    let user = entra_user(1);
    rig.core.publish(
        &user,
        &publication(9500, Some("Presenting")),
        PublishId(2),
        rig.now,
    );
    rig.run_for(Duration::from_secs(3));
    assert_eq!(
        rig.graph.bridge_shows(&guid(1), rig.now),
        pair("DoNotDisturb", "Presenting")
    );
    rig.core.unpublish(&user, PublishId(3), rig.now);
    rig.run_for(Duration::from_secs(3));
    assert_eq!(rig.settled(PublishId(3)), Some(Ok(())));
    assert_eq!(rig.graph.bridge_shows(&guid(1), rig.now), None);
    assert_eq!(rig.graph.people[&guid(1)].message, None);
}

#[test]
fn status_messages_are_written_only_when_they_differ() {
    let mut rig = Rig::new(config());
    rig.connected();
    let user = entra_user(1);
    rig.core.publish(
        &user,
        &publication(6500, Some("On a call")),
        PublishId(1),
        rig.now,
    );
    rig.run_for(Duration::from_secs(3));
    rig.core.publish(
        &user,
        &publication(7500, Some("On a call")),
        PublishId(2),
        rig.now,
    );
    rig.run_for(Duration::from_secs(3));
    assert_eq!(rig.graph.count("setStatusMessage"), 1);
    // A state without text clears the bridge's message, but not the user's own.
    rig.core
        .publish(&user, &publication(3500, None), PublishId(3), rig.now);
    rig.run_for(Duration::from_secs(3));
    assert_eq!(rig.graph.people[&guid(1)].message, None);
    rig.graph.person(&guid(1)).message = Some("Lunch".into());
    rig.core.subscribe(std::slice::from_ref(&user), rig.now);
    rig.run_for(Duration::from_secs(3));
    rig.core
        .publish(&user, &publication(15500, None), PublishId(4), rig.now);
    rig.run_for(Duration::from_secs(3));
    assert_eq!(rig.graph.people[&guid(1)].message.as_deref(), Some("Lunch"));
    assert_eq!(rig.graph.count("setStatusMessage"), 2);
}

#[test]
fn after_a_restart_messages_are_learnt_in_batches_not_rewritten() {
    let mut graph = FakeGraph::new();
    for n in 0..1000 {
        graph.person(&guid(n)).message = Some("On a call".into());
    }
    let mut rig = Rig::with_graph(config(), graph);
    let mut credit = rig.connected();
    let mut next = 0;
    let mut id = 0;
    while next < 1000 {
        while credit > 0 && next < 1000 {
            id += 1;
            rig.core.publish(
                &entra_user(next),
                &publication(6500, Some("On a call")),
                PublishId(id),
                rig.now,
            );
            next += 1;
            credit -= 1;
        }
        rig.step(rig.now + Duration::from_secs(1));
        for e in rig.take_events() {
            if let Event::Transport(TransportEvent::Credit { credit: c, .. }) = e {
                credit += c;
            }
        }
    }
    rig.run_for(Duration::from_secs(5));
    assert_eq!(rig.graph.count("setPresence"), 1000);
    assert_eq!(rig.graph.count("setStatusMessage"), 0);
    let reads = rig.graph.count("getPresencesByUserId");
    // 1000 publications at 45/s take 22 s; messages are gathered for 2 s per read.
    assert!(
        (2..=20).contains(&reads),
        "{reads} batched reads for 1000 users"
    );
}

#[test]
fn preferred_presence_is_set_and_cleared_when_a_session_state_follows() {
    let mut c = config();
    c.preferred_presence = true;
    c.mapping = Mapping::new(true, Some(Lcid::EN_US));
    let mut rig = Rig::new(c);
    rig.connected();
    let user = entra_user(1);
    rig.core
        .publish(&user, &publication(12500, None), PublishId(1), rig.now);
    rig.run_for(Duration::from_secs(1));
    assert_eq!(
        rig.graph.bridge_shows(&guid(1), rig.now),
        pair("BeRightBack", "BeRightBack")
    );
    rig.core
        .publish(&user, &publication(3500, None), PublishId(2), rig.now);
    rig.run_for(Duration::from_secs(1));
    assert_eq!(
        rig.graph.bridge_shows(&guid(1), rig.now),
        pair("Available", "Available")
    );
    assert!(rig.graph.people[&guid(1)].preferred.is_none());
    // Known cleared now: the next session state does not clear it again.
    let before = rig.graph.count("clearUserPreferredPresence");
    rig.core
        .publish(&user, &publication(15500, None), PublishId(3), rig.now);
    rig.run_for(Duration::from_secs(1));
    assert_eq!(rig.graph.count("clearUserPreferredPresence"), before);
    // Preferred presence lives as long as a session and is refreshed like one.
    rig.core
        .publish(&user, &publication(6500, None), PublishId(4), rig.now);
    rig.run_for(Duration::from_secs(2 * 3600));
    assert_eq!(
        rig.graph.bridge_shows(&guid(1), rig.now),
        pair("Busy", "Busy")
    );
}

#[test]
fn overrides_per_state_win_over_per_class() {
    let mut c = config();
    c.mapping.set_class(
        presence_model::AvailabilityClass::Busy,
        parse_target("Busy/InAConferenceCall", false).unwrap(),
    );
    c.mapping.set_state(
        AggregatedStateId::new("ACW").unwrap(),
        parse_target("DoNotDisturb/Presenting", false).unwrap(),
    );
    let mut rig = Rig::new(c);
    rig.connected();
    rig.core.publish(
        &entra_user(1),
        &publication_id("INCALL", 6500, None),
        PublishId(1),
        rig.now,
    );
    rig.core.publish(
        &entra_user(2),
        &publication_id("ACW", 6500, None),
        PublishId(2),
        rig.now,
    );
    rig.run_for(Duration::from_secs(1));
    assert_eq!(
        rig.graph.bridge_shows(&guid(1), rig.now),
        pair("Busy", "InAConferenceCall")
    );
    assert_eq!(
        rig.graph.bridge_shows(&guid(2), rig.now),
        pair("DoNotDisturb", "Presenting")
    );
    assert_eq!(
        Target::Session(crate::mapping::SESSION_PAIRS[2]),
        rig.core
            .config()
            .mapping
            .class(presence_model::AvailabilityClass::Busy)
    );
}

#[test]
fn every_class_is_pushed_and_pulled() {
    let mut rig = Rig::new(config());
    rig.connected();
    let cases: [(u32, Option<(&str, &str)>); 9] = [
        (3500, Some(("Available", "Available"))),
        (5000, Some(("Available", "Available"))),
        (6500, Some(("Busy", "InACall"))),
        (7500, Some(("Busy", "InACall"))),
        (9500, Some(("DoNotDisturb", "Presenting"))),
        (12500, Some(("Away", "Away"))),
        (15500, Some(("Away", "Away"))),
        (18000, None),
        (0, None),
    ];
    for (n, (availability, shown)) in cases.iter().enumerate() {
        rig.core.publish(
            &entra_user(n),
            &publication(*availability, None),
            PublishId(n as u64),
            rig.now,
        );
        rig.run_for(Duration::from_secs(1));
        assert_eq!(
            rig.graph.bridge_shows(&guid(n), rig.now),
            shown.map(|(a, b)| (a.to_owned(), b.to_owned())),
            "{availability}"
        );
    }
    // Pull: each Graph availability lands on the SfB scale; unknown ones do not.
    let watched = entra_user(100);
    rig.core.subscribe(std::slice::from_ref(&watched), rig.now);
    rig.run_for(Duration::from_secs(1));
    rig.take_events();
    for (graph, sfb) in [
        ("Available", Some(3500)),
        ("AvailableIdle", Some(5000)),
        ("Busy", Some(6500)),
        ("BusyIdle", Some(7500)),
        ("DoNotDisturb", Some(9500)),
        ("BeRightBack", Some(12500)),
        ("Away", Some(15500)),
        ("Focusing", None),
        ("PresenceUnknown", None),
        ("Offline", Some(18000)),
    ] {
        rig.graph.person(&guid(100)).own = (graph.to_owned(), graph.to_owned());
        rig.run_for(Duration::from_secs(6));
        let got: Vec<u64> = rig
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Transport(TransportEvent::Presence(p)) => Some(p.raw_availability),
                _ => None,
            })
            .collect();
        assert_eq!(got, sfb.into_iter().collect::<Vec<_>>(), "{graph}");
    }
}

// --- users -----------------------------------------------------------------------------------

#[test]
fn upns_are_resolved_once_and_unknown_ones_retried_rarely() {
    let mut graph = FakeGraph::new();
    graph.add_upn("agent1@contoso.com", &guid(1));
    let mut rig = Rig::with_graph(config(), graph);
    rig.connected();
    rig.core.publish(
        &upn_user(1),
        &publication(6500, None),
        PublishId(1),
        rig.now,
    );
    rig.run_for(Duration::from_secs(1));
    rig.core.publish(
        &upn_user(1),
        &publication(9500, None),
        PublishId(2),
        rig.now,
    );
    rig.run_for(Duration::from_secs(1));
    assert_eq!(rig.settled(PublishId(2)), Some(Ok(())));
    assert_eq!(rig.graph.count("agent1@contoso.com"), 1, "looked up once");
    assert_eq!(
        rig.core.entra_id(&upn_user(1)).map(|e| e.to_string()),
        Some(guid(1))
    );
    // An unknown UPN: Unsupported for its publications, one UserProblem, a retry every
    // 10 minutes; other users unaffected.
    rig.core.publish(
        &upn_user(2),
        &publication(6500, None),
        PublishId(3),
        rig.now,
    );
    rig.core.subscribe(&[upn_user(2)], rig.now);
    rig.run_for(Duration::from_secs(1));
    assert!(matches!(rig.settled(PublishId(3)), Some(Err(e)) if e.contains("Unsupported")));
    rig.core.publish(
        &upn_user(2),
        &publication(6500, None),
        PublishId(4),
        rig.now,
    );
    assert!(matches!(rig.settled(PublishId(4)), Some(Err(e)) if e.contains("Unsupported")));
    rig.run_for(Duration::from_secs(25 * 60));
    assert_eq!(
        rig.graph.count("agent2@contoso.com"),
        3,
        "at 0, 10 and 20 minutes"
    );
    rig.graph.add_upn("agent2@contoso.com", &guid(2));
    rig.run_for(Duration::from_secs(10 * 60));
    let problems: Vec<Option<String>> = rig
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Transport(TransportEvent::UserProblem { problem, .. }) => Some(problem),
            _ => None,
        })
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0]
            .as_deref()
            .is_some_and(|p| p.contains("does not resolve"))
    );
    assert_eq!(problems[1], None);
    // A SIP-addressed user is not a Teams user.
    let sip = UserId::sip(Platform::teams(), "sip:a@contoso.com".parse().unwrap());
    rig.core
        .publish(&sip, &publication(6500, None), PublishId(5), rig.now);
    assert!(matches!(rig.settled(PublishId(5)), Some(Err(e)) if e.contains("Unsupported")));
    let other = UserId::new(
        Platform::sfb(),
        UserAddress::EntraId(EntraId::new(&guid(3)).unwrap()),
    );
    rig.core
        .publish(&other, &publication(6500, None), PublishId(6), rig.now);
    assert!(matches!(rig.settled(PublishId(6)), Some(Err(e)) if e.contains("Unsupported")));
}

// --- throttling and failures ---------------------------------------------------------------

fn write_times_after(rig: &Rig, t: Instant) -> Vec<Instant> {
    rig.graph
        .writes()
        .filter(|l| l.at > t)
        .map(|l| l.at)
        .collect()
}

#[test]
fn a_429_with_retry_after_pauses_writes_and_tells_the_caller() {
    let mut rig = Rig::new(config());
    rig.connected();
    rig.graph
        .faults
        .push_back((RequestKind::Write, Fault::Status(429, Some(30))));
    rig.core.publish(
        &entra_user(1),
        &publication(6500, None),
        PublishId(1),
        rig.now,
    );
    rig.run_for(Duration::from_millis(100));
    let t429 = rig.now;
    let Some(Event::Settled { result: Err(e), .. }) = rig
        .take_events()
        .into_iter()
        .find(|e| matches!(e, Event::Settled { .. }))
    else {
        panic!("settled with an error")
    };
    assert!(
        matches!(e, TransportError::Rejected { status: 429, retry_after: Some(d), .. } if d == Duration::from_secs(30)),
        "{e:?}"
    );
    assert!(e.is_transient());
    // The caller retries at once (it has credit from before): held until the pause ends.
    rig.core.publish(
        &entra_user(1),
        &publication(6500, None),
        PublishId(2),
        rig.now,
    );
    rig.run_for(Duration::from_secs(29));
    assert!(write_times_after(&rig, t429).is_empty());
    rig.run_for(Duration::from_secs(2));
    assert_eq!(write_times_after(&rig, t429).len(), 1);
    assert_eq!(rig.settled(PublishId(2)), Some(Ok(())));
}

#[test]
fn a_429_without_retry_after_backs_off_exponentially() {
    let mut rig = Rig::new(config());
    rig.connected();
    for _ in 0..3 {
        rig.graph
            .faults
            .push_back((RequestKind::Write, Fault::Status(429, None)));
    }
    let mut retry_afters = Vec::new();
    let mut id = 0;
    for _ in 0..4 {
        id += 1;
        rig.core.publish(
            &entra_user(1),
            &publication(6500, None),
            PublishId(id),
            rig.now,
        );
        rig.run_for(Duration::from_millis(100));
        loop {
            if let Some(r) = rig.settled(PublishId(id)) {
                match r {
                    Ok(()) => retry_afters.push(None),
                    Err(_) => {
                        let d = rig.events.iter().find_map(|e| match e {
                            Event::Settled {
                                id: i,
                                result: Err(e),
                                ..
                            } if *i == PublishId(id) => e.retry_after(),
                            _ => None,
                        });
                        retry_afters.push(d);
                    }
                }
                break;
            }
            rig.step(rig.now + Duration::from_secs(120));
        }
        rig.events.clear();
        if let Some(Some(d)) = retry_afters.last() {
            rig.run_for(*d);
        }
    }
    let secs: Vec<Option<u64>> = retry_afters
        .iter()
        .map(|d| d.map(|d| d.as_secs_f64().round() as u64))
        .collect();
    // 1 s, 2 s, 4 s (±20 %), then accepted.
    assert!(
        secs[0].is_some_and(|s| s <= 2)
            && secs[1].is_some_and(|s| (1..=3).contains(&s))
            && secs[2].is_some_and(|s| (3..=5).contains(&s)),
        "{secs:?}"
    );
    assert_eq!(secs[3], None);
}

#[test]
fn transient_failures_on_writes_are_reported_and_internal_work_retries() {
    let mut rig = Rig::new(config());
    rig.connected();
    rig.graph
        .faults
        .push_back((RequestKind::Write, Fault::Status(503, Some(7))));
    rig.core.publish(
        &entra_user(1),
        &publication(6500, Some("x")),
        PublishId(1),
        rig.now,
    );
    rig.run_for(Duration::from_millis(100));
    let r = rig.take_events().into_iter().find_map(|e| match e {
        Event::Settled { result, .. } => Some(result),
        _ => None,
    });
    assert!(
        matches!(r, Some(Err(TransportError::Rejected { status: 503, retry_after: Some(d), .. })) if d.as_secs() == 7),
        "{r:?}"
    );
    // A timeout on a write: Timeout to the caller.
    rig.graph
        .faults
        .push_back((RequestKind::Write, Fault::Timeout { applied: false }));
    rig.core.publish(
        &entra_user(1),
        &publication(6500, Some("x")),
        PublishId(2),
        rig.now,
    );
    rig.run_for(Duration::from_secs(11));
    assert!(matches!(rig.settled(PublishId(2)), Some(Err(e)) if e.contains("Timeout")));
    // Internal work (the status message after an accepted setPresence) is retried by the
    // core: two 503s, then it goes through.
    rig.core.publish(
        &entra_user(1),
        &publication(6500, Some("x")),
        PublishId(3),
        rig.now,
    );
    rig.io();
    rig.graph
        .faults
        .push_back((RequestKind::Write, Fault::Status(503, None)));
    rig.graph
        .faults
        .push_back((RequestKind::Write, Fault::Status(503, None)));
    rig.graph
        .faults
        .push_front((RequestKind::Read, Fault::Status(503, None)));
    rig.run_for(Duration::from_secs(30));
    assert_eq!(rig.graph.people[&guid(1)].message.as_deref(), Some("x"));
}

#[test]
fn bodies_over_the_limit_are_refused_with_a_clear_error() {
    let mut c = config();
    c.max_body = 64;
    let mut rig = Rig::new(c);
    rig.run_for(Duration::from_millis(100));
    // The token answer is bigger than 64 bytes.
    let events = rig.take_events();
    let trouble = events.iter().find_map(|e| match e {
        Event::TokenTrouble { message, .. } => Some(message.clone()),
        _ => None,
    });
    assert!(
        trouble
            .as_deref()
            .is_some_and(|m| m.contains("larger than 64 bytes")),
        "{events:?}"
    );
}

#[test]
fn unreadable_answers_name_the_request() {
    let mut rig = Rig::new(config());
    rig.connected();
    rig.hold = true;
    rig.core.subscribe(&[entra_user(1)], rig.now);
    rig.run_for(Duration::from_secs(1));
    let (_, read) = rig
        .sent
        .iter()
        .rev()
        .find(|(_, r)| r.kind == RequestKind::Read)
        .cloned()
        .unwrap();
    rig.core.handle_response(
        read.id,
        HttpResponse::new(200, r#"{"value":[{"id":7}]}"#),
        rig.now,
    );
    let warning = rig.take_events().into_iter().find_map(|e| match e {
        Event::Warning { message } => Some(message),
        _ => None,
    });
    assert!(warning.as_deref().is_some_and(|w| w.contains("getPresencesByUserId answer") && w.contains("value[0].id")), "{warning:?}");
}

// --- pull ------------------------------------------------------------------------------------

#[test]
fn reads_are_batched_by_650() {
    let mut rig = Rig::new(config());
    rig.connected();
    let users: Vec<UserId> = (0..651).map(entra_user).collect();
    rig.core.subscribe(&users, rig.now);
    rig.run_for(Duration::from_secs(1));
    let sizes: Vec<usize> = rig
        .graph
        .log
        .iter()
        .filter(|l| l.op == "getPresencesByUserId")
        .map(|l| l.body["ids"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![650, 1]);
    let subscribed: usize = rig
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Transport(TransportEvent::Subscribed { users }) => Some(users.len()),
            _ => None,
        })
        .sum();
    assert_eq!(subscribed, 651);
    // Each poll round: two reads every 5 s.
    let before = rig.graph.count("getPresencesByUserId");
    rig.run_for(Duration::from_secs(50));
    let after = rig.graph.count("getPresencesByUserId");
    assert!((18..=22).contains(&(after - before)), "{}", after - before);
}

#[test]
fn older_sequence_numbers_are_dropped_and_only_changes_are_reported() {
    let mut rig = Rig::new(config());
    rig.connected();
    rig.hold = true;
    let user = entra_user(1);
    rig.core.subscribe(std::slice::from_ref(&user), rig.now);
    rig.run_for(Duration::from_secs(1));
    let answer = |seq: &str, availability: &str| {
        HttpResponse::new(
            200,
            json!({"value":[{"id":guid(1),"availability":availability,"activity":availability,"statusMessage":null,"sequenceNumber":seq}]}).to_string(),
        )
    };
    let mut reads = rig
        .sent
        .iter()
        .filter(|(_, r)| r.kind == RequestKind::Read)
        .map(|(_, r)| r.id)
        .collect::<Vec<_>>();
    let first = reads.remove(0);
    rig.core
        .handle_response(first, answer("0000000005", "Busy"), rig.now);
    rig.run_for(Duration::from_secs(5));
    let second = rig
        .sent
        .iter()
        .filter(|(_, r)| r.kind == RequestKind::Read)
        .map(|(_, r)| r.id)
        .nth(1)
        .unwrap();
    rig.run_for(Duration::from_secs(5));
    let third = rig
        .sent
        .iter()
        .filter(|(_, r)| r.kind == RequestKind::Read)
        .map(|(_, r)| r.id)
        .nth(2);
    // The second answer is newer; an answer with an older stamp (arriving late) is dropped.
    rig.core
        .handle_response(second, answer("0000000009", "Away"), rig.now);
    if let Some(third) = third {
        rig.core
            .handle_response(third, answer("0000000007", "Available"), rig.now);
    }
    let reported: Vec<(u64, Option<String>)> = rig
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Transport(TransportEvent::Presence(p)) => Some((p.raw_availability, p.activity)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reported,
        vec![(6500, Some("Busy".into())), (15500, Some("Away".into()))]
    );
}

#[test]
fn subscriptions_are_reported_again_after_a_reconnect() {
    let mut rig = Rig::new(config());
    rig.connected();
    let user = entra_user(1);
    rig.core.subscribe(std::slice::from_ref(&user), rig.now);
    rig.core.subscribe(std::slice::from_ref(&user), rig.now);
    rig.run_for(Duration::from_secs(1));
    let count = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Transport(TransportEvent::Subscribed { .. })))
            .count()
    };
    assert_eq!(count(&rig.take_events()), 1);
    // The token is revoked and the credential refused for a while: a real loss.
    rig.graph.revoke();
    rig.graph.refuse_until = Some(rig.now + Duration::from_secs(20));
    rig.run_for(Duration::from_secs(60));
    let events = rig.take_events();
    assert_eq!(count(&events), 1, "{events:?}");
    let order: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Transport(TransportEvent::Disconnected { .. }) => Some("disconnected"),
            Event::Transport(TransportEvent::Connected { .. }) => Some("connected"),
            Event::Transport(TransportEvent::Subscribed { .. }) => Some("subscribed"),
            Event::Transport(TransportEvent::Presence(_)) => Some("presence"),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        vec!["disconnected", "connected", "subscribed", "presence"]
    );
    // After unsubscribe: no more reads.
    rig.core.unsubscribe(&[user], rig.now);
    rig.run_for(Duration::from_millis(100));
    let before = rig.graph.count("getPresencesByUserId");
    rig.run_for(Duration::from_secs(30));
    assert_eq!(rig.graph.count("getPresencesByUserId"), before);
}

// --- credit and budget -------------------------------------------------------------------

/// Publishes with every credit granted, for `total` users; returns when each was sent.
fn burst(rig: &mut Rig, total: usize, mut credit: u32) {
    let mut next = 0;
    let mut id = 0;
    while next < total {
        while credit > 0 && next < total {
            id += 1;
            let before = rig.sent.len();
            rig.core.publish(
                &entra_user(next),
                &publication(6500, None),
                PublishId(id),
                rig.now,
            );
            rig.io();
            let sent_now = rig.sent[before..]
                .iter()
                .any(|(t, r)| *t == rig.now && r.kind == RequestKind::Write);
            assert!(
                sent_now,
                "publication {id} with credit was not sent at once"
            );
            next += 1;
            credit -= 1;
        }
        rig.step(rig.now + Duration::from_secs(60));
        for e in rig.take_events() {
            if let Event::Transport(TransportEvent::Credit { credit: c, .. }) = e {
                credit += c;
            }
        }
    }
}

fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[test]
fn credit_never_lets_a_write_wait_and_the_budget_holds_over_a_long_run() {
    let mut rig = Rig::new(config());
    let credit = rig.connected();
    assert!(
        credit >= 1 && credit <= rig.core.config().credit_cap(),
        "{credit}"
    );
    // Subscriptions too, so reads share the budget.
    let watched: Vec<UserId> = (10_000..12_000).map(entra_user).collect();
    rig.core.subscribe(&watched, rig.now);
    let start = rig.now;
    burst(&mut rig, 5000, credit);
    let took = rig.now - start;
    rig.run_for(Duration::from_secs(120));
    let times: Vec<Instant> = rig
        .sent
        .iter()
        .filter(|(_, r)| matches!(r.kind, RequestKind::Read | RequestKind::Write))
        .map(|(t, _)| *t)
        .collect();
    let budget = rig.core.config().budget as usize;
    let burst_size = rig.core.config().burst() as usize;
    let most = max_in_window(&times, Duration::from_secs(30));
    eprintln!(
        "5000 writes + 2000 polled users: {took:?} (floor {:.0} s), max {most} requests in 30 s (budget {budget} + burst {burst_size})",
        5000.0 / (budget as f64 / 30.0)
    );
    assert!(most <= budget + burst_size, "{most}");
    assert_eq!(rig.graph.budget_refusals, 0);
    assert_eq!(rig.graph.count("setPresence"), 5000);
}

#[test]
fn several_apps_share_users_by_a_stable_hash() {
    let mut c = config();
    c.apps.push(AppCredential {
        client_id: "99999999-2222-3333-4444-555555555555".into(),
        secret: Secret::new("s3cr3t2"),
    });
    let mut rig = Rig::new(c);
    let credit = rig.connected();
    assert!(credit >= 2);
    let users: Vec<UserId> = (0..200).map(entra_user).collect();
    let apps: Vec<usize> = users.iter().map(|u| app_of(u, 2)).collect();
    assert!(apps.contains(&0) && apps.contains(&1));
    assert_eq!(apps, users.iter().map(|u| app_of(u, 2)).collect::<Vec<_>>());
    let mut credit = credit;
    let mut id = 0;
    for u in &users {
        while credit == 0 {
            rig.step(rig.now + Duration::from_secs(5));
            for e in rig.take_events() {
                if let Event::Transport(TransportEvent::Credit { credit: c, .. }) = e {
                    credit += c;
                }
            }
        }
        id += 1;
        rig.core
            .publish(u, &publication(6500, None), PublishId(id), rig.now);
        credit -= 1;
    }
    rig.run_for(Duration::from_secs(10));
    for (n, u) in users.iter().enumerate() {
        let session = &rig.graph.people[&guid(n)].sessions;
        let expected = if app_of(u, 2) == 0 {
            CLIENT
        } else {
            "99999999-2222-3333-4444-555555555555"
        };
        assert!(session.contains_key(expected), "{n}: {session:?}");
    }
}

// --- the property: any run converges, nothing superseded is sent ---------------------------

#[derive(Clone, Debug)]
enum Op {
    Set { user: usize, state: usize },
    Unpublish { user: usize },
    Fault(FaultKind),
    Advance(u64),
}

#[derive(Clone, Copy, Debug)]
enum FaultKind {
    Unauthorized,
    Throttle { retry_after: Option<u64> },
    Unavailable,
    Timeout { applied: bool },
    LoseToken,
    RefuseFor(u64),
    EntraDownFor(u64),
}

/// The states of the property (availability 0, which writes nothing, has unit tests).
const STATES: [(u32, Option<&str>); 7] = [
    (3500, None),
    (6500, Some("On a call")),
    (7500, Some("On a call")),
    (9500, Some("Do not disturb")),
    (12500, Some("Be right back")),
    (15500, None),
    (18000, Some("Logged out")),
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..6, 0usize..STATES.len()).prop_map(|(user, state)| Op::Set { user, state }),
        1 => (0usize..6).prop_map(|user| Op::Unpublish { user }),
        3 => prop_oneof![
            Just(FaultKind::Unauthorized),
            proptest::option::of(1u64..60).prop_map(|retry_after| FaultKind::Throttle { retry_after }),
            Just(FaultKind::Unavailable),
            any::<bool>().prop_map(|applied| FaultKind::Timeout { applied }),
            Just(FaultKind::LoseToken),
            (1u64..120).prop_map(FaultKind::RefuseFor),
            (1u64..120).prop_map(FaultKind::EntraDownFor),
        ].prop_map(Op::Fault),
        4 => (0u64..20_000).prop_map(Op::Advance),
    ]
}

/// What the engine wants for a user: a publication or an unpublication.
#[derive(Clone, Debug, PartialEq)]
enum Want {
    State(usize),
    Gone,
}

/// A model of the engine: latest wins per user, publishes only with credit, one
/// outstanding per user, retries after errors, resyncs after Connected.
struct Engine {
    credit: u32,
    latest: Vec<Option<Want>>,
    confirmed: Vec<Option<Want>>,
    outstanding: HashMap<PublishId, (usize, Want)>,
    /// What was last handed to the core per user and not refused: the standard a write is
    /// checked against.
    handed: Vec<Option<Want>>,
    /// The last want the core accepted, per user.
    accepted: Vec<Option<Want>>,
    not_before: Vec<Option<Instant>>,
    next_id: u64,
}

impl Engine {
    fn new(users: usize) -> Engine {
        Engine {
            credit: 0,
            latest: vec![None; users],
            confirmed: vec![None; users],
            outstanding: HashMap::new(),
            handed: vec![None; users],
            accepted: vec![None; users],
            not_before: vec![None; users],
            next_id: 0,
        }
    }

    fn on_event(&mut self, e: &Event, now: Instant) {
        match e {
            Event::Transport(TransportEvent::Connected { credit, .. }) => {
                self.credit = *credit;
                // Resync: everything is published again.
                self.confirmed.iter_mut().for_each(|c| *c = None);
            }
            Event::Transport(TransportEvent::Disconnected { .. }) => self.credit = 0,
            Event::Transport(TransportEvent::Credit { credit, .. }) => self.credit += credit,
            Event::Settled { id, result, .. } => {
                let (user, want) = self.outstanding.remove(id).expect("settled once");
                match result {
                    Ok(()) => {
                        self.confirmed[user] = Some(want.clone());
                        self.accepted[user] = Some(want);
                    }
                    Err(e) => {
                        self.not_before[user] = e.retry_after().map(|d| now + d);
                        self.handed[user] = self.accepted[user].clone();
                    }
                }
            }
            _ => {}
        }
    }

    fn act(&mut self, core: &mut GraphCore, now: Instant) {
        for user in 0..self.latest.len() {
            let Some(want) = self.latest[user].clone() else {
                continue;
            };
            if self.confirmed[user].as_ref() == Some(&want)
                || self.outstanding.values().any(|(u, _)| *u == user)
                || self.not_before[user].is_some_and(|t| t > now)
                || !core.is_connected()
            {
                continue;
            }
            self.next_id += 1;
            let id = PublishId(self.next_id);
            match &want {
                Want::State(s) => {
                    if self.credit == 0 {
                        continue;
                    }
                    self.credit -= 1;
                    let (a, t) = STATES[*s];
                    self.outstanding.insert(id, (user, want.clone()));
                    self.handed[user] = Some(want.clone());
                    core.publish(&entra_user(user), &publication(a, t), id, now);
                }
                Want::Gone => {
                    self.outstanding.insert(id, (user, want.clone()));
                    self.handed[user] = Some(want.clone());
                    core.unpublish(&entra_user(user), id, now);
                }
            }
        }
    }
}

/// What a user should show for the latest want: its pair and text, or nothing after an
/// unpublish or Offline.
fn expected_show(history: &[Want]) -> (Option<(String, String)>, Option<String>) {
    let mapping = Mapping::new(false, Some(Lcid::EN_US));
    match history.last() {
        None | Some(Want::Gone) => (None, None),
        Some(Want::State(s)) => {
            let (a, t) = STATES[*s];
            match mapping.push(&publication(a, t)) {
                Target::Session(pair) | Target::Preferred(pair) => (
                    Some((pair.availability.to_owned(), pair.activity.to_owned())),
                    t.map(str::to_owned),
                ),
                _ => (None, None),
            }
        }
    }
}

/// Checks that a write carries the latest state handed to the core for its user.
fn check_write(log: &Logged, engine: &Engine) -> Result<(), String> {
    let user = log
        .user
        .as_deref()
        .and_then(|id| (0..engine.latest.len()).find(|n| guid(*n) == id));
    let Some(user) = user else { return Ok(()) };
    let mapping = Mapping::new(false, Some(Lcid::EN_US));
    let handed = engine.handed[user].clone();
    let (target, text) = match &handed {
        Some(Want::State(s)) => {
            let (a, t) = STATES[*s];
            let p = publication(a, t);
            (mapping.push(&p), t)
        }
        // Nothing accepted yet: the bridge may only clear what it may have written.
        Some(Want::Gone) | None => (Target::Clear, None),
    };
    let ok = match log.op.as_str() {
        "setPresence" => {
            matches!(target, Target::Session(p) if log.body["availability"] == p.availability && log.body["activity"] == p.activity)
        }
        "clearPresence" => target == Target::Clear,
        "setStatusMessage" => {
            let content = log.body["statusMessage"]["message"]["content"]
                .as_str()
                .unwrap_or("");
            match target {
                Target::Clear => content.is_empty(),
                _ => content == text.unwrap_or(""),
            }
        }
        _ => true,
    };
    if ok || target == Target::Nothing {
        Ok(())
    } else {
        Err(format!(
            "user {user}: {} {} sent while {handed:?} was the latest",
            log.op, log.body
        ))
    }
}

fn run_property(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let users = 6;
    let mut rig = Rig::new(config());
    let mut engine = Engine::new(users);
    let mut history: Vec<Vec<Want>> = vec![Vec::new(); users];
    let mut checked = 0;
    let mut traced = 0;
    let mut drive =
        |rig: &mut Rig, engine: &mut Engine, until: Instant| -> Result<(), TestCaseError> {
            loop {
                for e in rig.take_events() {
                    if std::env::var_os("TRACE").is_some() {
                        eprintln!("{:>10.3} event {e:?}", (rig.now - rig.t0).as_secs_f64());
                    }
                    engine.on_event(&e, rig.now);
                }
                // Writes sent until now were sent before the engine acts again.
                while checked < rig.graph.log.len() {
                    let log = &rig.graph.log[checked];
                    if log.kind == RequestKind::Write {
                        check_write(log, engine).map_err(TestCaseError::fail)?;
                    }
                    checked += 1;
                }
                engine.act(&mut rig.core, rig.now);
                rig.io();
                if std::env::var_os("TRACE").is_some() {
                    for (t, r) in &rig.sent[traced..] {
                        eprintln!(
                            "{:>10.3} sent {:?} {} {}",
                            (*t - rig.t0).as_secs_f64(),
                            r.kind,
                            r.operation(),
                            String::from_utf8_lossy(&r.body)
                                .chars()
                                .take(90)
                                .collect::<String>()
                        );
                    }
                    traced = rig.sent.len();
                }
                while checked < rig.graph.log.len() {
                    let log = &rig.graph.log[checked];
                    if log.kind == RequestKind::Write {
                        check_write(log, engine).map_err(TestCaseError::fail)?;
                    }
                    checked += 1;
                }
                let limit = engine
                    .not_before
                    .iter()
                    .flatten()
                    .filter(|t| **t > rig.now)
                    .min()
                    .copied()
                    .map_or(until, |t| t.min(until));
                if !rig.step(limit) && rig.now >= until {
                    for e in rig.take_events() {
                        engine.on_event(&e, rig.now);
                    }
                    return Ok(());
                }
            }
        };
    for op in ops {
        match op {
            Op::Set { user, state } => {
                engine.latest[user] = Some(Want::State(state));
                history[user].push(Want::State(state));
            }
            Op::Unpublish { user } => {
                if engine.latest[user].is_some() {
                    engine.latest[user] = Some(Want::Gone);
                    history[user].push(Want::Gone);
                }
            }
            Op::Fault(kind) => {
                let g = &mut rig.graph;
                match kind {
                    FaultKind::Unauthorized | FaultKind::LoseToken => g.revoke(),
                    FaultKind::Throttle { retry_after } => {
                        g.faults
                            .push_back((RequestKind::Write, Fault::Status(429, retry_after)));
                    }
                    FaultKind::Unavailable => g
                        .faults
                        .push_back((RequestKind::Write, Fault::Status(503, None))),
                    FaultKind::Timeout { applied } => g
                        .faults
                        .push_back((RequestKind::Write, Fault::Timeout { applied })),
                    FaultKind::RefuseFor(s) => {
                        g.revoke();
                        g.refuse_until = Some(rig.now + Duration::from_secs(s));
                    }
                    FaultKind::EntraDownFor(s) => {
                        g.revoke();
                        g.down_until = Some(rig.now + Duration::from_secs(s));
                    }
                }
            }
            Op::Advance(ms) => {
                let until = rig.now + Duration::from_millis(ms);
                drive(&mut rig, &mut engine, until)?;
            }
        }
    }
    // Faults stop; time passes (long enough for the longest token back-off).
    rig.graph.faults.clear();
    let until = rig.now + Duration::from_secs(900);
    drive(&mut rig, &mut engine, until)?;
    for (user, history) in history.iter().enumerate() {
        let (shown, message) = expected_show(history);
        let id = guid(user);
        prop_assert_eq!(
            rig.graph.bridge_shows(&id, rig.now),
            shown.clone(),
            "user {} history {:?}",
            user,
            history
        );
        let got = rig.graph.people.get(&id).and_then(|p| p.message.clone());
        prop_assert_eq!(
            got,
            message,
            "message of user {} history {:?}",
            user,
            history
        );
    }
    prop_assert!(
        engine.outstanding.is_empty(),
        "unsettled: {:?}",
        engine.outstanding
    );
    prop_assert_eq!(&engine.confirmed, &engine.latest);
    Ok(())
}

proptest! {
    // PROPTEST_CASES raises the number of runs (96 by default).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        ..ProptestConfig::default()
    })]
    #[test]
    fn any_run_converges_and_never_sends_a_superseded_state(ops in proptest::collection::vec(op(), 1..60)) {
        run_property(ops)?;
    }
}

#[test]
fn a_lookup_lost_with_the_token_is_made_again_after_the_reconnect() {
    let mut graph = FakeGraph::new();
    graph.add_upn("agent1@contoso.com", &guid(1));
    let mut rig = Rig::with_graph(config(), graph);
    rig.connected();
    // The token is revoked before the lookup is answered: it gets a 401, the token is
    // refused for a while, the lookup cannot be sent again.
    rig.graph.revoke();
    rig.graph.refuse_until = Some(rig.now + Duration::from_secs(20));
    rig.core.subscribe(&[upn_user(1)], rig.now);
    rig.run_for(Duration::from_secs(60));
    let events = rig.take_events();
    assert!(
        events.iter().any(|e| matches!(e, Event::Transport(TransportEvent::Subscribed { users }) if users == &[upn_user(1)])),
        "{events:?}"
    );
    assert_eq!(
        rig.core.entra_id(&upn_user(1)).map(|e| e.to_string()),
        Some(guid(1))
    );
}
