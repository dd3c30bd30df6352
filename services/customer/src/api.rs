//! The tonic implementation: validate, build the domain command, run, reply.

use kizuna_command::{CommandError, CommandMeta, CommandRunner, Committed, domain_status};
use kizuna_domain::customer::{Customer, CustomerCommand, stream_name};
use kizuna_domain::{DerivedIds, DomainError};
use kizuna_proto::v1 as pb;
use kizuna_proto::v1::customer_service_server::CustomerService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::CustomerConfig;
use crate::convert;
use crate::merge::{MergeCustomers, UndoCustomerMerge};

/// The CustomerService implementation.
#[derive(Debug, Clone)]
pub struct CustomerApi {
    runner: CommandRunner,
    config: CustomerConfig,
}

impl CustomerApi {
    /// The service over `runner`'s log.
    pub fn new(runner: CommandRunner, config: CustomerConfig) -> Self {
        Self { runner, config }
    }

    /// Runs a single-customer command and returns its result.
    async fn run(
        &self,
        meta: &CommandMeta,
        customer_id: Uuid,
        command: &CustomerCommand,
    ) -> Result<Committed, Status> {
        self.runner
            .execute::<Customer>(meta, &stream_name(customer_id), Some(customer_id), command)
            .await
            .map_err(Status::from)
    }
}

/// The customer id every command but RegisterCustomer carries.
fn customer_of(command: &CustomerCommand) -> Uuid {
    command.customer_id().unwrap_or_default()
}

