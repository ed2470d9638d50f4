use super::*;
use presence_model::AvailabilityClass;
use proptest::prelude::*;

fn texts(entries: &[(u32, &str)]) -> Activities {
    Activities::new(
        entries
            .iter()
            .map(|(lcid, text)| (Lcid::new(*lcid), ActivityText::new(text)))
            .collect(),
    )
    .unwrap()
}

fn publication(availability: u32, notes: Activities) -> Publication {
    Publication {
        id: AggregatedStateId::new("S").unwrap(),
        presence: Presence {
            availability: Availability::new(availability).unwrap(),
            activities: notes,
        },
    }
}

fn pidf_error(body: &[u8]) -> (u64, Option<String>, String) {
    match read(body) {
        Err(SimpleError::Pidf {
            position,
            path,
            what,
            ..
        }) => (position, path, what),
        other => panic!("expected a PIDF error, got {other:?}"),
    }
}

// --- the writer ---------------------------------------------------------------------

#[test]
fn writes_each_class() {
    let mapping = Mapping::default();
    let notes = texts(&[(1033, "On a call")]);
    for class in AvailabilityClass::ALL {
        let p = publication(class.range().start().get().into(), notes.clone());
        let body = match mapping.push(&p) {
            PushTarget::Publish(state) => write(
                "sip:agent1@example.com",
                "bridge",
                "bridge-p",
                &state,
                &notes,
            ),
            other => other.to_string(),
        };
        insta::assert_snapshot!(format!("class_{}", class.name()), body);
    }
}

#[test]
fn writes_several_languages() {
    let state = PidfState {
        basic: Basic::Open,
        activities: vec![Activity::OnThePhone, Activity::Other("Queue: Sales".into())],
        idle: true,
    };
    let notes = texts(&[
        (1033, "On a call"),
        (3082, "En una llamada"),
        (1031, "Im Gespräch"),
        (1041, "通話中"),
        (1025, "في مكالمة"),
        (9999, "no tag for this LCID"),
    ]);
    let body = write(
        "sip:agent1@example.com",
        "bridge",
        "bridge-p",
        &state,
        &notes,
    );
    insta::assert_snapshot!(body);
}

#[test]
fn writes_a_closed_tuple_without_notes() {
    let body = write(
        "sip:agent1@example.com",
        "bridge",
        "bridge-p",
        &PidfState::new(Basic::Closed),
        &Activities::empty(),
    );
    insta::assert_snapshot!(body);
}

#[test]
fn escapes_text_and_attributes() {
    let state = PidfState {
        basic: Basic::Open,
        activities: vec![Activity::Other("<&>\"'".into())],
        idle: false,
    };
    let notes = texts(&[(1033, "a < b & c > \"d\" 'e'\r\nline\u{1}\u{FFFE}end")]);
    let body = write(
        "sip:\"x\"&<y>@example.com\t",
        "t'1\n",
        "p\"1",
        &state,
        &notes,
    );
    insta::assert_snapshot!(body);
    assert!(!body.contains('\u{1}') && !body.contains('\u{FFFE}'));
    let doc = read(body.as_bytes()).unwrap();
    assert_eq!(doc.entity.as_deref(), Some("sip:\"x\"&<y>@example.com\t"));
    assert_eq!(doc.tuples[0].id.as_deref(), Some("t'1\n"));
    assert_eq!(doc.persons[0].id.as_deref(), Some("p\"1"));
    assert_eq!(
        doc.persons[0].activities,
        [Activity::Other("<&>\"'".into())]
    );
    let expected = "a < b & c > \"d\" 'e'\r\nlineend";
    assert_eq!(doc.persons[0].notes[0].text, expected);
    assert_eq!(doc.tuples[0].notes[0].text, expected);
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let state = PidfState {
        basic: Basic::Open,
        activities: vec![Activity::Busy, Activity::Meeting],
        idle: true,
    };
    let notes = texts(&[(1033, "x"), (3082, "y")]);
    let a = write("sip:a@b", "t", "p", &state, &notes);
    let b = write("sip:a@b", "t", "p", &state, &notes);
    assert_eq!(a, b);
    assert_eq!(read(a.as_bytes()).unwrap(), read(b.as_bytes()).unwrap());
}

