//! batten's own state in the root: `state.json` (instance-id, seal, recent
//! runs) and one journal per run, under `/var/lib/batten/`.
//!
//! The state is what makes batten run once: a machine sealed under an
//! instance-id does nothing on later boots with the same id. The journal
//! records every step as it happens, so a run killed half-way leaves a trace
//! of how far it got; the next run re-plans from the root and converges.
//!
//! Files by job: `clock` (timestamps without a date crate), `lock` (one
//! run at a time), `journal` (a line per step), `install` (baking batten
//! into an image, and re-arming it), `seal` (switching the first boot off).

mod clock;
mod host_keys;
mod install;
mod journal;
mod lock;
mod seal;

pub use clock::{format_utc, now_secs, now_utc, parse_utc};
pub use host_keys::{KeysFor, KeysRecord};
pub use install::{
    BINARY_PATH, KEPT_UNITS, MADE_CERTIFICATES, MANUAL_PATH, METADATA_UNIT, UNITS, install,
    install_manual, rearm,
};
pub use journal::Journal;
pub use lock::RunLock;
pub use seal::{SealError, seal};

use serde::{Deserialize, Serialize};

use crate::host::root::{Owner, Root, RootError};

/// batten's directory in the root, readable by root only.
pub const STATE_DIR: &str = "/var/lib/batten";

/// The state file.
pub const STATE_FILE: &str = "/var/lib/batten/state.json";

/// Where the journals of runs are kept.
pub const JOURNAL_DIR: &str = "/var/lib/batten/journal";

/// Where the copy of the user-data batten acted on is kept (0600).
pub const USER_DATA_COPY: &str = "/var/lib/batten/user-data";
/// Where the instance data a jinja template was rendered with is kept
/// (0600), beside the user-data copy.
pub const INSTANCE_DATA_COPY: &str = "/var/lib/batten/instance-data.json";
/// Written (on the running system, in /run) when the first stage found
/// local user-data, so that batten-metadata.service skips this boot.
pub const LOCAL_USER_DATA_MARKER: &str = "/run/batten/local-user-data";
/// Why the metadata service gave nothing on this boot (live system only),
/// for `status`; /run, so it does not outlive the boot that tried.
pub const METADATA_FAILURE: &str = "/run/batten/metadata-failure";

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
    /// For a seed on a boot partition: its digest when the instance was
    /// sealed. A card edited since on another computer runs batten again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_fingerprint: Option<String>,
    /// For a seed on a boot partition: its digest as the last successful
    /// run left it (after taking the secrets out). The seal takes only a
    /// card that a run applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_seed: Option<String>,
    /// Accounts whose known default password batten locked, with what the
    /// password was, for `status` and verify's report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_passwords_locked: Vec<LockedDefault>,
    /// The certificates the proxy's HTTPS sites serve, as the last run
    /// (or `batten acme`) left them: what an owner checks the first
    /// connection against, and what verify holds the live site to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<SiteCertificate>,
    /// The last ACME round of each site that asks for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acme: Vec<AcmeRecord>,
    /// The most recent runs, oldest first, at most 20.
    pub runs: Vec<RunRecord>,
}

/// Keep `value` as JSON at `path` in the root, 0600 root (batten's own
/// records beside the state).
pub fn save_json<T: Serialize>(root: &Root, path: &str, value: &T) -> Result<(), StateError> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    root.write_atomic(path, text.as_bytes(), private_owner(0o600), None)?;
    Ok(())
}

/// One of batten's JSON records, when it is there and readable.
pub fn load_json<T: serde::de::DeserializeOwned>(root: &Root, path: &str) -> Option<T> {
    let bytes = root.read(path).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// How the last ACME round of a site went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeRecord {
    /// The site's name.
    pub site: String,
    /// The domain asked for.
    pub domain: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Whether the site serves the CA's certificate after it.
    pub ok: bool,
    /// What happened, in words (certbot's own when it failed).
    pub said: String,
}

/// A proxy site's certificate as batten recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCertificate {
    /// The site's name (`batten-80-panel.example.org`).
    pub site: String,
    /// Where the certificate is.
    pub path: String,
    /// SHA-256 of the certificate, as browsers show it (`AB:CD:...`).
    pub fingerprint: String,
    /// SHA-256 of its public key, as curl's `--pinnedpubkey` takes it.
    pub pin: String,
    /// The names it is valid for.
    pub names: Vec<String>,
    /// When it expires, in seconds since the epoch.
    pub not_after: u64,
    /// Made here and self-signed, rather than issued by a CA.
    pub self_signed: bool,
}

/// One account batten locked because its password was a known default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockedDefault {
    /// The account.
    pub user: String,
    /// What its password was, in words (public knowledge, never a secret).
    pub was: String,
    /// The run that locked it.
    pub run: String,
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
    use super::*;

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
