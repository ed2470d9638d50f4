//! TLS client configuration (rustls with the ring provider): the system's trust anchors, or
//! the configured CA bundle, and an optional client certificate.

use std::sync::Arc;

use crate::SimpleError;
use crate::settings::TlsSettings;

/// A client configuration: with `ca`, exactly the certificates it holds are trusted (a
/// private presence server's CA); without, the operating system's roots. A client
/// certificate is presented when `certificate` and `private-key` are set.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, SimpleError> {
    let client_certificate = match (&tls.certificate, &tls.private_key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        _ => None,
    };
    let config = presence_tls::client_config(&presence_tls::ClientTls {
        keys: presence_tls::TlsKeys {
            ca: "simple.tls.ca",
            certificate: "simple.tls.certificate",
            private_key: "simple.tls.private-key",
        },
        roots: presence_tls::Roots::BundleOrSystem(tls.ca.as_deref()),
        client_certificate,
    })?;
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
