//! PIDF (RFC 3863) with the data model (RFC 4479) and RPID (RFC 4480): the writer of the
//! bridge's publications and the reader of what the server notifies.
//!
//! [`write()`] produces one tuple (the bridge's service, with its `<basic>`) and one
//! `<dm:person>` (RPID activities, user input, notes), with the notes on the tuple too
//! (simple watchers only read tuple notes). [`read`] takes any PIDF body: it matches
//! namespace URI and local name only, never prefixes, skips the elements it does not know
//! (capabilities, devices, timestamps, contacts, extensions of other namespaces), and
//! refuses what is not well-formed, a DOCTYPE, and bodies beyond its [`Limits`].
//!
//! ```
//! use presence_model::{Activities, ActivityText, Lcid};
//! use presence_simple::mapping::{Activity, Basic, Mapping, PidfState};
//! use presence_simple::pidf;
//!
//! let state = PidfState { basic: Basic::Open, activities: vec![Activity::OnThePhone], idle: false };
//! let notes = Activities::new(vec![(Lcid::EN_US, ActivityText::new("On a call"))])?;
//! let body = pidf::write("sip:agent1@example.com", "bridge", "bridge-p", &state, &notes);
//! assert!(body.contains("<rpid:on-the-phone/>"));
//!
//! let document = pidf::read(body.as_bytes())?;
//! assert_eq!(document.persons[0].activities, [Activity::OnThePhone]);
//! assert_eq!(Mapping::default().pull(&document), (6500, Some("On a call".to_owned())));
//!
//! // An empty NOTIFY body: nothing is published.
//! assert!(pidf::read(b"")?.is_empty());
//! // No DTDs, hence no entity expansion.
//! assert!(pidf::read(b"<!DOCTYPE presence [<!ENTITY a 'b'>]><presence/>").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;

use presence_model::{
    Activities, ActivityText, AggregatedStateId, Availability, Lcid, Presence, Publication,
};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::SimpleError;
use crate::mapping::{Activity, Basic, Mapping, PidfState, PushTarget};

#[cfg(test)]
mod tests;

/// The media type of PIDF bodies (`Content-Type`, `Accept`).
pub const CONTENT_TYPE: &str = "application/pidf+xml";

const PIDF: &str = "urn:ietf:params:xml:ns:pidf";
const DM: &str = "urn:ietf:params:xml:ns:pidf:data-model";
const RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// The namespace some user agents (Asterisk among them) give the RPID elements.
const RPID_STATUS: &str = "urn:ietf:params:xml:ns:pidf:status:rpid";
/// The RPID draft's namespace (eyeBeam, oSIP): `<activities><activity>busy</activity>`.
const RPID_DRAFT: &str = "urn:ietf:params:xml:ns:pidf:status:rpid-status";
const XML: &str = "http://www.w3.org/XML/1998/namespace";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

// -------------------------------------------------------------------------------------
// The document

/// A PIDF document as read: the parts the bridge uses, in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PidfDocument {
    /// The `entity` attribute of `<presence>` (the presentity's URI).
    pub entity: Option<String>,
    /// The `<tuple>` elements.
    pub tuples: Vec<Tuple>,
    /// The `<dm:person>` elements.
    pub persons: Vec<Person>,
    /// The `<note>` elements directly inside `<presence>`.
    pub notes: Vec<Note>,
}

impl PidfDocument {
    /// Whether nothing is published: no tuple and no person (an empty body reads as that).
    pub fn is_empty(&self) -> bool {
        self.tuples.is_empty() && self.persons.is_empty()
    }
}

/// A `<tuple>`: one service of the presentity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tuple {
    /// Its `id` (required by RFC 3863, but a tuple without one is still read).
    pub id: Option<String>,
    /// `<status><basic>`, if present.
    pub basic: Option<Basic>,
    /// RPID activities some user agents put in the tuple or its `<status>`.
    pub activities: Vec<Activity>,
    /// Whether the tuple (or its status) says `<rpid:user-input>idle</rpid:user-input>`.
    pub idle: bool,
    /// Its `<note>` elements.
    pub notes: Vec<Note>,
}

