//! `name-addr` / `addr-spec` values (`From`, `To`, `Contact`, …) and a borrowed SIP URI view.

use std::fmt;

use crate::chars::{is_token_byte, is_wsp, trim_wsp};
use crate::error::{SipError, snippet_str};
use crate::params::{Params, find_param, parse_params, quote, quoted_end, skip_wsp, unquote};

/// A `name-addr` or `addr-spec` with its header parameters, as in `From`, `To`, `Contact`,
/// `Refer-To` (RFC 3261 §20.10, §25.1).
///
/// - `"Display" <sip:u@h;transport=tls>;tag=abc;epid=123`: display name `Display` (quotes
///   removed, `\` escapes resolved), URI `sip:u@h;transport=tls` (its own parameters stay in
///   the URI), header parameters `tag` and `epid`.
/// - `sip:u@h;tag=x` (no angle brackets): URI `sip:u@h`; every `;` parameter after it is a
///   header parameter (RFC 3261 §20.10).
///
/// Parameter values keep their quotes; read them with [`unquote`]. [`Display`](fmt::Display)
/// writes the canonical form: quoted display name, URI in `<…>`, then the parameters, which
/// [`NameAddr::parse`] reads back to an equal value.
///
/// ```
/// use presence_sip::NameAddr;
/// let from = NameAddr::parse(r#""Agent \"One\"" <sip:agent1@contoso.com>;tag=9f3a;epid=01c2d3"#)?;
/// assert_eq!(from.display_name.as_deref(), Some(r#"Agent "One""#));
/// assert_eq!(from.uri, "sip:agent1@contoso.com");
/// assert_eq!(from.tag(), Some("9f3a"));
/// assert_eq!(from.epid(), Some("01c2d3"));
/// assert_eq!(from.uri_ref()?.host, "contoso.com");
/// # Ok::<(), presence_sip::SipError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted; `None` when there is none.
    pub display_name: Option<String>,
    /// The URI, without angle brackets.
    pub uri: String,
    /// The header parameters after the URI, in order.
    pub params: Params,
}

fn addr_error(text: &str, at: usize, expected: &'static str) -> SipError {
    SipError::InvalidNameAddr {
        offset: at,
        token: snippet_str(text.get(at..).unwrap_or_default()),
        expected,
    }
}

/// Checks that `uri` looks like `scheme:rest` with no whitespace, quotes or angle brackets.
fn check_uri_text(text: &str, start: usize, uri: &str) -> Result<(), SipError> {
    let bytes = uri.as_bytes();
    let scheme_ok = bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes.iter().position(|&b| b == b':').is_some_and(|colon| {
            bytes.get(..colon).is_some_and(|scheme| {
                scheme
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            })
        });
    if !scheme_ok {
        return Err(addr_error(
            text,
            start,
            "a URI with a scheme, e.g. `sip:user@contoso.com`",
        ));
    }
    if let Some(bad) = bytes
        .iter()
        .position(|&b| is_wsp(b) || b < 0x20 || b == 0x7f || matches!(b, b'<' | b'>' | b'"'))
    {
        return Err(addr_error(
            text,
            start + bad,
            "a URI without whitespace, quotes or angle brackets",
        ));
    }
    Ok(())
}

impl NameAddr {
    /// A bare URI without display name or parameters.
    pub fn new(uri: impl Into<String>) -> Self {
        NameAddr {
            display_name: None,
            uri: uri.into(),
            params: Params::new(),
        }
    }

