//! The gRPC surface itself, spoken to with the generated client: what a
//! non-Rust caller sees (codes, metadata, details, paging), and the
//! `RemoteStore` edges that the conformance suite does not reach.

mod common;

use futures::StreamExt;
use kizuna_eventlog::{
    Direction, EventFilter, EventStore, ExpectedVersion, ProposedEvent, StoreError, SubscribeFrom,
    SubscriptionItem,
};
use kizuna_eventlog_grpc::{ACTUAL_VERSION_KEY, EXPECTED_VERSION_KEY, RemoteStore, convert};
use kizuna_proto::v1;
use kizuna_proto::v1::event_log_client::EventLogClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use uuid::Uuid;

async fn client(node: &common::Node) -> EventLogClient<Channel> {
    EventLogClient::connect(node.url())
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20)
}

fn wire_event(event_type: &str) -> v1::ProposedEvent {
    v1::ProposedEvent {
        event_id: Uuid::now_v7().to_string(),
        event_type: event_type.into(),
        payload: b"{}".to_vec(),
        ..Default::default()
    }
}

fn bad_field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest detail")
        .field_violations[0]
        .field
        .clone()
}

async fn seed(store: &impl EventStore, stream: &str, count: usize, payload_bytes: usize) {
    let events = (0..count)
        .map(|_| ProposedEvent::new("lead.noted", vec![b'x'; payload_bytes]))
        .collect::<Vec<_>>();
    for chunk in events.chunks(500) {
        store
            .append(stream, ExpectedVersion::Any, chunk.to_vec())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn append_defaults_and_trace_context() {
    let node = common::Node::start().await;
    let mut c = client(&node).await;
    let mut explicit = wire_event("lead.captured");
    explicit.metadata = Some(v1::EventMetadata {
        traceparent: "00-11111111111111111111111111111111-2222222222222222-01".into(),
        ..Default::default()
    });
    let mut request = tonic::Request::new(v1::AppendRequest {
        stream: "lead-1".into(),
        expected_version: None,
        events: vec![wire_event("lead.captured"), explicit],
    });
    let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    request
        .metadata_mut()
        .insert("traceparent", header.parse().unwrap());
    let result = c
        .append(request)
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!((result.first_version, result.last_version), (0, 1));

    let slice = node
        .store
        .read_stream("lead-1", Direction::Forward, None, 10)
        .await
        .unwrap();
    assert_eq!(
        slice.events[0].metadata.traceparent, header,
        "filled from the header"
    );
    assert_eq!(
        slice.events[1].metadata.traceparent,
        "00-11111111111111111111111111111111-2222222222222222-01",
        "an event's own trace context wins"
    );
    assert_eq!(
        slice.events[0].schema_version, 1,
        "schema_version 0 reads as 1"
    );
}

#[tokio::test]
async fn invalid_requests_name_the_full_field_path() {
    let node = common::Node::start().await;
    let mut c = client(&node).await;
    let mut bad_id = wire_event("lead.captured");
    bad_id.event_id = "not-a-uuid".into();
    let err = c
        .append(v1::AppendRequest {
            stream: "lead-1".into(),
            expected_version: None,
            events: vec![wire_event("lead.captured"), bad_id],
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&err), "events[1].event_id");
    assert!(
        err.message().starts_with("invalid events[1].event_id: "),
        "{}",
        err.message()
    );

    let err = c
        .append_multi(v1::AppendMultiRequest {
            appends: vec![
                v1::StreamAppend {
                    stream: "lead-1".into(),
                    expected_version: None,
                    events: vec![wire_event("a.b")],
                },
                v1::StreamAppend {
                    stream: "lead-2".into(),
                    expected_version: Some(v1::ExpectedVersion {
                        kind: 0,
                        version: 0,
                    }),
                    events: vec![wire_event("a.b")],
                },
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&err), "appends[1].expected_version.kind");

    let err = c
        .append_multi(v1::AppendMultiRequest {
            appends: vec![v1::StreamAppend {
                stream: "lead-1".into(),
                expected_version: None,
                events: vec![wire_event("Bad Type")],
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_field(&err),
        "appends[0].events[0].event_type",
        "the store's own check, same paths"
    );

    let filter = v1::EventFilter {
        customer_id: "nope".into(),
        ..Default::default()
    };
    let err = c
        .read_all(v1::ReadAllRequest {
            from_position: 0,
            filter: Some(filter.clone()),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&err), "filter.customer_id");
    let err = c
        .subscribe(v1::SubscribeRequest {
            start: None,
            filter: Some(filter),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&err), "filter.customer_id");

    let err = c
        .read_stream(v1::ReadStreamRequest {
            stream: "lead-1".into(),
            limit: 1001,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&err), "limit");
    let err = c
        .read_stream(v1::ReadStreamRequest {
            stream: "lead-1".into(),
            from_end: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&err), "from_end");
    assert_eq!(
        node.store.head().await.unwrap().next_position,
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn a_version_conflict_is_aborted_with_readable_metadata() {
    let node = common::Node::start().await;
    let mut c = client(&node).await;
    seed(&node.store, "lead-1", 3, 1).await;
    let err = c
        .append(v1::AppendRequest {
            stream: "lead-1".into(),
            expected_version: Some(convert::expected_version_to_proto(ExpectedVersion::Exact(
                0,
            ))),
            events: vec![wire_event("lead.captured")],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert!(err.message().contains("actual 2"), "{}", err.message());
    assert_eq!(err.metadata().get(ACTUAL_VERSION_KEY).unwrap(), "2");
    assert_eq!(err.metadata().get(EXPECTED_VERSION_KEY).unwrap(), "0");

    let err = c
        .append(v1::AppendRequest {
            stream: "lead-2".into(),
            expected_version: Some(convert::expected_version_to_proto(
                ExpectedVersion::StreamExists,
            )),
            events: vec![wire_event("lead.captured")],
        })
        .await
        .unwrap_err();
    assert_eq!(err.metadata().get(ACTUAL_VERSION_KEY).unwrap(), "none");
}

#[tokio::test]
async fn read_stream_pages_with_defaults_caps_and_next_version() {
    let node = common::Node::start().await;
    let mut c = client(&node).await;
    seed(&node.store, "lead-1", 150, 1).await;
    let page = |from_version, backward, from_end, limit| v1::ReadStreamRequest {
        stream: "lead-1".into(),
        from_version,
        backward,
        from_end,
        limit,
    };
    let versions = |r: &v1::ReadStreamResponse| -> Vec<u64> {
        r.events.iter().map(|e| e.stream_version).collect()
    };

    let r = c
        .read_stream(page(0, false, false, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.events.len(), 100, "limit 0 is the default of 100");
    assert_eq!((r.last_version, r.next_version), (Some(149), Some(100)));
    let r = c
        .read_stream(page(100, false, false, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.events.len(), 50);
    assert_eq!(r.next_version, None, "the end was reached");

    let r = c
        .read_stream(page(999, true, true, 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        versions(&r),
        [149, 148, 147],
        "from_end ignores from_version"
    );
    assert_eq!(r.next_version, Some(146));
    let r = c
        .read_stream(page(1, true, false, 5))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions(&r), [1, 0]);
    assert_eq!(r.next_version, None);

    let r = c
        .read_stream(v1::ReadStreamRequest {
            stream: "lead-none".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.events.len(), r.last_version, r.next_version),
        (0, None, None)
    );

    // ~1 MB payloads: a page stops at ~4 MiB, and says where to go on.
    seed(&node.store, "big-1", 6, 1_000_000).await;
    let r = c
        .read_stream(v1::ReadStreamRequest {
            stream: "big-1".into(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.events.len(), 4);
    assert_eq!(r.next_version, Some(4));

    // RemoteStore hides the paging: over the cap, over 1000, and limit 0.
    let remote = RemoteStore::connect(node.url()).await.unwrap();
    let all = remote
        .read_stream("big-1", Direction::Forward, None, 10)
        .await
        .unwrap();
    assert_eq!(all.events.len(), 6);
    let back = remote
        .read_stream("big-1", Direction::Backward, None, 5)
        .await
        .unwrap();
    let v: Vec<u64> = back.events.iter().map(|e| e.stream_version).collect();
    assert_eq!(v, [5, 4, 3, 2, 1]);
    seed(&node.store, "lead-1", 1000, 1).await;
    let many = remote
        .read_stream("lead-1", Direction::Forward, Some(10), 1100)
        .await
        .unwrap();
    assert_eq!(many.events.len(), 1100);
    assert_eq!(many.events.last().unwrap().stream_version, 1109);
    let none = remote
        .read_stream("lead-1", Direction::Forward, None, 0)
        .await
        .unwrap();
    assert_eq!((none.events.len(), none.last_version), (0, Some(1149)));
}

#[tokio::test]
async fn read_all_streams_chunks_up_to_the_head_at_call_time() {
    let node = common::Node::start().await;
    let mut c = client(&node).await;
    seed(&node.store, "lead-1", 1200, 1).await;
    seed(&node.store, "big-1", 6, 1_000_000).await;
    let head = node.store.head().await.unwrap().next_position;

    let mut chunks = c
        .read_all(v1::ReadAllRequest {
            from_position: 0,
            filter: None,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let first = chunks.message().await.unwrap().unwrap();
    assert_eq!((first.events.len(), first.next_position), (500, 500));
    // Appended after the call: not part of this read.
    seed(&node.store, "lead-2", 10, 1).await;
    let mut total = first.events.len();
    let mut last_next = first.next_position;
    let mut positions = Vec::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        let bytes: usize = chunk.events.iter().map(|e| e.payload.len()).sum();
        assert!(
            chunk.events.len() == 1 || bytes <= 4 << 20,
            "chunks stay near 4 MiB"
        );
        assert!(chunk.next_position > last_next);
        last_next = chunk.next_position;
        total += chunk.events.len();
        positions.extend(chunk.events.iter().map(|e| e.global_position));
    }
    assert_eq!(total as u64, head);
    assert_eq!(last_next, head);
    assert!(positions.windows(2).all(|w| w[1] == w[0] + 1));

    // A limit, and a filter that matches nothing still reports its progress.
    let limited: Vec<_> = c
        .read_all(v1::ReadAllRequest {
            from_position: 10,
            filter: None,
            limit: 7,
        })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    let events: usize = limited
        .iter()
        .map(|c| c.as_ref().unwrap().events.len())
        .sum();
    assert_eq!(events, 7);
    assert_eq!(limited.last().unwrap().as_ref().unwrap().next_position, 17);
    let empty: Vec<_> = c
        .read_all(v1::ReadAllRequest {
            from_position: 0,
            filter: Some(v1::EventFilter {
                categories: vec!["nothing".into()],
                ..Default::default()
            }),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(empty.len(), 1);
    let chunk = empty[0].as_ref().unwrap();
    assert!(chunk.events.is_empty());
    assert_eq!(chunk.next_position, head + 10);

    // A client that stops reading early does not hurt the server.
    let mut abandoned = c
        .read_all(v1::ReadAllRequest {
            from_position: 0,
            filter: None,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    abandoned.message().await.unwrap().unwrap();
    drop(abandoned);
    let remote = RemoteStore::connect(node.url()).await.unwrap();
    let slice = remote
        .read_all(0, &EventFilter::all(), 100_000)
        .await
        .unwrap();
    assert_eq!(slice.events.len() as u64, head + 10);
    assert_eq!(slice.next_position, head + 10);
    let zero = remote.read_all(5, &EventFilter::all(), 0).await.unwrap();
    assert_eq!((zero.events.len(), zero.next_position), (0, 5));
    let past = remote
        .read_all(head + 100, &EventFilter::all(), 10)
        .await
        .unwrap();
    assert_eq!((past.events.len(), past.next_position), (0, head + 100));
}

#[tokio::test]
async fn subscribe_without_a_start_reads_from_the_beginning() {
    let node = common::Node::start().await;
    let mut c = client(&node).await;
    seed(&node.store, "lead-1", 3, 1).await;
    let mut sub = c
        .subscribe(v1::SubscribeRequest {
            start: None,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut positions = Vec::new();
    loop {
        match sub.message().await.unwrap().unwrap().message.unwrap() {
            v1::subscribe_response::Message::Event(e) => positions.push(e.global_position),
            v1::subscribe_response::Message::CaughtUp(c) => {
                assert_eq!(c.next_position, 3);
                break;
            }
        }
    }
    assert_eq!(positions, [0, 1, 2]);

    let remote = RemoteStore::connect(node.url()).await.unwrap();
    let mut live = remote
        .subscribe(SubscribeFrom::Now, EventFilter::all())
        .await
        .unwrap();
    assert_eq!(
        live.next().await.unwrap().unwrap(),
        SubscriptionItem::CaughtUp { next_position: 3 }
    );
    seed(&node.store, "lead-1", 1, 1).await;
    match live.next().await.unwrap().unwrap() {
        SubscriptionItem::Event(e) => assert_eq!(e.global_position, 3),
        other => panic!("{other:?}"),
    }
    let bad = EventFilter {
        event_types: vec!["Bad".into()],
        ..EventFilter::all()
    };
    match remote.subscribe(SubscribeFrom::Position(0), bad).await {
        Err(StoreError::InvalidArgument { field, .. }) => {
            assert_eq!(field, "filter.event_types[0]")
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a bad filter was accepted"),
    }
}

#[tokio::test]
async fn a_closed_store_is_unavailable_and_comes_back_as_closed() {
    let node = common::Node::start().await;
    let remote = RemoteStore::connect(node.url()).await.unwrap();
    seed(&node.store, "lead-1", 1, 1).await;
    node.store.shutdown().await.unwrap();
    let err = remote
        .append(
            "lead-1",
            ExpectedVersion::Any,
            vec![ProposedEvent::new("a.b", "x")],
        )
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Closed);
    assert_eq!(
        remote.head().await.unwrap().next_position,
        1,
        "reads still work"
    );
    let report = remote.verify().await.unwrap();
    assert!(report.is_ok());
    assert_eq!(report.events_checked, 1);
}
