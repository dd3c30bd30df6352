//! The contract every [`EventStore`] backend must keep, as executable checks.
//!
//! Each check panics with a message on failure. Checks use fresh stream
//! names, categories and event types and positions relative to the head they
//! find, so they can run against a store that already holds data, and against
//! the same store one after another. Run them all with [`run_all`].

use crate::{
    Direction, EventFilter, EventMetadata, EventStore, ExpectedVersion, ProposedEvent,
    RecordedEvent, StoreError, StreamAppend, SubscribeFrom, SubscriptionItem, Timestamp,
};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a subscription check waits for an item before failing.
const ITEM_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every check, one after another.
pub async fn run_all(store: Arc<dyn EventStore>) {
    append_and_read_back(&*store).await;
    expected_versions(&*store).await;
    idempotent_retries(&*store).await;
    multi_stream_all_or_nothing(&*store).await;
    stream_reads(&*store).await;
    filtered_reads(&*store).await;
    head_tracks_the_last_event(&*store).await;
    subscriptions_switch_to_live_without_gap(&*store).await;
    invalid_input_is_rejected_with_the_field(&*store).await;
    concurrent_writers_on_one_stream(store.clone()).await;
    verify_is_clean(&*store).await;
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", Uuid::now_v7().simple())
}

fn stream(category: &str) -> String {
    format!("{category}-{}", Uuid::now_v7())
}

fn event(event_type: &str, n: usize) -> ProposedEvent {
    ProposedEvent::new(event_type, format!("{{\"n\":{n}}}"))
}

async fn append_events(store: &dyn EventStore, stream: &str, event_type: &str, count: usize) {
    let events = (0..count).map(|n| event(event_type, n)).collect();
    store
        .append(stream, ExpectedVersion::Any, events)
        .await
        .expect("append");
}

async fn all_since(store: &dyn EventStore, from: u64, filter: &EventFilter) -> Vec<RecordedEvent> {
    store
        .read_all(from, filter, 100_000)
        .await
        .expect("read_all")
        .events
}

/// Appended events read back with every field as proposed, versions and
/// positions contiguous, the hash chain linked.
pub async fn append_and_read_back(store: &dyn EventStore) {
    let s = stream("conf");
    let customer = Uuid::now_v7();
    let occurred = Timestamp::from_unix_nanos(1_700_000_000_123_456_789);
    let mut first = event("conf.captured", 0).with_customer(customer);
    first.occurred_at = Some(occurred);
    first.schema_version = 2;
    first.metadata = EventMetadata {
        correlation_id: "corr-1".into(),
        causation_id: "cmd-1".into(),
        actor: "user:conformance".into(),
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    };
    let proposed = vec![first, event("conf.updated", 1), event("conf.updated", 2)];
    let result = store
        .append(&s, ExpectedVersion::NoStream, proposed.clone())
        .await
        .expect("append to a new stream");
    assert_eq!((result.first_version, result.last_version), (0, 2));
    assert_eq!(result.last_position, result.first_position + 2);
    assert!(!result.already_existed);
    assert_eq!(result.stream, s);

    let slice = store
        .read_stream(&s, Direction::Forward, None, 10)
        .await
        .expect("read_stream");
    assert_eq!(slice.last_version, Some(2));
    assert_eq!(slice.events.len(), 3);
    for (i, (recorded, proposed)) in slice.events.iter().zip(&proposed).enumerate() {
        assert!(
            recorded.matches(&s, proposed),
            "event {i} differs: {recorded:?}"
        );
        assert_eq!(recorded.stream_version, i as u64);
        assert_eq!(recorded.global_position, result.first_position + i as u64);
        assert_eq!(
            recorded.hash,
            crate::event_hash(recorded),
            "hash of event {i}"
        );
        if i > 0 {
            assert_eq!(
                recorded.prev_hash,
                slice.events[i - 1].hash,
                "chain link {i}"
            );
        }
    }
    assert_eq!(slice.events[0].occurred_at, occurred);
    assert_eq!(slice.events[0].schema_version, 2);
    for recorded in &slice.events {
        let by_id = store
            .read_event(recorded.event_id)
            .await
            .expect("read_event");
        assert_eq!(by_id.as_ref(), Some(recorded), "read_event by id");
    }
    assert_eq!(
        store.read_event(Uuid::now_v7()).await.expect("read_event"),
        None,
        "an unknown id reads as absent"
    );
    assert_eq!(slice.events[1].schema_version, 1);
    assert_eq!(
        slice.events[1].occurred_at, slice.events[1].recorded_at,
        "business time defaults to the log's time"
    );
}

