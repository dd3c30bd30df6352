//! Triggers: "when this happens to a customer, target them into that campaign".
//!
//! A trigger (`trigger-{id}`) names a campaign and one condition: an event of
//! a catalog type whose payload satisfies field conditions
//! ([`condition`]), or a customer's inactivity (no purchase for N days). The
//! decider only records definitions and their enabled status; the trigger
//! processor in the service follows the log and fires them. What this module
//! gives the processor is pure: whether a condition holds
//! ([`condition::holds`]), whether an inactivity spell is due
//! ([`inactivity_due`]) and the command id of a firing ([`fire_command_id`]),
//! derived from the triggering event so reprocessing never targets twice.
//!
//! Defining an existing trigger replaces its definition and keeps its
//! enabled status (no events when nothing changes). No reason codes: unknown
//! triggers and campaigns are NOT_FOUND, everything else INVALID_ARGUMENT.

pub mod condition;
#[cfg(test)]
mod tests;

pub use condition::{
    FieldConditionInput, FieldKind, FieldSpec, Observed, ObservedField, check_condition, holds,
};

use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::pb;
use crate::ticket::text::{self, Lines};
use crate::time::{add, before};
use prost_types::Timestamp;
use std::time::Duration;
use uuid::Uuid;

crate::event_messages! {
    pb::TriggerDefined => "trigger.defined" version 1,
    pb::TriggerDisabled => "trigger.disabled" version 1,
    pb::TriggerEnabled => "trigger.enabled" version 1,
    pb::TriggerCheckpointSaved => "trigger.checkpoint_saved" version 1,
}

crate::event_enum! {
    /// Events of the trigger stream.
    pub enum TriggerEvent {
        /// The trigger was defined or redefined.
        Defined(pb::TriggerDefined),
        /// It was disabled.
        Disabled(pb::TriggerDisabled),
        /// It was enabled again.
        Enabled(pb::TriggerEnabled),
    }
}

crate::event_enum! {
    /// Events of the trigger processor's checkpoint stream.
    pub enum TriggerCheckpointEvent {
        /// The processor saved how far it has read.
        Saved(pb::TriggerCheckpointSaved),
    }
}

/// The stream category of triggers.
pub const CATEGORY: &str = "trigger";
/// The stream category of trigger processor checkpoints.
pub const CHECKPOINT_CATEGORY: &str = "triggercheckpoint";
/// The name of the one trigger processor kizuna runs.
pub const DEFAULT_PROCESSOR: &str = "default";

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest disable reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Most field conditions of one trigger.
pub const MAX_CONDITIONS: usize = 20;
/// Longest inactivity, in days (ten years).
pub const MAX_INACTIVITY_DAYS: u32 = 3650;

const DAY: Duration = Duration::from_secs(86_400);

/// The namespace of firing command ids: UUIDv5 of this and
/// `"{event_id}/{trigger_id}"`. Fixed forever: changing it would make every
/// event fire again.
pub const FIRE_NAMESPACE: Uuid = Uuid::from_u128(0x6b69_7a75_6e61_4000_8000_7472_6967_6572);

/// The stream of trigger `trigger_id`.
pub fn stream(trigger_id: Uuid) -> String {
    format!("{CATEGORY}-{trigger_id}")
}

/// The checkpoint stream of processor `processor`.
pub fn checkpoint_stream(processor: &str) -> String {
    format!("{CHECKPOINT_CATEGORY}-{processor}")
}

/// The command id of trigger `trigger_id` firing for event `event_id` (for
/// inactivity, the event that began the spell): the same pair always gives
/// the same id, so a firing is applied once however often it is reprocessed.
pub fn fire_command_id(event_id: Uuid, trigger_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &FIRE_NAMESPACE,
        format!("{event_id}/{trigger_id}").as_bytes(),
    )
}

/// Whether a customer whose spell without a purchase began at `since` (their
/// last purchase, or their enrolment) has had no purchase for `days` days at
/// `now` (exactly `days` days counts).
pub fn inactivity_due(since: &Timestamp, days: u32, now: &Timestamp) -> bool {
    let due_at = add(since, DAY * days);
    !before(now, &due_at)
}

