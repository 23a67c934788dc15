//! Where user-data and meta-data are found at first boot.
//!
//! The order is DESIGN.md's: NoCloud seed directories, the Raspberry Pi boot
//! partition, `/boot`, a filesystem labelled CIDATA, an OpenStack config
//! drive, and what cloud-init stored if it ran first. The first location
//! that has user-data wins; `--user-data` overrides them all.
//!
//! Labelled filesystems are only looked for when batten works on the live
//! system (root `/`): with `--root /mnt/image` the disks of the machine doing
//! the baking are not the image's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{debug, info};

use super::decode::MAX_USER_DATA_BYTES;
use crate::host::root::{FileKind, Root, RootError};

/// A user-data file (and its meta-data) that was found. Its Debug output
/// leaves the bytes out: user-data can hold password hashes.
pub struct Found {
    /// Which source, in words, for the report: "NoCloud seed /var/lib/cloud/seed/nocloud".
    pub source: String,
    /// How the file is named in messages.
    pub user_data_name: String,
    /// The bytes as found, not yet decoded (gzip and MIME multipart are
    /// taken apart later).
    pub user_data: Vec<u8>,
    /// The meta-data file beside it, if any: its name for messages, and its
    /// bytes.
    pub meta_data: Option<(String, Vec<u8>)>,
    /// The platform as cloud-init's instance data names it (`nocloud`,
    /// `openstack`, `ec2`, ...; `unknown` for a file given by hand), for
    /// jinja templates' `v1.platform`.
    pub platform: &'static str,
    /// The user-data file's path inside the root, when the seed is a file
    /// of the root (a seed directory, the boot partition).
    pub in_root: Option<String>,
}

impl Found {
    /// A digest of the user-data and meta-data as found: what the seal
    /// records for a seed on the boot partition, so that a card edited on
    /// another computer is noticed at the next boot.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(
            &self.user_data,
            self.meta_data.as_ref().map(|m| m.1.as_slice()),
        )
    }

    /// Whether the seed is a file on a boot partition (FAT, readable by
    /// anyone holding the card, and edited on other computers).
    pub fn on_boot_partition(&self) -> bool {
        self.in_root
            .as_deref()
            .is_some_and(|p| p.starts_with("/boot/"))
    }
}

/// The digest of a seed: its user-data and meta-data (see
/// [`Found::fingerprint`]).
pub fn fingerprint_of(user_data: &[u8], meta_data: Option<&[u8]>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for bytes in [user_data, meta_data.unwrap_or_default()] {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    crate::crypt::hex(&hash.finalize())
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("source", &self.source)
            .field("user_data_name", &self.user_data_name)
            .field(
                "user_data",
                &format_args!("<{} bytes>", self.user_data.len()),
            )
            .field(
                "meta_data",
                &self.meta_data.as_ref().map(|(n, b)| (n, b.len())),
            )
            .finish()
    }
}

/// Why looking for user-data failed (not "nothing found": that is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A seed location in the root could not be read (a planted link, an
    /// I/O error).
    #[error(transparent)]
    Root(#[from] RootError),
    /// A user-data or meta-data file too large to be real user-data.
    #[error(
        "{path}: {size} bytes is more than the {max} bytes batten reads as user-data; check the file is the right one"
    )]
    TooLarge {
        /// Host path of the file.
        path: String,
        /// Its size in bytes.
        size: u64,
        /// The most batten reads (`MAX_USER_DATA_BYTES`).
        max: usize,
    },
    /// A disk label's device link could not be resolved.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The `/dev/disk/by-label` link.
        path: String,
        /// Why it could not be resolved.
        source: std::io::Error,
    },
    /// A labelled filesystem could not be mounted read-only.
    #[error("cannot mount {device} (labelled {label}) read-only: {reason}")]
    Mount {
        /// Device node the label points to.
        device: String,
        /// The label that led to it (`CIDATA`, `config-2`, ...).
        label: String,
        /// What failed; for the mount itself, the last filesystem type tried.
        reason: String,
    },
}

/// What batten may learn from the running machine, as opposed to the root:
/// the kernel command line, the DMI serial, the filesystem labels and the
/// block devices. Tests pass their own.
#[derive(Clone, Debug)]
pub struct Host {
    /// The kernel command line; `None` when it cannot be read.
    pub cmdline: Option<String>,
    /// The DMI system serial (`/sys/class/dmi/id/product_serial`), where a
    /// hypervisor can say `ds=nocloud` as the command line can.
    pub dmi_serial: Option<String>,
    /// Usually `/dev/disk/by-label`.
    pub by_label: PathBuf,
    /// The kernel's block devices, usually `/sys/class/block`: read when
    /// udev has not yet made the label links.
    pub block_dir: PathBuf,
    /// Where their device nodes are, usually `/dev`.
    pub dev_dir: PathBuf,
    /// Where private mount points are made, usually `/run`.
    pub mount_base: PathBuf,
    /// How long to wait for a seed disk the command line or DMI announces.
    pub seed_wait: Duration,
}

