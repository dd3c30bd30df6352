//! The duplicate index: open leads and customers by normalised e-mail
//! address, phone number and name, kept in memory by following the log.
//!
//! Rebuilt from the log at every start (a subscription from position 0 that
//! turns live once caught up), so it needs no storage of its own and cannot
//! disagree with the log for long. Values are already normalised in the
//! events (the contact input rule runs before anything is recorded), so
//! matching is plain equality; only names are compared without case.
//!
//! Answers are read-your-writes: [`DuplicateIndex::wait_until`] waits until
//! every relevant event below a log position has been applied.

use kizuna_domain::event::DomainEvent as _;
use kizuna_domain::lead::LeadEvent;
use kizuna_domain::{Upcasters, pb};
use kizuna_eventlog::{EventFilter, EventStore, RecordedEvent, SubscribeFrom, SubscriptionItem};
use prost::Message as _;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Who may be the same person: an open lead or a customer. Leads order
/// before customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Party {
    /// An open lead.
    Lead(Uuid),
    /// A customer.
    Customer(Uuid),
}

/// A value two parties can share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchField {
    /// The e-mail address.
    Email,
    /// The phone number.
    Phone,
    /// Family and given name together.
    Name,
}

/// One party that shares at least one value with the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Who.
    pub party: Party,
    /// What it shares, in [`MatchField`] order.
    pub matched: Vec<MatchField>,
    /// Its contact data as indexed.
    pub contact: pb::ContactData,
}

/// Why the index cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// It did not reach the wanted position in time.
    #[error(
        "the duplicate index has not caught up with log position {wanted} within {waited:?} (it is at {applied})"
    )]
    Behind {
        /// The position waited for.
        wanted: u64,
        /// The position applied when giving up.
        applied: u64,
        /// How long it waited.
        waited: Duration,
    },
    /// Its subscription ended (server shutting down, or the log failed).
    #[error("the duplicate index stopped following the log")]
    Stopped,
    /// The log could not be asked what is pending.
    #[error("reading the log: {0}")]
    Store(#[from] kizuna_eventlog::StoreError),
}

/// The event types the index reads; everything else is filtered out by the
/// subscription itself.
const INDEXED_TYPES: [&str; 9] = [
    "lead.captured",
    "lead.contact_updated",
    "lead.duplicate_absorbed",
    "lead.merged",
    "lead.converted",
    "customer.registered",
    "customer.contact_updated",
    "customer.merged",
    "customer.merge_undone",
];

fn filter() -> EventFilter {
    EventFilter {
        categories: vec!["lead".into(), "customer".into()],
        event_types: INDEXED_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        customer_id: None,
    }
}

/// The index, shared by the service's handlers. Cheap to clone; the task
/// that feeds it stops when the last clone is dropped.
#[derive(Clone)]
pub struct DuplicateIndex {
    data: Arc<RwLock<Index>>,
    applied: watch::Receiver<u64>,
    store: Arc<dyn EventStore>,
}

impl std::fmt::Debug for DuplicateIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuplicateIndex")
            .field("applied", &*self.applied.borrow())
            .finish_non_exhaustive()
    }
}

impl DuplicateIndex {
    /// Starts following `store` from position 0 on a spawned task. Must be
    /// called inside a tokio runtime.
    pub fn spawn(store: Arc<dyn EventStore>, upcasters: Upcasters) -> Self {
        Self::spawn_with_task(store, upcasters).0
    }

    /// [`DuplicateIndex::spawn`], also returning the task, so that a server
    /// can stop it and know that it no longer holds the store.
    pub fn spawn_with_task(
        store: Arc<dyn EventStore>,
        upcasters: Upcasters,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let data = Arc::new(RwLock::new(Index::default()));
        let (tx, rx) = watch::channel(0);
        let task = tokio::spawn(follow(store.clone(), upcasters, data.clone(), tx));
        (
            Self {
                data,
                applied: rx,
                store,
            },
            task,
        )
    }

    /// Every position below the returned one has been applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until every indexed event below `position` is applied, at most
    /// `limit`.
    pub async fn wait_until(&self, position: u64, limit: Duration) -> Result<(), IndexError> {
        let mut applied = self.applied.clone();
        let caught_up = async {
            loop {
                let at = *applied.borrow_and_update();
                if at >= position {
                    return Ok(());
                }
                // The subscription only reports positions it delivers, so
                // after the last indexed event it can stay below the head
                // for good: ask the log whether anything indexed is pending.
                let pending = self.store.read_all(at, &filter(), 1).await?;
                if pending
                    .events
                    .first()
                    .is_none_or(|e| e.global_position >= position)
                {
                    return Ok(());
                }
                applied.changed().await.map_err(|_| IndexError::Stopped)?;
            }
        };
        match tokio::time::timeout(limit, caught_up).await {
            Ok(result) => result,
            Err(_) => Err(IndexError::Behind {
                wanted: position,
                applied: self.applied(),
                waited: limit,
            }),
        }
    }

