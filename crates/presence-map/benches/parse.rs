//! Parsing throughput on a large generated map.
//!
//! `cargo bench -p presence-map` — divan reports bytes per second (target: ≥ 100 MB/s).

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use presence_map::{AgentPresenceMap, NAMESPACE, ParseOptions};

fn main() {
    divan::main();
}

/// A map with `states` states of four activities each, texts in four scripts.
fn generate(states: usize) -> String {
    let mut xml = format!("<?xml version=\"1.0\"?>\n<agentStates xmlns=\"{NAMESPACE}\">\n");
    for i in 0..states {
        xml.push_str(&format!(
            "  <agentState ID=\"STATE_{i}\" availability=\"{}\">\n\
             \x20   <activity LCID=\"1033\"> Working with customer {i}, do not disturb </activity>\n\
             \x20   <activity LCID=\"3082\">Estoy trabajando con los clientes, no molestar</activity>\n\
             \x20   <activity LCID=\"1049\">Работа с клиентом, не беспокоить</activity>\n\
             \x20   <activity LCID=\"1036\">En travaillant avec les clients, ne pas d&#233;ranger</activity>\n\
             \x20 </agentState>\n",
            (i * 7) % 18001
        ));
    }
    xml.push_str("</agentStates>\n");
    xml
}

#[divan::bench(args = [20_000])]
fn parse(bencher: Bencher<'_, '_>, states: usize) {
    let xml = generate(states);
    let options = ParseOptions {
        max_size: xml.len(),
    };
    let parsed = AgentPresenceMap::parse_with(xml.as_bytes(), &options).expect("valid map");
    assert_eq!(parsed.map.len(), states);
    bencher
        .counter(BytesCount::of_str(&xml))
        .bench(|| AgentPresenceMap::parse_with(black_box(xml.as_bytes()), &options));
}

#[divan::bench(args = [20_000])]
fn to_xml(bencher: Bencher<'_, '_>, states: usize) {
    let xml = generate(states);
    let options = ParseOptions {
        max_size: xml.len(),
    };
    let map = AgentPresenceMap::parse_with(xml.as_bytes(), &options)
        .expect("valid map")
        .map;
    let written = map.to_xml();
    bencher
        .counter(BytesCount::of_str(&written))
        .bench(|| black_box(&map).to_xml());
}

/// For reference: `quick-xml`'s namespace-aware reader alone on the same input (events,
/// element namespaces, attributes), without building or checking anything.
#[divan::bench(args = [20_000])]
fn reference_reader_alone(bencher: Bencher<'_, '_>, states: usize) {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;

    let xml = generate(states);
    bencher.counter(BytesCount::of_str(&xml)).bench(|| {
        let mut reader = quick_xml::reader::NsReader::from_str(black_box(&xml));
        let mut seen = 0usize;
        loop {
            match reader.read_event() {
                Ok(Event::Eof) | Err(_) => break seen,
                Ok(Event::Start(e) | Event::Empty(e)) => {
                    let (ns, _) = reader.resolver().resolve_element(e.name());
                    seen += usize::from(matches!(ns, ResolveResult::Bound(_)));
                    for attribute in e.attributes().flatten() {
                        seen += attribute.value.len();
                    }
                }
                Ok(_) => seen += 1,
            }
        }
    });
}
