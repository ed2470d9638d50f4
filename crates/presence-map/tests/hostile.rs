//! Hostile maps: each is refused (or read) with a clear error, within bounded memory.
//!
//! A counting global allocator ([`peak_alloc`]) measures the peak of heap bytes in use
//! while each case runs, beyond what the test had allocated for its input; the tests of
//! this binary run one at a time ([`serial`]). Memory bounds are asserted generously;
//! times are printed (`HOSTILE` lines, run with `--nocapture`), never asserted.
//!
//! `tests/bad_input.rs` checks the error texts and locations of the DOCTYPE and billion
//! laughs cases in detail; here they are measured.

use std::time::Duration;

use presence_map::{AgentPresenceMap, DEFAULT_MAX_SIZE, MapError, NAMESPACE, ParseOptions};
use presence_testproc::heap::{self, PeakAlloc, serial};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// [`heap::measure`] for this crate's cases.
fn measure<T>(name: &str, case: impl FnOnce() -> T) -> (T, usize, Duration) {
    heap::measure(env!("CARGO_PKG_NAME"), name, case)
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn open_root() -> String {
    format!("<?xml version=\"1.0\"?>\n<agentStates xmlns=\"{NAMESPACE}\">\n")
}

#[test]
fn nesting_100000_deep_is_refused_without_recursion() {
    let _serial = serial();
    let depth = 100_000;
    let mut xml = open_root();
    xml.push_str(&"<x>".repeat(depth));
    xml.push_str(&"</x>".repeat(depth));
    xml.push_str("</agentStates>\n");
    let (result, peak, _) = measure("nesting 100,000 deep", || {
        AgentPresenceMap::parse(xml.as_bytes())
    });
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, MapError::Xml { .. }), "{text}");
    // quick-xml stops at 65,535 levels and says so; the location is the element's.
    assert!(text.contains("65535"), "{text}");
    assert_eq!(err.location().map(|l| l.line), Some(3), "{text}");
    assert!(peak < 4 * xml.len(), "{peak} bytes for {} bytes", xml.len());
}

/// Ten levels of entities, each ten references to the one before: 10^9 `lol`s expanded.
fn billion_laughs() -> String {
    let mut xml =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol0 \"lol\">\n");
    for i in 1..10 {
        let refs = format!("&lol{};", i - 1).repeat(10);
        xml.push_str(&format!("<!ENTITY lol{i} \"{refs}\">\n"));
    }
    xml.push_str(&format!(
        "]>\n<agentStates xmlns=\"{NAMESPACE}\"><agentState ID=\"A\" availability=\"1\"><activity LCID=\"1033\">&lol9;</activity></agentState></agentStates>\n"
    ));
    xml
}

#[test]
fn doctypes_are_refused_before_any_entity_is_declared() {
    let _serial = serial();
    let cases = [
        ("billion laughs", billion_laughs()),
        (
            "external entity (file)",
            format!(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE agentStates [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<agentStates xmlns=\"{NAMESPACE}\"><agentState ID=\"A\" availability=\"1\"><activity LCID=\"1033\">&xxe;</activity></agentState></agentStates>"
            ),
        ),
        (
            "external DTD (http)",
            format!(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE agentStates SYSTEM \"http://127.0.0.1:9/evil.dtd\">\n<agentStates xmlns=\"{NAMESPACE}\"/>"
            ),
        ),
        (
            "parameter entity",
            format!(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE agentStates [<!ENTITY % p SYSTEM \"file:///dev/zero\"> %p;]>\n<agentStates xmlns=\"{NAMESPACE}\"/>"
            ),
        ),
        (
            "plain DOCTYPE",
            format!(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE agentStates>\n<agentStates xmlns=\"{NAMESPACE}\"/>"
            ),
        ),
    ];
    for (name, xml) in cases {
        let (result, peak, _) = measure(name, || AgentPresenceMap::parse(xml.as_bytes()));
        let err = result.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, MapError::Doctype { .. }), "{name}: {text}");
        assert!(
            text.contains("line 2, column 1: DOCTYPE is not allowed"),
            "{name}: {text}"
        );
        assert!(peak < 16 * KIB, "{name}: {peak} bytes");
    }
}

