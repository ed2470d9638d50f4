//! The HTTP/1 listener of every HTTP surface of the bridge (this link's WebSocket endpoint
//! and the binary's admin API), so that both hold sockets to the same rules:
//!
//! - **handshake timeout**: a connection must send a complete request head within
//!   `handshake_timeout` of being accepted (and of its previous response, when kept alive),
//!   or it is closed: a silent or half-sent request cannot hold a socket (hyper's
//!   `header_read_timeout`). Such closes are logged, at most once per 10 s per listener;
//! - **connection limit**: every socket counts from `accept` until it is closed, whether it
//!   is waiting for its request, upgraded to a WebSocket or closing (below), so a listener
//!   never holds more than `max_connections` connections. Beyond the limit a connection is
//!   answered HTTP 503 (at most [`REFUSING`] at once, each within the handshake timeout) or,
//!   beyond that too, closed at once; logged at most once per 10 s, with the count;
//! - **accept failures**: when `accept` fails for lack of file descriptors (`EMFILE`,
//!   `ENFILE`) or memory, the listener logs it (at most once per 10 s) and pauses before
//!   trying again, 10 ms doubling up to 1 s, instead of spinning on the pending connection;
//! - **closing**: a socket is closed the careful way: its sending side is shut down, then
//!   what the peer still sends is read and discarded until it closes its side too or is
//!   silent for [`LINGER_IDLE`] (at most [`LINGER_BYTES`], for at most [`LINGER_TIME`])
//!   before the socket is closed. Closing with unread data would make the kernel answer with
//!   a reset, which destroys what was sent last (an HTTP error, a WebSocket close frame)
//!   before the peer reads it;
//! - **shutdown**: when the shutdown future completes, the listener stops accepting, asks
//!   HTTP connections to finish (idle ones close at once) and waits up to 5 s for every socket
//!   it accepted, upgraded ones included, to be closed.
//!
//! A listener thus holds at most `max_connections` + [`REFUSING`] sockets at any time: the
//! figure to provision file descriptors for (`LimitNOFILE=` in docs/operations.md).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::CtiError;

/// Connections a listener answers HTTP 503 at once when it is at its connection limit;
/// beyond these it closes new connections at once.
pub const REFUSING: usize = 32;

/// The longest a closed socket waits for its peer to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// A closed socket whose peer sent nothing for this long is closed without waiting more.
pub const LINGER_IDLE: Duration = Duration::from_millis(500);

/// The most a closed socket reads (and discards) from a peer that keeps sending.
pub const LINGER_BYTES: usize = 16 << 20;

/// The shortest `handshake_timeout`.
pub const MIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(100);

/// The longest `handshake_timeout`.
pub const MAX_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long `serve` waits, after the shutdown signal, for its sockets to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// At most one log line per this interval for each kind of trouble.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The first pause after `accept` failed; it doubles on each failure in a row.
const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// The longest pause after `accept` failed.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// `EMFILE` and `ENFILE` (the same numbers on Linux, the BSDs and macOS).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;
/// `EBADF` (the same on Linux, the BSDs and macOS).
const EBADF: i32 = 9;

/// One listener's identity and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    /// What log lines call the listener ("contact-centre link", "admin API").
    pub name: &'static str,
    /// The configuration table of its settings (`cti`, `admin`), named by messages.
    pub table: &'static str,
    /// Connections held at once, from `accept` to close (at least 1).
    pub max_connections: usize,
    /// How long a connection may take to send a complete request head
    /// ([`MIN_HANDSHAKE_TIMEOUT`]..=[`MAX_HANDSHAKE_TIMEOUT`]).
    pub handshake_timeout: Duration,
}

