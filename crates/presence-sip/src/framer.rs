//! The streaming framer for SIP over TCP/TLS (RFC 3261 §18.3, RFC 5626 §3.5.1).

use bytes::{Buf, BytesMut};

use crate::error::SipError;
use crate::message::Message;
use crate::parse::{Head, Limits, Scan, find_head_end, parse_head};

/// One unit read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message.
    Message(Message),
    /// A double CRLF (`\r\n\r\n`) between messages: an RFC 5626 keep-alive ping. Answer it
    /// with a single CRLF pong ([`PONG`]).
    Ping,
    /// A single CRLF between messages that is not part of a ping: an RFC 5626 pong, the
    /// answer to a ping this side sent.
    Pong,
}

/// The RFC 5626 keep-alive ping a client sends: `\r\n\r\n`.
pub const PING: &[u8] = b"\r\n\r\n";

/// The RFC 5626 keep-alive pong that answers a ping: `\r\n`.
pub const PONG: &[u8] = b"\r\n";

/// A parsed header section waiting for its body.
#[derive(Debug)]
struct Pending {
    head: Head,
    head_len: usize,
    /// Header section plus body.
    total: usize,
}

/// Splits a byte stream into SIP messages and keep-alives, sans I/O.
///
/// Feed it what the socket gives with [`push`](Self::push) and drain it with
/// [`next_frame`](Self::next_frame) (or [`next_message`](Self::next_message)) until that
/// returns `Ok(None)`:
///
/// - Messages may arrive in any number of pieces and several per read; bodies are
///   delimited by `Content-Length` (or `l`), which must be present: a message without it is
///   [`SipError::MissingContentLength`], as RFC 3261 §18.3 requires it on streams.
/// - Between messages, `\r\n\r\n` is a [`Frame::Ping`] and a lone `\r\n` a [`Frame::Pong`].
///   A lone `\r\n` at the very end of the buffer might be either (the start of a ping), so
///   the framer waits for the next byte; see
///   [`has_partial_keepalive`](Self::has_partial_keepalive).
/// - Limits ([`Limits`]) are checked as soon as they can be: a header section that is not
///   complete within `max_header_section` bytes, too many header fields, or a
///   `Content-Length` above `max_body` fail before more is buffered (the body limit is
///   checked when the header section is parsed, before any body byte arrives).
/// - **Poisoning**: after any error the framer has lost its place in the stream. It drops
///   its buffer, ignores further input and answers every call with [`SipError::Poisoned`];
///   close the connection and start a new framer for the next one.
///
/// Error offsets count from the first byte ever pushed.
///
/// [`push`](Self::push) does not check limits: call `next_frame` after every push so the
/// buffer holds at most one incomplete message.
///
/// ```
/// use presence_sip::{Frame, Framer, Limits};
/// let mut framer = Framer::new(Limits::default());
/// framer.push(b"\r\n\r\nBENOTIFY sip:bridge@contoso.com SIP/2.0\r\nContent-Le");
/// assert_eq!(framer.next_frame()?, Some(Frame::Ping));
/// assert_eq!(framer.next_frame()?, None); // waiting for the rest
/// framer.push(b"ngth: 2\r\n\r\nhi");
/// let Some(Frame::Message(msg)) = framer.next_frame()? else { panic!() };
/// assert_eq!(msg.body().as_ref(), b"hi");
/// assert_eq!(framer.next_frame()?, None);
/// # Ok::<(), presence_sip::SipError>(())
/// ```
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    buf: BytesMut,
    /// Where to resume the search for the end of the header section.
    scan: usize,
    pending: Option<Pending>,
    /// Stream offset of `buf[0]`.
    base: usize,
    poisoned: bool,
    pings: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(Limits::DEFAULT)
    }
}

