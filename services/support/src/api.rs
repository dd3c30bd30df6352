//! The `kizuna.v1.SupportService` handlers: validate, build the domain
//! command, run it, reply.

use crate::convert;
use kizuna_command::{
    Attempt, CommandError, CommandMeta, CommandRunner, Committed, Decision, Plan, domain_status,
};
use kizuna_domain::survey::{self, SubmitSurveyResponse, Survey, SurveyCommand, SurveyLink};
use kizuna_domain::ticket::{
    self, OpenTicket, SlaPolicy, SlaPolicyCommand, TargetClock, Ticket, TicketCommand, TicketData,
};
use kizuna_domain::time::duration_to_proto;
use kizuna_domain::{DerivedIds, DomainError, pb};
use pb::support_service_server::SupportService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The SupportService implementation.
#[derive(Clone)]
pub struct SupportApi {
    runner: CommandRunner,
}

impl std::fmt::Debug for SupportApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupportApi").finish_non_exhaustive()
    }
}

impl SupportApi {
    pub(crate) fn new(runner: CommandRunner) -> Self {
        Self { runner }
    }
}

/// Any ticket command. Opening also reads the SLA policy (after the ticket,
/// which stays the primary stream) for the targets of the ticket's priority.
/// Events are tagged with the ticket's customer.
struct TicketDecision {
    ticket_id: Uuid,
    command: TicketCommand,
}

impl Decision for TicketDecision {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let loaded = attempt
            .load::<Ticket>(&ticket::stream(self.ticket_id))
            .await?;
        let (events, customer_id) = match &self.command {
            TicketCommand::Open(open) => {
                let policy = attempt.load::<SlaPolicy>(&ticket::policy_stream()).await?;
                let command = TicketCommand::Open(OpenTicket {
                    sla: policy.state.targets_for(open.priority),
                    ..open.clone()
                });
                (attempt.decide(&loaded, &command)?, Some(open.customer_id))
            }
            other => (
                attempt.decide(&loaded, other)?,
                loaded.state.ticket.as_ref().map(|t| t.customer_id),
            ),
        };
        Ok(Plan::new().append_to(&loaded, customer_id, &events))
    }
}

/// SubmitSurveyResponse: the response stream first (primary), then the
/// linked ticket, whose owner the rule checks.
struct SurveyDecision {
    command: SubmitSurveyResponse,
    response_id: Uuid,
}

impl Decision for SurveyDecision {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let loaded = attempt
            .load::<Survey>(&survey::stream(self.response_id))
            .await?;
        let mut command = self.command.clone();
        if let SurveyLink::Ticket {
            ticket_id,
            ticket_customer_id,
        } = &mut command.link
        {
            let linked = attempt.load::<Ticket>(&ticket::stream(*ticket_id)).await?;
            *ticket_customer_id = linked.state.ticket.map(|t| t.customer_id);
        }
        let events = attempt.decide(&loaded, &SurveyCommand::Submit(command.clone()))?;
        Ok(Plan::new().append_to(&loaded, Some(command.customer_id), &events))
    }
}

fn target_state(t: &TargetClock) -> pb::SlaTargetState {
    pb::SlaTargetState {
        due_at: Some(t.due_at),
        met_at: t.met_at,
        breached_at: t.breached_at,
    }
}

fn ticket_message(t: &TicketData) -> pb::Ticket {
    pb::Ticket {
        ticket_id: t.ticket_id.to_string(),
        customer_id: t.customer_id.to_string(),
        channel: t.channel as i32,
        subject: t.subject.clone(),
        description: t.description.clone(),
        priority: t.priority as i32,
        status: t.status as i32,
        assignee_agent_id: t.assignee.clone(),
        opened_at: Some(t.opened_at),
        first_response: t.sla.first_response.as_ref().map(target_state),
        resolution: t.sla.resolution.as_ref().map(target_state),
        replies: t
            .replies
            .iter()
            .map(|r| pb::TicketReply {
                reply_id: r.reply_id.clone(),
                author_kind: r.author_kind,
                author_id: r.author_id.clone(),
                visibility: r.visibility,
                body: r.body.clone(),
                replied_at: r.replied_at,
            })
            .collect(),
    }
}

fn survey_message(r: &pb::SurveyResponded) -> pb::SurveyResponse {
    use pb::survey_responded::Link as Recorded;
    use pb::survey_response::Link;
    pb::SurveyResponse {
        response_id: r.response_id.clone(),
        customer_id: r.customer_id.clone(),
        csat: r.csat,
        nps: r.nps,
        comment: r.comment.clone(),
        link: r.link.as_ref().map(|l| match l {
            Recorded::TicketId(id) => Link::TicketId(id.clone()),
            Recorded::CampaignId(id) => Link::CampaignId(id.clone()),
        }),
        responded_at: r.responded_at,
    }
}

impl SupportApi {
    async fn run_ticket(
        &self,
        meta: &CommandMeta,
        ticket_id: Uuid,
        command: TicketCommand,
    ) -> Result<Committed, Status> {
        self.runner
            .run(meta, &TicketDecision { ticket_id, command })
            .await
            .map_err(Status::from)
    }
}

