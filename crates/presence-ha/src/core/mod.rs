//! The sans-IO election core (quinn-proto style): lease, keepalive, campaign, leader
//! checks, fencing on a local deadline, resignation.
//!
//! Inputs, each with `now`: [`ElectorCore::handle_response`],
//! [`ElectorCore::handle_failure`], [`ElectorCore::handle_timeout`],
//! [`ElectorCore::shutdown`]. Outputs: [`ElectorCore::poll_request`] (HTTP requests for
//! etcd's JSON gateway), [`ElectorCore::poll_cancel`] (requests to abandon),
//! [`ElectorCore::poll_timeout`] (when to call `handle_timeout`),
//! [`ElectorCore::poll_event`] (role changes, etcd trouble). No sockets, no clock, no
//! tokio; back-off jitter comes from a seeded generator, so a run is a function of its
//! inputs.
//!
//! A request's start time is the `now` of the input that created it: the driver sends it
//! right after, so the real start is never earlier, and a deadline computed from it is never
//! later than the truth (see the crate's documentation for the formula).

mod wire;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use presence_model::random::{Backoff, SplitMix64};
use presence_transport::settings::{HumanDuration, Secret};

use crate::HaError;

pub use std::time::Instant;

/// What the fencing margin adds to one request timeout: timer and scheduling granularity of
/// the node, and the drift between its clock and etcd's over one TTL.
pub const CLOCK_SLACK: Duration = Duration::from_millis(100);
/// Largest answer body the core reads (etcd's answers here are a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// How many role changes [`HaStatus::recent`] keeps.
pub const HISTORY: usize = 16;
/// How many given-up leases are remembered to be revoked once etcd answers again.
const ABANDONED_KEEP: usize = 8;
/// The shortest pause between two failed renewals.
const MIN_PAUSE: Duration = Duration::from_millis(20);

presence_model::string_id! {
    /// A node's id in the election (`bridge-1`): 1 to 128 bytes, no white space or
    /// control characters. It is the value of the node's key in etcd, so that every node
    /// (and the admin API) can name the leader.
    NodeId, HaError
}

impl NodeId {
    /// A node id, validated.
    ///
    /// # Errors
    /// [`HaError::Setting`] (key `ha.node-id`) naming what is wrong.
    pub fn new(text: &str) -> Result<NodeId, HaError> {
        let problem = if text.is_empty() {
            Some("is empty".to_owned())
        } else if text.len() > 128 {
            Some(format!("is {} bytes long: at most 128", text.len()))
        } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("contains white space or a control character".to_owned())
        } else {
            None
        };
        match problem {
            None => Ok(NodeId(Arc::from(text))),
            Some(problem) => Err(HaError::Setting {
                key: "ha.node-id",
                message: format!("`{}` {problem}", wire::clip(text)),
            }),
        }
    }
}

/// The fencing token of a leadership term: the etcd revision at which the leader's key was
/// created (the campaign answer's `leader.rev`). A later term always has a larger one, so
/// whoever receives the token with a write can refuse a write of an older term; the bridge
/// puts it in its logs and its admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fencing(pub u64);

impl fmt::Display for Fencing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An etcd lease id. Displayed in hexadecimal, as `etcdctl` and the election keys show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseId(pub i64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// Why a node is standby.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Why {
    /// Just started: etcd has not answered yet.
    Starting,
    /// Campaigning: another node holds the election, or it is being decided.
    Campaigning,
    /// etcd cannot be reached, or does not answer in time, or refuses (the message says
    /// which endpoint and what happened). The node keeps trying with back-off.
    EtcdUnreachable {
        /// What the last attempt met.
        message: String,
    },
    /// etcd refused the user name and password of `[ha.auth]`.
    AuthenticationFailed {
        /// etcd's answer.
        message: String,
    },
    /// Fenced: the lease was not renewed within `lease-ttl − margin` of the start of its
    /// last successful renewal, so leadership ended on the local deadline, before etcd can
    /// expire the lease.
    LeaseNotRenewed {
        /// How long after the last successful renewal (its request's start) the node
        /// stopped leading: `lease-ttl − margin`.
        after: Duration,
        /// The last failure, when there was one.
        message: Option<String>,
    },
    /// etcd says the lease no longer exists (it expired, or was revoked).
    LeaseLost,
    /// The election's key is no longer this node's (it was deleted, or another node holds
    /// the election).
    LeadershipLost {
        /// What etcd answered.
        detail: String,
    },
    /// Shutting down: the node resigned.
    ShuttingDown,
}

