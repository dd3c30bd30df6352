//! The loyalty scheduler: records what time alone decides, point expiry and
//! period-end tier reviews.
//!
//! It derives what is due from the log alone. Each check first reads the
//! `loyalty` category of the log from where the last check stopped up to the
//! current head (all history on the first check) into an in-memory
//! schedule: per account, the lots that still hold points with their expiry,
//! and the tier held with the time it was reached. After a restart the
//! schedule is rebuilt from history.
//!
//! Then, at the injected clock's now:
//!
//! - **Expiry.** Every account with a lot whose expiry has passed gets an
//!   `ExpirePoints { now }` command, whose id derives from the account and the
//!   due lots. The decider skips lots already expired and the append carries
//!   the account's expected version, so each lot's `loyalty.points_expired`
//!   is recorded exactly once, across restarts and with two schedulers
//!   racing.
//! - **Tier review.** The period is the UTC calendar month. For every account
//!   holding a tier, each month boundary B after the time the tier was
//!   reached and at or before now is reviewed, oldest first, with
//!   `ReviewTier { now: B, rules }` and a command id derived from (customer,
//!   B): a downgrade (once the tier has not qualified for longer than the
//!   rules' grace) is decided as of the period end, and a repeat of the same
//!   boundary is a replay, so it happens exactly once. Upgrades need no
//!   scheduler: the purchase that crosses a threshold records them.

use kizuna_command::{CommandError, CommandMeta, CommandRunner};
use kizuna_domain::event::DomainEvent as _;
use kizuna_domain::loyalty::{
    EarningRuleSet, EarningRules, LOYALTY_CATEGORY, Loyalty, LoyaltyCommand, LoyaltyEvent,
    earning_rules_stream, loyalty_stream, utc_month,
};
use kizuna_domain::pb;
use kizuna_domain::time::unix_nanos;
use kizuna_eventlog::names::stream_uuid;
use kizuna_eventlog::{EventFilter, RecordedEvent};
use prost_types::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// The actor recorded in the metadata of the scheduler's commands.
pub const SCHEDULER_ACTOR: &str = "svc:loyalty-scheduler";

/// The namespace of the scheduler's command ids (UUIDv5).
pub const SCHEDULER_NAMESPACE: Uuid = Uuid::from_u128(0x6b69_7a75_6e61_4000_8000_0000_0010_5c4e);

/// Events read per page while catching up.
const PAGE: usize = 256;

/// The command id of expiring `lots` (sorted) of `customer_id`'s account.
pub fn expiry_command_id(customer_id: Uuid, lots: &[Uuid]) -> Uuid {
    let mut name = format!("expire/{customer_id}");
    for lot in lots {
        name.push('/');
        name.push_str(&lot.to_string());
    }
    Uuid::new_v5(&SCHEDULER_NAMESPACE, name.as_bytes())
}

/// The command id of the tier review of `customer_id`'s account at the
/// period end `boundary`.
pub fn tier_review_command_id(customer_id: Uuid, boundary: &Timestamp) -> Uuid {
    Uuid::new_v5(
        &SCHEDULER_NAMESPACE,
        format!("tier-review/{customer_id}/{}", boundary.seconds).as_bytes(),
    )
}

/// Seconds since the epoch of the first instant of `(year, month)`, UTC
/// (days-from-civil, proleptic Gregorian).
fn month_start(year: i64, month: u32) -> i64 {
    let m = i64::from(month);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400
}

/// The first month boundary strictly after `t`.
pub fn next_period_end(t: &Timestamp) -> Timestamp {
    let (year, month) = utc_month(t);
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    Timestamp {
        seconds: month_start(year, month),
        nanos: 0,
    }
}

/// What one check did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// `loyalty.points_expired` events this check appended (expiries another
    /// scheduler recorded first are not counted).
    pub lots_expired: usize,
    /// Tier reviews run (one per account and passed period end).
    pub tier_reviews: usize,
    /// `loyalty.tier_changed` events the reviews appended.
    pub tier_changes: usize,
}

