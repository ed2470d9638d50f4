//! Identifiers and texts: LCIDs, activity texts, DN numbers, SIP URIs, aggregated state IDs.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::ModelError;

/// A Microsoft locale ID (LCID), written in decimal in the agent-presence map (`1033` is
/// en-US).
///
/// ```
/// use presence_model::Lcid;
/// let lcid: Lcid = "3082".parse()?;
/// assert_eq!(lcid.tag(), Some("es-ES"));
/// assert!("en-US".parse::<Lcid>().is_err());
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lcid(u32);

impl Lcid {
    /// 1033, English (United States).
    pub const EN_US: Lcid = Lcid(1033);

    /// An LCID from its number.
    pub const fn new(value: u32) -> Self {
        Lcid(value)
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The language tag of a few common LCIDs, for display; `None` for the others.
    pub const fn tag(self) -> Option<&'static str> {
        Some(match self.0 {
            1025 => "ar-SA",
            1028 => "zh-TW",
            1029 => "cs-CZ",
            1030 => "da-DK",
            1031 => "de-DE",
            1032 => "el-GR",
            1033 => "en-US",
            1035 => "fi-FI",
            1036 => "fr-FR",
            1037 => "he-IL",
            1038 => "hu-HU",
            1040 => "it-IT",
            1041 => "ja-JP",
            1042 => "ko-KR",
            1043 => "nl-NL",
            1044 => "nb-NO",
            1045 => "pl-PL",
            1046 => "pt-BR",
            1049 => "ru-RU",
            1053 => "sv-SE",
            1055 => "tr-TR",
            1058 => "uk-UA",
            2052 => "zh-CN",
            2057 => "en-GB",
            2070 => "pt-PT",
            3082 => "es-ES",
            3084 => "fr-CA",
            _ => return None,
        })
    }
}

impl fmt::Display for Lcid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Lcid {
    type Err = ModelError;

    /// Parses a decimal LCID (`1033`); surrounding spaces allowed, nothing else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::availability::parse_decimal(s.trim())
            .and_then(|n| u32::try_from(n).ok())
            .map(Lcid)
            .ok_or_else(|| ModelError::NotANumber {
                what: "LCID",
                token: s.to_owned(),
                expected: "a decimal Microsoft locale ID such as 1033 (en-US) or 3082 (es-ES)",
            })
    }
}

/// An activity text: the free text SfB shows under the availability, trimmed at both ends.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActivityText(Arc<str>);

impl ActivityText {
    /// A text, trimmed at both ends (the seed's own examples carry stray spaces).
    pub fn new(text: &str) -> Self {
        ActivityText(Arc::from(text.trim()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActivityText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ActivityText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks the characters shared by DN numbers and state IDs: non-empty, at most `max` bytes,
/// no whitespace, no control characters, none of `forbidden`.
fn check_token(token: &str, max: usize, forbidden: &[char]) -> Result<(), &'static str> {
    if token.is_empty() {
        return Err("it is empty");
    }
    if token.len() > max {
        return Err("it is too long");
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains a space or a control character");
    }
    if token.contains(forbidden) {
        return Err("it contains a reserved character");
    }
    Ok(())
}

/// Defines a validated string identifier: a newtype over `Arc<str>` (cheap to clone) with
/// `as_str`, `Display`, `AsRef<str>`, `Borrow<str>` (so maps keyed by it can be searched
/// with a `&str`) and `FromStr`, which calls the type's own `new(&str) -> Result<Self,
/// Error>`, written beside the invocation with the checks the identifier needs. Used for the
/// model's identifiers and by other crates for theirs (the contact-centre link's agent and
/// connection IDs), so that every string identifier of the workspace behaves the same.
///
/// ```
/// use presence_model::string_id;
///
/// #[derive(Debug)]
/// pub struct Empty;
///
/// string_id! {
///     /// A name that is not empty.
///     Name, Empty
/// }
///
/// impl Name {
///     /// A name, checked.
///     pub fn new(s: &str) -> Result<Self, Empty> {
///         if s.is_empty() { Err(Empty) } else { Ok(Name(s.into())) }
///     }
/// }
///
/// let name: Name = "agent1".parse().unwrap();
/// assert_eq!(name.as_str(), "agent1");
/// assert!("".parse::<Name>().is_err());
/// ```
#[macro_export]
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $error:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(::std::sync::Arc<str>);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $error;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                $name::new(s)
            }
        }
    };
}

