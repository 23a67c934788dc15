//! Hostile input and faults (tests/hostile/README.md): every file of the
//! corpus is refused with its exact error and changes nothing; planted
//! links, FIFOs, devices and hard links in a user's home are refused, also
//! when swapped in while batten runs; configurations that would lock the
//! owner out are refused; a full disk, a read-only root and a missing
//! program stop the run with the previous files intact.
//!
//! Each test prints a `hostile summary:` line (and appends it to
//! target/tmp/hostile-summary.txt, which scripts/test.sh shows at the end).

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

// ---- the corpus ----------------------------------------------------------

/// One expected error: where (`None` when the message has no position of
/// the file's own) and a part of the message.
struct Expected {
    at: Option<String>,
    says: String,
}

/// tests/hostile/EXPECTED: FILE<TAB>LINE:COL or -<TAB>SUBSTRING.
fn manifest() -> BTreeMap<String, Vec<Expected>> {
    let text = std::fs::read_to_string(repo().join("tests/hostile/EXPECTED")).unwrap();
    let mut out: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(3, '\t').collect();
        assert_eq!(
            fields.len(),
            3,
            "EXPECTED:{}: want FILE, LINE:COL and text",
            n + 1
        );
        out.entry(fields[0].to_string())
            .or_default()
            .push(Expected {
                at: (fields[1] != "-").then(|| fields[1].to_string()),
                says: fields[2].to_string(),
            });
    }
    out
}

/// Does `output` hold the expected error for `name` (as passed to batten)?
fn says(output: &str, name: &str, want: &Expected) -> bool {
    output.lines().any(|line| {
        let reported = line.starts_with("error: ") || line.starts_with("batten: ");
        match &want.at {
            Some(at) => line.contains(&format!("{name}:{at}: ")) && line.contains(&want.says),
            None => reported && line.contains(name) && line.contains(&want.says),
        }
    })
}

#[test]
fn every_hostile_file_is_refused_with_its_error_and_the_root_is_unchanged() {
    let expected = manifest();
    let dir = repo().join("tests/hostile");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "EXPECTED" && n != "README.md")
        .collect();
    files.sort();
    let unlisted: Vec<&String> = files
        .iter()
        .filter(|f| !expected.contains_key(*f))
        .collect();
    assert!(
        unlisted.is_empty(),
        "files without an expected error: {unlisted:?}"
    );
    let missing: Vec<&String> = expected.keys().filter(|f| !files.contains(f)).collect();
    assert!(
        missing.is_empty(),
        "EXPECTED names missing files: {missing:?}"
    );
    assert!(
        files.len() >= 60,
        "the corpus has only {} files",
        files.len()
    );

    let scratch = Scratch::new();
    scratch.with_nginx();
    let before = snapshot(scratch.path());
    let root = scratch.root_arg();
    let mut wrong = Vec::new();
    for file in &files {
        let name = format!("tests/hostile/{file}");
        let out = batten()
            .current_dir(repo())
            .args(["run", "--root", &root, "--user-data", &name])
            .output()
            .unwrap();
        let said = text(&out);
        if out.status.code() != Some(65) {
            wrong.push(format!(
                "{file}: exit {:?}, want 65:\n{said}",
                out.status.code()
            ));
        }
        for want in &expected[file] {
            if !says(&said, &name, want) {
                wrong.push(format!(
                    "{file}: want {}: {} in:\n{said}",
                    want.at.as_deref().unwrap_or("-"),
                    want.says
                ));
            }
        }
        let moved = changed(&before, &snapshot(scratch.path()));
        assert!(moved.is_empty(), "{file} changed {moved:?}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    hostile_summary(&format!(
        "{} hostile user-data files refused with exit 65 and their exact errors; the root was byte-for-byte unchanged after every one",
        files.len()
    ));
}

