//! LeadService as a client team sees it: a real tonic server on an ephemeral
//! port over a temporary sled log with an injected clock, driven through the
//! generated client. Every RPC is covered for its happy path, idempotent
//! retry, each invalid field (INVALID_ARGUMENT naming it in BadRequest), its
//! business rules (FAILED_PRECONDITION with the ErrorInfo reason) and unknown
//! ids (NOT_FOUND).

use kizuna_command::event_id;
use kizuna_domain::decider::Decider as _;
use kizuna_domain::event::DomainEvent as _;
use kizuna_domain::lead::{Lead, LeadEvent};
use kizuna_domain::pb;
use kizuna_eventlog::{
    Direction, ExpectedVersion, ManualClock, ProposedEvent, RecordedEvent, Timestamp,
};
use kizuna_lead::LeadConfig;
use kizuna_tests::TestServer;
use kizuna_tests::status::{assert_invalid, assert_rejected};
use pb::lead_service_client::LeadServiceClient;
use prost::Message as _;
use std::collections::HashSet;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

/// 2026-01-01T00:00:00Z.
const START_NANOS: i64 = 1_767_225_600_000_000_000;

/// The one place the server under test is started (swap it for the full
/// `kizuna` server to run these tests against it).
async fn start_server(clock: ManualClock) -> TestServer {
    kizuna_tests::serve_on_temp_log(clock, |runner| {
        tonic::transport::Server::builder().add_service(kizuna_lead::service(
            runner,
            LeadConfig {
                default_region: "JP".parse().expect("JP"),
            },
        ))
    })
    .await
}

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_unix_nanos(START_NANOS))
}

async fn connect(server: &TestServer) -> LeadServiceClient<Channel> {
    LeadServiceClient::connect(server.endpoint.clone())
        .await
        .expect("connect")
}

async fn setup() -> (TestServer, LeadServiceClient<Channel>) {
    let server = start_server(clock()).await;
    let client = connect(&server).await;
    (server, client)
}

fn command(id: Uuid) -> Option<pb::CommandMetadata> {
    Some(pb::CommandMetadata {
        command_id: id.to_string(),
        actor: "user:test".into(),
        ..Default::default()
    })
}

fn new_command() -> Option<pb::CommandMetadata> {
    command(Uuid::now_v7())
}

async fn stream_events(server: &TestServer, stream: &str) -> Vec<RecordedEvent> {
    server
        .store
        .read_stream(stream, Direction::Forward, None, 10_000)
        .await
        .expect("read stream")
        .events
}

#[track_caller]
fn assert_not_found(status: &Status, id: &str) {
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains(id), "{status:?}");
}

fn contact(email: &str, phone: &str) -> pb::ContactData {
    pb::ContactData {
        given_name: "Taro".into(),
        family_name: "Yamada".into(),
        email: email.into(),
        phone: phone.into(),
        ..Default::default()
    }
}

fn consent(channel: pb::ContactChannel, purpose: pb::ConsentPurpose) -> pb::ConsentGrant {
    pb::ConsentGrant {
        channel: channel.into(),
        purpose: purpose.into(),
    }
}

fn capture_request(contact: pb::ContactData) -> pb::CaptureLeadRequest {
    pb::CaptureLeadRequest {
        command: new_command(),
        source: "web-form".into(),
        channel: pb::LeadChannel::Web.into(),
        contact: Some(contact),
        consents: vec![consent(
            pb::ContactChannel::Email,
            pb::ConsentPurpose::Marketing,
        )],
        ..Default::default()
    }
}

async fn capture(client: &mut LeadServiceClient<Channel>, contact: pb::ContactData) -> String {
    client
        .capture_lead(capture_request(contact))
        .await
        .expect("capture")
        .into_inner()
        .lead_id
}

async fn set_status(
    client: &mut LeadServiceClient<Channel>,
    lead_id: &str,
    status: pb::LeadStatus,
) -> Result<pb::CommandResult, Status> {
    client
        .change_lead_status(pb::ChangeLeadStatusRequest {
            command: new_command(),
            lead_id: lead_id.into(),
            status: status.into(),
            reason: "test".into(),
        })
        .await
        .map(|r| r.into_inner().result.expect("result"))
}

async fn qualified(client: &mut LeadServiceClient<Channel>, contact: pb::ContactData) -> String {
    let id = capture(client, contact).await;
    set_status(client, &id, pb::LeadStatus::Working)
        .await
        .expect("working");
    set_status(client, &id, pb::LeadStatus::Qualified)
        .await
        .expect("qualified");
    id
}

async fn get(client: &mut LeadServiceClient<Channel>, lead_id: &str) -> (pb::Lead, u64) {
    let r = client
        .get_lead(pb::GetLeadRequest {
            lead_id: lead_id.into(),
        })
        .await
        .expect("get")
        .into_inner();
    (r.lead.expect("lead"), r.version)
}

fn stream_of(result: &pb::CommandResult, i: usize) -> &pb::AppendedStream {
    &result.streams[i]
}

/// Puts an event straight into the log, as another service would.
async fn append_raw(
    server: &TestServer,
    stream: &str,
    event_type: &str,
    version: u32,
    customer_id: Option<Uuid>,
    payload: Vec<u8>,
) {
    let mut event = ProposedEvent::new(event_type, payload);
    event.schema_version = version;
    event.customer_id = customer_id;
    server
        .store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
        .expect("append");
}

// --- CaptureLead ---

