//! The support ticket: a customer's question, from opening to closing, with SLAs.
//!
//! Statuses move only along [`can_transition`]'s table. Replies move them
//! too: an agent's public reply takes a NEW ticket to OPEN, a customer's reply
//! takes a SOLVED or PENDING ticket back to OPEN. A CLOSED ticket takes no
//! more commands.
//!
//! SLA targets are promised when the ticket is opened (the policy's targets
//! for its priority, see [`SlaPolicy`]) and tracked by [`TicketSla`]. A
//! target that is due and unmet is recorded once as `ticket.sla_breached`:
//! by the SLA watcher through [`RecordSlaBreach`], or by the reply or solve
//! that meets it late, so a late answer is counted even when no watcher ran
//! in between.
//!
//! Reason codes: [`INVALID_STATUS_TRANSITION`], [`TICKET_CLOSED`],
//! [`SLA_NOT_DUE`], [`SLA_ALREADY_MET`], [`SLA_ALREADY_BREACHED`],
//! [`NO_SLA_TARGET`].

mod policy;
mod sla;
#[cfg(test)]
mod tests;

pub use policy::{
    MAX_TARGET, POLICY_CATEGORY, PolicyTargets, SLA_POLICY_NAMESPACE, SetSlaPolicy, SlaPolicy,
    SlaPolicyCommand, SlaPolicyEvent, SlaPolicyState, default_policy_id, policy_stream,
};
pub use sla::{TargetClock, TicketSla, breach_command_id};

use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::pb;
use crate::time::add;
use prost_types::Timestamp;
use uuid::Uuid;

crate::event_messages! {
    pb::TicketOpened => "ticket.opened" version 1,
    pb::TicketAssigned => "ticket.assigned" version 1,
    pb::TicketReplied => "ticket.replied" version 1,
    pb::TicketStatusChanged => "ticket.status_changed" version 1,
    pb::TicketSlaBreached => "ticket.sla_breached" version 1,
}

crate::event_enum! {
    /// Events of the ticket stream.
    pub enum TicketEvent {
        /// The ticket was opened.
        Opened(pb::TicketOpened),
        /// The ticket was assigned to an agent.
        Assigned(pb::TicketAssigned),
        /// Someone replied.
        Replied(pb::TicketReplied),
        /// The status changed.
        StatusChanged(pb::TicketStatusChanged),
        /// An SLA target was missed.
        SlaBreached(pb::TicketSlaBreached),
    }
}

/// The stream category of tickets.
pub const CATEGORY: &str = "ticket";

/// The status change is not in the transition table.
pub const INVALID_STATUS_TRANSITION: &str = "INVALID_STATUS_TRANSITION";
/// The ticket is closed: no replies, assignments or breaches.
pub const TICKET_CLOSED: &str = "TICKET_CLOSED";
/// The SLA target is not due yet.
pub const SLA_NOT_DUE: &str = "SLA_NOT_DUE";
/// The SLA target was met.
pub const SLA_ALREADY_MET: &str = "SLA_ALREADY_MET";
/// The SLA target's breach is already recorded.
pub const SLA_ALREADY_BREACHED: &str = "SLA_ALREADY_BREACHED";
/// The ticket has no such SLA target.
pub const NO_SLA_TARGET: &str = "NO_SLA_TARGET";

/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
/// Longest reply body, in characters.
pub const MAX_BODY_CHARS: usize = 20_000;
/// Longest agent or author id, in bytes.
pub const MAX_AGENT_ID_BYTES: usize = 256;
/// Longest status-change reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// The stream of ticket `ticket_id`.
pub fn stream(ticket_id: Uuid) -> String {
    format!("{CATEGORY}-{ticket_id}")
}

