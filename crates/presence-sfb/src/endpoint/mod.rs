//! The SfB endpoint as a sans-IO state machine (quinn-proto style).
//!
//! Inputs: [`Endpoint::connected`], [`Endpoint::disconnected`], [`Endpoint::handle_bytes`],
//! [`Endpoint::handle_timeout`], [`Endpoint::publish`], [`Endpoint::unpublish`],
//! [`Endpoint::subscribe`], [`Endpoint::unsubscribe`]. Outputs: [`Endpoint::poll_transmit`]
//! (bytes to write), [`Endpoint::poll_timeout`] (when to call `handle_timeout`),
//! [`Endpoint::poll_event`]. Time comes in as `now` arguments; randomness from a seeded
//! generator; so a whole exchange is a deterministic function of its inputs.
//!
//! Publications: every call to [`publish`](Endpoint::publish) or
//! [`unpublish`](Endpoint::unpublish) is sent (no dedup, no coalescing) and settles exactly
//! once, as [`Event::Published`] or [`Event::PublishFailed`]. A user has at most one request
//! on the wire; a second call for the same user waits behind it, in order. At most
//! `max-in-flight` requests are on the wire; further ones wait in the order they became
//! sendable. A `409 WrongDelta` is fixed up (the pool's `curVersion`, sent again, at most
//! `max-conflict-retries` times); every other failure is reported once and never re-sent:
//! retrying is the caller's decision.

mod publish;
mod subscribe;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use presence_model::{Presence, SipUri};
use presence_sip::{Frame, Framer, Headers, Limits, Message, Method, Request, Response};
use presence_transport::TransportError;

use crate::settings::EndpointConfig;
use presence_model::random::{Backoff, HexDigits, SplitMix64};
use presence_model::timers::Timers;
use publish::{Publications, What};
use subscribe::Subscriptions;

/// Identifies one call to [`Endpoint::publish`] or [`Endpoint::unpublish`]; its outcome
/// comes back as an [`Event`]. Increasing: a later call has a greater id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishId(pub u64);

/// What the endpoint reports.
#[derive(Debug)]
pub enum Event {
    /// A subscribed user's aggregated presence, as the pool reported it.
    Presence {
        /// The user.
        user: SipUri,
        /// The availability number exactly as received (it may exceed 18000).
        raw_availability: u64,
        /// The activity: the custom text for LCID 1033, else the first custom text, else
        /// the activity token.
        activity: Option<String>,
    },
    /// The pool accepted the publication (or removal) `id`.
    Published {
        /// The call to `publish` or `unpublish`.
        id: PublishId,
        /// The user.
        user: SipUri,
    },
    /// The publication (or removal) `id` will not be delivered; reported once, never
    /// re-sent.
    PublishFailed {
        /// The call to `publish` or `unpublish`.
        id: PublishId,
        /// The user.
        user: SipUri,
        /// Why: `NotConnected` (no connection when it was given, or lost before an answer),
        /// `Timeout` (no final answer within `request-timeout`), `Rejected` (status,
        /// reason with ms-diagnostics, and `retry_after` from a `Retry-After` header; a
        /// `409` only after the version fix-up was used up).
        error: TransportError,
    },
    /// The pool accepted a new subscription dialog for these users (not a refresh).
    Subscribed {
        /// The users of the batch.
        users: Vec<SipUri>,
    },
    /// A subscription for these users was refused; it is retried after a back-off.
    SubscriptionFailed {
        /// The users of the batch.
        users: Vec<SipUri>,
        /// The status, reason and ms-diagnostics.
        reason: String,
    },
    /// The connection must be closed and made again (garbage from the peer, keep-alive
    /// timeout, an unbounded backlog). The driver closes it and calls
    /// [`Endpoint::disconnected`].
    ResetConnection {
        /// Why.
        reason: String,
    },
    /// Something odd that did not stop anything (an unparsable notification body).
    Warning {
        /// What.
        message: String,
    },
}

/// What an outstanding request is for.
#[derive(Clone, Debug)]
enum TxKind {
    Publish { user: SipUri },
    Subscribe { batch: u64 },
    Unsubscribe,
}

