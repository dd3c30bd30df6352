//! Invariants of the log under many concurrent appenders, checked by proptest
//! over random plans: positions and stream versions gap-free, real-time order
//! equals position order, every acknowledged event readable as appended,
//! idempotent retries write nothing, and a subscriber sees exactly the log.

use futures::StreamExt;
use kizuna_eventlog::{
    Direction, Durability, EventFilter, EventStore, ExpectedVersion, ProposedEvent, SledConfig,
    SledStore, StoreError, SubscribeFrom, SubscriptionItem,
};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One append of a plan.
#[derive(Debug, Clone)]
struct Op {
    stream: usize,
    events: usize,
    /// Append with the exact version read just before (may lose a race).
    exact: bool,
    /// Send the same append again after it succeeded.
    retry: bool,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0usize..6,
        1usize..6,
        any::<bool>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(stream, events, exact, retry)| Op {
            stream,
            events,
            exact,
            retry,
        })
}

/// An acknowledged append: what was sent and where it landed.
struct Acked {
    stream: String,
    events: Vec<ProposedEvent>,
    first_position: u64,
    first_version: u64,
}

async fn run_plan(writers: Vec<Vec<Op>>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(SledConfig::new(dir.path()).durability(Durability::None)).unwrap();
    let mut subscription = store
        .subscribe(SubscribeFrom::Position(0), EventFilter::all())
        .await
        .unwrap();
    // The highest position acknowledged so far, in real time.
    let acked_max: Arc<Mutex<Option<u64>>> = Arc::new(Mutex::new(None));
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(w, ops)| {
            let store = store.clone();
            let acked_max = acked_max.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for (n, op) in ops.into_iter().enumerate() {
                    let stream = format!("prop-{}", op.stream);
                    let events: Vec<ProposedEvent> = (0..op.events)
                        .map(|i| ProposedEvent::new("prop.happened", format!("{w}/{n}/{i}")))
                        .collect();
                    let expected = if op.exact {
                        store
                            .read_stream(&stream, Direction::Backward, None, 1)
                            .await
                            .unwrap()
                            .last_version
                            .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
                    } else {
                        ExpectedVersion::Any
                    };
                    let seen_before_send = *acked_max.lock().unwrap();
                    match store.append(&stream, expected, events.clone()).await {
                        Ok(r) => {
                            assert!(!r.already_existed);
                            assert_eq!(r.last_position - r.first_position + 1, op.events as u64);
                            if let Some(seen) = seen_before_send {
                                assert!(
                                    r.first_position > seen,
                                    "acknowledged before this append was sent, yet placed after it"
                                );
                            }
                            {
                                let mut max = acked_max.lock().unwrap();
                                *max =
                                    Some(max.map_or(r.last_position, |m| m.max(r.last_position)));
                            }
                            if op.retry {
                                let again = store
                                    .append(&stream, expected, events.clone())
                                    .await
                                    .unwrap();
                                assert!(again.already_existed);
                                assert_eq!(
                                    (
                                        again.first_position,
                                        again.last_position,
                                        again.first_version
                                    ),
                                    (r.first_position, r.last_position, r.first_version)
                                );
                            }
                            acked.push(Acked {
                                stream,
                                events,
                                first_position: r.first_position,
                                first_version: r.first_version,
                            });
                        }
                        Err(StoreError::WrongExpectedVersion { .. }) if op.exact => {}
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }

    let total: usize = acked.iter().map(|a| a.events.len()).sum();
    let head = store.head().await.unwrap();
    assert_eq!(
        head.next_position, total as u64,
        "retries and conflicts wrote nothing"
    );

    let log = store
        .read_all(0, &EventFilter::all(), usize::MAX)
        .await
        .unwrap()
        .events;
    let positions: Vec<u64> = log.iter().map(|e| e.global_position).collect();
    assert_eq!(
        positions,
        (0..total as u64).collect::<Vec<_>>(),
        "global positions gap-free"
    );
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for e in &log {
        let next = versions.entry(e.stream.as_str()).or_insert(0);
        assert_eq!(
            e.stream_version, *next,
            "stream versions gap-free, in position order"
        );
        *next += 1;
    }
    for a in &acked {
        for (i, proposed) in a.events.iter().enumerate() {
            let e = &log[(a.first_position + i as u64) as usize];
            assert!(
                e.matches(&a.stream, proposed),
                "acknowledged event readable as appended"
            );
            assert_eq!(e.stream_version, a.first_version + i as u64);
        }
    }
    assert!(store.verify().await.unwrap().is_ok());

    let mut seen = Vec::new();
    while seen.len() < total {
        match subscription.next().await.unwrap().unwrap() {
            SubscriptionItem::Event(e) => seen.push(e),
            SubscriptionItem::CaughtUp { .. } => {}
        }
    }
    assert_eq!(seen, log, "the subscriber saw exactly the log");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_appenders_keep_the_log_gap_free_and_ordered(
        writers in prop::collection::vec(prop::collection::vec(op(), 1..12), 1..16)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_plan(writers));
    }
}

/// One append of a read-model plan: big batches span several chunks, big
/// payloads close chunks early.
#[derive(Debug, Clone)]
struct BulkAppend {
    stream: usize,
    events: usize,
    payload_bytes: usize,
    customer: Option<usize>,
}

fn bulk_append() -> impl Strategy<Value = BulkAppend> {
    (
        0usize..4,
        prop_oneof![1usize..5, 200usize..700],
        prop_oneof![0usize..64, 500usize..3000],
        prop::option::of(0usize..2),
    )
        .prop_map(|(stream, events, payload_bytes, customer)| BulkAppend {
            stream,
            events,
            payload_bytes,
            customer,
        })
}

#[derive(Debug, Clone)]
enum Query {
    All {
        from: u64,
        category: Option<usize>,
        event_type: Option<usize>,
        customer: Option<usize>,
        limit: usize,
    },
    Stream {
        stream: usize,
        backward: bool,
        from: Option<u64>,
        limit: usize,
    },
}

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        (
            0u64..3000,
            prop::option::of(0usize..2),
            prop::option::of(0usize..3),
            prop::option::of(0usize..2),
            1usize..800
        )
            .prop_map(|(from, category, event_type, customer, limit)| Query::All {
                from,
                category,
                event_type,
                customer,
                limit
            }),
        (
            0usize..4,
            any::<bool>(),
            prop::option::of(0u64..1500),
            1usize..800
        )
            .prop_map(|(stream, backward, from, limit)| Query::Stream {
                stream,
                backward,
                from,
                limit
            }),
    ]
}

