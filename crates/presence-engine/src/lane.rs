//! One platform's share of the engine: its publisher, connection, credit and pending
//! subscription and unpublish work.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

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
    /// How failed publications are logged.
    pub(crate) failures: FailureLog,
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
            failures: FailureLog::default(),
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

/// How long a platform's failed publications are logged as one line (after the first).
pub(crate) const FAILURE_LOG_WINDOW: Duration = Duration::from_secs(10);

/// The warnings about one platform's failed publications: the first failure is logged,
/// then at most one line per [`FAILURE_LOG_WINDOW`] with the number not logged since, and
/// one line when publications succeed again. A platform that answers `503` to everything
/// fails every user's publication and its retries: thousands a minute, which one line each
/// would bury the rest of the log under. Each failure is still in the DN's view
/// (`/v1/dns/{dn}`), the metrics and the debug log.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    /// When the current window ends (none: no failure logged yet, or since the last
    /// recovery).
    window_end: Option<Instant>,
    /// Failures in the current window that were not logged.
    unlogged: u64,
    /// Failures since the last success, and when the first of them came, if any was not
    /// logged (a recovery is then worth a line).
    run: Option<(u64, Instant)>,
    /// Whether any failure since the last success went unlogged.
    any_unlogged: bool,
}

/// What to log for a failed publication.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FailureLine {
    /// Log it, with the number of failures not logged since the previous line.
    Warn {
        /// Failures since the previous line that were not logged one by one.
        unlogged: u64,
    },
    /// Only at debug level: a line was logged less than a window ago.
    Debug,
}

impl FailureLog {
    /// A publication failed at `now`.
    pub(crate) fn failure(&mut self, now: Instant) -> FailureLine {
        let (count, _) = self.run.get_or_insert((0, now));
        *count += 1;
        if self.window_end.is_some_and(|end| now < end) {
            self.unlogged += 1;
            self.any_unlogged = true;
            return FailureLine::Debug;
        }
        self.window_end = Some(now + FAILURE_LOG_WINDOW);
        FailureLine::Warn {
            unlogged: std::mem::take(&mut self.unlogged),
        }
    }

    /// A publication succeeded at `now`: `Some((failures, since))` when failures were not
    /// all logged since the last success, so that the recovery deserves a line.
    pub(crate) fn success(&mut self, now: Instant) -> Option<(u64, Duration)> {
        let run = self.run.take();
        let worth = std::mem::take(&mut self.any_unlogged);
        self.window_end = None;
        self.unlogged = 0;
        run.filter(|_| worth)
            .map(|(count, since)| (count, now.saturating_duration_since(since)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_logged_once_per_window_and_a_recovery_once() {
        let t0 = Instant::now();
        let mut log = FailureLog::default();
        assert_eq!(log.failure(t0), FailureLine::Warn { unlogged: 0 });
        for i in 1..=99 {
            assert_eq!(
                log.failure(t0 + Duration::from_millis(i * 50)),
                FailureLine::Debug
            );
        }
        let later = t0 + FAILURE_LOG_WINDOW;
        assert_eq!(log.failure(later), FailureLine::Warn { unlogged: 99 });
        assert_eq!(log.failure(later), FailureLine::Debug);
        let back = later + Duration::from_secs(1);
        assert_eq!(log.success(back), Some((102, back - t0)));
        // Recovered: nothing more to say, and the next failure is logged at once.
        assert_eq!(log.success(back), None);
        assert_eq!(log.failure(back), FailureLine::Warn { unlogged: 0 });
    }

    #[test]
    fn a_lone_failure_is_logged_and_its_recovery_is_not() {
        let t0 = Instant::now();
        let mut log = FailureLog::default();
        assert_eq!(log.failure(t0), FailureLine::Warn { unlogged: 0 });
        assert_eq!(log.success(t0 + Duration::from_secs(1)), None);
    }
}
