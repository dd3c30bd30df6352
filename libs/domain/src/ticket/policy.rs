//! The SLA policy: targets per ticket priority, set by command.
//!
//! One policy with a fixed id (so every service instance finds it without a
//! lookup), in the stream `slapolicy-{id}`. Opening a ticket copies the
//! targets of its priority into `ticket.opened`; the policy is never read
//! again for that ticket.

use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::pb;
use crate::time::{duration_from_proto, duration_to_proto};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

crate::event_messages! {
    pb::SlaPolicySet => "sla.policy_set" version 1,
}

crate::event_enum! {
    /// Events of the SLA policy stream.
    pub enum SlaPolicyEvent {
        /// The targets for one priority were set.
        Set(pb::SlaPolicySet),
    }
}

/// The namespace of kizuna's SLA policy ids (UUIDv5).
pub const SLA_POLICY_NAMESPACE: Uuid = Uuid::from_u128(0x6b69_7a75_6e61_4000_8000_0000_0000_5a1a);

/// The stream category of SLA policies.
pub const POLICY_CATEGORY: &str = "slapolicy";

/// Longest accepted target: a year and a day.
pub const MAX_TARGET: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// The id of the one SLA policy: UUIDv5 of [`SLA_POLICY_NAMESPACE`] and "default".
pub fn default_policy_id() -> Uuid {
    Uuid::new_v5(&SLA_POLICY_NAMESPACE, b"default")
}

/// The stream of the one SLA policy.
pub fn policy_stream() -> String {
    format!("{POLICY_CATEGORY}-{}", default_policy_id())
}

/// The targets for one priority; `None` means no such target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyTargets {
    /// Time from opening to the first agent reply.
    pub first_response: Option<Duration>,
    /// Time from opening to solving.
    pub resolution: Option<Duration>,
}

impl PolicyTargets {
    /// Whether neither target is set.
    pub fn is_empty(&self) -> bool {
        self.first_response.is_none() && self.resolution.is_none()
    }
}

/// The policy, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaPolicyState {
    /// Targets by priority; priorities without any target are absent.
    pub targets: BTreeMap<pb::TicketPriority, PolicyTargets>,
}

impl SlaPolicyState {
    /// The targets for `priority` (none when the policy sets none).
    pub fn targets_for(&self, priority: pb::TicketPriority) -> PolicyTargets {
        self.targets.get(&priority).copied().unwrap_or_default()
    }
}

/// Sets the targets for one priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSlaPolicy {
    /// The priority (not `Unspecified`).
    pub priority: pb::TicketPriority,
    /// Time to first response: positive, at most [`MAX_TARGET`]; `None` for no target.
    pub first_response: Option<Duration>,
    /// Time to resolution: positive, at most [`MAX_TARGET`]; `None` for no target.
    pub resolution: Option<Duration>,
}

/// What a caller asks of the SLA policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlaPolicyCommand {
    /// Set the targets for one priority.
    Set(SetSlaPolicy),
}

/// The SLA policy's rules.
#[derive(Debug)]
pub struct SlaPolicy;

fn check_target(field: &str, target: Option<Duration>) -> Result<(), DomainError> {
    match target {
        Some(d) if d.is_zero() => Err(DomainError::invalid(
            field,
            "must be positive; leave it unset for no target",
        )),
        Some(d) if d > MAX_TARGET => Err(DomainError::invalid(
            field,
            format!("must be at most {} days", MAX_TARGET.as_secs() / 86_400),
        )),
        _ => Ok(()),
    }
}

impl Decider for SlaPolicy {
    type State = SlaPolicyState;
    type Command = SlaPolicyCommand;
    type Event = SlaPolicyEvent;

    fn decide(
        state: &SlaPolicyState,
        command: &SlaPolicyCommand,
        _ctx: &mut Context<'_>,
    ) -> Result<Vec<SlaPolicyEvent>, DomainError> {
        let SlaPolicyCommand::Set(cmd) = command;
        if cmd.priority == pb::TicketPriority::Unspecified {
            return Err(DomainError::invalid("priority", "is required"));
        }
        check_target("first_response", cmd.first_response)?;
        check_target("resolution", cmd.resolution)?;
        let targets = PolicyTargets {
            first_response: cmd.first_response,
            resolution: cmd.resolution,
        };
        if state.targets_for(cmd.priority) == targets {
            return Ok(Vec::new());
        }
        Ok(vec![SlaPolicyEvent::Set(pb::SlaPolicySet {
            policy_id: default_policy_id().to_string(),
            priority: cmd.priority as i32,
            first_response: cmd.first_response.map(duration_to_proto),
            resolution: cmd.resolution.map(duration_to_proto),
        })])
    }

    fn evolve(mut state: SlaPolicyState, event: &SlaPolicyEvent) -> SlaPolicyState {
        let SlaPolicyEvent::Set(e) = event;
        let priority = pb::TicketPriority::try_from(e.priority).unwrap_or_default();
        let targets = PolicyTargets {
            first_response: e.first_response.as_ref().and_then(duration_from_proto),
            resolution: e.resolution.as_ref().and_then(duration_from_proto),
        };
        if targets.is_empty() {
            state.targets.remove(&priority);
        } else {
            state.targets.insert(priority, targets);
        }
        state
    }
}
