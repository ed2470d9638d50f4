//! The SIP SIMPLE endpoint as a sans-IO state machine (quinn-proto style).
//!
//! Inputs: [`Endpoint::connected`], [`Endpoint::disconnected`], [`Endpoint::handle_bytes`]
//! (TCP/TLS), [`Endpoint::handle_datagram`] (UDP), [`Endpoint::handle_timeout`],
//! [`Endpoint::publish`], [`Endpoint::unpublish`], [`Endpoint::subscribe`],
//! [`Endpoint::unsubscribe`]. Outputs: [`Endpoint::poll_transmit`] (a datagram, or bytes to
//! append to the stream), [`Endpoint::poll_timeout`], [`Endpoint::poll_event`]. Time comes
//! in as `now`; Call-IDs, tags, branches and cnonces come from a seeded generator.
//!
//! ## Readiness
//!
//! Once the socket is up ([`connected`](Endpoint::connected)) the endpoint probes the
//! server with `OPTIONS sip:DOMAIN`; any final answer (even 404) shows a SIP server is
//! there: [`Event::Ready`], subscriptions are made and publications go out. The same probe
//! runs every `keepalive`; a probe without an answer within `request-timeout` resets the
//! connection ([`Event::ResetConnection`]). Over UDP this is the only way to notice a server
//! that went away.
//!
//! ## Publications (RFC 3903)
//!
//! One publication per user, kept by its entity tag. Each call to
//! [`publish`](Endpoint::publish) or [`unpublish`](Endpoint::unpublish) settles exactly once
//! ([`Event::Published`] / [`Event::PublishFailed`]); a user has at most one request on the
//! wire and later calls wait behind it, in order; at most `max-in-flight` are on the wire.
//!
//! - The first publication has no `SIP-If-Match`; later ones modify it with `SIP-If-Match`
//!   and a body; a timer refreshes it (`SIP-If-Match`, no body) before the granted `Expires`
//!   runs out. Each `200` gives the entity tag to use next.
//! - A state the [`Mapping`](crate::mapping::Mapping) maps to *remove* (Offline) is sent as
//!   `Expires: 0` with `SIP-If-Match`; with no publication known, nothing is sent.
//! - `412 Conditional Request Failed`: the server lost the entity tag; the same body is
//!   published anew, without `SIP-If-Match` (this completes the one publication).
//! - `500` to a conditional request (Kamailio answers so for an entity tag it never had, and
//!   also when its database is locked): the same request once more after a short pause; a
//!   second `500` abandons the entity tag, publishes anew, and then removes the abandoned
//!   tag (`Expires: 0`), so that no second live publication is left behind.
//! - `423 Interval Too Brief`: the server's `Min-Expires` is used from then on, and the
//!   request is sent again.
//! - `401`/`407`: answered with digest credentials (once per nonce, again on `stale=true`),
//!   and the challenge is kept to authorize later requests up front.
//! - Every other failure is reported once (with `Retry-After`), never re-sent.
//!
//! Entity tags survive a lost connection (publications are the server's, not the
//! connection's): after a reconnect the caller's resync modifies them, and a server that
//! restarted without them answers `412`.
//!
//! ## Subscriptions (RFC 3856, RFC 6665)
//!
//! One dialog per subscribed user: `SUBSCRIBE` with `Event: presence` and `Accept:
//! application/pidf+xml`, refreshed in the dialog at 80 % of the granted `Expires`; made anew
//! after `481`, a `terminated` `Subscription-State` (at once for `timeout`, `deactivated`
//! and `probation`, after `retry-after` or a back-off otherwise), a refusal (back-off) or a
//! reconnect. `NOTIFY` bodies are read as PIDF and mapped to the SfB scale; an empty body in
//! an active subscription means nothing is published for the user: Offline (18000). Each
//! new dialog is reported once ([`Event::Subscribed`]), by its `2xx` or by its first
//! `NOTIFY` (which may overtake the `2xx`), always before its first presence update. A
//! `NOTIFY` in a dialog the endpoint gave up on (its `SUBSCRIBE` got no answer in time, or a
//! newer dialog replaced it) is answered `481`, so that the server ends it, and reports
//! nothing.

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use presence_model::random::{Backoff, SplitMix64};
use presence_model::timers::Timers;
use presence_model::{Publication, SipUri};
use presence_sip::{Frame, Framer, Limits, Message, Method, Request, Response, SubState};
use presence_transport::TransportError;

use crate::digest::Challenge;
use crate::mapping::PushTarget;
use crate::settings::EndpointConfig;

/// Identifies one call to [`Endpoint::publish`] or [`Endpoint::unpublish`]; its outcome
/// comes back as an [`Event`]. Increasing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishId(pub u64);

/// What the endpoint reports.
#[derive(Debug)]
pub enum Event {
    /// The server answered the probe after a (re)connection: it is ready for publications.
    Ready,
    /// A subscribed user's presence, mapped onto the SfB scale.
    Presence {
        /// The user.
        user: SipUri,
        /// The availability.
        raw_availability: u64,
        /// The note or activity token.
        activity: Option<String>,
    },
    /// The publication (or removal) `id` was accepted.
    Published {
        /// The call.
        id: PublishId,
        /// The user.
        user: SipUri,
    },
    /// The publication (or removal) `id` will not be delivered; reported once.
    PublishFailed {
        /// The call.
        id: PublishId,
        /// The user.
        user: SipUri,
        /// Why.
        error: TransportError,
    },
    /// New subscription dialogs were accepted for these users (not refreshes).
    Subscribed {
        /// The users.
        users: Vec<SipUri>,
    },
    /// A subscription was refused or got no answer; it is tried again after a back-off.
    SubscriptionFailed {
        /// The user.
        user: SipUri,
        /// The status and reason.
        reason: String,
    },
    /// The connection must be closed and made again.
    ResetConnection {
        /// Why.
        reason: String,
    },
    /// Something odd that stopped nothing (an unreadable NOTIFY body, a missing ETag).
    Warning {
        /// What.
        message: String,
    },
}

/// Why a publication request is sent.
#[derive(Clone, Debug)]
enum What {
    /// Publish this PIDF body (modify when an entity tag is known).
    Publish(String),
    /// Remove the publication (`Expires: 0`).
    Remove,
    /// Refresh the publication (no body).
    Refresh,
    /// Remove an abandoned entity tag.
    RemoveOrphan(String),
}

#[derive(Clone, Debug)]
struct Op {
    id: Option<PublishId>,
    what: What,
    /// Publish without `SIP-If-Match` even if an entity tag is known (after a 412/500).
    anew: bool,
    /// Fix-ups used (412, 423, 500).
    fixups: u8,
}

