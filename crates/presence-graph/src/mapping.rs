//! How SfB presence maps onto Microsoft Graph presence, both ways.
//!
//! ## Push (bridge → Teams), by SfB availability class
//!
//! | SfB class (availability) | default | with `preferred-presence = true` |
//! |---|---|---|
//! | None (0) | nothing is sent | nothing is sent |
//! | Online (1–4499) | session Available/Available | same |
//! | IdleOnline (4500–5999) | session Available/Available | same |
//! | Busy (6000–7499) | session Busy/InACall | preferred Busy/Busy |
//! | IdleBusy (7500–8999) | session Busy/InACall | preferred Busy/Busy |
//! | DoNotDisturb (9000–11999) | session DoNotDisturb/Presenting | preferred DoNotDisturb/DoNotDisturb |
//! | BeRightBack (12000–14999) | session Away/Away | preferred BeRightBack/BeRightBack |
//! | Away (15000–17999) | session Away/Away | same |
//! | Offline (18000, e.g. logged out) | **clear**: `clearPresence` ends the bridge's session (the user's own Teams presence shows again) and the status message the bridge set is cleared | same |
//!
//! A *session* pair is written with `setPresence` (the bridge's presence session, refreshed
//! before it runs out); a *preferred* pair with `setUserPreferredPresence`, which overrides
//! every session and the user's own choice (so it is used only on request). Overrides: the
//! `[teams.classes]` table replaces a class's pair, the `[teams.states]` table the pair of
//! one aggregated state ID; a per-state override wins over a per-class one.
//!
//! Settable session pairs: Available/Available, Busy/InACall, Busy/InAConferenceCall,
//! Away/Away, DoNotDisturb/Presenting. Preferred pairs: Available/Available, Busy/Busy,
//! DoNotDisturb/DoNotDisturb, BeRightBack/BeRightBack, Away/Away, Offline/OffWork. A pair that
//! is both (Available/Available, Away/Away) is written as a session.
//!
//! ## Pull (Teams → bridge), onto the SfB scale
//!
//! | Graph availability | SfB availability |
//! |---|---|
//! | Available | 3500 |
//! | AvailableIdle | 5000 |
//! | Busy | 6500 |
//! | BusyIdle | 7500 |
//! | DoNotDisturb | 9500 |
//! | BeRightBack | 12500 |
//! | Away | 15500 |
//! | Offline | 18000 |
//! | PresenceUnknown, or any value this version does not know (`Focusing`, ...) | no update |

use std::collections::HashMap;
use std::fmt;

use presence_model::{AggregatedStateId, AvailabilityClass, Lcid, Publication};

/// An availability/activity pair as Graph writes it (`Busy`/`InACall`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pair {
    /// The availability.
    pub availability: &'static str,
    /// The activity.
    pub activity: &'static str,
}

impl Pair {
    const fn new(availability: &'static str, activity: &'static str) -> Pair {
        Pair {
            availability,
            activity,
        }
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.availability, self.activity)
    }
}

/// The pairs `setPresence` accepts (an application's presence session).
pub const SESSION_PAIRS: [Pair; 5] = [
    Pair::new("Available", "Available"),
    Pair::new("Busy", "InACall"),
    Pair::new("Busy", "InAConferenceCall"),
    Pair::new("Away", "Away"),
    Pair::new("DoNotDisturb", "Presenting"),
];

/// The pairs `setUserPreferredPresence` accepts.
pub const PREFERRED_PAIRS: [Pair; 6] = [
    Pair::new("Available", "Available"),
    Pair::new("Busy", "Busy"),
    Pair::new("DoNotDisturb", "DoNotDisturb"),
    Pair::new("BeRightBack", "BeRightBack"),
    Pair::new("Away", "Away"),
    Pair::new("Offline", "OffWork"),
];

const AVAILABLE: Pair = SESSION_PAIRS[0];
const IN_A_CALL: Pair = SESSION_PAIRS[1];
const AWAY: Pair = SESSION_PAIRS[3];
const PRESENTING: Pair = SESSION_PAIRS[4];
const PREFERRED_BUSY: Pair = PREFERRED_PAIRS[1];
const PREFERRED_DND: Pair = PREFERRED_PAIRS[2];
const PREFERRED_BRB: Pair = PREFERRED_PAIRS[3];

/// What to do on Graph for one publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Send nothing (availability 0).
    Nothing,
    /// End the bridge's session (`clearPresence`) and the status message it set.
    Clear,
    /// The bridge's presence session (`setPresence`).
    Session(Pair),
    /// The user's preferred presence (`setUserPreferredPresence`).
    Preferred(Pair),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Nothing => f.write_str("nothing"),
            Target::Clear => f.write_str("clear"),
            Target::Session(pair) => write!(f, "session {pair}"),
            Target::Preferred(pair) => write!(f, "preferred {pair}"),
        }
    }
}