#[tokio::test]
async fn capture_lead_records_normalised_contact_at_the_injected_time() {
    let (server, mut client) = setup().await;
    let mut req = capture_request(pb::ContactData {
        given_name: "ﾀﾛｳ".into(),
        family_name: "山田\u{3000}".into(),
        email: " Ｔａｒｏ＠ＥＸＡＭＰＬＥ．ＪＰ ".into(),
        phone: "０９０－１２３４－５６７８".into(),
        ..Default::default()
    });
    let campaign = Uuid::now_v7();
    req.campaign_id = campaign.to_string();
    let reply = client
        .capture_lead(req)
        .await
        .expect("capture")
        .into_inner();
    let result = reply.result.expect("result");
    assert_eq!(result.event_types, ["lead.captured"]);
    assert!(!result.replayed);
    assert_eq!(
        stream_of(&result, 0).stream,
        format!("lead-{}", reply.lead_id)
    );
    assert_eq!(stream_of(&result, 0).first_version, 0);

    let (lead, version) = get(&mut client, &reply.lead_id).await;
    assert_eq!(version, 0);
    assert_eq!(lead.status(), pb::LeadStatus::New);
    assert_eq!(lead.channel(), pb::LeadChannel::Web);
    assert_eq!(lead.source, "web-form");
    assert_eq!(lead.campaign_id, campaign.to_string());
    let c = lead.contact.expect("contact");
    assert_eq!(
        (
            c.given_name.as_str(),
            c.family_name.as_str(),
            c.email.as_str(),
            c.phone.as_str()
        ),
        ("タロウ", "山田", "taro@example.jp", "+819012345678")
    );
    let recorded = stream_events(&server, &format!("lead-{}", reply.lead_id)).await;
    assert_eq!(recorded[0].occurred_at.unix_nanos, START_NANOS);
    assert_eq!(recorded[0].schema_version, 2);
}

#[tokio::test]
async fn capture_lead_with_a_chosen_id_uses_it_and_a_taken_id_already_exists() {
    let (server, mut client) = setup().await;
    let id = Uuid::now_v7();
    let mut req = capture_request(contact("a@example.jp", ""));
    req.lead_id = id.to_string();
    let reply = client.capture_lead(req.clone()).await.expect("capture");
    assert_eq!(reply.into_inner().lead_id, id.to_string());

    let before = server.head().await;
    req.command = new_command();
    let err = client.capture_lead(req).await.expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(server.head().await, before);
}

#[tokio::test]
async fn capture_lead_retried_returns_the_first_result_and_appends_nothing() {
    let (server, mut client) = setup().await;
    let req = capture_request(contact("a@example.jp", ""));
    let first = client
        .capture_lead(req.clone())
        .await
        .expect("first")
        .into_inner();
    let before = server.head().await;
    let again = client.capture_lead(req).await.expect("again").into_inner();
    assert_eq!(again.lead_id, first.lead_id, "the derived id is the same");
    let (first, again) = (first.result.expect("r"), again.result.expect("r"));
    assert!(again.replayed);
    assert_eq!(again.streams, first.streams);
    assert_eq!(again.event_types, first.event_types);
    assert_eq!(server.head().await, before);
}

#[tokio::test]
async fn capture_lead_names_each_invalid_field() {
    let (server, mut client) = setup().await;
    let valid = || capture_request(contact("a@example.jp", ""));
    let cases: Vec<(&str, pb::CaptureLeadRequest)> = vec![
        (
            "command",
            pb::CaptureLeadRequest {
                command: None,
                ..valid()
            },
        ),
        (
            "command.command_id",
            pb::CaptureLeadRequest {
                command: Some(pb::CommandMetadata {
                    command_id: "not-a-uuid".into(),
                    ..Default::default()
                }),
                ..valid()
            },
        ),
        (
            "lead_id",
            pb::CaptureLeadRequest {
                lead_id: "lead-1".into(),
                ..valid()
            },
        ),
        (
            "channel",
            pb::CaptureLeadRequest {
                channel: pb::LeadChannel::Unspecified.into(),
                ..valid()
            },
        ),
        (
            "channel",
            pb::CaptureLeadRequest {
                channel: 42,
                ..valid()
            },
        ),
        (
            "campaign_id",
            pb::CaptureLeadRequest {
                campaign_id: "spring".into(),
                ..valid()
            },
        ),
        (
            "source",
            pb::CaptureLeadRequest {
                source: "s".repeat(101),
                ..valid()
            },
        ),
        (
            "contact",
            pb::CaptureLeadRequest {
                contact: Some(contact("", "")),
                ..valid()
            },
        ),
        (
            "contact",
            pb::CaptureLeadRequest {
                contact: None,
                ..valid()
            },
        ),
        (
            "contact.email",
            pb::CaptureLeadRequest {
                contact: Some(contact("taro@", "")),
                ..valid()
            },
        ),
        (
            "contact.phone",
            pb::CaptureLeadRequest {
                contact: Some(contact("", "090-1234")),
                ..valid()
            },
        ),
        (
            "consents[1]",
            pb::CaptureLeadRequest {
                consents: vec![
                    consent(pb::ContactChannel::Sms, pb::ConsentPurpose::Service),
                    consent(pb::ContactChannel::Sms, pb::ConsentPurpose::Service),
                ],
                ..valid()
            },
        ),
        (
            "consents[0].channel",
            pb::CaptureLeadRequest {
                consents: vec![consent(
                    pb::ContactChannel::Unspecified,
                    pb::ConsentPurpose::Service,
                )],
                ..valid()
            },
        ),
        (
            "consents[0].purpose",
            pb::CaptureLeadRequest {
                consents: vec![consent(
                    pb::ContactChannel::Email,
                    pb::ConsentPurpose::Unspecified,
                )],
                ..valid()
            },
        ),
    ];
    for (field, req) in cases {
        let err = client.capture_lead(req).await.expect_err(field);
        assert_invalid(&err, field);
    }
    assert_eq!(server.head().await, 0, "nothing invalid was recorded");
}

