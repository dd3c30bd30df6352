//! Requests to domain commands, and state to replies.
//!
//! Only what protobuf cannot express is checked here (ids are strings, enums
//! are open numbers); the business input rules (contact data, lengths,
//! consents) live in the decider so that every caller gets them. Errors name
//! the request field.

use crate::duplicates::{Candidate, MatchField, Party};
use kizuna_domain::DomainError;
use kizuna_domain::contact::Region;
use kizuna_domain::lead::{CaptureLead, LeadCommand, LeadState};
use kizuna_domain::pb;
use uuid::Uuid;

/// The stream of lead `id`.
pub(crate) fn lead_stream(id: Uuid) -> String {
    format!("lead-{id}")
}

/// The stream of customer `id`.
pub(crate) fn customer_stream(id: Uuid) -> String {
    format!("customer-{id}")
}

pub(crate) use kizuna_command::fields::{optional_id, required_id};

fn channel(value: i32) -> Result<pb::LeadChannel, DomainError> {
    pb::LeadChannel::try_from(value)
        .map_err(|_| DomainError::invalid("channel", format!("{value} is not a LeadChannel")))
}

fn status(value: i32) -> Result<pb::LeadStatus, DomainError> {
    pb::LeadStatus::try_from(value)
        .map_err(|_| DomainError::invalid("status", format!("{value} is not a LeadStatus")))
}

/// `CaptureLead` with the lead id already chosen (given or derived).
pub(crate) fn capture(
    req: &pb::CaptureLeadRequest,
    lead_id: Uuid,
    region: Region,
) -> Result<LeadCommand, DomainError> {
    Ok(LeadCommand::Capture(CaptureLead {
        lead_id: Some(lead_id),
        source: req.source.clone(),
        channel: channel(req.channel)?,
        campaign_id: optional_id(&req.campaign_id, "campaign_id")?,
        contact: req.contact.clone().unwrap_or_default(),
        consents: req.consents.clone(),
        region,
    }))
}

pub(crate) fn update_contact(
    req: &pb::UpdateLeadContactRequest,
    region: Region,
) -> Result<LeadCommand, DomainError> {
    Ok(LeadCommand::UpdateContact {
        lead_id: required_id(&req.lead_id, "lead_id")?,
        contact: req.contact.clone().unwrap_or_default(),
        region,
    })
}

pub(crate) fn score(req: &pb::ScoreLeadRequest) -> Result<LeadCommand, DomainError> {
    Ok(LeadCommand::Score {
        lead_id: required_id(&req.lead_id, "lead_id")?,
        score: req.score,
        reason: req.reason.clone(),
    })
}

pub(crate) fn change_status(req: &pb::ChangeLeadStatusRequest) -> Result<LeadCommand, DomainError> {
    Ok(LeadCommand::ChangeStatus {
        lead_id: required_id(&req.lead_id, "lead_id")?,
        status: status(req.status)?,
        reason: req.reason.clone(),
    })
}

/// The reply's view of a lead.
pub(crate) fn lead_to_proto(state: &LeadState) -> pb::Lead {
    pb::Lead {
        lead_id: state.lead_id.clone(),
        status: state.status.into(),
        source: state.source.clone(),
        channel: state.channel.into(),
        campaign_id: state.campaign_id.clone(),
        contact: Some(state.contact.clone()),
        consents: state.consents.clone(),
        score: state.score,
        score_reason: state.score_reason.clone(),
        status_reason: state.status_reason.clone(),
        customer_id: state.customer_id.clone(),
        survivor_lead_id: state.survivor_lead_id.clone(),
        absorbed_lead_ids: state.absorbed_lead_ids.clone(),
    }
}

pub(crate) fn candidate_to_proto(c: Candidate) -> pb::DuplicateCandidate {
    use pb::duplicate_candidate::Party as P;
    pb::DuplicateCandidate {
        party: Some(match c.party {
            Party::Lead(id) => P::LeadId(id.to_string()),
            Party::Customer(id) => P::CustomerId(id.to_string()),
        }),
        matched_fields: c
            .matched
            .into_iter()
            .map(|f| {
                match f {
                    MatchField::Email => pb::DuplicateMatchField::Email,
                    MatchField::Phone => pb::DuplicateMatchField::Phone,
                    MatchField::Name => pb::DuplicateMatchField::Name,
                }
                .into()
            })
            .collect(),
        contact: Some(c.contact),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<impl std::fmt::Debug, DomainError>) -> String {
        match r {
            Err(DomainError::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn unknown_enum_numbers_name_their_field() {
        let req = pb::ChangeLeadStatusRequest {
            lead_id: Uuid::from_u128(1).to_string(),
            status: 42,
            ..Default::default()
        };
        assert_eq!(field_of(change_status(&req)), "status");
        let req = pb::CaptureLeadRequest {
            channel: -3,
            ..Default::default()
        };
        let jp: Region = "JP".parse().expect("JP");
        assert_eq!(field_of(capture(&req, Uuid::from_u128(1), jp)), "channel");
    }
}
