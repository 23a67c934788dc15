//! batten's own state in the root: `state.json` (instance-id, seal, recent
//! runs) and one journal per run, under `/var/lib/batten/`.
//!
//! The state is what makes batten run once: a machine sealed under an
//! instance-id does nothing on later boots with the same id. The journal
//! records every step as it happens, so a run killed half-way leaves a trace
//! of how far it got; the next run re-plans from the root and converges.

use serde::{Deserialize, Serialize};

use crate::host::root::{Owner, Root, RootError};

/// batten's directory in the root, readable by root only.
pub const STATE_DIR: &str = "/var/lib/batten";
/// The state file.
pub const STATE_FILE: &str = "/var/lib/batten/state.json";
/// Where the journals of runs are kept.
pub const JOURNAL_DIR: &str = "/var/lib/batten/journal";
/// How many runs `state.json` remembers.
const KEPT_RUNS: usize = 20;

/// What `state.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The instance of the last run; a run under another id (a clone, a new
    /// VPS from the image) starts unsealed.
    pub instance_id: Option<String>,
    /// True once verify passed and the first-boot units were switched off
    /// (`verify --seal`).
    pub sealed: bool,
    /// The instance whose SSH host keys batten made; a re-run for the same
    /// instance keeps them (a machine's identity must not change), a new
    /// instance gets fresh ones.
    #[serde(default)]
    pub host_keys_instance: Option<String>,
    /// The private host keys (paths) the baseline made in the boot that
    /// `host_keys_instance` names as `boot:...`; only these count as this
    /// machine's own until an instance claims them, every other key there
    /// may be the image's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_host_keys: Vec<String>,
    /// Checks the last `--root` run could make only statically, because
    /// the image's programs cannot run on the machine that built it; the
    /// machine's first boot makes them live (verify) before the seal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_only: Vec<String>,
    /// The most recent runs, oldest first, at most 20.
    pub runs: Vec<RunRecord>,
}

/// One run of `batten run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id (`new_run_id`), which also names its backup directory and
    /// journal.
    pub id: String,
    /// When the run began, RFC 3339 UTC.
    pub started: String,
    /// When it ended, RFC 3339 UTC.
    pub finished: String,
    /// The instance it ran for.
    pub instance_id: String,
    /// Where the user-data came from, as the report words it.
    pub source: String,
    /// "applied", "unchanged" or "failed".
    pub outcome: String,
    /// How many steps changed something; 0 when the run failed.
    pub changes: usize,
    /// The whole run's wall time in milliseconds, reading and checking the
    /// user-data included, so it compares with cloud-init's own total
    /// (`cloud-init analyze`). 0 in records written before it was kept.
    #[serde(default)]
    pub millis: u128,
    /// Every step, as the journal recorded it.
    pub steps: Vec<Step>,
}

/// One step of a run, as the journal shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The action's one-line summary; never a secret.
    pub what: String,
    /// False for the step that stopped the run.
    pub ok: bool,
    /// How long the step took, in milliseconds.
    pub millis: u128,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// state.json could not be read or written inside the root.
    #[error(transparent)]
    Root(#[from] RootError),
    /// state.json exists but is not the JSON batten writes.
    #[error("{path} is damaged ({why}); move it aside and run batten again")]
    Damaged {
        /// Host path of state.json.
        path: String,
        /// What the JSON parser found wrong.
        why: String,
    },
}

/// Owner of batten's private files: the user running batten (root on a real
/// machine; the developer in unprivileged tests).
pub fn private_owner(mode: u32) -> Owner {
    Owner {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        mode,
    }
}

impl State {
    /// Read `state.json`; a missing file is the empty state of a new machine.
    pub fn load(root: &Root) -> Result<State, StateError> {
        match root.read(STATE_FILE)? {
            None => Ok(State::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Damaged {
                path: root.host_path(STATE_FILE).display().to_string(),
                why: e.to_string(),
            }),
        }
    }

    /// Write `state.json` atomically, keeping the last runs only.
    pub fn save(&mut self, root: &Root) -> Result<(), StateError> {
        if self.runs.len() > KEPT_RUNS {
            self.runs.drain(..self.runs.len() - KEPT_RUNS);
        }
        root.create_dir_all(STATE_DIR, private_owner(0o700))?;
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        root.write_atomic(STATE_FILE, text.as_bytes(), private_owner(0o600), None)?;
        Ok(())
    }
}

