//! The body of the fuzz target `mspres_bodies` (in the repository's `fuzz/` folder), also
//! run by this crate's proptests: one function, two callers, so the fuzzer and CI check the
//! same property and cannot drift apart.

use crate::{
    BatchSubscribe, Categories, ContentType, Fault, MsPresError, Multipart, Publish, Rlmi,
    parse_notification,
};

/// Checks an error: it renders, and its location (if any) is 1-based.
fn check(err: &MsPresError) {
    let _ = err.to_string();
    if let Some(at) = err.location() {
        assert!(at.line >= 1 && at.column >= 1);
    }
}

/// Target `mspres_bodies`: `data` fed to every parser of this crate (and its first line
/// as a notification's Content-Type). Whatever parses is written and read back equal;
/// every error renders and its location, if any, is 1-based. Panics when that does not
/// hold.
pub fn every_parser(data: &[u8]) {
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
    match Multipart::parse("b", data) {
        Ok(_) => {}
        Err(e) => check(&e),
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
}
