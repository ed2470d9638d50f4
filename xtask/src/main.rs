//! `cargo xtask`: the one entry point for the project's workflows.
//!
//! - `cargo xtask ci`: what CI runs (`.ci/run`): format check, the dependency policy of
//!   `deny.toml` (cargo-deny: licenses, bans, sources), clippy on every target with warnings
//!   denied, every test (cargo-nextest when installed, else `cargo test`), doc tests, the docs
//!   built with warnings denied, and a type check of the fuzz targets.
//! - `cargo xtask bench [FILTER]`: every divan benchmark, in release mode, then (without
//!   FILTER) the loopback load runs: SfB driver, the daemon over the CTI link, Teams.
//! - `cargo xtask soak --minutes M [OPTIONS]`: the fault soak: builds the release binary and
//!   examples, then runs `crates/presence-bridge/examples/soak.rs` for M minutes (the daemon
//!   against the SfB and Graph simulators and a real Kamailio, under load, with faults
//!   injected one at a time); fails unless every user converges and memory stays flat.
//! - `cargo xtask fuzz TARGET [--time S]`, `cargo xtask fuzz --all [--time S]`, `cargo xtask
//!   fuzz --list`: run cargo-fuzz targets on stable (`--sanitizer none`); needs `cargo install
//!   cargo-fuzz`. Without a target it lists them.
//!
//! Every command answers `--help` without running anything.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask <command> [--help]

Commands:
  ci                    fmt check, cargo deny (licenses, bans, sources), clippy (-D warnings),
                        all tests, doc tests, docs (-D warnings), and a type check of the fuzz
                        targets
  bench [FILTER]        run the divan benchmarks (release), then the loopback load generators
                        (without FILTER); FILTER selects divan benchmark names
  soak --minutes M [OPTIONS]
                        the fault soak: the release daemon on all three platforms under load,
                        faults injected one at a time for M minutes, then a convergence check
                        and flat memory (see `cargo xtask soak --help`)
  fuzz TARGET [--time S]  run one cargo-fuzz target on stable for S seconds (default 60)
  fuzz --all [--time S]   run every target in turn, S seconds each
  fuzz --list             list the targets (also: fuzz with no target)
  help                  this text
";

const CI_HELP: &str = "\
cargo xtask ci

What CI runs (.ci/run runs it after installing Kamailio, SIPp and cargo-deny): cargo fmt
--check, `cargo deny --locked check licenses bans sources` (the policy in deny.toml; needs
`cargo install cargo-deny --locked`), clippy on every target with warnings denied, every test
(cargo-nextest when installed), doc tests, the docs with warnings denied, and `cargo check` of
the fuzz targets (fuzz/). Advisories are not checked here (they need the RustSec database
from the network): `cargo deny check advisories`, see docs/security.md.
";

const BENCH_HELP: &str = "\
cargo xtask bench [FILTER]

