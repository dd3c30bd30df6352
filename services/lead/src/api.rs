//! The `kizuna.v1.LeadService` handlers: validate, build the domain command,
//! run it, reply. Conversion and merging span two streams, so they are
//! [`Decision`]s appended all-or-nothing.

use crate::LeadConfig;
use crate::convert::{self, customer_stream, lead_stream};
use crate::duplicates::{DuplicateIndex, IndexError, Party};
use kizuna_command::{
    Attempt, CommandError, CommandMeta, CommandRunner, Committed, Decision, Plan, domain_status,
};
use kizuna_domain::contact::normalize_contact;
use kizuna_domain::lead::{Lead, LeadCommand, customer_registration};
use kizuna_domain::{DerivedIds, DomainError, pb};
use kizuna_eventlog::{Direction, EventStore, ExpectedVersion};
use pb::lead_service_server::LeadService;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// How long FindDuplicateLeads waits for the index to reach the log head.
pub const INDEX_WAIT: Duration = Duration::from_secs(5);

/// Most candidates one FindDuplicateLeads answer lists.
pub const MAX_CANDIDATES: usize = 100;

kizuna_domain::event_enum! {
    /// The customer's first event, as the conversion appends it. The customer
    /// decider is another service's; this is only what a conversion writes.
    enum CustomerSide {
        /// The customer converted from the lead.
        Registered(pb::CustomerRegistered),
    }
}

/// The LeadService implementation.
#[derive(Clone)]
pub struct LeadApi {
    runner: CommandRunner,
    config: LeadConfig,
    index: DuplicateIndex,
}

impl std::fmt::Debug for LeadApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeadApi")
            .field("config", &self.config)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl LeadApi {
    pub(crate) fn new(runner: CommandRunner, config: LeadConfig, index: DuplicateIndex) -> Self {
        Self {
            runner,
            config,
            index,
        }
    }
}

/// ConvertLead: `lead.converted` on the lead and `customer.registered` on a
/// new customer stream, or neither.
struct Conversion {
    lead_id: Uuid,
    customer_id: Uuid,
    store: Arc<dyn EventStore>,
}

impl Decision for Conversion {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let lead = attempt.load::<Lead>(&lead_stream(self.lead_id)).await?;
        let converted = attempt.decide(
            &lead,
            &LeadCommand::Convert {
                lead_id: self.lead_id,
                customer_id: Some(self.customer_id),
            },
        )?;
        // Checked here for a clear ALREADY_EXISTS; `NoStream` below still
        // guards against a customer registered between this read and the append.
        let stream = customer_stream(self.customer_id);
        let existing = self
            .store
            .read_stream(&stream, Direction::Forward, None, 1)
            .await?;
        if existing.last_version.is_some() {
            return Err(DomainError::already_exists("customer", self.customer_id).into());
        }
        let registered = [CustomerSide::Registered(customer_registration(
            &lead.state,
            self.customer_id,
        ))];
        Ok(Plan::new()
            .append_to(&lead, Some(self.customer_id), &converted)
            .append(
                stream,
                ExpectedVersion::NoStream,
                Some(self.customer_id),
                &registered,
            ))
    }
}

/// MergeLeads: `lead.merged` on the duplicate and `lead.duplicate_absorbed`
/// on the survivor, or neither. The survivor is loaded first, so the caller's
/// `expected_version` is about the survivor.
struct Merge {
    survivor: Uuid,
    duplicate: Uuid,
}

