//! The shared XML layer: a namespace-resolved element tree, the checks every body gets
//! (size, UTF-8, no DOCTYPE, depth, element count), helpers that read typed attributes with
//! located errors, and the escaping writer.
//!
//! Every body is small (a few kilobytes; at most [`Limits::max_body_bytes`]), so each parser
//! first reads the whole body into a [`Tree`] and then reads its own elements from it by
//! namespace URI and local name. Names are resolved while reading, so prefixes never
//! matter afterwards.
//!
//! Two readers build the tree. `quick-xml`'s [`NsReader`] (the *full reader*) reads
//! everything and says what is wrong; the [`plain`] scanner reads the plain XML that the
//! writers produce (no references, comments, CDATA or declarations) several times faster
//! and hands anything else, errors included, to the full reader, so behaviour is the full
//! reader's either way.
//!
//! The tree is built for the hot path (the simulator reads every publication with it):
//!
//! - it **borrows from the body**: local names, attribute values and texts are slices of
//!   the body, and are copied only when reading changed them (references expanded, line
//!   ends or white space in attribute values normalized, text split by a reference or
//!   CDATA section);
//! - it is **flat**: the elements are kept in document order in one vector, each with the
//!   end of its subtree (so its children are found by skipping from one subtree to the
//!   next), and all attributes in another, so a body costs a handful of allocations
//!   whatever its size;
//! - namespace URIs are stored once per body and elements refer to them by index.
//!
//! Parsers see the tree through [`Element`], a cheap copyable view of one element.

use std::borrow::Cow;
use std::ops::Range;

use quick_xml::XmlVersion;
use quick_xml::escape::EscapeError;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::reader::NsReader;

use crate::error::{quote, quote_str};
use crate::{Limits, Location, MsPresError};

mod plain;

/// The XML Schema instance namespace (`xsi:type`).
pub(crate) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The index of a namespace URI in [`Tree::namespaces`].
type NsId = usize;

/// A body read into elements, borrowing from the body (`'a`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Tree<'a> {
    /// The root element; its descendants are all of `nodes`.
    root: Node<'a>,
    /// The elements below the root, in document order (an element comes before its
    /// children, and its subtree is `index + 1..end`).
    nodes: Vec<Node<'a>>,
    /// The attributes of all elements; each element owns a contiguous range.
    attrs: Vec<Attr<'a>>,
    /// The `xsi:type` attributes, resolved.
    types: Vec<XsiType<'a>>,
    /// The namespace URIs the body uses, each once (borrowed from the body by the plain
    /// reader).
    namespaces: Vec<Cow<'a, str>>,
}

/// One element of a [`Tree`].
#[derive(Debug, PartialEq, Eq)]
struct Node<'a> {
    /// The namespace URI, if the element is in one.
    ns: Option<NsId>,
    /// The local name.
    local: Cow<'a, str>,
    /// Byte offset of the `<` in the body (the name as written follows it).
    offset: usize,
    /// Its attributes in [`Tree::attrs`].
    attrs: Range<usize>,
    /// The index in [`Tree::nodes`] just after its last descendant.
    end: usize,
    /// The concatenated text, CDATA and references directly inside the element (line ends
    /// normalized as XML 1.0 requires).
    text: Cow<'a, str>,
    /// Its `xsi:type` attribute in [`Tree::types`].
    xsi_type: Option<usize>,
}

/// An attribute (namespace declarations are not kept).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    /// The namespace URI: `None` for an unprefixed attribute.
    ns: Option<NsId>,
    local: Cow<'a, str>,
    /// The normalized value (references expanded, white space characters as spaces).
    pub(crate) value: Cow<'a, str>,
    /// Byte offset of the attribute's name in the body.
    pub(crate) offset: usize,
}

/// An `xsi:type` attribute as stored: its value resolved as a QName in the scope of its
/// element.
#[derive(Debug, PartialEq, Eq)]
struct XsiType<'a> {
    /// The value as written, trimmed.
    raw: Cow<'a, str>,
    /// The namespace of the name (`None`: unbound), or the prefix if it is undeclared.
    ns: Result<Option<NsId>, String>,
    /// Where the local name starts in `raw`.
    local_start: usize,
    /// Whether the name has a prefix.
    prefixed: bool,
    /// Byte offset of the attribute.
    offset: usize,
}

/// The value of an `xsi:type` attribute, resolved as a QName.
#[derive(Debug)]
pub(crate) struct TypeName<'t> {
    /// The value as written, trimmed.
    pub(crate) raw: &'t str,
    /// `Ok((namespace, local name, prefixed))` or `Err(prefix)` if the prefix is undeclared.
    pub(crate) resolved: Result<(Option<&'t str>, &'t str, bool), &'t str>,
    /// Byte offset of the attribute.
    pub(crate) offset: usize,
}

