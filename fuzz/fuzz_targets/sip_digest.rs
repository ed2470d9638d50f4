//! Arbitrary bytes as SIP digest challenges (`WWW-Authenticate` / `Proxy-Authenticate`
//! values, one or one per line), answered and read back: never a panic. Shares its body with
//! the proptests of crates/presence-simple/src/digest.rs
//! (`presence_simple::digest::fuzz_challenge`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_simple::digest::fuzz_challenge(data);
});
