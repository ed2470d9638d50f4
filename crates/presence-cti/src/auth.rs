//! The bearer-token check shared by every HTTP surface of the bridge (this link's WebSocket
//! upgrade and the binary's admin API), so that both accept and refuse the same requests,
//! answer a refusal with the same challenge, and take the same tokens.
//!
//! The rules (RFC 6750 §2.1, RFC 7235 §2.1):
//!
//! - the request carries **exactly one** `Authorization` header; a request with several is
//!   refused, whatever they hold. The field is not a list (RFC 7230 §3.2.2 forbids sending
//!   it twice), so several are a malformed or smuggled request, and accepting any one of
//!   them would let a client try many tokens per request;
//! - its value is the scheme `Bearer` in any case (`Bearer`, `bearer`, `BEARER`), one or
//!   more spaces or tabs, then the token; white space around the token is ignored;
//! - the token is compared in constant time: the work done depends on the configured
//!   token's length only, never on the bytes given or on where they first differ, so a
//!   token cannot be guessed byte by byte from response times.

use axum::http::{HeaderMap, header};

/// The `WWW-Authenticate` challenge both listeners send with a `401 Unauthorized`.
pub const CHALLENGE: &str = "Bearer realm=\"presence-bridge\"";

/// Whether the request carries `Authorization: Bearer <token>` under the rules above.
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue, header};
/// use presence_cti::auth::bearer_authorized;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer s3cret"));
/// assert!(bearer_authorized(&headers, "s3cret"));
/// assert!(!bearer_authorized(&headers, "other"));
/// // A second Authorization header makes the request unauthorized, even a matching one.
/// headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
/// assert!(!bearer_authorized(&headers, "s3cret"));
/// ```
pub fn bearer_authorized(headers: &HeaderMap, token: &str) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let Some((scheme, given)) = value.trim_start().split_once([' ', '\t']) else {
        return false;
    };
    // `&` rather than `&&`: the token is compared whatever the scheme.
    scheme.eq_ignore_ascii_case("bearer") & constant_time_eq(given.trim().as_bytes(), token)
}

/// Whether `token` can be a bearer token: not empty, visible ASCII only (no spaces, no
/// control characters). Both listeners refuse to start with any other.
///
/// ```
/// use presence_cti::auth::valid_token;
/// assert!(valid_token("2f9c-A.b_c~d+e/f="));
/// assert!(!valid_token("") && !valid_token("two words") && !valid_token("tab\there"));
/// ```
pub fn valid_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Compares `given` with `token` doing the same work for every `given`: one step per byte
/// of `token`, no early exit, the length difference folded into the result.
fn constant_time_eq(given: &[u8], token: &str) -> bool {
    let token = token.as_bytes();
    let mut diff = u8::from(given.len() != token.len());
    for (i, t) in token.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        // black_box keeps the optimiser from turning the fold into an early exit.
        diff |= std::hint::black_box(g ^ t);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn bearer_tokens() {
        assert!(!bearer_authorized(&HeaderMap::new(), "tok"));
        for good in [
            "Bearer tok",
            "bearer tok",
            "BEARER tok",
            "bEaReR tok",
            "Bearer   tok  ",
            "Bearer\ttok",
            "  Bearer tok",
        ] {
            assert!(bearer_authorized(&with(&[good]), "tok"), "{good}");
        }
        for bad in [
            "Bearer tok2",
            "Bearer to",
            "Bearer tOk",
            "Bearer tok tok",
            "Bearer ",
            "Basic tok",
            "Bearertok",
            "Bearer:tok",
            "Token tok",
            "tok",
            "Bearer",
            "",
        ] {
            assert!(!bearer_authorized(&with(&[bad]), "tok"), "{bad:?}");
        }
    }

    #[test]
    fn several_authorization_headers_are_refused() {
        for headers in [
            ["Bearer tok", "Bearer tok"],
            ["Basic dXNlcjpwdw==", "Bearer tok"],
            ["Bearer tok", "Basic dXNlcjpwdw=="],
            ["Bearer nope", "Bearer tok"],
        ] {
            assert!(!bearer_authorized(&with(&headers), "tok"), "{headers:?}");
        }
    }

    #[test]
    fn a_value_that_is_not_text_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer t\xffk").unwrap(),
        );
        assert!(!bearer_authorized(&headers, "t\u{ff}k"));
    }

    #[test]
    fn the_comparison_is_exact_at_every_length() {
        let token = "0123456789abcdef";
        assert!(constant_time_eq(token.as_bytes(), token));
        for cut in 0..token.len() {
            assert!(!constant_time_eq(&token.as_bytes()[..cut], token), "{cut}");
            let mut longer = token.as_bytes().to_vec();
            longer.insert(cut, b'x');
            assert!(!constant_time_eq(&longer, token), "{cut}");
            let mut flipped = token.as_bytes().to_vec();
            flipped[cut] ^= 1;
            assert!(!constant_time_eq(&flipped, token), "{cut}");
        }
        // Given bytes beyond the token, or zero bytes standing in for missing ones, never
        // match.
        assert!(!constant_time_eq(b"0123456789abcdef\0", token));
        assert!(!constant_time_eq(b"ab", "ab\0"));
        assert!(!constant_time_eq(b"", "x"));
    }

    #[test]
    fn valid_tokens() {
        assert!(valid_token("s3cret"));
        for bad in ["", " ", "a b", "a\tb", "é", "a\u{7f}"] {
            assert!(!valid_token(bad), "{bad:?}");
        }
    }
}
