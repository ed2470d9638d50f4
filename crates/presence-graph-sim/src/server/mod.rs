//! The tokio layer: the [`GraphWorld`] behind an axum server on loopback HTTP or HTTPS.
//!
//! Every request is read whole (at most 1 MiB), held while the server is
//! [stalled](GraphSimServer::stall) and for the [latency](GraphSimServer::set_latency), then
//! answered by the core under a mutex; the core's events go to
//! [`events`](GraphSimServer::events) subscribers. The control surface (the user's Teams
//! client, what a user shows, the log of writes, counters, the fault menu) is a set of
//! synchronous methods on [`GraphSimServer`], and the same is served over HTTP under
//! `/_sim/` (see below).
//!
//! Time is tokio's clock (`tokio::time::Instant`), so tests with paused time drive token
//! expiry, session expiry, decay and the budget window too.
//!
//! ```
//! use presence_graph_sim::{GraphSimServer, ServerConfig, SimConfig, Availability};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = GraphSimServer::start(ServerConfig {
//!     sim: SimConfig::default().with_generated_users(2),
//!     ..ServerConfig::default() // 127.0.0.1, a free port, plain HTTP
//! })
//! .await?;
//! assert!(server.token_url().ends_with("/contoso.onmicrosoft.com/oauth2/v2.0/token"));
//!
//! // A raw HTTP/1.1 client asks for a token.
//! let body = format!(
//!     "grant_type=client_credentials&client_id={}&client_secret={}\
//!      &scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
//!     SimConfig::DEFAULT_CLIENT_ID, SimConfig::DEFAULT_CLIENT_SECRET,
//! );
//! let mut tcp = tokio::net::TcpStream::connect(server.local_addr()).await?;
//! tcp.write_all(format!(
//!     "POST /contoso.onmicrosoft.com/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost\r\n\
//!      Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
//!      Connection: close\r\n\r\n{body}", body.len()).as_bytes()).await?;
//! let mut answer = String::new();
//! tcp.read_to_string(&mut answer).await?;
//! assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
//! assert!(answer.contains("\"token_type\":\"Bearer\""));
//!
//! // The user's own Teams client, set from the control surface.
//! server.set_client_presence("agent1@contoso.com", Availability::Busy, "InACall")?;
//! let shown = server.shows("agent1@contoso.com").expect("a user");
//! assert_eq!((shown.availability, shown.activity.as_str()), (Availability::Busy, "InACall"));
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## The control API (`/_sim/`)
//!
//! No authentication: loopback tests and demos only.
//!
//! | request | answer |
//! |---|---|
//! | `GET /_sim/users/{upn-or-id}` | 200 [`Shown`] as JSON, 404 |
//! | `PUT /_sim/users/{user}/client-presence` `{"availability":"Busy","activity":"InACall"}` | 204: the user's own Teams client state |
//! | `DELETE /_sim/users/{user}/client-presence` | 204: the Teams client signs out |
//! | `POST /_sim/users` `{"upn":"new@contoso.com"}` | 201 `{"id","upn"}` |
//! | `GET /_sim/stats` | 200 [`SimStats`] as JSON |
//! | `GET /_sim/writes` | 200 the [`WriteRecord`]s as JSON |
//! | `POST /_sim/faults` (a [`Fault`] as JSON) | 204, 400 |
//! | `POST /_sim/faults/clear` | 204 |
//! | `POST /_sim/shutdown` | 202: the server stops |

mod control;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use control::Fault;
pub use tls::TlsListener;

use crate::{
    Availability, GraphSimError, GraphWorld, HttpRequest, HttpResponse, Permission, Shown,
    SimConfig, SimEvent, SimStats, WriteRecord,
};

/// The largest request body read.
const MAX_BODY: usize = 1024 * 1024;

/// How many events a slow [`GraphSimServer::events`] receiver may fall behind.
const EVENT_CAPACITY: usize = 4096;

/// Where and how the simulator listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The simulated tenant. When its `wall_clock_start` is `None`, the current time is
    /// used.
    pub sim: SimConfig,
    /// The address to listen on. Default `127.0.0.1:0` (a free port: see
    /// [`GraphSimServer::local_addr`]).
    pub listen: SocketAddr,
    /// HTTPS with this configuration; plain HTTP when `None`. See
    /// [`ServerConfig::with_self_signed_tls`].
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            sim: SimConfig::default(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: None,
        }
    }
}

