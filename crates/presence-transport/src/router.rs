//! The routing layer: one [`PresenceTransport`] in front of several, sending each user to the
//! transport of its platform.

use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use presence_model::{Platform, Publication, UserId};

use crate::{PresenceTransport, TransportError, TransportStatus};

/// Sends each call to the transport serving the user's [`Platform`]; a user of a platform
/// no transport serves gets [`TransportError::Unsupported`]. The transports report into
/// one shared event channel (give each a clone of the same
/// [`EventSender`](crate::EventSender)), so the engine sees one port and one stream.
///
/// ```
/// use std::sync::Arc;
/// use presence_model::{Platform, UserId};
/// use presence_transport::{event_channel, MemoryTransport, PresenceTransport, Router};
///
/// let (events, _receiver) = event_channel();
/// let sfb = MemoryTransport::with_events(Platform::sfb(), events.clone());
/// let teams = MemoryTransport::with_events(Platform::teams(), events);
/// let router = Router::new()
///     .with(Platform::sfb(), Arc::new(sfb))
///     .with(Platform::teams(), Arc::new(teams));
/// assert_eq!(router.platforms().count(), 2);
/// assert_eq!(router.status().len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct Router {
    routes: BTreeMap<Platform, Arc<dyn PresenceTransport>>,
}

impl Router {
    /// A router with no transport.
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds (or replaces) the transport serving `platform`.
    pub fn with(mut self, platform: Platform, transport: Arc<dyn PresenceTransport>) -> Self {
        self.routes.insert(platform, transport);
        self
    }

    /// The platforms served, in name order.
    pub fn platforms(&self) -> impl Iterator<Item = &Platform> {
        self.routes.keys()
    }

    /// The transport serving `platform`.
    pub fn get(&self, platform: &Platform) -> Option<&Arc<dyn PresenceTransport>> {
        self.routes.get(platform)
    }

    fn route(&self, user: &UserId) -> Result<&Arc<dyn PresenceTransport>, TransportError> {
        self.routes
            .get(user.platform())
            .ok_or_else(|| self.unrouted(user))
    }

    fn unrouted(&self, user: &UserId) -> TransportError {
        TransportError::Unsupported {
            user: user.clone(),
            reason: format!(
                "no transport serves platform `{}` (configured: {})",
                user.platform(),
                self.names()
            ),
        }
    }

    fn names(&self) -> String {
        if self.routes.is_empty() {
            return "none".to_owned();
        }
        self.routes
            .keys()
            .map(Platform::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Users grouped by platform, in the order they were given within each group.
    fn groups(&self, users: &[UserId]) -> Result<BTreeMap<&Platform, Vec<UserId>>, TransportError> {
        let mut groups: BTreeMap<&Platform, Vec<UserId>> = BTreeMap::new();
        for user in users {
            let (platform, _) = self
                .routes
                .get_key_value(user.platform())
                .ok_or_else(|| self.unrouted(user))?;
            groups.entry(platform).or_default().push(user.clone());
        }
        Ok(groups)
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("platforms", &self.names())
            .finish()
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs futures concurrently and collects their outputs in order (no runtime needed).
async fn join_all<T>(futures: Vec<Boxed<'_, T>>) -> Vec<T> {
    let mut slots: Vec<(Option<Boxed<'_, T>>, Option<T>)> =
        futures.into_iter().map(|f| (Some(f), None)).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in &mut slots {
            if let Some(f) = future {
                match f.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *future = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().filter_map(|(_, output)| output).collect()
}

#[async_trait::async_trait]
impl PresenceTransport for Router {
    async fn publish(
        &self,
        user: &UserId,
        publication: &Publication,
    ) -> Result<(), TransportError> {
        self.route(user)?.publish(user, publication).await
    }

    async fn unpublish(&self, user: &UserId) -> Result<(), TransportError> {
        self.route(user)?.unpublish(user).await
    }

    /// Subscribes each platform's users on its transport; the first error is returned
    /// after every transport was asked.
    async fn subscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        let groups = self.groups(users)?;
        let calls: Vec<Boxed<'_, _>> = groups
            .iter()
            .map(|(platform, users)| {
                let transport = &self.routes[*platform];
                Box::pin(transport.subscribe(users)) as Boxed<'_, _>
            })
            .collect();
        join_all(calls).await.into_iter().collect()
    }

    async fn unsubscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        let groups = self.groups(users)?;
        let calls: Vec<Boxed<'_, _>> = groups
            .iter()
            .map(|(platform, users)| {
                let transport = &self.routes[*platform];
                Box::pin(transport.unsubscribe(users)) as Boxed<'_, _>
            })
            .collect();
        join_all(calls).await.into_iter().collect()
    }

    fn status(&self) -> Vec<TransportStatus> {
        self.routes.values().flat_map(|t| t.status()).collect()
    }

    /// Shuts every transport down at once (each gets the whole `grace`).
    async fn shutdown(&self, grace: Duration) {
        let calls: Vec<Boxed<'_, ()>> = self
            .routes
            .values()
            .map(|t| Box::pin(t.shutdown(grace)) as Boxed<'_, ()>)
            .collect();
        join_all(calls).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_on;
    use crate::{MemoryTransport, TransportEvent, event_channel};
    use presence_model::{Activities, AggregatedStateId, Availability, Presence};

    #[test]
    fn routes_by_platform() {
        let (events, mut rx) = event_channel();
        let sfb = MemoryTransport::with_events(Platform::sfb(), events.clone());
        let teams = MemoryTransport::with_events(Platform::teams(), events);
        sfb.connect();
        teams.connect();
        let router = Router::new()
            .with(Platform::sfb(), Arc::new(sfb.clone()))
            .with(Platform::teams(), Arc::new(teams.clone()));
        let a = UserId::sip(Platform::sfb(), "sip:a@x".parse().unwrap());
        let b = UserId::new(
            Platform::teams(),
            presence_model::UserAddress::Upn("b@x".parse().unwrap()),
        );
        let p = Publication {
            id: AggregatedStateId::new("S").unwrap(),
            presence: Presence {
                availability: Availability::new(3500).unwrap(),
                activities: Activities::empty(),
            },
        };
        block_on(router.publish(&a, &p)).unwrap();
        block_on(router.publish(&b, &p)).unwrap();
        assert!(sfb.shows(&a).is_some() && sfb.shows(&b).is_none());
        assert!(teams.shows(&b).is_some() && teams.shows(&a).is_none());
        block_on(router.subscribe(&[a.clone(), b.clone()])).unwrap();
        assert_eq!(sfb.subscriptions(), vec![a.clone()]);
        assert_eq!(teams.subscriptions(), vec![b]);
        let other = UserId::sip(Platform::simple(), "sip:c@x".parse().unwrap());
        let err = block_on(router.publish(&other, &p))
            .unwrap_err()
            .to_string();
        assert!(err.contains("configured: sfb, teams"), "{err}");
        assert!(block_on(router.subscribe(&[a, other])).is_err());
        assert_eq!(router.status().len(), 2);
        block_on(router.shutdown(Duration::ZERO));
        assert!(router.status().iter().all(|s| !s.connected));
        let connected = std::iter::from_fn(|| rx.try_recv())
            .filter(|e| matches!(e, TransportEvent::Connected { .. }))
            .count();
        assert_eq!(connected, 2);
    }
}
