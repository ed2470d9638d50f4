//! # presence-push
//!
//! Push mode: the contact centre's (agent state, device state) becomes the user's
//! Skype for Business presence.
//!
//! - [`PushTable`] compiles a profile's `aggregated-states` and its agent-presence map into a
//!   15-row table: for each combination the [`Publication`] (aggregated state ID,
//!   availability, activity texts) or nothing. Mapping an event is an index computation and
//!   one array load. Combinations that share an ID share one `Arc<Publication>`.
//! - [`Publisher`] decides what to send, per user, as a deterministic state machine with no
//!   clock of its own (time comes in as `now` arguments):
//!   - it publishes only when what the user should show differs from what was last
//!     confirmed (the ID *and* its entry, so a reload that edits an entry republishes);
//!   - at most one publication per user is in flight; changes that arrive meanwhile only
//!     replace the user's target, so when the transport is slow the latest state is sent
//!     and stale ones never queue (latest wins);
//!   - a failed publication is retried after a capped exponential back-off, or parked until
//!     the next [`Publisher::resync`] (for "not connected");
//!   - [`Publisher::resync`] (after a reconnect) makes every user's current target due again.
//!
//! A combination the profile leaves out publishes nothing: the user keeps showing what was
//! published last.
//!
//! ```
//! use presence_map::AgentPresenceMap;
//! use presence_model::{AgentState, AggregatedStates, DeviceState};
//! use presence_push::{Publisher, PushTable};
//!
//! let map = AgentPresenceMap::parse(br#"
//!   <agentStates xmlns="http://schemas.genesys.com/09/2014/mslyncserver/agentStates">
//!     <agentState ID="IDLE_READY" availability="3501"><activity LCID="1033">I am available</activity></agentState>
//!     <agentState ID="INCALL" availability="7001"><activity LCID="1033">In a call</activity></agentState>
//!   </agentStates>"#)?.map;
//! let mut states = AggregatedStates::default();
//! states.set("2".parse()?, "IDLE_READY".parse()?)?; // Ready / Idle
//! states.set("7".parse()?, "INCALL".parse()?)?;     // Ready / Busy
//! let table = PushTable::compile(&states, &map)?;
//!
//! let mut publisher = Publisher::new(Default::default());
//! // The agent becomes ready, then takes a call before the first publication went out.
//! publisher.set("5001", table.get(AgentState::Ready, DeviceState::Idle).cloned());
//! publisher.set("5001", table.get(AgentState::Ready, DeviceState::Busy).cloned());
//! let (ticket, publication) = publisher.poll_publish().expect("one publication is due");
//! assert_eq!(publication.id.as_str(), "INCALL"); // only the latest state is sent
//! assert_eq!(publication.presence.availability.get(), 7001);
//! assert!(publisher.poll_publish().is_none());
//! publisher.complete(&ticket);
//! assert_eq!(publisher.published(&"5001").map(|p| p.id.as_str()), Some("INCALL"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod publisher;

use std::collections::HashMap;
use std::sync::Arc;

use presence_map::AgentPresenceMap;
use presence_model::{AgentState, AggregatedStateId, AggregatedStates, DeviceState, StateIndex};

pub use publisher::{Publisher, PublisherConfig, Ticket};

/// What one combination publishes: the aggregated state ID and its entry in the map
/// (defined in presence-model, where the transports take it from).
pub use presence_model::Publication;

/// A push profile compiled for constant-time mapping: 15 rows, one per combination.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushTable {
    rows: [Option<Arc<Publication>>; StateIndex::COUNT],
}

impl PushTable {
    /// Compiles `aggregated-states` against a map. Every ID the table uses must be in the map.
    pub fn compile(states: &AggregatedStates, map: &AgentPresenceMap) -> Result<Self, PushError> {
        let mut shared: HashMap<&str, Arc<Publication>> = HashMap::new();
        let mut rows: [Option<Arc<Publication>>; StateIndex::COUNT] = Default::default();
        for (index, id) in states.iter() {
            let Some(id) = id else { continue };
            let publication = match shared.get(id.as_str()) {
                Some(publication) => Arc::clone(publication),
                None => {
                    let entry = map
                        .get(id.as_str())
                        .ok_or_else(|| PushError::MissingState {
                            index: index.get(),
                            id: id.clone(),
                        })?;
                    let publication = Arc::new(Publication {
                        id: id.clone(),
                        presence: entry.presence.clone(),
                    });
                    shared.insert(id.as_str(), Arc::clone(&publication));
                    publication
                }
            };
            rows[index.slot()] = Some(publication);
        }
        Ok(PushTable { rows })
    }

    /// What a combination publishes, if anything.
    #[inline]
    pub fn get(&self, agent: AgentState, device: DeviceState) -> Option<&Arc<Publication>> {
        self.rows[StateIndex::of(agent, device).slot()].as_ref()
    }

    /// What a combination publishes, by index.
    #[inline]
    pub fn by_index(&self, index: StateIndex) -> Option<&Arc<Publication>> {
        self.rows[index.slot()].as_ref()
    }

    /// The 15 rows, index 1 first.
    pub fn rows(&self) -> impl Iterator<Item = (StateIndex, Option<&Arc<Publication>>)> {
        StateIndex::ALL
            .into_iter()
            .zip(self.rows.iter().map(Option::as_ref))
    }
}