/// How long the first stage waits for an announced seed disk that has not
/// appeared: long enough for a slow USB stick or virtual CD, short enough
/// that a wrong `ds=nocloud` does not hold the boot up for long.
pub const SEED_WAIT: Duration = Duration::from_secs(15);

impl Host {
    /// The machine batten runs on. It does not wait for seed disks; `run`
    /// sets `seed_wait` to [`SEED_WAIT`].
    pub fn live() -> Host {
        Host {
            cmdline: std::fs::read_to_string("/proc/cmdline").ok(),
            dmi_serial: std::fs::read_to_string("/sys/class/dmi/id/product_serial").ok(),
            by_label: PathBuf::from("/dev/disk/by-label"),
            block_dir: PathBuf::from("/sys/class/block"),
            dev_dir: PathBuf::from("/dev"),
            mount_base: PathBuf::from("/run"),
            seed_wait: Duration::ZERO,
        }
    }

    /// Why a NoCloud seed disk is expected, if something says so: `ds=nocloud`
    /// without a seed URL or path, on the kernel command line or in the DMI
    /// serial (as cloud-init reads them).
    pub fn seed_disk_expected(&self) -> Option<String> {
        [
            ("the kernel command line", self.cmdline.as_deref()),
            ("the DMI serial", self.dmi_serial.as_deref()),
        ]
        .into_iter()
        .find_map(|(whence, text)| {
            let text = text?;
            text.split_whitespace()
                .find(|word| nocloud_disk_word(word))
                .map(|word| format!("{whence} says {word}"))
        })
    }
}

/// `ds=nocloud` (any case, with `;key=value` settings) that names no seed
/// location (`s=` or `seedfrom=`): the seed is then a labelled disk.
fn nocloud_disk_word(word: &str) -> bool {
    let Some(value) = word.strip_prefix("ds=") else {
        return false;
    };
    let mut parts = value.split(';');
    let source = parts.next().unwrap_or_default();
    source.eq_ignore_ascii_case("nocloud")
        && !parts.any(|p| p.starts_with("s=") || p.starts_with("seedfrom="))
}

/// Directory seeds, in the order they are tried.
const SEED_DIRS: &[(&str, &str)] = &[
    ("/var/lib/cloud/seed/nocloud", "NoCloud seed"),
    ("/var/lib/cloud/seed/nocloud-net", "NoCloud seed"),
    ("/boot/firmware", "Raspberry Pi boot partition"),
    ("/boot", "boot partition"),
];

/// Every place that is looked at, for the "nothing found" message.
pub fn searched_locations() -> Vec<String> {
    let mut out: Vec<String> = SEED_DIRS
        .iter()
        .map(|(d, _)| format!("{d}/user-data"))
        .collect();
    out.push("a filesystem labelled CIDATA or cidata".into());
    out.push("an OpenStack config drive (label config-2)".into());
    out.push("/var/lib/cloud/instance/user-data.txt".into());
    out
}

/// Read a file of the root if it exists, refusing symlinks and huge files.
fn read_capped(root: &Root, rel: &str) -> Result<Option<Vec<u8>>, SourceError> {
    match root.metadata(rel)? {
        None => Ok(None),
        // root.read refuses the link with a message naming it.
        Some(meta) if meta.kind == FileKind::Symlink => Ok(root.read(rel)?),
        Some(meta) if meta.kind != FileKind::File => Ok(None),
        Some(meta) if meta.len > MAX_USER_DATA_BYTES as u64 => Err(SourceError::TooLarge {
            path: root.host_path(rel).display().to_string(),
            size: meta.len,
            max: MAX_USER_DATA_BYTES,
        }),
        Some(_) => Ok(root.read(rel)?),
    }
}

