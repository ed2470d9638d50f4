//! Push mapping: (agent, device) -> publication, and the publisher's bookkeeping.
//! `cargo xtask bench push` (target: <= 20 ns to map one event).

use std::sync::Arc;

use divan::{Bencher, black_box};
use presence_map::AgentPresenceMap;
use presence_model::{AgentState, AggregatedStates, DeviceState, StateIndex};
use presence_push::{Publisher, PushTable};

fn main() {
    divan::main();
}

const SEED_STATES: &str = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7=INCALL, 8=INCALL, 9=INCALL, 10=INCALL, 11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS";

fn seed_table() -> PushTable {
    let map = AgentPresenceMap::parse(include_bytes!("../../../examples/agent-states.xml"))
        .expect("the seed map is valid")
        .map;
    let mut states = AggregatedStates::default();
    for item in SEED_STATES.split(", ") {
        let (index, id) = item.split_once('=').expect("K=ID");
        states
            .set(index.parse().expect("index"), id.parse().expect("ID"))
            .expect("each index once");
    }
    PushTable::compile(&states, &map).expect("every ID is in the map")
}

/// Map one (agent, device) event to its publication.
#[divan::bench]
fn map_one_event(bencher: Bencher<'_, '_>) {
    let table = seed_table();
    let mut i = 0usize;
    bencher.bench_local(|| {
        i = (i + 1) % 15;
        let index = StateIndex::ALL[black_box(i)];
        table
            .get(black_box(index.agent()), black_box(index.device()))
            .map(|p| p.presence.availability)
    });
}

/// Map an event and hand it to the publisher, then complete it (the engine's whole
/// per-event path minus I/O), over 10,000 users.
#[divan::bench]
fn map_and_publish(bencher: Bencher<'_, '_>) {
    let table = seed_table();
    let mut publisher: Publisher<u32> = Publisher::new(Default::default());
    let mut i = 0u32;
    bencher.bench_local(|| {
        i = i.wrapping_add(1);
        let user = i % 10_000;
        let agent = AgentState::ALL[(i / 10_000 % 5) as usize];
        let device = DeviceState::ALL[(i / 50_000 % 3) as usize];
        publisher.set(user, table.get(agent, device).map(Arc::clone));
        if let Some((ticket, _)) = publisher.poll_publish() {
            publisher.complete(&ticket);
        }
    });
}
