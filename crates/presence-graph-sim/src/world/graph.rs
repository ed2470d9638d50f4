//! Microsoft Graph: authentication, faults, the budget, permissions, and the users and
//! presence resources.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::user::{AppSession, Preferred, StatusMessage, UserState};
use super::{GraphWorld, deadline};
use crate::model::{PREFERRED_PAIRS, SESSION_PAIRS, find_pair};
use crate::time::rfc3339_millis;
use crate::{
    Availability, HttpRequest, HttpResponse, Permission, RequestKind, SimEvent, WriteRecord,
    parse_iso8601_duration,
};

/// The shortest and longest `expirationDuration` of `setPresence`.
const SESSION_EXPIRY: (Duration, Duration) =
    (Duration::from_secs(5 * 60), Duration::from_secs(4 * 3600));
/// `setPresence`'s default `expirationDuration`.
const SESSION_DEFAULT: Duration = Duration::from_secs(5 * 60);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The ids of one Graph answer.
#[derive(Clone, Debug)]
pub(super) struct Ctx {
    pub(super) request_id: String,
    pub(super) client_request_id: String,
    pub(super) date: String,
}

/// A Graph error answer.
#[derive(Clone, Debug)]
pub(super) struct GraphError {
    status: u16,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl GraphError {
    pub(super) fn new(status: u16, code: &'static str, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, seconds: Option<u64>) -> GraphError {
        self.retry_after = seconds;
        self
    }

    pub(super) fn response(&self, ctx: &Ctx) -> HttpResponse {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": ctx.date,
                    "request-id": ctx.request_id,
                    "client-request-id": ctx.client_request_id,
                }
            }
        });
        let mut response = ctx.response(self.status, serde_json::to_vec(&body).unwrap_or_default());
        if self.status == 401 {
            response.headers.push((
                "WWW-Authenticate".to_owned(),
                "Bearer realm=\"\", client_id=\"00000003-0000-0000-c000-000000000000\"".to_owned(),
            ));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers
                .push(("Retry-After".to_owned(), seconds.to_string()));
        }
        response
    }
}

