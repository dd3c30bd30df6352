//! Given / when / then for the campaign: every command, each rejection, and
//! the ROI that follows from its events.

use super::*;
use crate::event::DomainEvent;
use crate::testing::{default_now, given};
use crate::time::add;

const DAY: Duration = Duration::from_secs(86_400);

fn campaign_id() -> Uuid {
    Uuid::from_u128(0xca)
}

fn customer(n: u128) -> Uuid {
    Uuid::from_u128(0xc000 + n)
}

fn send_id() -> Uuid {
    Uuid::from_u128(0x5e)
}

fn now_plus(d: Duration) -> Timestamp {
    add(&default_now(), d)
}

fn window() -> Window {
    Window {
        starts_at: now_plus(DAY),
        ends_at: now_plus(8 * DAY),
    }
}

fn cap() -> FrequencyCap {
    FrequencyCap {
        max_sends: 2,
        per: 7 * DAY,
    }
}

fn create_cmd() -> CreateCampaign {
    CreateCampaign {
        campaign_id: Some(campaign_id()),
        name: "  Spring sale ".into(),
        channel: pb::ContactChannel::Email,
        customer_ids: vec![customer(1), customer(2), customer(1)],
        window: window(),
        budget: Money::new(500_000, "JPY"),
        offer_code: " spring-10 ".into(),
        offer_description: "10 % off everything".into(),
        priority: 50,
        frequency_cap: cap(),
    }
}

fn created() -> CampaignEvent {
    CampaignEvent::Created(pb::CampaignCreated {
        campaign_id: campaign_id().to_string(),
        name: "Spring sale".into(),
        channel: pb::ContactChannel::Email as i32,
        customer_ids: vec![customer(1).to_string(), customer(2).to_string()],
        window: Some(window().to_proto()),
        budget: Some(pb::CampaignBudget {
            amount_minor: 500_000,
            currency: "JPY".into(),
        }),
        offer: Some(pb::CampaignOffer {
            offer_code: "SPRING-10".into(),
            description: "10 % off everything".into(),
        }),
        priority: 50,
        frequency_cap: Some(cap().to_proto()),
        created_at: Some(default_now()),
    })
}

fn status_changed(from: pb::CampaignStatus, to: pb::CampaignStatus) -> CampaignEvent {
    CampaignEvent::StatusChanged(pb::CampaignStatusChanged {
        campaign_id: campaign_id().to_string(),
        from_status: from as i32,
        to_status: to as i32,
        changed_at: Some(default_now()),
    })
}

fn launched() -> CampaignEvent {
    status_changed(pb::CampaignStatus::Draft, pb::CampaignStatus::Active)
}

fn paused() -> CampaignEvent {
    status_changed(pb::CampaignStatus::Active, pb::CampaignStatus::Paused)
}

fn completed() -> CampaignEvent {
    status_changed(pb::CampaignStatus::Active, pb::CampaignStatus::Completed)
}

fn id() -> Uuid {
    campaign_id()
}

fn send(customer_id: Uuid) -> SendRef {
    SendRef {
        campaign_id: campaign_id(),
        send_id: send_id(),
        customer_id,
    }
}

fn respond(response: Response) -> CampaignCommand {
    CampaignCommand::RecordResponse(RecordResponse {
        send: send(customer(1)),
        response,
    })
}

fn delivered() -> CampaignEvent {
    CampaignEvent::MessageDelivered(pb::CampaignMessageDelivered {
        campaign_id: campaign_id().to_string(),
        send_id: send_id().to_string(),
        customer_id: customer(1).to_string(),
        recorded_at: Some(default_now()),
    })
}

fn convert(order_id: &str, amount: i64, currency: &str) -> CampaignCommand {
    CampaignCommand::AttributeConversion(AttributeConversion {
        send: send(customer(1)),
        order_id: order_id.into(),
        revenue: Money::new(amount, currency),
    })
}

fn cost(amount: i64, currency: &str, reason: &str) -> CampaignCommand {
    CampaignCommand::RecordCost(RecordCost {
        send: send(customer(1)),
        cost: Money::new(amount, currency),
        reason: reason.into(),
    })
}

