//! batten's entry point: parse the command line, set up logging, run one
//! command, exit with its code.

use std::process::ExitCode;

use batten::cli::Cli;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = cli.command.run();
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(failure) => {
            eprintln!("batten: {failure}");
            ExitCode::from(failure.code as u8)
        }
    }
}

/// Log to stderr at `info` unless RUST_LOG says otherwise; under systemd
/// (which sets INVOCATION_ID) without timestamps, since the journal adds them.
fn init_logging() {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if std::env::var_os("INVOCATION_ID").is_some() {
        builder.format_timestamp(None);
    }
    builder.format_target(false).init();
}
