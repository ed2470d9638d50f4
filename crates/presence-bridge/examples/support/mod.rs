//! What the load examples share: the release binary, a scratch folder with the example
//! map, a configuration with the two example profiles, a `run` child process, and /proc
//! readings (resident memory, CPU time).

#![allow(dead_code)] // each example uses its own part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The release binary (or `PRESENCE_BRIDGE_BIN`).
pub(crate) fn binary() -> Result<PathBuf, Error> {
    let binary = std::env::var_os("PRESENCE_BRIDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/presence-bridge"));
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "{} is missing: run `cargo build --release -p presence-bridge` first",
            binary.display()
        )
        .into())
    }
}

/// A scratch folder holding the example map as `agent-states.xml`.
pub(crate) fn scratch(name: &str) -> Result<PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!("presence-bridge-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(
        root().join("examples/agent-states.xml"),
        dir.join("agent-states.xml"),
    )?;
    Ok(dir)
}

/// The example's two profiles (`PushProfile`: the seed's 15 rows; `PullProfile`:
/// 3000-5999 available), and a CTI link that does not limit a load generator.
pub(crate) const PROFILES: &str = r#"
[dn.PushProfile]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", agent-presence-map = "agent-states.xml", aggregated-states = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7=INCALL, 8=INCALL, 9=INCALL, 10=INCALL, 11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS" }

[dn.PullProfile]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true", presence-availability-range = "3000-5999" }

[cti]
listen = "127.0.0.1:0"
rate-per-second = 1000000
burst = 1000000
queue = 100000
"#;

/// A configuration's start: `presence-platform`, the example profiles, and an `[sfb]` table
/// for the simulator at `pool` (none when `pool` is `None`).
pub(crate) fn head(platform: &str, pool: Option<std::net::SocketAddr>) -> String {
    let mut text = format!("[options.TServer]\npresence-platform = \"{platform}\"\n{PROFILES}");
    if let Some(pool) = pool {
        text.push_str(&format!(
            "\n[sfb]\npool = \"{pool}\"\ntransport = \"tcp\"\napplication-uri = \"sip:bridge@contoso.com\"\n"
        ));
    }
    text
}

/// The profile of the `i`-th DN of a load run: even push, odd pull.
pub(crate) fn half(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "PushProfile"
    } else {
        "PullProfile"
    }
}

/// One Extension DN.
pub(crate) fn dn(number: usize, uri: &str, platform: &str, profile: &str) -> String {
    format!(
        "\n[dn.\"{number}\"]\ntype = \"Extension\"\nuri = \"{uri}\"\nplatform = \"{platform}\"\nannex.TServer = {{ presence-profile = \"{profile}\" }}\n"
    )
}

/// `presence-bridge run` on `config` (written into `dir`), and the CTI URL once it runs.
pub(crate) fn spawn(dir: &Path, config: &str) -> Result<(Child, String), Error> {
    let path = dir.join("bridge.toml");
    std::fs::write(&path, config)?;
    let mut child = Command::new(binary()?)
        .args([
            "run",
            "--config",
            path.to_str().ok_or("path")?,
            "--no-admin",
            "--log-format",
            "json",
            "--log-level",
            "warn,presence_bridge=info",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("bridge running") {
                let _ = tx.send(Ok(line));
            } else if line.contains("\"ERROR\"") {
                eprintln!("daemon: {line}");
            }
        }
        let _ = tx.send(Err(()));
    });
    let Ok(Ok(line)) = rx.recv_timeout(Duration::from_secs(120)) else {
        return Err("the daemon did not start (see its errors above)".into());
    };
    let json: serde_json::Value = serde_json::from_str(&line)?;
    let cti = json["fields"]["cti"]
        .as_str()
        .ok_or("cti address")?
        .to_owned();
    Ok((child, cti))
}

/// Stops a daemon with SIGTERM and waits for it.
pub(crate) fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Resident memory of a process, KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time a process used so far (user + system, all threads), from /proc/PID/stat,
/// assuming the usual 100 clock ticks per second.
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A percentile of sorted samples.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
