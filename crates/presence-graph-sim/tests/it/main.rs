//! Tests of the server over real loopback sockets (HTTP and HTTPS), and of the command.

mod cli;
mod control;
mod http;
mod https;
mod support;
