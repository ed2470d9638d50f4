//! How the bridge's canonical presence (an SfB availability number and activity texts per
//! LCID) maps onto PIDF (RFC 3863) with RPID (RFC 4480), both ways.
//!
//! ## Push (bridge → SIP SIMPLE), by SfB availability class
//!
//! | SfB class (availability) | default | written as |
//! |---|---|---|
//! | None (0) | `nothing` | no PUBLISH at all |
//! | Online (1–4499) | `open` | `<basic>open</basic>`, no RPID activities |
//! | IdleOnline (4500–5999) | `open; idle` | open, `<rpid:user-input>idle</rpid:user-input>` |
//! | Busy (6000–7499) | `open; busy` | open, `<rpid:activities><rpid:busy/></rpid:activities>` |
//! | IdleBusy (7500–8999) | `open; busy; idle` | open, `busy`, user-input idle |
//! | DoNotDisturb (9000–11999) | `open; busy` | open, `busy`: **lossy**, RPID has no "do not disturb" activity; the activity texts still go out as notes, and a watcher (and [`Mapping::pull`]) sees Busy |
//! | BeRightBack (12000–14999) | `open; away` | open, `away`: **lossy**, RPID has no "be right back"; read back as Away |
//! | Away (15000–17999) | `open; away` | open, `away` |
//! | Offline (18000, e.g. logged out) | `remove` | the bridge's publication is removed (`PUBLISH` with `SIP-If-Match` and `Expires: 0`), so the server shows whatever else the user publishes, or nothing |
//!
//! The activity texts of the publication become notes of every published document (see
//! [`crate::pidf::write`]), whatever the class.
//!
//! ### Overrides
//!
//! `[simple.classes]` replaces the target of a class (keys: the class names of the table,
//! `Busy`, `IdleBusy`, ..., compared case-insensitively, also in kebab case: `idle-busy`,
//! `do-not-disturb`); `[simple.states]` the target of one aggregated state ID (`INCALL`;
//! case-sensitive, like the IDs). A per-state override wins over a per-class one. Each value
//! is one string, the same syntax the `explain` output uses ([`PushTarget`]'s `Display`):
//!
//! ```text
//! nothing                          send nothing
//! remove                           remove the bridge's publication (Expires: 0)
//! BASIC [; ACTIVITY, ...] [; idle]  publish: BASIC is open or closed, ACTIVITY an RPID token
//! ```
//!
//! ```toml
//! [simple.classes]
//! Busy = "open; on-the-phone"
//! DoNotDisturb = "open; busy, meeting"
//! Offline = "closed"                  # publish closed instead of removing
//!
//! [simple.states]
//! ACW = "open; busy; idle"
//! LUNCH = "open; meal, other:At lunch"
//! ```
//!
//! The activity tokens are RFC 4480's: `appointment`, `away`, `breakfast`, `busy`, `dinner`,
//! `holiday`, `in-transit`, `looking-for-work`, `meal`, `meeting`, `on-the-phone`,
//! `performance`, `permanent-absence`, `playing`, `presentation`, `shopping`, `sleeping`,
//! `spectator`, `steering`, `travel`, `tv`, `unknown`, `vacation`, `working`, `worship`, and
//! `other` (written `other:TEXT` to carry a text, which then holds no `,` or `;`).
//! `unknown` stands alone; a token may appear once.
//!
//! ## Pull (SIP SIMPLE → bridge), onto the SfB scale
//!
//! | what the document says | SfB availability |
//! |---|---|
//! | nothing published: no tuple and no person (an empty body, or an empty NOTIFY) | 18000 |
//! | every tuple `<basic>closed</basic>` (Kamailio's body right after a remove) | 18000 |
//! | an activity of the *away* group: `away`, `breakfast`, `dinner`, `holiday`, `in-transit`, `meal`, `permanent-absence`, `playing`, `shopping`, `sleeping`, `spectator`, `steering`, `travel`, `tv`, `vacation`, `worship` | 15500 (Away) |
//! | an activity of the *busy* group: `appointment`, `busy`, `meeting`, `on-the-phone`, `performance`, `presentation` | 6500 (Busy); 7500 (IdleBusy) with user-input idle |
//! | user-input idle, no activity of those groups | 5000 (IdleOnline) |
//! | otherwise (open, or no basic; `unknown`, `working`, `looking-for-work`, `other`) | 3500 (Online) |
//!
//! What counts: every person, and the tuples that are not closed (all tuples when all are
//! closed). Several activities or several persons: the least available wins (the highest
//! number). A person without any tuple counts as open. User-input values other than `idle`
//! count as active.
//!
//! The activity text is the first note in English (`xml:lang` `en` or `en-*`, or without
//! `xml:lang`), else the first note, looking at the persons' notes first, then the tuples'
//! that count, then the document's own; without any note, the first activity's token (the
//! text of an `other`, `unknown` skipped). Texts are trimmed; empty ones do not count.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use presence_model::{AggregatedStateId, AvailabilityClass, Publication};