string_id! {
    /// A DN number (`5001`, or a VoIP Service DN's name such as `PushProfile`): non-empty, at
    /// most 255 bytes, no spaces or control characters.
    DnNumber, ModelError
}

impl DnNumber {
    /// A DN number, validated.
    pub fn new(s: &str) -> Result<Self, ModelError> {
        check_token(s, 255, &[])
            .map(|()| DnNumber(Arc::from(s)))
            .map_err(|reason| ModelError::InvalidDn {
                token: s.to_owned(),
                reason,
            })
    }
}

string_id! {
    /// An aggregated state ID (`INCALL`): the key that joins `aggregated-states` to the
    /// agent-presence map. Non-empty, at most 255 bytes, no spaces, control characters, `,`,
    /// `=` or `:` (which the `aggregated-states` syntax reserves). Case-sensitive.
    AggregatedStateId, ModelError
}

impl AggregatedStateId {
    /// An aggregated state ID, validated.
    pub fn new(s: &str) -> Result<Self, ModelError> {
        check_token(s, 255, &[',', '=', ':'])
            .map(|()| AggregatedStateId(Arc::from(s)))
            .map_err(|reason| ModelError::InvalidStateId {
                token: s.to_owned(),
                reason,
            })
    }
}

string_id! {
    /// A user's SIP address of record, `sip:user@host` (or `sips:`), with an optional
    /// `:port`, no parameters or headers.
    ///
    /// SfB addresses compare case-insensitively, so the value is kept in lower case
    /// **(decision)**: `sip:Agent1@Contoso.com` and `sip:agent1@contoso.com` are one user.
    ///
    /// ```
    /// use presence_model::SipUri;
    /// let uri: SipUri = "sip:Agent1@Contoso.com".parse()?;
    /// assert_eq!(uri.as_str(), "sip:agent1@contoso.com");
    /// assert_eq!(uri.user(), "agent1");
    /// assert_eq!(uri.host(), "contoso.com");
    /// assert!("agent1@contoso.com".parse::<SipUri>().is_err());
    /// # Ok::<(), presence_model::ModelError>(())
    /// ```
    SipUri, ModelError
}

impl SipUri {
    /// A SIP URI, validated and lower-cased.
    pub fn new(s: &str) -> Result<Self, ModelError> {
        let err = |reason| ModelError::InvalidSipUri {
            token: s.to_owned(),
            reason,
        };
        if s.len() > 512 {
            return Err(err("it is longer than 512 bytes"));
        }
        let lower = s.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("sip:")
            .or_else(|| lower.strip_prefix("sips:"))
            .ok_or_else(|| err("it must start with `sip:` or `sips:`"))?;
        let (user, hostport) = rest
            .split_once('@')
            .ok_or_else(|| err("it must have the form `sip:user@host`"))?;
        if user.is_empty() {
            return Err(err("the user part before `@` is empty"));
        }
        if !user.bytes().all(is_user_byte) {
            return Err(err(
                "the user part may hold only letters, digits and -_.!~*'()&=+$,?/%",
            ));
        }
        let (host, port) = split_host_port(hostport)
            .ok_or_else(|| err("the host must be followed by nothing or by `:port`"))?;
        if let Some(port) = port {
            let valid = port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok_and(|p| p != 0);
            if !valid {
                return Err(err("the port after the host must be a number 1..=65535"));
            }
        }
        if !is_host(host) {
            return Err(err(
                "the host must be a domain name (letters, digits, `-`, `.`) or an IP address",
            ));
        }
        Ok(SipUri(Arc::from(lower)))
    }

