//! Loyalty: one points account per customer (stream `loyalty-{customer_id}`),
//! points as lots with expiry, earning rules and tiers.
//!
//! Points are never a bare counter: each earning or positive adjustment opens
//! a lot with its own expiry, and spending takes from lots, oldest expiring
//! first, so expiry and claw-back know exactly which points they touch. The
//! balance is the sum of the lots' remaining points and never goes negative.
//!
//! The caller loads the current [`EarningRuleSet`] (see [`EarningRules`]) and
//! passes it in the commands that need it; the events record the version used.
//!
//! Reason codes: [`ALREADY_ENROLLED`], [`ORDER_ALREADY_RECORDED`],
//! [`ORDER_NOT_FOUND`], [`REFUND_EXCEEDS_PURCHASE`], [`INSUFFICIENT_POINTS`].

mod rules;
#[cfg(test)]
mod tests;

pub use rules::{
    DAY, DEFAULT_LOT_LIFETIME, EARNING_RULES_CATEGORY, EARNING_RULES_NAMESPACE, EarningRate,
    EarningRuleSet, EarningRules, EarningRulesCommand, EarningRulesEvent, MAX_MULTIPLIER_BP,
    MAX_POINTS_PER_UNIT, ONE_X_BP, TierRule, default_rules_id, earning_rules_stream,
};

use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::money::check_currency;
use crate::pb;
use crate::time::{add, sub, unix_nanos};
use prost_types::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

crate::event_messages! {
    pb::LoyaltyEnrolled => "loyalty.enrolled" version 1,
    pb::LoyaltyPurchaseRecorded => "loyalty.purchase_recorded" version 1,
    pb::LoyaltyPointsEarned => "loyalty.points_earned" version 1,
    pb::LoyaltyPurchaseRefunded => "loyalty.purchase_refunded" version 1,
    pb::LoyaltyPointsClawedBack => "loyalty.points_clawed_back" version 1,
    pb::LoyaltyPointsRedeemed => "loyalty.points_redeemed" version 1,
    pb::LoyaltyPointsAdjusted => "loyalty.points_adjusted" version 1,
    pb::LoyaltyPointsExpired => "loyalty.points_expired" version 1,
    pb::LoyaltyTierChanged => "loyalty.tier_changed" version 1,
}

crate::event_enum! {
    /// Events of the loyalty account stream.
    pub enum LoyaltyEvent {
        /// The customer joined the programme.
        Enrolled(pb::LoyaltyEnrolled),
        /// A purchase was recorded.
        PurchaseRecorded(pb::LoyaltyPurchaseRecorded),
        /// A purchase earned points (a new lot).
        PointsEarned(pb::LoyaltyPointsEarned),
        /// A purchase was (partly) refunded.
        PurchaseRefunded(pb::LoyaltyPurchaseRefunded),
        /// Points of a refunded purchase were taken back.
        PointsClawedBack(pb::LoyaltyPointsClawedBack),
        /// Points were spent.
        PointsRedeemed(pb::LoyaltyPointsRedeemed),
        /// Points were added or removed by hand.
        PointsAdjusted(pb::LoyaltyPointsAdjusted),
        /// A lot's remaining points expired.
        PointsExpired(pb::LoyaltyPointsExpired),
        /// The tier changed.
        TierChanged(pb::LoyaltyTierChanged),
    }
}

/// The customer is enrolled in another programme.
pub const ALREADY_ENROLLED: &str = "ALREADY_ENROLLED";
/// The order id was recorded before with different contents.
pub const ORDER_ALREADY_RECORDED: &str = "ORDER_ALREADY_RECORDED";
/// A refund names an order the account never recorded.
pub const ORDER_NOT_FOUND: &str = "ORDER_NOT_FOUND";
/// The refunds of an order would exceed its amount.
pub const REFUND_EXCEEDS_PURCHASE: &str = "REFUND_EXCEEDS_PURCHASE";
/// Not enough unexpired points.
pub const INSUFFICIENT_POINTS: &str = "INSUFFICIENT_POINTS";

/// Most points one command may earn, spend or adjust: far above any real
/// purchase, and low enough that an account's totals never overflow.
pub const MAX_POINTS: i64 = 1_000_000_000_000;

/// Largest purchase or refund amount, in minor units (the campaigns' bound).
pub const MAX_AMOUNT_MINOR: i64 = crate::campaign::MAX_AMOUNT_MINOR;

/// The stream category of loyalty accounts.
pub const LOYALTY_CATEGORY: &str = "loyalty";