use crate::SimpleError;
use crate::pidf::{Note, PidfDocument};

/// An RPID activity (RFC 4480 §3.2): one of the enumerated tokens, or `other` with a text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Activity {
    /// `appointment`
    Appointment,
    /// `away`
    Away,
    /// `breakfast`
    Breakfast,
    /// `busy`
    Busy,
    /// `dinner`
    Dinner,
    /// `holiday`
    Holiday,
    /// `in-transit`
    InTransit,
    /// `looking-for-work`
    LookingForWork,
    /// `meal`
    Meal,
    /// `meeting`
    Meeting,
    /// `on-the-phone`
    OnThePhone,
    /// `performance`
    Performance,
    /// `permanent-absence`
    PermanentAbsence,
    /// `playing`
    Playing,
    /// `presentation`
    Presentation,
    /// `shopping`
    Shopping,
    /// `sleeping`
    Sleeping,
    /// `spectator`
    Spectator,
    /// `steering`
    Steering,
    /// `travel`
    Travel,
    /// `tv`
    Tv,
    /// `unknown`
    Unknown,
    /// `vacation`
    Vacation,
    /// `working`
    Working,
    /// `worship`
    Worship,
    /// `other`, with its text (possibly empty).
    Other(String),
}

/// The enumerated tokens, in RFC 4480's alphabetical order, with their activities.
pub(crate) const TOKENS: [(&str, Activity); 25] = [
    ("appointment", Activity::Appointment),
    ("away", Activity::Away),
    ("breakfast", Activity::Breakfast),
    ("busy", Activity::Busy),
    ("dinner", Activity::Dinner),
    ("holiday", Activity::Holiday),
    ("in-transit", Activity::InTransit),
    ("looking-for-work", Activity::LookingForWork),
    ("meal", Activity::Meal),
    ("meeting", Activity::Meeting),
    ("on-the-phone", Activity::OnThePhone),
    ("performance", Activity::Performance),
    ("permanent-absence", Activity::PermanentAbsence),
    ("playing", Activity::Playing),
    ("presentation", Activity::Presentation),
    ("shopping", Activity::Shopping),
    ("sleeping", Activity::Sleeping),
    ("spectator", Activity::Spectator),
    ("steering", Activity::Steering),
    ("travel", Activity::Travel),
    ("tv", Activity::Tv),
    ("unknown", Activity::Unknown),
    ("vacation", Activity::Vacation),
    ("working", Activity::Working),
    ("worship", Activity::Worship),
];

