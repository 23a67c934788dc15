//! The updates' plan: the tool's configuration, its timers enabled, and
//! where the image lacks the tool, the unit that installs it after the
//! network is up.

use super::{Tool, apt, dnf, installer};
use crate::host::distro::Distro;
use crate::host::root::{Owner, Root, RootError};
use crate::host::systemd;
use crate::input::model::UserData;
use crate::plan::{Action, PlanError};

const ROOT_0644: Owner = Owner {
    uid: 0,
    gid: 0,
    mode: 0o644,
};

/// A whole-file write that keeps the image's owner and mode for a file it
/// already has.
fn write(root: &Root, path: &str, text: String, why: &str) -> Result<Option<Action>, RootError> {
    let owner = root.metadata(path)?.map(|m| m.owner()).unwrap_or(ROOT_0644);
    Action::write_if_changed(root, path, text.into_bytes(), owner, false, why)
}

/// Plan automatic updates for the root's distribution.
pub fn plan(
    ud: &UserData,
    root: &Root,
    distro: &Distro,
    notes: &mut Vec<String>,
) -> Result<Vec<Action>, PlanError> {
    let u = &ud.batten.updates;
    if !u.enabled {
        notes.push("WARNING: automatic updates are off (batten.updates.enabled: false): security fixes are not installed until someone does it by hand".into());
        return Ok(Vec::new());
    }
    let tool = match Tool::of(root, distro)? {
        Ok(tool) => tool,
        Err(why) => {
            notes.push(why);
            return Ok(Vec::new());
        }
    };
    let installed = tool.installed(root)?;
    let mut actions = Vec::new();
    match tool {
        Tool::Apt => {
            actions.extend(write(root, apt::PERIODIC, apt::periodic_text(), "automatic updates: apt's timers refresh the lists and run unattended-upgrade daily")?);
            match apt::options_text(u) {
                Some(text) => actions.extend(write(
                    root,
                    apt::OPTIONS,
                    text,
                    "automatic updates: the packages and the reboot batten.updates asks for",
                )?),
                None if root.metadata(apt::OPTIONS)?.is_some() => actions.push(Action::Remove {
                    path: apt::OPTIONS.to_string(),
                    why: "automatic updates: the package's own origins, and no reboot".into(),
                }),
                None => {}
            }
        }
        Tool::Dnf { .. } => {
            let before = root.read_to_string(dnf::CONFIG)?.unwrap_or_default();
            let text = dnf::edit(&before, &dnf::settings(u));
            actions.extend(write(
                root,
                dnf::CONFIG,
                text,
                "automatic updates: dnf-automatic applies the updates batten.updates asks for",
            )?);
        }
    }
    let mut start = Vec::new();
    // apt's timers come with apt itself; dnf's with the package.
    if installed || tool == Tool::Apt {
        for timer in tool.timers() {
            if systemd::is_masked(root, timer)? {
                notes.push(format!("{timer} is masked: batten leaves it so, and automatic updates do not run until it is unmasked"));
                continue;
            }
            match systemd::find(root, timer)? {
                None => notes.push(format!(
                    "{timer} is not installed in the root, so nothing runs the automatic updates"
                )),
                Some(unit) if !systemd::is_enabled(root, &unit)? => {
                    for (path, target) in systemd::enable_links(&unit) {
                        if root.metadata(&path)?.is_none() {
                            actions.push(Action::Symlink {
                                path,
                                target,
                                why: format!("enable {timer} for automatic updates"),
                            });
                        }
                    }
                    start.push(timer.to_string());
                }
                Some(_) => {}
            }
        }
    }
    if !installed {
        notes.push(format!(
            "{} is not installed in the root: {} installs it once the network is up (sshd does not wait for it); verify and the console show how it went",
            tool.package(),
            installer::UNIT
        ));
        let unit = write(
            root,
            installer::PATH,
            installer::unit_text(tool),
            &format!("install {} after the network is up", tool.package()),
        )?;
        let link = root.metadata(installer::LINK)?.is_none();
        if unit.is_some() || link {
            start.push(installer::UNIT.to_string());
        }
        actions.extend(unit);
        if link {
            actions.push(Action::Symlink {
                path: installer::LINK.to_string(),
                target: installer::PATH.to_string(),
                why: format!("enable {}", installer::UNIT),
            });
        }
    }
    if root.is_host() && !start.is_empty() {
        actions.push(Action::StartUnits {
            units: start,
            why: "automatic updates from this boot on, not only the next".into(),
        });
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    const APT_TIMER: &str = "[Unit]\nDescription=Daily apt download activities\n[Timer]\nOnCalendar=*-*-* 6,18:00\n[Install]\nWantedBy=timers.target\n";
    const DNF_TIMER: &str = "[Unit]\nDescription=dnf-automatic timer\n[Timer]\nOnCalendar=*-*-* 6:00\n[Install]\nWantedBy=timers.target\n";
    const UU_INSTALLED: &str =
        "Package: unattended-upgrades\nStatus: install ok installed\nVersion: 2.9.1+nmu3\n\n";

    fn ud(text: &str) -> UserData {
        crate::input::load("u", text.as_bytes()).unwrap().user_data
    }

    fn planned(files: &[(&str, &str)], text: &str) -> (Vec<Action>, Vec<String>) {
        let (_d, root) = scratch_root(files);
        let distro = Distro::detect(&root, None).unwrap();
        let mut notes = Vec::new();
        let actions = plan(&ud(text), &root, &distro, &mut notes).unwrap();
        (actions, notes)
    }

    fn summary(actions: &[Action]) -> Vec<String> {
        actions.iter().map(Action::summary).collect()
    }

    fn debian(with_package: bool) -> Vec<(&'static str, &'static str)> {
        let mut files = vec![
            ("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
            ("/usr/bin/apt-get", ""),
            ("/lib/systemd/system/apt-daily.timer", APT_TIMER),
            ("/lib/systemd/system/apt-daily-upgrade.timer", APT_TIMER),
            (
                "/var/lib/dpkg/status",
                "Package: apt\nStatus: install ok installed\n\n",
            ),
        ];
        if with_package {
            files[4] = ("/var/lib/dpkg/status", UU_INSTALLED);
        }
        files
    }

    #[test]
    fn debian_with_the_package_is_configuration_only() {
        let (actions, notes) = planned(&debian(true), "#cloud-config\n");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            summary(&actions),
            [
                "create /etc/apt/apt.conf.d/20auto-upgrades: automatic updates: apt's timers refresh the lists and run unattended-upgrade daily",
                "link /etc/systemd/system/timers.target.wants/apt-daily.timer -> /lib/systemd/system/apt-daily.timer: enable apt-daily.timer for automatic updates",
                "link /etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer -> /lib/systemd/system/apt-daily-upgrade.timer: enable apt-daily-upgrade.timer for automatic updates",
            ]
        );
    }

    #[test]
    fn debian_without_the_package_gets_the_installer() {
        let (actions, notes) = planned(
            &debian(false),
            "#cloud-config\nbatten:\n  updates: {packages: all, reboot: \"02:30\"}\n",
        );
        assert!(notes[0].starts_with("unattended-upgrades is not installed in the root: batten-updates.service installs it"), "{notes:?}");
        let s = summary(&actions);
        assert!(
            s[1].starts_with("create /etc/apt/apt.conf.d/52batten-unattended-upgrades"),
            "{s:#?}"
        );
        assert!(
            s.iter()
                .any(|l| l.starts_with("create /etc/systemd/system/batten-updates.service")),
            "{s:#?}"
        );
        assert!(s.contains(&"link /etc/systemd/system/multi-user.target.wants/batten-updates.service -> /etc/systemd/system/batten-updates.service: enable batten-updates.service".to_string()), "{s:#?}");
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::StartUnits { .. })),
            "an image starts nothing"
        );
        let Action::Write { contents, .. } = &actions[1] else {
            panic!()
        };
        assert!(String::from_utf8_lossy(contents).contains("Automatic-Reboot-Time \"02:30\";"));
    }

    #[test]
    fn a_converged_root_plans_nothing_and_old_options_are_removed() {
        let mut files = debian(true);
        let periodic = apt::periodic_text();
        files.push((apt::PERIODIC, &periodic));
        files.push((
            "/etc/systemd/system/timers.target.wants/apt-daily.timer",
            APT_TIMER,
        ));
        files.push((
            "/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
            APT_TIMER,
        ));
        let (actions, _) = planned(&files, "#cloud-config\n");
        // Owner differs in a scratch root made by whoever runs the tests.
        assert!(
            actions
                .iter()
                .all(|a| matches!(a, Action::Write { path, .. } if path == apt::PERIODIC)),
            "{actions:?}"
        );
        files.push((apt::OPTIONS, "// old\n"));
        let (actions, _) = planned(&files, "#cloud-config\n");
        assert!(
            summary(&actions)
                .iter()
                .any(|s| s.starts_with("remove /etc/apt/apt.conf.d/52batten-unattended-upgrades"))
        );
    }

    #[test]
    fn rhel_edits_automatic_conf_and_enables_its_timer() {
        let files = [
            (
                "/etc/os-release",
                "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
            ),
            ("/usr/bin/dnf", ""),
            ("/usr/bin/dnf-automatic", "#!/usr/bin/python3\n"),
            ("/usr/lib/systemd/system/dnf-automatic.timer", DNF_TIMER),
            (
                "/etc/dnf/automatic.conf",
                "[commands]\nupgrade_type = default\napply_updates = no\n\n[emitters]\nemit_via = stdio\n",
            ),
        ];
        let (actions, notes) = planned(&files, "#cloud-config\n");
        assert!(notes.is_empty(), "{notes:?}");
        let Action::Write { path, contents, .. } = &actions[0] else {
            panic!("{actions:?}")
        };
        assert_eq!(path, dnf::CONFIG);
        assert_eq!(
            String::from_utf8_lossy(contents),
            "[commands]\nupgrade_type = security\napply_updates = yes\n\n[emitters]\nemit_via = stdio\n"
        );
        assert_eq!(
            summary(&actions[1..]),
            [
                "link /etc/systemd/system/timers.target.wants/dnf-automatic.timer -> /usr/lib/systemd/system/dnf-automatic.timer: enable dnf-automatic.timer for automatic updates"
            ]
        );
    }

    #[test]
    fn rhel_without_the_package_and_dnf5() {
        let files = [
            ("/etc/os-release", "ID=fedora\nVERSION_ID=41\n"),
            ("/usr/bin/dnf5", ""),
        ];
        let (actions, notes) = planned(&files, "#cloud-config\n");
        assert!(
            notes[0].starts_with("dnf5-plugin-automatic is not installed"),
            "{notes:?}"
        );
        let unit = actions
            .iter()
            .find_map(|a| match a {
                Action::Write { path, contents, .. } if path == installer::PATH => {
                    Some(String::from_utf8_lossy(contents).into_owned())
                }
                _ => None,
            })
            .unwrap();
        assert!(unit.contains("dnf -y install dnf5-plugin-automatic && systemctl enable --now dnf5-automatic.timer"), "{unit}");
        assert!(
            !summary(&actions)
                .iter()
                .any(|s| s.contains("timers.target.wants")),
            "no timer link before the package"
        );
    }

    #[test]
    fn alpine_says_so_and_off_warns() {
        let (actions, notes) = planned(
            &[(
                "/etc/os-release",
                "ID=alpine\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
            )],
            "#cloud-config\n",
        );
        assert!(actions.is_empty());
        assert!(
            notes[0].starts_with("automatic updates are not available on Alpine Linux v3.20"),
            "{notes:?}"
        );
        let (actions, notes) = planned(&[("/etc/os-release", "ID=debian\n")], "#cloud-config\n");
        assert!(actions.is_empty());
        assert!(notes[0].contains("has no apt-get"), "{notes:?}");
        let (actions, notes) = planned(&debian(true), "#cloud-config\nbatten:\n  updates: false\n");
        assert!(actions.is_empty());
        assert!(
            notes[0].starts_with("WARNING: automatic updates are off"),
            "{notes:?}"
        );
    }
}
