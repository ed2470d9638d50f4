//! Parse and serialize throughput of typical SfB messages: a ~1 KB `SERVICE` category
//! publication and a `200 OK`. Run with `cargo bench -p presence-sip`; the `items/s` column
//! is messages per second on one core.

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use presence_sip::{Framer, Limits, Message};

const SERVICE: &[u8] = include_bytes!("../tests/data/service-publish.sip");
const OK_200: &[u8] = include_bytes!("../tests/data/ok-200.sip");

fn main() {
    divan::main();
}

fn parse_bench(bencher: Bencher<'_, '_>, wire: &'static [u8]) {
    bencher
        .counter(ItemsCount::new(1usize))
        .counter(BytesCount::new(wire.len()))
        .bench_local(|| Message::parse(black_box(wire)));
}

/// `Message::parse` of the `SERVICE` request (body included).
#[divan::bench]
fn parse_service(bencher: Bencher<'_, '_>) {
    parse_bench(bencher, SERVICE);
}

/// `Message::parse` of the `200 OK`.
#[divan::bench]
fn parse_200_ok(bencher: Bencher<'_, '_>) {
    parse_bench(bencher, OK_200);
}

/// The stream path: push the `SERVICE` bytes into a framer and take the message out.
#[divan::bench]
fn framer_service(bencher: Bencher<'_, '_>) {
    let mut framer = Framer::new(Limits::default());
    bencher
        .counter(ItemsCount::new(1usize))
        .counter(BytesCount::new(SERVICE.len()))
        .bench_local(|| {
            framer.push(black_box(SERVICE));
            framer.next_frame()
        });
}

fn serialize_bench(bencher: Bencher<'_, '_>, wire: &'static [u8]) {
    let message = Message::parse(wire).expect("benchmark input parses");
    let mut out = Vec::with_capacity(wire.len() * 2);
    bencher
        .counter(ItemsCount::new(1usize))
        .counter(BytesCount::new(wire.len()))
        .bench_local(|| {
            out.clear();
            black_box(&message).write_to(&mut out);
            black_box(out.len())
        });
}

/// `Message::write_to` of the `SERVICE` request into a reused buffer.
#[divan::bench]
fn serialize_service(bencher: Bencher<'_, '_>) {
    serialize_bench(bencher, SERVICE);
}

/// `Message::write_to` of the `200 OK` into a reused buffer.
#[divan::bench]
fn serialize_200_ok(bencher: Bencher<'_, '_>) {
    serialize_bench(bencher, OK_200);
}
