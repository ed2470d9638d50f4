//! The port between the contact-centre link and the engine.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::{ClientMessage, ServerEvent};

/// One connected contact-centre client, numbered by the link; never reused while the link
/// runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(u64);

impl ClientId {
    /// A client ID from its number.
    pub const fn new(id: u64) -> Self {
        ClientId(id)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client#{}", self.0)
    }
}

/// Where the engine sends events for clients. Implemented by the link (one queue per
/// connection) and by [`MemorySink`] for tests.
///
/// `send` never blocks: it enqueues. An event for a client that is gone is dropped; a client
/// whose queue is full is disconnected by the link (it never slows the engine or other
/// clients down).
pub trait ClientSink: Send + Sync + 'static {
    /// Queues `event` for `client`.
    fn send(&self, client: ClientId, event: ServerEvent);
}

impl<T: ClientSink + ?Sized> ClientSink for Arc<T> {
    fn send(&self, client: ClientId, event: ServerEvent) {
        (**self).send(client, event);
    }
}

/// What the link tells the engine, in order per client: `Connected`, then that client's
/// messages, then `Disconnected`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkInput {
    /// A client connected (with its peer address, for logs).
    Connected(ClientId, String),
    /// A valid message from a client. Invalid ones are answered by the link itself.
    Message(ClientId, ClientMessage),
    /// A client disconnected: its registrations end.
    Disconnected(ClientId),
}

impl LinkInput {
    /// The client the input is about.
    pub fn client(&self) -> ClientId {
        match self {
            LinkInput::Connected(client, _)
            | LinkInput::Message(client, _)
            | LinkInput::Disconnected(client) => *client,
        }
    }
}

/// A [`ClientSink`] that records what it is sent, for tests.
///
/// ```
/// use presence_tlib::{ClientId, ClientSink, MemorySink, ServerEvent};
/// let sink = MemorySink::new();
/// sink.send(ClientId::new(1), ServerEvent::EventACK { reference_id: 7 });
/// assert_eq!(sink.take(), vec![(ClientId::new(1), ServerEvent::EventACK { reference_id: 7 })]);
/// assert!(sink.take().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    sent: Arc<Mutex<Vec<(ClientId, ServerEvent)>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// Everything sent since the last `take`, oldest first.
    pub fn take(&self) -> Vec<(ClientId, ServerEvent)> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The events sent to one client since the last `take`, without removing anything.
    pub fn sent_to(&self, client: ClientId) -> Vec<ServerEvent> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(c, _)| *c == client)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

impl ClientSink for MemorySink {
    fn send(&self, client: ClientId, event: ServerEvent) {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((client, event));
    }
}