/// Whether a ticket may move from `from` to `to`:
///
/// | from    | to                              |
/// |---------|---------------------------------|
/// | NEW     | OPEN, PENDING, ON_HOLD, SOLVED  |
/// | OPEN    | PENDING, ON_HOLD, SOLVED        |
/// | PENDING | OPEN, ON_HOLD, SOLVED           |
/// | ON_HOLD | OPEN, PENDING, SOLVED           |
/// | SOLVED  | OPEN, CLOSED                    |
/// | CLOSED  | (terminal)                      |
pub fn can_transition(from: pb::TicketStatus, to: pb::TicketStatus) -> bool {
    use pb::TicketStatus::{Closed, New, OnHold, Open, Pending, Solved};
    matches!(
        (from, to),
        (New, Open | Pending | OnHold | Solved)
            | (Open, Pending | OnHold | Solved)
            | (Pending, Open | OnHold | Solved)
            | (OnHold, Open | Pending | Solved)
            | (Solved, Open | Closed)
    )
}

/// Opens a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTicket {
    /// Caller-chosen id; `None`: a new id from the context.
    pub ticket_id: Option<Uuid>,
    /// The customer who asks.
    pub customer_id: Uuid,
    /// Where it came in.
    pub channel: pb::TicketChannel,
    /// One-line summary (1..=200 characters after trimming).
    pub subject: String,
    /// The question (at most 20000 characters).
    pub description: String,
    /// Priority.
    pub priority: pb::TicketPriority,
    /// The policy's targets for `priority`, read by the service when opening.
    pub sla: PolicyTargets,
}

/// Assigns a ticket to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignTicket {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The agent (1..=256 bytes after trimming).
    pub agent_id: String,
}

/// Adds a reply; its id is the first new id of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyToTicket {
    /// The ticket.
    pub ticket_id: Uuid,
    /// Agent or customer.
    pub author_kind: pb::TicketAuthorKind,
    /// The agent's id; for a customer empty or the ticket's customer id.
    pub author_id: String,
    /// Public or internal (agents only).
    pub visibility: pb::TicketReplyVisibility,
    /// The text (1..=20000 characters after trimming).
    pub body: String,
}

/// Moves a ticket to another status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeTicketStatus {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The new status.
    pub status: pb::TicketStatus,
    /// Why (at most 500 characters).
    pub reason: String,
}

/// Records that an SLA target was missed (the SLA watcher's command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSlaBreach {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The target.
    pub target: pb::SlaTarget,
    /// When the watcher looked: the target must be due by then.
    pub now: Timestamp,
}

/// What a caller asks of a ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketCommand {
    /// Open it.
    Open(OpenTicket),
    /// Assign it.
    Assign(AssignTicket),
    /// Reply to it.
    Reply(ReplyToTicket),
    /// Change its status.
    ChangeStatus(ChangeTicketStatus),
    /// Record a missed SLA target.
    RecordSlaBreach(RecordSlaBreach),
}

/// A ticket as its events describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketData {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// Where it came in.
    pub channel: pb::TicketChannel,
    /// Summary.
    pub subject: String,
    /// Question.
    pub description: String,
    /// Priority.
    pub priority: pb::TicketPriority,
    /// Current status.
    pub status: pb::TicketStatus,
    /// The assigned agent, or empty.
    pub assignee: String,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// Replies, oldest first.
    pub replies: Vec<pb::TicketReplied>,
    /// SLA targets.
    pub sla: TicketSla,
}

/// The ticket's state: `None` until it is opened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketState {
    /// The ticket, once opened.
    pub ticket: Option<TicketData>,
}

/// The ticket's rules.
#[derive(Debug)]
pub struct Ticket;

/// Text checks shared by the support aggregates: trimmed, bounded in
/// characters, free of control characters (line breaks and tabs allowed
/// only in multi-line text).
pub(crate) mod text {
    use crate::error::DomainError;

    /// Whether `text` may span lines.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Lines {
        One,
        Many,
    }

    /// `value` trimmed, or why it is not acceptable as `field`.
    pub(crate) fn check(
        field: &str,
        value: &str,
        max_chars: usize,
        required: bool,
        lines: Lines,
    ) -> Result<String, DomainError> {
        let trimmed = value.trim();
        if required && trimmed.is_empty() {
            return Err(DomainError::invalid(field, "is required"));
        }
        let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
        if trimmed.chars().any(|c| c.is_control() && !allowed(c)) {
            return Err(DomainError::invalid(
                field,
                "must not contain control characters",
            ));
        }
        let chars = trimmed.chars().count();
        if chars > max_chars {
            return Err(DomainError::invalid(
                field,
                format!("is {chars} characters, over the maximum of {max_chars}"),
            ));
        }
        Ok(trimmed.to_owned())
    }

    /// An identifier such as an agent id: trimmed, at most `max_bytes`, one line.
    pub(crate) fn check_id(
        field: &str,
        value: &str,
        max_bytes: usize,
    ) -> Result<String, DomainError> {
        let id = check(field, value, usize::MAX, true, Lines::One)?;
        if id.len() > max_bytes {
            return Err(DomainError::invalid(
                field,
                format!("is {} bytes, over the maximum of {max_bytes}", id.len()),
            ));
        }
        Ok(id)
    }
}

