//! The lead's rules, command by command, each rejection included.

use super::*;
use crate::testing::given;
use pb::LeadStatus as S;

fn jp() -> Region {
    "JP".parse().expect("JP")
}

fn lead() -> Uuid {
    Uuid::from_u128(0x1ead)
}

fn other_lead() -> Uuid {
    Uuid::from_u128(0x2ead)
}

fn customer() -> Uuid {
    Uuid::from_u128(0xc0)
}

fn consent(channel: pb::ContactChannel, purpose: pb::ConsentPurpose) -> pb::ConsentGrant {
    pb::ConsentGrant {
        channel: channel.into(),
        purpose: purpose.into(),
    }
}

fn email_marketing() -> pb::ConsentGrant {
    consent(pb::ContactChannel::Email, pb::ConsentPurpose::Marketing)
}

fn sms_service() -> pb::ConsentGrant {
    consent(pb::ContactChannel::Sms, pb::ConsentPurpose::Service)
}

/// Contact data as a person types it on a Japanese keyboard.
fn typed_contact() -> pb::ContactData {
    pb::ContactData {
        given_name: "太郎".into(),
        family_name: "山田\u{3000}".into(),
        email: " Ｔａｒｏ＠Ｅｘａｍｐｌｅ.ＪＰ ".into(),
        phone: "０９０-１２３４-５６７８".into(),
        ..Default::default()
    }
}

/// [`typed_contact`] after the input rule.
fn stored_contact() -> pb::ContactData {
    pb::ContactData {
        given_name: "太郎".into(),
        family_name: "山田".into(),
        email: "taro@example.jp".into(),
        phone: "+819012345678".into(),
        ..Default::default()
    }
}

fn capture_command(lead_id: Option<Uuid>) -> CaptureLead {
    CaptureLead {
        lead_id,
        source: " web-form ".into(),
        channel: pb::LeadChannel::Web,
        campaign_id: Some(Uuid::from_u128(0xca)),
        contact: typed_contact(),
        consents: vec![email_marketing()],
        region: jp(),
    }
}

fn captured_event(lead_id: Uuid) -> LeadEvent {
    LeadEvent::Captured(pb::LeadCaptured {
        lead_id: lead_id.to_string(),
        source: "web-form".into(),
        channel: pb::LeadChannel::Web.into(),
        campaign_id: Uuid::from_u128(0xca).to_string(),
        contact: Some(stored_contact()),
        consents: vec![email_marketing()],
    })
}

fn captured() -> LeadEvent {
    captured_event(lead())
}

fn moved(from: S, to: S, reason: &str) -> LeadEvent {
    LeadEvent::StatusChanged(pb::LeadStatusChanged {
        lead_id: lead().to_string(),
        from_status: from.into(),
        to_status: to.into(),
        reason: reason.into(),
    })
}

fn converted() -> LeadEvent {
    LeadEvent::Converted(pb::LeadConverted {
        lead_id: lead().to_string(),
        customer_id: customer().to_string(),
    })
}

fn merged() -> LeadEvent {
    LeadEvent::Merged(pb::LeadMerged {
        lead_id: lead().to_string(),
        survivor_lead_id: other_lead().to_string(),
    })
}

/// A history that leaves the lead in `status` by allowed steps.
fn lead_in(status: S) -> Vec<LeadEvent> {
    let mut h = vec![captured()];
    match status {
        S::Unspecified => h.clear(),
        S::New => {}
        S::Working => h.push(moved(S::New, S::Working, "")),
        S::Nurturing => h.extend([
            moved(S::New, S::Working, ""),
            moved(S::Working, S::Nurturing, ""),
        ]),
        S::Qualified => h.extend([
            moved(S::New, S::Working, ""),
            moved(S::Working, S::Qualified, ""),
        ]),
        S::Disqualified => h.push(moved(S::New, S::Disqualified, "spam")),
        S::Converted => h.extend([
            moved(S::New, S::Working, ""),
            moved(S::Working, S::Qualified, ""),
            converted(),
        ]),
        S::Merged => h.push(merged()),
    }
    h
}

const ALL: [S; 8] = [
    S::Unspecified,
    S::New,
    S::Working,
    S::Nurturing,
    S::Qualified,
    S::Disqualified,
    S::Converted,
    S::Merged,
];

