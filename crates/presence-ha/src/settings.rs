//! The `[ha]` table of the bridge's configuration and its validation.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `endpoints` | required | etcd client URLs, `http://host:port` or `https://host:port` (every member of the cluster: requests move to the next one when one fails) |
//! | `node-id` | required | this bridge's id in the election, unique per bridge: 1 to 128 bytes, no white space (the leader's id is what the other nodes and `/v1/ha` show) |
//! | `election` | `presence-bridge` | the election's name: the etcd key prefix the bridges of one pair (or group) share |
//! | `lease-ttl` | `5s` | the lease's TTL, whole seconds, `2s..=300s`: a crashed leader is replaced within about this long |
//! | `request-timeout` | `1s` | how long one etcd request may take; at most (`lease-ttl` − 100 ms) / 4, so that a renewal can fail and be retried twice before the fencing deadline |
//! | `retry-initial`, `retry-max` | `500ms`, `5s` | back-off between attempts to get a lease while etcd is unreachable (doubling, ±20 %) |
//! | `[tls]` `ca` | the system's roots | the PEM bundle that signs the members' certificates (for `https://` endpoints; when set, only it is trusted) |
//! | `[tls]` `certificate`, `private-key` | none | a client certificate (PEM) and its key, for members started with `--client-cert-auth` |
//! | `[auth]` `username`, `password` or `password-env` | none | etcd's user and password, when its authentication is on |
//!
//! Durations are written `500ms`, `10s`, `5m` (or a number of seconds). The password is
//! never printed.
//!
//! With client certificates required (`--client-cert-auth`) **and** etcd's users enabled,
//! etcd's JSON gateway refuses a client certificate that has a Common Name (HTTP 400): issue
//! the bridges' certificates without one (the subject alternative names suffice; the etcd
//! user is `[ha.auth]`'s). The members' own certificates then need the `clientAuth` extended
//! key usage as well as `serverAuth`, because the gateway presents them to etcd's gRPC
//! server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use presence_model::random::Backoff;
use serde::Deserialize;

use crate::HaError;
use crate::core::{CLOCK_SLACK, CoreConfig, Credentials, NodeId};
pub use presence_transport::settings::{Finding, Secret, Severity, duration};

/// The shortest lease TTL: etcd's own minimum with its default election timeout (1 s) is
/// 1.5 s, which it rounds up.
pub const MIN_TTL: Duration = Duration::from_secs(2);
/// The longest lease TTL accepted.
pub const MAX_TTL: Duration = Duration::from_secs(300);

/// `[ha.tls]`: TLS towards `https://` endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsSettings {
    /// The PEM bundle that signs the members' certificates; default the system's roots.
    pub ca: Option<PathBuf>,
    /// A client certificate chain (PEM).
    pub certificate: Option<PathBuf>,
    /// Its private key (PEM).
    pub private_key: Option<PathBuf>,
}

/// `[ha.auth]`: etcd's user and password.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthSettings {
    /// The etcd user.
    pub username: String,
    /// The password itself (prefer `password-env`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// The `[ha]` table: see the [module documentation](self) for the keys.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HaSettings {
    /// etcd client URLs.
    pub endpoints: Vec<String>,
    /// This node's id.
    pub node_id: String,
    /// The election's name.
    #[serde(default = "default_election")]
    pub election: String,
    /// The lease TTL.
    #[serde(default = "secs::<5>", deserialize_with = "duration")]
    pub lease_ttl: Duration,
    /// One request's time limit.
    #[serde(default = "secs::<1>", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// First back-off delay.
    #[serde(default = "millis::<500>", deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// Longest back-off delay.
    #[serde(default = "secs::<5>", deserialize_with = "duration")]
    pub retry_max: Duration,
    /// `[ha.tls]`.
    #[serde(default)]
    pub tls: TlsSettings,
    /// `[ha.auth]`.
    #[serde(default)]
    pub auth: Option<AuthSettings>,
}

fn default_election() -> String {
    "presence-bridge".to_owned()
}
fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}
fn millis<const N: u64>() -> Duration {
    Duration::from_millis(N)
}

