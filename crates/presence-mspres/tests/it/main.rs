//! Integration tests of presence-mspres, one binary: the protocol skeletons, prefix
//! independence, a batched notification, round trips and "never panics" properties.

mod batch;
mod no_panic;
mod prefixes;
mod roundtrip;
mod skeletons;
mod strategies;
