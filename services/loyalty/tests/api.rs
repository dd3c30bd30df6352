//! LoyaltyService as a client team sees it: a real tonic server on an
//! ephemeral port over a temp-dir log with an injected clock, driven through
//! the generated client. Plus the loyalty scheduler over the same log.

use kizuna_command::CommandMeta;
use kizuna_domain::customer::{self, Customer, CustomerCommand};
use kizuna_domain::pb;
use kizuna_domain::testing::DEFAULT_NOW_SECONDS;
use kizuna_eventlog::{EventFilter, ManualClock, RecordedEvent, Timestamp as LogTime};
use kizuna_loyalty::{CheckReport, LoyaltyScheduler};
use kizuna_tests::TestServer;
use kizuna_tests::status::{assert_invalid, assert_rejected};
use pb::loyalty_service_client::LoyaltyServiceClient;
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(86_400);

/// 2026-02-01T00:00:00Z and 2026-03-01T00:00:00Z: the first two period ends
/// after the tests' start (2026-01-01).
const FEB_1: i64 = 1_769_904_000;
const MAR_1: i64 = FEB_1 + 28 * 86_400;

type Client = LoyaltyServiceClient<Channel>;

async fn start() -> Server {
    let clock = ManualClock::new(LogTime::from_unix_nanos(
        DEFAULT_NOW_SECONDS * 1_000_000_000,
    ));
    let server = kizuna_tests::serve_on_temp_log(clock, |runner| {
        tonic::transport::Server::builder().add_service(kizuna_loyalty::service(runner))
    })
    .await;
    register_members(&server).await;
    Server(server)
}

/// Only registered customers enrol: registers customer(0..16).
async fn register_members(server: &TestServer) {
    for n in 0..16 {
        server
            .runner
            .execute::<Customer>(
                &CommandMeta::new(Uuid::now_v7()),
                &customer::stream_name(customer(n)),
                Some(customer(n)),
                &CustomerCommand::Register {
                    customer_id: Some(customer(n)),
                    contact: pb::ContactData {
                        email: format!("member{n}@example.jp"),
                        ..Default::default()
                    },
                    consents: Vec::new(),
                    source: "store".into(),
                    region: "JP".parse().expect("JP"),
                },
            )
            .await
            .expect("register");
    }
}

struct Server(TestServer);

impl std::ops::Deref for Server {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.0
    }
}

impl Server {
    async fn client(&self) -> Client {
        LoyaltyServiceClient::connect(self.endpoint.clone())
            .await
            .expect("connect")
    }

    /// A scheduler over this server's log and clock (a fresh one simulates a
    /// restart).
    fn scheduler(&self) -> LoyaltyScheduler {
        LoyaltyScheduler::new(self.runner.clone())
    }

    async fn events_of_type(&self, event_type: &str) -> Vec<RecordedEvent> {
        self.store
            .read_all(
                0,
                &EventFilter {
                    event_types: vec![event_type.into()],
                    ..EventFilter::default()
                },
                10_000,
            )
            .await
            .expect("read_all")
            .events
    }

    fn now_seconds(&self) -> i64 {
        use kizuna_eventlog::Clock as _;
        self.clock.now().to_seconds_nanos().0
    }
}

fn cmd() -> Option<pb::CommandMetadata> {
    cmd_id(Uuid::now_v7())
}

fn cmd_id(id: Uuid) -> Option<pb::CommandMetadata> {
    Some(pb::CommandMetadata {
        command_id: id.to_string(),
        actor: "user:test".into(),
        ..Default::default()
    })
}

fn dur(d: Duration) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).expect("small"),
        nanos: 0,
    })
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// 1 point per USD, lots live 30 days; "silver" from 100 USD spent over 30
/// days, kept 10 days after it stops qualifying.
fn rules_request() -> pb::SetEarningRulesRequest {
    pb::SetEarningRulesRequest {
        command: cmd(),
        rates: vec![pb::LoyaltyEarningRate {
            currency: "USD".into(),
            unit_minor: 100,
            points_per_unit: 1,
        }],
        category_multipliers: vec![pb::LoyaltyCategoryMultiplier {
            category: "electronics".into(),
            multiplier_bp: 20_000,
        }],
        campaign_multipliers: Vec::new(),
        monthly_cap: None,
        lot_lifetime: dur(DAY * 30),
        tiers: vec![pb::LoyaltyTierRule {
            name: "silver".into(),
            min_spend_minor: 10_000,
            min_purchase_count: 0,
            multiplier_bp: 10_000,
        }],
        tier_currency: "USD".into(),
        tier_window: dur(DAY * 30),
        tier_grace: dur(DAY * 10),
    }
}

async fn set_rules(client: &mut Client) {
    client
        .set_earning_rules(rules_request())
        .await
        .expect("set rules");
}

async fn enrol(client: &mut Client, customer: Uuid) {
    client
        .enrol(pb::EnrolRequest {
            command: cmd(),
            customer_id: customer.to_string(),
            programme_id: "default".into(),
        })
        .await
        .expect("enrol");
}

fn purchase(customer: Uuid, order: &str, amount: i64) -> pb::RecordPurchaseRequest {
    pb::RecordPurchaseRequest {
        command: cmd(),
        customer_id: customer.to_string(),
        order_id: order.into(),
        amount_minor: amount,
        currency: "USD".into(),
        line_items: vec![pb::LoyaltyLineItem {
            sku: "SKU-1".into(),
            category: "grocery".into(),
            quantity: 1,
            unit_price_minor: amount,
        }],
        channel: "web".into(),
        store_id: String::new(),
        campaign_id: String::new(),
    }
}

async fn buy(
    client: &mut Client,
    customer: Uuid,
    order: &str,
    amount: i64,
) -> pb::RecordPurchaseResponse {
    client
        .record_purchase(purchase(customer, order, amount))
        .await
        .expect("record purchase")
        .into_inner()
}

async fn account(client: &mut Client, customer: Uuid) -> pb::LoyaltyAccount {
    client
        .get_loyalty_account(pb::GetLoyaltyAccountRequest {
            customer_id: customer.to_string(),
        })
        .await
        .expect("get account")
        .into_inner()
        .account
        .expect("account")
}

fn redeem(customer: Uuid, points: i64) -> pb::RedeemPointsRequest {
    pb::RedeemPointsRequest {
        command: cmd(),
        customer_id: customer.to_string(),
        points,
        reason: "voucher".into(),
    }
}

