//! The parsed map: entries in file order and an index by ID.

use std::collections::HashMap;

use presence_model::{AggregatedStateId, Presence};

use crate::{Location, MAX_ACTIVITIES_PER_STATE, MapError, MapWarning, ParseOptions};

/// One `<agentState>`: its ID, what it publishes, and where it was written.
///
/// The derived equality compares all three fields, the location included; the equality of
/// [`AgentPresenceMap`] ignores locations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StateEntry {
    /// The aggregated state ID (`INCALL`).
    pub id: AggregatedStateId,
    /// The availability and the activity texts, in file order.
    pub presence: Presence,
    /// Where the `<agentState>` start tag begins (its `<`).
    pub location: Location,
}

/// A validated agent-presence map: the states in file order, IDs unique, each with at most
/// [`MAX_ACTIVITIES_PER_STATE`] activities (LCIDs unique within a state) whose texts XML
/// 1.0 can carry.
///
/// Equality (`==`) compares the entries' IDs and presences in order and ignores their
/// locations, so `AgentPresenceMap::parse(map.to_xml())` equals `map`.
#[derive(Clone, Debug, Default)]
pub struct AgentPresenceMap {
    entries: Vec<StateEntry>,
    index: HashMap<AggregatedStateId, usize>,
}

/// The result of a successful parse: the map and what was ignored on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The map.
    pub map: AgentPresenceMap,
    /// Unknown elements, unknown attributes and stray text that were ignored, in file order.
    pub warnings: Vec<MapWarning>,
}

impl AgentPresenceMap {
    /// Parses and validates a map with the default [`ParseOptions`] (at most
    /// [`crate::DEFAULT_MAX_SIZE`] bytes).
    pub fn parse(xml: &[u8]) -> Result<Parsed, MapError> {
        Self::parse_with(xml, &ParseOptions::default())
    }

    /// Parses and validates a map with the given options.
    pub fn parse_with(xml: &[u8], options: &ParseOptions) -> Result<Parsed, MapError> {
        crate::parse::parse(xml, options)
    }

    /// A map from entries built in code. Checks what parsing checks: IDs unique, at most
    /// [`MAX_ACTIVITIES_PER_STATE`] activities per state, and texts that XML 1.0 can carry
    /// (no control characters other than tab, line feed and carriage return, no U+FFFE or
    /// U+FFFF). Errors are reported at the entries' locations.
    pub fn from_entries(entries: Vec<StateEntry>) -> Result<Self, MapError> {
        for entry in &entries {
            check_entry(entry)?;
        }
        let mut index = HashMap::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if let Some(&first) = index.get(entry.id.as_str()) {
                let first = entries
                    .get(first)
                    .map_or(Location::START, |e: &StateEntry| e.location);
                return Err(MapError::DuplicateStateId {
                    location: entry.location,
                    id: entry.id.to_string(),
                    first,
                });
            }
            index.insert(entry.id.clone(), i);
        }
        Ok(AgentPresenceMap { entries, index })
    }

    /// Builds a map from entries that the parser has already checked.
    pub(crate) fn from_checked(
        entries: Vec<StateEntry>,
        index: HashMap<AggregatedStateId, usize>,
    ) -> Self {
        AgentPresenceMap { entries, index }
    }

    /// The state with this ID (IDs are case-sensitive).
    pub fn get(&self, id: &str) -> Option<&StateEntry> {
        self.index.get(id).and_then(|&i| self.entries.get(i))
    }

    /// Whether a state with this ID exists.
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// All states in file order.
    pub fn entries(&self) -> &[StateEntry] {
        &self.entries
    }

    /// All states in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, StateEntry> {
        self.entries.iter()
    }

    /// The IDs in file order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &AggregatedStateId> {
        self.entries.iter().map(|e| &e.id)
    }

    /// The number of states.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no state.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the entries out, in file order.
    pub fn into_entries(self) -> Vec<StateEntry> {
        self.entries
    }
}

