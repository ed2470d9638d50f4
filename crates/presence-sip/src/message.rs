//! Requests, responses, their builders and the serializer.

use std::fmt;

use bytes::Bytes;

use crate::chars::{is_forbidden_in_line, is_token, is_wsp, push_decimal};
use crate::error::{SipError, snippet_str};
use crate::headers::{Headers, check_name, check_value};
use crate::method::Method;
use crate::name_addr::{NameAddr, SipUriRef};
use crate::parse::{Limits, parse_message};
use crate::typed::ContentType;

/// A response status code, `100..=699`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    /// `200 OK`.
    pub const OK: StatusCode = StatusCode(200);

    /// Checks the range.
    ///
    /// # Errors
    /// [`SipError::InvalidStatusCode`] outside `100..=699`.
    pub fn new(code: u16) -> Result<Self, SipError> {
        if (100..=699).contains(&code) {
            Ok(StatusCode(code))
        } else {
            Err(SipError::InvalidStatusCode {
                offset: 0,
                token: code.to_string(),
            })
        }
    }

    /// The number.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// `1xx`.
    pub fn is_provisional(self) -> bool {
        self.0 < 200
    }

    /// `2xx`.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// `200..=699`: ends the transaction.
    pub fn is_final(self) -> bool {
        self.0 >= 200
    }

    /// The RFC 3261 / RFC 6665 reason phrase for common codes.
    pub fn canonical_reason(self) -> Option<&'static str> {
        Some(match self.0 {
            100 => "Trying",
            180 => "Ringing",
            183 => "Session Progress",
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            409 => "Conflict",
            413 => "Request Entity Too Large",
            415 => "Unsupported Media Type",
            420 => "Bad Extension",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            486 => "Busy Here",
            487 => "Request Terminated",
            489 => "Bad Event",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            603 => "Decline",
            _ => return None,
        })
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<u16> for StatusCode {
    type Error = SipError;

    fn try_from(code: u16) -> Result<Self, SipError> {
        StatusCode::new(code)
    }
}

/// Checks a Request-URI: non-empty, no whitespace or control characters.
pub(crate) fn check_request_uri(uri: &str) -> Result<(), SipError> {
    if uri.is_empty() || uri.bytes().any(|b| is_wsp(b) || is_forbidden_in_line(b)) {
        return Err(SipError::InvalidRequestUri {
            offset: 0,
            token: snippet_str(uri),
        });
    }
    Ok(())
}

/// Checks a reason phrase: no CR, LF or control characters but HTAB.
pub(crate) fn check_reason(reason: &str) -> Result<(), SipError> {
    if reason.bytes().any(is_forbidden_in_line) {
        return Err(SipError::InvalidReasonPhrase {
            offset: 0,
            token: snippet_str(reason),
        });
    }
    Ok(())
}

/// A SIP request. Built by the parser or by [`Request::new`] and the builder methods;
/// either way its method, URI and headers are valid, so [`to_bytes`](Self::to_bytes) always
/// produces a message that parses back to an equal one (plus `Content-Length`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    uri: String,
    headers: Headers,
    body: Bytes,
}

/// A SIP response; see [`Request`] for the invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: StatusCode,
    reason: String,
    headers: Headers,
    body: Bytes,
}

/// A SIP message: a request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request (`SERVICE sip:… SIP/2.0`).
    Request(Request),
    /// A response (`SIP/2.0 200 OK`).
    Response(Response),
}

/// Sets the body and its `Content-Type` (shared by requests and responses).
fn set_body_in(
    headers: &mut Headers,
    body_slot: &mut Bytes,
    content_type: &str,
    body: Bytes,
) -> Result<(), SipError> {
    ContentType::parse(content_type).map_err(|e| e.in_header("Content-Type"))?;
    headers.set("Content-Type", content_type)?;
    *body_slot = body;
    Ok(())
}