#[tonic::async_trait]
impl CustomerService for CustomerApi {
    #[tracing::instrument(name = "CustomerService.RegisterCustomer", skip_all)]
    async fn register_customer(
        &self,
        request: Request<pb::RegisterCustomerRequest>,
    ) -> Result<Response<pb::RegisterCustomerResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::register(request.get_ref(), self.config.default_region)
            .map_err(domain_status)?;
        // Without a caller-chosen id the decider takes the first derived id;
        // the stream must be named for the same one.
        let customer_id = command
            .customer_id()
            .unwrap_or_else(|| DerivedIds::first(meta.command_id));
        let committed = self
            .runner
            .execute_new::<Customer>(
                &meta,
                &stream_name(customer_id),
                Some(customer_id),
                &command,
            )
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::RegisterCustomerResponse {
            result: Some(committed.to_proto()),
            customer_id: customer_id.to_string(),
        }))
    }

    #[tracing::instrument(name = "CustomerService.UpdateCustomerContact", skip_all)]
    async fn update_customer_contact(
        &self,
        request: Request<pb::UpdateCustomerContactRequest>,
    ) -> Result<Response<pb::UpdateCustomerContactResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::update_contact(request.get_ref(), self.config.default_region)
            .map_err(domain_status)?;
        let committed = self.run(&meta, customer_of(&command), &command).await?;
        Ok(Response::new(pb::UpdateCustomerContactResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CustomerService.RecordContactBounce", skip_all)]
    async fn record_contact_bounce(
        &self,
        request: Request<pb::RecordContactBounceRequest>,
    ) -> Result<Response<pb::RecordContactBounceResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::record_bounce(request.get_ref(), self.config.default_region)
            .map_err(domain_status)?;
        let committed = self.run(&meta, customer_of(&command), &command).await?;
        Ok(Response::new(pb::RecordContactBounceResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CustomerService.SetCustomerAttribute", skip_all)]
    async fn set_customer_attribute(
        &self,
        request: Request<pb::SetCustomerAttributeRequest>,
    ) -> Result<Response<pb::SetCustomerAttributeResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::set_attribute(request.get_ref()).map_err(domain_status)?;
        let committed = self.run(&meta, customer_of(&command), &command).await?;
        Ok(Response::new(pb::SetCustomerAttributeResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CustomerService.RemoveCustomerAttribute", skip_all)]
    async fn remove_customer_attribute(
        &self,
        request: Request<pb::RemoveCustomerAttributeRequest>,
    ) -> Result<Response<pb::RemoveCustomerAttributeResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::remove_attribute(request.get_ref()).map_err(domain_status)?;
        let committed = self.run(&meta, customer_of(&command), &command).await?;
        Ok(Response::new(pb::RemoveCustomerAttributeResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CustomerService.AddCustomerNote", skip_all)]
    async fn add_customer_note(
        &self,
        request: Request<pb::AddCustomerNoteRequest>,
    ) -> Result<Response<pb::AddCustomerNoteResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::add_note(request.get_ref(), &meta.actor).map_err(domain_status)?;
        let committed = self.run(&meta, customer_of(&command), &command).await?;
        Ok(Response::new(pb::AddCustomerNoteResponse {
            result: Some(committed.to_proto()),
            // The note is the decider's first derived id (see AddNote).
            note_id: DerivedIds::first(meta.command_id).to_string(),
        }))
    }

    #[tracing::instrument(name = "CustomerService.GrantConsent", skip_all)]
    async fn grant_consent(
        &self,
        request: Request<pb::GrantConsentRequest>,
    ) -> Result<Response<pb::GrantConsentResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::grant_consent(request.get_ref()).map_err(domain_status)?;
        let committed = self.run(&meta, customer_of(&command), &command).await?;
        Ok(Response::new(pb::GrantConsentResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CustomerService.RevokeConsent", skip_all)]
    async fn revoke_consent(
        &self,
        request: Request<pb::RevokeConsentRequest>,
    ) -> Result<Response<pb::RevokeConsentResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let command = convert::revoke_consent(request.get_ref()).map_err(domain_status)?;
        let committed = self.run(&meta, customer_of(&command), &command).await?;
        Ok(Response::new(pb::RevokeConsentResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CustomerService.MergeCustomers", skip_all)]
    async fn merge_customers(
        &self,
        request: Request<pb::MergeCustomersRequest>,
    ) -> Result<Response<pb::MergeCustomersResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.get_ref();
        let decision = MergeCustomers {
            source: convert::required_id(&req.source_customer_id, "source_customer_id")
                .map_err(domain_status)?,
            target: convert::required_id(&req.target_customer_id, "target_customer_id")
                .map_err(domain_status)?,
        };
        let committed = self
            .runner
            .run(&meta, &decision)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::MergeCustomersResponse {
            result: Some(committed.to_proto()),
            merge_id: DerivedIds::first(meta.command_id).to_string(),
        }))
    }

    #[tracing::instrument(name = "CustomerService.UndoCustomerMerge", skip_all)]
    async fn undo_customer_merge(
        &self,
        request: Request<pb::UndoCustomerMergeRequest>,
    ) -> Result<Response<pb::UndoCustomerMergeResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let req = request.get_ref();
        let decision = UndoCustomerMerge {
            source: convert::required_id(&req.source_customer_id, "source_customer_id")
                .map_err(domain_status)?,
            merge_id: convert::optional_id(&req.merge_id, "merge_id").map_err(domain_status)?,
        };
        let committed = self
            .runner
            .run(&meta, &decision)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::UndoCustomerMergeResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "CustomerService.GetCustomer", skip_all)]
    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        let customer_id = convert::required_id(&request.get_ref().customer_id, "customer_id")
            .map_err(domain_status)?;
        let loaded = self
            .runner
            .load::<Customer>(&stream_name(customer_id))
            .await
            .map_err(Status::from)?;
        let version = match loaded.version {
            Some(v) if loaded.state.registered => v,
            _ => return Err(not_found(customer_id)),
        };
        Ok(Response::new(pb::GetCustomerResponse {
            customer: Some(convert::customer(customer_id, &loaded.state)),
            version,
        }))
    }
}

fn not_found(customer_id: Uuid) -> Status {
    Status::from(CommandError::Domain(DomainError::not_found(
        "customer",
        customer_id,
    )))
}
