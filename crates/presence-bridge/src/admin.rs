//! The admin HTTP API: health, readiness, metrics, DN state, reload.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use presence_cti::listener::{HttpListener, ListenerConfig};
use presence_engine::EngineHandle;
use presence_ha::Elector;
use presence_transport::PresenceTransport;
use presence_transport::settings::Secret;
use serde::Deserialize;
use serde_json::json;

/// The `[admin]` table.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `listen` | `127.0.0.1:7071` | address of the admin HTTP listener |
/// | `token` | none | bearer token for every admin request but `/healthz` and `/readyz`; **required** when `listen` is not a loopback address; visible ASCII, no spaces |
/// | `max-connections` | `64` | connections held at once, from accept to close; further ones get HTTP 503 |
/// | `handshake-timeout` | `10s` | time a connection has to send a complete request (100ms..=5m); then it is closed |
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AdminSettings {
    /// Listener address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Bearer token (a [`Secret`]: `Debug` and errors never show it).
    #[serde(default)]
    pub token: Option<Secret>,
    /// Connections held at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Time a connection has to send a complete request head.
    #[serde(
        default = "default_handshake_timeout",
        deserialize_with = "presence_transport::settings::duration"
    )]
    pub handshake_timeout: Duration,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: default_listen(),
            token: None,
            max_connections: default_max_connections(),
            handshake_timeout: default_handshake_timeout(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7071))
}

fn default_max_connections() -> usize {
    64
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

impl AdminSettings {
    /// Refuses a listener off loopback without a token, a token that cannot be a bearer
    /// token (the contact-centre link's rule), and limits out of range.
    pub(crate) fn validate(&self) -> Result<()> {
        match &self.token {
            None if !self.listen.ip().is_loopback() => bail!(
                "[admin] `token` is required because `listen` ({}) is not a loopback address",
                self.listen
            ),
            Some(token) if !presence_cti::auth::valid_token(token.expose()) => bail!(
                "`admin.token` = (hidden) is not valid: expected a non-empty bearer token of visible ASCII characters without spaces"
            ),
            _ => {}
        }
        self.listener().validate()?;
        Ok(())
    }

    /// The listener's identity and limits (the contact-centre link's rules).
    pub(crate) fn listener(&self) -> ListenerConfig {
        ListenerConfig {
            name: "admin API",
            table: "admin",
            max_connections: self.max_connections,
            handshake_timeout: self.handshake_timeout,
        }
    }
}

/// Re-reads the configuration and applies it; `Err` carries the diagnostics as text lines.
pub(crate) type Reloader = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<serde_json::Value, Vec<String>>> + Send>>
        + Send
        + Sync,
>;

/// What the admin routes need.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub engine: EngineHandle,
    pub metrics: PrometheusHandle,
    /// Every transport (the router, or the HA gate), for readiness.
    pub transport: Arc<dyn PresenceTransport>,
    /// With `[ha]`: the elector, for `/v1/ha`, readiness and metrics.
    pub elector: Option<Elector>,
    pub reload: Reloader,
    pub token: Option<Secret>,
}

/// The same check as the contact-centre link's.
fn authorized(state: &AdminState, headers: &HeaderMap) -> bool {
    state
        .token
        .as_ref()
        .is_none_or(|token| presence_cti::auth::bearer_authorized(headers, token.expose()))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, presence_cti::auth::CHALLENGE)],
        axum::Json(json!({"error": "a bearer token is required (Authorization: Bearer <token>)"})),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `/readyz?role=leader`: ready only on the leader.
#[derive(Debug, Deserialize)]
pub(crate) struct ReadyQuery {
    role: Option<String>,
}

