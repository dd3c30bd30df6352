//! The lead: a person we may sell to, from capture to conversion.
//!
//! A lead lives on the stream `lead-{lead_id}`. Its status moves through a
//! fixed table ([`transition_allowed`]) and ends when the lead is converted
//! into a customer or merged into another lead as its duplicate; after that
//! it refuses every command, so nothing can be recorded against a lead whose
//! story continues elsewhere.
//!
//! Contact data passes through [`crate::contact::normalize_contact`] inside
//! `decide`, so the events only ever hold normalised values, whichever service
//! or tool sends the command.
//!
//! Conversion and merging touch two streams. The lead's half of each is a
//! command here ([`LeadCommand::Convert`], [`LeadCommand::MergeInto`],
//! [`LeadCommand::AbsorbDuplicate`]); the service appends both halves in one
//! all-or-nothing append, with [`customer_registration`] building the
//! customer's first event from the converted lead.

mod upcast;

#[cfg(test)]
mod tests;

pub use upcast::{lead_captured_v1_to_v2, split_full_name};

use crate::contact::{Region, normalize_contact, normalize_text};
use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::pb;
use uuid::Uuid;

crate::event_messages! {
    pb::LeadCaptured => "lead.captured" version 2,
    pb::LeadContactUpdated => "lead.contact_updated" version 1,
    pb::LeadScored => "lead.scored" version 1,
    pb::LeadStatusChanged => "lead.status_changed" version 1,
    pb::LeadConverted => "lead.converted" version 1,
    pb::LeadMerged => "lead.merged" version 1,
    pb::LeadDuplicateAbsorbed => "lead.duplicate_absorbed" version 1,
}

crate::event_enum! {
    /// Events of the lead stream.
    // Events are folded one at a time, never stored in bulk: boxing the
    // merge's larger payload would cost an allocation to save stack space.
    #[allow(clippy::large_enum_variant)]
    pub enum LeadEvent {
        /// A lead was captured.
        Captured(pb::LeadCaptured),
        /// Its contact data was replaced.
        ContactUpdated(pb::LeadContactUpdated),
        /// It was scored.
        Scored(pb::LeadScored),
        /// Its status changed.
        StatusChanged(pb::LeadStatusChanged),
        /// It was converted into a customer.
        Converted(pb::LeadConverted),
        /// It was merged into another lead (the duplicate's side).
        Merged(pb::LeadMerged),
        /// It absorbed a duplicate (the survivor's side).
        DuplicateAbsorbed(pb::LeadDuplicateAbsorbed),
    }
}

/// Registers the lead's upcasters (see [`crate::upcasters`]):
/// `lead.captured` v1 → v2 splits the single `full_name` ([`split_full_name`]).
pub fn register_upcasters(upcasters: &mut crate::Upcasters) {
    upcasters.register("lead.captured", 1, lead_captured_v1_to_v2);
}

/// Longest accepted `source`, in characters.
pub const MAX_SOURCE_CHARS: usize = 100;

/// Longest accepted score or status reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Highest score.
pub const MAX_SCORE: i32 = 100;

/// Reason code: the status change is not in the table.
pub const INVALID_STATUS_TRANSITION: &str = "INVALID_STATUS_TRANSITION";
/// Reason code: the lead was converted and accepts no more commands.
pub const LEAD_CONVERTED: &str = "LEAD_CONVERTED";
/// Reason code: the lead was merged away and accepts no more commands.
pub const LEAD_MERGED: &str = "LEAD_MERGED";
/// Reason code: only a qualified lead can be converted.
pub const LEAD_NOT_QUALIFIED: &str = "LEAD_NOT_QUALIFIED";
/// Reason code: the lead has no e-mail address and no phone number to carry
/// over to a customer.
pub const LEAD_HAS_NO_CONTACT: &str = "LEAD_HAS_NO_CONTACT";

/// The lead's rules.
#[derive(Debug, Clone, Copy)]
pub struct Lead;

/// A lead as its events leave it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadState {
    /// The lead's id; empty before capture.
    pub lead_id: String,
    /// Where it stands; `Unspecified` means the lead does not exist.
    pub status: pb::LeadStatus,
    /// Free-text origin.
    pub source: String,
    /// The channel it came in through.
    pub channel: pb::LeadChannel,
    /// The campaign (UUID), or empty.
    pub campaign_id: String,
    /// Current contact data, normalised.
    pub contact: pb::ContactData,
    /// Consents held, in the order given.
    pub consents: Vec<pb::ConsentGrant>,
    /// The latest score, if scored.
    pub score: Option<i32>,
    /// Why the latest score.
    pub score_reason: String,
    /// The reason given with the latest status change.
    pub status_reason: String,
    /// The customer it was converted into, or empty.
    pub customer_id: String,
    /// The lead it was merged into, or empty.
    pub survivor_lead_id: String,
    /// Duplicates merged into it, oldest first.
    pub absorbed_lead_ids: Vec<String>,
}

