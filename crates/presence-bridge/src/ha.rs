//! `[ha]`: the bridge as one node of a hot-standby group. The elector (presence-ha) says who
//! leads; this module follows it: the leader starts the presence transports behind the
//! engine's [`Gate`] (the engine resyncs on their `Connected`), a node that stops leading
//! closes the gate and drops the transports' sessions at once. Every node keeps applying
//! the contact-centre messages (warm state); DND events reach clients from the leader only.
//! Also the admin API's view of the election (`/v1/ha`, `/readyz`, metrics).

use std::sync::Arc;
use std::time::Duration;

use presence_ha::{Elector, HaStatus, Role};
use presence_tlib::{ClientId, ClientSink, ServerEvent};
use presence_transport::{Gate, PresenceTransport, Router};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::transports::{self, Configured};

/// The names of the HA metrics (documented in docs/operations.md).
pub(crate) mod metric {
    /// Gauge: 1 while this node leads, else 0.
    pub(crate) const LEADER: &str = "presence_ha_leader";
    /// Counter: role changes (standby → leader and back).
    pub(crate) const TRANSITIONS: &str = "presence_ha_transitions_total";
    /// Gauge: how long the last successful lease renewal took, in seconds.
    pub(crate) const RENEW_LATENCY: &str = "presence_ha_lease_renew_latency_seconds";
    /// Gauge: seconds since the start of the last successful lease renewal.
    pub(crate) const SINCE_RENEWAL: &str = "presence_ha_seconds_since_renewal";
    /// Gauge: the fencing revision of this node's term (0 when standby).
    pub(crate) const FENCING: &str = "presence_ha_fencing_revision";
}

/// Follows the elector's role until aborted: opens the gate on the transports of each new
/// term, closes it (dropping the sessions) when leadership ends. A leader whose transports
/// cannot start (a TLS file unreadable on this host, say: with `[ha]` they start only when
/// the node leads) resigns and stops campaigning, so that a standby takes over at once.
pub(crate) async fn follow(elector: Elector, gate: Arc<Gate>, configured: Vec<Configured>) {
    let mut roles = elector.roles();
    // The tasks of the current term's transports.
    let mut term_tasks: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let role = roles.borrow_and_update().clone();
        if !apply(&elector, &role, &gate, &configured, &mut term_tasks) {
            elector.shutdown().await;
            break;
        }
        if roles.changed().await.is_err() {
            break;
        }
    }
}

fn apply(
    elector: &Elector,
    role: &Role,
    gate: &Gate,
    configured: &[Configured],
    term_tasks: &mut Vec<JoinHandle<()>>,
) -> bool {
    match role {
        Role::Leader { fencing } if gate.token() != Some(fencing.0) => {
            let mut tasks = Vec::new();
            let opened = gate.open(fencing.0, |events| {
                let (router, started): (Router, _) = transports::start_all(configured, &events)?;
                tasks = started;
                Ok::<_, anyhow::Error>(Arc::new(router) as Arc<dyn PresenceTransport>)
            });
            match opened {
                Ok(previous) => {
                    drop_sessions(previous, std::mem::take(term_tasks));
                    *term_tasks = tasks;
                    tracing::info!(
                        fencing = fencing.0,
                        "leader: presence transports started; every user is published and subscribed again once they connect"
                    );
                }
                Err(error) => {
                    tracing::error!(
                        fencing = fencing.0,
                        error = format!("{error:#}"),
                        "leader, but the presence transports cannot start: this node resigns and no longer campaigns (fix the configuration and restart it)"
                    );
                    return false;
                }
            }
        }
        Role::Leader { .. } => {}
        Role::Standby { .. } => {
            // Why leadership ended: the role change itself (a watch keeps only the latest
            // role, whose reason may already be a later one, such as etcd-unreachable after
            // lease-not-renewed).
            let why = elector
                .status()
                .last_transition()
                .filter(|t| !t.role.is_leader())
                .map_or_else(|| role.to_string(), presence_ha::Transition::why);
            let reason = format!("standby: {why}");
            let ended = gate.token();
            if let Some(previous) = gate.close(&reason) {
                tracing::warn!(
                    fencing = ended,
                    why = %why,
                    "no longer the leader: presence transports stopped, their sessions dropped; the new leader's publications replace them"
                );
                drop_sessions(Some(previous), std::mem::take(term_tasks));
            }
        }
    }
    true
}

