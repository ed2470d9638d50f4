//! The crate's error type.

/// Why the simulator (or its server) cannot do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphSimError {
    /// The configuration cannot make a simulator.
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// No user has this UPN or id.
    #[error("no user `{0}` in the simulated tenant")]
    UnknownUser(String),
    /// No app registration has this client id.
    #[error("no app registration with client id `{0}`")]
    UnknownApp(String),
    /// Not an availability Graph knows.
    #[error("`{0}` is not an availability (Available, Busy, DoNotDisturb, Away, ...)")]
    UnknownAvailability(String),
    /// Not an application permission the simulator knows.
    #[error("`{0}` is not a permission (Presence.Read.All, Presence.ReadWrite.All, User.Read.All)")]
    UnknownPermission(String),
    /// An activity must be a non-empty word of letters and digits.
    #[error("`{0}` is not an activity (a word such as InACall)")]
    InvalidActivity(String),
    /// A fault was configured with a status that is not an error status.
    #[error("status {0} cannot be injected: use an error status 400..=599")]
    InvalidStatus(u16),
    /// Not an ISO 8601 duration the simulator reads (or a negative or unusable number of
    /// seconds).
    #[error("`{0}` is not a usable duration")]
    InvalidDuration(String),
    /// A socket operation failed.
    #[cfg(feature = "server")]
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TLS material could not be made or used.
    #[cfg(feature = "server")]
    #[error("TLS setup failed")]
    Pki(#[from] presence_testpki::PkiError),
}