impl ServerConfig {
    /// The same with HTTPS, from a fresh throw-away PKI whose server certificate names
    /// `localhost` and `127.0.0.1`. Clients trust [`TestPki::ca_pem`](presence_testpki::TestPki::ca_pem)
    /// or use [`TestPki::client_config`](presence_testpki::TestPki::client_config) with
    /// [`ClientIdentity::None`](presence_testpki::ClientIdentity::None).
    ///
    /// # Errors
    /// [`GraphSimError::Pki`] when the PKI cannot be made.
    pub fn with_self_signed_tls(
        mut self,
    ) -> Result<(ServerConfig, presence_testpki::TestPki), GraphSimError> {
        let pki = presence_testpki::TestPki::localhost()?;
        self.tls = Some(pki.server_tls(false).server_config()?);
        Ok((self, pki))
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
struct Shared {
    world: Mutex<GraphWorld>,
    events: broadcast::Sender<SimEvent>,
    latency: watch::Sender<Duration>,
    stalled: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    /// Requests read and held by the stall or the latency right now.
    held: AtomicUsize,
}

/// Counts a held request while it lives.
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Runs `f` on the core with the current time, then sends the events it produced.
    fn with_world<R>(&self, f: impl FnOnce(&mut GraphWorld, Instant) -> R) -> R {
        let mut world = lock(&self.world);
        let result = f(&mut world, now());
        while let Some(event) = world.poll_event() {
            tracing::debug!(target: "presence_graph_sim", "{event}");
            let _ = self.events.send(event);
        }
        result
    }

    fn apply_fault(&self, fault: Fault) -> Result<(), GraphSimError> {
        tracing::info!(target: "presence_graph_sim", fault = fault.name(), "fault set");
        match fault {
            Fault::RevokeTokens => self.with_world(|w, _| w.revoke_tokens()),
            Fault::SetClientSecret { client_id, secret } => {
                self.with_world(|w, _| w.set_client_secret(&client_id, &secret))?;
            }
            Fault::FailNext {
                count,
                status,
                retry_after,
            } => self.with_world(|w, _| w.fail_next(count, status, retry_after))?,
            Fault::FailFor { seconds, status } => {
                let duration = control::seconds(seconds)?;
                self.with_world(|w, now| w.fail_for(duration, status, now))?;
            }
            Fault::ThrottleFor {
                seconds,
                retry_after,
            } => {
                let duration = control::seconds(seconds)?;
                self.with_world(|w, now| w.throttle_for(duration, retry_after, now));
            }
            Fault::Latency { millis } => {
                self.latency.send_replace(Duration::from_millis(millis));
            }
            Fault::Stall { on } => {
                self.stalled.send_replace(on);
            }
        }
        Ok(())
    }

    fn clear_faults(&self) {
        self.with_world(|w, _| w.clear_faults());
        self.latency.send_replace(Duration::ZERO);
        self.stalled.send_replace(false);
    }

    /// Waits while stalled and for the latency; `false` when the server stops meanwhile.
    async fn hold(&self) -> bool {
        if !*self.stalled.borrow() && self.latency.borrow().is_zero() {
            return true;
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        let _held = Held(&self.held);
        let mut stalled = self.stalled.subscribe();
        let mut shutdown = self.shutdown.subscribe();
        let unstalled = async { stalled.wait_for(|on| !*on).await.is_ok() };
        let stopping = async { shutdown.wait_for(|stop| *stop).await.is_ok() };
        tokio::select! {
            ok = unstalled => if !ok { return false },
            _ = stopping => return false,
        }
        let latency = *self.latency.borrow();
        if !latency.is_zero() {
            let mut shutdown = self.shutdown.subscribe();
            tokio::select! {
                () = tokio::time::sleep(latency) => {}
                _ = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => return false,
            }
        }
        true
    }
}

/// The simulator serving on a socket. Dropping it stops it (like
/// [`shutdown`](Self::shutdown), without waiting).
#[derive(Debug)]
pub struct GraphSimServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tls: bool,
    tenant: String,
    tenant_id: String,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl GraphSimServer {
    /// Binds the listener and starts serving. Must be called within a tokio runtime.
    ///
    /// # Errors
    /// [`GraphSimError::InvalidConfig`] for a configuration the core refuses;
    /// [`GraphSimError::Io`] when the address cannot be bound.
    pub async fn start(config: ServerConfig) -> Result<GraphSimServer, GraphSimError> {
        let ServerConfig {
            mut sim,
            listen,
            tls,
        } = config;
        if sim.wall_clock_start.is_none() {
            sim.wall_clock_start = Some(SystemTime::now());
        }
        let (tenant, tenant_id) = (sim.tenant.clone(), sim.tenant_id.clone());
        let world = GraphWorld::new(sim, now())?;
        let tcp = TcpListener::bind(listen)
            .await
            .map_err(|source| GraphSimError::Io {
                context: format!("cannot listen on {listen}"),
                source,
            })?;
        let local_addr = tcp.local_addr().map_err(|source| GraphSimError::Io {
            context: "cannot read the listener's address".to_owned(),
            source,
        })?;
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            events: broadcast::channel(EVENT_CAPACITY).0,
            latency: watch::channel(Duration::ZERO).0,
            stalled: watch::channel(false).0,
            shutdown: watch::channel(false).0,
            held: AtomicUsize::new(0),
        });
        let app = router(Arc::clone(&shared));
        let mut stop = shared.shutdown.subscribe();
        let signal = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        let is_tls = tls.is_some();
        let task = match tls {
            Some(config) => tokio::spawn(async move {
                let listener = TlsListener::new(tcp, config);
                if let Err(error) = axum::serve(listener, app)
                    .with_graceful_shutdown(signal)
                    .await
                {
                    tracing::warn!(target: "presence_graph_sim", "server stopped: {error}");
                }
            }),
            None => tokio::spawn(async move {
                if let Err(error) = axum::serve(tcp, app).with_graceful_shutdown(signal).await {
                    tracing::warn!(target: "presence_graph_sim", "server stopped: {error}");
                }
            }),
        };
        tracing::info!(
            target: "presence_graph_sim",
            "Graph simulator listening on {local_addr} ({})",
            if is_tls { "HTTPS" } else { "HTTP" }
        );
        Ok(GraphSimServer {
            shared,
            local_addr,
            tls: is_tls,
            tenant,
            tenant_id,
            task: Mutex::new(Some(task)),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` with TLS on loopback (the
    /// name the self-signed certificate holds).
    pub fn base_url(&self) -> String {
        match (self.tls, self.local_addr.ip().is_loopback()) {
            (true, true) => format!("https://localhost:{}", self.local_addr.port()),
            (true, false) => format!("https://{}", self.local_addr),
            (false, _) => format!("http://{}", self.local_addr),
        }
    }

    /// The authority of the token endpoint: the [`base_url`](Self::base_url). The token
    /// URL is `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn authority(&self) -> String {
        self.base_url()
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.authority(), self.tenant)
    }

    /// `{base_url}/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url())
    }

    /// The tenant's domain name.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// A receiver of every event from now on; it may lag behind by at most 4096 events.
    pub fn events(&self) -> broadcast::Receiver<SimEvent> {
        self.shared.events.subscribe()
    }

    /// Runs `f` on the core with the current time (for anything not forwarded here).
    pub fn with_world<R>(&self, f: impl FnOnce(&mut GraphWorld, Instant) -> R) -> R {
        self.shared.with_world(f)
    }

    /// Answers one request in process, as if it came over the socket (no latency, no
    /// stall).
    pub fn handle(&self, request: &HttpRequest) -> HttpResponse {
        self.shared.with_world(|w, now| w.handle(request, now))
    }

    // ------------------------------------------------------------------ the world

    /// See [`GraphWorld::set_client_presence`].
    ///
    /// # Errors
    /// As [`GraphWorld::set_client_presence`].
    pub fn set_client_presence(
        &self,
        user: &str,
        availability: Availability,
        activity: &str,
    ) -> Result<(), GraphSimError> {
        self.shared
            .with_world(|w, now| w.set_client_presence(user, availability, activity, now))
    }

    /// The user sets a status message in their own Teams client (empty: clears it). See
    /// [`GraphWorld::set_user_status_message`].
    ///
    /// # Errors
    /// [`GraphSimError::UnknownUser`].
    pub fn set_user_status_message(&self, user: &str, message: &str) -> Result<(), GraphSimError> {
        self.shared
            .with_world(|w, now| w.set_user_status_message(user, message, now))
    }

    /// See [`GraphWorld::clear_client_presence`].
    ///
    /// # Errors
    /// As [`GraphWorld::clear_client_presence`].
    pub fn clear_client_presence(&self, user: &str) -> Result<(), GraphSimError> {
        self.shared
            .with_world(|w, now| w.clear_client_presence(user, now))
    }

    /// See [`GraphWorld::shows`].
    pub fn shows(&self, user: &str) -> Option<Shown> {
        self.shared.with_world(|w, now| w.shows(user, now))
    }

    /// See [`GraphWorld::writes`].
    pub fn writes(&self) -> Vec<WriteRecord> {
        lock(&self.shared.world).writes()
    }

    /// See [`GraphWorld::stats`].
    pub fn stats(&self) -> SimStats {
        lock(&self.shared.world).stats()
    }

    /// See [`GraphWorld::add_user`].
    ///
    /// # Errors
    /// As [`GraphWorld::add_user`].
    pub fn add_user(&self, upn: &str) -> Result<String, GraphSimError> {
        self.shared.with_world(|w, now| w.add_user(upn, now))
    }

    /// See [`GraphWorld::user_id`].
    pub fn user_id(&self, user: &str) -> Option<String> {
        lock(&self.shared.world).user_id(user).map(str::to_owned)
    }

    // ------------------------------------------------------------------ faults

    /// See [`GraphWorld::revoke_tokens`].
    pub fn revoke_tokens(&self) {
        self.shared.with_world(|w, _| w.revoke_tokens());
    }

    /// See [`GraphWorld::set_client_secret`].
    ///
    /// # Errors
    /// As [`GraphWorld::set_client_secret`].
    pub fn set_client_secret(&self, client_id: &str, secret: &str) -> Result<(), GraphSimError> {
        self.shared
            .with_world(|w, _| w.set_client_secret(client_id, secret))
    }

    /// See [`GraphWorld::set_permissions`].
    ///
    /// # Errors
    /// As [`GraphWorld::set_permissions`].
    pub fn set_permissions(
        &self,
        client_id: &str,
        permissions: impl IntoIterator<Item = Permission>,
    ) -> Result<(), GraphSimError> {
        self.shared
            .with_world(|w, _| w.set_permissions(client_id, permissions))
    }

    /// See [`GraphWorld::fail_next`].
    ///
    /// # Errors
    /// As [`GraphWorld::fail_next`].
    pub fn fail_next(
        &self,
        count: u32,
        status: u16,
        retry_after: Option<u32>,
    ) -> Result<(), GraphSimError> {
        self.shared
            .with_world(|w, _| w.fail_next(count, status, retry_after))
    }

    /// See [`GraphWorld::fail_for`].
    ///
    /// # Errors
    /// As [`GraphWorld::fail_for`].
    pub fn fail_for(&self, duration: Duration, status: u16) -> Result<(), GraphSimError> {
        self.shared
            .with_world(|w, now| w.fail_for(duration, status, now))
    }

    /// See [`GraphWorld::throttle_for`].
    pub fn throttle_for(&self, duration: Duration, retry_after_secs: u32) {
        self.shared
            .with_world(|w, now| w.throttle_for(duration, retry_after_secs, now));
    }

    /// Every answer (Graph and token endpoint, not `/_sim/`) is held back `latency`
    /// before the core sees the request (`Duration::ZERO`: off).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.latency.send_replace(latency);
    }

