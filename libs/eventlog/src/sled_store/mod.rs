//! `SledStore`: the embedded log on one sled database.
//!
//! Writes go through one writer thread with group commit (`writer`); reads go
//! straight to sled but never past the durable head, so a reader cannot see
//! an event before it is acknowledged, nor position N+1 before N.

mod chunk;
mod disk_sync;
pub(crate) mod keys;
mod writer;

pub use disk_sync::Durability;

use crate::codec;
use crate::error::{StoreError, StoreResult};
use crate::event::{Clock, HASH_LEN, ProposedEvent, RecordedEvent, SystemClock};
use crate::limits::Limits;
use crate::names;
use crate::store::{
    AllSlice, AppendResult, Direction, EventFilter, EventStore, EventSubscription, ExpectedVersion,
    LogHead, StreamAppend, StreamSlice, SubscribeFrom, SubscriptionItem, VerifyProblem,
    VerifyReport,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;
use writer::{Job, Writer};

/// How to open a [`SledStore`].
#[derive(Clone)]
pub struct SledConfig {
    /// Directory of the sled database (created when missing).
    pub path: PathBuf,
    /// When an append is acknowledged.
    pub durability: Durability,
    /// Size limits of appends.
    pub limits: Limits,
    /// sled's page cache, in bytes.
    pub cache_capacity_bytes: u64,
    /// Source of `recorded_at`.
    pub clock: Arc<dyn Clock>,
    /// Most events one group commit takes.
    pub max_group_events: usize,
    /// Requests that may wait for the writer before appenders are held back.
    pub queue_capacity: usize,
    /// Events a subscription buffers for a slow consumer.
    pub subscription_buffer: usize,
}

impl SledConfig {
    /// Defaults: `fsync` durability, default limits, 512 MiB cache.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Fsync,
            limits: Limits::default(),
            cache_capacity_bytes: 512 * 1024 * 1024,
            clock: Arc::new(SystemClock),
            max_group_events: 20_000,
            queue_capacity: 16_384,
            subscription_buffer: 512,
        }
    }

    /// The same config with another durability mode.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The same config with another clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same config with other limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

impl std::fmt::Debug for SledConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledConfig")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

