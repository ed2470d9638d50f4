//! `presence-sfb-sim`: the Skype for Business Front End simulator as a command, for tests
//! and demos (not a server). It listens on TCP or TLS, logs every request and answer on
//! stderr (one line each) and takes commands on stdin.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use presence_model::SipUri;
use presence_sfb_sim::{ServerConfig, ServerTls, SimConfig, SimServer};
use presence_sip::Method;
use tokio::io::AsyncBufReadExt;
use tokio::sync::broadcast::error::RecvError;

const COMMANDS: &str = "\
COMMANDS (one per line on stdin; lines that arrive together run in order, and `set`s in a
row change those users at the same moment: one notification per dialog):
  set <sip-uri> <availability> [\"activity text\"]
                      the user picks a state in their own client (3500 Online,
                      6500 Busy, 9500 Do not disturb, 15500 Away, ...)
  show <sip-uri>      what watchers of the user see
  drop                close every connection now
  garbage             write bytes that are not SIP to every connection
  stall on|off        stop / resume reading the sockets
  terminate           end every subscription (NOTIFY terminated;reason=deactivated)
  terminate <sip-uri> end the subscriptions to one user (RLMI terminated)
  fail <METHOD> <count> <status>
                      answer the next <count> <METHOD> requests with <status>
  conflicts <rate>    answer publications 409 WrongDelta with probability <rate>
  errors <rate> <status>
                      answer requests <status> with probability <rate>
  delay <milliseconds>
                      hold every response back (0: off)
  clear               switch every fault off
  status              connections, subscriptions, publications
  help                this list
  quit                stop";

/// A Skype for Business Front End simulator for tests and demos (not a server).
///
/// It speaks the wire protocol of a Front End pool towards a trusted application (SIP
/// over TCP or mutual TLS: category publications with versions and 409 WrongDelta,
/// batched presence subscriptions, NOTIFY/BENOTIFY), with simplified aggregation and no
/// authentication other than mutual TLS. Every request and answer is logged on stderr,
/// one line each.
#[derive(Debug, Parser)]
#[command(name = "presence-sfb-sim", version, after_help = COMMANDS)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:5061", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// The server certificate chain (PEM); with --tls-key, serve TLS instead of TCP.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require a client certificate signed by this CA (PEM): mutual TLS.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Send notifications as BENOTIFY when the subscriber supports it (the default).
    #[arg(long, overrides_with = "no_benotify")]
    benotify: bool,
    /// Always send NOTIFY.
    #[arg(long, overrides_with = "benotify")]
    no_benotify: bool,
    /// Put the first notification in the 200 OK of a SUBSCRIBE that supports it.
    #[arg(long)]
    piggyback: bool,
    /// The longest subscription granted, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    max_expires: u32,
    /// Seeds tags and random faults (the same seed and inputs give the same run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Do not log every request and answer on stderr (for load runs).
    #[arg(long)]
    quiet: bool,
    /// Write a line to this file for every accepted publication (`P <unix-ns> <user>
    /// <availability>`) and every state a user picked (`C <unix-ns> <user>
    /// <availability>`), `-` for no state; `L <n>` when n events were missed. The time is
    /// the wall clock when the recorder reads the event. For load generators measuring
    /// latency across processes.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
}

/// Writes `--record` lines until the simulator stops.
async fn record(
    mut events: tokio::sync::broadcast::Receiver<presence_sfb_sim::SimEvent>,
    file: std::fs::File,
) {
    use presence_sfb_sim::{ChangeSource, SimEvent};
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    };
    loop {
        let event = match events.try_recv() {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                let _ = out.flush();
                match events.recv().await {
                    Ok(event) => event,
                    Err(RecvError::Lagged(n)) => {
                        let _ = writeln!(out, "L {n}");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                }
            }
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                let _ = writeln!(out, "L {n}");
                continue;
            }
            Err(tokio::sync::broadcast::error::TryRecvError::Closed) => break,
        };
        let line = match &event {
            SimEvent::Published {
                user, availability, ..
            } => Some(('P', user, *availability)),
            SimEvent::UserChanged {
                user,
                shown,
                source: ChangeSource::User,
            } => Some(('C', user, shown.as_ref().map(|s| s.availability))),
            _ => None,
        };
        if let Some((kind, user, availability)) = line {
            let _ = match availability {
                Some(a) => writeln!(out, "{kind} {} {user} {a}", now()),
                None => writeln!(out, "{kind} {} {user} -", now()),
            };
        }
    }
    let _ = out.flush();
}