fn conversion_attributed(order_id: &str, amount: i64) -> CampaignEvent {
    CampaignEvent::ConversionAttributed(pb::CampaignConversionAttributed {
        campaign_id: campaign_id().to_string(),
        send_id: send_id().to_string(),
        customer_id: customer(1).to_string(),
        order_id: order_id.into(),
        revenue_amount_minor: amount,
        currency: "JPY".into(),
        recorded_at: Some(default_now()),
    })
}

fn cost_recorded(amount: i64) -> CampaignEvent {
    CampaignEvent::CostRecorded(pb::CampaignCostRecorded {
        campaign_id: campaign_id().to_string(),
        send_id: send_id().to_string(),
        customer_id: customer(1).to_string(),
        amount_minor: amount,
        currency: "JPY".into(),
        reason: "SMS fee".into(),
        recorded_at: Some(default_now()),
    })
}

// --- create -----------------------------------------------------------------

#[test]
fn create_records_normalised_values_and_a_distinct_audience() {
    let state = given::<Campaign>([])
        .when(CampaignCommand::Create(create_cmd()))
        .then([created()]);
    let c = state.campaign.expect("created");
    assert_eq!(c.status, pb::CampaignStatus::Draft);
    assert_eq!(c.audience.len(), 2);
    assert_eq!(c.frequency_cap, cap());
    assert_eq!(c.window, window());
}

#[test]
fn create_without_an_id_takes_the_first_context_id() {
    let events = given::<Campaign>([])
        .when(CampaignCommand::Create(CreateCampaign {
            campaign_id: None,
            ..create_cmd()
        }))
        .events();
    let CampaignEvent::Created(e) = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(e.campaign_id, Uuid::from_u128(1).to_string());
}

#[test]
fn create_on_an_existing_campaign_is_already_exists() {
    given::<Campaign>([created()])
        .when(CampaignCommand::Create(create_cmd()))
        .then_error(DomainError::already_exists("campaign", campaign_id()));
}

#[test]
fn create_rejects_each_invalid_field() {
    let cases: Vec<(&str, CreateCampaign)> = vec![
        (
            "campaign_id",
            CreateCampaign {
                campaign_id: Some(Uuid::nil()),
                ..create_cmd()
            },
        ),
        (
            "name",
            CreateCampaign {
                name: "   ".into(),
                ..create_cmd()
            },
        ),
        (
            "name",
            CreateCampaign {
                name: "x".repeat(MAX_NAME_CHARS + 1),
                ..create_cmd()
            },
        ),
        (
            "channel",
            CreateCampaign {
                channel: pb::ContactChannel::Unspecified,
                ..create_cmd()
            },
        ),
        (
            "customer_ids[1]",
            CreateCampaign {
                customer_ids: vec![customer(1), Uuid::nil()],
                ..create_cmd()
            },
        ),
        (
            "customer_ids",
            CreateCampaign {
                customer_ids: (0..=MAX_AUDIENCE as u128).map(customer).collect(),
                ..create_cmd()
            },
        ),
        (
            "window.ends_at",
            CreateCampaign {
                window: Window {
                    starts_at: window().ends_at,
                    ends_at: window().ends_at,
                },
                ..create_cmd()
            },
        ),
        (
            "budget.amount_minor",
            CreateCampaign {
                budget: Money::new(-1, "JPY"),
                ..create_cmd()
            },
        ),
        (
            "budget.amount_minor",
            CreateCampaign {
                budget: Money::new(MAX_AMOUNT_MINOR + 1, "JPY"),
                ..create_cmd()
            },
        ),
        (
            "budget.currency",
            CreateCampaign {
                budget: Money::new(1, "YEN!"),
                ..create_cmd()
            },
        ),
        (
            "offer.offer_code",
            CreateCampaign {
                offer_code: " ".into(),
                ..create_cmd()
            },
        ),
        (
            "offer.offer_code",
            CreateCampaign {
                offer_code: "10 % OFF".into(),
                ..create_cmd()
            },
        ),
        (
            "offer.description",
            CreateCampaign {
                offer_description: "x".repeat(MAX_OFFER_DESCRIPTION_CHARS + 1),
                ..create_cmd()
            },
        ),
        (
            "priority",
            CreateCampaign {
                priority: 0,
                ..create_cmd()
            },
        ),
        (
            "priority",
            CreateCampaign {
                priority: 101,
                ..create_cmd()
            },
        ),
        (
            "frequency_cap.max_sends",
            CreateCampaign {
                frequency_cap: FrequencyCap {
                    max_sends: 0,
                    per: DAY,
                },
                ..create_cmd()
            },
        ),
        (
            "frequency_cap.per",
            CreateCampaign {
                frequency_cap: FrequencyCap {
                    max_sends: 1,
                    per: Duration::ZERO,
                },
                ..create_cmd()
            },
        ),
    ];
    for (field, cmd) in cases {
        given::<Campaign>([])
            .when(CampaignCommand::Create(cmd))
            .then_invalid(field);
    }
}

