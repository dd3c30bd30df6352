//! Given / when / then for every customer command and each of its rejections.

use super::*;
use crate::event::{DomainEvent, EventMessage, Upcasters};
use crate::testing::{default_now, given};

use pb::BounceKind::{Hard, Soft};
use pb::ConsentPurpose::{Marketing, Service};
use pb::ContactChannel::{Email, Phone, Postal, Push, Sms};

fn id() -> Uuid {
    Uuid::from_u128(0xC0FFEE)
}

fn other() -> Uuid {
    Uuid::from_u128(0xBEEF)
}

fn merge() -> Uuid {
    Uuid::from_u128(0x3E26E)
}

fn jp() -> Region {
    "JP".parse().expect("JP")
}

fn address() -> pb::PostalAddress {
    pb::PostalAddress {
        lines: vec!["1-2-3 丸の内".into()],
        locality: "千代田区".into(),
        region: "東京都".into(),
        postal_code: "100-0005".into(),
        country: "JP".into(),
    }
}

/// Normalised contact data, as a registration records it.
fn contact() -> pb::ContactData {
    pb::ContactData {
        given_name: "Taro".into(),
        family_name: "Yamada".into(),
        email: "taro@example.jp".into(),
        phone: "+819012345678".into(),
        postal_address: Some(address()),
        company: String::new(),
    }
}

fn registered() -> CustomerEvent {
    registered_as(id())
}

fn registered_as(customer: Uuid) -> CustomerEvent {
    pb::CustomerRegistered {
        customer_id: customer.to_string(),
        contact: Some(contact()),
        converted_from_lead_id: String::new(),
        consents: vec![],
        source: "web".into(),
    }
    .into()
}

fn merged_away() -> CustomerEvent {
    pb::CustomerMerged {
        customer_id: id().to_string(),
        merged_into_customer_id: other().to_string(),
        merge_id: merge().to_string(),
    }
    .into()
}

fn bounced(
    channel: pb::ContactChannel,
    value: ContactValue,
    kind: pb::BounceKind,
) -> CustomerEvent {
    pb::CustomerContactBounced {
        customer_id: id().to_string(),
        channel: channel as i32,
        bounced: Some(value.to_bounced()),
        kind: kind as i32,
        reason: String::new(),
    }
    .into()
}

fn email_value(e: &str) -> ContactValue {
    ContactValue::Address(e.into())
}

fn register(contact: pb::ContactData) -> CustomerCommand {
    CustomerCommand::Register {
        customer_id: None,
        contact,
        consents: vec![],
        source: String::new(),
        region: jp(),
    }
}

fn update(contact: pb::ContactData) -> CustomerCommand {
    CustomerCommand::UpdateContact {
        customer_id: id(),
        contact,
        fields: None,
        region: jp(),
    }
}

fn update_only(fields: &[ContactField], contact: pb::ContactData) -> CustomerCommand {
    CustomerCommand::UpdateContact {
        customer_id: id(),
        contact,
        fields: Some(fields.iter().copied().collect()),
        region: jp(),
    }
}

fn updated(contact: pb::ContactData, cleared: &[pb::ContactChannel]) -> CustomerEvent {
    pb::CustomerContactUpdated {
        customer_id: id().to_string(),
        contact: Some(contact),
        bounces_cleared: cleared.iter().map(|c| *c as i32).collect(),
    }
    .into()
}

fn bounce(
    channel: pb::ContactChannel,
    value: Option<ContactValue>,
    kind: pb::BounceKind,
) -> CustomerCommand {
    CustomerCommand::RecordBounce {
        customer_id: id(),
        channel,
        value,
        kind,
        reason: String::new(),
        region: jp(),
    }
}

fn set_attr(key: &str, value: AttributeValue) -> CustomerCommand {
    CustomerCommand::SetAttribute {
        customer_id: id(),
        key: key.into(),
        value,
    }
}

fn attr_set(key: &str, value: &AttributeValue) -> CustomerEvent {
    pb::CustomerAttributeSet {
        customer_id: id().to_string(),
        key: key.into(),
        value: Some(value.to_proto()),
    }
    .into()
}

fn grant(channel: pb::ContactChannel, purpose: pb::ConsentPurpose) -> CustomerCommand {
    CustomerCommand::GrantConsent {
        customer_id: id(),
        channel,
        purpose,
        source: String::new(),
        evidence: String::new(),
    }
}

fn revoke(channel: pb::ContactChannel, purpose: pb::ConsentPurpose) -> CustomerCommand {
    CustomerCommand::RevokeConsent {
        customer_id: id(),
        channel,
        purpose,
        source: String::new(),
        evidence: String::new(),
    }
}

