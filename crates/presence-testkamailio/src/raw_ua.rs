//! A tiny blocking SIP user agent over UDP: "a second SIP user agent publishing for a
//! user", built on presence-sip.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use presence_sip::{Message, Method, Request, Response};

use crate::util::unique_token;
use crate::{DOMAIN, HarnessError, Kamailio};

/// RFC 3261 timer T1 (first retransmission after 500 ms, doubling).
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 timer T2 (retransmission interval cap for non-INVITE requests).
const T2: Duration = Duration::from_secs(4);

/// The final answer to a PUBLISH.
#[derive(Clone, Debug)]
pub struct PublishAnswer {
    /// The status code (200, 412, 500, ...).
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// `SIP-ETag`, the publication's new entity tag.
    pub etag: Option<String>,
    /// `Expires`, the lifetime the server granted (0 for a remove).
    pub expires: Option<u32>,
    /// The whole response.
    pub response: Response,
}

impl PublishAnswer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A blocking SIP user agent on its own UDP socket (127.0.0.1, a free port) that sends one
/// request at a time and waits for its final response (1xx ignored, retransmitted with
/// T1/T2 until the timeout).
#[derive(Debug)]
pub struct RawUa {
    socket: UdpSocket,
    server: SocketAddr,
    local: SocketAddr,
    domain: String,
    timeout: Duration,
    cseq: u32,
    user_agent: String,
}

impl RawUa {
    /// A user agent for the test Kamailio.
    ///
    /// # Errors
    /// [`HarnessError::Net`] when no UDP socket can be bound.
    pub fn new(kamailio: &Kamailio) -> Result<RawUa, HarnessError> {
        RawUa::connect(kamailio.addr(), DOMAIN)
    }

    /// A user agent for any server and domain.
    ///
    /// # Errors
    /// [`HarnessError::Net`] when no UDP socket can be bound.
    pub fn connect(server: SocketAddr, domain: &str) -> Result<RawUa, HarnessError> {
        let net = |what: &'static str| {
            move |source| HarnessError::Net {
                what: what.to_owned(),
                source,
            }
        };
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(net("binding a UDP socket"))?;
        let local = socket
            .local_addr()
            .map_err(net("reading the local address"))?;
        Ok(RawUa {
            socket,
            server,
            local,
            domain: domain.to_owned(),
            timeout: Duration::from_secs(4),
            cseq: 0,
            user_agent: "presence-testkamailio-raw-ua".to_owned(),
        })
    }

    /// The socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// How long to wait for a final response (default 4 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sets the `User-Agent` header value.
    pub fn set_user_agent(&mut self, user_agent: impl Into<String>) {
        self.user_agent = user_agent.into();
    }

    /// Sends `PUBLISH sip:USER@DOMAIN` (`Event: presence`, `Expires`, `SIP-If-Match` when
    /// given) with `body` as `application/pidf+xml`; an empty `body` sends none (a refresh
    /// or, with `expires` 0, a remove). Returns the final answer: a 500 is an answer too
    /// (Kamailio's SQLite mode gives 500 under concurrent writes: retry after a pause).
    ///
    /// # Errors
    /// [`HarnessError::Timeout`] without a final answer, [`HarnessError::Sip`],
    /// [`HarnessError::Net`].
    pub fn publish(
        &mut self,
        user: &str,
        body: &str,
        expires: u32,
        if_match: Option<&str>,
    ) -> Result<PublishAnswer, HarnessError> {
        let aor = format!("sip:{user}@{}", self.domain);
        let mut request = self
            .base_request(Method::Publish, &aor, &aor)?
            .header("Event", "presence")?
            .header("Expires", expires.to_string())?;
        if let Some(etag) = if_match {
            request = request.header("SIP-If-Match", etag)?;
        }
        if !body.is_empty() {
            request = request.with_body("application/pidf+xml", body.as_bytes().to_vec())?;
        }
        let response = self.request(&request)?;
        let headers = response.headers();
        Ok(PublishAnswer {
            status: response.status().as_u16(),
            reason: response.reason().to_owned(),
            etag: headers.get("SIP-ETag").map(str::to_owned),
            expires: headers.expires().ok().flatten(),
            response,
        })
    }

    /// A request to `uri` with Via (new branch, `rport`), From `from` (new tag), To `uri`,
    /// a new Call-ID, the next CSeq, Max-Forwards 70 and User-Agent: add headers and a body,
    /// then send it with [`request`](Self::request).
    ///
    /// # Errors
    /// [`HarnessError::Sip`] for a URI the builder refuses.
    pub fn base_request(
        &mut self,
        method: Method,
        uri: &str,
        from: &str,
    ) -> Result<Request, HarnessError> {
        self.cseq += 1;
        let token = unique_token();
        let cseq = format!("{} {}", self.cseq, method.as_str());
        Ok(Request::new(method, uri)?
            .header(
                "Via",
                format!("SIP/2.0/UDP {};branch=z9hG4bK{token};rport", self.local),
            )?
            .header("From", format!("<{from}>;tag=ua{token}"))?
            .header("To", format!("<{uri}>"))?
            .header("Call-ID", format!("{token}@{}", self.local.ip()))?
            .header("CSeq", cseq)?
            .header("Max-Forwards", "70")?
            .header("User-Agent", &self.user_agent)?)
    }

    /// Sends `request` and waits for its final response: answers are matched by Via branch
    /// and Call-ID, 1xx are skipped, the request is retransmitted after T1, 2 T1, ... (at
    /// most T2 apart) until the timeout.
    ///
    /// # Errors
    /// [`HarnessError::Timeout`], [`HarnessError::Net`].
    pub fn request(&mut self, request: &Request) -> Result<Response, HarnessError> {
        let branch = request.headers().via_branch()?.unwrap_or_default();
        let call_id = request.headers().call_id().unwrap_or_default().to_owned();
        let wire = request.to_bytes();
        let net = |what: &'static str| {
            move |source| HarnessError::Net {
                what: what.to_owned(),
                source,
            }
        };
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut interval = T1;
        let mut next_send = start;
        let mut buf = vec![0u8; 65_536];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!(
                        "a final answer to {} {} from {}",
                        request.method(),
                        request.uri(),
                        self.server
                    ),
                    after: self.timeout,
                    log_tail: String::new(),
                });
            }
            if now >= next_send {
                self.socket
                    .send_to(&wire, self.server)
                    .map_err(net("sending a request"))?;
                next_send = now + interval;
                interval = (interval * 2).min(T2);
            }
            let wait = next_send
                .min(deadline)
                .saturating_duration_since(Instant::now());
            self.socket
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
                .map_err(net("setting the read timeout"))?;
            let n = match self.socket.recv_from(&mut buf) {
                Ok((n, _from)) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(net("receiving")(e)),
            };
            let Ok(Message::Response(response)) = Message::parse(&buf[..n]) else {
                continue; // not for us, or not SIP
            };
            let headers = response.headers();
            let ours = headers.via_branch().ok().flatten().as_deref() == Some(branch.as_str())
                && headers.call_id() == Some(call_id.as_str());
            if ours && !response.status().is_provisional() {
                return Ok(response);
            }
        }
    }
}
