//! Given / when / then for triggers: every command, each rejection, and the
//! pure helpers the processor relies on.

use super::*;
use crate::testing::{default_now, given};
use crate::time::{add, sub};
use pb::TriggerConditionOp as Op;

fn trigger_id() -> Uuid {
    Uuid::from_u128(0x7419)
}

fn campaign_id() -> Uuid {
    Uuid::from_u128(0xca)
}

fn amount_condition(op: Op, value: &str) -> FieldConditionInput {
    FieldConditionInput {
        path: "amount_minor".into(),
        op,
        value: value.into(),
        field: Ok(FieldSpec::plain(FieldKind::Integer)),
    }
}

fn on_purchase(conditions: Vec<FieldConditionInput>) -> ConditionInput {
    ConditionInput::OnEvent {
        event_type: "loyalty.purchase_recorded".into(),
        event_type_known: true,
        conditions,
    }
}

fn define_cmd(condition: ConditionInput) -> DefineTrigger {
    DefineTrigger {
        trigger_id: trigger_id(),
        name: "  Big spenders ".into(),
        campaign_id: campaign_id(),
        campaign_exists: true,
        condition: Some(condition),
    }
}

fn big_spender_cmd() -> TriggerCommand {
    TriggerCommand::Define(define_cmd(on_purchase(vec![amount_condition(
        Op::GreaterOrEqual,
        "050000",
    )])))
}

fn big_spender_defined() -> TriggerEvent {
    TriggerEvent::Defined(pb::TriggerDefined {
        trigger_id: trigger_id().to_string(),
        name: "Big spenders".into(),
        campaign_id: campaign_id().to_string(),
        condition: Some(pb::trigger_defined::Condition::OnEvent(
            pb::TriggerOnEvent {
                event_type: "loyalty.purchase_recorded".into(),
                conditions: vec![pb::TriggerFieldCondition {
                    path: "amount_minor".into(),
                    op: Op::GreaterOrEqual as i32,
                    value: "50000".into(),
                }],
            },
        )),
        defined_at: Some(default_now()),
    })
}

fn disabled() -> TriggerEvent {
    TriggerEvent::Disabled(pb::TriggerDisabled {
        trigger_id: trigger_id().to_string(),
        reason: "season over".into(),
        disabled_at: Some(default_now()),
    })
}

#[test]
fn define_records_the_trigger_enabled_with_canonical_values() {
    let state = given::<Trigger>([])
        .when(big_spender_cmd())
        .then([big_spender_defined()]);
    let t = state.trigger.expect("defined");
    assert!(t.enabled);
    assert_eq!(t.name, "Big spenders");
    assert_eq!(t.campaign_id, campaign_id());
    assert_eq!(t.on_event().expect("on event").conditions.len(), 1);
}

#[test]
fn define_an_inactivity_trigger() {
    let state = given::<Trigger>([])
        .when(TriggerCommand::Define(define_cmd(
            ConditionInput::Inactivity { days: 30 },
        )))
        .then([TriggerEvent::Defined(pb::TriggerDefined {
            trigger_id: trigger_id().to_string(),
            name: "Big spenders".into(),
            campaign_id: campaign_id().to_string(),
            condition: Some(pb::trigger_defined::Condition::Inactivity(
                pb::TriggerInactivity { days: 30 },
            )),
            defined_at: Some(default_now()),
        })]);
    assert_eq!(state.trigger.expect("defined").inactivity_days(), Some(30));
}

#[test]
fn defining_the_same_definition_again_changes_nothing() {
    given::<Trigger>([big_spender_defined()])
        .when(big_spender_cmd())
        .then([]);
}

#[test]
fn redefining_replaces_the_definition_and_keeps_the_status() {
    let later = add(&default_now(), Duration::from_secs(60));
    let state = given::<Trigger>([big_spender_defined(), disabled()])
        .at(later)
        .when(TriggerCommand::Define(define_cmd(
            ConditionInput::Inactivity { days: 7 },
        )))
        .then([TriggerEvent::Defined(pb::TriggerDefined {
            trigger_id: trigger_id().to_string(),
            name: "Big spenders".into(),
            campaign_id: campaign_id().to_string(),
            condition: Some(pb::trigger_defined::Condition::Inactivity(
                pb::TriggerInactivity { days: 7 },
            )),
            defined_at: Some(later),
        })]);
    let t = state.trigger.expect("defined");
    assert!(!t.enabled, "a redefinition keeps the trigger disabled");
    assert_eq!(t.defined_at, default_now());
    assert_eq!(t.updated_at, later);
    assert_eq!(t.inactivity_days(), Some(7));
}

