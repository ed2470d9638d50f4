//! Every way a map can be refused: each error names the location and the offending value.

use presence_map::{AgentPresenceMap, Location, MapError, NAMESPACE, ParseOptions};

/// A document whose `body` starts on line 3.
fn doc(body: &str) -> Vec<u8> {
    format!("<?xml version=\"1.0\"?>\n<agentStates xmlns=\"{NAMESPACE}\">\n{body}</agentStates>\n")
        .into_bytes()
}

struct Case {
    name: &'static str,
    input: Vec<u8>,
    max_size: Option<usize>,
    /// The line the error must point at (`None`: the error is about the size).
    line: Option<u32>,
    /// Text the message must contain: the offending token and what would be valid.
    needles: Vec<&'static str>,
}

fn case(name: &'static str, input: Vec<u8>, line: u32, needles: &[&'static str]) -> Case {
    Case {
        name,
        input,
        max_size: None,
        line: Some(line),
        needles: needles.to_vec(),
    }
}

fn billion_laughs() -> Vec<u8> {
    let mut xml =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        let refs = format!("&{prev};").repeat(10);
        xml.push_str(&format!(" <!ENTITY lol{i} \"{refs}\">\n"));
    }
    xml.push_str(&format!(
        "]>\n<agentStates xmlns=\"{NAMESPACE}\"><agentState ID=\"A\" availability=\"1\"><activity LCID=\"1033\">&lol9;</activity></agentState></agentStates>\n"
    ));
    xml.into_bytes()
}

