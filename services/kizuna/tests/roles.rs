//! The services as separate processes: a log node and one process per command
//! role (lead, customer, support), each a real `kizuna serve --role …` child
//! reaching the log over gRPC. The same client flows as the single-process
//! tests must pass, and every process must stop cleanly on SIGTERM.
//!
//! It lives beside the binary because only here does cargo provide
//! `CARGO_BIN_EXE_kizuna`, the freshly built binary.

use kizuna_tests::{Clients, Endpoints, crm_journey};
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
