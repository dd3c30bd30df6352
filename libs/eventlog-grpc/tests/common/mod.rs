//! A log node for tests: `EventLogService` over a fresh `SledStore` on an
//! ephemeral port.

use kizuna_eventlog::{Durability, EventStore, SledConfig, SledStore};
use kizuna_eventlog_grpc::EventLogService;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// A running server; dropping it stops the server and removes the data.
pub struct Node {
    pub addr: SocketAddr,
    pub store: SledStore,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SledStore::open(SledConfig::new(dir.path()).durability(Durability::None)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = EventLogService::new(Arc::new(store.clone()) as Arc<dyn EventStore>);
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service.into_server())
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        Self {
            addr,
            store,
            _dir: dir,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
    }
}
