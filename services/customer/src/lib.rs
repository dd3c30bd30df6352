//! CustomerService over gRPC.
//!
//! A thin adapter around the customer decider
//! ([`kizuna_domain::customer::Customer`]): each RPC validates the request's
//! shape ([`convert`]), builds the domain command and runs it through the
//! shared command loop ([`kizuna_command::CommandRunner`]), which gives every
//! RPC the same idempotency, conflict handling and error mapping. Merges and
//! their undo touch two customers and are written as one all-or-nothing
//! multi-stream append ([`merge`]); a merge never lands on one side only.
//!
//! Contact data is normalised by the domain with the configured
//! [`CustomerConfig::default_region`] for phone numbers written without a
//! country code.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
pub mod convert;
pub mod merge;

pub use api::CustomerApi;
pub use kizuna_proto::v1::customer_service_server::CustomerServiceServer;

use kizuna_command::CommandRunner;
use kizuna_domain::contact::Region;

/// Settings of the customer service.
#[derive(Debug, Clone, Copy)]
pub struct CustomerConfig {
    /// Region for phone numbers given without a country calling code.
    pub default_region: Region,
}

/// The tonic service, ready for `Server::add_service`.
pub fn service(
    runner: CommandRunner,
    config: CustomerConfig,
) -> CustomerServiceServer<CustomerApi> {
    CustomerServiceServer::new(CustomerApi::new(runner, config))
}
