//! `cargo xtask`: the one entry point for the project's workflows.
//!
//! - `cargo xtask ci`: what CI runs (`.ci/run`): format check, clippy on every target with
//!   warnings denied, every test (cargo-nextest when installed, else `cargo test`), doc tests,
//!   and the docs built with warnings denied.
//! - `cargo xtask bench [FILTER]`: every divan benchmark, in release mode, then (without
//!   FILTER) the loopback load runs: SfB driver, the daemon over the CTI link, Teams.
//! - `cargo xtask fuzz TARGET [SECONDS]`: run one cargo-fuzz target on stable
//!   (`--sanitizer none`); needs `cargo install cargo-fuzz`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask <command>

Commands:
  ci                    fmt check, clippy (-D warnings), all tests, doc tests, docs (-D warnings)
  bench [FILTER]        run the divan benchmarks (release), then the loopback load generators
                        (without FILTER); FILTER selects divan benchmark names
  fuzz TARGET [SECS]    run a cargo-fuzz target on stable for SECS seconds (default 60)
  help                  this text
";

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("fuzz") => {
            let target = args
                .get(1)
                .context("usage: cargo xtask fuzz TARGET [SECONDS]")?;
            let secs = args
                .get(2)
                .map_or(Ok(60), |s| s.parse::<u64>())
                .context("SECONDS must be a number")?;
            fuzz(target, secs)
        }
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{HELP}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn ci() -> Result<()> {
    let start = Instant::now();
    run("format check", cargo(&["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    if has_nextest() {
        run(
            "tests (nextest)",
            cargo(&[
                "nextest",
                "run",
                "--workspace",
                "--all-targets",
                "--locked",
                "--no-fail-fast",
            ]),
        )?;
    } else {
        run(
            "tests",
            cargo(&[
                "test",
                "--workspace",
                "--all-targets",
                "--locked",
                "--no-fail-fast",
            ]),
        )?;
    }
    run(
        "doc tests",
        cargo(&["test", "--workspace", "--doc", "--locked"]),
    )?;
    let mut doc = cargo(&["doc", "--workspace", "--no-deps", "--locked"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    run("docs", doc)?;
    eprintln!("xtask ci: all green in {:.0?}", start.elapsed());
    Ok(())
}

fn bench(filter: Option<&str>) -> Result<()> {
    let mut args = vec!["bench", "--workspace", "--locked"];
    if let Some(filter) = filter {
        args.extend(["--", filter]);
    }
    run("benchmarks", cargo(&args))?;
    if filter.is_some() {
        return Ok(());
    }
    // The load generators over real loopback sockets (not divan: they report rates and
    // latency percentiles of whole runs).
    run(
        "release build",
        cargo(&[
            "build",
            "--release",
            "--locked",
            "-p",
            "presence-bridge",
            "-p",
            "presence-sfb",
            "-p",
            "presence-simple",
            "--bins",
            "--examples",
        ]),
    )?;
    run(
        "SfB driver -> simulator over loopback TCP",
        Command::new("target/release/examples/loopback"),
    )?;
    run(
        "daemon with 10,000 DNs, load through the contact-centre link",
        Command::new("target/release/examples/load"),
    )?;
    let mut restart = Command::new("target/release/examples/teams_load");
    restart.arg("restart");
    run(
        "Teams: 5,000 agents after a restart, against the real 1,500/30 s budget (about 3 minutes)",
        restart,
    )?;
    let mut idle = Command::new("target/release/examples/teams_load");
    idle.arg("idle");
    run(
        "Teams: memory with 10,000 SfB + 10,000 Teams DNs, poll cost",
        idle,
    )?;
    run(
        "SIP SIMPLE: PUBLISH rate into Kamailio, SIPp's own load and the transport's, side by side",
        Command::new("target/release/examples/kamailio_rate"),
    )
}

fn fuzz(target: &str, secs: u64) -> Result<()> {
    let max_time = format!("-max_total_time={secs}");
    let mut cmd = cargo(&[
        "fuzz",
        "run",
        "--sanitizer",
        "none",
        target,
        "--",
        &max_time,
    ]);
    cmd.current_dir("fuzz");
    run(&format!("fuzz {target}"), cmd)
}

fn has_nextest() -> bool {
    Command::new(cargo_bin())
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

fn cargo_bin() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(cargo_bin());
    cmd.args(args);
    cmd
}

fn run(what: &str, mut cmd: Command) -> Result<()> {
    eprintln!("xtask: {what}: {cmd:?}");
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    eprintln!("xtask: {what} passed in {:.1?}", started.elapsed());
    Ok(())
}
