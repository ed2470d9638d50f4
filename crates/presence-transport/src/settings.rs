//! What every transport's configuration table shares: findings for `check` and start-up,
//! and durations written `500ms`, `10s`, `5m`, `1h`.

use std::fmt;
use std::time::Duration;

use serde::Deserializer;

/// How serious a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The transport starts, but probably not as intended (or not on this machine: `check`
    /// may run elsewhere than the daemon).
    Warning,
    /// The transport refuses to start with these settings.
    Error,
}

impl Severity {
    /// `error` or `warning`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem a transport's validation found in its table, naming the key with its table
/// (`sfb.tls.ca`, `teams.client-id`). Never quotes a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The key, with its table.
    pub key: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

impl Finding {
    /// An error about `key`.
    pub fn error(key: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Error,
            key,
            message: message.into(),
        }
    }

    /// A warning about `key`.
    pub fn warning(key: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            key,
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    /// `` error: `sfb.tls.ca`: ... ``
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`: {}", self.severity, self.key, self.message)
    }
}

/// Parses `500ms`, `10s`, `5m`, `1h`, or a bare number of seconds.
///
/// ```
/// use std::time::Duration;
/// use presence_transport::settings::parse_duration;
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
/// assert!(parse_duration("5d").unwrap_err().contains("`d`"));
/// ```
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

/// A duration for people, as the settings write them: `587ms`, `1.6s`, `12s`, `2m30s`,
/// `1h5m` (rounded to what matters at that scale). For log fields such as `retry_in`.
///
/// ```
/// use std::time::Duration;
/// use presence_transport::settings::HumanDuration;
/// assert_eq!(HumanDuration(Duration::from_millis(1623)).to_string(), "1.6s");
/// assert_eq!(HumanDuration(Duration::from_millis(587)).to_string(), "587ms");
/// assert_eq!(HumanDuration(Duration::from_secs(150)).to_string(), "2m30s");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_micros(999_500) {
            return write!(f, "{}ms", (d.as_micros() + 500) / 1000);
        }
        if d < Duration::from_millis(9_950) {
            return write!(f, "{:.1}s", d.as_secs_f64());
        }
        let secs = (d.as_millis() + 500) / 1000;
        match secs {
            0..60 => write!(f, "{secs}s"),
            60..3600 => match secs % 60 {
                0 => write!(f, "{}m", secs / 60),
                s => write!(f, "{}m{s}s", secs / 60),
            },
            _ => {
                let minutes = (secs + 30) / 60;
                match minutes % 60 {
                    0 => write!(f, "{}h", minutes / 60),
                    m => write!(f, "{}h{m}m", minutes / 60),
                }
            }
        }
    }
}

