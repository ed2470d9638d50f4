//! The sans-IO simulator: bytes in, bytes out, time as an argument.

mod event;
mod notify;
mod rng;
#[cfg(test)]
mod tests;
mod world;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use presence_model::SipUri;
use presence_mspres::{BatchSubscribe, Fault, Publish, StateBody, SubscribeAction, content_type};
use presence_sip::{Frame, Framer, Limits, Message, Method, Request, Response};

pub use event::{ChangeSource, SimEvent};
pub use world::Shown;

use crate::SimError;
use rng::Rng;
use world::{InstanceKey, World};

/// Identifies one connection of the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// The simulator's settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds tags, branches, boundaries and the draws of random faults: the same seed and
    /// the same inputs give the same bytes.
    pub seed: u64,
    /// Send notifications as `BENOTIFY` (no response expected) when the `SUBSCRIBE`'s
    /// `Supported` lists `ms-benotify`. Default: on.
    pub benotify: bool,
    /// Put the first notification of a new subscription in the `200 OK` of the
    /// `SUBSCRIBE` when its `Supported` lists `ms-piggyback-first-notify`. Default: off.
    pub piggyback_first_notify: bool,
    /// The longest subscription granted, in seconds (`Expires` of the answer is the
    /// smaller of this and the one asked for; a `SUBSCRIBE` without `Expires` gets this).
    /// Default: 3600.
    pub max_expires: u32,
    /// The simulator's host name, written in `Via`, `Contact` and the `source` of
    /// `ms-diagnostics`. Default: `sfb-sim.test`.
    pub host: String,
    /// The transport token of the simulator's `Via` (`TCP` or `TLS`). Default: `TCP`;
    /// the tokio server sets it from its listener.
    pub via_transport: String,
    /// Limits of the SIP framer for each connection.
    pub limits: Limits,
    /// The most bytes that may wait to be written to one connection; beyond that the
    /// connection is closed (a peer that does not read). Default: 16 MiB.
    pub max_backlog: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            benotify: true,
            piggyback_first_notify: false,
            max_expires: 3600,
            host: "sfb-sim.test".to_owned(),
            via_transport: "TCP".to_owned(),
            limits: Limits::default(),
            max_backlog: 16 << 20,
        }
    }
}

/// Codes of the simulator's `ms-diagnostics` headers (its own numbering, not the codes of
/// a real pool).
pub mod diagnostics {
    /// `409`: a publication's version is not the current one.
    pub const VERSION_CONFLICT: u32 = 9001;
    /// `400`: a body could not be read.
    pub const BAD_BODY: u32 = 9002;
    /// `415`: the body is not of the expected type.
    pub const UNSUPPORTED_BODY: u32 = 9003;
    /// `400`: a required header is missing or malformed.
    pub const BAD_HEADER: u32 = 9004;
    /// `501`: the method is not simulated.
    pub const NOT_IMPLEMENTED: u32 = 9005;
    /// `481`: no such subscription dialog.
    pub const NO_DIALOG: u32 = 9006;
    /// `489`: the event package is not `presence`.
    pub const BAD_EVENT: u32 = 9007;
    /// An injected failure (`fail_next`, `random_errors`).
    pub const INJECTED: u32 = 9010;
}

const ALLOW: &str = "SERVICE, SUBSCRIBE, OPTIONS, ACK";
const SUPPORTED: &str = "ms-benotify, ms-piggyback-first-notify, eventlist";
/// The most events kept for [`Simulator::poll_event`]; older ones are dropped.
const MAX_EVENTS: usize = 65_536;

#[derive(Debug)]
struct Conn {
    framer: Framer,
    out: VecDeque<Vec<u8>>,
    out_bytes: usize,
    /// The release time of the last message held back for this connection.
    held_until: Option<Instant>,
    /// Too much waits to be written: closed at the end of the current call.
    broken: bool,
}

#[derive(Debug)]
struct Held {
    release: Instant,
    conn: ConnId,
    bytes: Vec<u8>,
}

#[derive(Debug)]
struct FailNext {
    method: Method,
    remaining: u32,
    status: u16,
}

#[derive(Debug, Default)]
struct Faults {
    fail_next: Vec<FailNext>,
    conflict_rate: f64,
    error_rate: f64,
    error_status: u16,
    delay: Duration,
}

/// (Call-ID, the simulator's tag).
type DialogKey = (String, String);

#[derive(Debug)]
struct Dialog {
    conn: ConnId,
    call_id: String,
    /// The simulator's `From` (the subscriber's `To` plus the simulator's tag).
    our_from: String,
    /// The subscriber's `From`, with its tag: the simulator's `To`.
    peer_from: String,
    /// The subscriber's Contact URI: the Request-URI of notifications.
    target: String,
    /// The `uri` of the batch subscription: the RLMI list URI.
    list_uri: String,
    benotify: bool,
    /// The users watched, with the RLMI instance id of each.
    resources: BTreeMap<SipUri, String>,
    expires_at: Instant,
    cseq: u32,
    rlmi_version: u32,
    /// Users whose aggregate changed since the last notification.
    pending: BTreeSet<SipUri>,
}

