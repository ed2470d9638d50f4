//! The `[simple]` table of the bridge's configuration, and the endpoint's settings.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `server` | — | the presence server (or outbound proxy), `host:port` |
//! | `transport` | `tcp` | `udp`, `tcp` or `tls` |
//! | `domain` | the server's host | the SIP domain, the target of the `OPTIONS` probe |
//! | `application-uri` | `sip:presence-bridge@DOMAIN` | who subscribes (the watcher's `From`) |
//! | `publish-expires` | `600s` | `Expires` of each publication, refreshed before it runs out |
//! | `subscribe-expires` | `600s` | `Expires` of each subscription, refreshed before it runs out |
//! | `request-timeout` | `10s` | a request without a final answer by then failed (UDP: retransmitted meanwhile) |
//! | `keepalive` | `30s` | an `OPTIONS` probe this often; no answer within `request-timeout` resets the connection |
//! | `max-in-flight` | `64` | publications on the wire at once (the credit the transport grants) |
//! | `max-subscribes-in-flight` | `64` | subscription requests on the wire at once |
//! | `tuple-id` | `presence-bridge` | the PIDF tuple id (the person id is it + `-p`; keep it distinct from what phones publish) |
//! | `connect-timeout` | `5s` | TCP/TLS connection set-up |
//! | `reconnect-initial`, `reconnect-max` | `1s`, `30s` | back-off between connection attempts |
//! | `retry-initial`, `retry-max` | `200ms`, `30s` | back-off before a refused subscription is tried again |
//! | `[auth]` `username`, `password` or `password-env`, `realm` | none | digest credentials of the application, for servers that challenge with 401/407 |
//! | `[tls]` `ca`, `server-name`, `certificate`, `private-key` | system roots, the server's host | TLS: the CA bundle that signs the server's certificate, the name to verify, an optional client certificate |
//! | `[classes]`, `[states]` | the default table | the PIDF mapping overrides: see [`crate::mapping`] |

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use presence_model::SipUri;
use serde::Deserialize;

use crate::SimpleError;
use crate::mapping::{Mapping, Override};
pub use presence_transport::settings::{Finding, Secret, Severity, duration};

/// How the bridge reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP: one socket; requests are retransmitted (RFC 3261 timers E and F).
    Udp,
    /// TCP: one connection, messages framed by `Content-Length`.
    Tcp,
    /// TLS over TCP (rustls with ring), the server's certificate verified.
    Tls,
}

impl Transport {
    /// The transport token of a Via header.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `transport=` parameter of a Contact URI (`None` for UDP, the default).
    pub fn uri_param(self) -> Option<&'static str> {
        match self {
            Transport::Udp => None,
            Transport::Tcp => Some("tcp"),
            Transport::Tls => Some("tls"),
        }
    }

    /// Whether the transport is a reliable stream (no retransmissions).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// `[simple.auth]`: the application's digest credentials.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthSettings {
    /// The user name of the digest credentials.
    pub username: String,
    /// The password itself (prefer `password-env`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Answer only challenges of this realm (default: any).
    #[serde(default)]
    pub realm: Option<String>,
}

/// `[simple.tls]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsSettings {
    /// CA bundle (PEM) that signs the server's certificate; default the system's roots.
    pub ca: Option<PathBuf>,
    /// The name to verify; default the server's host.
    pub server_name: Option<String>,
    /// A client certificate chain (PEM), for servers that ask for one.
    pub certificate: Option<PathBuf>,
    /// Its private key (PEM).
    pub private_key: Option<PathBuf>,
}

