//! The tokio driver: owns the UDP socket or the TCP/TLS connection, pumps the sans-IO
//! [`Endpoint`], and implements the port ([`PresenceTransport`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use presence_model::random::{Backoff, SplitMix64};
use presence_model::{Platform, Publication, SipUri, UserAddress, UserId};
use presence_transport::settings::HumanDuration;
use presence_transport::{
    EventSender, Outstanding, PresenceTransport, PresenceUpdate, TransportError, TransportEvent,
    TransportStatus,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::SimpleError;
use crate::endpoint::{Endpoint, Event, PublishId};
use crate::settings::{Severity, SimpleSettings, Transport};

type Reply = oneshot::Sender<Result<(), TransportError>>;

/// The most queued commands the session takes, after the one it woke for, into one write.
const COMMAND_BATCH: usize = 256;

/// How long closing the write side may take when a session ends.
const CLOSE_WRITE: Duration = Duration::from_secs(1);

enum Command {
    Publish {
        user: SipUri,
        publication: Publication,
        epoch: u64,
        reply: Reply,
    },
    Unpublish {
        user: SipUri,
        reply: Reply,
    },
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

#[derive(Debug)]
struct Shared {
    platform: Platform,
    peer: String,
    epoch: AtomicU64,
    shut_down: AtomicBool,
    publications: AtomicUsize,
    detail: Mutex<Option<String>>,
}

impl Shared {
    fn detail(&self) -> MutexGuard<'_, Option<String>> {
        self.detail.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The SIP SIMPLE transport: the [`PresenceTransport`] handle of a driver task. Cheap to
/// clone.
///
/// It serves one [`Platform`] and users known by a SIP URI. Credit:
/// [`TransportEvent::Connected`] (once the server answered the `OPTIONS` probe on a new
/// socket) grants `max-in-flight`; each publication settled on that connection grants one.
#[derive(Clone)]
pub struct SimpleTransport {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl fmt::Debug for SimpleTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleTransport")
            .field("platform", &self.shared.platform)
            .field("server", &self.shared.peer)
            .field(
                "connected",
                &(self.shared.epoch.load(Ordering::Acquire) != 0),
            )
            .finish()
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A socket to the server.
enum Link {
    Udp(UdpSocket),
    Stream(Box<dyn Stream>),
}

struct Connector {
    server: String,
    transport: Transport,
    server_name: String,
    tls: Option<tokio_rustls::TlsConnector>,
    connect_timeout: Duration,
}

impl Connector {
    async fn connect(&self) -> Result<(Link, String), SimpleError> {
        let server = || self.server.clone();
        let attempt = async {
            let addr = tokio::net::lookup_host(&self.server)
                .await
                .map_err(|source| SimpleError::Connect {
                    what: "resolve the server",
                    server: server(),
                    source,
                })?
                .next()
                .ok_or_else(|| SimpleError::NoAddress { server: server() })?;
            if self.transport == Transport::Udp {
                let bind = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket =
                    UdpSocket::bind(bind)
                        .await
                        .map_err(|source| SimpleError::Connect {
                            what: "open a UDP socket for",
                            server: server(),
                            source,
                        })?;
                socket
                    .connect(addr)
                    .await
                    .map_err(|source| SimpleError::Connect {
                        what: "reach over UDP",
                        server: server(),
                        source,
                    })?;
                let local = socket
                    .local_addr()
                    .map_or_else(|_| "localhost".to_owned(), |a| a.to_string());
                return Ok((Link::Udp(socket), local));
            }
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|source| SimpleError::Connect {
                    what: "connect to the server",
                    server: server(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            let local = tcp
                .local_addr()
                .map_or_else(|_| "localhost".to_owned(), |a| a.to_string());
            let stream: Box<dyn Stream> = match &self.tls {
                None => Box::new(tcp),
                Some(connector) => {
                    let name = rustls_pki_types::ServerName::try_from(self.server_name.clone())
                        .map_err(|source| SimpleError::ServerName {
                            name: self.server_name.clone(),
                            source,
                        })?;
                    Box::new(connector.connect(name, tcp).await.map_err(|source| {
                        SimpleError::Handshake {
                            explained: crate::tls::SERVER
                                .handshake_failed(&self.server_name, &source),
                            source,
                        }
                    })?)
                }
            };
            Ok((Link::Stream(stream), local))
        };
        timeout(self.connect_timeout, attempt)
            .await
            .map_err(|_| SimpleError::ConnectTimeout {
                server: server(),
                after: self.connect_timeout,
            })?
    }
}

impl SimpleTransport {
    /// Starts the driver task on the current tokio runtime; it connects on its own and
    /// reports into `events` for `platform`. Settings with an error among their findings
    /// are refused; TLS material and the password are read now.
    pub fn start(
        settings: &SimpleSettings,
        platform: Platform,
        events: EventSender,
    ) -> Result<(SimpleTransport, JoinHandle<()>), SimpleError> {
        if let Some(f) = settings
            .findings()
            .into_iter()
            .find(|f| f.severity == Severity::Error)
        {
            return Err(SimpleError::Setting {
                key: f.key,
                message: f.message,
            });
        }
        let config = settings.endpoint_config("localhost")?;
        let tls = match settings.transport {
            Transport::Tls => Some(tokio_rustls::TlsConnector::from(crate::tls::client_config(
                &settings.tls,
            )?)),
            _ => None,
        };
        let connector = Connector {
            server: settings.server.clone(),
            transport: settings.transport,
            server_name: settings
                .tls
                .server_name
                .clone()
                .unwrap_or_else(|| settings.server_host().to_owned()),
            tls,
            connect_timeout: settings.connect_timeout,
        };
        let (commands, rx) = mpsc::channel(1024);
        let shared = Arc::new(Shared {
            platform,
            peer: settings.server.clone(),
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
            backoff: Backoff {
                initial: settings.reconnect_initial,
                max: settings.reconnect_max,
                jitter: 0.2,
            },
            credit: u32::try_from(config.max_in_flight).unwrap_or(u32::MAX),
            connector: Arc::new(connector),
            endpoint: Endpoint::new(config, seed),
            rng: SplitMix64::new(seed.rotate_left(23)),
            commands: rx,
            events,
            waiters: HashMap::new(),
            shared: Arc::clone(&shared),
            epoch: 0,
            connections: 0,
            shutdown: None,
        };
        let task = tokio::spawn(driver.run());
        Ok((SimpleTransport { commands, shared }, task))
    }

    fn address<'u>(&self, user: &'u UserId) -> Result<&'u SipUri, TransportError> {
        TransportError::ensure_platform(&self.shared.platform, user)?;
        match user.address() {
            UserAddress::Sip(uri) => Ok(uri),
            _ => Err(TransportError::Unsupported {
                user: user.clone(),
                reason: "SIP SIMPLE knows users by SIP URI".to_owned(),
            }),
        }
    }

    fn addresses(&self, users: &[UserId]) -> Result<Vec<SipUri>, TransportError> {
        users.iter().map(|u| self.address(u).cloned()).collect()
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
impl PresenceTransport for SimpleTransport {
    /// Publishes (creates, modifies, or for Offline removes) the user's one publication.
    /// Resolves when the server answered `200` (after a 412/423/500 fix-up if one was
    /// needed), or with the failure, once.
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
        let publication = publication.clone();
        self.call(|reply| Command::Publish {
            user: uri,
            publication,
            epoch,
            reply,
        })
        .await
    }

    /// Removes the bridge's publication for the user (`Expires: 0`); `Ok` at once when
    /// none is known.
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

struct Waiter {
    reply: Reply,
    credit: Option<u64>,
}

struct Driver {
    backoff: Backoff,
    credit: u32,
    connector: Arc<Connector>,
    endpoint: Endpoint,
    rng: SplitMix64,
    commands: mpsc::Receiver<Command>,
    events: EventSender,
    waiters: HashMap<PublishId, Waiter>,
    shared: Arc<Shared>,
    epoch: u64,
    connections: u64,
    shutdown: Option<(Instant, oneshot::Sender<()>)>,
}

enum End {
    Lost(String),
    Shutdown,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Driver {
    async fn run(mut self) {
        let mut failures = 0u32;
        // The pause before the next attempt, drawn when the last one failed (so that its
        // warning can say when the next try comes).
        let mut pause: Option<Duration> = None;
        loop {
            if let Some(delay) = pause.take()
                && self.serve_while(sleep(delay)).await.is_err()
            {
                return self.finish();
            }
            let connected = {
                let connector = Arc::clone(&self.connector);
                let connect = connector.connect();
                tokio::pin!(connect);
                loop {
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
                }
            };
            match connected {
                None => return self.finish(),
                Some(Err(error)) => {
                    let reason = presence_model::error_chain(&error);
                    failures += 1;
                    let delay = self.backoff.delay(failures, self.rng.next_f64());
                    pause = Some(delay);
                    tracing::warn!(
                        %reason,
                        attempt = failures,
                        retry_in = %HumanDuration(delay),
                        "SIP SIMPLE connection attempt failed"
                    );
                    self.lost(reason);
                }
                Some(Ok((link, local))) => {
                    let (end, was_ready) = self.session(link, local).await;
                    failures = if was_ready { 1 } else { failures + 1 };
                    match end {
                        End::Shutdown => return self.finish(),
                        End::Lost(reason) => {
                            let delay = self.backoff.delay(failures, self.rng.next_f64());
                            pause = Some(delay);
                            tracing::warn!(
                                %reason,
                                retry_in = %HumanDuration(delay),
                                "SIP SIMPLE connection lost"
                            );
                            self.lost(reason);
                        }
                    }
                }
            }
        }
    }

    fn lost(&mut self, reason: String) {
        *self.shared.detail() = Some(reason.clone());
        self.events.send(TransportEvent::Disconnected {
            platform: self.shared.platform.clone(),
            reason,
        });
    }

    async fn serve_while(&mut self, wait: impl Future<Output = ()>) -> Result<(), ()> {
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

    fn apply(&mut self, command: Option<Command>) -> bool {
        let now = now();
        match command {
            None => false,
            Some(Command::Publish {
                user,
                publication,
                epoch,
                reply,
            }) => {
                let credit = (epoch != 0 && epoch == self.epoch).then_some(epoch);
                let id = self.endpoint.publish(user, &publication, now);
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

    /// Hands the endpoint's events on; `Some(reason)` when the connection must be reset.
    fn dispatch_events(&mut self) -> Option<String> {
        let mut reset = None;
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                Event::Ready => {
                    self.connections += 1;
                    self.set_epoch(self.connections);
                    *self.shared.detail() = None;
                    tracing::info!(server = %self.shared.peer, "SIP SIMPLE server ready");
                    self.events.send(TransportEvent::Connected {
                        platform: self.shared.platform.clone(),
                        peer: self.shared.peer.clone(),
                        credit: self.credit,
                    });
                }
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
                        tracing::debug!(%user, %error, "SIP SIMPLE publication failed");
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
                Event::SubscriptionFailed { user, reason } => {
                    tracing::warn!(%user, %reason, "SIP SIMPLE subscription refused; retrying");
                }
                Event::ResetConnection { reason } => reset = Some(reason),
                Event::Warning { message } => tracing::warn!(%message, "SIP SIMPLE endpoint"),
            }
        }
        reset
    }

    /// One connection (or UDP socket): until it is lost or the transport shuts down.
    /// The flag says whether the server became ready on it.
    async fn session(&mut self, link: Link, local: String) -> (End, bool) {
        self.endpoint.set_local_host(local);
        self.endpoint.connected(now());
        let (mut udp, mut reader, mut writer) = match link {
            Link::Udp(socket) => (Some(socket), None, None),
            Link::Stream(stream) => {
                let (r, w) = tokio::io::split(stream);
                (None, Some(r), Some(w))
            }
        };
        let mut read_buf = vec![0u8; 64 * 1024];
        let mut out: Vec<u8> = Vec::new();
        let mut datagrams: std::collections::VecDeque<Vec<u8>> = Default::default();
        let mut was_ready = false;
        let end = loop {
            if let Some(reason) = self.dispatch_events() {
                break End::Lost(reason);
            }
            was_ready |= self.endpoint.is_ready();
            while let Some(bytes) = self.endpoint.poll_transmit() {
                if udp.is_some() {
                    datagrams.push_back(bytes);
                } else {
                    out.extend_from_slice(&bytes);
                    if out.len() > 256 * 1024 {
                        break;
                    }
                }
            }
            // Shutting down: done once nothing is outstanding and everything is written,
            // or at the grace deadline in any case (a server that stopped reading must not
            // hold the shutdown up).
            if let Some((deadline, _)) = &self.shutdown
                && ((self.endpoint.publications_outstanding() == 0
                    && out.is_empty()
                    && datagrams.is_empty())
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
            let far = Instant::now() + Duration::from_secs(3600);
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
                read = async {
                    match (&udp, &mut reader) {
                        (Some(socket), _) => socket.recv(&mut read_buf).await,
                        (None, Some(r)) => r.read(&mut read_buf).await,
                        (None, None) => std::future::pending().await,
                    }
                } => match read {
                    Ok(0) if udp.is_none() => break End::Lost("the server closed the connection".to_owned()),
                    Ok(n) => {
                        if udp.is_some() {
                            self.endpoint.handle_datagram(&read_buf[..n], now());
                        } else if let Err(error) = self.endpoint.handle_bytes(&read_buf[..n], now()) {
                            self.dispatch_events();
                            break End::Lost(format!("unreadable data from the server: {error}"));
                        }
                    }
                    // ICMP port unreachable shows up on a connected UDP socket: the probe's
                    // time-out decides, so one lost datagram does not reset anything.
                    Err(error) if udp.is_some() => tracing::debug!(%error, "UDP receive"),
                    // Over TLS an alert from the server (a refused client certificate, with
                    // TLS 1.3 after the handshake) is explained; other errors keep their text.
                    Err(error) => break End::Lost(crate::tls::SERVER.read_failed(&error)),
                },
                sent = async {
                    match (&udp, &mut writer) {
                        (Some(socket), _) => socket.send(datagrams.front().map_or(&[][..], |d| &d[..])).await,
                        (None, Some(w)) => w.write(&out).await,
                        (None, None) => std::future::pending().await,
                    }
                }, if !out.is_empty() || !datagrams.is_empty() => match sent {
                    Ok(n) if udp.is_none() => {
                        if n == 0 {
                            break End::Lost("the server stopped accepting data".to_owned());
                        }
                        out.drain(..n);
                    }
                    Ok(_) => { datagrams.pop_front(); }
                    Err(error) if udp.is_some() => {
                        // The datagram is lost; retransmission (or the probe) deals with it.
                        tracing::debug!(%error, "UDP send");
                        datagrams.pop_front();
                    }
                    Err(error) => break End::Lost(format!("writing to the server failed: {error}")),
                },
                () = sleep_until(timer.unwrap_or(far)), if timer.is_some() => {
                    self.endpoint.handle_timeout(now());
                }
            }
        };
        if let Some(w) = writer.as_mut() {
            // Bounded: over TLS the close_notify may find the socket full.
            let _ = timeout(CLOSE_WRITE, w.shutdown()).await;
        }
        drop(udp.take());
        self.set_epoch(0);
        self.endpoint.disconnected(now());
        self.dispatch_events();
        if matches!(end, End::Shutdown) {
            self.events.send(TransportEvent::Disconnected {
                platform: self.shared.platform.clone(),
                reason: "the transport was shut down".to_owned(),
            });
        }
        (end, was_ready)
    }
}
