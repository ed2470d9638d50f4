//! One user's presence: app sessions, the Teams client session, the user-preferred
//! presence, the status message, and the aggregation of them into what Teams shows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::{Availability, SessionView, Shown, TEAMS_CLIENT};

/// The decay stages of an Available/Available app session.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) available: Duration,
    pub(crate) away: Duration,
}

#[derive(Clone, Debug)]
pub(crate) struct AppSession {
    pub(crate) availability: Availability,
    pub(crate) activity: &'static str,
    pub(crate) set_at: Instant,
    pub(crate) expires_at: Instant,
    /// When it was set among every session write (ties go to the latest).
    pub(crate) order: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct ClientSession {
    pub(crate) availability: Availability,
    pub(crate) activity: String,
    pub(crate) order: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Preferred {
    pub(crate) availability: Availability,
    pub(crate) activity: &'static str,
    pub(crate) expires_at: Instant,
}

#[derive(Clone, Debug)]
pub(crate) struct StatusMessage {
    pub(crate) content: String,
    pub(crate) published_at: Instant,
    /// `expiryDateTime` as given: (dateTime, timeZone). Stored and echoed, not honoured.
    pub(crate) expiry: Option<(String, String)>,
}

/// What the user shows, as compared for `sequenceNumber`.
type ShownKey = (Availability, String, Option<String>);

#[derive(Clone, Debug)]
pub(crate) struct UserState {
    pub(crate) id: String,
    pub(crate) upn: String,
    /// App sessions by client id (as registered).
    pub(crate) sessions: BTreeMap<String, AppSession>,
    pub(crate) client: Option<ClientSession>,
    pub(crate) preferred: Option<Preferred>,
    pub(crate) status: Option<StatusMessage>,
    sequence: u64,
    last: Option<ShownKey>,
}

impl UserState {
    pub(crate) fn new(id: String, upn: String) -> UserState {
        UserState {
            id,
            upn,
            sessions: BTreeMap::new(),
            client: None,
            preferred: None,
            status: None,
            sequence: 0,
            last: None,
        }
    }

    /// Forgets expired sessions and an expired preferred presence, and moves the
    /// sequence number on if what the user shows changed since the last refresh. Every
    /// read refreshes first, and every write refreshes before and after, so any change
    /// an observer can see comes with a greater sequence number.
    pub(crate) fn refresh(&mut self, now: Instant, timeouts: Timeouts) {
        self.sessions.retain(|_, s| now < s.expires_at);
        if self.preferred.as_ref().is_some_and(|p| now >= p.expires_at) {
            self.preferred = None;
        }
        let (availability, activity) = self.aggregate(now, timeouts);
        let key = (
            availability,
            activity,
            self.status.as_ref().map(|s| s.content.clone()),
        );
        if self.last.as_ref() != Some(&key) {
            self.sequence += 1;
            self.last = Some(key);
        }
    }

    /// The `sequenceNumber`: a zero-padded decimal counter, so that it sorts as text.
    pub(crate) fn sequence_number(&self) -> String {
        format!("{:020}", self.sequence)
    }

    /// The live sessions with their (decayed) state, each with its order.
    fn live(&self, now: Instant, timeouts: Timeouts) -> Vec<(SessionView, u64)> {
        let client = self.client.iter().map(|c| {
            (
                SessionView {
                    source: TEAMS_CLIENT.to_owned(),
                    availability: c.availability,
                    activity: c.activity.clone(),
                    expires_in: None,
                },
                c.order,
            )
        });
        let apps = self
            .sessions
            .iter()
            .filter(|(_, s)| now < s.expires_at)
            .map(|(app, s)| {
                let (availability, activity) = decayed(s, now, timeouts);
                (
                    SessionView {
                        source: app.clone(),
                        availability,
                        activity: activity.to_owned(),
                        expires_in: Some(s.expires_at.saturating_duration_since(now)),
                    },
                    s.order,
                )
            });
        client.chain(apps).collect()
    }

    /// What the user shows: the preferred presence while set; else the live session of
    /// highest [`Availability::precedence`] (the latest set among equals); else
    /// Offline/Offline.
    pub(crate) fn aggregate(&self, now: Instant, timeouts: Timeouts) -> (Availability, String) {
        if let Some(preferred) = self.preferred.as_ref().filter(|p| now < p.expires_at) {
            return (preferred.availability, preferred.activity.to_owned());
        }
        self.live(now, timeouts)
            .into_iter()
            .max_by_key(|(view, order)| (view.availability.precedence(), *order))
            .map_or_else(
                || (Availability::Offline, "Offline".to_owned()),
                |(view, _)| (view.availability, view.activity),
            )
    }

    pub(crate) fn shown(&self, now: Instant, timeouts: Timeouts) -> Shown {
        let (availability, activity) = self.aggregate(now, timeouts);
        Shown {
            user_id: self.id.clone(),
            upn: self.upn.clone(),
            availability,
            activity,
            status_message: self.status.as_ref().map(|s| s.content.clone()),
            sequence_number: self.sequence_number(),
            sessions: self
                .live(now, timeouts)
                .into_iter()
                .map(|(view, _)| view)
                .collect(),
            preferred: self
                .preferred
                .as_ref()
                .filter(|p| now < p.expires_at)
                .map(|p| (p.availability, p.activity.to_owned())),
        }
    }
}

/// An app session's state now: Available/Available decays to Available/AvailableInactive
/// and then to Away/Away when it is not set again; other pairs stay as set.
fn decayed(session: &AppSession, now: Instant, timeouts: Timeouts) -> (Availability, &'static str) {
    if session.availability == Availability::Available && session.activity == "Available" {
        let idle = now.saturating_duration_since(session.set_at);
        if idle >= timeouts.away {
            return (Availability::Away, "Away");
        }
        if idle >= timeouts.available {
            return (Availability::Available, "AvailableInactive");
        }
    }
    (session.availability, session.activity)
}
