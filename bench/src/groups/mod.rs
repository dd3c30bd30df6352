//! The workload groups, one module each, in the order they run: every
//! baseline runs before the kizuna workload it bounds (see `report`).

pub mod commands;
pub mod disk;
pub mod grpc;
pub mod net;
pub mod purchases;
pub mod replay;
pub mod rpc;
pub mod store;

use crate::fixture::Sizes;
use crate::measure::Budget;
use kizuna_eventlog::{Durability, SledConfig};
use prost::bytes::Bytes;
use std::path::PathBuf;

/// Everything a workload needs to know about this run.
pub struct Ctx {
    pub budget: Budget,
    /// Where each workload makes its fresh temporary data directory.
    pub base: PathBuf,
    pub payload: Bytes,
    pub sizes: Sizes,
    /// Events to fill the log with before the replay.
    pub replay_events: u64,
    /// TCP connections (tonic channels) shared by the RPC clients.
    pub connections: usize,
    /// sled page cache of every database, raw or behind a store.
    pub cache_bytes: u64,
}

impl Ctx {
    /// The config of every `SledStore` the workloads open.
    pub fn store_config(&self, path: &std::path::Path, durability: Durability) -> SledConfig {
        let mut config = SledConfig::new(path).durability(durability);
        config.cache_capacity_bytes = self.cache_bytes;
        config
    }
}

/// Concurrency levels of the multi-client workloads.
pub const CLIENTS: [usize; 2] = [1, 64];

/// Durability modes of the disk and store workloads.
pub const MODES: [Durability; 3] = [Durability::Fsync, Durability::Flush, Durability::None];
