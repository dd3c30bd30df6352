//! Shared black-box flows: what a client team does with kizuna, written once
//! against gRPC endpoints so the same flow runs against one `kizuna serve`
//! process or against separate log, lead, customer, support, loyalty and
//! campaign processes.
//!
//! Tests live in tests/tests/ (in-process servers) and in
//! services/kizuna/tests/roles.rs (separate processes).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use kizuna_proto::v1 as pb;
use kizuna_proto::v1::campaign_service_client::CampaignServiceClient;
use kizuna_proto::v1::customer_service_client::CustomerServiceClient;
use kizuna_proto::v1::event_log_client::EventLogClient;
use kizuna_proto::v1::lead_service_client::LeadServiceClient;
use kizuna_proto::v1::loyalty_service_client::LoyaltyServiceClient;
use kizuna_proto::v1::support_service_client::SupportServiceClient;
use kizuna_proto::v1::trigger_service_client::TriggerServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

pub mod marketing;
pub mod status;

/// Where each service is reached; all the same URL for `kizuna serve`.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// EventLog.
    pub log: String,
    /// LeadService.
    pub lead: String,
    /// CustomerService.
    pub customer: String,
    /// SupportService.
    pub support: String,
    /// LoyaltyService.
    pub loyalty: String,
    /// CampaignService and TriggerService (the campaign role serves both).
    pub campaign: String,
}

impl Endpoints {
    /// Every service at `url`.
    pub fn single(url: &str) -> Self {
        Self {
            log: url.to_owned(),
            lead: url.to_owned(),
            customer: url.to_owned(),
            support: url.to_owned(),
            loyalty: url.to_owned(),
            campaign: url.to_owned(),
        }
    }
}

/// Connected clients of every service.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EventLog.
    pub log: EventLogClient<Channel>,
    /// LeadService.
    pub lead: LeadServiceClient<Channel>,
    /// CustomerService.
    pub customer: CustomerServiceClient<Channel>,
    /// SupportService.
    pub support: SupportServiceClient<Channel>,
    /// LoyaltyService.
    pub loyalty: LoyaltyServiceClient<Channel>,
    /// CampaignService.
    pub campaign: CampaignServiceClient<Channel>,
    /// TriggerService.
    pub triggers: TriggerServiceClient<Channel>,
}

impl Clients {
    /// Connects to every endpoint.
    pub async fn connect(ep: &Endpoints) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            log: EventLogClient::connect(ep.log.clone()).await?,
            lead: LeadServiceClient::connect(ep.lead.clone()).await?,
            customer: CustomerServiceClient::connect(ep.customer.clone()).await?,
            support: SupportServiceClient::connect(ep.support.clone()).await?,
            loyalty: LoyaltyServiceClient::connect(ep.loyalty.clone()).await?,
            campaign: CampaignServiceClient::connect(ep.campaign.clone()).await?,
            triggers: TriggerServiceClient::connect(ep.campaign.clone()).await?,
        })
    }
}

/// Command metadata with a fresh command id.
pub fn command() -> Option<pb::CommandMetadata> {
    command_with_id(Uuid::now_v7())
}

/// Command metadata with `id` as the command id.
pub fn command_with_id(id: Uuid) -> Option<pb::CommandMetadata> {
    Some(pb::CommandMetadata {
        command_id: id.to_string(),
        actor: "user:flow-test".into(),
        ..Default::default()
    })
}

