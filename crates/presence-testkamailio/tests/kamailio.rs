//! The harness against the real Kamailio and SIPp. These tests fail (they do not skip) when
//! kamailio, sqlite3 or sipp are missing: the error says what to install.

use std::time::{Duration, Instant};

use presence_testkamailio::{
    Kamailio, LoadOptions, Options, RawUa, Storage, Transport, WatchOptions, Watcher,
    process_alive, publish_load, publish_load_with, run_publisher, unix_now,
};

fn pidf(user: &str, tuple: &str, basic: &str, note: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:{user}@test.local\">\n\
         <tuple id=\"{tuple}\"><status><basic>{basic}</basic></status><note>{note}</note></tuple>\n\
         </presence>\n"
    )
}

fn start(options: Options) -> Kamailio {
    let started = Instant::now();
    let kamailio = Kamailio::start(options).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "kamailio up on {} in {:?} (pid {:?})",
        kamailio.addr(),
        started.elapsed(),
        kamailio.pid()
    );
    kamailio
}

const WAIT: Duration = Duration::from_secs(3);

/// One worker per transport: the requests of one client are handled in order (see
/// `Options::workers`), so exact sequences can be asserted.
fn serial() -> Options {
    Options::default().workers(1)
}

#[test]
fn raw_ua_publishes_modifies_and_removes() {
    let kamailio = start(serial());
    let mut ua = RawUa::new(&kamailio).unwrap();

    let first = ua
        .publish(
            "alice",
            &pidf("alice", "b1", "open", "Available"),
            600,
            None,
        )
        .unwrap();
    assert_eq!(first.status, 200, "{:?}", first.response);
    assert_eq!(first.expires, Some(600));
    let etag1 = first.etag.expect("SIP-ETag");

    let rows = kamailio
        .wait_live_presentity(WAIT, |rows| rows.iter().any(|r| r.etag == etag1))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].username, "alice");
    assert_eq!(rows[0].domain, "test.local");
    assert_eq!(rows[0].event, "presence");
    assert!(rows[0].body.as_deref().unwrap().contains("Available"));
    let expires = rows[0].expires - unix_now();
    assert!((590..=601).contains(&expires), "expires in {expires} s");

    // Modify: the same publication (one row), a new ETag, the new body.
    let modified = ua
        .publish(
            "alice",
            &pidf("alice", "b1", "closed", "Away"),
            600,
            Some(&etag1),
        )
        .unwrap();
    assert_eq!(modified.status, 200);
    let etag2 = modified.etag.expect("SIP-ETag");
    assert_ne!(etag2, etag1);
    let rows = kamailio
        .wait_live_presentity(WAIT, |rows| rows.iter().any(|r| r.etag == etag2))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].body.as_deref().unwrap().contains("Away"));

    // Refresh without a body: again a new ETag, the body stays.
    let refreshed = ua.publish("alice", "", 600, Some(&etag2)).unwrap();
    assert_eq!(refreshed.status, 200);
    let etag3 = refreshed.etag.expect("SIP-ETag");
    assert_ne!(etag3, etag2);
    let rows = kamailio
        .wait_live_presentity(WAIT, |rows| rows.iter().any(|r| r.etag == etag3))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(rows[0].body.as_deref().unwrap().contains("Away"));

    // Remove: the same ETag comes back with Expires: 0; the row goes at once (expired
    // rows, by contrast, wait for the clean_period timer).
    let removed = ua.publish("alice", "", 0, Some(&etag3)).unwrap();
    assert_eq!(removed.status, 200);
    assert_eq!(removed.etag.as_deref(), Some(etag3.as_str()));
    assert_eq!(removed.expires, Some(0));
    kamailio
        .wait_live_presentity(WAIT, <[_]>::is_empty)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(kamailio.presentity().unwrap().is_empty());
}

