//! `kizuna serve`: the event log on a gRPC port, with health and reflection.
//!
//! This is the one place where the process is wired together (store, gRPC
//! services, listener, shutdown), so that the binary and the black-box tests
//! run exactly the same server: tests call [`start`] and
//! [`RunningServer::shutdown`], the binary calls them around the wait for a
//! signal.
//!
//! Shutdown order matters for durability: stop accepting connections, end
//! subscriptions, let in-flight RPCs finish within the drain time, and only then
//! flush and sync the store, so that every acknowledged append is on disk when
//! the process exits.

use crate::cli::ServeArgs;
use crate::gate::{GatedStore, Phase};
use anyhow::Context as _;
use kizuna_command::CommandRunner;
use kizuna_domain::contact::Region;
use kizuna_eventlog::{Clock, Durability, EventStore, SledConfig, SledStore, SystemClock};
use kizuna_eventlog_grpc::{EventLogService, RemoteStore};
use kizuna_proto::v1::campaign_service_server::SERVICE_NAME as CAMPAIGN_SERVICE;
use kizuna_proto::v1::customer_service_server::SERVICE_NAME as CUSTOMER_SERVICE;
use kizuna_proto::v1::event_log_server::SERVICE_NAME as EVENT_LOG_SERVICE;
use kizuna_proto::v1::lead_service_server::SERVICE_NAME as LEAD_SERVICE;
use kizuna_proto::v1::loyalty_service_server::SERVICE_NAME as LOYALTY_SERVICE;
use kizuna_proto::v1::support_service_server::SERVICE_NAME as SUPPORT_SERVICE;
use kizuna_proto::v1::trigger_service_server::SERVICE_NAME as TRIGGER_SERVICE;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// How long in-flight RPCs get to finish after shutdown begins, unless told otherwise.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Default region for phone numbers written without a country code.
pub const DEFAULT_REGION: &str = "JP";

/// Default time between two SLA breach checks.
pub const DEFAULT_SLA_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Default time between two runs of the loyalty scheduler.
pub const DEFAULT_LOYALTY_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Default time between two reads of the log by the trigger processor.
pub const DEFAULT_TRIGGER_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Which services one process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// Everything in one process on the local log (the default).
    #[default]
    All,
    /// Only the event log (EventLog), for command roles in other processes.
    Log,
    /// Only LeadService, against the log at `--log-endpoint`.
    Lead,
    /// Only CustomerService, against the log at `--log-endpoint`.
    Customer,
    /// Only SupportService and its SLA breach watcher, against the log at `--log-endpoint`.
    Support,
    /// Only LoyaltyService and its scheduler (points expiry, tier review),
    /// against the log at `--log-endpoint`.
    Loyalty,
    /// Only CampaignService, TriggerService and the trigger processor,
    /// against the log at `--log-endpoint`.
    Campaign,
}

impl Role {
    /// Whether this role keeps the log itself (others reach it over gRPC).
    pub fn owns_log(self) -> bool {
        matches!(self, Self::All | Self::Log)
    }

    fn serves(self, role: Role) -> bool {
        self == Role::All || self == role
    }
}

/// What [`start`] serves, and where.
#[derive(Clone)]
pub struct ServeConfig {
    /// Directory of the event log (created when missing); unused by command roles.
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (see [`RunningServer::local_addr`]).
    pub listen: SocketAddr,
    /// When an append is acknowledged.
    pub durability: Durability,
    /// Which services to run.
    pub role: Role,
    /// The log node a command role appends to (required for the command
    /// roles; not allowed for all and log).
    pub log_endpoint: Option<String>,
    /// Region for phone numbers written without a country code.
    pub default_region: Region,
    /// Source of "now" for commands, `recorded_at` and SLA checks.
    pub clock: Arc<dyn Clock>,
    /// Time between two SLA breach checks.
    pub sla_check_interval: Duration,
    /// Time between two runs of the loyalty scheduler.
    pub loyalty_check_interval: Duration,
    /// Time between two reads of the log by the trigger processor.
    pub trigger_check_interval: Duration,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("durability", &self.durability)
            .field("role", &self.role)
            .field("log_endpoint", &self.log_endpoint)
            .field("default_region", &self.default_region)
            .field("sla_check_interval", &self.sla_check_interval)
            .field("loyalty_check_interval", &self.loyalty_check_interval)
            .field("trigger_check_interval", &self.trigger_check_interval)
            .finish_non_exhaustive()
    }
}

impl ServeConfig {
    /// Every service on `data_dir` on a free loopback port, with `fsync`
    /// durability, the system clock and the default region.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            durability: Durability::Fsync,
            role: Role::All,
            log_endpoint: None,
            default_region: DEFAULT_REGION
                .parse()
                .unwrap_or_else(|_| unreachable!("JP is a known region")),
            clock: Arc::new(SystemClock),
            sla_check_interval: DEFAULT_SLA_CHECK_INTERVAL,
            loyalty_check_interval: DEFAULT_LOYALTY_CHECK_INTERVAL,
            trigger_check_interval: DEFAULT_TRIGGER_CHECK_INTERVAL,
        }
    }
}

