//! The TLS client configuration: rustls with the ring provider, the system's trust anchors
//! plus the optional `ca` file.

use std::path::Path;

use crate::GraphError;

/// A rustls client configuration (ring, TLS 1.2 and 1.3, ALPN h2 and http/1.1) trusting the
/// operating system's roots and, when given, the PEM certificates of `ca` (read now).
pub fn client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, GraphError> {
    let mut config = presence_tls::client_config(&presence_tls::ClientTls {
        keys: presence_tls::TlsKeys {
            ca: "teams.ca",
            certificate: "teams.certificate",
            private_key: "teams.private-key",
        },
        roots: presence_tls::Roots::SystemAndBundle(ca),
        client_certificate: None,
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