// --- the reader: real-world bodies ----------------------------------------------------

/// The PIDF example of RFC 3863 with RPID (RFC 4480) and the data model (RFC 4479): one
/// tuple, one person on the phone, notes in English.
const RFC_EXAMPLE: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
          xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:agent1@example.com">
  <tuple id="t1"><status><basic>open</basic></status><note xml:lang="en">On a call</note></tuple>
  <dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities>
    <dm:note xml:lang="en">On a call</dm:note></dm:person>
</presence>"#;

#[test]
fn reads_the_protocols_example() {
    let doc = read(RFC_EXAMPLE.as_bytes()).unwrap();
    let note = |text: &str| Note {
        lang: Some("en".into()),
        text: text.into(),
    };
    assert_eq!(
        doc,
        PidfDocument {
            entity: Some("sip:agent1@example.com".into()),
            tuples: vec![Tuple {
                id: Some("t1".into()),
                basic: Some(Basic::Open),
                activities: vec![],
                idle: false,
                notes: vec![note("On a call")],
            }],
            persons: vec![Person {
                id: Some("p1".into()),
                activities: vec![Activity::OnThePhone],
                idle: false,
                notes: vec![note("On a call")],
            }],
            notes: vec![],
        }
    );
    assert_eq!(
        Mapping::default().pull(&doc),
        (6500, Some("On a call".into()))
    );
}

#[test]
fn reads_by_namespace_not_prefix() {
    // Other prefixes, PIDF itself prefixed, several tuples and persons, a person note in
    // the PIDF namespace, a redeclared default namespace.
    let body = r#"<?xml version="1.0" encoding="utf-8"?>
<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns:d="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@example.com">
  <p:tuple id="sip">
    <p:status><p:basic> open </p:basic></p:status>
    <p:note xml:lang="fr">Au téléphone</p:note>
  </p:tuple>
  <p:tuple id="im"><p:status><p:basic>closed</p:basic></p:status></p:tuple>
  <d:person id="a">
    <r:activities><r:meeting/></r:activities>
    <d:note xml:lang="fr">En réunion</d:note>
  </d:person>
  <person xmlns="urn:ietf:params:xml:ns:pidf:data-model" id="b">
    <activities xmlns="urn:ietf:params:xml:ns:pidf:rpid"><away/></activities>
    <note xmlns="urn:ietf:params:xml:ns:pidf">Back at 3</note>
  </person>
  <!-- not PIDF, though named alike -->
  <x:tuple xmlns:x="urn:example:other" id="fake"><x:status><x:basic>bogus</x:basic></x:status></x:tuple>
  <p:person id="not-dm"><r:activities><r:busy/></r:activities></p:person>
</p:presence>"#;
    let doc = read(body.as_bytes()).unwrap();
    assert_eq!(doc.entity.as_deref(), Some("sip:bob@example.com"));
    assert_eq!(doc.tuples.len(), 2);
    assert_eq!(doc.tuples[0].basic, Some(Basic::Open));
    assert_eq!(doc.tuples[1].basic, Some(Basic::Closed));
    assert_eq!(doc.persons.len(), 2);
    assert_eq!(doc.persons[0].activities, [Activity::Meeting]);
    assert_eq!(doc.persons[1].activities, [Activity::Away]);
    assert_eq!(doc.persons[1].notes[0].text, "Back at 3");
    // Away wins over the meeting; a note without xml:lang counts as English.
    assert_eq!(
        Mapping::default().pull(&doc),
        (15500, Some("Back at 3".into()))
    );
    let mut french = doc;
    french.persons[1].notes.clear();
    assert_eq!(
        Mapping::default().pull(&french),
        (15500, Some("En réunion".into()))
    );
}

