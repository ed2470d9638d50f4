//! TLS client configuration from PEM files (rustls with the ring provider).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::SfbError;
use crate::settings::TlsSettings;

fn pem_error(what: &'static str, path: &Path, error: impl std::fmt::Display) -> SfbError {
    SfbError::Tls {
        message: format!("cannot read the {what} `{}`: {error}", path.display()),
    }
}

/// Reads every certificate of a PEM file; an empty file is an error.
pub(crate) fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SfbError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(what, path, "it holds no PEM certificate"));
    }
    Ok(certs)
}

/// Reads a private key (PKCS#8, PKCS#1 or SEC1) from a PEM file.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, SfbError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error("private key", path, e))
}

/// The rustls provider: ring (no C toolchain beyond what ring needs, no aws-lc).
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration for mutual TLS with the pool: the CA bundle that signs the
/// pool's certificate, and the application's certificate and key.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<ClientConfig>, SfbError> {
    let ca = tls.ca.as_deref().ok_or_else(|| SfbError::Setting {
        key: "sfb.tls.ca",
        message: "TLS needs the CA bundle (PEM) that signs the pool's certificate".to_owned(),
    })?;
    let mut roots = RootCertStore::empty();
    for cert in certificates("CA bundle", ca)? {
        roots.add(cert).map_err(|e| pem_error("CA bundle", ca, e))?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SfbError::Tls {
            message: format!("TLS set-up failed: {e}"),
        })?
        .with_root_certificates(roots);
    let config = match (&tls.certificate, &tls.private_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certificates("client certificate", cert)?, private_key(key)?)
            .map_err(|e| SfbError::Tls {
                message: format!(
                    "the client certificate `{}` and key `{}` do not fit together: {e}",
                    cert.display(),
                    key.display()
                ),
            })?,
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(SfbError::Setting {
                key: "sfb.tls.private-key",
                message: "a client certificate needs its private key".to_owned(),
            });
        }
        (None, Some(_)) => {
            return Err(SfbError::Setting {
                key: "sfb.tls.certificate",
                message: "a private key needs its client certificate".to_owned(),
            });
        }
    };
    Ok(Arc::new(config))
}

/// The pool as `presence-tls` explains TLS failures about it: which settings to change.
const POOL: presence_tls::Peer<'static> = presence_tls::Peer {
    name: "the pool",
    ca_setting: "`[sfb.tls] ca`",
    name_setting: "`[sfb.tls] server-name`",
    client_certificate_setting: Some("`[sfb.tls] certificate` and `private-key`"),
};

/// A readable explanation of a failed read: a TLS alert from the pool (with TLS 1.3 a
/// refused client certificate shows up here, after the handshake) says what to fix.
pub(crate) fn explain_read_error(error: &std::io::Error) -> String {
    POOL.read_failed(error)
}

/// A readable explanation of a failed TLS handshake: the cause and the setting to fix.
pub(crate) fn explain_handshake(error: &std::io::Error, server_name: &str) -> String {
    POOL.handshake_failed(server_name, error)
}
