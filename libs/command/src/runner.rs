//! The command loop: load, decide, append, and the retry and replay rules
//! around it (see the crate docs).

use crate::cache::{DEFAULT_STATE_CACHE_STREAMS, StateCache};
use crate::error::CommandError;
use crate::meta::CommandMeta;
use kizuna_domain::{Context, Decider, DerivedIds, DomainError, DomainEvent, Upcasters};
use kizuna_eventlog::{
    AppendResult, Clock, Direction, EventMetadata, EventStore, ExpectedVersion, ProposedEvent,
    RecordedEvent, StoreError, StreamAppend, Timestamp as LogTime,
};
use kizuna_proto::v1 as pb;
use prost_types::Timestamp;
use std::sync::Arc;
use uuid::Uuid;

/// How many times a command is decided in all when concurrent appends keep
/// moving its streams (without a caller's expected version).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// Events read per page while loading a stream.
const LOAD_PAGE: usize = 512;

/// Most events one command may append; the first-result lookup stops here.
const MAX_EVENTS_PER_COMMAND: u32 = 1000;

/// The id of the `index`-th event of command `command_id`: UUIDv5 with the
/// command id as namespace and the decimal index as name.
pub fn event_id(command_id: Uuid, index: u32) -> Uuid {
    Uuid::new_v5(&command_id, index.to_string().as_bytes())
}

/// An aggregate folded from its stream.
#[derive(Debug, Clone)]
pub struct Loaded<D: Decider> {
    /// The stream.
    pub stream: String,
    /// The folded state (`Default` when the stream does not exist).
    pub state: D::State,
    /// The stream's last version; `None` when it does not exist.
    pub version: Option<u64>,
}

impl<D: Decider> Loaded<D> {
    /// The expectation that the stream is still as loaded.
    pub fn expected(&self) -> ExpectedVersion {
        match self.version {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(v),
        }
    }

    /// Whether the stream exists.
    pub fn exists(&self) -> bool {
        self.version.is_some()
    }
}

/// What a command decided to append: events per stream, each with the
/// expectation it was decided on.
#[derive(Debug, Default)]
pub struct Plan {
    appends: Vec<StreamPlan>,
}

#[derive(Debug)]
struct StreamPlan {
    stream: String,
    expected: ExpectedVersion,
    customer_id: Option<Uuid>,
    events: Vec<(&'static str, u32, Vec<u8>)>,
}

impl Plan {
    /// Nothing to append yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `events` to `stream` if it is still at `expected`, tagging them
    /// with `customer_id` for the per-customer index. Empty `events` add nothing.
    #[must_use]
    pub fn append<E: DomainEvent>(
        mut self,
        stream: impl Into<String>,
        expected: ExpectedVersion,
        customer_id: Option<Uuid>,
        events: &[E],
    ) -> Self {
        if !events.is_empty() {
            self.appends.push(StreamPlan {
                stream: stream.into(),
                expected,
                customer_id,
                events: events
                    .iter()
                    .map(|e| (e.event_type(), e.schema_version(), e.encode_payload()))
                    .collect(),
            });
        }
        self
    }

    /// Appends `events` to the stream `loaded` came from, expecting it unchanged.
    #[must_use]
    pub fn append_to<D: Decider>(
        self,
        loaded: &Loaded<D>,
        customer_id: Option<Uuid>,
        events: &[D::Event],
    ) -> Self {
        self.append(
            loaded.stream.clone(),
            loaded.expected(),
            customer_id,
            events,
        )
    }

    /// Whether there is nothing to append.
    pub fn is_empty(&self) -> bool {
        self.appends.is_empty()
    }
}

/// A command that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Where each stream's events landed, in append order (empty: nothing changed).
    pub streams: Vec<AppendResult>,
    /// Whether this is the first result of an earlier run of the same command id.
    pub replayed: bool,
    /// The event types appended, in order.
    pub event_types: Vec<String>,
}

impl Committed {
    /// The reply's `kizuna.v1.CommandResult`.
    pub fn to_proto(&self) -> pb::CommandResult {
        pb::CommandResult {
            streams: self
                .streams
                .iter()
                .map(|r| pb::AppendedStream {
                    stream: r.stream.clone(),
                    first_version: r.first_version,
                    last_version: r.last_version,
                    first_position: r.first_position,
                    last_position: r.last_position,
                })
                .collect(),
            replayed: self.replayed,
            event_types: self.event_types.clone(),
        }
    }

