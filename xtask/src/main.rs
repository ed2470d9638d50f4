//! `cargo xtask`: the one entry point for the project's workflows.
//!
//! - `cargo xtask ci`: what CI runs (`.ci/run`): format check, the dependency policy of
//!   `deny.toml` (cargo-deny: licenses, bans, sources), clippy on every target with warnings
//!   denied, every test (cargo-nextest when installed, else `cargo test`), doc tests, the docs
//!   built with warnings denied, and a type check of the fuzz targets.
//! - `cargo xtask bench [FILTER]`: every divan benchmark, in release mode, then (without
//!   FILTER) the loopback load runs: SfB driver, the daemon over the CTI link (the load
//!   generator, examples/bench_load.rs), Teams, SIP SIMPLE; one summary table at the end,
//!   also in `<target dir>/bench/summary.json`. `cargo xtask bench load [OPTIONS]`: one load
//!   run.
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
                        (without FILTER) and a summary table; FILTER selects divan benchmark
                        names
  bench load [OPTIONS]  one load run (see `cargo xtask bench --help`)
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
cargo xtask bench load [--dns N] [--rate R | --max] [--transport sfb|teams|simple]
                       [--mix push|pull|both] [--seconds S] [--presence-rate P]
                       [--clients C] [--overload stall|503] [--startup-only]

`bench` runs every divan benchmark in release mode; without FILTER, then the load runs over
loopback (SfB driver; the load generator at 10,000 / 50,000 / 100,000 DNs, at 20,000
events/s, as fast as possible, and under overload; Teams against the real budget; SIP SIMPLE
against Kamailio: PUBLISH rate beside SIPp's, and CTI -> NOTIFY latency), and ends with one
table (figure, value, unit, goal, command, machine), also written to
<target dir>/bench/summary.json. docs/performance.md explains the figures.

`bench load` runs one load: for sfb (the default) the generator
crates/presence-bridge/examples/bench_load.rs (the SfB simulator and `presence-bridge run`
as separate processes, latency from both ends, a convergence check that fails the run);
for teams the Teams example (teams_load restart), for simple the Kamailio latency example
(simple_latency). Builds first, into CARGO_TARGET_DIR when set.
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
        Some("bench") if rest.first().is_some_and(|a| a == "load") => {
            bench_load_command(rest.get(1..).unwrap_or_default())
        }
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
    build_for_load()?;
    let examples = target_dir().join("release/examples");
    run(
        "SfB driver -> simulator over loopback TCP",
        Command::new(examples.join("loopback")),
    )?;
    run(
        "daemon with 10,000 DNs, load through the contact-centre link",
        Command::new(examples.join("load")),
    )?;
    let mut rows = Vec::new();
    // Start-up and memory as N grows, then delivery under load and overload.
    for dns in ["10000", "50000", "100000"] {
        rows.extend(bench_load(&["--dns", dns, "--startup-only"])?);
    }
    for run in [
        &["--dns", "10000", "--rate", "20000"][..],
        &["--dns", "10000", "--max"],
        &["--dns", "100000", "--rate", "20000"],
        &[
            "--dns",
            "10000",
            "--mix",
            "pull",
            "--presence-rate",
            "20000",
        ],
        &[
            "--dns",
            "10000",
            "--mix",
            "pull",
            "--presence-rate",
            "60000",
        ],
        &["--dns", "10000", "--rate", "20000", "--overload", "stall"],
        &["--dns", "10000", "--rate", "20000", "--overload", "503"],
    ] {
        rows.extend(bench_load(run)?);
    }
    let mut restart = Command::new(examples.join("teams_load"));
    restart.arg("restart");
    run(
        "Teams: 5,000 agents after a restart, against the real 1,500/30 s budget (about 3 minutes)",
        restart,
    )?;
    let mut idle = Command::new(examples.join("teams_load"));
    idle.arg("idle");
    run(
        "Teams: memory with 10,000 SfB + 10,000 Teams DNs, poll cost",
        idle,
    )?;
    run(
        "SIP SIMPLE: PUBLISH rate into Kamailio, SIPp's own load and the transport's, side by side",
        Command::new(examples.join("kamailio_rate")),
    )?;
    run(
        "SIP SIMPLE: latency CTI message -> PUBLISH -> NOTIFY at a watcher, 1,000 events/s",
        Command::new(examples.join("simple_latency")),
    )?;
    summary(&rows)
}

