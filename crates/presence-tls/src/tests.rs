//! Real rustls failures, from handshakes in memory (client and server pumped into each
//! other, no socket), each turned into its sentence.

use std::sync::Arc;
use std::time::Duration;

use presence_testpki::{ClientIdentity, ServerTls, TestPki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

use super::*;

const POOL: Peer<'static> = Peer {
    name: "the pool",
    ca_setting: "`[sfb.tls] ca`",
    name_setting: "`[sfb.tls] server-name`",
    client_certificate_setting: Some("`[sfb.tls] certificate` and `private-key`"),
};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts exactly the certificates of `ca_pem` and presents none.
fn client_trusting(ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Runs a handshake to `name` in memory, then one application record from the server;
/// the client's error, if any, as tokio-rustls returns it (inside an `io::Error`).
fn handshake(
    client: Arc<ClientConfig>,
    server: &ServerTls,
    name: &'static str,
) -> Option<std::io::Error> {
    let mut client =
        ClientConnection::new(client, ServerName::try_from(name).unwrap()).expect("a client");
    let mut server = ServerConnection::new(server.server_config().unwrap()).expect("a server");
    let mut sent_after_handshake = false;
    for _ in 0..20 {
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).unwrap();
        let mut slice = &bytes[..];
        while !slice.is_empty() {
            server.read_tls(&mut slice).unwrap();
        }
        // The server's refusal goes out as an alert; the client reads it below.
        let _ = server.process_new_packets();
        if !server.is_handshaking() && !sent_after_handshake {
            use std::io::Write;
            server.writer().write_all(b"hello").unwrap();
            sent_after_handshake = true;
        }
        let mut bytes = Vec::new();
        server.write_tls(&mut bytes).unwrap();
        let mut slice = &bytes[..];
        while !slice.is_empty() {
            client.read_tls(&mut slice).unwrap();
        }
        if let Err(error) = client.process_new_packets() {
            return Some(std::io::Error::new(std::io::ErrorKind::InvalidData, error));
        }
        if !client.is_handshaking() && sent_after_handshake && !client.wants_write() {
            return None;
        }
    }
    panic!("the handshake neither ended nor failed");
}

fn explained(error: &std::io::Error) -> String {
    POOL.handshake_failed("pool01.contoso.com", error)
}

