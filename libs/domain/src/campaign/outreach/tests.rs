//! Given / when / then for a customer's outreach: approval, each suppression
//! reason, slot release, and the invalid fields.

use super::*;
use crate::testing::{default_now, given};
use crate::time::add;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn customer() -> Uuid {
    Uuid::from_u128(0xc1)
}

fn campaign(n: u128) -> Uuid {
    Uuid::from_u128(0xca00 + n)
}

fn now_plus(d: Duration) -> Timestamp {
    add(&default_now(), d)
}

fn window() -> Window {
    Window {
        starts_at: default_now(),
        ends_at: now_plus(10 * DAY),
    }
}

fn email_marketing() -> BTreeSet<(pb::ContactChannel, pb::ConsentPurpose)> {
    BTreeSet::from([(pb::ContactChannel::Email, pb::ConsentPurpose::Marketing)])
}

/// Campaign `n`'s send with priority `priority` to the customer, on e-mail.
fn send(n: u128, priority: i32) -> DecideSend {
    DecideSend {
        customer_id: customer(),
        campaign_id: campaign(n),
        campaign_status: pb::CampaignStatus::Active,
        priority,
        channel: pb::ContactChannel::Email,
        window: window(),
        offer_code: format!("OFFER-{n}"),
        frequency_cap: FrequencyCap {
            max_sends: 2,
            per: 7 * DAY,
        },
        consents: email_marketing(),
        bounced_channels: BTreeSet::new(),
    }
}

fn decide(cmd: DecideSend) -> OutreachCommand {
    OutreachCommand::DecideSend(cmd)
}

/// Campaign `n`'s approved send `send_id` at `at`.
fn approved(n: u128, priority: i32, send_id: u128, at: Timestamp) -> OutreachEvent {
    OutreachEvent::SendApproved(pb::OutreachSendApproved {
        customer_id: customer().to_string(),
        send_id: Uuid::from_u128(send_id).to_string(),
        campaign_id: campaign(n).to_string(),
        channel: pb::ContactChannel::Email as i32,
        offer_code: format!("OFFER-{n}"),
        campaign_priority: priority,
        slot_until: Some(window().ends_at),
        approved_at: Some(at),
    })
}

fn released(n: u128, send_id: u128, at: Timestamp) -> OutreachEvent {
    OutreachEvent::SlotReleased(pb::OutreachSlotReleased {
        customer_id: customer().to_string(),
        campaign_id: campaign(n).to_string(),
        channel: pb::ContactChannel::Email as i32,
        send_id: Uuid::from_u128(send_id).to_string(),
        released_at: Some(at),
    })
}

fn release(n: u128) -> OutreachCommand {
    OutreachCommand::ReleaseSlot(ReleaseSlot {
        customer_id: customer(),
        campaign_id: campaign(n),
    })
}

/// The one suppression the command produced: its reason and conflicting campaign.
#[track_caller]
fn suppressed(events: Vec<OutreachEvent>) -> (SuppressionReason, String) {
    match events.as_slice() {
        [OutreachEvent::SendSuppressed(e)] => (
            SuppressionReason::try_from(e.reason).unwrap_or_default(),
            e.conflicting_campaign_id.clone(),
        ),
        other => panic!("expected one suppression, got {other:?}"),
    }
}

#[test]
fn a_send_with_consent_and_a_free_slot_is_approved_and_holds_the_slot() {
    let state = given::<Outreach>([])
        .when(decide(send(1, 50)))
        .then([approved(1, 50, 1, default_now())]);
    let holder = state
        .slot_holder(pb::ContactChannel::Email, &default_now())
        .expect("slot held");
    assert_eq!(holder.campaign_id, campaign(1));
    assert!(
        state
            .slot_holder(pb::ContactChannel::Email, &window().ends_at)
            .is_none(),
        "the slot ends with the window"
    );
}

#[test]
fn a_campaign_that_is_not_active_is_suppressed() {
    for status in [
        pb::CampaignStatus::Draft,
        pb::CampaignStatus::Paused,
        pb::CampaignStatus::Completed,
    ] {
        let events = given::<Outreach>([])
            .when(decide(DecideSend {
                campaign_status: status,
                // Checked first: the other failures do not matter.
                consents: BTreeSet::new(),
                ..send(1, 50)
            }))
            .events();
        assert_eq!(
            suppressed(events),
            (SuppressionReason::CampaignNotActive, String::new())
        );
    }
}

#[test]
fn a_send_outside_the_window_is_suppressed() {
    for at in [
        crate::time::sub(&window().starts_at, Duration::from_secs(1)),
        window().ends_at,
    ] {
        let events = given::<Outreach>([])
            .at(at)
            .when(decide(send(1, 50)))
            .events();
        assert_eq!(suppressed(events).0, SuppressionReason::OutsideWindow);
    }
}

