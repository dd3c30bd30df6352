//! Outreach: the per-customer stream (`outreach-{customer_id}`) on which every
//! campaign send to that customer is decided.
//!
//! Because all campaigns append their decisions for a customer to this one
//! stream with an expected version, two campaigns racing for the same
//! customer are serialised: the second one's decision is re-made on a state
//! that includes the first one's, so at most one of them gets the offer slot.
//!
//! [`DecideSend`] always produces exactly one event: `outreach.send_approved`
//! or `outreach.send_suppressed` with a [`SuppressionReason`]. The checks, in
//! order (the first that fails is the reason):
//!
//! 1. `CAMPAIGN_NOT_ACTIVE`: the campaign's status is not ACTIVE;
//! 2. `OUTSIDE_WINDOW`: now is not in `[starts_at, ends_at)`;
//! 3. `ALREADY_SENT`: this campaign already has an approved send to this
//!    customer on this channel (one offer per campaign and customer);
//! 4. `NO_CONSENT`: no (channel, MARKETING) consent;
//! 5. `CONTACT_BOUNCED`: the channel is bounced;
//! 6. `CONFLICTING_OFFER`: another campaign holds the offer slot on this
//!    channel. An approved send holds it until its campaign window ends or
//!    [`ReleaseSlot`] frees it (campaign completed). A slot once approved is
//!    never taken back, whatever the priorities, because the message may
//!    already be out: the first approved send wins and later ones, even of
//!    higher priority, are suppressed until the slot frees;
//! 7. `FREQUENCY_CAP`: approved sends on this channel, across all
//!    campaigns, in the trailing cap window (approved after now minus the
//!    cap's length) number at least the requesting campaign's cap.

#[cfg(test)]
mod tests;

use super::{CampaignData, FrequencyCap, Window, check_channel, check_offer_code, check_priority};
use crate::decider::{Context, Decider};
use crate::error::DomainError;
use crate::pb;
use crate::time::{before, sub, unix_nanos};
use prost_types::Timestamp;
use std::collections::BTreeSet;
use uuid::Uuid;

crate::event_messages! {
    pb::OutreachSendApproved => "outreach.send_approved" version 1,
    pb::OutreachSendSuppressed => "outreach.send_suppressed" version 1,
    pb::OutreachSlotReleased => "outreach.slot_released" version 1,
}

crate::event_enum! {
    /// Events of the outreach stream.
    pub enum OutreachEvent {
        /// A send was approved and took the offer slot.
        SendApproved(pb::OutreachSendApproved),
        /// A send was not made.
        SendSuppressed(pb::OutreachSendSuppressed),
        /// A campaign's slot was freed early.
        SlotReleased(pb::OutreachSlotReleased),
    }
}

/// The stream category of outreach streams.
pub const CATEGORY: &str = "outreach";

/// The outreach stream of customer `customer_id`.
pub fn stream(customer_id: Uuid) -> String {
    format!("{CATEGORY}-{customer_id}")
}

/// Why a send was suppressed (`pb::OutreachSuppressionReason`).
pub type SuppressionReason = pb::OutreachSuppressionReason;

/// Decides whether a campaign sends its offer to a customer now (the
/// context's time). The service fills it from the campaign stream (status,
/// priority, channel, window, offer, cap) and the customer stream (consents,
/// bounces); see [`DecideSend::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct DecideSend {
    /// The customer (the stream's).
    pub customer_id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
    /// The campaign's status.
    pub campaign_status: pb::CampaignStatus,
    /// The campaign's priority (1..=100).
    pub priority: i32,
    /// The campaign's channel.
    pub channel: pb::ContactChannel,
    /// The campaign's window.
    pub window: Window,
    /// The campaign's offer code.
    pub offer_code: String,
    /// The campaign's frequency cap.
    pub frequency_cap: FrequencyCap,
    /// The customer's consents.
    pub consents: BTreeSet<(pb::ContactChannel, pb::ConsentPurpose)>,
    /// The customer's bounced channels.
    pub bounced_channels: BTreeSet<pb::ContactChannel>,
}

