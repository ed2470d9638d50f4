//! # presence-tls
//!
//! What the bridge's TLS transports (Skype for Business, SIP SIMPLE, Microsoft Teams) share
//! about TLS failures. rustls reports a refused certificate or an alert as a code
//! (`invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))`); a [`Peer`] turns it
//! into a sentence that says what is wrong and what to change, naming the transport's own
//! settings, and keeps rustls' text in parentheses for searching.
//!
//! Each transport describes its peer once (the pool, the presence server, an Entra or
//! Graph host) and calls [`Peer::handshake_failed`] when a handshake fails,
//! [`Peer::read_failed`] when an established TLS session breaks, or [`Peer::explain`] to
//! add the sentence to a message of its own. The rustls error is found anywhere in the
//! error's chain ([`find`]), also inside a `std::io::Error` (as tokio-rustls returns it)
//! or an HTTP client's error.
//!
//! ```
//! use presence_tls::Peer;
//!
//! let pool = Peer {
//!     name: "the pool",
//!     ca_setting: "`[sfb.tls] ca`",
//!     name_setting: "`[sfb.tls] server-name`",
//!     client_certificate_setting: Some("`[sfb.tls] certificate` and `private-key`"),
//! };
//! // As tokio-rustls returns a refused certificate.
//! let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
//! let error = std::io::Error::new(std::io::ErrorKind::InvalidData, refused);
//! assert_eq!(
//!     pool.handshake_failed("pool01.contoso.com", &error),
//!     "TLS handshake with `pool01.contoso.com` failed: the pool's certificate is not signed \
//!      by a CA the bridge trusts: put the CA that issued it (its root, and any intermediate \
//!      CA the pool does not send along) in `[sfb.tls] ca` \
//!      (rustls: invalid peer certificate: UnknownIssuer)"
//! );
//! ```
//!
//! [`client_config`] builds the transports' TLS client configuration the one way they all
//! build it (rustls with ring; trust anchors from a PEM bundle and/or the system; an
//! optional client certificate), reading the PEM files at start; [`TlsError`] says which
//! file of which table is wrong and why. Apart from reading those files and the system's
//! trust store, the crate does no I/O.
#![deny(missing_docs)]

mod client;

pub use client::{ClientTls, Roots, TlsError, TlsKeys, certificates, client_config, provider};

use std::error::Error as StdError;

use rustls::{AlertDescription, CertificateError};

/// The other end of a TLS connection as a transport sees it: how to call it in a
/// sentence, and which settings decide how the bridge checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer<'a> {
    /// The peer as it reads in a sentence: `the pool`, `the presence server`,
    /// `` `login.microsoftonline.com` ``.
    pub name: &'a str,
    /// The setting that holds the CAs the bridge trusts for it, quoted:
    /// `` `[sfb.tls] ca` ``.
    pub ca_setting: &'a str,
    /// The setting that decides the name its certificate must carry, quoted:
    /// `` `[sfb.tls] server-name` ``.
    pub name_setting: &'a str,
    /// The settings of the client certificate the bridge presents, quoted (`` `[sfb.tls]
    /// certificate` and `private-key` ``); `None` when the transport presents none.
    pub client_certificate_setting: Option<&'a str>,
}