impl Framer {
    /// A framer for a new connection.
    pub fn new(limits: Limits) -> Self {
        Framer {
            limits,
            buf: BytesMut::new(),
            scan: 0,
            pending: None,
            base: 0,
            poisoned: false,
            pings: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends bytes received from the stream (ignored once poisoned).
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.poisoned {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of the stream consumed as frames so far.
    pub fn consumed(&self) -> usize {
        self.base
    }

    /// Whether an earlier error poisoned the framer.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Whether the buffer holds only `\r\n` (or `\r\n\r`) between messages: a pong, or the
    /// first half of a ping. A client that sent a ping and is waiting for its pong may take
    /// this as the pong; the framer itself reports it only once the next byte tells.
    pub fn has_partial_keepalive(&self) -> bool {
        self.pending.is_none() && matches!(self.buf.as_ref(), b"\r\n" | b"\r\n\r")
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// Any framing or parse error (offsets from the start of the stream), after which the
    /// framer is poisoned; [`SipError::Poisoned`] on every later call.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SipError> {
        if self.poisoned {
            return Err(SipError::Poisoned);
        }
        match self.step() {
            Ok(frame) => Ok(frame),
            Err(error) => {
                self.poisoned = true;
                self.buf = BytesMut::new();
                self.pending = None;
                Err(error.shifted(self.base))
            }
        }
    }

    /// The next complete message, skipping keep-alives: pings are counted (answer each with
    /// [`PONG`]; see [`take_pings`](Self::take_pings)), pongs dropped.
    ///
    /// # Errors
    /// As [`next_frame`](Self::next_frame).
    pub fn next_message(&mut self) -> Result<Option<Message>, SipError> {
        loop {
            match self.next_frame()? {
                Some(Frame::Message(message)) => return Ok(Some(message)),
                Some(Frame::Ping) => self.pings += 1,
                Some(Frame::Pong) => {}
                None => return Ok(None),
            }
        }
    }

    /// How many pings [`next_message`](Self::next_message) skipped since the last call;
    /// send one [`PONG`] for each.
    pub fn take_pings(&mut self) -> usize {
        std::mem::take(&mut self.pings)
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.base = self.base.saturating_add(n);
    }

    /// One step; errors have offsets relative to `buf[0]` (the current message).
    fn step(&mut self) -> Result<Option<Frame>, SipError> {
        loop {
            if let Some(pending) = &self.pending {
                let total = pending.total;
                if self.buf.len() < total {
                    return Ok(None);
                }
                let Some(pending) = self.pending.take() else {
                    return Ok(None);
                };
                let chunk = self.buf.split_to(total).freeze();
                self.base = self.base.saturating_add(total);
                self.scan = 0;
                let body = chunk.slice(pending.head_len..);
                return Ok(Some(Frame::Message(pending.head.into_message(body))));
            }
            match self.buf.as_ref() {
                [b'\r', b'\n', b'\r', b'\n', ..] => {
                    self.advance(4);
                    return Ok(Some(Frame::Ping));
                }
                [] | [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Ok(None),
                [b'\r', b'\n', ..] => {
                    self.advance(2);
                    return Ok(Some(Frame::Pong));
                }
                _ => {}
            }
            let end = match find_head_end(&self.buf, self.scan, self.limits.max_header_section)? {
                Scan::NeedMore(resume) => {
                    self.scan = resume;
                    return Ok(None);
                }
                Scan::Found(end) => end,
            };
            let head = parse_head(self.buf.get(..end).unwrap_or_default(), &self.limits)?;
            let Some((body_len, offset)) = head.content_length else {
                return Err(SipError::MissingContentLength { offset: 0 });
            };
            let total = end
                .checked_add(body_len)
                .filter(|_| body_len <= self.limits.max_body);
            let Some(total) = total else {
                return Err(SipError::BodyTooLarge {
                    offset,
                    declared: body_len,
                    limit: self.limits.max_body,
                });
            };
            self.scan = 0;
            // The whole message in one allocation: growing the buffer by doubling while
            // the body arrives would hold up to three times the body at once.
            self.buf.reserve(total.saturating_sub(self.buf.len()));
            self.pending = Some(Pending {
                head,
                head_len: end,
                total,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:pool.contoso.com SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1\r\nCall-ID: k1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    const MESSAGE: &[u8] =
        b"MESSAGE sip:a@contoso.com SIP/2.0\r\nCall-ID: m1\r\nl: 5\r\nc: text/plain\r\n\r\nhello";

    fn drain(framer: &mut Framer) -> Result<Vec<Frame>, SipError> {
        let mut out = Vec::new();
        while let Some(frame) = framer.next_frame()? {
            out.push(frame);
        }
        Ok(out)
    }

    fn call_ids(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Message(m) => m.headers().call_id().unwrap_or("?").to_owned(),
                Frame::Ping => "ping".to_owned(),
                Frame::Pong => "pong".to_owned(),
            })
            .collect()
    }

    #[test]
    fn several_messages_in_one_read() {
        let mut stream = OPTIONS.to_vec();
        stream.extend_from_slice(MESSAGE);
        stream.extend_from_slice(OPTIONS);
        let mut framer = Framer::default();
        framer.push(&stream);
        let frames = drain(&mut framer).unwrap();
        assert_eq!(call_ids(&frames), ["k1", "m1", "k1"]);
        assert_eq!(framer.buffered(), 0);
        assert_eq!(framer.consumed(), stream.len());
    }

    #[test]
    fn partial_reads_and_split_bodies() {
        let mut framer = Framer::default();
        let (a, b) = MESSAGE.split_at(MESSAGE.len() - 3);
        framer.push(a);
        assert_eq!(framer.next_frame().unwrap(), None);
        assert!(
            framer.pending.is_some(),
            "header parsed before the body arrived"
        );
        framer.push(b);
        let Some(Frame::Message(m)) = framer.next_frame().unwrap() else {
            panic!("no message");
        };
        assert_eq!(m.body().as_ref(), b"hello");
        assert_eq!(m.headers().content_length().unwrap(), Some(5));
    }

    #[test]
    fn keepalives_between_messages() {
        let mut framer = Framer::default();
        framer.push(b"\r\n\r\n");
        framer.push(OPTIONS);
        framer.push(b"\r\n");
        framer.push(MESSAGE);
        framer.push(b"\r\n\r\n\r\n\r\n\r\n");
        let frames = drain(&mut framer).unwrap();
        assert_eq!(
            call_ids(&frames),
            ["ping", "k1", "pong", "m1", "ping", "ping"]
        );
        assert!(framer.has_partial_keepalive());
        framer.push(b"\r");
        assert_eq!(framer.next_frame().unwrap(), None);
        assert!(framer.has_partial_keepalive());
        framer.push(b"\n");
        assert_eq!(framer.next_frame().unwrap(), Some(Frame::Ping));
        assert!(!framer.has_partial_keepalive());
    }

    #[test]
    fn next_message_counts_pings() {
        let mut framer = Framer::default();
        framer.push(b"\r\n\r\n\r\n\r\n");
        framer.push(OPTIONS);
        framer.push(b"\r\n");
        assert!(framer.next_message().unwrap().is_some());
        assert_eq!(framer.next_message().unwrap(), None);
        assert_eq!(framer.take_pings(), 2);
        assert_eq!(framer.take_pings(), 0);
    }

    #[test]
    fn missing_content_length_is_an_error_and_poisons() {
        let mut framer = Framer::default();
        framer.push(OPTIONS);
        framer.push(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: z\r\n\r\n");
        assert!(framer.next_frame().unwrap().is_some());
        match framer.next_frame() {
            Err(SipError::MissingContentLength { offset }) => assert_eq!(offset, OPTIONS.len()),
            other => panic!("{other:?}"),
        }
        assert!(framer.is_poisoned());
        framer.push(OPTIONS);
        assert_eq!(framer.buffered(), 0);
        assert!(matches!(framer.next_frame(), Err(SipError::Poisoned)));
        assert!(matches!(framer.next_message(), Err(SipError::Poisoned)));
    }

    #[test]
    fn oversize_header_section_errors_without_a_complete_header() {
        let limits = Limits {
            max_header_section: 100,
            ..Limits::DEFAULT
        };
        let mut framer = Framer::new(limits);
        framer.push(b"\r\n\r\nSERVICE sip:a SIP/2.0\r\n");
        assert_eq!(framer.next_frame().unwrap(), Some(Frame::Ping));
        assert_eq!(framer.next_frame().unwrap(), None);
        framer.push(&[b'a'; 60]);
        assert_eq!(framer.next_frame().unwrap(), None);
        framer.push(&[b'a'; 60]);
        match framer.next_frame() {
            Err(SipError::HeaderSectionTooLarge { offset, limit }) => {
                assert_eq!((offset, limit), (4, 100));
            }
            other => panic!("{other:?}"),
        }
        // Exactly at the limit is fine.
        let exact = b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n";
        let mut framer = Framer::new(Limits {
            max_header_section: exact.len(),
            ..Limits::DEFAULT
        });
        framer.push(exact);
        assert!(matches!(framer.next_frame(), Ok(Some(Frame::Message(_)))));
    }

    #[test]
    fn oversize_body_errors_as_soon_as_the_header_is_parsed() {
        let mut framer = Framer::new(Limits {
            max_body: 1000,
            ..Limits::DEFAULT
        });
        framer.push(b"NOTIFY sip:a SIP/2.0\r\nContent-Length: 1001\r\n\r\n");
        match framer.next_frame() {
            Err(SipError::BodyTooLarge {
                offset,
                declared,
                limit,
            }) => assert_eq!((offset, declared, limit), (38, 1001, 1000)),
            other => panic!("{other:?}"),
        }
        let mut framer = Framer::new(Limits {
            max_body: 1000,
            ..Limits::DEFAULT
        });
        framer.push(b"NOTIFY sip:a SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert_eq!(framer.next_frame().unwrap(), None);
        framer.push(&[b'x'; 1000]);
        assert!(matches!(framer.next_frame(), Ok(Some(Frame::Message(_)))));
    }

    #[test]
    fn huge_content_length_with_unlimited_body_does_not_overflow() {
        let mut framer = Framer::new(Limits {
            max_body: usize::MAX,
            ..Limits::DEFAULT
        });
        framer.push(format!("NOTIFY sip:a SIP/2.0\r\nl: {}\r\n\r\n", usize::MAX).as_bytes());
        assert!(matches!(
            framer.next_frame(),
            Err(SipError::BodyTooLarge {
                declared: usize::MAX,
                ..
            })
        ));
    }

    #[test]
    fn too_many_headers() {
        let mut msg = b"NOTIFY sip:a SIP/2.0\r\n".to_vec();
        for i in 0..10 {
            msg.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        msg.extend_from_slice(b"l: 0\r\n\r\n");
        let limits = Limits {
            max_headers: 11,
            ..Limits::DEFAULT
        };
        let mut framer = Framer::new(limits);
        framer.push(&msg);
        assert!(matches!(framer.next_frame(), Ok(Some(Frame::Message(_)))));
        let mut framer = Framer::new(Limits {
            max_headers: 10,
            ..Limits::DEFAULT
        });
        framer.push(&msg);
        match framer.next_frame() {
            Err(SipError::TooManyHeaders {
                count,
                limit,
                offset,
            }) => {
                assert_eq!((count, limit), (11, 10));
                assert_eq!(&msg[offset..offset + 2], b"l:");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_content_lengths() {
        for (header, check) in [
            (
                "Content-Length: -1",
                (|e: &SipError| matches!(e, SipError::InvalidHeaderValue { .. }))
                    as fn(&SipError) -> bool,
            ),
            ("Content-Length: +1", |e| {
                matches!(e, SipError::InvalidHeaderValue { .. })
            }),
            ("Content-Length: ten", |e| {
                matches!(e, SipError::InvalidHeaderValue { .. })
            }),
            ("Content-Length:", |e| {
                matches!(e, SipError::InvalidHeaderValue { .. })
            }),
            ("Content-Length: 1 2", |e| {
                matches!(e, SipError::InvalidHeaderValue { .. })
            }),
            ("Content-Length: 99999999999999999999999", |e| {
                matches!(e, SipError::InvalidHeaderValue { .. })
            }),
            ("Content-Length: 2\r\nl: 3", |e| {
                matches!(
                    e,
                    SipError::ConflictingContentLength {
                        first: 2,
                        second: 3,
                        ..
                    }
                )
            }),
        ] {
            let mut framer = Framer::default();
            framer.push(format!("MESSAGE sip:a SIP/2.0\r\n{header}\r\n\r\nabc").as_bytes());
            let err = framer.next_frame().unwrap_err();
            assert!(check(&err), "{header}: {err:?}");
            assert!(err.offset().is_some_and(|o| o >= 23), "{header}: {err:?}");
        }
        // Duplicates that agree are accepted.
        let mut framer = Framer::default();
        framer.push(b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 3\r\nl: 003\r\n\r\nabc");
        assert!(matches!(framer.next_frame(), Ok(Some(Frame::Message(_)))));
    }

    #[test]
    fn error_offsets_count_from_the_stream_start() {
        let mut framer = Framer::default();
        framer.push(OPTIONS);
        framer.push(b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nBad Header: x\r\n\r\n");
        assert!(framer.next_frame().unwrap().is_some());
        assert_eq!(framer.next_frame().unwrap(), Some(Frame::Ping));
        match framer.next_frame() {
            Err(SipError::InvalidHeaderName { offset, token }) => {
                assert_eq!(offset, OPTIONS.len() + 4 + 23);
                assert_eq!(token, "Bad Header");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_and_bare_lf() {
        let mut framer = Framer::default();
        framer.push(b"\r\nHELLO\n");
        assert_eq!(framer.next_frame().unwrap(), Some(Frame::Pong));
        assert!(matches!(
            framer.next_frame(),
            Err(SipError::BareLineFeed { offset: 7 })
        ));
    }
}
