//! Given / when / then for the ticket and the SLA policy: every command, each
//! rejection.

use super::*;
use crate::testing::{default_now, given};
use crate::time::at_seconds;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

fn ticket_id() -> Uuid {
    Uuid::from_u128(0x7)
}

fn customer() -> Uuid {
    Uuid::from_u128(0xc0)
}

fn now_plus(d: Duration) -> Timestamp {
    add(&default_now(), d)
}

fn open_cmd() -> OpenTicket {
    OpenTicket {
        ticket_id: Some(ticket_id()),
        customer_id: customer(),
        channel: pb::TicketChannel::Email,
        subject: "  Parcel never arrived ".into(),
        description: "Ordered on the 3rd.\nTracking says delivered.".into(),
        priority: pb::TicketPriority::Urgent,
        sla: PolicyTargets {
            first_response: Some(HOUR),
            resolution: Some(4 * HOUR),
        },
    }
}

fn opened() -> pb::TicketOpened {
    pb::TicketOpened {
        ticket_id: ticket_id().to_string(),
        customer_id: customer().to_string(),
        channel: pb::TicketChannel::Email as i32,
        subject: "Parcel never arrived".into(),
        description: "Ordered on the 3rd.\nTracking says delivered.".into(),
        priority: pb::TicketPriority::Urgent as i32,
        first_response_due_at: Some(now_plus(HOUR)),
        resolution_due_at: Some(now_plus(4 * HOUR)),
        opened_at: Some(default_now()),
    }
}

fn opened_event() -> TicketEvent {
    TicketEvent::Opened(opened())
}

fn status_event(from: pb::TicketStatus, to: pb::TicketStatus, reason: &str) -> TicketEvent {
    TicketEvent::StatusChanged(pb::TicketStatusChanged {
        ticket_id: ticket_id().to_string(),
        from_status: from as i32,
        to_status: to as i32,
        reason: reason.into(),
        changed_at: Some(default_now()),
    })
}

fn history_to(status: pb::TicketStatus) -> Vec<TicketEvent> {
    use pb::TicketStatus::{Closed, New, OnHold, Open, Pending, Solved};
    let mut events = vec![opened_event()];
    let path: &[pb::TicketStatus] = match status {
        New | pb::TicketStatus::Unspecified => &[],
        Open => &[Open],
        Pending => &[Pending],
        OnHold => &[OnHold],
        Solved => &[Solved],
        Closed => &[Solved, Closed],
    };
    let mut from = New;
    for to in path {
        events.push(status_event(from, *to, ""));
        from = *to;
    }
    events
}

fn assign(agent: &str) -> TicketCommand {
    TicketCommand::Assign(AssignTicket {
        ticket_id: ticket_id(),
        agent_id: agent.into(),
    })
}

fn reply_cmd(
    kind: pb::TicketAuthorKind,
    visibility: pb::TicketReplyVisibility,
    author: &str,
) -> ReplyToTicket {
    ReplyToTicket {
        ticket_id: ticket_id(),
        author_kind: kind,
        author_id: author.into(),
        visibility,
        body: " Looking into it. ".into(),
    }
}

fn agent_reply() -> TicketCommand {
    TicketCommand::Reply(reply_cmd(
        pb::TicketAuthorKind::Agent,
        pb::TicketReplyVisibility::Public,
        "agent:alice",
    ))
}

fn customer_reply() -> TicketCommand {
    TicketCommand::Reply(reply_cmd(
        pb::TicketAuthorKind::Customer,
        pb::TicketReplyVisibility::Public,
        "",
    ))
}

fn replied(
    kind: pb::TicketAuthorKind,
    visibility: pb::TicketReplyVisibility,
    author: &str,
) -> TicketEvent {
    TicketEvent::Replied(pb::TicketReplied {
        ticket_id: ticket_id().to_string(),
        reply_id: Uuid::from_u128(1).to_string(),
        author_kind: kind as i32,
        author_id: author.into(),
        visibility: visibility as i32,
        body: "Looking into it.".into(),
        replied_at: Some(default_now()),
    })
}

