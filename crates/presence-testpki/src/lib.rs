//! # presence-testpki
//!
//! A **throw-away test PKI** made with rcgen at run time, and rustls server and client
//! configurations built from PEM, for tests and simulators (never for production: the
//! keys live in memory and in plain files, and nothing is ever revoked).
//!
//! - [`TestPki`]: a CA, a server certificate for the names you give (for example
//!   `localhost` and `127.0.0.1`), a client certificate signed by the same CA, and an
//!   unrelated second CA with a client certificate of its own for "unknown CA" cases;
//!   [`TestPki::write_to`] writes them as PEM files ([`TestPkiFiles`]).
//! - [`ServerTls`]: a server's certificate chain and key (and optionally the CA client
//!   certificates must come from: mutual TLS) as PEM text, read from files or taken from a
//!   [`TestPki`], turned into a rustls [`ServerConfig`].
//! - [`TestPki::client_config`]: a rustls [`ClientConfig`] that
//!   trusts the test CA and presents the certificate a [`ClientIdentity`] names.
//!
//! Every rustls configuration uses the **ring** provider (no aws-lc, no OpenSSL), TLS 1.2
//! and 1.3. Errors are [`PkiError`]s.
//!
//! ```
//! use presence_testpki::{ClientIdentity, TestPki};
//!
//! let pki = TestPki::localhost()?;
//! let server = pki.server_tls(true).server_config()?; // mutual TLS required
//! let client = pki.client_config(ClientIdentity::Trusted)?;
//! # let _ = (server, client);
//! # Ok::<(), presence_testpki::PkiError>(())
//! ```
#![deny(missing_docs)]

mod error;

pub use error::PkiError;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The rustls provider: ring (no aws-lc).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(what: &'static str, pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| PkiError::Pem { what, source })?;
    if certs.is_empty() {
        return Err(PkiError::NoCertificate { what });
    }
    Ok(certs)
}

fn private_key(what: &'static str, pem: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|source| PkiError::Pem { what, source })
}

fn roots(what: &'static str, pem: &str) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(what, pem)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

/// The server side of TLS: the server's certificate chain and key, and optionally the
/// CA that must sign the client's certificate (mutual TLS).
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The server's certificate chain, PEM (leaf first).
    pub cert_chain_pem: String,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
    /// When set, a client certificate signed by one of these CAs (PEM) is **required**.
    pub client_ca_pem: Option<String>,
}

impl ServerTls {
    /// Reads the PEM files.
    ///
    /// # Errors
    /// [`PkiError::Io`] when a file cannot be read.
    pub fn from_files(
        cert_chain: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<ServerTls, PkiError> {
        Ok(ServerTls {
            cert_chain_pem: read(cert_chain)?,
            key_pem: read(key)?,
            client_ca_pem: client_ca.map(read).transpose()?,
        })
    }

    /// A server whose certificate is **self-signed** for `names` (DNS names or IP
    /// addresses), with no client certificate required: the certificate is its own issuer,
    /// so a client trusts it by taking [`cert_chain_pem`](Self::cert_chain_pem) as its CA.
    ///
    /// With `ca`, the certificate says `CA:TRUE` (basic constraints), as the self-signed
    /// certificates of many appliances and quick `openssl req -x509` set-ups do: a client
    /// that trusts it still refuses it, since a CA certificate may not be a server's own
    /// (webpki's `CaUsedAsEndEntity`). Without, it is a leaf (`CA:FALSE`, server
    /// authentication).
    ///
    /// # Errors
    /// [`PkiError::Certificate`] when rcgen fails (for example an invalid DNS name).
    pub fn self_signed(names: &[&str], ca: bool) -> Result<ServerTls, PkiError> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::DigitalSignature,
            ];
        } else {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(ServerTls {
            cert_chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            client_ca_pem: None,
        })
    }

    /// The rustls configuration (ring provider, TLS 1.2 and 1.3).
    ///
    /// # Errors
    /// [`PkiError::Pem`] / [`PkiError::NoCertificate`] for unreadable PEM,
    /// [`PkiError::Tls`] for a key that does not fit, [`PkiError::ClientVerifier`] for an
    /// unusable client CA.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, PkiError> {
        let chain = certificates("server certificate chain", &self.cert_chain_pem)?;
        let key = private_key("server private key", &self.key_pem)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let config = match &self.client_ca_pem {
            Some(ca) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots("client CA", ca)?),
                    provider(),
                )
                .build()?;
                builder
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(chain, key)?
            }
            None => builder.with_no_client_auth().with_single_cert(chain, key)?,
        };
        Ok(Arc::new(config))
    }
}