impl Ctx {
    fn response(&self, status: u16, body: Vec<u8>) -> HttpResponse {
        let mut headers = vec![
            ("request-id".to_owned(), self.request_id.clone()),
            (
                "client-request-id".to_owned(),
                self.client_request_id.clone(),
            ),
        ];
        if !body.is_empty() {
            headers.push((
                "Content-Type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            ));
        }
        HttpResponse {
            status,
            headers,
            body,
        }
    }

    fn json(&self, body: &Value) -> HttpResponse {
        self.response(200, serde_json::to_vec(body).unwrap_or_default())
    }
}

/// The Graph error code of an injected status.
fn fault_code(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("BadRequest", "Bad request."),
        401 => (
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        ),
        403 => (
            "Forbidden",
            "Insufficient privileges to complete the operation.",
        ),
        404 => ("NotFound", "The resource could not be found."),
        409 => ("Conflict", "The request conflicts with the current state."),
        429 => ("TooManyRequests", "Too many requests"),
        500 => ("InternalServerError", "An internal server error occurred."),
        502 => ("BadGateway", "Bad gateway."),
        503 => (
            "ServiceUnavailable",
            "The service is temporarily unavailable. Please retry later.",
        ),
        504 => ("GatewayTimeout", "The gateway timed out."),
        _ => ("UnknownError", "An error occurred."),
    }
}

/// A successful Graph answer.
enum Answer {
    /// 200 with this JSON body.
    Json(Value),
    /// 200 with no body.
    Empty,
}

/// What a Graph path asks.
#[derive(Clone, Debug)]
enum Route {
    GetUser(String),
    /// The user, and whether a UPN may name it.
    GetPresence(String, bool),
    Batch,
    Write(RequestKind, String),
    Me,
    NotAllowed,
    Unknown(String),
}

impl Route {
    fn parse(method: &str, segments: &[String]) -> Route {
        let is = |i: usize, literal: &str| {
            segments
                .get(i)
                .is_some_and(|s| s.eq_ignore_ascii_case(literal))
        };
        let seg = |i: usize| segments.get(i).cloned().unwrap_or_default();
        let get = method == "GET";
        let post = method == "POST";
        if is(0, "me") {
            return Route::Me;
        }
        if is(0, "users") {
            match segments.len() {
                2 if get => return Route::GetUser(seg(1)),
                2 => return Route::NotAllowed,
                3 if is(2, "presence") && get => return Route::GetPresence(seg(1), true),
                3 if is(2, "presence") => return Route::NotAllowed,
                4 if is(2, "presence") => {
                    let action = seg(3);
                    let action = action
                        .get(..16)
                        .filter(|p| p.eq_ignore_ascii_case("microsoft.graph."))
                        .and_then(|_| action.get(16..))
                        .unwrap_or(&action);
                    let kind = [
                        ("setPresence", RequestKind::SetPresence),
                        ("clearPresence", RequestKind::ClearPresence),
                        (
                            "setUserPreferredPresence",
                            RequestKind::SetUserPreferredPresence,
                        ),
                        (
                            "clearUserPreferredPresence",
                            RequestKind::ClearUserPreferredPresence,
                        ),
                        ("setStatusMessage", RequestKind::SetStatusMessage),
                    ]
                    .into_iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(action))
                    .map(|(_, kind)| kind);
                    return match kind {
                        Some(kind) if post => Route::Write(kind, seg(1)),
                        Some(_) => Route::NotAllowed,
                        None => Route::Unknown(action.to_owned()),
                    };
                }
                _ => {}
            }
        }
        if is(0, "communications") {
            if segments.len() == 3 && is(1, "presences") {
                return if get {
                    Route::GetPresence(seg(2), false)
                } else {
                    Route::NotAllowed
                };
            }
            if segments.len() == 2 && is(1, "getPresencesByUserId") {
                return if post {
                    Route::Batch
                } else {
                    Route::NotAllowed
                };
            }
        }
        Route::Unknown(
            segments
                .last()
                .cloned()
                .unwrap_or_else(|| "v1.0".to_owned()),
        )
    }

    fn kind(&self) -> RequestKind {
        match self {
            Route::GetUser(_) => RequestKind::GetUser,
            Route::GetPresence(..) => RequestKind::GetPresence,
            Route::Batch => RequestKind::GetPresencesByUserId,
            Route::Write(kind, _) => *kind,
            Route::Me | Route::NotAllowed | Route::Unknown(_) => RequestKind::Other,
        }
    }
}

