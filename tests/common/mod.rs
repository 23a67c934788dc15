//! Shared helpers for the integration tests: a scratch root built from this
//! machine's own account and SSH files, a snapshot of a tree to prove
//! "nothing changed", and the root/CI rule for privileged tests.

// Each test binary compiles all of these helpers and uses a part of them,
// so the lint would name in every binary what another one uses; every
// helper here is used by some test.
#![allow(dead_code)]

pub mod net;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The batten binary cargo built for these tests.
pub fn batten() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_batten"));
    c.env("RUST_LOG", "warn");
    c
}

/// Run batten with `args` and return its output.
pub fn run(args: &[&str]) -> Output {
    batten().args(args).output().expect("batten runs")
}

/// Text of stdout and stderr together, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The repository's top directory.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Debian 12 image `images/debian-vm.sh` builds (or has cached), baked
/// into `raw` by `scripts/vm-bake.sh` with this build's batten and
/// `options` (`--cloud-init`, `--default-password USER`); the image's
/// directory (kernel, initrd).
pub fn bake_image(raw: &Path, options: &[&str]) -> PathBuf {
    let out = Command::new(repo().join("images/debian-vm.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "images/debian-vm.sh failed");
    let image = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let out = Command::new(repo().join("scripts/vm-bake.sh"))
        .arg(&image)
        .arg(raw)
        .arg(env!("CARGO_BIN_EXE_batten"))
        .args(options)
        .output()
        .unwrap();
    assert!(out.status.success(), "vm-bake: {}", text(&out));
    image
}

/// True when the test may do privileged things. Without root, a developer
/// gets a skip message; under CI=true a skip is a failure.
pub fn privileged(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root, and under CI=true a skipped test is a failure");
    }
    eprintln!("SKIP {test}: needs root");
    false
}

/// True when `program` is installed; under CI=true its absence fails.
pub fn have(program: &str, test: &str) -> bool {
    let found = batten::host::exec::find_program(program).is_some();
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test} needs {program}, and under CI=true a skipped test is a failure");
        }
        eprintln!("SKIP {test}: {program} is not installed");
    }
    found
}