#[test]
fn the_helper_histories_reach_the_status_they_name() {
    for status in ALL {
        assert_eq!(given::<Lead>(lead_in(status)).state().status, status);
    }
}

// --- capture ---

#[test]
fn capture_records_normalised_contact_and_starts_new() {
    let state = given::<Lead>([])
        .when(LeadCommand::Capture(capture_command(Some(lead()))))
        .then([captured()]);
    assert_eq!(state.status, S::New);
    assert_eq!(state.contact, stored_contact());
    assert_eq!(state.lead_id, lead().to_string());
}

#[test]
fn capture_without_an_id_takes_the_next_id_of_the_context() {
    given::<Lead>([])
        .when(LeadCommand::Capture(capture_command(None)))
        .then([captured_event(Uuid::from_u128(1))]);
}

#[test]
fn capture_with_a_taken_id_already_exists() {
    given::<Lead>([captured()])
        .when(LeadCommand::Capture(capture_command(Some(lead()))))
        .then_error(DomainError::already_exists("lead", lead()));
}

#[test]
fn capture_needs_an_email_or_a_phone() {
    let mut c = capture_command(Some(lead()));
    c.contact.email = " ".into();
    c.contact.phone = String::new();
    given::<Lead>([])
        .when(LeadCommand::Capture(c.clone()))
        .then_invalid("contact");
    // Either one is enough.
    c.contact.phone = "03-1234-5678".into();
    let events = given::<Lead>([]).when(LeadCommand::Capture(c)).events();
    let LeadEvent::Captured(e) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        e.contact.as_ref().map(|c| c.phone.as_str()),
        Some("+81312345678")
    );
}

#[test]
fn capture_names_the_malformed_contact_field() {
    let mut c = capture_command(Some(lead()));
    c.contact.email = "taro@".into();
    given::<Lead>([])
        .when(LeadCommand::Capture(c))
        .then_invalid("contact.email");
    let mut c = capture_command(Some(lead()));
    c.contact.phone = "090-1234-567".into();
    given::<Lead>([])
        .when(LeadCommand::Capture(c))
        .then_invalid("contact.phone");
}

#[test]
fn capture_requires_a_channel() {
    let mut c = capture_command(Some(lead()));
    c.channel = pb::LeadChannel::Unspecified;
    given::<Lead>([])
        .when(LeadCommand::Capture(c))
        .then_invalid("channel");
}

#[test]
fn capture_limits_the_source() {
    let mut c = capture_command(Some(lead()));
    c.source = "x".repeat(MAX_SOURCE_CHARS + 1);
    given::<Lead>([])
        .when(LeadCommand::Capture(c.clone()))
        .then_invalid("source");
    c.source = "web\u{7}form".into();
    given::<Lead>([])
        .when(LeadCommand::Capture(c.clone()))
        .then_invalid("source");
    // Exactly the limit, and an empty source, are fine.
    c.source = "x".repeat(MAX_SOURCE_CHARS);
    given::<Lead>([])
        .when(LeadCommand::Capture(c.clone()))
        .events();
    c.source = String::new();
    given::<Lead>([]).when(LeadCommand::Capture(c)).events();
}

#[test]
fn capture_refuses_repeated_or_unspecified_consents() {
    let mut c = capture_command(Some(lead()));
    c.consents = vec![email_marketing(), sms_service(), email_marketing()];
    given::<Lead>([])
        .when(LeadCommand::Capture(c.clone()))
        .then_invalid("consents[2]");
    c.consents = vec![consent(
        pb::ContactChannel::Unspecified,
        pb::ConsentPurpose::Marketing,
    )];
    given::<Lead>([])
        .when(LeadCommand::Capture(c.clone()))
        .then_invalid("consents[0].channel");
    c.consents = vec![
        sms_service(),
        consent(pb::ContactChannel::Email, pb::ConsentPurpose::Unspecified),
    ];
    given::<Lead>([])
        .when(LeadCommand::Capture(c.clone()))
        .then_invalid("consents[1].purpose");
    c.consents = vec![pb::ConsentGrant {
        channel: 99,
        purpose: 1,
    }];
    given::<Lead>([])
        .when(LeadCommand::Capture(c.clone()))
        .then_invalid("consents[0].channel");
    c.consents = vec![pb::ConsentGrant {
        channel: 1,
        purpose: 42,
    }];
    given::<Lead>([])
        .when(LeadCommand::Capture(c))
        .then_invalid("consents[0].purpose");
}