#[test]
fn reads_a_softphone_body_with_extra_elements() {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
  xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
  xmlns:caps="urn:ietf:params:xml:ns:pidf:caps"
  xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
  xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
  entity="sip:alice@example.com">
  <tuple id="ua-1234">
    <status>
      <basic>open</basic>
      <gp:geopriv><gp:location-info/></gp:geopriv>
    </status>
    <caps:servcaps><caps:audio>true</caps:audio><caps:video>false</caps:video></caps:servcaps>
    <dm:deviceID>urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6</dm:deviceID>
    <contact priority="0.8">sip:alice@192.0.2.1:5060;transport=tcp</contact>
    <timestamp>2024-05-01T10:00:00Z</timestamp>
  </tuple>
  <dm:device id="pc-1">
    <rpid:user-input>idle</rpid:user-input>
    <dm:deviceID>urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6</dm:deviceID>
    <dm:timestamp>2024-05-01T10:00:00Z</dm:timestamp>
  </dm:device>
  <dm:person id="alice">
    <rpid:activities from="2024-05-01T09:00:00Z"><rpid:note>ignored</rpid:note><rpid:busy/><rpid:lunch-break/></rpid:activities>
    <rpid:mood><rpid:happy/></rpid:mood>
    <rpid:place-type><rpid:office/></rpid:place-type>
    <rpid:user-input idle-threshold="600" last-input="2024-05-01T09:50:00Z">idle</rpid:user-input>
    <c:display-name>Alice</c:display-name>
    <dm:timestamp>2024-05-01T10:00:00Z</dm:timestamp>
  </dm:person>
</presence>
"#;
    let doc = read(body.as_bytes()).unwrap();
    assert_eq!(doc.tuples.len(), 1);
    assert_eq!(doc.tuples[0].id.as_deref(), Some("ua-1234"));
    assert!(doc.tuples[0].notes.is_empty());
    assert_eq!(doc.persons.len(), 1);
    assert_eq!(doc.persons[0].activities, [Activity::Busy]);
    assert!(doc.persons[0].idle);
    assert!(doc.persons[0].notes.is_empty());
    assert_eq!(Mapping::default().pull(&doc), (7500, Some("busy".into())));
}

#[test]
fn reads_activities_in_the_tuple_status_and_older_namespaces() {
    // Asterisk's namespace for RPID, in the person; the RPID draft's in the tuple status.
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
 xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:e="urn:ietf:params:xml:ns:pidf:status:rpid"
 xmlns:es="urn:ietf:params:xml:ns:pidf:status:rpid-status"
 entity="sip:1001@pbx.example.com">
<tuple id="sg89ae">
<status>
<basic>open</basic>
<es:activities>
  <es:activity>on-the-phone</es:activity>
  <es:activity>sipping-tea</es:activity>
</es:activities>
</status>
<contact priority="0.8">sip:1001@pbx.example.com</contact>
</tuple>
<dm:person>
  <e:activities><e:away/></e:activities>
</dm:person>
</presence>"#;
    let doc = read(body.as_bytes()).unwrap();
    assert_eq!(doc.tuples[0].activities, [Activity::OnThePhone]);
    assert_eq!(doc.persons[0].id, None);
    assert_eq!(doc.persons[0].activities, [Activity::Away]);
    assert_eq!(Mapping::default().pull(&doc).0, 15500);

    let only_status = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:x@y">
<tuple id="t"><status><basic>open</basic><r:activities><r:on-the-phone/></r:activities></status>
<r:user-input>idle</r:user-input></tuple></presence>"#;
    let doc = read(only_status.as_bytes()).unwrap();
    assert_eq!(doc.tuples[0].activities, [Activity::OnThePhone]);
    assert!(doc.tuples[0].idle);
    assert_eq!(
        Mapping::default().pull(&doc),
        (7500, Some("on-the-phone".into()))
    );
}

