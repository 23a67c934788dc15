//! The firewall's plan: the rules' files where the distribution loads
//! them at boot, the unit that loads them enabled, and the load itself.

use super::rules::Ruleset;
use super::{backend, of};
use crate::host::distro::Distro;
use crate::host::root::{Owner, Root};
use crate::input::model::UserData;
use crate::plan::{Action, PlanError};

/// Plan the firewall: its files where the distribution loads them at
/// boot, the unit that loads them enabled, and the load itself (checked
/// only, under `--root`).
pub fn plan(
    ud: &UserData,
    root: &Root,
    distro: &Distro,
    ssh_ports: Vec<u16>,
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, PlanError> {
    if !ud.batten.firewall.enabled {
        notes.push("WARNING: the firewall is off (batten.firewall.enabled: false): every listening port is reachable".into());
        return Ok(Vec::new());
    }
    let (kind, persist) = backend(ud, root, distro)
        .map_err(|e| PlanError::missing(format!("{e}; nothing was changed")))?;
    let rules = Ruleset::from_user_data(ud, ssh_ports.clone());
    let texts = of(kind).render(&rules);
    let mut actions = Vec::new();
    let mut files = Vec::new();
    for (path, which) in &persist.files {
        let text = texts
            .iter()
            .find(|(w, _)| w == which)
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        files.push(path.to_string());
        // The image's own file keeps its owner and mode.
        let owner = root.metadata(path)?.map(|m| m.owner()).unwrap_or(Owner {
            uid: 0,
            gid: 0,
            mode: 0o644,
        });
        let why = format!(
            "default-deny firewall ({}), loaded at boot by {}",
            kind.name(),
            persist.unit
        );
        actions.extend(Action::write_if_changed(
            root,
            path,
            text.into_bytes(),
            owner,
            false,
            &why,
        )?);
    }
    // Load (or, for an image, check) whenever the file changed; on the live
    // system always, since the kernel may hold something else.
    if !actions.is_empty() || root.is_host() {
        actions.push(Action::Firewall {
            kind,
            files,
            ssh_ports,
        });
    }
    match crate::host::systemd::find(root, persist.unit)? {
        None => notes.push(format!(
            "{} is not installed in the root, so nothing loads the firewall at later boots; install {}",
            persist.unit,
            of(kind).boot_package()
        )),
        Some(unit) if !crate::host::systemd::is_enabled(root, &unit)? => {
            for (path, target) in crate::host::systemd::enable_links(&unit) {
                if root.metadata(&path)?.is_none() {
                    actions.push(Action::Symlink { path, target, why: format!("enable {} so the firewall loads at every boot", persist.unit) });
                }
            }
        }
        Some(_) => {}
    }
    Ok(actions)
}
