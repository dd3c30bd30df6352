//! Given / when / then for the loyalty account and the earning rules.

use super::*;
use crate::testing::{default_now, given};
use crate::time::at_seconds;
use std::time::Duration;

/// A change that makes a valid command invalid.
type Change<T> = Box<dyn Fn(&mut T)>;

fn customer() -> Uuid {
    Uuid::from_u128(0xc0ffee)
}

fn id(n: u128) -> String {
    Uuid::from_u128(n).to_string()
}

fn days(n: u64) -> Duration {
    DAY * u32::try_from(n).expect("small")
}

fn later(d: Duration) -> Timestamp {
    add(&default_now(), d)
}

fn rules() -> EarningRuleSet {
    EarningRuleSet {
        version: 3,
        rates: vec![EarningRate {
            currency: "USD".into(),
            unit_minor: 100,
            points_per_unit: 1,
        }],
        category_multipliers: vec![("electronics".into(), 20_000)],
        campaign_multipliers: vec![("spring".into(), 15_000)],
        monthly_cap: None,
        lot_lifetime: DEFAULT_LOT_LIFETIME,
        tiers: vec![
            TierRule {
                name: "silver".into(),
                min_spend_minor: 100_000,
                min_purchase_count: 5,
                multiplier_bp: 12_500,
            },
            TierRule {
                name: "gold".into(),
                min_spend_minor: 500_000,
                min_purchase_count: 0,
                multiplier_bp: 15_000,
            },
        ],
        tier_currency: "USD".into(),
        tier_window: days(365),
        tier_grace: days(30),
    }
}

fn enrolled() -> LoyaltyEvent {
    LoyaltyEvent::Enrolled(pb::LoyaltyEnrolled {
        customer_id: customer().to_string(),
        programme_id: "default".into(),
        enrolled_at: Some(default_now()),
    })
}

fn purchase(order: &str, amount: i64) -> RecordPurchase {
    RecordPurchase {
        order_id: order.into(),
        amount_minor: amount,
        currency: "USD".into(),
        line_items: Vec::new(),
        channel: "web".into(),
        store_id: String::new(),
        campaign_id: None,
        rules: rules(),
    }
}

fn recorded(order: &str, amount: i64, at: Timestamp) -> LoyaltyEvent {
    LoyaltyEvent::PurchaseRecorded(pb::LoyaltyPurchaseRecorded {
        customer_id: customer().to_string(),
        order_id: order.into(),
        amount_minor: amount,
        currency: "USD".into(),
        line_items: Vec::new(),
        channel: "web".into(),
        store_id: String::new(),
        campaign_id: String::new(),
        purchased_at: Some(at),
    })
}

fn earned(order: &str, lot: u128, points: i64, at: Timestamp) -> LoyaltyEvent {
    LoyaltyEvent::PointsEarned(pb::LoyaltyPointsEarned {
        customer_id: customer().to_string(),
        order_id: order.into(),
        lot_id: id(lot),
        points,
        uncapped_points: points,
        rules_version: 3,
        tier_multiplier_bp: ONE_X_BP,
        campaign_multiplier_bp: ONE_X_BP,
        earned_at: Some(at),
        expires_at: Some(add(&at, DEFAULT_LOT_LIFETIME)),
    })
}

fn adjusted_lot(lot: u128, points: i64, at: Timestamp, expires_at: Timestamp) -> LoyaltyEvent {
    LoyaltyEvent::PointsAdjusted(pb::LoyaltyPointsAdjusted {
        customer_id: customer().to_string(),
        points,
        reason: "goodwill".into(),
        actor: "agent-7".into(),
        lot_id: id(lot),
        expires_at: Some(expires_at),
        taken: Vec::new(),
        adjusted_at: Some(at),
    })
}

fn lot_points(lot: u128, points: i64) -> pb::LoyaltyLotPoints {
    pb::LoyaltyLotPoints {
        lot_id: id(lot),
        points,
    }
}

fn earned_points(events: &[LoyaltyEvent]) -> &pb::LoyaltyPointsEarned {
    events
        .iter()
        .find_map(|e| match e {
            LoyaltyEvent::PointsEarned(p) => Some(p),
            _ => None,
        })
        .expect("points_earned")
}

fn redeem(points: i64) -> LoyaltyCommand {
    LoyaltyCommand::Redeem(RedeemPoints {
        points,
        reason: "voucher".into(),
    })
}