    /// Parses a `name-addr` or `addr-spec` followed by header parameters.
    ///
    /// # Errors
    /// [`SipError::InvalidNameAddr`] (offset from the start of `text`) for an unclosed quote
    /// or `<`, a URI without scheme or with whitespace; [`SipError::InvalidParam`] for a
    /// malformed parameter.
    pub fn parse(text: &str) -> Result<Self, SipError> {
        let bytes = text.as_bytes();
        let mut i = skip_wsp(bytes, 0);
        let Some(&first) = bytes.get(i) else {
            return Err(addr_error(
                text,
                i,
                "a name-addr (`\"Name\" <sip:…>`) or an addr-spec (`sip:…`)",
            ));
        };
        let display_name;
        let uri_start;
        let uri_end;
        let after;
        if first == b'"' {
            let Some(end) = quoted_end(bytes, i) else {
                return Err(addr_error(text, i, "a display name closed by `\"`"));
            };
            display_name = Some(unquote(text.get(i..end).unwrap_or_default()).into_owned());
            i = skip_wsp(bytes, end);
            if bytes.get(i) != Some(&b'<') {
                return Err(addr_error(text, i, "`<` after the quoted display name"));
            }
            (uri_start, uri_end, after) = angle(text, i)?;
        } else {
            let mut j = i;
            while bytes
                .get(j)
                .is_some_and(|&b| is_token_byte(b) || is_wsp(b) || b >= 0x80)
            {
                j += 1;
            }
            if bytes.get(j) == Some(&b'<') {
                let name = trim_wsp(text.get(i..j).unwrap_or_default());
                display_name = (!name.is_empty()).then(|| name.to_owned());
                (uri_start, uri_end, after) = angle(text, j)?;
            } else {
                display_name = None;
                let end = bytes
                    .iter()
                    .skip(i)
                    .position(|&b| b == b';')
                    .map_or(bytes.len(), |p| i + p);
                let uri = trim_wsp(text.get(i..end).unwrap_or_default());
                if let Some(comma) = uri.bytes().position(|b| b == b',' || b == b'?') {
                    return Err(addr_error(
                        text,
                        i + comma,
                        "`<…>` around a URI that contains `,` or `?`",
                    ));
                }
                (uri_start, uri_end, after) = (i, i + uri.len(), end);
            }
        }
        let uri = text.get(uri_start..uri_end).unwrap_or_default();
        check_uri_text(text, uri_start, uri)?;
        let params = parse_params(text.get(after..).unwrap_or_default(), after)?;
        Ok(NameAddr {
            display_name,
            uri: uri.to_owned(),
            params,
        })
    }

    /// A parsed view of [`uri`](Self::uri).
    ///
    /// # Errors
    /// As [`SipUriRef::parse`].
    pub fn uri_ref(&self) -> Result<SipUriRef<'_>, SipError> {
        SipUriRef::parse(&self.uri)
    }

    /// The value of the header parameter `name` (ASCII case-insensitive), quotes kept;
    /// `None` when absent or a flag without value.
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name).flatten()
    }

    /// Whether the header parameter `name` is present (with or without value).
    pub fn has_param(&self, name: &str) -> bool {
        find_param(&self.params, name).is_some()
    }

    /// Sets header parameter `name`: replaces the first one of that name, or appends.
    /// `value` must be a token or a quoted string (see [`quote`]).
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.params.push((name.to_owned(), value)),
        }
    }

    /// The `tag` parameter (dialog identification, RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.param("tag")
    }

    /// The `epid` parameter (MS-SIP endpoint identifier), quotes removed if any.
    pub fn epid(&self) -> Option<&str> {
        self.param("epid")
            .map(|v| v.trim_start_matches('"').trim_end_matches('"'))
    }
}

/// Parses `<uri>` at `open` (which holds `<`): returns the URI range (trimmed) and the index
/// after `>`.
fn angle(text: &str, open: usize) -> Result<(usize, usize, usize), SipError> {
    let bytes = text.as_bytes();
    let Some(close) = bytes
        .iter()
        .skip(open + 1)
        .position(|&b| b == b'>')
        .map(|p| open + 1 + p)
    else {
        return Err(addr_error(text, open, "a URI closed by `>`"));
    };
    let mut start = open + 1;
    let mut end = close;
    while start < end && bytes.get(start).is_some_and(|&b| is_wsp(b)) {
        start += 1;
    }
    while end > start && bytes.get(end - 1).is_some_and(|&b| is_wsp(b)) {
        end -= 1;
    }
    Ok((start, end, close + 1))
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            f.write_str(&quote(name))?;
            f.write_str(" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        let mut params = String::new();
        crate::params::write_params(&mut params, &self.params);
        f.write_str(&params)
    }
}

