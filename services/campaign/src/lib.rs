//! CampaignService over gRPC.
//!
//! A thin adapter around the campaign and outreach deciders
//! ([`kizuna_domain::campaign`]): each RPC checks the request's shape
//! ([`convert`]), builds the domain command and runs it through the shared
//! command loop ([`kizuna_command::CommandRunner`]), which gives every RPC the
//! same idempotency, conflict handling and error mapping.
//!
//! Two RPCs read or write more than one stream, and are written as
//! [`kizuna_command::Decision`]s:
//!
//! - **SendToCustomer** ([`send`]) reads the campaign and the customer and
//!   appends the decision to the customer's outreach stream with its expected
//!   version. That one stream per customer is what serialises racing
//!   campaigns: the loser's append is refused, and the runner decides again
//!   on a state that includes the winner. Slots held by completed campaigns
//!   are released in the same append, just before the decision, so freeing
//!   them needs no background job and can never be missed.
//! - **RecordBounce** ([`records`]) flags the customer's contact in the same
//!   all-or-nothing append as the campaign's bounce, so the two never
//!   disagree.
//!
//! Every record about a send (delivery, bounce, open, click, response,
//! conversion, cost) must name a send the outreach stream approved for that
//! campaign and customer, so no revenue or cost can be booked against a send
//! that never happened.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
pub mod convert;
mod error;
pub mod records;
pub mod send;

pub use api::{CampaignApi, SEND_MAX_ATTEMPTS};
pub use error::CampaignError;
pub use kizuna_proto::v1::campaign_service_server::CampaignServiceServer;

use kizuna_command::CommandRunner;

/// The tonic service, ready for `Server::add_service`.
pub fn service(runner: CommandRunner) -> CampaignServiceServer<CampaignApi> {
    CampaignServiceServer::new(CampaignApi::new(runner))
}
