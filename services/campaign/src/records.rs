//! Records about a send: delivery, bounce, open, click, response,
//! conversion, cost.
//!
//! Each names a send by campaign, send id and customer. The send must be one
//! the customer's outreach stream approved for that campaign (else NOT_FOUND),
//! so nothing can be booked against a send that never happened. The
//! campaign stream is loaded first: it is the one appended to and the one
//! `command.expected_version` is about. A bounce also flags the customer's
//! contact, in the same all-or-nothing append.

use kizuna_command::{Attempt, CommandError, Decision, Plan};
use kizuna_domain::DomainError;
use kizuna_domain::campaign::{
    self, Campaign, CampaignCommand, Outreach, RecordResponse, Response, SendRef,
};
use kizuna_domain::contact::Region;
use kizuna_domain::customer::{self, ContactValue, Customer, CustomerCommand};
use kizuna_proto::v1 as pb;

/// The region bounces are recorded with. The values the service passes on
/// are the customer's own stored ones, already normalised (phones in E.164,
/// which needs no region), so the region never changes them.
const STORED_VALUE_REGION: &str = "JP";

/// A bounce's effect on the customer's contact flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerBounce {
    /// HARD (true) or SOFT.
    pub permanent: bool,
    /// The provider's reason.
    pub reason: String,
}

/// Record `command` (a response, conversion or cost) about `send`.
#[derive(Debug, Clone)]
pub struct RecordOnSend {
    /// The send the record is about.
    pub send: SendRef,
    /// The campaign command recording it.
    pub command: CampaignCommand,
    /// For a bounce: the customer's side.
    pub bounce: Option<CustomerBounce>,
}

impl RecordOnSend {
    /// A record that touches the campaign stream only.
    pub fn new(send: SendRef, command: CampaignCommand) -> Self {
        Self {
            send,
            command,
            bounce: None,
        }
    }

    /// A bounce: the campaign's record and the customer's flag.
    pub fn bounce(send: SendRef, permanent: bool, reason: String) -> Self {
        Self {
            send,
            command: CampaignCommand::RecordResponse(RecordResponse {
                send,
                response: Response::Bounced { permanent },
            }),
            bounce: Some(CustomerBounce { permanent, reason }),
        }
    }
}

impl Decision for RecordOnSend {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let send = self.send;
        let loaded = attempt
            .load::<Campaign>(&campaign::stream(send.campaign_id))
            .await?;
        let Some(channel) = loaded.state.campaign.as_ref().map(|c| c.channel) else {
            return Err(DomainError::not_found("campaign", send.campaign_id).into());
        };
        let outreach = attempt
            .load::<Outreach>(&campaign::outreach::stream(send.customer_id))
            .await?;
        if !outreach
            .state
            .sends
            .iter()
            .any(|s| s.send_id == send.send_id && s.campaign_id == send.campaign_id)
        {
            return Err(DomainError::not_found("send", send.send_id).into());
        }
        let events = attempt.decide(&loaded, &self.command)?;
        let plan = Plan::new().append_to(&loaded, Some(send.customer_id), &events);
        let Some(bounce) = &self.bounce else {
            return Ok(plan);
        };
        // A repeated report of the same bounce records nothing on either side.
        if events.is_empty() || channel == pb::ContactChannel::Push {
            return Ok(plan);
        }
        let person = attempt
            .load::<Customer>(&customer::stream_name(send.customer_id))
            .await?;
        if !person.state.registered {
            return Err(DomainError::not_found("customer", send.customer_id).into());
        }
        let contact = &person.state.contact;
        let value = match channel {
            pb::ContactChannel::Email => {
                (!contact.email.is_empty()).then(|| ContactValue::Address(contact.email.clone()))
            }
            pb::ContactChannel::Sms | pb::ContactChannel::Phone => {
                (!contact.phone.is_empty()).then(|| ContactValue::Address(contact.phone.clone()))
            }
            pb::ContactChannel::Postal => contact.postal_address.clone().map(ContactValue::Postal),
            pb::ContactChannel::Push | pb::ContactChannel::Unspecified => None,
        };
        let Some(value) = value else {
            return Err(DomainError::rejected(
                customer::NO_CONTACT_ON_CHANNEL,
                format!(
                    "customer {} has no contact value for {}",
                    send.customer_id,
                    channel.as_str_name()
                ),
            )
            .into());
        };
        let region: Region = STORED_VALUE_REGION
            .parse()
            .map_err(|e| DomainError::invalid("region", format!("{STORED_VALUE_REGION}: {e}")))?;
        let customer_events = attempt.decide(
            &person,
            &CustomerCommand::RecordBounce {
                customer_id: send.customer_id,
                channel,
                value: Some(value),
                kind: if bounce.permanent {
                    pb::BounceKind::Hard
                } else {
                    pb::BounceKind::Soft
                },
                reason: bounce.reason.clone(),
                region,
            },
        )?;
        Ok(plan.append_to(&person, Some(send.customer_id), &customer_events))
    }
}
