//! Starting the real `kizuna` binary as a child process, shared by the
//! process-level tests (crash, roles, README tour).

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Upper bound of the wait for a child to listen; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(60);

/// Spawns `kizuna serve --listen 127.0.0.1:0 <args>` (killed when dropped)
/// and waits for it to print `kizuna listening on ADDR`; returns the child
/// and its endpoint URL. stdout keeps being drained so the child never
/// blocks on a full pipe.
pub async fn spawn_serve<I, S>(args: I) -> (Child, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(env!("CARGO_BIN_EXE_kizuna"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn kizuna serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(PATIENCE, async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("read server stdout")
                .expect("server exited before it listened");
            if let Some(addr) = line.strip_prefix("kizuna listening on ") {
                break addr.trim().to_owned();
            }
        }
    })
    .await
    .expect("the server starts listening");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{addr}"))
}
