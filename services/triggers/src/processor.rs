//! The trigger processor: follows the whole log and targets customers into
//! campaigns when triggers fire.
//!
//! **Where it stands** is a checkpoint in the log itself
//! (`triggercheckpoint-{processor}`, `trigger.checkpoint_saved`), appended with
//! the stream's expected version, so a restart or a second server resumes
//! where the last one saved. It is written after a page of the log that
//! matched a trigger, or every [`CHECKPOINT_EVERY`] positions otherwise;
//! never because of its own checkpoint events alone, so saving cannot feed on
//! itself.
//!
//! **What it knows** is folded from the log on the first check: the trigger
//! definitions (category `trigger`) as of the checkpoint, and when each
//! customer's current spell without a purchase began: their last
//! `loyalty.purchase_recorded`, or their `loyalty.enrolled` for a member who
//! never bought (read from the start: a checkpoint does not hold it). From the checkpoint on it reads every event in order, so a
//! trigger fires for an event exactly when it was enabled at that event's
//! position: reprocessing decides the same way.
//!
//! **Firing** runs the campaign's own `Target` rule through the command
//! runner with the command id [`fire_command_id`]`(event, trigger)` and the
//! event's id as correlation id. Reprocessing (a restart, a checkpoint
//! behind, two processors) therefore finds the first result (`replayed`) and
//! never targets twice. Inactivity fires with the id derived from the event
//! that began the spell (the last purchase, or the enrolment): once per
//! spell, and again only after a new purchase starts a new one.
//!
//! **Failures**: a target the campaign refuses (completed, audience full,
//! not found) is logged and counted, never retried, and the processor moves
//! on. A log error stops the check, forgets what was folded, and the next
//! check starts again from the saved checkpoint.

use crate::schema;
use kizuna_command::proto_time;
use kizuna_command::{CommandError, CommandMeta, CommandRunner};
use kizuna_domain::campaign::{self, Campaign, CampaignCommand, TargetCustomers};
use kizuna_domain::event::{DomainEvent as _, EventMessage as _};
use kizuna_domain::trigger::{
    self, Trigger, TriggerCheckpointEvent, TriggerEvent, TriggerState, fire_command_id, holds,
    inactivity_due,
};
use kizuna_domain::{Decider as _, DomainError, pb};
use kizuna_eventlog::names::stream_uuid;
use kizuna_eventlog::{
    EventFilter, EventMetadata, ExpectedVersion, ProposedEvent, RecordedEvent, StoreError,
};
use prost_reflect::DynamicMessage;
use prost_types::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// The actor recorded in the metadata of the processor's commands and checkpoints.
pub const PROCESSOR_ACTOR: &str = "svc:trigger-processor";

/// Without matches, a checkpoint is saved at most once per this many positions.
pub const CHECKPOINT_EVERY: u64 = 256;

/// Events read per page.
const PAGE: usize = 256;

/// Namespace of checkpoint event ids: UUIDv5 of this and
/// `"{processor}/{next_position}"`, so two processors saving the same
/// position write one event.
const CHECKPOINT_NAMESPACE: Uuid = Uuid::from_u128(0x6b69_7a75_6e61_4000_8000_6368_6563_6b70);

/// What one [`TriggerProcessor::check_once`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessReport {
    /// Log events read past the checkpoint.
    pub events_read: u64,
    /// Targets issued that appended events.
    pub fired: u64,
    /// Targets that were already applied (a replay) or changed nothing (the
    /// customer was already in the audience).
    pub unchanged: u64,
    /// Targets the campaign refused (logged and skipped).
    pub refused: u64,
    /// Every event below this position has been processed.
    pub next_position: u64,
    /// Whether a checkpoint was saved.
    pub checkpoint_saved: bool,
}

/// Counters a running processor shares with the service's status RPC.
#[derive(Debug, Default)]
pub struct ProcessorStatus {
    processed_position: AtomicU64,
    fired: AtomicU64,
    refused: AtomicU64,
    running: AtomicBool,
}