impl DecideSend {
    /// The decision for `campaign`'s send to `customer_id`, whose consents
    /// and bounced channels are given.
    pub fn new(
        campaign: &CampaignData,
        customer_id: Uuid,
        consents: BTreeSet<(pb::ContactChannel, pb::ConsentPurpose)>,
        bounced_channels: BTreeSet<pb::ContactChannel>,
    ) -> Self {
        Self {
            customer_id,
            campaign_id: campaign.campaign_id,
            campaign_status: campaign.status,
            priority: campaign.priority,
            channel: campaign.channel,
            window: campaign.window,
            offer_code: campaign.offer_code.clone(),
            frequency_cap: campaign.frequency_cap,
            consents,
            bounced_channels,
        }
    }
}

/// Frees a campaign's offer slot for a customer before its window ends (the
/// campaign completed). Nothing happens if it holds no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseSlot {
    /// The customer (the stream's).
    pub customer_id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
}

/// What a caller asks of a customer's outreach stream.
#[derive(Debug, Clone, PartialEq)]
pub enum OutreachCommand {
    /// Decide a send.
    DecideSend(DecideSend),
    /// Free a slot.
    ReleaseSlot(ReleaseSlot),
}

/// An approved send, as the outreach stream remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedSend {
    /// The send.
    pub send_id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
    /// The channel.
    pub channel: pb::ContactChannel,
    /// The campaign's priority.
    pub priority: i32,
    /// When it was approved.
    pub approved_at: Timestamp,
    /// When its slot frees by itself.
    pub slot_until: Timestamp,
    /// Whether its slot was freed early.
    pub released: bool,
}

impl ApprovedSend {
    /// Whether it holds its channel's offer slot at `now`.
    pub fn holds_slot_at(&self, now: &Timestamp) -> bool {
        !self.released && before(now, &self.slot_until)
    }
}

/// A customer's outreach: the approved sends, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutreachState {
    /// Approved sends, oldest first.
    pub sends: Vec<ApprovedSend>,
}

impl OutreachState {
    /// The send holding the offer slot on `channel` at `now`, if any.
    pub fn slot_holder(
        &self,
        channel: pb::ContactChannel,
        now: &Timestamp,
    ) -> Option<&ApprovedSend> {
        self.sends
            .iter()
            .find(|s| s.channel == channel && s.holds_slot_at(now))
    }

    /// Approved sends on `channel` after `since`. Later ones count too, so a
    /// decision made with a clock behind an earlier one's is not more lenient.
    pub fn approved_after(&self, channel: pb::ContactChannel, since: &Timestamp) -> usize {
        let since = unix_nanos(since);
        self.sends
            .iter()
            .filter(|s| s.channel == channel && unix_nanos(&s.approved_at) > since)
            .count()
    }
}

/// A customer's outreach rules.
#[derive(Debug)]
pub struct Outreach;

fn check(cmd: &DecideSend) -> Result<String, DomainError> {
    if cmd.customer_id.is_nil() {
        return Err(DomainError::invalid("customer_id", "is required"));
    }
    if cmd.campaign_id.is_nil() {
        return Err(DomainError::invalid("campaign_id", "is required"));
    }
    if cmd.campaign_status == pb::CampaignStatus::Unspecified {
        return Err(DomainError::invalid("campaign_status", "is required"));
    }
    check_priority("priority", cmd.priority)?;
    check_channel("channel", cmd.channel)?;
    cmd.window.check("window")?;
    let code = check_offer_code("offer_code", &cmd.offer_code)?;
    cmd.frequency_cap.check("frequency_cap")?;
    Ok(code)
}

/// The reason `cmd` is suppressed at `now`, with the slot holder for
/// CONFLICTING_OFFER; `None` if the send is approved.
fn suppression(
    state: &OutreachState,
    cmd: &DecideSend,
    now: &Timestamp,
) -> Option<(SuppressionReason, Option<Uuid>)> {
    if cmd.campaign_status != pb::CampaignStatus::Active {
        return Some((SuppressionReason::CampaignNotActive, None));
    }
    if !cmd.window.contains(now) {
        return Some((SuppressionReason::OutsideWindow, None));
    }
    if state
        .sends
        .iter()
        .any(|s| s.campaign_id == cmd.campaign_id && s.channel == cmd.channel)
    {
        return Some((SuppressionReason::AlreadySent, None));
    }
    if !cmd
        .consents
        .contains(&(cmd.channel, pb::ConsentPurpose::Marketing))
    {
        return Some((SuppressionReason::NoConsent, None));
    }
    if cmd.bounced_channels.contains(&cmd.channel) {
        return Some((SuppressionReason::ContactBounced, None));
    }
    if let Some(holder) = state.slot_holder(cmd.channel, now) {
        return Some((
            SuppressionReason::ConflictingOffer,
            Some(holder.campaign_id),
        ));
    }
    let since = sub(now, cmd.frequency_cap.per);
    let sent = state.approved_after(cmd.channel, &since);
    if u64::try_from(sent).unwrap_or(u64::MAX) >= u64::from(cmd.frequency_cap.max_sends) {
        return Some((SuppressionReason::FrequencyCap, None));
    }
    None
}

