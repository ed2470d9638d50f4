//! The port's conformance suite (`presence_transport::testkit`) against the SfB transport
//! and the simulator over loopback TCP: one fresh simulator and transport per check.

use std::sync::Arc;
use std::time::Duration;

use presence_model::{Availability, Platform, SipUri, UserId};
use presence_sfb::{SfbSettings, SfbTransport};
use presence_sfb_sim::{ServerConfig, SimServer};
use presence_transport::testkit::{Harness, Shown};
use presence_transport::{EventReceiver, PresenceTransport, TransportEvent, event_channel};
use tokio::sync::Mutex;

struct Sfb {
    sim: SimServer,
    transport: SfbTransport,
    events: Mutex<EventReceiver>,
}

impl Sfb {
    async fn start() -> Sfb {
        let sim = SimServer::start(ServerConfig::default())
            .await
            .expect("the simulator listens on loopback");
        let settings: SfbSettings = toml::from_str(&format!(
            "pool = \"{}\"\ntransport = \"tcp\"\napplication-uri = \"sip:bridge@contoso.com\"\nreconnect-initial = \"50ms\"\nreconnect-max = \"200ms\"\n",
            sim.local_addr()
        ))
        .expect("valid settings");
        let (events, receiver) = event_channel();
        let (transport, _task) =
            SfbTransport::start(&settings, Platform::sfb(), events).expect("starts");
        Sfb {
            sim,
            transport,
            events: Mutex::new(receiver),
        }
    }

    fn uri(user: &UserId) -> &SipUri {
        user.sip_uri().expect("the suite's users are SIP users")
    }
}

#[async_trait::async_trait]
impl Harness for Sfb {
    fn transport(&self) -> Arc<dyn PresenceTransport> {
        Arc::new(self.transport.clone())
    }

    fn platform(&self) -> Platform {
        Platform::sfb()
    }

    fn user(&self, n: usize) -> UserId {
        UserId::sip(
            Platform::sfb(),
            SipUri::new(&format!("sip:user{n}@contoso.com")).expect("a valid URI"),
        )
    }

    async fn next_event(&self, wait: Duration) -> Option<TransportEvent> {
        let mut events = self.events.lock().await;
        if let Some(event) = events.try_recv() {
            return Some(event);
        }
        tokio::time::timeout(wait, events.recv())
            .await
            .ok()
            .flatten()
    }

    async fn shows(&self, user: &UserId) -> Shown {
        // The simulator aggregates the instances the bridge writes; removed (or never
        // written) instances leave nothing to show.
        match self.sim.shows(Self::uri(user)) {
            Some(shown) => {
                Shown::Class(Availability::from_wire(u64::from(shown.availability)).class())
            }
            None => Shown::Nothing,
        }
    }

    async fn set_user_presence(&self, user: &UserId, availability: Availability) {
        self.sim
            .set_user_presence(Self::uri(user), u32::from(availability.get()), None);
    }

    async fn drop_connection(&self) {
        self.sim.drop_connections();
    }

    fn report_within(&self) -> Duration {
        // Notifications on loopback come at once; the quiet check waits this long.
        Duration::from_secs(1)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

presence_transport::conformance_suite!(Sfb::start());