/// The header and body builders, the same for requests and responses.
macro_rules! header_and_body_builders {
    () => {
        /// Appends a header field (builder style); see [`Headers::append`].
        ///
        /// # Errors
        /// As [`Headers::append`].
        pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Result<Self, SipError> {
            self.headers.append(name, value.as_ref())?;
            Ok(self)
        }

        /// Sets the body and `Content-Type` (builder style). `Content-Length` is written by the
        /// serializer.
        ///
        /// # Errors
        /// [`SipError::InHeader`] when `content_type` is not `type/subtype[;params]`.
        pub fn with_body(
            mut self,
            content_type: &str,
            body: impl Into<Bytes>,
        ) -> Result<Self, SipError> {
            self.set_body(content_type, body)?;
            Ok(self)
        }

        /// Sets the body and `Content-Type`.
        ///
        /// # Errors
        /// As [`with_body`](Self::with_body).
        pub fn set_body(
            &mut self,
            content_type: &str,
            body: impl Into<Bytes>,
        ) -> Result<(), SipError> {
            set_body_in(&mut self.headers, &mut self.body, content_type, body.into())
        }

        /// Removes the body and `Content-Type`.
        pub fn clear_body(&mut self) {
            self.body = Bytes::new();
            self.headers.remove("Content-Type");
        }
    };
}

impl Request {
    /// A request without headers or body.
    ///
    /// # Errors
    /// [`SipError::InvalidMethod`] for an [`Method::Extension`] that is not a token;
    /// [`SipError::InvalidRequestUri`] for an empty URI or one with whitespace or control
    /// characters.
    pub fn new(method: Method, uri: impl Into<String>) -> Result<Self, SipError> {
        let uri = uri.into();
        if !method.is_valid() {
            return Err(SipError::InvalidMethod {
                offset: 0,
                token: snippet_str(method.as_str()),
            });
        }
        check_request_uri(&uri)?;
        Ok(Request {
            method,
            uri,
            headers: Headers::new(),
            body: Bytes::new(),
        })
    }

    pub(crate) fn from_parts(method: Method, uri: String, headers: Headers, body: Bytes) -> Self {
        Request {
            method,
            uri,
            headers,
            body,
        }
    }

    header_and_body_builders!();

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Replaces the method.
    ///
    /// # Errors
    /// [`SipError::InvalidMethod`] for an extension that is not a token.
    pub fn set_method(&mut self, method: Method) -> Result<(), SipError> {
        if !method.is_valid() {
            return Err(SipError::InvalidMethod {
                offset: 0,
                token: snippet_str(method.as_str()),
            });
        }
        self.method = method;
        Ok(())
    }

    /// The Request-URI as received or given.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Replaces the Request-URI.
    ///
    /// # Errors
    /// As [`Request::new`].
    pub fn set_uri(&mut self, uri: impl Into<String>) -> Result<(), SipError> {
        let uri = uri.into();
        check_request_uri(&uri)?;
        self.uri = uri;
        Ok(())
    }

    /// A parsed view of the Request-URI.
    ///
    /// # Errors
    /// As [`SipUriRef::parse`] (e.g. for a `tel:` URI).
    pub fn uri_ref(&self) -> Result<SipUriRef<'_>, SipError> {
        SipUriRef::parse(&self.uri)
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The header fields, mutable.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The body (empty when there is none).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body, mutable (for a body without `Content-Type`, or to edit in place).
    pub fn body_mut(&mut self) -> &mut Bytes {
        &mut self.body
    }