/// A user's publication.
#[derive(Debug, Default)]
struct Pub {
    etag: Option<String>,
    /// The body the server holds (to publish anew after a 412, to refresh).
    body: Option<String>,
    /// The op being sent (on the wire, or waiting for room in the window).
    current: Option<Op>,
    on_wire: bool,
    waiting: VecDeque<Op>,
    /// Entity tags abandoned after a 500, to be removed.
    orphans: Vec<String>,
    refresh_at: Option<Instant>,
}

impl Pub {
    fn is_idle(&self) -> bool {
        self.current.is_none() && self.waiting.is_empty()
    }
}

#[derive(Clone, Debug)]
struct Dialog {
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    cseq: u32,
    target: String,
    /// Whether [`Event::Subscribed`] was reported for this dialog: by its `2xx` or by its
    /// first `NOTIFY`, whichever came first (RFC 6665 lets the NOTIFY overtake the answer).
    announced: bool,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum SubPhase {
    /// Queued to be sent.
    Queued,
    /// A SUBSCRIBE is on the wire.
    OnWire,
    /// Accepted; a refresh timer runs.
    Active,
    /// Waiting for a retry timer.
    Waiting,
}

#[derive(Debug)]
struct Sub {
    phase: SubPhase,
    dialog: Option<Dialog>,
    attempt: u32,
}

#[derive(Clone, Debug)]
enum TxKind {
    Publish { user: SipUri },
    Subscribe { user: SipUri },
    Unsubscribe,
    Probe,
}

#[derive(Debug)]
struct Tx {
    kind: TxKind,
    request: Request,
    /// Digest answers sent for this request so far.
    auth_tries: u8,
    /// UDP: the next retransmission interval.
    interval: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Timer {
    /// The final answer to this branch is overdue.
    Final(String),
    /// UDP: send this branch again.
    Retransmit(String),
    /// Refresh this user's publication.
    Refresh(SipUri),
    /// Send this user's publication op again (after a 500).
    PublishRetry(SipUri),
    /// (Re-)subscribe this user.
    Subscribe(SipUri),
    /// Probe the server.
    Keepalive,
}

/// RFC 3261 T1 and T2.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Bytes waiting to be written before the connection is reset.
const MAX_OUT_BYTES: usize = 16 * 1024 * 1024;
/// NOTIFY answers kept to answer UDP retransmissions the same way.
const ANSWERED_CACHE: usize = 4096;
/// The most bytes of a message from the server (a NOTIFY with a PIDF body of 64 KiB fits).
const MAX_BODY: usize = 256 * 1024;

/// The sans-IO SIP SIMPLE endpoint.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    rng: SplitMix64,
    connected: bool,
    ready: bool,
    framer: Framer,
    out: VecDeque<Vec<u8>>,
    out_bytes: usize,
    events: VecDeque<Event>,
    transactions: HashMap<String, Tx>,
    timers: Timers<Timer>,
    pubs: HashMap<SipUri, Pub>,
    send_queue: VecDeque<SipUri>,
    pubs_on_wire: usize,
    pubs_outstanding: usize,
    subs: HashMap<SipUri, Sub>,
    sub_queue: VecDeque<SipUri>,
    subs_on_wire: usize,
    /// Call-ID → the user of a subscription dialog (`None`: ended by us).
    dialogs: HashMap<String, Option<SipUri>>,
    answered: HashMap<(String, u32), Vec<u8>>,
    answered_order: VecDeque<(String, u32)>,
    challenge: Option<(Challenge, u32)>,
    min_expires: Option<Duration>,
    next_publish_id: u64,
    subscribed_batch: Vec<SipUri>,
    cseq: u32,
}

impl Endpoint {
    /// A disconnected endpoint. `seed` drives Call-IDs, tags, branches, cnonces and jitter.
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        Endpoint {
            config,
            rng: SplitMix64::new(seed),
            connected: false,
            ready: false,
            framer: Framer::new(limits()),
            out: VecDeque::new(),
            out_bytes: 0,
            events: VecDeque::new(),
            transactions: HashMap::new(),
            timers: Timers::new(),
            pubs: HashMap::new(),
            send_queue: VecDeque::new(),
            pubs_on_wire: 0,
            pubs_outstanding: 0,
            subs: HashMap::new(),
            sub_queue: VecDeque::new(),
            subs_on_wire: 0,
            dialogs: HashMap::new(),
            answered: HashMap::new(),
            answered_order: VecDeque::new(),
            challenge: None,
            min_expires: None,
            next_publish_id: 0,
            subscribed_batch: Vec::new(),
            cseq: 0,
        }
    }

    /// The endpoint's settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Sets the `host:port` written in Via and Contact (the socket's local address).
    pub fn set_local_host(&mut self, host: String) {
        self.config.local_host = host;
    }

    /// Whether the server answered the probe on this connection.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The socket is up: the server is probed; [`Event::Ready`] follows its answer.
    pub fn connected(&mut self, now: Instant) {
        self.reset_connection_state();
        self.fail_outstanding();
        self.connected = true;
        self.ready = false;
        self.send_probe(now);
    }

    /// The socket is gone: requests on the wire are dropped, every publication and removal
    /// not settled fails with `NotConnected`. Entity tags and the subscription set are kept.
    pub fn disconnected(&mut self, _now: Instant) {
        self.connected = false;
        self.ready = false;
        self.fail_outstanding();
        self.reset_connection_state();
    }

    fn reset_connection_state(&mut self) {
        self.framer = Framer::new(limits());
        self.out.clear();
        self.out_bytes = 0;
        self.transactions.clear();
        self.timers.clear();
        self.send_queue.clear();
        self.pubs_on_wire = 0;
        self.sub_queue.clear();
        self.subs_on_wire = 0;
        self.dialogs.clear();
        for sub in self.subs.values_mut() {
            sub.phase = SubPhase::Queued;
            sub.dialog = None;
            sub.attempt = 0;
        }
    }

    fn fail_outstanding(&mut self) {
        let mut failed = Vec::new();
        for (user, p) in &mut self.pubs {
            p.on_wire = false;
            for op in p.current.take().into_iter().chain(p.waiting.drain(..)) {
                if let Some(id) = op.id {
                    failed.push((id, user.clone()));
                }
            }
        }
        failed.sort();
        self.pubs_outstanding -= failed.len();
        for (id, user) in failed {
            self.events.push_back(Event::PublishFailed {
                id,
                user,
                error: TransportError::NotConnected,
            });
        }
    }

