//! Given / when / then for rewards and coupons, and the three-stream claim.

use super::*;
use crate::loyalty::{INSUFFICIENT_POINTS, LoyaltyState};
use crate::testing::{default_now, given};
use crate::{DerivedIds, SequentialIds};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn reward_id() -> Uuid {
    Uuid::from_u128(0x5eed)
}

fn alice() -> Uuid {
    Uuid::from_u128(0xa11ce)
}

fn bob() -> Uuid {
    Uuid::from_u128(0xb0b)
}

fn define_cmd() -> DefineReward {
    DefineReward {
        reward_id: reward_id(),
        name: " Free coffee ".into(),
        points_cost: 100,
        stock: 2,
        per_customer_limit: 1,
        coupon_validity: DAY * 30,
    }
}

fn defined() -> RewardEvent {
    RewardEvent::Defined(pb::RewardDefined {
        reward_id: reward_id().to_string(),
        name: "Free coffee".into(),
        points_cost: 100,
        stock: 2,
        per_customer_limit: 1,
        coupon_validity: Some(duration_to_proto(DAY * 30)),
        defined_at: Some(default_now()),
    })
}

fn claimed(customer: Uuid, code: &str, stock_after: i64) -> RewardEvent {
    RewardEvent::Claimed(pb::RewardClaimed {
        reward_id: reward_id().to_string(),
        customer_id: customer.to_string(),
        coupon_code: code.into(),
        points: 100,
        stock_after,
        claimed_at: Some(default_now()),
    })
}

fn retired() -> RewardEvent {
    RewardEvent::Retired(pb::RewardRetired {
        reward_id: reward_id().to_string(),
        reason: "season over".into(),
        retired_at: Some(default_now()),
    })
}

fn claim_by(customer: Uuid) -> RewardCommand {
    RewardCommand::Claim(ClaimReward {
        customer_id: customer,
    })
}

// ---- define ----------------------------------------------------------------

#[test]
fn defining_a_reward_records_it_trimmed() {
    given::<Reward>([])
        .when(RewardCommand::Define(define_cmd()))
        .then([defined()]);
}

#[test]
fn defining_the_same_reward_again_changes_nothing() {
    given::<Reward>([defined()])
        .when(RewardCommand::Define(define_cmd()))
        .then([]);
}

#[test]
fn defining_another_reward_under_a_taken_id_is_already_exists() {
    let outcome = given::<Reward>([defined()]).when(RewardCommand::Define(DefineReward {
        points_cost: 200,
        ..define_cmd()
    }));
    outcome.then_error(DomainError::already_exists("reward", reward_id()));
}

#[test]
fn a_definition_needs_valid_fields() {
    type Change = Box<dyn Fn(&mut DefineReward)>;
    let cases: Vec<(&str, Change)> = vec![
        ("name", Box::new(|c| c.name = "  ".into())),
        ("name", Box::new(|c| c.name = "x".repeat(201))),
        ("name", Box::new(|c| c.name = "a\u{7}b".into())),
        ("points_cost", Box::new(|c| c.points_cost = 0)),
        ("stock", Box::new(|c| c.stock = -1)),
        ("per_customer_limit", Box::new(|c| c.per_customer_limit = 0)),
        (
            "coupon_validity",
            Box::new(|c| c.coupon_validity = Duration::ZERO),
        ),
        (
            "coupon_validity",
            Box::new(|c| c.coupon_validity = MAX_COUPON_VALIDITY + DAY),
        ),
    ];
    for (field, change) in cases {
        let mut cmd = define_cmd();
        change(&mut cmd);
        given::<Reward>([])
            .when(RewardCommand::Define(cmd))
            .then_invalid(field);
    }
}

#[test]
fn a_reward_with_no_stock_may_be_defined() {
    let events = given::<Reward>([])
        .when(RewardCommand::Define(DefineReward {
            stock: 0,
            ..define_cmd()
        }))
        .events();
    assert_eq!(events.len(), 1);
}

// ---- restock and retire ----------------------------------------------------

#[test]
fn restocking_adds_to_what_is_left() {
    given::<Reward>([defined(), claimed(alice(), "AAAA-AAAA-AAAA-AAAA", 1)])
        .when(RewardCommand::Restock { quantity: 5 })
        .then([RewardEvent::Restocked(pb::RewardRestocked {
            reward_id: reward_id().to_string(),
            quantity: 5,
            stock_after: 6,
            restocked_at: Some(default_now()),
        })]);
}