/// Each kind of expectation admits and rejects the right stream states, and a
/// rejection carries the actual version.
pub async fn expected_versions(store: &dyn EventStore) {
    let s = stream("conf");
    let conflict = |r: Result<_, StoreError>, want_actual: Option<u64>| match r {
        Err(StoreError::WrongExpectedVersion { actual, stream, .. }) => {
            assert_eq!(actual, want_actual);
            assert!(!stream.is_empty());
        }
        other => panic!("expected a version conflict, got {other:?}"),
    };
    conflict(
        store
            .append(&s, ExpectedVersion::StreamExists, vec![event("conf.x", 0)])
            .await,
        None,
    );
    conflict(
        store
            .append(&s, ExpectedVersion::Exact(0), vec![event("conf.x", 0)])
            .await,
        None,
    );
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("conf.x", 0)])
        .await
        .expect("no stream on a new stream");
    conflict(
        store
            .append(&s, ExpectedVersion::NoStream, vec![event("conf.x", 1)])
            .await,
        Some(0),
    );
    conflict(
        store
            .append(&s, ExpectedVersion::Exact(5), vec![event("conf.x", 1)])
            .await,
        Some(0),
    );
    let r = store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            vec![event("conf.x", 1), event("conf.x", 2)],
        )
        .await
        .expect("exact version");
    assert_eq!((r.first_version, r.last_version), (1, 2));
    store
        .append(&s, ExpectedVersion::StreamExists, vec![event("conf.x", 3)])
        .await
        .expect("stream exists");
    let r = store
        .append(&s, ExpectedVersion::Any, vec![event("conf.x", 4)])
        .await
        .expect("any");
    assert_eq!(r.last_version, 4);
    let slice = store
        .read_stream(&s, Direction::Forward, None, 100)
        .await
        .expect("read");
    assert_eq!(slice.events.len(), 5, "rejected appends must write nothing");
}

/// Re-appending the same ids returns the original result and writes nothing;
/// the same id with other content, or mixed with new ids, is a conflict.
pub async fn idempotent_retries(store: &dyn EventStore) {
    let s = stream("conf");
    let events = vec![event("conf.x", 0), event("conf.x", 1)];
    let first = store
        .append(&s, ExpectedVersion::NoStream, events.clone())
        .await
        .expect("first append");
    let head = store.head().await.expect("head");
    // The retry's expectation no longer holds, yet it is recognised as a retry.
    let retry = store
        .append(&s, ExpectedVersion::NoStream, events.clone())
        .await
        .expect("retry");
    assert!(retry.already_existed);
    assert_eq!(
        (
            retry.first_position,
            retry.last_position,
            retry.first_version,
            retry.last_version
        ),
        (
            first.first_position,
            first.last_position,
            first.first_version,
            first.last_version
        )
    );
    assert_eq!(
        store.head().await.expect("head"),
        head,
        "a retry writes nothing"
    );

    let mut changed = events[0].clone();
    changed.payload = "{\"n\":99}".into();
    match store.append(&s, ExpectedVersion::Any, vec![changed]).await {
        Err(StoreError::EventIdConflict { event_id, .. }) => {
            assert_eq!(event_id, events[0].event_id)
        }
        other => panic!("same id, other content: expected a conflict, got {other:?}"),
    }
    let other_stream = stream("conf");
    assert!(
        matches!(
            store
                .append(&other_stream, ExpectedVersion::Any, vec![events[0].clone()])
                .await,
            Err(StoreError::EventIdConflict { .. })
        ),
        "same id in another stream must conflict"
    );
    assert!(
        matches!(
            store
                .append(
                    &s,
                    ExpectedVersion::Any,
                    vec![events[1].clone(), event("conf.x", 2)]
                )
                .await,
            Err(StoreError::EventIdConflict { .. })
        ),
        "a retry mixed with new events must conflict"
    );
    assert_eq!(store.head().await.expect("head"), head);
}

