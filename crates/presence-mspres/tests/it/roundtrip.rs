//! Writer → parser gives back an equal value, for every body type: fixed examples and
//! proptest properties over random values.

use presence_mspres::{
    BatchSubscribe, Categories, ContentType, Fault, Multipart, Publish, Rlmi, StateBody,
    parse_notification, xml_safe,
};
use proptest::prelude::*;

use crate::strategies;

/// A parse error as a test failure (with its message).
fn fail(e: presence_mspres::MsPresError) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

proptest! {
    #[test]
    fn publish_round_trips(publish in strategies::publish()) {
        let xml = publish.to_xml();
        prop_assert_eq!(Publish::parse(xml.as_bytes()).map_err(fail)?, publish);
    }

    #[test]
    fn fault_round_trips(fault in strategies::fault()) {
        let xml = fault.to_xml();
        prop_assert_eq!(Fault::parse(xml.as_bytes()).map_err(fail)?, fault);
    }

    #[test]
    fn batch_subscribe_round_trips(sub in strategies::batch_subscribe()) {
        let xml = sub.to_xml();
        prop_assert_eq!(BatchSubscribe::parse(xml.as_bytes()).map_err(fail)?, sub);
    }

    #[test]
    fn categories_round_trip(categories in strategies::categories()) {
        let xml = categories.to_xml();
        let back = Categories::parse(xml.as_bytes()).map_err(fail)?;
        prop_assert_eq!(back.availability(), categories.availability());
        prop_assert_eq!(back, categories);
    }

    #[test]
    fn rlmi_round_trips(rlmi in strategies::rlmi()) {
        let xml = rlmi.to_xml();
        prop_assert_eq!(Rlmi::parse(xml.as_bytes()).map_err(fail)?, rlmi);
    }

    #[test]
    fn multipart_round_trips(multipart in strategies::multipart(), boundary in strategies::boundary()) {
        let body = match multipart.to_bytes(&boundary) {
            Ok(body) => body,
            // Random content may contain the delimiter: the writer refuses it.
            Err(presence_mspres::MsPresError::BoundaryInContent { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        prop_assert_eq!(Multipart::parse(&boundary, &body).map_err(fail)?, multipart);
    }

    #[test]
    fn content_type_round_trips(ct in strategies::content_type()) {
        prop_assert_eq!(ContentType::parse(&ct.to_string()).map_err(fail)?, ct);
    }

    #[test]
    fn notification_round_trips(notification in strategies::notification(), boundary in strategies::boundary()) {
        let result = notification.to_body(&boundary);
        if notification.categories.is_empty() && notification.rlmi.is_none() {
            prop_assert!(result.is_err(), "nothing to write");
            return Ok(());
        }
        let (content_type, body) = result.map_err(fail)?;
        let back = parse_notification(&content_type, &body).map_err(fail)?;
        prop_assert_eq!(back, notification);
    }

    /// Any string (controls included) is written as well-formed XML and reads back as
    /// `xml_safe` of itself.
    #[test]
    fn any_text_is_written_safely(custom in any::<String>(), uri in any::<String>()) {
        let state = StateBody::user_state(3500).with_custom(1033, custom.clone());
        let publish = Publish::state_in_containers(uri.clone(), 1, &state, &[(2, 0)]);
        let back = Publish::parse(publish.to_xml().as_bytes()).map_err(fail)?;
        prop_assert_eq!(&back.uri, &xml_safe(&uri));
        let back_state = back.publications[0].state.as_ref().expect("state");
        let expected = xml_safe(&custom);
        prop_assert_eq!(back_state.custom_text(1033), Some(expected.as_str()));
    }
}

#[test]
fn fixed_examples_round_trip() {
    let state = StateBody::user_state(7001)
        .with_activity_token("on-the-phone")
        .with_custom(1033, "  spaced  ")
        .with_custom(1041, "お客様と作業中、邪魔しないでください")
        .with_custom(1025, "العمل مع العملاء")
        .with_custom(1049, "<b>&amp;</b> \"quoted\" 'single'\ttab\r\nline");
    let publish = Publish::state_in_containers("sip:a@x", 1, &state, &[(2, 7), (3, 9)]);
    assert_eq!(
        Publish::parse(publish.to_xml().as_bytes()).expect("reads back"),
        publish
    );
}
