//! SledStore against the conformance suite, across restarts, corruption and
//! slow subscribers.

use futures::StreamExt;
use kizuna_eventlog::{
    Clock, Direction, Durability, EventFilter, EventStore, ExpectedVersion, ProposedEvent,
    SledConfig, SledStore, StoreError, SubscribeFrom, SubscriptionItem, Timestamp,
};
use std::sync::Arc;
use std::time::Duration;

fn open(dir: &std::path::Path, durability: Durability) -> SledStore {
    SledStore::open(SledConfig::new(dir).durability(durability)).expect("open store")
}

async fn run_conformance(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), durability);
    kizuna_eventlog::conformance::run_all(Arc::new(store.clone())).await;
    store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_fsync() {
    run_conformance(Durability::Fsync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_flush() {
    run_conformance(Durability::Flush).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_none() {
    run_conformance(Durability::None).await;
}

struct FixedClock(i64);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_nanos(self.0)
    }
}

#[tokio::test]
async fn recorded_at_comes_from_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(
        SledConfig::new(dir.path())
            .durability(Durability::None)
            .clock(Arc::new(FixedClock(1_234_000_000_000))),
    )
    .unwrap();
    store
        .append(
            "lead-1",
            ExpectedVersion::Any,
            vec![ProposedEvent::new("lead.captured", "{}")],
        )
        .await
        .unwrap();
    let e = &store
        .read_all(0, &EventFilter::all(), 1)
        .await
        .unwrap()
        .events[0];
    assert_eq!(e.recorded_at, Timestamp::from_unix_nanos(1_234_000_000_000));
    assert_eq!(e.occurred_at, e.recorded_at);
}

#[tokio::test]
async fn events_heads_and_chain_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Fsync);
    let big = ProposedEvent::new("lead.attachment_added", vec![7u8; 1024 * 1024]);
    store
        .append(
            "lead-1",
            ExpectedVersion::NoStream,
            vec![ProposedEvent::new("lead.captured", "{}"), big.clone()],
        )
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    store.shutdown().await.unwrap();
    assert!(matches!(
        store
            .append(
                "lead-1",
                ExpectedVersion::Any,
                vec![ProposedEvent::new("lead.x", "{}")]
            )
            .await,
        Err(StoreError::Closed)
    ));
    drop(store);

    let store = open(dir.path(), Durability::Fsync);
    assert_eq!(store.head().await.unwrap(), head);
    let slice = store
        .read_stream("lead-1", Direction::Forward, None, 10)
        .await
        .unwrap();
    assert_eq!(slice.events.len(), 2);
    assert_eq!(
        slice.events[1].payload, big.payload,
        "a blob-sized event survives"
    );
    // The stream head and the id index survived too.
    assert!(matches!(
        store
            .append(
                "lead-1",
                ExpectedVersion::NoStream,
                vec![ProposedEvent::new("lead.x", "{}")]
            )
            .await,
        Err(StoreError::WrongExpectedVersion {
            actual: Some(1),
            ..
        })
    ));
    // The id index survived: the same event again is a recognised retry.
    let retry = store
        .append("lead-1", ExpectedVersion::NoStream, vec![big])
        .await
        .unwrap();
    assert!(retry.already_existed);
    assert_eq!((retry.first_version, retry.first_position), (1, 1));
    let r = store
        .append(
            "lead-1",
            ExpectedVersion::Exact(1),
            vec![ProposedEvent::new("lead.x", "{}")],
        )
        .await
        .unwrap();
    assert_eq!((r.first_version, r.first_position), (2, 2));
    let report = store.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events_checked, 3);
}

/// Writes `payloads` to `stream`, one append (so one chunk) each, and closes
/// the store.
async fn fill_and_close(dir: &std::path::Path, stream: &str, payloads: &[String]) {
    let store = open(dir, Durability::Fsync);
    for payload in payloads {
        store
            .append(
                stream,
                ExpectedVersion::Any,
                vec![ProposedEvent::new("customer.noted", payload.clone())],
            )
            .await
            .unwrap();
    }
    store.shutdown().await.unwrap();
}

/// Changes the stored chunk that starts at `position` below the store, the
/// way a failing disk or a tamperer would: `edit` gets its bytes (`None` when
/// it returns `None`, the chunk is removed).
fn edit_stored_chunk(
    dir: &std::path::Path,
    position: u64,
    edit: impl FnOnce(Vec<u8>) -> Option<Vec<u8>>,
) {
    let db = sled::open(dir).unwrap();
    let tree = db.open_tree("log").unwrap();
    let mut key = vec![b'e'];
    key.extend_from_slice(&position.to_be_bytes());
    let value = tree.get(&key).unwrap().expect("stored chunk").to_vec();
    match edit(value) {
        Some(value) => tree.insert(&key, value).unwrap(),
        None => tree.remove(&key).unwrap(),
    };
    db.flush().unwrap();
}

