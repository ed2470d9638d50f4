//! SIP digest access authentication, client side: RFC 3261 §22 with the computation of
//! RFC 2617, the algorithms of RFC 8760 (SHA-256 and SHA-512/256 for SIP) and the semantics
//! of RFC 7616.
//!
//! Pure: no I/O, no clock and no randomness of its own. The caller passes the client nonce
//! (`cnonce`, fresh and unpredictable for each new server nonce) and the nonce count.
//!
//! - [`Challenge::parse`] (and [`Challenge::from_status`], [`Challenge::from_header`]) reads
//!   one `WWW-Authenticate` or `Proxy-Authenticate` header value.
//! - [`choose`] picks the strongest usable challenge when a server sends several, one per
//!   algorithm (RFC 8760 §2.4): SHA-512-256, then SHA-256, then MD5.
//! - [`Challenge::authorize`] computes the answer, the value of the `Authorization` (401) or
//!   `Proxy-Authorization` (407) header named by [`Challenge::authorization_header_name`].
//!
//! What is supported: the algorithms `MD5`, `MD5-sess`, `SHA-256`, `SHA-256-sess`,
//! `SHA-512-256` and `SHA-512-256-sess` (an absent `algorithm` means `MD5`); `qop=auth`, and
//! no `qop` at all (the RFC 2069 computation, for old servers); `opaque` is echoed;
//! `stale=true` is reported in [`Challenge::stale`].
//!
//! What is not: `qop=auth-int` (a challenge offering only `auth-int` is refused with an
//! error; one offering both is answered with `auth`); `userhash` (RFC 7616 §3.4.4: a server
//! offering it is answered with the user name in clear, which RFC 7616 allows, and
//! [`Challenge::userhash`] tells it was offered); `username*` (a user name is sent as UTF-8
//! in a quoted string, as SIP allows). Parameters this module does not use (`domain`,
//! `charset`, extensions) are ignored.
//!
//! Nonce count: the module keeps no state. The caller sends `nc = 1` with the first request
//! for a server nonce, and increments it for each further request it authorizes with the
//! same nonce (and the same `cnonce`); a new nonce (after `stale=true` or a new challenge)
//! starts again at 1.
//!
//! Secrets: [`Credentials`] never prints its password in `Debug`, and neither [`Challenge`]
//! nor [`Authorization`] ever holds the password or `HA1`.
//!
//! ```
//! use presence_simple::digest::{Challenge, Credentials};
//!
//! // The example of RFC 7616 §3.9.1 (HTTP, but the computation is the one SIP uses).
//! let challenge = Challenge::from_status(
//!     401,
//!     r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256,
//!        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
//!        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
//! )?;
//! assert!(!challenge.stale);
//! let credentials = Credentials::new("Mufasa", "Circle of Life");
//! let value = challenge.authorize(
//!     &credentials,
//!     "GET",
//!     "/dir/index.html",
//!     1,
//!     "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
//! );
//! assert_eq!(challenge.authorization_header_name(), "Authorization");
//! assert!(value.starts_with(r#"Digest username="Mufasa", realm="http-auth@example.org""#));
//! assert!(value.contains(
//!     r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
//! ));
//! assert!(value.ends_with("qop=auth, nc=00000001"));
//! # Ok::<(), presence_simple::SimpleError>(())
//! ```

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use crate::SimpleError;

/// The longest challenge header value read, in bytes: anything longer is refused.
pub const MAX_CHALLENGE_LEN: usize = 8192;

/// The most parameters read in one challenge: more is refused.
pub const MAX_PARAMS: usize = 32;

/// How many characters of a value from the outside an error message quotes.
const SHOWN_CHARS: usize = 40;

// --- algorithms -----------------------------------------------------------------------