fn adjust(points: i64) -> LoyaltyCommand {
    LoyaltyCommand::Adjust(AdjustPoints {
        points,
        reason: "goodwill".into(),
        actor: "agent-7".into(),
        rules: rules(),
    })
}

// ---- enrol -----------------------------------------------------------------

#[test]
fn enrolling_records_the_programme_once() {
    let cmd = LoyaltyCommand::Enrol(Enrol {
        customer_id: customer(),
        programme_id: " default ".into(),
    });
    given::<Loyalty>([]).when(cmd.clone()).then([enrolled()]);
    given::<Loyalty>([enrolled()]).when(cmd).then([]);
}

#[test]
fn enrolling_in_another_programme_is_rejected() {
    given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::Enrol(Enrol {
            customer_id: customer(),
            programme_id: "vip".into(),
        }))
        .then_rejected(ALREADY_ENROLLED);
}

#[test]
fn enrolling_needs_a_programme() {
    given::<Loyalty>([])
        .when(LoyaltyCommand::Enrol(Enrol {
            customer_id: customer(),
            programme_id: "  ".into(),
        }))
        .then_invalid("programme_id");
}

#[test]
fn every_other_command_needs_an_enrolled_account() {
    for cmd in [
        LoyaltyCommand::RecordPurchase(purchase("o-1", 5000)),
        LoyaltyCommand::Refund(RefundPurchase {
            order_id: "o-1".into(),
            amount_minor: 1,
        }),
        redeem(1),
        adjust(1),
        LoyaltyCommand::ExpirePoints { now: default_now() },
        LoyaltyCommand::ReviewTier {
            now: default_now(),
            rules: rules(),
        },
    ] {
        given::<Loyalty>([])
            .when(cmd)
            .then_not_found("loyalty account");
    }
}

// ---- purchases and earning -----------------------------------------------

#[test]
fn a_purchase_is_recorded_with_its_points_in_one_decision() {
    given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(purchase("o-1", 5000)))
        .then([
            recorded("o-1", 5000, default_now()),
            earned("o-1", 1, 50, default_now()),
        ]);
}

#[test]
fn the_rule_set_version_and_lot_expiry_come_from_the_rules() {
    let mut cmd = purchase("o-1", 5000);
    cmd.rules.version = 9;
    cmd.rules.lot_lifetime = days(90);
    let events = given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(cmd))
        .events();
    let e = earned_points(&events);
    assert_eq!(e.rules_version, 9);
    assert_eq!(e.expires_at, Some(later(days(90))));
}

#[test]
fn category_multipliers_weigh_each_line_share_of_the_amount_paid() {
    let mut cmd = purchase("o-1", 5000);
    cmd.line_items = vec![
        LineItem {
            sku: "tv".into(),
            category: "electronics".into(),
            quantity: 1,
            unit_price_minor: 3000,
        },
        LineItem {
            sku: "book".into(),
            category: "books".into(),
            quantity: 2,
            unit_price_minor: 1000,
        },
    ];
    // 30 points at 2x + 20 points at 1x.
    let events = given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(cmd))
        .events();
    assert_eq!(earned_points(&events).points, 80);
}

#[test]
fn a_known_campaign_multiplies_and_an_unknown_one_does_not() {
    let mut cmd = purchase("o-1", 5000);
    cmd.campaign_id = Some("spring".into());
    let events = given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(cmd.clone()))
        .events();
    assert_eq!(earned_points(&events).points, 75);
    assert_eq!(earned_points(&events).campaign_multiplier_bp, 15_000);
    cmd.campaign_id = Some("autumn".into());
    let events = given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(cmd))
        .events();
    assert_eq!(earned_points(&events).points, 50);
}

#[test]
fn the_tier_held_before_the_purchase_multiplies_its_points() {
    let silver = LoyaltyEvent::TierChanged(pb::LoyaltyTierChanged {
        customer_id: customer().to_string(),
        from_tier: String::new(),
        to_tier: "silver".into(),
        reason: "threshold crossed".into(),
        changed_at: Some(default_now()),
    });
    let events = given::<Loyalty>([enrolled(), silver])
        .when(LoyaltyCommand::RecordPurchase(purchase("o-1", 5000)))
        .events();
    assert_eq!(earned_points(&events).points, 62);
    assert_eq!(earned_points(&events).tier_multiplier_bp, 12_500);
}

