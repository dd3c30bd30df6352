//! The customer: who they are, how to reach them, what they agreed to.
//!
//! One stream per customer (`customer-{id}`). Contact data passes through the
//! one input rule ([`crate::contact::normalize_contact`]) inside `decide`, so
//! the log only ever holds normalised values and comparisons (did the e-mail
//! change? is this bounce for the current number?) are plain equality.
//!
//! Bounce flags are kept per channel together with the value that bounced:
//! a flag is about an address, not about the person, so changing the address
//! clears it, and a bounce report that arrives for an address the customer no
//! longer has is refused (`BOUNCE_FOR_STALE_CONTACT`) rather than flagging
//! the new one. The clearing is decided once and recorded in the event
//! (`bounces_cleared`), so readers of the log need not re-derive it.
//!
//! A merge is a link, not a copy: the source stream records where it went
//! (`customer.merged`) and the target what it absorbed
//! (`customer.merge_absorbed`), both in one all-or-nothing append made by the
//! service. The source's history stays where it is, which is what makes an
//! undo exact: `customer.merge_undone` on both streams restores both.

use std::collections::{BTreeMap, BTreeSet};

use prost_types::Timestamp;
use uuid::Uuid;

use crate::contact::{self, Region};
use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::pb;

mod validate;

#[cfg(test)]
mod tests;

pub use validate::{
    MAX_ATTRIBUTE_KEY_CHARS, MAX_ATTRIBUTE_STRING_CHARS, MAX_AUTHOR_BYTES, MAX_EVIDENCE_CHARS,
    MAX_NOTE_CHARS, MAX_REASON_CHARS, MAX_SOURCE_CHARS, valid_attribute_key,
};

crate::event_messages! {
    pb::CustomerRegistered => "customer.registered" version 1,
    pb::CustomerContactUpdated => "customer.contact_updated" version 1,
    pb::CustomerContactBounced => "customer.contact_bounced" version 1,
    pb::CustomerAttributeSet => "customer.attribute_set" version 1,
    pb::CustomerAttributeRemoved => "customer.attribute_removed" version 1,
    pb::CustomerNoteAdded => "customer.note_added" version 1,
    pb::CustomerConsentGranted => "customer.consent_granted" version 1,
    pb::CustomerConsentRevoked => "customer.consent_revoked" version 1,
    pb::CustomerMerged => "customer.merged" version 1,
    pb::CustomerMergeAbsorbed => "customer.merge_absorbed" version 1,
    pb::CustomerMergeUndone => "customer.merge_undone" version 1,
}

crate::event_enum! {
    /// Events of the customer stream (`customer-{customer_id}`).
    pub enum CustomerEvent {
        /// The customer was registered (directly or by converting a lead).
        Registered(pb::CustomerRegistered),
        /// The contact data changed.
        ContactUpdated(pb::CustomerContactUpdated),
        /// A message to the customer bounced.
        ContactBounced(pb::CustomerContactBounced),
        /// An attribute was set.
        AttributeSet(pb::CustomerAttributeSet),
        /// An attribute was removed.
        AttributeRemoved(pb::CustomerAttributeRemoved),
        /// A note was added.
        NoteAdded(pb::CustomerNoteAdded),
        /// Consent was granted.
        ConsentGranted(pb::CustomerConsentGranted),
        /// Consent was revoked.
        ConsentRevoked(pb::CustomerConsentRevoked),
        /// This customer was merged into another one (source side).
        Merged(pb::CustomerMerged),
        /// Another customer was merged into this one (target side).
        MergeAbsorbed(pb::CustomerMergeAbsorbed),
        /// A merge this customer took part in was undone.
        MergeUndone(pb::CustomerMergeUndone),
    }
}

/// The stream category of customers.
pub const STREAM_CATEGORY: &str = "customer";

/// The stream of customer `id`: `customer-{id}`.
pub fn stream_name(id: Uuid) -> String {
    format!("{STREAM_CATEGORY}-{id}")
}

/// Most attributes one customer may have.
pub const MAX_ATTRIBUTES: usize = 200;