impl ProcessorStatus {
    /// Every event below this position has been processed.
    pub fn processed_position(&self) -> u64 {
        self.processed_position.load(Ordering::Relaxed)
    }

    /// Targets that appended events since the processor started.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }

    /// Targets the campaign refused since the processor started.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether the processor's task is running.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

/// The last checkpoint of a processor, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The next position to read.
    pub next_position: u64,
    /// The checkpoint stream's version.
    pub version: u64,
    /// When it was saved.
    pub saved_at: Timestamp,
}

/// The newest checkpoint of `processor`, if one was saved.
pub async fn load_checkpoint(
    runner: &CommandRunner,
    processor: &str,
) -> Result<Option<Checkpoint>, CommandError> {
    let stream = trigger::checkpoint_stream(processor);
    let Some((TriggerCheckpointEvent::Saved(saved), version)) = runner.last_event(&stream).await?
    else {
        return Ok(None);
    };
    Ok(Some(Checkpoint {
        next_position: saved.next_position,
        version,
        saved_at: saved.saved_at.unwrap_or_default(),
    }))
}

/// The event that began a customer's current spell without a purchase:
/// their last purchase, or their enrolment if they never bought.
#[derive(Debug, Clone, Copy)]
struct SpellStart {
    event_id: Uuid,
    at: Timestamp,
}

/// What the processor folded from the log.
#[derive(Default)]
struct Followed {
    /// Every event below this has been processed.
    next_position: u64,
    /// The last saved checkpoint (version, position).
    saved: Option<(u64, u64)>,
    triggers: BTreeMap<Uuid, TriggerState>,
    spell_start: BTreeMap<Uuid, SpellStart>,
    /// (trigger, customer) -> the event that began the spell that already
    /// fired (or was refused): not tried again until a new purchase.
    spells_done: HashMap<(Uuid, Uuid), Uuid>,
}

impl Followed {
    /// Folds a trigger, enrolment or purchase event into what is known.
    fn learn(&mut self, e: &RecordedEvent, upcasters: &kizuna_domain::Upcasters) {
        if e.category() == trigger::CATEGORY {
            let Some(trigger_id) = stream_uuid(&e.stream, trigger::CATEGORY) else {
                tracing::warn!(stream = %e.stream, "trigger processor: a trigger stream without an id");
                return;
            };
            match TriggerEvent::decode(&e.event_type, e.schema_version, &e.payload, upcasters) {
                Ok(Some(event)) => {
                    let state = self.triggers.remove(&trigger_id).unwrap_or_default();
                    self.triggers
                        .insert(trigger_id, Trigger::evolve(state, &event));
                }
                Ok(None) => {}
                Err(err) => tracing::error!(position = e.global_position, error = %err,
                    "trigger processor: unreadable trigger event; skipped"),
            }
        } else if e.event_type == pb::LoyaltyPurchaseRecorded::EVENT_TYPE
            && let Some(customer_id) = e.customer_id
        {
            self.spell_start.insert(
                customer_id,
                SpellStart {
                    event_id: e.event_id,
                    at: proto_time(e.occurred_at),
                },
            );
        } else if e.event_type == pb::LoyaltyEnrolled::EVENT_TYPE
            && let Some(customer_id) = e.customer_id
        {
            // A member who never bought is inactive from enrolment; a
            // purchase, which can only follow it, replaces it.
            self.spell_start.entry(customer_id).or_insert(SpellStart {
                event_id: e.event_id,
                at: proto_time(e.occurred_at),
            });
        }
    }
}

