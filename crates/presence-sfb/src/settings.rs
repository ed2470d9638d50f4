//! The `[sfb]` section of the bridge's configuration, and the endpoint's settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use presence_model::SipUri;
use serde::{Deserialize, Deserializer};

use crate::SfbError;
pub use presence_mspres::ExpireType;

/// TCP (labs: `New-CsTrustedApplication ... -EnableTcp`) or TLS (production, mutual TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TLS with a client certificate.
    Tls,
}

impl Transport {
    /// The transport token of a Via header: `TCP` or `TLS`.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// What a publication looks like: state type, instance, containers, expiry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PublicationSettings {
    /// `xsi:type` of the published state: `userState` (default) or `machineState`.
    pub state_type: String,
    /// The category instance: 536870912 (0x20000000, the user's manual state) by default;
    /// 603979776 (0x24000000) is a time-bounded Busy/DND.
    pub instance: u32,
    /// The containers to publish into, in order: `[2, 3]` by default (the aggregation
    /// inputs).
    pub containers: Vec<u32>,
    /// `static` (default), `user`, `endpoint` or `time`.
    #[serde(deserialize_with = "expire_type")]
    pub expire_type: ExpireType,
    /// `manual="true"` on the state (default true).
    pub manual: bool,
}

impl Default for PublicationSettings {
    fn default() -> Self {
        PublicationSettings {
            state_type: "userState".to_owned(),
            instance: 0x2000_0000,
            containers: vec![2, 3],
            expire_type: ExpireType::Static,
            manual: true,
        }
    }
}

/// Batched subscriptions.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SubscriptionSettings {
    /// Users per batched SUBSCRIBE (default 100).
    pub batch_size: usize,
    /// The `Expires` asked for (default 3600 s); refreshed at 80 % of what the pool grants.
    #[serde(deserialize_with = "duration")]
    pub expires: Duration,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        SubscriptionSettings {
            batch_size: 100,
            expires: Duration::from_secs(3600),
        }
    }
}

/// Everything the sans-IO endpoint needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The trusted application's own address (From/To of SUBSCRIBE).
    pub application_uri: SipUri,
    /// The Contact URI: the application's GRUU when provisioned.
    pub contact: String,
    /// The `host[:port]` written in Via.
    pub local_host: String,
    /// TCP or TLS (the Via token).
    pub transport: Transport,
    /// Add `P-Asserted-Identity: <sip:user>` to requests made for a user.
    pub p_asserted_identity: bool,
    /// The shape of publications.
    pub publication: PublicationSettings,
    /// The shape of subscriptions.
    pub subscription: SubscriptionSettings,
    /// How long a request may wait for its final response.
    pub request_timeout: Duration,
    /// How often to send a CRLF keep-alive (`None`: never).
    pub keepalive: Option<Duration>,
    /// How long to wait for the pool to answer a keep-alive before resetting.
    pub keepalive_timeout: Duration,
    /// 409 WrongDelta retries in a row before a publication is given up.
    pub max_conflict_retries: u32,
    /// Retries of a publication after timeouts, 408 and 5xx before it is given up.
    pub max_retries: u32,
    /// First delay between such retries (doubled each time, ±20 % jitter).
    pub retry_initial: Duration,
    /// Longest delay between retries.
    pub retry_max: Duration,
    /// Publications in flight at once.
    pub max_in_flight: usize,
    /// The User-Agent header.
    pub user_agent: String,
}

