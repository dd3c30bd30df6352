//! `RemoteStore`: the [`EventStore`] trait spoken over gRPC to a log node.
//!
//! Services code against `EventStore`; with this client the log can live in
//! another process without them noticing. It hides the RPCs' paging and caps
//! (a stream read larger than one page becomes several calls) and turns every
//! status back into the [`StoreError`] the remote store raised, so errors are
//! never swallowed nor blurred into a generic failure.

use crate::convert;
use crate::server::{MAX_MESSAGE_BYTES, MAX_READ_STREAM_LIMIT};
use crate::status::store_error_from_status;
use futures::StreamExt;
use kizuna_eventlog::{
    AllSlice, AppendResult, Direction, EventFilter, EventStore, EventSubscription, ExpectedVersion,
    LogHead, ProposedEvent, RecordedEvent, StoreError, StoreResult, StreamAppend, StreamSlice,
    SubscribeFrom, SubscriptionItem, VerifyReport,
};
use kizuna_proto::v1;
use kizuna_proto::v1::event_log_client::EventLogClient;
use tonic::transport::{Channel, Endpoint};

/// An [`EventStore`] that is a remote `kizuna.v1.EventLog` service. Cheap to
/// clone; clones share one connection.
#[derive(Debug, Clone)]
pub struct RemoteStore {
    client: EventLogClient<Channel>,
}

/// A response the server should never send: a server fault, so `Unavailable`.
fn malformed(e: StoreError) -> StoreError {
    StoreError::Unavailable(format!("malformed response from the event log: {e}"))
}

impl RemoteStore {
    /// Connects to the service at `endpoint`, e.g. `http://127.0.0.1:50051`.
    /// A malformed endpoint is `InvalidArgument { field: "endpoint" }`; an
    /// unreachable one is `Unavailable`.
    pub async fn connect(endpoint: impl Into<String>) -> StoreResult<Self> {
        let endpoint = endpoint.into();
        let channel = Endpoint::from_shared(endpoint.clone())
            .map_err(|e| StoreError::invalid("endpoint", format!("{endpoint:?}: {e}")))?
            .connect()
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to {endpoint}: {e}")))?;
        Ok(Self::from_channel(channel))
    }

    /// A store over an existing channel (e.g. one with TLS or timeouts set).
    pub fn from_channel(channel: Channel) -> Self {
        Self {
            client: EventLogClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        }
    }
}

#[async_trait::async_trait]
impl EventStore for RemoteStore {
    #[tracing::instrument(level = "debug", name = "RemoteStore.append", skip_all, fields(stream = %stream))]
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> StoreResult<AppendResult> {
        let request = v1::AppendRequest {
            stream: stream.to_owned(),
            expected_version: Some(convert::expected_version_to_proto(expected)),
            events: events
                .into_iter()
                .map(convert::proposed_event_to_proto)
                .collect(),
        };
        let response = self
            .client
            .clone()
            .append(request)
            .await
            .map_err(store_error_from_status)?
            .into_inner();
        response
            .result
            .map(convert::append_result_from_proto)
            .ok_or_else(|| malformed(StoreError::invalid("result", "is missing")))
    }

    #[tracing::instrument(level = "debug", name = "RemoteStore.append_multi", skip_all, fields(streams = appends.len()))]
    async fn append_multi(&self, appends: Vec<StreamAppend>) -> StoreResult<Vec<AppendResult>> {
        let request = v1::AppendMultiRequest {
            appends: appends
                .into_iter()
                .map(convert::stream_append_to_proto)
                .collect(),
        };
        let response = self
            .client
            .clone()
            .append_multi(request)
            .await
            .map_err(store_error_from_status)?
            .into_inner();
        Ok(response
            .results
            .into_iter()
            .map(convert::append_result_from_proto)
            .collect())
    }

