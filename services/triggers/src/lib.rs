//! TriggerService over gRPC (event-based marketing), plus the
//! [`TriggerProcessor`] that fires the triggers.
//!
//! The rules are the domain's ([`kizuna_domain::trigger`]); this crate adapts
//! them to `kizuna.v1.TriggerService` and runs them against the log:
//!
//! - trigger commands run on `trigger-{id}`; defining one also reads the
//!   campaign it names (which must exist) and looks its event type and field
//!   paths up in the event catalog (`kizuna_proto::catalog`), so a typo is an
//!   INVALID_ARGUMENT at definition time rather than a trigger that never fires;
//! - the [`TriggerProcessor`] follows the whole log from a checkpoint kept in
//!   the log and targets customers into campaigns through the campaign's own
//!   rules, with command ids derived from the triggering event, so nothing is
//!   targeted twice across restarts or racing processors.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
pub mod processor;
mod schema;

pub use api::TriggerApi;
pub use processor::{ProcessReport, ProcessorStatus, TriggerProcessor};

use kizuna_command::CommandRunner;
use kizuna_proto::v1::trigger_service_server::TriggerServiceServer;
use std::time::Duration;

/// Settings of the trigger processor that runs beside the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerConfig {
    /// How often the processor reads new events and looks for inactive
    /// customers: a trigger fires at most about this long after its event.
    pub check_interval: Duration,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(1),
        }
    }
}

/// The TriggerService over `runner`'s log, without a processor (tests drive a
/// [`TriggerProcessor`] of their own; the status RPC then reports none running).
pub fn service(runner: CommandRunner) -> TriggerServiceServer<TriggerApi> {
    TriggerServiceServer::new(TriggerApi::new(runner, None))
}

/// The TriggerService reporting the counters of a processor the caller runs
/// itself (see [`TriggerProcessor::status`]).
pub fn service_with_status(
    runner: CommandRunner,
    status: std::sync::Arc<ProcessorStatus>,
) -> TriggerServiceServer<TriggerApi> {
    TriggerServiceServer::new(TriggerApi::new(runner, Some(status)))
}

/// The TriggerService and its processor, spawned at `config`'s pace; the
/// processor's task is returned so a server can stop it at shutdown. Must be
/// called inside a tokio runtime.
pub fn service_with_processor(
    runner: CommandRunner,
    config: TriggerConfig,
) -> (
    TriggerServiceServer<TriggerApi>,
    tokio::task::JoinHandle<()>,
) {
    let processor = TriggerProcessor::new(runner.clone());
    let api = TriggerApi::new(runner, Some(processor.status()));
    (
        TriggerServiceServer::new(api),
        processor.spawn(config.check_interval),
    )
}
