//! The CRM flows against one in-process `kizuna serve` (every service on one
//! port), as a client team sees it; plus the SLA breach watcher driven by an
//! injected clock through the assembled server.

use futures::StreamExt;
use kizuna::{RunningServer, ServeConfig};
use kizuna_eventlog::{Durability, ManualClock, Timestamp};
use kizuna_proto::v1 as pb;
use kizuna_tests::{Clients, Endpoints, command, crm_journey};
use std::sync::Arc;
use std::time::Duration;

/// Upper bound of any single wait; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(30);

async fn start(clock: ManualClock) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = kizuna::start(ServeConfig {
        durability: Durability::None,
        clock: Arc::new(clock),
        sla_check_interval: Duration::from_millis(20),
        ..ServeConfig::new(dir.path().join("data"))
    })
    .await
    .expect("start kizuna");
    (server, dir)
}

fn now_clock() -> ManualClock {
    ManualClock::new(Timestamp::from_unix_nanos(1_767_225_600_000_000_000))
}

#[tokio::test]
async fn the_crm_journey_passes_against_one_process() {
    let (server, _dir) = start(now_clock()).await;
    let mut clients = Clients::connect(&Endpoints::single(&server.endpoint()))
        .await
        .expect("connect");
    crm_journey(&mut clients).await.expect("journey");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_breach_watcher_appends_one_breach_when_the_injected_clock_passes_the_due_time() {
    let clock = now_clock();
    let (server, _dir) = start(clock.clone()).await;
    let mut c = Clients::connect(&Endpoints::single(&server.endpoint()))
        .await
        .expect("connect");
    c.support
        .set_sla_policy(pb::SetSlaPolicyRequest {
            command: command(),
            priority: pb::TicketPriority::Urgent as i32,
            first_response: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
            resolution: Some(prost_types::Duration {
                seconds: 4 * 3600,
                nanos: 0,
            }),
        })
        .await
        .expect("set policy");
    let ticket = c
        .support
        .open_ticket(pb::OpenTicketRequest {
            command: command(),
            customer_id: uuid::Uuid::now_v7().to_string(),
            channel: pb::TicketChannel::Phone as i32,
            subject: "店舗で決済できない".into(),
            priority: pb::TicketPriority::Urgent as i32,
            ..Default::default()
        })
        .await
        .expect("open")
        .into_inner()
        .ticket_id;
    let mut breaches = c
        .log
        .subscribe(pb::SubscribeRequest {
            filter: Some(pb::EventFilter {
                event_types: vec!["ticket.sla_breached".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();

    // Past the first-response target only: one breach, for that target.
    clock.advance(Duration::from_secs(3600 + 60));
    let first = next_event(&mut breaches).await;
    assert_eq!(first.stream, format!("ticket-{ticket}"));
    let ticket_state = c
        .support
        .get_ticket(pb::GetTicketRequest {
            ticket_id: ticket.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .ticket
        .expect("ticket");
    assert!(
        ticket_state
            .first_response
            .and_then(|t| t.breached_at)
            .is_some()
    );
    assert!(
        ticket_state
            .resolution
            .and_then(|t| t.breached_at)
            .is_none()
    );

    // Past the resolution target: exactly one more.
    clock.advance(Duration::from_secs(4 * 3600));
    let second = next_event(&mut breaches).await;
    assert_eq!(second.stream, first.stream);
    assert_eq!(second.stream_version, first.stream_version + 1);
    let breaches_in_stream = kizuna_tests::stream_events(&mut c.log, &first.stream)
        .await
        .expect("read the ticket")
        .iter()
        .filter(|e| e.event_type == "ticket.sla_breached")
        .count();
    assert_eq!(breaches_in_stream, 2, "one breach per target");
    server.shutdown().await.expect("shutdown");
}

async fn next_event(stream: &mut tonic::Streaming<pb::SubscribeResponse>) -> pb::EventEnvelope {
    loop {
        let item = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("an event within the patience")
            .expect("the subscription goes on")
            .expect("no error");
        if let Some(pb::subscribe_response::Message::Event(e)) = item.message {
            return e;
        }
    }
}
