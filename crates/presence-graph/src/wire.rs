//! Graph and Entra bodies: pure parsers of every answer and writers of every request body.
//!
//! Every parser takes bytes from the network and never panics; an error names what was
//! being read and where it went wrong (the JSON path), and never quotes a token.
//! [`fuzz_answers`] runs them all on one input, for a cargo-fuzz target and the proptest.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A body that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the {what}: {message}")]
pub struct WireError {
    /// What was being read (`token answer`, `getPresencesByUserId answer`, ...).
    pub what: &'static str,
    /// What was wrong, with the JSON path.
    pub message: String,
}

fn parse<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, WireError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        WireError {
            what,
            message: if path == "." || path.is_empty() {
                inner.to_string()
            } else {
                format!("at `{path}`: {inner}")
            },
        }
    })?;
    de.end().map_err(|e| WireError {
        what,
        message: e.to_string(),
    })?;
    Ok(value)
}

/// A successful client-credentials answer.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenAnswer {
    /// The bearer token (never printed).
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Deserialize)]
struct RawToken {
    token_type: String,
    expires_in: NumberOrText,
    access_token: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

/// Reads a token answer: `token_type` must be `Bearer` (any case), `expires_in` a number
/// of seconds or a numeric string, `access_token` non-empty.
pub fn parse_token(body: &[u8]) -> Result<TokenAnswer, WireError> {
    const WHAT: &str = "token answer";
    let raw: RawToken = parse(WHAT, body)?;
    if !raw.token_type.eq_ignore_ascii_case("bearer") {
        return Err(WireError {
            what: WHAT,
            message: format!(
                "at `token_type`: `{}` is not `Bearer`",
                raw.token_type.chars().take(32).collect::<String>()
            ),
        });
    }
    let expires_in = match raw.expires_in {
        NumberOrText::Number(n) => n,
        NumberOrText::Text(t) => t.trim().parse().map_err(|_| WireError {
            what: WHAT,
            message: "at `expires_in`: not a number of seconds".to_owned(),
        })?,
    };
    if raw.access_token.is_empty() {
        return Err(WireError {
            what: WHAT,
            message: "at `access_token`: empty".to_owned(),
        });
    }
    Ok(TokenAnswer {
        access_token: raw.access_token,
        expires_in,
    })
}

/// An Entra (token endpoint) error answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct EntraError {
    /// `invalid_client`, `unauthorized_client`, `invalid_request`, ...
    #[serde(default)]
    pub error: String,
    /// The explanation (`AADSTS7000215: Invalid client secret provided. ...`).
    #[serde(default)]
    pub error_description: String,
    /// The `AADSTS` numbers.
    #[serde(default)]
    pub error_codes: Vec<u64>,
    /// For Microsoft support.
    #[serde(default)]
    pub trace_id: String,
    /// For Microsoft support.
    #[serde(default)]
    pub correlation_id: String,
}

impl EntraError {
    /// Whether the credential itself was refused (a wrong, expired or revoked secret, an
    /// unknown or disabled app).
    pub fn is_refused_credential(&self) -> bool {
        matches!(
            self.error.as_str(),
            "invalid_client" | "unauthorized_client"
        )
    }

    /// The description without the per-attempt trace, correlation and timestamp lines, so
    /// two attempts refused for the same reason compare equal.
    pub fn summary(&self) -> String {
        let text = self.error_description.trim();
        let cut = ["Trace ID:", "Correlation ID:", "Timestamp:"]
            .iter()
            .filter_map(|m| text.find(m))
            .min()
            .unwrap_or(text.len());
        let summary = text[..cut].trim();
        match (self.error.is_empty(), summary.is_empty()) {
            (true, true) => "no description".to_owned(),
            (false, true) => self.error.clone(),
            (true, false) => summary.to_owned(),
            (false, false) => format!("{}: {summary}", self.error),
        }
    }
}

/// Reads an Entra error answer.
pub fn parse_entra_error(body: &[u8]) -> Result<EntraError, WireError> {
    parse("Entra error answer", body)
}

/// A Graph error answer, `{"error":{"code","message","innerError":{"request-id","date"}}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphErrorBody {
    /// `InvalidArgument`, `Request_ResourceNotFound`, `TooManyRequests`, ...
    pub code: String,
    /// The explanation.
    pub message: String,
    /// The `request-id`, for Microsoft support.
    pub request_id: Option<String>,
}

impl fmt::Display for GraphErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request-id {id})")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct RawGraphError {
    error: RawGraphErrorInner,
}

#[derive(Deserialize)]
struct RawGraphErrorInner {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "innerError")]
    inner_error: Option<RawInner>,
}

#[derive(Deserialize)]
struct RawInner {
    #[serde(default, rename = "request-id")]
    request_id: Option<String>,
}

/// Reads a Graph error answer.
pub fn parse_graph_error(body: &[u8]) -> Result<GraphErrorBody, WireError> {
    let raw: RawGraphError = parse("Graph error answer", body)?;
    Ok(GraphErrorBody {
        code: raw.error.code,
        message: raw.error.message,
        request_id: raw.error.inner_error.and_then(|i| i.request_id),
    })
}

