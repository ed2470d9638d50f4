//! End-to-end tests of the real `presence-bridge` binary: one test binary, one module per
//! area, shared helpers in `support`.

mod check;
mod daemon;
mod ha;
mod harness;
mod secrets;
mod simple;
mod support;
mod teams;
mod tidy;