/// Decodes an event's payload as its catalog message (upcast to the current
/// version first); `None` when it cannot be read.
fn payload_of(e: &RecordedEvent, upcasters: &kizuna_domain::Upcasters) -> Option<DynamicMessage> {
    let (version, message) = schema::event_schema(&e.event_type)?;
    let bytes = upcasters
        .upcast(&e.event_type, e.schema_version, *version, &e.payload)
        .map_err(|err| {
            tracing::warn!(position = e.global_position, error = %err,
                "trigger processor: cannot upcast the event; no trigger fires for it");
        })
        .ok()?;
    DynamicMessage::decode(message.clone(), bytes.as_ref())
        .map_err(|err| {
            tracing::warn!(position = e.global_position, error = %err,
                "trigger processor: cannot decode the event; no trigger fires for it");
        })
        .ok()
}

/// Whether every condition of `on_event` holds for `payload`.
fn matches(on_event: &pb::TriggerOnEvent, payload: &DynamicMessage) -> bool {
    on_event
        .conditions
        .iter()
        .all(|c| schema::observe(payload, &c.path).is_some_and(|observed| holds(c, &observed)))
}

/// How one target went.
enum Fired {
    Appended,
    Unchanged,
    Refused,
}

/// Follows the log and fires triggers; see the module docs.
pub struct TriggerProcessor {
    runner: CommandRunner,
    processor: String,
    status: Arc<ProcessorStatus>,
    followed: Option<Followed>,
}

impl std::fmt::Debug for TriggerProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerProcessor")
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}

impl TriggerProcessor {
    /// The `default` processor over `runner`'s log and clock. Nothing is read
    /// until the first check.
    pub fn new(runner: CommandRunner) -> Self {
        Self {
            runner,
            processor: trigger::DEFAULT_PROCESSOR.to_owned(),
            status: Arc::new(ProcessorStatus::default()),
            followed: None,
        }
    }

