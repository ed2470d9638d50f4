//! The sans-IO core: [`GraphWorld`].

mod graph;
mod token;
mod user;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::{header_safe, percent_decode};
use crate::rng::{SplitMix64, is_guid};
use crate::{
    AppRegistration, Availability, GraphSimError, HttpRequest, HttpResponse, Permission,
    RequestKind, Shown, SimConfig, SimEvent, SimStats, WriteRecord,
};
use user::{ClientSession, Timeouts, UserState};

/// The session name of a user's own Teams client in [`Shown::sessions`].
pub const TEAMS_CLIENT: &str = "teams-client";

/// 2025-01-01T00:00:00Z: the core's wall clock when the configuration gives none.
const DEFAULT_WALL_CLOCK: Duration = Duration::from_secs(1_735_689_600);

#[derive(Clone, Debug)]
struct AppState {
    registration: AppRegistration,
    /// When the presence requests of the budget window were accepted, oldest first.
    window: VecDeque<Instant>,
}

#[derive(Clone, Debug)]
struct TokenState {
    app: usize,
    expires_at: Instant,
    revoked: bool,
}

#[derive(Clone, Copy, Debug)]
struct FailNext {
    remaining: u32,
    status: u16,
    retry_after: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    fail_next: Option<FailNext>,
    fail_until: Option<(Instant, u16)>,
    throttle_until: Option<(Instant, u32)>,
}

/// The simulated tenant and Graph service, **sans IO**: it answers
/// [`HttpRequest`]s with [`HttpResponse`]s and reads no clock (every call takes `now`)
/// and no entropy (tokens and request ids come from a generator seeded by
/// [`SimConfig::seed`]). Session expiry and the Available decay are evaluated when a
/// user is read, so it needs no timers.
///
/// See the [crate documentation](crate) for the rules it follows.
#[derive(Debug)]
pub struct GraphWorld {
    config: SimConfig,
    start: Instant,
    wall_start: SystemTime,
    rng: SplitMix64,
    apps: Vec<AppState>,
    users: Vec<UserState>,
    /// Lower-cased object id → index.
    by_id: BTreeMap<String, usize>,
    /// Lower-cased UPN → index.
    by_upn: BTreeMap<String, usize>,
    tokens: BTreeMap<String, TokenState>,
    faults: Faults,
    writes: VecDeque<WriteRecord>,
    events: VecDeque<SimEvent>,
    stats: SimStats,
    /// Orders session writes (ties in the aggregation go to the latest).
    order: u64,
}

impl GraphWorld {
    /// A world as `config` describes it, started at `now`.
    ///
    /// # Errors
    /// [`GraphSimError::InvalidConfig`] for an empty tenant, a budget of no requests or
    /// no window, a zero token lifetime, or two apps or users with the same id or UPN.
    pub fn new(mut config: SimConfig, now: Instant) -> Result<GraphWorld, GraphSimError> {
        let invalid = |reason: &str| Err(GraphSimError::InvalidConfig(reason.to_owned()));
        if config.tenant.trim().is_empty() || config.tenant_id.trim().is_empty() {
            return invalid("the tenant and the tenant id must not be empty");
        }
        if config.budget.requests == 0 || config.budget.window.is_zero() {
            return invalid("the budget needs at least one request and a non-zero window");
        }
        if config.token_lifetime.as_secs() == 0 {
            return invalid("the token lifetime must be at least one second");
        }
        let mut client_ids = BTreeSet::new();
        for app in &config.apps {
            if app.client_id.is_empty() || !client_ids.insert(app.client_id.to_lowercase()) {
                return Err(GraphSimError::InvalidConfig(format!(
                    "app client id `{}` is empty or given twice",
                    app.client_id
                )));
            }
        }
        let users = std::mem::take(&mut config.users);
        let apps = config
            .apps
            .iter()
            .map(|registration| AppState {
                registration: registration.clone(),
                window: VecDeque::new(),
            })
            .collect();
        let mut world = GraphWorld {
            wall_start: config
                .wall_clock_start
                .unwrap_or(UNIX_EPOCH + DEFAULT_WALL_CLOCK),
            rng: SplitMix64::new(config.seed),
            config,
            start: now,
            apps,
            users: Vec::new(),
            by_id: BTreeMap::new(),
            by_upn: BTreeMap::new(),
            tokens: BTreeMap::new(),
            faults: Faults::default(),
            writes: VecDeque::new(),
            events: VecDeque::new(),
            stats: SimStats::default(),
            order: 0,
        };
        for user in users {
            if user.upn.is_empty()
                || user.id.is_empty()
                || world.by_upn.contains_key(&user.upn.to_lowercase())
                || world.by_id.contains_key(&user.id.to_lowercase())
            {
                return Err(GraphSimError::InvalidConfig(format!(
                    "user `{}` ({}) is empty or given twice",
                    user.upn, user.id
                )));
            }
            world.insert_user(user.id, user.upn, now);
        }
        Ok(world)
    }

