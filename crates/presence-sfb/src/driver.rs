//! The tokio driver: owns the socket, pumps the sans-IO [`Endpoint`], and implements the
//! port ([`PresenceTransport`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use presence_model::{Platform, Presence, Publication, SipUri, UserAddress, UserId};
use presence_transport::settings::HumanDuration;
use presence_transport::{
    EventSender, Outstanding, PresenceTransport, PresenceUpdate, TransportError, TransportEvent,
    TransportStatus,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::SfbError;
use crate::endpoint::{Endpoint, Event, PublishId};
use crate::settings::{Severity, SfbSettings, Transport};
use presence_model::random::{Backoff, SplitMix64};

type Reply = oneshot::Sender<Result<(), TransportError>>;

/// The most queued commands the session takes, after the one it woke for, into one write.
const COMMAND_BATCH: usize = 256;

/// How long closing the write side may take when a session ends.
const CLOSE_WRITE: Duration = Duration::from_secs(1);

/// Commands from the handle to the driver task.
enum Command {
    Publish {
        user: SipUri,
        presence: Presence,
        /// The connection the caller's credit came from (0: none).
        epoch: u64,
        reply: Reply,
    },
    Unpublish {
        user: SipUri,
        reply: Reply,
    },
    /// A publication refused before it reached the driver (an unsupported user) gives its
    /// credit back, if that credit is of the current connection.
    Refund {
        epoch: u64,
    },
    Subscribe(Vec<SipUri>),
    Unsubscribe(Vec<SipUri>),
    Shutdown {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Publish { user, .. } => write!(f, "Publish({user})"),
            Command::Unpublish { user, .. } => write!(f, "Unpublish({user})"),
            Command::Refund { epoch } => write!(f, "Refund({epoch})"),
            Command::Subscribe(users) => write!(f, "Subscribe({} users)", users.len()),
            Command::Unsubscribe(users) => write!(f, "Unsubscribe({} users)", users.len()),
            Command::Shutdown { .. } => f.write_str("Shutdown"),
        }
    }
}

/// What the handle and the driver task share.
#[derive(Debug)]
struct Shared {
    platform: Platform,
    peer: String,
    /// The number of the connection that is up; 0 while none is.
    epoch: AtomicU64,
    shut_down: AtomicBool,
    /// Publications handed to the transport and not settled.
    publications: AtomicUsize,
    /// Why the last connection attempt failed or the last connection ended.
    detail: Mutex<Option<String>>,
}

impl Shared {
    fn detail(&self) -> MutexGuard<'_, Option<String>> {
        self.detail
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The Skype for Business transport: the [`PresenceTransport`] handle of a driver task.
/// Cheap to clone; clones drive the same connection.
///
/// It serves one [`Platform`] (the one given to [`start`](Self::start)) and users known by
/// a SIP URI ([`UserAddress::Sip`]); any other user is refused with the permanent
/// [`TransportError::Unsupported`].
///
/// Credit: [`TransportEvent::Connected`] on every (re)connection grants `max-in-flight`;
/// every publication (not removal) settled on that connection grants one more
/// ([`TransportEvent::Credit`]); a publication failed by the loss of the connection grants
/// nothing (credit ends with the connection, [`TransportEvent::Disconnected`]).
#[derive(Clone)]
pub struct SfbTransport {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl fmt::Debug for SfbTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SfbTransport")
            .field("platform", &self.shared.platform)
            .field("pool", &self.shared.peer)
            .field(
                "connected",
                &(self.shared.epoch.load(Ordering::Acquire) != 0),
            )
            .field(
                "publications",
                &self.shared.publications.load(Ordering::Relaxed),
            )
            .finish()
    }
}