    /// The parties sharing the e-mail address, the phone number, or the
    /// family and given name of `contact` (already normalised), except
    /// `exclude`; most matched fields first, then leads before customers, then
    /// by id.
    pub fn find(&self, contact: &pb::ContactData, exclude: Option<Party>) -> Vec<Candidate> {
        self.data
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .find(contact, exclude)
    }
}

/// The values a party can be found by.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    email: Option<String>,
    phone: Option<String>,
    name: Option<String>,
}

impl Keys {
    pub(crate) fn of(contact: &pb::ContactData) -> Self {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Self {
            email: non_empty(&contact.email),
            phone: non_empty(&contact.phone),
            // A lone given or family name is shared by too many people to
            // mean anything.
            name: (!contact.family_name.is_empty() && !contact.given_name.is_empty()).then(|| {
                format!(
                    "{}\u{1f}{}",
                    contact.family_name.to_lowercase(),
                    contact.given_name.to_lowercase()
                )
            }),
        }
    }

    /// Whether there is anything to search by.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Default)]
struct Index {
    parties: HashMap<Party, pb::ContactData>,
    by_email: HashMap<String, BTreeSet<Party>>,
    by_phone: HashMap<String, BTreeSet<Party>>,
    by_name: HashMap<String, BTreeSet<Party>>,
    /// Converted or merged leads: never indexed again.
    closed_leads: HashSet<Uuid>,
    /// Customers merged into another, with their contact data, out of the
    /// index until the merge is undone.
    merged_customers: HashMap<Uuid, pb::ContactData>,
}

impl Index {
    fn find(&self, contact: &pb::ContactData, exclude: Option<Party>) -> Vec<Candidate> {
        let keys = Keys::of(contact);
        let mut matched: BTreeMap<Party, BTreeSet<MatchField>> = BTreeMap::new();
        for (field, key, map) in [
            (MatchField::Email, &keys.email, &self.by_email),
            (MatchField::Phone, &keys.phone, &self.by_phone),
            (MatchField::Name, &keys.name, &self.by_name),
        ] {
            let Some(key) = key else { continue };
            for party in map.get(key).into_iter().flatten() {
                if Some(*party) != exclude {
                    matched.entry(*party).or_default().insert(field);
                }
            }
        }
        let mut candidates: Vec<Candidate> = matched
            .into_iter()
            .map(|(party, fields)| Candidate {
                party,
                matched: fields.into_iter().collect(),
                contact: self.parties.get(&party).cloned().unwrap_or_default(),
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.matched
                .len()
                .cmp(&a.matched.len())
                .then(a.party.cmp(&b.party))
        });
        candidates
    }

    fn upsert(&mut self, party: Party, contact: pb::ContactData) {
        match party {
            Party::Lead(id) if self.closed_leads.contains(&id) => return,
            Party::Customer(id) if self.merged_customers.contains_key(&id) => {
                self.merged_customers.insert(id, contact);
                return;
            }
            _ => {}
        }
        self.remove(party);
        let keys = Keys::of(&contact);
        for (key, map) in [
            (keys.email, &mut self.by_email),
            (keys.phone, &mut self.by_phone),
            (keys.name, &mut self.by_name),
        ] {
            if let Some(key) = key {
                map.entry(key).or_default().insert(party);
            }
        }
        self.parties.insert(party, contact);
    }

