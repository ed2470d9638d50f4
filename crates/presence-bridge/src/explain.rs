//! `presence-bridge explain`: what the bridge would do for one DN and one situation.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use presence_config::{Mode, ProfileMode};
use presence_model::{Availability, StateIndex};
use presence_pull::PullMapper;
use presence_push::PushTable;
use serde::Serialize;

use crate::ExplainArgs;
use crate::check::{RowJson, lcid_text, ranges_text, row};
use crate::files::prepare;
use crate::transports::Configured;

/// The `explain --json` object (documented in docs/cli.md; keep it stable).
#[derive(Debug, Serialize)]
struct Explanation {
    dn: String,
    uri: Option<String>,
    /// The platform the DN's user lives on (`sfb`, `teams`), when it has one.
    platform: Option<String>,
    /// The user as that platform knows it.
    user: Option<String>,
    /// Push: what the platform shows once the combination is published.
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_shows: Option<String>,
    profile: Option<String>,
    /// `login`, `dn`, `application` or null.
    profile_source: Option<&'static str>,
    /// Why a `--login-profile` was refused, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    login_profile_rejected: Option<String>,
    mode: &'static str,
    #[serde(flatten)]
    answer: Answer,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Answer {
    Push(RowJson),
    Pull {
        /// As given.
        availability: u64,
        class: &'static str,
        /// `on`, `off` or `unchanged`.
        dnd: &'static str,
        /// `EventDNDOn`, `EventDNDOff` or null.
        event: Option<&'static str>,
        ranges: Vec<String>,
        #[serde(skip)]
        described: String,
    },
    None {},
}

pub(crate) fn run(args: &ExplainArgs) -> Result<ExitCode> {
    let prepared = match prepare(&args.config.config, None)? {
        Ok(prepared) => prepared,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return Ok(ExitCode::from(1));
        }
    };
    let config = &prepared.loaded.config;
    let user = prepared.users.get(&args.dn);
    let resolution = config.resolve(&args.dn, args.login_profile.as_deref());
    let ext = config.extension(&args.dn);
    if ext.is_none() {
        // The daemon refuses such a DN (EventError 7): so does explain.
        eprintln!(
            "error: DN `{}` is not an Extension DN of `{}`: give one of its [dn.\"NUMBER\"] tables with type = \"Extension\"",
            args.dn,
            args.config.config.display()
        );
        return Ok(ExitCode::from(1));
    }
    let mode = resolution.profile.map_or(Mode::None, |p| p.mode.kind());
    let answer = match (
        resolution.profile.map(|p| &p.mode),
        args.agent_state,
        args.device_state,
        args.availability,
    ) {
        (Some(ProfileMode::Push(push)), Some(agent), Some(device), _) => {
            let table = PushTable::compile(&push.states, &push.map)?;
            let index = StateIndex::of(agent, device);
            Answer::Push(row(index, table.by_index(index).map(|p| &**p)))
        }
        (Some(ProfileMode::Pull(pull)), _, _, Some(raw)) => {
            let dnd = PullMapper::new(&pull.ranges).map_wire(raw);
            Answer::Pull {
                availability: raw,
                class: Availability::from_wire(raw).class().name(),
                dnd: dnd.map_or("unchanged", |d| d.as_str()),
                event: dnd.map(|d| d.event_name()),
                ranges: pull.ranges.iter().map(ToString::to_string).collect(),
                described: ranges_text(&pull.ranges),
            }
        }
        (None | Some(ProfileMode::None), _, _, _) => Answer::None {},
        (Some(ProfileMode::Push(_)), ..) => {
            eprintln!(
                "error: DN `{}` is on push profile `{}`: give --agent-state and --device-state (not --availability)",
                args.dn,
                resolution.profile.map_or("", |p| p.name.as_str())
            );
            return Ok(ExitCode::from(2));
        }
        (Some(ProfileMode::Pull(_)), ..) => {
            eprintln!(
                "error: DN `{}` is on pull profile `{}`: give --availability N (not agent and device states)",
                args.dn,
                resolution.profile.map_or("", |p| p.name.as_str())
            );
            return Ok(ExitCode::from(2));
        }
    };
    let platform_shows = match (&answer, user) {
        (Answer::Push(_), Some(user)) => {
            let table = match resolution.profile.map(|p| &p.mode) {
                Some(ProfileMode::Push(push)) => Some(PushTable::compile(&push.states, &push.map)?),
                _ => None,
            };
            let publication = table.as_ref().and_then(|t| {
                args.agent_state
                    .zip(args.device_state)
                    .and_then(|(a, d)| t.get(a, d))
            });
            let transport = Configured::all(&prepared.loaded.sections)
                .into_iter()
                .find(|c| &c.platform() == user.platform());
            publication
                .zip(transport)
                .map(|(publication, transport)| transport.describe(publication))
        }
        _ => None,
    };
    let explanation = Explanation {
        dn: args.dn.clone(),
        uri: ext.and_then(|e| e.uri.as_ref()).map(ToString::to_string),
        platform: user.map(|u| u.platform().to_string()),
        user: user.map(|u| u.address().to_string()),
        platform_shows,
        profile: resolution.profile.map(|p| p.name.to_string()),
        profile_source: resolution.source.map(|s| s.as_str()),
        login_profile_rejected: resolution.rejected.map(|e| e.to_string()),
        mode: mode.as_str(),
        answer,
    };
    if args.json {
        crate::print_out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&explanation)?
        ))?;
    } else {
        crate::print_out(&text(&explanation))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn text(e: &Explanation) -> String {
    let mut out = String::new();
    write!(out, "DN {}", e.dn).unwrap();
    match (&e.platform, &e.user) {
        (Some(platform), Some(user)) => write!(out, " ({user} on {platform})").unwrap(),
        _ => {
            if let Some(uri) = &e.uri {
                write!(out, " ({uri})").unwrap();
            }
        }
    }
    out.push('\n');
    if let Some(reason) = &e.login_profile_rejected {
        writeln!(out, "  login profile refused: {reason}").unwrap();
    }
    match (&e.profile, e.profile_source) {
        (Some(profile), Some(source)) => {
            let from = match source {
                "login" => "the login session",
                "dn" => "the DN's annex",
                _ => "the application default",
            };
            writeln!(out, "  profile {profile} (from {from}), mode {}", e.mode).unwrap();
        }
        _ => writeln!(out, "  no profile applies: presence is not propagated").unwrap(),
    }
    match &e.answer {
        Answer::Push(RowJson {
            agent_state,
            device_state,
            index,
            aggregated_state,
            availability,
            class,
            activities,
        }) => {
            write!(
                out,
                "  agent {agent_state} + device {device_state} -> combination {index} -> "
            )
            .unwrap();
            match (aggregated_state, availability, class) {
                (Some(id), Some(a), Some(class)) => {
                    writeln!(out, "aggregated state {id}").unwrap();
                    writeln!(out, "  publishes availability {a} ({class})").unwrap();
                    for (lcid, text) in &activities.0 {
                        writeln!(out, "    activity {}", lcid_text(lcid, text)).unwrap();
                    }
                    if activities.0.is_empty() {
                        writeln!(out, "    (no activity text)").unwrap();
                    }
                    if let (Some(shows), Some(platform)) = (&e.platform_shows, &e.platform) {
                        writeln!(out, "  {platform} shows: {shows}").unwrap();
                    }
                }
                _ => writeln!(
                    out,
                    "no aggregated state: publishes nothing (the user keeps the last presence published)"
                )
                .unwrap(),
            }
        }
        Answer::Pull {
            availability,
            class,
            dnd,
            event,
            described,
            ..
        } => {
            let verdict = match *dnd {
                "off" => "inside",
                "on" => "outside",
                _ => "not set",
            };
            match event {
                Some(event) => writeln!(
                    out,
                    "  availability {availability} ({class}) is {verdict} the available ranges {described}\n  -> {event} (DND {dnd}), sent to the DN's clients when it changes the DN's DND state"
                )
                .unwrap(),
                None => writeln!(
                    out,
                    "  availability {availability} is {verdict} (0): it changes nothing"
                )
                .unwrap(),
            }
        }
        Answer::None {} => {}
    }
    out
}