/// A digest algorithm (RFC 7616 §3.3, RFC 8760 §2.2). The `-sess` variants bind `HA1` to
/// the server and client nonces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617), the default when a challenge names none.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (SHA-512/256 of FIPS 180-4).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Every supported algorithm, in the order error messages list them.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ];

    /// The name on the wire (`SHA-256`, `MD5-sess`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// The algorithm of a name on the wire, compared without regard to case; `None` for a
    /// name not supported.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Whether this is a `-sess` variant.
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// How strong the hash is, for [`choose`]: higher is stronger.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 3,
        }
    }

    /// The lowercase hex digest of the parts joined by `:`.
    fn hex(self, parts: &[&str]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex_of::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex_of::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex_of::<Sha512_256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn hex_of<D: Digest>(parts: &[&str]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// The supported algorithm names, for error messages.
fn supported_list() -> String {
    Algorithm::ALL.map(Algorithm::name).join(", ")
}

/// A quality of protection this module answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Qop {
    /// `auth`: authentication of the request line, not of the body.
    Auth,
}

impl Qop {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// --- credentials ----------------------------------------------------------------------

/// A user name and password. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    /// The user name (the digest `username`), sent in clear.
    pub username: String,
    /// The password: never sent, never printed.
    pub password: String,
}

impl Credentials {
    /// Credentials of `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

// --- challenge ------------------------------------------------------------------------

/// One digest challenge, as read from a `WWW-Authenticate` or `Proxy-Authenticate` header
/// value. Holds nothing secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// The protection space (`realm`), echoed and part of `HA1`.
    pub realm: String,
    /// The server nonce, echoed and part of the response.
    pub nonce: String,
    /// The server's `opaque`, echoed unchanged when present.
    pub opaque: Option<String>,
    /// The algorithm, `MD5` when the challenge names none.
    pub algorithm: Algorithm,
    /// `Some(Qop::Auth)` when the server offered `auth`; `None` when it sent no `qop` (the
    /// RFC 2069 computation, without `cnonce` or `nc`).
    pub qop: Option<Qop>,
    /// `stale=true`: the previous request was refused only because its nonce had expired.
    /// Retry at once with this challenge's nonce (and `nc = 1`) without counting it as a
    /// credential failure.
    pub stale: bool,
    /// The server offered `userhash=true` (RFC 7616 §3.4.4). Not supported: the answer
    /// carries the user name in clear (with `userhash` absent, meaning false), which RFC 7616
    /// allows.
    pub userhash: bool,
    /// The challenge came in a `Proxy-Authenticate` header (status 407), so the answer goes
    /// in `Proxy-Authorization`; `false` for `WWW-Authenticate` (401) and `Authorization`.
    pub proxy: bool,
}

impl Challenge {
    /// Reads one challenge header value (`Digest realm="...", nonce="...", ...`). `proxy`
    /// tells whether it came in a `Proxy-Authenticate` header.
    ///
    /// Parameter names, the scheme and algorithm names are compared without regard to case;
    /// values are tokens or quoted strings with backslash escapes; whitespace and empty list
    /// elements are tolerated; unknown parameters are ignored. A duplicate parameter, a
    /// missing `realm` or `nonce`, an algorithm or `qop` not supported, or a value longer
    /// than [`MAX_CHALLENGE_LEN`] bytes or with more than [`MAX_PARAMS`] parameters is an
    /// error [`SimpleError::Challenge`] with the byte offset of the problem.
    pub fn parse(value: &str, proxy: bool) -> Result<Challenge, SimpleError> {
        let params = parse_digest(value)?;
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = Algorithm::Md5;
        let mut qop = None;
        let mut stale = false;
        let mut userhash = false;
        for param in params {
            match param.name.as_str() {
                "realm" => realm = Some(param.value),
                "nonce" => nonce = Some(param.value),
                "opaque" => opaque = Some(param.value),
                "algorithm" => {
                    algorithm = Algorithm::from_name(&param.value).ok_or_else(|| {
                        challenge_error(
                            param.value_pos,
                            format!(
                                "algorithm `{}` is not supported (supported: {})",
                                shown(&param.value),
                                supported_list()
                            ),
                        )
                    })?;
                }
                "qop" => qop = Some(parse_qop(&param)?),
                "stale" => stale = param.value.trim().eq_ignore_ascii_case("true"),
                "userhash" => userhash = param.value.trim().eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        let Some(realm) = realm else {
            return Err(challenge_error(value.len(), "missing realm"));
        };
        let Some(nonce) = nonce else {
            return Err(challenge_error(value.len(), "missing nonce"));
        };
        Ok(Challenge {
            realm,
            nonce,
            opaque,
            algorithm,
            qop,
            stale,
            userhash,
            proxy,
        })
    }

    /// Reads the challenge of a response with `status` 401 (`WWW-Authenticate`) or 407
    /// (`Proxy-Authenticate`); any other status is an error.
    pub fn from_status(status: u16, value: &str) -> Result<Challenge, SimpleError> {
        Challenge::parse(value, proxy_of_status(status)?)
    }

    /// Reads the challenge of a header named `WWW-Authenticate` or `Proxy-Authenticate`
    /// (without regard to case); any other name is an error.
    pub fn from_header(name: &str, value: &str) -> Result<Challenge, SimpleError> {
        let proxy = if name.trim().eq_ignore_ascii_case("WWW-Authenticate") {
            false
        } else if name.trim().eq_ignore_ascii_case("Proxy-Authenticate") {
            true
        } else {
            return Err(challenge_error(
                0,
                format!(
                    "header `{}` carries no challenge (WWW-Authenticate or Proxy-Authenticate expected)",
                    shown(name)
                ),
            ));
        };
        Challenge::parse(value, proxy)
    }

    /// The name of the header that carries the answer: `Proxy-Authorization` for a proxy
    /// challenge, `Authorization` otherwise.
    pub fn authorization_header_name(&self) -> &'static str {
        if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        }
    }

    /// The answer to this challenge for a request `method` (`REGISTER`, `PUBLISH`, ...) to
    /// `digest_uri` (the Request-URI, as sent), with nonce count `nc` (1 for the first
    /// request with this nonce, then one more per request) and the caller's fresh client
    /// nonce `cnonce`.
    ///
    /// `cnonce` and `nc` are sent with `qop=auth`; without `qop`, `nc` is not sent and
    /// `cnonce` only for a `-sess` algorithm (whose `HA1` needs it).
    pub fn authorization(
        &self,
        credentials: &Credentials,
        method: &str,
        digest_uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> Authorization {
        let algorithm = self.algorithm;
        let mut ha1 = algorithm.hex(&[&credentials.username, &self.realm, &credentials.password]);
        if algorithm.is_session() {
            ha1 = algorithm.hex(&[&ha1, &self.nonce, cnonce]);
        }
        let ha2 = algorithm.hex(&[method, digest_uri]);
        let nc_hex = format!("{nc:08x}");
        let response = match self.qop {
            Some(qop) => algorithm.hex(&[&ha1, &self.nonce, &nc_hex, cnonce, qop.name(), &ha2]),
            None => algorithm.hex(&[&ha1, &self.nonce, &ha2]),
        };
        Authorization {
            username: credentials.username.clone(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: digest_uri.to_owned(),
            response,
            algorithm,
            cnonce: (self.qop.is_some() || algorithm.is_session()).then(|| cnonce.to_owned()),
            opaque: self.opaque.clone(),
            qop: self.qop,
            nc: self.qop.map(|_| nc),
            proxy: self.proxy,
        }
    }

    /// The value of the [`authorization_header_name`](Challenge::authorization_header_name)
    /// header answering this challenge: [`authorization`](Challenge::authorization) as text,
    /// `Digest username="..", realm="..", nonce="..", uri="..", response="..",
    /// algorithm=SHA-256, cnonce="..", opaque="..", qop=auth, nc=00000001`.
    ///
    /// Quoted values escape `"` and `\`. Control characters other than HTAB cannot be sent
    /// in a header and are left out of quoted values (the response is then not the one the
    /// server computes: user names with them are refused by the server, never injected).
    pub fn authorize(
        &self,
        credentials: &Credentials,
        method: &str,
        digest_uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        self.authorization(credentials, method, digest_uri, nc, cnonce)
            .to_string()
    }
}

fn proxy_of_status(status: u16) -> Result<bool, SimpleError> {
    match status {
        401 => Ok(false),
        407 => Ok(true),
        _ => Err(challenge_error(
            0,
            format!("status {status} carries no challenge (401 or 407 expected)"),
        )),
    }
}

fn parse_qop(param: &Param) -> Result<Qop, SimpleError> {
    let offered: Vec<&str> = param
        .value
        .split(',')
        .map(|q| q.trim_matches(is_ws_char))
        .filter(|q| !q.is_empty())
        .collect();
    if offered.is_empty() {
        return Err(challenge_error(param.value_pos, "qop offers no value"));
    }
    if offered.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
        return Ok(Qop::Auth);
    }
    Err(challenge_error(
        param.value_pos,
        format!(
            "qop `{}` is not supported (only `auth` is; `auth-int` is not)",
            shown(&offered.join(","))
        ),
    ))
}

/// Picks the strongest challenge that can be used among several (the `WWW-Authenticate`
/// or `Proxy-Authenticate` values of one response, RFC 8760 §2.4): SHA-512-256 before
/// SHA-256 before MD5, with `qop=auth` before none, and the first among equals. Challenges
/// that cannot be read or are not supported are skipped as long as one works; when none
/// does, the error of the first (its position is in that header value). The result has
/// [`Challenge::proxy`] false: see [`choose_for_status`].
pub fn choose<'a>(challenges: impl IntoIterator<Item = &'a str>) -> Result<Challenge, SimpleError> {
    choose_with(challenges, false)
}

/// [`choose`] for a response of `status` 401 or 407, which sets [`Challenge::proxy`].
pub fn choose_for_status<'a>(
    status: u16,
    challenges: impl IntoIterator<Item = &'a str>,
) -> Result<Challenge, SimpleError> {
    choose_with(challenges, proxy_of_status(status)?)
}

