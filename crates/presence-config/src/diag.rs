//! Diagnostics: what went wrong or looks wrong, and exactly where.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use presence_map::MapError;
use presence_model::ModelError;

/// A place in a file: its name as given, and a 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file, as the caller named it (a path, or `<inline>`).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Byte offsets → line and column, in O(log lines) per lookup.
#[derive(Clone, Debug)]
pub(crate) struct LineIndex {
    file: Arc<str>,
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(file: Arc<str>, text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { file, starts }
    }

    pub(crate) fn file(&self) -> &Arc<str> {
        &self.file
    }

    /// The location of a byte offset in `text` (the text this index was built from).
    pub(crate) fn locate(&self, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Location {
            file: Arc::clone(&self.file),
            line: line as u32,
            column: column as u32,
        }
    }
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Not a problem of its own: more about an error reported beside it (for example the
    /// DNs that depend on a profile an error made unusable).
    Note,
    /// The configuration loads; something is ignored or probably not meant.
    Warning,
    /// The configuration is refused.
    Error,
}

impl Severity {
    /// `note`, `warning` or `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can be wrong with a configuration (errors and warnings alike): the
/// crate's one error type. A [`Diagnostic`] adds where and how serious.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file is not valid TOML (the parser's message, without its own rendering of the
    /// location: the diagnostic gives file:line:column).
    #[error("not valid TOML: {}", source.message().trim_end())]
    Syntax {
        /// The TOML parser's error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The file is larger than the limit.
    #[error("the file is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The file's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A key that is not known in this place.
    #[error("unknown {what} `{key}`: valid here: {valid}{}", suggestion(.key, .valid))]
    UnknownKey {
        /// What kind of key (`option`, `table`, `DN field`).
        what: &'static str,
        /// The key as written.
        key: String,
        /// The valid keys, comma-separated.
        valid: String,
    },
    /// A value of the wrong TOML type.
    #[error("`{key}` must be {expected}, not {found}")]
    WrongType {
        /// The key.
        key: String,
        /// What is expected.
        expected: &'static str,
        /// The TOML type found.
        found: &'static str,
    },
    /// A required key is missing.
    #[error("`{key}` is missing: {hint}")]
    Missing {
        /// The key.
        key: &'static str,
        /// What to write.
        hint: &'static str,
    },
    /// A value that does not parse.
    #[error("{0}")]
    Value(#[from] ModelError),
    /// A boolean option with another value.
    #[error("`{token}` is not a boolean: expected true/false, yes/no or 1/0 (any case)")]
    NotABoolean {
        /// The offending value.
        token: String,
    },
    /// An empty list item or an empty list.
    #[error("{what}: expected {expected}")]
    BadList {
        /// What is wrong (`empty item after `3000-4499,``).
        what: String,
        /// The syntax.
        expected: &'static str,
    },
    /// An unknown DN type.
    #[error("DN type `{token}` is not known: expected Extension or VoIPService")]
    UnknownDnType {
        /// The offending type.
        token: String,
    },
    /// A profile name that names no presence-profile VoIP Service DN.
    #[error("`{name}` is not a presence profile: {}", known_profiles(.known))]
    UnknownProfile {
        /// The name given.
        name: String,
        /// The presence-profile DNs that exist.
        known: Vec<String>,
    },
    /// A note: a presence profile that an error made unusable, and who names it. The DNs
    /// listed are not reported again, each with a "not a presence profile" error of its own.
    #[error("{}", unusable_profile(.profile, .cause, .dns, *.application))]
    UnusableProfile {
        /// The profile.
        profile: String,
        /// What made it unusable, in a few words ("its `aggregated-states` is invalid").
        cause: &'static str,
        /// The Extension DNs whose annex names it, in file order.
        dns: Vec<String>,
        /// The application's `presence-profile` names it too.
        application: bool,
    },
    /// A key that a transport's or listener's table (`[sfb]`, `[sfb.subscription]`,
    /// `[cti]`, ...) does not have, or a top-level table that is not known.
    #[error("{}", unknown_section_key(.table.as_deref(), .key, .valid))]
    UnknownSectionKey {
        /// The table the key is in (`sfb.subscription`); `None` at the top level.
        table: Option<String>,
        /// The key as written.
        key: String,
        /// The keys (or, at the top level, the tables) valid there.
        valid: Vec<String>,
    },
    /// An Extension DN that gets presence but has no address of its user.
    #[error(
        "DN `{dn}` gets presence from profile `{profile}` ({mode}) but has no `uri`: add `uri = \"sip:user@domain\"` (a Teams user may give `entra-id` instead)"
    )]
    MissingUri {
        /// The DN.
        dn: String,
        /// The profile in force.
        profile: String,
        /// `push` or `pull`.
        mode: &'static str,
    },
    /// Two Extension DNs with one SIP address.
    #[error("SIP URI `{uri}` is already the address of DN `{first}`: each user may have one DN")]
    DuplicateUri {
        /// The address.
        uri: String,
        /// The DN that has it first.
        first: String,
    },
    /// Two Extension DNs with one Entra object id.
    #[error(
        "Entra object id `{id}` is already the user of DN `{first}`: each user may have one DN"
    )]
    DuplicateEntraId {
        /// The id.
        id: String,
        /// The DN that has it first.
        first: String,
    },
    /// A platform no transport of the running bridge serves.
    #[error("platform `{name}` is not configured: {}{}", configured_platforms(.configured), suggestion(.name, &.configured.join(", ")))]
    UnknownPlatform {
        /// The name given.
        name: String,
        /// The platforms configured.
        configured: Vec<String>,
    },
    /// Several platforms are configured and neither the DN nor the application names one.
    #[error(
        "DN `{dn}` gets presence but names no `platform`, and the application sets no `presence-platform`: with several platforms configured ({}) add `platform = \"...\"` to the DN or `presence-platform` to [options.TServer]",
        .configured.join(", ")
    )]
    NoPlatform {
        /// The DN.
        dn: String,
        /// The platforms configured.
        configured: Vec<String>,
    },
    /// The DN's user has no address of the kind its platform uses.
    #[error("DN `{dn}` is on platform `{platform}`, which needs {needs}")]
    MissingAddress {
        /// The DN.
        dn: String,
        /// The platform.
        platform: String,
        /// What the platform needs.
        needs: &'static str,
    },
    /// An address that cannot be used on the DN's platform.
    #[error("DN `{dn}`: {source}")]
    BadAddress {
        /// The DN.
        dn: String,
        /// Why.
        #[source]
        source: ModelError,
    },
    /// `aggregated-states` names an ID the map does not have.
    #[error(
        "index {index} maps to `{id}`, which the agent-presence map `{map}` does not define (it defines: {defined})"
    )]
    StateNotInMap {
        /// The combination.
        index: u8,
        /// The ID.
        id: String,
        /// The map file.
        map: String,
        /// The IDs the map defines.
        defined: String,
    },
    /// The agent-presence map file cannot be read.
    #[error("cannot read the agent-presence map `{path}`: {source}")]
    ReadMap {
        /// The resolved path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The agent-presence map is invalid.
    #[error("invalid agent-presence map: {0}")]
    Map(#[source] Box<MapError>),
    /// A transport's or listener's table (`[sfb]`, `[cti]`, ...) does not deserialize.
    #[error("{message}")]
    Section {
        /// What the deserializer said.
        message: String,
    },
    /// A warning: an option is ignored.
    #[error("`{option}` is ignored: {why}")]
    Ignored {
        /// The option or table.
        option: String,
        /// Why.
        why: &'static str,
    },
    /// A warning: the profile propagates nothing.
    #[error(
        "profile `{profile}` propagates nothing: set `map-presence-to-dnd = true` for pull mode, or `agent-presence-map` and `aggregated-states` for push mode"
    )]
    Inert {
        /// The profile.
        profile: String,
    },
    /// A warning: combinations with no aggregated state.
    #[error(
        "indexes {indexes} have no aggregated state: those combinations publish nothing (the user keeps the last presence published)"
    )]
    UnmappedIndexes {
        /// The indexes, comma-separated.
        indexes: String,
    },
    /// A warning: a map entry that no index uses.
    #[error("aggregated state `{id}` is not used by `aggregated-states` of profile(s) {profiles}")]
    UnusedState {
        /// The ID.
        id: String,
        /// The profiles using this map.
        profiles: String,
    },
    /// A warning from the map parser.
    #[error("{message}")]
    MapWarning {
        /// The parser's message.
        message: String,
    },
}