/// One user's presence in a `getPresencesByUserId` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceItem {
    /// The user's object id.
    pub id: String,
    /// The availability as Graph names it (unknown values kept as text).
    pub availability: String,
    /// The activity.
    pub activity: String,
    /// The status message's text (`None`: no message, or an empty one).
    pub status_message: Option<String>,
    /// The version stamp (lexicographically ordered), when given.
    pub sequence_number: Option<String>,
}

#[derive(Deserialize)]
struct RawPresences {
    value: Vec<RawPresence>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPresence {
    id: String,
    #[serde(default)]
    availability: Option<String>,
    #[serde(default)]
    activity: Option<String>,
    #[serde(default)]
    status_message: Option<RawStatusMessage>,
    #[serde(default)]
    sequence_number: Option<String>,
}

#[derive(Deserialize)]
struct RawStatusMessage {
    #[serde(default)]
    message: Option<RawItemBody>,
}

#[derive(Deserialize)]
struct RawItemBody {
    #[serde(default)]
    content: Option<String>,
}

/// Reads a `getPresencesByUserId` answer.
pub fn parse_presences(body: &[u8]) -> Result<Vec<PresenceItem>, WireError> {
    let raw: RawPresences = parse("getPresencesByUserId answer", body)?;
    Ok(raw
        .value
        .into_iter()
        .map(|p| PresenceItem {
            id: p.id,
            availability: p.availability.unwrap_or_default(),
            activity: p.activity.unwrap_or_default(),
            status_message: p
                .status_message
                .and_then(|m| m.message)
                .and_then(|b| b.content)
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty()),
            sequence_number: p.sequence_number,
        })
        .collect())
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
}

/// Reads a `GET /users/{upn}?$select=id` answer: the object id.
pub fn parse_user(body: &[u8]) -> Result<String, WireError> {
    let raw: RawUser = parse("users answer", body)?;
    Ok(raw.id)
}

/// Runs every parser on `data`. The body of the cargo-fuzz target and of the proptest that
/// mirrors it: none may panic.
pub fn fuzz_answers(data: &[u8]) {
    let _ = parse_token(data);
    if let Ok(e) = parse_entra_error(data) {
        let _ = e.summary();
        let _ = e.is_refused_credential();
    }
    if let Ok(e) = parse_graph_error(data) {
        let _ = e.to_string();
    }
    let _ = parse_presences(data);
    let _ = parse_user(data);
    let _ = parse_retry_after(&String::from_utf8_lossy(data));
}

/// A `Retry-After` header value in seconds (`"30"`); an HTTP date or anything else is
/// `None` (Graph sends seconds).
pub fn parse_retry_after(value: &str) -> Option<std::time::Duration> {
    let v = value.trim();
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().map(std::time::Duration::from_secs)
}

// --- request bodies -------------------------------------------------------------------

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes one URL path segment (a UPN in `/users/{upn}`).
pub fn path_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The client-credentials form.
pub fn token_form(client_id: &str, secret: &str, scope: &str) -> Vec<u8> {
    format!(
        "client_id={}&client_secret={}&scope={}&grant_type=client_credentials",
        form_encode(client_id),
        form_encode(secret),
        form_encode(scope)
    )
    .into_bytes()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SetPresence<'a> {
    session_id: &'a str,
    availability: &'a str,
    activity: &'a str,
    expiration_duration: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionOnly<'a> {
    session_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SetPreferred<'a> {
    availability: &'a str,
    activity: &'a str,
    expiration_duration: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SetStatusMessage<'a> {
    status_message: StatusMessage<'a>,
}

#[derive(Serialize)]
struct StatusMessage<'a> {
    message: ItemBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemBody<'a> {
    content: &'a str,
    content_type: &'a str,
}

#[derive(Serialize)]
struct Ids<'a> {
    ids: &'a [&'a str],
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs of strings cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// `setPresence`.
pub fn set_presence(
    session_id: &str,
    availability: &str,
    activity: &str,
    expiration: &str,
) -> Vec<u8> {
    json(&SetPresence {
        session_id,
        availability,
        activity,
        expiration_duration: expiration,
    })
}

/// `clearPresence`.
pub fn clear_presence(session_id: &str) -> Vec<u8> {
    json(&SessionOnly { session_id })
}

/// `setUserPreferredPresence`.
pub fn set_preferred(availability: &str, activity: &str, expiration: &str) -> Vec<u8> {
    json(&SetPreferred {
        availability,
        activity,
        expiration_duration: expiration,
    })
}

/// `setStatusMessage` (an empty `text` clears the message).
pub fn set_status_message(text: &str) -> Vec<u8> {
    json(&SetStatusMessage {
        status_message: StatusMessage {
            message: ItemBody {
                content: text,
                content_type: "text",
            },
        },
    })
}

/// `getPresencesByUserId`.
pub fn presences_by_id(ids: &[&str]) -> Vec<u8> {
    json(&Ids { ids })
}

