//! The real `presence-bridge run` on SIP SIMPLE, against a real Kamailio presence server
//! started by the test on loopback (`presence-testkamailio`), watched by an independent
//! SIPp watcher and fed by a second SIP user agent (`RawUa`) for the pull side.
//!
//! Kamailio must be installed (`.ci/run` installs it): a test that cannot start it fails
//! and says why.

use std::time::Duration;

use presence_model::{AgentState, DeviceState, StateIndex};
use presence_simple::mapping::Basic;
use presence_simple::pidf::{self, PidfDocument};
use presence_testkamailio::{
    Kamailio, Notify, Options, RawUa, Storage, WatchOptions, Watcher, unix_now,
};
use presence_tlib::{ClientRequest, ServerEvent, WorkMode};
use tokio::time::{Instant, sleep};

use crate::harness::{Client, Daemon, PROFILES, dn, dnd, drive, login};

/// Kamailio with one worker: SQLite mode answers 500 (and can lose a removal) when two
/// workers write at once.
///
/// Tests that count live publications exactly use [`Storage::Memory`]: in SQLite mode,
/// Kamailio 5.6 was seen answering `200` to a removal (`Expires: 0`) whose `DELETE` had
/// failed with "database is locked" (its log says so), leaving the row live until it
/// expires. That is the server's storage failing, not the publication protocol; the
/// in-memory store (`publ_cache=2`, listed by `presence.presentity_list`) has no such lock.
fn kamailio(storage: Storage) -> Kamailio {
    Kamailio::start(Options::default().workers(1).storage(storage))
        .unwrap_or_else(|e| panic!("Kamailio must start for this test: {e}"))
}

/// Push DNs 5001 (agent1) and 5002 (agent2), pull DN 6001 (expert1), all on SIP SIMPLE.
fn config(kamailio: &Kamailio) -> String {
    format!(
        r#"
[options.TServer]
presence-profile = "Pull"
presence-platform = "simple"
{PROFILES}
[dn."5001"]
type = "Extension"
uri = "sip:agent1@test.local"
annex.TServer = {{ presence-profile = "Push" }}

[dn."5002"]
type = "Extension"
uri = "sip:agent2@test.local"
annex.TServer = {{ presence-profile = "Push" }}

[dn."6001"]
type = "Extension"
uri = "sip:expert1@test.local"

[simple]
server = "{server}"
transport = "tcp"
domain = "{domain}"
reconnect-initial = "50ms"
reconnect-max = "300ms"
keepalive = "1s"
request-timeout = "2s"
retry-initial = "50ms"

[cti]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
"#,
        server = kamailio.addr(),
        domain = kamailio.domain(),
    )
}

/// What a watcher must see for an aggregated state of the example map, written out by hand
/// from the map (`examples/agent-states.xml`) and the documented default mapping (SfB class
/// → PIDF), so that the check does not reuse the code under test.
#[derive(Debug)]
struct Want {
    /// `None`: the bridge removed its publication (availability 18000).
    basic: Option<&'static str>,
    /// RPID activities of the person.
    activities: &'static [&'static str],
    /// `<rpid:user-input>idle</rpid:user-input>`.
    idle: bool,
    /// The notes, in order, as (xml:lang, text).
    notes: &'static [(&'static str, &'static str)],
}

const INCALL_NOTES: &[(&str, &str)] = &[
    ("en-US", "Working with customer, do not disturb"),
    ("es-ES", "Estoy trabajando con los clientes, no molestar"),
    ("ru-RU", "Работа с клиентом, не беспокоить"),
    ("fr-FR", "En travaillant avec les clients, ne pas déranger"),
];