/// A `<dm:person>`: the human behind the presentity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Person {
    /// Its `id` (required by RFC 4479, but a person without one is still read).
    pub id: Option<String>,
    /// The `<rpid:activities>`, in document order (tokens this version does not know are
    /// skipped).
    pub activities: Vec<Activity>,
    /// Whether `<rpid:user-input>` says `idle`.
    pub idle: bool,
    /// Its `<dm:note>` elements.
    pub notes: Vec<Note>,
}

/// A `<note>`: a free text, with its language.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Note {
    /// The `xml:lang` attribute, if any (`en-US`).
    pub lang: Option<String>,
    /// The text, without leading and trailing XML white space; never empty.
    pub text: String,
}

// -------------------------------------------------------------------------------------
// Writing

/// Writes the bridge's PIDF document for `entity` (the user's `sip:` URI): one tuple
/// `tuple_id` with `state.basic`, one person `person_id` with `state`'s activities and
/// user input, and one note per activity text, both in the person (`<dm:note>`) and in the
/// tuple (`<note>`).
///
/// Each note's `xml:lang` is its LCID's tag ([`Lcid::tag`]: 1033 → `en-US`); a note whose
/// LCID has no known tag is written without `xml:lang` (a reader then takes it for
/// English). Empty texts are left out. Text and attribute values are escaped, and
/// characters XML 1.0 forbids are dropped. `tuple_id` and `person_id` should be XML IDs
/// (a letter or `_` first; letters, digits, `-`, `_`, `.`); the same input always gives
/// the same bytes.
pub fn write(
    entity: &str,
    tuple_id: &str,
    person_id: &str,
    state: &PidfState,
    notes: &Activities,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<presence xmlns=\"");
    out.push_str(PIDF);
    out.push_str("\" xmlns:dm=\"");
    out.push_str(DM);
    out.push_str("\" xmlns:rpid=\"");
    out.push_str(RPID);
    out.push('"');
    push_attr(&mut out, "entity", entity);
    out.push_str(">\n");

    let notes: Vec<(Option<&str>, String)> = notes
        .iter()
        .map(|(lcid, text)| (lcid.tag(), xml_safe(text.as_str())))
        .filter(|(_, text)| !text.trim_matches(is_xml_whitespace).is_empty())
        .collect();
    let push_notes = |out: &mut String, element: &str| {
        for (lang, text) in &notes {
            out.push('<');
            out.push_str(element);
            if let Some(lang) = lang {
                push_attr(out, "xml:lang", lang);
            }
            out.push('>');
            push_text(out, text);
            out.push_str("</");
            out.push_str(element);
            out.push('>');
        }
    };

    out.push_str("  <tuple");
    push_attr(&mut out, "id", tuple_id);
    out.push_str("><status><basic>");
    out.push_str(state.basic.as_str());
    out.push_str("</basic></status>");
    push_notes(&mut out, "note");
    out.push_str("</tuple>\n");

    out.push_str("  <dm:person");
    push_attr(&mut out, "id", person_id);
    if state.activities.is_empty() && !state.idle && notes.is_empty() {
        out.push_str("/>\n");
    } else {
        out.push('>');
        if !state.activities.is_empty() {
            out.push_str("<rpid:activities>");
            for activity in &state.activities {
                match activity {
                    Activity::Other(text) if !text.is_empty() => {
                        out.push_str("<rpid:other>");
                        push_text(&mut out, text);
                        out.push_str("</rpid:other>");
                    }
                    other => {
                        out.push_str("<rpid:");
                        out.push_str(other.token());
                        out.push_str("/>");
                    }
                }
            }
            out.push_str("</rpid:activities>");
        }
        if state.idle {
            out.push_str("<rpid:user-input>idle</rpid:user-input>");
        }
        push_notes(&mut out, "dm:note");
        out.push_str("</dm:person>\n");
    }
    out.push_str("</presence>\n");
    out
}

/// A character XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn is_xml_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `text` without the characters XML 1.0 forbids (what the writer writes of it).
pub(crate) fn xml_safe(text: &str) -> String {
    text.chars().filter(|c| is_xml_char(*c)).collect()
}

