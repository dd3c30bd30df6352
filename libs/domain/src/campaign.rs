//! Campaigns: lifecycle, targeting, send-time checks (consent, bounces, frequency caps, offer arbitration) and responses.
//!
//! Two deciders. [`Campaign`] (`campaign-{id}`) holds what a campaign is
//! (channel, audience, window, budget, offer, priority, frequency cap), its
//! status and what its sends led to (deliveries, bounces, opens, clicks,
//! responses, conversions, costs; [`roi`] follows from the last two).
//! [`Outreach`] (`outreach-{customer_id}`) decides each send to one customer:
//! every campaign's send to that customer appends to the same stream with an
//! expected version, so racing campaigns are serialised and only one can take
//! the customer's offer slot on a channel (the rules are in [`outreach`]).
//!
//! Statuses move DRAFT -> ACTIVE -> PAUSED <-> ACTIVE -> COMPLETED (see
//! [`can_transition`]).
//!
//! Reason codes: [`INVALID_STATUS_TRANSITION`], [`CAMPAIGN_WINDOW_ENDED`],
//! [`CAMPAIGN_COMPLETED`], [`AUDIENCE_TOO_LARGE`], [`CAMPAIGN_NOT_LAUNCHED`],
//! [`CUSTOMER_NOT_TARGETED`], [`SEND_CUSTOMER_MISMATCH`],
//! [`CURRENCY_MISMATCH`].

pub mod outreach;
#[cfg(test)]
mod tests;

pub use outreach::{
    DecideSend, Outreach, OutreachCommand, OutreachEvent, OutreachState, ReleaseSlot,
    SuppressionReason,
};

use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::money::check_currency;
use crate::pb;
use crate::ticket::text::{self, Lines};
use crate::time::{before, duration_from_proto, duration_to_proto};
use prost_types::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use uuid::Uuid;

crate::event_messages! {
    pb::CampaignCreated => "campaign.created" version 1,
    pb::CampaignStatusChanged => "campaign.status_changed" version 1,
    pb::CampaignCustomersTargeted => "campaign.customers_targeted" version 1,
    pb::CampaignMessageDelivered => "campaign.message_delivered" version 1,
    pb::CampaignMessageBounced => "campaign.message_bounced" version 1,
    pb::CampaignMessageOpened => "campaign.message_opened" version 1,
    pb::CampaignMessageClicked => "campaign.message_clicked" version 1,
    pb::CampaignMessageResponded => "campaign.message_responded" version 1,
    pb::CampaignConversionAttributed => "campaign.conversion_attributed" version 1,
    pb::CampaignCostRecorded => "campaign.cost_recorded" version 1,
}

crate::event_enum! {
    /// Events of the campaign stream.
    pub enum CampaignEvent {
        /// The campaign was created.
        Created(pb::CampaignCreated),
        /// Its status changed.
        StatusChanged(pb::CampaignStatusChanged),
        /// Customers were added to its audience.
        CustomersTargeted(pb::CampaignCustomersTargeted),
        /// A message was delivered.
        MessageDelivered(pb::CampaignMessageDelivered),
        /// A message bounced.
        MessageBounced(pb::CampaignMessageBounced),
        /// A message was opened.
        MessageOpened(pb::CampaignMessageOpened),
        /// A link in a message was clicked.
        MessageClicked(pb::CampaignMessageClicked),
        /// A message was answered.
        MessageResponded(pb::CampaignMessageResponded),
        /// An order was attributed to a send.
        ConversionAttributed(pb::CampaignConversionAttributed),
        /// A cost was incurred.
        CostRecorded(pb::CampaignCostRecorded),
    }
}

/// The stream category of campaigns.
pub const CATEGORY: &str = "campaign";

