//! proptest strategies for every body type. Texts mix markup characters (`<&>"'`), white
//! space (tab, line feed, carriage return) and Unicode from several scripts.

use presence_mspres::{
    BatchSubscribe, Categories, Category, ContentType, ExpireType, Fault, FaultOperation,
    Multipart, Notification, Part, Publication, Publish, Rlmi, RlmiInstance, RlmiResource,
    StateBody, SubscribeAction,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Any text XML 1.0 can carry: printable characters of every script (`\PC` excludes
/// control, unassigned and private-use characters, so also U+FFFE/U+FFFF), markup
/// characters and the three white space controls.
pub(crate) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z <&>\"'\t\n\r]{0,12}",
        "[\\PC\t\n\r<&>\"']{0,12}",
        Just(String::new()),
    ]
}

/// A text with no leading or trailing XML white space (for trimmed fields).
pub(crate) fn trimmed_text() -> impl Strategy<Value = String> {
    text().prop_map(|s| s.trim_matches([' ', '\t', '\r', '\n']).to_owned())
}

/// A printable single-line text (for values that end up in multipart headers).
pub(crate) fn line_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9@.:_<&>\"'é€😀-]{1,16}"
}

pub(crate) fn state_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("userState".to_owned()),
        Just("aggregateState".to_owned()),
        Just(String::new()),
        "[A-Za-z_][A-Za-z0-9_.-]{0,10}",
    ]
}

pub(crate) fn state() -> impl Strategy<Value = StateBody> {
    (
        state_type(),
        any::<bool>(),
        option::of(any::<u32>()),
        option::of(text()),
        vec((any::<u32>(), text()), 0..4),
        option::of(text()),
    )
        .prop_map(
            |(state_type, manual, availability, activity_token, custom, last_active)| StateBody {
                state_type,
                manual,
                availability,
                activity_token,
                custom,
                last_active,
            },
        )
}

pub(crate) fn expire_type() -> impl Strategy<Value = ExpireType> {
    prop_oneof![
        Just(ExpireType::Static),
        Just(ExpireType::User),
        Just(ExpireType::Endpoint),
        Just(ExpireType::Time),
    ]
}

pub(crate) fn publish() -> impl Strategy<Value = Publish> {
    let publication = (
        text(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        expire_type(),
        option::of(any::<u32>()),
        option::of(state()),
    )
        .prop_map(
            |(category, instance, container, version, expire_type, expires, state)| Publication {
                category,
                instance,
                container,
                version,
                expire_type,
                expires,
                state,
            },
        );
    (text(), vec(publication, 0..4)).prop_map(|(uri, publications)| Publish { uri, publications })
}

pub(crate) fn fault() -> impl Strategy<Value = Fault> {
    let operation = (
        any::<u32>(),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
    )
        .prop_map(|(index, version, cur_version)| FaultOperation {
            index,
            version,
            cur_version,
        });
    (trimmed_text(), option::of(text()), vec(operation, 0..4)).prop_map(
        |(code, string, operations)| Fault {
            code,
            string,
            operations,
        },
    )
}

pub(crate) fn batch_subscribe() -> impl Strategy<Value = BatchSubscribe> {
    (
        text(),
        prop_oneof![
            Just(SubscribeAction::Subscribe),
            Just(SubscribeAction::Unsubscribe)
        ],
        text(),
        vec(text(), 0..5),
        vec(text(), 0..3),
    )
        .prop_map(|(uri, action, id, resources, categories)| BatchSubscribe {
            uri,
            action,
            id,
            resources,
            categories,
        })
}

fn category() -> impl Strategy<Value = Category> {
    (
        text(),
        option::of(any::<u64>()),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(state()),
    )
        .prop_map(
            |(name, instance, container, publish_time, state)| Category {
                name,
                instance,
                container,
                publish_time,
                state,
            },
        )
}

pub(crate) fn categories_with_uri(
    uri: impl Strategy<Value = String>,
) -> impl Strategy<Value = Categories> {
    (uri, vec(category(), 0..4)).prop_map(|(uri, categories)| Categories { uri, categories })
}

pub(crate) fn categories() -> impl Strategy<Value = Categories> {
    categories_with_uri(text())
}

fn instance(text: BoxedStrategy<String>) -> impl Strategy<Value = RlmiInstance> {
    (
        text.clone(),
        prop_oneof![
            Just("active".to_owned()),
            Just("pending".to_owned()),
            Just("terminated".to_owned()),
            text.clone()
        ],
        option::of(text.clone()),
        option::of(text),
    )
        .prop_map(|(id, state, reason, cid)| RlmiInstance {
            id,
            state,
            reason,
            cid,
        })
}

pub(crate) fn rlmi_with(text: BoxedStrategy<String>) -> impl Strategy<Value = Rlmi> {
    let resource = (text.clone(), vec(instance(text.clone()), 0..3))
        .prop_map(|(uri, instances)| RlmiResource { uri, instances });
    (text, any::<u32>(), any::<bool>(), vec(resource, 0..4)).prop_map(
        |(uri, version, full_state, resources)| Rlmi {
            uri,
            version,
            full_state,
            resources,
        },
    )
}

pub(crate) fn rlmi() -> impl Strategy<Value = Rlmi> {
    rlmi_with(text().boxed())
}

/// A notification whose URIs and content IDs can go into multipart headers.
pub(crate) fn notification() -> impl Strategy<Value = Notification> {
    (
        vec(categories_with_uri(line_text()), 0..4),
        option::of(rlmi_with(line_text().boxed())),
    )
        .prop_map(|(categories, rlmi)| Notification::new(categories, rlmi))
}

pub(crate) fn boundary() -> impl Strategy<Value = String> {
    "[A-Za-z0-9'()+_,./:=?-]([A-Za-z0-9'()+_,./:=? -]{0,30}[A-Za-z0-9'()+_,./:=?-])?"
}

pub(crate) fn multipart() -> impl Strategy<Value = Multipart> {
    let header = (
        "[A-Za-z][A-Za-z0-9-]{0,12}",
        prop_oneof![Just(String::new()), "[!-~]([ -~]{0,16}[!-~])?"],
    );
    let part = (vec(header, 0..4), vec(any::<u8>(), 0..64))
        .prop_map(|(headers, body)| Part { headers, body });
    vec(part, 1..5).prop_map(|parts| Multipart { parts })
}

pub(crate) fn content_type() -> impl Strategy<Value = ContentType> {
    (
        "[a-z][a-z0-9.+-]{0,10}",
        "[a-z][a-z0-9.+-]{0,10}",
        vec(("[a-z][a-z0-9-]{0,8}", "[ -~]{0,12}"), 0..4),
    )
        .prop_map(|(kind, subtype, params)| {
            let mut unique: Vec<(String, String)> = Vec::new();
            for (name, value) in params {
                if !unique.iter().any(|(n, _)| *n == name) {
                    unique.push((name, value));
                }
            }
            ContentType {
                media_type: format!("{kind}/{subtype}"),
                params: unique,
            }
        })
}