    /// Appends the wire form: Request-Line, header fields, a correct `Content-Length`, the
    /// empty line and the body, with CRLF line ends.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(
            self.method.as_str().len()
                + self.uri.len()
                + 12
                + self.headers.wire_len_hint()
                + self.body.len(),
        );
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.uri.as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        self.headers.write_to(out, self.body.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The wire form; see [`write_to`](Self::write_to).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

impl Response {
    /// A response without headers or body.
    ///
    /// # Errors
    /// [`SipError::InvalidStatusCode`] outside `100..=699`; [`SipError::InvalidReasonPhrase`]
    /// for CR, LF or control characters in `reason`.
    pub fn new(status: u16, reason: impl Into<String>) -> Result<Self, SipError> {
        let status = StatusCode::new(status)?;
        let reason = reason.into();
        check_reason(&reason)?;
        Ok(Response {
            status,
            reason,
            headers: Headers::new(),
            body: Bytes::new(),
        })
    }

    pub(crate) fn from_parts(
        status: StatusCode,
        reason: String,
        headers: Headers,
        body: Bytes,
    ) -> Self {
        Response {
            status,
            reason,
            headers,
            body,
        }
    }

    /// A response to `request` as RFC 3261 §8.2.6 says: copies every `Via` (in order),
    /// `From`, `To`, `Call-ID` and `CSeq`, plus `Timestamp` for a 100. Add the `To` tag of a
    /// dialog-creating response with [`set_to_tag`](Self::set_to_tag).
    ///
    /// ```
    /// use presence_sip::{Method, Request, Response};
    /// let req = Request::new(Method::Subscribe, "sip:agent1@contoso.com")?
    ///     .header("Via", "SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1")?
    ///     .header("From", "<sip:bridge@contoso.com>;tag=a")?
    ///     .header("To", "<sip:agent1@contoso.com>")?
    ///     .header("Call-ID", "c1")?
    ///     .header("CSeq", "1 SUBSCRIBE")?;
    /// let mut ok = Response::for_request(&req, 200, "OK")?;
    /// ok.set_to_tag("b")?;
    /// assert_eq!(ok.headers().to_tag()?.as_deref(), Some("b"));
    /// assert_eq!(ok.headers().cseq()?, req.headers().cseq()?);
    /// # Ok::<(), presence_sip::SipError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Response::new`].
    pub fn for_request(request: &Request, status: u16, reason: &str) -> Result<Self, SipError> {
        let mut response = Response::new(status, reason)?;
        let h = &mut response.headers;
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            h.copy_from(&request.headers, name)?;
        }
        if status == 100 {
            h.copy_from(&request.headers, "Timestamp")?;
        }
        Ok(response)
    }

    /// Adds `;tag=<tag>` to `To` when it has no tag yet (a UAS tags its final responses,
    /// RFC 3261 §8.2.6.2). Does nothing when `To` already has a tag or is missing.
    ///
    /// # Errors
    /// [`SipError::InvalidParam`] when `tag` is not a token; [`SipError::InHeader`] when `To`
    /// does not parse.
    pub fn set_to_tag(&mut self, tag: &str) -> Result<(), SipError> {
        if !is_token(tag.as_bytes()) {
            return Err(SipError::InvalidParam {
                offset: 0,
                token: snippet_str(tag),
                expected: "a tag made of RFC 3261 token characters",
            });
        }
        let Some(to) = self.headers.get("To") else {
            return Ok(());
        };
        let parsed = NameAddr::parse(to).map_err(|e| e.in_header("To"))?;
        if parsed.has_param("tag") {
            return Ok(());
        }
        let tagged = format!("{to};tag={tag}");
        self.headers.set("To", &tagged)
    }

    header_and_body_builders!();

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase, exactly as received or given (may be empty).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The header fields, mutable.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The body (empty when there is none).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body, mutable (for a body without `Content-Type`, or to edit in place).
    pub fn body_mut(&mut self) -> &mut Bytes {
        &mut self.body
    }

    /// Appends the wire form: Status-Line, header fields, a correct `Content-Length`, the
    /// empty line and the body, with CRLF line ends.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.reason.len() + 16 + self.headers.wire_len_hint() + self.body.len());
        out.extend_from_slice(b"SIP/2.0 ");
        push_decimal(out, usize::from(self.status.0));
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.headers.write_to(out, self.body.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The wire form; see [`write_to`](Self::write_to).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

impl Message {
    /// Parses exactly one message with the default [`Limits`]; see
    /// [`parse_with_limits`](Self::parse_with_limits).
    ///
    /// # Errors
    /// As [`parse_with_limits`](Self::parse_with_limits).
    pub fn parse(bytes: &[u8]) -> Result<Self, SipError> {
        parse_message(bytes, &Limits::DEFAULT)
    }

    /// Parses exactly one message (a file, a datagram, a test vector). Leading CRLFs are
    /// skipped. With `Content-Length` the body must be exactly that long
    /// ([`SipError::Truncated`], [`SipError::TrailingData`]); without it the body is the
    /// rest of `bytes`. For a byte stream use the [`Framer`](crate::Framer).
    ///
    /// # Errors
    /// Any parse error, with offsets from the start of `bytes`.
    pub fn parse_with_limits(bytes: &[u8], limits: &Limits) -> Result<Self, SipError> {
        parse_message(bytes, limits)
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => r.headers(),
            Message::Response(r) => r.headers(),
        }
    }

    /// The header fields, mutable.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => r.headers_mut(),
            Message::Response(r) => r.headers_mut(),
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => r.body(),
            Message::Response(r) => r.body(),
        }
    }

    /// The body, mutable.
    pub fn body_mut(&mut self) -> &mut Bytes {
        match self {
            Message::Request(r) => r.body_mut(),
            Message::Response(r) => r.body_mut(),
        }
    }

    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Request(_) => None,
            Message::Response(r) => Some(r),
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request(_))
    }

    /// Appends the wire form.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Request(r) => r.write_to(out),
            Message::Response(r) => r.write_to(out),
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message::Response(r)
    }
}

