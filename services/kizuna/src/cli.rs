//! The command line: `kizuna serve` and `kizuna events …`.
//!
//! Kept apart from what the commands do so that parsing is tested on its own
//! and the binary stays a one-liner. Values a caller types that need more than
//! syntax (UUIDs, JSON, expected versions) are kept as text here and checked by
//! the command, which names the bad flag or field and exits with 1; clap's own
//! usage errors exit with 2.

use clap::{ArgGroup, Args, Parser, Subcommand};
use kizuna_eventlog::Durability;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default address of `kizuna serve` and of the client commands.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default `--endpoint` of the client commands.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";

/// kizuna: an event-sourced CRM backend.
#[derive(Debug, Parser)]
#[command(name = "kizuna", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (gRPC): the event log and the lead, customer, support,
    /// loyalty and campaign services, or one role of them; until SIGTERM or
    /// SIGINT.
    Serve(ServeArgs),
    /// Append, read, follow and check the events of a running server.
    Events(EventsArgs),
    /// Call any RPC with a JSON request, e.g.
    /// `kizuna call LeadService/CaptureLead '{"source":"web",…}'`; prints the JSON response.
    Call(CallArgs),
}

/// Flags of `kizuna serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory of the event log (created when missing).
    #[arg(long, env = "KIZUNA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "KIZUNA_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// When an append is acknowledged: fsync (survives power loss), flush
    /// (survives a process crash) or none (tests and benchmarks only).
    #[arg(long, env = "KIZUNA_DURABILITY", default_value = "fsync")]
    pub durability: Durability,
    /// Seconds that in-flight RPCs get to finish after SIGTERM/SIGINT before
    /// the server exits anyway (e.g. 10 or 2.5).
    #[arg(long, env = "KIZUNA_DRAIN_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub drain_timeout: Duration,
    /// Which services this process runs: all (default), log, or one command
    /// role (lead, customer, support, loyalty, campaign) against the log at
    /// --log-endpoint.
    #[arg(long, env = "KIZUNA_ROLE", value_enum, default_value = "all")]
    pub role: crate::server::Role,
    /// URL of the log node (`kizuna serve --role log`) a command role appends to.
    #[arg(long, env = "KIZUNA_LOG_ENDPOINT", value_name = "URL")]
    pub log_endpoint: Option<String>,
    /// Region for phone numbers written without a country code (ISO 3166-1
    /// alpha-2, e.g. JP or US).
    #[arg(long, env = "KIZUNA_DEFAULT_REGION", default_value = crate::server::DEFAULT_REGION)]
    pub default_region: kizuna_domain::contact::Region,
    /// Seconds between two SLA breach checks of the support role.
    #[arg(long, env = "KIZUNA_SLA_CHECK_INTERVAL", default_value = "10", value_parser = parse_seconds)]
    pub sla_check_interval: Duration,
    /// Seconds between two runs of the loyalty scheduler (points expiry and
    /// the tier review at each period end) of the loyalty role.
    #[arg(long, env = "KIZUNA_LOYALTY_CHECK_INTERVAL", default_value = "10", value_parser = parse_seconds)]
    pub loyalty_check_interval: Duration,
    /// Seconds between two reads of the log by the trigger processor of the
    /// campaign role (how soon a matching event targets its customer).
    #[arg(long, env = "KIZUNA_TRIGGER_CHECK_INTERVAL", default_value = "1", value_parser = parse_seconds)]
    pub trigger_check_interval: Duration,
}

/// `kizuna events`: the client of a server's EventLog service.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// gRPC endpoint of the server (`http://` is assumed when no scheme is given).
    #[arg(long, global = true, env = "KIZUNA_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Which operation.
    #[command(subcommand)]
    pub command: EventsCommand,
}

/// The `kizuna events` subcommands. Every one prints JSON, one object a line.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Append one event (flags) or a batch for one stream (--stdin); prints where it landed.
    Append(AppendArgs),
    /// Read one stream (--stream) or the whole log (--all).
    Read(ReadArgs),
    /// Follow the log and print events as they are appended, until Ctrl-C.
    Tail(TailArgs),
    /// Print the log's head: the next position and the last hash.
    Head,
    /// Check the whole log's hash chain; exits with 2 when it does not hold.
    Verify,
}