#[derive(Clone, Debug)]
struct Transaction {
    kind: TxKind,
}

/// Timer keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Timer {
    /// A request's response is overdue (the transaction's [`branch_id`]).
    Transaction(u64),
    /// A subscription batch is due for refresh or re-subscription.
    Batch(u64),
    /// Send a keep-alive.
    KeepAlive,
    /// A keep-alive got no answer in time.
    KeepAliveTimeout,
}

/// The sans-IO SfB endpoint: publications and removals with versions and 409 recovery,
/// batched subscriptions with refresh, notifications in, keep-alive.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    rng: SplitMix64,
    epid: String,
    connected: bool,
    framer: Framer,
    out: VecDeque<Vec<u8>>,
    out_bytes: usize,
    events: VecDeque<Event>,
    /// The requests waiting for their answer, by the number their branch was made from
    /// (see [`branch_id`]).
    transactions: HashMap<u64, Transaction>,
    timers: Timers<Timer>,
    publications: Publications,
    subscriptions: Subscriptions,
    next_publish_id: u64,
    awaiting_pong: bool,
    received_since_ping: bool,
    cseq: u32,
    /// SUBSCRIBE transactions on the wire (see [`SUBSCRIBES_IN_FLIGHT`]).
    subscribes_in_flight: usize,
    /// The body of the publication being sent: written by [`Publications`], used by
    /// `send_publish` (empty in between; kept for its capacity).
    body: String,
    /// The header fields of a publication that only depend on the settings; `None` when
    /// they would be refused (requests are then built field by field, and fail).
    head: Option<wire::Head>,
}

/// The most SUBSCRIBE requests waiting for their answer. Each new batch's answer brings
/// the state of all its users (100 by default): sending every batch of a large set at once
/// (500 for 50,000 users) makes the pool queue tens of MiB of notifications for one
/// connection, which a pool may cut (the simulator resets at 16 MiB).
const SUBSCRIBES_IN_FLIGHT: usize = 16;

/// What every branch the endpoint makes starts with (RFC 3261's magic cookie).
const BRANCH_MAGIC: &str = "z9hG4bK";

