//! The on-disk form of an event and its hash.
//!
//! A stored value is `crc32c-le(4 bytes) || protobuf(StoredEvent)`. The CRC
//! lets every read reject a damaged record cheaply; the BLAKE3 hash chain
//! (checked by `verify`) makes tampering evident. The canonical bytes that are
//! hashed are the protobuf encoding of the record with `hash` left empty: prost
//! writes fields in tag order with no maps, so the encoding is deterministic.
//!
//! Field numbers of `StoredEvent` are frozen: never renumber or reuse one.

use crate::error::StoreError;
use crate::event::{EventMetadata, HASH_LEN, RecordedEvent, Timestamp};
use bytes::Bytes;
use prost::Message;
use uuid::Uuid;

#[derive(Clone, PartialEq, prost::Message)]
struct StoredEvent {
    #[prost(bytes = "vec", tag = "1")]
    event_id: Vec<u8>,
    #[prost(string, tag = "2")]
    stream: String,
    #[prost(uint64, tag = "3")]
    stream_version: u64,
    #[prost(uint64, tag = "4")]
    global_position: u64,
    #[prost(string, tag = "5")]
    event_type: String,
    #[prost(uint32, tag = "6")]
    schema_version: u32,
    #[prost(bytes = "vec", tag = "7")]
    customer_id: Vec<u8>,
    #[prost(sint64, tag = "8")]
    occurred_at: i64,
    #[prost(sint64, tag = "9")]
    recorded_at: i64,
    #[prost(string, tag = "10")]
    correlation_id: String,
    #[prost(string, tag = "11")]
    causation_id: String,
    #[prost(string, tag = "12")]
    actor: String,
    #[prost(string, tag = "13")]
    traceparent: String,
    #[prost(bytes = "bytes", tag = "14")]
    payload: Bytes,
    #[prost(bytes = "vec", tag = "15")]
    prev_hash: Vec<u8>,
    #[prost(bytes = "vec", tag = "16")]
    hash: Vec<u8>,
}

fn to_stored(e: &RecordedEvent, with_hash: bool) -> StoredEvent {
    StoredEvent {
        event_id: e.event_id.as_bytes().to_vec(),
        stream: e.stream.clone(),
        stream_version: e.stream_version,
        global_position: e.global_position,
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        customer_id: e
            .customer_id
            .map(|c| c.as_bytes().to_vec())
            .unwrap_or_default(),
        occurred_at: e.occurred_at.unix_nanos,
        recorded_at: e.recorded_at.unix_nanos,
        correlation_id: e.metadata.correlation_id.clone(),
        causation_id: e.metadata.causation_id.clone(),
        actor: e.metadata.actor.clone(),
        traceparent: e.metadata.traceparent.clone(),
        payload: e.payload.clone(),
        prev_hash: e.prev_hash.to_vec(),
        hash: if with_hash {
            e.hash.to_vec()
        } else {
            Vec::new()
        },
    }
}

/// The hash of `event`: BLAKE3 over its canonical bytes, which include
/// `prev_hash` and exclude `hash`.
pub fn event_hash(event: &RecordedEvent) -> [u8; HASH_LEN] {
    let canonical = to_stored(event, false).encode_to_vec();
    *blake3::hash(&canonical).as_bytes()
}

