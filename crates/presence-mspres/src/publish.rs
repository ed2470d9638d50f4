//! `application/msrtc-category-publish+xml`: the body of the `SERVICE` request that
//! publishes (or removes) category instances for a user.

use crate::state::{parse_state, write_state};
use crate::xml::{Ctx, Element, push_attr, push_attr_num, read_tree};
use crate::{Limits, MsPresError, StateBody, ns};

/// The category instance of the user's static (manual) state: `0x20000000`.
///
/// `0x24000000` ([`TIME_BOUND_STATE_INSTANCE`]) is a time-bounded Busy/DND state instead.
pub const STATIC_STATE_INSTANCE: u32 = 0x2000_0000;

/// The category instance of a time-bounded Busy / Do-not-disturb state: `0x24000000`
/// (published with [`ExpireType::Time`] and `expires` in seconds).
pub const TIME_BOUND_STATE_INSTANCE: u32 = 0x2400_0000;

/// The containers a user's state is published to by default: 2 and 3, the inputs of the
/// server's aggregation (watchers see the aggregated state in containers 100 to 400).
pub const DEFAULT_STATE_CONTAINERS: [u32; 2] = [2, 3];

/// A `<publish>` body: the publications for one user.
///
/// ```
/// use presence_mspres::{Publish, StateBody, STATIC_STATE_INSTANCE};
///
/// let state = StateBody::user_state(6500).with_custom(1033, "In a call");
/// // Containers 2 and 3 with the versions the server last reported for each.
/// let publish = Publish::state_in_containers("sip:agent1@contoso.com", STATIC_STATE_INSTANCE, &state, &[(2, 0), (3, 4)]);
/// let xml = publish.to_xml();
/// assert!(xml.contains(r#"instance="536870912" container="3" version="4""#));
/// assert_eq!(Publish::parse(xml.as_bytes())?, publish);
/// # Ok::<(), presence_mspres::MsPresError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Publish {
    /// The `uri` of `<publications>`: the user whose categories these are.
    pub uri: String,
    /// The `<publication>` elements in order (a fault's `index` counts them from 1).
    pub publications: Vec<Publication>,
}

/// One `<publication>`: a category instance keyed by (category, instance, container).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Publication {
    /// `categoryName`, for example `state`.
    pub category: String,
    /// `instance`: [`STATIC_STATE_INSTANCE`] for the manual state.
    pub instance: u32,
    /// `container`: 2 and 3 for the aggregation inputs.
    pub container: u32,
    /// `version`: 0 the first time, then the version the server last reported (a
    /// `409` fault's `curVersion`).
    pub version: u32,
    /// `expireType`.
    pub expire_type: ExpireType,
    /// `expires` in seconds (meaningful with [`ExpireType::Time`]).
    pub expires: Option<u32>,
    /// The `<state>` content. `None` with [`ExpireType::Time`] and `expires = Some(0)`
    /// removes the instance (see [`Publication::removal`]). Content other than a `<state>`
    /// element is not modelled: it is skipped when reading.
    pub state: Option<StateBody>,
}

/// The `expireType` of a publication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ExpireType {
    /// `static`: lives until removed (the default when the attribute is absent).
    #[default]
    Static,
    /// `user`: lives while the user has an endpoint signed in.
    User,
    /// `endpoint`: lives while the publishing endpoint is signed in.
    Endpoint,
    /// `time`: lives for `expires` seconds.
    Time,
}

impl ExpireType {
    /// The expire type named `name` (`static`, `user`, `endpoint`, `time`; any case).
    pub fn from_name(name: &str) -> Option<ExpireType> {
        EXPIRE_TYPES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, t)| *t)
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpireType::Static => "static",
            ExpireType::User => "user",
            ExpireType::Endpoint => "endpoint",
            ExpireType::Time => "time",
        }
    }
}