/// A server started by [`start`]. Call [`RunningServer::shutdown`] to stop it
/// cleanly; merely dropping it stops it too, but without waiting for in-flight
/// RPCs or flushing the log.
pub struct RunningServer {
    local_addr: SocketAddr,
    /// The local log, for roles that own it.
    store: Option<SledStore>,
    /// Background work (SLA watcher, duplicate index) stopped at shutdown.
    background: Vec<JoinHandle<()>>,
    served: Vec<&'static str>,
    health: HealthReporter,
    phase: watch::Sender<Phase>,
    stop_accepting: Option<oneshot::Sender<()>>,
    serve: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Opens the log in `config.data_dir`, binds `config.listen` and serves
/// `kizuna.v1.EventLog`, `grpc.health.v1.Health` and server reflection (v1 and
/// v1alpha) until [`RunningServer::shutdown`]. Returns once the port is bound,
/// so clients can connect right away.
pub async fn start(config: ServeConfig) -> anyhow::Result<RunningServer> {
    match (config.role.owns_log(), &config.log_endpoint) {
        (true, Some(_)) => anyhow::bail!(
            "--log-endpoint is only for the command roles (lead, customer, support, loyalty, campaign); role {:?} keeps the log itself",
            config.role
        ),
        (false, None) => anyhow::bail!(
            "role {:?} needs --log-endpoint: the URL of a `kizuna serve --role log` node",
            config.role
        ),
        _ => {}
    }
    if !config.role.owns_log() {
        let endpoint = config.log_endpoint.clone().unwrap_or_default();
        let remote = RemoteStore::connect(endpoint.clone())
            .await
            .with_context(|| format!("cannot reach the event log at {endpoint}"))?;
        return serve_services(None, Arc::new(remote), &config).await;
    }
    let store = SledStore::open(
        SledConfig::new(&config.data_dir)
            .durability(config.durability)
            .clock(config.clock.clone()),
    )
    .with_context(|| format!("cannot open the event log in {}", config.data_dir.display()))?;
    match serve_services(Some(store.clone()), Arc::new(store.clone()), &config).await {
        Ok(server) => Ok(server),
        Err(e) => {
            // Nothing was served: still leave the log closed cleanly.
            if let Err(close) = store.shutdown().await {
                tracing::error!(error = %close, "closing the event log failed");
            }
            Err(e)
        }
    }
}

async fn serve_services(
    local: Option<SledStore>,
    log: Arc<dyn EventStore>,
    config: &ServeConfig,
) -> anyhow::Result<RunningServer> {
    let (gated, phase) = GatedStore::new(log);
    let gated: Arc<dyn EventStore> = Arc::new(gated);
    let runner = CommandRunner::new(
        gated.clone(),
        config.clock.clone(),
        kizuna_domain::upcasters(),
    );
    let role = config.role;

    let (health, health_service) = tonic_health::server::health_reporter();
    let mut served = Vec::new();
    let mut background = Vec::new();
    let event_log = role.serves(Role::Log).then(|| {
        served.push(EVENT_LOG_SERVICE);
        EventLogService::new(gated.clone()).into_server()
    });
    let lead = role.serves(Role::Lead).then(|| {
        served.push(LEAD_SERVICE);
        let (service, index) = kizuna_lead::service_with_index_task(
            runner.clone(),
            kizuna_lead::LeadConfig {
                default_region: config.default_region,
            },
        );
        background.push(index);
        service
    });
    let customer = role.serves(Role::Customer).then(|| {
        served.push(CUSTOMER_SERVICE);
        kizuna_customer::service(
            runner.clone(),
            kizuna_customer::CustomerConfig {
                default_region: config.default_region,
            },
        )
    });
    let support = role.serves(Role::Support).then(|| {
        served.push(SUPPORT_SERVICE);
        let (service, watcher) = kizuna_support::service_with_watcher(
            runner.clone(),
            kizuna_support::SupportConfig {
                sla_check_interval: config.sla_check_interval,
            },
        );
        background.push(watcher);
        service
    });
    let loyalty = role.serves(Role::Loyalty).then(|| {
        served.push(LOYALTY_SERVICE);
        let (service, scheduler) = kizuna_loyalty::service_with_scheduler(
            runner.clone(),
            kizuna_loyalty::LoyaltyConfig {
                check_interval: config.loyalty_check_interval,
            },
        );
        background.push(scheduler);
        service
    });
    let (campaign, triggers) = if role.serves(Role::Campaign) {
        served.push(CAMPAIGN_SERVICE);
        served.push(TRIGGER_SERVICE);
        let (triggers, processor) = kizuna_triggers::service_with_processor(
            runner.clone(),
            kizuna_triggers::TriggerConfig {
                check_interval: config.trigger_check_interval,
            },
        );
        background.push(processor);
        (
            Some(kizuna_campaign::service(runner.clone())),
            Some(triggers),
        )
    } else {
        (None, None)
    };
    for service in served.iter().chain(std::iter::once(&"")) {
        health
            .set_service_status(*service, ServingStatus::Serving)
            .await;
    }

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kizuna_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .context("cannot build the reflection service (v1)")?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("cannot build the reflection service (v1alpha)")?;

    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local_addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

    let router = tonic::transport::Server::builder()
        .add_optional_service(event_log)
        .add_optional_service(lead)
        .add_optional_service(customer)
        .add_optional_service(support)
        .add_optional_service(loyalty)
        .add_optional_service(campaign)
        .add_optional_service(triggers)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let (stop_accepting, stopped) = oneshot::channel::<()>();
    let serve = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        // A dropped sender (RunningServer dropped) stops the server too.
        let _ = stopped.await;
    }));
    tracing::info!(address = %local_addr, "listening on {local_addr}");
    Ok(RunningServer {
        local_addr,
        store: local,
        background,
        served,
        health,
        phase,
        stop_accepting: Some(stop_accepting),
        serve,
    })
}