impl Why {
    /// A stable short code for metrics labels and JSON: `starting`, `campaigning`,
    /// `etcd-unreachable`, `authentication-failed`, `lease-not-renewed`, `lease-lost`,
    /// `leadership-lost`, `shutting-down`.
    pub fn code(&self) -> &'static str {
        match self {
            Why::Starting => "starting",
            Why::Campaigning => "campaigning",
            Why::EtcdUnreachable { .. } => "etcd-unreachable",
            Why::AuthenticationFailed { .. } => "authentication-failed",
            Why::LeaseNotRenewed { .. } => "lease-not-renewed",
            Why::LeaseLost => "lease-lost",
            Why::LeadershipLost { .. } => "leadership-lost",
            Why::ShuttingDown => "shutting-down",
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Starting => f.write_str("starting: etcd has not answered yet"),
            Why::Campaigning => f.write_str("campaigning: waiting for the election"),
            Why::EtcdUnreachable { message } => write!(f, "etcd is unreachable: {message}"),
            Why::AuthenticationFailed { message } => {
                write!(f, "etcd refused the credentials of [ha.auth]: {message}")
            }
            Why::LeaseNotRenewed { after, message } => {
                write!(
                    f,
                    "fenced: the lease was not renewed within {} of its last renewal",
                    HumanDuration(*after)
                )?;
                match message {
                    Some(m) => write!(f, " ({m})"),
                    None => Ok(()),
                }
            }
            Why::LeaseLost => f.write_str("etcd no longer knows the lease (expired or revoked)"),
            Why::LeadershipLost { detail } => write!(f, "leadership lost: {detail}"),
            Why::ShuttingDown => f.write_str("shutting down: resigned"),
        }
    }
}

/// This node's role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// This node holds the election: it may talk to the presence platforms, until its
    /// local deadline ([`ElectorCore::fencing`] checks it).
    Leader {
        /// The term's fencing token.
        fencing: Fencing,
    },
    /// Another node leads, or nobody does.
    Standby {
        /// The leader as last seen in etcd, if any.
        leader: Option<NodeId>,
        /// Why this node is not the leader.
        why: Why,
    },
}

impl Role {
    /// Whether this is [`Role::Leader`].
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader { .. })
    }

    /// The fencing token when leader.
    pub fn fencing(&self) -> Option<Fencing> {
        match self {
            Role::Leader { fencing } => Some(*fencing),
            Role::Standby { .. } => None,
        }
    }

    /// `leader` or `standby`.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Leader { .. } => "leader",
            Role::Standby { .. } => "standby",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Leader { fencing } => write!(f, "leader (fencing revision {fencing})"),
            Role::Standby {
                leader: Some(leader),
                why,
            } => write!(f, "standby (leader {leader}): {why}"),
            Role::Standby { leader: None, why } => write!(f, "standby (no leader): {why}"),
        }
    }
}

/// One role change, as [`HaStatus::recent`] keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// When it took effect. For a fence, the local deadline itself (when leadership ended
    /// by rule), even when the node noticed a little later.
    pub at: Instant,
    /// The role entered.
    pub role: Role,
}

impl Transition {
    /// Why: the standby reason, or `won the election`.
    pub fn why(&self) -> String {
        match &self.role {
            Role::Leader { fencing } => format!("won the election (fencing revision {fencing})"),
            Role::Standby { why, .. } => why.to_string(),
        }
    }
}

/// The lease as the node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The lease.
    pub id: LeaseId,
    /// Its TTL (the smaller of the one asked for and the one granted).
    pub ttl: Duration,
    /// The least time etcd has left on it: the last successful renewal's start + TTL − now.
    pub ttl_left: Duration,
    /// Since the start of the last successful renewal (or the grant).
    pub since_renewal: Duration,
    /// How long the last successful renewal took.
    pub renew_latency: Option<Duration>,
}

/// What the node knows about the election, for the admin API and metrics
/// ([`ElectorCore::status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaStatus {
    /// When this status was taken.
    pub at: Instant,
    /// This node.
    pub node_id: NodeId,
    /// The election's name.
    pub election: String,
    /// The role.
    pub role: Role,
    /// The leader as last seen (this node when leader).
    pub leader: Option<NodeId>,
    /// The fencing token while leading (and before the local deadline).
    pub fencing: Option<Fencing>,
    /// While the role is leader: the local deadline at which leadership ends unless the
    /// lease is renewed first (past, when the driver has not handled it yet: [`fencing`]
    /// is `None` then).
    ///
    /// [`fencing`]: Self::fencing
    pub leader_until: Option<Instant>,
    /// The lease, when the node holds one.
    pub lease: Option<LeaseStatus>,
    /// The etcd endpoint requests go to now.
    pub endpoint: String,
    /// The current trouble with etcd, if any.
    pub etcd_trouble: Option<String>,
    /// How many times the node went from standby to leader or back.
    pub transitions: u64,
    /// The last role changes (at most [`HISTORY`]), oldest first; the first is the start.
    pub recent: Vec<Transition>,
}

impl HaStatus {
    /// The last role change (or the start).
    pub fn last_transition(&self) -> Option<&Transition> {
        self.recent.last()
    }

    /// While leading: how long until the local deadline.
    pub fn fence_in(&self) -> Option<Duration> {
        self.leader_until
            .map(|until| until.saturating_duration_since(self.at))
    }
}

/// What the core reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The role changed (also a standby's known leader or its reason).
    Role(Role),
    /// etcd failed to answer or refused a request; reported once per episode.
    EtcdTrouble {
        /// The endpoint of the failed request.
        endpoint: String,
        /// What happened.
        message: String,
    },
    /// etcd answers again after [`Event::EtcdTrouble`].
    EtcdRecovered {
        /// The endpoint that answered.
        endpoint: String,
    },
}