const EXPIRE_TYPES: [(&str, ExpireType); 4] = [
    ("static", ExpireType::Static),
    ("user", ExpireType::User),
    ("endpoint", ExpireType::Endpoint),
    ("time", ExpireType::Time),
];

impl Publication {
    /// A static publication of `state` in category `state`.
    pub fn state(instance: u32, container: u32, version: u32, state: StateBody) -> Publication {
        Publication {
            category: "state".to_owned(),
            instance,
            container,
            version,
            expire_type: ExpireType::Static,
            expires: None,
            state: Some(state),
        }
    }

    /// The publication that removes an instance: `expireType="time" expires="0"` and no
    /// content.
    pub fn removal(
        category: impl Into<String>,
        instance: u32,
        container: u32,
        version: u32,
    ) -> Publication {
        Publication {
            category: category.into(),
            instance,
            container,
            version,
            expire_type: ExpireType::Time,
            expires: Some(0),
            state: None,
        }
    }

    /// Whether this publication removes its instance.
    pub fn is_removal(&self) -> bool {
        self.expire_type == ExpireType::Time && self.expires == Some(0) && self.state.is_none()
    }
}

impl Publish {
    /// The media type of this body.
    pub const CONTENT_TYPE: &'static str = crate::content_type::PUBLISH;

    /// The usual set: one static `state` publication of the same `state` per container,
    /// with that container's version. `containers` lists (container, version) pairs in the
    /// order to publish, for example `[(2, v2), (3, v3)]`.
    pub fn state_in_containers(
        uri: impl Into<String>,
        instance: u32,
        state: &StateBody,
        containers: &[(u32, u32)],
    ) -> Publish {
        Publish {
            uri: uri.into(),
            publications: containers
                .iter()
                .map(|&(container, version)| {
                    Publication::state(instance, container, version, state.clone())
                })
                .collect(),
        }
    }

    /// Removes the `state` instance from each (container, version).
    pub fn remove_state_in_containers(
        uri: impl Into<String>,
        instance: u32,
        containers: &[(u32, u32)],
    ) -> Publish {
        Publish {
            uri: uri.into(),
            publications: containers
                .iter()
                .map(|&(container, version)| {
                    Publication::removal("state", instance, container, version)
                })
                .collect(),
        }
    }

    /// Reads a publish body with the default [`Limits`].
    pub fn parse(body: &[u8]) -> Result<Publish, MsPresError> {
        Publish::parse_with(body, &Limits::DEFAULT)
    }

    /// Reads a publish body.
    ///
    /// The root is `publish` and its single `publications` child must be in
    /// [`ns::RICH_PRESENCE`]; `publication` elements (same namespace) need `categoryName`,
    /// `instance`, `container` and `version` (decimal `u32`); `expireType` is optional
    /// (default `static`) and one of `static`, `user`, `endpoint`, `time` (case-insensitive);
    /// `expires` is an optional `u32`. A `state` element in [`ns::STATE`] inside a
    /// publication is read as a [`StateBody`]; other elements and attributes are ignored.
    pub fn parse_with(body: &[u8], limits: &Limits) -> Result<Publish, MsPresError> {
        let tree = read_tree(
            body,
            limits,
            "msrtc-category-publish+xml",
            (ns::RICH_PRESENCE, "publish"),
        )?;
        let root = tree.root();
        let ctx = Ctx { body };
        ctx.expect_root(root, Some(ns::RICH_PRESENCE), "publish")?;
        let publications =
            ctx.required_child(root, "publish", ns::RICH_PRESENCE, "publications")?;
        let uri = ctx.required_string(publications, "publications", "uri")?;
        let publications = publications
            .children_named(ns::RICH_PRESENCE, "publication")
            .map(|p| parse_publication(&ctx, p))
            .collect::<Result<_, _>>()?;
        Ok(Publish { uri, publications })
    }

