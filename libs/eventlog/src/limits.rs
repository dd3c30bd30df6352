//! Limits on what one append may carry, and the checks every backend runs
//! before it writes anything.
//!
//! Checking here, before the writer, keeps a bad request from ever reaching the
//! group commit where it would cost other callers time.

use crate::error::{StoreError, StoreResult};
use crate::names;
use crate::store::StreamAppend;
use std::collections::HashSet;

/// Size limits of appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of one event, in bytes (default 1 MiB).
    pub max_payload_bytes: usize,
    /// Most events in one append, over all its streams (default 1000).
    pub max_events_per_append: usize,
    /// Longest metadata field (correlation, causation, actor, traceparent), in bytes.
    pub max_metadata_field_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 1024 * 1024,
            max_events_per_append: 1000,
            max_metadata_field_bytes: 1024,
        }
    }
}

impl Limits {
    /// Checks an append of one or more streams. Field paths are `events[j]…`
    /// for a single-stream append and `appends[i].events[j]…` for a multi-stream one.
    pub fn check(&self, appends: &[StreamAppend], multi: bool) -> StoreResult<()> {
        if appends.is_empty() {
            return Err(StoreError::invalid("appends", "no stream to append to"));
        }
        let total: usize = appends.iter().map(|a| a.events.len()).sum();
        if total > self.max_events_per_append {
            return Err(StoreError::TooManyEvents {
                count: total,
                max: self.max_events_per_append,
            });
        }
        let mut streams = HashSet::new();
        let mut ids = HashSet::new();
        for (i, append) in appends.iter().enumerate() {
            let prefix = if multi {
                format!("appends[{i}].")
            } else {
                String::new()
            };
            names::validate_stream_name(&append.stream)
                .map_err(|r| StoreError::invalid(format!("{prefix}stream"), r))?;
            if !streams.insert(append.stream.as_str()) {
                return Err(StoreError::invalid(
                    format!("{prefix}stream"),
                    format!("stream {} appears twice in one append", append.stream),
                ));
            }
            if append.events.is_empty() {
                return Err(StoreError::invalid(
                    format!("{prefix}events"),
                    "at least one event is required",
                ));
            }
            for (j, event) in append.events.iter().enumerate() {
                let field = |name: &str| format!("{prefix}events[{j}].{name}");
                if event.event_id.is_nil() {
                    return Err(StoreError::invalid(
                        field("event_id"),
                        "the nil UUID is not an event id",
                    ));
                }
                if !ids.insert(event.event_id) {
                    return Err(StoreError::invalid(
                        field("event_id"),
                        format!("event id {} appears twice in one append", event.event_id),
                    ));
                }
                names::validate_event_type(&event.event_type)
                    .map_err(|r| StoreError::invalid(field("event_type"), r))?;
                if event.payload.len() > self.max_payload_bytes {
                    return Err(StoreError::PayloadTooLarge {
                        field: field("payload"),
                        size: event.payload.len(),
                        max: self.max_payload_bytes,
                    });
                }
                let m = &event.metadata;
                for (name, value) in [
                    ("correlation_id", &m.correlation_id),
                    ("causation_id", &m.causation_id),
                    ("actor", &m.actor),
                    ("traceparent", &m.traceparent),
                ] {
                    if value.len() > self.max_metadata_field_bytes {
                        return Err(StoreError::invalid(
                            field(&format!("metadata.{name}")),
                            format!(
                                "{} bytes, over the limit of {}",
                                value.len(),
                                self.max_metadata_field_bytes
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExpectedVersion, ProposedEvent};

    fn append(stream: &str, events: Vec<ProposedEvent>) -> StreamAppend {
        StreamAppend {
            stream: stream.into(),
            expected: ExpectedVersion::Any,
            events,
        }
    }

    #[test]
    fn names_the_field_of_the_first_bad_event() {
        let mut bad = ProposedEvent::new("Bad Type", "x");
        bad.schema_version = 1;
        let err = Limits::default()
            .check(
                &[append("lead-1", vec![ProposedEvent::new("a.b", "x"), bad])],
                false,
            )
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidArgument { field, .. } if field == "events[1].event_type"),
            "{err}"
        );
    }

    #[test]
    fn multi_stream_paths_name_the_append() {
        let err = Limits::default()
            .check(
                &[
                    append("lead-1", vec![ProposedEvent::new("a.b", "x")]),
                    append("lead 2", vec![ProposedEvent::new("a.b", "x")]),
                ],
                true,
            )
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidArgument { field, .. } if field == "appends[1].stream"),
            "{err}"
        );
    }

    #[test]
    fn rejects_empty_batches_duplicates_and_oversize() {
        let limits = Limits::default();
        assert!(matches!(
            limits.check(&[append("lead-1", vec![])], false),
            Err(StoreError::InvalidArgument { field, .. }) if field == "events"
        ));
        let e = ProposedEvent::new("a.b", "x");
        assert!(matches!(
            limits.check(&[append("lead-1", vec![e.clone(), e])], false),
            Err(StoreError::InvalidArgument { field, .. }) if field == "events[1].event_id"
        ));
        let big = ProposedEvent::new("a.b", vec![0u8; limits.max_payload_bytes + 1]);
        assert!(matches!(
            limits.check(&[append("lead-1", vec![big])], false),
            Err(StoreError::PayloadTooLarge { size, .. }) if size == limits.max_payload_bytes + 1
        ));
        let many = (0..=limits.max_events_per_append)
            .map(|_| ProposedEvent::new("a.b", "x"))
            .collect();
        assert!(matches!(
            limits.check(&[append("lead-1", many)], false),
            Err(StoreError::TooManyEvents {
                count: 1001,
                max: 1000
            })
        ));
        let same_stream = [
            append("lead-1", vec![ProposedEvent::new("a.b", "x")]),
            append("lead-1", vec![ProposedEvent::new("a.b", "x")]),
        ];
        assert!(limits.check(&same_stream, true).is_err());
        let nil = ProposedEvent::new("a.b", "x").with_id(uuid::Uuid::nil());
        assert!(limits.check(&[append("lead-1", vec![nil])], false).is_err());
    }
}
