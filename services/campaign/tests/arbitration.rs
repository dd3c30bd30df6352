//! SendToCustomer through gRPC: offer arbitration between racing campaigns,
//! and every send-time rule (consent, bounces, frequency cap, window, status,
//! conflicting offers and the lazy release of completed campaigns' slots).

mod common;

use common::*;
use kizuna_domain::campaign::outreach;
use kizuna_domain::customer;
use kizuna_proto::v1 as pb;
use pb::OutreachSuppressionReason as Reason;
use std::collections::BTreeMap;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_campaigns_racing_fifty_sends_each_for_one_customer_approve_exactly_one() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let a = f.active(&[customer], 20).await;
    let b = f.active(&[customer], 80).await;

    let mut tasks = Vec::new();
    for i in 0..100 {
        let campaign = if i % 2 == 0 { a } else { b };
        let mut client = f.campaigns.clone();
        tasks.push(tokio::spawn(async move {
            let reply = client
                .send_to_customer(pb::SendToCustomerRequest {
                    command: command(),
                    campaign_id: campaign.to_string(),
                    customer_id: customer.to_string(),
                })
                .await
                .expect("every send is decided, none is an error")
                .into_inner();
            (campaign, reply)
        }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("task"));
    }

    // From the responses: one approval, 99 suppressions with reasons.
    let winners: Vec<_> = replies
        .iter()
        .filter_map(|(c, r)| approved(r).map(|a| (*c, a.send_id.clone())))
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (winner, send_id) = winners[0].clone();
    let loser = if winner == a { b } else { a };
    let mut reasons: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    for (campaign, reply) in &replies {
        if approved(reply).is_some() {
            continue;
        }
        let s = suppressed(reply).expect("suppressed");
        assert_eq!(s.campaign_id, campaign.to_string());
        if *campaign == winner {
            assert_eq!(reason(reply), Reason::AlreadySent, "{reply:?}");
            assert!(s.conflicting_campaign_id.is_empty());
        } else {
            assert_eq!(reason(reply), Reason::ConflictingOffer, "{reply:?}");
            assert_eq!(s.conflicting_campaign_id, winner.to_string());
        }
        *reasons.entry((*campaign, s.reason)).or_default() += 1;
        assert!(!reply.result.as_ref().expect("result").replayed);
    }
    assert_eq!(
        reasons,
        BTreeMap::from([
            ((winner, Reason::AlreadySent as i32), 49),
            ((loser, Reason::ConflictingOffer as i32), 50),
        ])
    );

    // From the log: the outreach stream holds exactly the 100 decisions.
    let events = f
        .server
        .store
        .read_stream(
            &outreach::stream(customer),
            kizuna_eventlog::Direction::Forward,
            None,
            1000,
        )
        .await
        .expect("read")
        .events;
    assert_eq!(events.len(), 100);
    let approvals: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "outreach.send_approved")
        .collect();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].stream_version, 0, "the first decision won");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "outreach.send_suppressed")
            .count(),
        99
    );
    let view = f.outreach(customer).await;
    assert_eq!(view.sends.len(), 1);
    let approved_event = view.sends[0].approved.as_ref().expect("approved");
    assert_eq!(approved_event.send_id, send_id);
    assert_eq!(approved_event.campaign_id, winner.to_string());
    assert_eq!(view.suppression_count, 99);
    assert_eq!(view.suppressions.len(), 99);
    assert_eq!(
        view.suppressions
            .iter()
            .filter(|s| s.reason == Reason::ConflictingOffer as i32
                && s.conflicting_campaign_id == winner.to_string())
            .count(),
        50
    );
    assert_eq!(view.slots.len(), 1);
    assert_eq!(view.slots[0].campaign_id, winner.to_string());
    assert_eq!(view.slots[0].channel, pb::ContactChannel::Email as i32);
    assert_eq!(view.version, Some(99));
}