use text::Lines;

fn existing(state: &TicketState, ticket_id: Uuid) -> Result<&TicketData, DomainError> {
    state
        .ticket
        .as_ref()
        .ok_or_else(|| DomainError::not_found("ticket", ticket_id))
}

fn open_only(ticket: &TicketData) -> Result<&TicketData, DomainError> {
    if ticket.status == pb::TicketStatus::Closed {
        return Err(DomainError::rejected(
            TICKET_CLOSED,
            format!("ticket {} is closed", ticket.ticket_id),
        ));
    }
    Ok(ticket)
}

/// `events` preceded by a breach for every target they meet after its due
/// time (and that was not breached already): the late meeting is the
/// detection, so the breach is counted even if no watcher saw it due.
fn with_late_breaches(
    ticket: &TicketData,
    now: Timestamp,
    events: Vec<TicketEvent>,
) -> Vec<TicketEvent> {
    let mut after = ticket.sla.clone();
    for e in &events {
        after.apply(e);
    }
    let mut out: Vec<TicketEvent> = ticket
        .sla
        .pending()
        .into_iter()
        .filter(|(target, due_at)| {
            after.target(*target).is_some_and(|t| t.met_at.is_some())
                && crate::time::unix_nanos(due_at) <= crate::time::unix_nanos(&now)
        })
        .map(|(target, due_at)| {
            TicketEvent::SlaBreached(pb::TicketSlaBreached {
                ticket_id: ticket.ticket_id.to_string(),
                target: target as i32,
                due_at: Some(due_at),
                detected_at: Some(now),
            })
        })
        .collect();
    out.extend(events);
    out
}

fn status_changed(
    ticket: &TicketData,
    to: pb::TicketStatus,
    reason: &str,
    now: Timestamp,
) -> TicketEvent {
    TicketEvent::StatusChanged(pb::TicketStatusChanged {
        ticket_id: ticket.ticket_id.to_string(),
        from_status: ticket.status as i32,
        to_status: to as i32,
        reason: reason.to_owned(),
        changed_at: Some(now),
    })
}

fn open(
    state: &TicketState,
    cmd: &OpenTicket,
    ctx: &mut Context<'_>,
) -> Result<Vec<TicketEvent>, DomainError> {
    if let Some(t) = &state.ticket {
        return Err(DomainError::already_exists("ticket", t.ticket_id));
    }
    if cmd.ticket_id.is_some_and(|id| id.is_nil()) {
        return Err(DomainError::invalid(
            "ticket_id",
            "the nil UUID is not allowed",
        ));
    }
    if cmd.customer_id.is_nil() {
        return Err(DomainError::invalid("customer_id", "is required"));
    }
    if cmd.channel == pb::TicketChannel::Unspecified {
        return Err(DomainError::invalid("channel", "is required"));
    }
    let subject = text::check("subject", &cmd.subject, MAX_SUBJECT_CHARS, true, Lines::One)?;
    let description = text::check(
        "description",
        &cmd.description,
        MAX_DESCRIPTION_CHARS,
        false,
        Lines::Many,
    )?;
    if cmd.priority == pb::TicketPriority::Unspecified {
        return Err(DomainError::invalid("priority", "is required"));
    }
    let ticket_id = cmd.ticket_id.unwrap_or_else(|| ctx.new_id());
    Ok(vec![TicketEvent::Opened(pb::TicketOpened {
        ticket_id: ticket_id.to_string(),
        customer_id: cmd.customer_id.to_string(),
        channel: cmd.channel as i32,
        subject,
        description,
        priority: cmd.priority as i32,
        first_response_due_at: cmd.sla.first_response.map(|d| add(&ctx.now, d)),
        resolution_due_at: cmd.sla.resolution.map(|d| add(&ctx.now, d)),
        opened_at: Some(ctx.now),
    })])
}

