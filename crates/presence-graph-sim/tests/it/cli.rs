//! The `presence-graph-sim` command.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use presence_graph_sim::SimConfig;
use serde_json::json;

use crate::support::{Client, ID, SECRET};

const BIN: &str = env!("CARGO_BIN_EXE_presence-graph-sim");

#[test]
fn help_explains_the_simulator_and_its_control_api() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "simulator",
        "not a server",
        "--listen",
        "--users",
        "--user <UPN>",
        "--app <CLIENT_ID:SECRET>",
        "--tenant",
        "--token-lifetime",
        "--budget",
        "--tls",
        "--ca-out",
        "--log-format",
        "/_sim/users/{user}",
        "client-presence",
        "/_sim/stats",
        "/_sim/faults",
        "fail_next",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        &["--budget", "many"][..],
        &["--token-lifetime", "forever"],
        &["--app", "no-secret"],
        &["--ca-out", "/tmp/x.pem"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
    }
}

/// Kills the simulator if a test fails before it stops.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the command; returns it and the banner's `key value` lines.
fn start(args: &[&str]) -> (Running, Vec<(String, String)>) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the banner ended early: {banner:?}"
        );
        let line = line.trim_end().to_owned();
        let (key, value) = line.split_once(' ').unwrap_or((&line, ""));
        banner.push((key.to_owned(), value.trim().to_owned()));
        if key == "users" {
            break;
        }
    }
    (Running(child), banner)
}

fn value<'a>(banner: &'a [(String, String)], key: &str) -> &'a str {
    banner
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {banner:?}"))
}

fn port(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_http_and_stops_over_the_control_api() {
    let (mut running, banner) = start(&["--users", "3", "--user", "boss@contoso.com"]);
    let authority = value(&banner, "authority").to_owned();
    assert!(authority.starts_with("http://127.0.0.1:"), "{authority}");
    assert_eq!(value(&banner, "graph-url"), format!("{authority}/v1.0"));
    assert!(value(&banner, "tenant").starts_with("contoso.onmicrosoft.com"));
    assert!(value(&banner, "app").starts_with(ID));
    assert!(value(&banner, "users").starts_with("4 "));

    let client = Client::plain(([127, 0, 0, 1], port(&authority)).into());
    let token = client.token().await;
    let user = client
        .get("/v1.0/users/boss@contoso.com", &token)
        .await
        .json();
    let id = user["id"].as_str().unwrap().to_owned();
    let reply = client
        .post_json(
            &format!("/v1.0/users/{id}/presence/setPresence"),
            &token,
            &json!({"sessionId": ID, "availability": "Busy", "activity": "InACall"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    let shown = client
        .control("GET", "/_sim/users/boss@contoso.com", &json!(null))
        .await
        .json();
    assert_eq!(shown["availability"], "Busy");
    assert_eq!(
        client
            .control("POST", "/_sim/shutdown", &json!(null))
            .await
            .status,
        202
    );

    let status = running.0.wait().unwrap();
    assert!(status.success());
    let mut log = String::new();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("token issued to"), "{log}");
    assert!(log.contains("setPresence by"), "{log}");
    assert!(!log.contains(SECRET), "a secret in the log:\n{log}");
    assert!(!log.contains(&token), "a token in the log:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_https_with_a_self_signed_ca() {
    let dir = std::env::temp_dir().join(format!("presence-graph-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let app = "99999999-9999-4999-8999-999999999999:cli-secret";
    let (_running, banner) = start(&[
        "--tls",
        "--ca-out",
        ca.to_str().unwrap(),
        "--app",
        app,
        "--log-format",
        "json",
        "--users",
        "1",
    ]);
    let authority = value(&banner, "authority").to_owned();
    assert!(authority.starts_with("https://localhost:"), "{authority}");
    assert!(
        !banner.iter().any(|(_, v)| v.contains("cli-secret")),
        "{banner:?}"
    );

    let pem = std::fs::read_to_string(&ca).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = Client::tls(([127, 0, 0, 1], port(&authority)).into(), Arc::new(config));
    let reply = client
        .token_reply(
            "contoso.onmicrosoft.com",
            "99999999-9999-4999-8999-999999999999",
            "cli-secret",
        )
        .await;
    assert_eq!(reply.status, 200);
    // The default app is not registered when apps are given.
    let reply = client
        .token_reply(
            "contoso.onmicrosoft.com",
            SimConfig::DEFAULT_CLIENT_ID,
            SECRET,
        )
        .await;
    assert_eq!(reply.json()["error"], "unauthorized_client");
    std::fs::remove_dir_all(&dir).unwrap();
}
