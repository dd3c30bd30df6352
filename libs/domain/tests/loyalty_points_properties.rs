//! Whatever sequence of earning, refunds, redemptions, adjustments and expiry
//! runs against a loyalty account, the points add up: the balance is the sum
//! of the lots' remaining points, never negative, and equals what the events
//! say went in minus what they say went out.

use kizuna_domain::loyalty::{
    AdjustPoints, DAY, EarningRate, EarningRuleSet, Enrol, Loyalty, LoyaltyCommand, LoyaltyEvent,
    LoyaltyState, RecordPurchase, RedeemPoints, RefundPurchase, TierRule,
};
use kizuna_domain::testing::default_now;
use kizuna_domain::time::add;
use kizuna_domain::{Context, Decider, DomainError, IdSource, SequentialIds};
use proptest::prelude::*;
use std::collections::BTreeSet;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Earn(i64),
    Refund(usize, i64),
    Redeem(i64),
    Adjust(i64),
    Expire,
    Wait(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1_i64..200_000).prop_map(Op::Earn),
        (0_usize..8, 1_i64..100_000).prop_map(|(i, a)| Op::Refund(i, a)),
        (1_i64..2_000).prop_map(Op::Redeem),
        (-2_000_i64..2_000)
            .prop_filter("not zero", |p| *p != 0)
            .prop_map(Op::Adjust),
        Just(Op::Expire),
        (0_u32..200).prop_map(Op::Wait),
    ]
}

fn rules() -> EarningRuleSet {
    EarningRuleSet {
        version: 1,
        rates: vec![EarningRate {
            currency: "USD".into(),
            unit_minor: 100,
            points_per_unit: 1,
        }],
        monthly_cap: Some(3_000),
        lot_lifetime: DAY * 120,
        tiers: vec![TierRule {
            name: "silver".into(),
            min_spend_minor: 300_000,
            min_purchase_count: 0,
            multiplier_bp: 15_000,
        }],
        tier_currency: "USD".into(),
        tier_window: DAY * 90,
        tier_grace: DAY * 10,
        ..EarningRuleSet::default()
    }
}

/// The net points the events themselves move.
fn points_moved(e: &LoyaltyEvent) -> i64 {
    let taken = |t: &[kizuna_domain::pb::LoyaltyLotPoints]| t.iter().map(|t| t.points).sum::<i64>();
    match e {
        LoyaltyEvent::PointsEarned(e) => e.points,
        LoyaltyEvent::PointsAdjusted(e) if e.points > 0 => e.points,
        LoyaltyEvent::PointsAdjusted(e) => -taken(&e.taken),
        LoyaltyEvent::PointsRedeemed(e) => -taken(&e.taken),
        LoyaltyEvent::PointsClawedBack(e) => -taken(&e.taken),
        LoyaltyEvent::PointsExpired(e) => -e.points,
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn points_always_add_up(ops in proptest::collection::vec(op(), 1..60)) {
        let mut ids = SequentialIds::default();
        let mut now = default_now();
        let mut state = LoyaltyState::default();
        let mut orders: Vec<String> = Vec::new();
        let mut moved: i64 = 0;
        let mut expired_lots = BTreeSet::new();
        let enrol = LoyaltyCommand::Enrol(Enrol {
            customer_id: Uuid::from_u128(42),
            programme_id: "default".into(),
        });
        let mut commands = vec![(now, enrol)];
        for op in &ops {
            let command = match op {
                Op::Earn(amount) => {
                    let order = format!("o-{}", ids.next_id());
                    orders.push(order.clone());
                    LoyaltyCommand::RecordPurchase(RecordPurchase {
                        order_id: order,
                        amount_minor: *amount,
                        currency: "USD".into(),
                        line_items: Vec::new(),
                        channel: "web".into(),
                        store_id: String::new(),
                        campaign_id: None,
                        rules: rules(),
                    })
                }
                Op::Refund(i, amount) => LoyaltyCommand::Refund(RefundPurchase {
                    order_id: orders.get(*i).cloned().unwrap_or_else(|| "o-none".into()),
                    amount_minor: *amount,
                }),
                Op::Redeem(points) => LoyaltyCommand::Redeem(RedeemPoints {
                    points: *points,
                    reason: "voucher".into(),
                }),
                Op::Adjust(points) => LoyaltyCommand::Adjust(AdjustPoints {
                    points: *points,
                    reason: "goodwill".into(),
                    actor: "agent".into(),
                    rules: rules(),
                }),
                Op::Expire => LoyaltyCommand::ExpirePoints { now },
                Op::Wait(days) => {
                    now = add(&now, DAY * *days);
                    LoyaltyCommand::ReviewTier { now, rules: rules() }
                }
            };
            commands.push((now, command));
        }
        for (now, command) in &commands {
            let mut ctx = Context { now: *now, ids: &mut ids };
            match Loyalty::decide(&state, command, &mut ctx) {
                Ok(events) => {
                    for e in &events {
                        if let LoyaltyEvent::PointsExpired(x) = e {
                            prop_assert!(expired_lots.insert(x.lot_id.clone()), "lot expired twice");
                        }
                        if let LoyaltyEvent::PointsRedeemed(r) = e {
                            prop_assert_eq!(r.taken.iter().map(|t| t.points).sum::<i64>(), r.points);
                        }
                        moved += points_moved(e);
                        state = Loyalty::evolve(state, e);
                    }
                }
                Err(DomainError::Rejected { reason, .. }) => {
                    prop_assert!(
                        ["INSUFFICIENT_POINTS", "REFUND_EXCEEDS_PURCHASE", "ORDER_NOT_FOUND"]
                            .contains(&reason),
                        "unexpected rejection {}", reason
                    );
                }
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
            let lots: i64 = state.lots.iter().map(|l| l.remaining).sum();
            prop_assert!(state.lots.iter().all(|l| l.remaining >= 0), "a lot went negative");
            prop_assert_eq!(state.balance(), lots);
            prop_assert!(lots >= 0);
            prop_assert_eq!(lots, moved);
            prop_assert_eq!(
                lots,
                state.total_earned + state.total_adjusted
                    - state.total_redeemed
                    - state.total_expired
                    - state.total_clawed_back
            );
        }
    }
}