/// An ISO 8601 duration (`PT1H`, `PT90M`, `PT4H5M30S`), whole seconds.
pub fn iso_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = "PT".to_owned();
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || (h == 0 && m == 0) {
        out.push_str(&format!("{s}S"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn token_answers() {
        let t = parse_token(br#"{"token_type":"bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0"}"#).unwrap();
        assert_eq!(t.expires_in, 3599);
        assert!(!format!("{t:?}").contains("eyJ0"));
        let t = parse_token(br#"{"token_type":"Bearer","expires_in":"3599","access_token":"x"}"#)
            .unwrap();
        assert_eq!(t.expires_in, 3599);
        let e =
            parse_token(br#"{"token_type":"mac","expires_in":1,"access_token":"x"}"#).unwrap_err();
        assert!(e.message.contains("token_type"), "{e}");
        let e = parse_token(br#"{"token_type":"Bearer","expires_in":"soon","access_token":"x"}"#)
            .unwrap_err();
        assert!(e.message.contains("expires_in"), "{e}");
        let e = parse_token(
            br#"{"token_type":"Bearer","expires_in":[],"access_token":"secret-token"}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("token answer") && !e.to_string().contains("secret-token"),
            "{e}"
        );
    }

    #[test]
    fn entra_errors() {
        let e = parse_entra_error(br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Trace ID: 1 Correlation ID: 2 Timestamp: 2024","error_codes":[7000215],"trace_id":"1","correlation_id":"2"}"#).unwrap();
        assert!(e.is_refused_credential());
        assert_eq!(
            e.summary(),
            "invalid_client: AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(e.error_codes, vec![7000215]);
    }

    #[test]
    fn graph_errors_and_users() {
        let e = parse_graph_error(br#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist","innerError":{"request-id":"r1","date":"2024"}}}"#).unwrap();
        assert_eq!(
            e.to_string(),
            "Request_ResourceNotFound: Resource 'x' does not exist (request-id r1)"
        );
        assert_eq!(
            parse_user(br#"{"@odata.context":"x","id":"6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f"}"#)
                .unwrap(),
            "6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f"
        );
        assert!(
            parse_user(b"{}")
                .unwrap_err()
                .to_string()
                .contains("users answer")
        );
    }

    #[test]
    fn presence_batches() {
        let body = br#"{"value":[
            {"id":"a","availability":"Busy","activity":"InACall","statusMessage":{"message":{"content":"On a call","contentType":"text"}},"sequenceNumber":"C1"},
            {"id":"b","availability":"Focusing","activity":"Focusing","statusMessage":null},
            {"id":"c","availability":"Available","activity":"Available","statusMessage":{"message":{"content":"","contentType":"text"}}}
        ]}"#;
        let items = parse_presences(body).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].status_message.as_deref(), Some("On a call"));
        assert_eq!(items[0].sequence_number.as_deref(), Some("C1"));
        assert_eq!(items[1].availability, "Focusing");
        assert_eq!(items[2].status_message, None);
        let e = parse_presences(br#"{"value":[{"id":5}]}"#).unwrap_err();
        assert!(e.message.contains("value[0].id"), "{e}");
    }

    #[test]
    fn request_bodies() {
        assert_eq!(
            String::from_utf8(set_presence("app", "Busy", "InACall", "PT1H")).unwrap(),
            r#"{"sessionId":"app","availability":"Busy","activity":"InACall","expirationDuration":"PT1H"}"#
        );
        assert_eq!(
            String::from_utf8(set_status_message("a \"b\"")).unwrap(),
            r#"{"statusMessage":{"message":{"content":"a \"b\"","contentType":"text"}}}"#
        );
        assert_eq!(
            String::from_utf8(presences_by_id(&["x", "y"])).unwrap(),
            r#"{"ids":["x","y"]}"#
        );
        assert_eq!(
            String::from_utf8(token_form(
                "id",
                "a+b/c=~ d",
                "https://graph.microsoft.com/.default"
            ))
            .unwrap(),
            "client_id=id&client_secret=a%2Bb%2Fc%3D%7E+d&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&grant_type=client_credentials"
        );
        assert_eq!(
            path_encode("o'brien+x@contoso.com"),
            "o'brien+x@contoso.com"
        );
        assert_eq!(path_encode("a b\"@c"), "a%20b%22@c");
        assert_eq!(iso_duration(std::time::Duration::from_secs(3600)), "PT1H");
        assert_eq!(iso_duration(std::time::Duration::from_secs(300)), "PT5M");
        assert_eq!(
            iso_duration(std::time::Duration::from_secs(3725)),
            "PT1H2M5S"
        );
        assert_eq!(
            parse_retry_after(" 30 "),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_answers(&data);
        }

        #[test]
        fn parsers_never_panic_on_json_like_text(s in r#"[\{\}\[\]":,a-z0-9 ]{0,200}"#) {
            fuzz_answers(s.as_bytes());
            let wrapped = format!(r#"{{"value":[{s}]}}"#);
            fuzz_answers(wrapped.as_bytes());
        }
    }
}