/// The stream of `customer_id`'s loyalty account.
pub fn loyalty_stream(customer_id: Uuid) -> String {
    format!("{LOYALTY_CATEGORY}-{customer_id}")
}

/// A lot of points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    /// The lot's id.
    pub id: Uuid,
    /// Points credited when it was opened.
    pub points: i64,
    /// Points not yet spent, clawed back or expired.
    pub remaining: i64,
    /// When it was opened.
    pub earned_at: Timestamp,
    /// When its remaining points expire.
    pub expires_at: Timestamp,
}

/// A recorded purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    /// The event that recorded it.
    pub recorded: pb::LoyaltyPurchaseRecorded,
    /// Points it earned.
    pub points: i64,
    /// The lot it opened.
    pub lot_id: Option<Uuid>,
    /// Version of the earning rules it earned under (0 before it earned).
    pub rules_version: u64,
    /// Sum of its refunds, minor units.
    pub refunded_minor: i64,
    /// Its refunds, `(when, amount_minor)`, oldest first.
    pub refunds: Vec<(Timestamp, i64)>,
}

impl Purchase {
    fn net_minor(&self) -> i64 {
        self.recorded.amount_minor - self.refunded_minor
    }

    /// What was left of it at `at` (refunds count from when they happened).
    fn net_minor_at(&self, at: i128) -> i64 {
        let refunded: i64 = self
            .refunds
            .iter()
            .filter(|(t, _)| nanos(t) <= at)
            .map(|(_, a)| a)
            .sum();
        self.recorded.amount_minor - refunded
    }
}

/// A loyalty account, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoyaltyState {
    /// The customer, once enrolled.
    pub customer_id: Option<Uuid>,
    /// The programme joined.
    pub programme_id: String,
    /// Every lot ever opened, in order of opening.
    pub lots: Vec<Lot>,
    /// Lots whose expiry was recorded.
    pub expired_lots: BTreeSet<Uuid>,
    /// Purchases by order id.
    pub purchases: BTreeMap<String, Purchase>,
    /// Points earned by purchases per calendar month (UTC), `(year, month)`.
    pub monthly_earned: BTreeMap<(i64, u32), i64>,
    /// The current tier; empty for none.
    pub tier: String,
    /// When the current tier was reached.
    pub tier_since: Option<Timestamp>,
    /// Points ever earned by purchases.
    pub total_earned: i64,
    /// Points ever redeemed.
    pub total_redeemed: i64,
    /// Points ever expired.
    pub total_expired: i64,
    /// Points ever clawed back.
    pub total_clawed_back: i64,
    /// Net points of all adjustments.
    pub total_adjusted: i64,
}

impl LoyaltyState {
    /// The balance: the sum of the lots' remaining points.
    pub fn balance(&self) -> i64 {
        self.lots
            .iter()
            .fold(0_i64, |sum, l| sum.saturating_add(l.remaining))
    }

    fn customer(&self) -> Result<Uuid, DomainError> {
        self.customer_id
            .ok_or_else(|| DomainError::not_found("loyalty account", "(not enrolled)"))
    }

    fn lot_mut(&mut self, id: &str) -> Option<&mut Lot> {
        let id = Uuid::parse_str(id).ok()?;
        self.lots.iter_mut().find(|l| l.id == id)
    }

    fn take(&mut self, taken: &[pb::LoyaltyLotPoints]) -> i64 {
        let mut total = 0;
        for t in taken {
            if let Some(lot) = self.lot_mut(&t.lot_id) {
                lot.remaining -= t.points;
                total += t.points;
            }
        }
        total
    }

    fn open_lot(
        &mut self,
        id: &str,
        points: i64,
        earned_at: Option<Timestamp>,
        expires_at: Option<Timestamp>,
    ) {
        if let Ok(id) = Uuid::parse_str(id) {
            self.lots.push(Lot {
                id,
                points,
                remaining: points,
                earned_at: earned_at.unwrap_or_default(),
                expires_at: expires_at.unwrap_or_default(),
            });
        }
    }
}

/// One line of a purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    /// Stock keeping unit (required).
    pub sku: String,
    /// Category, matched against the category multipliers.
    pub category: String,
    /// How many (> 0).
    pub quantity: i64,
    /// Price of one in minor units (>= 0).
    pub unit_price_minor: i64,
}

/// Joins the programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrol {
    /// The customer (the stream's id).
    pub customer_id: Uuid,
    /// The programme (required).
    pub programme_id: String,
}