#[tonic::async_trait]
impl SupportService for SupportApi {
    #[tracing::instrument(name = "SupportService.OpenTicket", skip_all)]
    async fn open_ticket(
        &self,
        request: Request<pb::OpenTicketRequest>,
    ) -> Result<Response<pb::OpenTicketResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let open = convert::open_ticket(request.get_ref(), DerivedIds::first(meta.command_id))
            .map_err(domain_status)?;
        let ticket_id = open
            .ticket_id
            .unwrap_or_else(|| DerivedIds::first(meta.command_id));
        let committed = self
            .run_ticket(&meta, ticket_id, TicketCommand::Open(open))
            .await?;
        Ok(Response::new(pb::OpenTicketResponse {
            ticket_id: committed
                .created_id(ticket::CATEGORY)
                .unwrap_or(ticket_id)
                .to_string(),
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "SupportService.AssignTicket", skip_all)]
    async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::AssignTicketResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let assign = convert::assign_ticket(request.get_ref()).map_err(domain_status)?;
        let committed = self
            .run_ticket(&meta, assign.ticket_id, TicketCommand::Assign(assign))
            .await?;
        Ok(Response::new(pb::AssignTicketResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "SupportService.ReplyToTicket", skip_all)]
    async fn reply_to_ticket(
        &self,
        request: Request<pb::ReplyToTicketRequest>,
    ) -> Result<Response<pb::ReplyToTicketResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let reply = convert::reply_to_ticket(request.get_ref()).map_err(domain_status)?;
        let committed = self
            .run_ticket(&meta, reply.ticket_id, TicketCommand::Reply(reply))
            .await?;
        Ok(Response::new(pb::ReplyToTicketResponse {
            result: Some(committed.to_proto()),
            // The decider takes the reply's id as its context's first new id.
            reply_id: DerivedIds::first(meta.command_id).to_string(),
        }))
    }

    #[tracing::instrument(name = "SupportService.ChangeTicketStatus", skip_all)]
    async fn change_ticket_status(
        &self,
        request: Request<pb::ChangeTicketStatusRequest>,
    ) -> Result<Response<pb::ChangeTicketStatusResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let change = convert::change_ticket_status(request.get_ref()).map_err(domain_status)?;
        let committed = self
            .run_ticket(&meta, change.ticket_id, TicketCommand::ChangeStatus(change))
            .await?;
        Ok(Response::new(pb::ChangeTicketStatusResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "SupportService.GetTicket", skip_all)]
    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let ticket_id = convert::required_id(&request.get_ref().ticket_id, "ticket_id")
            .map_err(domain_status)?;
        let loaded = self
            .runner
            .load::<Ticket>(&ticket::stream(ticket_id))
            .await
            .map_err(Status::from)?;
        let (Some(ticket), Some(version)) = (loaded.state.ticket.as_ref(), loaded.version) else {
            return Err(domain_status(DomainError::not_found("ticket", ticket_id)));
        };
        Ok(Response::new(pb::GetTicketResponse {
            ticket: Some(ticket_message(ticket)),
            version,
        }))
    }

    #[tracing::instrument(name = "SupportService.SetSlaPolicy", skip_all)]
    async fn set_sla_policy(
        &self,
        request: Request<pb::SetSlaPolicyRequest>,
    ) -> Result<Response<pb::SetSlaPolicyResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let set = convert::set_sla_policy(request.get_ref()).map_err(domain_status)?;
        let committed = self
            .runner
            .execute::<SlaPolicy>(
                &meta,
                &ticket::policy_stream(),
                None,
                &SlaPolicyCommand::Set(set),
            )
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::SetSlaPolicyResponse {
            result: Some(committed.to_proto()),
            policy_id: ticket::default_policy_id().to_string(),
        }))
    }

    #[tracing::instrument(name = "SupportService.GetSlaPolicy", skip_all)]
    async fn get_sla_policy(
        &self,
        _request: Request<pb::GetSlaPolicyRequest>,
    ) -> Result<Response<pb::GetSlaPolicyResponse>, Status> {
        let loaded = self
            .runner
            .load::<SlaPolicy>(&ticket::policy_stream())
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::GetSlaPolicyResponse {
            policy_id: ticket::default_policy_id().to_string(),
            targets: loaded
                .state
                .targets
                .iter()
                .map(|(priority, t)| pb::SlaPolicyTargets {
                    priority: *priority as i32,
                    first_response: t.first_response.map(duration_to_proto),
                    resolution: t.resolution.map(duration_to_proto),
                })
                .collect(),
            version: loaded.version,
        }))
    }

    #[tracing::instrument(name = "SupportService.SubmitSurveyResponse", skip_all)]
    async fn submit_survey_response(
        &self,
        request: Request<pb::SubmitSurveyResponseRequest>,
    ) -> Result<Response<pb::SubmitSurveyResponseResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command =
            convert::submit_survey_response(request.get_ref(), DerivedIds::first(meta.command_id))
                .map_err(domain_status)?;
        let response_id = command
            .response_id
            .unwrap_or_else(|| DerivedIds::first(meta.command_id));
        let committed = self
            .runner
            .run(
                &meta,
                &SurveyDecision {
                    command,
                    response_id,
                },
            )
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::SubmitSurveyResponseResponse {
            response_id: committed
                .created_id(survey::CATEGORY)
                .unwrap_or(response_id)
                .to_string(),
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "SupportService.GetSurveyResponse", skip_all)]
    async fn get_survey_response(
        &self,
        request: Request<pb::GetSurveyResponseRequest>,
    ) -> Result<Response<pb::GetSurveyResponseResponse>, Status> {
        let response_id = convert::required_id(&request.get_ref().response_id, "response_id")
            .map_err(domain_status)?;
        let loaded = self
            .runner
            .load::<Survey>(&survey::stream(response_id))
            .await
            .map_err(Status::from)?;
        let (Some(response), Some(version)) = (loaded.state.response.as_ref(), loaded.version)
        else {
            return Err(domain_status(DomainError::not_found(
                "survey_response",
                response_id,
            )));
        };
        Ok(Response::new(pb::GetSurveyResponseResponse {
            response: Some(survey_message(response)),
            version,
        }))
    }
}