fn granted(channel: pb::ContactChannel, purpose: pb::ConsentPurpose) -> CustomerEvent {
    pb::CustomerConsentGranted {
        customer_id: id().to_string(),
        channel: channel as i32,
        purpose: purpose as i32,
        source: String::new(),
        evidence: String::new(),
    }
    .into()
}

fn revoked(channel: pb::ContactChannel, purpose: pb::ConsentPurpose) -> CustomerEvent {
    pb::CustomerConsentRevoked {
        customer_id: id().to_string(),
        channel: channel as i32,
        purpose: purpose as i32,
        source: String::new(),
        evidence: String::new(),
    }
    .into()
}

fn note(text: &str) -> CustomerCommand {
    CustomerCommand::AddNote {
        customer_id: id(),
        text: text.into(),
        author: "user:alice".into(),
    }
}

/// Every command but the undo, for "a merged-away customer refuses it".
fn every_command_but_undo() -> Vec<CustomerCommand> {
    vec![
        update(contact()),
        bounce(Email, Some(email_value("taro@example.jp")), Hard),
        set_attr("tier", AttributeValue::Int(1)),
        CustomerCommand::RemoveAttribute {
            customer_id: id(),
            key: "tier".into(),
        },
        note("hello"),
        grant(Email, Marketing),
        revoke(Email, Marketing),
        CustomerCommand::MergeInto {
            customer_id: id(),
            target_customer_id: Uuid::from_u128(77),
            merge_id: Uuid::from_u128(78),
        },
        CustomerCommand::AbsorbMerge {
            customer_id: id(),
            source_customer_id: Uuid::from_u128(77),
            merge_id: Uuid::from_u128(78),
        },
    ]
}

// --- register ---

#[test]
fn register_records_normalised_contact_under_a_new_id() {
    // Given no customer yet
    // When one is registered with full-width input and no id
    // Then the id comes from the context and the contact is normalised
    let raw = pb::ContactData {
        given_name: "Ｔａｒｏ".into(),
        email: "ｔａｒｏ＠ＥＸＡＭＰＬＥ．ＪＰ".into(),
        phone: "０９０－１２３４－５６７８".into(),
        ..Default::default()
    };
    let cmd = CustomerCommand::Register {
        customer_id: None,
        contact: raw,
        consents: vec![
            pb::ConsentGrant {
                channel: Email as i32,
                purpose: Marketing as i32,
            },
            pb::ConsentGrant {
                channel: Email as i32,
                purpose: Marketing as i32,
            },
            pb::ConsentGrant {
                channel: Sms as i32,
                purpose: Service as i32,
            },
        ],
        source: " web\u{3000}shop ".into(),
        region: jp(),
    };
    let state = given::<Customer>([])
        .when(cmd)
        .then([pb::CustomerRegistered {
            customer_id: Uuid::from_u128(1).to_string(),
            contact: Some(pb::ContactData {
                given_name: "Taro".into(),
                email: "taro@example.jp".into(),
                phone: "+819012345678".into(),
                ..Default::default()
            }),
            converted_from_lead_id: String::new(),
            consents: vec![
                pb::ConsentGrant {
                    channel: Email as i32,
                    purpose: Marketing as i32,
                },
                pb::ConsentGrant {
                    channel: Sms as i32,
                    purpose: Service as i32,
                },
            ],
            source: "web shop".into(),
        }
        .into()]);
    assert!(state.registered);
    assert_eq!(
        state.consents,
        BTreeSet::from([(Email, Marketing), (Sms, Service)])
    );
}

#[test]
fn register_uses_a_caller_chosen_id() {
    let cmd = CustomerCommand::Register {
        customer_id: Some(id()),
        contact: contact(),
        consents: vec![],
        source: "web".into(),
        region: jp(),
    };
    given::<Customer>([]).when(cmd).then([registered()]);
}

#[test]
fn register_with_a_taken_id_already_exists() {
    let cmd = CustomerCommand::Register {
        customer_id: Some(id()),
        contact: contact(),
        consents: vec![],
        source: String::new(),
        region: jp(),
    };
    given::<Customer>([registered()])
        .when(cmd)
        .then_error(DomainError::already_exists("customer", id()));
}

#[test]
fn register_rejects_bad_and_missing_contact_data() {
    given::<Customer>([])
        .when(register(pb::ContactData {
            email: "taro@".into(),
            ..Default::default()
        }))
        .then_invalid("contact.email");
    given::<Customer>([])
        .when(register(pb::ContactData {
            given_name: "  ".into(),
            ..Default::default()
        }))
        .then_invalid("contact");
}