struct Inner {
    tree: sled::Tree,
    limits: Limits,
    jobs: mpsc::Sender<Job>,
    head: watch::Receiver<LogHead>,
    subscription_buffer: usize,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The embedded event log. Cheap to clone; clones share one database.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

/// Events read per page by scans and subscriptions.
const PAGE: usize = 256;

impl SledStore {
    /// Opens (or creates) the log at `config.path` and starts its writer.
    pub fn open(config: SledConfig) -> StoreResult<Self> {
        std::fs::create_dir_all(&config.path)?;
        let db = sled::Config::new()
            .path(&config.path)
            .cache_capacity(config.cache_capacity_bytes)
            .open()?;
        let tree = db.open_tree("log")?;
        let head = match tree.scan_prefix([keys::CHUNK]).next_back() {
            None => LogHead::default(),
            Some(entry) => {
                let (k, v) = entry?;
                let first = keys::trailing_u64(&k).ok_or_else(|| StoreError::Corrupt {
                    position: 0,
                    reason: "malformed chunk key".into(),
                })?;
                let last = chunk::Records::new(first, &v).last().ok_or_else(|| {
                    StoreError::Corrupt {
                        position: first,
                        reason: "empty chunk".into(),
                    }
                })??;
                LogHead {
                    next_position: last.global_position + 1,
                    last_hash: last.hash,
                }
            }
        };
        let syncer = match config.durability {
            Durability::Fsync => Some(disk_sync::DiskSyncer::open(&config.path)?),
            _ => None,
        };
        let (head_tx, head_rx) = watch::channel(head);
        let (jobs, rx) = mpsc::channel(config.queue_capacity.max(1));
        let writer = Writer {
            tree: tree.clone(),
            db,
            durability: config.durability,
            syncer,
            clock: config.clock.clone(),
            head,
            head_tx,
            max_group_events: config.max_group_events.max(1),
        };
        let thread = std::thread::Builder::new()
            .name("kizuna-log-writer".into())
            .spawn(move || writer.run(rx))?;
        tracing::info!(
            path = %config.path.display(),
            durability = %config.durability,
            next_position = head.next_position,
            "event log opened"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                tree,
                limits: config.limits,
                jobs,
                head: head_rx,
                subscription_buffer: config.subscription_buffer.max(1),
                writer_thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The limits this store enforces.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Stops taking appends, waits for queued ones, flushes and syncs. Later
    /// appends fail with [`StoreError::Closed`]; reads keep working.
    pub async fn shutdown(&self) -> StoreResult<()> {
        let (reply, rx) = oneshot::channel();
        if self.inner.jobs.send(Job::Shutdown { reply }).await.is_err() {
            return Ok(());
        }
        let result = rx.await.map_err(|_| StoreError::Closed)?;
        let thread = self
            .inner
            .writer_thread
            .lock()
            .ok()
            .and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        result
    }

    async fn submit(&self, appends: Vec<StreamAppend>) -> StoreResult<Vec<AppendResult>> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Append { appends, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// The chunk holding `position`: its first position and bytes.
fn chunk_containing(tree: &sled::Tree, position: u64) -> StoreResult<Option<(u64, sled::IVec)>> {
    match tree
        .range(keys::chunk(0)..=keys::chunk(position))
        .next_back()
    {
        None => Ok(None),
        Some(entry) => {
            let (k, v) = entry?;
            let first = keys::trailing_u64(&k).ok_or_else(|| StoreError::Corrupt {
                position,
                reason: "malformed chunk key".into(),
            })?;
            Ok(Some((first, v)))
        }
    }
}

fn missing(position: u64) -> StoreError {
    StoreError::Corrupt {
        position,
        reason: "an index points to a missing event".into(),
    }
}

/// Reads `count` events at consecutive positions from `start`.
fn events_at(tree: &sled::Tree, start: u64, count: u64) -> StoreResult<Vec<RecordedEvent>> {
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(PAGE));
    let end = start + count;
    let mut position = start;
    while position < end {
        let (first, bytes) = chunk_containing(tree, position)?.ok_or_else(|| missing(position))?;
        let mut records = chunk::Records::new(first, &bytes);
        records.skip_to(position)?;
        let before = position;
        for event in records.by_ref() {
            out.push(event?);
            position += 1;
            if position == end {
                break;
            }
        }
        if position == before {
            return Err(missing(position));
        }
    }
    Ok(out)
}

/// The event at `position`.
pub(crate) fn event_at(tree: &sled::Tree, position: u64) -> StoreResult<RecordedEvent> {
    events_at(tree, position, 1)?
        .pop()
        .ok_or_else(|| missing(position))
}

fn parse_run(
    stream: &str,
    entry: sled::Result<(sled::IVec, sled::IVec)>,
) -> StoreResult<keys::Run> {
    let (k, v) = entry?;
    keys::Run::parse(&k, &v).ok_or_else(|| StoreError::Corrupt {
        position: keys::trailing_u64(&v).unwrap_or(0),
        reason: format!("malformed stream index entry of {stream}"),
    })
}

/// The last run of `stream` whose events are below `durable`.
pub(crate) fn last_run(
    tree: &sled::Tree,
    stream: &str,
    durable: u64,
) -> StoreResult<Option<keys::Run>> {
    let prefix = keys::named_prefix(keys::STREAM, stream);
    // Commands load streams that do not exist yet (a new lead, a new
    // ticket) all the time. Every stream's first run starts at version 0, so
    // a point lookup of that key answers "no such stream" at the cost of one
    // descent, where sled's reverse range seek costs several.
    if !tree.contains_key(keys::with_u64(&prefix, 0))? {
        return Ok(None);
    }
    for entry in tree.scan_prefix(prefix).rev() {
        let run = parse_run(stream, entry)?;
        if run.first_position < durable {
            return Ok(Some(run));
        }
    }
    Ok(None)
}

impl Inner {
    fn durable_next(&self) -> u64 {
        self.head.borrow().next_position
    }

    fn read_event(&self, id: &Uuid) -> StoreResult<Option<RecordedEvent>> {
        let Some(v) = self.tree.get(keys::event_id(id))? else {
            return Ok(None);
        };
        let position = keys::trailing_u64(&v).ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: format!("event-id index entry of {id} is malformed"),
        })?;
        // The index is written in the same batch as the event, but a reader
        // must not see an event before it is durable.
        if position >= self.durable_next() {
            return Ok(None);
        }
        event_at(&self.tree, position).map(Some)
    }

    fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from_version: Option<u64>,
        limit: usize,
    ) -> StoreResult<StreamSlice> {
        names::validate_stream_name(stream).map_err(|r| StoreError::invalid("stream", r))?;
        let durable = self.durable_next();
        let Some(last) = last_run(&self.tree, stream, durable)?.map(|r| r.last_version()) else {
            return Ok(StreamSlice {
                events: Vec::new(),
                last_version: None,
            });
        };
        let prefix = keys::named_prefix(keys::STREAM, stream);
        let mut events = Vec::with_capacity(limit.min(PAGE));
        let limit = limit as u64;
        let mut take = |run: keys::Run, from: u64, to: u64| -> StoreResult<()> {
            // Versions from..=to of `run`, ascending.
            let start = run.first_position + (from - run.first_version);
            let mut got = events_at(&self.tree, start, to - from + 1)?;
            for (event, version) in got.iter().zip(from..) {
                if event.stream != stream || event.stream_version != version {
                    return Err(StoreError::Corrupt {
                        position: event.global_position,
                        reason: format!(
                            "stream index says {stream}@{version}, the event disagrees"
                        ),
                    });
                }
            }
            if direction == Direction::Backward {
                got.reverse();
            }
            events.extend(got);
            Ok(())
        };
        match direction {
            Direction::Forward => {
                let from = from_version.unwrap_or(0);
                // The run holding `from` starts at or before it.
                let first_key = match self
                    .tree
                    .range(keys::with_u64(&prefix, 0)..=keys::with_u64(&prefix, from))
                    .next_back()
                {
                    Some(entry) => parse_run(stream, entry)?.first_version,
                    None => from,
                };
                let mut wanted = limit;
                let mut version = from;
                if first_key > last {
                    wanted = 0;
                }
                for entry in self
                    .tree
                    .range(keys::with_u64(&prefix, first_key)..=keys::with_u64(&prefix, last))
                {
                    if wanted == 0 {
                        break;
                    }
                    let run = parse_run(stream, entry)?;
                    if run.first_position >= durable || version > last {
                        break;
                    }
                    if run.last_version() < version {
                        continue;
                    }
                    let from = version.max(run.first_version);
                    let to = run.last_version().min(from + wanted - 1);
                    take(run, from, to)?;
                    wanted -= to - from + 1;
                    version = to + 1;
                }
            }
            Direction::Backward => {
                let from = from_version.unwrap_or(last).min(last);
                let mut wanted = limit;
                for entry in self
                    .tree
                    .range(keys::with_u64(&prefix, 0)..=keys::with_u64(&prefix, from))
                    .rev()
                {
                    if wanted == 0 {
                        break;
                    }
                    let run = parse_run(stream, entry)?;
                    if run.first_position >= durable {
                        continue;
                    }
                    let to = run.last_version().min(from);
                    let low = run.first_version.max((to + 1).saturating_sub(wanted));
                    take(run, low, to)?;
                    wanted -= to - low + 1;
                }
            }
        }
        Ok(StreamSlice {
            events,
            last_version: Some(last),
        })
    }

