//! The fast path of [`read_tree`](super::read_tree): a scanner for *plain* XML, the subset
//! the writers of this crate (and most peers) produce, that builds the same [`Tree`] as
//! the quick-xml reader without its per-event overhead.
//!
//! It never decides that a body is wrong. It gives up (`None`) on anything outside the
//! subset, and the full reader then reads the body again: so errors, their locations and
//! every less common construct keep exactly the behaviour of the full reader. Plain XML
//! here is:
//!
//! - elements (`<name ...>`, `<name .../>`, `</name>` with exactly the start tag's name),
//!   the names ASCII (`[A-Za-z_][A-Za-z0-9._-]*`, optionally with one prefix of the same
//!   shape), a prefix never starting with `xml` (any case) except in namespace
//!   declarations;
//! - attributes `name="value"` or `name='value'`, separated by white space, without
//!   duplicates, whose values contain none of `<`, `>`, `&`, tab, line feed or carriage
//!   return (so that normalization would not change them);
//! - namespace declarations (`xmlns="uri"`, `xmlns:p="uri"`) with a non-empty URI that is
//!   not one of the reserved `xml` / `xmlns` namespaces, a prefix not starting with `xml`,
//!   and every prefix used declared;
//! - an `xsi:type` value (trimmed) that is a name as above;
//! - text without `&`, `>` or carriage return inside the root; only white space outside;
//! - no declaration, comment, processing instruction, CDATA section or DOCTYPE (all start
//!   with `<!` or `<?`);
//! - within [`Limits`] (and at most [`MAX_DEPTH`] deep, [`MAX_ATTRIBUTES`] attributes per
//!   element, [`MAX_BINDINGS`] namespace declarations in scope).
//!
//! For such a body the full reader emits one event per tag and per text run, resolves
//! names with the same declarations and yields the same slices, which is what this
//! scanner reproduces (the tests compare both readers on generated and mutated bodies).

use std::borrow::Cow;

use memchr::{memchr, memchr3};

use super::{Builder, NsId, Slot, Tree, XSI, XsiType, intern_borrowed, is_xml_whitespace};
use crate::Limits;

/// The deepest nesting read here (far below quick-xml's own limit).
const MAX_DEPTH: usize = 256;
/// The most attributes (namespace declarations included) of one element read here: the
/// duplicate check is quadratic.
const MAX_ATTRIBUTES: usize = 32;
/// The most namespace declarations in scope read here (quick-xml allows 128).
const MAX_BINDINGS: usize = 64;

/// The namespaces that only their own prefix may be bound to.
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NAMESPACE: &str = "http://www.w3.org/2000/xmlns/";

/// Reads `text` (the body after its byte-order mark, which starts at `base` in the body:
/// valid UTF-8 without characters XML forbids) if it is plain XML; `None` otherwise.
pub(super) fn read<'a>(text: &'a str, base: usize, limits: &Limits) -> Option<Tree<'a>> {
    Scanner {
        text,
        base,
        limits,
        pos: 0,
        tree: Builder::for_body(text.len()),
        stack: Vec::with_capacity(8),
        scope: Vec::with_capacity(4),
        tag: Vec::with_capacity(8),
        elements: 0,
    }
    .run()
}

/// A namespace declaration in scope.
#[derive(Debug)]
struct Binding<'a> {
    /// `None` for the default namespace.
    prefix: Option<&'a str>,
    uri: &'a str,
    /// Its index in the tree's namespaces, once an element or attribute uses it.
    id: Option<NsId>,
}

/// An open element.
#[derive(Debug)]
struct Open<'a> {
    slot: Slot,
    /// The name as written (the end tag must repeat it).
    name: &'a str,
    /// The length of the scope before its declarations.
    scope: usize,
}

/// An attribute of the tag being read, as written.
#[derive(Debug)]
struct RawAttr<'a> {
    key: Name<'a>,
    /// The offset of the key in the text.
    at: usize,
    value: &'a str,
}