fn assign(
    state: &TicketState,
    cmd: &AssignTicket,
    ctx: &Context<'_>,
) -> Result<Vec<TicketEvent>, DomainError> {
    let ticket = open_only(existing(state, cmd.ticket_id)?)?;
    let agent_id = text::check_id("agent_id", &cmd.agent_id, MAX_AGENT_ID_BYTES)?;
    if agent_id == ticket.assignee {
        return Ok(Vec::new());
    }
    Ok(vec![TicketEvent::Assigned(pb::TicketAssigned {
        ticket_id: ticket.ticket_id.to_string(),
        agent_id,
        previous_agent_id: ticket.assignee.clone(),
        assigned_at: Some(ctx.now),
    })])
}

fn reply(
    state: &TicketState,
    cmd: &ReplyToTicket,
    ctx: &mut Context<'_>,
) -> Result<Vec<TicketEvent>, DomainError> {
    let ticket = open_only(existing(state, cmd.ticket_id)?)?;
    let author_id = match cmd.author_kind {
        pb::TicketAuthorKind::Unspecified => {
            return Err(DomainError::invalid("author_kind", "is required"));
        }
        pb::TicketAuthorKind::Agent => {
            text::check_id("author_id", &cmd.author_id, MAX_AGENT_ID_BYTES)?
        }
        pb::TicketAuthorKind::Customer => {
            let customer = ticket.customer_id.to_string();
            let given = cmd.author_id.trim();
            if !given.is_empty() && !given.eq_ignore_ascii_case(&customer) {
                return Err(DomainError::invalid(
                    "author_id",
                    "a customer reply is written by the ticket's customer: leave it empty or give the customer id",
                ));
            }
            customer
        }
    };
    match (cmd.visibility, cmd.author_kind) {
        (pb::TicketReplyVisibility::Unspecified, _) => {
            return Err(DomainError::invalid("visibility", "is required"));
        }
        (pb::TicketReplyVisibility::Internal, pb::TicketAuthorKind::Customer) => {
            return Err(DomainError::invalid(
                "visibility",
                "internal replies are written by agents only",
            ));
        }
        _ => {}
    }
    let body = text::check("body", &cmd.body, MAX_BODY_CHARS, true, Lines::Many)?;
    let reply_id = ctx.new_id();
    let mut events = vec![TicketEvent::Replied(pb::TicketReplied {
        ticket_id: ticket.ticket_id.to_string(),
        reply_id: reply_id.to_string(),
        author_kind: cmd.author_kind as i32,
        author_id,
        visibility: cmd.visibility as i32,
        body,
        replied_at: Some(ctx.now),
    })];
    let public = cmd.visibility == pb::TicketReplyVisibility::Public;
    match (cmd.author_kind, ticket.status) {
        (pb::TicketAuthorKind::Agent, pb::TicketStatus::New) if public => {
            events.push(status_changed(
                ticket,
                pb::TicketStatus::Open,
                "agent replied",
                ctx.now,
            ));
        }
        (pb::TicketAuthorKind::Customer, pb::TicketStatus::Solved | pb::TicketStatus::Pending) => {
            events.push(status_changed(
                ticket,
                pb::TicketStatus::Open,
                "customer replied",
                ctx.now,
            ));
        }
        _ => {}
    }
    Ok(with_late_breaches(ticket, ctx.now, events))
}

