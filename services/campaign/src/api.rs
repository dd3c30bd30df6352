//! The tonic implementation: validate, build the domain command, run, reply.

use kizuna_command::{CommandError, CommandMeta, CommandRunner, Committed};
use kizuna_domain::campaign::{
    self, AttributeConversion, Campaign, CampaignCommand, Outreach, OutreachEvent, OutreachState,
    RecordCost, RecordResponse, Response as SendResponse, roi,
};
use kizuna_domain::{Decider, DerivedIds, DomainError};
use kizuna_eventlog::Direction;
use kizuna_proto::v1 as pb;
use kizuna_proto::v1::campaign_service_server::CampaignService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::convert;
use crate::error::CampaignError;
use crate::records::RecordOnSend;
use crate::send::SendToCustomer;

/// Events read per page by GetOutreach.
const READ_PAGE: usize = 512;

/// How many times SendToCustomer decides in all before ABORTED. Sends to one
/// customer race by design (every campaign appends to the same outreach
/// stream), and each lost race means another decision landed, so the loop
/// always makes progress; the default budget of the runner is for streams
/// that are rarely contended.
pub const SEND_MAX_ATTEMPTS: u32 = 128;

/// Stripes of the in-process send lock (see [`CampaignApi`]).
const SEND_LOCK_STRIPES: usize = 64;

/// The CampaignService implementation.
#[derive(Debug, Clone)]
pub struct CampaignApi {
    runner: CommandRunner,
    /// The same runner with [`SEND_MAX_ATTEMPTS`], for SendToCustomer.
    send_runner: CommandRunner,
    /// Sends to one customer from this process take turns (customer id
    /// modulo the stripes): racing on the outreach stream is still what keeps
    /// two processes from both winning a slot, but inside one process a
    /// burst of sends to a customer then decides one after the other instead
    /// of every loser reloading and deciding again.
    send_locks: std::sync::Arc<[tokio::sync::Mutex<()>; SEND_LOCK_STRIPES]>,
}

/// `Ok(v)` or the domain error as a status.
fn check<T>(r: Result<T, DomainError>) -> Result<T, Status> {
    r.map_err(|e| Status::from(CampaignError::from(e)))
}

impl CampaignApi {
    /// The service over `runner`'s log.
    pub fn new(runner: CommandRunner) -> Self {
        let send_runner = runner.clone().with_max_attempts(SEND_MAX_ATTEMPTS);
        Self {
            runner,
            send_runner,
            send_locks: std::sync::Arc::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
        }
    }

    /// Runs a command on one campaign's stream.
    async fn campaign_command(
        &self,
        meta: &CommandMeta,
        campaign_id: Uuid,
        command: &CampaignCommand,
    ) -> Result<Committed, Status> {
        self.runner
            .execute::<Campaign>(meta, &campaign::stream(campaign_id), None, command)
            .await
            .map_err(Status::from)
    }

    /// Runs a record about a send.
    async fn record(&self, meta: &CommandMeta, record: &RecordOnSend) -> Result<Committed, Status> {
        self.runner.run(meta, record).await.map_err(Status::from)
    }

    /// The status change `command` of the campaign named in a lifecycle request.
    async fn lifecycle(
        &self,
        command: Option<pb::CommandMetadata>,
        metadata: &tonic::metadata::MetadataMap,
        campaign_id: &str,
        make: fn(Uuid) -> CampaignCommand,
    ) -> Result<pb::CommandResult, Status> {
        // Launching checks the window against "now": the server's.
        let meta = CommandMeta::from_request(command, metadata)?.at_server_time()?;
        let campaign_id = check(convert::required_id(campaign_id, "campaign_id"))?;
        let committed = self
            .campaign_command(&meta, campaign_id, &make(campaign_id))
            .await?;
        Ok(committed.to_proto())
    }

    /// The decision a SendToCustomer command appended, read back by the
    /// events' derived ids, so a replay reports the first decision.
    async fn decision(
        &self,
        command_id: Uuid,
        committed: &Committed,
    ) -> Result<pb::OutreachDecision, CampaignError> {
        let mut decision = pb::OutreachDecision::default();
        let events: Vec<OutreachEvent> = self
            .runner
            .command_events(command_id, committed.event_types.len())
            .await?;
        for event in events {
            match event {
                OutreachEvent::SendApproved(e) => {
                    decision.outcome = Some(pb::outreach_decision::Outcome::Approved(e));
                }
                OutreachEvent::SendSuppressed(e) => {
                    decision.outcome = Some(pb::outreach_decision::Outcome::Suppressed(e));
                }
                OutreachEvent::SlotReleased(e) => decision.released.push(e),
            }
        }
        if decision.outcome.is_none() {
            // The id's first command was not a send, so there is no decision
            // to answer with.
            return Err(CommandError::reused_command_id().into());
        }
        Ok(decision)
    }