/// Which certificate a test client presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIdentity {
    /// None at all.
    None,
    /// [`TestPki::client_cert_pem`], signed by the test CA.
    Trusted,
    /// [`TestPki::other_client_cert_pem`], signed by the unrelated CA.
    Untrusted,
}

/// A throw-away PKI made with rcgen (ECDSA P-256 keys): everything a TLS test needs.
///
/// - [`ca_pem`](Self::ca_pem): the test CA; it signs the server and the client certificate.
/// - the server certificate names the `names` given to [`TestPki::new`] (DNS names or IP
///   addresses), for a server on loopback `localhost` / `127.0.0.1`;
/// - the client certificate names [`TestPki::CLIENT_NAME`];
/// - [`other_ca_pem`](Self::other_ca_pem): an unrelated CA, and a client certificate it
///   signed, for "unknown CA" tests in both directions.
#[derive(Clone)]
pub struct TestPki {
    /// The test CA certificate.
    pub ca_pem: String,
    /// The server certificate (signed by the test CA).
    pub server_cert_pem: String,
    /// The server's private key.
    pub server_key_pem: String,
    /// The client certificate (signed by the test CA).
    pub client_cert_pem: String,
    /// The client's private key.
    pub client_key_pem: String,
    /// An unrelated CA.
    pub other_ca_pem: String,
    /// A client certificate signed by the unrelated CA.
    pub other_client_cert_pem: String,
    /// Its private key.
    pub other_client_key_pem: String,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

/// The files [`TestPki::write_to`] wrote.
#[derive(Clone, Debug)]
pub struct TestPkiFiles {
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `server.pem`.
    pub server_cert: PathBuf,
    /// `server.key`.
    pub server_key: PathBuf,
    /// `client.pem`.
    pub client_cert: PathBuf,
    /// `client.key`.
    pub client_key: PathBuf,
    /// `other-ca.pem`.
    pub other_ca: PathBuf,
    /// `other-client.pem`.
    pub other_client_cert: PathBuf,
    /// `other-client.key`.
    pub other_client_key: PathBuf,
}

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

/// A leaf certificate for `names`: (certificate PEM, key PEM).
fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), PkiError> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone())?;
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, first);
    }
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl TestPki {
    /// The name of the client certificate (a trusted application's FQDN).
    pub const CLIENT_NAME: &'static str = "bridge.presence.test";

    /// A PKI whose server certificate names `names` (for example `["localhost",
    /// "127.0.0.1"]`).
    ///
    /// # Errors
    /// [`PkiError::Certificate`] when rcgen fails (for example an invalid DNS name).
    pub fn new(names: &[&str]) -> Result<TestPki, PkiError> {
        let ca = ca("presence-testpki test CA")?;
        let other = ca_other()?;
        let (server_cert_pem, server_key_pem) =
            leaf(names, ExtendedKeyUsagePurpose::ServerAuth, &ca)?;
        let (client_cert_pem, client_key_pem) = leaf(
            &[Self::CLIENT_NAME],
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca,
        )?;
        let (other_client_cert_pem, other_client_key_pem) = leaf(
            &[Self::CLIENT_NAME],
            ExtendedKeyUsagePurpose::ClientAuth,
            &other,
        )?;
        Ok(TestPki {
            ca_pem: ca.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
            other_ca_pem: other.pem(),
            other_client_cert_pem,
            other_client_key_pem,
        })
    }

    /// A PKI for a server on loopback: names `localhost` and `127.0.0.1`.
    ///
    /// # Errors
    /// As [`TestPki::new`].
    pub fn localhost() -> Result<TestPki, PkiError> {
        TestPki::new(&["localhost", "127.0.0.1"])
    }

    /// A server's TLS settings: the server certificate, and with
    /// `require_client_cert` the test CA as the CA client certificates must come from.
    pub fn server_tls(&self, require_client_cert: bool) -> ServerTls {
        ServerTls {
            cert_chain_pem: self.server_cert_pem.clone(),
            key_pem: self.server_key_pem.clone(),
            client_ca_pem: require_client_cert.then(|| self.ca_pem.clone()),
        }
    }

    /// A client configuration that trusts the test CA and presents `identity`.
    ///
    /// # Errors
    /// [`PkiError::Tls`] / [`PkiError::Pem`] if the material is unusable.
    pub fn client_config(&self, identity: ClientIdentity) -> Result<Arc<ClientConfig>, PkiError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots("test CA", &self.ca_pem)?);
        let (cert, key) = match identity {
            ClientIdentity::None => return Ok(Arc::new(builder.with_no_client_auth())),
            ClientIdentity::Trusted => (&self.client_cert_pem, &self.client_key_pem),
            ClientIdentity::Untrusted => (&self.other_client_cert_pem, &self.other_client_key_pem),
        };
        let config = builder.with_client_auth_cert(
            certificates("client certificate", cert)?,
            private_key("client private key", key)?,
        )?;
        Ok(Arc::new(config))
    }

    /// Writes the PEM files into `dir` (which must exist): `ca.pem`, `server.pem`,
    /// `server.key`, `client.pem`, `client.key`, `other-ca.pem`, `other-client.pem`,
    /// `other-client.key`.
    ///
    /// # Errors
    /// [`PkiError::Io`] when a file cannot be written.
    pub fn write_to(&self, dir: &Path) -> Result<TestPkiFiles, PkiError> {
        let write = |name: &str, pem: &str| -> Result<PathBuf, PkiError> {
            let path = dir.join(name);
            std::fs::write(&path, pem).map_err(|source| PkiError::Io {
                action: "write",
                path: path.clone(),
                source,
            })?;
            Ok(path)
        };
        Ok(TestPkiFiles {
            ca: write("ca.pem", &self.ca_pem)?,
            server_cert: write("server.pem", &self.server_cert_pem)?,
            server_key: write("server.key", &self.server_key_pem)?,
            client_cert: write("client.pem", &self.client_cert_pem)?,
            client_key: write("client.key", &self.client_key_pem)?,
            other_ca: write("other-ca.pem", &self.other_ca_pem)?,
            other_client_cert: write("other-client.pem", &self.other_client_cert_pem)?,
            other_client_key: write("other-client.key", &self.other_client_key_pem)?,
        })
    }
}

