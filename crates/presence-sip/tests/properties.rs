//! Property tests of the codec: serialize → parse round trips, the framer's independence
//! from how the stream is cut, and robustness against arbitrary bytes (the same code as the
//! fuzz targets `sip_framer` and `sip_message`).

use bytes::Bytes;
use presence_sip::{
    Frame, Framer, Headers, Limits, Message, Method, NameAddr, Request, Response, SipError,
    SipUriRef,
};
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------- strategies

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.!%*_+`'~-]{1,12}"
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "REGISTER",
            "OPTIONS",
            "SUBSCRIBE",
            "NOTIFY",
            "SERVICE",
            "BENOTIFY",
            "MESSAGE",
            "INFO",
        ])
        .prop_map(|m| Method::from_token(m).expect("named method")),
        token().prop_map(|t| Method::from_token(&t).expect("generated token")),
    ]
}

fn request_uri() -> impl Strategy<Value = String> {
    prop_oneof![
        "sips?:[a-z0-9.+]{1,10}@[a-z0-9.-]{1,16}(:[0-9]{1,5})?(;[a-z-]{1,8}(=[a-zA-Z0-9:_]{1,8})?){0,3}",
        // Any text without whitespace or control characters.
        "[!-~\u{a0}-\u{2fff}]{1,40}",
    ]
}

/// Header names: compact forms, full names in any case, random tokens; never
/// Content-Length (the serializer owns it).
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "i", "m", "c", "f", "t", "v", "k", "o", "e", "s", "u", "I", "V", "F",
        ])
        .prop_map(str::to_owned),
        (
            prop::sample::select(vec![
                "Call-ID",
                "Contact",
                "Content-Type",
                "From",
                "To",
                "Via",
                "Supported",
                "Event",
                "CSeq",
                "ms-diagnostics",
                "Subscription-State",
                "Expires",
            ]),
            any::<bool>()
        )
            .prop_map(|(n, upper)| if upper {
                n.to_ascii_uppercase()
            } else {
                n.to_owned()
            }),
        token(),
    ]
    .prop_filter("Content-Length belongs to the serializer", |n| {
        !n.eq_ignore_ascii_case("l") && !n.eq_ignore_ascii_case("content-length")
    })
}

/// Values as the parser returns them: no CR/LF/controls (HTAB allowed), trimmed.
fn header_value() -> impl Strategy<Value = String> {
    "[\t -~\u{a0}-\u{2fff}]{0,40}".prop_map(|v| v.trim_matches([' ', '\t']).to_owned())
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    vec((header_name(), header_value()), 0..8)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..96)
}

fn message() -> impl Strategy<Value = Message> {
    let request = (method(), request_uri(), headers(), body()).prop_map(|(m, uri, hs, body)| {
        let mut r = Request::new(m, uri).expect("generated request line is valid");
        for (n, v) in &hs {
            r.headers_mut().append(n, v).expect("generated header");
        }
        *r.body_mut() = Bytes::from(body);
        Message::from(r)
    });
    let response = (
        100u16..=699,
        "[\t -~\u{a0}-\u{2fff}]{0,20}",
        headers(),
        body(),
    )
        .prop_map(|(code, reason, hs, body)| {
            let mut r = Response::new(code, reason).expect("generated status line is valid");
            for (n, v) in &hs {
                r.headers_mut().append(n, v).expect("generated header");
            }
            *r.body_mut() = Bytes::from(body);
            Message::from(r)
        });
    prop_oneof![request, response]
}

/// Limits generous enough for any re-serialized input.
fn roomy() -> Limits {
    Limits {
        max_header_section: usize::MAX,
        max_body: usize::MAX,
        max_headers: usize::MAX,
    }
}

// ---------------------------------------------------------------- helpers shared with fuzz

/// Feeds `data` to a framer in chunks whose sizes come from `cuts`, draining after each
/// push. Returns the frames and the error, if any. Panics if the framer misbehaves.
fn frame_in_chunks(data: &[u8], cuts: &[usize]) -> (Vec<Frame>, Option<SipError>) {
    let mut framer = Framer::new(Limits::default());
    let mut frames = Vec::new();
    let mut rest = data;
    let mut sizes = cuts.iter().copied().cycle();
    while !rest.is_empty() || frames.is_empty() {
        let size = sizes
            .next()
            .unwrap_or(rest.len())
            .clamp(1, rest.len().max(1));
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        framer.push(chunk);
        rest = tail;
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    frames.push(frame);
                    assert!(frames.len() <= data.len(), "more frames than bytes");
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(framer.is_poisoned());
                    assert!(matches!(framer.next_frame(), Err(SipError::Poisoned)));
                    return (frames, Some(e));
                }
            }
        }
        if rest.is_empty() {
            break;
        }
    }
    (frames, None)
}

fn all_frames(framer: &mut Framer) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(frame) = framer.next_frame().expect("valid stream") {
        out.push(frame);
    }
    out
}

fn messages_only(frames: &[Frame]) -> Vec<&Message> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Message(m) => Some(m),
            Frame::Ping | Frame::Pong => None,
        })
        .collect()
}

/// What parsing `m.to_bytes()` must give: `m` plus the `Content-Length` the serializer
/// added at the end.
fn with_length(m: &Message) -> Message {
    let mut expected = m.clone();
    let len = expected.body().len().to_string();
    expected
        .headers_mut()
        .append("Content-Length", &len)
        .expect("valid header");
    expected
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn serialize_then_parse_gives_the_same_message(m in message()) {
        let wire = m.to_bytes();
        let parsed = Message::parse_with_limits(&wire, &roomy()).expect("own output parses");
        prop_assert_eq!(&parsed, &with_length(&m));
        prop_assert_eq!(parsed.to_bytes(), wire);
    }

    #[test]
    fn serializer_fixes_any_given_content_length(
        m in message(),
        given in "[0-9]{1,6}|x|-1",
        position in any::<prop::sample::Index>(),
    ) {
        let mut m = m;
        let mut headers = Headers::new();
        let existing: Vec<(String, String)> = m
            .headers()
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let at = position.index(existing.len() + 1);
        for (i, (n, v)) in existing.iter().enumerate() {
            if i == at {
                headers.append("l", &given).expect("valid");
            }
            headers.append(n, v).expect("valid");
        }
        if at == existing.len() {
            headers.append("l", &given).expect("valid");
        }
        *m.headers_mut() = headers;
        let parsed = Message::parse_with_limits(&m.to_bytes(), &roomy()).expect("parses");
        prop_assert_eq!(parsed.headers().content_length().expect("numeric"), Some(m.body().len()));
        prop_assert_eq!(parsed.headers().get_all("Content-Length").count(), 1);
        prop_assert_eq!(
            parsed.headers().iter().position(|(n, _)| n == "l"),
            Some(at)
        );
        prop_assert_eq!(parsed.body(), m.body());
    }

    #[test]
    fn header_append_validates_or_round_trips(name in "\\PC{0,8}", value in "\\PC{0,20}|[\r\n\t\0 a]{0,6}") {
        prop_assume!(presence_sip::canonical_name(&name) != "Content-Length");
        let mut h = Headers::new();
        match h.append(&name, &value) {
            Ok(()) => {
                let r = Request::new(Method::Options, "sip:a@b").expect("valid");
                let mut r = r;
                *r.headers_mut() = h.clone();
                let parsed = Message::parse(&r.to_bytes()).expect("appended header parses");
                prop_assert_eq!(parsed.headers().get(&name), h.get(&name));
            }
            Err(SipError::InvalidHeaderName { .. } | SipError::InvalidHeaderValue { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn name_addr_display_round_trips(
        display in proptest::option::of("[ -~\u{a0}-\u{2fff}]{0,16}"),
        uri in "sips?:[a-z0-9.]{1,8}@[a-z0-9.-]{1,12}(;[a-z]{1,6}(=[a-z0-9]{1,6})?){0,2}",
        params in vec(("[a-z+.-]{1,8}", proptest::option::of(prop_oneof![
            "[a-zA-Z0-9.:_-]{1,10}",
            "[ -~]{0,10}".prop_map(|s| presence_sip::quote(&s)),
        ])), 0..4),
    ) {
        let a = NameAddr { display_name: display, uri, params };
        let text = a.to_string();
        let parsed = NameAddr::parse(&text).expect("own output parses");
        prop_assert_eq!(&parsed, &a);
        prop_assert!(parsed.uri_ref().is_ok());
    }

    #[test]
    fn sip_uri_display_round_trips(
        uri in "sips?:([a-z0-9+.]{1,8}(:[a-z0-9]{1,6})?@)?([a-z0-9.-]{1,12}|\\[[0-9a-f:]{2,12}\\])(:[0-9]{1,4})?(;[a-z-]{1,8}(=[a-zA-Z0-9:._]{1,8})?){0,3}(\\?[a-z]=[a-z0-9]{1,4})?",
    ) {
        let parsed = SipUriRef::parse(&uri).expect("generated URI parses");
        let text = parsed.to_string();
        prop_assert_eq!(&SipUriRef::parse(&text).expect("own output parses"), &parsed);
        if parsed.port.is_none() {
            // Only a port written with leading zeros changes on the way.
            prop_assert_eq!(text, uri);
        }
    }

    #[test]
    fn parsers_of_values_never_panic(text in "\\PC{0,64}|[\"<>;=,:@ a-z\\\\]{0,32}") {
        let _ = NameAddr::parse(&text);
        let _ = SipUriRef::parse(&text);
        let _ = presence_sip::CSeq::parse(&text);
        let _ = presence_sip::Via::parse(&text);
        let _ = presence_sip::ContentType::parse(&text);
        let _ = presence_sip::SubscriptionState::parse(&text);
        let _ = presence_sip::MsDiagnostics::parse(&text);
        let mut h = Headers::new();
        if h.append("X", &text).is_ok() {
            let _ = h.values("X").count();
        }
    }
}

proptest! {
    // Each case re-frames the stream at every byte position: fewer, smaller cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_split_point_gives_the_same_frames(
        parts in vec((prop::sample::select(vec!["", "\r\n\r\n", "\r\n"]), message()), 1..4),
        trailing_ping in any::<bool>(),
    ) {
        let mut stream = Vec::new();
        for (keepalive, m) in &parts {
            stream.extend_from_slice(keepalive.as_bytes());
            m.write_to(&mut stream);
        }
        if trailing_ping {
            stream.extend_from_slice(b"\r\n\r\n");
        }
        let mut whole = Framer::new(roomy());
        whole.push(&stream);
        let expected = all_frames(&mut whole);
        let expected_messages: Vec<Message> = parts.iter().map(|(_, m)| with_length(m)).collect();
        prop_assert_eq!(
            messages_only(&expected),
            expected_messages.iter().collect::<Vec<_>>()
        );
        prop_assert_eq!(whole.consumed() + whole.buffered(), stream.len());

        for cut in 0..=stream.len() {
            let mut framer = Framer::new(roomy());
            framer.push(&stream[..cut]);
            let mut frames = all_frames(&mut framer);
            framer.push(&stream[cut..]);
            frames.extend(all_frames(&mut framer));
            prop_assert_eq!(&frames, &expected, "split at {}", cut);
        }

        let mut framer = Framer::new(roomy());
        let mut frames = Vec::new();
        for byte in &stream {
            framer.push(std::slice::from_ref(byte));
            frames.extend(all_frames(&mut framer));
        }
        prop_assert_eq!(&frames, &expected, "byte by byte");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The body of the `sip_framer` fuzz target, on random streams.
    #[test]
    fn framer_survives_arbitrary_bytes(data in vec(any::<u8>(), 0..2048)) {
        let _ = presence_sip::fuzzing::framer(&data);
    }

    /// The body of the `sip_message` fuzz target, on random bytes.
    #[test]
    fn message_parse_survives_arbitrary_bytes(data in vec(any::<u8>(), 0..1024)) {
        presence_sip::fuzzing::message(&data);
    }

    /// Valid streams with a few bytes changed: reaches deeper than random bytes.
    #[test]
    fn framer_and_parser_survive_mutated_messages(
        parts in vec(message(), 1..3),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        cuts in vec(1usize..64, 1..8),
    ) {
        let mut stream = Vec::new();
        for m in &parts {
            m.write_to(&mut stream);
        }
        for (at, byte, kind) in &edits {
            if stream.is_empty() {
                break;
            }
            let i = at.index(stream.len());
            match kind {
                0 => stream[i] = *byte,
                1 => stream.insert(i, *byte),
                _ => {
                    stream.remove(i);
                }
            }
        }
        let _ = frame_in_chunks(&stream, &cuts);
        check_single_message(&stream);
    }
}

/// The single-message property: never panics; whatever parses re-serializes to a fixed
/// point.
fn check_single_message(data: &[u8]) {
    presence_sip::fuzzing::message(data);
}

#[test]
fn limit_errors_carry_offsets_into_the_stream() {
    let (frames, error) = frame_in_chunks(
        b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nContent-Length: 2000000\r\n\r\n",
        &[7],
    );
    assert_eq!(frames, vec![Frame::Ping]);
    match error {
        Some(SipError::BodyTooLarge {
            offset,
            declared,
            limit,
        }) => {
            assert_eq!((offset, declared, limit), (4 + 39, 2_000_000, 1 << 20));
        }
        other => panic!("{other:?}"),
    }
}
