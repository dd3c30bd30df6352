//! LeadService over gRPC: capture, score, qualify, convert and merge leads.
//!
//! The rules are the domain's ([`kizuna_domain::lead`]); this crate adapts
//! them to `kizuna.v1.LeadService`:
//!
//! - single-lead commands run through [`CommandRunner::execute`] on
//!   `lead-{id}`;
//! - ConvertLead and MergeLeads touch two streams and append both halves in
//!   one all-or-nothing append, so there is never a converted lead without
//!   its customer or a merged duplicate without its survivor;
//! - FindDuplicateLeads answers from an in-memory [`duplicates`] index that
//!   follows the log, and waits for it to reach the log head read at request
//!   time so a caller always finds what it has just written.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod convert;
pub mod duplicates;

pub use api::{INDEX_WAIT, LeadApi, MAX_CANDIDATES};

use kizuna_command::CommandRunner;
use kizuna_domain::contact::Region;
use kizuna_proto::v1::lead_service_server::LeadServiceServer;

/// How the service reads input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadConfig {
    /// Region for phone numbers written without a country calling code.
    pub default_region: Region,
}

/// The LeadService over `runner`'s log.
///
/// Spawns the duplicate index's task, so it must be called inside a tokio
/// runtime. The task rebuilds the index from the whole log, then follows it
/// live; it stops when the returned server (and every clone of its service)
/// is dropped.
pub fn service(runner: CommandRunner, config: LeadConfig) -> LeadServiceServer<LeadApi> {
    service_with_index_task(runner, config).0
}

/// [`service`], also returning the duplicate index's task, so that a server
/// shutting down can stop it and know it no longer holds the log.
pub fn service_with_index_task(
    runner: CommandRunner,
    config: LeadConfig,
) -> (LeadServiceServer<LeadApi>, tokio::task::JoinHandle<()>) {
    let (index, task) = duplicates::DuplicateIndex::spawn_with_task(
        runner.store().clone(),
        runner.upcasters().clone(),
    );
    (
        LeadServiceServer::new(LeadApi::new(runner, config, index)),
        task,
    )
}
