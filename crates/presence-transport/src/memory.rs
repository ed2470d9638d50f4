//! An in-memory transport for tests and examples.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use presence_model::{Presence, SipUri};

use crate::{
    EventReceiver, EventSender, PresenceTransport, PresenceUpdate, TransportError, TransportEvent,
    event_channel,
};

/// A [`PresenceTransport`] that keeps everything in memory: what each user shows, every
/// accepted publication in order, the subscription set. Tests drive its connection
/// ([`connect`](Self::connect), [`disconnect`](Self::disconnect)), change users' presence
/// ([`set_user_presence`](Self::set_user_presence)) and inject failures
/// ([`fail_next_publish`](Self::fail_next_publish)).
///
/// It starts disconnected. Clones share the same state.
#[derive(Clone)]
pub struct MemoryTransport {
    inner: Arc<Mutex<Inner>>,
    events: EventSender,
}

#[derive(Default)]
struct Inner {
    connected: bool,
    shows: HashMap<SipUri, Presence>,
    log: Vec<(SipUri, Presence)>,
    subscribed: BTreeSet<SipUri>,
    failures: VecDeque<TransportError>,
}

impl MemoryTransport {
    /// A disconnected transport and the receiver of its events.
    pub fn new() -> (Self, EventReceiver) {
        let (events, receiver) = event_channel();
        let transport = MemoryTransport {
            inner: Arc::new(Mutex::new(Inner::default())),
            events,
        };
        (transport, receiver)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Connects and reports [`TransportEvent::Connected`].
    pub fn connect(&self) {
        self.lock().connected = true;
        self.events.send(TransportEvent::Connected {
            peer: "memory".to_owned(),
        });
    }

    /// Disconnects and reports [`TransportEvent::Disconnected`]. The service keeps what
    /// users show; the subscription set is kept too (a transport re-subscribes on its own).
    pub fn disconnect(&self, reason: &str) {
        self.lock().connected = false;
        self.events.send(TransportEvent::Disconnected {
            reason: reason.to_owned(),
        });
    }

    /// Whether it is connected.
    pub fn is_connected(&self) -> bool {
        self.lock().connected
    }

    /// Makes the next publications fail with these errors, one each, in order.
    pub fn fail_next_publish(&self, error: TransportError) {
        self.lock().failures.push_back(error);
    }

    /// What `user` shows now (the last accepted publication), if anything.
    pub fn shows(&self, user: &SipUri) -> Option<Presence> {
        self.lock().shows.get(user).cloned()
    }

    /// Every accepted publication, oldest first.
    pub fn publications(&self) -> Vec<(SipUri, Presence)> {
        self.lock().log.clone()
    }

    /// The current subscription set, sorted.
    pub fn subscriptions(&self) -> Vec<SipUri> {
        self.lock().subscribed.iter().cloned().collect()
    }

    /// Sets a user's presence as if the user had changed it in the client; subscribers get a
    /// [`TransportEvent::Presence`] when the user is subscribed and the transport connected.
    pub fn set_user_presence(&self, user: &SipUri, raw_availability: u64, activity: Option<&str>) {
        let inner = self.lock();
        if inner.connected && inner.subscribed.contains(user) {
            drop(inner);
            self.events
                .send(TransportEvent::Presence(PresenceUpdate::new(
                    user.clone(),
                    raw_availability,
                    activity.map(str::to_owned),
                )));
        }
    }
}

impl PresenceTransport for MemoryTransport {
    async fn publish(&self, user: &SipUri, presence: &Presence) -> Result<(), TransportError> {
        let mut inner = self.lock();
        if !inner.connected {
            return Err(TransportError::NotConnected);
        }
        if let Some(error) = inner.failures.pop_front() {
            return Err(error);
        }
        inner.shows.insert(user.clone(), presence.clone());
        inner.log.push((user.clone(), presence.clone()));
        Ok(())
    }

    async fn subscribe(&self, users: &[SipUri]) -> Result<(), TransportError> {
        let mut inner = self.lock();
        let new: Vec<SipUri> = users
            .iter()
            .filter(|u| inner.subscribed.insert((*u).clone()))
            .cloned()
            .collect();
        let connected = inner.connected;
        drop(inner);
        if connected && !new.is_empty() {
            self.events.send(TransportEvent::Subscribed { users: new });
        }
        Ok(())
    }

    async fn unsubscribe(&self, users: &[SipUri]) -> Result<(), TransportError> {
        let mut inner = self.lock();
        for user in users {
            inner.subscribed.remove(user);
        }
        Ok(())
    }
}

impl fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryTransport")
            .field("connected", &inner.connected)
            .field("users", &inner.shows.len())
            .field("publications", &inner.log.len())
            .field("subscriptions", &inner.subscribed.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_model::{Activities, Availability};

    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the memory transport never waits"),
        }
    }

    #[test]
    fn publish_needs_a_connection_and_honours_injected_failures() {
        let (t, mut events) = MemoryTransport::new();
        let user = SipUri::new("sip:a@example.com").unwrap();
        let p = Presence {
            availability: Availability::new(3500).unwrap(),
            activities: Activities::empty(),
        };
        assert!(matches!(
            block_on(t.publish(&user, &p)),
            Err(TransportError::NotConnected)
        ));
        t.connect();
        t.fail_next_publish(TransportError::Timeout);
        assert!(matches!(
            block_on(t.publish(&user, &p)),
            Err(TransportError::Timeout)
        ));
        block_on(t.publish(&user, &p)).unwrap();
        assert_eq!(t.shows(&user), Some(p.clone()));
        assert_eq!(t.publications(), vec![(user.clone(), p)]);
        assert!(matches!(
            events.try_recv(),
            Some(TransportEvent::Connected { .. })
        ));
        // Not subscribed: no event.
        t.set_user_presence(&user, 6500, None);
        assert_eq!(events.try_recv(), None);
        block_on(t.subscribe(std::slice::from_ref(&user))).unwrap();
        assert_eq!(
            events.try_recv(),
            Some(TransportEvent::Subscribed {
                users: vec![user.clone()]
            })
        );
        block_on(t.subscribe(std::slice::from_ref(&user))).unwrap();
        assert_eq!(events.try_recv(), None, "already subscribed");
        t.set_user_presence(&user, 18500, Some("Offline"));
        let Some(TransportEvent::Presence(update)) = events.try_recv() else {
            panic!("expected a presence event")
        };
        assert_eq!(
            (update.availability.get(), update.raw_availability),
            (18000, 18500)
        );
        block_on(t.unsubscribe(std::slice::from_ref(&user))).unwrap();
        assert!(t.subscriptions().is_empty());
    }
}