#[tokio::test]
async fn an_approved_send_is_replayed_for_its_command_id_and_reported_with_its_send_id() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let campaign = f.active(&[customer], 50).await;
    let req = pb::SendToCustomerRequest {
        command: command(),
        campaign_id: campaign.to_string(),
        customer_id: customer.to_string(),
    };
    let first = f
        .campaigns
        .send_to_customer(req.clone())
        .await
        .expect("send")
        .into_inner();
    let approval = approved(&first).expect("approved").clone();
    assert_eq!(approval.campaign_id, campaign.to_string());
    assert_eq!(approval.customer_id, customer.to_string());
    assert_eq!(approval.offer_code, "SPRING-10");
    assert_eq!(approval.campaign_priority, 50);
    assert_eq!(approval.approved_at, Some(at(START_SECONDS)));
    assert_eq!(approval.slot_until, Some(at(START_SECONDS + days(30))));
    let result = first.result.clone().expect("result");
    assert_eq!(result.event_types, ["outreach.send_approved"]);
    assert_eq!(result.streams[0].stream, outreach::stream(customer));

    // A retry after a timeout: the same decision, nothing appended, even
    // though deciding again would now say ALREADY_SENT.
    let head = f.head().await;
    let again = f
        .campaigns
        .send_to_customer(req)
        .await
        .expect("send")
        .into_inner();
    assert!(again.result.as_ref().expect("result").replayed);
    assert_eq!(approved(&again), Some(&approval));
    assert_eq!(f.head().await, head);

    // A new command for the same campaign and customer is suppressed.
    let second = f.send(campaign, customer).await;
    assert_eq!(reason(&second), Reason::AlreadySent);
}

#[tokio::test]
async fn no_marketing_consent_on_the_channel_suppresses_with_no_consent() {
    let mut f = fixture().await;
    let customer = f.customer_with(&[pb::ContactChannel::Sms]).await;
    let campaign = f.active(&[customer], 50).await;
    let reply = f.send(campaign, customer).await;
    assert_eq!(reason(&reply), Reason::NoConsent);
    assert_eq!(
        reply.result.expect("result").event_types,
        ["outreach.send_suppressed"]
    );
    // Granting consent lets the next send through.
    f.customers
        .grant_consent(pb::GrantConsentRequest {
            command: command(),
            customer_id: customer.to_string(),
            channel: pb::ContactChannel::Email as i32,
            purpose: pb::ConsentPurpose::Marketing as i32,
            ..Default::default()
        })
        .await
        .expect("grant");
    f.approved_send(campaign, customer).await;
}

#[tokio::test]
async fn a_hard_bounce_recorded_by_the_campaign_flags_the_customer_and_suppresses_later_sends() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let first = f.active(&[customer], 50).await;
    let send_id = f.approved_send(first, customer).await;

    let bounce = pb::RecordBounceRequest {
        command: command(),
        campaign_id: first.to_string(),
        send_id: send_id.to_string(),
        customer_id: customer.to_string(),
        permanent: true,
        reason: "550 5.1.1 user unknown".into(),
    };
    let result = f
        .campaigns
        .record_bounce(bounce.clone())
        .await
        .expect("bounce")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(
        result.event_types,
        ["campaign.message_bounced", "customer.contact_bounced"]
    );
    // One append: both streams' events are next to each other in the log.
    assert_eq!(result.streams.len(), 2);
    assert_eq!(
        result.streams[1].first_position,
        result.streams[0].last_position + 1
    );
    assert_eq!(result.streams[1].stream, customer::stream_name(customer));

    let flags = f.customer_bounces(customer).await;
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].channel, pb::ContactChannel::Email as i32);
    assert_eq!(flags[0].kind, pb::BounceKind::Hard as i32);
    assert_eq!(flags[0].last_reason, "550 5.1.1 user unknown");
    assert_eq!(
        flags[0].bounced,
        Some(pb::contact_bounce_flag::Bounced::Address(
            "hanako@example.jp".into()
        ))
    );

    // The retry is replayed; a second report of the same bounce (a new
    // command id) records nothing on either stream.
    let head = f.head().await;
    let retry = f
        .campaigns
        .record_bounce(bounce.clone())
        .await
        .expect("retry")
        .into_inner();
    assert!(retry.result.expect("result").replayed);
    let repeat = f
        .campaigns
        .record_bounce(pb::RecordBounceRequest {
            command: command(),
            ..bounce
        })
        .await
        .expect("repeat")
        .into_inner();
    assert!(repeat.result.expect("result").streams.is_empty());
    assert_eq!(f.head().await, head);

    // The next campaign's send is suppressed for the bounced address (its
    // slot would be free: the first campaign completes).
    f.complete(first).await;
    let second = f.active(&[customer], 50).await;
    let reply = f.send(second, customer).await;
    assert_eq!(reason(&reply), Reason::ContactBounced);
}