impl PartialEq for AgentPresenceMap {
    /// Compares IDs and presences in order; locations are ignored.
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| a.id == b.id && a.presence == b.presence)
    }
}

impl Eq for AgentPresenceMap {}

impl<'m> IntoIterator for &'m AgentPresenceMap {
    type Item = &'m StateEntry;
    type IntoIter = std::slice::Iter<'m, StateEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

fn check_entry(entry: &StateEntry) -> Result<(), MapError> {
    let activities = &entry.presence.activities;
    if activities.len() > MAX_ACTIVITIES_PER_STATE {
        return Err(MapError::TooManyActivities {
            location: entry.location,
            state: entry.id.to_string(),
            limit: MAX_ACTIVITIES_PER_STATE,
        });
    }
    for (lcid, text) in activities.iter() {
        if let Some(c) = text.as_str().chars().find(|&c| !crate::is_xml_char(c)) {
            return Err(MapError::UnwritableText {
                location: entry.location,
                state: entry.id.to_string(),
                lcid: lcid.get(),
                code: u32::from(c),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_model::{Activities, ActivityText, Availability, Lcid};

    fn entry(id: &str, availability: u32, texts: &[(u32, &str)], line: u32) -> StateEntry {
        StateEntry {
            id: AggregatedStateId::new(id).unwrap(),
            presence: Presence {
                availability: Availability::new(availability).unwrap(),
                activities: Activities::new(
                    texts
                        .iter()
                        .map(|&(l, t)| (Lcid::new(l), ActivityText::new(t)))
                        .collect(),
                )
                .unwrap(),
            },
            location: Location::new(line, 3),
        }
    }

    #[test]
    fn from_entries_indexes_and_refuses_duplicates() {
        let map = AgentPresenceMap::from_entries(vec![
            entry("A", 3500, &[(1033, "a")], 1),
            entry("B", 6000, &[], 2),
        ])
        .unwrap();
        assert_eq!(map.len(), 2);
        assert!(!map.is_empty());
        assert_eq!(map.get("B").unwrap().presence.availability.get(), 6000);
        assert!(map.get("b").is_none());
        assert!(map.contains("A"));
        assert_eq!(
            map.ids().map(|id| id.as_str()).collect::<Vec<_>>(),
            ["A", "B"]
        );

        let err = AgentPresenceMap::from_entries(vec![
            entry("A", 3500, &[], 1),
            entry("A", 3500, &[], 7),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`A`") && text.contains("line 1") && text.contains("line 7"));
        assert_eq!(err.location(), Some(Location::new(7, 3)));
    }

    #[test]
    fn from_entries_refuses_unwritable_text_and_too_many_activities() {
        let err = AgentPresenceMap::from_entries(vec![entry("A", 1, &[(1033, "a\u{1}b")], 4)])
            .unwrap_err();
        assert!(err.to_string().contains("U+0001"), "{err}");

        let many: Vec<(u32, String)> = (0..=MAX_ACTIVITIES_PER_STATE as u32)
            .map(|l| (l, format!("t{l}")))
            .collect();
        let texts: Vec<(u32, &str)> = many.iter().map(|(l, t)| (*l, t.as_str())).collect();
        let err = AgentPresenceMap::from_entries(vec![entry("A", 1, &texts, 4)]).unwrap_err();
        assert!(matches!(err, MapError::TooManyActivities { .. }), "{err}");
    }

    #[test]
    fn equality_ignores_locations() {
        let a = AgentPresenceMap::from_entries(vec![entry("A", 1, &[(1033, "x")], 1)]).unwrap();
        let b = AgentPresenceMap::from_entries(vec![entry("A", 1, &[(1033, "x")], 9)]).unwrap();
        let c = AgentPresenceMap::from_entries(vec![entry("A", 2, &[(1033, "x")], 1)]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a.entries()[0], b.entries()[0]);
        assert_ne!(a, AgentPresenceMap::default());
    }
}
