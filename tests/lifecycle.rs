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

/// An image of another machine (a Pi's arm64 userland baked on this
/// x86_64 laptop) never gets this machine's binary: with no build for it
/// at hand, install refuses, names both machines and writes nothing; given
/// the right build with --binary, that one goes in.
#[test]
fn install_puts_in_the_build_for_the_images_own_machine() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The first bytes of an aarch64 ELF program are all install reads.
    let mut arm64 = b"\x7fELF\x02\x01\x01\x00".to_vec();
    arm64.extend([0u8; 10]);
    arm64.extend(183u16.to_le_bytes());
    arm64.extend([0u8; 40]);
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(root.join("usr/bin/dash"), &arm64).unwrap();
    std::os::unix::fs::symlink("dash", root.join("usr/bin/sh")).unwrap();
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    let root_arg = root.display().to_string();

    // On an aarch64 machine this binary is the image's own.
    if std::env::consts::ARCH != "aarch64" {
        let out = run(&["install", "--root", &root_arg]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let host = std::env::consts::ARCH;
        assert!(
            text(&out).contains("for aarch64") && text(&out).contains(host),
            "{}",
            text(&out)
        );
        assert!(!root.join("usr/local/sbin/batten").exists());
    }

    let build = dir.path().join("batten-aarch64-unknown-linux-musl");
    std::fs::write(&build, &arm64).unwrap();
    let out = run(&[
        "install",
        "--root",
        &root_arg,
        "--binary",
        &build.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::read(root.join("usr/local/sbin/batten")).unwrap(),
        arm64
    );
}