// --- UpdateLeadContact ---

#[tokio::test]
async fn update_lead_contact_replaces_normalised_data_and_ignores_no_change() {
    let (server, mut client) = setup().await;
    let id = capture(&mut client, contact("a@example.jp", "")).await;
    let req = pb::UpdateLeadContactRequest {
        command: new_command(),
        lead_id: id.clone(),
        contact: Some(contact("", "03-1234-5678")),
    };
    let result = client
        .update_lead_contact(req.clone())
        .await
        .expect("update")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(result.event_types, ["lead.contact_updated"]);
    let c = get(&mut client, &id).await.0.contact.expect("contact");
    assert_eq!((c.email.as_str(), c.phone.as_str()), ("", "+81312345678"));

    // The same command again: replayed, nothing appended.
    let before = server.head().await;
    let again = client
        .update_lead_contact(req)
        .await
        .expect("again")
        .into_inner()
        .result
        .expect("result");
    assert!(again.replayed);
    assert_eq!(again.streams, result.streams);
    assert_eq!(server.head().await, before);

    // A new command with data that normalises to the current: no streams.
    let unchanged = client
        .update_lead_contact(pb::UpdateLeadContactRequest {
            command: new_command(),
            lead_id: id,
            contact: Some(contact("", "０３（１２３４）５６７８")),
        })
        .await
        .expect("unchanged")
        .into_inner()
        .result
        .expect("result");
    assert!(unchanged.streams.is_empty() && !unchanged.replayed);
    assert_eq!(server.head().await, before);
}

#[tokio::test]
async fn update_lead_contact_refusals() {
    let (server, mut client) = setup().await;
    let id = capture(&mut client, contact("a@example.jp", "")).await;
    let req = |lead_id: &str, contact: pb::ContactData| pb::UpdateLeadContactRequest {
        command: new_command(),
        lead_id: lead_id.into(),
        contact: Some(contact),
    };
    let err = client
        .update_lead_contact(req("x", contact("a@example.jp", "")))
        .await
        .expect_err("bad id");
    assert_invalid(&err, "lead_id");
    let err = client
        .update_lead_contact(req(&id, contact("", "")))
        .await
        .expect_err("unreachable");
    assert_invalid(&err, "contact");
    let err = client
        .update_lead_contact(req(&id, contact("a@@example.jp", "")))
        .await
        .expect_err("bad email");
    assert_invalid(&err, "contact.email");
    let unknown = Uuid::now_v7().to_string();
    let err = client
        .update_lead_contact(req(&unknown, contact("a@example.jp", "")))
        .await
        .expect_err("unknown");
    assert_not_found(&err, &unknown);

    let converted = qualified(&mut client, contact("b@example.jp", "")).await;
    client
        .convert_lead(pb::ConvertLeadRequest {
            command: new_command(),
            lead_id: converted.clone(),
            customer_id: String::new(),
        })
        .await
        .expect("convert");
    let before = server.head().await;
    let err = client
        .update_lead_contact(req(&converted, contact("c@example.jp", "")))
        .await
        .expect_err("converted");
    assert_rejected(&err, "LEAD_CONVERTED");
    assert_eq!(server.head().await, before);
}

// --- ScoreLead ---

#[tokio::test]
async fn score_lead_records_the_score_and_is_idempotent() {
    let (server, mut client) = setup().await;
    let id = capture(&mut client, contact("a@example.jp", "")).await;
    let req = pb::ScoreLeadRequest {
        command: new_command(),
        lead_id: id.clone(),
        score: 73,
        reason: "asked for a quote".into(),
    };
    let first = client
        .score_lead(req.clone())
        .await
        .expect("score")
        .into_inner();
    let first = first.result.expect("result");
    assert_eq!(first.event_types, ["lead.scored"]);
    let before = server.head().await;
    let again = client.score_lead(req).await.expect("again").into_inner();
    let again = again.result.expect("result");
    assert!(again.replayed);
    assert_eq!(again.streams, first.streams);
    assert_eq!(server.head().await, before);
    let (lead, version) = get(&mut client, &id).await;
    assert_eq!(
        (lead.score, lead.score_reason.as_str()),
        (Some(73), "asked for a quote")
    );
    assert_eq!(version, 1);
}

