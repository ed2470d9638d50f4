//! # presence-cti
//!
//! The bridge's contact-centre link: a WebSocket server at `ws://HOST:PORT/v1/cti` speaking
//! the T-Library-style JSON of [`presence_tlib`], one JSON object per text frame. Clients
//! register DNs, log agents in and out, change agent states and report call and device
//! events; the bridge answers each message and sends `EventDNDOn`/`EventDNDOff` for pull-mode
//! DNs. The protocol is described in `docs/cti-protocol.md`.
//!
//! The engine sees the link only through presence-tlib's port: valid messages and
//! connection changes arrive on a channel of [`LinkInput`](presence_tlib::LinkInput)s, and
//! the engine answers through [`CtiSink`], a
//! [`ClientSink`](presence_tlib::ClientSink) that routes each event to its connection.
//!
//! What the link does on its own, without the engine:
//! - **authentication**: with a `token` configured, the upgrade request must carry
//!   exactly one `Authorization: Bearer <token>` header (scheme in any case; the token
//!   compared in constant time: [`auth::bearer_authorized`], the one check the bridge's
//!   admin API uses too), otherwise HTTP 401 with `WWW-Authenticate: Bearer` (before the
//!   upgrade); listening on a non-loopback address without a token is refused at
//!   [`CtiServer::bind`];
//! - **bad input**: a frame that is not a valid message (malformed JSON, unknown message,
//!   missing attribute, binary frame, ...) is answered with `EventError` (echoing the
//!   `referenceID` when it can be read); the connection carries on;
//! - **size**: a text frame over `max_message_bytes` gets `EventError` 4 and the connection
//!   carries on; a frame over 4 × `max_message_bytes` is not read at all (the WebSocket
//!   layer stops at its header), gets `EventError` 4 and the connection is closed with code
//!   1009, since the rest of that frame cannot be skipped. The link then reads and discards
//!   what the client still sends (at most 16 MiB, for at most 2 s) before closing the socket,
//!   so that the client receives the close frame rather than a reset. Other connections are
//!   unaffected;
//! - **rate**: each connection may send `burst` messages at once and `rate_per_second`
//!   sustained; a message over the limit is dropped and answered `EventError` 5;
//! - **slow clients**: each connection has an outbound queue of `queue` events; a client
//!   that falls further behind is disconnected (close code 1008, a warn log line), so it
//!   never blocks the engine or other clients;
//! - **connections**: at most `max_connections` at once, counted from the moment they are
//!   accepted (one still sending its upgrade request counts too; HTTP 503 beyond); one that
//!   has not sent its whole upgrade request within `handshake_timeout` is closed; pings are
//!   answered with pongs; at shutdown every connection gets a close frame (code 1001). These
//!   rules are the [`listener`]'s, which the bridge's admin API runs on too.
//!
//! Order per client: `Connected`, then its messages in the order received, then
//! `Disconnected`. While the engine's input channel is full, the link stops reading from
//! that client (back-pressure on it alone) but keeps writing its events.
//!
//! ```no_run
//! use presence_cti::{CtiConfig, CtiServer};
//! use presence_tlib::{ClientSink, LinkInput, ServerEvent};
//!
//! # async fn run() -> Result<(), presence_cti::CtiError> {
//! let (inputs, mut received) = tokio::sync::mpsc::channel(1024);
//! let server = CtiServer::bind(CtiConfig::default(), inputs).await?;
//! let sink = server.sink();
//! tokio::spawn(async move {
//!     // A toy engine: acknowledge everything.
//!     while let Some(input) = received.recv().await {
//!         if let LinkInput::Message(client, msg) = input {
//!             sink.send(client, ServerEvent::EventACK { reference_id: msg.reference_id });
//!         }
//!     }
//! });
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! A runnable client session against a server on an ephemeral port:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use futures_util::{SinkExt, StreamExt};
//! use presence_cti::{CtiConfig, CtiServer};
//! use presence_tlib::{ClientSink, LinkInput, ServerEvent};
//! use tokio_tungstenite::tungstenite::Message;
//!
//! let config = CtiConfig { listen: "127.0.0.1:0".parse()?, ..CtiConfig::default() };
//! let (inputs, mut received) = tokio::sync::mpsc::channel(16);
//! let server = CtiServer::bind(config, inputs).await?;
//! let url = format!("ws://{}/v1/cti", server.local_addr());
//! let sink = server.sink();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let serving = tokio::spawn(server.serve(async { let _ = stopped.await; }));
//!
//! let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
//! ws.send(Message::text(r#"{"message":"EventRinging","referenceID":8,"thisDN":"5001","connID":"c1"}"#)).await?;
//! let Some(LinkInput::Connected(client, _)) = received.recv().await else { panic!() };
//! let Some(LinkInput::Message(_, msg)) = received.recv().await else { panic!() };
//! sink.send(client, ServerEvent::EventACK { reference_id: msg.reference_id });
//! let Some(Ok(Message::Text(answer))) = ws.next().await else { panic!() };
//! assert_eq!(answer.as_str(), r#"{"message":"EventACK","referenceID":8}"#);
//!
//! let _ = stop.send(());
//! serving.await??;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod auth;
mod config;
mod connection;
pub mod listener;
mod server;
mod sink;

use std::net::SocketAddr;

pub use config::{CtiConfig, MIN_MESSAGE_BYTES};
pub use server::CtiServer;
pub use sink::CtiSink;

/// The WebSocket endpoint's path.
pub const PATH: &str = "/v1/cti";

/// Why the link cannot start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CtiError {
    /// Listening off loopback without a token.
    #[error(
        "`cti.token` is required when `cti.listen` ({listen}) is not a loopback address: set a bearer token, or listen on 127.0.0.1 or [::1]"
    )]
    TokenRequired {
        /// The configured address.
        listen: SocketAddr,
    },
    /// A setting out of range.
    #[error("`{table}.{option}` = {value} is not valid: expected {expected}")]
    InvalidOption {
        /// The table of the option (`cti`, or `admin` for the admin API's listener).
        table: &'static str,
        /// The option's name in its table.
        option: &'static str,
        /// The value given (`(hidden)` for the token).
        value: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr} (`cti.listen`)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A listener's socket cannot be used (its address cannot be read, or accepting fails
    /// for a reason other than a connection's own or a shortage of file descriptors).
    #[error("the {listener}'s listening socket cannot be used")]
    Serve {
        /// Which listener ("contact-centre link", "admin API").
        listener: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}
