//! The Rust side of the event catalog (`event_messages!` declarations, used
//! by every decider) and the proto side (`kizuna.v1.event_type` and
//! `schema_version` options, read from the descriptors) must name the same
//! event types with the same versions, and every upcaster must lead to a
//! version the catalog knows.

use kizuna_domain::DomainEvent;
use kizuna_domain::customer::CustomerEvent;
use kizuna_domain::lead::LeadEvent;
use kizuna_domain::survey::SurveyEvent;
use kizuna_domain::ticket::{SlaPolicyEvent, TicketEvent};
use std::collections::BTreeMap;

fn rust_catalog() -> BTreeMap<&'static str, u32> {
    let mut all = BTreeMap::new();
    for (event_type, version) in LeadEvent::catalog()
        .into_iter()
        .chain(CustomerEvent::catalog())
        .chain(TicketEvent::catalog())
        .chain(SlaPolicyEvent::catalog())
        .chain(SurveyEvent::catalog())
        .chain(kizuna_domain::campaign::CampaignEvent::catalog())
        .chain(kizuna_domain::campaign::OutreachEvent::catalog())
        .chain(kizuna_domain::loyalty::LoyaltyEvent::catalog())
        .chain(kizuna_domain::loyalty::EarningRulesEvent::catalog())
        .chain(kizuna_domain::trigger::TriggerEvent::catalog())
        .chain(kizuna_domain::trigger::TriggerCheckpointEvent::catalog())
        .chain(kizuna_domain::reward::RewardEvent::catalog())
        .chain(kizuna_domain::reward::CouponEvent::catalog())
    {
        if let Some(previous) = all.insert(event_type, version) {
            assert_eq!(
                previous, version,
                "{event_type} is declared with two versions"
            );
        }
    }
    all
}

#[test]
fn every_event_message_is_declared_on_both_sides_with_the_same_version() {
    let proto: BTreeMap<String, u32> = kizuna_proto::catalog::event_catalog()
        .into_iter()
        .map(|e| (e.event_type, e.schema_version))
        .collect();
    let rust: BTreeMap<String, u32> = rust_catalog()
        .into_iter()
        .map(|(t, v)| (t.to_owned(), v))
        .collect();
    assert_eq!(
        rust, proto,
        "left: event_messages! declarations, right: proto options"
    );
}

#[test]
fn every_older_schema_version_has_an_upcaster_chain_to_the_current_one() {
    let upcasters = kizuna_domain::upcasters();
    for (event_type, current) in rust_catalog() {
        for from in 1..current {
            assert!(
                upcasters.has_step(event_type, from),
                "{event_type} v{from} has no upcaster to v{}",
                from + 1
            );
        }
    }
}
