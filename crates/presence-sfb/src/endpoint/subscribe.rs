//! The subscription set, split into batches; each batch is one SUBSCRIBE dialog.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use presence_model::SipUri;

/// A SUBSCRIBE dialog: Call-ID, our tag, the pool's tag once known, the last CSeq used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Dialog {
    pub(super) call_id: String,
    pub(super) local_tag: String,
    pub(super) remote_tag: Option<String>,
    pub(super) cseq: u32,
}

/// A SUBSCRIBE to send: for a new dialog (`dialog` is `None`) or a refresh within one
/// (`dialog` carries the CSeq to use).
#[derive(Debug)]
pub(super) struct Work {
    pub(super) batch: u64,
    pub(super) users: Vec<SipUri>,
    pub(super) dialog: Option<Dialog>,
}

#[derive(Debug)]
struct Batch {
    users: Vec<SipUri>,
    dialog: Option<Dialog>,
    queued: bool,
    failures: u32,
}

/// The subscription set and its batches.
#[derive(Debug)]
pub(super) struct Subscriptions {
    batch_size: usize,
    desired: BTreeSet<SipUri>,
    unbatched: BTreeSet<SipUri>,
    batches: BTreeMap<u64, Batch>,
    by_user: HashMap<SipUri, u64>,
    by_call_id: HashMap<String, u64>,
    due: VecDeque<u64>,
    next_batch: u64,
}

impl Subscriptions {
    pub(super) fn new(batch_size: usize) -> Self {
        Subscriptions {
            batch_size: batch_size.max(1),
            desired: BTreeSet::new(),
            unbatched: BTreeSet::new(),
            batches: BTreeMap::new(),
            by_user: HashMap::new(),
            by_call_id: HashMap::new(),
            due: VecDeque::new(),
            next_batch: 0,
        }
    }

    pub(super) fn users(&self) -> impl Iterator<Item = &SipUri> {
        self.desired.iter()
    }

    /// Whether `user` is in the subscription set.
    pub(super) fn contains(&self, user: &SipUri) -> bool {
        self.desired.contains(user)
    }

    /// Adds users; those not yet subscribed wait for a batch.
    pub(super) fn add(&mut self, users: impl IntoIterator<Item = SipUri>) {
        for user in users {
            if self.desired.insert(user.clone()) {
                self.unbatched.insert(user);
            }
        }
    }

    /// Removes users. Returns the dialogs to end: a batch left empty ends; a batch that
    /// keeps users is made again as a new dialog without the removed ones.
    pub(super) fn remove(&mut self, users: impl IntoIterator<Item = SipUri>) -> Vec<Dialog> {
        let mut touched = BTreeSet::new();
        for user in users {
            if !self.desired.remove(&user) {
                continue;
            }
            self.unbatched.remove(&user);
            if let Some(batch) = self.by_user.remove(&user) {
                if let Some(b) = self.batches.get_mut(&batch) {
                    b.users.retain(|u| *u != user);
                }
                touched.insert(batch);
            }
        }
        let mut ended = Vec::new();
        for batch in touched {
            let Some(b) = self.batches.get_mut(&batch) else {
                continue;
            };
            if let Some(mut dialog) = b.dialog.take() {
                self.by_call_id.remove(&dialog.call_id);
                dialog.cseq += 1;
                ended.push(dialog);
            }
            if b.users.is_empty() {
                self.batches.remove(&batch);
            } else {
                self.mark_due(batch);
            }
        }
        ended
    }

    fn mark_due(&mut self, batch: u64) {
        if let Some(b) = self.batches.get_mut(&batch)
            && !b.queued
        {
            b.queued = true;
            self.due.push_back(batch);
        }
    }

    /// The next SUBSCRIBE to send: batches due (refresh or re-subscription) first, then new
    /// batches for users waiting for one.
    pub(super) fn next_work(&mut self) -> Option<Work> {
        if self.due.is_empty() && !self.unbatched.is_empty() {
            self.next_batch += 1;
            let batch = self.next_batch;
            let size = self.batch_size.min(self.unbatched.len());
            let mut users = Vec::with_capacity(size);
            users.extend((0..size).map_while(|_| self.unbatched.pop_first()));
            for user in &users {
                self.by_user.insert(user.clone(), batch);
            }
            self.batches.insert(
                batch,
                Batch {
                    users,
                    dialog: None,
                    queued: false,
                    failures: 0,
                },
            );
            self.mark_due(batch);
        }
        let batch = self.due.pop_front()?;
        let b = self.batches.get_mut(&batch)?;
        b.queued = false;
        let dialog = b.dialog.as_mut().map(|d| {
            d.cseq += 1;
            d.clone()
        });
        Some(Work {
            batch,
            users: b.users.clone(),
            dialog,
        })
    }

    /// A SUBSCRIBE for `batch` went out on this Call-ID.
    pub(super) fn sent(&mut self, batch: u64, call_id: String, local_tag: String, cseq: u32) {
        if let Some(b) = self.batches.get_mut(&batch)
            && b.dialog.is_none()
        {
            self.by_call_id.insert(call_id.clone(), batch);
            b.dialog = Some(Dialog {
                call_id,
                local_tag,
                remote_tag: None,
                cseq,
            });
        }
    }

    /// The pool accepted the SUBSCRIBE: `Some(true)` when it made a new dialog,
    /// `Some(false)` for a refresh, `None` if the batch is gone meanwhile.
    pub(super) fn accepted(&mut self, batch: u64, remote_tag: Option<String>) -> Option<bool> {
        let b = self.batches.get_mut(&batch)?;
        b.failures = 0;
        let dialog = b.dialog.as_mut()?;
        let new = dialog.remote_tag.is_none();
        if let Some(tag) = remote_tag {
            dialog.remote_tag = Some(tag);
        }
        Some(new)
    }

