//! What every workload appends, and the sizes the baselines copy from it.
//!
//! The baselines are only a ceiling for kizuna if they move the same bytes: the
//! raw sled baseline writes values as long as a stored event, and the echo
//! baseline sends requests as long as an encoded `AppendRequest`. Those lengths
//! are measured here from the real encoders, not guessed, so they follow any
//! change of the envelope or of the codec.

use anyhow::{Context, Result, bail};
use kizuna_eventlog::{Durability, EventStore, ExpectedVersion, SledConfig, SledStore};
use kizuna_proto::v1 as pb;
use prost::Message;
use prost::bytes::Bytes;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Event type of every benchmark event.
pub const EVENT_TYPE: &str = "bench.appended";

/// The stream of client `i`: one stream per client, all of the same length so
/// that every client's request has the same size.
pub fn stream_name(i: usize) -> String {
    format!("bench-{i:04}")
}

/// A payload of `len` bytes that does not compress to nothing.
pub fn payload(len: usize) -> Bytes {
    (0..len)
        .map(|i| u8::try_from((i * 31 + 7) % 251).unwrap_or(0))
        .collect::<Vec<u8>>()
        .into()
}

/// `n` new events with fresh UUIDv7 ids, as a service would append them.
pub fn events(n: usize, payload: &Bytes) -> Vec<kizuna_eventlog::ProposedEvent> {
    (0..n)
        .map(|_| kizuna_eventlog::ProposedEvent::new(EVENT_TYPE, payload.clone()))
        .collect()
}

/// The gRPC request appending one new event to `stream`.
pub fn append_request(stream: &str, payload: &Bytes) -> pb::AppendRequest {
    pb::AppendRequest {
        stream: stream.to_owned(),
        expected_version: None,
        events: vec![pb::ProposedEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: EVENT_TYPE.to_owned(),
            schema_version: 1,
            payload: payload.to_vec(),
            ..Default::default()
        }],
    }
}

/// Byte lengths that the baselines reproduce.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// A stored event: sled value under the event key (checksum + protobuf).
    pub stored_event: usize,
    /// sled entries one single-event append writes (event plus indexes).
    pub entries_per_append: usize,
    /// Keys plus values of those entries.
    pub bytes_per_append: usize,
    /// An encoded `AppendRequest` carrying one event.
    pub append_request: usize,
    /// An encoded `AppendResponse`.
    pub append_response: usize,
}

/// Appends one event to a scratch `SledStore` and reads back what it stored.
pub async fn measure_sizes(base: &Path, payload: &Bytes) -> Result<Sizes> {
    let dir = tempfile::tempdir_in(base)?;
    let store = SledStore::open(SledConfig::new(dir.path()).durability(Durability::None))?;
    store
        .append(&stream_name(0), ExpectedVersion::Any, events(1, payload))
        .await?;
    store.shutdown().await?;
    drop(store);
    // The store's sled handles are gone, but sled releases its file lock only
    // when its last background thread lets go: retry briefly.
    let mut attempt = 0;
    let db = loop {
        match sled::Config::new().path(dir.path()).open() {
            Ok(db) => break db,
            Err(e) if attempt >= 50 => return Err(e).context("reopening the scratch store"),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let tree = db.open_tree("log")?;
    let mut entries = 0;
    let mut bytes = 0;
    for entry in tree.iter() {
        let (k, v) = entry?;
        entries += 1;
        bytes += k.len() + v.len();
    }
    // Key layout of libs/eventlog/src/sled_store/keys.rs: b'e' + position.
    let mut event_key = [b'e'; 9];
    event_key[1..].copy_from_slice(&0u64.to_be_bytes());
    let Some(stored) = tree.get(event_key)? else {
        bail!("the scratch store has no event at position 0 (did the key layout change?)");
    };
    let response = pb::AppendResponse {
        result: Some(pb::StreamAppendResult {
            stream: stream_name(0),
            // Mid-run magnitudes, so that the varints have a typical length.
            first_version: 5_000,
            last_version: 5_000,
            first_position: 300_000,
            last_position: 300_000,
            already_existed: false,
        }),
    };
    Ok(Sizes {
        stored_event: stored.len(),
        entries_per_append: entries,
        bytes_per_append: bytes,
        append_request: append_request(&stream_name(0), payload).encoded_len(),
        append_response: response.encoded_len(),
    })
}

/// Bytes allocated on disk under `dir`.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.blocks() * 512,
                Err(_) => {}
            }
        }
    }
    total
}

/// Resident set size of this process, from /proc (0 where unavailable).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The file system type of the mount holding `dir`, from /proc/mounts.
pub fn fs_type(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, mount, kind) = (f.next()?, f.next()?, f.next()?);
            Some((PathBuf::from(mount), kind.to_owned()))
        })
        .filter(|(mount, _)| dir.starts_with(mount))
        .max_by_key(|(mount, _)| mount.as_os_str().len())
        .map(|(_, kind)| kind)
}
