//! Black-box tests of the `kizuna` binary.
//!
//! The client commands run as real processes against a server started
//! in-process with `kizuna::start` (ephemeral port, temporary directory), and
//! `kizuna serve` itself runs as a child process that is stopped with SIGTERM
//! and restarted on the same data directory. Waits are bounded by timeouts
//! and end on an observable event (a line printed, a process exited), never
//! on a sleep.

use kizuna::{RunningServer, ServeConfig};
use kizuna_eventlog::Durability;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Upper bound of any single wait; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(60);

const CUSTOMER: &str = "0190a1b2-0000-7000-8000-0000000000c1";

async fn server() -> (RunningServer, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = kizuna::start(ServeConfig {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        durability: Durability::None,
        ..ServeConfig::new(dir.path().join("data"))
    })
    .await
    .unwrap();
    (server, dir)
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        self
    }
}

fn kizuna_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kizuna"));
    cmd.env_remove("RUST_LOG")
        .env_remove("KIZUNA_ENDPOINT")
        .env_remove("KIZUNA_LISTEN")
        .env_remove("KIZUNA_DATA_DIR")
        .env_remove("KIZUNA_DURABILITY")
        .env_remove("KIZUNA_DRAIN_TIMEOUT")
        .kill_on_drop(true);
    cmd
}