#[test]
fn reads_kamailios_body_after_a_remove() {
    let body = "<?xml version=\"1.0\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:agent1@test.local\">\n  <tuple id=\"bridge\">\n    <status>\n      <basic>closed</basic>\n    </status>\n  </tuple>\n</presence>\n";
    let doc = read(body.as_bytes()).unwrap();
    assert_eq!(doc.tuples.len(), 1);
    assert_eq!(doc.tuples[0].basic, Some(Basic::Closed));
    assert!(doc.tuples[0].notes.is_empty());
    assert_eq!(Mapping::default().pull(&doc), (18000, None));

    // The same user's softphone tuple still open: the user is online.
    let merged = "<?xml version=\"1.0\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:agent1@test.local\"><tuple id=\"bridge\"><status><basic>closed</basic></status></tuple><tuple id=\"phone\"><status><basic>open</basic></status><note>Available</note></tuple></presence>";
    let doc = read(merged.as_bytes()).unwrap();
    assert_eq!(
        Mapping::default().pull(&doc),
        (3500, Some("Available".into()))
    );
}

#[test]
fn empty_bodies_are_nothing_published() {
    for body in [&b""[..], b"\r\n", b"  \n\t", b"\xEF\xBB\xBF"] {
        let doc = read(body).unwrap();
        assert!(doc.is_empty(), "{body:?}");
        assert_eq!(Mapping::default().pull(&doc), (18000, None));
    }
    // A document with no tuple and no person is nothing published too.
    let doc = read(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>"#).unwrap();
    assert!(doc.is_empty());
    assert_eq!(Mapping::default().pull(&doc).0, 18000);
}

#[test]
fn tolerates_what_real_bodies_carry() {
    // Leading white space before the declaration (some stacks send a CRLF), a BOM, a
    // comment, a processing instruction, CDATA, references.
    let body = "\r\n<?xml version='1.0' encoding='UTF-8'?>\n<!-- hi --><?pi x?>\
        <presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>\
        <tuple id='t'><status><basic>open</basic></status>\
        <note><![CDATA[<on a call>]]> &amp; &#x263A;&#9731;</note></tuple></presence>";
    let doc = read(body.as_bytes()).unwrap();
    assert_eq!(
        doc.tuples[0].notes[0].text,
        "<on a call> & \u{263A}\u{2603}"
    );
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(RFC_EXAMPLE.as_bytes());
    assert_eq!(
        read(&with_bom).unwrap(),
        read(RFC_EXAMPLE.as_bytes()).unwrap()
    );
    // A tuple without an id and an unknown user-input value.
    let doc = read(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid"><tuple><status><basic>open</basic></status><r:user-input>sleepy</r:user-input></tuple></presence>"#).unwrap();
    assert_eq!(doc.tuples[0].id, None);
    assert!(!doc.tuples[0].idle);
}

// --- the reader: refusals ------------------------------------------------------------

#[test]
fn refuses_a_doctype_and_entities() {
    let laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<presence xmlns="urn:ietf:params:xml:ns:pidf">&lol2;</presence>"#;
    let (position, _, what) = pidf_error(laughs);
    assert_eq!(position, 22);
    assert!(what.contains("DOCTYPE is not allowed"), "{what}");

    let external = br#"<!DOCTYPE presence SYSTEM "file:///etc/passwd"><presence xmlns="urn:ietf:params:xml:ns:pidf"/>"#;
    assert!(pidf_error(external).2.contains("DOCTYPE"));

    let undefined = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="t"><note>&xxe;</note></tuple></presence>"#;
    let (_, path, what) = pidf_error(undefined);
    assert_eq!(path.as_deref(), Some("presence/tuple/note"));
    assert!(what.contains("undefined entity `&xxe`"), "{what}");

    let in_attribute = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&xxe;"/>"#;
    assert!(pidf_error(in_attribute).2.contains("entity"));
}

#[test]
fn refuses_the_wrong_root_and_bad_basic() {
    let (position, path, what) = pidf_error(b"<presence entity='sip:a@b'/>");
    assert_eq!((position, path.as_deref()), (0, Some("presence")));
    assert!(
        what.contains("no namespace") && what.contains("urn:ietf:params:xml:ns:pidf"),
        "{what}"
    );

    let (_, _, what) = pidf_error(br#"<rlmi:list xmlns:rlmi="urn:ietf:params:xml:ns:rlmi"/>"#);
    assert!(what.contains("the root element is `list`"), "{what}");

    let body = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="t"><status><basic>opened</basic></status></tuple></presence>"#;
    let (position, path, what) = pidf_error(body);
    assert_eq!(position, 68);
    assert_eq!(path.as_deref(), Some("presence/tuple/status/basic"));
    assert!(what.contains("`opened` is not a basic status"), "{what}");
    let err = read(body).unwrap_err().to_string();
    assert_eq!(
        err,
        "PIDF body, byte 68 (in presence/tuple/status/basic): `opened` is not a basic status: expected `open` or `closed`"
    );

    let twice = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="t"><status><basic>open</basic><basic>open</basic></status></tuple></presence>"#;
    assert!(pidf_error(twice).2.contains("second `basic`"));
}

#[test]
fn refuses_garbage_and_truncated_xml() {
    for garbage in [
        &b"hello"[..],
        b"\x00\x01\x02",
        b"\xFF\xFE<\x00p\x00",
        b"{\"availability\": 3500}",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple></presence>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'></presence><presence xmlns='urn:ietf:params:xml:ns:pidf'/>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'/>trailing",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a' entity='b'/>",
        b"<p:presence/>",
        b"<?xml version='1.0'?>",
        b"<?xml version='1.0' encoding='ISO-8859-1'?><presence xmlns='urn:ietf:params:xml:ns:pidf'/>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'><note>&#0;</note></presence>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'><note>a & b</note></presence>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'/><?xml version='1.0'?>",
    ] {
        assert!(read(garbage).is_err(), "{}", String::from_utf8_lossy(garbage));
    }
    let cut = RFC_EXAMPLE.find("</dm:person>").unwrap();
    let (position, path, what) = pidf_error(&RFC_EXAMPLE.as_bytes()[..cut]);
    assert_eq!(position, cut as u64);
    assert_eq!(path.as_deref(), Some("presence/person"));
    assert!(
        what.contains("the body ends inside `person` (opened at byte"),
        "{what}"
    );
    let (_, _, what) = pidf_error(&RFC_EXAMPLE.as_bytes()[..cut - 3]);
    assert!(what.contains("not well-formed XML"), "{what}");
    for cut in 1..RFC_EXAMPLE.len() {
        assert!(read(&RFC_EXAMPLE.as_bytes()[..cut]).is_err(), "{cut}");
    }
    let (position, _, what) =
        pidf_error(b"<presence xmlns='urn:ietf:params:xml:ns:pidf'>\xC3</presence>");
    assert_eq!(position, 46);
    assert!(what.contains("not UTF-8"), "{what}");
}

#[test]
fn enforces_the_limits() {
    let big = vec![b' '; Limits::DEFAULT.max_body_bytes + 1];
    assert!(pidf_error(&big).2.contains("more than the limit of 65536"));

    let deep = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf'>{}{}</presence>",
        "<x>".repeat(40),
        "</x>".repeat(40)
    );
    let (_, path, what) = pidf_error(deep.as_bytes());
    assert!(what.contains("deeper than the limit of 32"), "{what}");
    assert_eq!(path.map(|p| p.matches('/').count()), Some(32));

    let tuples = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf'>{}</presence>",
        "<tuple id='t'/>".repeat(65)
    );
    assert!(
        pidf_error(tuples.as_bytes())
            .2
            .contains("more tuples than the limit of 64")
    );

    let persons = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model'>{}</presence>",
        "<dm:person id='p'/>".repeat(17)
    );
    assert!(
        pidf_error(persons.as_bytes())
            .2
            .contains("more persons than the limit of 16")
    );

    let notes = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf'>{}</presence>",
        "<note>n</note>".repeat(129)
    );
    assert!(
        pidf_error(notes.as_bytes())
            .2
            .contains("more notes than the limit of 128")
    );

    let activities = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' xmlns:r='urn:ietf:params:xml:ns:pidf:rpid'><dm:person id='p'><r:activities>{}</r:activities></dm:person></presence>",
        "<r:busy/>".repeat(65)
    );
    assert!(
        pidf_error(activities.as_bytes())
            .2
            .contains("more activities than the limit of 64")
    );

    let long_note = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf'><note>{}</note></presence>",
        "&amp;".repeat(4097)
    );
    assert!(
        pidf_error(long_note.as_bytes())
            .2
            .contains("text is longer than the limit of 4096")
    );

    // A huge attribute the reader keeps is refused; one it skips costs nothing.
    let huge = "x".repeat(60_000);
    let kept = format!("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='{huge}'/>");
    let (_, path, what) = pidf_error(kept.as_bytes());
    assert_eq!(path.as_deref(), Some("presence"));
    assert!(
        what.contains("attribute `entity` is longer than the limit"),
        "{what}"
    );
    let skipped = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='t'><contact priority='{huge}'>x</contact><status><basic>open</basic></status></tuple></presence>"
    );
    assert_eq!(
        read(skipped.as_bytes()).unwrap().tuples[0].basic,
        Some(Basic::Open)
    );

    // Limits are configurable.
    let tight = Limits {
        max_tuples: 1,
        ..Limits::default()
    };
    let two =
        "<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='a'/><tuple id='b'/></presence>";
    assert!(read_with(two.as_bytes(), &tight).is_err());
    assert!(read(two.as_bytes()).is_ok());
}