fn choose_with<'a>(
    challenges: impl IntoIterator<Item = &'a str>,
    proxy: bool,
) -> Result<Challenge, SimpleError> {
    let mut best: Option<Challenge> = None;
    let mut first_error: Option<SimpleError> = None;
    let mut count = 0usize;
    for value in challenges {
        count = count.saturating_add(1);
        match Challenge::parse(value, proxy) {
            Ok(c) => {
                let better = best.as_ref().is_none_or(|b| rank(&c) > rank(b));
                if better {
                    best = Some(c);
                }
            }
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    if let Some(best) = best {
        return Ok(best);
    }
    match first_error {
        Some(SimpleError::Challenge { position, what }) if count > 1 => Err(challenge_error(
            position,
            format!("none of the {count} challenges can be used; the first: {what}"),
        )),
        Some(e) => Err(e),
        None => Err(challenge_error(0, "no challenge")),
    }
}

fn rank(c: &Challenge) -> (u8, bool) {
    (c.algorithm.strength(), c.qop.is_some())
}

// --- authorization --------------------------------------------------------------------

/// The answer to a [`Challenge`]: the fields of the `Authorization` or
/// `Proxy-Authorization` header. `Display` writes the header value. Holds no password and
/// no `HA1`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authorization {
    /// The user name, in clear.
    pub username: String,
    /// The challenge's realm.
    pub realm: String,
    /// The challenge's nonce.
    pub nonce: String,
    /// The digest URI.
    pub uri: String,
    /// The request digest, lowercase hex.
    pub response: String,
    /// The algorithm, always sent.
    pub algorithm: Algorithm,
    /// The client nonce, sent with `qop` or a `-sess` algorithm.
    pub cnonce: Option<String>,
    /// The challenge's `opaque`, echoed.
    pub opaque: Option<String>,
    /// The quality of protection, when the challenge offered one.
    pub qop: Option<Qop>,
    /// The nonce count, sent with `qop` as 8 hex digits.
    pub nc: Option<u32>,
    /// It answers a proxy challenge (goes in `Proxy-Authorization`).
    pub proxy: bool,
}

impl Authorization {
    /// `Proxy-Authorization` for a proxy challenge, `Authorization` otherwise.
    pub fn header_name(&self) -> &'static str {
        if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        }
    }
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(256);
        out.push_str("Digest username=");
        push_quoted(&mut out, &self.username);
        out.push_str(", realm=");
        push_quoted(&mut out, &self.realm);
        out.push_str(", nonce=");
        push_quoted(&mut out, &self.nonce);
        out.push_str(", uri=");
        push_quoted(&mut out, &self.uri);
        out.push_str(", response=");
        push_quoted(&mut out, &self.response);
        out.push_str(", algorithm=");
        out.push_str(self.algorithm.name());
        if let Some(cnonce) = &self.cnonce {
            out.push_str(", cnonce=");
            push_quoted(&mut out, cnonce);
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(", opaque=");
            push_quoted(&mut out, opaque);
        }
        if let Some(qop) = self.qop {
            out.push_str(", qop=");
            out.push_str(qop.name());
        }
        if let Some(nc) = self.nc {
            out.push_str(&format!(", nc={nc:08x}"));
        }
        f.write_str(&out)
    }
}

/// Appends `value` as a quoted string: `"` and `\` escaped, control characters other than
/// HTAB left out (they cannot be sent in a header).
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

// --- auth-param lists -----------------------------------------------------------------

/// One parameter of a digest challenge or answer.
#[derive(Debug)]
struct Param {
    /// The name, lowercased.
    name: String,
    /// The value, unescaped when it was quoted.
    value: String,
    /// Byte offset of the value (its opening quote when quoted).
    value_pos: usize,
}

fn challenge_error(position: usize, what: impl Into<String>) -> SimpleError {
    SimpleError::Challenge {
        position,
        what: what.into(),
    }
}

/// At most [`SHOWN_CHARS`] characters of an outside value, escaped, for an error message.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(SHOWN_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if s.chars().nth(SHOWN_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_ws_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// RFC 3261 `token` characters: alphanumerics and `-.!%*_+`'~`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// A control character that may not appear in a header value (HTAB may).
fn is_forbidden_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// What stands at `pos`, for an error message.
fn found_at(input: &str, pos: usize) -> String {
    match input.get(pos..).and_then(|rest| rest.chars().next()) {
        Some(c) => format!("`{}`", c.escape_debug()),
        None => "the end".to_owned(),
    }
}