impl Activity {
    /// The element name (`on-the-phone`; `other` for [`Activity::Other`]).
    pub fn token(&self) -> &'static str {
        if matches!(self, Activity::Other(_)) {
            return "other";
        }
        TOKENS
            .iter()
            .find(|(_, a)| a == self)
            .map_or("other", |(token, _)| token)
    }

    /// The activity an element name stands for (exact, case-sensitive, as XML names are);
    /// `other` gives an [`Activity::Other`] with an empty text. `None` for other names.
    pub fn from_token(token: &str) -> Option<Activity> {
        if token == "other" {
            return Some(Activity::Other(String::new()));
        }
        TOKENS
            .iter()
            .find(|(t, _)| *t == token)
            .map(|(_, a)| a.clone())
    }

    /// How the pull direction ranks it.
    fn group(&self) -> Group {
        match self {
            Activity::Appointment
            | Activity::Busy
            | Activity::Meeting
            | Activity::OnThePhone
            | Activity::Performance
            | Activity::Presentation => Group::Busy,
            Activity::Away
            | Activity::Breakfast
            | Activity::Dinner
            | Activity::Holiday
            | Activity::InTransit
            | Activity::Meal
            | Activity::PermanentAbsence
            | Activity::Playing
            | Activity::Shopping
            | Activity::Sleeping
            | Activity::Spectator
            | Activity::Steering
            | Activity::Travel
            | Activity::Tv
            | Activity::Vacation
            | Activity::Worship => Group::Away,
            Activity::LookingForWork
            | Activity::Unknown
            | Activity::Working
            | Activity::Other(_) => Group::Neutral,
        }
    }
}

impl fmt::Display for Activity {
    /// The token; `other:TEXT` for an [`Activity::Other`] with a text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activity::Other(text) if !text.is_empty() => write!(f, "other:{text}"),
            other => f.write_str(other.token()),
        }
    }
}

/// The pull direction's groups of activities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Neutral,
    Busy,
    Away,
}

/// PIDF's `<basic>` status of a tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Basic {
    /// `open`: the service is reachable.
    Open,
    /// `closed`: not reachable.
    Closed,
}

impl Basic {
    /// The element text, `open` or `closed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Basic::Open => "open",
            Basic::Closed => "closed",
        }
    }
}

impl fmt::Display for Basic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the bridge publishes in one PIDF document: the tuple's basic status, the person's
/// RPID activities and whether the person's user input is idle. The notes come from the
/// publication's activity texts (see [`crate::pidf::write`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PidfState {
    /// The tuple's `<basic>`.
    pub basic: Basic,
    /// The person's `<rpid:activities>`, in order; none: no `<rpid:activities>` element.
    pub activities: Vec<Activity>,
    /// `<rpid:user-input>idle</rpid:user-input>` on the person.
    pub idle: bool,
}

impl PidfState {
    /// A state with `basic`, no activities, not idle.
    pub const fn new(basic: Basic) -> PidfState {
        PidfState {
            basic,
            activities: Vec::new(),
            idle: false,
        }
    }
}

impl fmt::Display for PidfState {
    /// The override syntax: `open`, `open; busy, meeting`, `closed; away; idle`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.basic.as_str())?;
        for (i, activity) in self.activities.iter().enumerate() {
            f.write_str(if i == 0 { "; " } else { ", " })?;
            activity.fmt(f)?;
        }
        if self.idle {
            f.write_str("; idle")?;
        }
        Ok(())
    }
}

/// What to do on the SIP SIMPLE server for one publication.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PushTarget {
    /// Send nothing (availability 0 by default).
    Nothing,
    /// Remove the bridge's publication (`Expires: 0`; availability 18000 by default).
    Remove,
    /// Publish (or modify) the bridge's publication with this state.
    Publish(PidfState),
}

impl fmt::Display for PushTarget {
    /// The override syntax: `nothing`, `remove`, or the state (`open; busy; idle`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushTarget::Nothing => f.write_str("nothing"),
            PushTarget::Remove => f.write_str("remove"),
            PushTarget::Publish(state) => state.fmt(f),
        }
    }
}

/// The words an override may start with, for messages.
const SYNTAX: &str = "write `nothing`, `remove`, or `open` or `closed` optionally followed by \
                      `; ACTIVITY, ...` and `; idle` (e.g. `open; on-the-phone; idle`)";

fn activity_list() -> String {
    let mut list = TOKENS
        .iter()
        .map(|(token, _)| *token)
        .collect::<Vec<_>>()
        .join(", ");
    list.push_str(", or `other:TEXT`");
    list
}

impl FromStr for PushTarget {
    type Err = String;

