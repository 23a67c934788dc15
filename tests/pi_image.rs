//! A Raspberry Pi card, end to end, on this x86_64 machine: an arm64
//! Debian root shaped like Raspberry Pi OS (`images/pi-root.sh`: sshd
//! installed but disabled, `pi` with the password `raspberry`), and its
//! FAT boot partition as an image file (`images/pi-boot.sh`) mounted at
//! `/boot/firmware` through FUSE (`fusefat`; this kernel has no vfat).
//! The x86_64 batten bakes the aarch64 build in, and that build, run
//! under qemu-user through binfmt_misc, does the whole first boot on the
//! root: the image's own arm64 sshd checks the result.
//!
//! Everything runs on copies in temporary directories; the FUSE mount is
//! undone when the test ends, whatever happened.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// `openssl passwd -6 -salt abcdefgh 'correct horse battery'`: the hash
/// Imager would write for the owner's password.
const HASH: &str = "$6$abcdefgh$dTmIYmW/LpvGK/iiDSK9zlcKIRJ33.7YE9DETLAR1zX9/2./Fv6/8dFZ1tCs/Kfp//7QeoJfyRWP7XdDzP87j1";

/// Debian 12's `mkpasswd -m yescrypt raspberry`: `pi`'s password as Pi OS
/// itself stores it (yescrypt, Debian's default since 11).
const DEFAULT_YESCRYPT: &str =
    "$y$j9T$bueRBYFHX06XJDMnF8YUN1$we0SojwqKYp1AL5U.Vs4Ao4hfIjouUmD4qoYTlBQB94";

/// The instance Imager would have named.
const INSTANCE: &str = "rpi-imager-1733300000";

/// What Raspberry Pi Imager writes, with a key (and the keys batten makes
/// limited to the fast ones: RSA under an emulator takes a minute).
fn imager_user_data() -> String {
    format!(
        "#cloud-config\nhostname: raspberrypi\nuser:\n  name: pi\n  passwd: {HASH}\n  lock_passwd: false\n  ssh_authorized_keys:\n    - {KEY}\nssh_pwauth: false\nssh_genkeytypes: [ed25519, ecdsa]\nruncmd:\n  - systemctl enable ssh\n"
    )
}

/// A copy of the cached Pi-shaped root with a boot partition mounted in.
/// fusefat runs in the foreground as this test's child: `fusermount -u`
/// returns before fusefat has written its last sectors (the FAT's clean
/// bit among them), so the image is read only once fusefat has exited.
struct Card {
    dir: tempfile::TempDir,
    fusefat: Option<std::process::Child>,
}