/// Identifies one request of [`ElectorCore::poll_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `/v3/auth/authenticate`: a token for `[ha.auth]`.
    Authenticate,
    /// `/v3/lease/grant`.
    Grant,
    /// `/v3/lease/keepalive` (one message of the stream).
    KeepAlive,
    /// `/v3/election/campaign`: answered when the node wins, which may take forever.
    Campaign,
    /// `/v3/election/leader`.
    Leader,
    /// `/v3/election/resign`.
    Resign,
    /// `/v3/lease/revoke`.
    Revoke,
}

impl RequestKind {
    /// The gateway path.
    pub fn path(self) -> &'static str {
        match self {
            RequestKind::Authenticate => "/v3/auth/authenticate",
            RequestKind::Grant => "/v3/lease/grant",
            RequestKind::KeepAlive => "/v3/lease/keepalive",
            RequestKind::Campaign => "/v3/election/campaign",
            RequestKind::Leader => "/v3/election/leader",
            RequestKind::Resign => "/v3/election/resign",
            RequestKind::Revoke => "/v3/lease/revoke",
        }
    }
}

/// An HTTP request for etcd's JSON gateway: `POST url` with a JSON body. Its `Debug`
/// shows neither the token nor the body (which holds the password of an
/// [`RequestKind::Authenticate`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// Answer with this id.
    pub id: RequestId,
    /// What it is for.
    pub kind: RequestKind,
    /// The full URL.
    pub url: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// etcd's token for the `Authorization` header, with `[ha.auth]`.
    pub token: Option<String>,
    /// How long it may take; `None` for a campaign, which returns only when won.
    pub timeout: Option<Duration>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("body_len", &self.body.len())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Vec<u8>,
}

impl Response {
    /// An answer.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            body: body.into(),
        }
    }
}

/// A request that got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No answer within its timeout.
    Timeout,
    /// The connection failed (refused, reset, DNS, TLS).
    Network(String),
    /// The answer's body was larger than [`MAX_BODY`].
    TooLarge,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("no answer in time"),
            Failure::Network(m) => write!(f, "{m}"),
            Failure::TooLarge => write!(f, "an answer larger than {MAX_BODY} bytes"),
        }
    }
}

/// The user and password for etcd's authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The etcd user.
    pub username: String,
    /// Its password.
    pub password: Secret,
}

/// What the core needs to know (built from `HaSettings` by `HaSettings::core_config`).
#[derive(Clone, Debug, PartialEq)]
pub struct CoreConfig {
    /// This node.
    pub node_id: NodeId,
    /// The election's name (the key prefix; keys are `<election>/<lease in hex>`).
    pub election: String,
    /// etcd client URLs without a trailing `/` (`http://127.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// The lease TTL asked for (whole seconds).
    pub lease_ttl: Duration,
    /// How long one request (other than a campaign) may take.
    pub request_timeout: Duration,
    /// Back-off between attempts to get a lease (or a token).
    pub retry: Backoff,
    /// `[ha.auth]`.
    pub credentials: Option<Credentials>,
}

impl CoreConfig {
    /// A configuration with the defaults: TTL 5 s, request timeout 1 s, retries from
    /// 500 ms to 5 s (±20 %), no credentials.
    pub fn new(node_id: NodeId, election: &str, endpoints: Vec<String>) -> CoreConfig {
        CoreConfig {
            node_id,
            election: election.to_owned(),
            endpoints,
            lease_ttl: Duration::from_secs(5),
            request_timeout: Duration::from_secs(1),
            retry: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(5),
                jitter: 0.2,
            },
            credentials: None,
        }
    }

    /// The fencing margin: one request timeout + [`CLOCK_SLACK`].
    pub fn margin(&self) -> Duration {
        self.request_timeout + CLOCK_SLACK
    }

    /// How long a renewal is trusted for a lease of `ttl`: `ttl − margin`.
    pub fn trusted_for(&self, ttl: Duration) -> Duration {
        ttl.saturating_sub(self.margin())
    }

    /// How often a lease of `ttl` is renewed: a third of [`trusted_for`](Self::trusted_for),
    /// so that two more attempts fit before the deadline after a failed one.
    pub fn renew_every(&self, ttl: Duration) -> Duration {
        whole_millis(self.trusted_for(ttl) / 3)
    }

    /// The pause after a failed renewal before the next attempt: an eighth of
    /// [`renew_every`](Self::renew_every), at least 20 ms.
    pub fn renew_pause(&self, ttl: Duration) -> Duration {
        whole_millis(self.renew_every(ttl) / 8).max(MIN_PAUSE)
    }
}

/// `d` rounded down to whole milliseconds (renewals earlier, never later).
fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    kind: RequestKind,
    endpoint: usize,
    sent: Instant,
    lease: Option<LeaseId>,
    token_generation: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Campaign {
    Unsent,
    Pending { id: RequestId, sent: Instant },
    Done,
}