#[test]
fn restocking_needs_a_positive_quantity_a_defined_and_live_reward() {
    given::<Reward>([defined()])
        .when(RewardCommand::Restock { quantity: 0 })
        .then_invalid("quantity");
    given::<Reward>([])
        .when(RewardCommand::Restock { quantity: 1 })
        .then_not_found("reward");
    given::<Reward>([defined(), retired()])
        .when(RewardCommand::Restock { quantity: 1 })
        .then_rejected(REWARD_RETIRED);
    let mut full = defined();
    if let RewardEvent::Defined(d) = &mut full {
        d.stock = i64::MAX;
    }
    given::<Reward>([full])
        .when(RewardCommand::Restock { quantity: 1 })
        .then_invalid("quantity");
}

#[test]
fn retiring_is_recorded_once() {
    let retire = RewardCommand::Retire {
        reason: " season over ".into(),
    };
    given::<Reward>([defined()])
        .when(retire.clone())
        .then([retired()]);
    given::<Reward>([defined(), retired()])
        .when(retire.clone())
        .then([]);
    given::<Reward>([]).when(retire).then_not_found("reward");
    given::<Reward>([defined()])
        .when(RewardCommand::Retire {
            reason: "x".repeat(501),
        })
        .then_invalid("reason");
}

// ---- claim (the reward's half) -------------------------------------------

#[test]
fn a_claim_takes_one_item_and_names_a_coupon_derived_from_the_command() {
    let state = given::<Reward>([defined()])
        .when(claim_by(alice()))
        .then([claimed(alice(), &coupon_code(Uuid::from_u128(1)), 1)]);
    assert_eq!((state.stock, state.claimed), (1, 1));
    assert_eq!(state.claims_by_customer.get(&alice()), Some(&1));
}

#[test]
fn a_claim_is_refused_when_out_of_stock_over_the_limit_or_retired() {
    given::<Reward>([
        defined(),
        claimed(alice(), "AAAA-AAAA-AAAA-AAAA", 1),
        claimed(bob(), "BBBB-BBBB-BBBB-BBBB", 0),
    ])
    .when(claim_by(Uuid::from_u128(0xca7)))
    .then_rejected(REWARD_OUT_OF_STOCK);
    given::<Reward>([defined(), claimed(alice(), "AAAA-AAAA-AAAA-AAAA", 1)])
        .when(claim_by(alice()))
        .then_rejected(REWARD_LIMIT_REACHED);
    given::<Reward>([defined(), retired()])
        .when(claim_by(alice()))
        .then_rejected(REWARD_RETIRED);
    given::<Reward>([])
        .when(claim_by(alice()))
        .then_not_found("reward");
}

#[test]
fn the_limit_counts_per_customer() {
    let events = given::<Reward>([defined(), claimed(alice(), "AAAA-AAAA-AAAA-AAAA", 1)])
        .when(claim_by(bob()))
        .events();
    assert!(matches!(&events[..], [RewardEvent::Claimed(c)] if c.stock_after == 0));
}

// ---- coupon codes ----------------------------------------------------------

#[test]
fn coupon_codes_are_sixteen_upper_hex_digits_in_groups_of_four() {
    // The version nibble (here 5) and the variant bits are left out.
    let code = coupon_code(Uuid::from_u128(0x9f3a_1b2c_3d4e_55f6_0000_0000_0000_0000));
    assert_eq!(code, "9F3A-1B2C-3D4E-5F60");
    assert_eq!(coupon_code(Uuid::from_u128(7)), "0000-0000-0000-0000");
    assert_eq!(
        coupon_code(Uuid::from_u128(0x0000_0000_0000_f000_c000_0000_0000_0000)),
        "0000-0000-0000-0000",
        "version and variant bits carry nothing"
    );
    assert_eq!(
        coupon_code(Uuid::from_u128(0x0000_0000_0000_0000_3c00_0000_0000_0000)),
        "0000-0000-0000-000F",
        "the four bits after the variant are the last digit"
    );
}

