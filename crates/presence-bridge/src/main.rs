//! `presence-bridge`: keeps contact-centre agent state and Skype for Business presence in
//! step. This binary is thin: it parses the command line, reads files, and hands the rest to
//! the library crates.

mod admin;
mod check;
mod demo;
mod demo_ha;
mod explain;
mod files;
mod ha;
mod run;
mod transports;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use presence_model::{AgentState, DeviceState};

/// Keeps contact-centre agent state and Skype for Business presence in step.
///
/// Pull mode maps a user's SfB availability to DND on the agent's DN (EventDNDOn /
/// EventDNDOff); push mode maps (agent state, device state) to an aggregated state and
/// publishes its availability and activity texts to SfB. Profiles live on VoIP Service DNs
/// and are chosen per login, per DN or globally. See docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "presence-bridge", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge: connect to the SfB pool, serve the contact-centre link and the admin
    /// API, keep presence in step until SIGTERM or Ctrl-C.
    ///
    /// SIGHUP (or POST /v1/reload on the admin API) re-reads the configuration and every
    /// agent-presence map: a valid one applies to every DN at once; an invalid one is
    /// refused with its errors and the running one stays. Logs go to standard error.
    Run(RunArgs),
    /// See both modes work with no setup: an in-process SfB simulator, the bridge on a
    /// built-in configuration, and a scripted contact-centre day. Ends by itself.
    Demo(DemoArgs),
    /// Validate a configuration and its agent-presence maps, and print what it does.
    ///
    /// Prints each profile's mode and its whole mapping table (the 15 combinations with
    /// their aggregated state, availability and texts per LCID; or the DND ranges), then the
    /// Extension DNs and the profile each resolves to. Errors and warnings carry
    /// file:line:column. Exit status: 0 when the configuration is valid (warnings allowed),
    /// 1 when it is not, 2 for a usage error.
    Check(CheckArgs),
    /// Show what the bridge would do for one DN and one situation.
    ///
    /// Push: give --agent-state and --device-state; the answer is the combination index,
    /// the aggregated state and what is published. Pull: give --availability; the answer is
    /// the DND event. Exit status: 0 when answered, 1 when the configuration is invalid,
    /// 2 for a usage error (including a question that does not fit the DN's mode).
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The configuration file (TOML; see docs/configuration.md). Relative
    /// agent-presence-map paths resolve against its folder.
    #[arg(long, short = 'c', value_name = "FILE", env = "PRESENCE_BRIDGE_CONFIG")]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    log: LogArgs,
    /// Do not serve the admin API, even when the configuration has an [admin] table (by
    /// default it listens on [admin] listen, or 127.0.0.1:7071).
    #[arg(long)]
    no_admin: bool,
    /// Threads that run the bridge's work. 1 (the default): one thread does it all, which
    /// costs the least CPU per event (no hand-over between threads) and sustains more than
    /// 100,000 agent events/s. More threads spread CPU-heavy bursts (many clients' TLS
    /// handshakes at once) over cores, at about a third more CPU per event. A reload's
    /// parse always runs on a thread of its own.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
}

#[derive(Debug, Args)]
struct LogArgs {
    /// Log format on standard error: `text` or `json` (one object per line).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Log filter (tracing's EnvFilter syntax, e.g. `info`, `presence_sfb=debug`); RUST_LOG
    /// is used when this is not given.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Pause between scripted steps, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    step_ms: u64,
    /// Also print the bridge's own logs (warnings and errors).
    #[arg(long)]
    verbose: bool,
    /// Show a failover instead: two bridges as a hot-standby pair on a private etcd (the
    /// `etcd` on PATH; Debian: apt-get install etcd-server), the leader crashes, the
    /// standby takes over.
    #[arg(long)]
    ha: bool,
    /// With --ha: the etcd program to start (default: `etcd` on PATH, then /usr/bin).
    #[arg(long, value_name = "PROGRAM", requires = "ha")]
    etcd: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print the result as one JSON object (fields in docs/cli.md) instead of text.
    #[arg(long)]
    json: bool,
    /// List every Extension DN even when there are many (by default more than 50 DNs are
    /// summarised per profile).
    #[arg(long)]
    all_dns: bool,
    /// Also ask the platforms about the DNs' users: for `[teams]`, get a token and look up
    /// every UPN in the tenant (no presence is read or written). Off by default: `check`
    /// works offline.
    #[arg(long)]
    online: bool,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The Extension DN to explain (a DN that is not configured gets the application's
    /// default profile).
    #[arg(long, value_name = "DN")]
    dn: String,
    /// Push: the agent state (Logout, Ready, NotReady, ACW, Walk_Away; any case).
    #[arg(
        long,
        value_name = "STATE",
        requires = "device_state",
        conflicts_with = "availability"
    )]
    agent_state: Option<AgentState>,
    /// Push: the device state (Idle, Busy, OOS; any case).
    #[arg(long, value_name = "STATE", requires = "agent_state")]
    device_state: Option<DeviceState>,
    /// Pull: an SfB availability number as received (0..; above 18000 counts as 18000).
    #[arg(long, value_name = "N", required_unless_present = "agent_state")]
    availability: Option<u64>,
    /// The `presence-profile` a login session would carry in its AttributeExtensions
    /// (highest priority; a name that is not a profile is refused for that level only).
    #[arg(long, value_name = "NAME")]
    login_profile: Option<String>,
    /// Print the answer as one JSON object (fields in docs/cli.md) instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Run(args) => init_logging(&args.log)
            .and_then(|()| run_runtime(args.threads)?.block_on(run::run(&args))),
        Command::Demo(args) => {
            let log = LogArgs {
                log_format: "text".to_owned(),
                log_level: Some(if args.verbose { "warn" } else { "off" }.to_owned()),
            };
            init_logging(&log).and_then(|()| {
                if args.ha {
                    runtime()?.block_on(demo_ha::run(&args))
                } else {
                    runtime()?.block_on(demo::run(&args))
                }
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Writes a command's answer to standard output. A reader that went away (`check | head`,
/// `check | true`) is not an error: the command ends quietly, as Unix tools do.
pub fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write to standard output: {e}"))
        }
        _ => Ok(()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The daemon's runtime: `run --threads N`.
fn run_runtime(threads: u16) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(usize::from(threads));
        builder
    };
    Ok(builder.enable_all().build()?)
}

fn init_logging(args: &LogArgs) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match &args.log_level {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|e| anyhow::anyhow!("--log-level `{level}` is not a valid filter: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    use std::io::IsTerminal;
    // Colours only on a terminal: a log file or journald gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = if args.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    installed.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
