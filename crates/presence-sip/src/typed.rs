//! Typed views of individual headers and the typed helpers of [`Headers`].

use std::borrow::Cow;
use std::fmt;

use crate::chars::{is_token, is_token_byte, is_wsp, parse_decimal, trim_wsp};
use crate::error::{SipError, snippet_str};
use crate::headers::{Headers, canonical_name};
use crate::method::Method;
use crate::name_addr::NameAddr;
use crate::params::{
    Params, find_param, parse_params, scan_params, skip_wsp, split_list, unquote, write_params,
};

fn value_error(name: &str, text: &str, at: usize, expected: &'static str) -> SipError {
    SipError::InvalidHeaderValue {
        name: name.to_owned(),
        offset: at,
        token: snippet_str(text.get(at..).unwrap_or_default()),
        expected,
    }
}

/// Parses a `Content-Length` value: decimal digits only, no sign, no overflow.
pub(crate) fn parse_content_length(value: &str) -> Option<usize> {
    parse_decimal(value).and_then(|n| usize::try_from(n).ok())
}

/// A `CSeq` header: sequence number and method (RFC 3261 §20.16).
///
/// ```
/// let cseq: presence_sip::CSeq = "4 SERVICE".parse()?;
/// assert_eq!((cseq.seq, cseq.method.as_str()), (4, "SERVICE"));
/// assert_eq!(cseq.to_string(), "4 SERVICE");
/// # Ok::<(), presence_sip::SipError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// The sequence number.
    pub seq: u32,
    /// The method of the request.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    ///
    /// # Errors
    /// [`SipError::InvalidHeaderValue`] naming `CSeq`, offset from the start of `text`.
    pub fn parse(text: &str) -> Result<Self, SipError> {
        const EXPECTED: &str = "`<sequence number 0..2^32-1> <METHOD>`, e.g. `1 SERVICE`";
        let bytes = text.as_bytes();
        let start = skip_wsp(bytes, 0);
        let mut i = start;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let seq = text
            .get(start..i)
            .and_then(parse_decimal)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| value_error("CSeq", text, start, EXPECTED))?;
        let method_start = skip_wsp(bytes, i);
        if method_start == i {
            return Err(value_error("CSeq", text, i, EXPECTED));
        }
        let method_text = trim_wsp(text.get(method_start..).unwrap_or_default());
        if !is_token(method_text.as_bytes()) {
            return Err(value_error("CSeq", text, method_start, EXPECTED));
        }
        Ok(CSeq {
            seq,
            method: Method::from_valid_token(method_text),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

impl std::str::FromStr for CSeq {
    type Err = SipError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One `Via` element (`via-parm`, RFC 3261 §20.42): `SIP/2.0/TLS host:port;branch=…`.
///
/// ```
/// let via = presence_sip::Via::parse("SIP / 2.0 / TLS 10.0.0.5:5061;branch=z9hG4bK74b;received=10.0.0.9")?;
/// assert_eq!((via.protocol.as_str(), via.transport.as_str()), ("SIP/2.0", "TLS"));
/// assert_eq!(via.sent_by, "10.0.0.5:5061");
/// assert_eq!(via.branch(), Some("z9hG4bK74b"));
/// assert_eq!(via.to_string(), "SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK74b;received=10.0.0.9");
/// # Ok::<(), presence_sip::SipError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name and version, `SIP/2.0`.
    pub protocol: String,
    /// The transport: `TCP`, `TLS`, `UDP`, …
    pub transport: String,
    /// `host[:port]` as written.
    pub sent_by: String,
    /// `branch`, `received`, `rport`, `ms-received-port`, … in order.
    pub params: Params,
}

impl Via {
    /// Parses one `via-parm` (split a multi-valued header with
    /// [`Headers::values`] first).
    ///
    /// # Errors
    /// [`SipError::InvalidHeaderValue`] naming `Via`, or [`SipError::InvalidParam`].
    pub fn parse(text: &str) -> Result<Self, SipError> {
        let parts = ViaParts::read(text)?;
        let [name, version] = parts.protocol;
        Ok(Via {
            protocol: format!("{name}/{version}"),
            transport: parts.transport.to_owned(),
            sent_by: parts.sent_by.to_owned(),
            params: parse_params(parts.params, parts.params_at)?,
        })
    }

    /// The `branch` parameter (transaction id; `z9hG4bK…` for RFC 3261 peers).
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch").flatten()
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        find_param(&self.params, "received").flatten()
    }
}

/// A `via-parm` split as [`Via::parse`] splits it (with its checks), as slices of the
/// text: the parameters are not read yet.
struct ViaParts<'a> {
    /// Protocol name and version.
    protocol: [&'a str; 2],
    transport: &'a str,
    sent_by: &'a str,
    /// The parameter list, and its offset in the text.
    params: &'a str,
    params_at: usize,
}

impl<'a> ViaParts<'a> {
    /// Splits `text`, with the checks and errors of [`Via::parse`].
    fn read(text: &'a str) -> Result<Self, SipError> {
        const EXPECTED: &str = "`SIP/2.0/<transport> <host>[:<port>][;params]`";
        let bytes = text.as_bytes();
        let mut parts: [&str; 3] = [""; 3];
        let mut i = skip_wsp(bytes, 0);
        for (n, part) in parts.iter_mut().enumerate() {
            let start = i;
            while bytes.get(i).is_some_and(|&b| is_token_byte(b)) {
                i += 1;
            }
            if i == start {
                return Err(value_error("Via", text, start, EXPECTED));
            }
            *part = text.get(start..i).unwrap_or_default();
            if n < 2 {
                i = skip_wsp(bytes, i);
                if bytes.get(i) != Some(&b'/') {
                    return Err(value_error("Via", text, i, EXPECTED));
                }
                i = skip_wsp(bytes, i + 1);
            }
        }
        let after_protocol = i;
        i = skip_wsp(bytes, i);
        if i == after_protocol {
            return Err(value_error("Via", text, i, EXPECTED));
        }
        let sent_by_start = i;
        while bytes
            .get(i)
            .is_some_and(|&b| !is_wsp(b) && b != b';' && b != b',')
        {
            i += 1;
        }
        if i == sent_by_start {
            return Err(value_error("Via", text, i, EXPECTED));
        }
        let [name, version, transport] = parts;
        Ok(ViaParts {
            protocol: [name, version],
            transport,
            sent_by: text.get(sent_by_start..i).unwrap_or_default(),
            params: text.get(i..).unwrap_or_default(),
            params_at: i,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut params = String::new();
        write_params(&mut params, &self.params);
        write!(
            f,
            "{}/{} {}{params}",
            self.protocol, self.transport, self.sent_by
        )
    }
}

/// A `Content-Type` header: media type and parameters (RFC 3261 §20.15).
///
/// ```
/// let ct = presence_sip::ContentType::parse(
///     r#"multipart/related; type="application/rlmi+xml"; boundary="b1""#)?;
/// assert!(ct.is("Multipart/Related"));
/// assert_eq!(ct.boundary().as_deref(), Some("b1"));
/// # Ok::<(), presence_sip::SipError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// `type/subtype` as written.
    pub media_type: String,
    /// Parameters (`charset`, `boundary`, `type`, …), quotes kept.
    pub params: Params,
}

impl ContentType {
    /// Parses `type "/" subtype *( ";" parameter )`.
    ///
    /// # Errors
    /// [`SipError::InvalidHeaderValue`] naming `Content-Type`, or [`SipError::InvalidParam`].
    pub fn parse(text: &str) -> Result<Self, SipError> {
        const EXPECTED: &str = "`type/subtype[;param=value]`, e.g. `application/sdp`";
        let bytes = text.as_bytes();
        let start = skip_wsp(bytes, 0);
        let mut i = start;
        while bytes.get(i).is_some_and(|&b| is_token_byte(b)) {
            i += 1;
        }
        let slash = skip_wsp(bytes, i);
        if i == start || bytes.get(slash) != Some(&b'/') {
            return Err(value_error("Content-Type", text, start, EXPECTED));
        }
        let type_end = i;
        let sub_start = skip_wsp(bytes, slash + 1);
        i = sub_start;
        while bytes.get(i).is_some_and(|&b| is_token_byte(b)) {
            i += 1;
        }
        if i == sub_start {
            return Err(value_error("Content-Type", text, sub_start, EXPECTED));
        }
        Ok(ContentType {
            media_type: format!(
                "{}/{}",
                text.get(start..type_end).unwrap_or_default(),
                text.get(sub_start..i).unwrap_or_default()
            ),
            params: parse_params(text.get(i..).unwrap_or_default(), i)?,
        })
    }

    /// Whether the media type is `essence` (`type/subtype`, ASCII case-insensitive).
    pub fn is(&self, essence: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(trim_wsp(essence))
    }

    /// A parameter's value, unquoted.
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        find_param(&self.params, name).flatten().map(unquote)
    }

    /// The `boundary` parameter of a multipart type, unquoted.
    pub fn boundary(&self) -> Option<Cow<'_, str>> {
        self.param("boundary")
    }

    /// The `charset` parameter, unquoted.
    pub fn charset(&self) -> Option<Cow<'_, str>> {
        self.param("charset")
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut params = String::new();
        write_params(&mut params, &self.params);
        write!(f, "{}{params}", self.media_type)
    }
}

