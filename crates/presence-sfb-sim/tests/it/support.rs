//! A raw SIP client over any byte stream, building requests as the bridge does.

use std::time::Duration;

use presence_model::SipUri;
use presence_mspres::{
    BatchSubscribe, Publish, STATIC_STATE_INSTANCE, StateBody, SubscribeAction, content_type,
};
use presence_sfb_sim::{ServerConfig, SimServer};
use presence_sip::{Frame, Framer, Message, Method, Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub(crate) const APP: &str = "sip:bridge@contoso.com";
/// Long enough for a loaded 2-core machine; tests wait for what must happen.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) fn uri(name: &str) -> SipUri {
    SipUri::new(&format!("sip:{name}@contoso.com")).unwrap()
}

pub(crate) async fn start(config: ServerConfig) -> SimServer {
    SimServer::start(config).await.unwrap()
}

/// Waits until `check` holds (polling), or panics after [`PATIENCE`].
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) struct Client<S> {
    pub stream: S,
    framer: Framer,
    next: u32,
}

/// What a read gave.
#[derive(Debug)]
pub(crate) enum Read {
    Frame(Frame),
    /// The server closed the connection.
    Closed,
    /// The bytes were not SIP.
    NotSip,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub(crate) fn new(stream: S) -> Self {
        Client {
            stream,
            framer: Framer::default(),
            next: 0,
        }
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    pub(crate) async fn send(&mut self, request: &Request) {
        self.write(&request.to_bytes()).await;
    }

    /// The next frame, the end of the stream, or bytes that are not SIP.
    pub(crate) async fn read(&mut self) -> Read {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut buf = [0u8; 8192];
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => return Read::Frame(frame),
                Ok(None) => {}
                Err(_) => return Read::NotSip,
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .expect("nothing from the simulator in time");
            match n {
                Ok(0) | Err(_) => return Read::Closed,
                Ok(n) => self.framer.push(&buf[..n]),
            }
        }
    }

    pub(crate) async fn message(&mut self) -> Message {
        loop {
            match self.read().await {
                Read::Frame(Frame::Message(m)) => return m,
                Read::Frame(_) => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    pub(crate) async fn response(&mut self) -> Response {
        match self.message().await {
            Message::Response(r) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    pub(crate) async fn request(&mut self) -> Request {
        match self.message().await {
            Message::Request(r) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    pub(crate) fn base(
        &mut self,
        method: Method,
        target: &str,
        to_tag: Option<&str>,
        call_id: &str,
    ) -> Request {
        self.next += 1;
        let n = self.next;
        let mut to = format!("<{target}>");
        if let Some(tag) = to_tag {
            to = format!("{to};tag={tag}");
        }
        Request::new(method.clone(), target)
            .unwrap()
            .header(
                "Via",
                format!("SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKit{n}"),
            )
            .unwrap()
            .header("From", format!("<{target}>;tag=f{n};epid=abc"))
            .unwrap()
            .header("To", to)
            .unwrap()
            .header("Call-ID", call_id)
            .unwrap()
            .header("CSeq", format!("{n} {method}"))
            .unwrap()
            .header("Contact", "<sip:bridge@127.0.0.1:5999;transport=tcp>")
            .unwrap()
    }

    pub(crate) fn options(&mut self) -> Request {
        let n = self.next + 1;
        self.base(
            Method::Options,
            "sip:pool.contoso.com",
            None,
            &format!("o{n}"),
        )
    }

    pub(crate) fn publish(&mut self, user: &SipUri, version: u32, availability: u32) -> Request {
        let body = Publish::state_in_containers(
            user.as_str(),
            STATIC_STATE_INSTANCE,
            &StateBody::user_state(availability),
            &[(2, version), (3, version)],
        )
        .to_xml();
        let n = self.next + 1;
        self.base(Method::Service, user.as_str(), None, &format!("p{n}"))
            .with_body(content_type::PUBLISH, body.into_bytes())
            .unwrap()
    }

    pub(crate) fn subscribe(&mut self, users: &[SipUri], expires: u32) -> Request {
        let body = BatchSubscribe {
            uri: APP.to_owned(),
            action: SubscribeAction::Subscribe,
            id: "1".to_owned(),
            resources: users.iter().map(ToString::to_string).collect(),
            categories: vec!["state".to_owned()],
        }
        .to_xml();
        let n = self.next + 1;
        self.base(Method::Subscribe, APP, None, &format!("s{n}"))
            .header("Event", "presence")
            .unwrap()
            .header("Supported", "ms-benotify, eventlist")
            .unwrap()
            .header("Expires", expires.to_string())
            .unwrap()
            .with_body(content_type::BATCH_SUBSCRIBE, body.into_bytes())
            .unwrap()
    }
}