fn cases() -> Vec<Case> {
    let state = |attrs: &str| doc(&format!("<agentState {attrs}/>\n"));
    let activity = |inner: &str| {
        doc(&format!(
            "<agentState ID=\"S\" availability=\"1\">\n{inner}\n</agentState>\n"
        ))
    };
    // `#` stands for a byte that is not UTF-8.
    let invalid_utf8: Vec<u8> = doc(
        "<agentState ID=\"S\" availability=\"1\">\n<activity LCID=\"1033\">caf#</activity></agentState>\n",
    )
    .into_iter()
    .map(|b| if b == b'#' { 0xFF } else { b })
    .collect();

    vec![
        case(
            "wrong root",
            format!("<agentStatez xmlns=\"{NAMESPACE}\"/>").into_bytes(),
            1,
            &["`<agentStatez>`", "expected `<agentStates>`", NAMESPACE],
        ),
        case(
            "wrong namespace",
            b"<?xml version=\"1.0\"?>\n<agentStates xmlns=\"urn:wrong\"/>".to_vec(),
            2,
            &["`urn:wrong`", "`<agentStates>`", NAMESPACE],
        ),
        case(
            "no namespace",
            b"<agentStates>\n</agentStates>".to_vec(),
            1,
            &["in no namespace", NAMESPACE],
        ),
        case(
            "duplicate ID",
            doc("<agentState ID=\"A\" availability=\"1\"/>\n<agentState ID=\"A\" availability=\"2\"/>\n"),
            4,
            &["`A`", "twice", "first at line 3, column 1"],
        ),
        case(
            "duplicate LCID",
            activity("<activity LCID=\"1033\">a</activity>\n<activity LCID=\"1033\">b</activity>"),
            5,
            &["LCID 1033", "`S`", "first at line 4, column 1"],
        ),
        case(
            "non-numeric LCID",
            activity("<activity LCID=\"en-US\">a</activity>"),
            4,
            &["`en-US`", "`S`", "decimal"],
        ),
        case(
            "availability -1",
            state("ID=\"S\" availability=\"-1\""),
            3,
            &["`-1`", "0..=18000", "`S`"],
        ),
        case(
            "availability 18001",
            state("ID=\"S\" availability=\"18001\""),
            3,
            &["`18001`", "0..=18000"],
        ),
        case(
            "availability x",
            state("ID=\"S\" availability=\"x\""),
            3,
            &["`x`", "0..=18000"],
        ),
        case(
            "availability empty",
            state("ID=\"S\" availability=\"\""),
            3,
            &["``", "0..=18000"],
        ),
        case(
            "missing ID",
            state("availability=\"1\""),
            3,
            &["`<agentState>`", "`ID`"],
        ),
        case(
            "missing availability",
            state("ID=\"S\""),
            3,
            &["`availability`", "`S`"],
        ),
        case(
            "missing LCID",
            activity("<activity>a</activity>"),
            4,
            &["`LCID`", "`<activity>`", "`S`"],
        ),
        case(
            "invalid state ID",
            state("ID=\"IN CALL\" availability=\"1\""),
            3,
            &["`IN CALL`", "without spaces"],
        ),
        case(
            "truncated after the root start tag",
            format!("<agentStates xmlns=\"{NAMESPACE}\">").into_bytes(),
            1,
            &["ends inside `<agentStates>`", "`</agentStates>`"],
        ),
        case(
            "truncated text",
            format!(
                "<?xml version=\"1.0\"?>\n<agentStates xmlns=\"{NAMESPACE}\">\n<agentState ID=\"S\" availability=\"1\">\n<activity LCID=\"1033\">Hel"
            )
            .into_bytes(),
            4,
            &["ends inside `<activity>`", "opened at line 4, column 1", "`</activity>`"],
        ),
        case(
            "truncated tag",
            format!(
                "<?xml version=\"1.0\"?>\n<agentStates xmlns=\"{NAMESPACE}\">\n<agentState ID=\"S\" avail"
            )
            .into_bytes(),
            3,
            &["not well-formed", "`<agentState ID=\"S\" avail`"],
        ),
        case(
            "mismatched end tag",
            activity("<activity LCID=\"1033\">a</agentState>"),
            4,
            &["not well-formed", "`</activity>`", "`</agentState>`"],
        ),
        case(
            "DOCTYPE",
            format!("<?xml version=\"1.0\"?>\n<!DOCTYPE agentStates>\n<agentStates xmlns=\"{NAMESPACE}\"/>")
                .into_bytes(),
            2,
            &["DOCTYPE is not allowed: the map may not declare entities", "agentStates"],
        ),
        case(
            "billion laughs",
            billion_laughs(),
            2,
            &["DOCTYPE is not allowed", "lolz"],
        ),
        case(
            "DOCTYPE inside the root",
            doc("<!DOCTYPE x>\n"),
            3,
            &["DOCTYPE is not allowed", "x"],
        ),
        case("empty file", Vec::new(), 1, &["the file is empty", "<agentStates>"]),
        case(
            "whitespace-only file",
            b"  \n\t\n".to_vec(),
            1,
            &["the file is empty", NAMESPACE],
        ),
        case(
            "no root element",
            b"<?xml version=\"1.0\"?>\n<!-- nothing here -->\n".to_vec(),
            3,
            &["no root element", NAMESPACE],
        ),
        case(
            "second root",
            {
                let mut xml = doc("");
                xml.extend_from_slice(format!("<agentStates xmlns=\"{NAMESPACE}\"/>").as_bytes());
                xml
            },
            4,
            &["second root element", "`<agentStates>`"],
        ),
        case(
            "trailing garbage",
            {
                let mut xml = doc("");
                xml.extend_from_slice(b"garbage");
                xml
            },
            4,
            &["`garbage`", "outside the root element"],
        ),
        case(
            "text before the root",
            format!("oops<agentStates xmlns=\"{NAMESPACE}\"/>").into_bytes(),
            1,
            &["`oops", "outside the root element"],
        ),
        case(
            "invalid UTF-8",
            invalid_utf8,
            4,
            &["not UTF-8", "0xFF", "column 26"],
        ),
        case(
            "undefined entity",
            activity("<activity LCID=\"1033\">&nbsp;</activity>"),
            4,
            &["`&nbsp;`", "not defined", "&amp;"],
        ),
        case(
            "undefined entity in an attribute",
            state("ID=\"&foo;\" availability=\"1\""),
            3,
            &["`&foo;`", "not defined"],
        ),
        case(
            "undefined entity in an unknown element",
            doc("<extra>&foo;</extra>\n"),
            3,
            &["`&foo;`"],
        ),
        case(
            "forbidden character reference",
            activity("<activity LCID=\"1033\">a&#1;b</activity>"),
            4,
            &["`&#1;`", "XML 1.0"],
        ),
        case(
            "malformed character reference",
            activity("<activity LCID=\"1033\">&#xZZ;</activity>"),
            4,
            &["`&#xZZ;`"],
        ),
        case(
            "raw control character",
            activity("<activity LCID=\"1033\">a\u{1}b</activity>"),
            4,
            &["U+0001", "not allowed"],
        ),
        case(
            "unclosed ampersand",
            activity("<activity LCID=\"1033\">fish & chips</activity>"),
            4,
            &["not well-formed", "`&"],
        ),
        case(
            "duplicate attribute",
            state("ID=\"A\" ID=\"B\" availability=\"1\""),
            3,
            &["not well-formed", "ID="],
        ),
        case(
            "undeclared prefix",
            b"<x:agentStates/>".to_vec(),
            1,
            &["prefix `x`", "`x:agentStates`"],
        ),
        case(
            "declared encoding is not UTF-8",
            format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<agentStates xmlns=\"{NAMESPACE}\"/>")
                .into_bytes(),
            1,
            &["`ISO-8859-1`", "UTF-8"],
        ),
        case(
            "declaration not first",
            format!("\n<?xml version=\"1.0\"?>\n<agentStates xmlns=\"{NAMESPACE}\"/>").into_bytes(),
            2,
            &["`<?xml version", "very first"],
        ),
        Case {
            name: "too large",
            input: doc("<agentState ID=\"S\" availability=\"1\"/>\n"),
            max_size: Some(100),
            line: None,
            needles: vec!["bytes, more than the limit of 100 bytes"],
        },
    ]
}

