//! `presence-bridge check`: validate a configuration and print what it does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use presence_config::{Config, Diagnostic, Mode, ProfileMode, Severity, Source, Users, locate_key};
use presence_model::{Activities, AvailabilityClass, AvailabilityRange, Lcid, StateIndex};
use presence_push::{Publication, PushTable};
use serde::Serialize;

use crate::CheckArgs;
use crate::files::{Sections, load_text, read_config};
use crate::transports::{self, Configured};

/// Above this many Extension DNs, the text report summarises per profile unless --all-dns.
const DN_LIST_LIMIT: usize = 50;

/// The `check --json` object (documented in docs/cli.md; keep it stable).
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    file: String,
    valid: bool,
    errors: Vec<DiagnosticJson>,
    warnings: Vec<DiagnosticJson>,
    /// More about the errors: the DNs that depend on a profile an error made unusable.
    notes: Vec<DiagnosticJson>,
    application_profile: Option<String>,
    profiles: Vec<ProfileJson>,
    dns: Vec<DnJson>,
    summary: Summary,
}

/// One error or warning.
#[derive(Debug, Serialize)]
pub(crate) struct DiagnosticJson {
    severity: &'static str,
    file: String,
    line: u32,
    column: u32,
    dn: Option<String>,
    option: Option<String>,
    message: String,
}

