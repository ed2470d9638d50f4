//! The `[teams]` table of the bridge's configuration, its validation, and the client secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use presence_model::{AggregatedStateId, AvailabilityClass, EntraId, Lcid};
use serde::Deserialize;

use crate::GraphError;
use crate::mapping::{Mapping, parse_target};

pub use presence_transport::settings::Secret;

/// Where an app's client secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// Written in the configuration (`client-secret`).
    Inline(Secret),
    /// A file holding it (`client-secret-file`); surrounding white space is trimmed.
    File(PathBuf),
    /// An environment variable (`client-secret-env`).
    Env(String),
}

impl SecretSource {
    /// Reads the secret now. `key` names the configuration key in errors.
    pub fn read(&self, key: &'static str) -> Result<Secret, GraphError> {
        match self {
            SecretSource::Inline(secret) => Ok(secret.clone()),
            SecretSource::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| GraphError::SecretFile {
                        key,
                        path: path.clone(),
                        source,
                    })?;
                let value = text.trim();
                if value.is_empty() {
                    return Err(GraphError::Setting {
                        key,
                        message: format!("the secret file `{}` is empty", path.display()),
                    });
                }
                Ok(Secret::new(value))
            }
            SecretSource::Env(name) => {
                let value = std::env::var(name).map_err(|source| GraphError::SecretEnv {
                    key,
                    name: name.clone(),
                    source,
                })?;
                let value = value.trim();
                if value.is_empty() {
                    return Err(GraphError::Setting {
                        key,
                        message: format!("the environment variable `{name}` is empty"),
                    });
                }
                Ok(Secret::new(value))
            }
        }
    }
}

/// One more app registration (`[[teams.apps]]`): its client id and one secret source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AppSettings {
    /// The application (client) id, a GUID.
    pub client_id: String,
    /// The client secret itself.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// A file holding the client secret (relative paths are rebased by the caller).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// An environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
}

/// Per-class overrides (`[teams.classes]`): `"Availability/Activity"` per SfB class.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClassOverrides {
    /// Online (1–4499).
    pub online: Option<String>,
    /// IdleOnline (4500–5999).
    pub idle_online: Option<String>,
    /// Busy (6000–7499).
    pub busy: Option<String>,
    /// IdleBusy (7500–8999).
    pub idle_busy: Option<String>,
    /// DoNotDisturb (9000–11999).
    pub do_not_disturb: Option<String>,
    /// BeRightBack (12000–14999).
    pub be_right_back: Option<String>,
    /// Away (15000–17999).
    pub away: Option<String>,
}