#[test]
fn a_currency_without_a_rate_earns_nothing_but_is_recorded() {
    let mut cmd = purchase("o-1", 5000);
    cmd.currency = "JPY".into();
    let events = given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(cmd))
        .events();
    assert!(matches!(events[0], LoyaltyEvent::PurchaseRecorded(_)));
    assert_eq!(earned_points(&events).points, 0);
    let state = Loyalty::fold(&[enrolled()].into_iter().chain(events).collect::<Vec<_>>());
    assert!(state.lots.is_empty());
}

#[test]
fn the_monthly_cap_limits_points_within_a_utc_month() {
    let mut cmd = purchase("o-2", 5000);
    cmd.rules.monthly_cap = Some(100);
    let history = [
        enrolled(),
        recorded("o-1", 8000, default_now()),
        earned("o-1", 1, 80, default_now()),
    ];
    let events = given::<Loyalty>(history.clone())
        .at(later(days(30)))
        .when(LoyaltyCommand::RecordPurchase(cmd.clone()))
        .events();
    assert_eq!(earned_points(&events).points, 20);
    assert_eq!(earned_points(&events).uncapped_points, 50);
    // 2026-02-01: a new month, a new allowance.
    let events = given::<Loyalty>(history)
        .at(later(days(31)))
        .when(LoyaltyCommand::RecordPurchase(cmd))
        .events();
    assert_eq!(earned_points(&events).points, 50);
}

#[test]
fn the_same_order_again_is_a_no_op_and_a_different_one_is_rejected() {
    let history = [
        enrolled(),
        recorded("o-1", 5000, default_now()),
        earned("o-1", 1, 50, default_now()),
    ];
    given::<Loyalty>(history.clone())
        .at(later(days(1)))
        .when(LoyaltyCommand::RecordPurchase(purchase("o-1", 5000)))
        .then([]);
    given::<Loyalty>(history)
        .when(LoyaltyCommand::RecordPurchase(purchase("o-1", 5001)))
        .then_rejected(ORDER_ALREADY_RECORDED);
}

#[test]
fn malformed_purchases_name_their_field() {
    let cases: Vec<(&str, Change<RecordPurchase>)> = vec![
        ("order_id", Box::new(|c| c.order_id = " ".into())),
        ("amount_minor", Box::new(|c| c.amount_minor = 0)),
        ("currency", Box::new(|c| c.currency = "usd".into())),
        ("channel", Box::new(|c| c.channel = String::new())),
        (
            "line_items[0].quantity",
            Box::new(|c| {
                c.line_items = vec![LineItem {
                    sku: "a".into(),
                    category: "x".into(),
                    quantity: 0,
                    unit_price_minor: 1,
                }]
            }),
        ),
        (
            "line_items[0].sku",
            Box::new(|c| {
                c.line_items = vec![LineItem {
                    sku: "".into(),
                    category: "x".into(),
                    quantity: 1,
                    unit_price_minor: 1,
                }]
            }),
        ),
        (
            "line_items[0].unit_price_minor",
            Box::new(|c| {
                c.line_items = vec![LineItem {
                    sku: "a".into(),
                    category: "x".into(),
                    quantity: 1,
                    unit_price_minor: -1,
                }]
            }),
        ),
    ];
    for (field, change) in cases {
        let mut cmd = purchase("o-1", 5000);
        change(&mut cmd);
        given::<Loyalty>([enrolled()])
            .when(LoyaltyCommand::RecordPurchase(cmd))
            .then_invalid(field);
    }
}

#[test]
fn huge_amounts_are_refused_rather_than_overflowing() {
    let mut cmd = purchase("o-1", i64::MAX);
    cmd.rules.rates[0].points_per_unit = MAX_POINTS_PER_UNIT;
    cmd.rules.rates[0].unit_minor = 1;
    given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(cmd))
        .then_invalid("amount_minor");
}

#[test]
fn points_and_amounts_beyond_the_bounds_are_refused_so_totals_never_overflow() {
    for points in [MAX_POINTS + 1, i64::MAX, -MAX_POINTS - 1, i64::MIN] {
        given::<Loyalty>([enrolled()])
            .when(adjust(points))
            .then_invalid("points");
    }
    given::<Loyalty>([enrolled()])
        .when(redeem(MAX_POINTS + 1))
        .then_invalid("points");
    given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(purchase(
            "o-1",
            MAX_AMOUNT_MINOR + 1,
        )))
        .then_invalid("amount_minor");
    // 10^15 minor units at 1,000 points per unit earn more than a purchase may.
    let mut big = purchase("o-2", MAX_AMOUNT_MINOR);
    big.rules.rates[0].points_per_unit = 1_000;
    big.rules.rates[0].unit_minor = 1;
    given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(big))
        .then_invalid("amount_minor");
    // The largest adjustment, twice, still folds.
    let state = [
        adjusted_lot(1, MAX_POINTS, later(Duration::ZERO), later(days(30))),
        adjusted_lot(2, MAX_POINTS, later(Duration::ZERO), later(days(30))),
    ]
    .iter()
    .fold(
        Loyalty::evolve(LoyaltyState::default(), &enrolled()),
        Loyalty::evolve,
    );
    assert_eq!(state.balance(), 2 * MAX_POINTS);
}

