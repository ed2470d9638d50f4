//! The port's contract as a conformance suite (feature `testkit`).
//!
//! A transport crate implements [`Harness`] over its transport and a peer it controls (a
//! simulator on loopback), then runs every check from its own tests, one test each:
//!
//! ```text
//! presence_transport::conformance_suite!(async { MyHarness::start().await });
//! ```
//!
//! The macro expands to one `#[tokio::test]` per check (the calling crate provides tokio).
//! Each check panics with a message that names the rule it found broken. The suite needs no
//! async runtime of its own: waiting is the harness's job.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use presence_model::{
    Activities, AggregatedStateId, Availability, AvailabilityClass, Platform, Presence,
    Publication, UserId,
};

use crate::{PresenceTransport, TransportError, TransportEvent};

/// What the peer shows for a user, as far as the suite compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Nothing the bridge published (the user's own presence, or nothing at all).
    Nothing,
    /// A presence of this availability class.
    Class(AvailabilityClass),
}

/// A transport under test and the peer it talks to.
#[async_trait::async_trait]
pub trait Harness: Send + Sync {
    /// The transport, started (it connects on its own).
    fn transport(&self) -> Arc<dyn PresenceTransport>;

    /// The platform it serves.
    fn platform(&self) -> Platform;

    /// A user the peer knows; distinct `n`, distinct users.
    fn user(&self, n: usize) -> UserId;

    /// The next event the transport reported, waiting at most `wait`.
    async fn next_event(&self, wait: Duration) -> Option<TransportEvent>;

    /// What the peer shows for `user` now.
    async fn shows(&self, user: &UserId) -> Shown;

    /// What the peer should show once `publication` was accepted. By default its
    /// availability class; a platform with coarser states (or one that clears the bridge's
    /// presence for Offline) says otherwise.
    fn expected(&self, publication: &Publication) -> Shown {
        Shown::Class(publication.presence.availability.class())
    }

    /// The class a presence set with [`set_user_presence`](Self::set_user_presence) comes
    /// back as. By default its own class; a platform that cannot express every class (SIP
    /// SIMPLE's RPID has no "do not disturb") says what its mapping makes of it.
    fn reported(&self, set: Availability) -> AvailabilityClass {
        set.class()
    }

    /// Sets the user's own presence on the peer, given on the SfB scale (3500, 6500, ...).
    async fn set_user_presence(&self, user: &UserId, availability: Availability);

    /// Makes the peer end the transport's connection (close it, revoke its token).
    async fn drop_connection(&self);

    /// How long the peer needs at most to report a presence change it has (a polling
    /// transport's interval, plus slack).
    fn report_within(&self) -> Duration {
        Duration::from_secs(5)
    }

    /// Waits.
    async fn sleep(&self, duration: Duration);
}

/// A publication of `availability` under the ID `TEST<availability>`.
pub fn publication(availability: u32) -> Publication {
    Publication {
        id: AggregatedStateId::new(&format!("TEST{availability}")).expect("a valid state ID"),
        presence: Presence {
            availability: Availability::new(availability).expect("a valid availability"),
            activities: Activities::empty(),
        },
    }
}

const CONNECT_WITHIN: Duration = Duration::from_secs(15);

/// Waits for an event matching `want`, skipping others; panics with `what` after `within`.
async fn wait_for<H: Harness + ?Sized>(
    h: &H,
    within: Duration,
    what: &str,
    mut want: impl FnMut(&TransportEvent) -> bool,
) -> TransportEvent {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        if let Some(event) = h.next_event(step).await {
            if want(&event) {
                return event;
            }
            continue;
        }
        waited += step;
        assert!(waited < within, "{what} did not arrive within {within:?}");
    }
}

/// Waits for the platform's `Connected` event; returns its credit.
async fn connected<H: Harness + ?Sized>(h: &H) -> u32 {
    let platform = h.platform();
    let event = wait_for(
        h,
        CONNECT_WITHIN,
        "TransportEvent::Connected",
        |e| matches!(e, TransportEvent::Connected { platform: p, .. } if *p == platform),
    )
    .await;
    match event {
        TransportEvent::Connected { credit, .. } => credit,
        _ => unreachable!("matched above"),
    }
}

/// Subscribes to `user` and waits for the transport to report the subscription made.
async fn subscribed<H: Harness + ?Sized>(
    h: &H,
    transport: &Arc<dyn PresenceTransport>,
    user: &UserId,
) {
    transport
        .subscribe(std::slice::from_ref(user))
        .await
        .expect("subscribe");
    wait_for(
        h,
        CONNECT_WITHIN,
        "TransportEvent::Subscribed",
        |e| matches!(e, TransportEvent::Subscribed { users } if users.contains(user)),
    )
    .await;
}

