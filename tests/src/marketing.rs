//! Loyalty and campaign flows, as a shop's checkout, a marketing tool and a
//! CRM screen drive them over gRPC. None of them moves the clock, so each
//! runs against one `kizuna serve` or against separate log, customer,
//! loyalty and campaign processes; the time-driven flows (expiry, tier
//! review) live in tests/tests/loyalty_flows.rs where the clock is injected.

use crate::{Clients, command, command_with_id, ensure, head, stream_events};
use kizuna_proto::v1 as pb;
use prost_types::{Duration, Timestamp};
use std::time::Duration as StdDuration;
use tonic_types::StatusExt as _;
use uuid::Uuid;

const DAY_SECS: i64 = 24 * 60 * 60;

fn days(n: i64) -> Option<Duration> {
    Some(Duration {
        seconds: n * DAY_SECS,
        nanos: 0,
    })
}

/// The `ErrorInfo` reason of a refused command, or `""`.
pub fn reason_of(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// Expects `result` to be refused with FAILED_PRECONDITION and `reason`.
fn refused<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    reason: &str,
) -> anyhow::Result<()> {
    match result {
        Ok(ok) => Err(anyhow::anyhow!("expected {reason}, got {ok:?}")),
        Err(status) => ensure(
            status.code() == tonic::Code::FailedPrecondition && reason_of(&status) == reason,
            || format!("expected FAILED_PRECONDITION {reason}, got {status:?}"),
        ),
    }
}

