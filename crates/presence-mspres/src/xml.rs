//! The shared XML layer: a namespace-resolved element tree read with `quick-xml`'s
//! [`NsReader`], the checks every body gets (size, UTF-8, no DOCTYPE, depth, element count),
//! helpers that read typed attributes with located errors, and the escaping writer.
//!
//! Every body is small (a few kilobytes; at most [`Limits::max_body_bytes`]), so each parser
//! first builds a tree of the whole body and then reads its own elements from it by
//! namespace URI and local name. Names are resolved while reading, so prefixes never
//! matter afterwards.

use std::rc::Rc;

use quick_xml::XmlVersion;
use quick_xml::escape::EscapeError;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::reader::NsReader;

use crate::error::{quote, quote_str};
use crate::{Limits, Location, MsPresError};

/// The XML Schema instance namespace (`xsi:type`).
pub(crate) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// An element with its resolved name, attributes, children and direct text.
#[derive(Debug)]
pub(crate) struct Element {
    /// The namespace URI, if the element is in one (shared by the elements of the body
    /// that are in the same namespace).
    pub(crate) ns: Option<Rc<str>>,
    /// The local name.
    pub(crate) local: String,
    /// Byte offset of the `<` in the body (the name as written follows it).
    pub(crate) offset: usize,
    pub(crate) attrs: Vec<Attr>,
    pub(crate) children: Vec<Element>,
    /// The concatenated text, CDATA and references directly inside the element (line ends
    /// normalized as XML 1.0 requires).
    pub(crate) text: String,
    /// The `xsi:type` attribute resolved as a QName in the element's scope.
    pub(crate) xsi_type: Option<XsiType>,
}

/// An attribute (namespace declarations are not kept).
#[derive(Debug)]
pub(crate) struct Attr {
    /// The namespace URI: `None` for an unprefixed attribute.
    pub(crate) ns: Option<Rc<str>>,
    pub(crate) local: String,
    /// The normalized value (references expanded, white space characters as spaces).
    pub(crate) value: String,
    /// Byte offset of the attribute's name in the body.
    pub(crate) offset: usize,
}

/// The value of an `xsi:type` attribute, resolved as a QName.
#[derive(Debug)]
pub(crate) struct XsiType {
    /// The value as written, trimmed.
    pub(crate) raw: String,
    /// `Ok((namespace, local name, prefixed))` or `Err(prefix)` if the prefix is undeclared.
    pub(crate) resolved: Result<(Option<String>, String, bool), String>,
    /// Byte offset of the attribute.
    pub(crate) offset: usize,
}

impl Element {
    /// Whether the element is `local` in namespace `ns`.
    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// The unprefixed (no-namespace) attribute `local`.
    pub(crate) fn attr(&self, local: &str) -> Option<&Attr> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.local == local)
    }

    /// The child elements `local` in namespace `ns`.
    pub(crate) fn children_named<'s, 'n>(
        &'s self,
        ns: &'n str,
        local: &'n str,
    ) -> impl Iterator<Item = &'s Element> + use<'s, 'n> {
        self.children.iter().filter(move |c| c.is(ns, local))
    }
}

/// Reads `body` into an element tree, or says where and why it is not acceptable XML.
///
/// `kind` names the body in size errors; `root` (namespace, local name) is only used for
/// the message when there is no root element.
pub(crate) fn read_tree(
    body: &[u8],
    limits: &Limits,
    kind: &'static str,
    root: (&'static str, &'static str),
) -> Result<Element, MsPresError> {
    if body.len() > limits.max_body_bytes {
        return Err(MsPresError::TooLarge {
            body: kind,
            size: body.len(),
            limit: limits.max_body_bytes,
        });
    }
    let (base, rest) = match body.strip_prefix(UTF8_BOM) {
        Some(rest) => (UTF8_BOM.len(), rest),
        None => (0, body),
    };
    let text = match std::str::from_utf8(rest) {
        Ok(text) => text,
        Err(source) => {
            let offset = base + source.valid_up_to();
            return Err(MsPresError::NotUtf8 {
                at: Location::of(body, offset),
                byte: body.get(offset).copied().unwrap_or_default(),
                source,
            });
        }
    };
    if let Some((i, c)) = text.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        return Err(MsPresError::ForbiddenCharacter {
            at: Location::of(body, base + i),
            code: u32::from(c),
        });
    }
    TreeReader {
        body,
        base,
        reader: new_reader(text),
        stack: Vec::new(),
        namespaces: Vec::new(),
        root: None,
        elements: 0,
        limits,
        root_name: root,
    }
    .run()
}