/// How to reach the pool, prepared once (TLS material read at start).
struct Connector {
    pool: String,
    server_name: String,
    tls: Option<tokio_rustls::TlsConnector>,
    connect_timeout: Duration,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Connector {
    async fn connect(&self) -> Result<(Box<dyn Stream>, String), SfbError> {
        let attempt = async {
            let tcp = TcpStream::connect(&self.pool)
                .await
                .map_err(|source| SfbError::Connect {
                    pool: self.pool.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            let local = tcp
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "localhost".to_owned());
            let stream: Box<dyn Stream> = match &self.tls {
                None => Box::new(tcp),
                Some(connector) => {
                    let name =
                        ServerName::try_from(self.server_name.clone()).map_err(|source| {
                            SfbError::ServerName {
                                name: self.server_name.clone(),
                                source,
                            }
                        })?;
                    let tls = connector.connect(name, tcp).await.map_err(|source| {
                        SfbError::Handshake {
                            explained: crate::tls::explain_handshake(&source, &self.server_name),
                            source,
                        }
                    })?;
                    Box::new(tls)
                }
            };
            Ok((stream, local))
        };
        timeout(self.connect_timeout, attempt)
            .await
            .map_err(|_| SfbError::ConnectTimeout {
                pool: self.pool.clone(),
                after: self.connect_timeout,
            })?
    }
}

impl SfbTransport {
    /// Starts the driver task on the current tokio runtime; it connects on its own and
    /// reports into `events` (a channel that other transports may share) for `platform`.
    ///
    /// Settings with a [`Severity::Error`] among their
    /// [`findings`](SfbSettings::findings) are refused, and TLS material is read now: a
    /// missing or bad file is an error here (naming the file), not a reconnect loop.
    pub fn start(
        settings: &SfbSettings,
        platform: Platform,
        events: EventSender,
    ) -> Result<(SfbTransport, JoinHandle<()>), SfbError> {
        if let Some(finding) = settings
            .findings()
            .into_iter()
            .find(|f| f.severity == Severity::Error)
        {
            return Err(SfbError::Setting {
                key: finding.key,
                message: finding.message,
            });
        }
        // The Via host is filled in per connection.
        let config = settings.endpoint_config("localhost")?;
        let tls = match settings.transport {
            Transport::Tcp => None,
            Transport::Tls => Some(tokio_rustls::TlsConnector::from(crate::tls::client_config(
                &settings.tls,
            )?)),
        };
        let connector = Connector {
            pool: settings.pool.clone(),
            server_name: settings
                .tls
                .server_name
                .clone()
                .unwrap_or_else(|| settings.pool_host().to_owned()),
            tls,
            connect_timeout: settings.connect_timeout,
        };
        let (commands, rx) = mpsc::channel(1024);
        let shared = Arc::new(Shared {
            platform,
            peer: settings.pool.clone(),
            epoch: AtomicU64::new(0),
            shut_down: AtomicBool::new(false),
            publications: AtomicUsize::new(0),
            detail: Mutex::new(None),
        });
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        let driver = Driver {
            settings: settings.clone(),
            credit: u32::try_from(config.max_in_flight).unwrap_or(u32::MAX),
            connector: Arc::new(connector),
            endpoint: Endpoint::new(config, seed),
            rng: SplitMix64::new(seed.rotate_left(17)),
            commands: rx,
            events,
            waiters: HashMap::new(),
            shared: Arc::clone(&shared),
            epoch: 0,
            connections: 0,
            shutdown: None,
        };
        let task = tokio::spawn(driver.run());
        Ok((SfbTransport { commands, shared }, task))
    }

    /// The platform this transport serves.
    pub fn platform(&self) -> &Platform {
        &self.shared.platform
    }

    /// The SIP URI of a user this transport serves.
    fn address<'u>(&self, user: &'u UserId) -> Result<&'u SipUri, TransportError> {
        let unsupported = |reason: String| TransportError::Unsupported {
            user: user.clone(),
            reason,
        };
        TransportError::ensure_platform(&self.shared.platform, user)?;
        match user.address() {
            UserAddress::Sip(uri) => Ok(uri),
            UserAddress::Upn(_) => Err(unsupported(
                "Skype for Business knows users by SIP URI, not by UPN".to_owned(),
            )),
            UserAddress::EntraId(_) => Err(unsupported(
                "Skype for Business knows users by SIP URI, not by Entra object id".to_owned(),
            )),
        }
    }

    fn addresses(&self, users: &[UserId]) -> Result<Vec<SipUri>, TransportError> {
        users
            .iter()
            .map(|u| self.address(u).cloned())
            .collect::<Result<_, _>>()
    }

    fn gate(&self) -> Result<(), TransportError> {
        if self.shared.shut_down.load(Ordering::Acquire) {
            Err(TransportError::Shutdown)
        } else {
            Ok(())
        }
    }

    async fn command(&self, command: Command) -> Result<(), TransportError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| TransportError::Shutdown)
    }

    async fn call(&self, command: impl FnOnce(Reply) -> Command) -> Result<(), TransportError> {
        let (reply, wait) = oneshot::channel();
        self.command(command(reply)).await?;
        wait.await.map_err(|_| TransportError::Shutdown)?
    }
}