/// Reason code: the customer was merged into another one.
pub const CUSTOMER_MERGED: &str = "CUSTOMER_MERGED";
/// Reason code: a bounce on a channel the customer has no contact value for.
pub const NO_CONTACT_ON_CHANNEL: &str = "NO_CONTACT_ON_CHANNEL";
/// Reason code: a bounce for a value that is not the customer's current one.
pub const BOUNCE_FOR_STALE_CONTACT: &str = "BOUNCE_FOR_STALE_CONTACT";
/// Reason code: removing an attribute that is not set.
pub const ATTRIBUTE_NOT_SET: &str = "ATTRIBUTE_NOT_SET";
/// Reason code: adding an attribute past [`MAX_ATTRIBUTES`].
pub const TOO_MANY_ATTRIBUTES: &str = "TOO_MANY_ATTRIBUTES";
/// Reason code: undoing a merge that is not current on both sides.
pub const MERGE_NOT_FOUND: &str = "MERGE_NOT_FOUND";

/// Every reason code a customer command can be rejected with.
pub const REASON_CODES: [&str; 6] = [
    CUSTOMER_MERGED,
    NO_CONTACT_ON_CHANNEL,
    BOUNCE_FOR_STALE_CONTACT,
    ATTRIBUTE_NOT_SET,
    TOO_MANY_ATTRIBUTES,
    MERGE_NOT_FOUND,
];

/// The customer decider.
#[derive(Debug, Clone, Copy, Default)]
pub struct Customer;

/// A contact value on one channel: an e-mail address or phone number, or a
/// postal address. Used for bounces, as given and as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactValue {
    /// An e-mail address (EMAIL) or phone number (SMS, PHONE).
    Address(String),
    /// A postal address (POSTAL).
    Postal(pb::PostalAddress),
}

impl ContactValue {
    /// The event/response oneof for this value.
    pub fn to_bounced(&self) -> pb::customer_contact_bounced::Bounced {
        match self {
            Self::Address(a) => pb::customer_contact_bounced::Bounced::Address(a.clone()),
            Self::Postal(p) => pb::customer_contact_bounced::Bounced::PostalAddress(p.clone()),
        }
    }

    fn from_bounced(b: &pb::customer_contact_bounced::Bounced) -> Self {
        match b {
            pb::customer_contact_bounced::Bounced::Address(a) => Self::Address(a.clone()),
            pb::customer_contact_bounced::Bounced::PostalAddress(p) => Self::Postal(p.clone()),
        }
    }
}

/// A channel's bounce flag: the value that bounced and how badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceFlag {
    /// The bounced value, as recorded in the contact data.
    pub value: ContactValue,
    /// HARD once any bounce of this value was hard, else SOFT.
    pub kind: pb::BounceKind,
    /// Bounces recorded for this value.
    pub count: u32,
    /// The latest bounce's reason.
    pub last_reason: String,
}

/// A calendar date as given, checked by `decide` (see [`pb::AttributeDate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeDate {
    /// Year, 1 to 9999.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: i32,
    /// Day of the month.
    pub day: i32,
}

/// The typed value of an attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// Text.
    String(String),
    /// A whole number.
    Int(i64),
    /// A finite number.
    Number(f64),
    /// True or false.
    Bool(bool),
    /// A calendar date.
    Date(AttributeDate),
}

impl AttributeValue {
    /// The value from its message; `None` when no kind is set.
    pub fn from_proto(v: &pb::AttributeValue) -> Option<Self> {
        use pb::attribute_value::Kind;
        Some(match v.kind.as_ref()? {
            Kind::StringValue(s) => Self::String(s.clone()),
            Kind::IntValue(i) => Self::Int(*i),
            Kind::NumberValue(n) => Self::Number(*n),
            Kind::BoolValue(b) => Self::Bool(*b),
            Kind::DateValue(d) => Self::Date(AttributeDate {
                year: d.year,
                month: d.month,
                day: d.day,
            }),
        })
    }