#[test]
fn register_rejects_unset_consent_channel_or_purpose_and_long_source() {
    let with = |consents: Vec<pb::ConsentGrant>, source: &str| CustomerCommand::Register {
        customer_id: None,
        contact: contact(),
        consents,
        source: source.into(),
        region: jp(),
    };
    let ok = pb::ConsentGrant {
        channel: Email as i32,
        purpose: Marketing as i32,
    };
    given::<Customer>([])
        .when(with(
            vec![
                ok,
                pb::ConsentGrant {
                    channel: 0,
                    purpose: Marketing as i32,
                },
            ],
            "",
        ))
        .then_invalid("consents[1].channel");
    given::<Customer>([])
        .when(with(
            vec![pb::ConsentGrant {
                channel: Email as i32,
                purpose: 99,
            }],
            "",
        ))
        .then_invalid("consents[0].purpose");
    given::<Customer>([])
        .when(with(vec![], &"x".repeat(MAX_SOURCE_CHARS + 1)))
        .then_invalid("source");
}

#[test]
fn a_lead_conversion_registration_folds_with_its_lead_and_consents() {
    let lead = Uuid::from_u128(0x1EAD);
    let state = given::<Customer>([pb::CustomerRegistered {
        customer_id: id().to_string(),
        contact: Some(contact()),
        converted_from_lead_id: lead.to_string(),
        consents: vec![
            pb::ConsentGrant {
                channel: Email as i32,
                purpose: Marketing as i32,
            },
            // Not something this decider records, but folding must not trip on it.
            pb::ConsentGrant {
                channel: 0,
                purpose: Service as i32,
            },
        ],
        source: "lead".into(),
    }
    .into()])
    .state();
    assert!(state.registered);
    assert_eq!(state.converted_from_lead_id, lead.to_string());
    assert_eq!(state.consents, BTreeSet::from([(Email, Marketing)]));
}

// --- the guards every command on an existing customer passes ---

#[test]
fn every_command_on_an_unknown_customer_is_not_found() {
    for cmd in every_command_but_undo()
        .into_iter()
        .chain([CustomerCommand::UndoMerge {
            customer_id: id(),
            merge_id: merge(),
        }])
    {
        given::<Customer>([]).when(cmd).then_not_found("customer");
    }
}

#[test]
fn a_merged_away_customer_refuses_every_command_but_the_undo_and_names_the_target() {
    let state = given::<Customer>([registered(), merged_away()]).state();
    for cmd in every_command_but_undo() {
        // Decided directly: the scenario checks the code, this also reads the message.
        let mut ids = crate::decider::SequentialIds::default();
        let mut ctx = Context {
            now: default_now(),
            ids: &mut ids,
        };
        match Customer::decide(&state, &cmd, &mut ctx) {
            Err(DomainError::Rejected { reason, message }) => {
                assert_eq!(reason, CUSTOMER_MERGED);
                assert!(message.contains(&other().to_string()), "{message}");
            }
            other => panic!("expected CUSTOMER_MERGED, got {other:?}"),
        }
    }
}

// --- update contact ---

#[test]
fn update_contact_records_the_complete_normalised_contact() {
    let mut raw = contact();
    raw.email = "Ｈａｎａｋｏ@Example.JP".into();
    let mut expected = contact();
    expected.email = "hanako@example.jp".into();
    let state = given::<Customer>([registered()])
        .when(update(raw))
        .then([updated(expected.clone(), &[])]);
    assert_eq!(state.contact, expected);
}

#[test]
fn update_contact_that_normalises_to_the_current_values_emits_nothing() {
    let mut raw = contact();
    raw.email = " TARO@example.jp ".into();
    raw.phone = "090-1234-5678".into();
    raw.given_name = "Ｔａｒｏ".into();
    given::<Customer>([registered()]).when(update(raw)).then([]);
}

#[test]
fn update_contact_with_a_mask_applies_only_the_masked_fields() {
    // Given a request whose unmasked fields are blank or even invalid
    let raw = pb::ContactData {
        email: "new@example.jp".into(),
        phone: "not a number".into(),
        ..Default::default()
    };
    // When only the e-mail is masked in
    // Then only the e-mail changes and the rest is kept
    let mut expected = contact();
    expected.email = "new@example.jp".into();
    given::<Customer>([registered()])
        .when(update_only(&[ContactField::Email], raw.clone()))
        .then([updated(expected, &[])]);
    // And a masked invalid field is named
    given::<Customer>([registered()])
        .when(update_only(&[ContactField::Phone], raw))
        .then_invalid("contact.phone");
}

#[test]
fn update_contact_rejects_invalid_values_by_field() {
    let mut raw = contact();
    raw.postal_address = Some(pb::PostalAddress {
        country: "Japan".into(),
        ..address()
    });
    given::<Customer>([registered()])
        .when(update(raw))
        .then_invalid("contact.postal_address.country");
}

