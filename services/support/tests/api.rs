//! SupportService as a client team sees it: a real tonic server on an
//! ephemeral port over a temp-dir log with an injected clock, driven through
//! the generated client. Plus the SLA watcher over the same log.

use kizuna_domain::pb;
use kizuna_domain::testing::DEFAULT_NOW_SECONDS;
use kizuna_domain::ticket::breach_command_id;
use kizuna_eventlog::{
    EventFilter, ManualClock, RecordedEvent, SubscribeFrom, SubscriptionItem, Timestamp as LogTime,
};
use kizuna_support::SlaWatcher;
use kizuna_tests::TestServer;
use kizuna_tests::status::{assert_invalid, assert_rejected};
use pb::support_service_client::SupportServiceClient;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

const HOUR: Duration = Duration::from_secs(3600);

async fn start_server(clock: ManualClock) -> Server {
    Server(
        kizuna_tests::serve_on_temp_log(clock, |runner| {
            tonic::transport::Server::builder().add_service(kizuna_support::service(runner))
        })
        .await,
    )
}

fn start_clock() -> ManualClock {
    ManualClock::new(LogTime::from_unix_nanos(
        DEFAULT_NOW_SECONDS * 1_000_000_000,
    ))
}

fn proto_now(clock: &ManualClock) -> prost_types::Timestamp {
    use kizuna_eventlog::Clock as _;
    let (seconds, nanos) = clock.now().to_seconds_nanos();
    prost_types::Timestamp { seconds, nanos }
}

/// The shared test server, with this suite's helpers.
struct Server(TestServer);

impl std::ops::Deref for Server {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.0
    }
}

impl Server {
    async fn client(&self) -> SupportServiceClient<Channel> {
        SupportServiceClient::connect(self.endpoint.clone())
            .await
            .expect("connect")
    }

    /// A watcher over this server's log and clock (a fresh one simulates a
    /// restart of the watcher).
    fn watcher(&self) -> SlaWatcher {
        SlaWatcher::new(self.runner.clone())
    }

    async fn events(&self, filter: EventFilter) -> Vec<RecordedEvent> {
        self.store
            .read_all(0, &filter, 10_000)
            .await
            .expect("read_all")
            .events
    }

    async fn breaches(&self) -> Vec<pb::TicketSlaBreached> {
        use prost::Message as _;
        self.events(EventFilter {
            event_types: vec!["ticket.sla_breached".into()],
            ..EventFilter::default()
        })
        .await
        .iter()
        .map(|e| pb::TicketSlaBreached::decode(e.payload.as_ref()).expect("decode"))
        .collect()
    }
}

fn cmd() -> Option<pb::CommandMetadata> {
    Some(pb::CommandMetadata {
        command_id: Uuid::now_v7().to_string(),
        actor: "user:test".into(),
        ..Default::default()
    })
}

fn customer() -> Uuid {
    Uuid::from_u128(0xc0)
}

fn open_request() -> pb::OpenTicketRequest {
    pb::OpenTicketRequest {
        command: cmd(),
        ticket_id: String::new(),
        customer_id: customer().to_string(),
        channel: pb::TicketChannel::Email as i32,
        subject: "  Parcel never arrived  ".into(),
        description: "Ordered on the 3rd.".into(),
        priority: pb::TicketPriority::Urgent as i32,
    }
}

async fn open(client: &mut SupportServiceClient<Channel>, req: pb::OpenTicketRequest) -> String {
    client
        .open_ticket(req)
        .await
        .expect("open ticket")
        .into_inner()
        .ticket_id
}

async fn get_ticket(client: &mut SupportServiceClient<Channel>, id: &str) -> pb::GetTicketResponse {
    client
        .get_ticket(pb::GetTicketRequest {
            ticket_id: id.into(),
        })
        .await
        .expect("get ticket")
        .into_inner()
}

