//! Parameter lists, comma-separated lists and quoted strings (RFC 3261 §25.1).

use std::borrow::Cow;

use crate::chars::{is_token_byte, is_wsp};
use crate::error::{SipError, snippet_str};

/// A parameter list: `(name, value)` pairs in order, `None` for a flag parameter such as
/// `;gruu` or `;lr`. Names keep their spelling; quoted values keep their quotes (use
/// [`unquote`] to read them).
pub type Params = Vec<(String, Option<String>)>;

/// The first parameter called `name` (ASCII case-insensitive): `Some(None)` for a flag,
/// `Some(Some(value))` for a value.
pub(crate) fn find_param<'a>(params: &'a Params, name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

/// Removes the quotes of an RFC 3261 `quoted-string` and resolves its `\` escapes; returns
/// any other text unchanged.
///
/// ```
/// use presence_sip::unquote;
/// assert_eq!(unquote(r#""a \"b\" \\ c""#), r#"a "b" \ c"#);
/// assert_eq!(unquote("token"), "token");
/// ```
pub fn unquote(text: &str) -> Cow<'_, str> {
    let Some(inner) = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return Cow::Borrowed(text);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                out.push(escaped);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes `text` as an RFC 3261 `quoted-string`, escaping `"` and `\`.
///
/// ```
/// assert_eq!(presence_sip::quote(r#"Smith, "J""#), r#""Smith, \"J\"""#);
/// ```
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Index just past the quoted string that starts at `start` (which holds `"`).
pub(crate) fn quoted_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    while let Some(&b) = bytes.get(j) {
        match b {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Skips SP/HTAB from `i`.
pub(crate) fn skip_wsp(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|&b| is_wsp(b)) {
        i += 1;
    }
    i
}

/// Whether `b` may appear in an unquoted parameter value.
fn is_value_byte(b: u8) -> bool {
    !(b == b';' || b == b',' || b == b'"' || b < 0x21 || b == 0x7f)
}

fn param_error(text: &str, base: usize, at: usize, expected: &'static str) -> SipError {
    SipError::InvalidParam {
        offset: base + at,
        token: snippet_str(text.get(at..).unwrap_or_default()),
        expected,
    }
}

/// Parses `*( SWS ";" SWS name [ SWS "=" SWS ( token / host / quoted-string ) ] )` up to
/// the end of `text`. `base` is added to error offsets.
pub(crate) fn parse_params(text: &str, base: usize) -> Result<Params, SipError> {
    let mut out = Params::new();
    scan_params(text, base, |name, value| {
        out.push((name.to_owned(), value.map(str::to_owned)));
    })?;
    Ok(out)
}

/// Reads a parameter list as [`parse_params`] does, handing each `(name, value)` to `f` as
/// slices of `text` instead of copying them; the same errors.
pub(crate) fn scan_params<'a>(
    text: &'a str,
    base: usize,
    mut f: impl FnMut(&'a str, Option<&'a str>),
) -> Result<(), SipError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        i = skip_wsp(bytes, i);
        let Some(&b) = bytes.get(i) else {
            return Ok(());
        };
        if b != b';' {
            return Err(param_error(text, base, i, "`;` before each parameter"));
        }
        i = skip_wsp(bytes, i + 1);
        let name_start = i;
        while bytes.get(i).is_some_and(|&b| is_token_byte(b)) {
            i += 1;
        }
        if i == name_start {
            return Err(param_error(
                text,
                base,
                name_start,
                "a parameter name (an RFC 3261 token) after `;`",
            ));
        }
        let name = text.get(name_start..i).unwrap_or_default();
        let after_name = skip_wsp(bytes, i);
        if bytes.get(after_name) != Some(&b'=') {
            f(name, None);
            continue;
        }
        i = skip_wsp(bytes, after_name + 1);
        let value_start = i;
        if bytes.get(i) == Some(&b'"') {
            let Some(end) = quoted_end(bytes, i) else {
                return Err(param_error(text, base, i, "a quoted string closed by `\"`"));
            };
            i = end;
        } else {
            while bytes.get(i).is_some_and(|&b| is_value_byte(b)) {
                i += 1;
            }
            if i == value_start {
                return Err(param_error(
                    text,
                    base,
                    value_start,
                    "a value (token, host or quoted string) after `=`",
                ));
            }
        }
        f(name, Some(text.get(value_start..i).unwrap_or_default()));
    }
}

