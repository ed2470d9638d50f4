//! Where a DN's presence profile comes from.

use std::fmt;

/// The level a DN's presence profile came from, in the order profile resolution tries
/// them: login session > Extension DN annex > application option. The configuration
/// resolves it; the contact-centre link reports it (`presence-profile-source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileSource {
    /// `presence-profile` in the login session's AttributeExtensions.
    Login,
    /// `presence-profile` in the Extension DN's annex.
    Dn,
    /// `presence-profile` in the application's `[TServer]` options.
    Application,
}

impl ProfileSource {
    /// `login`, `dn` or `application`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProfileSource::Login => "login",
            ProfileSource::Dn => "dn",
            ProfileSource::Application => "application",
        }
    }
}

impl fmt::Display for ProfileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