    /// The id of the stream this command appended to in `category`
    /// (`{category}-{id}`), if any: what a creating command created, also
    /// when it is a replay whose retry named another id.
    pub fn created_id(&self, category: &str) -> Option<Uuid> {
        self.streams.iter().find_map(|s| {
            s.stream
                .strip_prefix(category)
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|id| Uuid::try_parse(id).ok())
        })
    }

    /// Global position of the last event appended, if any.
    pub fn last_position(&self) -> Option<u64> {
        self.streams.iter().map(|r| r.last_position).max()
    }
}

/// How a command decides, for [`CommandRunner::run`]: load through the
/// attempt, decide, return the plan. A trait rather than a closure because a
/// tonic handler's future must be `Send`, which an async closure cannot yet
/// promise generically.
pub trait Decision: Send + Sync {
    /// Loads, decides and returns what to append.
    fn plan(
        &self,
        attempt: &mut Attempt<'_>,
    ) -> impl std::future::Future<Output = Result<Plan, CommandError>> + Send;
}

struct OneStream<'c, D: Decider> {
    stream: &'c str,
    customer_id: Option<Uuid>,
    command: &'c D::Command,
    /// Decide the first attempt on the empty state without reading.
    assume_new: bool,
}

impl<D: Decider> Decision for OneStream<'_, D> {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        if self.assume_new && attempt.number() == 1 {
            let assumed = attempt.assume_new::<D>(self.stream);
            // Only a decision to append can be trusted to the NoStream
            // check; "nothing to do" or a refusal may be an artefact of the
            // assumed empty state, so those are decided on the real one.
            if let Ok(events) = attempt.decide(&assumed, self.command)
                && !events.is_empty()
            {
                return Ok(Plan::new().append_to(&assumed, self.customer_id, &events));
            }
            attempt.restart();
        }
        let loaded = attempt.load::<D>(self.stream).await?;
        let events = attempt.decide(&loaded, self.command)?;
        Ok(Plan::new().append_to(&loaded, self.customer_id, &events))
    }
}

/// One try at a command: loads streams and decides, with the command's time
/// and derived ids. Each attempt starts the id sequence afresh, so every
/// attempt (and every retry by the caller) creates the same new ids.
pub struct Attempt<'r> {
    runner: &'r CommandRunner,
    now: Timestamp,
    command_id: Uuid,
    ids: DerivedIds,
    number: u32,
    primary: Option<(String, Option<u64>)>,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("now", &self.now)
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl Attempt<'_> {
    /// Loads and folds `stream`. The first stream an attempt loads is the
    /// command's primary stream, the one the caller's `expected_version` is about.
    pub async fn load<D: Decider>(&mut self, stream: &str) -> Result<Loaded<D>, CommandError> {
        let loaded = self.runner.load::<D>(stream).await?;
        if self.primary.is_none() {
            self.primary = Some((stream.to_owned(), loaded.version));
        }
        Ok(loaded)
    }

    /// The stream as if it did not exist, without reading it. The plan's
    /// `NoStream` expectation (from [`Loaded::expected`]) makes the log refuse
    /// the append if it does exist, and the runner then loads and decides
    /// again: a read saved for every command that creates a stream.
    pub fn assume_new<D: Decider>(&mut self, stream: &str) -> Loaded<D> {
        if self.primary.is_none() {
            self.primary = Some((stream.to_owned(), None));
        }
        Loaded {
            stream: stream.to_owned(),
            state: D::State::default(),
            version: None,
        }
    }

    /// Forgets what this attempt loaded and the ids it handed out, so that
    /// deciding again within the attempt gives the same ids as a fresh one.
    fn restart(&mut self) {
        self.ids = DerivedIds::new(self.command_id);
        self.primary = None;
    }

    /// The decider context: the command's time and its id source.
    pub fn context(&mut self) -> Context<'_> {
        Context {
            now: self.now,
            ids: &mut self.ids,
        }
    }

    /// Runs `D::decide` on `loaded` with this attempt's context.
    pub fn decide<D: Decider>(
        &mut self,
        loaded: &Loaded<D>,
        command: &D::Command,
    ) -> Result<Vec<D::Event>, DomainError> {
        D::decide(&loaded.state, command, &mut self.context())
    }

    /// The command's business time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// 1 for the first attempt, 2 after one conflict, …
    pub fn number(&self) -> u32 {
        self.number
    }
}

