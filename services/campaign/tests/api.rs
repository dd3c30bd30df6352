//! CampaignService as a client team sees it: a real tonic server on an
//! ephemeral port over a temporary log, driven by the generated client.
//! Every RPC's happy path, retried command ids, invalid fields, each rule it
//! enforces and unknown ids. The send-time rules are in arbitration.rs.

mod common;

use common::*;
use kizuna_domain::campaign;
use kizuna_proto::v1 as pb;
use tonic::Code;
use uuid::Uuid;

fn amount(amount_minor: i64, currency: &str) -> Option<pb::CampaignAmount> {
    Some(pb::CampaignAmount {
        amount_minor,
        currency: currency.into(),
    })
}

#[tokio::test]
async fn create_campaign_records_the_definition_and_get_campaign_returns_it() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let req = campaign_request(&[customer, customer]);
    let reply = f
        .campaigns
        .create_campaign(req.clone())
        .await
        .expect("create")
        .into_inner();
    let id = Uuid::parse_str(&reply.campaign_id).expect("id");
    let result = reply.result.expect("result");
    assert_eq!(result.event_types, ["campaign.created"]);
    assert_eq!(result.streams[0].stream, campaign::stream(id));

    // The retry creates nothing new and names the same campaign.
    let head = f.head().await;
    let again = f
        .campaigns
        .create_campaign(req)
        .await
        .expect("retry")
        .into_inner();
    assert!(again.result.expect("result").replayed);
    assert_eq!(again.campaign_id, id.to_string());
    assert_eq!(f.head().await, head);

    let got = f.get(id).await;
    assert_eq!(got.version, 0);
    let c = got.campaign.expect("campaign");
    assert_eq!(c.campaign_id, id.to_string());
    assert_eq!(c.name, "春のセール");
    assert_eq!(c.channel, pb::ContactChannel::Email as i32);
    assert_eq!(c.status, pb::CampaignStatus::Draft as i32);
    assert_eq!(c.audience_size, 1, "duplicates are dropped");
    assert_eq!(c.priority, 50);
    assert_eq!(c.offer.expect("offer").offer_code, "SPRING-10");
    assert_eq!(c.budget.expect("budget").currency, "JPY");
    assert_eq!(c.frequency_cap.expect("cap").max_sends, 10);
    assert_eq!(
        c.window.expect("window").ends_at,
        Some(at(START_SECONDS + days(30)))
    );
    assert_eq!(c.created_at, Some(at(START_SECONDS)));
    let roi = c.roi.expect("roi");
    assert_eq!((roi.revenue_minor, roi.cost_minor), (0, 0));
    assert_eq!(roi.return_basis_points, None);
    assert_eq!(roi.return_ratio, "");
}

#[tokio::test]
async fn a_caller_chosen_campaign_id_is_used_once() {
    let mut f = fixture().await;
    let id = Uuid::now_v7();
    let mut req = campaign_request(&[]);
    req.campaign_id = id.to_string();
    assert_eq!(f.create(req.clone()).await, id);
    req.command = command();
    let e = f.campaigns.create_campaign(req).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
}

#[tokio::test]
async fn create_campaign_names_each_invalid_field() {
    let mut f = fixture().await;
    type Edit = fn(&mut pb::CreateCampaignRequest);
    let cases: Vec<(&str, Edit)> = vec![
        ("campaign_id", |r| r.campaign_id = "not-a-uuid".into()),
        ("name", |r| r.name = "  ".into()),
        ("channel", |r| {
            r.channel = pb::ContactChannel::Unspecified as i32
        }),
        ("channel", |r| r.channel = 99),
        ("customer_ids[1]", |r| {
            r.customer_ids = vec![Uuid::now_v7().to_string(), "x".into()]
        }),
        ("window", |r| r.window = None),
        ("window.starts_at", |r| {
            r.window.as_mut().expect("window").starts_at = None
        }),
        ("window.ends_at", |r| {
            r.window.as_mut().expect("window").ends_at = Some(at(START_SECONDS))
        }),
        ("budget", |r| r.budget = None),
        ("budget.currency", |r| {
            r.budget.as_mut().expect("budget").currency = "jpy".into()
        }),
        ("budget.amount_minor", |r| {
            r.budget.as_mut().expect("budget").amount_minor = -1
        }),
        ("offer", |r| r.offer = None),
        ("offer.offer_code", |r| {
            r.offer.as_mut().expect("offer").offer_code = "10% OFF".into()
        }),
        ("priority", |r| r.priority = 0),
        ("priority", |r| r.priority = 101),
        ("frequency_cap", |r| r.frequency_cap = None),
        ("frequency_cap.max_sends", |r| {
            r.frequency_cap.as_mut().expect("cap").max_sends = 0
        }),
        ("frequency_cap.per", |r| {
            r.frequency_cap.as_mut().expect("cap").per = None
        }),
    ];
    let head = f.head().await;
    for (field, edit) in cases {
        let mut req = campaign_request(&[]);
        edit(&mut req);
        let e = f.campaigns.create_campaign(req).await.unwrap_err();
        assert_invalid(&e, field);
    }
    assert_eq!(f.head().await, head);
}

