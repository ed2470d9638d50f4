//! The event channel from transports to the engine: runtime-independent, multi-producer,
//! single-consumer, merging pending presence updates per user and pending credit per
//! platform.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use presence_model::{Platform, UserId};

use crate::TransportEvent;

/// Creates a connected sender / receiver pair.
///
/// The channel is unbounded for connection events (there are few) and holds at most one
/// pending [`TransportEvent::Presence`] per user: a newer update for a user replaces the
/// one still waiting, in place (latest wins, and the user keeps its place in the order).
/// A [`TransportEvent::Credit`] adds to the platform's pending credit grant, unless a
/// connection event of that platform came after it (credit never crosses a connection).
/// Several transports may share one channel: clone the sender.
pub fn event_channel() -> (EventSender, EventReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            receiver_alive: true,
            senders: 1,
            ..State::default()
        }),
    });
    (
        EventSender {
            shared: Arc::clone(&shared),
            open: None,
        },
        EventReceiver { shared },
    )
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // mutation is a single push/pop/replace), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default)]
struct State {
    /// Events in order; a newer presence update replaces its user's pending one in place.
    queue: VecDeque<TransportEvent>,
    /// Sequence number of `queue[0]`.
    head: u64,
    /// For each user with a pending presence update, the sequence number of its slot.
    pending: HashMap<UserId, u64>,
    /// For each platform with a pending credit grant that may still grow, its slot.
    credits: HashMap<Platform, u64>,
    waker: Option<Waker>,
    receiver_alive: bool,
    senders: usize,
}

/// The transport's half: cheap to clone, usable from any thread.
pub struct EventSender {
    shared: Arc<Shared>,
    /// A sender handed to one leadership term's transports by a [`Gate`](crate::Gate):
    /// once the term is closed, what they send is dropped.
    open: Option<Arc<AtomicBool>>,
}

impl EventSender {
    /// Queues an event; returns `false` when the receiver is gone (the engine stopped), or
    /// when this sender belongs to a [`Gate`](crate::Gate)'s term that was closed (the
    /// event is dropped: nobody reads it).
    pub fn send(&self, event: TransportEvent) -> bool {
        if let Some(open) = &self.open
            && !open.load(Ordering::Acquire)
        {
            return false;
        }
        let mut state = self.shared.lock();
        if !state.receiver_alive {
            return false;
        }
        let seq = state.head + state.queue.len() as u64;
        match &event {
            TransportEvent::Presence(update) => {
                if let Some(&pending) = state.pending.get(&update.user) {
                    let slot = (pending - state.head) as usize;
                    state.queue[slot] = event;
                    return true;
                }
                state.pending.insert(update.user.clone(), seq);
            }
            TransportEvent::Credit { platform, credit } => {
                if let Some(&pending) = state.credits.get(platform) {
                    let slot = (pending - state.head) as usize;
                    if let TransportEvent::Credit { credit: sum, .. } = &mut state.queue[slot] {
                        *sum = sum.saturating_add(*credit);
                        return true;
                    }
                }
                state.credits.insert(platform.clone(), seq);
            }
            TransportEvent::Connected { platform, .. }
            | TransportEvent::Disconnected { platform, .. } => {
                state.credits.remove(platform);
            }
            TransportEvent::Subscribed { .. } | TransportEvent::UserProblem { .. } => {}
        }
        state.queue.push_back(event);
        if let Some(waker) = state.waker.take() {
            drop(state);
            waker.wake();
        }
        true
    }

    /// How many events wait to be read (a gauge for metrics).
    pub fn pending(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// A sender into the same channel whose events are dropped once `open` is `false`
    /// (and its clones': the flag is shared).
    pub(crate) fn gated(&self, open: Arc<AtomicBool>) -> EventSender {
        let mut sender = self.clone();
        sender.open = Some(open);
        sender
    }
}

impl Clone for EventSender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        EventSender {
            shared: Arc::clone(&self.shared),
            open: self.open.clone(),
        }
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        if state.senders == 0
            && let Some(waker) = state.waker.take()
        {
            drop(state);
            waker.wake();
        }
    }
}

impl fmt::Debug for EventSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSender")
            .field("pending", &self.pending())
            .finish()
    }
}

/// The engine's half.
pub struct EventReceiver {
    shared: Arc<Shared>,
}

impl EventReceiver {
    /// The next event, waiting for one; `None` once every sender is gone and the queue is
    /// empty.
    pub async fn recv(&mut self) -> Option<TransportEvent> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<TransportEvent> {
        let mut state = self.shared.lock();
        pop(&mut state)
    }