impl<'a> Tree<'a> {
    /// The root element.
    pub(crate) fn root(&self) -> Element<'_> {
        Element {
            tree: self,
            node: &self.root,
            first: 0,
        }
    }

    fn namespace(&self, id: Option<NsId>) -> Option<&str> {
        id.and_then(|id| self.namespaces.get(id)).map(|ns| &**ns)
    }
}

/// A view of one element of a [`Tree`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Element<'t> {
    tree: &'t Tree<'t>,
    node: &'t Node<'t>,
    /// The index in [`Tree::nodes`] of its first descendant, if it has one.
    first: usize,
}

impl<'t> Element<'t> {
    /// The local name.
    pub(crate) fn local(&self) -> &'t str {
        &self.node.local
    }

    /// The namespace URI, if the element is in one.
    pub(crate) fn ns(&self) -> Option<&'t str> {
        self.tree.namespace(self.node.ns)
    }

    /// Byte offset of the `<` in the body.
    pub(crate) fn offset(&self) -> usize {
        self.node.offset
    }

    /// The concatenated text, CDATA and references directly inside the element.
    pub(crate) fn text(&self) -> &'t str {
        &self.node.text
    }

    /// Whether the element is `local` in namespace `ns`.
    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        self.local() == local && self.ns() == Some(ns)
    }

    /// The attributes (namespace declarations excluded), in document order.
    pub(crate) fn attrs(&self) -> &'t [Attr<'t>] {
        self.tree
            .attrs
            .get(self.node.attrs.clone())
            .unwrap_or_default()
    }

    /// The unprefixed (no-namespace) attribute `local`.
    pub(crate) fn attr(&self, local: &str) -> Option<&'t Attr<'t>> {
        self.attrs()
            .iter()
            .find(|a| a.ns.is_none() && a.local == local)
    }

    /// The `xsi:type` attribute, resolved in the element's scope.
    pub(crate) fn xsi_type(&self) -> Option<TypeName<'t>> {
        let t = self.tree.types.get(self.node.xsi_type?)?;
        let raw: &'t str = &t.raw;
        let resolved = match &t.ns {
            Ok(ns) => Ok((
                self.tree.namespace(*ns),
                raw.get(t.local_start..).unwrap_or_default(),
                t.prefixed,
            )),
            Err(prefix) => Err(prefix.as_str()),
        };
        Some(TypeName {
            raw,
            resolved,
            offset: t.offset,
        })
    }

    /// The child elements, in document order.
    pub(crate) fn children(&self) -> Children<'t> {
        Children {
            tree: self.tree,
            next: self.first,
            end: self.node.end,
        }
    }

    /// The child elements `local` in namespace `ns`.
    pub(crate) fn children_named<'n>(
        &self,
        ns: &'n str,
        local: &'n str,
    ) -> impl Iterator<Item = Element<'t>> + use<'t, 'n> {
        self.children().filter(move |c| c.is(ns, local))
    }
}

/// The children of an element: each is followed by its subtree, which is skipped.
#[derive(Clone, Debug)]
pub(crate) struct Children<'t> {
    tree: &'t Tree<'t>,
    next: usize,
    end: usize,
}

impl<'t> Iterator for Children<'t> {
    type Item = Element<'t>;

    fn next(&mut self) -> Option<Element<'t>> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        let node = self.tree.nodes.get(index)?;
        // `end` is past the element itself, so this always moves on.
        self.next = node.end.max(index + 1);
        Some(Element {
            tree: self.tree,
            node,
            first: index + 1,
        })
    }
}

/// Reads `body` into an element tree, or says where and why it is not acceptable XML.
///
/// `kind` names the body in size errors; `root` (namespace, local name) is only used for
/// the message when there is no root element.
pub(crate) fn read_tree<'a>(
    body: &'a [u8],
    limits: &Limits,
    kind: &'static str,
    root: (&'static str, &'static str),
) -> Result<Tree<'a>, MsPresError> {
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
    if let Some((i, c)) = first_forbidden(text) {
        return Err(MsPresError::ForbiddenCharacter {
            at: Location::of(body, base + i),
            code: u32::from(c),
        });
    }
    // Plain bodies (what the writers of this crate produce) are read by a fast scanner;
    // anything else, errors included, by quick-xml.
    if let Some(tree) = plain::read(text, base, limits) {
        return Ok(tree);
    }
    read_tree_full(body, text, base, limits, root)
}

