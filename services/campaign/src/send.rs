//! SendToCustomer: the decision on the customer's outreach stream.
//!
//! The outreach stream is loaded first, so it is the command's primary
//! stream (`command.expected_version` is about it) and the one appended to
//! with its expected version: a concurrent decision for the same customer
//! makes the log refuse this append and the runner decide again on the new
//! state. The campaign and customer streams are only read; a campaign paused
//! in the very moment of a send may still see that send approved, but two
//! sends can never both take one offer slot.

use kizuna_command::{Attempt, CommandError, Decision, Plan};
use kizuna_domain::campaign::{
    self, Campaign, CampaignData, DecideSend, Outreach, OutreachCommand, OutreachEvent,
    OutreachState, ReleaseSlot,
};
use kizuna_domain::customer::{self, Customer};
use kizuna_domain::{Decider, DomainError};
use kizuna_proto::v1 as pb;
use prost_types::Timestamp;
use uuid::Uuid;

use crate::convert::hard_bounced;

/// Decide whether `campaign_id` sends its offer to `customer_id` now.
#[derive(Debug, Clone, Copy)]
pub struct SendToCustomer {
    /// The campaign.
    pub campaign_id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
}

impl Decision for SendToCustomer {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let outreach = attempt
            .load::<Outreach>(&campaign::outreach::stream(self.customer_id))
            .await?;
        let loaded = attempt
            .load::<Campaign>(&campaign::stream(self.campaign_id))
            .await?;
        let Some(c) = loaded.state.campaign.as_ref() else {
            return Err(DomainError::not_found("campaign", self.campaign_id).into());
        };
        if !c.audience.contains(&self.customer_id) {
            return Err(DomainError::rejected(
                campaign::CUSTOMER_NOT_TARGETED,
                format!(
                    "customer {} is not in campaign {}'s audience",
                    self.customer_id, self.campaign_id
                ),
            )
            .into());
        }
        let person = attempt
            .load::<Customer>(&customer::stream_name(self.customer_id))
            .await?;
        customer::ensure_live(&person.state, self.customer_id)?;
        let now = attempt.now();
        let (mut state, mut events) = self
            .release_completed(attempt, outreach.state.clone(), c, &now)
            .await?;
        let command = OutreachCommand::DecideSend(DecideSend::new(
            c,
            self.customer_id,
            person.state.consents.clone(),
            hard_bounced(&person.state.bounces),
        ));
        let decided = Outreach::decide(&state, &command, &mut attempt.context())?;
        for e in &decided {
            state = Outreach::evolve(state, e);
        }
        events.extend(decided);
        Ok(Plan::new().append_to(&outreach, Some(self.customer_id), &events))
    }
}

impl SendToCustomer {
    /// Releases the slot on `c`'s channel while its holder's campaign is
    /// COMPLETED: the lazy release, decided on the state the send is then
    /// decided on. Returns that state and the release events.
    async fn release_completed(
        &self,
        attempt: &mut Attempt<'_>,
        mut state: OutreachState,
        c: &CampaignData,
        now: &Timestamp,
    ) -> Result<(OutreachState, Vec<OutreachEvent>), CommandError> {
        let mut events = Vec::new();
        // Each round frees one campaign's slots; a channel has one holder at
        // a time, so this ends after at most a few rounds.
        while let Some(holder) = state.slot_holder(c.channel, now) {
            let holder_campaign = holder.campaign_id;
            let status = if holder_campaign == c.campaign_id {
                c.status
            } else {
                let other = attempt
                    .load::<Campaign>(&campaign::stream(holder_campaign))
                    .await?;
                match other.state.campaign {
                    Some(o) => o.status,
                    None => break,
                }
            };
            if status != pb::CampaignStatus::Completed {
                break;
            }
            let released = Outreach::decide(
                &state,
                &OutreachCommand::ReleaseSlot(ReleaseSlot {
                    customer_id: self.customer_id,
                    campaign_id: holder_campaign,
                }),
                &mut attempt.context(),
            )?;
            if released.is_empty() {
                break;
            }
            for e in &released {
                state = Outreach::evolve(state, e);
            }
            events.extend(released);
        }
        Ok((state, events))
    }
}