#[tokio::test]
async fn a_soft_bounce_flags_the_customer_but_does_not_stop_sends() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let first = f.active(&[customer], 50).await;
    let send_id = f.approved_send(first, customer).await;
    f.campaigns
        .record_bounce(pb::RecordBounceRequest {
            command: command(),
            campaign_id: first.to_string(),
            send_id: send_id.to_string(),
            customer_id: customer.to_string(),
            permanent: false,
            reason: "452 mailbox full".into(),
        })
        .await
        .expect("bounce");
    let flags = f.customer_bounces(customer).await;
    assert_eq!(flags[0].kind, pb::BounceKind::Soft as i32);
    f.complete(first).await;
    let second = f.active(&[customer], 50).await;
    f.approved_send(second, customer).await;
}

#[tokio::test]
async fn the_frequency_cap_counts_sends_of_all_campaigns_in_a_window_that_moves_with_the_clock() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    // A one-day campaign, then a month-long one; both allow 1 e-mail per 7 days.
    let mut short = campaign_request(&[customer]);
    short.window = Some(pb::CampaignWindow {
        starts_at: Some(at(START_SECONDS)),
        ends_at: Some(at(START_SECONDS + days(1))),
    });
    short.frequency_cap = Some(pb::CampaignFrequencyCap {
        max_sends: 1,
        per: Some(prost_types::Duration {
            seconds: days(7),
            nanos: 0,
        }),
    });
    let mut long = short.clone();
    long.command = command();
    long.window = Some(pb::CampaignWindow {
        starts_at: Some(at(START_SECONDS)),
        ends_at: Some(at(START_SECONDS + days(30))),
    });
    let short = f.create(short).await;
    f.launch(short).await;
    let long = f.create(long).await;
    f.launch(long).await;
    f.approved_send(short, customer).await;

    // Two days on, the short campaign's slot has ended with its window, but
    // its send still counts towards the cap.
    f.clock.advance(2 * DAY);
    let reply = f.send(long, customer).await;
    assert_eq!(reason(&reply), Reason::FrequencyCap);
    assert!(f.outreach(customer).await.slots.is_empty());

    // A second before seven days have passed it still counts; at seven days
    // the trailing window (now - 7 days, now] has moved past it.
    f.clock.advance(5 * DAY - std::time::Duration::from_secs(1));
    let reply = f.send(long, customer).await;
    assert_eq!(reason(&reply), Reason::FrequencyCap);
    f.clock.advance(std::time::Duration::from_secs(1));
    f.approved_send(long, customer).await;
}

#[tokio::test]
async fn sends_outside_the_window_or_of_a_paused_campaign_are_suppressed() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let mut req = campaign_request(&[customer]);
    req.window = Some(pb::CampaignWindow {
        starts_at: Some(at(START_SECONDS + days(1))),
        ends_at: Some(at(START_SECONDS + days(2))),
    });
    let campaign = f.create(req).await;

    // Still in DRAFT.
    let reply = f.send(campaign, customer).await;
    assert_eq!(reason(&reply), Reason::CampaignNotActive);

    f.launch(campaign).await;
    let reply = f.send(campaign, customer).await;
    assert_eq!(reason(&reply), Reason::OutsideWindow, "before the start");

    f.clock.advance(DAY);
    f.campaigns
        .pause_campaign(pb::PauseCampaignRequest {
            command: command(),
            campaign_id: campaign.to_string(),
        })
        .await
        .expect("pause");
    let reply = f.send(campaign, customer).await;
    assert_eq!(reason(&reply), Reason::CampaignNotActive, "paused");

    f.campaigns
        .resume_campaign(pb::ResumeCampaignRequest {
            command: command(),
            campaign_id: campaign.to_string(),
        })
        .await
        .expect("resume");
    let other = f.customer().await;
    f.campaigns
        .target_customers(pb::TargetCustomersRequest {
            command: command(),
            campaign_id: campaign.to_string(),
            customer_ids: vec![other.to_string()],
        })
        .await
        .expect("target");
    f.approved_send(campaign, customer).await;

    f.clock.advance(DAY);
    let reply = f.send(campaign, other).await;
    assert_eq!(
        reason(&reply),
        Reason::OutsideWindow,
        "at the end: excluded"
    );
}

