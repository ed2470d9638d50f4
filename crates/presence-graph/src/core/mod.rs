//! The sans-IO core (quinn-proto style): tokens, budget and credit, presence sessions and
//! their refresh, status messages, user lookups and batched polling.
//!
//! Inputs, each with `now`: [`GraphCore::publish`], [`GraphCore::unpublish`],
//! [`GraphCore::subscribe`], [`GraphCore::unsubscribe`], [`GraphCore::handle_response`],
//! [`GraphCore::handle_failure`], [`GraphCore::handle_timeout`]. Outputs:
//! [`GraphCore::poll_request`] (HTTP requests to send), [`GraphCore::poll_timeout`] (when to
//! call `handle_timeout`), [`GraphCore::poll_event`]. No sockets, no clock, no tokio;
//! jitter and `client-request-id`s come from a seeded generator, so a run is a function of
//! its inputs.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_model::{EntraId, Platform, Publication, UserAddress, UserId};
use presence_transport::{PresenceUpdate, TransportError, TransportEvent};

use crate::mapping::{Mapping, Pair, Target, pull};
use crate::rate::Gcra;
use crate::settings::{GRAPH_LIMIT, GraphSettings, Secret};
use crate::wire;
use presence_model::random::{Backoff, SplitMix64};
use presence_model::timers::Timers;

/// Most ids Graph takes in one `getPresencesByUserId`.
pub const BATCH_LIMIT: usize = 650;
/// Largest answer body the core reads.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// The longest a token is used, whatever its `expires_in` says (Entra's live about an
/// hour): a larger value is taken as this, so no answer can push the refresh out of reach
/// (or past what a clock can represent).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How often an Available/Available session is set again: Graph lets it decay to
/// AvailableInactive after 5 minutes.
pub const AVAILABLE_REFRESH: Duration = Duration::from_secs(240);
/// How long new subscriptions are gathered before their first read.
const SUBSCRIBE_GATHER: Duration = Duration::from_millis(50);
/// How long status messages to learn are gathered before one batched read while the
/// budget is busy (at 45 publications per second, about 90 users per read); with room to
/// spare they are read after [`SUBSCRIBE_GATHER`].
const LEARN_GATHER: Duration = Duration::from_secs(2);
/// The sliding window of Graph's budget.
const WINDOW: Duration = Duration::from_secs(30);

/// Identifies one call to [`GraphCore::publish`] or [`GraphCore::unpublish`]; its outcome
/// comes back as [`Event::Settled`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishId(pub u64);

/// Identifies one HTTP request of [`GraphCore::poll_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
}

/// What a request is for (logs, metrics, tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A client-credentials token request (Entra; not a presence request).
    Token,
    /// A `GET /users/{upn}` lookup (not a presence request).
    User,
    /// `getPresencesByUserId`.
    Read,
    /// A presence write: `setPresence`, `clearPresence`, (`clear`)`setUserPreferredPresence`,
    /// `setStatusMessage`.
    Write,
}

/// An HTTP request to send. Its `Debug` shows neither the `Authorization` header nor the
/// body (which holds the client secret for a token request).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Answer with this id.
    pub id: RequestId,
    /// The app registration (index) it is made for.
    pub app: usize,
    /// What it is for.
    pub kind: RequestKind,
    /// GET or POST.
    pub method: Method,
    /// The full URL.
    pub url: String,
    /// Headers: `Authorization`, `Content-Type`, `client-request-id`.
    pub headers: Vec<(&'static str, String)>,
    /// The body (JSON or a form), possibly empty.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The last path segment of the URL (`setPresence`, `getPresencesByUserId`, `token`).
    pub fn operation(&self) -> &str {
        let path = self.url.split('?').next().unwrap_or("");
        path.rsplit('/').next().unwrap_or(path)
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("HttpRequest")
            .field("id", &self.id)
            .field("app", &self.app)
            .field("kind", &self.kind)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// An HTTP answer as the core needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Retry-After` header, read with [`wire::parse_retry_after`].
    pub retry_after: Option<Duration>,
    /// The body (at most [`MAX_BODY`] bytes are looked at).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// An answer without `Retry-After`.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse {
            status,
            retry_after: None,
            body: body.into(),
        }
    }
}

/// A request that got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No answer within `request-timeout`.
    Timeout,
    /// The connection failed (DNS, TCP, TLS, HTTP/2).
    Network(String),
    /// The answer's body was larger than the limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("no answer in time"),
            Failure::Network(m) => write!(f, "network error: {m}"),
            Failure::TooLarge { limit } => {
                write!(f, "the answer is larger than {limit} bytes and was refused")
            }
        }
    }
}

/// What the core reports.
#[derive(Debug)]
pub enum Event {
    /// A publication or unpublication settled.
    Settled {
        /// The call.
        id: PublishId,
        /// The user.
        user: UserId,
        /// `Ok` once Graph accepted its `setPresence` / `setUserPreferredPresence` /
        /// `clearPresence`, or why it will not be delivered.
        result: Result<(), TransportError>,
    },
    /// An event of the port, for the engine.
    Transport(TransportEvent),
    /// Entra refused an app's credential (logged once at error level; repeated refusals
    /// for the same reason are not reported again).
    CredentialRefused {
        /// The app's client id.
        client_id: String,
        /// Entra's error and description (without per-attempt trace ids).
        description: String,
        /// When the token is asked for again (the back-off drawn for this attempt).
        retry_in: Duration,
    },
    /// An app whose credential was refused got a token again.
    CredentialRecovered {
        /// The app's client id.
        client_id: String,
    },
    /// A token request failed for a passing reason (network, 5xx); reported once per
    /// distinct message.
    TokenTrouble {
        /// The app's client id.
        client_id: String,
        /// What went wrong.
        message: String,
        /// When the token is asked for again (Entra's `Retry-After`, else the back-off
        /// drawn for this attempt).
        retry_in: Duration,
    },
    /// Something odd that stopped nothing (an unreadable answer, a refused refresh).
    Warning {
        /// What.
        message: String,
    },
}

/// One app registration as the core uses it.
#[derive(Clone, Debug)]
pub struct AppCredential {
    /// The application (client) id, lower case.
    pub client_id: String,
    /// Its secret.
    pub secret: Secret,
}

/// Everything the core needs, already validated.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// The platform it serves (`teams`).
    pub platform: Platform,
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub token_url: String,
    /// The Graph base, `https://graph.microsoft.com/v1.0`.
    pub graph_url: String,
    /// The token scope.
    pub scope: String,
    /// The app registrations; users are spread over them by [`app_of`].
    pub apps: Vec<AppCredential>,
    /// The push mapping.
    pub mapping: Mapping,
    /// Presence requests per 30 s per app.
    pub budget: u32,
    /// Requests in flight per app (at least 2).
    pub max_concurrency: u32,
    /// How often subscribed users are read.
    pub poll_interval: Duration,
    /// The sessions' `expirationDuration`.
    pub session_duration: Duration,
    /// Whether preferred presence may be in use (then a first write of a session state
    /// also clears a preferred presence the bridge may have set before a restart).
    pub preferred_presence: bool,
    /// Back-off of token requests after a failure.
    pub token_backoff: Backoff,
    /// Back-off of internal work after 5xx, timeouts and 429 without `Retry-After`.
    pub retry_backoff: Backoff,
    /// How often an unresolved UPN is looked up again.
    pub user_retry: Duration,
    /// The largest answer body read.
    pub max_body: usize,
}

impl CoreConfig {
    /// Defaults for tests and examples: one app, the given URLs, default mapping.
    pub fn new(token_url: &str, graph_url: &str, client_id: &str, secret: Secret) -> CoreConfig {
        CoreConfig {
            platform: Platform::teams(),
            token_url: token_url.to_owned(),
            graph_url: graph_url.trim_end_matches('/').to_owned(),
            scope: "https://graph.microsoft.com/.default".to_owned(),
            apps: vec![AppCredential {
                client_id: client_id.to_ascii_lowercase(),
                secret,
            }],
            mapping: Mapping::new(false, Some(presence_model::Lcid::EN_US)),
            budget: 1350,
            max_concurrency: 16,
            poll_interval: Duration::from_secs(5),
            session_duration: Duration::from_secs(3600),
            preferred_presence: false,
            token_backoff: Backoff {
                initial: Duration::from_secs(5),
                max: Duration::from_secs(300),
                jitter: 0.2,
            },
            retry_backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                jitter: 0.2,
            },
            user_retry: Duration::from_secs(600),
            max_body: MAX_BODY,
        }
    }

    /// From validated settings and the secrets read for each app (the main one first).
    pub fn from_settings(
        settings: &GraphSettings,
        platform: Platform,
        secrets: Vec<(String, Secret)>,
    ) -> Result<CoreConfig, crate::GraphError> {
        settings.validate()?;
        Ok(CoreConfig {
            platform,
            token_url: settings.token_url(),
            graph_url: settings.graph_base(),
            scope: settings.scope.trim().to_owned(),
            apps: secrets
                .into_iter()
                .map(|(client_id, secret)| AppCredential { client_id, secret })
                .collect(),
            mapping: settings.mapping()?,
            budget: settings.budget,
            max_concurrency: settings.max_concurrency,
            poll_interval: settings.poll_interval,
            session_duration: settings.session_duration,
            preferred_presence: settings.preferred_presence,
            token_backoff: Backoff {
                initial: settings.reconnect_initial,
                max: settings.reconnect_max,
                jitter: 0.2,
            },
            retry_backoff: Backoff {
                initial: settings.retry_initial,
                max: settings.retry_max,
                jitter: 0.2,
            },
            user_retry: settings.user_retry,
            max_body: MAX_BODY,
        })
    }

    /// The bucket's burst: 2 × max-concurrency, at most 64, and at most what keeps
    /// `budget + burst` within Graph's 1,500 (never below 2).
    pub fn burst(&self) -> u32 {
        (2 * self.max_concurrency)
            .clamp(2, 64)
            .min(GRAPH_LIMIT.saturating_sub(self.budget).max(2))
    }

    /// The most credit outstanding per app: half of what the bucket and the in-flight
    /// window hold, so internal work (refreshes, polls) always finds room.
    pub fn credit_cap(&self) -> u32 {
        (self.max_concurrency.min(self.burst()) / 2).max(1)
    }
}

