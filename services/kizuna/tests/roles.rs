//! The services as separate processes: a log node and one process per command
//! role (lead, customer, support, loyalty, campaign), each a real
//! `kizuna serve --role …` child
//! reaching the log over gRPC. The same client flows as the single-process
//! tests must pass, and every process must stop cleanly on SIGTERM.
//!
//! It lives beside the binary because only here does cargo provide
//! `CARGO_BIN_EXE_kizuna`, the freshly built binary.

use kizuna_tests::marketing::{
    campaign_race, loyalty_journey, new_member, purchase, register_reachable_customer,
    targeting_events, trigger_targets_big_spender, wait_for_trigger_processor,
};
use kizuna_tests::{Clients, Endpoints, crm_journey, head};
use std::path::Path;
use std::time::Duration;
use tokio::process::{Child, Command};

mod support;

/// Upper bound of any single wait; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(60);

async fn spawn_role(role: &str, extra: &[&str]) -> (Child, String) {
    let args = ["--role", role, "--durability", "none"];
    support::spawn_serve(args.iter().chain(extra)).await
}

async fn terminate(mut child: Child, role: &str) {
    let pid = child.id().expect("running child has a pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid}");
    let exit = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("the role stops after SIGTERM")
        .expect("wait for the role");
    assert!(exit.success(), "role {role} exited with {exit}");
}

#[tokio::test]
async fn the_crm_journey_passes_against_separate_log_lead_customer_and_support_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (log, log_url) = spawn_role("log", &["--data-dir", path(&data)]).await;
    let remote = ["--log-endpoint", log_url.as_str()];
    let (lead, lead_url) = spawn_role("lead", &remote).await;
    let (customer, customer_url) = spawn_role("customer", &remote).await;
    let (support, support_url) = spawn_role("support", &remote).await;
    let endpoints = Endpoints {
        log: log_url.clone(),
        lead: lead_url.clone(),
        customer: customer_url,
        support: support_url,
        loyalty: lead_url.clone(),
        campaign: lead_url.clone(),
    };
    let mut clients = Clients::connect(&endpoints)
        .await
        .expect("connect to every role");
    crm_journey(&mut clients)
        .await
        .expect("the journey across processes");

    // A command role serves only its own service.
    let mut wrong = Clients::connect(&Endpoints::single(&lead_url))
        .await
        .expect("connect to the lead role");
    let status = wrong
        .log
        .head(kizuna_proto::v1::HeadRequest {})
        .await
        .expect_err("the lead role does not serve EventLog");
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    for (child, role) in [
        (support, "support"),
        (customer, "customer"),
        (lead, "lead"),
        (log, "log"),
    ] {
        terminate(child, role).await;
    }
}

fn now() -> prost_types::Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    prost_types::Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).expect("seconds fit"),
        nanos: 0,
    }
}

#[tokio::test]
async fn loyalty_campaigns_and_triggers_pass_against_separate_log_customer_loyalty_and_campaign_processes()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (log, log_url) = spawn_role("log", &["--data-dir", path(&data)]).await;
    let remote = ["--log-endpoint", log_url.as_str()];
    let (customer, customer_url) = spawn_role("customer", &remote).await;
    let (loyalty, loyalty_url) = spawn_role("loyalty", &remote).await;
    let campaign_args = [
        "--log-endpoint",
        log_url.as_str(),
        "--trigger-check-interval",
        "0.05",
    ];
    let (campaign, campaign_url) = spawn_role("campaign", &campaign_args).await;
    let endpoints = Endpoints {
        log: log_url.clone(),
        lead: customer_url.clone(),
        customer: customer_url.clone(),
        support: customer_url.clone(),
        loyalty: loyalty_url.clone(),
        campaign: campaign_url,
    };
    let mut c = Clients::connect(&endpoints)
        .await
        .expect("connect to every role");
    let customer_id = register_reachable_customer(&mut c, "hanako@example.jp")
        .await
        .expect("register");
    loyalty_journey(&mut c, &customer_id)
        .await
        .expect("loyalty across processes");
    campaign_race(&mut c, &customer_id, now())
        .await
        .expect("campaign race across processes");
    let upsell = trigger_targets_big_spender(&mut c, &customer_id, now())
        .await
        .expect("trigger across processes");

    // Restart the campaign process: its trigger processor reads on from the
    // checkpoint in the log and targets nothing twice; a new member's big
    // order fires.
    let before_restart = head(&mut c.log).await.expect("head");
    terminate(campaign, "campaign").await;
    let (campaign, campaign_url) = spawn_role("campaign", &campaign_args).await;
    let mut c = Clients::connect(&Endpoints {
        campaign: campaign_url,
        ..endpoints
    })
    .await
    .expect("reconnect");
    wait_for_trigger_processor(&mut c, before_restart)
        .await
        .expect("the restarted processor catches up");
    assert_eq!(targeting_events(&mut c, &upsell).await.expect("read"), 1);
    let member = new_member(&mut c).await.expect("enrol");
    c.loyalty
        .record_purchase(purchase(&member, "order-after-restart", 80_000))
        .await
        .expect("purchase");
    let position = head(&mut c.log).await.expect("head");
    wait_for_trigger_processor(&mut c, position)
        .await
        .expect("the processor follows");
    assert_eq!(targeting_events(&mut c, &upsell).await.expect("read"), 2);

    for (child, role) in [
        (campaign, "campaign"),
        (loyalty, "loyalty"),
        (customer, "customer"),
        (log, "log"),
    ] {
        terminate(child, role).await;
    }
}

#[tokio::test]
async fn a_command_role_without_a_log_endpoint_fails_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_kizuna"))
        .args(["serve", "--role", "lead", "--listen", "127.0.0.1:0"])
        .output()
        .await
        .expect("run kizuna");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--log-endpoint"), "{stderr}");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}
