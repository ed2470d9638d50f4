//! Reading a configuration document: TOML with spans → validated [`Config`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use presence_map::{AgentPresenceMap, ParseOptions};
use presence_model::{AggregatedStates, AvailabilityRange, DnNumber, EntraId, Platform, SipUri};
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::ConfigError;
use crate::config::{
    Config, DEFAULT_AVAILABLE_RANGE, ExtensionDn, Profile, ProfileMode, PullSettings, PushSettings,
};
use crate::diag::{Diagnostic, Diagnostics, LineIndex, Location, Severity, Sink, Span};
use crate::options::{
    OptionValueError, parse_aggregated_states, parse_availability_ranges, parse_bool,
};
use crate::split;

/// The largest configuration file accepted by default: 64 MiB **(decision)**.
pub const DEFAULT_MAX_CONFIG_SIZE: usize = 64 * 1024 * 1024;

/// A configuration text and the path it came from (the path names it in diagnostics and
/// is the base of relative map paths).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The path of the file, as the user gave it.
    pub path: &'a Path,
    /// Its content.
    pub text: &'a str,
}

/// Options of [`load`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The size limit of the configuration text.
    pub max_size: usize,
    /// Limits of the agent-presence map parser.
    pub map: ParseOptions,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_size: DEFAULT_MAX_CONFIG_SIZE,
            map: ParseOptions::default(),
        }
    }
}

/// A configuration that loaded, and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded<S> {
    /// The configuration.
    pub config: Config,
    /// The other top-level tables (`[sfb]`, `[cti]`, ...), deserialized into the caller's
    /// type.
    pub sections: S,
    /// Warnings (nothing here stopped the load).
    pub warnings: Vec<Diagnostic>,
}

/// The sections type for callers that read no top-level table besides `[options]` and
/// `[dn]`: any other table is an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSections {}

/// Reads and validates a configuration.
///
/// The top-level tables other than `[options]` and `[dn]` (transport and listener settings
/// such as `[sfb]`, `[cti]`, `[admin]`) are deserialized together into `S`, the caller's
/// type: give it `#[serde(deny_unknown_fields)]` so that a misspelt table is an error.
/// Use [`NoSections`] when there are none.
///
/// `read_file` is called once per distinct agent-presence map path (already resolved
/// against the configuration's folder); this crate does no I/O of its own. Pass
/// `|path| std::fs::read(path)` to read from disk, or a closure over a map of texts in
/// tests.
///
/// On failure every error and warning found is returned, each with file:line:column, the
/// DN, the option, the offending value, and what would be valid.
pub fn load<S: DeserializeOwned>(
    source: &Source<'_>,
    options: &LoadOptions,
    read_file: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
) -> Result<Loaded<S>, Diagnostics> {
    load_sliced(source, options, read_file, Some(split::CHUNK_DNS))
}

/// [`load`], reading DN tables `chunk_dns` at a time where it can (`None`: never).
fn load_sliced<S: DeserializeOwned>(
    source: &Source<'_>,
    options: &LoadOptions,
    read_file: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
    chunk_dns: Option<usize>,
) -> Result<Loaded<S>, Diagnostics> {
    let file: Arc<str> = Arc::from(source.path.display().to_string());
    let lines = LineIndex::new(Arc::clone(&file), source.text);
    let mut w = Walker {
        text: source.text,
        lines,
        sink: Sink::default(),
        unusable: BTreeMap::new(),
        platforms: BTreeSet::new(),
        base: 0,
    };
    if source.text.len() > options.max_size {
        let location = w.loc(0);
        w.sink.push(
            Severity::Error,
            location,
            None,
            None,
            ConfigError::TooLarge {
                size: source.text.len(),
                limit: options.max_size,
            },
        );
        return Err(Diagnostics(w.sink.list));
    }
    // A document of DN tables is read a slice of DNs at a time when that reads exactly what
    // one parse of the whole would (see `split`); otherwise, or when a slice does not parse,
    // at once (and a syntax error is then reported as the whole parse finds it).
    let layout = chunk_dns.and_then(|n| split::split(source.text, n));
    let sliced = layout.as_ref().and_then(|layout| w.read_in_slices(layout));
    let read = match sliced {
        Some(read) => read,
        None => {
            w.reset();
            let root = match DeTable::parse(source.text) {
                Ok(root) => root,
                Err(e) => {
                    let location = w.loc(e.span().map_or(0, |s| s.start));
                    w.sink.push(
                        Severity::Error,
                        location,
                        None,
                        None,
                        ConfigError::Syntax {
                            source: Box::new(e),
                        },
                    );
                    return Err(Diagnostics(w.sink.list));
                }
            };
            w.read(root.into_inner())
        }
    };
    let base = source.path.parent().unwrap_or(Path::new(""));
    let (config, sections) = w.build::<S>(read, options, base, read_file);
    match sections {
        Some(sections) if !w.sink.has_errors() => Ok(Loaded {
            config,
            sections,
            warnings: w.sink.list,
        }),
        _ => Err(Diagnostics(w.sink.list)),
    }
}

const DN_FIELDS: &str = "type, uri, entra-id, platform, annex";
const APP_OPTIONS: &str = "presence-profile, presence-platform";
const EXTENSION_OPTIONS: &str = "presence-profile";
const PROFILE_OPTIONS: &str = "service-type, map-presence-to-dnd, presence-availability-range, agent-presence-map, aggregated-states";

type Value<'i> = Spanned<DeValue<'i>>;

struct Walker<'t> {
    text: &'t str,
    lines: LineIndex,
    sink: Sink,
    /// Presence profiles an error made unusable, by name: their error is reported once,
    /// and the DNs that name them are listed in one note instead of an error each.
    unusable: BTreeMap<String, Unusable>,
    /// The platforms named so far: DNs naming the same platform share its value.
    platforms: BTreeSet<Platform>,
    /// Where the text being walked starts in the document: spans of a slice's tree count
    /// from the slice (see `split`).
    base: usize,
}

