//! `kizuna events …`: the operator's client of the EventLog service.
//!
//! It uses the generated gRPC client directly, not `RemoteStore`, so that it
//! shows exactly what the wire API returns (status codes, hashes, positions)
//! and so doubles as a smoke test of that API. Every failure becomes one line
//! on stderr and an exit code; nothing here panics on what a caller typed or a
//! server answered.

use crate::cli::{AppendArgs, EventsArgs, EventsCommand, FilterArgs, ReadArgs, TailArgs};
use crate::json::{self, InputError};
use futures::StreamExt;
use kizuna_proto::v1::event_log_client::EventLogClient;
use kizuna_proto::v1::{
    EventFilter, HeadRequest, ReadAllRequest, ReadStreamRequest, SubscribeRequest, VerifyRequest,
    subscribe_request::Start, subscribe_response::Message,
};
use std::io::{self, Read as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Exit code of `events verify` when the log does not hold together.
pub const EXIT_VERIFY_FAILED: u8 = 2;

/// Most events asked for in one ReadStream call (the server's maximum).
const READ_PAGE: u64 = 1000;

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A flag, or a field of the stdin batch, is malformed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// `--endpoint` is not a URL.
    #[error("invalid --endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// What was given.
        endpoint: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to {endpoint}: {}", chain(.source))]
    Connect {
        /// The endpoint tried.
        endpoint: String,
        /// The transport failure.
        source: tonic::transport::Error,
    },
    /// The server answered with an error status.
    #[error("{}: {}", code_name(.0.code()), status_message(.0))]
    Rpc(tonic::Status),
    /// stdin could not be read.
    #[error("cannot read stdin: {0}")]
    Stdin(io::Error),
    /// stdout could not be written.
    #[error("cannot write to stdout: {0}")]
    Stdout(io::Error),
    /// stdout's reader went away (`| head`): not a failure, [`run`] ends
    /// the command with exit code 0.
    #[error("stdout was closed")]
    StdoutClosed,
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        Self::Rpc(status)
    }
}

/// An error and its causes, `a: b: c`, since transport errors hide the useful
/// part (e.g. "connection refused") in their source.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

