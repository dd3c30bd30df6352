//! The duplicate index's waiting rules, made deterministic with a log whose
//! subscriptions the test can hold back, end, and count.
//!
//! These tests build their own server over that log, so they cannot use the
//! swappable `start_server` of `api.rs`: read-your-writes is only provable
//! when the index is known to lag.

use futures::StreamExt as _;
use kizuna_command::CommandRunner;
use kizuna_domain::pb;
use kizuna_eventlog::{
    AllSlice, AppendResult, Clock, Direction, Durability, EventFilter, EventStore,
    EventSubscription, ExpectedVersion, LogHead, ManualClock, ProposedEvent, RecordedEvent,
    SledConfig, SledStore, StoreResult, StreamAppend, StreamSlice, SubscribeFrom, Timestamp,
    VerifyReport,
};
use kizuna_lead::LeadConfig;
use kizuna_lead::duplicates::{DuplicateIndex, IndexError, Party};
use pb::lead_service_client::LeadServiceClient;
use prost::Message as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use uuid::Uuid;

/// Bound on every wait in these tests; none of them reaches it when correct.
const BOUND: Duration = Duration::from_secs(10);

/// A SledStore whose subscriptions deliver only while the gate is open, end
/// when told to, and are counted while alive; `read_all` calls are counted.
#[derive(Clone)]
struct GatedStore {
    inner: Arc<SledStore>,
    gate: watch::Sender<bool>,
    ended: watch::Sender<bool>,
    live_subscriptions: watch::Sender<usize>,
    read_all_calls: watch::Sender<usize>,
}

struct Alive(watch::Sender<usize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl GatedStore {
    fn open(dir: &std::path::Path) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp::from_unix_nanos(
            1_767_225_600_000_000_000,
        )));
        let inner = SledStore::open(
            SledConfig::new(dir)
                .durability(Durability::None)
                .clock(clock),
        )
        .expect("open");
        Self {
            inner: Arc::new(inner),
            gate: watch::channel(true).0,
            ended: watch::channel(false).0,
            live_subscriptions: watch::channel(0).0,
            read_all_calls: watch::channel(0).0,
        }
    }

    fn hold(&self) {
        self.gate.send_replace(false);
    }

    fn release(&self) {
        self.gate.send_replace(true);
    }
}

#[async_trait::async_trait]
impl EventStore for GatedStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> StoreResult<AppendResult> {
        self.inner.append(stream, expected, events).await
    }
    async fn append_multi(&self, appends: Vec<StreamAppend>) -> StoreResult<Vec<AppendResult>> {
        self.inner.append_multi(appends).await
    }
    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from_version: Option<u64>,
        limit: usize,
    ) -> StoreResult<StreamSlice> {
        self.inner
            .read_stream(stream, direction, from_version, limit)
            .await
    }
    async fn read_all(
        &self,
        from_position: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> StoreResult<AllSlice> {
        self.read_all_calls.send_modify(|n| *n += 1);
        self.inner.read_all(from_position, filter, limit).await
    }
    async fn read_event(&self, event_id: Uuid) -> StoreResult<Option<RecordedEvent>> {
        self.inner.read_event(event_id).await
    }
    async fn head(&self) -> StoreResult<LogHead> {
        self.inner.head().await
    }
    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> StoreResult<EventSubscription> {
        let inner = self.inner.subscribe(from, filter).await?;
        self.live_subscriptions.send_modify(|n| *n += 1);
        let alive = Arc::new(Alive(self.live_subscriptions.clone()));
        let gate = self.gate.subscribe();
        let mut ended = self.ended.subscribe();
        let end = async move {
            let _ = ended.wait_for(|e| *e).await;
        };
        Ok(inner
            .take_until(Box::pin(end))
            .then(move |item| {
                let mut gate = gate.clone();
                let _alive = alive.clone();
                async move {
                    let _ = gate.wait_for(|open| *open).await;
                    item
                }
            })
            .boxed())
    }
    async fn verify(&self) -> StoreResult<VerifyReport> {
        self.inner.verify().await
    }
}