impl RunningServer {
    /// The address the server is bound to (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL clients connect to, e.g. `http://127.0.0.1:50051`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops gracefully, giving in-flight RPCs [`DEFAULT_DRAIN_TIMEOUT`]; see
    /// [`RunningServer::shutdown_within`].
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown_within(DEFAULT_DRAIN_TIMEOUT).await
    }

    /// Stops gracefully: reports NOT_SERVING, stops accepting connections, ends
    /// open subscriptions with UNAVAILABLE, waits up to `drain` for in-flight
    /// RPCs, then fails whatever is still running and flushes and syncs the log.
    /// Every append acknowledged before this returns `Ok` is durable.
    pub async fn shutdown_within(mut self, drain: Duration) -> anyhow::Result<()> {
        tracing::info!(drain_timeout = ?drain, "shutting down");
        for service in self.served.iter().chain(std::iter::once(&"")) {
            self.health
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
        if let Some(stop) = self.stop_accepting.take() {
            let _ = stop.send(());
        }
        self.phase.send_replace(Phase::Draining);

        let served = match tokio::time::timeout(drain, &mut self.serve).await {
            Ok(Ok(result)) => result.context("the gRPC server failed"),
            Ok(Err(join)) => Err(anyhow::Error::new(join).context("the gRPC server task failed")),
            Err(_) => {
                tracing::warn!(
                    drain_timeout = ?drain,
                    "RPCs still running after the drain time; failing them"
                );
                self.serve.abort();
                Ok(())
            }
        };
        // From here on the store answers nothing but UNAVAILABLE, so leftover
        // connections cannot write after the final sync below.
        self.phase.send_replace(Phase::Closed);
        // Background tasks hold the store: stop them and wait until they are
        // gone, so that closing the log really releases its directory.
        for task in &self.background {
            task.abort();
        }
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        let closed = match &self.store {
            Some(store) => store.shutdown().await.context("cannot flush the event log"),
            None => Ok(()),
        };
        match (&closed, self.store.is_some()) {
            (Ok(()), true) => tracing::info!("event log flushed; server stopped"),
            (Ok(()), false) => tracing::info!("server stopped"),
            (Err(e), _) => tracing::error!(error = %e, "event log not flushed cleanly"),
        }
        served.and(closed)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Stop serving even when shutdown() was not called; a no-op after it.
        if let Some(stop) = self.stop_accepting.take() {
            let _ = stop.send(());
        }
        self.phase.send_replace(Phase::Closed);
        for task in &self.background {
            task.abort();
        }
    }
}

/// Runs `kizuna serve`: starts the server, prints `kizuna listening on ADDR` on
/// stdout, and shuts down gracefully on SIGTERM or SIGINT.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Handlers are installed before the address is printed: a supervisor may
    // signal as soon as it reads it, and the default action would skip the
    // final flush.
    let signal = ShutdownSignal::install().context("cannot install signal handlers")?;
    let server = start(ServeConfig {
        listen: args.listen,
        durability: args.durability,
        role: args.role,
        log_endpoint: args.log_endpoint,
        default_region: args.default_region,
        sla_check_interval: args.sla_check_interval,
        loyalty_check_interval: args.loyalty_check_interval,
        trigger_check_interval: args.trigger_check_interval,
        ..ServeConfig::new(args.data_dir)
    })
    .await?;
    {
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the server; the address is logged too.
        let _ = writeln!(out, "kizuna listening on {}", server.local_addr());
        let _ = out.flush();
    }
    let name = signal.recv().await;
    tracing::info!(signal = name, "signal received");
    server.shutdown_within(args.drain_timeout).await
}

/// SIGTERM or SIGINT, whichever comes first.
struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    #[cfg(unix)]
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    async fn recv(self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