fn adjust(customer: Uuid, points: i64) -> pb::AdjustPointsRequest {
    pb::AdjustPointsRequest {
        command: cmd(),
        customer_id: customer.to_string(),
        points,
        reason: "goodwill".into(),
    }
}

fn refund(customer: Uuid, order: &str, amount: i64) -> pb::RefundPurchaseRequest {
    pb::RefundPurchaseRequest {
        command: cmd(),
        customer_id: customer.to_string(),
        order_id: order.into(),
        amount_minor: amount,
    }
}

fn define(points_cost: i64, stock: i64, limit: i64) -> pb::DefineRewardRequest {
    pb::DefineRewardRequest {
        command: cmd(),
        reward_id: String::new(),
        name: "Free coffee".into(),
        points_cost,
        stock,
        per_customer_limit: limit,
        coupon_validity: dur(DAY * 7),
    }
}

async fn define_reward(client: &mut Client, req: pb::DefineRewardRequest) -> String {
    client
        .define_reward(req)
        .await
        .expect("define reward")
        .into_inner()
        .reward_id
}

fn claim(customer: Uuid, reward_id: &str) -> pb::ClaimRewardRequest {
    pb::ClaimRewardRequest {
        command: cmd(),
        customer_id: customer.to_string(),
        reward_id: reward_id.into(),
    }
}

fn redeem_coupon(code: &str) -> pb::RedeemCouponRequest {
    pb::RedeemCouponRequest {
        command: cmd(),
        code: code.into(),
        customer_id: String::new(),
        channel: "store".into(),
        order_id: "o-77".into(),
    }
}

async fn get_reward(client: &mut Client, reward_id: &str) -> pb::LoyaltyReward {
    client
        .get_reward(pb::GetRewardRequest {
            reward_id: reward_id.into(),
        })
        .await
        .expect("get reward")
        .into_inner()
        .reward
        .expect("reward")
}

fn customer(n: u128) -> Uuid {
    Uuid::from_u128(0xc0_0000 + n)
}

fn result(r: &Option<pb::CommandResult>) -> &pb::CommandResult {
    r.as_ref().expect("result")
}

// ---- Enrol -------------------------------------------------------------------

#[tokio::test]
async fn enrol_opens_the_account_once() {
    let server = start().await;
    let mut client = server.client().await;
    let c = customer(1);
    let req = pb::EnrolRequest {
        command: cmd(),
        customer_id: c.to_string(),
        programme_id: " default ".into(),
    };
    let first = client.enrol(req.clone()).await.expect("enrol").into_inner();
    let r = result(&first.result);
    assert_eq!(r.event_types, ["loyalty.enrolled"]);
    assert_eq!(r.streams[0].stream, format!("loyalty-{c}"));
    let head = server.head().await;
    let again = client.enrol(req).await.expect("retry").into_inner();
    assert!(result(&again.result).replayed);
    assert_eq!(result(&again.result).streams, r.streams);
    assert_eq!(server.head().await, head);
    // The same programme under a new command id: nothing to do.
    let same = client
        .enrol(pb::EnrolRequest {
            command: cmd(),
            customer_id: c.to_string(),
            programme_id: "default".into(),
        })
        .await
        .expect("same programme")
        .into_inner();
    assert!(result(&same.result).streams.is_empty());
    let other = client
        .enrol(pb::EnrolRequest {
            command: cmd(),
            customer_id: c.to_string(),
            programme_id: "vip".into(),
        })
        .await
        .expect_err("another programme");
    assert_rejected(&other, "ALREADY_ENROLLED");
    let acct = account(&mut client, c).await;
    assert_eq!((acct.programme_id.as_str(), acct.balance), ("default", 0));
}

#[tokio::test]
async fn enrol_names_bad_fields() {
    let server = start().await;
    let mut client = server.client().await;
    for (req, field) in [
        (
            pb::EnrolRequest {
                command: cmd(),
                customer_id: "not-a-uuid".into(),
                programme_id: "default".into(),
            },
            "customer_id",
        ),
        (
            pb::EnrolRequest {
                command: cmd(),
                customer_id: customer(1).to_string(),
                programme_id: "  ".into(),
            },
            "programme_id",
        ),
        (
            pb::EnrolRequest {
                command: None,
                customer_id: customer(1).to_string(),
                programme_id: "default".into(),
            },
            "command",
        ),
    ] {
        let status = client.enrol(req).await.expect_err("invalid");
        assert_invalid(&status, field);
    }
}