    /// Parses the override syntax of the module documentation (keywords and tokens
    /// compare case-insensitively); the error says what is wrong and what would be valid.
    fn from_str(text: &str) -> Result<PushTarget, String> {
        let mut parts = text.split(';').map(str::trim);
        let first = parts.next().unwrap_or_default();
        let basic = match first.to_ascii_lowercase().as_str() {
            "" => return Err(format!("`{text}` is empty: {SYNTAX}")),
            word @ ("nothing" | "remove") => {
                if parts.next().is_some() {
                    return Err(format!("`{word}` stands alone: nothing may follow it"));
                }
                return Ok(if word == "nothing" {
                    PushTarget::Nothing
                } else {
                    PushTarget::Remove
                });
            }
            "open" => Basic::Open,
            "closed" => Basic::Closed,
            _ => {
                return Err(format!(
                    "`{first}` is not a PIDF basic status nor `nothing`/`remove`: {SYNTAX}"
                ));
            }
        };
        let mut state = PidfState::new(basic);
        let mut listed = false;
        for part in parts {
            if part.is_empty() {
                return Err(format!("`{text}` has an empty part between `;`: {SYNTAX}"));
            }
            if part.eq_ignore_ascii_case("idle") {
                if state.idle {
                    return Err("`idle` is given twice".to_owned());
                }
                state.idle = true;
                continue;
            }
            if listed {
                return Err(format!(
                    "`{part}`: the activities are one list, separated by `,` (`open; busy, meeting`)"
                ));
            }
            listed = true;
            state.activities = parse_activities(part)?;
        }
        Ok(PushTarget::Publish(state))
    }
}

fn parse_activities(list: &str) -> Result<Vec<Activity>, String> {
    let mut activities: Vec<Activity> = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!(
                "`{list}` has an empty activity between `,`: use {}",
                activity_list()
            ));
        }
        let lower = item.to_ascii_lowercase();
        let activity = if let Some(rest) = lower.strip_prefix("other:") {
            // The text keeps its case: take it from the item as written.
            let text = item.get(item.len() - rest.len()..).unwrap_or_default();
            Activity::Other(text.trim().to_owned())
        } else {
            Activity::from_token(&lower).ok_or_else(|| {
                format!(
                    "`{item}` is not an RPID activity (RFC 4480): use {}",
                    activity_list()
                )
            })?
        };
        if activities.iter().any(|a| a.token() == activity.token()) {
            return Err(format!(
                "the activity `{}` is given twice",
                activity.token()
            ));
        }
        activities.push(activity);
    }
    if activities.len() > 1 && activities.contains(&Activity::Unknown) {
        return Err(
            "`unknown` stands alone: RFC 4480 does not combine it with other activities".to_owned(),
        );
    }
    Ok(activities)
}

/// One override of `[simple.classes]` or `[simple.states]`, as written in the
/// configuration: a string in the syntax of the [module documentation](self)
/// (`"open; on-the-phone"`). It is checked by [`Mapping::new`], so that the error names
/// its key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(transparent)]
pub struct Override(String);