#[async_trait::async_trait]
impl PresenceTransport for SfbTransport {
    /// Publishes the publication's presence in the configured containers. Resolves when
    /// the pool answered `200` (after a 409 fix-up, if one was needed), or with the
    /// failure, once: `NotConnected`, `Timeout`, `Rejected` (with `retry_after` from a
    /// `Retry-After` header). A second publication for a user with one outstanding is sent
    /// after it.
    async fn publish(
        &self,
        user: &UserId,
        publication: &Publication,
    ) -> Result<(), TransportError> {
        self.gate()?;
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        let uri = match self.address(user) {
            Ok(uri) => uri.clone(),
            Err(error) => {
                if epoch != 0 {
                    let _ = self.command(Command::Refund { epoch }).await;
                }
                return Err(error);
            }
        };
        let _outstanding = Outstanding::new(&self.shared.publications);
        let presence = publication.presence.clone();
        self.call(|reply| Command::Publish {
            user: uri,
            presence,
            epoch,
            reply,
        })
        .await
    }

    /// Removes the bridge's category instances for the user (needs no credit). Always
    /// sent, even when nothing was published on this connection: the pool keeps the
    /// bridge's static publications across connections.
    async fn unpublish(&self, user: &UserId) -> Result<(), TransportError> {
        self.gate()?;
        let uri = self.address(user)?.clone();
        self.call(|reply| Command::Unpublish { user: uri, reply })
            .await
    }

    async fn subscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        self.gate()?;
        let uris = self.addresses(users)?;
        self.command(Command::Subscribe(uris)).await
    }

    async fn unsubscribe(&self, users: &[UserId]) -> Result<(), TransportError> {
        self.gate()?;
        let uris = self.addresses(users)?;
        self.command(Command::Unsubscribe(uris)).await
    }

    /// One entry: the platform, whether a connection is up, the pool, why not (the last
    /// connection error, such as a TLS failure's explanation) and the publications handed
    /// to the transport and not settled.
    fn status(&self) -> Vec<TransportStatus> {
        let shut_down = self.shared.shut_down.load(Ordering::Acquire);
        let connected = !shut_down && self.shared.epoch.load(Ordering::Acquire) != 0;
        let detail = if connected {
            None
        } else if shut_down {
            Some("shut down".to_owned())
        } else {
            self.shared.detail().clone()
        };
        vec![TransportStatus {
            platform: self.shared.platform.clone(),
            connected,
            peer: self.shared.peer.clone(),
            detail,
            publications_in_flight: self.shared.publications.load(Ordering::Relaxed),
        }]
    }

    /// Stops the driver: waits up to `grace` for publications outstanding, then closes the
    /// connection. Later calls fail with [`TransportError::Shutdown`].
    async fn shutdown(&self, grace: Duration) {
        self.shared.shut_down.store(true, Ordering::Release);
        let (done, wait) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { grace, done })
            .await
            .is_ok()
        {
            let _ = wait.await;
        }
    }
}

/// A caller waiting for a publication or removal to settle.
struct Waiter {
    reply: Reply,
    /// For a publication sent with credit of the connection then up: that connection. It
    /// grants one credit when it settles on it.
    credit: Option<u64>,
}

struct Driver {
    settings: SfbSettings,
    /// The credit granted on each connection: `max-in-flight`.
    credit: u32,
    connector: Arc<Connector>,
    endpoint: Endpoint,
    rng: SplitMix64,
    commands: mpsc::Receiver<Command>,
    events: EventSender,
    waiters: HashMap<PublishId, Waiter>,
    shared: Arc<Shared>,
    /// The number of the connection that is up; 0 while none is.
    epoch: u64,
    /// Connections made so far.
    connections: u64,
    shutdown: Option<(Instant, oneshot::Sender<()>)>,
}

