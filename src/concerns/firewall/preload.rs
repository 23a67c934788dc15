//! The nftables ruleset's kernel modules, loaded while batten still reads
//! and plans, so that loading the firewall before sshd does not wait for
//! them.
//!
//! A bare image never loads nf_tables; the first `nft -f` makes the kernel
//! load each module the ruleset needs in turn, starting `modprobe` once per
//! module. Natively that is a few milliseconds; under software emulation it
//! was most of the 1.7 s the first load took. One `modprobe -a` started
//! beside the rest of the run loads them all at once, and the load waits
//! only for what is not done yet (the kernel serialises a module's loading,
//! so nothing is loaded twice).
//!
//! Only on the machine itself, in its own namespaces (a container's kernel
//! is its host's), when the run will load an nftables firewall and nf_tables
//! is not loaded yet. Nothing depends on it: if it fails, `nft` loads the
//! modules as it always did.

use log::debug;

use super::{Kind, choose, root_has};
use crate::host::exec::{Call, Runner, System};
use crate::host::root::Root;
use crate::input::model::UserData;

/// What the ruleset batten writes needs beyond nf_tables' core: conntrack
/// (`ct state`), `limit` and `log`. modprobe brings their dependencies.
pub const MODULES: &[&str] = &["nf_tables", "nft_ct", "nft_limit", "nft_log"];

/// Whether a run with `ud` on `root` gains from loading [`MODULES`] now.
pub fn wanted(root: &Root, ud: &UserData) -> bool {
    root.is_host()
        && ud.batten.firewall.enabled
        && crate::host::netns::machine_wide()
        && !std::path::Path::new("/sys/module/nf_tables").exists()
        && choose(ud.batten.firewall.backend, |p| root_has(root, p)) == Ok(Kind::Nftables)
}

/// Start loading [`MODULES`] in the background where [`wanted`]; the run
/// goes on at once and never waits for it.
pub fn start(root: &Root, ud: &UserData) {
    if !wanted(root, ud) {
        return;
    }
    std::thread::spawn(|| {
        let mut args = vec!["-a", "-q", "-b"];
        args.extend(MODULES);
        let call = Call {
            program: "modprobe",
            args: &args,
            stdin: None,
        };
        if let Err(e) = System.run(&call) {
            debug!("loading the firewall's modules ahead: {e} (nft loads them itself)");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    #[test]
    fn never_for_an_image_nor_without_the_firewall() {
        let ud = |text: &str| crate::input::load("u", text.as_bytes()).unwrap().user_data;
        let (_dir, image) = scratch_root(&[("/usr/sbin/nft", "")]);
        assert!(
            !wanted(&image, &ud("#cloud-config\n")),
            "an image's modules are its kernel's, later"
        );
        let host = Root::open(std::path::Path::new("/")).unwrap();
        assert!(!wanted(
            &host,
            &ud("#cloud-config\nbatten:\n  firewall:\n    enabled: false\n")
        ));
        assert!(!wanted(
            &host,
            &ud("#cloud-config\nbatten:\n  firewall:\n    backend: iptables\n")
        ));
    }
}
