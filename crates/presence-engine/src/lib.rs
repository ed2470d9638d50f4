//! # presence-engine
//!
//! The bridge's engine: it keeps, per Extension DN, the agent state and work mode, the calls
//! on the DN, whether the DN is out of service, the profile in force and where it came from;
//! and it runs both directions of SPEC §4–§5:
//!
//! - **push**: every change of (agent state, device state) maps through the DN's push table
//!   to a publication, handed to a [`Publisher`](presence_push::Publisher) that keeps one
//!   publication per user in flight and sends only the latest (coalescing under a slow
//!   transport), with retries and back-off;
//! - **pull**: every presence update from the transport maps through the DN's pull mapper to
//!   a DND state; a change goes to every contact-centre client registered on the DN as
//!   `EventDNDOn` / `EventDNDOff`.
//!
//! Profiles are resolved at login (login > DN > application, with a refused login-level name
//! reported in the login's answer) and again at logout and on reload; a DN whose mode
//! changes is unsubscribed / subscribed and removed from / added to the publisher.
//!
//! **Resync**: on every `Connected` event of the transport, every push user's current state
//! is due again and every pull user is subscribed again; the first presence update after
//! that always produces a DND event.
//!
//! **Reload**: [`EngineHandle::reload`] swaps in a new, already validated configuration; every
//! DN is re-resolved (mode changes included) without a restart, and publications whose
//! entry changed are sent again.
//!
//! The engine knows the presence transport only as a
//! [`PresenceTransport`](presence_transport::PresenceTransport) and the contact-centre link
//! only as a [`ClientSink`](presence_tlib::ClientSink) plus a channel of
//! [`LinkInput`](presence_tlib::LinkInput)s; it is tested with mocks of both and tokio's
//! paused clock.
//!
//! ```
//! use std::sync::Arc;
//! use presence_engine::{Engine, EngineConfig, EngineOptions};
//! use presence_tlib::MemorySink;
//! use presence_transport::MemoryTransport;
//! # fn config() -> presence_config::Config {
//! #     let text = "[dn.P]\ntype = \"VoIPService\"\nannex.TServer = { service-type = \"presence-profile\", map-presence-to-dnd = \"true\" }\n";
//! #     let source = presence_config::Source { path: std::path::Path::new("b.toml"), text };
//! #     presence_config::load::<presence_config::NoSections>(&source, &Default::default(), &mut |_| Err(std::io::ErrorKind::NotFound.into())).unwrap().config
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (transport, events) = MemoryTransport::new();
//! let sink = Arc::new(MemorySink::new());
//! let (link_tx, link_rx) = tokio::sync::mpsc::channel(64);
//! let (engine, handle) = Engine::new(
//!     EngineConfig::new(config()).unwrap(),
//!     Arc::new(transport),
//!     Arc::clone(&sink),
//!     EngineOptions::default(),
//! );
//! let running = tokio::spawn(engine.run(link_rx, events));
//! drop(link_tx);
//! handle.shutdown(std::time::Duration::from_secs(1)).await;
//! running.await.unwrap();
//! # }
//! ```
#![deny(missing_docs)]

mod compiled;
mod engine;
pub mod metric;
mod state;

use std::time::Duration;

use presence_push::PublisherConfig;
use tokio::sync::{mpsc, oneshot};

pub use compiled::EngineConfig;
pub use engine::Engine;
pub use state::DnView;

/// Tuning of the engine.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    /// Publications handed to the transport at once (default 512).
    pub max_in_flight: usize,
    /// Retry timing of failed publications (default 1 s doubling to 60 s).
    pub retry: PublisherConfig,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_in_flight: 512,
            retry: PublisherConfig::default(),
        }
    }
}

/// What a reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// Extension DNs in the new configuration.
    pub dns: usize,
    /// DNs added.
    pub added: usize,
    /// DNs removed.
    pub removed: usize,
    /// DNs whose profile or mode changed.
    pub reassigned: usize,
}

/// Counters of the engine's state, for metrics and the admin API.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Extension DNs known.
    pub dns: usize,
    /// DNs in push mode.
    pub push: usize,
    /// DNs in pull mode.
    pub pull: usize,
    /// Connected contact-centre clients.
    pub clients: usize,
    /// Publications handed to the transport and not yet settled.
    pub publications_in_flight: usize,
    /// Users with a publication due but not yet handed out.
    pub publications_queued: usize,
    /// Whether the transport is connected.
    pub transport_connected: bool,
}

/// Why the engine cannot do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A push profile does not compile (an ID missing from its map).
    #[error(transparent)]
    Push(#[from] presence_push::PushError),
    /// The engine has stopped.
    #[error("the engine has stopped")]
    Stopped,
}

pub(crate) enum Control {
    Reload(Box<EngineConfig>, oneshot::Sender<ReloadReport>),
    Dn(String, oneshot::Sender<Option<DnView>>),
    Stats(oneshot::Sender<EngineStats>),
    Shutdown(Duration, oneshot::Sender<()>),
}

/// Talks to a running [`Engine`]: reload, queries, shutdown. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    tx: mpsc::Sender<Control>,
}

impl EngineHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Result<T, EngineError> {
        let (reply, wait) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| EngineError::Stopped)?;
        wait.await.map_err(|_| EngineError::Stopped)
    }

    /// Applies a new configuration (validated by the caller) to every DN.
    pub async fn reload(&self, config: EngineConfig) -> Result<ReloadReport, EngineError> {
        self.ask(|reply| Control::Reload(Box::new(config), reply))
            .await
    }

    /// The state of one DN.
    pub async fn dn(&self, dn: &str) -> Result<Option<DnView>, EngineError> {
        self.ask(|reply| Control::Dn(dn.to_owned(), reply)).await
    }

    /// Counters.
    pub async fn stats(&self) -> Result<EngineStats, EngineError> {
        self.ask(Control::Stats).await
    }

    /// Stops taking contact-centre input, sends the publications that are due and waits
    /// for them (at most `grace`), then stops the engine.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.ask(|reply| Control::Shutdown(grace, reply)).await;
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Control::Reload(..) => "Reload",
            Control::Dn(..) => "Dn",
            Control::Stats(..) => "Stats",
            Control::Shutdown(..) => "Shutdown",
        })
    }
}