/// Polls what the peer shows until it matches `expected` or `within` passes.
async fn eventually_shows<H: Harness + ?Sized>(
    h: &H,
    user: &UserId,
    expected: Shown,
    within: Duration,
) {
    let mut waited = Duration::ZERO;
    loop {
        let shown = h.shows(user).await;
        if shown == expected {
            return;
        }
        assert!(
            waited < within,
            "the peer shows {shown:?} for {user}, expected {expected:?}"
        );
        h.sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
}

/// **Connected**: a transport reports `Connected` for its platform with credit above zero,
/// and `status()` says so.
pub async fn connects<H: Harness + ?Sized>(h: &H) {
    let credit = connected(h).await;
    assert!(credit > 0, "Connected must grant credit, got 0");
    let status = h.transport().status();
    assert!(
        status
            .iter()
            .any(|s| s.platform == h.platform() && s.connected),
        "status() must report the platform connected after Connected: {status:?}"
    );
}

/// **Publish**: an accepted publication is what the peer shows; a later one replaces it.
pub async fn publishes<H: Harness + ?Sized>(h: &H) {
    connected(h).await;
    let user = h.user(0);
    for availability in [3500, 6500, 9500, 15500, 3500] {
        let p = publication(availability);
        h.transport()
            .publish(&user, &p)
            .await
            .unwrap_or_else(|e| panic!("publishing {availability} for {user} failed: {e}"));
        eventually_shows(h, &user, h.expected(&p), Duration::from_secs(2)).await;
    }
}

/// **Unpublish**: ends the bridge's publication; unpublishing a user with nothing published
/// is `Ok`.
pub async fn unpublishes<H: Harness + ?Sized>(h: &H) {
    connected(h).await;
    let user = h.user(1);
    let transport = h.transport();
    transport
        .unpublish(&user)
        .await
        .unwrap_or_else(|e| panic!("unpublishing a user with nothing published failed: {e}"));
    let p = publication(6500);
    transport.publish(&user, &p).await.expect("publish");
    eventually_shows(h, &user, h.expected(&p), Duration::from_secs(2)).await;
    transport
        .unpublish(&user)
        .await
        .unwrap_or_else(|e| panic!("unpublish failed: {e}"));
    eventually_shows(h, &user, Shown::Nothing, Duration::from_secs(2)).await;
}

/// **Credit**: credit keeps coming while publications settle, so a caller that only
/// publishes with credit in hand can publish for many more users than the first grant.
pub async fn credit_flows<H: Harness + ?Sized>(h: &H) {
    let mut credit = u64::from(connected(h).await);
    let transport = h.transport();
    let platform = h.platform();
    let total = (credit as usize * 2 + 1).min(300);
    for n in 0..total {
        while credit == 0 {
            let event = wait_for(
                h,
                Duration::from_secs(30),
                "TransportEvent::Credit",
                |e| matches!(e, TransportEvent::Credit { platform: p, .. } if *p == platform),
            )
            .await;
            if let TransportEvent::Credit { credit: more, .. } = event {
                credit += u64::from(more);
            }
        }
        credit -= 1;
        let user = h.user(100 + n);
        transport
            .publish(&user, &publication(6500))
            .await
            .unwrap_or_else(|e| panic!("publication {n} of {total} failed: {e}"));
        while let Some(event) = h.next_event(Duration::ZERO).await {
            if let TransportEvent::Credit {
                platform: p,
                credit: more,
            } = event
                && p == platform
            {
                credit += u64::from(more);
            }
        }
    }
}

/// **Subscribe**: a subscription is reported as `Subscribed`; the user's changes arrive as
/// `Presence` on the SfB scale; after `unsubscribe` they stop.
pub async fn subscribes<H: Harness + ?Sized>(h: &H) {
    connected(h).await;
    let user = h.user(2);
    let transport = h.transport();
    subscribed(h, &transport, &user).await;
    for availability in [6500, 3500, 9500] {
        let availability = Availability::new(availability).expect("valid");
        let class = h.reported(availability);
        h.set_user_presence(&user, availability).await;
        let within = h.report_within();
        wait_for(h, within, &format!("a {class} presence update"), |e| {
            matches!(e, TransportEvent::Presence(p) if p.user == user && p.availability.class() == class)
        })
        .await;
    }
    transport
        .unsubscribe(std::slice::from_ref(&user))
        .await
        .expect("unsubscribe");
    h.sleep(Duration::from_millis(200)).await;
    while h.next_event(Duration::ZERO).await.is_some() {}
    h.set_user_presence(&user, Availability::new(15500).expect("valid"))
        .await;
    let quiet = h.report_within();
    let mut waited = Duration::ZERO;
    while waited < quiet {
        if let Some(TransportEvent::Presence(p)) = h.next_event(Duration::from_millis(100)).await {
            assert!(
                p.user != user,
                "a presence update for {user} arrived after unsubscribe"
            );
        }
        waited += Duration::from_millis(100);
    }
}

/// **Reconnect**: when the peer ends the connection the transport reports `Disconnected`,
/// connects again on its own, reports `Connected` and the subscriptions it made again, and
/// publishes again.
pub async fn reconnects<H: Harness + ?Sized>(h: &H) {
    connected(h).await;
    let user = h.user(3);
    let transport = h.transport();
    subscribed(h, &transport, &user).await;
    h.drop_connection().await;
    let platform = h.platform();
    wait_for(
        h,
        CONNECT_WITHIN,
        "TransportEvent::Disconnected",
        |e| matches!(e, TransportEvent::Disconnected { platform: p, .. } if *p == platform),
    )
    .await;
    connected(h).await;
    wait_for(
        h,
        CONNECT_WITHIN,
        "TransportEvent::Subscribed after the reconnect",
        |e| matches!(e, TransportEvent::Subscribed { users } if users.contains(&user)),
    )
    .await;
    let p = publication(12500);
    transport
        .publish(&user, &p)
        .await
        .unwrap_or_else(|e| panic!("publishing after the reconnect failed: {e}"));
    eventually_shows(h, &user, h.expected(&p), Duration::from_secs(2)).await;
}

/// **Foreign users**: a user of another platform is refused with
/// [`TransportError::Unsupported`], which is not transient.
pub async fn refuses_foreign_users<H: Harness + ?Sized>(h: &H) {
    connected(h).await;
    let other = Platform::new(if h.platform().as_str() == "elsewhere" {
        "elsewhere-too"
    } else {
        "elsewhere"
    })
    .expect("a valid platform");
    let stranger = UserId::new(other, h.user(4).address().clone());
    let err = h
        .transport()
        .publish(&stranger, &publication(3500))
        .await
        .expect_err("a user of another platform must be refused");
    assert!(
        matches!(err, TransportError::Unsupported { .. }) && !err.is_transient(),
        "expected a permanent Unsupported error, got {err:?}"
    );
}

/// **Shutdown**: after `shutdown`, calls fail with [`TransportError::Shutdown`] and the
/// status is not connected.
pub async fn shuts_down<H: Harness + ?Sized>(h: &H) {
    connected(h).await;
    let transport = h.transport();
    transport.shutdown(Duration::from_secs(2)).await;
    let err = transport
        .publish(&h.user(5), &publication(3500))
        .await
        .expect_err("publishing after shutdown must fail");
    assert!(
        matches!(err, TransportError::Shutdown),
        "expected Shutdown, got {err:?}"
    );
    assert!(
        transport
            .status()
            .iter()
            .filter(|s| s.platform == h.platform())
            .all(|s| !s.connected),
        "a transport that was shut down must not report itself connected"
    );
}

/// Expands to one `#[tokio::test]` per check of the suite, each on a fresh harness made by
/// the given `async` expression. The calling crate needs tokio (with `macros` and
/// `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            connects, publishes, unpublishes, credit_flows, subscribes, reconnects,
            refuses_foreign_users, shuts_down);
    };
    (@tests $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let harness = $make.await;
                $crate::testkit::$check(&harness).await;
            }
        )*
    };
}

/// The log lines written while a transport test runs, at WARN and above: a `tracing`
/// subscriber set as this thread's default by [`capture`](Self::capture) (a driver task on
/// the test's current-thread runtime logs here too). For the reconnect warnings, whose
/// `retry_in` field says when the next attempt comes.
#[derive(Clone, Debug, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's log lines until the guard is dropped.
    pub fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// The `retry_in` of the first line with `message`, in seconds.
    ///
    /// # Panics
    /// When no line has `message`, or its `retry_in` is not a duration.
    pub fn retry_in(&self, message: &str) -> f64 {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned();
        let line = text
            .lines()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("a line with {message:?} in:\n{text}"));
        let value = line
            .split("retry_in=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("`retry_in=` in {line}"));
        match value.strip_suffix("ms") {
            Some(ms) => ms.parse::<f64>().expect("milliseconds") / 1000.0,
            None => value
                .strip_suffix('s')
                .unwrap_or_else(|| panic!("a duration: {line}"))
                .parse()
                .expect("seconds"),
        }
    }
}