/// Why a session ended.
enum End {
    Lost(String),
    Shutdown,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Driver {
    async fn run(mut self) {
        let backoff = Backoff {
            initial: self.settings.reconnect_initial,
            max: self.settings.reconnect_max,
            jitter: 0.2,
        };
        let mut failures = 0u32;
        // The pause before the next attempt, drawn when the last one failed (so that its
        // warning can say when the next try comes).
        let mut pause: Option<Duration> = None;
        loop {
            if let Some(delay) = pause.take()
                && self.wait_serving_commands(sleep(delay)).await.is_err()
            {
                return self.finish();
            }
            let connected = {
                let connector = Arc::clone(&self.connector);
                let connect = connector.connect();
                tokio::pin!(connect);
                let result = loop {
                    tokio::select! {
                        result = &mut connect => break Some(result),
                        command = self.commands.recv() => {
                            let go_on = self.apply(command) && self.shutdown.is_none();
                            self.dispatch_events();
                            if !go_on {
                                break None;
                            }
                        }
                    }
                };
                self.dispatch_events();
                result
            };
            match connected {
                None => return self.finish(),
                Some(Err(error)) => {
                    let reason = presence_model::error_chain(&error);
                    failures += 1;
                    let delay = backoff.delay(failures, self.rng.next_f64());
                    pause = Some(delay);
                    tracing::warn!(
                        %reason,
                        attempt = failures,
                        retry_in = %HumanDuration(delay),
                        "SfB connection attempt failed"
                    );
                    self.lost(reason);
                }
                Some(Ok((stream, local))) => {
                    failures = 1;
                    match self.session(stream, local).await {
                        End::Shutdown => return self.finish(),
                        End::Lost(reason) => {
                            let delay = backoff.delay(failures, self.rng.next_f64());
                            pause = Some(delay);
                            tracing::warn!(
                                %reason,
                                retry_in = %HumanDuration(delay),
                                "SfB connection lost"
                            );
                            self.lost(reason);
                        }
                    }
                }
            }
        }
    }

    /// Reports a failed attempt or a lost connection.
    fn lost(&mut self, reason: String) {
        *self.shared.detail() = Some(reason.clone());
        self.events.send(TransportEvent::Disconnected {
            platform: self.shared.platform.clone(),
            reason,
        });
    }

    /// Serves commands while `wait` runs; `Err` on shutdown.
    async fn wait_serving_commands(&mut self, wait: impl Future<Output = ()>) -> Result<(), ()> {
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => return Ok(()),
                command = self.commands.recv() => {
                    let go_on = self.apply(command) && self.shutdown.is_none();
                    self.dispatch_events();
                    if !go_on {
                        return Err(());
                    }
                }
            }
        }
    }

    fn finish(mut self) {
        self.set_epoch(0);
        for (_, waiter) in self.waiters.drain() {
            let _ = waiter.reply.send(Err(TransportError::Shutdown));
        }
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
        }
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.shared.epoch.store(epoch, Ordering::Release);
    }

    fn grant(&self, credit: u32) {
        self.events.send(TransportEvent::Credit {
            platform: self.shared.platform.clone(),
            credit,
        });
    }

    /// Applies a command to the endpoint; `false` when the driver should stop.
    fn apply(&mut self, command: Option<Command>) -> bool {
        let now = now();
        match command {
            None => false,
            Some(Command::Publish {
                user,
                presence,
                epoch,
                reply,
            }) => {
                let credit = (epoch != 0 && epoch == self.epoch).then_some(epoch);
                let id = self.endpoint.publish(user, presence, now);
                self.waiters.insert(id, Waiter { reply, credit });
                true
            }
            Some(Command::Unpublish { user, reply }) => {
                let id = self.endpoint.unpublish(user, now);
                self.waiters.insert(
                    id,
                    Waiter {
                        reply,
                        credit: None,
                    },
                );
                true
            }
            Some(Command::Refund { epoch }) => {
                if epoch != 0 && epoch == self.epoch {
                    self.grant(1);
                }
                true
            }
            Some(Command::Subscribe(users)) => {
                self.endpoint.subscribe(users, now);
                true
            }
            Some(Command::Unsubscribe(users)) => {
                self.endpoint.unsubscribe(users, now);
                true
            }
            Some(Command::Shutdown { grace, done }) => {
                self.shutdown = Some((Instant::now() + grace, done));
                self.commands.close();
                true
            }
        }
    }

    /// A publication or removal settled: its caller is told, and a publication that held
    /// credit of the connection still up grants it again.
    fn settle(&mut self, id: PublishId, result: Result<(), TransportError>) {
        let Some(waiter) = self.waiters.remove(&id) else {
            return;
        };
        if waiter
            .credit
            .is_some_and(|epoch| epoch != 0 && epoch == self.epoch)
        {
            self.grant(1);
        }
        let result = match result {
            Err(TransportError::NotConnected) if self.shutdown.is_some() => {
                Err(TransportError::Shutdown)
            }
            other => other,
        };
        let _ = waiter.reply.send(result);
    }

    /// Hands the endpoint's events to their owners; `Some(reason)` if the connection must
    /// be reset.
    fn dispatch_events(&mut self) -> Option<String> {
        let mut reset = None;
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                Event::Presence {
                    user,
                    raw_availability,
                    activity,
                } => {
                    let user = UserId::sip(self.shared.platform.clone(), user);
                    self.events
                        .send(TransportEvent::Presence(PresenceUpdate::new(
                            user,
                            raw_availability,
                            activity,
                        )));
                }
                Event::Published { id, .. } => self.settle(id, Ok(())),
                Event::PublishFailed { id, user, error } => {
                    if !matches!(error, TransportError::NotConnected) {
                        tracing::debug!(%user, %error, "publication failed");
                    }
                    self.settle(id, Err(error));
                }
                Event::Subscribed { users } => {
                    let platform = &self.shared.platform;
                    let users = users
                        .into_iter()
                        .map(|u| UserId::sip(platform.clone(), u))
                        .collect();
                    self.events.send(TransportEvent::Subscribed { users });
                }
                Event::SubscriptionFailed { users, reason } => {
                    tracing::warn!(users = users.len(), %reason, "subscription refused; retrying");
                }
                Event::ResetConnection { reason } => reset = Some(reason),
                Event::Warning { message } => tracing::warn!(%message, "SfB endpoint"),
            }
        }
        reset
    }

    async fn session(&mut self, stream: Box<dyn Stream>, local: String) -> End {
        let config = match self.settings.endpoint_config(&local) {
            Ok(config) => config,
            Err(e) => return End::Lost(e.to_string()),
        };
        // The Via host is the socket's (unless configured).
        self.endpoint.set_local_host(config.local_host);
        let (mut reader, mut writer) = tokio::io::split(stream);
        self.connections += 1;
        self.set_epoch(self.connections);
        *self.shared.detail() = None;
        self.endpoint.connected(now());
        self.events.send(TransportEvent::Connected {
            platform: self.shared.platform.clone(),
            peer: self.settings.pool.clone(),
            credit: self.credit,
        });
        let mut read_buf = vec![0u8; 64 * 1024];
        let mut out: Vec<u8> = Vec::new();
        let end = loop {
            if let Some(reason) = self.dispatch_events() {
                break End::Lost(reason);
            }
            while out.len() < 256 * 1024 {
                match self.endpoint.poll_transmit() {
                    Some(bytes) => out.extend_from_slice(&bytes),
                    None => break,
                }
            }
            // Shutting down: done once nothing is outstanding and everything is written,
            // or at the grace deadline in any case (a pool that stopped reading must not
            // hold the shutdown up).
            if let Some((deadline, _)) = &self.shutdown
                && ((self.endpoint.publications_outstanding() == 0 && out.is_empty())
                    || Instant::now() >= *deadline)
            {
                break End::Shutdown;
            }
            let timer = self
                .endpoint
                .poll_timeout()
                .map(Instant::from_std)
                .into_iter()
                .chain(self.shutdown.as_ref().map(|(d, _)| *d))
                .min();
            tokio::select! {
                command = self.commands.recv(), if self.shutdown.is_none() => {
                    if !self.apply(command) {
                        break End::Shutdown;
                    }
                    // The commands already queued go into the same write.
                    let mut more = COMMAND_BATCH;
                    while more > 0 && self.shutdown.is_none() {
                        let Ok(command) = self.commands.try_recv() else { break };
                        if !self.apply(Some(command)) {
                            break;
                        }
                        more -= 1;
                    }
                }
                read = reader.read(&mut read_buf) => match read {
                    Ok(0) => break End::Lost("the pool closed the connection".to_owned()),
                    Ok(n) => {
                        if let Err(error) = self.endpoint.handle_bytes(&read_buf[..n], now()) {
                            self.dispatch_events();
                            break End::Lost(format!("unreadable data from the pool: {error}"));
                        }
                    }
                    Err(error) => break End::Lost(crate::tls::explain_read_error(&error)),
                },
                written = writer.write(&out), if !out.is_empty() => match written {
                    Ok(0) => break End::Lost("the pool stopped accepting data".to_owned()),
                    Ok(n) => { out.drain(..n); }
                    Err(error) => break End::Lost(format!("writing to the pool failed: {error}")),
                },
                () = sleep_until(timer.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if timer.is_some() => {
                    self.endpoint.handle_timeout(now());
                }
            }
        };
        // Bounded: over TLS the close_notify may find the socket full.
        let _ = timeout(CLOSE_WRITE, writer.shutdown()).await;
        // Credit ends with the connection: what the loss fails grants nothing.
        self.set_epoch(0);
        self.endpoint.disconnected(now());
        self.dispatch_events();
        if matches!(end, End::Shutdown) {
            self.events.send(TransportEvent::Disconnected {
                platform: self.shared.platform.clone(),
                reason: "the transport was shut down".to_owned(),
            });
        }
        end
    }
}
