//! The TLS client configuration every transport builds the same way: rustls with the ring
//! provider, TLS 1.2 and 1.3, trust anchors from a PEM bundle and/or the operating system,
//! an optional client certificate. PEM files are read now, so that a missing or bad file is
//! refused at start (naming the file and its setting), not retried as a connection failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Which certificates a client trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roots<'a> {
    /// Exactly the certificates of this PEM bundle (a private CA: an SfB pool's).
    Bundle(&'a Path),
    /// The bundle when given, else the operating system's roots (a SIP presence server).
    BundleOrSystem(Option<&'a Path>),
    /// The operating system's roots, plus the bundle's certificates when given (Microsoft
    /// Graph, with a proxy's CA added).
    SystemAndBundle(Option<&'a Path>),
}

/// The settings' keys, as errors name them (`sfb.tls.ca`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsKeys {
    /// The CA bundle's key: `sfb.tls.ca`.
    pub ca: &'static str,
    /// The client certificate's key: `sfb.tls.certificate`.
    pub certificate: &'static str,
    /// The private key's key: `sfb.tls.private-key`.
    pub private_key: &'static str,
}

/// What a transport's TLS client is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientTls<'a> {
    /// The settings' keys, for errors.
    pub keys: TlsKeys,
    /// The trust anchors.
    pub roots: Roots<'a>,
    /// The client certificate chain (PEM) and its private key (PEM: PKCS#8, PKCS#1 or
    /// SEC1), presented when the server asks.
    pub client_certificate: Option<(&'a Path, &'a Path)>,
}

/// Why TLS material cannot be read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file cannot be read.
    #[error("`{key}`: cannot read the {what} `{}`", path.display())]
    Pem {
        /// The setting that names the file.
        key: &'static str,
        /// Which file: `CA bundle`, `client certificate`, `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: pem::Error,
    },
    /// A PEM file holds no certificate.
    #[error("`{key}`: the {what} `{}` holds no PEM certificate", path.display())]
    NoCertificate {
        /// The setting that names the file.
        key: &'static str,
        /// Which file: `CA bundle`, `client certificate`.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A certificate of the CA bundle cannot be a trust anchor.
    #[error("`{key}`: a certificate of the CA bundle `{}` cannot be used", path.display())]
    CaCertificate {
        /// The setting that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<rustls::Error>,
    },
    /// No trust anchor at all: the system's store is empty and no bundle is given.
    #[error(
        "`{key}`: no trust anchors: the system's certificate store is empty and `{key}` is not set"
    )]
    NoTrustAnchors {
        /// The CA bundle's setting.
        key: &'static str,
    },
    /// rustls refused the set-up (protocol versions with the provider).
    #[error("TLS set-up failed")]
    Setup {
        /// Why.
        #[source]
        source: Box<rustls::Error>,
    },
    /// The client certificate and the private key do not belong together.
    #[error(
        "`{setting}`: the client certificate `{}` and the key `{}` do not fit together",
        certificate.display(),
        key.display()
    )]
    ClientCertificate {
        /// The client certificate's setting.
        setting: &'static str,
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        source: Box<rustls::Error>,
    },
}

/// The rustls provider of every transport: ring (no aws-lc, no C toolchain beyond ring's).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file; a file with none is an error.
///
/// # Errors
/// [`TlsError::Pem`] or [`TlsError::NoCertificate`].
pub fn certificates(
    key: &'static str,
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::Pem {
        key,
        what,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            key,
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn add_bundle(key: &'static str, roots: &mut RootCertStore, ca: &Path) -> Result<(), TlsError> {
    for cert in certificates(key, "CA bundle", ca)? {
        roots.add(cert).map_err(|source| TlsError::CaCertificate {
            key,
            path: ca.to_owned(),
            source: Box::new(source),
        })?;
    }
    Ok(())
}

fn add_system(roots: &mut RootCertStore) {
    // A system certificate rustls cannot use is skipped, as browsers do.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
}

/// The client configuration `tls` describes (no ALPN: a caller that needs it sets
/// `alpn_protocols`).
///
/// # Errors
/// A [`TlsError`] naming the table, the file and why.
pub fn client_config(tls: &ClientTls<'_>) -> Result<ClientConfig, TlsError> {
    let keys = tls.keys;
    let mut roots = RootCertStore::empty();
    match tls.roots {
        Roots::Bundle(ca) | Roots::BundleOrSystem(Some(ca)) => add_bundle(keys.ca, &mut roots, ca)?,
        Roots::BundleOrSystem(None) => add_system(&mut roots),
        Roots::SystemAndBundle(ca) => {
            add_system(&mut roots);
            if let Some(ca) = ca {
                add_bundle(keys.ca, &mut roots, ca)?;
            }
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoTrustAnchors { key: keys.ca });
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Setup {
            source: Box::new(source),
        })?
        .with_root_certificates(roots);
    Ok(match tls.client_certificate {
        Some((certificate, key)) => {
            let chain = certificates(keys.certificate, "client certificate", certificate)?;
            let private = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Pem {
                key: keys.private_key,
                what: "private key",
                path: key.to_owned(),
                source,
            })?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|source| TlsError::ClientCertificate {
                    setting: keys.certificate,
                    certificate: certificate.to_owned(),
                    key: key.to_owned(),
                    source: Box::new(source),
                })?
        }
        None => builder.with_no_client_auth(),
    })
}
