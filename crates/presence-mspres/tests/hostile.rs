//! Hostile MS-PRES bodies, as a pool (or anything posing as one) could send them in a
//! NOTIFY, a BENOTIFY or a 409 answer: each is refused with a clear error, within bounded
//! memory.
//!
//! A counting global allocator ([`peak_alloc`]) measures the peak of heap bytes in use
//! while each case runs, beyond the test's own input; the tests of this binary run one at a
//! time ([`serial`]). Memory bounds are asserted generously; times are printed (`HOSTILE`
//! lines, run with `--nocapture`), never asserted.
//!
//! `tests/it/no_panic.rs` (`deep_and_large_inputs_are_refused_not_overflowed`) checks the
//! depth, size and element-count refusals of every parser, and `src/xml.rs` the DOCTYPE
//! refusal and its location; here the same classes are driven through
//! [`parse_notification`] and measured.

use std::time::Duration;

use presence_mspres::{
    Fault, Limits, MAX_BODY_BYTES, MsPresError, content_type, parse_notification,
    parse_notification_with,
};
use presence_testproc::heap::{self, PeakAlloc, serial};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// [`heap::measure`] for this crate's cases.
fn measure<T>(name: &str, case: impl FnOnce() -> T) -> (T, usize, Duration) {
    heap::measure(env!("CARGO_PKG_NAME"), name, case)
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

const CATEGORIES_NS: &str = "http://schemas.microsoft.com/2006/09/sip/categories";

#[test]
fn nesting_100000_deep_is_refused_at_the_depth_limit() {
    let _serial = serial();
    let body = format!(
        "<categories xmlns=\"{CATEGORIES_NS}\" uri=\"sip:a@contoso.com\">{}{}</categories>",
        "<x>".repeat(100_000),
        "</x>".repeat(100_000)
    );
    assert!(body.len() < MAX_BODY_BYTES);
    let (result, peak, _) = measure("nesting 100,000 deep", || {
        parse_notification(content_type::CATEGORIES, body.as_bytes())
    });
    let err = result.unwrap_err();
    assert!(
        matches!(err, MsPresError::TooDeep { limit: 32, .. }),
        "{err}"
    );
    assert!(peak < 256 * KIB, "{peak} bytes");
}

#[test]
fn doctypes_entities_and_external_references_are_refused() {
    let _serial = serial();
    let mut laughs = String::from("<!DOCTYPE categories [<!ENTITY lol0 \"lol\">");
    for i in 1..10 {
        laughs.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&lol{};", i - 1).repeat(10)
        ));
    }
    laughs.push_str(&format!(
        "]><categories xmlns=\"{CATEGORIES_NS}\" uri=\"sip:a@contoso.com\">&lol9;</categories>"
    ));
    let cases = [
        ("billion laughs", laughs),
        (
            "external entity (file)",
            format!(
                "<!DOCTYPE categories [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><categories xmlns=\"{CATEGORIES_NS}\" uri=\"&xxe;\"/>"
            ),
        ),
        (
            "external DTD (http)",
            format!(
                "<!DOCTYPE categories SYSTEM \"http://127.0.0.1:9/x.dtd\"><categories xmlns=\"{CATEGORIES_NS}\" uri=\"u\"/>"
            ),
        ),
        (
            "DOCTYPE after the declaration",
            format!(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE categories><categories xmlns=\"{CATEGORIES_NS}\" uri=\"u\"/>"
            ),
        ),
    ];
    for (name, body) in cases {
        let (result, peak, _) = measure(name, || {
            parse_notification(content_type::CATEGORIES, body.as_bytes())
        });
        let err = result.unwrap_err();
        assert!(matches!(err, MsPresError::DocType { .. }), "{name}: {err}");
        assert!(
            err.to_string()
                .contains("<!DOCTYPE> declaration is not allowed"),
            "{err}"
        );
        assert!(peak < 16 * KIB, "{name}: {peak} bytes");
    }
    // The fault body (a 409 answer) is read by its own parser: the same refusal.
    let (result, _, _) = measure("DOCTYPE in a fault", || {
        Fault::parse(b"<!DOCTYPE Fault [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Fault><Faultcode>&e;</Faultcode></Fault>")
    });
    assert!(
        matches!(result, Err(MsPresError::DocType { .. })),
        "{result:?}"
    );
}

