//! Key layout of the one sled tree that holds the log and its indexes.
//!
//! Everything lives in one tree so that an event and all its index entries go
//! into one `sled::Batch`, which sled applies atomically (also across a crash).
//! Positions and versions are big-endian so that byte order is numeric order.
//! Names never contain a 0 byte (see `names`), so `name 0x00` ends a name.
//!
//! | prefix | key                         | value          |
//! |--------|-----------------------------|----------------|
//! | `e`    | position                    | stored event   |
//! | `s`    | stream 0x00 version         | position       |
//! | `h`    | stream                      | last version   |
//! | `i`    | event id (16 bytes)         | position       |
//! | `c`    | customer id (16) position   | (empty)        |
//! | `t`    | event type 0x00 position    | (empty)        |
//! | `k`    | category 0x00 position      | (empty)        |

use uuid::Uuid;

pub(crate) const EVENT: u8 = b'e';
pub(crate) const STREAM: u8 = b's';
pub(crate) const STREAM_HEAD: u8 = b'h';
pub(crate) const EVENT_ID: u8 = b'i';
pub(crate) const CUSTOMER: u8 = b'c';
pub(crate) const EVENT_TYPE: u8 = b't';
pub(crate) const CATEGORY: u8 = b'k';

pub(crate) fn event(position: u64) -> [u8; 9] {
    let mut k = [EVENT; 9];
    k[1..].copy_from_slice(&position.to_be_bytes());
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

pub(crate) fn stream_head(stream: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 1);
    k.push(STREAM_HEAD);
    k.extend_from_slice(stream.as_bytes());
    k
}

pub(crate) fn event_id(id: &Uuid) -> [u8; 17] {
    let mut k = [EVENT_ID; 17];
    k[1..].copy_from_slice(id.as_bytes());
    k
}

/// The big-endian u64 at the end of a key or in a value.
pub(crate) fn trailing_u64(bytes: &[u8]) -> Option<u64> {
    let tail = bytes.len().checked_sub(8).map(|start| &bytes[start..])?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}
