//! The simulator's event log.

use std::fmt;

use presence_model::SipUri;
use presence_mspres::FaultOperation;

use super::ConnId;
use super::world::Shown;

/// Who changed a user's aggregate state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeSource {
    /// A category publication (`SERVICE`) from a connection: the bridge.
    Publication,
    /// [`Simulator::set_user_presence`](crate::Simulator::set_user_presence): the user
    /// picked a state in their own client.
    User,
    /// A time-bounded publication ran out.
    Expiry,
}

/// What happened in the simulator, for demos, logs and tests
/// ([`Simulator::poll_event`](crate::Simulator::poll_event)). Every variant prints as one
/// line ([`Display`](fmt::Display)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimEvent {
    /// A connection was opened.
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// A connection was closed.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A connection sent bytes that are not SIP; it must be closed.
    ConnectionError {
        /// The connection.
        conn: ConnId,
        /// The framer's error.
        error: String,
    },
    /// A request arrived.
    Request {
        /// The connection.
        conn: ConnId,
        /// The method.
        method: String,
        /// The Request-URI.
        uri: String,
        /// The Call-ID (empty when missing).
        call_id: String,
    },
    /// The simulator answered a request (logged when the answer is made, even if a delay
    /// holds it back).
    Answered {
        /// The connection.
        conn: ConnId,
        /// The method of the request.
        method: String,
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// The Call-ID.
        call_id: String,
    },
    /// A response arrived (to a `NOTIFY` of the simulator).
    Response {
        /// The connection.
        conn: ConnId,
        /// The status code.
        status: u16,
        /// The Call-ID.
        call_id: String,
    },
    /// A publication was accepted (`200 OK`).
    Published {
        /// The user.
        user: SipUri,
        /// The availability of the first publication with a state (`None` for removals).
        availability: Option<u32>,
        /// Its activity texts.
        texts: Vec<(u32, String)>,
    },
    /// A publication was refused with `409 Conflict` (WrongDelta).
    Conflict {
        /// The user.
        user: SipUri,
        /// The mismatched operations, as in the fault.
        operations: Vec<FaultOperation>,
        /// Whether [`Simulator::random_conflicts`](crate::Simulator::random_conflicts)
        /// caused it.
        injected: bool,
    },
    /// A user's aggregate state (what watchers see) changed.
    UserChanged {
        /// The user.
        user: SipUri,
        /// The new aggregate state (`None`: no state left).
        shown: Option<Shown>,
        /// Who changed it.
        source: ChangeSource,
    },
    /// A subscription dialog was created.
    Subscribed {
        /// The connection.
        conn: ConnId,
        /// The dialog's Call-ID.
        call_id: String,
        /// The users it watches.
        users: Vec<SipUri>,
        /// The granted `Expires`, in seconds.
        expires: u32,
        /// Whether notifications go as `BENOTIFY`.
        benotify: bool,
    },
    /// A subscription dialog was refreshed.
    Refreshed {
        /// The dialog's Call-ID.
        call_id: String,
        /// The granted `Expires`, in seconds.
        expires: u32,
    },
    /// A subscription dialog ended.
    SubscriptionEnded {
        /// The dialog's Call-ID.
        call_id: String,
        /// Why: `unsubscribed`, `timeout`, `deactivated`, `rejected by the subscriber`,
        /// `connection closed`.
        reason: String,
    },
    /// A notification was sent (or made part of a `200 OK` with piggy-backing).
    Notified {
        /// The connection.
        conn: ConnId,
        /// The dialog's Call-ID.
        call_id: String,
        /// `NOTIFY`, `BENOTIFY`, or `200` for a piggy-backed first notification.
        method: String,
        /// The users whose state it carries.
        users: Vec<SipUri>,
        /// The users whose subscription it ends (RLMI `terminated`).
        terminated: Vec<SipUri>,
    },
    /// A fault of the menu fired.
    FaultInjected {
        /// The connection.
        conn: ConnId,
        /// The method of the request.
        method: String,
        /// The status answered.
        status: u16,
        /// Which fault.
        fault: &'static str,
    },
    /// A TLS handshake failed (emitted by the tokio layer).
    HandshakeFailed {
        /// The peer's address.
        peer: String,
        /// Why.
        error: String,
    },
    /// Something the simulator could not do (a notification it could not build).
    Warning {
        /// What.
        message: String,
    },
}