#[tokio::test]
async fn score_lead_refusals() {
    let (_server, mut client) = setup().await;
    let id = capture(&mut client, contact("a@example.jp", "")).await;
    let req = |lead_id: &str, score: i32, reason: &str| pb::ScoreLeadRequest {
        command: new_command(),
        lead_id: lead_id.into(),
        score,
        reason: reason.into(),
    };
    for (field, r) in [
        ("lead_id", req("", 5, "x")),
        ("score", req(&id, 101, "x")),
        ("score", req(&id, -1, "x")),
        ("reason", req(&id, 5, "  ")),
        ("reason", req(&id, 5, &"r".repeat(501))),
    ] {
        let err = client.score_lead(r).await.expect_err(field);
        assert_invalid(&err, field);
    }
    let unknown = Uuid::now_v7().to_string();
    let err = client
        .score_lead(req(&unknown, 5, "x"))
        .await
        .expect_err("unknown");
    assert_not_found(&err, &unknown);

    let survivor = capture(&mut client, contact("b@example.jp", "")).await;
    client
        .merge_leads(pb::MergeLeadsRequest {
            command: new_command(),
            survivor_lead_id: survivor,
            duplicate_lead_id: id.clone(),
        })
        .await
        .expect("merge");
    let err = client
        .score_lead(req(&id, 5, "x"))
        .await
        .expect_err("merged");
    assert_rejected(&err, "LEAD_MERGED");
}

// --- ChangeLeadStatus ---

#[tokio::test]
async fn change_lead_status_follows_the_table_and_is_idempotent() {
    let (server, mut client) = setup().await;
    let id = capture(&mut client, contact("a@example.jp", "")).await;
    let req = pb::ChangeLeadStatusRequest {
        command: new_command(),
        lead_id: id.clone(),
        status: pb::LeadStatus::Working.into(),
        reason: String::new(),
    };
    let first = client
        .change_lead_status(req.clone())
        .await
        .expect("working")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(first.event_types, ["lead.status_changed"]);
    let before = server.head().await;
    // Retried after the lead moved on: still the first result.
    let again = client
        .change_lead_status(req)
        .await
        .expect("again")
        .into_inner()
        .result
        .expect("result");
    assert!(again.replayed);
    assert_eq!(again.streams, first.streams);
    assert_eq!(server.head().await, before);

    let err = set_status(&mut client, &id, pb::LeadStatus::New)
        .await
        .expect_err("back to new");
    assert_rejected(&err, "INVALID_STATUS_TRANSITION");
    assert_eq!(server.head().await, before);

    client
        .change_lead_status(pb::ChangeLeadStatusRequest {
            command: new_command(),
            lead_id: id.clone(),
            status: pb::LeadStatus::Disqualified.into(),
            reason: "no budget".into(),
        })
        .await
        .expect("disqualify");
    set_status(&mut client, &id, pb::LeadStatus::Working)
        .await
        .expect("reopen");
    let (lead, version) = get(&mut client, &id).await;
    assert_eq!(lead.status(), pb::LeadStatus::Working);
    assert_eq!(version, 3);
}

#[tokio::test]
async fn change_lead_status_refusals() {
    let (_server, mut client) = setup().await;
    let id = capture(&mut client, contact("a@example.jp", "")).await;
    let req = |status: i32, reason: &str| pb::ChangeLeadStatusRequest {
        command: new_command(),
        lead_id: id.clone(),
        status,
        reason: reason.into(),
    };
    for (field, r) in [
        ("status", req(0, "")),
        ("status", req(42, "")),
        ("status", req(pb::LeadStatus::Converted.into(), "")),
        ("status", req(pb::LeadStatus::Merged.into(), "")),
        ("reason", req(pb::LeadStatus::Disqualified.into(), " ")),
        (
            "lead_id",
            pb::ChangeLeadStatusRequest {
                lead_id: "nope".into(),
                ..req(pb::LeadStatus::Working.into(), "")
            },
        ),
    ] {
        let err = client.change_lead_status(r).await.expect_err(field);
        assert_invalid(&err, field);
    }
    let unknown = Uuid::now_v7().to_string();
    let err = set_status(&mut client, &unknown, pb::LeadStatus::Working)
        .await
        .expect_err("unknown");
    assert_not_found(&err, &unknown);

    // A stale expected version is ABORTED, not decided again.
    set_status(&mut client, &id, pb::LeadStatus::Working)
        .await
        .expect("working");
    let err = client
        .change_lead_status(pb::ChangeLeadStatusRequest {
            command: Some(pb::CommandMetadata {
                command_id: Uuid::now_v7().to_string(),
                expected_version: Some(0),
                ..Default::default()
            }),
            ..req(pb::LeadStatus::Qualified.into(), "")
        })
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
}

// --- ConvertLead ---