    /// `true`: requests (Graph and token endpoint) are read but neither applied nor
    /// answered until `stall(false)`; `/_sim/` keeps working.
    pub fn stall(&self, on: bool) {
        self.shared.stalled.send_replace(on);
    }

    /// How many requests are read and held by [`stall`](Self::stall) or
    /// [`set_latency`](Self::set_latency) right now.
    pub fn held_requests(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Applies a [`Fault`] of the menu.
    ///
    /// # Errors
    /// As the method the fault names; [`GraphSimError::InvalidDuration`] for negative or
    /// unusable seconds.
    pub fn apply_fault(&self, fault: Fault) -> Result<(), GraphSimError> {
        self.shared.apply_fault(fault)
    }

    /// Switches every fault off: the core's, the latency and the stall.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Resolves once a shutdown was asked (by [`shutdown`](Self::shutdown) or
    /// `POST /_sim/shutdown`).
    pub async fn stopped(&self) {
        let mut stop = self.shared.shutdown.subscribe();
        let _ = stop.wait_for(|stop| *stop).await;
    }

    /// Stops listening, answers what is in flight (stalled requests get 503) and waits
    /// for the server to end.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for GraphSimServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/users", post(control::add_user))
        .route("/_sim/users/{user}", get(control::show_user))
        .route(
            "/_sim/users/{user}/client-presence",
            put(control::set_client_presence).delete(control::clear_client_presence),
        )
        .route("/_sim/stats", get(control::stats))
        .route("/_sim/writes", get(control::writes))
        .route("/_sim/faults", post(control::fault))
        .route("/_sim/faults/clear", post(control::clear_faults))
        .route("/_sim/shutdown", post(control::shutdown))
        .fallback(graph)
        .with_state(shared)
}

/// Every request outside `/_sim/`: to the core.
async fn graph(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body over 1 MiB").into_response();
    };
    if !shared.hold().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "the simulator is stopping").into_response();
    }
    let request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let response = shared.with_world(|w, now| w.handle(&request, now));
    // The path only: never a query, a header or a body (tokens and secrets live there).
    tracing::debug!(
        target: "presence_graph_sim",
        method = %parts.method,
        path = parts.uri.path(),
        status = response.status,
        "request"
    );
    into_axum(response)
}

fn into_axum(response: HttpResponse) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Body::from(response.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