/// The condition of a definition, as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionInput {
    /// On an event of `event_type` whose payload satisfies `conditions`.
    OnEvent {
        /// The event type.
        event_type: String,
        /// Whether the event catalog knows the type (the service looks it up).
        event_type_known: bool,
        /// The field conditions with the catalog's answer for each path.
        conditions: Vec<FieldConditionInput>,
    },
    /// No purchase for `days` days.
    Inactivity {
        /// Days (1..=3650).
        days: u32,
    },
}

/// Defines a trigger or replaces its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefineTrigger {
    /// The trigger.
    pub trigger_id: Uuid,
    /// Name (1..=200 characters after trimming).
    pub name: String,
    /// The campaign to target into.
    pub campaign_id: Uuid,
    /// Whether the campaign exists (the service reads its stream).
    pub campaign_exists: bool,
    /// When it fires; `None` when the request gave no condition.
    pub condition: Option<ConditionInput>,
}

/// What a caller asks of a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerCommand {
    /// Define or redefine it.
    Define(DefineTrigger),
    /// Stop it firing.
    Disable {
        /// The trigger.
        trigger_id: Uuid,
        /// Why (at most 500 characters; may be empty).
        reason: String,
    },
    /// Let it fire again.
    Enable {
        /// The trigger.
        trigger_id: Uuid,
    },
}

/// A trigger's definition and status.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerData {
    /// The trigger.
    pub trigger_id: Uuid,
    /// Its name.
    pub name: String,
    /// The campaign it targets into.
    pub campaign_id: Uuid,
    /// When it fires.
    pub condition: Option<pb::trigger_defined::Condition>,
    /// Whether it fires.
    pub enabled: bool,
    /// Why it was disabled, while it is.
    pub disabled_reason: String,
    /// When it was first defined.
    pub defined_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl TriggerData {
    /// The on-event condition, if that is its kind.
    pub fn on_event(&self) -> Option<&pb::TriggerOnEvent> {
        match &self.condition {
            Some(pb::trigger_defined::Condition::OnEvent(e)) => Some(e),
            _ => None,
        }
    }

    /// The inactivity days, if that is its kind.
    pub fn inactivity_days(&self) -> Option<u32> {
        match &self.condition {
            Some(pb::trigger_defined::Condition::Inactivity(i)) => Some(i.days),
            _ => None,
        }
    }
}

/// The state of a trigger stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerState {
    /// The trigger, once defined.
    pub trigger: Option<TriggerData>,
}

/// The trigger decider.
#[derive(Debug, Clone, Copy)]
pub struct Trigger;

fn parse_id(id: &str) -> Uuid {
    // Ids in events were validated when appended; a malformed one folds to nil.
    Uuid::try_parse(id).unwrap_or_default()
}

fn check_condition_input(
    input: &ConditionInput,
) -> Result<pb::trigger_defined::Condition, DomainError> {
    use pb::trigger_defined::Condition;
    match input {
        ConditionInput::OnEvent {
            event_type,
            event_type_known,
            conditions,
        } => {
            if event_type.is_empty() {
                return Err(DomainError::invalid("on_event.event_type", "is required"));
            }
            if !event_type_known {
                return Err(DomainError::invalid(
                    "on_event.event_type",
                    format!("{event_type:?} is not an event type of the catalog"),
                ));
            }
            if conditions.len() > MAX_CONDITIONS {
                return Err(DomainError::invalid(
                    "on_event.conditions",
                    format!("has {} conditions, over {MAX_CONDITIONS}", conditions.len()),
                ));
            }
            let conditions = conditions
                .iter()
                .enumerate()
                .map(|(i, c)| check_condition(&format!("on_event.conditions[{i}]"), c))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Condition::OnEvent(pb::TriggerOnEvent {
                event_type: event_type.clone(),
                conditions,
            }))
        }
        ConditionInput::Inactivity { days } => {
            if !(1..=MAX_INACTIVITY_DAYS).contains(days) {
                return Err(DomainError::invalid(
                    "inactivity.days",
                    format!("must be between 1 and {MAX_INACTIVITY_DAYS}"),
                ));
            }
            Ok(Condition::Inactivity(pb::TriggerInactivity { days: *days }))
        }
    }
}