#[tokio::test]
async fn convert_lead_appends_to_both_streams_at_once_and_tags_the_customer() {
    let (server, mut client) = setup().await;
    let id = qualified(&mut client, contact("a@example.jp", "090-1234-5678")).await;
    let customer = Uuid::now_v7();
    let req = pb::ConvertLeadRequest {
        command: new_command(),
        lead_id: id.clone(),
        customer_id: customer.to_string(),
    };
    let reply = client
        .convert_lead(req.clone())
        .await
        .expect("convert")
        .into_inner();
    assert_eq!(reply.customer_id, customer.to_string());
    let result = reply.result.expect("result");
    assert_eq!(
        result.event_types,
        ["lead.converted", "customer.registered"]
    );
    let (lead_part, customer_part) = (stream_of(&result, 0), stream_of(&result, 1));
    assert_eq!(lead_part.stream, format!("lead-{id}"));
    assert_eq!(customer_part.stream, format!("customer-{customer}"));
    assert_eq!(customer_part.first_position, lead_part.last_position + 1);
    assert_eq!(customer_part.first_version, 0);

    let registered = &stream_events(&server, &customer_part.stream).await[0];
    assert_eq!(registered.customer_id, Some(customer));
    let payload = pb::CustomerRegistered::decode(&registered.payload[..]).expect("decode");
    assert_eq!(payload.customer_id, customer.to_string());
    assert_eq!(payload.converted_from_lead_id, id);
    assert_eq!(
        payload.contact.as_ref().map(|c| c.phone.as_str()),
        Some("+819012345678")
    );
    assert_eq!(payload.consents.len(), 1);
    let lead_events = stream_events(&server, &lead_part.stream).await;
    let converted = lead_events.last().expect("converted");
    assert_eq!(converted.event_type, "lead.converted");
    assert_eq!(converted.customer_id, Some(customer));

    let (lead, _) = get(&mut client, &id).await;
    assert_eq!(lead.status(), pb::LeadStatus::Converted);
    assert_eq!(lead.customer_id, customer.to_string());

    // Retried with the same command id: the same result, nothing appended.
    let before = server.head().await;
    let again = client.convert_lead(req).await.expect("again").into_inner();
    assert_eq!(again.customer_id, customer.to_string());
    let again = again.result.expect("result");
    assert!(again.replayed);
    assert_eq!(again.streams, result.streams);
    assert_eq!(again.event_types, result.event_types);
    assert_eq!(server.head().await, before);

    // A new command on a converted lead is refused.
    let err = client
        .convert_lead(pb::ConvertLeadRequest {
            command: new_command(),
            lead_id: id,
            customer_id: String::new(),
        })
        .await
        .expect_err("twice");
    assert_rejected(&err, "LEAD_CONVERTED");
}

#[tokio::test]
async fn convert_lead_without_a_customer_id_derives_one_and_replays_it() {
    let (server, mut client) = setup().await;
    let id = qualified(&mut client, contact("a@example.jp", "")).await;
    let req = pb::ConvertLeadRequest {
        command: new_command(),
        lead_id: id,
        customer_id: String::new(),
    };
    let first = client
        .convert_lead(req.clone())
        .await
        .expect("convert")
        .into_inner();
    assert!(Uuid::try_parse(&first.customer_id).is_ok());
    let before = server.head().await;
    let again = client.convert_lead(req).await.expect("again").into_inner();
    assert_eq!(again.customer_id, first.customer_id);
    assert!(again.result.expect("result").replayed);
    assert_eq!(server.head().await, before);
}

