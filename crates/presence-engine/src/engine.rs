//! The engine's event loop and its handlers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use presence_config::{ProfileSource, Users};
use presence_model::{AgentState, DnNumber, DndState, Platform, Publication, UserId};
use presence_pull::DndTracker;
use presence_push::Ticket;
use presence_tlib::{
    ClientId, ClientMessage, ClientRequest, ClientSink, ErrorCode, Extensions, LinkInput,
    ServerEvent, WorkMode, ext,
};
use presence_transport::settings::HumanDuration;
use presence_transport::{
    EventReceiver, PresenceTransport, PresenceUpdate, TransportError, TransportEvent,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use crate::compiled::{EngineConfig, Role};
use crate::lane::{FailureLine, Lane};
use crate::state::{DnState, DnView};
use crate::{
    Control, EngineHandle, EngineOptions, EngineStats, PlatformStats, ReloadReport, metric,
};

/// The most calls a DN holds at once: a client that reports calls and never releases them
/// (or invents a `connID` per message) cannot make a DN's state grow without bound. A new
/// call beyond it is refused with `EventError` 8; calls already known are accepted.
pub const MAX_CALLS_PER_DN: usize = 64;

/// The most inputs the engine takes, after the one it woke for, before it flushes: enough
/// to make a burst one flush, few enough that its timers are not starved.
const BATCH: usize = 256;

/// The outcome of a call handed to the transport, sent back by its task.
enum Completion {
    Publish {
        platform: Platform,
        ticket: Ticket<DnNumber>,
        result: Result<(), TransportError>,
    },
    Unpublish {
        user: UserId,
        result: Result<(), TransportError>,
    },
}

/// The engine. Build it with [`Engine::new`], run it with [`Engine::run`].
pub struct Engine<S> {
    config: Arc<EngineConfig>,
    transport: Arc<dyn PresenceTransport>,
    sink: S,
    options: EngineOptions,
    dns: BTreeMap<DnNumber, DnState>,
    by_user: HashMap<UserId, DnNumber>,
    clients: HashMap<ClientId, BTreeSet<DnNumber>>,
    /// Per platform: publisher, connection, credit, subscription and unpublish work.
    lanes: BTreeMap<Platform, Lane>,
    tracker: DndTracker<DnNumber>,
    completions_tx: mpsc::UnboundedSender<Completion>,
    completions: mpsc::UnboundedReceiver<Completion>,
    control: mpsc::Receiver<Control>,
    shutdown: Option<(Instant, oneshot::Sender<()>)>,
}

impl<S> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dns", &self.dns.len())
            .field("clients", &self.clients.len())
            .field("platforms", &self.lanes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl<S: ClientSink> Engine<S> {
    /// An engine on a configuration, a transport (one, or a
    /// [`Router`](presence_transport::Router) over several) and a sink towards the clients.
    pub fn new(
        mut config: EngineConfig,
        transport: Arc<dyn PresenceTransport>,
        sink: S,
        options: EngineOptions,
    ) -> (Self, EngineHandle) {
        let users = config.take_users();
        let (control_tx, control) = mpsc::channel(64);
        let (completions_tx, completions) = mpsc::unbounded_channel();
        let mut engine = Engine {
            config: Arc::new(config),
            transport,
            sink,
            options,
            dns: BTreeMap::new(),
            by_user: HashMap::new(),
            clients: HashMap::new(),
            lanes: BTreeMap::new(),
            tracker: DndTracker::new(),
            completions_tx,
            completions,
            control,
            shutdown: None,
        };
        engine.apply_config(users);
        (engine, EngineHandle { tx: control_tx })
    }

    /// Runs until shut down through the [`EngineHandle`] (or until the link, the
    /// transport's events and every handle are gone).
    pub async fn run(mut self, mut link: mpsc::Receiver<LinkInput>, mut events: EventReceiver) {
        let mut link_open = true;
        let mut events_open = true;
        let mut control_open = true;
        loop {
            self.flush();
            let in_flight: usize = self.lanes.values().map(|l| l.publisher.in_flight()).sum();
            if let Some((deadline, _)) = &self.shutdown {
                let drained = self.lanes.values().all(|l| {
                    l.publisher.in_flight() == 0
                        && (l.publisher.ready_len() == 0 || !l.connected || l.credit == 0)
                });
                if drained || Instant::now() >= *deadline {
                    break;
                }
            }
            if !link_open && !events_open && !control_open && in_flight == 0 {
                break;
            }
            let retry = self
                .lanes
                .values_mut()
                .filter_map(|l| l.publisher.poll_timeout())
                .min()
                .map(Instant::from_std);
            let shutdown_at = self.shutdown.as_ref().map(|(d, _)| *d);
            let wake = match (retry, shutdown_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                input = link.recv(), if link_open && self.shutdown.is_none() => match input {
                    Some(input) => self.on_link(input),
                    None => link_open = false,
                },
                event = events.recv(), if events_open => match event {
                    Some(event) => self.on_transport(event),
                    None => events_open = false,
                },
                Some(done) = self.completions.recv() => self.on_completion(done),
                control = self.control.recv(), if control_open => match control {
                    Some(control) => self.on_control(control),
                    None => control_open = false,
                },
                () = sleep_until(wake.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if wake.is_some() => {
                    let now = now();
                    for lane in self.lanes.values_mut() {
                        lane.publisher.handle_timeout(now);
                    }
                }
            }
            // What is already waiting is taken before the next flush: a burst costs one
            // flush (and, in the drivers, one write) instead of one per input. Bounded,
            // so that timers and control still come round under saturation.
            for _ in 0..BATCH {
                if let Ok(done) = self.completions.try_recv() {
                    self.on_completion(done);
                } else if let Some(input) = (link_open && self.shutdown.is_none())
                    .then(|| link.try_recv().ok())
                    .flatten()
                {
                    self.on_link(input);
                } else if let Some(event) = events_open.then(|| events.try_recv()).flatten() {
                    self.on_transport(event);
                } else {
                    break;
                }
            }
        }
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
        }
    }

    /// The lane of a platform, made on first use.
    fn lane(&mut self, platform: &Platform) -> &mut Lane {
        let retry = self.options.retry;
        self.lanes
            .entry(platform.clone())
            .or_insert_with(|| Lane::new(platform, retry))
    }

    // ----- configuration -------------------------------------------------------------

    /// Brings the DN table in line with the configuration just put in `self.config` and
    /// re-resolves every DN; `users` are its DNs' users (taken out of it: each is kept in
    /// its DN's state).
    fn apply_config(&mut self, users: Users) -> ReloadReport {
        let config = Arc::clone(&self.config);
        let mut report = ReloadReport::default();
        let wanted: BTreeMap<DnNumber, Option<UserId>> = config
            .config()
            .extensions()
            .iter()
            .map(|ext| (ext.number.clone(), users.get(ext.number.as_str()).cloned()))
            .collect();
        drop(users);
        report.dns = wanted.len();
        // DNs that left the configuration: what the bridge had for their users ends.
        let gone: Vec<DnNumber> = self
            .dns
            .keys()
            .filter(|dn| !wanted.contains_key(*dn))
            .cloned()
            .collect();
        for dn in gone {
            self.set_profile(&dn, None);
            if let Some(state) = self.dns.remove(&dn) {
                if let Some(user) = &state.user {
                    self.by_user.remove(user);
                }
                let clients = state.link().clients.clone();
                for client in clients {
                    if let Some(set) = self.clients.get_mut(&client) {
                        set.remove(&dn);
                    }
                    // Its registered clients are told: their registration ended.
                    self.sink.send(
                        client,
                        ServerEvent::error(
                            None,
                            ErrorCode::UnknownDn,
                            format!(
                                "DN `{dn}` was removed from the configuration by a reload: its registration ended"
                            ),
                        ),
                    );
                }
            }
            report.removed += 1;
        }
        // New DNs first, all at once: a map given its entries in one go has full nodes,
        // while DNs inserted one by one in order leave them about half empty.
        let mut added: BTreeMap<DnNumber, DnState> = wanted
            .iter()
            .filter(|(dn, _)| !self.dns.contains_key(*dn))
            .map(|(dn, user)| (dn.clone(), DnState::new(user.clone())))
            .collect();
        report.added = added.len();
        self.by_user.reserve(added.len());
        for (dn, state) in &added {
            if let Some(user) = &state.user {
                self.by_user.insert(user.clone(), dn.clone());
            }
        }
        self.dns.append(&mut added);
        for (dn, user) in wanted {
            let Some(state) = self.dns.get(&dn) else {
                continue;
            };
            let old = (state.user != user).then(|| state.user.clone());
            let login = state.link().login_profile.clone();
            let mut before = state.profile.clone();
            if let Some(old) = old {
                // Another user behind the DN, or the same user moved to another
                // platform: end what the old one had there, start afresh.
                self.set_profile(&dn, None);
                if let Some(old) = &old {
                    self.by_user.remove(old);
                }
                if let Some(user) = &user {
                    self.by_user.insert(user.clone(), dn.clone());
                }
                if let Some(state) = self.dns.get_mut(&dn) {
                    state.user = user;
                    state.forget_reported();
                }
                report.moved += 1;
                before = None; // `set_profile` above
            }
            let (profile, _) = self.resolve(&dn, login.as_deref());
            if before != profile {
                report.reassigned += 1;
            }
            self.set_profile(&dn, profile);
        }
        self.update_gauges();
        report
    }

    /// The profile in force for `dn` given a login-level name; `Err` carries why the
    /// login-level name was refused (the next level then applies).
    fn resolve(
        &self,
        dn: &DnNumber,
        login_profile: Option<&str>,
    ) -> (Option<(DnNumber, ProfileSource)>, Option<String>) {
        let config = self.config.config();
        let resolution = config.resolve(dn.as_str(), login_profile);
        let mut refused = resolution.rejected.map(|e| e.to_string());
        let mut chosen = resolution
            .profile
            .zip(resolution.source)
            .map(|(p, s)| (p.name.clone(), s));
        // A login-level profile needs a user on a platform, which the DN may not have.
        if let Some((name, ProfileSource::Login)) = &chosen {
            let has_user = self.dns.get(dn).is_some_and(|s| s.user.is_some());
            let needs_user = !matches!(self.config.role(Some(name)), Role::None);
            if needs_user && !has_user {
                refused = Some(format!(
                    "profile `{name}` cannot apply: DN `{dn}` has no user on a configured platform (no `uri` or `entra-id` its platform can use)"
                ));
                let fallback = config.resolve(dn.as_str(), None);
                chosen = fallback
                    .profile
                    .zip(fallback.source)
                    .map(|(p, s)| (p.name.clone(), s));
            }
        }
        (chosen, refused)
    }

    /// Puts `dn` on a profile (or none), switching subscriptions and publications as the
    /// mode changes. A user that leaves push mode has the bridge's publication ended.
    fn set_profile(&mut self, dn: &DnNumber, profile: Option<(DnNumber, ProfileSource)>) {
        let Some(state) = self.dns.get_mut(dn) else {
            return;
        };
        let old_role = self.config.role(state.profile.as_ref().map(|(p, _)| p));
        let new_role = self.config.role(profile.as_ref().map(|(p, _)| p));
        state.profile = profile;
        let Some(user) = state.user.clone() else {
            return;
        };
        let lane = self.lane(user.platform());
        match (old_role.is_push(), new_role.is_push()) {
            (true, false) => {
                lane.publisher.remove(dn);
                lane.to_unpublish.insert(user.clone());
            }
            (false, true) => {
                lane.to_unpublish.remove(&user);
            }
            _ => {}
        }
        match (old_role.is_pull(), new_role.is_pull()) {
            (true, false) => {
                lane.subscribed.remove(&user);
                lane.to_subscribe.remove(&user);
                lane.to_unsubscribe.insert(user.clone());
                self.tracker.reset(dn);
            }
            (false, true) => {
                lane.subscribed.insert(user.clone());
                lane.to_unsubscribe.remove(&user);
                lane.to_subscribe.insert(user.clone());
                self.tracker.reset(dn);
            }
            _ => {}
        }
        match new_role {
            Role::Push(_) => self.refresh_push(dn),
            Role::Pull(mapper) => {
                // Ranges may have changed: judge the last known availability again.
                let last = self
                    .dns
                    .get(dn)
                    .and_then(|s| s.reported().last_availability);
                if let Some(raw) = last {
                    let dnd = mapper.map_wire(raw);
                    if let Some(dnd) = self.tracker.update(dn.clone(), dnd) {
                        self.send_dnd(dn, dnd);
                    }
                }
            }
            Role::None => {}
        }
    }

    /// Hands the DN's current publication to its platform's publisher (push DNs only).
    fn refresh_push(&mut self, dn: &DnNumber) {
        let Some(state) = self.dns.get(dn) else {
            return;
        };
        let Some(user) = &state.user else {
            return;
        };
        let Role::Push(table) = self.config.role(state.profile.as_ref().map(|(p, _)| p)) else {
            return;
        };
        let publication = table.get(state.agent, state.device()).cloned();
        let Some(lane) = self.lanes.get_mut(user.platform()) else {
            return;
        };
        // While the bridge's previous publication is being ended, wait: the unpublish
        // completion publishes the current state.
        if lane.unpublishing.contains(user) {
            return;
        }
        lane.publisher.set(dn.clone(), publication);
        // Back to what the platform confirmed (a change undone while its publication
        // waited for a retry): nothing is due, so no success will clear the failure of the
        // abandoned state; it no longer applies.
        let in_sync = matches!(
            (lane.publisher.target(dn), lane.publisher.published(dn)),
            (Some(target), Some(published)) if target == published
        );
        if in_sync && let Some(state) = self.dns.get_mut(dn) {
            state.set_last_error(None);
        }
    }

    // ----- contact-centre link -------------------------------------------------------

    fn on_link(&mut self, input: LinkInput) {
        match input {
            LinkInput::Connected(client, peer) => {
                tracing::info!(%client, %peer, "contact-centre client connected");
                self.clients.entry(client).or_default();
                metrics::gauge!(metric::CLIENTS).set(self.clients.len() as f64);
            }
            LinkInput::Disconnected(client) => {
                tracing::info!(%client, "contact-centre client disconnected");
                for dn in self.clients.remove(&client).unwrap_or_default() {
                    if let Some(state) = self.dns.get_mut(&dn) {
                        if let Some(link) = state.link_if_any() {
                            link.clients.remove(&client);
                        }
                        state.compact();
                    }
                }
                metrics::gauge!(metric::CLIENTS).set(self.clients.len() as f64);
            }
            LinkInput::Message(client, message) => self.on_message(client, message),
        }
    }

    fn refuse(&self, client: ClientId, reference_id: u64, code: ErrorCode, message: String) {
        metrics::counter!(metric::REQUESTS_REFUSED, "code" => code.as_u32().to_string())
            .increment(1);
        self.sink.send(
            client,
            ServerEvent::EventError {
                reference_id: Some(reference_id),
                error_code: code,
                error_message: message,
            },
        );
    }

    fn on_message(&mut self, client: ClientId, message: ClientMessage) {
        let reference_id = message.reference_id;
        metrics::counter!(metric::EVENTS_IN, "message" => message.body.name()).increment(1);
        let dn = message.body.this_dn().clone();
        let Some(state) = self.dns.get_mut(&dn) else {
            self.refuse(
                client,
                reference_id,
                ErrorCode::UnknownDn,
                format!("DN `{dn}` is not an Extension DN of the configuration"),
            );
            return;
        };
        let logged_in = state.agent != AgentState::Logout;
        let needs_agent = matches!(
            message.body,
            ClientRequest::RequestAgentLogout { .. }
                | ClientRequest::RequestAgentReady { .. }
                | ClientRequest::RequestAgentNotReady { .. }
        );
        if needs_agent && !logged_in {
            let message = format!("no agent is logged in on DN `{dn}`");
            return self.refuse(client, reference_id, ErrorCode::InvalidState, message);
        }
        let answer = match message.body {
            ClientRequest::RegisterAddress { .. } => {
                state.link_mut().clients.insert(client);
                self.clients.entry(client).or_default().insert(dn.clone());
                ServerEvent::EventRegistered {
                    reference_id,
                    this_dn: dn.clone(),
                    dnd: self.tracker.last(&dn),
                    // The bridge's role in a hot-standby group is not the engine's to know:
                    // the binary's sink adds it.
                    ha_role: None,
                }
            }
            ClientRequest::UnregisterAddress { .. } => {
                let registered = state
                    .link_if_any()
                    .is_some_and(|link| link.clients.remove(&client));
                state.compact();
                if !registered {
                    return self.refuse(
                        client,
                        reference_id,
                        ErrorCode::UnknownDn,
                        format!("DN `{dn}` is not registered by this client"),
                    );
                }
                if let Some(set) = self.clients.get_mut(&client) {
                    set.remove(&dn);
                }
                ServerEvent::EventUnregistered {
                    reference_id,
                    this_dn: dn.clone(),
                }
            }
            ClientRequest::RequestAgentLogin {
                agent_id,
                workmode,
                extensions,
                ..
            } => {
                if logged_in {
                    let who = state
                        .link()
                        .agent_id
                        .as_ref()
                        .map_or("an agent", |a| a.as_str());
                    let message = format!("{who} is already logged in on DN `{dn}`");
                    return self.refuse(client, reference_id, ErrorCode::InvalidState, message);
                }
                state.agent = login_state(workmode);
                state.workmode = workmode;
                let link = state.link_mut();
                link.agent_id = Some(agent_id.clone());
                link.login_profile = extensions.presence_profile().map(str::to_owned);
                let login = link.login_profile.clone();
                let (profile, refused) = self.resolve(&dn, login.as_deref());
                let mut answer = Extensions::new();
                match &profile {
                    Some((name, source)) => {
                        answer.insert(ext::PRESENCE_PROFILE, name.as_str());
                        answer.insert(ext::PRESENCE_PROFILE_SOURCE, source.as_str());
                    }
                    None => {
                        answer.insert(ext::PRESENCE_PROFILE_SOURCE, ext::NO_PROFILE_SOURCE);
                    }
                }
                if let Some(reason) = refused {
                    answer.insert(ext::PRESENCE_PROFILE_ERROR, reason);
                    // The refused level is forgotten: a reload does not bring it back.
                    if let Some(link) = self.dns.get_mut(&dn).and_then(DnState::link_if_any) {
                        link.login_profile = None;
                    }
                }
                self.set_profile(&dn, profile);
                ServerEvent::EventAgentLogin {
                    reference_id,
                    this_dn: dn.clone(),
                    agent_id,
                    extensions: answer,
                }
            }
            ClientRequest::RequestAgentLogout { .. } => {
                state.agent = AgentState::Logout;
                state.workmode = None;
                if let Some(link) = state.link_if_any() {
                    link.agent_id = None;
                    link.login_profile = None;
                }
                state.compact();
                let (profile, _) = self.resolve(&dn, None);
                self.set_profile(&dn, profile);
                ServerEvent::EventAgentLogout {
                    reference_id,
                    this_dn: dn.clone(),
                }
            }
            ClientRequest::RequestAgentReady { .. } => {
                state.agent = AgentState::Ready;
                state.workmode = None;
                ServerEvent::EventAgentReady {
                    reference_id,
                    this_dn: dn.clone(),
                }
            }
            ClientRequest::RequestAgentNotReady { workmode, .. } => {
                state.agent = workmode.map_or(AgentState::NotReady, WorkMode::agent_state);
                state.workmode = workmode;
                ServerEvent::EventAgentNotReady {
                    reference_id,
                    this_dn: dn.clone(),
                    workmode,
                }
            }
            ClientRequest::EventRinging { conn_id, .. }
            | ClientRequest::EventDialing { conn_id, .. }
            | ClientRequest::EventEstablished { conn_id, .. }
            | ClientRequest::EventHeld { conn_id, .. }
            | ClientRequest::EventRetrieved { conn_id, .. } => {
                let calls = &state.link().calls;
                if calls.len() >= MAX_CALLS_PER_DN && !calls.contains(&conn_id) {
                    let message = format!(
                        "DN `{dn}` already has {MAX_CALLS_PER_DN} calls, the most it holds: \
                         report EventReleased for the calls that ended"
                    );
                    return self.refuse(client, reference_id, ErrorCode::InvalidState, message);
                }
                state.link_mut().calls.insert(conn_id);
                ServerEvent::EventACK { reference_id }
            }
            ClientRequest::EventReleased { conn_id, .. } => {
                if let Some(link) = state.link_if_any() {
                    link.calls.remove(&conn_id);
                }
                state.compact();
                ServerEvent::EventACK { reference_id }
            }
            ClientRequest::EventDNOutOfService { .. } => {
                state.out_of_service = true;
                ServerEvent::EventACK { reference_id }
            }
            ClientRequest::EventDNBackInService { .. } => {
                state.out_of_service = false;
                ServerEvent::EventACK { reference_id }
            }
        };
        self.refresh_push(&dn);
        self.sink.send(client, answer);
    }

    // ----- presence transport --------------------------------------------------------

    fn on_transport(&mut self, event: TransportEvent) {
        match event {
            TransportEvent::Connected {
                platform,
                peer,
                credit,
            } => {
                tracing::info!(%platform, %peer, credit, "presence transport connected: resynchronising");
                let lane = self.lane(&platform);
                lane.metrics.connects.increment(1);
                lane.connected = true;
                lane.credit = u64::from(credit);
                // Resync (nothing is left stale): every push user is due again, every
                // pull user is subscribed again and its next update reports.
                lane.publisher.resync();
                lane.to_subscribe = lane.subscribed.clone();
                let users: Vec<UserId> = lane.subscribed.iter().cloned().collect();
                for user in users {
                    if let Some(dn) = self.by_user.get(&user) {
                        self.tracker.reset(dn);
                    }
                }
            }
            TransportEvent::Disconnected { platform, reason } => {
                let lane = self.lane(&platform);
                if lane.connected {
                    tracing::warn!(%platform, %reason, "presence transport disconnected");
                }
                lane.metrics.disconnects.increment(1);
                lane.connected = false;
                lane.credit = 0;
            }
            TransportEvent::Credit { platform, credit } => {
                let lane = self.lane(&platform);
                lane.credit = lane.credit.saturating_add(u64::from(credit));
            }
            TransportEvent::Presence(update) => self.on_presence(update),
            TransportEvent::Subscribed { users } => {
                // The first update after a (re-)subscription always reports.
                for user in users {
                    if let Some(dn) = self.by_user.get(&user) {
                        self.tracker.reset(dn);
                    }
                }
            }
            TransportEvent::UserProblem { user, problem } => self.on_user_problem(user, problem),
        }
        self.update_gauges();
    }

    fn on_user_problem(&mut self, user: UserId, problem: Option<String>) {
        let dn = self.by_user.get(&user).cloned();
        let lane = self.lane(user.platform());
        match &problem {
            Some(problem) => {
                if lane.problems.insert(user.clone()) {
                    tracing::warn!(%user, dn = dn.as_ref().map_or("(none)", DnNumber::as_str), %problem, "the platform cannot serve this user");
                }
            }
            None => {
                if lane.problems.remove(&user) {
                    tracing::info!(%user, "the platform serves this user again");
                }
            }
        }
        if let Some(state) = dn.and_then(|dn| self.dns.get_mut(&dn)) {
            state.set_problem(problem);
        }
    }

    fn on_presence(&mut self, update: PresenceUpdate) {
        let Some(dn) = self.by_user.get(&update.user).cloned() else {
            return;
        };
        if let Some(lane) = self.lanes.get(update.user.platform()) {
            lane.metrics.updates.increment(1);
        }
        let Some(state) = self.dns.get_mut(&dn) else {
            return;
        };
        let reported = state.reported_mut();
        reported.last_availability = Some(update.raw_availability);
        reported.last_activity.clone_from(&update.activity);
        let Role::Pull(mapper) = self.config.role(state.profile.as_ref().map(|(p, _)| p)) else {
            return;
        };
        let dnd = mapper.map(update.availability);
        if let Some(dnd) = self.tracker.update(dn.clone(), dnd) {
            self.send_dnd(&dn, dnd);
        }
    }

    /// Sends the DN's DND state to every client registered on it.
    fn send_dnd(&self, dn: &DnNumber, dnd: DndState) {
        let Some(state) = self.dns.get(dn) else {
            return;
        };
        let Some((profile, _)) = &state.profile else {
            return;
        };
        metrics::counter!(metric::DND_EVENTS, "state" => dnd.as_str()).increment(1);
        let reported = state.reported();
        tracing::debug!(%dn, dnd = dnd.as_str(), availability = ?reported.last_availability, "DND change");
        for client in &state.link().clients {
            self.sink.send(
                *client,
                ServerEvent::dnd(
                    dnd,
                    dn.clone(),
                    reported.last_availability.unwrap_or(0),
                    reported.last_activity.clone(),
                    profile.clone(),
                ),
            );
        }
    }

    // ----- publications --------------------------------------------------------------

    /// Hands the transport what is due on every platform: subscription changes, ends of
    /// publications, and as many publications as the platform has credit for.
    fn flush(&mut self) {
        let transport = &self.transport;
        let done = &self.completions_tx;
        for (platform, lane) in &mut self.lanes {
            if !lane.to_unsubscribe.is_empty() {
                let users = std::mem::take(&mut lane.to_unsubscribe);
                spawn_subscription(transport, users, false);
            }
            if !lane.connected {
                continue;
            }
            if !lane.to_subscribe.is_empty() {
                let users = std::mem::take(&mut lane.to_subscribe);
                spawn_subscription(transport, users, true);
            }
            for user in std::mem::take(&mut lane.to_unpublish) {
                lane.unpublishing.insert(user.clone());
                let transport = Arc::clone(transport);
                let done = done.clone();
                tokio::spawn(async move {
                    let result = transport.unpublish(&user).await;
                    let _ = done.send(Completion::Unpublish { user, result });
                });
            }
            while lane.credit > 0 {
                let Some((ticket, publication)) = lane.publisher.poll_publish() else {
                    break;
                };
                let Some(user) = self.dns.get(&ticket.user).and_then(|s| s.user.clone()) else {
                    lane.publisher.remove(&ticket.user);
                    continue;
                };
                lane.credit -= 1;
                spawn_publish(transport, done, platform.clone(), ticket, user, publication);
            }
        }
        self.update_gauges();
    }

    fn on_completion(&mut self, done: Completion) {
        match done {
            Completion::Publish {
                platform,
                ticket,
                result,
            } => self.on_published(&platform, &ticket, result),
            Completion::Unpublish { user, result } => self.on_unpublished(user, result),
        }
    }

    fn on_published(
        &mut self,
        platform: &Platform,
        ticket: &Ticket<DnNumber>,
        result: Result<(), TransportError>,
    ) {
        let Some(lane) = self.lanes.get_mut(platform) else {
            return;
        };
        // What the DN's view says about the last publication: cleared on success.
        let last_error = match result {
            Ok(()) => {
                lane.metrics.ok.increment(1);
                lane.publisher.complete(ticket);
                if let Some((failures, since)) = lane.failures.success(now()) {
                    tracing::info!(%platform, failures, over = %HumanDuration(since), "publications succeed again");
                }
                Some(None)
            }
            Err(TransportError::NotConnected | TransportError::Shutdown) => {
                lane.metrics.parked.increment(1);
                lane.publisher.park(ticket);
                None
            }
            Err(error) if error.is_transient() => {
                lane.metrics.failed.increment(1);
                match lane.failures.failure(now()) {
                    FailureLine::Warn { unlogged: 0 } => {
                        tracing::warn!(dn = %ticket.user, %platform, %error, "publication failed; will retry");
                    }
                    FailureLine::Warn { unlogged } => {
                        tracing::warn!(dn = %ticket.user, %platform, %error, unlogged, "publication failed; will retry (and so did the unlogged others since the last such line)");
                    }
                    FailureLine::Debug => {
                        tracing::debug!(dn = %ticket.user, %platform, %error, "publication failed; will retry");
                    }
                }
                lane.publisher.fail(ticket, now(), error.retry_after());
                if matches!(error, TransportError::Timeout) {
                    // Unanswered is not refused: the platform may apply it late.
                    lane.publisher.forget_confirmed(&ticket.user);
                }
                Some(Some(error.to_string()))
            }
            Err(error) => {
                lane.metrics.refused.increment(1);
                match lane.failures.failure(now()) {
                    FailureLine::Warn { unlogged } => {
                        tracing::warn!(dn = %ticket.user, %platform, %error, unlogged, "publication refused; not retried until the state changes or the platform reconnects");
                    }
                    FailureLine::Debug => {
                        tracing::debug!(dn = %ticket.user, %platform, %error, "publication refused; not retried until the state changes or the platform reconnects");
                    }
                }
                lane.publisher.reject(ticket);
                Some(Some(error.to_string()))
            }
        };
        if let (Some(last_error), Some(state)) = (last_error, self.dns.get_mut(&ticket.user)) {
            state.set_last_error(last_error);
        }
    }

    fn on_unpublished(&mut self, user: UserId, result: Result<(), TransportError>) {
        let lane = self.lane(user.platform());
        lane.unpublishing.remove(&user);
        match result {
            Ok(()) => lane.metrics.unpublished.increment(1),
            // Not connected: tried again once connected (the platform keeps the bridge's
            // publication meanwhile).
            Err(TransportError::NotConnected) => {
                lane.to_unpublish.insert(user.clone());
            }
            Err(error) => {
                tracing::warn!(%user, %error, "ending the bridge's publication failed");
            }
        }
        // The user may have come back to push mode meanwhile: publish its current state.
        if let Some(dn) = self.by_user.get(&user).cloned() {
            self.refresh_push(&dn);
        }
    }

    // ----- control -------------------------------------------------------------------

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Reload(config, reply) => {
                let mut config = *config;
                let users = config.take_users();
                self.config = Arc::new(config);
                let report = self.apply_config(users);
                metrics::counter!(metric::RELOADS).increment(1);
                tracing::debug!(
                    dns = report.dns,
                    added = report.added,
                    removed = report.removed,
                    reassigned = report.reassigned,
                    moved = report.moved,
                    "engine: configuration applied"
                );
                let _ = reply.send(report);
            }
            Control::Dn(dn, reply) => {
                let _ = reply.send(self.view(&dn));
            }
            Control::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            Control::Shutdown(grace, reply) => {
                self.shutdown = Some((Instant::now() + grace, reply));
            }
        }
    }

    fn stats(&self) -> EngineStats {
        let mut platforms: BTreeMap<&Platform, PlatformStats> = self
            .lanes
            .iter()
            .map(|(platform, lane)| {
                (
                    platform,
                    PlatformStats {
                        platform: platform.to_string(),
                        connected: lane.connected,
                        credit: lane.credit,
                        publications_in_flight: lane.publisher.in_flight(),
                        publications_queued: lane.publisher.ready_len(),
                        user_problems: lane.problems.len(),
                        ..PlatformStats::default()
                    },
                )
            })
            .collect();
        let mut stats = EngineStats {
            dns: self.dns.len(),
            clients: self.clients.len(),
            ..EngineStats::default()
        };
        for state in self.dns.values() {
            let role = self.config.role(state.profile.as_ref().map(|(p, _)| p));
            let lane = state
                .user
                .as_ref()
                .and_then(|u| platforms.get_mut(u.platform()));
            match role {
                Role::Push(_) => {
                    stats.push += 1;
                    if let Some(lane) = lane {
                        lane.push += 1;
                    }
                }
                Role::Pull(_) => {
                    stats.pull += 1;
                    if let Some(lane) = lane {
                        lane.pull += 1;
                    }
                }
                Role::None => {}
            }
        }
        stats.platforms = platforms.into_values().collect();
        stats.publications_in_flight = stats
            .platforms
            .iter()
            .map(|p| p.publications_in_flight)
            .sum();
        stats.publications_queued = stats.platforms.iter().map(|p| p.publications_queued).sum();
        stats.transport_connected = stats.platforms.iter().all(|p| p.connected);
        stats
    }

    fn update_gauges(&self) {
        for lane in self.lanes.values() {
            lane.update_gauges();
        }
    }

    fn view(&self, dn: &str) -> Option<DnView> {
        let (number, state) = self.dns.get_key_value(dn)?;
        let role = self.config.role(state.profile.as_ref().map(|(p, _)| p));
        let lane = state
            .user
            .as_ref()
            .and_then(|u| self.lanes.get(u.platform()));
        let published = lane.and_then(|l| l.publisher.published(number));
        let target = lane.and_then(|l| l.publisher.target(number));
        Some(DnView {
            dn: number.to_string(),
            platform: state.user.as_ref().map(|u| u.platform().to_string()),
            user: state.user.as_ref().map(|u| u.address().to_string()),
            user_problem: state.reported().problem.clone(),
            agent_state: state.agent.name(),
            agent_id: state
                .link()
                .agent_id
                .as_ref()
                .map(|a| a.as_str().to_owned()),
            workmode: state.workmode.map(WorkMode::name),
            device_state: state.device().name(),
            calls: state
                .link()
                .calls
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            profile: state.profile.as_ref().map(|(p, _)| p.to_string()),
            profile_source: state.profile.as_ref().map(|(_, s)| s.as_str()),
            mode: match role {
                Role::Push(_) => "push",
                Role::Pull(_) => "pull",
                Role::None => "none",
            },
            target_state: target.map(|p| p.id.to_string()),
            last_published_state: published.map(|p| p.id.to_string()),
            last_published_availability: published.map(|p| p.presence.availability.get()),
            last_publication_error: state.reported().last_error.clone(),
            last_reported_availability: state.reported().last_availability,
            last_reported_activity: state.reported().last_activity.clone(),
            dnd: self.tracker.last(number).map(DndState::as_str),
            registered_clients: state.link().clients.len(),
        })
    }
}

