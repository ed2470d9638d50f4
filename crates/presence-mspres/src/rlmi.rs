//! `application/rlmi+xml` (RFC 4662): the resource-list meta-information part of a batched
//! notification: which users the batch covers and the state of each subscription.

use crate::xml::{Ctx, Element, push_attr, push_attr_num, read_tree};
use crate::{Limits, MsPresError, ns};

/// A `<list>` body.
///
/// ```
/// use presence_mspres::Rlmi;
/// let rlmi = Rlmi::parse(br#"<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:bridge@contoso.com" version="1" fullState="false">
///   <resource uri="sip:agent1@contoso.com"><instance id="1" state="active" cid="agent1@contoso.com"/></resource>
///   <resource uri="sip:gone@contoso.com"><instance id="2" state="terminated" reason="rejected"/></resource>
/// </list>"#)?;
/// assert_eq!(rlmi.version, 1);
/// assert_eq!(rlmi.terminated().collect::<Vec<_>>(), ["sip:gone@contoso.com"]);
/// # Ok::<(), presence_mspres::MsPresError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rlmi {
    /// `uri`: the list (the subscriber's address for an ad-hoc list).
    pub uri: String,
    /// `version`: increases with each notification of the subscription.
    pub version: u32,
    /// `fullState`: whether the notification carries the whole list.
    pub full_state: bool,
    /// The `<resource>` elements.
    pub resources: Vec<RlmiResource>,
}

/// One `<resource>` of an RLMI list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RlmiResource {
    /// `uri`: the user.
    pub uri: String,
    /// The `<instance>` elements (usually one).
    pub instances: Vec<RlmiInstance>,
}

/// One `<instance>` of a resource: a subscription to that user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RlmiInstance {
    /// `id`.
    pub id: String,
    /// `state`: `active`, `pending` or `terminated` (kept as sent).
    pub state: String,
    /// `reason` (with `terminated`, for example `rejected`, `deactivated`, `noresource`).
    pub reason: Option<String>,
    /// `cid`: the `Content-ID` (without angle brackets) of the part that carries this
    /// user's state.
    pub cid: Option<String>,
}

impl RlmiInstance {
    /// Whether `state` is `terminated` (ASCII case-insensitive).
    pub fn is_terminated(&self) -> bool {
        self.state.eq_ignore_ascii_case("terminated")
    }
}

impl RlmiResource {
    /// Whether the subscription to this resource ended: it has instances and all of them
    /// are terminated.
    pub fn is_terminated(&self) -> bool {
        !self.instances.is_empty() && self.instances.iter().all(RlmiInstance::is_terminated)
    }
}

impl Rlmi {
    /// The media type of this body.
    pub const CONTENT_TYPE: &'static str = crate::content_type::RLMI;

    /// The URIs of the resources whose subscription ended ([`RlmiResource::is_terminated`]):
    /// subscribe to them again if they are still wanted.
    pub fn terminated(&self) -> impl Iterator<Item = &str> {
        self.resources
            .iter()
            .filter(|r| r.is_terminated())
            .map(|r| r.uri.as_str())
    }

    /// Reads an RLMI body with the default [`Limits`].
    pub fn parse(body: &[u8]) -> Result<Rlmi, MsPresError> {
        Rlmi::parse_with(body, &Limits::DEFAULT)
    }

