//! The TLS client configuration: rustls with the ring provider, the system's trust anchors
//! plus the optional `ca` file.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::GraphError;

/// A rustls client configuration (ring, TLS 1.2 and 1.3, ALPN h2 and http/1.1) trusting the
/// operating system's roots and, when given, the PEM certificates of `ca` (read now).
pub fn client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, GraphError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    for error in &native.errors {
        tracing::debug!(%error, "a system trust anchor could not be loaded");
    }
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|source| GraphError::CaFile {
            path: path.to_owned(),
            source,
        })?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|source| GraphError::CaPem {
                path: path.to_owned(),
                source,
            })?;
            roots.add(cert).map_err(GraphError::Tls)?;
            added += 1;
        }
        if added == 0 {
            return Err(GraphError::Setting {
                key: "teams.ca",
                message: format!("`{}` holds no PEM certificate", path.display()),
            });
        }
    }
    if roots.is_empty() {
        return Err(GraphError::Setting {
            key: "teams.ca",
            message:
                "no trust anchors: the system's certificate store is empty and `ca` is not set"
                    .to_owned(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(GraphError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