async fn set_urgent_policy(client: &mut SupportServiceClient<Channel>) {
    client
        .set_sla_policy(pb::SetSlaPolicyRequest {
            command: cmd(),
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
}

fn reply_request(ticket_id: &str) -> pb::ReplyToTicketRequest {
    pb::ReplyToTicketRequest {
        command: cmd(),
        ticket_id: ticket_id.into(),
        author_kind: pb::TicketAuthorKind::Agent as i32,
        author_id: "agent:alice".into(),
        visibility: pb::TicketReplyVisibility::Public as i32,
        body: "We are on it.".into(),
    }
}

fn status_request(ticket_id: &str, status: pb::TicketStatus) -> pb::ChangeTicketStatusRequest {
    pb::ChangeTicketStatusRequest {
        command: cmd(),
        ticket_id: ticket_id.into(),
        status: status as i32,
        reason: String::new(),
    }
}

async fn close(client: &mut SupportServiceClient<Channel>, ticket_id: &str) {
    for status in [pb::TicketStatus::Solved, pb::TicketStatus::Closed] {
        client
            .change_ticket_status(status_request(ticket_id, status))
            .await
            .expect("status change");
    }
}

// ---- OpenTicket / GetTicket ----

#[tokio::test]
async fn open_ticket_records_the_ticket_with_the_policy_targets_and_replays() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    set_urgent_policy(&mut client).await;
    let req = open_request();
    let first = client
        .open_ticket(req.clone())
        .await
        .expect("open")
        .into_inner();
    let result = first.result.clone().expect("result");
    assert!(!result.replayed);
    assert_eq!(result.event_types, ["ticket.opened"]);
    assert_eq!(
        result.streams[0].stream,
        format!("ticket-{}", first.ticket_id)
    );

    let got = get_ticket(&mut client, &first.ticket_id).await;
    let ticket = got.ticket.expect("ticket");
    assert_eq!(got.version, 0);
    assert_eq!(ticket.subject, "Parcel never arrived");
    assert_eq!(ticket.customer_id, customer().to_string());
    assert_eq!(ticket.status, pb::TicketStatus::New as i32);
    let now = DEFAULT_NOW_SECONDS;
    assert_eq!(
        ticket.first_response.expect("target").due_at,
        Some(prost_types::Timestamp {
            seconds: now + 3600,
            nanos: 0
        })
    );
    assert_eq!(
        ticket.resolution.expect("target").due_at.map(|t| t.seconds),
        Some(now + 4 * 3600)
    );

    // The same command again: the first result, nothing appended.
    let head = server.head().await;
    let again = client.open_ticket(req).await.expect("retry").into_inner();
    let replayed = again.result.expect("result");
    assert!(replayed.replayed);
    assert_eq!(replayed.streams, result.streams);
    assert_eq!(again.ticket_id, first.ticket_id);
    assert_eq!(server.head().await, head);

    // A priority without policy targets gets none.
    let low = open(
        &mut client,
        pb::OpenTicketRequest {
            command: cmd(),
            priority: pb::TicketPriority::Low as i32,
            ..open_request()
        },
    )
    .await;
    let ticket = get_ticket(&mut client, &low).await.ticket.expect("ticket");
    assert_eq!((ticket.first_response, ticket.resolution), (None, None));

    // Ticket events are tagged with the customer.
    let tagged = server
        .events(EventFilter {
            customer_id: Some(customer()),
            ..EventFilter::default()
        })
        .await;
    assert_eq!(tagged.len(), 2);
}

#[tokio::test]
async fn open_ticket_keeps_a_chosen_id_and_refuses_a_taken_one() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let id = Uuid::now_v7().to_string();
    let opened = open(
        &mut client,
        pb::OpenTicketRequest {
            ticket_id: id.clone(),
            ..open_request()
        },
    )
    .await;
    assert_eq!(opened, id);
    let err = client
        .open_ticket(pb::OpenTicketRequest {
            command: cmd(),
            ticket_id: id,
            ..open_request()
        })
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn open_ticket_names_each_invalid_field() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let cases: Vec<(&str, pb::OpenTicketRequest)> = vec![
        (
            "command",
            pb::OpenTicketRequest {
                command: None,
                ..open_request()
            },
        ),
        (
            "command.command_id",
            pb::OpenTicketRequest {
                command: Some(pb::CommandMetadata {
                    command_id: "not-a-uuid".into(),
                    ..Default::default()
                }),
                ..open_request()
            },
        ),
        (
            "ticket_id",
            pb::OpenTicketRequest {
                ticket_id: "nope".into(),
                ..open_request()
            },
        ),
        (
            "customer_id",
            pb::OpenTicketRequest {
                customer_id: String::new(),
                ..open_request()
            },
        ),
        (
            "channel",
            pb::OpenTicketRequest {
                channel: 0,
                ..open_request()
            },
        ),
        (
            "channel",
            pb::OpenTicketRequest {
                channel: 99,
                ..open_request()
            },
        ),
        (
            "subject",
            pb::OpenTicketRequest {
                subject: "  ".into(),
                ..open_request()
            },
        ),
        (
            "subject",
            pb::OpenTicketRequest {
                subject: "x".repeat(201),
                ..open_request()
            },
        ),
        (
            "description",
            pb::OpenTicketRequest {
                description: "x".repeat(20_001),
                ..open_request()
            },
        ),
        (
            "priority",
            pb::OpenTicketRequest {
                priority: 0,
                ..open_request()
            },
        ),
    ];
    for (field, req) in cases {
        let err = client.open_ticket(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
    assert_eq!(server.head().await, 0);
}

#[tokio::test]
async fn get_ticket_checks_the_id_and_reports_unknown_tickets() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let err = client
        .get_ticket(pb::GetTicketRequest {
            ticket_id: "x".into(),
        })
        .await
        .expect_err("bad id");
    assert_invalid(&err, "ticket_id");
    let err = client
        .get_ticket(pb::GetTicketRequest {
            ticket_id: Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
}

// ---- AssignTicket ----

#[tokio::test]
async fn assign_ticket_records_the_agent_replays_and_refuses_what_it_must() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let id = open(&mut client, open_request()).await;
    let req = pb::AssignTicketRequest {
        command: cmd(),
        ticket_id: id.clone(),
        agent_id: "agent:alice".into(),
    };
    let first = client
        .assign_ticket(req.clone())
        .await
        .expect("assign")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(first.event_types, ["ticket.assigned"]);
    let head = server.head().await;
    let again = client
        .assign_ticket(req)
        .await
        .expect("retry")
        .into_inner()
        .result
        .expect("result");
    assert!(again.replayed);
    assert_eq!(again.streams, first.streams);
    assert_eq!(server.head().await, head);
    let ticket = get_ticket(&mut client, &id).await.ticket.expect("ticket");
    assert_eq!(ticket.assignee_agent_id, "agent:alice");

    // The same agent under a new command id changes nothing.
    let same = client
        .assign_ticket(pb::AssignTicketRequest {
            command: cmd(),
            ticket_id: id.clone(),
            agent_id: "agent:alice".into(),
        })
        .await
        .expect("same agent")
        .into_inner()
        .result
        .expect("result");
    assert!(same.streams.is_empty() && !same.replayed);

    for (field, ticket_id, agent) in [
        ("ticket_id", "nope".to_owned(), "agent:bob"),
        ("agent_id", id.clone(), " "),
        ("agent_id", id.clone(), &*"a".repeat(257)),
    ] {
        let err = client
            .assign_ticket(pb::AssignTicketRequest {
                command: cmd(),
                ticket_id,
                agent_id: agent.into(),
            })
            .await
            .expect_err(field);
        assert_invalid(&err, field);
    }
    let err = client
        .assign_ticket(pb::AssignTicketRequest {
            command: cmd(),
            ticket_id: Uuid::now_v7().to_string(),
            agent_id: "agent:bob".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    close(&mut client, &id).await;
    let err = client
        .assign_ticket(pb::AssignTicketRequest {
            command: cmd(),
            ticket_id: id,
            agent_id: "agent:bob".into(),
        })
        .await
        .expect_err("closed");
    assert_rejected(&err, "TICKET_CLOSED");
}

// ---- ReplyToTicket ----

#[tokio::test]
async fn an_agent_reply_opens_the_ticket_and_a_retry_replays() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let id = open(&mut client, open_request()).await;
    let req = reply_request(&id);
    let first = client
        .reply_to_ticket(req.clone())
        .await
        .expect("reply")
        .into_inner();
    let result = first.result.clone().expect("result");
    assert_eq!(
        result.event_types,
        ["ticket.replied", "ticket.status_changed"]
    );
    let head = server.head().await;
    let again = client
        .reply_to_ticket(req)
        .await
        .expect("retry")
        .into_inner();
    assert!(again.result.as_ref().expect("result").replayed);
    assert_eq!(again.result.expect("result").streams, result.streams);
    assert_eq!(again.reply_id, first.reply_id);
    assert_eq!(server.head().await, head);

    let got = get_ticket(&mut client, &id).await;
    let ticket = got.ticket.expect("ticket");
    assert_eq!(got.version, 2);
    assert_eq!(ticket.status, pb::TicketStatus::Open as i32);
    assert_eq!(ticket.replies.len(), 1);
    assert_eq!(ticket.replies[0].reply_id, first.reply_id);
    assert_eq!(ticket.replies[0].body, "We are on it.");
}

#[tokio::test]
async fn a_customer_reply_reopens_a_solved_ticket() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let id = open(&mut client, open_request()).await;
    client
        .change_ticket_status(status_request(&id, pb::TicketStatus::Solved))
        .await
        .expect("solve");
    let reply = client
        .reply_to_ticket(pb::ReplyToTicketRequest {
            author_kind: pb::TicketAuthorKind::Customer as i32,
            author_id: String::new(),
            ..reply_request(&id)
        })
        .await
        .expect("customer reply")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(
        reply.event_types,
        ["ticket.replied", "ticket.status_changed"]
    );
    let ticket = get_ticket(&mut client, &id).await.ticket.expect("ticket");
    assert_eq!(ticket.status, pb::TicketStatus::Open as i32);
    assert_eq!(ticket.replies[0].author_id, customer().to_string());
}

#[tokio::test]
async fn a_reply_names_each_invalid_field_and_refuses_closed_or_unknown_tickets() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let id = open(&mut client, open_request()).await;
    let head = server.head().await;
    let cases = [
        (
            "ticket_id",
            pb::ReplyToTicketRequest {
                ticket_id: String::new(),
                ..reply_request(&id)
            },
        ),
        (
            "author_kind",
            pb::ReplyToTicketRequest {
                author_kind: 0,
                ..reply_request(&id)
            },
        ),
        (
            "author_id",
            pb::ReplyToTicketRequest {
                author_id: String::new(),
                ..reply_request(&id)
            },
        ),
        (
            "visibility",
            pb::ReplyToTicketRequest {
                visibility: 0,
                ..reply_request(&id)
            },
        ),
        (
            "visibility",
            pb::ReplyToTicketRequest {
                author_kind: pb::TicketAuthorKind::Customer as i32,
                author_id: String::new(),
                visibility: pb::TicketReplyVisibility::Internal as i32,
                ..reply_request(&id)
            },
        ),
        (
            "body",
            pb::ReplyToTicketRequest {
                body: " ".into(),
                ..reply_request(&id)
            },
        ),
        (
            "body",
            pb::ReplyToTicketRequest {
                body: "x".repeat(20_001),
                ..reply_request(&id)
            },
        ),
    ];
    for (field, req) in cases {
        let err = client.reply_to_ticket(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
    assert_eq!(server.head().await, head);
    let err = client
        .reply_to_ticket(reply_request(&Uuid::now_v7().to_string()))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    close(&mut client, &id).await;
    let err = client
        .reply_to_ticket(reply_request(&id))
        .await
        .expect_err("closed");
    assert_rejected(&err, "TICKET_CLOSED");
}

// ---- ChangeTicketStatus ----

#[tokio::test]
async fn status_changes_follow_the_table_and_replay() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let id = open(&mut client, open_request()).await;
    let req = pb::ChangeTicketStatusRequest {
        reason: "waiting for the carrier".into(),
        ..status_request(&id, pb::TicketStatus::OnHold)
    };
    let first = client
        .change_ticket_status(req.clone())
        .await
        .expect("change")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(first.event_types, ["ticket.status_changed"]);
    let head = server.head().await;
    let again = client
        .change_ticket_status(req)
        .await
        .expect("retry")
        .into_inner()
        .result
        .expect("result");
    assert!(again.replayed);
    assert_eq!(again.streams, first.streams);
    assert_eq!(server.head().await, head);

    // Already ON_HOLD: nothing to do.
    let same = client
        .change_ticket_status(status_request(&id, pb::TicketStatus::OnHold))
        .await
        .expect("same")
        .into_inner()
        .result
        .expect("result");
    assert!(same.streams.is_empty());

    let err = client
        .change_ticket_status(status_request(&id, pb::TicketStatus::Closed))
        .await
        .expect_err("ON_HOLD -> CLOSED");
    assert_rejected(&err, "INVALID_STATUS_TRANSITION");
    let err = client
        .change_ticket_status(status_request(&id, pb::TicketStatus::New))
        .await
        .expect_err("-> NEW");
    assert_rejected(&err, "INVALID_STATUS_TRANSITION");

    for (field, req) in [
        ("status", status_request(&id, pb::TicketStatus::Unspecified)),
        (
            "status",
            pb::ChangeTicketStatusRequest {
                status: 42,
                ..status_request(&id, pb::TicketStatus::Open)
            },
        ),
        (
            "reason",
            pb::ChangeTicketStatusRequest {
                reason: "x".repeat(501),
                ..status_request(&id, pb::TicketStatus::Open)
            },
        ),
        ("ticket_id", status_request("nope", pb::TicketStatus::Open)),
    ] {
        let err = client.change_ticket_status(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
    let err = client
        .change_ticket_status(status_request(
            &Uuid::now_v7().to_string(),
            pb::TicketStatus::Open,
        ))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);

    close(&mut client, &id).await;
    let err = client
        .change_ticket_status(status_request(&id, pb::TicketStatus::Open))
        .await
        .expect_err("closed is terminal");
    assert_rejected(&err, "INVALID_STATUS_TRANSITION");
}

// ---- SetSlaPolicy / GetSlaPolicy ----

#[tokio::test]
async fn the_sla_policy_is_set_per_priority_read_back_and_replayed() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let empty = client
        .get_sla_policy(pb::GetSlaPolicyRequest {})
        .await
        .expect("get")
        .into_inner();
    assert!(empty.targets.is_empty());
    assert_eq!(empty.version, None);

    let req = pb::SetSlaPolicyRequest {
        command: cmd(),
        priority: pb::TicketPriority::High as i32,
        first_response: Some(prost_types::Duration {
            seconds: 7200,
            nanos: 0,
        }),
        resolution: None,
    };
    let first = client
        .set_sla_policy(req.clone())
        .await
        .expect("set")
        .into_inner();
    let result = first.result.expect("result");
    assert_eq!(result.event_types, ["sla.policy_set"]);
    assert_eq!(
        result.streams[0].stream,
        format!("slapolicy-{}", first.policy_id)
    );
    let head = server.head().await;
    let again = client
        .set_sla_policy(req)
        .await
        .expect("retry")
        .into_inner()
        .result
        .expect("result");
    assert!(again.replayed);
    assert_eq!(again.streams, result.streams);
    assert_eq!(server.head().await, head);

    set_urgent_policy(&mut client).await;
    let policy = client
        .get_sla_policy(pb::GetSlaPolicyRequest {})
        .await
        .expect("get")
        .into_inner();
    assert_eq!(policy.version, Some(1));
    assert_eq!(policy.policy_id, first.policy_id);
    let priorities: Vec<i32> = policy.targets.iter().map(|t| t.priority).collect();
    assert_eq!(
        priorities,
        [
            pb::TicketPriority::High as i32,
            pb::TicketPriority::Urgent as i32
        ]
    );
    assert_eq!(policy.targets[0].resolution, None);
    assert_eq!(
        policy.targets[1].resolution.map(|d| d.seconds),
        Some(4 * 3600)
    );

    let negative = Some(prost_types::Duration {
        seconds: -5,
        nanos: 0,
    });
    let zero = Some(prost_types::Duration::default());
    for (field, req) in [
        (
            "priority",
            pb::SetSlaPolicyRequest {
                command: cmd(),
                priority: 0,
                first_response: zero,
                resolution: None,
            },
        ),
        (
            "first_response",
            pb::SetSlaPolicyRequest {
                command: cmd(),
                priority: 1,
                first_response: negative,
                resolution: None,
            },
        ),
        (
            "resolution",
            pb::SetSlaPolicyRequest {
                command: cmd(),
                priority: 1,
                first_response: None,
                resolution: zero,
            },
        ),
    ] {
        let err = client.set_sla_policy(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
}

#[tokio::test]
async fn a_policy_change_does_not_rewrite_the_targets_of_open_tickets() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    set_urgent_policy(&mut client).await;
    let id = open(&mut client, open_request()).await;
    client
        .set_sla_policy(pb::SetSlaPolicyRequest {
            command: cmd(),
            priority: pb::TicketPriority::Urgent as i32,
            first_response: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
            resolution: None,
        })
        .await
        .expect("change policy");
    let ticket = get_ticket(&mut client, &id).await.ticket.expect("ticket");
    assert_eq!(
        ticket
            .first_response
            .expect("target")
            .due_at
            .map(|t| t.seconds),
        Some(DEFAULT_NOW_SECONDS + 3600)
    );
    assert!(ticket.resolution.is_some());
}

// ---- SubmitSurveyResponse / GetSurveyResponse ----

fn survey_request() -> pb::SubmitSurveyResponseRequest {
    pb::SubmitSurveyResponseRequest {
        command: cmd(),
        response_id: String::new(),
        customer_id: customer().to_string(),
        csat: Some(5),
        nps: Some(9),
        comment: "Quick and kind.".into(),
        link: None,
    }
}

#[tokio::test]
async fn a_survey_response_linked_to_the_customers_ticket_is_recorded_and_replays() {
    use pb::submit_survey_response_request::Link;
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let ticket_id = open(&mut client, open_request()).await;
    let req = pb::SubmitSurveyResponseRequest {
        link: Some(Link::TicketId(ticket_id.clone())),
        ..survey_request()
    };
    let first = client
        .submit_survey_response(req.clone())
        .await
        .expect("submit")
        .into_inner();
    let result = first.result.clone().expect("result");
    assert_eq!(result.event_types, ["survey.responded"]);
    let head = server.head().await;
    let again = client
        .submit_survey_response(req)
        .await
        .expect("retry")
        .into_inner();
    assert!(again.result.as_ref().expect("result").replayed);
    assert_eq!(again.result.expect("result").streams, result.streams);
    assert_eq!(again.response_id, first.response_id);
    assert_eq!(server.head().await, head);

    let got = client
        .get_survey_response(pb::GetSurveyResponseRequest {
            response_id: first.response_id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    let response = got.response.expect("response");
    assert_eq!((response.csat, response.nps), (Some(5), Some(9)));
    assert_eq!(
        response.link,
        Some(pb::survey_response::Link::TicketId(ticket_id))
    );
    assert_eq!(got.version, 0);

    // A campaign link and an unlinked response; the events carry the customer tag.
    let campaign = Uuid::now_v7().to_string();
    client
        .submit_survey_response(pb::SubmitSurveyResponseRequest {
            csat: None,
            link: Some(Link::CampaignId(campaign.clone())),
            ..survey_request()
        })
        .await
        .expect("campaign");
    client
        .submit_survey_response(pb::SubmitSurveyResponseRequest {
            nps: None,
            ..survey_request()
        })
        .await
        .expect("unlinked");
    let surveys = server
        .events(EventFilter {
            categories: vec!["survey".into()],
            customer_id: Some(customer()),
            ..EventFilter::default()
        })
        .await;
    assert_eq!(surveys.len(), 3);
}

#[tokio::test]
async fn survey_scores_out_of_range_are_refused_naming_the_field() {
    use pb::submit_survey_response_request::Link;
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let cases = [
        (
            "csat",
            pb::SubmitSurveyResponseRequest {
                csat: Some(0),
                ..survey_request()
            },
        ),
        (
            "csat",
            pb::SubmitSurveyResponseRequest {
                csat: Some(6),
                ..survey_request()
            },
        ),
        (
            "nps",
            pb::SubmitSurveyResponseRequest {
                nps: Some(11),
                ..survey_request()
            },
        ),
        (
            "nps",
            pb::SubmitSurveyResponseRequest {
                nps: Some(-1),
                ..survey_request()
            },
        ),
        (
            "csat",
            pb::SubmitSurveyResponseRequest {
                csat: None,
                nps: None,
                ..survey_request()
            },
        ),
        (
            "comment",
            pb::SubmitSurveyResponseRequest {
                comment: "x".repeat(2001),
                ..survey_request()
            },
        ),
        (
            "customer_id",
            pb::SubmitSurveyResponseRequest {
                customer_id: "someone".into(),
                ..survey_request()
            },
        ),
        (
            "response_id",
            pb::SubmitSurveyResponseRequest {
                response_id: "nope".into(),
                ..survey_request()
            },
        ),
        (
            "ticket_id",
            pb::SubmitSurveyResponseRequest {
                link: Some(Link::TicketId("nope".into())),
                ..survey_request()
            },
        ),
        (
            "campaign_id",
            pb::SubmitSurveyResponseRequest {
                link: Some(Link::CampaignId(String::new())),
                ..survey_request()
            },
        ),
    ];
    for (field, req) in cases {
        let err = client.submit_survey_response(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
    assert_eq!(server.head().await, 0);
}

#[tokio::test]
async fn a_survey_linked_to_another_customers_or_an_unknown_ticket_is_refused() {
    use pb::submit_survey_response_request::Link;
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let theirs = open(
        &mut client,
        pb::OpenTicketRequest {
            customer_id: Uuid::from_u128(0xc1).to_string(),
            ..open_request()
        },
    )
    .await;
    let head = server.head().await;
    let err = client
        .submit_survey_response(pb::SubmitSurveyResponseRequest {
            link: Some(Link::TicketId(theirs)),
            ..survey_request()
        })
        .await
        .expect_err("another customer's ticket");
    assert_rejected(&err, "TICKET_OF_ANOTHER_CUSTOMER");
    let err = client
        .submit_survey_response(pb::SubmitSurveyResponseRequest {
            link: Some(Link::TicketId(Uuid::now_v7().to_string())),
            ..survey_request()
        })
        .await
        .expect_err("unknown ticket");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(server.head().await, head);

    let taken = Uuid::now_v7().to_string();
    client
        .submit_survey_response(pb::SubmitSurveyResponseRequest {
            response_id: taken.clone(),
            ..survey_request()
        })
        .await
        .expect("first");
    let err = client
        .submit_survey_response(pb::SubmitSurveyResponseRequest {
            response_id: taken,
            ..survey_request()
        })
        .await
        .expect_err("taken id");
    assert_eq!(err.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn get_survey_response_checks_the_id_and_reports_unknown_ones() {
    let server = start_server(start_clock()).await;
    let mut client = server.client().await;
    let err = client
        .get_survey_response(pb::GetSurveyResponseRequest {
            response_id: String::new(),
        })
        .await
        .expect_err("missing id");
    assert_invalid(&err, "response_id");
    let err = client
        .get_survey_response(pb::GetSurveyResponseRequest {
            response_id: Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
}

// ---- The SLA watcher ----

#[tokio::test]
async fn the_watcher_breaches_each_due_target_exactly_once_even_after_a_restart() {
    let clock = start_clock();
    let server = start_server(clock.clone()).await;
    let mut client = server.client().await;
    set_urgent_policy(&mut client).await;
    let id = open(&mut client, open_request()).await;
    let watcher = server.watcher();
    assert_eq!(
        watcher.check_once().await.expect("check"),
        0,
        "nothing due yet"
    );

    clock.advance(HOUR + Duration::from_secs(1));
    // Events of other categories at the head must not hold the check up.
    client
        .submit_survey_response(survey_request())
        .await
        .expect("survey");
    let appended = tokio::time::timeout(Duration::from_secs(30), watcher.check_once())
        .await
        .expect("the check does not wait for a ticket event that never comes");
    assert_eq!(appended.expect("check"), 1);
    let breaches = server.breaches().await;
    assert_eq!(breaches.len(), 1);
    assert_eq!(breaches[0].ticket_id, id);
    assert_eq!(breaches[0].target, pb::SlaTarget::FirstResponse as i32);
    assert_eq!(
        breaches[0].due_at.map(|t| t.seconds),
        Some(DEFAULT_NOW_SECONDS + 3600)
    );
    assert_eq!(breaches[0].detected_at, Some(proto_now(&clock)));
    let head = server.head().await;
    assert_eq!(watcher.check_once().await.expect("check again"), 0);
    assert_eq!(server.watcher().check_once().await.expect("restarted"), 0);
    assert_eq!(server.head().await, head);

    // The breach is tagged with the customer and came from the derived command id.
    let recorded = server
        .events(EventFilter {
            event_types: vec!["ticket.sla_breached".into()],
            customer_id: Some(customer()),
            ..EventFilter::default()
        })
        .await;
    assert_eq!(recorded.len(), 1);
    let ticket_uuid = Uuid::parse_str(&id).expect("uuid");
    assert_eq!(
        recorded[0].metadata.causation_id,
        breach_command_id(ticket_uuid, pb::SlaTarget::FirstResponse).to_string()
    );

    clock.advance(3 * HOUR);
    assert_eq!(watcher.check_once().await.expect("resolution"), 1);
    let breaches = server.breaches().await;
    assert_eq!(breaches.len(), 2);
    assert_eq!(breaches[1].target, pb::SlaTarget::Resolution as i32);
    assert_eq!(watcher.check_once().await.expect("again"), 0);
    assert_eq!(server.watcher().check_once().await.expect("restarted"), 0);
    assert_eq!(server.breaches().await.len(), 2);

    let ticket = get_ticket(&mut client, &id).await.ticket.expect("ticket");
    assert!(ticket.first_response.expect("target").breached_at.is_some());
    assert!(ticket.resolution.expect("target").breached_at.is_some());
}

#[tokio::test]
async fn a_ticket_answered_in_time_never_gets_a_first_response_breach() {
    let clock = start_clock();
    let server = start_server(clock.clone()).await;
    let mut client = server.client().await;
    set_urgent_policy(&mut client).await;
    let id = open(&mut client, open_request()).await;
    let watcher = server.watcher();
    assert_eq!(watcher.check_once().await.expect("check"), 0);
    clock.advance(HOUR / 2);
    client
        .reply_to_ticket(reply_request(&id))
        .await
        .expect("reply in time");
    clock.advance(2 * HOUR);
    assert_eq!(watcher.check_once().await.expect("check"), 0);
    assert_eq!(server.watcher().check_once().await.expect("fresh"), 0);
    assert!(server.breaches().await.is_empty());

    // Unsolved past the resolution target: only that one is breached.
    clock.advance(2 * HOUR);
    assert_eq!(watcher.check_once().await.expect("check"), 1);
    let breaches = server.breaches().await;
    assert_eq!(breaches.len(), 1);
    assert_eq!(breaches[0].target, pb::SlaTarget::Resolution as i32);
}

#[tokio::test]
async fn a_late_reply_records_its_own_breach_and_the_watcher_adds_none() {
    let clock = start_clock();
    let server = start_server(clock.clone()).await;
    let mut client = server.client().await;
    set_urgent_policy(&mut client).await;
    let id = open(&mut client, open_request()).await;
    clock.advance(2 * HOUR);
    let result = client
        .reply_to_ticket(reply_request(&id))
        .await
        .expect("late reply")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(
        result.event_types,
        [
            "ticket.sla_breached",
            "ticket.replied",
            "ticket.status_changed"
        ]
    );
    assert_eq!(server.watcher().check_once().await.expect("check"), 0);
    assert_eq!(server.breaches().await.len(), 1);
}

#[tokio::test]
async fn closed_and_target_free_tickets_are_never_breached() {
    let clock = start_clock();
    let server = start_server(clock.clone()).await;
    let mut client = server.client().await;
    set_urgent_policy(&mut client).await;
    let closed = open(&mut client, open_request()).await;
    close(&mut client, &closed).await;
    open(
        &mut client,
        pb::OpenTicketRequest {
            command: cmd(),
            priority: pb::TicketPriority::Normal as i32,
            ..open_request()
        },
    )
    .await;
    clock.advance(24 * HOUR);
    assert_eq!(server.watcher().check_once().await.expect("check"), 0);
    assert!(server.breaches().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_watchers_racing_append_each_breach_once() {
    let clock = start_clock();
    let server = start_server(clock.clone()).await;
    let mut client = server.client().await;
    set_urgent_policy(&mut client).await;
    let mut tickets = Vec::new();
    for _ in 0..5 {
        tickets.push(open(&mut client, open_request()).await);
    }
    clock.advance(HOUR);
    let a = Arc::new(server.watcher());
    let b = Arc::new(server.watcher());
    let (ra, rb) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { a.check_once().await }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { b.check_once().await }
        }),
    );
    let total = ra.expect("join").expect("a") + rb.expect("join").expect("b");
    assert_eq!(total, tickets.len());
    let mut breached: Vec<String> = server
        .breaches()
        .await
        .into_iter()
        .map(|b| b.ticket_id)
        .collect();
    breached.sort();
    tickets.sort();
    assert_eq!(breached, tickets);
    assert_eq!(a.check_once().await.expect("a again"), 0);
    assert_eq!(b.check_once().await.expect("b again"), 0);
}

#[tokio::test]
async fn the_spawned_watcher_records_a_breach_once_the_clock_passes_the_due_time() {
    let clock = start_clock();
    let server = start_server(clock.clone()).await;
    let mut client = server.client().await;
    set_urgent_policy(&mut client).await;
    let id = open(&mut client, open_request()).await;
    let mut breaches = server
        .store
        .subscribe(
            SubscribeFrom::Now,
            EventFilter {
                event_types: vec!["ticket.sla_breached".into()],
                ..EventFilter::default()
            },
        )
        .await
        .expect("subscribe");
    let task = server.watcher().spawn(Duration::from_millis(5));
    clock.advance(HOUR);
    // Bounded wait for the event itself, not a fixed sleep.
    let breach = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match breaches.next().await {
                Some(Ok(SubscriptionItem::Event(e))) => return e,
                Some(Ok(SubscriptionItem::CaughtUp { .. })) => {}
                other => panic!("subscription: {other:?}"),
            }
        }
    })
    .await
    .expect("a breach within the bound");
    assert_eq!(breach.stream, format!("ticket-{id}"));
    assert_eq!(breach.metadata.actor, "svc:sla-watcher");
    task.abort();
    assert_eq!(server.breaches().await.len(), 1);
}
