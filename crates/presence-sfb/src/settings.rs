//! The `[sfb]` section of the bridge's configuration, and the endpoint's settings.

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
    /// 409 WrongDelta re-sends (with the pool's `curVersion`) of one publication before it
    /// is reported as failed.
    pub max_conflict_retries: u32,
    /// First delay before a refused or ended subscription is made again (doubled each time,
    /// ±20 % jitter), unless the pool said when (`Retry-After`).
    pub retry_initial: Duration,
    /// Longest delay before a subscription is made again.
    pub retry_max: Duration,
    /// Requests for publications (and removals) on the wire at once; further ones wait in
    /// order. Also the credit granted on each connection.
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
/// | `tls.certificate` | none (a warning) | the client certificate chain (PEM); a pool accepts a trusted application only with one |
/// | `tls.private-key` | with `tls.certificate` | its private key (PEM) |
/// | `tls.ca` | required for tls | CA certificates that sign the pool's certificate (PEM) |
/// | `tls.server-name` | the pool's host | the name the pool's certificate must carry |
/// | `publication.*` | see [`PublicationSettings`] | state type, instance, containers, expiry |
/// | `subscription.batch-size` | 100 | users per SUBSCRIBE |
/// | `subscription.expires` | `3600s` | subscription lifetime asked for |
/// | `request-timeout` | `10s` | wait for a final response; a publication not answered in time is reported as a timeout |
/// | `keepalive` | `30s` | CRLF keep-alive interval (`0s`: off) |
/// | `keepalive-timeout` | `10s` | reset the connection when a keep-alive is not answered |
/// | `max-conflict-retries` | 3 | 409 WrongDelta re-sends (with the pool's `curVersion`) of one publication before it is reported as failed |
/// | `retry-initial` / `retry-max` | `500ms` / `10s` | back-off before a refused or ended **subscription** is made again (`Retry-After` wins) |
/// | `max-in-flight` | 256 | publication requests on the wire at once, and the credit granted on each connection |
/// | `reconnect-initial` / `reconnect-max` | `500ms` / `30s` | back-off between connection attempts (±20 % jitter) |
/// | `connect-timeout` | `10s` | TCP connect + TLS handshake |
///
/// Durations are written `500ms`, `10s`, `5m`, `1h` (or a number of seconds).
///
/// There is no retry setting for publications: under the port's contract (see
/// [`presence_transport`], "who owns what") the caller retries a failed publication, with
/// its own back-off and the `retry_after` the transport reports; the transport reports
/// each failure once. [`SfbSettings::findings`] checks the table as a whole.
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
    /// Final-response timeout; a publication not answered in time fails with `Timeout`.
    #[serde(default = "secs::<10>", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Keep-alive interval; `0s` turns keep-alives off.
    #[serde(default = "secs::<30>", deserialize_with = "duration")]
    pub keepalive: Duration,
    /// Keep-alive answer timeout.
    #[serde(default = "secs::<10>", deserialize_with = "duration")]
    pub keepalive_timeout: Duration,
    /// 409 WrongDelta re-sends of one publication.
    #[serde(default = "three")]
    pub max_conflict_retries: u32,
    /// First delay before a subscription is made again.
    #[serde(default = "half_second", deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// Longest delay before a subscription is made again.
    #[serde(default = "secs::<10>", deserialize_with = "duration")]
    pub retry_max: Duration,
    /// Publication requests on the wire at once; the credit granted on each connection.
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
    /// Fails with the first [`Severity::Error`] among the endpoint's own
    /// [`findings`](Self::findings) (application URI, containers, batch size).
    pub fn endpoint_config(&self, socket_local: &str) -> Result<EndpointConfig, SfbError> {
        if let Some(finding) = self.endpoint_findings().into_iter().next() {
            return Err(SfbError::Setting {
                key: finding.key,
                message: finding.message,
            });
        }
        let application_uri =
            SipUri::new(&self.application_uri).map_err(SfbError::ApplicationUri)?;
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
        config.retry_initial = self.retry_initial;
        config.retry_max = self.retry_max;
        config.max_in_flight = self.max_in_flight.max(1);
        Ok(config)
    }

    /// The errors of the endpoint's own settings, in key order.
    fn endpoint_findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Err(source) = SipUri::new(&self.application_uri) {
            out.push(Finding::error("sfb.application-uri", source.to_string()));
        }
        if self.publication.containers.is_empty() {
            out.push(Finding::error(
                "sfb.publication.containers",
                "at least one container is needed (the default is [2, 3])",
            ));
        }
        if self.subscription.batch_size == 0 {
            out.push(Finding::error(
                "sfb.subscription.batch-size",
                "must be at least 1",
            ));
        }
        out
    }

    /// Everything wrong with the table, and what is doubtful: the one place `[sfb]` is
    /// judged (the binary's `check` command shows these; [`SfbTransport::start`] refuses
    /// settings with an [`Severity::Error`]).
    ///
    /// - errors: an application URI that is not a SIP URI, no container, a batch size of
    ///   0; with `transport = "tls"`: no `tls.ca`, a certificate without its key or a key
    ///   without its certificate;
    /// - warnings (with `tls`): no client certificate (a pool accepts a trusted
    ///   application only with one); a TLS file that cannot be read here (the check may
    ///   run on another machine than the bridge; `start` reads them and fails).
    ///
    /// ```
    /// use presence_sfb::{SfbSettings, Severity};
    /// let settings: SfbSettings = toml::from_str(r#"
    ///     pool = "pool01.contoso.com:5061"
    ///     application-uri = "sip:presence-bridge@contoso.com"
    /// "#)?;
    /// let findings = settings.findings();
    /// assert!(findings.iter().any(|f| f.severity == Severity::Error && f.key == "sfb.tls.ca"));
    /// assert!(findings.iter().any(|f| f.severity == Severity::Warning && f.key == "sfb.tls.certificate"));
    /// # Ok::<(), toml::de::Error>(())
    /// ```
    ///
    /// [`SfbTransport::start`]: crate::SfbTransport::start
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = self.endpoint_findings();
        if self.transport != Transport::Tls {
            return out;
        }
        let tls = &self.tls;
        if tls.ca.is_none() {
            out.push(Finding::error(
                "sfb.tls.ca",
                "`ca` is required with transport = \"tls\": the CA bundle (PEM) that signs the pool's certificate",
            ));
        }
        match (&tls.certificate, &tls.private_key) {
            (Some(_), None) => out.push(Finding::error(
                "sfb.tls.private-key",
                "`certificate` and `private-key` go together: the client certificate needs its private key",
            )),
            (None, Some(_)) => out.push(Finding::error(
                "sfb.tls.certificate",
                "`certificate` and `private-key` go together: the private key needs its client certificate",
            )),
            _ => {}
        }
        if tls.certificate.is_none() {
            out.push(Finding::warning(
                "sfb.tls.certificate",
                "no client `certificate`: a Front End pool accepts a trusted application only with one",
            ));
        }
        let files = [
            ("sfb.tls.ca", &tls.ca),
            ("sfb.tls.certificate", &tls.certificate),
            ("sfb.tls.private-key", &tls.private_key),
        ];
        for (key, path) in files {
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
        out
    }
}

