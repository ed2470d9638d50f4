//! Who a user is on a presence platform: the platform's name and the address the platform
//! knows the user by.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::{ModelError, SipUri};

/// The name of a presence platform, as the configuration names it: `sfb`, `teams`,
/// `simple`, or the name of a transport of your own. Lower-case ASCII letters, digits and
/// `-`, starting with a letter, at most 32 bytes.
///
/// ```
/// use presence_model::Platform;
/// let teams: Platform = "Teams".parse()?;
/// assert_eq!(teams, Platform::teams());
/// assert!("my platform".parse::<Platform>().is_err());
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform(Arc<str>);

impl Platform {
    /// `sfb`: Skype for Business Server (MS-SIP / MS-PRES).
    pub const SFB: &'static str = "sfb";
    /// `teams`: Microsoft Teams (Microsoft Graph).
    pub const TEAMS: &'static str = "teams";
    /// `simple`: standard SIP SIMPLE presence (PUBLISH, SUBSCRIBE/NOTIFY, PIDF).
    pub const SIMPLE: &'static str = "simple";

    /// A platform name, validated; upper-case letters are lowered.
    pub fn new(s: &str) -> Result<Self, ModelError> {
        let lower = s.trim().to_ascii_lowercase();
        let err = |reason| ModelError::InvalidPlatform {
            token: s.to_owned(),
            reason,
        };
        if lower.is_empty() {
            return Err(err("it is empty"));
        }
        if lower.len() > 32 {
            return Err(err("it is longer than 32 bytes"));
        }
        if !lower.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err("it must start with a letter"));
        }
        if !lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("it may hold only letters, digits and `-`"));
        }
        Ok(Platform(Arc::from(lower)))
    }

    /// The `sfb` platform.
    pub fn sfb() -> Self {
        Platform(Arc::from(Self::SFB))
    }

    /// The `teams` platform.
    pub fn teams() -> Self {
        Platform(Arc::from(Self::TEAMS))
    }

    /// The `simple` platform.
    pub fn simple() -> Self {
        Platform(Arc::from(Self::SIMPLE))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Platform {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::new(s)
    }
}

/// A Microsoft Entra user principal name, `user@domain` (`agent1@contoso.com`). UPNs compare
/// case-insensitively, so the value is kept in lower case.
///
/// ```
/// use presence_model::{SipUri, Upn};
/// let upn: Upn = "Agent1@Contoso.com".parse()?;
/// assert_eq!(upn.as_str(), "agent1@contoso.com");
/// let from_sip = Upn::from_sip(&"sip:agent1@contoso.com".parse::<SipUri>()?)?;
/// assert_eq!(from_sip, upn);
/// assert!("agent1".parse::<Upn>().is_err());
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Upn(Arc<str>);

impl Upn {
    /// A UPN, validated and lower-cased: one `@`, a non-empty name before it, a domain
    /// after it, visible ASCII without spaces, `/`, `\`, `?`, `#` or `%` (which would change
    /// the meaning of a Graph URL), at most 1024 bytes.
    pub fn new(s: &str) -> Result<Self, ModelError> {
        let err = |reason| ModelError::InvalidUpn {
            token: s.to_owned(),
            reason,
        };
        if s.len() > 1024 {
            return Err(err("it is longer than 1024 bytes"));
        }
        let lower = s.trim().to_ascii_lowercase();
        let Some((name, domain)) = lower.split_once('@') else {
            return Err(err("it must have the form `user@domain`"));
        };
        if name.is_empty() || domain.is_empty() {
            return Err(err("the parts before and after `@` must not be empty"));
        }
        if domain.contains('@') {
            return Err(err("it must hold exactly one `@`"));
        }
        let allowed = |b: u8| b.is_ascii_graphic() && !b"/\\?#%".contains(&b);
        if !lower.bytes().all(allowed) {
            return Err(err(
                "it may hold only visible ASCII characters other than / \\ ? # %",
            ));
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(err("the domain after `@` is not a domain name"));
        }
        Ok(Upn(Arc::from(lower)))
    }

    /// The UPN a SIP address stands for: its `user@host` (a Teams user's UPN is, in most
    /// tenants, the address their SfB SIP URI carried).
    pub fn from_sip(uri: &SipUri) -> Result<Self, ModelError> {
        Upn::new(&format!("{}@{}", uri.user(), uri.host()))
    }

    /// The UPN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Upn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Upn {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Upn::new(s)
    }
}

/// A Microsoft Entra object id: a GUID, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hexadecimal
/// (kept in lower case), as Graph's presence calls want it.
///
/// ```
/// use presence_model::EntraId;
/// let id: EntraId = "6E8B0B5A-3C3D-4E55-9F3B-0D5A1C2B3A4F".parse()?;
/// assert_eq!(id.as_str(), "6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f");
/// assert!("6e8b0b5a".parse::<EntraId>().is_err());
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntraId(Arc<str>);