/// Why a push profile cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// `aggregated-states` names an ID the map does not define.
    #[error(
        "aggregated-states maps index {index} to `{id}`, which the agent-presence map does not define"
    )]
    MissingState {
        /// The combination index.
        index: u8,
        /// The missing ID.
        id: AggregatedStateId,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The seed's example profile: its 15-row table and its final XML map.
    fn seed_table() -> PushTable {
        let map = AgentPresenceMap::parse(include_bytes!("../../../examples/agent-states.xml"))
            .expect("the seed map is valid")
            .map;
        let mut states = AggregatedStates::default();
        for (index, (_, _, _, id, _)) in StateIndex::ALL.into_iter().zip(SEED) {
            states
                .set(index, AggregatedStateId::new(id).unwrap())
                .unwrap();
        }
        PushTable::compile(&states, &map).expect("every ID is in the map")
    }

    /// The seed's table: (index, agent, device, aggregated ID, availability).
    const SEED: [(u8, &str, &str, &str, u16); 15] = [
        (1, "Logout", "Idle", "IDLE_OUT", 18000),
        (2, "Ready", "Idle", "IDLE_READY", 3501),
        (3, "NotReady", "Idle", "IDLE_NOTREADY", 6001),
        (4, "ACW", "Idle", "IDLE_ACW", 6001),
        (5, "Walk_Away", "Idle", "IDLE_AWAY", 4501),
        (6, "Logout", "Busy", "INCALL", 7001),
        (7, "Ready", "Busy", "INCALL", 7001),
        (8, "NotReady", "Busy", "INCALL", 7001),
        (9, "ACW", "Busy", "INCALL", 7001),
        (10, "Walk_Away", "Busy", "INCALL", 7001),
        (11, "Logout", "OOS", "OOS", 18000),
        (12, "Ready", "OOS", "OOS", 18000),
        (13, "NotReady", "OOS", "OOS", 18000),
        (14, "ACW", "OOS", "OOS", 18000),
        (15, "Walk_Away", "OOS", "OOS", 18000),
    ];

    #[test]
    fn every_combination_maps_as_the_seed_table_says() {
        let table = seed_table();
        for (index, agent, device, id, availability) in SEED {
            let agent: AgentState = agent.parse().unwrap();
            let device: DeviceState = device.parse().unwrap();
            let publication = table.get(agent, device).unwrap();
            assert_eq!(publication.id.as_str(), id, "row {index}");
            assert_eq!(
                publication.presence.availability.get(),
                availability,
                "row {index}"
            );
            let by_index = table
                .by_index(StateIndex::new(index.into()).unwrap())
                .unwrap();
            assert!(Arc::ptr_eq(publication, by_index));
        }
        // Rows sharing an ID share one publication.
        let a = table.by_index(StateIndex::new(6).unwrap()).unwrap();
        let b = table.by_index(StateIndex::new(10).unwrap()).unwrap();
        assert!(Arc::ptr_eq(a, b));
    }

    #[test]
    fn missing_id_and_left_out_rows() {
        let map = AgentPresenceMap::parse(
            br#"<agentStates xmlns="http://schemas.genesys.com/09/2014/mslyncserver/agentStates"><agentState ID="A" availability="3500"/></agentStates>"#,
        )
        .unwrap()
        .map;
        let mut states = AggregatedStates::default();
        states
            .set(
                StateIndex::new(2).unwrap(),
                AggregatedStateId::new("A").unwrap(),
            )
            .unwrap();
        let table = PushTable::compile(&states, &map).unwrap();
        assert_eq!(table.rows().filter(|(_, p)| p.is_some()).count(), 1);
        assert!(table.get(AgentState::Logout, DeviceState::Idle).is_none());

        states
            .set(
                StateIndex::new(7).unwrap(),
                AggregatedStateId::new("B").unwrap(),
            )
            .unwrap();
        let err = PushTable::compile(&states, &map).unwrap_err();
        assert_eq!(
            err,
            PushError::MissingState {
                index: 7,
                id: AggregatedStateId::new("B").unwrap()
            }
        );
        assert!(err.to_string().contains("`B`") && err.to_string().contains("index 7"));
    }

    proptest! {
        /// Any assignment of IDs to indexes maps each combination to exactly its ID's entry.
        #[test]
        fn random_tables_map_as_assigned(assign in proptest::collection::vec(proptest::option::of(0usize..4), 15)) {
            let ids = ["S0", "S1", "S2", "S3"];
            let xml = format!(
                r#"<agentStates xmlns="http://schemas.genesys.com/09/2014/mslyncserver/agentStates">{}</agentStates>"#,
                ids.iter().enumerate().map(|(i, id)| format!(r#"<agentState ID="{id}" availability="{}"/>"#, 3000 + i)).collect::<String>()
            );
            let map = AgentPresenceMap::parse(xml.as_bytes()).unwrap().map;
            let mut states = AggregatedStates::default();
            for (index, choice) in StateIndex::ALL.into_iter().zip(&assign) {
                if let Some(i) = choice {
                    states.set(index, AggregatedStateId::new(ids[*i]).unwrap()).unwrap();
                }
            }
            let table = PushTable::compile(&states, &map).unwrap();
            for agent in AgentState::ALL {
                for device in DeviceState::ALL {
                    let index = StateIndex::of(agent, device);
                    let got = table.get(agent, device).map(|p| (p.id.as_str().to_owned(), p.presence.availability.get()));
                    let want = assign[index.slot()].map(|i| (ids[i].to_owned(), 3000 + i as u16));
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
