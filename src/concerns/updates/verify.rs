//! Checking automatic updates: the tool installed (or being installed by
//! `batten-updates.service`, whose state is read live), its configuration
//! saying on, its timers enabled, and when it last ran. A machine whose
//! tool has not run yet is not failing: it says "not run yet".

use super::{Tool, apt, dnf, installer};
use crate::concerns::report::{Inputs, Report, Status};
use crate::host::daemon::unit_properties;
use crate::host::systemd;

/// unattended-upgrades' own log: each run starts with this line.
const APT_LOG: &str = "/var/log/unattended-upgrades/unattended-upgrades.log";

/// Every check of automatic updates.
pub fn verify(inp: &Inputs, r: &mut Report) {
    let u = &inp.user_data.batten.updates;
    if !u.enabled {
        r.add(
            "updates",
            Status::Warn,
            "automatic updates",
            "off in user-data: security fixes are not installed until someone does it by hand",
        );
        return;
    }
    let tool = match Tool::of(inp.root, inp.distro) {
        Ok(Ok(tool)) => tool,
        Ok(Err(why)) => {
            r.add("updates", Status::Warn, "automatic updates", why);
            return;
        }
        Err(e) => {
            r.add("updates", Status::Fail, "automatic updates", e.to_string());
            return;
        }
    };
    config(inp, r, tool);
    let installed = match tool.installed(inp.root) {
        Ok(installed) => installed,
        Err(e) => {
            r.add(
                "updates.installed",
                Status::Fail,
                tool.package(),
                e.to_string(),
            );
            return;
        }
    };
    if installed {
        r.add(
            "updates.installed",
            Status::Pass,
            tool.package(),
            "installed",
        );
    } else {
        installing(inp, r, tool);
    }
    if installed || tool == Tool::Apt {
        for timer in tool.timers() {
            let (status, why) = match systemd::find(inp.root, timer) {
                Ok(Some(unit)) => match systemd::is_enabled(inp.root, &unit) {
                    Ok(true) => (Status::Pass, "enabled".to_string()),
                    Ok(false) => (
                        Status::Fail,
                        "not enabled: automatic updates do not run".to_string(),
                    ),
                    Err(e) => (Status::Fail, e.to_string()),
                },
                Ok(None) => (
                    Status::Fail,
                    "not installed: nothing runs the automatic updates".to_string(),
                ),
                Err(e) => (Status::Fail, e.to_string()),
            };
            // One id per timer: the baseline matches each with its own.
            r.add(&format!("updates.timer.{timer}"), status, *timer, why);
        }
    }
    last_run(inp, r, tool);
}

/// The configuration says on, with the packages and reboot asked for.
fn config(inp: &Inputs, r: &mut Report, tool: Tool) {
    let u = &inp.user_data.batten.updates;
    let read = |path: &str| inp.root.read_to_string(path).map_err(|e| e.to_string());
    match tool {
        Tool::Apt => {
            let (status, why) = match read(apt::PERIODIC) {
                Ok(Some(text)) => {
                    // The settings that are off, as the file has them: the
                    // evidence a drift report names.
                    let off: Vec<String> = [
                        "APT::Periodic::Update-Package-Lists",
                        "APT::Periodic::Unattended-Upgrade",
                    ]
                    .iter()
                    .filter_map(|k| match apt::setting(&text, k) {
                        Some(v) if v != "0" && !v.is_empty() => None,
                        Some(v) => Some(format!("{k} \"{v}\"")),
                        None => Some(format!("{k} unset")),
                    })
                    .collect();
                    if off.is_empty() {
                        (
                            Status::Pass,
                            "lists refreshed and unattended-upgrade run daily".to_string(),
                        )
                    } else {
                        (
                            Status::Fail,
                            format!("does not switch the daily runs on: {}", off.join(", ")),
                        )
                    }
                }
                Ok(None) => (
                    Status::Fail,
                    "missing: unattended-upgrade never runs".to_string(),
                ),
                Err(e) => (Status::Fail, e),
            };
            r.add("updates.config", status, apt::PERIODIC, why);
            if let Some(want) = apt::options_text(u) {
                let (status, why) = match read(apt::OPTIONS) {
                    Ok(Some(text)) if text == want => (
                        Status::Pass,
                        "batten's packages and reboot settings".to_string(),
                    ),
                    Ok(Some(_)) => (Status::Fail, "changed since batten wrote it".to_string()),
                    Ok(None) => (Status::Fail, "missing".to_string()),
                    Err(e) => (Status::Fail, e),
                };
                r.add("updates.options", status, apt::OPTIONS, why);
            }
        }
        Tool::Dnf { .. } => {
            let text = match read(dnf::CONFIG) {
                Ok(Some(text)) => text,
                Ok(None) => {
                    r.add(
                        "updates.config",
                        Status::Fail,
                        dnf::CONFIG,
                        "missing: updates are not applied",
                    );
                    return;
                }
                Err(e) => {
                    r.add("updates.config", Status::Fail, dnf::CONFIG, e);
                    return;
                }
            };
            let wrong: Vec<String> = dnf::settings(u)
                .into_iter()
                .filter(|(k, v)| dnf::value(&text, k).as_deref() != Some(v.as_str()))
                .map(|(k, v)| format!("{k} is not {v}"))
                .collect();
            let (status, why) = if wrong.is_empty() {
                (
                    Status::Pass,
                    "[commands] applies the updates batten.updates asks for".to_string(),
                )
            } else {
                (Status::Fail, wrong.join("; "))
            };
            r.add("updates.config", status, dnf::CONFIG, why);
        }
    }
}

