//! The HTTP control API under `/_sim/`, for scripts and out-of-process tests.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Shared;
use crate::{Availability, GraphSimError};

/// A fault of the menu, as `POST /_sim/faults` takes it (JSON, tagged by `fault`):
///
/// | JSON | effect |
/// |---|---|
/// | `{"fault":"revoke_tokens"}` | every token issued so far gets 401 |
/// | `{"fault":"set_client_secret","client_id":"…","secret":"…"}` | the app's secret changes |
/// | `{"fault":"fail_next","count":3,"status":503,"retry_after":2}` | the next 3 Graph calls get 503 (`retry_after` optional) |
/// | `{"fault":"fail_for","seconds":10,"status":503}` | every Graph call gets 503 for 10 s |
/// | `{"fault":"throttle_for","seconds":10,"retry_after":5}` | every Graph call gets 429 for 10 s |
/// | `{"fault":"latency","millis":250}` | every answer is held back 250 ms (0: off) |
/// | `{"fault":"stall","on":true}` | requests are read but not answered until `"on":false` |
///
/// Its `Debug` never shows a secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// [`GraphSimServer::revoke_tokens`](super::GraphSimServer::revoke_tokens).
    RevokeTokens,
    /// [`GraphSimServer::set_client_secret`](super::GraphSimServer::set_client_secret).
    SetClientSecret {
        /// The app.
        client_id: String,
        /// Its new secret.
        secret: String,
    },
    /// [`GraphSimServer::fail_next`](super::GraphSimServer::fail_next).
    FailNext {
        /// How many Graph calls.
        count: u32,
        /// The status they get.
        status: u16,
        /// The `Retry-After` seconds, if any.
        #[serde(default)]
        retry_after: Option<u32>,
    },
    /// [`GraphSimServer::fail_for`](super::GraphSimServer::fail_for).
    FailFor {
        /// For how long.
        seconds: f64,
        /// The status.
        status: u16,
    },
    /// [`GraphSimServer::throttle_for`](super::GraphSimServer::throttle_for).
    ThrottleFor {
        /// For how long.
        seconds: f64,
        /// The `Retry-After` seconds.
        retry_after: u32,
    },
    /// [`GraphSimServer::set_latency`](super::GraphSimServer::set_latency).
    Latency {
        /// Milliseconds (0: off).
        millis: u64,
    },
    /// [`GraphSimServer::stall`](super::GraphSimServer::stall).
    Stall {
        /// On or off.
        on: bool,
    },
}

impl Fault {
    /// Its JSON name (`revoke_tokens`, `fail_next`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::RevokeTokens => "revoke_tokens",
            Fault::SetClientSecret { .. } => "set_client_secret",
            Fault::FailNext { .. } => "fail_next",
            Fault::FailFor { .. } => "fail_for",
            Fault::ThrottleFor { .. } => "throttle_for",
            Fault::Latency { .. } => "latency",
            Fault::Stall { .. } => "stall",
        }
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::SetClientSecret { client_id, .. } => f
                .debug_struct("SetClientSecret")
                .field("client_id", client_id)
                .field("secret", &"<redacted>")
                .finish(),
            Fault::RevokeTokens => f.write_str("RevokeTokens"),
            Fault::FailNext {
                count,
                status,
                retry_after,
            } => f
                .debug_struct("FailNext")
                .field("count", count)
                .field("status", status)
                .field("retry_after", retry_after)
                .finish(),
            Fault::FailFor { seconds, status } => f
                .debug_struct("FailFor")
                .field("seconds", seconds)
                .field("status", status)
                .finish(),
            Fault::ThrottleFor {
                seconds,
                retry_after,
            } => f
                .debug_struct("ThrottleFor")
                .field("seconds", seconds)
                .field("retry_after", retry_after)
                .finish(),
            Fault::Latency { millis } => f.debug_struct("Latency").field("millis", millis).finish(),
            Fault::Stall { on } => f.debug_struct("Stall").field("on", on).finish(),
        }
    }
}

/// Seconds as a duration.
pub(super) fn seconds(seconds: f64) -> Result<Duration, GraphSimError> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| GraphSimError::InvalidDuration(format!("{seconds} seconds")))
}

fn error(status: StatusCode, message: impl fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn parse<T: for<'a> Deserialize<'a>>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, e)))
}

fn outcome(result: Result<(), GraphSimError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e @ GraphSimError::UnknownUser(_)) | Err(e @ GraphSimError::UnknownApp(_)) => {
            error(StatusCode::NOT_FOUND, e)
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

pub(super) async fn show_user(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
) -> Response {
    match shared.with_world(|world, now| world.shows(&user, now)) {
        Some(shown) => Json(shown).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no user `{user}`")),
    }
}

#[derive(Deserialize)]
struct ClientPresence {
    availability: String,
    activity: String,
}

pub(super) async fn set_client_presence(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    let presence: ClientPresence = match parse(&body) {
        Ok(presence) => presence,
        Err(response) => return *response,
    };
    let availability: Availability = match presence.availability.parse() {
        Ok(availability) => availability,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    outcome(shared.with_world(|world, now| {
        world.set_client_presence(&user, availability, &presence.activity, now)
    }))
}

pub(super) async fn clear_client_presence(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
) -> Response {
    outcome(shared.with_world(|world, now| world.clear_client_presence(&user, now)))
}

#[derive(Deserialize)]
struct NewUser {
    upn: String,
}

pub(super) async fn add_user(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let user: NewUser = match parse(&body) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    match shared.with_world(|world, now| world.add_user(&user.upn, now)) {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({ "id": id, "upn": user.upn })),
        )
            .into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

pub(super) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.with_world(|world, _| world.stats())).into_response()
}

pub(super) async fn writes(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.with_world(|world, _| world.writes())).into_response()
}

pub(super) async fn fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let fault: Fault = match parse(&body) {
        Ok(fault) => fault,
        Err(response) => return *response,
    };
    outcome(shared.apply_fault(fault))
}

pub(super) async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn shutdown(State(shared): State<Arc<Shared>>) -> Response {
    tracing::info!(target: "presence_graph_sim", "shutdown asked over the control API");
    shared.shutdown.send_replace(true);
    StatusCode::ACCEPTED.into_response()
}
