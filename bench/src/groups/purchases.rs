//! (g) Purchases over gRPC: `LoyaltyService.RecordPurchase` against a raw
//! `Append` of the same two events to the same account streams, at 1 and 64
//! clients, in one run.
//!
//! RecordPurchase does what a checkout's call costs: validate, read the
//! earning rules, load and fold the customer's loyalty account, decide the
//! points (rate, category and tier multipliers, monthly cap, tier review of
//! the rolling window), encode `loyalty.purchase_recorded` +
//! `loyalty.points_earned` and append both with the expected version. The
//! baseline appends, over the same gRPC stack and store, two events with the
//! very payloads a purchase stores to the same `loyalty-{customer}` streams,
//! so the ratio is the price of the loyalty command alone.
//!
//! Purchases are spread over [`ACCOUNTS`] enrolled accounts, so each holds a
//! few dozen purchases by the end of a run, like a real member, rather than
//! one account folding thousands.

use super::{CLIENTS, Ctx, net};
use crate::measure::{run_concurrent, with_cores_busy};
use crate::report::{Group, Report, Row};
use anyhow::Result;
use kizuna_command::CommandRunner;
use kizuna_eventlog::{Clock, Durability, EventStore, SledStore, SystemClock};
use kizuna_eventlog_grpc::EventLogService;
use kizuna_proto::v1 as pb;
use kizuna_proto::v1::customer_service_client::CustomerServiceClient;
use kizuna_proto::v1::event_log_client::EventLogClient;
use kizuna_proto::v1::loyalty_service_client::LoyaltyServiceClient;
use prost::Message as _;
use serde_json::json;
use std::sync::Arc;
use tonic::transport::Channel;
use uuid::Uuid;

/// Loyalty accounts the purchases are spread over.
const ACCOUNTS: usize = 1024;

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let mode = Durability::Fsync;
    for clients in CLIENTS {
        eprintln!("purchases: raw Append of a purchase's two events, {mode}, {clients} clients");
        report.push(one(ctx, mode, clients, Workload::RawAppend).await?)?;
        eprintln!("purchases: RecordPurchase, {mode}, {clients} clients");
        report.push(one(ctx, mode, clients, Workload::RecordPurchase).await?)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    RawAppend,
    RecordPurchase,
}

fn metadata() -> Option<pb::CommandMetadata> {
    Some(pb::CommandMetadata {
        command_id: Uuid::now_v7().to_string(),
        actor: "svc:bench".into(),
        ..Default::default()
    })
}

const CATEGORIES: [&str; 4] = ["books", "food", "toys", "garden"];

/// Purchase `n`: two lines in two categories, 1,000 to 20,000 JPY.
fn line_items(n: u64) -> (i64, Vec<pb::LoyaltyLineItem>) {
    let a = 1_000 + i64::try_from(n % 10_000).unwrap_or(0);
    let b = 500 + i64::try_from(n % 7_000).unwrap_or(0);
    let items = vec![
        pb::LoyaltyLineItem {
            sku: format!("SKU-{:05}", n % 50_000),
            category: CATEGORIES[(n % 4) as usize].into(),
            quantity: 1,
            unit_price_minor: a,
        },
        pb::LoyaltyLineItem {
            sku: format!("SKU-{:05}", (n * 7) % 50_000),
            category: CATEGORIES[((n + 1) % 4) as usize].into(),
            quantity: 2,
            unit_price_minor: b,
        },
    ];
    (a + 2 * b, items)
}

fn purchase_request(customer: &str, n: u64) -> pb::RecordPurchaseRequest {
    let (amount, items) = line_items(n);
    pb::RecordPurchaseRequest {
        command: metadata(),
        customer_id: customer.to_owned(),
        order_id: format!("order-{}", Uuid::now_v7()),
        amount_minor: amount,
        currency: "JPY".into(),
        line_items: items,
        channel: "web".into(),
        store_id: "tokyo-01".into(),
        campaign_id: String::new(),
    }
}

/// The two payloads RecordPurchase stores for `purchase_request(customer, n)`.
fn stored_payloads(customer: &str, n: u64) -> [Vec<u8>; 2] {
    let request = purchase_request(customer, n);
    let now = Some(prost_types::Timestamp {
        seconds: 1_767_225_600,
        nanos: 123_456_789,
    });
    let recorded = pb::LoyaltyPurchaseRecorded {
        customer_id: customer.to_owned(),
        order_id: request.order_id.clone(),
        amount_minor: request.amount_minor,
        currency: request.currency,
        line_items: request.line_items,
        channel: request.channel,
        store_id: request.store_id,
        campaign_id: String::new(),
        purchased_at: now,
    };
    let earned = pb::LoyaltyPointsEarned {
        customer_id: customer.to_owned(),
        order_id: request.order_id,
        lot_id: Uuid::now_v7().to_string(),
        points: request.amount_minor / 100,
        uncapped_points: request.amount_minor / 100,
        rules_version: 1,
        tier_multiplier_bp: 10_000,
        campaign_multiplier_bp: 10_000,
        earned_at: now,
        expires_at: now,
    };
    [recorded.encode_to_vec(), earned.encode_to_vec()]
}

