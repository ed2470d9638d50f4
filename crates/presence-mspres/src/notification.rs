//! A whole presence notification (`NOTIFY` / `BENOTIFY` body): one categories body, or a
//! `multipart/related` batch with an RLMI part and one categories part per user.

use std::borrow::Cow;

use crate::multipart::{ContentType, Multipart, Part, parse_parts, related_content_type};
use crate::{Categories, Limits, MsPresError, Rlmi, content_type};

/// What a notification says: the users' categories and which subscriptions ended.
///
/// ```
/// use presence_mspres::{parse_notification, Categories, Category, Notification, Rlmi, RlmiInstance, RlmiResource, StateBody};
///
/// // The simulator's side: write a batch.
/// let agent = Categories {
///     uri: "sip:agent1@contoso.com".into(),
///     categories: vec![Category { name: "state".into(), state: Some(StateBody::aggregate_state(6500)), ..Category::default() }],
/// };
/// let rlmi = Rlmi {
///     uri: "sip:bridge@contoso.com".into(),
///     version: 3,
///     full_state: false,
///     resources: vec![
///         RlmiResource { uri: agent.uri.clone(), instances: vec![RlmiInstance { id: "1".into(), state: "active".into(), reason: None, cid: Some("agent1@contoso.com".into()) }] },
///         RlmiResource { uri: "sip:gone@contoso.com".into(), instances: vec![RlmiInstance { id: "2".into(), state: "terminated".into(), reason: Some("deactivated".into()), cid: None }] },
///     ],
/// };
/// let notification = Notification::new(vec![agent], Some(rlmi));
/// let (content_type, body) = notification.to_body("=_boundary")?;
/// assert!(content_type.starts_with("multipart/related;"));
///
/// // The bridge's side: read it.
/// let read = parse_notification(&content_type, &body)?;
/// assert_eq!(read.categories[0].availability(), Some(6500));
/// assert_eq!(read.terminated, ["sip:gone@contoso.com"]);
/// assert_eq!(read, notification);
/// # Ok::<(), presence_mspres::MsPresError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Notification {
    /// The categories bodies in the order they came (one per user).
    pub categories: Vec<Categories>,
    /// The RLMI part of a batch, if there was one.
    pub rlmi: Option<Rlmi>,
    /// The URIs of the resources whose subscription ended, from the RLMI part
    /// ([`Rlmi::terminated`]); empty without one.
    pub terminated: Vec<String>,
}

impl Notification {
    /// A notification; `terminated` is derived from `rlmi`.
    pub fn new(categories: Vec<Categories>, rlmi: Option<Rlmi>) -> Notification {
        let terminated = rlmi
            .as_ref()
            .map(|r| r.terminated().map(str::to_owned).collect())
            .unwrap_or_default();
        Notification {
            categories,
            rlmi,
            terminated,
        }
    }

    /// Writes the notification: `(Content-Type value, body)`.
    ///
    /// Without an RLMI part and with exactly one categories body, that body alone
    /// (`application/msrtc-event-categories+xml`). Otherwise a `multipart/related` body
    /// with `boundary`: the RLMI part first (the root, with `Content-ID` `<list.` + the
    /// list URI without its `sip:` scheme + `>`, named by `start`), then one categories
    /// part per user, whose `Content-ID` is the `cid` of that user's first RLMI instance
    /// that has one (none if there is none). Every part has
    /// `Content-Transfer-Encoding: binary`. `terminated` is not written (the RLMI part
    /// carries it).
    pub fn to_body(&self, boundary: &str) -> Result<(String, Vec<u8>), MsPresError> {
        if let (None, [single]) = (&self.rlmi, self.categories.as_slice()) {
            return Ok((
                content_type::CATEGORIES.to_owned(),
                single.to_xml().into_bytes(),
            ));
        }
        let mut parts = Vec::with_capacity(self.categories.len() + 1);
        let start = match &self.rlmi {
            Some(rlmi) => {
                let uri = rlmi.uri.strip_prefix("sip:").unwrap_or(&rlmi.uri);
                let id = format!("<list.{uri}>");
                parts.push(
                    Part::new(content_type::RLMI, rlmi.to_xml())
                        .with_header("Content-Transfer-Encoding", "binary")
                        .with_header("Content-ID", id.clone()),
                );
                Some(id)
            }
            None => None,
        };
        for categories in &self.categories {
            let mut part = Part::new(content_type::CATEGORIES, categories.to_xml())
                .with_header("Content-Transfer-Encoding", "binary");
            let cid = self.rlmi.as_ref().and_then(|rlmi| {
                rlmi.resources
                    .iter()
                    .filter(|r| r.uri == categories.uri)
                    .flat_map(|r| &r.instances)
                    .find_map(|i| i.cid.as_deref())
            });
            if let Some(cid) = cid {
                part = part.with_header("Content-ID", format!("<{cid}>"));
            }
            parts.push(part);
        }
        let root_type = if self.rlmi.is_some() {
            content_type::RLMI
        } else {
            content_type::CATEGORIES
        };
        let body = Multipart { parts }.to_bytes(boundary)?;
        Ok((
            related_content_type(root_type, start.as_deref(), boundary),
            body,
        ))
    }
}