/// The state ID of each row (the `Push` profile's aggregated-states) and what it shows.
fn want(index: StateIndex) -> (&'static str, Want) {
    let removed = Want {
        basic: None,
        activities: &[],
        idle: false,
        notes: &[],
    };
    match index.slot() {
        // IDLE_OUT, 18000: removed.
        0 => ("IDLE_OUT", removed),
        // IDLE_READY, 3501 (Online): open, no activity.
        1 => (
            "IDLE_READY",
            Want {
                basic: Some("open"),
                activities: &[],
                idle: false,
                notes: &[("en-US", "I am available")],
            },
        ),
        // IDLE_NOTREADY, 6001 (Busy).
        2 => (
            "IDLE_NOTREADY",
            Want {
                basic: Some("open"),
                activities: &["busy"],
                idle: false,
                notes: &[("en-US", "I am not available")],
            },
        ),
        // IDLE_ACW, 6001 (Busy).
        3 => (
            "IDLE_ACW",
            Want {
                basic: Some("open"),
                activities: &["busy"],
                idle: false,
                notes: &[("en-US", "I am in After Call Work, do not disturb me")],
            },
        ),
        // IDLE_AWAY, 4501 (IdleOnline): open and idle.
        4 => (
            "IDLE_AWAY",
            Want {
                basic: Some("open"),
                activities: &[],
                idle: true,
                notes: &[("en-US", "I am away from my desk")],
            },
        ),
        // INCALL, 7001 (Busy), four languages.
        5..=9 => (
            "INCALL",
            Want {
                basic: Some("open"),
                activities: &["busy"],
                idle: false,
                notes: INCALL_NOTES,
            },
        ),
        // OOS, 18000: removed.
        _ => ("OOS", removed),
    }
}

/// Every difference between what the watcher received and `want`, field by field.
fn differences(entity: &str, notify: &Notify, want: &Want) -> Vec<String> {
    let mut out = Vec::new();
    if !notify.state().eq_ignore_ascii_case("active") {
        out.push(format!("Subscription-State {}", notify.subscription_state));
    }
    let Some(basic) = want.basic else {
        // Removed: Kamailio sends no body, or a document whose tuples are all closed.
        if notify.has_body() {
            match pidf::read(notify.body.as_bytes()) {
                Ok(doc)
                    if doc.tuples.iter().all(|t| t.basic == Some(Basic::Closed))
                        && doc.persons.is_empty() => {}
                Ok(_) => out.push("a live document where none should be".to_owned()),
                Err(e) => out.push(format!("an unreadable body: {e}")),
            }
        }
        return out;
    };
    if notify.content_type.as_deref() != Some("application/pidf+xml") {
        out.push(format!("Content-Type {:?}", notify.content_type));
    }
    let doc: PidfDocument = match pidf::read(notify.body.as_bytes()) {
        Ok(doc) => doc,
        Err(e) => return vec![format!("an unreadable body: {e}")],
    };
    if doc.entity.as_deref() != Some(entity) {
        out.push(format!("entity {:?}", doc.entity));
    }
    // One publication only: the bridge's tuple and person, nothing stale aggregated in.
    if doc.tuples.len() != 1 {
        out.push(format!("{} tuples", doc.tuples.len()));
    }
    if doc.persons.len() != 1 {
        out.push(format!("{} persons", doc.persons.len()));
    }
    let wanted_basic = if basic == "open" {
        Basic::Open
    } else {
        Basic::Closed
    };
    for tuple in &doc.tuples {
        if tuple.basic != Some(wanted_basic) {
            out.push(format!("tuple basic {:?}", tuple.basic));
        }
    }
    let notes = |notes: &[pidf::Note]| -> Vec<(String, String)> {
        notes
            .iter()
            .map(|n| (n.lang.clone().unwrap_or_default(), n.text.clone()))
            .collect()
    };
    let wanted_notes: Vec<(String, String)> = want
        .notes
        .iter()
        .map(|(l, t)| ((*l).to_owned(), (*t).to_owned()))
        .collect();
    for person in &doc.persons {
        let activities: Vec<String> = person.activities.iter().map(|a| a.to_string()).collect();
        if activities != want.activities {
            out.push(format!("person activities {activities:?}"));
        }
        if person.idle != want.idle {
            out.push(format!("person idle {}", person.idle));
        }
        if notes(&person.notes) != wanted_notes {
            out.push(format!("person notes {:?}", notes(&person.notes)));
        }
    }
    for tuple in &doc.tuples {
        if notes(&tuple.notes) != wanted_notes {
            out.push(format!("tuple notes {:?}", notes(&tuple.notes)));
        }
    }
    out
}