#[test]
fn define_rejects_a_missing_name_condition_or_campaign() {
    let mut cmd = define_cmd(ConditionInput::Inactivity { days: 1 });
    cmd.name = "  ".into();
    given::<Trigger>([])
        .when(TriggerCommand::Define(cmd))
        .then_invalid("name");

    let mut cmd = define_cmd(ConditionInput::Inactivity { days: 1 });
    cmd.condition = None;
    given::<Trigger>([])
        .when(TriggerCommand::Define(cmd))
        .then_invalid("condition");

    let mut cmd = define_cmd(ConditionInput::Inactivity { days: 1 });
    cmd.campaign_id = Uuid::nil();
    given::<Trigger>([])
        .when(TriggerCommand::Define(cmd))
        .then_invalid("campaign_id");

    let mut cmd = define_cmd(ConditionInput::Inactivity { days: 1 });
    cmd.campaign_exists = false;
    given::<Trigger>([])
        .when(TriggerCommand::Define(cmd))
        .then_not_found("campaign");
}

#[test]
fn inactivity_needs_one_to_3650_days() {
    for days in [0, MAX_INACTIVITY_DAYS + 1] {
        given::<Trigger>([])
            .when(TriggerCommand::Define(define_cmd(
                ConditionInput::Inactivity { days },
            )))
            .then_invalid("inactivity.days");
    }
}

#[test]
fn on_event_needs_a_known_event_type() {
    for (event_type, known) in [("", false), ("loyalty.nothing_happened", false)] {
        given::<Trigger>([])
            .when(TriggerCommand::Define(define_cmd(
                ConditionInput::OnEvent {
                    event_type: event_type.into(),
                    event_type_known: known,
                    conditions: vec![],
                },
            )))
            .then_invalid("on_event.event_type");
    }
}

#[test]
fn on_event_takes_at_most_20_conditions() {
    given::<Trigger>([])
        .when(TriggerCommand::Define(define_cmd(on_purchase(vec![
            amount_condition(Op::Exists, "");
            MAX_CONDITIONS + 1
        ]))))
        .then_invalid("on_event.conditions");
}

