//! The `[cti]` table of the bridge's configuration.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use crate::CtiError;
use crate::listener::ListenerConfig;

/// The contact-centre link's settings: the `[cti]` table of the bridge's configuration file.
/// Every field is optional; unknown fields are errors.
///
/// | field | type | default | meaning |
/// |---|---|---|---|
/// | `listen` | `"IP:port"` | `"127.0.0.1:7070"` | address of the WebSocket listener; the endpoint is `ws://IP:port/v1/cti` |
/// | `token` | string | none | bearer token clients must present (`Authorization: Bearer <token>`) on the upgrade request; **required** when `listen` is not a loopback address; visible ASCII, no spaces |
/// | `max-message-bytes` | integer | `65536` | largest text frame the link accepts (256..=1048576); a larger frame up to 4 × this is answered `EventError` 4 and the connection continues; a frame beyond 4 × is answered `EventError` 4 and the connection is closed with code 1009 |
/// | `rate-per-second` | integer | `200` | messages per second a connection may send (sustained); over the limit a message is dropped and answered `EventError` 5 |
/// | `burst` | integer | `400` | messages a connection may send at once before `rate-per-second` applies |
/// | `max-connections` | integer | `1024` | connections held at once, counted from the moment they are accepted (a connection still sending its upgrade request counts too); further connections get HTTP 503 |
/// | `handshake-timeout` | duration | `"10s"` | time a connection has to send its whole upgrade request (100ms..=5m); then it is closed |
/// | `queue` | integer | `1024` | events queued per connection for a client that reads slower than the bridge sends; a client that falls further behind is disconnected (close code 1008), never slowing the bridge or other clients. Must exceed the largest burst the bridge sends one client (about the number of DNs it registers) |
///
/// ```
/// use presence_cti::CtiConfig;
/// let config: CtiConfig = toml::from_str(r#"
///     listen = "0.0.0.0:7070"
///     token = "s3cret-token"
///     rate-per-second = 50
/// "#)?;
/// assert_eq!(config.burst, 400);
/// config.validate()?;
///
/// let open: CtiConfig = toml::from_str(r#"listen = "0.0.0.0:7070""#)?;
/// assert!(open.validate().unwrap_err().to_string().contains("`cti.token` is required"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CtiConfig {
    /// Address of the WebSocket listener (default `127.0.0.1:7070`).
    pub listen: SocketAddr,
    /// Bearer token required on the upgrade request; required off loopback. A value that is
    /// not a string is refused without being repeated.
    #[serde(deserialize_with = "presence_transport::settings::secret_text")]
    pub token: Option<String>,
    /// Largest text frame accepted, in bytes (default 65536).
    pub max_message_bytes: usize,
    /// Sustained messages per second per connection (default 200).
    pub rate_per_second: u32,
    /// Messages per connection allowed at once (default 400).
    pub burst: u32,
    /// Connections held at once, from accept to close (default 1024).
    pub max_connections: usize,
    /// Time a connection has to send its whole upgrade request (default 10 s).
    #[serde(deserialize_with = "presence_transport::settings::duration")]
    pub handshake_timeout: Duration,
    /// Events queued per connection before a lagging client is disconnected (default 1024).
    pub queue: usize,
}

impl Default for CtiConfig {
    fn default() -> Self {
        CtiConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7070)),
            token: None,
            max_message_bytes: 65536,
            rate_per_second: 200,
            burst: 400,
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            queue: 1024,
        }
    }
}

/// The smallest `max-message-bytes`: room for a `RequestAgentLogin` with a profile.
pub const MIN_MESSAGE_BYTES: usize = 256;

impl CtiConfig {
    /// Checks the settings; every error names the option, the value and what would be valid.
    pub fn validate(&self) -> Result<(), CtiError> {
        match &self.token {
            None if !self.listen.ip().is_loopback() => {
                return Err(CtiError::TokenRequired {
                    listen: self.listen,
                });
            }
            Some(token) if !crate::auth::valid_token(token) => {
                return Err(CtiError::InvalidOption {
                    table: "cti",
                    option: "token",
                    value: "(hidden)".to_owned(),
                    expected: "a non-empty bearer token of visible ASCII characters without spaces",
                });
            }
            _ => {}
        }
        self.listener().validate()?;
        let ranges: [(&'static str, u64, u64, u64, &'static str); 4] = [
            (
                "max-message-bytes",
                self.max_message_bytes as u64,
                MIN_MESSAGE_BYTES as u64,
                presence_tlib::MAX_JSON_BYTES as u64,
                "a size in bytes, 256..=1048576",
            ),
            (
                "rate-per-second",
                u64::from(self.rate_per_second),
                1,
                u64::from(u32::MAX),
                "a number of messages per second, at least 1",
            ),
            (
                "burst",
                u64::from(self.burst),
                1,
                u64::from(u32::MAX),
                "a number of messages, at least 1",
            ),
            (
                "queue",
                self.queue as u64,
                1,
                // tokio's bounded channel takes at most usize::MAX >> 3 permits.
                (usize::MAX >> 3) as u64,
                "a number of events, at least 1",
            ),
        ];
        for (option, value, min, max, expected) in ranges {
            if !(min..=max).contains(&value) {
                return Err(CtiError::InvalidOption {
                    table: "cti",
                    option,
                    value: value.to_string(),
                    expected,
                });
            }
        }
        Ok(())
    }