    /// Writes the body (UTF-8, no XML declaration, no insignificant white space).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256 + 512 * self.publications.len());
        self.write_xml(&mut out);
        out
    }

    /// Appends the body to `out`, as [`to_xml`](Self::to_xml) writes it.
    pub fn write_xml(&self, out: &mut String) {
        write_open(out, &self.uri);
        for p in &self.publications {
            write_publication(out, p.head(), p.state.as_ref());
        }
        write_close(out);
    }

    /// Appends the body of [`state_in_containers`](Self::state_in_containers) with
    /// `expire_type` on every publication to `out`, without building the [`Publish`] (no
    /// copy of `state` per container): the same text as
    ///
    /// ```
    /// # use presence_mspres::{ExpireType, Publish, StateBody};
    /// # let (uri, instance, expire_type) = ("sip:a@x", 1, ExpireType::User);
    /// # let state = StateBody::user_state(3500);
    /// # let containers = [(2, 0), (3, 1)];
    /// let mut publish = Publish::state_in_containers(uri, instance, &state, &containers);
    /// for p in &mut publish.publications {
    ///     p.expire_type = expire_type;
    /// }
    /// let mut out = String::new();
    /// Publish::write_state_in_containers(&mut out, uri, instance, expire_type, &state, containers);
    /// assert_eq!(out, publish.to_xml());
    /// ```
    pub fn write_state_in_containers(
        out: &mut String,
        uri: &str,
        instance: u32,
        expire_type: ExpireType,
        state: &StateBody,
        containers: impl IntoIterator<Item = (u32, u32)>,
    ) {
        write_open(out, uri);
        // The same state in every publication: written (and escaped) once, then copied.
        let mut state_xml: Option<String> = None;
        let mut containers = containers.into_iter().peekable();
        while let Some((container, version)) = containers.next() {
            let head = PublicationHead {
                category: "state",
                instance,
                container,
                version,
                expire_type,
                expires: None,
            };
            write_publication_attrs(out, head);
            out.push('>');
            match &state_xml {
                Some(xml) => out.push_str(xml),
                None => {
                    let start = out.len();
                    write_state(out, state);
                    if containers.peek().is_some() {
                        state_xml = out.get(start..).map(str::to_owned);
                    }
                }
            }
            out.push_str("</publication>");
        }
        write_close(out);
    }
}

/// The attributes of a `<publication>`.
#[derive(Clone, Copy)]
struct PublicationHead<'a> {
    category: &'a str,
    instance: u32,
    container: u32,
    version: u32,
    expire_type: ExpireType,
    expires: Option<u32>,
}

impl Publication {
    fn head(&self) -> PublicationHead<'_> {
        PublicationHead {
            category: &self.category,
            instance: self.instance,
            container: self.container,
            version: self.version,
            expire_type: self.expire_type,
            expires: self.expires,
        }
    }
}

fn write_open(out: &mut String, uri: &str) {
    out.push_str("<publish xmlns=\"");
    out.push_str(ns::RICH_PRESENCE);
    out.push_str("\"><publications");
    push_attr(out, "uri", uri);
    out.push('>');
}

fn write_publication(out: &mut String, p: PublicationHead<'_>, state: Option<&StateBody>) {
    write_publication_attrs(out, p);
    match state {
        Some(state) => {
            out.push('>');
            write_state(out, state);
            out.push_str("</publication>");
        }
        None => out.push_str("/>"),
    }
}

/// `<publication` and its attributes, the start tag left open.
fn write_publication_attrs(out: &mut String, p: PublicationHead<'_>) {
    out.push_str("<publication");
    push_attr(out, "categoryName", p.category);
    push_attr_num(out, "instance", p.instance);
    push_attr_num(out, "container", p.container);
    push_attr_num(out, "version", p.version);
    push_attr(out, "expireType", p.expire_type.as_str());
    if let Some(expires) = p.expires {
        push_attr_num(out, "expires", expires);
    }
}

fn write_close(out: &mut String) {
    out.push_str("</publications></publish>");
}