/// Registers a customer with an e-mail address and e-mail marketing consent.
pub async fn register_reachable_customer(c: &mut Clients, email: &str) -> anyhow::Result<String> {
    let registered = c
        .customer
        .register_customer(pb::RegisterCustomerRequest {
            command: command(),
            contact: Some(pb::ContactData {
                given_name: "花子".into(),
                family_name: "佐藤".into(),
                email: email.into(),
                ..Default::default()
            }),
            consents: vec![pb::ConsentGrant {
                channel: pb::ContactChannel::Email as i32,
                purpose: pb::ConsentPurpose::Marketing as i32,
            }],
            source: "store".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(registered.customer_id)
}

/// Registers a new customer and enrols them in the default programme;
/// returns their id.
pub async fn new_member(c: &mut Clients) -> anyhow::Result<String> {
    let customer_id =
        register_reachable_customer(c, &format!("{}@example.jp", Uuid::now_v7())).await?;
    c.loyalty
        .enrol(pb::EnrolRequest {
            command: command(),
            customer_id: customer_id.clone(),
            programme_id: "default".into(),
        })
        .await?;
    Ok(customer_id)
}

/// The earning rules every flow here uses: 1 point per 100 JPY, lots live a
/// year, and "silver" (1.5x) from 30,000 JPY spent over 365 days, kept 30
/// days after it stops qualifying.
pub fn standard_rules() -> pb::SetEarningRulesRequest {
    pb::SetEarningRulesRequest {
        command: command(),
        rates: vec![pb::LoyaltyEarningRate {
            currency: "JPY".into(),
            unit_minor: 100,
            points_per_unit: 1,
        }],
        lot_lifetime: days(365),
        tiers: vec![pb::LoyaltyTierRule {
            name: "silver".into(),
            min_spend_minor: 30_000,
            min_purchase_count: 0,
            multiplier_bp: 15_000,
        }],
        tier_currency: "JPY".into(),
        tier_window: days(365),
        tier_grace: days(30),
        ..Default::default()
    }
}

/// A purchase of `amount` JPY of books at the web shop.
pub fn purchase(customer_id: &str, order_id: &str, amount: i64) -> pb::RecordPurchaseRequest {
    pb::RecordPurchaseRequest {
        command: command(),
        customer_id: customer_id.to_owned(),
        order_id: order_id.to_owned(),
        amount_minor: amount,
        currency: "JPY".into(),
        line_items: vec![pb::LoyaltyLineItem {
            sku: "BOOK-001".into(),
            category: "books".into(),
            quantity: 1,
            unit_price_minor: amount,
        }],
        channel: "web".into(),
        ..Default::default()
    }
}

async fn account(c: &mut Clients, customer_id: &str) -> anyhow::Result<pb::LoyaltyAccount> {
    Ok(c.loyalty
        .get_loyalty_account(pb::GetLoyaltyAccountRequest {
            customer_id: customer_id.to_owned(),
        })
        .await?
        .into_inner()
        .account
        .unwrap_or_default())
}

/// A loyalty member's year in one go: rules, enrolment, two purchases (the
/// second lifts the tier at once), a retried and a conflicting order id,
/// a redemption from the soonest-expiring lot, a partial refund that claws
/// back its share, a reward claimed for a coupon that redeems once; the
/// account then equals what the steps imply. Returns the balance.
pub async fn loyalty_journey(c: &mut Clients, customer_id: &str) -> anyhow::Result<i64> {
    let rules = c
        .loyalty
        .set_earning_rules(standard_rules())
        .await?
        .into_inner();
    let enrol = pb::EnrolRequest {
        command: command(),
        customer_id: customer_id.to_owned(),
        programme_id: "default".into(),
    };
    c.loyalty.enrol(enrol.clone()).await?;
    let again = c.loyalty.enrol(enrol).await?.into_inner();
    ensure(again.result.is_some_and(|r| r.replayed), || {
        "a retried enrolment must be replayed".into()
    })?;

    // 12,000 JPY at 1 point per 100 JPY: 120 points, in one append with the purchase.
    let first_order = format!("order-{}", Uuid::now_v7());
    let first_request = purchase(customer_id, &first_order, 12_000);
    let first = c
        .loyalty
        .record_purchase(first_request.clone())
        .await?
        .into_inner();
    ensure(
        first.points_earned == 120 && first.rules_version == rules.version,
        || format!("first purchase: {first:?}"),
    )?;
    let result = first.result.clone().unwrap_or_default();
    ensure(
        result.streams.len() == 1
            && result.event_types == ["loyalty.purchase_recorded", "loyalty.points_earned"],
        || format!("purchase and points must be one append: {result:?}"),
    )?;
    let before = head(&mut c.log).await?;
    let retried = c
        .loyalty
        .record_purchase(first_request.clone())
        .await?
        .into_inner();
    ensure(
        retried.result.as_ref().is_some_and(|r| r.replayed) && retried.lot_id == first.lot_id,
        || format!("a retried purchase must return the first result: {retried:?}"),
    )?;
    // The same order again under a new command id: nothing new.
    c.loyalty
        .record_purchase(pb::RecordPurchaseRequest {
            command: command(),
            ..first_request.clone()
        })
        .await?;
    ensure(head(&mut c.log).await? == before, || {
        "a repeated order id appended something".into()
    })?;
    refused(
        c.loyalty
            .record_purchase(pb::RecordPurchaseRequest {
                command: command(),
                amount_minor: 13_000,
                ..first_request
            })
            .await,
        "ORDER_ALREADY_RECORDED",
    )?;

    // 25,000 more crosses 30,000: silver at once, on this purchase; the
    // purchase itself still earns at the tier held before it (1x).
    let second_order = format!("order-{}", Uuid::now_v7());
    let second = c
        .loyalty
        .record_purchase(purchase(customer_id, &second_order, 25_000))
        .await?
        .into_inner();
    ensure(second.points_earned == 250, || {
        format!("second purchase: {second:?}")
    })?;
    let change = second.tier_change.clone().unwrap_or_default();
    ensure(
        change.from_tier.is_empty() && change.to_tier == "silver",
        || format!("tier change: {change:?}"),
    )?;

    // Redeeming takes from the lot that expires first.
    let redeemed = c
        .loyalty
        .redeem_points(pb::RedeemPointsRequest {
            command: command(),
            customer_id: customer_id.to_owned(),
            points: 100,
            reason: "gift wrapping".into(),
        })
        .await?
        .into_inner();
    let lots = account(c, customer_id).await?.lots;
    let soonest = lots
        .iter()
        .filter_map(|l| l.expires_at.map(|t| (t.seconds, t.nanos)))
        .min()
        .unwrap_or_default();
    ensure(
        redeemed.taken.len() == 1
            && lots.iter().any(|l| {
                l.lot_id == redeemed.taken[0].lot_id
                    && l.expires_at.map(|t| (t.seconds, t.nanos)) == Some(soonest)
            }),
        || format!("redeemed {:?} from lots {lots:?}", redeemed.taken),
    )?;
    refused(
        c.loyalty
            .redeem_points(pb::RedeemPointsRequest {
                command: command(),
                customer_id: customer_id.to_owned(),
                points: 1_000_000,
                reason: "too much".into(),
            })
            .await,
        "INSUFFICIENT_POINTS",
    )?;

    // Half of the second order comes back: half of its 250 points go too.
    let refund = c
        .loyalty
        .refund_purchase(pb::RefundPurchaseRequest {
            command: command(),
            customer_id: customer_id.to_owned(),
            order_id: second_order.clone(),
            amount_minor: 12_500,
        })
        .await?
        .into_inner();
    ensure(
        refund.points_clawed_back == 125 && refund.shortfall == 0,
        || format!("refund: {refund:?}"),
    )?;

    // A reward: 50 points for a coupon, one per customer.
    let reward = c
        .loyalty
        .define_reward(pb::DefineRewardRequest {
            command: command(),
            name: "Free coffee".into(),
            points_cost: 50,
            stock: 10,
            per_customer_limit: 1,
            coupon_validity: days(30),
            ..Default::default()
        })
        .await?
        .into_inner();
    let claim = pb::ClaimRewardRequest {
        command: command(),
        customer_id: customer_id.to_owned(),
        reward_id: reward.reward_id.clone(),
    };
    let claimed = c.loyalty.claim_reward(claim.clone()).await?.into_inner();
    ensure(
        !claimed.coupon_code.is_empty() && claimed.points == 50,
        || format!("claim: {claimed:?}"),
    )?;
    let claimed_again = c.loyalty.claim_reward(claim).await?.into_inner();
    ensure(claimed_again.coupon_code == claimed.coupon_code, || {
        "a retried claim must return the same coupon".into()
    })?;
    refused(
        c.loyalty
            .claim_reward(pb::ClaimRewardRequest {
                command: command(),
                customer_id: customer_id.to_owned(),
                reward_id: reward.reward_id.clone(),
            })
            .await,
        "REWARD_LIMIT_REACHED",
    )?;
    let redeem = |code: String| pb::RedeemCouponRequest {
        command: command(),
        code,
        customer_id: customer_id.to_owned(),
        channel: "store".into(),
        order_id: format!("order-{}", Uuid::now_v7()),
    };
    // Typed by a cashier: lower case, no dashes.
    let typed = claimed.coupon_code.replace('-', "").to_lowercase();
    let used = c.loyalty.redeem_coupon(redeem(typed)).await?.into_inner();
    ensure(used.reward_id == reward.reward_id, || {
        format!("coupon redeemed for {:?}", used.reward_id)
    })?;
    refused(
        c.loyalty
            .redeem_coupon(redeem(claimed.coupon_code.clone()))
            .await,
        "COUPON_ALREADY_REDEEMED",
    )?;

    let acct = account(c, customer_id).await?;
    let expected = 120 + 250 - 100 - 125 - 50;
    ensure(
        acct.balance == expected && acct.tier == "silver" && acct.total_earned == 370,
        || format!("account after the journey: {acct:?}"),
    )?;
    let remaining: i64 = acct.lots.iter().map(|l| l.remaining).sum();
    ensure(remaining == acct.balance, || {
        format!(
            "the lots hold {remaining}, the balance says {}",
            acct.balance
        )
    })?;
    Ok(acct.balance)
}

/// Two launched e-mail campaigns for one customer, one window.
#[derive(Debug, Clone)]
pub struct CampaignPair {
    /// The lower-priority campaign.
    pub spring: String,
    /// The higher-priority campaign.
    pub vip: String,
}

fn window_around(now: Timestamp) -> pb::CampaignWindow {
    pb::CampaignWindow {
        starts_at: Some(Timestamp {
            seconds: now.seconds - 3600,
            nanos: 0,
        }),
        ends_at: Some(Timestamp {
            seconds: now.seconds + 7 * DAY_SECS,
            nanos: 0,
        }),
    }
}

/// A campaign around `now` on e-mail with `audience`, created and launched.
pub async fn launched_campaign(
    c: &mut Clients,
    name: &str,
    offer_code: &str,
    priority: i32,
    audience: &[String],
    now: Timestamp,
) -> anyhow::Result<String> {
    let created = c
        .campaign
        .create_campaign(pb::CreateCampaignRequest {
            command: command(),
            name: name.into(),
            channel: pb::ContactChannel::Email as i32,
            customer_ids: audience.to_vec(),
            window: Some(window_around(now)),
            budget: Some(pb::CampaignBudget {
                amount_minor: 100_000,
                currency: "JPY".into(),
            }),
            offer: Some(pb::CampaignOffer {
                offer_code: offer_code.into(),
                description: format!("{name}: members' offer"),
            }),
            priority,
            frequency_cap: Some(pb::CampaignFrequencyCap {
                max_sends: 3,
                per: days(7),
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    c.campaign
        .launch_campaign(pb::LaunchCampaignRequest {
            command: command(),
            campaign_id: created.campaign_id.clone(),
        })
        .await?;
    Ok(created.campaign_id)
}

/// Two campaigns race 50 sends each to one customer at once: exactly one
/// send is approved; the other 49 of its campaign are ALREADY_SENT and all
/// 50 of the other campaign CONFLICTING_OFFER naming the winner. The
/// customer's outreach stream holds the 100 decisions and one approval.
/// Then the winning send is delivered, converts and costs: ROI follows.
pub async fn campaign_race(
    c: &mut Clients,
    customer_id: &str,
    now: Timestamp,
) -> anyhow::Result<CampaignPair> {
    let audience = [customer_id.to_owned()];
    let spring = launched_campaign(c, "Spring sale", "SPRING-10", 50, &audience, now).await?;
    let vip = launched_campaign(c, "VIP week", "VIP-20", 80, &audience, now).await?;
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..100 {
        let mut client = c.campaign.clone();
        let campaign_id = if i % 2 == 0 { &spring } else { &vip }.clone();
        let customer_id = customer_id.to_owned();
        sends.spawn(async move {
            client
                .send_to_customer(pb::SendToCustomerRequest {
                    command: command(),
                    campaign_id,
                    customer_id,
                })
                .await
                .map(|r| r.into_inner())
        });
    }
    let mut approved = Vec::new();
    let mut suppressed = Vec::new();
    while let Some(done) = sends.join_next().await {
        match done??.decision.and_then(|d| d.outcome) {
            Some(pb::outreach_decision::Outcome::Approved(a)) => approved.push(a),
            Some(pb::outreach_decision::Outcome::Suppressed(s)) => suppressed.push(s),
            None => anyhow::bail!("a send came back without a decision"),
        }
    }
    ensure(approved.len() == 1 && suppressed.len() == 99, || {
        format!(
            "{} approved, {} suppressed: {approved:?}",
            approved.len(),
            suppressed.len()
        )
    })?;
    let winner = approved[0].clone();
    let loser = if winner.campaign_id == spring {
        &vip
    } else {
        &spring
    };
    for s in &suppressed {
        let reason = pb::OutreachSuppressionReason::try_from(s.reason).unwrap_or_default();
        let expected = if s.campaign_id == winner.campaign_id {
            reason == pb::OutreachSuppressionReason::AlreadySent
        } else {
            &s.campaign_id == loser
                && reason == pb::OutreachSuppressionReason::ConflictingOffer
                && s.conflicting_campaign_id == winner.campaign_id
        };
        ensure(expected, || format!("unexpected suppression {s:?}"))?;
    }
    let outreach = stream_events(&mut c.log, &format!("outreach-{customer_id}")).await?;
    let approvals = outreach
        .iter()
        .filter(|e| e.event_type == "outreach.send_approved")
        .count();
    ensure(outreach.len() == 100 && approvals == 1, || {
        format!(
            "outreach stream: {} events, {approvals} approvals",
            outreach.len()
        )
    })?;

    // The one offer that went out: delivered, bought from, paid for.
    let (campaign_id, send_id) = (winner.campaign_id.clone(), winner.send_id.clone());
    c.campaign
        .record_delivery(pb::RecordDeliveryRequest {
            command: command(),
            campaign_id: campaign_id.clone(),
            send_id: send_id.clone(),
            customer_id: customer_id.to_owned(),
        })
        .await?;
    c.campaign
        .attribute_conversion(pb::AttributeConversionRequest {
            command: command(),
            campaign_id: campaign_id.clone(),
            send_id: send_id.clone(),
            customer_id: customer_id.to_owned(),
            order_id: format!("order-{}", Uuid::now_v7()),
            revenue: Some(pb::CampaignAmount {
                amount_minor: 30_000,
                currency: "JPY".into(),
            }),
        })
        .await?;
    c.campaign
        .record_cost(pb::RecordCostRequest {
            command: command(),
            campaign_id: campaign_id.clone(),
            send_id,
            customer_id: customer_id.to_owned(),
            cost: Some(pb::CampaignAmount {
                amount_minor: 500,
                currency: "JPY".into(),
            }),
            reason: "e-mail delivery".into(),
        })
        .await?;
    let campaign = c
        .campaign
        .get_campaign(pb::GetCampaignRequest { campaign_id })
        .await?
        .into_inner()
        .campaign
        .unwrap_or_default();
    let roi = campaign.roi.unwrap_or_default();
    let totals = campaign.totals.unwrap_or_default();
    ensure(
        roi.revenue_minor == 30_000 && roi.cost_minor == 500 && roi.net_minor == 29_500,
        || format!("roi {roi:?}"),
    )?;
    ensure(
        totals.sends == 1 && totals.delivered == 1 && totals.conversions == 1,
        || format!("totals {totals:?}"),
    )?;
    Ok(CampaignPair { spring, vip })
}

/// A trigger that targets big spenders into `campaign_id`: an order of
/// 50,000 JPY or more.
pub async fn define_big_spender_trigger(
    c: &mut Clients,
    campaign_id: &str,
) -> anyhow::Result<String> {
    Ok(c.triggers
        .define_trigger(pb::DefineTriggerRequest {
            command: command_with_id(Uuid::now_v7()),
            name: "Big spenders to the upsell campaign".into(),
            campaign_id: campaign_id.to_owned(),
            condition: Some(pb::define_trigger_request::Condition::OnEvent(
                pb::TriggerOnEvent {
                    event_type: "loyalty.purchase_recorded".into(),
                    conditions: vec![pb::TriggerFieldCondition {
                        path: "amount_minor".into(),
                        op: pb::TriggerConditionOp::GreaterOrEqual as i32,
                        value: "50000".into(),
                    }],
                },
            )),
            ..Default::default()
        })
        .await?
        .into_inner()
        .trigger_id)
}

/// Waits until the trigger processor has read the log up to `position`
/// (it runs in the background of the campaign role).
pub async fn wait_for_trigger_processor(c: &mut Clients, position: u64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    loop {
        let status = c
            .triggers
            .get_trigger_processor_status(pb::GetTriggerProcessorStatusRequest {})
            .await?
            .into_inner();
        if status.processed_position >= position {
            return Ok(());
        }
        ensure(tokio::time::Instant::now() < deadline, || {
            format!("the trigger processor did not reach {position}: {status:?}")
        })?;
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// `campaign.customers_targeted` events on `campaign_id`'s stream.
pub async fn targeting_events(c: &mut Clients, campaign_id: &str) -> anyhow::Result<usize> {
    Ok(
        stream_events(&mut c.log, &format!("campaign-{campaign_id}"))
            .await?
            .iter()
            .filter(|e| e.event_type == "campaign.customers_targeted")
            .count(),
    )
}

/// Event-based marketing: a big order targets its customer into the upsell
/// campaign once; a small one does not. Returns the upsell campaign id.
pub async fn trigger_targets_big_spender(
    c: &mut Clients,
    customer_id: &str,
    now: Timestamp,
) -> anyhow::Result<String> {
    let upsell = launched_campaign(c, "Upsell", "UPSELL-5", 30, &[], now).await?;
    define_big_spender_trigger(c, &upsell).await?;
    c.loyalty
        .record_purchase(purchase(
            customer_id,
            &format!("order-{}", Uuid::now_v7()),
            1_000,
        ))
        .await?;
    c.loyalty
        .record_purchase(purchase(
            customer_id,
            &format!("order-{}", Uuid::now_v7()),
            60_000,
        ))
        .await?;
    let position = head(&mut c.log).await?;
    wait_for_trigger_processor(c, position).await?;
    let campaign = c
        .campaign
        .get_campaign(pb::GetCampaignRequest {
            campaign_id: upsell.clone(),
        })
        .await?
        .into_inner()
        .campaign
        .unwrap_or_default();
    ensure(campaign.audience_size == 1, || {
        format!("upsell audience {}", campaign.audience_size)
    })?;
    ensure(targeting_events(c, &upsell).await? == 1, || {
        "the trigger must target exactly once".into()
    })?;
    Ok(upsell)
}
