//! The admin HTTP API: health, readiness, metrics, DN state, reload.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use presence_engine::EngineHandle;
use presence_transport::PresenceTransport;
use serde::Deserialize;
use serde_json::json;

/// The `[admin]` table.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `listen` | `127.0.0.1:7071` | address of the admin HTTP listener |
/// | `token` | none | bearer token for every admin request; **required** when `listen` is not a loopback address |
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdminSettings {
    /// Listener address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Bearer token.
    #[serde(default)]
    pub token: Option<String>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: default_listen(),
            token: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7071))
}

impl AdminSettings {
    /// Refuses a listener off loopback without a token.
    pub fn validate(&self) -> Result<()> {
        if !self.listen.ip().is_loopback() && self.token.is_none() {
            bail!(
                "[admin] `token` is required because `listen` ({}) is not a loopback address",
                self.listen
            );
        }
        Ok(())
    }
}

/// Re-reads the configuration and applies it; `Err` carries the diagnostics as text lines.
pub type Reloader = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<serde_json::Value, Vec<String>>> + Send>>
        + Send
        + Sync,
>;

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    pub engine: EngineHandle,
    pub metrics: PrometheusHandle,
    /// Every transport (the router), for readiness.
    pub transport: Arc<dyn PresenceTransport>,
    pub reload: Reloader,
    pub token: Option<String>,
}

/// The same check as the contact-centre link's.
fn authorized(state: &AdminState, headers: &HeaderMap) -> bool {
    state
        .token
        .as_deref()
        .is_none_or(|token| presence_cti::auth::bearer_authorized(headers, token))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(json!({"error": "a bearer token is required (Authorization: Bearer <token>)"})),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `200` when every transport is connected, else `503`; the body says which is which.
async fn readyz(State(state): State<AdminState>) -> Response {
    let statuses = state.transport.status();
    let ready = !statuses.is_empty() && statuses.iter().all(|s| s.connected);
    let transports: Vec<serde_json::Value> = statuses
        .iter()
        .map(|s| {
            json!({
                "platform": s.platform.as_str(),
                "connected": s.connected,
                "peer": s.peer,
                "detail": s.detail,
                "publications_in_flight": s.publications_in_flight,
            })
        })
        .collect();
    let down: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.connected)
        .map(|s| s.platform.as_str())
        .collect();
    let body = if ready {
        json!({"ready": true, "transports": transports})
    } else {
        json!({
            "ready": false,
            "message": format!("not ready: not connected: {}", down.join(", ")),
            "transports": transports,
        })
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn dn(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(dn): Path<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    match state.engine.dn(&dn).await {
        Ok(Some(view)) => axum::Json(view).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"error": format!("DN `{dn}` is not an Extension DN of the configuration")}),
            ),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn reload(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    match (state.reload)().await {
        Ok(report) => axum::Json(json!({"reloaded": true, "report": report})).into_response(),
        Err(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "reloaded": false,
                "message": "the new configuration is invalid; the running one stays in force",
                "errors": errors,
            })),
        )
            .into_response(),
    }
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/dns/{dn}", get(dn))
        .route("/v1/reload", post(reload))
        .with_state(state)
}

/// Binds the admin listener.
pub async fn bind(settings: &AdminSettings) -> Result<tokio::net::TcpListener> {
    settings.validate()?;
    tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on [admin] `listen` = {}", settings.listen))
}