impl Override {
    /// An override from its text (not checked until [`Mapping::new`]).
    pub fn new(text: impl Into<String>) -> Override {
        Override(text.into())
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Override {
    fn from(text: &str) -> Override {
        Override::new(text)
    }
}

/// The SfB class of an override key: its name, case-insensitively, with or without `-`/`_`
/// (`IdleBusy`, `idle-busy`).
fn class_of(key: &str) -> Option<AvailabilityClass> {
    let squashed: String = key
        .trim()
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect();
    AvailabilityClass::ALL
        .into_iter()
        .find(|c| c.name().eq_ignore_ascii_case(&squashed))
}

fn slot(class: AvailabilityClass) -> usize {
    AvailabilityClass::ALL
        .iter()
        .position(|c| *c == class)
        .unwrap_or(0)
}

/// The mapping between the bridge's presence and PIDF, both ways, with the configured
/// overrides (see the [module documentation](self) for the tables).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    classes: [PushTarget; 9],
    states: HashMap<AggregatedStateId, PushTarget>,
}

impl Default for Mapping {
    /// The default tables, no overrides.
    fn default() -> Mapping {
        let publish = |activities: &[Activity], idle: bool| {
            PushTarget::Publish(PidfState {
                basic: Basic::Open,
                activities: activities.to_vec(),
                idle,
            })
        };
        Mapping {
            // In the order of `AvailabilityClass::ALL`.
            classes: [
                PushTarget::Nothing,
                publish(&[], false),
                publish(&[], true),
                publish(&[Activity::Busy], false),
                publish(&[Activity::Busy], true),
                publish(&[Activity::Busy], false),
                publish(&[Activity::Away], false),
                publish(&[Activity::Away], false),
                PushTarget::Remove,
            ],
            states: HashMap::new(),
        }
    }
}

impl Mapping {
    /// The default tables with the overrides of `[simple.classes]` (`classes`: class name →
    /// target) and `[simple.states]` (`states`: aggregated state ID → target). The error
    /// names the first key that is not valid and says why.
    pub fn new(
        classes: &BTreeMap<String, Override>,
        states: &BTreeMap<String, Override>,
    ) -> Result<Mapping, SimpleError> {
        let mut mapping = Mapping::default();
        let mut given: [Option<&str>; 9] = [None; 9];
        for (key, value) in classes {
            let error = |what: String| SimpleError::Mapping {
                table: "simple.classes",
                key: key.clone(),
                what,
            };
            let class = class_of(key).ok_or_else(|| {
                error(format!(
                    "[simple.classes] `{key}` is not an SfB availability class: use one of {} \
                     (or in kebab case, `idle-busy`)",
                    AvailabilityClass::ALL
                        .map(AvailabilityClass::name)
                        .join(", ")
                ))
            })?;
            if let Some(first) = given[slot(class)].replace(key) {
                return Err(error(format!(
                    "[simple.classes] the class {class} is given twice, as `{first}` and `{key}`"
                )));
            }
            let value = value.as_str();
            let target = value
                .parse()
                .map_err(|what| error(format!("[simple.classes] `{value}`: {what}")))?;
            mapping.classes[slot(class)] = target;
        }
        for (key, value) in states {
            let error = |what: String| SimpleError::Mapping {
                table: "simple.states",
                key: key.clone(),
                what,
            };
            let id =
                AggregatedStateId::new(key).map_err(|e| error(format!("[simple.states] {e}")))?;
            let value = value.as_str();
            let target = value
                .parse()
                .map_err(|what| error(format!("[simple.states] `{value}`: {what}")))?;
            mapping.states.insert(id, target);
        }
        Ok(mapping)
    }

    /// The target of a class (without state overrides).
    pub fn class(&self, class: AvailabilityClass) -> &PushTarget {
        &self.classes[slot(class)]
    }

    /// What to do for a publication: its state's override, else its class's target.
    pub fn push(&self, publication: &Publication) -> PushTarget {
        self.states
            .get(publication.id.as_str())
            .unwrap_or_else(|| self.class(publication.presence.availability.class()))
            .clone()
    }