#[test]
fn a_changed_email_clears_only_the_email_bounce_flag() {
    let history = [
        registered(),
        bounced(Email, email_value("taro@example.jp"), Hard),
        bounced(Sms, email_value("+819012345678"), Soft),
    ];
    let mut new = contact();
    new.email = "taro2@example.jp".into();
    let state = given::<Customer>(history)
        .when(update(new.clone()))
        .then([updated(new, &[Email])]);
    assert!(!state.bounces.contains_key(&Email));
    assert!(state.bounces.contains_key(&Sms));
}

#[test]
fn a_changed_phone_clears_the_sms_and_phone_flags() {
    let history = [
        registered(),
        bounced(Email, email_value("taro@example.jp"), Hard),
        bounced(Sms, email_value("+819012345678"), Soft),
        bounced(Phone, email_value("+819012345678"), Hard),
    ];
    let mut new = contact();
    new.phone = "+819087654321".into();
    let state = given::<Customer>(history)
        .when(update(new.clone()))
        .then([updated(new, &[Sms, Phone])]);
    assert_eq!(state.bounces.keys().copied().collect::<Vec<_>>(), [Email]);
}

#[test]
fn a_removed_phone_clears_only_the_flag_that_was_set() {
    let history = [
        registered(),
        bounced(Phone, email_value("+819012345678"), Hard),
    ];
    let mut new = contact();
    new.phone = String::new();
    let state = given::<Customer>(history)
        .when(update(new.clone()))
        .then([updated(new, &[Phone])]);
    assert!(state.bounces.is_empty());
}

#[test]
fn a_changed_address_clears_the_postal_flag_and_a_changed_name_clears_none() {
    let history = [
        registered(),
        bounced(Postal, ContactValue::Postal(address()), Hard),
        bounced(Email, email_value("taro@example.jp"), Hard),
    ];
    let mut renamed = contact();
    renamed.family_name = "Suzuki".into();
    let state = given::<Customer>(history.clone())
        .when(update(renamed.clone()))
        .then([updated(renamed, &[])]);
    assert_eq!(state.bounces.len(), 2);

    let mut moved = contact();
    moved.postal_address = Some(pb::PostalAddress {
        lines: vec!["4-5-6 大手町".into()],
        ..address()
    });
    let state = given::<Customer>(history)
        .when(update(moved.clone()))
        .then([updated(moved, &[Postal])]);
    assert_eq!(state.bounces.keys().copied().collect::<Vec<_>>(), [Email]);
}

// --- bounces ---

#[test]
fn a_bounce_of_the_current_email_sets_the_flag() {
    let state = given::<Customer>([registered()])
        .when(CustomerCommand::RecordBounce {
            customer_id: id(),
            channel: Email,
            // Compared after normalisation, so case and width do not matter.
            value: Some(email_value("ＴＡＲＯ@example.jp")),
            kind: Hard,
            reason: "550  no such user".into(),
            region: jp(),
        })
        .then([pb::CustomerContactBounced {
            customer_id: id().to_string(),
            channel: Email as i32,
            bounced: Some(pb::customer_contact_bounced::Bounced::Address(
                "taro@example.jp".into(),
            )),
            kind: Hard as i32,
            reason: "550 no such user".into(),
        }
        .into()]);
    let flag = &state.bounces[&Email];
    assert_eq!(
        (flag.kind, flag.count, flag.last_reason.as_str()),
        (Hard, 1, "550 no such user")
    );
}

#[test]
fn a_phone_bounce_matches_the_stored_number_in_any_spelling() {
    given::<Customer>([registered()])
        .when(bounce(Sms, Some(email_value("090 1234 5678")), Soft))
        .then([bounced(Sms, email_value("+819012345678"), Soft)]);
}

#[test]
fn a_postal_bounce_matches_the_normalised_address() {
    let typed = pb::PostalAddress {
        lines: vec!["１－２－３　丸の内".into()],
        country: "jp".into(),
        ..address()
    };
    given::<Customer>([registered()])
        .when(bounce(Postal, Some(ContactValue::Postal(typed)), Hard))
        .then([bounced(Postal, ContactValue::Postal(address()), Hard)]);
}

#[test]
fn a_repeated_bounce_is_recorded_and_soft_then_hard_makes_the_flag_hard() {
    let first = bounced(Email, email_value("taro@example.jp"), Soft);
    let state = given::<Customer>([registered(), first.clone()])
        .when(bounce(Email, Some(email_value("taro@example.jp")), Hard))
        .then([bounced(Email, email_value("taro@example.jp"), Hard)]);
    assert_eq!(
        (state.bounces[&Email].kind, state.bounces[&Email].count),
        (Hard, 2)
    );

    // A later soft bounce does not make a hard-bounced address good again.
    let hard = bounced(Email, email_value("taro@example.jp"), Hard);
    let state = given::<Customer>([registered(), hard])
        .when(bounce(Email, Some(email_value("taro@example.jp")), Soft))
        .then([bounced(Email, email_value("taro@example.jp"), Soft)]);
    assert_eq!(
        (state.bounces[&Email].kind, state.bounces[&Email].count),
        (Hard, 2)
    );
}

