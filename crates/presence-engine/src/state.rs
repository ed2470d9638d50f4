//! Per-DN state and its view for the admin API.

use std::collections::BTreeSet;

use presence_config::ProfileSource;
use presence_model::{AgentState, DeviceState, DnNumber, UserId};
use presence_tlib::{AgentId, ClientId, ConnId, WorkMode};
use serde::Serialize;

/// The contact-centre side of one Extension DN.
///
/// One per configured DN, so kept small (88 bytes): what only some DNs have at a time (an
/// agent, calls, registered clients; presence reported by the platform, errors) is held
/// out of line, allocated when first set and freed when empty again.
#[derive(Debug, Clone)]
pub(crate) struct DnState {
    /// The DN's user on its platform (none: the DN has no address on a configured one).
    pub(crate) user: Option<UserId>,
    /// The profile in force and the level it came from.
    pub(crate) profile: Option<(DnNumber, ProfileSource)>,
    pub(crate) agent: AgentState,
    pub(crate) workmode: Option<WorkMode>,
    pub(crate) out_of_service: bool,
    link: Option<Box<LinkState>>,
    reported: Option<Box<Reported>>,
}

/// What the contact-centre link put on a DN besides its agent state.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkState {
    pub(crate) agent_id: Option<AgentId>,
    /// The `presence-profile` the login carried (kept for re-resolution on reload).
    pub(crate) login_profile: Option<String>,
    pub(crate) calls: BTreeSet<ConnId>,
    pub(crate) clients: BTreeSet<ClientId>,
}

/// What the platform and its transport said about a DN's user.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reported {
    /// The last presence the transport reported for the DN's user.
    pub(crate) last_availability: Option<u64>,
    pub(crate) last_activity: Option<String>,
    /// What the transport says is wrong with the user (a UPN that does not resolve).
    pub(crate) problem: Option<String>,
    /// Why the last publication failed, until one succeeds.
    pub(crate) last_error: Option<String>,
}

static NO_LINK: LinkState = LinkState {
    agent_id: None,
    login_profile: None,
    calls: BTreeSet::new(),
    clients: BTreeSet::new(),
};

static NOTHING_REPORTED: Reported = Reported {
    last_availability: None,
    last_activity: None,
    problem: None,
    last_error: None,
};

impl LinkState {
    fn is_empty(&self) -> bool {
        self.agent_id.is_none()
            && self.login_profile.is_none()
            && self.calls.is_empty()
            && self.clients.is_empty()
    }
}

impl Reported {
    fn is_empty(&self) -> bool {
        self.last_availability.is_none()
            && self.last_activity.is_none()
            && self.problem.is_none()
            && self.last_error.is_none()
    }
}

impl DnState {
    pub(crate) fn new(user: Option<UserId>) -> Self {
        DnState {
            user,
            profile: None,
            agent: AgentState::Logout,
            workmode: None,
            out_of_service: false,
            link: None,
            reported: None,
        }
    }

    /// The agent, calls and clients of the DN.
    pub(crate) fn link(&self) -> &LinkState {
        self.link.as_deref().unwrap_or(&NO_LINK)
    }

    /// The same, to change (allocated on first use).
    pub(crate) fn link_mut(&mut self) -> &mut LinkState {
        self.link.get_or_insert_default()
    }

    /// The same, to change if the DN has any (to remove from, or clear).
    pub(crate) fn link_if_any(&mut self) -> Option<&mut LinkState> {
        self.link.as_deref_mut()
    }

    /// What was reported about the DN's user.
    pub(crate) fn reported(&self) -> &Reported {
        self.reported.as_deref().unwrap_or(&NOTHING_REPORTED)
    }

    /// The same, to change (allocated on first use).
    pub(crate) fn reported_mut(&mut self) -> &mut Reported {
        self.reported.get_or_insert_default()
    }

    /// Forgets everything reported about the DN's user (another user is behind the DN).
    pub(crate) fn forget_reported(&mut self) {
        self.reported = None;
    }

    /// Sets the user's problem (`None`: none any more).
    pub(crate) fn set_problem(&mut self, problem: Option<String>) {
        if problem.is_some() || self.reported.is_some() {
            self.reported_mut().problem = problem;
            self.compact();
        }
    }

    /// Sets why the last publication failed (`None`: it succeeded).
    pub(crate) fn set_last_error(&mut self, error: Option<String>) {
        if error.is_some() || self.reported.is_some() {
            self.reported_mut().last_error = error;
            self.compact();
        }
    }

    /// Frees what is out of line and empty again.
    pub(crate) fn compact(&mut self) {
        if self.link.as_deref().is_some_and(LinkState::is_empty) {
            self.link = None;
        }
        if self.reported.as_deref().is_some_and(Reported::is_empty) {
            self.reported = None;
        }
    }

    /// OOS wins over Busy; Busy while at least one call is on the DN.
    pub(crate) fn device(&self) -> DeviceState {
        if self.out_of_service {
            DeviceState::Oos
        } else if self.link().calls.is_empty() {
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