    /// Index prefixes that hold every event the filter can pass, or `None`
    /// when only a full scan will do.
    fn index_prefixes(filter: &EventFilter) -> Option<Vec<Vec<u8>>> {
        if let Some(c) = &filter.customer_id {
            return Some(vec![keys::customer_prefix(c)]);
        }
        let by_type = || {
            filter
                .event_types
                .iter()
                .map(|t| keys::named_prefix(keys::EVENT_TYPE, t))
                .collect()
        };
        let by_category = || {
            filter
                .categories
                .iter()
                .map(|c| keys::named_prefix(keys::CATEGORY, c))
                .collect()
        };
        match (filter.event_types.len(), filter.categories.len()) {
            (0, 0) => None,
            (0, _) => Some(by_category()),
            (_, 0) => Some(by_type()),
            (t, c) if t <= c => Some(by_type()),
            _ => Some(by_category()),
        }
    }

    fn read_all(&self, from: u64, filter: &EventFilter, limit: usize) -> StoreResult<AllSlice> {
        filter.validate()?;
        self.read_range(from, self.durable_next(), filter, limit)
    }

    /// Reads events in positions `from..durable` (the caller makes sure
    /// `durable` is not past the durable head).
    fn read_range(
        &self,
        from: u64,
        durable: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> StoreResult<AllSlice> {
        let mut events = Vec::with_capacity(limit.min(PAGE));
        if from >= durable || limit == 0 {
            return Ok(AllSlice {
                events,
                next_position: from,
            });
        }
        // Chunks (and per-chunk index entries) are keyed by their first
        // position, which may lie before `from`.
        let start = chunk_containing(&self.tree, from)?.map_or(from, |(first, _)| first);
        let full = |events: Vec<RecordedEvent>, last: u64| AllSlice {
            events,
            next_position: last + 1,
        };
        match Self::index_prefixes(filter) {
            None => {
                for entry in self.tree.range(keys::chunk(start)..keys::chunk(durable)) {
                    let (k, v) = entry?;
                    let first = keys::trailing_u64(&k).unwrap_or(0);
                    let mut records = chunk::Records::new(first, &v);
                    records.skip_to(from)?;
                    for event in records {
                        let event = event?;
                        if filter.matches(&event) {
                            let position = event.global_position;
                            events.push(event);
                            if events.len() == limit {
                                return Ok(full(events, position));
                            }
                        }
                    }
                }
            }
            Some(prefixes) => {
                let mut iters: Vec<_> = prefixes
                    .iter()
                    .map(|p| {
                        self.tree
                            .range(keys::with_u64(p, start)..keys::with_u64(p, durable))
                            .peekable()
                    })
                    .collect();
                loop {
                    // Merge the index runs by chunk; k is small.
                    let mut chunk_first: Option<u64> = None;
                    for it in &mut iters {
                        match it.peek() {
                            Some(Ok((k, _))) => {
                                let c = keys::trailing_u64(k).unwrap_or(u64::MAX);
                                chunk_first = Some(chunk_first.map_or(c, |b| b.min(c)));
                            }
                            Some(Err(_)) => {
                                if let Some(Err(e)) = it.next() {
                                    return Err(e.into());
                                }
                            }
                            None => {}
                        }
                    }
                    let Some(first) = chunk_first else { break };
                    let mut offsets = Vec::new();
                    for it in &mut iters {
                        if let Some(Ok((_, v))) = it.next_if(
                            |e| matches!(e, Ok((k, _)) if keys::trailing_u64(k) == Some(first)),
                        ) {
                            offsets.extend(keys::decode_offsets(&v).ok_or_else(|| {
                                StoreError::Corrupt {
                                    position: first,
                                    reason: "malformed index entry".into(),
                                }
                            })?);
                        }
                    }
                    offsets.sort_unstable();
                    offsets.dedup();
                    let bytes = self
                        .tree
                        .get(keys::chunk(first))?
                        .ok_or_else(|| missing(first))?;
                    let mut records = chunk::Records::new(first, &bytes);
                    for offset in offsets {
                        let position = first + u64::from(offset);
                        if position < from {
                            continue;
                        }
                        records.skip_to(position)?;
                        let event = records.next().ok_or_else(|| missing(position))??;
                        if filter.matches(&event) {
                            events.push(event);
                            if events.len() == limit {
                                return Ok(full(events, position));
                            }
                        }
                    }
                }
            }
        }
        Ok(AllSlice {
            events,
            next_position: durable,
        })
    }

    fn verify(&self) -> StoreResult<VerifyReport> {
        let durable = self.durable_next();
        let mut report = VerifyReport::default();
        let mut expected = 0u64;
        // `None` after a record that could not be read: its successor's link
        // cannot be checked.
        let mut prev_hash = Some([0u8; HASH_LEN]);
        let note_break = |report: &mut VerifyReport, position: u64, description: String| {
            report.first_break.get_or_insert(VerifyProblem {
                position,
                description,
            });
        };
        for entry in self.tree.range(keys::chunk(0)..keys::chunk(durable)) {
            let (k, v) = entry?;
            let Some(first) = keys::trailing_u64(&k).filter(|_| k.len() == 9) else {
                note_break(&mut report, expected, "malformed chunk key".into());
                continue;
            };
            if first != expected {
                report.gaps.push(VerifyProblem {
                    position: expected,
                    description: format!(
                        "gap: positions {expected}..{} missing",
                        first.saturating_sub(1)
                    ),
                });
                prev_hash = None;
            }
            let mut records = chunk::Records::new(first, &v);
            loop {
                let position = records.next_position();
                let Some(raw) = records.next_raw() else { break };
                let decoded = raw.and_then(|(position, bytes)| codec::decode(position, bytes));
                report.events_checked += 1;
                match decoded {
                    Err(e) => {
                        prev_hash = None;
                        note_break(&mut report, position, e.to_string());
                    }
                    Ok(event) => {
                        if codec::event_hash(&event) != event.hash {
                            note_break(
                                &mut report,
                                position,
                                "hash mismatch: the event's content differs from what was hashed"
                                    .into(),
                            );
                        } else if prev_hash.is_some_and(|p| p != event.prev_hash) {
                            note_break(
                                &mut report,
                                position,
                                format!(
                                    "chain broken: prev_hash differs from the hash of position {}",
                                    position.saturating_sub(1)
                                ),
                            );
                        }
                        prev_hash = Some(event.hash);
                    }
                }
            }
            expected = records.next_position();
        }
        if expected < durable {
            report.gaps.push(VerifyProblem {
                position: expected,
                description: format!("gap: positions {expected}..{} missing", durable - 1),
            });
        }
        Ok(report)
    }
}

async fn run_subscription(
    inner: Arc<Inner>,
    mut position: u64,
    filter: EventFilter,
    tx: mpsc::Sender<StoreResult<SubscriptionItem>>,
) {
    let mut head = inner.head.clone();
    let mut caught_up = false;
    loop {
        let durable = head.borrow_and_update().next_position;
        if position < durable {
            // The filter was validated once, when the subscription was made.
            match inner.read_range(position, durable, &filter, PAGE) {
                Ok(slice) => {
                    position = slice.next_position;
                    for event in slice.events {
                        if tx.send(Ok(SubscriptionItem::Event(event))).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    // Deliver what precedes a damaged event, then the error.
                    if let StoreError::Corrupt { position: bad, .. } = &e
                        && let Ok(slice) = inner.read_range(position, *bad, &filter, usize::MAX)
                    {
                        for event in slice.events {
                            if tx.send(Ok(SubscriptionItem::Event(event))).await.is_err() {
                                return;
                            }
                        }
                    }
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
            continue;
        }
        if !caught_up {
            caught_up = true;
            let item = SubscriptionItem::CaughtUp {
                next_position: position,
            };
            if tx.send(Ok(item)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() {
                // The store is gone: nothing more will come.
                return;
            },
            () = tx.closed() => return,
        }
    }
}

#[async_trait::async_trait]
impl EventStore for SledStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> StoreResult<AppendResult> {
        let appends = vec![StreamAppend {
            stream: stream.to_owned(),
            expected,
            events,
        }];
        self.inner.limits.check(&appends, false)?;
        self.submit(appends)
            .await?
            .pop()
            .ok_or_else(|| StoreError::Storage("the writer returned no result".into()))
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> StoreResult<Vec<AppendResult>> {
        self.inner.limits.check(&appends, true)?;
        self.submit(appends).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from_version: Option<u64>,
        limit: usize,
    ) -> StoreResult<StreamSlice> {
        self.inner
            .read_stream(stream, direction, from_version, limit)
    }

    async fn read_all(
        &self,
        from_position: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> StoreResult<AllSlice> {
        self.inner.read_all(from_position, filter, limit)
    }

    async fn read_event(&self, event_id: Uuid) -> StoreResult<Option<RecordedEvent>> {
        self.inner.read_event(&event_id)
    }

    async fn head(&self) -> StoreResult<LogHead> {
        Ok(*self.inner.head.borrow())
    }

    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> StoreResult<EventSubscription> {
        filter.validate()?;
        let start = match from {
            SubscribeFrom::Position(p) => p,
            SubscribeFrom::Now => self.inner.durable_next(),
        };
        let (tx, rx) = mpsc::channel(self.inner.subscription_buffer);
        tokio::spawn(run_subscription(self.inner.clone(), start, filter, tx));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn verify(&self) -> StoreResult<VerifyReport> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.verify())
            .await
            .map_err(|e| StoreError::Storage(format!("verify task failed: {e}")))?
    }
}