/// Holds the run lock for as long as it lives, so that two runs on one root
/// never interleave their writes (a boot unit and an administrator's
/// recovery run, say). The lock is on the root directory itself, so taking
/// it writes nothing; the kernel drops it when the process ends, also when
/// it is killed.
pub struct RunLock {
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl RunLock {
    /// Take the lock, or say that another run has it. Never waits: a second
    /// run started by hand while the boot unit runs should say so at once.
    pub fn take(root: &Root) -> Result<RunLock, String> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let shown = root.path().display();
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY)
            .open(root.path())
            .map_err(|e| format!("cannot open {shown} to take the run lock: {e}"))?;
        nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map(|held| RunLock { _held: held })
            .map_err(|(_, errno)| {
                if errno == nix::errno::Errno::EWOULDBLOCK {
                    format!(
                        "another batten run is working on {shown}; wait for it to finish (`batten status` shows the last run), then run again"
                    )
                } else {
                    format!("cannot lock {shown}: {errno}")
                }
            })
    }
}

/// The journal of one run: a line per step, written through as it goes.
pub struct Journal {
    path: String,
    text: String,
    /// The steps recorded so far, for the run's `RunRecord`.
    pub steps: Vec<Step>,
}

impl Journal {
    /// Start the journal of run `run`.
    pub fn new(run: &str) -> Journal {
        Journal {
            path: format!("{JOURNAL_DIR}/{run}.log"),
            text: String::new(),
            steps: Vec::new(),
        }
    }

    /// Record a finished step and write the journal to disk. Step texts are
    /// summaries, never secrets.
    pub fn record(
        &mut self,
        root: &Root,
        what: &str,
        ok: bool,
        millis: u128,
    ) -> Result<(), RootError> {
        let mark = if ok { "ok" } else { "FAILED" };
        self.text
            .push_str(&format!("{} {mark} {millis}ms {what}\n", now_utc()));
        self.steps.push(Step {
            what: what.to_string(),
            ok,
            millis,
        });
        root.create_dir_all(JOURNAL_DIR, private_owner(0o700))?;
        root.write_atomic(&self.path, self.text.as_bytes(), private_owner(0o600), None)?;
        Ok(())
    }
}

