//! The tokio driver: owns the socket and pumps the sans-IO [`Endpoint`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use presence_model::{Presence, SipUri};
use presence_transport::{
    EventReceiver, EventSender, PresenceTransport, TransportError, TransportEvent, event_channel,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::SfbError;
use crate::backoff::{Backoff, Rng};
use crate::endpoint::{Endpoint, Event, PublishId};
use crate::settings::{SfbSettings, Transport};

/// Commands from the handle to the driver task.
enum Command {
    Publish {
        user: SipUri,
        presence: Presence,
        reply: oneshot::Sender<Result<(), TransportError>>,
    },
    Subscribe(Vec<SipUri>),
    Unsubscribe(Vec<SipUri>),
    Shutdown {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
}

/// Counters the driver keeps for metrics and `/readyz`.
#[derive(Debug, Default)]
pub struct DriverStatus {
    connected: AtomicBool,
    in_flight: AtomicUsize,
    connects: AtomicUsize,
}

impl DriverStatus {
    /// Whether a connection to the pool is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Publications outstanding (sent or waiting for room).
    pub fn publications_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Connections made since start.
    pub fn connects(&self) -> usize {
        self.connects.load(Ordering::Relaxed)
    }
}

/// The Skype for Business transport: a [`PresenceTransport`] handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SfbTransport {
    commands: mpsc::Sender<Command>,
    status: Arc<DriverStatus>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Publish { user, .. } => write!(f, "Publish({user})"),
            Command::Subscribe(users) => write!(f, "Subscribe({} users)", users.len()),
            Command::Unsubscribe(users) => write!(f, "Unsubscribe({} users)", users.len()),
            Command::Shutdown { .. } => f.write_str("Shutdown"),
        }
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
    async fn connect(&self) -> Result<(Box<dyn Stream>, String), String> {
        let attempt = async {
            let tcp = TcpStream::connect(&self.pool)
                .await
                .map_err(|e| format!("cannot connect to the pool `{}`: {e}", self.pool))?;
            let _ = tcp.set_nodelay(true);
            let local = tcp
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "localhost".to_owned());
            let stream: Box<dyn Stream> = match &self.tls {
                None => Box::new(tcp),
                Some(connector) => {
                    let name = ServerName::try_from(self.server_name.clone()).map_err(|e| {
                        format!(
                            "[sfb.tls] server-name `{}` is not valid: {e}",
                            self.server_name
                        )
                    })?;
                    let tls = connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| crate::tls::explain_handshake(&e, &self.server_name))?;
                    Box::new(tls)
                }
            };
            Ok((stream, local))
        };
        timeout(self.connect_timeout, attempt).await.map_err(|_| {
            format!(
                "connecting to the pool `{}` took longer than {:?}",
                self.pool, self.connect_timeout
            )
        })?
    }
}

impl SfbTransport {
    /// Starts the driver task on the current tokio runtime. TLS material is read now, so a
    /// missing or bad file is an error here, not a reconnect loop.
    pub fn start(
        settings: &SfbSettings,
    ) -> Result<(SfbTransport, EventReceiver, JoinHandle<()>), SfbError> {
        // Validate the endpoint settings up front (the Via host is filled per connection).
        settings.endpoint_config("localhost")?;
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
        let (events, receiver) = event_channel();
        let status = Arc::new(DriverStatus::default());
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        let driver = Driver {
            settings: settings.clone(),
            connector: Arc::new(connector),
            endpoint: Endpoint::new(settings.endpoint_config("localhost")?, seed),
            rng: Rng::new(seed.rotate_left(17)),
            commands: rx,
            events,
            waiters: HashMap::new(),
            status: Arc::clone(&status),
            shutdown: None,
        };
        let task = tokio::spawn(driver.run());
        Ok((SfbTransport { commands, status }, receiver, task))
    }

    /// Connection state and counters.
    pub fn status(&self) -> &DriverStatus {
        &self.status
    }

    /// Stops the driver: waits up to `grace` for publications in flight, then closes the
    /// connection. Later calls fail with [`TransportError::Shutdown`].
    pub async fn shutdown(&self, grace: Duration) {
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

    async fn command(&self, command: Command) -> Result<(), TransportError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| TransportError::Shutdown)
    }
}

impl PresenceTransport for SfbTransport {
    async fn publish(&self, user: &SipUri, presence: &Presence) -> Result<(), TransportError> {
        let (reply, wait) = oneshot::channel();
        self.command(Command::Publish {
            user: user.clone(),
            presence: presence.clone(),
            reply,
        })
        .await?;
        wait.await.map_err(|_| TransportError::Shutdown)?
    }

    async fn subscribe(&self, users: &[SipUri]) -> Result<(), TransportError> {
        self.command(Command::Subscribe(users.to_vec())).await
    }

    async fn unsubscribe(&self, users: &[SipUri]) -> Result<(), TransportError> {
        self.command(Command::Unsubscribe(users.to_vec())).await
    }
}

