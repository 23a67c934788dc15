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
    worth_it(
        Here {
            on_the_machine: root.is_host(),
            machine_wide: crate::host::netns::machine_wide(),
            loaded: std::path::Path::new("/sys/module/nf_tables").exists(),
        },
        ud,
        |p| root_has(root, p),
    )
}

/// Where the run is, as [`worth_it`] weighs it.
struct Here {
    /// The run works on the machine itself, not an image.
    on_the_machine: bool,
    /// Its kernel's modules are the run's to load (not a container, not
    /// another network namespace).
    machine_wide: bool,
    /// nf_tables is loaded already.
    loaded: bool,
}

fn worth_it(here: Here, ud: &UserData, has: impl Fn(&str) -> bool) -> bool {
    here.on_the_machine
        && here.machine_wide
        && !here.loaded
        && ud.batten.firewall.enabled
        && choose(ud.batten.firewall.backend, has) == Ok(Kind::Nftables)
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
        match System.run(&call) {
            Ok(out) if out.success => {}
            Ok(out) => debug!(
                "loading the firewall's modules ahead: {} (nft loads them itself)",
                out.stderr.trim()
            ),
            Err(e) => debug!("loading the firewall's modules ahead: {e} (nft loads them itself)"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    #[test]
    fn only_on_the_machine_itself_for_an_nftables_firewall_not_yet_loaded() {
        let ud = |text: &str| crate::input::load("u", text.as_bytes()).unwrap().user_data;
        let plain = ud("#cloud-config\n");
        let here = |on_the_machine, machine_wide, loaded| Here {
            on_the_machine,
            machine_wide,
            loaded,
        };
        let nft = |p: &str| p == "nft";
        let both = |_: &str| true;
        assert!(worth_it(here(true, true, false), &plain, nft));
        assert!(
            worth_it(here(true, true, false), &plain, both),
            "auto picks nft"
        );
        assert!(!worth_it(here(false, true, false), &plain, nft), "an image");
        assert!(
            !worth_it(here(true, false, false), &plain, nft),
            "a container's kernel"
        );
        assert!(
            !worth_it(here(true, true, true), &plain, nft),
            "already loaded"
        );
        let off = ud("#cloud-config\nbatten:\n  firewall:\n    enabled: false\n");
        assert!(!worth_it(here(true, true, false), &off, nft));
        let ipt = ud("#cloud-config\nbatten:\n  firewall:\n    backend: iptables\n");
        assert!(!worth_it(here(true, true, false), &ipt, both));
        assert!(
            !worth_it(here(true, true, false), &plain, |p| p != "nft"),
            "no nft: the iptables backend"
        );
        let (_dir, image) = scratch_root(&[("/usr/sbin/nft", "")]);
        assert!(!wanted(&image, &plain));
    }
}
