//! The names of the metrics the engine records (through the `metrics` facade; the binary
//! installs a Prometheus recorder). Documented in docs/operations.md. The per-platform ones
//! carry a `platform` label (`sfb`, `teams`, ...).

/// Counter: contact-centre messages handled, label `message`.
pub const EVENTS_IN: &str = "presence_cti_messages_total";
/// Counter: contact-centre requests refused, label `code`.
pub const REQUESTS_REFUSED: &str = "presence_cti_errors_total";
/// Counter: publications settled, labels `platform` and `result` (`ok`, `failed` (will be
/// retried), `refused` (permanent), `parked` (not connected: until the next resync)).
pub const PUBLICATIONS: &str = "presence_publications_total";
/// Counter: DND events sent (one per DN change, whatever the number of clients), label
/// `state` (`on`, `off`).
pub const DND_EVENTS: &str = "presence_dnd_events_total";
/// Counter: presence updates received from the transport, label `platform`.
pub const PRESENCE_UPDATES: &str = "presence_updates_total";
/// Gauge: publications handed to the transport and not settled, label `platform`.
pub const PUBLICATIONS_IN_FLIGHT: &str = "presence_publications_in_flight";
/// Gauge: users with a publication due, waiting for credit, label `platform`.
pub const PUBLICATIONS_QUEUED: &str = "presence_publications_queued";
/// Gauge: 1 while the platform's transport is connected, label `platform`.
pub const TRANSPORT_CONNECTED: &str = "presence_transport_connected";
/// Counter: transport connections and losses, labels `platform` and `event` (`connected`,
/// `disconnected`).
pub const TRANSPORT_EVENTS: &str = "presence_transport_events_total";
/// Counter: reloads applied.
pub const RELOADS: &str = "presence_reloads_total";
/// Gauge: connected contact-centre clients.
pub const CLIENTS: &str = "presence_cti_clients";
/// Gauge: publications the platform's transport can take now (its credit), label
/// `platform`.
pub const CREDIT: &str = "presence_transport_credit";
/// Gauge: users the platform's transport cannot serve (a UPN that does not resolve), label
/// `platform`.
pub const USER_PROBLEMS: &str = "presence_user_problems";
/// Counter: publications the bridge ended (the user left push mode, moved platform, or
/// its DN was removed), label `platform`.
pub const UNPUBLISHED: &str = "presence_unpublished_total";
