//! The command loop against a real SledStore: replay by command id, deciding
//! again on conflict, the caller's expected version, and the Send-ness that
//! tonic handlers need.

use kizuna_command::{CommandError, CommandMeta, CommandRunner, Plan, event_id};
use kizuna_domain::event::EventMessage;
use kizuna_domain::{Context, Decider, DomainError, Upcasters};
use kizuna_eventlog::{
    Durability, EventStore, ExpectedVersion, SledConfig, SledStore, StoreError, SystemClock,
};
use std::sync::Arc;
use uuid::Uuid;

// A counter with a message of its own, declared here rather than in proto/.
struct Counter;

#[derive(Clone, PartialEq, prost::Message)]
struct Bumped {
    #[prost(uint32, tag = "1")]
    by: u32,
    #[prost(string, tag = "2")]
    id: String,
}

kizuna_domain::event_messages! { Bumped => "counter.bumped" version 1 }

kizuna_domain::event_enum! {
    /// The counter's one event.
    enum CounterEvent {
        /// Incremented by `by`.
        Bumped(Bumped),
    }
}

#[derive(Debug)]
enum CounterCommand {
    Bump(usize),
    FailIfAbove(usize),
    /// Bumps by 1, and once more by 1 while the counter is still 0: the
    /// first run appends two events, a retry decides only the first.
    BumpTwiceFromZero,
}

impl Decider for Counter {
    type State = usize;
    type Command = CounterCommand;
    type Event = CounterEvent;

    fn decide(
        state: &usize,
        command: &CounterCommand,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<CounterEvent>, DomainError> {
        match command {
            CounterCommand::Bump(n) => Ok(vec![CounterEvent::Bumped(Bumped {
                id: ctx.new_id().to_string(),
                by: u32::try_from(*n).unwrap_or(u32::MAX),
            })]),
            CounterCommand::BumpTwiceFromZero => {
                let bump = |id: Uuid| {
                    CounterEvent::Bumped(Bumped {
                        id: id.to_string(),
                        by: 1,
                    })
                };
                let first = bump(Uuid::from_u128(1));
                Ok(if *state == 0 {
                    vec![first, bump(Uuid::from_u128(2))]
                } else {
                    vec![first]
                })
            }
            CounterCommand::FailIfAbove(max) if state > max => {
                Err(DomainError::rejected("TOO_BIG", "over"))
            }
            CounterCommand::FailIfAbove(_) => Ok(vec![]),
        }
    }

    fn evolve(state: usize, event: &CounterEvent) -> usize {
        match event {
            CounterEvent::Bumped(e) => state + e.by as usize,
        }
    }
}

fn runner(dir: &std::path::Path) -> (CommandRunner, Arc<dyn EventStore>) {
    let store: Arc<dyn EventStore> =
        Arc::new(SledStore::open(SledConfig::new(dir).durability(Durability::None)).expect("open"));
    (
        CommandRunner::new(store.clone(), Arc::new(SystemClock), Upcasters::new()),
        store,
    )
}

#[tokio::test]
async fn a_retried_command_returns_its_first_result_and_appends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runner, store) = runner(dir.path());
    let stream = format!("counter-{}", Uuid::now_v7());
    let meta = CommandMeta::new(Uuid::now_v7());
    let first = runner
        .execute::<Counter>(&meta, &stream, None, &CounterCommand::Bump(2))
        .await
        .expect("first");
    assert!(!first.replayed);
    assert_eq!(first.event_types, [<Bumped as EventMessage>::EVENT_TYPE]);
    let recorded = store
        .read_event(event_id(meta.command_id, 0))
        .await
        .expect("read")
        .expect("present");
    assert_eq!(recorded.stream, stream);
    assert_eq!(recorded.metadata.causation_id, meta.command_id.to_string());

    // Retried later (another "now"): same result, replayed, nothing new.
    let again = runner
        .execute::<Counter>(&meta, &stream, None, &CounterCommand::Bump(2))
        .await
        .expect("retry");
    assert!(again.replayed);
    assert_eq!(
        again.streams[0].first_position,
        first.streams[0].first_position
    );
    assert_eq!(store.head().await.expect("head").next_position, 1);

    // A retry that would now be rejected still returns the first result.
    let meta2 = CommandMeta::new(Uuid::now_v7());
    runner
        .execute::<Counter>(&meta2, &stream, None, &CounterCommand::Bump(1))
        .await
        .expect("bump");
    let loaded = runner.load::<Counter>(&stream).await.expect("load");
    assert_eq!((loaded.state, loaded.version), (3, Some(1)));
    let rejected = runner
        .execute::<Counter>(
            &CommandMeta::new(Uuid::now_v7()),
            &stream,
            None,
            &CounterCommand::FailIfAbove(2),
        )
        .await;
    assert!(matches!(
        rejected,
        Err(CommandError::Domain(DomainError::Rejected {
            reason: "TOO_BIG",
            ..
        }))
    ));
}

