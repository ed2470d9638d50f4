//! Routing the engine's events to the right connection's queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use presence_tlib::{ClientId, ClientSink, ServerEvent};
use tokio::sync::{Notify, mpsc};

/// One live connection as the sink sees it.
#[derive(Debug)]
pub(crate) struct Route {
    /// The connection's outbound queue.
    pub(crate) queue: mpsc::Sender<ServerEvent>,
    /// Woken when the client fell behind: the connection ends itself.
    pub(crate) kick: Arc<Notify>,
}

/// The live connections by client.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    routes: Mutex<HashMap<ClientId, Route>>,
}

impl Routes {
    fn lock(&self) -> MutexGuard<'_, HashMap<ClientId, Route>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, client: ClientId, route: Route) {
        self.lock().insert(client, route);
    }

    pub(crate) fn remove(&self, client: ClientId) {
        self.lock().remove(&client);
    }

    /// The number of connections with a route.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The link's [`ClientSink`]: routes each event to its client's outbound queue.
///
/// `send` never waits. An event for a client that has gone is dropped (logged at debug
/// level). When a client's queue is full — it reads slower than the bridge sends — the
/// client is disconnected (logged at warn level) and the event dropped; other clients and
/// the caller are not slowed down.
#[derive(Clone, Debug)]
pub struct CtiSink {
    routes: Arc<Routes>,
}

impl CtiSink {
    pub(crate) fn new(routes: Arc<Routes>) -> Self {
        CtiSink { routes }
    }

    /// The number of clients connected now.
    pub fn connected(&self) -> usize {
        self.routes.len()
    }
}

impl ClientSink for CtiSink {
    fn send(&self, client: ClientId, event: ServerEvent) {
        let mut routes = self.routes.lock();
        let Some(route) = routes.get(&client) else {
            tracing::debug!(%client, event = event.name(), "event for a client that has gone: dropped");
            return;
        };
        match route.queue.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                tracing::warn!(
                    %client,
                    queue = route.queue.max_capacity(),
                    dropped = event.name(),
                    "contact-centre client fell behind (its outbound queue is full): disconnecting it"
                );
                route.kick.notify_one();
                routes.remove(&client);
            }
            Err(mpsc::error::TrySendError::Closed(event)) => {
                tracing::debug!(%client, event = event.name(), "event for a client that is closing: dropped");
                routes.remove(&client);
            }
        }
    }
}