// --- update contact ---

fn update(contact: pb::ContactData) -> LeadCommand {
    LeadCommand::UpdateContact {
        lead_id: lead(),
        contact,
        region: jp(),
    }
}

#[test]
fn update_contact_records_the_complete_normalised_data() {
    let typed = pb::ContactData {
        email: "HANAKO@example.jp".into(),
        company: "ＡＣＭＥ".into(),
        ..Default::default()
    };
    let state = given::<Lead>([captured()])
        .when(update(typed))
        .then([LeadEvent::ContactUpdated(pb::LeadContactUpdated {
            lead_id: lead().to_string(),
            contact: Some(pb::ContactData {
                email: "hanako@example.jp".into(),
                company: "ACME".into(),
                ..Default::default()
            }),
        })]);
    assert_eq!(state.contact.phone, "", "fields left empty are cleared");
}

#[test]
fn update_contact_that_normalises_to_the_current_data_changes_nothing() {
    given::<Lead>([captured()])
        .when(update(typed_contact()))
        .then([]);
}

#[test]
fn update_contact_needs_an_email_or_a_phone() {
    given::<Lead>([captured()])
        .when(update(pb::ContactData {
            given_name: "Taro".into(),
            ..Default::default()
        }))
        .then_invalid("contact");
}

#[test]
fn update_contact_names_the_malformed_field() {
    let mut contact = typed_contact();
    contact.postal_address = Some(pb::PostalAddress {
        country: "JPN".into(),
        ..Default::default()
    });
    given::<Lead>([captured()])
        .when(update(contact))
        .then_invalid("contact.postal_address.country");
}

#[test]
fn update_contact_of_an_unknown_lead_is_not_found() {
    given::<Lead>([])
        .when(update(typed_contact()))
        .then_not_found("lead");
}

#[test]
fn update_contact_of_a_closed_lead_is_rejected() {
    given::<Lead>(lead_in(S::Converted))
        .when(update(typed_contact()))
        .then_rejected(LEAD_CONVERTED);
    given::<Lead>(lead_in(S::Merged))
        .when(update(typed_contact()))
        .then_rejected(LEAD_MERGED);
}

// --- score ---

fn score(score: i32, reason: &str) -> LeadCommand {
    LeadCommand::Score {
        lead_id: lead(),
        score,
        reason: reason.into(),
    }
}

#[test]
fn score_records_score_and_reason() {
    let state = given::<Lead>([captured()])
        .when(score(80, " asked for a quote "))
        .then([LeadEvent::Scored(pb::LeadScored {
            lead_id: lead().to_string(),
            score: 80,
            reason: "asked for a quote".into(),
        })]);
    assert_eq!(state.score, Some(80));
    assert_eq!(state.score_reason, "asked for a quote");
    // The ends of the range are scores too.
    given::<Lead>([captured()]).when(score(0, "cold")).events();
    given::<Lead>([captured()]).when(score(100, "hot")).events();
}

#[test]
fn score_outside_0_to_100_is_invalid() {
    for s in [-1, 101, i32::MIN, i32::MAX] {
        given::<Lead>([captured()])
            .when(score(s, "why"))
            .then_invalid("score");
    }
}

#[test]
fn score_needs_a_reason_of_at_most_500_characters() {
    given::<Lead>([captured()])
        .when(score(50, " \u{3000} "))
        .then_invalid("reason");
    given::<Lead>([captured()])
        .when(score(50, &"あ".repeat(MAX_REASON_CHARS + 1)))
        .then_invalid("reason");
    given::<Lead>([captured()])
        .when(score(50, &"あ".repeat(MAX_REASON_CHARS)))
        .events();
}

#[test]
fn score_of_an_unknown_or_closed_lead_is_refused() {
    given::<Lead>([]).when(score(5, "x")).then_not_found("lead");
    given::<Lead>(lead_in(S::Converted))
        .when(score(5, "x"))
        .then_rejected(LEAD_CONVERTED);
    given::<Lead>(lead_in(S::Merged))
        .when(score(5, "x"))
        .then_rejected(LEAD_MERGED);
}

