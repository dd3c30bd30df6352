//! A CampaignService and a CustomerService on one temporary log, and the
//! calls the tests make through them, as a client team would.
#![allow(dead_code)]

pub use kizuna_tests::status::{assert_invalid, assert_rejected};
use std::time::Duration;

use kizuna_customer::CustomerConfig;
use kizuna_eventlog::{ManualClock, Timestamp};
use kizuna_proto::v1 as pb;
use kizuna_proto::v1::campaign_service_client::CampaignServiceClient;
use kizuna_proto::v1::customer_service_client::CustomerServiceClient;
use kizuna_tests::TestServer;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use uuid::Uuid;

/// 2026-01-01T00:00:00Z.
pub const START_SECONDS: i64 = 1_767_225_600;
/// One day.
pub const DAY: Duration = Duration::from_secs(86_400);

pub fn at(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

pub fn days(n: i64) -> i64 {
    n * 86_400
}

pub struct Fixture {
    pub server: TestServer,
    pub campaigns: CampaignServiceClient<Channel>,
    pub customers: CustomerServiceClient<Channel>,
    pub clock: ManualClock,
}

pub async fn fixture() -> Fixture {
    let clock = ManualClock::new(Timestamp::from_unix_nanos(START_SECONDS * 1_000_000_000));
    let server = kizuna_tests::serve_on_temp_log(clock.clone(), |runner| {
        tonic::transport::Server::builder()
            .add_service(kizuna_campaign::service(runner.clone()))
            .add_service(kizuna_customer::service(
                runner,
                CustomerConfig {
                    default_region: "JP".parse().expect("JP"),
                },
            ))
    })
    .await;
    let campaigns = CampaignServiceClient::connect(server.endpoint.clone())
        .await
        .expect("connect");
    let customers = CustomerServiceClient::connect(server.endpoint.clone())
        .await
        .expect("connect");
    Fixture {
        server,
        campaigns,
        customers,
        clock,
    }
}

pub fn command() -> Option<pb::CommandMetadata> {
    command_with_id(Uuid::now_v7())
}

pub fn command_with_id(id: Uuid) -> Option<pb::CommandMetadata> {
    Some(pb::CommandMetadata {
        command_id: id.to_string(),
        actor: "user:marketing".into(),
        ..Default::default()
    })
}

/// A campaign definition: e-mail, window of 30 days from the start, budget in
/// JPY, cap of 10 per 7 days, priority 50, no audience.
pub fn campaign_request(audience: &[Uuid]) -> pb::CreateCampaignRequest {
    pb::CreateCampaignRequest {
        command: command(),
        campaign_id: String::new(),
        name: "春のセール".into(),
        channel: pb::ContactChannel::Email as i32,
        customer_ids: audience.iter().map(Uuid::to_string).collect(),
        window: Some(pb::CampaignWindow {
            starts_at: Some(at(START_SECONDS)),
            ends_at: Some(at(START_SECONDS + days(30))),
        }),
        budget: Some(pb::CampaignBudget {
            amount_minor: 1_000_000,
            currency: "JPY".into(),
        }),
        offer: Some(pb::CampaignOffer {
            offer_code: "spring-10".into(),
            description: "10 % off everything".into(),
        }),
        priority: 50,
        frequency_cap: Some(pb::CampaignFrequencyCap {
            max_sends: 10,
            per: Some(prost_types::Duration {
                seconds: days(7),
                nanos: 0,
            }),
        }),
    }
}

impl Fixture {
    pub async fn head(&self) -> u64 {
        self.server.head().await
    }

    /// Registers a customer with an e-mail address and a phone number and
    /// the given consents; returns its id.
    pub async fn customer_with(&mut self, consents: &[pb::ContactChannel]) -> Uuid {
        let id = Uuid::now_v7();
        self.customers
            .register_customer(pb::RegisterCustomerRequest {
                command: command(),
                customer_id: id.to_string(),
                contact: Some(pb::ContactData {
                    given_name: "花子".into(),
                    family_name: "佐藤".into(),
                    email: "hanako@example.jp".into(),
                    phone: "+819012345678".into(),
                    ..Default::default()
                }),
                consents: consents
                    .iter()
                    .map(|c| pb::ConsentGrant {
                        channel: *c as i32,
                        purpose: pb::ConsentPurpose::Marketing as i32,
                    })
                    .collect(),
                source: "web".into(),
            })
            .await
            .expect("register");
        id
    }

    /// A customer with e-mail marketing consent.
    pub async fn customer(&mut self) -> Uuid {
        self.customer_with(&[pb::ContactChannel::Email]).await
    }

    /// Creates a campaign from `req` and returns its id.
    pub async fn create(&mut self, req: pb::CreateCampaignRequest) -> Uuid {
        let id = self
            .campaigns
            .create_campaign(req)
            .await
            .expect("create")
            .into_inner()
            .campaign_id;
        Uuid::parse_str(&id).expect("uuid")
    }

    /// Creates the usual campaign for `audience`, with `priority`, and
    /// launches it.
    pub async fn active(&mut self, audience: &[Uuid], priority: i32) -> Uuid {
        let mut req = campaign_request(audience);
        req.priority = priority;
        let id = self.create(req).await;
        self.launch(id).await;
        id
    }

    pub async fn launch(&mut self, id: Uuid) -> pb::CommandResult {
        self.campaigns
            .launch_campaign(pb::LaunchCampaignRequest {
                command: command(),
                campaign_id: id.to_string(),
            })
            .await
            .expect("launch")
            .into_inner()
            .result
            .expect("result")
    }

    pub async fn complete(&mut self, id: Uuid) {
        self.campaigns
            .complete_campaign(pb::CompleteCampaignRequest {
                command: command(),
                campaign_id: id.to_string(),
            })
            .await
            .expect("complete");
    }

    pub async fn try_send(
        &mut self,
        campaign: Uuid,
        customer: Uuid,
    ) -> Result<pb::SendToCustomerResponse, Status> {
        self.campaigns
            .send_to_customer(pb::SendToCustomerRequest {
                command: command(),
                campaign_id: campaign.to_string(),
                customer_id: customer.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn send(&mut self, campaign: Uuid, customer: Uuid) -> pb::SendToCustomerResponse {
        self.try_send(campaign, customer).await.expect("send")
    }

    /// Sends and expects an approval; returns the send id.
    pub async fn approved_send(&mut self, campaign: Uuid, customer: Uuid) -> Uuid {
        let reply = self.send(campaign, customer).await;
        let approved = approved(&reply).unwrap_or_else(|| panic!("approved: {reply:?}"));
        Uuid::parse_str(&approved.send_id).expect("send id")
    }

    pub async fn get(&mut self, id: Uuid) -> pb::GetCampaignResponse {
        self.campaigns
            .get_campaign(pb::GetCampaignRequest {
                campaign_id: id.to_string(),
            })
            .await
            .expect("get")
            .into_inner()
    }

    /// The customer's bounce flags, as CustomerService shows them.
    pub async fn customer_bounces(&mut self, customer: Uuid) -> Vec<pb::ContactBounceFlag> {
        self.customers
            .get_customer(pb::GetCustomerRequest {
                customer_id: customer.to_string(),
            })
            .await
            .expect("get")
            .into_inner()
            .customer
            .expect("customer")
            .bounces
    }

    pub async fn outreach(&mut self, customer: Uuid) -> pb::GetOutreachResponse {
        self.campaigns
            .get_outreach(pb::GetOutreachRequest {
                customer_id: customer.to_string(),
                max_suppressions: 1000,
            })
            .await
            .expect("outreach")
            .into_inner()
    }

    /// The event types of `stream`, in order.
    pub async fn stream_types(&self, stream: &str) -> Vec<String> {
        self.server
            .store
            .read_stream(stream, kizuna_eventlog::Direction::Forward, None, 10_000)
            .await
            .expect("read")
            .events
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }
}

pub fn approved(reply: &pb::SendToCustomerResponse) -> Option<&pb::OutreachSendApproved> {
    match reply.decision.as_ref()?.outcome.as_ref()? {
        pb::outreach_decision::Outcome::Approved(a) => Some(a),
        pb::outreach_decision::Outcome::Suppressed(_) => None,
    }
}

pub fn suppressed(reply: &pb::SendToCustomerResponse) -> Option<&pb::OutreachSendSuppressed> {
    match reply.decision.as_ref()?.outcome.as_ref()? {
        pb::outreach_decision::Outcome::Suppressed(s) => Some(s),
        pb::outreach_decision::Outcome::Approved(_) => None,
    }
}

/// The suppression reason of `reply`; panics when it was approved.
pub fn reason(reply: &pb::SendToCustomerResponse) -> pb::OutreachSuppressionReason {
    let s = suppressed(reply).unwrap_or_else(|| panic!("suppressed: {reply:?}"));
    pb::OutreachSuppressionReason::try_from(s.reason).expect("reason")
}

pub fn assert_not_found(status: &Status, kind: &str) {
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(
        status
            .get_details_resource_info()
            .expect("ResourceInfo")
            .resource_type,
        kind,
        "{status:?}"
    );
}
