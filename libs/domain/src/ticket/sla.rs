//! Where a ticket's SLA targets stand, folded from its events.
//!
//! One fold serves both the ticket's decider and the SLA watcher (which keeps
//! only this part of each ticket in memory), so the two can never disagree on
//! when a target counts as met.

use super::TicketEvent;
use crate::pb;
use crate::time::unix_nanos;
use prost_types::Timestamp;
use uuid::Uuid;

/// One SLA target of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetClock {
    /// When it is due, as recorded when the ticket was opened.
    pub due_at: Timestamp,
    /// When it was met.
    pub met_at: Option<Timestamp>,
    /// When its breach was recorded.
    pub breached_at: Option<Timestamp>,
}

impl TargetClock {
    fn new(due_at: Timestamp) -> Self {
        Self {
            due_at,
            met_at: None,
            breached_at: None,
        }
    }

    /// Neither met nor breached yet.
    pub fn is_pending(&self) -> bool {
        self.met_at.is_none() && self.breached_at.is_none()
    }

    /// Whether it is due at `now` (`due_at <= now`).
    pub fn is_due(&self, now: &Timestamp) -> bool {
        unix_nanos(&self.due_at) <= unix_nanos(now)
    }
}

/// A ticket's SLA targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketSla {
    /// The first-response target, if the ticket has one.
    pub first_response: Option<TargetClock>,
    /// The resolution target, if the ticket has one.
    pub resolution: Option<TargetClock>,
    /// Whether the ticket is closed: a closed ticket's targets are never breached.
    pub closed: bool,
}

impl TicketSla {
    /// The target `target`, if the ticket has it.
    pub fn target(&self, target: pb::SlaTarget) -> Option<&TargetClock> {
        match target {
            pb::SlaTarget::FirstResponse => self.first_response.as_ref(),
            pb::SlaTarget::Resolution => self.resolution.as_ref(),
            pb::SlaTarget::Unspecified => None,
        }
    }

    fn target_mut(&mut self, target: pb::SlaTarget) -> Option<&mut TargetClock> {
        match target {
            pb::SlaTarget::FirstResponse => self.first_response.as_mut(),
            pb::SlaTarget::Resolution => self.resolution.as_mut(),
            pb::SlaTarget::Unspecified => None,
        }
    }

    /// The state after `event`.
    ///
    /// Met: the first-response target by an agent's first public reply; the
    /// resolution target by solving, which also meets a still-open
    /// first-response target (the customer has their answer). Only the first
    /// meeting counts: reopening does not restart a target.
    pub fn apply(&mut self, event: &TicketEvent) {
        match event {
            TicketEvent::Opened(e) => {
                self.first_response = e.first_response_due_at.map(TargetClock::new);
                self.resolution = e.resolution_due_at.map(TargetClock::new);
                self.closed = false;
            }
            TicketEvent::Replied(e) => {
                if e.author_kind == pb::TicketAuthorKind::Agent as i32
                    && e.visibility == pb::TicketReplyVisibility::Public as i32
                {
                    self.meet(pb::SlaTarget::FirstResponse, e.replied_at);
                }
            }
            TicketEvent::StatusChanged(e) => {
                if e.to_status == pb::TicketStatus::Solved as i32 {
                    self.meet(pb::SlaTarget::Resolution, e.changed_at);
                    self.meet(pb::SlaTarget::FirstResponse, e.changed_at);
                } else if e.to_status == pb::TicketStatus::Closed as i32 {
                    self.closed = true;
                }
            }
            TicketEvent::SlaBreached(e) => {
                let target = pb::SlaTarget::try_from(e.target).unwrap_or_default();
                if let Some(t) = self.target_mut(target) {
                    t.breached_at
                        .get_or_insert(e.detected_at.unwrap_or_default());
                }
            }
            TicketEvent::Assigned(_) => {}
        }
    }

    fn meet(&mut self, target: pb::SlaTarget, at: Option<Timestamp>) {
        if let Some(t) = self.target_mut(target) {
            t.met_at.get_or_insert(at.unwrap_or_default());
        }
    }

    /// The targets still waiting to be met or breached, with their due times;
    /// none once the ticket is closed.
    pub fn pending(&self) -> Vec<(pb::SlaTarget, Timestamp)> {
        if self.closed {
            return Vec::new();
        }
        [
            (pb::SlaTarget::FirstResponse, self.first_response),
            (pb::SlaTarget::Resolution, self.resolution),
        ]
        .into_iter()
        .filter_map(|(target, clock)| {
            clock
                .filter(TargetClock::is_pending)
                .map(|c| (target, c.due_at))
        })
        .collect()
    }

    /// The pending targets that are due at `now`.
    pub fn due(&self, now: &Timestamp) -> Vec<(pb::SlaTarget, Timestamp)> {
        self.pending()
            .into_iter()
            .filter(|(_, due_at)| unix_nanos(due_at) <= unix_nanos(now))
            .collect()
    }

    /// Whether nothing is left to watch: every target met or breached, or the
    /// ticket closed. Nothing can make a target pending again afterwards.
    pub fn is_settled(&self) -> bool {
        self.pending().is_empty()
    }
}

/// The command id of the SLA watcher's breach of `target` on `ticket_id`:
/// UUIDv5 of the ticket id and the target's proto name. Every watcher, before
/// or after a restart, uses the same id, so a repeat is a replay.
pub fn breach_command_id(ticket_id: Uuid, target: pb::SlaTarget) -> Uuid {
    Uuid::new_v5(&ticket_id, target.as_str_name().as_bytes())
}