/// Builds the daemon, the simulator command and the examples (release).
fn build_for_load() -> Result<()> {
    release_build(
        "release build",
        &[
            "-p",
            "presence-bridge",
            "-p",
            "presence-sfb",
            "-p",
            "presence-simple",
            "-p",
            "presence-sfb-sim",
            "--features",
            "presence-sfb-sim/server",
        ],
    )
}

/// `cargo build --release --locked <packages> --bins --examples`.
fn release_build(what: &str, packages: &[&str]) -> Result<()> {
    let mut args = vec!["build", "--release", "--locked"];
    args.extend_from_slice(packages);
    args.extend(["--bins", "--examples"]);
    run(what, cargo(&args))
}

/// `bench load [--dns N] [--rate R | --max] [--transport sfb|teams|simple] [--mix ...]`.
fn bench_load_command(args: &[String]) -> Result<()> {
    let mut transport = "sfb".to_owned();
    let mut rest: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--transport" {
            transport = it
                .next()
                .context("--transport needs sfb, teams or simple")?
                .clone();
        } else {
            rest.push(arg);
        }
    }
    build_for_load()?;
    let examples = target_dir().join("release/examples");
    match transport.as_str() {
        "sfb" => summary(&bench_load(&rest)?),
        "teams" => {
            let mut restart = Command::new(examples.join("teams_load"));
            restart.arg("restart");
            run(
                "Teams: 5,000 agents after a restart, then latency below the budget",
                restart,
            )
        }
        "simple" => run(
            "SIP SIMPLE: latency CTI message -> PUBLISH -> NOTIFY at a watcher (Kamailio)",
            Command::new(examples.join("simple_latency")),
        ),
        other => bail!("--transport sfb, teams or simple, not `{other}`\n\n{BENCH_HELP}"),
    }
}

/// One row of the summary table.
struct Row {
    figure: String,
    value: f64,
    unit: &'static str,
    goal: &'static str,
    command: String,
}

