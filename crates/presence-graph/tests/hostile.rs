//! Hostile answers from Entra and Graph (or anything posing as them) into the sans-IO core
//! and the wire parsers: each is refused with a clear error naming what and where, within
//! bounded memory, and no answer speaks for a user it was not asked about.
//!
//! A counting global allocator ([`peak_alloc`]) measures the peak of heap bytes in use
//! while each case runs, beyond the test's own input; the tests of this binary run one at a
//! time ([`serial`]). Memory bounds are asserted generously; times are printed (`HOSTILE`
//! lines, run with `--nocapture`), never asserted.
//!
//! `src/wire.rs`'s unit tests check single wrong types (`expires_in` as an array, an id as
//! a number) and the proptests arbitrary bytes; here every field of every answer is given
//! a wrong type, and the core is driven with the answers.

use std::time::{Duration, Instant};

use presence_graph::core::{
    CoreConfig, Event, GraphCore, HttpRequest, HttpResponse, MAX_BODY, MAX_TOKEN_LIFETIME,
    RequestKind,
};
use presence_graph::settings::Secret;
use presence_graph::wire;
use presence_model::{EntraId, Platform, UserAddress, UserId};
use presence_testproc::heap::{self, PeakAlloc, serial};
use presence_transport::TransportEvent;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// [`heap::measure`] for this crate's cases.
fn measure<T>(name: &str, case: impl FnOnce() -> T) -> (T, usize, Duration) {
    heap::measure(env!("CARGO_PKG_NAME"), name, case)
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

const TOKEN_URL: &str = "https://login.test/contoso/oauth2/v2.0/token";
const GRAPH: &str = "https://graph.test/v1.0";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const TOKEN: &str = "eyJ0-the-access-token";

fn guid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn user(n: usize) -> UserId {
    UserId::new(
        Platform::teams(),
        UserAddress::EntraId(EntraId::new(&guid(n)).unwrap()),
    )
}

fn core(now: Instant) -> GraphCore {
    let config = CoreConfig::new(TOKEN_URL, GRAPH, CLIENT, Secret::new("not a real secret"));
    GraphCore::new(config, 7, now)
}

fn requests(core: &mut GraphCore) -> Vec<HttpRequest> {
    std::iter::from_fn(|| core.poll_request()).collect()
}

fn events(core: &mut GraphCore) -> Vec<Event> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

fn token_answer(expires_in: &str) -> String {
    format!(r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"{TOKEN}"}}"#)
}

/// A core with a token, its first events drained.
fn connected(now: Instant) -> GraphCore {
    let mut core = core(now);
    let [token] = requests(&mut core).try_into().unwrap();
    core.handle_response(token.id, HttpResponse::new(200, token_answer("3599")), now);
    assert!(core.is_connected());
    events(&mut core);
    core
}

