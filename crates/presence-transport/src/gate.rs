//! The fencing gate: one [`PresenceTransport`] in front of the transports of the current
//! leadership term, for bridges that run as a hot-standby group (only the leader talks to
//! the presence platforms).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use presence_model::{Platform, Publication, UserId};

use crate::{EventSender, PresenceTransport, TransportError, TransportEvent, TransportStatus};

/// What the [`Gate`] asks before every write: the fencing token of the leadership term in
/// force **now**, or `None` when this node may not write (it is not the leader, or its
/// local deadline passed). An implementation reads its own clock at each call; the gate
/// reads none.
pub trait Fence: Send + Sync {
    /// The token of the term in force now, or `None`.
    fn token(&self) -> Option<u64>;
}

/// The transports of one term.
struct Term {
    token: u64,
    transport: Arc<dyn PresenceTransport>,
    /// Shared with the event senders the term's transports were given.
    open: Arc<AtomicBool>,
}

/// The one owner of "only the leader writes": every write (publish, unpublish, subscribe,
/// unsubscribe) passes through it and is refused with [`TransportError::NotConnected`]
/// unless a term is open **and** the [`Fence`] answers that term's token at the call.
///
/// - [`open`](Self::open) starts a term: the caller's `start` builds the term's transports
///   on an event sender of the gate's (the engine's channel, gated by the term); they
///   connect and report [`TransportEvent::Connected`], on which the engine resyncs
///   (publishes every push user, subscribes every pull user again).
/// - [`close`](Self::close) ends the term at once: later writes are refused, everything
///   the term's transports send afterwards is dropped (no presence update of an old term
///   reaches the engine), the engine is told [`TransportEvent::Disconnected`] for every
///   platform, and the term's transport is handed back for the caller to shut down
///   (dropping its sessions).
///
/// A write that passed the gate was checked against the fence at the call: the fence's
/// owner guarantees that a write checked just before its deadline still completes before
/// any other node can lead (see `presence-ha`'s timing formula). Without a term the gate
/// reports every platform as not connected, with the reason of the last close.
pub struct Gate {
    platforms: Vec<Platform>,
    fence: Arc<dyn Fence>,
    events: EventSender,
    term: Mutex<Option<Term>>,
    /// Why no term is open (the last close's reason).
    closed_because: Mutex<String>,
}

impl Gate {
    /// A closed gate for `platforms`, asking `fence` before every write and reporting into
    /// `events` (the engine's channel).
    pub fn new(platforms: Vec<Platform>, fence: Arc<dyn Fence>, events: EventSender) -> Gate {
        Gate {
            platforms,
            fence,
            events,
            term: Mutex::new(None),
            closed_because: Mutex::new("not the leader yet".to_owned()),
        }
    }

    fn term(&self) -> MutexGuard<'_, Option<Term>> {
        self.term.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the term of `token`: `start` builds its transports on the given sender. An
    /// open term is closed first and its transport returned, for the caller to shut down.
    /// Writes wait while `start` runs (it must not block): a transport that connects at
    /// once reports `Connected`, and the engine's first writes of the new term must find
    /// the term open, not be refused as "not connected" until the next connection.
    ///
    /// # Errors
    /// What `start` returns; the gate stays closed then.
    pub fn open<E>(
        &self,
        token: u64,
        start: impl FnOnce(EventSender) -> Result<Arc<dyn PresenceTransport>, E>,
    ) -> Result<Option<Arc<dyn PresenceTransport>>, E> {
        let mut term = self.term();
        let previous = self.end(term.take(), "a new leadership term began");
        let open = Arc::new(AtomicBool::new(true));
        let transport = match start(self.events.gated(Arc::clone(&open))) {
            Ok(transport) => transport,
            Err(error) => {
                // Whatever `start` began before it failed reports into nothing.
                open.store(false, Ordering::Release);
                return Err(error);
            }
        };
        *term = Some(Term {
            token,
            transport,
            open,
        });
        Ok(previous)
    }

    /// Closes the open term, if any (see the type's documentation); returns its transport.
    pub fn close(&self, reason: &str) -> Option<Arc<dyn PresenceTransport>> {
        let term = self.term().take();
        self.end(term, reason)
    }

    fn end(&self, term: Option<Term>, reason: &str) -> Option<Arc<dyn PresenceTransport>> {
        *self
            .closed_because
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = reason.to_owned();
        let term = term?;
        term.open.store(false, Ordering::Release);
        for platform in &self.platforms {
            self.events.send(TransportEvent::Disconnected {
                platform: platform.clone(),
                reason: reason.to_owned(),
            });
        }
        Some(term.transport)
    }