    /// Every event of a customer's outreach stream, and its last version.
    async fn outreach_events(
        &self,
        customer_id: Uuid,
    ) -> Result<(Vec<OutreachEvent>, Option<u64>), CampaignError> {
        let stream = campaign::outreach::stream(customer_id);
        let mut events = Vec::new();
        let mut version = None;
        let mut from = 0;
        loop {
            let slice = self
                .runner
                .store()
                .read_stream(&stream, Direction::Forward, Some(from), READ_PAGE)
                .await?;
            let page = slice.events.len();
            for e in &slice.events {
                events.push(self.runner.decode(e)?);
                version = Some(e.stream_version);
                from = e.stream_version + 1;
            }
            if page < READ_PAGE || slice.last_version.is_none_or(|last| from > last) {
                return Ok((events, version));
            }
        }
    }
}

/// Every channel, in `ContactChannel` order.
const CHANNELS: [pb::ContactChannel; 5] = [
    pb::ContactChannel::Email,
    pb::ContactChannel::Sms,
    pb::ContactChannel::Push,
    pb::ContactChannel::Postal,
    pb::ContactChannel::Phone,
];

#[tonic::async_trait]
impl CampaignService for CampaignApi {
    #[tracing::instrument(name = "CampaignService.CreateCampaign", skip_all)]
    async fn create_campaign(
        &self,
        request: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::CreateCampaignResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let create = check(convert::create(request.get_ref()))?;
        // Without a caller-chosen id the decider takes the first derived id;
        // the stream must be named for the same one.
        let campaign_id = create
            .campaign_id
            .unwrap_or_else(|| DerivedIds::first(meta.command_id));
        let command = CampaignCommand::Create(create);
        let committed = self
            .runner
            .execute_new::<Campaign>(&meta, &campaign::stream(campaign_id), None, &command)
            .await
            .map_err(Status::from)?;
        // A replay reports the campaign the first run created.
        let campaign_id = committed
            .created_id(campaign::CATEGORY)
            .unwrap_or(campaign_id);
        Ok(Response::new(pb::CreateCampaignResponse {
            result: Some(committed.to_proto()),
            campaign_id: campaign_id.to_string(),
        }))
    }

    #[tracing::instrument(name = "CampaignService.LaunchCampaign", skip_all)]
    async fn launch_campaign(
        &self,
        request: Request<pb::LaunchCampaignRequest>,
    ) -> Result<Response<pb::LaunchCampaignResponse>, Status> {
        let req = request.get_ref();
        let result = self
            .lifecycle(
                req.command.clone(),
                request.metadata(),
                &req.campaign_id,
                |campaign_id| CampaignCommand::Launch { campaign_id },
            )
            .await?;
        Ok(Response::new(pb::LaunchCampaignResponse {
            result: Some(result),
        }))
    }

    #[tracing::instrument(name = "CampaignService.PauseCampaign", skip_all)]
    async fn pause_campaign(
        &self,
        request: Request<pb::PauseCampaignRequest>,
    ) -> Result<Response<pb::PauseCampaignResponse>, Status> {
        let req = request.get_ref();
        let result = self
            .lifecycle(
                req.command.clone(),
                request.metadata(),
                &req.campaign_id,
                |campaign_id| CampaignCommand::Pause { campaign_id },
            )
            .await?;
        Ok(Response::new(pb::PauseCampaignResponse {
            result: Some(result),
        }))
    }

    #[tracing::instrument(name = "CampaignService.ResumeCampaign", skip_all)]
    async fn resume_campaign(
        &self,
        request: Request<pb::ResumeCampaignRequest>,
    ) -> Result<Response<pb::ResumeCampaignResponse>, Status> {
        let req = request.get_ref();
        let result = self
            .lifecycle(
                req.command.clone(),
                request.metadata(),
                &req.campaign_id,
                |campaign_id| CampaignCommand::Resume { campaign_id },
            )
            .await?;
        Ok(Response::new(pb::ResumeCampaignResponse {
            result: Some(result),
        }))
    }

    #[tracing::instrument(name = "CampaignService.CompleteCampaign", skip_all)]
    async fn complete_campaign(
        &self,
        request: Request<pb::CompleteCampaignRequest>,
    ) -> Result<Response<pb::CompleteCampaignResponse>, Status> {
        let req = request.get_ref();
        let result = self
            .lifecycle(
                req.command.clone(),
                request.metadata(),
                &req.campaign_id,
                |campaign_id| CampaignCommand::Complete { campaign_id },
            )
            .await?;
        Ok(Response::new(pb::CompleteCampaignResponse {
            result: Some(result),
        }))
    }