fn new_reader(text: &str) -> NsReader<&[u8]> {
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_dangling_amp = false;
    config.allow_unmatched_ends = false;
    config.expand_empty_elements = false;
    config.trim_text(false);
    reader
}

struct TreeReader<'a, 'l> {
    /// The whole body (locations are computed on it).
    body: &'a [u8],
    /// Offset of the reader's text in `body` (3 after a byte-order mark).
    base: usize,
    reader: NsReader<&'a [u8]>,
    stack: Vec<Element>,
    /// The namespace URIs seen so far, shared by the elements and attributes in them.
    namespaces: Vec<Rc<str>>,
    root: Option<Element>,
    elements: usize,
    limits: &'l Limits,
    root_name: (&'static str, &'static str),
}

impl<'a> TreeReader<'a, '_> {
    fn at(&self, offset: usize) -> Location {
        Location::of(self.body, offset)
    }

    fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position())
            .unwrap_or(usize::MAX)
            .saturating_add(self.base)
    }

    fn xml_error(&self, source: quick_xml::Error) -> MsPresError {
        let offset = usize::try_from(self.reader.error_position())
            .unwrap_or(usize::MAX)
            .saturating_add(self.base);
        self.xml_error_at(offset, source)
    }

    fn xml_error_at(&self, offset: usize, source: quick_xml::Error) -> MsPresError {
        MsPresError::Xml {
            at: self.at(offset),
            near: quote(self.body, offset),
            source,
        }
    }

    /// The byte offset of `part` in the body, if it is a slice of it (events borrow from
    /// the input).
    fn offset_of(&self, part: &str) -> Option<usize> {
        let start = self.body.as_ptr() as usize;
        let at = (part.as_ptr() as usize).checked_sub(start)?;
        (at <= self.body.len()).then_some(at)
    }

    fn run(mut self) -> Result<Element, MsPresError> {
        let mut first_event = true;
        loop {
            let offset = self.position();
            let event = self
                .reader
                .read_event()
                .map_err(|source| self.xml_error(source))?;
            let was_first = std::mem::replace(&mut first_event, false);
            match event {
                Event::Start(e) => {
                    let element = self.element(&e, offset)?;
                    self.stack.push(element);
                }
                Event::Empty(e) => {
                    let element = self.element(&e, offset)?;
                    self.attach(element);
                }
                Event::End(_) => {
                    // The reader checks that end tags match, so the stack is not empty.
                    if let Some(element) = self.stack.pop() {
                        self.attach(element);
                    }
                }
                Event::Text(t) => self.text(&t.xml10_content(), offset)?,
                Event::CData(c) => {
                    let content = c.xml10_content();
                    if self.stack.is_empty() {
                        return Err(self.outside_root(offset));
                    }
                    self.push_text(&content);
                }
                Event::GeneralRef(r) => {
                    let c = self.reference(&r, offset)?;
                    if self.stack.is_empty() {
                        return Err(self.outside_root(offset));
                    }
                    if let Some(top) = self.stack.last_mut() {
                        top.text.push(c);
                    }
                }
                Event::Decl(d) => {
                    if !was_first {
                        return Err(MsPresError::MisplacedDeclaration {
                            at: self.at(offset),
                        });
                    }
                    if let Some(encoding) = d.encoding() {
                        let encoding = encoding.map_err(|e| self.xml_error_at(offset, e.into()))?;
                        let name = encoding.trim();
                        if !name.eq_ignore_ascii_case("utf-8") && !name.eq_ignore_ascii_case("utf8")
                        {
                            return Err(MsPresError::Encoding {
                                at: self.at(offset),
                                encoding: name.to_owned(),
                            });
                        }
                    }
                }
                Event::DocType(_) => {
                    return Err(MsPresError::DocType {
                        at: self.at(offset),
                    });
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return self.finish(offset),
            }
        }
    }

    fn attach(&mut self, element: Element) {
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(element),
            None => self.root = Some(element),
        }
    }

    fn push_text(&mut self, content: &str) {
        if let Some(top) = self.stack.last_mut() {
            top.text.push_str(content);
        }
    }

    fn text(&mut self, content: &str, offset: usize) -> Result<(), MsPresError> {
        if self.stack.is_empty() {
            if content.bytes().all(is_xml_whitespace) {
                return Ok(());
            }
            let skipped = content
                .bytes()
                .take_while(|&b| is_xml_whitespace(b))
                .count();
            return Err(self.outside_root(offset.saturating_add(skipped)));
        }
        self.push_text(content);
        Ok(())
    }

    fn outside_root(&self, offset: usize) -> MsPresError {
        MsPresError::ContentOutsideRoot {
            at: self.at(offset),
            found: quote(self.body, offset),
        }
    }

    fn reference(&self, r: &BytesRef<'_>, offset: usize) -> Result<char, MsPresError> {
        match r.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => return Ok(c),
            Ok(Some(c)) => {
                return Err(MsPresError::ForbiddenCharacter {
                    at: self.at(offset),
                    code: u32::from(c),
                });
            }
            Ok(None) => {}
            Err(source) => return Err(self.xml_error_at(offset, source)),
        }
        match r.as_ref() {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            other => Err(MsPresError::UndefinedEntity {
                at: self.at(offset),
                name: quote_str(other),
            }),
        }
    }

    fn element(&mut self, e: &BytesStart<'_>, offset: usize) -> Result<Element, MsPresError> {
        if self.stack.is_empty() && self.root.is_some() {
            return Err(self.outside_root(offset));
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(MsPresError::TooDeep {
                at: self.at(offset),
                limit: self.limits.max_depth,
            });
        }
        self.elements = self.elements.saturating_add(1);
        if self.elements > self.limits.max_elements {
            return Err(MsPresError::TooManyElements {
                at: self.at(offset),
                limit: self.limits.max_elements,
            });
        }
        let name = e.name();
        let (ns, local) = self.reader.resolver().resolve_element(name);
        let ns = match ns {
            ResolveResult::Bound(ns) => Some(intern(&mut self.namespaces, ns.into_inner())),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(MsPresError::UndeclaredPrefix {
                    at: self.at(offset),
                    prefix,
                    name: name.into_inner().to_owned(),
                });
            }
        };
        let mut element = Element {
            ns,
            local: local.into_inner().to_owned(),
            offset,
            attrs: Vec::new(),
            children: Vec::new(),
            text: String::new(),
            xsi_type: None,
        };
        // The tag's content starts after its `<`; attribute errors count from there.
        let content_offset = offset.saturating_add(1);
        for attribute in e.attributes() {
            let attribute = attribute.map_err(|error| {
                let at = content_offset.saturating_add(attr_error_position(&error));
                self.xml_error_at(at, error.into())
            })?;
            let key = attribute.key;
            if key.as_namespace_binding().is_some() {
                continue;
            }
            let at = self.offset_of(key.into_inner()).unwrap_or(offset);
            let (ns, local) = self.reader.resolver().resolve_attribute(key);
            let ns = match ns {
                ResolveResult::Bound(ns) => Some(intern(&mut self.namespaces, ns.into_inner())),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(prefix) => {
                    return Err(MsPresError::UndeclaredPrefix {
                        at: self.at(at),
                        prefix,
                        name: key.into_inner().to_owned(),
                    });
                }
            };
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|error| self.attribute_value_error(at, error))?
                .into_owned();
            if let Some(c) = value.chars().find(|&c| !is_xml_char(c)) {
                return Err(MsPresError::ForbiddenCharacter {
                    at: self.at(at),
                    code: u32::from(c),
                });
            }
            let local = local.into_inner().to_owned();
            if ns.as_deref() == Some(XSI) && local == "type" {
                element.xsi_type = Some(self.resolve_type(&value, at));
            }
            element.attrs.push(Attr {
                ns,
                local,
                value,
                offset: at,
            });
        }
        Ok(element)
    }

    /// Resolves an `xsi:type` value as a QName in the current scope (the element's own
    /// declarations included): an unprefixed name takes the default namespace.
    fn resolve_type(&self, value: &str, offset: usize) -> XsiType {
        let raw = value.trim_matches(is_xml_whitespace_char).to_owned();
        let qname = QName(&raw);
        let prefixed = qname.prefix().is_some();
        let (ns, local) = self.reader.resolver().resolve_element(qname);
        let resolved = match ns {
            ResolveResult::Bound(ns) => Ok((
                Some(ns.into_inner().to_owned()),
                local.into_inner().to_owned(),
                prefixed,
            )),
            ResolveResult::Unbound => Ok((None, local.into_inner().to_owned(), prefixed)),
            ResolveResult::Unknown(prefix) => Err(prefix),
        };
        XsiType {
            raw,
            resolved,
            offset,
        }
    }

    fn attribute_value_error(&self, at: usize, error: quick_xml::Error) -> MsPresError {
        match error {
            quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
                MsPresError::UndefinedEntity {
                    at: self.at(at),
                    name: quote_str(&name),
                }
            }
            other => self.xml_error_at(at, other),
        }
    }

    fn finish(mut self, offset: usize) -> Result<Element, MsPresError> {
        if let Some(open) = self.stack.pop() {
            return Err(MsPresError::Truncated {
                at: self.at(offset),
                opened_at: self.at(open.offset),
                open: tag_name_at(self.body, open.offset),
            });
        }
        match self.root.take() {
            Some(root) => Ok(root),
            None => Err(MsPresError::MissingRoot {
                at: self.at(offset),
                expected: self.root_name.1,
                namespace: self.root_name.0,
            }),
        }
    }
}