#[test]
fn every_bad_input_is_refused_with_its_location_and_token() {
    let cases = cases();
    assert!(cases.len() >= 35);
    for case in cases {
        let options = ParseOptions {
            max_size: case.max_size.unwrap_or(presence_map::DEFAULT_MAX_SIZE),
        };
        let err = match AgentPresenceMap::parse_with(&case.input, &options) {
            Ok(parsed) => panic!("{}: accepted: {:?}", case.name, parsed.map),
            Err(err) => err,
        };
        let message = err.to_string();
        match case.line {
            Some(line) => {
                let location = err
                    .location()
                    .unwrap_or_else(|| panic!("{}: no location: {message}", case.name));
                assert_eq!(location.line, line, "{}: {message}", case.name);
                assert!(
                    message.starts_with(&format!("{location}: ")),
                    "{}: {message}",
                    case.name
                );
            }
            None => assert_eq!(err.location(), None, "{}", case.name),
        }
        for needle in &case.needles {
            assert!(
                message.contains(needle),
                "{}: `{needle}` not in: {message}",
                case.name
            );
        }
    }
}

#[test]
fn too_large_names_the_size_and_is_checked_before_parsing() {
    // Not even UTF-8: the size check comes first.
    let input = vec![0xFFu8; 2000];
    let err = AgentPresenceMap::parse_with(&input, &ParseOptions { max_size: 1999 }).unwrap_err();
    assert!(
        matches!(
            err,
            MapError::TooLarge {
                size: 2000,
                limit: 1999
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("2000 bytes"), "{err}");
    // The default limit.
    let big = vec![b' '; presence_map::DEFAULT_MAX_SIZE + 1];
    assert!(matches!(
        AgentPresenceMap::parse(&big),
        Err(MapError::TooLarge { .. })
    ));
}

#[test]
fn attribute_errors_point_at_the_attribute() {
    let err =
        AgentPresenceMap::parse(&doc("<agentState ID=\"S\" availability=\"-1\"/>\n")).unwrap_err();
    assert_eq!(err.location(), Some(Location::new(3, 20)));
    let err = AgentPresenceMap::parse(&doc(
        "<agentState ID=\"S\" availability=\"1\">\n  <activity LCID=\"x\"/>\n</agentState>\n",
    ))
    .unwrap_err();
    assert_eq!(err.location(), Some(Location::new(4, 13)));
}

#[test]
fn errors_keep_their_lower_layer_source() {
    use std::error::Error as _;
    let err =
        AgentPresenceMap::parse(&doc("<agentState ID=\"S\" availability=\"x\"/>\n")).unwrap_err();
    assert!(err.source().is_some());
    let err = AgentPresenceMap::parse(&doc("<agentState ID=\"S\" avail")).unwrap_err();
    assert!(matches!(err, MapError::Xml { .. }), "{err}");
    assert!(err.source().is_some());
    let err = AgentPresenceMap::parse(b"\xC3(").unwrap_err();
    assert!(matches!(err, MapError::NotUtf8 { byte: 0xC3, .. }), "{err}");
    assert!(err.source().is_some());
}

#[test]
fn a_bad_byte_is_located_exactly_wherever_it_is() {
    // `#` marks the place of a byte that is not UTF-8, in every kind of markup.
    let places = [
        "#<agentStates xmlns=\"NS\"/>",
        "<!-- # --><agentStates xmlns=\"NS\"/>",
        "<?pi #?><agentStates xmlns=\"NS\"/>",
        "<agentStates xmlns=\"NS\" x=\"#\"/>",
        "<agentStates xmlns=\"NS\"><agentState ID=\"A#\" availability=\"1\"/></agentStates>",
        "<agentStates xmlns=\"NS\"><a#/></agentStates>",
        "<agentStates xmlns=\"NS\">\n<![CDATA[ # ]]></agentStates>",
        "<agentStates xmlns=\"NS\">\n  <x>é#</x></agentStates>",
        "<agentStates xmlns=\"NS\"/>\n\n  #",
        "<agentStates xmlns=\"NS\"/><!-- # -->",
        "<agentStates xmlns=\"NS\">&amp#;</agentStates>",
    ];
    for place in places {
        let text = place.replace("NS", NAMESPACE);
        let hash = text.find('#').unwrap();
        let before = &text[..hash];
        let line = before.matches('\n').count() as u32 + 1;
        let column = before.rsplit('\n').next().unwrap().chars().count() as u32 + 1;
        for bad in [0xFFu8, 0x80, 0xC3] {
            let mut bytes = text.clone().into_bytes();
            bytes[hash] = bad;
            let err = AgentPresenceMap::parse(&bytes).unwrap_err();
            assert!(
                matches!(err, MapError::NotUtf8 { byte, .. } if byte == bad),
                "{place}: {err}"
            );
            assert_eq!(
                err.location(),
                Some(Location::new(line, column)),
                "{place}: {err}"
            );
        }
    }
    // A bad byte before a forbidden character is reported first.
    let err = AgentPresenceMap::parse(b"\xFF\x01").unwrap_err();
    assert!(matches!(err, MapError::NotUtf8 { .. }), "{err}");
    let err = AgentPresenceMap::parse(b"\x01\xFF").unwrap_err();
    assert!(
        matches!(err, MapError::ForbiddenCharacter { code: 1, .. }),
        "{err}"
    );
}
