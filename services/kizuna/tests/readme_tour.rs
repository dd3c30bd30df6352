//! The README's call example and five-minute tour, run as written against a
//! fresh `kizuna serve`, so the README cannot drift from what the binary does.
//!
//! The blocks are taken from README.md itself; `kizuna` is bound to the
//! freshly built binary pointed at the test server. The tour shows three
//! refusals on purpose (a bad e-mail, a forbidden status move, a coupon shown
//! twice); everything
//! else must succeed, and the log must verify at the end.

use tokio::process::Command;

mod support;

fn shell_blocks(markdown: &str) -> Vec<&str> {
    markdown
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .collect()
}

#[tokio::test]
async fn the_readme_tour_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("read README.md");
    let blocks = shell_blocks(&readme);
    let call = blocks
        .iter()
        .find(|b| b.contains("alias kizuna=") && b.contains("kizuna call"))
        .expect("the Run it call example");
    let tour = blocks
        .iter()
        .find(|b| b.contains("LEAD=") && b.contains("kizuna events verify"))
        .expect("the tour");

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (mut server, endpoint) = support::spawn_serve([
        std::ffi::OsStr::new("--durability"),
        std::ffi::OsStr::new("none"),
        std::ffi::OsStr::new("--data-dir"),
        data.as_os_str(),
    ])
    .await;
    let addr = endpoint.trim_start_matches("http://");

    let script = format!(
        "kizuna() {{ local sub=$1; shift; '{bin}' \"$sub\" --endpoint {addr} \"$@\"; }}\n{call}\n{tour}",
        bin = env!("CARGO_BIN_EXE_kizuna"),
        call = call.replace("alias kizuna=", "# alias kizuna="),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");

    assert!(
        out.status.success(),
        "the tour's last command failed\n{context}"
    );
    assert!(
        stdout.contains("\"replayed\":true"),
        "the retried capture\n{context}"
    );
    assert!(
        stdout.contains("\"phone\":\"+819012345678\""),
        "normalised phone\n{context}"
    );
    assert!(
        stdout.contains("\"customer.registered\""),
        "the conversion\n{context}"
    );
    assert!(
        stdout.contains("\"TICKET_STATUS_OPEN\""),
        "the reopened ticket\n{context}"
    );
    assert!(
        stdout.contains("\"loyalty.tier_changed\"") && stdout.contains("\"points_earned\":\"320\""),
        "the purchase earning points and a tier\n{context}"
    );
    assert!(
        stdout.contains("\"coupon.issued\"") && stdout.contains("\"balance\":\"220\""),
        "the reward claim\n{context}"
    );
    assert!(
        stdout.contains("\"OUTREACH_SUPPRESSION_REASON_CONFLICTING_OFFER\""),
        "the suppressed campaign send\n{context}"
    );
    assert!(stdout.contains("\"ok\":true"), "verify\n{context}");
    // Exactly the three refusals the tour shows, each as JSON on stderr.
    let refusals: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("{\"code\""))
        .collect();
    assert_eq!(refusals.len(), 3, "{context}");
    assert!(
        refusals[0].contains("\"field\":\"contact.email\""),
        "{context}"
    );
    assert!(
        refusals[1].contains("INVALID_STATUS_TRANSITION"),
        "{context}"
    );
    assert!(refusals[2].contains("COUPON_ALREADY_REDEEMED"), "{context}");
    assert!(!stderr.contains("error:"), "{context}");
    server.kill().await.expect("stop the server");
}