/// `200` when ready, else `503`; the body says why. Alone: ready when every transport is
/// connected. With `[ha]`: the leader is ready when every transport is connected, a
/// standby when it can take over (it holds a lease and campaigns); `?role=leader` asks for
/// the leader only (a standby answers `503`). The body has a `role` field: `alone`,
/// `leader` or `standby`.
async fn readyz(State(state): State<AdminState>, Query(query): Query<ReadyQuery>) -> Response {
    let statuses = state.transport.status();
    let connected = !statuses.is_empty() && statuses.iter().all(|s| s.connected);
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
    let not_connected = || format!("not ready: not connected: {}", down.join(", "));
    let ha = state.elector.as_ref().map(Elector::status);
    let (role, leader) = match &ha {
        None => ("alone", None),
        Some(status) => (
            status.role.name(),
            status.leader.as_ref().map(ToString::to_string),
        ),
    };
    let wants_leader = query.role.as_deref() == Some("leader");
    let refusal: Option<String> = match &ha {
        None if wants_leader => Some("not ready: this bridge runs alone (no [ha])".to_owned()),
        None => (!connected).then(not_connected),
        Some(status) if status.role.is_leader() => (!connected).then(not_connected),
        Some(_) if wants_leader => {
            Some("not ready: this node is standby, not the leader".to_owned())
        }
        Some(status) => (!crate::ha::healthy_standby(status)).then(|| {
            format!(
                "not ready: standby that cannot take over: {}",
                status
                    .etcd_trouble
                    .clone()
                    .unwrap_or_else(|| status.role.to_string())
            )
        }),
    };
    let mut body = json!({
        "ready": refusal.is_none(),
        "role": role,
        "transports": transports,
    });
    if let Some(leader) = leader {
        body["leader"] = json!(leader);
    }
    if let Some(message) = &refusal {
        body["message"] = json!(message);
    }
    let status = if refusal.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// `GET /v1/ha`: the election as this node sees it.
async fn ha(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    match &state.elector {
        Some(elector) => axum::Json(crate::ha::status_json(&elector.status())).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"error": "this bridge runs alone: its configuration has no [ha] table"}),
            ),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    if let Some(elector) = &state.elector {
        crate::ha::record_metrics(&elector.status());
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
pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/dns/{dn}", get(dn))
        .route("/v1/ha", get(ha))
        .route("/v1/reload", post(reload))
        .with_state(state)
}

/// Binds the admin listener, with the same connection limits, handshake timeout and
/// accept-failure handling as the contact-centre link.
pub(crate) async fn bind(settings: &AdminSettings) -> Result<HttpListener> {
    settings.validate()?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on [admin] `listen` = {}", settings.listen))?;
    Ok(HttpListener::new(listener, settings.listener())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AdminSettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn listener_limits_default_and_are_checked_like_the_links() {
        let settings = parse("");
        assert_eq!(settings.max_connections, 64);
        assert_eq!(settings.handshake_timeout, Duration::from_secs(10));
        settings.validate().unwrap();
        let listener = settings.listener();
        assert_eq!((listener.table, listener.name), ("admin", "admin API"));

        let custom = parse("max-connections = 8\nhandshake-timeout = \"750ms\"");
        assert_eq!(custom.max_connections, 8);
        assert_eq!(custom.handshake_timeout, Duration::from_millis(750));
        custom.validate().unwrap();

        for (text, needle) in [
            ("max-connections = 0", "`admin.max-connections` = 0"),
            (
                "handshake-timeout = \"20ms\"",
                "`admin.handshake-timeout` = 20ms",
            ),
            ("handshake-timeout = \"1h\"", "`admin.handshake-timeout`"),
        ] {
            let err = parse(text).validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert!(toml::from_str::<AdminSettings>("handshake-timeout = \"soon\"").is_err());
    }

    /// The contact-centre link's token rules, and the token never shown.
    #[test]
    fn the_token_follows_the_links_rules_and_never_shows() {
        // By default the admin API listens on loopback only, with no token.
        let default = parse("");
        assert_eq!(default.listen, SocketAddr::from(([127, 0, 0, 1], 7071)));
        assert!(default.token.is_none());
        default.validate().unwrap();
        let settings = parse("listen = \"0.0.0.0:7071\"\ntoken = \"adm1n-s3cret\"");
        settings.validate().unwrap();
        assert_eq!(
            settings.token.as_ref().map(Secret::expose),
            Some("adm1n-s3cret")
        );
        let debug = format!("{settings:?}");
        assert!(!debug.contains("adm1n-s3cret"), "{debug}");
        let err = parse("listen = \"0.0.0.0:7071\"")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`token` is required"), "{err}");
        for (bad, shown) in [
            ("\"\"", ""),
            ("\"two words\"", "two words"),
            ("\"tab\\there\"", "tab"),
        ] {
            for listen in ["127.0.0.1:7071", "0.0.0.0:7071"] {
                let err = parse(&format!("listen = \"{listen}\"\ntoken = {bad}"))
                    .validate()
                    .unwrap_err()
                    .to_string();
                assert!(err.contains("`admin.token` = (hidden)"), "{bad}: {err}");
                assert!(shown.is_empty() || !err.contains(shown), "{err}");
            }
        }
        // The message (the bridge prints it with its own file:line, without TOML's source
        // excerpt).
        let err = toml::from_str::<AdminSettings>("token = 48151623")
            .unwrap_err()
            .message()
            .to_owned();
        assert!(!err.contains("48151623"), "{err}");
    }
}
