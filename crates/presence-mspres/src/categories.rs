//! `application/msrtc-event-categories+xml`: the body of a presence `NOTIFY`/`BENOTIFY`
//! for one user (alone, or as one part of a `multipart/related` batch).

use crate::state::{parse_state, write_state};
use crate::xml::{Ctx, Element, push_attr, push_attr_num, read_tree};
use crate::{Limits, MsPresError, StateBody, ns};

/// A `<categories>` body: the category instances of one user that a watcher may see.
///
/// ```
/// use presence_mspres::Categories;
/// let body = br#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:agent1@contoso.com">
///   <category name="state" instance="0" publishTime="2012-07-12T13:58:54.237">
///     <state xmlns="http://schemas.microsoft.com/2006/09/sip/state"
///            xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="aggregateState">
///       <availability>6500</availability>
///     </state>
///   </category>
/// </categories>"#;
/// let categories = Categories::parse(body)?;
/// assert_eq!(categories.uri, "sip:agent1@contoso.com");
/// assert_eq!(categories.availability(), Some(6500));
/// # Ok::<(), presence_mspres::MsPresError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Categories {
    /// The `uri` of `<categories>`: the user these categories belong to.
    pub uri: String,
    /// Every `<category>` in document order, whatever its name (only a `<state>` content
    /// is modelled).
    pub categories: Vec<Category>,
}

/// One `<category>` instance of a notification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Category {
    /// `name`, for example `state`, `note` or `contactCard`.
    pub name: String,
    /// `instance`.
    pub instance: Option<u64>,
    /// `container`.
    pub container: Option<u32>,
    /// `publishTime`, as written (an `xs:dateTime`).
    pub publish_time: Option<String>,
    /// The `<state>` element (in [`ns::STATE`]) inside the category, if there is one. A
    /// category without content (an instance that was removed) has `None`, as has one with
    /// other content (a note, a contact card, ...), which is not modelled.
    pub state: Option<StateBody>,
}

impl Categories {
    /// The media type of this body.
    pub const CONTENT_TYPE: &'static str = crate::content_type::CATEGORIES;

    /// The state watchers see: the first `state` category whose state has `xsi:type`
    /// `aggregateState` (see [`StateBody`] for how the type is resolved). Other categories
    /// and other state types (`userState`, `machineState`, ...) are ignored.
    pub fn aggregate_state(&self) -> Option<&StateBody> {
        self.categories
            .iter()
            .filter(|c| c.name == "state")
            .filter_map(|c| c.state.as_ref())
            .find(|s| s.is_aggregate())
    }

    /// The availability number of [`Categories::aggregate_state`], as sent (values above
    /// 18000 are kept; classify them with `presence-model`).
    pub fn availability(&self) -> Option<u64> {
        self.aggregate_state()?.availability.map(u64::from)
    }

    /// Reads a categories body with the default [`Limits`].
    pub fn parse(body: &[u8]) -> Result<Categories, MsPresError> {
        Categories::parse_with(body, &Limits::DEFAULT)
    }

    /// Reads a categories body.
    ///
    /// The root `categories` (with `uri`) and its `category` children (with `name`,
    /// optional `instance` as `u64`, `container` as `u32` and `publishTime`) are in
    /// [`ns::CATEGORIES`]. A single `state` element in [`ns::STATE`] inside a category is
    /// read as a [`StateBody`]; other elements and attributes are ignored.
    pub fn parse_with(body: &[u8], limits: &Limits) -> Result<Categories, MsPresError> {
        let tree = read_tree(
            body,
            limits,
            "msrtc-event-categories+xml",
            (ns::CATEGORIES, "categories"),
        )?;
        let root = tree.root();
        let ctx = Ctx { body };
        ctx.expect_root(root, Some(ns::CATEGORIES), "categories")?;
        let uri = ctx.required_string(root, "categories", "uri")?;
        let categories = root
            .children_named(ns::CATEGORIES, "category")
            .map(|c| parse_category(&ctx, c))
            .collect::<Result<_, _>>()?;
        Ok(Categories { uri, categories })
    }

