//! The tokio layer: the simulator behind a loopback TCP or TLS listener.
//!
//! One task accepts connections, one task per connection pumps bytes between its socket
//! and the [`Simulator`] (held in a mutex), and one task calls
//! [`Simulator::handle_timeout`] at [`Simulator::poll_timeout`]. The world API and the
//! fault menu are forwarded; connection-level faults ([`SimServer::drop_connections`],
//! [`SimServer::stop_reading`], [`SimServer::send_garbage`]) live here.
//!
//! Time is tokio's clock (`tokio::time::Instant`), so tests with paused time drive the
//! simulator's timers too.
//!
//! ```
//! use presence_model::SipUri;
//! use presence_sfb_sim::{ServerConfig, SimServer};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = SimServer::start(ServerConfig::default()).await?; // 127.0.0.1, a free port
//! let agent = SipUri::new("sip:agent1@contoso.com")?;
//! server.set_user_presence(&agent, 6500, Some("In a call"));
//!
//! // A raw client: OPTIONS is answered 200.
//! let mut tcp = tokio::net::TcpStream::connect(server.local_addr()).await?;
//! tcp.write_all(b"OPTIONS sip:pool SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\n\
//!     From: <sip:bridge@contoso.com>;tag=1\r\nTo: <sip:pool>\r\nCall-ID: x\r\n\
//!     CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").await?;
//! let mut answer = [0u8; 15];
//! tcp.read_exact(&mut answer).await?;
//! assert_eq!(&answer, b"SIP/2.0 200 OK\r");
//! assert_eq!(server.shows(&agent).map(|s| s.availability), Some(6500));
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use presence_model::SipUri;
use presence_sip::Method;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

pub use crate::tls::ServerTls;
use crate::{ConnId, Shown, SimConfig, SimError, SimEvent, Simulator};

/// What [`SimServer::send_garbage`] writes: not SIP (a NUL, a bare line feed).
pub const GARBAGE: &[u8] = b"\x00GARBAGE: this is not SIP\n\xff\r\n\r\n";

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many bytes of queued output one socket write may take at most.
const WRITE_BATCH: usize = 256 * 1024;

/// How many events a slow [`SimServer::events`] receiver may fall behind, by default.
const EVENT_CAPACITY: usize = 4096;

/// Where and how the simulator listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The address to listen on. Default `127.0.0.1:0` (a free port; see
    /// [`SimServer::local_addr`]).
    pub listen: SocketAddr,
    /// TLS (with optional mutual TLS); plain TCP when `None`.
    pub tls: Option<ServerTls>,
    /// The simulator's settings (`via_transport` is set from `tls`).
    pub sim: SimConfig,
    /// How many events a slow [`SimServer::events`] receiver may fall behind. Default
    /// 4096.
    pub event_capacity: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: None,
            sim: SimConfig::default(),
            event_capacity: EVENT_CAPACITY,
        }
    }
}

#[derive(Debug, Default)]
struct ConnControl {
    /// Output may be waiting.
    wake: Notify,
    /// Close now.
    kill: Notify,
}

#[derive(Debug)]
struct Shared {
    sim: Mutex<Simulator>,
    events: broadcast::Sender<SimEvent>,
    conns: Mutex<BTreeMap<ConnId, Arc<ConnControl>>>,
    reading: watch::Sender<bool>,
    timer: Notify,
    shutdown: watch::Sender<bool>,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Runs `f` on the simulator, then publishes its events and wakes the writers and the
    /// timer.
    fn with_sim<R>(&self, f: impl FnOnce(&mut Simulator, Instant) -> R) -> R {
        let result = {
            let mut sim = lock(&self.sim);
            let result = f(&mut sim, now());
            while let Some(event) = sim.poll_event() {
                tracing::debug!(target: "presence_sfb_sim", "{event}");
                let _ = self.events.send(event);
            }
            result
        };
        for control in lock(&self.conns).values() {
            control.wake.notify_one();
        }
        self.timer.notify_one();
        result
    }

    fn emit(&self, event: SimEvent) {
        tracing::debug!(target: "presence_sfb_sim", "{event}");
        let _ = self.events.send(event);
    }
}

