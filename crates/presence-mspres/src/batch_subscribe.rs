//! `application/msrtc-adrl-categorylist+xml`: the body of a batched `SUBSCRIBE` (an ad-hoc
//! resource list and the categories to watch).

use crate::xml::{Ctx, push_attr, read_tree};
use crate::{Limits, MsPresError, ns};

/// A `<batchSub>` body: subscribe to (or unsubscribe from) the presence of many users in
/// one `SUBSCRIBE`.
///
/// ```
/// use presence_mspres::{SubscribeAction, BatchSubscribe};
/// let sub = BatchSubscribe {
///     uri: "sip:bridge@contoso.com".into(),
///     action: SubscribeAction::Subscribe,
///     id: "63792024".into(),
///     resources: vec!["sip:agent1@contoso.com".into(), "sip:agent2@contoso.com".into()],
///     categories: vec!["state".into()],
/// };
/// let xml = sub.to_xml();
/// assert!(xml.starts_with(r#"<batchSub xmlns="http://schemas.microsoft.com/2006/01/sip/batch-subscribe" uri="sip:bridge@contoso.com" name="">"#));
/// assert_eq!(BatchSubscribe::parse(xml.as_bytes())?, sub);
/// # Ok::<(), presence_mspres::MsPresError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BatchSubscribe {
    /// The `uri` of `<batchSub>`: the subscriber (the bridge's own address).
    pub uri: String,
    /// The `name` of `<action>`.
    pub action: SubscribeAction,
    /// The `id` of `<action>`.
    pub id: String,
    /// The `uri` of each `<resource>` of `<adhocList>`: the users to watch.
    pub resources: Vec<String>,
    /// The `name` of each `<category>` of `<categoryList>` (for example `state`).
    pub categories: Vec<String>,
}

/// What a batch subscription asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SubscribeAction {
    /// `subscribe`.
    #[default]
    Subscribe,
    /// `unsubscribe`.
    Unsubscribe,
}

impl SubscribeAction {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscribeAction::Subscribe => "subscribe",
            SubscribeAction::Unsubscribe => "unsubscribe",
        }
    }
}

const ACTIONS: [(&str, SubscribeAction); 2] = [
    ("subscribe", SubscribeAction::Subscribe),
    ("unsubscribe", SubscribeAction::Unsubscribe),
];

impl BatchSubscribe {
    /// The media type of this body.
    pub const CONTENT_TYPE: &'static str = crate::content_type::BATCH_SUBSCRIBE;

    /// Reads a batch subscription with the default [`Limits`].
    pub fn parse(body: &[u8]) -> Result<BatchSubscribe, MsPresError> {
        BatchSubscribe::parse_with(body, &Limits::DEFAULT)
    }

    /// Reads a batch subscription.
    ///
    /// The root `batchSub` (with `uri`), its single `action` (with `name` = `subscribe` or
    /// `unsubscribe`, case-insensitive, and `id`), `adhocList` and `resource` (with `uri`)
    /// are in [`ns::BATCH_SUBSCRIBE`]; `categoryList` and `category` (with `name`) are in
    /// [`ns::CATEGORY_LIST`]. `adhocList` and `categoryList` are optional (an absent list
    /// reads as empty); other elements and attributes (`name` of `batchSub` included) are
    /// ignored.
    pub fn parse_with(body: &[u8], limits: &Limits) -> Result<BatchSubscribe, MsPresError> {
        let tree = read_tree(
            body,
            limits,
            "msrtc-adrl-categorylist+xml",
            (ns::BATCH_SUBSCRIBE, "batchSub"),
        )?;
        let root = tree.root();
        let ctx = Ctx { body };
        ctx.expect_root(root, Some(ns::BATCH_SUBSCRIBE), "batchSub")?;
        let uri = ctx.required_string(root, "batchSub", "uri")?;
        let action_el = ctx.required_child(root, "batchSub", ns::BATCH_SUBSCRIBE, "action")?;
        let action = ctx
            .optional_enum(
                action_el,
                "action",
                "name",
                &ACTIONS,
                "subscribe or unsubscribe",
            )?
            .ok_or_else(|| MsPresError::MissingAttribute {
                at: ctx.at(action_el.offset()),
                element: "action",
                attribute: "name",
            })?;
        let id = ctx.required_string(action_el, "action", "id")?;
        let mut resources = Vec::new();
        if let Some(list) = ctx.single_child(action_el, ns::BATCH_SUBSCRIBE, "adhocList")? {
            for r in list.children_named(ns::BATCH_SUBSCRIBE, "resource") {
                resources.push(ctx.required_string(r, "resource", "uri")?);
            }
        }
        let mut categories = Vec::new();
        if let Some(list) = ctx.single_child(action_el, ns::CATEGORY_LIST, "categoryList")? {
            for c in list.children_named(ns::CATEGORY_LIST, "category") {
                categories.push(ctx.required_string(c, "category", "name")?);
            }
        }
        Ok(BatchSubscribe {
            uri,
            action,
            id,
            resources,
            categories,
        })
    }