/// Runs commands against one log. Cheap to clone.
#[derive(Clone)]
pub struct CommandRunner {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    upcasters: Arc<Upcasters>,
    max_attempts: u32,
    states: StateCache,
}

impl std::fmt::Debug for CommandRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandRunner")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// A log timestamp as a protobuf timestamp.
pub fn proto_time(t: LogTime) -> Timestamp {
    let (seconds, nanos) = t.to_seconds_nanos();
    Timestamp { seconds, nanos }
}

fn to_log_time(t: &Timestamp) -> Result<LogTime, CommandError> {
    LogTime::from_seconds_nanos(t.seconds, t.nanos).ok_or_else(|| {
        CommandError::Domain(DomainError::invalid(
            "command.occurred_at",
            "is out of the representable range",
        ))
    })
}

impl CommandRunner {
    /// A runner over `store`, taking "now" from `clock` when a command gives
    /// no business time, reading old payloads through `upcasters`.
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>, upcasters: Upcasters) -> Self {
        Self {
            store,
            clock,
            upcasters: Arc::new(upcasters),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            states: StateCache::new(DEFAULT_STATE_CACHE_STREAMS),
        }
    }

    /// The same runner keeping the folded state of at most `streams` recently
    /// used streams (0: none), so that loading one it has seen reads only
    /// the events appended since; [`DEFAULT_STATE_CACHE_STREAMS`] by default.
    /// The cache is shared with the runner's clones.
    #[must_use]
    pub fn with_state_cache(mut self, streams: usize) -> Self {
        self.states = StateCache::new(streams);
        self
    }

    /// The same runner deciding at most `attempts` times per command (>= 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The log.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The upcaster registry.
    pub fn upcasters(&self) -> &Upcasters {
        &self.upcasters
    }

    /// "Now" on the runner's clock, as a protobuf timestamp.
    pub fn now(&self) -> Timestamp {
        proto_time(self.clock.now())
    }

    /// `e` as an event of `E`'s aggregate, read through the upcasters; `None`
    /// when its type is not one of `E`'s (e.g. another aggregate's event in
    /// the same command or category).
    pub fn try_decode<E: DomainEvent>(&self, e: &RecordedEvent) -> Result<Option<E>, CommandError> {
        E::decode(&e.event_type, e.schema_version, &e.payload, &self.upcasters).map_err(|source| {
            CommandError::Unreadable {
                stream: e.stream.clone(),
                position: e.global_position,
                source,
            }
        })
    }

    /// `e` as an event of `E`'s aggregate; a type `E` does not know is
    /// [`CommandError::UnknownEventType`] (a stream holds only its
    /// aggregate's events).
    pub fn decode<E: DomainEvent>(&self, e: &RecordedEvent) -> Result<E, CommandError> {
        self.try_decode(e)?
            .ok_or_else(|| CommandError::UnknownEventType {
                stream: e.stream.clone(),
                position: e.global_position,
                event_type: e.event_type.clone(),
            })
    }

    /// The last event of `stream` as an event of `E`'s aggregate, with its
    /// stream version; `None` when the stream is empty or missing. One read,
    /// however long the stream: for streams whose last event is the state
    /// (earning rules, checkpoints).
    pub async fn last_event<E: DomainEvent>(
        &self,
        stream: &str,
    ) -> Result<Option<(E, u64)>, CommandError> {
        let slice = self
            .store
            .read_stream(stream, Direction::Backward, None, 1)
            .await?;
        slice
            .events
            .first()
            .map(|e| Ok((self.decode(e)?, e.stream_version)))
            .transpose()
    }

    /// The events of `E`'s aggregate among the first `count` events the
    /// command `command_id` appended, read back by their derived ids, in
    /// order: what a retried command answers from. Stops at the first id not
    /// in the log.
    pub async fn command_events<E: DomainEvent>(
        &self,
        command_id: Uuid,
        count: usize,
    ) -> Result<Vec<E>, CommandError> {
        let mut events = Vec::new();
        for index in 0..count {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let Some(recorded) = self.store.read_event(event_id(command_id, index)).await? else {
                break;
            };
            events.extend(self.try_decode(&recorded)?);
        }
        Ok(events)
    }

    /// Reads `stream` from the start and folds it with `D`.
    pub async fn load<D: Decider>(&self, stream: &str) -> Result<Loaded<D>, CommandError> {
        let (mut state, mut version) = match self.states.get::<D::State>(stream) {
            Some((state, version)) => (state, Some(version)),
            None => (D::State::default(), None),
        };
        let cached = version;
        let mut from = version.map_or(0, |v| v + 1);
        loop {
            let slice = self
                .store
                .read_stream(stream, Direction::Forward, Some(from), LOAD_PAGE)
                .await?;
            let page = slice.events.len();
            for e in slice.events {
                let event: D::Event = self.decode(&e)?;
                state = D::evolve(state, &event);
                version = Some(e.stream_version);
                from = e.stream_version + 1;
            }
            if page < LOAD_PAGE || slice.last_version.is_none_or(|last| from > last) {
                if let Some(v) = version
                    && version != cached
                {
                    self.states.put(stream, &state, v);
                }
                return Ok(Loaded {
                    stream: stream.to_owned(),
                    state,
                    version,
                });
            }
        }
    }

    /// Runs a command on one stream: load `stream`, decide `command`, append.
    pub async fn execute<D: Decider>(
        &self,
        meta: &CommandMeta,
        stream: &str,
        customer_id: Option<Uuid>,
        command: &D::Command,
    ) -> Result<Committed, CommandError> {
        self.one_stream::<D>(meta, stream, customer_id, command, false)
            .await
    }

    /// [`CommandRunner::execute`] for a command that normally creates its
    /// stream (capture a lead, open a ticket): the first attempt decides on
    /// the empty state without reading the stream, appending with a
    /// `NoStream` expectation. If the stream exists after all (a retry, a
    /// caller-chosen id that is taken), the log refuses and the command is
    /// loaded and decided again like any other, so the outcome is the same
    /// as `execute`'s, one read cheaper in the common case.
    pub async fn execute_new<D: Decider>(
        &self,
        meta: &CommandMeta,
        stream: &str,
        customer_id: Option<Uuid>,
        command: &D::Command,
    ) -> Result<Committed, CommandError> {
        self.one_stream::<D>(meta, stream, customer_id, command, true)
            .await
    }

    async fn one_stream<D: Decider>(
        &self,
        meta: &CommandMeta,
        stream: &str,
        customer_id: Option<Uuid>,
        command: &D::Command,
        assume_new: bool,
    ) -> Result<Committed, CommandError> {
        let decision = OneStream::<D> {
            stream,
            customer_id,
            command,
            assume_new,
        };
        self.run(meta, &decision).await
    }

    /// Runs a command: `decision` loads what it needs through the [`Attempt`]
    /// and returns what to append. It is asked again after a version conflict.
    pub async fn run<P: Decision>(
        &self,
        meta: &CommandMeta,
        decision: &P,
    ) -> Result<Committed, CommandError> {
        let now = match &meta.occurred_at {
            Some(t) => {
                to_log_time(t)?;
                *t
            }
            None => proto_time(self.clock.now()),
        };
        let mut number = 0;
        loop {
            number += 1;
            let mut attempt = Attempt {
                runner: self,
                now,
                command_id: meta.command_id,
                ids: DerivedIds::new(meta.command_id),
                number,
                primary: None,
            };
            let plan = match decision.plan(&mut attempt).await {
                Ok(plan) => plan,
                Err(e) => return self.first_result_or(meta, e).await,
            };
            if let (Some(expected), Some((stream, actual))) =
                (meta.expected_version, attempt.primary.take())
                && actual != Some(expected)
            {
                let conflict = StoreError::WrongExpectedVersion {
                    stream,
                    expected: ExpectedVersion::Exact(expected),
                    actual,
                };
                return self.first_result_or(meta, conflict.into()).await;
            }
            if plan.is_empty() {
                if let Some(first) = self.first_result(meta.command_id).await? {
                    return Ok(first);
                }
                return Ok(Committed {
                    streams: Vec::new(),
                    replayed: false,
                    event_types: Vec::new(),
                });
            }
            let (appends, event_types) = self.proposals(meta, &now, plan)?;
            let result = match <[StreamAppend; 1]>::try_from(appends) {
                Ok([a]) => self
                    .store
                    .append(&a.stream, a.expected, a.events)
                    .await
                    .map(|r| vec![r]),
                Err(appends) => self.store.append_multi(appends).await,
            };
            match result {
                Ok(streams) if streams.iter().all(|r| r.already_existed) => {
                    // Deciding again may have produced only a prefix of what
                    // the first run appended (the state moved on): the
                    // complete first result comes from the derived ids.
                    return match self.first_result(meta.command_id).await? {
                        Some(first) => Ok(first),
                        None => Ok(Committed {
                            streams,
                            replayed: true,
                            event_types,
                        }),
                    };
                }
                Ok(streams) => {
                    return Ok(Committed {
                        streams,
                        replayed: false,
                        event_types,
                    });
                }
                Err(StoreError::WrongExpectedVersion { .. })
                    if meta.expected_version.is_none() && number < self.max_attempts =>
                {
                    if let Some(first) = self.first_result(meta.command_id).await? {
                        return Ok(first);
                    }
                    tracing::debug!(attempt = number, "version conflict; deciding again");
                }
                Err(e) => return self.first_result_or(meta, e.into()).await,
            }
        }
    }

    /// The first result of `meta`'s command if it was already applied, else `error`.
    async fn first_result_or(
        &self,
        meta: &CommandMeta,
        error: CommandError,
    ) -> Result<Committed, CommandError> {
        // A bad request was never applied; do not spend a read on it.
        if matches!(
            error,
            CommandError::Domain(DomainError::InvalidArgument { .. })
        ) {
            return Err(error);
        }
        match self.first_result(meta.command_id).await? {
            Some(first) => Ok(first),
            None => Err(error),
        }
    }

    /// What the command with id `command_id` appended, if it was applied:
    /// its events are found by their derived ids.
    pub async fn first_result(&self, command_id: Uuid) -> Result<Option<Committed>, CommandError> {
        let mut streams: Vec<AppendResult> = Vec::new();
        let mut event_types = Vec::new();
        for index in 0..MAX_EVENTS_PER_COMMAND {
            let Some(e) = self.store.read_event(event_id(command_id, index)).await? else {
                break;
            };
            event_types.push(e.event_type.clone());
            match streams.last_mut() {
                Some(last) if last.stream == e.stream => {
                    last.last_version = e.stream_version;
                    last.last_position = e.global_position;
                }
                _ => streams.push(AppendResult {
                    stream: e.stream.clone(),
                    first_version: e.stream_version,
                    last_version: e.stream_version,
                    first_position: e.global_position,
                    last_position: e.global_position,
                    already_existed: true,
                }),
            }
        }
        Ok((!streams.is_empty()).then_some(Committed {
            streams,
            replayed: true,
            event_types,
        }))
    }

    fn proposals(
        &self,
        meta: &CommandMeta,
        now: &Timestamp,
        plan: Plan,
    ) -> Result<(Vec<StreamAppend>, Vec<String>), CommandError> {
        let occurred_at = to_log_time(now)?;
        let metadata = EventMetadata {
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.command_id.to_string(),
            actor: meta.actor.clone(),
            traceparent: meta.traceparent.clone(),
        };
        let mut index = 0u32;
        let mut types = Vec::new();
        let appends = plan
            .appends
            .into_iter()
            .map(|p| StreamAppend {
                stream: p.stream,
                expected: p.expected,
                events: p
                    .events
                    .into_iter()
                    .map(|(event_type, schema_version, payload)| {
                        let id = event_id(meta.command_id, index);
                        index += 1;
                        types.push(event_type.to_owned());
                        ProposedEvent {
                            event_id: id,
                            event_type: event_type.to_owned(),
                            schema_version,
                            customer_id: p.customer_id,
                            occurred_at: Some(occurred_at),
                            metadata: metadata.clone(),
                            payload: payload.into(),
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok((appends, types))
    }
}
