//! Arbitrary bytes, cut into chunks, from a peer of the SfB simulator's sans-IO core: it
//! must never panic; after a framing error the connection is closed. Mirrors the proptest
//! `arbitrary_bytes_never_panic` in crates/presence-sfb-sim/src/simulator/tests.rs.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use presence_model::SipUri;
use presence_sfb_sim::{SimConfig, Simulator};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size (1..=64), the rest is the stream.
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let size = usize::from(size % 64) + 1;
    let mut sim = Simulator::new(SimConfig::default());
    let now = Instant::now();
    if let Ok(user) = SipUri::new("sip:agent1@contoso.com") {
        sim.set_user_presence(&user, 6500, None, now);
    }
    let conn = sim.open(now);
    for chunk in stream.chunks(size) {
        if sim.handle_bytes(conn, chunk, now).is_err() {
            sim.close(conn);
            break;
        }
        while sim.poll_transmit(conn).is_some() {}
    }
    sim.handle_timeout(now + Duration::from_secs(4000));
    while sim.poll_event().is_some() {}
});