/// Find user-data in the root (and, on the live system, on labelled disks).
pub fn find(root: &Root, host: &Host) -> Result<Option<Found>, SourceError> {
    for (dir, what) in SEED_DIRS {
        let ud = format!("{dir}/user-data");
        debug!("looking for {ud}");
        if let Some(bytes) = read_capped(root, &ud)? {
            let md = format!("{dir}/meta-data");
            let meta =
                read_capped(root, &md)?.map(|b| (root.host_path(&md).display().to_string(), b));
            return Ok(Some(Found {
                source: format!("{what} {dir}"),
                user_data_name: root.host_path(&ud).display().to_string(),
                user_data: bytes,
                meta_data: meta,
                platform: "nocloud",
                in_root: Some(ud),
            }));
        }
    }
    if root.is_host()
        && let Some(found) = find_labelled(host)?
    {
        return Ok(Some(found));
    }
    let cached = "/var/lib/cloud/instance/user-data.txt";
    // `instance` is a symlink cloud-init makes to instances/<id>: follow it,
    // but only inside the root.
    if let Some(bytes) = root.read_following_within(cached)? {
        if bytes.len() > MAX_USER_DATA_BYTES {
            return Err(SourceError::TooLarge {
                path: root.host_path(cached).display().to_string(),
                size: bytes.len() as u64,
                max: MAX_USER_DATA_BYTES,
            });
        }
        return Ok(Some(Found {
            source: "user-data stored by cloud-init".into(),
            user_data_name: root.host_path(cached).display().to_string(),
            user_data: bytes,
            meta_data: None,
            platform: "unknown",
            in_root: None,
        }));
    }
    Ok(None)
}

/// The kernel command line that applies to the root: the live one, or for
/// an image the Raspberry Pi's `cmdline.txt` where Imager writes `ds=...`.
pub fn cmdline_for(root: &Root, host: &Host) -> Option<String> {
    if root.is_host() {
        return host.cmdline.clone();
    }
    ["/boot/firmware/cmdline.txt", "/boot/cmdline.txt"]
        .iter()
        .find_map(|p| root.read_to_string(p).ok().flatten())
}