#[tokio::test]
async fn a_completed_holder_frees_the_slot_for_the_next_campaign_in_the_same_append() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let holder = f.active(&[customer], 10).await;
    let next = f.active(&[customer], 90).await;
    let held = f.approved_send(holder, customer).await;

    // Higher priority does not take a slot already held.
    let reply = f.send(next, customer).await;
    assert_eq!(reason(&reply), Reason::ConflictingOffer);
    assert_eq!(
        suppressed(&reply)
            .expect("suppressed")
            .conflicting_campaign_id,
        holder.to_string()
    );

    // Completing the holder appends nothing to the customer's stream...
    f.complete(holder).await;
    let view = f.outreach(customer).await;
    assert_eq!(view.slots[0].campaign_id, holder.to_string());
    assert!(view.sends[0].released_at.is_none());

    // ...the next send releases the slot first, then takes it.
    let reply = f.send(next, customer).await;
    let result = reply.result.clone().expect("result");
    assert_eq!(
        result.event_types,
        ["outreach.slot_released", "outreach.send_approved"]
    );
    assert_eq!(result.streams.len(), 1);
    let decision = reply.decision.clone().expect("decision");
    assert_eq!(decision.released.len(), 1);
    assert_eq!(decision.released[0].campaign_id, holder.to_string());
    assert_eq!(decision.released[0].send_id, held.to_string());
    let approval = approved(&reply).expect("approved");
    assert_eq!(approval.campaign_id, next.to_string());

    let view = f.outreach(customer).await;
    assert_eq!(view.sends.len(), 2);
    assert_eq!(view.sends[0].released_at, Some(at(START_SECONDS)));
    assert_eq!(view.slots.len(), 1);
    assert_eq!(view.slots[0].campaign_id, next.to_string());
    assert_eq!(
        f.stream_types(&outreach::stream(customer)).await,
        [
            "outreach.send_approved",
            "outreach.send_suppressed",
            "outreach.slot_released",
            "outreach.send_approved"
        ]
    );
}

