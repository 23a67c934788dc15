//! Enabling a systemd unit in a root the way `systemctl --root` does: the
//! links its `[Install]` section asks for, made by hand so that it works on
//! a mounted image where systemctl cannot run.

use crate::host::root::{Root, RootError};

/// Where unit files live, in systemd's order of precedence.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// The `[Unit]` lines of a unit that `multi-user.target` wants but must not
/// wait for (batten's units that work after the network: installing the
/// update tool, ACME). A target orders itself after every unit it wants
/// unless that unit has `DefaultDependencies=no`; with the defaults, the
/// unit's `After=network-online.target` would make `multi-user.target`,
/// and everything after it (cloud-final, batten-verify), wait for the
/// network and for the unit's whole run. The defaults a service needs are
/// spelled out instead.
pub const NOT_WAITED_FOR: &str = "DefaultDependencies=no\n\
    Requires=sysinit.target\n\
    After=sysinit.target basic.target\n\
    Conflicts=shutdown.target\n\
    Before=shutdown.target\n";

/// A unit file that was found, and what enabling it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// The unit's name, e.g. `ssh.service`.
    pub name: String,
    /// Root-relative path of the unit file.
    pub path: String,
    /// `WantedBy=` targets.
    pub wanted_by: Vec<String>,
    /// `Alias=` names.
    pub aliases: Vec<String>,
}

/// Find a unit file in the root; `None` when it is not installed.
pub fn find(root: &Root, name: &str) -> Result<Option<Unit>, RootError> {
    for dir in UNIT_DIRS {
        let path = format!("{dir}/{name}");
        // /lib is often a link to usr/lib: follow it, but only within the root.
        let Some(bytes) = root.read_following_within(&path)? else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut unit = Unit {
            name: name.to_string(),
            path,
            wanted_by: Vec::new(),
            aliases: Vec::new(),
        };
        let mut in_install = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_install = line == "[Install]";
                continue;
            }
            if !in_install {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                let words = value.split_whitespace().map(str::to_string);
                match key.trim() {
                    "WantedBy" => unit.wanted_by.extend(words),
                    "Alias" => unit.aliases.extend(words),
                    _ => {}
                }
            }
        }
        return Ok(Some(unit));
    }
    Ok(None)
}

/// Whether the unit is masked (a link to /dev/null in /etc/systemd/system):
/// then it must not be enabled behind the administrator's back.
pub fn is_masked(root: &Root, name: &str) -> Result<bool, RootError> {
    let path = format!("/etc/systemd/system/{name}");
    Ok(root.read_link(&path)?.as_deref() == Some("/dev/null"))
}

/// The links `systemctl enable` makes for `unit`: (link, target).
pub fn enable_links(unit: &Unit) -> Vec<(String, String)> {
    let mut links: Vec<(String, String)> = unit
        .wanted_by
        .iter()
        .map(|t| {
            (
                format!("/etc/systemd/system/{t}.wants/{}", unit.name),
                unit.path.clone(),
            )
        })
        .collect();
    links.extend(
        unit.aliases
            .iter()
            .map(|a| (format!("/etc/systemd/system/{a}"), unit.path.clone())),
    );
    links
}

/// Whether the unit is enabled: one of its `WantedBy` links exists.
pub fn is_enabled(root: &Root, unit: &Unit) -> Result<bool, RootError> {
    for t in &unit.wanted_by {
        if root
            .metadata(&format!("/etc/systemd/system/{t}.wants/{}", unit.name))?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// For the tests of units built on [`NOT_WAITED_FOR`]: nothing waits for
/// the unit, and it orders itself before nothing but shutdown.
#[cfg(test)]
pub fn assert_not_waited_for(text: &str) {
    let settings: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(settings.contains(&"DefaultDependencies=no"), "{text}");
    for line in &settings {
        if let Some(units) = line.strip_prefix("Before=") {
            assert_eq!(units, "shutdown.target", "{text}");
        }
        if let Some(units) = line.strip_prefix("Requires=") {
            assert_eq!(units, "sysinit.target", "{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_ssh_service() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib/systemd/system")).unwrap();
        std::fs::write(
            dir.path().join("lib/systemd/system/ssh.service"),
            "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n",
        )
        .unwrap();
        let root = Root::open(dir.path()).unwrap();
        let unit = find(&root, "ssh.service").unwrap().unwrap();
        assert!(!is_enabled(&root, &unit).unwrap());
        assert_eq!(
            enable_links(&unit),
            vec![
                (
                    "/etc/systemd/system/multi-user.target.wants/ssh.service".to_string(),
                    "/lib/systemd/system/ssh.service".to_string()
                ),
                (
                    "/etc/systemd/system/sshd.service".to_string(),
                    "/lib/systemd/system/ssh.service".to_string()
                ),
            ]
        );
        std::fs::create_dir_all(
            dir.path()
                .join("etc/systemd/system/multi-user.target.wants"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "/lib/systemd/system/ssh.service",
            dir.path()
                .join("etc/systemd/system/multi-user.target.wants/ssh.service"),
        )
        .unwrap();
        assert!(is_enabled(&root, &unit).unwrap());
        assert_eq!(find(&root, "nope.service").unwrap(), None);
        assert!(!is_masked(&root, "ssh.service").unwrap());
        std::os::unix::fs::symlink(
            "/dev/null",
            dir.path().join("etc/systemd/system/ssh.service"),
        )
        .unwrap();
        assert!(is_masked(&root, "ssh.service").unwrap());
    }
}
