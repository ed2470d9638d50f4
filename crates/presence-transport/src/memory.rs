//! An in-memory transport for tests and examples.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use presence_model::{Platform, Publication, UserId};

use crate::{
    EventReceiver, EventSender, PresenceTransport, PresenceUpdate, TransportError, TransportEvent,
    TransportStatus, event_channel,
};

/// A [`PresenceTransport`] that keeps everything in memory: what each user shows, every
/// accepted publication in order, the subscription set. Tests drive its connection
/// ([`connect`](Self::connect), [`disconnect`](Self::disconnect)), change users' presence
/// ([`set_user_presence`](Self::set_user_presence)) and inject failures
/// ([`fail_next_publish`](Self::fail_next_publish)).
///
/// It serves one platform and refuses users of others. It starts disconnected; connecting
/// grants [`MemoryTransport::DEFAULT_WINDOW`] credit ([`set_window`](Self::set_window) to change it) and
/// every settled publication grants one more. Clones share the same state.
#[derive(Clone)]
pub struct MemoryTransport {
    platform: Platform,
    inner: Arc<Mutex<Inner>>,
    events: EventSender,
}

#[derive(Default)]
struct Inner {
    connected: bool,
    shut_down: bool,
    window: Option<u32>,
    shows: HashMap<UserId, Publication>,
    log: Vec<(UserId, Option<Publication>)>,
    subscribed: BTreeSet<UserId>,
    failures: VecDeque<TransportError>,
}

impl MemoryTransport {
    /// The credit granted on connecting, unless [`set_window`](Self::set_window) says
    /// otherwise.
    pub const DEFAULT_WINDOW: u32 = 64;

    /// A disconnected transport for `platform` and the receiver of its events.
    pub fn new(platform: Platform) -> (Self, EventReceiver) {
        let (events, receiver) = event_channel();
        (Self::with_events(platform, events), receiver)
    }

