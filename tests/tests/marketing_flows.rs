//! Loyalty and campaign flows against one in-process `kizuna serve`, as
//! client teams see them; plus the time-driven ones (points expiry, the
//! tier review at period end) through the assembled server's background
//! scheduler, with the clock injected.

use kizuna::{RunningServer, ServeConfig};
use kizuna_eventlog::{Durability, ManualClock, Timestamp};
use kizuna_proto::v1 as pb;
use kizuna_tests::marketing::{
    campaign_race, loyalty_journey, new_member, purchase, register_reachable_customer,
    standard_rules, targeting_events, trigger_targets_big_spender, wait_for_trigger_processor,
};
use kizuna_tests::{Clients, Endpoints, command, head, stream_events};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Upper bound of any single wait; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(30);
const DAY: i64 = 24 * 60 * 60;
/// 2026-01-01T00:00:00Z.
const NEW_YEAR: i64 = 1_767_225_600;

async fn start_on(data: &Path, clock: &ManualClock) -> RunningServer {
    kizuna::start(ServeConfig {
        durability: Durability::None,
        clock: Arc::new(clock.clone()),
        loyalty_check_interval: Duration::from_millis(20),
        trigger_check_interval: Duration::from_millis(20),
        ..ServeConfig::new(data)
    })
    .await
    .expect("start kizuna")
}

fn clock_at(unix_seconds: i64) -> ManualClock {
    ManualClock::new(Timestamp::from_unix_nanos(unix_seconds * 1_000_000_000))
}

fn at(clock: &ManualClock) -> prost_types::Timestamp {
    use kizuna_eventlog::Clock as _;
    let (seconds, nanos) = clock.now().to_seconds_nanos();
    prost_types::Timestamp { seconds, nanos }
}

async fn connect(server: &RunningServer) -> Clients {
    Clients::connect(&Endpoints::single(&server.endpoint()))
        .await
        .expect("connect")
}

#[tokio::test]
async fn loyalty_campaigns_and_triggers_pass_against_one_process_and_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let clock = clock_at(NEW_YEAR);
    let server = start_on(&data, &clock).await;
    let mut c = connect(&server).await;

    let customer = register_reachable_customer(&mut c, "hanako@example.jp")
        .await
        .expect("register");
    loyalty_journey(&mut c, &customer).await.expect("loyalty");
    campaign_race(&mut c, &customer, at(&clock))
        .await
        .expect("campaign race");
    let upsell = trigger_targets_big_spender(&mut c, &customer, at(&clock))
        .await
        .expect("trigger");
    let before_restart = head(&mut c.log).await.expect("head");
    server.shutdown().await.expect("shutdown");

    // A restarted processor reads on from its checkpoint (or before it):
    // the purchase that fired is never targeted twice.
    let server = start_on(&data, &clock).await;
    let mut c = connect(&server).await;
    wait_for_trigger_processor(&mut c, before_restart)
        .await
        .expect("processor caught up");
    assert_eq!(targeting_events(&mut c, &upsell).await.expect("read"), 1);
    // A new member's big order after the restart fires (a new event).
    let member = new_member(&mut c).await.expect("enrol");
    c.loyalty
        .record_purchase(purchase(&member, "order-after-restart", 80_000))
        .await
        .expect("purchase");
    let now = head(&mut c.log).await.expect("head");
    wait_for_trigger_processor(&mut c, now)
        .await
        .expect("processor caught up");
    assert_eq!(targeting_events(&mut c, &upsell).await.expect("read"), 2);
    server.shutdown().await.expect("shutdown");
}

/// Polls `stream` until `ready` holds for its events.
async fn wait_for_events(
    c: &mut Clients,
    stream: &str,
    ready: impl Fn(&[pb::EventEnvelope]) -> bool,
) -> Vec<pb::EventEnvelope> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = stream_events(&mut c.log, stream).await.expect("read");
        if ready(&events) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{stream}: still not there: {:?}",
            events.iter().map(|e| &e.event_type).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn decoded<M: prost::Message + Default>(events: &[pb::EventEnvelope], kind: &str) -> Vec<M> {
    events
        .iter()
        .filter(|e| e.event_type == kind)
        .map(|e| M::decode(e.payload.as_slice()).expect("decode"))
        .collect()
}

async fn enrolled_with_rules(c: &mut Clients, rules: pb::SetEarningRulesRequest) -> String {
    c.loyalty.set_earning_rules(rules).await.expect("rules");
    new_member(c).await.expect("enrol")
}