/// Records a purchase and credits its points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPurchase {
    /// Unique per account (required).
    pub order_id: String,
    /// Amount paid in minor units (> 0).
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The lines bought. Each line's share of the amount paid is its share of
    /// the lines' list total, weighted by its category multiplier.
    pub line_items: Vec<LineItem>,
    /// Where it was bought (required).
    pub channel: String,
    /// The store, when bought in one.
    pub store_id: String,
    /// The campaign it was bought under, if any.
    pub campaign_id: Option<String>,
    /// The current earning rules.
    pub rules: EarningRuleSet,
}

/// Refunds (part of) a purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPurchase {
    /// The order.
    pub order_id: String,
    /// Amount refunded in minor units (> 0).
    pub amount_minor: i64,
}

/// Spends points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemPoints {
    /// Points to spend (> 0).
    pub points: i64,
    /// What for (required).
    pub reason: String,
}

/// Spends points on a reward claim (see [`crate::reward::claim`]), naming
/// the reward and the coupon they paid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemForReward {
    /// Points to spend (> 0): the reward's cost.
    pub points: i64,
    /// The reward claimed.
    pub reward_id: Uuid,
    /// The coupon issued for the claim (canonical form).
    pub coupon_code: String,
    /// What for, as recorded in `reason`.
    pub reason: String,
}

/// Adds or removes points by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustPoints {
    /// Signed change (not 0).
    pub points: i64,
    /// Why (required).
    pub reason: String,
    /// Who (required).
    pub actor: String,
    /// The current earning rules (for a new lot's lifetime).
    pub rules: EarningRuleSet,
}

/// What a caller asks of a loyalty account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoyaltyCommand {
    /// Join the programme.
    Enrol(Enrol),
    /// Record a purchase.
    RecordPurchase(RecordPurchase),
    /// Refund a purchase.
    Refund(RefundPurchase),
    /// Spend points.
    Redeem(RedeemPoints),
    /// Spend points on a reward claim.
    RedeemForReward(RedeemForReward),
    /// Adjust points.
    Adjust(AdjustPoints),
    /// Expire every lot whose expiry is at or before `now`.
    ExpirePoints {
        /// The time to expire up to (the scheduler's clock).
        now: Timestamp,
    },
    /// Review the tier at the end of a period: downgrade once the current tier
    /// has not qualified for longer than the grace period.
    ReviewTier {
        /// The time of the review (the scheduler's clock).
        now: Timestamp,
        /// The current earning rules.
        rules: EarningRuleSet,
    },
}

/// The loyalty account's rules.
#[derive(Debug)]
pub struct Loyalty;

fn required(field: &str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        Err(DomainError::invalid(field, "is required"))
    } else {
        Ok(())
    }
}

/// `points` checked to lie in `min..=MAX_POINTS`.
fn check_points(field: &str, points: i64, min: i64) -> Result<(), DomainError> {
    if (min..=MAX_POINTS).contains(&points) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be between {min} and {MAX_POINTS}"),
        ))
    }
}

/// An amount checked to lie in `1..=MAX_AMOUNT_MINOR`.
fn check_amount(amount_minor: i64) -> Result<(), DomainError> {
    if (1..=MAX_AMOUNT_MINOR).contains(&amount_minor) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "amount_minor",
            format!("must be between 1 and {MAX_AMOUNT_MINOR}"),
        ))
    }
}

fn nanos(t: &Timestamp) -> i128 {
    unix_nanos(t)
}

/// `(year, month)` of `t` in UTC (civil-from-days, proleptic Gregorian).
pub fn utc_month(t: &Timestamp) -> (i64, u32) {
    let z = t.seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1))
}

/// Takes `points` from `lots` in the given order; returns what was taken.
fn take_from(lots: &[&Lot], mut points: i64) -> Vec<pb::LoyaltyLotPoints> {
    let mut taken = Vec::new();
    for lot in lots {
        if points == 0 {
            break;
        }
        let n = lot.remaining.min(points);
        if n > 0 {
            taken.push(pb::LoyaltyLotPoints {
                lot_id: lot.id.to_string(),
                points: n,
            });
            points -= n;
        }
    }
    taken
}

/// Lots with points left, oldest expiring first.
fn by_expiry(state: &LoyaltyState) -> Vec<&Lot> {
    let mut lots: Vec<&Lot> = state.lots.iter().filter(|l| l.remaining > 0).collect();
    lots.sort_by_key(|l| (nanos(&l.expires_at), nanos(&l.earned_at), l.id));
    lots
}