/// Reads `text` (the body after its byte-order mark, at `base` in `body`) with quick-xml:
/// every XML the crate accepts, and every error.
fn read_tree_full<'a>(
    body: &'a [u8],
    text: &'a str,
    base: usize,
    limits: &Limits,
    root: (&'static str, &'static str),
) -> Result<Tree<'a>, MsPresError> {
    TreeReader {
        body,
        text,
        base,
        reader: new_reader(text),
        stack: Vec::with_capacity(8),
        tree: Builder::for_body(text.len()),
        elements: 0,
        limits,
        root_name: root,
    }
    .run()
}

/// Where an open element is: the root, or an index in [`Tree::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Root,
    Node(usize),
}

/// A [`Tree`] being built, element by element in document order (both readers use it).
#[derive(Debug)]
struct Builder<'a> {
    root: Option<Node<'a>>,
    nodes: Vec<Node<'a>>,
    attrs: Vec<Attr<'a>>,
    types: Vec<XsiType<'a>>,
    namespaces: Vec<Cow<'a, str>>,
}

impl<'a> Builder<'a> {
    /// An empty tree with room for a body of `len` bytes.
    fn for_body(len: usize) -> Self {
        // A rough guess (a publication has an element per 60 to 80 bytes and two
        // attributes per element), so that small bodies rarely grow the vectors.
        let guess = len / 64;
        Builder {
            root: None,
            nodes: Vec::with_capacity(guess.clamp(4, 256)),
            attrs: Vec::with_capacity((2 * guess).clamp(4, 512)),
            types: Vec::new(),
            namespaces: Vec::new(),
        }
    }

    /// Adds an element whose attributes are the last ones added since `attrs_start`: the
    /// root if it is the first one, otherwise the next node. Until it is closed, its
    /// subtree is itself.
    fn open(
        &mut self,
        ns: Option<NsId>,
        local: Cow<'a, str>,
        offset: usize,
        attrs_start: usize,
        xsi_type: Option<usize>,
    ) -> Slot {
        let mut node = Node {
            ns,
            local,
            offset,
            attrs: attrs_start..self.attrs.len(),
            end: 0,
            text: Cow::Borrowed(""),
            xsi_type,
        };
        if self.root.is_none() {
            self.root = Some(node);
            Slot::Root
        } else {
            let index = self.nodes.len();
            node.end = index + 1;
            self.nodes.push(node);
            Slot::Node(index)
        }
    }

    /// The element at `slot` is complete: its subtree ends with the last node added.
    fn close(&mut self, slot: Slot) {
        let end = self.nodes.len();
        if let Some(node) = self.node_mut(slot) {
            node.end = end;
        }
    }

    fn node(&self, slot: Slot) -> Option<&Node<'a>> {
        match slot {
            Slot::Root => self.root.as_ref(),
            Slot::Node(i) => self.nodes.get(i),
        }
    }

    fn node_mut(&mut self, slot: Slot) -> Option<&mut Node<'a>> {
        match slot {
            Slot::Root => self.root.as_mut(),
            Slot::Node(i) => self.nodes.get_mut(i),
        }
    }

    /// Appends `content` to the text of the element at `slot` (borrowed while it is the
    /// only piece).
    fn push_text(&mut self, slot: Slot, content: Cow<'a, str>) {
        if let Some(node) = self.node_mut(slot) {
            if node.text.is_empty() {
                node.text = content;
            } else {
                node.text.to_mut().push_str(&content);
            }
        }
    }

    fn namespace(&self, id: Option<NsId>) -> Option<&str> {
        id.and_then(|id| self.namespaces.get(id)).map(|ns| &**ns)
    }

    /// The tree, if it has a root.
    fn finish(self) -> Option<Tree<'a>> {
        Some(Tree {
            root: self.root?,
            nodes: self.nodes,
            attrs: self.attrs,
            types: self.types,
            namespaces: self.namespaces,
        })
    }
}

/// The first character XML 1.0 forbids in `text` (C0 controls other than tab, line feed
/// and carriage return; U+FFFE; U+FFFF) and its byte offset: the same answer as
/// `text.char_indices().find(|&(_, c)| !is_xml_char(c))`, found by scanning bytes.
///
/// In UTF-8 a byte below 0x20 is always a whole character, and U+FFFE / U+FFFF are the
/// only forbidden characters that are not ASCII (surrogates cannot occur in a `str`); they
/// are `EF BF BE` / `EF BF BF`. Blocks of bytes without either lead byte are skipped with
/// one branch-free test each.
fn first_forbidden(text: &str) -> Option<(usize, char)> {
    const BLOCK: usize = 32;
    let bytes = text.as_bytes();
    let suspect = |b: u8| b < 0x20 || b == 0xEF;
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut start = 0;
    for block in &mut blocks {
        if block.iter().fold(false, |any, &b| any | suspect(b))
            && let Some(found) = forbidden_in(bytes, start, start + BLOCK)
        {
            return Some(found);
        }
        start += BLOCK;
    }
    forbidden_in(bytes, start, bytes.len())
}

