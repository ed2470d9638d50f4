//! The endpoint's cost per publication, without sockets: `publish` → request bytes → a peer
//! that parses them and answers `200 OK` → `handle_bytes` → `Published`. Every call is a
//! request on the wire (dedup is the caller's).
//! `cargo bench -p presence-sfb` (the loopback figure with a real simulator is
//! `cargo run --release -p presence-sfb --example loopback`).

use std::time::Instant;

use divan::{Bencher, black_box};
use presence_model::{Activities, ActivityText, Availability, Lcid, Presence, SipUri};
use presence_sfb::settings::Transport;
use presence_sfb::{Endpoint, EndpointConfig, Event};
use presence_sip::{Frame, Framer, Limits, Message, Response};

fn main() {
    divan::main();
}

fn presence(availability: u32) -> Presence {
    Presence {
        availability: Availability::new(availability).expect("valid"),
        activities: Activities::new(vec![
            (
                Lcid::EN_US,
                ActivityText::new("Working with customer, do not disturb"),
            ),
            (
                Lcid::new(3082),
                ActivityText::new("Trabajar con los clientes, no molestar"),
            ),
        ])
        .expect("distinct LCIDs"),
    }
}

/// One publication through the endpoint and a minimal peer (SIP parse + 200), per item.
#[divan::bench]
fn publish_round_trip(bencher: Bencher<'_, '_>) {
    let mut config = EndpointConfig::new(
        SipUri::new("sip:bridge@contoso.com").expect("valid"),
        Transport::Tcp,
    );
    config.keepalive = None;
    let mut endpoint = Endpoint::new(config, 1);
    let now = Instant::now();
    endpoint.connected(now);
    let users: Vec<SipUri> = (0..1000)
        .map(|i| SipUri::new(&format!("sip:agent{i}@contoso.com")).expect("valid"))
        .collect();
    let states = [presence(3501), presence(7001)];
    let mut framer = Framer::new(Limits::default());
    let mut i = 0usize;
    bencher.bench_local(|| {
        i += 1;
        endpoint.publish(
            users[i % users.len()].clone(),
            states[(i / users.len()) % 2].clone(),
            now,
        );
        while let Some(bytes) = endpoint.poll_transmit() {
            framer.push(&bytes);
        }
        while let Ok(Some(Frame::Message(Message::Request(request)))) = framer.next_frame() {
            let ok = Response::for_request(&request, 200, "OK").expect("a response");
            endpoint
                .handle_bytes(&ok.to_bytes(), now)
                .expect("readable");
        }
        let mut published = 0;
        while let Some(event) = endpoint.poll_event() {
            published += usize::from(matches!(event, Event::Published { .. }));
        }
        black_box(published)
    });
}