/// Unexpired lots with points left, oldest expiring first; an error when
/// they hold fewer than `points`.
fn spend(
    state: &LoyaltyState,
    points: i64,
    now: &Timestamp,
) -> Result<Vec<pb::LoyaltyLotPoints>, DomainError> {
    let live: Vec<&Lot> = by_expiry(state)
        .into_iter()
        .filter(|l| nanos(&l.expires_at) > nanos(now))
        .collect();
    let available = live
        .iter()
        .fold(0_i64, |sum, l| sum.saturating_add(l.remaining));
    if available < points {
        return Err(DomainError::rejected(
            INSUFFICIENT_POINTS,
            format!("{points} points asked, {available} available"),
        ));
    }
    Ok(take_from(&live, points))
}

fn too_large() -> DomainError {
    DomainError::invalid("amount_minor", "too large to compute points")
}

/// Points the rules give for `cmd` before the monthly cap.
fn points_for(cmd: &RecordPurchase, tier_bp: i32, campaign_bp: i32) -> Result<i64, DomainError> {
    let Some(rate) = cmd.rules.rate(&cmd.currency) else {
        return Ok(0);
    };
    let bp = i128::from(ONE_X_BP);
    let amount = i128::from(cmd.amount_minor);
    let mut list_total: i128 = 0;
    let mut weighted_total: i128 = 0;
    for item in &cmd.line_items {
        let line = i128::from(item.quantity)
            .checked_mul(i128::from(item.unit_price_minor))
            .ok_or_else(too_large)?;
        list_total = list_total.checked_add(line).ok_or_else(too_large)?;
        weighted_total = line
            .checked_mul(i128::from(cmd.rules.category_bp(&item.category)))
            .and_then(|w| w.checked_add(weighted_total))
            .ok_or_else(too_large)?;
    }
    // The amount paid (discounts, tax) is what earns; the lines only say how
    // it splits across categories.
    let weighted = if list_total == 0 {
        amount * bp
    } else {
        amount.checked_mul(weighted_total).ok_or_else(too_large)? / list_total
    };
    let numerator = weighted
        .checked_mul(i128::from(rate.points_per_unit))
        .and_then(|n| n.checked_mul(i128::from(tier_bp)))
        .and_then(|n| n.checked_mul(i128::from(campaign_bp)))
        .ok_or_else(too_large)?;
    let points = numerator / (i128::from(rate.unit_minor) * bp * bp * bp);
    i64::try_from(points).map_err(|_| too_large())
}

/// Net spend and purchase count in the window ending at `at`.
fn window_totals(state: &LoyaltyState, rules: &EarningRuleSet, at: &Timestamp) -> (i64, i64) {
    let start = nanos(&sub(at, rules.tier_window));
    let end = nanos(at);
    let mut spend: i64 = 0;
    let mut count: i64 = 0;
    for p in state.purchases.values() {
        let t = p.recorded.purchased_at.as_ref().map_or(0, nanos);
        if t > start && t <= end {
            count += 1;
            if p.recorded.currency == rules.tier_currency {
                spend = spend.saturating_add(p.net_minor_at(end));
            }
        }
    }
    (spend, count)
}

fn qualifies(tier: &TierRule, spend: i64, count: i64) -> bool {
    let by_spend = tier.min_spend_minor > 0 && spend >= tier.min_spend_minor;
    let by_count = tier.min_purchase_count > 0 && count >= tier.min_purchase_count;
    by_spend || by_count || (tier.min_spend_minor == 0 && tier.min_purchase_count == 0)
}

/// The highest tier qualifying at `at`, with a description of why.
fn best_tier(
    state: &LoyaltyState,
    rules: &EarningRuleSet,
    at: &Timestamp,
) -> (Option<usize>, String) {
    let (spend, count) = window_totals(state, rules, at);
    let best = rules.tiers.iter().rposition(|t| qualifies(t, spend, count));
    let why = format!(
        "spend {spend} {} and {count} purchases over the last {} days",
        rules.tier_currency,
        rules.tier_window.as_secs() / 86_400
    );
    (best, why)
}

fn tier_name(rules: &EarningRuleSet, rank: Option<usize>) -> String {
    rank.and_then(|r| rules.tiers.get(r))
        .map(|t| t.name.clone())
        .unwrap_or_default()
}