/// The state of a `Subscription-State` header (RFC 6665 §8.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubState {
    /// `active`: the subscription is accepted.
    Active,
    /// `pending`: awaiting authorization.
    Pending,
    /// `terminated`: over; subscribe again if wanted (see `reason`).
    Terminated,
    /// Another token, as written.
    Other(String),
}

impl SubState {
    /// The state's token.
    pub fn as_str(&self) -> &str {
        match self {
            SubState::Active => "active",
            SubState::Pending => "pending",
            SubState::Terminated => "terminated",
            SubState::Other(token) => token,
        }
    }
}

/// A `Subscription-State` header: state and parameters (`expires`, `reason`,
/// `retry-after`).
///
/// ```
/// let s = presence_sip::SubscriptionState::parse("terminated;reason=timeout;retry-after=30")?;
/// assert_eq!(s.state, presence_sip::SubState::Terminated);
/// assert_eq!((s.reason(), s.retry_after()), (Some("timeout"), Some(30)));
/// # Ok::<(), presence_sip::SipError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// The state.
    pub state: SubState,
    /// The parameters in order.
    pub params: Params,
}

impl SubscriptionState {
    /// Parses `substate-value *( ";" subexp-params )`; states match case-insensitively.
    ///
    /// # Errors
    /// [`SipError::InvalidHeaderValue`] naming `Subscription-State`, or
    /// [`SipError::InvalidParam`].
    pub fn parse(text: &str) -> Result<Self, SipError> {
        let bytes = text.as_bytes();
        let start = skip_wsp(bytes, 0);
        let mut i = start;
        while bytes.get(i).is_some_and(|&b| is_token_byte(b)) {
            i += 1;
        }
        if i == start {
            return Err(value_error(
                "Subscription-State",
                text,
                start,
                "`active`, `pending` or `terminated`, then `;param=value`s",
            ));
        }
        let token = text.get(start..i).unwrap_or_default();
        let state = if token.eq_ignore_ascii_case("active") {
            SubState::Active
        } else if token.eq_ignore_ascii_case("pending") {
            SubState::Pending
        } else if token.eq_ignore_ascii_case("terminated") {
            SubState::Terminated
        } else {
            SubState::Other(token.to_owned())
        };
        Ok(SubscriptionState {
            state,
            params: parse_params(text.get(i..).unwrap_or_default(), i)?,
        })
    }

