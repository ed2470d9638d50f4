//! A minimal HTTP/1.1 client over tokio (plain or rustls), and helpers.

use std::net::SocketAddr;
use std::sync::Arc;

use presence_graph_sim::{GraphSimServer, SimConfig};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub(crate) const ID: &str = SimConfig::DEFAULT_CLIENT_ID;
pub(crate) const SECRET: &str = SimConfig::DEFAULT_CLIENT_SECRET;

/// An answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub(crate) fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Where to send: plain HTTP or HTTPS trusting a CA.
#[derive(Clone)]
pub(crate) struct Client {
    addr: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
}

impl Client {
    pub(crate) fn plain(addr: SocketAddr) -> Client {
        Client { addr, tls: None }
    }

    pub(crate) fn tls(addr: SocketAddr, config: Arc<ClientConfig>) -> Client {
        Client {
            addr,
            tls: Some(config),
        }
    }

    pub(crate) fn of(server: &GraphSimServer) -> Client {
        Client::plain(server.local_addr())
    }

    /// One request on a fresh connection (`Connection: close`).
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Reply> {
        let tcp = TcpStream::connect(self.addr).await?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        let raw = match &self.tls {
            None => exchange(tcp, &request).await?,
            Some(config) => {
                let name = ServerName::try_from("localhost").expect("a name");
                let stream = TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await?;
                exchange(stream, &request).await?
            }
        };
        parse(&raw)
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Reply {
        let auth = format!("Bearer {token}");
        self.send("GET", path, &[("Authorization", &auth)], b"")
            .await
            .expect("an answer")
    }

    pub(crate) async fn post_json(&self, path: &str, token: &str, body: &Value) -> Reply {
        let auth = format!("Bearer {token}");
        let body = serde_json::to_vec(body).expect("JSON");
        self.send(
            "POST",
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &body,
        )
        .await
        .expect("an answer")
    }

    pub(crate) async fn control(&self, method: &str, path: &str, body: &Value) -> Reply {
        let body = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).expect("JSON")
        };
        self.send(method, path, &[("Content-Type", "application/json")], &body)
            .await
            .expect("an answer")
    }

    pub(crate) async fn token_reply(&self, tenant: &str, client_id: &str, secret: &str) -> Reply {
        let body = format!(
            "grant_type=client_credentials&client_id={client_id}&client_secret={secret}\
             &scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        );
        self.send(
            "POST",
            &format!("/{tenant}/oauth2/v2.0/token"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await
        .expect("an answer")
    }

    pub(crate) async fn token(&self) -> String {
        let reply = self
            .token_reply("contoso.onmicrosoft.com", ID, SECRET)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> std::io::Result<Vec<u8>> {
    stream.write_all(request).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw).await {
        Ok(_) => Ok(raw),
        // A TLS peer that closes without close_notify: what was read is the answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(e),
    }
}

fn parse(raw: &[u8]) -> std::io::Result<Reply> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest).ok_or_else(|| bad("bad chunks"))?
    } else if let Some(length) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest.get(..length)
            .ok_or_else(|| bad("short body"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Waits (without asserting any time) until `condition` holds.
pub(crate) async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if condition() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the condition never held");
}
