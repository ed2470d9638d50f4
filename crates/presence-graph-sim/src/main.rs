//! `presence-graph-sim`: the Microsoft Graph presence simulator as a command, for tests and
//! demos (not a server). It serves the token endpoint, Graph presence and the `/_sim/`
//! control API on one loopback address, prints where at start, and logs on stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use presence_graph_sim::{
    AppRegistration, Budget, GraphSimServer, ServerConfig, SimConfig, SimUser,
};
use tokio::sync::broadcast::error::RecvError;

const CONTROL: &str = "\
CONTROL API (same address, under /_sim/; no authentication: loopback only):
  GET    /_sim/users/{user}                  what Teams shows of a user (UPN or id), JSON
  PUT    /_sim/users/{user}/client-presence  the user's own Teams client state, JSON
                                             {\"availability\":\"Busy\",\"activity\":\"InACall\"}
  DELETE /_sim/users/{user}/client-presence  the user's Teams client signs out
  POST   /_sim/users                         add a user: {\"upn\":\"new@contoso.com\"}
  GET    /_sim/stats                         counters (requests, 401s, 429s per app, ...)
  GET    /_sim/writes                        every presence write, with its outcome
  POST   /_sim/faults                        set a fault, JSON, one of:
           {\"fault\":\"revoke_tokens\"}
           {\"fault\":\"set_client_secret\",\"client_id\":\"ID\",\"secret\":\"S\"}
           {\"fault\":\"fail_next\",\"count\":3,\"status\":503,\"retry_after\":2}
           {\"fault\":\"fail_for\",\"seconds\":10,\"status\":503}
           {\"fault\":\"throttle_for\",\"seconds\":10,\"retry_after\":5}
           {\"fault\":\"latency\",\"millis\":250}
           {\"fault\":\"stall\",\"on\":true}
  POST   /_sim/faults/clear                  every fault off
  POST   /_sim/shutdown                      stop the simulator

EXAMPLE:
  presence-graph-sim --users 5
  curl -s http://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/token \\
    -d grant_type=client_credentials -d client_id=ID -d client_secret=SECRET \\
    -d scope=https%3A%2F%2Fgraph.microsoft.com%2F.default
  curl -s -X PUT http://127.0.0.1:8443/_sim/users/agent1@contoso.com/client-presence \\
    -d '{\"availability\":\"DoNotDisturb\",\"activity\":\"Presenting\"}'";

/// A Microsoft Graph presence and Entra token-endpoint simulator for tests and demos (not a
/// server).
///
/// It issues client-credentials tokens and serves the presence API of Microsoft Teams
/// (setPresence sessions with expiry and the Available decay, preferred presence, status
/// messages, presence reads one by one and in batches of 650, users by id or UPN), with
/// permissions, a throttling budget per app answered 429 with Retry-After, and a fault
/// menu. Secrets and tokens are never logged.
#[derive(Debug, Parser)]
#[command(name = "presence-graph-sim", version, after_help = CONTROL)]
struct Args {
    /// The address to listen on (port 0: a free one).
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Generate N users: agent1@contoso.com .. agentN@contoso.com.
    #[arg(long, default_value_t = 10, value_name = "N")]
    users: usize,
    /// Add a user (repeatable); its object id is derived from the UPN.
    #[arg(long = "user", value_name = "UPN")]
    user: Vec<String>,
    /// Register an app (repeatable); without any, one default app is registered and its
    /// credentials are printed.
    #[arg(long = "app", value_name = "CLIENT_ID:SECRET", value_parser = parse_app)]
    app: Vec<AppArg>,
    /// The tenant's domain name (in the token URL).
    #[arg(long, default_value = SimConfig::DEFAULT_TENANT, value_name = "DOMAIN")]
    tenant: String,
    /// The tenant id, also accepted in the token URL (default: derived from the tenant).
    #[arg(long, value_name = "GUID")]
    tenant_id: Option<String>,
    /// How long tokens are valid (3599s, 60m, 1h, 500ms; a bare number is seconds).
    #[arg(long, default_value = "3599s", value_parser = parse_duration, value_name = "DURATION")]
    token_lifetime: Duration,
    /// Presence requests accepted per app in a sliding window: REQUESTS/WINDOW.
    #[arg(long, default_value = "1500/30s", value_parser = parse_budget, value_name = "N/DURATION")]
    budget: Budget,
    /// How long an app's Available/Available session shows Available before
    /// AvailableInactive.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    available_timeout: Duration,
    /// How long after it was set such a session shows Away.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    away_timeout: Duration,
    /// Seeds tokens and request ids (the same seed and inputs give the same run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Serve HTTPS with a throw-away self-signed CA for localhost and 127.0.0.1.
    #[arg(long)]
    tls: bool,
    /// With --tls: write the CA certificate (PEM) that clients must trust to FILE.
    #[arg(long, value_name = "FILE", requires = "tls")]
    ca_out: Option<PathBuf>,
    /// The log format on stderr (filter with RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Debug)]
struct AppArg {
    client_id: String,
    secret: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_app(text: &str) -> Result<AppArg, String> {
    match text.split_once(':') {
        Some((client_id, secret)) if !client_id.is_empty() && !secret.is_empty() => Ok(AppArg {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        }),
        _ => Err("expected CLIENT_ID:SECRET".to_owned()),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 3599s, 60m, 1h or 500ms"))?;
    let seconds = |factor: u64| {
        number
            .checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => Err(format!(
            "`{text}` is not a duration such as 3599s, 60m, 1h or 500ms"
        )),
    }
}

fn parse_budget(text: &str) -> Result<Budget, String> {
    let (requests, window) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not REQUESTS/WINDOW such as 1500/30s"))?;
    let requests: u32 = requests
        .trim()
        .parse()
        .map_err(|_| format!("`{requests}` is not a number of requests"))?;
    let window = parse_duration(window)?;
    if requests == 0 || window.is_zero() {
        return Err("the budget needs at least one request and a non-zero window".to_owned());
    }
    Ok(Budget { requests, window })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The simulator's settings from the arguments.
fn sim_config(args: &Args) -> SimConfig {
    let mut sim = SimConfig {
        tenant: args.tenant.clone(),
        token_lifetime: args.token_lifetime,
        budget: args.budget,
        available_timeout: args.available_timeout,
        away_timeout: args.away_timeout,
        seed: args.seed,
        ..SimConfig::default()
    }
    .with_generated_users(args.users);
    if let Some(tenant_id) = &args.tenant_id {
        sim.tenant_id.clone_from(tenant_id);
    } else if args.tenant != SimConfig::DEFAULT_TENANT {
        sim.tenant_id = SimUser::new(format!("tenant@{}", args.tenant)).id;
    }
    for upn in &args.user {
        if !sim.users.iter().any(|u| u.upn.eq_ignore_ascii_case(upn)) {
            sim.users.push(SimUser::new(upn.clone()));
        }
    }
    if !args.app.is_empty() {
        sim.apps = args
            .app
            .iter()
            .map(|a| AppRegistration::new(a.client_id.clone(), a.secret.clone()))
            .collect();
    }
    sim
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    let sim = sim_config(&args);
    let users = sim.users.len();
    let mut config = ServerConfig {
        sim,
        listen: args.listen,
        tls: None,
    };
    let mut ca_pem = None;
    if args.tls {
        match config.with_self_signed_tls() {
            Ok((with_tls, pki)) => {
                config = with_tls;
                ca_pem = Some(pki.ca_pem);
            }
            Err(error) => {
                eprintln!(
                    "presence-graph-sim: {}",
                    presence_model::error_chain(&error)
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if let (Some(path), Some(pem)) = (&args.ca_out, &ca_pem)
        && let Err(error) = std::fs::write(path, pem)
    {
        eprintln!(
            "presence-graph-sim: cannot write the CA to `{}`: {error}",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    let server = match GraphSimServer::start(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!(
                "presence-graph-sim: {}",
                presence_model::error_chain(&error)
            );
            return ExitCode::FAILURE;
        }
    };
    // Subscribe before the banner: a client may call as soon as it reads the address.
    let mut events = server.events();
    print_banner(&server, &args, users);
    let narration = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => tracing::info!(target: "presence_graph_sim", "{event}"),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(target: "presence_graph_sim", "{n} events not logged");
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated() => {}
        () = server.stopped() => {}
    }
    server.shutdown().await;
    narration.abort();
    ExitCode::SUCCESS
}

#[cfg(unix)]
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}

/// Where everything is, on stdout (one `key value` line each, for scripts).
fn print_banner(server: &GraphSimServer, args: &Args, users: usize) {
    let mut out = std::io::stdout().lock();
    let mut lines = vec![
        "presence-graph-sim: Microsoft Graph presence simulator (tests and demos, not a server)"
            .to_owned(),
        format!("authority  {}", server.authority()),
        format!("token-url  {}", server.token_url()),
        format!("graph-url  {}", server.graph_url()),
        format!("control    {}/_sim/", server.base_url()),
        format!("tenant     {} ({})", server.tenant(), server.tenant_id()),
    ];
    if args.app.is_empty() {
        lines.push(format!(
            "app        {} secret {} (the default app)",
            SimConfig::DEFAULT_CLIENT_ID,
            SimConfig::DEFAULT_CLIENT_SECRET
        ));
    } else {
        for app in &args.app {
            lines.push(format!("app        {} (secret as given)", app.client_id));
        }
    }
    lines.push(format!(
        "users      {users} (agent1@contoso.com .. agent{}@contoso.com generated, {} given)",
        args.users,
        args.user.len()
    ));
    if let Some(path) = &args.ca_out {
        lines.push(format!("ca         {}", path.display()));
    }
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_budgets() {
        assert_eq!(parse_duration("3599s"), Ok(Duration::from_secs(3599)));
        assert_eq!(parse_duration("3599"), Ok(Duration::from_secs(3599)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "s", "1d", "-1s", "1.5s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_budget("1500/30s"),
            Ok(Budget {
                requests: 1500,
                window: Duration::from_secs(30)
            })
        );
        for bad in ["1500", "0/30s", "10/0s", "x/30s", "10/x"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
        assert!(parse_app("id:secret:with:colons").is_ok_and(|a| a.secret == "secret:with:colons"));
        assert!(parse_app("id").is_err());
        assert!(parse_app(":secret").is_err());
    }

    #[test]
    fn arguments_make_the_tenant() {
        let args = Args::parse_from([
            "presence-graph-sim",
            "--users",
            "2",
            "--user",
            "boss@contoso.com",
            "--user",
            "AGENT1@contoso.com",
            "--app",
            "11111111-1111-4111-8111-111111111111:s3cret",
            "--tenant",
            "fabrikam.onmicrosoft.com",
        ]);
        let sim = sim_config(&args);
        assert_eq!(sim.users.len(), 3);
        assert_eq!(sim.apps.len(), 1);
        assert_eq!(
            sim.apps[0].client_id,
            "11111111-1111-4111-8111-111111111111"
        );
        assert_eq!(sim.tenant, "fabrikam.onmicrosoft.com");
        assert_ne!(sim.tenant_id, SimConfig::default().tenant_id);
    }
}
