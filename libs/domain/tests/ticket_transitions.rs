//! Random sequences of status changes, replies and breach commands never
//! leave the ticket's transition table, never touch a closed ticket, and
//! record each SLA breach at most once.

use kizuna_domain::pb;
use kizuna_domain::ticket::{
    ChangeTicketStatus, INVALID_STATUS_TRANSITION, OpenTicket, PolicyTargets, RecordSlaBreach,
    ReplyToTicket, TICKET_CLOSED, Ticket, TicketCommand, TicketEvent, TicketState, can_transition,
};
use kizuna_domain::time::add;
use kizuna_domain::{Context, Decider, DomainError, SequentialIds};
use proptest::prelude::*;
use std::time::Duration;
use uuid::Uuid;

const TICKET: Uuid = Uuid::from_u128(0x7);
const CUSTOMER: Uuid = Uuid::from_u128(0xc0);

#[derive(Debug, Clone)]
enum Step {
    Change(pb::TicketStatus),
    Reply(pb::TicketAuthorKind, pb::TicketReplyVisibility),
    Breach(pb::SlaTarget),
}

fn status() -> impl Strategy<Value = pb::TicketStatus> {
    (0i32..=6).prop_map(|v| pb::TicketStatus::try_from(v).unwrap_or_default())
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => status().prop_map(Step::Change),
        2 => (1i32..=2, 1i32..=2).prop_map(|(k, v)| Step::Reply(
            pb::TicketAuthorKind::try_from(k).unwrap_or_default(),
            pb::TicketReplyVisibility::try_from(v).unwrap_or_default(),
        )),
        1 => (1i32..=2).prop_map(|t| Step::Breach(pb::SlaTarget::try_from(t).unwrap_or_default())),
    ]
}

fn command(step: &Step, now: prost_types::Timestamp) -> TicketCommand {
    match step {
        Step::Change(status) => TicketCommand::ChangeStatus(ChangeTicketStatus {
            ticket_id: TICKET,
            status: *status,
            reason: String::new(),
        }),
        Step::Reply(kind, visibility) => TicketCommand::Reply(ReplyToTicket {
            ticket_id: TICKET,
            author_kind: *kind,
            author_id: if *kind == pb::TicketAuthorKind::Agent {
                "agent:a".into()
            } else {
                String::new()
            },
            visibility: *visibility,
            body: "hi".into(),
        }),
        Step::Breach(target) => TicketCommand::RecordSlaBreach(RecordSlaBreach {
            ticket_id: TICKET,
            target: *target,
            now,
        }),
    }
}

fn status_of(state: &TicketState) -> pb::TicketStatus {
    state
        .ticket
        .as_ref()
        .map_or(pb::TicketStatus::Unspecified, |t| t.status)
}

proptest! {
    #[test]
    fn random_commands_stay_inside_the_transition_table(
        steps in proptest::collection::vec((step(), 0u64..7200), 1..60)
    ) {
        let start = kizuna_domain::testing::default_now();
        let mut ids = SequentialIds::default();
        let mut ctx = Context { now: start, ids: &mut ids };
        let open = TicketCommand::Open(OpenTicket {
            ticket_id: Some(TICKET),
            customer_id: CUSTOMER,
            channel: pb::TicketChannel::Chat,
            subject: "s".into(),
            description: String::new(),
            priority: pb::TicketPriority::High,
            sla: PolicyTargets {
                first_response: Some(Duration::from_secs(3600)),
                resolution: Some(Duration::from_secs(4 * 3600)),
            },
        });
        let mut history = Ticket::decide(&TicketState::default(), &open, &mut ctx)
            .expect("opens");
        let mut state = Ticket::fold(&history);
        let mut elapsed = 0u64;
        for (step, advance) in &steps {
            elapsed += advance;
            ctx.now = add(&start, Duration::from_secs(elapsed));
            let before = status_of(&state);
            let result = Ticket::decide(&state, &command(step, ctx.now), &mut ctx);
            match result {
                Ok(events) => {
                    prop_assert!(before != pb::TicketStatus::Closed || events.is_empty(),
                        "a closed ticket changed: {events:?}");
                    let mut current = before;
                    for e in &events {
                        state = Ticket::evolve(state, e);
                        if let TicketEvent::StatusChanged(c) = e {
                            let from = pb::TicketStatus::try_from(c.from_status).unwrap_or_default();
                            let to = pb::TicketStatus::try_from(c.to_status).unwrap_or_default();
                            prop_assert_eq!(from, current);
                            prop_assert!(can_transition(from, to), "{:?} -> {:?}", from, to);
                            current = to;
                        }
                    }
                    prop_assert_eq!(status_of(&state), current);
                    history.extend(events);
                }
                Err(DomainError::Rejected { reason, .. }) => {
                    if let Step::Change(to) = step {
                        prop_assert_eq!(reason, INVALID_STATUS_TRANSITION);
                        prop_assert!(!can_transition(before, *to) && before != *to);
                    } else if before == pb::TicketStatus::Closed {
                        prop_assert_eq!(reason, TICKET_CLOSED);
                    }
                    prop_assert_eq!(status_of(&state), before);
                }
                Err(DomainError::InvalidArgument { field, .. }) => {
                    // The malformed steps: an unspecified status, and an
                    // internal note by the customer.
                    match step {
                        Step::Change(pb::TicketStatus::Unspecified) => {
                            prop_assert_eq!(field, "status");
                        }
                        Step::Reply(
                            pb::TicketAuthorKind::Customer,
                            pb::TicketReplyVisibility::Internal,
                        ) => prop_assert_eq!(field, "visibility"),
                        other => prop_assert!(false, "{other:?} rejected as {field}"),
                    }
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
        // Each target is breached at most once, and never after closing.
        for target in [pb::SlaTarget::FirstResponse, pb::SlaTarget::Resolution] {
            let breaches = history.iter().filter(|e| matches!(e,
                TicketEvent::SlaBreached(b) if b.target == target as i32)).count();
            prop_assert!(breaches <= 1, "{target:?} breached {breaches} times");
        }
        let closed_at = history.iter().position(|e| matches!(e,
            TicketEvent::StatusChanged(c) if c.to_status == pb::TicketStatus::Closed as i32));
        if let Some(i) = closed_at {
            prop_assert_eq!(i, history.len() - 1, "events after closing");
        }
        prop_assert_eq!(Ticket::fold(&history), state);
    }
}
