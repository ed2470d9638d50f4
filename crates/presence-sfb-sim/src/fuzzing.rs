//! The body of the fuzz target `sfb_sim` (in the repository's `fuzz/` folder), also run by
//! this crate's proptests: one function, two callers, so the fuzzer and CI check the same
//! property and cannot drift apart.

use std::time::{Duration, Instant};

use presence_model::SipUri;

use crate::{SimConfig, Simulator};

/// Target `sfb_sim`: a peer of the simulator's sans-IO core sends arbitrary bytes. The
/// first byte picks a chunk size (1..=64), the rest is the stream. The simulator never
/// panics: it answers, or reports a framing error after which the connection is closed;
/// timers far in the future and the event queue run too. `now` is the caller's clock.
pub fn peer_bytes(data: &[u8], now: Instant) {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let size = usize::from(size % 64) + 1;
    let mut sim = Simulator::new(SimConfig::default());
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
}