/// Appends `text` escaped for element content; a carriage return as `&#13;` (so it
/// survives line-end normalization); forbidden characters dropped.
fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

/// Appends ` name="value"`, the value escaped for a double-quoted attribute (white space
/// characters as references, so they survive attribute-value normalization).
fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out.push('"');
}

// -------------------------------------------------------------------------------------
// Reading

/// The limits [`read_with`] enforces; a body beyond any of them is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Size of the body in bytes.
    pub max_body_bytes: usize,
    /// Nesting depth of elements (`<presence>` is 1).
    pub max_depth: usize,
    /// `<tuple>` elements.
    pub max_tuples: usize,
    /// `<dm:person>` elements.
    pub max_persons: usize,
    /// Notes, all elements together.
    pub max_notes: usize,
    /// RPID activities, all elements together.
    pub max_activities: usize,
    /// Bytes of one text (a note, a basic status, an `other` activity) or of one
    /// attribute value the reader keeps (`entity`, `id`, `xml:lang`).
    pub max_text_bytes: usize,
}

impl Limits {
    /// The defaults: 64 KiB, depth 32, 64 tuples, 16 persons, 128 notes, 64 activities,
    /// texts of 4 KiB.
    pub const DEFAULT: Limits = Limits {
        max_body_bytes: 64 * 1024,
        max_depth: 32,
        max_tuples: 64,
        max_persons: 16,
        max_notes: 128,
        max_activities: 64,
        max_text_bytes: 4096,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Reads a PIDF body with the [default limits](Limits::DEFAULT). An empty body (or one of
/// white space only) is the document of nothing published.
pub fn read(body: &[u8]) -> Result<PidfDocument, SimpleError> {
    read_with(body, &Limits::DEFAULT)
}

/// Reads a PIDF body within `limits`. The error says at which byte, in which element and
/// what is wrong.
pub fn read_with(body: &[u8], limits: &Limits) -> Result<PidfDocument, SimpleError> {
    let fail = |position: usize, what: String| SimpleError::Pidf {
        position: position as u64,
        path: None,
        what,
        source: None,
    };
    if body.len() > limits.max_body_bytes {
        return Err(fail(
            0,
            format!(
                "the body has {} bytes, more than the limit of {}",
                body.len(),
                limits.max_body_bytes
            ),
        ));
    }
    let (base, rest) = match body.strip_prefix(UTF8_BOM) {
        Some(rest) => (UTF8_BOM.len(), rest),
        None => (0, body),
    };
    let text = std::str::from_utf8(rest).map_err(|e| {
        fail(
            base + e.valid_up_to(),
            "the body is not UTF-8 (PIDF bodies are read as UTF-8 only)".to_owned(),
        )
    })?;
    if let Some((i, c)) = text.char_indices().find(|(_, c)| !is_xml_char(*c)) {
        return Err(fail(
            base + i,
            format!("character U+{:04X} is not allowed in XML 1.0", u32::from(c)),
        ));
    }
    if text.chars().all(is_xml_whitespace) {
        return Ok(PidfDocument::default());
    }
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_dangling_amp = false;
    config.allow_unmatched_ends = false;
    config.expand_empty_elements = false;
    config.trim_text(false);
    Reader {
        base,
        xml: reader,
        limits,
        stack: Vec::with_capacity(8),
        doc: PidfDocument::default(),
        root_done: false,
        seen_content: false,
        text: String::new(),
        activities: 0,
        notes: 0,
    }
    .run()
}

/// Whose activities, user input or note an element holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// The document (`<presence><note>`).
    Document,
    /// The last tuple read.
    Tuple,
    /// The last person read.
    Person,
}

/// What an open element is to the reader.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Frame {
    Presence,
    Tuple,
    Status,
    /// `<basic>`: its text is collected.
    Basic,
    Person,
    /// `<rpid:activities>` of an owner (the draft namespace's when `draft`).
    Activities {
        owner: Owner,
        draft: bool,
    },
    /// `<rpid:other>`: its text is collected.
    Other(Owner),
    /// The draft's `<activity>TOKEN</activity>`: its text is collected.
    DraftActivity(Owner),
    /// `<rpid:user-input>`: its text is collected.
    UserInput(Owner),
    /// A note: its text is collected.
    Note {
        owner: Owner,
        lang: Option<String>,
    },
    /// An element the reader does not read (nor anything inside it).
    Skipped,
}

impl Frame {
    /// Whether the text directly inside is collected.
    fn collects(&self) -> bool {
        matches!(
            self,
            Frame::Basic
                | Frame::Other(_)
                | Frame::DraftActivity(_)
                | Frame::UserInput(_)
                | Frame::Note { .. }
        )
    }
}

#[derive(Debug)]
struct Open {
    frame: Frame,
    /// The local name (for element paths).
    name: String,
    /// Byte offset of its `<` in the body.
    offset: usize,
}

struct Reader<'a, 'l> {
    /// Offset of the reader's text in the body (3 after a byte-order mark).
    base: usize,
    xml: NsReader<&'a [u8]>,
    limits: &'l Limits,
    stack: Vec<Open>,
    doc: PidfDocument,
    /// The root element has been closed.
    root_done: bool,
    /// Something other than white space has been read (a declaration must come first).
    seen_content: bool,
    /// The text of the innermost collecting element.
    text: String,
    activities: usize,
    notes: usize,
}

/// Which namespaces hold RPID elements, and whether it is the draft's.
fn rpid_namespace(ns: Option<&str>) -> Option<bool> {
    match ns? {
        RPID | RPID_STATUS => Some(false),
        RPID_DRAFT => Some(true),
        _ => None,
    }
}

impl<'a> Reader<'a, '_> {
    fn position(&self) -> usize {
        usize::try_from(self.xml.buffer_position())
            .unwrap_or(usize::MAX)
            .saturating_add(self.base)
    }

