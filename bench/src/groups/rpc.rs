//! (c) The RPC limit: a tonic service that does nothing, called with requests
//! as long as an `AppendRequest` for one event and answering with a reply as
//! long as an `AppendResponse`. A gRPC append can at best match this.

use super::{CLIENTS, Ctx, net};
use crate::echo::{EchoRequest, EchoResponse, echo_client::EchoClient, echo_server};
use crate::fixture;
use crate::measure::run_concurrent;
use crate::report::{Group, Report, Row};
use anyhow::Result;
use prost::bytes::Bytes;
use serde_json::json;
use tonic::{Request, Response, Status};

struct EchoService {
    reply: Bytes,
}

#[tonic::async_trait]
impl echo_server::Echo for EchoService {
    async fn echo(&self, _request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse {
            body: self.reply.clone(),
        }))
    }
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    for clients in CLIENTS {
        eprintln!("rpc: tonic echo, {clients} clients");
        report.push(one(ctx, clients).await?)?;
    }
    Ok(())
}

async fn one(ctx: &Ctx, clients: usize) -> Result<Row> {
    let service = EchoService {
        reply: fixture::payload(ctx.sizes.append_response),
    };
    let server = net::serve(
        tonic::transport::Server::builder().add_service(echo_server::EchoServer::new(service)),
    )
    .await?;
    let channels = net::connect(server.addr, ctx.connections.min(clients)).await?;
    let body = fixture::payload(ctx.sizes.append_request);
    let sample = run_concurrent(ctx.budget, clients, 1, |i| {
        let client = EchoClient::new(channels[i % channels.len()].clone());
        let body = body.clone();
        move || {
            let mut client = client.clone();
            let request = EchoRequest { body: body.clone() };
            async move {
                client.echo(request).await?;
                Ok(())
            }
        }
    })
    .await?;
    let connections = channels.len();
    drop(channels);
    server.stop().await?;
    let mut extra = serde_json::Map::new();
    extra.insert("request_bytes".into(), json!(ctx.sizes.append_request));
    extra.insert("response_bytes".into(), json!(ctx.sizes.append_response));
    extra.insert("connections".into(), json!(connections));
    Ok(Row {
        group: Group::Rpc,
        key: "rpc.echo",
        label: "c rpc: tonic echo".into(),
        durability: "n/a".into(),
        clients,
        batch: Some(1),
        sample,
        extra,
    })
}
