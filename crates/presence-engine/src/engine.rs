//! The engine's event loop and its handlers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use presence_config::ProfileSource;
use presence_model::{AgentState, DnNumber, DndState, SipUri};
use presence_pull::DndTracker;
use presence_push::{Publication, Publisher, Ticket};
use presence_tlib::{
    ClientId, ClientMessage, ClientRequest, ClientSink, ErrorCode, Extensions, LinkInput,
    ServerEvent, WorkMode, ext,
};
use presence_transport::{
    EventReceiver, PresenceTransport, PresenceUpdate, TransportError, TransportEvent,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use crate::compiled::{EngineConfig, Role};
use crate::state::{DnState, DnView};
use crate::{Control, EngineHandle, EngineOptions, EngineStats, ReloadReport, metric};

/// The outcome of one publication, sent back by its task.
struct Completion {
    ticket: Ticket<DnNumber>,
    result: Result<(), TransportError>,
}

/// The engine. Build it with [`Engine::new`], run it with [`Engine::run`].
pub struct Engine<T, S> {
    config: Arc<EngineConfig>,
    transport: Arc<T>,
    sink: S,
    options: EngineOptions,
    dns: BTreeMap<DnNumber, DnState>,
    by_uri: HashMap<SipUri, DnNumber>,
    clients: HashMap<ClientId, BTreeSet<DnNumber>>,
    publisher: Publisher<DnNumber>,
    tracker: DndTracker<DnNumber>,
    /// Users the transport should be subscribed to (pull DNs with a URI).
    subscribed: BTreeSet<SipUri>,
    to_subscribe: BTreeSet<SipUri>,
    to_unsubscribe: BTreeSet<SipUri>,
    connected: bool,
    completions_tx: mpsc::UnboundedSender<Completion>,
    completions: mpsc::UnboundedReceiver<Completion>,
    control: mpsc::Receiver<Control>,
    shutdown: Option<(Instant, oneshot::Sender<()>)>,
}

impl<T, S> std::fmt::Debug for Engine<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dns", &self.dns.len())
            .field("clients", &self.clients.len())
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl<T: PresenceTransport, S: ClientSink> Engine<T, S> {
    /// An engine on a configuration, a transport and a sink towards the clients.
    pub fn new(
        config: EngineConfig,
        transport: Arc<T>,
        sink: S,
        options: EngineOptions,
    ) -> (Self, EngineHandle) {
        let (control_tx, control) = mpsc::channel(64);
        let (completions_tx, completions) = mpsc::unbounded_channel();
        let mut engine = Engine {
            config: Arc::new(config),
            transport,
            sink,
            options,
            dns: BTreeMap::new(),
            by_uri: HashMap::new(),
            clients: HashMap::new(),
            publisher: Publisher::new(options.retry),
            tracker: DndTracker::new(),
            subscribed: BTreeSet::new(),
            to_subscribe: BTreeSet::new(),
            to_unsubscribe: BTreeSet::new(),
            connected: false,
            completions_tx,
            completions,
            control,
            shutdown: None,
        };
        let config = Arc::clone(&engine.config);
        engine.apply_config(&config);
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
            if let Some((deadline, _)) = &self.shutdown {
                let drained = self.publisher.in_flight() == 0
                    && (self.publisher.ready_len() == 0 || !self.connected);
                if drained || Instant::now() >= *deadline {
                    break;
                }
            }
            if !link_open && !events_open && !control_open && self.publisher.in_flight() == 0 {
                break;
            }
            let retry = self.publisher.poll_timeout().map(Instant::from_std);
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
                    self.publisher.handle_timeout(now());
                }
            }
        }
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
        }
    }

    // ----- configuration -------------------------------------------------------------

    /// Brings the DN table in line with `config` and re-resolves every DN.
    fn apply_config(&mut self, config: &Arc<EngineConfig>) -> ReloadReport {
        self.config = Arc::clone(config);
        let mut report = ReloadReport::default();
        let wanted: BTreeMap<DnNumber, Option<SipUri>> = config
            .config()
            .extensions()
            .iter()
            .map(|ext| (ext.number.clone(), ext.uri.clone()))
            .collect();
        report.dns = wanted.len();
        // DNs that left the configuration.
        let gone: Vec<DnNumber> = self
            .dns
            .keys()
            .filter(|dn| !wanted.contains_key(*dn))
            .cloned()
            .collect();
        for dn in gone {
            self.set_profile(&dn, None);
            if let Some(state) = self.dns.remove(&dn) {
                if let Some(uri) = &state.uri {
                    self.by_uri.remove(uri);
                }
                for client in state.clients {
                    if let Some(set) = self.clients.get_mut(&client) {
                        set.remove(&dn);
                    }
                }
            }
            report.removed += 1;
        }
        for (dn, uri) in wanted {
            let current = self.dns.get(&dn).map(|s| s.uri.clone());
            match current {
                None => {
                    self.dns.insert(dn.clone(), DnState::new(uri.clone()));
                    if let Some(uri) = uri {
                        self.by_uri.insert(uri, dn.clone());
                    }
                    report.added += 1;
                }
                Some(old) if old != uri => {
                    // A new user behind the DN: leave the old user alone, start afresh.
                    self.set_profile(&dn, None);
                    if let Some(old) = &old {
                        self.by_uri.remove(old);
                    }
                    if let Some(uri) = &uri {
                        self.by_uri.insert(uri.clone(), dn.clone());
                    }
                    if let Some(state) = self.dns.get_mut(&dn) {
                        state.uri = uri;
                    }
                }
                Some(_) => {}
            }
            let before = self.dns.get(&dn).and_then(|s| s.profile.clone());
            let login = self.dns.get(&dn).and_then(|s| s.login_profile.clone());
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
        // A login-level profile that needs a SIP address the DN does not have cannot apply.
        if let Some((name, ProfileSource::Login)) = &chosen {
            let has_uri = self.dns.get(dn).is_some_and(|s| s.uri.is_some());
            let needs_uri = !matches!(self.config.role(Some(name)), Role::None);
            if needs_uri && !has_uri {
                refused = Some(format!(
                    "profile `{name}` cannot apply: DN `{dn}` has no `uri` in the configuration"
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
    /// mode changes.
    fn set_profile(&mut self, dn: &DnNumber, profile: Option<(DnNumber, ProfileSource)>) {
        let Some(state) = self.dns.get_mut(dn) else {
            return;
        };
        let old_role = self.config.role(state.profile.as_ref().map(|(p, _)| p));
        let new_role = self.config.role(profile.as_ref().map(|(p, _)| p));
        state.profile = profile;
        let uri = state.uri.clone();
        if !new_role.is_push() {
            self.publisher.remove(dn);
        }
        match (&uri, old_role.is_pull(), new_role.is_pull()) {
            (Some(uri), true, false) => {
                self.tracker.reset(dn);
                self.subscribed.remove(uri);
                self.to_subscribe.remove(uri);
                self.to_unsubscribe.insert(uri.clone());
            }
            (Some(uri), false, true) => {
                self.tracker.reset(dn);
                self.subscribed.insert(uri.clone());
                self.to_unsubscribe.remove(uri);
                self.to_subscribe.insert(uri.clone());
            }
            _ => {}
        }
        match new_role {
            Role::Push(_) => self.refresh_push(dn),
            Role::Pull(mapper) => {
                // Ranges may have changed: judge the last known availability again.
                let last = self.dns.get(dn).and_then(|s| s.last_availability);
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

    /// Hands the DN's current publication to the publisher (push DNs only).
    fn refresh_push(&mut self, dn: &DnNumber) {
        let Some(state) = self.dns.get(dn) else {
            return;
        };
        if state.uri.is_none() {
            return;
        }
        let Role::Push(table) = self.config.role(state.profile.as_ref().map(|(p, _)| p)) else {
            return;
        };
        let publication = table.get(state.agent, state.device()).cloned();
        self.publisher.set(dn.clone(), publication);
    }

    // ----- contact-centre link -------------------------------------------------------

    fn on_link(&mut self, input: LinkInput) {
        match input {
            LinkInput::Connected(client, peer) => {
                tracing::info!(%client, %peer, "contact-centre client connected");
                self.clients.entry(client).or_default();
            }
            LinkInput::Disconnected(client) => {
                tracing::info!(%client, "contact-centre client disconnected");
                for dn in self.clients.remove(&client).unwrap_or_default() {
                    if let Some(state) = self.dns.get_mut(&dn) {
                        state.clients.remove(&client);
                    }
                }
            }
            LinkInput::Message(client, message) => self.on_message(client, message),
        }
        metrics::gauge!(metric::CLIENTS).set(self.clients.len() as f64);
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
                state.clients.insert(client);
                self.clients.entry(client).or_default().insert(dn.clone());
                ServerEvent::EventRegistered {
                    reference_id,
                    this_dn: dn.clone(),
                    dnd: self.tracker.last(&dn),
                }
            }
            ClientRequest::UnregisterAddress { .. } => {
                if !state.clients.remove(&client) {
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
                    let who = state.agent_id.as_ref().map_or("an agent", |a| a.as_str());
                    let message = format!("{who} is already logged in on DN `{dn}`");
                    return self.refuse(client, reference_id, ErrorCode::InvalidState, message);
                }
                state.agent = login_state(workmode);
                state.agent_id = Some(agent_id.clone());
                state.workmode = workmode;
                state.login_profile = extensions.presence_profile().map(str::to_owned);
                let login = state.login_profile.clone();
                let (profile, refused) = self.resolve(&dn, login.as_deref());
                let mut answer = Extensions::new();
                match &profile {
                    Some((name, source)) => {
                        answer.insert(ext::PRESENCE_PROFILE, name.as_str());
                        answer.insert(ext::PRESENCE_PROFILE_SOURCE, source.as_str());
                    }
                    None => {
                        answer.insert(ext::PRESENCE_PROFILE_SOURCE, "none");
                    }
                }
                if let Some(reason) = refused {
                    answer.insert(ext::PRESENCE_PROFILE_ERROR, reason);
                    // The refused level is forgotten: a reload does not bring it back.
                    if let Some(state) = self.dns.get_mut(&dn) {
                        state.login_profile = None;
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
                state.agent_id = None;
                state.workmode = None;
                state.login_profile = None;
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
                state.calls.insert(conn_id);
                ServerEvent::EventACK { reference_id }
            }
            ClientRequest::EventReleased { conn_id, .. } => {
                state.calls.remove(&conn_id);
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
            TransportEvent::Connected { peer } => {
                tracing::info!(%peer, "presence transport connected: resynchronising");
                metrics::counter!(metric::TRANSPORT_EVENTS, "event" => "connected").increment(1);
                self.connected = true;
                self.publisher.resync();
                self.tracker.reset_all();
                self.to_unsubscribe.clear();
                self.to_subscribe = self.subscribed.clone();
            }
            TransportEvent::Disconnected { reason } => {
                if self.connected {
                    tracing::warn!(%reason, "presence transport disconnected");
                }
                metrics::counter!(metric::TRANSPORT_EVENTS, "event" => "disconnected").increment(1);
                self.connected = false;
            }
            TransportEvent::Presence(update) => self.on_presence(update),
            TransportEvent::Subscribed { users } => {
                // The first update after a (re-)subscription always reports (SPEC §4).
                for user in users {
                    if let Some(dn) = self.by_uri.get(&user) {
                        self.tracker.reset(dn);
                    }
                }
            }
        }
        self.update_gauges();
    }

    fn on_presence(&mut self, update: PresenceUpdate) {
        metrics::counter!(metric::PRESENCE_UPDATES).increment(1);
        let Some(dn) = self.by_uri.get(&update.user).cloned() else {
            return;
        };
        let Some(state) = self.dns.get_mut(&dn) else {
            return;
        };
        state.last_availability = Some(update.raw_availability);
        state.last_activity.clone_from(&update.activity);
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
        tracing::debug!(%dn, dnd = dnd.as_str(), availability = ?state.last_availability, "DND change");
        for client in &state.clients {
            self.sink.send(
                *client,
                ServerEvent::dnd(
                    dnd,
                    dn.clone(),
                    state.last_availability.unwrap_or(0),
                    state.last_activity.clone(),
                    profile.clone(),
                ),
            );
        }
    }

    // ----- publications --------------------------------------------------------------

    /// Sends subscription changes and the publications that are due.
    fn flush(&mut self) {
        if !self.to_unsubscribe.is_empty() {
            let users = std::mem::take(&mut self.to_unsubscribe);
            self.spawn_subscription(users, false);
        }
        if self.connected && !self.to_subscribe.is_empty() {
            let users = std::mem::take(&mut self.to_subscribe);
            self.spawn_subscription(users, true);
        }
        while self.connected && self.publisher.in_flight() < self.options.max_in_flight {
            let Some((ticket, publication)) = self.publisher.poll_publish() else {
                break;
            };
            let Some(uri) = self.dns.get(&ticket.user).and_then(|s| s.uri.clone()) else {
                self.publisher.remove(&ticket.user);
                continue;
            };
            self.spawn_publish(ticket, uri, publication);
        }
        self.update_gauges();
    }

    /// Hands a subscription change to the transport without waiting for it.
    fn spawn_subscription(&self, users: BTreeSet<SipUri>, subscribe: bool) {
        let users: Vec<SipUri> = users.into_iter().collect();
        let transport = Arc::clone(&self.transport);
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

    fn spawn_publish(&self, ticket: Ticket<DnNumber>, uri: SipUri, publication: Arc<Publication>) {
        let transport = Arc::clone(&self.transport);
        let done = self.completions_tx.clone();
        tokio::spawn(async move {
            let result = transport.publish(&uri, &publication.presence).await;
            let _ = done.send(Completion { ticket, result });
        });
    }

    fn on_completion(&mut self, done: Completion) {
        match done.result {
            Ok(()) => {
                metrics::counter!(metric::PUBLICATIONS, "result" => "ok").increment(1);
                self.publisher.complete(&done.ticket);
            }
            Err(TransportError::NotConnected | TransportError::Shutdown) => {
                metrics::counter!(metric::PUBLICATIONS, "result" => "parked").increment(1);
                self.publisher.park(&done.ticket);
            }
            Err(error) => {
                metrics::counter!(metric::PUBLICATIONS, "result" => "failed").increment(1);
                tracing::warn!(dn = %done.ticket.user, %error, "publication failed; will retry");
                self.publisher.fail(&done.ticket, now());
            }
        }
    }

    // ----- control -------------------------------------------------------------------

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Reload(config, reply) => {
                let config = Arc::new(*config);
                let report = self.apply_config(&config);
                metrics::counter!(metric::RELOADS).increment(1);
                tracing::info!(?report, "configuration reloaded");
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
        let mut stats = EngineStats {
            dns: self.dns.len(),
            clients: self.clients.len(),
            publications_in_flight: self.publisher.in_flight(),
            publications_queued: self.publisher.ready_len(),
            transport_connected: self.connected,
            ..EngineStats::default()
        };
        for state in self.dns.values() {
            match self.config.role(state.profile.as_ref().map(|(p, _)| p)) {
                Role::Push(_) => stats.push += 1,
                Role::Pull(_) => stats.pull += 1,
                Role::None => {}
            }
        }
        stats
    }

    fn update_gauges(&self) {
        metrics::gauge!(metric::PUBLICATIONS_IN_FLIGHT).set(self.publisher.in_flight() as f64);
        metrics::gauge!(metric::PUBLICATIONS_QUEUED).set(self.publisher.ready_len() as f64);
        metrics::gauge!(metric::TRANSPORT_CONNECTED).set(if self.connected { 1.0 } else { 0.0 });
    }

    fn view(&self, dn: &str) -> Option<DnView> {
        let (number, state) = self.dns.get_key_value(dn)?;
        let role = self.config.role(state.profile.as_ref().map(|(p, _)| p));
        let published = self.publisher.published(number);
        Some(DnView {
            dn: number.to_string(),
            uri: state.uri.as_ref().map(ToString::to_string),
            agent_state: state.agent.name(),
            agent_id: state.agent_id.as_ref().map(|a| a.as_str().to_owned()),
            workmode: state.workmode.map(WorkMode::name),
            device_state: state.device().name(),
            calls: state.calls.iter().map(|c| c.as_str().to_owned()).collect(),
            profile: state.profile.as_ref().map(|(p, _)| p.to_string()),
            profile_source: state.profile.as_ref().map(|(_, s)| s.as_str()),
            mode: match role {
                Role::Push(_) => "push",
                Role::Pull(_) => "pull",
                Role::None => "none",
            },
            target_state: self.publisher.target(number).map(|p| p.id.to_string()),
            last_published_state: published.map(|p| p.id.to_string()),
            last_published_availability: published.map(|p| p.presence.availability.get()),
            last_sfb_availability: state.last_availability,
            last_sfb_activity: state.last_activity.clone(),
            dnd: self.tracker.last(number).map(DndState::as_str),
            registered_clients: state.clients.len(),
        })
    }
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
