//! SIP request methods.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::chars::is_token;
use crate::error::{SipError, snippet_str};

/// A SIP request method: the RFC 3261 core methods, the extensions Skype for Business uses
/// (`SERVICE`, `BENOTIFY`) and common RFC extensions, or any other RFC 3261 token as
/// [`Method::Extension`].
///
/// Methods are case-sensitive (RFC 3261 §7.1): `invite` is an extension method, not
/// [`Method::Invite`]. Two methods are equal when their text is equal, so
/// `Method::Extension("INVITE".into()) == Method::Invite`; parsing always yields the named
/// variant.
#[derive(Debug, Clone, Eq)]
pub enum Method {
    /// `INVITE`
    Invite,
    /// `ACK`
    Ack,
    /// `BYE`
    Bye,
    /// `CANCEL`
    Cancel,
    /// `REGISTER`
    Register,
    /// `OPTIONS`
    Options,
    /// `SUBSCRIBE` (RFC 6665)
    Subscribe,
    /// `NOTIFY` (RFC 6665)
    Notify,
    /// `SERVICE` (MS-SIP: category publication, batched subscriptions)
    Service,
    /// `BENOTIFY` (MS-SIP: best-effort NOTIFY that gets no response)
    Benotify,
    /// `MESSAGE` (RFC 3428)
    Message,
    /// `INFO` (RFC 6086)
    Info,
    /// `PUBLISH` (RFC 3903)
    Publish,
    /// `REFER` (RFC 3515)
    Refer,
    /// `UPDATE` (RFC 3311)
    Update,
    /// `PRACK` (RFC 3262)
    Prack,
    /// Any other token. Build it with [`Method::from_token`] (or `str::parse`), which
    /// validates the token and picks a named variant when one matches.
    Extension(String),
}

const NAMED: [(&str, Method); 16] = [
    ("INVITE", Method::Invite),
    ("ACK", Method::Ack),
    ("BYE", Method::Bye),
    ("CANCEL", Method::Cancel),
    ("REGISTER", Method::Register),
    ("OPTIONS", Method::Options),
    ("SUBSCRIBE", Method::Subscribe),
    ("NOTIFY", Method::Notify),
    ("SERVICE", Method::Service),
    ("BENOTIFY", Method::Benotify),
    ("MESSAGE", Method::Message),
    ("INFO", Method::Info),
    ("PUBLISH", Method::Publish),
    ("REFER", Method::Refer),
    ("UPDATE", Method::Update),
    ("PRACK", Method::Prack),
];

impl Method {
    /// Parses a method token (case-sensitive).
    ///
    /// # Errors
    /// [`SipError::InvalidMethod`] when `token` is empty or has a character outside the
    /// RFC 3261 `token` class.
    pub fn from_token(token: &str) -> Result<Self, SipError> {
        if !is_token(token.as_bytes()) {
            return Err(SipError::InvalidMethod {
                offset: 0,
                token: snippet_str(token),
            });
        }
        Ok(Self::from_valid_token(token))
    }

    /// Maps an already validated token to a method.
    pub(crate) fn from_valid_token(token: &str) -> Self {
        NAMED
            .iter()
            .find(|(name, _)| *name == token)
            .map_or_else(|| Method::Extension(token.to_owned()), |(_, m)| m.clone())
    }

    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Service => "SERVICE",
            Method::Benotify => "BENOTIFY",
            Method::Message => "MESSAGE",
            Method::Info => "INFO",
            Method::Publish => "PUBLISH",
            Method::Refer => "REFER",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Extension(token) => token,
        }
    }

    /// Whether the text is a valid token (always true for methods built by parsing).
    pub(crate) fn is_valid(&self) -> bool {
        is_token(self.as_str().as_bytes())
    }
}

impl PartialEq for Method {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Hash for Method {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = SipError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_token(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_methods_round_trip() {
        for (name, method) in NAMED {
            let parsed: Method = name.parse().unwrap();
            assert!(!matches!(parsed, Method::Extension(_)), "{name}");
            assert_eq!(parsed, method);
            assert_eq!(parsed.to_string(), name);
        }
    }

    #[test]
    fn extensions_are_tokens_and_case_sensitive() {
        assert_eq!(
            Method::from_token("invite").unwrap(),
            Method::Extension("invite".into())
        );
        assert_ne!(Method::from_token("invite").unwrap(), Method::Invite);
        assert_eq!(Method::Extension("SERVICE".into()), Method::Service);
        assert_eq!(
            Method::from_token("X-MS.Foo!").unwrap().as_str(),
            "X-MS.Foo!"
        );
        for bad in ["", "A B", "SIP/2.0", "A:B", "É"] {
            assert!(
                matches!(Method::from_token(bad), Err(SipError::InvalidMethod { .. })),
                "{bad:?}"
            );
        }
        assert!(!Method::Extension("A B".into()).is_valid());
        assert!(Method::Benotify.is_valid());
    }
}