// --- change status ---

fn change(status: S, reason: &str) -> LeadCommand {
    LeadCommand::ChangeStatus {
        lead_id: lead(),
        status,
        reason: reason.into(),
    }
}

/// The table, written out pair by pair so it is checked against
/// [`transition_allowed`] rather than restating it.
const ALLOWED: [(S, S); 11] = [
    (S::New, S::Working),
    (S::New, S::Disqualified),
    (S::Working, S::Nurturing),
    (S::Working, S::Qualified),
    (S::Working, S::Disqualified),
    (S::Nurturing, S::Working),
    (S::Nurturing, S::Qualified),
    (S::Nurturing, S::Disqualified),
    (S::Qualified, S::Working),
    (S::Qualified, S::Disqualified),
    (S::Disqualified, S::Working),
];

#[test]
fn every_allowed_change_is_recorded_with_from_and_to() {
    for (from, to) in ALLOWED {
        let state = given::<Lead>(lead_in(from))
            .when(change(to, "because"))
            .then([moved(from, to, "because")]);
        assert_eq!(state.status, to);
        assert_eq!(state.status_reason, "because");
    }
}

#[test]
fn every_other_change_between_open_statuses_is_an_invalid_transition() {
    let open = [
        S::New,
        S::Working,
        S::Nurturing,
        S::Qualified,
        S::Disqualified,
    ];
    for from in open {
        for to in open {
            if ALLOWED.contains(&(from, to)) {
                continue;
            }
            assert!(!transition_allowed(from, to), "{from:?} -> {to:?}");
            given::<Lead>(lead_in(from))
                .when(change(to, "because"))
                .then_rejected(INVALID_STATUS_TRANSITION);
        }
    }
    for (from, to) in ALLOWED {
        assert!(transition_allowed(from, to), "{from:?} -> {to:?}");
    }
}

#[test]
fn disqualifying_needs_a_reason_and_other_changes_do_not() {
    given::<Lead>(lead_in(S::Working))
        .when(change(S::Disqualified, "  "))
        .then_invalid("reason");
    given::<Lead>(lead_in(S::Working))
        .when(change(S::Qualified, ""))
        .then([moved(S::Working, S::Qualified, "")]);
    given::<Lead>(lead_in(S::Working))
        .when(change(S::Nurturing, &"x".repeat(MAX_REASON_CHARS + 1)))
        .then_invalid("reason");
}

#[test]
fn the_final_statuses_and_unspecified_cannot_be_requested() {
    for status in [S::Unspecified, S::Converted, S::Merged] {
        given::<Lead>(lead_in(S::Qualified))
            .when(change(status, "x"))
            .then_invalid("status");
    }
}

#[test]
fn status_of_an_unknown_or_closed_lead_is_refused() {
    given::<Lead>([])
        .when(change(S::Working, ""))
        .then_not_found("lead");
    given::<Lead>(lead_in(S::Converted))
        .when(change(S::Working, ""))
        .then_rejected(LEAD_CONVERTED);
    given::<Lead>(lead_in(S::Merged))
        .when(change(S::Working, ""))
        .then_rejected(LEAD_MERGED);
}

// --- convert ---

fn convert(customer_id: Option<Uuid>) -> LeadCommand {
    LeadCommand::Convert {
        lead_id: lead(),
        customer_id,
    }
}

#[test]
fn a_qualified_lead_converts_into_the_given_customer() {
    let state = given::<Lead>(lead_in(S::Qualified))
        .when(convert(Some(customer())))
        .then([converted()]);
    assert_eq!(state.status, S::Converted);
    assert_eq!(state.customer_id, customer().to_string());
}

#[test]
fn convert_without_a_customer_id_takes_the_next_id_of_the_context() {
    given::<Lead>(lead_in(S::Qualified))
        .when(convert(None))
        .then([LeadEvent::Converted(pb::LeadConverted {
            lead_id: lead().to_string(),
            customer_id: Uuid::from_u128(1).to_string(),
        })]);
}

#[test]
fn only_a_qualified_lead_converts() {
    for status in [S::New, S::Working, S::Nurturing, S::Disqualified] {
        given::<Lead>(lead_in(status))
            .when(convert(None))
            .then_rejected(LEAD_NOT_QUALIFIED);
    }
}