    /// The value as its message.
    pub fn to_proto(&self) -> pb::AttributeValue {
        use pb::attribute_value::Kind;
        pb::AttributeValue {
            kind: Some(match self {
                Self::String(s) => Kind::StringValue(s.clone()),
                Self::Int(i) => Kind::IntValue(*i),
                Self::Number(n) => Kind::NumberValue(*n),
                Self::Bool(b) => Kind::BoolValue(*b),
                Self::Date(d) => Kind::DateValue(pb::AttributeDate {
                    year: d.year,
                    month: d.month,
                    day: d.day,
                }),
            }),
        }
    }
}

/// A note about a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The note's id.
    pub note_id: Uuid,
    /// The text.
    pub text: String,
    /// Who wrote it.
    pub author: String,
    /// When.
    pub added_at: Option<Timestamp>,
}

/// One side of a merge: the merge and the other customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeLink {
    /// The merge.
    pub merge_id: Uuid,
    /// The other customer: the target from the source's side, the source
    /// from the target's side.
    pub customer_id: Uuid,
}

/// A customer as folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerState {
    /// Whether the stream holds a registration (`false`: no such customer).
    pub registered: bool,
    /// Current contact data, normalised.
    pub contact: pb::ContactData,
    /// Where the customer came from.
    pub source: String,
    /// The lead the customer was converted from (as recorded), or empty.
    pub converted_from_lead_id: String,
    /// Bounce flags by channel.
    pub bounces: BTreeMap<pb::ContactChannel, BounceFlag>,
    /// Attributes by key.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Notes, oldest first.
    pub notes: Vec<Note>,
    /// Consents held.
    pub consents: BTreeSet<(pb::ContactChannel, pb::ConsentPurpose)>,
    /// Set when the customer was merged into another one.
    pub merged_into: Option<MergeLink>,
    /// Merges this customer absorbed that are not undone, oldest first.
    pub absorbed: Vec<MergeLink>,
}

/// A field of the contact data, for partial updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactField {
    /// `given_name`.
    GivenName,
    /// `family_name`.
    FamilyName,
    /// `email`.
    Email,
    /// `phone`.
    Phone,
    /// `postal_address` (as a whole).
    PostalAddress,
    /// `company`.
    Company,
}

impl ContactField {
    /// Every field.
    pub const ALL: [Self; 6] = [
        Self::GivenName,
        Self::FamilyName,
        Self::Email,
        Self::Phone,
        Self::PostalAddress,
        Self::Company,
    ];

    /// The field's name in `kizuna.v1.ContactData` (an update-mask path).
    pub fn path(self) -> &'static str {
        match self {
            Self::GivenName => "given_name",
            Self::FamilyName => "family_name",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::PostalAddress => "postal_address",
            Self::Company => "company",
        }
    }

    /// The field named `path`, if any.
    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.path() == path)
    }

    fn copy(self, from: &pb::ContactData, to: &mut pb::ContactData) {
        match self {
            Self::GivenName => to.given_name.clone_from(&from.given_name),
            Self::FamilyName => to.family_name.clone_from(&from.family_name),
            Self::Email => to.email.clone_from(&from.email),
            Self::Phone => to.phone.clone_from(&from.phone),
            Self::PostalAddress => to.postal_address.clone_from(&from.postal_address),
            Self::Company => to.company.clone_from(&from.company),
        }
    }
}