fn lead_captured(id: Uuid, email: &str) -> ProposedEvent {
    ProposedEvent::new(
        "lead.captured",
        pb::LeadCaptured {
            lead_id: id.to_string(),
            channel: pb::LeadChannel::Web.into(),
            contact: Some(pb::ContactData {
                email: email.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .with_id(Uuid::now_v7())
}

async fn capture_raw(store: &GatedStore, email: &str) -> Uuid {
    let id = Uuid::now_v7();
    let mut event = lead_captured(id, email);
    event.schema_version = 2;
    store
        .append(
            &format!("lead-{id}"),
            ExpectedVersion::NoStream,
            vec![event],
        )
        .await
        .expect("append");
    id
}

async fn head(store: &GatedStore) -> u64 {
    store.head().await.expect("head").next_position
}

#[tokio::test]
async fn find_duplicate_leads_waits_for_the_index_to_reach_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = GatedStore::open(dir.path());
    let shared: Arc<dyn EventStore> = Arc::new(store.clone());
    let runner = CommandRunner::new(
        shared,
        Arc::new(kizuna_eventlog::SystemClock),
        kizuna_domain::upcasters(),
    );
    let service = kizuna_lead::service(
        runner,
        LeadConfig {
            default_region: "JP".parse().expect("JP"),
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    let mut client = LeadServiceClient::connect(endpoint).await.expect("connect");

    let a = capture_raw(&store, "same@example.jp").await;
    // The index is held back, then a duplicate of `a` is written.
    store.hold();
    let b = capture_raw(&store, "same@example.jp").await;
    let calls_before = *store.read_all_calls.borrow();
    let mut find = Box::pin(client.find_duplicate_leads(pb::FindDuplicateLeadsRequest {
        query: Some(pb::find_duplicate_leads_request::Query::LeadId(
            a.to_string(),
        )),
    }));
    let mut calls = store.read_all_calls.subscribe();
    tokio::select! {
        answered = &mut find => {
            panic!("answered while the index was held back: {answered:?}");
        }
        seen = tokio::time::timeout(BOUND, calls.wait_for(|n| *n > calls_before)) => {
            // The request is waiting on the index (it asked the log what is
            // pending); let the index go on.
            seen.expect("the request checks what the index still lacks").expect("watch");
        }
    }
    store.release();
    let found = tokio::time::timeout(BOUND, find)
        .await
        .expect("answers once the index catches up")
        .expect("find")
        .into_inner();
    let ids: Vec<_> = found.candidates.iter().map(|c| c.party.clone()).collect();
    assert_eq!(
        ids,
        [Some(pb::duplicate_candidate::Party::LeadId(b.to_string()))]
    );
    assert_eq!(found.as_of_position, head(&store).await);

    // Shutting the server down ends the index's subscription.
    drop(client);
    shutdown.send(()).expect("server running");
    server.await.expect("server stops");
    let mut live = store.live_subscriptions.subscribe();
    tokio::time::timeout(BOUND, live.wait_for(|n| *n == 0))
        .await
        .expect("the index task lets go of its subscription")
        .expect("watch");
}

#[tokio::test]
async fn a_held_back_index_is_behind_and_an_ended_one_is_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = GatedStore::open(dir.path());
    let a = capture_raw(&store, "a@example.jp").await;
    let index = DuplicateIndex::spawn(Arc::new(store.clone()), kizuna_domain::upcasters());
    index
        .wait_until(head(&store).await, BOUND)
        .await
        .expect("catches up");
    assert_eq!(
        index
            .find(
                &pb::ContactData {
                    email: "a@example.jp".into(),
                    ..Default::default()
                },
                None
            )
            .iter()
            .map(|c| c.party)
            .collect::<Vec<_>>(),
        [Party::Lead(a)]
    );

    store.hold();
    capture_raw(&store, "b@example.jp").await;
    // The gate never opens during this wait, so the short limit is the only
    // way out: no race, just a bound.
    match index
        .wait_until(head(&store).await, Duration::from_millis(20))
        .await
    {
        Err(IndexError::Behind { wanted, .. }) => assert_eq!(wanted, head(&store).await),
        other => panic!("expected Behind, got {other:?}"),
    }

    store.ended.send_replace(true);
    store.release();
    let mut live = store.live_subscriptions.subscribe();
    tokio::time::timeout(BOUND, live.wait_for(|n| *n == 0))
        .await
        .expect("the subscription ends")
        .expect("watch");
    capture_raw(&store, "c@example.jp").await;
    match tokio::time::timeout(BOUND, index.wait_until(head(&store).await, BOUND)).await {
        Ok(Err(IndexError::Stopped)) => {}
        other => panic!("expected Stopped, got {other:?}"),
    }
}