/// Runs the load generator (examples/bench_load.rs) with `args`; its output passes
/// through, and its `BENCH {json}` line becomes rows.
fn bench_load(args: &[&str]) -> Result<Vec<Row>> {
    let release = target_dir().join("release");
    let mut cmd = Command::new(release.join("examples/bench_load"));
    cmd.args(args)
        .env("PRESENCE_BRIDGE_BIN", release.join("presence-bridge"))
        .stdout(std::process::Stdio::piped());
    let command = format!("cargo xtask bench load {}", args.join(" "));
    eprintln!("xtask: {command}");
    let mut child = cmd.spawn().context("cannot start examples/bench_load")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut json = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line?;
        match line.strip_prefix("BENCH ") {
            Some(text) => json = Some(serde_json::from_str::<serde_json::Value>(text)?),
            None => println!("{line}"),
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{command} failed ({status})");
    }
    let json = json.context("bench_load printed no BENCH line")?;
    let n = json["dns"].as_u64().unwrap_or(0);
    let mut rows = Vec::new();
    let mut row = |figure: String, key: &[&str], unit, goal| {
        let value = key.iter().fold(&json, |v, k| &v[*k]).as_f64();
        if let Some(value) = value {
            rows.push(Row {
                figure,
                value,
                unit,
                goal,
                command: command.clone(),
            });
        }
    };
    if args.contains(&"--startup-only") {
        row(
            format!("{n} DNs: start-up and resync"),
            &["startup_s"],
            "s",
            "≤ 2 (100,000 DNs)",
        );
        row(
            format!("{n} DNs: idle RSS"),
            &["idle_rss_mib"],
            "MiB",
            "≤ 100 (100,000 DNs)",
        );
        return Ok(rows);
    }
    if json["events"].as_u64() == Some(0) {
        // A pull-only run: presence changes in, DND events out.
        let rate = json["presence_changes_per_s"].as_f64().unwrap_or(0.0);
        let what = format!("{n} DNs, pull only at {:.0},000 changes/s", rate / 1000.0);
        row(
            format!("{what}: presence changes/s in"),
            &["presence_changes_per_s"],
            "/s",
            "≥ 50,000",
        );
        row(format!("{what}: DND events out"), &["dnd_events"], "", "—");
        for p in ["p50_ms", "p99_ms", "p99_9_ms", "max_ms"] {
            row(
                format!(
                    "{what}: NOTIFY -> EventDND {}",
                    p.trim_end_matches("_ms").replace('_', ".")
                ),
                &["pull_latency", p],
                "ms",
                "p99 ≤ 5 (20,000/s)",
            );
        }
        row(
            format!("{what}: bridge CPU per presence change"),
            &["cpu_us_per_change"],
            "µs",
            "—",
        );
        row(
            format!("{what}: converged after the load"),
            &["converged_after_s"],
            "s",
            "converges",
        );
        return Ok(rows);
    }
    let what = match json["overload"].as_str() {
        Some(kind) => format!("{n} DNs, overload ({kind} 10 s)"),
        None if args.contains(&"--max") => format!("{n} DNs, --max"),
        None => format!("{n} DNs, 20,000/s"),
    };
    let rate_goal = if args.contains(&"--max") {
        "≥ 50,000"
    } else {
        "the offered rate"
    };
    row(
        format!("{what}: agent events/s"),
        &["events_per_s"],
        "/s",
        rate_goal,
    );
    for (dir, key, goal) in [
        (
            "push CTI -> SfB write",
            "push_latency",
            "p99 ≤ 5, p99.9 ≤ 20 (20,000/s)",
        ),
        (
            "pull NOTIFY -> EventDND",
            "pull_latency",
            "p99 ≤ 5 (20,000/s)",
        ),
    ] {
        for p in ["p50_ms", "p99_ms", "p99_9_ms", "max_ms"] {
            row(
                format!(
                    "{what}: {dir} {}",
                    p.trim_end_matches("_ms").replace('_', ".")
                ),
                &[key, p],
                "ms",
                goal,
            );
        }
    }
    row(
        format!("{what}: state-changing events"),
        &["state_changing_events"],
        "",
        "—",
    );
    row(
        format!("{what}: publications accepted"),
        &["writes_accepted"],
        "",
        "—",
    );
    row(
        format!("{what}: bridge CPU per event"),
        &["cpu_us_per_event"],
        "µs",
        "≤ 5",
    );
    row(
        format!("{what}: bridge peak RSS"),
        &["peak_rss_mib"],
        "MiB",
        "—",
    );
    row(
        format!("{what}: converged after the load (and recovery)"),
        &["converged_after_s"],
        "s",
        "≤ 2 after recovery",
    );
    if json["overload"].is_string() {
        row(
            format!("{what}: peak RSS / idle RSS"),
            &["peak_over_idle"],
            "×",
            "≤ 2",
        );
        row(
            format!("{what}: CTI answers during the fault"),
            &["answers_during_fault"],
            "",
            "> 0",
        );
    }
    Ok(rows)
}

/// The machine, for the table: CPU model, cores, memory.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores, {model}, {mem_gib:.0} GiB")
}

/// Prints the table and writes it to `target/bench/summary.json` (under the target dir).
fn summary(rows: &[Row]) -> Result<()> {
    let machine = machine();
    println!("\n| figure | value | unit | goal | command |\n|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | `{}` |",
            r.figure,
            format_value(r.value),
            r.unit,
            r.goal,
            r.command
        );
    }
    println!("machine: {machine}");
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "figure": r.figure,
                "value": r.value,
                "unit": r.unit,
                "goal": r.goal,
                "command": r.command,
                "machine": machine,
            })
        })
        .collect();
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("xtask: the table is in {}", path.display());
    Ok(())
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
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
    release_build(
        "release build (daemon and examples)",
        &["-p", "presence-bridge"],
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
