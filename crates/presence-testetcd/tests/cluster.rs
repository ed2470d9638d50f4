//! The harness against the real etcd: start, faults, restart, TLS, and a missing program.

use std::time::{Duration, Instant};

use presence_testetcd::{EtcdCluster, HarnessError, MemberState, Options, TlsOptions};

/// Puts `key` = `value` through member `i` and reads it back through member `j`.
fn put_and_read(etcd: &EtcdCluster, i: usize, j: usize, key: &str, value: &str) -> String {
    use base64_free::encode;
    let (status, body) = etcd
        .post(
            i,
            "/v3/kv/put",
            &format!(
                "{{\"key\":\"{}\",\"value\":\"{}\"}}",
                encode(key),
                encode(value)
            ),
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = etcd
        .post(
            j,
            "/v3/kv/range",
            &format!("{{\"key\":\"{}\"}}", encode(key)),
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Base64 of short ASCII test strings, so the test needs no codec crate.
mod base64_free {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(crate) fn encode(text: &str) -> String {
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn encodes() {
        assert_eq!(encode("a"), "YQ==");
        assert_eq!(encode("ab"), "YWI=");
        assert_eq!(encode("abc"), "YWJj");
        assert_eq!(encode("node-a"), "bm9kZS1h");
    }
}

#[test]
fn a_single_member_starts_serves_and_is_cleaned_up() {
    let etcd = EtcdCluster::single().unwrap();
    assert_eq!(etcd.len(), 1);
    assert!(etcd.health(0).unwrap());
    assert!(etcd.client_url(0).starts_with("http://127.0.0.1:"));
    let body = put_and_read(&etcd, 0, 0, "k", "v");
    assert!(body.contains(&base64_free::encode("v")), "{body}");
    assert_eq!(etcd.raft_leader().unwrap(), Some(0));
    let dir = etcd.dir().to_owned();
    let pid = etcd.pid(0).unwrap();
    assert!(dir.join("m0.etcd").is_dir());
    drop(etcd);
    assert!(!dir.exists(), "the directory is removed");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z")),
        "etcd {pid} was stopped"
    );
}

#[test]
fn three_members_survive_one_kill_lose_quorum_at_two_and_come_back() {
    let mut etcd = EtcdCluster::three().unwrap();
    let urls = etcd.client_urls();
    assert_eq!(urls.len(), 3);
    let leader = etcd.raft_leader().unwrap().expect("a raft leader");
    let follower = (leader + 1) % 3;
    // One member down: a quorum remains, writes go through.
    etcd.kill(follower).unwrap();
    assert_eq!(etcd.state(follower), MemberState::Killed);
    assert!(etcd.pid(follower).is_none());
    let body = put_and_read(&etcd, leader, leader, "one-down", "still-writable");
    assert!(
        body.contains(&base64_free::encode("still-writable")),
        "{body}"
    );
    // Two down: no quorum, the last one is not healthy.
    let other = 3 - leader - follower;
    etcd.kill(other).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while etcd.health(leader).unwrap_or(false) {
        assert!(
            Instant::now() < deadline,
            "the lone member still says healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Both back, on the same ports, with their data.
    etcd.restart(&[follower, other]).unwrap();
    assert_eq!(etcd.client_urls(), urls);
    for i in 0..3 {
        assert!(etcd.health(i).unwrap(), "member {i}");
    }
    let body = put_and_read(&etcd, follower, other, "all-back", "yes");
    assert!(body.contains(&base64_free::encode("yes")), "{body}");
    assert!(etcd.log(follower).contains("presence-testetcd: start #2"));
}

#[test]
fn a_frozen_member_answers_nothing_until_thawed() {
    let mut etcd = EtcdCluster::three().unwrap();
    etcd.freeze(1).unwrap();
    assert_eq!(etcd.state(1), MemberState::Frozen);
    let pid = etcd.pid(1).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(stat.contains(") T"), "{stat}");
    match etcd.health(1) {
        Err(HarnessError::Http { .. }) => {}
        other => panic!("a frozen member answered: {other:?}"),
    }
    etcd.thaw(1).unwrap();
    etcd.wait_all_healthy(&[1], Duration::from_secs(10))
        .unwrap();
    // Killing a frozen member works too.
    etcd.freeze(2).unwrap();
    etcd.kill(2).unwrap();
    assert!(matches!(
        etcd.freeze(2),
        Err(HarnessError::NotRunning { member: 2, .. })
    ));
}

#[test]
fn tls_and_passwords_can_be_required() {
    let pki = presence_testpki::TestPki::localhost().unwrap();
    let tls = TlsOptions {
        certificate_pem: pki.server_cert_pem.clone(),
        private_key_pem: pki.server_key_pem.clone(),
        client_ca_pem: Some(pki.ca_pem),
    };
    let etcd = EtcdCluster::start(Options::default().tls(tls)).unwrap();
    assert!(etcd.client_url(0).starts_with("https://127.0.0.1:"));
    assert_ne!(
        etcd.client_url(0),
        etcd.control_url(0).replace("http:", "https:")
    );
    assert!(etcd.health(0).unwrap());
    etcd.enable_auth("root-password").unwrap();
    // Without a token, a write is refused now.
    let (status, body) = etcd
        .post(0, "/v3/kv/put", "{\"key\":\"YQ==\",\"value\":\"YQ==\"}")
        .unwrap();
    assert_ne!(status, 200, "{body}");
    let (status, body) = etcd
        .post(
            0,
            "/v3/auth/authenticate",
            "{\"name\":\"root\",\"password\":\"root-password\"}",
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"token\""), "{body}");
    assert!(etcd.health(0).unwrap(), "health needs no token");
}

#[test]
fn a_missing_etcd_is_an_error_that_says_what_to_install() {
    let err = EtcdCluster::start(Options::default().program("/nonexistent/etcd")).unwrap_err();
    assert!(matches!(err, HarnessError::NotInstalled { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("apt-get install etcd-server"), "{text}");
    assert!(text.contains("/nonexistent/etcd"), "{text}");
}
