//! The firewall's plan: the rules' files where the distribution loads
//! them at boot, the unit that loads them enabled, and the load itself.

use super::rules::Ruleset;
use super::{backend, of};
use crate::host::distro::Distro;
use crate::host::root::{Owner, Root};
use crate::input::model::UserData;
use crate::plan::{Action, PlanError};

/// Where the firewall keeps the other packet filter's modules from loading
/// at boot (the kernel concern's `60-batten.conf` is for protocols).
pub const MODPROBE_FILE: &str = "/etc/modprobe.d/60-batten-firewall.conf";

/// The modprobe file for `modules` ([`super::Backend::unused_modules`]):
/// `blacklist`, which systemd's own early load honours (it probes with
/// kmod's blacklist applied), while `modprobe ip_tables` by name, as
/// iptables-legacy and container runtimes load it, still works. Not
/// `install ... /bin/false`: whoever really needs the module gets it.
pub fn modprobe_text(modules: &[&str]) -> String {
    let mut out = String::from(
        "# Written by batten: the firewall is nftables. systemd loads the legacy\n\
         # ip_tables module at every boot, where it holds no rule and Lynis\n\
         # FIRE-4502/FIRE-4512 takes it for an empty iptables firewall. A program\n\
         # that needs it (iptables-legacy) still loads it by name.\n",
    );
    for m in modules {
        out.push_str(&format!("blacklist {m}\n"));
    }
    out
}

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
    let unused = of(kind).unused_modules();
    if !unused.is_empty() {
        actions.extend(Action::write_if_changed(
            root,
            MODPROBE_FILE,
            modprobe_text(unused).into_bytes(),
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o644,
            },
            false,
            "the legacy iptables module, unused beside nftables, not loaded at boot (Lynis FIRE-4512)",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    fn written(backend: &str, tools: &[(&str, &str)]) -> Vec<String> {
        let mut files = vec![("/etc/os-release", "ID=debian\n")];
        files.extend_from_slice(tools);
        let (_d, root) = scratch_root(&files);
        let distro = Distro::detect(&root, None).unwrap();
        let text = format!("#cloud-config\nbatten:\n  firewall: {{backend: {backend}}}\n");
        let ud = crate::input::load("u", text.as_bytes()).unwrap().user_data;
        plan(&ud, &root, &distro, vec![22], &mut Vec::new())
            .unwrap()
            .into_iter()
            .filter_map(|a| match a {
                Action::Write { path, .. } => Some(path),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn beside_nftables_the_legacy_module_is_kept_from_loading_at_boot() {
        // Lynis FIRE-4512: systemd's early load of ip_tables is what it saw.
        let tools = [
            ("/usr/sbin/nft", "#!/bin/sh\n"),
            ("/usr/sbin/iptables-restore", "#!/bin/sh\n"),
            ("/usr/sbin/ip6tables-restore", "#!/bin/sh\n"),
        ];
        assert_eq!(
            written("nftables", &tools),
            ["/etc/nftables.conf", MODPROBE_FILE]
        );
        // iptables-legacy needs it: nothing is written for that backend.
        assert_eq!(
            written("iptables", &tools),
            ["/etc/iptables/rules.v4", "/etc/iptables/rules.v6"]
        );
        assert_eq!(
            modprobe_text(&["ip_tables"])
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            ["blacklist ip_tables"],
            "blacklisted only: `modprobe ip_tables` by name still loads it"
        );
    }
}