impl From<&Diagnostic> for DiagnosticJson {
    fn from(d: &Diagnostic) -> Self {
        DiagnosticJson {
            severity: d.severity.as_str(),
            file: d.location.file.to_string(),
            line: d.location.line,
            column: d.location.column,
            dn: d.dn.clone(),
            option: d.option.clone(),
            message: d.error.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
struct ProfileJson {
    name: String,
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<PushJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pull: Option<PullJson>,
}

#[derive(Debug, Serialize)]
struct PushJson {
    map: String,
    rows: Vec<RowJson>,
}

/// Activity texts in file order, serialized as a JSON object LCID → text.
#[derive(Debug, Default, Clone)]
pub(crate) struct Texts(pub Vec<(String, String)>);

impl Texts {
    pub(crate) fn of(activities: &Activities) -> Self {
        Texts(
            activities
                .iter()
                .map(|(lcid, text)| (lcid.to_string(), text.to_string()))
                .collect(),
        )
    }
}

impl Serialize for Texts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// "1033 en-US: text" for known LCIDs, "1234: text" for others.
pub(crate) fn lcid_text(lcid: &str, text: &str) -> String {
    let tag = lcid.parse::<u32>().ok().and_then(|n| Lcid::new(n).tag());
    match tag {
        Some(tag) => format!("{lcid} {tag}: {text}"),
        None => format!("{lcid}: {text}"),
    }
}

/// "3000-5999 (Online, IdleOnline)": ranges with the availability classes they touch.
pub(crate) fn ranges_text(ranges: &[AvailabilityRange]) -> String {
    ranges
        .iter()
        .map(|r| {
            let classes: Vec<&str> = AvailabilityClass::ALL
                .into_iter()
                .filter(|c| {
                    let cr = c.range();
                    cr.start() <= r.end() && r.start() <= cr.end()
                })
                .map(AvailabilityClass::name)
                .collect();
            format!("{r} ({})", classes.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One of the 15 combinations of a push profile.
#[derive(Debug, Serialize)]
pub(crate) struct RowJson {
    pub index: u8,
    pub agent_state: &'static str,
    pub device_state: &'static str,
    pub aggregated_state: Option<String>,
    pub availability: Option<u16>,
    pub class: Option<&'static str>,
    pub activities: Texts,
}

#[derive(Debug, Serialize)]
struct PullJson {
    ranges: Vec<String>,
    default_ranges: bool,
    #[serde(skip)]
    described: String,
}

#[derive(Debug, Serialize)]
struct DnJson {
    dn: String,
    uri: Option<String>,
    /// The platform the DN's user lives on, when it has one.
    platform: Option<String>,
    /// The user as the platform knows it (SIP URI, UPN, Entra object id).
    user: Option<String>,
    /// `check --online`: what the platform said about the user (`resolved` or why not).
    #[serde(skip_serializing_if = "Option::is_none")]
    online: Option<String>,
    profile: Option<String>,
    source: Option<&'static str>,
    mode: &'static str,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    profiles: usize,
    dns: usize,
    push: usize,
    pull: usize,
    none: usize,
}

/// One combination and what it publishes, as printed and as in JSON.
pub(crate) fn row(index: StateIndex, publication: Option<&Publication>) -> RowJson {
    RowJson {
        index: index.get(),
        agent_state: index.agent().name(),
        device_state: index.device().name(),
        aggregated_state: publication.map(|p| p.id.to_string()),
        availability: publication.map(|p| p.presence.availability.get()),
        class: publication.map(|p| p.presence.availability.class().name()),
        activities: publication
            .map(|p| Texts::of(&p.presence.activities))
            .unwrap_or_default(),
    }
}

/// The 15 rows of a push table.
pub(crate) fn rows(table: &PushTable) -> Vec<RowJson> {
    table
        .rows()
        .map(|(index, publication)| row(index, publication.map(|p| &**p)))
        .collect()
}

fn report<'d>(
    file: String,
    config: Option<&Config>,
    users: Option<&Users>,
    diagnostics: impl IntoIterator<Item = &'d Diagnostic>,
) -> Result<Report> {
    let (mut errors, mut warnings, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for d in diagnostics {
        match d.severity {
            Severity::Error => errors.push(DiagnosticJson::from(d)),
            Severity::Warning => warnings.push(DiagnosticJson::from(d)),
            Severity::Note => notes.push(DiagnosticJson::from(d)),
        }
    }
    let mut report = Report {
        file,
        valid: errors.is_empty(),
        errors,
        warnings,
        notes,
        application_profile: None,
        profiles: Vec::new(),
        dns: Vec::new(),
        summary: Summary::default(),
    };
    let Some(config) = config else {
        return Ok(report);
    };
    report.application_profile = config.application_profile().map(ToString::to_string);
    for profile in config.profiles() {
        let mut json = ProfileJson {
            name: profile.name.to_string(),
            mode: profile.mode.kind().as_str(),
            push: None,
            pull: None,
        };
        match &profile.mode {
            ProfileMode::Push(push) => {
                let table = PushTable::compile(&push.states, &push.map)?;
                json.push = Some(PushJson {
                    map: push.map_path.display().to_string(),
                    rows: rows(&table),
                });
            }
            ProfileMode::Pull(pull) => {
                json.pull = Some(PullJson {
                    ranges: pull.ranges.iter().map(ToString::to_string).collect(),
                    default_ranges: pull.default_ranges,
                    described: ranges_text(&pull.ranges),
                });
            }
            ProfileMode::None => {}
        }
        report.profiles.push(json);
    }
    report.summary.profiles = report.profiles.len();
    for ext in config.extensions() {
        let resolution = config.resolve(ext.number.as_str(), None);
        let mode = resolution.profile.map_or(Mode::None, |p| p.mode.kind());
        match mode {
            Mode::Push => report.summary.push += 1,
            Mode::Pull => report.summary.pull += 1,
            Mode::None => report.summary.none += 1,
        }
        let user = users.and_then(|u| u.get(ext.number.as_str()));
        report.dns.push(DnJson {
            dn: ext.number.to_string(),
            uri: ext.uri.as_ref().map(ToString::to_string),
            platform: user.map(|u| u.platform().to_string()),
            user: user.map(|u| u.address().to_string()),
            online: None,
            profile: resolution.profile.map(|p| p.name.to_string()),
            source: resolution.source.map(|s| s.as_str()),
            mode: mode.as_str(),
        });
    }
    report.summary.dns = report.dns.len();
    Ok(report)
}

pub(crate) fn run(args: &CheckArgs) -> Result<ExitCode> {
    let path = &args.config.config;
    let file = path.display().to_string();
    let source = read_config(path)?;
    let report = match load_text(path, &source) {
        Ok(loaded) => {
            let configured = Configured::all(&loaded.sections);
            // DNs' users on the platforms this file configures (none configured: the
            // platforms are not known, so only the DNs' own syntax was checked).
            let (users, user_errors) = if configured.is_empty() {
                (None, Vec::new())
            } else {
                match loaded.config.users(&transports::specs(&configured)) {
                    Ok(users) => (Some(users), Vec::new()),
                    Err(errors) => (None, errors),
                }
            };
            let mut report = report(
                file.clone(),
                Some(&loaded.config),
                users.as_ref(),
                user_errors.iter().chain(&loaded.warnings),
            )?;
            let config_source = Source {
                path,
                text: &source,
            };
            for (severity, key, message) in section_findings(&loaded.sections, &configured) {
                // The key's own line (`certificate = ...`), or its table's when the key is
                // not written (a required key that is missing).
                let (line, column) =
                    locate_key(&config_source, key).map_or((1, 1), |l| (l.line, l.column));
                let d = DiagnosticJson {
                    severity,
                    file: file.clone(),
                    line,
                    column,
                    dn: None,
                    option: None,
                    message,
                };
                match severity {
                    "error" => report.errors.push(d),
                    _ => report.warnings.push(d),
                }
            }
            if args.online && report.errors.is_empty() {
                online(&mut report, &configured, users.as_ref())?;
            }
            report.valid = report.errors.is_empty();
            report
        }
        Err(diagnostics) => report(file, None, None, &diagnostics.0)?,
    };
    if args.json {
        crate::print_out(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        crate::print_out(&text(&report, args.all_dns))?;
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `check --online`: asks the platforms about the DNs' users (Teams: every UPN is looked
/// up in the tenant). Nothing is published. A user that does not resolve is an error for
/// its DN.
fn online(report: &mut Report, configured: &[Configured], users: Option<&Users>) -> Result<()> {
    let Some(users) = users else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for transport in configured {
        let Configured::Teams(settings) = transport else {
            continue;
        };
        let upns: Vec<(String, presence_model::Upn)> = users
            .iter()
            .filter(|(_, u)| u.platform() == &transport.platform())
            .filter_map(|(dn, u)| match u.address() {
                presence_model::UserAddress::Upn(upn) => Some((dn.to_string(), upn.clone())),
                _ => None,
            })
            .collect();
        let list: Vec<presence_model::Upn> = upns.iter().map(|(_, u)| u.clone()).collect();
        let answers = match runtime.block_on(presence_graph::probe(settings, &list)) {
            Ok(answers) => answers,
            Err(error) => {
                report.errors.push(DiagnosticJson {
                    severity: "error",
                    file: report.file.clone(),
                    line: 1,
                    column: 1,
                    dn: None,
                    option: None,
                    message: format!(
                        "[teams] cannot ask Microsoft Graph: {}",
                        presence_model::error_chain(&error)
                    ),
                });
                continue;
            }
        };
        for ((dn, upn), (_, answer)) in upns.iter().zip(answers) {
            let entry = report.dns.iter_mut().find(|d| &d.dn == dn);
            match answer {
                Ok(id) => {
                    if let Some(entry) = entry {
                        entry.online = Some(format!("resolved to {id}"));
                    }
                }
                Err(why) => {
                    if let Some(entry) = entry {
                        entry.online = Some(format!("not resolved: {why}"));
                    }
                    report.errors.push(DiagnosticJson {
                        severity: "error",
                        file: report.file.clone(),
                        line: 1,
                        column: 1,
                        dn: Some(dn.clone()),
                        option: Some("uri".to_owned()),
                        message: format!("Teams user `{upn}` does not resolve: {why}"),
                    });
                }
            }
        }
    }
    Ok(())
}

fn diagnostic_line(d: &DiagnosticJson) -> String {
    let mut line = format!("{}:{}:{}: {}: ", d.file, d.line, d.column, d.severity);
    match (&d.dn, &d.option) {
        (Some(dn), Some(option)) => write!(line, "DN `{dn}`, option `{option}`: "),
        (Some(dn), None) => write!(line, "DN `{dn}`: "),
        (None, Some(option)) => write!(line, "option `{option}`: "),
        (None, None) => Ok(()),
    }
    .expect("writing to a String");
    line.push_str(&d.message);
    line
}

/// The human-readable report.
fn text(report: &Report, all_dns: bool) -> String {
    let mut out = String::new();
    for d in report
        .errors
        .iter()
        .chain(&report.notes)
        .chain(&report.warnings)
    {
        writeln!(out, "{}", diagnostic_line(d)).unwrap();
    }
    if !report.valid {
        writeln!(
            out,
            "{}: INVALID: {} error(s), {} warning(s)",
            report.file,
            report.errors.len(),
            report.warnings.len()
        )
        .unwrap();
        return out;
    }
    if !report.errors.is_empty() || !report.warnings.is_empty() {
        out.push('\n');
    }
    for profile in &report.profiles {
        writeln!(out, "Profile {} — mode {}", profile.name, profile.mode).unwrap();
        if let Some(push) = &profile.push {
            writeln!(out, "  agent-presence map: {}", push.map).unwrap();
            writeln!(
                out,
                "  {:>2}  {:<9}  {:<6}  {:<16}  {:<20}  activity texts",
                "#", "agent", "device", "aggregated state", "availability"
            )
            .unwrap();
            let mut first_row: BTreeMap<&str, u8> = BTreeMap::new();
            for row in &push.rows {
                let (id, availability) = match (&row.aggregated_state, row.availability) {
                    (Some(id), Some(a)) => (
                        id.as_str(),
                        format!("{a:>5} {}", AvailabilityClass::of(a).name()),
                    ),
                    _ => ("—", "publishes nothing".to_owned()),
                };
                let mut texts = row.activities.0.iter();
                let first = texts
                    .next()
                    .map(|(lcid, text)| lcid_text(lcid, text))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  {:>2}  {:<9}  {:<6}  {:<16}  {:<20}  {first}",
                    row.index, row.agent_state, row.device_state, id, availability
                )
                .unwrap();
                match first_row.get(id) {
                    Some(first) if texts.len() > 0 => {
                        writeln!(out, "  {:63}(+{} more, as row {first})", "", texts.len())
                            .unwrap();
                    }
                    _ => {
                        first_row.insert(id, row.index);
                        for (lcid, text) in texts {
                            writeln!(out, "  {:63}{}", "", lcid_text(lcid, text)).unwrap();
                        }
                    }
                }
            }
        }
        if let Some(pull) = &profile.pull {
            writeln!(
                out,
                "  available (EventDNDOff): {}{}",
                pull.described,
                if pull.default_ranges {
                    " (default)"
                } else {
                    ""
                }
            )
            .unwrap();
            writeln!(
                out,
                "  any other availability: EventDNDOn; availability 0 (not set) changes nothing"
            )
            .unwrap();
        }
        if profile.push.is_none() && profile.pull.is_none() {
            writeln!(out, "  propagates nothing").unwrap();
        }
        out.push('\n');
    }
    writeln!(
        out,
        "Application default profile: {}",
        report.application_profile.as_deref().unwrap_or("(none)")
    )
    .unwrap();
    let s = &report.summary;
    writeln!(
        out,
        "\nExtension DNs: {} ({} push, {} pull, {} none)",
        s.dns, s.push, s.pull, s.none
    )
    .unwrap();
    if all_dns || report.dns.len() <= DN_LIST_LIMIT {
        for dn in &report.dns {
            let user = match (&dn.platform, &dn.user) {
                (Some(platform), Some(user)) => format!("{platform}: {user}"),
                _ => dn.uri.clone().unwrap_or_else(|| "(no user)".to_owned()),
            };
            writeln!(
                out,
                "  {:<10}  {:<40}  {:<16}  {:<11}  {}{}",
                dn.dn,
                user,
                dn.profile.as_deref().unwrap_or("(no profile)"),
                dn.source.unwrap_or("-"),
                dn.mode,
                dn.online
                    .as_deref()
                    .map(|o| format!("  ({o})"))
                    .unwrap_or_default()
            )
            .unwrap();
        }
    } else {
        type Group<'a> = (Option<&'a str>, Option<&'a str>, &'a str, Option<&'a str>);
        let mut groups: BTreeMap<Group<'_>, usize> = BTreeMap::new();
        for dn in &report.dns {
            *groups
                .entry((
                    dn.profile.as_deref(),
                    dn.source,
                    dn.mode,
                    dn.platform.as_deref(),
                ))
                .or_default() += 1;
        }
        for ((profile, source, mode, platform), count) in groups {
            writeln!(
                out,
                "  {count:>8} DNs on {} (from {}), mode {mode}, platform {}",
                profile.unwrap_or("(no profile)"),
                source.unwrap_or("-"),
                platform.unwrap_or("-")
            )
            .unwrap();
        }
        writeln!(out, "  (use --all-dns to list every DN)").unwrap();
    }
    writeln!(
        out,
        "\n{}: valid: {} profile(s), {} Extension DN(s), {} warning(s)",
        report.file,
        report.profiles.len(),
        report.dns.len(),
        report.warnings.len()
    )
    .unwrap();
    out
}

/// What `run` would refuse in the transport and listener tables, beyond their syntax (which
/// the loader checks): each transport's own findings (an error for a setting that cannot
/// work, a warning for a file that cannot be read here: the check may run on another
/// machine than the daemon), and the listeners'. Each names the key it is about
/// (`sfb.tls.certificate`, or a table: `cti`); `""` for the file as a whole.
fn section_findings(
    sections: &Sections,
    configured: &[Configured],
) -> Vec<(&'static str, &'static str, String)> {
    let mut out: Vec<(&'static str, &'static str, String)> = configured
        .iter()
        .flat_map(Configured::findings)
        .map(|f| (f.severity.as_str(), f.key, f.message))
        .collect();
    if configured.is_empty() {
        out.push((
            "warning",
            "",
            "no transport table ([sfb], [teams] or [simple]): `run` needs at least one (check and explain do not)".to_owned(),
        ));
    }
    if let Some(cti) = &sections.cti
        && let Err(e) = cti.validate()
    {
        out.push(("error", "cti", e.to_string()));
    }
    if let Some(admin) = &sections.admin
        && let Err(e) = admin.validate()
    {
        out.push(("error", "admin", e.to_string()));
    }
    if let Some(ha) = &sections.ha {
        out.extend(ha.findings().into_iter().map(|f| {
            (
                f.severity.as_str(),
                f.key,
                format!("`{}`: {}", f.key, f.message),
            )
        }));
    }
    out
}