/// The status change is not in the transition table.
pub const INVALID_STATUS_TRANSITION: &str = "INVALID_STATUS_TRANSITION";
/// Launch after the campaign window ended.
pub const CAMPAIGN_WINDOW_ENDED: &str = "CAMPAIGN_WINDOW_ENDED";
/// Targeting a completed campaign.
pub const CAMPAIGN_COMPLETED: &str = "CAMPAIGN_COMPLETED";
/// The audience would exceed [`MAX_AUDIENCE`].
pub const AUDIENCE_TOO_LARGE: &str = "AUDIENCE_TOO_LARGE";
/// Responses, conversions or costs for a campaign that was never launched.
pub const CAMPAIGN_NOT_LAUNCHED: &str = "CAMPAIGN_NOT_LAUNCHED";
/// A send to a customer who is not in the audience.
pub const CUSTOMER_NOT_TARGETED: &str = "CUSTOMER_NOT_TARGETED";
/// The send id is already recorded for another customer.
pub const SEND_CUSTOMER_MISMATCH: &str = "SEND_CUSTOMER_MISMATCH";
/// Revenue or cost in another currency than the budget's.
pub const CURRENCY_MISMATCH: &str = "CURRENCY_MISMATCH";

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Largest audience (explicit customer ids).
pub const MAX_AUDIENCE: usize = 10_000;
/// Longest offer code, in characters.
pub const MAX_OFFER_CODE_CHARS: usize = 64;
/// Longest offer description, in characters.
pub const MAX_OFFER_DESCRIPTION_CHARS: usize = 1000;
/// Lowest priority.
pub const MIN_PRIORITY: i32 = 1;
/// Highest priority.
pub const MAX_PRIORITY: i32 = 100;
/// Largest single amount (budget, revenue, cost) in minor units: big enough
/// for any real amount, small enough that sums of many stay far from
/// overflowing `i64`.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;
/// Longest order id, in bytes.
pub const MAX_ORDER_ID_BYTES: usize = 128;
/// Longest clicked link, in bytes.
pub const MAX_LINK_BYTES: usize = 2048;
/// Longest response text, in characters.
pub const MAX_RESPONSE_CHARS: usize = 2000;
/// Longest cost reason, in characters.
pub const MAX_COST_REASON_CHARS: usize = 200;

/// The stream of campaign `campaign_id`.
pub fn stream(campaign_id: Uuid) -> String {
    format!("{CATEGORY}-{campaign_id}")
}

/// Whether a campaign may move from `from` to `to`:
///
/// | from      | to                 |
/// |-----------|--------------------|
/// | DRAFT     | ACTIVE             |
/// | ACTIVE    | PAUSED, COMPLETED  |
/// | PAUSED    | ACTIVE, COMPLETED  |
/// | COMPLETED | (terminal)         |
pub fn can_transition(from: pb::CampaignStatus, to: pb::CampaignStatus) -> bool {
    use pb::CampaignStatus::{Active, Completed, Draft, Paused};
    matches!(
        (from, to),
        (Draft, Active) | (Active, Paused | Completed) | (Paused, Active | Completed)
    )
}

/// When a campaign may send: `[starts_at, ends_at)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First moment sends are allowed.
    pub starts_at: Timestamp,
    /// First moment they are not; offer slots end here.
    pub ends_at: Timestamp,
}

impl Window {
    /// Whether `t` is inside the window.
    pub fn contains(&self, t: &Timestamp) -> bool {
        !before(t, &self.starts_at) && before(t, &self.ends_at)
    }

    fn check(&self, field: &str) -> Result<(), DomainError> {
        if before(&self.starts_at, &self.ends_at) {
            Ok(())
        } else {
            Err(DomainError::invalid(
                format!("{field}.ends_at"),
                "must be after starts_at",
            ))
        }
    }

    fn to_proto(self) -> pb::CampaignWindow {
        pb::CampaignWindow {
            starts_at: Some(self.starts_at),
            ends_at: Some(self.ends_at),
        }
    }

    fn from_proto(w: Option<&pb::CampaignWindow>) -> Self {
        let w = w.cloned().unwrap_or_default();
        Self {
            starts_at: w.starts_at.unwrap_or_default(),
            ends_at: w.ends_at.unwrap_or_default(),
        }
    }
}

/// At most `max_sends` sends per customer and channel in any `per` long
/// window, across all campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    /// Sends allowed in the window (1 or more).
    pub max_sends: u32,
    /// Length of the window (more than zero).
    pub per: Duration,
}

impl FrequencyCap {
    fn check(&self, field: &str) -> Result<(), DomainError> {
        if self.max_sends == 0 {
            return Err(DomainError::invalid(
                format!("{field}.max_sends"),
                "must be at least 1",
            ));
        }
        if self.per.is_zero() {
            return Err(DomainError::invalid(
                format!("{field}.per"),
                "must be more than zero",
            ));
        }
        Ok(())
    }

