//! Integration tests of presence-sfb-sim: the tokio server over loopback TCP and TLS, and
//! the command. One test binary (see `support` for the raw SIP client).

mod cli;
mod support;
mod tcp;
mod tls;
