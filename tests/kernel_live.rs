//! The kernel settings loaded for real by `sysctl -p`, through batten's
//! runner, without touching this machine's own settings: the load runs in
//! a thread that entered a network namespace of its own, where every
//! `net.ipv4` / `net.ipv6` setting (and `net.ipv4.tcp_syncookies`) is the
//! namespace's, and `sysctl` started from that thread inherits it. The
//! `kernel.*` and `fs.*` settings have no namespace: loading them would
//! change this machine, so they are left out of the file loaded here and
//! proven by the render tests (the text) and the image test (the file in
//! place) instead. `net.core.bpf_jit_harden` exists only in the first
//! network namespace, so the namespace also proves a key the kernel lacks
//! is reported, not fatal.

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
    let net: Vec<_> = SETTINGS
        .iter()
        .copied()
        .filter(|s| s.key.starts_with("net."))
        .collect();
    assert!(net.len() >= 15, "{net:?}");
    // The file as batten renders it, its net lines only (and their comments).
    let text: String = plan::sysctl_text()
        .split("\n\n")
        .filter(|block| {
            block.starts_with('#') && !block.contains("\nkernel.") && !block.contains("\nfs.")
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    assert!(
        text.contains("\nnet.ipv4.conf.all.accept_redirects = 0"),
        "{text}"
    );
    assert!(
        !text.contains("\nkernel.") && !text.contains("\nfs."),
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

    let inside = std::thread::spawn({
        let net = net.clone();
        move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("a network namespace of its own");
            let fresh = verify::compare(proc_sys, &net);
            let loaded = apply::load_file(&batten::host::exec::System, &file).expect("sysctl runs");
            (fresh, loaded, verify::compare(proc_sys, &net))
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
}