#[tokio::test]
async fn convert_lead_onto_an_existing_customer_appends_nothing_anywhere() {
    let (server, mut client) = setup().await;
    let id = qualified(&mut client, contact("a@example.jp", "")).await;
    let customer = Uuid::now_v7();
    append_raw(
        &server,
        &format!("customer-{customer}"),
        "customer.registered",
        1,
        Some(customer),
        pb::CustomerRegistered {
            customer_id: customer.to_string(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    let (_, lead_version) = get(&mut client, &id).await;
    let before = server.head().await;
    let err = client
        .convert_lead(pb::ConvertLeadRequest {
            command: new_command(),
            lead_id: id.clone(),
            customer_id: customer.to_string(),
        })
        .await
        .expect_err("customer exists");
    assert!(
        matches!(err.code(), Code::AlreadyExists | Code::Aborted),
        "{err:?}"
    );
    assert_eq!(server.head().await, before);
    let (lead, version) = get(&mut client, &id).await;
    assert_eq!(version, lead_version);
    assert_eq!(lead.status(), pb::LeadStatus::Qualified);
}

#[tokio::test]
async fn convert_lead_refusals() {
    let (server, mut client) = setup().await;
    let id = capture(&mut client, contact("a@example.jp", "")).await;
    let req = |lead_id: &str, customer_id: &str| pb::ConvertLeadRequest {
        command: new_command(),
        lead_id: lead_id.into(),
        customer_id: customer_id.into(),
    };
    let err = client.convert_lead(req("", "")).await.expect_err("no id");
    assert_invalid(&err, "lead_id");
    let err = client
        .convert_lead(req(&id, "cust-1"))
        .await
        .expect_err("bad customer id");
    assert_invalid(&err, "customer_id");
    let before = server.head().await;
    let err = client
        .convert_lead(req(&id, ""))
        .await
        .expect_err("new lead");
    assert_rejected(&err, "LEAD_NOT_QUALIFIED");
    assert_eq!(server.head().await, before);
    let unknown = Uuid::now_v7().to_string();
    let err = client
        .convert_lead(req(&unknown, ""))
        .await
        .expect_err("unknown");
    assert_not_found(&err, &unknown);
}

#[tokio::test]
async fn a_v1_lead_is_read_through_the_upcaster_and_cannot_convert_without_contact() {
    let (server, mut client) = setup().await;
    let id = Uuid::now_v7();
    append_raw(
        &server,
        &format!("lead-{id}"),
        "lead.captured",
        1,
        None,
        pb::LeadCapturedV1 {
            lead_id: id.to_string(),
            channel: pb::LeadChannel::Store.into(),
            full_name: "山田　太郎".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    let (lead, _) = get(&mut client, &id.to_string()).await;
    let c = lead.contact.expect("contact");
    assert_eq!(
        (c.family_name.as_str(), c.given_name.as_str()),
        ("山田", "太郎")
    );
    set_status(&mut client, &id.to_string(), pb::LeadStatus::Working)
        .await
        .expect("working");
    set_status(&mut client, &id.to_string(), pb::LeadStatus::Qualified)
        .await
        .expect("qualified");
    let before = server.head().await;
    let err = client
        .convert_lead(pb::ConvertLeadRequest {
            command: new_command(),
            lead_id: id.to_string(),
            customer_id: String::new(),
        })
        .await
        .expect_err("no contact");
    assert_rejected(&err, "LEAD_HAS_NO_CONTACT");
    assert_eq!(server.head().await, before);
}

// --- MergeLeads ---

#[tokio::test]
async fn merge_leads_closes_the_duplicate_and_the_survivor_takes_over_its_data() {
    let (server, mut client) = setup().await;
    let survivor = capture(&mut client, contact("a@example.jp", "")).await;
    let mut dup_req = capture_request(contact("b@example.jp", "090-1234-5678"));
    dup_req.consents.push(consent(
        pb::ContactChannel::Sms,
        pb::ConsentPurpose::Service,
    ));
    let duplicate = client
        .capture_lead(dup_req)
        .await
        .expect("capture")
        .into_inner()
        .lead_id;
    let req = pb::MergeLeadsRequest {
        command: new_command(),
        survivor_lead_id: survivor.clone(),
        duplicate_lead_id: duplicate.clone(),
    };
    let result = client
        .merge_leads(req.clone())
        .await
        .expect("merge")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(
        result.event_types,
        ["lead.merged", "lead.duplicate_absorbed"]
    );
    assert_eq!(stream_of(&result, 0).stream, format!("lead-{duplicate}"));
    assert_eq!(stream_of(&result, 1).stream, format!("lead-{survivor}"));
    assert_eq!(
        stream_of(&result, 1).first_position,
        stream_of(&result, 0).last_position + 1
    );

    let (dup, _) = get(&mut client, &duplicate).await;
    assert_eq!(dup.status(), pb::LeadStatus::Merged);
    assert_eq!(dup.survivor_lead_id, survivor);
    let (surv, _) = get(&mut client, &survivor).await;
    let c = surv.contact.expect("contact");
    assert_eq!(
        (c.email.as_str(), c.phone.as_str()),
        ("a@example.jp", "+819012345678"),
        "own e-mail kept, missing phone taken over"
    );
    assert_eq!(surv.consents.len(), 2);
    assert_eq!(surv.absorbed_lead_ids, std::slice::from_ref(&duplicate));

    let before = server.head().await;
    let again = client
        .merge_leads(req)
        .await
        .expect("again")
        .into_inner()
        .result
        .expect("result");
    assert!(again.replayed);
    assert_eq!(again.streams, result.streams);
    assert_eq!(server.head().await, before);

    // The duplicate is closed now, in either role.
    let third = capture(&mut client, contact("c@example.jp", "")).await;
    for (s, d) in [(&third, &duplicate), (&duplicate, &third)] {
        let err = client
            .merge_leads(pb::MergeLeadsRequest {
                command: new_command(),
                survivor_lead_id: s.clone(),
                duplicate_lead_id: d.clone(),
            })
            .await
            .expect_err("merged");
        assert_rejected(&err, "LEAD_MERGED");
    }
    assert_eq!(server.head().await, before + 1, "only the third capture");
}

#[tokio::test]
async fn merge_leads_refusals_append_nothing() {
    let (server, mut client) = setup().await;
    let a = capture(&mut client, contact("a@example.jp", "")).await;
    let converted = qualified(&mut client, contact("b@example.jp", "")).await;
    client
        .convert_lead(pb::ConvertLeadRequest {
            command: new_command(),
            lead_id: converted.clone(),
            customer_id: String::new(),
        })
        .await
        .expect("convert");
    let req = |s: &str, d: &str| pb::MergeLeadsRequest {
        command: new_command(),
        survivor_lead_id: s.into(),
        duplicate_lead_id: d.into(),
    };
    let before = server.head().await;
    for (field, r) in [
        ("survivor_lead_id", req("", &a)),
        ("duplicate_lead_id", req(&a, "x")),
        ("duplicate_lead_id", req(&a, &a)),
    ] {
        let err = client.merge_leads(r).await.expect_err(field);
        assert_invalid(&err, field);
    }
    let unknown = Uuid::now_v7().to_string();
    for r in [req(&unknown, &a), req(&a, &unknown)] {
        let err = client.merge_leads(r).await.expect_err("unknown");
        assert_not_found(&err, &unknown);
    }
    for r in [req(&a, &converted), req(&converted, &a)] {
        let err = client.merge_leads(r).await.expect_err("converted");
        assert_rejected(&err, "LEAD_CONVERTED");
    }
    assert_eq!(server.head().await, before);
    assert_eq!(get(&mut client, &a).await.0.status(), pb::LeadStatus::New);
}

// --- GetLead ---

#[tokio::test]
async fn get_lead_refusals() {
    let (_server, mut client) = setup().await;
    let err = client
        .get_lead(pb::GetLeadRequest {
            lead_id: "abc".into(),
        })
        .await
        .expect_err("bad id");
    assert_invalid(&err, "lead_id");
    let unknown = Uuid::now_v7().to_string();
    let err = client
        .get_lead(pb::GetLeadRequest {
            lead_id: unknown.clone(),
        })
        .await
        .expect_err("unknown");
    assert_not_found(&err, &unknown);
}

// --- FindDuplicateLeads ---

fn by_contact(contact: pb::ContactData) -> pb::FindDuplicateLeadsRequest {
    pb::FindDuplicateLeadsRequest {
        query: Some(pb::find_duplicate_leads_request::Query::Contact(contact)),
    }
}

fn by_lead(id: &str) -> pb::FindDuplicateLeadsRequest {
    pb::FindDuplicateLeadsRequest {
        query: Some(pb::find_duplicate_leads_request::Query::LeadId(id.into())),
    }
}

/// (lead or customer id, matched fields) of each candidate, in answer order.
fn summary(r: &pb::FindDuplicateLeadsResponse) -> Vec<(String, Vec<pb::DuplicateMatchField>)> {
    use pb::duplicate_candidate::Party;
    r.candidates
        .iter()
        .map(|c| {
            let id = match c.party.as_ref().expect("party") {
                Party::LeadId(id) => format!("lead:{id}"),
                Party::CustomerId(id) => format!("customer:{id}"),
            };
            (id, c.matched_fields().collect())
        })
        .collect()
}

#[tokio::test]
async fn find_duplicate_leads_reads_its_own_writes_across_leads_and_customers() {
    use pb::DuplicateMatchField::{Email, Name, Phone};
    let (server, mut client) = setup().await;
    // Each capture is followed at once by a search: no waiting in between.
    let a = capture(&mut client, contact("taro@example.jp", "090-1234-5678")).await;
    let b = capture(
        &mut client,
        pb::ContactData {
            email: "other@example.jp".into(),
            phone: "+81 90 1234 5678".into(),
            ..Default::default()
        },
    )
    .await;
    let found = client
        .find_duplicate_leads(by_lead(&a))
        .await
        .expect("find")
        .into_inner();
    assert_eq!(summary(&found), [(format!("lead:{b}"), vec![Phone])]);
    assert_eq!(found.as_of_position, server.head().await);
    assert!(!found.truncated);

    // Full-width input is normalised before matching; names match without case.
    let found = client
        .find_duplicate_leads(by_contact(pb::ContactData {
            given_name: "TARO".into(),
            family_name: "yamada".into(),
            email: "ＴＡＲＯ＠ｅｘａｍｐｌｅ．ｊｐ".into(),
            ..Default::default()
        }))
        .await
        .expect("find")
        .into_inner();
    assert_eq!(summary(&found), [(format!("lead:{a}"), vec![Email, Name])]);

    // Converted: the lead leaves the index and its customer enters it.
    set_status(&mut client, &a, pb::LeadStatus::Working)
        .await
        .expect("working");
    set_status(&mut client, &a, pb::LeadStatus::Qualified)
        .await
        .expect("qualified");
    let customer = client
        .convert_lead(pb::ConvertLeadRequest {
            command: new_command(),
            lead_id: a.clone(),
            customer_id: String::new(),
        })
        .await
        .expect("convert")
        .into_inner()
        .customer_id;
    let found = client
        .find_duplicate_leads(by_lead(&b))
        .await
        .expect("find")
        .into_inner();
    assert_eq!(
        summary(&found),
        [(format!("customer:{customer}"), vec![Phone])]
    );

    // The customer's contact changes (written by the customer service).
    let customer_id = Uuid::try_parse(&customer).expect("uuid");
    append_raw(
        &server,
        &format!("customer-{customer}"),
        "customer.contact_updated",
        1,
        Some(customer_id),
        pb::CustomerContactUpdated {
            customer_id: customer.clone(),
            contact: Some(pb::ContactData {
                email: "other@example.jp".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    let found = client
        .find_duplicate_leads(by_lead(&b))
        .await
        .expect("find")
        .into_inner();
    assert_eq!(
        summary(&found),
        [(format!("customer:{customer}"), vec![Email])]
    );

    // Merged: the duplicate leaves the index; the survivor's taken-over
    // values are found under the survivor.
    let c = capture(&mut client, contact("third@example.jp", "")).await;
    client
        .merge_leads(pb::MergeLeadsRequest {
            command: new_command(),
            survivor_lead_id: c.clone(),
            duplicate_lead_id: b.clone(),
        })
        .await
        .expect("merge");
    let found = client
        .find_duplicate_leads(by_contact(pb::ContactData {
            phone: "09012345678".into(),
            ..Default::default()
        }))
        .await
        .expect("find")
        .into_inner();
    assert_eq!(summary(&found), [(format!("lead:{c}"), vec![Phone])]);
}

#[tokio::test]
async fn find_duplicate_leads_does_not_wait_for_events_it_does_not_index() {
    let (server, mut client) = setup().await;
    let a = capture(&mut client, contact("a@example.jp", "")).await;
    // The head moves past the last indexed event: a ticket and a score.
    append_raw(
        &server,
        &format!("ticket-{}", Uuid::now_v7()),
        "ticket.opened",
        1,
        None,
        vec![],
    )
    .await;
    client
        .score_lead(pb::ScoreLeadRequest {
            command: new_command(),
            lead_id: a.clone(),
            score: 1,
            reason: "x".into(),
        })
        .await
        .expect("score");
    let started = std::time::Instant::now();
    let found = client
        .find_duplicate_leads(by_lead(&a))
        .await
        .expect("find")
        .into_inner();
    assert!(found.candidates.is_empty());
    assert_eq!(found.as_of_position, server.head().await);
    // Not a timing assertion on the work itself: only that the answer did
    // not come from giving up after the index wait.
    assert!(started.elapsed() < kizuna_lead::INDEX_WAIT);
}

#[tokio::test]
async fn find_duplicate_leads_refusals() {
    let (_server, mut client) = setup().await;
    for (field, r) in [
        ("query", pb::FindDuplicateLeadsRequest { query: None }),
        ("lead_id", by_lead("x")),
        (
            "contact",
            by_contact(pb::ContactData {
                given_name: "Taro".into(),
                company: "ACME".into(),
                ..Default::default()
            }),
        ),
        ("contact.email", by_contact(contact("taro@", ""))),
        ("contact.phone", by_contact(contact("", "12"))),
    ] {
        let err = client.find_duplicate_leads(r).await.expect_err(field);
        assert_invalid(&err, field);
    }
    let unknown = Uuid::now_v7().to_string();
    let err = client
        .find_duplicate_leads(by_lead(&unknown))
        .await
        .expect_err("unknown");
    assert_not_found(&err, &unknown);
}

#[tokio::test]
async fn the_duplicate_index_is_rebuilt_from_the_log() {
    let (server, mut client) = setup().await;
    let a = capture(&mut client, contact("a@example.jp", "")).await;
    let b = capture(&mut client, contact("b@example.jp", "")).await;
    // A fresh index over the same log (as after a restart) finds them.
    let index = kizuna_lead::duplicates::DuplicateIndex::spawn(
        server.store.clone(),
        kizuna_domain::upcasters(),
    );
    index
        .wait_until(server.head().await, Duration::from_secs(5))
        .await
        .expect("caught up");
    let query = contact("", "");
    let found: Vec<_> = index
        .find(&query, None)
        .into_iter()
        .map(|c| c.party)
        .collect();
    use kizuna_lead::duplicates::Party;
    let (a, b) = (
        Uuid::try_parse(&a).expect("uuid"),
        Uuid::try_parse(&b).expect("uuid"),
    );
    let mut expected = vec![Party::Lead(a), Party::Lead(b)];
    expected.sort();
    assert_eq!(found, expected, "both share the name Taro Yamada");
}

// --- concurrency ---

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_on_one_lead_end_consistent() {
    let server = start_server(clock()).await;
    let mut client = connect(&server).await;
    let id = capture(&mut client, contact("a@example.jp", "")).await;
    let stream = format!("lead-{id}");

    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let endpoint = server.endpoint.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let mut client = LeadServiceClient::connect(endpoint).await.expect("connect");
                let mut acknowledged = Vec::new();
                for j in 0..4 {
                    let command_id = Uuid::now_v7();
                    // Statuses chosen so that some changes are refused in
                    // some interleavings: refusals must append nothing.
                    let status = [
                        pb::LeadStatus::Working,
                        pb::LeadStatus::Nurturing,
                        pb::LeadStatus::Qualified,
                        pb::LeadStatus::Working,
                    ][(i + j) % 4];
                    // A client retries ABORTED with the same command id, as
                    // the API asks; the command id keeps that safe.
                    for _attempt in 0..20 {
                        let outcome = if j % 2 == 0 {
                            client
                                .score_lead(pb::ScoreLeadRequest {
                                    command: command(command_id),
                                    lead_id: id.clone(),
                                    score: i32::try_from(i * 4 + j).expect("small"),
                                    reason: format!("client {i} step {j}"),
                                })
                                .await
                                .map(|r| r.into_inner().result)
                        } else {
                            client
                                .change_lead_status(pb::ChangeLeadStatusRequest {
                                    command: command(command_id),
                                    lead_id: id.clone(),
                                    status: status.into(),
                                    reason: String::new(),
                                })
                                .await
                                .map(|r| r.into_inner().result)
                        };
                        match outcome {
                            Ok(result) => {
                                let result = result.expect("result");
                                assert!(!result.streams.is_empty());
                                acknowledged.push((command_id, result));
                                break;
                            }
                            Err(s) if s.code() == Code::Aborted => continue,
                            Err(s) => {
                                assert_rejected(&s, "INVALID_STATUS_TRANSITION");
                                break;
                            }
                        }
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.expect("client task"));
    }
    assert!(
        acknowledged.len() >= 32,
        "every score lands: {}",
        acknowledged.len()
    );

    let events = stream_events(&server, &stream).await;
    // Gap-free versions: 0 is the capture, then one event per acknowledged command.
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (0..events.len() as u64).collect::<Vec<_>>());
    assert_eq!(events.len(), acknowledged.len() + 1);
    // Every acknowledged command's event is in the stream where it said.
    let mut seen_versions = HashSet::new();
    for (command_id, result) in &acknowledged {
        let recorded = server
            .store
            .read_event(event_id(*command_id, 0))
            .await
            .expect("read")
            .expect("acknowledged event is in the log");
        assert_eq!(recorded.stream, stream);
        assert_eq!(recorded.stream_version, result.streams[0].first_version);
        assert!(seen_versions.insert(recorded.stream_version));
    }

    // GetLead is the fold of the stream.
    let decoded: Vec<LeadEvent> = events
        .iter()
        .map(|e| {
            LeadEvent::decode(
                &e.event_type,
                e.schema_version,
                &e.payload,
                &kizuna_domain::upcasters(),
            )
            .expect("decode")
            .expect("a lead event")
        })
        .collect();
    let folded = Lead::fold(&decoded);
    let (lead, version) = get(&mut client, &id).await;
    assert_eq!(version, events.len() as u64 - 1);
    assert_eq!(lead.status(), folded.status);
    assert_eq!(lead.score, folded.score);
    assert_eq!(lead.score_reason, folded.score_reason);
    assert_eq!(lead.status_reason, folded.status_reason);
    assert_eq!(lead.contact, Some(folded.contact));
}