#[tokio::test]
async fn an_account_that_is_not_enrolled_is_not_found() {
    let server = start().await;
    let mut client = server.client().await;
    let status = client
        .get_loyalty_account(pb::GetLoyaltyAccountRequest {
            customer_id: customer(9).to_string(),
        })
        .await
        .expect_err("no account");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .record_purchase(purchase(customer(9), "o-1", 100))
        .await
        .expect_err("no account");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(
        status
            .get_details_resource_info()
            .expect("ResourceInfo")
            .resource_name,
        customer(9).to_string()
    );
    for status in [
        client
            .redeem_points(redeem(customer(9), 1))
            .await
            .expect_err("redeem"),
        client
            .adjust_points(adjust(customer(9), 1))
            .await
            .expect_err("adjust"),
        client
            .refund_purchase(refund(customer(9), "o-1", 1))
            .await
            .expect_err("refund"),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
}

#[tokio::test]
async fn reads_name_bad_ids() {
    let server = start().await;
    let mut client = server.client().await;
    let status = client
        .get_loyalty_account(pb::GetLoyaltyAccountRequest {
            customer_id: customer(1).to_string().to_uppercase(),
        })
        .await
        .expect_err("upper case");
    assert_invalid(&status, "customer_id");
    let status = client
        .get_reward(pb::GetRewardRequest {
            reward_id: String::new(),
        })
        .await
        .expect_err("empty");
    assert_invalid(&status, "reward_id");
}

// ---- Earning rules -----------------------------------------------------------

#[tokio::test]
async fn earning_rules_are_versioned_and_set_again_changes_nothing() {
    let server = start().await;
    let mut client = server.client().await;
    let none = client
        .get_earning_rules(pb::GetEarningRulesRequest {})
        .await
        .expect("get")
        .into_inner();
    assert!(none.rules.is_none());
    let req = rules_request();
    let first = client
        .set_earning_rules(req.clone())
        .await
        .expect("set")
        .into_inner();
    assert_eq!(first.version, 1);
    assert_eq!(
        result(&first.result).event_types,
        ["loyalty.earning_rules_set"]
    );
    let head = server.head().await;
    let retry = client
        .set_earning_rules(req)
        .await
        .expect("retry")
        .into_inner();
    assert!(result(&retry.result).replayed);
    assert_eq!(retry.version, 1);
    assert_eq!(server.head().await, head);
    let same = client
        .set_earning_rules(rules_request())
        .await
        .expect("same rules")
        .into_inner();
    assert!(result(&same.result).streams.is_empty());
    assert_eq!(same.version, 1);
    let got = client
        .get_earning_rules(pb::GetEarningRulesRequest {})
        .await
        .expect("get")
        .into_inner()
        .rules
        .expect("rules");
    assert_eq!(got.version, 1);
    assert_eq!(got.rates, rules_request().rates);
    assert_eq!(got.tiers, rules_request().tiers);
    assert_eq!(got.lot_lifetime, dur(DAY * 30));
    let second = client
        .set_earning_rules(pb::SetEarningRulesRequest {
            monthly_cap: Some(500),
            ..rules_request()
        })
        .await
        .expect("new rules")
        .into_inner();
    assert_eq!(second.version, 2);
}

#[tokio::test]
async fn earning_rules_name_bad_fields() {
    let server = start().await;
    let mut client = server.client().await;
    let cases: Vec<(pb::SetEarningRulesRequest, &str)> = vec![
        (
            pb::SetEarningRulesRequest {
                rates: vec![pb::LoyaltyEarningRate {
                    currency: "usd".into(),
                    unit_minor: 100,
                    points_per_unit: 1,
                }],
                ..rules_request()
            },
            "rates[0].currency",
        ),
        (
            pb::SetEarningRulesRequest {
                lot_lifetime: Some(prost_types::Duration {
                    seconds: -1,
                    nanos: 0,
                }),
                ..rules_request()
            },
            "lot_lifetime",
        ),
        (
            pb::SetEarningRulesRequest {
                monthly_cap: Some(-1),
                ..rules_request()
            },
            "monthly_cap",
        ),
        (
            pb::SetEarningRulesRequest {
                tiers: vec![pb::LoyaltyTierRule {
                    name: "gold".into(),
                    min_spend_minor: 1,
                    min_purchase_count: 0,
                    multiplier_bp: 0,
                }],
                ..rules_request()
            },
            "tiers[0].multiplier_bp",
        ),
    ];
    for (req, field) in cases {
        let status = client.set_earning_rules(req).await.expect_err("invalid");
        assert_invalid(&status, field);
    }
}

// ---- RecordPurchase ------------------------------------------------------------

#[tokio::test]
async fn a_purchase_earns_points_in_one_append_and_names_the_rules_version() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    let req = purchase(c, "o-1", 5_099);
    let first = client
        .record_purchase(req.clone())
        .await
        .expect("buy")
        .into_inner();
    let r = result(&first.result);
    assert_eq!(
        r.event_types,
        ["loyalty.purchase_recorded", "loyalty.points_earned"]
    );
    assert_eq!(r.streams.len(), 1);
    assert_eq!(first.points_earned, 50);
    assert_eq!(first.rules_version, 1);
    assert_eq!(first.expires_at, ts(DEFAULT_NOW_SECONDS + 30 * 86_400));
    assert!(Uuid::try_parse(&first.lot_id).is_ok());
    assert!(first.tier_change.is_none());

    // A retry: the first answer, nothing appended.
    let head = server.head().await;
    let retry = client
        .record_purchase(req)
        .await
        .expect("retry")
        .into_inner();
    assert!(result(&retry.result).replayed);
    assert_eq!(
        (
            retry.points_earned,
            &retry.lot_id,
            retry.rules_version,
            retry.expires_at
        ),
        (
            first.points_earned,
            &first.lot_id,
            first.rules_version,
            first.expires_at
        )
    );
    assert_eq!(server.head().await, head);

    // The same order under a new command id with the same contents: no new
    // events, the first recording's points.
    let same = client
        .record_purchase(purchase(c, "o-1", 5_099))
        .await
        .expect("same order")
        .into_inner();
    assert!(result(&same.result).streams.is_empty());
    assert!(!result(&same.result).replayed);
    assert_eq!((same.points_earned, &same.lot_id), (50, &first.lot_id));
    assert_eq!(same.rules_version, 1);
    assert_eq!(server.head().await, head);

    // Other contents under the same order id.
    let status = client
        .record_purchase(purchase(c, "o-1", 6_000))
        .await
        .expect_err("other contents");
    assert_rejected(&status, "ORDER_ALREADY_RECORDED");
    assert_eq!(server.head().await, head);

    let acct = account(&mut client, c).await;
    assert_eq!(acct.balance, 50);
    assert_eq!(acct.total_earned, 50);
    assert_eq!(acct.purchases.len(), 1);
    let p = &acct.purchases[0];
    assert_eq!(
        (p.order_id.as_str(), p.amount_minor, p.points),
        ("o-1", 5_099, 50)
    );
    assert_eq!(p.lot_id, first.lot_id);
    assert_eq!(acct.lots.len(), 1);
    assert_eq!(acct.lots[0].remaining, 50);
    assert!(!acct.lots[0].expired);
}

#[tokio::test]
async fn category_multipliers_and_new_rule_versions_apply_to_new_purchases_only() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    let mut req = purchase(c, "o-1", 10_000);
    req.line_items = vec![
        pb::LoyaltyLineItem {
            sku: "TV".into(),
            category: "electronics".into(),
            quantity: 1,
            unit_price_minor: 5_000,
        },
        pb::LoyaltyLineItem {
            sku: "RICE".into(),
            category: "grocery".into(),
            quantity: 5,
            unit_price_minor: 1_000,
        },
    ];
    let first = client.record_purchase(req).await.expect("buy").into_inner();
    // 50 USD at 2x + 50 USD at 1x.
    assert_eq!(first.points_earned, 150);
    client
        .set_earning_rules(pb::SetEarningRulesRequest {
            rates: vec![pb::LoyaltyEarningRate {
                currency: "USD".into(),
                unit_minor: 100,
                points_per_unit: 3,
            }],
            ..rules_request()
        })
        .await
        .expect("new rules");
    let second = buy(&mut client, c, "o-2", 1_000).await;
    assert_eq!((second.points_earned, second.rules_version), (30, 2));
    let acct = account(&mut client, c).await;
    let points: Vec<(String, i64)> = acct
        .purchases
        .iter()
        .map(|p| (p.order_id.clone(), p.points))
        .collect();
    assert_eq!(points, [("o-1".to_owned(), 150), ("o-2".to_owned(), 30)]);
}

