//! The earning rules: how purchases turn into points, how long lots live,
//! and the tiers. One rule set with a fixed id (stream
//! `earningrules-{id}`), replaced as a whole by each `SetEarningRules`, so
//! every `loyalty.points_earned` can name the one version it used.

use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::money::check_currency;
use crate::pb;
use crate::time::{duration_from_proto, duration_to_proto};
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

crate::event_messages! {
    pb::LoyaltyEarningRulesSet => "loyalty.earning_rules_set" version 1,
}

crate::event_enum! {
    /// Events of the earning rules stream.
    pub enum EarningRulesEvent {
        /// A new rule set replaced the previous one.
        Set(pb::LoyaltyEarningRulesSet),
    }
}

/// The namespace of kizuna's earning rule set ids (UUIDv5).
pub const EARNING_RULES_NAMESPACE: Uuid =
    Uuid::from_u128(0x6b69_7a75_6e61_4000_8000_0000_0010_7a17);

/// The stream category of earning rule sets.
pub const EARNING_RULES_CATEGORY: &str = "earningrules";

/// A day.
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a lot lives unless the rules say otherwise: 365 days.
pub const DEFAULT_LOT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// 1x in basis points.
pub const ONE_X_BP: i32 = 10_000;

/// Largest accepted multiplier: 100x, which keeps the points arithmetic
/// inside `i128` for any `i64` amount.
pub const MAX_MULTIPLIER_BP: i32 = 1_000_000;

/// Largest accepted `points_per_unit`.
pub const MAX_POINTS_PER_UNIT: i64 = 1_000_000;

/// The id of the one rule set: UUIDv5 of [`EARNING_RULES_NAMESPACE`] and "default".
pub fn default_rules_id() -> Uuid {
    Uuid::new_v5(&EARNING_RULES_NAMESPACE, b"default")
}

/// The stream of the one rule set.
pub fn earning_rules_stream() -> String {
    format!("{EARNING_RULES_CATEGORY}-{}", default_rules_id())
}

/// Base rate for one currency: `points_per_unit` points per whole
/// `unit_minor` minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarningRate {
    /// ISO 4217 code.
    pub currency: String,
    /// Unit size in minor units (> 0).
    pub unit_minor: i64,
    /// Points per unit (0..=[`MAX_POINTS_PER_UNIT`]).
    pub points_per_unit: i64,
}

/// One tier (see `pb::LoyaltyTierRule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierRule {
    /// Unique, non-blank name.
    pub name: String,
    /// Minimum net spend over the window in the tier currency; 0: unused.
    pub min_spend_minor: i64,
    /// Minimum purchase count over the window; 0: unused.
    pub min_purchase_count: i64,
    /// Earning multiplier in basis points.
    pub multiplier_bp: i32,
}

/// A full earning rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarningRuleSet {
    /// Version (0: no rules were ever set; ignored in `SetEarningRules`).
    pub version: u64,
    /// Base rates by currency.
    pub rates: Vec<EarningRate>,
    /// `(category, multiplier_bp)`.
    pub category_multipliers: Vec<(String, i32)>,
    /// `(campaign_id, multiplier_bp)`.
    pub campaign_multipliers: Vec<(String, i32)>,
    /// Most points purchases may earn per calendar month (UTC); `None`: no cap.
    pub monthly_cap: Option<i64>,
    /// Lifetime of a lot.
    pub lot_lifetime: Duration,
    /// Tiers, lowest first.
    pub tiers: Vec<TierRule>,
    /// Currency of the tiers' spend thresholds.
    pub tier_currency: String,
    /// Rolling window tiers are measured over.
    pub tier_window: Duration,
    /// How long a tier is kept after it no longer qualifies.
    pub tier_grace: Duration,
}

impl Default for EarningRuleSet {
    fn default() -> Self {
        Self {
            version: 0,
            rates: Vec::new(),
            category_multipliers: Vec::new(),
            campaign_multipliers: Vec::new(),
            monthly_cap: None,
            lot_lifetime: DEFAULT_LOT_LIFETIME,
            tiers: Vec::new(),
            tier_currency: String::new(),
            tier_window: DEFAULT_LOT_LIFETIME,
            tier_grace: Duration::ZERO,
        }
    }
}

impl EarningRuleSet {
    /// The base rate for `currency`, if any.
    pub fn rate(&self, currency: &str) -> Option<&EarningRate> {
        self.rates.iter().find(|r| r.currency == currency)
    }

