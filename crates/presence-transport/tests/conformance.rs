//! The conformance suite against `MemoryTransport` (no async runtime: memory never waits,
//! so a parking executor is enough).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use presence_model::{Availability, Platform, SipUri, UserId};
use presence_transport::testkit::{self, Harness, Shown};
use presence_transport::{EventReceiver, MemoryTransport, PresenceTransport, TransportEvent};

struct Memory {
    transport: MemoryTransport,
    events: Mutex<EventReceiver>,
}

impl Memory {
    fn start() -> Memory {
        let (transport, events) = MemoryTransport::new(Platform::sfb());
        transport.set_window(4);
        transport.connect();
        Memory {
            transport,
            events: Mutex::new(events),
        }
    }
}

#[async_trait::async_trait]
impl Harness for Memory {
    fn transport(&self) -> Arc<dyn PresenceTransport> {
        Arc::new(self.transport.clone())
    }

    fn platform(&self) -> Platform {
        Platform::sfb()
    }

    fn user(&self, n: usize) -> UserId {
        UserId::sip(
            Platform::sfb(),
            SipUri::new(&format!("sip:user{n}@example.com")).unwrap(),
        )
    }

    async fn next_event(&self, wait: Duration) -> Option<TransportEvent> {
        if let Some(event) = self.events.lock().unwrap().try_recv() {
            return Some(event);
        }
        std::thread::sleep(wait);
        self.events.lock().unwrap().try_recv()
    }

    async fn shows(&self, user: &UserId) -> Shown {
        match self.transport.shows(user) {
            Some(p) => Shown::Class(p.presence.availability.class()),
            None => Shown::Nothing,
        }
    }

    async fn set_user_presence(&self, user: &UserId, availability: Availability) {
        self.transport
            .set_user_presence(user, u64::from(availability.get()), None);
    }

    async fn drop_connection(&self) {
        self.transport.disconnect("dropped by the test");
        self.transport.connect();
    }

    fn report_within(&self) -> Duration {
        Duration::from_millis(300)
    }

    async fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
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
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

macro_rules! memory_suite {
    ($($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                block_on(testkit::$check(&Memory::start()));
            }
        )*
    };
}

memory_suite!(
    connects,
    publishes,
    unpublishes,
    credit_flows,
    subscribes,
    reconnects,
    refuses_foreign_users,
    shuts_down
);

#[test]
fn the_suite_catches_a_transport_that_forgets_credit() {
    // A transport that grants no credit after Connected must fail `credit_flows`.
    let memory = Memory::start();
    memory.transport.set_window(1);
    memory.transport.disconnect("reset");
    memory.transport.connect();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Swallow every credit grant the transport makes.
        struct NoCredit(Memory);
        #[async_trait::async_trait]
        impl Harness for NoCredit {
            fn transport(&self) -> Arc<dyn PresenceTransport> {
                self.0.transport()
            }
            fn platform(&self) -> Platform {
                self.0.platform()
            }
            fn user(&self, n: usize) -> UserId {
                self.0.user(n)
            }
            async fn next_event(&self, wait: Duration) -> Option<TransportEvent> {
                let _ = wait; // no real waiting: the suite's deadline counts polls
                match self.0.next_event(Duration::ZERO).await {
                    Some(TransportEvent::Credit { .. }) => None,
                    other => other,
                }
            }
            async fn shows(&self, user: &UserId) -> Shown {
                self.0.shows(user).await
            }
            async fn set_user_presence(&self, user: &UserId, availability: Availability) {
                self.0.set_user_presence(user, availability).await;
            }
            async fn drop_connection(&self) {
                self.0.drop_connection().await;
            }
            async fn sleep(&self, duration: Duration) {
                std::thread::sleep(duration.min(Duration::from_millis(1)));
            }
        }
        block_on(testkit::credit_flows(&NoCredit(memory)));
    }));
    assert!(failed.is_err(), "the suite must notice missing credit");
}
