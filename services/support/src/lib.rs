//! SupportService over gRPC: tickets with SLA targets, the SLA policy and
//! survey responses, plus the [`SlaWatcher`] that records missed targets.
//!
//! The rules are the domain's ([`kizuna_domain::ticket`],
//! [`kizuna_domain::survey`]); this crate adapts them to
//! `kizuna.v1.SupportService`:
//!
//! - ticket commands run on `ticket-{id}`; opening one also reads the SLA
//!   policy (`slapolicy-{fixed id}`) and records the targets of its priority
//!   in `ticket.opened`, so later policy changes never rewrite a promise;
//! - a survey response linked to a ticket reads that ticket to check it is the
//!   same customer's;
//! - the [`SlaWatcher`] follows the ticket events of the log into an in-memory
//!   schedule of pending targets and records `ticket.sla_breached` for the
//!   due ones, exactly once per target even across restarts and racing
//!   watchers. The server spawns it beside the service.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod convert;
pub mod watcher;

pub use api::SupportApi;
pub use watcher::SlaWatcher;

use kizuna_command::CommandRunner;
use kizuna_proto::v1::support_service_server::SupportServiceServer;
use std::time::Duration;

/// Settings of the SLA watcher that runs beside the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportConfig {
    /// How often the SLA watcher looks for due targets: a breach is recorded
    /// at most about this long after its due time.
    pub sla_check_interval: Duration,
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            sla_check_interval: Duration::from_secs(1),
        }
    }
}

/// The SupportService over `runner`'s log, without the SLA watcher (tests
/// drive a [`SlaWatcher`] of their own).
pub fn service(runner: CommandRunner) -> SupportServiceServer<SupportApi> {
    SupportServiceServer::new(SupportApi::new(runner))
}

/// The SupportService and its SLA watcher, spawned at `config`'s pace; the
/// watcher's task is returned so a server can stop it at shutdown. Must be
/// called inside a tokio runtime.
pub fn service_with_watcher(
    runner: CommandRunner,
    config: SupportConfig,
) -> (
    SupportServiceServer<SupportApi>,
    tokio::task::JoinHandle<()>,
) {
    let watcher = SlaWatcher::new(runner.clone()).spawn(config.sla_check_interval);
    (service(runner), watcher)
}