// ---- tiers -----------------------------------------------------------------

#[test]
fn a_purchase_crossing_a_threshold_raises_the_tier_at_once() {
    let events = given::<Loyalty>([
        enrolled(),
        recorded("o-1", 60_000, default_now()),
        earned("o-1", 1, 600, default_now()),
    ])
    .at(later(days(10)))
    .when(LoyaltyCommand::RecordPurchase(purchase("o-2", 40_000)))
    .events();
    assert_eq!(events.len(), 3);
    let LoyaltyEvent::TierChanged(t) = &events[2] else {
        panic!("expected tier_changed, got {events:?}");
    };
    assert_eq!((t.from_tier.as_str(), t.to_tier.as_str()), ("", "silver"));
    assert!(t.reason.starts_with("threshold crossed: "), "{}", t.reason);
    // The points of the crossing purchase use the tier held before it.
    assert_eq!(earned_points(&events).points, 400);
}

#[test]
fn a_purchase_below_the_next_threshold_changes_no_tier() {
    let events = given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(purchase("o-1", 99_999)))
        .events();
    assert_eq!(events.len(), 2);
}

fn silver_since_start() -> Vec<LoyaltyEvent> {
    vec![
        enrolled(),
        recorded("o-1", 100_000, default_now()),
        earned("o-1", 1, 1000, default_now()),
        LoyaltyEvent::TierChanged(pb::LoyaltyTierChanged {
            customer_id: customer().to_string(),
            from_tier: String::new(),
            to_tier: "silver".into(),
            reason: "threshold crossed".into(),
            changed_at: Some(default_now()),
        }),
    ]
}

fn review(at: Timestamp) -> LoyaltyCommand {
    LoyaltyCommand::ReviewTier {
        now: at,
        rules: rules(),
    }
}

#[test]
fn a_tier_is_kept_while_it_qualifies_and_through_the_grace_period() {
    // Still inside the window.
    given::<Loyalty>(silver_since_start())
        .when(review(later(days(364))))
        .then([]);
    // The purchase left the window at day 365; grace runs to day 395.
    given::<Loyalty>(silver_since_start())
        .when(review(later(days(394))))
        .then([]);
}

#[test]
fn a_tier_drops_once_the_grace_period_after_losing_it_has_passed() {
    let events = given::<Loyalty>(silver_since_start())
        .when(review(later(days(395))))
        .events();
    let [LoyaltyEvent::TierChanged(t)] = events.as_slice() else {
        panic!("expected one tier_changed, got {events:?}");
    };
    assert_eq!((t.from_tier.as_str(), t.to_tier.as_str()), ("silver", ""));
    assert!(t.reason.starts_with("no longer qualifies"), "{}", t.reason);
    assert_eq!(t.changed_at, Some(later(days(395))));
}

#[test]
fn a_purchase_that_keeps_the_tier_qualifying_postpones_the_downgrade() {
    let mut history = silver_since_start();
    history.push(recorded("o-2", 100_000, later(days(300))));
    given::<Loyalty>(history)
        .when(review(later(days(500))))
        .then([]);
}

#[test]
fn a_review_made_late_keeps_a_tier_requalified_by_a_purchase_since_the_period_end() {
    // Due to drop at day 395; the review of that period end runs at day 400,
    // after a purchase on day 396 that qualifies for silver again.
    let mut history = silver_since_start();
    history.push(recorded("o-2", 100_000, later(days(396))));
    given::<Loyalty>(history)
        .when(review(later(days(395))))
        .then([]);
}

#[test]
fn a_tier_the_rules_no_longer_list_goes_after_the_grace() {
    let mut without_silver = rules();
    without_silver.tiers.retain(|t| t.name != "silver");
    let review = |days_later| LoyaltyCommand::ReviewTier {
        now: later(days(days_later)),
        rules: without_silver.clone(),
    };
    given::<Loyalty>(silver_since_start())
        .when(review(29))
        .then([]);
    let events = given::<Loyalty>(silver_since_start())
        .when(review(30))
        .events();
    let [LoyaltyEvent::TierChanged(t)] = events.as_slice() else {
        panic!("expected one tier_changed, got {events:?}");
    };
    assert_eq!((t.from_tier.as_str(), t.to_tier.as_str()), ("silver", ""));
}

