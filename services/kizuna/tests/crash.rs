//! Crash test: `kizuna serve` is SIGKILLed at random moments while clients
//! append concurrently over gRPC; after each restart every acknowledged event
//! must be there, at the position it was acknowledged with, positions must be
//! gap-free and `verify` clean.
//!
//! The kill moment is chosen by a count of acknowledgements (random per round),
//! not by a timer, so the test does not depend on the machine's speed.
//! `KIZUNA_CRASH_KILLS` sets the number of rounds (default 5), and
//! `KIZUNA_CRASH_SEED` the random seed (printed, so a failure can be replayed).

use futures::StreamExt;
use kizuna_eventlog::{
    AppendResult, Direction, EventFilter, EventStore, ExpectedVersion, ProposedEvent, StoreError,
    StreamAppend,
};
use kizuna_eventlog_grpc::RemoteStore;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::process::Child;
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

mod support;

/// An append the server acknowledged.
#[derive(Debug, Clone)]
struct Acked {
    stream: String,
    event: ProposedEvent,
    position: u64,
    version: u64,
}

/// Records the events of `append` as acknowledged where `result` put them.
fn record_acked(acked: &mut Vec<Acked>, append: &StreamAppend, result: &AppendResult) {
    assert_eq!(result.stream, append.stream);
    for (i, event) in append.events.iter().enumerate() {
        acked.push(Acked {
            stream: append.stream.clone(),
            event: event.clone(),
            position: result.first_position + i as u64,
            version: result.first_version + i as u64,
        });
    }
}

async fn spawn_server(data_dir: &Path) -> (Child, String) {
    support::spawn_serve([
        std::ffi::OsStr::new("--durability"),
        std::ffi::OsStr::new("fsync"),
        std::ffi::OsStr::new("--data-dir"),
        data_dir.as_os_str(),
    ])
    .await
}

async fn connect(endpoint: &str) -> RemoteStore {
    // The server prints its address only once it accepts connections.
    RemoteStore::connect(endpoint.to_string())
        .await
        .expect("connect to the server that just said it listens")
}

/// Appends until an error (the kill) ends the run. Single events, batches and
/// two-stream appends, on a few shared streams and one of its own.
async fn append_until_killed(
    store: RemoteStore,
    worker: usize,
    seed: u64,
    acked: Arc<Mutex<Vec<Acked>>>,
    in_doubt: Arc<Mutex<Vec<StreamAppend>>>,
    acks: mpsc::UnboundedSender<()>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let own = format!("crash-w{worker}-{}", Uuid::now_v7());
    loop {
        let stream_of = |rng: &mut StdRng| {
            if rng.random_bool(0.5) {
                own.clone()
            } else {
                format!("shared-{}", rng.random_range(0..4))
            }
        };
        let mut appends = vec![StreamAppend {
            stream: stream_of(&mut rng),
            expected: ExpectedVersion::Any,
            events: (0..rng.random_range(1..=5))
                .map(|i| {
                    ProposedEvent::new("crash.appended", format!("{{\"w\":{worker},\"i\":{i}}}"))
                })
                .collect(),
        }];
        if rng.random_bool(0.2) {
            let other = format!("pair-{}", Uuid::now_v7());
            appends.push(StreamAppend {
                stream: other,
                expected: ExpectedVersion::NoStream,
                events: vec![ProposedEvent::new("crash.paired", "{}")],
            });
        }
        let result = if appends.len() == 1 {
            let a = &appends[0];
            store
                .append(&a.stream, a.expected, a.events.clone())
                .await
                .map(|r| vec![r])
        } else {
            store.append_multi(appends.clone()).await
        };
        match result {
            Ok(results) => {
                let mut acked = acked.lock().await;
                for (append, r) in appends.iter().zip(&results) {
                    record_acked(&mut acked, append, r);
                }
                let _ = acks.send(());
            }
            Err(e) => {
                // Sent but not acknowledged: it may or may not have landed.
                // Whatever the error says, the retry after the restart must
                // succeed, which is checked there.
                if !matches!(e, StoreError::Unavailable(_)) {
                    eprintln!("worker {worker}: append failed during the crash with: {e}");
                }
                in_doubt.lock().await.extend(appends);
                return;
            }
        }
    }
}