impl HaSettings {
    /// A table with these endpoints and node id, everything else default.
    pub fn new(endpoints: Vec<String>, node_id: &str) -> HaSettings {
        HaSettings {
            endpoints,
            node_id: node_id.to_owned(),
            election: default_election(),
            lease_ttl: secs::<5>(),
            request_timeout: secs::<1>(),
            retry_initial: millis::<500>(),
            retry_max: secs::<5>(),
            tls: TlsSettings::default(),
            auth: None,
        }
    }

    /// Resolves relative TLS paths against `dir`, the configuration file's folder.
    pub fn rebase(&mut self, dir: &Path) {
        for path in self.paths_mut() {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }

    /// Every file path of the table, for a caller that rebases them its own way.
    pub fn paths_mut(&mut self) -> Vec<&mut PathBuf> {
        [
            self.tls.ca.as_mut(),
            self.tls.certificate.as_mut(),
            self.tls.private_key.as_mut(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The endpoints as requests use them: trimmed, without a trailing `/`.
    pub fn endpoint_urls(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .map(|e| e.trim().trim_end_matches('/').to_owned())
            .collect()
    }

    /// Whether any endpoint is `https://`.
    pub fn uses_tls(&self) -> bool {
        self.endpoint_urls()
            .iter()
            .any(|e| e.starts_with("https://"))
    }

    /// The fencing margin: `request-timeout` + 100 ms.
    pub fn margin(&self) -> Duration {
        self.request_timeout + CLOCK_SLACK
    }

    /// Everything wrong with the table, checked here and now without the network: errors
    /// (the elector refuses to start) and warnings (a file not readable or a variable not
    /// set on this machine, plain HTTP to another host).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let mut error = |key: &'static str, message: String| out.push(Finding::error(key, message));
        let urls = self.endpoint_urls();
        if urls.is_empty() {
            error(
                "ha.endpoints",
                "no etcd endpoint: list the client URLs of the cluster's members, such as \
                 [\"https://etcd1:2379\", \"https://etcd2:2379\", \"https://etcd3:2379\"]"
                    .to_owned(),
            );
        }
        for (i, url) in urls.iter().enumerate() {
            match check_endpoint(url) {
                Err(message) => error("ha.endpoints", message),
                Ok(loopback) => {
                    if urls[..i].contains(url) {
                        error("ha.endpoints", format!("`{url}` is listed twice"));
                    }
                    if url.starts_with("http://") && !loopback {
                        if self.auth.is_some() {
                            error(
                                "ha.endpoints",
                                format!(
                                    "`{url}` is plain HTTP and [ha.auth] is set: the password \
                                     would cross the network unencrypted: use https://"
                                ),
                            );
                        } else {
                            warnings.push(Finding::warning(
                                "ha.endpoints",
                                format!(
                                    "`{url}` is plain HTTP: anyone on the path can read and \
                                     forge the election; prefer https:// with a client \
                                     certificate"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if let Err(e) = NodeId::new(self.node_id.trim()) {
            let message = match e {
                HaError::Setting { message, .. } => message,
                other => other.to_string(),
            };
            error("ha.node-id", message);
        }
        if let Err(message) = check_election(&self.election) {
            error("ha.election", message);
        }
        let ttl_ok = if self.lease_ttl.subsec_nanos() != 0 {
            error(
                "ha.lease-ttl",
                format!(
                    "{:?} is not a whole number of seconds: etcd's lease TTLs are seconds",
                    self.lease_ttl
                ),
            );
            false
        } else if !(MIN_TTL..=MAX_TTL).contains(&self.lease_ttl) {
            error(
                "ha.lease-ttl",
                format!(
                    "{:?} is out of range: use 2s..=300s (default 5s)",
                    self.lease_ttl
                ),
            );
            false
        } else {
            true
        };
        let most = self.lease_ttl.saturating_sub(CLOCK_SLACK) / 4;
        if self.request_timeout.is_zero() {
            error("ha.request-timeout", "must be more than 0s".to_owned());
        } else if ttl_ok && self.request_timeout > most {
            error(
                "ha.request-timeout",
                format!(
                    "{:?} is too long for a lease-ttl of {:?}: at most (lease-ttl − 100ms) / 4 \
                     = {most:?}, so that a failed renewal can be retried twice before the \
                     leader fences itself",
                    self.request_timeout, self.lease_ttl
                ),
            );
        }
        if self.retry_initial.is_zero() {
            error("ha.retry-initial", "must be more than 0s".to_owned());
        } else if self.retry_initial > self.retry_max {
            error(
                "ha.retry-max",
                format!(
                    "{:?} is shorter than `ha.retry-initial` ({:?})",
                    self.retry_max, self.retry_initial
                ),
            );
        }
        match (&self.tls.certificate, &self.tls.private_key) {
            (Some(_), None) => error(
                "ha.tls.private-key",
                "`certificate` is set without its `private-key`".to_owned(),
            ),
            (None, Some(_)) => error(
                "ha.tls.certificate",
                "`private-key` is set without its `certificate`".to_owned(),
            ),
            _ => {}
        }
        let tls_files = [
            ("ha.tls.ca", &self.tls.ca),
            ("ha.tls.certificate", &self.tls.certificate),
            ("ha.tls.private-key", &self.tls.private_key),
        ];
        for (key, path) in tls_files {
            let Some(path) = path else { continue };
            if !self.uses_tls() {
                warnings.push(Finding::warning(
                    key,
                    "no endpoint is https://: the TLS settings are not used".to_owned(),
                ));
            } else if let Err(e) = std::fs::File::open(path) {
                warnings.push(Finding::warning(
                    key,
                    format!("`{}` cannot be read here: {e}", path.display()),
                ));
            }
        }
        if let Some(auth) = &self.auth {
            if auth.username.trim().is_empty() {
                error("ha.auth.username", "is empty".to_owned());
            }
            match (&auth.password, &auth.password_env) {
                (Some(password), None) => {
                    if password.expose().is_empty() {
                        error("ha.auth.password", "is empty".to_owned());
                    }
                }
                (None, Some(name)) => {
                    if std::env::var_os(name).is_none() {
                        warnings.push(Finding::warning(
                            "ha.auth.password-env",
                            format!("the environment variable `{name}` is not set here"),
                        ));
                    }
                }
                _ => error(
                    "ha.auth.password",
                    "give exactly one of `password` and `password-env`".to_owned(),
                ),
            }
        }
        out.extend(warnings);
        out
    }

    /// The first error among [`findings`](Self::findings), as an [`HaError`].
    ///
    /// # Errors
    /// [`HaError::Setting`] naming the key.
    pub fn validate(&self) -> Result<(), HaError> {
        match self
            .findings()
            .into_iter()
            .find(|f| f.severity == Severity::Error)
        {
            Some(f) => Err(HaError::Setting {
                key: f.key,
                message: f.message,
            }),
            None => Ok(()),
        }
    }

    /// The core's configuration: validated, the password read now (from the table or its
    /// environment variable).
    ///
    /// # Errors
    /// The first error of [`findings`](Self::findings), or an unusable password variable.
    pub fn core_config(&self) -> Result<CoreConfig, HaError> {
        self.validate()?;
        let mut config = CoreConfig::new(
            NodeId::new(self.node_id.trim())?,
            self.election.trim(),
            self.endpoint_urls(),
        );
        config.lease_ttl = self.lease_ttl;
        config.request_timeout = self.request_timeout;
        config.retry = Backoff {
            initial: self.retry_initial,
            max: self.retry_max,
            jitter: 0.2,
        };
        if let Some(auth) = &self.auth {
            config.credentials = Some(Credentials {
                username: auth.username.trim().to_owned(),
                password: password(auth)?,
            });
        }
        Ok(config)
    }
}

fn password(auth: &AuthSettings) -> Result<Secret, HaError> {
    match (&auth.password, &auth.password_env) {
        (Some(secret), None) => Ok(secret.clone()),
        (None, Some(name)) => match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
            Ok(_) => Err(HaError::Setting {
                key: "ha.auth.password-env",
                message: format!("the environment variable `{name}` is empty"),
            }),
            Err(e) => Err(HaError::Setting {
                key: "ha.auth.password-env",
                message: format!("the environment variable `{name}` cannot be read: {e}"),
            }),
        },
        _ => Err(HaError::Setting {
            key: "ha.auth.password",
            message: "give exactly one of `password` and `password-env`".to_owned(),
        }),
    }
}

/// An endpoint is `http(s)://host[:port]` without path, query or user; `Ok(loopback)`.
fn check_endpoint(url: &str) -> Result<bool, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let bad = rest.is_empty()
        || rest.contains(['/', '?', '#', '@'])
        || rest.contains(|c: char| c.is_whitespace() || c.is_control());
    if bad {
        return Err(format!(
            "`{url}` is not an etcd client URL: expected `https://host:port`, without path, \
             query or user (e.g. `https://etcd1:2379`)"
        ));
    }
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split(':').next().unwrap_or(""),
    };
    if let Some((_, port)) = rest.rsplit_once(':')
        && !rest.ends_with(']')
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("`{url}` has no valid port"));
    }
    Ok(host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()))
}

fn check_election(name: &str) -> Result<(), String> {
    let n = name.trim();
    if n.is_empty() {
        return Err("is empty".to_owned());
    }
    if n.len() > 255 || n.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` is not an election name: at most 255 bytes, no white space",
            n.chars().take(64).collect::<String>()
        ));
    }
    if n.ends_with('/') {
        return Err(format!(
            "`{n}` ends with `/`: etcd's election adds the `/` itself"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> HaSettings {
        toml::from_str(text).unwrap()
    }

    fn errors(s: &HaSettings) -> Vec<&'static str> {
        s.findings()
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.key)
            .collect()
    }

    const MINIMAL: &str = "endpoints = [\"http://127.0.0.1:2379\"]\nnode-id = \"bridge-1\"\n";

    #[test]
    fn defaults_and_a_clean_table() {
        let s = parse(MINIMAL);
        assert_eq!(s.election, "presence-bridge");
        assert_eq!(s.lease_ttl, Duration::from_secs(5));
        assert_eq!(s.request_timeout, Duration::from_secs(1));
        assert_eq!(s.margin(), Duration::from_millis(1100));
        assert!(s.findings().is_empty(), "{:?}", s.findings());
        let config = s.core_config().unwrap();
        assert_eq!(config.node_id.as_str(), "bridge-1");
        assert_eq!(config.endpoints, vec!["http://127.0.0.1:2379"]);
        assert_eq!(
            config.renew_every(config.lease_ttl),
            Duration::from_millis(1300)
        );
        assert_eq!(
            s,
            HaSettings::new(vec!["http://127.0.0.1:2379".into()], "bridge-1")
        );
    }

    #[test]
    fn findings_name_the_key() {
        let s = parse(
            "endpoints = [\"etcd1:2379\", \"https://a:2379/v3\", \"https://b:2379\", \"https://b:2379/\"]\n\
             node-id = \"two words\"\nelection = \"e/\"\nlease-ttl = \"2500ms\"\n\
             retry-initial = \"10s\"\nretry-max = \"1s\"\n\
             [tls]\ncertificate = \"/x.pem\"\n[auth]\nusername = \"\"\n",
        );
        let keys = errors(&s);
        for key in [
            "ha.endpoints",
            "ha.node-id",
            "ha.election",
            "ha.lease-ttl",
            "ha.retry-max",
            "ha.tls.private-key",
            "ha.auth.username",
            "ha.auth.password",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        let texts: Vec<String> = s.findings().iter().map(ToString::to_string).collect();
        let all = texts.join("\n");
        assert!(
            all.contains("`etcd1:2379` is not an http:// or https:// URL"),
            "{all}"
        );
        assert!(
            all.contains("`https://a:2379/v3` is not an etcd client URL"),
            "{all}"
        );
        assert!(all.contains("`https://b:2379` is listed twice"), "{all}");
        assert!(all.contains("not a whole number of seconds"), "{all}");
        let err = s.validate().unwrap_err().to_string();
        assert!(err.starts_with("`ha.endpoints`"), "{err}");
        assert!(s.core_config().is_err());
        // Unknown keys are refused.
        let err =
            toml::from_str::<HaSettings>(&format!("{MINIMAL}lease-tll = \"2s\"\n")).unwrap_err();
        assert!(err.to_string().contains("lease-tll"), "{err}");
    }

    #[test]
    fn the_request_timeout_must_leave_room_for_two_retries() {
        let s = parse(&format!(
            "{MINIMAL}lease-ttl = \"2s\"\nrequest-timeout = \"500ms\"\n"
        ));
        assert_eq!(errors(&s), vec!["ha.request-timeout"]);
        let message = s.validate().unwrap_err().to_string();
        assert!(
            message.contains("at most (lease-ttl − 100ms) / 4 = 475ms"),
            "{message}"
        );
        let s = parse(&format!(
            "{MINIMAL}lease-ttl = \"2s\"\nrequest-timeout = \"475ms\"\n"
        ));
        assert!(errors(&s).is_empty());
        let s = parse(&format!("{MINIMAL}lease-ttl = 1\n"));
        assert_eq!(errors(&s), vec!["ha.lease-ttl"]);
        let s = parse(&format!("{MINIMAL}request-timeout = \"0s\"\n"));
        assert_eq!(errors(&s), vec!["ha.request-timeout"]);
    }

    #[test]
    fn plain_http_elsewhere_is_a_warning_and_with_a_password_an_error() {
        let s = parse("endpoints = [\"http://10.0.0.1:2379\"]\nnode-id = \"a\"\n");
        let f = s.findings();
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].severity, f[0].key),
            (Severity::Warning, "ha.endpoints")
        );
        let s = parse(
            "endpoints = [\"http://10.0.0.1:2379\", \"https://[::1]:2379\", \"http://localhost:2379\"]\n\
             node-id = \"a\"\n[auth]\nusername = \"bridge\"\npassword = \"s3cr3t\"\n",
        );
        assert_eq!(errors(&s), vec!["ha.endpoints"]);
        for f in s.findings() {
            assert!(!f.to_string().contains("s3cr3t"), "{f}");
        }
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn passwords_come_from_one_place() {
        let s = parse(&format!(
            "{MINIMAL}[auth]\nusername = \"bridge\"\npassword-env = \"PRESENCE_HA_TEST_UNSET_VARIABLE\"\n"
        ));
        let f = s.findings();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].severity, f[0].key),
            (Severity::Warning, "ha.auth.password-env")
        );
        let err = s.core_config().unwrap_err().to_string();
        assert!(err.contains("PRESENCE_HA_TEST_UNSET_VARIABLE"), "{err}");
        let s = parse(&format!(
            "{MINIMAL}[auth]\nusername = \"bridge\"\npassword = \"pw\"\n"
        ));
        let config = s.core_config().unwrap();
        let credentials = config.credentials.unwrap();
        assert_eq!(credentials.username, "bridge");
        assert_eq!(credentials.password.expose(), "pw");
    }

    #[test]
    fn tls_files_are_rebased_and_checked_here() {
        let mut s = parse(
            "endpoints = [\"https://127.0.0.1:2379\"]\nnode-id = \"a\"\n\
             [tls]\nca = \"ca.pem\"\ncertificate = \"/etc/pki/c.pem\"\nprivate-key = \"c.key\"\n",
        );
        s.rebase(Path::new("/nonexistent/presence"));
        assert_eq!(
            s.tls.ca.as_deref(),
            Some(Path::new("/nonexistent/presence/ca.pem"))
        );
        assert_eq!(
            s.tls.certificate.as_deref(),
            Some(Path::new("/etc/pki/c.pem"))
        );
        let warned: Vec<_> = s
            .findings()
            .into_iter()
            .map(|f| (f.severity, f.key))
            .collect();
        assert_eq!(
            warned,
            vec![
                (Severity::Warning, "ha.tls.ca"),
                (Severity::Warning, "ha.tls.certificate"),
                (Severity::Warning, "ha.tls.private-key")
            ]
        );
        let unused = parse(&format!("{MINIMAL}[tls]\nca = \"/etc/ca.pem\"\n"));
        assert!(unused.findings()[0].message.contains("not used"));
    }
}