fn rules() -> pb::SetEarningRulesRequest {
    let days = |n: i64| {
        Some(prost_types::Duration {
            seconds: n * 86_400,
            nanos: 0,
        })
    };
    pb::SetEarningRulesRequest {
        command: metadata(),
        rates: vec![pb::LoyaltyEarningRate {
            currency: "JPY".into(),
            unit_minor: 100,
            points_per_unit: 1,
        }],
        category_multipliers: vec![pb::LoyaltyCategoryMultiplier {
            category: "books".into(),
            multiplier_bp: 20_000,
        }],
        monthly_cap: Some(1_000_000),
        lot_lifetime: days(365),
        tiers: vec![
            pb::LoyaltyTierRule {
                name: "silver".into(),
                min_spend_minor: 100_000,
                min_purchase_count: 10,
                multiplier_bp: 12_000,
            },
            pb::LoyaltyTierRule {
                name: "gold".into(),
                min_spend_minor: 500_000,
                min_purchase_count: 40,
                multiplier_bp: 15_000,
            },
        ],
        tier_currency: "JPY".into(),
        tier_window: days(365),
        tier_grace: days(30),
        ..Default::default()
    }
}

/// Sets the earning rules, registers [`ACCOUNTS`] customers and enrols them;
/// returns their ids.
async fn enrol_accounts(channels: &[Channel]) -> Result<Vec<String>> {
    LoyaltyServiceClient::new(channels[0].clone())
        .set_earning_rules(rules())
        .await?;
    let customers: Vec<String> = (0..ACCOUNTS).map(|_| Uuid::now_v7().to_string()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, chunk) in customers.chunks(ACCOUNTS / 16).enumerate() {
        let channel = channels[i % channels.len()].clone();
        let mut client = LoyaltyServiceClient::new(channel.clone());
        let mut customers = CustomerServiceClient::new(channel);
        let chunk = chunk.to_vec();
        tasks.spawn(async move {
            for customer_id in chunk {
                customers
                    .register_customer(pb::RegisterCustomerRequest {
                        command: metadata(),
                        customer_id: customer_id.clone(),
                        contact: Some(pb::ContactData {
                            email: format!("member-{customer_id}@example.jp"),
                            ..Default::default()
                        }),
                        source: "bench".into(),
                        ..Default::default()
                    })
                    .await?;
                client
                    .enrol(pb::EnrolRequest {
                        command: metadata(),
                        customer_id,
                        programme_id: "default".into(),
                    })
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(customers)
}

async fn one(ctx: &Ctx, mode: Durability, clients: usize, workload: Workload) -> Result<Row> {
    let dir = tempfile::tempdir_in(&ctx.base)?;
    let store = SledStore::open(ctx.store_config(dir.path(), mode))?;
    let log: Arc<dyn EventStore> = Arc::new(store.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let runner = CommandRunner::new(log.clone(), clock, kizuna_domain::upcasters());
    // Both workloads run on a server holding the same services, set up the
    // same way (rules set, customers registered and enrolled); only the
    // measured call differs.
    let router = tonic::transport::Server::builder()
        .add_service(EventLogService::new(log).into_server())
        .add_service(kizuna_customer::service(
            runner.clone(),
            kizuna_customer::CustomerConfig {
                default_region: "JP".parse()?,
            },
        ))
        .add_service(kizuna_loyalty::service(runner));
    let server = net::serve(router).await?;
    let channels = net::connect(server.addr, ctx.connections.min(clients)).await?;
    let customers = Arc::new(enrol_accounts(&channels).await?);
    let payload_bytes: usize = stored_payloads(&customers[0], 0).iter().map(Vec::len).sum();
    let (sample, cores_busy) = with_cores_busy(run_concurrent(ctx.budget, clients, 2, |i| {
        let channel = channels[i % channels.len()].clone();
        let customers = customers.clone();
        let mut n = (i as u64) << 32;
        let mut account = i;
        move || {
            n += 1;
            account = (account + clients) % customers.len();
            let customer = customers[account].clone();
            let channel = channel.clone();
            async move {
                match workload {
                    Workload::RawAppend => {
                        let [recorded, earned] = stored_payloads(&customer, n);
                        let event = |event_type: &str, payload: Vec<u8>| pb::ProposedEvent {
                            event_id: Uuid::now_v7().to_string(),
                            event_type: event_type.into(),
                            schema_version: 1,
                            payload,
                            customer_id: customer.clone(),
                            metadata: Some(pb::EventMetadata {
                                correlation_id: Uuid::now_v7().to_string(),
                                causation_id: Uuid::now_v7().to_string(),
                                actor: "svc:bench".into(),
                                traceparent: String::new(),
                            }),
                            ..Default::default()
                        };
                        EventLogClient::new(channel)
                            .append(pb::AppendRequest {
                                stream: format!("loyalty-{customer}"),
                                expected_version: None,
                                events: vec![
                                    event("loyalty.purchase_recorded", recorded),
                                    event("loyalty.points_earned", earned),
                                ],
                            })
                            .await?;
                    }
                    Workload::RecordPurchase => {
                        LoyaltyServiceClient::new(channel)
                            .record_purchase(purchase_request(&customer, n))
                            .await?;
                    }
                }
                Ok(())
            }
        }
    }))
    .await?;
    let connections = channels.len();
    drop(channels);
    server.stop().await?;
    store.shutdown().await?;
    let mut extra = serde_json::Map::new();
    extra.insert("payload_bytes".into(), json!(payload_bytes));
    extra.insert("events_per_purchase".into(), json!(2));
    extra.insert("accounts".into(), json!(ACCOUNTS));
    extra.insert("connections".into(), json!(connections));
    if let Some(cores_busy) = cores_busy {
        extra.insert("cores_busy".into(), json!(cores_busy));
    }
    let (key, label) = match workload {
        Workload::RawAppend => ("purchases.raw_append", "g purchases: raw Append (2 events)"),
        Workload::RecordPurchase => ("purchases.record_purchase", "g purchases: RecordPurchase"),
    };
    Ok(Row {
        group: Group::Purchases,
        key,
        label: label.into(),
        durability: mode.to_string(),
        clients,
        batch: Some(2),
        sample,
        extra,
    })
}
