//! Offer arbitration on one customer's outreach stream.
//!
//! The stream serialises every decision for the customer (each append carries
//! the expected version, and a command that lost the race is re-decided on
//! the newer state), so a random interleaving of campaigns' decisions is a
//! random sequence of decisions on one state. For any such sequence: at most
//! one campaign holds the offer slot at any time, approved sends in any
//! trailing cap window never exceed the cap, and every decision leaves exactly
//! one approved or suppressed event.
//!
//! The rule when priorities disagree with arrival order: a slot once approved
//! is never taken back (the message may already be out), so the first
//! approved send wins and a later higher-priority campaign is suppressed with
//! CONFLICTING_OFFER until the holder's window ends or it completes.

use kizuna_domain::campaign::outreach::stream;
use kizuna_domain::campaign::{
    DecideSend, FrequencyCap, Outreach, OutreachCommand, OutreachEvent, OutreachState, ReleaseSlot,
    SuppressionReason, Window,
};
use kizuna_domain::pb;
use kizuna_domain::testing::default_now;
use kizuna_domain::time::{add, unix_nanos};
use kizuna_domain::{Context, Decider, SequentialIds};
use proptest::prelude::*;
use prost_types::Timestamp;
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
const CUSTOMER: Uuid = Uuid::from_u128(0xc1);

fn campaign(n: usize) -> Uuid {
    Uuid::from_u128(0xca00 + n as u128)
}

fn window() -> Window {
    Window {
        starts_at: default_now(),
        ends_at: add(&default_now(), 10 * DAY),
    }
}

/// One customer's outreach stream, decided in order as the store would
/// serialise it.
struct Stream {
    state: OutreachState,
    log: Vec<OutreachEvent>,
    ids: SequentialIds,
}

impl Stream {
    fn new() -> Self {
        Self {
            state: OutreachState::default(),
            log: Vec::new(),
            ids: SequentialIds::default(),
        }
    }

    fn run(&mut self, cmd: OutreachCommand, now: Timestamp) -> Vec<OutreachEvent> {
        let mut ctx = Context {
            now,
            ids: &mut self.ids,
        };
        let events = Outreach::decide(&self.state, &cmd, &mut ctx).expect("valid command");
        for e in &events {
            self.state = Outreach::evolve(std::mem::take(&mut self.state), e);
        }
        self.log.extend(events.iter().cloned());
        events
    }

    fn approved(&self) -> Vec<&pb::OutreachSendApproved> {
        self.log
            .iter()
            .filter_map(|e| match e {
                OutreachEvent::SendApproved(a) => Some(a),
                _ => None,
            })
            .collect()
    }
}

fn send(n: usize, priority: i32, status: pb::CampaignStatus, cap: FrequencyCap) -> DecideSend {
    DecideSend {
        customer_id: CUSTOMER,
        campaign_id: campaign(n),
        campaign_status: status,
        priority,
        channel: pb::ContactChannel::Email,
        window: window(),
        offer_code: format!("OFFER-{n}"),
        frequency_cap: cap,
        consents: BTreeSet::from([(pb::ContactChannel::Email, pb::ConsentPurpose::Marketing)]),
        bounced_channels: BTreeSet::new(),
    }
}

fn nanos(t: &Option<Timestamp>) -> i128 {
    t.as_ref().map(unix_nanos).unwrap_or_default()
}

#[derive(Debug, Clone)]
enum Step {
    /// Campaign `n` asks to send, after `advance` hours.
    Decide { n: usize, advance: u32 },
    /// Campaign `n` completes and frees its slot, after `advance` hours.
    Complete { n: usize, advance: u32 },
}