#[tokio::test]
async fn record_purchase_names_bad_fields() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    type Change = Box<dyn Fn(&mut pb::RecordPurchaseRequest)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|r| r.customer_id = "x".into()), "customer_id"),
        (Box::new(|r| r.order_id = " ".into()), "order_id"),
        (Box::new(|r| r.order_id = "o".repeat(257)), "order_id"),
        (Box::new(|r| r.amount_minor = 0), "amount_minor"),
        (Box::new(|r| r.currency = "usd".into()), "currency"),
        (Box::new(|r| r.channel = String::new()), "channel"),
        (
            Box::new(|r| r.line_items[0].quantity = 0),
            "line_items[0].quantity",
        ),
        (
            Box::new(|r| r.line_items[0].sku = String::new()),
            "line_items[0].sku",
        ),
    ];
    for (change, field) in cases {
        let mut req = purchase(c, "o-1", 1_000);
        change(&mut req);
        let status = client.record_purchase(req).await.expect_err("invalid");
        assert_invalid(&status, field);
    }
}

#[tokio::test]
async fn sixteen_concurrent_purchases_on_one_account_all_earn() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    let tasks: Vec<_> = (0..16_i64)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .record_purchase(purchase(c, &format!("o-{i}"), (i + 1) * 100))
                    .await
                    .map(|r| r.into_inner().points_earned)
            })
        })
        .collect();
    let mut earned = 0;
    for t in tasks {
        earned += t.await.expect("join").expect("purchase");
    }
    assert_eq!(earned, (1..=16).sum::<i64>());
    let acct = account(&mut client, c).await;
    assert_eq!(acct.purchases.len(), 16);
    assert_eq!(acct.balance, earned);
    assert_eq!(acct.lots.len(), 16);
}

// ---- Refunds -------------------------------------------------------------------

#[tokio::test]
async fn a_refund_claws_back_its_share_and_records_a_shortfall_when_points_were_spent() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    buy(&mut client, c, "o-1", 10_000).await; // 100 points

    let req = refund(c, "o-1", 2_500);
    let partial = client
        .refund_purchase(req.clone())
        .await
        .expect("refund")
        .into_inner();
    assert_eq!(
        result(&partial.result).event_types,
        ["loyalty.purchase_refunded", "loyalty.points_clawed_back"]
    );
    assert_eq!((partial.points_clawed_back, partial.shortfall), (25, 0));
    let head = server.head().await;
    let retry = client
        .refund_purchase(req)
        .await
        .expect("retry")
        .into_inner();
    assert!(result(&retry.result).replayed);
    assert_eq!((retry.points_clawed_back, retry.shortfall), (25, 0));
    assert_eq!(server.head().await, head);
    assert_eq!(account(&mut client, c).await.balance, 75);

    client.redeem_points(redeem(c, 70)).await.expect("spend");
    let full = client
        .refund_purchase(refund(c, "o-1", 7_500))
        .await
        .expect("refund the rest")
        .into_inner();
    assert_eq!((full.points_clawed_back, full.shortfall), (75, 70));
    let acct = account(&mut client, c).await;
    assert_eq!(acct.balance, 0);
    assert_eq!(acct.total_clawed_back, 30);
    let p = &acct.purchases[0];
    assert_eq!(p.refunded_minor, 10_000);
    assert_eq!(
        p.refunds.iter().map(|r| r.amount_minor).collect::<Vec<_>>(),
        [2_500, 7_500]
    );

    let status = client
        .refund_purchase(refund(c, "o-1", 1))
        .await
        .expect_err("nothing left");
    assert_rejected(&status, "REFUND_EXCEEDS_PURCHASE");
    let status = client
        .refund_purchase(refund(c, "o-404", 1))
        .await
        .expect_err("unknown order");
    assert_rejected(&status, "ORDER_NOT_FOUND");
    let status = client
        .refund_purchase(refund(c, "o-1", 0))
        .await
        .expect_err("zero");
    assert_invalid(&status, "amount_minor");
}

// ---- Redeem and adjust ---------------------------------------------------------

#[tokio::test]
async fn redeeming_spends_points_and_refuses_more_than_the_balance() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    let earned = buy(&mut client, c, "o-1", 4_000).await;
    let req = redeem(c, 15);
    let first = client
        .redeem_points(req.clone())
        .await
        .expect("redeem")
        .into_inner();
    assert_eq!(
        first.taken,
        [pb::LoyaltyLotPoints {
            lot_id: earned.lot_id.clone(),
            points: 15
        }]
    );
    let head = server.head().await;
    let retry = client.redeem_points(req).await.expect("retry").into_inner();
    assert!(result(&retry.result).replayed);
    assert_eq!(retry.taken, first.taken);
    assert_eq!(server.head().await, head);
    let status = client
        .redeem_points(redeem(c, 26))
        .await
        .expect_err("too many");
    assert_rejected(&status, "INSUFFICIENT_POINTS");
    assert_eq!(server.head().await, head);
    let status = client.redeem_points(redeem(c, 0)).await.expect_err("zero");
    assert_invalid(&status, "points");
    let mut no_reason = redeem(c, 1);
    no_reason.reason = String::new();
    let status = client.redeem_points(no_reason).await.expect_err("reason");
    assert_invalid(&status, "reason");
    assert_eq!(account(&mut client, c).await.balance, 25);
}

