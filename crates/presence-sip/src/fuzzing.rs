//! The bodies of the fuzz targets `sip_framer` and `sip_message` (in the repository's
//! `fuzz/` folder), also run by this crate's proptests: one function, two callers, so the
//! fuzzer and CI check the same property and cannot drift apart. Each panics when the
//! property does not hold. Also the hostile streams the SfB and SIP SIMPLE endpoints'
//! hostile-input tests feed ([`hostile_streams`], [`feed_until_refused`]).

use crate::{Framer, Limits, Message, SipError};

/// Target `sip_framer`: the first byte picks a chunk size (1..=64), the rest is a stream
/// pushed through a [`Framer`] in chunks of that size. Never a panic, never more frames
/// than bytes, and after an error the framer stays poisoned. Returns the number of frames
/// and the error that ended the stream, if any.
pub fn framer(data: &[u8]) -> (usize, Option<SipError>) {
    let Some((&size, stream)) = data.split_first() else {
        return (0, None);
    };
    let size = usize::from(size % 64) + 1;
    let mut framer = Framer::new(Limits::default());
    let mut frames = 0usize;
    for chunk in stream.chunks(size) {
        framer.push(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(_)) => {
                    frames += 1;
                    assert!(frames <= stream.len(), "more frames than bytes");
                }
                Ok(None) => break,
                Err(error) => {
                    assert!(framer.is_poisoned(), "an error poisons the framer");
                    assert!(
                        matches!(framer.next_frame(), Err(SipError::Poisoned)),
                        "a poisoned framer says so"
                    );
                    return (frames, Some(error));
                }
            }
        }
    }
    (frames, None)
}

/// Target `sip_message`: arbitrary bytes parsed as one SIP message. Never a panic, and
/// what parses re-serializes to a fixed point.
pub fn message(data: &[u8]) {
    if let Ok(message) = Message::parse(data) {
        let once = message.to_bytes();
        let roomy = Limits {
            max_header_section: usize::MAX,
            max_body: usize::MAX,
            max_headers: usize::MAX,
        };
        let reparsed = Message::parse_with_limits(&once, &roomy).expect("own output parses");
        assert_eq!(reparsed.to_bytes(), once, "serialization is a fixed point");
    }
}

/// A fuzz input read as a script, a byte at a time; once exhausted it reads zeros. The
/// state-machine fuzz targets of the SIP transports read their steps from it.
#[derive(Debug)]
pub struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    /// A script over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Script { data }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 once exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// The next `n` bytes (fewer once exhausted).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// One of `choices`, picked by the next byte.
    ///
    /// # Panics
    /// When `choices` is empty.
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[usize::from(self.byte()) % choices.len()]
    }
}

/// The peer of a SIP user agent under test in a state-machine fuzz target: frames what the
/// agent wrote, keeps the requests it has not answered yet and the SUBSCRIBEs whose
/// dialogs it may notify, and builds answers.
#[derive(Debug)]
pub struct Peer {
    framer: Framer,
    /// Requests not answered yet, oldest first (at most 64).
    pub open: Vec<crate::Request>,
    /// The latest SUBSCRIBE requests (at most 8): their dialogs can be notified.
    pub subscribes: Vec<crate::Request>,
}

impl Default for Peer {
    fn default() -> Self {
        Peer {
            framer: Framer::new(Limits::default()),
            open: Vec::new(),
            subscribes: Vec::new(),
        }
    }
}

impl Peer {
    /// Reads what the agent wrote. Panics when it is not SIP: the agent's own output
    /// always frames.
    pub fn read(&mut self, written: impl IntoIterator<Item = Vec<u8>>) {
        for bytes in written {
            self.framer.push(&bytes);
        }
        while let Some(frame) = self.framer.next_frame().expect("the agent writes SIP") {
            if let crate::Frame::Message(Message::Request(request)) = frame {
                if request.method() == &crate::Method::Subscribe {
                    self.subscribes.push(request.clone());
                    if self.subscribes.len() > 8 {
                        self.subscribes.remove(0);
                    }
                }
                self.open.push(request);
            }
        }
        if self.open.len() > 64 {
            self.open.drain(..self.open.len() - 64);
        }
    }