fn scenario() -> impl Strategy<Value = (Vec<i32>, FrequencyCap, Vec<Step>)> {
    (2usize..=3).prop_flat_map(|campaigns| {
        let step = prop_oneof![
            5 => (0..campaigns, 0u32..36).prop_map(|(n, advance)| Step::Decide { n, advance }),
            1 => (0..campaigns, 0u32..36).prop_map(|(n, advance)| Step::Complete { n, advance }),
        ];
        (
            prop::collection::vec(1i32..=100, campaigns),
            (1u32..=3, 1u32..=5).prop_map(|(max_sends, days)| FrequencyCap {
                max_sends,
                per: days * DAY,
            }),
            prop::collection::vec(step, 1..60),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn one_slot_holder_the_cap_holds_and_every_decision_is_recorded(
        (priorities, cap, steps) in scenario()
    ) {
        let mut stream = Stream::new();
        let mut now = default_now();
        let mut completed = vec![false; priorities.len()];
        for step in &steps {
            match *step {
                Step::Decide { n, advance } => {
                    now = add(&now, advance * HOUR);
                    let status = if completed[n] {
                        pb::CampaignStatus::Completed
                    } else {
                        pb::CampaignStatus::Active
                    };
                    let events = stream.run(
                        OutreachCommand::DecideSend(send(n, priorities[n], status, cap)),
                        now,
                    );
                    prop_assert!(
                        matches!(
                            events[..],
                            [OutreachEvent::SendApproved(_)] | [OutreachEvent::SendSuppressed(_)]
                        ),
                        "{:?}", events
                    );
                    let conflict = match &events[..] {
                        [OutreachEvent::SendSuppressed(s)]
                            if s.reason == SuppressionReason::ConflictingOffer as i32 => Some(s),
                        _ => None,
                    };
                    if let Some(s) = conflict {
                        // The holder named is one that really holds the slot now.
                        let holder = stream
                            .state
                            .slot_holder(pb::ContactChannel::Email, &now)
                            .map(|h| h.campaign_id.to_string());
                        prop_assert_eq!(holder.as_deref(), Some(s.conflicting_campaign_id.as_str()));
                    }
                }
                Step::Complete { n, advance } => {
                    now = add(&now, advance * HOUR);
                    completed[n] = true;
                    let events = stream.run(
                        OutreachCommand::ReleaseSlot(ReleaseSlot {
                            customer_id: CUSTOMER,
                            campaign_id: campaign(n),
                        }),
                        now,
                    );
                    prop_assert!(events.len() <= 1);
                    prop_assert!(events.iter().all(|e| matches!(e, OutreachEvent::SlotReleased(_))));
                }
            }
            let holders = stream
                .state
                .sends
                .iter()
                .filter(|s| s.holds_slot_at(&now))
                .count();
            prop_assert!(holders <= 1, "{} holders at {:?}", holders, now);
        }

        let decisions = steps.iter().filter(|s| matches!(s, Step::Decide { .. })).count();
        let recorded = stream
            .log
            .iter()
            .filter(|e| !matches!(e, OutreachEvent::SlotReleased(_)))
            .count();
        prop_assert_eq!(decisions, recorded);

        // Checked from the log alone, independently of the decider's state.
        let approved = stream.approved();
        let released_at = |send_id: &str| {
            stream.log.iter().find_map(|e| match e {
                OutreachEvent::SlotReleased(r) if r.send_id == send_id => Some(nanos(&r.released_at)),
                _ => None,
            })
        };
        let per = i128::try_from(cap.per.as_nanos()).unwrap_or(i128::MAX);
        for (i, a) in approved.iter().enumerate() {
            let t = nanos(&a.approved_at);
            for earlier in &approved[..i] {
                let held = released_at(&earlier.send_id).is_none_or(|r| r > t)
                    && t < nanos(&earlier.slot_until);
                prop_assert!(!held, "{:?} approved while {:?} held the slot", a, earlier);
            }
            let in_cap_window = approved
                .iter()
                .filter(|b| {
                    let tb = nanos(&b.approved_at);
                    tb > t - per && tb <= t
                })
                .count();
            prop_assert!(in_cap_window as u64 <= u64::from(cap.max_sends));
            prop_assert_eq!(
                approved.iter().filter(|b| b.campaign_id == a.campaign_id).count(),
                1,
                "one offer per campaign"
            );
        }
    }
}

/// Two campaigns each asking 50 times, in the order given by `order`
/// (campaign index per attempt), one minute apart.
fn race(priorities: [i32; 2], order: &[usize]) -> Stream {
    let cap = FrequencyCap {
        max_sends: 2,
        per: 7 * DAY,
    };
    let mut stream = Stream::new();
    let mut now = default_now();
    for &n in order {
        now = add(&now, Duration::from_secs(60));
        let events = stream.run(
            OutreachCommand::DecideSend(send(n, priorities[n], pb::CampaignStatus::Active, cap)),
            now,
        );
        assert_eq!(events.len(), 1);
    }
    assert_eq!(stream.log.len(), order.len());
    stream
}

fn reasons(stream: &Stream, n: usize) -> BTreeSet<i32> {
    stream
        .log
        .iter()
        .filter_map(|e| match e {
            OutreachEvent::SendSuppressed(s) if s.campaign_id == campaign(n).to_string() => {
                Some(s.reason)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn two_campaigns_times_fifty_sends_yield_one_approved_send_to_the_higher_priority_first() {
    let order: Vec<usize> = [0; 50].into_iter().chain([1; 50]).collect();
    let stream = race([90, 10], &order);
    let approved = stream.approved();
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].campaign_id, campaign(0).to_string());
    assert_eq!(
        reasons(&stream, 0),
        BTreeSet::from([SuppressionReason::AlreadySent as i32])
    );
    assert_eq!(
        reasons(&stream, 1),
        BTreeSet::from([SuppressionReason::ConflictingOffer as i32])
    );
}

#[test]
fn when_the_lower_priority_comes_first_it_keeps_the_slot() {
    // First come holds: the approved offer may already be out, so the
    // higher-priority campaign is suppressed rather than preempting it.
    let order: Vec<usize> = [1; 50].into_iter().chain([0; 50]).collect();
    let stream = race([90, 10], &order);
    let approved = stream.approved();
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].campaign_id, campaign(1).to_string());
    assert_eq!(
        reasons(&stream, 0),
        BTreeSet::from([SuppressionReason::ConflictingOffer as i32])
    );
}

#[test]
fn interleaved_races_also_yield_one_approved_send() {
    let order: Vec<usize> = (0..100).map(|i| i % 2).collect();
    let stream = race([50, 50], &order);
    assert_eq!(stream.approved().len(), 1);
    assert_eq!(stream.approved()[0].campaign_id, campaign(0).to_string());
    assert!(stream.log.iter().all(|e| matches!(
        e,
        OutreachEvent::SendApproved(_) | OutreachEvent::SendSuppressed(_)
    )));
}

#[test]
fn the_stream_is_named_by_the_customer() {
    assert_eq!(
        stream(CUSTOMER),
        "outreach-00000000-0000-0000-0000-0000000000c1"
    );
}