impl Decision for Merge {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        if self.survivor == self.duplicate {
            return Err(DomainError::invalid(
                "duplicate_lead_id",
                "must differ from survivor_lead_id: a lead cannot be merged into itself",
            )
            .into());
        }
        let survivor = attempt.load::<Lead>(&lead_stream(self.survivor)).await?;
        let duplicate = attempt.load::<Lead>(&lead_stream(self.duplicate)).await?;
        let absorbed = attempt.decide(
            &survivor,
            &LeadCommand::AbsorbDuplicate {
                lead_id: self.survivor,
                duplicate_lead_id: self.duplicate,
                duplicate_contact: duplicate.state.contact.clone(),
                duplicate_consents: duplicate.state.consents.clone(),
            },
        )?;
        let merged = attempt.decide(
            &duplicate,
            &LeadCommand::MergeInto {
                lead_id: self.duplicate,
                survivor_lead_id: self.survivor,
            },
        )?;
        Ok(Plan::new()
            .append_to(&duplicate, None, &merged)
            .append_to(&survivor, None, &absorbed))
    }
}

#[tonic::async_trait]
impl LeadService for LeadApi {
    #[tracing::instrument(name = "LeadService.CaptureLead", skip_all)]
    async fn capture_lead(
        &self,
        request: Request<pb::CaptureLeadRequest>,
    ) -> Result<Response<pb::CaptureLeadResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.into_inner();
        let lead_id = match convert::optional_id(&req.lead_id, "lead_id").map_err(domain_status)? {
            Some(id) => id,
            None => DerivedIds::first(meta.command_id),
        };
        let command =
            convert::capture(&req, lead_id, self.config.default_region).map_err(domain_status)?;
        let committed = self
            .runner
            .execute_new::<Lead>(&meta, &lead_stream(lead_id), None, &command)
            .await?;
        Ok(Response::new(pb::CaptureLeadResponse {
            lead_id: committed.created_id("lead").unwrap_or(lead_id).to_string(),
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LeadService.UpdateLeadContact", skip_all)]
    async fn update_lead_contact(
        &self,
        request: Request<pb::UpdateLeadContactRequest>,
    ) -> Result<Response<pb::UpdateLeadContactResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.into_inner();
        let command =
            convert::update_contact(&req, self.config.default_region).map_err(domain_status)?;
        let committed = self.run_on_lead(&meta, &command).await?;
        Ok(Response::new(pb::UpdateLeadContactResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LeadService.ScoreLead", skip_all)]
    async fn score_lead(
        &self,
        request: Request<pb::ScoreLeadRequest>,
    ) -> Result<Response<pb::ScoreLeadResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::score(request.get_ref()).map_err(domain_status)?;
        let committed = self.run_on_lead(&meta, &command).await?;
        Ok(Response::new(pb::ScoreLeadResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LeadService.ChangeLeadStatus", skip_all)]
    async fn change_lead_status(
        &self,
        request: Request<pb::ChangeLeadStatusRequest>,
    ) -> Result<Response<pb::ChangeLeadStatusResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::change_status(request.get_ref()).map_err(domain_status)?;
        let committed = self.run_on_lead(&meta, &command).await?;
        Ok(Response::new(pb::ChangeLeadStatusResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LeadService.ConvertLead", skip_all)]
    async fn convert_lead(
        &self,
        request: Request<pb::ConvertLeadRequest>,
    ) -> Result<Response<pb::ConvertLeadResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.into_inner();
        let lead_id = convert::required_id(&req.lead_id, "lead_id").map_err(domain_status)?;
        let customer_id =
            match convert::optional_id(&req.customer_id, "customer_id").map_err(domain_status)? {
                Some(id) => id,
                None => DerivedIds::first(meta.command_id),
            };
        let committed = self
            .runner
            .run(
                &meta,
                &Conversion {
                    lead_id,
                    customer_id,
                    store: self.runner.store().clone(),
                },
            )
            .await?;
        Ok(Response::new(pb::ConvertLeadResponse {
            customer_id: committed
                .created_id("customer")
                .unwrap_or(customer_id)
                .to_string(),
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LeadService.FindDuplicateLeads", skip_all)]
    async fn find_duplicate_leads(
        &self,
        request: Request<pb::FindDuplicateLeadsRequest>,
    ) -> Result<Response<pb::FindDuplicateLeadsResponse>, Status> {
        use pb::find_duplicate_leads_request::Query;
        // Read first: the answer must include every write acknowledged
        // before this request arrived.
        let head = self
            .runner
            .store()
            .head()
            .await
            .map_err(|e| Status::from(CommandError::Store(e)))?
            .next_position;
        let (contact, exclude) = match request.into_inner().query {
            Some(Query::LeadId(id)) => {
                let lead_id = convert::required_id(&id, "lead_id").map_err(domain_status)?;
                let lead = self.runner.load::<Lead>(&lead_stream(lead_id)).await?;
                if !lead.exists() {
                    return Err(domain_status(DomainError::not_found("lead", lead_id)));
                }
                (lead.state.contact, Some(Party::Lead(lead_id)))
            }
            Some(Query::Contact(contact)) => {
                let contact = normalize_contact(&contact, self.config.default_region, "contact")
                    .map_err(domain_status)?;
                if crate::duplicates::Keys::of(&contact).is_empty() {
                    return Err(domain_status(DomainError::invalid(
                        "contact",
                        "give an e-mail address, a phone number, or both a family and a given name to search by",
                    )));
                }
                (contact, None)
            }
            None => {
                return Err(domain_status(DomainError::invalid(
                    "query",
                    "give lead_id or contact",
                )));
            }
        };
        self.index
            .wait_until(head, INDEX_WAIT)
            .await
            .map_err(|e| match e {
                IndexError::Store(e) => Status::from(CommandError::Store(e)),
                other => Status::unavailable(format!("{other}; retry later")),
            })?;
        let mut candidates = self.index.find(&contact, exclude);
        let truncated = candidates.len() > MAX_CANDIDATES;
        candidates.truncate(MAX_CANDIDATES);
        Ok(Response::new(pb::FindDuplicateLeadsResponse {
            candidates: candidates
                .into_iter()
                .map(convert::candidate_to_proto)
                .collect(),
            as_of_position: head,
            truncated,
        }))
    }

    #[tracing::instrument(name = "LeadService.MergeLeads", skip_all)]
    async fn merge_leads(
        &self,
        request: Request<pb::MergeLeadsRequest>,
    ) -> Result<Response<pb::MergeLeadsResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.into_inner();
        let survivor = convert::required_id(&req.survivor_lead_id, "survivor_lead_id")
            .map_err(domain_status)?;
        let duplicate = convert::required_id(&req.duplicate_lead_id, "duplicate_lead_id")
            .map_err(domain_status)?;
        let committed = self
            .runner
            .run(
                &meta,
                &Merge {
                    survivor,
                    duplicate,
                },
            )
            .await?;
        Ok(Response::new(pb::MergeLeadsResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LeadService.GetLead", skip_all)]
    async fn get_lead(
        &self,
        request: Request<pb::GetLeadRequest>,
    ) -> Result<Response<pb::GetLeadResponse>, Status> {
        let lead_id =
            convert::required_id(&request.get_ref().lead_id, "lead_id").map_err(domain_status)?;
        let lead = self.runner.load::<Lead>(&lead_stream(lead_id)).await?;
        let (true, Some(version)) = (lead.state.exists(), lead.version) else {
            return Err(domain_status(DomainError::not_found("lead", lead_id)));
        };
        Ok(Response::new(pb::GetLeadResponse {
            lead: Some(convert::lead_to_proto(&lead.state)),
            version,
        }))
    }
}

impl LeadApi {
    /// Runs a command on the lead stream it names.
    async fn run_on_lead(
        &self,
        meta: &CommandMeta,
        command: &LeadCommand,
    ) -> Result<Committed, CommandError> {
        let stream = command
            .lead_id()
            .map(lead_stream)
            .ok_or_else(|| DomainError::invalid("lead_id", "is required (a UUID)"))?;
        self.runner
            .execute::<Lead>(meta, &stream, None, command)
            .await
    }
}
