//! kizuna-bench: the event log measured against its own ceilings, in one run.
//!
//! On a shared 2-core machine an absolute events/s figure says little; a ratio
//! to a baseline measured minutes apart in the same process, on the same disk,
//! with the same payload and concurrency, says a lot. So each kizuna workload
//! runs next to the limit it cannot beat: raw sled with the same sync policy
//! (the disk limit) and a tonic echo service with the same message sizes (the
//! RPC limit). See README.md for what each row means.
#![forbid(unsafe_code)]

mod fixture;
mod groups;
mod measure;
mod report;

/// The echo service of the RPC-limit baseline, generated from proto/echo.proto.
mod echo {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("kizuna.bench.v1");
}

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use groups::Ctx;
use measure::Budget;
use report::Report;
use serde_json::{Map, json};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Groups of workloads; they always run in this order, baselines first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Which {
    /// Every group below.
    All,
    /// (a) raw sled batches: the disk limit.
    Disk,
    /// (b) SledStore::append in process.
    Store,
    /// (c) tonic echo: the RPC limit.
    Rpc,
    /// (d) gRPC Append over a SledStore.
    Grpc,
    /// (e) fill the log, then read it all in process and over gRPC.
    Replay,
    /// (f) CaptureLead over gRPC against raw Append of the same event size.
    Commands,
    /// (g) RecordPurchase over gRPC against raw Append of the same two events.
    Purchases,
}

