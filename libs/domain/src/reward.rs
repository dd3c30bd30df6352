//! Rewards (stream `reward-{reward_id}`) and the coupons their claims issue
//! (stream `coupon-{code}`).
//!
//! A reward is bought with loyalty points: it has a points cost, a stock and
//! a per-customer limit. Claiming one touches three streams and must be
//! all-or-nothing, so [`claim`] decides all three halves at once (the points
//! spent on the account, the claim on the reward, the coupon) and the service
//! appends them in one multi-stream append: the reward's expected version
//! makes two claims for the last item conflict instead of both winning, and
//! the coupon stream's "no stream" expectation keeps codes unique.
//!
//! Coupon codes are derived from the claiming command's ids
//! ([`coupon_code`]), so a retried claim issues the same code; they are
//! 16 upper-case hexadecimal digits in groups of four, easy to read out and
//! type. [`canonical_coupon_code`] accepts any case, with or without dashes.
//!
//! Reason codes: [`REWARD_OUT_OF_STOCK`], [`REWARD_LIMIT_REACHED`],
//! [`REWARD_RETIRED`], and the coupon's (see [`coupon`]).

pub mod coupon;
#[cfg(test)]
mod tests;

pub use coupon::{
    COUPON_ALREADY_REDEEMED, COUPON_CATEGORY, COUPON_EXPIRED, COUPON_OF_ANOTHER_CUSTOMER, Coupon,
    CouponCommand, CouponEvent, CouponState, IssueCoupon, RedeemCoupon, canonical_coupon_code,
    coupon_code, coupon_stream,
};

use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::loyalty::{Loyalty, LoyaltyCommand, LoyaltyEvent, LoyaltyState, RedeemForReward};
use crate::pb;
use crate::time::{add, duration_from_proto, duration_to_proto};
use prost_types::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

crate::event_messages! {
    pb::RewardDefined => "reward.defined" version 1,
    pb::RewardRestocked => "reward.restocked" version 1,
    pb::RewardRetired => "reward.retired" version 1,
    pb::RewardClaimed => "reward.claimed" version 1,
}

crate::event_enum! {
    /// Events of a reward stream.
    pub enum RewardEvent {
        /// The reward was defined.
        Defined(pb::RewardDefined),
        /// Items were added to the stock.
        Restocked(pb::RewardRestocked),
        /// The reward can no longer be claimed.
        Retired(pb::RewardRetired),
        /// A customer claimed one item.
        Claimed(pb::RewardClaimed),
    }
}

/// The reward has no items left.
pub const REWARD_OUT_OF_STOCK: &str = "REWARD_OUT_OF_STOCK";
/// The customer has claimed the reward as often as its limit allows.
pub const REWARD_LIMIT_REACHED: &str = "REWARD_LIMIT_REACHED";
/// The reward was retired.
pub const REWARD_RETIRED: &str = "REWARD_RETIRED";

/// The stream category of rewards.
pub const REWARD_CATEGORY: &str = "reward";

/// Longest reward name, in characters.
pub const MAX_REWARD_NAME_CHARS: usize = 200;
/// Longest retirement reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest coupon validity: ten years.
pub const MAX_COUPON_VALIDITY: Duration = Duration::from_secs(3660 * 24 * 60 * 60);

/// The stream of reward `reward_id`.
pub fn reward_stream(reward_id: Uuid) -> String {
    format!("{REWARD_CATEGORY}-{reward_id}")
}

/// A reward, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RewardState {
    /// The definition, once defined.
    pub defined: Option<pb::RewardDefined>,
    /// Items left.
    pub stock: i64,
    /// Whether it was retired.
    pub retired: bool,
    /// Claims in all.
    pub claimed: i64,
    /// Claims per customer.
    pub claims_by_customer: BTreeMap<Uuid, i64>,
}

impl RewardState {
    fn defined(&self) -> Result<&pb::RewardDefined, DomainError> {
        self.defined
            .as_ref()
            .ok_or_else(|| DomainError::not_found("reward", "(not defined)"))
    }

    /// How long its coupons stay redeemable.
    pub fn coupon_validity(&self) -> Duration {
        self.defined
            .as_ref()
            .and_then(|d| d.coupon_validity.as_ref())
            .and_then(duration_from_proto)
            .unwrap_or_default()
    }
}