/// Writes `;name[=value]` for every parameter.
pub(crate) fn write_params(out: &mut String, params: &Params) {
    for (name, value) in params {
        out.push(';');
        out.push_str(name);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
}

/// Splits a header value at commas outside quoted strings and `<…>`.
pub(crate) fn split_list(text: &str) -> SplitList<'_> {
    SplitList { rest: text }
}

/// Iterator of [`split_list`].
pub(crate) struct SplitList<'a> {
    rest: &'a str,
}

impl<'a> Iterator for SplitList<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        while !self.rest.is_empty() {
            let bytes = self.rest.as_bytes();
            let mut in_quotes = false;
            let mut in_angle = false;
            let mut i = 0;
            let mut cut = bytes.len();
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'\\' if in_quotes => i += 1,
                    b'"' => in_quotes = !in_quotes,
                    b'<' if !in_quotes => in_angle = true,
                    b'>' if !in_quotes => in_angle = false,
                    b',' if !in_quotes && !in_angle => {
                        cut = i;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            let item = self.rest.get(..cut).unwrap_or_default();
            self.rest = self.rest.get(cut + 1..).unwrap_or_default();
            let item = crate::chars::trim_wsp(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_with_flags_quotes_and_spaces() {
        let p = parse_params(
            r#" ; tag=abc ;epid = 01010101;gruu; reason="a;b, \"c\"" ;received=[::1]"#,
            0,
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                ("tag".to_owned(), Some("abc".to_owned())),
                ("epid".to_owned(), Some("01010101".to_owned())),
                ("gruu".to_owned(), None),
                ("reason".to_owned(), Some(r#""a;b, \"c\"""#.to_owned())),
                ("received".to_owned(), Some("[::1]".to_owned())),
            ]
        );
        assert_eq!(find_param(&p, "TAG"), Some(Some("abc")));
        assert_eq!(find_param(&p, "gruu"), Some(None));
        assert_eq!(find_param(&p, "nope"), None);
        assert_eq!(
            unquote(find_param(&p, "reason").flatten().unwrap()),
            r#"a;b, "c""#
        );
        let mut s = String::new();
        write_params(&mut s, &p);
        assert_eq!(parse_params(&s, 0).unwrap(), p);
        assert!(parse_params("", 0).unwrap().is_empty());
    }

    #[test]
    fn param_errors_point_at_the_problem() {
        for (input, offset) in [
            ("x", 0),
            (";", 1),
            (";a=", 3),
            (";a=\"open", 3),
            (";a=b c", 5),
            (";=b", 1),
            (";a,b", 2),
        ] {
            match parse_params(input, 10) {
                Err(SipError::InvalidParam { offset: got, .. }) => {
                    assert_eq!(got, 10 + offset, "{input:?}");
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn list_split_respects_quotes_and_angles() {
        let items: Vec<_> =
            split_list(r#" "Doe, J" <sip:a@b;x=1,2>;q=1 ,<sip:c@d>, , ms-benotify,"a\",b" "#)
                .collect();
        assert_eq!(
            items,
            [
                r#""Doe, J" <sip:a@b;x=1,2>;q=1"#,
                "<sip:c@d>",
                "ms-benotify",
                r#""a\",b""#
            ]
        );
        assert_eq!(split_list("").count(), 0);
        assert_eq!(split_list(",,,").count(), 0);
        assert_eq!(split_list("\"open, never closed").count(), 1);
    }

    #[test]
    fn quoting_round_trips() {
        for s in ["", "plain", r#"with "quotes""#, r"back\slash", "ünï"] {
            assert_eq!(unquote(&quote(s)), s);
        }
        assert_eq!(unquote("\""), "\"");
        assert_eq!(unquote(r#""\""#), "");
        assert_eq!(quoted_end(br#""ab\"c" x"#, 0), Some(7));
        assert_eq!(quoted_end(br#""ab"#, 0), None);
        assert_eq!(quoted_end(br#""a\"#, 0), None);
    }
}