/// The rustls error in `error` or in its chain of sources, looking inside every
/// `std::io::Error` on the way (whose `source()` skips the error it wraps).
pub fn find<'e>(error: &'e (dyn StdError + 'static)) -> Option<&'e rustls::Error> {
    let mut next = Some(error);
    // A chain is short; the bound only guards against a cycle.
    for _ in 0..32 {
        let current = next?;
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
    }
    None
}

impl Peer<'_> {
    /// The message for a failed TLS handshake with `server` (the name the bridge connects
    /// to): `` TLS handshake with `server` failed: `` and the explanation with rustls'
    /// text in parentheses, or just the error's text when there is no explanation.
    pub fn handshake_failed(&self, server: &str, error: &(dyn StdError + 'static)) -> String {
        format!(
            "TLS handshake with `{server}` failed: {}",
            self.explained_or_text(error)
        )
    }

    /// The message for an established TLS session that broke: an alert from the peer
    /// (with TLS 1.3 a refused client certificate shows up here, after the handshake),
    /// another TLS failure, or a plain I/O error.
    pub fn read_failed(&self, error: &(dyn StdError + 'static)) -> String {
        match find(error) {
            Some(rustls::Error::AlertReceived(_)) => format!(
                "{} ended the TLS session: {}",
                self.name,
                self.explained_or_text(error)
            ),
            Some(_) => format!(
                "the TLS session with {} failed: {}",
                self.name,
                self.explained_or_text(error)
            ),
            None => format!("reading from {} failed: {error}", self.name),
        }
    }

    /// The explanation followed by rustls' text in parentheses, or the error's text.
    fn explained_or_text(&self, error: &(dyn StdError + 'static)) -> String {
        match find(error).and_then(|tls| Some((tls, self.explain_rustls(tls)?))) {
            Some((tls, sentence)) => format!("{sentence} (rustls: {tls})"),
            None => error.to_string(),
        }
    }

    /// What the rustls error in `error`'s chain means and how to fix it, in one sentence;
    /// `None` when there is none or it is not one this crate knows.
    pub fn explain(&self, error: &(dyn StdError + 'static)) -> Option<String> {
        self.explain_rustls(find(error)?)
    }

    /// What a rustls error means and how to fix it, in one sentence; `None` for errors
    /// this crate does not know (their own text is then the best there is).
    pub fn explain_rustls(&self, error: &rustls::Error) -> Option<String> {
        let n = self.name;
        match error {
            rustls::Error::InvalidCertificate(certificate) => self.certificate(certificate),
            rustls::Error::AlertReceived(alert) => self.alert(*alert),
            rustls::Error::InvalidMessage(_) => Some(format!(
                "{n} does not answer in TLS: check that the port is its TLS port (not a plain TCP one) and that it expects TLS there"
            )),
            rustls::Error::PeerIncompatible(_) => Some(format!(
                "{n} and the bridge have no TLS version, cipher suite or key exchange in common: the bridge speaks TLS 1.2 and 1.3 with forward-secret cipher suites only; enable those on {n}"
            )),
            rustls::Error::NoCertificatesPresented => {
                Some(format!("{n} sent no certificate: configure one on {n}"))
            }
            _ => None,
        }
    }

    // rustls still reports the deprecated variants where the context is not known.
    #[allow(deprecated)]
    fn certificate(&self, error: &CertificateError) -> Option<String> {
        let n = self.name;
        let ca = self.ca_setting;
        let name_setting = self.name_setting;
        Some(match error {
            CertificateError::UnknownIssuer => format!(
                "{n}'s certificate is not signed by a CA the bridge trusts: put the CA that issued it (its root, and any intermediate CA {n} does not send along) in {ca}"
            ),
            CertificateError::NotValidForName => format!(
                "{n}'s certificate does not carry the name the bridge checks: set {name_setting} to a name the certificate carries, or issue {n} a certificate with that name among its subject alternative names"
            ),
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => {
                let presented = if presented.is_empty() {
                    "no name the bridge can check".to_owned()
                } else {
                    presented.join(", ")
                };
                format!(
                    "{n}'s certificate is not valid for `{}`, the name the bridge checks (it carries {presented}): set {name_setting} to one of its names, or issue {n} a certificate with `{}` among its subject alternative names",
                    expected.to_str(),
                    expected.to_str()
                )
            }
            CertificateError::Expired => format!(
                "{n}'s certificate has expired: renew it on {n} (and check that this machine's clock is right)"
            ),
            CertificateError::ExpiredContext { time, not_after } => format!(
                "{n}'s certificate expired on {} ({} ago by this machine's clock): renew it on {n}, or set this machine's clock right if it is wrong",
                date(not_after.as_secs()),
                days(time.as_secs().saturating_sub(not_after.as_secs()))
            ),
            CertificateError::NotValidYet => format!(
                "{n}'s certificate is not valid yet: check this machine's clock, and the certificate's start date"
            ),
            CertificateError::NotValidYetContext { time, not_before } => format!(
                "{n}'s certificate is valid only from {} ({} from now by this machine's clock): check this machine's clock, or wait for the certificate to become valid",
                date(not_before.as_secs()),
                days(not_before.as_secs().saturating_sub(time.as_secs()))
            ),
            CertificateError::Revoked => {
                format!("{n}'s certificate has been revoked by its CA: install a new one on {n}")
            }
            CertificateError::BadSignature => format!(
                "{n}'s certificate's signature does not verify: it was not issued by the CA it names (or it is damaged): re-issue it, and check {ca}"
            ),
            CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                format!(
                    "{n}'s certificate is signed with an algorithm the bridge does not accept: re-issue it with ECDSA (P-256 or P-384), Ed25519, or RSA of 2048 bits or more with SHA-256 or better"
                )
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                format!(
                    "{n}'s certificate is not meant for a TLS server (its extended key usage lacks server authentication): issue {n} one for server authentication"
                )
            }
            CertificateError::BadEncoding => format!(
                "{n}'s certificate cannot be read (it is not a valid X.509 certificate): re-issue it"
            ),
            CertificateError::UnhandledCriticalExtension => format!(
                "{n}'s certificate has a critical extension the bridge cannot check: issue {n} one without it"
            ),
            CertificateError::Other(other) => return self.webpki(other),
            _ => return None,
        })
    }

    /// webpki's findings that rustls passes on as `Other`.
    fn webpki(&self, other: &rustls::OtherError) -> Option<String> {
        let n = self.name;
        let ca = self.ca_setting;
        let error: &(dyn StdError + 'static) = &*other.0;
        Some(match error.downcast_ref::<webpki::Error>()? {
            webpki::Error::CaUsedAsEndEntity => format!(
                "{n} presented a CA certificate as its own (self-signed with CA:TRUE in its basic constraints), and a server's own certificate must not be a CA: issue {n} a leaf certificate (CA:FALSE, for server authentication) signed by that CA and keep the CA in {ca}, or, for a lab, make it a self-signed certificate without CA:TRUE and put that certificate itself in {ca}"
            ),
            webpki::Error::EndEntityUsedAsCa => format!(
                "a certificate in the chain {n} sends signs another one but is not a CA (CA:FALSE): {n} must send its own certificate followed by the CA certificates that issued it"
            ),
            webpki::Error::PathLenConstraintViolated | webpki::Error::MaximumPathDepthExceeded => {
                format!(
                    "the chain from {n}'s certificate to a CA in {ca} is longer than its CAs allow: issue {n} a certificate from a CA nearer the root"
                )
            }
            webpki::Error::NameConstraintViolation => format!(
                "{n}'s certificate names a host its CA may not issue for (a name constraint of the CA): issue it from a CA allowed to"
            ),
            webpki::Error::UnsupportedCertVersion => format!(
                "{n}'s certificate is not an X.509 version 3 certificate: re-issue it as version 3"
            ),
            _ => return None,
        })
    }

    fn alert(&self, alert: AlertDescription) -> Option<String> {
        let n = self.name;
        let client = self.client_certificate_setting;
        Some(match (alert, client) {
            (AlertDescription::CertificateRequired, Some(setting)) => format!(
                "{n} requires a client certificate and got none: set {setting} to a certificate (with its chain) and key that {n} trusts"
            ),
            (AlertDescription::CertificateRequired, None) => {
                format!("{n} requires a client certificate, and the bridge presents none there")
            }
            (
                AlertDescription::BadCertificate
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnsupportedCertificate,
                Some(setting),
            ) => format!(
                "{n} refused the bridge's client certificate: the certificate in {setting} must be issued, for client authentication, by a CA {n} trusts"
            ),
            (AlertDescription::UnknownCA, Some(setting)) => format!(
                "{n} does not trust the CA that issued the bridge's client certificate: use a certificate from a CA {n} trusts in {setting}, or make {n} trust its CA"
            ),
            (AlertDescription::CertificateExpired, Some(setting)) => format!(
                "{n} says the bridge's client certificate has expired: renew the certificate in {setting}"
            ),
            (AlertDescription::CertificateRevoked, Some(setting)) => format!(
                "{n} says the bridge's client certificate has been revoked: install a new one in {setting}"
            ),
            (AlertDescription::AccessDenied, Some(setting)) => format!(
                "{n} accepted the bridge's client certificate but denies it access: check that the certificate in {setting} is the one {n} knows the bridge by"
            ),
            (AlertDescription::HandshakeFailure, Some(setting)) => format!(
                "{n} broke the handshake off: it found no cipher suite in common, or it refused or missed the client certificate in {setting}"
            ),
            (AlertDescription::HandshakeFailure, None) => format!(
                "{n} broke the handshake off: it found no TLS version or cipher suite in common with the bridge (TLS 1.2 and 1.3)"
            ),
            (AlertDescription::ProtocolVersion | AlertDescription::InsufficientSecurity, _) => {
                format!(
                    "{n} speaks no TLS version or cipher suite the bridge does: enable TLS 1.2 or 1.3 with forward-secret cipher suites on {n}"
                )
            }
            (AlertDescription::UnrecognisedName, _) => format!(
                "{n} does not serve the name the bridge asked for: set {} to a name {n} serves",
                self.name_setting
            ),
            _ => return None,
        })
    }
}

/// `N day(s)`, or `less than a day`.
fn days(seconds: u64) -> String {
    match seconds / 86_400 {
        0 => "less than a day".to_owned(),
        1 => "1 day".to_owned(),
        d => format!("{d} days"),
    }
}

/// A UTC date `YYYY-MM-DD` from seconds since 1970 (the proleptic Gregorian calendar).
fn date(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    // Howard Hinnant's days-from-civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests;