#[test]
fn the_audience_may_hold_exactly_the_maximum() {
    let events = given::<Campaign>([])
        .when(CampaignCommand::Create(CreateCampaign {
            customer_ids: (0..MAX_AUDIENCE as u128).map(customer).collect(),
            ..create_cmd()
        }))
        .events();
    let CampaignEvent::Created(e) = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(e.customer_ids.len(), MAX_AUDIENCE);
    // The whole audience travels in one event: it must stay under the
    // log's 1 MiB payload limit.
    assert!(events[0].encode_payload().len() < 1024 * 1024);
}

// --- status -----------------------------------------------------------------

#[test]
fn the_transition_table_is_exactly_the_documented_one() {
    use pb::CampaignStatus::*;
    let all = [Unspecified, Draft, Active, Paused, Completed];
    let allowed = [
        (Draft, Active),
        (Active, Paused),
        (Active, Completed),
        (Paused, Active),
        (Paused, Completed),
    ];
    for from in all {
        for to in all {
            assert_eq!(
                can_transition(from, to),
                allowed.contains(&(from, to)),
                "{from:?} -> {to:?}"
            );
        }
    }
}

#[test]
fn launch_before_or_inside_the_window_activates() {
    given::<Campaign>([created()])
        .when(CampaignCommand::Launch { campaign_id: id() })
        .then([launched()]);
    let inside = now_plus(2 * DAY);
    let events = given::<Campaign>([created()])
        .at(inside)
        .when(CampaignCommand::Launch { campaign_id: id() })
        .events();
    assert_eq!(events.len(), 1);
}

#[test]
fn launch_after_the_window_is_rejected() {
    given::<Campaign>([created()])
        .at(window().ends_at)
        .when(CampaignCommand::Launch { campaign_id: id() })
        .then_rejected(CAMPAIGN_WINDOW_ENDED);
}

#[test]
fn launch_twice_is_an_invalid_transition() {
    given::<Campaign>([created(), launched()])
        .when(CampaignCommand::Launch { campaign_id: id() })
        .then_rejected(INVALID_STATUS_TRANSITION);
}

#[test]
fn commands_on_a_missing_campaign_are_not_found() {
    for cmd in [
        CampaignCommand::Launch { campaign_id: id() },
        CampaignCommand::Pause { campaign_id: id() },
        CampaignCommand::Resume { campaign_id: id() },
        CampaignCommand::Complete { campaign_id: id() },
        CampaignCommand::Target(TargetCustomers {
            campaign_id: id(),
            customer_ids: vec![customer(3)],
        }),
        respond(Response::Delivered),
        convert("o-1", 100, "JPY"),
        cost(10, "JPY", "SMS fee"),
    ] {
        given::<Campaign>([]).when(cmd).then_not_found("campaign");
    }
}

#[test]
fn pause_resume_and_complete_follow_the_table() {
    let state = given::<Campaign>([created(), launched()])
        .when(CampaignCommand::Pause { campaign_id: id() })
        .then([paused()]);
    assert_eq!(
        state.campaign.map(|c| c.status),
        Some(pb::CampaignStatus::Paused)
    );
    given::<Campaign>([created(), launched(), paused()])
        .when(CampaignCommand::Resume { campaign_id: id() })
        .then([status_changed(
            pb::CampaignStatus::Paused,
            pb::CampaignStatus::Active,
        )]);
    given::<Campaign>([created(), launched()])
        .when(CampaignCommand::Complete { campaign_id: id() })
        .then([completed()]);
    given::<Campaign>([created(), launched(), paused()])
        .when(CampaignCommand::Complete { campaign_id: id() })
        .then([status_changed(
            pb::CampaignStatus::Paused,
            pb::CampaignStatus::Completed,
        )]);
}