/// The `[simple]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SimpleSettings {
    /// The presence server, `host:port`.
    pub server: String,
    /// `udp`, `tcp` (default) or `tls`.
    #[serde(default = "default_transport")]
    pub transport: Transport,
    /// The SIP domain; default the server's host.
    #[serde(default)]
    pub domain: Option<String>,
    /// The watcher's identity; default `sip:presence-bridge@DOMAIN`.
    #[serde(default)]
    pub application_uri: Option<String>,
    /// `Expires` asked for each publication.
    #[serde(default = "secs::<600>", deserialize_with = "duration")]
    pub publish_expires: Duration,
    /// `Expires` asked for each subscription.
    #[serde(default = "secs::<600>", deserialize_with = "duration")]
    pub subscribe_expires: Duration,
    /// A request without a final answer by then has failed.
    #[serde(default = "secs::<10>", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// How often the server is probed with `OPTIONS`.
    #[serde(default = "secs::<30>", deserialize_with = "duration")]
    pub keepalive: Duration,
    /// Publications on the wire at once.
    #[serde(default = "in_flight")]
    pub max_in_flight: usize,
    /// Subscription requests on the wire at once.
    #[serde(default = "in_flight")]
    pub max_subscribes_in_flight: usize,
    /// The PIDF tuple id; the person id is it followed by `-p`.
    #[serde(default = "tuple_id")]
    pub tuple_id: String,
    /// TCP/TLS connection set-up time limit.
    #[serde(default = "secs::<5>", deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// First back-off between connection attempts.
    #[serde(default = "secs::<1>", deserialize_with = "duration")]
    pub reconnect_initial: Duration,
    /// Longest back-off between connection attempts.
    #[serde(default = "secs::<30>", deserialize_with = "duration")]
    pub reconnect_max: Duration,
    /// First back-off before a refused subscription is tried again.
    #[serde(default = "fifth", deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// Longest back-off before a refused subscription is tried again.
    #[serde(default = "secs::<30>", deserialize_with = "duration")]
    pub retry_max: Duration,
    /// Digest credentials.
    #[serde(default)]
    pub auth: Option<AuthSettings>,
    /// TLS settings (with `transport = "tls"`).
    #[serde(default)]
    pub tls: TlsSettings,
    /// Mapping overrides by SfB class name.
    #[serde(default)]
    pub classes: BTreeMap<String, Override>,
    /// Mapping overrides by aggregated state ID.
    #[serde(default)]
    pub states: BTreeMap<String, Override>,
}

fn default_transport() -> Transport {
    Transport::Tcp
}
fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}
fn fifth() -> Duration {
    Duration::from_millis(200)
}
fn in_flight() -> usize {
    64
}
fn tuple_id() -> String {
    "presence-bridge".to_owned()
}