impl Card {
    /// `files` go on the boot partition.
    fn new(test: &str, files: &[(&str, String)]) -> Option<Card> {
        if !privileged(test)
            || !have("fusefat", test)
            || !have("fusermount", test)
            || !have("fsck.vfat", test)
        {
            return None;
        }
        let built = Command::new("bash")
            .arg(repo().join("images/pi-root.sh"))
            .output()
            .expect("run images/pi-root.sh");
        assert!(built.status.success(), "pi-root.sh: {}", text(&built));
        let cached = String::from_utf8(built.stdout).unwrap().trim().to_string();
        let dir = tempfile::tempdir().unwrap();
        let copy = Command::new("cp")
            .args(["-a", &cached])
            .arg(dir.path().join("root"))
            .output()
            .unwrap();
        assert!(copy.status.success(), "{}", text(&copy));
        let seed = dir.path().join("seed");
        std::fs::create_dir(&seed).unwrap();
        for (name, body) in files {
            std::fs::write(seed.join(name), body).unwrap();
        }
        let image = dir.path().join("boot.img");
        let made = Command::new("bash")
            .arg(repo().join("images/pi-boot.sh"))
            .arg(&seed)
            .arg(&image)
            .output()
            .unwrap();
        assert!(made.status.success(), "pi-boot.sh: {}", text(&made));
        let mut card = Card { dir, fusefat: None };
        let mountpoint = card.root().join("boot/firmware");
        card.fusefat = Some(
            Command::new("fusefat")
                .args(["-f", "-o", "rw+"])
                .arg(&image)
                .arg(&mountpoint)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start fusefat"),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !is_mounted(&mountpoint) {
            if let Some(child) = card.fusefat.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                card.fusefat = None;
                panic!("fusefat exited before mounting the card: {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "fusefat did not mount the card within 20 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(card)
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn root_arg(&self) -> String {
        self.root().display().to_string()
    }

    fn boot(&self, name: &str) -> PathBuf {
        self.root().join("boot/firmware").join(name)
    }

    /// The aarch64 batten installed in the root, run (through qemu-user)
    /// on the root.
    fn batten(&self, args: &[&str]) -> Output {
        Command::new(self.root().join("usr/local/sbin/batten"))
            .args(args)
            .args(["--root", &self.root_arg()])
            .output()
            .expect("run the aarch64 batten through binfmt_misc")
    }

    /// Unmount the boot partition and return the image's bytes, checked
    /// clean by fsck.vfat.
    fn eject(&mut self) -> Vec<u8> {
        self.unmount().unwrap();
        let image = self.dir.path().join("boot.img");
        let fsck = Command::new("fsck.vfat")
            .arg("-n")
            .arg(&image)
            .output()
            .unwrap();
        assert!(fsck.status.success(), "fsck.vfat -n: {}", text(&fsck));
        std::fs::read(image).unwrap()
    }

    /// Unmount, then wait (at most 30 s) for fusefat to finish writing and
    /// exit; killed if it does not, and said.
    fn unmount(&mut self) -> Result<(), String> {
        let Some(mut child) = self.fusefat.take() else {
            return Ok(());
        };
        let mountpoint = self.root().join("boot/firmware");
        let _ = Command::new("fusermount")
            .arg("-u")
            .arg(&mountpoint)
            .output();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = Command::new("fusermount")
                        .args(["-u", "-z"])
                        .arg(&mountpoint)
                        .output();
                    return Err("fusefat did not exit within 30 s of fusermount -u".into());
                }
            }
        }
    }
}

/// Whether `path` is a mount point, from this process's mount table.
fn is_mounted(path: &Path) -> bool {
    // The mount table holds the resolved path (TMPDIR may be a link).
    let wanted = path
        .canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
}

impl Drop for Card {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("{e}");
        }
    }
}

/// The aarch64 static build (`scripts/build-static.sh`), as the owner
/// would have it beside the batten they run.
fn aarch64_build() -> PathBuf {
    let target = "aarch64-unknown-linux-musl";
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-static.sh"))
        .arg(target)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "build-static.sh: {}", text(&out));
    let dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from);
    let dir = if dir.is_absolute() {
        dir
    } else {
        repo().join(dir)
    };
    dir.join("static").join(format!("batten-{target}"))
}