/// Defines a reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefineReward {
    /// The reward (the stream's id).
    pub reward_id: Uuid,
    /// Display name: 1 to 200 characters after trimming, no control characters.
    pub name: String,
    /// Points one claim costs (> 0).
    pub points_cost: i64,
    /// Items in stock (>= 0).
    pub stock: i64,
    /// Most claims per customer (>= 1).
    pub per_customer_limit: i64,
    /// How long a coupon stays redeemable (> 0, at most [`MAX_COUPON_VALIDITY`]).
    pub coupon_validity: Duration,
}

/// Claims one item for a customer (see [`claim`] for the whole claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimReward {
    /// The customer.
    pub customer_id: Uuid,
}

/// What a caller asks of a reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardCommand {
    /// Define it.
    Define(DefineReward),
    /// Add `quantity` (> 0) items to the stock.
    Restock {
        /// Items to add.
        quantity: i64,
    },
    /// Stop claims.
    Retire {
        /// Why (optional, at most 500 characters).
        reason: String,
    },
    /// Claim one item.
    Claim(ClaimReward),
}

/// The reward's rules.
#[derive(Debug)]
pub struct Reward;

fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<String, DomainError> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "has control characters"));
    }
    Ok(value.to_owned())
}

fn define(
    state: &RewardState,
    cmd: &DefineReward,
    ctx: &Context<'_>,
) -> Result<Vec<RewardEvent>, DomainError> {
    let name = check_text("name", &cmd.name, MAX_REWARD_NAME_CHARS, true)?;
    if cmd.points_cost <= 0 {
        return Err(DomainError::invalid("points_cost", "must be positive"));
    }
    if cmd.stock < 0 {
        return Err(DomainError::invalid("stock", "must not be negative"));
    }
    if cmd.per_customer_limit < 1 {
        return Err(DomainError::invalid(
            "per_customer_limit",
            "must be at least 1",
        ));
    }
    if cmd.coupon_validity.is_zero() || cmd.coupon_validity > MAX_COUPON_VALIDITY {
        return Err(DomainError::invalid(
            "coupon_validity",
            "must be positive and at most 3660 days",
        ));
    }
    let event = pb::RewardDefined {
        reward_id: cmd.reward_id.to_string(),
        name,
        points_cost: cmd.points_cost,
        stock: cmd.stock,
        per_customer_limit: cmd.per_customer_limit,
        coupon_validity: Some(duration_to_proto(cmd.coupon_validity)),
        defined_at: Some(ctx.now),
    };
    if let Some(existing) = &state.defined {
        // The same definition again (a retry under another command id)
        // changes nothing; another one under a taken id is a conflict.
        let same = pb::RewardDefined {
            defined_at: existing.defined_at,
            ..event
        };
        if same == *existing {
            return Ok(Vec::new());
        }
        return Err(DomainError::already_exists("reward", cmd.reward_id));
    }
    Ok(vec![RewardEvent::Defined(event)])
}

impl Decider for Reward {
    type State = RewardState;
    type Command = RewardCommand;
    type Event = RewardEvent;