// --- round trips -----------------------------------------------------------------------

/// What the reader gives back of a text the writer was given.
fn as_read(text: &str) -> String {
    xml_safe(text).trim_matches(is_xml_whitespace).to_owned()
}

/// The notes the writer writes for `notes`, as the reader gives them back.
fn expected_notes(notes: &Activities) -> Vec<Note> {
    notes
        .iter()
        .map(|(lcid, text)| Note {
            lang: lcid.tag().map(str::to_owned),
            text: as_read(text.as_str()),
        })
        .filter(|n| !n.text.is_empty())
        .collect()
}

/// Where each class lands after push, write, read and pull with the default tables
/// (`None` and `Offline` send no document).
fn expected_class(class: AvailabilityClass) -> Option<AvailabilityClass> {
    use AvailabilityClass as C;
    match class {
        C::None | C::Offline => None,
        // Lossy: RPID has neither "do not disturb" nor "be right back".
        C::DoNotDisturb => Some(C::Busy),
        C::BeRightBack => Some(C::Away),
        other => Some(other),
    }
}

fn activity() -> impl Strategy<Value = Activity> {
    prop_oneof![
        prop::sample::select(
            crate::mapping::TOKENS
                .iter()
                .map(|(_, a)| a.clone())
                .collect::<Vec<_>>()
        ),
        "[ -~\u{e9}\u{4e2d}<>&\"'\r\n\t\u{1}]{0,12}".prop_map(Activity::Other),
    ]
}

