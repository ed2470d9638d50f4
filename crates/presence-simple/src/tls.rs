//! TLS client configuration (rustls with the ring provider): the system's trust anchors, or
//! the configured CA bundle, and an optional client certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::SimpleError;
use crate::settings::TlsSettings;

fn tls_error(message: String) -> SimpleError {
    SimpleError::Tls { message }
}

fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, SimpleError> {
    let read = |e: &dyn std::fmt::Display| {
        tls_error(format!("cannot read the {what} `{}`: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(&e))?;
    if certs.is_empty() {
        return Err(read(&"it holds no PEM certificate"));
    }
    Ok(certs)
}

/// A client configuration: with `ca`, exactly the certificates it holds are trusted (a
/// private presence server's CA); without, the operating system's roots. A client
/// certificate is presented when `certificate` and `private-key` are set.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, SimpleError> {
    let mut roots = RootCertStore::empty();
    match &tls.ca {
        Some(ca) => {
            for cert in certificates("CA bundle", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| tls_error(format!("the CA bundle `{}`: {e}", ca.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(tls_error(
                    "no trust anchors: the system's certificate store is empty and `ca` is not set"
                        .to_owned(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots);
    let config = match (&tls.certificate, &tls.private_key) {
        (Some(cert), Some(key)) => {
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                tls_error(format!(
                    "cannot read the private key `{}`: {e}",
                    key.display()
                ))
            })?;
            builder
                .with_client_auth_cert(certificates("client certificate", cert)?, key)
                .map_err(|e| {
                    tls_error(format!(
                        "the client certificate `{}` and its key do not fit together: {e}",
                        cert.display()
                    ))
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The presence server as `presence-tls` explains TLS failures about it: which settings
/// to change.
pub(crate) const SERVER: presence_tls::Peer<'static> = presence_tls::Peer {
    name: "the presence server",
    ca_setting: "`[simple.tls] ca`",
    name_setting: "`[simple.tls] server-name`",
    client_certificate_setting: Some("`[simple.tls] certificate` and `private-key`"),
};
