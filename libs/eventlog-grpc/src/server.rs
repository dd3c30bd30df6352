//! `EventLogService`: the `kizuna.v1.EventLog` gRPC service over any
//! [`EventStore`].
//!
//! The service is deliberately thin: it converts requests (rejecting what
//! protobuf cannot express as invalid), applies the RPC's own paging rules
//! and message-size caps, and leaves every rule about the log itself to the
//! store, so that a log node behaves exactly like the embedded store it wraps.

use crate::convert;
use crate::status::status_from_store_error;
use futures::StreamExt;
use futures::stream::BoxStream;
use kizuna_eventlog::{
    Direction, EventFilter, EventStore, RecordedEvent, StoreError, SubscribeFrom, SubscriptionItem,
};
use kizuna_proto::v1;
use kizuna_proto::v1::event_log_server::{EventLog, EventLogServer};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// Largest gRPC message the service (and [`crate::RemoteStore`]) sends or
/// accepts. Well above the store's default 1 MiB payload limit, so that an
/// oversized payload reaches the store's own check and is reported as
/// `PayloadTooLarge` naming the event, rather than as a transport error.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// `ReadStream` page size when the request's limit is 0.
pub const DEFAULT_READ_STREAM_LIMIT: u32 = 100;
/// Largest `ReadStream` limit accepted.
pub const MAX_READ_STREAM_LIMIT: u32 = 1000;
/// Payload bytes after which a `ReadStream` page or `ReadAll` chunk is cut
/// short (it always holds at least one event), keeping responses far below
/// [`MAX_MESSAGE_BYTES`] whatever the events' sizes.
pub const RESPONSE_PAYLOAD_CAP: usize = 4 * 1024 * 1024;
/// Events `ReadAll` asks the store for at a time.
const READ_ALL_PAGE: u64 = 500;
/// `ReadAll` chunks buffered ahead of a slow client.
const READ_ALL_BUFFER: usize = 4;
/// Longest `traceparent` request header copied into events; longer values are
/// not W3C trace contexts and would trip the store's metadata limit.
const MAX_TRACEPARENT_LEN: usize = 256;

/// The `kizuna.v1.EventLog` service over an event store.
#[derive(Clone)]
pub struct EventLogService {
    store: Arc<dyn EventStore>,
}

impl std::fmt::Debug for EventLogService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLogService").finish_non_exhaustive()
    }
}

impl EventLogService {
    /// The service over `store`.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self { store }
    }

    /// The tonic server for this service, with message size limits raised to
    /// [`MAX_MESSAGE_BYTES`] both ways.
    pub fn into_server(self) -> EventLogServer<Self> {
        EventLogServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// The request's `traceparent` header, if it is a plausible trace context.
fn traceparent_of<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_TRACEPARENT_LEN)
        .map(str::to_owned)
}

/// Gives events without a trace context the request's.
fn fill_traceparent<'a>(
    events: impl IntoIterator<Item = &'a mut kizuna_eventlog::ProposedEvent>,
    traceparent: Option<&str>,
) {
    let Some(tp) = traceparent else { return };
    for e in events {
        if e.metadata.traceparent.is_empty() {
            tp.clone_into(&mut e.metadata.traceparent);
        }
    }
}