/// The position (from the start of the tag's content) an attribute error reports.
fn attr_error_position(error: &AttrError) -> usize {
    match *error {
        AttrError::ExpectedEq(at)
        | AttrError::ExpectedValue(at)
        | AttrError::UnquotedValue(at)
        | AttrError::ExpectedQuote(at, _)
        | AttrError::Duplicated(at, _) => at,
    }
}

/// The shared copy of namespace URI `ns` (a body uses a handful of namespaces).
fn intern(namespaces: &mut Vec<Rc<str>>, ns: &str) -> Rc<str> {
    if let Some(known) = namespaces.iter().find(|n| ***n == *ns) {
        return Rc::clone(known);
    }
    let new: Rc<str> = Rc::from(ns);
    namespaces.push(Rc::clone(&new));
    new
}

/// The name of the tag whose `<` is at `offset`, as written (for messages).
fn tag_name_at(body: &[u8], offset: usize) -> String {
    let rest = body.get(offset.saturating_add(1)..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|&b| is_xml_whitespace(b) || b == b'>' || b == b'/')
        .unwrap_or(rest.len());
    quote_str(&String::from_utf8_lossy(
        rest.get(..end).unwrap_or_default(),
    ))
}

pub(crate) fn is_xml_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn is_xml_whitespace_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