/// Seconds since the epoch now (0 if the clock is before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The current time as an RFC 3339 UTC timestamp, without a date crate.
pub fn now_utc() -> String {
    format_utc(now_secs())
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS` followed by `Z` or
/// `+0000` (UTC only), the inverse of [`format_utc`]; `None` for anything
/// else.
pub fn parse_utc(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let time = time
        .strip_suffix("+0000")
        .or_else(|| time.strip_suffix('Z'))?;
    let number = |s: &str| s.parse::<i64>().ok();
    let mut d = date.splitn(3, '-').map(number);
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(number);
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hh)
        || !(0..60).contains(&mm)
        || !(0..61).contains(&ss)
    {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of the
    // civil-from-days in format_utc.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Format seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for all u64 times we meet.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What `host_keys_instance` holds for host keys the baseline made before
/// any instance was known: this boot's id, so that a run later in the same
/// boot (the metadata stage, or the owner's fix of refused user-data) keeps
/// keys sshd may already have shown, while a clone of this disk, which
/// boots under another id, still gets keys of its own.
pub fn this_boot() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| format!("{BOOT_RECORD}{id}"))
}

/// How a boot's record in `host_keys_instance` starts (instance-ids are
/// letters, digits and `. _ : -`, so one could start so too; a record is
/// read as a boot's only when it is this very boot's).
pub const BOOT_RECORD: &str = "boot:";

/// A run id that sorts by time and names a backup directory:
/// `20261125T083000Z-1234`.
pub fn new_run_id() -> String {
    let stamp: String = now_utc()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("{stamp}-{}", std::process::id())
}

#[cfg(test)]
mod tests {

    #[test]
    fn utc_times_read_back_as_written() {
        for secs in [0, 951_913_815, 1_709_164_800, 1_795_000_000] {
            assert_eq!(parse_utc(&format_utc(secs)), Some(secs), "{secs}");
        }
        assert_eq!(parse_utc("2000-03-01T12:30:15+0000"), Some(951_913_815));
        assert_eq!(parse_utc("2024-02-29T25:00:00Z"), None);
        assert_eq!(parse_utc("soon"), None);
    }

    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_603_845), "2026-11-25T10:50:45Z");
    }

    #[test]
    fn state_round_trip_and_trim() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(State::load(&root).unwrap(), State::default());
        let mut s = State {
            instance_id: Some("i-1".into()),
            ..State::default()
        };
        for i in 0..25 {
            s.runs.push(RunRecord {
                id: format!("r{i}"),
                started: now_utc(),
                finished: now_utc(),
                instance_id: "i-1".into(),
                source: "test".into(),
                outcome: "applied".into(),
                changes: 1,
                millis: 5,
                steps: vec![],
            });
        }
        s.save(&root).unwrap();
        let back = State::load(&root).unwrap();
        assert_eq!(back.runs.len(), 20);
        assert_eq!(back.runs[0].id, "r5");
        let meta = root.metadata(STATE_FILE).unwrap().unwrap();
        assert_eq!(meta.mode, 0o600);
        std::fs::write(dir.path().join("var/lib/batten/state.json"), "{").unwrap();
        assert!(
            State::load(&root)
                .unwrap_err()
                .to_string()
                .contains("move it aside")
        );
    }
}

/// batten's units as shipped in `images/`: (unit path in the root, its
/// text, the enable link `systemctl enable` makes).
pub const UNITS: &[(&str, &str, &str)] = &[
    (
        "/etc/systemd/system/batten.service",
        include_str!("../../images/batten.service"),
        "/etc/systemd/system/sysinit.target.wants/batten.service",
    ),
    (
        "/etc/systemd/system/batten-metadata.service",
        include_str!("../../images/batten-metadata.service"),
        "/etc/systemd/system/multi-user.target.wants/batten-metadata.service",
    ),
    (
        "/etc/systemd/system/batten-verify.service",
        include_str!("../../images/batten-verify.service"),
        "/etc/systemd/system/multi-user.target.wants/batten-verify.service",
    ),
];
/// Where `install` puts the binary in the root.
pub const BINARY_PATH: &str = "/usr/local/sbin/batten";

/// Make the next boot run batten again: the units' enable links back, the
/// seal cleared. Returns what it did, for the console.
pub fn rearm(root: &Root) -> Result<Vec<String>, StateError> {
    let mut done = Vec::new();
    for (path, _, link) in UNITS {
        if root.metadata(path)?.is_none() {
            done.push(format!("{path} is not installed: run `batten install --root DIR` to bake batten into the image"));
            continue;
        }
        let dir = link.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
        root.create_dir_all(
            dir,
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o755,
            },
        )?;
        if root.symlink(path, link, None)? {
            done.push(format!(
                "enabled {} ({link})",
                path.rsplit('/').next().unwrap_or(path)
            ));
        }
    }
    let mut state = State::load(root)?;
    if state.sealed {
        state.sealed = false;
        state.save(root)?;
        done.push("cleared the seal: the next boot runs batten".to_string());
    }
    Ok(done)
}

/// Where `install` puts batten(8), so `man batten` works on the machine.
pub const MANUAL_PATH: &str = "/usr/local/share/man/man8/batten.8";

/// Put the manual page into the image (`man batten` on the machine).
pub fn install_manual(root: &Root, page: &[u8]) -> Result<Vec<String>, StateError> {
    root.create_dir_all(
        "/usr/local/share/man/man8",
        Owner {
            uid: 0,
            gid: 0,
            mode: 0o755,
        },
    )?;
    let written = root.write_atomic(
        MANUAL_PATH,
        page,
        Owner {
            uid: 0,
            gid: 0,
            mode: 0o644,
        },
        None,
    )?;
    Ok(if written {
        vec![format!("installed {MANUAL_PATH}")]
    } else {
        Vec::new()
    })
}

/// Bake batten into an image: this binary, the unit, its enable link.
/// `generalize` also makes every machine made from the image new: no host
/// keys, an empty machine-id, no batten state or generated passwords.
pub fn install(root: &Root, binary: &[u8], generalize: bool) -> Result<Vec<String>, StateError> {
    let mut done = Vec::new();
    let dir = |p: &str| {
        root.create_dir_all(
            p,
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o755,
            },
        )
    };
    dir("/usr/local/sbin")?;
    if root.write_atomic(
        BINARY_PATH,
        binary,
        Owner {
            uid: 0,
            gid: 0,
            mode: 0o755,
        },
        None,
    )? {
        done.push(format!("installed {BINARY_PATH} ({} bytes)", binary.len()));
    }
    dir("/etc/systemd/system")?;
    for (path, text, _) in UNITS {
        if root.write_atomic(
            path,
            text.as_bytes(),
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o644,
            },
            None,
        )? {
            done.push(format!("installed {path}"));
        }
    }
    done.extend(rearm(root)?);
    if generalize {
        for name in root.list_dir("/etc/ssh")?.unwrap_or_default() {
            let path = format!("/etc/ssh/{name}");
            let is_file = root
                .metadata(&path)?
                .is_some_and(|m| m.kind == crate::host::root::FileKind::File);
            if name.starts_with("ssh_host_")
                && name.contains("key")
                && is_file
                && root.remove_file(&path, None)?
            {
                done.push(format!("removed {path}"));
            }
        }
        // An empty machine-id makes systemd write a new one at first boot.
        if root.metadata("/etc/machine-id")?.is_some()
            && root.write_atomic(
                "/etc/machine-id",
                b"",
                Owner {
                    uid: 0,
                    gid: 0,
                    mode: 0o444,
                },
                None,
            )?
        {
            done.push("emptied /etc/machine-id".to_string());
        }
        for path in [
            STATE_FILE,
            "/var/lib/batten/user-data",
            "/var/lib/batten/instance-data.json",
            "/var/lib/batten/credentials",
        ] {
            if root.remove_file(path, None)? {
                done.push(format!("removed {path}"));
            }
        }
        for name in root.list_dir(JOURNAL_DIR)?.unwrap_or_default() {
            root.remove_file(&format!("{JOURNAL_DIR}/{name}"), None)?;
        }
        // cloud-init keys its per-instance work on this link; without it a
        // clone is a new instance to cloud-init too.
        if root.metadata("/var/lib/cloud/instance")?.is_some()
            && root.remove_file("/var/lib/cloud/instance", None)?
        {
            done.push("removed /var/lib/cloud/instance (cloud-init treats the next boot as a new instance)".to_string());
        }
    }
    Ok(done)
}

#[cfg(test)]
mod install_tests {
    use super::*;

    #[test]
    fn install_generalize_and_rearm_on_a_scratch_root() {
        let dir = tempfile::tempdir().unwrap();
        let p = |rel: &str| dir.path().join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p("/etc/ssh")).unwrap();
        std::fs::create_dir_all(p("/var/lib/batten/journal")).unwrap();
        std::fs::write(p("/etc/ssh/ssh_host_ed25519_key"), "private").unwrap();
        std::fs::write(p("/etc/ssh/sshd_config"), "UsePAM yes\n").unwrap();
        std::fs::write(p("/etc/machine-id"), "0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::write(
            p("/var/lib/batten/state.json"),
            "{\"instance_id\":\"x\",\"sealed\":true,\"runs\":[]}",
        )
        .unwrap();
        std::fs::write(p("/var/lib/batten/journal/r1.log"), "ok").unwrap();
        let root = Root::open(dir.path()).unwrap();
        let done = install(&root, b"\x7fELF binary", true).unwrap();
        assert!(
            done.iter()
                .any(|d| d.starts_with("installed /usr/local/sbin/batten")),
            "{done:?}"
        );
        assert_eq!(
            std::fs::read_link(p(UNITS[0].2)).unwrap(),
            std::path::Path::new(UNITS[0].0)
        );
        assert!(
            std::fs::symlink_metadata(p(UNITS[1].2)).is_ok(),
            "the verify unit is enabled too"
        );
        assert!(!p("/etc/ssh/ssh_host_ed25519_key").exists());
        assert!(p("/etc/ssh/sshd_config").exists());
        assert_eq!(std::fs::read(p("/etc/machine-id")).unwrap(), b"");
        assert!(!p("/var/lib/batten/state.json").exists());
        assert_eq!(
            std::fs::read_dir(p("/var/lib/batten/journal"))
                .unwrap()
                .count(),
            0
        );
        // Installing again changes nothing.
        assert_eq!(
            install(&root, b"\x7fELF binary", false).unwrap(),
            Vec::<String>::new()
        );

        // A sealed machine whose link was removed is armed again.
        std::fs::remove_file(p(UNITS[0].2)).unwrap();
        let mut state = State {
            instance_id: Some("i-1".into()),
            sealed: true,
            ..State::default()
        };
        state.save(&root).unwrap();
        let done = rearm(&root).unwrap();
        assert_eq!(
            done.len(),
            2,
            "the first-stage link back, the seal cleared: {done:?}"
        );
        assert!(!State::load(&root).unwrap().sealed);
        assert!(
            std::fs::symlink_metadata(p(UNITS[0].2)).is_ok(),
            "the link is back"
        );
    }
}
