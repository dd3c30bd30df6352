//! What `kizuna::start` serves besides the event log, and how it stops: the
//! health service, reflection in both protocol versions, and a graceful
//! shutdown that open subscriptions cannot hold up.

use futures::StreamExt;
use kizuna::ServeConfig;
use kizuna_eventlog::Durability;
use kizuna_proto::v1::event_log_client::EventLogClient;
use kizuna_proto::v1::{SubscribeRequest, subscribe_request::Start, subscribe_response::Message};
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const PATIENCE: Duration = Duration::from_secs(60);

async fn server() -> (kizuna::RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(dir.path().join("data"));
    config.durability = Durability::None;
    (kizuna::start(config).await.unwrap(), dir)
}

async fn channel(server: &kizuna::RunningServer) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn health_reports_the_server_and_the_event_log_serving() {
    let (server, _dir) = server().await;
    assert!(server.local_addr().ip().is_loopback());
    assert_ne!(server.local_addr().port(), 0);
    let mut health = HealthClient::new(channel(&server).await);
    for service in ["", "kizuna.v1.EventLog"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_every_service() {
    let (server, _dir) = server().await;
    let expected = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "kizuna.v1.EventLog",
    ];

    {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel(&server).await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("not a service list: {answer:?}");
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        for name in expected {
            assert!(
                names.iter().any(|n| n == name),
                "{name} missing from {names:?}"
            );
        }
    }
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel(&server).await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "kizuna.v1.EventLog".into(),
            )),
        };
        let mut answers = client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.next().await.unwrap().unwrap();
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
            panic!("not a file descriptor answer: {answer:?}");
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_subscriptions_and_frees_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(dir.path().join("data"));
    config.durability = Durability::None;
    let server = kizuna::start(config.clone()).await.unwrap();
    let mut client = EventLogClient::connect(server.endpoint()).await.unwrap();
    let mut subscription = client
        .subscribe(SubscribeRequest {
            start: Some(Start::FromPosition(0)),
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    let first = subscription.next().await.unwrap().unwrap();
    assert!(
        matches!(first.message, Some(Message::CaughtUp(_))),
        "{first:?}"
    );

    // Default drain time is 10 s; the open subscription must not use it up.
    let started = std::time::Instant::now();
    tokio::time::timeout(PATIENCE, server.shutdown())
        .await
        .expect("shutdown hung on an open subscription")
        .unwrap();
    assert!(
        started.elapsed() < kizuna::DEFAULT_DRAIN_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    let end = subscription.next().await.unwrap().unwrap_err();
    assert_eq!(end.code(), tonic::Code::Unavailable, "{end:?}");

    // The store is closed, so the same directory opens again at once.
    let again = kizuna::start(config).await.unwrap();
    again.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_busy_port_is_a_clear_error() {
    let (server, dir) = server().await;
    let mut config = ServeConfig::new(dir.path().join("other"));
    config.listen = server.local_addr();
    let err = kizuna::start(config).await.unwrap_err();
    assert!(
        format!("{err:#}").contains(&format!("cannot listen on {}", server.local_addr())),
        "{err:#}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_on_a_stuck_rpc_after_the_drain_time() {
    use kizuna_proto::v1::{AppendRequest, ProposedEvent, ReadAllRequest};
    let (server, _dir) = server().await;
    let mut client = EventLogClient::new(channel(&server).await);
    client
        .append(AppendRequest {
            stream: "lead-1".into(),
            expected_version: None,
            events: (0..5)
                .map(|_| ProposedEvent {
                    event_id: uuid::Uuid::now_v7().to_string(),
                    event_type: "lead.captured".into(),
                    payload: vec![b'x'; 1000 * 1024],
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .unwrap();
    // A reader that never reads: 5 MB of response outgrow the client's HTTP/2
    // flow-control window (2 MiB by default), so the RPC cannot finish.
    let stuck = client
        .read_all(ReadAllRequest::default())
        .await
        .unwrap()
        .into_inner();

    let drain = Duration::from_millis(300);
    let started = std::time::Instant::now();
    tokio::time::timeout(PATIENCE, server.shutdown_within(drain))
        .await
        .expect("shutdown did not give up on the stuck RPC")
        .unwrap();
    assert!(started.elapsed() >= drain, "{:?}", started.elapsed());
    drop(stuck);
}
