//! The single writer: group commit.
//!
//! Every append goes through one OS thread. It takes the first waiting
//! request, then every other request already queued (up to a size cap), checks
//! them one by one against the log as it will be after the requests before
//! them, writes all accepted events with their index entries in one atomic
//! `sled::Batch`, makes that durable once, publishes the new head and only then
//! answers. One writer makes positions gap-free and commit order equal position
//! order without locks; the group shares one disk sync, which is what bounds
//! throughput.

use super::disk_sync::{DiskSyncer, Durability};
use super::{chunk, keys};
use crate::codec;
use crate::error::{StoreError, StoreResult};
use crate::event::{Clock, HASH_LEN, RecordedEvent};
use crate::store::{AppendResult, LogHead, StreamAppend};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

/// A message to the writer.
pub(crate) enum Job {
    Append {
        appends: Vec<StreamAppend>,
        reply: oneshot::Sender<StoreResult<Vec<AppendResult>>>,
    },
    /// Flush, sync and stop taking appends.
    Shutdown {
        reply: oneshot::Sender<StoreResult<()>>,
    },
}

pub(crate) struct Writer {
    pub(crate) tree: sled::Tree,
    pub(crate) db: sled::Db,
    pub(crate) durability: Durability,
    pub(crate) syncer: Option<DiskSyncer>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) head: LogHead,
    pub(crate) head_tx: watch::Sender<LogHead>,
    /// Most events taken into one group.
    pub(crate) max_group_events: usize,
}

/// The log as it will be once the group being built is written.
#[derive(Default)]
struct Pending {
    /// New events in position order, with their stored bytes.
    events: Vec<(RecordedEvent, Vec<u8>)>,
    /// New stream runs, one per stream per accepted request.
    runs: Vec<(String, keys::Run)>,
    stream_heads: HashMap<String, u64>,
    /// Index into `events` by event id, for retries within the group.
    by_id: HashMap<Uuid, usize>,
}

impl Pending {
    /// One atomic batch: events in chunks, runs, ids, and per-chunk indexes.
    fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (stream, run) in &self.runs {
            batch.insert(
                keys::with_u64(&keys::named_prefix(keys::STREAM, stream), run.first_version),
                &run.value(),
            );
        }
        let mut events = self.events.iter().peekable();
        while let Some((first, _)) = events.peek() {
            let chunk_first = first.global_position;
            let mut chunk = Vec::new();
            let mut by_type: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
            let mut by_category: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
            let mut by_customer: BTreeMap<Uuid, Vec<u32>> = BTreeMap::new();
            let mut offset = 0u32;
            while let Some((event, record)) = events.next_if(|_| {
                (offset as usize) < chunk::MAX_EVENTS && chunk.len() < chunk::MAX_BYTES
            }) {
                chunk::push_record(&mut chunk, record);
                batch.insert(
                    &keys::event_id(&event.event_id),
                    &event.global_position.to_be_bytes(),
                );
                by_type.entry(&event.event_type).or_default().push(offset);
                by_category
                    .entry(event.category())
                    .or_default()
                    .push(offset);
                if let Some(c) = event.customer_id {
                    by_customer.entry(c).or_default().push(offset);
                }
                offset += 1;
            }
            batch.insert(&keys::chunk(chunk_first), chunk);
            for (t, offsets) in by_type {
                batch.insert(
                    keys::with_u64(&keys::named_prefix(keys::EVENT_TYPE, t), chunk_first),
                    keys::encode_offsets(&offsets),
                );
            }
            for (c, offsets) in by_category {
                batch.insert(
                    keys::with_u64(&keys::named_prefix(keys::CATEGORY, c), chunk_first),
                    keys::encode_offsets(&offsets),
                );
            }
            for (c, offsets) in by_customer {
                batch.insert(
                    keys::with_u64(&keys::customer_prefix(&c), chunk_first),
                    keys::encode_offsets(&offsets),
                );
            }
        }
        batch
    }
}

type Reply = oneshot::Sender<StoreResult<Vec<AppendResult>>>;

