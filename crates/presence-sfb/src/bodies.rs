//! The MS-PRES bodies the endpoint writes and reads, on top of `presence-mspres`.

use presence_model::{Presence, SipUri};
use presence_mspres::{BatchSubscribe, Fault, Publish, StateBody, SubscribeAction};

use crate::settings::PublicationSettings;

/// Appends a category-publish body to `out`: the presence in each configured container,
/// with that container's version.
pub(crate) fn publish(
    out: &mut String,
    user: &SipUri,
    settings: &PublicationSettings,
    versions: &[u32],
    presence: &Presence,
) {
    let mut state = StateBody::user_state(u32::from(presence.availability.get()));
    state.state_type.clone_from(&settings.state_type);
    state.manual = settings.manual;
    for (lcid, text) in presence.activities.iter() {
        state = state.with_custom(lcid.get(), text.as_str());
    }
    let containers = settings
        .containers
        .iter()
        .copied()
        .zip(versions.iter().copied());
    Publish::write_state_in_containers(
        out,
        user.as_str(),
        settings.instance,
        settings.expire_type,
        &state,
        containers,
    );
}

/// Appends a category-publish body that removes the bridge's instance (category `state`,
/// the configured instance) from each configured container, with that container's
/// version, to `out`: `expireType="time" expires="0"` and no content.
pub(crate) fn removal(
    out: &mut String,
    user: &SipUri,
    settings: &PublicationSettings,
    versions: &[u32],
) {
    let containers: Vec<(u32, u32)> = settings
        .containers
        .iter()
        .copied()
        .zip(versions.iter().copied())
        .collect();
    Publish::remove_state_in_containers(user.as_str(), settings.instance, &containers)
        .write_xml(out);
}

/// A batched SUBSCRIBE body for the `state` category of `users`.
pub(crate) fn batch_subscribe(application: &str, id: &str, users: &[SipUri]) -> String {
    BatchSubscribe {
        uri: application.to_owned(),
        action: SubscribeAction::Subscribe,
        id: id.to_owned(),
        resources: users.iter().map(ToString::to_string).collect(),
        categories: vec!["state".to_owned()],
    }
    .to_xml()
}

/// The (index, curVersion) pairs of a `409` WrongDelta fault; `None` when the body is not
/// such a fault.
pub(crate) fn wrong_delta(body: &[u8]) -> Option<Vec<(u32, u32)>> {
    let fault = Fault::parse(body).ok()?;
    if !fault.is_wrong_delta() {
        return None;
    }
    Some(
        fault
            .operations
            .iter()
            .filter_map(|op| Some((op.index, op.cur_version?)))
            .collect(),
    )
}

/// One user's aggregated presence in a notification: the availability as received, and
/// the activity text (LCID 1033 first) or token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Update {
    pub(crate) user: SipUri,
    pub(crate) availability: u64,
    pub(crate) activity: Option<String>,
}

/// What a notification says: presence updates, and resources whose subscription ended.
#[derive(Debug, Default)]
pub(crate) struct Notification {
    pub(crate) updates: Vec<Update>,
    pub(crate) terminated: Vec<SipUri>,
}

/// Reads a NOTIFY/BENOTIFY body (single categories document or multipart/related batch).
pub(crate) fn notification(
    content_type: &str,
    body: &[u8],
) -> Result<Notification, presence_mspres::MsPresError> {
    let parsed = presence_mspres::parse_notification(content_type, body)?;
    let mut out = Notification::default();
    for categories in &parsed.categories {
        let Ok(user) = SipUri::new(&categories.uri) else {
            continue;
        };
        if let Some(state) = categories.aggregate_state()
            && let Some(availability) = state.availability
        {
            let activity = state
                .custom_text(1033)
                .map(str::to_owned)
                .or_else(|| state.custom.first().map(|(_, t)| t.clone()))
                .or_else(|| state.activity_token.clone());
            out.updates.push(Update {
                user,
                availability: u64::from(availability),
                activity,
            });
        }
    }
    out.terminated = parsed
        .terminated
        .iter()
        .filter_map(|uri| SipUri::new(uri).ok())
        .collect();
    Ok(out)
}
