//! Serving a tonic router on 127.0.0.1:0 in this process, and connecting to it.
//!
//! The echo baseline and the gRPC workloads use these same helpers, so that
//! they differ only in the service: same runtime (server and clients share the
//! machine's cores), same HTTP/2 settings, same number of connections.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::Router;
use tonic::transport::{Channel, Endpoint};

/// A running in-process server.
pub struct Server {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Binds 127.0.0.1:0 and serves `router` on a tokio task.
pub async fn serve(router: Router) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = stopped.await;
    }));
    Ok(Server { addr, stop, task })
}

impl Server {
    /// Stops the server; drop every channel to it first, or this waits for
    /// them (up to a few seconds) before it gives up on a graceful stop.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
            Ok(joined) => Ok(joined.context("server task panicked")??),
            Err(_) => {
                task.abort();
                Ok(())
            }
        }
    }
}

/// `n` channels to `addr`, each its own HTTP/2 connection.
pub async fn connect(addr: SocketAddr, n: usize) -> Result<Vec<Channel>> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true);
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        channels.push(endpoint.connect().await?);
    }
    Ok(channels)
}