    fn number(&self, name: &str) -> Option<u32> {
        find_param(&self.params, name)
            .flatten()
            .and_then(parse_decimal)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The `expires` parameter in seconds (saturating at `u32::MAX`).
    pub fn expires(&self) -> Option<u32> {
        self.number("expires")
    }

    /// The `retry-after` parameter in seconds (saturating at `u32::MAX`).
    pub fn retry_after(&self) -> Option<u32> {
        self.number("retry-after")
    }

    /// The `reason` parameter (`timeout`, `deactivated`, `noresource`, …).
    pub fn reason(&self) -> Option<&str> {
        find_param(&self.params, "reason").flatten()
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut params = String::new();
        write_params(&mut params, &self.params);
        write!(f, "{}{params}", self.state.as_str())
    }
}

/// An `ms-diagnostics` (or `ms-diagnostics-public`) header ([MS-OCER]): a numeric code and
/// parameters such as `reason="…"` and `source="…"`.
///
/// ```
/// let d = presence_sip::MsDiagnostics::parse(
///     r#"2;reason="See response code and reason phrase";source="fe01.contoso.com""#)?;
/// assert_eq!(d.code, 2);
/// assert_eq!(d.reason().as_deref(), Some("See response code and reason phrase"));
/// assert_eq!(d.source().as_deref(), Some("fe01.contoso.com"));
/// # Ok::<(), presence_sip::SipError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsDiagnostics {
    /// The diagnostic code.
    pub code: u32,
    /// The parameters, quotes kept.
    pub params: Params,
}

