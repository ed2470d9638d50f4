//! The simulator's settings: the tenant, its app registrations and users, and the limits.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::Permission;
use crate::rng::name_guid;

/// An app registration of the tenant that may get tokens with the client-credentials
/// grant. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AppRegistration {
    /// The application (client) id, a GUID.
    pub client_id: String,
    /// The client secret (its value, not its id).
    pub client_secret: String,
    /// The application permissions granted (admin-consented) to it.
    pub permissions: BTreeSet<Permission>,
}

impl AppRegistration {
    /// An app with `Presence.ReadWrite.All` and `User.Read.All`.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> AppRegistration {
        AppRegistration {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            permissions: [Permission::PresenceReadWriteAll, Permission::UserReadAll].into(),
        }
    }

    /// The same app with exactly `permissions`.
    #[must_use]
    pub fn with_permissions(mut self, permissions: impl IntoIterator<Item = Permission>) -> Self {
        self.permissions = permissions.into_iter().collect();
        self
    }
}

impl fmt::Debug for AppRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRegistration")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// A user of the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUser {
    /// The object id, a GUID.
    pub id: String,
    /// The user principal name (`agent1@contoso.com`), matched case-insensitively.
    pub upn: String,
}

impl SimUser {
    /// A user whose object id is derived from the UPN: the same UPN always gets the same
    /// id (whatever the seed), so tests can compute it.
    pub fn new(upn: impl Into<String>) -> SimUser {
        let upn = upn.into();
        SimUser {
            id: name_guid(&format!("user:{upn}")),
            upn,
        }
    }

    /// The `i`-th generated user: `agent{i}@contoso.com`.
    pub fn generated(i: usize) -> SimUser {
        SimUser::new(format!("agent{i}@contoso.com"))
    }
}

/// The throttling budget of presence requests, per (app, tenant): at most `requests` in
/// any sliding window of `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Requests accepted per window. Default 1500.
    pub requests: u32,
    /// The window. Default 30 s.
    pub window: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            requests: 1500,
            window: Duration::from_secs(30),
        }
    }
}

/// What the simulated tenant holds and how it behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The tenant's domain name, usable in the token URL. Default
    /// `contoso.onmicrosoft.com`.
    pub tenant: String,
    /// The tenant id (a GUID), usable in the token URL too.
    pub tenant_id: String,
    /// The app registrations. Default: one, [`SimConfig::DEFAULT_CLIENT_ID`] with
    /// [`SimConfig::DEFAULT_CLIENT_SECRET`] and both default permissions.
    pub apps: Vec<AppRegistration>,
    /// The users. Default none (see [`SimConfig::with_generated_users`]).
    pub users: Vec<SimUser>,
    /// How long an access token is valid. Default 3599 s (`expires_in` is its whole
    /// seconds).
    pub token_lifetime: Duration,
    /// The presence-request budget per app.
    pub budget: Budget,
    /// The most ids `getPresencesByUserId` takes. Default 650.
    pub max_batch_ids: usize,
    /// How long an app session set to Available/Available shows Available before it
    /// shows Available/AvailableInactive. Default 5 minutes.
    pub available_timeout: Duration,
    /// How long after it was set such a session shows Away/Away. Default 10 minutes.
    pub away_timeout: Duration,
    /// Seeds tokens and request ids: the same seed and inputs give the same run.
    pub seed: u64,
    /// The wall-clock time at the simulator's start, for the dates it writes
    /// (`innerError.date`, `timestamp`, `publishedDateTime`). `None`: the server uses the
    /// current time, the core 2025-01-01T00:00:00Z (deterministic).
    pub wall_clock_start: Option<SystemTime>,
    /// How many [`WriteRecord`](crate::WriteRecord)s are kept (the oldest go first).
    /// Default 100 000.
    pub max_write_records: usize,
    /// How many [`SimEvent`](crate::SimEvent)s wait for
    /// [`poll_event`](crate::GraphWorld::poll_event) (the oldest go first). Default 4096.
    pub max_events: usize,
}

impl SimConfig {
    /// The client id of the default app registration.
    pub const DEFAULT_CLIENT_ID: &'static str = "6e5f9a3c-1b2d-4c8e-9f0a-7b6c5d4e3f21";
    /// The client secret of the default app registration.
    pub const DEFAULT_CLIENT_SECRET: &'static str = "sim-secret-change-me";
    /// The default tenant.
    pub const DEFAULT_TENANT: &'static str = "contoso.onmicrosoft.com";

    /// Adds `agent1@contoso.com` .. `agent{n}@contoso.com` (see [`SimUser::generated`]).
    #[must_use]
    pub fn with_generated_users(mut self, n: usize) -> Self {
        self.users.extend((1..=n).map(SimUser::generated));
        self
    }

    /// Adds a user with a derived id (see [`SimUser::new`]).
    #[must_use]
    pub fn with_user(mut self, upn: impl Into<String>) -> Self {
        self.users.push(SimUser::new(upn));
        self
    }

    /// Adds an app registration.
    #[must_use]
    pub fn with_app(mut self, app: AppRegistration) -> Self {
        self.apps.push(app);
        self
    }

    /// The object id of the user with this UPN (case-insensitive) or id.
    pub fn user_id(&self, user: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.upn.eq_ignore_ascii_case(user) || u.id.eq_ignore_ascii_case(user))
            .map(|u| u.id.as_str())
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tenant: SimConfig::DEFAULT_TENANT.to_owned(),
            tenant_id: name_guid(&format!("tenant:{}", SimConfig::DEFAULT_TENANT)),
            apps: vec![AppRegistration::new(
                SimConfig::DEFAULT_CLIENT_ID,
                SimConfig::DEFAULT_CLIENT_SECRET,
            )],
            users: Vec::new(),
            token_lifetime: Duration::from_secs(3599),
            budget: Budget::default(),
            max_batch_ids: 650,
            available_timeout: Duration::from_secs(5 * 60),
            away_timeout: Duration::from_secs(10 * 60),
            seed: 1,
            wall_clock_start: None,
            max_write_records: 100_000,
            max_events: 4096,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_helpers() {
        let config = SimConfig::default().with_generated_users(3);
        assert_eq!(config.users.len(), 3);
        assert_eq!(config.users[2].upn, "agent3@contoso.com");
        let id = config.user_id("Agent2@Contoso.com").unwrap();
        assert_eq!(id, SimUser::generated(2).id);
        assert_eq!(config.user_id(&id.to_uppercase()), Some(id));
        assert_eq!(config.user_id("nobody@contoso.com"), None);
        let debug = format!("{:?}", config.apps[0]);
        assert!(!debug.contains(SimConfig::DEFAULT_CLIENT_SECRET), "{debug}");
        assert!(debug.contains(SimConfig::DEFAULT_CLIENT_ID), "{debug}");
    }
}