/// The app a user is served by: a stable hash (FNV-1a 64 of `platform:address`) modulo
/// the number of apps, so the assignment survives restarts.
pub fn app_of(user: &UserId, apps: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % apps.max(1) as u64) as usize
}

/// The core's state for `status()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreStatus {
    /// Every app holds a valid token.
    pub connected: bool,
    /// A refused credential's description or the last token error.
    pub detail: Option<String>,
    /// Publications handed over and not settled.
    pub publications_in_flight: usize,
}

/// Counters, for tests, benchmarks and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Token requests made.
    pub token_requests: u64,
    /// Presence requests made (reads and writes; each counts against the budget).
    pub presence_requests: u64,
    /// Of which writes.
    pub writes: u64,
    /// `GET /users` lookups.
    pub lookups: u64,
    /// 429 answers.
    pub throttled: u64,
    /// Credit granted.
    pub credit_granted: u64,
}

// --- internal state --------------------------------------------------------------------

type UserIx = u32;

#[derive(Clone, Debug)]
struct Token {
    value: String,
    refresh_at: Instant,
    expires_at: Instant,
}

#[derive(Clone, Debug, Default)]
struct Pause {
    until: Option<Instant>,
    attempt: u32,
}

impl Pause {
    fn active(&self, now: Instant) -> bool {
        self.until.is_some_and(|t| t > now)
    }
}

#[derive(Debug)]
struct App {
    client_id: String,
    secret: Secret,
    token: Option<Token>,
    token_gen: u64,
    token_proven: bool,
    /// The token that worked was refused (revoked, expired early): a new one is being
    /// fetched while the app stays connected; requests wait for it.
    renewing: bool,
    fetching: Option<RequestId>,
    retry_at: Option<Instant>,
    attempt: u32,
    refused: Option<String>,
    trouble: Option<String>,
    bucket: Gcra,
    in_flight: u32,
    granted: u32,
    held: u32,
    writes_paused: Pause,
    reads_paused: Pause,
    resend: VecDeque<Pending>,
    parked: Vec<Pending>,
    held_ops: VecDeque<UserIx>,
    free_ops: VecDeque<UserIx>,
    follow: VecDeque<UserIx>,
    lookups: VecDeque<UserIx>,
    learn: Vec<UserIx>,
    learn_due: Option<Instant>,
    subscribed: BTreeSet<UserIx>,
    new_subs: Vec<UserIx>,
    new_subs_due: Option<Instant>,
    polls: VecDeque<Vec<UserIx>>,
    polls_outstanding: usize,
    next_poll: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entra {
    Known(EntraId),
    Unresolved,
    Resolving,
    NotFound,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    Unknown,
    Learning,
    Failed,
    Is(Option<Arc<str>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    Unknown,
    Yes,
    No,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Set(Target),
    ClearPreferred,
    Message(Option<Arc<str>>),
    Refresh,
    /// Write the last accepted state again (after a write whose outcome is unknown).
    Reassert,
}

#[derive(Clone, Debug)]
struct Queued {
    step: Step,
    op: Option<PublishId>,
}

#[derive(Debug)]
struct User {
    id: UserId,
    app: usize,
    entra: Entra,
    problem: Option<String>,
    lane: Option<RequestId>,
    steps: VecDeque<Queued>,
    steps_op: Option<PublishId>,
    holds: bool,
    in_ops: bool,
    in_follow: bool,
    not_before: Option<Instant>,
    attempt: u32,
    applied: Option<Target>,
    /// The status message the applied state asked for (`Some(None)`: none).
    applied_message: Option<Option<Arc<str>>>,
    /// The status message the current operation asks for.
    op_message: Option<(PublishId, Option<Arc<str>>)>,
    /// The bridge has sent a write for this user since start.
    touched: bool,
    /// A publication was handed over after `applied` was written: `applied` is superseded
    /// and must not be refreshed.
    stale: bool,
    preferred: Tri,
    known: Known,
    ours: Option<Arc<str>>,
    subscribed: bool,
    awaiting: bool,
    last_seq: Option<String>,
    last_reported: Option<(u16, String)>,
}

/// What was actually sent for a step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Sent {
    Session(Pair),
    Preferred(Pair),
    ClearSession,
    ClearPreferred,
    Message(Arc<str>),
    Refresh(Target),
}

#[derive(Clone, Debug)]
enum Purpose {
    Token,
    Lookup {
        user: UserIx,
    },
    Step {
        user: UserIx,
        sent: Sent,
        op: Option<PublishId>,
        /// The operation whose steps this one belonged to when it was sent.
        owner: Option<PublishId>,
    },
    Read {
        users: Vec<UserIx>,
        kind: ReadKind,
    },
}

/// Why users are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadKind {
    /// A batch of the poll round.
    Poll,
    /// The first read of new subscriptions.
    NewSubs,
    /// Status messages to learn before deciding to write one.
    Learn,
}

#[derive(Clone, Debug)]
struct Pending {
    app: usize,
    purpose: Purpose,
    issued: u64,
    resent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum TimerKey {
    Refresh(UserIx),
    StepRetry(UserIx),
    Lookup(UserIx),
}

enum Resolution {
    Send(Sent),
    Skip,
    Wait,
}

/// The sans-IO Microsoft Graph presence core. See the [module docs](self).
#[derive(Debug)]
pub struct GraphCore {
    config: CoreConfig,
    expiration: String,
    rng: SplitMix64,
    apps: Vec<App>,
    users: Vec<User>,
    index: HashMap<UserId, UserIx>,
    by_entra: HashMap<EntraId, Vec<UserIx>>,
    pending: HashMap<RequestId, Pending>,
    out: VecDeque<HttpRequest>,
    events: VecDeque<Event>,
    timers: Timers<TimerKey>,
    next_request: u64,
    connected: bool,
    ops_outstanding: usize,
    last_now: Instant,
    stats: CoreStats,
}

impl GraphCore {
    /// A core that starts fetching a token for every app at `now`. `seed` drives jitter and
    /// `client-request-id`s.
    pub fn new(config: CoreConfig, seed: u64, now: Instant) -> GraphCore {
        let burst = config.burst();
        let apps = config
            .apps
            .iter()
            .map(|a| App {
                client_id: a.client_id.clone(),
                secret: a.secret.clone(),
                token: None,
                token_gen: 0,
                token_proven: false,
                renewing: false,
                fetching: None,
                retry_at: None,
                attempt: 0,
                refused: None,
                trouble: None,
                bucket: Gcra::new(config.budget, WINDOW, burst),
                in_flight: 0,
                granted: 0,
                held: 0,
                writes_paused: Pause::default(),
                reads_paused: Pause::default(),
                resend: VecDeque::new(),
                parked: Vec::new(),
                held_ops: VecDeque::new(),
                free_ops: VecDeque::new(),
                follow: VecDeque::new(),
                lookups: VecDeque::new(),
                learn: Vec::new(),
                learn_due: None,
                subscribed: BTreeSet::new(),
                new_subs: Vec::new(),
                new_subs_due: None,
                polls: VecDeque::new(),
                polls_outstanding: 0,
                next_poll: None,
            })
            .collect();
        let mut core = GraphCore {
            expiration: wire::iso_duration(config.session_duration),
            config,
            rng: SplitMix64::new(seed),
            apps,
            users: Vec::new(),
            index: HashMap::new(),
            by_entra: HashMap::new(),
            pending: HashMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            timers: Timers::new(),
            next_request: 0,
            connected: false,
            ops_outstanding: 0,
            last_now: now,
            stats: CoreStats::default(),
        };
        core.pump(now);
        core
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Whether every app holds a valid token.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Counters since start.
    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }

    /// A new secret for the app `client_id` (its file or variable changed, e.g. after a
    /// rotation): when it differs and the app has no token, a token is asked for at once
    /// instead of after the back-off. `false` when nothing changed.
    pub fn set_secret(&mut self, client_id: &str, secret: Secret, now: Instant) -> bool {
        let Some(app) = self
            .apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
        else {
            return false;
        };
        if app.secret.expose() == secret.expose() {
            return false;
        }
        app.secret = secret;
        if app.token.is_none() && app.fetching.is_none() {
            app.retry_at = None;
            app.attempt = 0;
        }
        self.pump(now);
        true
    }

    /// State for `status()`.
    pub fn status(&self) -> CoreStatus {
        let detail = self
            .apps
            .iter()
            .find_map(|a| a.refused.clone())
            .or_else(|| self.apps.iter().find_map(|a| a.trouble.clone()));
        CoreStatus {
            connected: self.connected,
            detail,
            publications_in_flight: self.ops_outstanding,
        }
    }

    /// The object id a user's UPN resolved to, when known.
    pub fn entra_id(&self, user: &UserId) -> Option<&EntraId> {
        let ix = *self.index.get(user)?;
        match &self.users[ix as usize].entra {
            Entra::Known(id) => Some(id),
            _ => None,
        }
    }

    // --- outputs -----------------------------------------------------------------------

    /// The next HTTP request to send.
    pub fn poll_request(&mut self) -> Option<HttpRequest> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let now = self.last_now;
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t
                && t > now
            {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.timers.next_deadline());
        for app in &self.apps {
            if app.fetching.is_none() {
                let due = match &app.token {
                    None => app.retry_at,
                    Some(t) => Some(app.retry_at.map_or(t.refresh_at, |r| r.max(t.refresh_at))),
                };
                consider(due);
            }
            if let Some(t) = &app.token {
                consider(Some(t.expires_at));
            } else {
                continue;
            }
            consider(app.writes_paused.until);
            consider(app.reads_paused.until);
            consider(app.learn_due);
            consider(app.new_subs_due);
            if !app.subscribed.is_empty() {
                consider(app.next_poll);
            }
            // Work or credit waiting for the bucket.
            let wants_tokens = !app.held_ops.is_empty()
                || !app.free_ops.is_empty()
                || !app.follow.is_empty()
                || !app.resend.is_empty()
                || !app.polls.is_empty()
                || (self.connected && app.granted + app.held < self.config.credit_cap());
            if wants_tokens {
                let mut bucket = app.bucket.clone();
                let need = app.granted + app.held + 1;
                consider(Some(bucket.when_available(need, now)));
            }
        }
        next
    }

