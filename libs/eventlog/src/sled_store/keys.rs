//! Key layout of the one sled tree that holds the log and its indexes.
//!
//! Everything lives in one tree so that events and all their index entries go
//! into one `sled::Batch`, which sled applies atomically (also across a crash).
//! Positions and versions are big-endian so that byte order is numeric order.
//! Names never contain a 0 byte (see `names`), so `name 0x00` ends a name.
//!
//! sled charges several microseconds per key written, whatever its size, so
//! the layout writes as few keys per event as it can: events are stored in
//! chunks of consecutive positions, a stream's consecutive versions from one
//! append share one run entry, and the type, category and customer indexes
//! hold one entry per chunk listing the offsets of the matching events. Only
//! the event-id index has a key per event, since a retry may name any id.
//!
//! | prefix | key                            | value                                   |
//! |--------|--------------------------------|-----------------------------------------|
//! | `e`    | first position of the chunk    | framed records (see `chunk`)            |
//! | `s`    | stream 0x00 first version      | first position (u64) ‖ count (u32)      |
//! | `i`    | event id (16 bytes)            | position (u64)                          |
//! | `c`    | customer id (16) chunk first   | offsets in the chunk (u32 LE each)      |
//! | `t`    | event type 0x00 chunk first    | offsets in the chunk                    |
//! | `k`    | category 0x00 chunk first      | offsets in the chunk                    |
//!
//! A stream's head is its last run: it is written in the same batch as the
//! events, so it can never disagree with them.

use uuid::Uuid;

pub(crate) const CHUNK: u8 = b'e';
pub(crate) const STREAM: u8 = b's';
pub(crate) const EVENT_ID: u8 = b'i';
pub(crate) const CUSTOMER: u8 = b'c';
pub(crate) const EVENT_TYPE: u8 = b't';
pub(crate) const CATEGORY: u8 = b'k';

pub(crate) fn chunk(first_position: u64) -> [u8; 9] {
    let mut k = [CHUNK; 9];
    k[1..].copy_from_slice(&first_position.to_be_bytes());
    k
}

/// The prefix of a name-keyed index: `tag name 0x00`.
pub(crate) fn named_prefix(tag: u8, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 10);
    k.push(tag);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

pub(crate) fn customer_prefix(customer: &Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.push(CUSTOMER);
    k.extend_from_slice(customer.as_bytes());
    k
}

pub(crate) fn with_u64(prefix: &[u8], n: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

pub(crate) fn event_id(id: &Uuid) -> [u8; 17] {
    let mut k = [EVENT_ID; 17];
    k[1..].copy_from_slice(id.as_bytes());
    k
}

/// The big-endian u64 at the end of a key or value.
pub(crate) fn trailing_u64(bytes: &[u8]) -> Option<u64> {
    let tail = bytes.len().checked_sub(8).map(|start| &bytes[start..])?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// A run: `count` consecutive versions of one stream at consecutive positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) first_version: u64,
    pub(crate) first_position: u64,
    pub(crate) count: u64,
}

impl Run {
    pub(crate) fn last_version(&self) -> u64 {
        self.first_version + self.count - 1
    }

    pub(crate) fn value(&self) -> [u8; 12] {
        let mut v = [0; 12];
        v[..8].copy_from_slice(&self.first_position.to_be_bytes());
        // Runs come from one append, at most the events-per-append limit.
        v[8..].copy_from_slice(&u32::try_from(self.count).unwrap_or(u32::MAX).to_be_bytes());
        v
    }

    /// Parses a stream-index entry; `None` when it is malformed.
    pub(crate) fn parse(key: &[u8], value: &[u8]) -> Option<Self> {
        let first_version = trailing_u64(key)?;
        let value: &[u8; 12] = value.try_into().ok()?;
        let first_position = u64::from_be_bytes(value[..8].try_into().ok()?);
        let count = u64::from(u32::from_be_bytes(value[8..].try_into().ok()?));
        (count > 0).then_some(Self {
            first_version,
            first_position,
            count,
        })
    }
}

/// Encodes offsets within a chunk for an index entry.
pub(crate) fn encode_offsets(offsets: &[u32]) -> Vec<u8> {
    offsets.iter().flat_map(|o| o.to_le_bytes()).collect()
}

/// Decodes an index entry's offsets; `None` when it is malformed.
pub(crate) fn decode_offsets(value: &[u8]) -> Option<Vec<u32>> {
    if !value.len().is_multiple_of(4) {
        return None;
    }
    Some(
        value
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}