#[test]
fn a_bounce_for_an_old_value_is_stale() {
    given::<Customer>([registered()])
        .when(bounce(Email, Some(email_value("old@example.jp")), Hard))
        .then_rejected(BOUNCE_FOR_STALE_CONTACT);
    given::<Customer>([registered()])
        .when(bounce(Phone, Some(email_value("+819087654321")), Hard))
        .then_rejected(BOUNCE_FOR_STALE_CONTACT);
    let other_address = pb::PostalAddress {
        lines: vec!["9-9-9".into()],
        ..address()
    };
    given::<Customer>([registered()])
        .when(bounce(
            Postal,
            Some(ContactValue::Postal(other_address)),
            Hard,
        ))
        .then_rejected(BOUNCE_FOR_STALE_CONTACT);
}

#[test]
fn a_bounce_on_a_channel_without_contact_is_refused() {
    let mut no_phone = contact();
    no_phone.phone = String::new();
    no_phone.postal_address = None;
    let history = [pb::CustomerRegistered {
        customer_id: id().to_string(),
        contact: Some(no_phone),
        ..Default::default()
    }
    .into()];
    given::<Customer>(history.clone())
        .when(bounce(Phone, Some(email_value("+819012345678")), Hard))
        .then_rejected(NO_CONTACT_ON_CHANNEL);
    given::<Customer>(history)
        .when(bounce(Postal, Some(ContactValue::Postal(address())), Hard))
        .then_rejected(NO_CONTACT_ON_CHANNEL);
}

#[test]
fn a_bounce_with_bad_fields_names_them() {
    let taro = || Some(email_value("taro@example.jp"));
    given::<Customer>([registered()])
        .when(bounce(pb::ContactChannel::Unspecified, taro(), Hard))
        .then_invalid("channel");
    given::<Customer>([registered()])
        .when(bounce(Push, taro(), Hard))
        .then_invalid("channel");
    given::<Customer>([registered()])
        .when(bounce(Email, taro(), pb::BounceKind::Unspecified))
        .then_invalid("kind");
    given::<Customer>([registered()])
        .when(bounce(Email, None, Hard))
        .then_invalid("address");
    given::<Customer>([registered()])
        .when(bounce(Email, Some(email_value("taro")), Hard))
        .then_invalid("address");
    given::<Customer>([registered()])
        .when(bounce(Email, Some(ContactValue::Postal(address())), Hard))
        .then_invalid("address");
    given::<Customer>([registered()])
        .when(bounce(Postal, taro(), Hard))
        .then_invalid("postal_address");
    given::<Customer>([registered()])
        .when(bounce(
            Postal,
            Some(ContactValue::Postal(pb::PostalAddress {
                lines: vec!["x".repeat(201)],
                ..address()
            })),
            Hard,
        ))
        .then_invalid("postal_address.lines[0]");
    given::<Customer>([registered()])
        .when(CustomerCommand::RecordBounce {
            customer_id: id(),
            channel: Email,
            value: taro(),
            kind: Hard,
            reason: "r".repeat(MAX_REASON_CHARS + 1),
            region: jp(),
        })
        .then_invalid("reason");
}

// --- attributes ---

#[test]
fn set_attribute_records_each_kind_of_value() {
    let values = [
        AttributeValue::String("gold".into()),
        AttributeValue::Int(-3),
        AttributeValue::Number(2.5),
        AttributeValue::Bool(true),
        AttributeValue::Date(AttributeDate {
            year: 2024,
            month: 2,
            day: 29,
        }),
    ];
    for value in values {
        let state = given::<Customer>([registered()])
            .when(set_attr("k_1", value.clone()))
            .then([attr_set("k_1", &value)]);
        assert_eq!(state.attributes.get("k_1"), Some(&value));
    }
}

#[test]
fn set_attribute_to_its_current_value_emits_nothing_and_a_new_value_is_recorded() {
    let gold = AttributeValue::String("gold".into());
    let history = [registered(), attr_set("tier", &gold)];
    given::<Customer>(history.clone())
        .when(set_attr("tier", gold))
        .then([]);
    let silver = AttributeValue::String("silver".into());
    given::<Customer>(history)
        .when(set_attr("tier", silver.clone()))
        .then([attr_set("tier", &silver)]);
}

#[test]
fn set_attribute_rejects_bad_keys() {
    for key in ["", "Tier", "1tier", "ti-er", "tïer", &"k".repeat(65)] {
        given::<Customer>([registered()])
            .when(set_attr(key, AttributeValue::Bool(true)))
            .then_invalid("key");
    }
    let longest = "k".repeat(64);
    given::<Customer>([registered()])
        .when(set_attr(&longest, AttributeValue::Bool(true)))
        .then([attr_set(&longest, &AttributeValue::Bool(true))]);
}

