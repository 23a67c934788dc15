//! Which distribution family the root belongs to, and what that means for
//! paths, service names and account defaults.
//!
//! Everything distribution-specific is answered here, from the root's own
//! `/etc/os-release`, so no other module compares distribution names.

use serde::Serialize;

use crate::host::root::{Root, RootError};

/// The families batten supports; each has its own file layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Debian, Ubuntu, Raspberry Pi OS and their derivatives.
    Debian,
    /// RHEL, Rocky, Alma, CentOS, Fedora.
    Rhel,
    /// Alpine Linux.
    Alpine,
}

/// The root's distribution as os-release describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Distro {
    /// os-release `ID`, lowercased (it picks the default user's name);
    /// `unknown` when only --family told batten.
    pub id: String,
    /// os-release `PRETTY_NAME` (else the ID), for reports.
    pub pretty_name: String,
    /// os-release `VERSION_ID`; empty when absent.
    pub version_id: String,
    /// From --family, else `ID`, else the first known word of `ID_LIKE`.
    pub family: Family,
}

/// Why the distribution could not be told.
#[derive(Debug, thiserror::Error)]
pub enum DistroError {
    /// os-release could not be read inside the root.
    #[error(transparent)]
    Root(#[from] RootError),
    /// Neither os-release file exists and no --family was given.
    #[error(
        "{path} is missing, so batten cannot tell the distribution; pass --family debian|rhel|alpine"
    )]
    NoOsRelease {
        /// Host path of the missing /etc/os-release.
        path: String,
    },
    /// Neither `ID` nor `ID_LIKE` names a family batten knows.
    #[error(
        "{path} names {id:?} (ID_LIKE {like:?}), which batten does not know; pass --family debian|rhel|alpine to say which family it follows"
    )]
    Unknown {
        /// Host path of the os-release file that was read.
        path: String,
        /// Its `ID`, lowercased.
        id: String,
        /// Its `ID_LIKE`, lowercased; may be empty.
        like: String,
    },
}

/// Read one `KEY=value` from os-release text, unquoting the value.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
    })
}

fn family_of(word: &str) -> Option<Family> {
    match word {
        "debian" | "ubuntu" | "raspbian" | "linuxmint" | "pop" | "devuan" => Some(Family::Debian),
        "rhel" | "fedora" | "centos" | "rocky" | "almalinux" | "ol" | "amzn" => Some(Family::Rhel),
        "alpine" => Some(Family::Alpine),
        _ => None,
    }
}

impl Distro {
    /// Read `<root>/etc/os-release` (or `/usr/lib/os-release`), following
    /// the usual symlink only within the root. `forced` overrides the family.
    pub fn detect(root: &Root, forced: Option<Family>) -> Result<Distro, DistroError> {
        let mut found = None;
        for rel in ["/etc/os-release", "/usr/lib/os-release"] {
            if let Some(bytes) = root.read_following_within(rel)? {
                found = Some((rel, String::from_utf8_lossy(&bytes).into_owned()));
                break;
            }
        }
        let Some((rel, text)) = found else {
            return match forced {
                Some(family) => Ok(Distro {
                    id: "unknown".into(),
                    pretty_name: "unknown".into(),
                    version_id: String::new(),
                    family,
                }),
                None => Err(DistroError::NoOsRelease {
                    path: root.host_path("/etc/os-release").display().to_string(),
                }),
            };
        };
        let id = field(&text, "ID").unwrap_or_default().to_ascii_lowercase();
        let like = field(&text, "ID_LIKE")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let family = forced
            .or_else(|| family_of(&id))
            .or_else(|| like.split_whitespace().find_map(family_of))
            .ok_or_else(|| DistroError::Unknown {
                path: root.host_path(rel).display().to_string(),
                id: id.clone(),
                like: like.clone(),
            })?;
        Ok(Distro {
            pretty_name: field(&text, "PRETTY_NAME").unwrap_or_else(|| id.clone()),
            version_id: field(&text, "VERSION_ID").unwrap_or_default(),
            id,
            family,
        })
    }

    /// Name of the SSH server's systemd unit (for reload and enabling).
    pub fn ssh_service(&self) -> &'static str {
        match self.family {
            Family::Debian => "ssh",
            Family::Rhel | Family::Alpine => "sshd",
        }
    }

    /// The default user's name when cloud.cfg does not say, as the
    /// distribution's cloud images name it.
    pub fn default_user_name(&self) -> &'static str {
        match self.id.as_str() {
            "ubuntu" => "ubuntu",
            "raspbian" => "pi",
            "fedora" => "fedora",
            "rocky" => "rocky",
            "almalinux" => "almalinux",
            "alpine" => "alpine",
            "rhel" | "centos" | "ol" => "cloud-user",
            "amzn" => "ec2-user",
            _ => match self.family {
                Family::Debian => "debian",
                Family::Rhel => "cloud-user",
                Family::Alpine => "alpine",
            },
        }
    }

    /// The default user's groups, as the distribution's cloud.cfg lists them.
    pub fn default_user_groups(&self) -> Vec<String> {
        let list: &[&str] = match self.family {
            Family::Debian => &[
                "adm", "audio", "cdrom", "dialout", "dip", "floppy", "netdev", "plugdev", "sudo",
                "video",
            ],
            Family::Rhel => &["adm", "systemd-journal", "wheel"],
            Family::Alpine => &["adm", "wheel"],
        };
        list.iter().map(|s| s.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(os_release: &str) -> (tempfile::TempDir, Root) {
        crate::host::root::scratch_root(&[("/etc/os-release", os_release)])
    }

    #[test]
    fn families() {
        for (text, family, user) in [
            ("ID=debian\nVERSION_ID=\"12\"\n", Family::Debian, "debian"),
            ("ID=ubuntu\nID_LIKE=debian\n", Family::Debian, "ubuntu"),
            ("ID=raspbian\nID_LIKE=debian\n", Family::Debian, "pi"),
            (
                "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
                Family::Rhel,
                "rocky",
            ),
            (
                "ID=almalinux\nID_LIKE=\"rhel centos fedora\"\n",
                Family::Rhel,
                "almalinux",
            ),
            ("ID=alpine\n", Family::Alpine, "alpine"),
            ("ID=mydebian\nID_LIKE=debian\n", Family::Debian, "debian"),
        ] {
            let (_d, root) = root_with(text);
            let d = Distro::detect(&root, None).unwrap();
            assert_eq!(d.family, family, "{text}");
            assert_eq!(d.default_user_name(), user, "{text}");
        }
    }

    #[test]
    fn unknown_is_a_clear_error_and_can_be_forced() {
        let (_d, root) = root_with("ID=plan9\n");
        let e = Distro::detect(&root, None).unwrap_err().to_string();
        assert!(e.contains("\"plan9\"") && e.contains("--family"), "{e}");
        assert_eq!(
            Distro::detect(&root, Some(Family::Rhel)).unwrap().family,
            Family::Rhel
        );
    }

    #[test]
    fn os_release_symlink_is_followed_within_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("usr/lib/os-release"), "ID=debian\n").unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", dir.path().join("etc/os-release"))
            .unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(Distro::detect(&root, None).unwrap().family, Family::Debian);
    }
}