#[test]
fn a_10_mb_attribute_is_refused_by_size_and_quoted_briefly_when_read() {
    let _serial = serial();
    let value = "9".repeat(10 * MIB);
    let unknown = format!(
        "<categories xmlns=\"{CATEGORIES_NS}\" uri=\"sip:a@contoso.com\" note=\"{value}\"/>"
    );
    let (result, peak, _) = measure("10 MB attribute", || {
        parse_notification(content_type::CATEGORIES, unknown.as_bytes())
    });
    let err = result.unwrap_err();
    assert!(
        matches!(err, MsPresError::TooLarge { size, limit, .. } if size == unknown.len() && limit == MAX_BODY_BYTES),
        "{err}"
    );
    assert!(
        peak < KIB,
        "{peak} bytes: the size is checked before parsing"
    );

    let roomy = Limits {
        max_body_bytes: 16 * MIB,
        ..Limits::DEFAULT
    };
    let (result, peak, _) = measure("10 MB unknown attribute, limit raised", || {
        parse_notification_with(content_type::CATEGORIES, unknown.as_bytes(), &roomy)
    });
    assert!(result.is_ok(), "{result:?}");
    assert!(
        peak < 256 * KIB,
        "{peak} bytes: the value is borrowed, not copied"
    );

    // A known attribute of 10 MB that is not valid: the error quotes a little of it.
    let fault = format!(
        "<Fault><Faultcode>Client.BadCall.WrongDelta</Faultcode><details><operation index=\"1\" curVersion=\"{value}\"/></details></Fault>"
    );
    let (result, peak, _) = measure("10 MB invalid attribute, limit raised", || {
        Fault::parse_with(fault.as_bytes(), &roomy)
    });
    let err = result.unwrap_err();
    let text = presence_model::error_chain(&err);
    assert!(
        matches!(err, MsPresError::InvalidAttribute { .. }),
        "{text:.200}"
    );
    assert!(text.len() < 1024, "the error quotes {} bytes", text.len());
    assert!(peak < 256 * KIB, "{peak} bytes");
}

#[test]
fn floods_of_elements_and_parts_stop_at_their_limits() {
    let _serial = serial();
    let many = format!(
        "<categories xmlns=\"{CATEGORIES_NS}\" uri=\"u\">{}</categories>",
        "<x/>".repeat(250_000)
    );
    let (result, peak, _) = measure("250,000 elements (1 MB)", || {
        parse_notification(content_type::CATEGORIES, many.as_bytes())
    });
    assert!(
        matches!(
            result,
            Err(MsPresError::TooManyElements { limit: 65_536, .. })
        ),
        "{result:?}"
    );
    assert!(peak < 16 * MIB, "{peak} bytes for {} bytes", many.len());

    let boundary = "b";
    let part = format!(
        "--{boundary}\r\nContent-Type: application/msrtc-event-categories+xml\r\n\r\n<categories xmlns=\"{CATEGORIES_NS}\" uri=\"u\"/>\r\n"
    );
    let mut body = part.repeat(5_000);
    body.push_str(&format!("--{boundary}--\r\n"));
    let ct = format!("multipart/related;type=\"application/rlmi+xml\";boundary=\"{boundary}\"");
    let (result, peak, _) = measure("5,000 multipart parts", || {
        parse_notification(&ct, body.as_bytes())
    });
    assert!(
        matches!(result, Err(MsPresError::TooManyParts { limit: 1024, .. })),
        "{result:?}"
    );
    assert!(
        peak < 4 * body.len(),
        "{peak} bytes for {} bytes",
        body.len()
    );
}