fn lcid() -> impl Strategy<Value = Lcid> {
    prop_oneof![
        prop::sample::select(vec![1033u32, 2057, 3082, 1031, 1036, 1041, 2052, 1025]),
        any::<u32>(),
    ]
    .prop_map(Lcid::new)
}

fn notes() -> impl Strategy<Value = Activities> {
    prop::collection::vec(
        (
            lcid(),
            "[ -~\u{e9}\u{fc}\u{4e2d}\u{1f600}<>&\"'\r\n\t\u{0}\u{1b}\u{fffe}]{0,24}",
        ),
        0..5,
    )
    .prop_map(|entries| {
        let mut seen = Vec::new();
        let texts = entries
            .into_iter()
            .filter(|(lcid, _)| {
                let new = !seen.contains(lcid);
                seen.push(*lcid);
                new
            })
            .map(|(lcid, text)| (lcid, ActivityText::new(&text)))
            .collect();
        Activities::new(texts).unwrap()
    })
}

proptest! {
    #[test]
    fn a_written_state_reads_back(
        basic in prop_oneof![Just(Basic::Open), Just(Basic::Closed)],
        activities in prop::collection::vec(activity(), 0..6),
        idle in any::<bool>(),
        notes in notes(),
        entity in "sip:[a-z0-9._&<>\"']{1,12}@example\\.com",
    ) {
        let state = PidfState { basic, activities, idle };
        let body = write(&entity, "bridge", "bridge-p", &state, &notes);
        let doc = read(body.as_bytes()).unwrap();
        prop_assert_eq!(doc.entity.as_deref(), Some(entity.as_str()));
        prop_assert_eq!(doc.tuples.len(), 1);
        prop_assert_eq!(doc.persons.len(), 1);
        prop_assert_eq!(doc.tuples[0].basic, Some(state.basic));
        let activities: Vec<Activity> = state
            .activities
            .iter()
            .map(|a| match a {
                Activity::Other(text) => Activity::Other(as_read(text)),
                other => other.clone(),
            })
            .collect();
        prop_assert_eq!(&doc.persons[0].activities, &activities);
        prop_assert_eq!(doc.persons[0].idle, state.idle);
        let expected = expected_notes(&notes);
        prop_assert_eq!(&doc.persons[0].notes, &expected);
        prop_assert_eq!(&doc.tuples[0].notes, &expected);
    }

    #[test]
    fn every_class_survives_push_write_read_pull(
        class in prop::sample::select(AvailabilityClass::ALL.to_vec()),
        offset in 0u16..1500,
        notes in notes(),
    ) {
        let range = class.range();
        let availability = range.start().get()
            + offset % (range.end().get() - range.start().get() + 1);
        let p = publication(availability.into(), notes.clone());
        let mapping = Mapping::default();
        match (mapping.push(&p), expected_class(class)) {
            (PushTarget::Publish(state), Some(expected)) => {
                let body = write("sip:agent1@example.com", "bridge", "bridge-p", &state, &notes);
                let (pulled, text) = mapping.pull(&read(body.as_bytes()).unwrap());
                prop_assert_eq!(Availability::from_wire(pulled).class(), expected);
                // The English note, else the first note, else the activity.
                let written: Vec<Note> = expected_notes(&notes)
                    .into_iter()
                    .filter(|n| !n.text.trim().is_empty())
                    .collect();
                let english = written
                    .iter()
                    .find(|n| n.lang.as_deref().is_none_or(|l| l.starts_with("en")))
                    .or(written.first())
                    .map(|n| n.text.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .or_else(|| state.activities.first().map(|a| a.token().to_owned()));
                prop_assert_eq!(text, english);
            }
            (PushTarget::Nothing, None) => prop_assert_eq!(class, AvailabilityClass::None),
            (PushTarget::Remove, None) => prop_assert_eq!(class, AvailabilityClass::Offline),
            (target, expected) => prop_assert!(false, "{class}: {target} but {expected:?}"),
        }
    }

    #[test]
    fn fuzz_read_never_panics_on_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzz_read(&data);
    }

    #[test]
    fn fuzz_read_never_panics_on_pidf_like_text(
        items in prop::collection::vec(item(), 0..8),
        cut in any::<prop::sample::Index>(),
        noise in any::<u8>(),
        mutate in 0u8..4,
    ) {
        let body = format!("{HEAD}{}</presence>", items.concat());
        fuzz_read(body.as_bytes());
        // And a damaged copy: truncated, or a byte replaced.
        let mut bytes = body.into_bytes();
        let at = cut.index(bytes.len());
        match mutate {
            0 => bytes.truncate(at),
            1 => bytes[at] = noise,
            _ => {}
        }
        fuzz_read(&bytes);
    }
}