impl MsDiagnostics {
    /// Parses `code *( ";" param )`.
    ///
    /// # Errors
    /// [`SipError::InvalidHeaderValue`] naming `ms-diagnostics`, or [`SipError::InvalidParam`].
    pub fn parse(text: &str) -> Result<Self, SipError> {
        let bytes = text.as_bytes();
        let start = skip_wsp(bytes, 0);
        let mut i = start;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let code = text
            .get(start..i)
            .and_then(parse_decimal)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                value_error(
                    "ms-diagnostics",
                    text,
                    start,
                    "a numeric code then `;reason=\"…\";source=\"…\"`",
                )
            })?;
        Ok(MsDiagnostics {
            code,
            params: parse_params(text.get(i..).unwrap_or_default(), i)?,
        })
    }

    /// The `reason` parameter, unquoted.
    pub fn reason(&self) -> Option<Cow<'_, str>> {
        find_param(&self.params, "reason").flatten().map(unquote)
    }

    /// The `source` parameter (the server that produced it), unquoted.
    pub fn source(&self) -> Option<Cow<'_, str>> {
        find_param(&self.params, "source").flatten().map(unquote)
    }
}

impl fmt::Display for MsDiagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut params = String::new();
        write_params(&mut params, &self.params);
        write!(f, "{}{params}", self.code)
    }
}