    /// Publishes `publication` as `user`'s presence (mapped by the configured
    /// [`Mapping`](crate::mapping::Mapping)): modify or create, remove for Offline, nothing
    /// for availability 0. Fails at once with `NotConnected` before [`Event::Ready`].
    pub fn publish(&mut self, user: SipUri, publication: &Publication, now: Instant) -> PublishId {
        let what = match self.config.mapping.push(publication) {
            PushTarget::Nothing => None,
            PushTarget::Remove => Some(What::Remove),
            PushTarget::Publish(state) => Some(What::Publish(crate::pidf::write(
                user.as_str(),
                &self.config.tuple_id,
                &format!("{}-p", self.config.tuple_id),
                &state,
                &publication.presence.activities,
            ))),
        };
        self.request(user, what, now)
    }

    /// Removes the bridge's publication for `user` (`Expires: 0`); with none known,
    /// settles at once. Ordered with the user's publications.
    pub fn unpublish(&mut self, user: SipUri, now: Instant) -> PublishId {
        self.request(user, Some(What::Remove), now)
    }

    fn request(&mut self, user: SipUri, what: Option<What>, now: Instant) -> PublishId {
        self.next_publish_id += 1;
        let id = PublishId(self.next_publish_id);
        if !self.ready {
            self.events.push_back(Event::PublishFailed {
                id,
                user,
                error: TransportError::NotConnected,
            });
            return id;
        }
        let Some(what) = what else {
            self.events.push_back(Event::Published { id, user });
            return id;
        };
        self.pubs_outstanding += 1;
        let op = Op {
            id: Some(id),
            what,
            anew: false,
            fixups: 0,
        };
        let p = self.pubs.entry(user.clone()).or_default();
        p.waiting.push_back(op);
        self.advance(&user, now);
        self.pump(now);
        id
    }

    /// Adds users to the subscription set.
    pub fn subscribe(&mut self, users: impl IntoIterator<Item = SipUri>, now: Instant) {
        for user in users {
            if self.subs.contains_key(&user) {
                continue;
            }
            self.subs.insert(
                user.clone(),
                Sub {
                    phase: SubPhase::Queued,
                    dialog: None,
                    attempt: 0,
                },
            );
            if self.ready {
                self.sub_queue.push_back(user);
            }
        }
        self.pump(now);
    }

    /// Removes users from the subscription set (an un-SUBSCRIBE for each dialog).
    pub fn unsubscribe(&mut self, users: impl IntoIterator<Item = SipUri>, now: Instant) {
        for user in users {
            let Some(sub) = self.subs.remove(&user) else {
                continue;
            };
            self.timers.cancel(&Timer::Subscribe(user.clone()));
            if sub.phase == SubPhase::OnWire {
                self.subs_on_wire = self.subs_on_wire.saturating_sub(1);
            }
            if let Some(dialog) = sub.dialog {
                self.dialogs.insert(dialog.call_id.clone(), None);
                if dialog.remote_tag.is_some() && self.ready {
                    self.send_unsubscribe(&user, dialog, now);
                }
            }
        }
        self.sub_queue.retain(|u| self.subs.contains_key(u));
        self.pump(now);
    }

    /// The users in the subscription set.
    pub fn subscribed(&self) -> impl Iterator<Item = &SipUri> {
        self.subs.keys()
    }

    /// Publications and removals given and not settled.
    pub fn publications_outstanding(&self) -> usize {
        self.pubs_outstanding
    }

    /// Publication requests on the wire (at most `max-in-flight`).
    pub fn publications_in_flight(&self) -> usize {
        self.pubs_on_wire
    }

    /// Users with a live publication (an entity tag), as far as the endpoint knows.
    pub fn live_publications(&self) -> usize {
        self.pubs.values().filter(|p| p.etag.is_some()).count()
    }

    /// Bytes from the TCP/TLS stream. An error means the stream cannot be read further.
    pub fn handle_bytes(
        &mut self,
        bytes: &[u8],
        now: Instant,
    ) -> Result<(), presence_sip::SipError> {
        self.framer.push(bytes);
        loop {
            match self.framer.next_frame() {
                Ok(Some(Frame::Message(message))) => self.handle_message(message, now),
                Ok(Some(Frame::Ping)) => self.queue(presence_sip::PONG.to_vec()),
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => break,
                Err(error) => {
                    self.events.push_back(Event::ResetConnection {
                        reason: format!("unreadable data from the server: {error}"),
                    });
                    return Err(error);
                }
            }
        }
        self.pump(now);
        Ok(())
    }

