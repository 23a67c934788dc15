//! batten's entry point: parse the command line, set up logging, run one
//! command, exit with its code.

use std::process::ExitCode;

use batten::cli::{Cli, Commands};
use batten::commands;
use batten::exit::{Code, Failure};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result: Result<Code, Failure> = match &cli.command {
        Commands::Validate {
            files,
            meta_data,
            format,
        } => commands::validate(files, meta_data.as_deref(), *format),
        Commands::Plan { root, source } => commands::plan(root, source),
        Commands::Run {
            root,
            source,
            force,
            metadata,
        } => commands::run(root, source, *force, metadata),
        Commands::Status { root, format } => commands::status(root, *format),
        Commands::Verify { root, seal, format } => commands::verify(root, *seal, *format),
        Commands::Install { root, generalize } => commands::install(root, *generalize),
        Commands::Rearm { root } => commands::rearm(root),
        Commands::Schema => commands::schema(),
        Commands::Manual => commands::manual(),
        Commands::RenderJinja => commands::render_jinja(),
    };
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
