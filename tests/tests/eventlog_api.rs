//! The EventLog gRPC API as a client team meets it: a real `kizuna` server on
//! an ephemeral port, spoken to with the generated client. Every RPC, its
//! happy path and its bad input; the server must stay up throughout.

use futures::StreamExt;
use kizuna_proto::v1::{
    self, AppendMultiRequest, AppendRequest, EventFilter, ExpectedVersion, HeadRequest,
    ProposedEvent, ReadAllRequest, ReadStreamRequest, StreamAppend, SubscribeRequest,
    VerifyRequest, event_log_client::EventLogClient, expected_version::Kind,
    subscribe_request::Start, subscribe_response,
};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

struct Server {
    running: kizuna::RunningServer,
    _dir: tempfile::TempDir,
}

async fn start() -> (Server, EventLogClient<Channel>) {
    let dir = tempfile::tempdir().unwrap();
    let running = kizuna::start(kizuna::ServeConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        durability: kizuna_eventlog::Durability::Flush,
        ..kizuna::ServeConfig::new(dir.path())
    })
    .await
    .unwrap();
    let client = EventLogClient::connect(running.endpoint()).await.unwrap();
    (Server { running, _dir: dir }, client)
}

fn event(event_type: &str, payload: &str) -> ProposedEvent {
    ProposedEvent {
        event_id: Uuid::now_v7().to_string(),
        event_type: event_type.into(),
        schema_version: 1,
        payload: payload.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn expect(kind: Kind, version: u64) -> Option<ExpectedVersion> {
    Some(ExpectedVersion {
        kind: kind as i32,
        version,
    })
}

fn stream() -> String {
    format!("lead-{}", Uuid::now_v7())
}

async fn append(
    client: &mut EventLogClient<Channel>,
    stream: &str,
    events: Vec<ProposedEvent>,
) -> v1::StreamAppendResult {
    client
        .append(AppendRequest {
            stream: stream.into(),
            expected_version: None,
            events,
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_read_head_verify_round_trip() {
    let (server, mut client) = start().await;
    let s = stream();
    let customer = Uuid::now_v7().to_string();
    let mut first = event("lead.captured", r#"{"name":"Taro"}"#);
    first.customer_id = customer.clone();
    first.occurred_at = Some(prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 5,
    });
    first.metadata = Some(v1::EventMetadata {
        correlation_id: "corr".into(),
        causation_id: "cmd".into(),
        actor: "user:alice".into(),
        traceparent: String::new(),
    });
    let mut request = tonic::Request::new(AppendRequest {
        stream: s.clone(),
        expected_version: expect(Kind::NoStream, 0),
        events: vec![first.clone(), event("lead.scored", "{}")],
    });
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    let r = client
        .append(request)
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(
        (
            r.first_version,
            r.last_version,
            r.first_position,
            r.last_position
        ),
        (0, 1, 0, 1)
    );
    assert!(!r.already_existed);

    let retry = client
        .append(AppendRequest {
            stream: s.clone(),
            expected_version: expect(Kind::NoStream, 0),
            events: vec![first.clone(), event("lead.scored", "{}")],
        })
        .await;
    // The second event has a fresh id, so this is a conflict, not a retry.
    assert_eq!(retry.unwrap_err().code(), Code::AlreadyExists);

    let page = client
        .read_stream(ReadStreamRequest {
            stream: s.clone(),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.last_version, Some(1));
    assert_eq!(page.next_version, Some(1));
    let e = &page.events[0];
    assert_eq!(e.event_id, first.event_id);
    assert_eq!(e.customer_id, customer);
    assert_eq!(e.occurred_at, first.occurred_at);
    assert!(e.recorded_at.is_some());
    assert_eq!(e.payload, first.payload);
    let meta = e.metadata.clone().unwrap();
    assert_eq!(meta.actor, "user:alice");
    assert_eq!(
        meta.traceparent, traceparent,
        "traceparent taken from the gRPC request"
    );
    assert_eq!(e.hash.len(), 32);

    let back = client
        .read_stream(ReadStreamRequest {
            stream: s.clone(),
            backward: true,
            from_end: true,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let versions: Vec<u64> = back.events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, [1, 0]);
    assert_eq!(back.next_version, None);

    let head = client.head(HeadRequest {}).await.unwrap().into_inner();
    assert_eq!(head.next_position, 2);
    assert_eq!(head.last_hash, back.events[0].hash);
    let verify = client.verify(VerifyRequest {}).await.unwrap().into_inner();
    assert!(verify.ok);
    assert_eq!(verify.events_checked, 2);
    server.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_multi_is_all_or_nothing_over_grpc() {
    let (server, mut client) = start().await;
    let (a, b) = (stream(), stream());
    append(&mut client, &b, vec![event("lead.captured", "{}")]).await;
    let status = client
        .append_multi(AppendMultiRequest {
            appends: vec![
                StreamAppend {
                    stream: a.clone(),
                    expected_version: expect(Kind::NoStream, 0),
                    events: vec![event("lead.converted", "{}")],
                },
                StreamAppend {
                    stream: b.clone(),
                    expected_version: expect(Kind::NoStream, 0),
                    events: vec![event("lead.converted", "{}")],
                },
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(status.metadata().get("kizuna-actual-version").unwrap(), "0");
    let head = client.head(HeadRequest {}).await.unwrap().into_inner();
    assert_eq!(
        head.next_position, 1,
        "nothing of the failed append was written"
    );

    let ok = client
        .append_multi(AppendMultiRequest {
            appends: vec![
                StreamAppend {
                    stream: a.clone(),
                    expected_version: expect(Kind::NoStream, 0),
                    events: vec![event("lead.converted", "{}")],
                },
                StreamAppend {
                    stream: b.clone(),
                    expected_version: expect(Kind::Exact, 0),
                    events: vec![event("lead.converted", "{}")],
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let positions: Vec<(u64, u64)> = ok
        .results
        .iter()
        .map(|r| (r.first_position, r.last_version))
        .collect();
    assert_eq!(positions, [(1, 0), (2, 1)]);
    server.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_all_streams_filtered_history() {
    let (server, mut client) = start().await;
    let customer = Uuid::now_v7().to_string();
    for n in 0..30 {
        let mut e = event(
            if n % 3 == 0 {
                "lead.scored"
            } else {
                "lead.updated"
            },
            "{}",
        );
        if n % 5 == 0 {
            e.customer_id = customer.clone();
        }
        let s = if n % 2 == 0 {
            "lead-even".to_string()
        } else {
            "ticket-odd".to_string()
        };
        append(&mut client, &s, vec![e]).await;
    }
    let read = |filter: EventFilter, from: u64, limit: u64| {
        let mut client = client.clone();
        async move {
            let mut stream = client
                .read_all(ReadAllRequest {
                    from_position: from,
                    filter: Some(filter),
                    limit,
                })
                .await
                .unwrap()
                .into_inner();
            let mut positions = Vec::new();
            while let Some(chunk) = stream.next().await {
                positions.extend(chunk.unwrap().events.iter().map(|e| e.global_position));
            }
            positions
        }
    };
    assert_eq!(
        read(EventFilter::default(), 0, 0).await,
        (0..30).collect::<Vec<u64>>()
    );
    assert_eq!(
        read(EventFilter::default(), 25, 0).await,
        [25, 26, 27, 28, 29]
    );
    assert_eq!(read(EventFilter::default(), 0, 3).await, [0, 1, 2]);
    let by_type = EventFilter {
        event_types: vec!["lead.scored".into()],
        ..Default::default()
    };
    assert_eq!(
        read(by_type, 0, 0).await,
        [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]
    );
    let by_category = EventFilter {
        categories: vec!["ticket".into()],
        ..Default::default()
    };
    assert_eq!(read(by_category, 20, 0).await, [21, 23, 25, 27, 29]);
    let by_customer = EventFilter {
        customer_id: customer.clone(),
        ..Default::default()
    };
    assert_eq!(read(by_customer, 0, 0).await, [0, 5, 10, 15, 20, 25]);
    server.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_catches_up_then_goes_live() {
    let (server, mut client) = start().await;
    for _ in 0..3 {
        append(&mut client, "lead-sub", vec![event("lead.scored", "{}")]).await;
    }
    let mut sub = client
        .subscribe(SubscribeRequest {
            start: Some(Start::FromPosition(1)),
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut live = client
        .subscribe(SubscribeRequest {
            start: Some(Start::FromNow(true)),
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut positions = Vec::new();
    loop {
        match sub.next().await.unwrap().unwrap().message.unwrap() {
            subscribe_response::Message::Event(e) => positions.push(e.global_position),
            subscribe_response::Message::CaughtUp(c) => {
                assert_eq!(c.next_position, 3);
                break;
            }
        }
    }
    assert_eq!(positions, [1, 2]);
    append(
        &mut client,
        "lead-sub",
        vec![event("lead.scored", "{}"), event("lead.scored", "{}")],
    )
    .await;
    while positions.len() < 4 {
        if let subscribe_response::Message::Event(e) =
            sub.next().await.unwrap().unwrap().message.unwrap()
        {
            positions.push(e.global_position);
        }
    }
    assert_eq!(positions, [1, 2, 3, 4]);
    let mut from_now = Vec::new();
    while from_now.len() < 2 {
        if let subscribe_response::Message::Event(e) =
            live.next().await.unwrap().unwrap().message.unwrap()
        {
            from_now.push(e.global_position);
        }
    }
    assert_eq!(from_now, [3, 4]);
    drop(sub);
    drop(live);
    server.running.shutdown().await.unwrap();
}

fn bad_request_field(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    let bad = details
        .bad_request()
        .expect("google.rpc.BadRequest details");
    bad.field_violations[0].field.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_status_and_the_server_stays_up() {
    let (server, mut client) = start().await;
    let s = stream();
    append(&mut client, &s, vec![event("lead.captured", "{}")]).await;
    let req = |stream: &str, expected: Option<ExpectedVersion>, events: Vec<ProposedEvent>| {
        AppendRequest {
            stream: stream.into(),
            expected_version: expected,
            events,
        }
    };
    let mut bad_uuid = event("lead.captured", "{}");
    bad_uuid.event_id = "not-a-uuid".into();
    let mut bad_customer = event("lead.captured", "{}");
    bad_customer.customer_id = "42".into();
    let mut bad_time = event("lead.captured", "{}");
    bad_time.occurred_at = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    });
    let cases: Vec<(&str, AppendRequest, Code, &str)> = vec![
        (
            "empty stream",
            req("", None, vec![event("a.b", "{}")]),
            Code::InvalidArgument,
            "stream",
        ),
        (
            "malformed stream",
            req("Lead 1", None, vec![event("a.b", "{}")]),
            Code::InvalidArgument,
            "stream",
        ),
        (
            "bad event id",
            req(&s, None, vec![bad_uuid]),
            Code::InvalidArgument,
            "events[0].event_id",
        ),
        (
            "bad customer id",
            req(&s, None, vec![event("a.b", "{}"), bad_customer]),
            Code::InvalidArgument,
            "events[1].customer_id",
        ),
        (
            "bad timestamp",
            req(&s, None, vec![bad_time]),
            Code::InvalidArgument,
            "events[0].occurred_at",
        ),
        (
            "bad event type",
            req(&s, None, vec![event("Lead Captured", "{}")]),
            Code::InvalidArgument,
            "events[0].event_type",
        ),
        (
            "empty batch",
            req(&s, None, vec![]),
            Code::InvalidArgument,
            "events",
        ),
        (
            "unknown enum",
            req(
                &s,
                Some(ExpectedVersion {
                    kind: 99,
                    version: 0,
                }),
                vec![event("a.b", "{}")],
            ),
            Code::InvalidArgument,
            "expected_version.kind",
        ),
        (
            "unspecified enum",
            req(&s, expect(Kind::Unspecified, 0), vec![event("a.b", "{}")]),
            Code::InvalidArgument,
            "expected_version.kind",
        ),
    ];
    for (name, request, code, field) in cases {
        let status = client.append(request).await.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {status:?}");
        assert_eq!(bad_request_field(&status), field, "{name}");
        assert!(
            status.message().contains(field),
            "{name}: message names the field: {}",
            status.message()
        );
    }

    let conflict = client
        .append(req(&s, expect(Kind::Exact, 7), vec![event("a.b", "{}")]))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::Aborted);
    assert_eq!(
        conflict.metadata().get("kizuna-actual-version").unwrap(),
        "0"
    );
    let missing = client
        .append(req(
            &stream(),
            expect(Kind::StreamExists, 0),
            vec![event("a.b", "{}")],
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Aborted);
    assert_eq!(
        missing.metadata().get("kizuna-actual-version").unwrap(),
        "none"
    );

    let mut big = event("a.b", "");
    big.payload = vec![b'x'; 1024 * 1024 + 1];
    let too_big = client.append(req(&s, None, vec![big])).await.unwrap_err();
    assert_eq!(too_big.code(), Code::ResourceExhausted, "{too_big:?}");
    let many = (0..1001).map(|_| event("a.b", "{}")).collect();
    let too_many = client.append(req(&s, None, many)).await.unwrap_err();
    assert_eq!(too_many.code(), Code::ResourceExhausted, "{too_many:?}");

    let empty_multi = client
        .append_multi(AppendMultiRequest { appends: vec![] })
        .await
        .unwrap_err();
    assert_eq!(empty_multi.code(), Code::InvalidArgument);
    let bad_multi = client
        .append_multi(AppendMultiRequest {
            appends: vec![
                StreamAppend {
                    stream: stream(),
                    expected_version: None,
                    events: vec![event("a.b", "{}")],
                },
                StreamAppend {
                    stream: "x".into(),
                    expected_version: None,
                    events: vec![event("a.b", "{}")],
                },
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(bad_request_field(&bad_multi), "appends[1].stream");

    let bad_read = client
        .read_stream(ReadStreamRequest {
            stream: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_read.code(), Code::InvalidArgument);
    let huge_limit = client
        .read_stream(ReadStreamRequest {
            stream: s.clone(),
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_request_field(&huge_limit), "limit");
    let bad_filter = client
        .read_all(ReadAllRequest {
            from_position: 0,
            filter: Some(EventFilter {
                customer_id: "zzz".into(),
                ..Default::default()
            }),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_request_field(&bad_filter), "filter.customer_id");
    let bad_sub = client
        .subscribe(SubscribeRequest {
            start: None,
            filter: Some(EventFilter {
                event_types: vec!["NOT VALID".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_sub.code(), Code::InvalidArgument);

    // Still serving, and nothing of the rejected requests was written.
    let head = client.head(HeadRequest {}).await.unwrap().into_inner();
    assert_eq!(head.next_position, 1);
    server.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_v1_and_v1alpha() {
    let (server, _client) = start().await;
    let channel = Channel::from_shared(server.running.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kizuna.v1.EventLog".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut replies = client
            .server_reflection_info(tokio_stream::once(request))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            replies.next().await.unwrap().unwrap().message_response
        else {
            panic!("expected a service list");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(
            names.contains(&"kizuna.v1.EventLog".to_string()),
            "{names:?}"
        );
    }
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "kizuna.v1.EventLog".into(),
            )),
        };
        let mut replies = client
            .server_reflection_info(tokio_stream::once(request))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::FileDescriptorResponse(files)) =
            replies.next().await.unwrap().unwrap().message_response
        else {
            panic!("expected file descriptors");
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
    server.running.shutdown().await.unwrap();
}
