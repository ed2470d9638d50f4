//! The `presence-sfb-sim` command.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use presence_sip::{Framer, Message};

const BIN: &str = env!("CARGO_BIN_EXE_presence-sfb-sim");

#[test]
fn help_explains_the_simulator_and_its_commands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "simulator",
        "not a server",
        "--listen",
        "--tls-cert",
        "--client-ca",
        "--no-benotify",
        "--seed",
        "set <sip-uri>",
        "quit",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
}

#[test]
fn bad_tls_files_are_reported() {
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("/nonexistent/cert.pem"), "{text}");
}

/// Kills the simulator if a test fails before it quits.
struct Running(Child);

impl Running {
    /// The simulator with `args`, its stdin and stdout piped.
    fn start(args: &[&str], stderr: Stdio) -> Running {
        Running(
            Command::new(BIN)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(stderr)
                .spawn()
                .unwrap(),
        )
    }
}

impl Running {
    /// Waits for the simulator to exit, checks that it succeeded, and returns its stdout.
    fn finish(&mut self) -> String {
        let status = self.0.wait().unwrap();
        assert!(status.success());
        let mut stdout = String::new();
        self.0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        stdout
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serves_tcp_takes_commands_and_logs_requests() {
    let mut running = Running::start(&["--listen", "127.0.0.1:0", "--seed", "3"], Stdio::piped());
    let child = &mut running.0;
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut banner = String::new();
    stderr.read_line(&mut banner).unwrap();
    let addr = banner
        .split(" on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {banner:?}"));

    // A request over TCP is answered and logged.
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(b"OPTIONS sip:pool SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:pool>\r\nCall-ID: cli1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut framer = Framer::default();
    let mut buf = [0u8; 4096];
    let response = loop {
        if let Some(Message::Response(r)) = framer.next_message().unwrap() {
            break r;
        }
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "closed");
        framer.push(&buf[..n]);
    };
    assert_eq!(response.status().as_u16(), 200);

    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "set sip:user@x 6500 \"In a call\"").unwrap();
    writeln!(stdin, "show sip:user@x").unwrap();
    writeln!(stdin, "bogus").unwrap();
    writeln!(stdin, "quit").unwrap();
    let stdout = running.finish();
    assert!(
        stdout.contains("sip:user@x shows 6500 [1033] \"In a call\""),
        "{stdout}"
    );
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert!(log.contains("<- OPTIONS sip:pool (Call-ID cli1)"), "{log}");
    assert!(log.contains("-> 200 OK to OPTIONS (Call-ID cli1)"), "{log}");
    assert!(log.contains("unknown command `bogus`"), "{log}");
}

#[test]
fn commands_written_at_once_run_in_order() {
    let mut running = Running::start(&["--listen", "127.0.0.1:0", "--quiet"], Stdio::null());
    let child = &mut running.0;
    // One write: the simulator reads the lines in one go and applies the `set`s in a row
    // together; what each `show` sees must still be the state set before it.
    let mut stdin = child.stdin.take().unwrap();
    let script = "set sip:u@x 3500\nset sip:u@x 6500\nshow sip:u@x\nset sip:v@x 9500\nset sip:u@x 15500\nbogus\nshow sip:u@x\nshow sip:v@x\nquit\n";
    stdin.write_all(script.as_bytes()).unwrap();
    let stdout = running.finish();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "sip:u@x set to 3500",
            "sip:u@x set to 6500",
            "sip:u@x shows 6500",
            "sip:v@x set to 9500",
            "sip:u@x set to 15500",
            "sip:u@x shows 15500",
            "sip:v@x shows 9500",
        ],
        "{stdout}"
    );
}