    /// One UDP datagram from the server. An unreadable one is dropped with a warning (UDP
    /// has no stream to lose).
    pub fn handle_datagram(&mut self, datagram: &[u8], now: Instant) {
        if datagram.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return; // keep-alive
        }
        match Message::parse_with_limits(datagram, &limits()) {
            Ok(message) => self.handle_message(message, now),
            Err(error) => self.events.push_back(Event::Warning {
                message: format!(
                    "dropped an unreadable datagram ({} bytes): {error}",
                    datagram.len()
                ),
            }),
        }
        self.pump(now);
    }

    /// Time passed: retransmissions, overdue answers, refreshes, retries, probes.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Final(branch) => {
                    self.timers.cancel(&Timer::Retransmit(branch.clone()));
                    if let Some(tx) = self.transactions.remove(&branch) {
                        self.on_no_answer(tx, now);
                    }
                }
                Timer::Retransmit(branch) => {
                    if let Some(tx) = self.transactions.get_mut(&branch) {
                        let bytes = tx.request.to_bytes();
                        tx.interval = (tx.interval * 2).min(T2);
                        let next = tx.interval;
                        self.queue(bytes);
                        self.timers.set(Timer::Retransmit(branch), now + next);
                    }
                }
                Timer::Refresh(user) => {
                    if let Some(p) = self.pubs.get_mut(&user) {
                        p.refresh_at = None;
                        if p.is_idle() && p.etag.is_some() {
                            p.waiting.push_back(Op {
                                id: None,
                                what: What::Refresh,
                                anew: false,
                                fixups: 0,
                            });
                            self.advance(&user, now);
                        }
                    }
                }
                Timer::PublishRetry(user) => {
                    if self
                        .pubs
                        .get(&user)
                        .is_some_and(|p| p.current.is_some() && !p.on_wire)
                    {
                        self.send_queue.push_back(user);
                    }
                }
                Timer::Subscribe(user) => {
                    if let Some(sub) = self.subs.get_mut(&user)
                        && matches!(sub.phase, SubPhase::Active | SubPhase::Waiting)
                    {
                        sub.phase = SubPhase::Queued;
                        self.sub_queue.push_back(user);
                    }
                }
                Timer::Keepalive => self.send_probe(now),
            }
        }
        self.pump(now);
    }

    /// The next datagram or bytes to write.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let bytes = self.out.pop_front()?;
        self.out_bytes -= bytes.len();
        Some(bytes)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.flush_subscribed();
        self.events.pop_front()
    }

    /// Queues the users whose new dialogs were accepted as one [`Event::Subscribed`].
    /// Called before any [`Event::Presence`] is queued, so that a subscription's
    /// `Subscribed` always comes before its first presence update (which the caller reports
    /// unconditionally, as the first after a (re-)subscription).
    fn flush_subscribed(&mut self) {
        if !self.subscribed_batch.is_empty() {
            let users = std::mem::take(&mut self.subscribed_batch);
            self.events.push_back(Event::Subscribed { users });
        }
    }

    /// Reports `user`'s current dialog as subscribed, once per dialog.
    fn announce(&mut self, user: &SipUri) {
        if let Some(dialog) = self.subs.get_mut(user).and_then(|s| s.dialog.as_mut())
            && !dialog.announced
        {
            dialog.announced = true;
            self.subscribed_batch.push(user.clone());
        }
    }

    // ----- sending ---------------------------------------------------------------------

    fn queue(&mut self, bytes: Vec<u8>) {
        if !self.connected {
            return;
        }
        self.out_bytes += bytes.len();
        self.out.push_back(bytes);
        if self.out_bytes > MAX_OUT_BYTES {
            self.events.push_back(Event::ResetConnection {
                reason: format!(
                    "more than {MAX_OUT_BYTES} bytes wait to be written: the server does not read"
                ),
            });
        }
    }

    /// Makes the user's next op current when none is, and queues it for sending.
    fn advance(&mut self, user: &SipUri, _now: Instant) {
        let Some(p) = self.pubs.get_mut(user) else {
            return;
        };
        if p.current.is_some() {
            return;
        }
        let Some(op) = p.waiting.pop_front() else {
            return;
        };
        // A removal with nothing published settles at once.
        if matches!(op.what, What::Remove) && p.etag.is_none() {
            self.settle(user, op, Ok(()));
            self.advance(user, _now);
            return;
        }
        if matches!(op.what, What::Refresh) && p.etag.is_none() {
            self.advance(user, _now);
            return;
        }
        p.current = Some(op);
        self.send_queue.push_back(user.clone());
    }

    /// The current op of `user` is done: its caller is told, the next op goes.
    fn settle(&mut self, user: &SipUri, op: Op, result: Result<(), TransportError>) {
        if let Some(id) = op.id {
            self.pubs_outstanding -= 1;
            self.events.push_back(match result {
                Ok(()) => Event::Published {
                    id,
                    user: user.clone(),
                },
                Err(error) => Event::PublishFailed {
                    id,
                    user: user.clone(),
                    error,
                },
            });
        }
    }

    fn finish_op(&mut self, user: &SipUri, result: Result<(), TransportError>, now: Instant) {
        let op = self.pubs.get_mut(user).and_then(|p| {
            p.on_wire = false;
            p.current.take()
        });
        if let Some(op) = op {
            self.settle(user, op, result);
        }
        // Abandoned entity tags are removed before anything else of the user.
        if let Some(p) = self.pubs.get_mut(user)
            && p.etag.is_some()
            && let Some(orphan) = p.orphans.pop()
        {
            p.waiting.push_front(Op {
                id: None,
                what: What::RemoveOrphan(orphan),
                anew: false,
                fixups: 0,
            });
        }
        self.advance(user, now);
        if let Some(p) = self.pubs.get(user)
            && p.is_idle()
            && p.etag.is_none()
            && p.orphans.is_empty()
        {
            self.pubs.remove(user);
        }
    }

    fn pump(&mut self, now: Instant) {
        if !self.ready {
            return;
        }
        while self.pubs_on_wire < self.config.max_in_flight {
            let Some(user) = self.send_queue.pop_front() else {
                break;
            };
            self.send_publish(user, now);
        }
        while self.subs_on_wire < self.config.max_subscribes_in_flight {
            let Some(user) = self.sub_queue.pop_front() else {
                break;
            };
            if self
                .subs
                .get(&user)
                .is_some_and(|s| s.phase == SubPhase::Queued)
            {
                self.send_subscribe(user, now);
            }
        }
    }

    fn new_branch(&mut self) -> String {
        format!("z9hG4bK{}", self.rng.hex(16))
    }

    fn next_cseq(&mut self) -> u32 {
        self.cseq = self.cseq.wrapping_add(1).max(1);
        self.cseq
    }

    fn via_value(&self, branch: &str) -> String {
        let c = &self.config;
        let rport = if c.transport.is_stream() {
            ""
        } else {
            ";rport"
        };
        format!(
            "SIP/2.0/{} {};branch={branch}{rport}",
            c.transport.via_token(),
            c.local_host
        )
    }

    fn contact(&self) -> String {
        let c = &self.config;
        match c.transport.uri_param() {
            Some(t) => format!("<sip:presence-bridge@{};transport={t}>", c.local_host),
            None => format!("<sip:presence-bridge@{}>", c.local_host),
        }
    }

    /// A request with the headers every request carries; its branch is in its Via.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &mut self,
        method: Method,
        uri: &str,
        from: &str,
        from_tag: &str,
        to: &str,
        to_tag: Option<&str>,
        call_id: &str,
        cseq: u32,
    ) -> Result<(Request, String), presence_sip::SipError> {
        let branch = self.new_branch();
        let via = self.via_value(&branch);
        let c = &self.config;
        let to = match to_tag {
            Some(tag) => format!("<{to}>;tag={tag}"),
            None => format!("<{to}>"),
        };
        let request = Request::new(method.clone(), uri)?
            .header("Via", via)?
            .header("Max-Forwards", "70")?
            .header("From", format!("<{from}>;tag={from_tag}"))?
            .header("To", to)?
            .header("Call-ID", call_id)?
            .header("CSeq", format!("{cseq} {method}"))?
            .header("Contact", self.contact())?
            .header("User-Agent", &c.user_agent)?;
        Ok((request, branch))
    }

    /// Adds an up-front digest answer when a challenge is known.
    fn authorize(&mut self, request: &mut Request) {
        let Some(credentials) = self.config.credentials.clone() else {
            return;
        };
        let cnonce = self.rng.hex(16);
        let Some((challenge, nc)) = self.challenge.as_mut() else {
            return;
        };
        *nc += 1;
        let method = request.method().to_string();
        let value = challenge.authorize(&credentials, &method, request.uri(), *nc, &cnonce);
        let name = challenge.authorization_header_name();
        request.headers_mut().remove(name);
        let _ = request.headers_mut().append(name, &value);
    }

    fn start(
        &mut self,
        kind: TxKind,
        mut request: Request,
        branch: String,
        auth_tries: u8,
        now: Instant,
    ) {
        self.authorize(&mut request);
        self.queue(request.to_bytes());
        self.timers.set(
            Timer::Final(branch.clone()),
            now + self.config.request_timeout,
        );
        if !self.config.transport.is_stream() {
            self.timers.set(Timer::Retransmit(branch.clone()), now + T1);
        }
        self.transactions.insert(
            branch,
            Tx {
                kind,
                request,
                auth_tries,
                interval: T1,
            },
        );
    }

    fn send_probe(&mut self, now: Instant) {
        let domain = self.config.domain.clone();
        let app = self.config.application_uri.clone();
        let (call_id, tag) = (self.rng.hex(20), self.rng.hex(10));
        let target = format!("sip:{domain}");
        let cseq = self.next_cseq();
        match self.build(
            Method::Options,
            &target,
            &app,
            &tag,
            &target,
            None,
            &call_id,
            cseq,
        ) {
            Ok((request, branch)) => self.start(TxKind::Probe, request, branch, 0, now),
            Err(error) => self.events.push_back(Event::ResetConnection {
                reason: format!("cannot build the OPTIONS probe (check `domain`): {error}"),
            }),
        }
    }

    fn expires(&self) -> Duration {
        self.config
            .publish_expires
            .max(self.min_expires.unwrap_or_default())
    }

    fn send_publish(&mut self, user: SipUri, now: Instant) {
        let Some(p) = self.pubs.get(&user) else {
            return;
        };
        let Some(op) = p.current.clone() else {
            return;
        };
        if p.on_wire {
            return;
        }
        let etag = if op.anew { None } else { p.etag.clone() };
        let (if_match, expires, body) = match &op.what {
            What::Publish(body) => (etag, self.expires(), Some(body.clone())),
            What::Refresh => (etag, self.expires(), None),
            What::Remove => (etag, Duration::ZERO, None),
            What::RemoveOrphan(tag) => (Some(tag.clone()), Duration::ZERO, None),
        };
        if if_match.is_none() && body.is_none() {
            // Nothing to refresh or remove any more.
            self.finish_op(&user, Ok(()), now);
            return;
        }
        let (call_id, tag) = (self.rng.hex(20), self.rng.hex(10));
        let cseq = self.next_cseq();
        let built = self
            .build(
                Method::Publish,
                user.as_str(),
                user.as_str(),
                &tag,
                user.as_str(),
                None,
                &call_id,
                cseq,
            )
            .and_then(|(r, branch)| {
                let mut r = r
                    .header("Event", "presence")?
                    .header("Expires", expires.as_secs().to_string())?;
                if let Some(etag) = &if_match {
                    r = r.header("SIP-If-Match", etag)?;
                }
                let r = match body {
                    Some(body) => r.with_body("application/pidf+xml", body.into_bytes())?,
                    None => r,
                };
                Ok((r, branch))
            });
        match built {
            Ok((request, branch)) => {
                if let Some(p) = self.pubs.get_mut(&user) {
                    p.on_wire = true;
                }
                self.pubs_on_wire += 1;
                self.start(TxKind::Publish { user }, request, branch, 0, now);
            }
            Err(error) => {
                let error = TransportError::Unsupported {
                    user: presence_model::UserId::sip(
                        presence_model::Platform::simple(),
                        user.clone(),
                    ),
                    reason: format!("cannot build a PUBLISH for this URI: {error}"),
                };
                self.finish_op(&user, Err(error), now);
            }
        }
    }

    fn send_subscribe(&mut self, user: SipUri, now: Instant) {
        let app = self.config.application_uri.clone();
        let expires = self.config.subscribe_expires.as_secs().to_string();
        let dialog = match self.subs.get(&user).and_then(|s| s.dialog.clone()) {
            Some(mut d) if d.remote_tag.is_some() => {
                d.cseq += 1;
                d
            }
            _ => Dialog {
                call_id: self.rng.hex(24),
                local_tag: self.rng.hex(10),
                remote_tag: None,
                cseq: 1,
                target: user.as_str().to_owned(),
                announced: false,
            },
        };
        let built = self
            .build(
                Method::Subscribe,
                &dialog.target.clone(),
                &app,
                &dialog.local_tag,
                user.as_str(),
                dialog.remote_tag.as_deref(),
                &dialog.call_id,
                dialog.cseq,
            )
            .and_then(|(r, branch)| {
                Ok((
                    r.header("Event", "presence")?
                        .header("Accept", "application/pidf+xml")?
                        .header("Expires", &expires)?,
                    branch,
                ))
            });
        match built {
            Ok((request, branch)) => {
                self.dialogs
                    .insert(dialog.call_id.clone(), Some(user.clone()));
                if let Some(sub) = self.subs.get_mut(&user) {
                    sub.phase = SubPhase::OnWire;
                    sub.dialog = Some(dialog);
                }
                self.subs_on_wire += 1;
                self.start(TxKind::Subscribe { user }, request, branch, 0, now);
            }
            Err(error) => {
                self.subs.remove(&user);
                self.events.push_back(Event::Warning {
                    message: format!("cannot subscribe to {user}: {error}"),
                });
            }
        }
    }

    fn send_unsubscribe(&mut self, user: &SipUri, mut dialog: Dialog, now: Instant) {
        let app = self.config.application_uri.clone();
        dialog.cseq += 1;
        let built = self
            .build(
                Method::Subscribe,
                &dialog.target,
                &app,
                &dialog.local_tag,
                user.as_str(),
                dialog.remote_tag.as_deref(),
                &dialog.call_id,
                dialog.cseq,
            )
            .and_then(|(r, branch)| {
                Ok((
                    r.header("Event", "presence")?.header("Expires", "0")?,
                    branch,
                ))
            });
        if let Ok((request, branch)) = built {
            self.start(TxKind::Unsubscribe, request, branch, 0, now);
        }
    }

    // ----- receiving -------------------------------------------------------------------

    fn handle_message(&mut self, message: Message, now: Instant) {
        match message {
            Message::Request(request) => self.handle_request(request, now),
            Message::Response(response) => self.handle_response(response, now),
        }
    }

    fn respond(&mut self, request: &Request, status: u16, reason: &str) -> Option<Vec<u8>> {
        let mut response = Response::for_request(request, status, reason).ok()?;
        if response.headers().to_tag().ok().flatten().is_none() {
            let tag = self.rng.hex(10);
            let _ = response.set_to_tag(&tag);
        }
        let bytes = response.to_bytes();
        self.queue(bytes.clone());
        Some(bytes)
    }

    fn handle_request(&mut self, request: Request, now: Instant) {
        match request.method() {
            Method::Notify => self.handle_notify(request, now),
            Method::Options => {
                self.respond(&request, 200, "OK");
            }
            Method::Ack => {}
            _ => {
                self.respond(&request, 501, "Not Implemented");
            }
        }
    }

    fn handle_notify(&mut self, request: Request, now: Instant) {
        let headers = request.headers();
        let call_id = headers.call_id().unwrap_or_default().to_owned();
        let seq = headers.cseq().ok().flatten().map_or(0, |c| c.seq);
        let key = (call_id.clone(), seq);
        if let Some(answer) = self.answered.get(&key) {
            let answer = answer.clone();
            self.queue(answer); // a retransmission: the same answer, nothing processed again
            return;
        }
        let Some(entry) = self.dialogs.get(&call_id).cloned() else {
            self.respond(&request, 481, "Subscription Does Not Exist");
            return;
        };
        if let Some(user) = &entry {
            let current = self
                .subs
                .get(user)
                .and_then(|s| s.dialog.as_ref())
                .is_some_and(|d| d.call_id == call_id);
            if !current {
                // A dialog the endpoint gave up on (its SUBSCRIBE got no answer in time,
                // or a newer one replaced it) that the server made after all: refuse it,
                // so that the server ends it, rather than report a subscription nobody
                // announced. The user's current subscription is made or being made.
                self.dialogs.remove(&call_id);
                self.respond(&request, 481, "Subscription Does Not Exist");
                return;
            }
        }
        let Some(answer) = self.respond(&request, 200, "OK") else {
            return;
        };
        if !self.config.transport.is_stream() {
            self.answered.insert(key.clone(), answer);
            self.answered_order.push_back(key);
            if self.answered_order.len() > ANSWERED_CACHE
                && let Some(old) = self.answered_order.pop_front()
            {
                self.answered.remove(&old);
            }
        }
        let Some(user) = entry else {
            return; // a dialog we ended: its last NOTIFY
        };
        let state = headers.subscription_state().ok().flatten();
        let remote_tag = headers.from_tag().ok().flatten();
        let contact = headers.contact().ok().flatten().map(|c| c.uri);
        let terminated = state
            .as_ref()
            .is_some_and(|s| s.state == SubState::Terminated);
        if let Some(sub) = self.subs.get_mut(&user)
            && let Some(dialog) = sub.dialog.as_mut()
        {
            if dialog.remote_tag.is_none() {
                dialog.remote_tag = remote_tag;
            }
            if let Some(contact) = contact {
                dialog.target = contact;
            }
        }
        if !terminated {
            // The first NOTIFY of a new dialog may come before the SUBSCRIBE's 2xx.
            self.announce(&user);
        }
        let body = request.body();
        if !(terminated && body.is_empty()) {
            self.notification(&user, body);
        }
        if terminated {
            self.dialogs.remove(&call_id);
            let (reason, retry_after) = state
                .as_ref()
                .map(|s| (s.reason().map(str::to_owned), s.retry_after()))
                .unwrap_or_default();
            self.terminated(&user, &call_id, reason.as_deref(), retry_after, now);
        }
    }

    fn notification(&mut self, user: &SipUri, body: &[u8]) {
        if !self.subs.contains_key(user) {
            return;
        }
        let parsed = if body.is_empty() {
            Ok(crate::pidf::PidfDocument::default())
        } else {
            crate::pidf::read(body)
        };
        match parsed {
            Ok(document) => {
                let (raw_availability, activity) = self.config.mapping.pull(&document);
                self.flush_subscribed();
                self.events.push_back(Event::Presence {
                    user: user.clone(),
                    raw_availability,
                    activity,
                });
            }
            Err(error) => self.events.push_back(Event::Warning {
                message: format!("unreadable NOTIFY body for {user}: {error}"),
            }),
        }
    }

    /// The server ended a subscription: make it anew.
    fn terminated(
        &mut self,
        user: &SipUri,
        call_id: &str,
        reason: Option<&str>,
        retry_after: Option<u32>,
        now: Instant,
    ) {
        let Some(sub) = self.subs.get_mut(user) else {
            return;
        };
        if sub.dialog.as_ref().is_some_and(|d| d.call_id != call_id) {
            return; // an older dialog of the user
        }
        sub.dialog = None;
        if sub.phase == SubPhase::OnWire {
            return; // a refresh is on the wire: its answer decides
        }
        let at_once = matches!(reason, Some("timeout" | "deactivated" | "probation") | None);
        let delay = match retry_after {
            Some(s) => Duration::from_secs(u64::from(s)),
            None if at_once => Duration::ZERO,
            None => {
                sub.attempt += 1;
                let attempt = sub.attempt;
                self.retry_delay(attempt)
            }
        };
        self.resubscribe_in(user.clone(), delay, now);
    }

    fn resubscribe_in(&mut self, user: SipUri, delay: Duration, now: Instant) {
        if let Some(sub) = self.subs.get_mut(&user) {
            if delay.is_zero() {
                sub.phase = SubPhase::Queued;
                self.sub_queue.push_back(user);
            } else {
                sub.phase = SubPhase::Waiting;
                self.timers.set(Timer::Subscribe(user), now + delay);
            }
        }
    }

    fn retry_delay(&mut self, attempt: u32) -> Duration {
        let draw = self.rng.next_f64();
        Backoff {
            initial: self.config.retry_initial,
            max: self.config.retry_max,
            jitter: 0.2,
        }
        .delay(attempt, draw)
    }

    fn handle_response(&mut self, response: Response, now: Instant) {
        let Some(branch) = response.headers().via_branch().ok().flatten() else {
            return;
        };
        if response.status().is_provisional() {
            if let Some(tx) = self.transactions.get_mut(&branch) {
                tx.interval = T2; // RFC 3261 17.1.2.2: retransmit at T2 after a 1xx
            }
            return;
        }
        let Some(tx) = self.transactions.remove(&branch) else {
            return; // a retransmitted answer, or one to a request given up on
        };
        self.timers.cancel(&Timer::Final(branch.clone()));
        self.timers.cancel(&Timer::Retransmit(branch));
        let status = response.status().as_u16();
        if matches!(status, 401 | 407) && self.answer_challenge(&tx, &response, now) {
            return;
        }
        match tx.kind.clone() {
            TxKind::Probe => {
                if !self.ready {
                    self.ready = true;
                    self.became_ready(now);
                }
                self.timers
                    .set(Timer::Keepalive, now + self.config.keepalive);
            }
            TxKind::Publish { user } => {
                self.pubs_on_wire = self.pubs_on_wire.saturating_sub(1);
                self.publish_answer(&user, &response, now);
            }
            TxKind::Subscribe { user } => {
                self.subs_on_wire = self.subs_on_wire.saturating_sub(1);
                self.subscribe_answer(&user, &tx.request, &response, now);
            }
            TxKind::Unsubscribe => {}
        }
    }

    /// Answers a 401/407 with the digest credentials; `false` when it cannot.
    fn answer_challenge(&mut self, tx: &Tx, response: &Response, now: Instant) -> bool {
        if self.config.credentials.is_none() || tx.auth_tries >= 2 {
            return false;
        }
        let proxy = response.status().as_u16() == 407;
        let header = if proxy {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let challenges: Vec<&str> = response.headers().get_all(header).collect();
        let chosen = match crate::digest::choose_for_status(
            response.status().as_u16(),
            challenges.iter().copied(),
        ) {
            Ok(c) => c,
            Err(error) => {
                self.events.push_back(Event::Warning {
                    message: format!(
                        "cannot answer the {} challenge: {error}",
                        response.status().as_u16()
                    ),
                });
                return false;
            }
        };
        if let Some(realm) = &self.config.realm
            && realm != &chosen.realm
        {
            self.events.push_back(Event::Warning {
                message: format!(
                    "the server asks for credentials of realm `{}`, not the configured `{realm}`",
                    chosen.realm
                ),
            });
            return false;
        }
        // A second challenge for a request already answered counts only when stale.
        if tx.auth_tries >= 1 && !chosen.stale {
            return false;
        }
        self.challenge = Some((chosen, 0));
        let mut request = tx.request.clone();
        let branch = self.new_branch();
        let via = self.via_value(&branch);
        let seq = request.headers().cseq().ok().flatten().map_or(1, |c| c.seq) + 1;
        let method = request.method().to_string();
        if request.headers_mut().set("Via", &via).is_err()
            || request
                .headers_mut()
                .set("CSeq", &format!("{seq} {method}"))
                .is_err()
        {
            return false;
        }
        if let TxKind::Subscribe { user } = &tx.kind
            && let Some(d) = self.subs.get_mut(user).and_then(|s| s.dialog.as_mut())
        {
            d.cseq = seq;
        }
        self.start(tx.kind.clone(), request, branch, tx.auth_tries + 1, now);
        true
    }

    fn became_ready(&mut self, now: Instant) {
        self.events.push_back(Event::Ready);
        let mut users: Vec<SipUri> = self.subs.keys().cloned().collect();
        users.sort();
        for user in users {
            if let Some(sub) = self.subs.get_mut(&user) {
                sub.phase = SubPhase::Queued;
                sub.dialog = None;
                self.sub_queue.push_back(user);
            }
        }
        let refreshes: Vec<(SipUri, Instant)> = self
            .pubs
            .iter()
            .filter_map(|(u, p)| Some((u.clone(), p.refresh_at?)))
            .collect();
        for (user, at) in refreshes {
            self.timers.set(Timer::Refresh(user), at.max(now));
        }
        self.pump(now);
    }

    fn publish_answer(&mut self, user: &SipUri, response: &Response, now: Instant) {
        let status = response.status().as_u16();
        let Some(op) = self.pubs.get(user).and_then(|p| p.current.clone()) else {
            return;
        };
        let conditional = !op.anew
            && (matches!(op.what, What::RemoveOrphan(_))
                || self.pubs.get(user).is_some_and(|p| p.etag.is_some()));
        if (200..300).contains(&status) {
            let etag = response.headers().get("SIP-ETag").map(str::to_owned);
            let granted = response
                .headers()
                .expires()
                .ok()
                .flatten()
                .map_or_else(|| self.expires(), |s| Duration::from_secs(u64::from(s)));
            let Some(p) = self.pubs.get_mut(user) else {
                return;
            };
            match &op.what {
                What::Publish(body) => {
                    p.body = Some(body.clone());
                    p.etag = etag;
                }
                What::Refresh => p.etag = etag,
                What::Remove => {
                    p.etag = None;
                    p.body = None;
                }
                What::RemoveOrphan(_) => {}
            }
            if matches!(op.what, What::Publish(_) | What::Refresh) {
                if p.etag.is_none() {
                    self.events.push_back(Event::Warning {
                        message: format!("the server accepted a PUBLISH for {user} without a SIP-ETag: it cannot be refreshed or removed"),
                    });
                } else if !granted.is_zero() {
                    let ahead = (granted / 5).max(Duration::from_secs(5)).min(granted / 2);
                    let at = now + (granted - ahead);
                    p.refresh_at = Some(at);
                    self.timers.set(Timer::Refresh(user.clone()), at);
                }
            } else if matches!(op.what, What::Remove) {
                p.refresh_at = None;
                self.timers.cancel(&Timer::Refresh(user.clone()));
            }
            self.finish_op(user, Ok(()), now);
            return;
        }
        let fix = |p: &mut Pub, anew: bool| {
            if let Some(current) = p.current.as_mut() {
                current.fixups += 1;
                current.anew |= anew;
            }
            p.on_wire = false;
        };
        match status {
            412 if conditional => {
                // The server does not know the entity tag: the publication is gone.
                let Some(p) = self.pubs.get_mut(user) else {
                    return;
                };
                match &op.what {
                    What::Publish(_) if op.fixups < 3 => {
                        p.etag = None;
                        fix(p, true);
                        self.send_queue.push_front(user.clone());
                    }
                    What::Refresh => {
                        p.etag = None;
                        match p.body.clone() {
                            Some(body) => {
                                p.current = Some(Op {
                                    id: None,
                                    what: What::Publish(body),
                                    anew: true,
                                    fixups: 1,
                                });
                                p.on_wire = false;
                                self.send_queue.push_front(user.clone());
                            }
                            None => self.finish_op(user, Ok(()), now),
                        }
                    }
                    What::Remove => {
                        p.etag = None;
                        p.body = None;
                        p.refresh_at = None;
                        self.timers.cancel(&Timer::Refresh(user.clone()));
                        self.finish_op(user, Ok(()), now);
                    }
                    _ => self.finish_op(user, Ok(()), now),
                }
            }
            500 if conditional && op.fixups < 3 => {
                let Some(p) = self.pubs.get_mut(user) else {
                    return;
                };
                if op.fixups == 0 {
                    // Perhaps a passing problem (a locked database): once more, shortly.
                    fix(p, false);
                    let pause = Duration::from_millis(100 + self.rng.next_u64() % 200);
                    self.timers
                        .set(Timer::PublishRetry(user.clone()), now + pause);
                    return;
                }
                match &op.what {
                    What::Publish(_) | What::Refresh => {
                        // The tag is not the server's: publish anew, then remove the tag.
                        if let Some(old) = p.etag.take() {
                            p.orphans.push(old);
                        }
                        if let What::Refresh = op.what {
                            match p.body.clone() {
                                Some(body) => {
                                    p.current = Some(Op {
                                        id: None,
                                        what: What::Publish(body),
                                        anew: true,
                                        fixups: op.fixups,
                                    });
                                }
                                None => return self.finish_op(user, Ok(()), now),
                            }
                        }
                        fix(p, true);
                        self.send_queue.push_front(user.clone());
                    }
                    What::Remove | What::RemoveOrphan(_) => {
                        if let What::Remove = op.what {
                            p.etag = None;
                            p.body = None;
                        }
                        self.finish_op(user, Ok(()), now);
                    }
                }
            }
            423 if op.fixups < 3 => {
                let min = response
                    .headers()
                    .get("Min-Expires")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match min {
                    Some(min) if min > self.expires() => {
                        self.min_expires = Some(min);
                        if let Some(p) = self.pubs.get_mut(user) {
                            fix(p, false);
                        }
                        self.send_queue.push_front(user.clone());
                    }
                    _ => self.publish_refused(user, response, now),
                }
            }
            _ => self.publish_refused(user, response, now),
        }
    }

    fn publish_refused(&mut self, user: &SipUri, response: &Response, now: Instant) {
        let status = response.status().as_u16();
        let retry_after = retry_after(response);
        let error = TransportError::Rejected {
            status,
            reason: response.reason().to_owned(),
            retry_after,
        };
        let refresh = self
            .pubs
            .get(user)
            .is_some_and(|p| matches!(p.current.as_ref().map(|o| &o.what), Some(What::Refresh)));
        if refresh {
            self.events.push_back(Event::Warning {
                message: format!("refreshing the publication of {user} failed: {error}"),
            });
            let delay = retry_after.unwrap_or_else(|| self.retry_delay(1));
            if let Some(p) = self.pubs.get_mut(user) {
                p.refresh_at = Some(now + delay);
            }
            self.timers.set(Timer::Refresh(user.clone()), now + delay);
        }
        self.finish_op(user, Err(error), now);
    }

    fn subscribe_answer(
        &mut self,
        user: &SipUri,
        request: &Request,
        response: &Response,
        now: Instant,
    ) {
        let status = response.status().as_u16();
        let call_id = request.headers().call_id().unwrap_or_default().to_owned();
        let unsubscribed = !self.subs.contains_key(user);
        if unsubscribed {
            return;
        }
        if (200..300).contains(&status) {
            let granted = response
                .headers()
                .expires()
                .ok()
                .flatten()
                .map_or(self.config.subscribe_expires, |s| {
                    Duration::from_secs(u64::from(s))
                });
            let remote_tag = response.headers().to_tag().ok().flatten();
            let contact = response.headers().contact().ok().flatten().map(|c| c.uri);
            let Some(sub) = self.subs.get_mut(user) else {
                return;
            };
            sub.attempt = 0;
            let still_ours = sub.dialog.as_ref().is_some_and(|d| d.call_id == call_id);
            if !still_ours {
                // A NOTIFY ended this dialog while the request was out: subscribe anew.
                sub.phase = SubPhase::Queued;
                sub.dialog = None;
                self.sub_queue.push_back(user.clone());
                return;
            }
            if let Some(d) = sub.dialog.as_mut() {
                if remote_tag.is_some() {
                    d.remote_tag = remote_tag;
                }
                if let Some(contact) = contact {
                    d.target = contact;
                }
            }
            sub.phase = SubPhase::Active;
            if granted.is_zero() {
                self.resubscribe_in(user.clone(), Duration::ZERO, now);
                return;
            }
            let ahead = (granted / 5).max(Duration::from_secs(5)).min(granted / 2);
            self.timers
                .set(Timer::Subscribe(user.clone()), now + (granted - ahead));
            self.announce(user);
            return;
        }
        if let Some(sub) = self.subs.get_mut(user) {
            sub.dialog = None;
            sub.phase = SubPhase::Waiting;
        }
        self.dialogs.remove(&call_id);
        if status == 481 {
            self.resubscribe_in(user.clone(), Duration::ZERO, now);
            return;
        }
        self.events.push_back(Event::SubscriptionFailed {
            user: user.clone(),
            reason: format!("{status} {}", response.reason()),
        });
        let retry_after = retry_after(response);
        let attempt = self.subs.get_mut(user).map_or(1, |s| {
            s.attempt += 1;
            s.attempt
        });
        let delay = retry_after.unwrap_or_else(|| self.retry_delay(attempt));
        self.resubscribe_in(user.clone(), delay, now);
    }

    fn on_no_answer(&mut self, tx: Tx, now: Instant) {
        match tx.kind {
            TxKind::Probe => self.events.push_back(Event::ResetConnection {
                reason: format!(
                    "the server did not answer OPTIONS within {:?}",
                    self.config.request_timeout
                ),
            }),
            TxKind::Publish { user } => {
                self.pubs_on_wire = self.pubs_on_wire.saturating_sub(1);
                self.finish_op(&user, Err(TransportError::Timeout), now);
            }
            TxKind::Subscribe { user } => {
                self.subs_on_wire = self.subs_on_wire.saturating_sub(1);
                if self.subs.contains_key(&user) {
                    self.events.push_back(Event::SubscriptionFailed {
                        user: user.clone(),
                        reason: "no answer in time".to_owned(),
                    });
                    let attempt = self.subs.get_mut(&user).map_or(1, |s| {
                        s.dialog = None;
                        s.attempt += 1;
                        s.attempt
                    });
                    let delay = self.retry_delay(attempt);
                    self.resubscribe_in(user, delay, now);
                }
            }
            TxKind::Unsubscribe => {}
        }
    }
}

/// A response's `Retry-After` in seconds (`120`, or `120;duration=60`), if any.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get("Retry-After")?;
    let digits = value.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse::<u64>().ok().map(Duration::from_secs)
}

fn limits() -> Limits {
    Limits {
        max_body: MAX_BODY,
        ..Limits::default()
    }
}

/// Users the endpoint has seen; for tests.
#[cfg(test)]
impl Endpoint {
    fn etag(&self, user: &SipUri) -> Option<&str> {
        self.pubs.get(user)?.etag.as_deref()
    }
    fn dialog_users(&self) -> std::collections::HashSet<SipUri> {
        self.dialogs.values().flatten().cloned().collect()
    }
}
