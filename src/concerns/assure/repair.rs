//! Repair by the drift timer (`batten.assure.repair: true`): the sealed
//! user-data planned again, and only the steps on what batten owns kept:
//! its own files (every file named for batten: its sshd drop-in, sysctl
//! and modprobe files, nginx sites and password files, units, update
//! settings), the firewall it loads, and the checks and reloads that
//! guard them. Anything else a plan would touch (another package's
//! drop-in, the accounts) is left as it is and named, so a drift caused
//! there is reported again, not papered over.

use crate::plan::Action;

/// Whether `path` is one of batten's own files.
pub fn owned(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.contains("batten")
        || path.starts_with("/etc/ssl/batten/")
        || path == "/etc/apt/apt.conf.d/20auto-upgrades"
}

/// Split a plan's steps into those repair carries out and, in words, the
/// changes it leaves to the owner.
pub fn split(actions: Vec<Action>) -> (Vec<Action>, Vec<String>) {
    let mut kept = Vec::new();
    let mut left = Vec::new();
    for action in actions {
        match &action {
            Action::Write { path, .. }
            | Action::Remove { path, .. }
            | Action::Symlink { path, .. } => {
                if owned(path) {
                    kept.push(action);
                } else {
                    left.push(path.clone());
                }
            }
            Action::Firewall { .. }
            | Action::CheckConfig(_)
            | Action::ProveKeyLogin { .. }
            | Action::Reload { .. }
            | Action::LoadSysctl { .. } => kept.push(action),
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
        let (kept, left) = split(vec![
            write("/etc/ssh/sshd_config.d/00-a-oops.conf"),
            Action::CheckConfig(crate::host::daemon::Daemon::Sshd),
        ]);
        assert!(kept.is_empty(), "a check alone guards nothing: {kept:?}");
        assert_eq!(left, ["/etc/ssh/sshd_config.d/00-a-oops.conf"]);
        let (kept, _) = split(vec![
            write("/etc/sysctl.d/zz-batten.conf"),
            Action::LoadSysctl {
                path: "/etc/sysctl.d/zz-batten.conf".into(),
            },
        ]);
        assert_eq!(kept.len(), 2);
    }
}