const HEAD: &str = "<presence xmlns='urn:ietf:params:xml:ns:pidf' \
    xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' \
    xmlns:r='urn:ietf:params:xml:ns:pidf:rpid' \
    xmlns:es='urn:ietf:params:xml:ns:pidf:status:rpid-status' entity='sip:f@x'>";

fn text() -> impl Strategy<Value = String> {
    "[ -~\u{e9}\u{4e2d}]{0,10}".prop_map(|t| t.replace('&', "&amp;").replace('<', "&lt;"))
}

fn rpid_activity() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "busy",
            "away",
            "on-the-phone",
            "unknown",
            "meal",
            "sleepy"
        ])
        .prop_map(|a| format!("<r:{a}/>")),
        text().prop_map(|t| format!("<r:other>{t}</r:other>")),
        Just("<r:note>n</r:note>".to_owned()),
        Just("<es:activity>busy</es:activity>".to_owned()),
    ]
}

fn activities() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(rpid_activity(), 0..4)
            .prop_map(|a| format!("<r:activities>{}</r:activities>", a.concat())),
        Just("<es:activities><es:activity>meeting</es:activity></es:activities>".to_owned()),
    ]
}

fn note(element: &'static str) -> impl Strategy<Value = String> {
    (prop::option::of("(en|en-US|es|fr-CA|)"), text()).prop_map(move |(lang, t)| match lang {
        Some(l) => format!("<{element} xml:lang='{l}'>{t}</{element}>"),
        None => format!("<{element}>{t}<![CDATA[ & ]]>&#x41;</{element}>"),
    })
}

