//! Requests to domain commands, and state to replies.
//!
//! Only the request's shape is checked here (ids are UUIDs, enum numbers are
//! known, required messages are present); the rules and limits on values
//! live in the deciders, so the service cannot record anything the domain
//! would not.

use std::collections::BTreeSet;

use kizuna_domain::DomainError;
use kizuna_domain::campaign::{
    CampaignData, CreateCampaign, FrequencyCap, Money, Roi, SendRef, TargetCustomers, Window,
};
use kizuna_domain::time::duration_from_proto;
use kizuna_proto::v1 as pb;
use uuid::Uuid;

pub use kizuna_command::fields::{optional_id, required_id};

/// Largest `max_suppressions` of GetOutreach.
pub const MAX_SUPPRESSIONS: usize = 1000;
/// `max_suppressions` of GetOutreach when 0.
pub const DEFAULT_SUPPRESSIONS: usize = 100;

fn channel(value: i32, field: &str) -> Result<pb::ContactChannel, DomainError> {
    pb::ContactChannel::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("{value} is not a ContactChannel")))
}

fn ids(values: &[String], field: &str) -> Result<Vec<Uuid>, DomainError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| required_id(v, &format!("{field}[{i}]")))
        .collect()
}

fn window(w: Option<&pb::CampaignWindow>) -> Result<Window, DomainError> {
    let w = w.ok_or_else(|| DomainError::invalid("window", "is required"))?;
    let starts_at = w
        .starts_at
        .ok_or_else(|| DomainError::invalid("window.starts_at", "is required"))?;
    let ends_at = w
        .ends_at
        .ok_or_else(|| DomainError::invalid("window.ends_at", "is required"))?;
    Ok(Window { starts_at, ends_at })
}

fn frequency_cap(c: Option<&pb::CampaignFrequencyCap>) -> Result<FrequencyCap, DomainError> {
    let c = c.ok_or_else(|| DomainError::invalid("frequency_cap", "is required"))?;
    let per = c
        .per
        .as_ref()
        .ok_or_else(|| DomainError::invalid("frequency_cap.per", "is required"))?;
    let per = duration_from_proto(per)
        .ok_or_else(|| DomainError::invalid("frequency_cap.per", "must be a positive duration"))?;
    Ok(FrequencyCap {
        max_sends: c.max_sends,
        per,
    })
}

/// An amount as given; its values are checked by the decider.
fn money(m: Option<&pb::CampaignAmount>, field: &str) -> Result<Money, DomainError> {
    let m = m.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    Ok(Money::new(m.amount_minor, m.currency.clone()))
}

/// CreateCampaign.
pub fn create(req: &pb::CreateCampaignRequest) -> Result<CreateCampaign, DomainError> {
    let budget = req
        .budget
        .as_ref()
        .ok_or_else(|| DomainError::invalid("budget", "is required"))?;
    let offer = req
        .offer
        .as_ref()
        .ok_or_else(|| DomainError::invalid("offer", "is required"))?;
    Ok(CreateCampaign {
        campaign_id: optional_id(&req.campaign_id, "campaign_id")?,
        name: req.name.clone(),
        channel: channel(req.channel, "channel")?,
        customer_ids: ids(&req.customer_ids, "customer_ids")?,
        window: window(req.window.as_ref())?,
        budget: Money::new(budget.amount_minor, budget.currency.clone()),
        offer_code: offer.offer_code.clone(),
        offer_description: offer.description.clone(),
        priority: req.priority,
        frequency_cap: frequency_cap(req.frequency_cap.as_ref())?,
    })
}

/// TargetCustomers.
pub fn target(req: &pb::TargetCustomersRequest) -> Result<TargetCustomers, DomainError> {
    Ok(TargetCustomers {
        campaign_id: required_id(&req.campaign_id, "campaign_id")?,
        customer_ids: ids(&req.customer_ids, "customer_ids")?,
    })
}

/// The send named by a record request's three ids.
pub fn send_ref(
    campaign_id: &str,
    send_id: &str,
    customer_id: &str,
) -> Result<SendRef, DomainError> {
    Ok(SendRef {
        campaign_id: required_id(campaign_id, "campaign_id")?,
        send_id: required_id(send_id, "send_id")?,
        customer_id: required_id(customer_id, "customer_id")?,
    })
}

/// AttributeConversion's revenue.
pub fn revenue(req: &pb::AttributeConversionRequest) -> Result<Money, DomainError> {
    money(req.revenue.as_ref(), "revenue")
}

/// RecordCost's cost.
pub fn cost(req: &pb::RecordCostRequest) -> Result<Money, DomainError> {
    money(req.cost.as_ref(), "cost")
}