impl LeadState {
    /// Whether the lead was captured.
    pub fn exists(&self) -> bool {
        self.status != pb::LeadStatus::Unspecified
    }

    /// Whether the lead still accepts commands (captured, not converted or merged).
    pub fn is_open(&self) -> bool {
        !matches!(
            self.status,
            pb::LeadStatus::Unspecified | pb::LeadStatus::Converted | pb::LeadStatus::Merged
        )
    }
}

/// Capturing a new lead.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureLead {
    /// A caller-chosen id; `None` takes the context's next id.
    pub lead_id: Option<Uuid>,
    /// Free-text origin (at most [`MAX_SOURCE_CHARS`] after normalisation).
    pub source: String,
    /// The channel; `Unspecified` is refused.
    pub channel: pb::LeadChannel,
    /// The campaign, if any.
    pub campaign_id: Option<Uuid>,
    /// Contact data as typed; normalised here.
    pub contact: pb::ContactData,
    /// Consents as sent.
    pub consents: Vec<pb::ConsentGrant>,
    /// Region for phone numbers without a country calling code.
    pub region: Region,
}

/// What a caller asks of a lead. Errors name the fields of the matching
/// `LeadService` request (`contact.email`, `consents[1].purpose`, `reason`).
#[derive(Debug, Clone, PartialEq)]
pub enum LeadCommand {
    /// Capture a new lead.
    Capture(CaptureLead),
    /// Replace the lead's contact data (nothing happens when it is unchanged).
    UpdateContact {
        /// The lead.
        lead_id: Uuid,
        /// The complete new contact data as typed; normalised here.
        contact: pb::ContactData,
        /// Region for phone numbers without a country calling code.
        region: Region,
    },
    /// Record a score.
    Score {
        /// The lead.
        lead_id: Uuid,
        /// 0 to [`MAX_SCORE`].
        score: i32,
        /// Why (required, at most [`MAX_REASON_CHARS`]).
        reason: String,
    },
    /// Move the lead to another status.
    ChangeStatus {
        /// The lead.
        lead_id: Uuid,
        /// The new status (not `Converted` or `Merged`: those have their own commands).
        status: pb::LeadStatus,
        /// Why; required when disqualifying.
        reason: String,
    },
    /// Convert a qualified lead into a customer (the lead's side).
    Convert {
        /// The lead.
        lead_id: Uuid,
        /// The new customer's id; `None` takes the context's next id.
        customer_id: Option<Uuid>,
    },
    /// Merge this lead into `survivor_lead_id` (the duplicate's side).
    MergeInto {
        /// The duplicate, this stream's lead.
        lead_id: Uuid,
        /// The lead that remains.
        survivor_lead_id: Uuid,
    },
    /// Absorb the duplicate `duplicate_lead_id` (the survivor's side).
    AbsorbDuplicate {
        /// The survivor, this stream's lead.
        lead_id: Uuid,
        /// The duplicate merged into it.
        duplicate_lead_id: Uuid,
        /// The duplicate's current (normalised) contact data.
        duplicate_contact: pb::ContactData,
        /// The duplicate's current consents.
        duplicate_consents: Vec<pb::ConsentGrant>,
    },
}

impl LeadCommand {
    /// The lead the command is about, when the command names it (capture may not).
    pub fn lead_id(&self) -> Option<Uuid> {
        match self {
            Self::Capture(c) => c.lead_id,
            Self::UpdateContact { lead_id, .. }
            | Self::Score { lead_id, .. }
            | Self::ChangeStatus { lead_id, .. }
            | Self::Convert { lead_id, .. }
            | Self::MergeInto { lead_id, .. }
            | Self::AbsorbDuplicate { lead_id, .. } => Some(*lead_id),
        }
    }
}

/// Whether the status table allows moving a lead from `from` to `to`.
/// `Converted` and `Merged` are never reached this way; nothing leaves them.
pub fn transition_allowed(from: pb::LeadStatus, to: pb::LeadStatus) -> bool {
    use pb::LeadStatus::{Disqualified, New, Nurturing, Qualified, Working};
    matches!(
        (from, to),
        (New, Working | Disqualified)
            | (Working, Nurturing | Qualified | Disqualified)
            | (Nurturing, Working | Qualified | Disqualified)
            | (Qualified, Working | Disqualified)
            | (Disqualified, Working)
    )
}

