//! No parser panics, whatever the input: arbitrary bytes and mutations of valid bodies.
//! `every_parser` is the body of the `mspres_bodies` fuzz target
//! (`presence_mspres::fuzzing::every_parser`).

use presence_mspres::{Categories, MsPresError, Publish};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use crate::strategies;

/// The body of the `mspres_bodies` fuzz target.
fn every_parser(data: &[u8]) {
    presence_mspres::fuzzing::every_parser(data);
}

/// A few valid bodies to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    let mut seeds = Vec::new();
    for _ in 0..4 {
        seeds.push(
            strategies::publish()
                .new_tree(runner)
                .expect("value")
                .current()
                .to_xml()
                .into_bytes(),
        );
        seeds.push(
            strategies::categories()
                .new_tree(runner)
                .expect("value")
                .current()
                .to_xml()
                .into_bytes(),
        );
        seeds.push(
            strategies::batch_subscribe()
                .new_tree(runner)
                .expect("value")
                .current()
                .to_xml()
                .into_bytes(),
        );
        seeds.push(
            strategies::fault()
                .new_tree(runner)
                .expect("value")
                .current()
                .to_xml()
                .into_bytes(),
        );
        seeds.push(
            strategies::rlmi()
                .new_tree(runner)
                .expect("value")
                .current()
                .to_xml()
                .into_bytes(),
        );
        let notification = strategies::notification()
            .new_tree(runner)
            .expect("value")
            .current();
        if let Ok((content_type, body)) = notification.to_body("b") {
            let mut seed = format!("{content_type}\n").into_bytes();
            seed.extend_from_slice(&body);
            seeds.push(seed);
        }
    }
    seeds.push(include_bytes!("data/publish.xml").to_vec());
    seeds.push(include_bytes!("data/categories.xml").to_vec());
    seeds
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..512)) {
        every_parser(&data);
    }

    #[test]
    fn markup_soup_never_panics(parts in vec(prop_oneof![
        Just("<".to_owned()), Just(">".to_owned()), Just("/>".to_owned()), Just("</".to_owned()),
        Just("&amp;".to_owned()), Just("&#0;".to_owned()), Just("&#x110000;".to_owned()), Just("&e;".to_owned()),
        Just("<!DOCTYPE x>".to_owned()), Just("<![CDATA[x]]>".to_owned()), Just("<?xml version='1.0'?>".to_owned()),
        Just("xmlns=\"http://schemas.microsoft.com/2006/09/sip/categories\"".to_owned()),
        Just("xmlns:p=\"http://schemas.microsoft.com/2006/09/sip/state\"".to_owned()),
        Just("xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" i:type=\"p:aggregateState\"".to_owned()),
        Just("categories".to_owned()), Just("category".to_owned()), Just("state".to_owned()),
        Just("p:state".to_owned()), Just("availability".to_owned()), Just(" uri=\"u\"".to_owned()),
        Just(" name=\"state\"".to_owned()), Just("--b\r\n".to_owned()), Just("\r\n".to_owned()),
        "[a-z0-9 =\"']{0,6}",
    ], 0..40)) {
        every_parser(parts.concat().as_bytes());
    }

    #[test]
    fn mutated_bodies_never_panic(
        seed in any::<proptest::sample::Index>(),
        edits in vec((any::<proptest::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let seeds = seeds();
        let mut data = seeds[seed.index(seeds.len())].clone();
        for (at, byte, kind) in edits {
            if data.is_empty() {
                data.push(byte);
                continue;
            }
            let i = at.index(data.len());
            match kind {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                _ => { data.remove(i); }
            }
        }
        every_parser(&data);
    }
}

#[test]
fn deep_and_large_inputs_are_refused_not_overflowed() {
    let deep = "<a>".repeat(100_000);
    every_parser(deep.as_bytes());
    assert!(matches!(
        Categories::parse(deep.as_bytes()),
        Err(MsPresError::TooDeep { .. })
    ));
    let big = vec![b' '; presence_mspres::MAX_BODY_BYTES + 1];
    assert!(matches!(
        Publish::parse(&big),
        Err(MsPresError::TooLarge { .. })
    ));
    let many = format!(
        "<categories xmlns='http://schemas.microsoft.com/2006/09/sip/categories' uri='u'>{}</categories>",
        "<x/>".repeat(70_000)
    );
    assert!(matches!(
        Categories::parse(many.as_bytes()),
        Err(MsPresError::TooManyElements { .. })
    ));
}
