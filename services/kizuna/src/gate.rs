//! A store wrapper that lets the server shut down while clients follow the log.
//!
//! A subscription never ends by itself, so a graceful shutdown that waits for
//! every in-flight RPC would wait for ever once a client runs `tail`. The
//! server therefore hands the gRPC service this wrapper instead of the store:
//! when shutdown begins, open subscriptions end with UNAVAILABLE (their
//! clients resume from the last position they saw, on this server's restart
//! or another node) while unary calls and bounded reads get the drain time to
//! finish; once the drain time is over, every further store call fails fast.

use async_trait::async_trait;
use futures::StreamExt;
use kizuna_eventlog::{
    AllSlice, AppendResult, Direction, EventFilter, EventStore, EventSubscription, ExpectedVersion,
    LogHead, ProposedEvent, RecordedEvent, StoreError, StoreResult, StreamAppend, StreamSlice,
    SubscribeFrom, VerifyReport,
};
use std::sync::Arc;
use tokio::sync::watch;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Taking requests.
    Serving,
    /// Shutting down: subscriptions end, in-flight calls may finish.
    Draining,
    /// The drain time is over: every call fails.
    Closed,
}

fn shutting_down() -> StoreError {
    StoreError::Unavailable("the server is shutting down; retry on another node or later".into())
}

/// An [`EventStore`] that follows the server's [`Phase`].
pub(crate) struct GatedStore {
    inner: Arc<dyn EventStore>,
    phase: watch::Receiver<Phase>,
}

impl GatedStore {
    /// Wraps `inner`; the returned sender moves the phase forward.
    pub(crate) fn new(inner: Arc<dyn EventStore>) -> (Self, watch::Sender<Phase>) {
        let (tx, phase) = watch::channel(Phase::Serving);
        (Self { inner, phase }, tx)
    }

    fn check(&self, at_most: Phase) -> StoreResult<()> {
        if *self.phase.borrow() <= at_most {
            Ok(())
        } else {
            Err(shutting_down())
        }
    }
}

#[async_trait]
impl EventStore for GatedStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> StoreResult<AppendResult> {
        self.check(Phase::Draining)?;
        self.inner.append(stream, expected, events).await
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> StoreResult<Vec<AppendResult>> {
        self.check(Phase::Draining)?;
        self.inner.append_multi(appends).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from_version: Option<u64>,
        limit: usize,
    ) -> StoreResult<StreamSlice> {
        self.check(Phase::Draining)?;
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
        self.check(Phase::Draining)?;
        self.inner.read_all(from_position, filter, limit).await
    }

    async fn read_event(&self, event_id: uuid::Uuid) -> StoreResult<Option<RecordedEvent>> {
        self.check(Phase::Draining)?;
        self.inner.read_event(event_id).await
    }

    async fn head(&self) -> StoreResult<LogHead> {
        self.check(Phase::Draining)?;
        self.inner.head().await
    }

    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> StoreResult<EventSubscription> {
        self.check(Phase::Serving)?;
        let inner = self.inner.subscribe(from, filter).await?;
        let phase = self.phase.clone();
        // Ends with one UNAVAILABLE error as soon as the phase leaves Serving,
        // even while the inner subscription is waiting for the next event.
        let gated = futures::stream::unfold(Some((inner, phase)), |state| async move {
            let (mut inner, mut phase) = state?;
            let next = tokio::select! {
                biased;
                _ = phase.wait_for(|p| *p != Phase::Serving) => None,
                item = inner.next() => Some(item),
            };
            match next {
                None => Some((Err(shutting_down()), None)),
                Some(item) => item.map(|item| (item, Some((inner, phase)))),
            }
        });
        Ok(gated.boxed())
    }

    async fn verify(&self) -> StoreResult<VerifyReport> {
        self.check(Phase::Draining)?;
        self.inner.verify().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kizuna_eventlog::{Durability, SledConfig, SledStore, SubscriptionItem};

    #[tokio::test]
    async fn subscriptions_end_when_draining_and_calls_fail_when_closed() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SledStore::open(SledConfig::new(dir.path()).durability(Durability::None)).unwrap();
        let (gated, phase) = GatedStore::new(Arc::new(store.clone()));
        let mut sub = gated
            .subscribe(SubscribeFrom::Position(0), EventFilter::all())
            .await
            .unwrap();
        assert!(matches!(
            sub.next().await,
            Some(Ok(SubscriptionItem::CaughtUp { next_position: 0 }))
        ));

        phase.send_replace(Phase::Draining);
        assert!(matches!(
            sub.next().await,
            Some(Err(StoreError::Unavailable(_)))
        ));
        assert!(sub.next().await.is_none());
        assert!(
            gated
                .subscribe(SubscribeFrom::Now, EventFilter::all())
                .await
                .is_err()
        );
        let event = ProposedEvent::new("lead.captured", "{}");
        gated
            .append("lead-1", ExpectedVersion::Any, vec![event])
            .await
            .expect("in-flight work may still finish while draining");

        phase.send_replace(Phase::Closed);
        assert!(matches!(
            gated.head().await,
            Err(StoreError::Unavailable(_))
        ));
        store.shutdown().await.unwrap();
    }
}