    /// Reads an RLMI body: the root `list` needs `uri`, `version` (`u32`) and `fullState`
    /// (`xs:boolean`); each `resource` needs `uri`; each `instance` needs `id` and `state`
    /// and may have `reason` and `cid`. All are in [`ns::RLMI`]; other elements (`name`
    /// included) and attributes are ignored.
    pub fn parse_with(body: &[u8], limits: &Limits) -> Result<Rlmi, MsPresError> {
        let tree = read_tree(body, limits, "rlmi+xml", (ns::RLMI, "list"))?;
        let root = tree.root();
        let ctx = Ctx { body };
        ctx.expect_root(root, Some(ns::RLMI), "list")?;
        Ok(Rlmi {
            uri: ctx.required_string(root, "list", "uri")?,
            version: ctx.required_u32(root, "list", "version")?,
            full_state: ctx.required_bool(root, "list", "fullState")?,
            resources: root
                .children_named(ns::RLMI, "resource")
                .map(|r| parse_resource(&ctx, r))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Writes the body.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(128 + 160 * self.resources.len());
        out.push_str("<list xmlns=\"");
        out.push_str(ns::RLMI);
        out.push('"');
        push_attr(&mut out, "uri", &self.uri);
        push_attr_num(&mut out, "version", self.version);
        push_attr(
            &mut out,
            "fullState",
            if self.full_state { "true" } else { "false" },
        );
        out.push('>');
        for r in &self.resources {
            out.push_str("<resource");
            push_attr(&mut out, "uri", &r.uri);
            if r.instances.is_empty() {
                out.push_str("/>");
                continue;
            }
            out.push('>');
            for i in &r.instances {
                out.push_str("<instance");
                push_attr(&mut out, "id", &i.id);
                push_attr(&mut out, "state", &i.state);
                if let Some(reason) = &i.reason {
                    push_attr(&mut out, "reason", reason);
                }
                if let Some(cid) = &i.cid {
                    push_attr(&mut out, "cid", cid);
                }
                out.push_str("/>");
            }
            out.push_str("</resource>");
        }
        out.push_str("</list>");
        out
    }
}

fn parse_resource(ctx: &Ctx<'_>, r: Element<'_>) -> Result<RlmiResource, MsPresError> {
    Ok(RlmiResource {
        uri: ctx.required_string(r, "resource", "uri")?,
        instances: r
            .children_named(ns::RLMI, "instance")
            .map(|i| {
                Ok(RlmiInstance {
                    id: ctx.required_string(i, "instance", "id")?,
                    state: ctx.required_string(i, "instance", "state")?,
                    reason: Ctx::optional_string(i, "reason"),
                    cid: Ctx::optional_string(i, "cid"),
                })
            })
            .collect::<Result<_, MsPresError>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_list() {
        let rlmi = Rlmi {
            uri: "sip:bridge@contoso.com".into(),
            version: 1,
            full_state: false,
            resources: vec![
                RlmiResource {
                    uri: "sip:agent1@contoso.com".into(),
                    instances: vec![RlmiInstance {
                        id: "1".into(),
                        state: "active".into(),
                        reason: None,
                        cid: Some("agent1@contoso.com".into()),
                    }],
                },
                RlmiResource {
                    uri: "sip:left@contoso.com".into(),
                    instances: vec![RlmiInstance {
                        id: "2".into(),
                        state: "terminated".into(),
                        reason: Some("deactivated".into()),
                        cid: None,
                    }],
                },
                RlmiResource {
                    uri: "sip:new@contoso.com".into(),
                    instances: vec![],
                },
            ],
        };
        let xml = rlmi.to_xml();
        insta::assert_snapshot!(xml);
        let back = Rlmi::parse(xml.as_bytes()).expect("reads back");
        assert_eq!(back, rlmi);
        assert_eq!(
            back.terminated().collect::<Vec<_>>(),
            ["sip:left@contoso.com"]
        );
    }

    #[test]
    fn needs_version_and_full_state() {
        let err =
            Rlmi::parse(br#"<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="u" fullState="true"/>"#)
                .expect_err("no version");
        assert!(matches!(
            err,
            MsPresError::MissingAttribute {
                attribute: "version",
                ..
            }
        ));
        let err = Rlmi::parse(
            br#"<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="u" version="1" fullState="yes"/>"#,
        )
        .expect_err("bad fullState");
        assert!(matches!(
            err,
            MsPresError::InvalidAttribute {
                attribute: "fullState",
                ..
            }
        ));
        let err = Rlmi::parse(
            br#"<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="u" version="1" fullState="1"><resource uri="r"><instance id="1"/></resource></list>"#,
        )
        .expect_err("no state");
        assert!(matches!(
            err,
            MsPresError::MissingAttribute {
                attribute: "state",
                ..
            }
        ));
    }

    #[test]
    fn a_resource_is_terminated_when_all_its_instances_are() {
        let instance = |state: &str| RlmiInstance {
            id: "1".into(),
            state: state.into(),
            ..RlmiInstance::default()
        };
        let resource = |states: &[&str]| RlmiResource {
            uri: "r".into(),
            instances: states.iter().map(|s| instance(s)).collect(),
        };
        assert!(resource(&["terminated"]).is_terminated());
        assert!(resource(&["Terminated", "terminated"]).is_terminated());
        assert!(!resource(&["terminated", "active"]).is_terminated());
        assert!(!resource(&[]).is_terminated());
    }
}
