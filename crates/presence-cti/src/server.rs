//! The listener: HTTP routing, authentication, connection limits and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use governor::Quota;
use presence_tlib::{ClientId, LinkInput};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::connection::Connection;
use crate::sink::Routes;
use crate::{CtiConfig, CtiError, CtiSink, PATH};

/// How long `serve` waits, after the shutdown signal, for connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The limits every connection applies.
#[derive(Debug)]
pub(crate) struct Limits {
    /// `max_message_bytes`: larger text frames are refused with `EventError`.
    pub(crate) max_message_bytes: usize,
    /// The WebSocket layer's own cap (4 × `max_message_bytes`): larger frames are not read
    /// and end the connection (close code 1009).
    pub(crate) hard_cap: usize,
    /// The per-connection rate limit.
    pub(crate) quota: Quota,
    /// `rate_per_second`, for error texts.
    pub(crate) rate_per_second: u32,
    /// `burst`, for error texts.
    pub(crate) burst: u32,
    /// The per-connection outbound queue.
    pub(crate) queue: usize,
}

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    token: Option<String>,
    max_connections: usize,
    pub(crate) inputs: mpsc::Sender<LinkInput>,
    pub(crate) routes: Arc<Routes>,
    next_id: AtomicU64,
    /// The number of connections being served (counted from the upgrade request on).
    active: watch::Sender<usize>,
    /// `true` once shutdown has begun.
    pub(crate) stop: watch::Receiver<bool>,
}

/// Counts one connection while alive.
#[derive(Debug)]
pub(crate) struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The contact-centre link's WebSocket server.
///
/// [`bind`](CtiServer::bind) it, hand [`sink`](CtiServer::sink) to the engine, then run
/// [`serve`](CtiServer::serve) until shutdown.
#[derive(Debug)]
pub struct CtiServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl CtiServer {
    /// Validates `config` and binds its `listen` address. Valid client messages and
    /// connection changes go to `inputs` as [`LinkInput`]s.
    ///
    /// Errors: [`CtiError::TokenRequired`] when `listen` is not a loopback address and no
    /// `token` is set; [`CtiError::InvalidOption`] for another bad setting;
    /// [`CtiError::Bind`] when the address cannot be bound.
    pub async fn bind(
        config: CtiConfig,
        inputs: mpsc::Sender<LinkInput>,
    ) -> Result<CtiServer, CtiError> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| CtiError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| CtiError::Bind {
            addr: config.listen,
            source,
        })?;
        // `validate` guarantees both are at least 1.
        let rate = NonZeroU32::new(config.rate_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            limits: Limits {
                max_message_bytes: config.max_message_bytes,
                hard_cap: config.max_message_bytes.saturating_mul(4),
                quota: Quota::per_second(rate).allow_burst(burst),
                rate_per_second: config.rate_per_second,
                burst: config.burst,
                queue: config.queue,
            },
            token: config.token,
            max_connections: config.max_connections,
            inputs,
            routes: Arc::new(Routes::default()),
            next_id: AtomicU64::new(1),
            active: watch::Sender::new(0),
            stop: stop_rx,
        });
        tracing::info!(
            endpoint = %format!("ws://{local_addr}{PATH}"),
            authentication = if shared.token.is_some() { "bearer token" } else { "none (loopback)" },
            "contact-centre link listening"
        );
        Ok(CtiServer {
            listener,
            local_addr,
            shared,
            stop,
        })
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The sink through which the engine sends events to clients.
    pub fn sink(&self) -> CtiSink {
        CtiSink::new(self.shared.routes.clone())
    }

    /// Serves clients until `shutdown` completes, then stops accepting, closes every
    /// connection with a close frame (code 1001, "bridge shutting down") and returns once
    /// they have closed (waiting at most 5 seconds for slow peers).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CtiError> {
        let CtiServer {
            listener,
            local_addr,
            shared,
            stop,
        } = self;
        let app = Router::new()
            .route(PATH, get(upgrade))
            .with_state(shared.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
        let signal = async move {
            shutdown.await;
            tracing::info!(%local_addr, "contact-centre link shutting down");
            stop.send_replace(true);
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
            .map_err(CtiError::Serve)?;
        let mut active = shared.active.subscribe();
        if tokio::time::timeout(SHUTDOWN_GRACE, active.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!(
                open = *active.borrow(),
                "contact-centre connections did not close in time; leaving them"
            );
        }
        Ok(())
    }
}

/// `GET /v1/cti`: authenticates, counts and upgrades.
async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(token) = &shared.token
        && !crate::auth::bearer_authorized(&headers, token)
    {
        tracing::warn!(%peer, "contact-centre connection refused: missing or wrong bearer token");
        let mut response = (
            StatusCode::UNAUTHORIZED,
            "a bearer token is required: send `Authorization: Bearer <token>`\n",
        )
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"presence-bridge\""),
        );
        return response;
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if *shared.stop.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the bridge is shutting down\n",
        )
            .into_response();
    }
    let admitted = shared.active.send_if_modified(|n| {
        let room = *n < shared.max_connections;
        if room {
            *n += 1;
        }
        room
    });
    if !admitted {
        tracing::warn!(%peer, max_connections = shared.max_connections, "contact-centre connection refused: too many connections");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections (`cti.max-connections`)\n",
        )
            .into_response();
    }
    let guard = ActiveGuard(shared.clone());
    let client = ClientId::new(shared.next_id.fetch_add(1, Ordering::Relaxed));
    ws.max_message_size(shared.limits.hard_cap)
        .max_frame_size(shared.limits.hard_cap)
        .on_failed_upgrade(move |error| {
            tracing::debug!(%peer, %error, "WebSocket upgrade failed");
        })
        .on_upgrade(move |socket| Connection::run(socket, shared, client, peer, guard))
}