fn users(list: &[SipUri]) -> String {
    let names: Vec<&str> = list.iter().map(SipUri::as_str).collect();
    names.join(",")
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimEvent::Connected { conn } => write!(f, "{conn} connected"),
            SimEvent::Closed { conn } => write!(f, "{conn} closed"),
            SimEvent::ConnectionError { conn, error } => write!(f, "{conn} unreadable: {error}"),
            SimEvent::Request {
                conn,
                method,
                uri,
                call_id,
            } => write!(f, "{conn} <- {method} {uri} (Call-ID {call_id})"),
            SimEvent::Answered {
                conn,
                method,
                status,
                reason,
                call_id,
            } => write!(
                f,
                "{conn} -> {status} {reason} to {method} (Call-ID {call_id})"
            ),
            SimEvent::Response {
                conn,
                status,
                call_id,
            } => write!(f, "{conn} <- {status} (Call-ID {call_id})"),
            SimEvent::Published {
                user,
                availability,
                texts,
            } => {
                write!(f, "published {user}: ")?;
                match availability {
                    Some(a) => write!(f, "{a}")?,
                    None => f.write_str("removed")?,
                }
                for (lcid, text) in texts {
                    write!(f, " [{lcid}] {text:?}")?;
                }
                Ok(())
            }
            SimEvent::Conflict {
                user,
                operations,
                injected,
            } => {
                write!(f, "409 WrongDelta for {user}:")?;
                for op in operations {
                    write!(
                        f,
                        " #{} sent {} current {}",
                        op.index,
                        op.version.unwrap_or_default(),
                        op.cur_version.unwrap_or_default()
                    )?;
                }
                if *injected {
                    f.write_str(" (injected)")?;
                }
                Ok(())
            }
            SimEvent::UserChanged {
                user,
                shown,
                source,
            } => {
                write!(f, "{user} now shows ")?;
                match shown {
                    Some(s) => {
                        write!(f, "{}", s.availability)?;
                        if let Some((_, text)) = s.texts.first() {
                            write!(f, " {text:?}")?;
                        }
                    }
                    None => f.write_str("nothing")?,
                }
                write!(f, " ({source:?})")
            }
            SimEvent::Subscribed {
                conn,
                call_id,
                users: list,
                expires,
                benotify,
            } => write!(
                f,
                "{conn} subscribed {} users for {expires} s (Call-ID {call_id}, {}): {}",
                list.len(),
                if *benotify { "BENOTIFY" } else { "NOTIFY" },
                users(list)
            ),
            SimEvent::Refreshed { call_id, expires } => {
                write!(f, "refreshed Call-ID {call_id} for {expires} s")
            }
            SimEvent::SubscriptionEnded { call_id, reason } => {
                write!(f, "subscription Call-ID {call_id} ended: {reason}")
            }
            SimEvent::Notified {
                conn,
                call_id,
                method,
                users: list,
                terminated,
            } => {
                write!(f, "{conn} -> {method} (Call-ID {call_id}): {}", users(list))?;
                if !terminated.is_empty() {
                    write!(f, " terminated: {}", users(terminated))?;
                }
                Ok(())
            }
            SimEvent::FaultInjected {
                conn,
                method,
                status,
                fault,
            } => write!(f, "{conn} fault {fault}: {status} to {method}"),
            SimEvent::HandshakeFailed { peer, error } => {
                write!(f, "TLS handshake with {peer} failed: {error}")
            }
            SimEvent::Warning { message } => write!(f, "warning: {message}"),
        }
    }
}
