//! (e) Replay: how fast a projection catching up from position 0 can read the
//! log. The log is filled first (durability `none`, 100-event batches from a
//! few concurrent appenders, which is itself reported as a row), then read to
//! the head in pages of 1000 in process, then once more through the gRPC
//! `ReadAll` stream. The reads run just after the fill, so most of the log is
//! still in sled's cache and the OS page cache: this is the warm rate.

use super::{Ctx, grpc, net};
use crate::fixture;
use crate::measure::{Budget, Sample, histogram, nanos};
use crate::report::{Group, Report, Row};
use anyhow::{Result, ensure};
use kizuna_eventlog::{Durability, EventFilter, EventStore, SledStore};
use kizuna_proto::v1::{ReadAllRequest, event_log_client::EventLogClient};
use serde_json::json;
use std::time::{Duration, Instant};

/// Events per `read_all` call in process.
const PAGE: usize = 1000;
/// Concurrent appenders filling the log.
const FILL_CLIENTS: usize = 4;
/// Events per append while filling.
const FILL_BATCH: usize = 100;

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir_in(&ctx.base)?;
    let store = SledStore::open(ctx.store_config(dir.path(), Durability::None))?;

    eprintln!("replay: filling the log with {} events", ctx.replay_events);
    let fill_budget = Budget {
        warmup: Duration::ZERO,
        duration: Duration::from_secs(3600),
        max_events: ctx.replay_events,
    };
    let fill =
        super::store::run_appenders(&store, fill_budget, FILL_CLIENTS, FILL_BATCH, &ctx.payload)
            .await?;
    let head = store.head().await?.next_position;
    let mut extra = serde_json::Map::new();
    extra.insert("log_events".into(), json!(head));
    extra.insert(
        "disk_bytes_per_event".into(),
        json!(fixture::disk_usage(dir.path()) as f64 / head.max(1) as f64),
    );
    report.push(Row {
        group: Group::Replay,
        key: "replay.fill",
        label: "e replay: fill (append)".into(),
        durability: Durability::None.to_string(),
        clients: FILL_CLIENTS,
        batch: Some(FILL_BATCH as u64),
        sample: fill,
        extra: extra.clone(),
    })?;

    eprintln!("replay: read_all in process, pages of {PAGE}");
    let sample = read_in_process(&store, head).await?;
    report.push(Row {
        group: Group::Replay,
        key: "replay.read_all",
        label: "e replay: read_all in process".into(),
        durability: Durability::None.to_string(),
        clients: 1,
        batch: Some(PAGE as u64),
        sample,
        extra: extra.clone(),
    })?;

    eprintln!("replay: ReadAll over gRPC");
    let server = grpc::serve(&store).await?;
    let sample = read_over_grpc(server.addr, head).await;
    server.stop().await?;
    report.push(Row {
        group: Group::Replay,
        key: "replay.grpc_read_all",
        label: "e replay: ReadAll over gRPC".into(),
        durability: Durability::None.to_string(),
        clients: 1,
        batch: None,
        sample: sample?,
        extra,
    })?;
    store.shutdown().await?;
    Ok(())
}

/// Pages through the whole log; latency is per page.
async fn read_in_process(store: &SledStore, head: u64) -> Result<Sample> {
    let filter = EventFilter::all();
    let mut latency = histogram();
    let (mut position, mut events, mut ops) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while position < head {
        let t = Instant::now();
        let slice = store.read_all(position, &filter, PAGE).await?;
        latency.saturating_record(nanos(t.elapsed()));
        ensure!(
            slice.next_position > position,
            "read_all made no progress at {position}"
        );
        events += slice.events.len() as u64;
        ops += 1;
        position = slice.next_position;
    }
    ensure!(events == head, "read {events} events, the head is {head}");
    Ok(Sample {
        events,
        ops,
        elapsed: start.elapsed(),
        latency,
    })
}

/// Streams the whole log in one `ReadAll`; latency is the wait for each chunk.
async fn read_over_grpc(addr: std::net::SocketAddr, head: u64) -> Result<Sample> {
    let channel = net::connect(addr, 1).await?.remove(0);
    let mut client = EventLogClient::new(channel)
        .max_decoding_message_size(kizuna_eventlog_grpc::MAX_MESSAGE_BYTES);
    let mut latency = histogram();
    let (mut events, mut ops) = (0u64, 0u64);
    let start = Instant::now();
    let mut stream = client
        .read_all(ReadAllRequest {
            from_position: 0,
            filter: None,
            limit: 0,
        })
        .await?
        .into_inner();
    let mut t = Instant::now();
    while let Some(chunk) = stream.message().await? {
        latency.saturating_record(nanos(t.elapsed()));
        events += chunk.events.len() as u64;
        ops += 1;
        t = Instant::now();
    }
    let elapsed = start.elapsed();
    ensure!(
        events == head,
        "streamed {events} events, the head is {head}"
    );
    Ok(Sample {
        events,
        ops,
        elapsed,
        latency,
    })
}