/// Shuts a closed term's transports down without waiting for anything outstanding (their
/// writes are refused by the gate already), and ends their tasks.
fn drop_sessions(transport: Option<Arc<dyn PresenceTransport>>, tasks: Vec<JoinHandle<()>>) {
    let Some(transport) = transport else {
        return;
    };
    tokio::spawn(async move {
        transport.shutdown(Duration::ZERO).await;
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    });
}

/// The sink towards the contact-centre clients of an HA node: DND events go out only while
/// this node leads (checked against the fencing deadline at each event); answers to requests
/// always go out. `EventRegistered` says the node's role (`extensions.ha-role`), and a
/// standby's carries no `dnd`: only the leader hears the platform, so a standby does not
/// know the DN's DND state (what it may remember from an earlier term is stale).
pub(crate) struct LeaderOnlyDnd<S> {
    pub(crate) inner: S,
    pub(crate) elector: Elector,
}

impl<S: ClientSink> ClientSink for LeaderOnlyDnd<S> {
    fn send(&self, client: ClientId, mut event: ServerEvent) {
        let leads = self.elector.fencing().is_some();
        match &mut event {
            ServerEvent::EventDNDOn { .. } | ServerEvent::EventDNDOff { .. } if !leads => {
                tracing::debug!(%client, "standby: DND event not sent (the leader sends it)");
                return;
            }
            ServerEvent::EventRegistered { dnd, ha_role, .. } => {
                *ha_role = Some(if leads { "leader" } else { "standby" });
                if !leads {
                    *dnd = None;
                }
            }
            _ => {}
        }
        self.inner.send(client, event);
    }
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// `GET /v1/ha`.
pub(crate) fn status_json(status: &HaStatus) -> Value {
    let last = status.last_transition().map(|t| {
        json!({
            "role": t.role.name(),
            "why": t.why(),
            "seconds_ago": seconds(status.at.saturating_duration_since(t.at)),
        })
    });
    let (why, why_code) = match &status.role {
        Role::Standby { why, .. } => (Some(why.to_string()), Some(why.code())),
        Role::Leader { .. } => (None, None),
    };
    json!({
        "node_id": status.node_id.to_string(),
        "election": status.election,
        "role": status.role.name(),
        "why": why,
        "why_code": why_code,
        "leader": status.leader.as_ref().map(ToString::to_string),
        "fencing_revision": status.fencing.map(|f| f.0),
        "fence_in_seconds": status.fence_in().map(seconds),
        "lease": status.lease.as_ref().map(|l| json!({
            "id": l.id.to_string(),
            "ttl_seconds": seconds(l.ttl),
            "ttl_left_seconds": seconds(l.ttl_left),
            "seconds_since_renewal": seconds(l.since_renewal),
            "renew_latency_seconds": l.renew_latency.map(seconds),
        })),
        "etcd_endpoint": status.endpoint,
        "etcd_trouble": status.etcd_trouble,
        "transitions": status.transitions,
        "last_transition": last,
    })
}

/// Whether a standby can take over: it holds a lease and campaigns (etcd answers it).
pub(crate) fn healthy_standby(status: &HaStatus) -> bool {
    matches!(
        &status.role,
        Role::Standby {
            why: presence_ha::Why::Campaigning,
            ..
        }
    ) && status.lease.is_some()
        && status.etcd_trouble.is_none()
}

/// Brings the HA gauges up to date (called when `/metrics` is read).
pub(crate) fn record_metrics(status: &HaStatus) {
    metrics::gauge!(metric::LEADER).set(if status.role.is_leader() { 1.0 } else { 0.0 });
    metrics::counter!(metric::TRANSITIONS).absolute(status.transitions);
    metrics::gauge!(metric::FENCING).set(status.fencing.map_or(0.0, |f| f.0 as f64));
    if let Some(lease) = &status.lease {
        metrics::gauge!(metric::SINCE_RENEWAL).set(lease.since_renewal.as_secs_f64());
        if let Some(latency) = lease.renew_latency {
            metrics::gauge!(metric::RENEW_LATENCY).set(latency.as_secs_f64());
        }
    }
}