#[tokio::test]
async fn adjustments_need_an_actor_and_open_or_take_lots() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    let req = adjust(c, 40);
    let added = client
        .adjust_points(req.clone())
        .await
        .expect("add")
        .into_inner();
    assert!(Uuid::try_parse(&added.lot_id).is_ok());
    let head = server.head().await;
    let retry = client.adjust_points(req).await.expect("retry").into_inner();
    assert!(result(&retry.result).replayed);
    assert_eq!(retry.lot_id, added.lot_id);
    assert_eq!(server.head().await, head);
    let removed = client
        .adjust_points(adjust(c, -15))
        .await
        .expect("remove")
        .into_inner();
    assert!(removed.lot_id.is_empty());
    let acct = account(&mut client, c).await;
    assert_eq!((acct.balance, acct.total_adjusted), (25, 25));
    assert_eq!(
        acct.lots[0].expires_at,
        ts(DEFAULT_NOW_SECONDS + 30 * 86_400)
    );

    let mut anonymous = adjust(c, 5);
    anonymous.command.as_mut().expect("command").actor = String::new();
    let status = client.adjust_points(anonymous).await.expect_err("no actor");
    assert_invalid(&status, "command.actor");
    let status = client.adjust_points(adjust(c, 0)).await.expect_err("zero");
    assert_invalid(&status, "points");
    let status = client
        .adjust_points(adjust(c, -26))
        .await
        .expect_err("too many");
    assert_rejected(&status, "INSUFFICIENT_POINTS");
    let events = server.events_of_type("loyalty.points_adjusted").await;
    let first = <pb::LoyaltyPointsAdjusted as prost::Message>::decode(events[0].payload.as_ref())
        .expect("decode");
    assert_eq!(first.actor, "user:test");
}

// ---- Expiry through the scheduler ------------------------------------------------

#[tokio::test]
async fn purchase_earn_redeem_expire_in_lot_order_once_across_restarts() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    let first = buy(&mut client, c, "o-1", 5_000).await; // 50 points, expires day 30
    server.clock.advance(DAY * 10);
    let second = buy(&mut client, c, "o-2", 3_000).await; // 30 points, expires day 40
    // The oldest-expiring lot pays first.
    let taken = client
        .redeem_points(redeem(c, 20))
        .await
        .expect("redeem")
        .into_inner()
        .taken;
    assert_eq!(
        taken,
        [pb::LoyaltyLotPoints {
            lot_id: first.lot_id.clone(),
            points: 20
        }]
    );

    let mut scheduler = server.scheduler();
    assert_eq!(scheduler.check_once().await.expect("check").lots_expired, 0);

    // Day 30: the first lot's remaining 30 points expire, the second's not yet.
    server.clock.advance(DAY * 20);
    let report = scheduler.check_once().await.expect("check");
    assert_eq!(report.lots_expired, 1);
    let acct = account(&mut client, c).await;
    assert_eq!(acct.balance, 30);
    assert_eq!(acct.total_expired, 30);
    let lot = |id: &str| {
        acct.lots
            .iter()
            .find(|l| l.lot_id == id)
            .expect("lot")
            .clone()
    };
    assert!(lot(&first.lot_id).expired);
    assert_eq!(lot(&first.lot_id).remaining, 0);
    assert!(!lot(&second.lot_id).expired);
    assert_eq!(scheduler.check_once().await.expect("again").lots_expired, 0);

    // Day 40: the second lot.
    server.clock.advance(DAY * 10);
    assert_eq!(scheduler.check_once().await.expect("check").lots_expired, 1);
    let expired: Vec<pb::LoyaltyPointsExpired> = server
        .events_of_type("loyalty.points_expired")
        .await
        .iter()
        .map(|e| prost::Message::decode(e.payload.as_ref()).expect("decode"))
        .collect();
    assert_eq!(
        expired
            .iter()
            .map(|e| (e.lot_id.clone(), e.points))
            .collect::<Vec<_>>(),
        [(first.lot_id.clone(), 30), (second.lot_id.clone(), 30)]
    );
    assert_eq!(account(&mut client, c).await.balance, 0);

    // A restarted scheduler rebuilds its schedule and expires nothing again.
    let head = server.head().await;
    let mut restarted = server.scheduler();
    assert_eq!(
        restarted.check_once().await.expect("check"),
        CheckReport::default()
    );
    assert_eq!(server.head().await, head);
}

#[tokio::test]
async fn two_schedulers_racing_expire_each_lot_once() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    for n in 0..4 {
        enrol(&mut client, customer(n)).await;
        buy(
            &mut client,
            customer(n),
            "o-1",
            1_000 + i64::try_from(n).unwrap(),
        )
        .await;
    }
    server.clock.advance(DAY * 31);
    let mut a = server.scheduler();
    let mut b = server.scheduler();
    let (ra, rb) = tokio::join!(a.check_once(), b.check_once());
    let total = ra.expect("a").lots_expired + rb.expect("b").lots_expired;
    assert_eq!(total, 4);
    assert_eq!(
        server.events_of_type("loyalty.points_expired").await.len(),
        4
    );
}

// ---- Tiers ------------------------------------------------------------------------

#[tokio::test]
async fn a_tier_is_reached_at_once_and_lost_only_at_a_period_end_after_the_grace() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    let below = buy(&mut client, c, "o-1", 6_000).await;
    assert!(below.tier_change.is_none());
    let crossing = buy(&mut client, c, "o-2", 6_000).await;
    let change = crossing
        .tier_change
        .expect("tier up on the crossing purchase");
    assert_eq!(
        (change.from_tier.as_str(), change.to_tier.as_str()),
        ("", "silver")
    );
    let acct = account(&mut client, c).await;
    assert_eq!(acct.tier, "silver");
    assert_eq!(acct.tier_since, ts(DEFAULT_NOW_SECONDS));

    // The purchases leave the 30-day window on day 30 (2026-01-31); with 10
    // days of grace the tier holds at the February period end ...
    let mut scheduler = server.scheduler();
    server.clock.advance(DAY * 32); // 2026-02-02
    let report = scheduler.check_once().await.expect("check");
    assert_eq!((report.tier_reviews, report.tier_changes), (1, 0));
    assert_eq!(account(&mut client, c).await.tier, "silver");
    assert_eq!(scheduler.check_once().await.expect("again").tier_reviews, 0);

    // ... and goes at the March one, decided as of 2026-03-01 even though the
    // check runs later.
    server.clock.advance(DAY * 40); // 2026-03-14
    assert!(server.now_seconds() > MAR_1);
    let report = scheduler.check_once().await.expect("check");
    assert_eq!((report.tier_reviews, report.tier_changes), (1, 1));
    let acct = account(&mut client, c).await;
    assert_eq!(acct.tier, "");
    let changes: Vec<pb::LoyaltyTierChanged> = server
        .events_of_type("loyalty.tier_changed")
        .await
        .iter()
        .map(|e| prost::Message::decode(e.payload.as_ref()).expect("decode"))
        .collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[1].from_tier, "silver");
    assert_eq!(changes[1].to_tier, "");
    assert_eq!(changes[1].changed_at, ts(MAR_1));
    assert!(
        changes[1].reason.contains("no longer qualifies"),
        "{}",
        changes[1].reason
    );

    // Exactly once: again, and after a restart.
    let head = server.head().await;
    assert_eq!(scheduler.check_once().await.expect("again").tier_changes, 0);
    let mut restarted = server.scheduler();
    let report = restarted.check_once().await.expect("restart");
    assert_eq!(report.tier_changes, 0);
    assert_eq!(server.head().await, head);
}

