//! batten on a real Debian 12 root (debootstrap, cached outside the
//! checkout by `images/debian-root.sh`) whose programs differ from this
//! machine's: the image has nginx-light, which loads its echo module from
//! the image's /usr/share/nginx, and this machine's nginx is Debian's
//! other package, without that module. The image's configuration must be
//! checked by the image's own programs, inside the image, without a byte of
//! the image changing for it; a program that cannot run here is named as a
//! static-only check, never skipped in silence.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A private copy of the cached real root for `test` (removed with the
/// returned directory); `None` where the test skips (never under CI).
fn fresh_image(test: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    debian_root(test).map(|cached| copy_of(&cached))
}

/// The cached real root, built on first use.
fn debian_root(test: &str) -> Option<PathBuf> {
    if !privileged(test) || !have("debootstrap", test) || !have("unshare", test) {
        return None;
    }
    let out = Command::new(repo().join("images/debian-root.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "images/debian-root.sh failed: {}",
        text(&out)
    );
    Some(PathBuf::from(
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    ))
}

/// A private copy of the cached root, removed with the returned directory.
fn copy_of(root: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("root");
    let status = Command::new("cp")
        .args(["-a"])
        .arg(root)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    (dir, copy)
}

fn run_on(root: &Path, dir: &Path, extra: &[&str]) -> std::process::Output {
    let meta = dir.join("meta-data");
    std::fs::write(&meta, "instance-id: image-root-test\n").unwrap();
    let ud = repo().join("cloud-init/examples/vps-proxy-firewall.yaml");
    let mut c = batten();
    c.env("RUST_LOG", "debug")
        .arg("run")
        .arg("--root")
        .arg(root)
        .arg("--user-data")
        .arg(ud)
        .arg("--meta-data")
        .arg(&meta)
        .args(extra);
    c.output().unwrap()
}

/// The image's logs, run and tmp directories: what a check run on the
/// image itself would write to, had it not a copy-on-write view.
fn scratch_areas(root: &Path) -> Vec<(PathBuf, std::collections::BTreeMap<PathBuf, Seen>)> {
    ["var/log", "run", "tmp"]
        .iter()
        .map(|d| (root.join(d), snapshot(&root.join(d))))
        .collect()
}

#[test]
fn the_images_own_programs_check_the_image() {
    const T: &str = "the_images_own_programs_check_the_image";
    let Some((dir, root)) = fresh_image(T) else {
        return;
    };
    assert!(
        root.join("etc/nginx/modules-enabled/50-mod-http-echo.conf")
            .symlink_metadata()
            .is_ok(),
        "the image's nginx-light enables its echo module"
    );
    let before = scratch_areas(&root);
    let out = run_on(&root, dir.path(), &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for program in ["nginx", "sshd", "visudo", "nft"] {
        assert!(
            said.contains(&format!(
                "{program}: the image's own /usr/sbin/{program}, run inside the image"
            )),
            "{program} was not the image's own:\n{said}"
        );
    }
    assert!(!said.contains("statically only"), "{said}");
    // Not a byte of the image changed for the checks.
    for (path, was) in before {
        assert_eq!(
            changed(&was, &snapshot(&path)),
            Vec::<PathBuf>::new(),
            "{}",
            path.display()
        );
    }
    // verify --root asks the image's programs too.
    let out = run(&["verify", "--root", &root.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
}

/// `install` asks the image's own ssh what it supports and keeps the
/// answer, keyed by the program's digest: the first run plans from it and
/// starts no `ssh -Q` (four programs fewer on sshd's path); a record for
/// another program is not trusted, and ssh is asked again.
#[test]
fn install_keeps_what_the_images_ssh_supports() {
    const T: &str = "install_keeps_what_the_images_ssh_supports";
    let Some((dir, root)) = fresh_image(T) else {
        return;
    };
    let out = run(&["install", "--root", &root.display().to_string()]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("kept what the image's ssh supports in /var/lib/batten/ssh-algorithms.json"),
        "{said}"
    );
    let record_path = root.join("var/lib/batten/ssh-algorithms.json");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(record["asked"]["program"], "/usr/bin/ssh", "{record:#}");
    let digest = Command::new("sha256sum")
        .arg(root.join("usr/bin/ssh"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&digest.stdout)
            .split_whitespace()
            .next(),
        record["asked"]["sha256"].as_str(),
        "the record names the image's ssh by its digest"
    );
    assert!(
        record["supported"]["kex"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "curve25519-sha256"),
        "{record:#}"
    );
    let meta = std::fs::metadata(&record_path).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );

    let (_plan_dir, planned) = copy_of(&root);
    let from_record = run_on(&planned, dir.path(), &[]);
    let said = text(&from_record);
    assert!(from_record.status.success(), "{said}");
    assert!(
        !said.contains("ssh -Q"),
        "ssh was asked despite the record:\n{said}"
    );

    // A record of another program is not trusted: ssh is asked again, and
    // the policy written is the same.
    let mut other = record.clone();
    other["asked"]["sha256"] = serde_json::json!("00".repeat(32));
    std::fs::write(&record_path, other.to_string()).unwrap();
    let asked = run_on(&root, dir.path(), &[]);
    let said = text(&asked);
    assert!(asked.status.success(), "{said}");
    assert!(said.contains("ssh -Q kex"), "ssh was not asked:\n{said}");
    let policy =
        |r: &Path| std::fs::read_to_string(r.join("etc/ssh/sshd_config.d/00-batten.conf")).unwrap();
    assert_eq!(policy(&planned), policy(&root));
}

/// The image's nginx replaced by a program of a machine nothing here runs:
/// the run still succeeds on what can be checked, names `nginx -t` as
/// static-only (and why), records it for the first boot, and verify
/// --root warns instead of passing it.
#[test]
fn a_program_that_cannot_run_here_is_named_static_only() {
    const T: &str = "a_program_that_cannot_run_here_is_named_static_only";
    let Some((dir, root)) = fresh_image(T) else {
        return;
    };
    // An ELF header for machine 0xBEEF: no kernel and no binfmt handler runs it.
    let mut elf = b"\x7fELF\x02\x01\x01\x00".to_vec();
    elf.extend([0u8; 10]);
    elf.extend(0xBEEFu16.to_le_bytes());
    elf.extend([0u8; 100]);
    let nginx = root.join("usr/sbin/nginx");
    std::fs::write(&nginx, &elf).unwrap();
    std::os::unix::fs::chown(&nginx, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&nginx, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let out = run_on(&root, dir.path(), &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("checked statically only") && said.contains("nginx -t"),
        "{said}"
    );
    assert!(said.contains("ELF machine 48879"), "{said}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("var/lib/batten/state.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["static_only"],
        serde_json::json!(["nginx -t"]),
        "{state:#}"
    );

    let out = run(&[
        "verify",
        "--root",
        &root.display().to_string(),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nginx_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"] == "nginx -t")
        .unwrap_or_else(|| panic!("no nginx -t check: {report:#}"));
    assert_eq!(nginx_check["status"], "warn", "{report:#}");
    // An image's verify cannot seal what only the machine can check live.
    let out = run(&["verify", "--root", &root.display().to_string(), "--seal"]);
    assert!(text(&out).contains("not sealed"), "{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// The image's sshd replaced by a program nothing here runs: no key login
/// can be proven, so password login must not go off. The run stops (exit
/// 70), everything it wrote is put back, and it says how to go on.
#[test]
fn password_login_never_goes_off_unproven() {
    const T: &str = "password_login_never_goes_off_unproven";
    let Some((dir, root)) = fresh_image(T) else {
        return;
    };
    let sshd = root.join("usr/sbin/sshd");
    let mut elf = b"\x7fELF\x02\x01\x01\x00".to_vec();
    elf.extend([0u8; 10]);
    elf.extend(0xBEEFu16.to_le_bytes());
    elf.extend([0u8; 100]);
    std::fs::write(&sshd, &elf).unwrap();
    let before = snapshot(&root.join("etc"));
    let out = run_on(&root, dir.path(), &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(70), "{said}");
    assert!(
        said.contains("no key login can be proven") && said.contains("qemu-user-static"),
        "{said}"
    );
    let after = snapshot(&root.join("etc"));
    let strip = |m: &std::collections::BTreeMap<PathBuf, Seen>| {
        m.iter()
            .map(|(p, s)| (p.clone(), (s.kind, s.mode, s.uid, s.gid, s.content.clone())))
            .collect::<Vec<_>>()
    };
    assert!(
        strip(&before) == strip(&after),
        "/etc changed: {:?}",
        changed(&before, &after)
    );
}

/// The updates and kernel concerns on the real Debian 12 root, which has
/// apt and its timers but not unattended-upgrades: the configuration is
/// written (root-owned, 0644), the timers enabled as `systemctl enable`
/// would, the installer unit written and enabled for the first boot; the
/// sysctl, modprobe and limits files are in place. `--root` never loads
/// anything into the running kernel nor starts a unit: `sysctl` and
/// `systemctl` first on PATH only record that they were called, and this
/// machine's own values stay as they were.
#[test]
fn updates_and_kernel_settings_are_written_and_nothing_is_loaded() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const T: &str = "updates_and_kernel_settings_are_written_and_nothing_is_loaded";
    let Some((dir, root)) = fresh_image(T) else {
        return;
    };
    let example =
        std::fs::read_to_string(repo().join("cloud-init/examples/vps-proxy-firewall.yaml"))
            .unwrap();
    let ud = example.replace(
        "\nbatten:\n",
        "\nbatten:\n  updates: { packages: all, reboot: \"03:30\" }\n",
    );
    assert_ne!(ud, example);
    let ud_path = dir.path().join("user-data");
    std::fs::write(&ud_path, ud).unwrap();
    std::fs::write(
        dir.path().join("meta-data"),
        "instance-id: updates-kernel\n",
    )
    .unwrap();
    // Programs that must not run for an image: they record any call.
    let bin = dir.path().join("bin");
    let calls = dir.path().join("calls");
    std::fs::create_dir(&bin).unwrap();
    for program in ["sysctl", "systemctl"] {
        let path = bin.join(program);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{program} $*\" >> {}\nexit 1\n",
                calls.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let host_values = || {
        [
            "kernel/kptr_restrict",
            "fs/protected_fifos",
            "net/ipv4/conf/all/log_martians",
            "net/ipv4/conf/all/accept_redirects",
        ]
        .map(|k| std::fs::read_to_string(Path::new("/proc/sys").join(k)).unwrap())
    };
    let live = host_values();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let out = batten()
        .env("RUST_LOG", "debug")
        .env("PATH", &path)
        .args(["run", "--root"])
        .arg(&root)
        .arg("--user-data")
        .arg(&ud_path)
        .arg("--meta-data")
        .arg(dir.path().join("meta-data"))
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        !calls.exists(),
        "--root ran {:?}",
        std::fs::read_to_string(&calls)
    );
    assert_eq!(
        live,
        host_values(),
        "this machine's kernel settings changed"
    );
    assert!(
        said.contains(
            "unattended-upgrades is not installed in the root: batten-updates.service installs it"
        ),
        "{said}"
    );

    let file = |rel: &str| {
        let p = root.join(rel.trim_start_matches('/'));
        let m = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{rel}: {e}\n{said}"));
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (0, 0, 0o644),
            "{rel}"
        );
        std::fs::read_to_string(p).unwrap()
    };
    let periodic = file("/etc/apt/apt.conf.d/20auto-upgrades");
    assert!(
        periodic.contains("APT::Periodic::Unattended-Upgrade \"1\";"),
        "{periodic}"
    );
    let options = file("/etc/apt/apt.conf.d/52batten-unattended-upgrades");
    assert!(
        options.contains("Unattended-Upgrade::Origins-Pattern { \"origin=*\"; };"),
        "{options}"
    );
    assert!(
        options.contains("Unattended-Upgrade::Automatic-Reboot-Time \"03:30\";"),
        "{options}"
    );
    let unit = file("/etc/systemd/system/batten-updates.service");
    // Nothing waits for it: the only unit it orders itself before is
    // shutdown (a unit that is stopped at shutdown, like any service).
    assert!(
        unit.contains("After=network-online.target")
            && unit
                .lines()
                .filter(|l| l.starts_with("Before="))
                .all(|l| l == "Before=shutdown.target"),
        "{unit}"
    );
    let sysctl = file("/etc/sysctl.d/zz-batten.conf");
    assert!(
        sysctl.contains("# KRNL-6000: only root reads the kernel log\nkernel.dmesg_restrict = 1\n"),
        "{sysctl}"
    );
    let modprobe = file("/etc/modprobe.d/60-batten.conf");
    for kept_out in ["tipc", "firewire-core", "cramfs", "hfsplus"] {
        assert!(
            modprobe.contains(&format!("install {kept_out} /bin/true\n")),
            "{modprobe}"
        );
    }
    // An image's hardware is unknown: a disk on USB must stay bootable.
    assert!(!modprobe.contains("usb-storage"), "{modprobe}");
    let login_defs = file("/etc/login.defs");
    assert!(
        login_defs.contains("ENCRYPT_METHOD SHA512\n")
            && login_defs.ends_with("\nSHA_CRYPT_MIN_ROUNDS 65536\nSHA_CRYPT_MAX_ROUNDS 65536\n"),
        "{login_defs}"
    );
    assert!(file("/etc/security/limits.d/60-batten.conf").contains("* hard core 0\n"));
    for (link, target) in [
        (
            "etc/systemd/system/multi-user.target.wants/batten-updates.service",
            "/etc/systemd/system/batten-updates.service",
        ),
        (
            "etc/systemd/system/timers.target.wants/apt-daily.timer",
            "/lib/systemd/system/apt-daily.timer",
        ),
        (
            "etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
            "/lib/systemd/system/apt-daily-upgrade.timer",
        ),
    ] {
        assert_eq!(
            std::fs::read_link(root.join(link)).unwrap(),
            Path::new(target),
            "{link}"
        );
    }

    // verify --root: the files pass, the package is on its way, nothing
    // has run yet, and the live kernel is not this image's.
    let out = batten()
        .env("PATH", &path)
        .args(["verify", "--format", "json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |id: &str| -> Vec<String> {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            // An id, or the kind of a check with one id per item
            // (`updates.timer.<unit>`, `kernel.file.<path>`).
            .filter(|c| {
                let cid = c["id"].as_str().unwrap();
                cid == id || cid.starts_with(&format!("{id}."))
            })
            .map(|c| c["status"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(status("updates.config"), ["pass"], "{report:#}");
    assert_eq!(status("updates.options"), ["pass"], "{report:#}");
    assert_eq!(status("updates.installed"), ["warn"], "{report:#}");
    assert_eq!(status("updates.timer"), ["pass", "pass"], "{report:#}");
    assert_eq!(status("updates.last-run"), ["skip"], "{report:#}");
    assert_eq!(status("kernel.file"), ["pass"; 4], "{report:#}");
    assert_eq!(status("kernel.sysctl"), ["skip"], "{report:#}");
    assert_eq!(status("passwords.rounds"), ["pass"], "{report:#}");
    let out = batten()
        .env("PATH", &path)
        .args(["status", "--format", "json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["updates"],
        "unattended-upgrades not in the image: batten-updates.service installs it at first boot",
        "{status:#}"
    );
    assert!(
        !calls.exists(),
        "verify --root ran {:?}",
        std::fs::read_to_string(&calls)
    );
}