/// Typed helpers. Each reads the first field of its header (the top-most `Via`), returns
/// `Ok(None)` when it is absent and wraps a parse failure in [`SipError::InHeader`].
impl Headers {
    fn typed<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, SipError>,
    ) -> Result<Option<T>, SipError> {
        self.get(name)
            .map(|value| parse(value).map_err(|e| e.in_header(canonical_name(name))))
            .transpose()
    }

    /// `Call-ID` (or `i`).
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID")
    }

    /// `CSeq`.
    ///
    /// # Errors
    /// See [`CSeq::parse`].
    pub fn cseq(&self) -> Result<Option<CSeq>, SipError> {
        self.typed("CSeq", CSeq::parse)
    }

    /// `Content-Length` (or `l`). Several fields must agree.
    ///
    /// # Errors
    /// [`SipError::InvalidHeaderValue`] for a value that is not a decimal byte count,
    /// [`SipError::ConflictingContentLength`] for two different values (offset: the
    /// position of the field among the headers).
    pub fn content_length(&self) -> Result<Option<usize>, SipError> {
        let mut found: Option<usize> = None;
        for (index, value) in self.get_all("Content-Length").enumerate() {
            let n = parse_content_length(value).ok_or_else(|| {
                value_error("Content-Length", value, 0, "a decimal byte count, e.g. `0`")
            })?;
            match found {
                Some(first) if first != n => {
                    return Err(SipError::ConflictingContentLength {
                        offset: index,
                        first,
                        second: n,
                    });
                }
                _ => found = Some(n),
            }
        }
        Ok(found)
    }

    /// `Content-Type` (or `c`).
    ///
    /// # Errors
    /// See [`ContentType::parse`].
    pub fn content_type(&self) -> Result<Option<ContentType>, SipError> {
        self.typed("Content-Type", ContentType::parse)
    }

    /// `Expires` in seconds; values above `u32::MAX` read as `u32::MAX` (RFC 3261 §20.19).
    ///
    /// # Errors
    /// [`SipError::InHeader`] when the value is not a decimal number.
    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        self.typed("Expires", |v| {
            let digits = trim_wsp(v);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(value_error(
                    "Expires",
                    v,
                    0,
                    "a number of seconds, e.g. `3600`",
                ));
            }
            Ok(parse_decimal(digits).map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)))
        })
    }

    /// The top-most `Via` element: the first element of the first `Via` (or `v`) field.
    ///
    /// # Errors
    /// See [`Via::parse`].
    pub fn top_via(&self) -> Result<Option<Via>, SipError> {
        self.get("Via")
            .and_then(|v| split_list(v).next())
            .map(|first| Via::parse(first).map_err(|e| e.in_header("Via")))
            .transpose()
    }

    /// The `branch` of the top-most `Via`.
    ///
    /// # Errors
    /// See [`Via::parse`].
    pub fn via_branch(&self) -> Result<Option<String>, SipError> {
        let Some(first) = self.get("Via").and_then(|v| split_list(v).next()) else {
            return Ok(None);
        };
        // What `top_via()?.branch()` gives, without building the Via.
        let parts = ViaParts::read(first).map_err(|e| e.in_header("Via"))?;
        let mut branch = None;
        scan_params(parts.params, parts.params_at, |name, value| {
            if branch.is_none() && name.eq_ignore_ascii_case("branch") {
                branch = Some(value);
            }
        })
        .map_err(|e| e.in_header("Via"))?;
        Ok(branch.flatten().map(str::to_owned))
    }

    /// `From` (or `f`).
    ///
    /// # Errors
    /// See [`NameAddr::parse`].
    pub fn from_addr(&self) -> Result<Option<NameAddr>, SipError> {
        self.typed("From", NameAddr::parse)
    }

    /// `To` (or `t`).
    ///
    /// # Errors
    /// See [`NameAddr::parse`].
    pub fn to_addr(&self) -> Result<Option<NameAddr>, SipError> {
        self.typed("To", NameAddr::parse)
    }

    /// The first `Contact` (or `m`) element.
    ///
    /// # Errors
    /// See [`NameAddr::parse`].
    pub fn contact(&self) -> Result<Option<NameAddr>, SipError> {
        self.get("Contact")
            .and_then(|v| split_list(v).next())
            .map(|first| NameAddr::parse(first).map_err(|e| e.in_header("Contact")))
            .transpose()
    }

    /// The `tag` parameter of `From`.
    ///
    /// # Errors
    /// See [`NameAddr::parse`].
    pub fn from_tag(&self) -> Result<Option<String>, SipError> {
        Ok(self.from_addr()?.and_then(|a| a.tag().map(str::to_owned)))
    }

    /// The `tag` parameter of `To`.
    ///
    /// # Errors
    /// See [`NameAddr::parse`].
    pub fn to_tag(&self) -> Result<Option<String>, SipError> {
        Ok(self.to_addr()?.and_then(|a| a.tag().map(str::to_owned)))
    }

    /// The `epid` parameter of `From` (the MS-SIP endpoint id of the sender).
    ///
    /// # Errors
    /// See [`NameAddr::parse`].
    pub fn epid(&self) -> Result<Option<String>, SipError> {
        Ok(self.from_addr()?.and_then(|a| a.epid().map(str::to_owned)))
    }

    /// `Subscription-State`.
    ///
    /// # Errors
    /// See [`SubscriptionState::parse`].
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState>, SipError> {
        self.typed("Subscription-State", SubscriptionState::parse)
    }

    /// `ms-diagnostics` ([MS-OCER]); `ms-diagnostics-public` when there is no
    /// `ms-diagnostics`.
    ///
    /// # Errors
    /// See [`MsDiagnostics::parse`].
    pub fn ms_diagnostics(&self) -> Result<Option<MsDiagnostics>, SipError> {
        if self.contains("ms-diagnostics") {
            self.typed("ms-diagnostics", MsDiagnostics::parse)
        } else {
            self.typed("ms-diagnostics-public", MsDiagnostics::parse)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.append(n, v).unwrap();
        }
        h
    }

    /// `via_branch` reads the top Via without building it: the same answer, errors
    /// included, as `top_via()` and `branch()`.
    fn via_branch_as_top_via(value: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut h = Headers::new();
        if h.append("Via", value).is_err() {
            return Ok(());
        }
        let expected = h
            .top_via()
            .map(|via| via.and_then(|v| v.branch().map(str::to_owned)));
        // Errors compared by everything they hold.
        let debug = |e: SipError| format!("{e:?}");
        proptest::prop_assert_eq!(
            h.via_branch().map_err(debug),
            expected.map_err(debug),
            "{:?}",
            value
        );
        Ok(())
    }

    #[test]
    fn via_branch_reads_the_top_via_like_top_via() {
        for value in [
            "SIP/2.0/TCP host:5060;branch=z9hG4bK1",
            " SIP / 2.0 / TLS [::1]:5061 ; received=1.2.3.4 ; BRANCH = \"q;b\" ;branch=x",
            "SIP/2.0/TCP h;rport;branch;branch=y, SIP/2.0/UDP other;branch=z",
            "SIP/2.0/TCP h",
            "SIP/2.0/TCP h;branch=",
            "SIP/2.0/TCP h;=x",
            "SIP/2.0/TCP h;branch=\"open",
            "SIP/2.0 TCP h;branch=a",
            "SIP/2.0/TCP ;branch=a",
            "\"quoted, comma\";branch=a",
            "",
        ] {
            via_branch_as_top_via(value).unwrap();
        }
    }

    proptest::proptest! {
        #[test]
        fn via_branch_agrees_with_top_via(
            value in "( |SIP|/|2\\.0|TCP|h|:5060|;|=|branch|BRANCH|rport|\"|\\\\|,|x|z9hG4bK[0-9a-f]{4}|\t)*"
        ) {
            via_branch_as_top_via(&value)?;
        }
    }

    #[test]
    fn cseq_forms() {
        assert_eq!(
            CSeq::parse(" 314159   INVITE ").unwrap(),
            CSeq {
                seq: 314_159,
                method: Method::Invite
            }
        );
        assert_eq!(CSeq::parse("1 BENOTIFY").unwrap().method, Method::Benotify);
        assert_eq!(
            CSeq::parse("7 X-FOO").unwrap().method,
            Method::Extension("X-FOO".into())
        );
        for (bad, offset) in [
            ("", 0),
            ("INVITE", 0),
            ("1", 1),
            ("1INVITE", 1),
            ("4294967296 ACK", 0),
            ("1 IN VITE", 2),
            ("-1 ACK", 0),
        ] {
            match CSeq::parse(bad) {
                Err(SipError::InvalidHeaderValue {
                    name, offset: got, ..
                }) => {
                    assert_eq!((name.as_str(), got), ("CSeq", offset), "{bad:?}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn via_forms() {
        let v = Via::parse("SIP/2.0/TCP 192.168.0.4:49152;branch=z9hG4bKabc;rport;ms-received-port=1;ms-received-cid=2A00").unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.sent_by, "192.168.0.4:49152");
        assert_eq!(v.branch(), Some("z9hG4bKabc"));
        assert_eq!(v.received(), None);
        assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
        let v = Via::parse("SIP/2.0/TLS [2001:db8::9]:5061").unwrap();
        assert_eq!(
            (v.sent_by.as_str(), v.branch()),
            ("[2001:db8::9]:5061", None)
        );
        for bad in [
            "",
            "SIP/2.0 host",
            "SIP/2.0/TLS",
            "SIP/2.0/TLShost",
            "SIP//TLS h",
            "SIP/2.0/TLS h;",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_type_forms() {
        let ct = ContentType::parse("application/msrtc-category-publish+xml").unwrap();
        assert!(ct.is("APPLICATION/msrtc-category-publish+xml"));
        assert!(ct.params.is_empty());
        let ct = ContentType::parse("text/plain ; charset=UTF-8").unwrap();
        assert_eq!(ct.charset().as_deref(), Some("UTF-8"));
        assert_eq!(ct.to_string(), "text/plain;charset=UTF-8");
        for bad in ["", "text", "text/", "/plain", "text/plain junk"] {
            assert!(ContentType::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subscription_state_forms() {
        let s = SubscriptionState::parse("active;expires=3600").unwrap();
        assert_eq!(
            (s.state.clone(), s.expires()),
            (SubState::Active, Some(3600))
        );
        assert_eq!(s.to_string(), "active;expires=3600");
        let s = SubscriptionState::parse("Pending").unwrap();
        assert_eq!(s.state, SubState::Pending);
        let s = SubscriptionState::parse("terminated;reason=noresource").unwrap();
        assert_eq!((s.reason(), s.retry_after()), (Some("noresource"), None));
        let s = SubscriptionState::parse("x-weird;expires=99999999999").unwrap();
        assert_eq!(s.state, SubState::Other("x-weird".into()));
        assert_eq!(s.expires(), Some(u32::MAX));
        assert!(SubscriptionState::parse(";expires=1").is_err());
        assert!(SubscriptionState::parse("active;").is_err());
    }

    #[test]
    fn ms_diagnostics_forms() {
        let d = MsDiagnostics::parse(
            r#"1000;reason="Final handling of the transaction; see \"x\"";source="sip.contoso.com";appName="PresenceService""#,
        )
        .unwrap();
        assert_eq!(d.code, 1000);
        assert_eq!(
            d.reason().as_deref(),
            Some(r#"Final handling of the transaction; see "x""#)
        );
        assert_eq!(d.source().as_deref(), Some("sip.contoso.com"));
        assert_eq!(MsDiagnostics::parse(&d.to_string()).unwrap(), d);
        assert!(MsDiagnostics::parse("reason=\"x\"").is_err());
        assert!(MsDiagnostics::parse("").is_err());
    }

    #[test]
    fn header_helpers() {
        let h = headers(&[
            (
                "v",
                "SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKtop, SIP/2.0/TLS 10.0.0.2;branch=z9hG4bKnext",
            ),
            ("Via", "SIP/2.0/TLS 10.0.0.3;branch=z9hG4bKlast"),
            ("f", r#""Agent" <sip:agent1@contoso.com>;tag=t1;epid=e1"#),
            ("t", "<sip:agent1@contoso.com>;tag=t2"),
            ("i", "call-1"),
            ("CSeq", "2 SERVICE"),
            (
                "m",
                "<sip:bridge@10.0.0.1:5061;transport=tls>;+sip.instance=\"<urn:uuid:x>\", <sip:b@c>",
            ),
            ("Expires", "99999999999"),
            ("Subscription-State", "active;expires=60"),
            ("ms-diagnostics-public", "2;reason=\"x\""),
            ("l", "0"),
            ("Content-Length", "0"),
        ]);
        assert_eq!(h.call_id(), Some("call-1"));
        assert_eq!(h.cseq().unwrap().unwrap().seq, 2);
        assert_eq!(h.via_branch().unwrap().as_deref(), Some("z9hG4bKtop"));
        assert_eq!(h.from_tag().unwrap().as_deref(), Some("t1"));
        assert_eq!(h.to_tag().unwrap().as_deref(), Some("t2"));
        assert_eq!(h.epid().unwrap().as_deref(), Some("e1"));
        assert_eq!(
            h.contact().unwrap().unwrap().uri,
            "sip:bridge@10.0.0.1:5061;transport=tls"
        );
        assert_eq!(h.expires().unwrap(), Some(u32::MAX));
        assert_eq!(h.subscription_state().unwrap().unwrap().expires(), Some(60));
        assert_eq!(h.ms_diagnostics().unwrap().unwrap().code, 2);
        assert_eq!(h.content_length().unwrap(), Some(0));
        assert_eq!(h.content_type().unwrap(), None);

        let empty = Headers::new();
        assert_eq!(empty.cseq().unwrap(), None);
        assert_eq!(empty.via_branch().unwrap(), None);
        assert_eq!(empty.from_tag().unwrap(), None);
        assert_eq!(empty.content_length().unwrap(), None);
        assert_eq!(empty.ms_diagnostics().unwrap(), None);
    }

    #[test]
    fn helper_errors_name_the_header() {
        let h = headers(&[("f", "no uri here"), ("CSeq", "x"), ("Expires", "-1")]);
        match h.from_addr() {
            Err(SipError::InHeader { name, source }) => {
                assert_eq!(name, "From");
                assert!(matches!(*source, SipError::InvalidNameAddr { .. }));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            h.cseq()
                .unwrap_err()
                .to_string()
                .contains("in header `CSeq`")
        );
        assert!(h.expires().is_err());
        let h = headers(&[("l", "5"), ("Content-Length", "6")]);
        assert!(matches!(
            h.content_length(),
            Err(SipError::ConflictingContentLength {
                first: 5,
                second: 6,
                ..
            })
        ));
        let h = headers(&[("l", "five")]);
        assert!(h.content_length().is_err());
    }
}
