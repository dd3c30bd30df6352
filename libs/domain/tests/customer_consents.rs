//! Property: for any sequence of grants and revocations, the consent set
//! folded from the customer's events is the set the commands describe, and
//! an event is recorded exactly when the set changes.

use std::collections::BTreeSet;

use kizuna_domain::customer::{Customer, CustomerCommand, CustomerEvent};
use kizuna_domain::{Context, Decider, SequentialIds, pb, testing};
use proptest::prelude::*;
use uuid::Uuid;

type Key = (pb::ContactChannel, pb::ConsentPurpose);

fn channel() -> impl Strategy<Value = pb::ContactChannel> {
    prop_oneof![
        Just(pb::ContactChannel::Email),
        Just(pb::ContactChannel::Sms),
        Just(pb::ContactChannel::Phone),
        Just(pb::ContactChannel::Postal),
        Just(pb::ContactChannel::Push),
    ]
}

fn purpose() -> impl Strategy<Value = pb::ConsentPurpose> {
    prop_oneof![
        Just(pb::ConsentPurpose::Marketing),
        Just(pb::ConsentPurpose::Service),
        Just(pb::ConsentPurpose::Analytics),
    ]
}

/// `true` grants, `false` revokes.
fn ops() -> impl Strategy<Value = Vec<(bool, pb::ContactChannel, pb::ConsentPurpose)>> {
    prop::collection::vec((any::<bool>(), channel(), purpose()), 0..80)
}

fn registered(id: Uuid, initial: &[Key]) -> CustomerEvent {
    pb::CustomerRegistered {
        customer_id: id.to_string(),
        contact: Some(pb::ContactData {
            email: "taro@example.jp".into(),
            ..Default::default()
        }),
        consents: initial
            .iter()
            .map(|(c, p)| pb::ConsentGrant {
                channel: *c as i32,
                purpose: *p as i32,
            })
            .collect(),
        ..Default::default()
    }
    .into()
}

proptest! {
    #[test]
    fn folded_consents_equal_the_set_the_commands_describe(
        initial in prop::collection::vec((channel(), purpose()), 0..4),
        ops in ops(),
    ) {
        let id = Uuid::from_u128(42);
        let mut history = vec![registered(id, &initial)];
        let mut expected: BTreeSet<Key> = initial.iter().copied().collect();
        let mut state = Customer::fold(&history);

        for (grant, channel, purpose) in ops {
            let command = if grant {
                CustomerCommand::GrantConsent {
                    customer_id: id,
                    channel,
                    purpose,
                    source: String::new(),
                    evidence: String::new(),
                }
            } else {
                CustomerCommand::RevokeConsent {
                    customer_id: id,
                    channel,
                    purpose,
                    source: String::new(),
                    evidence: String::new(),
                }
            };
            let mut ids = SequentialIds::default();
            let mut ctx = Context { now: testing::default_now(), ids: &mut ids };
            let events = Customer::decide(&state, &command, &mut ctx).expect("accepted");

            let changed = if grant {
                expected.insert((channel, purpose))
            } else {
                expected.remove(&(channel, purpose))
            };
            // One event exactly when the set changes; none for a no-op.
            prop_assert_eq!(events.len(), usize::from(changed));
            for e in &events {
                state = Customer::evolve(state, e);
            }
            history.extend(events);
            prop_assert_eq!(&state.consents, &expected);
        }
        // Folding the whole history from scratch agrees with the running state.
        prop_assert_eq!(Customer::fold(&history).consents, expected);
    }
}