/// The scanner's state: where it is, the tree so far, the open elements and the
/// declarations in scope.
#[derive(Debug)]
struct Scanner<'a, 'l> {
    text: &'a str,
    base: usize,
    limits: &'l Limits,
    /// The next byte to read.
    pos: usize,
    tree: Builder<'a>,
    stack: Vec<Open<'a>>,
    scope: Vec<Binding<'a>>,
    /// The attributes of the current tag (kept to reuse the allocation).
    tag: Vec<RawAttr<'a>>,
    elements: usize,
}

impl<'a> Scanner<'a, '_> {
    fn run(mut self) -> Option<Tree<'a>> {
        let bytes = self.text.as_bytes();
        loop {
            let lt = memchr(b'<', bytes.get(self.pos..)?).map_or(bytes.len(), |i| self.pos + i);
            if lt > self.pos {
                self.text_run(self.pos, lt)?;
            }
            if lt == bytes.len() {
                break;
            }
            self.pos = lt;
            match bytes.get(lt + 1)? {
                b'/' => self.end_tag()?,
                b'!' | b'?' => return None,
                _ => self.start_tag()?,
            }
        }
        if !self.stack.is_empty() {
            return None;
        }
        self.tree.finish()
    }

    /// Text between two tags (or before the first, after the last).
    fn text_run(&mut self, from: usize, to: usize) -> Option<()> {
        let run = self.text.get(from..to)?;
        let Some(top) = self.stack.last() else {
            // Outside the root only white space is allowed.
            return run.bytes().all(is_xml_whitespace).then_some(());
        };
        // References, a `>` (which may end `]]>`) and line ends to normalize are left to
        // the full reader.
        if memchr3(b'&', b'>', b'\r', run.as_bytes()).is_some() {
            return None;
        }
        self.tree.push_text(top.slot, Cow::Borrowed(run));
        Some(())
    }

    /// `</name>` at `self.pos`: closes the innermost element.
    fn end_tag(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        let start = self.pos + 2;
        let gt = start + memchr(b'>', bytes.get(start..)?)?;
        let open = self.stack.pop()?;
        if self.text.get(start..gt)? != open.name {
            return None;
        }
        self.tree.close(open.slot);
        self.scope.truncate(open.scope);
        self.pos = gt + 1;
        Some(())
    }

    /// A start tag or an empty-element tag at `self.pos`.
    fn start_tag(&mut self) -> Option<()> {
        let offset = self.pos;
        let (name, empty) = self.read_tag()?;
        // Where the full reader reports an error, leave it to it.
        if self.stack.is_empty() && self.tree.root.is_some() {
            return None;
        }
        if self.stack.len() >= self.limits.max_depth.min(MAX_DEPTH) {
            return None;
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return None;
        }
        let scope = self.scope.len();
        let mut tag = std::mem::take(&mut self.tag);
        let element = self.element(name, offset, &tag);
        tag.clear();
        self.tag = tag;
        let slot = element?;
        if empty {
            self.tree.close(slot);
            self.scope.truncate(scope);
        } else {
            self.stack.push(Open {
                slot,
                name: name.qname,
                scope,
            });
        }
        Some(())
    }

    /// Reads the tag at `self.pos` into `self.tag`: its name and whether it is empty.
    fn read_tag(&mut self) -> Option<(Name<'a>, bool)> {
        let bytes = self.text.as_bytes();
        let name = name_at(self.text, self.pos + 1)?;
        let mut p = self.pos + 1 + name.qname.len();
        let empty = loop {
            let before = p;
            while bytes.get(p).copied().is_some_and(is_xml_whitespace) {
                p += 1;
            }
            match *bytes.get(p)? {
                b'>' => break false,
                b'/' if bytes.get(p + 1) == Some(&b'>') => {
                    p += 1;
                    break true;
                }
                // Attributes are separated by white space.
                _ if p == before => return None,
                _ => {}
            }
            let key = name_at(self.text, p)?;
            let key_end = p + key.qname.len();
            if bytes.get(key_end) != Some(&b'=') {
                return None;
            }
            let quote = *bytes.get(key_end + 1)?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let value_start = key_end + 2;
            let value_end = value_start + memchr(quote, bytes.get(value_start..)?)?;
            let value = self.text.get(value_start..value_end)?;
            if value
                .bytes()
                .any(|b| matches!(b, b'<' | b'>' | b'&' | b'\t' | b'\n' | b'\r'))
            {
                return None;
            }
            if self.tag.len() >= MAX_ATTRIBUTES || self.tag.iter().any(|a| a.key.qname == key.qname)
            {
                return None;
            }
            self.tag.push(RawAttr { key, at: p, value });
            p = value_end + 1;
        };
        self.pos = p + 1;
        Some((name, empty))
    }

    /// Adds the element `name` whose tag starts at `offset` and has the attributes `tag`.
    fn element(&mut self, name: Name<'a>, offset: usize, tag: &[RawAttr<'a>]) -> Option<Slot> {
        // Declarations first: they apply to the element's own names.
        for a in tag {
            let prefix = match (a.key.prefix, a.key.local) {
                (None, "xmlns") => None,
                (Some("xmlns"), prefix) => Some(prefix),
                _ => continue,
            };
            if prefix.is_some_and(is_reserved)
                || a.value.is_empty()
                || a.value == XML_NAMESPACE
                || a.value == XMLNS_NAMESPACE
            {
                return None;
            }
            self.scope.push(Binding {
                prefix,
                uri: a.value,
                id: None,
            });
        }
        if self.scope.len() > MAX_BINDINGS {
            return None;
        }
        let ns = self.resolve(name.prefix, true)?;
        let attrs_start = self.tree.attrs.len();
        let mut xsi_type = None;
        for a in tag {
            let Name { prefix, local, .. } = a.key;
            if is_binding(a.key) {
                continue;
            }
            let ns = self.resolve(prefix, false)?;
            let at = self.base + a.at;
            if local == "type" && self.tree.namespace(ns) == Some(XSI) {
                xsi_type = Some(self.tree.types.len());
                let resolved = self.resolve_type(a.value, at)?;
                self.tree.types.push(resolved);
            }
            self.tree.attrs.push(super::Attr {
                ns,
                local: Cow::Borrowed(local),
                value: Cow::Borrowed(a.value),
                offset: at,
            });
        }
        Some(self.tree.open(
            ns,
            Cow::Borrowed(name.local),
            self.base + offset,
            attrs_start,
            xsi_type,
        ))
    }

    /// The namespace of a name with `prefix` (an element's name takes the default
    /// namespace): `None` when the prefix is not declared (an error the full reader
    /// reports) or reserved.
    fn resolve(&mut self, prefix: Option<&str>, element: bool) -> Option<Option<NsId>> {
        if prefix.is_none() && !element {
            return Some(None);
        }
        if prefix.is_some_and(is_reserved) {
            return None;
        }
        let found = self.scope.iter_mut().rev().find(|b| b.prefix == prefix);
        match found {
            Some(binding) => Some(Some(*binding.id.get_or_insert_with(|| {
                intern_borrowed(&mut self.tree.namespaces, binding.uri)
            }))),
            None if prefix.is_none() => Some(None),
            None => None,
        }
    }

    /// An `xsi:type` value resolved in the scope of its element, as the full reader does.
    fn resolve_type(&mut self, value: &'a str, offset: usize) -> Option<XsiType<'a>> {
        let raw = value.trim_matches(super::is_xml_whitespace_char);
        let Name { prefix, local, .. } = name_at(raw, 0).filter(|n| n.qname.len() == raw.len())?;
        let ns = match prefix {
            Some(p) if self.scope.iter().all(|b| b.prefix != Some(p)) => {
                if is_reserved(p) {
                    return None;
                }
                Err(p.to_owned())
            }
            _ => Ok(self.resolve(prefix, true)?),
        };
        Some(XsiType {
            raw: Cow::Borrowed(raw),
            ns,
            local_start: raw.len() - local.len(),
            prefixed: prefix.is_some(),
            offset,
        })
    }
}