    fn remove(&mut self, party: Party) {
        let Some(old) = self.parties.remove(&party) else {
            return;
        };
        let keys = Keys::of(&old);
        for (key, map) in [
            (keys.email, &mut self.by_email),
            (keys.phone, &mut self.by_phone),
            (keys.name, &mut self.by_name),
        ] {
            if let Some(key) = key
                && let Some(set) = map.get_mut(&key)
            {
                set.remove(&party);
                if set.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }

    fn close_lead(&mut self, id: Uuid) {
        self.remove(Party::Lead(id));
        self.closed_leads.insert(id);
    }

    /// Applies one event. An event the index cannot read is skipped with a
    /// warning: one bad payload must not stop duplicate detection for all.
    fn apply(&mut self, event: &RecordedEvent, upcasters: &Upcasters) {
        let skip = |why: &dyn std::fmt::Display| {
            tracing::warn!(
                position = event.global_position,
                stream = %event.stream,
                event_type = %event.event_type,
                "duplicate index skips an event: {why}"
            );
        };
        match event.category() {
            "lead" => {
                let decoded = match LeadEvent::decode(
                    &event.event_type,
                    event.schema_version,
                    &event.payload,
                    upcasters,
                ) {
                    Ok(Some(e)) => e,
                    Ok(None) => return,
                    Err(e) => return skip(&e),
                };
                let (lead_id, change) = match &decoded {
                    LeadEvent::Captured(e) => (&e.lead_id, Some(e.contact.clone())),
                    LeadEvent::ContactUpdated(e) => (&e.lead_id, Some(e.contact.clone())),
                    LeadEvent::DuplicateAbsorbed(e) => (&e.lead_id, Some(e.contact.clone())),
                    LeadEvent::Converted(e) => (&e.lead_id, None),
                    LeadEvent::Merged(e) => (&e.lead_id, None),
                    LeadEvent::Scored(_) | LeadEvent::StatusChanged(_) => return,
                };
                let Ok(id) = Uuid::try_parse(lead_id) else {
                    return skip(&format!("lead id {lead_id:?} is not a UUID"));
                };
                match change {
                    Some(contact) => self.upsert(Party::Lead(id), contact.unwrap_or_default()),
                    None => self.close_lead(id),
                }
            }
            "customer" if event.event_type == "customer.merged" => {
                match pb::CustomerMerged::decode(&event.payload[..]) {
                    Ok(e) => match Uuid::try_parse(&e.customer_id) {
                        Ok(id) => {
                            let party = Party::Customer(id);
                            if let Some(contact) = self.parties.get(&party).cloned() {
                                self.remove(party);
                                self.merged_customers.insert(id, contact);
                            }
                        }
                        Err(_) => skip(&format!("customer id {:?} is not a UUID", e.customer_id)),
                    },
                    Err(e) => skip(&e),
                }
            }
            "customer" if event.event_type == "customer.merge_undone" => {
                match pb::CustomerMergeUndone::decode(&event.payload[..]) {
                    // The event is on both streams; the source's copy brings it back.
                    Ok(e) if e.customer_id == e.source_customer_id => {
                        if let Ok(id) = Uuid::try_parse(&e.customer_id)
                            && let Some(contact) = self.merged_customers.remove(&id)
                        {
                            self.upsert(Party::Customer(id), contact);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => skip(&e),
                }
            }
            "customer" => {
                let decoded = match event.event_type.as_str() {
                    "customer.registered" => pb::CustomerRegistered::decode(&event.payload[..])
                        .map(|e| (e.customer_id, e.contact)),
                    "customer.contact_updated" => {
                        pb::CustomerContactUpdated::decode(&event.payload[..])
                            .map(|e| (e.customer_id, e.contact))
                    }
                    _ => return,
                };
                let (customer_id, contact) = match decoded {
                    Ok(d) => d,
                    Err(e) => return skip(&e),
                };
                let Ok(id) = Uuid::try_parse(&customer_id) else {
                    return skip(&format!("customer id {customer_id:?} is not a UUID"));
                };
                self.upsert(Party::Customer(id), contact.unwrap_or_default());
            }
            _ => {}
        }
    }
}

/// The index's task: subscribe, apply, publish the applied position. Ends
/// when the subscription does or when nobody holds the index any more.
async fn follow(
    store: Arc<dyn EventStore>,
    upcasters: Upcasters,
    data: Arc<RwLock<Index>>,
    applied: watch::Sender<u64>,
) {
    // A subscription can end under us (a remote log restarting, the network);
    // the index then resumes from what it applied, after a growing pause, so
    // duplicate search recovers on its own. It stops for good only when the
    // service that owns the index is gone.
    let mut backoff = RESUBSCRIBE_MIN;
    loop {
        let from = *applied.borrow();
        match store
            .subscribe(SubscribeFrom::Position(from), filter())
            .await
        {
            Ok(subscription) => {
                let failed = apply_until_end(subscription, &upcasters, &data, &applied).await;
                match failed {
                    None => return,
                    // Also how every shutdown ends it, so not a warning.
                    Some(e) => tracing::debug!(
                        "duplicate index subscription ended ({e}); resuming from position {} in {backoff:?}",
                        *applied.borrow()
                    ),
                }
            }
            Err(e) => {
                tracing::warn!(
                    "duplicate index cannot subscribe to the log ({e}); retrying in {backoff:?}"
                )
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = applied.closed() => return,
        }
        backoff = (backoff * 2).min(RESUBSCRIBE_MAX);
    }
}

/// Shortest and longest pause before the index subscribes again.
const RESUBSCRIBE_MIN: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(10);

/// Applies a subscription's events until it ends: `None` when the index's
/// owner is gone or the log closed the stream, `Some(error)` when it failed.
async fn apply_until_end(
    mut subscription: kizuna_eventlog::EventSubscription,
    upcasters: &Upcasters,
    data: &Arc<RwLock<Index>>,
    applied: &watch::Sender<u64>,
) -> Option<kizuna_eventlog::StoreError> {
    use futures::StreamExt as _;
    loop {
        let item = tokio::select! {
            item = subscription.next() => item,
            () = applied.closed() => return None,
        };
        let next = match item {
            Some(Ok(SubscriptionItem::Event(event))) => {
                data.write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .apply(&event, upcasters);
                event.global_position + 1
            }
            Some(Ok(SubscriptionItem::CaughtUp { next_position })) => {
                tracing::debug!(next_position, "duplicate index caught up with the log");
                next_position
            }
            Some(Err(e)) => return Some(e),
            None => return None,
        };
        applied.send_if_modified(|at| {
            let moved = next > *at;
            if moved {
                *at = next;
            }
            moved
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(given: &str, family: &str, email: &str, phone: &str) -> pb::ContactData {
        pb::ContactData {
            given_name: given.into(),
            family_name: family.into(),
            email: email.into(),
            phone: phone.into(),
            ..Default::default()
        }
    }

    fn lookup(index: &Index, query: &pb::ContactData) -> Vec<(Party, Vec<MatchField>)> {
        index
            .find(query, None)
            .into_iter()
            .map(|c| (c.party, c.matched))
            .collect()
    }

    #[test]
    fn an_updated_value_replaces_the_old_one_and_closed_leads_stay_out() {
        let a = Party::Lead(Uuid::from_u128(1));
        let c = Party::Customer(Uuid::from_u128(2));
        let mut index = Index::default();
        index.upsert(
            a,
            contact("Taro", "Yamada", "t@example.jp", "+819012345678"),
        );
        index.upsert(c, contact("taro", "YAMADA", "other@example.jp", ""));
        assert_eq!(
            lookup(&index, &contact("Taro", "Yamada", "t@example.jp", "")),
            vec![
                (a, vec![MatchField::Email, MatchField::Name]),
                (c, vec![MatchField::Name]),
            ]
        );
        index.upsert(a, contact("", "", "new@example.jp", ""));
        assert_eq!(
            lookup(&index, &contact("", "", "t@example.jp", "+819012345678")),
            vec![]
        );
        index.close_lead(Uuid::from_u128(1));
        index.upsert(a, contact("", "", "new@example.jp", ""));
        assert_eq!(
            lookup(&index, &contact("", "", "new@example.jp", "")),
            vec![]
        );
        assert!(!index.by_email.contains_key("new@example.jp"));
    }

    fn customer_event(customer_id: Uuid, event_type: &str, payload: Vec<u8>) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::now_v7(),
            stream: format!("customer-{customer_id}"),
            stream_version: 0,
            global_position: 0,
            event_type: event_type.into(),
            schema_version: 1,
            customer_id: Some(customer_id),
            occurred_at: kizuna_eventlog::Timestamp::from_unix_nanos(0),
            recorded_at: kizuna_eventlog::Timestamp::from_unix_nanos(0),
            metadata: Default::default(),
            payload: payload.into(),
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn a_merged_away_customer_leaves_the_index_until_the_merge_is_undone() {
        let (source, target) = (Uuid::from_u128(10), Uuid::from_u128(11));
        let upcasters = Upcasters::new();
        let mut index = Index::default();
        let email = contact("", "", "dup@example.jp", "");
        for id in [source, target] {
            index.apply(
                &customer_event(
                    id,
                    "customer.registered",
                    pb::CustomerRegistered {
                        customer_id: id.to_string(),
                        contact: Some(email.clone()),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                ),
                &upcasters,
            );
        }
        assert_eq!(lookup(&index, &email).len(), 2);
        index.apply(
            &customer_event(
                source,
                "customer.merged",
                pb::CustomerMerged {
                    customer_id: source.to_string(),
                    merged_into_customer_id: target.to_string(),
                    merge_id: "m".into(),
                }
                .encode_to_vec(),
            ),
            &upcasters,
        );
        assert_eq!(
            lookup(&index, &email),
            vec![(Party::Customer(target), vec![MatchField::Email])]
        );
        let undone = |on: Uuid| pb::CustomerMergeUndone {
            customer_id: on.to_string(),
            merge_id: "m".into(),
            source_customer_id: source.to_string(),
            target_customer_id: target.to_string(),
        };
        // The target's copy of the undo changes nothing; the source's restores it.
        index.apply(
            &customer_event(
                target,
                "customer.merge_undone",
                undone(target).encode_to_vec(),
            ),
            &upcasters,
        );
        assert_eq!(lookup(&index, &email).len(), 1);
        index.apply(
            &customer_event(
                source,
                "customer.merge_undone",
                undone(source).encode_to_vec(),
            ),
            &upcasters,
        );
        assert_eq!(lookup(&index, &email).len(), 2);
    }
}
