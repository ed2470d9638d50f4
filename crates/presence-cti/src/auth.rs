//! The bearer-token check shared by every HTTP surface of the bridge (this link's WebSocket
//! upgrade and the binary's admin API), so that both accept and refuse the same requests.

use axum::http::{HeaderMap, header};

/// Whether the request carries `Authorization: Bearer <token>`: the scheme in any case,
/// any amount of space before the token, in any of the request's `Authorization` headers.
/// The comparison takes the same time wherever the first difference is (it only reveals
/// the length), so the token cannot be guessed byte by byte from response times.
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue, header};
/// use presence_cti::auth::bearer_authorized;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer s3cret"));
/// assert!(bearer_authorized(&headers, "s3cret"));
/// assert!(!bearer_authorized(&headers, "other"));
/// ```
pub fn bearer_authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.trim_start().split_once([' ', '\t']))
        .any(|(scheme, given)| {
            scheme.eq_ignore_ascii_case("bearer") && constant_time_eq(given.trim(), token)
        })
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
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
            "Bearer   tok  ",
            "Bearer\ttok",
        ] {
            assert!(bearer_authorized(&with(&[good]), "tok"), "{good}");
        }
        for bad in [
            "Bearer tok2",
            "Bearer to",
            "Basic tok",
            "Bearertok",
            "tok",
            "Bearer",
        ] {
            assert!(!bearer_authorized(&with(&[bad]), "tok"), "{bad}");
        }
    }

    #[test]
    fn any_of_several_headers_may_carry_it() {
        assert!(bearer_authorized(
            &with(&["Basic dXNlcjpwdw==", "Bearer tok"]),
            "tok"
        ));
        assert!(!bearer_authorized(
            &with(&["Basic dXNlcjpwdw==", "Bearer nope"]),
            "tok"
        ));
    }
}
