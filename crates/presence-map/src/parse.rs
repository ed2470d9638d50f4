//! The reader: one forward pass of `quick-xml`'s `NsReader` over the borrowed input.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::mem;

use presence_model::{Activities, ActivityText, AggregatedStateId, Availability, Lcid, Presence};
use quick_xml::XmlVersion;
use quick_xml::escape::EscapeError;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesDecl, BytesRef, BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::reader::NsReader;

use crate::location::Locator;
use crate::{
    AgentPresenceMap, Location, MAX_ACTIVITIES_PER_STATE, MAX_WARNINGS, MapError, MapWarning,
    NAMESPACE, ParseOptions, Parsed, StateEntry,
};

const ROOT: &str = "agentStates";
const STATE: &str = "agentState";
const ACTIVITY: &str = "activity";

/// How many characters of offending text an error or warning quotes.
const QUOTE_CHARS: usize = 40;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

pub(crate) fn parse(xml: &[u8], options: &ParseOptions) -> Result<Parsed, MapError> {
    if xml.len() > options.max_size {
        return Err(MapError::TooLarge {
            size: xml.len(),
            limit: options.max_size,
        });
    }
    let body = xml.strip_prefix(UTF8_BOM).unwrap_or(xml);
    if body.iter().copied().all(is_xml_whitespace) {
        return Err(MapError::Empty {
            location: Location::START,
        });
    }
    if let Some((offset, code)) = find_forbidden_character(body) {
        // Report the earlier problem: bad UTF-8 before the character wins.
        let before = body.get(..offset).unwrap_or_default();
        return Err(
            not_utf8(body, before).unwrap_or_else(|| MapError::ForbiddenCharacter {
                location: Locator::new(body).locate(offset),
                code,
            }),
        );
    }
    // UTF-8 is checked by the XML reader as it goes (every byte belongs to an event whose
    // text it validates); when it finds a bad byte, `not_utf8` locates it exactly.
    Parser::new(body).run()
}

/// The error for the first byte of `part` (a prefix of `body`) that is not UTF-8, if any.
fn not_utf8(body: &[u8], part: &[u8]) -> Option<MapError> {
    let source = std::str::from_utf8(part).err()?;
    let at = source.valid_up_to();
    Some(MapError::NotUtf8 {
        location: Locator::new(body).locate(at),
        byte: body.get(at).copied().unwrap_or_default(),
        source,
    })
}

/// Where the parser is in the document.
enum Place {
    /// Before the root element.
    Prolog,
    /// Directly inside `<agentStates>`.
    Root,
    /// Inside an `<agentState>`.
    State(OpenState),
    /// Inside an `<activity>` of a state.
    Activity(OpenState, OpenActivity),
    /// After `</agentStates>`.
    Epilog,
}

struct OpenState {
    id: AggregatedStateId,
    availability: Availability,
    offset: usize,
    location: Location,
    activities: Vec<(Lcid, ActivityText)>,
}

/// A known attribute's normalized value and the byte offset of its name, if present.
type AttributeValue<'e> = Option<(Cow<'e, str>, usize)>;

struct OpenActivity {
    lcid: Lcid,
    offset: usize,
}

/// An unknown element being skipped with its content.
struct Skip {
    /// Open elements inside the skipped subtree, the skipped one included.
    depth: usize,
    /// Where the skipped element starts.
    offset: usize,
}

