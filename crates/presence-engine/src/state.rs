//! Per-DN state and its view for the admin API.

use std::collections::BTreeSet;

use presence_config::ProfileSource;
use presence_model::{AgentState, DeviceState, DnNumber, UserId};
use presence_tlib::{AgentId, ClientId, ConnId, WorkMode};
use serde::Serialize;

/// The contact-centre side of one Extension DN.
#[derive(Debug, Clone)]
pub(crate) struct DnState {
    /// The DN's user on its platform (none: the DN has no address on a configured one).
    pub(crate) user: Option<UserId>,
    pub(crate) agent: AgentState,
    pub(crate) agent_id: Option<AgentId>,
    pub(crate) workmode: Option<WorkMode>,
    /// The `presence-profile` the login carried (kept for re-resolution on reload).
    pub(crate) login_profile: Option<String>,
    pub(crate) calls: BTreeSet<ConnId>,
    pub(crate) out_of_service: bool,
    /// The profile in force and the level it came from.
    pub(crate) profile: Option<(DnNumber, ProfileSource)>,
    pub(crate) clients: BTreeSet<ClientId>,
    /// The last presence the transport reported for the DN's user.
    pub(crate) last_availability: Option<u64>,
    pub(crate) last_activity: Option<String>,
    /// What the transport says is wrong with the user (a UPN that does not resolve).
    pub(crate) problem: Option<String>,
    /// Why the last publication failed, until one succeeds.
    pub(crate) last_error: Option<String>,
}

impl DnState {
    pub(crate) fn new(user: Option<UserId>) -> Self {
        DnState {
            user,
            agent: AgentState::Logout,
            agent_id: None,
            workmode: None,
            login_profile: None,
            calls: BTreeSet::new(),
            out_of_service: false,
            profile: None,
            clients: BTreeSet::new(),
            last_availability: None,
            last_activity: None,
            problem: None,
            last_error: None,
        }
    }

    /// OOS wins over Busy; Busy while at least one call is on the DN.
    pub(crate) fn device(&self) -> DeviceState {
        if self.out_of_service {
            DeviceState::Oos
        } else if self.calls.is_empty() {
            DeviceState::Idle
        } else {
            DeviceState::Busy
        }
    }
}

/// One DN as the admin API shows it (`GET /v1/dns/{dn}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnView {
    /// The DN.
    pub dn: String,
    /// The platform its user lives on (`sfb`, `teams`, `simple`), if it has a user.
    pub platform: Option<String>,
    /// Its user as the platform knows it (a SIP URI, a UPN, an Entra object id).
    pub user: Option<String>,
    /// What the platform's transport reports wrong with the user (a UPN that does not
    /// resolve), if anything.
    pub user_problem: Option<String>,
    /// `Logout`, `Ready`, `NotReady`, `ACW` or `Walk_Away`.
    pub agent_state: &'static str,
    /// The logged-in agent.
    pub agent_id: Option<String>,
    /// The last NotReady work mode.
    pub workmode: Option<&'static str>,
    /// `Idle`, `Busy` or `OOS`.
    pub device_state: &'static str,
    /// The calls on the DN.
    pub calls: Vec<String>,
    /// The profile in force.
    pub profile: Option<String>,
    /// Where it came from: `login`, `dn`, `application`.
    pub profile_source: Option<&'static str>,
    /// `push`, `pull` or `none`.
    pub mode: &'static str,
    /// Push: the aggregated state the DN should show now.
    pub target_state: Option<String>,
    /// Push: the aggregated state the platform last confirmed on the current connection.
    pub last_published_state: Option<String>,
    /// Push: the availability (SfB scale) the platform last confirmed.
    pub last_published_availability: Option<u16>,
    /// Push: why the last publication failed, until one succeeds.
    pub last_publication_error: Option<String>,
    /// Pull: the last availability the platform reported for the user, on the SfB scale
    /// (other platforms' states mapped onto it).
    pub last_reported_availability: Option<u64>,
    /// Pull: the activity the platform reported with it.
    pub last_reported_activity: Option<String>,
    /// Pull: the DND state last reported (`on`/`off`).
    pub dnd: Option<&'static str>,
    /// Contact-centre clients registered on the DN.
    pub registered_clients: usize,
}