fn change(to: pb::TicketStatus) -> TicketCommand {
    TicketCommand::ChangeStatus(ChangeTicketStatus {
        ticket_id: ticket_id(),
        status: to,
        reason: String::new(),
    })
}

fn breach_cmd(target: pb::SlaTarget, now: Timestamp) -> TicketCommand {
    TicketCommand::RecordSlaBreach(RecordSlaBreach {
        ticket_id: ticket_id(),
        target,
        now,
    })
}

fn breached(target: pb::SlaTarget, due_at: Timestamp, detected_at: Timestamp) -> TicketEvent {
    TicketEvent::SlaBreached(pb::TicketSlaBreached {
        ticket_id: ticket_id().to_string(),
        target: target as i32,
        due_at: Some(due_at),
        detected_at: Some(detected_at),
    })
}

fn sla_of(state: &TicketState) -> TicketSla {
    state.ticket.as_ref().expect("opened").sla.clone()
}

// ---- OpenTicket ----

#[test]
fn opening_records_the_policy_targets_as_due_times() {
    let state = given::<Ticket>([])
        .when(TicketCommand::Open(open_cmd()))
        .then([opened_event()]);
    let t = state.ticket.expect("opened");
    assert_eq!(t.status, pb::TicketStatus::New);
    assert_eq!(t.customer_id, customer());
    assert_eq!(
        t.sla.pending(),
        [
            (pb::SlaTarget::FirstResponse, now_plus(HOUR)),
            (pb::SlaTarget::Resolution, now_plus(4 * HOUR))
        ]
    );
}

#[test]
fn opening_without_a_policy_or_an_id_records_no_targets_and_a_new_id() {
    let events = given::<Ticket>([])
        .when(TicketCommand::Open(OpenTicket {
            ticket_id: None,
            sla: PolicyTargets::default(),
            ..open_cmd()
        }))
        .events();
    let [TicketEvent::Opened(e)] = events.as_slice() else {
        panic!("one opened event: {events:?}");
    };
    assert_eq!(e.ticket_id, Uuid::from_u128(1).to_string());
    assert_eq!((e.first_response_due_at, e.resolution_due_at), (None, None));
    let state = Ticket::fold(&events);
    assert!(state.ticket.expect("opened").sla.is_settled());
}

#[test]
fn opening_a_taken_id_already_exists() {
    given::<Ticket>([opened_event()])
        .when(TicketCommand::Open(open_cmd()))
        .then_error(DomainError::already_exists("ticket", ticket_id()));
}

#[test]
fn opening_checks_each_field() {
    let cases: Vec<(&str, OpenTicket)> = vec![
        (
            "ticket_id",
            OpenTicket {
                ticket_id: Some(Uuid::nil()),
                ..open_cmd()
            },
        ),
        (
            "customer_id",
            OpenTicket {
                customer_id: Uuid::nil(),
                ..open_cmd()
            },
        ),
        (
            "channel",
            OpenTicket {
                channel: pb::TicketChannel::Unspecified,
                ..open_cmd()
            },
        ),
        (
            "subject",
            OpenTicket {
                subject: "   ".into(),
                ..open_cmd()
            },
        ),
        (
            "subject",
            OpenTicket {
                subject: "x".repeat(MAX_SUBJECT_CHARS + 1),
                ..open_cmd()
            },
        ),
        (
            "subject",
            OpenTicket {
                subject: "two\nlines".into(),
                ..open_cmd()
            },
        ),
        (
            "description",
            OpenTicket {
                description: "x".repeat(MAX_DESCRIPTION_CHARS + 1),
                ..open_cmd()
            },
        ),
        (
            "description",
            OpenTicket {
                description: "nul\0".into(),
                ..open_cmd()
            },
        ),
        (
            "priority",
            OpenTicket {
                priority: pb::TicketPriority::Unspecified,
                ..open_cmd()
            },
        ),
    ];
    for (field, cmd) in cases {
        given::<Ticket>([])
            .when(TicketCommand::Open(cmd))
            .then_invalid(field);
    }
    // The limits are in characters, not bytes, and inclusive.
    given::<Ticket>([])
        .when(TicketCommand::Open(OpenTicket {
            subject: "荷".repeat(MAX_SUBJECT_CHARS),
            description: String::new(),
            ..open_cmd()
        }))
        .events();
}

