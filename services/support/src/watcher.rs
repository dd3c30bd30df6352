//! The SLA watcher: records `ticket.sla_breached` for every target that is
//! due and unmet.
//!
//! It derives what is due from the log alone. Each check first reads the
//! ticket category of the log from where the last check stopped up to the
//! current head (all history on the first check) into an in-memory schedule: for each ticket
//! with a pending target, the targets and their due times, folded by the
//! domain's own [`TicketSla`] so the watcher and the decider agree on what
//! "met" means. A ticket leaves the schedule once nothing is pending (met,
//! breached or closed). After a restart the schedule is rebuilt from history.
//!
//! A breach goes through the ticket's decider with a command id derived from
//! the ticket id and the target ([`breach_command_id`]): the decider refuses
//! a second breach and the same command id makes a repeat a replay, so each
//! target of each ticket is breached exactly once, across restarts and
//! watchers racing each other.

use kizuna_command::{CommandError, CommandMeta, CommandRunner};
use kizuna_domain::event::DomainEvent as _;
use kizuna_domain::ticket::{
    self, NO_SLA_TARGET, RecordSlaBreach, SLA_ALREADY_BREACHED, SLA_ALREADY_MET, SLA_NOT_DUE,
    TICKET_CLOSED, Ticket, TicketCommand, TicketEvent, TicketSla, breach_command_id,
};
use kizuna_domain::{DomainError, pb};
use kizuna_eventlog::names::stream_uuid;
use kizuna_eventlog::{EventFilter, RecordedEvent};
use prost_types::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use uuid::Uuid;

/// The actor recorded in the metadata of the watcher's breaches.
pub const WATCHER_ACTOR: &str = "svc:sla-watcher";

/// Events read per page while catching up.
const PAGE: usize = 256;

/// Refusals that mean the schedule was behind (another watcher, or the late
/// reply itself, already settled the target): nothing to do.
const SETTLED: [&str; 5] = [
    SLA_ALREADY_BREACHED,
    SLA_ALREADY_MET,
    SLA_NOT_DUE,
    NO_SLA_TARGET,
    TICKET_CLOSED,
];

fn ticket_filter() -> EventFilter {
    EventFilter {
        categories: vec![ticket::CATEGORY.to_owned()],
        ..EventFilter::default()
    }
}

/// A ticket with something pending.
#[derive(Debug, Default)]
struct Watched {
    customer_id: Option<Uuid>,
    sla: TicketSla,
}

#[derive(Default)]
struct Schedule {
    /// Every ticket event below this position is folded in.
    next_position: u64,
    tickets: HashMap<Uuid, Watched>,
}

impl Schedule {
    fn apply(&mut self, e: &RecordedEvent, upcasters: &kizuna_domain::Upcasters) {
        let Some(ticket_id) = stream_uuid(&e.stream, ticket::CATEGORY) else {
            tracing::warn!(stream = %e.stream, "SLA watcher: a ticket stream without a ticket id");
            return;
        };
        let event =
            match TicketEvent::decode(&e.event_type, e.schema_version, &e.payload, upcasters) {
                Ok(Some(event)) => event,
                Ok(None) => {
                    tracing::warn!(position = e.global_position, event_type = %e.event_type,
                    "SLA watcher: not a ticket event; skipped");
                    return;
                }
                Err(err) => {
                    tracing::error!(position = e.global_position, error = %err,
                    "SLA watcher: unreadable ticket event; skipped");
                    return;
                }
            };
        let watched = self.tickets.entry(ticket_id).or_default();
        if watched.customer_id.is_none() {
            watched.customer_id = e.customer_id;
        }
        watched.sla.apply(&event);
        if watched.sla.is_settled() {
            self.tickets.remove(&ticket_id);
        }
    }
}

/// Records missed SLA targets; see the module docs.
pub struct SlaWatcher {
    runner: CommandRunner,
    schedule: Arc<Mutex<Schedule>>,
}

impl std::fmt::Debug for SlaWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlaWatcher").finish_non_exhaustive()
    }
}

