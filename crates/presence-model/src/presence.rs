//! What is published for a user (availability + activity texts) and the `aggregated-states`
//! table that selects it.

use std::fmt;
use std::sync::Arc;

use crate::{ActivityText, AggregatedStateId, Availability, Lcid, ModelError, StateIndex};

/// Activity texts by locale: at most one text per LCID, kept in the order they were given.
///
/// ```
/// use presence_model::{Activities, ActivityText, Lcid};
/// let texts = Activities::new(vec![
///     (Lcid::EN_US, ActivityText::new("In a call")),
///     (Lcid::new(3082), ActivityText::new("En una llamada")),
/// ])?;
/// assert_eq!(texts.get(Lcid::new(3082)).map(|t| t.as_str()), Some("En una llamada"));
/// assert!(Activities::new(vec![
///     (Lcid::EN_US, ActivityText::new("a")),
///     (Lcid::EN_US, ActivityText::new("b")),
/// ]).is_err());
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Activities(Arc<[(Lcid, ActivityText)]>);

impl Activities {
    /// Texts by LCID; a repeated LCID is an error.
    pub fn new(texts: Vec<(Lcid, ActivityText)>) -> Result<Self, ModelError> {
        for (i, (lcid, _)) in texts.iter().enumerate() {
            if texts[..i].iter().any(|(seen, _)| seen == lcid) {
                return Err(ModelError::DuplicateLcid { lcid: lcid.get() });
            }
        }
        Ok(Activities(texts.into()))
    }

    /// No texts.
    pub fn empty() -> Self {
        Activities::default()
    }

    /// The text for one LCID.
    pub fn get(&self, lcid: Lcid) -> Option<&ActivityText> {
        self.0.iter().find(|(l, _)| *l == lcid).map(|(_, t)| t)
    }

    /// All texts in their order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &(Lcid, ActivityText)> {
        self.0.iter()
    }

    /// The number of texts.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A presence as the push mode publishes it: an availability and activity texts by locale.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Presence {
    /// The availability number.
    pub availability: Availability,
    /// The activity texts, one per LCID.
    pub activities: Activities,
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.availability, self.availability.class())?;
        if let Some((_, text)) = self.activities.iter().next() {
            write!(f, " \"{text}\"")?;
        }
        Ok(())
    }
}

/// What the bridge publishes for a user in push mode: an aggregated state ID (`INCALL`) and
/// the presence its entry in the agent-presence map gives. Transports get the ID too, so a
/// platform whose states are coarser than SfB's availability classes (Teams) can map by ID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Publication {
    /// The aggregated state ID.
    pub id: AggregatedStateId,
    /// The availability and activity texts of that ID's entry.
    pub presence: Presence,
}

/// The `aggregated-states` table: for each of the 15 combinations an aggregated state ID,
/// or none (that combination publishes nothing).
///
/// ```
/// use presence_model::{AggregatedStateId, AggregatedStates, StateIndex};
/// let mut table = AggregatedStates::default();
/// table.set(StateIndex::new(6)?, AggregatedStateId::new("INCALL")?)?;
/// assert_eq!(table.get(StateIndex::new(6)?).map(|id| id.as_str()), Some("INCALL"));
/// assert!(table.set(StateIndex::new(6)?, AggregatedStateId::new("OOS")?).is_err());
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AggregatedStates([Option<AggregatedStateId>; StateIndex::COUNT]);

impl AggregatedStates {
    /// Sets the ID of one combination; setting an index twice is an error.
    pub fn set(&mut self, index: StateIndex, id: AggregatedStateId) -> Result<(), ModelError> {
        let slot = &mut self.0[index.slot()];
        if slot.is_some() {
            return Err(ModelError::DuplicateIndex { index: index.get() });
        }
        *slot = Some(id);
        Ok(())
    }

    /// The ID of one combination.
    pub fn get(&self, index: StateIndex) -> Option<&AggregatedStateId> {
        self.0[index.slot()].as_ref()
    }

    /// All 15 combinations with their IDs, index 1 first.
    pub fn iter(&self) -> impl Iterator<Item = (StateIndex, Option<&AggregatedStateId>)> {
        StateIndex::ALL
            .into_iter()
            .zip(self.0.iter().map(Option::as_ref))
    }

    /// The combinations that have no ID.
    pub fn missing(&self) -> impl Iterator<Item = StateIndex> + '_ {
        self.iter().filter(|(_, id)| id.is_none()).map(|(i, _)| i)
    }
}