/// What the sans-IO [`Endpoint`](crate::Endpoint) needs, derived from [`SimpleSettings`].
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// UDP, TCP or TLS (for Via, Contact and retransmissions).
    pub transport: Transport,
    /// `host:port` written in Via and Contact (the socket's local address).
    pub local_host: String,
    /// The SIP domain (target of the `OPTIONS` probe).
    pub domain: String,
    /// The watcher's identity.
    pub application_uri: String,
    /// `Expires` asked for each publication.
    pub publish_expires: Duration,
    /// `Expires` asked for each subscription.
    pub subscribe_expires: Duration,
    /// Final-answer deadline of a request.
    pub request_timeout: Duration,
    /// `OPTIONS` probe interval.
    pub keepalive: Duration,
    /// Publications on the wire at once.
    pub max_in_flight: usize,
    /// Subscription requests on the wire at once.
    pub max_subscribes_in_flight: usize,
    /// PIDF tuple id prefix.
    pub tuple_id: String,
    /// Subscription retry back-off.
    pub retry_initial: Duration,
    /// Longest subscription retry back-off.
    pub retry_max: Duration,
    /// Digest credentials, when configured.
    pub credentials: Option<crate::digest::Credentials>,
    /// Only answer challenges of this realm.
    pub realm: Option<String>,
    /// The PIDF mapping.
    pub mapping: Mapping,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl EndpointConfig {
    /// Settings for tests and tools: the defaults of [`SimpleSettings`] for `domain`, with
    /// no credentials.
    pub fn new(transport: Transport, local_host: &str, domain: &str) -> EndpointConfig {
        EndpointConfig {
            transport,
            local_host: local_host.to_owned(),
            domain: domain.to_owned(),
            application_uri: format!("sip:presence-bridge@{domain}"),
            publish_expires: Duration::from_secs(600),
            subscribe_expires: Duration::from_secs(600),
            request_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(30),
            max_in_flight: 64,
            max_subscribes_in_flight: 64,
            tuple_id: tuple_id(),
            retry_initial: fifth(),
            retry_max: Duration::from_secs(30),
            credentials: None,
            realm: None,
            mapping: Mapping::default(),
            user_agent: concat!("presence-bridge/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl SimpleSettings {
    /// The server's host (for the default domain and TLS name).
    pub fn server_host(&self) -> &str {
        let s = self.server.as_str();
        if let Some(rest) = s.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        s.rsplit_once(':').map_or(s, |(host, _)| host)
    }

    /// The SIP domain in force.
    pub fn domain(&self) -> String {
        self.domain
            .clone()
            .unwrap_or_else(|| self.server_host().to_owned())
    }

    /// The watcher's identity in force.
    pub fn application_uri(&self) -> String {
        self.application_uri
            .clone()
            .unwrap_or_else(|| format!("sip:presence-bridge@{}", self.domain()))
    }

    /// The mapping with this table's overrides.
    pub fn mapping(&self) -> Result<Mapping, SimpleError> {
        Mapping::new(&self.classes, &self.states)
    }

    /// Makes relative TLS paths relative to `base` (the configuration file's directory).
    pub fn rebase(&mut self, base: &std::path::Path) {
        for path in [
            &mut self.tls.ca,
            &mut self.tls.certificate,
            &mut self.tls.private_key,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// The password, read now (from the table or its environment variable).
    fn password(&self, auth: &AuthSettings) -> Result<Secret, SimpleError> {
        match (&auth.password, &auth.password_env) {
            (Some(secret), None) => Ok(secret.clone()),
            (None, Some(name)) => match std::env::var(name) {
                Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
                Ok(_) => Err(SimpleError::Setting {
                    key: "simple.auth.password-env",
                    message: format!("the environment variable `{name}` is empty"),
                }),
                Err(e) => Err(SimpleError::Setting {
                    key: "simple.auth.password-env",
                    message: format!("the environment variable `{name}` cannot be read: {e}"),
                }),
            },
            _ => Err(SimpleError::Setting {
                key: "simple.auth.password",
                message: "give exactly one of `password` and `password-env`".to_owned(),
            }),
        }
    }

    /// The endpoint's settings, with `local_host` for Via and Contact. Fails with the first
    /// error of [`findings`](Self::findings), or an unreadable password.
    pub fn endpoint_config(&self, local_host: &str) -> Result<EndpointConfig, SimpleError> {
        if let Some(f) = self
            .findings()
            .into_iter()
            .find(|f| f.severity == Severity::Error)
        {
            return Err(SimpleError::Setting {
                key: f.key,
                message: f.message,
            });
        }
        let domain = self.domain();
        let mut config = EndpointConfig::new(self.transport, local_host, &domain);
        config.application_uri = self.application_uri();
        config.publish_expires = self.publish_expires;
        config.subscribe_expires = self.subscribe_expires;
        config.request_timeout = self.request_timeout;
        config.keepalive = self.keepalive;
        config.max_in_flight = self.max_in_flight;
        config.max_subscribes_in_flight = self.max_subscribes_in_flight;
        config.tuple_id = self.tuple_id.clone();
        config.retry_initial = self.retry_initial;
        config.retry_max = self.retry_max;
        config.mapping = self.mapping()?;
        if let Some(auth) = &self.auth {
            let password = self.password(auth)?;
            config.credentials = Some(crate::digest::Credentials::new(
                auth.username.clone(),
                password.expose().to_owned(),
            ));
            config.realm = auth.realm.clone();
        }
        Ok(config)
    }

    /// What is wrong or doubtful in the table (offline: nothing is contacted; the password's
    /// environment variable and TLS files are looked at).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let host = self.server_host();
        let port_ok = self
            .server
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok_and(|p| p != 0));
        if host.is_empty() || !port_ok {
            out.push(Finding::error(
                "simple.server",
                format!(
                    "`{}` is not `host:port` (for example `sip.example.com:5060`)",
                    self.server
                ),
            ));
        }
        let app = self.application_uri();
        if app.parse::<SipUri>().is_err() {
            out.push(Finding::error(
                "simple.application-uri",
                format!("`{app}` is not a SIP URI such as `sip:presence-bridge@example.com`"),
            ));
        }
        let positive = [
            ("simple.publish-expires", self.publish_expires),
            ("simple.subscribe-expires", self.subscribe_expires),
            ("simple.request-timeout", self.request_timeout),
            ("simple.keepalive", self.keepalive),
            ("simple.connect-timeout", self.connect_timeout),
            ("simple.reconnect-initial", self.reconnect_initial),
            ("simple.retry-initial", self.retry_initial),
        ];
        for (key, value) in positive {
            if value.is_zero() {
                out.push(Finding::error(key, "must be more than 0"));
            }
        }
        for (key, value) in [
            ("simple.publish-expires", self.publish_expires),
            ("simple.subscribe-expires", self.subscribe_expires),
        ] {
            if value < Duration::from_secs(60) && !value.is_zero() {
                out.push(Finding::warning(
                    key,
                    format!(
                        "{value:?} is short: every refresh notifies every watcher (servers often ask for at least 60 s)"
                    ),
                ));
            }
        }
        if self.max_in_flight == 0 {
            out.push(Finding::error("simple.max-in-flight", "must be at least 1"));
        }
        if self.max_subscribes_in_flight == 0 {
            out.push(Finding::error(
                "simple.max-subscribes-in-flight",
                "must be at least 1",
            ));
        }
        if self.tuple_id.is_empty()
            || !self
                .tuple_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            out.push(Finding::error(
                "simple.tuple-id",
                "must be letters, digits, `-`, `_` or `.` (an XML id)",
            ));
        }
        if self.tuple_id.starts_with(|c: char| c.is_ascii_digit()) {
            out.push(Finding::error(
                "simple.tuple-id",
                "must not start with a digit (an XML id)",
            ));
        }
        if let Err(e) = self.mapping() {
            let table = match &e {
                SimpleError::Mapping { table, .. } => table,
                _ => "simple.classes",
            };
            out.push(Finding::error(table, e.to_string()));
        }
        if let Some(auth) = &self.auth {
            if auth.username.trim().is_empty() {
                out.push(Finding::error("simple.auth.username", "is empty"));
            }
            if let Err(SimpleError::Setting { key, message }) = self.password(auth) {
                let severity_error = auth.password.is_some() == auth.password_env.is_some();
                out.push(if severity_error {
                    Finding::error(key, message)
                } else {
                    Finding::warning(
                        key,
                        format!("{message} here; the bridge refuses to start without it"),
                    )
                });
            }
        }
        if self.transport == Transport::Tls {
            let tls = &self.tls;
            if tls.certificate.is_some() != tls.private_key.is_some() {
                out.push(Finding::error(
                    "simple.tls.certificate",
                    "`certificate` and `private-key` go together",
                ));
            }
            for (key, path) in [
                ("simple.tls.ca", &tls.ca),
                ("simple.tls.certificate", &tls.certificate),
                ("simple.tls.private-key", &tls.private_key),
            ] {
                let Some(path) = path else { continue };
                if let Err(e) = std::fs::File::open(path) {
                    out.push(Finding::warning(
                        key,
                        format!(
                            "cannot read `{}` here: {e}; the bridge refuses to start without it",
                            path.display()
                        ),
                    ));
                }
            }
        } else if self.tls != TlsSettings::default() {
            out.push(Finding::warning(
                "simple.tls",
                "[simple.tls] is ignored unless transport = \"tls\"",
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> SimpleSettings {
        toml::from_str(&format!("server = \"127.0.0.1:5060\"\n{extra}")).unwrap()
    }

    #[test]
    fn defaults_are_sane_and_complete() {
        let s = parse("");
        assert!(s.findings().is_empty(), "{:?}", s.findings());
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!(s.domain(), "127.0.0.1");
        assert_eq!(s.application_uri(), "sip:presence-bridge@127.0.0.1");
        let c = s.endpoint_config("127.0.0.1:40000").unwrap();
        assert_eq!(c.publish_expires, Duration::from_secs(600));
        assert!(c.credentials.is_none());
    }

    #[test]
    fn errors_name_their_keys() {
        let s: SimpleSettings = toml::from_str(
            "server = \"nohost\"\nmax-in-flight = 0\ntuple-id = \"1 bad\"\npublish-expires = \"0s\"\n",
        )
        .unwrap();
        let keys: Vec<_> = s
            .findings()
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.key)
            .collect();
        assert_eq!(
            keys,
            [
                "simple.server",
                "simple.publish-expires",
                "simple.max-in-flight",
                "simple.tuple-id",
                "simple.tuple-id"
            ]
        );
        let err = s.endpoint_config("x").unwrap_err().to_string();
        assert!(err.starts_with("`simple.server`"), "{err}");
        let unknown = toml::from_str::<SimpleSettings>("server = \"a:1\"\nservr = 1\n");
        assert!(unknown.unwrap_err().to_string().contains("servr"));
        // A mapping error is reported under the table it is in.
        let classes = parse("[classes]\nBusi = \"open; busy\"\n");
        assert_eq!(classes.findings()[0].key, "simple.classes");
        let states = parse("[states]\nINCALL = \"open; dancing\"\n");
        let f = &states.findings()[0];
        assert_eq!(f.key, "simple.states", "{}", f.message);
    }

    #[test]
    fn passwords_come_from_one_place_and_never_print() {
        let s = parse("[auth]\nusername = \"bridge\"\npassword = \"hunter2\"\n");
        assert!(s.findings().is_empty());
        assert!(!format!("{s:?}").contains("hunter2"));
        let c = s.endpoint_config("h:1").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let both = parse("[auth]\nusername = \"b\"\npassword = \"x\"\npassword-env = \"Y\"\n");
        assert_eq!(both.findings()[0].key, "simple.auth.password");
        let missing =
            parse("[auth]\nusername = \"b\"\npassword-env = \"PRESENCE_SIMPLE_NO_SUCH_VAR\"\n");
        let f = &missing.findings()[0];
        assert_eq!(
            (f.key, f.severity),
            ("simple.auth.password-env", Severity::Warning)
        );
        assert!(missing.endpoint_config("h:1").is_err());
    }

    #[test]
    fn tls_material_is_checked_only_for_tls() {
        let s = parse("transport = \"tls\"\n[tls]\ncertificate = \"/nonexistent/c.pem\"\n");
        let keys: Vec<_> = s.findings().into_iter().map(|f| f.key).collect();
        assert_eq!(keys, ["simple.tls.certificate", "simple.tls.certificate"]);
        let ignored = parse("[tls]\nca = \"/x\"\n");
        assert_eq!(ignored.findings()[0].key, "simple.tls");
    }
}