#[test]
fn a_self_signed_ca_as_the_servers_certificate() {
    let server = ServerTls::self_signed(&["localhost"], true).unwrap();
    let error = handshake(
        client_trusting(&server.cert_chain_pem),
        &server,
        "localhost",
    )
    .expect("refused");
    assert!(
        error.to_string().contains("CaUsedAsEndEntity"),
        "rustls' own words: {error}"
    );
    let text = explained(&error);
    assert!(
        text.starts_with(
            "TLS handshake with `pool01.contoso.com` failed: the pool presented a CA certificate as its own (self-signed with CA:TRUE"
        ),
        "{text}"
    );
    for needle in [
        "issue the pool a leaf certificate (CA:FALSE, for server authentication) signed by that CA",
        "`[sfb.tls] ca`",
        "(rustls: invalid peer certificate: Other(OtherError(CaUsedAsEndEntity)))",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

/// The lab alternative the CA-as-leaf sentence offers works: a self-signed leaf trusted
/// as itself.
#[test]
fn a_self_signed_leaf_trusted_as_itself_is_accepted() {
    let server = ServerTls::self_signed(&["localhost"], false).unwrap();
    let error = handshake(
        client_trusting(&server.cert_chain_pem),
        &server,
        "localhost",
    );
    assert!(error.is_none(), "{error:?}");
}

#[test]
fn a_certificate_from_another_ca() {
    let pki = TestPki::localhost().unwrap();
    let error = handshake(
        client_trusting(&pki.other_ca_pem),
        &pki.server_tls(false),
        "localhost",
    )
    .expect("refused");
    let text = explained(&error);
    assert!(
        text.contains("the pool's certificate is not signed by a CA the bridge trusts: put the CA that issued it")
            && text.contains("in `[sfb.tls] ca`")
            && text.contains("UnknownIssuer"),
        "{text}"
    );
}

#[test]
fn a_certificate_for_another_name() {
    let pki = TestPki::new(&["sip.elsewhere.test"]).unwrap();
    let error = handshake(
        client_trusting(&pki.ca_pem),
        &pki.server_tls(false),
        "localhost",
    )
    .expect("refused");
    let text = explained(&error);
    assert!(
        text.contains("the pool's certificate is not valid for `localhost`, the name the bridge checks (it carries")
            && text.contains("sip.elsewhere.test")
            && text.contains("set `[sfb.tls] server-name` to one of its names"),
        "{text}"
    );
}

#[test]
fn a_server_that_wants_a_client_certificate() {
    let pki = TestPki::localhost().unwrap();
    let error = handshake(
        pki.client_config(ClientIdentity::None).unwrap(),
        &pki.server_tls(true),
        "localhost",
    )
    .expect("refused");
    // With TLS 1.3 the refusal comes after the client finished: as a read error.
    let text = POOL.read_failed(&error);
    assert!(
        text.starts_with("the pool ended the TLS session: the pool requires a client certificate and got none: set `[sfb.tls] certificate` and `private-key`"),
        "{text}"
    );
    let error = handshake(
        pki.client_config(ClientIdentity::Untrusted).unwrap(),
        &pki.server_tls(true),
        "localhost",
    )
    .expect("refused");
    let text = POOL.read_failed(&error);
    assert!(
        text.contains("the pool does not trust the CA that issued the bridge's client certificate")
            || text.contains("the pool refused the bridge's client certificate"),
        "{text}"
    );
}

#[test]
fn a_port_that_does_not_speak_tls() {
    let pki = TestPki::localhost().unwrap();
    let mut client = ClientConnection::new(
        client_trusting(&pki.ca_pem),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut answer: &[u8] = b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    client.read_tls(&mut answer).unwrap();
    let error = client.process_new_packets().unwrap_err();
    let text = POOL.explain_rustls(&error).expect("explained");
    assert!(
        text.starts_with("the pool does not answer in TLS: check that the port is its TLS port"),
        "{text}"
    );
}

#[test]
fn expiry_and_clock_problems_give_dates() {
    let day = 86_400;
    let not_after = UnixTime::since_unix_epoch(Duration::from_secs(1_767_225_600)); // 2026-01-01
    let time = UnixTime::since_unix_epoch(Duration::from_secs(1_767_225_600 + 40 * day));
    let error =
        rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { time, not_after });
    assert_eq!(
        POOL.explain_rustls(&error).unwrap(),
        "the pool's certificate expired on 2026-01-01 (40 days ago by this machine's clock): renew it on the pool, or set this machine's clock right if it is wrong"
    );
    let error = rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
        time: not_after,
        not_before: time,
    });
    let text = POOL.explain_rustls(&error).unwrap();
    assert!(
        text.contains("valid only from 2026-02-10 (40 days from now"),
        "{text}"
    );
    let error = rustls::Error::InvalidCertificate(CertificateError::Expired);
    assert!(
        POOL.explain_rustls(&error)
            .unwrap()
            .starts_with("the pool's certificate has expired: renew it")
    );
    assert_eq!(date(0), "1970-01-01");
    assert_eq!(date(951_782_400), "2000-02-29");
    assert_eq!(date(4_102_444_800), "2100-01-01");
}

#[test]
fn errors_are_found_through_their_chain_and_unknown_ones_keep_their_text() {
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error sending request")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }
    let refused = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
    let io = std::io::Error::other(refused);
    let outer = Outer(std::io::Error::other(io));
    assert!(matches!(
        find(&outer),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    ));
    assert!(POOL.explain(&outer).unwrap().contains("not signed by a CA"));

    let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    assert!(find(&plain).is_none());
    assert_eq!(
        POOL.handshake_failed("pool01.contoso.com", &plain),
        "TLS handshake with `pool01.contoso.com` failed: reset by peer"
    );
    assert_eq!(
        POOL.read_failed(&plain),
        "reading from the pool failed: reset by peer"
    );
    let unknown = std::io::Error::other(rustls::Error::DecryptError);
    assert_eq!(
        POOL.read_failed(&unknown),
        "the TLS session with the pool failed: cannot decrypt peer's message"
    );
}

/// Without client certificate settings (Teams) the alerts about client certificates
/// do not send anyone to a setting that does not exist.
#[test]
fn a_peer_without_client_certificates() {
    let graph = Peer {
        name: "`graph.microsoft.com`",
        ca_setting: "`[teams] ca`",
        name_setting: "`[teams] graph-url`",
        client_certificate_setting: None,
    };
    let text = graph
        .explain_rustls(&rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ))
        .unwrap();
    assert!(!text.contains("[teams]"), "{text}");
    assert!(
        graph
            .explain_rustls(&rustls::Error::AlertReceived(AlertDescription::UnknownCA))
            .is_none()
    );
}
