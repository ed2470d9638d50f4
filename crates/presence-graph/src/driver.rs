//! The tokio driver: owns the [`GraphCore`], sends its requests with reqwest, feeds the
//! answers and timeouts back, and implements [`PresenceTransport`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use presence_model::{EntraId, Platform, Publication, Upn, UserId};
use presence_transport::settings::HumanDuration;
use presence_transport::{
    EventSender, PresenceTransport, TransportError, TransportEvent, TransportStatus,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::GraphError;
use crate::core::{
    CoreConfig, Event, Failure, GraphCore, HttpRequest, HttpResponse, Method, PublishId, RequestId,
    RequestKind,
};
use crate::settings::{GraphSettings, Secret, SecretSource};
use crate::wire;

type Reply = oneshot::Sender<Result<(), TransportError>>;

enum Command {
    Publish {
        user: UserId,
        publication: Publication,
        reply: Reply,
    },
    Unpublish {
        user: UserId,
        reply: Reply,
    },
    Subscribe(Vec<UserId>),
    Unsubscribe(Vec<UserId>),
    Shutdown {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
}

#[derive(Debug)]
struct Shared {
    status: Mutex<TransportStatus>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, TransportStatus> {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The Microsoft Teams transport: a [`PresenceTransport`] handle over one driver task.
/// Cheap to clone; the task stops when every clone is dropped or on
/// [`shutdown`](PresenceTransport::shutdown).
#[derive(Clone, Debug)]
pub struct GraphTransport {
    platform: Platform,
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!("presence-bridge/", env!("CARGO_PKG_VERSION"));

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Where each app's secret comes from: client id, source, the key naming it.
type Sources = Vec<(String, SecretSource, &'static str)>;

/// Reads every app's secret now (a missing file or variable is an error naming its key).
fn read_secrets(sources: &Sources) -> Result<Vec<(String, Secret)>, GraphError> {
    sources
        .iter()
        .map(|(client_id, source, key)| Ok((client_id.clone(), source.read(key)?)))
        .collect()
}

/// The HTTP client: reqwest over our own rustls configuration (ring provider).
fn http_client(settings: &GraphSettings) -> Result<reqwest::Client, GraphError> {
    let tls = crate::tls::client_config(settings.ca.as_deref())?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // Entra and Graph answer the bridge's requests without redirects. Following one
        // would send the token request's body (the client secret) to wherever a `Location`
        // points, even over plain HTTP: a redirect is an error instead.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.request_timeout)
        .connect_timeout(settings.request_timeout)
        .pool_max_idle_per_host(settings.max_concurrency as usize)
        .user_agent(USER_AGENT)
        .build()
        .map_err(GraphError::Client)
}

impl GraphTransport {
    /// Validates `settings` (refusing what [`GraphSettings::findings`] calls an error), reads
    /// the secrets and the CA file now, and spawns the driver task on the current tokio
    /// runtime. It fetches tokens at once and reports into `events`.
    pub fn start(
        settings: &GraphSettings,
        platform: Platform,
        events: EventSender,
    ) -> Result<(GraphTransport, JoinHandle<()>), GraphError> {
        settings.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| GraphError::NoRuntime)?;
        let sources = settings.secret_sources()?;
        let secrets = read_secrets(&sources)?;
        let client = http_client(settings)?;
        let config = CoreConfig::from_settings(settings, platform.clone(), secrets)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        let peer = config.graph_url.clone();
        let max_body = config.max_body;
        let core = GraphCore::new(config, seed, now());
        let shared = Arc::new(Shared {
            status: Mutex::new(TransportStatus {
                platform: platform.clone(),
                connected: false,
                peer,
                detail: Some("fetching a token".to_owned()),
                publications_in_flight: 0,
            }),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let (answers, answers_rx) = mpsc::unbounded_channel();
        let driver = Driver {
            core,
            client,
            max_body,
            commands: rx,
            answers,
            answers_rx,
            events,
            waiters: HashMap::new(),
            next_id: 0,
            shared: Arc::clone(&shared),
            shutdown: None,
            sources,
            token_requests: Vec::new(),
            reread_at: None,
        };
        let task = runtime.spawn(driver.run());
        Ok((
            GraphTransport {
                platform,
                commands,
                shared,
            },
            task,
        ))
    }

    fn check(&self, user: &UserId) -> Result<(), TransportError> {
        TransportError::ensure_platform(&self.platform, user)
    }

    async fn call(&self, make: impl FnOnce(Reply) -> Command) -> Result<(), TransportError> {
        let (reply, wait) = oneshot::channel();
        self.commands
            .send(make(reply))
            .map_err(|_| TransportError::Shutdown)?;
        wait.await.map_err(|_| TransportError::Shutdown)?
    }
}

#[async_trait::async_trait]
impl PresenceTransport for GraphTransport {
    async fn publish(
        &self,
        user: &UserId,
        publication: &Publication,
    ) -> Result<(), TransportError> {
        self.check(user)?;
        self.call(|reply| Command::Publish {
            user: user.clone(),
            publication: publication.clone(),
            reply,
        })
        .await
    }

    async fn unpublish(&self, user: &UserId) -> Result<(), TransportError> {
        self.check(user)?;
        self.call(|reply| Command::Unpublish {
            user: user.clone(),
            reply,
        })
        .await
    }

    async fn subscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        for user in users {
            self.check(user)?;
        }
        self.commands
            .send(Command::Subscribe(users.to_vec()))
            .map_err(|_| TransportError::Shutdown)
    }

    async fn unsubscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        self.commands
            .send(Command::Unsubscribe(users.to_vec()))
            .map_err(|_| TransportError::Shutdown)
    }

    fn status(&self) -> Vec<TransportStatus> {
        vec![self.shared.lock().clone()]
    }

    async fn shutdown(&self, grace: Duration) {
        let (done, wait) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { grace, done })
            .is_ok()
        {
            let _ = wait.await;
        }
        let mut status = self.shared.lock();
        status.connected = false;
        status.detail = Some("shut down".to_owned());
    }
}

type Answer = (RequestId, Result<HttpResponse, Failure>);

struct Driver {
    core: GraphCore,
    client: reqwest::Client,
    max_body: usize,
    commands: mpsc::UnboundedReceiver<Command>,
    answers: mpsc::UnboundedSender<Answer>,
    answers_rx: mpsc::UnboundedReceiver<Answer>,
    events: EventSender,
    waiters: HashMap<PublishId, Reply>,
    next_id: u64,
    shared: Arc<Shared>,
    shutdown: Option<(Instant, oneshot::Sender<()>)>,
    /// Where the secrets come from: a secret file is read again when Entra refuses the
    /// secret, so that a secret rotated in its file is taken without a restart.
    sources: Sources,
    /// Token requests on the wire (few at a time).
    token_requests: Vec<RequestId>,
    /// While a credential is refused: when to read the secrets again.
    reread_at: Option<Instant>,
}

/// How often the secret files are read again while Entra refuses a secret.
const REREAD_EVERY: Duration = Duration::from_secs(2);

impl Driver {
    async fn run(mut self) {
        loop {
            self.flush();
            if let Some((deadline, _)) = &self.shutdown
                && (self.waiters.is_empty() || Instant::now() >= *deadline)
            {
                break;
            }
            let wake = self
                .core
                .poll_timeout()
                .map(Instant::from_std)
                .into_iter()
                .chain(self.shutdown.as_ref().map(|(d, _)| *d))
                .min();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    // Every handle is gone: stop.
                    None => break,
                },
                Some((id, answer)) = self.answers_rx.recv() => {
                    let now = now();
                    let token = self.token_requests.iter().position(|t| *t == id);
                    if let Some(at) = token {
                        self.token_requests.swap_remove(at);
                    }
                    let refused = token.is_some()
                        && matches!(&answer, Ok(r) if (400..500).contains(&r.status) && r.status != 429);
                    match answer {
                        Ok(response) => self.core.handle_response(id, response, now),
                        Err(failure) => self.core.handle_failure(id, failure, now),
                    }
                    if refused {
                        self.reread_secrets(now);
                    }
                }
                () = sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                    self.core.handle_timeout(now());
                }
                () = sleep_until(self.reread_at.unwrap_or_else(far_future)), if self.reread_at.is_some() => {
                    self.reread_secrets(now());
                }
            }
        }
        for (_, reply) in self.waiters.drain() {
            let _ = reply.send(Err(TransportError::Shutdown));
        }
        {
            let mut status = self.shared.lock();
            status.connected = false;
            status.detail = Some("shut down".to_owned());
            status.publications_in_flight = 0;
        }
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
        }
    }

    fn command(&mut self, command: Command) {
        let now = now();
        if self.shutdown.is_some() {
            match command {
                Command::Publish { reply, .. } | Command::Unpublish { reply, .. } => {
                    let _ = reply.send(Err(TransportError::Shutdown));
                }
                Command::Shutdown { done, .. } => {
                    let _ = done.send(());
                }
                Command::Subscribe(_) | Command::Unsubscribe(_) => {}
            }
            return;
        }
        match command {
            Command::Publish {
                user,
                publication,
                reply,
            } => {
                self.next_id += 1;
                let id = PublishId(self.next_id);
                self.waiters.insert(id, reply);
                self.core.publish(&user, &publication, id, now);
            }
            Command::Unpublish { user, reply } => {
                self.next_id += 1;
                let id = PublishId(self.next_id);
                self.waiters.insert(id, reply);
                self.core.unpublish(&user, id, now);
            }
            Command::Subscribe(users) => self.core.subscribe(&users, now),
            Command::Unsubscribe(users) => self.core.unsubscribe(&users, now),
            Command::Shutdown { grace, done } => {
                self.shutdown = Some((Instant::now() + grace, done));
                let mut status = self.shared.lock();
                status.connected = false;
                status.detail = Some("shutting down".to_owned());
            }
        }
    }

    /// Sends what the core wants sent and reports what it reports.
    fn flush(&mut self) {
        while let Some(request) = self.core.poll_request() {
            self.send(request);
        }
        // The status first: whoever reads an event sees a status at least as new.
        if self.shutdown.is_none() {
            let core = self.core.status();
            let mut status = self.shared.lock();
            status.connected = core.connected;
            status.detail = core.detail;
            status.publications_in_flight = self.waiters.len();
        }
        while let Some(event) = self.core.poll_event() {
            self.event(event);
        }
        if self.shutdown.is_none() {
            self.shared.lock().publications_in_flight = self.waiters.len();
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Settled { id, user, result } => {
                if let Err(error) = &result {
                    tracing::debug!(%user, %error, "publication not delivered");
                }
                if let Some(reply) = self.waiters.remove(&id) {
                    let _ = reply.send(result);
                }
            }
            Event::CredentialRefused {
                client_id,
                description,
                retry_in,
            } => {
                tracing::error!(
                    %client_id,
                    %description,
                    retry_in = %HumanDuration(retry_in),
                    "Entra refused the app's credential; retrying with back-off"
                );
            }
            Event::CredentialRecovered { client_id } => {
                tracing::info!(%client_id, "Entra accepts the app's credential again");
            }
            Event::TokenTrouble {
                client_id,
                message,
                retry_in,
            } => {
                tracing::warn!(
                    %client_id,
                    %message,
                    retry_in = %HumanDuration(retry_in),
                    "cannot get a token; retrying with back-off"
                );
            }
            Event::Warning { message } => tracing::warn!(%message),
            Event::Transport(event) => {
                // The engine logs connection changes and user problems (once each); here
                // they are only traced for debugging.
                match &event {
                    TransportEvent::Connected { peer, credit, .. } => {
                        tracing::debug!(%peer, credit, "connected to Microsoft Graph");
                    }
                    TransportEvent::Disconnected { reason, .. } => {
                        tracing::debug!(%reason, "disconnected from Microsoft Graph");
                    }
                    _ => {}
                }
                self.events.send(event);
            }
        }
    }

    /// Reads the secret files again (after Entra refused a credential, and every
    /// [`REREAD_EVERY`] while the transport has no token); a changed secret goes to the
    /// core, which asks for a token with it at once, not after the back-off.
    fn reread_secrets(&mut self, now: std::time::Instant) {
        self.reread_at = None;
        for (client_id, source, key) in &self.sources {
            // Only a file can change under a running process.
            if !matches!(source, SecretSource::File(_)) {
                continue;
            }
            match source.read(key) {
                Ok(secret) => {
                    if self.core.set_secret(client_id, secret, now) {
                        tracing::info!(%client_id, key, "the app's secret changed: asking Entra again");
                    }
                }
                Err(error) => {
                    tracing::warn!(%client_id, %error, "cannot read the app's secret again");
                }
            }
        }
        let rereadable = self
            .sources
            .iter()
            .any(|(_, source, _)| matches!(source, SecretSource::File(_)));
        if rereadable && !self.core.is_connected() {
            self.reread_at = Some(Instant::now() + REREAD_EVERY);
        }
    }

    fn send(&mut self, request: HttpRequest) {
        if request.kind == RequestKind::Token {
            self.token_requests.push(request.id);
        }
        tracing::trace!(id = request.id.0, kind = ?request.kind, operation = request.operation(), "request");
        let client = self.client.clone();
        let answers = self.answers.clone();
        let limit = self.max_body;
        tokio::spawn(async move {
            let id = request.id;
            let answer = exchange(&client, request, limit).await;
            let _ = answers.send((id, answer));
        });
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

/// One HTTP exchange: the answer with at most `limit` body bytes, or why there is none.
async fn exchange(
    client: &reqwest::Client,
    request: HttpRequest,
    limit: usize,
) -> Result<HttpResponse, Failure> {
    let method = match request.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
    };
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    if request.method == Method::Post {
        builder = builder.body(request.body);
    }
    let mut response = builder.send().await.map_err(failure)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(wire::parse_retry_after);
    let Some(body) = body_within(&mut response, limit).await.map_err(failure)? else {
        return Err(Failure::TooLarge { limit });
    };
    Ok(HttpResponse {
        status,
        retry_after,
        body,
    })
}

/// The answer's body if it is at most `limit` bytes; `None` (and nothing more read) as
/// soon as it is longer.
async fn body_within(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn failure(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    let mut text = presence_model::error_chain(&error);
    // A refused certificate or a TLS alert: say what it means and what to change.
    let host = error
        .url()
        .and_then(|url| url.host_str())
        .map_or_else(|| "the server".to_owned(), |host| format!("`{host}`"));
    let peer = presence_tls::Peer {
        name: &host,
        ca_setting: "`[teams] ca` (trust anchors added to the system's, such as a TLS-inspecting proxy's CA)",
        name_setting: "`[teams] authority` and `graph-url`",
        client_certificate_setting: None,
    };
    if let Some(sentence) = peer.explain(&error) {
        text = format!("{sentence} ({text})");
    }
    Failure::Network(text)
}

/// For `check --online`: gets a token for every app registration (no presence request is
/// made) and looks each UPN up with the first app's token. A refused credential is an
/// error; a UPN that does not resolve is an `Err` in its entry.
pub async fn probe(
    settings: &GraphSettings,
    upns: &[Upn],
) -> Result<Vec<(Upn, Result<EntraId, String>)>, GraphError> {
    settings.validate()?;
    let secrets = read_secrets(&settings.secret_sources()?)?;
    let client = http_client(settings)?;
    let mut first_token = None;
    for (client_id, secret) in &secrets {
        let body = wire::token_form(client_id, secret.expose(), settings.scope.trim());
        let mut response = client
            .post(settings.token_url())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|source| GraphError::Http {
                what: "the token request".to_owned(),
                source,
            })?;
        let status = response.status().as_u16();
        let bytes = body_within(&mut response, crate::core::MAX_BODY)
            .await
            .map_err(|source| GraphError::Http {
                what: "the token answer".to_owned(),
                source,
            })?
            .ok_or(GraphError::AnswerTooLarge {
                what: "the token answer",
                limit: crate::core::MAX_BODY,
            })?;
        if !(200..300).contains(&status) {
            let description = wire::parse_entra_error(&bytes)
                .map(|e| e.summary())
                .unwrap_or_else(|_| format!("HTTP {status}"));
            return Err(GraphError::Credential {
                client_id: client_id.clone(),
                description,
            });
        }
        let token = wire::parse_token(&bytes)?;
        first_token.get_or_insert(token.access_token);
    }
    let token = first_token.unwrap_or_default();
    let mut out = Vec::with_capacity(upns.len());
    for upn in upns {
        let url = format!(
            "{}/users/{}?$select=id",
            settings.graph_base(),
            wire::path_encode(upn.as_str())
        );
        let result = match client.get(&url).bearer_auth(&token).send().await {
            Err(e) => Err(format!("{e}")),
            Ok(mut response) => {
                let status = response.status().as_u16();
                let body = body_within(&mut response, crate::core::MAX_BODY).await;
                let bytes = match body {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => {
                        let limit = crate::core::MAX_BODY;
                        out.push((
                            upn.clone(),
                            Err(format!(
                                "HTTP {status}: the answer is larger than {limit} bytes and was refused"
                            )),
                        ));
                        continue;
                    }
                    Err(e) => {
                        out.push((upn.clone(), Err(format!("HTTP {status}: {e}"))));
                        continue;
                    }
                };
                if (200..300).contains(&status) {
                    wire::parse_user(&bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|id| EntraId::new(&id).map_err(|e| e.to_string()))
                } else {
                    let reason = wire::parse_graph_error(&bytes)
                        .map(|e| e.to_string())
                        .unwrap_or_else(|_| "no Graph error body".to_owned());
                    Err(if status == 404 {
                        format!("not found in the tenant ({reason})")
                    } else {
                        format!("HTTP {status}: {reason}")
                    })
                }
            }
        };
        out.push((upn.clone(), result));
    }
    Ok(out)
}
