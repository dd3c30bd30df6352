//! The `kizuna` binary as a library: `kizuna serve` and the client commands.
//!
//! Everything the binary does lives here so that tests drive the very same
//! code: black-box tests start the real server in-process with [`start`], and
//! `main` only parses arguments and calls [`run`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod call;
pub mod cli;
pub mod client;
mod gate;
pub mod json;
pub mod server;

pub use cli::Cli;
pub use server::{DEFAULT_DRAIN_TIMEOUT, RunningServer, ServeConfig, start};

use cli::Command;
use std::process::ExitCode;
use std::time::Duration;

/// Runs a parsed command line and returns the process's exit code: 0 on
/// success, 1 on any error (printed as one line on stderr), 2 when `events
/// verify` finds the log broken.
pub fn run(cli: Cli) -> ExitCode {
    // The server reports its life at info; a client command stays quiet
    // unless something is wrong, since its stdout is the data.
    let default_filter = match cli.command {
        Command::Serve(_) => "info",
        Command::Events(_) | Command::Call(_) => "warn",
    };
    kizuna_telemetry::init(default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => match server::serve(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            },
            Command::Events(args) => client::run(args).await.unwrap_or_else(|e| {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }),
            Command::Call(args) => run_call(args).await,
        }
    });
    // Tasks left behind after a drain timeout must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn run_call(args: cli::CallArgs) -> ExitCode {
    if args.list {
        for line in call::list_methods() {
            println!("{line}");
        }
        return ExitCode::SUCCESS;
    }
    let request = if args.request == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            eprintln!("error: cannot read stdin: {e}");
            return ExitCode::FAILURE;
        }
        text
    } else {
        args.request
    };
    let method = args.method.unwrap_or_default();
    call::run(&args.endpoint, &method, &request)
        .await
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        })
}
