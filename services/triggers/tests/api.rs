//! TriggerService as a client team sees it: a real tonic server on an
//! ephemeral port over a temp-dir log with an injected clock, driven through
//! the generated client. Plus the trigger processor over the same log, driven
//! check by check.

use kizuna_command::CommandMeta;
use kizuna_domain::campaign::{
    self, Campaign, CampaignCommand, CreateCampaign, FrequencyCap, Money, Window,
};
use kizuna_domain::testing::DEFAULT_NOW_SECONDS;
use kizuna_domain::time::add;
use kizuna_domain::trigger::fire_command_id;
use kizuna_domain::{DomainEvent as _, pb};
use kizuna_eventlog::{
    Clock as _, EventFilter, ExpectedVersion, ManualClock, ProposedEvent, Timestamp as LogTime,
};
use kizuna_tests::TestServer;
use kizuna_tests::status::assert_invalid;
use kizuna_triggers::{ProcessReport, TriggerProcessor};
use pb::trigger_service_client::TriggerServiceClient;
use prost::Message as _;
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(86_400);

fn start_clock() -> ManualClock {
    ManualClock::new(LogTime::from_unix_nanos(
        DEFAULT_NOW_SECONDS * 1_000_000_000,
    ))
}

struct Server {
    inner: TestServer,
}

impl std::ops::Deref for Server {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.inner
    }
}

async fn start() -> Server {
    let inner = kizuna_tests::serve_on_temp_log(start_clock(), |runner| {
        tonic::transport::Server::builder().add_service(kizuna_triggers::service(runner))
    })
    .await;
    Server { inner }
}

fn now(clock: &ManualClock) -> prost_types::Timestamp {
    let (seconds, nanos) = clock.now().to_seconds_nanos();
    prost_types::Timestamp { seconds, nanos }
}

fn command(id: Uuid) -> Option<pb::CommandMetadata> {
    Some(pb::CommandMetadata {
        command_id: id.to_string(),
        actor: "user:marketer".into(),
        ..Default::default()
    })
}

impl Server {
    async fn client(&self) -> TriggerServiceClient<Channel> {
        TriggerServiceClient::connect(self.endpoint.clone())
            .await
            .expect("connect")
    }

    fn processor(&self) -> TriggerProcessor {
        TriggerProcessor::new(self.runner.clone())
    }

    async fn check(&self, p: &mut TriggerProcessor) -> ProcessReport {
        p.check_once().await.expect("check")
    }

    /// A campaign in DRAFT, created through the campaign's own rules.
    async fn campaign(&self) -> Uuid {
        let id = Uuid::now_v7();
        let at = now(&self.clock);
        self.runner
            .execute::<Campaign>(
                &CommandMeta::new(Uuid::now_v7()),
                &campaign::stream(id),
                None,
                &CampaignCommand::Create(CreateCampaign {
                    campaign_id: Some(id),
                    name: "Upsell".into(),
                    channel: pb::ContactChannel::Email,
                    customer_ids: vec![],
                    window: Window {
                        starts_at: at,
                        ends_at: add(&at, 365 * DAY),
                    },
                    budget: Money::new(100_000, "JPY"),
                    offer_code: "UPSELL".into(),
                    offer_description: String::new(),
                    priority: 50,
                    frequency_cap: FrequencyCap {
                        max_sends: 1,
                        per: DAY,
                    },
                }),
            )
            .await
            .expect("create campaign");
        id
    }

    async fn campaign_command(&self, command: CampaignCommand, id: Uuid) {
        self.runner
            .execute::<Campaign>(
                &CommandMeta::new(Uuid::now_v7()),
                &campaign::stream(id),
                None,
                &command,
            )
            .await
            .expect("campaign command");
    }

    /// Appends a purchase of `customer` to the log as the loyalty service
    /// would; returns its event id.
    async fn purchase(&self, customer: Uuid, amount_minor: i64) -> Uuid {
        self.purchase_at(customer, amount_minor, "").await
    }