Runs every divan benchmark in release mode; without FILTER, then the load runs over loopback
(SfB driver, the daemon with 10,000 DNs, Teams against the real budget, SIP SIMPLE against
Kamailio: PUBLISH rate beside SIPp's, and CTI -> NOTIFY latency). Figures go to standard
output; docs/performance.md explains them.
";

const SOAK_HELP: &str = "\
cargo xtask soak --minutes M [--dns N] [--rate R] [--presence-rate P] [--clients C]
                 [--seed S] [--converge-timeout SECS] [--only FAULT,...]

Builds the release binary and examples (`cargo build --release -p presence-bridge --bins
--examples`, into CARGO_TARGET_DIR when set), then runs the soak example
(crates/presence-bridge/examples/soak.rs) for M minutes (fractions allowed) with the other
options passed on. Needs Kamailio (installed by .ci/run); everything runs on 127.0.0.1.

For M minutes at once: `presence-bridge run` with N DNs per platform (default 200; half
push, half pull) on the SfB simulator, the Graph simulator and a real Kamailio; R agent and
device events per second over the contact-centre link from C clients (default 200, 2), also
registered on the pull DNs; P presence changes per second of the pull users (default 30);
and one fault at a time every 2 to 6 s, drawn from a seeded generator (the seed is printed,
--seed repeats it): SfB connections dropped, SfB stops reading 10 s, SfB 503 for 30 s, a 409
storm, SfB garbage, Graph 429 for 60 s, Graph tokens revoked, Graph stalls 10 s, Kamailio
restarted, a CTI client dropping mid-burst and reconnecting, a broken configuration reloaded
(must be refused) and restored, the map removed during a reload (refused) and restored.
--only limits the faults (sfb-drop, sfb-stop-reading, sfb-503, sfb-409, sfb-garbage,
graph-429, graph-revoke, graph-stall, kamailio-restart, cti-drop, reload-broken,
reload-no-map).

Then the faults are cleared and the load stops, and the soak FAILS (non-zero exit, naming
the users that differ) unless within --converge-timeout (default 300 s) every push user
shows on its platform the state its last (agent, device) pair maps to and every pull DN's
last DND state at its client matches its user's last presence; it also fails when the
daemon's resident memory grows by more than 50 % + 8 MiB from the end of the first minute
to the end, when its threads grow by more than 8, when it dies or panics, or when it
answers a request otherwise than the events sent imply. The summary gives the events,
presence changes, faults per kind, reloads, RSS and threads at both moments, and the time
to converge.
";

const FUZZ_HELP: &str = "\
cargo xtask fuzz TARGET [--time S]
cargo xtask fuzz --all [--time S]
cargo xtask fuzz --list

Runs cargo-fuzz targets (fuzz/fuzz_targets) on the stable toolchain with --sanitizer none, S
seconds each (default 60). Needs `cargo install cargo-fuzz`. Findings land in
fuzz/artifacts/TARGET; add each as a regression test beside the target's proptest.
";

fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "--help" || a == "-h")
}

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("ci") if wants_help(rest) => print_help(CI_HELP),
        Some("ci") if !rest.is_empty() => bail!("`ci` takes no arguments\n\n{CI_HELP}"),
        Some("ci") => ci(),
        Some("bench") if wants_help(rest) => print_help(BENCH_HELP),
        Some("bench") => bench(rest.first().map(String::as_str)),
        Some("soak") if wants_help(rest) => print_help(SOAK_HELP),
        Some("soak") => soak(rest),
        Some("fuzz") if wants_help(rest) => print_help(FUZZ_HELP),
        Some("fuzz") => fuzz_command(rest),
        Some("help" | "--help" | "-h") | None => print_help(HELP),
        Some(other) => bail!("unknown command `{other}`\n\n{HELP}"),
    }
}

fn print_help(text: &str) -> Result<()> {
    print!("{text}");
    Ok(())
}

/// `cargo check` of the fuzz targets, so that they never rot. fuzz/ is a workspace of its
/// own (cargo-fuzz wants it so) with no committed lock file: it starts from the main
/// workspace's Cargo.lock, so that it checks the same dependency versions CI tests, and only
/// libfuzzer-sys is resolved on top. `CUSTOM_LIBFUZZER_PATH` tells libfuzzer-sys's build
/// script not to compile libFuzzer's C++ (nothing is linked by a check).
fn fuzz_check() -> Result<Command> {
    std::fs::copy("Cargo.lock", "fuzz/Cargo.lock")
        .context("cannot copy Cargo.lock to fuzz/Cargo.lock")?;
    let mut cmd = cargo(&["check", "--manifest-path", "fuzz/Cargo.toml", "--bins"]);
    cmd.env(
        "CUSTOM_LIBFUZZER_PATH",
        "/nonexistent/libfuzzer-not-linked-by-check.a",
    )
    .env("CARGO_TARGET_DIR", "target/fuzz-check")
    .env("RUSTFLAGS", "-D warnings");
    Ok(cmd)
}