    #[tracing::instrument(level = "debug", name = "RemoteStore.read_stream", skip_all, fields(stream = %stream))]
    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from_version: Option<u64>,
        limit: usize,
    ) -> StoreResult<StreamSlice> {
        let mut client = self.client.clone();
        let backward = direction == Direction::Backward;
        let mut events = Vec::new();
        let mut from = from_version;
        loop {
            // The wire cannot ask for 0 events (0 means the default): ask for
            // one and drop it, which still answers the stream's last version.
            let want = (limit - events.len()).clamp(1, MAX_READ_STREAM_LIMIT as usize);
            let request = v1::ReadStreamRequest {
                stream: stream.to_owned(),
                from_version: from.unwrap_or(0),
                backward,
                from_end: backward && from.is_none(),
                limit: u32::try_from(want).unwrap_or(MAX_READ_STREAM_LIMIT),
            };
            let response = client
                .read_stream(request)
                .await
                .map_err(store_error_from_status)?
                .into_inner();
            let page = convert::recorded_events_from_proto(response.events, "events")
                .map_err(malformed)?;
            let got = page.len();
            events.extend(page.into_iter().take(limit - events.len()));
            match response.next_version {
                // More may follow and the caller wants more: next page. A
                // multi-page read reports the newest last version seen.
                Some(next) if got > 0 && events.len() < limit => from = Some(next),
                _ => {
                    return Ok(StreamSlice {
                        events,
                        last_version: response.last_version,
                    });
                }
            }
        }
    }

    #[tracing::instrument(level = "debug", name = "RemoteStore.read_all", skip_all, fields(from_position = from_position))]
    async fn read_all(
        &self,
        from_position: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> StoreResult<AllSlice> {
        if limit == 0 {
            // On the wire 0 means "up to the head"; the trait means no events.
            filter.validate()?;
            return Ok(AllSlice {
                events: Vec::new(),
                next_position: from_position,
            });
        }
        let request = v1::ReadAllRequest {
            from_position,
            filter: Some(convert::event_filter_to_proto(filter)),
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
        };
        let mut chunks = self
            .client
            .clone()
            .read_all(request)
            .await
            .map_err(store_error_from_status)?
            .into_inner();
        let mut events = Vec::new();
        let mut next_position = from_position;
        while let Some(chunk) = chunks.message().await.map_err(store_error_from_status)? {
            events.extend(
                convert::recorded_events_from_proto(chunk.events, "events").map_err(malformed)?,
            );
            next_position = chunk.next_position;
        }
        Ok(AllSlice {
            events,
            next_position,
        })
    }

    #[tracing::instrument(level = "debug", name = "RemoteStore.read_event", skip_all)]
    async fn read_event(&self, event_id: uuid::Uuid) -> StoreResult<Option<RecordedEvent>> {
        let response = self
            .client
            .clone()
            .read_event(v1::ReadEventRequest {
                event_id: event_id.to_string(),
            })
            .await;
        match response {
            Ok(r) => match r.into_inner().event {
                Some(e) => convert::recorded_event_from_proto(e, "event")
                    .map(Some)
                    .map_err(malformed),
                None => Err(malformed(StoreError::invalid("event", "missing"))),
            },
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(store_error_from_status(s)),
        }
    }

    #[tracing::instrument(level = "debug", name = "RemoteStore.head", skip_all)]
    async fn head(&self) -> StoreResult<LogHead> {
        let response = self
            .client
            .clone()
            .head(v1::HeadRequest {})
            .await
            .map_err(store_error_from_status)?
            .into_inner();
        convert::log_head_from_proto(response).map_err(malformed)
    }

    #[tracing::instrument(level = "debug", name = "RemoteStore.subscribe", skip_all, fields(from = ?from))]
    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> StoreResult<EventSubscription> {
        use v1::subscribe_request::Start;
        use v1::subscribe_response::Message;
        let request = v1::SubscribeRequest {
            start: Some(match from {
                SubscribeFrom::Position(p) => Start::FromPosition(p),
                SubscribeFrom::Now => Start::FromNow(true),
            }),
            filter: Some(convert::event_filter_to_proto(&filter)),
        };
        let messages = self
            .client
            .clone()
            .subscribe(request)
            .await
            .map_err(store_error_from_status)?
            .into_inner();
        // Ends after the first error, as an embedded subscription does.
        let items = futures::stream::unfold(Some(messages), |state| async move {
            let mut messages = state?;
            let item = match messages.message().await {
                Ok(None) => return None,
                Ok(Some(response)) => match response.message {
                    Some(Message::Event(e)) => convert::recorded_event_from_proto(e, "event")
                        .map(SubscriptionItem::Event)
                        .map_err(malformed),
                    Some(Message::CaughtUp(c)) => Ok(SubscriptionItem::CaughtUp {
                        next_position: c.next_position,
                    }),
                    None => Err(malformed(StoreError::invalid("message", "is missing"))),
                },
                Err(status) => Err(store_error_from_status(status)),
            };
            let state = item.is_ok().then_some(messages);
            Some((item, state))
        });
        Ok(items.boxed())
    }

    #[tracing::instrument(level = "debug", name = "RemoteStore.verify", skip_all)]
    async fn verify(&self) -> StoreResult<VerifyReport> {
        let response = self
            .client
            .clone()
            .verify(v1::VerifyRequest {})
            .await
            .map_err(store_error_from_status)?
            .into_inner();
        Ok(convert::verify_report_from_proto(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_malformed_endpoint_is_an_invalid_argument() {
        let err = RemoteStore::connect("not a uri").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidArgument { field, .. } if field == "endpoint"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_unavailable() {
        // Bind then drop a listener so the port is very likely closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = RemoteStore::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    }
}
