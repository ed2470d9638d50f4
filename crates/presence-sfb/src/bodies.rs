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
    let mut out = Notification {
        updates: Vec::with_capacity(parsed.categories.len()),
        terminated: Vec::new(),
    };
    for mut categories in parsed.categories {
        // `Categories::aggregate_state`, taken out of the parsed body (its texts are moved,
        // not copied).
        let Some(state) = categories
            .categories
            .iter_mut()
            .filter(|c| c.name == "state")
            .filter_map(|c| c.state.as_mut())
            .find(|s| s.is_aggregate())
        else {
            continue;
        };
        let Some(availability) = state.availability else {
            continue;
        };
        let Ok(user) = SipUri::new(&categories.uri) else {
            continue;
        };
        let mut custom = std::mem::take(&mut state.custom);
        let activity = match custom.iter().position(|(lcid, _)| *lcid == 1033) {
            Some(i) => Some(custom.swap_remove(i).1),
            None if !custom.is_empty() => Some(custom.swap_remove(0).1),
            None => state.activity_token.take(),
        };
        out.updates.push(Update {
            user,
            availability: u64::from(availability),
            activity,
        });
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
    fn notifications_give_the_aggregate_state_and_its_first_text() {
        use presence_mspres::{Categories, Category};
        let user = |uri: &str, states: Vec<(&str, StateBody)>| Categories {
            uri: uri.to_owned(),
            categories: states
                .into_iter()
                .map(|(name, state)| Category {
                    name: name.to_owned(),
                    state: Some(state),
                    ..Category::default()
                })
                .collect(),
        };
        let aggregate = StateBody::aggregate_state;
        let users = vec![
            user(
                "sip:A1@contoso.com",
                vec![(
                    "state",
                    aggregate(3500)
                        .with_custom(3082, "dos")
                        .with_custom(1033, "one")
                        .with_custom(1033, "again")
                        .with_activity_token("busy"),
                )],
            ),
            user(
                "sip:a2@contoso.com",
                vec![(
                    "state",
                    aggregate(6500)
                        .with_custom(3082, "dos")
                        .with_custom(1036, "un")
                        .with_activity_token("away"),
                )],
            ),
            user(
                "sip:a3@contoso.com",
                vec![("state", aggregate(18000).with_activity_token("off"))],
            ),
            user("sip:a4@contoso.com", vec![("state", aggregate(3500))]),
            user(
                "sip:a5@contoso.com",
                vec![
                    ("note", aggregate(4500)),
                    ("state", StateBody::user_state(7001)),
                    (
                        "state",
                        StateBody {
                            availability: None,
                            ..aggregate(0)
                        },
                    ),
                    ("state", aggregate(9500).with_custom(1, "second")),
                ],
            ),
            user("not a uri", vec![("state", aggregate(3500))]),
            user(
                "sip:a7@contoso.com",
                vec![("state", StateBody::user_state(3500))],
            ),
        ];
        let (content_type, body) = presence_mspres::Notification::new(users, None)
            .to_body("b")
            .expect("writable");
        let read = notification(&content_type, &body).expect("valid");
        let expected = [
            ("sip:a1@contoso.com", 3500, Some("one")),
            ("sip:a2@contoso.com", 6500, Some("dos")),
            ("sip:a3@contoso.com", 18000, Some("off")),
            ("sip:a4@contoso.com", 3500, None),
        ];
        assert_eq!(
            read.updates,
            expected
                .iter()
                .map(|&(uri, availability, activity)| Update {
                    user: SipUri::new(uri).unwrap(),
                    availability,
                    activity: activity.map(str::to_owned),
                })
                .collect::<Vec<_>>()
        );
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
