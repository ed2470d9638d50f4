//! # presence-model
//!
//! The value types every other presence-bridge crate speaks, with no I/O and no clock:
//!
//! - [`Availability`] (an SfB availability number, `0..=18000`), its [`AvailabilityClass`]
//!   and [`AvailabilityRange`] (`N-M`, inclusive). Configuration values above 18000 are
//!   errors; wire values above 18000 are clamped ([`Availability::from_wire`]).
//! - [`AgentState`] × [`DeviceState`] → [`StateIndex`] `1..=15`, numbered device-major as the
//!   Genesys table (`index = 5 × device + agent + 1`), in both directions.
//! - [`DndState`], [`Lcid`], [`ActivityText`], [`Activities`], [`Presence`].
//! - Validated identifiers: [`DnNumber`], [`SipUri`] (lower-cased), [`AggregatedStateId`],
//!   and the [`AggregatedStates`] table.
//! - Who a user is on a presence platform: [`UserId`] = a [`Platform`] (`sfb`, `teams`,
//!   `simple`, ...) and a [`UserAddress`] ([`SipUri`], [`Upn`] or [`EntraId`]); and what is
//!   published for a user, a [`Publication`] (an aggregated state ID and its [`Presence`]).
//! - [`random`]: a seeded generator and capped back-off with jitter, for the deterministic
//!   state machines above this crate.
//!
//! Every parser here returns a [`ModelError`] that names the offending token and says what
//! would be valid; none of them panics on any input.
//!
//! ```
//! use presence_model::{AgentState, Availability, DeviceState, StateIndex};
//! let index = StateIndex::of("acw".parse::<AgentState>()?, "Idle".parse::<DeviceState>()?);
//! assert_eq!(index.get(), 4);
//! assert_eq!(Availability::from_wire(18500).get(), 18000);
//! # Ok::<(), presence_model::ModelError>(())
//! ```
#![deny(missing_docs)]

mod availability;
mod decimal;
mod error;
mod ids;
mod presence;
mod profile;
pub mod random;
mod state;
pub mod timers;
mod user;

pub use availability::{Availability, AvailabilityClass, AvailabilityRange};
pub use decimal::Decimal;
pub use error::{ModelError, error_chain};
pub use ids::{ActivityText, AggregatedStateId, DnNumber, Lcid, SipUri};
pub use presence::{Activities, AggregatedStates, Presence, Publication};
pub use profile::ProfileSource;
pub use state::{AgentState, DeviceState, DndState, StateIndex};
pub use user::{EntraId, Platform, Upn, UserAddress, UserId};
