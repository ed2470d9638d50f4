//! The crate's error type.

use std::path::PathBuf;

/// Why test TLS material cannot be made, read or turned into a rustls configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A PEM file could not be read or written.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// PEM text could not be read.
    #[error("cannot read the {what} PEM")]
    Pem {
        /// Which PEM: `server certificate chain`, `server private key`, `client CA`, ...
        what: &'static str,
        /// The PEM error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// PEM text holds no certificate.
    #[error("the {what} PEM holds no certificate")]
    NoCertificate {
        /// Which PEM.
        what: &'static str,
    },
    /// rustls refused the TLS configuration (for example a key that does not fit the
    /// certificate).
    #[error("TLS configuration refused")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (for example an empty CA).
    #[error("client-certificate verifier refused")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    /// rcgen could not make a test certificate.
    #[error("cannot make a test certificate")]
    Certificate(#[from] rcgen::Error),
}
