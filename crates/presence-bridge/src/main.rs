//! `presence-bridge`: keeps contact-centre agent state and Skype for Business presence in
//! step. This binary is thin: it parses the command line, reads files, and hands the rest to
//! the library crates.

mod check;
mod explain;
mod files;

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
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