    fn to_proto(self) -> pb::CampaignFrequencyCap {
        pb::CampaignFrequencyCap {
            max_sends: self.max_sends,
            per: Some(duration_to_proto(self.per)),
        }
    }

    fn from_proto(c: Option<&pb::CampaignFrequencyCap>) -> Self {
        let c = c.cloned().unwrap_or_default();
        Self {
            max_sends: c.max_sends,
            per: c
                .per
                .as_ref()
                .and_then(duration_from_proto)
                .unwrap_or_default(),
        }
    }
}

/// An amount of money in minor units of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `JPY`.
    pub currency: String,
}

impl Money {
    /// `amount_minor` of `currency`.
    pub fn new(amount_minor: i64, currency: impl Into<String>) -> Self {
        Self {
            amount_minor,
            currency: currency.into(),
        }
    }

    /// The amount checked to lie in `min..=MAX_AMOUNT_MINOR` and the
    /// currency checked by [`check_currency`].
    fn check(&self, field: &str, min: i64) -> Result<Money, DomainError> {
        if self.amount_minor < min || self.amount_minor > MAX_AMOUNT_MINOR {
            return Err(DomainError::invalid(
                format!("{field}.amount_minor"),
                format!("must be between {min} and {MAX_AMOUNT_MINOR}"),
            ));
        }
        check_currency(&format!("{field}.currency"), &self.currency)?;
        let currency = self.currency.clone();
        Ok(Money::new(self.amount_minor, currency))
    }
}

/// Creates a campaign, in DRAFT.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateCampaign {
    /// Caller-chosen id; `None`: a new id from the context.
    pub campaign_id: Option<Uuid>,
    /// Name (1..=200 characters after trimming).
    pub name: String,
    /// The channel it sends on.
    pub channel: pb::ContactChannel,
    /// The audience (at most 10000 distinct ids; duplicates are dropped).
    pub customer_ids: Vec<Uuid>,
    /// When it may send.
    pub window: Window,
    /// What it may spend (0 or more).
    pub budget: Money,
    /// Offer code (1..=64 of A-Z, 0-9, '-', '_'; upper-cased).
    pub offer_code: String,
    /// Offer description (at most 1000 characters).
    pub offer_description: String,
    /// 1..=100, higher wins.
    pub priority: i32,
    /// Sends per customer and channel per window length.
    pub frequency_cap: FrequencyCap,
}

/// Adds customers to a campaign's audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCustomers {
    /// The campaign.
    pub campaign_id: Uuid,
    /// The customers (at least one; those already targeted are skipped).
    pub customer_ids: Vec<Uuid>,
}

/// One send of a campaign, as named by a response, conversion or cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRef {
    /// The campaign.
    pub campaign_id: Uuid,
    /// The send, from `outreach.send_approved`.
    pub send_id: Uuid,
    /// The customer sent to.
    pub customer_id: Uuid,
}

/// What happened to a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// It reached the customer.
    Delivered,
    /// It bounced.
    Bounced {
        /// A hard bounce.
        permanent: bool,
    },
    /// The customer opened it.
    Opened,
    /// The customer clicked a link (at most 2048 bytes; may be empty).
    Clicked {
        /// The link.
        link: String,
    },
    /// The customer answered (at most 2000 characters; may be empty).
    Responded {
        /// The answer.
        response: String,
    },
}

/// Records a response to a send. Each kind counts once per send, so a
/// provider's repeated webhook records nothing new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResponse {
    /// The send.
    pub send: SendRef,
    /// What happened.
    pub response: Response,
}

/// Attributes an order to a send; an order counts once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeConversion {
    /// The send.
    pub send: SendRef,
    /// The order (1..=128 bytes).
    pub order_id: String,
    /// Its revenue (0 or more, in the budget's currency).
    pub revenue: Money,
}

/// Records a cost of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCost {
    /// The send.
    pub send: SendRef,
    /// The cost (more than 0, in the budget's currency).
    pub cost: Money,
    /// What for (1..=200 characters).
    pub reason: String,
}