fn decide_send(
    state: &OutreachState,
    cmd: &DecideSend,
    ctx: &mut Context<'_>,
) -> Result<Vec<OutreachEvent>, DomainError> {
    let offer_code = check(cmd)?;
    let now = ctx.now;
    let event = match suppression(state, cmd, &now) {
        Some((reason, holder)) => OutreachEvent::SendSuppressed(pb::OutreachSendSuppressed {
            customer_id: cmd.customer_id.to_string(),
            campaign_id: cmd.campaign_id.to_string(),
            channel: cmd.channel as i32,
            offer_code,
            campaign_priority: cmd.priority,
            reason: reason as i32,
            conflicting_campaign_id: holder.map(|id| id.to_string()).unwrap_or_default(),
            suppressed_at: Some(now),
        }),
        None => OutreachEvent::SendApproved(pb::OutreachSendApproved {
            customer_id: cmd.customer_id.to_string(),
            send_id: ctx.new_id().to_string(),
            campaign_id: cmd.campaign_id.to_string(),
            channel: cmd.channel as i32,
            offer_code,
            campaign_priority: cmd.priority,
            slot_until: Some(cmd.window.ends_at),
            approved_at: Some(now),
        }),
    };
    Ok(vec![event])
}

fn release(
    state: &OutreachState,
    cmd: &ReleaseSlot,
    ctx: &Context<'_>,
) -> Result<Vec<OutreachEvent>, DomainError> {
    if cmd.customer_id.is_nil() {
        return Err(DomainError::invalid("customer_id", "is required"));
    }
    if cmd.campaign_id.is_nil() {
        return Err(DomainError::invalid("campaign_id", "is required"));
    }
    Ok(state
        .sends
        .iter()
        .filter(|s| s.campaign_id == cmd.campaign_id && s.holds_slot_at(&ctx.now))
        .map(|s| {
            OutreachEvent::SlotReleased(pb::OutreachSlotReleased {
                customer_id: cmd.customer_id.to_string(),
                campaign_id: cmd.campaign_id.to_string(),
                channel: s.channel as i32,
                send_id: s.send_id.to_string(),
                released_at: Some(ctx.now),
            })
        })
        .collect())
}

impl Decider for Outreach {
    type State = OutreachState;
    type Command = OutreachCommand;
    type Event = OutreachEvent;

    fn decide(
        state: &OutreachState,
        command: &OutreachCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<OutreachEvent>, DomainError> {
        match command {
            OutreachCommand::DecideSend(cmd) => decide_send(state, cmd, ctx),
            OutreachCommand::ReleaseSlot(cmd) => release(state, cmd, ctx),
        }
    }

    fn evolve(mut state: OutreachState, event: &OutreachEvent) -> OutreachState {
        match event {
            OutreachEvent::SendApproved(e) => state.sends.push(ApprovedSend {
                send_id: super::uuid_of(&e.send_id),
                campaign_id: super::uuid_of(&e.campaign_id),
                channel: pb::ContactChannel::try_from(e.channel).unwrap_or_default(),
                priority: e.campaign_priority,
                approved_at: e.approved_at.unwrap_or_default(),
                slot_until: e.slot_until.unwrap_or_default(),
                released: false,
            }),
            // Suppressions are the audit trail; they change nothing.
            OutreachEvent::SendSuppressed(_) => {}
            OutreachEvent::SlotReleased(e) => {
                let send_id = super::uuid_of(&e.send_id);
                for s in state.sends.iter_mut().filter(|s| s.send_id == send_id) {
                    s.released = true;
                }
            }
        }
        state
    }
}
