//! etcd's JSON gateway (grpc-gateway in front of the v3 gRPC API): the request bodies the
//! core sends and the answers it reads.
//!
//! The gateway writes protobuf `int64` fields as JSON strings (`"rev":"12"`), leaves out
//! fields with their default value (a `TTL` of 0 is absent), and carries `bytes` fields
//! (keys, values, names) as standard base64. A streaming call (`/v3/lease/keepalive`)
//! answers with one JSON object per message, `{"result":{...}}` or `{"error":{...}}`. A
//! refused call answers a non-2xx status with `{"error":"...","message":"...","code":N}`.
//! Every reader here takes any bytes and returns a description of what is wrong instead of
//! panicking; unknown fields are ignored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

/// The text etcd's election service answers when nobody holds the election.
pub(crate) const NO_LEADER: &str = "election: no leader";
/// etcd's answer for a lease it does not know (expired or revoked).
pub(crate) const LEASE_NOT_FOUND: &str = "requested lease not found";
/// etcd's answer for a token it does not know (expired, or the member restarted).
pub(crate) const INVALID_TOKEN: &str = "invalid auth token";

/// Standard base64 of `bytes`.
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(field: &'static str, text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text.trim())
        .map_err(|e| format!("`{field}` is not base64: {e}"))
}

/// A JSON string literal (quotes and escapes) of `text`.
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// `/v3/lease/grant`: a lease of `ttl_secs` seconds, its id chosen by etcd.
pub(crate) fn grant(ttl_secs: u64) -> Vec<u8> {
    format!("{{\"TTL\":\"{ttl_secs}\"}}").into_bytes()
}

/// `/v3/lease/keepalive` and `/v3/lease/revoke`: the lease `id`.
pub(crate) fn lease_id(id: i64) -> Vec<u8> {
    format!("{{\"ID\":\"{id}\"}}").into_bytes()
}

/// `/v3/election/campaign`: campaign on `name` with `lease`, proposing `value`.
pub(crate) fn campaign(name: &str, lease: i64, value: &str) -> Vec<u8> {
    format!(
        "{{\"name\":\"{}\",\"lease\":\"{lease}\",\"value\":\"{}\"}}",
        b64(name.as_bytes()),
        b64(value.as_bytes())
    )
    .into_bytes()
}

/// `/v3/election/leader`: who holds `name`.
pub(crate) fn leader(name: &str) -> Vec<u8> {
    format!("{{\"name\":\"{}\"}}", b64(name.as_bytes())).into_bytes()
}

/// `/v3/election/resign`: give up the leadership `key` (created at `rev` with `lease`).
pub(crate) fn resign(name: &str, key: &[u8], rev: i64, lease: i64) -> Vec<u8> {
    format!(
        "{{\"leader\":{{\"name\":\"{}\",\"key\":\"{}\",\"rev\":\"{rev}\",\"lease\":\"{lease}\"}}}}",
        b64(name.as_bytes()),
        b64(key)
    )
    .into_bytes()
}

/// `/v3/auth/authenticate`: a token for `user` with `password`.
pub(crate) fn authenticate(user: &str, password: &str) -> Vec<u8> {
    format!(
        "{{\"name\":{},\"password\":{}}}",
        quoted(user),
        quoted(password)
    )
    .into_bytes()
}

/// An `int64` as the gateway writes it (a string), or as a plain number.
fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct Int64;
    impl Visitor<'_> for Int64 {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an int64 as a string or a number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("out of the int64 range"))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format!("`{}` is not an int64", clip(v))))
        }
    }
    deserializer.deserialize_any(Int64)
}

/// At most 64 characters of `text`, for messages.
pub(crate) fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(64).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Header {
    #[serde(deserialize_with = "int64")]
    revision: i64,
}

/// A gateway error: `{"error":"text","message":"text","code":N}`, or in a stream
/// `{"error":{"message":"text","grpc_code":N,...}}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Text(String),
    Object {
        #[serde(default)]
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    error: Option<ErrorField>,
    message: Option<String>,
}

/// The message of a gateway error body, if the body is one.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(first_object(body)).ok()?;
    let from_error = match parsed.error {
        Some(ErrorField::Text(t)) => Some(t),
        Some(ErrorField::Object { message }) => Some(message),
        None => None,
    };
    from_error
        .filter(|m| !m.is_empty())
        .or(parsed.message.filter(|m| !m.is_empty()))
}