// ---- refunds ---------------------------------------------------------------

fn bought() -> Vec<LoyaltyEvent> {
    vec![
        enrolled(),
        recorded("o-1", 5000, default_now()),
        earned("o-1", 1, 50, default_now()),
    ]
}

fn refund_cmd(order: &str, amount: i64) -> LoyaltyCommand {
    LoyaltyCommand::Refund(RefundPurchase {
        order_id: order.into(),
        amount_minor: amount,
    })
}

fn refunded(order: &str, amount: i64) -> LoyaltyEvent {
    LoyaltyEvent::PurchaseRefunded(pb::LoyaltyPurchaseRefunded {
        customer_id: customer().to_string(),
        order_id: order.into(),
        amount_minor: amount,
        currency: "USD".into(),
        refunded_at: Some(default_now()),
    })
}

fn clawed(
    order: &str,
    points: i64,
    taken: Vec<pb::LoyaltyLotPoints>,
    shortfall: i64,
) -> LoyaltyEvent {
    LoyaltyEvent::PointsClawedBack(pb::LoyaltyPointsClawedBack {
        customer_id: customer().to_string(),
        order_id: order.into(),
        points,
        taken,
        shortfall,
        clawed_back_at: Some(default_now()),
    })
}

#[test]
fn a_partial_refund_claws_back_its_share_from_the_purchase_lot() {
    let state = given::<Loyalty>(bought())
        .when(refund_cmd("o-1", 2000))
        .then([
            refunded("o-1", 2000),
            clawed("o-1", 20, vec![lot_points(1, 20)], 0),
        ]);
    assert_eq!(state.balance(), 30);
}

#[test]
fn partial_refunds_adding_up_to_the_whole_take_back_every_point() {
    let mut history = bought();
    history.extend([
        refunded("o-1", 1666),
        clawed("o-1", 16, vec![lot_points(1, 16)], 0),
    ]);
    let state = given::<Loyalty>(history)
        .when(refund_cmd("o-1", 3334))
        .then([
            refunded("o-1", 3334),
            clawed("o-1", 34, vec![lot_points(1, 34)], 0),
        ]);
    assert_eq!(state.balance(), 0);
}

#[test]
fn spent_points_are_clawed_back_from_the_oldest_lots_and_the_rest_is_a_shortfall() {
    let mut history = bought();
    history.extend([
        adjusted_lot(5, 10, default_now(), later(days(30))),
        LoyaltyEvent::PointsRedeemed(pb::LoyaltyPointsRedeemed {
            customer_id: customer().to_string(),
            points: 45,
            reason: "voucher".into(),
            taken: vec![lot_points(5, 10), lot_points(1, 35)],
            redeemed_at: Some(default_now()),
            ..Default::default()
        }),
    ]);
    given::<Loyalty>(history.clone())
        .when(refund_cmd("o-1", 5000))
        .then([
            refunded("o-1", 5000),
            clawed("o-1", 50, vec![lot_points(1, 15)], 35),
        ]);
    history.push(adjusted_lot(6, 100, default_now(), later(days(60))));
    given::<Loyalty>(history)
        .when(refund_cmd("o-1", 5000))
        .then([
            refunded("o-1", 5000),
            clawed("o-1", 50, vec![lot_points(1, 15), lot_points(6, 35)], 0),
        ]);
}

#[test]
fn refunds_beyond_the_purchase_or_of_unknown_orders_are_rejected() {
    given::<Loyalty>(bought())
        .when(refund_cmd("o-1", 5001))
        .then_rejected(REFUND_EXCEEDS_PURCHASE);
    let mut history = bought();
    history.push(refunded("o-1", 4000));
    given::<Loyalty>(history)
        .when(refund_cmd("o-1", 1001))
        .then_rejected(REFUND_EXCEEDS_PURCHASE);
    given::<Loyalty>(bought())
        .when(refund_cmd("o-404", 1))
        .then_rejected(ORDER_NOT_FOUND);
    given::<Loyalty>(bought())
        .when(refund_cmd("o-1", 0))
        .then_invalid("amount_minor");
    given::<Loyalty>(bought())
        .when(refund_cmd("", 1))
        .then_invalid("order_id");
}

