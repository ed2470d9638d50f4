//! Reads an agent-presence map and prints its states.
//!
//! `cargo run -p presence-map --example read_map -- examples/agent-states.xml`

use std::process::ExitCode;

use presence_map::AgentPresenceMap;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: read_map <agent-presence-map.xml>");
        return ExitCode::from(2);
    };
    let shown = path.to_string_lossy().into_owned();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{shown}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let parsed = match AgentPresenceMap::parse(&bytes) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{shown}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &parsed.warnings {
        eprintln!("{shown}: warning: {warning}");
    }
    println!("{shown}: {} state(s)", parsed.map.len());
    for entry in &parsed.map {
        let availability = entry.presence.availability;
        println!(
            "{} (line {}): availability {} ({})",
            entry.id,
            entry.location.line,
            availability,
            availability.class()
        );
        for (lcid, text) in entry.presence.activities.iter() {
            let tag = lcid.tag().unwrap_or("?");
            println!("    {lcid} [{tag}] \"{text}\"");
        }
    }
    ExitCode::SUCCESS
}
