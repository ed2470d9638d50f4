//! The `<state>` element shared by publications and notifications.

use crate::MsPresError;
use crate::ns;
use crate::xml::{Ctx, Element, push_attr, push_attr_num, push_decimal, push_text};

/// The `state` value: an availability number, an activity and per-locale texts.
///
/// It is the content of a `state` category instance, both in a publication
/// ([`crate::Publication::state`]) and in a notification ([`crate::Category::state`]):
///
/// ```xml
/// <state xmlns="http://schemas.microsoft.com/2006/09/sip/state"
///        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
///        manual="true" xsi:type="userState" lastActive="2012-07-12T13:58:54">
///   <availability>7001</availability>
///   <activity token="on-the-phone"><custom LCID="1033">In a call</custom></activity>
/// </state>
/// ```
///
/// **`state_type`** is the `xsi:type`: `userState` (what a user or the bridge publishes),
/// `machineState`, `phoneState`, `calendarState` or `aggregateState` (what the server
/// computes and watchers see). The attribute is found by the XML Schema instance namespace
/// URI, never by its prefix, and its value is a QName **resolved** in the scope of the
/// `<state>` element (decision): a name whose namespace is the state namespace
/// ([`ns::STATE`]) gives its local name, so `xsi:type="aggregateState"` under a default
/// state namespace and `xsi:type="s:aggregateState"` with `xmlns:s` bound to the state
/// namespace both give `"aggregateState"`. An unprefixed name gives its local name whatever
/// the default namespace (leniency for bodies that put the state element under a prefix).
/// A prefix bound to another namespace gives `{namespace}local` (James Clark notation), so
/// it never equals a state type of MS-PRES; the writer declares a prefix for such a value.
/// An undeclared prefix is an error. No `xsi:type` at all gives the empty string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StateBody {
    /// The `xsi:type` (see above), for example `"userState"` or `"aggregateState"`.
    pub state_type: String,
    /// The `manual` attribute: `true` for a state the user (or the bridge on their behalf)
    /// chose; absent means `false`.
    pub manual: bool,
    /// The `<availability>` number. Any `u32` is kept as sent (values above 18000 happen on
    /// the wire).
    pub availability: Option<u32>,
    /// The `token` attribute of `<activity>` (for example `on-the-phone`).
    pub activity_token: Option<String>,
    /// The `<custom LCID="...">` texts of `<activity>`, in document order: (LCID, text).
    /// Texts are kept exactly (not trimmed).
    pub custom: Vec<(u32, String)>,
    /// The `lastActive` attribute (an `xs:dateTime` as written), which aggregate states
    /// carry.
    pub last_active: Option<String>,
}

impl StateBody {
    /// The `xsi:type` of a user-chosen state: what the bridge publishes.
    pub const USER_STATE: &'static str = "userState";
    /// The `xsi:type` of the state the server aggregates for watchers.
    pub const AGGREGATE_STATE: &'static str = "aggregateState";

    /// A manual `userState` with `availability` and no activity.
    ///
    /// ```
    /// use presence_mspres::StateBody;
    /// let state = StateBody::user_state(7001).with_custom(1033, "Working with customer");
    /// assert!(state.manual);
    /// assert_eq!(state.state_type, "userState");
    /// assert_eq!(state.custom, [(1033, "Working with customer".to_owned())]);
    /// ```
    pub fn user_state(availability: u32) -> StateBody {
        StateBody {
            state_type: Self::USER_STATE.to_owned(),
            manual: true,
            availability: Some(availability),
            ..StateBody::default()
        }
    }

    /// An `aggregateState` with `availability`, as the server sends to watchers.
    pub fn aggregate_state(availability: u32) -> StateBody {
        StateBody {
            state_type: Self::AGGREGATE_STATE.to_owned(),
            availability: Some(availability),
            ..StateBody::default()
        }
    }

    /// Adds a `<custom LCID="lcid">text</custom>` activity text.
    #[must_use]
    pub fn with_custom(mut self, lcid: u32, text: impl Into<String>) -> StateBody {
        self.custom.push((lcid, text.into()));
        self
    }