impl Writer {
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut failure: Option<String> = None;
        while let Some(job) = rx.blocking_recv() {
            let mut group = Vec::new();
            let mut events = 0;
            let mut shutdown = None;
            let mut next = Some(job);
            while let Some(job) = next.take() {
                match job {
                    Job::Append { appends, reply } => {
                        events += appends.iter().map(|a| a.events.len()).sum::<usize>();
                        group.push((appends, reply));
                    }
                    Job::Shutdown { reply } => {
                        shutdown = Some(reply);
                        break;
                    }
                }
                if events < self.max_group_events {
                    next = rx.try_recv().ok();
                }
            }
            if let Some(reason) = &failure {
                for (_, reply) in group {
                    let _ = reply.send(Err(StoreError::Storage(format!(
                        "the writer stopped after an earlier failure ({reason}); restart the store"
                    ))));
                }
            } else if !group.is_empty()
                && let Err(e) = self.commit_group(group)
            {
                tracing::error!(error = %e, "event log write failed; refusing further appends");
                failure = Some(e.to_string());
            }
            if let Some(reply) = shutdown {
                let result = self.sync_all();
                let _ = reply.send(result);
                rx.close();
            }
        }
        if let Err(e) = self.sync_all() {
            tracing::error!(error = %e, "final flush of the event log failed");
        }
    }

    fn sync_all(&mut self) -> StoreResult<()> {
        self.db.flush()?;
        if let Some(s) = &mut self.syncer {
            s.sync()?;
        }
        Ok(())
    }

    /// Writes one group. An `Err` is a storage failure after which the
    /// in-memory head may disagree with the disk: the caller stops the writer.
    fn commit_group(&mut self, group: Vec<(Vec<StreamAppend>, Reply)>) -> StoreResult<()> {
        let started = Instant::now();
        let before = self.head;
        let mut pending = Pending::default();
        let mut answers: Vec<(Reply, StoreResult<Vec<AppendResult>>)> =
            Vec::with_capacity(group.len());
        let mut new_events = 0u64;
        for (appends, reply) in group {
            let result = self.prepare(&appends, &mut pending);
            if let Ok(results) = &result {
                new_events += results
                    .iter()
                    .filter(|r| !r.already_existed)
                    .map(|r| r.last_version - r.first_version + 1)
                    .sum::<u64>();
            }
            answers.push((reply, result));
        }
        if new_events > 0 {
            let write = self
                .tree
                .apply_batch(pending.into_batch())
                .map_err(StoreError::from)
                .and_then(|()| self.make_durable());
            if let Err(e) = write {
                self.head = before;
                for (reply, result) in answers {
                    let _ = reply.send(result.and(Err(e.clone())));
                }
                return Err(e);
            }
            self.head_tx.send_replace(self.head);
        }
        tracing::debug!(
            requests = answers.len(),
            events = new_events,
            micros = started.elapsed().as_micros() as u64,
            "group committed"
        );
        for (reply, result) in answers {
            let _ = reply.send(result);
        }
        Ok(())
    }

    fn make_durable(&mut self) -> StoreResult<()> {
        match self.durability {
            Durability::None => Ok(()),
            Durability::Flush => self.db.flush().map(drop).map_err(Into::into),
            Durability::Fsync => self.sync_all(),
        }
    }

    fn existing(&self, id: &Uuid, pending: &Pending) -> StoreResult<Option<RecordedEvent>> {
        if let Some(i) = pending.by_id.get(id) {
            return Ok(pending.events.get(*i).map(|(e, _)| e.clone()));
        }
        match self.tree.get(keys::event_id(id))? {
            Some(v) => {
                let position = keys::trailing_u64(&v).ok_or_else(|| StoreError::Corrupt {
                    position: 0,
                    reason: format!("event-id index entry of {id} is malformed"),
                })?;
                super::event_at(&self.tree, position).map(Some)
            }
            None => Ok(None),
        }
    }

    fn stream_version(&self, stream: &str, pending: &Pending) -> StoreResult<Option<u64>> {
        if let Some(v) = pending.stream_heads.get(stream) {
            return Ok(Some(*v));
        }
        Ok(super::last_run(&self.tree, stream, u64::MAX)?.map(|r| r.last_version()))
    }

    /// Checks one request against the log plus `pending` and, when it is
    /// accepted and new, adds its events to `pending`.
    fn prepare(
        &mut self,
        appends: &[StreamAppend],
        pending: &mut Pending,
    ) -> StoreResult<Vec<AppendResult>> {
        if let Some(results) = self.idempotent_retry(appends, pending)? {
            return Ok(results);
        }
        let mut versions = Vec::with_capacity(appends.len());
        for a in appends {
            let actual = self.stream_version(&a.stream, pending)?;
            if !a.expected.admits(actual) {
                return Err(StoreError::WrongExpectedVersion {
                    stream: a.stream.clone(),
                    expected: a.expected,
                    actual,
                });
            }
            versions.push(actual.map_or(0, |v| v + 1));
        }
        let recorded_at = self.clock.now();
        let mut results = Vec::with_capacity(appends.len());
        for (a, first_version) in appends.iter().zip(versions) {
            let first_position = self.head.next_position;
            for (offset, proposed) in (0u64..).zip(&a.events) {
                let position = self.head.next_position;
                let mut event = RecordedEvent {
                    event_id: proposed.event_id,
                    stream: a.stream.clone(),
                    stream_version: first_version + offset,
                    global_position: position,
                    event_type: proposed.event_type.clone(),
                    schema_version: proposed.schema_version.max(1),
                    customer_id: proposed.customer_id,
                    occurred_at: proposed.occurred_at.unwrap_or(recorded_at),
                    recorded_at,
                    metadata: proposed.metadata.clone(),
                    payload: proposed.payload.clone(),
                    prev_hash: self.head.last_hash,
                    hash: [0; HASH_LEN],
                };
                let record = codec::seal(&mut event);
                self.head = LogHead {
                    next_position: position + 1,
                    last_hash: event.hash,
                };
                pending.by_id.insert(event.event_id, pending.events.len());
                pending.events.push((event, record));
            }
            let run = keys::Run {
                first_version,
                first_position,
                count: a.events.len() as u64,
            };
            let last_version = run.last_version();
            pending.runs.push((a.stream.clone(), run));
            pending.stream_heads.insert(a.stream.clone(), last_version);
            results.push(AppendResult {
                stream: a.stream.clone(),
                first_version,
                last_version,
                first_position,
                last_position: self.head.next_position - 1,
                already_existed: false,
            });
        }
        Ok(results)
    }

    /// `Some` when every event of the request is already stored with the same
    /// content: the original results, nothing to write. `None` when none is.
    fn idempotent_retry(
        &self,
        appends: &[StreamAppend],
        pending: &Pending,
    ) -> StoreResult<Option<Vec<AppendResult>>> {
        let mut results = Vec::with_capacity(appends.len());
        let mut found = 0usize;
        let mut missing = None;
        for a in appends {
            let mut stored = Vec::with_capacity(a.events.len());
            for proposed in &a.events {
                match self.existing(&proposed.event_id, pending)? {
                    Some(e) => {
                        if !e.matches(&a.stream, proposed) {
                            return Err(StoreError::EventIdConflict {
                                event_id: proposed.event_id,
                                reason: format!(
                                    "it is stored at position {} in stream {} with other content",
                                    e.global_position, e.stream
                                ),
                            });
                        }
                        found += 1;
                        stored.push(e);
                    }
                    None => missing = missing.or(Some(proposed.event_id)),
                }
            }
            if let (Some(first), Some(last)) = (stored.first(), stored.last()) {
                results.push(AppendResult {
                    stream: a.stream.clone(),
                    first_version: first.stream_version,
                    last_version: last.stream_version,
                    first_position: first.global_position,
                    last_position: last.global_position,
                    already_existed: true,
                });
            }
        }
        match (found, missing) {
            (0, _) => Ok(None),
            (_, None) => Ok(Some(results)),
            (_, Some(new_id)) => Err(StoreError::EventIdConflict {
                event_id: new_id,
                reason: "the append mixes events already stored with new ones; \
                         a retry must resend exactly the original append"
                    .into(),
            }),
        }
    }
}
