//! Reads a SIP message file and prints it parsed.
//!
//! ```text
//! cargo run -p presence-sip --example parse -- crates/presence-sip/tests/data/service-publish.sip
//! ```
//!
//! A file may hold several messages (and CRLF keep-alives): they are framed as a TCP stream
//! would be. A file written with plain LF line ends (as editors do) gets CRLF line ends in
//! its header sections first, and a message without `Content-Length` takes the rest of the
//! file as its body.

use std::process::ExitCode;

use presence_sip::{Frame, Framer, Limits, Message, SipError, canonical_name};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: parse <message-file>");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    let bytes = crlf_headers(bytes);
    match run(&bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Converts LF line ends to CRLF in the header sections of a file without any CR.
fn crlf_headers(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.contains(&b'\r') {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut in_head = true;
    let mut previous = b'\n';
    for (i, &b) in bytes.iter().enumerate() {
        if in_head && b == b'\n' {
            out.extend_from_slice(b"\r\n");
            if previous == b'\n' && i > 0 {
                in_head = false;
            }
        } else {
            out.push(b);
        }
        previous = b;
    }
    out
}

fn run(bytes: &[u8]) -> Result<(), SipError> {
    let mut framer = Framer::new(Limits::default());
    framer.push(bytes);
    let mut count = 0;
    loop {
        match framer.next_frame() {
            Ok(Some(Frame::Message(message))) => {
                count += 1;
                print_message(count, &message)?;
            }
            Ok(Some(Frame::Ping)) => println!("-- keep-alive ping (CRLFCRLF)"),
            Ok(Some(Frame::Pong)) => println!("-- keep-alive pong (CRLF)"),
            Ok(None) if framer.buffered() == 0 || framer.has_partial_keepalive() => return Ok(()),
            Ok(None) => {
                // The rest is one message without a complete Content-Length body.
                let rest = bytes.get(framer.consumed()..).unwrap_or_default();
                count += 1;
                return print_message(count, &Message::parse(rest)?);
            }
            Err(SipError::MissingContentLength { offset }) => {
                let rest = bytes.get(offset..).unwrap_or_default();
                count += 1;
                return print_message(count, &Message::parse(rest)?);
            }
            Err(e) => return Err(e),
        }
    }
}

fn print_message(n: usize, message: &Message) -> Result<(), SipError> {
    println!("== message {n}");
    match message {
        Message::Request(request) => {
            println!("request  {} {}", request.method(), request.uri());
            match request.uri_ref() {
                Ok(uri) => println!(
                    "  uri    scheme={} user={:?} host={} port={:?} params={:?}",
                    uri.scheme, uri.user, uri.host, uri.port, uri.params
                ),
                Err(e) => println!("  uri    (not a SIP URI: {e})"),
            }
        }
        Message::Response(response) => {
            println!("response {} {:?}", response.status(), response.reason());
        }
    }
    println!("headers ({}):", message.headers().len());
    for (name, value) in message.headers() {
        let canonical = canonical_name(name);
        if canonical == name {
            println!("  {name}: {value}");
        } else {
            println!("  {name} ({canonical}): {value}");
        }
    }
    let h = message.headers();
    println!("typed:");
    println!("  Call-ID        {:?}", h.call_id());
    println!(
        "  CSeq           {:?}",
        h.cseq().map(|c| c.map(|c| c.to_string()))
    );
    println!("  Via branch     {:?}", h.via_branch());
    println!("  From tag       {:?}", h.from_tag());
    println!("  To tag         {:?}", h.to_tag());
    println!("  epid           {:?}", h.epid());
    println!(
        "  Content-Type   {:?}",
        h.content_type().map(|c| c.map(|c| c.to_string()))
    );
    println!("  Content-Length {:?}", h.content_length());
    println!("  Expires        {:?}", h.expires());
    println!(
        "  Sub-State      {:?}",
        h.subscription_state().map(|s| s.map(|s| s.to_string()))
    );
    println!("  ms-diagnostics {:?}", h.ms_diagnostics());
    let body = message.body();
    println!("body ({} bytes):", body.len());
    if !body.is_empty() {
        println!("{}", String::from_utf8_lossy(body));
    }
    Ok(())
}