    /// A received document on the SfB scale: the raw availability (`3500` ... `18000`)
    /// and the activity text, as the pull table of the [module documentation](self) says.
    pub fn pull(&self, document: &PidfDocument) -> (u64, Option<String>) {
        let open: Vec<_> = document
            .tuples
            .iter()
            .filter(|t| t.basic != Some(Basic::Closed))
            .collect();
        let closed = !document.tuples.is_empty() && open.is_empty();
        // The tuples that count: the open ones, or all of them when all are closed.
        let tuples = if closed {
            document.tuples.iter().collect()
        } else {
            open
        };
        let persons = || {
            document
                .persons
                .iter()
                .map(|p| (&p.activities, p.idle, &p.notes))
        };
        let sources = || persons().chain(tuples.iter().map(|t| (&t.activities, t.idle, &t.notes)));
        let availability = if document.is_empty() || closed {
            18000
        } else {
            let idle = sources().any(|(_, idle, _)| idle);
            let group = sources()
                .flat_map(|(activities, _, _)| activities.iter())
                .map(Activity::group)
                .max()
                .unwrap_or(Group::Neutral);
            match (group, idle) {
                (Group::Away, _) => 15500,
                (Group::Busy, false) => 6500,
                (Group::Busy, true) => 7500,
                (Group::Neutral, false) => 3500,
                (Group::Neutral, true) => 5000,
            }
        };
        let notes = || {
            sources()
                .flat_map(|(_, _, notes)| notes.iter())
                .chain(document.notes.iter())
                .filter(|n| !n.text.trim().is_empty())
        };
        let text = notes()
            .find(|n| is_english(n))
            .or_else(|| notes().next())
            .map(|n| n.text.trim().to_owned())
            .or_else(|| {
                sources()
                    .flat_map(|(activities, _, _)| activities.iter())
                    .find_map(|a| match a {
                        Activity::Unknown => None,
                        Activity::Other(text) if !text.trim().is_empty() => {
                            Some(text.trim().to_owned())
                        }
                        other => Some(other.token().to_owned()),
                    })
            });
        (availability, text)
    }
}

/// Whether a note is in English, or says nothing of its language.
fn is_english(note: &Note) -> bool {
    let Some(lang) = note.lang.as_deref().map(str::trim) else {
        return true;
    };
    let mut primary = lang.split('-');
    lang.is_empty() || primary.next().is_some_and(|p| p.eq_ignore_ascii_case("en"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pidf::{Person, Tuple};
    use presence_model::{Activities, Availability, Presence};

    fn publication(id: &str, availability: u32) -> Publication {
        Publication {
            id: AggregatedStateId::new(id).unwrap(),
            presence: Presence {
                availability: Availability::new(availability).unwrap(),
                activities: Activities::empty(),
            },
        }
    }

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, Override> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Override::from(*v)))
            .collect()
    }

    #[test]
    fn default_push_table() {
        let m = Mapping::default();
        let cases = [
            (0, "nothing"),
            (1, "open"),
            (3500, "open"),
            (5000, "open; idle"),
            (6500, "open; busy"),
            (7500, "open; busy; idle"),
            (9500, "open; busy"),
            (12500, "open; away"),
            (15500, "open; away"),
            (18000, "remove"),
        ];
        for (availability, expected) in cases {
            let target = m.push(&publication("S", availability));
            assert_eq!(target.to_string(), expected, "{availability}");
            assert_eq!(expected.parse::<PushTarget>(), Ok(target), "{availability}");
        }
    }

    #[test]
    fn state_overrides_win_over_class_overrides() {
        let m = Mapping::new(
            &map(&[
                ("Busy", "open; on-the-phone"),
                ("do-not-disturb", "OPEN; Busy, Meeting"),
                ("offline", "closed"),
            ]),
            &map(&[("ACW", "open; busy; idle"), ("LOGOUT", "remove")]),
        )
        .unwrap();
        assert_eq!(
            m.push(&publication("INCALL", 6500)).to_string(),
            "open; on-the-phone"
        );
        assert_eq!(
            m.push(&publication("ACW", 6500)).to_string(),
            "open; busy; idle"
        );
        assert_eq!(
            m.push(&publication("DND", 9000)).to_string(),
            "open; busy, meeting"
        );
        assert_eq!(m.push(&publication("OFF", 18000)).to_string(), "closed");
        assert_eq!(m.push(&publication("LOGOUT", 3500)), PushTarget::Remove);
        assert_eq!(m.class(AvailabilityClass::Away).to_string(), "open; away");
    }

