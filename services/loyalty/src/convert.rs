//! Requests to domain commands and domain state to replies. Ids are parsed
//! and durations read here, each failure naming the request field; content
//! rules (ranges, currencies, lengths) are the domain's, which names the
//! same fields.

use kizuna_domain::loyalty::{
    DEFAULT_LOT_LIFETIME, EarningRate, EarningRuleSet, LineItem, LoyaltyState, RecordPurchase,
    TierRule,
};
use kizuna_domain::reward::{CouponState, RewardState};
use kizuna_domain::time::duration_from_proto;
use kizuna_domain::{DomainError, pb};
use std::time::Duration;

pub(crate) use kizuna_command::fields::{optional_id, required_id};

/// Longest order id, in bytes.
const MAX_ORDER_ID_BYTES: usize = 256;

fn duration(
    field: &str,
    value: Option<&prost_types::Duration>,
    default: Duration,
) -> Result<Duration, DomainError> {
    match value {
        None => Ok(default),
        Some(d) => duration_from_proto(d).ok_or_else(|| {
            DomainError::invalid(field, "must be a non-negative, well-formed duration")
        }),
    }
}

/// A required, positive duration.
pub(crate) fn required_duration(
    field: &str,
    value: Option<&prost_types::Duration>,
) -> Result<Duration, DomainError> {
    let d = duration(field, value, Duration::ZERO)?;
    if d.is_zero() {
        return Err(DomainError::invalid(
            field,
            "is required and must be positive",
        ));
    }
    Ok(d)
}

fn order_id(value: &str) -> Result<String, DomainError> {
    if value.len() > MAX_ORDER_ID_BYTES {
        return Err(DomainError::invalid(
            "order_id",
            format!("is longer than {MAX_ORDER_ID_BYTES} bytes"),
        ));
    }
    Ok(value.to_owned())
}

/// The rule set a SetEarningRules request describes.
pub(crate) fn earning_rules(
    req: &pb::SetEarningRulesRequest,
) -> Result<EarningRuleSet, DomainError> {
    Ok(EarningRuleSet {
        version: 0,
        rates: req
            .rates
            .iter()
            .map(|r| EarningRate {
                currency: r.currency.clone(),
                unit_minor: r.unit_minor,
                points_per_unit: r.points_per_unit,
            })
            .collect(),
        category_multipliers: req
            .category_multipliers
            .iter()
            .map(|m| (m.category.trim().to_owned(), m.multiplier_bp))
            .collect(),
        campaign_multipliers: req
            .campaign_multipliers
            .iter()
            .map(|m| (m.campaign_id.trim().to_owned(), m.multiplier_bp))
            .collect(),
        monthly_cap: req.monthly_cap,
        lot_lifetime: duration(
            "lot_lifetime",
            req.lot_lifetime.as_ref(),
            DEFAULT_LOT_LIFETIME,
        )?,
        tiers: req
            .tiers
            .iter()
            .map(|t| TierRule {
                name: t.name.trim().to_owned(),
                min_spend_minor: t.min_spend_minor,
                min_purchase_count: t.min_purchase_count,
                multiplier_bp: t.multiplier_bp,
            })
            .collect(),
        tier_currency: req.tier_currency.clone(),
        tier_window: duration(
            "tier_window",
            req.tier_window.as_ref(),
            DEFAULT_LOT_LIFETIME,
        )?,
        tier_grace: duration("tier_grace", req.tier_grace.as_ref(), Duration::ZERO)?,
    })
}

/// RecordPurchase with the rules in force.
pub(crate) fn record_purchase(
    req: &pb::RecordPurchaseRequest,
    rules: EarningRuleSet,
) -> Result<RecordPurchase, DomainError> {
    Ok(RecordPurchase {
        order_id: order_id(&req.order_id)?,
        amount_minor: req.amount_minor,
        currency: req.currency.clone(),
        line_items: req
            .line_items
            .iter()
            .map(|i| LineItem {
                sku: i.sku.clone(),
                category: i.category.clone(),
                quantity: i.quantity,
                unit_price_minor: i.unit_price_minor,
            })
            .collect(),
        channel: req.channel.clone(),
        store_id: req.store_id.clone(),
        campaign_id: (!req.campaign_id.trim().is_empty()).then(|| req.campaign_id.clone()),
        rules,
    })
}

/// The account view.
pub(crate) fn account(state: &LoyaltyState) -> pb::LoyaltyAccount {
    pb::LoyaltyAccount {
        customer_id: state.customer_id.map(|c| c.to_string()).unwrap_or_default(),
        programme_id: state.programme_id.clone(),
        balance: state.balance(),
        tier: state.tier.clone(),
        tier_since: if state.tier.is_empty() {
            None
        } else {
            state.tier_since
        },
        lots: state
            .lots
            .iter()
            .map(|l| pb::LoyaltyLot {
                lot_id: l.id.to_string(),
                points: l.points,
                remaining: l.remaining,
                earned_at: Some(l.earned_at),
                expires_at: Some(l.expires_at),
                expired: state.expired_lots.contains(&l.id),
            })
            .collect(),
        purchases: state
            .purchases
            .values()
            .map(|p| {
                let r = &p.recorded;
                pb::LoyaltyPurchase {
                    order_id: r.order_id.clone(),
                    amount_minor: r.amount_minor,
                    currency: r.currency.clone(),
                    line_items: r.line_items.clone(),
                    channel: r.channel.clone(),
                    store_id: r.store_id.clone(),
                    campaign_id: r.campaign_id.clone(),
                    purchased_at: r.purchased_at,
                    points: p.points,
                    lot_id: p.lot_id.map(|l| l.to_string()).unwrap_or_default(),
                    refunded_minor: p.refunded_minor,
                    refunds: p
                        .refunds
                        .iter()
                        .map(|(at, amount)| pb::LoyaltyRefund {
                            amount_minor: *amount,
                            refunded_at: Some(*at),
                        })
                        .collect(),
                }
            })
            .collect(),
        total_earned: state.total_earned,
        total_redeemed: state.total_redeemed,
        total_expired: state.total_expired,
        total_clawed_back: state.total_clawed_back,
        total_adjusted: state.total_adjusted,
    }
}

/// The reward view; `None` when it was never defined.
pub(crate) fn reward(state: &RewardState) -> Option<pb::LoyaltyReward> {
    let d = state.defined.as_ref()?;
    Some(pb::LoyaltyReward {
        reward_id: d.reward_id.clone(),
        name: d.name.clone(),
        points_cost: d.points_cost,
        stock: state.stock,
        per_customer_limit: d.per_customer_limit,
        coupon_validity: d.coupon_validity,
        retired: state.retired,
        claimed: state.claimed,
        defined_at: d.defined_at,
    })
}

/// The coupon view; `None` when it was never issued.
pub(crate) fn coupon(state: &CouponState) -> Option<pb::LoyaltyCoupon> {
    let i = state.issued.as_ref()?;
    let r = state.redeemed.as_ref();
    Some(pb::LoyaltyCoupon {
        code: i.code.clone(),
        reward_id: i.reward_id.clone(),
        customer_id: i.customer_id.clone(),
        points: i.points,
        issued_at: i.issued_at,
        expires_at: i.expires_at,
        redeemed_at: r.and_then(|r| r.redeemed_at),
        redeemed_channel: r.map(|r| r.channel.clone()).unwrap_or_default(),
        redeemed_order_id: r.map(|r| r.order_id.clone()).unwrap_or_default(),
    })
}