#[test]
fn a_campaign_sends_its_offer_once_per_customer_and_channel() {
    let events = given::<Outreach>([approved(1, 50, 9, default_now())])
        .at(now_plus(DAY))
        .when(decide(send(1, 50)))
        .events();
    assert_eq!(suppressed(events).0, SuppressionReason::AlreadySent);
    // Even after its slot was released.
    let events = given::<Outreach>([
        approved(1, 50, 9, default_now()),
        released(1, 9, default_now()),
    ])
    .at(now_plus(DAY))
    .when(decide(send(1, 50)))
    .events();
    assert_eq!(suppressed(events).0, SuppressionReason::AlreadySent);
}

#[test]
fn a_send_without_marketing_consent_on_the_channel_is_suppressed() {
    for consents in [
        BTreeSet::new(),
        BTreeSet::from([(pb::ContactChannel::Email, pb::ConsentPurpose::Service)]),
        BTreeSet::from([(pb::ContactChannel::Sms, pb::ConsentPurpose::Marketing)]),
    ] {
        let events = given::<Outreach>([])
            .when(decide(DecideSend {
                consents,
                ..send(1, 50)
            }))
            .events();
        assert_eq!(suppressed(events).0, SuppressionReason::NoConsent);
    }
}

#[test]
fn a_send_on_a_bounced_channel_is_suppressed() {
    let events = given::<Outreach>([])
        .when(decide(DecideSend {
            bounced_channels: BTreeSet::from([pb::ContactChannel::Email]),
            ..send(1, 50)
        }))
        .events();
    assert_eq!(suppressed(events).0, SuppressionReason::ContactBounced);
    // A bounce on another channel does not matter.
    let events = given::<Outreach>([])
        .when(decide(DecideSend {
            bounced_channels: BTreeSet::from([pb::ContactChannel::Sms]),
            ..send(1, 50)
        }))
        .events();
    assert!(matches!(events[..], [OutreachEvent::SendApproved(_)]));
}

#[test]
fn a_held_slot_suppresses_other_campaigns_whatever_their_priority() {
    for priority in [10, 50, 100] {
        let events = given::<Outreach>([approved(1, 50, 9, default_now())])
            .at(now_plus(DAY))
            .when(decide(send(2, priority)))
            .then_suppressed_with_holder();
        assert_eq!(
            events,
            (SuppressionReason::ConflictingOffer, campaign(1).to_string()),
            "priority {priority}"
        );
    }
}

/// `events()` then [`suppressed`], for readability above.
trait SuppressedExt {
    fn then_suppressed_with_holder(self) -> (SuppressionReason, String);
}

impl SuppressedExt for crate::testing::Outcome<Outreach> {
    fn then_suppressed_with_holder(self) -> (SuppressionReason, String) {
        suppressed(self.events())
    }
}

#[test]
fn another_channel_has_its_own_slot() {
    let events = given::<Outreach>([approved(1, 50, 9, default_now())])
        .when(decide(DecideSend {
            channel: pb::ContactChannel::Sms,
            consents: BTreeSet::from([(pb::ContactChannel::Sms, pb::ConsentPurpose::Marketing)]),
            ..send(2, 50)
        }))
        .events();
    assert!(matches!(events[..], [OutreachEvent::SendApproved(_)]));
}

#[test]
fn the_slot_frees_when_the_holders_window_ends() {
    let later = Window {
        starts_at: default_now(),
        ends_at: now_plus(30 * DAY),
    };
    let at = window().ends_at;
    let events = given::<Outreach>([approved(1, 50, 9, default_now())])
        .at(at)
        .when(decide(DecideSend {
            window: later,
            ..send(2, 10)
        }))
        .events();
    assert!(
        matches!(events[..], [OutreachEvent::SendApproved(_)]),
        "{events:?}"
    );
}

#[test]
fn the_slot_frees_when_released() {
    let at = now_plus(DAY);
    given::<Outreach>([approved(1, 50, 9, default_now())])
        .at(at)
        .when(release(1))
        .then([released(1, 9, at)]);
    let events = given::<Outreach>([
        approved(1, 50, 9, default_now()),
        released(1, 9, default_now()),
    ])
    .at(at)
    .when(decide(send(2, 10)))
    .events();
    assert!(
        matches!(events[..], [OutreachEvent::SendApproved(_)]),
        "{events:?}"
    );
}

#[test]
fn releasing_a_slot_that_is_not_held_changes_nothing() {
    given::<Outreach>([]).when(release(1)).then([]);
    given::<Outreach>([approved(1, 50, 9, default_now())])
        .when(release(2))
        .then([]);
    given::<Outreach>([
        approved(1, 50, 9, default_now()),
        released(1, 9, default_now()),
    ])
    .when(release(1))
    .then([]);
    given::<Outreach>([approved(1, 50, 9, default_now())])
        .at(window().ends_at)
        .when(release(1))
        .then([]);
}