/// The simulator listening on a socket. Dropping it stops it (like
/// [`shutdown`](Self::shutdown), without waiting).
#[derive(Debug)]
pub struct SimServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl SimServer {
    /// Binds the listener and starts serving. Must be called within a tokio runtime.
    ///
    /// # Errors
    /// [`SimError::Io`] when the address cannot be bound; TLS errors of
    /// [`ServerTls::server_config`].
    pub async fn start(config: ServerConfig) -> Result<SimServer, SimError> {
        let ServerConfig {
            listen,
            tls,
            mut sim,
            event_capacity,
        } = config;
        let acceptor = match &tls {
            Some(tls) => Some(TlsAcceptor::from(tls.server_config()?)),
            None => None,
        };
        sim.via_transport = if tls.is_some() { "TLS" } else { "TCP" }.to_owned();
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| SimError::Io {
                context: format!("cannot listen on {listen}"),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| SimError::Io {
            context: "cannot read the listener's address".to_owned(),
            source,
        })?;
        let shared = Arc::new(Shared {
            sim: Mutex::new(Simulator::new(sim)),
            events: broadcast::channel(event_capacity.max(1)).0,
            conns: Mutex::new(BTreeMap::new()),
            reading: watch::channel(true).0,
            timer: Notify::new(),
            shutdown: watch::channel(false).0,
        });
        tracing::info!(
            target: "presence_sfb_sim",
            "SfB simulator listening on {local_addr} ({})",
            if acceptor.is_some() { "TLS" } else { "TCP" }
        );
        let accept = tokio::spawn(accept_loop(Arc::clone(&shared), listener, acceptor));
        let timer = tokio::spawn(timer_loop(Arc::clone(&shared)));
        Ok(SimServer {
            shared,
            local_addr,
            tasks: Mutex::new(vec![accept, timer]),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A receiver of every event from now on (see [`SimEvent`]); it may lag behind by at
    /// most [`ServerConfig::event_capacity`] events.
    pub fn events(&self) -> broadcast::Receiver<SimEvent> {
        self.shared.events.subscribe()
    }

    /// Runs `f` on the simulator with the current time (for anything not forwarded here),
    /// then sends what it produced.
    pub fn with_simulator<R>(&self, f: impl FnOnce(&mut Simulator, Instant) -> R) -> R {
        self.shared.with_sim(f)
    }

    // ------------------------------------------------------------------ the world

    /// See [`Simulator::set_user_presence`].
    pub fn set_user_presence(&self, user: &SipUri, availability: u32, activity: Option<&str>) {
        self.shared
            .with_sim(|sim, now| sim.set_user_presence(user, availability, activity, now));
    }

    /// See [`Simulator::set_users_presence`].
    pub fn set_users_presence(&self, changes: &[(SipUri, u32, Option<&str>)]) {
        self.shared
            .with_sim(|sim, now| sim.set_users_presence(changes, now));
    }

    /// See [`Simulator::shows`].
    pub fn shows(&self, user: &SipUri) -> Option<Shown> {
        lock(&self.shared.sim).shows(user)
    }

    /// See [`Simulator::published_count`].
    pub fn published_count(&self) -> u64 {
        lock(&self.shared.sim).published_count()
    }

    /// See [`Simulator::dialog_count`].
    pub fn dialog_count(&self) -> usize {
        lock(&self.shared.sim).dialog_count()
    }

    // ------------------------------------------------------------------ faults

    /// See [`Simulator::fail_next`].
    ///
    /// # Errors
    /// As [`Simulator::fail_next`].
    pub fn fail_next(&self, method: Method, count: u32, status: u16) -> Result<(), SimError> {
        self.shared
            .with_sim(|sim, _| sim.fail_next(method, count, status))
    }

    /// See [`Simulator::random_conflicts`].
    pub fn random_conflicts(&self, rate: f64) {
        self.shared.with_sim(|sim, _| sim.random_conflicts(rate));
    }

    /// See [`Simulator::random_errors`].
    ///
    /// # Errors
    /// As [`Simulator::random_errors`].
    pub fn random_errors(&self, rate: f64, status: u16) -> Result<(), SimError> {
        self.shared
            .with_sim(|sim, _| sim.random_errors(rate, status))
    }

    /// See [`Simulator::delay_responses`].
    pub fn delay_responses(&self, delay: Duration) {
        self.shared.with_sim(|sim, _| sim.delay_responses(delay));
    }

    /// See [`Simulator::clear_faults`]; also reading starts again.
    pub fn clear_faults(&self) {
        self.shared.with_sim(|sim, _| sim.clear_faults());
        self.stop_reading(false);
    }

    /// See [`Simulator::terminate_subscriptions`].
    pub fn terminate_subscriptions(&self) {
        self.shared.with_sim(|sim, _| sim.terminate_subscriptions());
    }

    /// See [`Simulator::terminate_resource`].
    pub fn terminate_resource(&self, user: &SipUri) {
        self.shared.with_sim(|sim, _| sim.terminate_resource(user));
    }

    /// Closes every connection now (the peers see the socket close).
    pub fn drop_connections(&self) {
        for control in lock(&self.shared.conns).values() {
            control.kill.notify_one();
        }
    }

    /// `true`: stop reading every socket (a stalled pool: requests pile up unanswered,
    /// keep-alives get no pong); `false`: read again.
    pub fn stop_reading(&self, stop: bool) {
        self.shared.reading.send_replace(!stop);
    }

    /// Writes [`GARBAGE`] (bytes that are not SIP) to every connection.
    pub fn send_garbage(&self) {
        self.shared.with_sim(|sim, _| {
            let conns: Vec<ConnId> = sim.connections().collect();
            for conn in conns {
                sim.send_raw(conn, GARBAGE);
            }
        });
    }

    /// How many connections are open (TLS handshakes done).
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    /// Stops listening, closes every connection and waits for the tasks to end.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// Resolves once the server shuts down (or is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, acceptor: Option<TlsAcceptor>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(connection(Arc::clone(&shared), tcp, peer, acceptor.clone()));
                }
                Err(error) => {
                    tracing::warn!(target: "presence_sfb_sim", "accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn timer_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let deadline = lock(&shared.sim).poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => shared.with_sim(|sim, now| sim.handle_timeout(now)),
            () = shared.timer.notified() => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

async fn connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
) {
    let Some(acceptor) = acceptor else {
        serve(shared, tcp).await;
        return;
    };
    let mut shutdown = shared.shutdown.subscribe();
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let failure = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no handshake within {HANDSHAKE_TIMEOUT:?}")),
        },
        () = stopped(&mut shutdown) => return,
    };
    match failure {
        Ok(stream) => serve(shared, stream).await,
        Err(error) => shared.emit(SimEvent::HandshakeFailed {
            peer: peer.to_string(),
            error,
        }),
    }
}

/// Pumps one connection until the peer closes it, it sends garbage, it is dropped, or
/// the server shuts down.
async fn serve<S: AsyncRead + AsyncWrite + Send + Unpin>(shared: Arc<Shared>, stream: S) {
    let conn = shared.with_sim(|sim, now| sim.open(now));
    let control = Arc::new(ConnControl::default());
    lock(&shared.conns).insert(conn, Arc::clone(&control));
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut shutdown = shared.shutdown.subscribe();

    let reader = async {
        let mut reading = shared.reading.subscribe();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if reading.wait_for(|on| *on).await.is_err() {
                return;
            }
            let read = tokio::select! {
                read = rd.read(&mut buf) => read,
                _ = reading.changed() => continue,
            };
            let n = match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let bytes = buf.get(..n).unwrap_or_default();
            if shared
                .with_sim(|sim, now| sim.handle_bytes(conn, bytes, now))
                .is_err()
            {
                return;
            }
        }
    };
    let writer = async {
        loop {
            // Everything queued, up to 256 KiB, in one write: one system call (and one
            // wake-up of the peer) for many messages.
            let next = {
                let mut sim = lock(&shared.sim);
                let mut batch = sim.poll_transmit(conn);
                if let Some(batch) = &mut batch {
                    while batch.len() < WRITE_BATCH {
                        match sim.poll_transmit(conn) {
                            Some(more) => batch.extend_from_slice(&more),
                            None => break,
                        }
                    }
                }
                batch
            };
            match next {
                Some(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    if wr.flush().await.is_err() || !lock(&shared.sim).is_open(conn) {
                        return;
                    }
                    control.wake.notified().await;
                }
            }
        }
    };
    tokio::select! {
        () = reader => {}
        () = writer => {}
        () = control.kill.notified() => {}
        () = stopped(&mut shutdown) => {}
    }
    lock(&shared.conns).remove(&conn);
    shared.with_sim(|sim, _| sim.close(conn));
}