impl ClassOverrides {
    fn entries(&self) -> [(&'static str, AvailabilityClass, Option<&str>); 7] {
        [
            (
                "teams.classes.online",
                AvailabilityClass::Online,
                self.online.as_deref(),
            ),
            (
                "teams.classes.idle-online",
                AvailabilityClass::IdleOnline,
                self.idle_online.as_deref(),
            ),
            (
                "teams.classes.busy",
                AvailabilityClass::Busy,
                self.busy.as_deref(),
            ),
            (
                "teams.classes.idle-busy",
                AvailabilityClass::IdleBusy,
                self.idle_busy.as_deref(),
            ),
            (
                "teams.classes.do-not-disturb",
                AvailabilityClass::DoNotDisturb,
                self.do_not_disturb.as_deref(),
            ),
            (
                "teams.classes.be-right-back",
                AvailabilityClass::BeRightBack,
                self.be_right_back.as_deref(),
            ),
            (
                "teams.classes.away",
                AvailabilityClass::Away,
                self.away.as_deref(),
            ),
        ]
    }
}

/// The `[teams]` table of the bridge's configuration: the Microsoft Teams transport.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `tenant` | required | the Entra tenant: its id (a GUID) or a verified domain (`contoso.onmicrosoft.com`) |
/// | `client-id` | required | the app registration's application (client) id, a GUID; it is also the `sessionId` of the bridge's presence sessions |
/// | `client-secret` | — | the client secret itself (exactly one of the three secret keys) |
/// | `client-secret-file` | — | a file holding the client secret (relative to the configuration file) |
/// | `client-secret-env` | — | an environment variable holding the client secret |
/// | `authority` | `https://login.microsoftonline.com` | the Entra authority; the token URL is `{authority}/{tenant}/oauth2/v2.0/token` |
/// | `graph-url` | `https://graph.microsoft.com/v1.0` | the Graph base URL (sovereign clouds, a simulator) |
/// | `scope` | `https://graph.microsoft.com/.default` | the token scope (sovereign clouds use their Graph host) |
/// | `ca` | the system's roots | a PEM file of extra trust anchors (a TLS-inspecting proxy, a simulator), added to the system's |
/// | `budget` | `1350` | presence requests per 30 s per app registration, `1..=1500` (Graph allows 1,500; the default keeps 10 % for the burst and for requests Graph counts that we cannot see) |
/// | `max-concurrency` | `16` | HTTP requests in flight per app, `2..=256` |
/// | `request-timeout` | `10s` | how long one HTTP request may take |
/// | `poll-interval` | `5s` | how often subscribed users' presence is read (at least `1s`) |
/// | `session-duration` | `1h` | the `expirationDuration` of the bridge's sessions, `5m..=4h`; refreshed at 80 % (Available sessions every 4 minutes, before they decay) |
/// | `status-message` | `true` | set the Teams status message from the activity text |
/// | `status-message-lcid` | `1033` | which locale's activity text becomes the status message |
/// | `preferred-presence` | `false` | use `setUserPreferredPresence` for Busy, IdleBusy, DoNotDisturb and BeRightBack (it overrides the user's own choice) |
/// | `classes.<class>` | see [`crate::mapping`] | per SfB class (`online`, `idle-online`, `busy`, `idle-busy`, `do-not-disturb`, `be-right-back`, `away`) a pair `"Availability/Activity"` |
/// | `states.<ID>` | — | per aggregated state ID a pair `"Availability/Activity"`; wins over `classes` |
/// | `[[apps]]` | none | more app registrations, each `client-id` and one secret key; users are spread over all apps by a stable hash of their user id |
/// | `reconnect-initial` / `reconnect-max` | `5s` / `5m` | back-off between token requests after a failure or a refused credential (doubling, ±20 %) |
/// | `retry-initial` / `retry-max` | `1s` / `1m` | back-off of the transport's own work (polls, session refreshes, status messages) after 5xx, timeouts and 429 without `Retry-After` |
/// | `user-retry` | `10m` | how often a UPN that does not resolve is looked up again |
///
/// Durations are written `500ms`, `10s`, `5m`, `1h` (or a number of seconds). The secret is
/// never printed: [`Secret`]'s `Debug` is redacted and [`GraphSettings::findings`] does not
/// quote it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GraphSettings {
    /// The tenant id or domain.
    pub tenant: String,
    /// The application (client) id.
    pub client_id: String,
    /// The client secret itself.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// A file holding the client secret (relative paths are rebased by the caller).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// An environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// The Entra authority.
    #[serde(default = "default_authority")]
    pub authority: String,
    /// The Graph base URL.
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// The token scope.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Extra PEM trust anchors.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Presence requests per 30 s per app.
    #[serde(default = "default_budget")]
    pub budget: u32,
    /// HTTP requests in flight per app.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: u32,
    /// One HTTP request's time limit.
    #[serde(default = "secs::<10>", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// How often subscribed users are read.
    #[serde(default = "secs::<5>", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// The bridge's session lifetime.
    #[serde(default = "secs::<3600>", deserialize_with = "duration")]
    pub session_duration: Duration,
    /// Manage the status message.
    #[serde(default = "yes")]
    pub status_message: bool,
    /// Which activity text becomes the status message.
    #[serde(default = "default_lcid")]
    pub status_message_lcid: u32,
    /// Use preferred presence for the Busy, DND and BeRightBack classes.
    #[serde(default)]
    pub preferred_presence: bool,
    /// Per-class overrides.
    #[serde(default)]
    pub classes: ClassOverrides,
    /// Per-state overrides.
    #[serde(default)]
    pub states: BTreeMap<String, String>,
    /// More app registrations.
    #[serde(default)]
    pub apps: Vec<AppSettings>,
    /// First token retry delay.
    #[serde(default = "secs::<5>", deserialize_with = "duration")]
    pub reconnect_initial: Duration,
    /// Longest token retry delay.
    #[serde(default = "secs::<300>", deserialize_with = "duration")]
    pub reconnect_max: Duration,
    /// First retry delay of internal work.
    #[serde(default = "secs::<1>", deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// Longest retry delay of internal work.
    #[serde(default = "secs::<60>", deserialize_with = "duration")]
    pub retry_max: Duration,
    /// How often an unknown UPN is looked up again.
    #[serde(default = "secs::<600>", deserialize_with = "duration")]
    pub user_retry: Duration,
}