impl EntraId {
    /// An object id, validated and lower-cased.
    pub fn new(s: &str) -> Result<Self, ModelError> {
        let lower = s.trim().to_ascii_lowercase();
        let groups: Vec<&str> = lower.split('-').collect();
        let shape = [8, 4, 4, 4, 12];
        let valid = groups.len() == shape.len()
            && groups
                .iter()
                .zip(shape)
                .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if !valid {
            return Err(ModelError::InvalidEntraId {
                token: s.chars().take(64).collect(),
            });
        }
        Ok(EntraId(Arc::from(lower)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EntraId {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntraId::new(s)
    }
}

/// How a platform knows a user.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserAddress {
    /// A SIP address of record (Skype for Business, SIP SIMPLE).
    Sip(SipUri),
    /// A Microsoft Entra user principal name; a Teams transport resolves it to an object id.
    Upn(Upn),
    /// A Microsoft Entra object id.
    EntraId(EntraId),
}

impl fmt::Display for UserAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserAddress::Sip(uri) => uri.fmt(f),
            UserAddress::Upn(upn) => upn.fmt(f),
            UserAddress::EntraId(id) => id.fmt(f),
        }
    }
}

/// A user as the bridge's transports know it: the platform the user lives on and the
/// address that platform knows the user by. Two DNs never share one.
///
/// Displayed as `platform:address`: `sfb:sip:agent1@contoso.com`,
/// `teams:agent1@contoso.com`.
///
/// ```
/// use presence_model::{Platform, UserAddress, UserId};
/// let user = UserId::sip(Platform::sfb(), "sip:agent1@contoso.com".parse()?);
/// assert_eq!(user.to_string(), "sfb:sip:agent1@contoso.com");
/// assert_eq!(user.sip_uri().map(|u| u.user()), Some("agent1"));
/// let teams = UserId::new(Platform::teams(), UserAddress::Upn("agent1@contoso.com".parse()?));
/// assert_eq!(teams.to_string(), "teams:agent1@contoso.com");
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId {
    platform: Platform,
    address: UserAddress,
}

impl UserId {
    /// A user on a platform.
    pub fn new(platform: Platform, address: UserAddress) -> Self {
        UserId { platform, address }
    }

    /// A user known by a SIP address.
    pub fn sip(platform: Platform, uri: SipUri) -> Self {
        UserId::new(platform, UserAddress::Sip(uri))
    }

    /// The platform.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The address.
    pub fn address(&self) -> &UserAddress {
        &self.address
    }

    /// The SIP address, when the user is known by one.
    pub fn sip_uri(&self) -> Option<&SipUri> {
        match &self.address {
            UserAddress::Sip(uri) => Some(uri),
            _ => None,
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn platforms() {
        for good in ["sfb", "Teams", " simple ", "my-pbx2"] {
            assert!(Platform::new(good).is_ok(), "{good}");
        }
        for bad in ["", "2sfb", "my pbx", "sfb_x", &"x".repeat(33)] {
            let err = Platform::new(bad).unwrap_err().to_string();
            assert!(err.contains("platform"), "{err}");
        }
        assert_eq!(Platform::new("SFB").unwrap(), Platform::sfb());
    }

    #[test]
    fn upns() {
        assert_eq!(Upn::new("A@B.com").unwrap().as_str(), "a@b.com");
        for bad in [
            "", "a", "@b", "a@", "a@b@c", "a b@c", "a@b/c", "a@.b", "a@b..c", "a#@b",
        ] {
            let err = Upn::new(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        let uri = SipUri::new("sip:first.last@contoso.com:5061").unwrap();
        assert_eq!(
            Upn::from_sip(&uri).unwrap().as_str(),
            "first.last@contoso.com"
        );
    }

    #[test]
    fn entra_ids() {
        assert!(EntraId::new("00000000-0000-0000-0000-000000000000").is_ok());
        for bad in [
            "",
            "0000000-0000-0000-0000-000000000000",
            "00000000-0000-0000-0000-00000000000g",
            "00000000000000000000000000000000",
            "00000000-0000-0000-0000-000000000000-0",
        ] {
            assert!(EntraId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_ids_order_and_display() {
        let a = UserId::sip(Platform::sfb(), SipUri::new("sip:a@x").unwrap());
        let b = UserId::sip(Platform::simple(), SipUri::new("sip:a@x").unwrap());
        assert_ne!(a, b, "the same address on two platforms is two users");
        let id = EntraId::new("6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f").unwrap();
        let t = UserId::new(Platform::teams(), UserAddress::EntraId(id));
        assert_eq!(t.to_string(), "teams:6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f");
        assert_eq!(t.sip_uri(), None);
    }

    proptest! {
        #[test]
        fn validators_never_panic(s in "\\PC{0,80}") {
            let _ = Platform::new(&s);
            let _ = Upn::new(&s);
            let _ = EntraId::new(&s);
        }
    }
}
