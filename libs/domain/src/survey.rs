//! Survey responses: CSAT and NPS, linked to a ticket, a campaign or nothing.
//!
//! One stream per response (`survey-{response_id}`), written once. A response
//! linked to a ticket must name an existing ticket of the same customer, so
//! satisfaction per ticket is never attributed to the wrong person; the
//! service reads the ticket and passes its owner in the command.
//!
//! Reason codes: [`TICKET_OF_ANOTHER_CUSTOMER`].

use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::pb;
use crate::ticket::text::{self, Lines};
use uuid::Uuid;

crate::event_messages! {
    pb::SurveyResponded => "survey.responded" version 1,
}

crate::event_enum! {
    /// Events of the survey stream.
    pub enum SurveyEvent {
        /// A customer answered.
        Responded(pb::SurveyResponded),
    }
}

/// The stream category of survey responses.
pub const CATEGORY: &str = "survey";

/// The linked ticket belongs to another customer.
pub const TICKET_OF_ANOTHER_CUSTOMER: &str = "TICKET_OF_ANOTHER_CUSTOMER";

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;

/// Accepted CSAT scores.
pub const CSAT_RANGE: std::ops::RangeInclusive<i32> = 1..=5;

/// Accepted NPS scores.
pub const NPS_RANGE: std::ops::RangeInclusive<i32> = 0..=10;

/// The stream of response `response_id`.
pub fn stream(response_id: Uuid) -> String {
    format!("{CATEGORY}-{response_id}")
}

/// What a response is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SurveyLink {
    /// A general survey.
    None,
    /// A ticket, with its customer as the service found it (`None`: the ticket
    /// does not exist).
    Ticket {
        /// The ticket.
        ticket_id: Uuid,
        /// The ticket's customer, if the ticket exists.
        ticket_customer_id: Option<Uuid>,
    },
    /// A campaign.
    Campaign(Uuid),
}

/// Records a customer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitSurveyResponse {
    /// Caller-chosen id; `None`: a new id from the context.
    pub response_id: Option<Uuid>,
    /// The customer who answers.
    pub customer_id: Uuid,
    /// Satisfaction, 1..=5.
    pub csat: Option<i32>,
    /// Net promoter score, 0..=10.
    pub nps: Option<i32>,
    /// Comment, at most 2000 characters.
    pub comment: String,
    /// What it was about.
    pub link: SurveyLink,
}

/// What a caller asks of a survey response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SurveyCommand {
    /// Record a response.
    Submit(SubmitSurveyResponse),
}

/// The response's state: `None` until it is submitted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SurveyState {
    /// The response as recorded.
    pub response: Option<pb::SurveyResponded>,
}

/// The survey response's rules.
#[derive(Debug)]
pub struct Survey;

fn check_score(
    field: &str,
    score: Option<i32>,
    range: std::ops::RangeInclusive<i32>,
) -> Result<(), DomainError> {
    match score {
        Some(s) if !range.contains(&s) => Err(DomainError::invalid(
            field,
            format!("{s} is outside {}..={}", range.start(), range.end()),
        )),
        _ => Ok(()),
    }
}

impl Decider for Survey {
    type State = SurveyState;
    type Command = SurveyCommand;
    type Event = SurveyEvent;

