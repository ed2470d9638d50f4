//! The names of the metrics the engine records (through the `metrics` facade; the binary
//! installs a Prometheus recorder). Documented in docs/operations.md.

/// Counter: contact-centre messages handled, label `message`.
pub const EVENTS_IN: &str = "presence_cti_messages_total";
/// Counter: contact-centre requests refused, label `code`.
pub const REQUESTS_REFUSED: &str = "presence_cti_errors_total";
/// Counter: publications settled, label `result` (`ok`, `failed`, `parked`).
pub const PUBLICATIONS: &str = "presence_publications_total";
/// Counter: DND events sent (one per DN change, whatever the number of clients), label
/// `state` (`on`, `off`).
pub const DND_EVENTS: &str = "presence_dnd_events_total";
/// Counter: presence updates received from the transport.
pub const PRESENCE_UPDATES: &str = "presence_updates_total";
/// Gauge: publications handed to the transport and not settled.
pub const PUBLICATIONS_IN_FLIGHT: &str = "presence_publications_in_flight";
/// Gauge: users with a publication due, waiting for room.
pub const PUBLICATIONS_QUEUED: &str = "presence_publications_queued";
/// Gauge: 1 while the transport is connected.
pub const TRANSPORT_CONNECTED: &str = "presence_transport_connected";
/// Counter: transport connections and losses, label `event` (`connected`, `disconnected`).
pub const TRANSPORT_EVENTS: &str = "presence_transport_events_total";
/// Counter: reloads applied.
pub const RELOADS: &str = "presence_reloads_total";
/// Gauge: connected contact-centre clients.
pub const CLIENTS: &str = "presence_cti_clients";