fn default_authority() -> String {
    "https://login.microsoftonline.com".to_owned()
}
fn default_graph_url() -> String {
    "https://graph.microsoft.com/v1.0".to_owned()
}
fn default_scope() -> String {
    "https://graph.microsoft.com/.default".to_owned()
}
fn default_budget() -> u32 {
    1350
}
fn default_concurrency() -> u32 {
    16
}
fn default_lcid() -> u32 {
    1033
}
fn yes() -> bool {
    true
}
fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}

pub use presence_transport::settings::{Finding, Severity, duration, parse_duration};

/// One app registration's credentials as written, with the keys to name in findings.
#[derive(Clone, Debug)]
struct CredentialKeys<'a> {
    what: String,
    client_id: &'a str,
    secret: Option<&'a Secret>,
    file: Option<&'a PathBuf>,
    env: Option<&'a String>,
    key_id: &'static str,
    key_secret: &'static str,
    key_file: &'static str,
    key_env: &'static str,
}

/// The most presence requests Graph accepts per 30 s per app and tenant.
pub const GRAPH_LIMIT: u32 = 1500;

impl GraphSettings {
    /// A minimal table (tenant, client id, one secret source), everything else default.
    pub fn new(tenant: &str, client_id: &str, secret: SecretSource) -> GraphSettings {
        let mut s: GraphSettings = serde_json::from_value(serde_json::json!({
            "tenant": tenant,
            "client-id": client_id,
        }))
        .unwrap_or_else(|_| unreachable!("the defaults deserialize"));
        match secret {
            SecretSource::Inline(v) => s.client_secret = Some(v),
            SecretSource::File(p) => s.client_secret_file = Some(p),
            SecretSource::Env(n) => s.client_secret_env = Some(n),
        }
        s
    }