#[tokio::test]
async fn send_rejections_name_the_missing_campaign_customer_or_audience() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let stranger = f.customer().await;
    let unknown = Uuid::now_v7();
    let campaign = f.active(&[customer, unknown], 50).await;

    let e = f.try_send(Uuid::now_v7(), customer).await.unwrap_err();
    assert_not_found(&e, "campaign");
    let e = f.try_send(campaign, stranger).await.unwrap_err();
    assert_rejected(&e, "CUSTOMER_NOT_TARGETED");
    let e = f.try_send(campaign, unknown).await.unwrap_err();
    assert_not_found(&e, "customer");

    for (campaign_id, customer_id, field) in [
        (String::new(), customer.to_string(), "campaign_id"),
        (campaign.to_string(), "nope".to_owned(), "customer_id"),
        (
            campaign.to_string(),
            customer.to_string().to_uppercase(),
            "customer_id",
        ),
    ] {
        let e = f
            .campaigns
            .send_to_customer(pb::SendToCustomerRequest {
                command: command(),
                campaign_id,
                customer_id,
            })
            .await
            .unwrap_err();
        assert_invalid(&e, field);
    }
    let e = f
        .campaigns
        .send_to_customer(pb::SendToCustomerRequest {
            command: None,
            campaign_id: campaign.to_string(),
            customer_id: customer.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(f.stream_types(&outreach::stream(customer)).await.is_empty());
}

#[tokio::test]
async fn a_merged_customer_is_refused_with_customer_merged() {
    let mut f = fixture().await;
    let source = f.customer().await;
    let target = f.customer().await;
    let campaign = f.active(&[source, target], 50).await;
    f.customers
        .merge_customers(pb::MergeCustomersRequest {
            command: command(),
            source_customer_id: source.to_string(),
            target_customer_id: target.to_string(),
        })
        .await
        .expect("merge");
    let e = f.try_send(campaign, source).await.unwrap_err();
    assert_rejected(&e, "CUSTOMER_MERGED");
    f.approved_send(campaign, target).await;
}

#[tokio::test]
async fn an_expected_outreach_version_that_moved_is_aborted() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let a = f.active(&[customer], 50).await;
    let b = f.active(&[customer], 50).await;
    assert_eq!(f.outreach(customer).await.version, None);
    f.approved_send(a, customer).await;
    let seen = f.outreach(customer).await.version;
    assert_eq!(seen, Some(0));

    let mut meta = command().expect("meta");
    meta.expected_version = Some(5);
    let e = f
        .campaigns
        .send_to_customer(pb::SendToCustomerRequest {
            command: Some(meta.clone()),
            campaign_id: b.to_string(),
            customer_id: customer.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Aborted, "{e:?}");

    meta.command_id = Uuid::now_v7().to_string();
    meta.expected_version = Some(0);
    let reply = f
        .campaigns
        .send_to_customer(pb::SendToCustomerRequest {
            command: Some(meta),
            campaign_id: b.to_string(),
            customer_id: customer.to_string(),
        })
        .await
        .expect("send")
        .into_inner();
    assert_eq!(reason(&reply), Reason::ConflictingOffer);
}

#[tokio::test]
async fn a_completed_campaigns_own_send_releases_its_slot_and_is_suppressed() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let campaign = f.active(&[customer], 50).await;
    f.approved_send(campaign, customer).await;
    f.complete(campaign).await;
    let reply = f.send(campaign, customer).await;
    assert_eq!(reason(&reply), Reason::CampaignNotActive);
    assert_eq!(
        reply.result.expect("result").event_types,
        ["outreach.slot_released", "outreach.send_suppressed"]
    );
    assert!(f.outreach(customer).await.slots.is_empty());
    // Released once: the next decision finds nothing to release.
    let reply = f.send(campaign, customer).await;
    assert_eq!(
        reply.result.expect("result").event_types,
        ["outreach.send_suppressed"]
    );
}

#[tokio::test]
async fn a_send_under_the_command_id_of_another_command_is_invalid_not_internal() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let campaign = f.active(&[customer], 50).await;
    let launch_id = Uuid::now_v7();
    let other = f
        .campaigns
        .create_campaign(pb::CreateCampaignRequest {
            command: command_with_id(launch_id),
            ..campaign_request(&[customer])
        })
        .await
        .expect("create");
    assert!(!other.into_inner().result.expect("result").replayed);
    let head = f.head().await;
    let status = f
        .campaigns
        .send_to_customer(pb::SendToCustomerRequest {
            command: command_with_id(launch_id),
            campaign_id: campaign.to_string(),
            customer_id: customer.to_string(),
        })
        .await
        .expect_err("a reused command id cannot answer with a decision");
    assert_invalid(&status, "command.command_id");
    assert_eq!(f.head().await, head, "nothing appended");
}

#[tokio::test]
async fn a_send_or_launch_with_a_caller_time_is_refused_the_window_is_the_servers() {
    let mut f = fixture().await;
    let customer = f.customer().await;
    let campaign = f.active(&[customer], 50).await;
    let backdated = Some(pb::CommandMetadata {
        occurred_at: Some(at(START_SECONDS - days(1))),
        ..command().expect("metadata")
    });
    let status = f
        .campaigns
        .send_to_customer(pb::SendToCustomerRequest {
            command: backdated.clone(),
            campaign_id: campaign.to_string(),
            customer_id: customer.to_string(),
        })
        .await
        .expect_err("a backdated send");
    assert_invalid(&status, "command.occurred_at");
    let status = f
        .campaigns
        .pause_campaign(pb::PauseCampaignRequest {
            command: backdated,
            campaign_id: campaign.to_string(),
        })
        .await
        .expect_err("a backdated status change");
    assert_invalid(&status, "command.occurred_at");
}