/// Measures kizuna's event log against the disk and RPC limits and prints a
/// table plus one JSON line per workload.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Groups to run (several allowed); ratios need their baseline group in the
    /// same run, which `all` guarantees.
    #[arg(value_enum, default_value = "all")]
    groups: Vec<Which>,
    /// Short smoke run (under a minute): 0.8 s per workload, small caps,
    /// 100,000-event replay.
    #[arg(long)]
    quick: bool,
    /// Most events per workload; a workload stops at this or at
    /// --duration-secs, whichever comes first [default: 1000000, quick: 100000].
    #[arg(long)]
    events: Option<u64>,
    /// Measured seconds per workload [default: 5, quick: 0.8].
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Unmeasured warm-up seconds before each workload [default: 0.5, quick: 0.1].
    #[arg(long)]
    warmup_secs: Option<f64>,
    /// Payload bytes of every event.
    #[arg(long, default_value_t = 256)]
    payload_bytes: usize,
    /// Events in the log before the replay [default: 1000000, quick: 100000].
    #[arg(long)]
    replay_events: Option<u64>,
    /// Directory for the temporary data directories; must be a real disk
    /// (not tmpfs), or the sync modes measure nothing.
    #[arg(long, default_value = "target/bench-tmp")]
    dir: PathBuf,
    /// Where the JSON lines go (truncated at start).
    #[arg(long, default_value = "bench-results/latest.jsonl")]
    json_out: PathBuf,
    /// TCP connections the RPC clients share (clients are spread round-robin);
    /// the echo and gRPC workloads use the same number.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// sled page cache of every database in MiB [default: SledConfig's].
    #[arg(long)]
    sled_cache_mib: Option<u64>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let budget = Budget {
        warmup: secs(cli.warmup_secs.unwrap_or(if cli.quick { 0.1 } else { 0.5 }))?,
        duration: secs(
            cli.duration_secs
                .unwrap_or(if cli.quick { 0.8 } else { 5.0 }),
        )?,
        max_events: cli
            .events
            .unwrap_or(if cli.quick { 100_000 } else { 1_000_000 }),
    };
    let replay_events = cli
        .replay_events
        .unwrap_or(if cli.quick { 100_000 } else { 1_000_000 });
    let run = |w: Which| cli.groups.contains(&Which::All) || cli.groups.contains(&w);

    std::fs::create_dir_all(&cli.dir).with_context(|| format!("creating {}", cli.dir.display()))?;
    let fs = fixture::fs_type(&cli.dir).unwrap_or_else(|| "unknown".into());
    if matches!(fs.as_str(), "tmpfs" | "ramfs") {
        eprintln!(
            "WARNING: {} is on {fs}: fsync and flush cost nothing there; use --dir on a real disk",
            cli.dir.display()
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let payload = fixture::payload(cli.payload_bytes);
    let sizes = rt.block_on(fixture::measure_sizes(&cli.dir, &payload))?;
    let ctx = Ctx {
        budget,
        base: cli.dir.clone(),
        payload,
        sizes,
        replay_events,
        connections: cli.connections.max(1),
        cache_bytes: cli.sled_cache_mib.map_or_else(
            || kizuna_eventlog::SledConfig::new("").cache_capacity_bytes,
            |mib| mib * 1024 * 1024,
        ),
    };

    let started = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mut settings = Map::new();
    settings.insert("started_unix".into(), json!(started));
    settings.insert("cores".into(), json!(cores));
    settings.insert("dir".into(), json!(cli.dir.display().to_string()));
    settings.insert("fs".into(), json!(fs));
    settings.insert("quick".into(), json!(cli.quick));
    settings.insert("payload_bytes".into(), json!(cli.payload_bytes));
    settings.insert("duration_secs".into(), json!(budget.duration.as_secs_f64()));
    settings.insert("warmup_secs".into(), json!(budget.warmup.as_secs_f64()));
    settings.insert("max_events".into(), json!(budget.max_events));
    settings.insert("connections".into(), json!(ctx.connections));
    settings.insert("sled_cache_bytes".into(), json!(ctx.cache_bytes));
    settings.insert("stored_event_bytes".into(), json!(sizes.stored_event));
    settings.insert(
        "sled_entries_per_append".into(),
        json!(sizes.entries_per_append),
    );
    settings.insert(
        "sled_bytes_per_append".into(),
        json!(sizes.bytes_per_append),
    );
    settings.insert("append_request_bytes".into(), json!(sizes.append_request));
    settings.insert("append_response_bytes".into(), json!(sizes.append_response));
    let mut report = Report::new(&cli.json_out, settings)?;

    eprintln!(
        "kizuna-bench: {cores} cores, data in {} ({fs}); payload {} B, stored event {} B, \
         {} sled entries / {} B per single-event append; AppendRequest {} B, AppendResponse {} B",
        cli.dir.display(),
        cli.payload_bytes,
        sizes.stored_event,
        sizes.entries_per_append,
        sizes.bytes_per_append,
        sizes.append_request,
        sizes.append_response,
    );
    let t0 = std::time::Instant::now();
    if run(Which::Disk) {
        groups::disk::run(&ctx, &mut report)?;
    }
    rt.block_on(async {
        if run(Which::Store) {
            groups::store::run(&ctx, &mut report).await?;
        }
        if run(Which::Rpc) {
            groups::rpc::run(&ctx, &mut report).await?;
        }
        if run(Which::Grpc) {
            groups::grpc::run(&ctx, &mut report).await?;
        }
        if run(Which::Replay) {
            groups::replay::run(&ctx, &mut report).await?;
        }
        if run(Which::Commands) {
            groups::commands::run(&ctx, &mut report).await?;
        }
        if run(Which::Purchases) {
            groups::purchases::run(&ctx, &mut report).await?;
        }
        anyhow::Ok(())
    })?;

    println!();
    println!(
        "kizuna-bench: {cores} cores, data dir {} ({fs}), payload {} B (stored event {} B; \
         a single-event append writes {} sled entries, {} B; AppendRequest {} B), \
         {} s per workload after {} s warm-up, at most {} events each, \
         {} connection(s) for RPC clients; took {:.0} s",
        cli.dir.display(),
        cli.payload_bytes,
        sizes.stored_event,
        sizes.entries_per_append,
        sizes.bytes_per_append,
        sizes.append_request,
        budget.duration.as_secs_f64(),
        budget.warmup.as_secs_f64(),
        report::thousands(budget.max_events as f64),
        ctx.connections,
        t0.elapsed().as_secs_f64(),
    );
    println!();
    report.print_table();
    eprintln!("JSON lines: {}", cli.json_out.display());
    Ok(())
}

fn secs(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).context("seconds must be a non-negative number")
}
