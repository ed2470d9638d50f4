//! Cost of the bodies on the bridge's hot paths: building a publish body (two containers,
//! four locales) and reading a notification (one user's categories, and a batch of 20).
//!
//! `cargo bench -p presence-mspres` — divan reports the time per body.

use divan::{Bencher, black_box};
use presence_mspres::{
    Categories, Category, Notification, Publish, Rlmi, RlmiInstance, RlmiResource,
    STATIC_STATE_INSTANCE, StateBody, parse_notification,
};

fn main() {
    divan::main();
}

fn agent_state() -> StateBody {
    StateBody::user_state(7001)
        .with_custom(1033, "Working with customer, do not disturb")
        .with_custom(3082, "Trabajar con los clientes, no molestar")
        .with_custom(1049, "Работа с клиентом, не беспокоить")
        .with_custom(1036, "En travaillant avec les clients, ne pas déranger")
}

/// A publish body for containers 2 and 3 with four activity texts, written to a string.
#[divan::bench]
fn write_publish_2_containers_4_lcids(bencher: Bencher<'_, '_>) {
    let state = agent_state();
    bencher.bench_local(|| {
        Publish::state_in_containers(
            black_box("sip:agent1@contoso.com"),
            STATIC_STATE_INSTANCE,
            black_box(&state),
            black_box(&[(2, 17), (3, 18)]),
        )
        .to_xml()
    });
}

/// The same body, read back (what the simulator does with it).
#[divan::bench]
fn parse_publish_2_containers_4_lcids(bencher: Bencher<'_, '_>) {
    let xml = Publish::state_in_containers(
        "sip:agent1@contoso.com",
        STATIC_STATE_INSTANCE,
        &agent_state(),
        &[(2, 17), (3, 18)],
    )
    .to_xml();
    bencher.bench_local(|| Publish::parse(black_box(xml.as_bytes())).expect("valid"));
}

fn categories(n: usize) -> Categories {
    Categories {
        uri: format!("sip:agent{n}@contoso.com"),
        categories: vec![Category {
            name: "state".into(),
            instance: Some(0),
            container: None,
            publish_time: Some("2012-07-12T13:58:54.237".into()),
            state: Some(StateBody {
                last_active: Some("2012-07-12T13:58:54".into()),
                ..StateBody::aggregate_state(6500)
                    .with_activity_token("on-the-phone")
                    .with_custom(1033, "In a call")
            }),
        }],
    }
}

/// One user's categories body (the shape MS-PRES documents), read and its availability taken.
#[divan::bench]
fn parse_categories(bencher: Bencher<'_, '_>) {
    let xml = categories(1).to_xml();
    bencher.bench_local(|| {
        Categories::parse(black_box(xml.as_bytes()))
            .expect("valid")
            .availability()
    });
}

/// A batched notification: multipart/related with an RLMI part and 20 users' categories.
#[divan::bench]
fn parse_batch_of_20(bencher: Bencher<'_, '_>) {
    let users: Vec<Categories> = (0..20).map(categories).collect();
    let rlmi = Rlmi {
        uri: "sip:bridge@contoso.com".into(),
        version: 7,
        full_state: false,
        resources: users
            .iter()
            .enumerate()
            .map(|(i, c)| RlmiResource {
                uri: c.uri.clone(),
                instances: vec![RlmiInstance {
                    id: i.to_string(),
                    state: "active".into(),
                    reason: None,
                    cid: Some(c.uri.trim_start_matches("sip:").to_owned()),
                }],
            })
            .collect(),
    };
    let (content_type, body) = Notification::new(users, Some(rlmi))
        .to_body("=_NextPart_bench")
        .expect("writable");
    bencher.bench_local(|| {
        parse_notification(black_box(&content_type), black_box(&body)).expect("valid")
    });
}