/// Runs `kizuna events ARGS --endpoint ENDPOINT`, feeding `stdin` when given.
async fn events(endpoint: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = kizuna_command()
        .arg("events")
        .args(args)
        .args(["--endpoint", endpoint])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        // Dropping the pipe closes it: the command sees end of input.
    }
    let out = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("kizuna did not finish")
        .unwrap();
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// Sends a signal by name with `kill`, since the tests forbid unsafe code.
fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("the child is still running");
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid} failed");
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("no line in time")
        .unwrap()
        .expect("the process closed its stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_with_flags_then_read_the_stream_both_ways() {
    let (server, _dir) = server().await;
    let ep = server.endpoint();
    let id = "0190a1b2-0000-7000-8000-000000000001";
    let append = [
        "append",
        "--stream",
        "lead-1",
        "--type",
        "lead.captured",
        "--data",
        r#"{"name": "Taro", "n": 123456789012345678901234567890}"#,
        "--expected",
        "no-stream",
        "--customer",
        CUSTOMER,
        "--id",
        id,
        "--actor",
        "user:alice",
        "--correlation-id",
        "req-1",
    ];
    let result = &events(&ep, &append, None).await.ok().json()[0];
    assert_eq!(result["stream"], "lead-1");
    assert_eq!(result["first_position"], 0);
    assert_eq!(result["last_version"], 0);
    assert_eq!(result["already_existed"], false);

    // The same id again is an idempotent retry, even with --expected no-stream.
    let retry = &events(&ep, &append, None).await.ok().json()[0];
    assert_eq!(retry["already_existed"], true);
    assert_eq!(retry["first_position"], 0);

    events(
        &ep,
        &[
            "append",
            "--stream",
            "lead-1",
            "--type",
            "lead.scored",
            "--data",
            "5",
            "--expected",
            "0",
        ],
        None,
    )
    .await
    .ok();

    let read = events(&ep, &["read", "--stream", "lead-1"], None)
        .await
        .ok();
    let lines = read.json();
    assert_eq!(lines.len(), 2);
    let e = &lines[0];
    assert_eq!(e["position"], 0);
    assert_eq!(e["version"], 0);
    assert_eq!(e["id"], id);
    assert_eq!(e["type"], "lead.captured");
    assert_eq!(e["schema_version"], 1);
    assert_eq!(e["customer_id"], CUSTOMER);
    assert_eq!(e["metadata"]["actor"], "user:alice");
    assert_eq!(e["metadata"]["correlation_id"], "req-1");
    assert!(e["occurred_at"].as_str().unwrap().ends_with('Z'), "{e}");
    assert_eq!(e["hash"].as_str().unwrap().len(), 64);
    // The payload comes back as JSON, numbers unrounded, keys in their order.
    assert!(
        read.stdout
            .contains(r#""data":{"name":"Taro","n":123456789012345678901234567890}"#),
        "{}",
        read.stdout
    );
    assert_eq!(lines[1]["data"], 5);
    assert_eq!(lines[1]["prev_hash"], e["hash"]);

    let back = events(
        &ep,
        &["read", "--stream", "lead-1", "--backward", "--limit", "1"],
        None,
    )
    .await
    .ok()
    .json();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["version"], 1);
    let from = events(&ep, &["read", "--stream", "lead-1", "--from", "1"], None)
        .await
        .ok()
        .json();
    assert_eq!(from.len(), 1);
    assert_eq!(from[0]["type"], "lead.scored");
    let missing = events(&ep, &["read", "--stream", "lead-404"], None)
        .await
        .ok();
    assert_eq!(missing.stdout, "");

    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_a_batch_from_stdin_then_read_all_with_filters() {
    let (server, _dir) = server().await;
    let ep = server.endpoint();
    let batch = format!(
        r#"{{
            "stream": "lead-7",
            "expected_version": "no-stream",
            "events": [
                {{"type": "lead.captured", "customer_id": "{CUSTOMER}", "data": {{"source": "web"}}}},
                {{"id": "0190a1b2-0000-7000-8000-000000000002", "type": "lead.scored", "data": {{"score": 40}}}}
            ]
        }}"#
    );
    let result = &events(
        &ep,
        &["append", "--stdin", "--actor", "svc:import"],
        Some(&batch),
    )
    .await
    .ok()
    .json()[0];
    assert_eq!(result["first_position"], 0);
    assert_eq!(result["last_position"], 1);
    assert_eq!(result["last_version"], 1);
    events(
        &ep,
        &[
            "append",
            "--stream",
            "ticket-1",
            "--type",
            "ticket.opened",
            "--customer",
            CUSTOMER,
        ],
        None,
    )
    .await
    .ok();

    let all = events(&ep, &["read", "--all"], None).await.ok().json();
    let positions: Vec<_> = all
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2]);
    assert_eq!(all[1]["id"], "0190a1b2-0000-7000-8000-000000000002");
    assert_eq!(all[1]["data"]["score"], 40);
    assert_eq!(all[0]["metadata"]["actor"], "svc:import");

    let leads = events(&ep, &["read", "--all", "--category", "lead"], None)
        .await
        .ok()
        .json();
    assert_eq!(leads.len(), 2);
    assert!(leads.iter().all(|e| e["stream"] == "lead-7"));

    let scored = events(
        &ep,
        &[
            "read",
            "--all",
            "--type",
            "lead.scored",
            "--type",
            "ticket.opened",
        ],
        None,
    )
    .await
    .ok()
    .json();
    let types: Vec<_> = scored.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["lead.scored", "ticket.opened"]);

    let by_customer = events(&ep, &["read", "--all", "--customer", CUSTOMER], None)
        .await
        .ok()
        .json();
    let positions: Vec<_> = by_customer
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [0, 2]);

    let page = events(&ep, &["read", "--all", "--from", "1", "--limit", "1"], None)
        .await
        .ok()
        .json();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["position"], 1);

    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_verify_describe_the_log() {
    let (server, _dir) = server().await;
    let ep = server.endpoint();
    let empty = &events(&ep, &["head"], None).await.ok().json()[0];
    assert_eq!(empty["next_position"], 0);
    assert_eq!(empty["last_hash"], "0".repeat(64));

    for n in 0..3 {
        events(
            &ep,
            &[
                "append",
                "--stream",
                &format!("lead-{n}"),
                "--type",
                "lead.captured",
            ],
            None,
        )
        .await
        .ok();
    }
    let head = &events(&ep, &["head"], None).await.ok().json()[0];
    assert_eq!(head["next_position"], 3);
    let last = events(&ep, &["read", "--all", "--from", "2"], None)
        .await
        .ok()
        .json();
    assert_eq!(head["last_hash"], last[0]["hash"]);

    let report = &events(&ep, &["verify"], None).await.ok().json()[0];
    assert_eq!(report["ok"], true);
    assert_eq!(report["events_checked"], 3);
    assert_eq!(report["first_break"], Value::Null);
    assert_eq!(report["gaps"], Value::Array(vec![]));

    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_refusals_exit_1_with_one_clear_line() {
    let (server, _dir) = server().await;
    let ep = server.endpoint();
    let expect_failure = |run: Run, needle: &str| {
        assert_eq!(
            run.code,
            Some(1),
            "stdout: {} stderr: {}",
            run.stdout,
            run.stderr
        );
        assert_eq!(run.stdout, "");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in {}",
            run.stderr
        );
    };
    let append = ["append", "--stream", "lead-1", "--type", "lead.captured"];

    let bad_uuid = events(
        &ep,
        &[&append[..], &["--customer", "not-a-uuid"]].concat(),
        None,
    )
    .await;
    expect_failure(bad_uuid, "--customer");
    let bad_json = events(&ep, &[&append[..], &["--data", "{oops"]].concat(), None).await;
    expect_failure(bad_json, "--data");
    let bad_batch = events(
        &ep,
        &["append", "--stdin"],
        Some(r#"{"stream": "lead-1", "events": [{"type": "lead.captured", "customer_id": "x", "data": {}}]}"#),
    )
    .await;
    expect_failure(bad_batch, "events[0].customer_id");
    let bad_filter = events(&ep, &["read", "--all", "--customer", "42"], None).await;
    expect_failure(bad_filter, "--customer");

    // Refusals by the server: the gRPC code and the server's message.
    let bad_stream = events(
        &ep,
        &["append", "--stream", "Lead 1", "--type", "lead.captured"],
        None,
    )
    .await;
    expect_failure(bad_stream, "INVALID_ARGUMENT");
    events(&ep, &append, None).await.ok();
    let conflict = events(
        &ep,
        &[&append[..], &["--expected", "no-stream"]].concat(),
        None,
    )
    .await;
    expect_failure(conflict, "ABORTED");

    let nothing_listens = events("http://127.0.0.1:1", &["head"], None).await;
    expect_failure(nothing_listens, "cannot connect to http://127.0.0.1:1");

    // Usage errors are clap's: exit code 2 with usage on stderr.
    let usage = events(&ep, &["read"], None).await;
    assert_eq!(usage.code, Some(2), "{}", usage.stderr);

    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_replays_then_follows_until_ctrl_c() {
    let (server, _dir) = server().await;
    let ep = server.endpoint();
    events(
        &ep,
        &["append", "--stream", "lead-1", "--type", "lead.captured"],
        None,
    )
    .await
    .ok();

    let mut tail = kizuna_command()
        .args([
            "events",
            "tail",
            "--from",
            "0",
            "--category",
            "lead",
            "--endpoint",
            &ep,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    // The history line proves the subscription is open.
    let first: Value = serde_json::from_str(&next_line(&mut lines).await).unwrap();
    assert_eq!(first["position"], 0);

    events(
        &ep,
        &["append", "--stream", "ticket-1", "--type", "ticket.opened"],
        None,
    )
    .await
    .ok();
    events(
        &ep,
        &["append", "--stream", "lead-2", "--type", "lead.captured"],
        None,
    )
    .await
    .ok();
    let live: Value = serde_json::from_str(&next_line(&mut lines).await).unwrap();
    assert_eq!(live["stream"], "lead-2", "the ticket event is filtered out");
    assert_eq!(live["position"], 2);

    signal(&tail, "INT");
    let out = tokio::time::timeout(PATIENCE, tail.wait_with_output())
        .await
        .expect("tail did not stop on Ctrl-C")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    server.shutdown().await.unwrap();
}

/// `kizuna serve` running as a child process.
struct ServeProcess {
    child: Child,
    endpoint: String,
}

async fn spawn_serve(data_dir: &Path) -> ServeProcess {
    let mut child = kizuna_command()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--drain-timeout",
            "600",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = next_line(&mut lines).await;
    let addr = line
        .strip_prefix("kizuna listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert_ne!(addr.port(), 0);
    ServeProcess {
        child,
        endpoint: format!("http://{addr}"),
    }
}

impl ServeProcess {
    /// SIGTERM, then the exit status and stderr.
    async fn terminate(self) -> (std::process::ExitStatus, String) {
        signal(&self.child, "TERM");
        // The drain timeout is 600 s: exiting within PATIENCE shows that
        // shutdown did not wait for it, even with a subscription open.
        let out = tokio::time::timeout(PATIENCE, self.child.wait_with_output())
            .await
            .expect("kizuna serve did not exit after SIGTERM")
            .unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_cleanly_on_sigterm_and_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let serve = spawn_serve(&data).await;
    let appended = &events(
        &serve.endpoint,
        &[
            "append",
            "--stream",
            "lead-1",
            "--type",
            "lead.captured",
            "--data",
            r#"{"kept":true}"#,
        ],
        None,
    )
    .await
    .ok()
    .json()[0];
    assert_eq!(appended["first_position"], 0);

    // A follower must not keep the server from exiting.
    let mut tail = kizuna_command()
        .args([
            "events",
            "tail",
            "--from",
            "0",
            "--endpoint",
            &serve.endpoint,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut tail_lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    next_line(&mut tail_lines).await;

    let (status, stderr) = serve.terminate().await;
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
    assert!(stderr.contains("listening on 127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("event log flushed"), "{stderr}");

    let tail = tokio::time::timeout(PATIENCE, tail.wait_with_output())
        .await
        .expect("tail did not end with the server")
        .unwrap();
    assert_eq!(tail.status.code(), Some(1));
    let tail_err = String::from_utf8_lossy(&tail.stderr);
    assert!(tail_err.contains("UNAVAILABLE"), "{tail_err}");

    let serve = spawn_serve(&data).await;
    let read = events(&serve.endpoint, &["read", "--stream", "lead-1"], None)
        .await
        .ok()
        .json();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["data"]["kept"], true);
    let (status, stderr) = serve.terminate().await;
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_exits_2_and_reads_fail_with_data_loss_on_a_damaged_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = || ServeConfig {
        data_dir: data.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        durability: Durability::Fsync,
        ..ServeConfig::new(data.clone())
    };
    let server = kizuna::start(config()).await.unwrap();
    for n in 0..3 {
        events(
            &server.endpoint(),
            &[
                "append",
                "--stream",
                "customer-7",
                "--type",
                "customer.noted",
                "--data",
                &format!("{{\"note\":\"n{n}\"}}"),
            ],
            None,
        )
        .await
        .ok();
    }
    server.shutdown().await.unwrap();

    // Damage the payload of the event at position 1 below the store (each
    // append above is its own chunk, keyed b'e' + its first position).
    {
        let db = sled::open(&data).unwrap();
        let tree = db.open_tree("log").unwrap();
        let mut key = vec![b'e'];
        key.extend_from_slice(&1u64.to_be_bytes());
        let mut chunk = tree.get(&key).unwrap().unwrap().to_vec();
        let at = chunk.windows(2).position(|w| w == b"n1").unwrap();
        chunk[at] = b'X';
        tree.insert(&key, chunk).unwrap();
        db.flush().unwrap();
    }

    let server = kizuna::start(config()).await.unwrap();
    let verify = events(&server.endpoint(), &["verify"], None).await;
    assert_eq!(verify.code, Some(2), "stderr: {}", verify.stderr);
    let report = &verify.json()[0];
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_break"]["position"], 1);

    let read = events(
        &server.endpoint(),
        &["read", "--stream", "customer-7"],
        None,
    )
    .await;
    assert_eq!(read.code, Some(1));
    assert!(read.stderr.contains("DATA_LOSS"), "{}", read.stderr);
    assert!(
        !read.stdout.contains("X1"),
        "damaged data must never be printed"
    );
    server.shutdown().await.unwrap();
}
