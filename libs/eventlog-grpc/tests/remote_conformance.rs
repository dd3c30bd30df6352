//! The backend conformance suite, run against a `RemoteStore` talking to an
//! `EventLogService` over a real TCP socket: the remote store must keep the
//! same contract as the embedded one it fronts.

mod common;

use kizuna_eventlog::EventStore;
use kizuna_eventlog_grpc::RemoteStore;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remote_store_passes_the_conformance_suite() {
    let node = common::Node::start().await;
    let remote = RemoteStore::connect(node.url()).await.unwrap();
    kizuna_eventlog::conformance::run_all(Arc::new(remote.clone()) as Arc<dyn EventStore>).await;
    // The remote view and the store behind it agree.
    assert_eq!(
        remote.head().await.unwrap(),
        node.store.head().await.unwrap()
    );
    assert!(node.store.verify().await.unwrap().is_ok());
}