#[test]
fn set_attribute_rejects_values_out_of_range() {
    let cases = [
        (
            AttributeValue::String("x".repeat(MAX_ATTRIBUTE_STRING_CHARS + 1)),
            "value.string_value",
        ),
        (AttributeValue::Number(f64::NAN), "value.number_value"),
        (AttributeValue::Number(f64::INFINITY), "value.number_value"),
        (
            AttributeValue::Date(AttributeDate {
                year: 2025,
                month: 2,
                day: 29,
            }),
            "value.date_value",
        ),
        (
            AttributeValue::Date(AttributeDate {
                year: 2025,
                month: 13,
                day: 1,
            }),
            "value.date_value",
        ),
        (
            AttributeValue::Date(AttributeDate {
                year: 0,
                month: 1,
                day: 1,
            }),
            "value.date_value",
        ),
        (
            AttributeValue::Date(AttributeDate {
                year: 2025,
                month: 4,
                day: 31,
            }),
            "value.date_value",
        ),
    ];
    for (value, field) in cases {
        given::<Customer>([registered()])
            .when(set_attr("k", value))
            .then_invalid(field);
    }
    // The longest string is fine, counted in characters, not bytes.
    let longest = AttributeValue::String("あ".repeat(MAX_ATTRIBUTE_STRING_CHARS));
    given::<Customer>([registered()])
        .when(set_attr("k", longest.clone()))
        .then([attr_set("k", &longest)]);
}

#[test]
fn a_201st_attribute_is_refused_but_an_existing_one_can_change() {
    let mut history = vec![registered()];
    history
        .extend((0..MAX_ATTRIBUTES).map(|i| attr_set(&format!("a{i}"), &AttributeValue::Int(0))));
    given::<Customer>(history.clone())
        .when(set_attr("one_more", AttributeValue::Int(1)))
        .then_rejected(TOO_MANY_ATTRIBUTES);
    given::<Customer>(history)
        .when(set_attr("a0", AttributeValue::Int(1)))
        .then([attr_set("a0", &AttributeValue::Int(1))]);
}

#[test]
fn remove_attribute_removes_a_set_key_and_refuses_an_unset_one() {
    let history = [registered(), attr_set("tier", &AttributeValue::Int(1))];
    let state = given::<Customer>(history)
        .when(CustomerCommand::RemoveAttribute {
            customer_id: id(),
            key: "tier".into(),
        })
        .then([pb::CustomerAttributeRemoved {
            customer_id: id().to_string(),
            key: "tier".into(),
        }
        .into()]);
    assert!(state.attributes.is_empty());
    given::<Customer>([registered()])
        .when(CustomerCommand::RemoveAttribute {
            customer_id: id(),
            key: "tier".into(),
        })
        .then_rejected(ATTRIBUTE_NOT_SET);
    given::<Customer>([registered()])
        .when(CustomerCommand::RemoveAttribute {
            customer_id: id(),
            key: "Tier".into(),
        })
        .then_invalid("key");
}

// --- notes ---

#[test]
fn add_note_records_nfkc_text_with_a_new_id_author_and_time() {
    let state = given::<Customer>([registered()])
        .when(note("  ﾀﾛｳ様から電話。\n折り返し希望  "))
        .then([pb::CustomerNoteAdded {
            customer_id: id().to_string(),
            note_id: Uuid::from_u128(1).to_string(),
            text: "タロウ様から電話。\n折り返し希望".into(),
            author: "user:alice".into(),
            added_at: Some(default_now()),
        }
        .into()]);
    assert_eq!(state.notes.len(), 1);
    assert_eq!(state.notes[0].note_id, Uuid::from_u128(1));
}

#[test]
fn add_note_rejects_blank_long_or_control_text_and_a_long_author() {
    for text in ["", " \u{3000}\n", "a\u{7}b"] {
        given::<Customer>([registered()])
            .when(note(text))
            .then_invalid("text");
    }
    given::<Customer>([registered()])
        .when(note(&"x".repeat(MAX_NOTE_CHARS + 1)))
        .then_invalid("text");
    given::<Customer>([registered()])
        .when(note(&"x".repeat(MAX_NOTE_CHARS)))
        .events();
    given::<Customer>([registered()])
        .when(CustomerCommand::AddNote {
            customer_id: id(),
            text: "hi".into(),
            author: "a".repeat(MAX_AUTHOR_BYTES + 1),
        })
        .then_invalid("author");
}

// --- consents ---

#[test]
fn grant_records_a_new_consent_and_granting_it_again_emits_nothing() {
    let state = given::<Customer>([registered()])
        .when(grant(Email, Marketing))
        .then([granted(Email, Marketing)]);
    assert!(state.consents.contains(&(Email, Marketing)));
    given::<Customer>([registered(), granted(Email, Marketing)])
        .when(grant(Email, Marketing))
        .then([]);
}

