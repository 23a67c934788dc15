//! What the image's `ssh -Q` listed, kept by `batten install` so that the
//! first boot does not start ssh four times, on sshd's critical path, to
//! learn what was already learnt when the image was baked (under software
//! emulation each start costs a few hundred milliseconds).
//!
//! The record names the ssh program it came from by a SHA-256 of its
//! bytes, and the kernel's FIPS switch it ran under (a FIPS build of
//! OpenSSH lists fewer algorithms when the kernel is in FIPS mode). When
//! either differs at the first boot (an upgraded openssh-client, another
//! mode) ssh is asked again. A wrong record could not lock anyone out in
//! any case: sshd's own check of the written configuration comes before
//! anything is kept.

use serde::{Deserialize, Serialize};

use super::crypto::{SshdFacts, Supported, sshd_version};
use crate::host::exec::{self, Runner};
use crate::host::root::Root;
use crate::state::{self, StateError};

/// Where the lists are kept, beside batten's other records.
pub const PATH: &str = "/var/lib/batten/ssh-algorithms.json";

/// Which ssh program answered, and in which kernel mode: what a record must
/// match to stand in for asking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    /// The program's path (inside the root for an image's own).
    pub program: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Whether the running kernel was in FIPS mode.
    pub fips: bool,
}

#[derive(Serialize, Deserialize)]
struct Record {
    asked: Asked,
    supported: Supported,
}

/// What the root's OpenSSH supports, for planning: from the record when it
/// names this very program in this mode, else asked (`ssh -Q`).
pub fn facts(runner: &(dyn Runner + Sync), root: &Root) -> SshdFacts {
    match asked(root).and_then(|a| load(root, &a)) {
        Some(kept) => SshdFacts {
            version: sshd_version(root),
            listed: Some(kept),
            why_not_listed: None,
        },
        None => SshdFacts::probe(runner, root),
    }
}

/// What [`ask_and_keep`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Kept {
    /// A record was written from what the root's ssh listed.
    Written,
    /// The record kept already names this very program in this mode: an
    /// install run again asks nothing.
    Already,
    /// Its ssh cannot be asked here (another machine's program, none at
    /// all), and why: the first boot asks it.
    NotAsked(String),
}

/// Ask the root's ssh and keep its lists for the root's next run (`batten
/// install`, so that the first boot starts no ssh).
pub fn ask_and_keep(runner: &(dyn Runner + Sync), root: &Root) -> Result<Kept, StateError> {
    let Some(asked) = asked(root) else {
        return Ok(Kept::NotAsked(
            "no ssh program of this machine's kind in the root".into(),
        ));
    };
    if load(root, &asked).is_some() {
        return Ok(Kept::Already);
    }
    let facts = SshdFacts::probe(runner, root);
    match facts.listed {
        Some(listed) => save(root, &asked, &listed).map(|()| Kept::Written),
        None => Ok(Kept::NotAsked(
            facts
                .why_not_listed
                .unwrap_or_else(|| "ssh -Q listed nothing".into()),
        )),
    }
}

/// The ssh program the probe would start for `root`, identified; `None`
/// when there is none or it cannot run here (nothing to key a record on).
pub fn asked(root: &Root) -> Option<Asked> {
    let (program, bytes) = match exec::locate(root, "ssh") {
        exec::Found::Image(path) => {
            let bytes = root.read_following_within(&path).ok().flatten()?;
            (path, bytes)
        }
        exec::Found::Host(path) => {
            let bytes = std::fs::read(&path).ok()?;
            (path.display().to_string(), bytes)
        }
        exec::Found::Foreign { .. } | exec::Found::Missing => return None,
    };
    let sha256 = crate::crypt::sha256_hex(&bytes);
    Some(Asked {
        program,
        sha256,
        fips: fips_mode(),
    })
}

/// The kept lists, when they came from this very program in this mode.
pub fn load(root: &Root, asked: &Asked) -> Option<Supported> {
    let record: Record = state::load_json(root, PATH)?;
    (record.asked == *asked && record.supported.is_complete()).then_some(record.supported)
}

/// Keep what `asked`'s program listed, for the root's next run.
pub fn save(root: &Root, asked: &Asked, supported: &Supported) -> Result<(), StateError> {
    let record = Record {
        asked: asked.clone(),
        supported: supported.clone(),
    };
    root.create_dir_all(state::STATE_DIR, state::private_owner(0o700))?;
    state::save_json(root, PATH, &record)
}

/// The kernel's FIPS switch, as OpenSSL and FIPS builds of OpenSSH read it.
fn fips_mode() -> bool {
    std::fs::read_to_string("/proc/sys/crypto/fips_enabled").is_ok_and(|t| t.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    fn lists() -> Supported {
        let one = |s: &str| vec![s.to_string()];
        Supported {
            kex: one("curve25519-sha256"),
            ciphers: one("aes256-gcm@openssh.com"),
            macs: one("hmac-sha2-512-etm@openssh.com"),
            keys: one("ssh-ed25519"),
        }
    }

    fn asked(sha: &str, fips: bool) -> Asked {
        Asked {
            program: "/usr/bin/ssh".into(),
            sha256: sha.into(),
            fips,
        }
    }

    #[test]
    fn a_record_stands_in_only_for_the_same_program_in_the_same_mode() {
        let (_dir, root) = scratch_root(&[]);
        assert_eq!(load(&root, &asked("aa", false)), None, "nothing kept yet");
        save(&root, &asked("aa", false), &lists()).unwrap();
        assert_eq!(load(&root, &asked("aa", false)), Some(lists()));
        assert_eq!(load(&root, &asked("bb", false)), None, "another program");
        assert_eq!(load(&root, &asked("aa", true)), None, "FIPS mode now");
    }

    #[test]
    fn an_incomplete_or_unreadable_record_is_asked_again() {
        let (_dir, root) = scratch_root(&[(PATH, "{not json")]);
        assert_eq!(load(&root, &asked("aa", false)), None);
        let mut empty = lists();
        empty.macs.clear();
        save(&root, &asked("aa", false), &empty).unwrap();
        assert_eq!(load(&root, &asked("aa", false)), None);
    }

    #[test]
    fn asking_again_for_the_same_program_starts_nothing_and_writes_nothing() {
        use crate::host::exec::fake::Fake;
        let (_dir, root) = scratch_root(&[]);
        let Some(program) = super::asked(&root) else {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "no ssh on this machine, and under CI=true a skip is a failure"
            );
            eprintln!("skipped: no ssh on this machine to stand for the root's");
            return;
        };
        save(&root, &program, &lists()).unwrap();
        let runner = Fake::agreeing();
        assert_eq!(ask_and_keep(&runner, &root).unwrap(), Kept::Already);
        assert!(runner.calls().is_empty(), "{:?}", runner.calls());
        assert_eq!(load(&root, &program), Some(lists()));
    }
}
