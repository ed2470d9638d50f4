//! What the core reports: events for narration, the log of presence writes, counters,
//! and what a user shows.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::Availability;

/// The kind of a request, for [`SimStats::requests`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestKind {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Token,
    /// `GET /v1.0/users/{id-or-upn}`.
    GetUser,
    /// `GET /v1.0/users/{id}/presence`, `GET /v1.0/communications/presences/{id}`.
    GetPresence,
    /// `POST /v1.0/communications/getPresencesByUserId`.
    GetPresencesByUserId,
    /// `POST .../presence/setPresence`.
    SetPresence,
    /// `POST .../presence/clearPresence`.
    ClearPresence,
    /// `POST .../presence/setUserPreferredPresence`.
    SetUserPreferredPresence,
    /// `POST .../presence/clearUserPreferredPresence`.
    ClearUserPreferredPresence,
    /// `POST .../presence/setStatusMessage`.
    SetStatusMessage,
    /// Anything else.
    Other,
}

impl RequestKind {
    /// Whether it counts against the presence budget.
    pub fn is_presence(self) -> bool {
        !matches!(
            self,
            RequestKind::Token | RequestKind::GetUser | RequestKind::Other
        )
    }

    /// The write it is, if it is one.
    pub fn write_kind(self) -> Option<WriteKind> {
        Some(match self {
            RequestKind::SetPresence => WriteKind::SetPresence,
            RequestKind::ClearPresence => WriteKind::ClearPresence,
            RequestKind::SetUserPreferredPresence => WriteKind::SetPreferred,
            RequestKind::ClearUserPreferredPresence => WriteKind::ClearPreferred,
            RequestKind::SetStatusMessage => WriteKind::SetStatusMessage,
            _ => return None,
        })
    }
}

/// The kind of a presence write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WriteKind {
    /// `setPresence`.
    SetPresence,
    /// `clearPresence`.
    ClearPresence,
    /// `setStatusMessage`.
    SetStatusMessage,
    /// `setUserPreferredPresence`.
    SetPreferred,
    /// `clearUserPreferredPresence`.
    ClearPreferred,
}

impl fmt::Display for WriteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteKind::SetPresence => "setPresence",
            WriteKind::ClearPresence => "clearPresence",
            WriteKind::SetStatusMessage => "setStatusMessage",
            WriteKind::SetPreferred => "setUserPreferredPresence",
            WriteKind::ClearPreferred => "clearUserPreferredPresence",
        })
    }
}

/// One presence write request that reached the core, whatever its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    /// When, since the simulator started.
    #[serde(serialize_with = "millis")]
    pub at: Duration,
    /// The calling app's client id (`None` when the request had no valid token).
    pub app: Option<String>,
    /// The user as the path named it.
    pub user_id: String,
    /// Which write.
    pub kind: WriteKind,
    /// The availability in the body, if any.
    pub availability: Option<String>,
    /// The activity in the body, if any.
    pub activity: Option<String>,
    /// The status message's content in the body, if any.
    pub message: Option<String>,
    /// The answer's status.
    pub status: u16,
}

fn millis<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

fn opt_secs<S: serde::Serializer>(duration: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

/// Counters since the start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    /// Requests per kind (token requests included).
    pub requests: BTreeMap<RequestKind, u64>,
    /// Graph requests answered 2xx.
    pub accepted: u64,
    /// Graph requests answered 401 (no, unknown, expired or revoked token).
    pub refused_auth: u64,
    /// Graph requests answered 403 (a permission missing).
    pub refused_permission: u64,
    /// Graph requests answered another 4xx by the rules (bad body, unknown user, ...).
    pub refused_invalid: u64,
    /// 429 answers of the budget, per app client id.
    pub refused_budget: BTreeMap<String, u64>,
    /// Answers made by a fault (`fail_next`, `fail_for`, `throttle_for`).
    pub faults_applied: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// Token requests refused.
    pub tokens_refused: u64,
}

/// One session that counts towards what a user shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The app's client id, or [`TEAMS_CLIENT`](crate::TEAMS_CLIENT).
    pub source: String,
    /// Its availability now (after the Available decay).
    pub availability: Availability,
    /// Its activity now (after the Available decay).
    pub activity: String,
    /// How long until it expires (`None`: never).
    #[serde(rename = "expiresInSeconds", serialize_with = "opt_secs")]
    pub expires_in: Option<Duration>,
}