    /// Polls for the next event (for hand-written futures and select loops).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<TransportEvent>> {
        let mut state = self.shared.lock();
        if let Some(event) = pop(&mut state) {
            return Poll::Ready(Some(event));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// How many events wait to be read.
    pub fn len(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn pop(state: &mut State) -> Option<TransportEvent> {
    let event = state.queue.pop_front()?;
    let seq = state.head;
    state.head += 1;
    match &event {
        TransportEvent::Presence(update) if state.pending.get(&update.user) == Some(&seq) => {
            state.pending.remove(&update.user);
        }
        TransportEvent::Credit { platform, .. } if state.credits.get(platform) == Some(&seq) => {
            state.credits.remove(platform);
        }
        _ => {}
    }
    Some(event)
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_alive = false;
        state.queue.clear();
        state.pending.clear();
        state.credits.clear();
    }
}

impl fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventReceiver")
            .field("pending", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PresenceUpdate;
    use proptest::prelude::*;

    fn user(n: u8) -> UserId {
        UserId::sip(
            Platform::sfb(),
            presence_model::SipUri::new(&format!("sip:user{n}@example.com")).unwrap(),
        )
    }

    fn credit(platform: &str, credit: u32) -> TransportEvent {
        TransportEvent::Credit {
            platform: Platform::new(platform).unwrap(),
            credit,
        }
    }

    fn disconnected(platform: &str) -> TransportEvent {
        TransportEvent::Disconnected {
            platform: Platform::new(platform).unwrap(),
            reason: "x".into(),
        }
    }

    fn presence(n: u8, availability: u64) -> TransportEvent {
        TransportEvent::Presence(PresenceUpdate::new(user(n), availability, None))
    }

    #[test]
    fn presence_updates_merge_per_user_in_place() {
        let (tx, mut rx) = event_channel();
        assert!(tx.send(presence(1, 3500)));
        assert!(tx.send(presence(2, 6500)));
        assert!(tx.send(disconnected("sfb")));
        assert!(tx.send(presence(1, 9500)));
        assert_eq!(rx.len(), 3);
        assert_eq!(rx.try_recv(), Some(presence(1, 9500)));
        assert_eq!(rx.try_recv(), Some(presence(2, 6500)));
        assert!(matches!(
            rx.try_recv(),
            Some(TransportEvent::Disconnected { .. })
        ));
        // Once read, a new update queues anew.
        assert!(tx.send(presence(1, 3500)));
        assert_eq!(rx.try_recv(), Some(presence(1, 3500)));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn credit_merges_per_platform_but_never_across_a_connection_event() {
        let (tx, mut rx) = event_channel();
        tx.send(credit("sfb", 1));
        tx.send(credit("teams", 2));
        tx.send(credit("sfb", 3));
        tx.send(disconnected("teams"));
        tx.send(credit("teams", 4));
        tx.send(credit("teams", 5));
        assert_eq!(rx.try_recv(), Some(credit("sfb", 4)));
        assert_eq!(rx.try_recv(), Some(credit("teams", 2)));
        assert_eq!(rx.try_recv(), Some(disconnected("teams")));
        assert_eq!(rx.try_recv(), Some(credit("teams", 9)));
        assert_eq!(rx.try_recv(), None);
        // Once read, a new grant queues anew.
        tx.send(credit("sfb", 1));
        tx.send(credit("sfb", u32::MAX));
        assert_eq!(rx.try_recv(), Some(credit("sfb", u32::MAX)));
    }

    #[test]
    fn closes_when_senders_are_gone() {
        let (tx, mut rx) = event_channel();
        let tx2 = tx.clone();
        tx.send(presence(1, 3500));
        drop(tx);
        drop(tx2);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(Some(_))));
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn send_fails_without_receiver() {
        let (tx, rx) = event_channel();
        drop(rx);
        assert!(!tx.send(presence(1, 3500)));
    }

    #[test]
    fn wakes_a_waiting_receiver_from_another_thread() {
        let (tx, mut rx) = event_channel();
        let handle = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tx.send(presence(7, 3500));
        });
        let event = block_on(rx.recv());
        handle.join().unwrap();
        assert_eq!(event, Some(presence(7, 3500)));
    }

    /// A minimal executor for tests: parks the thread until woken.
    fn block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }

    proptest! {
        /// Against a model: the channel yields, for each user, only its newest pending
        /// update, at the position of its first pending one; other events in order.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec((0u8..4, 0u64..20000, any::<bool>()), 0..200)) {
            let (tx, mut rx) = event_channel();
            let mut model: Vec<TransportEvent> = Vec::new();
            for (who, availability, read) in ops {
                if read {
                    let expected = if model.is_empty() { None } else { Some(model.remove(0)) };
                    prop_assert_eq!(rx.try_recv(), expected);
                } else {
                    let event = presence(who, availability);
                    let u = user(who);
                    match model.iter().position(|e| matches!(e, TransportEvent::Presence(p) if p.user == u)) {
                        Some(i) => model[i] = event.clone(),
                        None => model.push(event.clone()),
                    }
                    tx.send(event);
                }
                prop_assert_eq!(rx.len(), model.len());
            }
        }
    }
}