#[test]
fn each_condition_is_checked_against_its_field() {
    let cases: Vec<(FieldConditionInput, &str)> = vec![
        (
            FieldConditionInput {
                path: String::new(),
                op: Op::Exists,
                value: String::new(),
                field: Err("no such field".into()),
            },
            "path",
        ),
        (
            FieldConditionInput {
                path: "amount_major".into(),
                op: Op::Equals,
                value: "1".into(),
                field: Err("kizuna.v1.LoyaltyPurchaseRecorded has no field amount_major".into()),
            },
            "path",
        ),
        (amount_condition(Op::Unspecified, "1"), "op"),
        (amount_condition(Op::Equals, "a lot"), "value"),
        (amount_condition(Op::Equals, "1.5"), "value"),
        (
            amount_condition(Op::Equals, "99999999999999999999"),
            "value",
        ),
        (amount_condition(Op::Exists, "1"), "value"),
        (
            FieldConditionInput {
                path: "channel".into(),
                op: Op::GreaterThan,
                value: "CONTACT_CHANNEL_EMAIL".into(),
                field: Ok(FieldSpec::plain(FieldKind::Enum(vec![
                    "CONTACT_CHANNEL_UNSPECIFIED".into(),
                    "CONTACT_CHANNEL_EMAIL".into(),
                ]))),
            },
            "op",
        ),
        (
            FieldConditionInput {
                path: "channel".into(),
                op: Op::Equals,
                value: "EMAIL".into(),
                field: Ok(FieldSpec::plain(FieldKind::Enum(vec![
                    "CONTACT_CHANNEL_EMAIL".into(),
                ]))),
            },
            "value",
        ),
        (
            FieldConditionInput {
                path: "permanent".into(),
                op: Op::LessThan,
                value: "true".into(),
                field: Ok(FieldSpec::plain(FieldKind::Bool)),
            },
            "op",
        ),
        (
            FieldConditionInput {
                path: "permanent".into(),
                op: Op::Equals,
                value: "yes".into(),
                field: Ok(FieldSpec::plain(FieldKind::Bool)),
            },
            "value",
        ),
        (
            FieldConditionInput {
                path: "purchased_at".into(),
                op: Op::Equals,
                value: "x".into(),
                field: Ok(FieldSpec::plain(FieldKind::Other)),
            },
            "op",
        ),
        (
            FieldConditionInput {
                path: "line_items".into(),
                op: Op::Equals,
                value: "x".into(),
                field: Ok(FieldSpec {
                    kind: FieldKind::Other,
                    repeated: true,
                    pii: false,
                }),
            },
            "op",
        ),
        (
            FieldConditionInput {
                path: "contact.email".into(),
                op: Op::Equals,
                value: "a@example.com".into(),
                field: Ok(FieldSpec {
                    kind: FieldKind::String,
                    repeated: false,
                    pii: true,
                }),
            },
            "op",
        ),
        (
            FieldConditionInput {
                path: "store_id".into(),
                op: Op::Equals,
                value: "x".repeat(condition::MAX_VALUE_BYTES + 1),
                field: Ok(FieldSpec::plain(FieldKind::String)),
            },
            "value",
        ),
        (
            FieldConditionInput {
                path: "store_id".into(),
                op: Op::Equals,
                value: "a\nb".into(),
                field: Ok(FieldSpec::plain(FieldKind::String)),
            },
            "value",
        ),
    ];
    for (input, part) in cases {
        given::<Trigger>([])
            .when(TriggerCommand::Define(define_cmd(on_purchase(vec![
                amount_condition(Op::Exists, ""),
                input,
            ]))))
            .then_invalid(&format!("on_event.conditions[1].{part}"));
    }
}

#[test]
fn exists_applies_to_every_field_even_repeated_and_personal_ones() {
    let events = given::<Trigger>([])
        .when(TriggerCommand::Define(define_cmd(on_purchase(vec![
            FieldConditionInput {
                path: "line_items".into(),
                op: Op::Exists,
                value: String::new(),
                field: Ok(FieldSpec {
                    kind: FieldKind::Other,
                    repeated: true,
                    pii: true,
                }),
            },
        ]))))
        .events();
    assert_eq!(events.len(), 1);
}

#[test]
fn disable_and_enable_toggle_and_repeat_as_no_ops() {
    let state = given::<Trigger>([big_spender_defined()])
        .when(TriggerCommand::Disable {
            trigger_id: trigger_id(),
            reason: " season over ".into(),
        })
        .then([disabled()]);
    assert!(!state.trigger.as_ref().expect("defined").enabled);
    assert_eq!(
        state.trigger.expect("defined").disabled_reason,
        "season over"
    );

    given::<Trigger>([big_spender_defined(), disabled()])
        .when(TriggerCommand::Disable {
            trigger_id: trigger_id(),
            reason: String::new(),
        })
        .then([]);

    let state = given::<Trigger>([big_spender_defined(), disabled()])
        .when(TriggerCommand::Enable {
            trigger_id: trigger_id(),
        })
        .then([TriggerEvent::Enabled(pb::TriggerEnabled {
            trigger_id: trigger_id().to_string(),
            enabled_at: Some(default_now()),
        })]);
    let t = state.trigger.expect("defined");
    assert!(t.enabled);
    assert!(t.disabled_reason.is_empty());

    given::<Trigger>([big_spender_defined()])
        .when(TriggerCommand::Enable {
            trigger_id: trigger_id(),
        })
        .then([]);
}

#[test]
fn disable_and_enable_need_an_existing_trigger() {
    given::<Trigger>([])
        .when(TriggerCommand::Disable {
            trigger_id: trigger_id(),
            reason: String::new(),
        })
        .then_not_found("trigger");
    given::<Trigger>([])
        .when(TriggerCommand::Enable {
            trigger_id: trigger_id(),
        })
        .then_not_found("trigger");
}

#[test]
fn disable_rejects_an_overlong_reason() {
    given::<Trigger>([big_spender_defined()])
        .when(TriggerCommand::Disable {
            trigger_id: trigger_id(),
            reason: "x".repeat(MAX_REASON_CHARS + 1),
        })
        .then_invalid("reason");
}