    /// The token of the open term, if any (whether or not the fence still answers it).
    pub fn token(&self) -> Option<u64> {
        self.term().as_ref().map(|t| t.token)
    }

    /// The term's transport, if a term is open and the fence answers its token now.
    fn writer(&self) -> Result<Arc<dyn PresenceTransport>, TransportError> {
        let term = self.term();
        let term = term.as_ref().ok_or(TransportError::NotConnected)?;
        if self.fence.token() == Some(term.token) {
            Ok(Arc::clone(&term.transport))
        } else {
            Err(TransportError::NotConnected)
        }
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("platforms", &self.platforms)
            .field("term", &self.token())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl PresenceTransport for Gate {
    async fn publish(
        &self,
        user: &UserId,
        publication: &Publication,
    ) -> Result<(), TransportError> {
        self.writer()?.publish(user, publication).await
    }

    async fn unpublish(&self, user: &UserId) -> Result<(), TransportError> {
        self.writer()?.unpublish(user).await
    }

    async fn subscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        self.writer()?.subscribe(users).await
    }

    async fn unsubscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        self.writer()?.unsubscribe(users).await
    }

    fn status(&self) -> Vec<TransportStatus> {
        let transport = self.term().as_ref().map(|t| Arc::clone(&t.transport));
        match transport {
            Some(transport) => transport.status(),
            None => {
                let reason = self
                    .closed_because
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                self.platforms
                    .iter()
                    .map(|platform| TransportStatus {
                        platform: platform.clone(),
                        connected: false,
                        peer: String::new(),
                        detail: Some(reason.clone()),
                        publications_in_flight: 0,
                    })
                    .collect()
            }
        }
    }