    fn path(&self, extra: Option<&str>) -> Option<String> {
        let mut names: Vec<&str> = self.stack.iter().map(|o| o.name.as_str()).collect();
        names.extend(extra);
        (!names.is_empty()).then(|| names.join("/"))
    }

    fn error(&self, position: usize, extra: Option<&str>, what: String) -> SimpleError {
        SimpleError::Pidf {
            position: position as u64,
            path: self.path(extra),
            what,
            source: None,
        }
    }

    fn xml_error(&self, position: usize, what: &str, source: quick_xml::Error) -> SimpleError {
        SimpleError::Pidf {
            position: position as u64,
            path: self.path(None),
            what: format!("{what}: {source}"),
            source: Some(source),
        }
    }

    fn run(mut self) -> Result<PidfDocument, SimpleError> {
        loop {
            let offset = self.position();
            let event = match self.xml.read_event() {
                Ok(event) => event,
                Err(source) => {
                    let at = usize::try_from(self.xml.error_position())
                        .unwrap_or(usize::MAX)
                        .saturating_add(self.base);
                    return Err(self.xml_error(at, "not well-formed XML", source));
                }
            };
            let seen = std::mem::replace(&mut self.seen_content, true);
            match event {
                Event::Start(e) => self.start(&e, offset, false)?,
                Event::Empty(e) => self.start(&e, offset, true)?,
                Event::End(_) => self.end()?,
                Event::Text(t) => {
                    let content = t.xml10_content();
                    if !content.chars().all(is_xml_whitespace) {
                        self.outside_root(offset)?;
                    } else if self.stack.is_empty() {
                        // White space before the declaration is tolerated.
                        self.seen_content = seen;
                    }
                    self.push_text(&content, offset)?;
                }
                Event::CData(c) => {
                    self.outside_root(offset)?;
                    let content = c.xml10_content();
                    self.push_text(&content, offset)?;
                }
                Event::GeneralRef(r) => {
                    self.outside_root(offset)?;
                    let c = self.reference(&r, offset)?;
                    self.push_text(c.encode_utf8(&mut [0; 4]), offset)?;
                }
                Event::Decl(d) => {
                    if seen {
                        return Err(self.error(
                            offset,
                            None,
                            "an XML declaration may only start the body".to_owned(),
                        ));
                    }
                    if let Some(encoding) = d.encoding() {
                        let encoding = encoding
                            .map_err(|e| self.xml_error(offset, "bad XML declaration", e.into()))?;
                        let name = encoding.trim();
                        if !name.eq_ignore_ascii_case("utf-8") && !name.eq_ignore_ascii_case("utf8")
                        {
                            return Err(self.error(
                                offset,
                                None,
                                format!("encoding `{name}` is not supported: PIDF bodies are read as UTF-8"),
                            ));
                        }
                    }
                }
                Event::DocType(_) => {
                    return Err(self.error(
                        offset,
                        None,
                        "a DOCTYPE is not allowed: PIDF has no DTD, and the reader neither \
                         loads external entities nor expands defined ones"
                            .to_owned(),
                    ));
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return self.finish(offset),
            }
        }
    }

    /// Fails for content (other than white space) outside the root element.
    fn outside_root(&self, offset: usize) -> Result<(), SimpleError> {
        if self.stack.is_empty() {
            return Err(self.error(offset, None, "text outside the root element".to_owned()));
        }
        Ok(())
    }

    fn push_text(&mut self, content: &str, offset: usize) -> Result<(), SimpleError> {
        if !self.stack.last().is_some_and(|o| o.frame.collects()) {
            return Ok(());
        }
        if self.text.len().saturating_add(content.len()) > self.limits.max_text_bytes {
            return Err(self.error(
                offset,
                None,
                format!(
                    "the text is longer than the limit of {} bytes",
                    self.limits.max_text_bytes
                ),
            ));
        }
        self.text.push_str(content);
        Ok(())
    }

    fn reference(&self, r: &BytesRef<'_>, offset: usize) -> Result<char, SimpleError> {
        match r.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => return Ok(c),
            Ok(Some(c)) => {
                return Err(self.error(
                    offset,
                    None,
                    format!(
                        "the character reference to U+{:04X} is not allowed in XML 1.0",
                        u32::from(c)
                    ),
                ));
            }
            Ok(None) => {}
            Err(source) => return Err(self.xml_error(offset, "bad character reference", source)),
        }
        match r.as_ref() {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            other => Err(self.error(
                offset,
                None,
                format!(
                    "undefined entity `&{}`: PIDF has no DTD, only &lt; &gt; &amp; &apos; &quot; \
                     and character references are allowed",
                    shorten(other)
                ),
            )),
        }
    }

