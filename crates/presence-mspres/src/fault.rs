//! `application/msrtc-fault+xml`: the body of an error response to a publication, above
//! all `409 Conflict` with `Client.BadCall.WrongDelta` (a version conflict).

use crate::xml::{Ctx, Element, is_xml_whitespace_char, push_attr_num, push_text, read_tree};
use crate::{Limits, MsPresError};

/// A `<Fault>` body.
///
/// The elements are matched by **local name only, in any namespace** (decision: captures
/// show both an unqualified `<Fault>` and one with a namespace), and the local names
/// compare ASCII case-insensitively (`Fault`, `Faultcode`, `Faultstring`, `details`,
/// `operation`). The writer writes them without a namespace.
///
/// ```
/// use presence_mspres::Fault;
/// let fault = Fault::parse(br#"<Fault><Faultcode>Client.BadCall.WrongDelta</Faultcode>
///   <details><operation index="1" version="0" curVersion="4"/></details></Fault>"#)?;
/// assert!(fault.is_wrong_delta());
/// assert_eq!(fault.operations[0].index, 1);
/// assert_eq!(fault.operations[0].cur_version, Some(4));
/// assert_eq!(Fault::parse(fault.to_xml().as_bytes())?, fault);
/// # Ok::<(), presence_mspres::MsPresError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fault {
    /// The `<Faultcode>` text, trimmed (for example `Client.BadCall.WrongDelta`).
    pub code: String,
    /// The `<Faultstring>` text, if present (kept exactly).
    pub string: Option<String>,
    /// The `<operation>` elements of `<details>`.
    pub operations: Vec<FaultOperation>,
}

/// One `<operation>` of a fault's `<details>`: which publication failed and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaultOperation {
    /// `index`: the 1-based position of the `<publication>` in the request.
    pub index: u32,
    /// `version`: the version the request sent.
    pub version: Option<u32>,
    /// `curVersion`: the server's current version; publish again with it.
    pub cur_version: Option<u32>,
}

impl Fault {
    /// The media type of this body.
    pub const CONTENT_TYPE: &'static str = crate::content_type::FAULT;
    /// The fault code of a version conflict.
    pub const WRONG_DELTA: &'static str = "Client.BadCall.WrongDelta";

    /// A `Client.BadCall.WrongDelta` fault for the given operations.
    pub fn wrong_delta(operations: Vec<FaultOperation>) -> Fault {
        Fault {
            code: Self::WRONG_DELTA.to_owned(),
            string: None,
            operations,
        }
    }

    /// Whether this is a version conflict (`Client.BadCall.WrongDelta`).
    pub fn is_wrong_delta(&self) -> bool {
        self.code.trim() == Self::WRONG_DELTA
    }

    /// Reads a fault body with the default [`Limits`].
    pub fn parse(body: &[u8]) -> Result<Fault, MsPresError> {
        Fault::parse_with(body, &Limits::DEFAULT)
    }

    /// Reads a fault body: the root `Fault` needs a `Faultcode` child; `Faultstring` and
    /// `details` are optional; each `operation` of `details` needs `index` and may have
    /// `version` and `curVersion` (decimal `u32`). Other elements are ignored.
    pub fn parse_with(body: &[u8], limits: &Limits) -> Result<Fault, MsPresError> {
        let tree = read_tree(body, limits, "msrtc-fault+xml", ("*", "Fault"))?;
        let root = tree.root();
        let ctx = Ctx { body };
        ctx.expect_root(root, None, "Fault")?;
        let code = single(&ctx, root, "Faultcode")?.ok_or_else(|| MsPresError::MissingElement {
            at: ctx.at(root.offset()),
            parent: "Fault",
            element: "Faultcode",
        })?;
        let string = single(&ctx, root, "Faultstring")?.map(|s| s.text().to_owned());
        let mut operations = Vec::new();
        if let Some(details) = single(&ctx, root, "details")? {
            for op in named(details, "operation") {
                operations.push(FaultOperation {
                    index: ctx.required_u32(op, "operation", "index")?,
                    version: ctx.optional_u32(op, "operation", "version")?,
                    cur_version: ctx.optional_u32(op, "operation", "curVersion")?,
                });
            }
        }
        Ok(Fault {
            code: code.text().trim_matches(is_xml_whitespace_char).to_owned(),
            string,
            operations,
        })
    }

