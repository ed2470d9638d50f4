//! CPU cost of the sans-IO core: one poll round of 10,000 subscribed users (16 batch reads
//! answered, JSON parsed, changes reported), and one publication (publish, request built,
//! answer handled, settled).
//!
//! `cargo bench -p presence-graph --bench core`

use std::cell::RefCell;
use std::time::{Duration, Instant};

use presence_graph::core::{CoreConfig, Event, GraphCore, HttpResponse, PublishId, RequestKind};
use presence_graph::settings::Secret;
use presence_model::{
    Activities, AggregatedStateId, Availability, EntraId, Platform, Presence, Publication,
    UserAddress, UserId,
};

fn main() {
    divan::main();
}

const USERS: usize = 10_000;

fn guid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn user(n: usize) -> UserId {
    UserId::new(
        Platform::teams(),
        UserAddress::EntraId(EntraId::new(&guid(n)).expect("a GUID")),
    )
}

struct Rig {
    core: GraphCore,
    now: Instant,
}

fn connected(budget: u32) -> Rig {
    let mut config = CoreConfig::new(
        "https://login.test/t/oauth2/v2.0/token",
        "https://graph.test/v1.0",
        "11111111-2222-3333-4444-555555555555",
        Secret::new("s"),
    );
    config.budget = budget;
    let now = Instant::now();
    let mut core = GraphCore::new(config, 1, now);
    let token = core.poll_request().expect("a token request");
    core.handle_response(
        token.id,
        HttpResponse::new(
            200,
            r#"{"token_type":"Bearer","expires_in":86399,"access_token":"t"}"#,
        ),
        now,
    );
    while core.poll_event().is_some() {}
    Rig { core, now }
}

/// The answers of one round: every user's availability flips when `change` is set.
fn bodies(round: u64, change: bool) -> Vec<Vec<u8>> {
    let availability = if change && round % 2 == 1 {
        "Busy"
    } else {
        "Available"
    };
    let seq = if change { round } else { 1 };
    (0..USERS)
        .collect::<Vec<_>>()
        .chunks(650)
        .map(|chunk| {
            let items: Vec<String> = chunk
                .iter()
                .map(|n| {
                    format!(
                        r#"{{"id":"{}","availability":"{availability}","activity":"{availability}","statusMessage":null,"sequenceNumber":"{seq:020}"}}"#,
                        guid(*n)
                    )
                })
                .collect();
            format!(r#"{{"value":[{}]}}"#, items.join(",")).into_bytes()
        })
        .collect()
}

fn poll_rig() -> RefCell<Rig> {
    let mut rig = connected(1350);
    let users: Vec<UserId> = (0..USERS).map(user).collect();
    rig.core.subscribe(&users, rig.now);
    RefCell::new(rig)
}

/// Runs one poll round with the given answers; returns the presence updates reported.
fn round(rig: &mut Rig, answers: Vec<Vec<u8>>) -> usize {
    rig.now += Duration::from_secs(5);
    rig.core.handle_timeout(rig.now);
    let mut reads = Vec::new();
    while let Some(r) = rig.core.poll_request() {
        if r.kind == RequestKind::Read {
            reads.push(r);
        }
    }
    // The first round after subscribing reads the users in the same batches.
    let mut reported = 0;
    for (read, body) in reads.into_iter().zip(answers.into_iter().cycle()) {
        rig.core
            .handle_response(read.id, HttpResponse::new(200, body), rig.now);
    }
    while let Some(e) = rig.core.poll_event() {
        if matches!(
            e,
            Event::Transport(presence_transport::TransportEvent::Presence(_))
        ) {
            reported += 1;
        }
    }
    reported
}

/// A poll round of 10,000 users whose presence did not change.
#[divan::bench(sample_count = 30)]
fn poll_10000_users_unchanged(bencher: divan::Bencher<'_, '_>) {
    let rig = poll_rig();
    let answers = bodies(1, false);
    round(&mut rig.borrow_mut(), answers.clone());
    bencher
        .with_inputs(|| answers.clone())
        .bench_local_values(|answers| round(&mut rig.borrow_mut(), answers));
}

/// A poll round of 10,000 users who all changed (10,000 updates reported).
#[divan::bench(sample_count = 30)]
fn poll_10000_users_all_changed(bencher: divan::Bencher<'_, '_>) {
    let rig = poll_rig();
    let mut n = 1;
    round(&mut rig.borrow_mut(), bodies(n, true));
    bencher
        .with_inputs(|| {
            n += 1;
            bodies(n, true)
        })
        .bench_local_values(|answers| round(&mut rig.borrow_mut(), answers));
}

/// One publication: publish, the setPresence built, its answer, settled (time advances so
/// the budget always has room).
#[divan::bench(sample_count = 200)]
fn publication(bencher: divan::Bencher<'_, '_>) {
    let rig = RefCell::new(connected(1500));
    let mut n = 0usize;
    let busy = Publication {
        id: AggregatedStateId::new("INCALL").expect("an id"),
        presence: Presence {
            availability: Availability::new(6500).expect("valid"),
            activities: Activities::empty(),
        },
    };
    let ok = HttpResponse::new(200, Vec::new());
    bencher.bench_local(|| {
        let rig = &mut *rig.borrow_mut();
        n += 1;
        rig.now += Duration::from_millis(50);
        rig.core
            .publish(&user(n % USERS), &busy, PublishId(n as u64), rig.now);
        let mut settled = false;
        while let Some(r) = rig.core.poll_request() {
            rig.core.handle_response(r.id, ok.clone(), rig.now);
        }
        while let Some(e) = rig.core.poll_event() {
            settled |= matches!(e, Event::Settled { .. });
        }
        settled
    });
}