/// What a caller asks of a campaign.
#[derive(Debug, Clone, PartialEq)]
pub enum CampaignCommand {
    /// Create it.
    Create(CreateCampaign),
    /// DRAFT -> ACTIVE, before its window ends.
    Launch {
        /// The campaign.
        campaign_id: Uuid,
    },
    /// ACTIVE -> PAUSED.
    Pause {
        /// The campaign.
        campaign_id: Uuid,
    },
    /// PAUSED -> ACTIVE.
    Resume {
        /// The campaign.
        campaign_id: Uuid,
    },
    /// ACTIVE or PAUSED -> COMPLETED.
    Complete {
        /// The campaign.
        campaign_id: Uuid,
    },
    /// Add customers to the audience.
    Target(TargetCustomers),
    /// Record a response to a send.
    RecordResponse(RecordResponse),
    /// Attribute an order to a send.
    AttributeConversion(AttributeConversion),
    /// Record a cost of a send.
    RecordCost(RecordCost),
}

/// What is known about one send from its responses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendStats {
    /// The customer it went to.
    pub customer_id: Uuid,
    /// Delivered.
    pub delivered: bool,
    /// Bounced.
    pub bounced: bool,
    /// Bounced permanently (a hard bounce).
    pub bounced_permanently: bool,
    /// Opened.
    pub opened: bool,
    /// Clicked.
    pub clicked: bool,
    /// Answered.
    pub responded: bool,
}

/// A campaign as its events describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignData {
    /// The campaign.
    pub campaign_id: Uuid,
    /// Name.
    pub name: String,
    /// Channel.
    pub channel: pb::ContactChannel,
    /// Audience.
    pub audience: BTreeSet<Uuid>,
    /// Window.
    pub window: Window,
    /// Budget.
    pub budget: Money,
    /// Offer code.
    pub offer_code: String,
    /// Offer description.
    pub offer_description: String,
    /// Priority.
    pub priority: i32,
    /// Frequency cap.
    pub frequency_cap: FrequencyCap,
    /// Status.
    pub status: pb::CampaignStatus,
    /// When it was created.
    pub created_at: Timestamp,
    /// Sends with recorded responses, conversions or costs, by send id.
    pub sends: BTreeMap<Uuid, SendStats>,
    /// Orders attributed.
    pub orders: BTreeSet<String>,
    /// Sum of attributed revenue, minor units of the budget's currency.
    pub revenue_minor: i64,
    /// Sum of recorded costs, minor units of the budget's currency.
    pub cost_minor: i64,
}

/// The campaign's state: `None` until created.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignState {
    /// The campaign, once created.
    pub campaign: Option<CampaignData>,
}

/// Revenue against cost of a campaign, in its budget's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roi {
    /// Attributed revenue, minor units.
    pub revenue_minor: i64,
    /// Recorded cost, minor units.
    pub cost_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl Roi {
    /// Revenue minus cost, minor units.
    pub fn net_minor(&self) -> i64 {
        self.revenue_minor.saturating_sub(self.cost_minor)
    }

    /// (revenue - cost) / cost in basis points (10000 = 100 %), rounded
    /// towards zero; `None` when nothing was spent.
    pub fn return_basis_points(&self) -> Option<i64> {
        if self.cost_minor == 0 {
            return None;
        }
        let net = i128::from(self.revenue_minor) - i128::from(self.cost_minor);
        i64::try_from(net * 10_000 / i128::from(self.cost_minor)).ok()
    }
}

/// The campaign's revenue and cost so far; `None` if it does not exist.
pub fn roi(state: &CampaignState) -> Option<Roi> {
    state.campaign.as_ref().map(|c| Roi {
        revenue_minor: c.revenue_minor,
        cost_minor: c.cost_minor,
        currency: c.budget.currency.clone(),
    })
}

/// The campaign's rules.
#[derive(Debug)]
pub struct Campaign;

/// The offer code upper-cased and checked.
pub(crate) fn check_offer_code(field: &str, code: &str) -> Result<String, DomainError> {
    let code = code.trim().to_ascii_uppercase();
    if code.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if code.chars().count() > MAX_OFFER_CODE_CHARS
        || !code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {MAX_OFFER_CODE_CHARS} characters of A-Z, 0-9, '-' and '_'"),
        ));
    }
    Ok(code)
}