impl ListenerConfig {
    /// Checks the limits; an error names `table.option`, the value and what would be valid.
    ///
    /// ```
    /// use std::time::Duration;
    /// use presence_cti::listener::ListenerConfig;
    ///
    /// let mut config = ListenerConfig {
    ///     name: "admin API",
    ///     table: "admin",
    ///     max_connections: 64,
    ///     handshake_timeout: Duration::from_secs(10),
    /// };
    /// config.validate()?;
    /// config.handshake_timeout = Duration::ZERO;
    /// let err = config.validate().unwrap_err().to_string();
    /// assert!(err.contains("`admin.handshake-timeout` = 0ms"), "{err}");
    /// # Ok::<(), presence_cti::CtiError>(())
    /// ```
    pub fn validate(&self) -> Result<(), CtiError> {
        if self.max_connections == 0 {
            return Err(CtiError::InvalidOption {
                table: self.table,
                option: "max-connections",
                value: self.max_connections.to_string(),
                expected: "a number of connections, at least 1",
            });
        }
        if !(MIN_HANDSHAKE_TIMEOUT..=MAX_HANDSHAKE_TIMEOUT).contains(&self.handshake_timeout) {
            return Err(CtiError::InvalidOption {
                table: self.table,
                option: "handshake-timeout",
                value: format!("{}ms", self.handshake_timeout.as_millis()),
                expected: "a duration from 100ms to 5m",
            });
        }
        Ok(())
    }
}

/// A bound listener, ready to [`serve`](HttpListener::serve) a router.
#[derive(Debug)]
pub struct HttpListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<State>,
}

/// What the accept loop and the connection tasks share.
#[derive(Debug)]
struct State {
    config: ListenerConfig,
    /// Connections being served (up to `max_connections`).
    open: Arc<Counter>,
    /// Connections being answered HTTP 503 (up to [`REFUSING`]).
    refusing: Arc<Counter>,
    /// Throttles the log line about connections closed by the handshake timeout.
    timeouts: Mutex<Throttle>,
}

impl HttpListener {
    /// Takes a bound `listener` with `config`'s limits. The configuration is checked
    /// ([`ListenerConfig::validate`]); the error otherwise is the listener's own (its
    /// address cannot be read).
    pub fn new(listener: TcpListener, config: ListenerConfig) -> Result<Self, CtiError> {
        config.validate()?;
        let local_addr = listener.local_addr().map_err(|source| CtiError::Serve {
            listener: config.name,
            source,
        })?;
        let state = Arc::new(State {
            open: Arc::new(Counter::new(config.max_connections)),
            refusing: Arc::new(Counter::new(REFUSING)),
            timeouts: Mutex::new(Throttle::default()),
            config,
        });
        Ok(HttpListener {
            listener,
            local_addr,
            state,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `router` (which may extract [`ConnectInfo<SocketAddr>`](ConnectInfo) and
    /// upgrade connections) until `shutdown` completes; then stops accepting, asks every
    /// HTTP connection to finish and waits up to 5 s for every socket to close.
    ///
    /// Errors: [`CtiError::Serve`] when the listening socket itself is unusable (accepting
    /// fails with `EBADF` or `EINVAL`). Other accept failures are logged and retried.
    pub async fn serve(
        self,
        router: Router,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), CtiError> {
        let HttpListener {
            listener,
            local_addr,
            state,
        } = self;
        let (stop, stopping) = watch::channel(false);
        let routed = TowerToHyperService::new(router);
        let mut shutdown = pin!(shutdown);
        let mut pause = FIRST_PAUSE;
        let mut over_limit = Throttle::default();
        let mut failures = Throttle::default();
        let served = loop {
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break Ok(()),
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    pause = FIRST_PAUSE;
                    admit(&state, stream, peer, &routed, &stopping, &mut over_limit);
                }
                Err(error) if per_connection(&error) => {}
                Err(error) if unusable(&error) => {
                    break Err(CtiError::Serve {
                        listener: state.config.name,
                        source: error,
                    });
                }
                Err(error) => {
                    if let Some(unlogged) = failures.tick(Instant::now()) {
                        log_accept_failure(&state.config, local_addr, &error, pause, unlogged);
                    }
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break Ok(()),
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
            }
        };
        drop(listener);
        stop.send_replace(true);
        let mut open = state.open.count.subscribe();
        if tokio::time::timeout(SHUTDOWN_GRACE, open.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!(
                listener = state.config.name,
                open = *open.borrow(),
                "connections did not close in time; leaving them"
            );
        }
        served
    }
}

/// Serves, refuses or closes one accepted connection.
fn admit(
    state: &Arc<State>,
    stream: TcpStream,
    peer: SocketAddr,
    routed: &TowerToHyperService<Router>,
    stopping: &watch::Receiver<bool>,
    over_limit: &mut Throttle,
) {
    let config = &state.config;
    // Events are small and each is due now: Nagle's algorithm would hold one back until
    // the client acknowledged the one before (tens of milliseconds with delayed ACKs).
    let _ = stream.set_nodelay(true);
    if let Some(slot) = state.open.take() {
        let routed = routed.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            routed.call(request)
        });
        tokio::spawn(drive(
            Socket::new(stream, slot),
            service,
            state.clone(),
            stopping.clone(),
        ));
        return;
    }
    let refused = state.refusing.take();
    if let Some(unlogged) = over_limit.tick(Instant::now()) {
        tracing::warn!(
            listener = config.name,
            %peer,
            max_connections = config.max_connections,
            refused_since_last_line = unlogged + 1,
            "connection limit reached: refusing new connections (HTTP 503) until some close (`{}.max-connections`)",
            config.table,
        );
    }
    match refused {
        Some(slot) => {
            let table = config.table;
            let service = service_fn(move |_: Request<Incoming>| async move {
                Ok::<_, Infallible>(too_many(table))
            });
            tokio::spawn(drive(
                Socket::new(stream, slot),
                service,
                state.clone(),
                stopping.clone(),
            ));
        }
        // Too many being refused as well: close at once, holding nothing.
        None => drop(stream),
    }
}

/// The answer beyond the connection limit.
fn too_many(table: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!(
        "too many connections (`{table}.max-connections`): try again later\n"
    )));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Runs hyper's HTTP/1 server on one connection, with the handshake timeout, until it