    /// The multiplier for line items of `category` (1x when not listed).
    pub fn category_bp(&self, category: &str) -> i32 {
        lookup(&self.category_multipliers, category)
    }

    /// The multiplier for `campaign_id` (1x when not listed).
    pub fn campaign_bp(&self, campaign_id: &str) -> i32 {
        lookup(&self.campaign_multipliers, campaign_id)
    }

    /// Index of the tier named `name` (lowest is 0).
    pub fn tier_rank(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }

    /// The earning multiplier of `tier` (1x for no tier or an unknown one).
    pub fn tier_bp(&self, tier: &str) -> i32 {
        self.tiers
            .iter()
            .find(|t| t.name == tier)
            .map_or(ONE_X_BP, |t| t.multiplier_bp)
    }

    /// Checks the rule set, naming the offending field.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut seen = BTreeSet::new();
        for (i, r) in self.rates.iter().enumerate() {
            check_currency(&format!("rates[{i}].currency"), &r.currency)?;
            if !seen.insert(r.currency.as_str()) {
                return Err(DomainError::invalid(
                    format!("rates[{i}].currency"),
                    "is listed twice",
                ));
            }
            if r.unit_minor <= 0 {
                return Err(DomainError::invalid(
                    format!("rates[{i}].unit_minor"),
                    "must be positive",
                ));
            }
            if !(0..=MAX_POINTS_PER_UNIT).contains(&r.points_per_unit) {
                return Err(DomainError::invalid(
                    format!("rates[{i}].points_per_unit"),
                    format!("must be between 0 and {MAX_POINTS_PER_UNIT}"),
                ));
            }
        }
        check_multipliers(
            "category_multipliers",
            "category",
            &self.category_multipliers,
        )?;
        check_multipliers(
            "campaign_multipliers",
            "campaign_id",
            &self.campaign_multipliers,
        )?;
        if self.monthly_cap.is_some_and(|c| c < 0) {
            return Err(DomainError::invalid("monthly_cap", "must not be negative"));
        }
        if self.lot_lifetime.is_zero() {
            return Err(DomainError::invalid("lot_lifetime", "must be positive"));
        }
        let mut names = BTreeSet::new();
        for (i, t) in self.tiers.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(DomainError::invalid(
                    format!("tiers[{i}].name"),
                    "is required",
                ));
            }
            if !names.insert(t.name.as_str()) {
                return Err(DomainError::invalid(
                    format!("tiers[{i}].name"),
                    "is listed twice",
                ));
            }
            if t.min_spend_minor < 0 {
                return Err(DomainError::invalid(
                    format!("tiers[{i}].min_spend_minor"),
                    "must not be negative",
                ));
            }
            if t.min_purchase_count < 0 {
                return Err(DomainError::invalid(
                    format!("tiers[{i}].min_purchase_count"),
                    "must not be negative",
                ));
            }
            check_bp(&format!("tiers[{i}].multiplier_bp"), t.multiplier_bp)?;
        }
        if self.tiers.iter().any(|t| t.min_spend_minor > 0) {
            check_currency("tier_currency", &self.tier_currency)?;
        }
        if !self.tiers.is_empty() && self.tier_window.is_zero() {
            return Err(DomainError::invalid("tier_window", "must be positive"));
        }
        Ok(())
    }

    /// The event recording this rule set as `version`.
    pub fn to_event(
        &self,
        version: u64,
        set_at: prost_types::Timestamp,
    ) -> pb::LoyaltyEarningRulesSet {
        pb::LoyaltyEarningRulesSet {
            rules_id: default_rules_id().to_string(),
            version,
            rates: self
                .rates
                .iter()
                .map(|r| pb::LoyaltyEarningRate {
                    currency: r.currency.clone(),
                    unit_minor: r.unit_minor,
                    points_per_unit: r.points_per_unit,
                })
                .collect(),
            category_multipliers: self
                .category_multipliers
                .iter()
                .map(|(c, bp)| pb::LoyaltyCategoryMultiplier {
                    category: c.clone(),
                    multiplier_bp: *bp,
                })
                .collect(),
            campaign_multipliers: self
                .campaign_multipliers
                .iter()
                .map(|(c, bp)| pb::LoyaltyCampaignMultiplier {
                    campaign_id: c.clone(),
                    multiplier_bp: *bp,
                })
                .collect(),
            monthly_cap: self.monthly_cap,
            lot_lifetime: Some(duration_to_proto(self.lot_lifetime)),
            tiers: self
                .tiers
                .iter()
                .map(|t| pb::LoyaltyTierRule {
                    name: t.name.clone(),
                    min_spend_minor: t.min_spend_minor,
                    min_purchase_count: t.min_purchase_count,
                    multiplier_bp: t.multiplier_bp,
                })
                .collect(),
            tier_currency: self.tier_currency.clone(),
            tier_window: Some(duration_to_proto(self.tier_window)),
            tier_grace: Some(duration_to_proto(self.tier_grace)),
            set_at: Some(set_at),
        }
    }

    /// The rule set an event recorded.
    pub fn from_event(e: &pb::LoyaltyEarningRulesSet) -> Self {
        let duration = |d: &Option<prost_types::Duration>, default: Duration| {
            d.as_ref().and_then(duration_from_proto).unwrap_or(default)
        };
        Self {
            version: e.version,
            rates: e
                .rates
                .iter()
                .map(|r| EarningRate {
                    currency: r.currency.clone(),
                    unit_minor: r.unit_minor,
                    points_per_unit: r.points_per_unit,
                })
                .collect(),
            category_multipliers: e
                .category_multipliers
                .iter()
                .map(|m| (m.category.clone(), m.multiplier_bp))
                .collect(),
            campaign_multipliers: e
                .campaign_multipliers
                .iter()
                .map(|m| (m.campaign_id.clone(), m.multiplier_bp))
                .collect(),
            monthly_cap: e.monthly_cap,
            lot_lifetime: duration(&e.lot_lifetime, DEFAULT_LOT_LIFETIME),
            tiers: e
                .tiers
                .iter()
                .map(|t| TierRule {
                    name: t.name.clone(),
                    min_spend_minor: t.min_spend_minor,
                    min_purchase_count: t.min_purchase_count,
                    multiplier_bp: t.multiplier_bp,
                })
                .collect(),
            tier_currency: e.tier_currency.clone(),
            tier_window: duration(&e.tier_window, DEFAULT_LOT_LIFETIME),
            tier_grace: duration(&e.tier_grace, Duration::ZERO),
        }
    }
}