    /// The listener's identity and limits.
    pub fn listener(&self) -> ListenerConfig {
        ListenerConfig {
            name: "contact-centre link",
            table: "cti",
            max_connections: self.max_connections,
            handshake_timeout: self.handshake_timeout,
        }
    }

    /// The endpoint URL clients connect to (`ws://127.0.0.1:7070/v1/cti`).
    pub fn endpoint(&self) -> String {
        format!("ws://{}{}", self.listen, crate::PATH)
    }
}

impl fmt::Debug for CtiConfig {
    /// Like a derived `Debug`, with the token hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtiConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "(hidden)"))
            .field("max_message_bytes", &self.max_message_bytes)
            .field("rate_per_second", &self.rate_per_second)
            .field("burst", &self.burst)
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("queue", &self.queue)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CtiConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults() {
        let config = parse("").unwrap();
        assert_eq!(config, CtiConfig::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:7070");
        assert_eq!(
            (
                config.max_message_bytes,
                config.rate_per_second,
                config.burst
            ),
            (65536, 200, 400)
        );
        assert_eq!((config.max_connections, config.queue), (1024, 1024));
        assert_eq!(config.handshake_timeout, Duration::from_secs(10));
        config.validate().unwrap();
        assert_eq!(config.endpoint(), "ws://127.0.0.1:7070/v1/cti");
    }

    #[test]
    fn unknown_fields_are_errors() {
        let err = parse("tokn = \"x\"").unwrap_err().to_string();
        assert!(err.contains("tokn"), "{err}");
        assert!(err.contains("token"), "{err}");
        let err = parse("listen = \"localhost:7070\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn token_rules() {
        let open = parse("listen = \"0.0.0.0:7070\"").unwrap();
        let err = open.validate().unwrap_err().to_string();
        assert!(
            err.contains("`cti.token` is required") && err.contains("0.0.0.0:7070"),
            "{err}"
        );
        let v6 = parse("listen = \"[::1]:7070\"").unwrap();
        v6.validate().unwrap();
        for bad in ["", "with space", "tab\there"] {
            let config = CtiConfig {
                token: Some(bad.to_owned()),
                ..CtiConfig::default()
            };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("`cti.token`"), "{err}");
            assert!(!err.contains(bad) || bad.is_empty(), "token leaked: {err}");
        }
        let config = CtiConfig {
            token: Some("s3cret".to_owned()),
            ..CtiConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn ranges() {
        for (text, option) in [
            ("max-message-bytes = 10", "max-message-bytes"),
            ("max-message-bytes = 2000000", "max-message-bytes"),
            ("rate-per-second = 0", "rate-per-second"),
            ("burst = 0", "burst"),
            ("max-connections = 0", "max-connections"),
            ("handshake-timeout = \"50ms\"", "handshake-timeout"),
            ("handshake-timeout = \"6m\"", "handshake-timeout"),
            ("queue = 0", "queue"),
        ] {
            let err = parse(text).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`cti.{option}`")), "{err}");
        }
        assert!(parse("rate_per_second = -1").is_err());
        assert!(parse("handshake-timeout = \"10 parsecs\"").is_err());
    }

    #[test]
    fn handshake_timeout_as_text_or_seconds() {
        let config = parse("handshake-timeout = \"2500ms\"").unwrap();
        assert_eq!(config.handshake_timeout, Duration::from_millis(2500));
        config.validate().unwrap();
        assert_eq!(
            parse("handshake-timeout = 3").unwrap().handshake_timeout,
            Duration::from_secs(3)
        );
        let listener = config.listener();
        assert_eq!((listener.table, listener.max_connections), ("cti", 1024));
    }
}