/// When the current tier stopped qualifying (at or before `now`), or `None`
/// if it still qualifies. Qualification only changes when a purchase is made
/// or refunded, or leaves the window, so those instants are the only ones to
/// look at.
fn stopped_qualifying(
    state: &LoyaltyState,
    rules: &EarningRuleSet,
    now: &Timestamp,
) -> Option<Timestamp> {
    let since = state.tier_since.unwrap_or_default();
    let Some(rank) = rules.tier_rank(&state.tier) else {
        // The tier is no longer in the rules: it stopped counting when it was reached.
        return Some(since);
    };
    let tier = &rules.tiers[rank];
    let holds = |at: &Timestamp| {
        let (spend, count) = window_totals(state, rules, at);
        qualifies(tier, spend, count)
    };
    if holds(now) {
        return None;
    }
    let mut instants: Vec<Timestamp> = vec![since];
    for p in state.purchases.values() {
        if let Some(t) = &p.recorded.purchased_at {
            instants.push(*t);
            instants.push(add(t, rules.tier_window));
        }
        instants.extend(p.refunds.iter().map(|(t, _)| *t));
    }
    instants.retain(|t| nanos(t) >= nanos(&since) && nanos(t) <= nanos(now));
    instants.sort_by_key(nanos);
    let last_held = instants.iter().rposition(holds);
    let stop = match last_held {
        Some(i) => instants.get(i + 1).copied().unwrap_or(*now),
        None => since,
    };
    Some(stop)
}

impl Decider for Loyalty {
    type State = LoyaltyState;
    type Command = LoyaltyCommand;
    type Event = LoyaltyEvent;