/// Computes `event.hash` and returns the stored bytes, encoding once: `hash`
/// has the highest tag, so the stored protobuf is the canonical bytes followed
/// by the hash field.
pub fn seal(event: &mut RecordedEvent) -> Vec<u8> {
    let canonical = to_stored(event, false);
    let mut out = Vec::with_capacity(4 + canonical.encoded_len() + 3 + HASH_LEN);
    out.extend_from_slice(&[0; 4]);
    // Encoding into a Vec cannot run out of space.
    let _ = canonical.encode(&mut out);
    event.hash = *blake3::hash(&out[4..]).as_bytes();
    // Field 16, wire type 2 (length-delimited): key varint 0x82 0x01.
    out.extend_from_slice(&[0x82, 0x01, HASH_LEN as u8]);
    out.extend_from_slice(&event.hash);
    let crc = crc32fast::hash(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Encodes `event` (whose `hash` must already be set) for storage: the
/// two-step form `seal` is checked against.
#[cfg(test)]
pub fn encode(event: &RecordedEvent) -> Vec<u8> {
    let stored = to_stored(event, true);
    let mut out = Vec::with_capacity(4 + stored.encoded_len());
    out.extend_from_slice(&[0; 4]);
    // Encoding into a Vec cannot run out of space.
    let _ = stored.encode(&mut out);
    let crc = crc32fast::hash(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out
}

fn corrupt(position: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        position,
        reason: reason.into(),
    }
}

/// Decodes a stored value, checking its checksum and that it is the event
/// stored at `position`. Never returns damaged data.
pub fn decode(position: u64, value: &[u8]) -> Result<RecordedEvent, StoreError> {
    let Some((crc, body)) = value.split_first_chunk::<4>() else {
        return Err(corrupt(position, "record shorter than its checksum"));
    };
    if u32::from_le_bytes(*crc) != crc32fast::hash(body) {
        return Err(corrupt(position, "checksum mismatch"));
    }
    let s =
        StoredEvent::decode(body).map_err(|e| corrupt(position, format!("undecodable: {e}")))?;
    if s.global_position != position {
        return Err(corrupt(
            position,
            format!("record says position {}", s.global_position),
        ));
    }
    let uuid = |b: &[u8], what: &str| {
        Uuid::from_slice(b).map_err(|_| corrupt(position, format!("bad {what}")))
    };
    let hash = |b: &[u8], what: &str| {
        <[u8; HASH_LEN]>::try_from(b).map_err(|_| corrupt(position, format!("bad {what}")))
    };
    Ok(RecordedEvent {
        event_id: uuid(&s.event_id, "event id")?,
        customer_id: if s.customer_id.is_empty() {
            None
        } else {
            Some(uuid(&s.customer_id, "customer id")?)
        },
        prev_hash: hash(&s.prev_hash, "prev_hash")?,
        hash: hash(&s.hash, "hash")?,
        stream: s.stream,
        stream_version: s.stream_version,
        global_position: s.global_position,
        event_type: s.event_type,
        schema_version: s.schema_version,
        occurred_at: Timestamp::from_unix_nanos(s.occurred_at),
        recorded_at: Timestamp::from_unix_nanos(s.recorded_at),
        metadata: EventMetadata {
            correlation_id: s.correlation_id,
            causation_id: s.causation_id,
            actor: s.actor,
            traceparent: s.traceparent,
        },
        payload: s.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordedEvent {
        let mut e = RecordedEvent {
            event_id: Uuid::now_v7(),
            stream: "lead-1".into(),
            stream_version: 3,
            global_position: 42,
            event_type: "lead.captured".into(),
            schema_version: 2,
            customer_id: Some(Uuid::now_v7()),
            occurred_at: Timestamp::from_unix_nanos(-5),
            recorded_at: Timestamp::from_unix_nanos(1_700_000_000_123_456_789),
            metadata: EventMetadata {
                correlation_id: "c".into(),
                causation_id: "d".into(),
                actor: "user:a".into(),
                traceparent: "00-abc-def-01".into(),
            },
            payload: Bytes::from_static(b"{\"name\":\"Taro\"}"),
            prev_hash: [7; HASH_LEN],
            hash: [0; HASH_LEN],
        };
        e.hash = event_hash(&e);
        e
    }

    #[test]
    fn round_trips_every_field() {
        let e = sample();
        assert_eq!(decode(42, &encode(&e)), Ok(e));
    }

    #[test]
    fn seal_hashes_and_encodes_like_the_two_steps() {
        let mut e = sample();
        e.hash = [0; HASH_LEN];
        let sealed = seal(&mut e);
        assert_eq!(e.hash, event_hash(&e));
        assert_eq!(sealed, encode(&e));
        assert_eq!(decode(42, &sealed), Ok(e));
    }

    #[test]
    fn hash_covers_prev_hash_and_content_but_not_itself() {
        let e = sample();
        let mut other = e.clone();
        other.hash = [9; HASH_LEN];
        assert_eq!(event_hash(&other), e.hash);
        other.prev_hash = [8; HASH_LEN];
        assert_ne!(event_hash(&other), e.hash);
        let mut other = e.clone();
        other.payload = Bytes::from_static(b"{\"name\":\"Hanako\"}");
        assert_ne!(event_hash(&other), e.hash);
    }

    #[test]
    fn any_flipped_byte_is_an_error_never_other_data() {
        let e = sample();
        let good = encode(&e);
        for i in 0..good.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                assert!(
                    matches!(
                        decode(42, &bad),
                        Err(StoreError::Corrupt { position: 42, .. })
                    ),
                    "flip at byte {i} went unnoticed"
                );
            }
        }
        assert!(decode(42, &good[..3]).is_err());
        assert!(
            decode(43, &good).is_err(),
            "a record under the wrong key must be rejected"
        );
    }
}