/// The first forbidden character starting in `bytes[from..to]` (see [`first_forbidden`]);
/// `bytes` is valid UTF-8.
fn forbidden_in(bytes: &[u8], from: usize, to: usize) -> Option<(usize, char)> {
    let part = bytes.get(from..to)?;
    part.iter().enumerate().find_map(|(i, &b)| {
        let at = from + i;
        let c = match b {
            b'\t' | b'\n' | b'\r' => return None,
            0..0x20 => char::from(b),
            0xEF => match (bytes.get(at + 1), bytes.get(at + 2)) {
                (Some(0xBF), Some(0xBE)) => '\u{FFFE}',
                (Some(0xBF), Some(0xBF)) => '\u{FFFF}',
                _ => return None,
            },
            _ => return None,
        };
        Some((at, c))
    })
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
    /// The body as text, after a byte-order mark (what the reader reads).
    text: &'a str,
    /// Offset of the reader's text in `body` (3 after a byte-order mark).
    base: usize,
    reader: NsReader<&'a [u8]>,
    /// The open elements, innermost last.
    stack: Vec<Slot>,
    tree: Builder<'a>,
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

    /// The offset of `part` in the reader's text, if it is a slice of it (events borrow
    /// from the input).
    fn text_offset_of(&self, part: &str) -> Option<usize> {
        let at = (part.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        (at <= self.text.len()).then_some(at)
    }

    /// The byte offset of `part` in the body, if it is a slice of it.
    fn offset_of(&self, part: &str) -> Option<usize> {
        self.text_offset_of(part).map(|at| at + self.base)
    }

    /// `part` borrowed from the body for the tree's lifetime when it is a slice of it (it
    /// always is for names and unchanged values), a copy otherwise.
    fn borrowed(&self, part: &str) -> Cow<'a, str> {
        self.text_offset_of(part)
            .and_then(|at| self.text.get(at..at.checked_add(part.len())?))
            .map_or_else(|| Cow::Owned(part.to_owned()), Cow::Borrowed)
    }

    /// `value` with the tree's lifetime: borrowed from the body when it was not changed.
    fn keep(&self, value: Cow<'_, str>) -> Cow<'a, str> {
        match value {
            Cow::Borrowed(part) => self.borrowed(part),
            Cow::Owned(owned) => Cow::Owned(owned),
        }
    }

    fn run(mut self) -> Result<Tree<'a>, MsPresError> {
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
                    let slot = self.element(&e, offset)?;
                    self.stack.push(slot);
                }
                Event::Empty(e) => {
                    let slot = self.element(&e, offset)?;
                    self.tree.close(slot);
                }
                Event::End(_) => {
                    // The reader checks that end tags match, so the stack is not empty.
                    if let Some(slot) = self.stack.pop() {
                        self.tree.close(slot);
                    }
                }
                Event::Text(t) => self.text(t.xml10_content(), offset)?,
                Event::CData(c) => {
                    let content = c.xml10_content();
                    if self.stack.is_empty() {
                        return Err(self.outside_root(offset));
                    }
                    self.push_text(content);
                }
                Event::GeneralRef(r) => {
                    let c = self.reference(&r, offset)?;
                    if self.stack.is_empty() {
                        return Err(self.outside_root(offset));
                    }
                    if let Some(top) = self.stack.last().and_then(|&s| self.tree.node_mut(s)) {
                        top.text.to_mut().push(c);
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

    /// Appends `content` to the text of the innermost open element.
    fn push_text(&mut self, content: Cow<'a, str>) {
        if let Some(&top) = self.stack.last() {
            self.tree.push_text(top, content);
        }
    }

    fn text(&mut self, content: Cow<'a, str>, offset: usize) -> Result<(), MsPresError> {
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

    /// Reads a start (or empty) tag into a new node and says where it is.
    fn element(&mut self, e: &BytesStart<'_>, offset: usize) -> Result<Slot, MsPresError> {
        if self.stack.is_empty() && self.tree.root.is_some() {
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
            ResolveResult::Bound(ns) => Some(intern(&mut self.tree.namespaces, ns.into_inner())),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(MsPresError::UndeclaredPrefix {
                    at: self.at(offset),
                    prefix,
                    name: name.into_inner().to_owned(),
                });
            }
        };
        let local = self.borrowed(local.into_inner());
        let attrs_start = self.tree.attrs.len();
        let xsi_type = self.attributes(e, offset)?;
        Ok(self.tree.open(ns, local, offset, attrs_start, xsi_type))
    }

    /// Appends the attributes of `e` (namespace declarations skipped) to the tree and
    /// returns the index of its `xsi:type` in [`Tree::types`], if it has one.
    fn attributes(
        &mut self,
        e: &BytesStart<'_>,
        offset: usize,
    ) -> Result<Option<usize>, MsPresError> {
        let mut xsi_type = None;
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
                ResolveResult::Bound(ns) => {
                    Some(intern(&mut self.tree.namespaces, ns.into_inner()))
                }
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
                .map_err(|error| self.attribute_value_error(at, error))?;
            // Characters written literally were checked with the whole body; references
            // may still stand for forbidden ones.
            if let Some((_, c)) = first_forbidden(&value) {
                return Err(MsPresError::ForbiddenCharacter {
                    at: self.at(at),
                    code: u32::from(c),
                });
            }
            let value = self.keep(value);
            let local = self.borrowed(local.into_inner());
            if local == "type" && self.tree.namespace(ns) == Some(XSI) {
                xsi_type = Some(self.tree.types.len());
                let resolved = self.resolve_type(&value, at);
                self.tree.types.push(resolved);
            }
            self.tree.attrs.push(Attr {
                ns,
                local,
                value,
                offset: at,
            });
        }
        Ok(xsi_type)
    }

    /// Resolves an `xsi:type` value as a QName in the current scope (the element's own
    /// declarations included): an unprefixed name takes the default namespace.
    fn resolve_type(&mut self, value: &Cow<'a, str>, offset: usize) -> XsiType<'a> {
        let raw = match value {
            Cow::Borrowed(v) => Cow::Borrowed(v.trim_matches(is_xml_whitespace_char)),
            Cow::Owned(v) => Cow::Owned(v.trim_matches(is_xml_whitespace_char).to_owned()),
        };
        let qname = QName(&raw);
        let prefixed = qname.prefix().is_some();
        let (ns, local) = self.reader.resolver().resolve_element(qname);
        let local_start = raw.len().saturating_sub(local.into_inner().len());
        let ns = match ns {
            ResolveResult::Bound(ns) => {
                Ok(Some(intern(&mut self.tree.namespaces, ns.into_inner())))
            }
            ResolveResult::Unbound => Ok(None),
            ResolveResult::Unknown(prefix) => Err(prefix),
        };
        XsiType {
            raw,
            ns,
            local_start,
            prefixed,
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

    fn finish(mut self, offset: usize) -> Result<Tree<'a>, MsPresError> {
        if let Some(open) = self.stack.pop() {
            let opened = self.tree.node(open).map_or(offset, |n| n.offset);
            return Err(MsPresError::Truncated {
                at: self.at(offset),
                opened_at: self.at(opened),
                open: tag_name_at(self.body, opened),
            });
        }
        let (body, (namespace, expected)) = (self.body, self.root_name);
        self.tree.finish().ok_or_else(|| MsPresError::MissingRoot {
            at: Location::of(body, offset),
            expected,
            namespace,
        })
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

/// The index of namespace URI `ns` in `namespaces`, added if new (a body uses a handful
/// of namespaces).
fn intern(namespaces: &mut Vec<Cow<'_, str>>, ns: &str) -> NsId {
    if let Some(known) = namespaces.iter().position(|n| **n == *ns) {
        return known;
    }
    namespaces.push(Cow::Owned(ns.to_owned()));
    namespaces.len() - 1
}

/// [`intern`] for a URI that lives as long as the tree (no copy).
fn intern_borrowed<'a>(namespaces: &mut Vec<Cow<'a, str>>, ns: &'a str) -> NsId {
    if let Some(known) = namespaces.iter().position(|n| **n == *ns) {
        return known;
    }
    namespaces.push(Cow::Borrowed(ns));
    namespaces.len() - 1
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
        root: Element<'_>,
        ns: Option<&'static str>,
        local: &'static str,
    ) -> Result<(), MsPresError> {
        let ok = match ns {
            Some(ns) => root.is(ns, local),
            None => root.local().eq_ignore_ascii_case(local),
        };
        if ok {
            Ok(())
        } else {
            Err(MsPresError::WrongRoot {
                at: self.at(root.offset()),
                found: tag_name_at(self.body, root.offset()),
                found_namespace: root.ns().map(str::to_owned),
                expected: local,
                namespace: ns.unwrap_or("*"),
            })
        }
    }

    /// The at most one child `local` in `ns`.
    pub(crate) fn single_child<'e>(
        &self,
        parent: Element<'e>,
        ns: &str,
        local: &'static str,
    ) -> Result<Option<Element<'e>>, MsPresError> {
        let mut found = parent.children_named(ns, local);
        let first = found.next();
        if let (Some(first), Some(second)) = (first, found.next()) {
            return Err(MsPresError::RepeatedElement {
                at: self.at(second.offset()),
                element: local,
                first: self.at(first.offset()),
            });
        }
        Ok(first)
    }

    /// The exactly one child `local` in `ns`.
    pub(crate) fn required_child<'e>(
        &self,
        parent: Element<'e>,
        parent_name: &'static str,
        ns: &str,
        local: &'static str,
    ) -> Result<Element<'e>, MsPresError> {
        self.single_child(parent, ns, local)?
            .ok_or_else(|| MsPresError::MissingElement {
                at: self.at(parent.offset()),
                parent: parent_name,
                element: local,
            })
    }

    pub(crate) fn required_attr<'e>(
        &self,
        element: Element<'e>,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<&'e Attr<'e>, MsPresError> {
        element
            .attr(attribute)
            .ok_or_else(|| MsPresError::MissingAttribute {
                at: self.at(element.offset()),
                element: element_name,
                attribute,
            })
    }

    pub(crate) fn required_string(
        &self,
        element: Element<'_>,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<String, MsPresError> {
        Ok(self
            .required_attr(element, element_name, attribute)?
            .value
            .clone()
            .into_owned())
    }

    pub(crate) fn optional_string(element: Element<'_>, attribute: &str) -> Option<String> {
        element
            .attr(attribute)
            .map(|a| a.value.clone().into_owned())
    }

    fn invalid(
        &self,
        attr: &Attr<'_>,
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
        element: Element<'_>,
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
        element: Element<'_>,
        element_name: &'static str,
        attribute: &'static str,
    ) -> Result<u32, MsPresError> {
        let a = self.required_attr(element, element_name, attribute)?;
        parse_number::<u32>(&a.value)
            .ok_or_else(|| self.invalid(a, element_name, attribute, EXPECTED_U32))
    }

    pub(crate) fn optional_u64(
        &self,
        element: Element<'_>,
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
        element: Element<'_>,
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
        element: Element<'_>,
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
        element: Element<'_>,
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
        element: Element<'_>,
        element_name: &'static str,
    ) -> Result<u32, MsPresError> {
        parse_number::<u32>(element.text()).ok_or_else(|| MsPresError::InvalidText {
            at: self.at(element.offset()),
            element: element_name,
            value: quote_str(element.text()),
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

/// Appends `s`, copying the runs of bytes `special` passes over at once and handing every
/// character that starts with a byte it flags to `escape`. `special` must flag only ASCII
/// bytes and UTF-8 lead bytes, so that every flagged byte starts a character.
#[inline]
fn push_escaped(
    out: &mut String,
    s: &str,
    special: impl Fn(u8) -> bool,
    escape: impl Fn(&mut String, char),
) {
    out.reserve(s.len());
    let mut rest = s;
    while let Some(at) = rest.bytes().position(&special) {
        let (plain, tail) = rest.split_at(at);
        out.push_str(plain);
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            escape(out, c);
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
}

/// For each byte, whether it may start a character that is escaped or replaced in element
/// content: `&`, `<`, `>`, a C0 control (carriage return and the forbidden ones), or
/// `0xEF`, the lead byte of U+FFFE and U+FFFF.
static SPECIAL_IN_TEXT: [bool; 256] = byte_table(b"&<>\xEF", b"\t\n");

/// For each byte, whether it may start a character that is escaped or replaced in an
/// attribute value: as [`SPECIAL_IN_TEXT`], plus the quotes, tab and line feed.
static SPECIAL_IN_ATTR: [bool; 256] = byte_table(b"&<>\xEF\"'", b"");

/// A table that flags the C0 controls but `spared`, and `listed`.
const fn byte_table(listed: &[u8], spared: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    let mut i = 0;
    while i < spared.len() {
        table[spared[i] as usize] = false;
        i += 1;
    }
    let mut i = 0;
    while i < listed.len() {
        table[listed[i] as usize] = true;
        i += 1;
    }
    table
}

#[inline]
fn special_in_text(b: u8) -> bool {
    SPECIAL_IN_TEXT[usize::from(b)]
}

#[inline]
fn special_in_attr(b: u8) -> bool {
    SPECIAL_IN_ATTR[usize::from(b)]
}

/// Appends `text` escaped for element content: `&`, `<`, `>` as entities, carriage
/// return as `&#13;` (so it survives line-end normalization), characters XML 1.0 forbids
/// as U+FFFD.
pub(crate) fn push_text(out: &mut String, text: &str) {
    push_escaped(out, text, special_in_text, |out, c| match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '\r' => out.push_str("&#13;"),
        c if is_xml_char(c) => out.push(c),
        _ => out.push('\u{FFFD}'),
    });
}

/// Appends `value` escaped for a double-quoted attribute value: `&`, `<`, `>`, `"`, `'` as
/// entities, tab, line feed and carriage return as character references (so they survive
/// attribute-value normalization), characters XML 1.0 forbids as U+FFFD.
pub(crate) fn push_attr_value(out: &mut String, value: &str) {
    push_escaped(out, value, special_in_attr, |out, c| match c {
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
    });
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
pub(crate) fn push_attr_num(out: &mut String, name: &str, value: impl Into<u64>) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    push_decimal(out, value.into());
    out.push('"');
}

/// Appends `n` in decimal, as `n.to_string()` writes it (without the formatter).
pub(crate) fn push_decimal(out: &mut String, n: u64) {
    out.push_str(presence_model::Decimal::new(n).as_str());
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

    fn tree(body: &str) -> Result<Tree<'_>, MsPresError> {
        read_tree(body.as_bytes(), &Limits::DEFAULT, "test", ("urn:x", "r"))
    }

    /// The escaping writers, one character at a time: what `push_text` and
    /// `push_attr_value` must give.
    fn escaped_by_char(s: &str, attr: bool) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' if attr => out.push_str("&quot;"),
                '\'' if attr => out.push_str("&apos;"),
                '\t' if attr => out.push_str("&#9;"),
                '\n' if attr => out.push_str("&#10;"),
                '\r' => out.push_str("&#13;"),
                c if is_xml_char(c) => out.push(c),
                _ => out.push('\u{FFFD}'),
            }
        }
        out
    }

    #[test]
    fn numbers_are_written_as_to_string_writes_them() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            7001,
            536_870_912,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    proptest::proptest! {
        #[test]
        fn escaping_copies_runs_as_the_character_writer_would(
            s in "(.|[\\x00-\\x20&<>\"'\u{FFFE}\u{FFFF}\u{FFFD}\u{E000}\u{EFFF}\u{1F600}])*"
        ) {
            let mut text = String::from("x");
            push_text(&mut text, &s);
            proptest::prop_assert_eq!(&text[1..], escaped_by_char(&s, false));
            let mut attr = String::from("x");
            push_attr_value(&mut attr, &s);
            proptest::prop_assert_eq!(&attr[1..], escaped_by_char(&s, true));
        }
    }

    #[test]
    fn resolves_names_by_namespace_not_prefix() {
        let t = tree(r#"<p:r xmlns:p="urn:x" xmlns="urn:y" p:a="1" b="2"><c>t&amp;<![CDATA[<]]>&#233;</c></p:r>"#)
            .expect("well-formed");
        let root = t.root();
        assert!(root.is("urn:x", "r"));
        assert_eq!(root.attrs().len(), 2);
        assert!(root.attr("a").is_none(), "p:a is namespaced");
        assert_eq!(root.attr("b").map(|a| &*a.value), Some("2"));
        let child = root.children().next().expect("a child");
        assert!(child.is("urn:y", "c"));
        assert_eq!(child.text(), "t&<é");
    }

    #[test]
    fn attribute_values_keep_escaped_white_space() {
        let mut body = String::from("<r xmlns=\"urn:x\"");
        push_attr(&mut body, "v", "a\tb\nc\rd \"'<>&");
        body.push('>');
        push_text(&mut body, "x\ry\r\nz\u{1}");
        body.push_str("</r>");
        let t = tree(&body).expect("well-formed");
        let root = t.root();
        assert_eq!(root.attr("v").map(|a| &*a.value), Some("a\tb\nc\rd \"'<>&"));
        assert_eq!(root.text(), "x\ry\r\nz\u{FFFD}");
        // Literal white space in attributes is normalized to spaces.
        let t = tree("<r xmlns=\"urn:x\" v=\"a\tb\nc\"/>").expect("well-formed");
        assert_eq!(t.root().attr("v").map(|a| &*a.value), Some("a b c"));
    }

    #[test]
    fn xsi_type_is_resolved_in_scope() {
        let body = format!(r#"<r xmlns="urn:x" xmlns:i="{XSI}" xmlns:s="urn:s" i:type="s:t"/>"#);
        let doc = tree(&body).expect("well-formed");
        let t = doc.root().xsi_type().expect("has xsi:type");
        assert_eq!(t.resolved, Ok((Some("urn:s"), "t", true)));
        let body = format!(r#"<r xmlns="urn:x" xmlns:i="{XSI}" i:type=" t "/>"#);
        let doc = tree(&body).expect("well-formed");
        let t = doc.root().xsi_type().expect("has xsi:type");
        assert_eq!(t.resolved, Ok((Some("urn:x"), "t", false)));
        assert_eq!(t.raw, "t");
        let body = format!(r#"<r xmlns="urn:x" xmlns:i="{XSI}" i:type="q:t"/>"#);
        let doc = tree(&body).expect("well-formed");
        let t = doc.root().xsi_type().expect("has xsi:type");
        assert_eq!(t.resolved, Err("q"));
        // A value changed by a reference is resolved the same.
        let body =
            format!(r#"<r xmlns="urn:x" xmlns:i="{XSI}" xmlns:s="urn:s" i:type="&#32;s:&#116;"/>"#);
        let doc = tree(&body).expect("well-formed");
        let t = doc.root().xsi_type().expect("has xsi:type");
        assert_eq!((t.raw, t.resolved), ("s:t", Ok((Some("urn:s"), "t", true))));
        // A `type` attribute in another namespace is not xsi:type.
        let doc = tree(r#"<r xmlns="urn:x" xmlns:i="urn:not-xsi" i:type="t"/>"#).expect("ok");
        assert!(doc.root().xsi_type().is_none());
    }

    #[test]
    fn children_skip_the_subtrees_of_their_siblings() {
        let doc = tree(
            r#"<r xmlns="urn:x"><a n="1"><b><c/></b><d/></a>text<e/><f xmlns="urn:y"><a/></f><a n="2"/></r>"#,
        )
        .expect("well-formed");
        let root = doc.root();
        let names: Vec<&str> = root.children().map(|c| c.local()).collect();
        assert_eq!(names, ["a", "e", "f", "a"]);
        let numbered: Vec<&str> = root
            .children_named("urn:x", "a")
            .filter_map(|a| a.attr("n").map(|n| &*n.value))
            .collect();
        assert_eq!(numbered, ["1", "2"]);
        assert_eq!(root.text(), "text");
        let a = root.children().next().expect("a");
        let inner: Vec<&str> = a.children().map(|c| c.local()).collect();
        assert_eq!(inner, ["b", "d"]);
        let f = root.children().nth(2).expect("f");
        assert_eq!(f.ns(), Some("urn:y"));
        assert_eq!(
            f.children().map(|c| c.ns()).collect::<Vec<_>>(),
            [Some("urn:y")]
        );
        assert_eq!(root.children().nth(3).expect("last").children().count(), 0);
    }

    #[test]
    fn borrows_what_reading_did_not_change() {
        let body = "<r xmlns=\"urn:x\" a=\"plain\" b=\"a&amp;b\">text</r>";
        let doc = tree(body).expect("well-formed");
        let root = doc.root();
        assert!(matches!(root.node.local, Cow::Borrowed("r")));
        assert!(matches!(root.node.text, Cow::Borrowed("text")));
        let a = root.attr("a").expect("a");
        assert!(matches!(a.value, Cow::Borrowed("plain")));
        let b = root.attr("b").expect("b");
        assert_eq!(&*b.value, "a&b");
        // Text split by a reference or CDATA is joined.
        let doc = tree("<r>a&lt;b<![CDATA[c]]>d\r\ne</r>").expect("well-formed");
        assert_eq!(doc.root().text(), "a<bcd\ne");
    }

    #[test]
    fn finds_forbidden_characters_like_a_char_scan() {
        let slow = |s: &str| s.char_indices().find(|&(_, c)| !is_xml_char(c));
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain ascii\t\r\n".into(),
            "\u{0}".into(),
            "\u{1F}x".into(),
            "\u{7F}\u{80}\u{9F}".into(),
            "\u{FFFD}\u{FFFE}".into(),
            "\u{FFFF}".into(),
            "\u{EFFF}\u{F000}\u{FEFF}\u{FFEF}ok".into(),
            "é\u{10FFFF}\u{E000}".into(),
        ];
        // Every position around the block boundaries.
        for bad in ['\u{1}', '\u{FFFE}', '\u{FFFF}', '\u{FF00}'] {
            for at in 0..70 {
                let mut s = "a".repeat(at);
                s.push(bad);
                s.push_str(&"b".repeat(70 - at));
                samples.push(s);
            }
        }
        for s in &samples {
            assert_eq!(first_forbidden(s), slow(s), "{s:?}");
        }
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