/// One stdin command.
#[derive(Debug, PartialEq)]
enum Command {
    Set(SipUri, u32, Option<String>),
    Show(SipUri),
    Drop,
    Garbage,
    Stall(bool),
    Terminate(Option<SipUri>),
    Fail(Method, u32, u16),
    Conflicts(f64),
    Errors(f64, u16),
    Delay(Duration),
    Clear,
    Status,
    Help,
    Quit,
}

/// Splits a line into words; `"..."` keeps spaces, `\"` and `\\` escape inside quotes.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => word.extend(chars.next()),
                    c => word.push(c),
                }
            }
            if !closed {
                return Err("a quoted text is not closed with `\"`".to_owned());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(word: Option<&String>, what: &str) -> Result<T, String> {
    let word = word.ok_or_else(|| format!("missing {what}"))?;
    word.parse()
        .map_err(|_| format!("`{word}` is not a valid {what}"))
}

fn user(word: Option<&String>) -> Result<SipUri, String> {
    let word = word.ok_or("missing the user's SIP URI (sip:user@host)")?;
    SipUri::new(word).map_err(|e| e.to_string())
}

fn parse_command(line: &str) -> Result<Option<Command>, String> {
    let words = words(line)?;
    let Some((first, rest)) = words.split_first() else {
        return Ok(None);
    };
    let arity = |n: usize| {
        if rest.len() > n {
            Err(format!(
                "`{first}` takes at most {n} argument(s); see `help`"
            ))
        } else {
            Ok(())
        }
    };
    let command = match first.to_ascii_lowercase().as_str() {
        "set" => {
            arity(3)?;
            Command::Set(
                user(rest.first())?,
                number(rest.get(1), "availability (a number such as 6500)")?,
                rest.get(2).cloned(),
            )
        }
        "show" => {
            arity(1)?;
            Command::Show(user(rest.first())?)
        }
        "drop" => {
            arity(0)?;
            Command::Drop
        }
        "garbage" => {
            arity(0)?;
            Command::Garbage
        }
        "stall" => {
            arity(1)?;
            match rest.first().map(String::as_str) {
                Some("on") => Command::Stall(true),
                Some("off") => Command::Stall(false),
                _ => return Err("`stall` takes `on` or `off`".to_owned()),
            }
        }
        "terminate" => {
            arity(1)?;
            Command::Terminate(rest.first().map(|w| user(Some(w))).transpose()?)
        }
        "fail" => {
            arity(3)?;
            let method = rest
                .first()
                .ok_or("missing the method (SERVICE, SUBSCRIBE, ...)")?;
            let method = Method::from_token(method).map_err(|e| e.to_string())?;
            Command::Fail(
                method,
                number(rest.get(1), "count")?,
                number(rest.get(2), "status (300..699)")?,
            )
        }
        "conflicts" => {
            arity(1)?;
            Command::Conflicts(number(rest.first(), "rate (0 to 1)")?)
        }
        "errors" => {
            arity(2)?;
            Command::Errors(
                number(rest.first(), "rate (0 to 1)")?,
                number(rest.get(1), "status (300..699)")?,
            )
        }
        "delay" => {
            arity(1)?;
            Command::Delay(Duration::from_millis(number(
                rest.first(),
                "delay in milliseconds",
            )?))
        }
        "clear" => {
            arity(0)?;
            Command::Clear
        }
        "status" => {
            arity(0)?;
            Command::Status
        }
        "help" | "?" => {
            arity(0)?;
            Command::Help
        }
        "quit" | "exit" => {
            arity(0)?;
            Command::Quit
        }
        other => return Err(format!("unknown command `{other}`; see `help`")),
    };
    Ok(Some(command))
}

/// The most stdin lines taken in one turn.
const MAX_BATCH: usize = 1024;

/// A `set` command: user, availability, activity text.
type Set = (SipUri, u32, Option<String>);

/// Applies `sets` as one change (one notification per dialog) and confirms each on stdout
/// in one write; leaves `sets` empty.
fn apply_sets(server: &SimServer, sets: &mut Vec<Set>) {
    if sets.is_empty() {
        return;
    }
    let changes: Vec<(SipUri, u32, Option<&str>)> = sets
        .iter()
        .map(|(user, availability, activity)| (user.clone(), *availability, activity.as_deref()))
        .collect();
    server.set_users_presence(&changes);
    let mut out = std::io::stdout().lock();
    for (user, availability, _) in sets.drain(..) {
        let _ = writeln!(out, "{user} set to {availability}");
    }
    let _ = out.flush();
}

/// Runs command lines in order, consecutive `set`s together; `false` to stop.
fn run_lines(server: &SimServer, lines: &[String]) -> bool {
    let mut sets: Vec<Set> = Vec::new();
    for line in lines {
        let command = parse_command(line);
        if let Ok(Some(Command::Set(user, availability, activity))) = command {
            sets.push((user, availability, activity));
            continue;
        }
        apply_sets(server, &mut sets);
        match command.and_then(|c| c.map_or(Ok(true), |c| run(server, c))) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(message) => eprintln!("presence-sfb-sim: {message}"),
        }
    }
    apply_sets(server, &mut sets);
    true
}