pub(crate) fn check_channel(field: &str, channel: pb::ContactChannel) -> Result<(), DomainError> {
    if channel == pb::ContactChannel::Unspecified {
        return Err(DomainError::invalid(field, "is required"));
    }
    Ok(())
}

pub(crate) fn check_priority(field: &str, priority: i32) -> Result<(), DomainError> {
    if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        return Err(DomainError::invalid(
            field,
            format!("must be between {MIN_PRIORITY} and {MAX_PRIORITY}"),
        ));
    }
    Ok(())
}

/// `ids` without duplicates, in the given order, or why not.
fn distinct_ids(field: &str, ids: &[Uuid]) -> Result<Vec<Uuid>, DomainError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if id.is_nil() {
            return Err(DomainError::invalid(
                format!("{field}[{i}]"),
                "the nil UUID is not allowed",
            ));
        }
        if seen.insert(*id) {
            out.push(*id);
        }
    }
    Ok(out)
}

fn existing(state: &CampaignState, campaign_id: Uuid) -> Result<&CampaignData, DomainError> {
    state
        .campaign
        .as_ref()
        .ok_or_else(|| DomainError::not_found("campaign", campaign_id))
}

fn create(
    state: &CampaignState,
    cmd: &CreateCampaign,
    ctx: &mut Context<'_>,
) -> Result<Vec<CampaignEvent>, DomainError> {
    if let Some(c) = &state.campaign {
        return Err(DomainError::already_exists("campaign", c.campaign_id));
    }
    if cmd.campaign_id.is_some_and(|id| id.is_nil()) {
        return Err(DomainError::invalid(
            "campaign_id",
            "the nil UUID is not allowed",
        ));
    }
    let name = text::check("name", &cmd.name, MAX_NAME_CHARS, true, Lines::One)?;
    check_channel("channel", cmd.channel)?;
    let customer_ids = distinct_ids("customer_ids", &cmd.customer_ids)?;
    if customer_ids.len() > MAX_AUDIENCE {
        return Err(DomainError::invalid(
            "customer_ids",
            format!("at most {MAX_AUDIENCE} customers"),
        ));
    }
    cmd.window.check("window")?;
    let budget = cmd.budget.check("budget", 0)?;
    let offer_code = check_offer_code("offer.offer_code", &cmd.offer_code)?;
    let description = text::check(
        "offer.description",
        &cmd.offer_description,
        MAX_OFFER_DESCRIPTION_CHARS,
        false,
        Lines::Many,
    )?;
    check_priority("priority", cmd.priority)?;
    cmd.frequency_cap.check("frequency_cap")?;
    let campaign_id = cmd.campaign_id.unwrap_or_else(|| ctx.new_id());
    Ok(vec![CampaignEvent::Created(pb::CampaignCreated {
        campaign_id: campaign_id.to_string(),
        name,
        channel: cmd.channel as i32,
        customer_ids: customer_ids.iter().map(Uuid::to_string).collect(),
        window: Some(cmd.window.to_proto()),
        budget: Some(pb::CampaignBudget {
            amount_minor: budget.amount_minor,
            currency: budget.currency,
        }),
        offer: Some(pb::CampaignOffer {
            offer_code,
            description,
        }),
        priority: cmd.priority,
        frequency_cap: Some(cmd.frequency_cap.to_proto()),
        created_at: Some(ctx.now),
    })])
}

/// Moves the campaign to `to`, from one of `from` (launch and resume both
/// lead to ACTIVE, but each from its own status).
fn change_status(
    state: &CampaignState,
    campaign_id: Uuid,
    from: &[pb::CampaignStatus],
    to: pb::CampaignStatus,
    ctx: &Context<'_>,
) -> Result<Vec<CampaignEvent>, DomainError> {
    let c = existing(state, campaign_id)?;
    if !from.contains(&c.status) || !can_transition(c.status, to) {
        return Err(DomainError::rejected(
            INVALID_STATUS_TRANSITION,
            format!(
                "campaign {} cannot move from {} to {}",
                c.campaign_id,
                c.status.as_str_name(),
                to.as_str_name()
            ),
        ));
    }
    // Launching after the window would make a campaign that can never send.
    if c.status == pb::CampaignStatus::Draft && !before(&ctx.now, &c.window.ends_at) {
        return Err(DomainError::rejected(
            CAMPAIGN_WINDOW_ENDED,
            format!("campaign {}'s window has ended", c.campaign_id),
        ));
    }
    Ok(vec![CampaignEvent::StatusChanged(
        pb::CampaignStatusChanged {
            campaign_id: c.campaign_id.to_string(),
            from_status: c.status as i32,
            to_status: to as i32,
            changed_at: Some(ctx.now),
        },
    )])
}