#[test]
fn moves_outside_the_table_are_rejected() {
    let cases = [
        (
            vec![created()],
            CampaignCommand::Pause { campaign_id: id() },
        ),
        (
            vec![created()],
            CampaignCommand::Resume { campaign_id: id() },
        ),
        (
            vec![created()],
            CampaignCommand::Complete { campaign_id: id() },
        ),
        (
            vec![created(), launched()],
            CampaignCommand::Resume { campaign_id: id() },
        ),
        (
            vec![created(), launched(), paused()],
            CampaignCommand::Pause { campaign_id: id() },
        ),
        // Resume and launch both lead to ACTIVE, each only from its own status.
        (
            vec![created(), launched(), paused()],
            CampaignCommand::Launch { campaign_id: id() },
        ),
        (
            vec![created(), launched(), completed()],
            CampaignCommand::Complete { campaign_id: id() },
        ),
        (
            vec![created(), launched(), completed()],
            CampaignCommand::Resume { campaign_id: id() },
        ),
        (
            vec![created(), launched(), completed()],
            CampaignCommand::Launch { campaign_id: id() },
        ),
    ];
    for (history, cmd) in cases {
        given::<Campaign>(history)
            .when(cmd)
            .then_rejected(INVALID_STATUS_TRANSITION);
    }
}

// --- targeting --------------------------------------------------------------

fn target(ids: Vec<Uuid>) -> CampaignCommand {
    CampaignCommand::Target(TargetCustomers {
        campaign_id: id(),
        customer_ids: ids,
    })
}

#[test]
fn targeting_adds_only_new_customers() {
    let state = given::<Campaign>([created(), launched()])
        .when(target(vec![customer(2), customer(3), customer(3)]))
        .then([CampaignEvent::CustomersTargeted(
            pb::CampaignCustomersTargeted {
                campaign_id: campaign_id().to_string(),
                customer_ids: vec![customer(3).to_string()],
                targeted_at: Some(default_now()),
            },
        )]);
    assert_eq!(state.campaign.map(|c| c.audience.len()), Some(3));
}

#[test]
fn targeting_customers_already_in_the_audience_changes_nothing() {
    given::<Campaign>([created()])
        .when(target(vec![customer(1)]))
        .then([]);
}

#[test]
fn targeting_a_completed_campaign_is_rejected() {
    given::<Campaign>([created(), launched(), completed()])
        .when(target(vec![customer(3)]))
        .then_rejected(CAMPAIGN_COMPLETED);
}

#[test]
fn targeting_past_the_maximum_audience_is_rejected() {
    let full = CampaignEvent::CustomersTargeted(pb::CampaignCustomersTargeted {
        campaign_id: campaign_id().to_string(),
        customer_ids: (10..MAX_AUDIENCE as u128 + 8)
            .map(|n| customer(n).to_string())
            .collect(),
        targeted_at: Some(default_now()),
    });
    // 2 + 9998 = the maximum: one more is too many.
    given::<Campaign>([created(), full.clone()])
        .when(target(vec![customer(1), customer(9)]))
        .then_rejected(AUDIENCE_TOO_LARGE);
    given::<Campaign>([created(), full])
        .when(target(vec![customer(1)]))
        .then([]);
}

#[test]
fn targeting_needs_valid_ids() {
    given::<Campaign>([created()])
        .when(target(vec![]))
        .then_invalid("customer_ids");
    given::<Campaign>([created()])
        .when(target(vec![customer(4), Uuid::nil()]))
        .then_invalid("customer_ids[1]");
}

// --- responses --------------------------------------------------------------