/// The `customer.registered` payload for converting the lead `state` into the
/// customer `customer_id`: the lead's contact data and consents carried over,
/// with the lead's source.
pub fn customer_registration(state: &LeadState, customer_id: Uuid) -> pb::CustomerRegistered {
    pb::CustomerRegistered {
        customer_id: customer_id.to_string(),
        contact: Some(state.contact.clone()),
        converted_from_lead_id: state.lead_id.clone(),
        consents: state.consents.clone(),
        source: state.source.clone(),
    }
}

impl Decider for Lead {
    type State = LeadState;
    type Command = LeadCommand;
    type Event = LeadEvent;

    fn decide(
        state: &LeadState,
        command: &LeadCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<LeadEvent>, DomainError> {
        match command {
            LeadCommand::Capture(c) => capture(state, c, ctx),
            LeadCommand::UpdateContact {
                lead_id,
                contact,
                region,
            } => {
                let contact = reachable_contact(contact, *region)?;
                ensure_open(state, *lead_id)?;
                if contact == state.contact {
                    return Ok(Vec::new());
                }
                Ok(vec![LeadEvent::ContactUpdated(pb::LeadContactUpdated {
                    lead_id: lead_id.to_string(),
                    contact: Some(contact),
                })])
            }
            LeadCommand::Score {
                lead_id,
                score,
                reason,
            } => {
                if !(0..=MAX_SCORE).contains(score) {
                    return Err(DomainError::invalid(
                        "score",
                        format!("must be within 0..={MAX_SCORE}, got {score}"),
                    ));
                }
                let reason = reason_text(reason)?;
                if reason.is_empty() {
                    return Err(DomainError::invalid("reason", "is required"));
                }
                ensure_open(state, *lead_id)?;
                Ok(vec![LeadEvent::Scored(pb::LeadScored {
                    lead_id: lead_id.to_string(),
                    score: *score,
                    reason,
                })])
            }
            LeadCommand::ChangeStatus {
                lead_id,
                status,
                reason,
            } => change_status(state, *lead_id, *status, reason),
            LeadCommand::Convert {
                lead_id,
                customer_id,
            } => {
                ensure_open(state, *lead_id)?;
                if state.status != pb::LeadStatus::Qualified {
                    return Err(DomainError::rejected(
                        LEAD_NOT_QUALIFIED,
                        format!(
                            "lead {lead_id} is {}; only a QUALIFIED lead can be converted",
                            status_name(state.status)
                        ),
                    ));
                }
                // Capture and UpdateContact insist on one of the two, but a
                // v1 capture did not: such a lead is checked here rather than
                // becoming a customer nobody can reach.
                if state.contact.email.is_empty() && state.contact.phone.is_empty() {
                    return Err(DomainError::rejected(
                        LEAD_HAS_NO_CONTACT,
                        format!(
                            "lead {lead_id} has no e-mail address or phone number; update its contact data first"
                        ),
                    ));
                }
                let customer_id = customer_id.unwrap_or_else(|| ctx.new_id());
                Ok(vec![LeadEvent::Converted(pb::LeadConverted {
                    lead_id: lead_id.to_string(),
                    customer_id: customer_id.to_string(),
                })])
            }
            LeadCommand::MergeInto {
                lead_id,
                survivor_lead_id,
            } => {
                distinct_leads(*survivor_lead_id, *lead_id)?;
                ensure_open(state, *lead_id)?;
                Ok(vec![LeadEvent::Merged(pb::LeadMerged {
                    lead_id: lead_id.to_string(),
                    survivor_lead_id: survivor_lead_id.to_string(),
                })])
            }
            LeadCommand::AbsorbDuplicate {
                lead_id,
                duplicate_lead_id,
                duplicate_contact,
                duplicate_consents,
            } => {
                distinct_leads(*lead_id, *duplicate_lead_id)?;
                ensure_open(state, *lead_id)?;
                let consents_taken_over = duplicate_consents
                    .iter()
                    .filter(|c| !state.consents.contains(c))
                    .fold(Vec::new(), |mut taken: Vec<pb::ConsentGrant>, c| {
                        if !taken.contains(c) {
                            taken.push(*c);
                        }
                        taken
                    });
                Ok(vec![LeadEvent::DuplicateAbsorbed(
                    pb::LeadDuplicateAbsorbed {
                        lead_id: lead_id.to_string(),
                        duplicate_lead_id: duplicate_lead_id.to_string(),
                        duplicate_contact: Some(duplicate_contact.clone()),
                        contact: Some(fill_gaps(&state.contact, duplicate_contact)),
                        consents_taken_over,
                    },
                )])
            }
        }
    }

    fn evolve(mut state: LeadState, event: &LeadEvent) -> LeadState {
        match event {
            LeadEvent::Captured(e) => LeadState {
                lead_id: e.lead_id.clone(),
                status: pb::LeadStatus::New,
                source: e.source.clone(),
                channel: pb::LeadChannel::try_from(e.channel).unwrap_or_default(),
                campaign_id: e.campaign_id.clone(),
                contact: e.contact.clone().unwrap_or_default(),
                consents: e.consents.clone(),
                ..LeadState::default()
            },
            LeadEvent::ContactUpdated(e) => {
                state.contact = e.contact.clone().unwrap_or_default();
                state
            }
            LeadEvent::Scored(e) => {
                state.score = Some(e.score);
                state.score_reason.clone_from(&e.reason);
                state
            }
            LeadEvent::StatusChanged(e) => {
                // A recorded value this build does not know leaves the status
                // as it was rather than making the lead look uncaptured.
                state.status = pb::LeadStatus::try_from(e.to_status).unwrap_or(state.status);
                state.status_reason.clone_from(&e.reason);
                state
            }
            LeadEvent::Converted(e) => {
                state.status = pb::LeadStatus::Converted;
                state.customer_id.clone_from(&e.customer_id);
                state
            }
            LeadEvent::Merged(e) => {
                state.status = pb::LeadStatus::Merged;
                state.survivor_lead_id.clone_from(&e.survivor_lead_id);
                state
            }
            LeadEvent::DuplicateAbsorbed(e) => {
                if let Some(contact) = &e.contact {
                    state.contact = contact.clone();
                }
                state.consents.extend(e.consents_taken_over.iter().copied());
                state.absorbed_lead_ids.push(e.duplicate_lead_id.clone());
                state
            }
        }
    }
}

fn capture(
    state: &LeadState,
    c: &CaptureLead,
    ctx: &mut Context<'_>,
) -> Result<Vec<LeadEvent>, DomainError> {
    let lead_id = c.lead_id.unwrap_or_else(|| ctx.new_id());
    let source = optional_text(&c.source, "source", MAX_SOURCE_CHARS)?;
    if c.channel == pb::LeadChannel::Unspecified {
        return Err(DomainError::invalid(
            "channel",
            "is required (LEAD_CHANNEL_UNSPECIFIED is not a channel)",
        ));
    }
    let contact = reachable_contact(&c.contact, c.region)?;
    validate_consents(&c.consents)?;
    if state.exists() {
        return Err(DomainError::already_exists("lead", lead_id));
    }
    Ok(vec![LeadEvent::Captured(pb::LeadCaptured {
        lead_id: lead_id.to_string(),
        source,
        channel: c.channel.into(),
        campaign_id: c.campaign_id.map(|id| id.to_string()).unwrap_or_default(),
        contact: Some(contact),
        consents: c.consents.clone(),
    })])
}

fn change_status(
    state: &LeadState,
    lead_id: Uuid,
    to: pb::LeadStatus,
    reason: &str,
) -> Result<Vec<LeadEvent>, DomainError> {
    match to {
        pb::LeadStatus::Unspecified => {
            return Err(DomainError::invalid(
                "status",
                "is required (LEAD_STATUS_UNSPECIFIED is not a status)",
            ));
        }
        pb::LeadStatus::Converted => {
            return Err(DomainError::invalid(
                "status",
                "CONVERTED is reached only by converting the lead (ConvertLead)",
            ));
        }
        pb::LeadStatus::Merged => {
            return Err(DomainError::invalid(
                "status",
                "MERGED is reached only by merging the lead into another (MergeLeads)",
            ));
        }
        _ => {}
    }
    let reason = reason_text(reason)?;
    if to == pb::LeadStatus::Disqualified && reason.is_empty() {
        return Err(DomainError::invalid(
            "reason",
            "is required when disqualifying a lead",
        ));
    }
    ensure_open(state, lead_id)?;
    if !transition_allowed(state.status, to) {
        return Err(DomainError::rejected(
            INVALID_STATUS_TRANSITION,
            format!(
                "a lead cannot move from {} to {}",
                status_name(state.status),
                status_name(to)
            ),
        ));
    }
    Ok(vec![LeadEvent::StatusChanged(pb::LeadStatusChanged {
        lead_id: lead_id.to_string(),
        from_status: state.status.into(),
        to_status: to.into(),
        reason,
    })])
}

/// `NotFound` before capture; the final states refuse with their reason code.
fn ensure_open(state: &LeadState, lead_id: Uuid) -> Result<(), DomainError> {
    match state.status {
        pb::LeadStatus::Unspecified => Err(DomainError::not_found("lead", lead_id)),
        pb::LeadStatus::Converted => Err(DomainError::rejected(
            LEAD_CONVERTED,
            format!(
                "lead {lead_id} was converted into customer {}",
                state.customer_id
            ),
        )),
        pb::LeadStatus::Merged => Err(DomainError::rejected(
            LEAD_MERGED,
            format!(
                "lead {lead_id} was merged into lead {}",
                state.survivor_lead_id
            ),
        )),
        _ => Ok(()),
    }
}

fn distinct_leads(survivor: Uuid, duplicate: Uuid) -> Result<(), DomainError> {
    if survivor == duplicate {
        return Err(DomainError::invalid(
            "duplicate_lead_id",
            "must differ from survivor_lead_id: a lead cannot be merged into itself",
        ));
    }
    Ok(())
}

/// The contact data normalised, holding an e-mail address or a phone number.
fn reachable_contact(
    contact: &pb::ContactData,
    region: Region,
) -> Result<pb::ContactData, DomainError> {
    let contact = normalize_contact(contact, region, "contact")?;
    if contact.email.is_empty() && contact.phone.is_empty() {
        return Err(DomainError::invalid(
            "contact",
            "needs an e-mail address or a phone number",
        ));
    }
    Ok(contact)
}

/// Each consent names a known channel and purpose, and each pair appears once.
fn validate_consents(consents: &[pb::ConsentGrant]) -> Result<(), DomainError> {
    for (i, c) in consents.iter().enumerate() {
        match pb::ContactChannel::try_from(c.channel) {
            Ok(pb::ContactChannel::Unspecified) => {
                return Err(DomainError::invalid(
                    format!("consents[{i}].channel"),
                    "is required",
                ));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(DomainError::invalid(
                    format!("consents[{i}].channel"),
                    format!("{} is not a ContactChannel", c.channel),
                ));
            }
        }
        match pb::ConsentPurpose::try_from(c.purpose) {
            Ok(pb::ConsentPurpose::Unspecified) => {
                return Err(DomainError::invalid(
                    format!("consents[{i}].purpose"),
                    "is required",
                ));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(DomainError::invalid(
                    format!("consents[{i}].purpose"),
                    format!("{} is not a ConsentPurpose", c.purpose),
                ));
            }
        }
        if let Some(first) = consents[..i].iter().position(|earlier| earlier == c) {
            return Err(DomainError::invalid(
                format!("consents[{i}]"),
                format!("repeats consents[{first}]: give each channel and purpose once"),
            ));
        }
    }
    Ok(())
}

/// A reason: normalised like any text, at most [`MAX_REASON_CHARS`]; empty
/// when blank.
fn reason_text(input: &str) -> Result<String, DomainError> {
    optional_text(input, "reason", MAX_REASON_CHARS)
}

fn optional_text(input: &str, field: &str, max_chars: usize) -> Result<String, DomainError> {
    let text = normalize_text(input).unwrap_or_default();
    if text.chars().count() > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("is longer than {max_chars} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text)
}

/// `own` with every value it lacks taken from `other`. The name moves as a
/// pair so that a family name is never joined to another person's given name.
fn fill_gaps(own: &pb::ContactData, other: &pb::ContactData) -> pb::ContactData {
    let mut merged = own.clone();
    if own.given_name.is_empty() && own.family_name.is_empty() {
        merged.given_name.clone_from(&other.given_name);
        merged.family_name.clone_from(&other.family_name);
    }
    let take = |mine: &mut String, theirs: &String| {
        if mine.is_empty() {
            mine.clone_from(theirs);
        }
    };
    take(&mut merged.email, &other.email);
    take(&mut merged.phone, &other.phone);
    take(&mut merged.company, &other.company);
    if merged.postal_address.is_none() {
        merged.postal_address.clone_from(&other.postal_address);
    }
    merged
}

/// `WORKING` for `LEAD_STATUS_WORKING`: how messages name a status.
pub fn status_name(status: pb::LeadStatus) -> &'static str {
    let name = status.as_str_name();
    name.strip_prefix("LEAD_STATUS_").unwrap_or(name)
}
