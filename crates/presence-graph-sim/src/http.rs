//! The core's view of HTTP: a request and a response as plain values, and the few codecs
//! the simulator needs (percent-decoding, form bodies).

use serde::Serialize;

/// An HTTP request as the core sees it: what a server read off a connection.
///
/// Header names are compared case-insensitively; the body is the whole body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, ... (compared case-sensitively, as HTTP does).
    pub method: String,
    /// The request target: path and query, for example `/v1.0/users/x?$select=id`.
    pub path_and_query: String,
    /// The headers in order (name, value).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request with no headers and no body.
    pub fn new(method: impl Into<String>, path_and_query: impl Into<String>) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            path_and_query: path_and_query.into(),
            ..HttpRequest::default()
        }
    }

    /// `GET path`.
    pub fn get(path_and_query: impl Into<String>) -> HttpRequest {
        HttpRequest::new("GET", path_and_query)
    }

    /// `POST path`.
    pub fn post(path_and_query: impl Into<String>) -> HttpRequest {
        HttpRequest::new("POST", path_and_query)
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    #[must_use]
    pub fn with_bearer(self, token: &str) -> Self {
        self.with_header("Authorization", format!("Bearer {token}"))
    }

    /// Sets the body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body (and `Content-Type: application/json`).
    #[must_use]
    pub fn with_json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.with_header("Content-Type", "application/json")
            .with_body(body)
    }

    /// Sets an `application/x-www-form-urlencoded` body from pairs.
    #[must_use]
    pub fn with_form(self, fields: &[(&str, &str)]) -> Self {
        self.with_header("Content-Type", "application/x-www-form-urlencoded")
            .with_body(encode_form(fields))
    }

    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// An HTTP response from the core.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers in order (name, value); names and values are visible ASCII.
    pub headers: Vec<(String, String)>,
    /// The body (empty for the 200s of presence writes).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as JSON (`Value::Null` for an empty or non-JSON body).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// For a Graph error, its `error.code`; for an Entra error, its `error`.
    pub fn error_code(&self) -> Option<String> {
        let json = self.json();
        let error = json.get("error")?;
        match error.get("code") {
            Some(code) => code.as_str().map(str::to_owned),
            None => error.as_str().map(str::to_owned),
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `text` (a `%` not followed by two hex digits stays as it is); with
/// `plus_is_space`, `+` is a space (form bodies). Invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(text: &[u8], plus_is_space: bool) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        match byte {
            b'%' => {
                let pair = text
                    .get(i + 1)
                    .and_then(|h| hex(*h))
                    .zip(text.get(i + 2).and_then(|l| hex(*l)));
                if let Some((h, l)) = pair {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fields of an `application/x-www-form-urlencoded` body, in order.
pub(crate) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (pair.get(..at).unwrap_or_default(), pair.get(at + 1..)),
                None => (pair, None),
            };
            (
                percent_decode(name, true),
                percent_decode(value.unwrap_or_default(), true),
            )
        })
        .collect()
}

/// Percent-encodes for a form body or a path segment (everything but unreserved
/// characters).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn encode_form(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// `text` with anything but `[A-Za-z0-9-]` dropped, at most 64 characters: what can be
/// echoed back in a header.
pub(crate) fn header_safe(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms_round_trip() {
        let fields = [
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_secret", "a b+c&d=e%"),
        ];
        let parsed = parse_form(&encode_form(&fields));
        let expected: Vec<(String, String)> = fields
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(parsed, expected);
        assert_eq!(
            parse_form(b"a=1+2&&b&c=%zz%4"),
            [
                ("a".to_owned(), "1 2".to_owned()),
                ("b".to_owned(), String::new()),
                ("c".to_owned(), "%zz%4".to_owned())
            ]
        );
        assert_eq!(
            percent_decode(b"agent1%40contoso.com", false),
            "agent1@contoso.com"
        );
        assert_eq!(percent_decode(b"a+b", false), "a+b");
        assert_eq!(header_safe("abc-1\r\nX: y"), "abc-1Xy");
    }

    proptest! {
        #[test]
        fn form_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_form(&body);
            let _ = percent_decode(&body, false);
        }

        #[test]
        fn percent_encoding_round_trips(text in any::<String>()) {
            prop_assert_eq!(percent_decode(percent_encode(&text).as_bytes(), true), text);
        }
    }
}