#[test]
fn a_consent_given_at_registration_is_held() {
    let history = [pb::CustomerRegistered {
        customer_id: id().to_string(),
        contact: Some(contact()),
        consents: vec![pb::ConsentGrant {
            channel: Sms as i32,
            purpose: Service as i32,
        }],
        ..Default::default()
    }
    .into()];
    given::<Customer>(history.clone())
        .when(grant(Sms, Service))
        .then([]);
    given::<Customer>(history)
        .when(revoke(Sms, Service))
        .then([revoked(Sms, Service)]);
}

#[test]
fn revoke_records_a_held_consent_and_revoking_one_not_held_emits_nothing() {
    let state = given::<Customer>([registered(), granted(Email, Marketing)])
        .when(revoke(Email, Marketing))
        .then([revoked(Email, Marketing)]);
    assert!(state.consents.is_empty());
    given::<Customer>([registered()])
        .when(revoke(Email, Marketing))
        .then([]);
    given::<Customer>([registered(), granted(Email, Marketing)])
        .when(revoke(Email, Service))
        .then([]);
}

#[test]
fn consent_commands_require_channel_and_purpose() {
    for cmd in [
        grant(pb::ContactChannel::Unspecified, Marketing),
        revoke(pb::ContactChannel::Unspecified, Marketing),
    ] {
        given::<Customer>([registered()])
            .when(cmd)
            .then_invalid("channel");
    }
    for cmd in [
        grant(Email, pb::ConsentPurpose::Unspecified),
        revoke(Email, pb::ConsentPurpose::Unspecified),
    ] {
        given::<Customer>([registered()])
            .when(cmd)
            .then_invalid("purpose");
    }
    given::<Customer>([registered()])
        .when(CustomerCommand::GrantConsent {
            customer_id: id(),
            channel: Email,
            purpose: Marketing,
            source: String::new(),
            evidence: "e".repeat(MAX_EVIDENCE_CHARS + 1),
        })
        .then_invalid("evidence");
}

#[test]
fn grant_records_normalised_source_and_evidence() {
    given::<Customer>([registered()])
        .when(CustomerCommand::GrantConsent {
            customer_id: id(),
            channel: Push,
            purpose: Service,
            source: " ａｐｐ ".into(),
            evidence: "settings\u{3000}toggle".into(),
        })
        .then([pb::CustomerConsentGranted {
            customer_id: id().to_string(),
            channel: Push as i32,
            purpose: Service as i32,
            source: "app".into(),
            evidence: "settings toggle".into(),
        }
        .into()]);
}

// --- merges ---

fn merge_into(target: Uuid) -> CustomerCommand {
    CustomerCommand::MergeInto {
        customer_id: id(),
        target_customer_id: target,
        merge_id: merge(),
    }
}

fn absorb(source: Uuid, merge_id: Uuid) -> CustomerCommand {
    CustomerCommand::AbsorbMerge {
        customer_id: id(),
        source_customer_id: source,
        merge_id,
    }
}

fn absorbed(source: Uuid, merge_id: Uuid) -> CustomerEvent {
    pb::CustomerMergeAbsorbed {
        customer_id: id().to_string(),
        source_customer_id: source.to_string(),
        merge_id: merge_id.to_string(),
    }
    .into()
}

fn undo(merge_id: Uuid) -> CustomerCommand {
    CustomerCommand::UndoMerge {
        customer_id: id(),
        merge_id,
    }
}

#[test]
fn merge_into_records_the_target_on_the_source() {
    let state = given::<Customer>([registered()])
        .when(merge_into(other()))
        .then([merged_away()]);
    assert_eq!(
        state.merged_into,
        Some(MergeLink {
            merge_id: merge(),
            customer_id: other()
        })
    );
}

#[test]
fn a_customer_cannot_be_merged_into_itself() {
    given::<Customer>([registered()])
        .when(merge_into(id()))
        .then_invalid("target_customer_id");
    given::<Customer>([registered()])
        .when(absorb(id(), merge()))
        .then_invalid("source_customer_id");
}

#[test]
fn absorb_merge_records_the_source_and_a_customer_that_absorbed_can_absorb_more() {
    let first = Uuid::from_u128(0xA1);
    let second = Uuid::from_u128(0xA2);
    let state = given::<Customer>([registered()])
        .when(absorb(first, Uuid::from_u128(1001)))
        .then([absorbed(first, Uuid::from_u128(1001))]);
    assert_eq!(state.absorbed.len(), 1);
    let state = given::<Customer>([registered(), absorbed(first, Uuid::from_u128(1001))])
        .when(absorb(second, Uuid::from_u128(1002)))
        .then([absorbed(second, Uuid::from_u128(1002))]);
    assert_eq!(
        state.absorbed,
        [
            MergeLink {
                merge_id: Uuid::from_u128(1001),
                customer_id: first
            },
            MergeLink {
                merge_id: Uuid::from_u128(1002),
                customer_id: second
            }
        ]
    );
    // A customer that absorbed others may itself still be merged away.
    given::<Customer>([registered(), absorbed(first, Uuid::from_u128(1001))])
        .when(merge_into(other()))
        .then([merged_away()]);
}