/// closes or upgrades (the upgraded socket then lives on, still counted, in the handler's
/// task).
async fn drive<S>(
    socket: Socket,
    service: S,
    state: Arc<State>,
    mut stopping: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.handshake_timeout);
    let mut connection = pin!(
        builder
            .serve_connection(TokioIo::new(socket), service)
            .with_upgrades()
    );
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    let Err(error) = served else { return };
    if error.is_timeout() {
        let unlogged = state
            .timeouts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tick(Instant::now());
        if let Some(unlogged) = unlogged {
            let config = &state.config;
            tracing::warn!(
                listener = config.name,
                handshake_timeout_ms = config.handshake_timeout.as_millis() as u64,
                closed_since_last_line = unlogged + 1,
                "closed a connection that sent no complete request in time (`{}.handshake-timeout`)",
                config.table,
            );
        }
    } else {
        tracing::debug!(listener = state.config.name, %error, "HTTP connection ended with an error");
    }
}

/// Errors of one incoming connection, not of the listener: accept the next one at once.
fn per_connection(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted
            | ConnectionReset
            | ConnectionRefused
            | Interrupted
            | PermissionDenied
            | NetworkDown
            | NetworkUnreachable
            | HostUnreachable
    )
}

/// Errors that mean the listening socket itself cannot be used any more.
fn unusable(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::InvalidInput || error.raw_os_error() == Some(EBADF)
}

fn log_accept_failure(
    config: &ListenerConfig,
    local_addr: SocketAddr,
    error: &io::Error,
    pause: Duration,
    unlogged: u64,
) {
    let pause_ms = pause.as_millis() as u64;
    let failed_since_last_line = unlogged + 1;
    if matches!(error.raw_os_error(), Some(EMFILE | ENFILE)) {
        tracing::warn!(
            listener = config.name,
            %local_addr,
            %error,
            pause_ms,
            failed_since_last_line,
            "cannot accept connections: out of file descriptors; pausing before trying again (raise the open-file limit, `LimitNOFILE=` in the systemd unit, or lower `{}.max-connections`)",
            config.table,
        );
    } else {
        tracing::warn!(
            listener = config.name,
            %local_addr,
            %error,
            pause_ms,
            failed_since_last_line,
            "cannot accept connections; pausing before trying again"
        );
    }
}

/// Counts sockets up to a maximum.
#[derive(Debug)]
struct Counter {
    count: watch::Sender<usize>,
    max: usize,
}

impl Counter {
    fn new(max: usize) -> Self {
        Counter {
            count: watch::Sender::new(0),
            max,
        }
    }

    /// A slot, when there is room.
    fn take(self: &Arc<Self>) -> Option<Slot> {
        let taken = self.count.send_if_modified(|n| {
            let room = *n < self.max;
            if room {
                *n += 1;
            }
            room
        });
        taken.then(|| Slot(self.clone()))
    }
}

