//! One platform's share of the engine: its publisher, connection, credit and pending
//! subscription and unpublish work.

use std::collections::BTreeSet;

use metrics::{Counter, Gauge};
use presence_model::{DnNumber, Platform, UserId};
use presence_push::{Publisher, PublisherConfig};

use crate::metric;

/// Metric handles of one platform, registered once (labels allocate).
#[derive(Debug)]
pub(crate) struct LaneMetrics {
    pub(crate) connected: Gauge,
    pub(crate) in_flight: Gauge,
    pub(crate) queued: Gauge,
    pub(crate) credit: Gauge,
    pub(crate) problems: Gauge,
    pub(crate) ok: Counter,
    pub(crate) failed: Counter,
    pub(crate) refused: Counter,
    pub(crate) parked: Counter,
    pub(crate) unpublished: Counter,
    pub(crate) updates: Counter,
    pub(crate) connects: Counter,
    pub(crate) disconnects: Counter,
}

impl LaneMetrics {
    fn new(platform: &Platform) -> Self {
        let p = platform.to_string();
        let result = |r: &'static str| metrics::counter!(metric::PUBLICATIONS, "platform" => p.clone(), "result" => r);
        let event = |e: &'static str| metrics::counter!(metric::TRANSPORT_EVENTS, "platform" => p.clone(), "event" => e);
        LaneMetrics {
            connected: metrics::gauge!(metric::TRANSPORT_CONNECTED, "platform" => p.clone()),
            in_flight: metrics::gauge!(metric::PUBLICATIONS_IN_FLIGHT, "platform" => p.clone()),
            queued: metrics::gauge!(metric::PUBLICATIONS_QUEUED, "platform" => p.clone()),
            credit: metrics::gauge!(metric::CREDIT, "platform" => p.clone()),
            problems: metrics::gauge!(metric::USER_PROBLEMS, "platform" => p.clone()),
            ok: result("ok"),
            failed: result("failed"),
            refused: result("refused"),
            parked: result("parked"),
            unpublished: metrics::counter!(metric::UNPUBLISHED, "platform" => p.clone()),
            updates: metrics::counter!(metric::PRESENCE_UPDATES, "platform" => p.clone()),
            connects: event("connected"),
            disconnects: event("disconnected"),
        }
    }
}

/// One platform: the users the engine publishes and subscribes there.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) publisher: Publisher<DnNumber>,
    pub(crate) connected: bool,
    /// Publications the transport can take now (flow control).
    pub(crate) credit: u64,
    /// Users that should be subscribed.
    pub(crate) subscribed: BTreeSet<UserId>,
    pub(crate) to_subscribe: BTreeSet<UserId>,
    pub(crate) to_unsubscribe: BTreeSet<UserId>,
    /// Users whose publication the bridge must end, not yet handed to the transport.
    pub(crate) to_unpublish: BTreeSet<UserId>,
    /// Unpublications handed to the transport and not settled: the user is not published
    /// again before they are (the transport orders them, the spawned tasks do not).
    pub(crate) unpublishing: BTreeSet<UserId>,
    /// Users with a problem the transport reported.
    pub(crate) problems: BTreeSet<UserId>,
    pub(crate) metrics: LaneMetrics,
}

impl Lane {
    pub(crate) fn new(platform: &Platform, retry: PublisherConfig) -> Self {
        Lane {
            publisher: Publisher::new(retry),
            connected: false,
            credit: 0,
            subscribed: BTreeSet::new(),
            to_subscribe: BTreeSet::new(),
            to_unsubscribe: BTreeSet::new(),
            to_unpublish: BTreeSet::new(),
            unpublishing: BTreeSet::new(),
            problems: BTreeSet::new(),
            metrics: LaneMetrics::new(platform),
        }
    }

    pub(crate) fn update_gauges(&self) {
        let m = &self.metrics;
        m.connected.set(if self.connected { 1.0 } else { 0.0 });
        m.in_flight.set(self.publisher.in_flight() as f64);
        m.queued.set(self.publisher.ready_len() as f64);
        m.credit.set(self.credit as f64);
        m.problems.set(self.problems.len() as f64);
    }
}