    /// The part between the scheme and `@`.
    pub fn user(&self) -> &str {
        let rest = self.0.split_once(':').map_or("", |(_, r)| r);
        rest.split_once('@').map_or("", |(u, _)| u)
    }

    /// The host (without the port).
    pub fn host(&self) -> &str {
        let hostport = self.0.split_once('@').map_or("", |(_, h)| h);
        split_host_port(hostport).map_or(hostport, |(host, _)| host)
    }
}

/// Splits `host[:port]`, where host may be a bracketed IPv6 address; `None` when something
/// other than `:port` follows a bracketed host.
fn split_host_port(hostport: &str) -> Option<(&str, Option<&str>)> {
    if hostport.starts_with('[') {
        let close = hostport.find(']')?;
        let (host, rest) = hostport.split_at(close + 1);
        return match rest {
            "" => Some((host, None)),
            _ => rest.strip_prefix(':').map(|port| (host, Some(port))),
        };
    }
    Some(match hostport.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (hostport, None),
    })
}

fn is_user_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,?/%".contains(&b)
}

fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sip_uris() {
        for good in [
            "sip:agent1@contoso.com",
            "SIP:Agent.One@Contoso.COM",
            "sips:a@b",
            "sip:a@10.0.0.1:5061",
            "sip:a@[::1]:5061",
            "sip:a@[::1]",
            "sip:first.last%40x@example.org",
        ] {
            let uri = SipUri::new(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(uri.as_str(), good.to_ascii_lowercase());
        }
        for bad in [
            "",
            "agent@contoso.com",
            "sip:@contoso.com",
            "sip:agent",
            "sip:agent@",
            "sip:agent@contoso.com:0",
            "sip:agent@contoso.com:99999",
            "sip:agent@-x.com",
            "sip:agent@contoso..com",
            "sip:a b@contoso.com",
            "sip:agent@contoso.com;transport=tls",
            "sip:agent@[zz]",
            "tel:+15551234",
        ] {
            let err = SipUri::new(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        let uri = SipUri::new("sip:a@[::1]:5061").unwrap();
        assert_eq!(uri.host(), "[::1]");
        let uri = SipUri::new("sip:a@host.example:5061").unwrap();
        assert_eq!((uri.user(), uri.host()), ("a", "host.example"));
    }

    #[test]
    fn tokens() {
        assert!(DnNumber::new("5001").is_ok());
        assert!(DnNumber::new("PushProfile").is_ok());
        assert!(DnNumber::new("").is_err());
        assert!(DnNumber::new("50 01").is_err());
        assert!(AggregatedStateId::new("INCALL").is_ok());
        for bad in ["", "IN CALL", "A=B", "A,B", "A:B"] {
            let err = AggregatedStateId::new(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        assert_eq!(
            ActivityText::new("  I am available ").as_str(),
            "I am available"
        );
        assert!("10x".parse::<Lcid>().is_err());
        assert!("-1033".parse::<Lcid>().is_err());
        assert!("99999999999".parse::<Lcid>().is_err());
        assert_eq!(" 1049 ".parse::<Lcid>().unwrap().tag(), Some("ru-RU"));
    }

    proptest! {
        #[test]
        fn validators_never_panic(s in "\\PC{0,60}") {
            let _ = SipUri::new(&s);
            let _ = DnNumber::new(&s);
            let _ = AggregatedStateId::new(&s);
            let _ = s.parse::<Lcid>();
        }

        #[test]
        fn valid_uris_are_stable(user in "[a-z0-9._-]{1,20}", host in "[a-z][a-z0-9]{0,10}(\\.[a-z][a-z0-9]{0,10}){0,3}") {
            let text = format!("sip:{user}@{host}");
            let uri = SipUri::new(&text).unwrap();
            prop_assert_eq!(&SipUri::new(uri.as_str()).unwrap(), &uri);
            prop_assert_eq!(uri.user(), user.as_str());
            prop_assert_eq!(uri.host(), host.as_str());
        }
    }
}
