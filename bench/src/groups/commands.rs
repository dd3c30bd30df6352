//! (f) Commands over gRPC: `LeadService.CaptureLead` against a raw `Append` of
//! an event of the same size, both at 1 and 64 clients, in one run.
//!
//! CaptureLead does everything a command does: validate the metadata,
//! normalise the contact data (NFKC, E.164), load the (new) lead stream, decide,
//! encode the typed event and append it with an id derived from the command
//! id. The baseline appends, over the same gRPC stack and the same store, an
//! event whose payload is the very `lead.captured` bytes CaptureLead stores, so
//! the ratio is the price of the command layer alone.

use super::{CLIENTS, Ctx, net};
use crate::measure::{run_concurrent, with_cores_busy};
use crate::report::{Group, Report, Row};
use anyhow::Result;
use kizuna_command::CommandRunner;
use kizuna_eventlog::{Clock, Durability, EventStore, SledStore, SystemClock};
use kizuna_eventlog_grpc::EventLogService;
use kizuna_proto::v1 as pb;
use kizuna_proto::v1::event_log_client::EventLogClient;
use kizuna_proto::v1::lead_service_client::LeadServiceClient;
use prost::Message as _;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let mode = Durability::Fsync;
    for clients in CLIENTS {
        eprintln!("commands: raw Append of a lead.captured-sized event, {mode}, {clients} clients");
        report.push(one(ctx, mode, clients, Workload::RawAppend).await?)?;
        eprintln!("commands: CaptureLead, {mode}, {clients} clients");
        report.push(one(ctx, mode, clients, Workload::CaptureLead).await?)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    RawAppend,
    CaptureLead,
}

const FAMILY_NAMES: [&str; 10] = [
    "山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤",
];
const GIVEN_NAMES: [&str; 10] = [
    "太郎",
    "花子",
    "翔",
    "陽菜",
    "蓮",
    "結衣",
    "大輔",
    "美咲",
    "健",
    "さくら",
];

/// Lead `i`'s mobile number as people type it: full-width digits and dashes.
fn typed_phone(i: u64) -> String {
    let digits = format!("090-{:04}-{:04}", 1000 + (i / 10_000) % 9000, i % 10_000);
    digits
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(u32::from(c) - u32::from('0') + 0xFF10).unwrap_or(c),
            '-' => '－',
            other => other,
        })
        .collect()
}

/// The contact data of lead `i`: a Japanese record written the way people
/// type it (full-width digits, ideographic space), a distinct person per
/// lead (own e-mail and phone; names from a small pool, so some share one),
/// like a real stream of web-form leads.
fn contact(i: u64) -> pb::ContactData {
    pb::ContactData {
        given_name: GIVEN_NAMES[(i % 10) as usize].into(),
        family_name: FAMILY_NAMES[((i / 10) % 10) as usize].into(),
        email: format!(" Lead.{i}@Example.JP "),
        phone: typed_phone(i),
        postal_address: None,
        company: "株式会社\u{3000}例".into(),
    }
}

fn capture_request(i: u64) -> pb::CaptureLeadRequest {
    pb::CaptureLeadRequest {
        command: Some(pb::CommandMetadata {
            command_id: Uuid::now_v7().to_string(),
            actor: "svc:bench".into(),
            ..Default::default()
        }),
        source: "web-form".into(),
        channel: pb::LeadChannel::Web as i32,
        contact: Some(contact(i)),
        consents: vec![pb::ConsentGrant {
            channel: pb::ContactChannel::Email as i32,
            purpose: pb::ConsentPurpose::Marketing as i32,
        }],
        ..Default::default()
    }
}

/// The payload CaptureLead stores for `capture_request(i)`, so the raw
/// baseline appends exactly as many bytes.
fn stored_payload(i: u64) -> Vec<u8> {
    pb::LeadCaptured {
        lead_id: Uuid::now_v7().to_string(),
        source: "web-form".into(),
        channel: pb::LeadChannel::Web as i32,
        contact: Some(pb::ContactData {
            given_name: GIVEN_NAMES[(i % 10) as usize].into(),
            family_name: FAMILY_NAMES[((i / 10) % 10) as usize].into(),
            email: format!("lead.{i}@example.jp"),
            phone: format!("+8190{:04}{:04}", 1000 + (i / 10_000) % 9000, i % 10_000),
            postal_address: None,
            company: "株式会社 例".into(),
        }),
        consents: vec![pb::ConsentGrant {
            channel: pb::ContactChannel::Email as i32,
            purpose: pb::ConsentPurpose::Marketing as i32,
        }],
        ..Default::default()
    }
    .encode_to_vec()
}

async fn one(ctx: &Ctx, mode: Durability, clients: usize, workload: Workload) -> Result<Row> {
    let dir = tempfile::tempdir_in(&ctx.base)?;
    let store = SledStore::open(ctx.store_config(dir.path(), mode))?;
    let log: Arc<dyn EventStore> = Arc::new(store.clone());
    let router = match workload {
        Workload::RawAppend => {
            tonic::transport::Server::builder().add_service(EventLogService::new(log).into_server())
        }
        Workload::CaptureLead => {
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let runner = CommandRunner::new(log, clock, kizuna_domain::upcasters());
            tonic::transport::Server::builder().add_service(kizuna_lead::service(
                runner,
                kizuna_lead::LeadConfig {
                    default_region: "JP".parse()?,
                },
            ))
        }
    };
    let server = net::serve(router).await?;
    let channels = net::connect(server.addr, ctx.connections.min(clients)).await?;
    let payload_bytes = stored_payload(0).len();
    let (sample, cores_busy) = with_cores_busy(run_concurrent(ctx.budget, clients, 1, |i| {
        let channel = channels[i % channels.len()].clone();
        let mut n = (i as u64) << 32;
        move || {
            n += 1;
            let channel = channel.clone();
            async move {
                match workload {
                    Workload::RawAppend => {
                        let request = pb::AppendRequest {
                            stream: format!("lead-{}", Uuid::now_v7()),
                            expected_version: Some(pb::ExpectedVersion {
                                kind: pb::expected_version::Kind::NoStream as i32,
                                version: 0,
                            }),
                            events: vec![pb::ProposedEvent {
                                event_id: Uuid::now_v7().to_string(),
                                event_type: "lead.captured".into(),
                                schema_version: 2,
                                payload: stored_payload(n),
                                // What the command layer stores beside the
                                // payload, so both store equal-sized events.
                                metadata: Some(pb::EventMetadata {
                                    correlation_id: Uuid::now_v7().to_string(),
                                    causation_id: Uuid::now_v7().to_string(),
                                    actor: "svc:bench".into(),
                                    traceparent: String::new(),
                                }),
                                ..Default::default()
                            }],
                        };
                        EventLogClient::new(channel).append(request).await?;
                    }
                    Workload::CaptureLead => {
                        LeadServiceClient::new(channel)
                            .capture_lead(capture_request(n))
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
    extra.insert("connections".into(), json!(connections));
    if let Some(cores_busy) = cores_busy {
        extra.insert("cores_busy".into(), json!(cores_busy));
    }
    let (key, label) = match workload {
        Workload::RawAppend => (
            "commands.raw_append",
            "f commands: raw Append (lead.captured size)",
        ),
        Workload::CaptureLead => ("commands.capture_lead", "f commands: CaptureLead"),
    };
    Ok(Row {
        group: Group::Commands,
        key,
        label: label.into(),
        durability: mode.to_string(),
        clients,
        batch: Some(1),
        sample,
        extra,
    })
}