// ---- redeem and adjust -----------------------------------------------------

#[test]
fn redeeming_takes_the_oldest_expiring_lots_first() {
    let mut history = bought();
    // Opened later but expiring sooner than the purchase lot.
    history.push(adjusted_lot(5, 10, later(days(1)), later(days(30))));
    let state = given::<Loyalty>(history)
        .at(later(days(2)))
        .when(redeem(25))
        .then([LoyaltyEvent::PointsRedeemed(pb::LoyaltyPointsRedeemed {
            customer_id: customer().to_string(),
            points: 25,
            reason: "voucher".into(),
            taken: vec![lot_points(5, 10), lot_points(1, 15)],
            redeemed_at: Some(later(days(2))),
            ..Default::default()
        })]);
    assert_eq!(state.balance(), 35);
}

fn for_reward(points: i64) -> LoyaltyCommand {
    LoyaltyCommand::RedeemForReward(RedeemForReward {
        points,
        reward_id: Uuid::from_u128(0x5eed),
        coupon_code: "9F3A-1B2C-3D4E-5F60".into(),
        reason: "reward: Free coffee".into(),
    })
}

#[test]
fn redeeming_for_a_reward_names_the_reward_and_the_coupon() {
    let mut history = bought();
    history.push(adjusted_lot(5, 10, later(days(1)), later(days(30))));
    let state = given::<Loyalty>(history)
        .at(later(days(2)))
        .when(for_reward(25))
        .then([LoyaltyEvent::PointsRedeemed(pb::LoyaltyPointsRedeemed {
            customer_id: customer().to_string(),
            points: 25,
            reason: "reward: Free coffee".into(),
            taken: vec![lot_points(5, 10), lot_points(1, 15)],
            redeemed_at: Some(later(days(2))),
            reward_id: Uuid::from_u128(0x5eed).to_string(),
            coupon_code: "9F3A-1B2C-3D4E-5F60".into(),
        })]);
    assert_eq!((state.balance(), state.total_redeemed), (35, 25));
}

#[test]
fn redeeming_for_a_reward_needs_points_and_an_account() {
    given::<Loyalty>(bought())
        .when(for_reward(51))
        .then_rejected(INSUFFICIENT_POINTS);
    given::<Loyalty>(bought())
        .when(for_reward(0))
        .then_invalid("points");
    given::<Loyalty>([])
        .when(for_reward(1))
        .then_not_found("loyalty account");
}

#[test]
fn redeeming_more_than_the_unexpired_balance_is_rejected() {
    given::<Loyalty>(bought())
        .when(redeem(51))
        .then_rejected(INSUFFICIENT_POINTS);
    // Past the lot's expiry its points cannot be spent, processed or not.
    given::<Loyalty>(bought())
        .at(later(days(365)))
        .when(redeem(1))
        .then_rejected(INSUFFICIENT_POINTS);
    given::<Loyalty>(bought())
        .when(redeem(0))
        .then_invalid("points");
    given::<Loyalty>(bought())
        .when(LoyaltyCommand::Redeem(RedeemPoints {
            points: 1,
            reason: " ".into(),
        }))
        .then_invalid("reason");
}

#[test]
fn a_positive_adjustment_opens_a_lot() {
    let state = given::<Loyalty>([enrolled()])
        .when(adjust(30))
        .then([adjusted_lot(
            1,
            30,
            default_now(),
            later(DEFAULT_LOT_LIFETIME),
        )]);
    assert_eq!(state.balance(), 30);
}

#[test]
fn a_negative_adjustment_spends_oldest_first_and_never_below_zero() {
    given::<Loyalty>(bought())
        .when(adjust(-20))
        .then([LoyaltyEvent::PointsAdjusted(pb::LoyaltyPointsAdjusted {
            customer_id: customer().to_string(),
            points: -20,
            reason: "goodwill".into(),
            actor: "agent-7".into(),
            lot_id: String::new(),
            expires_at: None,
            taken: vec![lot_points(1, 20)],
            adjusted_at: Some(default_now()),
        })]);
    given::<Loyalty>(bought())
        .when(adjust(-51))
        .then_rejected(INSUFFICIENT_POINTS);
}