/// A scratch root made of this machine's real /etc/passwd, group, shadow,
/// os-release, ssh and skel: what an image's root looks like to batten.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for d in ["etc/sudoers.d", "home", "var/lib", "boot/firmware", "root"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::set_permissions(
            root.join("root"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        for f in ["passwd", "group", "shadow", "gshadow", "login.defs"] {
            let src = Path::new("/etc").join(f);
            if src.exists() {
                copy_keep_mode(&src, &root.join("etc").join(f));
            }
        }
        // /etc/os-release is usually a link to ../usr/lib/os-release: copy the text.
        std::fs::write(
            root.join("etc/os-release"),
            std::fs::read("/etc/os-release").expect("this machine has /etc/os-release"),
        )
        .unwrap();
        std::fs::write(
            root.join("etc/machine-id"),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        // The image's firewall tool decides batten's backend: give the
        // scratch root this machine's nft, as a Debian image with nftables has.
        if Path::new("/usr/sbin/nft").exists() {
            std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
            std::fs::copy("/usr/sbin/nft", root.join("usr/sbin/nft")).unwrap();
        }
        let status = Command::new("cp")
            .args(["-a", "/etc/skel"])
            .arg(root.join("etc"))
            .status()
            .unwrap();
        assert!(status.success());
        if Path::new("/etc/ssh").exists() {
            let status = Command::new("cp")
                .args(["-a", "/etc/ssh"])
                .arg(root.join("etc"))
                .status()
                .unwrap();
            assert!(status.success());
        }
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn root_arg(&self) -> String {
        self.path().display().to_string()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel.trim_start_matches('/'))
    }

    /// Give the scratch root this machine's /etc/nginx, as an image with
    /// nginx installed has.
    pub fn with_nginx(&self) {
        let copied = Command::new("cp")
            .args(["-a", "/etc/nginx"])
            .arg(self.join("/etc"))
            .status()
            .unwrap();
        assert!(copied.success(), "copying /etc/nginx failed");
    }

    /// Give the scratch root this machine's iptables-restore and
    /// ip6tables-restore, as an image with the iptables backend has (the
    /// root's tools decide the backend).
    pub fn with_iptables(&self) {
        std::fs::create_dir_all(self.join("/usr/sbin")).unwrap();
        for tool in ["iptables-restore", "ip6tables-restore"] {
            std::fs::copy(
                format!("/usr/sbin/{tool}"),
                self.join(&format!("/usr/sbin/{tool}")),
            )
            .unwrap();
        }
    }

    /// Write a user-data file beside (never inside) the scratch root and
    /// return its path as an argument.
    pub fn user_data(&self, name: &str, text: &str) -> String {
        let path = self.path().parent().unwrap().join(format!(
            "{}-{name}",
            self.path().file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// `batten CMD --root SCRATCH --user-data UD EXTRA...`
    pub fn batten(&self, cmd: &str, ud: &str, extra: &[&str]) -> Output {
        let root = self.root_arg();
        let mut args = vec![cmd, "--root", root.as_str(), "--user-data", ud];
        args.extend_from_slice(extra);
        run(&args)
    }
}

fn copy_keep_mode(src: &Path, dst: &Path) {
    std::fs::copy(src, dst).unwrap();
    let meta = std::fs::metadata(src).unwrap();
    std::fs::set_permissions(dst, meta.permissions()).unwrap();
}

/// What a file looks like, for before/after comparisons.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Seen {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    pub ino: u64,
    pub content: Vec<u8>,
}

/// Every entry under `dir` (links not followed) with its bytes and metadata.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Seen> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Seen>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let (kind, content) = if m.file_type().is_symlink() {
            (
                "link",
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else if m.is_dir() {
            ("dir", Vec::new())
        } else if m.is_file() {
            ("file", std::fs::read(&p).unwrap())
        } else {
            // A FIFO, socket or device: never opened (a FIFO would block).
            ("special", Vec::new())
        };
        out.insert(
            p.strip_prefix(base).unwrap().to_path_buf(),
            Seen {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ino: m.ino(),
                content,
            },
        );
        if kind == "dir" {
            walk(base, &p, out);
        }
    }
}

/// The paths that differ between two snapshots.
pub fn changed(a: &BTreeMap<PathBuf, Seen>, b: &BTreeMap<PathBuf, Seen>) -> Vec<PathBuf> {
    let mut keys: Vec<&PathBuf> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// Fail, naming the paths, unless `dir` looks exactly as in `before`.
pub fn assert_unchanged(before: &BTreeMap<PathBuf, Seen>, dir: &Path) {
    let moved = changed(before, &snapshot(dir));
    assert!(moved.is_empty(), "these changed: {moved:?}");
}

/// Fail, naming the paths and `what`, unless everything under `dir` outside
/// batten's own records (/var/lib/batten) looks as in `before`.
pub fn assert_unchanged_outside_state(before: &BTreeMap<PathBuf, Seen>, dir: &Path, what: &str) {
    let moved: Vec<PathBuf> = changed(before, &snapshot(dir))
        .into_iter()
        .filter(|p| !p.starts_with("var/lib/batten"))
        .collect();
    assert!(moved.is_empty(), "{what}: changed {moved:?}");
}

/// Fail, naming the paths and `what`, unless every entry under `dir`
/// outside batten's own records (/var/lib/batten) has the kind, mode,
/// owner and bytes it had in `before`: the root as it was, byte for byte
/// (a file put back is a new inode with a new time, which is fine).
pub fn assert_same_bytes_outside_state(before: &BTreeMap<PathBuf, Seen>, dir: &Path, what: &str) {
    let strip =
        |m: &BTreeMap<PathBuf, Seen>| -> BTreeMap<PathBuf, (&'static str, u32, u32, u32, Vec<u8>)> {
            m.iter()
                .filter(|(p, _)| !p.starts_with("var/lib/batten"))
                .map(|(p, s)| (p.clone(), (s.kind, s.mode, s.uid, s.gid, s.content.clone())))
                .collect()
        };
    let (a, b) = (strip(before), strip(&snapshot(dir)));
    let mut moved: Vec<&PathBuf> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    moved.sort();
    moved.dedup();
    assert!(moved.is_empty(), "{what}: changed {moved:?}");
}

/// Per-run records: they name the run, so they differ by design.
pub fn per_run(path: &Path) -> bool {
    path.starts_with("var/lib/batten/journal")
        || path.starts_with("var/lib/batten/backup")
        || path == Path::new("var/lib/batten/state.json")
}

/// Files whose bytes are random by nature; their kind, owner and mode must
/// still match.
pub fn random_bytes(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    (path.starts_with("etc/ssh") && name.starts_with("ssh_host_"))
        || path == Path::new("var/lib/batten/credentials")
        || (path.starts_with("etc/nginx") && name.ends_with(".htpasswd"))
        || path.starts_with("etc/ssl/batten")
}

/// What a file must be the same in, between two runs that should end
/// alike: kind, mode, owner, group, bytes.
pub type Comparable = BTreeMap<PathBuf, (String, u32, u32, u32, Vec<u8>)>;

/// A snapshot reduced to what must be identical between runs.
pub fn comparable(root: &Path) -> Comparable {
    snapshot(root)
        .into_iter()
        .filter(|(path, _)| !per_run(path))
        .map(|(path, seen)| {
            let content = if random_bytes(&path) {
                Vec::new()
            } else {
                seen.content
            };
            let value = (
                seen.kind.to_string(),
                seen.mode,
                seen.uid,
                seen.gid,
                content,
            );
            (path, value)
        })
        .collect()
}

pub fn differences(want: &Comparable, got: &Comparable) -> Vec<String> {
    let mut keys: Vec<&PathBuf> = want.keys().chain(got.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| match (want.get(k), got.get(k)) {
            (Some(_), None) => format!("{} missing", k.display()),
            (None, Some(_)) => format!("{} extra", k.display()),
            (Some(a), Some(b)) => format!(
                "{} differs: want {} {:o} {}:{} ({} bytes), got {} {:o} {}:{} ({} bytes)",
                k.display(),
                a.0,
                a.1,
                a.2,
                a.3,
                a.4.len(),
                b.0,
                b.1,
                b.2,
                b.3,
                b.4.len()
            ),
            (None, None) => unreachable!(),
        })
        .collect()
}

/// A real ed25519 public key line made by ssh-keygen (or a fixed one when
/// ssh-keygen is missing).
pub const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBfY5Y7Dp1Dn4a4y6iJbBvYxVKJWB3H0cQ2m9bq6Tq3 admin@laptop";

/// Print a hostile-input test's summary line and keep it in
/// target/tmp/hostile-summary.txt, which scripts/test.sh shows at the end.
pub fn hostile_summary(line: &str) {
    use std::io::Write as _;
    eprintln!("hostile summary: {line}");
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-summary.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// curl's arguments to print only the HTTP status (000 when nothing
/// answered).
pub const CURL_STATUS: [&str; 5] = ["-s", "-o", "/dev/null", "-w", "%{http_code}"];

/// The host keys' bytes in a root's /etc/ssh, by file name.
pub fn host_keys(root: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(root.join("etc/ssh"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ssh_host_"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A Pi card with only Pi OS's own `userconf.txt` and `ssh`: its status
/// file says batten did its baseline and left both files to Pi OS.
pub fn assert_left_to_pi_os(status: &str) {
    assert!(
        status.starts_with("batten on this Raspberry Pi: no-user-data\n"),
        "{status}"
    );
    assert!(status.contains("userconf.txt is left to Pi OS"), "{status}");
    assert!(
        status.contains("/boot/firmware/ssh is left to Pi OS"),
        "{status}"
    );
}

/// A program test.sh puts outside the PATH (its path in the environment
/// variable `var`), else `program` on the PATH; `None` (a failure under
/// CI) when there is neither.
pub fn tool(var: &str, program: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(path) if Path::new(&path).exists() => Some(path),
        _ => have(program, test).then(|| program.to_string()),
    }
}

/// ssh-audit: where test.sh installed it (`BATTEN_SSH_AUDIT`), else on
/// the PATH; `None` (a failure under CI) when there is none.
pub fn ssh_audit(test: &str) -> Option<String> {
    tool("BATTEN_SSH_AUDIT", "ssh-audit", test)
}