struct Parser<'a> {
    bytes: &'a [u8],
    reader: NsReader<&'a [u8]>,
    locator: Locator<'a>,
    place: Place,
    skip: Option<Skip>,
    root_offset: usize,
    /// The text of the open activity, reused from one activity to the next.
    text_buf: String,
    /// Where the activities of the open state start, reused from one state to the next.
    activity_offsets: Vec<usize>,
    entries: Vec<StateEntry>,
    index: HashMap<AggregatedStateId, usize>,
    warnings: Vec<MapWarning>,
    /// Warnings beyond [`MAX_WARNINGS`]: how many, and where the first one was.
    unlisted: Option<(usize, usize)>,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let mut reader = NsReader::from_reader(bytes);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Parser {
            bytes,
            reader,
            locator: Locator::new(bytes),
            place: Place::Prolog,
            skip: None,
            root_offset: 0,
            text_buf: String::new(),
            activity_offsets: Vec::new(),
            entries: Vec::new(),
            index: HashMap::new(),
            warnings: Vec::new(),
            unlisted: None,
        }
    }

    fn run(mut self) -> Result<Parsed, MapError> {
        loop {
            // Every byte belongs to some event, so the position before reading is where the
            // next event starts.
            let offset = self.position();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                // The reader gives no position for a namespace error (too deep, too many
                // bindings, a reserved prefix): it is about the element that starts here.
                Err(source @ quick_xml::Error::Namespace(_)) => {
                    return Err(self.xml_error_at(offset, source));
                }
                Err(source) => return Err(self.xml_error(source)),
            };
            if let Some(skip) = self.skip.as_mut() {
                match event {
                    Event::Start(_) => skip.depth = skip.depth.saturating_add(1),
                    Event::End(_) => {
                        skip.depth = skip.depth.saturating_sub(1);
                        if skip.depth == 0 {
                            self.skip = None;
                        }
                    }
                    Event::GeneralRef(r) => {
                        self.resolve_reference(&r, offset)?;
                    }
                    Event::DocType(d) => return Err(self.doctype(&d, offset)),
                    Event::Decl(_) => return Err(self.misplaced_declaration(offset)),
                    Event::Eof => return self.finish(offset),
                    Event::Empty(_)
                    | Event::Text(_)
                    | Event::CData(_)
                    | Event::Comment(_)
                    | Event::PI(_) => {}
                }
                continue;
            }
            match event {
                Event::Start(e) => self.start(&e, offset, false)?,
                Event::Empty(e) => self.start(&e, offset, true)?,
                Event::End(_) => self.end(offset)?,
                Event::Text(t) => self.text(&t.xml10_content(), offset, false)?,
                Event::CData(c) => self.text(&c.xml10_content(), offset, true)?,
                Event::GeneralRef(r) => {
                    let c = self.resolve_reference(&r, offset)?;
                    self.character(c, offset)?;
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Decl(d) => self.declaration(&d, offset)?,
                Event::DocType(d) => return Err(self.doctype(&d, offset)),
                Event::Eof => return self.finish(offset),
            }
        }
    }

    fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    fn locate(&mut self, offset: usize) -> Location {
        self.locator.locate(offset)
    }

    fn warn(&mut self, offset: usize, message: String) {
        if self.warnings.len() >= MAX_WARNINGS {
            let (count, _) = self.unlisted.get_or_insert((0, offset));
            *count += 1;
            return;
        }
        let location = self.locate(offset);
        self.warnings.push(MapWarning { location, message });
    }

    /// The byte offset of `part` if it is a slice of the input (events borrow from it).
    fn offset_of(&self, part: &str) -> Option<usize> {
        let start = self.bytes.as_ptr() as usize;
        let at = (part.as_ptr() as usize).checked_sub(start)?;
        (at <= self.bytes.len()).then_some(at)
    }

    // ---------------------------------------------------------------------------------
    // Elements

    fn start(&mut self, e: &BytesStart<'_>, offset: usize, empty: bool) -> Result<(), MapError> {
        let (ours, local) = self.element_name(e.name(), offset)?;
        match (&self.place, ours, local) {
            (Place::Prolog, true, ROOT) => self.open_root(e, offset, empty),
            (Place::Prolog, ..) => Err(self.wrong_root(e, offset)),
            (Place::Root, true, STATE) => self.open_state(e, offset, empty),
            (Place::State(_), true, ACTIVITY) => self.open_activity(e, offset, empty),
            (Place::Epilog, ..) => Err(MapError::SecondRoot {
                location: self.locate(offset),
                found: quote_str(e.name().as_ref()),
            }),
            _ => {
                self.unknown_element(e, offset, empty, ours);
                Ok(())
            }
        }
    }

    /// Resolves an element name: whether it is in [`NAMESPACE`], and its local name.
    fn element_name<'n>(
        &mut self,
        name: QName<'n>,
        offset: usize,
    ) -> Result<(bool, &'n str), MapError> {
        let (namespace, local) = self.reader.resolver().resolve_element(name);
        let ours = match namespace {
            ResolveResult::Bound(ns) => ns.into_inner() == NAMESPACE,
            ResolveResult::Unbound => false,
            ResolveResult::Unknown(prefix) => {
                return Err(MapError::UndeclaredPrefix {
                    location: self.locate(offset),
                    prefix: quote_str(&prefix),
                    name: quote_str(name.as_ref()),
                });
            }
        };
        Ok((ours, local.into_inner()))
    }

    /// The namespace URI of an element name, for messages.
    fn element_namespace(&self, name: QName<'_>) -> Option<String> {
        match self.reader.resolver().resolve_element(name).0 {
            ResolveResult::Bound(ns) => Some(quote_str(ns.into_inner())),
            ResolveResult::Unbound | ResolveResult::Unknown(_) => None,
        }
    }

    fn wrong_root(&mut self, e: &BytesStart<'_>, offset: usize) -> MapError {
        let namespace = self.element_namespace(e.name());
        MapError::WrongRoot {
            location: self.locate(offset),
            found: quote_str(e.name().as_ref()),
            namespace,
        }
    }

    fn unknown_element(&mut self, e: &BytesStart<'_>, offset: usize, empty: bool, ours: bool) {
        let name = quote_str(e.name().as_ref());
        let parent = match &self.place {
            Place::Root => ROOT,
            Place::State(_) => STATE,
            _ => ACTIVITY,
        };
        let message = if ours {
            format!(
                "element `<{name}>` is not part of the map inside `<{parent}>`: ignored with its content"
            )
        } else {
            match self.element_namespace(e.name()) {
                Some(ns) => format!(
                    "element `<{name}>` in namespace `{ns}` is not part of the map: ignored with its content"
                ),
                None => format!(
                    "element `<{name}>` (in no namespace) is not part of the map: ignored with its content"
                ),
            }
        };
        self.warn(offset, message);
        if !empty {
            self.skip = Some(Skip { depth: 1, offset });
        }
    }

    fn open_root(
        &mut self,
        e: &BytesStart<'_>,
        offset: usize,
        empty: bool,
    ) -> Result<(), MapError> {
        self.root_offset = offset;
        self.locate(offset);
        self.attributes(e, offset, ROOT, [])?;
        self.place = if empty { Place::Epilog } else { Place::Root };
        Ok(())
    }

    fn open_state(
        &mut self,
        e: &BytesStart<'_>,
        offset: usize,
        empty: bool,
    ) -> Result<(), MapError> {
        let location = self.locate(offset);
        let [id, availability] = self.attributes(e, offset, STATE, ["ID", "availability"])?;
        let Some((raw_id, id_offset)) = id else {
            return Err(MapError::MissingAttribute {
                location,
                element: STATE,
                attribute: "ID",
                state: None,
            });
        };
        let id = match AggregatedStateId::new(&raw_id) {
            Ok(id) => id,
            Err(source) => {
                return Err(MapError::InvalidStateId {
                    location: self.locate(id_offset),
                    value: quote_str(&raw_id),
                    source,
                });
            }
        };
        // Claim the ID now (one hash per state); on any later error the map is dropped.
        match self.index.entry(id.clone()) {
            Entry::Occupied(seen) => {
                return Err(MapError::DuplicateStateId {
                    location,
                    id: id.to_string(),
                    first: self
                        .entries
                        .get(*seen.get())
                        .map_or(Location::START, |e| e.location),
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(self.entries.len());
            }
        }
        let Some((raw_availability, availability_offset)) = availability else {
            return Err(MapError::MissingAttribute {
                location,
                element: STATE,
                attribute: "availability",
                state: Some(id.to_string()),
            });
        };
        let availability = match raw_availability.parse::<Availability>() {
            Ok(a) => a,
            Err(source) => {
                return Err(MapError::InvalidAvailability {
                    location: self.locate(availability_offset),
                    state: id.to_string(),
                    value: quote_str(&raw_availability),
                    source,
                });
            }
        };
        let state = OpenState {
            id,
            availability,
            offset,
            location,
            activities: Vec::new(),
        };
        self.activity_offsets.clear();
        if empty {
            self.close_state(state)
        } else {
            self.place = Place::State(state);
            Ok(())
        }
    }

    fn open_activity(
        &mut self,
        e: &BytesStart<'_>,
        offset: usize,
        empty: bool,
    ) -> Result<(), MapError> {
        let [lcid] = self.attributes(e, offset, ACTIVITY, ["LCID"])?;
        let Place::State(state) = &self.place else {
            return Ok(());
        };
        let Some((raw, lcid_offset)) = lcid else {
            let state = state.id.to_string();
            return Err(MapError::MissingAttribute {
                location: self.locate(offset),
                element: ACTIVITY,
                attribute: "LCID",
                state: Some(state),
            });
        };
        let lcid = match raw.parse::<Lcid>() {
            Ok(lcid) => lcid,
            Err(source) => {
                let state = state.id.to_string();
                return Err(MapError::InvalidLcid {
                    location: self.locate(lcid_offset),
                    state,
                    value: quote_str(&raw),
                    source,
                });
            }
        };
        if let Some(i) = state.activities.iter().position(|(l, _)| *l == lcid) {
            let state_id = state.id.to_string();
            let first_offset = self.activity_offsets.get(i).copied().unwrap_or(offset);
            let first = self.locate(first_offset);
            return Err(MapError::DuplicateLcid {
                location: self.locate(offset),
                state: state_id,
                lcid: lcid.get(),
                first,
            });
        }
        if state.activities.len() >= MAX_ACTIVITIES_PER_STATE {
            let state = state.id.to_string();
            return Err(MapError::TooManyActivities {
                location: self.locate(offset),
                state,
                limit: MAX_ACTIVITIES_PER_STATE,
            });
        }
        self.text_buf.clear();
        let activity = OpenActivity { lcid, offset };
        self.place = match mem::replace(&mut self.place, Place::Root) {
            Place::State(state) => Place::Activity(state, activity),
            other => other,
        };
        if empty {
            self.close_activity();
        }
        Ok(())
    }

    fn end(&mut self, offset: usize) -> Result<(), MapError> {
        match mem::replace(&mut self.place, Place::Root) {
            Place::Activity(state, activity) => {
                self.place = Place::Activity(state, activity);
                self.close_activity();
                Ok(())
            }
            Place::State(state) => self.close_state(state),
            Place::Root => {
                self.place = Place::Epilog;
                Ok(())
            }
            // The XML reader refuses an end tag without a start tag before we see it.
            place @ (Place::Prolog | Place::Epilog) => {
                self.place = place;
                Err(MapError::ContentOutsideRoot {
                    location: self.locate(offset),
                    found: self.quote(offset),
                })
            }
        }
    }

    fn close_activity(&mut self) {
        self.place = match mem::replace(&mut self.place, Place::Root) {
            Place::Activity(mut state, activity) => {
                state
                    .activities
                    .push((activity.lcid, ActivityText::new(&self.text_buf)));
                self.activity_offsets.push(activity.offset);
                Place::State(state)
            }
            other => other,
        };
    }

    fn close_state(&mut self, state: OpenState) -> Result<(), MapError> {
        let OpenState {
            id,
            availability,
            location,
            activities,
            ..
        } = state;
        let activities =
            Activities::new(activities).map_err(|source| MapError::InvalidActivities {
                location,
                state: id.to_string(),
                source,
            })?;
        self.entries.push(StateEntry {
            id,
            presence: Presence {
                availability,
                activities,
            },
            location,
        });
        self.place = Place::Root;
        Ok(())
    }

    fn finish(mut self, offset: usize) -> Result<Parsed, MapError> {
        let open = if let Some(skip) = &self.skip {
            Some(skip.offset)
        } else {
            match &self.place {
                Place::Prolog => {
                    return Err(MapError::MissingRoot {
                        location: self.locate(offset),
                    });
                }
                Place::Epilog => None,
                Place::Root => Some(self.root_offset),
                Place::State(state) => Some(state.offset),
                Place::Activity(_, activity) => Some(activity.offset),
            }
        };
        if let Some(open_offset) = open {
            let opened_at = self.locate(open_offset);
            return Err(MapError::Truncated {
                location: self.locate(offset),
                open: self.tag_name_at(open_offset),
                opened_at,
            });
        }
        if let Some((count, first)) = self.unlisted {
            let location = self.locate(first);
            self.warnings.push(MapWarning {
                location,
                message: format!(
                    "{count} more warnings from here on are not listed (at most {MAX_WARNINGS} are)"
                ),
            });
        }
        Ok(Parsed {
            map: AgentPresenceMap::from_checked(self.entries, self.index),
            warnings: self.warnings,
        })
    }

    /// The name of the start tag whose `<` is at `offset`, as written.
    fn tag_name_at(&self, offset: usize) -> String {
        let rest = self
            .bytes
            .get(offset.saturating_add(1)..)
            .unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| is_xml_whitespace(b) || b == b'>' || b == b'/')
            .unwrap_or(rest.len());
        quote_str(&String::from_utf8_lossy(
            rest.get(..end).unwrap_or_default(),
        ))
    }

    // ---------------------------------------------------------------------------------
    // Attributes

    /// Reads the attributes of a known element: the values of the `known` unprefixed
    /// attributes (normalized, with their byte offsets); a warning for every other
    /// attribute except namespace declarations.
    fn attributes<'e, const N: usize>(
        &mut self,
        e: &'e BytesStart<'_>,
        offset: usize,
        element: &'static str,
        known: [&'static str; N],
    ) -> Result<[AttributeValue<'e>; N], MapError> {
        let mut values: [AttributeValue<'e>; N] = std::array::from_fn(|_| None);
        // The tag's content starts after its `<`.
        let content_offset = offset.saturating_add(1);
        for attribute in e.attributes() {
            let attribute = match attribute {
                Ok(a) => a,
                Err(error) => {
                    let at = content_offset.saturating_add(attr_error_position(&error));
                    return Err(self.xml_error_at(at, error.into()));
                }
            };
            let key = attribute.key;
            if key.as_namespace_binding().is_some() {
                continue;
            }
            let at = self.offset_of(key.as_ref()).unwrap_or(offset);
            let slot = match key.prefix() {
                None => known
                    .iter()
                    .position(|k| *k == key.as_ref())
                    .and_then(|i| values.get_mut(i)),
                Some(_) => None,
            };
            if let Some(slot) = slot {
                let value = attribute
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|error| self.attribute_value_error(at, error))?;
                *slot = Some((value, at));
                continue;
            }
            // Unknown: still check that its value is well-formed.
            if attribute.value.contains('&') {
                attribute
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|error| self.attribute_value_error(at, error))?;
            }
            let name = quote_str(key.as_ref());
            let message = match self.reader.resolver().resolve_attribute(key).0 {
                ResolveResult::Unknown(prefix) => {
                    return Err(MapError::UndeclaredPrefix {
                        location: self.locate(at),
                        prefix: quote_str(&prefix),
                        name,
                    });
                }
                ResolveResult::Bound(ns) => format!(
                    "unknown attribute `{name}` (namespace `{}`) on `<{element}>`: ignored",
                    quote_str(ns.into_inner())
                ),
                ResolveResult::Unbound => {
                    format!("unknown attribute `{name}` on `<{element}>`: ignored")
                }
            };
            self.warn(at, message);
        }
        Ok(values)
    }

    fn attribute_value_error(&mut self, at: usize, error: quick_xml::Error) -> MapError {
        match error {
            quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
                MapError::UndefinedEntity {
                    location: self.locate(at),
                    name: quote_str(&name),
                }
            }
            other => self.xml_error_at(at, other),
        }
    }

    // ---------------------------------------------------------------------------------
    // Text

    /// Text or CDATA content.
    fn text(&mut self, content: &str, offset: usize, cdata: bool) -> Result<(), MapError> {
        match &self.place {
            Place::Activity(..) => {
                self.text_buf.push_str(content);
                Ok(())
            }
            Place::Root | Place::State(_) => {
                if !cdata && content.bytes().all(is_xml_whitespace) {
                    return Ok(());
                }
                let offset = self.skip_whitespace(offset);
                let parent = if matches!(self.place, Place::Root) {
                    ROOT
                } else {
                    STATE
                };
                let found = quote_str(content.trim_matches(is_xml_whitespace_char));
                self.warn(
                    offset,
                    format!(
                        "text `{found}` directly inside `<{parent}>` is not part of the map (only `<activity>` has text): ignored"
                    ),
                );
                Ok(())
            }
            Place::Prolog | Place::Epilog => {
                if !cdata && content.bytes().all(is_xml_whitespace) {
                    return Ok(());
                }
                let offset = self.skip_whitespace(offset);
                Err(MapError::ContentOutsideRoot {
                    location: self.locate(offset),
                    found: self.quote(offset),
                })
            }
        }
    }

    /// The offset of the first byte at or after `offset` that is not XML whitespace, so that
    /// messages about text point at the text.
    fn skip_whitespace(&self, offset: usize) -> usize {
        let rest = self.bytes.get(offset..).unwrap_or_default();
        offset + rest.iter().take_while(|&&b| is_xml_whitespace(b)).count()
    }

    /// A character from a reference.
    fn character(&mut self, c: char, offset: usize) -> Result<(), MapError> {
        match &self.place {
            Place::Activity(..) => {
                self.text_buf.push(c);
                Ok(())
            }
            Place::Root | Place::State(_) => {
                if !matches!(c, ' ' | '\t' | '\n' | '\r') {
                    let found = self.quote(offset);
                    self.warn(
                        offset,
                        format!(
                            "text `{found}` outside `<activity>` is not part of the map: ignored"
                        ),
                    );
                }
                Ok(())
            }
            Place::Prolog | Place::Epilog => Err(MapError::ContentOutsideRoot {
                location: self.locate(offset),
                found: self.quote(offset),
            }),
        }
    }

    /// The character a reference stands for; only the predefined entities and character
    /// references naming characters XML 1.0 allows are accepted.
    fn resolve_reference(&mut self, r: &BytesRef<'_>, offset: usize) -> Result<char, MapError> {
        let name: &str = r;
        if r.is_char_ref() {
            let (c, source) = match r.resolve_char_ref() {
                Ok(Some(c)) => (Some(c), None),
                Ok(None) => (None, None),
                Err(error) => (None, Some(error)),
            };
            return match c {
                Some(c) if crate::is_xml_char(c) => Ok(c),
                _ => Err(MapError::InvalidCharacterReference {
                    location: self.locate(offset),
                    reference: quote_str(name),
                    source,
                }),
            };
        }
        match name {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            _ => Err(MapError::UndefinedEntity {
                location: self.locate(offset),
                name: quote_str(name),
            }),
        }
    }

    // ---------------------------------------------------------------------------------
    // Declarations

    fn declaration(&mut self, d: &BytesDecl<'_>, offset: usize) -> Result<(), MapError> {
        if offset != 0 {
            return Err(self.misplaced_declaration(offset));
        }
        if let Err(error) = d.version() {
            return Err(self.xml_error_at(offset, error));
        }
        match d.encoding() {
            None => Ok(()),
            Some(Ok(encoding)) => {
                let accepted = ["UTF-8", "UTF8", "US-ASCII", "ASCII"]
                    .iter()
                    .any(|ok| encoding.eq_ignore_ascii_case(ok));
                if accepted {
                    Ok(())
                } else {
                    Err(MapError::UnsupportedEncoding {
                        location: self.locate(offset),
                        declared: quote_str(&encoding),
                    })
                }
            }
            Some(Err(error)) => Err(self.xml_error_at(offset, error.into())),
        }
    }

    fn misplaced_declaration(&mut self, offset: usize) -> MapError {
        MapError::MisplacedDeclaration {
            location: self.locate(offset),
            found: self.quote(offset),
        }
    }

    fn doctype(&mut self, d: &str, offset: usize) -> MapError {
        MapError::Doctype {
            location: self.locate(offset),
            found: quote_str(d.trim_start()),
        }
    }

    // ---------------------------------------------------------------------------------
    // Errors

    /// An error of the XML reader, located where the reader says it is.
    fn xml_error(&mut self, source: quick_xml::Error) -> MapError {
        if let quick_xml::Error::Encoding(_) = source
            && let Some(error) = not_utf8(self.bytes, self.bytes)
        {
            return error;
        }
        let at = usize::try_from(self.reader.error_position()).unwrap_or(usize::MAX);
        self.xml_error_at(at, source)
    }

    fn xml_error_at(&mut self, at: usize, source: quick_xml::Error) -> MapError {
        MapError::Xml {
            location: self.locate(at),
            near: self.quote(at),
            source,
        }
    }

    /// A few characters of the input from `offset`, for messages.
    fn quote(&self, offset: usize) -> String {
        let mut start = offset.min(self.bytes.len());
        // Back up to the start of a UTF-8 character.
        while start > 0 && self.bytes.get(start).is_some_and(|&b| (b & 0xC0) == 0x80) {
            start -= 1;
        }
        let window = self
            .bytes
            .get(start..start.saturating_add(4 * QUOTE_CHARS).min(self.bytes.len()))
            .unwrap_or_default();
        quote_str(&String::from_utf8_lossy(window))
    }
}

