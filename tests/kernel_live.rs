//! The kernel settings loaded for real by `sysctl -p`, through batten's
//! runner, without touching this machine's own settings: the load runs in
//! a thread that entered a network namespace of its own, where every
//! `net.ipv4` / `net.ipv6` setting (and `net.ipv4.tcp_syncookies`) is the
//! namespace's, and `sysctl` started from that thread inherits it. The
//! `kernel.*`, `fs.*` and `dev.*` settings have no namespace: loading them would
//! change this machine, so they are left out of the file loaded here and
//! proven by the render tests (the text) and the image test (the file in
//! place) instead. `net.core.bpf_jit_harden` exists only in the first
//! network namespace, so the namespace also proves a key the kernel lacks
//! is reported, not fatal. The same thread then runs batten's own step
//! (`Action::LoadSysctl` on the running system), which sees it is not in
//! PID 1's network namespace and sets the net.* settings only.

mod common;

use std::path::Path;

use batten::concerns::kernel::{SETTINGS, apply, plan, verify};
use common::*;

#[test]
fn net_settings_load_in_a_namespace_and_this_machine_keeps_its_own() {
    const T: &str = "net_settings_load_in_a_namespace_and_this_machine_keeps_its_own";
    if !privileged(T) || !have("sysctl", T) {
        return;
    }
    assert!(
        apply::own_machine(),
        "the test itself runs in the machine's own namespace"
    );
    let net: Vec<_> = SETTINGS
        .iter()
        .copied()
        .filter(|s| s.key.starts_with("net."))
        .collect();
    assert!(net.len() >= 15, "{net:?}");
    // The file as batten renders it, its net lines only (and their comments).
    let text: String = plan::sysctl_text()
        .split("\n\n")
        // Only blocks whose every setting is a net.* one: anything else
        // (kernel.*, fs.*, dev.*) is the machine's own.
        .filter(|block| {
            block.starts_with('#')
                && block.lines().any(|l| l.starts_with("net."))
                && block
                    .lines()
                    .all(|l| l.is_empty() || l.starts_with('#') || l.starts_with("net."))
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    assert!(
        text.contains("\nnet.ipv4.conf.all.accept_redirects = 0"),
        "{text}"
    );
    assert!(
        text.lines()
            .all(|l| l.is_empty() || l.starts_with('#') || l.starts_with("net.")),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zz-batten.conf");
    std::fs::write(&file, format!("{text}\n")).unwrap();

    let proc_sys = Path::new("/proc/sys");
    let host = |settings: &[batten::concerns::kernel::Setting]| -> Vec<Option<String>> {
        settings
            .iter()
            .map(|s| verify::live_value(proc_sys, s.key))
            .collect()
    };
    let before = host(&net);
    let all_before = host(SETTINGS);

    let inside = std::thread::spawn({
        let net = net.clone();
        move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("a network namespace of its own");
            let fresh = verify::compare(proc_sys, &net);
            let loaded = apply::load_file(&batten::host::exec::System, &file).expect("sysctl runs");
            let after_file = verify::compare(proc_sys, &net);
            // Again from a fresh namespace, through batten's step on "/".
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("another one");
            assert!(!apply::own_machine());
            assert!(!verify::compare(proc_sys, &net).0.is_empty());
            let root = batten::host::root::Root::open(Path::new("/")).unwrap();
            assert!(root.is_host());
            let step = apply::load(
                &batten::host::exec::System,
                &root,
                batten::concerns::kernel::SYSCTL_FILE,
            );
            assert!(matches!(step, Ok(true)), "{step:?}");
            assert!(
                verify::compare(proc_sys, &net).0.is_empty(),
                "batten's step set them"
            );
            (fresh, loaded, after_file)
        }
    })
    .join()
    .unwrap();
    let ((fresh_differ, _), loaded, (differ, missing)) = inside;
    assert!(
        !fresh_differ.is_empty(),
        "a fresh namespace differs from batten's settings, or the test proves nothing"
    );
    assert!(loaded.refused.is_empty(), "{loaded:?}");
    assert!(differ.is_empty(), "after the load: {differ:?}");
    assert_eq!(
        loaded.missing, missing,
        "sysctl's missing keys are the ones /proc/sys lacks"
    );
    assert_eq!(missing, ["net.core.bpf_jit_harden"]);

    assert_eq!(before, host(&net), "this machine's own settings changed");
    assert_eq!(
        all_before,
        host(SETTINGS),
        "this machine's kernel.*, fs.* or dev.* changed"
    );
}
