//! Process, port, file and HTTP helpers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub(crate) use presence_testproc::{
    find_program, is_executable, make_unique_dir, process_state, read_lossy, send_signal, tail,
    unique_token, wait_timeout, write_file,
};

use crate::HarnessError;

/// A loopback TCP port free at the time of the call (bound on 127.0.0.1 to check, then
/// released), never handed out before by this process (nor by `presence-testkamailio` in
/// the same process: the set is `presence-testproc`'s).
///
/// # Errors
/// [`HarnessError::Proc`] after 100 unlucky attempts.
pub fn free_port() -> Result<u16, HarnessError> {
    Ok(presence_testproc::free_port(presence_testproc::Ports::Tcp)?)
}

/// An HTTP/1.0 request to a plain `http://host:port/path` URL (HTTP/1.0, so the answer is
/// neither chunked nor kept alive); returns the status and the body.
pub(crate) fn http(
    method: &str,
    url: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), HarnessError> {
    let what = format!("{method} {url}");
    let fail = |source: std::io::Error| HarnessError::Http {
        what: what.clone(),
        source,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HarnessError::Answer {
            what: what.clone(),
            detail: "only http:// URLs are supported by the harness's client".to_owned(),
        })?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr: SocketAddr = authority.parse().map_err(|_| HarnessError::Answer {
        what: what.clone(),
        detail: format!("`{authority}` is not an IP address and port"),
    })?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(fail)?;
    stream.set_read_timeout(Some(timeout)).map_err(fail)?;
    stream.set_write_timeout(Some(timeout)).map_err(fail)?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(fail)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| HarnessError::Answer {
            what: what.clone(),
            detail: format!("no HTTP status line in {:?}", tail(head, 1)),
        })?;
    Ok((status, body.to_owned()))
}