    /// Closes the open term and shuts its transport down.
    async fn shutdown(&self, grace: Duration) {
        if let Some(transport) = self.close("shutting down") {
            transport.shutdown(grace).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use presence_model::{Activities, AggregatedStateId, Availability, Presence};

    use super::*;
    use crate::block_on;
    use crate::{MemoryTransport, event_channel};

    /// A fence whose token the test sets (0: none).
    #[derive(Default)]
    struct Manual(AtomicU64);

    impl Fence for Manual {
        fn token(&self) -> Option<u64> {
            Some(self.0.load(Ordering::SeqCst)).filter(|t| *t != 0)
        }
    }

    fn publication() -> Publication {
        Publication {
            id: AggregatedStateId::new("S").unwrap(),
            presence: Presence {
                availability: Availability::new(3500).unwrap(),
                activities: Activities::empty(),
            },
        }
    }

    #[test]
    fn writes_pass_only_while_the_fence_answers_the_open_terms_token() {
        let (events, mut rx) = event_channel();
        let fence = Arc::new(Manual::default());
        let gate = Gate::new(
            vec![Platform::sfb()],
            Arc::clone(&fence) as Arc<dyn Fence>,
            events,
        );
        let user = UserId::sip(Platform::sfb(), "sip:a@x".parse().unwrap());
        // No term: refused, and the platform shows as not connected with the reason.
        assert!(matches!(
            block_on(gate.publish(&user, &publication())),
            Err(TransportError::NotConnected)
        ));
        let status = gate.status();
        assert_eq!(status.len(), 1);
        assert!(!status[0].connected);
        assert_eq!(status[0].detail.as_deref(), Some("not the leader yet"));

        // Term 7 opens; the fence still says nothing: refused.
        let mut term_memory = None;
        let previous = gate
            .open(7, |sender| {
                let memory = MemoryTransport::with_events(Platform::sfb(), sender);
                memory.connect();
                term_memory = Some(memory.clone());
                Ok::<_, TransportError>(Arc::new(memory) as Arc<dyn PresenceTransport>)
            })
            .unwrap();
        assert!(previous.is_none());
        let memory = term_memory.unwrap();
        assert_eq!(gate.token(), Some(7));
        assert!(block_on(gate.publish(&user, &publication())).is_err());
        // The fence answers an older or a newer term's token: refused.
        fence.0.store(6, Ordering::SeqCst);
        assert!(block_on(gate.subscribe(std::slice::from_ref(&user))).is_err());
        fence.0.store(8, Ordering::SeqCst);
        assert!(block_on(gate.unpublish(&user)).is_err());
        // The term's own token: every write passes.
        fence.0.store(7, Ordering::SeqCst);
        block_on(gate.publish(&user, &publication())).unwrap();
        block_on(gate.subscribe(std::slice::from_ref(&user))).unwrap();
        assert_eq!(memory.shows(&user), Some(publication()));
        assert_eq!(memory.subscriptions(), vec![user.clone()]);
        assert!(gate.status()[0].connected);
        let before: Vec<TransportEvent> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert!(
            before
                .iter()
                .any(|e| matches!(e, TransportEvent::Connected { .. })),
            "{before:?}"
        );
        // The fence lapses (the local deadline passed) before the term is closed: refused.
        fence.0.store(0, Ordering::SeqCst);
        assert!(block_on(gate.publish(&user, &publication())).is_err());
        fence.0.store(7, Ordering::SeqCst);

        // Closed: the engine hears Disconnected, the old term's events are dropped, and
        // writes are refused even though the fence answers 7.
        let old = gate.close("leadership lost").expect("the term's transport");
        assert_eq!(old.status()[0].platform, Platform::sfb());
        memory.set_user_presence(&user, 6500, Some("Busy"));
        let after: Vec<TransportEvent> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(
            after,
            vec![TransportEvent::Disconnected {
                platform: Platform::sfb(),
                reason: "leadership lost".to_owned()
            }]
        );
        assert!(block_on(gate.publish(&user, &publication())).is_err());
        assert_eq!(gate.token(), None);
        assert_eq!(
            gate.status()[0].detail.as_deref(),
            Some("leadership lost"),
            "the reason shows while closed"
        );
        assert!(gate.close("again").is_none(), "closing twice is harmless");
    }

    /// The race of a transport that connects at once: the engine's first write of the term
    /// comes while `open` still runs, and must wait for the term rather than fail.
    #[test]
    fn a_write_made_while_the_term_starts_waits_for_it() {
        let (events, _rx) = event_channel();
        let fence = Arc::new(Manual::default());
        fence.0.store(9, Ordering::SeqCst);
        let gate = Arc::new(Gate::new(
            vec![Platform::sfb()],
            Arc::clone(&fence) as Arc<dyn Fence>,
            events,
        ));
        let user = UserId::sip(Platform::sfb(), "sip:a@x".parse().unwrap());
        let mut writer = None;
        gate.open(9, |sender| {
            let memory = MemoryTransport::with_events(Platform::sfb(), sender);
            memory.connect();
            let (gate, user) = (Arc::clone(&gate), user.clone());
            writer = Some(std::thread::spawn(move || {
                block_on(gate.publish(&user, &publication()))
            }));
            // Give the writer time to reach the gate while the term is still starting.
            std::thread::sleep(Duration::from_millis(50));
            Ok::<_, TransportError>(Arc::new(memory) as Arc<dyn PresenceTransport>)
        })
        .unwrap();
        let written = writer.unwrap().join().unwrap();
        assert!(written.is_ok(), "{written:?}");
    }

    #[test]
    fn opening_a_term_hands_back_the_previous_one_and_a_failed_start_leaves_it_closed() {
        let (events, mut rx) = event_channel();
        let fence = Arc::new(Manual::default());
        let gate = Gate::new(
            vec![Platform::sfb(), Platform::teams()],
            Arc::clone(&fence) as Arc<dyn Fence>,
            events,
        );
        let first = |sender| {
            Ok::<_, TransportError>(
                Arc::new(MemoryTransport::with_events(Platform::sfb(), sender))
                    as Arc<dyn PresenceTransport>,
            )
        };
        assert!(gate.open(3, first).unwrap().is_none());
        assert!(gate.open(4, first).unwrap().is_some(), "term 3 handed back");
        let disconnected = std::iter::from_fn(|| rx.try_recv())
            .filter(|e| matches!(e, TransportEvent::Disconnected { .. }))
            .count();
        assert_eq!(disconnected, 2, "one per platform when term 3 closed");
        let mut leaked = None;
        let failed = gate.open(5, |sender| {
            leaked = Some(sender);
            Err(TransportError::Timeout)
        });
        assert!(matches!(failed, Err(TransportError::Timeout)));
        let credit = TransportEvent::Credit {
            platform: Platform::sfb(),
            credit: 1,
        };
        assert!(
            !leaked.unwrap().send(credit),
            "what a failed start began reports into nothing"
        );
        assert!(
            !std::iter::from_fn(|| rx.try_recv())
                .any(|e| matches!(e, TransportEvent::Credit { .. }))
        );
        assert_eq!(gate.token(), None);
        fence.0.store(5, Ordering::SeqCst);
        let user = UserId::sip(Platform::sfb(), "sip:a@x".parse().unwrap());
        assert!(block_on(gate.publish(&user, &publication())).is_err());
        block_on(gate.shutdown(Duration::ZERO));
    }
}