/// A multi-stream append writes every stream or none.
pub async fn multi_stream_all_or_nothing(store: &dyn EventStore) {
    let (a, b) = (stream("conf"), stream("conf"));
    store
        .append(&b, ExpectedVersion::Any, vec![event("conf.x", 0)])
        .await
        .expect("seed b");
    let head = store.head().await.expect("head");
    let failing = vec![
        StreamAppend {
            stream: a.clone(),
            expected: ExpectedVersion::NoStream,
            events: vec![event("conf.x", 0)],
        },
        StreamAppend {
            stream: b.clone(),
            expected: ExpectedVersion::NoStream,
            events: vec![event("conf.x", 1)],
        },
    ];
    match store.append_multi(failing).await {
        Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
            assert_eq!(stream, b);
            assert_eq!(actual, Some(0));
        }
        other => panic!("expected a conflict on {b}, got {other:?}"),
    }
    assert_eq!(
        store.head().await.expect("head"),
        head,
        "nothing of a failed multi-append is written"
    );
    let slice = store
        .read_stream(&a, Direction::Forward, None, 10)
        .await
        .expect("read a");
    assert_eq!(slice.last_version, None);

    let ok = vec![
        StreamAppend {
            stream: a.clone(),
            expected: ExpectedVersion::NoStream,
            events: vec![event("conf.x", 0), event("conf.x", 1)],
        },
        StreamAppend {
            stream: b.clone(),
            expected: ExpectedVersion::Exact(0),
            events: vec![event("conf.x", 2)],
        },
    ];
    let results = store.append_multi(ok.clone()).await.expect("multi append");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].stream, a);
    assert_eq!(results[1].stream, b);
    assert_eq!((results[0].first_version, results[0].last_version), (0, 1));
    assert_eq!((results[1].first_version, results[1].last_version), (1, 1));
    assert_eq!(
        results[0].last_position + 1,
        results[1].first_position,
        "positions are contiguous"
    );
    let retry = store.append_multi(ok).await.expect("multi retry");
    assert!(retry.iter().all(|r| r.already_existed));
    assert_eq!(retry[1].first_position, results[1].first_position);
}

/// Forward and backward reads, from a version, with a limit; a missing stream
/// reads as empty.
pub async fn stream_reads(store: &dyn EventStore) {
    let s = stream("conf");
    append_events(store, &s, "conf.x", 10).await;
    let versions = |slice: &crate::StreamSlice| -> Vec<u64> {
        slice.events.iter().map(|e| e.stream_version).collect()
    };
    let fwd = store
        .read_stream(&s, Direction::Forward, Some(3), 4)
        .await
        .expect("read");
    assert_eq!(versions(&fwd), [3, 4, 5, 6]);
    assert_eq!(fwd.last_version, Some(9));
    let back = store
        .read_stream(&s, Direction::Backward, None, 3)
        .await
        .expect("read");
    assert_eq!(versions(&back), [9, 8, 7]);
    let back = store
        .read_stream(&s, Direction::Backward, Some(2), 10)
        .await
        .expect("read");
    assert_eq!(versions(&back), [2, 1, 0]);
    let past = store
        .read_stream(&s, Direction::Forward, Some(10), 10)
        .await
        .expect("read");
    assert!(past.events.is_empty());
    assert_eq!(past.last_version, Some(9));
    let missing = store
        .read_stream(&stream("conf"), Direction::Forward, None, 10)
        .await
        .expect("read missing");
    assert_eq!((missing.events.len(), missing.last_version), (0, None));
}

