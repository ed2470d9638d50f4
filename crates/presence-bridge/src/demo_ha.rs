//! `presence-bridge demo --ha`: a failover in one command. A private one-member etcd (the
//! `etcd` on PATH, started in a temporary directory and stopped at the end), the SfB
//! simulator, and two bridges in this process as a hot-standby pair with a 2 s lease. A
//! contact-centre client talks to both; the leader crashes mid-shift; the standby takes
//! over, and the simulator ends showing every agent's latest state.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use presence_model::SipUri;
use presence_sfb_sim::{ServerConfig, SimServer};
use presence_testetcd::{EtcdCluster, HarnessError, Options};
use presence_tlib::{ClientMessage, ClientRequest, Extensions, ServerEvent};
use tokio_tungstenite::tungstenite::Message;

use crate::DemoArgs;
use crate::run::{Bridge, Start, metrics_recorder};

const MAP: &[u8] = include_bytes!("../../../examples/agent-states.xml");
const AGENTS: usize = 3;

fn config(pool: &str, etcd: &str, node: &str) -> String {
    let mut text = format!(
        r#"[options.TServer]
presence-profile = "Push"

[dn.Push]
type = "VoIPService"
annex.TServer = {{ service-type = "presence-profile", agent-presence-map = "agent-states.xml", aggregated-states = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7=INCALL, 8=INCALL, 9=INCALL, 10=INCALL, 11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS" }}

[sfb]
pool = "{pool}"
transport = "tcp"
application-uri = "sip:presence-bridge@contoso.com"

[cti]
listen = "127.0.0.1:0"

[ha]
endpoints = ["{etcd}"]
node-id = "{node}"
election = "presence-bridge/demo"
lease-ttl = "2s"
request-timeout = "300ms"
retry-initial = "100ms"
"#
    );
    for i in 1..=AGENTS {
        text.push_str(&format!(
            "\n[dn.\"500{i}\"]\ntype = \"Extension\"\nuri = \"sip:agent{i}@contoso.com\"\n"
        ));
    }
    text
}

async fn start(pool: &str, etcd: &str, node: &str) -> Result<Bridge> {
    let text = config(pool, etcd, node);
    let mut read_map = |_: &Path| Ok(MAP.to_vec());
    let prepared =
        crate::files::prepare_with(Path::new("demo-ha.toml"), &text, None, &mut read_map)
            .map_err(|d| anyhow::anyhow!("the built-in configuration is invalid: {d}"))?;
    Bridge::start(Start {
        prepared,
        config_path: None,
        admin: false,
        metrics: metrics_recorder()?,
    })
    .await
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One contact-centre client's connection to one node.
struct Link {
    ws: Ws,
    next: u64,
}

impl Link {
    async fn connect(bridge: &Bridge) -> Result<Link> {
        let url = format!("ws://{}{}", bridge.cti_addr, presence_cti::PATH);
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        Ok(Link { ws, next: 0 })
    }

    /// Sends `body` and waits for its answer.
    async fn request(&mut self, body: ClientRequest) -> Result<ServerEvent> {
        self.next += 1;
        let reference = self.next;
        self.ws
            .send(Message::text(ClientMessage::new(reference, body).to_json()))
            .await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .context("no answer within 10 s")?
                .context("the link closed")??;
            if let Message::Text(text) = frame {
                let event = ServerEvent::from_json(&text)?;
                if event.reference_id() == Some(reference) {
                    return Ok(event);
                }
            }
        }
    }
}

/// Sends `body` to every node the client is connected to.
async fn to_all(links: &mut [Link], body: &ClientRequest) -> Result<()> {
    for link in links {
        link.request(body.clone()).await?;
    }
    Ok(())
}

fn dn(i: usize) -> presence_model::DnNumber {
    format!("500{i}").parse().expect("a DN")
}

fn agent(i: usize) -> SipUri {
    SipUri::new(&format!("sip:agent{i}@contoso.com")).expect("a SIP URI")
}

fn shows(sim: &SimServer) -> String {
    (1..=AGENTS)
        .map(|i| {
            let shown = sim.shows(&agent(i)).map(|s| s.availability);
            format!(
                "agent{i} {}",
                shown.map_or_else(|| "-".to_owned(), |a| a.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Polls until `check` holds (at most `limit`); the time it took.
async fn until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

fn role(bridge: &Bridge) -> String {
    bridge
        .elector
        .as_ref()
        .map_or_else(|| "alone".to_owned(), |e| e.role().to_string())
}

pub(crate) async fn run(args: &DemoArgs) -> Result<ExitCode> {
    let step = Duration::from_millis(args.step_ms);
    println!("presence-bridge demo --ha: a private etcd, the SfB simulator and two bridges as a");
    println!(
        "hot-standby pair (lease TTL 2 s), on loopback. The leader crashes; the standby takes over.\n"
    );
    let mut options = Options::default();
    if let Some(program) = &args.etcd {
        options = options.program(program);
    }
    let etcd = match tokio::task::spawn_blocking(move || EtcdCluster::start(options)).await? {
        Ok(etcd) => etcd,
        Err(error @ HarnessError::NotInstalled { .. }) => {
            eprintln!("demo --ha needs etcd v3: {error}");
            return Ok(ExitCode::from(1));
        }
        Err(error) => return Err(error).context("cannot start the demo's etcd"),
    };
    let endpoint = etcd.client_url(0);
    println!(
        "etcd (one member) on {endpoint}, data in {}",
        etcd.dir().display()
    );
    let sim = SimServer::start(ServerConfig::default())
        .await
        .context("cannot start the SfB simulator")?;
    let pool = sim.local_addr().to_string();
    println!("SfB simulator on {pool}");

    let first = start(&pool, &endpoint, "bridge-1").await?;
    until(Duration::from_secs(10), || {
        first
            .elector
            .as_ref()
            .is_some_and(|e| e.fencing().is_some())
    })
    .await
    .context("bridge-1 did not become leader within 10 s")?;
    let second = start(&pool, &endpoint, "bridge-2").await?;
    until(Duration::from_secs(10), || {
        second.elector.as_ref().is_some_and(|e| {
            matches!(
                e.role(),
                presence_ha::Role::Standby {
                    leader: Some(_),
                    ..
                }
            )
        })
    })
    .await
    .context("bridge-2 did not see the leader within 10 s")?;
    println!("bridge-1: {}", role(&first));
    println!("bridge-2: {}", role(&second));

    let mut links = vec![Link::connect(&first).await?, Link::connect(&second).await?];
    println!("\nA contact-centre client connects to both and sends every message to both.");
    for i in 1..=AGENTS {
        let login = ClientRequest::RequestAgentLogin {
            this_dn: dn(i),
            agent_id: format!("agent{i}").parse()?,
            workmode: None,
            extensions: Extensions::new(),
        };
        to_all(&mut links, &login).await?;
        to_all(
            &mut links,
            &ClientRequest::RequestAgentReady { this_dn: dn(i) },
        )
        .await?;
    }
    until(Duration::from_secs(10), || {
        (1..=AGENTS).all(|i| sim.shows(&agent(i)).is_some_and(|s| s.availability == 3501))
    })
    .await
    .context("SfB did not show the agents Ready")?;
    println!("SfB shows (published by bridge-1): {}", shows(&sim));
    tokio::time::sleep(step).await;

    println!("\nbridge-1 crashes (no resignation: its lease runs out in etcd).");
    let crashed = Instant::now();
    first.crash().await;
    links.remove(0);
    println!("Meanwhile agent1 takes a call and agent2 goes NotReady, told to bridge-2 only.");
    to_all(
        &mut links,
        &ClientRequest::EventEstablished {
            this_dn: dn(1),
            conn_id: "call-1".parse()?,
        },
    )
    .await?;
    to_all(
        &mut links,
        &ClientRequest::RequestAgentNotReady {
            this_dn: dn(2),
            workmode: None,
        },
    )
    .await?;
    let elector = second.elector.clone().context("bridge-2 has [ha]")?;
    until(Duration::from_secs(15), || elector.fencing().is_some())
        .await
        .context("bridge-2 did not take over within 15 s")?;
    let took_over = crashed.elapsed();
    println!(
        "bridge-2: {} after {} ms",
        role(&second),
        took_over.as_millis()
    );
    until(Duration::from_secs(15), || {
        sim.shows(&agent(1)).is_some_and(|s| s.availability == 7001)
            && sim.shows(&agent(2)).is_some_and(|s| s.availability == 6001)
            && sim.shows(&agent(3)).is_some_and(|s| s.availability == 3501)
    })
    .await
    .context("SfB did not converge on the latest states within 15 s")?;
    println!(
        "SfB shows (published by bridge-2, {} ms after the crash): {}",
        crashed.elapsed().as_millis(),
        shows(&sim)
    );
    println!("\ndemo finished");
    second.shutdown().await;
    sim.shutdown().await;
    drop(etcd);
    Ok(ExitCode::SUCCESS)
}