#[tokio::test]
async fn the_lifecycle_follows_the_status_table() {
    let mut f = fixture().await;
    let id = f.create(campaign_request(&[])).await;
    let status = |r: pb::GetCampaignResponse| r.campaign.expect("campaign").status;

    // Resume and pause are not moves from DRAFT.
    let e = f
        .campaigns
        .pause_campaign(pb::PauseCampaignRequest {
            command: command(),
            campaign_id: id.to_string(),
        })
        .await
        .unwrap_err();
    assert_rejected(&e, "INVALID_STATUS_TRANSITION");

    let launch = pb::LaunchCampaignRequest {
        command: command(),
        campaign_id: id.to_string(),
    };
    let result = f
        .campaigns
        .launch_campaign(launch.clone())
        .await
        .expect("launch")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(result.event_types, ["campaign.status_changed"]);
    assert_eq!(status(f.get(id).await), pb::CampaignStatus::Active as i32);
    let head = f.head().await;
    let again = f
        .campaigns
        .launch_campaign(launch)
        .await
        .expect("retry")
        .into_inner();
    assert!(again.result.expect("result").replayed);
    assert_eq!(f.head().await, head);

    let e = f
        .campaigns
        .resume_campaign(pb::ResumeCampaignRequest {
            command: command(),
            campaign_id: id.to_string(),
        })
        .await
        .unwrap_err();
    assert_rejected(&e, "INVALID_STATUS_TRANSITION");

    f.campaigns
        .pause_campaign(pb::PauseCampaignRequest {
            command: command(),
            campaign_id: id.to_string(),
        })
        .await
        .expect("pause");
    assert_eq!(status(f.get(id).await), pb::CampaignStatus::Paused as i32);
    f.campaigns
        .resume_campaign(pb::ResumeCampaignRequest {
            command: command(),
            campaign_id: id.to_string(),
        })
        .await
        .expect("resume");
    assert_eq!(status(f.get(id).await), pb::CampaignStatus::Active as i32);
    f.complete(id).await;
    let got = f.get(id).await;
    assert_eq!(got.version, 4);
    assert_eq!(status(got), pb::CampaignStatus::Completed as i32);

    let e = f
        .campaigns
        .complete_campaign(pb::CompleteCampaignRequest {
            command: command(),
            campaign_id: id.to_string(),
        })
        .await
        .unwrap_err();
    assert_rejected(&e, "INVALID_STATUS_TRANSITION");
}

#[tokio::test]
async fn a_campaign_cannot_be_launched_after_its_window() {
    let mut f = fixture().await;
    let id = f.create(campaign_request(&[])).await;
    f.clock.advance(30 * DAY);
    let e = f
        .campaigns
        .launch_campaign(pb::LaunchCampaignRequest {
            command: command(),
            campaign_id: id.to_string(),
        })
        .await
        .unwrap_err();
    assert_rejected(&e, "CAMPAIGN_WINDOW_ENDED");
}