// ---- AssignTicket ----

#[test]
fn assigning_records_the_agent_and_the_previous_one() {
    let first = TicketEvent::Assigned(pb::TicketAssigned {
        ticket_id: ticket_id().to_string(),
        agent_id: "agent:alice".into(),
        previous_agent_id: String::new(),
        assigned_at: Some(default_now()),
    });
    let state = given::<Ticket>([opened_event()])
        .when(assign(" agent:alice "))
        .then([first.clone()]);
    assert_eq!(state.ticket.expect("opened").assignee, "agent:alice");
    given::<Ticket>([opened_event(), first.clone()])
        .when(assign("agent:bob"))
        .then([TicketEvent::Assigned(pb::TicketAssigned {
            ticket_id: ticket_id().to_string(),
            agent_id: "agent:bob".into(),
            previous_agent_id: "agent:alice".into(),
            assigned_at: Some(default_now()),
        })]);
    // The same agent again changes nothing.
    given::<Ticket>([opened_event(), first])
        .when(assign("agent:alice"))
        .then([]);
}

#[test]
fn assigning_needs_an_open_ticket_and_a_valid_agent() {
    given::<Ticket>([])
        .when(assign("agent:alice"))
        .then_not_found("ticket");
    given::<Ticket>(history_to(pb::TicketStatus::Closed))
        .when(assign("agent:alice"))
        .then_rejected(TICKET_CLOSED);
    given::<Ticket>([opened_event()])
        .when(assign("  "))
        .then_invalid("agent_id");
    given::<Ticket>([opened_event()])
        .when(assign(&"a".repeat(MAX_AGENT_ID_BYTES + 1)))
        .then_invalid("agent_id");
    given::<Ticket>([opened_event()])
        .when(assign("agent:\u{1b}[31m"))
        .then_invalid("agent_id");
}

// ---- ReplyToTicket ----

#[test]
fn an_agents_first_public_reply_meets_the_first_response_and_opens_a_new_ticket() {
    let state = given::<Ticket>([opened_event()])
        .at(now_plus(HOUR / 2))
        .when(agent_reply())
        .events();
    let mut expected_reply = replied(
        pb::TicketAuthorKind::Agent,
        pb::TicketReplyVisibility::Public,
        "agent:alice",
    );
    let mut expected_status = status_event(
        pb::TicketStatus::New,
        pb::TicketStatus::Open,
        "agent replied",
    );
    if let TicketEvent::Replied(r) = &mut expected_reply {
        r.replied_at = Some(now_plus(HOUR / 2));
    }
    if let TicketEvent::StatusChanged(s) = &mut expected_status {
        s.changed_at = Some(now_plus(HOUR / 2));
    }
    assert_eq!(state, [expected_reply.clone(), expected_status.clone()]);
    let folded = Ticket::fold(&[opened_event(), expected_reply, expected_status]);
    let sla = sla_of(&folded);
    assert_eq!(
        sla.first_response.expect("target").met_at,
        Some(now_plus(HOUR / 2))
    );
    assert_eq!(
        sla.pending(),
        [(pb::SlaTarget::Resolution, now_plus(4 * HOUR))]
    );
    assert_eq!(
        folded.ticket.expect("opened").status,
        pb::TicketStatus::Open
    );
}