/// Whether `needle` is anywhere in `hay`.
fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn an_imager_card_is_hardened_by_the_aarch64_build_and_left_without_secrets() {
    const TEST: &str = "an_imager_card_is_hardened_by_the_aarch64_build_and_left_without_secrets";
    let files = [
        ("user-data", imager_user_data()),
        ("meta-data", format!("instance-id: {INSTANCE}\n")),
        ("config.txt", "arm_64bit=1\n".to_string()),
        (
            "cmdline.txt",
            format!("console=serial0,115200 root=PARTUUID=1-02 rootwait ds=nocloud;i={INSTANCE}\n"),
        ),
    ];
    let Some(mut card) = Card::new(TEST, &files) else {
        return;
    };
    // Baked from this x86_64 machine: the image's own machine decides.
    let build = aarch64_build();
    let out = run(&["install", "--root", &card.root_arg()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "not this machine's binary: {}",
        text(&out)
    );
    let out = run(&[
        "install",
        "--root",
        &card.root_arg(),
        "--binary",
        &build.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // The image's `pi` has the old default password, hashed as Pi OS does.
    let root = card.root();
    let shadow = read(&root.join("etc/shadow"));
    let planted: String = shadow
        .lines()
        .map(|l| match l.strip_prefix("pi:") {
            Some(rest) => {
                let after = rest.split_once(':').map_or("", |(_, a)| a);
                format!("pi:{DEFAULT_YESCRYPT}:{after}\n")
            }
            None => format!("{l}\n"),
        })
        .collect();
    assert_ne!(planted, shadow, "the Pi root has a pi account");
    std::fs::write(root.join("etc/shadow"), planted).unwrap();

    let out = card.batten(&["run"]);
    assert!(out.status.success(), "the first boot's run: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "DEFAULT PASSWORD LOCKED: pi's password was the known default password \"raspberry\""
        ),
        "named loudly on the console: {}",
        text(&out)
    );
    assert!(read(&root.join("home/pi/.ssh/authorized_keys")).contains(KEY));
    // Locked as `passwd -l` locks: the key still logs in.
    assert!(
        read(&root.join("etc/shadow")).contains(&format!("\npi:!{DEFAULT_YESCRYPT}:")),
        "pi's default password is locked"
    );
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    assert!(
        ["ssh.service", "sshd.service"]
            .iter()
            .any(|u| wants.join(u).symlink_metadata().is_ok()),
        "sshd, disabled as Pi OS ships it, is enabled once keys are in"
    );
    // The image's own arm64 sshd says passwords are off for pi.
    let out = card.batten(&["verify"]);
    assert!(out.status.success(), "verify: {}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(report.contains("sshd"), "{report}");
    assert!(
        report.contains("passwords.defaults") && report.contains("locked by batten: pi"),
        "{report}"
    );
    let out = card.batten(&["status", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(json["default_passwords_locked"][0]["user"], "pi", "{json}");
    // qemu-user has no netlink: the image's nft waits for the Pi itself.
    let state = read(&root.join("var/lib/batten/state.json"));
    assert!(
        state.contains("nft"),
        "nft's check is left to the first boot: {state}"
    );

    let status = read(&card.boot("batten-status.txt"));
    assert!(
        status.starts_with("batten on this Raspberry Pi: hardened\n"),
        "{status}"
    );
    assert!(status.contains("SHA256:"), "{status}");
    assert!(
        status.contains("DEFAULT PASSWORD LOCKED: pi's password"),
        "{status}"
    );
    assert!(
        status.contains(&format!("instance-id: {INSTANCE}")),
        "{status}"
    );
    let seed = read(&card.boot("user-data"));
    assert!(!seed.contains("$6$") && seed.contains("name: pi"), "{seed}");
    assert!(read(&root.join("var/lib/batten/user-data")).contains(HASH));

    // Not a byte of the hash is left anywhere on the card, free space included.
    let image = card.eject();
    assert!(!holds(&image, HASH), "the hash is still on the card");
    assert!(holds(&image, "batten on this Raspberry Pi: hardened"));
}

#[test]
fn a_bookworm_userconf_card_is_left_to_pi_os_and_says_so() {
    const TEST: &str = "a_bookworm_userconf_card_is_left_to_pi_os_and_says_so";
    let files = [
        ("userconf.txt", "pi:$6$abcdefgh$hash\n".to_string()),
        ("ssh", String::new()),
        ("config.txt", "arm_64bit=1\n".to_string()),
    ];
    let Some(card) = Card::new(TEST, &files) else {
        return;
    };
    let out = run(&[
        "install",
        "--root",
        &card.root_arg(),
        "--binary",
        &aarch64_build().display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = card.batten(&["run"]);
    assert!(out.status.success(), "{}", text(&out));
    let status = read(&card.boot("batten-status.txt"));
    assert_left_to_pi_os(&status);
    assert!(
        status.contains("SHA256:"),
        "the baseline's host key: {status}"
    );
    assert!(!status.contains("$6$"), "{status}");
    // Even without user-data, the image's pi/raspberry does not survive:
    // the baseline locks it (Pi OS's userconf service then sets the
    // owner's password from userconf.txt).
    assert!(
        status.contains(
            "DEFAULT PASSWORD LOCKED: pi's password was the known default password \"raspberry\""
        ),
        "{status}"
    );
    assert!(read(&card.root().join("etc/shadow")).contains("\npi:!$6$"));
}