#[tokio::test]
async fn a_flipped_byte_is_reported_by_verify_and_never_read_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let notes: Vec<String> = (0..5).map(|n| format!("{{\"note\":\"n{n}\"}}")).collect();
    fill_and_close(dir.path(), "customer-7", &notes).await;
    // Inside the payload, near the record's end.
    edit_stored_chunk(dir.path(), 2, |mut chunk| {
        let i = chunk.len() - 40;
        chunk[i] ^= 0x20;
        Some(chunk)
    });
    let store = open(dir.path(), Durability::Fsync);
    let report = store.verify().await.unwrap();
    assert!(!report.is_ok());
    let brk = report.first_break.expect("a break");
    assert_eq!(brk.position, 2, "{brk:?}");
    assert_eq!(report.events_checked, 5);

    let read = store
        .read_stream("customer-7", Direction::Forward, None, 10)
        .await;
    assert!(
        matches!(read, Err(StoreError::Corrupt { position: 2, .. })),
        "{read:?}"
    );
    let all = store.read_all(0, &EventFilter::all(), 10).await;
    assert!(
        matches!(all, Err(StoreError::Corrupt { position: 2, .. })),
        "{all:?}"
    );
    // Events before the damage still read.
    let before = store
        .read_stream("customer-7", Direction::Forward, None, 2)
        .await
        .unwrap();
    assert_eq!(before.events.len(), 2);
    let mut sub = store
        .subscribe(SubscribeFrom::Position(0), EventFilter::all())
        .await
        .unwrap();
    let mut items = Vec::new();
    while let Some(item) = sub.next().await {
        items.push(item);
    }
    assert!(
        matches!(
            items.last(),
            Some(Err(StoreError::Corrupt { position: 2, .. }))
        ),
        "{items:?}"
    );
    assert_eq!(
        items.len(),
        3,
        "two good events, then the error, then the end"
    );
}

#[tokio::test]
async fn a_rehashed_forgery_breaks_the_chain_at_the_next_event() {
    // A tamperer who fixes the checksum still cannot fix the chain.
    let dir = tempfile::tempdir().unwrap();
    let notes: Vec<String> = (0..3).map(|n| format!("n{n}")).collect();
    fill_and_close(dir.path(), "customer-7", &notes).await;
    edit_stored_chunk(dir.path(), 1, |mut chunk| {
        // The chunk holds one record: `len ‖ crc ‖ protobuf`. Change the
        // payload "n1" to "X1" and fix the CRC.
        let at = chunk.windows(2).position(|w| w == b"n1").unwrap();
        chunk[at] = b'X';
        let crc = crc32fast::hash(&chunk[8..]).to_le_bytes();
        chunk[4..8].copy_from_slice(&crc);
        Some(chunk)
    });
    let store = open(dir.path(), Durability::None);
    let report = store.verify().await.unwrap();
    let brk = report.first_break.expect("a break");
    assert_eq!(brk.position, 1);
    assert!(brk.description.contains("hash mismatch"), "{brk:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_does_not_hold_back_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(SledConfig {
        subscription_buffer: 8,
        ..SledConfig::new(dir.path()).durability(Durability::None)
    })
    .unwrap();
    let mut sub = store
        .subscribe(SubscribeFrom::Position(0), EventFilter::all())
        .await
        .unwrap();
    // Nobody reads the subscription while 5,000 events are appended.
    for n in 0..50 {
        let events = (0..100)
            .map(|i| ProposedEvent::new("lead.scored", format!("{}", n * 100 + i)))
            .collect();
        tokio::time::timeout(
            Duration::from_secs(30),
            store.append("lead-1", ExpectedVersion::Any, events),
        )
        .await
        .expect("writers are never blocked by a subscriber")
        .unwrap();
    }
    let mut positions = Vec::new();
    while positions.len() < 5000 {
        match sub.next().await.unwrap().unwrap() {
            SubscriptionItem::Event(e) => positions.push(e.global_position),
            SubscriptionItem::CaughtUp { .. } => {}
        }
    }
    assert_eq!(positions, (0..5000).collect::<Vec<u64>>());
}

#[tokio::test]
async fn verify_reports_a_gap_in_positions() {
    let dir = tempfile::tempdir().unwrap();
    let notes: Vec<String> = (0..4).map(|n| format!("n{n}")).collect();
    fill_and_close(dir.path(), "lead-1", &notes).await;
    edit_stored_chunk(dir.path(), 1, |_| None);
    let store = open(dir.path(), Durability::None);
    let report = store.verify().await.unwrap();
    assert_eq!(report.gaps.len(), 1, "{report:?}");
    assert_eq!(report.gaps[0].position, 1);
    assert_eq!(report.events_checked, 3);
}