/// Reads every event of `stream` through EventLog.
pub async fn stream_events(
    log: &mut EventLogClient<Channel>,
    stream: &str,
) -> Result<Vec<pb::EventEnvelope>, tonic::Status> {
    Ok(log
        .read_stream(pb::ReadStreamRequest {
            stream: stream.to_owned(),
            limit: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .events)
}

/// The log's next position.
pub async fn head(log: &mut EventLogClient<Channel>) -> Result<u64, tonic::Status> {
    Ok(log
        .head(pb::HeadRequest {})
        .await?
        .into_inner()
        .next_position)
}

/// What [`lead_to_customer`] created.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The captured lead.
    pub lead_id: String,
    /// The customer it became.
    pub customer_id: String,
    /// Log position of the last event of the conversion.
    pub last_position: u64,
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> anyhow::Result<()> {
    if cond {
        Ok(())
    } else {
        Err(anyhow::anyhow!(what()))
    }
}

/// A lead's life up to conversion, as a sales tool drives it: capture with
/// full-width input (stored normalised), a retry of the capture (replayed,
/// nothing appended), score, qualify, convert (two streams in one append),
/// then the customer as CustomerService shows it.
pub async fn lead_to_customer(c: &mut Clients) -> anyhow::Result<Converted> {
    let capture_id = Uuid::now_v7();
    let capture = pb::CaptureLeadRequest {
        command: command_with_id(capture_id),
        source: "web-form".into(),
        channel: pb::LeadChannel::Web as i32,
        contact: Some(pb::ContactData {
            given_name: "太郎".into(),
            family_name: "山田".into(),
            email: " ＴＡＲＯ＠Ｅｘａｍｐｌｅ．ＪＰ ".into(),
            phone: "０９０－１２３４－５６７８".into(),
            ..Default::default()
        }),
        consents: vec![pb::ConsentGrant {
            channel: pb::ContactChannel::Email as i32,
            purpose: pb::ConsentPurpose::Marketing as i32,
        }],
        ..Default::default()
    };
    let first = c.lead.capture_lead(capture.clone()).await?.into_inner();
    let lead_id = first.lead_id.clone();
    let head_after_capture = head(&mut c.log).await?;
    let again = c.lead.capture_lead(capture).await?.into_inner();
    let (r1, r2) = (
        first.result.unwrap_or_default(),
        again.result.unwrap_or_default(),
    );
    ensure(!r1.replayed && r2.replayed, || {
        format!("replayed flags {r1:?} / {r2:?}")
    })?;
    ensure(r1.streams == r2.streams && again.lead_id == lead_id, || {
        "a retried capture must return the first result".into()
    })?;
    ensure(head(&mut c.log).await? == head_after_capture, || {
        "a retried capture appended something".into()
    })?;

    c.lead
        .score_lead(pb::ScoreLeadRequest {
            command: command(),
            lead_id: lead_id.clone(),
            score: 80,
            reason: "visited the pricing page twice".into(),
        })
        .await?;
    for status in [pb::LeadStatus::Working, pb::LeadStatus::Qualified] {
        c.lead
            .change_lead_status(pb::ChangeLeadStatusRequest {
                command: command(),
                lead_id: lead_id.clone(),
                status: status as i32,
                reason: String::new(),
            })
            .await?;
    }
    let converted = c
        .lead
        .convert_lead(pb::ConvertLeadRequest {
            command: command(),
            lead_id: lead_id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let result = converted.result.unwrap_or_default();
    ensure(result.streams.len() == 2, || {
        format!("conversion streams: {result:?}")
    })?;
    ensure(
        result.streams[1].first_position == result.streams[0].last_position + 1,
        || format!("conversion positions are not contiguous: {result:?}"),
    )?;
    let customer_id = converted.customer_id;
    let customer = c
        .customer
        .get_customer(pb::GetCustomerRequest {
            customer_id: customer_id.clone(),
        })
        .await?
        .into_inner()
        .customer
        .unwrap_or_default();
    let contact = customer.contact.unwrap_or_default();
    ensure(contact.email == "taro@example.jp", || {
        format!("email {:?}", contact.email)
    })?;
    ensure(contact.phone == "+819012345678", || {
        format!("phone {:?}", contact.phone)
    })?;
    ensure(customer.converted_from_lead_id == lead_id, || {
        format!(
            "converted_from_lead_id {:?}",
            customer.converted_from_lead_id
        )
    })?;
    let lead = c
        .lead
        .get_lead(pb::GetLeadRequest {
            lead_id: lead_id.clone(),
        })
        .await?
        .into_inner()
        .lead
        .unwrap_or_default();
    ensure(lead.status == pb::LeadStatus::Converted as i32, || {
        format!("lead status after conversion: {}", lead.status)
    })?;
    Ok(Converted {
        lead_id,
        customer_id,
        last_position: result
            .streams
            .iter()
            .map(|s| s.last_position)
            .max()
            .unwrap_or(0),
    })
}

/// Returned mail: a hard e-mail bounce is recorded and shows on the customer;
/// a new address clears it.
pub async fn bounce_and_fix(c: &mut Clients, customer_id: &str) -> anyhow::Result<()> {
    c.customer
        .record_contact_bounce(pb::RecordContactBounceRequest {
            command: command(),
            customer_id: customer_id.to_owned(),
            channel: pb::ContactChannel::Email as i32,
            bounced: Some(pb::record_contact_bounce_request::Bounced::Address(
                "taro@example.jp".into(),
            )),
            kind: pb::BounceKind::Hard as i32,
            reason: "550 mailbox unavailable".into(),
        })
        .await?;
    let bounced = get_customer(c, customer_id).await?;
    ensure(
        bounced
            .bounces
            .iter()
            .any(|b| b.channel == pb::ContactChannel::Email as i32),
        || format!("no e-mail bounce flag: {:?}", bounced.bounces),
    )?;
    let mut contact = bounced.contact.unwrap_or_default();
    contact.email = "Taro.Yamada@Example.com".into();
    c.customer
        .update_customer_contact(pb::UpdateCustomerContactRequest {
            command: command(),
            customer_id: customer_id.to_owned(),
            contact: Some(contact),
            ..Default::default()
        })
        .await?;
    let fixed = get_customer(c, customer_id).await?;
    ensure(
        fixed.contact.unwrap_or_default().email == "taro.yamada@example.com",
        || "the new address is not stored normalised".into(),
    )?;
    ensure(
        !fixed
            .bounces
            .iter()
            .any(|b| b.channel == pb::ContactChannel::Email as i32),
        || "a new e-mail address must clear the e-mail bounce flag".into(),
    )?;
    Ok(())
}

async fn get_customer(c: &mut Clients, customer_id: &str) -> anyhow::Result<pb::Customer> {
    Ok(c.customer
        .get_customer(pb::GetCustomerRequest {
            customer_id: customer_id.to_owned(),
        })
        .await?
        .into_inner()
        .customer
        .unwrap_or_default())
}

/// What [`support_case`] created.
#[derive(Debug, Clone)]
pub struct SupportCase {
    /// The ticket.
    pub ticket_id: String,
    /// The survey response about it.
    pub response_id: String,
}

/// A customer asks for help: a ticket is opened, answered, solved, the
/// customer writes back (reopening it), it is solved again, and the customer
/// answers the satisfaction survey about it.
pub async fn support_case(c: &mut Clients, customer_id: &str) -> anyhow::Result<SupportCase> {
    c.support
        .set_sla_policy(pb::SetSlaPolicyRequest {
            command: command(),
            priority: pb::TicketPriority::High as i32,
            first_response: Some(prost_types::Duration {
                seconds: 8 * 3600,
                nanos: 0,
            }),
            resolution: Some(prost_types::Duration {
                seconds: 3 * 24 * 3600,
                nanos: 0,
            }),
        })
        .await?;
    let opened = c
        .support
        .open_ticket(pb::OpenTicketRequest {
            command: command(),
            customer_id: customer_id.to_owned(),
            channel: pb::TicketChannel::Email as i32,
            subject: "ポイントが反映されません".into(),
            description: "先週の購入分のポイントが見当たりません。".into(),
            priority: pb::TicketPriority::High as i32,
            ..Default::default()
        })
        .await?
        .into_inner();
    let ticket_id = opened.ticket_id;
    c.support
        .assign_ticket(pb::AssignTicketRequest {
            command: command(),
            ticket_id: ticket_id.clone(),
            agent_id: "agent:hanako".into(),
        })
        .await?;
    let reply = |author_kind: pb::TicketAuthorKind, body: &str| pb::ReplyToTicketRequest {
        command: command(),
        ticket_id: ticket_id.clone(),
        author_kind: author_kind as i32,
        author_id: if author_kind == pb::TicketAuthorKind::Agent {
            "agent:hanako".into()
        } else {
            customer_id.to_owned()
        },
        visibility: pb::TicketReplyVisibility::Public as i32,
        body: body.into(),
    };
    c.support
        .reply_to_ticket(reply(pb::TicketAuthorKind::Agent, "確認いたします。"))
        .await?;
    let solve = || pb::ChangeTicketStatusRequest {
        command: command(),
        ticket_id: ticket_id.clone(),
        status: pb::TicketStatus::Solved as i32,
        reason: "points credited".into(),
    };
    c.support.change_ticket_status(solve()).await?;
    c.support
        .reply_to_ticket(reply(
            pb::TicketAuthorKind::Customer,
            "まだ反映されていません。",
        ))
        .await?;
    let reopened = get_ticket(c, &ticket_id).await?;
    ensure(reopened.status == pb::TicketStatus::Open as i32, || {
        format!(
            "a customer reply must reopen a solved ticket, status {}",
            reopened.status
        )
    })?;
    ensure(
        reopened
            .first_response
            .as_ref()
            .is_some_and(|t| t.due_at.is_some() && t.met_at.is_some()),
        || {
            format!(
                "first response target not met: {:?}",
                reopened.first_response
            )
        },
    )?;
    c.support.change_ticket_status(solve()).await?;

    let survey = c
        .support
        .submit_survey_response(pb::SubmitSurveyResponseRequest {
            command: command(),
            customer_id: customer_id.to_owned(),
            csat: Some(5),
            nps: Some(9),
            comment: "丁寧な対応でした".into(),
            link: Some(pb::submit_survey_response_request::Link::TicketId(
                ticket_id.clone(),
            )),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(SupportCase {
        ticket_id,
        response_id: survey.response_id,
    })
}

async fn get_ticket(c: &mut Clients, ticket_id: &str) -> anyhow::Result<pb::Ticket> {
    Ok(c.support
        .get_ticket(pb::GetTicketRequest {
            ticket_id: ticket_id.to_owned(),
        })
        .await?
        .into_inner()
        .ticket
        .unwrap_or_default())
}

/// The whole journey: lead to customer, a bounce, a support case with a
/// survey; then the per-customer index of the log holds every event about
/// the customer, from every service, in order.
pub async fn crm_journey(c: &mut Clients) -> anyhow::Result<()> {
    let converted = lead_to_customer(c).await?;
    bounce_and_fix(c, &converted.customer_id).await?;
    let case = support_case(c, &converted.customer_id).await?;
    let mut events = Vec::new();
    let mut stream = c
        .log
        .read_all(pb::ReadAllRequest {
            filter: Some(pb::EventFilter {
                customer_id: converted.customer_id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    while let Some(page) = stream.message().await? {
        events.extend(page.events);
    }
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    for expected in [
        "lead.converted",
        "customer.registered",
        "customer.contact_bounced",
        "customer.contact_updated",
        "ticket.opened",
        "ticket.replied",
        "ticket.status_changed",
        "survey.responded",
    ] {
        ensure(types.contains(&expected), || {
            format!("{expected} missing from the customer's events: {types:?}")
        })?;
    }
    ensure(
        events
            .windows(2)
            .all(|w| w[0].global_position < w[1].global_position),
        || "the customer's events are not in log order".into(),
    )?;
    ensure(
        events
            .iter()
            .any(|e| e.stream == format!("ticket-{}", case.ticket_id)),
        || "the ticket's events are not tagged with the customer".into(),
    )?;
    ensure(
        events
            .iter()
            .any(|e| e.stream == format!("survey-{}", case.response_id)),
        || "the survey response is not tagged with the customer".into(),
    )?;
    Ok(())
}

/// One command service served on 127.0.0.1:0 over a fresh temporary log
/// (`Durability::None`, the given clock): what each service crate's gRPC
/// tests talk to. Stops serving and removes the log when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The log, for checks behind the service's back (head, raw events).
    pub store: std::sync::Arc<dyn kizuna_eventlog::EventStore>,
    /// The runner the service was built on, for background work a test
    /// drives itself (an SLA watcher).
    pub runner: kizuna_command::CommandRunner,
    /// The injected clock; tests move it by hand.
    pub clock: kizuna_eventlog::ManualClock,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    /// The log's head: the position the next appended event will take.
    pub async fn head(&self) -> u64 {
        self.store.head().await.expect("head").next_position
    }
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Serves the router `service` builds from a [`kizuna_command::CommandRunner`]
/// over a fresh temporary log whose time is `clock`.
pub async fn serve_on_temp_log(
    clock: kizuna_eventlog::ManualClock,
    service: impl FnOnce(kizuna_command::CommandRunner) -> tonic::transport::server::Router,
) -> TestServer {
    use kizuna_eventlog::{Durability, EventStore, SledConfig, SledStore};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn EventStore> = Arc::new(
        SledStore::open(
            SledConfig::new(dir.path())
                .durability(Durability::None)
                .clock(Arc::new(clock.clone())),
        )
        .expect("open the log"),
    );
    let runner = kizuna_command::CommandRunner::new(
        store.clone(),
        Arc::new(clock.clone()),
        kizuna_domain::upcasters(),
    );
    let router = service(runner.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .expect("serve");
    });
    TestServer {
        endpoint: format!("http://{addr}"),
        store,
        runner,
        clock,
        _dir: dir,
        _shutdown: shutdown,
    }
}
