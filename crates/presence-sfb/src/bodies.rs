//! The MS-PRES bodies the endpoint writes and reads, on top of `presence-mspres`.

use presence_model::{Presence, SipUri};
use presence_mspres::{BatchSubscribe, Fault, Publish, StateBody, SubscribeAction};

use crate::settings::PublicationSettings;

/// Appends a category-publish body to `out`: the presence in each configured container,
/// with that container's version. `state` is scratch space, overwritten (its strings are
/// reused from one body to the next).
pub(crate) fn publish(
    out: &mut String,
    user: &SipUri,
    settings: &PublicationSettings,
    versions: &[u32],
    presence: &Presence,
    state: &mut StateBody,
) {
    set_state(state, settings, presence);
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
        state,
        containers,
    );
}

/// Makes `state` the state published for `presence`: `StateBody::user_state` with the
/// settings' type and `manual`, and the activity texts; every field is written.
fn set_state(state: &mut StateBody, settings: &PublicationSettings, presence: &Presence) {
    let StateBody {
        state_type,
        manual,
        availability,
        activity_token,
        custom,
        last_active,
    } = state;
    state_type.clone_from(&settings.state_type);
    *manual = settings.manual;
    *availability = Some(u32::from(presence.availability.get()));
    *activity_token = None;
    *last_active = None;
    custom.truncate(presence.activities.len());
    for (i, (lcid, text)) in presence.activities.iter().enumerate() {
        match custom.get_mut(i) {
            Some((l, t)) => {
                *l = lcid.get();
                text.as_str().clone_into(t);
            }
            None => custom.push((lcid.get(), text.as_str().to_owned())),
        }
    }
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

#[cfg(test)]
mod tests {
    use presence_model::{Activities, ActivityText, Availability, Lcid};

    use super::*;

    fn presence(availability: u32, texts: &[(u32, &str)]) -> Presence {
        Presence {
            availability: Availability::new(availability).unwrap(),
            activities: Activities::new(
                texts
                    .iter()
                    .map(|&(lcid, text)| (Lcid::new(lcid), ActivityText::new(text)))
                    .collect(),
            )
            .unwrap(),
        }
    }

    #[test]
    fn the_scratch_state_is_the_state_built_afresh() {
        let mut settings = PublicationSettings::default();
        let mut state = StateBody {
            activity_token: Some("left over".to_owned()),
            last_active: Some("left over".to_owned()),
            ..StateBody::default()
        };
        for (machine, p) in [
            (
                false,
                presence(3500, &[(1033, "one"), (3082, "dos"), (1049, "три")]),
            ),
            (true, presence(6500, &[(1036, "un")])),
            (false, presence(18000, &[])),
            (
                true,
                presence(
                    7001,
                    &[(1033, "a much longer text than before"), (1031, "b")],
                ),
            ),
        ] {
            settings.manual = !machine;
            settings.state_type = if machine { "machineState" } else { "userState" }.to_owned();
            let mut fresh = StateBody::user_state(u32::from(p.availability.get()));
            fresh.state_type.clone_from(&settings.state_type);
            fresh.manual = settings.manual;
            for (lcid, text) in p.activities.iter() {
                fresh = fresh.with_custom(lcid.get(), text.as_str());
            }
            set_state(&mut state, &settings, &p);
            assert_eq!(state, fresh);
        }
    }
}
