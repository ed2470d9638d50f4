//! The Entra token endpoint: `POST /{tenant}/oauth2/v2.0/token`, client-credentials grant.

use std::time::Instant;

use serde_json::json;

use super::{GraphWorld, TokenState, client_guid, deadline};
use crate::http::parse_form;
use crate::time::entra_timestamp;
use crate::{HttpRequest, HttpResponse, RequestKind, SimEvent};

/// The scopes a client-credentials request for Graph may name.
const GRAPH_SCOPES: [&str; 2] = [
    "https://graph.microsoft.com/.default",
    "00000003-0000-0000-c000-000000000000/.default",
];

/// How long an expired token is still remembered (to answer "expired" rather than
/// "unknown"); older ones are forgotten when a new token is issued.
const EXPIRED_TOKEN_MEMORY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

struct EntraError {
    status: u16,
    error: &'static str,
    code: u32,
    description: String,
    client_id: Option<String>,
}

fn missing(field: &str, client_id: Option<String>) -> EntraError {
    EntraError {
        status: 400,
        error: "invalid_request",
        code: 900_144,
        description: format!("The request body must contain the following parameter: '{field}'."),
        client_id,
    }
}

impl GraphWorld {
    pub(super) fn token(
        &mut self,
        tenant: &str,
        request: &HttpRequest,
        now: Instant,
    ) -> HttpResponse {
        self.stats.count(RequestKind::Token);
        match self.issue(tenant, request, now) {
            Ok(response) => response,
            Err(error) => self.entra_error(error, request, now),
        }
    }

    fn issue(
        &mut self,
        tenant: &str,
        request: &HttpRequest,
        now: Instant,
    ) -> Result<HttpResponse, EntraError> {
        if request.method != "POST" {
            return Err(EntraError {
                status: 400,
                error: "invalid_request",
                code: 900_561,
                description: format!(
                    "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
                    request.method.chars().take(16).collect::<String>()
                ),
                client_id: None,
            });
        }
        if !tenant.eq_ignore_ascii_case(&self.config.tenant)
            && !tenant.eq_ignore_ascii_case(&self.config.tenant_id)
        {
            return Err(EntraError {
                status: 400,
                error: "invalid_request",
                code: 90_002,
                description: format!(
                    "Tenant '{}' not found. Check to make sure you have the correct tenant ID \
                     and are signing into the correct cloud. Check with your subscription \
                     administrator, this may happen if there are no active subscriptions for \
                     the tenant.",
                    tenant.chars().take(128).collect::<String>()
                ),
                client_id: None,
            });
        }
        let form = parse_form(&request.body);
        let field = |name: &str| {
            form.iter()
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        let client_id = field("client_id").map(|id| id.chars().take(128).collect::<String>());
        let grant_type =
            field("grant_type").ok_or_else(|| missing("grant_type", client_id.clone()))?;
        if grant_type != "client_credentials" {
            return Err(EntraError {
                status: 400,
                error: "unsupported_grant_type",
                code: 70_003,
                description: format!(
                    "The app requested an unsupported grant type '{}'.",
                    grant_type.chars().take(64).collect::<String>()
                ),
                client_id,
            });
        }
        let Some(client_id) = client_id else {
            return Err(missing("client_id", None));
        };
        let scope = field("scope").ok_or_else(|| missing("scope", Some(client_id.clone())))?;
        if !GRAPH_SCOPES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scope.trim()))
        {
            return Err(EntraError {
                status: 400,
                error: "invalid_scope",
                code: 1_002_012,
                description: format!(
                    "The provided value for scope {} is not valid. Client credential flows must \
                     have a scope value with /.default suffixed to the resource identifier \
                     (application ID URI).",
                    scope.chars().take(128).collect::<String>()
                ),
                client_id: Some(client_id),
            });
        }
        let Some(app) = self.app_index(&client_id) else {
            let tenant = self.config.tenant.clone();
            return Err(EntraError {
                status: 400,
                error: "unauthorized_client",
                code: 700_016,
                description: format!(
                    "Application with identifier '{client_id}' was not found in the directory \
                     '{tenant}'. This can happen if the application has not been installed by \
                     the administrator of the tenant or consented to by any user in the tenant. \
                     You may have sent your authentication request to the wrong tenant."
                ),
                client_id: Some(client_id),
            });
        };
        let secret = field("client_secret")
            .ok_or_else(|| missing("client_secret", Some(client_id.clone())))?;
        let registered = self
            .apps
            .get(app)
            .map(|a| a.registration.client_id.clone())
            .unwrap_or_default();
        if self
            .apps
            .get(app)
            .is_none_or(|a| a.registration.client_secret != secret)
        {
            return Err(EntraError {
                status: 401,
                error: "invalid_client",
                code: 7_000_215,
                description: format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request \
                     is the client secret value, not the client secret ID, for a secret added to \
                     app '{registered}'."
                ),
                client_id: Some(client_id),
            });
        }

        // Forget tokens long expired, then issue.
        self.tokens
            .retain(|_, t| now.saturating_duration_since(t.expires_at) < EXPIRED_TOKEN_MEMORY);
        let lifetime = self.config.token_lifetime;
        let token = crate::rng::token(&mut self.rng);
        self.tokens.insert(
            token.clone(),
            TokenState {
                app,
                expires_at: deadline(now, lifetime),
                revoked: false,
            },
        );
        self.stats.tokens_issued += 1;
        let expires_in = lifetime.as_secs();
        self.emit(SimEvent::TokenIssued {
            client_id: registered,
            expires_in,
        });
        let body = json!({
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": token,
        });
        Ok(entra_response(200, &body, request))
    }

    fn entra_error(
        &mut self,
        error: EntraError,
        request: &HttpRequest,
        now: Instant,
    ) -> HttpResponse {
        self.stats.tokens_refused += 1;
        let trace_id = self.rng.guid();
        let correlation_id = client_guid(request).unwrap_or_else(|| self.rng.guid());
        let timestamp = entra_timestamp(self.wall(now));
        let EntraError {
            status,
            error,
            code,
            description,
            client_id,
        } = error;
        self.emit(SimEvent::TokenRefused {
            client_id,
            status,
            error: error.to_owned(),
            code,
        });
        let body = json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: \
                 {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        });
        let mut response = entra_response(status, &body, request);
        response
            .headers
            .push(("x-ms-request-id".to_owned(), trace_id));
        response
    }
}

fn entra_response(status: u16, body: &serde_json::Value, request: &HttpRequest) -> HttpResponse {
    let mut headers = vec![
        (
            "Content-Type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        ),
        ("Cache-Control".to_owned(), "no-store, no-cache".to_owned()),
        ("Pragma".to_owned(), "no-cache".to_owned()),
    ];
    if let Some(id) = client_guid(request) {
        headers.push(("client-request-id".to_owned(), id));
    }
    HttpResponse {
        status,
        headers,
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}
