//! What the pipeline is told on the command line: which root, where the
//! user-data comes from, how to reach a metadata service. The commands in
//! `cli` flatten these into their own options.

use std::path::PathBuf;

use clap::Args;

use crate::host::distro::Family;

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