/// etcd's refusal (HTTP 400, plain text) of a client certificate with a Common Name on the
/// gateway, when client certificates and users are both required.
pub(crate) const COMMON_NAME_REFUSED: &str =
    "CommonName of client sending a request against gateway";

/// What a refused call says: its gateway error message, else the status and the start of
/// the body.
pub(crate) fn refusal(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.contains(COMMON_NAME_REFUSED) {
        return format!(
            "HTTP {status}: etcd refuses, on its JSON gateway, a client certificate that has a \
             Common Name when users and client certificates are both required: issue \
             `[ha.tls] certificate` without a Common Name (its subject alternative names \
             suffice; the etcd user comes from `[ha.auth]`)"
        );
    }
    match error_message(body) {
        Some(message) => format!("HTTP {status}: {}", clip_long(&message)),
        None => {
            let text = text.trim();
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {}", clip_long(text))
            }
        }
    }
}

/// At most 200 characters of `text`.
fn clip_long(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The first JSON object of a body that may hold several (a stream's messages, one per
/// line).
fn first_object(body: &[u8]) -> &[u8] {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let rest = &body[start..];
    // Messages of a stream are separated by a newline; a message itself has none.
    match rest.iter().position(|b| *b == b'\n') {
        Some(end) => &rest[..end],
        None => rest,
    }
}

/// A granted lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Granted {
    /// Its id.
    pub(crate) id: i64,
    /// Its TTL in seconds, as granted (etcd may raise a TTL below its minimum).
    pub(crate) ttl: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GrantAnswer {
    #[serde(rename = "ID", deserialize_with = "int64")]
    id: i64,
    #[serde(rename = "TTL", deserialize_with = "int64")]
    ttl: i64,
    error: String,
}

/// Reads a `/v3/lease/grant` answer.
pub(crate) fn parse_grant(body: &[u8]) -> Result<Granted, String> {
    let answer: GrantAnswer =
        serde_json::from_slice(body).map_err(|e| format!("unreadable lease grant: {e}"))?;
    if !answer.error.is_empty() {
        return Err(clip_long(&answer.error));
    }
    if answer.id <= 0 || answer.ttl <= 0 {
        return Err(format!(
            "the lease grant has no usable ID and TTL (ID {}, TTL {})",
            answer.id, answer.ttl
        ));
    }
    Ok(Granted {
        id: answer.id,
        ttl: answer.ttl,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KeepAliveResult {
    #[serde(rename = "ID", deserialize_with = "int64")]
    id: i64,
    #[serde(rename = "TTL", deserialize_with = "int64")]
    ttl: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KeepAliveMessage {
    result: Option<KeepAliveResult>,
    error: Option<ErrorField>,
}

/// Reads a `/v3/lease/keepalive` answer: the lease's renewed TTL in seconds, 0 when etcd
/// no longer knows the lease (it expired or was revoked).
pub(crate) fn parse_keepalive(body: &[u8], id: i64) -> Result<i64, String> {
    let message: KeepAliveMessage = serde_json::from_slice(first_object(body))
        .map_err(|e| format!("unreadable keepalive answer: {e}"))?;
    if let Some(error) = message.error {
        let text = match error {
            ErrorField::Text(t) => t,
            ErrorField::Object { message } => message,
        };
        return Err(clip_long(&text));
    }
    let result = message
        .result
        .ok_or_else(|| "the keepalive answer has no result".to_owned())?;
    if result.id != 0 && result.id != id {
        return Err(format!(
            "the keepalive answer is for lease {:x}, not {id:x}",
            result.id
        ));
    }
    Ok(result.ttl.max(0))
}

/// The leadership key of an election: which key, created at which revision, with which
/// lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LeaderKey {
    /// The key (`<election>/<lease in hex>`).
    pub(crate) key: Vec<u8>,
    /// Its create revision: the fencing token.
    pub(crate) rev: i64,
    /// The lease it is attached to.
    pub(crate) lease: i64,
    /// The value (the leader's node id), when the answer carries it.
    pub(crate) value: Option<Vec<u8>>,
    /// The store revision the answer was made at.
    pub(crate) header_revision: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CampaignLeader {
    key: String,
    #[serde(deserialize_with = "int64")]
    rev: i64,
    #[serde(deserialize_with = "int64")]
    lease: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CampaignAnswer {
    header: Header,
    leader: Option<CampaignLeader>,
}

/// Reads a `/v3/election/campaign` answer (the campaign was won).
pub(crate) fn parse_campaign(body: &[u8]) -> Result<LeaderKey, String> {
    let answer: CampaignAnswer =
        serde_json::from_slice(body).map_err(|e| format!("unreadable campaign answer: {e}"))?;
    let leader = answer
        .leader
        .ok_or_else(|| "the campaign answer names no leader key".to_owned())?;
    if leader.rev <= 0 {
        return Err(format!(
            "the campaign answer's leader key has no revision ({})",
            leader.rev
        ));
    }
    Ok(LeaderKey {
        key: unb64("leader.key", &leader.key)?,
        rev: leader.rev,
        lease: leader.lease,
        value: None,
        header_revision: answer.header.revision,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Kv {
    key: String,
    #[serde(deserialize_with = "int64")]
    create_revision: i64,
    value: String,
    #[serde(deserialize_with = "int64")]
    lease: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LeaderAnswer {
    header: Header,
    kv: Option<Kv>,
}

/// Reads a `/v3/election/leader` answer: the leader's key, or `None` when etcd says nobody
/// holds the election.
pub(crate) fn parse_leader(status: u16, body: &[u8]) -> Result<Option<LeaderKey>, String> {
    if !(200..300).contains(&status) {
        if error_message(body).is_some_and(|m| m.contains(NO_LEADER)) {
            return Ok(None);
        }
        return Err(refusal(status, body));
    }
    let answer: LeaderAnswer =
        serde_json::from_slice(body).map_err(|e| format!("unreadable leader answer: {e}"))?;
    let Some(kv) = answer.kv else {
        return Ok(None);
    };
    if kv.create_revision <= 0 {
        return Err(format!(
            "the leader key has no create revision ({})",
            kv.create_revision
        ));
    }
    Ok(Some(LeaderKey {
        key: unb64("kv.key", &kv.key)?,
        rev: kv.create_revision,
        lease: kv.lease,
        value: Some(unb64("kv.value", &kv.value)?),
        header_revision: answer.header.revision,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenAnswer {
    token: String,
}

/// Reads a `/v3/auth/authenticate` answer: the token.
pub(crate) fn parse_token(body: &[u8]) -> Result<String, String> {
    let answer: TokenAnswer = serde_json::from_slice(body)
        .map_err(|e| format!("unreadable authentication answer: {e}"))?;
    let token = answer.token.trim();
    if token.is_empty() || token.contains(|c: char| c.is_control()) {
        return Err("the authentication answer holds no usable token".to_owned());
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bodies_are_what_the_gateway_reads() {
        assert_eq!(grant(5), br#"{"TTL":"5"}"#);
        assert_eq!(lease_id(7), br#"{"ID":"7"}"#);
        assert_eq!(
            String::from_utf8(campaign("election/test", 9, "node-a")).unwrap(),
            r#"{"name":"ZWxlY3Rpb24vdGVzdA==","lease":"9","value":"bm9kZS1h"}"#
        );
        assert_eq!(
            String::from_utf8(resign("e", b"e/9", 3, 9)).unwrap(),
            r#"{"leader":{"name":"ZQ==","key":"ZS85","rev":"3","lease":"9"}}"#
        );
        assert_eq!(
            String::from_utf8(authenticate("bridge", "p\"w")).unwrap(),
            r#"{"name":"bridge","password":"p\"w"}"#
        );
    }

    /// Answers as etcd 3.4.23 wrote them.
    #[test]
    fn real_answers_are_read() {
        let granted = parse_grant(br#"{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"1","raft_term":"2"},"ID":"2324035874946311174","TTL":"2"}"#).unwrap();
        assert_eq!(
            granted,
            Granted {
                id: 2324035874946311174,
                ttl: 2
            }
        );
        let alive = br#"{"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"1","raft_term":"2"},"ID":"2324035874946311176","TTL":"5"}}"#;
        assert_eq!(parse_keepalive(alive, 2324035874946311176), Ok(5));
        let gone = br#"{"result":{"header":{"revision":"1"},"ID":"12345"}}"#;
        assert_eq!(parse_keepalive(gone, 12345), Ok(0));
        let won = parse_campaign(br#"{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"2","raft_term":"2"},"leader":{"name":"ZWxlY3Rpb24vdGVzdA==","key":"ZWxlY3Rpb24vdGVzdC8yMDQwYTI1MGEzNzA2NDA4","rev":"2","lease":"2324035874946311176"}}"#).unwrap();
        assert_eq!(won.key, b"election/test/2040a250a3706408");
        assert_eq!(
            (won.rev, won.lease, won.header_revision),
            (2, 2324035874946311176, 2)
        );
        let held = parse_leader(200, br#"{"header":{"revision":"2"},"kv":{"key":"ZWxlY3Rpb24vdGVzdC8yMDQwYTI1MGEzNzA2NDA4","create_revision":"2","mod_revision":"2","version":"1","value":"bm9kZS1h","lease":"2324035874946311176"}}"#).unwrap().unwrap();
        assert_eq!(held.value.as_deref(), Some(&b"node-a"[..]));
        assert_eq!(held.rev, 2);
        let nobody = br#"{"error":"election: no leader","message":"election: no leader","code":2}"#;
        assert_eq!(parse_leader(500, nobody), Ok(None));
        let other = br#"{"error":"etcdserver: request timed out","code":14}"#;
        assert_eq!(
            parse_leader(503, other),
            Err("HTTP 503: etcdserver: request timed out".to_owned())
        );
        assert_eq!(
            parse_token(br#"{"header":{"revision":"8"},"token":"lnLMOVQBRrmjGiqn.27"}"#),
            Ok("lnLMOVQBRrmjGiqn.27".to_owned())
        );
        let stream_error = br#"{"error":{"grpc_code":5,"http_code":404,"message":"etcdserver: requested lease not found","http_status":"Not Found"}}"#;
        assert_eq!(
            parse_keepalive(stream_error, 1),
            Err("etcdserver: requested lease not found".to_owned())
        );
        assert_eq!(refusal(502, b""), "HTTP 502");
        let common_name = refusal(
            400,
            b"CommonName of client sending a request against gateway will be ignored and not used as expected\n",
        );
        assert!(
            common_name.contains("without a Common Name"),
            "{common_name}"
        );
        assert_eq!(
            refusal(502, b"<html>bad gateway</html>"),
            "HTTP 502: <html>bad gateway</html>"
        );
    }

    #[test]
    fn numbers_may_come_as_numbers_and_bad_values_are_refused() {
        assert_eq!(parse_grant(br#"{"ID":7,"TTL":2}"#).unwrap().id, 7);
        assert!(parse_grant(br#"{"ID":"x","TTL":"2"}"#).is_err());
        assert!(parse_grant(br#"{"ID":"7"}"#).is_err(), "no TTL");
        assert!(parse_grant(br#"{"ID":"7","TTL":"2","error":"lessor: no space"}"#).is_err());
        assert!(parse_campaign(br#"{"leader":{"key":"%%%","rev":"3"}}"#).is_err());
        assert!(parse_campaign(br#"{"header":{}}"#).is_err());
        assert!(parse_keepalive(br#"{"result":{"ID":"8","TTL":"5"}}"#, 7).is_err());
        assert!(parse_token(br#"{"token":""}"#).is_err());
    }

    proptest! {
        #[test]
        fn no_reader_panics(body in proptest::collection::vec(any::<u8>(), 0..200), status in 100u16..600) {
            let _ = parse_grant(&body);
            let _ = parse_keepalive(&body, 1);
            let _ = parse_campaign(&body);
            let _ = parse_leader(status, &body);
            let _ = parse_token(&body);
            let _ = refusal(status, &body);
        }

        #[test]
        fn no_reader_panics_on_json_shaped_input(
            key in "[A-Za-z0-9+/=%]{0,12}",
            number in "[-0-9a-z\"]{0,22}",
        ) {
            let body = format!(r#"{{"header":{{"revision":{number}}},"kv":{{"key":"{key}","create_revision":{number},"value":"{key}","lease":{number}}},"leader":{{"key":"{key}","rev":{number}}},"ID":{number},"TTL":{number},"result":{{"TTL":{number}}}}}"#);
            let _ = parse_grant(body.as_bytes());
            let _ = parse_keepalive(body.as_bytes(), 1);
            let _ = parse_campaign(body.as_bytes());
            let _ = parse_leader(200, body.as_bytes());
        }
    }
}
