//! The `kizuna.v1.TriggerService` handlers: validate, look the condition up
//! in the event catalog, build the domain command, run it, reply.

use crate::processor::{ProcessorStatus, load_checkpoint};
use crate::schema;
use kizuna_command::fields::{optional_id, required_id};
use kizuna_command::{
    Attempt, CommandError, CommandMeta, CommandRunner, Decision, Plan, domain_status,
};
use kizuna_domain::campaign::{self, Campaign};
use kizuna_domain::trigger::{
    self, ConditionInput, DefineTrigger, FieldConditionInput, Trigger, TriggerCommand, TriggerData,
    TriggerEvent, TriggerState,
};
use kizuna_domain::{Decider as _, DerivedIds, DomainError, pb};
use kizuna_eventlog::EventFilter;
use kizuna_eventlog::names::stream_uuid;
use pb::trigger_service_server::TriggerService;
use std::collections::BTreeMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// Default page size of ListTriggers.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size of ListTriggers.
pub const MAX_PAGE_SIZE: usize = 500;

/// Events read per page while listing triggers.
const READ_PAGE: usize = 512;

/// The TriggerService implementation.
#[derive(Clone)]
pub struct TriggerApi {
    runner: CommandRunner,
    status: Option<Arc<ProcessorStatus>>,
}

impl std::fmt::Debug for TriggerApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerApi").finish_non_exhaustive()
    }
}

impl TriggerApi {
    pub(crate) fn new(runner: CommandRunner, status: Option<Arc<ProcessorStatus>>) -> Self {
        Self { runner, status }
    }
}

/// DefineTrigger: the trigger stream (primary), then the campaign, whose
/// existence the rule checks.
struct DefineDecision {
    command: DefineTrigger,
}

impl Decision for DefineDecision {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let loaded = attempt
            .load::<Trigger>(&trigger::stream(self.command.trigger_id))
            .await?;
        let campaign = attempt
            .load::<Campaign>(&campaign::stream(self.command.campaign_id))
            .await?;
        let command = TriggerCommand::Define(DefineTrigger {
            campaign_exists: campaign.state.campaign.is_some(),
            ..self.command.clone()
        });
        let events = attempt.decide(&loaded, &command)?;
        Ok(Plan::new().append_to(&loaded, None, &events))
    }
}

/// The request's condition with the catalog's answers for it.
fn condition_input(
    condition: Option<pb::define_trigger_request::Condition>,
) -> Result<Option<ConditionInput>, DomainError> {
    use pb::define_trigger_request::Condition;
    Ok(match condition {
        None => None,
        Some(Condition::Inactivity(i)) => Some(ConditionInput::Inactivity { days: i.days }),
        Some(Condition::OnEvent(on_event)) => {
            let schema = schema::event_schema(&on_event.event_type);
            let conditions = on_event
                .conditions
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let op = pb::TriggerConditionOp::try_from(c.op).map_err(|_| {
                        DomainError::invalid(
                            format!("on_event.conditions[{i}].op"),
                            format!("{} is not a TriggerConditionOp", c.op),
                        )
                    })?;
                    let field = match schema {
                        Some((_, message)) => schema::resolve(message, &c.path),
                        None => Err("the event type is unknown".to_owned()),
                    };
                    Ok(FieldConditionInput {
                        path: c.path,
                        op,
                        value: c.value,
                        field,
                    })
                })
                .collect::<Result<Vec<_>, DomainError>>()?;
            Some(ConditionInput::OnEvent {
                event_type_known: schema.is_some(),
                event_type: on_event.event_type,
                conditions,
            })
        }
    })
}

fn condition_message(c: Option<&pb::trigger_defined::Condition>) -> Option<pb::trigger::Condition> {
    use pb::trigger::Condition as Out;
    use pb::trigger_defined::Condition as In;
    c.map(|c| match c {
        In::OnEvent(e) => Out::OnEvent(e.clone()),
        In::Inactivity(i) => Out::Inactivity(*i),
    })
}

fn trigger_message(t: &TriggerData) -> pb::Trigger {
    pb::Trigger {
        trigger_id: t.trigger_id.to_string(),
        name: t.name.clone(),
        campaign_id: t.campaign_id.to_string(),
        condition: condition_message(t.condition.as_ref()),
        enabled: t.enabled,
        defined_at: Some(t.defined_at),
        updated_at: Some(t.updated_at),
        disabled_reason: t.disabled_reason.clone(),
    }
}

impl TriggerApi {
    async fn run(
        &self,
        meta: &CommandMeta,
        trigger_id: Uuid,
        command: TriggerCommand,
    ) -> Result<pb::CommandResult, Status> {
        Ok(self
            .runner
            .execute::<Trigger>(meta, &trigger::stream(trigger_id), None, &command)
            .await?
            .to_proto())
    }

    /// Every trigger, folded from the `trigger` category of the log.
    async fn all_triggers(&self) -> Result<BTreeMap<Uuid, TriggerState>, CommandError> {
        let filter = EventFilter {
            categories: vec![trigger::CATEGORY.to_owned()],
            ..EventFilter::default()
        };
        let store = self.runner.store();
        let head = store.head().await?.next_position;
        let mut triggers: BTreeMap<Uuid, TriggerState> = BTreeMap::new();
        let mut from = 0;
        while from < head {
            let page = store.read_all(from, &filter, READ_PAGE).await?;
            for e in page.events.iter().filter(|e| e.global_position < head) {
                let event: TriggerEvent = self.runner.decode(e)?;
                let Some(id) = stream_uuid(&e.stream, trigger::CATEGORY) else {
                    continue;
                };
                let state = triggers.remove(&id).unwrap_or_default();
                triggers.insert(id, Trigger::evolve(state, &event));
            }
            if page.next_position <= from {
                break;
            }
            from = page.next_position;
        }
        Ok(triggers)
    }
}

