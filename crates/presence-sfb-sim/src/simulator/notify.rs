//! Notification bodies and the in-dialog `NOTIFY` / `BENOTIFY` requests.

use presence_model::SipUri;
use presence_mspres::{Categories, Category, Notification, Rlmi, RlmiInstance, RlmiResource};
use presence_sip::{Method, Request};

use super::{DialogKey, SimEvent, Simulator};

/// `(Content-Type, body)` of a notification.
pub(super) type Body = (String, Vec<u8>);

/// The `Content-ID` (without angle brackets) of a user's part: the URI without its scheme.
fn cid(user: &SipUri) -> String {
    let uri = user.as_str();
    uri.split_once(':').map_or(uri, |(_, rest)| rest).to_owned()
}

impl Simulator {
    /// One user's categories: the aggregate state, or an empty `state` category when the
    /// user has none (what a removed instance looks like).
    fn categories_of(&self, user: &SipUri) -> Categories {
        let category = self.world.shown(user).map_or_else(
            || Category {
                name: "state".to_owned(),
                instance: Some(0),
                ..Category::default()
            },
            |shown| shown.category(),
        );
        Categories {
            uri: user.to_string(),
            categories: vec![category],
        }
    }

    fn boundary(&mut self) -> String {
        format!("=_sfbsim_{}", self.rng.hex(16))
    }

    /// Writes a batched body: an RLMI part listing `listed` (active, with a `cid` for
    /// those in `parts`) and `terminated` (terminated, reason `deactivated`), then one
    /// categories part per user of `parts`.
    fn batch(
        &mut self,
        key: &DialogKey,
        listed: &[SipUri],
        parts: &[SipUri],
        terminated: &[SipUri],
        full_state: bool,
    ) -> Option<Body> {
        let boundary = self.boundary();
        let dialog = self.dialogs.get_mut(key)?;
        dialog.rlmi_version = dialog.rlmi_version.wrapping_add(1);
        let instance =
            |user: &SipUri, state: &str, reason: Option<&str>, cid: Option<String>| RlmiResource {
                uri: user.to_string(),
                instances: vec![RlmiInstance {
                    id: dialog.resources.get(user).cloned().unwrap_or_default(),
                    state: state.to_owned(),
                    reason: reason.map(str::to_owned),
                    cid,
                }],
            };
        let mut resources: Vec<RlmiResource> = listed
            .iter()
            .map(|u| instance(u, "active", None, parts.contains(u).then(|| cid(u))))
            .collect();
        resources.extend(
            terminated
                .iter()
                .map(|u| instance(u, "terminated", Some("deactivated"), None)),
        );
        let rlmi = Rlmi {
            uri: dialog.list_uri.clone(),
            version: dialog.rlmi_version,
            full_state,
            resources,
        };
        let categories = parts.iter().map(|u| self.categories_of(u)).collect();
        match Notification::new(categories, Some(rlmi)).to_body(&boundary) {
            Ok(body) => Some(body),
            Err(error) => {
                self.event(SimEvent::Warning {
                    message: format!("cannot write a batched notification: {error}"),
                });
                None
            }
        }
    }

    /// The first notification of a new dialog and the users whose state it carries: for a
    /// single-user subscription that user's categories (no body when the user has no
    /// state); for a batch an RLMI part with the full list and one part per user that has
    /// a state.
    pub(super) fn initial_body(&mut self, key: &DialogKey) -> (Option<Body>, Vec<SipUri>) {
        let Some(dialog) = self.dialogs.get(key) else {
            return (None, Vec::new());
        };
        let listed: Vec<SipUri> = dialog.resources.keys().cloned().collect();
        let with_state: Vec<SipUri> = listed
            .iter()
            .filter(|u| self.world.shown(u).is_some())
            .cloned()
            .collect();
        if let [single] = listed.as_slice() {
            if with_state.is_empty() {
                return (None, Vec::new());
            }
            let body = self.categories_of(single).to_xml().into_bytes();
            return (
                Some((presence_mspres::content_type::CATEGORIES.to_owned(), body)),
                with_state,
            );
        }
        let body = self.batch(key, &listed, &with_state, &[], true);
        (body, with_state)
    }

    /// A notification of changes: one user's categories alone, several users batched.
    pub(super) fn update_body(&mut self, key: &DialogKey, users: &[SipUri]) -> Option<Body> {
        if let [single] = users {
            let body = self.categories_of(single).to_xml().into_bytes();
            return Some((presence_mspres::content_type::CATEGORIES.to_owned(), body));
        }
        self.batch(key, users, users, &[], false)
    }

    /// The notification that ends the subscription to one resource.
    pub(super) fn terminated_body(&mut self, key: &DialogKey, user: &SipUri) -> Option<Body> {
        self.batch(key, &[], &[], std::slice::from_ref(user), false)
    }

    /// Sends an in-dialog notification: `BENOTIFY` when negotiated and not `reliable`,
    /// otherwise `NOTIFY`.
    pub(super) fn send_notify(
        &mut self,
        key: &DialogKey,
        subscription_state: &str,
        body: Option<Body>,
        reliable: bool,
        users: &[SipUri],
        terminated: &[SipUri],
    ) {
        let branch = format!("z9hG4bK{}", self.rng.hex(16));
        let via = format!(
            "SIP/2.0/{} {};branch={branch}",
            self.config.via_transport, self.config.host
        );
        let contact = self.contact();
        let Some(dialog) = self.dialogs.get_mut(key) else {
            return;
        };
        dialog.cseq = dialog.cseq.wrapping_add(1);
        let method = if dialog.benotify && !reliable {
            Method::Benotify
        } else {
            Method::Notify
        };
        let conn = dialog.conn;
        let call_id = dialog.call_id.clone();
        let built = Request::new(method.clone(), dialog.target.as_str()).and_then(|r| {
            let r = r
                .header("Via", &via)?
                .header("Max-Forwards", "70")?
                .header("From", &dialog.our_from)?
                .header("To", &dialog.peer_from)?
                .header("Call-ID", &dialog.call_id)?
                .header("CSeq", format!("{} {method}", dialog.cseq))?
                .header("Contact", &contact)?
                .header("Event", "presence")?
                .header("Subscription-State", subscription_state)?;
            match body {
                Some((content_type, bytes)) => r.with_body(&content_type, bytes),
                None => Ok(r),
            }
        });
        match built {
            Ok(request) => {
                self.event(SimEvent::Notified {
                    conn,
                    call_id,
                    method: method.to_string(),
                    users: users.to_vec(),
                    terminated: terminated.to_vec(),
                });
                self.transmit(conn, request.to_bytes(), false);
            }
            Err(error) => self.event(SimEvent::Warning {
                message: format!("cannot build a {method} for Call-ID {call_id}: {error}"),
            }),
        }
    }
}
