//! The seed's full example map (skype-presence-deployment-guide, the final 7-state file).

use presence_map::{AgentPresenceMap, Location};
use presence_model::{AvailabilityClass, Lcid};

const SEED: &str = include_str!("data/seed-map.xml");

#[test]
fn the_seed_map_parses() {
    let parsed = AgentPresenceMap::parse(SEED.as_bytes()).expect("the seed map is valid");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let map = &parsed.map;
    assert_eq!(map.len(), 7);

    let expected = [
        ("IDLE_OUT", 18000, "Logged out"),
        ("IDLE_READY", 3501, "I am available"),
        ("IDLE_NOTREADY", 6001, "I am not available"),
        (
            "IDLE_ACW",
            6001,
            "I am in After Call Work, do not disturb me",
        ),
        ("IDLE_AWAY", 4501, "I am away from my desk"),
        ("INCALL", 7001, "Working with customer, do not disturb"),
        ("OOS", 18000, "The device is out of service"),
    ];
    for (entry, (id, availability, english)) in map.entries().iter().zip(expected) {
        assert_eq!(entry.id.as_str(), id);
        assert_eq!(entry.presence.availability.get(), availability, "{id}");
        assert_eq!(
            entry
                .presence
                .activities
                .get(Lcid::EN_US)
                .map(|t| t.as_str()),
            Some(english),
            "{id}"
        );
        assert_eq!(map.get(id), Some(entry));
    }

    // Trimmed at both ends: the seed writes " I am available ".
    let ready = map.get("IDLE_READY").unwrap();
    assert_eq!(
        ready.presence.activities.get(Lcid::EN_US).unwrap().as_str(),
        "I am available"
    );
    assert_eq!(ready.location, Location::new(6, 3));

    let incall = map.get("INCALL").unwrap();
    assert_eq!(
        incall.presence.availability.class(),
        AvailabilityClass::Busy
    );
    let texts: Vec<(u32, &str)> = incall
        .presence
        .activities
        .iter()
        .map(|(lcid, text)| (lcid.get(), text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            (1033, "Working with customer, do not disturb"),
            (3082, "Estoy trabajando con los clientes, no molestar"),
            (1049, "Работа с клиентом, не беспокоить"),
            (1036, "En travaillant avec les clients, ne pas déranger"),
        ]
    );
    assert_eq!(incall.location, Location::new(18, 3));
    assert_eq!(map.get("OOS").unwrap().location, Location::new(24, 3));
    assert!(map.get("incall").is_none());
}

#[test]
fn the_shared_example_is_the_seed_map() {
    let shared = include_str!("../../../examples/agent-states.xml");
    assert_eq!(shared, SEED);
}

#[test]
fn the_seed_map_round_trips_and_is_written_canonically() {
    let map = AgentPresenceMap::parse(SEED.as_bytes()).unwrap().map;
    let written = map.to_xml();
    insta::assert_snapshot!("seed_map_canonical", written);
    let again = AgentPresenceMap::parse(written.as_bytes()).unwrap();
    assert!(again.warnings.is_empty());
    assert_eq!(again.map, map);
    // Writing is deterministic and a fixed point.
    assert_eq!(again.map.to_xml(), written);
}

#[test]
fn a_byte_order_mark_is_skipped_and_not_counted() {
    let mut xml = b"\xEF\xBB\xBF".to_vec();
    xml.extend_from_slice(SEED.as_bytes());
    let parsed = AgentPresenceMap::parse(&xml).unwrap();
    assert_eq!(parsed.map.len(), 7);
    assert_eq!(parsed.map.entries()[0].location, Location::new(3, 3));
}