/// Runs a command; `false` to stop.
fn run(server: &SimServer, command: Command) -> Result<bool, String> {
    match command {
        Command::Set(user, availability, activity) => {
            apply_sets(server, &mut vec![(user, availability, activity)]);
        }
        Command::Show(user) => match server.shows(&user) {
            Some(shown) => {
                print!("{user} shows {}", shown.availability);
                if let Some(token) = &shown.activity_token {
                    print!(" ({token})");
                }
                for (lcid, text) in &shown.texts {
                    print!(" [{lcid}] {text:?}");
                }
                println!();
            }
            None => println!("{user} shows nothing"),
        },
        Command::Drop => server.drop_connections(),
        Command::Garbage => server.send_garbage(),
        Command::Stall(on) => server.stop_reading(on),
        Command::Terminate(None) => server.terminate_subscriptions(),
        Command::Terminate(Some(user)) => server.terminate_resource(&user),
        Command::Fail(method, count, status) => server
            .fail_next(method, count, status)
            .map_err(|e| e.to_string())?,
        Command::Conflicts(rate) => server.random_conflicts(rate),
        Command::Errors(rate, status) => server
            .random_errors(rate, status)
            .map_err(|e| e.to_string())?,
        Command::Delay(delay) => server.delay_responses(delay),
        Command::Clear => server.clear_faults(),
        Command::Status => println!(
            "{} connection(s), {} subscription dialog(s), {} publication(s) accepted",
            server.connection_count(),
            server.dialog_count(),
            server.published_count()
        ),
        Command::Help => println!("{COMMANDS}"),
        Command::Quit => return Ok(false),
    }
    Ok(true)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            match ServerTls::from_files(cert, key, args.client_ca.as_deref()) {
                Ok(tls) => Some(tls),
                Err(error) => {
                    eprintln!("presence-sfb-sim: {}", presence_model::error_chain(&error));
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };
    let mutual = tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some());
    let config = ServerConfig {
        listen: args.listen,
        tls,
        sim: SimConfig {
            seed: args.seed,
            benotify: !args.no_benotify,
            piggyback_first_notify: args.piggyback,
            max_expires: args.max_expires,
            ..SimConfig::default()
        },
        // A recorder under load must not miss publications (about 100 bytes each).
        event_capacity: if args.record.is_some() {
            1 << 17
        } else {
            ServerConfig::default().event_capacity
        },
    };
    let transport = match (config.tls.is_some(), mutual) {
        (false, _) => "TCP",
        (true, false) => "TLS",
        (true, true) => "mutual TLS",
    };
    let server = match SimServer::start(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("presence-sfb-sim: {}", presence_model::error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    // Subscribe before the banner: a client may connect as soon as it reads the address.
    let recorder = match &args.record {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some(tokio::spawn(record(server.events(), file))),
            Err(error) => {
                eprintln!(
                    "presence-sfb-sim: cannot create {}: {error}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let events = (!args.quiet).then(|| server.events());
    eprintln!(
        "presence-sfb-sim: Skype for Business Front End simulator (tests and demos, not a \
         server) on {} ({transport}); type `help` for commands",
        server.local_addr()
    );
    let log = events.map(|mut events| {
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => eprintln!("{event}"),
                    Err(RecvError::Lagged(n)) => eprintln!("({n} log lines skipped)"),
                    Err(RecvError::Closed) => break,
                }
            }
        })
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    // The whole lines already read take one turn: `set`s in a row are
                    // applied together (one notification per dialog, as when users change
                    // at the same moment), which lets a load generator drive many
                    // thousands of changes a second.
                    let mut batch = vec![line];
                    while batch.len() < MAX_BATCH && lines.get_ref().buffer().contains(&b'\n') {
                        match lines.next_line().await {
                            Ok(Some(line)) => batch.push(line),
                            Ok(None) | Err(_) => break,
                        }
                    }
                    if !run_lines(&server, &batch) {
                        break;
                    }
                }
                // Without stdin (closed or unreadable), serve until Ctrl-C.
                Ok(None) | Err(_) => stdin_open = false,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    server.shutdown().await;
    drop(server);
    if let Some(log) = log {
        let _ = log.await;
    }
    if let Some(recorder) = recorder {
        let _ = recorder.await;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quoted_texts() {
        assert_eq!(
            words(r#"set sip:a@x 6500 "In a \"call\"""#).unwrap(),
            ["set", "sip:a@x", "6500", "In a \"call\""]
        );
        assert!(words(r#"set "open"#).is_err());
        assert!(words("   ").unwrap().is_empty());
    }

    #[test]
    fn commands() {
        let agent = SipUri::new("sip:user@x").unwrap();
        assert_eq!(
            parse_command(r#"set sip:user@x 6500 "In a call""#).unwrap(),
            Some(Command::Set(
                agent.clone(),
                6500,
                Some("In a call".to_owned())
            ))
        );
        assert_eq!(
            parse_command("SHOW sip:user@x").unwrap(),
            Some(Command::Show(agent))
        );
        assert_eq!(parse_command("").unwrap(), None);
        assert_eq!(
            parse_command("fail SERVICE 3 503").unwrap(),
            Some(Command::Fail(Method::Service, 3, 503))
        );
        assert_eq!(
            parse_command("delay 250").unwrap(),
            Some(Command::Delay(Duration::from_millis(250)))
        );
        assert_eq!(parse_command("quit").unwrap(), Some(Command::Quit));
        for bad in [
            "set sip:user@x",
            "set user@x 6500",
            "show",
            "stall maybe",
            "frobnicate",
            "drop x y",
        ] {
            assert!(parse_command(bad).is_err(), "{bad}");
        }
        let err = parse_command("set sip:user@x busy").unwrap_err();
        assert!(err.contains("`busy`"), "{err}");
    }
}