    /// A start tag (or an empty element, which is closed at once).
    fn start(&mut self, e: &BytesStart<'_>, offset: usize, empty: bool) -> Result<(), SimpleError> {
        let (resolved, local) = self.xml.resolver().resolve_element(e.name());
        let local = local.into_inner();
        let ns: Option<String> = match resolved {
            ResolveResult::Bound(ns) => Some(ns.into_inner().to_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(self.error(
                    offset,
                    Some(local),
                    format!("the prefix `{}` is not declared", shorten(&prefix)),
                ));
            }
        };
        if self.root_done {
            return Err(self.error(offset, Some(local), "a second root element".to_owned()));
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.error(
                offset,
                Some(local),
                format!(
                    "elements nest deeper than the limit of {}",
                    self.limits.max_depth
                ),
            ));
        }
        let frame = self.frame(e, ns.as_deref(), local, offset)?;
        if frame.collects() {
            self.text.clear();
        }
        self.stack.push(Open {
            frame,
            name: local.to_owned(),
            offset,
        });
        if empty {
            self.end()?;
        }
        Ok(())
    }

    /// What a new element is, given where it is; adds tuples, persons and activities.
    fn frame(
        &mut self,
        e: &BytesStart<'_>,
        ns: Option<&str>,
        local: &str,
        offset: usize,
    ) -> Result<Frame, SimpleError> {
        let Some(parent) = self.stack.last().map(|o| o.frame.clone()) else {
            if ns != Some(PIDF) || local != "presence" {
                return Err(self.error(
                    offset,
                    Some(local),
                    format!(
                        "the root element is `{local}` in {}, not `presence` in {PIDF}",
                        ns.map_or_else(
                            || "no namespace".to_owned(),
                            |ns| format!("namespace {}", shorten(ns))
                        )
                    ),
                ));
            }
            self.doc.entity = self.attribute(e, None, "entity", offset, local)?;
            return Ok(Frame::Presence);
        };
        let rpid = rpid_namespace(ns);
        let frame = match (&parent, ns, local) {
            (Frame::Presence, Some(PIDF), "tuple") => {
                if self.doc.tuples.len() >= self.limits.max_tuples {
                    return Err(self.too_many(
                        offset,
                        Some(local),
                        "tuples",
                        self.limits.max_tuples,
                    ));
                }
                let id = self.attribute(e, None, "id", offset, local)?;
                self.doc.tuples.push(Tuple {
                    id,
                    ..Tuple::default()
                });
                Frame::Tuple
            }
            (Frame::Presence, Some(DM), "person") => {
                if self.doc.persons.len() >= self.limits.max_persons {
                    return Err(self.too_many(
                        offset,
                        Some(local),
                        "persons",
                        self.limits.max_persons,
                    ));
                }
                let id = self.attribute(e, None, "id", offset, local)?;
                self.doc.persons.push(Person {
                    id,
                    ..Person::default()
                });
                Frame::Person
            }
            (Frame::Presence, Some(PIDF), "note") => {
                self.note(e, Owner::Document, offset, local)?
            }
            (Frame::Tuple, Some(PIDF), "status") => Frame::Status,
            (Frame::Tuple, Some(PIDF), "note") => self.note(e, Owner::Tuple, offset, local)?,
            // Some user agents write the person's notes in the PIDF namespace.
            (Frame::Person, Some(DM | PIDF), "note") => {
                self.note(e, Owner::Person, offset, local)?
            }
            (Frame::Status, Some(PIDF), "basic") => {
                if self.doc.tuples.last().is_some_and(|t| t.basic.is_some()) {
                    return Err(self.error(
                        offset,
                        Some(local),
                        "a second `basic` in one tuple".to_owned(),
                    ));
                }
                Frame::Basic
            }
            (Frame::Tuple | Frame::Status | Frame::Person, _, "activities") if rpid.is_some() => {
                Frame::Activities {
                    owner: if parent == Frame::Person {
                        Owner::Person
                    } else {
                        Owner::Tuple
                    },
                    draft: rpid == Some(true),
                }
            }
            (Frame::Tuple | Frame::Status | Frame::Person, _, "user-input") if rpid.is_some() => {
                Frame::UserInput(if parent == Frame::Person {
                    Owner::Person
                } else {
                    Owner::Tuple
                })
            }
            (Frame::Activities { owner, draft: true }, Some(RPID_DRAFT), "activity") => {
                Frame::DraftActivity(*owner)
            }
            (Frame::Activities { owner, .. }, _, "other") if rpid.is_some() => {
                self.count_activity(offset, Some(local))?;
                Frame::Other(*owner)
            }
            (Frame::Activities { owner, .. }, _, token) if rpid.is_some() => {
                if let Some(activity) = Activity::from_token(token) {
                    self.count_activity(offset, Some(local))?;
                    self.add_activity(*owner, activity);
                }
                Frame::Skipped
            }
            _ => Frame::Skipped,
        };
        Ok(frame)
    }

    /// `extra`: the element being opened, when it is not on the stack yet.
    fn too_many(
        &self,
        offset: usize,
        extra: Option<&str>,
        what: &str,
        limit: usize,
    ) -> SimpleError {
        self.error(
            offset,
            extra,
            format!("more {what} than the limit of {limit}"),
        )
    }

    fn count_activity(&mut self, offset: usize, extra: Option<&str>) -> Result<(), SimpleError> {
        if self.activities >= self.limits.max_activities {
            return Err(self.too_many(offset, extra, "activities", self.limits.max_activities));
        }
        self.activities += 1;
        Ok(())
    }

    fn add_activity(&mut self, owner: Owner, activity: Activity) {
        match owner {
            Owner::Tuple => {
                if let Some(t) = self.doc.tuples.last_mut() {
                    t.activities.push(activity);
                }
            }
            Owner::Person => {
                if let Some(p) = self.doc.persons.last_mut() {
                    p.activities.push(activity);
                }
            }
            Owner::Document => {}
        }
    }

    fn note(
        &mut self,
        e: &BytesStart<'_>,
        owner: Owner,
        offset: usize,
        local: &str,
    ) -> Result<Frame, SimpleError> {
        let lang = self.attribute(e, Some(XML), "lang", offset, local)?;
        Ok(Frame::Note { owner, lang })
    }

    /// The value of attribute `name` (in namespace `ns`; `None`: unprefixed), normalized,
    /// within the text limit.
    fn attribute(
        &self,
        e: &BytesStart<'_>,
        ns: Option<&str>,
        name: &str,
        offset: usize,
        local: &str,
    ) -> Result<Option<String>, SimpleError> {
        let mut found = None;
        for attribute in e.attributes() {
            let attribute =
                attribute.map_err(|error| self.xml_error(offset, "bad attribute", error.into()))?;
            if attribute.key.as_namespace_binding().is_some() {
                continue;
            }
            let (resolved, attr_local) = self.xml.resolver().resolve_attribute(attribute.key);
            let attr_ns = match resolved {
                ResolveResult::Bound(n) => Some(n.into_inner()),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(prefix) => {
                    return Err(self.error(
                        offset,
                        Some(local),
                        format!("the prefix `{}` is not declared", shorten(&prefix)),
                    ));
                }
            };
            if attr_ns != ns || attr_local.into_inner() != name {
                continue;
            }
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|source| self.xml_error(offset, &format!("attribute `{name}`"), source))?;
            if value.len() > self.limits.max_text_bytes {
                return Err(self.error(
                    offset,
                    Some(local),
                    format!(
                        "attribute `{name}` is longer than the limit of {} bytes",
                        self.limits.max_text_bytes
                    ),
                ));
            }
            if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
                return Err(self.error(
                    offset,
                    Some(local),
                    format!(
                        "attribute `{name}` refers to U+{:04X}, which XML 1.0 does not allow",
                        u32::from(c)
                    ),
                ));
            }
            found = Some(Cow::into_owned(value));
        }
        Ok(found)
    }

    /// An end tag (quick-xml checks that it matches).
    fn end(&mut self) -> Result<(), SimpleError> {
        let Some(open) = self.stack.last() else {
            return Ok(());
        };
        let offset = open.offset;
        let text = if open.frame.collects() {
            std::mem::take(&mut self.text)
        } else {
            String::new()
        };
        let trimmed = text.trim_matches(is_xml_whitespace);
        match open.frame.clone() {
            Frame::Basic => {
                let basic = match trimmed {
                    "open" => Basic::Open,
                    "closed" => Basic::Closed,
                    other => {
                        return Err(self.error(
                            offset,
                            None,
                            format!(
                                "`{}` is not a basic status: expected `open` or `closed`",
                                shorten(other)
                            ),
                        ));
                    }
                };
                if let Some(t) = self.doc.tuples.last_mut() {
                    t.basic = Some(basic);
                }
            }
            Frame::Other(owner) => self.add_activity(owner, Activity::Other(trimmed.to_owned())),
            Frame::DraftActivity(owner) => {
                if let Some(activity) = Activity::from_token(trimmed) {
                    self.count_activity(offset, None)?;
                    self.add_activity(owner, activity);
                }
            }
            Frame::UserInput(owner) => {
                if trimmed == "idle" {
                    match owner {
                        Owner::Tuple => {
                            if let Some(t) = self.doc.tuples.last_mut() {
                                t.idle = true;
                            }
                        }
                        Owner::Person => {
                            if let Some(p) = self.doc.persons.last_mut() {
                                p.idle = true;
                            }
                        }
                        Owner::Document => {}
                    }
                }
            }
            Frame::Note { owner, lang } => {
                if !trimmed.is_empty() {
                    if self.notes >= self.limits.max_notes {
                        return Err(self.too_many(offset, None, "notes", self.limits.max_notes));
                    }
                    self.notes += 1;
                    let note = Note {
                        lang,
                        text: trimmed.to_owned(),
                    };
                    let notes = match owner {
                        Owner::Document => Some(&mut self.doc.notes),
                        Owner::Tuple => self.doc.tuples.last_mut().map(|t| &mut t.notes),
                        Owner::Person => self.doc.persons.last_mut().map(|p| &mut p.notes),
                    };
                    if let Some(notes) = notes {
                        notes.push(note);
                    }
                }
            }
            Frame::Presence => self.root_done = true,
            Frame::Tuple | Frame::Status | Frame::Person | Frame::Activities { .. } => {}
            Frame::Skipped => {}
        }
        self.stack.pop();
        Ok(())
    }

    fn finish(self, offset: usize) -> Result<PidfDocument, SimpleError> {
        if let Some(open) = self.stack.last() {
            return Err(self.error(
                offset,
                None,
                format!(
                    "the body ends inside `{}` (opened at byte {})",
                    open.name, open.offset
                ),
            ));
        }
        if !self.root_done {
            return Err(self.error(
                offset,
                None,
                format!("no root element: expected `presence` in {PIDF}"),
            ));
        }
        Ok(self.doc)
    }
}

