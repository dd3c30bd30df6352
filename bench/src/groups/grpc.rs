//! (d) gRPC `Append`: `kizuna_eventlog_grpc::EventLogService` over a
//! `SledStore`, served in process like the echo baseline and called the same
//! way (same connections, same concurrency), each client appending single
//! events to its own stream. Against the echo rows this shows what the log
//! service adds on top of the bare RPC: conversion, validation, the writer
//! queue and, in `fsync` mode, the disk.

use super::{CLIENTS, Ctx, net};
use crate::fixture;
use crate::measure::run_concurrent;
use crate::report::{Group, Report, Row};
use anyhow::Result;
use kizuna_eventlog::{Durability, EventStore, SledStore};
use kizuna_eventlog_grpc::EventLogService;
use kizuna_proto::v1::event_log_client::EventLogClient;
use serde_json::json;
use std::sync::Arc;

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    for mode in [Durability::Fsync, Durability::None] {
        for clients in CLIENTS {
            eprintln!("grpc: Append, {mode}, {clients} clients");
            report.push(one(ctx, mode, clients).await?)?;
        }
    }
    Ok(())
}

/// Serves `store` over gRPC in this process.
pub async fn serve(store: &SledStore) -> Result<net::Server> {
    let store: Arc<dyn EventStore> = Arc::new(store.clone());
    let service = EventLogService::new(store).into_server();
    net::serve(tonic::transport::Server::builder().add_service(service)).await
}

async fn one(ctx: &Ctx, mode: Durability, clients: usize) -> Result<Row> {
    let dir = tempfile::tempdir_in(&ctx.base)?;
    let store = SledStore::open(ctx.store_config(dir.path(), mode))?;
    let server = serve(&store).await?;
    let channels = net::connect(server.addr, ctx.connections.min(clients)).await?;
    let sample = run_concurrent(ctx.budget, clients, 1, |i| {
        let client = EventLogClient::new(channels[i % channels.len()].clone());
        let stream = fixture::stream_name(i);
        let payload = ctx.payload.clone();
        move || {
            let mut client = client.clone();
            let request = fixture::append_request(&stream, &payload);
            async move {
                client.append(request).await?;
                Ok(())
            }
        }
    })
    .await?;
    let connections = channels.len();
    drop(channels);
    server.stop().await?;
    store.shutdown().await?;
    let mut extra = serde_json::Map::new();
    extra.insert("payload_bytes".into(), json!(ctx.payload.len()));
    extra.insert("request_bytes".into(), json!(ctx.sizes.append_request));
    extra.insert("connections".into(), json!(connections));
    Ok(Row {
        group: Group::Grpc,
        key: "grpc.append",
        label: "d grpc: Append".into(),
        durability: mode.to_string(),
        clients,
        batch: Some(1),
        sample,
        extra,
    })
}