#[test]
fn an_internal_note_neither_meets_the_target_nor_moves_the_status() {
    let state = given::<Ticket>([opened_event()])
        .when(TicketCommand::Reply(reply_cmd(
            pb::TicketAuthorKind::Agent,
            pb::TicketReplyVisibility::Internal,
            "agent:alice",
        )))
        .then([replied(
            pb::TicketAuthorKind::Agent,
            pb::TicketReplyVisibility::Internal,
            "agent:alice",
        )]);
    let t = state.ticket.expect("opened");
    assert_eq!(t.status, pb::TicketStatus::New);
    assert_eq!(t.sla.pending().len(), 2);
    assert_eq!(t.replies.len(), 1);
}

#[test]
fn a_later_agent_reply_keeps_the_first_meeting_time() {
    let mut history = vec![opened_event()];
    history.extend(
        given::<Ticket>([opened_event()])
            .when(agent_reply())
            .events(),
    );
    let events = given::<Ticket>(history.clone())
        .at(now_plus(3 * HOUR))
        .when(agent_reply())
        .events();
    assert_eq!(events.len(), 1, "only the reply: {events:?}");
    history.extend(events);
    let sla = sla_of(&Ticket::fold(&history));
    assert_eq!(
        sla.first_response.expect("target").met_at,
        Some(default_now())
    );
}

#[test]
fn a_customer_reply_reopens_a_solved_or_pending_ticket() {
    let customer_reply_event = replied(
        pb::TicketAuthorKind::Customer,
        pb::TicketReplyVisibility::Public,
        &customer().to_string(),
    );
    for from in [pb::TicketStatus::Solved, pb::TicketStatus::Pending] {
        let state = given::<Ticket>(history_to(from))
            .when(customer_reply())
            .then([
                customer_reply_event.clone(),
                status_event(from, pb::TicketStatus::Open, "customer replied"),
            ]);
        assert_eq!(state.ticket.expect("opened").status, pb::TicketStatus::Open);
    }
    // The customer may name themselves; elsewhere a reply moves nothing.
    for from in [
        pb::TicketStatus::New,
        pb::TicketStatus::Open,
        pb::TicketStatus::OnHold,
    ] {
        given::<Ticket>(history_to(from))
            .when(TicketCommand::Reply(reply_cmd(
                pb::TicketAuthorKind::Customer,
                pb::TicketReplyVisibility::Public,
                &customer().to_string(),
            )))
            .then([customer_reply_event.clone()]);
    }
}

#[test]
fn a_closed_or_unknown_ticket_takes_no_reply() {
    given::<Ticket>(history_to(pb::TicketStatus::Closed))
        .when(customer_reply())
        .then_rejected(TICKET_CLOSED);
    given::<Ticket>([])
        .when(agent_reply())
        .then_not_found("ticket");
}

#[test]
fn a_reply_checks_each_field() {
    use pb::TicketAuthorKind::{Agent, Customer};
    use pb::TicketReplyVisibility::{Internal, Public};
    let cases = [
        (
            "author_kind",
            reply_cmd(pb::TicketAuthorKind::Unspecified, Public, "agent:a"),
        ),
        (
            "visibility",
            reply_cmd(Agent, pb::TicketReplyVisibility::Unspecified, "agent:a"),
        ),
        ("visibility", reply_cmd(Customer, Internal, "")),
        ("author_id", reply_cmd(Agent, Public, "")),
        ("author_id", reply_cmd(Customer, Public, "someone-else")),
        (
            "body",
            ReplyToTicket {
                body: " \n ".into(),
                ..reply_cmd(Agent, Public, "agent:a")
            },
        ),
        (
            "body",
            ReplyToTicket {
                body: "x".repeat(MAX_BODY_CHARS + 1),
                ..reply_cmd(Agent, Public, "agent:a")
            },
        ),
    ];
    for (field, cmd) in cases {
        given::<Ticket>([opened_event()])
            .when(TicketCommand::Reply(cmd))
            .then_invalid(field);
    }
}