    /// A disconnected transport for `platform` that reports into an existing channel
    /// (shared with other transports).
    pub fn with_events(platform: Platform, events: EventSender) -> Self {
        MemoryTransport {
            platform,
            inner: Arc::new(Mutex::new(Inner::default())),
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The credit granted on each connection.
    pub fn set_window(&self, window: u32) {
        self.lock().window = Some(window);
    }

    /// Connects and reports [`TransportEvent::Connected`], then the subscriptions it makes
    /// again as [`TransportEvent::Subscribed`].
    pub fn connect(&self) {
        let (credit, users) = {
            let mut inner = self.lock();
            inner.connected = true;
            let users: Vec<UserId> = inner.subscribed.iter().cloned().collect();
            (inner.window.unwrap_or(Self::DEFAULT_WINDOW), users)
        };
        self.events.send(TransportEvent::Connected {
            platform: self.platform.clone(),
            peer: "memory".to_owned(),
            credit,
        });
        if !users.is_empty() {
            self.events.send(TransportEvent::Subscribed { users });
        }
    }

    /// Disconnects and reports [`TransportEvent::Disconnected`]. The platform keeps what
    /// users show; the subscription set is kept too (it is made again on connecting).
    pub fn disconnect(&self, reason: &str) {
        self.lock().connected = false;
        self.events.send(TransportEvent::Disconnected {
            platform: self.platform.clone(),
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
    pub fn shows(&self, user: &UserId) -> Option<Publication> {
        self.lock().shows.get(user).cloned()
    }

    /// Every accepted publication (`Some`) and removal (`None`), oldest first.
    pub fn publications(&self) -> Vec<(UserId, Option<Publication>)> {
        self.lock().log.clone()
    }

    /// The current subscription set, sorted.
    pub fn subscriptions(&self) -> Vec<UserId> {
        self.lock().subscribed.iter().cloned().collect()
    }

    /// Sets a user's presence as if the user had changed it in their own client; a
    /// [`TransportEvent::Presence`] follows when the user is subscribed and the transport
    /// connected.
    pub fn set_user_presence(&self, user: &UserId, raw_availability: u64, activity: Option<&str>) {
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

    /// Refuses users of other platforms.
    fn check(&self, user: &UserId) -> Result<(), TransportError> {
        TransportError::ensure_platform(&self.platform, user)
    }

    fn gate(&self, inner: &Inner) -> Result<(), TransportError> {
        if inner.shut_down {
            Err(TransportError::Shutdown)
        } else if !inner.connected {
            Err(TransportError::NotConnected)
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl PresenceTransport for MemoryTransport {
    async fn publish(
        &self,
        user: &UserId,
        publication: &Publication,
    ) -> Result<(), TransportError> {
        let result = {
            let mut inner = self.lock();
            self.gate(&inner)?;
            self.check(user)
                .and_then(|()| match inner.failures.pop_front() {
                    Some(error) => Err(error),
                    None => {
                        inner.shows.insert(user.clone(), publication.clone());
                        inner.log.push((user.clone(), Some(publication.clone())));
                        Ok(())
                    }
                })
        };
        // The publication took a credit on this connection; settled, it gives it back.
        self.events.send(TransportEvent::Credit {
            platform: self.platform.clone(),
            credit: 1,
        });
        result
    }

    async fn unpublish(&self, user: &UserId) -> Result<(), TransportError> {
        self.check(user)?;
        let mut inner = self.lock();
        self.gate(&inner)?;
        if inner.shows.remove(user).is_some() {
            inner.log.push((user.clone(), None));
        }
        Ok(())
    }

    async fn subscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        for user in users {
            self.check(user)?;
        }
        let mut inner = self.lock();
        if inner.shut_down {
            return Err(TransportError::Shutdown);
        }
        let new: Vec<UserId> = users
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

    async fn unsubscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        let mut inner = self.lock();
        for user in users {
            inner.subscribed.remove(user);
        }
        Ok(())
    }

    fn status(&self) -> Vec<TransportStatus> {
        let inner = self.lock();
        vec![TransportStatus {
            platform: self.platform.clone(),
            connected: inner.connected && !inner.shut_down,
            peer: "memory".to_owned(),
            detail: (!inner.connected).then(|| "disconnected".to_owned()),
            publications_in_flight: 0,
        }]
    }

    async fn shutdown(&self, _grace: Duration) {
        let mut inner = self.lock();
        inner.shut_down = true;
        inner.connected = false;
    }
}

impl fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryTransport")
            .field("platform", &self.platform)
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
    use crate::block_on;
    use presence_model::{Activities, AggregatedStateId, Availability, Presence};

    fn user(name: &str) -> UserId {
        UserId::sip(
            Platform::sfb(),
            presence_model::SipUri::new(&format!("sip:{name}@example.com")).unwrap(),
        )
    }

    fn publication(availability: u32) -> Publication {
        Publication {
            id: AggregatedStateId::new("S").unwrap(),
            presence: Presence {
                availability: Availability::new(availability).unwrap(),
                activities: Activities::empty(),
            },
        }
    }

    #[test]
    fn publish_needs_a_connection_and_honours_injected_failures() {
        let (t, mut events) = MemoryTransport::new(Platform::sfb());
        let user = user("a");
        let p = publication(3500);
        assert!(matches!(
            block_on(t.publish(&user, &p)),
            Err(TransportError::NotConnected)
        ));
        t.set_window(2);
        t.connect();
        t.fail_next_publish(TransportError::Timeout);
        assert!(matches!(
            block_on(t.publish(&user, &p)),
            Err(TransportError::Timeout)
        ));
        block_on(t.publish(&user, &p)).unwrap();
        assert_eq!(t.shows(&user), Some(p.clone()));
        assert_eq!(t.publications(), vec![(user.clone(), Some(p))]);
        assert!(matches!(
            events.try_recv(),
            Some(TransportEvent::Connected { credit: 2, .. })
        ));
        // Each settled publication granted one credit, merged while unread.
        assert!(matches!(
            events.try_recv(),
            Some(TransportEvent::Credit { credit: 2, .. })
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
        block_on(t.unpublish(&user)).unwrap();
        assert_eq!(t.shows(&user), None);
        block_on(t.unsubscribe(std::slice::from_ref(&user))).unwrap();
        assert!(t.subscriptions().is_empty());
    }

    #[test]
    fn refuses_other_platforms_and_stops_on_shutdown() {
        let (t, _events) = MemoryTransport::new(Platform::sfb());
        t.connect();
        let other = UserId::sip(Platform::simple(), "sip:a@x".parse().unwrap());
        let err = block_on(t.publish(&other, &publication(3500))).unwrap_err();
        assert!(matches!(err, TransportError::Unsupported { .. }));
        assert!(!err.is_transient());
        assert!(t.status()[0].connected);
        block_on(t.shutdown(Duration::ZERO));
        assert!(!t.status()[0].connected);
        assert!(matches!(
            block_on(t.publish(&user("a"), &publication(3500))),
            Err(TransportError::Shutdown)
        ));
    }

    #[test]
    fn reconnecting_reports_the_subscriptions_again() {
        let (t, mut events) = MemoryTransport::new(Platform::sfb());
        block_on(t.subscribe(&[user("a"), user("b")])).unwrap();
        t.connect();
        let _connected = events.try_recv();
        assert_eq!(
            events.try_recv(),
            Some(TransportEvent::Subscribed {
                users: vec![user("a"), user("b")]
            })
        );
    }
}