fn status_message(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    if let Some(source) = std::error::Error::source(status) {
        let cause = chain(source);
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    if text.is_empty() {
        text = status.code().description().to_string();
    }
    text
}

/// The canonical gRPC name of a status code, as in the API docs.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A command whose input has been checked.
enum Prepared {
    Append(kizuna_proto::v1::AppendRequest),
    ReadStream(ReadArgs),
    ReadAll(ReadArgs, EventFilter),
    Tail(TailArgs, EventFilter),
    Head,
    Verify,
}

/// Runs one `kizuna events` command; the exit code is 0, or
/// [`EXIT_VERIFY_FAILED`] for a failed verify.
pub async fn run(args: EventsArgs) -> Result<ExitCode, ClientError> {
    // Check the input before connecting: a typo should not need a server.
    let prepared = match args.command {
        EventsCommand::Append(a) => Prepared::Append(append_request(&a)?),
        EventsCommand::Read(r) if r.all => {
            let f = filter(&r.filter)?;
            Prepared::ReadAll(r, f)
        }
        EventsCommand::Read(r) => Prepared::ReadStream(r),
        EventsCommand::Tail(t) => {
            let f = filter(&t.filter)?;
            Prepared::Tail(t, f)
        }
        EventsCommand::Head => Prepared::Head,
        EventsCommand::Verify => Prepared::Verify,
    };
    let mut client = connect(&args.endpoint).await?;
    match execute(&mut client, prepared).await {
        Err(ClientError::StdoutClosed) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

async fn execute(
    client: &mut EventLogClient<Channel>,
    prepared: Prepared,
) -> Result<ExitCode, ClientError> {
    let mut out = Output;
    match prepared {
        Prepared::Append(request) => {
            let result = client.append(request).await?.into_inner().result;
            let result = result.ok_or_else(|| {
                ClientError::Rpc(tonic::Status::internal("the server sent no append result"))
            })?;
            out.line(&json::append_result_line(&result))?;
        }
        Prepared::ReadStream(r) => read_stream(client, &r, &mut out).await?,
        Prepared::ReadAll(r, f) => read_all(client, &r, f, &mut out).await?,
        Prepared::Tail(t, f) => tail(client, &t, f, &mut out).await?,
        Prepared::Head => {
            let head = client.head(HeadRequest {}).await?.into_inner();
            out.line(&json::head_line(&head))?;
        }
        Prepared::Verify => {
            let report = client.verify(VerifyRequest {}).await?.into_inner();
            let written = out.line(&json::verify_line(&report));
            // A broken log is reported by the exit code even if no one reads stdout.
            if !report.ok {
                return Ok(ExitCode::from(EXIT_VERIFY_FAILED));
            }
            written?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn append_request(args: &AppendArgs) -> Result<kizuna_proto::v1::AppendRequest, ClientError> {
    if args.stdin {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .map_err(ClientError::Stdin)?;
        Ok(json::append_request_from_batch(&text, args)?)
    } else {
        Ok(json::append_request_from_flags(args)?)
    }
}

fn filter(args: &FilterArgs) -> Result<EventFilter, InputError> {
    Ok(EventFilter {
        categories: args.categories.clone(),
        event_types: args.event_types.clone(),
        customer_id: args
            .customer
            .as_deref()
            .map(|c| json::parse_uuid(c, "--customer"))
            .transpose()?
            .unwrap_or_default(),
    })
}

/// Connects to `endpoint`, taking `host:port` as `http://host:port`.
pub async fn connect(endpoint: &str) -> Result<EventLogClient<Channel>, ClientError> {
    let channel = connect_channel(endpoint).await?;
    // A page of large events can pass the 4 MiB default; the server bounds it.
    Ok(EventLogClient::new(channel).max_decoding_message_size(usize::MAX))
}

/// A channel to `endpoint` (`http://` is assumed without a scheme).
pub async fn connect_channel(endpoint: &str) -> Result<Channel, ClientError> {
    let url = if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    };
    let channel = Endpoint::from_shared(url.clone())
        .map_err(|e| ClientError::Endpoint {
            endpoint: endpoint.to_string(),
            reason: chain(&e),
        })?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            endpoint: url,
            source,
        })?;
    Ok(channel)
}

async fn read_stream(
    client: &mut EventLogClient<Channel>,
    args: &ReadArgs,
    out: &mut Output,
) -> Result<(), ClientError> {
    let stream = args.stream.clone().unwrap_or_default();
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    let mut from = args.from;
    while remaining > 0 {
        let limit = remaining.min(READ_PAGE);
        let page = client
            .read_stream(ReadStreamRequest {
                stream: stream.clone(),
                from_version: from.unwrap_or(0),
                backward: args.backward,
                from_end: args.backward && from.is_none(),
                // At most READ_PAGE, which fits.
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
            })
            .await?
            .into_inner();
        let got = page.events.len() as u64;
        for event in &page.events {
            out.line(&json::event_line(event))?;
        }
        remaining = remaining.saturating_sub(got);
        match page.next_version {
            // An empty page with a next version would loop for ever.
            Some(next) if got > 0 => from = Some(next),
            _ => break,
        }
    }
    Ok(())
}

async fn read_all(
    client: &mut EventLogClient<Channel>,
    args: &ReadArgs,
    filter: EventFilter,
    out: &mut Output,
) -> Result<(), ClientError> {
    if args.limit == Some(0) {
        return Ok(());
    }
    let mut chunks = client
        .read_all(ReadAllRequest {
            from_position: args.from.unwrap_or(0),
            filter: Some(filter),
            limit: args.limit.unwrap_or(0),
        })
        .await?
        .into_inner();
    while let Some(chunk) = chunks.message().await? {
        for event in &chunk.events {
            out.line(&json::event_line(event))?;
        }
    }
    Ok(())
}

async fn tail(
    client: &mut EventLogClient<Channel>,
    args: &TailArgs,
    filter: EventFilter,
    out: &mut Output,
) -> Result<(), ClientError> {
    let start = match args.from {
        Some(p) => Start::FromPosition(p),
        None => Start::FromNow(true),
    };
    let mut messages = client
        .subscribe(SubscribeRequest {
            start: Some(start),
            filter: Some(filter),
        })
        .await?
        .into_inner();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            message = messages.next() => match message {
                None => return Ok(()),
                Some(Err(status)) => return Err(status.into()),
                Some(Ok(m)) => match m.message {
                    Some(Message::Event(event)) => out.line(&json::event_line(&event))?,
                    Some(Message::CaughtUp(c)) => {
                        tracing::debug!(next_position = c.next_position, "caught up; following live events");
                    }
                    None => {}
                },
            },
        }
    }
}

/// stdout, one JSON object a line. A reader that goes away (`| head`) ends
/// the command quietly with [`ClientError::StdoutClosed`].
struct Output;

impl Output {
    fn line(&mut self, line: &str) -> Result<(), ClientError> {
        // Flushed per line so that each event reaches a pipe at once.
        let mut out = io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| match e.kind() {
                io::ErrorKind::BrokenPipe => ClientError::StdoutClosed,
                _ => ClientError::Stdout(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_name_the_code() {
        let e = ClientError::from(tonic::Status::aborted("wrong expected version"));
        assert_eq!(e.to_string(), "ABORTED: wrong expected version");
        let e = ClientError::from(tonic::Status::invalid_argument(""));
        assert!(e.to_string().starts_with("INVALID_ARGUMENT: "), "{e}");
    }

    #[tokio::test]
    async fn a_bad_endpoint_is_an_input_error() {
        let err = connect("http://exa mple:1").await.unwrap_err();
        assert!(err.to_string().starts_with("invalid --endpoint"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_server_says_where_and_why() {
        // Port 1 on loopback: nothing listens there in a test environment.
        let err = connect("127.0.0.1:1").await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot connect to http://127.0.0.1:1: "),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }
}
