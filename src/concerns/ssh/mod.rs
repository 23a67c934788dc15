//! SSH: fresh host keys, the owners' keys, and password login off on the
//! configuration sshd really uses.
//!
//! `plan` turns the validated user-data and the root's current files into
//! actions; it refuses (safety rule 1) to switch password login off unless
//! at least one account that sshd lets in ends up with a key.

pub mod apply;
pub mod authorized_keys;
pub mod crypto;

pub mod host_keys;
pub mod plan;
pub mod query_cache;

pub mod sshd_config;

pub mod verify;

pub use apply::{apply_host_keys, prove_key_login};
pub use plan::{listening_ports, plan, plan_missing_host_keys, root_login, settings};

use crate::concerns::accounts::Accounts;
use crate::host::distro::Distro;
use crate::host::root::Root;
use crate::input::model::{UserData, UserSpec};
use crate::plan::{Action, PlanError};

/// Everything the SSH plan reads.
pub struct Inputs<'a> {
    /// The validated user-data (top-level keys include the provider's).
    pub user_data: &'a UserData,
    /// Accounts after cloud-init's merging rules.
    pub users: &'a [UserSpec],
    /// The root's accounts as they are now.
    pub accounts: &'a Accounts,
    /// The root.
    pub root: &'a Root,
    /// Its distribution.
    pub distro: &'a Distro,
    /// Whose the host keys in the root are, as batten recorded them.
    pub host_keys: HostKeysOwner,
    /// Homes an earlier step of the plan makes, so keys may go there.
    pub homes_made: &'a [String],
    /// What the image's sshd supports, for the crypto policy.
    pub sshd: &'a crypto::SshdFacts,
}

/// Whose the SSH host keys in the root are. Keys baked into an image are
/// shared by every machine made from it and must go; keys batten made on
/// this machine are its identity and stay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeysOwner {
    /// Not known to be this machine's: the image's, or another instance's.
    Image,
    /// The keys (private key paths) the baseline made in this boot, before
    /// any instance was known; the others may be the image's.
    ThisBoot(Vec<String>),
    /// Made by batten for this instance.
    ThisInstance,
}

/// SSH's part of the plan, from what every concern's plan reads.
pub fn plan_part(cx: &super::Planning, notes: &mut Vec<String>) -> Result<Vec<Action>, PlanError> {
    let homes_made = cx.homes_made();
    let inputs = Inputs {
        user_data: cx.user_data,
        users: cx.users,
        accounts: cx.accounts,
        root: cx.root,
        distro: cx.distro,
        host_keys: cx.host_keys.clone(),
        homes_made: &homes_made,
        sshd: cx.sshd,
    };
    plan(&inputs, notes)
}