/// Serde helper (`#[serde(deserialize_with = "duration")]`): a duration as text (`10s`) or
/// a number of seconds.
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
    use proptest::prelude::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration(" 10 ").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("x").unwrap_err().contains("`x`"));
        assert!(parse_duration("5d").unwrap_err().contains("`d`"));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn durations_for_people() {
        let human = |ms: u64| HumanDuration(Duration::from_millis(ms)).to_string();
        assert_eq!(human(0), "0ms");
        assert_eq!(human(587), "587ms");
        assert_eq!(human(999), "999ms");
        assert_eq!(human(1000), "1.0s");
        assert_eq!(human(1623), "1.6s");
        assert_eq!(human(9_949), "9.9s");
        assert_eq!(human(9_950), "10s");
        assert_eq!(human(59_400), "59s");
        assert_eq!(human(59_600), "1m");
        assert_eq!(human(150_000), "2m30s");
        assert_eq!(human(3_600_000), "1h");
        assert_eq!(human(3_900_000), "1h5m");
        assert_eq!(
            HumanDuration(Duration::from_micros(999_600)).to_string(),
            "1.0s"
        );
    }

    #[test]
    fn findings_name_their_key() {
        let f = Finding::error("teams.client-id", "not a GUID");
        assert_eq!(f.to_string(), "error: `teams.client-id`: not a GUID");
        assert!(Finding::warning("sfb.tls.ca", "x").severity < Severity::Error);
    }

    /// Every kind of value that is not a string is refused, and the message never repeats
    /// it (serde's default message would: "invalid type: integer `48151623`").
    #[test]
    fn secrets_of_the_wrong_type_are_refused_without_their_value() {
        use serde::Deserialize;
        use serde::de::IntoDeserializer;
        use serde::de::value::Error;
        fn refused<'de>(value: impl IntoDeserializer<'de, Error>, shown: &str) {
            let err = Secret::deserialize(value.into_deserializer())
                .unwrap_err()
                .to_string();
            assert!(!err.contains(shown), "{err}");
            assert!(err.contains("its value is not shown"), "{err}");
        }
        refused(48151623_u64, "48151623");
        refused(-48151623_i64, "48151623");
        refused(481516234248151623_u128, "481516234248151623");
        refused(-481516234248151623_i128, "481516234248151623");
        refused(4815.1623_f64, "4815.1623");
        refused(true, "true");
        refused(&b"48151623"[..], "48151623");
        let text: Result<Secret, Error> = Secret::deserialize("48151623".into_deserializer());
        assert_eq!(text.unwrap().expose(), "48151623");
        let one: Result<Secret, Error> = Secret::deserialize('x'.into_deserializer());
        assert_eq!(one.unwrap().expose(), "x");
        let token: Result<Option<String>, Error> =
            secret_text(IntoDeserializer::<Error>::into_deserializer(48151623_u64));
        assert!(!token.unwrap_err().to_string().contains("48151623"));
        let token: Result<Option<String>, Error> = secret_text("tok".into_deserializer());
        assert_eq!(token.unwrap().as_deref(), Some("tok"));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_duration(&s);
        }
    }
}

/// A secret (a client secret, a password, a bearer token). Its `Debug` and `Display` print
/// `<redacted>`, it has no `Serialize`, and it is only read with [`Secret::expose`], by the
/// code that puts it on the wire (a token request, a digest response) or compares it.
///
/// It deserializes from a string only, and a value of another type is refused without
/// repeating it: `password = 12345678` (a number, not a string) gives `invalid type:
/// integer, expected a string (a secret: its value is not shown)`, where serde's own message
/// would quote the number.
///
/// ```
/// use presence_transport::settings::Secret;
/// use serde::Deserialize;
/// use serde::de::IntoDeserializer;
/// use serde::de::value::Error;
///
/// let ok = Secret::deserialize(IntoDeserializer::<Error>::into_deserializer("hunter2"))?;
/// assert_eq!(ok.expose(), "hunter2");
/// assert_eq!(format!("{ok:?} {ok}"), "<redacted> <redacted>");
/// let number = IntoDeserializer::<Error>::into_deserializer(48151623_u64);
/// let err = Secret::deserialize(number).unwrap_err().to_string();
/// assert_eq!(err, "invalid type: integer, expected a string (a secret: its value is not shown)");
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        deserializer.deserialize_string(SecretVisitor).map(Secret)
    }
}

/// Serde helper (`#[serde(default, deserialize_with = "secret_text")]`) for a secret kept as
/// an `Option<String>` (a bearer token): like [`Secret`], a value that is not a string is
/// refused without repeating it.
pub fn secret_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_string(SecretVisitor).map(Some)
}

/// Takes a string; refuses every other type without quoting the value (serde's default
/// messages quote numbers, booleans, characters and bytes).
struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: serde::de::Error>(&self, what: &'static str) -> E {
        E::invalid_type(serde::de::Unexpected::Other(what), self)
    }
}

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (a secret: its value is not shown)")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<String, E> {
        Err(self.refuse("boolean"))
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<String, E> {
        Err(self.refuse("integer"))
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<String, E> {
        Err(self.refuse("integer"))
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<String, E> {
        Err(self.refuse("integer"))
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<String, E> {
        Err(self.refuse("integer"))
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<String, E> {
        Err(self.refuse("floating point number"))
    }
    fn visit_char<E: serde::de::Error>(self, v: char) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<String, E> {
        Err(self.refuse("bytes"))
    }
}

impl Secret {
    /// A secret from its value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the request that needs it only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