#[test]
fn a_first_reply_after_the_due_time_records_the_breach_it_meets() {
    let late = now_plus(2 * HOUR);
    let events = given::<Ticket>([opened_event()])
        .at(late)
        .when(agent_reply())
        .events();
    assert_eq!(
        events[0],
        breached(pb::SlaTarget::FirstResponse, now_plus(HOUR), late)
    );
    assert!(matches!(events[1], TicketEvent::Replied(_)));
    assert!(matches!(events[2], TicketEvent::StatusChanged(_)));
    let mut history = vec![opened_event()];
    history.extend(events);
    // Recorded once: the watcher's command is now refused.
    given::<Ticket>(history)
        .at(late)
        .when(breach_cmd(pb::SlaTarget::FirstResponse, late))
        .then_rejected(SLA_ALREADY_BREACHED);
}

#[test]
fn a_reply_on_the_due_time_is_late_and_one_before_it_is_not() {
    let events = given::<Ticket>([opened_event()])
        .at(now_plus(HOUR))
        .when(agent_reply())
        .events();
    assert!(
        matches!(events[0], TicketEvent::SlaBreached(_)),
        "{events:?}"
    );
    let events = given::<Ticket>([opened_event()])
        .at(sub_nanos(now_plus(HOUR), 1))
        .when(agent_reply())
        .events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, TicketEvent::SlaBreached(_))),
        "{events:?}"
    );
}

fn sub_nanos(t: Timestamp, n: u64) -> Timestamp {
    crate::time::sub(&t, Duration::from_nanos(n))
}

// ---- ChangeTicketStatus ----

#[test]
fn the_transition_table_is_exactly_the_documented_one() {
    use pb::TicketStatus::{Closed, New, OnHold, Open, Pending, Solved, Unspecified};
    let all = [Unspecified, New, Open, Pending, OnHold, Solved, Closed];
    let allowed = [
        (New, Open),
        (New, Pending),
        (New, OnHold),
        (New, Solved),
        (Open, Pending),
        (Open, OnHold),
        (Open, Solved),
        (Pending, Open),
        (Pending, OnHold),
        (Pending, Solved),
        (OnHold, Open),
        (OnHold, Pending),
        (OnHold, Solved),
        (Solved, Open),
        (Solved, Closed),
    ];
    for from in all {
        for to in all {
            assert_eq!(
                can_transition(from, to),
                allowed.contains(&(from, to)),
                "{from:?} -> {to:?}"
            );
        }
    }
}

#[test]
fn every_allowed_move_is_recorded_and_every_other_rejected() {
    use pb::TicketStatus::{Closed, New, OnHold, Open, Pending, Solved};
    let statuses = [New, Open, Pending, OnHold, Solved, Closed];
    for from in statuses {
        for to in statuses {
            let scenario = given::<Ticket>(history_to(from)).when(TicketCommand::ChangeStatus(
                ChangeTicketStatus {
                    ticket_id: ticket_id(),
                    status: to,
                    reason: " because ".into(),
                },
            ));
            if from == to {
                scenario.then([]);
            } else if can_transition(from, to) {
                let events = scenario.events();
                assert_eq!(
                    events.last(),
                    Some(&status_event(from, to, "because")),
                    "{from:?} -> {to:?}"
                );
            } else {
                scenario.then_rejected(INVALID_STATUS_TRANSITION);
            }
        }
    }
}

#[test]
fn a_status_change_checks_its_fields_and_the_ticket() {
    given::<Ticket>([opened_event()])
        .when(change(pb::TicketStatus::Unspecified))
        .then_invalid("status");
    given::<Ticket>([opened_event()])
        .when(TicketCommand::ChangeStatus(ChangeTicketStatus {
            ticket_id: ticket_id(),
            status: pb::TicketStatus::Open,
            reason: "x".repeat(MAX_REASON_CHARS + 1),
        }))
        .then_invalid("reason");
    given::<Ticket>([])
        .when(change(pb::TicketStatus::Open))
        .then_not_found("ticket");
}