const CUSTOMERS: [uuid::Uuid; 2] = [
    uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
    uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002),
];
const TYPES: [&str; 3] = ["bulk.one", "bulk.two", "bulk.three"];

fn stream_name(n: usize) -> String {
    // Two categories over four streams.
    format!("{}-{n}", if n.is_multiple_of(2) { "even" } else { "odd" })
}

async fn reads_match_the_log(appends: Vec<BulkAppend>, queries: Vec<Query>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(SledConfig::new(dir.path()).durability(Durability::None)).unwrap();
    // Two appenders, so that groups hold several requests.
    let halves: Vec<Vec<BulkAppend>> = vec![
        appends.iter().step_by(2).cloned().collect(),
        appends.iter().skip(1).step_by(2).cloned().collect(),
    ];
    let tasks: Vec<_> = halves
        .into_iter()
        .map(|plan| {
            let store = store.clone();
            tokio::spawn(async move {
                for a in plan {
                    let events = (0..a.events)
                        .map(|i| {
                            let mut e =
                                ProposedEvent::new(TYPES[i % 3], vec![b'p'; a.payload_bytes]);
                            if let Some(c) = a.customer.filter(|_| i.is_multiple_of(2)) {
                                e = e.with_customer(CUSTOMERS[c]);
                            }
                            e
                        })
                        .collect();
                    store
                        .append(&stream_name(a.stream), ExpectedVersion::Any, events)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let log = store
        .read_all(0, &EventFilter::all(), usize::MAX)
        .await
        .unwrap()
        .events;
    let n = store.head().await.unwrap().next_position;
    assert_eq!(log.len() as u64, n);
    assert!(
        log.iter()
            .enumerate()
            .all(|(i, e)| e.global_position == i as u64)
    );
    assert!(store.verify().await.unwrap().is_ok());
    for q in queries {
        match q {
            Query::All {
                from,
                category,
                event_type,
                customer,
                limit,
            } => {
                let filter = EventFilter {
                    categories: category
                        .map(|c| vec![["even", "odd"][c].to_string()])
                        .unwrap_or_default(),
                    event_types: event_type
                        .map(|t| vec![TYPES[t].to_string()])
                        .unwrap_or_default(),
                    customer_id: customer.map(|c| CUSTOMERS[c]),
                };
                let expected: Vec<u64> = log
                    .iter()
                    .filter(|e| e.global_position >= from && filter.matches(e))
                    .take(limit)
                    .map(|e| e.global_position)
                    .collect();
                let got = store.read_all(from, &filter, limit).await.unwrap();
                let positions: Vec<u64> = got.events.iter().map(|e| e.global_position).collect();
                assert_eq!(
                    positions, expected,
                    "read_all from {from} {filter:?} limit {limit}"
                );
                for e in &got.events {
                    assert_eq!(e, &log[e.global_position as usize]);
                }
            }
            Query::Stream {
                stream,
                backward,
                from,
                limit,
            } => {
                let s = stream_name(stream);
                let mut mine: Vec<&kizuna_eventlog::RecordedEvent> =
                    log.iter().filter(|e| e.stream == s).collect();
                let last = mine.last().map(|e| e.stream_version);
                let expected: Vec<u64> = if backward {
                    mine.reverse();
                    let start = from.unwrap_or(u64::MAX);
                    mine.iter()
                        .filter(|e| e.stream_version <= start)
                        .take(limit)
                        .map(|e| e.global_position)
                        .collect()
                } else {
                    let start = from.unwrap_or(0);
                    mine.iter()
                        .filter(|e| e.stream_version >= start)
                        .take(limit)
                        .map(|e| e.global_position)
                        .collect()
                };
                let direction = if backward {
                    Direction::Backward
                } else {
                    Direction::Forward
                };
                let got = store.read_stream(&s, direction, from, limit).await.unwrap();
                let positions: Vec<u64> = got.events.iter().map(|e| e.global_position).collect();
                assert_eq!(
                    positions, expected,
                    "read_stream {s} backward={backward} from {from:?} limit {limit}"
                );
                assert_eq!(got.last_version, last);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn every_read_path_agrees_with_a_scan_of_the_log(
        appends in prop::collection::vec(bulk_append(), 1..12),
        queries in prop::collection::vec(query(), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(reads_match_the_log(appends, queries));
    }
}