    fn decide(
        state: &LoyaltyState,
        command: &LoyaltyCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<LoyaltyEvent>, DomainError> {
        match command {
            LoyaltyCommand::Enrol(cmd) => enrol(state, cmd, ctx),
            LoyaltyCommand::RecordPurchase(cmd) => record_purchase(state, cmd, ctx),
            LoyaltyCommand::Refund(cmd) => refund(state, cmd, ctx),
            LoyaltyCommand::Redeem(cmd) => {
                let customer = state.customer()?;
                check_points("points", cmd.points, 1)?;
                required("reason", &cmd.reason)?;
                let taken = spend(state, cmd.points, &ctx.now)?;
                Ok(vec![LoyaltyEvent::PointsRedeemed(
                    pb::LoyaltyPointsRedeemed {
                        customer_id: customer.to_string(),
                        points: cmd.points,
                        reason: cmd.reason.trim().to_owned(),
                        taken,
                        redeemed_at: Some(ctx.now),
                        reward_id: String::new(),
                        coupon_code: String::new(),
                    },
                )])
            }
            LoyaltyCommand::RedeemForReward(cmd) => {
                let customer = state.customer()?;
                check_points("points", cmd.points, 1)?;
                let taken = spend(state, cmd.points, &ctx.now)?;
                Ok(vec![LoyaltyEvent::PointsRedeemed(
                    pb::LoyaltyPointsRedeemed {
                        customer_id: customer.to_string(),
                        points: cmd.points,
                        reason: cmd.reason.trim().to_owned(),
                        taken,
                        redeemed_at: Some(ctx.now),
                        reward_id: cmd.reward_id.to_string(),
                        coupon_code: cmd.coupon_code.clone(),
                    },
                )])
            }
            LoyaltyCommand::Adjust(cmd) => adjust(state, cmd, ctx),
            LoyaltyCommand::ExpirePoints { now } => {
                let customer = state.customer()?;
                let mut due: Vec<&Lot> = state
                    .lots
                    .iter()
                    .filter(|l| {
                        l.remaining > 0
                            && nanos(&l.expires_at) <= nanos(now)
                            && !state.expired_lots.contains(&l.id)
                    })
                    .collect();
                due.sort_by_key(|l| (nanos(&l.expires_at), l.id));
                Ok(due
                    .into_iter()
                    .map(|l| {
                        LoyaltyEvent::PointsExpired(pb::LoyaltyPointsExpired {
                            customer_id: customer.to_string(),
                            lot_id: l.id.to_string(),
                            points: l.remaining,
                            expires_at: Some(l.expires_at),
                            expired_at: Some(*now),
                        })
                    })
                    .collect())
            }
            LoyaltyCommand::ReviewTier { now, rules } => review_tier(state, now, rules),
        }
    }

    fn evolve(mut state: LoyaltyState, event: &LoyaltyEvent) -> LoyaltyState {
        match event {
            LoyaltyEvent::Enrolled(e) => {
                state.customer_id = Uuid::parse_str(&e.customer_id).ok();
                state.programme_id = e.programme_id.clone();
            }
            LoyaltyEvent::PurchaseRecorded(e) => {
                state.purchases.insert(
                    e.order_id.clone(),
                    Purchase {
                        recorded: e.clone(),
                        points: 0,
                        lot_id: None,
                        rules_version: 0,
                        refunded_minor: 0,
                        refunds: Vec::new(),
                    },
                );
            }
            LoyaltyEvent::PointsEarned(e) => {
                if let Some(p) = state.purchases.get_mut(&e.order_id) {
                    p.points = e.points;
                    p.lot_id = Uuid::parse_str(&e.lot_id).ok();
                    p.rules_version = e.rules_version;
                }
                let month = utc_month(&e.earned_at.unwrap_or_default());
                let month_total = state.monthly_earned.entry(month).or_default();
                *month_total = month_total.saturating_add(e.points);
                state.total_earned = state.total_earned.saturating_add(e.points);
                if e.points > 0 {
                    state.open_lot(&e.lot_id, e.points, e.earned_at, e.expires_at);
                }
            }
            LoyaltyEvent::PurchaseRefunded(e) => {
                if let Some(p) = state.purchases.get_mut(&e.order_id) {
                    p.refunded_minor = p.refunded_minor.saturating_add(e.amount_minor);
                    p.refunds
                        .push((e.refunded_at.unwrap_or_default(), e.amount_minor));
                }
            }
            LoyaltyEvent::PointsClawedBack(e) => {
                let took = state.take(&e.taken);
                state.total_clawed_back = state.total_clawed_back.saturating_add(took);
            }
            LoyaltyEvent::PointsRedeemed(e) => {
                let took = state.take(&e.taken);
                state.total_redeemed = state.total_redeemed.saturating_add(took);
            }
            LoyaltyEvent::PointsAdjusted(e) => {
                if e.points > 0 {
                    state.open_lot(&e.lot_id, e.points, e.adjusted_at, e.expires_at);
                    state.total_adjusted = state.total_adjusted.saturating_add(e.points);
                } else {
                    let took = state.take(&e.taken);
                    state.total_adjusted = state.total_adjusted.saturating_sub(took);
                }
            }
            LoyaltyEvent::PointsExpired(e) => {
                if let Some(lot) = state.lot_mut(&e.lot_id) {
                    lot.remaining -= e.points;
                    let id = lot.id;
                    state.expired_lots.insert(id);
                    state.total_expired = state.total_expired.saturating_add(e.points);
                }
            }
            LoyaltyEvent::TierChanged(e) => {
                state.tier = e.to_tier.clone();
                state.tier_since = e.changed_at;
            }
        }
        state
    }
}

fn enrol(
    state: &LoyaltyState,
    cmd: &Enrol,
    ctx: &mut Context<'_>,
) -> Result<Vec<LoyaltyEvent>, DomainError> {
    required("programme_id", &cmd.programme_id)?;
    let programme_id = cmd.programme_id.trim();
    if state.customer_id.is_some() {
        if state.programme_id == programme_id {
            return Ok(Vec::new());
        }
        return Err(DomainError::rejected(
            ALREADY_ENROLLED,
            format!("already enrolled in programme {}", state.programme_id),
        ));
    }
    Ok(vec![LoyaltyEvent::Enrolled(pb::LoyaltyEnrolled {
        customer_id: cmd.customer_id.to_string(),
        programme_id: programme_id.to_owned(),
        enrolled_at: Some(ctx.now),
    })])
}

fn record_purchase(
    state: &LoyaltyState,
    cmd: &RecordPurchase,
    ctx: &mut Context<'_>,
) -> Result<Vec<LoyaltyEvent>, DomainError> {
    let customer = state.customer()?;
    required("order_id", &cmd.order_id)?;
    check_amount(cmd.amount_minor)?;
    check_currency("currency", &cmd.currency)?;
    for (i, item) in cmd.line_items.iter().enumerate() {
        required(&format!("line_items[{i}].sku"), &item.sku)?;
        if item.quantity <= 0 {
            return Err(DomainError::invalid(
                format!("line_items[{i}].quantity"),
                "must be positive",
            ));
        }
        if item.unit_price_minor < 0 {
            return Err(DomainError::invalid(
                format!("line_items[{i}].unit_price_minor"),
                "must not be negative",
            ));
        }
    }
    required("channel", &cmd.channel)?;
    let campaign_id = cmd.campaign_id.as_deref().map(str::trim).unwrap_or("");
    let recorded = pb::LoyaltyPurchaseRecorded {
        customer_id: customer.to_string(),
        order_id: cmd.order_id.trim().to_owned(),
        amount_minor: cmd.amount_minor,
        currency: cmd.currency.clone(),
        line_items: cmd
            .line_items
            .iter()
            .map(|i| pb::LoyaltyLineItem {
                sku: i.sku.trim().to_owned(),
                category: i.category.trim().to_owned(),
                quantity: i.quantity,
                unit_price_minor: i.unit_price_minor,
            })
            .collect(),
        channel: cmd.channel.trim().to_owned(),
        store_id: cmd.store_id.trim().to_owned(),
        campaign_id: campaign_id.to_owned(),
        purchased_at: Some(ctx.now),
    };
    if let Some(existing) = state.purchases.get(&recorded.order_id) {
        let same = pb::LoyaltyPurchaseRecorded {
            purchased_at: existing.recorded.purchased_at,
            ..recorded
        };
        if same == existing.recorded {
            return Ok(Vec::new());
        }
        return Err(DomainError::rejected(
            ORDER_ALREADY_RECORDED,
            format!("order {} was recorded with other contents", same.order_id),
        ));
    }
    let rules = &cmd.rules;
    let tier_bp = rules.tier_bp(&state.tier);
    let campaign_bp = if campaign_id.is_empty() {
        ONE_X_BP
    } else {
        rules.campaign_bp(campaign_id)
    };
    let uncapped = points_for(cmd, tier_bp, campaign_bp)?;
    if uncapped > MAX_POINTS {
        return Err(DomainError::invalid(
            "amount_minor",
            format!("earns more than {MAX_POINTS} points, the most one purchase may"),
        ));
    }
    let points = match rules.monthly_cap {
        Some(cap) => {
            let used = state
                .monthly_earned
                .get(&utc_month(&ctx.now))
                .copied()
                .unwrap_or(0);
            uncapped.min((cap - used).max(0))
        }
        None => uncapped,
    };
    let lot_id = ctx.new_id();
    let mut events = vec![
        LoyaltyEvent::PurchaseRecorded(recorded.clone()),
        LoyaltyEvent::PointsEarned(pb::LoyaltyPointsEarned {
            customer_id: customer.to_string(),
            order_id: recorded.order_id.clone(),
            lot_id: lot_id.to_string(),
            points,
            uncapped_points: uncapped,
            rules_version: rules.version,
            tier_multiplier_bp: tier_bp,
            campaign_multiplier_bp: campaign_bp,
            earned_at: Some(ctx.now),
            expires_at: Some(add(&ctx.now, rules.lot_lifetime)),
        }),
    ];
    // Tiers go up at once: judge the window with this purchase in it.
    let after = Loyalty::evolve(state.clone(), &events[0]);
    let current = rules.tier_rank(&state.tier);
    let (best, why) = best_tier(&after, rules, &ctx.now);
    if best.is_some() && (current.is_none() || best > current) {
        events.push(LoyaltyEvent::TierChanged(pb::LoyaltyTierChanged {
            customer_id: customer.to_string(),
            from_tier: state.tier.clone(),
            to_tier: tier_name(rules, best),
            reason: format!("threshold crossed: {why}"),
            changed_at: Some(ctx.now),
        }));
    }
    Ok(events)
}

fn refund(
    state: &LoyaltyState,
    cmd: &RefundPurchase,
    ctx: &mut Context<'_>,
) -> Result<Vec<LoyaltyEvent>, DomainError> {
    let customer = state.customer()?;
    required("order_id", &cmd.order_id)?;
    check_amount(cmd.amount_minor)?;
    let order_id = cmd.order_id.trim();
    let Some(purchase) = state.purchases.get(order_id) else {
        return Err(DomainError::rejected(
            ORDER_NOT_FOUND,
            format!("order {order_id} was not recorded on this account"),
        ));
    };
    let amount = purchase.recorded.amount_minor;
    if cmd.amount_minor > purchase.net_minor() {
        return Err(DomainError::rejected(
            REFUND_EXCEEDS_PURCHASE,
            format!(
                "refund of {} exceeds the {} left of {amount}",
                cmd.amount_minor,
                purchase.net_minor()
            ),
        ));
    }
    let mut events = vec![LoyaltyEvent::PurchaseRefunded(
        pb::LoyaltyPurchaseRefunded {
            customer_id: customer.to_string(),
            order_id: order_id.to_owned(),
            amount_minor: cmd.amount_minor,
            currency: purchase.recorded.currency.clone(),
            refunded_at: Some(ctx.now),
        },
    )];
    // Owed over all refunds so far, rounded down once: partial refunds that
    // add up to the whole take back every point.
    let share = |refunded: i64| {
        i64::try_from(i128::from(purchase.points) * i128::from(refunded) / i128::from(amount))
            .unwrap_or(0)
    };
    let owed = share(purchase.refunded_minor + cmd.amount_minor) - share(purchase.refunded_minor);
    if owed > 0 {
        let mut order: Vec<&Lot> = Vec::new();
        if let Some(own) = purchase
            .lot_id
            .and_then(|id| state.lots.iter().find(|l| l.id == id && l.remaining > 0))
        {
            order.push(own);
        }
        order.extend(
            by_expiry(state)
                .into_iter()
                .filter(|l| Some(l.id) != purchase.lot_id),
        );
        let taken = take_from(&order, owed);
        let took: i64 = taken.iter().map(|t| t.points).sum();
        events.push(LoyaltyEvent::PointsClawedBack(
            pb::LoyaltyPointsClawedBack {
                customer_id: customer.to_string(),
                order_id: order_id.to_owned(),
                points: owed,
                taken,
                shortfall: owed - took,
                clawed_back_at: Some(ctx.now),
            },
        ));
    }
    Ok(events)
}

fn adjust(
    state: &LoyaltyState,
    cmd: &AdjustPoints,
    ctx: &mut Context<'_>,
) -> Result<Vec<LoyaltyEvent>, DomainError> {
    let customer = state.customer()?;
    if cmd.points == 0 {
        return Err(DomainError::invalid("points", "must not be zero"));
    }
    check_points("points", cmd.points, -MAX_POINTS)?;
    required("reason", &cmd.reason)?;
    required("actor", &cmd.actor)?;
    let mut event = pb::LoyaltyPointsAdjusted {
        customer_id: customer.to_string(),
        points: cmd.points,
        reason: cmd.reason.trim().to_owned(),
        actor: cmd.actor.trim().to_owned(),
        lot_id: String::new(),
        expires_at: None,
        taken: Vec::new(),
        adjusted_at: Some(ctx.now),
    };
    if cmd.points > 0 {
        event.lot_id = ctx.new_id().to_string();
        event.expires_at = Some(add(&ctx.now, cmd.rules.lot_lifetime));
    } else {
        event.taken = spend(
            state,
            cmd.points.checked_neg().unwrap_or(i64::MAX),
            &ctx.now,
        )?;
    }
    Ok(vec![LoyaltyEvent::PointsAdjusted(event)])
}

fn review_tier(
    state: &LoyaltyState,
    now: &Timestamp,
    rules: &EarningRuleSet,
) -> Result<Vec<LoyaltyEvent>, DomainError> {
    let customer = state.customer()?;
    let current = rules.tier_rank(&state.tier);
    let (best, why) = best_tier(state, rules, now);
    let change = |to: Option<usize>, reason: String| {
        vec![LoyaltyEvent::TierChanged(pb::LoyaltyTierChanged {
            customer_id: customer.to_string(),
            from_tier: state.tier.clone(),
            to_tier: tier_name(rules, to),
            reason,
            changed_at: Some(*now),
        })]
    };
    if best.is_some() && (current.is_none() || best > current) {
        return Ok(change(best, format!("threshold crossed: {why}")));
    }
    // A tier the rules no longer list (`current` is None) is reviewed too:
    // it stopped counting when it was reached.
    if state.tier.is_empty() || (current.is_some() && best == current) {
        return Ok(Vec::new());
    }
    // The scheduler reviews a period end after it has passed: purchases made
    // since count, so a customer who has qualified again keeps the tier.
    let mut target = best;
    if let Some(latest) = state
        .purchases
        .values()
        .filter_map(|p| p.recorded.purchased_at)
        .filter(|t| nanos(t) > nanos(now))
        .max_by_key(nanos)
    {
        let (since_then, _) = best_tier(state, rules, &latest);
        if current.is_some() && since_then >= current {
            return Ok(Vec::new());
        }
        target = target.max(since_then);
    }
    let Some(stop) = stopped_qualifying(state, rules, now) else {
        return Ok(Vec::new());
    };
    if nanos(&add(&stop, rules.tier_grace)) > nanos(now) {
        return Ok(Vec::new());
    }
    Ok(change(
        target,
        format!(
            "no longer qualifies for {} since {stop} and the {}-day grace period has passed: {why}",
            state.tier,
            rules.tier_grace.as_secs() / 86_400
        ),
    ))
}