/// Flags of `kizuna call`.
#[derive(Debug, Clone, Args)]
pub struct CallArgs {
    /// gRPC endpoint of the server (`http://` is assumed when no scheme is given).
    #[arg(long, env = "KIZUNA_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// List every callable method instead of calling one.
    #[arg(long, conflicts_with_all = ["method", "request"])]
    pub list: bool,
    /// `Service/Method`, e.g. `LeadService/CaptureLead` or `EventLog/Head`.
    #[arg(required_unless_present = "list")]
    pub method: Option<String>,
    /// The request as proto3 JSON (field names as in the .proto); `-` reads
    /// it from stdin; empty means `{}`.
    #[arg(default_value = "{}")]
    pub request: String,
}

/// Flags of `kizuna events append`.
#[derive(Debug, Clone, Args)]
pub struct AppendArgs {
    /// Target stream, `{category}-{id}`, e.g. `lead-0190a1b2-…`.
    #[arg(long, required_unless_present = "stdin")]
    pub stream: Option<String>,
    /// Event type, dotted and past tense, e.g. `lead.captured`.
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "stdin")]
    pub event_type: Option<String>,
    /// Payload: JSON text, stored as given (UTF-8).
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub data: String,
    /// Expected stream version: any, no-stream, exists, or the last version N.
    #[arg(long, value_name = "any|no-stream|exists|N", default_value = "any")]
    pub expected: String,
    /// Customer the event is about (UUID).
    #[arg(long, value_name = "UUID")]
    pub customer: Option<String>,
    /// Event id (UUID), the idempotency key; a fresh UUIDv7 when absent.
    #[arg(long, value_name = "UUID")]
    pub id: Option<String>,
    /// Version of the payload schema.
    #[arg(long, default_value_t = 1)]
    pub schema_version: u32,
    /// Business time of the event (RFC 3339); the log's time when absent.
    #[arg(long, value_name = "RFC3339")]
    pub occurred_at: Option<String>,
    /// Read a batch for one stream from stdin instead:
    /// `{"stream": …, "expected_version"?: …, "events": [{"id"?, "type", "customer_id"?, "data"}]}`.
    #[arg(long, conflicts_with_all = ["stream", "event_type", "data", "expected", "customer", "id", "schema_version", "occurred_at"])]
    pub stdin: bool,
    /// Correlation id of every appended event.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// Causation id of every appended event.
    #[arg(long)]
    pub causation_id: Option<String>,
    /// Who appends, e.g. `user:alice`.
    #[arg(long)]
    pub actor: Option<String>,
}

/// Filters of `read --all` and `tail`.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only streams of this category (repeatable).
    #[arg(long = "category", value_name = "CATEGORY")]
    pub categories: Vec<String>,
    /// Only events of this type (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_types: Vec<String>,
    /// Only events about this customer (UUID).
    #[arg(long, value_name = "UUID")]
    pub customer: Option<String>,
}