/// `fuzz TARGET [--time S] | --all [--time S] | --list`.
fn fuzz_command(args: &[String]) -> Result<()> {
    let mut secs = 60;
    let mut all = false;
    let mut list = false;
    let mut target = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => {
                let value = it.next().context("--time needs a number of seconds")?;
                secs = value
                    .parse()
                    .with_context(|| format!("--time `{value}` is not a number of seconds"))?;
            }
            "--all" => all = true,
            "--list" => list = true,
            // The old form, `fuzz TARGET SECONDS`.
            n if target.is_some() && n.parse::<u64>().is_ok() => secs = n.parse()?,
            flag if flag.starts_with('-') => bail!("unknown option `{flag}`\n\n{FUZZ_HELP}"),
            name if target.is_none() => target = Some(name.to_owned()),
            extra => bail!("unexpected `{extra}`\n\n{FUZZ_HELP}"),
        }
    }
    let targets = fuzz_targets()?;
    match (target, all) {
        (Some(_), true) => bail!("give a TARGET or --all, not both\n\n{FUZZ_HELP}"),
        (None, false) => {
            if !list {
                println!("fuzz targets (run one with `cargo xtask fuzz TARGET [--time S]`):");
            }
            for t in &targets {
                println!("{t}");
            }
            Ok(())
        }
        (Some(t), false) => {
            if !targets.contains(&t) {
                bail!(
                    "no fuzz target `{t}`: the targets are {}",
                    targets.join(", ")
                );
            }
            fuzz(&t, secs)
        }
        (None, true) => {
            // Every target gets its time, whatever another found; the findings are listed
            // at the end.
            let failed: Vec<&String> = targets.iter().filter(|t| fuzz(t, secs).is_err()).collect();
            if failed.is_empty() {
                Ok(())
            } else {
                bail!(
                    "fuzz targets with findings (inputs in fuzz/artifacts/TARGET): {}",
                    failed
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
    }
}

/// The `[[bin]]` names of fuzz/Cargo.toml.
fn fuzz_targets() -> Result<Vec<String>> {
    let manifest =
        std::fs::read_to_string("fuzz/Cargo.toml").context("cannot read fuzz/Cargo.toml")?;
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(value) = line.strip_prefix("name") {
            let name = value
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            targets.push(name.to_owned());
        }
    }
    if targets.is_empty() {
        bail!("fuzz/Cargo.toml names no [[bin]] target");
    }
    Ok(targets)
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
    if !has_cargo_deny() {
        bail!(
            "cargo-deny is not installed: `cargo install cargo-deny --locked` (.ci/run installs it when missing)"
        );
    }
    run(
        "dependency policy (deny.toml)",
        cargo(&["deny", "--locked", "check", "licenses", "bans", "sources"]),
    )?;
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
    run("fuzz targets (type check)", fuzz_check()?)?;
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
    )?;
    run(
        "SIP SIMPLE: latency CTI message -> PUBLISH -> NOTIFY at a watcher, 1,000 events/s",
        Command::new("target/release/examples/simple_latency"),
    )
}

/// The Cargo target directory: `CARGO_TARGET_DIR` (relative to the workspace root when
/// relative), else `target`.
fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// `soak --minutes M [OPTIONS]`: build, then run the soak example with the options.
fn soak(args: &[String]) -> Result<()> {
    const VALUED: [&str; 8] = [
        "--minutes",
        "--dns",
        "--rate",
        "--presence-rate",
        "--clients",
        "--seed",
        "--converge-timeout",
        "--only",
    ];
    let mut minutes = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if !VALUED.contains(&arg.as_str()) {
            bail!("unknown option `{arg}`\n\n{SOAK_HELP}");
        }
        let value = it
            .next()
            .with_context(|| format!("{arg} needs a value\n\n{SOAK_HELP}"))?;
        if arg == "--minutes" {
            let m: f64 = value
                .parse()
                .ok()
                .filter(|m: &f64| *m > 0.0 && m.is_finite())
                .with_context(|| format!("--minutes `{value}` is not a positive number"))?;
            minutes = Some(m);
        }
    }
    if minutes.is_none() {
        bail!("give the soak's length: --minutes M\n\n{SOAK_HELP}");
    }
    run(
        "release build (daemon and examples)",
        cargo(&[
            "build",
            "--release",
            "--locked",
            "-p",
            "presence-bridge",
            "--bins",
            "--examples",
        ]),
    )?;
    let release = target_dir().join("release");
    let binary = release.join("presence-bridge");
    let mut soak = Command::new(release.join("examples/soak"));
    soak.args(args).env("PRESENCE_BRIDGE_BIN", &binary);
    run("fault soak (examples/soak.rs)", soak)
}

fn fuzz(target: &str, secs: u64) -> Result<()> {
    if !Path::new("fuzz/Cargo.lock").exists() {
        // The versions the workspace is tested with (see `fuzz_check`).
        std::fs::copy("Cargo.lock", "fuzz/Cargo.lock")
            .context("cannot copy Cargo.lock to fuzz/Cargo.lock")?;
    }
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

fn has_cargo_deny() -> bool {
    Command::new(cargo_bin())
        .args(["deny", "--version"])
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