#[derive(Clone, Debug)]
struct Lease {
    id: LeaseId,
    ttl: Duration,
    /// The start of the last successful grant or keepalive.
    renewed_from: Instant,
    /// `<election>/<lease in hex>`.
    key: Vec<u8>,
    keepalive: Option<RequestId>,
    query: Option<RequestId>,
    /// When to renew next; `None` while a keepalive is on the wire.
    next_renewal: Option<Instant>,
    campaign: Campaign,
    renew_latency: Option<Duration>,
}

#[derive(Clone, Debug)]
struct Term {
    fencing: Fencing,
    key: Vec<u8>,
    /// The store revision at which the term was known to hold: leader answers from before
    /// it are stale.
    since_revision: i64,
    /// When the term began: leader checks sent before are stale.
    began: Instant,
}

/// The election state machine. See the [module documentation](self).
#[derive(Debug)]
pub struct ElectorCore {
    config: CoreConfig,
    rng: SplitMix64,
    next_id: u64,
    requests: VecDeque<Request>,
    cancels: VecDeque<RequestId>,
    events: VecDeque<Event>,
    in_flight: HashMap<RequestId, InFlight>,
    endpoint: usize,
    token: Option<String>,
    token_generation: u64,
    auth_request: Option<RequestId>,
    auth_refused: bool,
    lease: Option<Lease>,
    grant_request: Option<RequestId>,
    retry_at: Option<Instant>,
    failures: u32,
    abandoned: Vec<LeaseId>,
    term: Option<Term>,
    role: Role,
    leader: Option<NodeId>,
    trouble: Option<String>,
    last_error: Option<String>,
    shutdown: Option<Instant>,
    finished: bool,
    transitions: u64,
    recent: VecDeque<Transition>,
}