#[test]
fn solving_meets_both_targets_once_and_reopening_does_not_restart_them() {
    let at = now_plus(HOUR / 4);
    let events = given::<Ticket>([opened_event()])
        .at(at)
        .when(change(pb::TicketStatus::Solved))
        .events();
    assert_eq!(events.len(), 1, "no breach when on time: {events:?}");
    let mut history = vec![opened_event()];
    history.extend(events);
    let sla = sla_of(&Ticket::fold(&history));
    assert_eq!(sla.resolution.expect("target").met_at, Some(at));
    assert_eq!(sla.first_response.expect("target").met_at, Some(at));
    history.extend(
        given::<Ticket>(history.clone())
            .at(now_plus(5 * HOUR))
            .when(customer_reply())
            .events(),
    );
    let events = given::<Ticket>(history.clone())
        .at(now_plus(6 * HOUR))
        .when(change(pb::TicketStatus::Solved))
        .events();
    assert_eq!(events.len(), 1, "met targets stay met: {events:?}");
    history.extend(events);
    assert!(sla_of(&Ticket::fold(&history)).is_settled());
}

#[test]
fn solving_late_records_the_breaches_it_meets() {
    let late = now_plus(5 * HOUR);
    given::<Ticket>([opened_event()])
        .at(late)
        .when(change(pb::TicketStatus::Solved))
        .then([
            breached(pb::SlaTarget::FirstResponse, now_plus(HOUR), late),
            breached(pb::SlaTarget::Resolution, now_plus(4 * HOUR), late),
            TicketEvent::StatusChanged(pb::TicketStatusChanged {
                changed_at: Some(late),
                ..match status_event(pb::TicketStatus::New, pb::TicketStatus::Solved, "") {
                    TicketEvent::StatusChanged(s) => s,
                    _ => unreachable!(),
                }
            }),
        ]);
}

// ---- RecordSlaBreach ----

#[test]
fn a_due_unmet_target_is_breached_once() {
    let at = now_plus(HOUR);
    let state = given::<Ticket>([opened_event()])
        .at(at)
        .when(breach_cmd(pb::SlaTarget::FirstResponse, at))
        .then([breached(pb::SlaTarget::FirstResponse, now_plus(HOUR), at)]);
    assert_eq!(
        sla_of(&state).pending(),
        [(pb::SlaTarget::Resolution, now_plus(4 * HOUR))]
    );
    given::<Ticket>([
        opened_event(),
        breached(pb::SlaTarget::FirstResponse, now_plus(HOUR), at),
    ])
    .when(breach_cmd(pb::SlaTarget::FirstResponse, now_plus(2 * HOUR)))
    .then_rejected(SLA_ALREADY_BREACHED);
}

#[test]
fn a_breach_before_the_due_time_is_refused() {
    given::<Ticket>([opened_event()])
        .when(breach_cmd(
            pb::SlaTarget::FirstResponse,
            sub_nanos(now_plus(HOUR), 1),
        ))
        .then_rejected(SLA_NOT_DUE);
}

#[test]
fn a_met_target_is_never_breached() {
    let mut history = vec![opened_event()];
    history.extend(
        given::<Ticket>([opened_event()])
            .when(agent_reply())
            .events(),
    );
    given::<Ticket>(history)
        .when(breach_cmd(pb::SlaTarget::FirstResponse, now_plus(2 * HOUR)))
        .then_rejected(SLA_ALREADY_MET);
}

#[test]
fn a_missing_target_a_closed_or_unknown_ticket_get_no_breach() {
    let mut no_resolution = opened();
    no_resolution.resolution_due_at = None;
    given::<Ticket>([TicketEvent::Opened(no_resolution)])
        .when(breach_cmd(pb::SlaTarget::Resolution, now_plus(9 * HOUR)))
        .then_rejected(NO_SLA_TARGET);
    let mut closed_unanswered = vec![opened_event()];
    closed_unanswered.extend(history_to(pb::TicketStatus::Closed).into_iter().skip(1));
    given::<Ticket>(closed_unanswered)
        .when(breach_cmd(pb::SlaTarget::FirstResponse, now_plus(9 * HOUR)))
        .then_rejected(TICKET_CLOSED);
    given::<Ticket>([])
        .when(breach_cmd(pb::SlaTarget::FirstResponse, now_plus(9 * HOUR)))
        .then_not_found("ticket");
    given::<Ticket>([opened_event()])
        .when(breach_cmd(pb::SlaTarget::Unspecified, now_plus(9 * HOUR)))
        .then_invalid("target");
}