#[tokio::test]
async fn a_restarted_scheduler_reviews_a_missed_period_end_as_of_that_boundary() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    buy(&mut client, c, "o-1", 12_000).await;
    // A scheduler that saw February pass without a downgrade, then stopped.
    server.clock.advance(DAY * 35);
    let mut first = server.scheduler();
    assert_eq!(first.check_once().await.expect("check").tier_changes, 0);
    drop(first);
    // The next one starts in April: March 1 and April 1 have passed.
    server.clock.advance(DAY * 60);
    let mut second = server.scheduler();
    let report = second.check_once().await.expect("check");
    // February (decided again: no change), March (the downgrade); April finds
    // no tier left to review.
    assert_eq!((report.tier_reviews, report.tier_changes), (2, 1));
    assert!(server.now_seconds() > FEB_1 + 59 * 86_400);
    let change: pb::LoyaltyTierChanged = prost::Message::decode(
        server.events_of_type("loyalty.tier_changed").await[1]
            .payload
            .as_ref(),
    )
    .expect("decode");
    assert_eq!(change.changed_at, ts(MAR_1));
}

// ---- Rewards and coupons -------------------------------------------------------------

#[tokio::test]
async fn rewards_are_defined_restocked_retired_and_read() {
    let server = start().await;
    let mut client = server.client().await;
    let req = define(100, 2, 1);
    let first = client
        .define_reward(req.clone())
        .await
        .expect("define")
        .into_inner();
    assert_eq!(result(&first.result).event_types, ["reward.defined"]);
    let head = server.head().await;
    let retry = client.define_reward(req).await.expect("retry").into_inner();
    assert!(result(&retry.result).replayed);
    assert_eq!(retry.reward_id, first.reward_id);
    assert_eq!(server.head().await, head);
    let reward = get_reward(&mut client, &first.reward_id).await;
    assert_eq!(
        (
            reward.name.as_str(),
            reward.points_cost,
            reward.stock,
            reward.per_customer_limit
        ),
        ("Free coffee", 100, 2, 1)
    );
    assert_eq!(reward.coupon_validity, dur(DAY * 7));

    // A caller-chosen id that is taken by another definition.
    let mut taken = define(50, 1, 1);
    taken.reward_id = first.reward_id.clone();
    let status = client.define_reward(taken).await.expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");

    let restock = pb::RestockRewardRequest {
        command: cmd(),
        reward_id: first.reward_id.clone(),
        quantity: 3,
    };
    let r = client
        .restock_reward(restock.clone())
        .await
        .expect("restock")
        .into_inner();
    assert_eq!(result(&r.result).event_types, ["reward.restocked"]);
    let head = server.head().await;
    assert!(
        result(
            &client
                .restock_reward(restock)
                .await
                .expect("retry")
                .into_inner()
                .result
        )
        .replayed
    );
    assert_eq!(server.head().await, head);
    assert_eq!(get_reward(&mut client, &first.reward_id).await.stock, 5);
    let status = client
        .restock_reward(pb::RestockRewardRequest {
            command: cmd(),
            reward_id: first.reward_id.clone(),
            quantity: 0,
        })
        .await
        .expect_err("zero");
    assert_invalid(&status, "quantity");

    let retire = pb::RetireRewardRequest {
        command: cmd(),
        reward_id: first.reward_id.clone(),
        reason: "season over".into(),
    };
    let r = client
        .retire_reward(retire.clone())
        .await
        .expect("retire")
        .into_inner();
    assert_eq!(result(&r.result).event_types, ["reward.retired"]);
    let head = server.head().await;
    assert!(
        result(
            &client
                .retire_reward(retire)
                .await
                .expect("retry")
                .into_inner()
                .result
        )
        .replayed
    );
    assert_eq!(server.head().await, head);
    assert!(get_reward(&mut client, &first.reward_id).await.retired);
    let status = client
        .restock_reward(pb::RestockRewardRequest {
            command: cmd(),
            reward_id: first.reward_id.clone(),
            quantity: 1,
        })
        .await
        .expect_err("retired");
    assert_rejected(&status, "REWARD_RETIRED");

    let unknown = Uuid::from_u128(0xdead).to_string();
    let status = client
        .get_reward(pb::GetRewardRequest {
            reward_id: unknown.clone(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .restock_reward(pb::RestockRewardRequest {
            command: cmd(),
            reward_id: unknown.clone(),
            quantity: 1,
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status
            .get_details_resource_info()
            .expect("ResourceInfo")
            .resource_name,
        unknown
    );
}

#[tokio::test]
async fn define_reward_names_bad_fields() {
    let server = start().await;
    let mut client = server.client().await;
    type Change = Box<dyn Fn(&mut pb::DefineRewardRequest)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|r| r.reward_id = "nope".into()), "reward_id"),
        (Box::new(|r| r.name = " ".into()), "name"),
        (Box::new(|r| r.points_cost = 0), "points_cost"),
        (Box::new(|r| r.stock = -1), "stock"),
        (Box::new(|r| r.per_customer_limit = 0), "per_customer_limit"),
        (Box::new(|r| r.coupon_validity = None), "coupon_validity"),
    ];
    for (change, field) in cases {
        let mut req = define(100, 1, 1);
        change(&mut req);
        let status = client.define_reward(req).await.expect_err("invalid");
        assert_invalid(&status, field);
    }
}

#[tokio::test]
async fn claiming_a_reward_spends_points_and_issues_a_coupon_redeemed_once() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    client.adjust_points(adjust(c, 250)).await.expect("points");
    let reward_id = define_reward(&mut client, define(100, 5, 2)).await;

    let req = claim(c, &reward_id);
    let claimed = client
        .claim_reward(req.clone())
        .await
        .expect("claim")
        .into_inner();
    let r = result(&claimed.result);
    assert_eq!(
        r.event_types,
        ["loyalty.points_redeemed", "reward.claimed", "coupon.issued"]
    );
    assert_eq!(
        r.streams
            .iter()
            .map(|s| s.stream.clone())
            .collect::<Vec<_>>(),
        [
            format!("loyalty-{c}"),
            format!("reward-{reward_id}"),
            format!("coupon-{}", claimed.coupon_code)
        ]
    );
    let code = claimed.coupon_code.clone();
    assert_eq!(code.len(), 19);
    assert!(
        code.split('-').all(|g| g.len() == 4
            && g.chars()
                .all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase())),
        "{code}"
    );
    assert_eq!(claimed.points, 100);
    assert_eq!(claimed.expires_at, ts(DEFAULT_NOW_SECONDS + 7 * 86_400));

    // A retry: the same coupon, nothing appended.
    let head = server.head().await;
    let retry = client.claim_reward(req).await.expect("retry").into_inner();
    assert!(result(&retry.result).replayed);
    assert_eq!(
        (retry.coupon_code.as_str(), retry.expires_at),
        (code.as_str(), claimed.expires_at)
    );
    assert_eq!(server.head().await, head);

    let acct = account(&mut client, c).await;
    assert_eq!((acct.balance, acct.total_redeemed), (150, 100));
    let reward = get_reward(&mut client, &reward_id).await;
    assert_eq!((reward.stock, reward.claimed), (4, 1));
    let redeemed: pb::LoyaltyPointsRedeemed = prost::Message::decode(
        server.events_of_type("loyalty.points_redeemed").await[0]
            .payload
            .as_ref(),
    )
    .expect("decode");
    assert_eq!(
        (redeemed.reward_id.as_str(), redeemed.coupon_code.as_str()),
        (reward_id.as_str(), code.as_str())
    );

    // The code is read in any case, with or without dashes.
    let typed = code.to_lowercase().replace('-', "");
    let coupon = client
        .get_coupon(pb::GetCouponRequest {
            code: typed.clone(),
        })
        .await
        .expect("get coupon")
        .into_inner()
        .coupon
        .expect("coupon");
    assert_eq!(
        (coupon.code.as_str(), coupon.customer_id.clone()),
        (code.as_str(), c.to_string())
    );
    assert!(coupon.redeemed_at.is_none());

    // Only its customer, when one is named.
    let mut wrong = redeem_coupon(&code);
    wrong.customer_id = customer(2).to_string();
    let status = client
        .redeem_coupon(wrong)
        .await
        .expect_err("other customer");
    assert_rejected(&status, "COUPON_OF_ANOTHER_CUSTOMER");

    let mut first = redeem_coupon(&typed);
    first.customer_id = c.to_string();
    let done = client
        .redeem_coupon(first.clone())
        .await
        .expect("redeem")
        .into_inner();
    assert_eq!(result(&done.result).event_types, ["coupon.redeemed"]);
    assert_eq!(done.reward_id, reward_id);
    let head = server.head().await;
    let retry = client
        .redeem_coupon(first)
        .await
        .expect("retry")
        .into_inner();
    assert!(result(&retry.result).replayed);
    assert_eq!(server.head().await, head);
    let status = client
        .redeem_coupon(redeem_coupon(&code))
        .await
        .expect_err("twice");
    assert_rejected(&status, "COUPON_ALREADY_REDEEMED");
    let coupon = client
        .get_coupon(pb::GetCouponRequest { code: code.clone() })
        .await
        .expect("get coupon")
        .into_inner()
        .coupon
        .expect("coupon");
    assert_eq!(coupon.redeemed_at, ts(DEFAULT_NOW_SECONDS));
    assert_eq!(
        (
            coupon.redeemed_channel.as_str(),
            coupon.redeemed_order_id.as_str()
        ),
        ("store", "o-77")
    );

    // A second claim is within the limit of 2, a third is not.
    let second = client
        .claim_reward(claim(c, &reward_id))
        .await
        .expect("second")
        .into_inner();
    assert_ne!(second.coupon_code, code);
    client
        .adjust_points(adjust(c, 100))
        .await
        .expect("more points");
    let status = client
        .claim_reward(claim(c, &reward_id))
        .await
        .expect_err("limit");
    assert_rejected(&status, "REWARD_LIMIT_REACHED");

    // The second coupon, presented at its expiry.
    server.clock.advance(DAY * 7);
    let status = client
        .redeem_coupon(redeem_coupon(&second.coupon_code))
        .await
        .expect_err("expired");
    assert_rejected(&status, "COUPON_EXPIRED");
}