/// At most 64 characters of `text`, for messages.
fn shorten(text: &str) -> Cow<'_, str> {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => Cow::Owned(format!("{}...", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

// -------------------------------------------------------------------------------------
// Fuzzing

/// Reads arbitrary bytes as a PIDF body and, when they parse, checks the way back: what
/// [`Mapping::pull`] makes of the document, pushed with the default mapping, written and
/// read again, pulls to the same availability and text; and each person's activities and
/// user input, written and read again, come back the same. Panics only if one of those
/// properties fails (never on the input itself). Shared by the cargo-fuzz target
/// `fuzz/fuzz_targets/pidf.rs` and a proptest.
pub fn fuzz_read(data: &[u8]) {
    let Ok(document) = read(data) else {
        return;
    };
    // What the writer makes of a body within the limits may be larger (escaping), so the
    // way back is read without a size limit.
    let reread = |body: &str| {
        let limits = Limits {
            max_body_bytes: usize::MAX,
            ..Limits::DEFAULT
        };
        read_with(body.as_bytes(), &limits).expect("a written body reads back")
    };
    let mapping = Mapping::default();
    let (availability, text) = mapping.pull(&document);
    let entity = document.entity.as_deref().unwrap_or("sip:fuzz@invalid");

    let activities = text
        .as_deref()
        .map(|t| vec![(Lcid::EN_US, ActivityText::new(t))])
        .unwrap_or_default();
    let publication = Publication {
        id: AggregatedStateId::new("PULLED").expect("a valid constant state ID"),
        presence: Presence {
            availability: Availability::from_wire(availability),
            activities: Activities::new(activities).expect("one LCID"),
        },
    };
    match mapping.push(&publication) {
        PushTarget::Publish(state) => {
            let body = write(entity, "t", "p", &state, &publication.presence.activities);
            let again = reread(&body);
            assert_eq!(again.entity.as_deref(), Some(entity));
            assert_eq!(mapping.pull(&again), (availability, text), "{body}");
        }
        PushTarget::Remove => assert_eq!(availability, 18000),
        PushTarget::Nothing => panic!("pull gave availability 0"),
    }

    for person in &document.persons {
        let state = PidfState {
            basic: Basic::Open,
            activities: person.activities.clone(),
            idle: person.idle,
        };
        let id = person.id.as_deref().unwrap_or("p");
        let body = write(entity, "t", id, &state, &Activities::empty());
        let again = reread(&body);
        let [back] = again.persons.as_slice() else {
            panic!("one person expected in {body}");
        };
        assert_eq!(back.id.as_deref(), Some(id), "{body}");
        assert_eq!(back.activities, person.activities, "{body}");
        assert_eq!(back.idle, person.idle, "{body}");
    }
}