#[test]
fn closing_settles_the_schedule_and_the_breach_command_id_is_stable() {
    let mut sla = TicketSla::default();
    for e in history_to(pb::TicketStatus::Closed) {
        sla.apply(&e);
    }
    assert!(sla.closed && sla.is_settled());
    let a = breach_command_id(ticket_id(), pb::SlaTarget::FirstResponse);
    assert_eq!(
        a,
        breach_command_id(ticket_id(), pb::SlaTarget::FirstResponse)
    );
    assert_ne!(a, breach_command_id(ticket_id(), pb::SlaTarget::Resolution));
    assert_ne!(
        a,
        breach_command_id(Uuid::from_u128(8), pb::SlaTarget::FirstResponse)
    );
}

#[test]
fn the_schedule_lists_only_due_pending_targets() {
    let mut sla = TicketSla::default();
    sla.apply(&opened_event());
    assert!(sla.due(&default_now()).is_empty());
    assert_eq!(
        sla.due(&now_plus(HOUR)),
        [(pb::SlaTarget::FirstResponse, now_plus(HOUR))]
    );
    assert_eq!(sla.due(&now_plus(4 * HOUR)).len(), 2);
    sla.apply(&breached(
        pb::SlaTarget::FirstResponse,
        now_plus(HOUR),
        now_plus(HOUR),
    ));
    assert_eq!(
        sla.due(&now_plus(4 * HOUR)),
        [(pb::SlaTarget::Resolution, now_plus(4 * HOUR))]
    );
}

#[test]
fn ticket_events_round_trip_through_their_payload() {
    use crate::event::DomainEvent;
    let events = [
        opened_event(),
        replied(
            pb::TicketAuthorKind::Agent,
            pb::TicketReplyVisibility::Public,
            "agent:a",
        ),
        status_event(pb::TicketStatus::New, pb::TicketStatus::Open, "r"),
        breached(pb::SlaTarget::Resolution, at_seconds(5), at_seconds(6)),
    ];
    for e in events {
        let back = TicketEvent::decode(
            e.event_type(),
            e.schema_version(),
            &e.encode_payload(),
            &crate::Upcasters::new(),
        )
        .expect("decodes");
        assert_eq!(back, Some(e));
    }
    assert_eq!(
        TicketEvent::catalog(),
        [
            ("ticket.opened", 1),
            ("ticket.assigned", 1),
            ("ticket.replied", 1),
            ("ticket.status_changed", 1),
            ("ticket.sla_breached", 1),
        ]
    );
    assert_eq!(SlaPolicyEvent::catalog(), [("sla.policy_set", 1)]);
}

// ---- SetSlaPolicy ----

fn set(
    priority: pb::TicketPriority,
    fr: Option<Duration>,
    res: Option<Duration>,
) -> SlaPolicyCommand {
    SlaPolicyCommand::Set(SetSlaPolicy {
        priority,
        first_response: fr,
        resolution: res,
    })
}

fn policy_set(
    priority: pb::TicketPriority,
    fr: Option<Duration>,
    res: Option<Duration>,
) -> SlaPolicyEvent {
    SlaPolicyEvent::Set(pb::SlaPolicySet {
        policy_id: default_policy_id().to_string(),
        priority: priority as i32,
        first_response: fr.map(crate::time::duration_to_proto),
        resolution: res.map(crate::time::duration_to_proto),
    })
}