/// Reads an override `"Availability/Activity"`: a settable session pair, or (when
/// `preferred` is on) a preferred pair. Names compare case-insensitively.
pub fn parse_target(text: &str, preferred: bool) -> Result<Target, String> {
    let Some((availability, activity)) = text.trim().split_once('/') else {
        return Err(format!(
            "`{text}` is not a pair: write `Availability/Activity`, e.g. `Busy/InACall`"
        ));
    };
    let (availability, activity) = (availability.trim(), activity.trim());
    let same = |pair: &&Pair| {
        pair.availability.eq_ignore_ascii_case(availability)
            && pair.activity.eq_ignore_ascii_case(activity)
    };
    if let Some(pair) = SESSION_PAIRS.iter().find(same) {
        return Ok(Target::Session(*pair));
    }
    if let Some(pair) = PREFERRED_PAIRS.iter().find(same) {
        return if preferred {
            Ok(Target::Preferred(*pair))
        } else {
            Err(format!(
                "`{text}` is a preferred-presence pair: set `preferred-presence = true` to use it, or pick a session pair ({})",
                list(&SESSION_PAIRS)
            ))
        };
    }
    let mut accepted = list(&SESSION_PAIRS);
    if preferred {
        accepted = format!(
            "{accepted}, or a preferred pair ({})",
            list(&PREFERRED_PAIRS)
        );
    }
    Err(format!(
        "`{text}` cannot be set through Graph: use one of {accepted}"
    ))
}

fn list(pairs: &[Pair]) -> String {
    pairs
        .iter()
        .map(Pair::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The push direction: SfB publication → Graph write, with the configured overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    classes: [Target; 9],
    states: HashMap<AggregatedStateId, Target>,
    lcid: Option<Lcid>,
}

fn slot(class: AvailabilityClass) -> usize {
    AvailabilityClass::ALL
        .iter()
        .position(|c| *c == class)
        .unwrap_or(0)
}

impl Mapping {
    /// The default table; `preferred` turns on preferred presence for the Busy, IdleBusy,
    /// DoNotDisturb and BeRightBack classes. Status messages from `lcid`'s activity text
    /// (`None`: no status messages).
    pub fn new(preferred: bool, lcid: Option<Lcid>) -> Mapping {
        let busy = if preferred {
            Target::Preferred(PREFERRED_BUSY)
        } else {
            Target::Session(IN_A_CALL)
        };
        let classes = [
            Target::Nothing,
            Target::Session(AVAILABLE),
            Target::Session(AVAILABLE),
            busy,
            busy,
            if preferred {
                Target::Preferred(PREFERRED_DND)
            } else {
                Target::Session(PRESENTING)
            },
            if preferred {
                Target::Preferred(PREFERRED_BRB)
            } else {
                Target::Session(AWAY)
            },
            Target::Session(AWAY),
            Target::Clear,
        ];
        Mapping {
            classes,
            states: HashMap::new(),
            lcid,
        }
    }

    /// Replaces a class's target.
    pub fn set_class(&mut self, class: AvailabilityClass, target: Target) {
        self.classes[slot(class)] = target;
    }

    /// Sets the target of one aggregated state ID (wins over its class).
    pub fn set_state(&mut self, id: AggregatedStateId, target: Target) {
        self.states.insert(id, target);
    }

    /// The target of a class (without state overrides).
    pub fn class(&self, class: AvailabilityClass) -> Target {
        self.classes[slot(class)]
    }

    /// What to write for a publication: its state's override, else its class's target.
    pub fn push(&self, publication: &Publication) -> Target {
        if let Some(target) = self.states.get(publication.id.as_str()) {
            return *target;
        }
        self.class(publication.presence.availability.class())
    }

    /// The status message a publication asks for: the activity text of the configured LCID
    /// (`None`: no text for that LCID, or status messages are off).
    pub fn status_message<'p>(&self, publication: &'p Publication) -> Option<&'p str> {
        let lcid = self.lcid?;
        publication
            .presence
            .activities
            .get(lcid)
            .map(|text| text.as_str())
            .filter(|text| !text.is_empty())
    }

    /// Whether status messages are managed at all.
    pub fn manages_status_messages(&self) -> bool {
        self.lcid.is_some()
    }
}