impl SlaWatcher {
    /// A watcher over `runner`'s log and clock, with an empty schedule: the
    /// first check reads the ticket history.
    pub fn new(runner: CommandRunner) -> Self {
        Self {
            runner,
            schedule: Arc::new(Mutex::new(Schedule::default())),
        }
    }

    /// Brings the schedule up to the log head read at the start, then
    /// records a breach for every pending target due at the clock's now.
    /// Returns how many breaches this call appended (a breach another
    /// watcher appended first is not counted).
    ///
    /// Every due target is tried even when one fails; the first failure is
    /// then returned.
    #[tracing::instrument(name = "SlaWatcher.check", skip_all)]
    pub async fn check_once(&self) -> Result<usize, CommandError> {
        let head = self.runner.store().head().await?.next_position;
        let mut schedule = self.schedule.lock().await;
        self.catch_up(&mut schedule, head).await?;
        let now = self.runner.now();
        let mut due: Vec<(Timestamp, Uuid, Option<Uuid>, pb::SlaTarget)> = schedule
            .tickets
            .iter()
            .flat_map(|(id, w)| {
                w.sla
                    .due(&now)
                    .into_iter()
                    .map(|(target, due_at)| (due_at, *id, w.customer_id, target))
            })
            .collect();
        // Oldest promise first, so a slow round records the worst misses first.
        due.sort_by_key(|(due_at, id, _, target)| {
            (kizuna_domain::time::unix_nanos(due_at), *id, *target as i32)
        });
        let mut appended = 0;
        let mut first_error = None;
        for (_, ticket_id, customer_id, target) in due {
            match self.breach(ticket_id, customer_id, target, now).await {
                Ok(true) => appended += 1,
                Ok(false) => {}
                Err(CommandError::Domain(DomainError::Rejected { reason, .. }))
                    if SETTLED.contains(&reason) =>
                {
                    tracing::debug!(%ticket_id, ?target, reason, "SLA target already settled");
                }
                Err(e) => {
                    tracing::warn!(%ticket_id, ?target, error = %e, "cannot record an SLA breach");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(appended),
        }
    }

    /// Appends the breach of `target`; `Ok(false)` when it was a replay.
    async fn breach(
        &self,
        ticket_id: Uuid,
        customer_id: Option<Uuid>,
        target: pb::SlaTarget,
        now: Timestamp,
    ) -> Result<bool, CommandError> {
        let mut meta = CommandMeta::new(breach_command_id(ticket_id, target));
        meta.actor = WATCHER_ACTOR.to_owned();
        meta.occurred_at = Some(now);
        let committed = self
            .runner
            .execute::<Ticket>(
                &meta,
                &ticket::stream(ticket_id),
                customer_id,
                &TicketCommand::RecordSlaBreach(RecordSlaBreach {
                    ticket_id,
                    target,
                    now,
                }),
            )
            .await?;
        if !committed.replayed && !committed.streams.is_empty() {
            tracing::info!(%ticket_id, ?target, "SLA breach recorded");
            return Ok(true);
        }
        Ok(false)
    }

    /// Folds every ticket event below `head` (and any committed since) into
    /// the schedule. Each event is read once: paging the filtered log from
    /// where the schedule stands, whose `next_position` also moves past the
    /// other categories' events.
    async fn catch_up(&self, s: &mut Schedule, head: u64) -> Result<(), CommandError> {
        let store = self.runner.store();
        while s.next_position < head {
            let page = store
                .read_all(s.next_position, &ticket_filter(), PAGE)
                .await?;
            for e in &page.events {
                s.apply(e, self.runner.upcasters());
            }
            if page.next_position <= s.next_position {
                break;
            }
            s.next_position = page.next_position;
        }
        Ok(())
    }

    /// Runs [`SlaWatcher::check_once`] every `interval` (at least 1 ms) in a
    /// task. Errors are logged and the next tick tries again (a log node
    /// restarting is just a few failed ticks); the task runs until aborted,
    /// which the server does at shutdown.
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match self.check_once().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(breaches = n, "SLA check recorded breaches"),
                    Err(e) => {
                        tracing::warn!(error = %e, "SLA check failed; trying again at the next tick");
                    }
                }
            }
        })
    }
}
