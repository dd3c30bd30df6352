//! Coupons: issued by a reward claim, redeemed at most once, never at or
//! after their expiry. One stream per coupon, named by its code, so the log's
//! "no stream" check on the first append is what makes codes unique.

use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::pb;
use crate::time::unix_nanos;
use prost_types::Timestamp;
use uuid::Uuid;

crate::event_messages! {
    pb::CouponIssued => "coupon.issued" version 1,
    pb::CouponRedeemed => "coupon.redeemed" version 1,
}

crate::event_enum! {
    /// Events of a coupon stream.
    pub enum CouponEvent {
        /// A claim issued the coupon.
        Issued(pb::CouponIssued),
        /// The coupon was redeemed.
        Redeemed(pb::CouponRedeemed),
    }
}

/// The coupon was redeemed before.
pub const COUPON_ALREADY_REDEEMED: &str = "COUPON_ALREADY_REDEEMED";
/// The coupon's expiry has passed.
pub const COUPON_EXPIRED: &str = "COUPON_EXPIRED";
/// The coupon belongs to another customer than the one redeeming it.
pub const COUPON_OF_ANOTHER_CUSTOMER: &str = "COUPON_OF_ANOTHER_CUSTOMER";

/// The stream category of coupons.
pub const COUPON_CATEGORY: &str = "coupon";

/// Longest channel or order id on a redemption, in bytes.
pub const MAX_REF_BYTES: usize = 256;

/// The stream of the coupon with canonical code `code`.
pub fn coupon_stream(code: &str) -> String {
    format!("{COUPON_CATEGORY}-{code}")
}

/// The coupon code for `id` (an id derived from the claiming command): 64 of
/// its hashed bits (the version and variant bits left out) as 16 upper-case
/// hex digits in groups of four, `9F3A-1B2C-3D4E-5F60`. UUIDv5 spreads the
/// command id over all of them; a collision is refused by the coupon
/// stream's "no stream" append.
pub fn coupon_code(id: Uuid) -> String {
    let v = id.as_u128();
    // Bits 127..80 (48), then 75..64 (12, after the version nibble), then
    // 61..58 (4, after the two variant bits).
    let high = u64::try_from(v >> 80).unwrap_or_default();
    let middle = u64::try_from((v >> 64) & 0xFFF).unwrap_or_default();
    let low = u64::try_from((v >> 58) & 0xF).unwrap_or_default();
    let hex = format!("{:016X}", (high << 16) | (middle << 4) | low);
    format!(
        "{}-{}-{}-{}",
        &hex[0..4],
        &hex[4..8],
        &hex[8..12],
        &hex[12..16]
    )
}

/// The canonical form of a code typed by someone: any case, with or without
/// the dashes (and surrounding blanks). Anything else is INVALID_ARGUMENT on
/// `field`.
pub fn canonical_coupon_code(field: &str, input: &str) -> Result<String, DomainError> {
    let digits: String = input.trim().chars().filter(|c| *c != '-').collect();
    if digits.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if digits.len() != 16 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(DomainError::invalid(
            field,
            "must be 16 hexadecimal digits, e.g. 9F3A-1B2C-3D4E-5F60",
        ));
    }
    let hex = digits.to_ascii_uppercase();
    Ok(format!(
        "{}-{}-{}-{}",
        &hex[0..4],
        &hex[4..8],
        &hex[8..12],
        &hex[12..16]
    ))
}

/// A coupon, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CouponState {
    /// The issue, once issued.
    pub issued: Option<pb::CouponIssued>,
    /// The redemption, once redeemed.
    pub redeemed: Option<pb::CouponRedeemed>,
}

/// Issues a coupon (part of a reward claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueCoupon {
    /// The code, canonical form.
    pub code: String,
    /// The reward claimed.
    pub reward_id: Uuid,
    /// The customer who claimed it.
    pub customer_id: Uuid,
    /// Points paid.
    pub points: i64,
    /// First instant at which it can no longer be redeemed.
    pub expires_at: Timestamp,
}

/// Redeems a coupon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemCoupon {
    /// The code, canonical form.
    pub code: String,
    /// When given, the coupon must be this customer's.
    pub customer_id: Option<Uuid>,
    /// Where (optional, at most 256 bytes).
    pub channel: String,
    /// The order it is used on (optional, at most 256 bytes).
    pub order_id: String,
}

/// What a caller asks of a coupon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CouponCommand {
    /// Issue it.
    Issue(IssueCoupon),
    /// Redeem it.
    Redeem(RedeemCoupon),
}

/// The coupon's rules.
#[derive(Debug)]
pub struct Coupon;

fn reference(field: &str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.len() > MAX_REF_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("is longer than {MAX_REF_BYTES} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "has control characters"));
    }
    Ok(value.to_owned())
}

impl Decider for Coupon {
    type State = CouponState;
    type Command = CouponCommand;
    type Event = CouponEvent;

    fn decide(
        state: &CouponState,
        command: &CouponCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<CouponEvent>, DomainError> {
        match command {
            CouponCommand::Issue(cmd) => {
                let code = canonical_coupon_code("code", &cmd.code)?;
                if cmd.points <= 0 {
                    return Err(DomainError::invalid("points", "must be positive"));
                }
                if state.issued.is_some() {
                    return Err(DomainError::already_exists("coupon", code));
                }
                Ok(vec![CouponEvent::Issued(pb::CouponIssued {
                    code,
                    reward_id: cmd.reward_id.to_string(),
                    customer_id: cmd.customer_id.to_string(),
                    points: cmd.points,
                    issued_at: Some(ctx.now),
                    expires_at: Some(cmd.expires_at),
                })])
            }
            CouponCommand::Redeem(cmd) => {
                let code = canonical_coupon_code("code", &cmd.code)?;
                let channel = reference("channel", &cmd.channel)?;
                let order_id = reference("order_id", &cmd.order_id)?;
                let Some(issued) = &state.issued else {
                    return Err(DomainError::not_found("coupon", code));
                };
                if let Some(redeemed) = &state.redeemed {
                    return Err(DomainError::rejected(
                        COUPON_ALREADY_REDEEMED,
                        format!(
                            "coupon {code} was redeemed at {}",
                            redeemed.redeemed_at.unwrap_or_default()
                        ),
                    ));
                }
                if let Some(customer) = cmd.customer_id
                    && customer.to_string() != issued.customer_id
                {
                    return Err(DomainError::rejected(
                        COUPON_OF_ANOTHER_CUSTOMER,
                        format!("coupon {code} belongs to another customer"),
                    ));
                }
                let expires_at = issued.expires_at.unwrap_or_default();
                if unix_nanos(&ctx.now) >= unix_nanos(&expires_at) {
                    return Err(DomainError::rejected(
                        COUPON_EXPIRED,
                        format!("coupon {code} expired at {expires_at}"),
                    ));
                }
                Ok(vec![CouponEvent::Redeemed(pb::CouponRedeemed {
                    code,
                    reward_id: issued.reward_id.clone(),
                    customer_id: issued.customer_id.clone(),
                    channel,
                    order_id,
                    redeemed_at: Some(ctx.now),
                })])
            }
        }
    }

    fn evolve(mut state: CouponState, event: &CouponEvent) -> CouponState {
        match event {
            CouponEvent::Issued(e) => state.issued = Some(e.clone()),
            CouponEvent::Redeemed(e) => state.redeemed = Some(e.clone()),
        }
        state
    }
}