#[test]
fn each_response_is_recorded_once_per_send() {
    let at = Some(default_now());
    let base = || {
        (
            campaign_id().to_string(),
            send_id().to_string(),
            customer(1).to_string(),
        )
    };
    let (c, s, u) = base();
    let cases: Vec<(Response, CampaignEvent)> = vec![
        (Response::Delivered, delivered()),
        (
            Response::Bounced { permanent: true },
            CampaignEvent::MessageBounced(pb::CampaignMessageBounced {
                campaign_id: c.clone(),
                send_id: s.clone(),
                customer_id: u.clone(),
                permanent: true,
                recorded_at: at,
            }),
        ),
        (
            Response::Opened,
            CampaignEvent::MessageOpened(pb::CampaignMessageOpened {
                campaign_id: c.clone(),
                send_id: s.clone(),
                customer_id: u.clone(),
                recorded_at: at,
            }),
        ),
        (
            Response::Clicked {
                link: " https://example.com/spring ".into(),
            },
            CampaignEvent::MessageClicked(pb::CampaignMessageClicked {
                campaign_id: c.clone(),
                send_id: s.clone(),
                customer_id: u.clone(),
                link: "https://example.com/spring".into(),
                recorded_at: at,
            }),
        ),
        (
            Response::Responded {
                response: " STOP ".into(),
            },
            CampaignEvent::MessageResponded(pb::CampaignMessageResponded {
                campaign_id: c,
                send_id: s,
                customer_id: u,
                response: "STOP".into(),
                recorded_at: at,
            }),
        ),
    ];
    for (response, event) in cases {
        given::<Campaign>([created(), launched()])
            .when(respond(response.clone()))
            .then([event.clone()]);
        given::<Campaign>([created(), launched(), event])
            .when(respond(response))
            .then([]);
    }
}

#[test]
fn a_hard_bounce_after_a_soft_one_is_recorded_and_nothing_after_it() {
    let bounce = |permanent| {
        CampaignEvent::MessageBounced(pb::CampaignMessageBounced {
            campaign_id: campaign_id().to_string(),
            send_id: send_id().to_string(),
            customer_id: customer(1).to_string(),
            permanent,
            recorded_at: Some(default_now()),
        })
    };
    given::<Campaign>([created(), launched(), bounce(false)])
        .when(respond(Response::Bounced { permanent: true }))
        .then([bounce(true)]);
    given::<Campaign>([created(), launched(), bounce(false)])
        .when(respond(Response::Bounced { permanent: false }))
        .then([]);
    given::<Campaign>([created(), launched(), bounce(false), bounce(true)])
        .when(respond(Response::Bounced { permanent: false }))
        .then([]);
}

#[test]
fn responses_to_a_draft_campaign_are_rejected() {
    given::<Campaign>([created()])
        .when(respond(Response::Delivered))
        .then_rejected(CAMPAIGN_NOT_LAUNCHED);
}

#[test]
fn responses_are_accepted_after_completion() {
    // Late opens and orders still belong to the campaign's results.
    given::<Campaign>([created(), launched(), completed()])
        .when(respond(Response::Delivered))
        .then([delivered()]);
}

#[test]
fn a_send_to_a_customer_outside_the_audience_is_rejected() {
    given::<Campaign>([created(), launched()])
        .when(CampaignCommand::RecordResponse(RecordResponse {
            send: send(customer(9)),
            response: Response::Opened,
        }))
        .then_rejected(CUSTOMER_NOT_TARGETED);
}

#[test]
fn a_send_id_belongs_to_one_customer() {
    given::<Campaign>([created(), launched(), delivered()])
        .when(CampaignCommand::RecordResponse(RecordResponse {
            send: send(customer(2)),
            response: Response::Opened,
        }))
        .then_rejected(SEND_CUSTOMER_MISMATCH);
}