    /// Writes the body (what the simulator sends).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256 + 512 * self.categories.len());
        out.push_str("<categories xmlns=\"");
        out.push_str(ns::CATEGORIES);
        out.push('"');
        push_attr(&mut out, "uri", &self.uri);
        out.push('>');
        for c in &self.categories {
            out.push_str("<category");
            push_attr(&mut out, "name", &c.name);
            if let Some(instance) = c.instance {
                push_attr_num(&mut out, "instance", instance);
            }
            if let Some(container) = c.container {
                push_attr_num(&mut out, "container", container);
            }
            if let Some(time) = &c.publish_time {
                push_attr(&mut out, "publishTime", time);
            }
            match &c.state {
                Some(state) => {
                    out.push('>');
                    write_state(&mut out, state);
                    out.push_str("</category>");
                }
                None => out.push_str("/>"),
            }
        }
        out.push_str("</categories>");
        out
    }
}

fn parse_category(ctx: &Ctx<'_>, c: Element<'_>) -> Result<Category, MsPresError> {
    const E: &str = "category";
    Ok(Category {
        name: ctx.required_string(c, E, "name")?,
        instance: ctx.optional_u64(c, E, "instance")?,
        container: ctx.optional_u32(c, E, "container")?,
        publish_time: Ctx::optional_string(c, "publishTime"),
        state: ctx
            .single_child(c, ns::STATE, "state")?
            .map(|s| parse_state(ctx, s))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent1() -> Categories {
        Categories {
            uri: "sip:agent1@contoso.com".into(),
            categories: vec![Category {
                name: "state".into(),
                instance: Some(0),
                container: None,
                publish_time: Some("2012-07-12T13:58:54.237".into()),
                state: Some(StateBody {
                    last_active: Some("2012-07-12T13:58:54".into()),
                    ..StateBody::aggregate_state(6500)
                        .with_activity_token("on-the-phone")
                        .with_custom(1033, "In a call")
                }),
            }],
        }
    }

    #[test]
    fn writes_an_aggregate_state() {
        insta::assert_snapshot!(agent1().to_xml());
    }

    #[test]
    fn writes_removed_and_other_categories() {
        let categories = Categories {
            uri: "sip:agent2@contoso.com".into(),
            categories: vec![
                Category {
                    name: "state".into(),
                    instance: Some(536_870_912),
                    container: Some(2),
                    publish_time: None,
                    state: Some(StateBody::user_state(18500)),
                },
                Category {
                    name: "note".into(),
                    instance: Some(0),
                    container: Some(400),
                    publish_time: None,
                    state: None,
                },
            ],
        };
        let xml = categories.to_xml();
        insta::assert_snapshot!(xml);
        let back = Categories::parse(xml.as_bytes()).expect("reads back");
        assert_eq!(back, categories);
        assert_eq!(
            back.aggregate_state(),
            None,
            "a userState is not aggregated"
        );
        assert_eq!(back.availability(), None);
    }

    #[test]
    fn picks_the_aggregate_state_among_others() {
        let body = format!(
            r#"<categories xmlns="{c}" uri="sip:a@x">
              <category name="contactCard" instance="0"><contactCard xmlns="http://schemas.microsoft.com/2006/09/sip/contactcard"/></category>
              <category name="state" instance="1"><state xmlns="{s}" xmlns:xsi="{x}" xsi:type="machineState"><availability>3500</availability></state></category>
              <category name="note" instance="0"><state xmlns="{s}" xmlns:xsi="{x}" xsi:type="aggregateState"><availability>1</availability></state></category>
              <category name="state" instance="0"><state xmlns="{s}" xmlns:xsi="{x}" xsi:type="aggregateState"><availability>18500</availability></state></category>
              <category name="state" instance="2"><state xmlns="{s}" xmlns:xsi="{x}" xsi:type="aggregateState"><availability>3500</availability></state></category>
            </categories>"#,
            c = ns::CATEGORIES,
            s = ns::STATE,
            x = ns::XSI
        );
        let categories = Categories::parse(body.as_bytes()).expect("valid");
        assert_eq!(categories.categories.len(), 5);
        assert_eq!(categories.categories[0].state, None);
        assert_eq!(categories.availability(), Some(18500));
    }

    #[test]
    fn keeps_large_availability_numbers() {
        let categories = Categories {
            uri: "sip:a@x".into(),
            categories: vec![Category {
                name: "state".into(),
                state: Some(StateBody::aggregate_state(4_000_000_000)),
                ..Category::default()
            }],
        };
        let back = Categories::parse(categories.to_xml().as_bytes()).expect("reads back");
        assert_eq!(back.availability(), Some(4_000_000_000));
    }

    #[test]
    fn xsi_type_prefixes_are_resolved() {
        let state = |attrs: &str| {
            format!(
                r#"<categories xmlns="{}" uri="sip:a@x"><category name="state"><s:state xmlns:s="{}" {attrs}><s:availability>9500</s:availability></s:state></category></categories>"#,
                ns::CATEGORIES,
                ns::STATE
            )
        };
        let read = |attrs: &str| Categories::parse(state(attrs).as_bytes());
        let x = ns::XSI;
        // Prefixed value bound to the state namespace.
        let c = read(&format!(r#"xmlns:i="{x}" i:type="s:aggregateState""#)).expect("valid");
        assert_eq!(c.availability(), Some(9500));
        // Unprefixed value (no default namespace): local name.
        let c = read(&format!(r#"xmlns:i="{x}" i:type="aggregateState""#)).expect("valid");
        assert_eq!(c.availability(), Some(9500));
        // A prefix bound to another namespace is another type.
        let c = read(&format!(
            r#"xmlns:i="{x}" xmlns:o="urn:other" i:type="o:aggregateState""#
        ))
        .expect("valid");
        assert_eq!(c.availability(), None);
        let s = c.categories[0].state.as_ref().expect("state");
        assert_eq!(s.state_type, "{urn:other}aggregateState");
        // ... and is written back with a declared prefix.
        let back = Categories::parse(c.to_xml().as_bytes()).expect("reads back");
        assert_eq!(back, c);
        // A `type` attribute outside the XSI namespace is not xsi:type.
        let c = read(r#"xmlns:xsi="urn:not-xsi" xsi:type="aggregateState""#).expect("valid");
        assert_eq!(c.availability(), None);
        assert_eq!(
            c.categories[0]
                .state
                .as_ref()
                .map(|s| s.state_type.as_str()),
            Some("")
        );
        // An undeclared prefix in the value is an error that names it.
        let err = read(&format!(r#"xmlns:i="{x}" i:type="q:aggregateState""#)).expect_err("q");
        assert!(
            matches!(&err, MsPresError::UndeclaredPrefix { prefix, name, .. } if prefix == "q" && name == "q:aggregateState"),
            "{err}"
        );
    }

    #[test]
    fn refuses_bad_values_with_locations() {
        let body = format!(
            "<categories xmlns=\"{}\" uri=\"sip:a@x\">\n<category name=\"state\" instance=\"x\"/></categories>",
            ns::CATEGORIES
        );
        let err = Categories::parse(body.as_bytes()).expect_err("bad instance");
        assert!(
            matches!(&err, MsPresError::InvalidAttribute { at, attribute: "instance", .. } if at.line == 2 && at.column == 24),
            "{err}"
        );
        let body = format!(
            "<categories xmlns=\"{}\" uri=\"sip:a@x\"><category name=\"state\"><state xmlns=\"{}\"><availability>busy</availability></state></category></categories>",
            ns::CATEGORIES,
            ns::STATE
        );
        let err = Categories::parse(body.as_bytes()).expect_err("bad availability");
        assert!(
            matches!(&err, MsPresError::InvalidText { element: "availability", value, .. } if value == "busy"),
            "{err}"
        );
        let err = Categories::parse(
            b"<categories xmlns='http://schemas.microsoft.com/2006/09/sip/categories'/>",
        )
        .expect_err("no uri");
        assert!(matches!(
            err,
            MsPresError::MissingAttribute {
                attribute: "uri",
                ..
            }
        ));
    }
}