impl EndpointConfig {
    /// Defaults for an application URI (contact = the URI, local host `localhost`).
    pub fn new(application_uri: SipUri, transport: Transport) -> Self {
        EndpointConfig {
            contact: application_uri.to_string(),
            application_uri,
            local_host: "localhost".to_owned(),
            transport,
            p_asserted_identity: false,
            publication: PublicationSettings::default(),
            subscription: SubscriptionSettings::default(),
            request_timeout: Duration::from_secs(10),
            keepalive: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(10),
            max_conflict_retries: 3,
            max_retries: 5,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(10),
            max_in_flight: 256,
            user_agent: concat!("presence-bridge/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The `[sfb]` table of the bridge's configuration.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `pool` | required | the Front End pool, `host:port` (5061 for TLS) |
/// | `transport` | `tls` | `tls` (mutual TLS) or `tcp` (labs, `-EnableTcp`) |
/// | `application-uri` | required | the trusted application's SIP URI |
/// | `gruu` | the application URI | the Contact: the application's GRUU |
/// | `local-host` | the socket's local address | `host[:port]` written in Via |
/// | `p-asserted-identity` | `false` | add P-Asserted-Identity with the user's URI |
/// | `tls.certificate` | required for tls | the client certificate chain (PEM) |
/// | `tls.private-key` | required for tls | its private key (PEM) |
/// | `tls.ca` | required for tls | CA certificates that sign the pool's certificate (PEM) |
/// | `tls.server-name` | the pool's host | the name the pool's certificate must carry |
/// | `publication.*` | see [`PublicationSettings`] | state type, instance, containers, expiry |
/// | `subscription.batch-size` | 100 | users per SUBSCRIBE |
/// | `subscription.expires` | `3600s` | subscription lifetime asked for |
/// | `request-timeout` | `10s` | wait for a final response |
/// | `keepalive` | `30s` | CRLF keep-alive interval (`0s`: off) |
/// | `keepalive-timeout` | `10s` | reset the connection when a keep-alive is not answered |
/// | `max-conflict-retries` | 3 | 409 WrongDelta retries in a row |
/// | `max-retries` | 5 | retries after timeouts, 408, 5xx |
/// | `retry-initial` / `retry-max` | `500ms` / `10s` | back-off between those retries |
/// | `max-in-flight` | 256 | publications outstanding at once |
/// | `reconnect-initial` / `reconnect-max` | `500ms` / `30s` | back-off between connection attempts (±20 % jitter) |
/// | `connect-timeout` | `10s` | TCP connect + TLS handshake |
///
/// Durations are written `500ms`, `10s`, `5m`, `1h` (or a number of seconds).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SfbSettings {
    /// `host:port` of the Front End pool.
    pub pool: String,
    /// `tls` or `tcp`.
    #[serde(default = "default_transport")]
    pub transport: Transport,
    /// The trusted application's SIP URI.
    pub application_uri: String,
    /// The application's GRUU, used as Contact.
    #[serde(default)]
    pub gruu: Option<String>,
    /// `host[:port]` written in Via.
    #[serde(default)]
    pub local_host: Option<String>,
    /// Add P-Asserted-Identity.
    #[serde(default)]
    pub p_asserted_identity: bool,
    /// TLS files and name.
    #[serde(default)]
    pub tls: TlsSettings,
    /// Publication shape.
    #[serde(default)]
    pub publication: PublicationSettings,
    /// Subscription shape.
    #[serde(default)]
    pub subscription: SubscriptionSettings,
    /// Final-response timeout.
    #[serde(default = "secs::<10>", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Keep-alive interval; `0s` turns keep-alives off.
    #[serde(default = "secs::<30>", deserialize_with = "duration")]
    pub keepalive: Duration,
    /// Keep-alive answer timeout.
    #[serde(default = "secs::<10>", deserialize_with = "duration")]
    pub keepalive_timeout: Duration,
    /// 409 retries in a row.
    #[serde(default = "three")]
    pub max_conflict_retries: u32,
    /// Transient-failure retries.
    #[serde(default = "five")]
    pub max_retries: u32,
    /// First retry delay.
    #[serde(default = "half_second", deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// Longest retry delay.
    #[serde(default = "secs::<10>", deserialize_with = "duration")]
    pub retry_max: Duration,
    /// Publications outstanding at once.
    #[serde(default = "in_flight")]
    pub max_in_flight: usize,
    /// First reconnect delay.
    #[serde(default = "half_second", deserialize_with = "duration")]
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    #[serde(default = "secs::<30>", deserialize_with = "duration")]
    pub reconnect_max: Duration,
    /// Connect + handshake timeout.
    #[serde(default = "secs::<10>", deserialize_with = "duration")]
    pub connect_timeout: Duration,
}

/// `[sfb.tls]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsSettings {
    /// Client certificate chain, PEM.
    pub certificate: Option<PathBuf>,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub private_key: Option<PathBuf>,
    /// CA bundle that signs the pool's certificate, PEM.
    pub ca: Option<PathBuf>,
    /// The name to verify; default the pool's host.
    pub server_name: Option<String>,
}

fn default_transport() -> Transport {
    Transport::Tls
}
fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}
fn half_second() -> Duration {
    Duration::from_millis(500)
}
fn three() -> u32 {
    3
}
fn five() -> u32 {
    5
}
fn in_flight() -> usize {
    256
}

impl SfbSettings {
    /// The pool's host (without the port).
    pub fn pool_host(&self) -> &str {
        match self.pool.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                host.trim_start_matches('[').trim_end_matches(']')
            }
            _ => &self.pool,
        }
    }

    /// The endpoint settings; `local_host` is the socket's local address when not set.
    pub fn endpoint_config(&self, socket_local: &str) -> Result<EndpointConfig, SfbError> {
        let application_uri =
            SipUri::new(&self.application_uri).map_err(|source| SfbError::Setting {
                key: "application-uri",
                message: source.to_string(),
            })?;
        if self.publication.containers.is_empty() {
            return Err(SfbError::Setting {
                key: "publication.containers",
                message: "at least one container is needed (the default is [2, 3])".to_owned(),
            });
        }
        if self.subscription.batch_size == 0 {
            return Err(SfbError::Setting {
                key: "subscription.batch-size",
                message: "must be at least 1".to_owned(),
            });
        }
        let mut config = EndpointConfig::new(application_uri, self.transport);
        config.contact = self
            .gruu
            .clone()
            .unwrap_or_else(|| config.application_uri.to_string());
        config.local_host = self
            .local_host
            .clone()
            .unwrap_or_else(|| socket_local.to_owned());
        config.p_asserted_identity = self.p_asserted_identity;
        config.publication = self.publication.clone();
        config.subscription = self.subscription.clone();
        config.request_timeout = self.request_timeout;
        config.keepalive = (!self.keepalive.is_zero()).then_some(self.keepalive);
        config.keepalive_timeout = self.keepalive_timeout;
        config.max_conflict_retries = self.max_conflict_retries;
        config.max_retries = self.max_retries;
        config.retry_initial = self.retry_initial;
        config.retry_max = self.retry_max;
        config.max_in_flight = self.max_in_flight.max(1);
        Ok(config)
    }
}