/// What a document holds, read, before cross-checks.
struct Read<'i> {
    application_profile: Option<(String, Span)>,
    application_platform: Option<(Platform, Span)>,
    raw_dns: Vec<RawDn<'i>>,
    /// The top-level tables other than `[options]` and `[dn]`.
    others: DeTable<'i>,
}

/// A presence profile that an error made unusable, and who names it.
struct Unusable {
    /// The profile DN's header.
    span: Span,
    /// What made it unusable, in a few words.
    cause: &'static str,
    /// The Extension DNs whose annex names it.
    dns: Vec<String>,
    /// The application's `presence-profile` names it.
    application: bool,
}

/// An option value as read: its text (TOML strings, and integers / booleans where natural,
/// as their text), the span of the value, and the offset of the text's first character
/// (when the value is a plain string the text maps byte for byte onto the source).
///
/// The text is borrowed from the document when TOML needed no unescaping.
struct OptionValue<'i> {
    text: Cow<'i, str>,
    span: Span,
    exact_start: Option<usize>,
}

/// One annex `[TServer]` option of a DN, with where it is.
struct Opt<'i> {
    value: OptionValue<'i>,
    key_span: Span,
}

/// A DN as read, before cross-checks.
///
/// An Extension DN's values are validated as they are read (so that diagnostics come in
/// document order) but kept as text, borrowed from the document where TOML needed no
/// unescaping: the values the [`Config`] keeps are made once the document's tree is freed.
/// Made while the tree lives, 100,000 DNs' small values would be scattered among its 200 MB
/// of allocations, and the allocator could give none of those pages back.
enum RawDn<'i> {
    Extension {
        number: Cow<'i, str>,
        span: Span,
        uri: Option<Cow<'i, str>>,
        entra_id: Option<Cow<'i, str>>,
        platform: Option<(Platform, Span)>,
        profile: Option<(Cow<'i, str>, Span)>,
    },
    Profile {
        number: DnNumber,
        span: Span,
        options: BTreeMap<&'static str, Opt<'i>>,
    },
}

/// `text` without leading and trailing whitespace; borrowed when `text` is.
fn trimmed(text: Cow<'_, str>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    }
}

impl<'t> Walker<'t> {
    fn loc(&self, offset: usize) -> Location {
        self.lines.locate(self.text, offset)
    }

    /// A span of the tree being walked, in the document.
    fn at(&self, span: Span) -> Span {
        span.start + self.base..span.end + self.base
    }

    /// Forgets what a walk found (before the document is read again, at once).
    fn reset(&mut self) {
        self.sink = Sink::default();
        self.unusable.clear();
        self.platforms.clear();
        self.base = 0;
    }

    fn error(&mut self, span: &Span, dn: Option<&str>, option: Option<&str>, error: ConfigError) {
        let location = self.loc(span.start);
        self.sink.push(Severity::Error, location, dn, option, error);
    }

    fn warn(&mut self, span: &Span, dn: Option<&str>, option: Option<&str>, error: ConfigError) {
        let location = self.loc(span.start);
        self.sink
            .push(Severity::Warning, location, dn, option, error);
    }

    fn unknown_key(
        &mut self,
        key: &Spanned<Cow<'_, str>>,
        dn: Option<&str>,
        what: &'static str,
        valid: &str,
    ) {
        let span = self.at(key.span());
        self.error(
            &span,
            dn,
            None,
            ConfigError::UnknownKey {
                what,
                key: key.get_ref().to_string(),
                valid: valid.to_owned(),
            },
        );
    }

