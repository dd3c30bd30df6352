//! Load drivers: run an operation in a loop, bounded by time and by count, and
//! record the latency of every call.
//!
//! Both drivers warm up first (connections made, caches and the sled log
//! segment touched) and record nothing then. The measured window starts at the
//! same instant for every client, so that events/s is total events over one
//! wall-clock window, not a sum of per-client rates. The event cap keeps the
//! fast modes (durability `none`) from writing gigabytes in the time a slow
//! mode needs for a few thousand appends.

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long and how much one workload runs.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Unrecorded run before the measured window.
    pub warmup: Duration,
    /// Longest measured window.
    pub duration: Duration,
    /// Most events in the measured window (the window ends early when reached).
    pub max_events: u64,
}

/// What one workload measured.
pub struct Sample {
    /// Events written (or read) in the window.
    pub events: u64,
    /// Calls made in the window (appends, batches, RPCs, pages).
    pub ops: u64,
    /// Length of the window: from its start to the last call's completion.
    pub elapsed: Duration,
    /// Latency of every call, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl Sample {
    pub fn events_per_sec(&self) -> f64 {
        rate(self.events, self.elapsed)
    }

    pub fn ops_per_sec(&self) -> f64 {
        rate(self.ops, self.elapsed)
    }
}

fn rate(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// A histogram of nanoseconds from 1 ns to 10 minutes at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `op` (which handles `events_per_op` events per call) on this thread.
pub fn run_blocking(
    budget: Budget,
    events_per_op: u64,
    mut op: impl FnMut() -> Result<()>,
) -> Result<Sample> {
    let start = Instant::now() + budget.warmup;
    let end = start + budget.duration;
    let mut sample = Sample {
        events: 0,
        ops: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
    };
    loop {
        let now = Instant::now();
        if now >= end || sample.events >= budget.max_events {
            break;
        }
        op()?;
        let done = Instant::now();
        if now >= start {
            sample.latency.saturating_record(nanos(done - now));
            sample.events += events_per_op;
            sample.ops += 1;
            sample.elapsed = done - start;
        }
    }
    Ok(sample)
}

/// Runs `clients` concurrent tokio tasks; task `i` calls the operation that
/// `make(i)` returns in a loop, one call in flight per task.
pub async fn run_concurrent<M, F, Fut>(
    budget: Budget,
    clients: usize,
    events_per_op: u64,
    mut make: M,
) -> Result<Sample>
where
    M: FnMut(usize) -> F,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let start = Instant::now() + budget.warmup;
    let end = start + budget.duration;
    let claimed = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let mut op = make(i);
        let claimed = claimed.clone();
        tasks.spawn(async move {
            let mut latency = histogram();
            let (mut events, mut ops, mut last) = (0u64, 0u64, None);
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let measured = now >= start;
                if measured
                    && claimed.fetch_add(events_per_op, Ordering::Relaxed) >= budget.max_events
                {
                    break;
                }
                op().await.with_context(|| format!("client {i}"))?;
                let done = Instant::now();
                if measured {
                    latency.saturating_record(nanos(done - now));
                    events += events_per_op;
                    ops += 1;
                    last = Some(done);
                }
            }
            anyhow::Ok((latency, events, ops, last))
        });
    }
    let mut sample = Sample {
        events: 0,
        ops: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
    };
    while let Some(joined) = tasks.join_next().await {
        let (latency, events, ops, last) = joined.context("a client task panicked")??;
        sample.latency.add(&latency).context("merging histograms")?;
        sample.events += events;
        sample.ops += ops;
        if let Some(last) = last {
            sample.elapsed = sample.elapsed.max(last - start);
        }
    }
    Ok(sample)
}

/// Runs `work` and returns its output with the cores this process kept busy
/// meanwhile: CPU seconds over wall seconds (`None` where the CPU time cannot
/// be read). Clients and server share the process in the gRPC groups, so
/// this is the CPU of both, over the warm-up and the measured window.
pub async fn with_cores_busy<T>(work: impl Future<Output = Result<T>>) -> Result<(T, Option<f64>)> {
    let cpu_before = process_cpu_seconds();
    let wall = Instant::now();
    let out = work.await?;
    let cores_busy = process_cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| (after - before) / wall.elapsed().as_secs_f64());
    Ok((out, cores_busy))
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`,
/// in clock ticks of 1/100 s); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