    /// Resolves relative file paths (`client-secret-file` of every app, `ca`) against
    /// `dir`, the configuration file's folder.
    pub fn rebase(&mut self, dir: &Path) {
        for path in self.paths_mut() {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }

    /// Every file path of the table, for a caller that rebases them its own way.
    pub fn paths_mut(&mut self) -> Vec<&mut PathBuf> {
        let mut paths: Vec<&mut PathBuf> = Vec::new();
        if let Some(p) = self.client_secret_file.as_mut() {
            paths.push(p);
        }
        if let Some(p) = self.ca.as_mut() {
            paths.push(p);
        }
        for app in &mut self.apps {
            if let Some(p) = app.client_secret_file.as_mut() {
                paths.push(p);
            }
        }
        paths
    }

    fn credentials(&self) -> Vec<CredentialKeys<'_>> {
        let mut all = vec![CredentialKeys {
            what: "[teams]".to_owned(),
            client_id: &self.client_id,
            secret: self.client_secret.as_ref(),
            file: self.client_secret_file.as_ref(),
            env: self.client_secret_env.as_ref(),
            key_id: "teams.client-id",
            key_secret: "teams.client-secret",
            key_file: "teams.client-secret-file",
            key_env: "teams.client-secret-env",
        }];
        for (i, app) in self.apps.iter().enumerate() {
            all.push(CredentialKeys {
                what: format!("[[teams.apps]] #{}", i + 1),
                client_id: &app.client_id,
                secret: app.client_secret.as_ref(),
                file: app.client_secret_file.as_ref(),
                env: app.client_secret_env.as_ref(),
                key_id: "teams.apps.client-id",
                key_secret: "teams.apps.client-secret",
                key_file: "teams.apps.client-secret-file",
                key_env: "teams.apps.client-secret-env",
            });
        }
        all
    }

    /// The secret source of each app registration (the main one first), with the key to
    /// name in errors. Fails when an app has none or more than one.
    pub fn secret_sources(&self) -> Result<Vec<(String, SecretSource, &'static str)>, GraphError> {
        self.credentials()
            .into_iter()
            .map(|c| {
                let mut sources = Vec::new();
                if let Some(s) = c.secret {
                    sources.push((SecretSource::Inline(s.clone()), c.key_secret));
                }
                if let Some(p) = c.file {
                    sources.push((SecretSource::File(p.clone()), c.key_file));
                }
                if let Some(n) = c.env {
                    sources.push((SecretSource::Env(n.clone()), c.key_env));
                }
                if sources.len() != 1 {
                    return Err(GraphError::Setting {
                        key: c.key_secret,
                        message: secret_count_message(&c.what, sources.len()),
                    });
                }
                let (source, key) = sources.remove(0);
                Ok((c.client_id.trim().to_ascii_lowercase(), source, key))
            })
            .collect()
    }

    /// The push mapping: defaults, `[teams.classes]`, `[teams.states]`.
    pub fn mapping(&self) -> Result<Mapping, GraphError> {
        let lcid = self
            .status_message
            .then_some(Lcid::new(self.status_message_lcid));
        let mut mapping = Mapping::new(self.preferred_presence, lcid);
        for (key, class, value) in self.classes.entries() {
            if let Some(value) = value {
                let target = parse_target(value, self.preferred_presence)
                    .map_err(|message| GraphError::Setting { key, message })?;
                mapping.set_class(class, target);
            }
        }
        for (id, value) in &self.states {
            let id = AggregatedStateId::new(id).map_err(|e| GraphError::Setting {
                key: "teams.states",
                message: e.to_string(),
            })?;
            let target = parse_target(value, self.preferred_presence).map_err(|message| {
                GraphError::Setting {
                    key: "teams.states",
                    message: format!("state `{id}`: {message}"),
                }
            })?;
            mapping.set_state(id, target);
        }
        Ok(mapping)
    }