/// A Skype for Business Front End pool, simulated as a sans-IO state machine.
///
/// Connections are opened with [`open`](Self::open), fed with
/// [`handle_bytes`](Self::handle_bytes) and drained with
/// [`poll_transmit`](Self::poll_transmit); time moves with
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout). The
/// world (users picking states) and the fault menu are methods too. See the crate docs for
/// the behaviour.
#[derive(Debug)]
pub struct Simulator {
    config: SimConfig,
    rng: Rng,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    held: VecDeque<Held>,
    world: World,
    dialogs: BTreeMap<DialogKey, Dialog>,
    /// For each watched user, the dialogs whose `resources` hold it: a change marks
    /// those dialogs without scanning every dialog (kept by [`Simulator::watch`] and
    /// [`Simulator::unwatch`]).
    watchers: HashMap<SipUri, Vec<DialogKey>>,
    faults: Faults,
    events: VecDeque<SimEvent>,
    published: u64,
    /// The latest `now` given: the time of outputs made by calls that take none.
    last_now: Option<Instant>,
}

/// Replaces control characters so that a text can go into a header value.
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn seconds_until(now: Instant, at: Instant) -> u32 {
    let left = at.saturating_duration_since(now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn is_benign_failure(status: u16) -> bool {
    (300..=699).contains(&status)
}

impl Simulator {
    /// A simulator with no connection, no user state and no fault.
    pub fn new(config: SimConfig) -> Self {
        Simulator {
            rng: Rng::new(config.seed),
            config,
            conns: BTreeMap::new(),
            next_conn: 0,
            held: VecDeque::new(),
            world: World::default(),
            dialogs: BTreeMap::new(),
            watchers: HashMap::new(),
            faults: Faults::default(),
            events: VecDeque::new(),
            published: 0,
            last_now: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    fn tick(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |last| last.max(now));
        self.last_now = Some(now);
        now
    }

    /// The latest time an input brought (the core reads no clock); `None` before any.
    fn now(&self) -> Option<Instant> {
        self.last_now
    }

    fn event(&mut self, event: SimEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    // ----------------------------------------------------------------- connections

    /// A new connection (a trusted application connected).
    pub fn open(&mut self, now: Instant) -> ConnId {
        self.tick(now);
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        self.conns.insert(
            conn,
            Conn {
                framer: Framer::new(self.config.limits),
                out: VecDeque::new(),
                out_bytes: 0,
                held_until: None,
                broken: false,
            },
        );
        self.event(SimEvent::Connected { conn });
        conn
    }

    /// The connection is gone: its subscription dialogs and pending output go with it.
    /// Closing an unknown connection does nothing.
    pub fn close(&mut self, conn: ConnId) {
        if self.conns.remove(&conn).is_none() {
            return;
        }
        self.held.retain(|h| h.conn != conn);
        let gone: Vec<DialogKey> = self
            .dialogs
            .iter()
            .filter(|(_, d)| d.conn == conn)
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.forget_dialog(&key);
            self.event(SimEvent::SubscriptionEnded {
                call_id: key.0,
                reason: "connection closed".to_owned(),
            });
        }
        self.event(SimEvent::Closed { conn });
    }

    /// Whether the connection is open (the simulator closes a connection itself when its
    /// backlog passes [`SimConfig::max_backlog`]).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// The open connections.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }

    /// Bytes received on `conn`: requests are answered, responses read, keep-alive pings
    /// answered with a pong.
    ///
    /// # Errors
    /// [`SimError::Framing`] when the bytes are not SIP (the caller must close the
    /// connection); [`SimError::UnknownConnection`]; [`SimError::Backlog`] when the
    /// simulator closed the connection because the peer does not read.
    pub fn handle_bytes(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        now: Instant,
    ) -> Result<(), SimError> {
        let now = self.tick(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(SimError::UnknownConnection(conn));
        };
        c.framer.push(bytes);
        while let Some(c) = self.conns.get_mut(&conn) {
            match c.framer.next_frame() {
                Ok(Some(Frame::Message(Message::Request(request)))) => {
                    self.on_request(conn, &request, now);
                }
                Ok(Some(Frame::Message(Message::Response(response)))) => {
                    self.on_response(conn, &response);
                }
                Ok(Some(Frame::Ping)) => self.push_out(conn, presence_sip::PONG.to_vec()),
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => break,
                Err(source) => {
                    self.event(SimEvent::ConnectionError {
                        conn,
                        error: source.to_string(),
                    });
                    self.finish(now);
                    return Err(SimError::Framing { conn, source });
                }
            }
        }
        let broken = self.conns.get(&conn).is_some_and(|c| c.broken);
        self.finish(now);
        if broken {
            return Err(SimError::Backlog {
                conn,
                limit: self.config.max_backlog,
            });
        }
        Ok(())
    }

    /// The next bytes to write on `conn`, if any.
    pub fn poll_transmit(&mut self, conn: ConnId) -> Option<Vec<u8>> {
        let c = self.conns.get_mut(&conn)?;
        let bytes = c.out.pop_front()?;
        c.out_bytes = c.out_bytes.saturating_sub(bytes.len());
        Some(bytes)
    }

    /// Time passed: held-back responses are released, subscriptions that were not
    /// refreshed end (with a final `NOTIFY` `terminated;reason=timeout`), time-bounded
    /// publications expire.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        // Held-back output. Releases of one connection never decrease, so taking the due
        // entries in order keeps each connection's order.
        let mut kept = VecDeque::with_capacity(self.held.len());
        let mut released = Vec::new();
        for held in std::mem::take(&mut self.held) {
            if held.release <= now {
                released.push(held);
            } else {
                kept.push_back(held);
            }
        }
        self.held = kept;
        for held in released {
            self.push_out(held.conn, held.bytes);
        }
        let still_held: BTreeSet<ConnId> = self.held.iter().map(|h| h.conn).collect();
        for (id, c) in &mut self.conns {
            if !still_held.contains(id) {
                c.held_until = None;
            }
        }
        // Subscriptions not refreshed in time.
        let expired: Vec<DialogKey> = self
            .dialogs
            .iter()
            .filter(|(_, d)| d.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.send_notify(&key, "terminated;reason=timeout", None, true, &[], &[]);
            self.forget_dialog(&key);
            self.event(SimEvent::SubscriptionEnded {
                call_id: key.0,
                reason: "timeout".to_owned(),
            });
        }
        // Time-bounded publications.
        if self.world.next_expiry().is_some_and(|at| at <= now) {
            let before: Vec<(SipUri, Option<Shown>)> = self
                .world
                .expire_candidates(now)
                .into_iter()
                .map(|u| {
                    let shown = self.world.shown(&u);
                    (u, shown)
                })
                .collect();
            self.world.expire(now);
            for (user, shown) in before {
                self.changed(&user, shown, ChangeSource::Expiry);
            }
        }
        self.finish(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let held = self.held.iter().map(|h| h.release).min();
        let dialogs = self.dialogs.values().map(|d| d.expires_at).min();
        [held, dialogs, self.world.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next event of the log, if any (the log keeps the latest 65 536).
    pub fn poll_event(&mut self) -> Option<SimEvent> {
        self.events.pop_front()
    }

    /// Writes `bytes` to `conn` as they are, behind what is already queued (a fault: for
    /// example bytes that are not SIP). Unknown connections are ignored.
    pub fn send_raw(&mut self, conn: ConnId, bytes: &[u8]) {
        self.push_out(conn, bytes.to_vec());
        self.reap();
    }

    /// Queues bytes for a connection, behind anything held back for it.
    fn transmit(&mut self, conn: ConnId, bytes: Vec<u8>, response: bool) {
        let now = self.now();
        let delay = self.faults.delay;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let hold = response && !delay.is_zero();
        // Nothing held and nothing to hold: out at once. (Before any input brought a time,
        // nothing can be held either: there is no "when".)
        let Some(now) = now.filter(|_| hold || c.held_until.is_some()) else {
            self.push_out(conn, bytes);
            return;
        };
        let mut release = if hold {
            now.checked_add(delay).unwrap_or(now)
        } else {
            now
        };
        if let Some(last) = c.held_until {
            release = release.max(last);
        }
        c.held_until = Some(release);
        self.held.push_back(Held {
            release,
            conn,
            bytes,
        });
    }

    fn push_out(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let limit = self.config.max_backlog;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.broken {
            return;
        }
        c.out_bytes += bytes.len();
        c.out.push_back(bytes);
        if c.out_bytes > limit {
            c.broken = true;
            c.out.clear();
            c.out_bytes = 0;
        }
    }

    /// Closes connections whose backlog overflowed.
    fn reap(&mut self) {
        let broken: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.broken)
            .map(|(id, _)| *id)
            .collect();
        for conn in broken {
            self.event(SimEvent::Warning {
                message: format!(
                    "{conn}: more than {} bytes wait to be written; closing it",
                    self.config.max_backlog
                ),
            });
            self.close(conn);
        }
    }

    /// The end of every input: pending notifications go out, overflowing connections close.
    fn finish(&mut self, now: Instant) {
        self.flush_notifications(now);
        self.reap();
    }

    // ----------------------------------------------------------------- the world

    /// The user picked a state in their own client: the static manual `userState`
    /// (instance `0x20000000`) is written to containers 2 and 3 with `availability` and,
    /// when given, `activity` as the custom text for LCID 1033; both instances' versions go
    /// up, so the bridge's next publication for this user gets a `409` and must recover.
    /// Watchers are notified when what they see changes.
    pub fn set_user_presence(
        &mut self,
        user: &SipUri,
        availability: u32,
        activity: Option<&str>,
        now: Instant,
    ) {
        self.set_users_presence(&[(user.clone(), availability, activity)], now);
    }

    /// Several users pick a state at the same moment: as
    /// [`set_user_presence`](Self::set_user_presence) for each, with the notifications
    /// gathered, so a dialog that watches several of them gets one batched
    /// (`multipart/related`) notification.
    pub fn set_users_presence(&mut self, changes: &[(SipUri, u32, Option<&str>)], now: Instant) {
        let now = self.tick(now);
        for (user, availability, activity) in changes {
            let mut state = StateBody::user_state(*availability);
            if let Some(text) = activity {
                state = state.with_custom(1033, *text);
            }
            let before = self.world.shown(user);
            self.world.set_manual_state(user, &state);
            self.changed(user, before, ChangeSource::User);
        }
        self.finish(now);
    }

    /// What watchers of `user` see, `None` when the user has no aggregate state.
    pub fn shows(&self, user: &SipUri) -> Option<Shown> {
        self.world.shown(user)
    }

    /// The current version of a category instance of `user` (0 when it does not exist).
    pub fn version(&self, user: &SipUri, category: &str, instance: u32, container: u32) -> u32 {
        self.world.version(
            user,
            InstanceKey {
                category,
                instance,
                container,
            },
        )
    }

    /// How many publication requests were accepted (`200 OK`) so far.
    pub fn published_count(&self) -> u64 {
        self.published
    }

    /// How many subscription dialogs are active.
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }

    /// The users watched by the active dialogs (each once).
    pub fn watched_users(&self) -> BTreeSet<SipUri> {
        self.dialogs
            .values()
            .flat_map(|d| d.resources.keys().cloned())
            .collect()
    }

    /// `user`'s aggregate may have changed from `before`: log it and mark the dialogs
    /// that watch the user.
    fn changed(&mut self, user: &SipUri, before: Option<Shown>, source: ChangeSource) {
        let after = self.world.shown(user);
        if after == before {
            return;
        }
        for key in self.watchers.get(user).into_iter().flatten() {
            if let Some(dialog) = self.dialogs.get_mut(key)
                && dialog.resources.contains_key(user)
            {
                dialog.pending.insert(user.clone());
            }
        }
        self.event(SimEvent::UserChanged {
            user: user.clone(),
            shown: after,
            source,
        });
    }

    /// `key` now watches `user`.
    fn watch(&mut self, user: &SipUri, key: &DialogKey) {
        let keys = self.watchers.entry(user.clone()).or_default();
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }

    /// `key` no longer watches `user`.
    fn unwatch(&mut self, user: &SipUri, key: &DialogKey) {
        if let Some(keys) = self.watchers.get_mut(user) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.watchers.remove(user);
            }
        }
    }

    /// Whether [`Simulator::watchers`] is exactly the index of the dialogs' resources.
    #[cfg(test)]
    fn watchers_match_dialogs(&self) -> bool {
        let mut index: HashMap<SipUri, BTreeSet<DialogKey>> = HashMap::new();
        for (key, dialog) in &self.dialogs {
            for user in dialog.resources.keys() {
                index.entry(user.clone()).or_default().insert(key.clone());
            }
        }
        let kept: HashMap<SipUri, BTreeSet<DialogKey>> = self
            .watchers
            .iter()
            .map(|(user, keys)| (user.clone(), keys.iter().cloned().collect()))
            .collect();
        index == kept
            && self
                .watchers
                .values()
                .all(|keys| keys.len() == keys.iter().collect::<BTreeSet<_>>().len())
    }

    /// Removes a dialog and its users from [`Simulator::watchers`].
    fn forget_dialog(&mut self, key: &DialogKey) {
        if let Some(dialog) = self.dialogs.remove(key) {
            for user in dialog.resources.keys() {
                self.unwatch(user, key);
            }
        }
    }

    fn flush_notifications(&mut self, now: Instant) {
        let due: Vec<(DialogKey, Vec<SipUri>)> = self
            .dialogs
            .iter_mut()
            .filter(|(_, d)| !d.pending.is_empty())
            .map(|(k, d)| {
                (
                    k.clone(),
                    std::mem::take(&mut d.pending).into_iter().collect(),
                )
            })
            .collect();
        for (key, users) in due {
            let body = self.update_body(&key, &users);
            let state = self.active_state(&key, Some(now));
            self.send_notify(&key, &state, body, false, &users, &[]);
        }
    }

    /// `active;expires=N`, N the seconds the dialog has left at `now` (or the latest time
    /// an input brought).
    fn active_state(&self, key: &DialogKey, now: Option<Instant>) -> String {
        let left = match (now.or(self.now()), self.dialogs.get(key)) {
            (Some(now), Some(d)) => seconds_until(now, d.expires_at),
            _ => 0,
        };
        format!("active;expires={left}")
    }

    // ----------------------------------------------------------------- the fault menu

    /// The next `count` requests of `method` are answered with `status` (a `503` or `429`
    /// gets `Retry-After: 1`). Calls add up: each is used up in turn.
    ///
    /// # Errors
    /// [`SimError::InvalidStatus`] unless `status` is in `300..=699`.
    pub fn fail_next(&mut self, method: Method, count: u32, status: u16) -> Result<(), SimError> {
        if !is_benign_failure(status) {
            return Err(SimError::InvalidStatus(status));
        }
        if count > 0 {
            self.faults.fail_next.push(FailNext {
                method,
                remaining: count,
                status,
            });
        }
        Ok(())
    }

    /// Each publication request is, with probability `rate` (0 to 1), answered `409`
    /// WrongDelta as if another endpoint of the user had just published the same
    /// instances: their versions go up first, so the fault's `curVersion` is the new one.
    pub fn random_conflicts(&mut self, rate: f64) {
        self.faults.conflict_rate = rate;
    }

    /// Each request (other than `ACK`) is, with probability `rate` (0 to 1), answered
    /// `status` without being applied.
    ///
    /// # Errors
    /// [`SimError::InvalidStatus`] unless `status` is in `300..=699`.
    pub fn random_errors(&mut self, rate: f64, status: u16) -> Result<(), SimError> {
        if !is_benign_failure(status) {
            return Err(SimError::InvalidStatus(status));
        }
        self.faults.error_rate = rate;
        self.faults.error_status = status;
        Ok(())
    }

    /// Responses are held back for `delay` (released by
    /// [`handle_timeout`](Self::handle_timeout)); later output of the same connection
    /// waits behind them so the order on the wire is kept. Zero switches it off for new
    /// responses.
    pub fn delay_responses(&mut self, delay: Duration) {
        self.faults.delay = delay;
    }

    /// Switches every fault of the menu off (held-back responses still go at their time).
    pub fn clear_faults(&mut self) {
        self.faults = Faults::default();
    }

    /// Ends every subscription: a `NOTIFY` with `Subscription-State:
    /// terminated;reason=deactivated` to each dialog, which is then forgotten.
    pub fn terminate_subscriptions(&mut self) {
        let keys: Vec<DialogKey> = self.dialogs.keys().cloned().collect();
        for key in keys {
            self.send_notify(&key, "terminated;reason=deactivated", None, true, &[], &[]);
            self.forget_dialog(&key);
            self.event(SimEvent::SubscriptionEnded {
                call_id: key.0,
                reason: "deactivated".to_owned(),
            });
        }
        self.reap();
    }

    /// Ends the subscription to one user in every dialog that watches it: a notification
    /// whose RLMI part marks the resource `terminated` (reason `deactivated`); the dialogs
    /// stay for their other users.
    pub fn terminate_resource(&mut self, user: &SipUri) {
        let keys: Vec<DialogKey> = self
            .dialogs
            .iter()
            .filter(|(_, d)| d.resources.contains_key(user))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let body = self.terminated_body(&key, user);
            let state = self.active_state(&key, None);
            self.send_notify(&key, &state, body, false, &[], std::slice::from_ref(user));
            if let Some(d) = self.dialogs.get_mut(&key) {
                d.resources.remove(user);
                d.pending.remove(user);
            }
            self.unwatch(user, &key);
        }
        self.reap();
    }

    // ----------------------------------------------------------------- requests

    fn on_response(&mut self, conn: ConnId, response: &Response) {
        let status = response.status().as_u16();
        let call_id = response.headers().call_id().unwrap_or_default().to_owned();
        self.event(SimEvent::Response {
            conn,
            status,
            call_id: call_id.clone(),
        });
        if status == 481 {
            let gone: Vec<DialogKey> = self
                .dialogs
                .keys()
                .filter(|(c, _)| *c == call_id)
                .cloned()
                .collect();
            for key in gone {
                self.forget_dialog(&key);
                self.event(SimEvent::SubscriptionEnded {
                    call_id: key.0,
                    reason: "rejected by the subscriber".to_owned(),
                });
            }
        }
    }

    fn on_request(&mut self, conn: ConnId, request: &Request, now: Instant) {
        let method = request.method().clone();
        self.event(SimEvent::Request {
            conn,
            method: method.to_string(),
            uri: request.uri().to_owned(),
            call_id: request.headers().call_id().unwrap_or_default().to_owned(),
        });
        // Requests that get no response.
        if matches!(method, Method::Ack | Method::Benotify) {
            return;
        }
        if let Err(problem) = check_request(request) {
            self.answer_error(conn, request, 400, diagnostics::BAD_HEADER, &problem);
            return;
        }
        if let Some((status, fault)) = self.injected_failure(&method) {
            self.event(SimEvent::FaultInjected {
                conn,
                method: method.to_string(),
                status,
                fault,
            });
            self.answer_error(
                conn,
                request,
                status,
                diagnostics::INJECTED,
                "injected fault",
            );
            return;
        }
        match method {
            Method::Service => self.on_service(conn, request, now),
            Method::Subscribe => self.on_subscribe(conn, request, now),
            Method::Options => {
                let response = self.response(request, 200).and_then(|r| {
                    r.header("Allow", ALLOW)?
                        .header("Supported", SUPPORTED)?
                        .header("Accept", content_type::PUBLISH)
                });
                self.send_response(conn, request, response);
            }
            _ => self.answer_error(
                conn,
                request,
                501,
                diagnostics::NOT_IMPLEMENTED,
                "the simulator does not implement this method",
            ),
        }
    }

    fn injected_failure(&mut self, method: &Method) -> Option<(u16, &'static str)> {
        if let Some(entry) = self
            .faults
            .fail_next
            .iter_mut()
            .find(|f| f.method == *method && f.remaining > 0)
        {
            entry.remaining -= 1;
            let status = entry.status;
            self.faults.fail_next.retain(|f| f.remaining > 0);
            return Some((status, "fail_next"));
        }
        if self.rng.chance(self.faults.error_rate) {
            return Some((self.faults.error_status, "random_errors"));
        }
        None
    }

    /// A response to `request` with a fresh To-tag (added when the request's `To` has
    /// none).
    fn response(
        &mut self,
        request: &Request,
        status: u16,
    ) -> Result<Response, presence_sip::SipError> {
        let tag = self.rng.hex(10);
        tagged_response(request, status, &tag)
    }

    fn send_response(
        &mut self,
        conn: ConnId,
        request: &Request,
        response: Result<Response, presence_sip::SipError>,
    ) {
        match response {
            Ok(response) => {
                self.event(SimEvent::Answered {
                    conn,
                    method: request.method().to_string(),
                    status: response.status().as_u16(),
                    reason: response.reason().to_owned(),
                    call_id: request.headers().call_id().unwrap_or_default().to_owned(),
                });
                self.transmit(conn, response.to_bytes(), true);
            }
            Err(error) => self.event(SimEvent::Warning {
                message: format!("cannot answer a {} request: {error}", request.method()),
            }),
        }
    }

    fn diagnostics_value(&self, code: u32, reason: &str) -> String {
        format!(
            "{code};reason={};source={}",
            presence_sip::quote(&header_safe(reason)),
            presence_sip::quote(&header_safe(&self.config.host))
        )
    }

    fn answer_error(
        &mut self,
        conn: ConnId,
        request: &Request,
        status: u16,
        code: u32,
        reason: &str,
    ) {
        let diagnostics = self.diagnostics_value(code, reason);
        let response = self.response(request, status).and_then(|r| {
            let mut r = r.header("ms-diagnostics", &diagnostics)?;
            if matches!(status, 503 | 429) {
                r = r.header("Retry-After", "1")?;
            }
            if matches!(status, 405 | 501) {
                r = r.header("Allow", ALLOW)?;
            }
            if status == 489 {
                r = r.header("Allow-Events", "presence")?;
            }
            Ok(r)
        });
        self.send_response(conn, request, response);
    }

    fn on_service(&mut self, conn: ConnId, request: &Request, now: Instant) {
        let is_publish = request
            .headers()
            .content_type()
            .ok()
            .flatten()
            .is_some_and(|ct| ct.is(content_type::PUBLISH));
        if !is_publish {
            let response = self.response(request, 415).and_then(|r| {
                r.header("Accept", content_type::PUBLISH)?.header(
                    "ms-diagnostics",
                    self.diagnostics_value(
                        diagnostics::UNSUPPORTED_BODY,
                        "the simulator reads only category publications in SERVICE",
                    ),
                )
            });
            self.send_response(conn, request, response);
            return;
        }
        let publish = match Publish::parse(request.body()) {
            Ok(publish) => publish,
            Err(error) => {
                let reason = format!("unreadable category publication: {error}");
                self.answer_error(conn, request, 400, diagnostics::BAD_BODY, &reason);
                return;
            }
        };
        let owner = match owner_of(request, &publish) {
            Ok(owner) => owner,
            Err(problem) => {
                self.answer_error(conn, request, 400, diagnostics::BAD_BODY, &problem);
                return;
            }
        };
        let mut injected = false;
        if self.rng.chance(self.faults.conflict_rate) {
            injected = true;
            for publication in &publish.publications {
                self.world.bump(&owner, InstanceKey::of(publication));
            }
        }
        let wrong = self.world.check(&owner, &publish.publications);
        if !wrong.is_empty() {
            if injected {
                self.event(SimEvent::FaultInjected {
                    conn,
                    method: "SERVICE".to_owned(),
                    status: 409,
                    fault: "random_conflicts",
                });
            }
            self.event(SimEvent::Conflict {
                user: owner,
                operations: wrong.clone(),
                injected,
            });
            let fault = Fault::wrong_delta(wrong).to_xml();
            let diagnostics = self.diagnostics_value(
                diagnostics::VERSION_CONFLICT,
                "a publication's version is not the current version of its category instance",
            );
            let response = self.response(request, 409).and_then(|r| {
                r.header("ms-diagnostics", &diagnostics)?
                    .with_body(content_type::FAULT, fault.into_bytes())
            });
            self.send_response(conn, request, response);
            return;
        }
        let first = publish.publications.iter().find_map(|p| p.state.as_ref());
        let availability = first.and_then(|s| s.availability);
        let texts = first.map(|s| s.custom.clone()).unwrap_or_default();
        let before = self.world.shown(&owner);
        // The parsed states move into the world.
        self.world.apply(&owner, publish.publications, now);
        self.published += 1;
        self.event(SimEvent::Published {
            user: owner.clone(),
            availability,
            texts,
        });
        self.changed(&owner, before, ChangeSource::Publication);
        let response = self.response(request, 200);
        self.send_response(conn, request, response);
    }

    fn on_subscribe(&mut self, conn: ConnId, request: &Request, now: Instant) {
        let headers = request.headers();
        let event = headers
            .get("Event")
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if !event.eq_ignore_ascii_case("presence") {
            self.answer_error(
                conn,
                request,
                489,
                diagnostics::BAD_EVENT,
                "the simulator knows only the presence event package",
            );
            return;
        }
        let (to_tag, asked) = match (headers.to_tag(), headers.expires()) {
            (Ok(tag), Ok(expires)) => (tag, expires.unwrap_or(self.config.max_expires)),
            _ => {
                self.answer_error(
                    conn,
                    request,
                    400,
                    diagnostics::BAD_HEADER,
                    "malformed To or Expires",
                );
                return;
            }
        };
        let granted = asked.min(self.config.max_expires);
        match to_tag {
            Some(tag) => self.refresh(conn, request, tag, granted, now),
            None => self.new_subscription(conn, request, granted, now),
        }
    }

    /// Reads the batch subscription body of a SUBSCRIBE, answering the error itself.
    fn batch_body(&mut self, conn: ConnId, request: &Request) -> Option<BatchSubscribe> {
        let is_batch = request
            .headers()
            .content_type()
            .ok()
            .flatten()
            .is_some_and(|ct| ct.is(content_type::BATCH_SUBSCRIBE));
        if !is_batch {
            let response = self.response(request, 415).and_then(|r| {
                r.header("Accept", content_type::BATCH_SUBSCRIBE)?.header(
                    "ms-diagnostics",
                    self.diagnostics_value(
                        diagnostics::UNSUPPORTED_BODY,
                        "a new subscription needs an application/msrtc-adrl-categorylist+xml body",
                    ),
                )
            });
            self.send_response(conn, request, response);
            return None;
        }
        match BatchSubscribe::parse(request.body()) {
            Ok(batch) => Some(batch),
            Err(error) => {
                let reason = format!("unreadable batch subscription: {error}");
                self.answer_error(conn, request, 400, diagnostics::BAD_BODY, &reason);
                None
            }
        }
    }

    fn new_subscription(&mut self, conn: ConnId, request: &Request, granted: u32, now: Instant) {
        let Some(batch) = self.batch_body(conn, request) else {
            return;
        };
        let headers = request.headers();
        let from = headers.get("From").unwrap_or_default().to_owned();
        let from_tag = headers.from_tag().ok().flatten();
        let to = headers.to_addr().ok().flatten();
        let (Some(_), Some(mut to)) = (from_tag, to) else {
            self.answer_error(
                conn,
                request,
                400,
                diagnostics::BAD_HEADER,
                "a new subscription needs a From tag and a To",
            );
            return;
        };
        let target = match headers.contact() {
            Ok(Some(contact)) => contact.uri,
            _ => headers
                .from_addr()
                .ok()
                .flatten()
                .map(|a| a.uri)
                .unwrap_or_default(),
        };
        if batch.action == SubscribeAction::Unsubscribe || granted == 0 {
            let response = self
                .response(request, 200)
                .and_then(|r| r.header("Expires", "0"));
            self.send_response(conn, request, response);
            return;
        }
        let supported: Vec<String> = headers
            .values("Supported")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let benotify = self.config.benotify && supported.iter().any(|s| s == "ms-benotify");
        let piggyback = self.config.piggyback_first_notify
            && supported.iter().any(|s| s == "ms-piggyback-first-notify");
        let local_tag = self.rng.hex(10);
        to.set_param("tag", Some(&local_tag));
        let call_id = headers.call_id().unwrap_or_default().to_owned();
        let mut resources = BTreeMap::new();
        for uri in &batch.resources {
            if let Ok(user) = SipUri::new(uri) {
                let id = self.rng.hex(8);
                resources.entry(user).or_insert(id);
            }
        }
        let users: Vec<SipUri> = resources.keys().cloned().collect();
        let key = (call_id.clone(), local_tag.clone());
        for user in &users {
            self.watch(user, &key);
        }
        self.dialogs.insert(
            key.clone(),
            Dialog {
                conn,
                call_id: call_id.clone(),
                our_from: to.to_string(),
                peer_from: from,
                target,
                list_uri: batch.uri,
                benotify,
                resources,
                expires_at: now
                    .checked_add(Duration::from_secs(u64::from(granted)))
                    .unwrap_or(now),
                cseq: 0,
                rlmi_version: 0,
                pending: BTreeSet::new(),
            },
        );
        self.event(SimEvent::Subscribed {
            conn,
            call_id: call_id.clone(),
            users,
            expires: granted,
            benotify,
        });
        let (body, shown_users) = self.initial_body(&key);
        let mut response = tagged_response(request, 200, &local_tag).and_then(|r| {
            r.header("Expires", granted.to_string())?
                .header("Contact", self.contact())
        });
        if benotify && let Ok(r) = &mut response {
            let _ = r.headers_mut().append("Supported", "ms-benotify");
        }
        // Piggy-backing puts the first notification in the 200; without a body to carry
        // (no resource has a state yet) the usual separate notification goes instead.
        if piggyback
            && let (Ok(r), Some((ct, bytes))) = (&mut response, &body)
            && r.set_body(ct, bytes.clone()).is_ok()
        {
            self.event(SimEvent::Notified {
                conn,
                call_id,
                method: "200".to_owned(),
                users: shown_users,
                terminated: Vec::new(),
            });
            self.send_response(conn, request, response);
            return;
        }
        self.send_response(conn, request, response);
        let state = format!("active;expires={granted}");
        self.send_notify(&key, &state, body, false, &shown_users, &[]);
    }

    fn refresh(
        &mut self,
        conn: ConnId,
        request: &Request,
        tag: String,
        granted: u32,
        now: Instant,
    ) {
        let key = (
            request.headers().call_id().unwrap_or_default().to_owned(),
            tag,
        );
        if !self.dialogs.contains_key(&key) {
            self.answer_error(
                conn,
                request,
                481,
                diagnostics::NO_DIALOG,
                "no such subscription dialog",
            );
            return;
        }
        if granted == 0 {
            self.forget_dialog(&key);
            self.event(SimEvent::SubscriptionEnded {
                call_id: key.0,
                reason: "unsubscribed".to_owned(),
            });
            let response = self
                .response(request, 200)
                .and_then(|r| r.header("Expires", "0"));
            self.send_response(conn, request, response);
            return;
        }
        // A body replaces the list of users; those new to the dialog get their state in
        // the next notification.
        let mut new_list = None;
        if !request.body().is_empty() {
            let Some(batch) = self.batch_body(conn, request) else {
                return;
            };
            if batch.action == SubscribeAction::Subscribe {
                new_list = Some(batch.resources);
            }
        }
        let mut fresh_ids = Vec::new();
        if let Some(list) = &new_list {
            for uri in list {
                if let Ok(user) = SipUri::new(uri) {
                    fresh_ids.push((user, self.rng.hex(8)));
                }
            }
        }
        let mut added = Vec::new();
        let mut dropped = Vec::new();
        if let Some(dialog) = self.dialogs.get_mut(&key) {
            dialog.conn = conn;
            dialog.expires_at = now
                .checked_add(Duration::from_secs(u64::from(granted)))
                .unwrap_or(now);
            if new_list.is_some() {
                let mut resources = BTreeMap::new();
                for (user, id) in fresh_ids {
                    let id = dialog.resources.get(&user).cloned().unwrap_or(id);
                    if !dialog.resources.contains_key(&user) {
                        added.push(user.clone());
                    }
                    resources.entry(user).or_insert(id);
                }
                dialog.pending.retain(|u| resources.contains_key(u));
                dropped = dialog
                    .resources
                    .keys()
                    .filter(|u| !resources.contains_key(*u))
                    .cloned()
                    .collect();
                dialog.resources = resources;
            }
        }
        for user in &dropped {
            self.unwatch(user, &key);
        }
        for user in &added {
            self.watch(user, &key);
        }
        for user in added {
            if self.world.shown(&user).is_some()
                && let Some(dialog) = self.dialogs.get_mut(&key)
            {
                dialog.pending.insert(user);
            }
        }
        self.event(SimEvent::Refreshed {
            call_id: key.0.clone(),
            expires: granted,
        });
        let response = self.response(request, 200).and_then(|r| {
            r.header("Expires", granted.to_string())?
                .header("Contact", self.contact())
        });
        self.send_response(conn, request, response);
    }

    fn contact(&self) -> String {
        format!(
            "<sip:{};transport={}>",
            self.config.host,
            self.config.via_transport.to_ascii_lowercase()
        )
    }
}