/// How many suppressions GetOutreach returns for `requested`.
pub fn suppression_limit(requested: u32) -> Result<usize, DomainError> {
    match usize::try_from(requested) {
        Ok(0) => Ok(DEFAULT_SUPPRESSIONS),
        Ok(n) if n <= MAX_SUPPRESSIONS => Ok(n),
        _ => Err(DomainError::invalid(
            "max_suppressions",
            format!("must be at most {MAX_SUPPRESSIONS}"),
        )),
    }
}

/// `net / cost` with four decimals, rounded towards zero, e.g. `"1.5000"`,
/// `"-0.2500"`; `None` when `cost_minor` is 0. Integer arithmetic only.
pub fn return_ratio(net_minor: i64, cost_minor: i64) -> Option<String> {
    if cost_minor == 0 {
        return None;
    }
    let scaled = i128::from(net_minor) * 10_000 / i128::from(cost_minor);
    let sign = if scaled < 0 { "-" } else { "" };
    let abs = scaled.unsigned_abs();
    Some(format!("{sign}{}.{:04}", abs / 10_000, abs % 10_000))
}

fn roi(roi: &Roi) -> pb::CampaignRoi {
    pb::CampaignRoi {
        revenue_minor: roi.revenue_minor,
        cost_minor: roi.cost_minor,
        currency: roi.currency.clone(),
        net_minor: roi.net_minor(),
        return_basis_points: roi.return_basis_points(),
        return_ratio: return_ratio(roi.net_minor(), roi.cost_minor).unwrap_or_default(),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The GetCampaign view of a campaign, with its ROI.
pub fn campaign(c: &CampaignData, r: &Roi) -> pb::Campaign {
    let sends: Vec<pb::CampaignSendStats> = c
        .sends
        .iter()
        .map(|(send_id, s)| pb::CampaignSendStats {
            send_id: send_id.to_string(),
            customer_id: s.customer_id.to_string(),
            delivered: s.delivered,
            bounced: s.bounced,
            opened: s.opened,
            clicked: s.clicked,
            responded: s.responded,
        })
        .collect();
    let tally =
        |f: fn(&pb::CampaignSendStats) -> bool| count(sends.iter().filter(|s| f(s)).count());
    let totals = pb::CampaignTotals {
        sends: count(sends.len()),
        delivered: tally(|s| s.delivered),
        bounced: tally(|s| s.bounced),
        opened: tally(|s| s.opened),
        clicked: tally(|s| s.clicked),
        responded: tally(|s| s.responded),
        conversions: count(c.orders.len()),
    };
    pb::Campaign {
        campaign_id: c.campaign_id.to_string(),
        name: c.name.clone(),
        channel: c.channel as i32,
        window: Some(pb::CampaignWindow {
            starts_at: Some(c.window.starts_at),
            ends_at: Some(c.window.ends_at),
        }),
        budget: Some(pb::CampaignBudget {
            amount_minor: c.budget.amount_minor,
            currency: c.budget.currency.clone(),
        }),
        offer: Some(pb::CampaignOffer {
            offer_code: c.offer_code.clone(),
            description: c.offer_description.clone(),
        }),
        priority: c.priority,
        frequency_cap: Some(pb::CampaignFrequencyCap {
            max_sends: c.frequency_cap.max_sends,
            per: Some(kizuna_domain::time::duration_to_proto(c.frequency_cap.per)),
        }),
        status: c.status as i32,
        created_at: Some(c.created_at),
        audience_size: count(c.audience.len()),
        sends,
        totals: Some(totals),
        roi: Some(roi(r)),
    }
}

/// The channels whose contact is flagged HARD bounced: a soft bounce (a full
/// mailbox) is temporary and does not stop sends.
pub fn hard_bounced(
    bounces: &std::collections::BTreeMap<pb::ContactChannel, kizuna_domain::customer::BounceFlag>,
) -> BTreeSet<pb::ContactChannel> {
    bounces
        .iter()
        .filter(|(_, flag)| flag.kind == pb::BounceKind::Hard)
        .map(|(channel, _)| *channel)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_ratio_is_exact_to_four_decimals_towards_zero() {
        assert_eq!(return_ratio(150, 100).as_deref(), Some("1.5000"));
        assert_eq!(return_ratio(-25, 100).as_deref(), Some("-0.2500"));
        assert_eq!(return_ratio(1, 3).as_deref(), Some("0.3333"));
        assert_eq!(return_ratio(-1, 3).as_deref(), Some("-0.3333"));
        assert_eq!(return_ratio(0, 7).as_deref(), Some("0.0000"));
        assert_eq!(return_ratio(5, 0), None);
        assert_eq!(
            return_ratio(i64::MAX, 1).as_deref(),
            Some("9223372036854775807.0000")
        );
    }

    #[test]
    fn suppression_limit_defaults_and_caps() {
        assert_eq!(suppression_limit(0), Ok(DEFAULT_SUPPRESSIONS));
        assert_eq!(suppression_limit(5), Ok(5));
        assert!(suppression_limit(1001).is_err());
    }
}