/// Reads the whole log and checks it against what was acknowledged; returns
/// how many events it holds. The server's own background work (the trigger
/// processor's checkpoints) may append while it reads, so the read goes on
/// until a page comes back empty rather than stopping at the head read first.
async fn check_log(store: &RemoteStore, acked: &[Acked]) -> u64 {
    let head = store.head().await.expect("head");
    let mut log = Vec::new();
    let mut from = 0;
    loop {
        let slice = store
            .read_all(from, &EventFilter::all(), 1000)
            .await
            .expect("read_all");
        if slice.events.is_empty() {
            break;
        }
        from = slice.next_position;
        log.extend(slice.events);
    }
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.global_position, i as u64, "global positions gap-free");
    }
    assert!(
        log.len() as u64 >= head.next_position,
        "the log holds {} events below its head {}",
        log.len(),
        head.next_position
    );
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for e in &log {
        let next = versions.entry(&e.stream).or_insert(0);
        assert_eq!(e.stream_version, *next, "stream {} gap-free", e.stream);
        *next += 1;
    }
    for a in acked {
        let e = log
            .get(a.position as usize)
            .unwrap_or_else(|| panic!("acknowledged event at {} lost", a.position));
        assert!(
            e.matches(&a.stream, &a.event),
            "acknowledged event at {} differs",
            a.position
        );
        assert_eq!(e.stream_version, a.version);
    }
    let report = store.verify().await.expect("verify");
    assert!(report.is_ok(), "verify after crash: {report:?}");
    log.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_sigkill() {
    let kills: usize = std::env::var("KIZUNA_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("KIZUNA_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("crash test: {kills} kills, KIZUNA_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let mut total_in_doubt = 0;
    for round in 0..kills {
        let (mut child, endpoint) = spawn_server(dir.path()).await;
        let store = connect(&endpoint).await;
        let events_before = check_log(&store, &acked.lock().await).await;
        let in_doubt = Arc::new(Mutex::new(Vec::new()));
        let (acks, mut acked_rx) = mpsc::unbounded_channel();
        let kill_after = rng.random_range(10..400);
        let workers: Vec<_> = (0..8)
            .map(|w| {
                tokio::spawn(append_until_killed(
                    store.clone(),
                    w,
                    rng.random(),
                    acked.clone(),
                    in_doubt.clone(),
                    acks.clone(),
                ))
            })
            .collect();
        drop(acks);
        // Wait for the chosen number of acknowledgements, then kill -9.
        let mut seen = 0;
        while seen < kill_after {
            tokio::select! {
                ack = acked_rx.recv() => match ack {
                    Some(()) => seen += 1,
                    None => panic!("every worker stopped before the kill"),
                },
                status = child.wait() => panic!("server exited by itself: {status:?}"),
            }
        }
        child.start_kill().expect("SIGKILL");
        let status = child.wait().await.expect("wait for the killed server");
        assert!(!status.success());
        for w in workers {
            w.await.expect("worker");
        }

        let (mut child, endpoint) = spawn_server(dir.path()).await;
        let store = connect(&endpoint).await;
        let events_after = check_log(&store, &acked.lock().await).await;
        assert!(
            events_after > events_before,
            "round {round} appended nothing"
        );
        // Retrying what was in doubt is safe: each retry either finds its
        // events (and returns their places) or appends them now, never twice.
        let in_doubt = std::mem::take(&mut *in_doubt.lock().await);
        total_in_doubt += in_doubt.len();
        for append in in_doubt {
            match store.append_multi(vec![append.clone()]).await {
                Ok(results) => {
                    let r = &results[0];
                    let slice = store
                        .read_stream(
                            &append.stream,
                            Direction::Forward,
                            Some(r.first_version),
                            append.events.len(),
                        )
                        .await
                        .expect("read retried");
                    for (e, p) in slice.events.iter().zip(&append.events) {
                        assert!(e.matches(&append.stream, p));
                    }
                    record_acked(&mut *acked.lock().await, &append, r);
                }
                // A two-stream append whose NoStream stream now exists can
                // only be the same append already written, which is handled
                // above as a retry; any conflict here is a real failure.
                Err(e) => panic!("retry of an in-doubt append failed: {e}"),
            }
        }
        check_log(&store, &acked.lock().await).await;
        child.start_kill().expect("stop");
        let _ = child.wait().await;
        eprintln!(
            "round {round}: killed after {kill_after} acks; {} events acknowledged so far",
            acked.lock().await.len()
        );
    }
    eprintln!("crash test: {kills} kills survived, {total_in_doubt} in-doubt appends retried");
    // The log is readable from start to end through a subscription too.
    let (mut child, endpoint) = spawn_server(dir.path()).await;
    let store = connect(&endpoint).await;
    let head = store.head().await.expect("head");
    let mut sub = store
        .subscribe(
            kizuna_eventlog::SubscribeFrom::Position(0),
            EventFilter::all(),
        )
        .await
        .expect("subscribe");
    let mut n = 0;
    while let Some(item) = sub.next().await {
        match item.expect("item") {
            kizuna_eventlog::SubscriptionItem::Event(e) => {
                assert_eq!(e.global_position, n);
                n += 1;
            }
            kizuna_eventlog::SubscriptionItem::CaughtUp { .. } => break,
        }
    }
    assert_eq!(n, head.next_position);
    child.start_kill().expect("stop");
    let _ = child.wait().await;
}