    /// The SUBSCRIBE failed: the next attempt makes a new dialog. Returns the attempt count.
    pub(super) fn failed(&mut self, batch: u64) -> u32 {
        self.restart(batch);
        self.batches.get_mut(&batch).map_or(1, |b| {
            b.failures += 1;
            b.failures
        })
    }

    /// Forget the batch's dialog: the next SUBSCRIBE for it starts a new one.
    pub(super) fn restart(&mut self, batch: u64) {
        if let Some(b) = self.batches.get_mut(&batch)
            && let Some(dialog) = b.dialog.take()
        {
            self.by_call_id.remove(&dialog.call_id);
        }
    }

    /// A timer for the batch fired: refresh it (or subscribe again).
    pub(super) fn due(&mut self, batch: u64) {
        self.mark_due(batch);
    }

    pub(super) fn batch_of_dialog(&self, call_id: &str) -> Option<u64> {
        self.by_call_id.get(call_id).copied()
    }

    pub(super) fn batch_users(&self, batch: u64) -> Vec<SipUri> {
        self.batches
            .get(&batch)
            .map(|b| b.users.clone())
            .unwrap_or_default()
    }

    /// The pool ended the subscription of these resources (rlmi `state="terminated"`): they
    /// leave their batches and wait for a new one. Returns how many moved.
    pub(super) fn resources_terminated(&mut self, uris: &[SipUri]) -> usize {
        let mut moved = 0;
        for user in uris {
            let Some(batch) = self.by_user.remove(user) else {
                continue;
            };
            if let Some(b) = self.batches.get_mut(&batch) {
                b.users.retain(|u| u != user);
                if b.users.is_empty() {
                    if let Some(dialog) = b.dialog.take() {
                        self.by_call_id.remove(&dialog.call_id);
                    }
                    self.batches.remove(&batch);
                }
            }
            self.unbatched.insert(user.clone());
            moved += 1;
        }
        moved
    }

    /// A new connection (or the loss of one): every dialog is gone; every user of the set
    /// waits for a batch again.
    pub(super) fn reset(&mut self) {
        self.batches.clear();
        self.by_user.clear();
        self.by_call_id.clear();
        self.due.clear();
        self.unbatched = self.desired.clone();
    }

    #[cfg(test)]
    pub(super) fn batch_count(&self) -> usize {
        self.batches.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(n: usize) -> Vec<SipUri> {
        (0..n)
            .map(|i| SipUri::new(&format!("sip:u{i:04}@x.com")).unwrap())
            .collect()
    }

    #[test]
    fn batches_of_the_configured_size() {
        let mut s = Subscriptions::new(100);
        s.add(users(250));
        let work: Vec<Work> = std::iter::from_fn(|| s.next_work()).collect();
        assert_eq!(
            work.iter().map(|w| w.users.len()).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert!(work.iter().all(|w| w.dialog.is_none()));
        // Adding known users changes nothing.
        s.add(users(10));
        assert!(s.next_work().is_none());
    }

    #[test]
    fn refresh_reuses_the_dialog_with_the_next_cseq() {
        let mut s = Subscriptions::new(10);
        s.add(users(3));
        let w = s.next_work().unwrap();
        s.sent(w.batch, "call".into(), "tag".into(), 1);
        assert_eq!(s.accepted(w.batch, Some("remote".into())), Some(true));
        assert_eq!(s.batch_of_dialog("call"), Some(w.batch));
        s.due(w.batch);
        let refresh = s.next_work().unwrap();
        let dialog = refresh.dialog.unwrap();
        assert_eq!(
            s.accepted(w.batch, Some("remote".into())),
            Some(false),
            "a refresh"
        );
        assert_eq!(
            (
                dialog.call_id.as_str(),
                dialog.cseq,
                dialog.remote_tag.as_deref()
            ),
            ("call", 2, Some("remote"))
        );
        // A failure forgets the dialog.
        assert_eq!(s.failed(w.batch), 1);
        assert_eq!(s.batch_of_dialog("call"), None);
        s.due(w.batch);
        assert!(s.next_work().unwrap().dialog.is_none());
    }

    #[test]
    fn removing_users_ends_or_remakes_dialogs() {
        let mut s = Subscriptions::new(2);
        let u = users(4);
        s.add(u.clone());
        for _ in 0..2 {
            let w = s.next_work().unwrap();
            s.sent(w.batch, format!("call{}", w.batch), "t".into(), 1);
            s.accepted(w.batch, Some("r".into()));
        }
        // Remove both users of the first batch and one of the second.
        let ended = s.remove([u[0].clone(), u[1].clone(), u[2].clone()]);
        assert_eq!(ended.len(), 2);
        assert!(ended.iter().all(|d| d.cseq == 2));
        assert_eq!(s.batch_count(), 1);
        let w = s.next_work().unwrap();
        assert_eq!(w.users, vec![u[3].clone()]);
        assert!(w.dialog.is_none(), "a new dialog without the removed users");
    }

    #[test]
    fn terminated_resources_and_reset_resubscribe() {
        let mut s = Subscriptions::new(10);
        let u = users(3);
        s.add(u.clone());
        let w = s.next_work().unwrap();
        s.sent(w.batch, "c".into(), "t".into(), 1);
        assert_eq!(s.resources_terminated(&[u[1].clone()]), 1);
        let again = s.next_work().unwrap();
        assert_eq!(again.users, vec![u[1].clone()]);
        s.reset();
        let all: Vec<SipUri> = std::iter::from_fn(|| s.next_work())
            .flat_map(|w| w.users)
            .collect();
        assert_eq!(all, u);
    }
}