/// An account as far as time is concerned.
#[derive(Debug, Default)]
struct Watched {
    /// Lots holding points: id -> (expiry, remaining).
    lots: HashMap<Uuid, (Timestamp, i64)>,
    /// The tier held; empty for none.
    tier: String,
    /// When it was reached.
    tier_since: Option<Timestamp>,
    /// The last period end reviewed by this scheduler.
    reviewed: Option<Timestamp>,
}

impl Watched {
    fn take(&mut self, taken: &[pb::LoyaltyLotPoints]) {
        for t in taken {
            if let Ok(id) = Uuid::parse_str(&t.lot_id)
                && let Some((_, remaining)) = self.lots.get_mut(&id)
            {
                *remaining -= t.points;
                if *remaining <= 0 {
                    self.lots.remove(&id);
                }
            }
        }
    }

    fn open(&mut self, lot_id: &str, points: i64, expires_at: Option<Timestamp>) {
        if points > 0
            && let Ok(id) = Uuid::parse_str(lot_id)
        {
            self.lots
                .insert(id, (expires_at.unwrap_or_default(), points));
        }
    }

    fn apply(&mut self, event: &LoyaltyEvent) {
        match event {
            LoyaltyEvent::PointsEarned(e) => self.open(&e.lot_id, e.points, e.expires_at),
            LoyaltyEvent::PointsAdjusted(e) => {
                if e.points > 0 {
                    self.open(&e.lot_id, e.points, e.expires_at);
                } else {
                    self.take(&e.taken);
                }
            }
            LoyaltyEvent::PointsRedeemed(e) => self.take(&e.taken),
            LoyaltyEvent::PointsClawedBack(e) => self.take(&e.taken),
            LoyaltyEvent::PointsExpired(e) => {
                if let Ok(id) = Uuid::parse_str(&e.lot_id) {
                    self.lots.remove(&id);
                }
            }
            LoyaltyEvent::TierChanged(e) => {
                self.tier = e.to_tier.clone();
                self.tier_since = e.changed_at;
            }
            LoyaltyEvent::Enrolled(_)
            | LoyaltyEvent::PurchaseRecorded(_)
            | LoyaltyEvent::PurchaseRefunded(_) => {}
        }
    }

    /// The next period end to review, if one has passed.
    fn next_review(&self, now: &Timestamp) -> Option<Timestamp> {
        if self.tier.is_empty() {
            return None;
        }
        let since = self.tier_since.unwrap_or_default();
        let after = match &self.reviewed {
            Some(r) if unix_nanos(r) > unix_nanos(&since) => *r,
            _ => since,
        };
        let next = next_period_end(&after);
        (unix_nanos(&next) <= unix_nanos(now)).then_some(next)
    }
}

/// Records point expiry and period-end tier reviews; see the module docs.
pub struct LoyaltyScheduler {
    runner: CommandRunner,
    /// Every loyalty event below this position is folded in.
    next_position: u64,
    accounts: BTreeMap<Uuid, Watched>,
}

impl std::fmt::Debug for LoyaltyScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoyaltyScheduler")
            .field("next_position", &self.next_position)
            .field("accounts", &self.accounts.len())
            .finish_non_exhaustive()
    }
}

fn loyalty_filter() -> EventFilter {
    EventFilter {
        categories: vec![LOYALTY_CATEGORY.to_owned()],
        ..EventFilter::default()
    }
}

impl LoyaltyScheduler {
    /// A scheduler over `runner`'s log and clock, with an empty schedule: the
    /// first check reads the loyalty history.
    pub fn new(runner: CommandRunner) -> Self {
        Self {
            runner,
            next_position: 0,
            accounts: BTreeMap::new(),
        }
    }