/// Parses `500ms`, `10s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration: expected e.g. `500ms`, `10s`, `5m`, `1h`")
    })?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        other => Err(format!(
            "`{text}` has an unknown unit `{other}`: expected ms, s, m or h"
        )),
    }
}

/// Serde helper: an expire type by name.
fn expire_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ExpireType, D::Error> {
    let name = String::deserialize(deserializer)?;
    ExpireType::from_name(&name).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{name}` is not an expire type: expected static, user, endpoint or time"
        ))
    })
}

/// Serde helper: a duration as text (`10s`) or a number of seconds.
pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as `500ms`, `10s`, `5m` or a number of seconds")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom("a duration cannot be negative"))
        }
    }
    deserializer.deserialize_any(Visitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("x").unwrap_err().contains("`x`"));
        assert!(parse_duration("5d").unwrap_err().contains("`d`"));
    }

    #[test]
    fn minimal_section_and_defaults() {
        let s: SfbSettings = toml::from_str(
            "pool = \"pool.contoso.com:5061\"\napplication-uri = \"sip:bridge@contoso.com\"\n[publication]\ncontainers = [2]\n",
        )
        .unwrap();
        assert_eq!(s.transport, Transport::Tls);
        assert_eq!(s.pool_host(), "pool.contoso.com");
        let c = s.endpoint_config("10.0.0.5:50000").unwrap();
        assert_eq!(c.publication.containers, vec![2]);
        assert_eq!(c.publication.instance, 536_870_912);
        assert_eq!(c.local_host, "10.0.0.5:50000");
        assert_eq!(c.keepalive, Some(Duration::from_secs(30)));
        let err = toml::from_str::<SfbSettings>(
            "pool = \"p:1\"\napplication-uri = \"sip:a@b\"\nkeepalive = \"3d\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown unit"), "{err}");
        let err = toml::from_str::<SfbSettings>(
            "pool = \"p:1\"\napplication-uri = \"sip:a@b\"\nbatch = 3\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("batch"), "{err}");
    }
}
