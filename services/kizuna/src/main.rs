//! `kizuna`: parses the command line and hands it to the library.
#![forbid(unsafe_code)]

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    kizuna::run(kizuna::Cli::parse())
}