#[test]
fn a_token_answer_without_expires_in_is_refused_and_asked_again() {
    let _serial = serial();
    let t0 = Instant::now();
    let mut core = core(t0);
    let [token] = requests(&mut core).try_into().unwrap();
    assert_eq!(token.kind, RequestKind::Token);
    let body = format!(r#"{{"token_type":"Bearer","access_token":"{TOKEN}"}}"#);
    let (_, peak, _) = measure("token answer without expires_in", || {
        core.handle_response(token.id, HttpResponse::new(200, body), t0);
    });
    assert!(!core.is_connected());
    let trouble: Vec<String> = events(&mut core)
        .into_iter()
        .filter_map(|e| match e {
            Event::TokenTrouble { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert!(
        matches!(trouble.as_slice(), [m] if m.contains("token answer") && m.contains("expires_in")),
        "{trouble:?}"
    );
    assert!(
        !trouble[0].contains(TOKEN),
        "the token leaked: {}",
        trouble[0]
    );
    assert!(peak < 16 * KIB, "{peak} bytes");
    // Asked again after the back-off, not at once and not never.
    assert!(requests(&mut core).is_empty());
    let again = core.poll_timeout().expect("a retry is due");
    core.handle_timeout(again);
    assert!(
        requests(&mut core)
            .iter()
            .any(|r| r.kind == RequestKind::Token),
        "no second token request"
    );
}

#[test]
fn an_endless_or_zero_expires_in_keeps_refreshes_in_reach() {
    let _serial = serial();
    for (expires_in, name) in [
        ("18446744073709551615", "expires_in u64::MAX"),
        ("\"99999999999999999999\"", "expires_in beyond u64, as text"),
        ("0", "expires_in 0"),
    ] {
        let t0 = Instant::now();
        let mut core = core(t0);
        let [token] = requests(&mut core).try_into().unwrap();
        let (_, peak, _) = measure(name, || {
            core.handle_response(
                token.id,
                HttpResponse::new(200, token_answer(expires_in)),
                t0,
            );
        });
        assert!(peak < 16 * KIB, "{name}: {peak} bytes");
        if expires_in.starts_with('"') {
            // Not a number of seconds: refused like any unreadable answer.
            assert!(!core.is_connected(), "{name}");
            continue;
        }
        assert!(core.is_connected(), "{name}");
        // The next token request comes within the longest lifetime, and not in a loop.
        let due = core.poll_timeout().expect("a refresh is due");
        assert!(due <= t0 + MAX_TOKEN_LIFETIME, "{name}");
        assert!(
            due >= t0 + Duration::from_secs(1),
            "{name}: refreshing at once"
        );
    }
}

/// Wrong JSON types for every field of every answer the core reads; each error names the
/// answer and the field's path.
#[test]
fn wrong_types_in_every_field_are_named_by_their_path() {
    let _serial = serial();
    let token = [
        (
            r#"{"token_type":1,"expires_in":1,"access_token":"x"}"#,
            "token_type",
        ),
        (
            r#"{"token_type":"Bearer","expires_in":true,"access_token":"x"}"#,
            "expires_in",
        ),
        (
            r#"{"token_type":"Bearer","expires_in":-1,"access_token":"x"}"#,
            "expires_in",
        ),
        (
            r#"{"token_type":"Bearer","expires_in":1.5,"access_token":"x"}"#,
            "expires_in",
        ),
        (
            r#"{"token_type":"Bearer","expires_in":{},"access_token":"x"}"#,
            "expires_in",
        ),
        (
            r#"{"token_type":"Bearer","expires_in":1,"access_token":7}"#,
            "access_token",
        ),
        (
            r#"{"token_type":"Bearer","expires_in":1,"access_token":null}"#,
            "access_token",
        ),
        (r#"[]"#, ""),
    ];
    let presences = [
        (r#"{"value":{}}"#, "value"),
        (r#"{"value":[{"id":5}]}"#, "value[0].id"),
        (
            r#"{"value":[{"id":"a","availability":1}]}"#,
            "value[0].availability",
        ),
        (
            r#"{"value":[{"id":"a","activity":[]}]}"#,
            "value[0].activity",
        ),
        (
            r#"{"value":[{"id":"a","statusMessage":"x"}]}"#,
            "value[0].statusMessage",
        ),
        (
            r#"{"value":[{"id":"a","statusMessage":{"message":1}}]}"#,
            "value[0].statusMessage.message",
        ),
        (
            r#"{"value":[{"id":"a","statusMessage":{"message":{"content":false}}}]}"#,
            "value[0].statusMessage.message.content",
        ),
        (
            r#"{"value":[{"id":"a","sequenceNumber":9}]}"#,
            "value[0].sequenceNumber",
        ),
        (r#"{"value":null}"#, "value"),
    ];
    let users = [(r#"{"id":[]}"#, "id"), (r#"{"id":null}"#, "id")];
    let graph_errors = [
        (r#"{"error":"x"}"#, "error"),
        (r#"{"error":{"code":1}}"#, "error.code"),
        (r#"{"error":{"message":{}}}"#, "error.message"),
        (
            r#"{"error":{"innerError":{"request-id":5}}}"#,
            "error.innerError.request-id",
        ),
    ];
    let entra_errors = [
        (r#"{"error":1}"#, "error"),
        (r#"{"error_description":[]}"#, "error_description"),
        (r#"{"error_codes":"7000215"}"#, "error_codes"),
        (r#"{"error_codes":[-1]}"#, "error_codes[0]"),
        (r#"{"trace_id":1}"#, "trace_id"),
        (r#"{"correlation_id":true}"#, "correlation_id"),
    ];
    let (_, peak, _) = measure("wrong types in every field (29 answers)", || {
        let check = |what: &str, path: &str, result: Result<(), wire::WireError>| {
            let err = result.expect_err(path);
            let text = err.to_string();
            assert!(text.contains(what), "{text}");
            if !path.is_empty() {
                assert!(
                    text.contains(&format!("`{path}`")) || text.contains(path),
                    "`{path}` not named: {text}"
                );
            }
            assert!(!text.contains(TOKEN));
        };
        for (body, path) in token {
            check(
                "token answer",
                path,
                wire::parse_token(body.as_bytes()).map(drop),
            );
        }
        for (body, path) in presences {
            check(
                "getPresencesByUserId answer",
                path,
                wire::parse_presences(body.as_bytes()).map(drop),
            );
        }
        for (body, path) in users {
            check(
                "users answer",
                path,
                wire::parse_user(body.as_bytes()).map(drop),
            );
        }
        for (body, path) in graph_errors {
            check(
                "Graph error answer",
                path,
                wire::parse_graph_error(body.as_bytes()).map(drop),
            );
        }
        for (body, path) in entra_errors {
            check(
                "Entra error answer",
                path,
                wire::parse_entra_error(body.as_bytes()).map(drop),
            );
        }
    });
    assert!(peak < 64 * KIB, "{peak} bytes");
}

/// Subscribes `users`, lets the gathering pass, and returns the poll requests.
fn subscribe(core: &mut GraphCore, users: &[UserId], now: &mut Instant) -> Vec<HttpRequest> {
    core.subscribe(users, *now);
    *now += Duration::from_millis(100);
    core.handle_timeout(*now);
    requests(core)
        .into_iter()
        .filter(|r| r.kind == RequestKind::Read)
        .collect()
}

fn item(id: &str, availability: &str, seq: &str) -> String {
    format!(
        r#"{{"id":"{id}","availability":"{availability}","activity":"{availability}","sequenceNumber":"{seq}"}}"#
    )
}

fn presences_of(events: Vec<Event>) -> Vec<(UserId, u64)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Transport(TransportEvent::Presence(update)) => {
                Some((update.user, update.raw_availability))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_presence_batch_speaks_only_for_the_users_it_asked_about() {
    let _serial = serial();
    let mut now = Instant::now();
    let mut core = connected(now);
    // 651 users: two batches (650 ids at most per read).
    let users: Vec<UserId> = (1..=651).map(user).collect();
    let polls = subscribe(&mut core, &users, &mut now);
    assert_eq!(polls.len(), 2, "{polls:?}");
    let asked = |r: &HttpRequest| String::from_utf8_lossy(&r.body).into_owned();
    let (first, second) = if asked(&polls[0]).contains(&guid(651)) {
        (&polls[1], &polls[0])
    } else {
        (&polls[0], &polls[1])
    };
    assert!(asked(second).contains(&guid(651)));
    assert!(!asked(first).contains(&guid(651)));

    // The first batch's answer also claims user 651 (asked in the other batch) with a
    // sequence number from the far future, and 10,000 ids nobody asked for.
    let mut items: Vec<String> = (1..=650)
        .map(|n| item(&guid(n), "Available", "A1"))
        .collect();
    items.push(item(&guid(651), "DoNotDisturb", "ZZZZZZZZ"));
    items.extend((10_000..20_000).map(|n| item(&guid(n), "Busy", "ZZZZZZZZ")));
    let body = format!(r#"{{"value":[{}]}}"#, items.join(","));
    let (_, peak, _) = measure("presence batch with 10,001 ids never asked for", || {
        core.handle_response(first.id, HttpResponse::new(200, body.as_bytes()), now);
    });
    let seen = presences_of(events(&mut core));
    assert_eq!(seen.len(), 650, "only the users asked for are reported");
    assert!(
        seen.iter().all(|(u, _)| *u != user(651)),
        "{:?}",
        seen.last()
    );
    assert!(
        peak < 8 * body.len(),
        "{peak} bytes for {} bytes",
        body.len()
    );

    // The second batch's real answer for user 651 is taken.
    let body = format!(r#"{{"value":[{}]}}"#, item(&guid(651), "Busy", "A1"));
    core.handle_response(second.id, HttpResponse::new(200, body), now);
    assert_eq!(presences_of(events(&mut core)), vec![(user(651), 6500)]);
}

#[test]
fn ten_megabytes_of_json_are_refused_and_polling_carries_on() {
    let _serial = serial();
    let mut now = Instant::now();
    let mut core = connected(now);
    let [poll] = subscribe(&mut core, &[user(1)], &mut now)
        .try_into()
        .unwrap();
    // Valid JSON, 10 MB: refused by its size, before it is parsed.
    let mut huge = String::from(r#"{"value":["#);
    while huge.len() < 10 * MIB {
        huge.push_str(&item(&guid(2), "Busy", "A1"));
        huge.push(',');
    }
    huge.push_str(&item(&guid(1), "Busy", "A1"));
    huge.push_str("]}");
    let answer = HttpResponse::new(200, huge.as_bytes());
    let (_, peak, _) = measure("10 MB of JSON (core)", || {
        core.handle_response(poll.id, answer, now);
    });
    let seen = events(&mut core);
    assert!(
        seen.iter().any(|e| matches!(e, Event::Warning { message } if message.contains(&format!("larger than {MAX_BODY} bytes")))),
        "{seen:?}"
    );
    assert!(peak < 64 * KIB, "{peak} bytes");

    // The parser alone (the core never hands it more than MAX_BODY), on 10 MB of valid
    // and of nested JSON: refused or read within a few times the input.
    let (result, peak, _) = measure("10 MB of JSON (parser)", || {
        wire::parse_presences(huge.as_bytes())
    });
    assert!(result.unwrap().len() > 50_000);
    assert!(peak < 3 * huge.len(), "{peak} bytes for {}", huge.len());
    let deep = format!(
        r#"{{"value":[{{"id":"a","extension":{}"#,
        "[".repeat(10 * MIB)
    );
    let (result, peak, _) = measure("10 MB of nested arrays (parser)", || {
        wire::parse_presences(deep.as_bytes())
    });
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("at `value[0].extension`"),
        "{err:.300}"
    );
    assert!(err.to_string().len() < 1024, "{err:.300}");
    assert!(peak < 3 * deep.len(), "{peak} bytes for {}", deep.len());

    // The poll comes again after its back-off and is served.
    let due = core.poll_timeout().expect("a poll is due");
    now = due.max(now + Duration::from_secs(6));
    core.handle_timeout(now);
    let polls: Vec<HttpRequest> = requests(&mut core)
        .into_iter()
        .filter(|r| r.kind == RequestKind::Read)
        .collect();
    let [poll] = polls.try_into().unwrap();
    let body = format!(r#"{{"value":[{}]}}"#, item(&guid(1), "Busy", "A2"));
    core.handle_response(poll.id, HttpResponse::new(200, body), now);
    assert_eq!(presences_of(events(&mut core)), vec![(user(1), 6500)]);
}