/// How many of `events` fit in one response: at least one, then as many as
/// keep the payload total within [`RESPONSE_PAYLOAD_CAP`].
fn fitting(events: &[RecordedEvent]) -> usize {
    let mut total = 0usize;
    let mut n = 0;
    for e in events {
        total = total.saturating_add(e.payload.len());
        if n > 0 && total > RESPONSE_PAYLOAD_CAP {
            break;
        }
        n += 1;
    }
    n
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Streams `ReadAll` chunks from `from` up to `head` (exclusive), at most
/// `limit` events, until done, failed, or the client is gone.
async fn read_all_chunks(
    store: Arc<dyn EventStore>,
    from: u64,
    head: u64,
    filter: EventFilter,
    limit: u64,
    tx: mpsc::Sender<Result<v1::ReadAllResponse, Status>>,
) {
    let mut position = from;
    let mut remaining = limit;
    while position < head && remaining > 0 {
        let slice = match store
            .read_all(position, &filter, to_usize(remaining.min(READ_ALL_PAGE)))
            .await
        {
            Ok(slice) => slice,
            Err(e) => {
                let _ = tx.send(Err(status_from_store_error(e))).await;
                return;
            }
        };
        let mut events = slice.events;
        // The store reads up to its head at read time; this RPC stops at the
        // head captured at call time.
        let mut next = slice.next_position.min(head);
        if let Some(cut) = events.iter().position(|e| e.global_position >= head) {
            events.truncate(cut);
            next = head;
        }
        if next <= position && events.is_empty() {
            // No progress: a store keeping its contract never does this, but
            // looping on it would spin forever.
            return;
        }
        remaining = remaining.saturating_sub(events.len() as u64);
        position = next;
        let mut events = events.into_iter().peekable();
        loop {
            let mut chunk: Vec<RecordedEvent> = Vec::new();
            let mut bytes = 0usize;
            while let Some(e) = events.next_if(|e| {
                chunk.is_empty() || bytes.saturating_add(e.payload.len()) <= RESPONSE_PAYLOAD_CAP
            }) {
                bytes = bytes.saturating_add(e.payload.len());
                chunk.push(e);
            }
            let last = events.peek().is_none();
            let next_position = match (last, chunk.last()) {
                (false, Some(e)) => e.global_position + 1,
                _ => next,
            };
            let response = v1::ReadAllResponse {
                events: chunk
                    .into_iter()
                    .map(convert::recorded_event_to_proto)
                    .collect(),
                next_position,
            };
            if tx.send(Ok(response)).await.is_err() {
                tracing::debug!("ReadAll client went away");
                return;
            }
            if last {
                break;
            }
        }
    }
}

#[tonic::async_trait]
impl EventLog for EventLogService {
    #[tracing::instrument(name = "EventLog.Append", skip_all, fields(stream = %request.get_ref().stream, events = request.get_ref().events.len()))]
    async fn append(
        &self,
        request: Request<v1::AppendRequest>,
    ) -> Result<Response<v1::AppendResponse>, Status> {
        let traceparent = traceparent_of(&request);
        let mut append = convert::append_request_from_proto(request.into_inner())
            .map_err(status_from_store_error)?;
        fill_traceparent(&mut append.events, traceparent.as_deref());
        let result = self
            .store
            .append(&append.stream, append.expected, append.events)
            .await
            .map_err(status_from_store_error)?;
        Ok(Response::new(v1::AppendResponse {
            result: Some(convert::append_result_to_proto(result)),
        }))
    }

    #[tracing::instrument(name = "EventLog.AppendMulti", skip_all, fields(streams = tracing::field::Empty))]
    async fn append_multi(
        &self,
        request: Request<v1::AppendMultiRequest>,
    ) -> Result<Response<v1::AppendMultiResponse>, Status> {
        let traceparent = traceparent_of(&request);
        let mut appends = convert::append_multi_request_from_proto(request.into_inner())
            .map_err(status_from_store_error)?;
        let streams: Vec<&str> = appends.iter().map(|a| a.stream.as_str()).collect();
        tracing::Span::current().record("streams", tracing::field::debug(&streams));
        fill_traceparent(
            appends.iter_mut().flat_map(|a| a.events.iter_mut()),
            traceparent.as_deref(),
        );
        let results = self
            .store
            .append_multi(appends)
            .await
            .map_err(status_from_store_error)?;
        Ok(Response::new(v1::AppendMultiResponse {
            results: results
                .into_iter()
                .map(convert::append_result_to_proto)
                .collect(),
        }))
    }

    #[tracing::instrument(name = "EventLog.ReadStream", skip_all, fields(stream = %request.get_ref().stream))]
    async fn read_stream(
        &self,
        request: Request<v1::ReadStreamRequest>,
    ) -> Result<Response<v1::ReadStreamResponse>, Status> {
        let req = request.into_inner();
        let limit = match req.limit {
            0 => DEFAULT_READ_STREAM_LIMIT,
            l if l > MAX_READ_STREAM_LIMIT => {
                return Err(status_from_store_error(StoreError::invalid(
                    "limit",
                    format!("{l} is over the maximum of {MAX_READ_STREAM_LIMIT}"),
                )));
            }
            l => l,
        };
        let (direction, from) = match (req.backward, req.from_end) {
            (true, true) => (Direction::Backward, None),
            (true, false) => (Direction::Backward, Some(req.from_version)),
            (false, false) => (Direction::Forward, Some(req.from_version)),
            (false, true) => {
                return Err(status_from_store_error(StoreError::invalid(
                    "from_end",
                    "is only allowed with backward",
                )));
            }
        };
        let slice = self
            .store
            .read_stream(&req.stream, direction, from, to_usize(u64::from(limit)))
            .await
            .map_err(status_from_store_error)?;
        let mut events = slice.events;
        events.truncate(fitting(&events));
        let next_version = events.last().and_then(|last| match direction {
            Direction::Forward => {
                let next = last.stream_version + 1;
                slice.last_version.filter(|&lv| next <= lv).map(|_| next)
            }
            Direction::Backward => last.stream_version.checked_sub(1),
        });
        Ok(Response::new(v1::ReadStreamResponse {
            events: events
                .into_iter()
                .map(convert::recorded_event_to_proto)
                .collect(),
            last_version: slice.last_version,
            next_version,
        }))
    }

    type ReadAllStream = ReceiverStream<Result<v1::ReadAllResponse, Status>>;

    #[tracing::instrument(name = "EventLog.ReadAll", skip_all, fields(from_position = request.get_ref().from_position, limit = request.get_ref().limit))]
    async fn read_all(
        &self,
        request: Request<v1::ReadAllRequest>,
    ) -> Result<Response<Self::ReadAllStream>, Status> {
        let req = request.into_inner();
        let filter = convert::event_filter_from_proto(req.filter, "filter")
            .map_err(status_from_store_error)?;
        filter.validate().map_err(status_from_store_error)?;
        let head = self
            .store
            .head()
            .await
            .map_err(status_from_store_error)?
            .next_position;
        let limit = if req.limit == 0 { u64::MAX } else { req.limit };
        let (tx, rx) = mpsc::channel(READ_ALL_BUFFER);
        tokio::spawn(
            read_all_chunks(
                self.store.clone(),
                req.from_position,
                head,
                filter,
                limit,
                tx,
            )
            .in_current_span(),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type SubscribeStream = BoxStream<'static, Result<v1::SubscribeResponse, Status>>;

    #[tracing::instrument(name = "EventLog.Subscribe", skip_all, fields(start = ?request.get_ref().start))]
    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        use v1::subscribe_request::Start;
        let req = request.into_inner();
        let from = match req.start {
            Some(Start::FromNow(true)) => SubscribeFrom::Now,
            Some(Start::FromPosition(p)) => SubscribeFrom::Position(p),
            // `start` unset (or `from_now: false`) means the whole log, like
            // `from_position: 0`, the oneof's zero value. Starting at "now"
            // would silently skip history a caller forgot to ask for; reading
            // from 0 is the visible, safe default.
            Some(Start::FromNow(false)) | None => SubscribeFrom::Position(0),
        };
        let filter = convert::event_filter_from_proto(req.filter, "filter")
            .map_err(status_from_store_error)?;
        let subscription = self
            .store
            .subscribe(from, filter)
            .await
            .map_err(status_from_store_error)?;
        // Ends after the first error: the store's subscription is over then.
        let stream = futures::stream::unfold(Some(subscription), |state| async move {
            let mut subscription = state?;
            match subscription.next().await? {
                Ok(item) => {
                    let message = match item {
                        SubscriptionItem::Event(e) => v1::subscribe_response::Message::Event(
                            convert::recorded_event_to_proto(e),
                        ),
                        SubscriptionItem::CaughtUp { next_position } => {
                            v1::subscribe_response::Message::CaughtUp(v1::CaughtUp {
                                next_position,
                            })
                        }
                    };
                    let response = v1::SubscribeResponse {
                        message: Some(message),
                    };
                    Some((Ok(response), Some(subscription)))
                }
                Err(e) => Some((Err(status_from_store_error(e)), None)),
            }
        });
        Ok(Response::new(stream.boxed()))
    }

    #[tracing::instrument(name = "EventLog.Head", skip_all)]
    async fn head(
        &self,
        _request: Request<v1::HeadRequest>,
    ) -> Result<Response<v1::HeadResponse>, Status> {
        let head = self.store.head().await.map_err(status_from_store_error)?;
        Ok(Response::new(convert::log_head_to_proto(head)))
    }

    #[tracing::instrument(name = "EventLog.ReadEvent", skip_all)]
    async fn read_event(
        &self,
        request: Request<v1::ReadEventRequest>,
    ) -> Result<Response<v1::ReadEventResponse>, Status> {
        let req = request.into_inner();
        let id = convert::parse_uuid(&req.event_id, "event_id".into())
            .map_err(status_from_store_error)?;
        match self
            .store
            .read_event(id)
            .await
            .map_err(status_from_store_error)?
        {
            Some(event) => Ok(Response::new(v1::ReadEventResponse {
                event: Some(convert::recorded_event_to_proto(event)),
            })),
            None => Err(Status::not_found(format!("event {id} is not in the log"))),
        }
    }

    #[tracing::instrument(name = "EventLog.Verify", skip_all)]
    async fn verify(
        &self,
        _request: Request<v1::VerifyRequest>,
    ) -> Result<Response<v1::VerifyResponse>, Status> {
        let report = self.store.verify().await.map_err(status_from_store_error)?;
        Ok(Response::new(convert::verify_report_to_proto(report)))
    }
}
