//! A NoCloud seed on a real labelled filesystem: found through a
//! `by-label` directory, mounted read-only in a private directory, read,
//! and unmounted again, leaving no mount and no directory behind. Found
//! too before udev made its link, by the label in the superblock, and
//! waited for (bounded) when the command line says one is coming.
//!
//! The seed is ext4 because the kernels of some test machines have neither
//! vfat nor iso9660 (batten tries iso9660, vfat, ext4 and udf in turn; the
//! code path is the same).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use batten::input::sources::{Host, find_labelled};
use common::*;

/// A loop device, detached when dropped, so a failing test cleans up.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

fn make_seed(dir: &Path, label: &str, files: &[(&str, &str)]) -> Loop {
    let content = dir.join("content");
    for (name, text) in files {
        let p = content.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let image = dir.join("seed.img");
    let ok = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", label, "-d"])
        .arg(&content)
        .arg(&image)
        .arg("4M")
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfs.ext4 failed");
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "losetup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Loop(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

fn mounted_under(base: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| {
            l.split(' ')
                .nth(1)
                .is_some_and(|m| m.starts_with(&*base.to_string_lossy()))
        })
}

#[test]
fn cidata_and_config_drive_are_mounted_read_only_and_unmounted() {
    if !privileged("cidata_and_config_drive")
        || !have("mkfs.ext4", "cidata")
        || !have("losetup", "cidata")
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let by_label = work.path().join("by-label");
    let mount_base = work.path().join("run");
    std::fs::create_dir_all(&by_label).unwrap();
    std::fs::create_dir_all(&mount_base).unwrap();
    let host = Host {
        cmdline: None,
        dmi_serial: None,
        by_label: by_label.clone(),
        block_dir: work.path().join("no-block-devices"),
        dev_dir: PathBuf::from("/dev"),
        mount_base: mount_base.clone(),
        seed_wait: Duration::ZERO,
    };
    assert!(
        find_labelled(&host).unwrap().is_none(),
        "no labels, nothing found"
    );

    let seed_dir = work.path().join("cidata");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let dev = make_seed(
        &seed_dir,
        "cidata",
        &[
            ("user-data", "#cloud-config\nusers: []\n"),
            ("meta-data", "instance-id: iid-disk-1\n"),
        ],
    );
    std::os::unix::fs::symlink(&dev.0, by_label.join("cidata")).unwrap();
    let found = find_labelled(&host)
        .unwrap()
        .expect("the cidata disk is found");
    assert_eq!(found.user_data, b"#cloud-config\nusers: []\n");
    assert!(found.source.contains("labelled cidata"), "{}", found.source);
    let (_, meta) = found.meta_data.expect("meta-data read too");
    assert_eq!(meta, b"instance-id: iid-disk-1\n");
    assert!(!mounted_under(&mount_base), "the seed is still mounted");
    assert_eq!(
        std::fs::read_dir(&mount_base).unwrap().count(),
        0,
        "the mount point was left behind"
    );

    // An OpenStack config drive, when there is no NoCloud disk.
    std::fs::remove_file(by_label.join("cidata")).unwrap();
    let drive_dir = work.path().join("config-2");
    std::fs::create_dir_all(&drive_dir).unwrap();
    let drive = make_seed(
        &drive_dir,
        "config-2",
        &[
            (
                "openstack/latest/user_data",
                "#cloud-config\nssh_pwauth: false\n",
            ),
            (
                "openstack/latest/meta_data.json",
                "{\"uuid\": \"83679162-1378-4288-a2d4-70e13ec132aa\"}",
            ),
        ],
    );
    std::os::unix::fs::symlink(&drive.0, by_label.join("config-2")).unwrap();
    let found = find_labelled(&host)
        .unwrap()
        .expect("the config drive is found");
    assert_eq!(found.user_data, b"#cloud-config\nssh_pwauth: false\n");
    let meta = batten::input::meta::parse("m", &found.meta_data.unwrap().1).unwrap();
    assert_eq!(
        meta.instance_id.as_deref(),
        Some("83679162-1378-4288-a2d4-70e13ec132aa")
    );
    assert!(!mounted_under(&mount_base));
}

#[test]
fn an_announced_seed_is_found_before_udev_links_it_and_waited_for_when_late() {
    const T: &str = "an_announced_seed_is_found_before_udev_links_it";
    if !privileged(T) || !have("mkfs.ext4", T) || !have("losetup", T) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let by_label = work.path().join("by-label");
    let block_dir = work.path().join("block");
    let mount_base = work.path().join("run");
    for d in [&by_label, &block_dir, &mount_base] {
        std::fs::create_dir_all(d).unwrap();
    }
    let host = |cmdline: &str, wait: u64| Host {
        cmdline: Some(cmdline.to_string()),
        dmi_serial: None,
        by_label: by_label.clone(),
        block_dir: block_dir.clone(),
        dev_dir: PathBuf::from("/dev"),
        mount_base: mount_base.clone(),
        seed_wait: Duration::from_secs(wait),
    };

    // Nothing announced, nothing there: no waiting at all.
    let started = Instant::now();
    assert!(find_labelled(&host("quiet", 30)).unwrap().is_none());
    assert!(started.elapsed() < Duration::from_secs(1));
    // Announced but never there: gives up at the bound.
    let started = Instant::now();
    assert!(
        find_labelled(&host("quiet ds=nocloud", 1))
            .unwrap()
            .is_none()
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // A seed URL means the network, not a disk: no waiting.
    let started = Instant::now();
    let net = host("ds=nocloud;s=http://203.0.113.5/seed/", 30);
    assert!(find_labelled(&net).unwrap().is_none());
    assert!(started.elapsed() < Duration::from_secs(1));

    let seed_dir = work.path().join("cidata");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let dev = make_seed(
        &seed_dir,
        "CIDATA",
        &[("user-data", "#cloud-config\nssh_pwauth: false\n")],
    );
    let name = Path::new(&dev.0).file_name().unwrap().to_owned();

    // The kernel has the device, udev has not linked it: the superblock says.
    std::fs::create_dir(block_dir.join(&name)).unwrap();
    let found = find_labelled(&host("quiet", 0))
        .unwrap()
        .expect("found by its superblock label");
    assert_eq!(found.user_data, b"#cloud-config\nssh_pwauth: false\n");
    assert!(found.source.contains(&dev.0), "{}", found.source);

    // The device appears only after a while: the announced wait finds it.
    std::fs::remove_dir(block_dir.join(&name)).unwrap();
    let late = block_dir.join(&name);
    let appear = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1200));
        std::fs::create_dir(late).unwrap();
    });
    let started = Instant::now();
    let found = find_labelled(&host("root=/dev/vda1 ds=nocloud", 10)).unwrap();
    appear.join().unwrap();
    assert!(found.is_some(), "the late seed was not waited for");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(!mounted_under(&mount_base));
}