/// One counted socket; gives its place back when dropped.
#[derive(Debug)]
struct Slot(Arc<Counter>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// An accepted socket with its slot. Dropping it (whoever holds it then: hyper, or a
/// WebSocket after an upgrade) closes it the careful way ([`linger`]) and only then gives
/// the slot back.
#[derive(Debug)]
struct Socket {
    /// `None` only once dropped.
    stream: Option<TcpStream>,
    slot: Option<Slot>,
}

impl Socket {
    fn new(stream: TcpStream, slot: Slot) -> Self {
        Socket {
            stream: Some(stream),
            slot: Some(slot),
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.stream
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        let slot = self.slot.take();
        // Outside a runtime (never in the bridge) the socket simply closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                linger(stream).await;
                drop(slot);
            });
        }
    }
}

/// Closes `stream` without a reset: shuts down the sending side (the peer reads what was
/// sent, then the end), then reads and discards until the peer closes too or is silent for
/// [`LINGER_IDLE`], at most [`LINGER_BYTES`] for at most [`LINGER_TIME`].
async fn linger(mut stream: TcpStream) {
    // Fails harmlessly when hyper already shut it down or the peer is gone.
    let _ = stream.shutdown().await;
    let mut budget = LINGER_BYTES;
    let drain = async {
        while budget > 0 {
            let Ok(Ok(())) = tokio::time::timeout(LINGER_IDLE, stream.readable()).await else {
                return; // silent, or failed
            };
            match discard(&stream) {
                Ok(0) => return, // the peer closed its side
                Ok(n) => budget = budget.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Reads what is there and forgets it. The buffer lives on this function's stack, not in
/// every closing socket's task.
fn discard(stream: &TcpStream) -> io::Result<usize> {
    let mut scratch = [0u8; 8192];
    stream.try_read(&mut scratch)
}

/// Lets one log line through per [`LOG_INTERVAL`] and counts the ones held back.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    /// Counts one occurrence at `now`: `Some(n)` when a line may be logged, `n` being the
    /// occurrences not logged since the previous line.
    fn tick(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < LOG_INTERVAL)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let start = Instant::now();
        let mut throttle = Throttle::default();
        assert_eq!(throttle.tick(start), Some(0));
        for ms in [1, 500, 9_999] {
            assert_eq!(throttle.tick(start + Duration::from_millis(ms)), None);
        }
        assert_eq!(throttle.tick(start + LOG_INTERVAL), Some(3));
        assert_eq!(
            throttle.tick(start + LOG_INTERVAL + Duration::from_secs(1)),
            None
        );
        assert_eq!(throttle.tick(start + LOG_INTERVAL * 3), Some(1));
    }

    #[test]
    fn limits_are_checked() {
        let good = ListenerConfig {
            name: "test listener",
            table: "cti",
            max_connections: 1,
            handshake_timeout: MIN_HANDSHAKE_TIMEOUT,
        };
        good.validate().unwrap();
        ListenerConfig {
            handshake_timeout: MAX_HANDSHAKE_TIMEOUT,
            ..good
        }
        .validate()
        .unwrap();
        for (bad, needle) in [
            (
                ListenerConfig {
                    max_connections: 0,
                    ..good
                },
                "`cti.max-connections` = 0",
            ),
            (
                ListenerConfig {
                    handshake_timeout: Duration::from_millis(99),
                    ..good
                },
                "`cti.handshake-timeout` = 99ms",
            ),
            (
                ListenerConfig {
                    handshake_timeout: MAX_HANDSHAKE_TIMEOUT + Duration::from_millis(1),
                    ..good
                },
                "`cti.handshake-timeout` = 300001ms",
            ),
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn accept_errors_are_sorted() {
        let raw = io::Error::from_raw_os_error;
        assert!(!per_connection(&raw(EMFILE)) && !unusable(&raw(EMFILE)));
        assert!(!per_connection(&raw(ENFILE)) && !unusable(&raw(ENFILE)));
        assert!(unusable(&raw(EBADF)));
        assert!(per_connection(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        assert!(unusable(&io::Error::from(io::ErrorKind::InvalidInput)));
    }
}
