//! Requests to domain commands: ids parsed, enums checked, durations read,
//! each failure naming the request field. Content rules (lengths, ranges,
//! transitions) are the domain's, which names the same fields.

use kizuna_domain::survey::{SubmitSurveyResponse, SurveyLink};
use kizuna_domain::ticket::{
    AssignTicket, ChangeTicketStatus, OpenTicket, PolicyTargets, ReplyToTicket, SetSlaPolicy,
};
use kizuna_domain::time::duration_from_proto;
use kizuna_domain::{DomainError, pb};
use std::time::Duration;
use uuid::Uuid;

pub(crate) use kizuna_command::fields::{optional_id, required_id};

/// A known value of a proto enum (`UNSPECIFIED` included: the domain says
/// where it is required).
fn enum_value<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E, DomainError> {
    E::try_from(value).map_err(|_| DomainError::invalid(field, format!("unknown value {value}")))
}

fn duration(
    field: &str,
    value: Option<&prost_types::Duration>,
) -> Result<Option<Duration>, DomainError> {
    value
        .map(|d| {
            duration_from_proto(d).ok_or_else(|| {
                DomainError::invalid(field, "must be a non-negative, well-formed duration")
            })
        })
        .transpose()
}

/// OpenTicket with the ticket id resolved (`new_id` when the caller chose
/// none). The SLA targets are filled in from the policy when deciding.
pub(crate) fn open_ticket(
    req: &pb::OpenTicketRequest,
    new_id: Uuid,
) -> Result<OpenTicket, DomainError> {
    Ok(OpenTicket {
        ticket_id: Some(optional_id(&req.ticket_id, "ticket_id")?.unwrap_or(new_id)),
        customer_id: required_id(&req.customer_id, "customer_id")?,
        channel: enum_value("channel", req.channel)?,
        subject: req.subject.clone(),
        description: req.description.clone(),
        priority: enum_value("priority", req.priority)?,
        sla: PolicyTargets::default(),
    })
}

pub(crate) fn assign_ticket(req: &pb::AssignTicketRequest) -> Result<AssignTicket, DomainError> {
    Ok(AssignTicket {
        ticket_id: required_id(&req.ticket_id, "ticket_id")?,
        agent_id: req.agent_id.clone(),
    })
}

pub(crate) fn reply_to_ticket(
    req: &pb::ReplyToTicketRequest,
) -> Result<ReplyToTicket, DomainError> {
    Ok(ReplyToTicket {
        ticket_id: required_id(&req.ticket_id, "ticket_id")?,
        author_kind: enum_value("author_kind", req.author_kind)?,
        author_id: req.author_id.clone(),
        visibility: enum_value("visibility", req.visibility)?,
        body: req.body.clone(),
    })
}

pub(crate) fn change_ticket_status(
    req: &pb::ChangeTicketStatusRequest,
) -> Result<ChangeTicketStatus, DomainError> {
    Ok(ChangeTicketStatus {
        ticket_id: required_id(&req.ticket_id, "ticket_id")?,
        status: enum_value("status", req.status)?,
        reason: req.reason.clone(),
    })
}

pub(crate) fn set_sla_policy(req: &pb::SetSlaPolicyRequest) -> Result<SetSlaPolicy, DomainError> {
    Ok(SetSlaPolicy {
        priority: enum_value("priority", req.priority)?,
        first_response: duration("first_response", req.first_response.as_ref())?,
        resolution: duration("resolution", req.resolution.as_ref())?,
    })
}

/// SubmitSurveyResponse with the response id resolved (`new_id` when the
/// caller chose none). A linked ticket's owner is filled in when deciding.
pub(crate) fn submit_survey_response(
    req: &pb::SubmitSurveyResponseRequest,
    new_id: Uuid,
) -> Result<SubmitSurveyResponse, DomainError> {
    use pb::submit_survey_response_request::Link;
    let link = match &req.link {
        None => SurveyLink::None,
        Some(Link::TicketId(id)) => SurveyLink::Ticket {
            ticket_id: required_id(id, "ticket_id")?,
            ticket_customer_id: None,
        },
        Some(Link::CampaignId(id)) => SurveyLink::Campaign(required_id(id, "campaign_id")?),
    };
    Ok(SubmitSurveyResponse {
        response_id: Some(optional_id(&req.response_id, "response_id")?.unwrap_or(new_id)),
        customer_id: required_id(&req.customer_id, "customer_id")?,
        csat: req.csat,
        nps: req.nps,
        comment: req.comment.clone(),
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of<T: std::fmt::Debug>(r: Result<T, DomainError>) -> String {
        match r {
            Err(DomainError::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn unknown_enum_values_and_negative_durations_name_their_field() {
        let req = pb::ChangeTicketStatusRequest {
            ticket_id: Uuid::from_u128(1).to_string(),
            status: 99,
            ..Default::default()
        };
        assert_eq!(field_of(change_ticket_status(&req)), "status");
        let req = pb::SetSlaPolicyRequest {
            priority: pb::TicketPriority::Low as i32,
            resolution: Some(prost_types::Duration {
                seconds: -1,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(field_of(set_sla_policy(&req)), "resolution");
    }

    #[test]
    fn a_creating_command_uses_the_callers_id_or_the_new_one() {
        let new_id = Uuid::from_u128(9);
        let mut req = pb::OpenTicketRequest {
            customer_id: Uuid::from_u128(2).to_string(),
            ..Default::default()
        };
        assert_eq!(
            open_ticket(&req, new_id).expect("valid").ticket_id,
            Some(new_id)
        );
        req.ticket_id = Uuid::from_u128(3).to_string();
        assert_eq!(
            open_ticket(&req, new_id).expect("valid").ticket_id,
            Some(Uuid::from_u128(3))
        );
    }
}