    /// Brings the schedule up to the log head, then expires every lot due at
    /// the clock's now and reviews every passed period end. Every due
    /// account is tried even when one fails; the first failure is then
    /// returned.
    #[tracing::instrument(name = "LoyaltyScheduler.check", skip_all)]
    pub async fn check_once(&mut self) -> Result<CheckReport, CommandError> {
        self.catch_up().await?;
        let now = self.runner.now();
        let mut report = CheckReport::default();
        let mut first_error: Option<CommandError> = None;

        let due: Vec<(Uuid, Vec<Uuid>)> = self
            .accounts
            .iter()
            .filter_map(|(customer, w)| {
                let mut lots: Vec<Uuid> = w
                    .lots
                    .iter()
                    .filter(|(_, (expires_at, _))| unix_nanos(expires_at) <= unix_nanos(&now))
                    .map(|(id, _)| *id)
                    .collect();
                lots.sort();
                (!lots.is_empty()).then_some((*customer, lots))
            })
            .collect();
        for (customer, lots) in due {
            match self.expire(customer, &lots, now).await {
                Ok(n) => report.lots_expired += n,
                Err(e) => {
                    tracing::warn!(%customer, error = %e, "cannot expire loyalty points");
                    first_error.get_or_insert(e);
                }
            }
        }

        let mut rules: Option<EarningRuleSet> = None;
        let holders: Vec<Uuid> = self
            .accounts
            .iter()
            .filter(|(_, w)| w.next_review(&now).is_some())
            .map(|(c, _)| *c)
            .collect();
        for customer in holders {
            let rules = match &rules {
                Some(r) => r.clone(),
                None => match self
                    .runner
                    .load::<EarningRules>(&earning_rules_stream())
                    .await
                {
                    Ok(loaded) => rules.insert(loaded.state).clone(),
                    Err(e) => {
                        first_error.get_or_insert(e);
                        break;
                    }
                },
            };
            if let Err(e) = self.review(customer, &rules, &now, &mut report).await {
                tracing::warn!(%customer, error = %e, "cannot review the loyalty tier");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Expires `lots` of `customer`; how many expiries were appended.
    async fn expire(
        &mut self,
        customer: Uuid,
        lots: &[Uuid],
        now: Timestamp,
    ) -> Result<usize, CommandError> {
        let mut meta = CommandMeta::new(expiry_command_id(customer, lots));
        meta.actor = SCHEDULER_ACTOR.to_owned();
        meta.occurred_at = Some(now);
        let committed = self
            .runner
            .execute::<Loyalty>(
                &meta,
                &loyalty_stream(customer),
                Some(customer),
                &LoyaltyCommand::ExpirePoints { now },
            )
            .await?;
        // Whatever happened, these lots are settled for this check; the
        // next catch-up reads the expiries from the log.
        if let Some(w) = self.accounts.get_mut(&customer) {
            for lot in lots {
                w.lots.remove(lot);
            }
        }
        if committed.replayed {
            return Ok(0);
        }
        let n = committed
            .event_types
            .iter()
            .filter(|t| t.as_str() == "loyalty.points_expired")
            .count();
        if n > 0 {
            tracing::info!(%customer, lots = n, "loyalty points expired");
        }
        Ok(n)
    }

    /// Reviews every passed period end of `customer`'s tier, oldest first,
    /// reading back after each one so that a downgrade is reviewed from its
    /// new tier at the next boundary.
    async fn review(
        &mut self,
        customer: Uuid,
        rules: &EarningRuleSet,
        now: &Timestamp,
        report: &mut CheckReport,
    ) -> Result<(), CommandError> {
        while let Some(boundary) = self
            .accounts
            .get(&customer)
            .and_then(|w| w.next_review(now))
        {
            let mut meta = CommandMeta::new(tier_review_command_id(customer, &boundary));
            meta.actor = SCHEDULER_ACTOR.to_owned();
            meta.occurred_at = Some(boundary);
            let committed = self
                .runner
                .execute::<Loyalty>(
                    &meta,
                    &loyalty_stream(customer),
                    Some(customer),
                    &LoyaltyCommand::ReviewTier {
                        now: boundary,
                        rules: rules.clone(),
                    },
                )
                .await?;
            report.tier_reviews += 1;
            if !committed.replayed && !committed.streams.is_empty() {
                report.tier_changes += 1;
                tracing::info!(%customer, boundary = boundary.seconds, "loyalty tier changed at period end");
            }
            if let Some(w) = self.accounts.get_mut(&customer) {
                w.reviewed = Some(boundary);
            }
            if !committed.streams.is_empty() {
                self.catch_up().await?;
            }
        }
        Ok(())
    }

    /// Folds every loyalty event below the current head into the schedule.
    /// Each event is read once: paging the filtered log from where the
    /// schedule stands.
    async fn catch_up(&mut self) -> Result<(), CommandError> {
        let head = self.runner.store().head().await?.next_position;
        while self.next_position < head {
            let page = self
                .runner
                .store()
                .read_all(self.next_position, &loyalty_filter(), PAGE)
                .await?;
            for e in &page.events {
                self.apply(e);
            }
            if page.next_position <= self.next_position {
                break;
            }
            self.next_position = page.next_position;
        }
        Ok(())
    }

    fn apply(&mut self, e: &RecordedEvent) {
        let Some(customer) = stream_uuid(&e.stream, LOYALTY_CATEGORY) else {
            tracing::warn!(stream = %e.stream, "loyalty scheduler: a loyalty stream without a customer id");
            return;
        };
        match LoyaltyEvent::decode(
            &e.event_type,
            e.schema_version,
            &e.payload,
            self.runner.upcasters(),
        ) {
            Ok(Some(event)) => self.accounts.entry(customer).or_default().apply(&event),
            Ok(None) => {
                tracing::warn!(position = e.global_position, event_type = %e.event_type,
                    "loyalty scheduler: not a loyalty event; skipped");
            }
            Err(err) => {
                tracing::error!(position = e.global_position, error = %err,
                    "loyalty scheduler: unreadable loyalty event; skipped");
            }
        }
    }

    /// Runs [`LoyaltyScheduler::check_once`] every `interval` (at least 1 ms)
    /// in a task. Errors are logged and the next tick tries again; the task
    /// runs until aborted, which the server does at shutdown.
    pub fn spawn(mut self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match self.check_once().await {
                    Ok(report) if report == CheckReport::default() => {}
                    Ok(report) => tracing::debug!(?report, "loyalty check"),
                    Err(e) => {
                        tracing::warn!(error = %e, "loyalty check failed; trying again at the next tick");
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kizuna_domain::time::at_seconds;

    #[test]
    fn period_ends_are_utc_month_starts() {
        // 2026-01-01T00:00:00Z
        let jan = at_seconds(1_767_225_600);
        assert_eq!(next_period_end(&jan).seconds, 1_769_904_000); // 2026-02-01
        assert_eq!(
            next_period_end(&at_seconds(1_769_904_000 - 1)).seconds,
            1_769_904_000
        );
        // 2026-02-01 -> 2026-03-01 (28 days), 2025-12-31T23:59:59 -> 2026-01-01.
        assert_eq!(
            next_period_end(&at_seconds(1_769_904_000)).seconds,
            1_769_904_000 + 28 * 86_400
        );
        assert_eq!(
            next_period_end(&at_seconds(1_767_225_599)).seconds,
            1_767_225_600
        );
        // 2024 is a leap year: 2024-02-01 -> 2024-03-01 is 29 days.
        assert_eq!(month_start(2024, 3) - month_start(2024, 2), 29 * 86_400);
        assert_eq!(month_start(1970, 1), 0);
    }

    #[test]
    fn command_ids_depend_on_the_account_and_the_subject() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let lot = [Uuid::from_u128(9)];
        assert_eq!(expiry_command_id(a, &lot), expiry_command_id(a, &lot));
        assert_ne!(expiry_command_id(a, &lot), expiry_command_id(b, &lot));
        assert_ne!(expiry_command_id(a, &lot), expiry_command_id(a, &[]));
        let t = at_seconds(1_767_225_600);
        assert_eq!(tier_review_command_id(a, &t), tier_review_command_id(a, &t));
        assert_ne!(
            tier_review_command_id(a, &t),
            tier_review_command_id(a, &at_seconds(1_769_904_000))
        );
    }
}