    /// [`Server::purchase`] in store `store_id` (empty: online).
    async fn purchase_at(&self, customer: Uuid, amount_minor: i64, store_id: &str) -> Uuid {
        let payload = pb::LoyaltyPurchaseRecorded {
            customer_id: customer.to_string(),
            order_id: Uuid::now_v7().to_string(),
            amount_minor,
            currency: "JPY".into(),
            channel: "web".into(),
            store_id: store_id.into(),
            purchased_at: Some(now(&self.clock)),
            ..Default::default()
        };
        self.append_loyalty(
            customer,
            "loyalty.purchase_recorded",
            payload.encode_to_vec(),
        )
        .await
    }

    /// Appends `loyalty.enrolled` for `customer` as the loyalty service
    /// would; returns its event id.
    async fn enrol(&self, customer: Uuid) -> Uuid {
        let payload = pb::LoyaltyEnrolled {
            customer_id: customer.to_string(),
            programme_id: "default".into(),
            enrolled_at: Some(now(&self.clock)),
        };
        self.append_loyalty(customer, "loyalty.enrolled", payload.encode_to_vec())
            .await
    }

    /// Appends one event tagged with `customer` to their loyalty stream.
    async fn append_loyalty(&self, customer: Uuid, event_type: &str, payload: Vec<u8>) -> Uuid {
        let mut event = ProposedEvent::new(event_type, payload);
        event.customer_id = Some(customer);
        let id = event.event_id;
        self.store
            .append(
                &format!("loyalty-{customer}"),
                ExpectedVersion::Any,
                vec![event],
            )
            .await
            .expect("append to the loyalty stream");
        id
    }

    /// Every `campaign.customers_targeted` of `campaign_id`: (customer ids,
    /// command id, correlation id).
    async fn targets(&self, campaign_id: Uuid) -> Vec<(Vec<String>, String, String)> {
        self.store
            .read_all(
                0,
                &EventFilter {
                    categories: vec!["campaign".into()],
                    event_types: vec!["campaign.customers_targeted".into()],
                    ..EventFilter::default()
                },
                10_000,
            )
            .await
            .expect("read")
            .events
            .into_iter()
            .filter(|e| e.stream == campaign::stream(campaign_id))
            .map(|e| {
                let t = pb::CampaignCustomersTargeted::decode(e.payload).expect("decode");
                (
                    t.customer_ids,
                    e.metadata.causation_id,
                    e.metadata.correlation_id,
                )
            })
            .collect()
    }

    async fn define(
        &self,
        campaign_id: Uuid,
        condition: pb::define_trigger_request::Condition,
    ) -> String {
        self.client()
            .await
            .define_trigger(pb::DefineTriggerRequest {
                command: command(Uuid::now_v7()),
                name: "A trigger".into(),
                campaign_id: campaign_id.to_string(),
                condition: Some(condition),
                ..Default::default()
            })
            .await
            .expect("define")
            .into_inner()
            .trigger_id
    }
}

fn big_spender() -> pb::define_trigger_request::Condition {
    pb::define_trigger_request::Condition::OnEvent(pb::TriggerOnEvent {
        event_type: "loyalty.purchase_recorded".into(),
        conditions: vec![pb::TriggerFieldCondition {
            path: "amount_minor".into(),
            op: pb::TriggerConditionOp::GreaterOrEqual as i32,
            value: "50000".into(),
        }],
    })
}

fn inactivity(days: u32) -> pb::define_trigger_request::Condition {
    pb::define_trigger_request::Condition::Inactivity(pb::TriggerInactivity { days })
}