/// What a caller can ask of a customer.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    /// Register a new customer.
    Register {
        /// Caller-chosen id; `None`: a new id from the context.
        customer_id: Option<Uuid>,
        /// Contact data as given (normalised by `decide`).
        contact: pb::ContactData,
        /// Consents given at registration.
        consents: Vec<pb::ConsentGrant>,
        /// Where the customer came from.
        source: String,
        /// Region for phone numbers without a country code.
        region: Region,
    },
    /// Change the contact data.
    UpdateContact {
        /// The customer.
        customer_id: Uuid,
        /// The new values as given (normalised by `decide`).
        contact: pb::ContactData,
        /// The fields of `contact` to apply; `None`: all of them.
        fields: Option<BTreeSet<ContactField>>,
        /// Region for phone numbers without a country code.
        region: Region,
    },
    /// Record a bounce.
    RecordBounce {
        /// The customer.
        customer_id: Uuid,
        /// EMAIL, SMS, PHONE or POSTAL.
        channel: pb::ContactChannel,
        /// The value that bounced, as given.
        value: Option<ContactValue>,
        /// HARD or SOFT.
        kind: pb::BounceKind,
        /// The provider's reason.
        reason: String,
        /// Region for phone numbers without a country code.
        region: Region,
    },
    /// Set an attribute.
    SetAttribute {
        /// The customer.
        customer_id: Uuid,
        /// The key.
        key: String,
        /// The value.
        value: AttributeValue,
    },
    /// Remove an attribute.
    RemoveAttribute {
        /// The customer.
        customer_id: Uuid,
        /// The key.
        key: String,
    },
    /// Add a note.
    AddNote {
        /// The customer.
        customer_id: Uuid,
        /// The text as given (NFKC-normalised by `decide`).
        text: String,
        /// Who wrote it.
        author: String,
    },
    /// Grant consent.
    GrantConsent {
        /// The customer.
        customer_id: Uuid,
        /// The channel.
        channel: pb::ContactChannel,
        /// The purpose.
        purpose: pb::ConsentPurpose,
        /// Where it was given.
        source: String,
        /// Evidence.
        evidence: String,
    },
    /// Revoke consent.
    RevokeConsent {
        /// The customer.
        customer_id: Uuid,
        /// The channel.
        channel: pb::ContactChannel,
        /// The purpose.
        purpose: pb::ConsentPurpose,
        /// Where it was withdrawn.
        source: String,
        /// Evidence.
        evidence: String,
    },
    /// Source side of a merge: this customer is merged into `target_customer_id`.
    MergeInto {
        /// The source customer (this stream).
        customer_id: Uuid,
        /// The target customer.
        target_customer_id: Uuid,
        /// The merge's id, shared with the target's [`CustomerCommand::AbsorbMerge`].
        merge_id: Uuid,
    },
    /// Target side of a merge: `source_customer_id` is merged into this customer.
    AbsorbMerge {
        /// The target customer (this stream).
        customer_id: Uuid,
        /// The source customer.
        source_customer_id: Uuid,
        /// The merge's id.
        merge_id: Uuid,
    },
    /// Undo merge `merge_id` on this side (source or target).
    UndoMerge {
        /// This stream's customer.
        customer_id: Uuid,
        /// The merge.
        merge_id: Uuid,
    },
}

impl CustomerCommand {
    /// The customer the command is about (`None` for a registration that
    /// lets the context choose the id).
    pub fn customer_id(&self) -> Option<Uuid> {
        match self {
            Self::Register { customer_id, .. } => *customer_id,
            Self::UpdateContact { customer_id, .. }
            | Self::RecordBounce { customer_id, .. }
            | Self::SetAttribute { customer_id, .. }
            | Self::RemoveAttribute { customer_id, .. }
            | Self::AddNote { customer_id, .. }
            | Self::GrantConsent { customer_id, .. }
            | Self::RevokeConsent { customer_id, .. }
            | Self::MergeInto { customer_id, .. }
            | Self::AbsorbMerge { customer_id, .. }
            | Self::UndoMerge { customer_id, .. } => Some(*customer_id),
        }
    }
}

impl Decider for Customer {
    type State = CustomerState;
    type Command = CustomerCommand;
    type Event = CustomerEvent;