#[test]
fn codes_are_read_in_any_case_with_or_without_dashes() {
    for input in [
        "9F3A-1B2C-3D4E-5F60",
        "9f3a-1b2c-3d4e-5f60",
        "9f3a1b2c3d4e5f60",
        " 9F3A1B2C-3D4E5F60 ",
    ] {
        assert_eq!(
            canonical_coupon_code("code", input).unwrap(),
            "9F3A-1B2C-3D4E-5F60",
            "{input}"
        );
    }
    for bad in [
        "",
        "9F3A-1B2C-3D4E",
        "9F3A-1B2C-3D4E-5F6G",
        "9F3A-1B2C-3D4E-5F60-00",
    ] {
        assert!(
            matches!(
                canonical_coupon_code("code", bad),
                Err(DomainError::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
}

// ---- coupons ---------------------------------------------------------------

const CODE: &str = "9F3A-1B2C-3D4E-5F60";

fn issue_cmd() -> IssueCoupon {
    IssueCoupon {
        code: CODE.to_lowercase(),
        reward_id: reward_id(),
        customer_id: alice(),
        points: 100,
        expires_at: add(&default_now(), DAY * 30),
    }
}

fn issued() -> CouponEvent {
    CouponEvent::Issued(pb::CouponIssued {
        code: CODE.into(),
        reward_id: reward_id().to_string(),
        customer_id: alice().to_string(),
        points: 100,
        issued_at: Some(default_now()),
        expires_at: Some(add(&default_now(), DAY * 30)),
    })
}

fn redeem_cmd(customer: Option<Uuid>) -> CouponCommand {
    CouponCommand::Redeem(RedeemCoupon {
        code: "9f3a1b2c3d4e5f60".into(),
        customer_id: customer,
        channel: " store ".into(),
        order_id: "o-1".into(),
    })
}

fn redeemed(at: Timestamp) -> CouponEvent {
    CouponEvent::Redeemed(pb::CouponRedeemed {
        code: CODE.into(),
        reward_id: reward_id().to_string(),
        customer_id: alice().to_string(),
        channel: "store".into(),
        order_id: "o-1".into(),
        redeemed_at: Some(at),
    })
}

#[test]
fn issuing_records_the_canonical_code_once() {
    given::<Coupon>([])
        .when(CouponCommand::Issue(issue_cmd()))
        .then([issued()]);
    given::<Coupon>([issued()])
        .when(CouponCommand::Issue(issue_cmd()))
        .then_error(DomainError::already_exists("coupon", CODE));
    given::<Coupon>([])
        .when(CouponCommand::Issue(IssueCoupon {
            points: 0,
            ..issue_cmd()
        }))
        .then_invalid("points");
    given::<Coupon>([])
        .when(CouponCommand::Issue(IssueCoupon {
            code: "nope".into(),
            ..issue_cmd()
        }))
        .then_invalid("code");
}

#[test]
fn a_coupon_is_redeemed_once() {
    let later = add(&default_now(), DAY);
    given::<Coupon>([issued()])
        .at(later)
        .when(redeem_cmd(Some(alice())))
        .then([redeemed(later)]);
    given::<Coupon>([issued(), redeemed(later)])
        .at(later)
        .when(redeem_cmd(None))
        .then_rejected(COUPON_ALREADY_REDEEMED);
}

#[test]
fn a_coupon_is_not_redeemed_at_or_after_its_expiry() {
    let expiry = add(&default_now(), DAY * 30);
    given::<Coupon>([issued()])
        .at(expiry)
        .when(redeem_cmd(None))
        .then_rejected(COUPON_EXPIRED);
    let just_before = crate::time::sub(&expiry, Duration::from_nanos(1));
    given::<Coupon>([issued()])
        .at(just_before)
        .when(redeem_cmd(None))
        .then([redeemed(just_before)]);
}

#[test]
fn only_its_customer_may_redeem_a_coupon_when_one_is_named() {
    given::<Coupon>([issued()])
        .when(redeem_cmd(Some(bob())))
        .then_rejected(COUPON_OF_ANOTHER_CUSTOMER);
}

#[test]
fn redeeming_an_unknown_coupon_or_with_bad_fields_is_refused() {
    given::<Coupon>([])
        .when(redeem_cmd(None))
        .then_not_found("coupon");
    for (field, cmd) in [
        (
            "code",
            RedeemCoupon {
                code: "12".into(),
                customer_id: None,
                channel: String::new(),
                order_id: String::new(),
            },
        ),
        (
            "channel",
            RedeemCoupon {
                code: CODE.into(),
                customer_id: None,
                channel: "x".repeat(257),
                order_id: String::new(),
            },
        ),
        (
            "order_id",
            RedeemCoupon {
                code: CODE.into(),
                customer_id: None,
                channel: String::new(),
                order_id: "a\nb".into(),
            },
        ),
    ] {
        given::<Coupon>([issued()])
            .when(CouponCommand::Redeem(cmd))
            .then_invalid(field);
    }
}

// ---- the whole claim -------------------------------------------------------

fn account(lots: &[(u128, i64, Timestamp)]) -> LoyaltyState {
    let mut events = vec![LoyaltyEvent::Enrolled(pb::LoyaltyEnrolled {
        customer_id: alice().to_string(),
        programme_id: "default".into(),
        enrolled_at: Some(default_now()),
    })];
    for (lot, points, expires_at) in lots {
        events.push(LoyaltyEvent::PointsAdjusted(pb::LoyaltyPointsAdjusted {
            customer_id: alice().to_string(),
            points: *points,
            reason: "welcome".into(),
            actor: "agent".into(),
            lot_id: Uuid::from_u128(*lot).to_string(),
            expires_at: Some(*expires_at),
            taken: Vec::new(),
            adjusted_at: Some(default_now()),
        }));
    }
    Loyalty::fold(&events)
}

fn reward_state(events: &[RewardEvent]) -> RewardState {
    Reward::fold(events)
}

#[test]
fn a_claim_spends_oldest_expiring_points_takes_an_item_and_issues_the_coupon() {
    let late = add(&default_now(), DAY * 300);
    let soon = add(&default_now(), DAY * 10);
    let acct = account(&[(1, 80, late), (2, 50, soon)]);
    let mut ids = SequentialIds::default();
    let mut ctx = Context {
        now: default_now(),
        ids: &mut ids,
    };
    let c = claim(&acct, &reward_state(&[defined()]), alice(), &mut ctx).unwrap();
    let code = coupon_code(Uuid::from_u128(1));
    assert_eq!(c.coupon_code, code);
    assert_eq!(c.points, 100);
    assert_eq!(c.expires_at, add(&default_now(), DAY * 30));
    assert_eq!(c.reward, vec![claimed(alice(), &code, 1)]);
    assert_eq!(
        c.account,
        vec![LoyaltyEvent::PointsRedeemed(pb::LoyaltyPointsRedeemed {
            customer_id: alice().to_string(),
            points: 100,
            reason: "reward: Free coffee".into(),
            taken: vec![
                pb::LoyaltyLotPoints {
                    lot_id: Uuid::from_u128(2).to_string(),
                    points: 50
                },
                pb::LoyaltyLotPoints {
                    lot_id: Uuid::from_u128(1).to_string(),
                    points: 50
                },
            ],
            redeemed_at: Some(default_now()),
            reward_id: reward_id().to_string(),
            coupon_code: code.clone(),
        })]
    );
    assert_eq!(
        c.coupon,
        vec![CouponEvent::Issued(pb::CouponIssued {
            code,
            reward_id: reward_id().to_string(),
            customer_id: alice().to_string(),
            points: 100,
            issued_at: Some(default_now()),
            expires_at: Some(add(&default_now(), DAY * 30)),
        })]
    );
}

#[test]
fn a_claim_without_enough_unexpired_points_is_refused() {
    let acct = account(&[
        (1, 60, add(&default_now(), DAY)),
        (2, 60, crate::time::sub(&default_now(), DAY)),
    ]);
    let mut ids = SequentialIds::default();
    let mut ctx = Context {
        now: default_now(),
        ids: &mut ids,
    };
    let err = claim(&acct, &reward_state(&[defined()]), alice(), &mut ctx).unwrap_err();
    assert!(
        matches!(err, DomainError::Rejected { reason, .. } if reason == INSUFFICIENT_POINTS),
        "{err:?}"
    );
}

#[test]
fn a_claim_checks_the_reward_and_the_enrolment() {
    let rich = account(&[(1, 1_000, add(&default_now(), DAY))]);
    let mut ids = SequentialIds::default();
    let mut ctx = Context {
        now: default_now(),
        ids: &mut ids,
    };
    let sold_out = reward_state(&[
        defined(),
        claimed(bob(), "AAAA-AAAA-AAAA-AAAA", 1),
        claimed(Uuid::from_u128(3), "BBBB-BBBB-BBBB-BBBB", 0),
    ]);
    assert!(matches!(
        claim(&rich, &sold_out, alice(), &mut ctx),
        Err(DomainError::Rejected { reason, .. }) if reason == REWARD_OUT_OF_STOCK
    ));
    assert!(matches!(
        claim(
            &LoyaltyState::default(),
            &reward_state(&[defined()]),
            alice(),
            &mut ctx
        ),
        Err(DomainError::NotFound { .. })
    ));
    assert!(matches!(
        claim(&rich, &RewardState::default(), alice(), &mut ctx),
        Err(DomainError::NotFound { .. })
    ));
}

#[test]
fn a_retried_claim_derives_the_same_code_and_another_command_another() {
    let acct = account(&[(1, 1_000, add(&default_now(), DAY))]);
    let reward = reward_state(&[defined()]);
    let code_of = |command: u128| {
        let mut ids = DerivedIds::new(Uuid::from_u128(command));
        let mut ctx = Context {
            now: default_now(),
            ids: &mut ids,
        };
        claim(&acct, &reward, alice(), &mut ctx)
            .unwrap()
            .coupon_code
    };
    assert_eq!(code_of(10), code_of(10));
    assert_ne!(code_of(10), code_of(11));
}