/// What Teams shows of a user now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    /// The user's object id.
    pub user_id: String,
    /// The user's UPN.
    pub upn: String,
    /// The aggregated availability.
    pub availability: Availability,
    /// The aggregated activity.
    pub activity: String,
    /// The status message, if one is set.
    pub status_message: Option<String>,
    /// The presence's `sequenceNumber`.
    pub sequence_number: String,
    /// The live sessions, the Teams client's first, then by app client id.
    pub sessions: Vec<SessionView>,
    /// The user-preferred presence, while set and not expired.
    pub preferred: Option<(Availability, String)>,
}

/// Something that happened in the simulator, for narration and tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
#[non_exhaustive]
pub enum SimEvent {
    /// A token was issued.
    #[serde(rename_all = "camelCase")]
    TokenIssued {
        /// To this app.
        client_id: String,
        /// Valid this many seconds.
        expires_in: u64,
    },
    /// A token request was refused.
    #[serde(rename_all = "camelCase")]
    TokenRefused {
        /// The client id it named, if any.
        client_id: Option<String>,
        /// The status.
        status: u16,
        /// The OAuth error (`invalid_client`, ...).
        error: String,
        /// The AADSTS code.
        code: u32,
    },
    /// A presence write was applied.
    #[serde(rename_all = "camelCase")]
    WriteAccepted {
        /// By this app.
        app: String,
        /// To this user (object id).
        user_id: String,
        /// Which write.
        kind: WriteKind,
        /// The availability it set, if any.
        availability: Option<String>,
        /// The activity it set, if any.
        activity: Option<String>,
    },
    /// A Graph request was refused by the rules (401, 403, 400, 404, 405), not by a
    /// fault or the budget.
    #[serde(rename_all = "camelCase")]
    Refused {
        /// The caller, if its token was valid.
        app: Option<String>,
        /// What it asked.
        kind: RequestKind,
        /// The status.
        status: u16,
        /// The Graph error code.
        code: String,
    },
    /// A request was answered 429 by the budget.
    #[serde(rename_all = "camelCase")]
    Throttled {
        /// The app.
        app: String,
        /// The `Retry-After` seconds.
        retry_after: u64,
    },
    /// A fault answered a request.
    #[serde(rename_all = "camelCase")]
    FaultApplied {
        /// Which fault: `fail_next`, `fail_for` or `throttle_for`.
        fault: &'static str,
        /// What it asked.
        kind: RequestKind,
        /// The status it got.
        status: u16,
    },
    /// The user's own Teams client changed its presence (control surface).
    #[serde(rename_all = "camelCase")]
    ClientPresence {
        /// The user (object id).
        user_id: String,
        /// The new availability and activity, `None` when cleared.
        presence: Option<(Availability, String)>,
    },
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimEvent::TokenIssued {
                client_id,
                expires_in,
            } => write!(f, "token issued to {client_id} ({expires_in} s)"),
            SimEvent::TokenRefused {
                client_id,
                status,
                error,
                code,
            } => write!(
                f,
                "token refused to {}: {status} {error} (AADSTS{code})",
                client_id.as_deref().unwrap_or("?")
            ),
            SimEvent::WriteAccepted {
                app,
                user_id,
                kind,
                availability,
                activity,
            } => {
                write!(f, "{kind} by {app} for {user_id}")?;
                if let Some(availability) = availability {
                    write!(f, ": {availability}")?;
                }
                if let Some(activity) = activity {
                    write!(f, "/{activity}")?;
                }
                Ok(())
            }
            SimEvent::Refused {
                app,
                kind,
                status,
                code,
            } => write!(
                f,
                "{kind:?} by {} refused: {status} {code}",
                app.as_deref().unwrap_or("?")
            ),
            SimEvent::Throttled { app, retry_after } => {
                write!(f, "429 to {app} (budget; Retry-After {retry_after})")
            }
            SimEvent::FaultApplied {
                fault,
                kind,
                status,
            } => write!(f, "fault {fault}: {kind:?} answered {status}"),
            SimEvent::ClientPresence { user_id, presence } => match presence {
                Some((availability, activity)) => {
                    write!(f, "Teams client of {user_id} set {availability}/{activity}")
                }
                None => write!(f, "Teams client of {user_id} cleared"),
            },
        }
    }
}
