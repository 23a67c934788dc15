//! Baking batten into an image and re-arming it, on a scratch root, with
//! systemd's own check of the unit.

mod common;

use std::process::Command;

use common::*;

#[test]
fn install_into_an_image_and_systemd_accepts_the_unit() {
    const T: &str = "install_into_an_image_and_systemd_accepts_the_unit";
    if !have("systemd-analyze", T) {
        return;
    }
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.join("/etc/systemd/system")).unwrap();
    // An image has systemd's own units, which the verify unit is ordered against.
    std::fs::create_dir_all(scratch.join("/usr/lib/systemd")).unwrap();
    let copied = Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system"])
        .arg(scratch.join("/usr/lib/systemd"))
        .status()
        .unwrap();
    assert!(copied.success());
    let out = run(&["install", "--root", &scratch.root_arg(), "--generalize"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !scratch.join("/etc/ssh/ssh_host_ed25519_key").exists(),
        "--generalize removes host keys"
    );
    assert_eq!(std::fs::read(scratch.join("/etc/machine-id")).unwrap(), b"");
    // `man batten` on the machine: the page the binary makes.
    let page = std::fs::read_to_string(scratch.join("/usr/local/share/man/man8/batten.8")).unwrap();
    assert!(
        page.contains(".TH batten 8"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains(".SH EXIT STATUS") && page.contains(".SS batten run"));
    let installed = std::fs::read(scratch.join("/usr/local/sbin/batten")).unwrap();
    assert_eq!(
        installed,
        std::fs::read(env!("CARGO_BIN_EXE_batten")).unwrap()
    );
    let verify = Command::new("systemd-analyze")
        .arg(format!("--root={}", scratch.root_arg()))
        .args([
            "verify",
            "/etc/systemd/system/batten.service",
            "/etc/systemd/system/batten-metadata.service",
            "/etc/systemd/system/batten-verify.service",
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze: {}",
        text(&verify)
    );
    let again = run(&["install", "--root", &scratch.root_arg()]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already installed"),
        "{}",
        text(&again)
    );
}

#[test]
fn install_refuses_the_running_system() {
    let out = run(&["install", "--root", "/"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not on the running system"));
}