/// Whether `key` declares a namespace (`xmlns` or `xmlns:p`).
fn is_binding(key: Name<'_>) -> bool {
    matches!(
        (key.prefix, key.local),
        (None, "xmlns") | (Some("xmlns"), _)
    )
}

/// A prefix the full reader treats specially (`xml`, `xmlns`), or might one day.
fn is_reserved(prefix: &str) -> bool {
    prefix
        .get(..3)
        .is_some_and(|start| start.eq_ignore_ascii_case("xml"))
}

/// A name as written, with its parts.
#[derive(Clone, Copy, Debug)]
struct Name<'a> {
    qname: &'a str,
    prefix: Option<&'a str>,
    local: &'a str,
}

/// Which bytes may start a name (bit 0) and continue one (bit 1): ASCII letters and `_`
/// start, and digits, `-` and `.` continue too.
const NAME_BYTES: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            table[b] = 0b11;
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            table[b] = 0b10;
        }
        b += 1;
    }
    table
};

/// The end of the name part (no `:`) starting at `start` in `bytes`, if one starts there.
fn name_part_end(bytes: &[u8], start: usize) -> Option<usize> {
    let first = *bytes.get(start)?;
    if NAME_BYTES[usize::from(first)] & 0b01 == 0 {
        return None;
    }
    let rest = bytes.get(start + 1..)?;
    let len = rest
        .iter()
        .position(|&b| NAME_BYTES[usize::from(b)] & 0b10 == 0)
        .unwrap_or(rest.len());
    Some(start + 1 + len)
}