#[test]
fn adjustments_need_points_a_reason_and_an_actor() {
    given::<Loyalty>(bought())
        .when(adjust(0))
        .then_invalid("points");
    for (field, reason, actor) in [("reason", " ", "agent"), ("actor", "why", "")] {
        given::<Loyalty>(bought())
            .when(LoyaltyCommand::Adjust(AdjustPoints {
                points: 5,
                reason: reason.into(),
                actor: actor.into(),
                rules: rules(),
            }))
            .then_invalid(field);
    }
}

// ---- expiry ----------------------------------------------------------------

#[test]
fn lots_expire_exactly_once() {
    let mut history = bought();
    history.push(adjusted_lot(5, 10, default_now(), later(days(400))));
    let at = later(days(365));
    let expired = LoyaltyEvent::PointsExpired(pb::LoyaltyPointsExpired {
        customer_id: customer().to_string(),
        lot_id: id(1),
        points: 50,
        expires_at: Some(later(DEFAULT_LOT_LIFETIME)),
        expired_at: Some(at),
    });
    given::<Loyalty>(history.clone())
        .when(LoyaltyCommand::ExpirePoints {
            now: later(days(364)),
        })
        .then([]);
    let state = given::<Loyalty>(history.clone())
        .when(LoyaltyCommand::ExpirePoints { now: at })
        .then([expired.clone()]);
    assert_eq!(state.balance(), 10);
    assert_eq!(state.total_expired, 50);
    history.push(expired);
    given::<Loyalty>(history)
        .when(LoyaltyCommand::ExpirePoints {
            now: later(days(366)),
        })
        .then([]);
}