/// Waits until the watcher's latest NOTIFY shows `want`.
fn wait_shows(watcher: &mut Watcher, entity: &str, want: &Want, what: &str) {
    let seen = watcher.wait_until(Duration::from_secs(10), |all| {
        all.last()
            .is_some_and(|n| differences(entity, n, want).is_empty())
    });
    if let Err(e) = seen {
        let last = watcher.notifies().pop();
        panic!(
            "{what}: the watcher never saw {want:?}: {e}\nlast NOTIFY differs in {:?}:\n{}",
            last.as_ref().map(|n| differences(entity, n, want)),
            last.map(|n| n.body).unwrap_or_default()
        );
    }
}

/// The live publications Kamailio holds for `user`.
fn live(kamailio: &Kamailio, user: &str) -> usize {
    kamailio
        .live_presentity(unix_now())
        .expect("Kamailio lists its publications")
        .iter()
        .filter(|p| p.username == user)
        .count()
}

/// The DND events the client gets: when `last` is expected, until it arrives (at most
/// 10 s, however slow the machine), then 300 ms more for any event that should not come;
/// when nothing is expected, for 700 ms.
async fn dnd_events(client: &mut Client, last: Option<(&str, u64)>) -> Vec<(&'static str, u64)> {
    let mut seen = Vec::new();
    if let Some(last) = last {
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.last().copied() != Some(last) && Instant::now() < deadline {
            seen.extend(dnd(client.collect(Duration::from_millis(100)).await));
        }
        seen.extend(dnd(client.collect(Duration::from_millis(300)).await));
    } else {
        seen.extend(dnd(client.collect(Duration::from_millis(700)).await));
    }
    seen
}