fn change_status(
    state: &TicketState,
    cmd: &ChangeTicketStatus,
    ctx: &Context<'_>,
) -> Result<Vec<TicketEvent>, DomainError> {
    let ticket = existing(state, cmd.ticket_id)?;
    if cmd.status == pb::TicketStatus::Unspecified {
        return Err(DomainError::invalid("status", "is required"));
    }
    let reason = text::check("reason", &cmd.reason, MAX_REASON_CHARS, false, Lines::One)?;
    if cmd.status == ticket.status {
        return Ok(Vec::new());
    }
    if !can_transition(ticket.status, cmd.status) {
        return Err(DomainError::rejected(
            INVALID_STATUS_TRANSITION,
            format!(
                "a {} ticket cannot become {}",
                ticket.status.as_str_name(),
                cmd.status.as_str_name()
            ),
        ));
    }
    let events = vec![status_changed(ticket, cmd.status, &reason, ctx.now)];
    Ok(with_late_breaches(ticket, ctx.now, events))
}

fn record_breach(
    state: &TicketState,
    cmd: &RecordSlaBreach,
) -> Result<Vec<TicketEvent>, DomainError> {
    let ticket = open_only(existing(state, cmd.ticket_id)?)?;
    if cmd.target == pb::SlaTarget::Unspecified {
        return Err(DomainError::invalid("target", "is required"));
    }
    let name = cmd.target.as_str_name();
    let Some(target) = ticket.sla.target(cmd.target) else {
        return Err(DomainError::rejected(
            NO_SLA_TARGET,
            format!("ticket {} has no {name} target", ticket.ticket_id),
        ));
    };
    if target.breached_at.is_some() {
        return Err(DomainError::rejected(
            SLA_ALREADY_BREACHED,
            format!(
                "the {name} breach of ticket {} is recorded",
                ticket.ticket_id
            ),
        ));
    }
    if target.met_at.is_some() {
        return Err(DomainError::rejected(
            SLA_ALREADY_MET,
            format!("ticket {} met its {name} target", ticket.ticket_id),
        ));
    }
    if !target.is_due(&cmd.now) {
        return Err(DomainError::rejected(
            SLA_NOT_DUE,
            format!(
                "the {name} target of ticket {} is not due yet",
                ticket.ticket_id
            ),
        ));
    }
    Ok(vec![TicketEvent::SlaBreached(pb::TicketSlaBreached {
        ticket_id: ticket.ticket_id.to_string(),
        target: cmd.target as i32,
        due_at: Some(target.due_at),
        detected_at: Some(cmd.now),
    })])
}

fn parse_id(s: &str) -> Uuid {
    // Only this decider writes these events, always from a Uuid.
    Uuid::try_parse(s).unwrap_or_default()
}

impl Decider for Ticket {
    type State = TicketState;
    type Command = TicketCommand;
    type Event = TicketEvent;

    fn decide(
        state: &TicketState,
        command: &TicketCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        match command {
            TicketCommand::Open(cmd) => open(state, cmd, ctx),
            TicketCommand::Assign(cmd) => assign(state, cmd, ctx),
            TicketCommand::Reply(cmd) => reply(state, cmd, ctx),
            TicketCommand::ChangeStatus(cmd) => change_status(state, cmd, ctx),
            TicketCommand::RecordSlaBreach(cmd) => record_breach(state, cmd),
        }
    }

    fn evolve(mut state: TicketState, event: &TicketEvent) -> TicketState {
        if let TicketEvent::Opened(e) = event {
            state.ticket = Some(TicketData {
                ticket_id: parse_id(&e.ticket_id),
                customer_id: parse_id(&e.customer_id),
                channel: pb::TicketChannel::try_from(e.channel).unwrap_or_default(),
                subject: e.subject.clone(),
                description: e.description.clone(),
                priority: pb::TicketPriority::try_from(e.priority).unwrap_or_default(),
                status: pb::TicketStatus::New,
                assignee: String::new(),
                opened_at: e.opened_at.unwrap_or_default(),
                replies: Vec::new(),
                sla: TicketSla::default(),
            });
        }
        let Some(ticket) = state.ticket.as_mut() else {
            return state;
        };
        ticket.sla.apply(event);
        match event {
            TicketEvent::Assigned(e) => ticket.assignee.clone_from(&e.agent_id),
            TicketEvent::Replied(e) => ticket.replies.push(e.clone()),
            TicketEvent::StatusChanged(e) => {
                ticket.status = pb::TicketStatus::try_from(e.to_status).unwrap_or_default();
            }
            TicketEvent::Opened(_) | TicketEvent::SlaBreached(_) => {}
        }
        state
    }
}