#[tokio::test]
async fn a_refused_claim_appends_nothing_on_any_stream() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    client.adjust_points(adjust(c, 99)).await.expect("points");
    let reward_id = define_reward(&mut client, define(100, 1, 1)).await;
    let head = server.head().await;
    let status = client
        .claim_reward(claim(c, &reward_id))
        .await
        .expect_err("poor");
    assert_rejected(&status, "INSUFFICIENT_POINTS");
    assert_eq!(server.head().await, head);
    assert_eq!(get_reward(&mut client, &reward_id).await.stock, 1);

    let status = client
        .claim_reward(claim(c, &Uuid::from_u128(0xdead).to_string()))
        .await
        .expect_err("unknown reward");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .claim_reward(claim(customer(7), &reward_id))
        .await
        .expect_err("not enrolled");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .claim_reward(claim(c, "nope"))
        .await
        .expect_err("bad id");
    assert_invalid(&status, "reward_id");

    client
        .retire_reward(pb::RetireRewardRequest {
            command: cmd(),
            reward_id: reward_id.clone(),
            reason: String::new(),
        })
        .await
        .expect("retire");
    client.adjust_points(adjust(c, 100)).await.expect("points");
    let status = client
        .claim_reward(claim(c, &reward_id))
        .await
        .expect_err("retired");
    assert_rejected(&status, "REWARD_RETIRED");

    let out = define_reward(&mut client, define(10, 0, 1)).await;
    let status = client
        .claim_reward(claim(c, &out))
        .await
        .expect_err("no stock");
    assert_rejected(&status, "REWARD_OUT_OF_STOCK");
}