/// The pull direction: a Graph availability → an SfB availability number; `None` for
/// `PresenceUnknown` and values this version does not know.
pub fn pull(availability: &str) -> Option<u16> {
    Some(match availability {
        "Available" => 3500,
        "AvailableIdle" => 5000,
        "Busy" => 6500,
        "BusyIdle" => 7500,
        "DoNotDisturb" => 9500,
        "BeRightBack" => 12500,
        "Away" => 15500,
        "Offline" => 18000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_model::{Activities, ActivityText, Availability, Presence};

    fn publication(id: &str, availability: u32) -> Publication {
        Publication {
            id: AggregatedStateId::new(id).unwrap(),
            presence: Presence {
                availability: Availability::new(availability).unwrap(),
                activities: Activities::new(vec![(Lcid::EN_US, ActivityText::new("On a call"))])
                    .unwrap(),
            },
        }
    }

    #[test]
    fn every_class_maps_both_ways() {
        let m = Mapping::new(false, Some(Lcid::EN_US));
        let cases = [
            (0, Target::Nothing, None),
            (
                3500,
                Target::Session(AVAILABLE),
                Some(AvailabilityClass::Online),
            ),
            (
                5000,
                Target::Session(AVAILABLE),
                Some(AvailabilityClass::Online),
            ),
            (
                6500,
                Target::Session(IN_A_CALL),
                Some(AvailabilityClass::Busy),
            ),
            (
                7500,
                Target::Session(IN_A_CALL),
                Some(AvailabilityClass::Busy),
            ),
            (
                9500,
                Target::Session(PRESENTING),
                Some(AvailabilityClass::DoNotDisturb),
            ),
            (12500, Target::Session(AWAY), Some(AvailabilityClass::Away)),
            (15500, Target::Session(AWAY), Some(AvailabilityClass::Away)),
            (18000, Target::Clear, None),
        ];
        for (availability, target, shown) in cases {
            let p = publication("S", availability);
            assert_eq!(m.push(&p), target, "{availability}");
            // What Teams then shows, read back through the pull table.
            let back = match target {
                Target::Session(pair) | Target::Preferred(pair) => {
                    pull(pair.availability).map(|a| Availability::new(a.into()).unwrap().class())
                }
                _ => None,
            };
            assert_eq!(back, shown, "{availability}");
        }
        for (graph, sfb) in [
            ("Available", 3500),
            ("AvailableIdle", 5000),
            ("Busy", 6500),
            ("BusyIdle", 7500),
            ("DoNotDisturb", 9500),
            ("BeRightBack", 12500),
            ("Away", 15500),
            ("Offline", 18000),
        ] {
            assert_eq!(pull(graph), Some(sfb), "{graph}");
        }
        for unknown in ["PresenceUnknown", "Focusing", "", "available"] {
            assert_eq!(pull(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn preferred_presence_classes() {
        let m = Mapping::new(true, None);
        assert_eq!(
            m.push(&publication("S", 12500)),
            Target::Preferred(PREFERRED_BRB)
        );
        assert_eq!(
            m.push(&publication("S", 7000)),
            Target::Preferred(PREFERRED_BUSY)
        );
        assert_eq!(
            m.push(&publication("S", 9000)),
            Target::Preferred(PREFERRED_DND)
        );
        assert_eq!(m.push(&publication("S", 18000)), Target::Clear);
        assert_eq!(m.push(&publication("S", 3000)), Target::Session(AVAILABLE));
        assert_eq!(m.push(&publication("S", 16000)), Target::Session(AWAY));
        assert_eq!(m.status_message(&publication("S", 6500)), None);
    }

    #[test]
    fn state_overrides_win_over_class_overrides() {
        let mut m = Mapping::new(false, Some(Lcid::EN_US));
        m.set_class(
            AvailabilityClass::Busy,
            parse_target("busy/inaconferencecall", false).unwrap(),
        );
        m.set_state(
            AggregatedStateId::new("ACW").unwrap(),
            parse_target("DoNotDisturb/Presenting", false).unwrap(),
        );
        assert_eq!(
            m.push(&publication("INCALL", 6500)),
            Target::Session(SESSION_PAIRS[2])
        );
        assert_eq!(
            m.push(&publication("ACW", 6500)),
            Target::Session(PRESENTING)
        );
        assert_eq!(
            m.status_message(&publication("ACW", 6500)),
            Some("On a call")
        );
    }

    #[test]
    fn overrides_must_be_settable() {
        assert!(
            parse_target("Busy", false)
                .unwrap_err()
                .contains("not a pair")
        );
        let err = parse_target("Busy/Busy", false).unwrap_err();
        assert!(err.contains("preferred-presence = true"), "{err}");
        assert_eq!(
            parse_target("Busy/Busy", true).unwrap(),
            Target::Preferred(PREFERRED_BUSY)
        );
        assert_eq!(
            parse_target("Away/Away", true).unwrap(),
            Target::Session(AWAY)
        );
        let err = parse_target("Focusing/Focusing", true).unwrap_err();
        assert!(
            err.contains("Busy/InACall") && err.contains("Offline/OffWork"),
            "{err}"
        );
    }
}
