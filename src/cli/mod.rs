//! The command line: one file per command, each a clap struct with a
//! `run()` that calls the pipeline and prints what people and scripts read.
//! `main.rs` only parses, sets up logging and exits with the code.

pub mod acme;
pub mod drift;
pub mod install;
pub mod manual;
pub mod plan;
pub mod rearm;
pub mod render_jinja;
pub mod run;
pub mod schema;
pub mod status;
pub mod validate;
pub mod verify;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::pipeline::options::{MetadataArgs, RootArgs, SourceArgs};

use crate::exit::{Code, Failure};

/// batten hardens a server on its first boot: fresh SSH host keys, the
/// owners' keys installed, password logins off, a default-deny firewall, web
/// panels behind an authenticating proxy, all verified. It reads the same
/// cloud-init user-data as cloud-init.
#[derive(Debug, Parser)]
#[command(name = "batten", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do; every invocation names one command.
    #[command(subcommand)]
    pub command: Commands,
}

const AFTER_HELP: &str = "\
Typical use:
  batten validate user-data.yaml          check a file before you flash or upload it
  batten plan --root /mnt/image           see what batten would change in an image
  batten run                              what batten.service runs at first boot

Exit codes: 0 ok or nothing to do, 1 verification failed, 2 usage, 65 invalid
user-data (nothing changed), 69 a required program is missing, 70 apply failed.
Logging: RUST_LOG=debug for more detail.";

/// Output format for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for people.
    #[default]
    Human,
    /// One JSON document, for scripts and monitoring.
    Json,
}

/// batten's commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Check user-data files and report every problem with its line and
    /// column. Changes nothing. Exit 65 when a file is invalid.
    Validate(validate::Validate),
    /// Show, as a unified diff, every file batten would write and every
    /// command it would run. Writes nothing.
    Plan(plan::Plan),
    /// Find the user-data, validate it, and apply it. A machine already
    /// sealed under the same instance-id is left alone (exit 0) unless
    /// --force is given.
    Run(run::Run),
    /// Check the result on the real daemons and the loaded ruleset (with
    /// --root: the static checks only) and report each check. Exit 1 when
    /// one failed. --seal then records this instance as done and switches
    /// the first-boot unit off, only if nothing failed.
    Verify(verify::Verify),
    /// Show batten's state: instance-id, seal, the last runs, and where
    /// user-data would be read from.
    Status(status::Status),
    /// Bake batten into an image mounted at --root: the binary in
    /// /usr/local/sbin, batten.service, its enable link. With --generalize
    /// every machine made from the image starts new: host keys removed,
    /// /etc/machine-id emptied, batten's state and generated passwords gone.
    Install(install::Install),
    /// Make the next boot run batten again (a clone, or recovery): the
    /// unit's enable link back, the seal cleared.
    Rearm(rearm::Rearm),
    /// Obtain or renew the ACME certificates of proxy sites that name a
    /// domain (`tls: {acme: ...}`), with certbot over HTTP-01, and put them
    /// in place (what batten-acme.service and its timer run). The running
    /// system only. Exit 70 when a site got no certificate; it keeps the
    /// one it serves.
    Acme(acme::Acme),
    /// Print the JSON Schema (draft 2020-12) of the user-data batten accepts.
    Schema,
    /// Print batten's manual page, batten(8), as roff: every command and
    /// option, exit codes, files per distribution, safety rules, how batten
    /// differs from cloud-init. `batten manual > batten.8 && man ./batten.8`
    /// reads it from a checkout; `install` puts it into the image.
    Manual,
    /// Render one jinja template for batten itself, in a child with its
    /// memory and CPU limited (JSON in on stdin, the text out).
    #[command(hide = true)]
    RenderJinja,
}

impl Commands {
    /// Run the command; the exit code it ends with.
    pub fn run(&self) -> Result<Code, Failure> {
        match self {
            Commands::Validate(c) => c.run(),
            Commands::Plan(c) => c.run(),
            Commands::Run(c) => c.run(),
            Commands::Verify(c) => c.run(),
            Commands::Status(c) => c.run(),
            Commands::Install(c) => c.run(),
            Commands::Rearm(c) => c.run(),
            Commands::Acme(c) => c.run(),
            Commands::Schema => schema::run(),
            Commands::Manual => manual::run(),
            Commands::RenderJinja => render_jinja::run(),
        }
    }
}