fn view(daemon: &Daemon, number: &str) -> serde_json::Value {
    let (status, body) = daemon.http("GET", &format!("/v1/dns/{number}"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until the bridge reports the pull DN's first presence update (its subscription is
/// up), so that what follows starts from a known DND.
async fn wait_subscribed(daemon: &Daemon, number: &str, availability: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = view(daemon, number);
        if v["last_reported_availability"] == availability {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the bridge never reported {availability} for {number}: {v}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// A PIDF document as another user agent (a phone) would publish it, with its own prefixes.
fn phone_body(user: &str, basic: &str, person: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" xmlns:d="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:{user}@test.local"><p:tuple id="phone"><p:status><p:basic>{basic}</p:basic></p:status></p:tuple><d:person id="ph">{person}</d:person></p:presence>"#
    )
}

/// A second user agent's publication for one user, kept by its ETag (modify, remove).
struct Phone {
    ua: RawUa,
    user: &'static str,
    etag: Option<String>,
}

impl Phone {
    fn new(kamailio: &Kamailio, user: &'static str) -> Phone {
        Phone {
            ua: RawUa::connect(kamailio.addr(), kamailio.domain()).expect("a UDP socket"),
            user,
            etag: None,
        }
    }

    /// Publishes (or, with `None`, removes) this UA's document; retries a 500.
    fn publish(&mut self, body: Option<String>) {
        for _ in 0..20 {
            let (text, expires) = match &body {
                Some(b) => (b.as_str(), 600),
                None => ("", 0),
            };
            let answer = self
                .ua
                .publish(self.user, text, expires, self.etag.as_deref())
                .expect("Kamailio answers the PUBLISH");
            match answer.status {
                200..=299 => {
                    self.etag = if body.is_some() { answer.etag } else { None };
                    return;
                }
                // The ETag was lost (a restarted in-memory Kamailio): publish anew.
                412 => self.etag = None,
                500 => std::thread::sleep(Duration::from_millis(50)),
                other => panic!("PUBLISH for {}: {other} {}", self.user, answer.reason),
            }
        }
        panic!("PUBLISH for {} kept failing", self.user);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_fifteen_combinations_reach_a_sipp_watcher_field_by_field_and_logout_removes() {
    let kamailio = kamailio(Storage::Memory);
    let mut watcher = Watcher::subscribe(&kamailio, "agent1", WatchOptions::default())
        .unwrap_or_else(|e| panic!("the SIPp watcher must subscribe: {e}"));
    let daemon = Daemon::start("simple-push", &config(&kamailio));
    let mut client = Client::connect(&daemon).await;
    let entity = "sip:agent1@test.local";
    // Walk the table backwards so that every step changes what the watcher sees at least
    // sometimes, and end on row 1 (logged out).
    for index in StateIndex::ALL.into_iter().rev() {
        drive(&mut client, "5001", index.agent(), index.device()).await;
        let (id, want) = want(index);
        wait_shows(&mut watcher, entity, &want, &format!("row {index} ({id})"));
        let v = view(&daemon, "5001");
        assert_eq!(v["platform"], "simple", "row {index}");
        assert_eq!(v["agent_state"], index.agent().name(), "row {index}");
        assert_eq!(v["device_state"], index.device().name(), "row {index}");
        assert!(
            live(&kamailio, "agent1") <= 1,
            "row {index}: a second live publication for agent1: {:?}",
            kamailio.presentity()
        );
        // The publication Kamailio stores matches what the watcher saw.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = live(&kamailio, "agent1");
            let confirmed = view(&daemon, "5001")["last_published_state"] == id;
            if confirmed && n == usize::from(want.basic.is_some()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "row {index}: Kamailio holds {n} live publications for agent1, the bridge says {}",
                view(&daemon, "5001")
            );
            sleep(Duration::from_millis(20)).await;
        }
    }
    // The walk ended logged out: the presentity table holds nothing live for agent1.
    assert_eq!(live(&kamailio, "agent1"), 0, "{:?}", kamailio.presentity());
    let (status, body) = daemon.http("GET", "/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"platform\":\"simple\""), "{body}");
    let (_, metrics) = daemon.http("GET", "/metrics");
    for name in [
        "presence_transport_connected{platform=\"simple\"} 1",
        "presence_publications_total{platform=\"simple\",result=\"ok\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    assert_eq!(daemon.stop().code(), Some(0), "SIGTERM: a clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_user_agent_drives_dnd_at_the_client_only_on_change() {
    let kamailio = kamailio(Storage::Sqlite);
    let daemon = Daemon::start("simple-pull", &config(&kamailio));
    let mut client = Client::connect(&daemon).await;
    assert!(matches!(
        client
            .request(ClientRequest::RegisterAddress {
                this_dn: dn("6001")
            })
            .await,
        ServerEvent::EventRegistered { .. }
    ));
    // Nothing published for expert1 yet: the subscription's first NOTIFY says offline.
    wait_subscribed(&daemon, "6001", 18000).await;
    let _ = client.collect(Duration::from_millis(200)).await;
    let mut phone = Phone::new(&kamailio, "expert1");
    let on_call =
        "<r:activities><r:on-the-phone/></r:activities><d:note xml:lang=\"en\">On a call</d:note>";
    let meeting = "<r:activities><r:meeting/></r:activities>";
    let idle = "<r:user-input>idle</r:user-input>";
    // DND is on (18000 is outside 3000-5999): every step either changes it (one event) or
    // not (none).
    let available = || Some(phone_body("expert1", "open", ""));
    for (body, expected, what) in [
        (available(), Some(("off", 3500)), "available"),
        (
            Some(phone_body("expert1", "open", idle)),
            None,
            "idle: still available",
        ),
        (
            Some(phone_body("expert1", "open", on_call)),
            Some(("on", 6500)),
            "on the phone",
        ),
        (
            Some(phone_body("expert1", "open", meeting)),
            None,
            "in a meeting: still DND",
        ),
        (available(), Some(("off", 3500)), "available again"),
        (
            None,
            Some(("on", 18000)),
            "the phone removes its publication",
        ),
        (available(), Some(("off", 3500)), "back"),
    ] {
        let blocking = std::mem::replace(&mut phone, Phone::new(&kamailio, "expert1"));
        phone = tokio::task::spawn_blocking(move || {
            let mut phone = blocking;
            phone.publish(body);
            phone
        })
        .await
        .unwrap();
        let want: Vec<(&str, u64)> = expected.into_iter().collect();
        assert_eq!(dnd_events(&mut client, expected).await, want, "{what}");
    }
    let v = view(&daemon, "6001");
    assert_eq!(v["mode"], "pull");
    assert_eq!(v["dnd"], "off", "{v}");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kamailio_restart_the_bridge_republishes_and_resubscribes() {
    // In memory, a restart loses every publication: only a republish brings them back.
    let mut kamailio = kamailio(Storage::Memory);
    let mut agent1 = Watcher::subscribe(&kamailio, "agent1", WatchOptions::default())
        .unwrap_or_else(|e| panic!("the SIPp watcher must subscribe: {e}"));
    let mut agent2 = Watcher::subscribe(&kamailio, "agent2", WatchOptions::default())
        .unwrap_or_else(|e| panic!("the SIPp watcher must subscribe: {e}"));
    let daemon = Daemon::start("simple-restart", &config(&kamailio));
    let mut client = Client::connect(&daemon).await;
    client.request(login("5001")).await;
    client
        .request(ClientRequest::RequestAgentReady {
            this_dn: dn("5001"),
        })
        .await;
    client.request(login("5002")).await;
    client
        .request(ClientRequest::RequestAgentNotReady {
            this_dn: dn("5002"),
            workmode: Some(WorkMode::AuxWork),
        })
        .await;
    let row = |agent, device| {
        StateIndex::ALL
            .into_iter()
            .find(|i| i.agent() == agent && i.device() == device)
            .unwrap()
    };
    let (_, ready) = want(row(AgentState::Ready, DeviceState::Idle));
    let (_, not_ready) = want(row(AgentState::NotReady, DeviceState::Idle));
    let (_, acw) = want(row(AgentState::Acw, DeviceState::Idle));
    wait_shows(
        &mut agent1,
        "sip:agent1@test.local",
        &ready,
        "before: agent1",
    );
    wait_shows(
        &mut agent2,
        "sip:agent2@test.local",
        &not_ready,
        "before: agent2",
    );
    client
        .request(ClientRequest::RegisterAddress {
            this_dn: dn("6001"),
        })
        .await;
    wait_subscribed(&daemon, "6001", 18000).await;
    // Whether the first update (nothing published: DND on) reached the client depends on
    // whether it came before the registration; either way DND is on now.
    let _ = client.collect(Duration::from_millis(200)).await;
    let mut phone = Phone::new(&kamailio, "expert1");
    let available = phone_body("expert1", "open", "");
    phone = tokio::task::spawn_blocking(move || {
        phone.publish(Some(available));
        phone
    })
    .await
    .unwrap();
    assert_eq!(
        dnd_events(&mut client, Some(("off", 3500))).await,
        vec![("off", 3500)]
    );

    // Kamailio goes away; agent states change meanwhile; it comes back empty.
    kamailio.stop();
    client
        .request(ClientRequest::RequestAgentNotReady {
            this_dn: dn("5001"),
            workmode: Some(WorkMode::AfterCallWork),
        })
        .await;
    client
        .request(ClientRequest::RequestAgentReady {
            this_dn: dn("5002"),
        })
        .await;
    sleep(Duration::from_millis(500)).await;
    kamailio
        .restart()
        .unwrap_or_else(|e| panic!("Kamailio must start again: {e}"));

    // The bridge reconnects and republishes every push user's latest state.
    wait_shows(&mut agent1, "sip:agent1@test.local", &acw, "after: agent1");
    wait_shows(
        &mut agent2,
        "sip:agent2@test.local",
        &ready,
        "after: agent2",
    );
    for user in ["agent1", "agent2"] {
        assert_eq!(
            live(&kamailio, user),
            1,
            "{user}: {:?}",
            kamailio.presentity()
        );
    }
    // It re-subscribed: the phone's new publication (the old one went with the restart)
    // reaches the client as DND off, once.
    let available = phone_body("expert1", "open", "");
    tokio::task::spawn_blocking(move || phone.publish(Some(available)))
        .await
        .unwrap();
    let seen = dnd_events(&mut client, Some(("off", 3500))).await;
    // The new subscription's first update always reaches the clients: it may be "nothing
    // published" (the restart lost the phone's publication: DND on), when it comes before
    // the phone publishes again, or the phone's new publication (DND off, reported though
    // unchanged, as the first update after a re-subscription). Then nothing more.
    assert!(
        seen == [("off", 3500)] || seen == [("on", 18000), ("off", 3500)],
        "DND after the restart: {seen:?}"
    );
    let (status, body) = daemon.http("GET", "/readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(daemon.stop().code(), Some(0));
}