fn configured_platforms(configured: &[String]) -> String {
    if configured.is_empty() {
        "no transport is configured (add a [sfb], [teams] or [simple] table)".to_owned()
    } else {
        format!("the configured platforms are {}", configured.join(", "))
    }
}

/// How many DNs a note about an unusable profile lists before it says "and N more".
const DEPENDENTS_LISTED: usize = 10;

fn unusable_profile(profile: &str, cause: &str, dns: &[String], application: bool) -> String {
    let mut text = format!("profile `{profile}` cannot be used ({cause}: see the error above)");
    if !dns.is_empty() {
        let listed: Vec<&str> = dns
            .iter()
            .take(DEPENDENTS_LISTED)
            .map(String::as_str)
            .collect();
        let more = dns.len() - listed.len();
        text.push_str(&format!(
            ", and {} that name{} it depend{} on it: {}{}",
            if dns.len() == 1 {
                "the DN".to_owned()
            } else {
                format!("the {} DNs", dns.len())
            },
            if dns.len() == 1 { "s" } else { "" },
            if dns.len() == 1 { "s" } else { "" },
            listed.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if application {
        text.push_str(
            ", and it is the application's default `presence-profile`: every DN without a profile of its own depends on it",
        );
    }
    text
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
fn alternatives(valid: &[String]) -> String {
    let quoted: Vec<String> = valid.iter().map(|v| format!("`{v}`")).collect();
    match quoted.split_last() {
        None => "nothing".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

fn unknown_section_key(table: Option<&str>, key: &str, valid: &[String]) -> String {
    let hint = suggestion_among(key, valid.iter().map(String::as_str));
    match table {
        Some(table) => format!(
            "unknown key `{key}` in `[{table}]`: expected {}{hint}",
            alternatives(valid)
        ),
        None => format!(
            "unknown top-level table or key `{key}`: expected {} (besides `options` and `dn`){hint}",
            alternatives(valid)
        ),
    }
}

fn suggestion(key: &str, valid: &str) -> String {
    suggestion_among(key, valid.split(", "))
}

fn suggestion_among<'v>(key: &str, valid: impl Iterator<Item = &'v str>) -> String {
    let best = valid
        .map(|candidate| (edit_distance(key, candidate), candidate))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min();
    match best {
        Some((_, candidate)) => format!("; did you mean `{candidate}`?"),
        None => String::new(),
    }
}

fn known_profiles(known: &[String]) -> String {
    if known.is_empty() {
        "no VoIP Service DN has `service-type = presence-profile`".to_owned()
    } else {
        format!(
            "expected the name of a VoIP Service DN with `service-type = presence-profile` ({})",
            known.join(", ")
        )
    }
}

/// Levenshtein distance on characters, for "did you mean" hints (inputs are short keys).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(!ca.eq_ignore_ascii_case(cb));
            let next = (row[j] + 1).min(row[j + 1] + 1).min(previous + cost);
            previous = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// One finding: how serious, where, which DN and option, and what.
#[derive(Debug)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where.
    pub location: Location,
    /// The DN the finding is about, if any.
    pub dn: Option<String>,
    /// The option (or key) the finding is about, if any.
    pub option: Option<String>,
    /// What.
    pub error: ConfigError,
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: error: DN `5001`, option `presence-profile`: message`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ", self.location, self.severity)?;
        match (&self.dn, &self.option) {
            (Some(dn), Some(option)) => write!(f, "DN `{dn}`, option `{option}`: ")?,
            (Some(dn), None) => write!(f, "DN `{dn}`: ")?,
            (None, Some(option)) => write!(f, "option `{option}`: ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.error)
    }
}

/// The diagnostics of a configuration that was refused: at least one error, and the
/// warnings found alongside.
#[derive(Debug)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Warning)
    }

    /// The notes only: more about the errors (which DNs depend on a broken profile).
    pub fn notes(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Note)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        write!(
            f,
            "the configuration is invalid ({errors} error{})",
            if errors == 1 { "" } else { "s" }
        )?;
        for d in &self.0 {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects diagnostics while a configuration is read.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub(crate) list: Vec<Diagnostic>,
}

impl Sink {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        location: Location,
        dn: Option<&str>,
        option: Option<&str>,
        error: ConfigError,
    ) {
        self.list.push(Diagnostic {
            severity,
            location,
            dn: dn.map(str::to_owned),
            option: option.map(str::to_owned),
            error,
        });
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }
}

/// A span within the configuration text.
pub(crate) type Span = Range<usize>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_in_characters() {
        let text = "a = 1\nÿb = \"x\"\n\nlast";
        let index = LineIndex::new(Arc::from("f.toml"), text);
        assert_eq!(index.locate(text, 0).to_string(), "f.toml:1:1");
        let b = text.find('b').unwrap();
        assert_eq!(index.locate(text, b).to_string(), "f.toml:2:2");
        let last = text.find("last").unwrap();
        assert_eq!(index.locate(text, last).to_string(), "f.toml:4:1");
        assert_eq!(index.locate(text, 10_000).line, 4);
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("presence-profle", "presence-profile"), 1);
        let hint = suggestion("presence-profle", "presence-profile, uri");
        assert!(hint.contains("presence-profile"), "{hint}");
        assert_eq!(suggestion("zzz", "presence-profile, uri"), "");
    }
}