    /// The token URL of the configured authority and tenant.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.trim().trim_end_matches('/'),
            self.tenant.trim()
        )
    }

    /// The Graph base URL without a trailing `/`.
    pub fn graph_base(&self) -> String {
        self.graph_url.trim().trim_end_matches('/').to_owned()
    }

    /// Everything wrong with the table, checked here and now without the network: errors
    /// (the transport refuses to start) and warnings (a secret file not readable or an
    /// environment variable not set on this machine).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut error = |key: &'static str, message: String| {
            out.push(Finding {
                severity: Severity::Error,
                key,
                message,
            });
        };
        if let Err(message) = check_tenant(&self.tenant) {
            error("teams.tenant", message);
        }
        for (key, url) in [
            ("teams.authority", &self.authority),
            ("teams.graph-url", &self.graph_url),
        ] {
            if let Err(message) = check_url(url) {
                error(key, message);
            }
        }
        if self.scope.trim().is_empty() || self.scope.contains(char::is_whitespace) {
            error(
                "teams.scope",
                format!(
                    "`{}` is not a scope such as `https://graph.microsoft.com/.default`",
                    self.scope
                ),
            );
        }
        if !(1..=GRAPH_LIMIT).contains(&self.budget) {
            error(
                "teams.budget",
                format!(
                    "{} is out of range: Graph allows at most {GRAPH_LIMIT} presence requests per 30 s per app, so use 1..={GRAPH_LIMIT} (default 1350)",
                    self.budget
                ),
            );
        }
        if !(2..=256).contains(&self.max_concurrency) {
            error(
                "teams.max-concurrency",
                format!(
                    "{} is out of range: use 2..=256 (default 16)",
                    self.max_concurrency
                ),
            );
        }
        if self.request_timeout.is_zero() {
            error("teams.request-timeout", "must be more than 0s".to_owned());
        }
        if self.poll_interval < Duration::from_secs(1) {
            error(
                "teams.poll-interval",
                format!(
                    "{:?} is too short: at least 1s (default 5s)",
                    self.poll_interval
                ),
            );
        }
        if !(Duration::from_secs(300)..=Duration::from_secs(4 * 3600))
            .contains(&self.session_duration)
        {
            error(
                "teams.session-duration",
                format!(
                    "{:?} is out of range: Graph accepts an expirationDuration of 5m..=4h (default 1h)",
                    self.session_duration
                ),
            );
        }
        for (key_initial, key_max, initial, max) in [
            (
                "teams.reconnect-initial",
                "teams.reconnect-max",
                self.reconnect_initial,
                self.reconnect_max,
            ),
            (
                "teams.retry-initial",
                "teams.retry-max",
                self.retry_initial,
                self.retry_max,
            ),
        ] {
            if initial.is_zero() {
                error(key_initial, "must be more than 0s".to_owned());
            } else if initial > max {
                error(
                    key_max,
                    format!("{max:?} is shorter than `{key_initial}` ({initial:?})"),
                );
            }
        }
        if self.user_retry < Duration::from_secs(1) {
            error(
                "teams.user-retry",
                "must be at least 1s (default 10m)".to_owned(),
            );
        }
        for (key, class, value) in self.classes.entries() {
            let _ = class;
            if let Some(value) = value
                && let Err(message) = parse_target(value, self.preferred_presence)
            {
                error(key, message);
            }
        }
        for (id, value) in &self.states {
            if let Err(e) = AggregatedStateId::new(id) {
                error("teams.states", e.to_string());
            } else if let Err(message) = parse_target(value, self.preferred_presence) {
                error("teams.states", format!("state `{id}`: {message}"));
            }
        }
        let mut seen: Vec<String> = Vec::new();
        let mut warnings = Vec::new();
        for c in self.credentials() {
            match EntraId::new(c.client_id) {
                Err(_) => error(
                    c.key_id,
                    format!(
                        "{}: `{}` is not an application (client) id: expected a GUID such as 6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f",
                        c.what,
                        c.client_id.chars().take(64).collect::<String>()
                    ),
                ),
                Ok(id) => {
                    if seen.contains(&id.to_string()) {
                        error(
                            c.key_id,
                            format!("{}: the client id {id} is configured twice", c.what),
                        );
                    }
                    seen.push(id.to_string());
                }
            }
            let count = [c.secret.is_some(), c.file.is_some(), c.env.is_some()]
                .into_iter()
                .filter(|b| *b)
                .count();
            if count != 1 {
                error(c.key_secret, secret_count_message(&c.what, count));
                continue;
            }
            if let Some(secret) = c.secret
                && secret.expose().trim().is_empty()
            {
                error(
                    c.key_secret,
                    format!("{}: the client secret is empty", c.what),
                );
            }
            if let Some(path) = c.file
                && let Err(e) = std::fs::File::open(path)
            {
                warnings.push(Finding {
                    severity: Severity::Warning,
                    key: c.key_file,
                    message: format!(
                        "{}: the secret file `{}` cannot be read here: {e}",
                        c.what,
                        path.display()
                    ),
                });
            }
            if let Some(name) = c.env
                && std::env::var_os(name).is_none()
            {
                warnings.push(Finding {
                    severity: Severity::Warning,
                    key: c.key_env,
                    message: format!(
                        "{}: the environment variable `{name}` is not set here",
                        c.what
                    ),
                });
            }
        }
        if let Some(path) = &self.ca
            && let Err(e) = std::fs::File::open(path)
        {
            warnings.push(Finding {
                severity: Severity::Warning,
                key: "teams.ca",
                message: format!("the CA file `{}` cannot be read here: {e}", path.display()),
            });
        }
        out.extend(warnings);
        out
    }

    /// The first error among [`findings`](Self::findings), as a [`GraphError`].
    pub fn validate(&self) -> Result<(), GraphError> {
        match self
            .findings()
            .into_iter()
            .find(|f| f.severity == Severity::Error)
        {
            Some(f) => Err(GraphError::Setting {
                key: f.key,
                message: f.message,
            }),
            None => Ok(()),
        }
    }
}