/// Reads a notification body given its `Content-Type` header value, with the default
/// [`Limits`]. See [`parse_notification_with`].
pub fn parse_notification(content_type: &str, body: &[u8]) -> Result<Notification, MsPresError> {
    parse_notification_with(content_type, body, &Limits::DEFAULT)
}

/// Reads a notification body given its `Content-Type` header value.
///
/// - `application/msrtc-event-categories+xml`: one [`Categories`].
/// - `application/rlmi+xml`: only the RLMI list (no categories).
/// - `multipart/related` (needs a `boundary` parameter): the parts are split per RFC 2046
///   and matched by their own `Content-Type`: every categories part is read (in order);
///   the first RLMI part gives [`Notification::rlmi`] and [`Notification::terminated`]
///   (later RLMI parts are ignored); parts of other types, and parts without a
///   `Content-Type`, are skipped. A part that is read must have no
///   `Content-Transfer-Encoding` or an identity one (`7bit`, `8bit`, `binary`). An error
///   inside a part is wrapped in [`MsPresError::Part`] with the part's index and
///   `Content-ID`. Nested multiparts are not descended into.
/// - Anything else is [`MsPresError::UnsupportedContentType`].
pub fn parse_notification_with(
    content_type: &str,
    body: &[u8],
    limits: &Limits,
) -> Result<Notification, MsPresError> {
    const EXPECTED: &str =
        "application/msrtc-event-categories+xml, application/rlmi+xml or multipart/related";
    let ct = ContentType::parse(content_type)?;
    if ct.is(content_type::CATEGORIES) {
        return Ok(Notification::new(
            vec![Categories::parse_with(body, limits)?],
            None,
        ));
    }
    if ct.is(content_type::RLMI) {
        return Ok(Notification::new(
            Vec::new(),
            Some(Rlmi::parse_with(body, limits)?),
        ));
    }
    if !ct.is(content_type::MULTIPART_RELATED) {
        return Err(MsPresError::UnsupportedContentType {
            content_type: ct.media_type,
            expected: EXPECTED,
        });
    }
    let Some(boundary) = ct.param("boundary") else {
        return Err(MsPresError::InvalidContentType {
            content_type: content_type.to_owned(),
            offset: content_type.len(),
            found: "end of value".to_owned(),
            expected: "a `boundary` parameter for multipart/related",
        });
    };
    let parts = parse_parts(boundary, body, limits)?;
    let mut categories = Vec::with_capacity(parts.len());
    let mut rlmi = None;
    for (index, part) in parts.iter().enumerate() {
        let Some(part_type) = part.header("Content-Type") else {
            continue;
        };
        let wrap = |media_type: &str, source: MsPresError| MsPresError::Part {
            index,
            content_type: media_type.to_owned(),
            content_id: part.header("Content-ID").map(str::to_owned),
            source: Box::new(source),
        };
        // The types the writers send are read as `ContentType::parse` would read them
        // (a lower-case media type without parameters) without parsing them.
        let media_type: Cow<'_, str> = match part_type {
            content_type::CATEGORIES => Cow::Borrowed(content_type::CATEGORIES),
            content_type::RLMI => Cow::Borrowed(content_type::RLMI),
            _ => Cow::Owned(
                ContentType::parse(part_type)
                    .map_err(|e| wrap("?", e))?
                    .media_type,
            ),
        };
        let is_categories = media_type.eq_ignore_ascii_case(content_type::CATEGORIES);
        let wanted = is_categories
            || (media_type.eq_ignore_ascii_case(content_type::RLMI) && rlmi.is_none());
        if !wanted {
            continue;
        }
        if let Some(encoding) = part.header("Content-Transfer-Encoding") {
            let identity = ["7bit", "8bit", "binary"]
                .iter()
                .any(|e| e.eq_ignore_ascii_case(encoding));
            if !identity {
                return Err(MsPresError::UnsupportedTransferEncoding {
                    part: index,
                    encoding: encoding.to_owned(),
                });
            }
        }
        if is_categories {
            categories
                .push(Categories::parse_with(part.body, limits).map_err(|e| wrap(&media_type, e))?);
        } else {
            rlmi = Some(Rlmi::parse_with(part.body, limits).map_err(|e| wrap(&media_type, e))?);
        }
    }
    Ok(Notification::new(categories, rlmi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Category, StateBody};

    fn user(n: u32, availability: u32) -> Categories {
        Categories {
            uri: format!("sip:agent{n}@contoso.com"),
            categories: vec![Category {
                name: "state".into(),
                instance: Some(0),
                state: Some(StateBody::aggregate_state(availability)),
                ..Category::default()
            }],
        }
    }

    #[test]
    fn writes_a_batch() {
        use crate::{RlmiInstance, RlmiResource};
        let instance = |id: &str, state: &str, cid: Option<&str>| RlmiInstance {
            id: id.into(),
            state: state.into(),
            reason: (state == "terminated").then(|| "deactivated".to_owned()),
            cid: cid.map(str::to_owned),
        };
        let rlmi = Rlmi {
            uri: "sip:bridge@contoso.com".into(),
            version: 2,
            full_state: false,
            resources: vec![
                RlmiResource {
                    uri: "sip:agent1@contoso.com".into(),
                    instances: vec![instance("1", "active", Some("agent1@contoso.com"))],
                },
                RlmiResource {
                    uri: "sip:agent2@contoso.com".into(),
                    instances: vec![instance("2", "active", Some("agent2@contoso.com"))],
                },
                RlmiResource {
                    uri: "sip:left@contoso.com".into(),
                    instances: vec![instance("3", "terminated", None)],
                },
            ],
        };
        let n = Notification::new(vec![user(1, 6500), user(2, 3500)], Some(rlmi));
        assert_eq!(n.terminated, ["sip:left@contoso.com"]);
        let (ct, body) = n.to_body("=_NextPart_0001").expect("writable");
        insta::assert_snapshot!(format!(
            "Content-Type: {ct}\n\n{}",
            String::from_utf8_lossy(&body).replace("\r\n", "␍␊\n")
        ));
        assert_eq!(parse_notification(&ct, &body).expect("reads back"), n);
    }

    #[test]
    fn a_single_body_is_written_alone() {
        let n = Notification::new(vec![user(1, 3500)], None);
        let (ct, body) = n.to_body("b").expect("writable");
        assert_eq!(ct, content_type::CATEGORIES);
        assert_eq!(parse_notification(&ct, &body).expect("reads back"), n);
    }

    #[test]
    fn a_batch_without_rlmi() {
        let n = Notification::new(vec![user(1, 3500), user(2, 6500)], None);
        let (ct, body) = n.to_body("b").expect("writable");
        assert_eq!(
            ct,
            "multipart/related;type=\"application/msrtc-event-categories+xml\";boundary=\"b\""
        );
        assert_eq!(parse_notification(&ct, &body).expect("reads back"), n);
    }

    #[test]
    fn unknown_types_and_encodings() {
        let err = parse_notification("text/plain", b"x").expect_err("unsupported");
        assert!(
            matches!(err, MsPresError::UnsupportedContentType { content_type, .. } if content_type == "text/plain")
        );
        let err = parse_notification("multipart/related", b"x").expect_err("no boundary");
        assert!(matches!(err, MsPresError::InvalidContentType { .. }));
        let body = Multipart {
            parts: vec![
                Part::new("text/plain", "ignored"),
                Part::default(),
                Part::new(content_type::CATEGORIES, user(1, 3500).to_xml())
                    .with_header("Content-Transfer-Encoding", "base64"),
            ],
        }
        .to_bytes("b")
        .expect("writable");
        let err = parse_notification("multipart/related;boundary=b", &body).expect_err("base64");
        assert!(matches!(
            err,
            MsPresError::UnsupportedTransferEncoding { part: 2, .. }
        ));
    }

    #[test]
    fn errors_in_parts_name_the_part() {
        let body = Multipart {
            parts: vec![
                Part::new(content_type::CATEGORIES, user(1, 3500).to_xml()),
                Part::new(content_type::CATEGORIES, "<categories/>")
                    .with_header("Content-ID", "<agent2@contoso.com>"),
            ],
        }
        .to_bytes("b")
        .expect("writable");
        let err = parse_notification("multipart/related;boundary=b", &body).expect_err("bad part");
        assert_eq!(
            err.to_string(),
            "multipart part 1 (application/msrtc-event-categories+xml, Content-ID \
             <agent2@contoso.com>): line 1, column 1 (byte 0): the root element is \
             <categories> in no namespace: expected <categories> in namespace \
             `http://schemas.microsoft.com/2006/09/sip/categories`"
        );
        assert_eq!(err.location().map(|l| l.offset), Some(0));
    }
}