    #[test]
    fn override_syntax() {
        let ok = [
            ("nothing", "nothing"),
            (" Remove ", "remove"),
            ("closed", "closed"),
            ("open;idle", "open; idle"),
            ("open; idle; away", "open; away; idle"),
            ("open; other:At Lunch, meal", "open; other:At Lunch, meal"),
            ("open; other", "open; other"),
            ("open; unknown", "open; unknown"),
        ];
        for (text, shown) in ok {
            let target: PushTarget = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(target.to_string(), shown, "{text}");
        }
        let bad = [
            ("", "empty"),
            ("busy", "not a PIDF basic status"),
            ("remove; busy", "stands alone"),
            ("open; lunch", "`lunch` is not an RPID activity"),
            ("open; busy, busy", "given twice"),
            ("open; busy; meeting", "one list"),
            ("open; idle; idle", "`idle` is given twice"),
            ("open;; busy", "empty part"),
            ("open; busy,", "empty activity"),
            ("open; unknown, busy", "`unknown` stands alone"),
        ];
        for (text, needle) in bad {
            let err = text.parse::<PushTarget>().unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let err = "open; lunch".parse::<PushTarget>().unwrap_err();
        assert!(
            err.contains("on-the-phone") && err.contains("other:TEXT"),
            "{err}"
        );
    }

    #[test]
    fn overrides_deserialize_from_toml() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            classes: BTreeMap<String, Override>,
            states: BTreeMap<String, Override>,
        }
        let table: Table = toml::from_str(
            "[classes]\nBusy = \"open; on-the-phone\"\nidle-busy = \"open; on-the-phone; idle\"\n\
             [states]\nLOGOUT = \"remove\"\n",
        )
        .unwrap();
        assert_eq!(table.classes["Busy"].as_str(), "open; on-the-phone");
        let m = Mapping::new(&table.classes, &table.states).unwrap();
        assert_eq!(
            m.class(AvailabilityClass::IdleBusy).to_string(),
            "open; on-the-phone; idle"
        );
        assert_eq!(m.push(&publication("LOGOUT", 3500)), PushTarget::Remove);
        let err = toml::from_str::<Table>("[classes]\nBusy = 1\n[states]\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("string"), "{err}");
    }