fn target(
    state: &CampaignState,
    cmd: &TargetCustomers,
    ctx: &Context<'_>,
) -> Result<Vec<CampaignEvent>, DomainError> {
    let c = existing(state, cmd.campaign_id)?;
    if cmd.customer_ids.is_empty() {
        return Err(DomainError::invalid("customer_ids", "is required"));
    }
    let ids = distinct_ids("customer_ids", &cmd.customer_ids)?;
    if c.status == pb::CampaignStatus::Completed {
        return Err(DomainError::rejected(
            CAMPAIGN_COMPLETED,
            format!("campaign {} is completed", c.campaign_id),
        ));
    }
    let new: Vec<Uuid> = ids
        .into_iter()
        .filter(|id| !c.audience.contains(id))
        .collect();
    if new.is_empty() {
        return Ok(Vec::new());
    }
    if c.audience.len() + new.len() > MAX_AUDIENCE {
        return Err(DomainError::rejected(
            AUDIENCE_TOO_LARGE,
            format!(
                "campaign {} would have {} customers, over {MAX_AUDIENCE}",
                c.campaign_id,
                c.audience.len() + new.len()
            ),
        ));
    }
    Ok(vec![CampaignEvent::CustomersTargeted(
        pb::CampaignCustomersTargeted {
            campaign_id: c.campaign_id.to_string(),
            customer_ids: new.iter().map(Uuid::to_string).collect(),
            targeted_at: Some(ctx.now),
        },
    )])
}

/// The campaign, checked to accept records about `send`.
fn for_send<'s>(state: &'s CampaignState, send: &SendRef) -> Result<&'s CampaignData, DomainError> {
    let c = existing(state, send.campaign_id)?;
    if send.send_id.is_nil() {
        return Err(DomainError::invalid("send_id", "is required"));
    }
    if send.customer_id.is_nil() {
        return Err(DomainError::invalid("customer_id", "is required"));
    }
    if c.status == pb::CampaignStatus::Draft {
        return Err(DomainError::rejected(
            CAMPAIGN_NOT_LAUNCHED,
            format!("campaign {} was never launched", c.campaign_id),
        ));
    }
    if !c.audience.contains(&send.customer_id) {
        return Err(DomainError::rejected(
            CUSTOMER_NOT_TARGETED,
            format!(
                "customer {} is not in campaign {}'s audience",
                send.customer_id, c.campaign_id
            ),
        ));
    }
    if c.sends
        .get(&send.send_id)
        .is_some_and(|s| s.customer_id != send.customer_id)
    {
        return Err(DomainError::rejected(
            SEND_CUSTOMER_MISMATCH,
            format!(
                "send {} went to another customer than {}",
                send.send_id, send.customer_id
            ),
        ));
    }
    Ok(c)
}

fn same_currency(c: &CampaignData, money: &Money) -> Result<(), DomainError> {
    if money.currency != c.budget.currency {
        return Err(DomainError::rejected(
            CURRENCY_MISMATCH,
            format!(
                "campaign {} counts in {}, not {}",
                c.campaign_id, c.budget.currency, money.currency
            ),
        ));
    }
    Ok(())
}

