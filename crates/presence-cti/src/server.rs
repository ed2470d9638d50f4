//! The endpoint: HTTP routing, authentication, the WebSocket upgrade and graceful shutdown
//! (connection limits and timeouts are the shared [`listener`](crate::listener)'s).

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
use crate::listener::HttpListener;
use crate::sink::Routes;
use crate::{CtiConfig, CtiError, CtiSink, PATH};

/// The WebSocket layer's read buffer per connection: its initial size, and the most read
/// from the socket at once. Messages are a few hundred bytes; a larger frame grows the
/// buffer as it needs (tungstenite's default of 128 KiB cost every idle client that much).
const READ_BUFFER_BYTES: usize = 4096;

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
    pub(crate) inputs: mpsc::Sender<LinkInput>,
    pub(crate) routes: Arc<Routes>,
    next_id: AtomicU64,
    /// `true` once shutdown has begun.
    pub(crate) stop: watch::Receiver<bool>,
}

/// The contact-centre link's WebSocket server.
///
/// [`bind`](CtiServer::bind) it, hand [`sink`](CtiServer::sink) to the engine, then run
/// [`serve`](CtiServer::serve) until shutdown.
#[derive(Debug)]
pub struct CtiServer {
    listener: HttpListener,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl CtiServer {
    /// Validates `config` and binds its `listen` address. Valid client messages and
    /// connection changes go to `inputs` as [`LinkInput`]s.
    ///
    /// Errors: [`CtiError::TokenRequired`] when `listen` is not a loopback address and no
    /// `token` is set; [`CtiError::InvalidOption`] for another bad setting;
    /// [`CtiError::Bind`] when the address cannot be bound; [`CtiError::Serve`] when the
    /// bound socket's address cannot be read.
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
        let listener = HttpListener::new(listener, config.listener())?;
        let local_addr = listener.local_addr();
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
            inputs,
            routes: Arc::new(Routes::default()),
            next_id: AtomicU64::new(1),
            stop: stop_rx,
        });
        tracing::info!(
            endpoint = %format!("ws://{local_addr}{PATH}"),
            authentication = if shared.token.is_some() { "bearer token" } else { "none (loopback)" },
            "contact-centre link listening"
        );
        Ok(CtiServer {
            listener,
            shared,
            stop,
        })
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// The sink through which the engine sends events to clients.
    pub fn sink(&self) -> CtiSink {
        CtiSink::new(self.shared.routes.clone())
    }

    /// Serves clients until `shutdown` completes, then stops accepting, closes every
    /// connection with a close frame (code 1001, "bridge shutting down") and returns once
    /// they have closed (waiting at most 5 seconds for slow peers).
    ///
    /// Errors: [`CtiError::Serve`] when the listening socket becomes unusable.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CtiError> {
        let CtiServer {
            listener,
            shared,
            stop,
        } = self;
        let local_addr = listener.local_addr();
        let app = Router::new().route(PATH, get(upgrade)).with_state(shared);
        let signal = async move {
            shutdown.await;
            tracing::info!(%local_addr, "contact-centre link shutting down");
            stop.send_replace(true);
        };
        listener.serve(app, signal).await
    }
}

/// `GET /v1/cti`: authenticates and upgrades (the listener has counted the connection).
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
            HeaderValue::from_static(crate::auth::CHALLENGE),
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
    let client = ClientId::new(shared.next_id.fetch_add(1, Ordering::Relaxed));
    ws.max_message_size(shared.limits.hard_cap)
        .max_frame_size(shared.limits.hard_cap)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_failed_upgrade(move |error| {
            tracing::debug!(%peer, %error, "WebSocket upgrade failed");
        })
        .on_upgrade(move |socket| Connection::run(socket, shared, client, peer))
}