#[test]
fn a_lead_without_email_or_phone_does_not_convert() {
    // Only a v1 capture can leave a lead like this.
    let mut history = lead_in(S::Qualified);
    history[0] = LeadEvent::Captured(pb::LeadCaptured {
        lead_id: lead().to_string(),
        channel: pb::LeadChannel::Store.into(),
        contact: Some(pb::ContactData {
            given_name: "Taro".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    given::<Lead>(history)
        .when(convert(None))
        .then_rejected(LEAD_HAS_NO_CONTACT);
}

#[test]
fn convert_of_an_unknown_or_closed_lead_is_refused() {
    given::<Lead>([]).when(convert(None)).then_not_found("lead");
    given::<Lead>(lead_in(S::Converted))
        .when(convert(None))
        .then_rejected(LEAD_CONVERTED);
    given::<Lead>(lead_in(S::Merged))
        .when(convert(None))
        .then_rejected(LEAD_MERGED);
}

#[test]
fn the_customer_registration_carries_the_leads_contact_and_consents() {
    let state = given::<Lead>(lead_in(S::Qualified)).state();
    assert_eq!(
        customer_registration(&state, customer()),
        pb::CustomerRegistered {
            customer_id: customer().to_string(),
            contact: Some(stored_contact()),
            converted_from_lead_id: lead().to_string(),
            consents: vec![email_marketing()],
            source: "web-form".into(),
        }
    );
}

// --- merge ---

fn merge_into(survivor: Uuid) -> LeadCommand {
    LeadCommand::MergeInto {
        lead_id: lead(),
        survivor_lead_id: survivor,
    }
}

#[test]
fn an_open_lead_merges_into_another() {
    for status in [
        S::New,
        S::Working,
        S::Nurturing,
        S::Qualified,
        S::Disqualified,
    ] {
        let state = given::<Lead>(lead_in(status))
            .when(merge_into(other_lead()))
            .then([merged()]);
        assert_eq!(state.status, S::Merged);
        assert_eq!(state.survivor_lead_id, other_lead().to_string());
    }
}

#[test]
fn a_lead_does_not_merge_into_itself() {
    given::<Lead>([captured()])
        .when(merge_into(lead()))
        .then_invalid("duplicate_lead_id");
}

#[test]
fn merge_of_an_unknown_or_closed_lead_is_refused() {
    given::<Lead>([])
        .when(merge_into(other_lead()))
        .then_not_found("lead");
    given::<Lead>(lead_in(S::Converted))
        .when(merge_into(other_lead()))
        .then_rejected(LEAD_CONVERTED);
    given::<Lead>(lead_in(S::Merged))
        .when(merge_into(Uuid::from_u128(0x3ead)))
        .then_rejected(LEAD_MERGED);
}

// --- absorb ---

fn absorb(contact: pb::ContactData, consents: Vec<pb::ConsentGrant>) -> LeadCommand {
    LeadCommand::AbsorbDuplicate {
        lead_id: lead(),
        duplicate_lead_id: other_lead(),
        duplicate_contact: contact,
        duplicate_consents: consents,
    }
}

#[test]
fn absorbing_takes_over_what_the_survivor_lacks_and_keeps_what_it_has() {
    let duplicate = pb::ContactData {
        given_name: "Hanako".into(),
        family_name: "Suzuki".into(),
        email: "hanako@example.jp".into(),
        company: "ACME".into(),
        postal_address: Some(pb::PostalAddress {
            locality: "千代田区".into(),
            country: "JP".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut expected_contact = stored_contact();
    expected_contact.company = "ACME".into();
    expected_contact.postal_address = duplicate.postal_address.clone();
    let state = given::<Lead>([captured()])
        .when(absorb(
            duplicate.clone(),
            vec![sms_service(), email_marketing(), sms_service()],
        ))
        .then([LeadEvent::DuplicateAbsorbed(pb::LeadDuplicateAbsorbed {
            lead_id: lead().to_string(),
            duplicate_lead_id: other_lead().to_string(),
            duplicate_contact: Some(duplicate),
            contact: Some(expected_contact.clone()),
            consents_taken_over: vec![sms_service()],
        })]);
    assert_eq!(state.contact, expected_contact);
    assert_eq!(state.consents, vec![email_marketing(), sms_service()]);
    assert_eq!(state.absorbed_lead_ids, vec![other_lead().to_string()]);
    assert_eq!(state.status, S::New, "absorbing does not change the status");
}

#[test]
fn a_name_is_taken_over_only_as_a_pair() {
    let mut survivor = captured();
    if let LeadEvent::Captured(e) = &mut survivor {
        e.contact = Some(pb::ContactData {
            email: "a@example.jp".into(),
            ..Default::default()
        });
    }
    let duplicate = pb::ContactData {
        given_name: "Hanako".into(),
        family_name: "Suzuki".into(),
        email: "b@example.jp".into(),
        ..Default::default()
    };
    let state = given::<Lead>([survivor.clone()])
        .when(absorb(duplicate.clone(), vec![]))
        .events()
        .iter()
        .fold(given::<Lead>([survivor.clone()]).state(), Lead::evolve);
    assert_eq!(
        (
            state.contact.given_name.as_str(),
            state.contact.family_name.as_str()
        ),
        ("Hanako", "Suzuki")
    );
    assert_eq!(state.contact.email, "a@example.jp");

    // A survivor with only a family name keeps it and gets no given name.
    if let LeadEvent::Captured(e) = &mut survivor
        && let Some(c) = e.contact.as_mut()
    {
        c.family_name = "Sato".into();
    }
    let state = given::<Lead>([survivor.clone()])
        .when(absorb(duplicate, vec![]))
        .events()
        .iter()
        .fold(given::<Lead>([survivor]).state(), Lead::evolve);
    assert_eq!(
        (
            state.contact.given_name.as_str(),
            state.contact.family_name.as_str()
        ),
        ("", "Sato")
    );
}

#[test]
fn a_lead_does_not_absorb_itself() {
    given::<Lead>([captured()])
        .when(LeadCommand::AbsorbDuplicate {
            lead_id: lead(),
            duplicate_lead_id: lead(),
            duplicate_contact: stored_contact(),
            duplicate_consents: vec![],
        })
        .then_invalid("duplicate_lead_id");
}

#[test]
fn absorb_into_an_unknown_or_closed_lead_is_refused() {
    given::<Lead>([])
        .when(absorb(stored_contact(), vec![]))
        .then_not_found("lead");
    given::<Lead>(lead_in(S::Converted))
        .when(absorb(stored_contact(), vec![]))
        .then_rejected(LEAD_CONVERTED);
    given::<Lead>(lead_in(S::Merged))
        .when(absorb(stored_contact(), vec![]))
        .then_rejected(LEAD_MERGED);
}

// --- names and the catalog ---

#[test]
fn full_names_split_by_script() {
    for (full, given_name, family_name) in [
        ("Mary Ann Smith", "Mary Ann", "Smith"),
        ("  John   SMITH ", "John", "SMITH"),
        ("ＪＯＨＮ\u{3000}ＳＭＩＴＨ", "JOHN", "SMITH"),
        ("山田 太郎", "太郎", "山田"),
        ("山田\u{3000}花 子", "花 子", "山田"),
        ("やまだ たろう", "たろう", "やまだ"),
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "タロウ", "ヤマダ"),
        ("Cher", "Cher", ""),
        ("山田太郎", "山田太郎", ""),
        ("", "", ""),
        (" \u{3000} ", "", ""),
    ] {
        assert_eq!(
            split_full_name(full),
            (given_name.to_owned(), family_name.to_owned()),
            "{full:?}"
        );
    }
}

#[test]
fn the_event_catalog_matches_the_proto_options() {
    use crate::event::DomainEvent as _;
    let proto: std::collections::HashMap<String, (u32, String)> =
        kizuna_proto::catalog::event_catalog()
            .into_iter()
            .map(|e| (e.event_type, (e.schema_version, e.message)))
            .collect();
    let ours = LeadEvent::catalog();
    assert_eq!(ours.len(), 7);
    for (event_type, version) in ours {
        let (proto_version, message) = proto
            .get(event_type)
            .unwrap_or_else(|| panic!("{event_type} has no event_type option in the protos"));
        assert_eq!(*proto_version, version, "{event_type} ({message})");
    }
    assert!(
        !proto.values().any(|(_, m)| m == "kizuna.v1.LeadCapturedV1"),
        "the v1 shape must not claim an event type of its own"
    );
}