/// Flags of `kizuna events read`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["stream", "all"])))]
pub struct ReadArgs {
    /// Read this stream.
    #[arg(long, conflicts_with_all = ["categories", "event_types", "customer"])]
    pub stream: Option<String>,
    /// Read the whole log, in position order.
    #[arg(long)]
    pub all: bool,
    /// First stream version (with --stream) or global position (with --all).
    #[arg(long, value_name = "N")]
    pub from: Option<u64>,
    /// Newest first (with --stream only).
    #[arg(long, conflicts_with = "all")]
    pub backward: bool,
    /// Most events to print; all when absent.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Which events, with --all.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Flags of `kizuna events tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Start at this global position (0: replay everything first); only new
    /// events when absent.
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
    /// Which events.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Parses a number of seconds (`10`, `2.5`) into a duration.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kizuna").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_has_the_documented_defaults() {
        let Command::Serve(args) = parse(&["serve"]).unwrap().command else {
            panic!("not serve");
        };
        // The environment of the test run may set the KIZUNA_ variables; only
        // check defaults when it does not.
        if std::env::var_os("KIZUNA_LISTEN").is_none() {
            assert_eq!(args.listen, "127.0.0.1:50051".parse().unwrap());
        }
        if std::env::var_os("KIZUNA_DURABILITY").is_none() {
            assert_eq!(args.durability, Durability::Fsync);
        }
        if std::env::var_os("KIZUNA_DRAIN_TIMEOUT").is_none() {
            assert_eq!(args.drain_timeout, Duration::from_secs(10));
        }
    }

    #[test]
    fn serve_parses_every_flag() {
        let Command::Serve(args) = parse(&[
            "serve",
            "--data-dir",
            "/tmp/k",
            "--listen",
            "127.0.0.1:0",
            "--durability",
            "none",
            "--drain-timeout",
            "2.5",
        ])
        .unwrap()
        .command
        else {
            panic!("not serve");
        };
        assert_eq!(args.data_dir, PathBuf::from("/tmp/k"));
        assert_eq!(args.listen.port(), 0);
        assert_eq!(args.durability, Durability::None);
        assert_eq!(args.drain_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn serve_rejects_bad_values() {
        assert!(parse(&["serve", "--durability", "sometimes"]).is_err());
        assert!(parse(&["serve", "--listen", "localhost"]).is_err());
        assert!(parse(&["serve", "--drain-timeout", "-1"]).is_err());
        assert!(parse(&["serve", "--drain-timeout", "soon"]).is_err());
    }

    #[test]
    fn append_needs_stream_and_type_unless_stdin() {
        assert!(parse(&["events", "append", "--stream", "lead-1"]).is_err());
        assert!(parse(&["events", "append", "--type", "lead.captured"]).is_err());
        let cli = parse(&["events", "append", "--stdin", "--actor", "user:a"]).unwrap();
        let Command::Events(EventsArgs {
            command: EventsCommand::Append(a),
            ..
        }) = cli.command
        else {
            panic!("not append");
        };
        assert!(a.stdin);
        assert_eq!(a.actor.as_deref(), Some("user:a"));
        assert!(parse(&["events", "append", "--stdin", "--stream", "lead-1"]).is_err());
    }

    #[test]
    fn append_flags_and_endpoint_anywhere() {
        let cli = parse(&[
            "events",
            "append",
            "--stream",
            "lead-1",
            "--type",
            "lead.captured",
            "--data",
            r#"{"a":1}"#,
            "--expected",
            "no-stream",
            "--endpoint",
            "http://127.0.0.1:1",
        ])
        .unwrap();
        let Command::Events(EventsArgs {
            endpoint,
            command: EventsCommand::Append(a),
        }) = cli.command
        else {
            panic!("not append");
        };
        assert_eq!(endpoint, "http://127.0.0.1:1");
        assert_eq!(a.stream.as_deref(), Some("lead-1"));
        assert_eq!(a.event_type.as_deref(), Some("lead.captured"));
        assert_eq!(a.data, r#"{"a":1}"#);
        assert_eq!(a.expected, "no-stream");
        assert_eq!(a.schema_version, 1);
    }

    #[test]
    fn read_needs_exactly_one_source() {
        assert!(parse(&["events", "read"]).is_err());
        assert!(parse(&["events", "read", "--all", "--stream", "lead-1"]).is_err());
        assert!(parse(&["events", "read", "--all", "--backward"]).is_err());
        let cli = parse(&[
            "events",
            "read",
            "--all",
            "--category",
            "lead",
            "--category",
            "ticket",
            "--type",
            "lead.captured",
            "--limit",
            "5",
        ])
        .unwrap();
        let Command::Events(EventsArgs {
            command: EventsCommand::Read(r),
            ..
        }) = cli.command
        else {
            panic!("not read");
        };
        assert!(r.all);
        assert_eq!(r.filter.categories, ["lead", "ticket"]);
        assert_eq!(r.filter.event_types, ["lead.captured"]);
        assert_eq!(r.limit, Some(5));
    }

    #[test]
    fn tail_defaults_to_now() {
        let cli = parse(&["events", "tail"]).unwrap();
        let Command::Events(EventsArgs {
            command: EventsCommand::Tail(t),
            ..
        }) = cli.command
        else {
            panic!("not tail");
        };
        assert_eq!(t.from, None);
    }
}