    #[tracing::instrument(name = "CampaignService.TargetCustomers", skip_all)]
    async fn target_customers(
        &self,
        request: Request<pb::TargetCustomersRequest>,
    ) -> Result<Response<pb::TargetCustomersResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let target = check(convert::target(request.get_ref()))?;
        let campaign_id = target.campaign_id;
        let command = CampaignCommand::Target(target);
        let committed = self.campaign_command(&meta, campaign_id, &command).await?;
        Ok(Response::new(pb::TargetCustomersResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CampaignService.SendToCustomer", skip_all)]
    async fn send_to_customer(
        &self,
        request: Request<pb::SendToCustomerRequest>,
    ) -> Result<Response<pb::SendToCustomerResponse>, Status> {
        // The window, the slot and the frequency cap are judged at "now":
        // the server's, never a time the caller sends.
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?
                .at_server_time()?;
        let req = request.get_ref();
        let send = SendToCustomer {
            campaign_id: check(convert::required_id(&req.campaign_id, "campaign_id"))?,
            customer_id: check(convert::required_id(&req.customer_id, "customer_id"))?,
        };
        let stripe = (send.customer_id.as_u128() % SEND_LOCK_STRIPES as u128) as usize;
        let turn = self.send_locks[stripe].lock().await;
        let committed = self
            .send_runner
            .run(&meta, &send)
            .await
            .map_err(Status::from)?;
        drop(turn);
        let decision = self.decision(meta.command_id, &committed).await?;
        Ok(Response::new(pb::SendToCustomerResponse {
            result: Some(committed.to_proto()),
            decision: Some(decision),
        }))
    }

    #[tracing::instrument(name = "CampaignService.RecordDelivery", skip_all)]
    async fn record_delivery(
        &self,
        request: Request<pb::RecordDeliveryRequest>,
    ) -> Result<Response<pb::RecordDeliveryResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.get_ref();
        let send = check(convert::send_ref(
            &req.campaign_id,
            &req.send_id,
            &req.customer_id,
        ))?;
        let record = RecordOnSend::new(
            send,
            CampaignCommand::RecordResponse(RecordResponse {
                send,
                response: SendResponse::Delivered,
            }),
        );
        let committed = self.record(&meta, &record).await?;
        Ok(Response::new(pb::RecordDeliveryResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CampaignService.RecordBounce", skip_all)]
    async fn record_bounce(
        &self,
        request: Request<pb::RecordBounceRequest>,
    ) -> Result<Response<pb::RecordBounceResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.get_ref();
        let send = check(convert::send_ref(
            &req.campaign_id,
            &req.send_id,
            &req.customer_id,
        ))?;
        let record = RecordOnSend::bounce(send, req.permanent, req.reason.clone());
        let committed = self.record(&meta, &record).await?;
        Ok(Response::new(pb::RecordBounceResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CampaignService.RecordOpen", skip_all)]
    async fn record_open(
        &self,
        request: Request<pb::RecordOpenRequest>,
    ) -> Result<Response<pb::RecordOpenResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.get_ref();
        let send = check(convert::send_ref(
            &req.campaign_id,
            &req.send_id,
            &req.customer_id,
        ))?;
        let record = RecordOnSend::new(
            send,
            CampaignCommand::RecordResponse(RecordResponse {
                send,
                response: SendResponse::Opened,
            }),
        );
        let committed = self.record(&meta, &record).await?;
        Ok(Response::new(pb::RecordOpenResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CampaignService.RecordClick", skip_all)]
    async fn record_click(
        &self,
        request: Request<pb::RecordClickRequest>,
    ) -> Result<Response<pb::RecordClickResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.get_ref();
        let send = check(convert::send_ref(
            &req.campaign_id,
            &req.send_id,
            &req.customer_id,
        ))?;
        let record = RecordOnSend::new(
            send,
            CampaignCommand::RecordResponse(RecordResponse {
                send,
                response: SendResponse::Clicked {
                    link: req.link.clone(),
                },
            }),
        );
        let committed = self.record(&meta, &record).await?;
        Ok(Response::new(pb::RecordClickResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CampaignService.RecordResponse", skip_all)]
    async fn record_response(
        &self,
        request: Request<pb::RecordResponseRequest>,
    ) -> Result<Response<pb::RecordResponseResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.get_ref();
        let send = check(convert::send_ref(
            &req.campaign_id,
            &req.send_id,
            &req.customer_id,
        ))?;
        let record = RecordOnSend::new(
            send,
            CampaignCommand::RecordResponse(RecordResponse {
                send,
                response: SendResponse::Responded {
                    response: req.text.clone(),
                },
            }),
        );
        let committed = self.record(&meta, &record).await?;
        Ok(Response::new(pb::RecordResponseResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CampaignService.AttributeConversion", skip_all)]
    async fn attribute_conversion(
        &self,
        request: Request<pb::AttributeConversionRequest>,
    ) -> Result<Response<pb::AttributeConversionResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.get_ref();
        let send = check(convert::send_ref(
            &req.campaign_id,
            &req.send_id,
            &req.customer_id,
        ))?;
        let record = RecordOnSend::new(
            send,
            CampaignCommand::AttributeConversion(AttributeConversion {
                send,
                order_id: req.order_id.clone(),
                revenue: check(convert::revenue(req))?,
            }),
        );
        let committed = self.record(&meta, &record).await?;
        Ok(Response::new(pb::AttributeConversionResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CampaignService.RecordCost", skip_all)]
    async fn record_cost(
        &self,
        request: Request<pb::RecordCostRequest>,
    ) -> Result<Response<pb::RecordCostResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.get_ref();
        let send = check(convert::send_ref(
            &req.campaign_id,
            &req.send_id,
            &req.customer_id,
        ))?;
        let record = RecordOnSend::new(
            send,
            CampaignCommand::RecordCost(RecordCost {
                send,
                cost: check(convert::cost(req))?,
                reason: req.reason.clone(),
            }),
        );
        let committed = self.record(&meta, &record).await?;
        Ok(Response::new(pb::RecordCostResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CampaignService.GetCampaign", skip_all)]
    async fn get_campaign(
        &self,
        request: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::GetCampaignResponse>, Status> {
        let campaign_id = check(convert::required_id(
            &request.get_ref().campaign_id,
            "campaign_id",
        ))?;
        let loaded = self
            .runner
            .load::<Campaign>(&campaign::stream(campaign_id))
            .await
            .map_err(Status::from)?;
        let (Some(c), Some(r), Some(version)) =
            (&loaded.state.campaign, roi(&loaded.state), loaded.version)
        else {
            return Err(
                CampaignError::from(DomainError::not_found("campaign", campaign_id)).into(),
            );
        };
        Ok(Response::new(pb::GetCampaignResponse {
            campaign: Some(convert::campaign(c, &r)),
            version,
        }))
    }

    #[tracing::instrument(name = "CampaignService.GetOutreach", skip_all)]
    async fn get_outreach(
        &self,
        request: Request<pb::GetOutreachRequest>,
    ) -> Result<Response<pb::GetOutreachResponse>, Status> {
        let req = request.get_ref();
        let customer_id = check(convert::required_id(&req.customer_id, "customer_id"))?;
        let limit = check(convert::suppression_limit(req.max_suppressions))?;
        let (events, version) = self.outreach_events(customer_id).await?;
        let mut state = OutreachState::default();
        let mut sends: Vec<pb::OutreachSend> = Vec::new();
        let mut suppressions = Vec::new();
        for e in &events {
            state = Outreach::evolve(state, e);
            match e {
                OutreachEvent::SendApproved(a) => sends.push(pb::OutreachSend {
                    approved: Some(a.clone()),
                    released_at: None,
                }),
                OutreachEvent::SendSuppressed(s) => suppressions.push(s.clone()),
                OutreachEvent::SlotReleased(r) => {
                    for s in sends
                        .iter_mut()
                        .filter(|s| s.approved.as_ref().is_some_and(|a| a.send_id == r.send_id))
                    {
                        s.released_at = r.released_at;
                    }
                }
            }
        }
        let suppression_count = u64::try_from(suppressions.len()).unwrap_or(u64::MAX);
        let skip = suppressions.len().saturating_sub(limit);
        let now = self.runner.now();
        let slots = CHANNELS
            .iter()
            .filter_map(|channel| {
                state.slot_holder(*channel, &now).map(|s| pb::OutreachSlot {
                    channel: *channel as i32,
                    campaign_id: s.campaign_id.to_string(),
                    send_id: s.send_id.to_string(),
                    until: Some(s.slot_until),
                })
            })
            .collect();
        Ok(Response::new(pb::GetOutreachResponse {
            customer_id: customer_id.to_string(),
            sends,
            suppressions: suppressions.split_off(skip),
            suppression_count,
            slots,
            version,
        }))
    }
}
