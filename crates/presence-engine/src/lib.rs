//! # presence-engine
//!
//! The bridge's engine: it keeps, per Extension DN, the agent state and work mode, the calls
//! on the DN, whether the DN is out of service, the profile in force and where it came from,
//! and the DN's user on its platform; and it runs both directions:
//!
//! - **push**: every change of (agent state, device state) maps through the DN's push table
//!   to a publication, handed to the platform's [`Publisher`](presence_push::Publisher),
//!   which owns dedup, coalescing (latest wins, most recent change first), retries and
//!   resync; publications go to the transport only as it grants credit;
//! - **pull**: every presence update from the transport maps through the DN's pull mapper to
//!   a DND state; a change goes to every contact-centre client registered on the DN as
//!   `EventDNDOn` / `EventDNDOff`.
//!
//! Each platform (`sfb`, `teams`, ...) is a *lane* of its own: its connection state, credit,
//! publisher, subscriptions; a Teams outage never holds up SfB users. Profiles are resolved
//! at login (login > DN > application, with a refused login-level name reported in the
//! login's answer) and again at logout and on reload; a DN whose mode changes is
//! unsubscribed / subscribed, and a user that leaves push mode (or moves to another
//! platform, or whose DN is removed) has the bridge's publication ended
//! ([`unpublish`](presence_transport::PresenceTransport::unpublish)) so the platform shows
//! the user's own presence again.
//!
//! **Resync**: on every `Connected` event of a platform, every push user of that platform is
//! due again and every pull user is subscribed again; the first presence update after that
//! always produces a DND event.
//!
//! **Reload**: [`EngineHandle::reload`] swaps in a new, already validated configuration;
//! every DN is re-resolved (mode and platform changes included) without a restart, and
//! publications whose entry changed are sent again.
//!
//! The engine knows the presence transport only as an `Arc<dyn
//! PresenceTransport>` (one, or a [`Router`](presence_transport::Router) over several) and
//! the contact-centre link only as a [`ClientSink`](presence_tlib::ClientSink) plus a channel
//! of [`LinkInput`](presence_tlib::LinkInput)s; it is tested with mocks of both and tokio's
//! paused clock.
//!
//! ```
//! use std::sync::Arc;
//! use presence_config::{Addressing, PlatformSpec};
//! use presence_engine::{Engine, EngineConfig, EngineOptions};
//! use presence_model::Platform;
//! use presence_tlib::MemorySink;
//! use presence_transport::MemoryTransport;
//! # fn config() -> presence_config::Config {
//! #     let text = "[dn.P]\ntype = \"VoIPService\"\nannex.TServer = { service-type = \"presence-profile\", map-presence-to-dnd = \"true\" }\n";
//! #     let source = presence_config::Source { path: std::path::Path::new("b.toml"), text };
//! #     presence_config::load::<presence_config::NoSections>(&source, &Default::default(), &mut |_| Err(std::io::ErrorKind::NotFound.into())).unwrap().config
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let config = config();
//! let users = config
//!     .users(&[PlatformSpec { name: Platform::sfb(), addressing: Addressing::Sip }])
//!     .expect("every DN has a user on sfb");
//! let (transport, events) = MemoryTransport::new(Platform::sfb());
//! let sink = Arc::new(MemorySink::new());
//! let (link_tx, link_rx) = tokio::sync::mpsc::channel(64);
//! let (engine, handle) = Engine::new(
//!     EngineConfig::new(config, users).unwrap(),
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
mod lane;
pub mod metric;
mod state;

use std::time::Duration;

use presence_push::PublisherConfig;
use tokio::sync::{mpsc, oneshot};

pub use compiled::EngineConfig;
pub use engine::{Engine, MAX_CALLS_PER_DN};
pub use presence_config::Users;
pub use state::DnView;

/// Tuning of the engine. How many publications are outstanding is not tuned here: each
/// transport grants credit for what it can take.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineOptions {
    /// Retry timing of failed publications (default 1 s doubling to 60 s, ±20 %).
    pub retry: PublisherConfig,
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
    /// DNs whose user changed: another address, or another platform (what the bridge had
    /// for the old user there was ended).
    pub moved: usize,
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
    /// Whether every platform's transport is connected.
    pub transport_connected: bool,
    /// Per platform.
    pub platforms: Vec<PlatformStats>,
}

/// One platform's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlatformStats {
    /// The platform (`sfb`, `teams`, ...).
    pub platform: String,
    /// Whether its transport is connected.
    pub connected: bool,
    /// Publications its transport can take now.
    pub credit: u64,
    /// Publications handed to it and not yet settled.
    pub publications_in_flight: usize,
    /// Users with a publication due but not yet handed out.
    pub publications_queued: usize,
    /// Push DNs on the platform.
    pub push: usize,
    /// Pull DNs on the platform.
    pub pull: usize,
    /// Users the platform reports it cannot serve.
    pub user_problems: usize,
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
