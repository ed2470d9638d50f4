//! The crate's error type.

use crate::ConnId;

/// Why the simulator (or its server) cannot do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The connection is not open (never opened, or closed).
    #[error("{0} is not an open connection of the simulator")]
    UnknownConnection(ConnId),
    /// The peer sent bytes that are not SIP: the framer lost its place in the stream and
    /// the connection must be closed.
    #[error("{conn} sent bytes that are not SIP; close the connection")]
    Framing {
        /// The connection.
        conn: ConnId,
        /// The framer's error.
        #[source]
        source: presence_sip::SipError,
    },
    /// More bytes wait to be written to the peer than the limit allows: it does not read.
    /// The simulator closed the connection.
    #[error(
        "{conn}: more than {limit} bytes wait to be written (the peer does not read); the \
         connection was closed"
    )]
    Backlog {
        /// The connection.
        conn: ConnId,
        /// [`SimConfig::max_backlog`](crate::SimConfig::max_backlog).
        limit: usize,
    },
    /// A fault was configured with a status that is not a final failure.
    #[error("status {0} cannot be injected: use a failure status 300..=699")]
    InvalidStatus(u16),
    /// A socket or file operation failed.
    #[cfg(feature = "server")]
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TLS material could not be read or used (see [`crate::tls`]).
    #[cfg(feature = "server")]
    #[error("TLS setup failed")]
    Pki(#[from] presence_testpki::PkiError),
}