    /// Sets the activity token.
    #[must_use]
    pub fn with_activity_token(mut self, token: impl Into<String>) -> StateBody {
        self.activity_token = Some(token.into());
        self
    }

    /// Whether the `xsi:type` is `aggregateState`.
    pub fn is_aggregate(&self) -> bool {
        self.state_type == Self::AGGREGATE_STATE
    }

    /// The text for `lcid`, if there is one (the first one).
    pub fn custom_text(&self, lcid: u32) -> Option<&str> {
        self.custom
            .iter()
            .find(|(l, _)| *l == lcid)
            .map(|(_, t)| t.as_str())
    }
}

/// Reads a `<state>` element in [`ns::STATE`].
pub(crate) fn parse_state(ctx: &Ctx<'_>, el: Element<'_>) -> Result<StateBody, MsPresError> {
    let state_type = match el.xsi_type() {
        None => String::new(),
        Some(t) => match t.resolved {
            Ok((namespace, local, prefixed)) => match namespace {
                Some(ns::STATE) => local.to_owned(),
                _ if !prefixed => local.to_owned(),
                Some(other) => format!("{{{other}}}{local}"),
                None => local.to_owned(),
            },
            Err(prefix) => {
                return Err(MsPresError::UndeclaredPrefix {
                    at: ctx.at(t.offset),
                    prefix: prefix.to_owned(),
                    name: t.raw.to_owned(),
                });
            }
        },
    };
    let manual = ctx.optional_bool(el, "state", "manual")?.unwrap_or(false);
    let last_active = Ctx::optional_string(el, "lastActive");
    let availability = ctx
        .single_child(el, ns::STATE, "availability")?
        .map(|a| ctx.text_u32(a, "availability"))
        .transpose()?;
    let mut activity_token = None;
    let mut custom = Vec::new();
    if let Some(activity) = ctx.single_child(el, ns::STATE, "activity")? {
        activity_token = Ctx::optional_string(activity, "token");
        for c in activity.children_named(ns::STATE, "custom") {
            let lcid = ctx.required_u32(c, "custom", "LCID")?;
            custom.push((lcid, c.text().to_owned()));
        }
    }
    Ok(StateBody {
        state_type,
        manual,
        availability,
        activity_token,
        custom,
        last_active,
    })
}

/// Writes `<state ...>...</state>` with its own namespace declarations.
pub(crate) fn write_state(out: &mut String, state: &StateBody) {
    out.push_str("<state xmlns=\"");
    out.push_str(ns::STATE);
    out.push_str("\" xmlns:xsi=\"");
    out.push_str(ns::XSI);
    out.push('"');
    if state.manual {
        out.push_str(" manual=\"true\"");
    }
    if !state.state_type.is_empty() {
        match clark(&state.state_type) {
            Some((namespace, local)) => {
                push_attr(out, "xmlns:t", namespace);
                push_attr(out, "xsi:type", &format!("t:{local}"));
            }
            None => push_attr(out, "xsi:type", &state.state_type),
        }
    }
    if let Some(last_active) = &state.last_active {
        push_attr(out, "lastActive", last_active);
    }
    out.push('>');
    if let Some(availability) = state.availability {
        out.push_str("<availability>");
        push_decimal(out, availability.into());
        out.push_str("</availability>");
    }
    if state.activity_token.is_some() || !state.custom.is_empty() {
        out.push_str("<activity");
        if let Some(token) = &state.activity_token {
            push_attr(out, "token", token);
        }
        if state.custom.is_empty() {
            out.push_str("/>");
        } else {
            out.push('>');
            for (lcid, text) in &state.custom {
                out.push_str("<custom");
                push_attr_num(out, "LCID", *lcid);
                out.push('>');
                push_text(out, text);
                out.push_str("</custom>");
            }
            out.push_str("</activity>");
        }
    }
    out.push_str("</state>");
}

/// Splits `{namespace}local` (James Clark notation).
fn clark(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix('{')?;
    let (namespace, local) = rest.split_once('}')?;
    (!namespace.is_empty() && !local.is_empty()).then_some((namespace, local))
}