    /// A table value, or an error naming the key.
    fn table<'v, 'i>(
        &mut self,
        key: &str,
        value: &'v Value<'i>,
        dn: Option<&str>,
    ) -> Option<&'v DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                let span = self.at(value.span());
                self.error(
                    &span,
                    dn,
                    None,
                    ConfigError::WrongType {
                        key: key.to_owned(),
                        expected: "a table",
                        found: other.type_str(),
                    },
                );
                None
            }
        }
    }

    /// An option value: strings as they are; integers and booleans as their text.
    fn option_value<'i>(
        &mut self,
        key: &str,
        value: &Value<'i>,
        dn: Option<&str>,
    ) -> Option<OptionValue<'i>> {
        let span = self.at(value.span());
        let text: Cow<'i, str> = match value.get_ref() {
            DeValue::String(s) => s.clone(),
            DeValue::Integer(i) => Cow::Owned(i.as_str().to_owned()),
            DeValue::Boolean(b) => Cow::Owned(b.to_string()),
            other => {
                self.error(
                    &span,
                    dn,
                    Some(key),
                    ConfigError::WrongType {
                        key: key.to_owned(),
                        expected: "a string (or a number / boolean where natural)",
                        found: other.type_str(),
                    },
                );
                return None;
            }
        };
        // A basic or literal one-line string whose source is exactly quote + text + quote:
        // offsets within the text map onto the source.
        let raw = self.text.get(span.clone()).unwrap_or("");
        let exact_start = match value.get_ref() {
            DeValue::String(_)
                if raw.len() == text.len() + 2 && raw.get(1..raw.len() - 1) == Some(&*text) =>
            {
                Some(span.start + 1)
            }
            DeValue::Integer(_) | DeValue::Boolean(_) if raw == text => Some(span.start),
            _ => None,
        };
        Some(OptionValue {
            text,
            span,
            exact_start,
        })
    }

    /// The source span of an item at `offset` within an option value.
    fn item_span(value: &OptionValue<'_>, offset: usize) -> Span {
        match value.exact_start {
            Some(start) => start + offset..start + offset,
            None => value.span.clone(),
        }
    }

    fn value_error(
        &mut self,
        value: &OptionValue<'_>,
        dn: Option<&str>,
        option: &str,
        e: OptionValueError,
    ) {
        let span = Self::item_span(value, e.offset);
        self.error(&span, dn, Some(option), e.error);
    }

    /// Reads a document parsed at once.
    fn read<'i>(&mut self, root: DeTable<'i>) -> Read<'i> {
        let mut read = Read {
            application_profile: None,
            application_platform: None,
            raw_dns: Vec::new(),
            others: DeTable::new(),
        };
        for (key, value) in root {
            match key.get_ref().as_ref() {
                "options" => {
                    (read.application_profile, read.application_platform) =
                        self.application_options(&value);
                }
                "dn" => {
                    if let Some(table) = self.table("dn", &value, None) {
                        for (number, dn) in table {
                            read.raw_dns.extend(self.dn(number, dn));
                        }
                    }
                }
                _ => {
                    read.others.insert(key, value);
                }
            }
        }
        read
    }

    /// Reads a document as `layout` cuts it, in the order a parse of the whole would give
    /// (its top-level keys in the order they first appear, `dn` where its first table is);
    /// `None` when the rest or a slice does not parse, or the rest names `dn`.
    fn read_in_slices<'l>(&mut self, layout: &'l split::Layout) -> Option<Read<'l>>
    where
        't: 'l,
    {
        let root = DeTable::parse(&layout.rest).ok()?.into_inner();
        if root.contains_key("dn") {
            return None;
        }
        let mut read = Read {
            application_profile: None,
            application_platform: None,
            raw_dns: Vec::new(),
            others: DeTable::new(),
        };
        let mut dns_read = false;
        for (key, value) in root {
            if !dns_read && key.span().start > layout.first_dn() {
                self.dns_in_slices(layout, &mut read.raw_dns)?;
                dns_read = true;
            }
            match key.get_ref().as_ref() {
                "options" => {
                    (read.application_profile, read.application_platform) =
                        self.application_options(&value);
                }
                _ => {
                    read.others.insert(key, value);
                }
            }
        }
        if !dns_read {
            self.dns_in_slices(layout, &mut read.raw_dns)?;
        }
        Some(read)
    }

    /// Reads the DN tables slice by slice, each slice's tree freed before the next is made.
    fn dns_in_slices<'l>(
        &mut self,
        layout: &split::Layout,
        raw_dns: &mut Vec<RawDn<'l>>,
    ) -> Option<()>
    where
        't: 'l,
    {
        let text: &'t str = self.text;
        for chunk in &layout.chunks {
            let root = DeTable::parse(text.get(chunk.clone())?).ok()?.into_inner();
            self.base = chunk.start;
            for (key, value) in &root {
                // A slice holds DN tables only (see `split`).
                let DeValue::Table(table) = value.get_ref() else {
                    return None;
                };
                if key.get_ref().as_ref() != "dn" {
                    return None;
                }
                for (number, dn) in table {
                    raw_dns.extend(self.dn(number, dn));
                }
            }
            self.base = 0;
        }
        Some(())
    }

    /// Checks what was read across the document and builds the configuration.
    fn build<S: DeserializeOwned>(
        &mut self,
        read: Read<'_>,
        options: &LoadOptions,
        base: &Path,
        read_file: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
    ) -> (Config, Option<S>) {
        let Read {
            application_profile,
            application_platform,
            raw_dns,
            others,
        } = read;
        let sections = self.sections::<S>(others);
        let profiles = self.profiles(&raw_dns, options, base, read_file);
        let mut config = Config {
            file: Arc::clone(self.lines.file()),
            application_profile: None,
            application_platform: application_platform
                .map(|(platform, span): (Platform, Span)| (platform, self.loc(span.start))),
            profiles,
            extensions: Vec::new(),
            by_number: HashMap::new(),
        };
        if let Some((name, span)) = application_profile
            && let Some(number) = self.profile_name(&config, &name, &span, None, "presence-profile")
        {
            config.application_profile = Some((number, self.loc(span.start)));
        }
        self.extensions(&mut config, raw_dns);
        self.unusable_notes();
        (config, sections)
    }

    /// One note per unusable profile that something names: which DNs depend on it.
    fn unusable_notes(&mut self) {
        for (name, unusable) in std::mem::take(&mut self.unusable) {
            if unusable.dns.is_empty() && !unusable.application {
                continue;
            }
            let location = self.loc(unusable.span.start);
            self.sink.push(
                Severity::Note,
                location,
                Some(&name),
                None,
                ConfigError::UnusableProfile {
                    profile: name.clone(),
                    cause: unusable.cause,
                    dns: unusable.dns,
                    application: unusable.application,
                },
            );
        }
    }

    /// Remembers that profile `number` (its header at `span`) cannot be used, and why.
    fn unusable(&mut self, number: &DnNumber, span: &Span, cause: &'static str) {
        self.unusable.insert(
            number.to_string(),
            Unusable {
                span: span.clone(),
                cause,
                dns: Vec::new(),
                application: false,
            },
        );
    }

    /// Deserializes the top-level tables other than `[options]` and `[dn]` into `S`.
    fn sections<S: DeserializeOwned>(&mut self, others: DeTable<'_>) -> Option<S> {
        let span = others.iter().next().map_or(0..0, |(key, _)| key.span());
        let mut keys = Vec::new();
        key_tables(&others, "", &mut keys);
        let value = Spanned::new(span.clone(), DeValue::Table(others));
        match S::deserialize(toml::de::ValueDeserializer::from(value)) {
            Ok(sections) => Some(sections),
            Err(e) => {
                let span = e.span().unwrap_or(span);
                let message = e.message().trim_end().to_owned();
                // serde names an unknown key but not its table: the span finds the table.
                let error = match (unknown_field(&message), keys.iter().find(|k| k.0 == span)) {
                    (Some(valid), Some((_, table, key))) => ConfigError::UnknownSectionKey {
                        table: table.clone(),
                        key: key.clone(),
                        valid,
                    },
                    _ => ConfigError::Section { message },
                };
                self.error(&span, None, None, error);
                None
            }
        }
    }

    /// The application's `presence-profile` and `presence-platform`.
    #[allow(clippy::type_complexity)]
    fn application_options(
        &mut self,
        value: &Value<'_>,
    ) -> (Option<(String, Span)>, Option<(Platform, Span)>) {
        let Some(sections) = self.table("options", value, None) else {
            return (None, None);
        };
        let mut profile = None;
        let mut platform = None;
        for (section, options) in sections {
            if section.get_ref() != "TServer" {
                self.warn(
                    &section.span(),
                    None,
                    None,
                    ConfigError::Ignored {
                        option: format!("[options.{}]", section.get_ref()),
                        why: "only the application's [TServer] section is read",
                    },
                );
                continue;
            }
            let Some(options) = self.table("options.TServer", options, None) else {
                continue;
            };
            for (key, value) in options {
                match key.get_ref().as_ref() {
                    "presence-profile" => {
                        profile = self
                            .option_value("presence-profile", value, None)
                            .map(|v| (v.text.trim().to_owned(), v.span));
                    }
                    "presence-platform" => {
                        platform = self.platform_value("presence-platform", value, None);
                    }
                    _ => self.unknown_key(key, None, "option", APP_OPTIONS),
                }
            }
        }
        (profile, platform)
    }

    /// A platform name (`sfb`, `teams`, ...), validated for its syntax only: which
    /// platforms exist is known to the caller ([`Config::users`]).
    fn platform_value(
        &mut self,
        key: &str,
        value: &Value<'_>,
        dn: Option<&str>,
    ) -> Option<(Platform, Span)> {
        let value = self.option_value(key, value, dn)?;
        match Platform::new(&value.text) {
            Ok(platform) => Some((self.intern(platform), value.span)),
            Err(e) => {
                self.error(&value.span, dn, Some(key), e.into());
                None
            }
        }
    }

    /// The platform `platform` names, shared with the DNs that named it before.
    fn intern(&mut self, platform: Platform) -> Platform {
        match self.platforms.get(&platform) {
            Some(known) => known.clone(),
            None => {
                self.platforms.insert(platform.clone());
                platform
            }
        }
    }

    fn dn<'i>(&mut self, dn_key: &Spanned<Cow<'i, str>>, value: &Value<'i>) -> Option<RawDn<'i>> {
        let span = self.at(dn_key.span());
        let number = match DnNumber::new(dn_key.get_ref()) {
            Ok(n) => n,
            Err(e) => {
                self.error(&span, None, None, e.into());
                return None;
            }
        };
        // A DN number is its key as written (`DnNumber` keeps the text unchanged).
        let dn = Some(dn_key.get_ref().as_ref());
        let DeValue::Table(table) = value.get_ref() else {
            // Reported by `table`.
            let _ = self.table(&format!("dn.{number}"), value, dn);
            return None;
        };
        let mut kind = None;
        let mut uri = None;
        let mut entra_id = None;
        let mut platform = None;
        let mut annex = None;
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "type" => kind = self.option_value("type", value, dn),
                "uri" => uri = self.option_value("uri", value, dn),
                "entra-id" => entra_id = self.option_value("entra-id", value, dn),
                "platform" => platform = self.platform_value("platform", value, dn),
                "annex" => annex = self.table("annex", value, dn),
                _ => self.unknown_key(key, dn, "DN field", DN_FIELDS),
            }
        }
        let Some(kind) = kind else {
            self.error(
                &span,
                dn,
                Some("type"),
                ConfigError::Missing {
                    key: "type",
                    hint: "add `type = \"Extension\"` or `type = \"VoIPService\"`",
                },
            );
            return None;
        };
        let is_extension = if kind.text.eq_ignore_ascii_case("Extension") {
            true
        } else if kind.text.eq_ignore_ascii_case("VoIPService") {
            false
        } else {
            self.error(
                &kind.span,
                dn,
                Some("type"),
                ConfigError::UnknownDnType {
                    token: kind.text.into_owned(),
                },
            );
            return None;
        };
        // The annex [TServer] section; other annex sections are ignored with a warning.
        let mut tserver: Vec<(&Spanned<Cow<'_, str>>, &Value<'_>)> = Vec::new();
        if let Some(annex) = annex {
            for (section, options) in annex {
                if section.get_ref() != "TServer" {
                    let span = self.at(section.span());
                    self.warn(
                        &span,
                        dn,
                        None,
                        ConfigError::Ignored {
                            option: format!("annex.{}", section.get_ref()),
                            why: "only the annex [TServer] section is read",
                        },
                    );
                    continue;
                }
                if let Some(options) = self.table("annex.TServer", options, dn) {
                    tserver.extend(options.iter());
                }
            }
        }
        if is_extension {
            // Validated now, made again once the tree is freed (see `RawDn`).
            let uri = uri.and_then(|value| {
                let text = trimmed(value.text);
                match SipUri::new(&text) {
                    Ok(_) => Some(text),
                    Err(e) => {
                        self.error(&value.span, dn, Some("uri"), e.into());
                        None
                    }
                }
            });
            let entra_id = entra_id.and_then(|value| match EntraId::new(&value.text) {
                Ok(_) => Some(value.text),
                Err(e) => {
                    self.error(&value.span, dn, Some("entra-id"), e.into());
                    None
                }
            });
            let mut profile = None;
            for (key, value) in tserver {
                if key.get_ref() == "presence-profile" {
                    profile = self
                        .option_value("presence-profile", value, dn)
                        .map(|v| (trimmed(v.text), v.span));
                } else {
                    self.unknown_key(key, dn, "option", EXTENSION_OPTIONS);
                }
            }
            return Some(RawDn::Extension {
                number: dn_key.get_ref().clone(),
                span,
                uri,
                entra_id,
                platform,
                profile,
            });
        }
        let user_spans = [
            ("uri", uri.map(|v| v.span)),
            ("entra-id", entra_id.map(|v| v.span)),
            ("platform", platform.map(|(_, span)| span)),
        ];
        for (field, span) in user_spans {
            if let Some(span) = span {
                self.warn(
                    &span,
                    dn,
                    Some(field),
                    ConfigError::Ignored {
                        option: field.to_owned(),
                        why: "a VoIP Service DN has no user",
                    },
                );
            }
        }
        let mut options = BTreeMap::new();
        let mut service_type = None;
        let mut unknown = Vec::new();
        for (key, value) in tserver {
            let name = match key.get_ref().as_ref() {
                "service-type" => "service-type",
                "map-presence-to-dnd" => "map-presence-to-dnd",
                "presence-availability-range" => "presence-availability-range",
                "agent-presence-map" => "agent-presence-map",
                "aggregated-states" => "aggregated-states",
                _ => {
                    unknown.push(key);
                    continue;
                }
            };
            if let Some(value) = self.option_value(name, value, dn) {
                if name == "service-type" {
                    service_type = Some(value.text.trim().to_owned());
                }
                options.insert(
                    name,
                    Opt {
                        value,
                        key_span: self.at(key.span()),
                    },
                );
            }
        }
        match service_type.as_deref() {
            Some("presence-profile") => {
                for key in unknown {
                    self.unknown_key(key, dn, "option", PROFILE_OPTIONS);
                }
                Some(RawDn::Profile {
                    number,
                    span,
                    options,
                })
            }
            // Another service's DN: its options are not ours to judge.
            Some(_) => None,
            None => {
                if !options.is_empty() {
                    self.warn(
                        &span,
                        dn,
                        Some("service-type"),
                        ConfigError::Ignored {
                            option: "annex.TServer".to_owned(),
                            why: "this VoIP Service DN has presence options but no `service-type = presence-profile`, so it is not a presence profile",
                        },
                    );
                }
                None
            }
        }
    }

    fn profiles(
        &mut self,
        raw_dns: &[RawDn<'_>],
        options: &LoadOptions,
        base: &Path,
        read_file: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
    ) -> BTreeMap<DnNumber, Profile> {
        let mut profiles = BTreeMap::new();
        let mut maps = MapCache::default();
        for raw in raw_dns {
            let RawDn::Profile {
                number,
                span,
                options: opts,
            } = raw
            else {
                continue;
            };
            let dn = Some(number.as_str());
            let to_dnd = match opts.get("map-presence-to-dnd") {
                None => false,
                Some(opt) => match parse_bool(&opt.value.text) {
                    Ok(b) => b,
                    Err(e) => {
                        self.error(&opt.value.span, dn, Some("map-presence-to-dnd"), e);
                        self.unusable(number, span, "its `map-presence-to-dnd` is not a boolean");
                        continue;
                    }
                },
            };
            let mode = if to_dnd {
                for ignored in ["agent-presence-map", "aggregated-states"] {
                    if let Some(opt) = opts.get(ignored) {
                        self.warn(
                            &opt.key_span,
                            dn,
                            Some(ignored),
                            ConfigError::Ignored {
                                option: ignored.to_owned(),
                                why: "`map-presence-to-dnd = true` makes this a pull profile, and pull profiles publish nothing",
                            },
                        );
                    }
                }
                match opts.get("presence-availability-range") {
                    None => Some(ProfileMode::Pull(PullSettings {
                        ranges: vec![
                            DEFAULT_AVAILABLE_RANGE
                                .parse::<AvailabilityRange>()
                                .expect("the default range is valid"),
                        ],
                        default_ranges: true,
                    })),
                    Some(opt) => match parse_availability_ranges(&opt.value.text) {
                        Ok(ranges) => Some(ProfileMode::Pull(PullSettings {
                            ranges,
                            default_ranges: false,
                        })),
                        Err(e) => {
                            self.value_error(&opt.value, dn, "presence-availability-range", e);
                            self.unusable(
                                number,
                                span,
                                "its `presence-availability-range` is invalid",
                            );
                            None
                        }
                    },
                }
            } else {
                if let Some(opt) = opts.get("presence-availability-range") {
                    self.warn(
                        &opt.key_span,
                        dn,
                        Some("presence-availability-range"),
                        ConfigError::Ignored {
                            option: "presence-availability-range".to_owned(),
                            why: "it applies to pull profiles only (`map-presence-to-dnd = true`)",
                        },
                    );
                }
                match (
                    opts.get("agent-presence-map"),
                    opts.get("aggregated-states"),
                ) {
                    (Some(map_opt), Some(states_opt)) => match self.push_mode(
                        number, map_opt, states_opt, options, base, read_file, &mut maps,
                    ) {
                        Ok(mode) => Some(mode),
                        Err(cause) => {
                            self.unusable(number, span, cause);
                            None
                        }
                    },
                    _ => {
                        self.warn(
                            span,
                            dn,
                            None,
                            ConfigError::Inert {
                                profile: number.to_string(),
                            },
                        );
                        Some(ProfileMode::None)
                    }
                }
            };
            if let Some(mode) = mode {
                profiles.insert(
                    number.clone(),
                    Profile {
                        name: number.clone(),
                        location: self.loc(span.start),
                        mode,
                    },
                );
            }
        }
        self.unused_states(&profiles, &maps);
        profiles
    }

    /// A push profile's mode, or (its errors reported) what makes it unusable.
    #[allow(clippy::too_many_arguments)]
    fn push_mode(
        &mut self,
        number: &DnNumber,
        map_opt: &Opt<'_>,
        states_opt: &Opt<'_>,
        options: &LoadOptions,
        base: &Path,
        read_file: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
        maps: &mut MapCache,
    ) -> Result<ProfileMode, &'static str> {
        let dn = Some(number.as_str());
        let states = match parse_aggregated_states(&states_opt.value.text) {
            Ok(states) => Some(states),
            Err(e) => {
                self.value_error(&states_opt.value, dn, "aggregated-states", e);
                None
            }
        };
        let map_path = base.join(map_opt.value.text.trim());
        let map = maps.get(self, &map_path, map_opt, number, options, read_file);
        let Some(states) = states else {
            return Err("its `aggregated-states` is invalid");
        };
        let Some(map) = map else {
            return Err("its `agent-presence-map` cannot be used");
        };
        let unmapped: Vec<String> = states.missing().map(|i| i.to_string()).collect();
        if !unmapped.is_empty() {
            self.warn(
                &states_opt.value.span,
                dn,
                Some("aggregated-states"),
                ConfigError::UnmappedIndexes {
                    indexes: unmapped.join(", "),
                },
            );
        }
        let mut ok = true;
        for (index, id) in states.iter() {
            let Some(id) = id else { continue };
            if map.get(id.as_str()).is_none() {
                ok = false;
                let offset = find_item(&states_opt.value.text, index.get());
                let span = Self::item_span(&states_opt.value, offset);
                self.error(
                    &span,
                    dn,
                    Some("aggregated-states"),
                    ConfigError::StateNotInMap {
                        index: index.get(),
                        id: id.to_string(),
                        map: map_path.display().to_string(),
                        defined: map
                            .entries()
                            .iter()
                            .map(|e| e.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    },
                );
            }
        }
        maps.record_use(&map_path, number, &states);
        if !ok {
            return Err(
                "its `aggregated-states` names states its agent-presence map does not define",
            );
        }
        Ok(ProfileMode::Push(PushSettings {
            map_path,
            map,
            states,
        }))
    }

    fn unused_states(&mut self, profiles: &BTreeMap<DnNumber, Profile>, maps: &MapCache) {
        for (path, entry) in &maps.entries {
            let Some((map, file_lines, _)) = &entry.map else {
                continue;
            };
            let users: Vec<&str> = entry
                .profiles
                .iter()
                .filter(|p| profiles.contains_key(p.as_str()))
                .map(DnNumber::as_str)
                .collect();
            if users.is_empty() {
                continue;
            }
            for state in map.entries() {
                if !entry.used.contains(state.id.as_str()) {
                    self.sink.push(
                        Severity::Warning,
                        Location {
                            file: Arc::clone(file_lines),
                            line: state.location.line,
                            column: state.location.column,
                        },
                        None,
                        None,
                        ConfigError::UnusedState {
                            id: state.id.to_string(),
                            profiles: users.join(", "),
                        },
                    );
                }
            }
            let _ = path;
        }
    }

    /// Checks a profile name given at DN or application level; returns the profile's name.
    /// A profile that exists but an error made unusable is not reported again here: the DN
    /// (or the application) is listed in that profile's note instead.
    fn profile_name(
        &mut self,
        config: &Config,
        name: &str,
        span: &Span,
        dn: Option<&str>,
        option: &str,
    ) -> Option<DnNumber> {
        if let Some(unusable) = self.unusable.get_mut(name) {
            match dn {
                Some(dn) => unusable.dns.push(dn.to_owned()),
                None => unusable.application = true,
            }
            return None;
        }
        match config.profiles.get_key_value(name) {
            Some((number, _)) => Some(number.clone()),
            None => {
                self.error(
                    span,
                    dn,
                    Some(option),
                    ConfigError::UnknownProfile {
                        name: name.to_owned(),
                        known: config.profiles.keys().map(|k| k.to_string()).collect(),
                    },
                );
                None
            }
        }
    }

    /// Builds the Extension DNs from their text, once the document's tree is freed (see
    /// [`RawDn`]).
    fn extensions(&mut self, config: &mut Config, raw_dns: Vec<RawDn<'_>>) {
        let count = raw_dns
            .iter()
            .filter(|raw| matches!(raw, RawDn::Extension { .. }))
            .count();
        config.extensions.reserve_exact(count);
        config.by_number.reserve(count);
        let mut uris: HashMap<SipUri, DnNumber> = HashMap::with_capacity(count);
        let mut ids: HashMap<EntraId, DnNumber> = HashMap::new();
        for raw in raw_dns {
            let RawDn::Extension {
                number,
                span,
                uri,
                entra_id,
                platform,
                profile,
            } = raw
            else {
                continue;
            };
            // Each was validated when read (`dn`), so none of these fails.
            let Ok(number) = DnNumber::new(&number) else {
                continue;
            };
            let uri = uri.and_then(|uri| SipUri::new(&uri).ok());
            let entra_id = entra_id.and_then(|id| EntraId::new(&id).ok());
            let dn = Some(number.as_str());
            let profile = profile.and_then(|(name, span)| {
                self.profile_name(config, &name, &span, dn, "presence-profile")
            });
            let in_force = profile
                .as_ref()
                .or(config.application_profile.as_ref().map(|(n, _)| n))
                .and_then(|name| config.profiles.get(name));
            if let Some(p) = in_force
                && uri.is_none()
                && entra_id.is_none()
                && p.mode.kind() != crate::Mode::None
            {
                self.error(
                    &span,
                    dn,
                    Some("uri"),
                    ConfigError::MissingUri {
                        dn: number.to_string(),
                        profile: p.name.to_string(),
                        mode: p.mode.kind().as_str(),
                    },
                );
            }
            if let Some(uri) = &uri {
                if let Some(first) = uris.get(uri) {
                    self.error(
                        &span,
                        dn,
                        Some("uri"),
                        ConfigError::DuplicateUri {
                            uri: uri.to_string(),
                            first: first.to_string(),
                        },
                    );
                } else {
                    uris.insert(uri.clone(), number.clone());
                }
            }
            if let Some(id) = &entra_id {
                if let Some(first) = ids.get(id) {
                    self.error(
                        &span,
                        dn,
                        Some("entra-id"),
                        ConfigError::DuplicateEntraId {
                            id: id.to_string(),
                            first: first.to_string(),
                        },
                    );
                } else {
                    ids.insert(id.clone(), number.clone());
                }
            }
            config
                .by_number
                .insert(number.clone(), config.extensions.len());
            let platform = platform.map(|(platform, span)| (platform, self.loc(span.start)));
            config.extensions.push(ExtensionDn {
                number,
                uri,
                entra_id,
                platform,
                profile,
                location: self.loc(span.start),
            });
        }
    }
}

