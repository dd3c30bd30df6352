//! (b) `SledStore::append` in process: what the log itself costs, without
//! any RPC, at 1 and 64 concurrent callers (tokio tasks, each on its own
//! stream), single events and 100-event batches, in each durability mode.

use super::{CLIENTS, Ctx, MODES};
use crate::fixture;
use crate::measure::{Budget, Sample, run_concurrent};
use crate::report::{Group, Report, Row};
use anyhow::Result;
use kizuna_eventlog::{Durability, EventStore, ExpectedVersion, SledStore};
use prost::bytes::Bytes;
use serde_json::json;

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    for mode in MODES {
        for clients in CLIENTS {
            for batch in [1, 100] {
                eprintln!("store: SledStore::append, {mode}, {clients} clients, batch {batch}");
                report.push(one(ctx, mode, clients, batch).await?)?;
            }
        }
    }
    Ok(())
}

/// Runs `clients` concurrent appenders of `batch`-event appends, each to its
/// own stream, against `store` within `budget`.
pub async fn run_appenders(
    store: &SledStore,
    budget: Budget,
    clients: usize,
    batch: usize,
    payload: &Bytes,
) -> Result<Sample> {
    run_concurrent(budget, clients, batch as u64, |i| {
        let store = store.clone();
        let stream = fixture::stream_name(i);
        let payload = payload.clone();
        move || {
            let store = store.clone();
            let stream = stream.clone();
            let events = fixture::events(batch, &payload);
            async move {
                store.append(&stream, ExpectedVersion::Any, events).await?;
                Ok(())
            }
        }
    })
    .await
}

async fn one(ctx: &Ctx, mode: Durability, clients: usize, batch: usize) -> Result<Row> {
    let dir = tempfile::tempdir_in(&ctx.base)?;
    let store = SledStore::open(ctx.store_config(dir.path(), mode))?;
    let sample = run_appenders(&store, ctx.budget, clients, batch, &ctx.payload).await?;
    let written = store.head().await?.next_position;
    store.shutdown().await?;
    let on_disk = fixture::disk_usage(dir.path());
    let mut extra = serde_json::Map::new();
    extra.insert("payload_bytes".into(), json!(ctx.payload.len()));
    extra.insert("stored_event_bytes".into(), json!(ctx.sizes.stored_event));
    extra.insert("events_written".into(), json!(written));
    extra.insert(
        "disk_bytes_per_event".into(),
        json!(on_disk as f64 / written.max(1) as f64),
    );
    Ok(Row {
        group: Group::Store,
        key: "store.append",
        label: "b store: SledStore::append".into(),
        durability: mode.to_string(),
        clients,
        batch: Some(batch as u64),
        sample,
        extra,
    })
}