/// A response to `request` with `tag` as To-tag when the request's `To` has none.
fn tagged_response(
    request: &Request,
    status: u16,
    tag: &str,
) -> Result<Response, presence_sip::SipError> {
    let reason = presence_sip::StatusCode::new(status)?
        .canonical_reason()
        .unwrap_or("Unknown");
    let mut response = Response::for_request(request, status, reason)?;
    response.set_to_tag(tag)?;
    Ok(response)
}

/// The headers every request must have for the simulator to answer it sensibly.
fn check_request(request: &Request) -> Result<(), String> {
    let headers = request.headers();
    if headers.call_id().is_none_or(str::is_empty) {
        return Err("missing Call-ID".to_owned());
    }
    match headers.cseq() {
        Ok(Some(cseq)) if cseq.method == *request.method() => {}
        Ok(Some(cseq)) => {
            return Err(format!(
                "the CSeq method {} is not the request's method {}",
                cseq.method,
                request.method()
            ));
        }
        Ok(None) => return Err("missing CSeq".to_owned()),
        Err(error) => return Err(error.to_string()),
    }
    for (name, addr) in [("From", headers.from_addr()), ("To", headers.to_addr())] {
        match addr {
            Ok(Some(_)) => {}
            Ok(None) => return Err(format!("missing {name}")),
            Err(error) => return Err(error.to_string()),
        }
    }
    if headers.get("Via").is_none() {
        return Err("missing Via".to_owned());
    }
    Ok(())
}

/// The user a publication is for: the `uri` of `<publications>`, which must be the user of
/// the Request-URI.
fn owner_of(request: &Request, publish: &Publish) -> Result<SipUri, String> {
    let owner = SipUri::new(&publish.uri)
        .map_err(|e| format!("the publications uri is not a user's SIP URI: {e}"))?;
    let target = request
        .uri_ref()
        .map_err(|e| e.to_string())
        .and_then(|uri| {
            let address = uri.address_of_record();
            // The usual case: written exactly as the owner (a valid, lower-case SIP URI,
            // which `SipUri::new` would give back unchanged).
            if address == owner.as_str() {
                return Ok(owner.clone());
            }
            SipUri::new(&address).map_err(|e| e.to_string())
        })
        .map_err(|e| format!("the Request-URI is not a user's SIP URI: {e}"))?;
    if owner != target {
        return Err(format!(
            "the publications are for {owner} but the request is addressed to {target}"
        ));
    }
    Ok(owner)
}
