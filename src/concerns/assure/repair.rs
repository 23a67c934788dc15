//! Repair by the drift timer (`batten.assure.repair: true`): the sealed
//! user-data planned again, and only the steps on what batten owns kept:
//! its own files (every file named for batten: its sshd drop-in, sysctl
//! and modprobe files, nginx sites and password files, units, update
//! settings), the firewall it loads, and the checks and reloads that
//! guard them. Anything else a plan would touch (another package's
//! drop-in, the accounts) is left as it is and named, so a drift caused
//! there is reported again, not papered over.

use crate::concerns::assure::drift::Item;
use crate::plan::Action;

/// Whether `path` is one of batten's own files.
pub fn owned(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.contains("batten")
        || path.starts_with("/etc/ssl/batten/")
        || path == "/etc/apt/apt.conf.d/20auto-upgrades"
}

/// Whether a drifted item is on the loaded firewall: batten's table (or
/// its iptables rules), which only a load puts back.
pub fn on_firewall(id: &str) -> bool {
    id == "firewall" || id.starts_with("firewall.")
}

/// Split a plan's steps into those repair carries out and, in words, the
/// changes it leaves to the owner. The firewall's files (written whole by
/// batten: its ruleset) count as batten's own. The load of the firewall,
/// which a plan for the running system always holds (the kernel may hold
/// anything), is kept only when `firewall_drifted` or one of its files is
/// rewritten: otherwise every drift, even one in a file batten does not
/// own, would reload the firewall and record a run each timer period.
pub fn split(actions: Vec<Action>, firewall_drifted: bool) -> (Vec<Action>, Vec<String>) {
    let firewall_files: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Firewall { files, .. } => Some(files.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let ours = |path: &str| owned(path) || firewall_files.iter().any(|f| f == path);
    let rewrites_firewall = actions.iter().any(|a| match a {
        Action::Write { path, .. } | Action::Remove { path, .. } | Action::Symlink { path, .. } => {
            firewall_files.iter().any(|f| f == path)
        }
        _ => false,
    });
    let mut kept = Vec::new();
    let mut left = Vec::new();
    for action in actions {
        match &action {
            Action::Write { path, .. }
            | Action::Remove { path, .. }
            | Action::Symlink { path, .. } => {
                if ours(path) {
                    kept.push(action);
                } else {
                    left.push(path.clone());
                }
            }
            Action::Firewall { .. } => {
                if firewall_drifted || rewrites_firewall {
                    kept.push(action);
                }
            }
            Action::CheckConfig(_)
            | Action::ProveKeyLogin { .. }
            | Action::Reload { .. }
            | Action::LoadSysctl { .. }
            | Action::RestartUnits { .. } => kept.push(action),
            other => left.push(format!("{other:?}").chars().take(80).collect()),
        }
    }
    // Checks and reloads guard changes; with none kept, nothing is run.
    let changes = kept.iter().any(|a| {
        matches!(
            a,
            Action::Write { .. }
                | Action::Remove { .. }
                | Action::Symlink { .. }
                | Action::Firewall { .. }
        )
    });
    if !changes {
        kept.clear();
    }
    (kept, left)
}

/// Which drifted items a repair is for: those no earlier repair was tried
/// on (`tried`: each as [`tried_key`] names it). A drift repair could not
/// undo (a file it does not own, a listener, a rule another table adds)
/// is tried once when it appears, then only reported: never a new run
/// every timer period.
pub fn untried<'a>(items: &'a [Item], tried: &[String]) -> Vec<&'a Item> {
    items
        .iter()
        .filter(|i| !tried.contains(&tried_key(i)))
        .collect()
}

/// How an item a repair was tried on is remembered: its id and since
/// when it drifted (the same id drifting again later is tried again).
pub fn tried_key(item: &Item) -> String {
    format!("{}@{}", item.id, item.since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_batten_s_own_files_and_their_guards() {
        for (path, own) in [
            ("/etc/ssh/sshd_config.d/00-batten.conf", true),
            ("/etc/sysctl.d/zz-batten.conf", true),
            ("/etc/nginx/sites-available/batten-80", true),
            ("/etc/ssl/batten/batten-80.key", true),
            ("/etc/apt/apt.conf.d/20auto-upgrades", true),
            ("/etc/ssh/sshd_config.d/00-a-oops.conf", false),
            ("/etc/ssh/sshd_config", false),
            ("/etc/sudoers.d/90-cloud-init-users", false),
        ] {
            assert_eq!(owned(path), own, "{path}");
        }
        let write = |path: &str| Action::Remove {
            path: path.into(),
            why: String::new(),
        };
        let (kept, left) = split(
            vec![
                write("/etc/ssh/sshd_config.d/00-a-oops.conf"),
                Action::CheckConfig(crate::host::daemon::Daemon::Sshd),
            ],
            false,
        );
        assert!(kept.is_empty(), "a check alone guards nothing: {kept:?}");
        assert_eq!(left, ["/etc/ssh/sshd_config.d/00-a-oops.conf"]);
        let (kept, _) = split(
            vec![
                write("/etc/sysctl.d/zz-batten.conf"),
                Action::LoadSysctl {
                    path: "/etc/sysctl.d/zz-batten.conf".into(),
                },
            ],
            false,
        );
        assert_eq!(kept.len(), 2);
    }

    fn load() -> Action {
        Action::Firewall {
            kind: crate::plan::FirewallKind::Nftables,
            files: vec!["/etc/nftables.conf".into()],
            ssh_ports: vec![22],
        }
    }

    #[test]
    fn the_live_plans_firewall_load_alone_is_no_repair() {
        // A plan for the running system always loads the firewall; a drift
        // elsewhere (someone else's drop-in) must not make it a run.
        let foreign = Action::Remove {
            path: "/etc/ssh/sshd_config.d/00-a-oops.conf".into(),
            why: String::new(),
        };
        let (kept, left) = split(vec![foreign.clone(), load()], false);
        assert!(kept.is_empty(), "{kept:?}");
        assert_eq!(left, ["/etc/ssh/sshd_config.d/00-a-oops.conf"]);
        // The firewall drifted: the load is the repair.
        let (kept, _) = split(vec![foreign, load()], true);
        assert!(
            matches!(kept.as_slice(), [Action::Firewall { .. }]),
            "{kept:?}"
        );
        // batten's ruleset file edited: written back and loaded.
        let file = Action::Remove {
            path: "/etc/nftables.conf".into(),
            why: String::new(),
        };
        let (kept, left) = split(vec![file, load()], false);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_drift_repair_could_not_undo_is_tried_once() {
        let item = |id: &str, since: &str| Item {
            id: id.into(),
            kind: crate::concerns::assure::drift::Kind::Drifted,
            what: String::new(),
            was: None,
            now: String::new(),
            since: since.into(),
        };
        let items = vec![
            item("firewall.accepts", "T1"),
            item("sockets.tcp.0.0.0.0:7777", "T1"),
        ];
        assert_eq!(untried(&items, &[]).len(), 2);
        let tried: Vec<String> = items.iter().map(tried_key).collect();
        assert!(untried(&items, &tried).is_empty());
        // The same check drifting anew (a later since) is tried again.
        let again = vec![item("firewall.accepts", "T9")];
        assert_eq!(untried(&again, &tried).len(), 1);
    }
}
