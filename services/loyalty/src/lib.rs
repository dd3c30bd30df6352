//! LoyaltyService over gRPC: points accounts, earning rules, tiers, rewards
//! and coupons, plus the [`LoyaltyScheduler`] that records point expiry and
//! period-end tier downgrades.
//!
//! The rules are the domain's ([`kizuna_domain::loyalty`],
//! [`kizuna_domain::reward`]); this crate adapts them to
//! `kizuna.v1.LoyaltyService`:
//!
//! - account commands run on `loyalty-{customer_id}`; the ones that need the
//!   earning rules (RecordPurchase, AdjustPoints) read the last event of the
//!   rules stream (`earningrules-{fixed id}`) once per command, whatever its
//!   history, and pass the rule set in, so every `loyalty.points_earned`
//!   names the version it used;
//! - ClaimReward is one all-or-nothing append to three streams (the account,
//!   the reward with its expected version, and a new `coupon-{code}` stream
//!   with a "no stream" expectation): concurrent claims for the last item can
//!   never both win, and coupon codes are unique;
//! - the [`LoyaltyScheduler`] follows the `loyalty` category of the log into
//!   an in-memory schedule and, at the injected clock's now, expires the lots
//!   whose expiry has passed and reviews tiers at each UTC month boundary
//!   (see [`scheduler`]). The server spawns it beside the service.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod convert;
pub mod scheduler;

pub use api::{LoyaltyApi, MAX_ATTEMPTS};
pub use scheduler::{CheckReport, LoyaltyScheduler};

use kizuna_command::CommandRunner;
use kizuna_proto::v1::loyalty_service_server::LoyaltyServiceServer;
use std::time::Duration;

/// Settings of the scheduler that runs beside the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoyaltyConfig {
    /// How often the scheduler looks for expired lots and passed period
    /// ends: an expiry is recorded at most about this long after it is due.
    pub check_interval: Duration,
}

impl Default for LoyaltyConfig {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(1),
        }
    }
}

/// The LoyaltyService over `runner`'s log, without the scheduler (tests
/// drive a [`LoyaltyScheduler`] of their own).
pub fn service(runner: CommandRunner) -> LoyaltyServiceServer<LoyaltyApi> {
    LoyaltyServiceServer::new(LoyaltyApi::new(runner))
}

/// The LoyaltyService and its scheduler, spawned at `config`'s pace; the
/// scheduler's task is returned so a server can stop it at shutdown. Must be
/// called inside a tokio runtime.
pub fn service_with_scheduler(
    runner: CommandRunner,
    config: LoyaltyConfig,
) -> (
    LoyaltyServiceServer<LoyaltyApi>,
    tokio::task::JoinHandle<()>,
) {
    let scheduler = LoyaltyScheduler::new(runner.clone()).spawn(config.check_interval);
    (service(runner), scheduler)
}