fn ca_other() -> Result<CertifiedIssuer<'static, KeyPair>, PkiError> {
    ca("unrelated test CA")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pki_makes_usable_configurations() {
        let pki = TestPki::localhost().unwrap();
        assert!(pki.server_tls(true).server_config().is_ok());
        assert!(pki.server_tls(false).server_config().is_ok());
        for identity in [
            ClientIdentity::None,
            ClientIdentity::Trusted,
            ClientIdentity::Untrusted,
        ] {
            assert!(pki.client_config(identity).is_ok(), "{identity:?}");
        }
        assert_ne!(pki.ca_pem, pki.other_ca_pem);
    }

    #[test]
    fn self_signed_servers_serve() {
        for ca in [true, false] {
            let tls = ServerTls::self_signed(&["localhost", "127.0.0.1"], ca).unwrap();
            assert!(tls.server_config().is_ok(), "ca {ca}");
            assert!(tls.client_ca_pem.is_none());
        }
    }

    #[test]
    fn bad_pem_is_reported_by_what_it_is() {
        let pki = TestPki::localhost().unwrap();
        let mut tls = pki.server_tls(true);
        tls.cert_chain_pem = "no pem here".to_owned();
        assert!(matches!(
            tls.server_config(),
            Err(PkiError::NoCertificate {
                what: "server certificate chain"
            })
        ));
        let mut tls = pki.server_tls(false);
        tls.key_pem = pki.ca_pem;
        assert!(matches!(
            tls.server_config(),
            Err(PkiError::Pem {
                what: "server private key",
                ..
            })
        ));
        assert!(matches!(
            TestPki::new(&["caf\u{e9}.test"]),
            Err(PkiError::Certificate(_))
        ));
    }

    #[test]
    fn files_are_written_and_read_back() {
        let dir = std::env::temp_dir().join(format!("presence-testpki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = TestPki::localhost().unwrap();
        let files = pki.write_to(&dir).unwrap();
        let tls =
            ServerTls::from_files(&files.server_cert, &files.server_key, Some(&files.ca)).unwrap();
        assert_eq!(tls.client_ca_pem.as_deref(), Some(pki.ca_pem.as_str()));
        assert!(tls.server_config().is_ok());
        assert!(matches!(
            ServerTls::from_files(&dir.join("missing.pem"), &files.server_key, None),
            Err(PkiError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
