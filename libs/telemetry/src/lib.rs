//! Logging setup shared by every kizuna binary.
//!
//! One function so that every process logs the same way: human-readable lines
//! on stderr (stdout is kept for a command's machine-readable output), filtered
//! by `RUST_LOG` with a per-binary default. Exporting traces and metrics over
//! OpenTelemetry will be added here too, so that binaries keep calling only
//! [`init`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Environment variable that overrides the default filter, in
/// `tracing-subscriber`'s `EnvFilter` syntax (e.g. `info,kizuna_eventlog=debug`).
pub const FILTER_ENV: &str = "RUST_LOG";

/// Installs the global tracing subscriber: formatted lines on stderr, filtered
/// by `RUST_LOG` or, when it is unset or invalid, by `default_filter`
/// (e.g. `"info"`).
///
/// Safe to call more than once (a test harness and a binary may both call it):
/// only the first call installs a subscriber. Returns whether this call did.
pub fn init(default_filter: &str) -> bool {
    let env_value = std::env::var(FILTER_ENV).ok();
    let (filter, rejected) = match env_value.as_deref().map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, None),
        Some(Err(e)) => (EnvFilter::new(default_filter), Some(e)),
        None => (EnvFilter::new(default_filter), None),
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads them, not in files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .is_ok();
    if let (true, Some(e)) = (installed, rejected) {
        tracing::warn!(
            error = %e,
            default = default_filter,
            "{FILTER_ENV} is not a valid filter; using the default"
        );
    }
    installed
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_init_is_harmless() {
        super::init("debug");
        assert!(!super::init("info"), "only one subscriber can be installed");
        tracing::info!("still logging");
    }
}