fn lookup(list: &[(String, i32)], key: &str) -> i32 {
    list.iter()
        .find(|(k, _)| k == key)
        .map_or(ONE_X_BP, |(_, bp)| *bp)
}

fn check_bp(field: &str, bp: i32) -> Result<(), DomainError> {
    if bp <= 0 || bp > MAX_MULTIPLIER_BP {
        return Err(DomainError::invalid(
            field,
            format!("must be between 1 and {MAX_MULTIPLIER_BP} basis points (10000 = 1x)"),
        ));
    }
    Ok(())
}

fn check_multipliers(
    list_field: &str,
    key_field: &str,
    list: &[(String, i32)],
) -> Result<(), DomainError> {
    let mut seen = BTreeSet::new();
    for (i, (key, bp)) in list.iter().enumerate() {
        if key.trim().is_empty() {
            return Err(DomainError::invalid(
                format!("{list_field}[{i}].{key_field}"),
                "is required",
            ));
        }
        if !seen.insert(key.as_str()) {
            return Err(DomainError::invalid(
                format!("{list_field}[{i}].{key_field}"),
                "is listed twice",
            ));
        }
        check_bp(&format!("{list_field}[{i}].multiplier_bp"), *bp)?;
    }
    Ok(())
}

/// What a caller asks of the earning rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarningRulesCommand {
    /// Replace the rule set (its `version` is ignored: the next one is used).
    Set(EarningRuleSet),
}

/// The earning rules' rules.
#[derive(Debug)]
pub struct EarningRules;

impl Decider for EarningRules {
    type State = EarningRuleSet;
    type Command = EarningRulesCommand;
    type Event = EarningRulesEvent;

    fn decide(
        state: &EarningRuleSet,
        command: &EarningRulesCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<EarningRulesEvent>, DomainError> {
        let EarningRulesCommand::Set(rules) = command;
        rules.validate()?;
        let unchanged = EarningRuleSet {
            version: state.version,
            ..rules.clone()
        };
        // Setting the same rules again (a retry) must not bump the version.
        if state.version > 0 && unchanged == *state {
            return Ok(Vec::new());
        }
        Ok(vec![EarningRulesEvent::Set(
            rules.to_event(state.version + 1, ctx.now),
        )])
    }

    fn evolve(_state: EarningRuleSet, event: &EarningRulesEvent) -> EarningRuleSet {
        let EarningRulesEvent::Set(e) = event;
        EarningRuleSet::from_event(e)
    }
}
