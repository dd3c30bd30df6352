//! Framing of a chunk: consecutive stored records, each preceded by its length.
//!
//! `u32 LE length ‖ record` repeated, where each record is `codec::seal`'s
//! CRC-checked bytes. A damaged length cannot yield wrong data: the record it
//! frames fails its CRC or its position check in `codec::decode`.

use crate::codec;
use crate::error::{StoreError, StoreResult};
use crate::event::RecordedEvent;

/// Chunks close after this many events…
pub(crate) const MAX_EVENTS: usize = 256;
/// …or once they hold this many bytes, so that sled keeps them inline in its
/// log segments rather than in separate blob files.
pub(crate) const MAX_BYTES: usize = 64 * 1024;

pub(crate) fn push_record(chunk: &mut Vec<u8>, record: &[u8]) {
    // Records are bounded by the payload limit, far below 4 GiB.
    chunk.extend_from_slice(
        &u32::try_from(record.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    chunk.extend_from_slice(record);
}

/// Walks the records of the chunk that starts at `first_position`.
pub(crate) struct Records<'a> {
    rest: &'a [u8],
    next_position: u64,
}

impl<'a> Records<'a> {
    pub(crate) fn new(first_position: u64, chunk: &'a [u8]) -> Self {
        Self {
            rest: chunk,
            next_position: first_position,
        }
    }

    /// The position the next record will have.
    pub(crate) fn next_position(&self) -> u64 {
        self.next_position
    }

    /// The next record's position and bytes, without decoding it.
    pub(crate) fn next_raw(&mut self) -> Option<StoreResult<(u64, &'a [u8])>> {
        if self.rest.is_empty() {
            return None;
        }
        let position = self.next_position;
        let framed = self.rest.split_first_chunk::<4>().and_then(|(len, body)| {
            let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
            (len <= body.len()).then(|| body.split_at(len))
        });
        match framed {
            Some((record, rest)) => {
                self.rest = rest;
                self.next_position += 1;
                Some(Ok((position, record)))
            }
            None => {
                self.rest = &[];
                Some(Err(StoreError::Corrupt {
                    position,
                    reason: "chunk framing damaged: record length runs past the chunk".into(),
                }))
            }
        }
    }

    /// Skips records up to (not including) `position`.
    pub(crate) fn skip_to(&mut self, position: u64) -> StoreResult<()> {
        while self.next_position < position {
            match self.next_raw() {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(())
    }
}

impl Iterator for Records<'_> {
    type Item = StoreResult<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_raw()
            .map(|r| r.and_then(|(position, record)| codec::decode(position, record)))
    }
}