/// The first few characters of `s`, with control characters escaped, for messages.
fn quote_str(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == QUOTE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The byte position inside the tag content that an attribute error points at.
fn attr_error_position(error: &AttrError) -> usize {
    match *error {
        AttrError::ExpectedEq(p)
        | AttrError::ExpectedValue(p)
        | AttrError::UnquotedValue(p)
        | AttrError::ExpectedQuote(p, _)
        | AttrError::Duplicated(p, _) => p,
    }
}

/// XML whitespace: space, tab, line feed, carriage return.
fn is_xml_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// [`is_xml_whitespace`] for characters.
fn is_xml_whitespace_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The first character XML 1.0 forbids in `text` (valid UTF-8): a C0 control other than
/// tab, line feed and carriage return, or U+FFFE / U+FFFF. Returns its byte offset and code
/// point.
///
/// Checks 64-byte blocks with a branch-free test first, so clean text is scanned at memory
/// speed; only a block with a control byte or an `0xEF` lead byte is looked at closely.
fn find_forbidden_character(bytes: &[u8]) -> Option<(usize, u32)> {
    const BLOCK: usize = 64;
    for (block, chunk) in bytes.chunks(BLOCK).enumerate() {
        let suspicious = chunk.iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0xEF)
        });
        if !suspicious {
            continue;
        }
        let base = block * BLOCK;
        for (i, &b) in chunk.iter().enumerate() {
            let at = base + i;
            if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
                return Some((at, u32::from(b)));
            }
            if b == 0xEF && bytes.get(at + 1) == Some(&0xBF) {
                match bytes.get(at + 2) {
                    Some(0xBE) => return Some((at, 0xFFFE)),
                    Some(0xBF) => return Some((at, 0xFFFF)),
                    _ => {}
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_characters_are_found_exactly() {
        assert_eq!(find_forbidden_character(b"abc\t\r\n"), None);
        assert_eq!(find_forbidden_character("é Работа".as_bytes()), None);
        let mut long = "x".repeat(130).into_bytes();
        long[100] = 0x01;
        assert_eq!(find_forbidden_character(&long), Some((100, 1)));
        let text = format!("{}\u{FFFF}", "y".repeat(63));
        assert_eq!(
            find_forbidden_character(text.as_bytes()),
            Some((63, 0xFFFF))
        );
        let text = "a\u{FFFE}";
        assert_eq!(find_forbidden_character(text.as_bytes()), Some((1, 0xFFFE)));
        // U+FFFD (EF BF BD) and U+FF21 (EF BC A1) are fine.
        assert_eq!(
            find_forbidden_character("\u{FFFD}\u{FF21}".as_bytes()),
            None
        );
    }

    #[test]
    fn quotes_are_short_and_escaped() {
        assert_eq!(quote_str("a\nb"), "a\\nb");
        let long = "z".repeat(100);
        assert_eq!(quote_str(&long).chars().count(), QUOTE_CHARS + 1);
    }
}
