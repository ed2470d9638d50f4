//! A batched notification as the pool sends it: `multipart/related` with an RLMI root
//! part and one categories part per user, here three users and a fourth resource whose
//! subscription was terminated.

use presence_mspres::{
    Categories, MsPresError, Multipart, Notification, parse_notification, related_content_type,
};

const CONTENT_TYPE: &str = r#"multipart/related; type="application/rlmi+xml"; start="<Oalp2Xa1@contoso.com>"; boundary="=_Next_Part_a1b2c3""#;

fn categories(user: &str, availability: u32, activity: &str) -> String {
    format!(
        r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:{user}@contoso.com">
  <category name="state" instance="0" publishTime="2012-07-12T13:58:54.237">
    <state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="aggregateState" lastActive="2012-07-12T13:58:54">
      <availability>{availability}</availability>
      <activity token="{activity}"/>
    </state>
  </category>
  <category name="note" instance="0"><note xmlns="http://schemas.microsoft.com/2006/09/sip/note"><body type="personal">Back at 3</body></note></category>
</categories>"#
    )
}

const RLMI: &str = r#"<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:bridge@contoso.com" version="4" fullState="false">
  <resource uri="sip:agent1@contoso.com"><instance id="1" state="active" cid="agent1@contoso.com"/></resource>
  <resource uri="sip:agent2@contoso.com"><instance id="2" state="active" cid="agent2@contoso.com"/></resource>
  <resource uri="sip:agent3@contoso.com"><instance id="3" state="active" cid="agent3@contoso.com"/></resource>
  <resource uri="sip:left@contoso.com"><instance id="4" state="terminated" reason="deactivated"/></resource>
</list>"#;

/// The body with CRLF line ends, a preamble, transport padding, a part of another type,
/// and an epilogue.
fn body() -> Vec<u8> {
    let part = |headers: &str, content: &str| {
        format!("--=_Next_Part_a1b2c3\r\n{headers}\r\n{content}\r\n")
    };
    let mut body = String::from("This is a multi-part message in MIME format.\r\n");
    body.push_str(&part(
        "Content-Type: application/rlmi+xml\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <Oalp2Xa1@contoso.com>\r\n",
        RLMI,
    ));
    for (user, availability, activity) in [
        ("agent1", 6500, "on-the-phone"),
        ("agent2", 3500, "available"),
        ("agent3", 18500, "offline"),
    ] {
        body.push_str(&part(
            &format!(
                "Content-Type: application/msrtc-event-categories+xml\r\nContent-Transfer-Encoding: 8bit\r\nContent-ID: <{user}@contoso.com>\r\n"
            ),
            &categories(user, availability, activity),
        ));
    }
    body.push_str(&part(
        "Content-Type: text/plain\r\n",
        "a part of another type is skipped",
    ));
    body.push_str("--=_Next_Part_a1b2c3-- \r\nepilogue\r\n");
    body.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

#[test]
fn three_users_and_a_terminated_resource() {
    let notification = parse_notification(CONTENT_TYPE, &body()).expect("valid batch");
    let availabilities: Vec<(&str, Option<u64>)> = notification
        .categories
        .iter()
        .map(|c| (c.uri.as_str(), c.availability()))
        .collect();
    assert_eq!(
        availabilities,
        [
            ("sip:agent1@contoso.com", Some(6500)),
            ("sip:agent2@contoso.com", Some(3500)),
            ("sip:agent3@contoso.com", Some(18500)),
        ]
    );
    assert_eq!(
        notification.categories[0]
            .aggregate_state()
            .and_then(|s| s.activity_token.as_deref()),
        Some("on-the-phone")
    );
    // The note categories are kept but carry no state.
    assert_eq!(notification.categories[0].categories.len(), 2);
    assert_eq!(notification.categories[0].categories[1].state, None);
    assert_eq!(notification.terminated, ["sip:left@contoso.com"]);
    let rlmi = notification.rlmi.as_ref().expect("rlmi part");
    assert_eq!(
        (rlmi.version, rlmi.full_state, rlmi.resources.len()),
        (4, false, 4)
    );
}

#[test]
fn the_parts_and_their_headers() {
    let multipart = Multipart::parse("=_Next_Part_a1b2c3", &body()).expect("valid framing");
    assert_eq!(multipart.parts.len(), 5);
    assert_eq!(
        multipart.parts[0].content_id(),
        Some("<Oalp2Xa1@contoso.com>")
    );
    assert_eq!(
        multipart.parts[0].content_transfer_encoding(),
        Some("binary")
    );
    assert_eq!(
        multipart.parts[0].body,
        RLMI.replace('\n', "\r\n").as_bytes()
    );
    assert_eq!(
        multipart.parts[2].content_id(),
        Some("<agent2@contoso.com>")
    );
    let agent2 = Categories::parse(&multipart.parts[2].body).expect("categories part");
    assert_eq!(agent2.availability(), Some(3500));
    assert_eq!(multipart.parts[4].content_type(), Some("text/plain"));
}

#[test]
fn written_by_the_simulator_and_read_back() {
    let read = parse_notification(CONTENT_TYPE, &body()).expect("valid batch");
    let (content_type, body) = read.to_body("sim-boundary").expect("writable");
    assert_eq!(
        content_type,
        related_content_type(
            "application/rlmi+xml",
            Some("<list.bridge@contoso.com>"),
            "sim-boundary"
        )
    );
    let again = parse_notification(&content_type, &body).expect("reads back");
    assert_eq!(again, read);
    // Each categories part is labelled with its user's cid.
    let multipart = Multipart::parse("sim-boundary", &body).expect("framing");
    let ids: Vec<Option<&str>> = multipart.parts.iter().map(|p| p.content_id()).collect();
    assert_eq!(
        ids,
        [
            Some("<list.bridge@contoso.com>"),
            Some("<agent1@contoso.com>"),
            Some("<agent2@contoso.com>"),
            Some("<agent3@contoso.com>"),
        ]
    );
    assert_eq!(
        Notification::new(read.categories.clone(), read.rlmi.clone()),
        read
    );
}

#[test]
fn a_broken_part_is_named() {
    let body = String::from_utf8(body())
        .expect("utf-8")
        .replace("<availability>3500", "<availability>free");
    let err = parse_notification(CONTENT_TYPE, body.as_bytes()).expect_err("bad availability");
    match &err {
        MsPresError::Part {
            index,
            content_id,
            source,
            ..
        } => {
            assert_eq!(*index, 2);
            assert_eq!(content_id.as_deref(), Some("<agent2@contoso.com>"));
            assert!(matches!(
                **source,
                MsPresError::InvalidText {
                    element: "availability",
                    ..
                }
            ));
        }
        other => panic!("unexpected error {other}"),
    }
    let at = err.location().expect("located in the part");
    assert_eq!((at.line, at.column), (4, 7));
}

#[test]
fn truncated_batches_are_refused() {
    let body = body();
    let cut = &body[..body.len() / 2];
    let err = parse_notification(CONTENT_TYPE, cut).expect_err("truncated");
    assert!(
        matches!(err, MsPresError::Multipart { at, .. } if at.offset == cut.len()),
        "{err}"
    );
}