fn secret_count_message(what: &str, count: usize) -> String {
    if count == 0 {
        format!(
            "{what}: no client secret: set exactly one of `client-secret`, `client-secret-file`, `client-secret-env`"
        )
    } else {
        format!(
            "{what}: {count} client secret keys: set exactly one of `client-secret`, `client-secret-file`, `client-secret-env`"
        )
    }
}

fn check_tenant(tenant: &str) -> Result<(), String> {
    let t = tenant.trim();
    if EntraId::new(t).is_ok() {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let labels: Vec<&str> = t.split('.').collect();
    if t.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l)) {
        return Ok(());
    }
    Err(format!(
        "`{}` is not a tenant: expected the tenant id (a GUID) or a domain such as contoso.onmicrosoft.com",
        t.chars().take(64).collect::<String>()
    ))
}

fn check_url(url: &str) -> Result<(), String> {
    let u = url.trim();
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| format!("`{u}` is not an http(s) URL"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || u.contains(char::is_whitespace) || u.contains(['?', '#']) {
        return Err(format!(
            "`{u}` is not a base URL: expected e.g. `https://graph.microsoft.com/v1.0`, without query or fragment"
        ));
    }
    if u.starts_with("http://") && !is_loopback_host(host) {
        return Err(format!(
            "`{u}` is plain HTTP: the client secret and the access tokens would cross the network unencrypted, to a server nobody verified: use https:// (http:// is accepted for a loopback address only, such as a local simulator)"
        ));
    }
    Ok(())
}

/// Whether a URL's authority (`host`, `host:port`, `[v6]:port`, with or without
/// `user@`) names this machine: `localhost` or a loopback address.
fn is_loopback_host(authority: &str) -> bool {
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f";

    fn parse(extra: &str) -> GraphSettings {
        toml::from_str(&format!(
            "tenant = \"contoso.onmicrosoft.com\"\nclient-id = \"{ID}\"\n{extra}"
        ))
        .unwrap()
    }

    fn errors(s: &GraphSettings) -> Vec<&'static str> {
        s.findings()
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.key)
            .collect()
    }

    #[test]
    fn defaults_and_a_clean_table() {
        let s = parse("client-secret = \"s3cr3t~value\"\n");
        assert_eq!(s.budget, 1350);
        assert_eq!(s.max_concurrency, 16);
        assert_eq!(s.poll_interval, Duration::from_secs(5));
        assert_eq!(s.session_duration, Duration::from_secs(3600));
        assert!(s.status_message && !s.preferred_presence);
        assert_eq!(s.status_message_lcid, 1033);
        assert_eq!(
            s.token_url(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(s.graph_base(), "https://graph.microsoft.com/v1.0");
        assert!(s.findings().is_empty(), "{:?}", s.findings());
        assert!(s.validate().is_ok());
        s.mapping().unwrap();
    }

    #[test]
    fn the_secret_never_shows() {
        let s = parse("client-secret = \"s3cr3t~value\"\n");
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("<redacted>"));
        let bad =
            parse("client-secret = \"s3cr3t~value\"\nclient-secret-env = \"X\"\nbudget = 0\n");
        for f in bad.findings() {
            assert!(!f.to_string().contains("s3cr3t"), "{f}");
        }
        let err = bad.validate().unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn findings_name_the_key() {
        let s: GraphSettings = toml::from_str(
            "tenant = \"common\"\nclient-id = \"not-a-guid\"\nbudget = 1501\nmax-concurrency = 1\n\
             poll-interval = \"500ms\"\nsession-duration = \"5h\"\n\
             [classes]\nbusy = \"Busy/Busy\"\n[states]\nINCALL = \"Focusing/Focusing\"\n",
        )
        .unwrap();
        let keys = errors(&s);
        for key in [
            "teams.tenant",
            "teams.client-id",
            "teams.client-secret",
            "teams.budget",
            "teams.max-concurrency",
            "teams.poll-interval",
            "teams.session-duration",
            "teams.classes.busy",
            "teams.states",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("teams.tenant"), "{err}");
        // Both secret keys: one error naming the secret keys.
        let both = parse("client-secret = \"a\"\nclient-secret-file = \"/x\"\n");
        assert_eq!(errors(&both), vec!["teams.client-secret"]);
        // With preferred presence on, a preferred pair is fine.
        let ok = parse(
            "client-secret = \"a\"\npreferred-presence = true\n[classes]\nbusy = \"Busy/Busy\"\n",
        );
        assert!(errors(&ok).is_empty());
        // Unknown keys are refused by serde.
        let err = toml::from_str::<GraphSettings>(&format!(
            "tenant = \"t.com\"\nclient-id = \"{ID}\"\nclient-secret = \"a\"\nbudgett = 3\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("budgett"), "{err}");
    }

    #[test]
    fn secret_files_and_variables_are_checked_here_as_warnings() {
        let s = parse(
            "client-secret-file = \"/nonexistent/teams.secret\"\n\
             [[apps]]\nclient-id = \"00000000-0000-0000-0000-000000000001\"\nclient-secret-env = \"PRESENCE_GRAPH_TEST_UNSET_VARIABLE\"\n",
        );
        let findings = s.findings();
        assert_eq!(errors(&s), Vec::<&str>::new());
        let warned: Vec<_> = findings.iter().map(|f| f.key).collect();
        assert_eq!(
            warned,
            vec!["teams.client-secret-file", "teams.apps.client-secret-env"]
        );
        let err = SecretSource::File("/nonexistent/teams.secret".into())
            .read("teams.client-secret-file")
            .unwrap_err();
        assert!(
            err.to_string().contains("teams.client-secret-file"),
            "{err}"
        );
        let dup = parse(&format!(
            "client-secret = \"a\"\n[[apps]]\nclient-id = \"{}\"\nclient-secret = \"b\"\n",
            ID.to_uppercase()
        ));
        assert_eq!(errors(&dup), vec!["teams.apps.client-id"]);
    }

    #[test]
    fn rebase_resolves_relative_paths() {
        let mut s = parse("client-secret-file = \"teams.secret\"\nca = \"/etc/ca.pem\"\n");
        s.rebase(Path::new("/etc/presence-bridge"));
        assert_eq!(
            s.client_secret_file.as_deref(),
            Some(Path::new("/etc/presence-bridge/teams.secret"))
        );
        assert_eq!(s.ca.as_deref(), Some(Path::new("/etc/ca.pem")));
    }
}
