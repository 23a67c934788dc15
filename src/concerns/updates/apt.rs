//! unattended-upgrades' configuration, rendered by pure functions.
//!
//! apt reads `/etc/apt/apt.conf.d` in name order and a later value of a
//! single setting replaces an earlier one, while a list (`Origins-Pattern`)
//! grows: so batten's file, named to sort after the package's
//! `50unattended-upgrades`, adds the origin `all` asks for and sets the
//! reboot, and the rest of the package's defaults stay.

use crate::input::model::{UpdatePackages, Updates};

/// Switches the periodic runs on (`dpkg-reconfigure unattended-upgrades`
/// writes the same file).
pub const PERIODIC: &str = "/etc/apt/apt.conf.d/20auto-upgrades";
/// batten's own settings: every origin, the reboot.
pub const OPTIONS: &str = "/etc/apt/apt.conf.d/52batten-unattended-upgrades";

/// `20auto-upgrades`.
pub fn periodic_text() -> String {
    "// Written by batten (batten.updates): apt's daily timers refresh the\n\
     // package lists and run unattended-upgrade.\n\
     APT::Periodic::Update-Package-Lists \"1\";\n\
     APT::Periodic::Unattended-Upgrade \"1\";\n"
        .to_string()
}

/// batten's options file, or `None` when the package's defaults are what
/// the user-data asks for (security only, no reboot).
pub fn options_text(u: &Updates) -> Option<String> {
    if u.packages == UpdatePackages::Security && u.reboot.is_none() {
        return None;
    }
    let mut out = String::from("// Written by batten (batten.updates).\n");
    if u.packages == UpdatePackages::All {
        out.push_str(
            "// packages: all: every origin apt installs from, not only security.\n\
             Unattended-Upgrade::Origins-Pattern { \"origin=*\"; };\n",
        );
    }
    if let Some(t) = u.reboot {
        out.push_str(&format!(
            "// reboot: when an update needs it, at {t}.\n\
             Unattended-Upgrade::Automatic-Reboot \"true\";\n\
             Unattended-Upgrade::Automatic-Reboot-Time \"{t}\";\n"
        ));
    }
    Some(out)
}

/// The value of a single setting in apt configuration text (`Key "v";`),
/// the last one winning as apt reads it.
pub fn setting(text: &str, key: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(key)?;
            let value = rest.trim().strip_prefix('"')?;
            Some(value.split('"').next()?.to_string())
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::model::RebootTime;

    #[test]
    fn periodic_and_options() {
        let p = periodic_text();
        assert_eq!(
            setting(&p, "APT::Periodic::Unattended-Upgrade").as_deref(),
            Some("1")
        );
        assert_eq!(
            setting(&p, "APT::Periodic::Update-Package-Lists").as_deref(),
            Some("1")
        );
        assert_eq!(options_text(&Updates::default()), None);
        let u = Updates {
            packages: UpdatePackages::All,
            reboot: Some(RebootTime { hour: 3, minute: 5 }),
            ..Updates::default()
        };
        assert_eq!(
            options_text(&u).unwrap(),
            "// Written by batten (batten.updates).\n\
             // packages: all: every origin apt installs from, not only security.\n\
             Unattended-Upgrade::Origins-Pattern { \"origin=*\"; };\n\
             // reboot: when an update needs it, at 03:05.\n\
             Unattended-Upgrade::Automatic-Reboot \"true\";\n\
             Unattended-Upgrade::Automatic-Reboot-Time \"03:05\";\n"
        );
        assert_eq!(setting("APT::Periodic::Unattended-Upgrade \"0\";\n// x\nAPT::Periodic::Unattended-Upgrade \"1\";", "APT::Periodic::Unattended-Upgrade").as_deref(), Some("1"));
    }
}
