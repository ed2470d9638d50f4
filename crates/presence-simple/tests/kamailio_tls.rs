//! The SIP SIMPLE transport over **TLS** against a real Kamailio presence server on loopback
//! (`presence-testkamailio` with `Options::tls`: Kamailio's tls module, Debian's
//! `kamailio-tls-modules`), with a throw-away PKI from `presence-testpki`: the port's
//! conformance suite over TLS, the publication rules checked in Kamailio's `presentity`
//! table, NOTIFYs on a TLS subscription, and the refusals: a server certificate for another
//! name or from another CA, and a server that requires a client certificate. These tests
//! fail, with the reason, when Kamailio cannot be started.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use presence_model::{Availability, AvailabilityClass, Platform, SipUri, UserId};
use presence_simple::mapping::{Mapping, PushTarget};
use presence_simple::{SimpleSettings, SimpleTransport, pidf};
use presence_testkamailio::{Kamailio, Options, RawUa, TlsOptions, unix_now};
use presence_testpki::{TestPki, TestPkiFiles};
use presence_transport::testkit::{Harness, Shown, publication};
use presence_transport::{
    EventReceiver, PresenceTransport, TransportEvent, TransportStatus, event_channel,
};
use tokio::sync::Mutex;

/// How long a transport gets to connect over TLS, or to show that it does not.
const CONNECT: Duration = Duration::from_secs(10);

/// Kamailio with one worker per socket (TLS connections are served by the TCP worker):
/// its SQLite mode answers 500 (and can lose a removal) when two workers write at once.
/// `server_pki` signs the server certificate; with `client_ca`, Kamailio requires a client
/// certificate signed by it.
fn kamailio(server_pki: &TestPki, client_ca: Option<&str>) -> Kamailio {
    let mut tls = TlsOptions::from_pem(
        server_pki.server_cert_pem.clone(),
        server_pki.server_key_pem.clone(),
    );
    if let Some(ca) = client_ca {
        tls = tls.require_client_cert(ca);
    }
    Kamailio::start(Options::default().workers(1).tls(tls))
        .unwrap_or_else(|e| panic!("Kamailio with TLS must start for this test: {e}"))
}

/// The PKI's PEM files, in Kamailio's run directory (deleted with it).
fn pki_files(kamailio: &Kamailio, pki: &TestPki, name: &str) -> TestPkiFiles {
    let dir = kamailio.run_dir().join(name);
    std::fs::create_dir_all(&dir).expect("a directory for the bridge's PKI files");
    pki.write_to(&dir).expect("the PKI files are written")
}