#[test]
fn the_frequency_cap_counts_all_campaigns_and_binds_higher_priorities_too() {
    // Two sends of released campaigns within the last 7 days: cap 2 reached.
    let history = [
        approved(1, 10, 8, default_now()),
        released(1, 8, default_now()),
        approved(2, 10, 9, now_plus(DAY)),
        released(2, 9, now_plus(DAY)),
    ];
    let events = given::<Outreach>(history.clone())
        .at(now_plus(2 * DAY))
        .when(decide(send(3, 100)))
        .events();
    assert_eq!(suppressed(events).0, SuppressionReason::FrequencyCap);
    // A campaign with a looser cap is not bound by the tighter one.
    let events = given::<Outreach>(history.clone())
        .at(now_plus(2 * DAY))
        .when(decide(DecideSend {
            frequency_cap: FrequencyCap {
                max_sends: 3,
                per: 7 * DAY,
            },
            ..send(3, 100)
        }))
        .events();
    assert!(matches!(events[..], [OutreachEvent::SendApproved(_)]));
    // Seven days after the first send it has left the trailing window.
    let events = given::<Outreach>(history)
        .at(now_plus(7 * DAY))
        .when(decide(send(3, 100)))
        .events();
    assert!(
        matches!(events[..], [OutreachEvent::SendApproved(_)]),
        "{events:?}"
    );
}

#[test]
fn suppressed_decisions_change_no_state() {
    let mut history = vec![approved(1, 50, 9, default_now())];
    let events = given::<Outreach>(history.clone())
        .when(decide(send(2, 90)))
        .events();
    history.extend(events);
    let state = given::<Outreach>(history).state();
    assert_eq!(state.sends.len(), 1);
}

#[test]
fn invalid_decisions_are_errors_not_suppressions() {
    let cases: Vec<(&str, DecideSend)> = vec![
        (
            "customer_id",
            DecideSend {
                customer_id: Uuid::nil(),
                ..send(1, 50)
            },
        ),
        (
            "campaign_id",
            DecideSend {
                campaign_id: Uuid::nil(),
                ..send(1, 50)
            },
        ),
        (
            "campaign_status",
            DecideSend {
                campaign_status: pb::CampaignStatus::Unspecified,
                ..send(1, 50)
            },
        ),
        ("priority", send(1, 0)),
        ("priority", send(1, 101)),
        (
            "channel",
            DecideSend {
                channel: pb::ContactChannel::Unspecified,
                ..send(1, 50)
            },
        ),
        (
            "window.ends_at",
            DecideSend {
                window: Window {
                    starts_at: window().ends_at,
                    ends_at: window().starts_at,
                },
                ..send(1, 50)
            },
        ),
        (
            "offer_code",
            DecideSend {
                offer_code: String::new(),
                ..send(1, 50)
            },
        ),
        (
            "frequency_cap.max_sends",
            DecideSend {
                frequency_cap: FrequencyCap {
                    max_sends: 0,
                    per: DAY,
                },
                ..send(1, 50)
            },
        ),
        (
            "frequency_cap.per",
            DecideSend {
                frequency_cap: FrequencyCap {
                    max_sends: 1,
                    per: Duration::ZERO,
                },
                ..send(1, 50)
            },
        ),
    ];
    for (field, cmd) in cases {
        given::<Outreach>([]).when(decide(cmd)).then_invalid(field);
    }
    for (field, cmd) in [
        (
            "customer_id",
            ReleaseSlot {
                customer_id: Uuid::nil(),
                campaign_id: campaign(1),
            },
        ),
        (
            "campaign_id",
            ReleaseSlot {
                customer_id: customer(),
                campaign_id: Uuid::nil(),
            },
        ),
    ] {
        given::<Outreach>([])
            .when(OutreachCommand::ReleaseSlot(cmd))
            .then_invalid(field);
    }
}

#[test]
fn decide_send_is_filled_from_the_campaign() {
    use crate::campaign::{Campaign, CampaignCommand, CreateCampaign, Money};
    let state = given::<Campaign>([])
        .when(CampaignCommand::Create(CreateCampaign {
            campaign_id: Some(campaign(1)),
            name: "Spring".into(),
            channel: pb::ContactChannel::Email,
            customer_ids: vec![customer()],
            window: window(),
            budget: Money::new(0, "JPY"),
            offer_code: "offer-1".into(),
            offer_description: String::new(),
            priority: 50,
            frequency_cap: send(1, 50).frequency_cap,
        }))
        .events();
    let campaign_state = given::<Campaign>(state).state();
    let data = campaign_state.campaign.expect("created");
    let cmd = DecideSend::new(&data, customer(), email_marketing(), BTreeSet::new());
    assert_eq!(
        cmd,
        DecideSend {
            campaign_status: pb::CampaignStatus::Draft,
            ..send(1, 50)
        }
    );
}