/// A byte cursor over a header value. Every position it stops at is on a character
/// boundary: it only steps over ASCII bytes, or over whole quoted strings.
struct Cursor<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a str) -> Cursor<'a> {
        Cursor {
            input,
            bytes: input.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        self.input.get(start..self.pos).unwrap_or_default()
    }

    fn error(&self, what: impl Into<String>) -> SimpleError {
        challenge_error(self.pos, what)
    }

    /// A quoted string starting at the opening quote under the cursor, unescaped.
    fn quoted(&mut self) -> Result<String, SimpleError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(challenge_error(open, "unterminated quoted string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    self.pos += 1;
                    let Some(escaped) = self.peek() else {
                        return Err(challenge_error(open, "unterminated quoted string"));
                    };
                    if is_forbidden_control(escaped) {
                        return Err(self.error("control character in a quoted string"));
                    }
                    out.push(escaped);
                    self.pos += 1;
                }
                b if is_forbidden_control(b) => {
                    return Err(self.error("control character in a quoted string"));
                }
                b => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        // Only ASCII delimiters were removed from valid UTF-8: still valid.
        String::from_utf8(out).map_err(|_| challenge_error(open, "quoted string is not UTF-8"))
    }
}

/// Reads `Digest` and its auth-param list: the names lowercased, in order, with no
/// duplicate.
fn parse_digest(input: &str) -> Result<Vec<Param>, SimpleError> {
    if input.len() > MAX_CHALLENGE_LEN {
        return Err(challenge_error(
            MAX_CHALLENGE_LEN,
            format!("longer than {MAX_CHALLENGE_LEN} bytes"),
        ));
    }
    let mut cur = Cursor::new(input);
    cur.skip_ws();
    let scheme_pos = cur.pos;
    let scheme = cur.token();
    if scheme.is_empty() {
        return Err(cur.error(format!(
            "expected the scheme `Digest`, found {}",
            found_at(input, cur.pos)
        )));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(challenge_error(
            scheme_pos,
            format!("scheme `{}` is not Digest", shown(scheme)),
        ));
    }
    if cur.peek().is_some_and(|b| !is_ws(b)) {
        return Err(cur.error(format!(
            "expected whitespace after `Digest`, found {}",
            found_at(input, cur.pos)
        )));
    }
    let mut params: Vec<Param> = Vec::new();
    loop {
        // Separators: whitespace and commas, empty list elements included.
        while cur.peek().is_some_and(|b| is_ws(b) || b == b',') {
            cur.pos += 1;
        }
        if cur.peek().is_none() {
            break;
        }
        let name_pos = cur.pos;
        let name = cur.token();
        if name.is_empty() {
            return Err(cur.error(format!(
                "expected a parameter name, found {}",
                found_at(input, cur.pos)
            )));
        }
        if params.len() >= MAX_PARAMS {
            return Err(challenge_error(
                name_pos,
                format!("more than {MAX_PARAMS} parameters"),
            ));
        }
        let name = name.to_ascii_lowercase();
        if params.iter().any(|p| p.name == name) {
            return Err(challenge_error(
                name_pos,
                format!("duplicate parameter `{}`", shown(&name)),
            ));
        }
        cur.skip_ws();
        if cur.peek() != Some(b'=') {
            return Err(cur.error(format!(
                "expected `=` after `{}`, found {}",
                shown(&name),
                found_at(input, cur.pos)
            )));
        }
        cur.pos += 1;
        cur.skip_ws();
        let value_pos = cur.pos;
        let value = if cur.peek() == Some(b'"') {
            cur.quoted()?
        } else {
            let token = cur.token();
            if token.is_empty() {
                return Err(cur.error(format!(
                    "expected a value for `{}`, found {}",
                    shown(&name),
                    found_at(input, cur.pos)
                )));
            }
            token.to_owned()
        };
        params.push(Param {
            name,
            value,
            value_pos,
        });
        cur.skip_ws();
        match cur.peek() {
            None | Some(b',') => {}
            Some(_) => {
                return Err(cur.error(format!(
                    "expected `,` after the value of `{}`, found {}",
                    params.last().map(|p| shown(&p.name)).unwrap_or_default(),
                    found_at(input, cur.pos)
                )));
            }
        }
    }
    Ok(params)
}

// --- fuzzing --------------------------------------------------------------------------

/// Runs the challenge parser, [`choose`] and [`Challenge::authorize`] on arbitrary bytes
/// (as one header value, and as one value per line), and reads each answer back. The body
/// of the cargo-fuzz target `sip_digest` and of the proptest that mirrors it: none may
/// panic, and every answer must read back as a digest parameter list.
pub fn fuzz_challenge(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let credentials = Credentials::new("fuzz \"user\"\\", "secret");
    for proxy in [false, true] {
        if let Ok(challenge) = Challenge::parse(&text, proxy) {
            let _ = format!("{challenge:?}");
            let answer =
                challenge.authorize(&credentials, "REGISTER", "sip:example.com", 1, "0a4f113b");
            assert!(
                parse_digest(&answer).is_ok(),
                "answer does not read back: {answer}"
            );
        }
    }
    let _ = Challenge::from_header("WWW-Authenticate", &text);
    let _ = Challenge::from_status(407, &text);
    if let Ok(challenge) = choose(text.lines()) {
        let answer = challenge.authorize(&credentials, "PUBLISH", "sip:a@b", u32::MAX, "");
        assert!(
            parse_digest(&answer).is_ok(),
            "answer does not read back: {answer}"
        );
    }
    if let Err(e) = choose_for_status(401, text.split('\0')) {
        let _ = e.to_string();
    }
}