    fn decide(
        state: &SurveyState,
        command: &SurveyCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<SurveyEvent>, DomainError> {
        let SurveyCommand::Submit(cmd) = command;
        if let Some(r) = &state.response {
            return Err(DomainError::already_exists(
                "survey_response",
                &r.response_id,
            ));
        }
        if cmd.response_id.is_some_and(|id| id.is_nil()) {
            return Err(DomainError::invalid(
                "response_id",
                "the nil UUID is not allowed",
            ));
        }
        if cmd.customer_id.is_nil() {
            return Err(DomainError::invalid("customer_id", "is required"));
        }
        if cmd.csat.is_none() && cmd.nps.is_none() {
            return Err(DomainError::invalid(
                "csat",
                "give a CSAT score, an NPS score or both",
            ));
        }
        check_score("csat", cmd.csat, CSAT_RANGE)?;
        check_score("nps", cmd.nps, NPS_RANGE)?;
        let comment = text::check(
            "comment",
            &cmd.comment,
            MAX_COMMENT_CHARS,
            false,
            Lines::Many,
        )?;
        let link = match &cmd.link {
            SurveyLink::None => None,
            SurveyLink::Ticket { ticket_id, .. } if ticket_id.is_nil() => {
                return Err(DomainError::invalid(
                    "ticket_id",
                    "the nil UUID is not allowed",
                ));
            }
            SurveyLink::Ticket {
                ticket_id,
                ticket_customer_id,
            } => match ticket_customer_id {
                None => return Err(DomainError::not_found("ticket", ticket_id)),
                Some(owner) if *owner != cmd.customer_id => {
                    return Err(DomainError::rejected(
                        TICKET_OF_ANOTHER_CUSTOMER,
                        format!(
                            "ticket {ticket_id} belongs to another customer than {}",
                            cmd.customer_id
                        ),
                    ));
                }
                Some(_) => Some(pb::survey_responded::Link::TicketId(ticket_id.to_string())),
            },
            SurveyLink::Campaign(id) if id.is_nil() => {
                return Err(DomainError::invalid(
                    "campaign_id",
                    "the nil UUID is not allowed",
                ));
            }
            SurveyLink::Campaign(id) => {
                Some(pb::survey_responded::Link::CampaignId(id.to_string()))
            }
        };
        let response_id = cmd.response_id.unwrap_or_else(|| ctx.new_id());
        Ok(vec![SurveyEvent::Responded(pb::SurveyResponded {
            response_id: response_id.to_string(),
            customer_id: cmd.customer_id.to_string(),
            csat: cmd.csat,
            nps: cmd.nps,
            comment,
            link,
            responded_at: Some(ctx.now),
        })])
    }

    fn evolve(mut state: SurveyState, event: &SurveyEvent) -> SurveyState {
        let SurveyEvent::Responded(e) = event;
        state.response = Some(e.clone());
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{default_now, given};

    fn customer() -> Uuid {
        Uuid::from_u128(0xc0)
    }

    fn submit() -> SubmitSurveyResponse {
        SubmitSurveyResponse {
            response_id: None,
            customer_id: customer(),
            csat: Some(4),
            nps: Some(9),
            comment: "  quick and kind  ".into(),
            link: SurveyLink::None,
        }
    }

    fn responded() -> pb::SurveyResponded {
        pb::SurveyResponded {
            response_id: Uuid::from_u128(1).to_string(),
            customer_id: customer().to_string(),
            csat: Some(4),
            nps: Some(9),
            comment: "quick and kind".into(),
            link: None,
            responded_at: Some(default_now()),
        }
    }

    #[test]
    fn a_response_gets_a_new_id_and_a_trimmed_comment() {
        let state = given::<Survey>([])
            .when(SurveyCommand::Submit(submit()))
            .then([SurveyEvent::Responded(responded())]);
        assert_eq!(state.response, Some(responded()));
    }

    #[test]
    fn a_caller_chosen_id_is_kept_and_a_taken_one_already_exists() {
        let id = Uuid::from_u128(0x51);
        let events = given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                response_id: Some(id),
                ..submit()
            }))
            .events();
        let [SurveyEvent::Responded(e)] = events.as_slice() else {
            panic!("one event: {events:?}");
        };
        assert_eq!(e.response_id, id.to_string());
        given::<Survey>([SurveyEvent::Responded(responded())])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                response_id: Some(Uuid::from_u128(1)),
                ..submit()
            }))
            .then_error(DomainError::already_exists(
                "survey_response",
                Uuid::from_u128(1),
            ));
    }

    #[test]
    fn csat_alone_or_nps_alone_is_enough_but_one_is_required() {
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                nps: None,
                ..submit()
            }))
            .events();
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                csat: None,
                ..submit()
            }))
            .events();
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                csat: None,
                nps: None,
                ..submit()
            }))
            .then_invalid("csat");
    }

    #[test]
    fn scores_outside_their_ranges_are_invalid() {
        for csat in [0, 6, -1, i32::MAX] {
            given::<Survey>([])
                .when(SurveyCommand::Submit(SubmitSurveyResponse {
                    csat: Some(csat),
                    ..submit()
                }))
                .then_invalid("csat");
        }
        for nps in [-1, 11, i32::MIN] {
            given::<Survey>([])
                .when(SurveyCommand::Submit(SubmitSurveyResponse {
                    nps: Some(nps),
                    ..submit()
                }))
                .then_invalid("nps");
        }
        for (csat, nps) in [(1, 0), (5, 10)] {
            given::<Survey>([])
                .when(SurveyCommand::Submit(SubmitSurveyResponse {
                    csat: Some(csat),
                    nps: Some(nps),
                    ..submit()
                }))
                .events();
        }
    }

    #[test]
    fn the_comment_is_bounded_and_the_ids_must_be_real() {
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                comment: "あ".repeat(MAX_COMMENT_CHARS + 1),
                ..submit()
            }))
            .then_invalid("comment");
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                comment: "あ".repeat(MAX_COMMENT_CHARS),
                ..submit()
            }))
            .events();
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                comment: "bell\u{7}".into(),
                ..submit()
            }))
            .then_invalid("comment");
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                customer_id: Uuid::nil(),
                ..submit()
            }))
            .then_invalid("customer_id");
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                response_id: Some(Uuid::nil()),
                ..submit()
            }))
            .then_invalid("response_id");
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                link: SurveyLink::Campaign(Uuid::nil()),
                ..submit()
            }))
            .then_invalid("campaign_id");
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                link: SurveyLink::Ticket {
                    ticket_id: Uuid::nil(),
                    ticket_customer_id: Some(customer()),
                },
                ..submit()
            }))
            .then_invalid("ticket_id");
    }

    #[test]
    fn a_linked_ticket_must_exist_and_be_the_customers_own() {
        let ticket_id = Uuid::from_u128(0x71);
        let state = given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                link: SurveyLink::Ticket {
                    ticket_id,
                    ticket_customer_id: Some(customer()),
                },
                ..submit()
            }))
            .then([SurveyEvent::Responded(pb::SurveyResponded {
                link: Some(pb::survey_responded::Link::TicketId(ticket_id.to_string())),
                ..responded()
            })]);
        assert!(state.response.is_some());
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                link: SurveyLink::Ticket {
                    ticket_id,
                    ticket_customer_id: None,
                },
                ..submit()
            }))
            .then_not_found("ticket");
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                link: SurveyLink::Ticket {
                    ticket_id,
                    ticket_customer_id: Some(Uuid::from_u128(0xc1)),
                },
                ..submit()
            }))
            .then_rejected(TICKET_OF_ANOTHER_CUSTOMER);
    }

    #[test]
    fn a_campaign_link_is_recorded() {
        let campaign = Uuid::from_u128(0xca);
        given::<Survey>([])
            .when(SurveyCommand::Submit(SubmitSurveyResponse {
                link: SurveyLink::Campaign(campaign),
                ..submit()
            }))
            .then([SurveyEvent::Responded(pb::SurveyResponded {
                link: Some(pb::survey_responded::Link::CampaignId(campaign.to_string())),
                ..responded()
            })]);
    }

    #[test]
    fn events_round_trip_through_their_payload() {
        use crate::event::DomainEvent;
        let e = SurveyEvent::Responded(responded());
        let back = SurveyEvent::decode(
            e.event_type(),
            e.schema_version(),
            &e.encode_payload(),
            &crate::Upcasters::new(),
        )
        .expect("decodes");
        assert_eq!(back, Some(e));
        assert_eq!(SurveyEvent::catalog(), [("survey.responded", 1)]);
    }
}
