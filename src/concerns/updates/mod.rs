//! Automatic updates (issue 17, part 2; Lynis PKGS-7420, which looks for
//! `/usr/bin/unattended-upgrade` or `/usr/bin/dnf-automatic`), by the
//! distribution's own tool:
//!
//! - Debian family: unattended-upgrades, switched on by
//!   `/etc/apt/apt.conf.d/20auto-upgrades` and run by apt's two timers
//!   (`apt-daily.timer` refreshes the lists, `apt-daily-upgrade.timer`
//!   installs). `packages: security` keeps the package's own origins
//!   (Debian: its security archive and the stable point-release fixes;
//!   Ubuntu: `-security`); `all` and a reboot time go in batten's own file,
//!   `52batten-unattended-upgrades`, read after the package's
//!   `50unattended-upgrades`.
//! - RHEL family: dnf-automatic (dnf 4) or dnf5's automatic plugin; both
//!   read `/etc/dnf/automatic.conf` (dnf5 over its defaults in
//!   `/usr/share/dnf5/dnf5-plugins/automatic.conf`), where batten sets only
//!   its keys in `[commands]` and keeps the rest of the image's file.
//! - Alpine (and anything else): no maintained equivalent exists; the plan
//!   and verify say so, never a pretend success.
//!
//! Where the image has the tool, this is configuration and costs nothing
//! at boot. Where it lacks it, batten still writes the configuration and
//! adds `batten-updates.service` ([`installer`]), which installs the tool
//! once the network is up without delaying sshd; verify reads its state.

pub mod apt;
pub mod dnf;
pub mod installer;
pub mod plan;
pub mod verify;

pub use plan::plan;

use crate::host::distro::{Distro, Family};
use crate::host::root::{Root, RootError};

/// The distribution's tool for automatic updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// unattended-upgrades and apt's timers.
    Apt,
    /// dnf-automatic (dnf 4) or, with `dnf5`, dnf5's automatic plugin.
    Dnf {
        /// The root has dnf5.
        dnf5: bool,
    },
}

impl Tool {
    /// The tool for the root, or why there is none: Alpine has no
    /// maintained one, and a root without its package manager (a scratch
    /// root, a stripped container) cannot install or run one.
    pub fn of(root: &Root, distro: &Distro) -> Result<Result<Tool, String>, RootError> {
        let has = |p: &str| root.metadata(p).map(|m| m.is_some());
        Ok(match distro.family {
            Family::Debian if has("/usr/bin/apt-get")? => Ok(Tool::Apt),
            Family::Rhel if has("/usr/bin/dnf5")? => Ok(Tool::Dnf { dnf5: true }),
            Family::Rhel if has("/usr/bin/dnf")? => Ok(Tool::Dnf { dnf5: false }),
            Family::Debian | Family::Rhel => Err(format!(
                "automatic updates are not available: {} has no {}, so batten configures none",
                distro.pretty_name,
                if distro.family == Family::Debian {
                    "apt-get"
                } else {
                    "dnf"
                }
            )),
            Family::Alpine => Err(format!(
                "automatic updates are not available on {}: it has no maintained tool for them, so batten configures none; update by hand (apk upgrade)",
                distro.pretty_name
            )),
        })
    }

    /// The package that brings the tool.
    pub fn package(self) -> &'static str {
        match self {
            Tool::Apt => "unattended-upgrades",
            Tool::Dnf { dnf5: false } => "dnf-automatic",
            Tool::Dnf { dnf5: true } => "dnf5-plugin-automatic",
        }
    }

    /// The timers that run it.
    pub fn timers(self) -> &'static [&'static str] {
        match self {
            Tool::Apt => &["apt-daily.timer", "apt-daily-upgrade.timer"],
            Tool::Dnf { dnf5: false } => &["dnf-automatic.timer"],
            Tool::Dnf { dnf5: true } => &["dnf5-automatic.timer"],
        }
    }

    /// A file the package installs: present means installed. It is also
    /// the installer unit's condition, so the unit stops once it is there.
    pub fn marker(self) -> &'static str {
        match self {
            Tool::Apt => "/usr/bin/unattended-upgrade",
            Tool::Dnf { dnf5: false } => "/usr/bin/dnf-automatic",
            Tool::Dnf { dnf5: true } => "/usr/lib/systemd/system/dnf5-automatic.timer",
        }
    }

    /// Whether the root has the tool: its marker file, or (Debian) dpkg
    /// saying the package is installed.
    pub fn installed(self, root: &Root) -> Result<bool, RootError> {
        if root.metadata(self.marker())?.is_some() {
            return Ok(true);
        }
        if self == Tool::Apt
            && let Some(status) = root.read_to_string("/var/lib/dpkg/status")?
        {
            return Ok(dpkg_installed(&status, self.package()));
        }
        Ok(false)
    }
}

/// Whether dpkg's status database lists `package` as installed.
pub fn dpkg_installed(status: &str, package: &str) -> bool {
    let name = format!("Package: {package}");
    status.split("\n\n").any(|stanza| {
        stanza.lines().any(|l| l == name)
            && stanza.lines().any(|l| l == "Status: install ok installed")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    #[test]
    fn tools_by_family_and_what_is_installed() {
        let status = "Package: apt\nStatus: install ok installed\n\nPackage: unattended-upgrades\nStatus: deinstall ok config-files\n\n";
        let (_d, root) = scratch_root(&[
            ("/etc/os-release", "ID=debian\n"),
            ("/var/lib/dpkg/status", status),
        ]);
        let d = Distro::detect(&root, None).unwrap();
        assert!(
            Tool::of(&root, &d)
                .unwrap()
                .unwrap_err()
                .contains("has no apt-get")
        );
        let (_d, root) = scratch_root(&[
            ("/etc/os-release", "ID=debian\n"),
            ("/var/lib/dpkg/status", status),
            ("/usr/bin/apt-get", ""),
        ]);
        let tool = Tool::of(&root, &d).unwrap().unwrap();
        assert_eq!(tool, Tool::Apt);
        assert!(
            !tool.installed(&root).unwrap(),
            "removed, config left: not installed"
        );
        assert!(dpkg_installed(
            "Package: unattended-upgrades\nVersion: 2.9.1\nStatus: install ok installed\n",
            "unattended-upgrades"
        ));

        let (_d, root) = scratch_root(&[("/etc/os-release", "ID=fedora\n"), ("/usr/bin/dnf5", "")]);
        let d = Distro::detect(&root, None).unwrap();
        assert_eq!(Tool::of(&root, &d).unwrap(), Ok(Tool::Dnf { dnf5: true }));
        let (_d, root) = scratch_root(&[("/etc/os-release", "ID=alpine\n")]);
        let d = Distro::detect(&root, None).unwrap();
        assert!(
            Tool::of(&root, &d)
                .unwrap()
                .unwrap_err()
                .contains("not available on alpine")
        );
    }
}