    fn decide(
        state: &RewardState,
        command: &RewardCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<RewardEvent>, DomainError> {
        match command {
            RewardCommand::Define(cmd) => define(state, cmd, ctx),
            RewardCommand::Restock { quantity } => {
                let defined = state.defined()?;
                if *quantity <= 0 {
                    return Err(DomainError::invalid("quantity", "must be positive"));
                }
                if state.retired {
                    return Err(DomainError::rejected(
                        REWARD_RETIRED,
                        "a retired reward cannot be restocked",
                    ));
                }
                let stock_after = state
                    .stock
                    .checked_add(*quantity)
                    .ok_or_else(|| DomainError::invalid("quantity", "is too large"))?;
                Ok(vec![RewardEvent::Restocked(pb::RewardRestocked {
                    reward_id: defined.reward_id.clone(),
                    quantity: *quantity,
                    stock_after,
                    restocked_at: Some(ctx.now),
                })])
            }
            RewardCommand::Retire { reason } => {
                let defined = state.defined()?;
                let reason = check_text("reason", reason, MAX_REASON_CHARS, false)?;
                if state.retired {
                    return Ok(Vec::new());
                }
                Ok(vec![RewardEvent::Retired(pb::RewardRetired {
                    reward_id: defined.reward_id.clone(),
                    reason,
                    retired_at: Some(ctx.now),
                })])
            }
            RewardCommand::Claim(cmd) => {
                let defined = state.defined()?;
                if state.retired {
                    return Err(DomainError::rejected(
                        REWARD_RETIRED,
                        "the reward was retired",
                    ));
                }
                if state.stock <= 0 {
                    return Err(DomainError::rejected(
                        REWARD_OUT_OF_STOCK,
                        format!("reward {} is out of stock", defined.name),
                    ));
                }
                let claims = state
                    .claims_by_customer
                    .get(&cmd.customer_id)
                    .copied()
                    .unwrap_or(0);
                if claims >= defined.per_customer_limit {
                    return Err(DomainError::rejected(
                        REWARD_LIMIT_REACHED,
                        format!(
                            "the customer has claimed it {claims} times, the limit is {}",
                            defined.per_customer_limit
                        ),
                    ));
                }
                Ok(vec![RewardEvent::Claimed(pb::RewardClaimed {
                    reward_id: defined.reward_id.clone(),
                    customer_id: cmd.customer_id.to_string(),
                    coupon_code: coupon_code(ctx.new_id()),
                    points: defined.points_cost,
                    stock_after: state.stock - 1,
                    claimed_at: Some(ctx.now),
                })])
            }
        }
    }

    fn evolve(mut state: RewardState, event: &RewardEvent) -> RewardState {
        match event {
            RewardEvent::Defined(e) => {
                state.stock = e.stock;
                state.defined = Some(e.clone());
            }
            RewardEvent::Restocked(e) => state.stock = e.stock_after,
            RewardEvent::Retired(_) => state.retired = true,
            RewardEvent::Claimed(e) => {
                state.stock = e.stock_after;
                state.claimed += 1;
                if let Ok(customer) = Uuid::parse_str(&e.customer_id) {
                    *state.claims_by_customer.entry(customer).or_default() += 1;
                }
            }
        }
        state
    }
}

/// The three halves of a reward claim, to be appended all-or-nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// `loyalty.points_redeemed` for the customer's account.
    pub account: Vec<LoyaltyEvent>,
    /// `reward.claimed` for the reward.
    pub reward: Vec<RewardEvent>,
    /// `coupon.issued` for the new coupon stream.
    pub coupon: Vec<CouponEvent>,
    /// The coupon's code (canonical form).
    pub coupon_code: String,
    /// When the coupon expires.
    pub expires_at: Timestamp,
    /// Points spent.
    pub points: i64,
}

/// Decides a claim of `reward` by `customer_id`, whose account is `account`:
/// the reward's rules first (defined, not retired, in stock, under the
/// limit), then the account's (enrolled, enough unexpired points). The
/// coupon's code is the first id of `ctx`, so a retried command claims with
/// the same code.
pub fn claim(
    account: &LoyaltyState,
    reward: &RewardState,
    customer_id: Uuid,
    ctx: &mut Context<'_>,
) -> Result<Claim, DomainError> {
    let reward_events = Reward::decide(
        reward,
        &RewardCommand::Claim(ClaimReward { customer_id }),
        ctx,
    )?;
    let Some(RewardEvent::Claimed(claimed)) = reward_events.first() else {
        return Err(DomainError::not_found("reward", "(not defined)"));
    };
    let defined = reward.defined()?;
    let reward_id = Uuid::parse_str(&claimed.reward_id)
        .map_err(|_| DomainError::not_found("reward", &claimed.reward_id))?;
    let expires_at = add(&ctx.now, reward.coupon_validity());
    let account_events = Loyalty::decide(
        account,
        &LoyaltyCommand::RedeemForReward(RedeemForReward {
            points: claimed.points,
            reward_id,
            coupon_code: claimed.coupon_code.clone(),
            reason: format!("reward: {}", defined.name),
        }),
        ctx,
    )?;
    let coupon_events = Coupon::decide(
        &CouponState::default(),
        &CouponCommand::Issue(IssueCoupon {
            code: claimed.coupon_code.clone(),
            reward_id,
            customer_id,
            points: claimed.points,
            expires_at,
        }),
        ctx,
    )?;
    Ok(Claim {
        coupon_code: claimed.coupon_code.clone(),
        points: claimed.points,
        expires_at,
        account: account_events,
        reward: reward_events,
        coupon: coupon_events,
    })
}
