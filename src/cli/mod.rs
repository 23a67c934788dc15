//! The command line: one file per command, each a clap struct with a
//! `run()` that calls the pipeline and prints what people and scripts read.
//! `main.rs` only parses, sets up logging and exits with the code.

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

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::{Code, Failure};
use crate::host::distro::Family;

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

/// Options shared by every command that works on a system.
#[derive(Debug, Args)]
pub struct RootArgs {
    /// Work on the system mounted at DIR (an image, a rescue mount) instead
    /// of the running one: files are written and checked, nothing is reloaded.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The distribution family, when the root's /etc/os-release does not
    /// tell batten.
    #[arg(long, value_enum, value_name = "FAMILY")]
    pub family: Option<Family>,
}

/// Where the user-data comes from, when not from the usual places.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Read user-data from FILE (`-` for standard input) instead of
    /// searching the seed locations.
    #[arg(long, value_name = "FILE|-")]
    pub user_data: Option<PathBuf>,
    /// Read meta-data (instance-id) from FILE.
    #[arg(long, value_name = "FILE")]
    pub meta_data: Option<PathBuf>,
}

/// The network metadata service, for VPS and clouds with no seed disk.
#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// Fetch user-data, instance-id and the owner's SSH keys from the cloud
    /// provider's metadata service (169.254.169.254) instead of a local
    /// seed. The provider is recognised from DMI and the kernel command line.
    #[arg(long, conflicts_with_all = ["user_data", "meta_data"])]
    pub from_metadata: bool,
    /// The provider, when DMI and the command line do not tell (implies
    /// --from-metadata).
    #[arg(long, value_enum, value_name = "NAME", conflicts_with_all = ["user_data", "meta_data"])]
    pub provider: Option<crate::metadata::Kind>,
    /// Read DMI strings from DIR instead of /sys/class/dmi/id (tests).
    #[arg(long, value_name = "DIR", hide = true)]
    pub dmi_dir: Option<PathBuf>,
    /// The most seconds the metadata service may take in all (tests; the
    /// default is 60).
    #[arg(long, value_name = "SECONDS", hide = true, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub metadata_budget: Option<u64>,
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
            Commands::Schema => schema::run(),
            Commands::Manual => manual::run(),
            Commands::RenderJinja => render_jinja::run(),
        }
    }
}
