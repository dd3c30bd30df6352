//! Any sequence of status changes keeps to the table: every accepted change
//! is one allowed transition from the current status, every refused one is
//! refused for the right reason, and the folded state ends at the last
//! accepted status.

use kizuna_domain::decider::{Context, Decider, SequentialIds};
use kizuna_domain::lead::{Lead, LeadCommand, LeadEvent, LeadState};
use kizuna_domain::{DomainError, pb};
use proptest::prelude::*;
use uuid::Uuid;

use pb::LeadStatus as S;

/// The table as the brief states it, independent of `transition_allowed`.
fn allowed(from: S, to: S) -> bool {
    let targets: &[S] = match from {
        S::New => &[S::Working, S::Disqualified],
        S::Working => &[S::Nurturing, S::Qualified, S::Disqualified],
        S::Nurturing => &[S::Working, S::Qualified, S::Disqualified],
        S::Qualified => &[S::Working, S::Disqualified],
        S::Disqualified => &[S::Working],
        S::Unspecified | S::Converted | S::Merged => &[],
    };
    targets.contains(&to)
}

fn any_status() -> impl Strategy<Value = S> {
    prop_oneof![
        Just(S::Unspecified),
        Just(S::New),
        Just(S::Working),
        Just(S::Nurturing),
        Just(S::Qualified),
        Just(S::Disqualified),
        Just(S::Converted),
        Just(S::Merged),
    ]
}

fn captured(lead_id: Uuid) -> LeadEvent {
    LeadEvent::Captured(pb::LeadCaptured {
        lead_id: lead_id.to_string(),
        channel: pb::LeadChannel::Web.into(),
        contact: Some(pb::ContactData {
            email: "a@example.jp".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn status_changes_follow_the_table(
        steps in prop::collection::vec((any_status(), any::<bool>()), 0..40),
    ) {
        let lead_id = Uuid::from_u128(7);
        let mut history = vec![captured(lead_id)];
        let mut state: LeadState = Lead::fold(&history);
        let mut last_accepted = S::New;
        for (to, with_reason) in steps {
            let command = LeadCommand::ChangeStatus {
                lead_id,
                status: to,
                reason: if with_reason { "because".into() } else { String::new() },
            };
            let mut ids = SequentialIds::default();
            let mut ctx = Context { now: kizuna_domain::testing::default_now(), ids: &mut ids };
            let from = state.status;
            match Lead::decide(&state, &command, &mut ctx) {
                Ok(events) => {
                    prop_assert!(allowed(from, to), "{from:?} -> {to:?} was accepted");
                    prop_assert!(to != S::Disqualified || with_reason);
                    prop_assert_eq!(events.len(), 1);
                    let LeadEvent::StatusChanged(e) = &events[0] else {
                        return Err(TestCaseError::fail(format!("{events:?}")));
                    };
                    prop_assert_eq!((e.from_status, e.to_status), (i32::from(from), i32::from(to)));
                    for e in &events {
                        state = Lead::evolve(state, e);
                    }
                    history.extend(events);
                    last_accepted = to;
                }
                Err(DomainError::InvalidArgument { field, .. }) => {
                    let unrequestable = matches!(to, S::Unspecified | S::Converted | S::Merged);
                    let missing_reason = to == S::Disqualified && !with_reason;
                    prop_assert!(unrequestable || missing_reason, "{field} for {to:?}");
                    prop_assert_eq!(field, if unrequestable { "status" } else { "reason" });
                }
                Err(DomainError::Rejected { reason, .. }) => {
                    prop_assert_eq!(reason, "INVALID_STATUS_TRANSITION");
                    prop_assert!(!allowed(from, to), "{from:?} -> {to:?} was refused");
                }
                Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
            }
            prop_assert_eq!(state.status, last_accepted);
        }
        // The state the decisions were made on is the fold of what was recorded.
        let folded = Lead::fold(&history);
        prop_assert_eq!(folded.status, last_accepted);
        prop_assert_eq!(folded, state);
    }
}