fn toml_path(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

/// `[simple]` for Kamailio's TLS listener, trusting `ca`; `tls_extra` goes into `[tls]`.
fn settings(kamailio: &Kamailio, ca: &Path, extra: &str, tls_extra: &str) -> SimpleSettings {
    let server = kamailio.tls_addr().expect("Kamailio was started with TLS");
    toml::from_str(&format!(
        "server = \"{server}\"\ntransport = \"tls\"\ndomain = \"{}\"\n\
         reconnect-initial = \"50ms\"\nreconnect-max = \"300ms\"\nkeepalive = \"1s\"\n\
         request-timeout = \"2s\"\nretry-initial = \"50ms\"\nconnect-timeout = \"2s\"\n{extra}\n\
         [tls]\nca = {}\n{tls_extra}",
        kamailio.domain(),
        toml_path(ca),
    ))
    .expect("valid settings")
}

fn start(settings: &SimpleSettings) -> (SimpleTransport, EventReceiver) {
    let (events, receiver) = event_channel();
    let (transport, _task) =
        SimpleTransport::start(settings, Platform::simple(), events).expect("starts");
    (transport, receiver)
}

fn sip_user(name: &str) -> UserId {
    UserId::sip(
        Platform::simple(),
        SipUri::new(&format!("sip:{name}@test.local")).expect("a valid URI"),
    )
}

fn status(transport: &SimpleTransport) -> TransportStatus {
    transport
        .status()
        .into_iter()
        .next()
        .expect("one platform's status")
}

/// Waits for `Connected`; panics with every event seen (a refusal names its reason).
async fn wait_connected(events: &mut EventReceiver) {
    let mut seen = Vec::new();
    let connected = tokio::time::timeout(CONNECT, async {
        loop {
            match events.recv().await {
                Some(TransportEvent::Connected { .. }) => return,
                Some(other) => seen.push(format!("{other:?}")),
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(
        connected.is_ok(),
        "the transport connects to Kamailio over TLS; events: {seen:#?}"
    );
}

/// The reasons of the `Disconnected` events within `within`; panics on `Connected`.
async fn refusals(events: &mut EventReceiver, within: Duration) -> Vec<String> {
    let mut reasons = Vec::new();
    let _ = tokio::time::timeout(within, async {
        loop {
            match events.recv().await {
                Some(TransportEvent::Connected { peer, .. }) => {
                    panic!(
                        "the transport must not connect to {peer}; refusals so far: {reasons:#?}"
                    )
                }
                Some(TransportEvent::Disconnected { reason, .. }) => reasons.push(reason),
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    reasons
}

/// What the bridge's default mapping makes of a PIDF body, as a class.
fn class_of_body(body: &str) -> Shown {
    let document = pidf::read(body.as_bytes()).expect("Kamailio stores the PIDF as sent");
    let (raw, _) = Mapping::default().pull(&document);
    Shown::Class(Availability::from_wire(raw).class())
}

/// The class the default mapping shows once `p` is published (`Nothing` when it removes).
fn expected_class(p: &presence_model::Publication) -> Shown {
    match Mapping::default().push(p) {
        PushTarget::Publish(state) => {
            let body = pidf::write("sip:x@test.local", "t", "p", &state, &p.presence.activities);
            class_of_body(&body)
        }
        PushTarget::Remove | PushTarget::Nothing => Shown::Nothing,
    }
}

/// A second user agent sets `user`'s own presence over UDP (`RawUa` to Kamailio's `addr`),
/// as a phone would.
async fn publish_as_phone(addr: SocketAddr, user: &SipUri, availability: Availability) {
    let p = publication(u32::from(availability.get()));
    let PushTarget::Publish(state) = Mapping::default().push(&p) else {
        panic!("only presences that publish are set");
    };
    let body = pidf::write(
        user.as_str(),
        "phone",
        "phone-p",
        &state,
        &p.presence.activities,
    );
    let name = user.user().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut ua = RawUa::connect(addr, presence_testkamailio::DOMAIN).expect("a UDP socket");
        let answer = ua
            .publish(&name, &body, 600, None)
            .expect("Kamailio answers");
        assert!(
            answer.is_success(),
            "the second user agent's PUBLISH: {}",
            answer.status
        );
    })
    .await
    .expect("the publisher ran");
}

/// The conformance suite's harness: the transport over TLS, Kamailio's table as the peer's
/// view, a `RawUa` over UDP as the users' own phones.
struct Simple {
    kamailio: std::sync::Mutex<Kamailio>,
    transport: SimpleTransport,
    events: Mutex<EventReceiver>,
    domain: String,
}

impl Simple {
    async fn start() -> Simple {
        let pki = TestPki::localhost().expect("a test PKI");
        let kamailio = kamailio(&pki, None);
        let files = pki_files(&kamailio, &pki, "bridge-pki");
        let (transport, events) = start(&settings(&kamailio, &files.ca, "", ""));
        Simple {
            domain: kamailio.domain().to_owned(),
            kamailio: std::sync::Mutex::new(kamailio),
            transport,
            events: Mutex::new(events),
        }
    }

    fn kamailio(&self) -> std::sync::MutexGuard<'_, Kamailio> {
        self.kamailio.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Harness for Simple {
    fn transport(&self) -> Arc<dyn PresenceTransport> {
        Arc::new(self.transport.clone())
    }

    fn platform(&self) -> Platform {
        Platform::simple()
    }

    fn user(&self, n: usize) -> UserId {
        UserId::sip(
            Platform::simple(),
            SipUri::new(&format!("sip:user{n}@{}", self.domain)).expect("a valid URI"),
        )
    }

    async fn next_event(&self, wait: Duration) -> Option<TransportEvent> {
        let mut events = self.events.lock().await;
        if let Some(event) = events.try_recv() {
            return Some(event);
        }
        tokio::time::timeout(wait, events.recv())
            .await
            .ok()
            .flatten()
    }

    async fn shows(&self, user: &UserId) -> Shown {
        let name = user.sip_uri().expect("SIP users").user().to_owned();
        let live = self
            .kamailio()
            .live_presentity(unix_now())
            .expect("the presentity table reads");
        let mine: Vec<_> = live.iter().filter(|p| p.username == name).collect();
        assert!(
            mine.len() <= 1,
            "more than one live publication for {name}: {mine:?}"
        );
        match mine.first().and_then(|p| p.body.as_deref()) {
            Some(body) => class_of_body(body),
            None => Shown::Nothing,
        }
    }

    fn expected(&self, p: &presence_model::Publication) -> Shown {
        expected_class(p)
    }

    fn reported(&self, set: Availability) -> AvailabilityClass {
        match expected_class(&publication(u32::from(set.get()))) {
            Shown::Class(class) => class,
            Shown::Nothing => AvailabilityClass::Offline,
        }
    }

    async fn set_user_presence(&self, user: &UserId, availability: Availability) {
        let uri = user.sip_uri().expect("SIP users");
        let addr = self.kamailio().addr();
        publish_as_phone(addr, uri, availability).await;
    }

    async fn drop_connection(&self) {
        // A server restart ends every TCP (and so TLS) connection.
        self.kamailio()
            .restart()
            .expect("Kamailio restarts on the same ports");
    }

    fn report_within(&self) -> Duration {
        Duration::from_secs(2)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

mod conformance {
    presence_transport::conformance_suite!(super::Simple::start());
}

/// Kamailio's open TLS connections (`kamcmd tls.list`).
fn tls_connections(kamailio: &Kamailio) -> String {
    kamailio
        .kamcmd(&["tls.list"])
        .unwrap_or_else(|e| panic!("kamcmd tls.list: {e}"))
}

/// Over TLS, the server's certificate verified for `127.0.0.1` (an IP address SAN): the
/// transport connects, Kamailio lists the TLS connection, and each user has one publication
/// that the bridge modifies in place (the same row, a new ETag) and removes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_modifies_and_removes_over_tls() {
    let pki = TestPki::localhost().expect("a test PKI");
    let kamailio = kamailio(&pki, None);
    let files = pki_files(&kamailio, &pki, "bridge-pki");
    let (transport, mut events) = start(&settings(&kamailio, &files.ca, "", ""));
    wait_connected(&mut events).await;
    let status = status(&transport);
    assert!(status.connected, "{status:?}");
    assert_eq!(status.peer, kamailio.tls_addr().unwrap().to_string());
    let listed = tls_connections(&kamailio);
    assert!(
        listed.contains("127.0.0.1") && listed.contains(&kamailio.tls_port().unwrap().to_string()),
        "Kamailio lists the bridge's TLS connection: {listed}"
    );

    let alice = sip_user("alice");
    // Kamailio answers before its database shows the change: wait for what must come.
    let alice_rows = |n: usize| {
        move |rows: &[presence_testkamailio::Presentity]| {
            rows.iter().filter(|p| p.username == "alice").count() == n
        }
    };
    transport
        .publish(&alice, &publication(3500))
        .await
        .expect("the publication is accepted over TLS");
    let first = kamailio
        .wait_live_presentity(Duration::from_secs(2), |rows| rows.len() == 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first[0].username, "alice");
    assert_eq!(
        class_of_body(first[0].body.as_deref().unwrap()),
        expected_class(&publication(3500))
    );

    transport
        .publish(&alice, &publication(6500))
        .await
        .expect("the modify is accepted over TLS");
    let modified = kamailio
        .wait_live_presentity(Duration::from_secs(2), |rows| {
            rows.iter().any(|p| {
                p.body
                    .as_deref()
                    .is_some_and(|b| class_of_body(b) == expected_class(&publication(6500)))
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(modified.len(), 1, "modified in place: {modified:?}");
    assert_ne!(modified[0].etag, first[0].etag, "a modify gets a new ETag");

    transport
        .publish(&alice, &publication(18000))
        .await
        .expect("Offline removes the publication over TLS");
    kamailio
        .wait_live_presentity(Duration::from_secs(2), alice_rows(0))
        .unwrap_or_else(|e| panic!("removed: {e}"));

    transport
        .publish(&alice, &publication(15500))
        .await
        .expect("a new publication");
    kamailio
        .wait_live_presentity(Duration::from_secs(2), alice_rows(1))
        .unwrap_or_else(|e| panic!("published anew: {e}"));
    transport.unpublish(&alice).await.expect("unpublish");
    kamailio
        .wait_live_presentity(Duration::from_secs(2), alice_rows(0))
        .unwrap_or_else(|e| panic!("unpublished: {e}"));
    transport.shutdown(Duration::from_secs(1)).await;
}

/// `[tls] server-name` names what is verified: the certificate's DNS name `localhost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_name_setting_is_what_is_verified() {
    let pki = TestPki::localhost().expect("a test PKI");
    let kamailio = kamailio(&pki, None);
    let files = pki_files(&kamailio, &pki, "bridge-pki");
    let (transport, mut events) = start(&settings(
        &kamailio,
        &files.ca,
        "",
        "server-name = \"localhost\"\n",
    ));
    wait_connected(&mut events).await;
    transport
        .publish(&sip_user("bob"), &publication(3500))
        .await
        .expect("published");
    assert_eq!(kamailio.live_presentity(unix_now()).unwrap().len(), 1);
    transport.shutdown(Duration::from_secs(1)).await;

    let (transport, mut events) = start(&settings(
        &kamailio,
        &files.ca,
        "",
        "server-name = \"sip.elsewhere.test\"\n",
    ));
    let reasons = refusals(&mut events, Duration::from_secs(2)).await;
    let reason = reasons.first().expect("a refusal is reported");
    assert!(
        reason.contains("sip.elsewhere.test") && reason.contains("certificate"),
        "{reason}"
    );
    transport.shutdown(Duration::from_secs(1)).await;
}

/// A subscription made over TLS: Kamailio's NOTIFYs come back on the bridge's TLS
/// connection and map onto the SfB scale; the presence is set by another user agent over
/// UDP. Kamailio's first NOTIFY (nothing published) is Offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_arrive_over_tls() {
    let pki = TestPki::localhost().expect("a test PKI");
    let kamailio = kamailio(&pki, None);
    let files = pki_files(&kamailio, &pki, "bridge-pki");
    let (transport, mut receiver) = start(&settings(&kamailio, &files.ca, "", ""));
    wait_connected(&mut receiver).await;
    let user = sip_user("watched");
    transport
        .subscribe(std::slice::from_ref(&user))
        .await
        .unwrap();
    let mut next_presence = async || {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(TransportEvent::Presence(p)) = receiver.recv().await {
                    return p;
                }
            }
        })
        .await
        .expect("a presence update")
    };
    let first = next_presence().await;
    assert_eq!(first.user, user);
    assert_eq!(first.raw_availability, 18000, "nothing published yet");
    let addr = kamailio.addr();
    let publish = move |body: String| {
        let mut ua = RawUa::connect(addr, "test.local").unwrap();
        let answer = ua.publish("watched", &body, 600, None).unwrap();
        assert!(answer.is_success(), "{}", answer.status);
    };
    let body = r#"<?xml version="1.0"?><p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" xmlns:d="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:watched@test.local"><p:tuple id="phone"><p:status><p:basic>open</p:basic></p:status></p:tuple><d:person id="x"><r:activities><r:on-the-phone/></r:activities><d:note xml:lang="en">On a call</d:note></d:person></p:presence>"#;
    tokio::task::spawn_blocking(move || publish(body.to_owned()))
        .await
        .unwrap();
    let busy = next_presence().await;
    assert_eq!(busy.user, user);
    assert_eq!(busy.raw_availability, 6500);
    assert_eq!(busy.activity.as_deref(), Some("On a call"));
    let watchers = kamailio.kamcmd(&["presence.subscription_list"]);
    eprintln!("subscriptions: {watchers:?}");
    transport.shutdown(Duration::from_secs(1)).await;
}

/// The transport must not connect, and must say why: `Disconnected` names the certificate
/// problem, and so does `status()`. Kamailio gets no publication.
async fn assert_refused(kamailio: &Kamailio, settings: &SimpleSettings, why: &[&str]) {
    let (transport, mut events) = start(settings);
    let publishing = {
        let transport = transport.clone();
        tokio::spawn(async move {
            transport
                .publish(&sip_user("mallory"), &publication(3500))
                .await
        })
    };
    let reasons = refusals(&mut events, Duration::from_secs(2)).await;
    assert!(
        reasons.len() >= 2,
        "the transport keeps trying (and reporting): {reasons:#?}"
    );
    for reason in &reasons {
        assert!(
            why.iter().all(|w| reason.contains(w)),
            "a refusal names {why:?}: {reason}"
        );
    }
    let status = status(&transport);
    assert!(!status.connected, "{status:?}");
    let detail = status.detail.as_deref().unwrap_or_default();
    assert!(
        why.iter().all(|w| detail.contains(w)),
        "status() says why ({why:?}): {status:?}"
    );
    eprintln!("refused: {detail}");
    assert!(
        !publishing.is_finished() || publishing.await.is_ok_and(|r| r.is_err()),
        "no publication succeeds without a connection"
    );
    assert!(
        kamailio.live_presentity(unix_now()).unwrap().is_empty(),
        "nothing reached Kamailio"
    );
    transport.shutdown(Duration::from_secs(1)).await;
}

/// A server certificate from the trusted CA, but for another name than the server's
/// (`127.0.0.1`): refused, "not valid for name".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_for_another_name_is_refused() {
    let pki = TestPki::new(&["sip.elsewhere.test"]).expect("a test PKI");
    let kamailio = kamailio(&pki, None);
    let files = pki_files(&kamailio, &pki, "bridge-pki");
    assert_refused(
        &kamailio,
        &settings(&kamailio, &files.ca, "", ""),
        &["TLS handshake", "certificate", "127.0.0.1"],
    )
    .await;
}

/// A server certificate for the right name, signed by a CA the bridge does not trust:
/// refused, "UnknownIssuer".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_refused() {
    let pki = TestPki::localhost().expect("a test PKI");
    let kamailio = kamailio(&pki, None);
    let files = pki_files(&kamailio, &pki, "bridge-pki");
    assert_refused(
        &kamailio,
        &settings(&kamailio, &files.other_ca, "", ""),
        &["TLS handshake", "certificate", "UnknownIssuer"],
    )
    .await;
}

/// A server certificate that is a self-signed CA (CA:TRUE), trusted as it is in `ca`:
/// refused all the same (a CA certificate may not be a server's own), and the reason says
/// so in plain words and what to issue instead, not just `CaUsedAsEndEntity`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_ca_as_the_servers_certificate_is_explained() {
    let server = presence_testpki::ServerTls::self_signed(&["localhost", "127.0.0.1"], true)
        .expect("a self-signed CA certificate");
    let kamailio = Kamailio::start(Options::default().workers(1).tls(TlsOptions::from_pem(
        server.cert_chain_pem.clone(),
        server.key_pem.clone(),
    )))
    .unwrap_or_else(|e| panic!("Kamailio with TLS must start for this test: {e}"));
    let ca = kamailio.run_dir().join("self-signed-ca.pem");
    std::fs::write(&ca, &server.cert_chain_pem).expect("the certificate is written");
    assert_refused(
        &kamailio,
        &settings(&kamailio, &ca, "", ""),
        &[
            "TLS handshake",
            "the presence server presented a CA certificate as its own (self-signed with CA:TRUE",
            "issue the presence server a leaf certificate (CA:FALSE, for server authentication) signed by that CA",
            "`[simple.tls] ca`",
        ],
    )
    .await;
}

/// Kamailio requiring client certificates (`verify_certificate`/`require_certificate`):
/// the bridge's `[tls] certificate` + `private-key` from the CA Kamailio trusts connect and
/// publish; without a certificate, or with one from another CA, the transport never
/// becomes ready and says which alert Kamailio sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_requires_a_client_certificate_gets_the_configured_one() {
    let pki = TestPki::localhost().expect("a test PKI");
    let kamailio = kamailio(&pki, Some(&pki.ca_pem));
    let files = pki_files(&kamailio, &pki, "bridge-pki");
    let identity = |cert: &PathBuf, key: &PathBuf| {
        format!(
            "certificate = {}\nprivate-key = {}\n",
            toml_path(cert),
            toml_path(key)
        )
    };

    let trusted = identity(&files.client_cert, &files.client_key);
    let (transport, mut events) = start(&settings(&kamailio, &files.ca, "", &trusted));
    wait_connected(&mut events).await;
    transport
        .publish(&sip_user("carol"), &publication(9500))
        .await
        .expect("published with a client certificate");
    assert_eq!(kamailio.live_presentity(unix_now()).unwrap().len(), 1);
    transport.unpublish(&sip_user("carol")).await.unwrap();
    transport.shutdown(Duration::from_secs(1)).await;

    assert_refused(
        &kamailio,
        &settings(&kamailio, &files.ca, "", ""),
        &["CertificateRequired"],
    )
    .await;
    let untrusted = identity(&files.other_client_cert, &files.other_client_key);
    assert_refused(
        &kamailio,
        &settings(&kamailio, &files.ca, "", &untrusted),
        &["UnknownCA"],
    )
    .await;
}