    /// Writes the body. `<categoryList>` is written only when there are categories;
    /// `<batchSub>` gets `name=""` as clients send it.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256 + 64 * self.resources.len());
        out.push_str("<batchSub xmlns=\"");
        out.push_str(ns::BATCH_SUBSCRIBE);
        out.push('"');
        push_attr(&mut out, "uri", &self.uri);
        out.push_str(" name=\"\"><action");
        push_attr(&mut out, "name", self.action.as_str());
        push_attr(&mut out, "id", &self.id);
        out.push_str("><adhocList>");
        for r in &self.resources {
            out.push_str("<resource");
            push_attr(&mut out, "uri", r);
            out.push_str("/>");
        }
        out.push_str("</adhocList>");
        if !self.categories.is_empty() {
            out.push_str("<categoryList xmlns=\"");
            out.push_str(ns::CATEGORY_LIST);
            out.push_str("\">");
            for c in &self.categories {
                out.push_str("<category");
                push_attr(&mut out, "name", c);
                out.push_str("/>");
            }
            out.push_str("</categoryList>");
        }
        out.push_str("</action></batchSub>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_subscription() {
        let sub = BatchSubscribe {
            uri: "sip:bridge@contoso.com".into(),
            action: SubscribeAction::Subscribe,
            id: "63792024".into(),
            resources: vec![
                "sip:agent1@contoso.com".into(),
                "sip:agent2@contoso.com".into(),
            ],
            categories: vec!["state".into()],
        };
        insta::assert_snapshot!(sub.to_xml());
    }

    #[test]
    fn writes_an_unsubscription() {
        let sub = BatchSubscribe {
            uri: "sip:bridge@contoso.com".into(),
            action: SubscribeAction::Unsubscribe,
            id: "7".into(),
            resources: vec!["sip:agent1@contoso.com".into()],
            categories: vec![],
        };
        let xml = sub.to_xml();
        insta::assert_snapshot!(xml);
        assert_eq!(
            BatchSubscribe::parse(xml.as_bytes()).expect("reads back"),
            sub
        );
    }

    #[test]
    fn refuses_bad_actions() {
        let body = |action: &str| {
            format!(
                r#"<batchSub xmlns="{}" uri="sip:b@x">{action}</batchSub>"#,
                ns::BATCH_SUBSCRIBE
            )
        };
        let err = BatchSubscribe::parse(body(r#"<action name="watch" id="1"/>"#).as_bytes())
            .expect_err("bad name");
        assert!(
            matches!(&err, MsPresError::InvalidAttribute { attribute: "name", value, .. } if value == "watch"),
            "{err}"
        );
        let err =
            BatchSubscribe::parse(body(r#"<action id="1"/>"#).as_bytes()).expect_err("no name");
        assert!(matches!(
            err,
            MsPresError::MissingAttribute {
                attribute: "name",
                ..
            }
        ));
        let err = BatchSubscribe::parse(body(r#"<action name="subscribe"/>"#).as_bytes())
            .expect_err("no id");
        assert!(matches!(
            err,
            MsPresError::MissingAttribute {
                attribute: "id",
                ..
            }
        ));
        let err = BatchSubscribe::parse(body("").as_bytes()).expect_err("no action");
        assert!(matches!(
            err,
            MsPresError::MissingElement {
                element: "action",
                ..
            }
        ));
        let err = BatchSubscribe::parse(
            body(r#"<action name="subscribe" id="1"><adhocList><resource/></adhocList></action>"#)
                .as_bytes(),
        )
        .expect_err("no uri");
        assert!(matches!(
            err,
            MsPresError::MissingAttribute {
                element: "resource",
                ..
            }
        ));
    }

    #[test]
    fn categories_must_be_in_the_category_list_namespace() {
        // A categoryList in the batch-subscribe namespace is not the category list.
        let body = format!(
            r#"<batchSub xmlns="{}" uri="sip:b@x"><action name="subscribe" id="1"><categoryList><category name="state"/></categoryList></action></batchSub>"#,
            ns::BATCH_SUBSCRIBE
        );
        let sub = BatchSubscribe::parse(body.as_bytes()).expect("tolerated");
        assert!(sub.categories.is_empty());
        assert!(sub.resources.is_empty());
    }
}