#[test]
fn setting_a_policy_records_the_targets_for_its_priority() {
    let urgent = pb::TicketPriority::Urgent;
    let state = given::<SlaPolicy>([])
        .when(set(urgent, Some(HOUR), Some(4 * HOUR)))
        .then([policy_set(urgent, Some(HOUR), Some(4 * HOUR))]);
    assert_eq!(
        state.targets_for(urgent),
        PolicyTargets {
            first_response: Some(HOUR),
            resolution: Some(4 * HOUR)
        }
    );
    assert!(state.targets_for(pb::TicketPriority::Low).is_empty());
}

#[test]
fn setting_the_same_targets_again_changes_nothing_and_clearing_removes_them() {
    let urgent = pb::TicketPriority::Urgent;
    let history = [policy_set(urgent, Some(HOUR), Some(4 * HOUR))];
    given::<SlaPolicy>(history.clone())
        .when(set(urgent, Some(HOUR), Some(4 * HOUR)))
        .then([]);
    let state = given::<SlaPolicy>(history)
        .when(set(urgent, None, None))
        .then([policy_set(urgent, None, None)]);
    assert!(state.targets.is_empty());
    given::<SlaPolicy>([])
        .when(set(urgent, None, None))
        .then([]);
    given::<SlaPolicy>([])
        .when(set(urgent, None, Some(HOUR)))
        .then([policy_set(urgent, None, Some(HOUR))]);
}

#[test]
fn a_policy_needs_a_priority_and_sane_durations() {
    given::<SlaPolicy>([])
        .when(set(pb::TicketPriority::Unspecified, Some(HOUR), None))
        .then_invalid("priority");
    given::<SlaPolicy>([])
        .when(set(pb::TicketPriority::Low, Some(Duration::ZERO), None))
        .then_invalid("first_response");
    given::<SlaPolicy>([])
        .when(set(
            pb::TicketPriority::Low,
            None,
            Some(MAX_TARGET + Duration::from_secs(1)),
        ))
        .then_invalid("resolution");
    given::<SlaPolicy>([])
        .when(set(pb::TicketPriority::Low, None, Some(MAX_TARGET)))
        .events();
}

#[test]
fn the_policy_has_one_fixed_id_and_stream() {
    assert_eq!(
        default_policy_id(),
        Uuid::new_v5(&SLA_POLICY_NAMESPACE, b"default")
    );
    assert_eq!(
        policy_stream(),
        format!("slapolicy-{}", default_policy_id())
    );
    assert_eq!(stream(ticket_id()), format!("ticket-{}", ticket_id()));
}

#[test]
fn the_support_events_match_the_proto_catalog_and_mark_personal_data() {
    use crate::event::DomainEvent as _;
    let proto: std::collections::HashMap<String, kizuna_proto::catalog::EventSchema> =
        kizuna_proto::catalog::event_catalog()
            .into_iter()
            .map(|e| (e.event_type.clone(), e))
            .collect();
    let ours = [
        (TicketEvent::catalog(), "kizuna/v1/ticket_events.proto"),
        (SlaPolicyEvent::catalog(), "kizuna/v1/ticket_events.proto"),
        (
            crate::survey::SurveyEvent::catalog(),
            "kizuna/v1/survey_events.proto",
        ),
    ];
    let mut pii = Vec::new();
    for (catalog, file) in ours {
        for (event_type, version) in catalog {
            let schema = proto
                .get(event_type)
                .unwrap_or_else(|| panic!("{event_type} has no event_type option"));
            assert_eq!(schema.schema_version, version, "{event_type}");
            assert_eq!(schema.file, file, "{event_type}");
            // Every payload carries the id of its aggregate, so it reads alone.
            assert!(
                schema
                    .fields
                    .first()
                    .is_some_and(|f| f.name.ends_with("_id")),
                "{event_type}"
            );
            pii.extend(
                schema
                    .fields
                    .iter()
                    .filter(|f| f.pii)
                    .map(|f| format!("{event_type}.{}", f.name)),
            );
        }
    }
    pii.sort();
    assert_eq!(
        pii,
        [
            "survey.responded.comment",
            "ticket.opened.description",
            "ticket.opened.subject",
            "ticket.replied.body",
            "ticket.status_changed.reason",
        ]
    );
}