impl std::str::FromStr for NameAddr {
    type Err = SipError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A borrowed, parsed view of a `sip:` or `sips:` URI (RFC 3261 §19.1):
/// `sip:user:password@host:port;uri-parameters?headers`.
///
/// ```
/// use presence_sip::SipUriRef;
/// let gruu = SipUriRef::parse("sip:bridge@contoso.com;gruu;opaque=srvr:presence:AbC_1")?;
/// assert_eq!((gruu.scheme, gruu.user, gruu.host, gruu.port), ("sip", Some("bridge"), "contoso.com", None));
/// assert!(gruu.has_param("gruu"));
/// assert_eq!(gruu.param("opaque"), Some("srvr:presence:AbC_1"));
/// assert_eq!(gruu.to_string(), "sip:bridge@contoso.com;gruu;opaque=srvr:presence:AbC_1");
/// # Ok::<(), presence_sip::SipError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUriRef<'a> {
    /// `sip` or `sips`, as written.
    pub scheme: &'a str,
    /// The user part, before `@` (without password).
    pub user: Option<&'a str>,
    /// The password after `user:`, if any.
    pub password: Option<&'a str>,
    /// The host: a name, an IPv4 address or a bracketed IPv6 reference.
    pub host: &'a str,
    /// The port, if given.
    pub port: Option<u16>,
    /// URI parameters in order (`transport=tls`, `gruu`, `opaque=…`, `maddr=…`).
    pub params: Vec<(&'a str, Option<&'a str>)>,
    /// The header part after `?`, unparsed.
    pub headers: Option<&'a str>,
}