/// Hands a subscription change to the transport without waiting for it.
fn spawn_subscription(
    transport: &Arc<dyn PresenceTransport>,
    users: BTreeSet<UserId>,
    subscribe: bool,
) {
    let users: Vec<UserId> = users.into_iter().collect();
    let transport = Arc::clone(transport);
    tokio::spawn(async move {
        let result = if subscribe {
            transport.subscribe(&users).await
        } else {
            transport.unsubscribe(&users).await
        };
        if let Err(error) = result {
            let what = if subscribe {
                "subscribe"
            } else {
                "unsubscribe"
            };
            tracing::warn!(%error, users = users.len(), "{what} failed");
        }
    });
}

fn spawn_publish(
    transport: &Arc<dyn PresenceTransport>,
    done: &mpsc::UnboundedSender<Completion>,
    platform: Platform,
    ticket: Ticket<DnNumber>,
    user: UserId,
    publication: Arc<Publication>,
) {
    let transport = Arc::clone(transport);
    let done = done.clone();
    tokio::spawn(async move {
        let result = transport.publish(&user, &publication).await;
        let _ = done.send(Completion::Publish {
            platform,
            ticket,
            result,
        });
    });
}

/// The agent state right after login **(decision)**: T-Server puts a logged-in agent in
/// NotReady unless the login's work mode says otherwise: `AutoIn`/`ManualIn` → Ready,
/// `AfterCallWork` → ACW, `WalkAway` → Walk_Away, anything else → NotReady.
fn login_state(workmode: Option<WorkMode>) -> AgentState {
    match workmode {
        Some(WorkMode::AutoIn | WorkMode::ManualIn) => AgentState::Ready,
        Some(mode) => mode.agent_state(),
        None => AgentState::NotReady,
    }
}