#[tokio::test]
async fn concurrent_commands_on_one_stream_are_decided_again_and_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runner, store) = runner(dir.path());
    let stream = format!("counter-{}", Uuid::now_v7());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let runner = runner.clone().with_max_attempts(64);
            let stream = stream.clone();
            // tokio::spawn proves the command future is Send, as tonic needs.
            tokio::spawn(async move {
                runner
                    .execute::<Counter>(
                        &CommandMeta::new(Uuid::now_v7()),
                        &stream,
                        None,
                        &CounterCommand::Bump(1),
                    )
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("command");
    }
    let loaded = runner.load::<Counter>(&stream).await.expect("load");
    assert_eq!((loaded.state, loaded.version), (16, Some(15)));
    assert_eq!(store.head().await.expect("head").next_position, 16);
}

#[tokio::test]
async fn a_stale_expected_version_is_aborted_without_deciding_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runner, _store) = runner(dir.path());
    let stream = format!("counter-{}", Uuid::now_v7());
    for _ in 0..2 {
        runner
            .execute::<Counter>(
                &CommandMeta::new(Uuid::now_v7()),
                &stream,
                None,
                &CounterCommand::Bump(1),
            )
            .await
            .expect("bump");
    }
    let mut stale = CommandMeta::new(Uuid::now_v7());
    stale.expected_version = Some(0);
    match runner
        .execute::<Counter>(&stale, &stream, None, &CounterCommand::Bump(1))
        .await
    {
        Err(CommandError::Store(StoreError::WrongExpectedVersion {
            expected, actual, ..
        })) => {
            assert_eq!((expected, actual), (ExpectedVersion::Exact(0), Some(1)));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let mut current = CommandMeta::new(Uuid::now_v7());
    current.expected_version = Some(1);
    let ok = runner
        .execute::<Counter>(&current, &stream, None, &CounterCommand::Bump(1))
        .await
        .expect("current");
    assert_eq!(ok.streams[0].last_version, 2);
}

#[tokio::test]
async fn a_no_op_reports_no_streams() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runner, store) = runner(dir.path());
    let stream = format!("counter-{}", Uuid::now_v7());
    let done = runner
        .execute::<Counter>(
            &CommandMeta::new(Uuid::now_v7()),
            &stream,
            None,
            &CounterCommand::FailIfAbove(5),
        )
        .await
        .expect("no-op");
    assert!(done.streams.is_empty() && !done.replayed);
    assert_eq!(store.head().await.expect("head").next_position, 0);
    let _ = Plan::new();
}