// --- tests ----------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn md5_hex(s: &str) -> String {
        format!("{:x}", Md5::digest(s.as_bytes()))
    }

    fn sha256_hex(s: &str) -> String {
        format!("{:x}", Sha256::digest(s.as_bytes()))
    }

    fn sha512_256_hex(s: &str) -> String {
        format!("{:x}", Sha512_256::digest(s.as_bytes()))
    }

    fn field<'a>(params: &'a [Param], name: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    fn error_of(r: Result<Challenge, SimpleError>) -> (usize, String) {
        match r {
            Err(SimpleError::Challenge { position, what }) => (position, what),
            other => panic!("expected a challenge error, got {other:?}"),
        }
    }

    const RFC2617: &str = r#"Digest
                 realm="testrealm@host.com",
                 qop="auth,auth-int",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    #[test]
    fn rfc2617_example() {
        let c = Challenge::from_status(401, RFC2617).unwrap();
        assert_eq!(c.realm, "testrealm@host.com");
        assert_eq!(c.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
        assert_eq!(
            c.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.qop, Some(Qop::Auth));
        assert!(!c.stale && !c.proxy && !c.userhash);
        let creds = Credentials::new("Mufasa", "Circle Of Life");
        let a = c.authorization(&creds, "GET", "/dir/index.html", 1, "0a4f113b");
        assert_eq!(a.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(
            a.to_string(),
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001"#
        );
        assert_eq!(
            c.authorize(&creds, "GET", "/dir/index.html", 1, "0a4f113b"),
            a.to_string()
        );
    }

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc7616(algorithm: &str) -> String {
        format!(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, nonce="{RFC7616_NONCE}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
        )
    }

    #[test]
    fn rfc7616_examples() {
        let creds = Credentials::new("Mufasa", "Circle of Life");
        for (algorithm, expected) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let c = Challenge::parse(&rfc7616(algorithm), false).unwrap();
            assert_eq!(c.algorithm.name(), algorithm);
            let a = c.authorization(&creds, "GET", "/dir/index.html", 1, RFC7616_CNONCE);
            assert_eq!(a.response, expected, "{algorithm}");
            let value = a.to_string();
            assert!(
                value.contains(&format!("algorithm={algorithm}, ")),
                "{value}"
            );
            assert!(
                value.contains(r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#),
                "{value}"
            );
        }
    }

    #[test]
    fn no_qop_rfc2069() {
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
            false,
        )
        .unwrap();
        assert_eq!(c.qop, None);
        let creds = Credentials::new("Mufasa", "CircleOfLife");
        let a = c.authorization(&creds, "GET", "/dir/index.html", 7, "ignored");
        let ha1 = md5_hex("Mufasa:testrealm@host.com:CircleOfLife");
        let ha2 = md5_hex("GET:/dir/index.html");
        let expected = md5_hex(&format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{ha2}"));
        assert_eq!(a.response, expected);
        // The corrected response of the RFC 2069 example (erratum 749).
        assert_eq!(a.response, "1949323746fe6a43ef61f9606e7febea");
        assert_eq!(a.cnonce, None);
        assert_eq!(a.nc, None);
        let value = a.to_string();
        assert!(!value.contains("cnonce") && !value.contains("nc=") && !value.contains("qop"));
        assert!(value.ends_with(r#"algorithm=MD5, opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
    }

    #[test]
    fn session_variants() {
        let creds = Credentials::new("bob", "zanzibar");
        let (nonce, cnonce, nc) = ("abc123", "xyz/987", 0x2a_u32);
        type H = fn(&str) -> String;
        let cases: [(&str, H); 3] = [
            ("MD5-sess", md5_hex),
            ("SHA-256-sess", sha256_hex),
            ("SHA-512-256-sess", sha512_256_hex),
        ];
        for (name, h) in cases {
            let c = Challenge::parse(
                &format!(
                    r#"Digest realm="biloxi.com", nonce="{nonce}", qop=auth, algorithm={name}"#
                ),
                true,
            )
            .unwrap();
            assert!(c.algorithm.is_session());
            let a = c.authorization(&creds, "REGISTER", "sip:biloxi.com", nc, cnonce);
            let ha1 = h(&format!(
                "{}:{nonce}:{cnonce}",
                h("bob:biloxi.com:zanzibar")
            ));
            let ha2 = h("REGISTER:sip:biloxi.com");
            let expected = h(&format!("{ha1}:{nonce}:0000002a:{cnonce}:auth:{ha2}"));
            assert_eq!(a.response, expected, "{name}");
            assert_eq!(a.header_name(), "Proxy-Authorization");
            assert!(a.to_string().ends_with("qop=auth, nc=0000002a"));

            // Without qop a -sess algorithm still sends its cnonce, which HA1 needs.
            let c = Challenge::parse(
                &format!(r#"Digest realm="biloxi.com", nonce="{nonce}", algorithm={name}"#),
                false,
            )
            .unwrap();
            let a = c.authorization(&creds, "REGISTER", "sip:biloxi.com", nc, cnonce);
            assert_eq!(a.response, h(&format!("{ha1}:{nonce}:{ha2}")), "{name}");
            assert_eq!(a.cnonce.as_deref(), Some(cnonce));
            assert_eq!(a.nc, None);
        }
    }

    #[test]
    fn plain_sha_variants() {
        let creds = Credentials::new("alice", "pa:ss");
        type H = fn(&str) -> String;
        let cases: [(&str, H); 3] = [
            ("md5", md5_hex),
            ("sha-256", sha256_hex),
            ("Sha-512-256", sha512_256_hex),
        ];
        for (name, h) in cases {
            let c = Challenge::parse(
                &format!(
                    r#"digest realm="atlanta.com", nonce="n", qop="auth", algorithm="{name}""#
                ),
                false,
            )
            .unwrap();
            let a = c.authorization(&creds, "PUBLISH", "sip:alice@atlanta.com", 1, "c");
            let ha1 = h("alice:atlanta.com:pa:ss");
            let ha2 = h("PUBLISH:sip:alice@atlanta.com");
            assert_eq!(a.response, h(&format!("{ha1}:n:00000001:c:auth:{ha2}")));
            assert_eq!(a.response.len(), if name == "md5" { 32 } else { 64 });
        }
    }

    #[test]
    fn choose_prefers_the_strongest() {
        let md5 = r#"Digest realm="atlanta.com", nonce="1", qop="auth", algorithm=MD5"#;
        let sha = r#"Digest realm="atlanta.com", nonce="2", qop="auth", algorithm=SHA-256"#;
        let sha512 = r#"Digest realm="atlanta.com", nonce="3", qop="auth", algorithm=SHA-512-256"#;
        let bad = r#"Digest realm="atlanta.com", nonce="4", algorithm=SHA-1"#;
        let basic = r#"Basic realm="atlanta.com""#;
        assert_eq!(choose([md5, sha]).unwrap().algorithm, Algorithm::Sha256);
        assert_eq!(choose([sha, md5]).unwrap().algorithm, Algorithm::Sha256);
        assert_eq!(choose([md5, sha512, sha]).unwrap().nonce, "3");
        assert_eq!(choose([bad, basic, md5]).unwrap().nonce, "1");
        // qop=auth before none, then the first among equals.
        let md5_no_qop = r#"Digest realm="atlanta.com", nonce="5""#;
        assert_eq!(choose([md5_no_qop, md5]).unwrap().nonce, "1");
        let md5_other = r#"Digest realm="atlanta.com", nonce="6", qop=auth"#;
        assert_eq!(choose([md5, md5_other]).unwrap().nonce, "1");
        assert!(!choose([sha]).unwrap().proxy);
        assert!(choose_for_status(407, [sha]).unwrap().proxy);
        assert!(!choose_for_status(401, [sha]).unwrap().proxy);

        let (pos, what) = error_of(choose([bad, basic]));
        assert_eq!(pos, bad.find("SHA-1").unwrap());
        assert!(
            what.contains("none of the 2 challenges") && what.contains("SHA-1"),
            "{what}"
        );
        let (pos, what) = error_of(choose([basic]));
        assert_eq!(pos, 0);
        assert!(what.contains("not Digest"), "{what}");
        let (_, what) = error_of(choose(std::iter::empty()));
        assert_eq!(what, "no challenge");
        let (_, what) = error_of(choose_for_status(200, [sha]));
        assert!(what.contains("status 200"), "{what}");
    }

    #[test]
    fn stale_and_flags() {
        let c = Challenge::parse(
            r#"Digest realm="a", nonce="new", stale=TRUE, userhash=true, charset=UTF-8, domain="sip:a", x-ext="y""#,
            false,
        )
        .unwrap();
        assert!(c.stale && c.userhash);
        // userhash offered, not used: the user name goes in clear.
        let value = c.authorize(&Credentials::new("u", "p"), "REGISTER", "sip:a", 1, "c");
        assert!(value.starts_with(r#"Digest username="u", "#) && !value.contains("userhash"));
        let c = Challenge::parse(r#"Digest realm="a", nonce="n", stale=FALSE"#, false).unwrap();
        assert!(!c.stale);
        let c = Challenge::parse(r#"Digest realm="a", nonce="n", stale="true""#, false).unwrap();
        assert!(c.stale);
    }

    #[test]
    fn headers_and_statuses() {
        let v = r#"Digest realm="a", nonce="n""#;
        assert!(!Challenge::from_status(401, v).unwrap().proxy);
        let c = Challenge::from_status(407, v).unwrap();
        assert!(c.proxy);
        assert_eq!(c.authorization_header_name(), "Proxy-Authorization");
        assert!(!Challenge::from_header("www-authenticate", v).unwrap().proxy);
        assert!(
            Challenge::from_header("Proxy-Authenticate", v)
                .unwrap()
                .proxy
        );
        assert_eq!(
            Challenge::from_header("WWW-Authenticate", v)
                .unwrap()
                .authorization_header_name(),
            "Authorization"
        );
        let (pos, what) = error_of(Challenge::from_header("Authorization", v));
        assert_eq!(pos, 0);
        assert!(what.contains("`Authorization`"), "{what}");
        let (_, what) = error_of(Challenge::from_status(403, v));
        assert!(what.contains("403"), "{what}");
    }

    #[test]
    fn tolerant_syntax() {
        let c = Challenge::parse(
            "  DIGEST ,, REALM = \"at\\\"lan\\\\ta\" ,\tNonce=abc.def-1 ,, qop=\" auth-int , AUTH \",ALGORITHM=sha-256 , ",
            false,
        )
        .unwrap();
        assert_eq!(c.realm, "at\"lan\\ta");
        assert_eq!(c.nonce, "abc.def-1");
        assert_eq!(c.qop, Some(Qop::Auth));
        assert_eq!(c.algorithm, Algorithm::Sha256);
        // Folded across lines, UTF-8 in a quoted string, an empty realm.
        let c = Challenge::parse(
            "Digest realm=\"\",\r\n nonce=\"n\u{e9}\u{2603}\\\u{e9}\"",
            false,
        )
        .unwrap();
        assert_eq!(c.realm, "");
        assert_eq!(c.nonce, "n\u{e9}\u{2603}\u{e9}");
    }

    #[test]
    fn errors_with_positions() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected the scheme `Digest`"),
            ("   ", 3, "expected the scheme `Digest`"),
            ("Basic realm=\"a\"", 0, "scheme `Basic` is not Digest"),
            (
                "  Digestive realm=\"a\"",
                2,
                "scheme `Digestive` is not Digest",
            ),
            (
                "Digest,realm=\"a\"",
                6,
                "expected whitespace after `Digest`",
            ),
            ("Digest", 6, "missing realm"),
            ("Digest nonce=\"n\"", 16, "missing realm"),
            ("Digest realm=\"a\"", 16, "missing nonce"),
            (
                "Digest realm=\"a, nonce=\"n\"",
                24,
                "expected `,` after the value of `realm`",
            ),
            ("Digest realm=\"abc", 13, "unterminated quoted string"),
            ("Digest realm=\"abc\\", 13, "unterminated quoted string"),
            ("Digest realm=\"a\nb\", nonce=n", 15, "control character"),
            ("Digest realm=\"a\\\rb\", nonce=n", 16, "control character"),
            (
                "Digest realm=a, realm=b, nonce=n",
                16,
                "duplicate parameter `realm`",
            ),
            (
                "Digest realm=a, nonce=n, NONCE=m",
                25,
                "duplicate parameter `nonce`",
            ),
            (
                "Digest realm",
                12,
                "expected `=` after `realm`, found the end",
            ),
            (
                "Digest realm a",
                13,
                "expected `=` after `realm`, found `a`",
            ),
            (
                "Digest realm=",
                13,
                "expected a value for `realm`, found the end",
            ),
            (
                "Digest realm=,nonce=n",
                13,
                "expected a value for `realm`, found `,`",
            ),
            (
                "Digest realm=a b, nonce=n",
                15,
                "expected `,` after the value of `realm`, found `b`",
            ),
            ("Digest =a", 7, "expected a parameter name, found `=`"),
            (
                "Digest realm=a, \u{e9}=1",
                16,
                "expected a parameter name, found `\u{e9}`",
            ),
            (
                "Digest realm=a, nonce=n, algorithm=SHA-1",
                35,
                "algorithm `SHA-1` is not supported (supported: MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256, SHA-512-256-sess)",
            ),
            (
                "Digest realm=a, nonce=n, algorithm=\"AKAv1-MD5\"",
                35,
                "algorithm `AKAv1-MD5` is not supported",
            ),
            (
                "Digest realm=a, nonce=n, qop=\"auth-int\"",
                29,
                "qop `auth-int` is not supported",
            ),
            (
                "Digest realm=a, nonce=n, qop=\"auth-int,token\"",
                29,
                "qop `auth-int,token` is not supported",
            ),
            (
                "Digest realm=a, nonce=n, qop=\" , \"",
                29,
                "qop offers no value",
            ),
        ];
        for &(input, position, what) in cases {
            let (p, w) = error_of(Challenge::parse(input, false));
            assert!(w.contains(what), "{input:?}: {w}");
            assert_eq!(p, position, "{input:?}: {w}");
            let shown = SimpleError::Challenge {
                position: p,
                what: w,
            }
            .to_string();
            assert!(
                shown.starts_with(&format!("digest challenge, byte {position}: ")),
                "{shown}"
            );
        }
    }

    #[test]
    fn limits() {
        let long = format!(
            "Digest realm=\"{}\", nonce=n",
            "a".repeat(MAX_CHALLENGE_LEN)
        );
        let (p, w) = error_of(Challenge::parse(&long, false));
        assert_eq!(p, MAX_CHALLENGE_LEN);
        assert!(w.contains("longer than"), "{w}");
        let mut many = String::from("Digest realm=a, nonce=n");
        for i in 0..MAX_PARAMS - 2 {
            many.push_str(&format!(", p{i}=1"));
        }
        assert!(Challenge::parse(&many, false).is_ok());
        let at = many.len() + 2;
        many.push_str(", one=more");
        let (p, w) = error_of(Challenge::parse(&many, false));
        assert_eq!(p, at);
        assert!(w.contains("more than 32 parameters"), "{w}");
        // A long outside value is cut in the message.
        let (_, w) = error_of(Challenge::parse(
            &format!("Digest realm=a, nonce=n, algorithm={}", "X".repeat(500)),
            false,
        ));
        assert!(w.len() < 200 && w.contains("..."), "{w}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let creds = Credentials::new("Mufasa", "Circle Of Life");
        let debug = format!("{creds:?}");
        assert!(
            !debug.contains("Circle") && debug.contains("Mufasa"),
            "{debug}"
        );
        let c = Challenge::parse(RFC2617, false).unwrap();
        let a = c.authorization(&creds, "GET", "/dir/index.html", 1, "0a4f113b");
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        for debug in [format!("{c:?}"), format!("{a:?}"), a.to_string()] {
            assert!(
                !debug.contains("Circle") && !debug.contains(&ha1),
                "{debug}"
            );
        }
    }

    #[test]
    fn quoting_of_answers() {
        let c =
            Challenge::parse(r#"Digest realm="r\"\\", nonce="n\"", opaque="\\o""#, false).unwrap();
        let creds = Credentials::new("a\"b\\c\r\nX-Injected: 1", "p");
        let value = c.authorize(&creds, "REGISTER", "sip:\"x\"", 0, "c\"");
        assert!(!value.contains('\r') && !value.contains('\n'), "{value}");
        let params = parse_digest(&value).unwrap();
        assert_eq!(field(&params, "username"), Some("a\"b\\cX-Injected: 1"));
        assert_eq!(field(&params, "realm"), Some("r\"\\"));
        assert_eq!(field(&params, "nonce"), Some("n\""));
        assert_eq!(field(&params, "opaque"), Some("\\o"));
        assert_eq!(field(&params, "uri"), Some("sip:\"x\""));
        assert_eq!(field(&params, "cnonce"), None);
        assert_eq!(field(&params, "nc"), None);
    }

    #[test]
    fn fuzz_body_on_samples() {
        for sample in [
            RFC2617,
            "Digest realm=a, nonce=n\nDigest realm=b, nonce=m, algorithm=SHA-256",
            "Digest realm=\"\\",
            "\u{0}\u{ff}",
            "Digest realm=\"\u{7f}\", nonce=n",
        ] {
            fuzz_challenge(sample.as_bytes());
        }
        fuzz_challenge(&[b'D', 0xff, 0xfe, b'"']);
    }

    /// A quoted string, escaped by a rule of the test's own: every `"` and `\`, and here and
    /// there another character too (any may be escaped).
    fn quote(s: &str, escape_all: bool) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            if c == '"' || c == '\\' || (escape_all && c.is_ascii_alphanumeric()) {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }

    fn random_case(s: &str, mask: u64) -> String {
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_challenge(&data);
        }

        #[test]
        fn never_panics_on_strings(s in any::<String>()) {
            fuzz_challenge(s.as_bytes());
            let _ = Challenge::parse(&s, false);
        }

        #[test]
        fn never_panics_on_challenge_like_text(
            s in r#"(Digest|digest|Basic)?[ \t\r\n,=\\"a-zA-Z0-9\-é]{0,200}"#
        ) {
            fuzz_challenge(s.as_bytes());
            let with_prefix = format!("Digest {s}");
            fuzz_challenge(with_prefix.as_bytes());
        }

        #[test]
        fn well_formed_challenges_read_back(
            realm in r#"[ -~é☃]{0,40}"#,
            nonce in r#"[ -~]{0,60}"#,
            opaque in proptest::option::of(r#"[ -~\t]{0,30}"#),
            algorithm in 0..Algorithm::ALL.len(),
            qop in 0..4usize,
            stale in any::<bool>(),
            case_mask in any::<u64>(),
            escape_all in any::<bool>(),
            order in any::<u64>(),
            ws in r#"[ \t]{0,3}"#,
            proxy in any::<bool>(),
        ) {
            let algorithm = Algorithm::ALL[algorithm];
            let mut params = vec![
                format!("{}={ws}{}", random_case("realm", case_mask), quote(&realm, escape_all)),
                format!("{}{ws}={}", random_case("nonce", case_mask >> 5), quote(&nonce, escape_all)),
                format!("{}={}", random_case("algorithm", case_mask >> 10), random_case(algorithm.name(), case_mask >> 19)),
                format!("stale={}", if stale { random_case("true", case_mask >> 30) } else { "false".to_owned() }),
                "x-unknown=\"a,b=c\"".to_owned(),
            ];
            match qop {
                0 => {}
                1 => params.push("qop=auth".to_owned()),
                2 => params.push("qop=\"auth-int, auth\"".to_owned()),
                _ => params.push(format!("QOP=\"{}\"", random_case("auth", case_mask >> 40))),
            }
            if let Some(opaque) = &opaque {
                params.push(format!("opaque={}", quote(opaque, escape_all)));
            }
            // A shuffle driven by `order`.
            let mut o = order;
            for i in (1..params.len()).rev() {
                let j = (o % (i as u64 + 1)) as usize;
                o /= i as u64 + 1;
                params.swap(i, j);
            }
            let value = format!("{}{ws} {}", random_case("Digest", case_mask >> 50), params.join(&format!("{ws},{ws}")));
            let c = Challenge::parse(&value, proxy).map_err(|e| TestCaseError::fail(format!("{value}: {e}")))?;
            prop_assert_eq!(&c.realm, &realm);
            prop_assert_eq!(&c.nonce, &nonce);
            prop_assert_eq!(&c.opaque, &opaque);
            prop_assert_eq!(c.algorithm, algorithm);
            prop_assert_eq!(c.qop, (qop != 0).then_some(Qop::Auth));
            prop_assert_eq!(c.stale, stale);
            prop_assert_eq!(c.proxy, proxy);
        }

        #[test]
        fn answers_read_back(
            username in r#"[ -~é]{0,30}"#,
            password in r#"[ -~]{0,30}"#,
            realm in r#"[ -~]{0,30}"#,
            nonce in r#"[!-~]{1,40}"#,
            opaque in proptest::option::of(r#"[ -~]{0,30}"#),
            uri in r#"sip:[!-~]{0,30}"#,
            cnonce in r#"[!-~]{0,20}"#,
            nc in any::<u32>(),
            algorithm in 0..Algorithm::ALL.len(),
            with_qop in any::<bool>(),
        ) {
            let algorithm = Algorithm::ALL[algorithm];
            let c = Challenge {
                realm: realm.clone(),
                nonce: nonce.clone(),
                opaque: opaque.clone(),
                algorithm,
                qop: with_qop.then_some(Qop::Auth),
                stale: false,
                userhash: false,
                proxy: false,
            };
            let creds = Credentials::new(username.clone(), password.clone());
            let value = c.authorize(&creds, "SUBSCRIBE", &uri, nc, &cnonce);
            prop_assert!(value.starts_with("Digest "));
            let params = parse_digest(&value).map_err(|e| TestCaseError::fail(format!("{value}: {e}")))?;
            prop_assert_eq!(field(&params, "username"), Some(username.as_str()));
            prop_assert_eq!(field(&params, "realm"), Some(realm.as_str()));
            prop_assert_eq!(field(&params, "nonce"), Some(nonce.as_str()));
            prop_assert_eq!(field(&params, "uri"), Some(uri.as_str()));
            prop_assert_eq!(field(&params, "algorithm"), Some(algorithm.name()));
            prop_assert_eq!(field(&params, "opaque"), opaque.as_deref());
            let nc_hex = format!("{nc:08x}");
            prop_assert_eq!(field(&params, "qop"), with_qop.then_some("auth"));
            prop_assert_eq!(field(&params, "nc"), with_qop.then_some(nc_hex.as_str()));
            prop_assert_eq!(
                field(&params, "cnonce"),
                (with_qop || algorithm.is_session()).then_some(cnonce.as_str())
            );
            // The response, by the formula with the test's own hash helpers.
            let h = |s: &str| match algorithm {
                Algorithm::Md5 | Algorithm::Md5Sess => md5_hex(s),
                Algorithm::Sha256 | Algorithm::Sha256Sess => sha256_hex(s),
                Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => sha512_256_hex(s),
            };
            let mut ha1 = h(&format!("{username}:{realm}:{password}"));
            if algorithm.is_session() {
                ha1 = h(&format!("{ha1}:{nonce}:{cnonce}"));
            }
            let ha2 = h(&format!("SUBSCRIBE:{uri}"));
            let expected = if with_qop {
                h(&format!("{ha1}:{nonce}:{nc_hex}:{cnonce}:auth:{ha2}"))
            } else {
                h(&format!("{ha1}:{nonce}:{ha2}"))
            };
            prop_assert_eq!(field(&params, "response"), Some(expected.as_str()));
        }
    }
}