/// Every key of `table` (and of the tables within) with its span, the table it is in
/// (`None` at the top; `sfb.subscription`; `[teams.apps]` within an array of tables, so
/// that `[{table}]` reads `[[teams.apps]]`) and its name.
fn key_tables(table: &DeTable<'_>, prefix: &str, out: &mut Vec<(Span, Option<String>, String)>) {
    for (key, value) in table {
        let name = key.get_ref().to_string();
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        out.push((
            key.span(),
            (!prefix.is_empty()).then(|| prefix.to_owned()),
            name,
        ));
        match value.get_ref() {
            DeValue::Table(inner) => key_tables(inner, &path, out),
            DeValue::Array(items) => {
                for item in items.iter() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        key_tables(inner, &format!("[{path}]"), out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The valid keys of serde's "unknown field `x`, expected `a` or `b`" (or "expected one of
/// `a`, `b`, `c`", or "there are no fields"); `None` for any other message.
fn unknown_field(message: &str) -> Option<Vec<String>> {
    let rest = message.strip_prefix("unknown field `")?;
    let (_, rest) = rest.split_once("`, ")?;
    if rest.starts_with("there are no fields") {
        return Some(Vec::new());
    }
    let expected = rest.strip_prefix("expected ")?;
    let valid: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    (!valid.is_empty()).then_some(valid)
}

/// Where the key `dotted` (`sfb.tls.certificate`) is written in a configuration text: the
/// key's own line and column, or, when the key is not written (a required key that is
/// missing), the nearest table on its path that is (`[sfb.tls]`, else `[sfb]`). In an array
/// of tables the first element that has the next key is followed. `None` when not even the
/// first table is in the text, or the text is not TOML.
///
/// For findings that name a key, such as the transports' (`check` points at the line).
///
/// ```
/// use std::path::Path;
/// use presence_config::{locate_key, Source};
/// let text = "[sfb]\npool = \"p:5061\"\n\n[sfb.tls]\nca = \"ca.pem\"\ncertificate = \"c.pem\"\n";
/// let source = Source { path: Path::new("bridge.toml"), text };
/// assert_eq!(locate_key(&source, "sfb.tls.certificate").unwrap().to_string(), "bridge.toml:6:1");
/// // Not written: the table that would hold it.
/// assert_eq!(locate_key(&source, "sfb.tls.private-key").unwrap().line, 4);
/// assert_eq!(locate_key(&source, "teams.tenant"), None);
/// ```
pub fn locate_key(source: &Source<'_>, dotted: &str) -> Option<Location> {
    let root = DeTable::parse(source.text).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut found: Option<Span> = None;
    let segments: Vec<&str> = dotted.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let Some((key, value)) = table.get_key_value(*segment) else {
            break;
        };
        found = Some(key.span());
        let next = segments.get(i + 1);
        table = match value.get_ref() {
            DeValue::Table(inner) => inner,
            DeValue::Array(items) => {
                let tables = items.iter().filter_map(|item| match item.get_ref() {
                    DeValue::Table(inner) => Some(inner),
                    _ => None,
                });
                let mut tables = tables.peekable();
                let first = tables.peek().copied();
                match tables
                    .find(|t| next.is_some_and(|n| t.contains_key(*n)))
                    .or(first)
                {
                    Some(inner) => inner,
                    None => break,
                }
            }
            _ => break,
        };
    }
    let span = found?;
    let file: Arc<str> = Arc::from(source.path.display().to_string());
    Some(LineIndex::new(file, source.text).locate(source.text, span.start))
}

/// The byte offset of item `K=...` in an `aggregated-states` value (0 if not found).
fn find_item(value: &str, index: u8) -> usize {
    let mut offset = 0;
    for part in value.split(',') {
        let lead = part.len() - part.trim_start().len();
        let key = part
            .trim_start()
            .split(['=', ':'])
            .next()
            .unwrap_or("")
            .trim();
        if key.parse::<u8>() == Ok(index) {
            return offset + lead;
        }
        offset += part.len() + 1;
    }
    0
}

/// Agent-presence maps, read and parsed once per resolved path.
#[derive(Default)]
struct MapCache {
    entries: BTreeMap<PathBuf, MapEntry>,
}

struct MapEntry {
    /// The map, the file name used in its diagnostics; `None` if it failed.
    map: Option<(Arc<AgentPresenceMap>, Arc<str>, ())>,
    /// Profiles that use it.
    profiles: Vec<DnNumber>,
    /// IDs any of them uses.
    used: BTreeSet<String>,
}

impl MapCache {
    fn get(
        &mut self,
        w: &mut Walker<'_>,
        path: &Path,
        opt: &Opt<'_>,
        number: &DnNumber,
        options: &LoadOptions,
        read_file: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
    ) -> Option<Arc<AgentPresenceMap>> {
        if let Some(entry) = self.entries.get_mut(path) {
            entry.profiles.push(number.clone());
            return entry.map.as_ref().map(|(map, _, _)| Arc::clone(map));
        }
        let dn = Some(number.as_str());
        let file: Arc<str> = Arc::from(path.display().to_string());
        let map = match read_file(path) {
            Err(source) => {
                w.error(
                    &opt.value.span,
                    dn,
                    Some("agent-presence-map"),
                    ConfigError::ReadMap {
                        path: path.display().to_string(),
                        source,
                    },
                );
                None
            }
            Ok(bytes) => match AgentPresenceMap::parse_with(&bytes, &options.map) {
                Err(e) => {
                    let (line, column) = e.location().map_or((1, 1), |l| (l.line, l.column));
                    w.sink.push(
                        Severity::Error,
                        Location {
                            file: Arc::clone(&file),
                            line,
                            column,
                        },
                        dn,
                        Some("agent-presence-map"),
                        ConfigError::Map(Box::new(e)),
                    );
                    None
                }
                Ok(parsed) => {
                    for warning in parsed.warnings {
                        w.sink.push(
                            Severity::Warning,
                            Location {
                                file: Arc::clone(&file),
                                line: warning.location.line,
                                column: warning.location.column,
                            },
                            None,
                            None,
                            ConfigError::MapWarning {
                                message: warning.message,
                            },
                        );
                    }
                    Some((Arc::new(parsed.map), file, ()))
                }
            },
        };
        let result = map.as_ref().map(|(m, _, _)| Arc::clone(m));
        self.entries.insert(
            path.to_path_buf(),
            MapEntry {
                map,
                profiles: vec![number.clone()],
                used: BTreeSet::new(),
            },
        );
        result
    }

    fn record_use(&mut self, path: &Path, _number: &DnNumber, states: &AggregatedStates) {
        if let Some(entry) = self.entries.get_mut(path) {
            entry.used.extend(
                states
                    .iter()
                    .filter_map(|(_, id)| id.map(|id| id.to_string())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_items() {
        assert_eq!(find_item("1=A, 2=B,3=C", 3), 9);
        assert_eq!(find_item("1=A, 2=B,3=C", 2), 5);
        assert_eq!(find_item("1=A", 9), 0);
    }

    /// The sections of the documents below: `[cti]` only.
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read through Debug only
    struct Cti {
        cti: Option<toml::Table>,
    }

    /// `load` of `text`, reading DN tables two at a time where it can (`Some(2)`) or always
    /// at once (`None`), as text: the configuration, or every diagnostic.
    fn loaded(text: &str, chunk_dns: Option<usize>) -> String {
        let source = Source {
            path: Path::new("conf/bridge.toml"),
            text,
        };
        let map = include_bytes!("../../../examples/agent-states.xml");
        let mut read = |path: &Path| {
            if path == Path::new("conf/agent-states.xml") {
                Ok(map.to_vec())
            } else {
                Err(io::Error::new(io::ErrorKind::NotFound, "no such file"))
            }
        };
        match load_sliced::<Cti>(&source, &LoadOptions::default(), &mut read, chunk_dns) {
            Ok(loaded) => {
                let c = &loaded.config;
                // `by_number` is a hash map: its Debug order differs from map to map.
                let by_number: BTreeMap<_, _> = c.by_number.iter().collect();
                format!(
                    "{:#?}",
                    (
                        &c.file,
                        &c.application_profile,
                        &c.application_platform,
                        &c.profiles,
                        &c.extensions,
                        by_number,
                        &loaded.sections,
                        &loaded.warnings,
                    )
                )
            }
            Err(diagnostics) => format!("{diagnostics:#?}"),
        }
    }

    /// Pieces of configuration documents: valid and invalid DNs, profiles, sections, and
    /// layouts that must be read at once.
    const PIECES: &[&str] = &[
        "[options.TServer]\npresence-profile = \"Pull\"\n",
        "[options.TServer]\npresence-profile = \"Nope\"\npresence-platform = \"Sfb\"\n",
        "[dn.Pull]\ntype = \"VoIPService\"\nannex.TServer = { service-type = \"presence-profile\", map-presence-to-dnd = \"true\" }\n",
        "[dn.Push]\ntype = \"VoIPService\"\n[dn.Push.annex.TServer]\nservice-type = \"presence-profile\"\nagent-presence-map = \"agent-states.xml\"\naggregated-states = \"1=IDLE_OUT, 2=LUNCH\"\n",
        "[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"sip:a@x.com\"\nannex.TServer = { presence-profile = \"Push\" }\n",
        "[dn.\"5002\"]\ntype = \"Extension\"\nuri = \"sip:a@x.com\"\nplatform = \"teams\"\n",
        "[dn.5003]\ntype = \"Extension\"\nuri = \"bad uri\"\ncolour = 1\n[dn.5003.annex.Other]\nx = 1\n",
        "[dn.'5004']\ntype = \"Extension\"\nentra-id = \"6E8B0B5A-3C3D-4E55-9F3B-0D5A1C2B3A4F\"\n[dn.'5004'.annex.TServer]\npresence-profile = \"Pull\"\n",
        "  [dn.\"5005\"] # indented, with a comment\r\ntype = 'Extension'\r\nuri = \"  sip:B@X.com \"\r\n",
        "[dn.\"50 06\"]\ntype = \"Extension\"\n",
        "[dn.\"5007\"]\ntype = \"Phone\"\n",
        "[dn.\"5008\"]\nuri = \"sip:c@x.com\"\n",
        "[dn.\"5009\"]\ntype = \"Extension\"\nuri = \"sip:\\u0064@x.com\"\nannex = 5\n",
        "[dn.\"5001\"]\ntype = \"Extension\"\n",
        "[dn.\"5002\".annex.TServer]\npresence-profile = \"Pull\"\n",
        "[cti]\nlisten = \"127.0.0.1:0\"\n",
        "[cti.x]\ny = 1\n",
        "[sfb]\npool = \"p:5061\"\n",
        "[dn]\n\"6001\".type = \"Extension\"\n",
        "[[dn.\"6002\"]]\ntype = \"Extension\"\n",
        "note = \"\"\"\n[dn.\"6003\"]\ntype = \"Extension\"\n\"\"\"\n",
        "list = [\n[1],\n]\n",
        "[dn.\"6004\"]\ntype = \"Extension\"\nvalues = [\n[dn.\"6005\"]\n",
        "[dn.\"6006\"\ntype = \"Extension\"\n",
        "[options]\nTServer = 1\n",
        "# a comment\n\n",
    ];

    #[test]
    fn a_regular_document_is_read_in_slices_as_at_once() {
        let mut text = String::from(PIECES[0]);
        text.push_str(PIECES[2]);
        text.push_str(PIECES[15]);
        for i in 0..9 {
            text.push_str(&format!(
                "[dn.\"7{i:03}\"]\ntype = \"Extension\"\nuri = \"sip:u{i}@x.com\"\n[dn.\"7{i:03}\".annex.TServer]\npresence-profile = \"{}\"\n",
                if i == 4 { "Missing" } else { "Pull" }
            ));
        }
        let layout = split::split(&text, 2).expect("a regular document is cut");
        assert_eq!(
            layout.chunks.len(),
            6,
            "the profile, then 9 DNs two at a time"
        );
        let sliced = loaded(&text, Some(2));
        assert!(sliced.contains("name: \"Missing\""), "{sliced}");
        assert_eq!(sliced, loaded(&text, None));
    }

    proptest! {
        /// Whatever the document, reading its DN tables in slices gives exactly what one
        /// parse of the whole gives: the same configuration, or the same diagnostics in the
        /// same order.
        #[test]
        fn slices_read_what_the_whole_document_holds(
            pieces in proptest::collection::vec(0..PIECES.len(), 0..14),
        ) {
            let text: String = pieces.iter().map(|&i| PIECES[i]).collect();
            prop_assert_eq!(loaded(&text, Some(2)), loaded(&text, None), "{}", text);
        }
    }
}
