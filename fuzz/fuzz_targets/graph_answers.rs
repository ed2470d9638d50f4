//! Arbitrary bytes as a Microsoft Graph or Entra answer (token, error bodies, presence
//! batch, user lookup, Retry-After): never a panic. Shares its body with the proptests of
//! crates/presence-graph/src/wire.rs (`presence_graph::wire::fuzz_answers`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_graph::wire::fuzz_answers(data);
});