fn extra() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<u:x xmlns:u='urn:x'><u:y a='1'/>text</u:x>".to_owned()),
        Just("<timestamp>2024-01-01T00:00:00Z</timestamp>".to_owned()),
        Just("<!-- c -->".to_owned()),
        Just(" \n ".to_owned()),
    ]
}

fn user_input() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["idle", "active", " idle "])
        .prop_map(|v| format!("<r:user-input>{v}</r:user-input>"))
}

/// A well-formed child of `<presence>`: a tuple, a person, a note, or something unknown.
fn item() -> impl Strategy<Value = String> {
    let tuple_part = prop_oneof![
        prop::option::of(prop::sample::select(vec!["open", "closed", " open "])).prop_map(
            |basic| match basic {
                Some(b) => format!("<status><basic>{b}</basic></status>"),
                None => "<status/>".to_owned(),
            }
        ),
        activities().prop_map(|a| format!("<status><basic>open</basic>{a}</status>")),
        note("note"),
        user_input(),
        extra(),
    ];
    let person_part = prop_oneof![
        activities(),
        note("dm:note"),
        note("note"),
        user_input(),
        extra()
    ];
    prop_oneof![
        (text(), prop::collection::vec(tuple_part, 0..4)).prop_map(|(id, parts)| format!(
            "<tuple id='{}'>{}</tuple>",
            id.replace('\'', "&apos;"),
            parts.concat()
        )),
        (text(), prop::collection::vec(person_part, 0..4)).prop_map(|(id, parts)| format!(
            "<dm:person id='{}'>{}</dm:person>",
            id.replace('\'', "&apos;"),
            parts.concat()
        )),
        note("note"),
        extra(),
    ]
}