#[tokio::test]
async fn coupon_lookups_name_bad_and_unknown_codes() {
    let server = start().await;
    let mut client = server.client().await;
    let status = client
        .get_coupon(pb::GetCouponRequest {
            code: "0000-0000-0000-0001".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .redeem_coupon(redeem_coupon("0000000000000001"))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .get_coupon(pb::GetCouponRequest { code: "XYZ".into() })
        .await
        .expect_err("bad");
    assert_invalid(&status, "code");
    let mut bad_customer = redeem_coupon("0000000000000001");
    bad_customer.customer_id = "nope".into();
    let status = client.redeem_coupon(bad_customer).await.expect_err("bad");
    assert_invalid(&status, "customer_id");
}

#[tokio::test]
async fn concurrent_claims_never_sell_more_than_the_stock() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let reward_id = define_reward(&mut client, define(100, 4, 1)).await;
    let customers: Vec<Uuid> = (0..12).map(customer).collect();
    for c in &customers {
        enrol(&mut client, *c).await;
        client.adjust_points(adjust(*c, 150)).await.expect("points");
    }
    let tasks: Vec<_> = customers
        .iter()
        .map(|c| {
            let mut client = client.clone();
            let req = claim(*c, &reward_id);
            tokio::spawn(async move { client.claim_reward(req).await })
        })
        .collect();
    let mut won = Vec::new();
    let mut refused = 0;
    for (c, t) in customers.iter().zip(tasks) {
        match t.await.expect("join") {
            Ok(r) => won.push((*c, r.into_inner().coupon_code)),
            Err(status) => {
                assert_rejected(&status, "REWARD_OUT_OF_STOCK");
                refused += 1;
            }
        }
    }
    assert_eq!((won.len(), refused), (4, 8));
    let codes: std::collections::BTreeSet<_> = won.iter().map(|(_, code)| code.clone()).collect();
    assert_eq!(codes.len(), 4);
    for c in &customers {
        let balance = account(&mut client, *c).await.balance;
        let expected = if won.iter().any(|(w, _)| w == c) {
            50
        } else {
            150
        };
        assert_eq!(balance, expected, "{c}");
    }
    let reward = get_reward(&mut client, &reward_id).await;
    assert_eq!((reward.stock, reward.claimed), (0, 4));
    assert_eq!(server.events_of_type("coupon.issued").await.len(), 4);
}

// ---- The scheduler beside the service ------------------------------------------------

#[tokio::test]
async fn the_spawned_scheduler_expires_points_in_the_background() {
    let clock = ManualClock::new(LogTime::from_unix_nanos(
        DEFAULT_NOW_SECONDS * 1_000_000_000,
    ));
    let mut task = None;
    let server = Server(
        kizuna_tests::serve_on_temp_log(clock, |runner| {
            let (service, scheduler) = kizuna_loyalty::service_with_scheduler(
                runner,
                kizuna_loyalty::LoyaltyConfig {
                    check_interval: Duration::from_millis(10),
                },
            );
            task = Some(scheduler);
            tonic::transport::Server::builder().add_service(service)
        })
        .await,
    );
    register_members(&server).await;
    assert_eq!(
        kizuna_loyalty::LoyaltyConfig::default().check_interval,
        Duration::from_secs(1)
    );
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(1);
    enrol(&mut client, c).await;
    buy(&mut client, c, "o-1", 5_000).await;
    server.clock.advance(DAY * 30);
    // Eventually: poll the account, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if account(&mut client, c).await.total_expired == 50 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scheduler did not expire the lot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let task = task.expect("scheduler task");
    assert!(!task.is_finished());
    task.abort();
    assert_eq!(
        server.events_of_type("loyalty.points_expired").await.len(),
        1
    );
}

#[tokio::test]
async fn time_checked_commands_refuse_a_caller_time_and_a_reused_command_id() {
    let server = start().await;
    let mut client = server.client().await;
    set_rules(&mut client).await;
    let c = customer(7);
    enrol(&mut client, c).await;
    client.adjust_points(adjust(c, 250)).await.expect("points");
    let reward_id = define_reward(&mut client, define(100, 5, 2)).await;
    let backdated = || {
        Some(pb::CommandMetadata {
            occurred_at: ts(DEFAULT_NOW_SECONDS - 86_400),
            ..cmd().expect("metadata")
        })
    };
    // Expiry and unexpired lots are judged at the server's time only.
    let status = client
        .claim_reward(pb::ClaimRewardRequest {
            command: backdated(),
            ..claim(c, &reward_id)
        })
        .await
        .expect_err("a backdated claim");
    assert_invalid(&status, "command.occurred_at");
    let status = client
        .redeem_points(pb::RedeemPointsRequest {
            command: backdated(),
            ..redeem(c, 10)
        })
        .await
        .expect_err("a backdated redemption");
    assert_invalid(&status, "command.occurred_at");
    let code = client
        .claim_reward(claim(c, &reward_id))
        .await
        .expect("claim")
        .into_inner()
        .coupon_code;
    let status = client
        .redeem_coupon(pb::RedeemCouponRequest {
            command: backdated(),
            ..redeem_coupon(&code)
        })
        .await
        .expect_err("a backdated coupon redemption");
    assert_invalid(&status, "command.occurred_at");

    // A claim under the id of an earlier enrolment has no coupon to answer with.
    let enrol_id = Uuid::now_v7();
    client
        .enrol(pb::EnrolRequest {
            command: cmd_id(enrol_id),
            customer_id: customer(8).to_string(),
            programme_id: "default".into(),
        })
        .await
        .expect("enrol");
    let head = server.head().await;
    let status = client
        .claim_reward(pb::ClaimRewardRequest {
            command: cmd_id(enrol_id),
            ..claim(c, &reward_id)
        })
        .await
        .expect_err("a reused command id");
    assert_invalid(&status, "command.command_id");
    assert_eq!(server.head().await, head);
}

#[tokio::test]
async fn only_a_registered_customer_enrols() {
    let server = start().await;
    let mut client = server.client().await;
    let head = server.head().await;
    let status = client
        .enrol(pb::EnrolRequest {
            command: cmd(),
            customer_id: customer(99).to_string(),
            programme_id: "default".into(),
        })
        .await
        .expect_err("not registered");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(server.head().await, head, "nothing appended");
    enrol(&mut client, customer(1)).await;
}