/// The wire form as text (body decoded as lossy UTF-8), for logs.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// Checks a header name/value pair without storing it (used by tests and callers that
/// validate input early).
///
/// ```
/// assert!(presence_sip::check_header("Subject", "hello").is_ok());
/// assert!(presence_sip::check_header("Subject", "a\r\nVia: x").is_err());
/// ```
///
/// # Errors
/// As [`Headers::append`].
pub fn check_header(name: &str, value: &str) -> Result<(), SipError> {
    check_name(name)?;
    check_value(name, value).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &[u8] = include_bytes!("../tests/data/service-publish.sip");
    const OK_200: &[u8] = include_bytes!("../tests/data/ok-200.sip");

    /// Joins header lines with CRLF, adds `Content-Length` and the body.
    fn wire(lines: &[&str], body: &str) -> Vec<u8> {
        let mut out = lines.join("\r\n");
        out.push_str(&format!("\r\nContent-Length: {}\r\n\r\n", body.len()));
        out.push_str(body);
        out.into_bytes()
    }

    /// Text of a serialized message with CRLF shown as LF (after checking every line end
    /// of the header section is CRLF).
    fn readable(bytes: &[u8]) -> String {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let head_end = text.find("\r\n\r\n").unwrap() + 4;
        let head = &text[..head_end];
        assert_eq!(head.matches('\n').count(), head.matches("\r\n").count());
        text.replace("\r\n", "\n")
    }

    fn request(bytes: &[u8]) -> Request {
        match Message::parse(bytes).unwrap() {
            Message::Request(r) => r,
            Message::Response(r) => panic!("expected a request, got {r:?}"),
        }
    }

    fn response(bytes: &[u8]) -> Response {
        match Message::parse(bytes).unwrap() {
            Message::Response(r) => r,
            Message::Request(r) => panic!("expected a response, got {r:?}"),
        }
    }

    #[test]
    fn sfb_service_category_publish() {
        let req = request(SERVICE);
        assert_eq!(req.method(), &Method::Service);
        assert_eq!(req.uri(), "sip:agent1@contoso.com");
        let uri = req.uri_ref().unwrap();
        assert_eq!((uri.user, uri.host), (Some("agent1"), "contoso.com"));
        let h = req.headers();
        assert_eq!(h.len(), 10);
        assert_eq!(h.call_id(), Some("7d3f0e91c2b84a5fa1e6d0c3b9f84e27"));
        let cseq = h.cseq().unwrap().unwrap();
        assert_eq!((cseq.seq, cseq.method), (12, Method::Service));
        assert_eq!(
            h.via_branch().unwrap().as_deref(),
            Some("z9hG4bK8a7c2e1f.0b1d")
        );
        assert_eq!(h.from_tag().unwrap().as_deref(), Some("5e8d0c7a21"));
        assert_eq!(h.epid().unwrap().as_deref(), Some("0a1b2c3d4e"));
        assert_eq!(h.to_tag().unwrap(), None);
        assert!(
            h.content_type()
                .unwrap()
                .unwrap()
                .is("application/msrtc-category-publish+xml")
        );
        assert_eq!(h.content_length().unwrap(), Some(req.body().len()));
        assert!(req.body().starts_with(b"<publish "));
        assert!(req.body().ends_with(b"</publish>"));
        assert_eq!(
            h.contact().unwrap().unwrap().uri_ref().unwrap().transport(),
            Some("tls")
        );
        // Parsed messages serialize back to the same bytes.
        assert_eq!(req.to_bytes(), SERVICE);
    }

    #[test]
    fn sfb_200_ok() {
        let resp = response(OK_200);
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.status().is_success() && resp.status().is_final());
        assert_eq!(resp.reason(), "OK");
        assert_eq!(
            resp.headers().to_tag().unwrap().as_deref(),
            Some("B3F4A1C2")
        );
        assert_eq!(
            resp.headers().cseq().unwrap().unwrap().method,
            Method::Service
        );
        assert!(resp.body().is_empty());
        assert_eq!(resp.to_bytes(), OK_200);
    }

    #[test]
    fn sfb_benotify_with_categories() {
        let body = r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:agent1@contoso.com"><category name="state" instance="0" publishTime="2012-07-12T13:58:54.237"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="aggregateState" lastActive="2012-07-12T13:58:54"><availability>6500</availability><activity token="on-the-phone"><custom LCID="1033">In a call</custom></activity></state></category></categories>"#;
        let bytes = wire(
            &[
                "BENOTIFY sip:bridge@10.0.0.5:5061;transport=tls;ms-opaque=d3470f2e1d;ms-received-cid=2A00;grid SIP/2.0",
                r#"Via: SIP/2.0/TLS 10.0.0.10:5061;branch=z9hG4bK9B1F8C2A.6F5D;branched=FALSE;ms-internal-info="dkk2y0ML8mHh,aa""#,
                "Max-Forwards: 69",
                "To: <sip:bridge@contoso.com>;tag=2c7f1a;epid=7d8e9f",
                "From: <sip:agent1@contoso.com>;tag=0C3B1E59",
                "Call-ID: 2b4c9d0e",
                "CSeq: 7 BENOTIFY",
                "Require: eventlist",
                "Content-Type: application/msrtc-event-categories+xml",
                "Event: presence",
                "subscription-state: active;expires=35426",
            ],
            body,
        );
        let req = request(&bytes);
        assert_eq!(req.method(), &Method::Benotify);
        let uri = req.uri_ref().unwrap();
        assert_eq!(uri.port, Some(5061));
        assert!(uri.has_param("grid"));
        assert_eq!(uri.param("ms-opaque"), Some("d3470f2e1d"));
        let h = req.headers();
        assert_eq!(h.get("o"), Some("presence"));
        let state = h.subscription_state().unwrap().unwrap();
        assert_eq!(
            (&state.state, state.expires()),
            (&crate::SubState::Active, Some(35426))
        );
        assert_eq!(h.to_addr().unwrap().unwrap().epid(), Some("7d8e9f"));
        let via = h.top_via().unwrap().unwrap();
        assert_eq!(via.params.len(), 3);
        assert_eq!(
            h.values("Via").count(),
            1,
            "comma inside quotes does not split"
        );
        assert_eq!(req.body().as_ref(), body.as_bytes());
    }

    #[test]
    fn sfb_notify_with_multipart_body() {
        let boundary = "9N52XePvJx8Z9kg0Pkm2";
        let body = [
            format!("--{boundary}"),
            "Content-Transfer-Encoding: binary".to_owned(),
            "Content-ID: resourceList".to_owned(),
            "Content-Type: application/rlmi+xml".to_owned(),
            String::new(),
            r#"<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:bridge@contoso.com" version="1" fullState="false"><resource uri="sip:agent1@contoso.com"><instance id="1" state="active" cid="agent1@contoso.com"/></resource></list>"#.to_owned(),
            format!("--{boundary}"),
            "Content-Transfer-Encoding: binary".to_owned(),
            "Content-ID: agent1@contoso.com".to_owned(),
            "Content-Type: application/msrtc-event-categories+xml".to_owned(),
            String::new(),
            r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:agent1@contoso.com"/>"#.to_owned(),
            format!("--{boundary}--"),
            String::new(),
        ]
        .join("\r\n");
        let content_type = format!(
            r#"multipart/related;type="application/rlmi+xml";start=resourceList;boundary={boundary}"#
        );
        let bytes = wire(
            &[
                "NOTIFY sip:bridge@10.0.0.5:5061;transport=tls SIP/2.0",
                "v: SIP/2.0/TLS 10.0.0.10:5061;branch=z9hG4bKmp1",
                "f: <sip:bridge@contoso.com>;tag=77",
                "t: <sip:bridge@contoso.com>;tag=66;epid=55",
                "i: mp-call",
                "CSeq: 3 NOTIFY",
                "o: presence",
                &format!("c: {content_type}"),
                "Subscription-State: active;expires=36000",
                "k: ms-benotify, ms-piggyback-first-notify",
                "Require: eventlist",
            ],
            &body,
        );
        let req = request(&bytes);
        let h = req.headers();
        let ct = h.content_type().unwrap().unwrap();
        assert!(ct.is("multipart/related"));
        assert_eq!(ct.boundary().as_deref(), Some(boundary));
        assert_eq!(ct.param("type").as_deref(), Some("application/rlmi+xml"));
        assert_eq!(
            h.values("Supported").collect::<Vec<_>>(),
            ["ms-benotify", "ms-piggyback-first-notify"]
        );
        assert_eq!(req.body().as_ref(), body.as_bytes());
        let delimiter = format!("--{boundary}");
        assert_eq!(
            body.matches(&delimiter).count(),
            3,
            "two parts and the close delimiter survive intact"
        );
        // Compact names are kept on the wire.
        assert_eq!(req.to_bytes(), bytes);
    }

    #[test]
    fn sfb_409_conflict_with_ms_diagnostics() {
        let body = r#"<Fault><Faultcode>Client.BadCall.WrongDelta</Faultcode><details><operation index="1" version="0" curVersion="4"/></details></Fault>"#;
        let bytes = wire(
            &[
                "SIP/2.0 409 Conflict",
                "ms-user-logon-data: RemoteUser",
                "Via: SIP/2.0/TLS 10.20.30.40:5061;branch=z9hG4bK8a7c2e1f.0b1d;ms-received-port=5061;ms-received-cid=1F00",
                "From: <sip:agent1@contoso.com>;tag=5e8d0c7a21;epid=0a1b2c3d4e",
                "To: <sip:agent1@contoso.com>;tag=A41D0E6B",
                "Call-ID: 7d3f0e91c2b84a5fa1e6d0c3b9f84e27",
                "CSeq: 12 SERVICE",
                r#"ms-diagnostics: 2;reason="See response code and reason phrase";source="fe01.contoso.com";appName="RtcPresence""#,
                "Server: RTC/7.0",
                "Content-Type: application/msrtc-fault+xml",
            ],
            body,
        );
        let resp = response(&bytes);
        assert_eq!(resp.status().as_u16(), 409);
        assert_eq!(resp.status().canonical_reason(), Some("Conflict"));
        let diag = resp.headers().ms_diagnostics().unwrap().unwrap();
        assert_eq!(diag.code, 2);
        assert_eq!(
            diag.reason().as_deref(),
            Some("See response code and reason phrase")
        );
        assert_eq!(diag.source().as_deref(), Some("fe01.contoso.com"));
        assert!(
            resp.headers()
                .content_type()
                .unwrap()
                .unwrap()
                .is("application/msrtc-fault+xml")
        );
        assert_eq!(resp.body().as_ref(), body.as_bytes());
    }

    #[test]
    fn builder_validates_inputs() {
        assert!(matches!(
            Request::new(Method::Extension("BAD METHOD".into()), "sip:a@b"),
            Err(SipError::InvalidMethod { .. })
        ));
        for uri in ["", "sip:a b", "sip:a\r\n"] {
            assert!(matches!(
                Request::new(Method::Options, uri),
                Err(SipError::InvalidRequestUri { .. })
            ));
        }
        let mut req = Request::new(Method::Options, "sip:a@b").unwrap();
        assert!(req.set_uri("x y").is_err());
        assert!(req.set_method(Method::Extension(String::new())).is_err());
        req.set_method(Method::Info).unwrap();
        req.set_uri("tel:+1").unwrap();
        assert!(req.uri_ref().is_err(), "tel: is text, not a SIP URI view");
        assert!(req.clone().header("Subject", "a\r\nInjected: yes").is_err());
        assert!(req.clone().with_body("not a type", "x").is_err());
        assert!(Response::new(99, "x").is_err());
        assert!(Response::new(700, "x").is_err());
        assert!(Response::new(200, "O\nK").is_err());
        assert!(StatusCode::try_from(180).unwrap().is_provisional());
        assert_eq!(StatusCode::new(599).unwrap().canonical_reason(), None);
    }

    #[test]
    fn serializer_writes_one_correct_content_length() {
        let req = Request::new(Method::Message, "sip:a@b")
            .unwrap()
            .header("l", "999")
            .unwrap()
            .header("Call-ID", "x")
            .unwrap()
            .header("Content-Length", "3")
            .unwrap()
            .with_body("text/plain", "hello")
            .unwrap();
        let bytes = req.to_bytes();
        assert_eq!(
            bytes,
            b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\nCall-ID: x\r\nContent-Type: text/plain\r\n\r\nhello"
        );
        let back = request(&bytes);
        assert_eq!(back.headers().content_length().unwrap(), Some(5));
        let mut cleared = back;
        cleared.clear_body();
        assert_eq!(
            cleared.to_bytes(),
            b"MESSAGE sip:a@b SIP/2.0\r\nl: 0\r\nCall-ID: x\r\n\r\n"
        );
        let mut raw = Request::new(Method::Info, "sip:a@b").unwrap();
        *raw.body_mut() = Bytes::from_static(b"\x00\xff");
        assert_eq!(request(&raw.to_bytes()).body().as_ref(), b"\x00\xff");
    }

    #[test]
    fn response_for_request_copies_rfc3261_headers() {
        let req = request(SERVICE);
        let mut resp = Response::for_request(&req, 200, "OK").unwrap();
        assert_eq!(
            resp.headers().iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["Via", "From", "To", "Call-ID", "CSeq"]
        );
        resp.set_to_tag("srv9").unwrap();
        resp.set_to_tag("other").unwrap();
        assert_eq!(resp.headers().to_tag().unwrap().as_deref(), Some("srv9"));
        assert!(resp.set_to_tag("bad tag").is_err());

        let trying = Request::new(Method::Invite, "sip:a@b")
            .unwrap()
            .header("v", "SIP/2.0/TCP p1;branch=z9hG4bK1")
            .unwrap()
            .header("Via", "SIP/2.0/TCP p2;branch=z9hG4bK2")
            .unwrap()
            .header("Timestamp", "54")
            .unwrap()
            .header("Subject", "not copied")
            .unwrap();
        let resp100 = Response::for_request(&trying, 100, "Trying").unwrap();
        assert_eq!(
            resp100.headers().iter().collect::<Vec<_>>(),
            [
                ("v", "SIP/2.0/TCP p1;branch=z9hG4bK1"),
                ("Via", "SIP/2.0/TCP p2;branch=z9hG4bK2"),
                ("Timestamp", "54")
            ]
        );
        let resp180 = Response::for_request(&trying, 180, "Ringing").unwrap();
        assert!(!resp180.headers().contains("Timestamp"));
        let mut no_to = resp180;
        no_to.set_to_tag("x").unwrap();
        assert!(!no_to.headers().contains("To"));
    }

    #[test]
    fn snapshot_built_service_request() {
        let req = Request::new(Method::Service, "sip:agent1@contoso.com")
            .unwrap()
            .header("Via", "SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK5a1")
            .unwrap()
            .header("Max-Forwards", "70")
            .unwrap()
            .header(
                "From",
                NameAddr {
                    display_name: None,
                    uri: "sip:agent1@contoso.com".into(),
                    params: vec![
                        ("tag".into(), Some("8f1".into())),
                        ("epid".into(), Some("0d4e5f".into())),
                    ],
                }
                .to_string(),
            )
            .unwrap()
            .header("To", "<sip:agent1@contoso.com>")
            .unwrap()
            .header("Call-ID", "4f2a9c")
            .unwrap()
            .header("CSeq", CSeqText(1, Method::Service).to_string())
            .unwrap()
            .with_body(
                "application/msrtc-category-publish+xml",
                r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:agent1@contoso.com"/></publish>"#,
            )
            .unwrap();
        insta::assert_snapshot!("built_service_request", readable(&req.to_bytes()));
    }

    /// `CSeq` built through its typed form.
    struct CSeqText(u32, Method);

    impl fmt::Display for CSeqText {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            crate::CSeq {
                seq: self.0,
                method: self.1.clone(),
            }
            .fmt(f)
        }
    }

    #[test]
    fn snapshot_409_for_service() {
        let req = request(SERVICE);
        let mut resp = Response::for_request(&req, 409, "Conflict")
            .unwrap()
            .header(
                "ms-diagnostics",
                r#"2;reason="See response code and reason phrase";source="sim.contoso.com""#,
            )
            .unwrap()
            .with_body(
                "application/msrtc-fault+xml",
                r#"<Fault><Faultcode>Client.BadCall.WrongDelta</Faultcode><details><operation index="1" version="0" curVersion="4"/></details></Fault>"#,
            )
            .unwrap();
        resp.set_to_tag("sim1").unwrap();
        insta::assert_snapshot!("conflict_409_for_service", readable(&resp.to_bytes()));
    }

    #[test]
    fn message_accessors_and_display() {
        let mut m = Message::parse(OK_200).unwrap();
        assert!(!m.is_request());
        assert!(m.as_request().is_none());
        assert!(m.as_response().is_some());
        m.headers_mut().append("X-Test", "1").unwrap();
        *m.body_mut() = Bytes::from_static(b"x");
        assert_eq!(m.headers().get("x-test"), Some("1"));
        let text = m.to_string();
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(text.ends_with("Content-Length: 1\r\nX-Test: 1\r\n\r\nx"));
        let req: Message = request(SERVICE).into();
        assert!(req.is_request());
        assert_eq!(req.to_string().len(), SERVICE.len());
        assert!(check_header("X", "y").is_ok());
        assert!(check_header("X:", "y").is_err());
    }
}