#[test]
fn only_the_remaining_points_of_a_lot_expire() {
    let mut history = bought();
    history.push(LoyaltyEvent::PointsRedeemed(pb::LoyaltyPointsRedeemed {
        customer_id: customer().to_string(),
        points: 20,
        reason: "voucher".into(),
        taken: vec![lot_points(1, 20)],
        redeemed_at: Some(default_now()),
        ..Default::default()
    }));
    let events = given::<Loyalty>(history)
        .when(LoyaltyCommand::ExpirePoints {
            now: later(days(400)),
        })
        .events();
    let [LoyaltyEvent::PointsExpired(e)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(e.points, 30);
}

// ---- earning rules ---------------------------------------------------------

#[test]
fn each_rule_set_gets_the_next_version_and_a_repeat_changes_nothing() {
    let set = EarningRulesCommand::Set(rules());
    let v1 = EarningRulesEvent::Set(rules().to_event(1, default_now()));
    let state = given::<EarningRules>([])
        .when(set.clone())
        .then([v1.clone()]);
    assert_eq!(state.version, 1);
    given::<EarningRules>([v1.clone()]).when(set).then([]);
    let mut changed = rules();
    changed.monthly_cap = Some(1000);
    let state = given::<EarningRules>([v1])
        .when(EarningRulesCommand::Set(changed.clone()))
        .then([EarningRulesEvent::Set(changed.to_event(2, default_now()))]);
    assert_eq!(
        state,
        EarningRuleSet {
            version: 2,
            ..changed
        }
    );
}

#[test]
fn invalid_rule_sets_name_their_field() {
    let cases: Vec<(&str, Change<EarningRuleSet>)> = vec![
        (
            "rates[0].currency",
            Box::new(|r| r.rates[0].currency = "us".into()),
        ),
        (
            "rates[0].unit_minor",
            Box::new(|r| r.rates[0].unit_minor = 0),
        ),
        (
            "rates[0].points_per_unit",
            Box::new(|r| r.rates[0].points_per_unit = -1),
        ),
        (
            "rates[1].currency",
            Box::new(|r| r.rates.push(r.rates[0].clone())),
        ),
        (
            "category_multipliers[0].multiplier_bp",
            Box::new(|r| r.category_multipliers[0].1 = 0),
        ),
        (
            "category_multipliers[0].category",
            Box::new(|r| r.category_multipliers[0].0 = " ".into()),
        ),
        (
            "campaign_multipliers[0].multiplier_bp",
            Box::new(|r| r.campaign_multipliers[0].1 = MAX_MULTIPLIER_BP + 1),
        ),
        ("monthly_cap", Box::new(|r| r.monthly_cap = Some(-1))),
        (
            "lot_lifetime",
            Box::new(|r| r.lot_lifetime = Duration::ZERO),
        ),
        (
            "tiers[1].name",
            Box::new(|r| r.tiers[1].name = "silver".into()),
        ),
        (
            "tiers[0].min_spend_minor",
            Box::new(|r| r.tiers[0].min_spend_minor = -1),
        ),
        (
            "tiers[0].min_purchase_count",
            Box::new(|r| r.tiers[0].min_purchase_count = -1),
        ),
        (
            "tiers[0].multiplier_bp",
            Box::new(|r| r.tiers[0].multiplier_bp = 0),
        ),
        (
            "tier_currency",
            Box::new(|r| r.tier_currency = String::new()),
        ),
        ("tier_window", Box::new(|r| r.tier_window = Duration::ZERO)),
    ];
    for (field, change) in cases {
        let mut r = rules();
        change(&mut r);
        given::<EarningRules>([])
            .when(EarningRulesCommand::Set(r))
            .then_invalid(field);
    }
}

#[test]
fn the_rule_set_stream_has_a_fixed_id() {
    assert_eq!(default_rules_id(), default_rules_id());
    assert_eq!(
        earning_rules_stream(),
        format!(
            "earningrules-{}",
            Uuid::new_v5(&EARNING_RULES_NAMESPACE, b"default")
        )
    );
    assert_eq!(
        loyalty_stream(customer()),
        format!("loyalty-{}", customer())
    );
}

#[test]
fn utc_months_follow_the_calendar() {
    assert_eq!(utc_month(&default_now()), (2026, 1));
    assert_eq!(utc_month(&at_seconds(1_769_903_999)), (2026, 1));
    assert_eq!(utc_month(&at_seconds(1_769_904_000)), (2026, 2));
    assert_eq!(utc_month(&at_seconds(951_782_400)), (2000, 2));
    assert_eq!(utc_month(&at_seconds(-1)), (1969, 12));
}

#[test]
fn a_purchase_count_threshold_also_raises_the_tier() {
    let mut history = vec![enrolled()];
    for i in 0..4 {
        history.push(recorded(&format!("o-{i}"), 100, default_now()));
    }
    let events = given::<Loyalty>(history)
        .when(LoyaltyCommand::RecordPurchase(purchase("o-5", 100)))
        .events();
    let Some(LoyaltyEvent::TierChanged(t)) = events.get(2) else {
        panic!("expected tier_changed, got {events:?}");
    };
    assert_eq!(t.to_tier, "silver");
    assert!(t.reason.contains("5 purchases"), "{}", t.reason);
}

#[test]
fn a_big_purchase_can_skip_a_tier_and_a_higher_one_replaces_the_current() {
    let events = given::<Loyalty>([enrolled()])
        .when(LoyaltyCommand::RecordPurchase(purchase("o-1", 500_000)))
        .events();
    let Some(LoyaltyEvent::TierChanged(t)) = events.get(2) else {
        panic!("expected tier_changed, got {events:?}");
    };
    assert_eq!((t.from_tier.as_str(), t.to_tier.as_str()), ("", "gold"));
    let events = given::<Loyalty>(silver_since_start())
        .at(later(days(1)))
        .when(LoyaltyCommand::RecordPurchase(purchase("o-2", 400_000)))
        .events();
    let Some(LoyaltyEvent::TierChanged(t)) = events.get(2) else {
        panic!("expected tier_changed, got {events:?}");
    };
    assert_eq!(
        (t.from_tier.as_str(), t.to_tier.as_str()),
        ("silver", "gold")
    );
}

#[test]
fn a_review_raises_a_tier_the_current_rules_grant_and_ignores_non_members() {
    let mut lower = rules();
    lower.tiers[1].min_spend_minor = 100_000;
    let events = given::<Loyalty>(silver_since_start())
        .when(review(default_now()))
        .events();
    assert!(events.is_empty(), "{events:?}");
    let events = given::<Loyalty>(silver_since_start())
        .when(LoyaltyCommand::ReviewTier {
            now: later(days(1)),
            rules: lower,
        })
        .events();
    let [LoyaltyEvent::TierChanged(t)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(t.to_tier, "gold");
    given::<Loyalty>([enrolled()])
        .when(review(later(days(900))))
        .then([]);
}

#[test]
fn refunds_count_against_the_tier_spend_from_when_they_happen() {
    let mut history = silver_since_start();
    let mut refund = refunded("o-1", 1);
    if let LoyaltyEvent::PurchaseRefunded(r) = &mut refund {
        r.refunded_at = Some(later(days(10)));
    }
    history.push(refund);
    given::<Loyalty>(history.clone())
        .when(review(later(days(39))))
        .then([]);
    let events = given::<Loyalty>(history)
        .when(review(later(days(40))))
        .events();
    let [LoyaltyEvent::TierChanged(t)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(t.to_tier, "");
}