#[tokio::test]
async fn define_get_list_disable_enable_with_idempotent_retries() {
    let s = start().await;
    let mut c = s.client().await;
    let campaign_id = s.campaign().await;

    let define_id = Uuid::now_v7();
    let request = pb::DefineTriggerRequest {
        command: command(define_id),
        name: " Big spenders ".into(),
        campaign_id: campaign_id.to_string(),
        condition: Some(big_spender()),
        ..Default::default()
    };
    let first = c
        .define_trigger(request.clone())
        .await
        .expect("define")
        .into_inner();
    let result = first.result.clone().expect("result");
    assert!(!result.replayed);
    assert_eq!(result.event_types, ["trigger.defined"]);
    let head = s.head().await;
    let retry = c.define_trigger(request).await.expect("retry").into_inner();
    assert_eq!(retry.trigger_id, first.trigger_id);
    assert!(retry.result.expect("result").replayed);
    assert_eq!(s.head().await, head, "a retry appends nothing");

    let got = c
        .get_trigger(pb::GetTriggerRequest {
            trigger_id: first.trigger_id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    let t = got.trigger.expect("trigger");
    assert_eq!(t.name, "Big spenders");
    assert!(t.enabled);
    assert_eq!(t.campaign_id, campaign_id.to_string());
    match t.condition.expect("condition") {
        pb::trigger::Condition::OnEvent(e) => {
            assert_eq!(e.event_type, "loyalty.purchase_recorded");
            assert_eq!(e.conditions[0].value, "50000");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(got.version, 0);

    let disable_id = Uuid::now_v7();
    let disable = pb::DisableTriggerRequest {
        command: command(disable_id),
        trigger_id: first.trigger_id.clone(),
        reason: "season over".into(),
    };
    let r = c
        .disable_trigger(disable.clone())
        .await
        .expect("disable")
        .into_inner();
    assert_eq!(r.result.expect("result").event_types, ["trigger.disabled"]);
    let again = c
        .disable_trigger(disable)
        .await
        .expect("retry")
        .into_inner();
    assert!(again.result.expect("result").replayed);
    let t = c
        .get_trigger(pb::GetTriggerRequest {
            trigger_id: first.trigger_id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .trigger
        .expect("trigger");
    assert!(!t.enabled);
    assert_eq!(t.disabled_reason, "season over");

    // A second trigger, then list: enabled only, and in pages of one.
    let second = s.define(campaign_id, inactivity(30)).await;
    let enabled = c
        .list_triggers(pb::ListTriggersRequest {
            enabled_only: true,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        enabled
            .triggers
            .iter()
            .map(|t| t.trigger_id.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&second)
    );
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_triggers(pb::ListTriggersRequest {
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        assert!(page.triggers.len() <= 1);
        ids.extend(page.triggers.into_iter().map(|t| t.trigger_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected = vec![first.trigger_id.clone(), second];
    expected.sort();
    assert_eq!(ids, expected);

    let r = c
        .enable_trigger(pb::EnableTriggerRequest {
            command: command(Uuid::now_v7()),
            trigger_id: first.trigger_id.clone(),
        })
        .await
        .expect("enable")
        .into_inner();
    assert_eq!(r.result.expect("result").event_types, ["trigger.enabled"]);
    let r = c
        .enable_trigger(pb::EnableTriggerRequest {
            command: command(Uuid::now_v7()),
            trigger_id: first.trigger_id.clone(),
        })
        .await
        .expect("enable again")
        .into_inner();
    assert!(
        r.result.expect("result").streams.is_empty(),
        "already enabled"
    );
}

#[tokio::test]
async fn invalid_definitions_name_the_field_and_unknown_ids_are_not_found() {
    let s = start().await;
    let mut c = s.client().await;
    let campaign_id = s.campaign().await;
    let on_event = |event_type: &str, path: &str, op: pb::TriggerConditionOp, value: &str| {
        pb::define_trigger_request::Condition::OnEvent(pb::TriggerOnEvent {
            event_type: event_type.into(),
            conditions: vec![pb::TriggerFieldCondition {
                path: path.into(),
                op: op as i32,
                value: value.into(),
            }],
        })
    };
    use pb::TriggerConditionOp as Op;
    let cases = [
        (
            campaign_id.to_string(),
            Some(on_event(
                "loyalty.nothing_happened",
                "amount_minor",
                Op::Equals,
                "1",
            )),
            "on_event.event_type",
        ),
        (
            campaign_id.to_string(),
            Some(on_event(
                "loyalty.purchase_recorded",
                "amount_major",
                Op::Equals,
                "1",
            )),
            "on_event.conditions[0].path",
        ),
        (
            campaign_id.to_string(),
            Some(on_event(
                "loyalty.purchase_recorded",
                "line_items.sku",
                Op::Equals,
                "1",
            )),
            "on_event.conditions[0].path",
        ),
        (
            campaign_id.to_string(),
            Some(on_event(
                "customer.registered",
                "contact.email",
                Op::Equals,
                "a@b.jp",
            )),
            "on_event.conditions[0].op",
        ),
        (
            campaign_id.to_string(),
            Some(on_event(
                "campaign.created",
                "channel",
                Op::GreaterThan,
                "CONTACT_CHANNEL_EMAIL",
            )),
            "on_event.conditions[0].op",
        ),
        (
            campaign_id.to_string(),
            Some(on_event(
                "loyalty.purchase_recorded",
                "amount_minor",
                Op::Equals,
                "lots",
            )),
            "on_event.conditions[0].value",
        ),
        (
            campaign_id.to_string(),
            Some(inactivity(0)),
            "inactivity.days",
        ),
        (campaign_id.to_string(), None, "condition"),
        ("not-a-uuid".into(), Some(inactivity(3)), "campaign_id"),
        (
            campaign_id.to_string().to_uppercase(),
            Some(inactivity(3)),
            "campaign_id",
        ),
    ];
    for (campaign, condition, field) in cases {
        let status = c
            .define_trigger(pb::DefineTriggerRequest {
                command: command(Uuid::now_v7()),
                name: "x".into(),
                campaign_id: campaign,
                condition,
                ..Default::default()
            })
            .await
            .expect_err(field);
        assert_invalid(&status, field);
    }
    let status = c
        .define_trigger(pb::DefineTriggerRequest {
            command: command(Uuid::now_v7()),
            name: "x".into(),
            campaign_id: campaign_id.to_string(),
            condition: Some(on_event(
                "loyalty.purchase_recorded",
                "amount_minor",
                Op::Equals,
                "1",
            )),
            ..Default::default()
        })
        .await
        .map(|_| ());
    assert!(status.is_ok(), "a valid definition is accepted: {status:?}");

    let status = c
        .define_trigger(pb::DefineTriggerRequest {
            command: None,
            name: "x".into(),
            campaign_id: campaign_id.to_string(),
            condition: Some(inactivity(3)),
            ..Default::default()
        })
        .await
        .expect_err("no command");
    assert_invalid(&status, "command");

    let status = c
        .define_trigger(pb::DefineTriggerRequest {
            command: command(Uuid::now_v7()),
            name: "x".into(),
            campaign_id: Uuid::now_v7().to_string(),
            condition: Some(inactivity(3)),
            ..Default::default()
        })
        .await
        .expect_err("unknown campaign");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status
            .get_details_resource_info()
            .expect("ResourceInfo")
            .resource_type,
        "campaign"
    );

    let unknown = Uuid::now_v7().to_string();
    let status = c
        .get_trigger(pb::GetTriggerRequest {
            trigger_id: unknown.clone(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = c
        .disable_trigger(pb::DisableTriggerRequest {
            command: command(Uuid::now_v7()),
            trigger_id: unknown.clone(),
            reason: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = c
        .enable_trigger(pb::EnableTriggerRequest {
            command: command(Uuid::now_v7()),
            trigger_id: unknown,
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = c
        .list_triggers(pb::ListTriggersRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_invalid(&status, "page_token");
}

#[tokio::test]
async fn a_trigger_fires_once_per_event_even_after_a_restart_of_the_processor() {
    let s = start().await;
    let campaign_id = s.campaign().await;
    let trigger_id: Uuid = s
        .define(campaign_id, big_spender())
        .await
        .parse()
        .expect("id");
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let big = s.purchase(alice, 60_000).await;
    s.purchase(bob, 49_999).await; // the condition does not hold

    let mut p = s.processor();
    let report = s.check(&mut p).await;
    assert_eq!((report.fired, report.refused), (1, 0), "{report:?}");
    assert!(report.checkpoint_saved);
    let targets = s.targets(campaign_id).await;
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].0, [alice.to_string()]);
    assert_eq!(targets[0].1, fire_command_id(big, trigger_id).to_string());
    assert_eq!(targets[0].2, big.to_string(), "correlated with the event");
    let again = s.check(&mut p).await;
    assert_eq!((again.fired, again.unchanged), (0, 0), "{again:?}");

    // Restart: a new processor resumes from the checkpoint in the log.
    drop(p);
    let mut restarted = s.processor();
    let report = s.check(&mut restarted).await;
    assert_eq!((report.fired, report.unchanged), (0, 0), "{report:?}");

    // A processor whose checkpoint is far behind (another name: none saved)
    // re-reads everything and targets nothing twice.
    let mut behind = s.processor().named("second");
    let report = s.check(&mut behind).await;
    assert_eq!((report.fired, report.unchanged), (0, 1), "{report:?}");
    // The default processor's checkpoint moved back by hand.
    let old = kizuna_domain::trigger::TriggerCheckpointEvent::Saved(pb::TriggerCheckpointSaved {
        processor: "default".into(),
        next_position: 0,
        saved_at: Some(now(&s.clock)),
    });
    s.store
        .append(
            "triggercheckpoint-default",
            ExpectedVersion::Any,
            vec![ProposedEvent::new(old.event_type(), old.encode_payload())],
        )
        .await
        .expect("append");
    let mut rewound = s.processor();
    let report = s.check(&mut rewound).await;
    assert_eq!((report.fired, report.unchanged), (0, 1), "{report:?}");
    assert_eq!(s.targets(campaign_id).await.len(), 1, "targeted once");

    // New events after the restart still fire, once.
    let carol = Uuid::now_v7();
    s.purchase(carol, 75_000).await;
    let report = s.check(&mut rewound).await;
    assert_eq!(report.fired, 1, "{report:?}");
    let report = s.check(&mut restarted).await;
    assert_eq!((report.fired, report.unchanged), (0, 1), "{report:?}");
    assert_eq!(s.targets(campaign_id).await.len(), 2);
}

#[tokio::test]
async fn a_disabled_trigger_does_not_fire_and_enabling_does_not_reach_back() {
    let s = start().await;
    let campaign_id = s.campaign().await;
    let trigger_id = s.define(campaign_id, big_spender()).await;
    let mut c = s.client().await;
    c.disable_trigger(pb::DisableTriggerRequest {
        command: command(Uuid::now_v7()),
        trigger_id: trigger_id.clone(),
        reason: String::new(),
    })
    .await
    .expect("disable");
    s.purchase(Uuid::now_v7(), 90_000).await;
    let mut p = s.processor();
    let report = s.check(&mut p).await;
    assert_eq!(report.fired, 0, "{report:?}");

    c.enable_trigger(pb::EnableTriggerRequest {
        command: command(Uuid::now_v7()),
        trigger_id,
    })
    .await
    .expect("enable");
    let dave = Uuid::now_v7();
    s.purchase(dave, 90_000).await;
    let report = s.check(&mut p).await;
    assert_eq!(
        report.fired, 1,
        "only the purchase after enabling: {report:?}"
    );
    // A fresh processor reading from the start decides the same way.
    let mut fresh = s.processor().named("fresh");
    let report = s.check(&mut fresh).await;
    assert_eq!((report.fired, report.unchanged), (0, 1), "{report:?}");
    let targets = s.targets(campaign_id).await;
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].0, [dave.to_string()]);
}

#[tokio::test]
async fn inactivity_fires_once_per_spell_as_the_clock_moves() {
    let s = start().await;
    let campaign_id = s.campaign().await;
    let trigger_id: Uuid = s
        .define(campaign_id, inactivity(30))
        .await
        .parse()
        .expect("id");
    let (erin, frank) = (Uuid::now_v7(), Uuid::now_v7());
    s.enrol(erin).await;
    let first_purchase = s.purchase(erin, 1_000).await;
    // Frank joined but never bought: his spell runs from his enrolment.
    let frank_enrolled = s.enrol(frank).await;

    let mut p = s.processor();
    assert_eq!(s.check(&mut p).await.fired, 0);
    s.clock.advance(29 * DAY);
    assert_eq!(s.check(&mut p).await.fired, 0, "not yet 30 days");
    s.clock.advance(DAY);
    let report = s.check(&mut p).await;
    assert_eq!(report.fired, 2, "{report:?}");
    let mut fired: Vec<(Vec<String>, String)> = s
        .targets(campaign_id)
        .await
        .into_iter()
        .map(|(customers, command_id, _)| (customers, command_id))
        .collect();
    fired.sort();
    let mut expected = vec![
        (
            vec![erin.to_string()],
            fire_command_id(first_purchase, trigger_id).to_string(),
        ),
        (
            vec![frank.to_string()],
            fire_command_id(frank_enrolled, trigger_id).to_string(),
        ),
    ];
    expected.sort();
    assert_eq!(fired, expected);
    s.clock.advance(DAY);
    let report = s.check(&mut p).await;
    assert_eq!((report.fired, report.unchanged), (0, 0), "once per spell");
    let mut restarted = s.processor();
    let report = s.check(&mut restarted).await;
    assert_eq!(report.fired, 0, "a restart does not fire the spell again");

    // A new purchase ends the spell; a new one fires again after 30 days
    // (the customer is already in the audience, so nothing new is appended,
    // but the target is issued with the new purchase's id).
    s.purchase(erin, 2_000).await;
    let report = s.check(&mut p).await;
    assert_eq!((report.fired, report.unchanged), (0, 0), "{report:?}");
    s.clock.advance(30 * DAY);
    let report = s.check(&mut p).await;
    assert_eq!((report.fired, report.unchanged), (0, 1), "{report:?}");
    let report = s.check(&mut p).await;
    assert_eq!((report.fired, report.unchanged), (0, 0), "{report:?}");
    assert_eq!(s.targets(campaign_id).await.len(), 2);
}

#[tokio::test]
async fn a_refused_target_does_not_stop_later_events_and_status_reports_progress() {
    // The service reports the counters of a processor this test drives.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let inner = kizuna_tests::serve_on_temp_log(start_clock(), move |runner| {
        let p = TriggerProcessor::new(runner.clone());
        let svc = kizuna_triggers::service_with_status(runner, p.status());
        let _ = tx.send(p);
        tonic::transport::Server::builder().add_service(svc)
    })
    .await;
    let s = Server { inner };
    let mut p = rx.await.expect("processor");

    let done = s.campaign().await;
    let open = s.campaign().await;
    s.campaign_command(CampaignCommand::Launch { campaign_id: done }, done)
        .await;
    s.campaign_command(CampaignCommand::Complete { campaign_id: done }, done)
        .await;
    s.define(done, big_spender()).await;
    s.define(open, big_spender()).await;

    let first = Uuid::now_v7();
    s.purchase(first, 50_000).await;
    let report = s.check(&mut p).await;
    assert_eq!((report.fired, report.refused), (1, 1), "{report:?}");
    let second = Uuid::now_v7();
    s.purchase(second, 50_000).await;
    let report = s.check(&mut p).await;
    assert_eq!((report.fired, report.refused), (1, 1), "{report:?}");
    assert_eq!(s.targets(open).await.len(), 2);
    assert!(s.targets(done).await.is_empty());

    let status = s
        .client()
        .await
        .get_trigger_processor_status(pb::GetTriggerProcessorStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.fired_since_start, 2);
    assert_eq!(status.refused_since_start, 2);
    assert!(status.checkpoint_position > 0);
    assert!(status.checkpoint_saved_at.is_some());
    assert!(status.processed_position >= status.checkpoint_position);
    assert_eq!(status.log_head, s.head().await);
    assert!(!status.processor_running, "driven by hand, not spawned");
}

#[tokio::test]
async fn conditions_on_enums_and_strings_fire_only_when_they_hold() {
    let s = start().await;
    let campaign_id = s.campaign().await;
    s.define(
        campaign_id,
        pb::define_trigger_request::Condition::OnEvent(pb::TriggerOnEvent {
            event_type: "loyalty.purchase_recorded".into(),
            conditions: vec![
                pb::TriggerFieldCondition {
                    path: "currency".into(),
                    op: pb::TriggerConditionOp::Equals as i32,
                    value: "JPY".into(),
                },
                pb::TriggerFieldCondition {
                    path: "store_id".into(),
                    op: pb::TriggerConditionOp::Exists as i32,
                    value: String::new(),
                },
            ],
        }),
    )
    .await;
    // Web purchases have no store: EXISTS does not hold.
    s.purchase(Uuid::now_v7(), 10).await;
    let mut p = s.processor();
    assert_eq!(s.check(&mut p).await.fired, 0);
    // In a store, in yen: both hold.
    let in_store = Uuid::now_v7();
    s.purchase_at(in_store, 10, "store-7").await;
    let report = s.check(&mut p).await;
    assert_eq!(report.fired, 1, "{report:?}");
    assert_eq!(s.targets(campaign_id).await[0].0, [in_store.to_string()]);
}