/// The (possibly prefixed) name starting at `start` in `text`, if one starts there.
fn name_at(text: &str, start: usize) -> Option<Name<'_>> {
    let bytes = text.as_bytes();
    let first = name_part_end(bytes, start)?;
    if bytes.get(first) == Some(&b':') {
        let end = name_part_end(bytes, first + 1)?;
        Some(Name {
            qname: text.get(start..end)?,
            prefix: Some(text.get(start..first)?),
            local: text.get(first + 1..end)?,
        })
    } else {
        let qname = text.get(start..first)?;
        Some(Name {
            qname,
            prefix: None,
            local: qname,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::xml::{first_forbidden, read_tree_full};
    use crate::{
        BatchSubscribe, Categories, Category, Fault, FaultOperation, Publication, Publish, Rlmi,
        RlmiInstance, RlmiResource, STATIC_STATE_INSTANCE, StateBody, SubscribeAction,
    };

    /// Both readers on `body` (a `str`, so valid UTF-8): the fast one's answer, and
    /// whether it agrees with the full reader.
    fn compare<'a>(body: &'a str, limits: &Limits) -> Option<Tree<'a>> {
        assert!(
            first_forbidden(body).is_none(),
            "not a body the scanner gets"
        );
        let fast = read(body, 0, limits);
        if let Some(fast) = &fast {
            let full = read_tree_full(body.as_bytes(), body, 0, limits, ("", "r"))
                .unwrap_or_else(|e| panic!("the full reader refuses {body:?}: {e}"));
            assert_eq!(fast, &full, "{body:?}");
        }
        fast
    }

    fn is_plain(body: &str) -> bool {
        compare(body, &Limits::DEFAULT).is_some()
    }

    #[test]
    fn what_the_writers_write_is_plain() {
        let state = StateBody::user_state(7001)
            .with_custom(1033, "Working with customer, do not disturb")
            .with_custom(1049, "Работа с клиентом")
            .with_activity_token("on-the-phone");
        let publish =
            Publish::state_in_containers("sip:a@x", STATIC_STATE_INSTANCE, &state, &[(2, 0)]);
        let mut removal = Publish::remove_state_in_containers("sip:a@x", 1, &[(3, 4)]);
        removal
            .publications
            .push(Publication::state(1, 2, 0, StateBody::default()));
        let categories = Categories {
            uri: "sip:a@x".into(),
            categories: vec![Category {
                name: "state".into(),
                instance: Some(0),
                container: Some(2),
                publish_time: Some("2012-07-12T13:58:54.237".into()),
                state: Some(StateBody {
                    state_type: "{urn:other}t".into(),
                    ..StateBody::aggregate_state(6500)
                }),
            }],
        };
        let rlmi = Rlmi {
            uri: "sip:b@x".into(),
            version: 1,
            full_state: true,
            resources: vec![RlmiResource {
                uri: "sip:a@x".into(),
                instances: vec![RlmiInstance {
                    id: "1".into(),
                    state: "active".into(),
                    reason: None,
                    cid: Some("a@x".into()),
                }],
            }],
        };
        let batch = BatchSubscribe {
            uri: "sip:b@x".into(),
            action: SubscribeAction::Subscribe,
            id: "1".into(),
            resources: vec!["sip:a@x".into()],
            categories: vec!["state".into()],
        };
        let fault = Fault::wrong_delta(vec![FaultOperation {
            index: 1,
            version: Some(0),
            cur_version: Some(2),
        }]);
        for body in [
            publish.to_xml(),
            removal.to_xml(),
            categories.to_xml(),
            rlmi.to_xml(),
            batch.to_xml(),
            fault.to_xml(),
        ] {
            assert!(is_plain(&body), "{body}");
        }
        // Indented bodies too.
        assert!(is_plain(
            "\n<r xmlns='urn:x'\n   a='1'>\n  <p:c xmlns:p=\"urn:p\" p:b='2' b=\"3\"/>\n  t\n</r>\n"
        ));
    }

    #[test]
    fn leaves_everything_else_to_the_full_reader() {
        for body in [
            // Not for the scanner: the full reader reads them.
            "<?xml version='1.0'?><r/>",
            "<r><!-- c --></r>",
            "<r><![CDATA[x]]></r>",
            "<r>a&amp;b</r>",
            "<r a='&amp;'/>",
            "<r>a\r\nb</r>",
            "<r>a>b</r>",
            "<r a='x\ty'/>",
            "<r a='x>y'/>",
            "<r xml:lang='en'/>",
            "<r xmlns=''/>",
            "<r xmlns:p=''/>",
            "<r xmlns:xml='http://www.w3.org/XML/1998/namespace'/>",
            "<r xmlns:p='http://www.w3.org/2000/xmlns/'/>",
            "<r a = '1'/>",
            "<r a='1'b='2'/>",
            "<r é='1'/>",
            "<é/>",
            "<r ></r >",
            "<r xmlns:i='http://www.w3.org/2001/XMLSchema-instance' i:type='xml:t'/>",
            "<r xmlns:i='http://www.w3.org/2001/XMLSchema-instance' i:type=''/>",
            // Errors: the full reader reports them.
            "",
            " x<r/>",
            "<r/><r/>",
            "<r/>x",
            "<r>",
            "<r></s>",
            "</r>",
            "<r a='1' a='2'/>",
            "<r xmlns='urn:x' xmlns='urn:y'/>",
            "<p:r/>",
            "<r p:a='1'/>",
            "<r a='1",
            "<r a=1/>",
            "<r/",
        ] {
            assert!(!is_plain(body), "{body:?}");
        }
        // Limits.
        let tight = Limits {
            max_depth: 1,
            max_elements: 2,
            ..Limits::DEFAULT
        };
        assert!(compare("<r><a/></r>", &tight).is_none());
        assert!(compare("<r/>", &tight).is_some());
    }

    #[test]
    fn locations_count_a_byte_order_mark() {
        let body = "\u{FEFF}\n<r xmlns='urn:x' a='1'><c/></r>";
        let text = body.strip_prefix('\u{FEFF}').expect("a byte-order mark");
        let fast = read(text, 3, &Limits::DEFAULT).expect("plain");
        let full = read_tree_full(body.as_bytes(), text, 3, &Limits::DEFAULT, ("", "r"))
            .expect("well-formed");
        assert_eq!(fast, full);
        assert_eq!(fast.root().offset(), 4);
        assert_eq!(fast.root().attr("a").map(|a| a.offset), Some(21));
    }

    #[test]
    fn resolves_xsi_type_like_the_full_reader() {
        let x = XSI;
        for body in [
            format!("<r xmlns='urn:x' xmlns:i='{x}' xmlns:s='urn:s' i:type='s:t'/>"),
            format!("<r xmlns='urn:x' xmlns:i='{x}' i:type=' t '/>"),
            format!("<r xmlns:i='{x}' i:type='t'/>"),
            format!("<r xmlns:i='{x}' i:type='q:t'/>"),
            format!("<r xmlns:i='{x}' xmlns:j='{x}' i:type='a' j:type='b'/>"),
            "<r xmlns:i='urn:not-xsi' i:type='t'/>".to_owned(),
            format!("<s:r xmlns:s='urn:s' xmlns:i='{x}'><s:c i:type='s:t' xmlns:s='urn:t'/></s:r>"),
        ] {
            let tree = compare(&body, &Limits::DEFAULT).expect("plain");
            // The comparison above is the test; this only shows the result is used.
            let _ = tree.root().xsi_type();
        }
    }

    /// One of `common` mostly, one of `rare` now and then.
    fn pick(
        common: Vec<&'static str>,
        rare: Vec<&'static str>,
    ) -> impl Strategy<Value = &'static str> + Clone {
        prop_oneof![
            30 => prop::sample::select(common),
            1 => prop::sample::select(rare),
        ]
    }

    /// Pieces of bodies: mostly plain, some on the edge of what is plain.
    fn element_name() -> impl Strategy<Value = &'static str> + Clone {
        pick(
            vec!["r", "a", "b", "state", "p:a", "q:b", "p:r", "a-b.c_d", "_x"],
            vec![
                "i:type", "xml:a", "xmlns:a", "Xml:b", "a:b:c", "1a", "\u{e9}", "z:a", "xmlns",
            ],
        )
    }

    fn attribute() -> impl Strategy<Value = String> {
        let key = pick(
            vec![
                "a", "b", "type", "p:type", "i:type", "p:a", "q:b", "xmlns:p", "xmlns", "c",
            ],
            vec![
                "xml:lang",
                "xmlnsfoo",
                "xmlns:xml",
                "xmlns:xmlns",
                "z:a",
                "xmlns:i",
            ],
        );
        let value = pick(
            vec![
                "1", "urn:x", "urn:y", "urn:p", XSI, "s:t", " t ", "p:t", "q:t", "i:t", "\u{e9}",
                "",
            ],
            vec![
                XML_NAMESPACE,
                XMLNS_NAMESPACE,
                "a&amp;b",
                "a\tb",
                "x>y",
                "x<y",
                "&#x20;p:t",
                "z:t",
                "a\r\nb",
            ],
        );
        let quote = prop::sample::select(vec!["\"", "'"]);
        let before = pick(vec![" ", " ", "\n  "], vec!["\t", "", "\r\n"]);
        let eq = pick(vec!["="], vec![" = ", "= ", " ="]);
        (before, key, eq, quote, value).prop_map(|(before, key, eq, quote, value)| {
            let value = if value.contains(quote) { "q" } else { value };
            format!("{before}{key}{eq}{quote}{value}{quote}")
        })
    }

    fn text() -> impl Strategy<Value = &'static str> + Clone {
        pick(
            vec!["", "", "text", "  ", "\n  ", "\u{e9}", "a b"],
            vec![
                "a&lt;b",
                "x\r\ny",
                "a>b",
                "]]>",
                "<![CDATA[c]]>",
                "<!--c-->",
                "<?pi x?>",
                "&#233;",
            ],
        )
    }

    fn element() -> impl Strategy<Value = String> {
        let leaf = (
            element_name(),
            prop::collection::vec(attribute(), 0..4),
            text(),
            any::<u8>(),
        )
            .prop_map(|(name, attrs, text, shape)| {
                let attrs = attrs.concat();
                match shape % 4 {
                    0 => format!("<{name}{attrs}/>"),
                    1 => format!("<{name}{attrs} />"),
                    _ => format!("<{name}{attrs}>{text}</{name}>"),
                }
            });
        leaf.prop_recursive(4, 24, 4, |inner| {
            (
                element_name(),
                prop::collection::vec(attribute(), 0..4),
                prop::collection::vec((text(), inner), 0..4),
                text(),
                any::<u8>(),
            )
                .prop_map(|(name, attrs, children, tail, shape)| {
                    let attrs = attrs.concat();
                    let mut body = format!("<{name}{attrs}>");
                    for (text, child) in children {
                        body.push_str(text);
                        body.push_str(&child);
                    }
                    body.push_str(tail);
                    // Now and then an end tag that does not match.
                    let end = match shape {
                        0 => "x",
                        1 => "",
                        _ => name,
                    };
                    body.push_str(&format!("</{end}>"));
                    body
                })
        })
    }

    /// A document: a root with the usual declarations, or a bare element, with something
    /// around it now and then.
    fn document() -> impl Strategy<Value = String> {
        let before = pick(vec!["", "\n", " \r\n"], vec!["<?xml version='1.0'?>", "x"]);
        let after = pick(vec!["", "\n"], vec!["<r/>", "x", "<!--c-->"]);
        let declarations = pick(
            vec![
                " xmlns='urn:x' xmlns:p='urn:p' xmlns:q='urn:q'",
                " xmlns='urn:x' xmlns:i='http://www.w3.org/2001/XMLSchema-instance' xmlns:p='urn:p' xmlns:q='urn:q' xmlns:s='urn:s'",
                " xmlns:p='urn:p' xmlns:q='urn:q' xmlns:i='http://www.w3.org/2001/XMLSchema-instance'",
            ],
            vec!["", " xmlns='urn:x'"],
        );
        (before, declarations, element(), after).prop_map(
            |(before, declarations, element, after)| {
                let element = match element.split_once([' ', '>', '/']) {
                    Some((name, rest)) if !name.is_empty() => {
                        let sep = &element[name.len()..=name.len()];
                        format!("{name}{declarations}{sep}{rest}")
                    }
                    _ => element,
                };
                format!("{before}{element}{after}")
            },
        )
    }

    /// A byte that often matters to XML, to put somewhere in a body.
    fn special() -> impl Strategy<Value = char> {
        prop::sample::select(vec![
            '<', '>', '&', '"', '\'', '/', ':', '=', ' ', '\r', '\n', 'x', '!', '?',
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn agrees_with_the_full_reader(body in document()) {
            compare(&body, &Limits::DEFAULT);
            compare(&body, &Limits { max_depth: 3, max_elements: 6, ..Limits::DEFAULT });
        }

        #[test]
        fn agrees_with_the_full_reader_on_mutations(
            body in document(),
            at in any::<prop::sample::Index>(),
            c in special(),
            replace in any::<bool>(),
        ) {
            let mut body = body;
            let mut i = at.index(body.len() + 1);
            while !body.is_char_boundary(i) {
                i -= 1;
            }
            if replace && i < body.len() {
                let next = body[i..].chars().next().map_or(0, char::len_utf8);
                body.replace_range(i..i + next, c.encode_utf8(&mut [0; 4]));
            } else {
                body.insert(i, c);
            }
            compare(&body, &Limits::DEFAULT);
        }
    }
}