    /// The same processor under another name, with its own checkpoint stream
    /// (`triggercheckpoint-{name}`; lower-case letters, digits, `_` and `-`).
    /// Two processors with different names both fire every match; the
    /// derived command ids make the second one's targets replays.
    #[must_use]
    pub fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.processor);
        self
    }

    /// The counters this processor updates, for a status RPC.
    pub fn status(&self) -> Arc<ProcessorStatus> {
        self.status.clone()
    }

    /// Reads the log from where it stands up to the head read at the start,
    /// fires every on-event trigger that matches, saves the checkpoint, then
    /// fires every inactivity trigger due at the clock's now.
    #[tracing::instrument(name = "TriggerProcessor.check", skip_all, fields(processor = %self.processor))]
    pub async fn check_once(&mut self) -> Result<ProcessReport, CommandError> {
        let followed = match self.followed.take() {
            Some(f) => f,
            None => self.load().await?,
        };
        let mut report = ProcessReport::default();
        match self.process(followed, &mut report).await {
            Ok(followed) => {
                report.next_position = followed.next_position;
                self.status
                    .processed_position
                    .store(followed.next_position, Ordering::Relaxed);
                self.followed = Some(followed);
                Ok(report)
            }
            // What was folded is dropped: the next check starts from the
            // saved checkpoint.
            Err(e) => Err(e),
        }
    }

    /// Reads the checkpoint and folds triggers, enrolments and purchases up
    /// to it.
    async fn load(&self) -> Result<Followed, CommandError> {
        let checkpoint = load_checkpoint(&self.runner, &self.processor).await?;
        let until = checkpoint.map_or(0, |c| c.next_position);
        let mut followed = Followed {
            next_position: until,
            saved: checkpoint.map(|c| (c.version, c.next_position)),
            ..Followed::default()
        };
        let filter = EventFilter {
            categories: vec![trigger::CATEGORY.to_owned(), "loyalty".to_owned()],
            ..EventFilter::default()
        };
        let mut from = 0;
        while from < until {
            let page = self.runner.store().read_all(from, &filter, PAGE).await?;
            for e in page.events.iter().filter(|e| e.global_position < until) {
                followed.learn(e, self.runner.upcasters());
            }
            if page.next_position <= from {
                break;
            }
            from = page.next_position;
        }
        Ok(followed)
    }

    async fn process(
        &self,
        mut f: Followed,
        report: &mut ProcessReport,
    ) -> Result<Followed, CommandError> {
        let store = self.runner.store();
        let head = store.head().await?.next_position;
        while f.next_position < head {
            let page = store
                .read_all(f.next_position, &EventFilter::all(), PAGE)
                .await?;
            if page.events.is_empty() {
                break;
            }
            let start = f.next_position;
            let mut matched = false;
            for e in page.events.iter().filter(|e| e.global_position < head) {
                report.events_read += 1;
                f.learn(e, self.runner.upcasters());
                matched |= self.fire_on_event(&f, e, report).await?;
                f.next_position = e.global_position + 1;
            }
            if f.next_position == start {
                break;
            }
            let since = f
                .next_position
                .saturating_sub(f.saved.map_or(0, |(_, p)| p));
            if (matched && since > 0) || since >= CHECKPOINT_EVERY {
                self.save_checkpoint(&mut f).await?;
                report.checkpoint_saved = true;
            }
        }
        self.fire_inactivity(&mut f, report).await?;
        Ok(f)
    }

    /// Fires the enabled on-event triggers `e` matches; whether any matched.
    async fn fire_on_event(
        &self,
        f: &Followed,
        e: &RecordedEvent,
        report: &mut ProcessReport,
    ) -> Result<bool, CommandError> {
        let Some(customer_id) = e.customer_id else {
            return Ok(false);
        };
        let mut payload = None;
        let mut matched = false;
        for (trigger_id, state) in &f.triggers {
            let Some(t) = state.trigger.as_ref().filter(|t| t.enabled) else {
                continue;
            };
            let Some(on_event) = t.on_event().filter(|o| o.event_type == e.event_type) else {
                continue;
            };
            if payload.is_none() {
                payload = Some(payload_of(e, self.runner.upcasters()));
            }
            let Some(Some(message)) = &payload else {
                continue;
            };
            if !matches(on_event, message) {
                continue;
            }
            matched = true;
            self.fire(*trigger_id, t.campaign_id, customer_id, e.event_id, report)
                .await?;
        }
        Ok(matched)
    }

    /// Fires every enabled inactivity trigger for every customer whose spell
    /// without a purchase is long enough, once per spell.
    async fn fire_inactivity(
        &self,
        f: &mut Followed,
        report: &mut ProcessReport,
    ) -> Result<(), CommandError> {
        let now = self.runner.now();
        let due: Vec<(Uuid, Uuid, Uuid, Uuid)> = f
            .triggers
            .iter()
            .filter_map(|(id, s)| s.trigger.as_ref().filter(|t| t.enabled).map(|t| (id, t)))
            .filter_map(|(id, t)| t.inactivity_days().map(|days| (*id, t.campaign_id, days)))
            .flat_map(|(trigger_id, campaign_id, days)| {
                f.spell_start
                    .iter()
                    .filter(move |(_, p)| inactivity_due(&p.at, days, &now))
                    .map(move |(customer, p)| (trigger_id, campaign_id, *customer, p.event_id))
            })
            .filter(|(trigger_id, _, customer, began)| {
                f.spells_done.get(&(*trigger_id, *customer)) != Some(began)
            })
            .collect();
        for (trigger_id, campaign_id, customer_id, began) in due {
            self.fire(trigger_id, campaign_id, customer_id, began, report)
                .await?;
            f.spells_done.insert((trigger_id, customer_id), began);
        }
        Ok(())
    }

    /// Targets `customer_id` into `campaign_id` for trigger `trigger_id`
    /// firing on `event_id`. Refusals are logged and counted; log errors
    /// are returned.
    async fn fire(
        &self,
        trigger_id: Uuid,
        campaign_id: Uuid,
        customer_id: Uuid,
        event_id: Uuid,
        report: &mut ProcessReport,
    ) -> Result<(), CommandError> {
        let mut meta = CommandMeta::new(fire_command_id(event_id, trigger_id));
        meta.actor = PROCESSOR_ACTOR.to_owned();
        meta.correlation_id = event_id.to_string();
        let command = CampaignCommand::Target(TargetCustomers {
            campaign_id,
            customer_ids: vec![customer_id],
        });
        let outcome = match self
            .runner
            .execute::<Campaign>(
                &meta,
                &campaign::stream(campaign_id),
                Some(customer_id),
                &command,
            )
            .await
        {
            Ok(c) if !c.replayed && !c.streams.is_empty() => Fired::Appended,
            Ok(_) => Fired::Unchanged,
            Err(CommandError::Domain(
                e @ (DomainError::Rejected { .. }
                | DomainError::NotFound { .. }
                | DomainError::InvalidArgument { .. }
                | DomainError::AlreadyExists { .. }),
            )) => {
                tracing::warn!(%trigger_id, %campaign_id, %customer_id, %event_id, error = %e,
                    "trigger fired but the campaign refused the target; skipped");
                Fired::Refused
            }
            Err(e) => return Err(e),
        };
        match outcome {
            Fired::Appended => {
                tracing::info!(%trigger_id, %campaign_id, %customer_id, %event_id, "trigger fired");
                report.fired += 1;
                self.status.fired.fetch_add(1, Ordering::Relaxed);
            }
            Fired::Unchanged => report.unchanged += 1,
            Fired::Refused => {
                report.refused += 1;
                self.status.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Appends a checkpoint at `f.next_position`, expecting the checkpoint
    /// stream where this processor last saw it. If another processor saved
    /// meanwhile, its checkpoint is adopted when it is as far, else ours is
    /// appended on top of it.
    async fn save_checkpoint(&self, f: &mut Followed) -> Result<(), CommandError> {
        let stream = trigger::checkpoint_stream(&self.processor);
        let position = f.next_position;
        for _ in 0..3 {
            let expected = f.saved.map_or(ExpectedVersion::NoStream, |(v, _)| {
                ExpectedVersion::Exact(v)
            });
            let event = TriggerCheckpointEvent::Saved(pb::TriggerCheckpointSaved {
                processor: self.processor.clone(),
                next_position: position,
                saved_at: Some(self.runner.now()),
            });
            let proposed = ProposedEvent {
                event_id: Uuid::new_v5(
                    &CHECKPOINT_NAMESPACE,
                    format!("{}/{position}", self.processor).as_bytes(),
                ),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                customer_id: None,
                occurred_at: None,
                metadata: EventMetadata {
                    actor: PROCESSOR_ACTOR.to_owned(),
                    ..EventMetadata::default()
                },
                payload: event.encode_payload().into(),
            };
            match self
                .runner
                .store()
                .append(&stream, expected, vec![proposed])
                .await
            {
                Ok(r) if !r.already_existed => {
                    f.saved = Some((r.last_version, position));
                    return Ok(());
                }
                Ok(_) | Err(StoreError::WrongExpectedVersion { .. }) => {
                    let Some(theirs) = load_checkpoint(&self.runner, &self.processor).await? else {
                        f.saved = None;
                        continue;
                    };
                    f.saved = Some((theirs.version, theirs.next_position));
                    if theirs.next_position >= position {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::debug!("trigger checkpoint kept moving; saving at a later page");
        Ok(())
    }

    /// Runs [`TriggerProcessor::check_once`] every `interval` (at least 1 ms)
    /// in a task. A failed check is logged and the next tick resumes from the
    /// checkpoint; the task runs until aborted, which the server does at
    /// shutdown.
    pub fn spawn(mut self, interval: Duration) -> tokio::task::JoinHandle<()> {
        self.status.running.store(true, Ordering::Relaxed);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match self.check_once().await {
                    Ok(r) if r.fired > 0 || r.refused > 0 => {
                        tracing::debug!(fired = r.fired, refused = r.refused, "trigger check");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "trigger check failed; resuming from the checkpoint at the next tick");
                    }
                }
            }
        })
    }
}
