//! `lead.captured` v1 payloads read as v2 through the registry the services
//! use (`kizuna_domain::upcasters()`), starting from bytes stored by a v1
//! writer (`testdata/lead_captured_v1.hex`).

use kizuna_domain::decider::Decider;
use kizuna_domain::event::{DecodeError, DomainEvent};
use kizuna_domain::lead::{Lead, LeadEvent};
use kizuna_domain::pb;
use prost::Message as _;

/// The fixture's payload: hex digits, ignoring `#` comment lines and whitespace.
fn stored_v1_payload() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/lead_captured_v1.hex");
    let text = std::fs::read_to_string(path).expect("read the fixture");
    let digits: Vec<u8> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.bytes().filter(|b| !b.is_ascii_whitespace()))
        .collect();
    let pairs = digits.chunks_exact(2);
    assert!(
        !digits.is_empty() && pairs.remainder().is_empty(),
        "odd hex in fixture"
    );
    pairs
        .map(|pair| {
            let hex = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(hex, 16).expect("hex digit")
        })
        .collect()
}

fn read_v1(payload: &[u8]) -> pb::LeadCaptured {
    match LeadEvent::decode("lead.captured", 1, payload, &kizuna_domain::upcasters()) {
        Ok(Some(LeadEvent::Captured(e))) => e,
        other => panic!("expected a v2 capture, got {other:?}"),
    }
}

fn v1_named(full_name: &str) -> Vec<u8> {
    pb::LeadCapturedV1 {
        lead_id: "0190f5a2-7c41-7d3e-9a60-3f2b1c0d4e5f".into(),
        channel: pb::LeadChannel::Event.into(),
        full_name: full_name.into(),
        contact: Some(pb::ContactData {
            email: "someone@example.com".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn names_of(e: &pb::LeadCaptured) -> (&str, &str) {
    let c = e.contact.as_ref().expect("contact");
    (c.given_name.as_str(), c.family_name.as_str())
}

#[test]
fn stored_v1_bytes_read_as_the_v2_event() {
    let event = read_v1(&stored_v1_payload());
    assert_eq!(
        event,
        pb::LeadCaptured {
            lead_id: "0190f5a2-7c41-7d3e-9a60-3f2b1c0d4e5f".into(),
            source: "web-form".into(),
            channel: pb::LeadChannel::Web.into(),
            campaign_id: "0190f5a2-0000-7000-8000-00000000ca01".into(),
            contact: Some(pb::ContactData {
                given_name: "太郎".into(),
                family_name: "山田".into(),
                email: "taro@example.jp".into(),
                phone: "+819012345678".into(),
                ..Default::default()
            }),
            consents: vec![pb::ConsentGrant {
                channel: pb::ContactChannel::Email.into(),
                purpose: pb::ConsentPurpose::Marketing.into(),
            }],
        }
    );
    // And the rules see an ordinary captured lead.
    let state = Lead::fold([&LeadEvent::Captured(event)]);
    assert_eq!(state.status, pb::LeadStatus::New);
    assert_eq!(state.contact.family_name, "山田");
}

#[test]
fn western_names_put_the_family_name_last() {
    assert_eq!(
        names_of(&read_v1(&v1_named("Mary Ann Smith"))),
        ("Mary Ann", "Smith")
    );
    assert_eq!(
        names_of(&read_v1(&v1_named("ＪＯＨＮ　ＳＭＩＴＨ"))),
        ("JOHN", "SMITH")
    );
}

#[test]
fn japanese_names_put_the_family_name_first() {
    assert_eq!(names_of(&read_v1(&v1_named("鈴木 花子"))), ("花子", "鈴木"));
    assert_eq!(
        names_of(&read_v1(&v1_named("ｽｽﾞｷ　ﾊﾅｺ"))),
        ("ハナコ", "スズキ")
    );
}

#[test]
fn a_single_word_is_a_given_name_and_a_blank_name_stays_blank() {
    assert_eq!(names_of(&read_v1(&v1_named("Madonna"))), ("Madonna", ""));
    assert_eq!(names_of(&read_v1(&v1_named("花子"))), ("花子", ""));
    assert_eq!(names_of(&read_v1(&v1_named(" "))), ("", ""));
}

#[test]
fn a_v1_contact_that_already_names_the_person_is_kept() {
    let payload = pb::LeadCapturedV1 {
        full_name: "Someone Else".into(),
        contact: Some(pb::ContactData {
            given_name: "Taro".into(),
            family_name: "Yamada".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    assert_eq!(names_of(&read_v1(&payload)), ("Taro", "Yamada"));
}

#[test]
fn current_payloads_pass_unchanged_and_broken_or_future_ones_are_refused() {
    let v2 = pb::LeadCaptured {
        lead_id: "x".into(),
        ..Default::default()
    };
    let upcasters = kizuna_domain::upcasters();
    assert_eq!(
        LeadEvent::decode("lead.captured", 2, &v2.encode_to_vec(), &upcasters),
        Ok(Some(LeadEvent::Captured(v2.clone())))
    );
    assert!(matches!(
        LeadEvent::decode("lead.captured", 1, &[0x0a, 0xff], &upcasters),
        Err(DecodeError::Malformed {
            schema_version: 1,
            ..
        })
    ));
    assert!(matches!(
        LeadEvent::decode("lead.captured", 3, &v2.encode_to_vec(), &upcasters),
        Err(DecodeError::FutureVersion { known: 2, .. })
    ));
    // Without the registry, a v1 payload is not silently read as v2.
    assert!(matches!(
        LeadEvent::decode(
            "lead.captured",
            1,
            &stored_v1_payload(),
            &kizuna_domain::Upcasters::new()
        ),
        Err(DecodeError::MissingUpcaster {
            from_version: 1,
            ..
        })
    ));
}