struct Driver {
    settings: SfbSettings,
    connector: Arc<Connector>,
    endpoint: Endpoint,
    rng: Rng,
    commands: mpsc::Receiver<Command>,
    events: EventSender,
    waiters: HashMap<PublishId, oneshot::Sender<Result<(), TransportError>>>,
    status: Arc<DriverStatus>,
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
        loop {
            if failures > 0 {
                let delay = backoff.delay(failures, self.rng.next_f64());
                if self.wait_serving_commands(sleep(delay)).await.is_err() {
                    return self.finish();
                }
            }
            let connected = {
                let connector = Arc::clone(&self.connector);
                let connect = connector.connect();
                tokio::pin!(connect);
                let result = loop {
                    tokio::select! {
                        result = &mut connect => break Some(result),
                        command = self.commands.recv() => {
                            if !self.apply(command) || self.shutdown.is_some() {
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
                Some(Err(reason)) => {
                    failures += 1;
                    tracing::warn!(%reason, attempt = failures, "SfB connection attempt failed");
                    self.events.send(TransportEvent::Disconnected { reason });
                }
                Some(Ok((stream, local))) => {
                    failures = 1;
                    match self.session(stream, local).await {
                        End::Shutdown => return self.finish(),
                        End::Lost(reason) => {
                            tracing::warn!(%reason, "SfB connection lost");
                            self.events.send(TransportEvent::Disconnected { reason });
                        }
                    }
                }
            }
        }
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
        self.status.connected.store(false, Ordering::Relaxed);
        for (_, waiter) in self.waiters.drain() {
            let _ = waiter.send(Err(TransportError::Shutdown));
        }
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
        }
    }

    /// Applies a command to the endpoint; `false` when the driver should stop.
    fn apply(&mut self, command: Option<Command>) -> bool {
        let now = now();
        match command {
            None => false,
            Some(Command::Publish {
                user,
                presence,
                reply,
            }) => {
                let id = self.endpoint.publish(user, presence, now);
                self.waiters.insert(id, reply);
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

    /// Hands the endpoint's events to their owners; `Some(reason)` if the connection must
    /// be reset.
    fn dispatch_events(&mut self) -> Option<String> {
        let mut reset = None;
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                Event::Presence(update) => {
                    self.events.send(TransportEvent::Presence(update));
                }
                Event::Published { id, .. } => {
                    if let Some(waiter) = self.waiters.remove(&id) {
                        let _ = waiter.send(Ok(()));
                    }
                }
                Event::PublishFailed { id, user, error } => {
                    if !matches!(
                        error,
                        TransportError::Superseded | TransportError::NotConnected
                    ) {
                        tracing::warn!(%user, %error, "publication failed");
                    }
                    if let Some(waiter) = self.waiters.remove(&id) {
                        let _ = waiter.send(Err(error));
                    }
                }
                Event::Subscribed { users } => {
                    self.events.send(TransportEvent::Subscribed { users });
                }
                Event::SubscriptionFailed { users, reason } => {
                    tracing::warn!(users = users.len(), %reason, "subscription refused; retrying");
                }
                Event::ResetConnection { reason } => reset = Some(reason),
                Event::Warning { message } => tracing::warn!(%message, "SfB endpoint"),
            }
        }
        self.status
            .in_flight
            .store(self.waiters.len(), Ordering::Relaxed);
        reset
    }

    async fn session(&mut self, stream: Box<dyn Stream>, local: String) -> End {
        let config = match self.settings.endpoint_config(&local) {
            Ok(config) => config,
            Err(e) => return End::Lost(e.to_string()),
        };
        // The Via host is the socket's (unless configured): rebuild the endpoint's settings
        // without losing its state.
        self.endpoint.set_local_host(config.local_host);
        let (mut reader, mut writer) = tokio::io::split(stream);
        self.endpoint.connected(now());
        self.status.connected.store(true, Ordering::Relaxed);
        self.status.connects.fetch_add(1, Ordering::Relaxed);
        self.events.send(TransportEvent::Connected {
            peer: self.settings.pool.clone(),
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
            if let Some((deadline, _)) = &self.shutdown
                && (self.endpoint.publications_in_flight() == 0 || Instant::now() >= *deadline)
                && out.is_empty()
            {
                break End::Shutdown;
            }
            let timer = self
                .endpoint
                .poll_timeout()
                .map(Instant::from_std)
                .or_else(|| self.shutdown.as_ref().map(|(d, _)| *d));
            tokio::select! {
                command = self.commands.recv(), if self.shutdown.is_none() => {
                    if !self.apply(command) {
                        break End::Shutdown;
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
        let _ = writer.shutdown().await;
        self.status.connected.store(false, Ordering::Relaxed);
        self.endpoint.disconnected(now());
        self.dispatch_events();
        end
    }
}
