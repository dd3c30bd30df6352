//! Properties of trigger field conditions: an integer condition agrees with
//! integer arithmetic for every value and operator (numbers are never
//! compared as text), EQUALS and NOT_EQUALS are exact opposites for every
//! kind, and an inactivity spell, once due, stays due as time moves on.

use kizuna_domain::pb::{self, TriggerConditionOp as Op};
use kizuna_domain::time::{add, at_seconds};
use kizuna_domain::trigger::{
    FieldConditionInput, FieldKind, FieldSpec, Observed, ObservedField, check_condition, holds,
    inactivity_due,
};
use proptest::prelude::*;
use std::time::Duration;

const ORDERING_OPS: [Op; 6] = [
    Op::Equals,
    Op::NotEquals,
    Op::GreaterThan,
    Op::GreaterOrEqual,
    Op::LessThan,
    Op::LessOrEqual,
];

fn reference(op: Op, field: i64, wanted: i64) -> bool {
    match op {
        Op::Equals => field == wanted,
        Op::NotEquals => field != wanted,
        Op::GreaterThan => field > wanted,
        Op::GreaterOrEqual => field >= wanted,
        Op::LessThan => field < wanted,
        Op::LessOrEqual => field <= wanted,
        Op::Exists | Op::Unspecified => unreachable!(),
    }
}

fn recorded(op: Op, value: String, kind: FieldKind) -> pb::TriggerFieldCondition {
    check_condition(
        "c",
        &FieldConditionInput {
            path: "f".into(),
            op,
            value,
            field: Ok(FieldSpec::plain(kind)),
        },
    )
    .expect("a valid condition")
}

proptest! {
    #[test]
    fn integer_conditions_agree_with_integer_comparison(
        (field, wanted) in prop_oneof![
            (any::<i64>(), any::<i64>()),
            // Near each other, so the boundaries (equal, one apart) are hit.
            any::<i64>().prop_flat_map(|f| (Just(f), f.saturating_sub(2)..=f.saturating_add(2))),
        ],
        op in proptest::sample::select(ORDERING_OPS.to_vec()),
        padded in any::<bool>(),
    ) {
        // The value as a caller may write it: leading zeros are fine.
        let text = if padded && wanted >= 0 { format!("000{wanted}") } else { wanted.to_string() };
        let condition = recorded(op, text, FieldKind::Integer);
        let observed = ObservedField { set: field != 0, value: Observed::Integer(field.into()) };
        prop_assert_eq!(holds(&condition, &observed), reference(op, field, wanted));
    }

    #[test]
    fn equals_and_not_equals_are_opposites_for_strings(field in ".{0,8}", wanted in "[a-z]{0,8}") {
        let observed = ObservedField { set: !field.is_empty(), value: Observed::String(field) };
        let eq = holds(&recorded(Op::Equals, wanted.clone(), FieldKind::String), &observed);
        let ne = holds(&recorded(Op::NotEquals, wanted, FieldKind::String), &observed);
        prop_assert_ne!(eq, ne);
    }

    #[test]
    fn an_inactivity_spell_once_due_stays_due(
        bought in 0i64..4_000_000_000,
        days in 1u32..=3650,
        first in 0u64..400 * 86_400,
        later in 0u64..400 * 86_400,
    ) {
        let bought = at_seconds(bought);
        let t1 = add(&bought, Duration::from_secs(first));
        let t2 = add(&t1, Duration::from_secs(later));
        if inactivity_due(&bought, days, &t1) {
            prop_assert!(inactivity_due(&bought, days, &t2));
        }
        prop_assert_eq!(
            inactivity_due(&bought, days, &t1),
            first >= u64::from(days) * 86_400
        );
    }
}