/// `read_all` by category, event type and customer, with limits and paging.
pub async fn filtered_reads(store: &dyn EventStore) {
    let from = store.head().await.expect("head").next_position;
    let (cat_a, cat_b) = (unique("ca"), unique("cb"));
    let (t1, t2) = (
        format!("{}.one", unique("t")),
        format!("{}.two", unique("t")),
    );
    let customer = Uuid::now_v7();
    let sa = stream(&cat_a);
    let sb = stream(&cat_b);
    for n in 0..6 {
        let ty = if n % 2 == 0 { &t1 } else { &t2 };
        let mut e = event(ty, n);
        if n % 3 == 0 {
            e = e.with_customer(customer);
        }
        let s = if n < 3 { &sa } else { &sb };
        store
            .append(s, ExpectedVersion::Any, vec![e])
            .await
            .expect("append");
    }
    let all = all_since(store, from, &EventFilter::all()).await;
    assert_eq!(all.len(), 6, "nothing else appends during this check");
    let positions = |events: &[RecordedEvent]| -> Vec<u64> {
        events.iter().map(|e| e.global_position - from).collect()
    };
    assert_eq!(positions(&all), [0, 1, 2, 3, 4, 5]);
    let by_cat = all_since(
        store,
        from,
        &EventFilter {
            categories: vec![cat_b.clone()],
            ..EventFilter::all()
        },
    )
    .await;
    assert_eq!(positions(&by_cat), [3, 4, 5]);
    let by_type = all_since(
        store,
        from,
        &EventFilter {
            event_types: vec![t2.clone()],
            ..EventFilter::all()
        },
    )
    .await;
    assert_eq!(positions(&by_type), [1, 3, 5]);
    let by_both = all_since(
        store,
        from,
        &EventFilter {
            categories: vec![cat_a.clone(), cat_b.clone()],
            event_types: vec![t1.clone()],
            ..EventFilter::all()
        },
    )
    .await;
    assert_eq!(positions(&by_both), [0, 2, 4]);
    let by_customer = all_since(
        store,
        from,
        &EventFilter {
            customer_id: Some(customer),
            ..EventFilter::all()
        },
    )
    .await;
    assert_eq!(positions(&by_customer), [0, 3]);
    let two_types = all_since(
        store,
        from,
        &EventFilter {
            event_types: vec![t2.clone(), t1.clone()],
            ..EventFilter::all()
        },
    )
    .await;
    assert_eq!(
        positions(&two_types),
        [0, 1, 2, 3, 4, 5],
        "several types merge in position order"
    );

    let filter = EventFilter {
        event_types: vec![t1.clone()],
        ..EventFilter::all()
    };
    let page = store.read_all(from, &filter, 2).await.expect("page");
    assert_eq!(positions(&page.events), [0, 2]);
    assert_eq!(page.next_position, from + 3);
    let rest = store
        .read_all(page.next_position, &filter, 10)
        .await
        .expect("page 2");
    assert_eq!(positions(&rest.events), [4]);
    assert!(rest.next_position >= from + 6);
    let none = store
        .read_all(
            from,
            &EventFilter {
                categories: vec![unique("nothing")],
                ..EventFilter::all()
            },
            10,
        )
        .await
        .expect("empty");
    assert!(none.events.is_empty());
    assert!(
        none.next_position >= from + 6,
        "a filtered scan still reports how far it got"
    );
}

/// The head moves with each append and carries the last event's hash.
pub async fn head_tracks_the_last_event(store: &dyn EventStore) {
    let before = store.head().await.expect("head");
    let s = stream("conf");
    let r = store
        .append(
            &s,
            ExpectedVersion::Any,
            vec![event("conf.x", 0), event("conf.x", 1)],
        )
        .await
        .expect("append");
    let after = store.head().await.expect("head");
    assert!(after.next_position > r.last_position);
    assert!(after.next_position >= before.next_position + 2);
    if after.next_position == r.last_position + 1 {
        let last = store
            .read_stream(&s, Direction::Backward, None, 1)
            .await
            .expect("read");
        assert_eq!(after.last_hash, last.events[0].hash);
    }
}

async fn next_item(sub: &mut crate::EventSubscription) -> SubscriptionItem {
    tokio::time::timeout(ITEM_TIMEOUT, sub.next())
        .await
        .expect("subscription item within the timeout")
        .expect("subscription still open")
        .expect("subscription item, not an error")
}

/// History, then exactly one caught-up marker, then live events: each event
/// once, in position order, filtered.
pub async fn subscriptions_switch_to_live_without_gap(store: &dyn EventStore) {
    let category = unique("sub");
    let s = stream(&category);
    let noise = stream("conf");
    let from = store.head().await.expect("head").next_position;
    append_events(store, &s, "conf.x", 3).await;
    append_events(store, &noise, "conf.x", 2).await;
    let filter = EventFilter {
        categories: vec![category.clone()],
        ..EventFilter::all()
    };
    let mut sub = store
        .subscribe(SubscribeFrom::Position(from), filter.clone())
        .await
        .expect("subscribe");
    let mut now = store
        .subscribe(SubscribeFrom::Now, filter)
        .await
        .expect("subscribe from now");
    let mut seen = Vec::new();
    loop {
        match next_item(&mut sub).await {
            SubscriptionItem::Event(e) => seen.push(e),
            SubscriptionItem::CaughtUp { next_position } => {
                assert!(next_position >= from + 5);
                break;
            }
        }
    }
    assert_eq!(seen.len(), 3, "history: the three events of the category");
    // Live: appended while the subscriber is idle, and while it is reading.
    append_events(store, &s, "conf.x", 2).await;
    append_events(store, &noise, "conf.x", 1).await;
    append_events(store, &s, "conf.x", 1).await;
    while seen.len() < 6 {
        match next_item(&mut sub).await {
            SubscriptionItem::Event(e) => seen.push(e),
            SubscriptionItem::CaughtUp { .. } => panic!("caught-up is sent once"),
        }
    }
    let versions: Vec<u64> = seen.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, [0, 1, 2, 3, 4, 5], "no gap, no duplicate");
    assert!(
        seen.windows(2)
            .all(|w| w[0].global_position < w[1].global_position)
    );

    let mut live = Vec::new();
    while live.len() < 3 {
        match next_item(&mut now).await {
            SubscriptionItem::Event(e) => live.push(e.stream_version),
            SubscriptionItem::CaughtUp { .. } => {}
        }
    }
    assert_eq!(live, [3, 4, 5], "from now: only events after the call");
}