    fn insert_user(&mut self, id: String, upn: String, now: Instant) -> usize {
        let index = self.users.len();
        self.by_id.insert(id.to_lowercase(), index);
        self.by_upn.insert(upn.to_lowercase(), index);
        let mut user = UserState::new(id, upn);
        user.refresh(now, self.timeouts());
        self.users.push(user);
        index
    }

    /// The configuration it was made with (its `users` are empty: see
    /// [`user_count`](Self::user_count), [`user_id`](Self::user_id)).
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            available: self.config.available_timeout,
            away: self.config.away_timeout,
        }
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.wall_start + now.saturating_duration_since(self.start)
    }

    /// Answers one HTTP request: the token endpoint
    /// (`POST /{tenant}/oauth2/v2.0/token`) or Graph (`/v1.0/...`). Anything else is a
    /// 404. Never panics, whatever the request holds.
    pub fn handle(&mut self, request: &HttpRequest, now: Instant) -> HttpResponse {
        let (path, query) = request
            .path_and_query
            .split_once('?')
            .unwrap_or((request.path_and_query.as_str(), ""));
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s.as_bytes(), false))
            .collect();
        let is = |i: usize, literal: &str| {
            segments
                .get(i)
                .is_some_and(|s| s.eq_ignore_ascii_case(literal))
        };
        if segments.len() == 4 && is(1, "oauth2") && is(2, "v2.0") && is(3, "token") {
            let tenant = segments.first().cloned().unwrap_or_default();
            return self.token(&tenant, request, now);
        }
        if is(0, "v1.0") {
            return self.graph(request, segments.get(1..).unwrap_or_default(), query, now);
        }
        let ctx = self.context(request, now);
        self.stats.count(RequestKind::Other);
        graph::GraphError::new(404, "NotFound", "The resource could not be found.").response(&ctx)
    }

    /// The request ids of one Graph answer.
    fn context(&mut self, request: &HttpRequest, now: Instant) -> graph::Ctx {
        let request_id = self.rng.guid();
        let client_request_id = request
            .header("client-request-id")
            .map(header_safe)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| request_id.clone());
        graph::Ctx {
            request_id,
            client_request_id,
            date: crate::time::rfc3339(self.wall(now)),
        }
    }

    fn emit(&mut self, event: SimEvent) {
        if self.config.max_events == 0 {
            return;
        }
        while self.events.len() >= self.config.max_events {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn record(&mut self, record: WriteRecord) {
        if self.config.max_write_records == 0 {
            return;
        }
        while self.writes.len() >= self.config.max_write_records {
            self.writes.pop_front();
        }
        self.writes.push_back(record);
    }

    /// The next event, oldest first (at most [`SimConfig::max_events`] wait).
    pub fn poll_event(&mut self) -> Option<SimEvent> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------------ users

    fn user_index(&self, user: &str) -> Option<usize> {
        let key = user.to_lowercase();
        self.by_id
            .get(&key)
            .or_else(|| self.by_upn.get(&key))
            .copied()
    }

    fn user_index_by_id(&self, id: &str) -> Option<usize> {
        self.by_id.get(&id.to_lowercase()).copied()
    }

    /// The object id of the user with this UPN (case-insensitive) or id.
    pub fn user_id(&self, user: &str) -> Option<&str> {
        let index = self.user_index(user)?;
        self.users.get(index).map(|u| u.id.as_str())
    }

    /// How many users the tenant has.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Every user as (object id, UPN), in the order they were added.
    pub fn users(&self) -> impl Iterator<Item = (&str, &str)> {
        self.users.iter().map(|u| (u.id.as_str(), u.upn.as_str()))
    }

    /// Adds a user (its id derived from the UPN, see [`SimUser::new`](crate::SimUser::new))
    /// and returns its object id; a UPN already known returns the existing id.
    ///
    /// # Errors
    /// [`GraphSimError::UnknownUser`] for an empty UPN or one without `@`.
    pub fn add_user(&mut self, upn: &str, now: Instant) -> Result<String, GraphSimError> {
        let upn = upn.trim();
        if upn.is_empty() || !upn.contains('@') || upn.len() > 256 {
            return Err(GraphSimError::UnknownUser(upn.chars().take(64).collect()));
        }
        if let Some(id) = self.by_upn.get(&upn.to_lowercase()).copied() {
            return Ok(self.users.get(id).map(|u| u.id.clone()).unwrap_or_default());
        }
        let user = crate::SimUser::new(upn);
        let mut id = user.id;
        while self.by_id.contains_key(&id) {
            id = self.rng.guid(); // a collision of derived ids: practically never
        }
        self.insert_user(id.clone(), user.upn, now);
        Ok(id)
    }

    /// What Teams shows of the user (UPN or id) now.
    pub fn shows(&mut self, user: &str, now: Instant) -> Option<Shown> {
        let index = self.user_index(user)?;
        let timeouts = self.timeouts();
        let user = self.users.get_mut(index)?;
        user.refresh(now, timeouts);
        Some(user.shown(now, timeouts))
    }

    /// The user sets a status message in their own Teams client (empty: clears it), or a
    /// previous run of the bridge left one: what a restart finds.
    ///
    /// # Errors
    /// [`GraphSimError::UnknownUser`].
    pub fn set_user_status_message(
        &mut self,
        user: &str,
        message: &str,
        now: Instant,
    ) -> Result<(), GraphSimError> {
        let content = message.to_owned();
        self.change_user(user, now, |u| {
            u.status = (!content.is_empty()).then_some(user::StatusMessage {
                content,
                published_at: now,
                expiry: None,
            });
        })?;
        Ok(())
    }

    /// The user (UPN or id) picks a presence in their own Teams client: a session that
    /// never expires and does not decay, named [`TEAMS_CLIENT`], aggregated with the apps'
    /// sessions.
    ///
    /// # Errors
    /// [`GraphSimError::UnknownUser`]; [`GraphSimError::InvalidActivity`] for an activity
    /// that is not a word of letters and digits (at most 64).
    pub fn set_client_presence(
        &mut self,
        user: &str,
        availability: Availability,
        activity: &str,
        now: Instant,
    ) -> Result<(), GraphSimError> {
        if activity.is_empty()
            || activity.len() > 64
            || !activity.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(GraphSimError::InvalidActivity(
                activity.chars().take(64).collect(),
            ));
        }
        self.order += 1;
        let order = self.order;
        let user_id = self.change_user(user, now, |u| {
            u.client = Some(ClientSession {
                availability,
                activity: activity.to_owned(),
                order,
            });
        })?;
        self.emit(SimEvent::ClientPresence {
            user_id,
            presence: Some((availability, activity.to_owned())),
        });
        Ok(())
    }

    /// The user's Teams client session ends (signed out).
    ///
    /// # Errors
    /// [`GraphSimError::UnknownUser`].
    pub fn clear_client_presence(&mut self, user: &str, now: Instant) -> Result<(), GraphSimError> {
        let user_id = self.change_user(user, now, |u| u.client = None)?;
        self.emit(SimEvent::ClientPresence {
            user_id,
            presence: None,
        });
        Ok(())
    }

    /// Refreshes the user, applies `change`, refreshes again; returns the user's id.
    fn change_user(
        &mut self,
        user: &str,
        now: Instant,
        change: impl FnOnce(&mut UserState),
    ) -> Result<String, GraphSimError> {
        let index = self
            .user_index(user)
            .ok_or_else(|| GraphSimError::UnknownUser(user.chars().take(64).collect()))?;
        self.change_index(index, now, change)
            .ok_or_else(|| GraphSimError::UnknownUser(user.chars().take(64).collect()))
    }

    fn change_index(
        &mut self,
        index: usize,
        now: Instant,
        change: impl FnOnce(&mut UserState),
    ) -> Option<String> {
        let timeouts = self.timeouts();
        let user = self.users.get_mut(index)?;
        user.refresh(now, timeouts);
        change(user);
        user.refresh(now, timeouts);
        Some(user.id.clone())
    }

    /// Every presence write request that reached the core, in order (at most
    /// [`SimConfig::max_write_records`], the latest).
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.writes.iter().cloned().collect()
    }

    /// The counters.
    pub fn stats(&self) -> SimStats {
        self.stats.clone()
    }

    // ------------------------------------------------------------------ apps

    fn app_index(&self, client_id: &str) -> Option<usize> {
        self.apps
            .iter()
            .position(|a| a.registration.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Changes an app's client secret: token requests with the old one get 401
    /// `invalid_client` from now on (tokens already issued stay valid).
    ///
    /// # Errors
    /// [`GraphSimError::UnknownApp`].
    pub fn set_client_secret(
        &mut self,
        client_id: &str,
        secret: &str,
    ) -> Result<(), GraphSimError> {
        let index = self
            .app_index(client_id)
            .ok_or_else(|| GraphSimError::UnknownApp(client_id.chars().take(64).collect()))?;
        if let Some(app) = self.apps.get_mut(index) {
            app.registration.client_secret = secret.to_owned();
        }
        Ok(())
    }

    /// Changes an app's application permissions (effective for its tokens at once).
    ///
    /// # Errors
    /// [`GraphSimError::UnknownApp`].
    pub fn set_permissions(
        &mut self,
        client_id: &str,
        permissions: impl IntoIterator<Item = Permission>,
    ) -> Result<(), GraphSimError> {
        let index = self
            .app_index(client_id)
            .ok_or_else(|| GraphSimError::UnknownApp(client_id.chars().take(64).collect()))?;
        if let Some(app) = self.apps.get_mut(index) {
            app.registration.permissions = permissions.into_iter().collect();
        }
        Ok(())
    }

    /// The client ids of the app registrations.
    pub fn client_ids(&self) -> impl Iterator<Item = &str> {
        self.apps.iter().map(|a| a.registration.client_id.as_str())
    }

    // ------------------------------------------------------------------ faults

    /// Every token issued so far is refused (401) from now on; new tokens work.
    pub fn revoke_tokens(&mut self) {
        for token in self.tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// The next `count` Graph requests (token requests excluded) are answered `status`
    /// with a Graph error body (code `ServiceUnavailable` for 503, ...) and, when given,
    /// `Retry-After`, before any other check; they are not applied. `count` 0 cancels.
    ///
    /// # Errors
    /// [`GraphSimError::InvalidStatus`] for a status outside 400..=599.
    pub fn fail_next(
        &mut self,
        count: u32,
        status: u16,
        retry_after: Option<u32>,
    ) -> Result<(), GraphSimError> {
        check_status(status)?;
        self.faults.fail_next = (count > 0).then_some(FailNext {
            remaining: count,
            status,
            retry_after,
        });
        Ok(())
    }

    /// Every Graph request for `duration` from `now` is answered `status` (after any
    /// [`fail_next`](Self::fail_next) ones).
    ///
    /// # Errors
    /// [`GraphSimError::InvalidStatus`] for a status outside 400..=599.
    pub fn fail_for(
        &mut self,
        duration: Duration,
        status: u16,
        now: Instant,
    ) -> Result<(), GraphSimError> {
        check_status(status)?;
        self.faults.fail_until = Some((deadline(now, duration), status));
        Ok(())
    }

    /// Every Graph request of every app with a valid token is answered 429
    /// `TooManyRequests` with `Retry-After: retry_after_secs` (at least 1) for `duration`
    /// from `now`, whatever the budget holds.
    pub fn throttle_for(&mut self, duration: Duration, retry_after_secs: u32, now: Instant) {
        self.faults.throttle_until = Some((deadline(now, duration), retry_after_secs.max(1)));
    }

    /// Switches every fault off (revoked tokens stay revoked, secrets stay as set).
    pub fn clear_faults(&mut self) {
        self.faults = Faults::default();
    }
}

/// `now + duration`, or as far as an `Instant` goes (about a century) when that
/// overflows: durations come from outside input.
pub(crate) fn deadline(now: Instant, duration: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(duration)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

fn check_status(status: u16) -> Result<(), GraphSimError> {
    if (400..=599).contains(&status) {
        Ok(())
    } else {
        Err(GraphSimError::InvalidStatus(status))
    }
}

impl SimStats {
    fn count(&mut self, kind: RequestKind) {
        *self.requests.entry(kind).or_default() += 1;
    }
}

/// The `client-request-id` header when it is a GUID.
fn client_guid(request: &HttpRequest) -> Option<String> {
    request
        .header("client-request-id")
        .map(str::trim)
        .filter(|id| is_guid(id))
        .map(str::to_lowercase)
}