/// The number a branch of ours was made from ([`Endpoint::new_branch`]: the magic cookie
/// and 16 lowercase hex digits); `None` for any other branch, which is not ours. One
/// number gives one branch and back, so transactions are keyed by the number.
fn branch_id(branch: &str) -> Option<u64> {
    let digits = branch.strip_prefix(BRANCH_MAGIC)?;
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if digits.len() != 16 || !digits.bytes().all(lower_hex) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// The most bytes waiting to be written before the connection is reset: a peer that stops
/// reading must not make memory grow without bound.
const MAX_OUT_BYTES: usize = 16 * 1024 * 1024;

impl Endpoint {
    /// A disconnected endpoint. `seed` drives Call-IDs, tags, branches and jitter.
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let epid = rng.hex(10);
        let head = wire::Head::new(&config);
        Endpoint {
            framer: Framer::new(Limits::default()),
            publications: Publications::new(config.publication.clone()),
            subscriptions: Subscriptions::new(config.subscription.batch_size),
            config,
            rng,
            epid,
            connected: false,
            out: VecDeque::new(),
            out_bytes: 0,
            events: VecDeque::new(),
            transactions: HashMap::new(),
            timers: Timers::new(),
            next_publish_id: 0,
            awaiting_pong: false,
            received_since_ping: false,
            cseq: 0,
            subscribes_in_flight: 0,
            body: String::new(),
            head,
        }
    }

    /// The endpoint's settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Sets the `host[:port]` written in Via (the driver sets the socket's local address on
    /// each connection unless one is configured).
    pub fn set_local_host(&mut self, host: String) {
        self.config.local_host = host;
        self.head = wire::Head::new(&self.config);
    }

    /// Whether a connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// A connection to the pool is up: subscribe every user of the subscription set.
    /// Nothing is published again on its own: publishing every user again after a
    /// reconnect (resync) is the caller's.
    pub fn connected(&mut self, now: Instant) {
        self.reset_connection_state();
        self.fail_outstanding();
        self.connected = true;
        self.schedule_keepalive(now);
        self.subscriptions.reset();
        self.pump(now);
    }

    /// The connection is gone: outstanding requests are dropped and every publication and
    /// removal not settled fails with `NotConnected`. The category versions and the
    /// subscription set are kept.
    pub fn disconnected(&mut self, _now: Instant) {
        self.connected = false;
        self.fail_outstanding();
        self.subscriptions.reset();
        self.reset_connection_state();
    }

    fn fail_outstanding(&mut self) {
        for (id, user) in self.publications.on_disconnected() {
            self.events.push_back(Event::PublishFailed {
                id,
                user,
                error: TransportError::NotConnected,
            });
        }
    }

    fn reset_connection_state(&mut self) {
        self.framer = Framer::new(Limits::default());
        self.out.clear();
        self.out_bytes = 0;
        self.transactions.clear();
        self.subscribes_in_flight = 0;
        self.timers.clear();
        self.awaiting_pong = false;
        self.received_since_ping = false;
    }

    /// Publishes `presence` as `user`'s presence in every configured container. Sent as
    /// soon as the user has nothing else on the wire and the window has room; fails at once
    /// with `NotConnected` without a connection.
    pub fn publish(&mut self, user: SipUri, presence: Presence, now: Instant) -> PublishId {
        self.request(user, What::Publish(presence), now)
    }

    /// Removes the bridge's category instances for `user` (category `state`, the
    /// configured instance, every configured container: `expireType="time" expires="0"`,
    /// no content) with the current versions, so that the pool shows the user's own
    /// presence again. Ordered with the user's publications (it waits behind one
    /// outstanding) and settled like one, with the same 409 fix-up.
    pub fn unpublish(&mut self, user: SipUri, now: Instant) -> PublishId {
        self.request(user, What::Remove, now)
    }

    fn request(&mut self, user: SipUri, what: What, now: Instant) -> PublishId {
        self.next_publish_id += 1;
        let id = PublishId(self.next_publish_id);
        if self.connected {
            self.publications.request(user, what, id);
            self.pump(now);
        } else {
            self.events.push_back(Event::PublishFailed {
                id,
                user,
                error: TransportError::NotConnected,
            });
        }
        id
    }

    /// Adds users to the subscription set.
    pub fn subscribe(&mut self, users: impl IntoIterator<Item = SipUri>, now: Instant) {
        self.subscriptions.add(users);
        self.pump(now);
    }

    /// Removes users from the subscription set.
    pub fn unsubscribe(&mut self, users: impl IntoIterator<Item = SipUri>, now: Instant) {
        let ended = self.subscriptions.remove(users);
        for dialog in ended {
            self.send_unsubscribe(&dialog);
        }
        self.pump(now);
    }

    /// The users in the subscription set.
    pub fn subscribed(&self) -> impl Iterator<Item = &SipUri> {
        self.subscriptions.users()
    }

    /// Bytes received from the pool. An error means the stream cannot be read any further:
    /// the connection must be reset (an [`Event::ResetConnection`] says so too).
    pub fn handle_bytes(
        &mut self,
        bytes: &[u8],
        now: Instant,
    ) -> Result<(), presence_sip::SipError> {
        self.received_since_ping = true;
        if self.awaiting_pong {
            self.awaiting_pong = false;
            self.timers.cancel(&Timer::KeepAliveTimeout);
        }
        self.framer.push(bytes);
        loop {
            match self.framer.next_frame() {
                Ok(Some(Frame::Message(message))) => self.handle_message(message, now),
                Ok(Some(Frame::Ping)) => self.queue(presence_sip::PONG.to_vec()),
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => break,
                Err(error) => {
                    self.events.push_back(Event::ResetConnection {
                        reason: format!("unreadable data from the pool: {error}"),
                    });
                    return Err(error);
                }
            }
        }
        self.pump(now);
        Ok(())
    }

    /// Time passed: overdue responses, subscription refreshes and re-tries, keep-alives.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Transaction(id) => {
                    if let Some(tx) = self.remove_transaction(id) {
                        self.on_failure(tx.kind, None, "no response in time".to_owned(), None, now);
                    }
                }
                Timer::Batch(batch) => self.subscriptions.due(batch),
                Timer::KeepAlive => {
                    if self.connected {
                        self.queue(presence_sip::PING.to_vec());
                        self.awaiting_pong = true;
                        self.received_since_ping = false;
                        self.timers
                            .set(Timer::KeepAliveTimeout, now + self.config.keepalive_timeout);
                        self.schedule_keepalive(now);
                    }
                }
                Timer::KeepAliveTimeout => {
                    if self.awaiting_pong && !self.received_since_ping {
                        self.events.push_back(Event::ResetConnection {
                            reason: format!(
                                "no keep-alive answer from the pool within {:?}",
                                self.config.keepalive_timeout
                            ),
                        });
                    }
                }
            }
        }
        self.pump(now);
    }

    /// The next bytes to write, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let bytes = self.out.pop_front()?;
        self.out_bytes -= bytes.len();
        Some(bytes)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Publications and removals on the wire (at most `max-in-flight`).
    pub fn publications_in_flight(&self) -> usize {
        self.publications.in_flight()
    }

    /// Publications and removals given and not settled: on the wire, or waiting (behind
    /// the user's previous one, or for room in the window).
    pub fn publications_outstanding(&self) -> usize {
        self.publications.outstanding()
    }

    fn schedule_keepalive(&mut self, now: Instant) {
        if let Some(every) = self.config.keepalive {
            self.timers.set(Timer::KeepAlive, now + every);
        }
    }

    fn queue(&mut self, bytes: Vec<u8>) {
        if !self.connected {
            return;
        }
        self.out_bytes += bytes.len();
        self.out.push_back(bytes);
        if self.out_bytes > MAX_OUT_BYTES {
            self.events.push_back(Event::ResetConnection {
                reason: format!(
                    "more than {MAX_OUT_BYTES} bytes wait to be written: the pool does not read"
                ),
            });
        }
    }

    /// The user's request on the wire failed: reported once.
    fn publish_failed(&mut self, user: SipUri, error: TransportError) {
        if let Some(id) = self.publications.on_failure(&user) {
            self.events
                .push_back(Event::PublishFailed { id, user, error });
        }
    }

    /// Sends whatever is due: publications (within the in-flight limit) and subscription
    /// requests.
    fn pump(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        while self.publications.in_flight() < self.config.max_in_flight {
            let Some(user) = self.publications.next_to_send(&mut self.body) else {
                break;
            };
            self.send_publish(user, now);
        }
        while self.subscribes_in_flight < SUBSCRIBES_IN_FLIGHT {
            let Some(work) = self.subscriptions.next_work() else {
                break;
            };
            self.send_subscribe(work, now);
        }
    }

    /// Ends a transaction (answered or given up on).
    fn remove_transaction(&mut self, id: u64) -> Option<Transaction> {
        let tx = self.transactions.remove(&id)?;
        if matches!(tx.kind, TxKind::Subscribe { .. }) {
            self.subscribes_in_flight = self.subscribes_in_flight.saturating_sub(1);
        }
        Some(tx)
    }

    /// A new branch, and the number it is made from (its key in the transactions and
    /// timers). The digits are those of `rng.hex(16)`: one draw, 16 lowercase hex digits.
    fn new_branch(rng: &mut SplitMix64) -> (String, u64) {
        let id = rng.next_u64();
        (format!("{BRANCH_MAGIC}{id:016x}"), id)
    }

    fn next_cseq(&mut self) -> u32 {
        self.cseq = self.cseq.wrapping_add(1).max(1);
        self.cseq
    }

    /// The headers every request from the bridge carries.
    fn base_request(
        &mut self,
        method: Method,
        target: &str,
        call_id: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        cseq: u32,
    ) -> Result<(Request, u64), presence_sip::SipError> {
        let (branch, id) = Self::new_branch(&mut self.rng);
        let c = &self.config;
        let mut to = format!("<{target}>");
        if let Some(tag) = to_tag {
            to.push_str(";tag=");
            to.push_str(tag);
        }
        let mut request = Request::new(method.clone(), target)?
            .header(
                "Via",
                format!(
                    "SIP/2.0/{} {};branch={branch}",
                    c.transport.via_token(),
                    c.local_host
                ),
            )?
            .header("Max-Forwards", "70")?
            .header(
                "From",
                format!("<{target}>;tag={from_tag};epid={}", self.epid),
            )?
            .header("To", to)?
            .header("Call-ID", call_id)?
            .header("CSeq", format!("{cseq} {method}"))?
            .header("Contact", format!("<{}>", c.contact))?
            .header("User-Agent", &c.user_agent)?;
        if c.p_asserted_identity {
            request = request.header("P-Asserted-Identity", format!("<{target}>"))?;
        }
        Ok((request, id))
    }

    fn start_transaction(&mut self, id: u64, kind: TxKind, bytes: Vec<u8>, now: Instant) {
        self.queue(bytes);
        self.timers
            .set(Timer::Transaction(id), now + self.config.request_timeout);
        self.transactions.insert(id, Transaction { kind });
    }

    /// Sends the publication whose body is in `self.body`.
    fn send_publish(&mut self, user: SipUri, now: Instant) {
        // The digits are drawn now and written where they go.
        let call_id = HexDigits::draw(&mut self.rng, 24);
        let tag = HexDigits::draw(&mut self.rng, 10);
        let cseq = self.next_cseq();
        let head = self.head.as_ref();
        if let Some(head) = head.filter(|_| wire::Head::accepts(user.as_str())) {
            // What base_request and with_body would build, written at once; the branch
            // is drawn as new_branch draws it.
            let id = self.rng.next_u64();
            let bytes = head.write_publish(&wire::Publication {
                target: user.as_str(),
                branch: HexDigits::of_word(id),
                call_id,
                from_tag: tag,
                epid: &self.epid,
                cseq,
                body: &self.body,
            });
            self.body.clear();
            self.start_transaction(id, TxKind::Publish { user }, bytes, now);
            return;
        }
        let body = std::mem::take(&mut self.body);
        let (call_id, tag) = (call_id.to_string(), tag.to_string());
        let built = self
            .base_request(Method::Service, user.as_str(), &call_id, &tag, None, cseq)
            .and_then(|(r, id)| {
                r.with_body(wire::PUBLISH_CONTENT_TYPE, body.into_bytes())
                    .map(|r| (r, id))
            });
        match built {
            Ok((request, id)) => {
                let bytes = request.to_bytes();
                self.start_transaction(id, TxKind::Publish { user }, bytes, now);
            }
            Err(error) => {
                let error = TransportError::Rejected {
                    status: 0,
                    reason: format!("cannot build the request: {error}"),
                    retry_after: None,
                };
                self.publish_failed(user, error);
            }
        }
    }

    fn send_subscribe(&mut self, work: subscribe::Work, now: Instant) {
        let app = self.config.application_uri.to_string();
        let (call_id, from_tag, to_tag, cseq) = match &work.dialog {
            Some(d) => (
                d.call_id.clone(),
                d.local_tag.clone(),
                d.remote_tag.clone(),
                d.cseq,
            ),
            None => (self.rng.hex(24), self.rng.hex(10), None, 1),
        };
        let body = crate::bodies::batch_subscribe(&app, &self.rng.hex(8), &work.users);
        let expires = self.config.subscription.expires.as_secs().to_string();
        let built = self
            .base_request(Method::Subscribe, &app, &call_id, &from_tag, to_tag.as_deref(), cseq)
            .and_then(|(r, id)| {
                r.header("Event", "presence")?
                    .header(
                        "Accept",
                        "application/msrtc-event-categories+xml, application/rlmi+xml, multipart/related",
                    )?
                    .header("Supported", "ms-benotify, ms-piggyback-first-notify, eventlist")?
                    .header("Proxy-Require", "ms-benotify")?
                    .header("Require", "adhoclist, categoryList")?
                    .header("Expires", &expires)?
                    .with_body("application/msrtc-adrl-categorylist+xml", body.into_bytes())
                    .map(|r| (r, id))
            });
        match built {
            Ok((request, id)) => {
                self.subscriptions.sent(work.batch, call_id, from_tag, cseq);
                self.subscribes_in_flight += 1;
                self.start_transaction(
                    id,
                    TxKind::Subscribe { batch: work.batch },
                    request.to_bytes(),
                    now,
                );
            }
            Err(error) => self.events.push_back(Event::Warning {
                message: format!("cannot build a SUBSCRIBE: {error}"),
            }),
        }
    }

    fn send_unsubscribe(&mut self, dialog: &subscribe::Dialog) {
        let app = self.config.application_uri.to_string();
        let Some(remote_tag) = dialog.remote_tag.as_deref() else {
            return;
        };
        let built = self
            .base_request(
                Method::Subscribe,
                &app,
                &dialog.call_id,
                &dialog.local_tag,
                Some(remote_tag),
                dialog.cseq,
            )
            .and_then(|(r, id)| {
                r.header("Event", "presence")?
                    .header("Expires", "0")
                    .map(|r| (r, id))
            });
        if let Ok((request, id)) = built {
            self.queue(request.to_bytes());
            // The answer does not matter; remember the transaction so that it is not
            // "unknown".
            self.transactions.insert(
                id,
                Transaction {
                    kind: TxKind::Unsubscribe,
                },
            );
        }
    }

    fn handle_message(&mut self, message: Message, now: Instant) {
        match message {
            Message::Request(request) => self.handle_request(request, now),
            Message::Response(response) => self.handle_response(response, now),
        }
    }

    fn respond(&mut self, request: &Request, status: u16, reason: &str) {
        if let Ok(mut response) = Response::for_request(request, status, reason) {
            if response.headers().to_tag().ok().flatten().is_none() {
                let tag = self.rng.hex(10);
                let _ = response.set_to_tag(&tag);
            }
            self.queue(response.to_bytes());
        }
    }

    fn handle_request(&mut self, request: Request, now: Instant) {
        match request.method() {
            Method::Notify | Method::Benotify => {
                let best_effort = request.method() == &Method::Benotify;
                let call_id = request.headers().call_id().unwrap_or_default().to_owned();
                let Some(batch) = self.subscriptions.batch_of_dialog(&call_id) else {
                    if !best_effort {
                        self.respond(&request, 481, "Call Leg/Transaction Does Not Exist");
                    }
                    return;
                };
                if !best_effort {
                    self.respond(&request, 200, "OK");
                }
                if let Ok(Some(state)) = request.headers().subscription_state()
                    && state.state.as_str().eq_ignore_ascii_case("terminated")
                {
                    let delay = state
                        .retry_after()
                        .map(|s| Duration::from_secs(u64::from(s)));
                    self.resubscribe_later(batch, delay, now);
                }
                self.notification(request.headers(), request.body());
            }
            Method::Options => self.respond(&request, 200, "OK"),
            Method::Ack => {}
            _ => self.respond(&request, 501, "Not Implemented"),
        }
    }

    /// Reads a notification body (a NOTIFY/BENOTIFY, or the first one piggy-backed on a
    /// SUBSCRIBE's 200): presence updates out, terminated resources back to subscribing.
    fn notification(&mut self, headers: &Headers, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        let content_type = headers.get("Content-Type").unwrap_or_default();
        match crate::bodies::notification(content_type, body) {
            Ok(notification) => {
                for update in notification.updates {
                    // Only users of the set: a late notification of a dialog that was just
                    // ended says nothing the caller asked for.
                    if self.subscriptions.contains(&update.user) {
                        self.events.push_back(Event::Presence {
                            user: update.user,
                            raw_availability: update.availability,
                            activity: update.activity,
                        });
                    }
                }
                self.subscriptions
                    .resources_terminated(&notification.terminated);
            }
            Err(error) => self.events.push_back(Event::Warning {
                message: format!("unreadable notification body ({content_type}): {error}"),
            }),
        }
    }

    fn resubscribe_later(&mut self, batch: u64, delay: Option<Duration>, now: Instant) {
        let delay = delay.unwrap_or_else(|| self.retry_delay(1));
        self.subscriptions.restart(batch);
        self.timers.set(Timer::Batch(batch), now + delay);
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
        if response.status().is_provisional() {
            return;
        }
        let Some(branch) = response.headers().via_branch().ok().flatten() else {
            return;
        };
        // A branch we did not make is not ours.
        let Some(id) = branch_id(&branch) else {
            return;
        };
        let Some(tx) = self.remove_transaction(id) else {
            return; // a late answer to a request given up on, or not ours
        };
        self.timers.cancel(&Timer::Transaction(id));
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            match tx.kind {
                TxKind::Publish { user } => {
                    if let Some(id) = self.publications.on_success(&user) {
                        self.events.push_back(Event::Published { id, user });
                    }
                }
                TxKind::Subscribe { batch } => {
                    let remote_tag = response.headers().to_tag().ok().flatten();
                    let expires = response
                        .headers()
                        .expires()
                        .ok()
                        .flatten()
                        .map_or(self.config.subscription.expires, |s| {
                            Duration::from_secs(u64::from(s))
                        });
                    if let Some(new) = self.subscriptions.accepted(batch, remote_tag) {
                        if new {
                            let users = self.subscriptions.batch_users(batch);
                            self.events.push_back(Event::Subscribed { users });
                        }
                        // Refresh ahead of expiry: at 80 %, and at least 5 s before.
                        let ahead = (expires / 5).max(Duration::from_secs(5)).min(expires);
                        self.timers
                            .set(Timer::Batch(batch), now + (expires - ahead));
                    }
                    // ms-piggyback-first-notify: the first notification rides on the 200.
                    self.notification(response.headers(), response.body());
                }
                TxKind::Unsubscribe => {}
            }
            return;
        }
        let diagnostics = response
            .headers()
            .ms_diagnostics()
            .ok()
            .flatten()
            .map(|d| format!("; ms-diagnostics: {d}"))
            .unwrap_or_default();
        let reason = format!("{status} {}{diagnostics}", response.reason());
        if status == 409
            && let TxKind::Publish { user } = &tx.kind
            && let Some(operations) = crate::bodies::wrong_delta(response.body())
        {
            // The fix-up completes this one publication: same operation, the pool's
            // versions, sent again at once (it keeps its place in the window).
            let max = self.config.max_conflict_retries;
            match self
                .publications
                .on_conflict(user, &operations, max, &mut self.body)
            {
                Ok(()) => self.send_publish(user.clone(), now),
                Err(()) => {
                    let error = TransportError::Rejected {
                        status,
                        reason: format!("{reason} (after {max} version retries)"),
                        retry_after: None,
                    };
                    self.publish_failed(user.clone(), error);
                }
            }
            self.pump(now);
            return;
        }
        if status == 481
            && let TxKind::Subscribe { batch } = tx.kind
        {
            // The pool forgot the dialog: subscribe afresh at once.
            self.subscriptions.restart(batch);
            self.subscriptions.due(batch);
            return;
        }
        let retry_after = response
            .headers()
            .get("Retry-After")
            .and_then(|v| {
                v.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .map(Duration::from_secs);
        self.on_failure(tx.kind, Some(status), reason, retry_after, now);
    }

    /// A request failed (an error answer, or none in time). A publication's failure is
    /// reported once (retrying is the caller's); a subscription is made again after a
    /// back-off, or the pool's `Retry-After`.
    fn on_failure(
        &mut self,
        kind: TxKind,
        status: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        match kind {
            TxKind::Publish { user } => {
                let error = match status {
                    None => TransportError::Timeout,
                    Some(status) => TransportError::Rejected {
                        status,
                        reason,
                        retry_after,
                    },
                };
                self.publish_failed(user, error);
            }
            TxKind::Subscribe { batch } => {
                let users = self.subscriptions.batch_users(batch);
                self.events
                    .push_back(Event::SubscriptionFailed { users, reason });
                let attempt = self.subscriptions.failed(batch);
                let delay = retry_after.unwrap_or_else(|| self.retry_delay(attempt));
                self.timers.set(Timer::Batch(batch), now + delay);
            }
            TxKind::Unsubscribe => {}
        }
    }
}
