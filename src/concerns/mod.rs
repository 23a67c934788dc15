//! What batten hardens, one folder per concern. Each plans its part of the
//! desired state from the validated user-data and the root (`plan.rs`),
//! carries out the steps that are its own (`apply.rs`), and checks the
//! result on the machine (`verify.rs`).
//!
//! A new concern is a new folder and one line in [`ALL`]: the pipeline
//! plans every concern in that order, and `verify` checks every one.

pub mod accounts;
pub mod assure;
pub mod card;
pub mod cloud_init;
pub mod firewall;
pub mod kernel;
pub mod passwords;
pub mod proxy;
pub mod report;
pub mod ssh;
pub mod updates;

use crate::host::distro::Distro;
use crate::host::root::Root;
use crate::input::model::{UserData, UserSpec};
use crate::input::sources::Found;
use crate::plan::{Action, PlanError};

pub use report::{Inputs, Report};

/// Everything a concern's plan reads. Planning reads the root (its files,
/// accounts, sshd's configuration) through `root` and never changes it,
/// so a plan is computed the same for a scratch root in a test.
pub struct Planning<'a> {
    /// The validated user-data (top-level keys include the provider's).
    pub user_data: &'a UserData,
    /// The accounts of the user-data, merged as cloud-init merges them.
    pub users: &'a [UserSpec],
    /// The root's accounts as they are now.
    pub accounts: &'a accounts::Accounts,
    /// The root.
    pub root: &'a Root,
    /// Its distribution.
    pub distro: &'a Distro,
    /// Whose the host keys in the root are, as batten recorded them.
    pub host_keys: ssh::HostKeysOwner,
    /// The ports sshd listens on once batten is done.
    pub ssh_ports: &'a [u16],
    /// What the concerns before this one planned (a home `useradd` makes
    /// may receive keys).
    pub planned: &'a [Action],
    /// Where the user-data came from, and its bytes.
    pub seed: &'a Found,
    /// What the image's sshd supports (asked before planning, so the plan
    /// itself runs nothing).
    pub sshd: &'a ssh::crypto::SshdFacts,
    /// The host name the instance's meta-data gives, which cloud-init sets,
    /// else the image's /etc/hostname (the proxy's made certificates carry
    /// it). As read, not validated: what puts it in a file checks it first
    /// (`proxy::tls::machine_names` with the server-name grammar).
    pub hostname: Option<&'a str>,
}

impl Planning<'_> {
    /// Homes an earlier step of the plan makes.
    pub fn homes_made(&self) -> Vec<String> {
        self.planned
            .iter()
            .filter_map(|a| match a {
                Action::MakeHome { home, .. } => Some(home.clone()),
                _ => None,
            })
            .collect()
    }
}

/// One thing batten hardens: how it plans its part, and how it checks it.
pub struct Concern {
    /// Its name, for messages.
    pub name: &'static str,
    /// Its part of the plan; `notes` hears what the owner should know.
    pub plan: fn(&Planning, &mut Vec<String>) -> Result<Vec<Action>, PlanError>,
    /// Check its part on the machine (only the static checks for an
    /// image), a line per check in the report.
    pub verify: fn(&Inputs, &mut Report),
}

/// Every concern, in the order the plan holds their steps: accounts first
/// (a home must exist before keys go into it), the firewall before the
/// proxy it opens ports for, the default passwords after the accounts'
/// own passwords (which they leave alone).
pub const ALL: &[Concern] = &[
    Concern {
        name: "accounts",
        plan: |cx, notes| accounts::plan_users(cx.users, cx.accounts, cx.root, notes),
        verify: accounts::verify::verify,
    },
    Concern {
        name: "ssh",
        plan: ssh::plan_part,
        verify: ssh::verify::verify,
    },
    Concern {
        name: "firewall",
        plan: |cx, notes| {
            firewall::plan(
                cx.user_data,
                cx.root,
                cx.distro,
                cx.ssh_ports.to_vec(),
                notes,
            )
        },
        verify: firewall::verify::verify,
    },
    Concern {
        name: "kernel",
        plan: |cx, notes| kernel::plan(cx.user_data, cx.root, notes),
        verify: kernel::verify::verify,
    },
    Concern {
        name: "proxy",
        plan: proxy::plan,
        verify: proxy::verify::verify,
    },
    Concern {
        name: "passwords",
        plan: passwords::plan,
        verify: passwords::verify::verify,
    },
    Concern {
        name: "updates",
        plan: |cx, notes| updates::plan(cx.user_data, cx.root, cx.distro, notes),
        verify: updates::verify::verify,
    },
    Concern {
        name: "cloud-init",
        plan: |cx, notes| {
            Ok(cloud_init::plan(cx.root, cx.user_data, notes)?
                .into_iter()
                .collect())
        },
        // Nothing to check live: cloud-init reads the drop-in at boot.
        verify: |_, _| {},
    },
    Concern {
        name: "assure",
        plan: |cx, _| assure::plan::plan(cx.user_data, cx.root),
        verify: assure::plan::verify,
    },
    Concern {
        name: "card",
        plan: card::plan,
        verify: card::verify,
    },
];