fn define(
    state: &TriggerState,
    cmd: &DefineTrigger,
    ctx: &Context<'_>,
) -> Result<Vec<TriggerEvent>, DomainError> {
    let name = text::check("name", &cmd.name, MAX_NAME_CHARS, true, Lines::One)?;
    if cmd.campaign_id.is_nil() {
        return Err(DomainError::invalid("campaign_id", "is required (a UUID)"));
    }
    let condition = cmd
        .condition
        .as_ref()
        .ok_or_else(|| {
            DomainError::invalid("condition", "one of on_event or inactivity is required")
        })
        .and_then(check_condition_input)?;
    if !cmd.campaign_exists {
        return Err(DomainError::not_found("campaign", cmd.campaign_id));
    }
    if let Some(t) = &state.trigger
        && t.name == name
        && t.campaign_id == cmd.campaign_id
        && t.condition.as_ref() == Some(&condition)
    {
        return Ok(Vec::new());
    }
    Ok(vec![TriggerEvent::Defined(pb::TriggerDefined {
        trigger_id: cmd.trigger_id.to_string(),
        name,
        campaign_id: cmd.campaign_id.to_string(),
        condition: Some(condition),
        defined_at: Some(ctx.now),
    })])
}

fn existing(state: &TriggerState, trigger_id: Uuid) -> Result<&TriggerData, DomainError> {
    state
        .trigger
        .as_ref()
        .filter(|t| t.trigger_id == trigger_id)
        .ok_or_else(|| DomainError::not_found("trigger", trigger_id))
}

impl Decider for Trigger {
    type State = TriggerState;
    type Command = TriggerCommand;
    type Event = TriggerEvent;

    fn decide(
        state: &TriggerState,
        command: &TriggerCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<TriggerEvent>, DomainError> {
        match command {
            TriggerCommand::Define(cmd) => define(state, cmd, ctx),
            TriggerCommand::Disable { trigger_id, reason } => {
                let reason = text::check("reason", reason, MAX_REASON_CHARS, false, Lines::One)?;
                let t = existing(state, *trigger_id)?;
                if !t.enabled {
                    return Ok(Vec::new());
                }
                Ok(vec![TriggerEvent::Disabled(pb::TriggerDisabled {
                    trigger_id: trigger_id.to_string(),
                    reason,
                    disabled_at: Some(ctx.now),
                })])
            }
            TriggerCommand::Enable { trigger_id } => {
                let t = existing(state, *trigger_id)?;
                if t.enabled {
                    return Ok(Vec::new());
                }
                Ok(vec![TriggerEvent::Enabled(pb::TriggerEnabled {
                    trigger_id: trigger_id.to_string(),
                    enabled_at: Some(ctx.now),
                })])
            }
        }
    }

    fn evolve(mut state: TriggerState, event: &TriggerEvent) -> TriggerState {
        match event {
            TriggerEvent::Defined(e) => {
                let at = e.defined_at.unwrap_or_default();
                state.trigger = Some(match state.trigger.take() {
                    Some(t) => TriggerData {
                        name: e.name.clone(),
                        campaign_id: parse_id(&e.campaign_id),
                        condition: e.condition.clone(),
                        updated_at: at,
                        ..t
                    },
                    None => TriggerData {
                        trigger_id: parse_id(&e.trigger_id),
                        name: e.name.clone(),
                        campaign_id: parse_id(&e.campaign_id),
                        condition: e.condition.clone(),
                        enabled: true,
                        disabled_reason: String::new(),
                        defined_at: at,
                        updated_at: at,
                    },
                });
            }
            TriggerEvent::Disabled(e) => {
                if let Some(t) = &mut state.trigger {
                    t.enabled = false;
                    t.disabled_reason = e.reason.clone();
                    t.updated_at = e.disabled_at.unwrap_or_default();
                }
            }
            TriggerEvent::Enabled(e) => {
                if let Some(t) = &mut state.trigger {
                    t.enabled = true;
                    t.disabled_reason.clear();
                    t.updated_at = e.enabled_at.unwrap_or_default();
                }
            }
        }
        state
    }
}