#[tokio::test]
async fn lifecycle_rpcs_refuse_unknown_and_malformed_campaigns() {
    let mut f = fixture().await;
    let unknown = Uuid::now_v7().to_string();
    let e = f
        .campaigns
        .launch_campaign(pb::LaunchCampaignRequest {
            command: command(),
            campaign_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_not_found(&e, "campaign");
    let e = f
        .campaigns
        .pause_campaign(pb::PauseCampaignRequest {
            command: command(),
            campaign_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_not_found(&e, "campaign");
    let e = f
        .campaigns
        .resume_campaign(pb::ResumeCampaignRequest {
            command: command(),
            campaign_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "campaign_id");
    let e = f
        .campaigns
        .complete_campaign(pb::CompleteCampaignRequest {
            command: command(),
            campaign_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_not_found(&e, "campaign");
    let e = f
        .campaigns
        .get_campaign(pb::GetCampaignRequest {
            campaign_id: unknown,
        })
        .await
        .unwrap_err();
    assert_not_found(&e, "campaign");
    let e = f
        .campaigns
        .get_campaign(pb::GetCampaignRequest {
            campaign_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "campaign_id");
}

#[tokio::test]
async fn target_customers_adds_only_new_members_and_not_to_completed_campaigns() {
    let mut f = fixture().await;
    let first = Uuid::now_v7();
    let second = Uuid::now_v7();
    let id = f.create(campaign_request(&[first])).await;
    let req = pb::TargetCustomersRequest {
        command: command(),
        campaign_id: id.to_string(),
        customer_ids: vec![first.to_string(), second.to_string()],
    };
    let result = f
        .campaigns
        .target_customers(req.clone())
        .await
        .expect("target")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(result.event_types, ["campaign.customers_targeted"]);
    assert_eq!(f.get(id).await.campaign.expect("c").audience_size, 2);

    let head = f.head().await;
    let retry = f
        .campaigns
        .target_customers(req.clone())
        .await
        .expect("retry")
        .into_inner();
    assert!(retry.result.expect("result").replayed);
    let nothing_new = f
        .campaigns
        .target_customers(pb::TargetCustomersRequest {
            command: command(),
            ..req.clone()
        })
        .await
        .expect("again")
        .into_inner();
    assert!(nothing_new.result.expect("result").streams.is_empty());
    assert_eq!(f.head().await, head);

    let e = f
        .campaigns
        .target_customers(pb::TargetCustomersRequest {
            command: command(),
            campaign_id: id.to_string(),
            customer_ids: vec![],
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "customer_ids");
    let e = f
        .campaigns
        .target_customers(pb::TargetCustomersRequest {
            command: command(),
            campaign_id: id.to_string(),
            customer_ids: vec![first.to_string(), Uuid::nil().to_string()],
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "customer_ids[1]");
    let e = f
        .campaigns
        .target_customers(pb::TargetCustomersRequest {
            command: command(),
            campaign_id: Uuid::now_v7().to_string(),
            customer_ids: vec![first.to_string()],
        })
        .await
        .unwrap_err();
    assert_not_found(&e, "campaign");

    f.launch(id).await;
    f.complete(id).await;
    let e = f
        .campaigns
        .target_customers(pb::TargetCustomersRequest {
            command: command(),
            campaign_id: id.to_string(),
            customer_ids: vec![Uuid::now_v7().to_string()],
        })
        .await
        .unwrap_err();
    assert_rejected(&e, "CAMPAIGN_COMPLETED");
}

/// A launched campaign, a customer and an approved send.
async fn sent(f: &mut Fixture) -> (Uuid, Uuid, Uuid) {
    let customer = f.customer().await;
    let campaign = f.active(&[customer], 50).await;
    let send = f.approved_send(campaign, customer).await;
    (campaign, customer, send)
}

#[tokio::test]
async fn responses_are_recorded_once_per_send_and_counted() {
    let mut f = fixture().await;
    let (campaign, customer, send) = sent(&mut f).await;
    let (c, s, u) = (campaign.to_string(), send.to_string(), customer.to_string());

    let delivery = pb::RecordDeliveryRequest {
        command: command(),
        campaign_id: c.clone(),
        send_id: s.clone(),
        customer_id: u.clone(),
    };
    let result = f
        .campaigns
        .record_delivery(delivery.clone())
        .await
        .expect("delivery")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(result.event_types, ["campaign.message_delivered"]);
    let head = f.head().await;
    let retry = f
        .campaigns
        .record_delivery(delivery.clone())
        .await
        .expect("retry")
        .into_inner();
    assert!(retry.result.expect("result").replayed);
    let webhook_again = f
        .campaigns
        .record_delivery(pb::RecordDeliveryRequest {
            command: command(),
            ..delivery
        })
        .await
        .expect("again")
        .into_inner();
    assert!(webhook_again.result.expect("result").streams.is_empty());
    assert_eq!(f.head().await, head);

    let opened = f
        .campaigns
        .record_open(pb::RecordOpenRequest {
            command: command(),
            campaign_id: c.clone(),
            send_id: s.clone(),
            customer_id: u.clone(),
        })
        .await
        .expect("open")
        .into_inner();
    assert_eq!(
        opened.result.expect("result").event_types,
        ["campaign.message_opened"]
    );
    let clicked = f
        .campaigns
        .record_click(pb::RecordClickRequest {
            command: command(),
            campaign_id: c.clone(),
            send_id: s.clone(),
            customer_id: u.clone(),
            link: "https://shop.example.jp/spring".into(),
        })
        .await
        .expect("click")
        .into_inner();
    assert_eq!(
        clicked.result.expect("result").event_types,
        ["campaign.message_clicked"]
    );
    let e = f
        .campaigns
        .record_click(pb::RecordClickRequest {
            command: command(),
            campaign_id: c.clone(),
            send_id: s.clone(),
            customer_id: u.clone(),
            link: "https://x/\n".repeat(300),
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "link");
    let answered = f
        .campaigns
        .record_response(pb::RecordResponseRequest {
            command: command(),
            campaign_id: c.clone(),
            send_id: s.clone(),
            customer_id: u.clone(),
            text: "来週お店に行きます".into(),
        })
        .await
        .expect("response")
        .into_inner();
    assert_eq!(
        answered.result.expect("result").event_types,
        ["campaign.message_responded"]
    );
    let e = f
        .campaigns
        .record_response(pb::RecordResponseRequest {
            command: command(),
            campaign_id: c.clone(),
            send_id: s.clone(),
            customer_id: u.clone(),
            text: "あ".repeat(2001),
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "response");

    let got = f.get(campaign).await.campaign.expect("campaign");
    assert_eq!(got.sends.len(), 1);
    let stats = &got.sends[0];
    assert_eq!(stats.send_id, s);
    assert_eq!(stats.customer_id, u);
    assert!(stats.delivered && stats.opened && stats.clicked && stats.responded);
    assert!(!stats.bounced);
    let totals = got.totals.expect("totals");
    assert_eq!(
        (
            totals.sends,
            totals.delivered,
            totals.opened,
            totals.clicked,
            totals.responded,
            totals.bounced
        ),
        (1, 1, 1, 1, 1, 0)
    );
}

#[tokio::test]
async fn conversions_and_costs_give_the_roi_in_the_budget_currency() {
    let mut f = fixture().await;
    let (campaign, customer, send) = sent(&mut f).await;
    let (c, s, u) = (campaign.to_string(), send.to_string(), customer.to_string());

    let conversion = pb::AttributeConversionRequest {
        command: command(),
        campaign_id: c.clone(),
        send_id: s.clone(),
        customer_id: u.clone(),
        order_id: "A-1001".into(),
        revenue: amount(15_000, "JPY"),
    };
    let result = f
        .campaigns
        .attribute_conversion(conversion.clone())
        .await
        .expect("conversion")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(result.event_types, ["campaign.conversion_attributed"]);
    // The same order again (another command) counts once.
    let head = f.head().await;
    let again = f
        .campaigns
        .attribute_conversion(pb::AttributeConversionRequest {
            command: command(),
            ..conversion.clone()
        })
        .await
        .expect("again")
        .into_inner();
    assert!(again.result.expect("result").streams.is_empty());
    assert_eq!(f.head().await, head);

    let cost = pb::RecordCostRequest {
        command: command(),
        campaign_id: c.clone(),
        send_id: s.clone(),
        customer_id: u.clone(),
        cost: amount(6_000, "JPY"),
        reason: "配信費用".into(),
    };
    f.campaigns.record_cost(cost.clone()).await.expect("cost");
    let retry = f
        .campaigns
        .record_cost(cost.clone())
        .await
        .expect("retry")
        .into_inner();
    assert!(retry.result.expect("result").replayed);
    f.campaigns
        .record_cost(pb::RecordCostRequest {
            command: command(),
            cost: amount(4_000, "JPY"),
            reason: "クーポン原価".into(),
            ..cost.clone()
        })
        .await
        .expect("second cost");

    let got = f.get(campaign).await.campaign.expect("campaign");
    let roi = got.roi.expect("roi");
    assert_eq!(roi.revenue_minor, 15_000);
    assert_eq!(roi.cost_minor, 10_000);
    assert_eq!(roi.currency, "JPY");
    assert_eq!(roi.net_minor, 5_000);
    assert_eq!(roi.return_basis_points, Some(5_000));
    assert_eq!(roi.return_ratio, "0.5000");
    assert_eq!(got.totals.expect("totals").conversions, 1);

    // Money in another currency, or malformed, is refused.
    let e = f
        .campaigns
        .attribute_conversion(pb::AttributeConversionRequest {
            command: command(),
            order_id: "A-1002".into(),
            revenue: amount(100, "USD"),
            ..conversion.clone()
        })
        .await
        .unwrap_err();
    assert_rejected(&e, "CURRENCY_MISMATCH");
    let e = f
        .campaigns
        .record_cost(pb::RecordCostRequest {
            command: command(),
            cost: amount(100, "EUR"),
            ..cost.clone()
        })
        .await
        .unwrap_err();
    assert_rejected(&e, "CURRENCY_MISMATCH");
    for (revenue, field) in [
        (amount(-1, "JPY"), "revenue.amount_minor"),
        (amount(1, "Yen"), "revenue.currency"),
        (None, "revenue"),
    ] {
        let e = f
            .campaigns
            .attribute_conversion(pb::AttributeConversionRequest {
                command: command(),
                order_id: "A-1003".into(),
                revenue,
                ..conversion.clone()
            })
            .await
            .unwrap_err();
        assert_invalid(&e, field);
    }
    let e = f
        .campaigns
        .attribute_conversion(pb::AttributeConversionRequest {
            command: command(),
            order_id: String::new(),
            ..conversion.clone()
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "order_id");
    for (edit, field) in [(amount(0, "JPY"), "cost.amount_minor"), (None, "cost")] {
        let e = f
            .campaigns
            .record_cost(pb::RecordCostRequest {
                command: command(),
                cost: edit,
                ..cost.clone()
            })
            .await
            .unwrap_err();
        assert_invalid(&e, field);
    }
    let e = f
        .campaigns
        .record_cost(pb::RecordCostRequest {
            command: command(),
            reason: String::new(),
            ..cost
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "reason");
}

#[tokio::test]
async fn records_must_name_an_approved_send_of_the_campaign_to_the_customer() {
    let mut f = fixture().await;
    let (campaign, customer, send) = sent(&mut f).await;
    let other = f.active(&[customer], 50).await;
    let head = f.head().await;

    let delivery = |campaign: Uuid, send: Uuid, customer: Uuid| pb::RecordDeliveryRequest {
        command: command(),
        campaign_id: campaign.to_string(),
        send_id: send.to_string(),
        customer_id: customer.to_string(),
    };
    // A send id nobody approved.
    let e = f
        .campaigns
        .record_delivery(delivery(campaign, Uuid::now_v7(), customer))
        .await
        .unwrap_err();
    assert_not_found(&e, "send");
    // The send of another campaign.
    let e = f
        .campaigns
        .record_delivery(delivery(other, send, customer))
        .await
        .unwrap_err();
    assert_not_found(&e, "send");
    // Another customer's outreach does not hold it.
    let stranger = f.customer().await;
    let e = f
        .campaigns
        .record_open(pb::RecordOpenRequest {
            command: command(),
            campaign_id: campaign.to_string(),
            send_id: send.to_string(),
            customer_id: stranger.to_string(),
        })
        .await
        .unwrap_err();
    assert_not_found(&e, "send");
    let e = f
        .campaigns
        .record_bounce(pb::RecordBounceRequest {
            command: command(),
            campaign_id: Uuid::now_v7().to_string(),
            send_id: send.to_string(),
            customer_id: customer.to_string(),
            permanent: true,
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_not_found(&e, "campaign");
    let e = f
        .campaigns
        .record_delivery(pb::RecordDeliveryRequest {
            command: command(),
            campaign_id: campaign.to_string(),
            send_id: "x".into(),
            customer_id: customer.to_string(),
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "send_id");
    // One customer registered above, nothing else appended.
    assert_eq!(f.head().await, head + 1);
}

#[tokio::test]
async fn a_bounce_for_a_customer_without_the_channel_contact_is_refused_on_both_streams() {
    let mut f = fixture().await;
    // An SMS campaign to a customer whose phone number is then removed.
    let customer = f.customer_with(&[pb::ContactChannel::Sms]).await;
    let mut req = campaign_request(&[customer]);
    req.channel = pb::ContactChannel::Sms as i32;
    let campaign = f.create(req).await;
    f.launch(campaign).await;
    let send = f.approved_send(campaign, customer).await;
    f.customers
        .update_customer_contact(pb::UpdateCustomerContactRequest {
            command: command(),
            customer_id: customer.to_string(),
            contact: Some(pb::ContactData::default()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["phone".into()],
            }),
        })
        .await
        .expect("remove the phone");
    let head = f.head().await;
    let e = f
        .campaigns
        .record_bounce(pb::RecordBounceRequest {
            command: command(),
            campaign_id: campaign.to_string(),
            send_id: send.to_string(),
            customer_id: customer.to_string(),
            permanent: true,
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_rejected(&e, "NO_CONTACT_ON_CHANNEL");
    assert_eq!(
        f.head().await,
        head,
        "all or nothing: no campaign bounce either"
    );
}

#[tokio::test]
async fn get_outreach_validates_its_request() {
    let mut f = fixture().await;
    let e = f
        .campaigns
        .get_outreach(pb::GetOutreachRequest {
            customer_id: "x".into(),
            max_suppressions: 0,
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "customer_id");
    let e = f
        .campaigns
        .get_outreach(pb::GetOutreachRequest {
            customer_id: Uuid::now_v7().to_string(),
            max_suppressions: 1001,
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "max_suppressions");
    // A customer nobody sent to has an empty outreach.
    let view = f
        .campaigns
        .get_outreach(pb::GetOutreachRequest {
            customer_id: Uuid::now_v7().to_string(),
            max_suppressions: 0,
        })
        .await
        .expect("outreach")
        .into_inner();
    assert!(view.sends.is_empty() && view.suppressions.is_empty() && view.slots.is_empty());
    assert_eq!(view.version, None);
}

#[tokio::test]
async fn get_outreach_returns_the_latest_suppressions_up_to_the_limit() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let campaign = f.active(&[customer], 50).await;
    f.approved_send(campaign, customer).await;
    for _ in 0..3 {
        f.send(campaign, customer).await;
    }
    let view = f
        .campaigns
        .get_outreach(pb::GetOutreachRequest {
            customer_id: customer.to_string(),
            max_suppressions: 2,
        })
        .await
        .expect("outreach")
        .into_inner();
    assert_eq!(view.suppression_count, 3);
    assert_eq!(view.suppressions.len(), 2);
    assert_eq!(view.version, Some(3));
    assert_eq!(view.sends.len(), 1);
    assert_eq!(view.customer_id, customer.to_string());
}

#[tokio::test]
async fn a_push_bounce_is_recorded_on_the_campaign_only() {
    let mut f = fixture().await;
    let customer = f.customer_with(&[pb::ContactChannel::Push]).await;
    let mut req = campaign_request(&[customer]);
    req.channel = pb::ContactChannel::Push as i32;
    let campaign = f.create(req).await;
    f.launch(campaign).await;
    let send = f.approved_send(campaign, customer).await;
    let result = f
        .campaigns
        .record_bounce(pb::RecordBounceRequest {
            command: command(),
            campaign_id: campaign.to_string(),
            send_id: send.to_string(),
            customer_id: customer.to_string(),
            permanent: true,
            reason: "token expired".into(),
        })
        .await
        .expect("bounce")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(result.event_types, ["campaign.message_bounced"]);
    let got = f.get(campaign).await.campaign.expect("campaign");
    assert!(got.sends[0].bounced);
    assert_eq!(got.totals.expect("totals").bounced, 1);
}

#[tokio::test]
async fn a_bounce_for_a_merged_away_customer_is_refused_on_both_streams() {
    let mut f = fixture().await;
    let (campaign, customer, send) = sent(&mut f).await;
    let survivor = f.customer().await;
    f.customers
        .merge_customers(pb::MergeCustomersRequest {
            command: command(),
            source_customer_id: customer.to_string(),
            target_customer_id: survivor.to_string(),
        })
        .await
        .expect("merge");
    let head = f.head().await;
    let e = f
        .campaigns
        .record_bounce(pb::RecordBounceRequest {
            command: command(),
            campaign_id: campaign.to_string(),
            send_id: send.to_string(),
            customer_id: customer.to_string(),
            permanent: true,
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_rejected(&e, "CUSTOMER_MERGED");
    assert_eq!(f.head().await, head);
}

#[tokio::test]
async fn a_postal_bounce_flags_the_customers_current_postal_address() {
    let mut f = fixture().await;
    let customer = Uuid::now_v7();
    f.customers
        .register_customer(pb::RegisterCustomerRequest {
            command: command(),
            customer_id: customer.to_string(),
            contact: Some(pb::ContactData {
                family_name: "山田".into(),
                postal_address: Some(pb::PostalAddress {
                    lines: vec!["丸の内１－２－３".into()],
                    locality: "千代田区".into(),
                    region: "東京都".into(),
                    postal_code: "１００－０００５".into(),
                    country: "jp".into(),
                }),
                ..Default::default()
            }),
            consents: vec![pb::ConsentGrant {
                channel: pb::ContactChannel::Postal as i32,
                purpose: pb::ConsentPurpose::Marketing as i32,
            }],
            source: "store".into(),
        })
        .await
        .expect("register");
    let mut req = campaign_request(&[customer]);
    req.channel = pb::ContactChannel::Postal as i32;
    let campaign = f.create(req).await;
    f.launch(campaign).await;
    let send = f.approved_send(campaign, customer).await;
    let result = f
        .campaigns
        .record_bounce(pb::RecordBounceRequest {
            command: command(),
            campaign_id: campaign.to_string(),
            send_id: send.to_string(),
            customer_id: customer.to_string(),
            permanent: true,
            reason: "宛所不明".into(),
        })
        .await
        .expect("bounce")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(
        result.event_types,
        ["campaign.message_bounced", "customer.contact_bounced"]
    );
    let stored = f
        .customers
        .get_customer(pb::GetCustomerRequest {
            customer_id: customer.to_string(),
        })
        .await
        .expect("get")
        .into_inner()
        .customer
        .expect("customer");
    assert_eq!(stored.bounces.len(), 1);
    assert_eq!(
        stored.bounces[0].bounced,
        Some(pb::contact_bounce_flag::Bounced::PostalAddress(
            stored
                .contact
                .expect("contact")
                .postal_address
                .expect("address")
        ))
    );
}

#[tokio::test]
async fn an_sms_bounce_flags_the_customers_phone_number() {
    let mut f = fixture().await;
    let customer = f.customer_with(&[pb::ContactChannel::Sms]).await;
    let mut req = campaign_request(&[customer]);
    req.channel = pb::ContactChannel::Sms as i32;
    let campaign = f.create(req).await;
    f.launch(campaign).await;
    let send = f.approved_send(campaign, customer).await;
    f.campaigns
        .record_bounce(pb::RecordBounceRequest {
            command: command(),
            campaign_id: campaign.to_string(),
            send_id: send.to_string(),
            customer_id: customer.to_string(),
            permanent: true,
            reason: "unreachable".into(),
        })
        .await
        .expect("bounce");
    let flags = f.customer_bounces(customer).await;
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].channel, pb::ContactChannel::Sms as i32);
    assert_eq!(
        flags[0].bounced,
        Some(pb::contact_bounce_flag::Bounced::Address(
            "+819012345678".into()
        ))
    );
}
