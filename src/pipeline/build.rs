//! The plan: every concern's part, computed from the validated user-data
//! and what the root holds now, in the order it is applied.
//!
//! Planning reads the root (its files, accounts, sshd's effective config)
//! but never changes it; all it reads comes through the `Root` it is
//! handed, so a plan is computed the same for a scratch root in a test.

use crate::concerns::Planning;
use crate::concerns::accounts::{self, Accounts};
use crate::concerns::ssh::HostKeysOwner;
use crate::concerns::ssh::crypto::SshdFacts;
use crate::exit::{Code, Failure};
use crate::host::distro::Distro;
use crate::host::root::Root;
use crate::input::Loaded;
use crate::input::jinja::InstanceData;
use crate::input::sources::Found;
use crate::plan::{Action, Plan};
use crate::state::{self, INSTANCE_DATA_COPY, USER_DATA_COPY};

/// The plan: pure computation from the validated user-data and the root
/// (and what the root's sshd was found to support, asked beforehand).
#[allow(clippy::too_many_arguments)]
pub fn build_plan(
    root: &Root,
    distro: &Distro,
    accounts: &Accounts,
    loaded: &Loaded,
    found: &Found,
    instance_data: &InstanceData,
    host_keys: HostKeysOwner,
    sshd: &SshdFacts,
) -> Result<Plan, Failure> {
    let ud = &loaded.user_data;
    let mut notes = vec![format!(
        "{} ({:?} family)",
        distro.pretty_name, distro.family
    )];
    if !ud.left_to_cloud_init.is_empty() {
        notes.push(format!(
            "left to cloud-init: {}",
            ud.left_to_cloud_init.join(", ")
        ));
    }
    if !loaded.other_parts.is_empty() {
        notes.push(format!(
            "batten does not read {} (cloud-init runs them): users, keys and settings in them are not batten's",
            loaded.other_parts.join(", ")
        ));
    }
    notes.extend(crate::input::pi_os::notes(root));
    let users = accounts::resolve_users(ud, root, distro, &mut notes);
    let ssh_ports = crate::concerns::ssh::listening_ports(root, ud)?;
    let mut actions: Vec<Action> = Vec::new();
    // Kept first: the original, before the card concern takes the
    // secrets out of a seed on the boot partition.
    actions.extend(
        Action::write_if_changed(
            root,
            USER_DATA_COPY,
            found.user_data.clone(),
            state::private_owner(0o600),
            true,
            "keep the user-data this run acted on, readable by root only",
        )
        .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?,
    );
    for concern in crate::concerns::ALL {
        let cx = Planning {
            user_data: ud,
            users: &users,
            accounts,
            root,
            distro,
            host_keys: host_keys.clone(),
            ssh_ports: &ssh_ports,
            planned: &actions,
            seed: found,
            sshd,
            hostname: instance_data.local_hostname(),
        };
        let planned = (concern.plan)(&cx, &mut notes)?;
        log::debug!("{}: {} steps planned", concern.name, planned.len());
        actions.extend(planned);
    }

    if !loaded.rendered.is_empty() {
        notes.push(format!(
            "rendered the jinja template in {} with this instance's data",
            loaded.rendered.join(", ")
        ));
        // verify renders the template again exactly as this run did.
        let json = serde_json::to_vec_pretty(&instance_data.to_json()).unwrap_or_default();
        actions.extend(
            Action::write_if_changed(
                root,
                INSTANCE_DATA_COPY,
                json,
                state::private_owner(0o600),
                true,
                "keep the instance data the jinja template was rendered with, readable by root only",
            )
            .map_err(|e| Failure::new(Code::ApplyFailed, e.to_string()))?,
        );
    }
    // Every file first; then the daemons' own checks (the firewall already
    // accepts sshd's new port); the reloads last of all, so nothing that
    // could still fail comes after a daemon took the new settings (the
    // kernel's sysctls and units started now are such steps too).
    actions.sort_by_key(|a| match a {
        Action::CheckConfig(_) | Action::ProveKeyLogin { .. } => 1,
        Action::Reload { .. }
        | Action::LoadSysctl { .. }
        | Action::StartUnits { .. }
        | Action::RestartUnits { .. } => 2,
        _ => 0,
    });
    Ok(Plan { actions, notes })
}
