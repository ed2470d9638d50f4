//! TLS client configuration from PEM files (rustls with the ring provider).

use std::sync::Arc;

use rustls::ClientConfig;

use crate::SfbError;
use crate::settings::TlsSettings;

/// A client configuration for mutual TLS with the pool: exactly the CAs of the bundle
/// that signs the pool's certificate, and the application's certificate and key.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<ClientConfig>, SfbError> {
    let ca = tls.ca.as_deref().ok_or_else(|| SfbError::Setting {
        key: "sfb.tls.ca",
        message: "TLS needs the CA bundle (PEM) that signs the pool's certificate".to_owned(),
    })?;
    let client_certificate = match (&tls.certificate, &tls.private_key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        (None, None) => None,
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
    let config = presence_tls::client_config(&presence_tls::ClientTls {
        keys: presence_tls::TlsKeys {
            ca: "sfb.tls.ca",
            certificate: "sfb.tls.certificate",
            private_key: "sfb.tls.private-key",
        },
        roots: presence_tls::Roots::Bundle(ca),
        client_certificate,
    })?;
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