#[test]
fn a_10_mb_attribute_is_refused_by_size_or_read_in_linear_memory() {
    let _serial = serial();
    let value = "v".repeat(10 * MIB);
    let unknown = format!(
        "{}<agentState ID=\"A\" availability=\"1\" note=\"{value}\"/>\n</agentStates>\n",
        open_root()
    );
    // The default limit refuses it before reading a byte of XML.
    let (result, peak, _) = measure("10 MB attribute", || {
        AgentPresenceMap::parse(unknown.as_bytes())
    });
    let err = result.unwrap_err();
    assert!(
        matches!(err, MapError::TooLarge { size, limit } if size == unknown.len() && limit == DEFAULT_MAX_SIZE),
        "{err}"
    );
    assert_eq!(peak, 0, "the size check allocates nothing");

    // With the limit raised, an unknown attribute is a warning that quotes none of it, and
    // a 10 MB ID is an error that quotes a few characters.
    let roomy = ParseOptions { max_size: 16 * MIB };
    let (result, peak, _) = measure("10 MB unknown attribute, limit raised", || {
        AgentPresenceMap::parse_with(unknown.as_bytes(), &roomy)
    });
    let parsed = result.unwrap();
    assert_eq!(parsed.map.len(), 1);
    assert!(
        parsed.warnings.iter().all(|w| w.message.len() < 1024),
        "{:?}",
        parsed.warnings
    );
    assert!(
        peak < 64 * KIB,
        "{peak} bytes: the value is borrowed, not copied"
    );
    drop(parsed);

    let id = format!(
        "{}<agentState ID=\"{value}\" availability=\"1\"/>\n</agentStates>\n",
        open_root()
    );
    let (result, peak, _) = measure("10 MB state ID, limit raised", || {
        AgentPresenceMap::parse_with(id.as_bytes(), &roomy)
    });
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, MapError::InvalidStateId { .. }), "{text}");
    assert!(text.len() < 1024, "the error quotes {} bytes", text.len());
    assert!(peak < 2 * value.len(), "{peak} bytes");

    // An attribute value with references is copied once to expand them.
    let escaped = format!(
        "{}<agentState ID=\"A\" availability=\"1\" note=\"{}\"/>\n</agentStates>\n",
        open_root(),
        "&amp;".repeat(2 * MIB)
    );
    let (result, peak, _) = measure("10 MB attribute of references, limit raised", || {
        AgentPresenceMap::parse_with(escaped.as_bytes(), &roomy)
    });
    assert!(result.is_ok());
    assert!(
        peak < 2 * escaped.len(),
        "{peak} bytes for {}",
        escaped.len()
    );
}

#[test]
fn a_100_mb_map_is_refused_before_parsing() {
    let _serial = serial();
    // Generated here, never committed: a valid map of about 100 MB.
    let mut xml = open_root();
    let mut i = 0u64;
    while xml.len() < 100 * MIB {
        xml.push_str(&format!(
            "<agentState ID=\"S{i}\" availability=\"3500\"><activity LCID=\"1033\">Available, state number {i}</activity></agentState>\n"
        ));
        i += 1;
    }
    xml.push_str("</agentStates>\n");
    let (result, peak, _) = measure("100 MB map (in memory)", || {
        AgentPresenceMap::parse(xml.as_bytes())
    });
    let err = result.unwrap_err();
    assert!(
        matches!(err, MapError::TooLarge { size, limit } if size == xml.len() && limit == DEFAULT_MAX_SIZE),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("more than the limit of 4194304 bytes"),
        "{err}"
    );
    assert!(peak < 2 * DEFAULT_MAX_SIZE, "{peak} bytes");
}

#[test]
fn a_map_of_a_million_unknown_elements_keeps_its_warnings_bounded() {
    let _serial = serial();
    // Within the size limit: 4 bytes per unknown element.
    let mut xml = open_root();
    while xml.len() < DEFAULT_MAX_SIZE - 64 {
        xml.push_str("<x/>");
    }
    xml.push_str("</agentStates>\n");
    let elements = (xml.len() - open_root().len()) / 4;
    let (result, peak, _) = measure("4 MiB map of 1,000,000 unknown elements", || {
        AgentPresenceMap::parse(xml.as_bytes())
    });
    let parsed = result.unwrap();
    assert!(parsed.map.is_empty());
    assert!(!parsed.warnings.is_empty());
    let last = parsed.warnings.last().unwrap().to_string();
    assert!(last.contains("more"), "{last}");
    assert!(
        parsed.warnings.len() < 1000,
        "{} warnings for {elements} elements",
        parsed.warnings.len()
    );
    assert!(peak < 2 * xml.len(), "{peak} bytes for {} bytes", xml.len());
}