fn record_response(
    state: &CampaignState,
    cmd: &RecordResponse,
    ctx: &Context<'_>,
) -> Result<Vec<CampaignEvent>, DomainError> {
    let c = for_send(state, &cmd.send)?;
    let stats = c.sends.get(&cmd.send.send_id).cloned().unwrap_or_default();
    let campaign_id = c.campaign_id.to_string();
    let send_id = cmd.send.send_id.to_string();
    let customer_id = cmd.send.customer_id.to_string();
    let recorded_at = Some(ctx.now);
    let event = match &cmd.response {
        Response::Delivered if !stats.delivered => {
            CampaignEvent::MessageDelivered(pb::CampaignMessageDelivered {
                campaign_id,
                send_id,
                customer_id,
                recorded_at,
            })
        }
        // A hard bounce after a soft one is news (the address is gone); any
        // other repeat is not.
        Response::Bounced { permanent }
            if !stats.bounced || (*permanent && !stats.bounced_permanently) =>
        {
            CampaignEvent::MessageBounced(pb::CampaignMessageBounced {
                campaign_id,
                send_id,
                customer_id,
                permanent: *permanent,
                recorded_at,
            })
        }
        Response::Opened if !stats.opened => {
            CampaignEvent::MessageOpened(pb::CampaignMessageOpened {
                campaign_id,
                send_id,
                customer_id,
                recorded_at,
            })
        }
        Response::Clicked { link } => {
            let link = link.trim();
            if link.len() > MAX_LINK_BYTES || link.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    "link",
                    format!("must be one line of at most {MAX_LINK_BYTES} bytes"),
                ));
            }
            if stats.clicked {
                return Ok(Vec::new());
            }
            CampaignEvent::MessageClicked(pb::CampaignMessageClicked {
                campaign_id,
                send_id,
                customer_id,
                link: link.to_owned(),
                recorded_at,
            })
        }
        Response::Responded { response } => {
            let response =
                text::check("response", response, MAX_RESPONSE_CHARS, false, Lines::Many)?;
            if stats.responded {
                return Ok(Vec::new());
            }
            CampaignEvent::MessageResponded(pb::CampaignMessageResponded {
                campaign_id,
                send_id,
                customer_id,
                response,
                recorded_at,
            })
        }
        // Already recorded for this send: providers repeat webhooks.
        Response::Delivered | Response::Bounced { .. } | Response::Opened => return Ok(Vec::new()),
    };
    Ok(vec![event])
}

fn attribute_conversion(
    state: &CampaignState,
    cmd: &AttributeConversion,
    ctx: &Context<'_>,
) -> Result<Vec<CampaignEvent>, DomainError> {
    let c = for_send(state, &cmd.send)?;
    let order_id = text::check_id("order_id", &cmd.order_id, MAX_ORDER_ID_BYTES)?;
    let revenue = cmd.revenue.check("revenue", 0)?;
    same_currency(c, &revenue)?;
    // An order counts once, or revenue would be double-counted.
    if c.orders.contains(&order_id) {
        return Ok(Vec::new());
    }
    Ok(vec![CampaignEvent::ConversionAttributed(
        pb::CampaignConversionAttributed {
            campaign_id: c.campaign_id.to_string(),
            send_id: cmd.send.send_id.to_string(),
            customer_id: cmd.send.customer_id.to_string(),
            order_id,
            revenue_amount_minor: revenue.amount_minor,
            currency: revenue.currency,
            recorded_at: Some(ctx.now),
        },
    )])
}

fn record_cost(
    state: &CampaignState,
    cmd: &RecordCost,
    ctx: &Context<'_>,
) -> Result<Vec<CampaignEvent>, DomainError> {
    let c = for_send(state, &cmd.send)?;
    let cost = cmd.cost.check("cost", 1)?;
    let reason = text::check(
        "reason",
        &cmd.reason,
        MAX_COST_REASON_CHARS,
        true,
        Lines::One,
    )?;
    same_currency(c, &cost)?;
    Ok(vec![CampaignEvent::CostRecorded(
        pb::CampaignCostRecorded {
            campaign_id: c.campaign_id.to_string(),
            send_id: cmd.send.send_id.to_string(),
            customer_id: cmd.send.customer_id.to_string(),
            amount_minor: cost.amount_minor,
            currency: cost.currency,
            reason,
            recorded_at: Some(ctx.now),
        },
    )])
}

/// A UUID read from an event this crate wrote; nil if it cannot be read,
/// because `evolve` cannot fail.
pub(crate) fn uuid_of(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

fn send_stats<'c>(c: &'c mut CampaignData, send_id: &str, customer_id: &str) -> &'c mut SendStats {
    c.sends
        .entry(uuid_of(send_id))
        .or_insert_with(|| SendStats {
            customer_id: uuid_of(customer_id),
            ..SendStats::default()
        })
}