/// The inputs too large to keep in the repository: a 50 MB file, gzip bombs
/// (64 MiB of zeros in 64 KiB, and a bomb inside a MIME part), refused
/// before parsing and quickly.
#[test]
fn oversized_and_decompression_bombs_are_refused_before_parsing() {
    let work = tempfile::tempdir().unwrap();
    let scratch = Scratch::new();
    let before = snapshot(scratch.path());
    let big = work.path().join("50mb.yaml");
    {
        let mut f = std::fs::File::create(&big).unwrap();
        f.write_all(b"#cloud-config\n").unwrap();
        let line = format!("# {}\n", "x".repeat(1000));
        for _ in 0..50_000 {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    let bomb = work.path().join("bomb.gz");
    {
        let f = std::fs::File::create(&bomb).unwrap();
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
        gz.write_all(b"#cloud-config\nusers: []\n# ").unwrap();
        let zeros = vec![b'a'; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap();
    }
    let mime_bomb = work.path().join("mime-bomb.txt");
    {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(b"#cloud-config\n# ").unwrap();
        let zeros = vec![b'a'; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let part = gz.finish().unwrap();
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(part);
        std::fs::write(
            &mime_bomb,
            format!(
                "Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n--B\nContent-Type: application/x-gzip\nContent-Transfer-Encoding: base64\n\n{encoded}\n--B--\n"
            ),
        )
        .unwrap();
    }
    let cases = [
        (&big, "larger than 16777216 bytes"),
        (&bomb, "larger than 16777216 bytes"),
        (&mime_bomb, "larger than 16777216 bytes"),
    ];
    for (file, want) in cases {
        let started = Instant::now();
        let out = scratch.batten("run", &file.display().to_string(), &[]);
        let took = started.elapsed();
        assert_eq!(
            out.status.code(),
            Some(65),
            "{}: {}",
            file.display(),
            text(&out)
        );
        assert!(
            text(&out).contains(want),
            "{}: {}",
            file.display(),
            text(&out)
        );
        assert!(
            took < Duration::from_secs(10),
            "{} took {took:?}",
            file.display()
        );
        assert_unchanged(&before, scratch.path());
    }
    hostile_summary(&format!(
        "{} oversized inputs (a 50 MB file, a 64 MiB gzip bomb, a bomb in a MIME part) refused before parsing",
        cases.len()
    ));
}

// ---- filesystem attacks ------------------------------------------------------

const OWNER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDi/c0qxbedyyZUrZ9WZmCza4aMNTGgltZLVpTBOs90R owner@laptop";
const KEY_BLOB: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDi/c0qxbedyyZUrZ9WZmCza4aMNTGgltZLVpTBOs90R";

/// A scratch root where `mallory` exists and owns her home, and user-data
/// that gives her a key (and turns passwords off).
fn with_mallory() -> (Scratch, String, u32) {
    let scratch = Scratch::new();
    let made = Command::new("useradd")
        .arg("--root")
        .arg(scratch.path())
        .args(["--create-home", "--shell", "/bin/bash", "mallory"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let uid = std::fs::metadata(scratch.join("/home/mallory"))
        .unwrap()
        .uid();
    let ud = scratch.user_data(
        "mallory.yaml",
        &format!(
            "#cloud-config\nusers:\n  - name: mallory\n    ssh_authorized_keys: [\"{OWNER_KEY}\"]\nssh_pwauth: false\n"
        ),
    );
    (scratch, ud, uid)
}

fn chown(path: &Path, uid: u32) {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(uid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// What must hold after any attack: no file outside mallory's home (but
/// batten's own copy of the user-data) holds her key, this machine's /etc
/// is as it was, and no file that existed before changed owner or mode.
fn nothing_escaped(
    scratch: &Scratch,
    before: &BTreeMap<PathBuf, Seen>,
    host_before: &BTreeMap<PathBuf, Seen>,
) -> Result<(), String> {
    let after = snapshot(scratch.path());
    // Nor did anything from the root's own secrets reach her files.
    let shadow = std::fs::read_to_string(scratch.join("/etc/shadow")).unwrap();
    let secret = shadow.lines().next().unwrap_or("root:").as_bytes().to_vec();
    for (path, seen) in &after {
        let planted = before
            .get(path)
            .is_some_and(|old| old.content == seen.content);
        if path.starts_with("home/mallory") && !planted && contains(&seen.content, &secret) {
            return Err(format!(
                "the root's /etc/shadow was copied into {}",
                path.display()
            ));
        }
        let own = path.starts_with("home/mallory") || path == Path::new("var/lib/batten/user-data");
        if !own && seen.kind == "file" && contains(&seen.content, KEY_BLOB.as_bytes()) {
            return Err(format!("mallory's key was written to {}", path.display()));
        }
        if let Some(old) = before.get(path)
            && (old.uid, old.gid, old.mode) != (seen.uid, seen.gid, seen.mode)
            && old.kind == seen.kind
        {
            return Err(format!(
                "{} changed from {}:{} {:o} to {}:{} {:o}",
                path.display(),
                old.uid,
                old.gid,
                old.mode,
                seen.uid,
                seen.gid,
                seen.mode
            ));
        }
    }
    let host_moved = changed(host_before, &host_etc());
    if !host_moved.is_empty() {
        return Err(format!("this machine's /etc/ssh changed: {host_moved:?}"));
    }
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// This machine's /etc/ssh and shadow, which a link to `/etc` would reach if
/// batten followed it out of the root.
fn host_etc() -> BTreeMap<PathBuf, Seen> {
    let mut all = snapshot(Path::new("/etc/ssh"));
    let shadow = std::fs::read("/etc/shadow").unwrap_or_default();
    all.insert(
        "shadow".into(),
        Seen {
            kind: "file",
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: (0, 0),
            ino: 0,
            content: shadow,
        },
    );
    all
}

/// Make mallory's own `~/.ssh` and return it.
fn dot_ssh(home: &Path, uid: u32) -> PathBuf {
    let ssh = home.join(".ssh");
    std::fs::create_dir(&ssh).unwrap();
    chown(&ssh, uid);
    ssh
}

fn run_bounded(scratch: &Scratch, ud: &str) -> Output {
    Command::new("timeout")
        .args(["60", env!("CARGO_BIN_EXE_batten"), "run", "--root"])
        .arg(scratch.path())
        .args(["--user-data", ud])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn planted_links_fifos_devices_and_hard_links_in_a_home_are_refused() {
    const T: &str = "planted_links_fifos_devices_and_hard_links_in_a_home_are_refused";
    if !privileged(T) || !have("useradd", T) || !have("nft", T) {
        return;
    }
    type Plant = fn(&Path, &Path, u32);
    let attacks: [(&str, Plant); 8] = [
        ("~/.ssh is a symlink to /etc", |_, home, uid| {
            let ssh = home.join(".ssh");
            std::os::unix::fs::symlink("/etc", &ssh).unwrap();
            chown(&ssh, uid);
        }),
        (
            "~/.ssh is a relative symlink to ../../etc",
            |_, home, uid| {
                let ssh = home.join(".ssh");
                std::os::unix::fs::symlink("../../etc", &ssh).unwrap();
                chown(&ssh, uid);
            },
        ),
        (
            "authorized_keys is a symlink to /etc/shadow",
            |_, home, uid| {
                let ssh = dot_ssh(home, uid);
                let keys = ssh.join("authorized_keys");
                std::os::unix::fs::symlink("/etc/shadow", &keys).unwrap();
                chown(&keys, uid);
            },
        ),
        ("authorized_keys is a FIFO", |_, home, uid| {
            let ssh = dot_ssh(home, uid);
            let keys = ssh.join("authorized_keys");
            nix::unistd::mkfifo(&keys, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            chown(&keys, uid);
        }),
        ("authorized_keys is a character device", |_, home, uid| {
            let ssh = dot_ssh(home, uid);
            let keys = ssh.join("authorized_keys");
            nix::sys::stat::mknod(
                &keys,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, 3),
            )
            .unwrap();
        }),
        (
            "authorized_keys is a hard link to the root's /etc/shadow",
            |root, home, uid| {
                let ssh = dot_ssh(home, uid);
                std::fs::hard_link(root.join("etc/shadow"), ssh.join("authorized_keys")).unwrap();
            },
        ),
        ("authorized_keys is a directory", |_, home, uid| {
            let ssh = home.join(".ssh");
            std::fs::create_dir_all(ssh.join("authorized_keys")).unwrap();
            chown(&ssh, uid);
            chown(&ssh.join("authorized_keys"), uid);
        }),
        ("the home itself is a symlink to /etc", |_, home, _| {
            std::fs::remove_dir_all(home).unwrap();
            std::os::unix::fs::symlink("/etc", home).unwrap();
        }),
    ];
    let host_before = host_etc();
    for (what, plant) in attacks {
        let (scratch, ud, uid) = with_mallory();
        let home = scratch.join("/home/mallory");
        plant(scratch.path(), &home, uid);
        let before = snapshot(scratch.path());
        let out = run_bounded(&scratch, &ud);
        let said = text(&out);
        assert_ne!(out.status.code(), Some(124), "{what}: batten hung:\n{said}");
        assert!(!out.status.success(), "{what}: batten went ahead:\n{said}");
        assert!(
            said.contains("/home/mallory"),
            "{what}: the refusal does not name the path:\n{said}"
        );
        if let Err(e) = nothing_escaped(&scratch, &before, &host_before) {
            panic!("{what}: {e}\n{said}");
        }
        // Refused means refused: password login was not switched off.
        assert!(
            !scratch
                .join("/etc/ssh/sshd_config.d/00-batten.conf")
                .exists(),
            "{what}: sshd settings were written:\n{said}"
        );
    }
    hostile_summary(&format!(
        "{} planted filesystem attacks in a user's home refused; nothing written outside it, no owner or mode changed",
        attacks.len()
    ));
}

/// Swap `~/.ssh` between a real directory and a symlink to `/etc` as fast
/// as possible while batten runs, over and over (bounded): whatever batten
/// does, mallory's key never lands outside her home.
#[test]
fn a_dot_ssh_swapped_for_a_symlink_while_batten_runs_never_lets_it_out() {
    const T: &str = "a_dot_ssh_swapped_for_a_symlink_while_batten_runs_never_lets_it_out";
    if !privileged(T) || !have("useradd", T) || !have("nft", T) {
        return;
    }
    let rounds: usize = std::env::var("BATTEN_RACE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let host_before = host_etc();
    let mut refused = 0;
    let mut swaps_total = 0u64;
    for round in 0..rounds {
        let (scratch, ud, uid) = with_mallory();
        let home = scratch.join("/home/mallory");
        let ssh = home.join(".ssh");
        let real = home.join(".ssh-real");
        std::fs::create_dir(&real).unwrap();
        chown(&real, uid);
        let before = snapshot(scratch.path());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let stop = stop.clone();
            let (ssh, real) = (ssh.clone(), real.clone());
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_secs(30);
                let mut swaps = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
                    // A directory, then a link to /etc in its place.
                    let _ = std::fs::rename(&real, &ssh);
                    std::thread::yield_now();
                    let _ = std::fs::rename(&ssh, &real);
                    let _ = std::os::unix::fs::symlink("/etc", &ssh);
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(&ssh);
                    swaps += 1;
                }
                swaps
            })
        };
        let out = run_bounded(&scratch, &ud);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swaps_total += swapper.join().unwrap();
        let said = text(&out);
        assert_ne!(
            out.status.code(),
            Some(124),
            "round {round}: batten hung:\n{said}"
        );
        if out.status.success() {
            // Written, then: inside the home, wherever the swapper left it.
            let inside = snapshot(&home)
                .values()
                .any(|seen| seen.kind == "file" && contains(&seen.content, KEY_BLOB.as_bytes()));
            assert!(
                inside,
                "round {round}: a run that succeeded wrote no key:\n{said}"
            );
        } else {
            refused += 1;
            assert!(
                said.contains("/home/mallory"),
                "round {round}: the refusal does not name the path:\n{said}"
            );
        }
        // The swapper may leave a link or nothing behind; the check is on
        // everything outside the home.
        if let Err(e) = nothing_escaped(&scratch, &before, &host_before) {
            panic!("round {round}: {e}\n{said}");
        }
    }
    assert!(
        rounds > 0 && swaps_total > 0,
        "no race was run ({rounds} rounds, {swaps_total} swaps)"
    );
    hostile_summary(&format!(
        "{rounds} races (~/.ssh swapped for a link to /etc {swaps_total} times while batten ran): {refused} runs refused, the rest wrote inside the home only; nothing escaped"
    ));
}

// ---- faults ------------------------------------------------------------------

/// Configurations that would lock the owner out: each refused with its
/// reason, and password login left as the image had it.
#[test]
fn lock_out_configurations_are_refused_and_password_login_stays() {
    const T: &str = "lock_out_configurations_are_refused_and_password_login_stays";
    if !privileged(T) || !have("useradd", T) || !have("nft", T) || !have("sshd", T) {
        return;
    }
    let key = OWNER_KEY;
    let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
        (
            "no keys at all",
            "#cloud-config\nusers:\n  - name: owner\nssh_pwauth: false\n".into(),
            None,
            "nobody could log in",
        ),
        (
            "keys only for root, with disable_root",
            format!(
                "#cloud-config\nusers:\n  - name: root\n    ssh_authorized_keys: [\"{key}\"]\ndisable_root: true\nssh_pwauth: false\n"
            ),
            None,
            "nobody could log in",
        ),
        (
            "the only key user has nologin as shell",
            format!(
                "#cloud-config\nusers:\n  - name: owner\n    shell: /usr/sbin/nologin\n    ssh_authorized_keys: [\"{key}\"]\nssh_pwauth: false\n"
            ),
            None,
            "nologin",
        ),
        (
            "the image's AllowUsers leaves the key user out",
            format!(
                "#cloud-config\nusers:\n  - name: owner\n    ssh_authorized_keys: [\"{key}\"]\nssh_pwauth: false\n"
            ),
            Some("AllowUsers somebodyelse\n"),
            "AllowUsers",
        ),
        (
            "the proxy takes the SSH port",
            format!(
                "#cloud-config\nusers:\n  - name: owner\n    ssh_authorized_keys: [\"{key}\"]\nssh_pwauth: false\nbatten:\n  ssh: {{port: 2222}}\n  proxy:\n    - listen: 2222\n      upstream: 127.0.0.1:8080\n      auth: {{users: [{{name: admin}}]}}\n"
            ),
            None,
            "2222",
        ),
        (
            "the proxy takes the port the image's sshd listens on",
            format!(
                "#cloud-config\nusers:\n  - name: owner\n    ssh_authorized_keys: [\"{key}\"]\nssh_pwauth: false\nbatten:\n  proxy:\n    - listen: 2222\n      upstream: 127.0.0.1:8080\n      auth: {{users: [{{name: admin}}]}}\n"
            ),
            Some("Port 2222\n"),
            "port 2222 is where sshd listens in this image",
        ),
    ];
    for (what, user_data, sshd_extra, reason) in &cases {
        let scratch = Scratch::new();
        scratch.with_nginx();
        if let Some(extra) = sshd_extra {
            let main = scratch.join("/etc/ssh/sshd_config");
            let text = std::fs::read_to_string(&main).unwrap();
            std::fs::write(&main, format!("{extra}{text}")).unwrap();
        }
        let before = snapshot(scratch.path());
        let ud = scratch.user_data("lockout.yaml", user_data);
        let out = scratch.batten("run", &ud, &[]);
        let said = text(&out);
        assert!(!out.status.success(), "{what}: accepted:\n{said}");
        assert!(
            said.contains(reason),
            "{what}: want the reason ({reason}):\n{said}"
        );
        assert_unchanged_outside_state(&before, scratch.path(), what);
    }
    // The SSH port moved in the image: the firewall follows it, so the move
    // does not lock anybody out.
    let scratch = Scratch::new();
    let main = scratch.join("/etc/ssh/sshd_config");
    let text_before = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("Port 2222\n{text_before}")).unwrap();
    let ud = scratch.user_data(
        "moved.yaml",
        &format!("#cloud-config\nusers:\n  - name: owner\n    ssh_authorized_keys: [\"{key}\"]\nssh_pwauth: false\n"),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let rules = std::fs::read_to_string(scratch.join("/etc/nftables.conf")).unwrap();
    assert!(rules.contains("tcp dport 2222 accept"), "{rules}");
    hostile_summary(&format!(
        "{} lock-out configurations refused with their reason, password login untouched; a moved SSH port is followed by the firewall",
        cases.len()
    ));
}

/// A tmpfs mounted for one test and unmounted when it ends, also on panic.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {}", text(&out));
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "remount: {}", text(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// A copy of a scratch root on a tmpfs.
fn scratch_on(fs: &Tmpfs) -> PathBuf {
    let scratch = Scratch::new();
    let root = fs.path().join("root");
    let out = Command::new("cp")
        .arg("-a")
        .arg(scratch.path())
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp: {}", text(&out));
    root
}

fn good_user_data(dir: &Path) -> String {
    let ud = dir.join("owner.yaml");
    std::fs::write(
        &ud,
        format!(
            "#cloud-config\nusers:\n  - name: owner\n    ssh_authorized_keys: [\"{OWNER_KEY}\"]\nssh_pwauth: false\n"
        ),
    )
    .unwrap();
    ud.display().to_string()
}

/// `batten run` on `root` with `ud`.
fn run_on(root: &Path, ud: &str) -> Output {
    run(&[
        "run",
        "--root",
        &root.display().to_string(),
        "--user-data",
        ud,
    ])
}

/// Everything that existed before still has its bytes: no truncated file.
fn previous_files_intact(before: &BTreeMap<PathBuf, Seen>, root: &Path) -> Result<(), String> {
    let after = snapshot(root);
    for (path, old) in before {
        if per_run(path) {
            continue;
        }
        match after.get(path) {
            Some(now) if now.content == old.content && now.kind == old.kind => {}
            Some(_) => return Err(format!("{} changed", path.display())),
            None => return Err(format!("{} is gone", path.display())),
        }
    }
    Ok(())
}

/// Fill the file system holding `filler` with it: dd writes until there is
/// no space left, which is the one way it stops (exit 1 with ENOSPC).
fn fill(filler: &Path) {
    let out = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k", "status=none"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("No space left on device"),
        "dd did not fill {}: {}",
        filler.display(),
        text(&out)
    );
}

/// How the full-disk runs ended.
#[derive(Default)]
struct DiskOutcomes {
    up_front: usize,
    mid_run: usize,
    fitted: usize,
}

impl DiskOutcomes {
    /// Check one run on a full (or filling) disk, and count how it ended: it
    /// fitted and verifies, or it stopped with exit 70 saying why, every
    /// previous file with its bytes and no temporary left behind.
    fn judge(&mut self, out: &Output, root: &Path, before: &BTreeMap<PathBuf, Seen>, case: &str) {
        let said = text(out);
        if out.status.success() {
            let verified = run(&["verify", "--root", &root.display().to_string()]);
            assert!(verified.status.success(), "{case}: {}", text(&verified));
            self.fitted += 1;
            return;
        }
        assert_eq!(out.status.code(), Some(70), "{case}:\n{said}");
        assert!(
            said.contains("No space left on device"),
            "{case}: the reason is not said:\n{said}"
        );
        if said.contains("for this run: the file system holding") {
            self.up_front += 1;
        } else {
            self.mid_run += 1;
        }
        if let Err(e) = previous_files_intact(before, root) {
            panic!("{case}: {e}\n{said}");
        }
        let leftovers: Vec<PathBuf> = snapshot(root)
            .into_keys()
            .filter(|p| p.to_string_lossy().contains(".batten-"))
            .collect();
        assert!(leftovers.is_empty(), "{case}: left {leftovers:?}");
    }
}

#[test]
fn a_full_disk_and_a_read_only_root_stop_the_run_with_previous_files_intact() {
    const T: &str = "a_full_disk_and_a_read_only_root_stop_the_run_with_previous_files_intact";
    if !privileged(T)
        || !have("useradd", T)
        || !have("nft", T)
        || !have("mount", T)
        || !have("dd", T)
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let ud = good_user_data(work.path());
    let mut outcomes = DiskOutcomes::default();

    // Disk full: fill the tmpfs, leaving a little room, at a few levels so
    // the write that fails falls in different places.
    for room_kib in [0u64, 4, 16, 64] {
        let fs = Tmpfs::new("8m");
        let root = scratch_on(&fs);
        let filler = fs.path().join("filler");
        fill(&filler);
        if room_kib > 0 {
            let size = std::fs::metadata(&filler).unwrap().len();
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&filler)
                .unwrap();
            f.set_len(size.saturating_sub(room_kib * 1024)).unwrap();
        }
        let mut before = snapshot(&root);
        before.retain(|p, _| !per_run(p));
        let out = run_on(&root, &ud);
        outcomes.judge(&out, &root, &before, &format!("room {room_kib} KiB"));
    }

    // The disk fills up while batten runs (another writer takes the last
    // blocks after a delay): a run that fails part-way must be undone.
    // batten asks the root's OpenSSH what it supports (a few ssh -Q runs)
    // before it plans, so the later delays still land after its space check.
    for delay_ms in [0u64, 10, 30, 60, 100, 150, 250, 400] {
        let fs = Tmpfs::new("8m");
        let root = scratch_on(&fs);
        let mut before = snapshot(&root);
        before.retain(|p, _| !per_run(p));
        let filler = fs.path().join("filler");
        let child = batten()
            .args([
                "run",
                "--root",
                &root.display().to_string(),
                "--user-data",
                &ud,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        fill(&filler);
        let out = child.wait_with_output().unwrap();
        // A run that fitted is verified with the filler gone (verify keeps
        // its own records too).
        if out.status.success() {
            let _ = std::fs::remove_file(&filler);
        }
        outcomes.judge(&out, &root, &before, &format!("filled after {delay_ms} ms"));
    }
    // Both paths were taken: refused before any change, and undone part-way.
    assert!(
        outcomes.up_front > 0 && outcomes.mid_run > 0,
        "the full-disk cases did not reach both paths: {} refused first, {} undone mid-run",
        outcomes.up_front,
        outcomes.mid_run
    );

    // A read-only root.
    let fs = Tmpfs::new("16m");
    let root = scratch_on(&fs);
    fs.remount("ro");
    let before = snapshot(&root);
    let out = run_on(&root, &ud);
    let said = text(&out);
    assert!(
        !out.status.success(),
        "a read-only root was written:\n{said}"
    );
    assert!(
        said.contains("Read-only file system") || said.contains("read-only"),
        "{said}"
    );
    assert_unchanged(&before, &root);
    let DiskOutcomes {
        up_front,
        mid_run,
        fitted,
    } = outcomes;
    hostile_summary(&format!(
        "{} storage faults: a full disk at 4 levels and filled during the run at 6 moments ({up_front} refused before any change, {mid_run} failed during the run and were undone, {fitted} fitted and verified) and a read-only root; clear errors, no truncated or half-made file",
        up_front + mid_run + fitted + 1
    ));
}

#[test]
fn a_missing_program_exits_69_naming_it_and_its_package() {
    const T: &str = "a_missing_program_exits_69_naming_it_and_its_package";
    let cases = [
        ("sshd", "openssh-server", false),
        ("nft", "nftables", false),
        ("nginx", "nginx", true),
    ];
    if !privileged(T)
        || !have("unshare", T)
        || !have("useradd", T)
        || cases.iter().any(|(program, _, _)| !have(program, T))
    {
        return;
    }
    for (program, package, proxy) in cases {
        let path = batten::host::exec::find_program(program).unwrap();
        let scratch = Scratch::new();
        scratch.with_nginx();
        let proxy_part = if proxy {
            "batten:\n  proxy:\n    - listen: 8081\n      upstream: 127.0.0.1:8080\n      auth: {users: [{name: admin}]}\n"
        } else {
            ""
        };
        let ud = scratch.user_data(
            "missing.yaml",
            &format!(
                "#cloud-config\nusers:\n  - name: owner\n    ssh_authorized_keys: [\"{OWNER_KEY}\"]\nssh_pwauth: false\n{proxy_part}"
            ),
        );
        let before = snapshot(scratch.path());
        // The program vanishes for batten only: /dev/null is bound over it
        // in a private mount namespace.
        let out = Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                "mount --bind /dev/null \"$1\" && shift && exec \"$@\"",
                "sh",
            ])
            .arg(&path)
            .arg(env!("CARGO_BIN_EXE_batten"))
            .args(["run", "--root"])
            .arg(scratch.path())
            .args(["--user-data", &ud])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let said = text(&out);
        assert_eq!(out.status.code(), Some(69), "{program}:\n{said}");
        assert!(
            said.contains(&format!("{program} is not installed")),
            "{said}"
        );
        assert!(
            said.contains(package),
            "{program}: no package named:\n{said}"
        );
        assert_unchanged(&before, scratch.path());
    }
    hostile_summary(&format!(
        "{} missing programs (sshd, nft, nginx): exit 69 naming the program and its package, the root unchanged",
        cases.len()
    ));
}