#[test]
fn a_merged_away_customer_can_neither_be_merged_again_nor_absorb() {
    given::<Customer>([registered(), merged_away()])
        .when(merge_into(Uuid::from_u128(5)))
        .then_rejected(CUSTOMER_MERGED);
    given::<Customer>([registered(), merged_away()])
        .when(absorb(Uuid::from_u128(5), Uuid::from_u128(6)))
        .then_rejected(CUSTOMER_MERGED);
}

#[test]
fn undo_on_the_source_restores_it() {
    let state = given::<Customer>([registered(), merged_away()])
        .when(undo(merge()))
        .then([pb::CustomerMergeUndone {
            customer_id: id().to_string(),
            merge_id: merge().to_string(),
            source_customer_id: id().to_string(),
            target_customer_id: other().to_string(),
        }
        .into()]);
    assert_eq!(state.merged_into, None);
    // And it accepts commands again.
    let mut history = vec![registered(), merged_away()];
    history.push(
        pb::CustomerMergeUndone {
            customer_id: id().to_string(),
            merge_id: merge().to_string(),
            source_customer_id: id().to_string(),
            target_customer_id: other().to_string(),
        }
        .into(),
    );
    given::<Customer>(history.clone())
        .when(grant(Email, Marketing))
        .then([granted(Email, Marketing)]);
    // But the undone merge is no longer there to undo.
    given::<Customer>(history)
        .when(undo(merge()))
        .then_rejected(MERGE_NOT_FOUND);
}

#[test]
fn undo_on_the_target_drops_only_that_merge() {
    let a = Uuid::from_u128(0xA1);
    let b = Uuid::from_u128(0xA2);
    let history = [
        registered(),
        absorbed(a, Uuid::from_u128(1001)),
        absorbed(b, Uuid::from_u128(1002)),
    ];
    let state = given::<Customer>(history)
        .when(undo(Uuid::from_u128(1001)))
        .then([pb::CustomerMergeUndone {
            customer_id: id().to_string(),
            merge_id: Uuid::from_u128(1001).to_string(),
            source_customer_id: a.to_string(),
            target_customer_id: id().to_string(),
        }
        .into()]);
    assert_eq!(
        state.absorbed,
        [MergeLink {
            merge_id: Uuid::from_u128(1002),
            customer_id: b
        }]
    );
}

#[test]
fn undo_of_a_merge_that_is_not_current_is_refused() {
    given::<Customer>([registered()])
        .when(undo(merge()))
        .then_rejected(MERGE_NOT_FOUND);
    given::<Customer>([registered(), merged_away()])
        .when(undo(Uuid::from_u128(999)))
        .then_rejected(MERGE_NOT_FOUND);
}

// --- the event catalog ---

#[test]
fn every_event_round_trips_through_its_payload_and_the_catalog_is_complete() {
    let events = [
        registered(),
        updated(contact(), &[Email]),
        bounced(Postal, ContactValue::Postal(address()), Hard),
        attr_set("k", &AttributeValue::Number(1.5)),
        pb::CustomerAttributeRemoved {
            customer_id: id().to_string(),
            key: "k".into(),
        }
        .into(),
        pb::CustomerNoteAdded {
            customer_id: id().to_string(),
            note_id: Uuid::from_u128(1).to_string(),
            text: "t".into(),
            author: "a".into(),
            added_at: Some(default_now()),
        }
        .into(),
        granted(Email, Marketing),
        revoked(Email, Marketing),
        merged_away(),
        absorbed(other(), merge()),
        pb::CustomerMergeUndone {
            customer_id: id().to_string(),
            merge_id: merge().to_string(),
            source_customer_id: id().to_string(),
            target_customer_id: other().to_string(),
        }
        .into(),
    ];
    let catalog = CustomerEvent::catalog();
    assert_eq!(catalog.len(), events.len());
    for e in &events {
        assert!(catalog.contains(&(e.event_type(), 1)), "{}", e.event_type());
        let back = CustomerEvent::decode(
            e.event_type(),
            e.schema_version(),
            &e.encode_payload(),
            &Upcasters::new(),
        )
        .expect("decodes")
        .expect("known type");
        assert_eq!(&back, e);
    }
    assert_eq!(
        <pb::CustomerContactUpdated as EventMessage>::EVENT_TYPE,
        "customer.contact_updated"
    );
}