    #[test]
    fn override_errors_name_the_key() {
        let err = Mapping::new(&map(&[("Bussy", "open")]), &BTreeMap::new()).unwrap_err();
        let SimpleError::Mapping { key, what, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(key, "Bussy");
        assert!(
            what.contains("IdleBusy") && what.contains("[simple.classes]"),
            "{what}"
        );

        let err = Mapping::new(
            &map(&[("Busy", "open"), ("busy", "closed")]),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");

        let err = Mapping::new(&BTreeMap::new(), &map(&[("INCALL", "open; phone")])).unwrap_err();
        let SimpleError::Mapping { key, what, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(key, "INCALL");
        assert!(
            what.contains("[simple.states]") && what.contains("`phone` is not an RPID activity"),
            "{what}"
        );

        let err = Mapping::new(&BTreeMap::new(), &map(&[("IN CALL", "open")])).unwrap_err();
        assert!(err.to_string().starts_with("mapping `IN CALL`"), "{err}");
    }

    #[test]
    fn every_token_reads_back() {
        for (token, activity) in &TOKENS {
            assert_eq!(activity.token(), *token);
            assert_eq!(Activity::from_token(token).as_ref(), Some(activity));
        }
        assert_eq!(
            Activity::from_token("other"),
            Some(Activity::Other(String::new()))
        );
        assert_eq!(Activity::from_token("Busy"), None);
        assert_eq!(Activity::Other("x".into()).to_string(), "other:x");
    }

    fn person(activities: Vec<Activity>, idle: bool, notes: &[(Option<&str>, &str)]) -> Person {
        Person {
            id: Some("p".into()),
            activities,
            idle,
            notes: notes
                .iter()
                .map(|(lang, text)| Note {
                    lang: lang.map(str::to_owned),
                    text: (*text).to_owned(),
                })
                .collect(),
        }
    }

    fn tuple(basic: Option<Basic>) -> Tuple {
        Tuple {
            id: Some("t".into()),
            basic,
            activities: Vec::new(),
            idle: false,
            notes: Vec::new(),
        }
    }

    fn doc(tuples: Vec<Tuple>, persons: Vec<Person>) -> PidfDocument {
        PidfDocument {
            entity: None,
            tuples,
            persons,
            notes: Vec::new(),
        }
    }

    #[test]
    fn default_pull_table() {
        let m = Mapping::default();
        let open = || vec![tuple(Some(Basic::Open))];
        let pull = |d: PidfDocument| m.pull(&d).0;
        assert_eq!(m.pull(&PidfDocument::default()), (18000, None));
        assert_eq!(pull(doc(vec![tuple(Some(Basic::Closed))], vec![])), 18000);
        assert_eq!(
            pull(doc(
                vec![tuple(Some(Basic::Closed))],
                vec![person(vec![Activity::Busy], false, &[])]
            )),
            18000
        );
        assert_eq!(pull(doc(open(), vec![])), 3500);
        assert_eq!(pull(doc(vec![tuple(None)], vec![])), 3500);
        for busy in [
            Activity::OnThePhone,
            Activity::Busy,
            Activity::Meeting,
            Activity::Appointment,
            Activity::Presentation,
            Activity::Performance,
        ] {
            assert_eq!(
                pull(doc(open(), vec![person(vec![busy.clone()], false, &[])])),
                6500
            );
            assert_eq!(pull(doc(open(), vec![person(vec![busy], true, &[])])), 7500);
        }
        for away in [
            Activity::Away,
            Activity::Meal,
            Activity::Vacation,
            Activity::PermanentAbsence,
            Activity::Steering,
            Activity::Sleeping,
        ] {
            assert_eq!(
                pull(doc(open(), vec![person(vec![away.clone()], true, &[])])),
                15500
            );
        }
        assert_eq!(pull(doc(open(), vec![person(vec![], true, &[])])), 5000);
        assert_eq!(
            pull(doc(
                open(),
                vec![person(vec![Activity::Working], true, &[])]
            )),
            5000
        );
        assert_eq!(
            pull(doc(
                open(),
                vec![person(vec![Activity::Unknown], false, &[])]
            )),
            3500
        );
        // The least available wins, across activities and persons.
        assert_eq!(
            pull(doc(
                open(),
                vec![person(vec![Activity::Busy, Activity::Away], false, &[])]
            )),
            15500
        );
        assert_eq!(
            pull(doc(
                vec![],
                vec![
                    person(vec![Activity::Busy], false, &[]),
                    person(vec![], true, &[])
                ]
            )),
            7500
        );
        // A closed softphone tuple beside the bridge's open one does not count.
        let mut closed_with_activity = tuple(Some(Basic::Closed));
        closed_with_activity.activities.push(Activity::Away);
        assert_eq!(
            pull(doc(
                vec![closed_with_activity, tuple(Some(Basic::Open))],
                vec![]
            )),
            3500
        );
    }

    #[test]
    fn pull_picks_the_english_note() {
        let m = Mapping::default();
        let open = || vec![tuple(Some(Basic::Open))];
        let d = doc(
            open(),
            vec![person(
                vec![Activity::Busy],
                false,
                &[
                    (Some("es-ES"), "En una llamada"),
                    (Some("EN-gb"), " On a call "),
                ],
            )],
        );
        assert_eq!(m.pull(&d), (6500, Some("On a call".into())));
        let d = doc(
            open(),
            vec![person(
                vec![],
                false,
                &[(Some("es-ES"), "Hola"), (None, "Hello")],
            )],
        );
        assert_eq!(m.pull(&d).1.as_deref(), Some("Hello"));
        let d = doc(
            open(),
            vec![person(
                vec![],
                false,
                &[(Some("es-ES"), "Hola"), (Some("eng"), "x")],
            )],
        );
        assert_eq!(m.pull(&d).1.as_deref(), Some("Hola"));
        let d = doc(
            open(),
            vec![person(
                vec![Activity::Unknown, Activity::Meal],
                false,
                &[(None, "  ")],
            )],
        );
        assert_eq!(m.pull(&d).1.as_deref(), Some("meal"));
        let d = doc(
            open(),
            vec![person(vec![Activity::Other(" Lunch ".into())], false, &[])],
        );
        assert_eq!(m.pull(&d), (3500, Some("Lunch".into())));
        let mut d = doc(open(), vec![]);
        d.notes.push(Note {
            lang: None,
            text: "document note".into(),
        });
        assert_eq!(m.pull(&d).1.as_deref(), Some("document note"));
    }
}