// -------------------------------------------------------------------------------------
// Reading typed values from the tree

/// Reads typed values from a tree with errors located in `body`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) body: &'a [u8],
}

/// What a decimal `u32` must look like, for messages.
pub(crate) const EXPECTED_U32: &str = "a decimal number 0..=4294967295";
/// What a decimal `u64` must look like, for messages.
pub(crate) const EXPECTED_U64: &str = "a decimal number 0..=18446744073709551615";
/// What an `xs:boolean` must look like, for messages.
pub(crate) const EXPECTED_BOOL: &str = "true, false, 1 or 0";

impl Ctx<'_> {
    pub(crate) fn at(&self, offset: usize) -> Location {
        Location::of(self.body, offset)
    }

    /// Checks that the root is `local` in `ns` (any namespace when `ns` is `None`; the
    /// local name then compares ASCII case-insensitively).
    pub(crate) fn expect_root(
        &self,
        root: &Element,
        ns: Option<&'static str>,
        local: &'static str,
    ) -> Result<(), MsPresError> {
        let ok = match ns {
            Some(ns) => root.is(ns, local),
            None => root.local.eq_ignore_ascii_case(local),
        };
        if ok {
            Ok(())
        } else {
            Err(MsPresError::WrongRoot {
                at: self.at(root.offset),
                found: tag_name_at(self.body, root.offset),
                found_namespace: root.ns.as_deref().map(str::to_owned),
                expected: local,
                namespace: ns.unwrap_or("*"),
            })
        }
    }

    /// The at most one child `local` in `ns`.
    pub(crate) fn single_child<'e>(
        &self,
        parent: &'e Element,
        ns: &str,
        local: &'static str,
    ) -> Result<Option<&'e Element>, MsPresError> {
        let mut found = parent.children_named(ns, local);
        let first = found.next();
        if let (Some(first), Some(second)) = (first, found.next()) {
            return Err(MsPresError::RepeatedElement {
                at: self.at(second.offset),
                element: local,
                first: self.at(first.offset),
            });
        }
        Ok(first)
    }

    /// The exactly one child `local` in `ns`.
    pub(crate) fn required_child<'e>(
        &self,
        parent: &'e Element,
        parent_name: &'static str,
        ns: &str,
        local: &'static str,
    ) -> Result<&'e Element, MsPresError> {
        self.single_child(parent, ns, local)?
            .ok_or_else(|| MsPresError::MissingElement {
                at: self.at(parent.offset),
                parent: parent_name,
                element: local,
            })
    }

    pub(crate) fn required_attr<'e>(
        &self,
        element: &'e Element,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<&'e Attr, MsPresError> {
        element
            .attr(attribute)
            .ok_or_else(|| MsPresError::MissingAttribute {
                at: self.at(element.offset),
                element: element_name,
                attribute,
            })
    }

    pub(crate) fn required_string(
        &self,
        element: &Element,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<String, MsPresError> {
        Ok(self
            .required_attr(element, element_name, attribute)?
            .value
            .clone())
    }

    pub(crate) fn optional_string(element: &Element, attribute: &str) -> Option<String> {
        element.attr(attribute).map(|a| a.value.clone())
    }

    fn invalid(
        &self,
        attr: &Attr,
        element: &'static str,
        attribute: &'static str,
        expected: &'static str,
    ) -> MsPresError {
        MsPresError::InvalidAttribute {
            at: self.at(attr.offset),
            element,
            attribute,
            value: quote_str(&attr.value),
            expected,
        }
    }

    pub(crate) fn optional_u32(
        &self,
        element: &Element,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<Option<u32>, MsPresError> {
        element
            .attr(attribute)
            .map(|a| {
                parse_number::<u32>(&a.value)
                    .ok_or_else(|| self.invalid(a, element_name, attribute, EXPECTED_U32))
            })
            .transpose()
    }

    pub(crate) fn required_u32(
        &self,
        element: &Element,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<u32, MsPresError> {
        let a = self.required_attr(element, element_name, attribute)?;
        parse_number::<u32>(&a.value)
            .ok_or_else(|| self.invalid(a, element_name, attribute, EXPECTED_U32))
    }

    pub(crate) fn optional_u64(
        &self,
        element: &Element,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<Option<u64>, MsPresError> {
        element
            .attr(attribute)
            .map(|a| {
                parse_number::<u64>(&a.value)
                    .ok_or_else(|| self.invalid(a, element_name, attribute, EXPECTED_U64))
            })
            .transpose()
    }

    pub(crate) fn optional_bool(
        &self,
        element: &Element,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<Option<bool>, MsPresError> {
        element
            .attr(attribute)
            .map(|a| {
                parse_bool(&a.value)
                    .ok_or_else(|| self.invalid(a, element_name, attribute, EXPECTED_BOOL))
            })
            .transpose()
    }

    pub(crate) fn required_bool(
        &self,
        element: &Element,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<bool, MsPresError> {
        let a = self.required_attr(element, element_name, attribute)?;
        parse_bool(&a.value).ok_or_else(|| self.invalid(a, element_name, attribute, EXPECTED_BOOL))
    }

    /// An attribute whose value must be one of a fixed set (compared ASCII
    /// case-insensitively).
    pub(crate) fn optional_enum<T: Copy>(
        &self,
        element: &Element,
        element_name: &'static str,
        attribute: &'static str,
        values: &[(&str, T)],
        expected: &'static str,
    ) -> Result<Option<T>, MsPresError> {
        let Some(a) = element.attr(attribute) else {
            return Ok(None);
        };
        let value = a.value.trim_matches(is_xml_whitespace_char);
        values
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value))
            .map(|(_, v)| Some(*v))
            .ok_or_else(|| self.invalid(a, element_name, attribute, expected))
    }

    /// The text of `element` as a decimal number.
    pub(crate) fn text_u32(
        &self,
        element: &Element,
        element_name: &'static str,
    ) -> Result<u32, MsPresError> {
        parse_number::<u32>(&element.text).ok_or_else(|| MsPresError::InvalidText {
            at: self.at(element.offset),
            element: element_name,
            value: quote_str(&element.text),
            expected: EXPECTED_U32,
        })
    }
}

/// A decimal number with optional surrounding XML white space (as `xs:unsignedInt` and
/// friends collapse it).
pub(crate) fn parse_number<T: std::str::FromStr>(value: &str) -> Option<T> {
    let value = value.trim_matches(is_xml_whitespace_char);
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// An `xs:boolean`: `true`, `false`, `1` or `0` with optional surrounding white space.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim_matches(is_xml_whitespace_char) {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

// -------------------------------------------------------------------------------------
// Writing

/// A character XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `text` escaped for element content: `&`, `<`, `>` as entities, carriage
/// return as `&#13;` (so it survives line-end normalization), characters XML 1.0 forbids
/// as U+FFFD.
pub(crate) fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Appends `value` escaped for a double-quoted attribute value: `&`, `<`, `>`, `"`, `'` as
/// entities, tab, line feed and carriage return as character references (so they survive
/// attribute-value normalization), characters XML 1.0 forbids as U+FFFD.
pub(crate) fn push_attr_value(out: &mut String, value: &str) {
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
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Appends ` name="value"` with the value escaped.
pub(crate) fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    push_attr_value(out, value);
    out.push('"');
}

/// Appends ` name="n"` for a number.
pub(crate) fn push_attr_num(out: &mut String, name: &str, value: impl std::fmt::Display) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(out, " {name}=\"{value}\"");
}

/// The string as the parsers give it back after the writers escaped it: characters XML 1.0
/// forbids become U+FFFD. Useful for round-trip comparisons.
pub fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(body: &str) -> Result<Element, MsPresError> {
        read_tree(body.as_bytes(), &Limits::DEFAULT, "test", ("urn:x", "r"))
    }

    #[test]
    fn resolves_names_by_namespace_not_prefix() {
        let root = tree(r#"<p:r xmlns:p="urn:x" xmlns="urn:y" p:a="1" b="2"><c>t&amp;<![CDATA[<]]>&#233;</c></p:r>"#)
            .expect("well-formed");
        assert!(root.is("urn:x", "r"));
        assert_eq!(root.attrs.len(), 2);
        assert!(root.attr("a").is_none(), "p:a is namespaced");
        assert_eq!(root.attr("b").map(|a| a.value.as_str()), Some("2"));
        let child = &root.children[0];
        assert!(child.is("urn:y", "c"));
        assert_eq!(child.text, "t&<é");
    }

    #[test]
    fn attribute_values_keep_escaped_white_space() {
        let mut body = String::from("<r xmlns=\"urn:x\"");
        push_attr(&mut body, "v", "a\tb\nc\rd \"'<>&");
        body.push('>');
        push_text(&mut body, "x\ry\r\nz\u{1}");
        body.push_str("</r>");
        let root = tree(&body).expect("well-formed");
        assert_eq!(
            root.attr("v").map(|a| a.value.as_str()),
            Some("a\tb\nc\rd \"'<>&")
        );
        assert_eq!(root.text, "x\ry\r\nz\u{FFFD}");
        // Literal white space in attributes is normalized to spaces.
        let root = tree("<r xmlns=\"urn:x\" v=\"a\tb\nc\"/>").expect("well-formed");
        assert_eq!(root.attr("v").map(|a| a.value.as_str()), Some("a b c"));
    }

    #[test]
    fn xsi_type_is_resolved_in_scope() {
        let root = tree(&format!(
            r#"<r xmlns="urn:x" xmlns:i="{XSI}" xmlns:s="urn:s" i:type="s:t"/>"#
        ))
        .expect("well-formed");
        let t = root.xsi_type.expect("has xsi:type");
        assert_eq!(t.resolved, Ok((Some("urn:s".into()), "t".into(), true)));
        let root = tree(&format!(
            r#"<r xmlns="urn:x" xmlns:i="{XSI}" i:type=" t "/>"#
        ))
        .expect("well-formed");
        let t = root.xsi_type.expect("has xsi:type");
        assert_eq!(t.resolved, Ok((Some("urn:x".into()), "t".into(), false)));
        let root = tree(&format!(
            r#"<r xmlns="urn:x" xmlns:i="{XSI}" i:type="q:t"/>"#
        ))
        .expect("well-formed");
        assert_eq!(
            root.xsi_type.expect("has xsi:type").resolved,
            Err("q".into())
        );
        // A `type` attribute in another namespace is not xsi:type.
        let root = tree(r#"<r xmlns="urn:x" xmlns:i="urn:not-xsi" i:type="t"/>"#).expect("ok");
        assert!(root.xsi_type.is_none());
    }

    #[test]
    fn refuses_what_is_not_plain_xml() {
        let err = |body: &str| tree(body).expect_err(body);
        assert!(matches!(
            err("<!DOCTYPE r [<!ENTITY e 'x'>]><r xmlns='urn:x'>&e;</r>"),
            MsPresError::DocType { at } if at.offset == 0
        ));
        assert!(
            matches!(err("<r>&e;</r>"), MsPresError::UndefinedEntity { name, .. } if name == "e")
        );
        assert!(
            matches!(err("<r a='&e;'/>"), MsPresError::UndefinedEntity { name, .. } if name == "e")
        );
        assert!(
            matches!(err("<r/><r/>"), MsPresError::ContentOutsideRoot { at, .. } if at.offset == 4)
        );
        assert!(
            matches!(err(" x<r/>"), MsPresError::ContentOutsideRoot { at, .. } if at.offset == 1)
        );
        assert!(matches!(err("  "), MsPresError::MissingRoot { .. }));
        assert!(matches!(
            err("<r><a>"),
            MsPresError::Truncated { .. } | MsPresError::Xml { .. }
        ));
        assert!(
            matches!(err("<p:r/>"), MsPresError::UndeclaredPrefix { prefix, .. } if prefix == "p")
        );
        assert!(
            matches!(err("<r p:a='1'/>"), MsPresError::UndeclaredPrefix { prefix, .. } if prefix == "p")
        );
        assert!(matches!(err("<r></s>"), MsPresError::Xml { .. }));
        assert!(matches!(err("<r a='1' a='2'/>"), MsPresError::Xml { at, .. } if at.offset == 9));
        assert!(matches!(
            err("<r/><?xml version='1.0'?>"),
            MsPresError::MisplacedDeclaration { .. }
        ));
        assert!(matches!(
            err("<?xml version='1.0' encoding='ISO-8859-1'?><r/>"),
            MsPresError::Encoding { encoding, .. } if encoding == "ISO-8859-1"
        ));
        assert!(tree("<?xml version='1.0' encoding='UTF-8'?><r/>").is_ok());
        assert!(tree("\u{FEFF}<r/>").is_ok());
        assert!(
            matches!(err("<r>a\u{0}</r>"), MsPresError::ForbiddenCharacter { at, code: 0 } if at.offset == 4)
        );
        assert!(
            matches!(err("<r>&#1;</r>"), MsPresError::ForbiddenCharacter { at, code: 1 } if at.offset == 3)
        );
        assert!(
            matches!(err("<r a='&#xFFFE;'/>"), MsPresError::ForbiddenCharacter { at, code: 0xFFFE } if at.offset == 3)
        );
        assert!(matches!(
            err("<r a='\u{FFFF}'/>"),
            MsPresError::ForbiddenCharacter { code: 0xFFFF, .. }
        ));
        let e =
            read_tree(b"<r>\xFF</r>", &Limits::DEFAULT, "test", ("", "r")).expect_err("bad utf-8");
        assert!(matches!(e, MsPresError::NotUtf8 { at, byte: 0xFF, .. } if at.offset == 3));
    }

    #[test]
    fn enforces_limits() {
        let limits = Limits {
            max_body_bytes: 10,
            ..Limits::DEFAULT
        };
        let e = read_tree(b"<r>0123456789</r>", &limits, "test", ("", "r")).expect_err("too big");
        assert!(matches!(
            e,
            MsPresError::TooLarge {
                size: 17,
                limit: 10,
                ..
            }
        ));
        let limits = Limits {
            max_depth: 2,
            ..Limits::DEFAULT
        };
        let e = read_tree(b"<a><b><c/></b></a>", &limits, "test", ("", "r")).expect_err("deep");
        assert!(matches!(e, MsPresError::TooDeep { at, limit: 2 } if at.offset == 6));
        let limits = Limits {
            max_elements: 2,
            ..Limits::DEFAULT
        };
        let e = read_tree(b"<a><b/><c/></a>", &limits, "test", ("", "r")).expect_err("many");
        assert!(matches!(e, MsPresError::TooManyElements { at, .. } if at.offset == 7));
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(parse_number::<u32>(" 42\n"), Some(42));
        assert_eq!(parse_number::<u32>("+1"), None);
        assert_eq!(parse_number::<u32>("-1"), None);
        assert_eq!(parse_number::<u32>(""), None);
        assert_eq!(parse_number::<u32>("4294967296"), None);
        assert_eq!(parse_number::<u64>("4294967296"), Some(4_294_967_296));
        assert_eq!(parse_bool(" 1 "), Some(true));
        assert_eq!(parse_bool("True"), None);
    }

    #[test]
    fn xml_safe_replaces_forbidden_characters() {
        assert_eq!(xml_safe("a\u{0}b\u{FFFE}\tc"), "a\u{FFFD}b\u{FFFD}\tc");
    }
}