fn observed(value: Observed, set: bool) -> ObservedField {
    ObservedField { set, value }
}

fn cond(op: Op, value: &str) -> pb::TriggerFieldCondition {
    pb::TriggerFieldCondition {
        path: "x".into(),
        op: op as i32,
        value: value.into(),
    }
}

#[test]
fn conditions_compare_integers_as_numbers_strings_as_text_and_enums_by_name() {
    let amount = observed(Observed::Integer(60_000), true);
    assert!(holds(&cond(Op::GreaterOrEqual, "50000"), &amount));
    assert!(
        holds(&cond(Op::GreaterThan, "9999"), &amount),
        "numeric, not text order"
    );
    assert!(!holds(&cond(Op::LessThan, "50000"), &amount));
    assert!(holds(&cond(Op::LessOrEqual, "60000"), &amount));
    assert!(holds(&cond(Op::Equals, "60000"), &amount));
    assert!(holds(&cond(Op::NotEquals, "1"), &amount));

    let store = observed(Observed::String("b".into()), true);
    assert!(holds(&cond(Op::GreaterThan, "a"), &store));
    assert!(holds(&cond(Op::Equals, "b"), &store));
    assert!(!holds(&cond(Op::Equals, "B"), &store));

    let channel = observed(Observed::Enum("CONTACT_CHANNEL_EMAIL".into()), true);
    assert!(holds(&cond(Op::Equals, "CONTACT_CHANNEL_EMAIL"), &channel));
    assert!(holds(&cond(Op::NotEquals, "CONTACT_CHANNEL_SMS"), &channel));
    assert!(!holds(
        &cond(Op::GreaterThan, "CONTACT_CHANNEL_SMS"),
        &channel
    ));

    let flag = observed(Observed::Bool(true), true);
    assert!(holds(&cond(Op::Equals, "true"), &flag));
    assert!(!holds(&cond(Op::Equals, "false"), &flag));
    assert!(!holds(&cond(Op::Equals, "maybe"), &flag));
}

#[test]
fn exists_is_about_presence_and_unset_fields_compare_as_their_default() {
    let unset = observed(Observed::Integer(0), false);
    assert!(!holds(&cond(Op::Exists, ""), &unset));
    assert!(holds(&cond(Op::Equals, "0"), &unset));
    assert!(holds(
        &cond(Op::Exists, ""),
        &observed(Observed::Other, true)
    ));
    assert!(!holds(
        &cond(Op::Equals, "x"),
        &observed(Observed::Other, true)
    ));
    assert!(
        !holds(
            &cond(Op::Equals, "abc"),
            &observed(Observed::Integer(1), true)
        ),
        "a value of another kind never holds"
    );
}

#[test]
fn inactivity_is_due_from_exactly_n_days_after_the_last_purchase() {
    let bought = default_now();
    let day = Duration::from_secs(86_400);
    assert!(!inactivity_due(
        &bought,
        30,
        &sub(&add(&bought, day * 30), Duration::from_nanos(1))
    ));
    assert!(inactivity_due(&bought, 30, &add(&bought, day * 30)));
    assert!(inactivity_due(&bought, 30, &add(&bought, day * 31)));
}

#[test]
fn fire_command_ids_are_stable_and_distinct_per_event_and_trigger() {
    let (e1, e2) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let (t1, t2) = (Uuid::from_u128(10), Uuid::from_u128(20));
    assert_eq!(fire_command_id(e1, t1), fire_command_id(e1, t1));
    let ids: std::collections::HashSet<Uuid> = [
        fire_command_id(e1, t1),
        fire_command_id(e1, t2),
        fire_command_id(e2, t1),
        fire_command_id(e2, t2),
    ]
    .into();
    assert_eq!(ids.len(), 4);
    assert_eq!(
        fire_command_id(e1, t1),
        Uuid::new_v5(&FIRE_NAMESPACE, format!("{e1}/{t1}").as_bytes())
    );
}

#[test]
fn streams_are_named_by_category() {
    assert_eq!(stream(trigger_id()), format!("trigger-{}", trigger_id()));
    assert_eq!(
        checkpoint_stream(DEFAULT_PROCESSOR),
        "triggercheckpoint-default"
    );
}