#[tokio::test]
async fn a_retry_that_decides_fewer_events_still_returns_the_whole_first_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn EventStore> = Arc::new(
        SledStore::open(SledConfig::new(dir.path()).durability(Durability::None)).expect("open"),
    );
    // A fixed clock makes the retried first event byte-identical to the original.
    let clock = Arc::new(kizuna_eventlog::ManualClock::new(
        kizuna_eventlog::Timestamp::from_unix_nanos(1),
    ));
    let runner = CommandRunner::new(store.clone(), clock, Upcasters::new());
    let stream = format!("counter-{}", Uuid::now_v7());
    let meta = CommandMeta::new(Uuid::now_v7());
    let first = runner
        .execute::<Counter>(&meta, &stream, None, &CounterCommand::BumpTwiceFromZero)
        .await
        .expect("first");
    assert_eq!(first.event_types.len(), 2);
    let again = runner
        .execute::<Counter>(&meta, &stream, None, &CounterCommand::BumpTwiceFromZero)
        .await
        .expect("retry");
    assert!(again.replayed);
    assert_eq!(
        again.streams,
        first
            .streams
            .iter()
            .map(|s| kizuna_eventlog::AppendResult {
                already_existed: true,
                ..s.clone()
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(again.event_types, first.event_types);
    assert_eq!(store.head().await.expect("head").next_position, 2);
}

#[tokio::test]
async fn execute_new_creates_without_reading_and_falls_back_when_the_stream_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runner, store) = runner(dir.path());
    let stream = format!("counter-{}", Uuid::now_v7());
    let created = runner
        .execute_new::<Counter>(
            &CommandMeta::new(Uuid::now_v7()),
            &stream,
            None,
            &CounterCommand::Bump(1),
        )
        .await
        .expect("create");
    assert_eq!(created.streams[0].first_version, 0);
    // The stream exists now: the first attempt's NoStream append is refused,
    // and the command is decided again on the real state.
    let next = runner
        .execute_new::<Counter>(
            &CommandMeta::new(Uuid::now_v7()),
            &stream,
            None,
            &CounterCommand::Bump(2),
        )
        .await
        .expect("decided again");
    assert_eq!(next.streams[0].first_version, 1);
    assert_eq!(
        runner.load::<Counter>(&stream).await.expect("load").state,
        3
    );
    // A rejection on the real state is reported as such.
    let rejected = runner
        .execute_new::<Counter>(
            &CommandMeta::new(Uuid::now_v7()),
            &stream,
            None,
            &CounterCommand::FailIfAbove(1),
        )
        .await;
    assert!(matches!(
        rejected,
        Err(CommandError::Domain(DomainError::Rejected {
            reason: "TOO_BIG",
            ..
        }))
    ));
    assert_eq!(store.head().await.expect("head").next_position, 2);
}

#[derive(Debug, Clone)]
enum CacheStep {
    /// Runner `by` (0 or 1, each with its own cache, as two processes)
    /// bumps stream `stream` by `n`.
    Bump { by: usize, stream: usize, n: usize },
    /// Runner 0 loads `stream`.
    Load { stream: usize },
}

fn cache_step() -> impl proptest::strategy::Strategy<Value = CacheStep> {
    use proptest::prelude::*;
    prop_oneof![
        (0..2_usize, 0..3_usize, 1..5_usize).prop_map(|(by, stream, n)| CacheStep::Bump {
            by,
            stream,
            n
        }),
        (0..3_usize).prop_map(|stream| CacheStep::Load { stream }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Whatever the other writer appended and whatever the cache evicted (it
    /// holds 2 of the 3 streams), a load through the state cache equals a
    /// fold of the whole stream, and every bump lands.
    #[test]
    fn a_cached_load_equals_a_fold_of_the_whole_stream(
        steps in proptest::collection::vec(cache_step(), 1..40)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let (base, store) = runner(dir.path());
            let writers = [
                base.clone().with_state_cache(2),
                CommandRunner::new(store.clone(), Arc::new(SystemClock), Upcasters::new()),
            ];
            let uncached = base.with_state_cache(0);
            let streams: Vec<String> = (0..3).map(|i| format!("counter-{i}")).collect();
            let mut expected = [0_usize; 3];
            for step in steps {
                match step {
                    CacheStep::Bump { by, stream, n } => {
                        writers[by]
                            .execute::<Counter>(
                                &CommandMeta::new(Uuid::now_v7()),
                                &streams[stream],
                                None,
                                &CounterCommand::Bump(n),
                            )
                            .await
                            .expect("bump");
                        expected[stream] += n;
                    }
                    CacheStep::Load { stream } => {
                        let cached = writers[0].load::<Counter>(&streams[stream]).await.expect("load");
                        let fresh = uncached.load::<Counter>(&streams[stream]).await.expect("load");
                        assert_eq!((cached.state, cached.version), (fresh.state, fresh.version));
                        assert_eq!(cached.state, expected[stream]);
                    }
                }
            }
            for (stream, want) in streams.iter().zip(expected) {
                let cached = writers[0].load::<Counter>(stream).await.expect("load");
                assert_eq!(cached.state, want);
            }
        });
    }
}