    fn decide(
        state: &CustomerState,
        command: &CustomerCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<CustomerEvent>, DomainError> {
        use CustomerCommand as C;
        match command {
            C::Register {
                customer_id,
                contact,
                consents,
                source,
                region,
            } => {
                let id = customer_id.unwrap_or_else(|| ctx.new_id());
                register(state, id, contact, consents, source, *region)
            }
            C::UpdateContact {
                customer_id,
                contact,
                fields,
                region,
            } => {
                let cid = live(state, *customer_id)?;
                update_contact(state, cid, contact, fields.as_ref(), *region)
            }
            C::RecordBounce {
                customer_id,
                channel,
                value,
                kind,
                reason,
                region,
            } => {
                let cid = live(state, *customer_id)?;
                record_bounce(state, cid, *channel, value.as_ref(), *kind, reason, *region)
            }
            C::SetAttribute {
                customer_id,
                key,
                value,
            } => {
                let cid = live(state, *customer_id)?;
                set_attribute(state, cid, key, value)
            }
            C::RemoveAttribute { customer_id, key } => {
                let cid = live(state, *customer_id)?;
                validate::attribute_key(key)?;
                if !state.attributes.contains_key(key) {
                    return Err(DomainError::rejected(
                        ATTRIBUTE_NOT_SET,
                        format!("customer {cid} has no attribute {key:?}"),
                    ));
                }
                Ok(vec![
                    pb::CustomerAttributeRemoved {
                        customer_id: cid,
                        key: key.clone(),
                    }
                    .into(),
                ])
            }
            C::AddNote {
                customer_id,
                text,
                author,
            } => {
                let cid = live(state, *customer_id)?;
                let text = validate::note_text(text)?;
                let author = validate::author(author)?;
                Ok(vec![
                    pb::CustomerNoteAdded {
                        customer_id: cid,
                        note_id: ctx.new_id().to_string(),
                        text,
                        author,
                        added_at: Some(ctx.now),
                    }
                    .into(),
                ])
            }
            C::GrantConsent {
                customer_id,
                channel,
                purpose,
                source,
                evidence,
            } => {
                let cid = live(state, *customer_id)?;
                let (source, evidence) = validate::consent(*channel, *purpose, source, evidence)?;
                if state.consents.contains(&(*channel, *purpose)) {
                    return Ok(vec![]);
                }
                Ok(vec![
                    pb::CustomerConsentGranted {
                        customer_id: cid,
                        channel: *channel as i32,
                        purpose: *purpose as i32,
                        source,
                        evidence,
                    }
                    .into(),
                ])
            }
            C::RevokeConsent {
                customer_id,
                channel,
                purpose,
                source,
                evidence,
            } => {
                let cid = live(state, *customer_id)?;
                let (source, evidence) = validate::consent(*channel, *purpose, source, evidence)?;
                if !state.consents.contains(&(*channel, *purpose)) {
                    return Ok(vec![]);
                }
                Ok(vec![
                    pb::CustomerConsentRevoked {
                        customer_id: cid,
                        channel: *channel as i32,
                        purpose: *purpose as i32,
                        source,
                        evidence,
                    }
                    .into(),
                ])
            }
            C::MergeInto {
                customer_id,
                target_customer_id,
                merge_id,
            } => {
                let cid = live(state, *customer_id)?;
                if target_customer_id == customer_id {
                    return Err(DomainError::invalid(
                        "target_customer_id",
                        "must differ from source_customer_id: a customer cannot be merged into itself",
                    ));
                }
                Ok(vec![
                    pb::CustomerMerged {
                        customer_id: cid,
                        merged_into_customer_id: target_customer_id.to_string(),
                        merge_id: merge_id.to_string(),
                    }
                    .into(),
                ])
            }
            C::AbsorbMerge {
                customer_id,
                source_customer_id,
                merge_id,
            } => {
                let cid = live(state, *customer_id)?;
                if source_customer_id == customer_id {
                    return Err(DomainError::invalid(
                        "source_customer_id",
                        "must differ from target_customer_id: a customer cannot absorb itself",
                    ));
                }
                Ok(vec![
                    pb::CustomerMergeAbsorbed {
                        customer_id: cid,
                        source_customer_id: source_customer_id.to_string(),
                        merge_id: merge_id.to_string(),
                    }
                    .into(),
                ])
            }
            C::UndoMerge {
                customer_id,
                merge_id,
            } => {
                // The one command a merged-away customer still accepts.
                if !state.registered {
                    return Err(DomainError::not_found("customer", customer_id));
                }
                let cid = customer_id.to_string();
                let (source, target) = match state.merged_into {
                    Some(link) if link.merge_id == *merge_id => (*customer_id, link.customer_id),
                    _ => match state.absorbed.iter().find(|l| l.merge_id == *merge_id) {
                        Some(link) => (link.customer_id, *customer_id),
                        None => {
                            return Err(DomainError::rejected(
                                MERGE_NOT_FOUND,
                                format!(
                                    "merge {merge_id} is not a current merge of customer {cid}"
                                ),
                            ));
                        }
                    },
                };
                Ok(vec![
                    pb::CustomerMergeUndone {
                        customer_id: cid,
                        merge_id: merge_id.to_string(),
                        source_customer_id: source.to_string(),
                        target_customer_id: target.to_string(),
                    }
                    .into(),
                ])
            }
        }
    }

    fn evolve(mut state: CustomerState, event: &CustomerEvent) -> CustomerState {
        use CustomerEvent as E;
        match event {
            E::Registered(e) => {
                state.registered = true;
                state.contact = e.contact.clone().unwrap_or_default();
                state.source.clone_from(&e.source);
                state
                    .converted_from_lead_id
                    .clone_from(&e.converted_from_lead_id);
                // A lead conversion may carry grants this decider would not
                // have accepted (unset channel); they grant nothing.
                state.consents.extend(
                    e.consents
                        .iter()
                        .filter_map(|g| consent_key(g.channel, g.purpose)),
                );
            }
            E::ContactUpdated(e) => {
                state.contact = e.contact.clone().unwrap_or_default();
                for channel in &e.bounces_cleared {
                    if let Ok(channel) = pb::ContactChannel::try_from(*channel) {
                        state.bounces.remove(&channel);
                    }
                }
            }
            E::ContactBounced(e) => {
                if let (Ok(channel), Some(bounced)) =
                    (pb::ContactChannel::try_from(e.channel), &e.bounced)
                {
                    let value = ContactValue::from_bounced(bounced);
                    let kind = pb::BounceKind::try_from(e.kind).unwrap_or(pb::BounceKind::Soft);
                    match state.bounces.get_mut(&channel) {
                        Some(flag) if flag.value == value => {
                            flag.count = flag.count.saturating_add(1);
                            if kind == pb::BounceKind::Hard {
                                flag.kind = pb::BounceKind::Hard;
                            }
                            flag.last_reason.clone_from(&e.reason);
                        }
                        _ => {
                            state.bounces.insert(
                                channel,
                                BounceFlag {
                                    value,
                                    kind,
                                    count: 1,
                                    last_reason: e.reason.clone(),
                                },
                            );
                        }
                    }
                }
            }
            E::AttributeSet(e) => {
                if let Some(value) = e.value.as_ref().and_then(AttributeValue::from_proto) {
                    state.attributes.insert(e.key.clone(), value);
                }
            }
            E::AttributeRemoved(e) => {
                state.attributes.remove(&e.key);
            }
            E::NoteAdded(e) => state.notes.push(Note {
                note_id: parse_id(&e.note_id),
                text: e.text.clone(),
                author: e.author.clone(),
                added_at: e.added_at,
            }),
            E::ConsentGranted(e) => {
                if let Some(key) = consent_key(e.channel, e.purpose) {
                    state.consents.insert(key);
                }
            }
            E::ConsentRevoked(e) => {
                if let Some(key) = consent_key(e.channel, e.purpose) {
                    state.consents.remove(&key);
                }
            }
            E::Merged(e) => {
                state.merged_into = Some(MergeLink {
                    merge_id: parse_id(&e.merge_id),
                    customer_id: parse_id(&e.merged_into_customer_id),
                });
            }
            E::MergeAbsorbed(e) => state.absorbed.push(MergeLink {
                merge_id: parse_id(&e.merge_id),
                customer_id: parse_id(&e.source_customer_id),
            }),
            E::MergeUndone(e) => {
                let merge_id = parse_id(&e.merge_id);
                if state.merged_into.is_some_and(|l| l.merge_id == merge_id) {
                    state.merged_into = None;
                }
                state.absorbed.retain(|l| l.merge_id != merge_id);
            }
        }
        state
    }
}

/// Ids in events are written by this decider; an unreadable one (impossible
/// short of a corrupt payload) folds as the nil UUID rather than a panic.
fn parse_id(s: &str) -> Uuid {
    Uuid::try_parse(s).unwrap_or_default()
}

fn consent_key(channel: i32, purpose: i32) -> Option<(pb::ContactChannel, pb::ConsentPurpose)> {
    let channel = pb::ContactChannel::try_from(channel).ok()?;
    let purpose = pb::ConsentPurpose::try_from(purpose).ok()?;
    (channel != pb::ContactChannel::Unspecified && purpose != pb::ConsentPurpose::Unspecified)
        .then_some((channel, purpose))
}

/// Checks that customer `id` (folded into `state`) exists and was not merged
/// away: what other aggregates ask before acting for a customer (NOT_FOUND,
/// or `CUSTOMER_MERGED` naming the customer it lives on as).
pub fn ensure_live(state: &CustomerState, id: Uuid) -> Result<(), DomainError> {
    live(state, id).map(|_| ())
}

/// The id of customer `id` as events carry it, if the customer exists and
/// was not merged away; merged-away customers refuse everything but the undo.
fn live(state: &CustomerState, id: Uuid) -> Result<String, DomainError> {
    if !state.registered {
        return Err(DomainError::not_found("customer", id));
    }
    if let Some(link) = &state.merged_into {
        return Err(DomainError::rejected(
            CUSTOMER_MERGED,
            format!(
                "customer {id} was merged into customer {} (merge {}); \
                 send commands to {} or undo the merge",
                link.customer_id, link.merge_id, link.customer_id
            ),
        ));
    }
    Ok(id.to_string())
}

fn register(
    state: &CustomerState,
    id: Uuid,
    contact: &pb::ContactData,
    consents: &[pb::ConsentGrant],
    source: &str,
    region: Region,
) -> Result<Vec<CustomerEvent>, DomainError> {
    let contact = contact::normalize_contact(contact, region, "contact")?;
    if contact == pb::ContactData::default() {
        return Err(DomainError::invalid(
            "contact",
            "is required: give at least a name, a company, an e-mail address, a phone number or a postal address",
        ));
    }
    let mut grants: Vec<pb::ConsentGrant> = Vec::with_capacity(consents.len());
    for (i, g) in consents.iter().enumerate() {
        let channel = validate::channel(g.channel, &format!("consents[{i}].channel"))?;
        let purpose = validate::purpose(g.purpose, &format!("consents[{i}].purpose"))?;
        let grant = pb::ConsentGrant {
            channel: channel as i32,
            purpose: purpose as i32,
        };
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    let source = validate::optional_text(source, "source", MAX_SOURCE_CHARS)?;
    if state.registered {
        return Err(DomainError::already_exists("customer", id));
    }
    Ok(vec![
        pb::CustomerRegistered {
            customer_id: id.to_string(),
            contact: Some(contact),
            converted_from_lead_id: String::new(),
            consents: grants,
            source,
        }
        .into(),
    ])
}

fn update_contact(
    state: &CustomerState,
    cid: String,
    given: &pb::ContactData,
    fields: Option<&BTreeSet<ContactField>>,
    region: Region,
) -> Result<Vec<CustomerEvent>, DomainError> {
    let fields: Vec<ContactField> = match fields {
        Some(f) if !f.is_empty() => f.iter().copied().collect(),
        _ => ContactField::ALL.to_vec(),
    };
    // Only the fields being applied are checked: a value outside the mask is
    // ignored, as the update mask promises.
    let mut masked = pb::ContactData::default();
    for f in &fields {
        f.copy(given, &mut masked);
    }
    let normalised = contact::normalize_contact(&masked, region, "contact")?;
    let old = &state.contact;
    let mut new = old.clone();
    for f in &fields {
        f.copy(&normalised, &mut new);
    }
    if new == *old {
        return Ok(vec![]);
    }
    let mut changed = Vec::new();
    if new.email != old.email {
        changed.push(pb::ContactChannel::Email);
    }
    if new.phone != old.phone {
        changed.extend([pb::ContactChannel::Sms, pb::ContactChannel::Phone]);
    }
    if new.postal_address != old.postal_address {
        changed.push(pb::ContactChannel::Postal);
    }
    let bounces_cleared = changed
        .into_iter()
        .filter(|c| state.bounces.contains_key(c))
        .map(|c| c as i32)
        .collect();
    Ok(vec![
        pb::CustomerContactUpdated {
            customer_id: cid,
            contact: Some(new),
            bounces_cleared,
        }
        .into(),
    ])
}

fn record_bounce(
    state: &CustomerState,
    cid: String,
    channel: pb::ContactChannel,
    value: Option<&ContactValue>,
    kind: pb::BounceKind,
    reason: &str,
    region: Region,
) -> Result<Vec<CustomerEvent>, DomainError> {
    use pb::ContactChannel as Ch;
    if kind == pb::BounceKind::Unspecified {
        return Err(DomainError::invalid("kind", "is required: HARD or SOFT"));
    }
    let reason = validate::optional_text(reason, "reason", MAX_REASON_CHARS)?;
    let (given, current) = match channel {
        Ch::Email => {
            let email = validate::bounced_address(value, "EMAIL", contact::normalize_email)?;
            (ContactValue::Address(email), address(&state.contact.email))
        }
        Ch::Sms | Ch::Phone => {
            let phone = validate::bounced_address(value, channel.as_str_name(), |a| {
                contact::normalize_phone(a, region)
            })?;
            (ContactValue::Address(phone), address(&state.contact.phone))
        }
        Ch::Postal => {
            let postal = validate::bounced_postal(value, region)?;
            (
                ContactValue::Postal(postal),
                state
                    .contact
                    .postal_address
                    .clone()
                    .map(ContactValue::Postal),
            )
        }
        Ch::Unspecified => return Err(DomainError::invalid("channel", "is required")),
        Ch::Push => {
            return Err(DomainError::invalid(
                "channel",
                "bounces are recorded for EMAIL, SMS, PHONE or POSTAL",
            ));
        }
    };
    let Some(current) = current else {
        return Err(DomainError::rejected(
            NO_CONTACT_ON_CHANNEL,
            format!(
                "customer {cid} has no contact value for {}",
                channel.as_str_name()
            ),
        ));
    };
    if current != given {
        return Err(DomainError::rejected(
            BOUNCE_FOR_STALE_CONTACT,
            format!(
                "the bounced value is not customer {cid}'s current {} contact",
                channel.as_str_name()
            ),
        ));
    }
    Ok(vec![
        pb::CustomerContactBounced {
            customer_id: cid,
            channel: channel as i32,
            bounced: Some(given.to_bounced()),
            kind: kind as i32,
            reason,
        }
        .into(),
    ])
}

fn address(value: &str) -> Option<ContactValue> {
    (!value.is_empty()).then(|| ContactValue::Address(value.to_owned()))
}

fn set_attribute(
    state: &CustomerState,
    cid: String,
    key: &str,
    value: &AttributeValue,
) -> Result<Vec<CustomerEvent>, DomainError> {
    validate::attribute_key(key)?;
    validate::attribute_value(value)?;
    match state.attributes.get(key) {
        Some(current) if current == value => return Ok(vec![]),
        Some(_) => {}
        None if state.attributes.len() >= MAX_ATTRIBUTES => {
            return Err(DomainError::rejected(
                TOO_MANY_ATTRIBUTES,
                format!("customer {cid} already has {MAX_ATTRIBUTES} attributes; remove one first"),
            ));
        }
        None => {}
    }
    Ok(vec![
        pb::CustomerAttributeSet {
            customer_id: cid,
            key: key.to_owned(),
            value: Some(value.to_proto()),
        }
        .into(),
    ])
}
