//! A validated configuration with its profiles compiled for the hot path.

use std::collections::HashMap;
use std::sync::Arc;

use presence_config::{Config, ProfileMode, Users};
use presence_model::{DnNumber, UserId};
use presence_pull::PullMapper;
use presence_push::PushTable;

use crate::EngineError;

/// What a profile does, compiled.
#[derive(Clone, Debug)]
pub(crate) enum Role {
    Push(Arc<PushTable>),
    Pull(Arc<PullMapper>),
    None,
}

impl Role {
    pub(crate) fn is_pull(&self) -> bool {
        matches!(self, Role::Pull(_))
    }

    pub(crate) fn is_push(&self) -> bool {
        matches!(self, Role::Push(_))
    }
}

/// A configuration the engine runs on: the validated [`Config`], the user of each DN on its
/// platform ([`Config::users`], resolved against the running transports), and, for every
/// profile, its push table or pull mapper.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    config: Arc<Config>,
    users: Users,
    roles: HashMap<DnNumber, Role>,
}

impl EngineConfig {
    /// Compiles every profile of a validated configuration.
    pub fn new(config: Config, users: Users) -> Result<Self, EngineError> {
        let mut roles = HashMap::new();
        for profile in config.profiles() {
            let role = match &profile.mode {
                ProfileMode::Push(push) => {
                    Role::Push(Arc::new(PushTable::compile(&push.states, &push.map)?))
                }
                ProfileMode::Pull(pull) => Role::Pull(Arc::new(PullMapper::new(&pull.ranges))),
                ProfileMode::None => Role::None,
            };
            roles.insert(profile.name.clone(), role);
        }
        Ok(EngineConfig {
            config: Arc::new(config),
            users,
            roles,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The DN's user, on its platform.
    pub fn user(&self, dn: &str) -> Option<&UserId> {
        self.users.get(dn)
    }

    /// Takes the DNs' users out: the engine keeps each in its DN's state, and the
    /// configuration without them (a map of 100,000 users is 6 MB).
    pub(crate) fn take_users(&mut self) -> Users {
        std::mem::take(&mut self.users)
    }

    pub(crate) fn role(&self, profile: Option<&DnNumber>) -> Role {
        profile
            .and_then(|name| self.roles.get(name))
            .cloned()
            .unwrap_or(Role::None)
    }
}
