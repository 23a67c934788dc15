//! Raspberry Pi OS's own first-boot files on the boot partition:
//! `userconf.txt` (one line `user:crypted-password`, read by Pi OS's
//! userconfig service, which makes or renames the account and then
//! deletes the file) and an empty `ssh` (or `ssh.txt`), which makes Pi OS
//! enable sshd. batten leaves both to Pi OS, which acts on them at the
//! same boot, and says so: they are never silently ignored. Imager's
//! `network-config` may hold a Wi-Fi password, which is not batten's to
//! remove (the network is cloud-init's and the OS's): it stays, and is named.

use crate::host::root::Root;

/// Where Pi OS mounts the boot partition: Bookworm and later first.
pub const BOOT_DIRS: &[&str] = &["/boot/firmware", "/boot"];

/// The files only a Raspberry Pi's boot partition holds.
const FIRMWARE_FILES: &[&str] = &["config.txt", "cmdline.txt"];

/// The boot partition of a Raspberry Pi root: the first of the usual
/// mount points that holds the firmware's own files. It tells a Pi from
/// other machines, which several concerns need (the status file, USB
/// storage that a Pi may boot from).
pub fn boot_partition(root: &Root) -> Option<&'static str> {
    BOOT_DIRS.iter().copied().find(|dir| {
        FIRMWARE_FILES
            .iter()
            .any(|f| matches!(root.metadata(&format!("{dir}/{f}")), Ok(Some(_))))
    })
}

/// What batten tells the owner about the Pi OS files the root holds.
pub fn notes(root: &Root) -> Vec<String> {
    let mut notes = Vec::new();
    let exists = |path: &str| matches!(root.metadata(path), Ok(Some(_)));
    for dir in BOOT_DIRS {
        let userconf = format!("{dir}/userconf.txt");
        if exists(&userconf) {
            let first = root
                .read_to_string(&userconf)
                .ok()
                .flatten()
                .and_then(|text| text.lines().next().map(str::to_string));
            let pair = first.as_deref().and_then(|l| l.split_once(':'));
            // A known default is not left to Pi OS: the passwords concern
            // removes the file and says so.
            let known_default = pair.is_some_and(|(user, hash)| {
                matches!(
                    crate::crypt::defaults::check(user, hash.trim()),
                    crate::crypt::defaults::Verdict::Default(_)
                )
            });
            let user = pair
                .map(|(user, _)| user)
                .filter(|user| crate::input::grammar::account_name(user).is_ok());
            match user {
                _ if known_default => {}
                Some(user) => notes.push(format!(
                    "{userconf} is left to Pi OS's userconfig service: it sets up the account {user} with the password given there, then deletes the file; batten does not read it, and password login stays as the image has it unless the user-data turns it off"
                )),
                None => notes.push(format!(
                    "{userconf} is left to Pi OS's userconfig service, which reads and deletes it; its first line is not `user:crypted-password`, so Pi OS may refuse it"
                )),
            }
        }
        // Imager's netplan file: a Wi-Fi password Pi OS reads at every boot.
        let network = format!("{dir}/network-config");
        if root
            .read_to_string(&network)
            .ok()
            .flatten()
            .is_some_and(|text| text.contains("password:"))
        {
            notes.push(format!(
                "{network} holds the Wi-Fi password: batten leaves the network to cloud-init and the OS, so it stays on the card, readable by anyone holding it; remove it once the Pi is on the network"
            ));
        }
        for name in ["ssh", "ssh.txt"] {
            let path = format!("{dir}/{name}");
            if exists(&path) {
                notes.push(format!(
                    "{path} is left to Pi OS, which enables sshd at this boot and deletes the file"
                ));
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    #[test]
    fn userconf_and_ssh_are_named_never_ignored() {
        let (_dir, root) = scratch_root(&[
            ("/boot/firmware/userconf.txt", "pi:$6$salt$hash\n"),
            ("/boot/firmware/ssh", ""),
            (
                "/boot/firmware/network-config",
                "network:\n  wifis:\n    wlan0:\n      access-points:\n        home:\n          password: \"secret\"\n",
            ),
        ]);
        let said = notes(&root);
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0].contains("account pi"), "{said:?}");
        assert!(!said[0].contains("$6$"), "no hash in a note: {said:?}");
        assert!(said[1].contains("Wi-Fi password"), "{said:?}");
        assert!(!said[1].contains("secret"), "{said:?}");
        assert!(said[2].contains("enables sshd"), "{said:?}");
        let (_dir, bad) = scratch_root(&[("/boot/userconf.txt", "no colon here\n")]);
        assert!(notes(&bad)[0].contains("Pi OS may refuse it"));
        let (_dir, none) = scratch_root(&[]);
        assert!(notes(&none).is_empty());
    }
}
