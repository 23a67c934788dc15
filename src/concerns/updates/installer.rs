//! `batten-updates.service`: installs the update tool an image lacks, once
//! the network is up, and never delays sshd.
//!
//! It is planned per root (the package and the installer differ by
//! family, and only a root without the tool gets it), so it is written by
//! the plan into `/etc/systemd/system` rather than shipped in `images/`
//! with batten's own units, and it is not one of the units the seal
//! switches off: it must outlive the first boot if the mirror is down then.
//!
//! - Ordered only `After=network-online.target`; nothing is ordered after
//!   it and it has no `Before=` or `Requires=` on ssh, so sshd, nginx and
//!   batten's verify start as if it did not exist; and without default
//!   dependencies, so `multi-user.target` does not wait for it either
//!   ([`crate::host::systemd::NOT_WAITED_FOR`]). The default-deny
//!   firewall already accepts the replies to its downloads.
//! - `Type=simple` with `Restart=on-failure`, so a busy mirror or apt's
//!   lock held by apt-daily is retried every `RestartSec`, at most
//!   `StartLimitBurst` times per `StartLimitIntervalSec` (then the unit is
//!   `failed`, which verify reports). A `Type=oneshot` unit with
//!   `Restart=on-failure` is refused by systemd before 244 (RHEL 8), so the
//!   time is bounded with `RuntimeMaxSec` (what `TimeoutStartSec` is for a
//!   oneshot unit), and a run that hangs is killed and retried.
//! - `ConditionPathExists=!` the tool: once installed the unit is skipped,
//!   at this boot and every later one.

use super::Tool;

/// The unit's name.
pub const UNIT: &str = "batten-updates.service";
/// Where it is written.
pub const PATH: &str = "/etc/systemd/system/batten-updates.service";
/// Its enable link.
pub const LINK: &str = "/etc/systemd/system/multi-user.target.wants/batten-updates.service";

/// The command that installs the tool (and, for dnf, enables its timer,
/// whose unit file only exists once the package is there).
pub fn command(tool: Tool) -> String {
    match tool {
        Tool::Apt => "apt-get update && apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 unattended-upgrades".to_string(),
        Tool::Dnf { .. } => format!(
            "dnf -y install {} && systemctl enable --now {}",
            tool.package(),
            tool.timers().join(" ")
        ),
    }
}

/// The unit's text.
pub fn unit_text(tool: Tool) -> String {
    let env = match tool {
        Tool::Apt => "Environment=DEBIAN_FRONTEND=noninteractive\n",
        Tool::Dnf { .. } => "",
    };
    format!(
        "# Written by batten (batten.updates): the image lacks {package}, which\n\
         # automatic updates need, so it is installed once the network is up.\n\
         # Nothing waits for this unit (sshd starts without it); it retries on\n\
         # failure and is skipped for good once {marker} exists.\n\
         [Unit]\n\
         Description=batten: install {package} for automatic updates\n\
         {not_waited_for}\
         After=network-online.target\n\
         Wants=network-online.target\n\
         ConditionPathExists=!{marker}\n\
         StartLimitIntervalSec=3h\n\
         StartLimitBurst=5\n\
         \n\
         [Service]\n\
         Type=simple\n\
         {env}\
         ExecStart=/bin/sh -c '{command}'\n\
         RuntimeMaxSec=20min\n\
         Restart=on-failure\n\
         RestartSec=5min\n\
         StandardOutput=journal\n\
         StandardError=journal+console\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        package = tool.package(),
        marker = tool.marker(),
        command = command(tool),
        not_waited_for = crate::host::systemd::NOT_WAITED_FOR,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_before_sshd_bounded_and_retried() {
        for tool in [
            Tool::Apt,
            Tool::Dnf { dnf5: false },
            Tool::Dnf { dnf5: true },
        ] {
            let text = unit_text(tool);
            assert!(
                text.contains("\nAfter=network-online.target\nWants=network-online.target\n"),
                "{text}"
            );
            let settings: String = text.lines().filter(|l| !l.starts_with('#')).collect();
            for bad in ["ssh", "TimeoutStartSec=infinity"] {
                assert!(!settings.contains(bad), "{bad} in {text}");
            }
            crate::host::systemd::assert_not_waited_for(&text);
            for needed in [
                "\nRuntimeMaxSec=20min\n",
                "\nRestart=on-failure\n",
                "\nRestartSec=5min\n",
                "\nStartLimitBurst=5\n",
                "\nWantedBy=multi-user.target\n",
            ] {
                assert!(text.contains(needed), "{needed} missing from {text}");
            }
            assert!(text.contains(&format!("\nConditionPathExists=!{}\n", tool.marker())));
        }
        let apt = unit_text(Tool::Apt);
        assert!(apt.contains("\nEnvironment=DEBIAN_FRONTEND=noninteractive\nExecStart=/bin/sh -c 'apt-get update && apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 unattended-upgrades'\n"), "{apt}");
        assert_eq!(
            command(Tool::Dnf { dnf5: true }),
            "dnf -y install dnf5-plugin-automatic && systemctl enable --now dnf5-automatic.timer"
        );
    }
}
