//! Property tests: written maps read back equal; no input makes the parser panic.
//! `check` is the body of the `map_xml` fuzz target (`presence_map::fuzzing::map_xml`).

use presence_map::{AgentPresenceMap, Location, ParseOptions, StateEntry};
use presence_model::{Activities, ActivityText, AggregatedStateId, Availability, Lcid, Presence};
use proptest::prelude::*;

/// Characters XML 1.0 can carry, with the awkward ones over-represented.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '<', '>', '&', '"', '\'', ' ', '\t', '\n', '\r', ']', ';', '#', 'é', 'Р', '☺',
            '\u{A0}', '\u{3000}', '\u{85}', '\u{1F600}', '\u{FFFD}',
        ]),
        2 => any::<char>().prop_filter("XML 1.0 character", |&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        }),
        3 => prop::char::range('a', 'z'),
    ]
}

fn text() -> impl Strategy<Value = String> {
    (
        "[ \t\n]{0,3}",
        prop::collection::vec(text_char(), 0..24),
        "[ \t\n]{0,3}",
    )
        .prop_map(|(lead, body, trail)| {
            format!("{lead}{}{trail}", body.into_iter().collect::<String>())
        })
}

fn state_id() -> impl Strategy<Value = AggregatedStateId> {
    "[A-Za-z0-9_.<>&'\"é-]{1,16}".prop_map(|s| AggregatedStateId::new(&s).unwrap())
}

fn entry() -> impl Strategy<Value = (AggregatedStateId, u32, Vec<(u32, String)>)> {
    (
        state_id(),
        0u32..=18000,
        prop::collection::vec((any::<u32>(), text()), 0..5),
    )
}

fn map() -> impl Strategy<Value = AgentPresenceMap> {
    prop::collection::vec(entry(), 0..8).prop_map(|raw| {
        let mut seen = std::collections::HashSet::new();
        let entries = raw
            .into_iter()
            .filter(|(id, ..)| seen.insert(id.clone()))
            .map(|(id, availability, texts)| {
                let mut lcids = std::collections::HashSet::new();
                let texts = texts
                    .into_iter()
                    .filter(|(lcid, _)| lcids.insert(*lcid))
                    .map(|(lcid, text)| (Lcid::new(lcid), ActivityText::new(&text)))
                    .collect();
                StateEntry {
                    id,
                    presence: Presence {
                        availability: Availability::new(availability).unwrap(),
                        activities: Activities::new(texts).unwrap(),
                    },
                    location: Location::START,
                }
            })
            .collect();
        AgentPresenceMap::from_entries(entries).unwrap()
    })
}

/// Small edits that keep the input close to a valid map.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let snippets = prop::sample::select(vec![
        b"<".to_vec(),
        b">".to_vec(),
        b"/>".to_vec(),
        b"</agentState>".to_vec(),
        b"<activity LCID=\"1033\">".to_vec(),
        b"&".to_vec(),
        b"&amp;".to_vec(),
        b"&#0;".to_vec(),
        b"&lol;".to_vec(),
        b"<![CDATA[".to_vec(),
        b"]]>".to_vec(),
        b"<!DOCTYPE x>".to_vec(),
        b"<!--".to_vec(),
        b"\"".to_vec(),
        b"xmlns:p=\"urn:p\"".to_vec(),
        b"p:".to_vec(),
        b"\xFF".to_vec(),
        b"\xC3".to_vec(),
        b"\x01".to_vec(),
        "é".as_bytes().to_vec(),
        b"\r\n".to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), 1usize..8).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), snippets).prop_map(|(at, s)| Mutation::Insert(at, s)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    let pos = |at: usize| if len == 0 { 0 } else { at % (len + 1) };
    match mutation {
        Mutation::Delete(at, n) => {
            let start = pos(*at);
            let end = (start + n).min(len);
            bytes.drain(start..end);
        }
        Mutation::Insert(at, snippet) => {
            let at = pos(*at);
            bytes.splice(at..at, snippet.iter().copied());
        }
        Mutation::Replace(at, b) => {
            if len > 0 {
                bytes[at % len] = *b;
            }
        }
        Mutation::Truncate(at) => bytes.truncate(pos(*at)),
        Mutation::Duplicate(at, n) => {
            let start = pos(*at);
            let end = (start + n).min(len);
            let copy = bytes[start..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

/// What every parse must satisfy: no panic; only UTF-8 is accepted; an accepted map writes
/// back to itself; an error other than `TooLarge` has a location inside the input.
/// The body of the `map_xml` fuzz target.
fn check(input: &[u8]) {
    presence_map::fuzzing::map_xml(input);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn written_maps_read_back_equal(map in map()) {
        let xml = map.to_xml();
        let parsed = AgentPresenceMap::parse_with(xml.as_bytes(), &ParseOptions { max_size: usize::MAX })
            .unwrap_or_else(|e| panic!("{e}\n{xml}"));
        prop_assert!(parsed.warnings.is_empty());
        prop_assert_eq!(&parsed.map, &map);
        // The texts are trimmed (the model trims) and found by ID.
        for entry in map.entries() {
            let back = parsed.map.get(entry.id.as_str()).unwrap();
            for ((l1, t1), (l2, t2)) in entry.presence.activities.iter().zip(back.presence.activities.iter()) {
                prop_assert_eq!(l1, l2);
                prop_assert_eq!(t1.as_str(), t1.as_str().trim());
                prop_assert_eq!(t1, t2);
            }
        }
        prop_assert_eq!(parsed.map.to_xml(), xml);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn never_accepts_a_bad_byte_anywhere(map in map(), at in any::<usize>(), bad in prop::sample::select(vec![0x80u8, 0xBF, 0xC0, 0xC3, 0xE2, 0xF0, 0xF8, 0xFF])) {
        let mut bytes = map.to_xml().into_bytes();
        let at = at % (bytes.len() + 1);
        bytes.insert(at, bad);
        check(&bytes);
    }

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        check(text.as_bytes());
    }

    #[test]
    fn never_panics_on_mutated_maps(map in map(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut bytes = map.to_xml().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check(&bytes);
    }
}

#[test]
fn deep_nesting_in_unknown_elements_is_fine() {
    let depth = 10_000;
    let xml = format!(
        "<agentStates xmlns=\"{}\">{}{}</agentStates>",
        presence_map::NAMESPACE,
        "<x>".repeat(depth),
        "</x>".repeat(depth)
    );
    let parsed = AgentPresenceMap::parse(xml.as_bytes()).unwrap();
    assert_eq!(parsed.warnings.len(), 1);
    let truncated = &xml[..xml.len() - 20];
    assert!(AgentPresenceMap::parse(truncated.as_bytes()).is_err());
}

#[test]
fn many_activities_in_one_state_stay_fast_and_bounded() {
    // 100,000 activities in one state: refused at the limit, not after a quadratic check.
    let mut xml = format!(
        "<agentStates xmlns=\"{}\"><agentState ID=\"A\" availability=\"1\">",
        presence_map::NAMESPACE
    );
    for i in 0..100_000 {
        xml.push_str(&format!("<activity LCID=\"{i}\">t</activity>"));
    }
    xml.push_str("</agentState></agentStates>");
    let err = AgentPresenceMap::parse(xml.as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("more than 256 activities"),
        "{err}"
    );
}