#[test]
fn a_second_publication_without_if_match_is_separate() {
    let kamailio = start(serial());
    let mut ua = RawUa::new(&kamailio).unwrap();
    let a = ua
        .publish("hank", &pidf("hank", "softphone", "open", "a"), 600, None)
        .unwrap();
    let b = ua
        .publish("hank", &pidf("hank", "bridge", "closed", "b"), 600, None)
        .unwrap();
    assert_eq!((a.status, b.status), (200, 200));
    assert_ne!(a.etag, b.etag);
    let rows = kamailio
        .wait_live_presentity(WAIT, |rows| rows.len() == 2)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(rows.iter().all(|r| r.username == "hank"));
}

/// PUBLISH until the answer is not the 500 SQLite gives under concurrent writes (it also
/// comes right after a remove, while Kamailio's other processes write).
fn publish_retrying_locked(
    ua: &mut RawUa,
    user: &str,
    body: &str,
    expires: u32,
    if_match: Option<&str>,
) -> u16 {
    let mut status = 0;
    for _ in 0..5 {
        status = ua.publish(user, body, expires, if_match).unwrap().status;
        if status != 500 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    status
}

#[test]
fn conditional_publish_errors() {
    let kamailio = start(serial());
    let mut ua = RawUa::new(&kamailio).unwrap();
    // No ETag and no body.
    assert_eq!(ua.publish("bob", "", 600, None).unwrap().status, 400);
    // An unknown ETag in Kamailio's own format ("a.<time>.<pid>.<n>.<n>"): 412.
    assert_eq!(
        ua.publish("bob", "", 600, Some("a.1.2.3.4"))
            .unwrap()
            .status,
        412
    );
    // Any other unknown ETag: 500 ("wrong etag" in the log).
    assert_eq!(ua.publish("bob", "", 600, Some("zzz")).unwrap().status, 500);
    assert!(kamailio.log().contains("wrong etag"));
    // A removed publication's ETag: 412.
    let first = ua
        .publish("bob", &pidf("bob", "b1", "open", "x"), 600, None)
        .unwrap();
    let etag = first.etag.unwrap();
    assert_eq!(ua.publish("bob", "", 0, Some(&etag)).unwrap().status, 200);
    assert_eq!(
        publish_retrying_locked(&mut ua, "bob", "", 600, Some(&etag)),
        412
    );
}

#[test]
fn an_expired_publication_can_be_refreshed_until_it_is_cleaned() {
    let kamailio = start(serial());
    let mut ua = RawUa::new(&kamailio).unwrap();
    let short = ua
        .publish("frank", &pidf("frank", "b1", "open", "x"), 1, None)
        .unwrap();
    assert_eq!((short.status, short.expires), (200, Some(1)));
    std::thread::sleep(Duration::from_millis(2100));
    // Expired, but the row stays until the clean_period timer (an hour here) runs.
    assert!(kamailio.live_presentity(unix_now()).unwrap().is_empty());
    assert_eq!(kamailio.presentity().unwrap().len(), 1);
    let refreshed = ua.publish("frank", "", 600, short.etag.as_deref()).unwrap();
    assert_eq!(refreshed.status, 200);
    kamailio
        .wait_live_presentity(WAIT, |rows| rows.len() == 1)
        .unwrap_or_else(|e| panic!("{e}"));
}

fn watcher_sees_published_body(transport: Transport) {
    let kamailio = start(Options::default());
    let started = Instant::now();
    let mut watcher = Watcher::subscribe(
        &kamailio,
        "carol",
        WatchOptions::default().transport(transport),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{transport:?} watcher subscribed in {:?}",
        started.elapsed()
    );
    let initial = watcher.notifies();
    assert_eq!(initial.len(), 1);
    assert_eq!(initial[0].cseq, 2);
    assert_eq!(initial[0].state(), "active");
    assert!(
        !initial[0].has_body(),
        "nothing is published yet: {}",
        initial[0].body
    );

    let mut ua = RawUa::new(&kamailio).unwrap();
    let answer = ua
        .publish(
            "carol",
            &pidf("carol", "bridge1", "open", "In a call"),
            600,
            None,
        )
        .unwrap();
    assert_eq!(answer.status, 200);
    let notify = watcher
        .wait_for(WAIT, |n| n.body.contains("In a call"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(notify.state(), "active");
    assert_eq!(notify.content_type.as_deref(), Some("application/pidf+xml"));
    assert!(
        notify.body.contains("<tuple id=\"bridge1\">"),
        "{}",
        notify.body
    );
    assert!(
        notify.body.contains("<basic>open</basic>"),
        "{}",
        notify.body
    );

    let all = watcher.unsubscribe().unwrap_or_else(|e| panic!("{e}"));
    // The final NOTIFY is `terminated` and still shows what is live.
    let last = all.last().unwrap();
    assert!(last.is_terminated(), "{}", last.subscription_state);
    assert!(last.body.contains("In a call"), "{}", last.body);
}

#[test]
fn watcher_keeps_up_with_quick_changes() {
    let kamailio = start(serial());
    let mut watcher = Watcher::subscribe(&kamailio, "gina", WatchOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ua = RawUa::new(&kamailio).unwrap();
    let mut etag: Option<String> = None;
    for i in 0..20 {
        let body = pidf("gina", "b1", "open", &format!("change {i}"));
        let answer = ua.publish("gina", &body, 600, etag.as_deref()).unwrap();
        assert_eq!(answer.status, 200, "change {i}: {:?}", answer.response);
        etag = answer.etag;
    }
    let notifies = watcher
        .wait_for_count(21, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        notifies[20].body.contains("change 19"),
        "{}",
        notifies[20].body
    );
    // Stop right away, NOTIFYs may still be on their way.
    let all = watcher.unsubscribe().unwrap_or_else(|e| panic!("{e}"));
    assert!(all.last().unwrap().is_terminated());
}

#[test]
fn udp_watcher_sees_the_published_body() {
    watcher_sees_published_body(Transport::Udp);
}

#[test]
fn tcp_watcher_sees_the_published_body() {
    watcher_sees_published_body(Transport::Tcp);
}

#[test]
fn sipp_publisher_round_trip() {
    let kamailio = start(Options::default());
    let mut watcher = Watcher::subscribe(&kamailio, "agent1", WatchOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let run = run_publisher(&kamailio, "agent1", Transport::Udp, true).unwrap();
    assert!(run.success(), "{}", run.output);
    // initial (empty), open/Busy, closed/Offline, open/Busy, then the remove: closed, no note.
    let notifies = watcher
        .wait_for_count(5, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let bodies: Vec<&str> = notifies.iter().map(|n| n.body.as_str()).collect();
    assert!(bodies[0].is_empty());
    assert!(bodies[1].contains("<basic>open</basic>") && bodies[1].contains("Busy"));
    assert!(bodies[2].contains("<basic>closed</basic>") && bodies[2].contains("Offline"));
    assert!(bodies[3].contains("<basic>open</basic>") && bodies[3].contains("rpid:busy"));
    assert!(bodies[4].contains("<basic>closed</basic>") && !bodies[4].contains("<note>"));
    assert!(notifies.windows(2).all(|w| w[1].cseq == w[0].cseq + 1));
}

#[test]
fn restart_keeps_port_and_publications() {
    let mut kamailio = start(Options::default());
    let port = kamailio.port();
    let pid = kamailio.pid().unwrap();
    let mut ua = RawUa::new(&kamailio).unwrap();
    let answer = ua
        .publish("dave", &pidf("dave", "b1", "open", "Here"), 600, None)
        .unwrap();
    assert_eq!(answer.status, 200);
    let etag = answer.etag.unwrap();
    let mut watcher = Watcher::subscribe(&kamailio, "dave", WatchOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));

    let started = Instant::now();
    kamailio.restart().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("restarted in {:?}", started.elapsed());
    assert_eq!(kamailio.port(), port);
    assert_ne!(kamailio.pid(), Some(pid));
    assert!(!process_alive(pid));

    // The publication is still there and still modifiable with its ETag.
    let rows = kamailio.live_presentity(unix_now()).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].etag, etag);
    let modified = ua
        .publish(
            "dave",
            &pidf("dave", "b1", "closed", "Gone"),
            600,
            Some(&etag),
        )
        .unwrap();
    assert_eq!(modified.status, 200, "{:?}", modified.response);
    // The subscription survived too: the watcher gets the change on its old dialog.
    let notify = watcher
        .wait_for(WAIT, |n| n.body.contains("Gone"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(notify.state(), "active");
    assert!(kamailio.log().contains("start #2"));
}

#[test]
fn publish_load_reports_counts() {
    let kamailio = start(Options::default());
    let started = Instant::now();
    let report =
        publish_load(&kamailio, 200, 400, Transport::Tcp).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{report:#?} in {:?}", started.elapsed());
    assert_eq!(report.exit_code, Some(0));
    assert_eq!(report.created, 400);
    assert_eq!(report.successful, 400);
    assert_eq!(report.failed, 0);
    // SIPp's own figures are read (never asserted as timings: a loaded machine is slower).
    assert!(report.elapsed > Duration::ZERO, "{:?}", report.elapsed);
    assert!(
        report.rate.is_finite() && report.rate > 0.0,
        "{}",
        report.rate
    );
    assert_eq!(report.repartition.iter().map(|(_, n)| n).sum::<u64>(), 400);
    kamailio
        .wait_live_presentity(WAIT, |rows| rows.len() == 400)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn memory_storage_lists_publications_and_takes_load() {
    let kamailio = start(Options::default().storage(Storage::Memory));
    let mut ua = RawUa::new(&kamailio).unwrap();
    let answer = ua
        .publish("erin", &pidf("erin", "b1", "open", "x"), 600, None)
        .unwrap();
    assert_eq!(answer.status, 200);
    let rows = kamailio.presentity().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].username, "erin");
    assert_eq!(rows[0].etag, answer.etag.unwrap());
    assert_eq!(rows[0].body, None);
    assert!(
        kamailio
            .sqlite("select * from presentity")
            .unwrap()
            .is_empty()
    );

    let report = publish_load_with(
        &kamailio,
        &LoadOptions::new(500, 500)
            .user_prefix("mem")
            .transport(Transport::Udp),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.successful, report.failed), (500, 0), "{report:#?}");
    kamailio
        .wait_live_presentity(WAIT, |rows| rows.len() == 501)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn drop_stops_every_process_and_removes_the_run_directory() {
    let kamailio = start(Options::default());
    let pids = kamailio.pids();
    assert!(pids.len() > 3, "main and workers: {pids:?}");
    assert!(
        kamailio
            .kamcmd(&["core.uptime"])
            .unwrap()
            .contains("uptime")
    );
    let dir = kamailio.run_dir().to_owned();
    assert!(dir.join("presence.sqlite").is_file());
    let started = Instant::now();
    drop(kamailio);
    eprintln!("stopped in {:?}", started.elapsed());
    for pid in pids {
        assert!(!process_alive(pid), "pid {pid} is still alive");
    }
    if std::env::var_os(presence_testkamailio::KEEP_ENV).is_none() {
        assert!(!dir.exists());
    }
}

#[test]
fn a_kamailio_that_dies_reports_its_log() {
    let started = Instant::now();
    let err = Kamailio::start(Options::default().define("WORKERS=not_a_number"))
        .expect_err("a broken configuration must not start");
    let text = err.to_string();
    assert!(text.starts_with("kamailio died"), "{text}");
    assert!(
        text.contains("kamailio.cfg"),
        "the log tail names the file: {text}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A blocking SIP-over-TLS client for the harness's own TLS checks: rustls (ring) with the
/// configuration given, one `OPTIONS` keep-alive, the first response's status line.
fn options_over_tls(
    kamailio: &Kamailio,
    config: std::sync::Arc<rustls::ClientConfig>,
    name: &str,
) -> Result<String, String> {
    use std::io::{Read, Write};
    let addr = kamailio.tls_addr().expect("started with TLS");
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "OPTIONS sip:{addr};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK-tls-probe;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@test.local>;tag=probe\r\n\
         To: <sip:{addr}>\r\n\
         Call-ID: tls-probe-{}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        local.port()
    );
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".to_owned());
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[test]
fn tls_listener_answers_on_its_own_port_and_keeps_it_across_a_restart() {
    use presence_testkamailio::TlsOptions;
    use presence_testpki::{ClientIdentity, TestPki};
    let pki = TestPki::localhost().unwrap();
    let tls = TlsOptions::from_pem(pki.server_cert_pem.clone(), pki.server_key_pem.clone());
    let mut kamailio = start(serial().tls(tls));
    let tls_port = kamailio.tls_port().expect("a TLS port");
    assert_ne!(tls_port, kamailio.port());
    assert_eq!(
        kamailio.tls_addr().unwrap().to_string(),
        format!("127.0.0.1:{tls_port}")
    );
    let cfg = std::fs::read_to_string(kamailio.tls_config_path()).unwrap();
    assert!(
        cfg.contains("method = TLSv1.2+") && cfg.contains("verify_certificate = no"),
        "{cfg}"
    );
    let client = pki.client_config(ClientIdentity::None).unwrap();
    for name in ["127.0.0.1", "localhost"] {
        let status =
            options_over_tls(&kamailio, client.clone(), name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, "SIP/2.0 200 Keepalive", "verified as {name}");
    }
    // The plain transports are still there.
    let mut ua = RawUa::new(&kamailio).unwrap();
    let answer = ua
        .publish("tess", &pidf("tess", "b1", "open", "x"), 600, None)
        .unwrap();
    assert_eq!(answer.status, 200);

    kamailio.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kamailio.tls_port(), Some(tls_port));
    let status = options_over_tls(&kamailio, client, "127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, "SIP/2.0 200 Keepalive");
}

#[test]
fn without_tls_there_is_no_tls_listener() {
    let kamailio = start(serial());
    assert_eq!(kamailio.tls_port(), None);
    assert_eq!(kamailio.tls_addr(), None);
    assert!(!kamailio.tls_config_path().exists());
    let sockets = kamailio.kamcmd(&["corex.list_sockets"]).unwrap();
    assert!(
        sockets.contains("udp") && sockets.contains("tcp"),
        "{sockets}"
    );
    assert!(!sockets.contains("tls"), "{sockets}");
}

#[test]
fn tls_with_required_client_certificates_refuses_clients_without_one() {
    use presence_testkamailio::TlsOptions;
    use presence_testpki::{ClientIdentity, TestPki};
    let pki = TestPki::localhost().unwrap();
    let tls = TlsOptions::from_pem(pki.server_cert_pem.clone(), pki.server_key_pem.clone())
        .require_client_cert(pki.ca_pem.clone());
    let kamailio = start(serial().tls(tls));
    let cfg = std::fs::read_to_string(kamailio.tls_config_path()).unwrap();
    assert!(
        cfg.contains("require_certificate = yes") && cfg.contains("ca_list = "),
        "{cfg}"
    );
    let trusted = pki.client_config(ClientIdentity::Trusted).unwrap();
    assert_eq!(
        options_over_tls(&kamailio, trusted, "127.0.0.1").unwrap_or_else(|e| panic!("{e}")),
        "SIP/2.0 200 Keepalive"
    );
    for identity in [ClientIdentity::None, ClientIdentity::Untrusted] {
        let client = pki.client_config(identity).unwrap();
        let refused = options_over_tls(&kamailio, client, "127.0.0.1");
        assert!(refused.is_err(), "{identity:?} got an answer: {refused:?}");
        eprintln!("{identity:?}: {}", refused.unwrap_err());
    }
}