    /// Writes the body.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(128 + 64 * self.operations.len());
        out.push_str("<Fault><Faultcode>");
        push_text(&mut out, &self.code);
        out.push_str("</Faultcode>");
        if let Some(string) = &self.string {
            out.push_str("<Faultstring>");
            push_text(&mut out, string);
            out.push_str("</Faultstring>");
        }
        if !self.operations.is_empty() {
            out.push_str("<details>");
            for op in &self.operations {
                out.push_str("<operation");
                push_attr_num(&mut out, "index", op.index);
                if let Some(version) = op.version {
                    push_attr_num(&mut out, "version", version);
                }
                if let Some(cur) = op.cur_version {
                    push_attr_num(&mut out, "curVersion", cur);
                }
                out.push_str("/>");
            }
            out.push_str("</details>");
        }
        out.push_str("</Fault>");
        out
    }
}

fn named<'e>(parent: Element<'e>, local: &'static str) -> impl Iterator<Item = Element<'e>> {
    parent
        .children()
        .filter(move |c| c.local().eq_ignore_ascii_case(local))
}

fn single<'e>(
    ctx: &Ctx<'_>,
    parent: Element<'e>,
    local: &'static str,
) -> Result<Option<Element<'e>>, MsPresError> {
    let mut found = named(parent, local);
    let first = found.next();
    if let (Some(first), Some(second)) = (first, found.next()) {
        return Err(MsPresError::RepeatedElement {
            at: ctx.at(second.offset()),
            element: local,
            first: ctx.at(first.offset()),
        });
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_wrong_delta_fault() {
        let fault = Fault::wrong_delta(vec![
            FaultOperation {
                index: 1,
                version: Some(0),
                cur_version: Some(4),
            },
            FaultOperation {
                index: 2,
                version: Some(0),
                cur_version: Some(7),
            },
        ]);
        insta::assert_snapshot!(fault.to_xml());
    }

    #[test]
    fn writes_a_fault_string() {
        let fault = Fault {
            code: "Server.Quota".into(),
            string: Some("Container <quota> & more".into()),
            operations: vec![],
        };
        let xml = fault.to_xml();
        insta::assert_snapshot!(xml);
        assert_eq!(Fault::parse(xml.as_bytes()).expect("reads back"), fault);
        assert!(!fault.is_wrong_delta());
    }

    #[test]
    fn accepts_any_namespace_and_case() {
        let body = br#"<f:Fault xmlns:f="urn:example:any-fault-namespace">
            <f:faultcode> Client.BadCall.WrongDelta </f:faultcode>
            <f:FaultString>stale</f:FaultString>
            <f:details><f:operation index="2" curVersion="9"/><unknown/></f:details>
        </f:Fault>"#;
        let fault = Fault::parse(body).expect("namespaced fault");
        assert!(fault.is_wrong_delta());
        assert_eq!(fault.string.as_deref(), Some("stale"));
        assert_eq!(
            fault.operations,
            [FaultOperation {
                index: 2,
                version: None,
                cur_version: Some(9)
            }]
        );
    }

    #[test]
    fn refuses_bad_faults() {
        assert!(matches!(
            Fault::parse(b"<Error/>"),
            Err(MsPresError::WrongRoot {
                expected: "Fault",
                namespace: "*",
                ..
            })
        ));
        assert!(matches!(
            Fault::parse(b"<Fault/>"),
            Err(MsPresError::MissingElement {
                element: "Faultcode",
                ..
            })
        ));
        let err = Fault::parse(
            b"<Fault><Faultcode>x</Faultcode><details><operation curVersion='1'/></details></Fault>",
        )
        .expect_err("no index");
        assert!(matches!(
            err,
            MsPresError::MissingAttribute {
                attribute: "index",
                ..
            }
        ));
        let err = Fault::parse(
            b"<Fault><Faultcode>x</Faultcode><details><operation index='-1'/></details></Fault>",
        )
        .expect_err("bad index");
        assert!(matches!(
            err,
            MsPresError::InvalidAttribute {
                attribute: "index",
                ..
            }
        ));
    }
}