/// The tool is missing: `batten-updates.service` must be there to install
/// it, and on the running system its state says how that goes.
fn installing(inp: &Inputs, r: &mut Report, tool: Tool) {
    let what = tool.package();
    let in_place = |p: &str| inp.root.metadata(p).ok().flatten().is_some();
    if !in_place(installer::PATH) || !in_place(installer::LINK) {
        r.add(
            "updates.installed",
            Status::Fail,
            what,
            format!(
                "not installed, and {} is not there to install it",
                installer::UNIT
            ),
        );
        return;
    }
    if !inp.root.is_host() {
        r.add(
            "updates.installed",
            Status::Warn,
            what,
            format!(
                "not in the image: {} installs it at first boot, once the network is up",
                installer::UNIT
            ),
        );
        return;
    }
    let props = unit_properties(inp.runner, installer::UNIT, INSTALLER_PROPS);
    let Some(props) = props else {
        r.add(
            "updates.installed",
            Status::Warn,
            what,
            format!(
                "not installed, and systemctl could not say how {} is doing (is systemd running here?)",
                installer::UNIT
            ),
        );
        return;
    };
    let (status, why) = installer_status(&props);
    r.add("updates.installed", status, what, why);
}

/// What the installer unit's state (`systemctl show`) means for a tool
/// that is not there yet: running or waiting is a warning, given up a
/// failure.
fn installer_status(props: &[(String, String)]) -> (Status, String) {
    let get = |k: &str| {
        props
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let state = format!(
        "{} ({}), result {}, {} restarts",
        get("ActiveState"),
        get("SubState"),
        get("Result"),
        get("NRestarts")
    );
    match get("ActiveState") {
        "failed" => (
            Status::Fail,
            format!(
                "{} gave up: {state}; see journalctl -u {}",
                installer::UNIT,
                installer::UNIT
            ),
        ),
        "active" | "activating" | "reloading" => (
            Status::Warn,
            format!("being installed by {}: {state}", installer::UNIT),
        ),
        _ => (
            Status::Warn,
            format!(
                "{} has not installed it yet (it waits for the network): {state}",
                installer::UNIT
            ),
        ),
    }
}

/// One line for `batten status`: the tool installed, or how its
/// installation goes (the installer unit's state, on the running system).
pub fn summary(
    root: &crate::host::root::Root,
    distro: &crate::host::distro::Distro,
    runner: &dyn crate::host::exec::Runner,
) -> String {
    let tool = match Tool::of(root, distro) {
        Ok(Ok(tool)) => tool,
        Ok(Err(why)) => return why,
        Err(e) => return e.to_string(),
    };
    match tool.installed(root) {
        Ok(true) => format!("{} installed", tool.package()),
        Ok(false) if root.metadata(installer::PATH).ok().flatten().is_none() => {
            format!("{} not installed", tool.package())
        }
        Ok(false) if !root.is_host() => format!(
            "{} not in the image: {} installs it at first boot",
            tool.package(),
            installer::UNIT
        ),
        Ok(false) => match unit_properties(runner, installer::UNIT, INSTALLER_PROPS) {
            Some(props) => format!(
                "{} not installed yet: {}",
                tool.package(),
                installer_status(&props).1
            ),
            None => format!(
                "{} not installed; {} cannot be asked",
                tool.package(),
                installer::UNIT
            ),
        },
        Err(e) => e.to_string(),
    }
}

/// What `systemctl show` is asked about the installer.
const INSTALLER_PROPS: &[&str] = &["ActiveState", "SubState", "Result", "NRestarts"];

/// When the tool last ran: its own log (apt), else the timer's last
/// trigger on the running system; "not run yet" is no failure.
fn last_run(inp: &Inputs, r: &mut Report, tool: Tool) {
    let what = "last automatic update run";
    if tool == Tool::Apt
        && let Ok(Some(log)) = inp.root.read_to_string(APT_LOG)
        && let Some(line) = log
            .lines()
            .rev()
            .find(|l| l.contains("Starting unattended upgrades script"))
    {
        let when: String = line.chars().take(19).collect();
        r.add(
            "updates.last-run",
            Status::Pass,
            what,
            format!("{when} (from {APT_LOG})"),
        );
        return;
    }
    let timer = tool.timers().last().copied().unwrap_or_default();
    if inp.root.is_host()
        && let Some(props) = unit_properties(inp.runner, timer, &["LastTriggerUSec"])
        && let Some((_, when)) = props
            .iter()
            .find(|(k, v)| k == "LastTriggerUSec" && !v.is_empty() && v != "n/a" && v != "0")
    {
        r.add(
            "updates.last-run",
            Status::Pass,
            what,
            format!("{timer} last triggered {when}"),
        );
        return;
    }
    r.add(
        "updates.last-run",
        Status::Skip,
        what,
        format!("not run yet: {timer} runs it daily"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::distro::Distro;
    use crate::host::exec::fake::Fake;
    use crate::host::root::scratch_root;
    use crate::input::model::UserData;

    fn report(files: &[(&str, &str)], runner: &Fake) -> Vec<(String, Status, String)> {
        let (_d, root) = scratch_root(files);
        let distro = Distro::detect(&root, None).unwrap();
        let ud = UserData::default();
        let inp = Inputs {
            root: &root,
            distro: &distro,
            user_data: &ud,
            runner,
        };
        let mut r = Report::default();
        verify(&inp, &mut r);
        r.checks
            .into_iter()
            .map(|c| (c.id, c.status, c.why))
            .collect()
    }

    const TIMER: &str = "[Install]\nWantedBy=timers.target\n";

    #[test]
    fn an_image_with_the_installer_is_not_yet_installed_and_not_run_yet() {
        let periodic = apt::periodic_text();
        let unit = installer::unit_text(Tool::Apt);
        let files = [
            ("/etc/os-release", "ID=debian\n"),
            ("/usr/bin/apt-get", ""),
            (apt::PERIODIC, periodic.as_str()),
            ("/lib/systemd/system/apt-daily.timer", TIMER),
            ("/lib/systemd/system/apt-daily-upgrade.timer", TIMER),
            (
                "/etc/systemd/system/timers.target.wants/apt-daily.timer",
                TIMER,
            ),
            (
                "/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
                TIMER,
            ),
            (installer::PATH, unit.as_str()),
            (installer::LINK, unit.as_str()),
        ];
        let fake = Fake::agreeing();
        let checks = report(&files, &fake);
        let statuses: Vec<(&str, Status)> =
            checks.iter().map(|(i, s, _)| (i.as_str(), *s)).collect();
        assert_eq!(
            statuses,
            [
                ("updates.config", Status::Pass),
                ("updates.installed", Status::Warn),
                ("updates.timer.apt-daily.timer", Status::Pass),
                ("updates.timer.apt-daily-upgrade.timer", Status::Pass),
                ("updates.last-run", Status::Skip),
            ],
            "{checks:#?}"
        );
        assert!(
            checks[1].2.contains("installs it at first boot"),
            "{checks:#?}"
        );
        assert!(checks[4].2.starts_with("not run yet"), "{checks:#?}");
        assert!(
            fake.calls().is_empty(),
            "an image's verify asks no systemctl"
        );
    }

    #[test]
    fn a_log_says_when_it_ran_and_a_missing_config_fails() {
        let files = [
            ("/etc/os-release", "ID=debian\n"),
            ("/usr/bin/apt-get", ""),
            ("/usr/bin/unattended-upgrade", ""),
            (
                APT_LOG,
                "2026-11-30 06:12:01,410 INFO Starting unattended upgrades script\n2026-11-30 06:12:09,002 INFO No packages found that can be upgraded unattended\n",
            ),
        ];
        let checks = report(&files, &Fake::agreeing());
        let by = |id: &str| checks.iter().find(|(i, _, _)| i == id).unwrap().clone();
        assert_eq!(by("updates.config").1, Status::Fail);
        assert_eq!(by("updates.installed").1, Status::Pass);
        assert_eq!(
            by("updates.last-run"),
            (
                "updates.last-run".into(),
                Status::Pass,
                format!("2026-11-30 06:12:01 (from {APT_LOG})")
            )
        );
    }

    #[test]
    fn the_installers_state_live() {
        let props = |active: &str, sub: &str, result: &str| {
            [
                ("ActiveState", active),
                ("SubState", sub),
                ("Result", result),
                ("NRestarts", "2"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
        };
        let (s, why) = installer_status(&props("failed", "failed", "exit-code"));
        assert_eq!(s, Status::Fail);
        assert!(why.contains("failed (failed), result exit-code, 2 restarts; see journalctl -u batten-updates.service"), "{why}");
        assert_eq!(
            installer_status(&props("activating", "auto-restart", "exit-code")).0,
            Status::Warn
        );
        assert!(
            installer_status(&props("inactive", "dead", "success"))
                .1
                .contains("waits for the network")
        );
    }

    #[test]
    fn alpine_is_said_never_pretended() {
        let checks = report(
            &[(
                "/etc/os-release",
                "ID=alpine\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
            )],
            &Fake::agreeing(),
        );
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].1, Status::Warn);
        assert!(
            checks[0]
                .2
                .starts_with("automatic updates are not available on Alpine Linux v3.20"),
            "{checks:?}"
        );
    }
}