/// Look for a NoCloud disk (label CIDATA or cidata), then an OpenStack
/// config drive (label config-2), among the host's labelled filesystems.
/// When the command line or DMI announces a NoCloud disk and none is there
/// yet, wait for it, up to `host.seed_wait`.
pub fn find_labelled(host: &Host) -> Result<Option<Found>, SourceError> {
    let started = Instant::now();
    let mut told = Duration::ZERO;
    loop {
        if let Some(found) = find_labelled_now(host)? {
            return Ok(Some(found));
        }
        let Some(why) = host.seed_disk_expected() else {
            return Ok(None);
        };
        let waited = started.elapsed();
        if waited >= host.seed_wait {
            log::warn!(
                "{why}, but no filesystem labelled CIDATA or cidata appeared in {} s; going on without it",
                host.seed_wait.as_secs()
            );
            return Ok(None);
        }
        if waited >= told {
            info!(
                "{why}: waiting for the seed disk (labelled CIDATA or cidata), {} s of at most {} s",
                waited.as_secs(),
                host.seed_wait.as_secs()
            );
            told += Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One look for the labelled seeds, by link and then by probing devices.
fn find_labelled_now(host: &Host) -> Result<Option<Found>, SourceError> {
    for label in ["CIDATA", "cidata"] {
        if let Some(found) = from_label(host, label, "user-data", "meta-data")? {
            return Ok(Some(found));
        }
    }
    from_label(
        host,
        "config-2",
        "openstack/latest/user_data",
        "openstack/latest/meta_data.json",
    )
}

/// The device holding the filesystem labelled `label`: udev's link when it
/// exists, else the first block device whose superblock carries the label
/// (udev may not have got to it this early in the boot).
fn device_for(host: &Host, label: &str) -> Result<Option<PathBuf>, SourceError> {
    let link = host.by_label.join(label);
    if std::fs::symlink_metadata(&link).is_ok() {
        return std::fs::canonicalize(&link)
            .map(Some)
            .map_err(|source| SourceError::Io {
                path: link.display().to_string(),
                source,
            });
    }
    let Ok(entries) = std::fs::read_dir(&host.block_dir) else {
        return Ok(None);
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("ram") && !n.starts_with("zram"))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| host.dev_dir.join(n))
        .find(|dev| super::labels::read_label(dev).as_deref() == Some(label)))
}

/// Mount the filesystem labelled `label` read-only in a private directory,
/// read the two files, and unmount it again.
fn from_label(host: &Host, label: &str, ud: &str, md: &str) -> Result<Option<Found>, SourceError> {
    let Some(device) = device_for(host, label)? else {
        return Ok(None);
    };
    info!(
        "found a filesystem labelled {label} on {}; mounting it read-only",
        device.display()
    );
    let mount = PrivateMount::new(&device, label, &host.mount_base)?;
    let seed = Root::open(mount.dir())?;
    let Some(bytes) = read_capped(&seed, ud)? else {
        info!("{} has no {ud}", device.display());
        return Ok(None);
    };
    let meta = read_capped(&seed, md)?.map(|b| (format!("{}:{md}", device.display()), b));
    Ok(Some(Found {
        source: format!("filesystem labelled {label} ({})", device.display()),
        user_data_name: format!("{}:{ud}", device.display()),
        user_data: bytes,
        meta_data: meta,
        platform: if label == "config-2" {
            "openstack"
        } else {
            "nocloud"
        },
        in_root: None,
    }))
}

/// Give this process its own mount namespace, with nothing propagating
/// back, so the seed mount is seen by no other process and vanishes with
/// batten even if it is killed before unmounting. The kernel refuses this in
/// a multi-threaded process (the test harness); then the mount is private to
/// a 0700 directory only, which is still unmounted when done.
fn enter_private_mount_namespace() {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    match unshare(CloneFlags::CLONE_NEWNS) {
        Ok(()) => {
            let flags = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
            if let Err(e) = mount(None::<&str>, "/", None::<&str>, flags, None::<&str>) {
                log::warn!("could not make mounts private after unshare: {e}");
            }
        }
        Err(e) => debug!(
            "no private mount namespace ({e}); the seed is mounted in a private directory only"
        ),
    }
}

/// A read-only mount in a fresh 0700 directory, undone when dropped.
struct PrivateMount {
    dir: PathBuf,
}

impl PrivateMount {
    fn new(device: &Path, label: &str, base: &Path) -> Result<PrivateMount, SourceError> {
        use nix::mount::{MsFlags, mount};
        let template = base.join("batten-seed.XXXXXX");
        let dir = nix::unistd::mkdtemp(&template).map_err(|e| SourceError::Mount {
            device: device.display().to_string(),
            label: label.to_string(),
            reason: format!("cannot make a mount point under {}: {e}", base.display()),
        })?;
        enter_private_mount_namespace();
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let mut last = String::new();
        for fstype in ["iso9660", "vfat", "ext4", "udf"] {
            match mount(Some(device), &dir, Some(fstype), flags, None::<&str>) {
                Ok(()) => return Ok(PrivateMount { dir }),
                Err(e) => last = format!("{fstype}: {e}"),
            }
        }
        let _ = std::fs::remove_dir(&dir);
        Err(SourceError::Mount {
            device: device.display().to_string(),
            label: label.to_string(),
            reason: format!("no known filesystem type worked (last tried {last})"),
        })
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrivateMount {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH) {
            log::warn!("could not unmount {}: {e}", self.dir.display());
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Where the instance-id came from, for status and the report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InstanceId {
    /// The id, in the characters `grammar::instance_id` allows.
    pub id: String,
    /// Where it came from, in words: `meta-data`, `/etc/machine-id`, ...
    pub origin: String,
}

/// The instance-id: meta-data, else the kernel command line's
/// `ds=nocloud;i=`, else `/etc/machine-id`, else the DMI product UUID.
pub fn instance_id(
    root: &Root,
    meta_id: Option<&str>,
    cmdline: Option<&str>,
) -> Option<InstanceId> {
    if let Some(id) = meta_id {
        return Some(InstanceId {
            id: id.to_string(),
            origin: "meta-data".into(),
        });
    }
    if let Some(id) = cmdline.and_then(super::meta::instance_id_from_cmdline) {
        return Some(InstanceId {
            id,
            origin: "kernel command line (ds=nocloud;i=)".into(),
        });
    }
    let machine_id = root
        .read_to_string("/etc/machine-id")
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
        .filter(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()));
    if let Some(id) = machine_id {
        return Some(InstanceId {
            id,
            origin: "/etc/machine-id".into(),
        });
    }
    if root.is_host() {
        let uuid = std::fs::read_to_string("/sys/class/dmi/id/product_uuid")
            .ok()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| super::grammar::instance_id(s).is_ok());
        if let Some(id) = uuid {
            return Some(InstanceId {
                id,
                origin: "DMI product_uuid".into(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    fn put(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn host(dir: &Path) -> Host {
        Host {
            dmi_serial: None,
            block_dir: dir.join("no-block-devices"),
            dev_dir: dir.join("no-dev"),
            seed_wait: Duration::ZERO,
            cmdline: None,
            by_label: dir.join("no-labels"),
            mount_base: dir.to_path_buf(),
        }
    }

    #[test]
    fn a_seed_disk_is_expected_only_when_announced_without_a_location() {
        let dir = tempfile::tempdir().unwrap();
        let with = |cmdline: &str, serial: Option<&str>| Host {
            cmdline: Some(cmdline.into()),
            dmi_serial: serial.map(str::to_string),
            ..host(dir.path())
        };
        assert_eq!(
            with("root=/dev/vda1 quiet", None).seed_disk_expected(),
            None
        );
        assert!(
            with("ro ds=nocloud", None)
                .seed_disk_expected()
                .unwrap()
                .contains("kernel command line says ds=nocloud")
        );
        assert!(
            with("ds=NoCloud;i=iid-7", None)
                .seed_disk_expected()
                .is_some()
        );
        assert_eq!(
            with("ds=nocloud;s=file:///boot/firmware/", None).seed_disk_expected(),
            None
        );
        assert_eq!(
            with("ds=nocloud;seedfrom=http://203.0.113.9/", None).seed_disk_expected(),
            None
        );
        assert_eq!(with("ds=ec2", None).seed_disk_expected(), None);
        assert!(
            with("quiet", Some("ds=nocloud\n"))
                .seed_disk_expected()
                .unwrap()
                .contains("DMI serial")
        );
    }

    #[test]
    fn order_is_seed_then_firmware_then_boot() {
        let (dir, root) = scratch();
        let h = host(dir.path());
        assert!(find(&root, &h).unwrap().is_none());
        put(dir.path(), "/boot/user-data", "#cloud-config\n");
        assert_eq!(
            find(&root, &h).unwrap().unwrap().source,
            "boot partition /boot"
        );
        put(dir.path(), "/boot/firmware/user-data", "#cloud-config\n");
        put(dir.path(), "/boot/firmware/meta-data", "instance_id: x\n");
        let f = find(&root, &h).unwrap().unwrap();
        assert_eq!(f.source, "Raspberry Pi boot partition /boot/firmware");
        assert!(f.meta_data.is_some());
        put(
            dir.path(),
            "/var/lib/cloud/seed/nocloud-net/user-data",
            "#cloud-config\n",
        );
        assert!(
            find(&root, &h)
                .unwrap()
                .unwrap()
                .source
                .contains("nocloud-net")
        );
        put(
            dir.path(),
            "/var/lib/cloud/seed/nocloud/user-data",
            "#cloud-config\n",
        );
        assert!(
            find(&root, &h)
                .unwrap()
                .unwrap()
                .source
                .ends_with("seed/nocloud")
        );
    }

    #[test]
    fn cloud_init_cache_through_its_symlink() {
        let (dir, root) = scratch();
        put(
            dir.path(),
            "/var/lib/cloud/instances/i-1/user-data.txt",
            "#cloud-config\n",
        );
        std::os::unix::fs::symlink(
            "/var/lib/cloud/instances/i-1",
            dir.path().join("var/lib/cloud/instance"),
        )
        .unwrap();
        let f = find(&root, &host(dir.path())).unwrap().unwrap();
        assert_eq!(f.source, "user-data stored by cloud-init");
    }

    #[test]
    fn symlinked_seed_is_refused() {
        let (dir, root) = scratch();
        let outside = tempfile::tempdir().unwrap();
        put(outside.path(), "user-data", "#cloud-config\n");
        std::fs::create_dir_all(dir.path().join("var/lib/cloud/seed/nocloud")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("user-data"),
            dir.path().join("var/lib/cloud/seed/nocloud/user-data"),
        )
        .unwrap();
        assert!(find(&root, &host(dir.path())).is_err());
    }

    #[test]
    fn instance_id_order() {
        let (dir, root) = scratch();
        assert_eq!(instance_id(&root, None, None), None);
        put(
            dir.path(),
            "/etc/machine-id",
            "0123456789abcdef0123456789abcdef\n",
        );
        assert_eq!(
            instance_id(&root, None, None).unwrap().origin,
            "/etc/machine-id"
        );
        let from_cmdline = instance_id(&root, None, Some("ds=nocloud;i=pi-1")).unwrap();
        assert_eq!(from_cmdline.id, "pi-1");
        assert_eq!(
            instance_id(&root, Some("iid-1"), Some("ds=nocloud;i=pi-1"))
                .unwrap()
                .id,
            "iid-1"
        );
        put(dir.path(), "/etc/machine-id", "\n");
        assert_eq!(instance_id(&root, None, None), None);
    }

    #[test]
    fn raspberry_pi_cmdline_for_an_image() {
        let (dir, root) = scratch();
        put(
            dir.path(),
            "/boot/firmware/cmdline.txt",
            "console=tty1 ds=nocloud;i=rpi-7\n",
        );
        let c = cmdline_for(&root, &host(dir.path())).unwrap();
        assert_eq!(
            super::super::meta::instance_id_from_cmdline(&c).as_deref(),
            Some("rpi-7")
        );
    }
}