#[tokio::test]
async fn points_are_spent_and_expire_lot_by_lot_as_the_injected_clock_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let clock = clock_at(NEW_YEAR);
    let server = start_on(&data, &clock).await;
    let mut c = connect(&server).await;
    let customer = enrolled_with_rules(
        &mut c,
        pb::SetEarningRulesRequest {
            lot_lifetime: Some(prost_types::Duration {
                seconds: 30 * DAY,
                nanos: 0,
            }),
            ..standard_rules()
        },
    )
    .await;
    let stream = format!("loyalty-{customer}");

    // Lot A: 100 points on Jan 1; lot B: 200 points on Jan 11.
    let a = c
        .loyalty
        .record_purchase(purchase(&customer, "order-a", 10_000))
        .await
        .expect("purchase a")
        .into_inner();
    clock.advance(Duration::from_secs(10 * 86_400));
    let b = c
        .loyalty
        .record_purchase(purchase(&customer, "order-b", 20_000))
        .await
        .expect("purchase b")
        .into_inner();
    assert_eq!((a.points_earned, b.points_earned), (100, 200));

    // 60 points, all from A: it expires first.
    let redeemed = c
        .loyalty
        .redeem_points(pb::RedeemPointsRequest {
            command: command(),
            customer_id: customer.clone(),
            points: 60,
            reason: "tote bag".into(),
        })
        .await
        .expect("redeem")
        .into_inner();
    assert_eq!(
        redeemed
            .taken
            .iter()
            .map(|t| (t.lot_id.as_str(), t.points))
            .collect::<Vec<_>>(),
        [(a.lot_id.as_str(), 60)],
        "the soonest-expiring lot pays first"
    );

    // Jan 31 + 1 s: A's remaining 40 expire, B is untouched.
    clock.advance(Duration::from_secs(20 * 86_400 + 1));
    let events = wait_for_events(&mut c, &stream, |e| {
        e.iter().any(|e| e.event_type == "loyalty.points_expired")
    })
    .await;
    let expired: Vec<pb::LoyaltyPointsExpired> = decoded(&events, "loyalty.points_expired");
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].lot_id.as_str(), expired[0].points),
        (a.lot_id.as_str(), 40)
    );

    // Restart (a new scheduler rebuilt from the log), then Feb 10 + 1 s: B's
    // 200 expire; A is never expired a second time.
    server.shutdown().await.expect("shutdown");
    let server = start_on(&data, &clock).await;
    let mut c = connect(&server).await;
    clock.advance(Duration::from_secs(10 * 86_400));
    let events = wait_for_events(&mut c, &stream, |e| {
        e.iter()
            .filter(|e| e.event_type == "loyalty.points_expired")
            .count()
            >= 2
    })
    .await;
    let expired: Vec<pb::LoyaltyPointsExpired> = decoded(&events, "loyalty.points_expired");
    assert_eq!(
        expired
            .iter()
            .map(|e| (e.lot_id.as_str(), e.points))
            .collect::<Vec<_>>(),
        [(a.lot_id.as_str(), 40), (b.lot_id.as_str(), 200)]
    );
    let account = c
        .loyalty
        .get_loyalty_account(pb::GetLoyaltyAccountRequest {
            customer_id: customer.clone(),
        })
        .await
        .expect("account")
        .into_inner()
        .account
        .expect("account");
    assert_eq!((account.balance, account.total_expired), (0, 240));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_tier_comes_at_once_and_goes_only_at_the_period_end_after_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock_at(NEW_YEAR);
    let server = start_on(&dir.path().join("data"), &clock).await;
    let mut c = connect(&server).await;
    // Silver from 30,000 JPY over 90 days, kept 10 days after it lapses.
    let customer = enrolled_with_rules(
        &mut c,
        pb::SetEarningRulesRequest {
            tier_window: Some(prost_types::Duration {
                seconds: 90 * DAY,
                nanos: 0,
            }),
            tier_grace: Some(prost_types::Duration {
                seconds: 10 * DAY,
                nanos: 0,
            }),
            ..standard_rules()
        },
    )
    .await;
    let stream = format!("loyalty-{customer}");

    let up = c
        .loyalty
        .record_purchase(purchase(&customer, "order-big", 35_000))
        .await
        .expect("purchase")
        .into_inner();
    assert_eq!(
        up.tier_change.map(|t| t.to_tier).as_deref(),
        Some("silver"),
        "up at once, on the purchase that crosses the threshold"
    );

    // The purchase leaves the 90-day window on Apr 1; the grace runs to
    // Apr 11; the first period end after that is May 1, and only then does
    // the tier go, dated May 1 whenever the review runs.
    clock.set(Timestamp::from_unix_nanos(
        (NEW_YEAR + 121 * DAY + 3600) * 1_000_000_000,
    ));
    let events = wait_for_events(&mut c, &stream, |e| {
        e.iter()
            .filter(|e| e.event_type == "loyalty.tier_changed")
            .count()
            >= 2
    })
    .await;
    let changes: Vec<pb::LoyaltyTierChanged> = decoded(&events, "loyalty.tier_changed");
    assert_eq!(changes.len(), 2, "{changes:?}");
    let down = &changes[1];
    assert_eq!(
        (down.from_tier.as_str(), down.to_tier.as_str()),
        ("silver", "")
    );
    // 2026-05-01T00:00:00Z: Jan 31 + Feb 28 + Mar 31 + Apr 30 = 120 days.
    assert_eq!(
        down.changed_at.map(|t| t.seconds),
        Some(NEW_YEAR + 120 * DAY),
        "the downgrade is decided as of the period end: {down:?}"
    );
    assert!(!down.reason.is_empty());
    server.shutdown().await.expect("shutdown");
}
