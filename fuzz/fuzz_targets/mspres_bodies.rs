//! MS-PRES bodies: any input, fed to every parser of `presence-mspres`, is either refused
//! with an error (whose location is 1-based) or gives a value that is written and read
//! back equal. Mirrors the proptests in `presence-mspres/tests/it/no_panic.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use presence_mspres::{
    BatchSubscribe, Categories, ContentType, Fault, MsPresError, Multipart, Publish, Rlmi,
    parse_notification,
};

fn check(err: &MsPresError) {
    let _ = err.to_string();
    if let Some(at) = err.location() {
        assert!(at.line >= 1 && at.column >= 1);
    }
}

fuzz_target!(|data: &[u8]| {
    match Publish::parse(data) {
        Ok(v) => assert_eq!(Publish::parse(v.to_xml().as_bytes()).ok(), Some(v)),
        Err(e) => check(&e),
    }
    match Fault::parse(data) {
        Ok(v) => assert_eq!(Fault::parse(v.to_xml().as_bytes()).ok(), Some(v)),
        Err(e) => check(&e),
    }
    match BatchSubscribe::parse(data) {
        Ok(v) => assert_eq!(BatchSubscribe::parse(v.to_xml().as_bytes()).ok(), Some(v)),
        Err(e) => check(&e),
    }
    match Categories::parse(data) {
        Ok(v) => assert_eq!(Categories::parse(v.to_xml().as_bytes()).ok(), Some(v)),
        Err(e) => check(&e),
    }
    match Rlmi::parse(data) {
        Ok(v) => assert_eq!(Rlmi::parse(v.to_xml().as_bytes()).ok(), Some(v)),
        Err(e) => check(&e),
    }
    if let Err(e) = Multipart::parse("b", data) {
        check(&e);
    }
    let text = String::from_utf8_lossy(data);
    if let Err(e) = ContentType::parse(&text) {
        check(&e);
    }
    // The first line as a Content-Type, the rest as the body.
    let (head, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]), &data[i + 1..]),
        None => (text.clone(), &[][..]),
    };
    for content_type in [
        head.as_ref(),
        "application/msrtc-event-categories+xml",
        "application/rlmi+xml",
        "multipart/related;boundary=b",
    ] {
        for body in [data, rest] {
            if let Err(e) = parse_notification(content_type, body) {
                check(&e);
            }
        }
    }
});