impl Decider for Campaign {
    type State = CampaignState;
    type Command = CampaignCommand;
    type Event = CampaignEvent;

    fn decide(
        state: &CampaignState,
        command: &CampaignCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<CampaignEvent>, DomainError> {
        use pb::CampaignStatus::{Active, Completed, Draft, Paused};
        match command {
            CampaignCommand::Create(cmd) => create(state, cmd, ctx),
            CampaignCommand::Launch { campaign_id } => {
                change_status(state, *campaign_id, &[Draft], Active, ctx)
            }
            CampaignCommand::Resume { campaign_id } => {
                change_status(state, *campaign_id, &[Paused], Active, ctx)
            }
            CampaignCommand::Pause { campaign_id } => {
                change_status(state, *campaign_id, &[Active], Paused, ctx)
            }
            CampaignCommand::Complete { campaign_id } => {
                change_status(state, *campaign_id, &[Active, Paused], Completed, ctx)
            }
            CampaignCommand::Target(cmd) => target(state, cmd, ctx),
            CampaignCommand::RecordResponse(cmd) => record_response(state, cmd, ctx),
            CampaignCommand::AttributeConversion(cmd) => attribute_conversion(state, cmd, ctx),
            CampaignCommand::RecordCost(cmd) => record_cost(state, cmd, ctx),
        }
    }

    fn evolve(mut state: CampaignState, event: &CampaignEvent) -> CampaignState {
        if let CampaignEvent::Created(e) = event {
            let budget = e.budget.clone().unwrap_or_default();
            let offer = e.offer.clone().unwrap_or_default();
            state.campaign = Some(CampaignData {
                campaign_id: uuid_of(&e.campaign_id),
                name: e.name.clone(),
                channel: pb::ContactChannel::try_from(e.channel).unwrap_or_default(),
                audience: e.customer_ids.iter().map(|s| uuid_of(s)).collect(),
                window: Window::from_proto(e.window.as_ref()),
                budget: Money::new(budget.amount_minor, budget.currency),
                offer_code: offer.offer_code,
                offer_description: offer.description,
                priority: e.priority,
                frequency_cap: FrequencyCap::from_proto(e.frequency_cap.as_ref()),
                status: pb::CampaignStatus::Draft,
                created_at: e.created_at.unwrap_or_default(),
                sends: BTreeMap::new(),
                orders: BTreeSet::new(),
                revenue_minor: 0,
                cost_minor: 0,
            });
            return state;
        }
        let Some(c) = state.campaign.as_mut() else {
            return state;
        };
        match event {
            CampaignEvent::Created(_) => {}
            CampaignEvent::StatusChanged(e) => {
                c.status = pb::CampaignStatus::try_from(e.to_status).unwrap_or(c.status);
            }
            CampaignEvent::CustomersTargeted(e) => {
                c.audience.extend(e.customer_ids.iter().map(|s| uuid_of(s)));
            }
            CampaignEvent::MessageDelivered(e) => {
                send_stats(c, &e.send_id, &e.customer_id).delivered = true;
            }
            CampaignEvent::MessageBounced(e) => {
                let stats = send_stats(c, &e.send_id, &e.customer_id);
                stats.bounced = true;
                stats.bounced_permanently |= e.permanent;
            }
            CampaignEvent::MessageOpened(e) => {
                send_stats(c, &e.send_id, &e.customer_id).opened = true;
            }
            CampaignEvent::MessageClicked(e) => {
                send_stats(c, &e.send_id, &e.customer_id).clicked = true;
            }
            CampaignEvent::MessageResponded(e) => {
                send_stats(c, &e.send_id, &e.customer_id).responded = true;
            }
            CampaignEvent::ConversionAttributed(e) => {
                send_stats(c, &e.send_id, &e.customer_id);
                c.orders.insert(e.order_id.clone());
                c.revenue_minor = c.revenue_minor.saturating_add(e.revenue_amount_minor);
            }
            CampaignEvent::CostRecorded(e) => {
                send_stats(c, &e.send_id, &e.customer_id);
                c.cost_minor = c.cost_minor.saturating_add(e.amount_minor);
            }
        }
        state
    }
}