    /// Takes one of the open requests, picked by the script's next byte.
    pub fn take(&mut self, script: &mut Script<'_>) -> Option<crate::Request> {
        if self.open.is_empty() {
            return None;
        }
        let at = usize::from(script.byte()) % self.open.len();
        Some(self.open.remove(at))
    }

    /// One of the SUBSCRIBEs, picked by the script's next byte.
    pub fn subscribe(&self, script: &mut Script<'_>) -> Option<&crate::Request> {
        if self.subscribes.is_empty() {
            return None;
        }
        let at = usize::from(script.byte()) % self.subscribes.len();
        self.subscribes.get(at)
    }

    /// An answer to `request` with `status`, a To tag and `headers`; `None` when a header
    /// cannot be written.
    pub fn answer(
        request: &crate::Request,
        status: u16,
        headers: &[(&str, String)],
    ) -> Option<crate::Response> {
        let mut response = crate::Response::for_request(request, status, "Fuzz").ok()?;
        response.set_to_tag("peer").ok()?;
        for (name, value) in headers {
            response = response.header(name, value).ok()?;
        }
        Some(response)
    }
}

/// The hostile streams a peer could send after `head` (a response's start line and headers,
/// each line ending in CRLF, without `Content-Length`), named, as the bytes on the wire:
/// `Content-Length` huge, negative, missing or given twice, endless header lines, NUL and
/// invalid UTF-8 in a header, 10,000 `Via` headers, an 8 MiB body.
pub fn hostile_streams(head: &str) -> Vec<(&'static str, Vec<u8>)> {
    const MIB: usize = 1024 * 1024;
    let with = |extra: &str| format!("{head}{extra}\r\n").into_bytes();
    let mut endless = head.as_bytes().to_vec();
    while endless.len() < 4 * MIB {
        endless.extend_from_slice(b"X-Endless: more and more and more\r\n");
    }
    let mut big_body = with("Content-Length: 8388608\r\n");
    big_body.resize(big_body.len() + 8 * MIB, b'x');
    let mut utf8 = with("X-Evil: caf#\r\nContent-Length: 0\r\n");
    if let Some(at) = utf8.iter().position(|&b| b == b'#') {
        utf8[at] = 0xC3;
    }
    vec![
        (
            "Content-Length 10^12",
            with("Content-Length: 1000000000000\r\n"),
        ),
        ("Content-Length -1", with("Content-Length: -1\r\n")),
        ("Content-Length missing", with("")),
        (
            "Content-Length twice, 0 and 9",
            with("Content-Length: 0\r\nl: 9\r\n"),
        ),
        ("endless header lines (4 MiB offered)", endless),
        (
            "NUL byte in a header",
            with("X-Evil: a\0b\r\nContent-Length: 0\r\n"),
        ),
        ("invalid UTF-8 in a header", utf8),
        (
            "10,000 Via headers",
            with(&format!(
                "{}Content-Length: 0\r\n",
                "Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKv\r\n".repeat(10_000)
            )),
        ),
        ("8 MiB body", big_body),
    ]
}

/// Feeds `stream` to `handle` in reads of 64 KiB, as a socket would, until it refuses one:
/// its error, if any, and the bytes fed up to and including the refused read.
pub fn feed_until_refused<E>(
    stream: &[u8],
    mut handle: impl FnMut(&[u8]) -> Result<(), E>,
) -> (Option<E>, usize) {
    let mut fed = 0;
    for piece in stream.chunks(64 * 1024) {
        fed += piece.len();
        if let Err(error) = handle(piece) {
            return (Some(error), fed);
        }
    }
    (None, fed)
}