fn uri_error(text: &str, at: usize, expected: &'static str) -> SipError {
    SipError::InvalidUri {
        offset: at,
        token: snippet_str(text.get(at..).unwrap_or_default()),
        expected,
    }
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

impl<'a> SipUriRef<'a> {
    /// Parses a `sip:`/`sips:` URI.
    ///
    /// # Errors
    /// [`SipError::InvalidUri`] (offset from the start of `text`) for another scheme, an empty
    /// user before `@`, an empty or malformed host, a port that is not `0..=65535`, an empty
    /// parameter name or value, or whitespace, quotes or angle brackets anywhere.
    pub fn parse(text: &'a str) -> Result<Self, SipError> {
        let bytes = text.as_bytes();
        if let Some(bad) = bytes
            .iter()
            .position(|&b| b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"'))
        {
            return Err(uri_error(
                text,
                bad,
                "a URI without whitespace, control characters, quotes or angle brackets",
            ));
        }
        let colon = bytes.iter().position(|&b| b == b':');
        let scheme = colon.and_then(|c| text.get(..c)).unwrap_or_default();
        let (Some(colon), true) = (
            colon,
            scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips"),
        ) else {
            return Err(uri_error(text, 0, "a `sip:` or `sips:` URI"));
        };
        let mut i = colon + 1;
        let (mut user, mut password) = (None, None);
        if let Some(at) = bytes.iter().skip(i).position(|&b| b == b'@') {
            let userinfo = text.get(i..i + at).unwrap_or_default();
            let (u, p) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if u.is_empty() {
                return Err(uri_error(text, i, "a user before `@`"));
            }
            user = Some(u);
            password = p;
            i += at + 1;
        }
        let host_start = i;
        if bytes.get(i) == Some(&b'[') {
            let Some(close) = bytes.iter().skip(i).position(|&b| b == b']') else {
                return Err(uri_error(text, i, "an IPv6 reference closed by `]`"));
            };
            let inner = bytes.get(i + 1..i + close).unwrap_or_default();
            if inner.is_empty()
                || !inner
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(uri_error(
                    text,
                    i,
                    "an IPv6 reference of hex digits, `:` and `.` in brackets",
                ));
            }
            i += close + 1;
        } else {
            while bytes.get(i).is_some_and(|&b| is_host_byte(b)) {
                i += 1;
            }
        }
        let host = text.get(host_start..i).unwrap_or_default();
        if host.is_empty() {
            return Err(uri_error(
                text,
                host_start,
                "a host name or address, e.g. `contoso.com` or `10.0.0.1`",
            ));
        }
        let mut port = None;
        if bytes.get(i) == Some(&b':') {
            let port_start = i + 1;
            i = port_start;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let digits = text.get(port_start..i).unwrap_or_default();
            match crate::chars::parse_decimal(digits).and_then(|p| u16::try_from(p).ok()) {
                Some(p) => port = Some(p),
                None => {
                    return Err(uri_error(text, port_start, "a port number 0 to 65535"));
                }
            }
        }
        let mut params = Vec::new();
        while bytes.get(i) == Some(&b';') {
            let start = i + 1;
            let end = bytes
                .iter()
                .skip(start)
                .position(|&b| b == b';' || b == b'?')
                .map_or(bytes.len(), |p| start + p);
            let param = text.get(start..end).unwrap_or_default();
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (param, None),
            };
            if name.is_empty() {
                return Err(uri_error(text, start, "a parameter name after `;`"));
            }
            if value == Some("") {
                return Err(uri_error(
                    text,
                    start + name.len() + 1,
                    "a parameter value after `=`",
                ));
            }
            params.push((name, value));
            i = end;
        }
        let headers = match bytes.get(i) {
            None => None,
            Some(b'?') => Some(text.get(i + 1..).unwrap_or_default()),
            Some(_) => {
                return Err(uri_error(
                    text,
                    i,
                    "`:port`, `;parameter` or `?headers` after the host",
                ));
            }
        };
        Ok(SipUriRef {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// The value of URI parameter `name` (ASCII case-insensitive); `None` when absent or a
    /// flag.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| *v)
    }

    /// Whether URI parameter `name` is present (with or without value).
    pub fn has_param(&self, name: &str) -> bool {
        self.params
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The `transport` parameter (`tcp`, `tls`, …).
    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport")
    }

    /// `scheme:user@host` (no port, parameters or headers), the form SfB uses as a user's
    /// address of record; the scheme and host are lower-cased, the user is kept.
    pub fn address_of_record(&self) -> String {
        let mut out = self.scheme.to_ascii_lowercase();
        out.push(':');
        if let Some(user) = self.user {
            out.push_str(user);
            out.push('@');
        }
        out.push_str(&self.host.to_ascii_lowercase());
        out
    }
}

impl fmt::Display for SipUriRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(user) = self.user {
            f.write_str(user)?;
            if let Some(password) = self.password {
                write!(f, ":{password}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for (name, value) in &self.params {
            write!(f, ";{name}")?;
            if let Some(value) = value {
                write!(f, "={value}")?;
            }
        }
        if let Some(headers) = self.headers {
            write!(f, "?{headers}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: Option<&str>) -> (String, Option<String>) {
        (name.to_owned(), value.map(str::to_owned))
    }

    #[test]
    fn quoted_display_name_with_uri_params_and_header_params() {
        let a = NameAddr::parse(r#""Display" <sip:u@h;transport=tls>;tag=abc;epid=123"#).unwrap();
        assert_eq!(a.display_name.as_deref(), Some("Display"));
        assert_eq!(a.uri, "sip:u@h;transport=tls");
        assert_eq!(
            a.params,
            vec![p("tag", Some("abc")), p("epid", Some("123"))]
        );
        assert_eq!(a.uri_ref().unwrap().transport(), Some("tls"));
        assert_eq!(a.tag(), Some("abc"));
        assert_eq!(a.epid(), Some("123"));
    }

    #[test]
    fn bare_addr_spec_params_belong_to_the_header() {
        let a = NameAddr::parse("sip:u@h;tag=x;gruu").unwrap();
        assert_eq!(a.display_name, None);
        assert_eq!(a.uri, "sip:u@h");
        assert_eq!(a.params, vec![p("tag", Some("x")), p("gruu", None)]);
        assert!(a.has_param("GRUU"));
        assert_eq!(a.param("gruu"), None);
        let b = NameAddr::parse("  sip:u@h  ").unwrap();
        assert_eq!((b.uri.as_str(), b.params.len()), ("sip:u@h", 0));
    }

    #[test]
    fn token_display_names_and_escapes() {
        let a = NameAddr::parse("Agent One <sip:a1@contoso.com>").unwrap();
        assert_eq!(a.display_name.as_deref(), Some("Agent One"));
        let a = NameAddr::parse("<sip:a1@contoso.com>;tag=1").unwrap();
        assert_eq!(a.display_name, None);
        let a = NameAddr::parse(r#""A \"B\" \\ C, D" <sips:x@y>"#).unwrap();
        assert_eq!(a.display_name.as_deref(), Some(r#"A "B" \ C, D"#));
        let a = NameAddr::parse(r#""" <sip:x@y>"#).unwrap();
        assert_eq!(a.display_name.as_deref(), Some(""));
        let a = NameAddr::parse("Jörg Müller <sip:j@y>").unwrap();
        assert_eq!(a.display_name.as_deref(), Some("Jörg Müller"));
        let a = NameAddr::parse(r#"<sip:x@y>;+sip.instance="<urn:uuid:1>""#).unwrap();
        assert_eq!(a.param("+sip.instance"), Some(r#""<urn:uuid:1>""#));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            r#""Display" <sip:u@h;transport=tls>;tag=abc;epid=123"#,
            "sip:u@h;tag=x",
            r#""A \"B\"" <tel:+1234>;x="q;r""#,
            "<sip:bridge@contoso.com;gruu;opaque=srvr:x>",
        ] {
            let a = NameAddr::parse(text).unwrap();
            let again = NameAddr::parse(&a.to_string()).unwrap();
            assert_eq!(a, again, "{text}");
        }
        let mut a = NameAddr::new("sip:a@b");
        a.set_param("tag", Some("1"));
        a.set_param("TAG", Some("2"));
        a.set_param("epid", Some("e"));
        assert_eq!(a.to_string(), "<sip:a@b>;tag=2;epid=e");
    }

    #[test]
    fn name_addr_errors() {
        for (text, offset) in [
            ("", 0),
            ("   ", 3),
            (r#""open <sip:a@b>"#, 0),
            (r#""x" sip:a@b"#, 4),
            ("<sip:a@b", 0),
            ("<>", 1),
            ("<no-scheme>", 1),
            ("<sip:a b@c>", 6),
            ("sip:a@b,sip:c@d", 7),
            ("*", 0),
        ] {
            match NameAddr::parse(text) {
                Err(SipError::InvalidNameAddr { offset: got, .. }) => {
                    assert_eq!(got, offset, "{text:?}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(matches!(
            NameAddr::parse("<sip:a@b>;tag="),
            Err(SipError::InvalidParam { offset: 14, .. })
        ));
        assert!(matches!(
            NameAddr::parse("<sip:a@b> junk"),
            Err(SipError::InvalidParam { offset: 10, .. })
        ));
    }

    #[test]
    fn sip_uri_parts() {
        let u = SipUriRef::parse("sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?subject=x")
            .unwrap();
        assert_eq!(u.scheme, "sips");
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params, vec![("transport", Some("tls")), ("lr", None)]);
        assert_eq!(u.headers, Some("subject=x"));
        assert_eq!(
            u.to_string(),
            "sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr?subject=x"
        );
        let u = SipUriRef::parse("SIP:pool.contoso.com").unwrap();
        assert_eq!((u.user, u.host, u.port), (None, "pool.contoso.com", None));
        assert_eq!(u.address_of_record(), "sip:pool.contoso.com");
        let u = SipUriRef::parse("sip:+4930123;phone-context=x@Contoso.COM:5060").unwrap();
        assert_eq!(u.user, Some("+4930123;phone-context=x"));
        assert_eq!(
            u.address_of_record(),
            "sip:+4930123;phone-context=x@contoso.com"
        );
    }

    #[test]
    fn sip_uri_errors() {
        for (text, offset) in [
            ("", 0),
            ("tel:+1234", 0),
            ("sip", 0),
            ("sip:", 4),
            ("sip:@host", 4),
            ("sip:a@", 6),
            ("sip:a@h:", 8),
            ("sip:a@h:70000", 8),
            ("sip:a@h:50x", 10),
            ("sip:a@h;=v", 8),
            ("sip:a@h;n=", 10),
            ("sip:a@[zz]", 6),
            ("sip:a@[::1", 6),
            ("sip:a b@h", 5),
            ("sip:a@h>", 7),
            ("sip:a@h/x", 7),
        ] {
            match SipUriRef::parse(text) {
                Err(SipError::InvalidUri { offset: got, .. }) => {
                    assert_eq!(got, offset, "{text:?}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
