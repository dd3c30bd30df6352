//! (a) The disk limit: raw sled, opened like `SledStore` opens it (same path
//! layout, same cache size, tree `log`), applying batches of values as long as
//! a stored event under event-like keys, with each durability mode's sync
//! policy per batch. `SledStore` cannot beat this by much: per event it writes
//! the same bytes plus its index entries, and per group it does the same
//! `flush` and `fdatasync`. One thread, like the store's single writer.
//!
//! A second, informational variant writes a batch the way the store lays it
//! out (libs/eventlog/src/sled_store/keys.rs): the events framed into one
//! chunk value, one stream-run entry, one event-id entry per event, and one
//! type and one category entry per chunk. Between the two, the gap between
//! raw sled and the store splits into what sled charges for the store's
//! layout and what the store's own logic (checks, hashing, encoding) costs.

use super::{Ctx, MODES};
use crate::fixture;
use crate::measure::run_blocking;
use crate::report::{Group, Report, Row};
use anyhow::Result;
use kizuna_eventlog::Durability;
use serde_json::json;
use std::fs::OpenOptions;

/// Raw batch sizes: 1 and 100 match single and 100-event appends of one
/// caller; 64 matches the group 64 concurrent single-event callers form.
const BATCHES: [u64; 3] = [1, 64, 100];

/// Batch size of the variant that writes the store's layout.
const INDEXED_BATCH: u64 = 100;

pub fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    for mode in MODES {
        for batch in BATCHES {
            eprintln!("disk: raw sled, {mode}, batch {batch}");
            report.push(one(ctx, mode, batch, false)?)?;
        }
        eprintln!("disk: raw sled in the store's layout, {mode}, batch {INDEXED_BATCH}");
        report.push(one(ctx, mode, INDEXED_BATCH, true)?)?;
    }
    Ok(())
}

/// Adds to `b` what the store writes for one append of `batch` events of
/// stream `STREAM` starting at `position` (version = position).
fn store_layout(b: &mut sled::Batch, position: u64, batch: u64, value: &[u8]) {
    const STREAM: &[u8] = b"bench-0000";
    let named = |tag: u8, name: &[u8], n: u64| {
        let mut k = Vec::with_capacity(name.len() + 10);
        k.push(tag);
        k.extend_from_slice(name);
        k.push(0);
        k.extend_from_slice(&n.to_be_bytes());
        k
    };
    let mut chunk = Vec::with_capacity((value.len() + 4) * batch as usize);
    for _ in 0..batch {
        chunk.extend_from_slice(&(value.len() as u32).to_le_bytes());
        chunk.extend_from_slice(value);
        let mut id = [b'i'; 17];
        id[1..].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
        b.insert(&id, &position.to_be_bytes());
    }
    let mut key = [b'e'; 9];
    key[1..].copy_from_slice(&position.to_be_bytes());
    b.insert(&key, chunk);
    let mut run = position.to_be_bytes().to_vec();
    run.extend_from_slice(&(batch as u32).to_be_bytes());
    b.insert(named(b's', STREAM, position), run);
    let offsets: Vec<u8> = (0..batch as u32).flat_map(|o| o.to_le_bytes()).collect();
    b.insert(
        named(b't', fixture::EVENT_TYPE.as_bytes(), position),
        offsets.clone(),
    );
    b.insert(named(b'k', b"bench", position), offsets);
}

fn one(ctx: &Ctx, mode: Durability, batch: u64, indexed: bool) -> Result<Row> {
    let dir = tempfile::tempdir_in(&ctx.base)?;
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(ctx.cache_bytes)
        .open()?;
    let tree = db.open_tree("log")?;
    let db_file = match mode {
        Durability::Fsync => Some(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(dir.path().join("db"))?,
        ),
        _ => None,
    };
    let value = fixture::payload(ctx.sizes.stored_event).to_vec();
    let mut position = 0u64;
    let sample = run_blocking(ctx.budget, batch, || {
        let mut b = sled::Batch::default();
        if indexed {
            store_layout(&mut b, position, batch, &value);
            position += batch;
        } else {
            for _ in 0..batch {
                // One event per key: b'e' + big-endian position.
                let mut key = [b'e'; 9];
                key[1..].copy_from_slice(&position.to_be_bytes());
                b.insert(&key, value.as_slice());
                position += 1;
            }
        }
        tree.apply_batch(b)?;
        match (mode, &db_file) {
            (Durability::Fsync, Some(file)) => {
                db.flush()?;
                file.sync_data()?;
            }
            (Durability::Flush, _) => {
                db.flush()?;
            }
            _ => {}
        }
        Ok(())
    })?;
    db.flush()?;
    let on_disk = fixture::disk_usage(dir.path());
    let mut extra = serde_json::Map::new();
    extra.insert("value_bytes".into(), json!(ctx.sizes.stored_event));
    extra.insert("store_layout".into(), json!(indexed));
    extra.insert("events_written".into(), json!(position));
    extra.insert(
        "disk_bytes_per_event".into(),
        json!(on_disk as f64 / position.max(1) as f64),
    );
    let (key, label) = if indexed {
        (
            "disk.raw_sled_store_layout",
            "a disk: raw sled, store layout",
        )
    } else {
        ("disk.raw_sled", "a disk: raw sled batch")
    };
    Ok(Row {
        group: Group::Disk,
        key,
        label: label.into(),
        durability: mode.to_string(),
        clients: 1,
        batch: Some(batch),
        sample,
        extra,
    })
}