    // --- inputs --------------------------------------------------------------------------

    /// Time passed: token refreshes, session refreshes, polls, retries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.pump(now);
    }

    /// Publishes `publication` for `user`; settles as [`Event::Settled`] with `id`.
    /// Consumes one credit. The request is sent at once when credit was held (unless a
    /// request for the same user is still in flight, or its UPN must be looked up first).
    pub fn publish(
        &mut self,
        user: &UserId,
        publication: &Publication,
        id: PublishId,
        now: Instant,
    ) {
        self.last_now = now;
        self.ops_outstanding += 1;
        let target = self.config.mapping.push(publication);
        let message = self
            .config
            .mapping
            .status_message(publication)
            .map(Arc::<str>::from);
        let Some(ix) = self.admit(user, id, now) else {
            self.pump(now);
            return;
        };
        if target == Target::Nothing {
            self.release_credit(self.users[ix as usize].app);
            self.settle(id, ix, Ok(()));
            self.pump(now);
            return;
        }
        let mut steps = vec![Queued {
            step: Step::Set(target),
            op: Some(id),
        }];
        let u = &self.users[ix as usize];
        let clear_preferred = u.preferred == Tri::Yes
            || (u.preferred == Tri::Unknown && self.config.preferred_presence);
        match target {
            Target::Session(_) | Target::Clear if clear_preferred => steps.push(Queued {
                step: Step::ClearPreferred,
                op: None,
            }),
            _ => {}
        }
        if self.config.mapping.manages_status_messages() {
            let desired = if target == Target::Clear {
                None
            } else {
                message
            };
            steps.push(Queued {
                step: Step::Message(desired),
                op: None,
            });
        }
        self.start_op(ix, id, steps, true, now);
        self.pump(now);
    }

    /// Ends what the bridge published for `user` (its session, its preferred presence, its
    /// status message); `Ok` at once when nothing was published since start. Needs no
    /// credit.
    pub fn unpublish(&mut self, user: &UserId, id: PublishId, now: Instant) {
        self.last_now = now;
        self.ops_outstanding += 1;
        if !self.check_platform(user, id) {
            self.pump(now);
            return;
        }
        let Some(&ix) = self.index.get(user) else {
            self.events.push_back(Event::Settled {
                id,
                user: user.clone(),
                result: Ok(()),
            });
            self.ops_outstanding -= 1;
            return;
        };
        let u = &self.users[ix as usize];
        let nothing =
            !u.touched && u.preferred != Tri::Yes && u.steps.is_empty() && u.lane.is_none();
        if nothing {
            self.settle(id, ix, Ok(()));
            return;
        }
        if !self.connected {
            self.settle(id, ix, Err(TransportError::NotConnected));
            return;
        }
        let mut steps = vec![Queued {
            step: Step::Set(Target::Clear),
            op: Some(id),
        }];
        if u.preferred == Tri::Yes {
            steps.push(Queued {
                step: Step::ClearPreferred,
                op: None,
            });
        }
        if self.config.mapping.manages_status_messages() {
            steps.push(Queued {
                step: Step::Message(None),
                op: None,
            });
        }
        self.start_op(ix, id, steps, false, now);
        self.pump(now);
    }

    /// Adds users to the subscription set; each is reported as `Subscribed` once its first
    /// answer arrived, then `Presence` on every change.
    pub fn subscribe(&mut self, users: &[UserId], now: Instant) {
        self.last_now = now;
        for user in users {
            if user.platform() != &self.config.platform {
                continue;
            }
            let ix = self.user_ix(user);
            let u = &mut self.users[ix as usize];
            if u.subscribed {
                continue;
            }
            u.subscribed = true;
            u.awaiting = true;
            u.last_reported = None;
            let app = u.app;
            self.apps[app].subscribed.insert(ix);
            match self.users[ix as usize].entra.clone() {
                Entra::Known(_) => self.add_new_sub(ix, now),
                Entra::Unresolved => self.want_lookup(ix),
                Entra::Resolving => {}
                Entra::NotFound => {}
            }
            if matches!(user.address(), UserAddress::Sip(_)) {
                self.report_problem(
                    ix,
                    "a Teams user is named by a UPN or an Entra object id, not a SIP address"
                        .to_owned(),
                );
            }
            if self.apps[app].next_poll.is_none() {
                self.apps[app].next_poll = Some(now + self.config.poll_interval);
            }
        }
        self.pump(now);
    }

    /// Removes users from the subscription set.
    pub fn unsubscribe(&mut self, users: &[UserId], now: Instant) {
        self.last_now = now;
        for user in users {
            if let Some(&ix) = self.index.get(user) {
                let u = &mut self.users[ix as usize];
                u.subscribed = false;
                u.awaiting = false;
                let app = u.app;
                self.apps[app].subscribed.remove(&ix);
            }
        }
        self.pump(now);
    }

    /// The answer to request `id`.
    pub fn handle_response(&mut self, id: RequestId, response: HttpResponse, now: Instant) {
        self.last_now = now;
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        if response.body.len() > self.config.max_body {
            self.on_failure(
                pending,
                Failure::TooLarge {
                    limit: self.config.max_body,
                },
                now,
            );
        } else {
            self.on_response(pending, response, now);
        }
        self.pump(now);
    }

    /// Request `id` got no answer.
    pub fn handle_failure(&mut self, id: RequestId, failure: Failure, now: Instant) {
        self.last_now = now;
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        self.on_failure(pending, failure, now);
        self.pump(now);
    }

    // --- users -------------------------------------------------------------------------

    fn user_ix(&mut self, user: &UserId) -> UserIx {
        if let Some(&ix) = self.index.get(user) {
            return ix;
        }
        let ix = self.users.len() as UserIx;
        let entra = match user.address() {
            UserAddress::EntraId(id) => Entra::Known(id.clone()),
            UserAddress::Upn(_) => Entra::Unresolved,
            UserAddress::Sip(_) => Entra::NotFound,
        };
        if let Entra::Known(id) = &entra {
            self.by_entra.entry(id.clone()).or_default().push(ix);
        }
        self.users.push(User {
            id: user.clone(),
            app: app_of(user, self.apps.len()),
            entra,
            problem: None,
            lane: None,
            steps: VecDeque::new(),
            steps_op: None,
            holds: false,
            in_ops: false,
            in_follow: false,
            not_before: None,
            attempt: 0,
            applied: None,
            applied_message: None,
            op_message: None,
            touched: false,
            stale: false,
            preferred: Tri::Unknown,
            known: Known::Unknown,
            ours: None,
            subscribed: false,
            awaiting: false,
            last_seq: None,
            last_reported: None,
        });
        self.index.insert(user.clone(), ix);
        ix
    }

    fn check_platform(&mut self, user: &UserId, id: PublishId) -> bool {
        let Err(error) = TransportError::ensure_platform(&self.config.platform, user) else {
            return true;
        };
        self.events.push_back(Event::Settled {
            id,
            user: user.clone(),
            result: Err(error),
        });
        self.ops_outstanding -= 1;
        false
    }

    /// Checks a publication's user; `None` when it was settled at once.
    fn admit(&mut self, user: &UserId, id: PublishId, _now: Instant) -> Option<UserIx> {
        if !self.check_platform(user, id) {
            self.release_credit(app_of(user, self.apps.len()));
            return None;
        }
        let ix = self.user_ix(user);
        let app = self.users[ix as usize].app;
        if !self.connected {
            self.settle(id, ix, Err(TransportError::NotConnected));
            return None;
        }
        let reason = match (&self.users[ix as usize].entra, user.address()) {
            (_, UserAddress::Sip(_)) => Some(
                "a Teams user is named by a UPN or an Entra object id, not a SIP address"
                    .to_owned(),
            ),
            (Entra::NotFound, _) => Some(
                self.users[ix as usize]
                    .problem
                    .clone()
                    .unwrap_or_else(|| "the UPN does not resolve in the tenant".to_owned()),
            ),
            _ => None,
        };
        if let Some(reason) = reason {
            self.release_credit(app);
            self.settle(
                id,
                ix,
                Err(TransportError::Unsupported {
                    user: user.clone(),
                    reason,
                }),
            );
            return None;
        }
        Some(ix)
    }

    fn report_problem(&mut self, ix: UserIx, problem: String) {
        let u = &mut self.users[ix as usize];
        if u.problem.as_deref() == Some(problem.as_str()) {
            return;
        }
        u.problem = Some(problem.clone());
        self.events
            .push_back(Event::Transport(TransportEvent::UserProblem {
                user: u.id.clone(),
                problem: Some(problem),
            }));
    }

    fn want_lookup(&mut self, ix: UserIx) {
        let u = &mut self.users[ix as usize];
        if u.entra == Entra::Unresolved || u.entra == Entra::NotFound {
            u.entra = Entra::Resolving;
            let app = u.app;
            self.timers.cancel(&TimerKey::Lookup(ix));
            self.apps[app].lookups.push_back(ix);
        }
    }

    fn add_new_sub(&mut self, ix: UserIx, now: Instant) {
        let app = self.users[ix as usize].app;
        let a = &mut self.apps[app];
        a.new_subs.push(ix);
        if a.new_subs.len() >= BATCH_LIMIT {
            a.new_subs_due = Some(now);
        } else if a.new_subs_due.is_none() {
            a.new_subs_due = Some(now + SUBSCRIBE_GATHER);
        }
    }

    // --- credit and operations ---------------------------------------------------------

    /// A publication consumed a credit: take the reservation (of the user's app if it has
    /// one). Returns whether the operation holds a reserved token.
    fn consume_credit(&mut self, app: usize, now: Instant) -> bool {
        if self.apps[app].granted > 0 {
            self.apps[app].granted -= 1;
            self.apps[app].held += 1;
            return true;
        }
        if let Some(other) = self.apps.iter().position(|a| a.granted > 0) {
            self.apps[other].granted -= 1;
        }
        if self.room(app, now) {
            self.apps[app].held += 1;
            return true;
        }
        false
    }

    /// A publication consumed a credit but settled at once: give the reservation back.
    fn release_credit(&mut self, app: usize) {
        if self.apps.get(app).is_some_and(|a| a.granted > 0) {
            self.apps[app].granted -= 1;
        } else if let Some(other) = self.apps.iter().position(|a| a.granted > 0) {
            self.apps[other].granted -= 1;
        }
    }

    fn release_hold(&mut self, ix: UserIx) {
        let u = &mut self.users[ix as usize];
        if u.holds {
            u.holds = false;
            let app = u.app;
            self.apps[app].held = self.apps[app].held.saturating_sub(1);
        }
    }

    fn start_op(
        &mut self,
        ix: UserIx,
        id: PublishId,
        steps: Vec<Queued>,
        credit: bool,
        now: Instant,
    ) {
        // A publication not yet sent is superseded; follow-ups of the previous one are
        // dropped (the new state decides its own).
        let previous = self.users[ix as usize].steps.iter().find_map(|q| q.op);
        if let Some(old) = previous {
            self.release_hold(ix);
            self.settle(old, ix, Err(TransportError::Superseded));
        }
        let app = self.users[ix as usize].app;
        let holds = credit && self.consume_credit(app, now);
        let u = &mut self.users[ix as usize];
        let message = steps.iter().find_map(|q| match &q.step {
            Step::Message(m) => Some(m.clone()),
            _ => None,
        });
        u.op_message = message.map(|m| (id, m));
        u.steps = steps.into();
        u.steps_op = Some(id);
        u.stale = true;
        u.holds = holds;
        u.not_before = None;
        u.attempt = 0;
        if u.entra == Entra::Unresolved {
            self.want_lookup(ix);
        }
        self.enqueue(ix);
    }

    fn settle(&mut self, id: PublishId, ix: UserIx, result: Result<(), TransportError>) {
        self.ops_outstanding = self.ops_outstanding.saturating_sub(1);
        self.events.push_back(Event::Settled {
            id,
            user: self.users[ix as usize].id.clone(),
            result,
        });
    }

    /// Drops the unsent steps of operation `op`: it failed, so what Graph shows from the
    /// bridge is again the last accepted state (refreshed as before), and the engine
    /// decides what comes next.
    fn drop_steps_of(&mut self, ix: UserIx, op: PublishId) -> bool {
        let u = &mut self.users[ix as usize];
        let reverted = u.steps_op == Some(op);
        if reverted {
            u.steps.clear();
            u.steps_op = None;
            u.stale = false;
            // The follow-ups of the state shown again (they were dropped for the failed
            // one): skipped at once when nothing needs doing.
            if u.preferred != Tri::No && !matches!(u.applied, Some(Target::Preferred(_))) {
                u.steps.push_back(Queued {
                    step: Step::ClearPreferred,
                    op: None,
                });
            }
            if let Some(message) = u.applied_message.clone() {
                u.steps.push_back(Queued {
                    step: Step::Message(message),
                    op: None,
                });
            }
            if u.preferred == Tri::Unknown && !self.config.preferred_presence {
                u.steps.retain(|q| q.step != Step::ClearPreferred);
            }
        }
        reverted
    }

    /// Puts a user into the queue its next step belongs to, when it can go.
    fn enqueue(&mut self, ix: UserIx) {
        let u = &mut self.users[ix as usize];
        if u.lane.is_some() || !matches!(u.entra, Entra::Known(_)) {
            return;
        }
        let Some(front) = u.steps.front() else {
            return;
        };
        let app = &mut self.apps[u.app];
        if front.op.is_some() {
            if !u.in_ops {
                u.in_ops = true;
                if u.holds {
                    app.held_ops.push_back(ix);
                } else {
                    app.free_ops.push_back(ix);
                }
            }
        } else if !u.in_follow && u.not_before.is_none() {
            u.in_follow = true;
            app.follow.push_back(ix);
        }
    }

    // --- the pump ------------------------------------------------------------------------

    fn room(&mut self, app: usize, now: Instant) -> bool {
        let max = self.config.max_concurrency;
        let a = &mut self.apps[app];
        let reserved = a.granted + a.held;
        a.in_flight + reserved < max && a.bucket.available(now) > reserved
    }

    fn slot(&self, app: usize) -> bool {
        let a = &self.apps[app];
        a.in_flight + a.granted + a.held < self.config.max_concurrency
    }

    fn pump(&mut self, now: Instant) {
        self.last_now = now;
        self.fire_timers(now);
        for app in 0..self.apps.len() {
            self.pump_token(app, now);
            if self.apps[app].token.is_none() {
                continue;
            }
            self.pump_resends(app, now);
            if !self.apps[app].writes_paused.active(now) {
                self.pump_ops(app, now);
                self.pump_follow(app, now);
            }
            self.pump_lookups(app, now);
            if !self.apps[app].reads_paused.active(now) {
                self.pump_reads(app, now);
            }
        }
        self.grant(now);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now) {
            match key {
                TimerKey::Refresh(ix) => {
                    let u = &mut self.users[ix as usize];
                    if u.steps.front().is_some_and(|q| q.op.is_some()) || u.lane.is_some() {
                        // A newer publication (or a request) is on its way: look again
                        // shortly, in case it fails.
                        self.timers
                            .set(TimerKey::Refresh(ix), now + Duration::from_secs(30));
                    } else if u.applied.is_some()
                        && !u.stale
                        && !u.steps.iter().any(|q| q.step == Step::Refresh)
                    {
                        u.steps.push_back(Queued {
                            step: Step::Refresh,
                            op: None,
                        });
                        self.enqueue(ix);
                    }
                }
                TimerKey::StepRetry(ix) => {
                    self.users[ix as usize].not_before = None;
                    self.enqueue(ix);
                }
                TimerKey::Lookup(ix) => self.want_lookup(ix),
            }
        }
        for a in &mut self.apps {
            if a.token.as_ref().is_some_and(|t| t.expires_at <= now) {
                // Handled in pump_token (it emits events).
            }
            if a.next_poll.is_some_and(|t| t <= now)
                && a.polls_outstanding == 0
                && a.token.is_some()
                && !a.reads_paused.active(now)
            {
                if a.subscribed.is_empty() {
                    a.next_poll = None;
                    continue;
                }
                let mut batch = Vec::with_capacity(BATCH_LIMIT.min(a.subscribed.len()));
                for &ix in &a.subscribed {
                    if matches!(self.users[ix as usize].entra, Entra::Known(_)) {
                        batch.push(ix);
                        if batch.len() == BATCH_LIMIT {
                            a.polls.push_back(std::mem::take(&mut batch));
                        }
                    }
                }
                if !batch.is_empty() {
                    a.polls.push_back(batch);
                }
                a.polls_outstanding = a.polls.len();
                a.next_poll = Some(now + self.config.poll_interval);
            }
        }
    }

    fn pump_token(&mut self, app: usize, now: Instant) {
        if self.apps[app]
            .token
            .as_ref()
            .is_some_and(|t| t.expires_at <= now)
        {
            self.lose_token(
                app,
                "the token expired and could not be renewed".to_owned(),
                now,
            );
        }
        let a = &self.apps[app];
        let due = a.fetching.is_none()
            && a.retry_at.is_none_or(|t| t <= now)
            && a.token.as_ref().is_none_or(|t| t.refresh_at <= now);
        if !due {
            return;
        }
        let body = wire::token_form(&a.client_id, a.secret.expose(), &self.config.scope);
        let url = self.config.token_url.clone();
        let id = self.emit(
            app,
            RequestKind::Token,
            url,
            Some("application/x-www-form-urlencoded"),
            body,
            false,
        );
        self.apps[app].fetching = Some(id);
        self.stats.token_requests += 1;
        self.pending.insert(
            id,
            Pending {
                app,
                purpose: Purpose::Token,
                issued: 0,
                resent: false,
            },
        );
    }

    fn pump_resends(&mut self, app: usize, now: Instant) {
        while let Some(front) = self.apps[app].resend.front() {
            let budgeted = matches!(front.purpose, Purpose::Step { .. } | Purpose::Read { .. });
            let paused = match front.purpose {
                Purpose::Step { .. } => self.apps[app].writes_paused.active(now),
                Purpose::Read { .. } => self.apps[app].reads_paused.active(now),
                _ => false,
            };
            let a = &mut self.apps[app];
            let ok = !paused
                && a.in_flight < self.config.max_concurrency
                && (!budgeted || a.bucket.available(now) > 0);
            if !ok {
                break;
            }
            let Some(pending) = self.apps[app].resend.pop_front() else {
                break;
            };
            if let Purpose::Step {
                user,
                ref sent,
                op,
                owner,
            } = pending.purpose
            {
                // Sent once before a newer publication was handed over: not sent again.
                let u = &self.users[user as usize];
                let superseded = match op {
                    Some(op) => u.steps_op != Some(op),
                    None if matches!(sent, Sent::Refresh(_)) => u.stale,
                    None => u.steps_op != owner,
                };
                if superseded {
                    self.users[user as usize].lane = None;
                    if let Some(op) = op {
                        self.settle(op, user, Err(TransportError::Superseded));
                    }
                    self.enqueue(user);
                    continue;
                }
            }
            self.send_pending(pending, now);
        }
    }

    fn pump_ops(&mut self, app: usize, now: Instant) {
        // Publications holding a reserved token and slot go first, then the others while
        // there is room.
        while let Some(&ix) = self.apps[app].held_ops.front() {
            let a = &mut self.apps[app];
            if a.in_flight >= self.config.max_concurrency || a.bucket.available(now) == 0 {
                break;
            }
            a.held_ops.pop_front();
            if !self.users[ix as usize].holds {
                // Its hold went to a newer publication or back: wait for room.
                self.apps[app].free_ops.push_back(ix);
                continue;
            }
            self.users[ix as usize].in_ops = false;
            self.try_send_step(ix, now);
        }
        while let Some(&ix) = self.apps[app].free_ops.front() {
            if !self.users[ix as usize].holds && !self.room(app, now) {
                break;
            }
            self.apps[app].free_ops.pop_front();
            self.users[ix as usize].in_ops = false;
            self.try_send_step(ix, now);
        }
    }

    fn pump_follow(&mut self, app: usize, now: Instant) {
        while let Some(&ix) = self.apps[app].follow.front() {
            if !self.room(app, now) {
                break;
            }
            self.apps[app].follow.pop_front();
            self.users[ix as usize].in_follow = false;
            self.try_send_step(ix, now);
        }
    }

    fn pump_lookups(&mut self, app: usize, now: Instant) {
        while let Some(&ix) = self.apps[app].lookups.front() {
            if !self.slot(app) {
                break;
            }
            self.apps[app].lookups.pop_front();
            if !matches!(self.users[ix as usize].id.address(), UserAddress::Upn(_)) {
                continue;
            }
            self.send_lookup(app, ix, now);
        }
    }

    fn pump_reads(&mut self, app: usize, now: Instant) {
        // Status messages to learn, then new subscriptions, then the poll round.
        let a = &self.apps[app];
        if a.learn_due.is_some_and(|t| t <= now) && !a.learn.is_empty() {
            while !self.apps[app].learn.is_empty() && self.room(app, now) {
                let a = &mut self.apps[app];
                let take = a.learn.len().min(BATCH_LIMIT);
                let users: Vec<UserIx> = a.learn.drain(..take).collect();
                self.send_read(app, users, ReadKind::Learn, now);
            }
            let a = &mut self.apps[app];
            a.learn_due = if a.learn.is_empty() { None } else { Some(now) };
        }
        let a = &self.apps[app];
        if a.new_subs_due.is_some_and(|t| t <= now) && !a.new_subs.is_empty() {
            while !self.apps[app].new_subs.is_empty() && self.room(app, now) {
                let a = &mut self.apps[app];
                let take = a.new_subs.len().min(BATCH_LIMIT);
                let users: Vec<UserIx> = a.new_subs.drain(..take).collect();
                let users: Vec<UserIx> = users
                    .into_iter()
                    .filter(|&ix| self.users[ix as usize].subscribed)
                    .collect();
                if !users.is_empty() {
                    self.send_read(app, users, ReadKind::NewSubs, now);
                }
            }
            let a = &mut self.apps[app];
            a.new_subs_due = if a.new_subs.is_empty() {
                None
            } else {
                Some(now)
            };
        }
        while !self.apps[app].polls.is_empty() && self.room(app, now) {
            let Some(batch) = self.apps[app].polls.pop_front() else {
                break;
            };
            let users: Vec<UserIx> = batch
                .into_iter()
                .filter(|&ix| {
                    let u = &self.users[ix as usize];
                    u.subscribed && matches!(u.entra, Entra::Known(_))
                })
                .collect();
            if users.is_empty() {
                self.poll_done(app);
                continue;
            }
            self.send_read(app, users, ReadKind::Poll, now);
        }
    }

    fn poll_done(&mut self, app: usize) {
        let a = &mut self.apps[app];
        a.polls_outstanding = a.polls_outstanding.saturating_sub(1);
    }

    fn grant(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        let cap = self.config.credit_cap();
        let mut new = 0u32;
        for app in 0..self.apps.len() {
            if self.apps[app].token.is_none() || self.apps[app].writes_paused.active(now) {
                continue;
            }
            while self.apps[app].granted + self.apps[app].held < cap && self.room(app, now) {
                self.apps[app].granted += 1;
                new += 1;
            }
        }
        if new > 0 {
            self.stats.credit_granted += u64::from(new);
            self.events
                .push_back(Event::Transport(TransportEvent::Credit {
                    platform: self.config.platform.clone(),
                    credit: new,
                }));
        }
    }

    // --- sending -------------------------------------------------------------------------

    fn emit(
        &mut self,
        app: usize,
        kind: RequestKind,
        url: String,
        content_type: Option<&'static str>,
        body: Vec<u8>,
        auth: bool,
    ) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        let mut headers = Vec::with_capacity(3);
        if auth && let Some(t) = &self.apps[app].token {
            headers.push(("Authorization", format!("Bearer {}", t.value)));
        }
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct.to_owned()));
        }
        headers.push(("client-request-id", self.rng.guid()));
        self.out.push_back(HttpRequest {
            id,
            app,
            kind,
            method: if kind == RequestKind::User {
                Method::Get
            } else {
                Method::Post
            },
            url,
            headers,
            body,
        });
        id
    }

    /// Sends a Graph request (not a token request) for `pending`, counting it.
    fn send_pending(&mut self, pending: Pending, now: Instant) {
        let app = pending.app;
        let (kind, url, body) = match &pending.purpose {
            Purpose::Token => return,
            Purpose::Lookup { user } => {
                let UserAddress::Upn(upn) = self.users[*user as usize].id.address() else {
                    return;
                };
                (
                    RequestKind::User,
                    format!(
                        "{}/users/{}?$select=id",
                        self.config.graph_url,
                        wire::path_encode(upn.as_str())
                    ),
                    Vec::new(),
                )
            }
            Purpose::Step { user, sent, .. } => {
                let Entra::Known(entra) = &self.users[*user as usize].entra else {
                    return;
                };
                let (op, body) = self.step_body(app, sent);
                (
                    RequestKind::Write,
                    format!("{}/users/{}/presence/{op}", self.config.graph_url, entra),
                    body,
                )
            }
            Purpose::Read { users, .. } => {
                let ids: Vec<&str> = users
                    .iter()
                    .filter_map(|&ix| match &self.users[ix as usize].entra {
                        Entra::Known(id) => Some(id.as_str()),
                        _ => None,
                    })
                    .collect();
                (
                    RequestKind::Read,
                    format!(
                        "{}/communications/getPresencesByUserId",
                        self.config.graph_url
                    ),
                    wire::presences_by_id(&ids),
                )
            }
        };
        let content_type = (!body.is_empty()).then_some("application/json");
        let id = self.emit(app, kind, url, content_type, body, true);
        let a = &mut self.apps[app];
        a.in_flight += 1;
        match kind {
            RequestKind::Read | RequestKind::Write => {
                a.bucket.take(now);
                self.stats.presence_requests += 1;
                if kind == RequestKind::Write {
                    self.stats.writes += 1;
                }
            }
            RequestKind::User => self.stats.lookups += 1,
            RequestKind::Token => {}
        }
        if let Purpose::Step { user, sent, .. } = &pending.purpose {
            let u = &mut self.users[*user as usize];
            u.lane = Some(id);
            u.touched = true;
            if matches!(
                sent,
                Sent::Preferred(_) | Sent::Refresh(Target::Preferred(_))
            ) {
                // Until Graph says so, a preferred presence may or may not be set.
                if u.preferred == Tri::No {
                    u.preferred = Tri::Unknown;
                }
            }
            if let Sent::Message(text) = sent {
                // Until Graph says so, the message may or may not have been set.
                u.known = Known::Failed;
                if !text.is_empty() {
                    u.ours = Some(text.clone());
                }
            }
        }
        let pending = Pending {
            issued: self.apps[app].token_gen,
            ..pending
        };
        self.pending.insert(id, pending);
    }

    fn step_body(&self, app: usize, sent: &Sent) -> (&'static str, Vec<u8>) {
        let session = self.apps[app].client_id.as_str();
        let expiration = self.expiration.as_str();
        match sent {
            Sent::Session(p) | Sent::Refresh(Target::Session(p)) => (
                "setPresence",
                wire::set_presence(session, p.availability, p.activity, expiration),
            ),
            Sent::Preferred(p) | Sent::Refresh(Target::Preferred(p)) => (
                "setUserPreferredPresence",
                wire::set_preferred(p.availability, p.activity, expiration),
            ),
            Sent::ClearSession | Sent::Refresh(_) => {
                ("clearPresence", wire::clear_presence(session))
            }
            Sent::ClearPreferred => ("clearUserPreferredPresence", Vec::new()),
            Sent::Message(text) => ("setStatusMessage", wire::set_status_message(text)),
        }
    }

    fn send_lookup(&mut self, app: usize, ix: UserIx, now: Instant) {
        self.send_pending(
            Pending {
                app,
                purpose: Purpose::Lookup { user: ix },
                issued: 0,
                resent: false,
            },
            now,
        );
    }

    fn send_read(&mut self, app: usize, users: Vec<UserIx>, kind: ReadKind, now: Instant) {
        self.send_pending(
            Pending {
                app,
                purpose: Purpose::Read { users, kind },
                issued: 0,
                resent: false,
            },
            now,
        );
    }

    /// Sends the user's next step (the caller checked room), or skips steps that turn out
    /// to need no request.
    fn try_send_step(&mut self, ix: UserIx, now: Instant) {
        loop {
            let u = &self.users[ix as usize];
            if u.lane.is_some() || !matches!(u.entra, Entra::Known(_)) || u.not_before.is_some() {
                return;
            }
            let Some(front) = u.steps.front().cloned() else {
                return;
            };
            match self.resolve(ix, &front.step, now) {
                Resolution::Wait => return,
                Resolution::Skip => {
                    self.users[ix as usize].steps.pop_front();
                    if front.op.is_some() {
                        // Never happens: an operation's first step is always a write.
                        self.release_hold(ix);
                    }
                    continue;
                }
                Resolution::Send(sent) => {
                    self.users[ix as usize].steps.pop_front();
                    if front.op.is_some() {
                        self.release_hold(ix);
                    }
                    let app = self.users[ix as usize].app;
                    let owner = self.users[ix as usize].steps_op;
                    self.send_pending(
                        Pending {
                            app,
                            purpose: Purpose::Step {
                                user: ix,
                                sent,
                                op: front.op,
                                owner,
                            },
                            issued: 0,
                            resent: false,
                        },
                        now,
                    );
                    return;
                }
            }
        }
    }

    fn resolve(&mut self, ix: UserIx, step: &Step, now: Instant) -> Resolution {
        let u = &mut self.users[ix as usize];
        match step {
            Step::Set(Target::Session(pair)) => Resolution::Send(Sent::Session(*pair)),
            Step::Set(Target::Preferred(pair)) => Resolution::Send(Sent::Preferred(*pair)),
            Step::Set(Target::Clear) => Resolution::Send(Sent::ClearSession),
            Step::Set(Target::Nothing) => Resolution::Skip,
            Step::Reassert => match u.applied {
                Some(target @ (Target::Session(_) | Target::Preferred(_))) => {
                    Resolution::Send(Sent::Refresh(target))
                }
                _ if u.touched => Resolution::Send(Sent::ClearSession),
                _ => Resolution::Skip,
            },
            Step::Refresh if u.stale => Resolution::Skip,
            Step::Refresh => match u.applied {
                Some(target @ (Target::Session(_) | Target::Preferred(_))) => {
                    Resolution::Send(Sent::Refresh(target))
                }
                _ => Resolution::Skip,
            },
            Step::ClearPreferred => {
                if u.preferred == Tri::No {
                    Resolution::Skip
                } else {
                    Resolution::Send(Sent::ClearPreferred)
                }
            }
            Step::Message(Some(text)) => match &u.known {
                Known::Is(Some(k)) if k == text => Resolution::Skip,
                Known::Unknown => {
                    u.known = Known::Learning;
                    let app = u.app;
                    let a = &mut self.apps[app];
                    a.learn.push(ix);
                    if a.learn.len() >= BATCH_LIMIT {
                        a.learn_due = Some(now);
                    } else if a.learn_due.is_none() {
                        // Gather users for one batched read while the budget is under
                        // pressure (a resync); with room to spare, read at once, so that
                        // a first status message is not held back for nothing.
                        let idle = a.bucket.available(now) >= a.bucket.burst() / 2;
                        let gather = if idle { SUBSCRIBE_GATHER } else { LEARN_GATHER };
                        a.learn_due = Some(now + gather);
                    }
                    Resolution::Wait
                }
                Known::Learning => Resolution::Wait,
                _ => Resolution::Send(Sent::Message(text.clone())),
            },
            Step::Message(None) => match (&u.ours, &u.known) {
                (None, _) => Resolution::Skip,
                (Some(_), Known::Is(None)) => Resolution::Skip,
                (Some(o), Known::Is(Some(k))) if o != k => Resolution::Skip,
                _ => Resolution::Send(Sent::Message(Arc::from(""))),
            },
        }
    }

    // --- answers -------------------------------------------------------------------------

    fn on_response(&mut self, pending: Pending, response: HttpResponse, now: Instant) {
        let app = pending.app;
        if matches!(pending.purpose, Purpose::Token) {
            self.on_token(app, response, now);
            return;
        }
        self.apps[app].in_flight = self.apps[app].in_flight.saturating_sub(1);
        if let Purpose::Step { user, .. } = &pending.purpose {
            self.users[*user as usize].lane = None;
        }
        let status = response.status;
        if status == 401 {
            self.on_unauthorized(pending, &response, now);
            return;
        }
        if (200..300).contains(&status) {
            if pending.issued == self.apps[app].token_gen {
                self.apps[app].token_proven = true;
                self.apps[app].attempt = 0;
            }
            match &pending.purpose {
                Purpose::Read { .. } => {
                    let a = &mut self.apps[app];
                    a.reads_paused.attempt = 0;
                }
                Purpose::Step { .. } => self.apps[app].writes_paused.attempt = 0,
                _ => {}
            }
        }
        if status == 429 {
            self.stats.throttled += 1;
        }
        match pending.purpose {
            Purpose::Token => {}
            Purpose::Lookup { user } => self.on_lookup(user, status, &response, now),
            Purpose::Step {
                user,
                sent,
                op,
                owner,
            } => self.on_step(user, sent, op, owner, &response, now),
            Purpose::Read { users, kind } => self.on_read(app, users, kind, &response, now),
        }
    }

    fn on_failure(&mut self, pending: Pending, failure: Failure, now: Instant) {
        let app = pending.app;
        if matches!(pending.purpose, Purpose::Token) {
            self.apps[app].fetching = None;
            self.token_trouble(app, format!("token request: {failure}"), None, now);
            return;
        }
        self.apps[app].in_flight = self.apps[app].in_flight.saturating_sub(1);
        let error = match &failure {
            Failure::Timeout => TransportError::Timeout,
            other => TransportError::Other(Box::new(CoreError(other.to_string()))),
        };
        match pending.purpose {
            Purpose::Token => {}
            Purpose::Lookup { user } => self.lookup_transient(user, error, now),
            Purpose::Step {
                user,
                sent,
                op,
                owner,
            } => {
                self.users[user as usize].lane = None;
                self.step_transient(user, sent, op, owner, error, now);
            }
            Purpose::Read { users, kind } => {
                self.events.push_back(Event::Warning {
                    message: format!("getPresencesByUserId ({} users): {failure}", users.len()),
                });
                self.read_failed(app, users, kind, None, true, now);
            }
        }
    }

    fn on_token(&mut self, app: usize, response: HttpResponse, now: Instant) {
        self.apps[app].fetching = None;
        let status = response.status;
        if (200..300).contains(&status) {
            match wire::parse_token(&response.body) {
                Ok(answer) => {
                    let lifetime = Duration::from_secs(answer.expires_in).min(MAX_TOKEN_LIFETIME);
                    let early = lifetime
                        .mul_f64(0.8)
                        .min(lifetime.saturating_sub(Duration::from_secs(300)))
                        .max(lifetime / 2)
                        .max(Duration::from_secs(1));
                    let had = self.apps[app].token.is_some();
                    let a = &mut self.apps[app];
                    a.token = Some(Token {
                        value: answer.access_token,
                        refresh_at: now + early,
                        expires_at: now + lifetime.max(Duration::from_secs(1)),
                    });
                    a.token_gen += 1;
                    a.token_proven = false;
                    a.retry_at = None;
                    a.trouble = None;
                    if a.refused.take().is_some() {
                        let client_id = a.client_id.clone();
                        self.events
                            .push_back(Event::CredentialRecovered { client_id });
                    }
                    if !had {
                        if std::mem::take(&mut self.apps[app].renewing) && self.connected {
                            // A renewal after a 401: nothing was lost, the waiting
                            // requests go out with the new token.
                            let a = &mut self.apps[app];
                            let parked = std::mem::take(&mut a.parked);
                            a.resend.extend(parked);
                        } else {
                            self.regained(app, now);
                        }
                    }
                }
                Err(e) => self.token_trouble(app, e.to_string(), None, now),
            }
            return;
        }
        if (400..500).contains(&status) && status != 408 && status != 429 {
            let err =
                wire::parse_entra_error(&response.body).unwrap_or_else(|_| wire::EntraError {
                    error: format!("HTTP {status}"),
                    ..wire::EntraError::default()
                });
            let summary = err.summary();
            let a = &mut self.apps[app];
            a.attempt += 1;
            let delay = self
                .config
                .token_backoff
                .delay(a.attempt, self.rng.next_f64());
            let a = &mut self.apps[app];
            a.retry_at = Some(now + delay);
            a.trouble = None;
            if a.refused.as_deref() != Some(summary.as_str()) {
                a.refused = Some(summary.clone());
                let client_id = a.client_id.clone();
                self.events.push_back(Event::CredentialRefused {
                    client_id,
                    description: summary,
                    retry_in: delay,
                });
            }
            // The description is reported once (CredentialRefused) and kept in the status;
            // the disconnection does not repeat it.
            self.lose_token(app, "Entra refused the app's credential".to_owned(), now);
            return;
        }
        let detail = wire::parse_entra_error(&response.body)
            .map(|e| e.summary())
            .unwrap_or_else(|_| "no description".to_owned());
        self.token_trouble(
            app,
            format!("token request: HTTP {status}: {detail}"),
            response.retry_after,
            now,
        );
    }

    fn token_trouble(
        &mut self,
        app: usize,
        message: String,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let a = &mut self.apps[app];
        a.attempt += 1;
        let delay = retry_after.unwrap_or_else(|| {
            self.config
                .token_backoff
                .delay(a.attempt, self.rng.next_f64())
        });
        let a = &mut self.apps[app];
        a.retry_at = Some(now + delay);
        if a.trouble.as_deref() != Some(message.as_str()) && a.refused.is_none() {
            a.trouble = Some(message.clone());
            let client_id = a.client_id.clone();
            self.events.push_back(Event::TokenTrouble {
                client_id,
                message: message.clone(),
                retry_in: delay,
            });
        }
        if self.apps[app].token.is_none() {
            self.lose_token(app, message, now);
        }
    }

    /// The app has no usable token: report `Disconnected` (once), fail publications that
    /// were not sent, and fail those parked for a token.
    fn lose_token(&mut self, app: usize, reason: String, _now: Instant) {
        self.apps[app].token = None;
        self.apps[app].renewing = false;
        for pending in std::mem::take(&mut self.apps[app].parked) {
            self.fail_unsent(pending);
        }
        for pending in std::mem::take(&mut self.apps[app].resend) {
            self.fail_unsent(pending);
        }
        if !self.connected {
            return;
        }
        self.connected = false;
        self.events
            .push_back(Event::Transport(TransportEvent::Disconnected {
                platform: self.config.platform.clone(),
                reason,
            }));
        for a in &mut self.apps {
            a.granted = 0;
        }
        for ix in 0..self.users.len() as UserIx {
            let op = self.users[ix as usize].steps.front().and_then(|q| q.op);
            if let Some(op) = op {
                self.release_hold(ix);
                self.drop_steps_of(ix, op);
                self.settle(op, ix, Err(TransportError::NotConnected));
            }
        }
    }

    /// A request parked for a token will not be sent: settle its publication.
    fn fail_unsent(&mut self, pending: Pending) {
        match pending.purpose {
            Purpose::Step {
                user, op: Some(op), ..
            } => {
                self.users[user as usize].lane = None;
                self.drop_steps_of(user, op);
                self.settle(op, user, Err(TransportError::NotConnected));
                self.enqueue(user);
            }
            Purpose::Step {
                user,
                sent,
                op: None,
                owner,
            } => {
                self.users[user as usize].lane = None;
                self.requeue_internal(user, sent, owner);
                self.enqueue(user);
            }
            Purpose::Lookup { user } => {
                self.users[user as usize].entra = Entra::Unresolved;
                self.lookup_waiters_fail(user, TransportError::NotConnected);
                if self.users[user as usize].subscribed {
                    // Looked up again once a token is back.
                    self.want_lookup(user);
                }
            }
            Purpose::Read { users, kind } => {
                let now = self.last_now;
                self.read_failed(pending.app, users, kind, None, false, now);
            }
            Purpose::Token => {}
        }
    }

    /// The app got a token after having none.
    fn regained(&mut self, app: usize, now: Instant) {
        // Every subscribed user of the app is polled anew and reported as Subscribed again.
        let subs: Vec<UserIx> = self.apps[app].subscribed.iter().copied().collect();
        for ix in subs {
            let u = &mut self.users[ix as usize];
            u.awaiting = true;
            u.last_reported = None;
            match u.entra {
                Entra::Known(_) => self.add_new_sub(ix, now),
                Entra::Unresolved => self.want_lookup(ix),
                Entra::Resolving | Entra::NotFound => {}
            }
        }
        if !self.apps[app].new_subs.is_empty() {
            self.apps[app].new_subs_due = Some(now);
        }
        for p in std::mem::take(&mut self.apps[app].parked) {
            self.apps[app].resend.push_back(p);
        }
        if !self.connected && self.apps.iter().all(|a| a.token.is_some()) {
            self.connected = true;
            // The initial credit is granted before internal work takes the bucket.
            let cap = self.config.credit_cap();
            let mut credit = 0;
            for a in 0..self.apps.len() {
                while self.apps[a].granted + self.apps[a].held < cap && self.room(a, now) {
                    self.apps[a].granted += 1;
                    credit += 1;
                }
            }
            self.stats.credit_granted += u64::from(credit);
            self.events
                .push_back(Event::Transport(TransportEvent::Connected {
                    platform: self.config.platform.clone(),
                    peer: self.config.graph_url.clone(),
                    credit,
                }));
        }
    }

    fn on_unauthorized(&mut self, pending: Pending, response: &HttpResponse, now: Instant) {
        let app = pending.app;
        let current = pending.issued == self.apps[app].token_gen && self.apps[app].token.is_some();
        if current {
            if self.apps[app].token_proven {
                // A token that worked is refused (revoked, or expired early): fetch a new
                // one at once and stay connected, so a routine renewal costs no resync.
                // Only if no new token can be had is the app disconnected.
                let a = &mut self.apps[app];
                a.token = None;
                a.renewing = true;
                a.retry_at = None;
            } else {
                // A token refused before any request with it succeeded: the first time a
                // new one is fetched at once; if that happens again, with back-off, so
                // tokens are never fetched in a loop.
                let a = &mut self.apps[app];
                a.attempt += 1;
                if a.attempt >= 2 {
                    let delay = self
                        .config
                        .token_backoff
                        .delay(a.attempt - 1, self.rng.next_f64());
                    self.apps[app].retry_at = Some(now + delay);
                }
                self.lose_token(app, "Graph refused the token (401)".to_owned(), now);
            }
        }
        if pending.resent {
            let reason = graph_reason(response);
            self.fail_request(pending, 401, reason, None, now);
            return;
        }
        let pending = Pending {
            resent: true,
            ..pending
        };
        if let Purpose::Step { user, .. } = &pending.purpose {
            // The user's lane stays busy until the request is sent again.
            self.users[*user as usize].lane = Some(RequestId(0));
        }
        if self.apps[app].token.is_some() {
            self.apps[app].resend.push_back(pending);
        } else {
            self.apps[app].parked.push(pending);
        }
    }

    /// A request failed for good (or transiently, per `status`): settle or reschedule.
    fn fail_request(
        &mut self,
        pending: Pending,
        status: u16,
        reason: String,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let error = TransportError::Rejected {
            status,
            reason,
            retry_after,
        };
        match pending.purpose {
            Purpose::Token => {}
            Purpose::Lookup { user } => self.lookup_transient(user, error, now),
            Purpose::Step { user, sent, op, .. } => {
                self.users[user as usize].lane = None;
                match op {
                    Some(op) => {
                        self.drop_steps_of(user, op);
                        self.settle(op, user, Err(error));
                        self.enqueue(user);
                    }
                    None => {
                        self.events.push_back(Event::Warning {
                            message: format!("{}: {error}", self.users[user as usize].id),
                        });
                        let _ = sent;
                        self.enqueue(user);
                    }
                }
            }
            Purpose::Read { users, kind } => {
                self.read_failed(pending.app, users, kind, None, false, now);
            }
        }
    }

    fn on_lookup(&mut self, ix: UserIx, status: u16, response: &HttpResponse, now: Instant) {
        match status {
            200..=299 => match wire::parse_user(&response.body)
                .map_err(|e| e.to_string())
                .and_then(|id| EntraId::new(&id).map_err(|e| e.to_string()))
            {
                Ok(id) => {
                    let u = &mut self.users[ix as usize];
                    u.entra = Entra::Known(id.clone());
                    u.attempt = 0;
                    self.by_entra.entry(id).or_default().push(ix);
                    if self.users[ix as usize].problem.take().is_some() {
                        let user = self.users[ix as usize].id.clone();
                        self.events
                            .push_back(Event::Transport(TransportEvent::UserProblem {
                                user,
                                problem: None,
                            }));
                    }
                    if self.users[ix as usize].subscribed {
                        self.add_new_sub(ix, now);
                    }
                    self.enqueue(ix);
                }
                Err(message) => {
                    self.events.push_back(Event::Warning {
                        message: format!("{}: {message}", self.users[ix as usize].id),
                    });
                    let error = TransportError::Other(Box::new(CoreError(message)));
                    self.lookup_transient(ix, error, now);
                }
            },
            404 | 400 | 403 => {
                let reason = if status == 404 {
                    format!(
                        "the UPN does not resolve in the tenant ({})",
                        graph_reason(response)
                    )
                } else {
                    format!(
                        "the user lookup was refused: {status} {}",
                        graph_reason(response)
                    )
                };
                self.users[ix as usize].entra = Entra::NotFound;
                self.report_problem(ix, reason.clone());
                let user = self.users[ix as usize].id.clone();
                self.lookup_waiters_fail(ix, TransportError::Unsupported { user, reason });
                self.timers
                    .set(TimerKey::Lookup(ix), now + self.config.user_retry);
            }
            _ => {
                let error = TransportError::Rejected {
                    status,
                    reason: graph_reason(response),
                    retry_after: response.retry_after,
                };
                self.lookup_transient(ix, error, now);
            }
        }
    }

    fn lookup_transient(&mut self, ix: UserIx, error: TransportError, now: Instant) {
        let u = &mut self.users[ix as usize];
        if u.entra == Entra::Resolving {
            u.entra = Entra::Unresolved;
        }
        u.attempt += 1;
        let attempt = u.attempt;
        let delay = error.retry_after().unwrap_or_else(|| {
            self.config
                .retry_backoff
                .delay(attempt, self.rng.next_f64())
        });
        self.timers.set(TimerKey::Lookup(ix), now + delay);
        self.lookup_waiters_fail(ix, error);
    }

    fn lookup_waiters_fail(&mut self, ix: UserIx, error: TransportError) {
        let op = self.users[ix as usize].steps.front().and_then(|q| q.op);
        if let Some(op) = op {
            self.release_hold(ix);
            self.drop_steps_of(ix, op);
            self.settle(op, ix, Err(error));
        }
        // Follow-ups of an earlier state cannot be sent without the id either.
        self.users[ix as usize].steps.clear();
    }

    fn on_step(
        &mut self,
        ix: UserIx,
        sent: Sent,
        op: Option<PublishId>,
        owner: Option<PublishId>,
        response: &HttpResponse,
        now: Instant,
    ) {
        let status = response.status;
        let clear = matches!(sent, Sent::ClearSession | Sent::ClearPreferred);
        if (200..300).contains(&status) || (clear && status == 404) {
            self.step_done(ix, &sent, now);
            if let Some(op) = op {
                let u = &mut self.users[ix as usize];
                if let Some((id, message)) = &u.op_message
                    && *id == op
                {
                    u.applied_message = Some(message.clone());
                }
                self.settle(op, ix, Ok(()));
            }
            self.enqueue(ix);
            return;
        }
        let reason = graph_reason(response);
        if status == 429 {
            let app = self.users[ix as usize].app;
            self.pause(app, true, response.retry_after, now);
            let retry_after = response
                .retry_after
                .or_else(|| self.apps[app].writes_paused.until.map(|t| t - now));
            match op {
                Some(op) => {
                    self.drop_steps_of(ix, op);
                    self.settle(
                        op,
                        ix,
                        Err(TransportError::Rejected {
                            status,
                            reason,
                            retry_after,
                        }),
                    );
                    self.enqueue(ix);
                }
                None => {
                    self.requeue_internal(ix, sent, owner);
                    self.enqueue(ix);
                }
            }
            return;
        }
        if status >= 500 || status == 408 {
            let error = TransportError::Rejected {
                status,
                reason,
                retry_after: response.retry_after,
            };
            self.step_transient(ix, sent, op, owner, error, now);
            return;
        }
        // Any other refusal is final for this step.
        let error = TransportError::Rejected {
            status,
            reason,
            retry_after: None,
        };
        match op {
            Some(op) => {
                self.drop_steps_of(ix, op);
                self.settle(op, ix, Err(error));
            }
            None => {
                if matches!(sent, Sent::Refresh(_)) {
                    self.users[ix as usize].applied = None;
                }
                self.events.push_back(Event::Warning {
                    message: format!(
                        "{}: {}: {error}",
                        self.users[ix as usize].id,
                        sent_name(&sent)
                    ),
                });
            }
        }
        self.enqueue(ix);
    }

    fn step_transient(
        &mut self,
        ix: UserIx,
        sent: Sent,
        op: Option<PublishId>,
        owner: Option<PublishId>,
        error: TransportError,
        now: Instant,
    ) {
        let retry_after = error.retry_after();
        match op {
            Some(op) => {
                // A timeout or a 5xx: the write may have been applied. What Graph shows is
                // not known, so the last accepted state is written again.
                if self.drop_steps_of(ix, op) {
                    self.users[ix as usize].steps.push_front(Queued {
                        step: Step::Reassert,
                        op: None,
                    });
                }
                self.settle(op, ix, Err(error));
                self.enqueue(ix);
            }
            None => {
                if !self.requeue_internal(ix, sent, owner) {
                    self.enqueue(ix);
                    return;
                }
                let u = &mut self.users[ix as usize];
                u.attempt += 1;
                let attempt = u.attempt;
                let delay = retry_after.unwrap_or_else(|| {
                    self.config
                        .retry_backoff
                        .delay(attempt, self.rng.next_f64())
                });
                self.users[ix as usize].not_before = Some(now + delay);
                self.timers.set(TimerKey::StepRetry(ix), now + delay);
            }
        }
    }

    /// Puts an internal step that could not be done back in front of the user's steps,
    /// unless what it stood for was superseded since (a newer publication was handed
    /// over): returns whether it was put back.
    fn requeue_internal(&mut self, ix: UserIx, sent: Sent, owner: Option<PublishId>) -> bool {
        let u = &mut self.users[ix as usize];
        let step = match sent {
            Sent::Refresh(_) if u.stale => return false,
            Sent::Refresh(_) => Step::Refresh,
            _ if u.steps_op != owner => return false,
            Sent::ClearPreferred => Step::ClearPreferred,
            Sent::Message(text) => Step::Message((!text.is_empty()).then_some(text)),
            Sent::Session(p) => Step::Set(Target::Session(p)),
            Sent::Preferred(p) => Step::Set(Target::Preferred(p)),
            Sent::ClearSession => Step::Set(Target::Clear),
        };
        if u.steps.front().is_some_and(|q| q.op.is_some()) {
            // A newer publication waits: it decides what comes next.
            return false;
        }
        u.steps.push_front(Queued { step, op: None });
        true
    }

    fn step_done(&mut self, ix: UserIx, sent: &Sent, now: Instant) {
        let u = &mut self.users[ix as usize];
        u.attempt = 0;
        match sent {
            Sent::Session(pair) | Sent::Refresh(Target::Session(pair)) => {
                if matches!(sent, Sent::Session(_)) {
                    u.stale = false;
                }
                u.applied = Some(Target::Session(*pair));
                self.schedule_refresh(ix, Target::Session(*pair), now);
            }
            Sent::Preferred(pair) | Sent::Refresh(Target::Preferred(pair)) => {
                if matches!(sent, Sent::Preferred(_)) {
                    u.stale = false;
                }
                u.applied = Some(Target::Preferred(*pair));
                u.preferred = Tri::Yes;
                self.schedule_refresh(ix, Target::Preferred(*pair), now);
            }
            Sent::Refresh(_) => {}
            Sent::ClearSession => {
                u.stale = false;
                u.applied = None;
                self.timers.cancel(&TimerKey::Refresh(ix));
            }
            Sent::ClearPreferred => {
                u.preferred = Tri::No;
                if matches!(u.applied, Some(Target::Preferred(_))) {
                    u.applied = None;
                }
            }
            Sent::Message(text) => {
                if text.is_empty() {
                    u.known = Known::Is(None);
                    u.ours = None;
                } else {
                    u.known = Known::Is(Some(text.clone()));
                    u.ours = Some(text.clone());
                }
            }
        }
    }

    fn schedule_refresh(&mut self, ix: UserIx, target: Target, now: Instant) {
        let base = self.config.session_duration.mul_f64(0.8);
        let base = match target {
            Target::Session(p) if p.availability == "Available" && p.activity == "Available" => {
                base.min(AVAILABLE_REFRESH)
            }
            _ => base,
        };
        // Up to 10 % earlier, so refreshes of users set together spread out.
        let delay = base.mul_f64(1.0 - 0.1 * self.rng.next_f64());
        self.timers.set(TimerKey::Refresh(ix), now + delay);
    }

    fn pause(&mut self, app: usize, writes: bool, retry_after: Option<Duration>, now: Instant) {
        let draw = self.rng.next_f64();
        let backoff = self.config.retry_backoff;
        let a = &mut self.apps[app];
        let p = if writes {
            &mut a.writes_paused
        } else {
            &mut a.reads_paused
        };
        p.attempt += 1;
        let delay = retry_after.unwrap_or_else(|| backoff.delay(p.attempt, draw));
        let until = now + delay;
        p.until = Some(p.until.map_or(until, |t| t.max(until)));
    }

    fn on_read(
        &mut self,
        app: usize,
        users: Vec<UserIx>,
        kind: ReadKind,
        response: &HttpResponse,
        now: Instant,
    ) {
        let status = response.status;
        if !(200..300).contains(&status) {
            if status == 429 {
                self.pause(app, false, response.retry_after, now);
                self.read_failed(app, users, kind, response.retry_after, true, now);
            } else {
                self.events.push_back(Event::Warning {
                    message: format!(
                        "getPresencesByUserId ({} users): {status} {}",
                        users.len(),
                        graph_reason(response)
                    ),
                });
                self.read_failed(app, users, kind, response.retry_after, status >= 500, now);
            }
            return;
        }
        let items = match wire::parse_presences(&response.body) {
            Ok(items) => items,
            Err(e) => {
                self.events.push_back(Event::Warning {
                    message: e.to_string(),
                });
                self.read_failed(app, users, kind, None, true, now);
                return;
            }
        };
        if kind == ReadKind::Poll {
            self.poll_done(app);
        }
        let fresh: Vec<UserId> = users
            .iter()
            .filter_map(|&ix| {
                let u = &mut self.users[ix as usize];
                (u.subscribed && u.awaiting).then(|| {
                    u.awaiting = false;
                    u.id.clone()
                })
            })
            .collect();
        if !fresh.is_empty() {
            self.events
                .push_back(Event::Transport(TransportEvent::Subscribed {
                    users: fresh,
                }));
        }
        // Only the users this request asked for: an answer cannot speak for anyone else
        // (a stray id would set another user's sequence number or status message).
        let asked: HashSet<UserIx> = users.iter().copied().collect();
        for item in items {
            self.on_item(item, &asked);
        }
        if kind == ReadKind::Learn {
            for ix in users {
                let u = &mut self.users[ix as usize];
                if u.known == Known::Learning {
                    // Not in the answer: nothing is known to show.
                    u.known = Known::Is(None);
                }
                self.enqueue(ix);
            }
        }
    }

    fn on_item(&mut self, item: wire::PresenceItem, asked: &HashSet<UserIx>) {
        let Ok(id) = EntraId::new(&item.id) else {
            return;
        };
        let Some(list) = self.by_entra.get(&id) else {
            return;
        };
        for &ix in list.iter().filter(|ix| asked.contains(ix)) {
            let u = &mut self.users[ix as usize];
            if let (Some(seq), Some(last)) = (&item.sequence_number, &u.last_seq)
                && seq < last
            {
                continue;
            }
            if let Some(seq) = &item.sequence_number {
                u.last_seq = Some(seq.clone());
            }
            u.known = Known::Is(item.status_message.as_deref().map(Arc::from));
            if !u.subscribed {
                continue;
            }
            let Some(availability) = pull(&item.availability) else {
                continue;
            };
            let now_shown = (availability, item.activity.clone());
            if u.last_reported.as_ref() == Some(&now_shown) {
                continue;
            }
            u.last_reported = Some(now_shown);
            let activity = (!item.activity.is_empty()).then(|| item.activity.clone());
            self.events
                .push_back(Event::Transport(TransportEvent::Presence(
                    PresenceUpdate::new(u.id.clone(), u64::from(availability), activity),
                )));
        }
    }

    fn read_failed(
        &mut self,
        app: usize,
        users: Vec<UserIx>,
        kind: ReadKind,
        retry_after: Option<Duration>,
        back_off: bool,
        now: Instant,
    ) {
        if kind == ReadKind::Learn {
            for ix in users {
                let u = &mut self.users[ix as usize];
                if u.known == Known::Learning {
                    u.known = Known::Failed;
                }
                self.enqueue(ix);
            }
        } else if kind == ReadKind::Poll {
            self.poll_done(app);
        }
        if back_off && !self.apps[app].reads_paused.active(now) {
            self.pause(app, false, retry_after, now);
        }
    }
}

fn sent_name(sent: &Sent) -> &'static str {
    match sent {
        Sent::Session(_) | Sent::Refresh(Target::Session(_)) => "setPresence",
        Sent::Preferred(_) | Sent::Refresh(_) => "setUserPreferredPresence",
        Sent::ClearSession => "clearPresence",
        Sent::ClearPreferred => "clearUserPreferredPresence",
        Sent::Message(_) => "setStatusMessage",
    }
}

fn graph_reason(response: &HttpResponse) -> String {
    match wire::parse_graph_error(&response.body) {
        Ok(e) => e.to_string(),
        Err(_) => format!("HTTP {} without a Graph error body", response.status),
    }
}

/// A failure of the core as an error value.
#[derive(Debug)]
struct CoreError(String);

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CoreError {}

#[cfg(test)]
mod tests;