fn parse_publication(ctx: &Ctx<'_>, p: Element<'_>) -> Result<Publication, MsPresError> {
    const E: &str = "publication";
    Ok(Publication {
        category: ctx.required_string(p, E, "categoryName")?,
        instance: ctx.required_u32(p, E, "instance")?,
        container: ctx.required_u32(p, E, "container")?,
        version: ctx.required_u32(p, E, "version")?,
        expire_type: ctx
            .optional_enum(
                p,
                E,
                "expireType",
                &EXPIRE_TYPES,
                "static, user, endpoint or time",
            )?
            .unwrap_or_default(),
        expires: ctx.optional_u32(p, E, "expires")?,
        state: ctx
            .single_child(p, ns::STATE, "state")?
            .map(|s| parse_state(ctx, s))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent_state() -> StateBody {
        StateBody::user_state(7001)
            .with_custom(1033, "Working with customer, do not disturb")
            .with_custom(3082, "Trabajar con los clientes, no molestar")
    }

    #[test]
    fn writes_the_usual_two_container_publication() {
        let publish = Publish::state_in_containers(
            "sip:agent1@contoso.com",
            STATIC_STATE_INSTANCE,
            &agent_state(),
            &[(2, 0), (3, 0)],
        );
        insta::assert_snapshot!(publish.to_xml());
    }

    #[test]
    fn writes_a_removal_and_a_time_bounded_state() {
        let mut publish = Publish::remove_state_in_containers(
            "sip:agent1@contoso.com",
            STATIC_STATE_INSTANCE,
            &[(2, 3), (3, 5)],
        );
        publish.publications.push(Publication {
            expire_type: ExpireType::Time,
            expires: Some(3600),
            ..Publication::state(
                TIME_BOUND_STATE_INSTANCE,
                2,
                1,
                StateBody::user_state(9500).with_activity_token("in-a-conference"),
            )
        });
        assert!(publish.publications[0].is_removal());
        assert!(!publish.publications[2].is_removal());
        let xml = publish.to_xml();
        insta::assert_snapshot!(xml);
        assert_eq!(Publish::parse(xml.as_bytes()).expect("reads back"), publish);
    }

    #[test]
    fn writes_escaped_texts() {
        let state = StateBody::user_state(6500)
            .with_activity_token("a\"b")
            .with_custom(1033, "<Busy> & \"away\" 'now'\r\n")
            .with_custom(1049, "Работа с клиентом");
        let publish = Publish::state_in_containers("sip:o'neil&co@x", 1, &state, &[(2, 0)]);
        let xml = publish.to_xml();
        insta::assert_snapshot!(xml);
        assert_eq!(Publish::parse(xml.as_bytes()).expect("reads back"), publish);
    }

    #[test]
    fn writes_state_in_containers_as_to_xml_does() {
        let states = [
            agent_state(),
            StateBody::user_state(6500)
                .with_activity_token("a\"b")
                .with_custom(1033, "<Busy> & \"away\" 'now'\r\n\u{1}\u{FFFF}")
                .with_custom(1049, "Работа с клиентом"),
            StateBody {
                state_type: "{urn:other}machineState".to_owned(),
                manual: false,
                last_active: Some("2012-07-12T13:58:54".to_owned()),
                ..StateBody::default()
            },
        ];
        for state in &states {
            for expire_type in [ExpireType::Static, ExpireType::Time] {
                for containers in [&[][..], &[(2, 0)], &[(2, 7), (3, u32::MAX), (400, 1)]] {
                    let mut publish =
                        Publish::state_in_containers("sip:o'neil&co@x", 17, state, containers);
                    for p in &mut publish.publications {
                        p.expire_type = expire_type;
                    }
                    let mut out = String::from("kept");
                    Publish::write_state_in_containers(
                        &mut out,
                        "sip:o'neil&co@x",
                        17,
                        expire_type,
                        state,
                        containers.iter().copied(),
                    );
                    assert_eq!(out, format!("kept{}", publish.to_xml()));
                }
            }
        }
    }

    #[test]
    fn the_instance_constants() {
        assert_eq!(STATIC_STATE_INSTANCE, 536_870_912);
        assert_eq!(TIME_BOUND_STATE_INSTANCE, 603_979_776);
    }

    #[test]
    fn validates_attributes_with_locations() {
        let body = "<publish xmlns=\"http://schemas.microsoft.com/2006/09/sip/rich-presence\">\n\
            <publications uri=\"sip:a@x\">\n\
            <publication categoryName=\"state\" instance=\"1\" container=\"2\" version=\"x1\"/>\n\
            </publications></publish>";
        let err = Publish::parse(body.as_bytes()).expect_err("bad version");
        assert_eq!(
            err.to_string(),
            "line 3, column 62 (byte 163): `version=\"x1\"` on <publication> is not valid: \
             expected a decimal number 0..=4294967295"
        );
        let body = body.replace("version=\"x1\"", "version=\"1\" expireType=\"never\"");
        let err = Publish::parse(body.as_bytes()).expect_err("bad expireType");
        assert!(
            matches!(&err, MsPresError::InvalidAttribute { attribute: "expireType", value, .. } if value == "never"),
            "{err}"
        );
        let body = body
            .replace(" expireType=\"never\"", "")
            .replace(" container=\"2\"", "");
        let err = Publish::parse(body.as_bytes()).expect_err("no container");
        assert!(matches!(
            err,
            MsPresError::MissingAttribute { attribute: "container", at, .. } if at.line == 3
        ));
    }

    #[test]
    fn tolerates_unknown_elements_and_attributes() {
        let body = r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence" extra="1">
          <future xmlns="urn:other"><publication categoryName="x"/></future>
          <publications uri="sip:a@x" more="2">
            <publication categoryName="note" instance="1" container="100" version="0" expireType="STATIC" future="y">
              <note xmlns="http://schemas.microsoft.com/2006/09/sip/note"><body type="personal">hi</body></note>
            </publication>
            <publication categoryName="state" instance="536870912" container="2" version="3">
              <state xmlns="http://schemas.microsoft.com/2006/09/sip/state"
                     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState" manual="1">
                <availability> 3500 </availability><somethingNew/>
                <activity><custom LCID="1033" dir="LTR">Free</custom><other/></activity>
              </state>
            </publication>
          </publications>
        </publish>"#;
        let publish = Publish::parse(body.as_bytes()).expect("tolerant");
        assert_eq!(publish.uri, "sip:a@x");
        assert_eq!(publish.publications.len(), 2);
        assert_eq!(publish.publications[0].category, "note");
        assert_eq!(publish.publications[0].state, None);
        assert_eq!(publish.publications[0].expire_type, ExpireType::Static);
        let state = publish.publications[1].state.as_ref().expect("state");
        assert_eq!(
            state,
            &StateBody::user_state(3500).with_custom(1033, "Free")
        );
    }

    #[test]
    fn refuses_wrong_roots_and_missing_parts() {
        let err = Publish::parse(b"<publish/>").expect_err("no namespace");
        assert_eq!(
            err.to_string(),
            "line 1, column 1 (byte 0): the root element is <publish> in no namespace: expected \
             <publish> in namespace `http://schemas.microsoft.com/2006/09/sip/rich-presence`"
        );
        let err = Publish::parse(
            b"<publish xmlns='http://schemas.microsoft.com/2006/09/sip/rich-presence'/>",
        )
        .expect_err("no publications");
        assert!(matches!(
            err,
            MsPresError::MissingElement {
                element: "publications",
                ..
            }
        ));
        let err = Publish::parse(
            b"<publish xmlns='http://schemas.microsoft.com/2006/09/sip/rich-presence'><publications uri='a'/><publications uri='b'/></publish>",
        )
        .expect_err("two publications");
        assert!(matches!(
            err,
            MsPresError::RepeatedElement { element: "publications", at, first } if at.offset == 95 && first.offset == 72
        ));
    }
}