#[test]
fn responses_need_valid_fields() {
    given::<Campaign>([created(), launched()])
        .when(CampaignCommand::RecordResponse(RecordResponse {
            send: SendRef {
                send_id: Uuid::nil(),
                ..send(customer(1))
            },
            response: Response::Opened,
        }))
        .then_invalid("send_id");
    given::<Campaign>([created(), launched()])
        .when(CampaignCommand::RecordResponse(RecordResponse {
            send: send(Uuid::nil()),
            response: Response::Opened,
        }))
        .then_invalid("customer_id");
    given::<Campaign>([created(), launched()])
        .when(respond(Response::Clicked {
            link: "x".repeat(MAX_LINK_BYTES + 1),
        }))
        .then_invalid("link");
    given::<Campaign>([created(), launched()])
        .when(respond(Response::Responded {
            response: "x".repeat(MAX_RESPONSE_CHARS + 1),
        }))
        .then_invalid("response");
}

// --- conversions and costs --------------------------------------------------

#[test]
fn a_conversion_is_attributed_once_per_order() {
    given::<Campaign>([created(), launched()])
        .when(convert(" o-1 ", 12_000, "JPY"))
        .then([conversion_attributed("o-1", 12_000)]);
    given::<Campaign>([created(), launched(), conversion_attributed("o-1", 12_000)])
        .when(convert("o-1", 12_000, "JPY"))
        .then([]);
}

#[test]
fn conversions_are_checked() {
    given::<Campaign>([created(), launched()])
        .when(convert("o-1", 100, "USD"))
        .then_rejected(CURRENCY_MISMATCH);
    given::<Campaign>([created(), launched()])
        .when(convert("o-1", -1, "JPY"))
        .then_invalid("revenue.amount_minor");
    given::<Campaign>([created(), launched()])
        .when(convert("", 1, "JPY"))
        .then_invalid("order_id");
    given::<Campaign>([created(), launched()])
        .when(convert("o-1", 1, "JP"))
        .then_invalid("revenue.currency");
    given::<Campaign>([created()])
        .when(convert("o-1", 1, "JPY"))
        .then_rejected(CAMPAIGN_NOT_LAUNCHED);
}

#[test]
fn a_cost_is_recorded() {
    given::<Campaign>([created(), launched()])
        .when(cost(12, "JPY", " SMS fee "))
        .then([cost_recorded(12)]);
}

#[test]
fn costs_are_checked() {
    given::<Campaign>([created(), launched()])
        .when(cost(0, "JPY", "SMS fee"))
        .then_invalid("cost.amount_minor");
    given::<Campaign>([created(), launched()])
        .when(cost(5, "JPY", " "))
        .then_invalid("reason");
    given::<Campaign>([created(), launched()])
        .when(cost(5, "EUR", "SMS fee"))
        .then_rejected(CURRENCY_MISMATCH);
    given::<Campaign>([created(), launched()])
        .when(CampaignCommand::RecordCost(RecordCost {
            send: send(customer(7)),
            cost: Money::new(5, "JPY"),
            reason: "SMS fee".into(),
        }))
        .then_rejected(CUSTOMER_NOT_TARGETED);
}

// --- ROI --------------------------------------------------------------------

#[test]
fn roi_follows_from_conversions_and_costs() {
    assert_eq!(roi(&CampaignState::default()), None);
    let fresh = given::<Campaign>([created()]).state();
    let r = roi(&fresh).expect("exists");
    assert_eq!((r.revenue_minor, r.cost_minor), (0, 0));
    assert_eq!(r.return_basis_points(), None);

    let state = given::<Campaign>([
        created(),
        launched(),
        conversion_attributed("o-1", 12_000),
        cost_recorded(2_000),
        conversion_attributed("o-2", 3_000),
        cost_recorded(2_000),
    ])
    .state();
    let r = roi(&state).expect("exists");
    assert_eq!(
        r,
        Roi {
            revenue_minor: 15_000,
            cost_minor: 4_000,
            currency: "JPY".into(),
        }
    );
    assert_eq!(r.net_minor(), 11_000);
    // (15000 - 4000) / 4000 = 2.75
    assert_eq!(r.return_basis_points(), Some(27_500));
}

#[test]
fn a_loss_has_a_negative_return() {
    let state = given::<Campaign>([
        created(),
        launched(),
        conversion_attributed("o-1", 1_000),
        cost_recorded(3_000),
    ])
    .state();
    let r = roi(&state).expect("exists");
    assert_eq!(r.net_minor(), -2_000);
    assert_eq!(r.return_basis_points(), Some(-6_666));
}