pub use presence_transport::settings::{Finding, Severity, duration, parse_duration};

/// Serde helper: an expire type by name.
fn expire_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ExpireType, D::Error> {
    let name = String::deserialize(deserializer)?;
    ExpireType::from_name(&name).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{name}` is not an expire type: expected static, user, endpoint or time"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn parse(extra: &str) -> SfbSettings {
        toml::from_str(&format!(
            "pool = \"pool.contoso.com:5061\"\napplication-uri = \"sip:bridge@contoso.com\"\n{extra}"
        ))
        .unwrap()
    }

    fn keys(findings: &[Finding], severity: Severity) -> Vec<&'static str> {
        findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| f.key)
            .collect()
    }

    #[test]
    fn publication_retries_are_no_longer_a_setting() {
        let err = toml::from_str::<SfbSettings>(
            "pool = \"p:1\"\napplication-uri = \"sip:a@b\"\nmax-retries = 5\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("max-retries"), "{err}");
    }

    #[test]
    fn findings_of_the_endpoint_settings_come_together() {
        let s: SfbSettings = toml::from_str(
            "pool = \"p:1\"\ntransport = \"tcp\"\napplication-uri = \"bridge\"\n[publication]\ncontainers = []\n[subscription]\nbatch-size = 0\n",
        )
        .unwrap();
        let findings = s.findings();
        assert_eq!(
            keys(&findings, Severity::Error),
            [
                "sfb.application-uri",
                "sfb.publication.containers",
                "sfb.subscription.batch-size"
            ]
        );
        assert!(keys(&findings, Severity::Warning).is_empty());
        // endpoint_config fails with the first of them.
        let err = s.endpoint_config("localhost").unwrap_err().to_string();
        assert!(err.starts_with("`sfb.application-uri`"), "{err}");
        assert!(
            findings[0]
                .to_string()
                .starts_with("error: `sfb.application-uri`: ")
        );
        // TCP needs no TLS material.
        assert!(parse("transport = \"tcp\"").findings().is_empty());
    }

    #[test]
    fn findings_of_the_tls_settings() {
        let findings = parse("").findings();
        assert_eq!(keys(&findings, Severity::Error), ["sfb.tls.ca"]);
        assert_eq!(keys(&findings, Severity::Warning), ["sfb.tls.certificate"]);
        assert!(findings[0].message.contains("transport = \"tls\""));

        let dir =
            std::env::temp_dir().join(format!("presence-sfb-findings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "not checked here").unwrap();
        let missing = dir.join("missing.pem");
        let with = |tls: String| parse(&format!("[tls]\nca = \"{}\"\n{tls}", ca.display()));

        let only_cert = with(format!("certificate = \"{}\"\n", ca.display())).findings();
        assert_eq!(keys(&only_cert, Severity::Error), ["sfb.tls.private-key"]);
        assert!(keys(&only_cert, Severity::Warning).is_empty());

        let only_key = with(format!("private-key = \"{}\"\n", ca.display())).findings();
        assert_eq!(keys(&only_key, Severity::Error), ["sfb.tls.certificate"]);
        assert_eq!(keys(&only_key, Severity::Warning), ["sfb.tls.certificate"]);

        let unreadable = with(format!(
            "certificate = \"{}\"\nprivate-key = \"{}\"\n",
            missing.display(),
            ca.display()
        ))
        .findings();
        assert!(keys(&unreadable, Severity::Error).is_empty());
        assert_eq!(
            keys(&unreadable, Severity::Warning),
            ["sfb.tls.certificate"]
        );
        assert!(
            unreadable[0]
                .message
                .contains(&missing.display().to_string()),
            "{unreadable:?}"
        );

        let fine = with(format!(
            "certificate = \"{}\"\nprivate-key = \"{}\"\n",
            ca.display(),
            ca.display()
        ));
        assert!(fine.findings().is_empty(), "{:?}", fine.findings());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
