//! The body shapes MS-PRES documents (copied into `data/`) read as
//! expected.

use presence_mspres::{
    BatchSubscribe, Categories, ExpireType, Fault, FaultOperation, Publish, Rlmi,
    STATIC_STATE_INSTANCE, StateBody, SubscribeAction, parse_notification,
};

const PUBLISH: &str = include_str!("data/publish.xml");
const FAULT: &str = include_str!("data/fault.xml");
const BATCH_SUBSCRIBE: &str = include_str!("data/batch_subscribe.xml");
const CATEGORIES: &str = include_str!("data/categories.xml");
const RLMI: &str = include_str!("data/rlmi.xml");

fn agent_state() -> StateBody {
    StateBody::user_state(7001)
        .with_custom(1033, "Working with customer, do not disturb")
        .with_custom(3082, "Trabajar con los clientes, no molestar")
}

#[test]
fn publish_skeleton() {
    let publish = Publish::parse(PUBLISH.as_bytes()).expect("skeleton parses");
    assert_eq!(
        publish,
        Publish::state_in_containers(
            "sip:agent1@contoso.com",
            STATIC_STATE_INSTANCE,
            &agent_state(),
            &[(2, 0)]
        )
    );
    let p = &publish.publications[0];
    assert_eq!((p.instance, p.container, p.version), (536_870_912, 2, 0));
    assert_eq!(p.expire_type, ExpireType::Static);
    let state = p.state.as_ref().expect("state");
    assert_eq!(state.state_type, "userState");
    assert!(state.manual);
    assert_eq!(state.availability, Some(7001));
    assert_eq!(
        state.custom_text(3082),
        Some("Trabajar con los clientes, no molestar")
    );

    // With the comment replaced by the container-3 publication, as the skeleton says.
    let container_3 = PUBLISH
        .split_once("<publication ")
        .and_then(|(_, rest)| rest.split_once("</publication>"))
        .map(|(inner, _)| {
            format!(
                "<publication {}</publication>",
                inner.replace("container=\"2\"", "container=\"3\"")
            )
        })
        .expect("skeleton has a publication");
    let both = PUBLISH.replace(
        "<!-- the same publication again for container=\"3\" -->",
        &container_3,
    );
    let publish = Publish::parse(both.as_bytes()).expect("both containers parse");
    assert_eq!(
        publish,
        Publish::state_in_containers(
            "sip:agent1@contoso.com",
            STATIC_STATE_INSTANCE,
            &agent_state(),
            &[(2, 0), (3, 0)]
        )
    );
}

#[test]
fn removal_from_the_skeleton() {
    let body = r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence">
      <publications uri="sip:agent1@contoso.com">
        <publication categoryName="state" instance="536870912" container="2" version="4" expireType="time" expires="0"/>
      </publications></publish>"#;
    let publish = Publish::parse(body.as_bytes()).expect("removal parses");
    assert!(publish.publications[0].is_removal());
    assert_eq!(publish.publications[0].version, 4);
}

#[test]
fn fault_skeleton() {
    let fault = Fault::parse(FAULT.as_bytes()).expect("skeleton parses");
    assert!(fault.is_wrong_delta());
    assert_eq!(
        fault,
        Fault::wrong_delta(vec![FaultOperation {
            index: 1,
            version: Some(0),
            cur_version: Some(4),
        }])
    );
}

#[test]
fn batch_subscribe_skeleton() {
    let sub = BatchSubscribe::parse(BATCH_SUBSCRIBE.as_bytes()).expect("skeleton parses");
    assert_eq!(
        sub,
        BatchSubscribe {
            uri: "sip:bridge@contoso.com".into(),
            action: SubscribeAction::Subscribe,
            id: "63792024".into(),
            resources: vec![
                "sip:agent1@contoso.com".into(),
                "sip:agent2@contoso.com".into()
            ],
            categories: vec!["state".into()],
        }
    );
}

#[test]
fn categories_skeleton() {
    let categories = Categories::parse(CATEGORIES.as_bytes()).expect("skeleton parses");
    assert_eq!(categories.uri, "sip:agent1@contoso.com");
    assert_eq!(categories.categories.len(), 1);
    let c = &categories.categories[0];
    assert_eq!(c.name, "state");
    assert_eq!(c.instance, Some(0));
    assert_eq!(c.container, None);
    assert_eq!(c.publish_time.as_deref(), Some("2012-07-12T13:58:54.237"));
    let state = categories.aggregate_state().expect("aggregate state");
    assert_eq!(
        state,
        &StateBody {
            last_active: Some("2012-07-12T13:58:54".into()),
            ..StateBody::aggregate_state(6500)
                .with_activity_token("on-the-phone")
                .with_custom(1033, "In a call")
        }
    );
    assert_eq!(categories.availability(), Some(6500));
    let notification = parse_notification(
        "application/msrtc-event-categories+xml; charset=utf-8",
        CATEGORIES.as_bytes(),
    )
    .expect("as a notification");
    assert_eq!(notification.categories, [categories]);
    assert!(notification.terminated.is_empty());
}

#[test]
fn rlmi_skeleton() {
    let rlmi = Rlmi::parse(RLMI.as_bytes()).expect("skeleton parses");
    assert_eq!(rlmi.uri, "sip:bridge@contoso.com");
    assert_eq!(rlmi.version, 1);
    assert!(!rlmi.full_state);
    assert_eq!(rlmi.resources.len(), 1);
    let instance = &rlmi.resources[0].instances[0];
    assert_eq!(instance.id, "1");
    assert_eq!(instance.state, "active");
    assert_eq!(instance.cid.as_deref(), Some("agent1@contoso.com"));
    assert_eq!(rlmi.terminated().count(), 0);
}