impl ElectorCore {
    /// A core that starts at `now` as standby ([`Why::Starting`]) and asks for a lease at
    /// once (for a token first, with credentials). `seed` drives the back-off jitter.
    pub fn new(config: CoreConfig, seed: u64, now: Instant) -> ElectorCore {
        let role = Role::Standby {
            leader: None,
            why: Why::Starting,
        };
        let mut core = ElectorCore {
            config,
            rng: SplitMix64::new(seed),
            next_id: 0,
            requests: VecDeque::new(),
            cancels: VecDeque::new(),
            events: VecDeque::new(),
            in_flight: HashMap::new(),
            endpoint: 0,
            token: None,
            token_generation: 0,
            auth_request: None,
            auth_refused: false,
            lease: None,
            grant_request: None,
            retry_at: None,
            failures: 0,
            abandoned: Vec::new(),
            term: None,
            role: role.clone(),
            leader: None,
            trouble: None,
            last_error: None,
            shutdown: None,
            finished: false,
            transitions: 0,
            recent: VecDeque::from([Transition { at: now, role }]),
        };
        core.drive(now);
        core
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// The current role.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// While leading: the local deadline, `S + TTL − margin` where `S` is the start of the
    /// last successful renewal.
    pub fn leader_until(&self) -> Option<Instant> {
        match (&self.role, &self.lease) {
            (Role::Leader { .. }, Some(lease)) => Some(self.valid_until(lease)),
            _ => None,
        }
    }

    /// The fencing token if this node leads **and** `now` is before its local deadline.
    /// This is the check to make before each write to a presence platform: it does not
    /// depend on the deadline's timeout having been handled yet.
    pub fn fencing(&self, now: Instant) -> Option<Fencing> {
        let until = self.leader_until()?;
        if now < until {
            self.role.fencing()
        } else {
            None
        }
    }

    /// What the node knows, as of `now`.
    pub fn status(&self, now: Instant) -> HaStatus {
        let leader_until = self.leader_until();
        HaStatus {
            at: now,
            node_id: self.config.node_id.clone(),
            election: self.config.election.clone(),
            role: self.role.clone(),
            leader: self.leader.clone(),
            fencing: self.fencing(now),
            leader_until,
            lease: self.lease.as_ref().map(|lease| LeaseStatus {
                id: lease.id,
                ttl: lease.ttl,
                ttl_left: (lease.renewed_from + lease.ttl).saturating_duration_since(now),
                since_renewal: now.saturating_duration_since(lease.renewed_from),
                renew_latency: lease.renew_latency,
            }),
            endpoint: self.config.endpoints[self.endpoint].clone(),
            etcd_trouble: self.trouble.as_ref().and(self.last_error.clone()),
            transitions: self.transitions,
            recent: self.recent.iter().cloned().collect(),
        }
    }

    /// The next request to send.
    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// The next request to abandon (drop its connection): the campaign of a lease the core
    /// gave up, so that etcd removes its key at once.
    pub fn poll_cancel(&mut self) -> Option<RequestId> {
        self.cancels.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        if let Some(deadline) = self.shutdown {
            return Some(deadline);
        }
        let mut next: Option<Instant> = None;
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        let waiting_for_token = self.config.credentials.is_some() && self.token.is_none();
        if let Some(lease) = &self.lease {
            consider(self.valid_until(lease));
            if !waiting_for_token && let Some(at) = lease.next_renewal {
                consider(at);
            }
        }
        let asking = if waiting_for_token {
            self.auth_request.is_some()
        } else {
            self.lease.is_some() || self.grant_request.is_some()
        };
        if !asking && let Some(at) = self.retry_at {
            consider(at);
        }
        next
    }

    /// Whether shutting down is complete (resignation answered, or its time is up).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Timers: renewals, the fencing deadline, retries, the end of shutting down.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.shutdown {
            if now >= deadline {
                self.finished = true;
            }
            return;
        }
        self.drive(now);
    }

    /// Stops: a leader becomes standby at once ([`Why::ShuttingDown`]), then the core
    /// resigns the election (so that a standby takes over without waiting for the TTL) and
    /// revokes its lease. Finished when both are answered, or after two request timeouts.
    pub fn shutdown(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(now + self.config.request_timeout * 2 + CLOCK_SLACK);
        self.set_role(
            Role::Standby {
                leader: self.leader.clone().filter(|_| !self.role.is_leader()),
                why: Why::ShuttingDown,
            },
            now,
        );
        if let Some(lease) = self.lease.take() {
            if let Campaign::Pending { id, .. } = lease.campaign {
                self.in_flight.remove(&id);
                self.cancels.push_back(id);
            }
            if let Some(term) = self.term.take() {
                let body = wire::resign(
                    &self.config.election,
                    &term.key,
                    term.fencing.0 as i64,
                    lease.id.0,
                );
                self.send(RequestKind::Resign, body, Some(lease.id), now);
            }
            self.send(
                RequestKind::Revoke,
                wire::lease_id(lease.id.0),
                Some(lease.id),
                now,
            );
        }
        for id in std::mem::take(&mut self.abandoned) {
            self.send(RequestKind::Revoke, wire::lease_id(id.0), Some(id), now);
        }
        self.check_finished();
    }

    /// The answer to request `id`.
    pub fn handle_response(&mut self, id: RequestId, response: Response, now: Instant) {
        let Some(request) = self.in_flight.remove(&id) else {
            return;
        };
        self.expire(now);
        if (response.status == 401
            || wire::error_message(&response.body).is_some_and(|m| m.contains(wire::INVALID_TOKEN)))
            && self.config.credentials.is_some()
            && request.token_generation == self.token_generation
            && request.kind != RequestKind::Authenticate
        {
            // The token expired (or the member restarted): get another before the next
            // request; this one failed.
            self.token = None;
        }
        self.dispatch(request, Ok(response), now);
        self.after_input(now);
    }

    /// Request `id` got no answer.
    pub fn handle_failure(&mut self, id: RequestId, failure: Failure, now: Instant) {
        let Some(request) = self.in_flight.remove(&id) else {
            return;
        };
        self.expire(now);
        self.dispatch(request, Err(failure), now);
        self.after_input(now);
    }

    fn after_input(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            self.check_finished();
        } else {
            self.drive(now);
        }
    }

    fn dispatch(&mut self, request: InFlight, answer: Result<Response, Failure>, now: Instant) {
        match request.kind {
            RequestKind::Authenticate => self.on_authenticate(request, answer, now),
            RequestKind::Grant => self.on_grant(request, answer, now),
            RequestKind::KeepAlive => self.on_keepalive(request, answer, now),
            RequestKind::Campaign => self.on_campaign(request, answer, now),
            RequestKind::Leader => self.on_leader(request, answer, now),
            RequestKind::Resign | RequestKind::Revoke => self.on_cleanup(request, answer),
        }
    }

    fn valid_until(&self, lease: &Lease) -> Instant {
        lease.renewed_from + self.config.trusted_for(lease.ttl)
    }

    /// Fences when due, sends what is due, and updates a standby's reason.
    fn drive(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.expire(now);
        self.send_due(now);
        self.refresh_standby(now);
    }

    /// Sends what is due: a token, a lease, the campaign, renewals and leader checks.
    fn send_due(&mut self, now: Instant) {
        if self.config.credentials.is_some() && self.token.is_none() {
            if self.auth_request.is_none() && self.retry_at.is_none_or(|at| at <= now) {
                let credentials = self.config.credentials.clone();
                if let Some(c) = credentials {
                    let body = wire::authenticate(&c.username, c.password.expose());
                    self.auth_request = Some(self.send(RequestKind::Authenticate, body, None, now));
                }
            }
            return;
        }
        let Some(lease) = &self.lease else {
            if self.grant_request.is_none() && self.retry_at.is_none_or(|at| at <= now) {
                let secs = self.config.lease_ttl.as_secs().max(1);
                self.grant_request =
                    Some(self.send(RequestKind::Grant, wire::grant(secs), None, now));
            }
            return;
        };
        let (id, campaign, renew, query) = (
            lease.id,
            lease.campaign,
            lease.next_renewal.is_some_and(|at| at <= now),
            lease.query.is_none(),
        );
        if campaign == Campaign::Unsent {
            let body = wire::campaign(&self.config.election, id.0, self.config.node_id.as_str());
            let request = self.send(RequestKind::Campaign, body, Some(id), now);
            // Who leads, at once (the campaign answers only when this node wins).
            let leader = query.then(|| {
                self.send(
                    RequestKind::Leader,
                    wire::leader(&self.config.election),
                    Some(id),
                    now,
                )
            });
            if let Some(lease) = &mut self.lease {
                lease.campaign = Campaign::Pending {
                    id: request,
                    sent: now,
                };
                if leader.is_some() {
                    lease.query = leader;
                }
            }
        }
        let query = self.lease.as_ref().is_some_and(|l| l.query.is_none());
        if renew {
            let keepalive = self.send(RequestKind::KeepAlive, wire::lease_id(id.0), Some(id), now);
            let leader = query.then(|| {
                self.send(
                    RequestKind::Leader,
                    wire::leader(&self.config.election),
                    Some(id),
                    now,
                )
            });
            if let Some(lease) = &mut self.lease {
                lease.keepalive = Some(keepalive);
                lease.next_renewal = None;
                if leader.is_some() {
                    lease.query = leader;
                }
            }
        }
    }

    /// Fences on the local deadline: a lease not renewed in time is given up (a leader
    /// becomes standby, with the deadline as the time of the change).
    fn expire(&mut self, now: Instant) {
        let Some(lease) = &self.lease else {
            return;
        };
        let until = self.valid_until(lease);
        if now < until {
            return;
        }
        let why = Why::LeaseNotRenewed {
            after: self.config.trusted_for(lease.ttl),
            message: self.last_error.clone(),
        };
        self.abandon(why, until, now);
    }

    /// Gives the lease up: its campaign is cancelled (etcd then deletes its key), it is
    /// revoked now or once etcd answers again, and the node is standby. A new lease is
    /// asked for at the next drive (or after the back-off).
    fn abandon(&mut self, why: Why, at: Instant, now: Instant) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        if let Campaign::Pending { id, .. } = lease.campaign {
            self.in_flight.remove(&id);
            self.cancels.push_back(id);
        }
        self.term = None;
        if self.leader.as_ref() == Some(&self.config.node_id) {
            self.leader = None;
        }
        if self.abandoned.len() >= ABANDONED_KEEP {
            self.abandoned.remove(0);
        }
        self.abandoned.push(lease.id);
        if self.trouble.is_none() {
            self.revoke_abandoned(now);
        }
        self.set_role(
            Role::Standby {
                leader: self.leader.clone(),
                why,
            },
            at,
        );
    }

    fn revoke_abandoned(&mut self, now: Instant) {
        for id in std::mem::take(&mut self.abandoned) {
            self.send(RequestKind::Revoke, wire::lease_id(id.0), Some(id), now);
        }
    }

    fn become_leader(&mut self, key: &wire::LeaderKey, now: Instant) {
        let Some(lease) = &mut self.lease else {
            return;
        };
        lease.campaign = Campaign::Done;
        let fencing = Fencing(u64::try_from(key.rev).unwrap_or(0));
        self.term = Some(Term {
            fencing,
            key: key.key.clone(),
            since_revision: key.header_revision,
            began: now,
        });
        self.leader = Some(self.config.node_id.clone());
        self.set_role(Role::Leader { fencing }, now);
    }

    /// A standby's role follows what is known: the leader, and the reason (etcd trouble,
    /// or campaigning once a lease is held).
    fn refresh_standby(&mut self, now: Instant) {
        let Role::Standby { why, .. } = &self.role else {
            return;
        };
        let why = if self.auth_refused {
            Why::AuthenticationFailed {
                message: self.last_error.clone().unwrap_or_default(),
            }
        } else if let Some(message) = &self.trouble {
            Why::EtcdUnreachable {
                message: message.clone(),
            }
        } else if self.lease.is_some() {
            Why::Campaigning
        } else {
            why.clone()
        };
        self.set_role(
            Role::Standby {
                leader: self.leader.clone(),
                why,
            },
            now,
        );
    }

    fn set_role(&mut self, role: Role, at: Instant) {
        if role == self.role {
            return;
        }
        if role.is_leader() != self.role.is_leader() {
            self.transitions += 1;
            if self.recent.len() >= HISTORY {
                self.recent.pop_front();
            }
            self.recent.push_back(Transition {
                at,
                role: role.clone(),
            });
        }
        self.role = role.clone();
        self.events.push_back(Event::Role(role));
    }

    fn send(
        &mut self,
        kind: RequestKind,
        body: Vec<u8>,
        lease: Option<LeaseId>,
        now: Instant,
    ) -> RequestId {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        let endpoint = self.endpoint;
        self.in_flight.insert(
            id,
            InFlight {
                kind,
                endpoint,
                sent: now,
                lease,
                token_generation: self.token_generation,
            },
        );
        self.requests.push_back(Request {
            id,
            kind,
            url: format!("{}{}", self.config.endpoints[endpoint], kind.path()),
            body,
            token: if kind == RequestKind::Authenticate {
                None
            } else {
                self.token.clone()
            },
            timeout: (kind != RequestKind::Campaign).then_some(self.config.request_timeout),
        });
        id
    }

    /// A request to `endpoint` failed: the next ones go to the next endpoint, and the
    /// trouble is reported once.
    fn failed(&mut self, endpoint: usize, message: String) {
        let url = self.config.endpoints[endpoint].clone();
        let message = format!("{url}: {message}");
        if endpoint == self.endpoint {
            self.endpoint = (self.endpoint + 1) % self.config.endpoints.len();
        }
        if self.trouble.is_none() {
            self.events.push_back(Event::EtcdTrouble {
                endpoint: url,
                message: message.clone(),
            });
            self.trouble = Some(message.clone());
        }
        self.last_error = Some(message);
    }

    /// etcd answered a request as it should.
    fn answered(&mut self, endpoint: usize, now: Instant) {
        self.last_error = None;
        if self.trouble.take().is_some() {
            self.events.push_back(Event::EtcdRecovered {
                endpoint: self.config.endpoints[endpoint].clone(),
            });
            self.revoke_abandoned(now);
        }
    }

    /// The message of a failed exchange, or the 2xx answer.
    fn outcome(answer: Result<Response, Failure>) -> Result<Response, String> {
        match answer {
            Ok(r) if (200..300).contains(&r.status) => Ok(r),
            Ok(r) => Err(wire::refusal(r.status, &r.body)),
            Err(failure) => Err(failure.to_string()),
        }
    }

    fn back_off(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let delay = self.config.retry.delay(self.failures, self.rng.next_f64());
        self.retry_at = Some(now + delay);
    }

    fn on_authenticate(
        &mut self,
        request: InFlight,
        answer: Result<Response, Failure>,
        now: Instant,
    ) {
        self.auth_request = None;
        // A refused password (HTTP 4xx), not a refused certificate.
        let refused = matches!(&answer, Ok(r) if (400..500).contains(&r.status)
            && !String::from_utf8_lossy(&r.body).contains(wire::COMMON_NAME_REFUSED));
        match Self::outcome(answer).and_then(|r| wire::parse_token(&r.body)) {
            Ok(token) => {
                self.answered(request.endpoint, now);
                self.auth_refused = false;
                self.token = Some(token);
                self.token_generation += 1;
                self.retry_at = None;
            }
            Err(message) => {
                self.back_off(now);
                self.auth_refused = refused;
                self.failed(request.endpoint, message);
            }
        }
    }

    fn on_grant(&mut self, request: InFlight, answer: Result<Response, Failure>, now: Instant) {
        self.grant_request = None;
        match Self::outcome(answer).and_then(|r| wire::parse_grant(&r.body)) {
            Ok(granted) => {
                let id = LeaseId(granted.id);
                if self.shutdown.is_some() {
                    self.send(RequestKind::Revoke, wire::lease_id(id.0), Some(id), now);
                    return;
                }
                self.answered(request.endpoint, now);
                self.failures = 0;
                self.retry_at = None;
                let granted_ttl = Duration::from_secs(u64::try_from(granted.ttl).unwrap_or(0));
                let ttl = self.config.lease_ttl.min(granted_ttl);
                let lease = Lease {
                    id,
                    ttl,
                    renewed_from: request.sent,
                    key: format!("{}/{:x}", self.config.election, granted.id).into_bytes(),
                    keepalive: None,
                    query: None,
                    next_renewal: Some(request.sent + self.config.renew_every(ttl)),
                    campaign: Campaign::Unsent,
                    renew_latency: Some(now.saturating_duration_since(request.sent)),
                };
                self.lease = Some(lease);
                // A grant that took longer than the lease is trusted is given up at once.
                self.expire(now);
            }
            Err(message) => {
                self.back_off(now);
                self.failed(request.endpoint, message);
            }
        }
    }

    fn current_lease(&mut self, request: &InFlight) -> Option<&mut Lease> {
        self.lease
            .as_mut()
            .filter(|lease| Some(lease.id) == request.lease)
    }

    fn on_keepalive(&mut self, request: InFlight, answer: Result<Response, Failure>, now: Instant) {
        let Some(lease) = self.current_lease(&request) else {
            return;
        };
        lease.keepalive = None;
        let id = lease.id;
        let result = Self::outcome(answer).and_then(|r| wire::parse_keepalive(&r.body, id.0));
        match result {
            Ok(0) => {
                self.answered(request.endpoint, now);
                self.abandon(Why::LeaseLost, now, now);
            }
            Ok(ttl) => {
                self.answered(request.endpoint, now);
                let renewed_ttl = Duration::from_secs(u64::try_from(ttl).unwrap_or(0));
                let every = self
                    .config
                    .renew_every(self.config.lease_ttl.min(renewed_ttl));
                if let Some(lease) = self.current_lease(&request) {
                    if request.sent > lease.renewed_from {
                        lease.renewed_from = request.sent;
                        lease.ttl = lease.ttl.min(renewed_ttl);
                    }
                    lease.renew_latency = Some(now.saturating_duration_since(request.sent));
                    lease.next_renewal = Some((request.sent + every).max(now));
                }
            }
            Err(message) => {
                let lost = message.contains(wire::LEASE_NOT_FOUND);
                if lost {
                    self.answered(request.endpoint, now);
                    self.abandon(Why::LeaseLost, now, now);
                    return;
                }
                self.failed(request.endpoint, message);
                let ttl = self.lease.as_ref().map_or(self.config.lease_ttl, |l| l.ttl);
                let pause = self.config.renew_pause(ttl);
                if let Some(lease) = self.current_lease(&request) {
                    lease.next_renewal = Some(now + pause);
                }
            }
        }
    }

    fn on_campaign(&mut self, request: InFlight, answer: Result<Response, Failure>, now: Instant) {
        let Some(lease) = self.current_lease(&request) else {
            return;
        };
        let (id, key) = (lease.id, lease.key.clone());
        match Self::outcome(answer).and_then(|r| wire::parse_campaign(&r.body)) {
            Ok(won) if won.lease == id.0 && won.key == key => {
                self.answered(request.endpoint, now);
                if self.term.is_none() {
                    self.become_leader(&won, now);
                } else if let Some(lease) = self.current_lease(&request) {
                    lease.campaign = Campaign::Done;
                }
            }
            Ok(won) => {
                // Not the key this lease campaigned with: do not trust it.
                self.abandon(
                    Why::LeadershipLost {
                        detail: format!(
                            "the campaign answered with key `{}` (lease {:x}), not this node's",
                            wire::clip(&String::from_utf8_lossy(&won.key)),
                            won.lease
                        ),
                    },
                    now,
                    now,
                );
                self.back_off(now);
            }
            Err(message) => {
                // Whatever happened to the campaign, its key may be gone: start over with a
                // new lease (and a new key), after the back-off.
                let lost = message.contains(wire::LEASE_NOT_FOUND);
                if !lost {
                    self.failed(request.endpoint, message.clone());
                }
                let why = if lost {
                    Why::LeaseLost
                } else {
                    Why::EtcdUnreachable { message }
                };
                self.abandon(why, now, now);
                self.back_off(now);
            }
        }
    }

    fn on_leader(&mut self, request: InFlight, answer: Result<Response, Failure>, now: Instant) {
        let Some(lease) = self.current_lease(&request) else {
            return;
        };
        lease.query = None;
        let (id, key, campaign) = (lease.id, lease.key.clone(), lease.campaign);
        let answer = match answer {
            Ok(r) => wire::parse_leader(r.status, &r.body),
            Err(failure) => Err(failure.to_string()),
        };
        let holder = match answer {
            Ok(holder) => holder,
            Err(message) => {
                self.failed(request.endpoint, message);
                return;
            }
        };
        self.answered(request.endpoint, now);
        if let Some(term) = &self.term
            && (request.sent < term.began
                || holder
                    .as_ref()
                    .is_some_and(|h| h.header_revision < term.since_revision))
        {
            return; // asked before this term was known
        }
        match holder {
            Some(h) if h.lease == id.0 && h.key == key => {
                if self.term.is_none() {
                    self.become_leader(&h, now);
                }
            }
            Some(h) => {
                let value = h.value.as_deref().unwrap_or_default();
                let other = NodeId::new(&String::from_utf8_lossy(value)).ok();
                let name = other
                    .as_ref()
                    .map_or_else(|| "an unnamed node".to_owned(), |n| format!("`{n}`"));
                self.leader = other;
                if self.term.is_some() {
                    let detail = format!(
                        "etcd names {name} as the leader (key `{}`, revision {})",
                        wire::clip(&String::from_utf8_lossy(&h.key)),
                        h.rev
                    );
                    self.abandon(Why::LeadershipLost { detail }, now, now);
                }
            }
            None => {
                self.leader = None;
                if self.term.is_some() {
                    let detail = "etcd reports no leader: this node's key was deleted".to_owned();
                    self.abandon(Why::LeadershipLost { detail }, now, now);
                } else if let Campaign::Pending { sent, .. } = campaign
                    && request.sent >= sent + self.config.request_timeout
                {
                    // The campaign has had time to create its key, and there is no key at
                    // all: it was deleted (by hand, or by a cleanup of a cancelled request).
                    let detail = "etcd reports no leader while this node campaigns: its key \
                                  was deleted; campaigning again with a new lease"
                        .to_owned();
                    self.abandon(Why::LeadershipLost { detail }, now, now);
                }
            }
        }
    }

    fn on_cleanup(&mut self, request: InFlight, answer: Result<Response, Failure>) {
        let done = match &answer {
            Ok(r) => {
                (200..300).contains(&r.status)
                    || wire::error_message(&r.body)
                        .is_some_and(|m| m.contains(wire::LEASE_NOT_FOUND))
            }
            Err(_) => false,
        };
        if !done
            && request.kind == RequestKind::Revoke
            && self.shutdown.is_none()
            && let Some(id) = request.lease
            && !self.abandoned.contains(&id)
            && self.abandoned.len() < ABANDONED_KEEP
        {
            // Tried again once etcd answers again.
            self.abandoned.push(id);
        }
    }

    fn check_finished(&mut self) {
        if self.shutdown.is_some()
            && !self.in_flight.values().any(|r| {
                matches!(
                    r.kind,
                    RequestKind::Resign | RequestKind::Revoke | RequestKind::Grant
                )
            })
        {
            self.finished = true;
        }
    }
}

#[cfg(test)]
mod tests;
