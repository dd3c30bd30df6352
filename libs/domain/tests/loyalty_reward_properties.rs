//! Whatever sequence of claims, restocks and retirements runs against a
//! reward, its stock never goes negative, no customer claims more than the
//! limit, and every item is accounted for: stock + claims = initial stock +
//! restocks. Every claim issues a distinct coupon code.

use kizuna_domain::reward::{
    ClaimReward, DefineReward, Reward, RewardCommand, RewardEvent, RewardState,
};
use kizuna_domain::testing::default_now;
use kizuna_domain::{Context, Decider, DerivedIds};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Claim(u8),
    Restock(i64),
    Retire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0_u8..4).prop_map(Op::Claim),
        2 => (1_i64..4).prop_map(Op::Restock),
        1 => Just(Op::Retire),
    ]
}

proptest! {
    #[test]
    fn stock_and_limits_hold(
        stock in 0_i64..5,
        limit in 1_i64..3,
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let reward_id = Uuid::from_u128(0x5eed);
        let mut state = RewardState::default();
        let mut restocked = 0;
        let mut codes = BTreeSet::new();
        let run = |state: &mut RewardState, n: u128, cmd: RewardCommand| {
            let mut ids = DerivedIds::new(Uuid::from_u128(n));
            let mut ctx = Context { now: default_now(), ids: &mut ids };
            let result = Reward::decide(state, &cmd, &mut ctx);
            if let Ok(events) = &result {
                for e in events {
                    *state = Reward::evolve(std::mem::take(state), e);
                }
            }
            result
        };
        run(&mut state, 0, RewardCommand::Define(DefineReward {
            reward_id,
            name: "Mug".into(),
            points_cost: 10,
            stock,
            per_customer_limit: limit,
            coupon_validity: Duration::from_secs(86_400),
        })).unwrap();
        for (i, op) in ops.into_iter().enumerate() {
            let n = u128::try_from(i).unwrap() + 1;
            match op {
                Op::Claim(c) => {
                    let events = run(&mut state, n, RewardCommand::Claim(ClaimReward {
                        customer_id: Uuid::from_u128(u128::from(c) + 1),
                    }));
                    if let Ok([RewardEvent::Claimed(claimed)]) = events.as_deref() {
                        prop_assert!(codes.insert(claimed.coupon_code.clone()));
                    }
                }
                Op::Restock(q) => {
                    if run(&mut state, n, RewardCommand::Restock { quantity: q }).is_ok() {
                        restocked += q;
                    }
                }
                Op::Retire => {
                    run(&mut state, n, RewardCommand::Retire { reason: String::new() }).unwrap();
                }
            }
            prop_assert!(state.stock >= 0);
            prop_assert_eq!(state.stock + state.claimed, stock + restocked);
            prop_assert!(state.claims_by_customer.values().all(|c| *c <= limit));
            prop_assert_eq!(codes.len() as i64, state.claimed);
        }
    }
}