#[tonic::async_trait]
impl TriggerService for TriggerApi {
    async fn define_trigger(
        &self,
        request: Request<pb::DefineTriggerRequest>,
    ) -> Result<Response<pb::DefineTriggerResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let r = request.into_inner();
        let trigger_id = optional_id(&r.trigger_id, "trigger_id")
            .map_err(domain_status)?
            .unwrap_or_else(|| DerivedIds::first(meta.command_id));
        let campaign_id = required_id(&r.campaign_id, "campaign_id").map_err(domain_status)?;
        let condition = condition_input(r.condition).map_err(domain_status)?;
        let decision = DefineDecision {
            command: DefineTrigger {
                trigger_id,
                name: r.name,
                campaign_id,
                campaign_exists: false,
                condition,
            },
        };
        let committed = self.runner.run(&meta, &decision).await?;
        Ok(Response::new(pb::DefineTriggerResponse {
            trigger_id: committed
                .created_id(trigger::CATEGORY)
                .unwrap_or(trigger_id)
                .to_string(),
            result: Some(committed.to_proto()),
        }))
    }

    async fn disable_trigger(
        &self,
        request: Request<pb::DisableTriggerRequest>,
    ) -> Result<Response<pb::DisableTriggerResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let r = request.into_inner();
        let trigger_id = required_id(&r.trigger_id, "trigger_id").map_err(domain_status)?;
        let result = self
            .run(
                &meta,
                trigger_id,
                TriggerCommand::Disable {
                    trigger_id,
                    reason: r.reason,
                },
            )
            .await?;
        Ok(Response::new(pb::DisableTriggerResponse {
            result: Some(result),
        }))
    }

    async fn enable_trigger(
        &self,
        request: Request<pb::EnableTriggerRequest>,
    ) -> Result<Response<pb::EnableTriggerResponse>, Status> {
        let meta =
            CommandMeta::from_request(request.get_ref().command.clone(), request.metadata())?;
        let r = request.into_inner();
        let trigger_id = required_id(&r.trigger_id, "trigger_id").map_err(domain_status)?;
        let result = self
            .run(&meta, trigger_id, TriggerCommand::Enable { trigger_id })
            .await?;
        Ok(Response::new(pb::EnableTriggerResponse {
            result: Some(result),
        }))
    }

    async fn get_trigger(
        &self,
        request: Request<pb::GetTriggerRequest>,
    ) -> Result<Response<pb::GetTriggerResponse>, Status> {
        let trigger_id =
            required_id(&request.get_ref().trigger_id, "trigger_id").map_err(domain_status)?;
        let loaded = self
            .runner
            .load::<Trigger>(&trigger::stream(trigger_id))
            .await?;
        let (Some(t), Some(version)) = (loaded.state.trigger.as_ref(), loaded.version) else {
            return Err(domain_status(DomainError::not_found("trigger", trigger_id)));
        };
        Ok(Response::new(pb::GetTriggerResponse {
            trigger: Some(trigger_message(t)),
            version,
        }))
    }

    async fn list_triggers(
        &self,
        request: Request<pb::ListTriggersRequest>,
    ) -> Result<Response<pb::ListTriggersResponse>, Status> {
        let r = request.into_inner();
        let after = optional_id(&r.page_token, "page_token").map_err(domain_status)?;
        let size = match usize::try_from(r.page_size).unwrap_or(MAX_PAGE_SIZE) {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let all = self.all_triggers().await?;
        let mut selected = all
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| **id > a))
            .filter_map(|(_, s)| s.trigger.as_ref())
            .filter(|t| !r.enabled_only || t.enabled);
        let triggers: Vec<pb::Trigger> =
            selected.by_ref().take(size).map(trigger_message).collect();
        let next_page_token = match (selected.next(), triggers.last()) {
            (Some(_), Some(last)) => last.trigger_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListTriggersResponse {
            triggers,
            next_page_token,
        }))
    }

    async fn get_trigger_processor_status(
        &self,
        _request: Request<pb::GetTriggerProcessorStatusRequest>,
    ) -> Result<Response<pb::GetTriggerProcessorStatusResponse>, Status> {
        let checkpoint = load_checkpoint(&self.runner, trigger::DEFAULT_PROCESSOR).await?;
        let log_head = self
            .runner
            .store()
            .head()
            .await
            .map_err(CommandError::from)?
            .next_position;
        let status = self.status.as_deref();
        Ok(Response::new(pb::GetTriggerProcessorStatusResponse {
            checkpoint_position: checkpoint.map_or(0, |c| c.next_position),
            checkpoint_saved_at: checkpoint.map(|c| c.saved_at),
            log_head,
            processor_running: status.is_some_and(ProcessorStatus::running),
            processed_position: status.map_or(0, ProcessorStatus::processed_position),
            fired_since_start: status.map_or(0, ProcessorStatus::fired),
            refused_since_start: status.map_or(0, ProcessorStatus::refused),
        }))
    }
}