// ---------------------------------------------------------------------- bodies

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetPresenceBody {
    session_id: Option<String>,
    availability: Option<String>,
    activity: Option<String>,
    expiration_duration: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClearPresenceBody {
    session_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreferredBody {
    availability: Option<String>,
    activity: Option<String>,
    expiration_duration: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    status_message: Option<StatusMessageBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusMessageBody {
    message: Option<ItemBody>,
    expiry_date_time: Option<DateTimeTimeZone>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemBody {
    content: Option<String>,
    content_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DateTimeTimeZone {
    date_time: Option<String>,
    time_zone: Option<String>,
}

#[derive(Deserialize)]
struct BatchBody {
    ids: Option<Vec<String>>,
}

fn body<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, GraphError> {
    serde_json::from_slice(bytes).map_err(|_| {
        GraphError::new(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and \
             payload is of valid JSON format.",
        )
    })
}

fn invalid(message: impl Into<String>) -> GraphError {
    GraphError::new(400, "InvalidArgument", message)
}

fn not_found(what: &str) -> GraphError {
    GraphError::new(
        404,
        "Request_ResourceNotFound",
        format!(
            "Resource '{}' does not exist or one of its queried reference-property objects are \
             not present.",
            what.chars().take(256).collect::<String>()
        ),
    )
}

fn short(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The expiration duration of a body: absent → `default`; else parsed and checked.
fn expiration(
    text: Option<&str>,
    default: Duration,
    range: Option<(Duration, Duration)>,
) -> Result<Duration, GraphError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let duration = parse_iso8601_duration(text).map_err(|_| {
        invalid(format!(
            "The provided [ExpirationDuration] '{}' is not a valid ISO 8601 duration",
            short(text)
        ))
    })?;
    match range {
        Some((low, high)) if duration < low || duration > high => {
            Err(invalid("The provided [ExpirationDuration] is out of range"))
        }
        _ => Ok(duration),
    }
}

/// The fields of a write body worth recording, read leniently.
fn record_fields(bytes: &[u8]) -> (Option<String>, Option<String>, Option<String>) {
    let value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(|s| s.chars().take(1024).collect())
    };
    (
        text(value.get("availability")),
        text(value.get("activity")),
        text(
            value
                .get("statusMessage")
                .and_then(|s| s.get("message"))
                .and_then(|m| m.get("content")),
        ),
    )
}

// ---------------------------------------------------------------------- the service

impl GraphWorld {
    pub(super) fn graph(
        &mut self,
        request: &HttpRequest,
        segments: &[String],
        _query: &str,
        now: Instant,
    ) -> HttpResponse {
        let ctx = self.context(request, now);
        let route = Route::parse(&request.method, segments);
        let kind = route.kind();
        self.stats.count(kind);
        let caller = self.caller(request, now);
        let response = match self.serve(request, &route, kind, caller, now) {
            Ok(answer) => {
                self.stats.accepted += 1;
                match answer {
                    Answer::Json(body) => ctx.json(&body),
                    Answer::Empty => ctx.response(200, Vec::new()),
                }
            }
            Err(error) => error.response(&ctx),
        };
        if let (Some(write), Route::Write(_, user)) = (kind.write_kind(), &route) {
            let (availability, activity, message) = record_fields(&request.body);
            let app = caller
                .ok()
                .and_then(|a| self.apps.get(a))
                .map(|a| a.registration.client_id.clone());
            self.record(WriteRecord {
                at: now.saturating_duration_since(self.start),
                app,
                user_id: user.chars().take(256).collect(),
                kind: write,
                availability,
                activity,
                message,
                status: response.status,
            });
        }
        response
    }

    /// The app of the request's bearer token, or the 401 message.
    fn caller(&self, request: &HttpRequest, now: Instant) -> Result<usize, &'static str> {
        const EMPTY: &str = "Access token is empty.";
        let header = request.header("authorization").ok_or(EMPTY)?.trim();
        let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(EMPTY);
        }
        let state = self
            .tokens
            .get(token)
            .ok_or("Access token validation failure.")?;
        if state.revoked || now >= state.expires_at {
            return Err("Access token has expired or is not yet valid.");
        }
        Ok(state.app)
    }

    /// Faults, authentication, throttling, the budget, then the resource.
    fn serve(
        &mut self,
        request: &HttpRequest,
        route: &Route,
        kind: RequestKind,
        caller: Result<usize, &'static str>,
        now: Instant,
    ) -> Result<Answer, GraphError> {
        if let Some(error) = self.injected(kind, now) {
            return Err(error);
        }
        let app = match caller {
            Ok(app) => app,
            Err(message) => {
                return Err(self.refused(
                    None,
                    kind,
                    GraphError::new(401, "InvalidAuthenticationToken", message),
                ));
            }
        };
        let client_id = self
            .apps
            .get(app)
            .map(|a| a.registration.client_id.clone())
            .unwrap_or_default();
        if let Some((until, retry_after)) = self.faults.throttle_until {
            if now < until {
                self.stats.faults_applied += 1;
                self.emit(SimEvent::FaultApplied {
                    fault: "throttle_for",
                    kind,
                    status: 429,
                });
                return Err(GraphError::new(429, "TooManyRequests", "Too many requests")
                    .retry_after(Some(u64::from(retry_after))));
            }
            self.faults.throttle_until = None;
        }
        if kind.is_presence()
            && let Err(retry_after) = self.take_budget(app, now)
        {
            *self
                .stats
                .refused_budget
                .entry(client_id.clone())
                .or_default() += 1;
            self.emit(SimEvent::Throttled {
                app: client_id,
                retry_after,
            });
            return Err(GraphError::new(429, "TooManyRequests", "Too many requests")
                .retry_after(Some(retry_after)));
        }
        let result = self.resource(request, route, app, &client_id, now);
        result.map_err(|error| self.refused(Some(client_id), kind, error))
    }

    /// Counts and reports a refusal by the rules.
    fn refused(&mut self, app: Option<String>, kind: RequestKind, error: GraphError) -> GraphError {
        match error.status {
            401 => self.stats.refused_auth += 1,
            403 => self.stats.refused_permission += 1,
            _ => self.stats.refused_invalid += 1,
        }
        self.emit(SimEvent::Refused {
            app,
            kind,
            status: error.status,
            code: error.code.to_owned(),
        });
        error
    }

    /// The answer of an active `fail_next` / `fail_for` fault.
    fn injected(&mut self, kind: RequestKind, now: Instant) -> Option<GraphError> {
        let (fault, status, retry_after) = if let Some(mut next) = self.faults.fail_next {
            next.remaining = next.remaining.saturating_sub(1);
            self.faults.fail_next = (next.remaining > 0).then_some(next);
            ("fail_next", next.status, next.retry_after)
        } else {
            match self.faults.fail_until {
                Some((until, status)) if now < until => ("fail_for", status, None),
                Some(_) => {
                    self.faults.fail_until = None;
                    return None;
                }
                None => return None,
            }
        };
        self.stats.faults_applied += 1;
        self.emit(SimEvent::FaultApplied {
            fault,
            kind,
            status,
        });
        let (code, message) = fault_code(status);
        Some(GraphError::new(status, code, message).retry_after(retry_after.map(u64::from)))
    }

    /// Takes one request of the app's budget, or tells the whole seconds until one frees.
    fn take_budget(&mut self, app: usize, now: Instant) -> Result<(), u64> {
        let budget = self.config.budget;
        let Some(state) = self.apps.get_mut(app) else {
            return Ok(());
        };
        while state
            .window
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= budget.window)
        {
            state.window.pop_front();
        }
        let limit = usize::try_from(budget.requests).unwrap_or(usize::MAX);
        if state.window.len() >= limit {
            let oldest = state.window.front().copied().unwrap_or(now);
            let left = budget
                .window
                .saturating_sub(now.saturating_duration_since(oldest));
            let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err(seconds.max(1));
        }
        state.window.push_back(now);
        Ok(())
    }

    fn require(&self, app: usize, any_of: &[Permission]) -> Result<(), GraphError> {
        let granted = self.apps.get(app).is_some_and(|a| {
            any_of
                .iter()
                .any(|p| a.registration.permissions.contains(p))
        });
        if granted {
            Ok(())
        } else {
            Err(GraphError::new(
                403,
                "Forbidden",
                "Insufficient privileges to complete the operation.",
            ))
        }
    }

    fn resource(
        &mut self,
        request: &HttpRequest,
        route: &Route,
        app: usize,
        client_id: &str,
        now: Instant,
    ) -> Result<Answer, GraphError> {
        const READ: &[Permission] = &[
            Permission::PresenceReadAll,
            Permission::PresenceReadWriteAll,
        ];
        const WRITE: &[Permission] = &[Permission::PresenceReadWriteAll];
        match route {
            Route::Me => Err(GraphError::new(
                400,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
            )),
            Route::NotAllowed => Err(GraphError::new(
                405,
                "BadRequest",
                format!(
                    "The HTTP method '{}' is not allowed for this resource.",
                    short(&request.method)
                ),
            )),
            Route::Unknown(segment) => Err(GraphError::new(
                400,
                "BadRequest",
                format!("Resource not found for the segment '{}'.", short(segment)),
            )),
            Route::GetUser(user) => {
                self.require(app, &[Permission::UserReadAll])?;
                let index = self.user_index(user).ok_or_else(|| not_found(user))?;
                let user = self.users.get(index).ok_or_else(|| not_found(user))?;
                Ok(Answer::Json(
                    json!({"id": user.id, "userPrincipalName": user.upn}),
                ))
            }
            Route::GetPresence(user, upn_ok) => {
                self.require(app, READ)?;
                let index = if *upn_ok {
                    self.user_index(user)
                } else {
                    self.user_index_by_id(user)
                };
                let index = index.ok_or_else(|| not_found(user))?;
                Ok(Answer::Json(self.presence_json(index, now)))
            }
            Route::Batch => {
                self.require(app, READ)?;
                let batch: BatchBody = body(&request.body)?;
                let ids = batch
                    .ids
                    .ok_or_else(|| invalid("The request body must contain 'ids'."))?;
                if ids.len() > self.config.max_batch_ids {
                    return Err(GraphError::new(400, "BadRequest", "Bad Request"));
                }
                let value: Vec<Value> = ids
                    .iter()
                    .map(|id| match self.user_index_by_id(id) {
                        Some(index) => self.presence_json(index, now),
                        None => unknown_presence(id),
                    })
                    .collect();
                Ok(Answer::Json(json!({ "value": value })))
            }
            Route::Write(kind, user) => {
                self.require(app, WRITE)?;
                let index = self.user_index_by_id(user).ok_or_else(|| not_found(user))?;
                self.write(*kind, index, &request.body, client_id, now)?;
                Ok(Answer::Empty)
            }
        }
    }

    fn write(
        &mut self,
        kind: RequestKind,
        index: usize,
        bytes: &[u8],
        client_id: &str,
        now: Instant,
    ) -> Result<(), GraphError> {
        let session_matches = |session: &Option<String>| -> Result<(), GraphError> {
            match session {
                None => Err(invalid("The request body must contain 'sessionId'.")),
                Some(id) if id.trim().eq_ignore_ascii_case(client_id) => Ok(()),
                Some(_) => Err(invalid(
                    "The sessionId in the request body must be the application (client) id of \
                     the access token.",
                )),
            }
        };
        let (availability, activity): (Option<Availability>, Option<&'static str>) = match kind {
            RequestKind::SetPresence => {
                let body: SetPresenceBody = body(bytes)?;
                session_matches(&body.session_id)?;
                let (availability, activity) =
                    pair(&SESSION_PAIRS, body.availability, body.activity)?;
                let duration = expiration(
                    body.expiration_duration.as_deref(),
                    SESSION_DEFAULT,
                    Some(SESSION_EXPIRY),
                )?;
                self.order += 1;
                let session = AppSession {
                    availability,
                    activity,
                    set_at: now,
                    expires_at: deadline(now, duration),
                    order: self.order,
                };
                let key = client_id.to_owned();
                self.change_index(index, now, |u| {
                    u.sessions.insert(key, session);
                });
                (Some(availability), Some(activity))
            }
            RequestKind::ClearPresence => {
                let body: ClearPresenceBody = body(bytes)?;
                session_matches(&body.session_id)?;
                let timeouts = self.timeouts();
                let user = self.users.get_mut(index).ok_or_else(|| not_found("user"))?;
                user.refresh(now, timeouts);
                if !user.sessions.contains_key(client_id) {
                    return Err(GraphError::new(
                        404,
                        "NotFound",
                        format!("No presence session of application '{client_id}' for this user."),
                    ));
                }
                self.change_index(index, now, |u| {
                    u.sessions.remove(client_id);
                });
                (None, None)
            }
            RequestKind::SetUserPreferredPresence => {
                let body: PreferredBody = body(bytes)?;
                let (availability, activity) =
                    pair(&PREFERRED_PAIRS, body.availability, body.activity)?;
                let default = match availability {
                    Availability::Busy | Availability::DoNotDisturb => DAY,
                    _ => 7 * DAY,
                };
                let duration = expiration(body.expiration_duration.as_deref(), default, None)?;
                self.change_index(index, now, |u| {
                    u.preferred = Some(Preferred {
                        availability,
                        activity,
                        expires_at: deadline(now, duration),
                    });
                });
                (Some(availability), Some(activity))
            }
            RequestKind::ClearUserPreferredPresence => {
                self.change_index(index, now, |u| u.preferred = None);
                (None, None)
            }
            RequestKind::SetStatusMessage => {
                let body: StatusBody = body(bytes)?;
                let status = body
                    .status_message
                    .ok_or_else(|| invalid("The request body must contain 'statusMessage'."))?;
                let message = status
                    .message
                    .ok_or_else(|| invalid("The statusMessage must contain 'message'."))?;
                let content_type = message.content_type.as_deref().unwrap_or("text");
                if !content_type.eq_ignore_ascii_case("text") {
                    return Err(invalid(format!(
                        "The contentType '{}' is not supported: use 'text'.",
                        short(content_type)
                    )));
                }
                let content = message.content.unwrap_or_default();
                let expiry = status.expiry_date_time.and_then(|e| {
                    e.date_time
                        .map(|d| (d, e.time_zone.unwrap_or_else(|| "UTC".to_owned())))
                });
                self.change_index(index, now, |u| {
                    u.status = (!content.is_empty()).then_some(StatusMessage {
                        content,
                        published_at: now,
                        expiry,
                    });
                });
                (None, None)
            }
            _ => return Ok(()),
        };
        let user_id = self
            .users
            .get(index)
            .map(|u| u.id.clone())
            .unwrap_or_default();
        if let Some(write) = kind.write_kind() {
            self.emit(SimEvent::WriteAccepted {
                app: client_id.to_owned(),
                user_id,
                kind: write,
                availability: availability.map(|a| a.as_str().to_owned()),
                activity: activity.map(str::to_owned),
            });
        }
        Ok(())
    }

    /// The presence resource of a user, refreshed at `now`.
    fn presence_json(&mut self, index: usize, now: Instant) -> Value {
        let timeouts = self.timeouts();
        let wall_start = self.wall_start;
        let start = self.start;
        let Some(user) = self.users.get_mut(index) else {
            return Value::Null;
        };
        user.refresh(now, timeouts);
        let user: &UserState = user;
        let (availability, activity) = user.aggregate(now, timeouts);
        let status = user.status.as_ref().map(|s| {
            let published = wall_start + s.published_at.saturating_duration_since(start);
            let mut value = json!({
                "message": {"content": s.content, "contentType": "text"},
                "publishedDateTime": rfc3339_millis(published),
            });
            if let (Some((date_time, time_zone)), Some(object)) = (&s.expiry, value.as_object_mut())
            {
                object.insert(
                    "expiryDateTime".to_owned(),
                    json!({"dateTime": date_time, "timeZone": time_zone}),
                );
            }
            value
        });
        json!({
            "id": user.id,
            "availability": availability.as_str(),
            "activity": activity,
            "statusMessage": status,
            "sequenceNumber": user.sequence_number(),
        })
    }
}

fn pair(
    pairs: &[(Availability, &'static str)],
    availability: Option<String>,
    activity: Option<String>,
) -> Result<(Availability, &'static str), GraphError> {
    let availability =
        availability.ok_or_else(|| invalid("The request body must contain 'availability'."))?;
    let activity = activity.ok_or_else(|| invalid("The request body must contain 'activity'."))?;
    find_pair(pairs, &availability, &activity).ok_or_else(|| {
        invalid(format!(
            "The availability '{}' and activity '{}' are not a supported combination.",
            short(&availability),
            short(&activity)
        ))
    })
}

fn unknown_presence(id: &str) -> Value {
    json!({
        "id": id.chars().take(256).collect::<String>(),
        "availability": "PresenceUnknown",
        "activity": "PresenceUnknown",
        "statusMessage": null,
        "sequenceNumber": format!("{:020}", 0),
    })
}