/// Malformed requests fail with the field named and write nothing.
pub async fn invalid_input_is_rejected_with_the_field(store: &dyn EventStore) {
    let head = store.head().await.expect("head");
    let field_of = |r: Result<crate::AppendResult, StoreError>| match r {
        Err(StoreError::InvalidArgument { field, .. }) => field,
        other => panic!("expected an invalid argument, got {other:?}"),
    };
    assert_eq!(
        field_of(
            store
                .append("", ExpectedVersion::Any, vec![event("conf.x", 0)])
                .await
        ),
        "stream"
    );
    assert_eq!(
        field_of(
            store
                .append("no dash", ExpectedVersion::Any, vec![event("conf.x", 0)])
                .await
        ),
        "stream"
    );
    assert_eq!(
        field_of(
            store
                .append(&stream("conf"), ExpectedVersion::Any, vec![])
                .await
        ),
        "events"
    );
    assert_eq!(
        field_of(
            store
                .append(
                    &stream("conf"),
                    ExpectedVersion::Any,
                    vec![event("conf.x", 0), event("Not A Type", 1)]
                )
                .await
        ),
        "events[1].event_type"
    );
    let big = ProposedEvent::new("conf.x", vec![b'x'; 1024 * 1024 + 1]);
    assert!(matches!(
        store
            .append(&stream("conf"), ExpectedVersion::Any, vec![big])
            .await,
        Err(StoreError::PayloadTooLarge { .. })
    ));
    assert!(matches!(
        store
            .read_stream("bad stream", Direction::Forward, None, 1)
            .await,
        Err(StoreError::InvalidArgument { .. })
    ));
    assert!(matches!(
        store
            .read_all(
                0,
                &EventFilter {
                    event_types: vec!["Bad Type".into()],
                    ..EventFilter::all()
                },
                1
            )
            .await,
        Err(StoreError::InvalidArgument { .. })
    ));
    assert_eq!(store.head().await.expect("head"), head);
}

/// Writers racing on one stream with exact expectations: each version is won
/// once, the stream stays gap-free.
pub async fn concurrent_writers_on_one_stream(store: Arc<dyn EventStore>) {
    let s = stream("conf");
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let store = store.clone();
            let s = s.clone();
            tokio::spawn(async move {
                let mut won = Vec::new();
                for n in 0..10 {
                    let last = store
                        .read_stream(&s, Direction::Backward, None, 1)
                        .await
                        .expect("read")
                        .last_version;
                    let expected = last.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                    match store
                        .append(&s, expected, vec![event("conf.race", w * 100 + n)])
                        .await
                    {
                        Ok(r) => {
                            assert_eq!(Some(r.first_version), last.map(|v| v + 1).or(Some(0)));
                            won.push(r.first_version);
                        }
                        Err(StoreError::WrongExpectedVersion { .. }) => {}
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        won.extend(t.await.expect("task"));
    }
    won.sort_unstable();
    let expected: Vec<u64> = (0..won.len() as u64).collect();
    assert_eq!(won, expected, "each version won exactly once");
    let slice = store
        .read_stream(&s, Direction::Forward, None, 1000)
        .await
        .expect("read");
    assert_eq!(slice.events.len(), won.len());
}

/// A log written only through the API verifies clean.
pub async fn verify_is_clean(store: &dyn EventStore) {
    let report = store.verify().await.expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert!(report.events_checked > 0);
}
