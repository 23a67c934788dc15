//! SSH host keys: generating fresh ones, installing the ones user-data
//! provides, and printing their fingerprints the way cloud-init does.
//!
//! Every machine made from an image must have host keys of its own; a key
//! shared by all clones lets anyone holding one clone impersonate the others.
//! batten therefore creates the keys at first boot, before sshd starts for the
//! first time (see the design's boot order), unless user-data brings its own
//! pair in `ssh_keys`, in which case nothing is generated (cloud-init's rule).
//!
//! The keys are made in-process with the `ssh-key` crate rather than by
//! running `ssh-keygen`: with `--root` the root is often an image for another
//! architecture (an ARM image mounted on an x86 builder), whose `ssh-keygen`
//! cannot run here. The output is the same OpenSSH format `ssh-keygen`
//! writes, and the tests prove it by reading every generated file back with
//! the real `ssh-keygen`. RSA is the exception where this machine has an
//! `ssh-keygen`: its prime search (OpenSSL's) makes a 4096-bit key in about
//! a second where the pure-Rust one takes eight, and a first boot waits
//! for it; the key file it writes is the same format, parsed and checked
//! like the others.
//!
//! Randomness comes from the operating system (`getrandom(2)`). At first boot
//! that call waits until the kernel's random generator is initialised, which
//! is exactly what host keys need: a key drawn from an unseeded pool would be
//! guessable.
//!
//! Nothing here writes files. [`generate`] and [`provided`] return the file
//! contents, paths and owners, and the plan/apply stages write them, so that
//! the private key text only ever travels to a 0600 file. [`HostKeyFiles`]
//! keeps the private key out of its `Debug` output for the same reason
//! (safety rule 5: secrets are never logged).

use std::fmt;

use ssh_key::private::{KeypairData, RsaKeypair};
use ssh_key::public::KeyData;
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, Mpint, PrivateKey, PublicKey};

use crate::host::root::Owner;
use crate::input::model::{HostKeyType, ProvidedHostKey};

/// Size of generated RSA keys unless the crypto policy asks for more: 3072
/// bits is what `ssh-keygen` has chosen by default since OpenSSH 8.0, and
/// what NIST rates as good beyond 2030.
#[cfg(test)]
const RSA_BITS: usize = 3072;

/// The line of `#` cloud-init's `write-ssh-key-fingerprints` prints around
/// the fingerprint block; scripts that scrape consoles look for it.
const CONSOLE_RULE: &str = "#############################################################";

/// One host key pair ready to be written.
///
/// `Debug` shows everything except the private key, so a plan or an error
/// that prints this value never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct HostKeyFiles {
    /// Which of the three host key types this is.
    pub key_type: HostKeyType,
    /// Where sshd looks for the private key, such as
    /// `/etc/ssh/ssh_host_ed25519_key` (root-relative).
    pub private_path: String,
    /// The private key in OpenSSH format (`-----BEGIN OPENSSH PRIVATE
    /// KEY-----`), without a passphrase, ending in a newline.
    pub private: String,
    /// Where the public key goes: `private_path` plus `.pub`.
    pub public_path: String,
    /// The public key line, such as `ssh-ed25519 AAAA... root@host`, ending
    /// in a newline.
    pub public: String,
    /// The SHA-256 fingerprint as OpenSSH prints it (`SHA256:...`).
    pub fingerprint: String,
    /// Key size as `ssh-keygen -l` reports it: 256 for Ed25519 and ECDSA
    /// P-256, the modulus size (3072) for RSA.
    pub bits: u32,
    /// The host certificate `ssh_keys` gave for this key, ending in a
    /// newline, for [`certificate_path`]; generated keys have none.
    pub certificate: Option<String>,
}

impl HostKeyFiles {
    /// The `(bits, fingerprint, comment, TYPE)` entry for this key that
    /// [`fingerprint_block`] takes; the comment is the one in the public
    /// key line, as `ssh-keygen -l` shows it.
    pub fn fingerprint_entry(&self) -> (u32, String, String, String) {
        let comment = PublicKey::from_openssh(self.public.trim())
            .map(|k| k.comment().to_string())
            .unwrap_or_default();
        (
            self.bits,
            self.fingerprint.clone(),
            comment,
            type_label(self.key_type).to_string(),
        )
    }
}

impl fmt::Debug for HostKeyFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKeyFiles")
            .field("key_type", &self.key_type)
            .field("private_path", &self.private_path)
            .field("private", &"<hidden>")
            .field("public_path", &self.public_path)
            .field("public", &self.public)
            .field("fingerprint", &self.fingerprint)
            .field("bits", &self.bits)
            .field("certificate", &self.certificate)
            .finish()
    }
}

/// Where sshd looks for the private key of type `t` when `sshd_config` has
/// no `HostKey` lines: `/etc/ssh/ssh_host_{rsa,ecdsa,ed25519}_key`.
pub fn private_path(t: HostKeyType) -> String {
    format!("/etc/ssh/ssh_host_{}_key", t.name())
}

/// Where the public half of the key of type `t` goes: the private key's path
/// plus `.pub`, as `ssh-keygen` names it.
pub fn public_path(t: HostKeyType) -> String {
    format!("{}.pub", private_path(t))
}

/// Where the host certificate for the key of type `t` goes: the private
/// key's path plus `-cert.pub`, as `ssh-keygen -s` names it and cloud-init
/// writes it; `HostCertificate` names it in sshd's configuration.
pub fn certificate_path(t: HostKeyType) -> String {
    format!("{}-cert.pub", private_path(t))
}

/// Generates a new key pair for each of `types`, each on a thread of its own
/// so that the slow RSA key (a prime search that takes around a second on a
/// Raspberry Pi) does not hold up the others.
///
/// `comment` ends the public key line and is stored in the private key, as
/// `ssh-keygen -C` does; cloud-init and the distributions' own first-boot
/// scripts use `root@<hostname>`. The result is in the order of `types`.
/// An error names the key type and what failed.
pub fn generate(
    types: &[HostKeyType],
    rsa_bits: usize,
    comment: &str,
) -> Result<Vec<HostKeyFiles>, String> {
    std::thread::scope(|scope| {
        let mut workers = Vec::with_capacity(types.len());
        for &t in types {
            let worker = std::thread::Builder::new()
                .name(format!("hostkey-{}", t.name()))
                .spawn_scoped(scope, move || generate_one(t, rsa_bits, comment))
                .map_err(|e| {
                    format!(
                        "generating the {} host key: cannot start a thread: {e}",
                        t.name()
                    )
                })?;
            workers.push((t, worker));
        }
        // Joining every worker before looking at the results means no thread
        // is left running when an earlier one failed.
        let results: Vec<_> = workers
            .into_iter()
            .map(|(t, worker)| {
                worker.join().unwrap_or_else(|_| {
                    Err(format!(
                        "generating the {} host key: the generator panicked \
                         (is the kernel's random number generator available?)",
                        t.name()
                    ))
                })
            })
            .collect();
        results.into_iter().collect()
    })
}

/// Makes one key pair of type `t`; runs on a worker thread of [`generate`].
fn generate_one(t: HostKeyType, rsa_bits: usize, comment: &str) -> Result<HostKeyFiles, String> {
    let failed = |e: ssh_key::Error| format!("generating the {} host key: {e}", t.name());
    let mut rng = OsRng;
    let key = match t {
        HostKeyType::Rsa => match rsa_from_ssh_keygen(rsa_bits, comment) {
            Some(key) => key,
            None => rsa_in_process(rsa_bits, comment).map_err(failed)?,
        },
        HostKeyType::Ecdsa => {
            let algorithm = Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            };
            let mut key = PrivateKey::random(&mut rng, algorithm).map_err(failed)?;
            key.set_comment(comment);
            key
        }
        HostKeyType::Ed25519 => {
            let mut key = PrivateKey::random(&mut rng, Algorithm::Ed25519).map_err(failed)?;
            key.set_comment(comment);
            key
        }
    };
    let private = key.to_openssh(LineEnding::LF).map_err(failed)?;
    let public = key.public_key().to_openssh().map_err(failed)?;
    let bits = key_bits(key.public_key().key_data()).ok_or_else(|| {
        format!(
            "generating the {} host key: cannot tell the key's size",
            t.name()
        )
    })?;
    Ok(HostKeyFiles {
        key_type: t,
        private_path: private_path(t),
        private: private.as_str().to_string(),
        public_path: public_path(t),
        public: with_newline(&public),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        bits,
        certificate: None,
    })
}

/// An RSA key from the pure-Rust prime search: where no `ssh-keygen` runs.
fn rsa_in_process(bits: usize, comment: &str) -> Result<PrivateKey, ssh_key::Error> {
    let pair = RsaKeypair::random(&mut OsRng, bits)?;
    PrivateKey::new(KeypairData::from(pair), comment)
}

/// An RSA key made by this machine's `ssh-keygen` in a private directory
/// (0700, removed at once) on /run, a tmpfs, so the private key never
/// touches a disk outside its own file; `None` (logged) when there is no
/// ssh-keygen, no such directory or it fails: the caller then makes it
/// in-process.
fn rsa_from_ssh_keygen(bits_wanted: usize, comment: &str) -> Option<PrivateKey> {
    use crate::host::exec::Runner as _;
    use std::os::unix::fs::DirBuilderExt as _;
    crate::host::exec::find_program("ssh-keygen")?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::path::Path::new("/run")
        .join(format!("batten-hostkey-{}-{nanos:x}", std::process::id()));
    if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        log::debug!(
            "ssh-keygen not used for the RSA host key: {}: {e}",
            dir.display()
        );
        return None;
    }
    let file = dir.join("key");
    let (bits, file_arg) = (bits_wanted.to_string(), file.to_string_lossy().into_owned());
    let call = crate::host::exec::Call {
        program: "ssh-keygen",
        args: &[
            "-q", "-t", "rsa", "-b", &bits, "-N", "", "-C", comment, "-f", &file_arg,
        ],
        stdin: None,
    };
    let made = crate::host::exec::System
        .run(&call)
        .map_err(|e| e.to_string())
        .and_then(|out| if out.success { Ok(()) } else { Err(out.stderr) })
        .and_then(|()| std::fs::read_to_string(&file).map_err(|e| e.to_string()))
        .and_then(|text| PrivateKey::from_openssh(text.trim_end()).map_err(|e| e.to_string()));
    let _ = std::fs::remove_dir_all(&dir);
    let wanted = u32::try_from(bits_wanted).ok();
    match made {
        Ok(key)
            if matches!(key.algorithm(), Algorithm::Rsa { .. })
                && key_bits(key.public_key().key_data()) == wanted =>
        {
            Some(key)
        }
        Ok(_) => {
            log::warn!(
                "ssh-keygen made something other than a {bits_wanted}-bit RSA key; making it in-process"
            );
            None
        }
        Err(e) => {
            log::warn!("ssh-keygen could not make the RSA host key ({e}); making it in-process");
            None
        }
    }
}

/// The files for a key pair given in user-data `ssh_keys`.
///
/// Validation has already checked that the two halves belong together; this
/// checks it again (cheaply) together with the one thing validation does not
/// see, that the key really is of the type its entry names: an RSA key under
/// `ed25519_private` would otherwise land in `ssh_host_ed25519_key`. Size and
/// fingerprint are computed from the private key; the public line is kept as
/// given, the private text too, each ending in a newline.
pub fn provided(key: &ProvidedHostKey) -> Result<HostKeyFiles, String> {
    let t = key.key_type;
    let entry = format!("ssh_keys.{}_private", t.name());
    let private = PrivateKey::from_openssh(&key.private)
        .map_err(|e| format!("{entry}: not an OpenSSH private key ({e})"))?;
    if private.is_encrypted() {
        return Err(format!(
            "{entry}: the key has a passphrase; sshd cannot use a host key with one, \
             remove it with `ssh-keygen -p -N '' -f FILE`"
        ));
    }
    let key_data = private.public_key().key_data();
    if !is_of_type(&key_data.algorithm(), t) {
        return Err(format!(
            "{entry}: this is an {} key, not an {} key; put it under the entry for its type",
            key_data.algorithm(),
            t.name()
        ));
    }
    let public = PublicKey::from_openssh(key.public.trim()).map_err(|e| {
        format!(
            "ssh_keys.{}_public: not a valid SSH public key ({e})",
            t.name()
        )
    })?;
    if public.key_data() != key_data {
        return Err(format!(
            "ssh_keys.{}_public: this public key does not belong to the private key beside it",
            t.name()
        ));
    }
    let bits = key_bits(key_data).ok_or_else(|| format!("{entry}: cannot tell the key's size"))?;
    Ok(HostKeyFiles {
        key_type: t,
        private_path: private_path(t),
        private: with_newline(&key.private),
        public_path: public_path(t),
        public: with_newline(key.public.trim_end()),
        fingerprint: private.fingerprint(HashAlg::Sha256).to_string(),
        bits,
        certificate: key.certificate.as_deref().map(with_newline),
    })
}

/// The fingerprint block cloud-init prints on the console, so that people
/// (and scripts reading the serial console from a provider's API) can check
/// the host key before their first login:
///
/// ```text
/// #############################################################
/// -----BEGIN SSH HOST KEY FINGERPRINTS-----
/// 256 SHA256:xxxx root@host (ED25519)
/// -----END SSH HOST KEY FINGERPRINTS-----
/// #############################################################
/// ```
///
/// Each entry is `(bits, fingerprint, comment, TYPE)` and becomes the line
/// `ssh-keygen -l -f FILE.pub` prints for that key, including its
/// `no comment` for a key without one. The text ends in a newline.
pub fn fingerprint_block(keys: &[(u32, String, String, String)]) -> String {
    let mut out = String::new();
    out.push_str(CONSOLE_RULE);
    out.push_str("\n-----BEGIN SSH HOST KEY FINGERPRINTS-----\n");
    for (bits, fingerprint, comment, label) in keys {
        let comment = if comment.is_empty() {
            "no comment"
        } else {
            comment
        };
        out.push_str(&format!("{bits} {fingerprint} {comment} ({label})\n"));
    }
    out.push_str("-----END SSH HOST KEY FINGERPRINTS-----\n");
    out.push_str(CONSOLE_RULE);
    out.push('\n');
    out
}

/// Owner and mode of a private host key: 0600 root:root, or 0640
/// root:`ssh_keys` when the root has that group (the RHEL family, whose
/// patched OpenSSH accepts keys readable by that group, so that the setgid
/// `ssh-keysign` can read them). Pass the group's id from the root's
/// `/etc/group`.
pub fn private_owner(ssh_keys_gid: Option<u32>) -> Owner {
    match ssh_keys_gid {
        Some(gid) => Owner {
            uid: 0,
            gid,
            mode: 0o640,
        },
        None => Owner {
            uid: 0,
            gid: 0,
            mode: 0o600,
        },
    }
}

/// Owner and mode of a public host key: 0644 root:root, as `ssh-keygen`
/// leaves it (cloud-init 22.4 wrote them 0600, which only hid public data).
pub fn public_owner() -> Owner {
    Owner {
        uid: 0,
        gid: 0,
        mode: 0o644,
    }
}

/// The type word `ssh-keygen -l` puts in parentheses.
fn type_label(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "RSA",
        HostKeyType::Ecdsa => "ECDSA",
        HostKeyType::Ed25519 => "ED25519",
    }
}

/// Whether a key of `algorithm` belongs under the `ssh_keys` entry for `t`.
/// ECDSA keys on any curve OpenSSH supports are accepted, as sshd does.
fn is_of_type(algorithm: &Algorithm, t: HostKeyType) -> bool {
    matches!(
        (t, algorithm),
        (HostKeyType::Rsa, Algorithm::Rsa { .. })
            | (HostKeyType::Ecdsa, Algorithm::Ecdsa { .. })
            | (HostKeyType::Ed25519, Algorithm::Ed25519)
    )
}

/// Reads the text of an existing public key file and returns its size, its
/// SHA-256 fingerprint and its type as `ssh-keygen -l` names it (`RSA`,
/// `ECDSA`, `ED25519`, ...), for the status file a
/// headless owner reads before the first connection. Blank lines and `#` comments before the key are skipped, as
/// `ssh-keygen -l` does; `None` when no key can be read.
pub fn describe_public(text: &str) -> Option<(u32, String, String)> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let key = PublicKey::from_openssh(line).ok()?;
    let data = key.key_data();
    Some((
        key_bits(data)?,
        key.fingerprint(HashAlg::Sha256).to_string(),
        key_data_label(data)?.to_string(),
    ))
}

/// `ssh-keygen`'s type word for any public key it can describe
/// (`sshkey_type()` in OpenSSH).
fn key_data_label(data: &KeyData) -> Option<&'static str> {
    Some(match data {
        KeyData::Rsa(_) => "RSA",
        KeyData::Dsa(_) => "DSA",
        KeyData::Ecdsa(_) => "ECDSA",
        KeyData::Ed25519(_) => "ED25519",
        KeyData::SkEcdsaSha2NistP256(_) => "ECDSA-SK",
        KeyData::SkEd25519(_) => "ED25519-SK",
        _ => return None,
    })
}

/// Key size as `ssh-keygen -l` reports it (`sshkey_size()` in OpenSSH): the
/// modulus length for RSA, the prime `p` for DSA, the curve size otherwise.
fn key_bits(data: &KeyData) -> Option<u32> {
    match data {
        KeyData::Rsa(k) => mpint_bits(&k.n),
        KeyData::Dsa(k) => mpint_bits(&k.p),
        KeyData::Ecdsa(k) => Some(match k.curve() {
            EcdsaCurve::NistP256 => 256,
            EcdsaCurve::NistP384 => 384,
            EcdsaCurve::NistP521 => 521,
        }),
        KeyData::Ed25519(_) | KeyData::SkEcdsaSha2NistP256(_) | KeyData::SkEd25519(_) => Some(256),
        _ => None,
    }
}

/// Number of significant bits in a positive multiple-precision integer.
fn mpint_bits(n: &Mpint) -> Option<u32> {
    let bytes = n.as_positive_bytes()?;
    let first = bytes.iter().position(|&b| b != 0)?;
    let significant = u32::try_from(bytes.len() - first).ok()?;
    Some(significant * 8 - bytes[first].leading_zeros())
}

/// `text` with exactly the newline OpenSSH's files end in.
fn with_newline(text: &str) -> String {
    let mut out = text.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {

    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::OnceLock;
    use std::time::Instant;

    const COMMENT: &str = "root@batten-test";

    /// One set of generated keys shared by the tests: an RSA key takes
    /// seconds in a debug build, so make it once.
    fn keys() -> &'static [HostKeyFiles] {
        static KEYS: OnceLock<Vec<HostKeyFiles>> = OnceLock::new();
        KEYS.get_or_init(|| {
            generate(&HostKeyType::defaults(), RSA_BITS, COMMENT).expect("generate")
        })
    }

    /// Whether the real `ssh-keygen` can be run; a missing one skips the
    /// test on a laptop but fails it under CI, as the design requires.
    fn have_ssh_keygen(test: &str) -> bool {
        if Command::new("ssh-keygen").arg("-?").output().is_ok() {
            return true;
        }
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: ssh-keygen is not installed, and under CI=true a skip is a failure");
        }
        eprintln!("{test}: skipped, ssh-keygen is not installed");
        false
    }

    /// Runs `ssh-keygen ARGS FILE` and returns its standard output.
    fn ssh_keygen(args: &[&str], file: &Path) -> String {
        let out = Command::new("ssh-keygen")
            .args(args)
            .arg(file)
            .output()
            .expect("run ssh-keygen");
        assert!(
            out.status.success(),
            "ssh-keygen {args:?} {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Writes a key's files under `dir` with the names sshd uses; the private
    /// key 0600 because ssh-keygen refuses to read it otherwise.
    fn write_key(dir: &Path, key: &HostKeyFiles, with_public: bool) -> (PathBuf, PathBuf) {
        let name = |p: &str| dir.join(Path::new(p).file_name().expect("file name"));
        let (private, public) = (name(&key.private_path), name(&key.public_path));
        fs::write(&private, &key.private).expect("write private key");
        fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).expect("chmod");
        if with_public {
            fs::write(&public, &key.public).expect("write public key");
        }
        (private, public)
    }

    /// Key type and key material of a public key line, without the comment.
    fn first_two_fields(line: &str) -> Vec<&str> {
        line.split_whitespace().take(2).collect()
    }

    /// The line `fingerprint_block` prints for `key`.
    fn block_line(key: &HostKeyFiles) -> String {
        let block = fingerprint_block(&[key.fingerprint_entry()]);
        block.lines().nth(2).expect("entry line").to_string()
    }

    #[test]
    fn generates_all_three_types_that_parse_back() {
        let keys = keys();
        let types: Vec<_> = keys.iter().map(|k| k.key_type).collect();
        assert_eq!(types, HostKeyType::defaults(), "same order as asked");
        for (key, prefix) in keys
            .iter()
            .zip(["ssh-rsa ", "ecdsa-sha2-nistp256 ", "ssh-ed25519 "])
        {
            let t = key.key_type.name();
            assert_eq!(key.private_path, format!("/etc/ssh/ssh_host_{t}_key"));
            assert_eq!(key.public_path, format!("/etc/ssh/ssh_host_{t}_key.pub"));
            assert!(
                key.private
                    .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n")
            );
            assert!(key.private.ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
            assert!(key.public.starts_with(prefix), "{t}: {}", key.public);
            assert!(
                key.public.ends_with(&format!(" {COMMENT}\n")),
                "{t}: {}",
                key.public
            );
            assert_eq!(key.public.matches('\n').count(), 1);

            let private = PrivateKey::from_openssh(&key.private).expect("private key parses");
            assert!(!private.is_encrypted());
            assert_eq!(
                private.comment(),
                COMMENT,
                "{t}: comment inside the private key"
            );
            let public = PublicKey::from_openssh(key.public.trim()).expect("public key parses");
            assert_eq!(private.public_key().key_data(), public.key_data(), "{t}");
            assert_eq!(
                key.fingerprint,
                public.fingerprint(HashAlg::Sha256).to_string(),
                "{t}"
            );
            assert!(key.fingerprint.starts_with("SHA256:"));
        }
        let bits: Vec<_> = keys.iter().map(|k| k.bits).collect();
        assert_eq!(bits, [3072, 256, 256]);
        let rsa = PrivateKey::from_openssh(&keys[0].private).expect("rsa");
        let n = &rsa.public_key().key_data().rsa().expect("an RSA key").n;
        assert_eq!(mpint_bits(n), Some(3072));
    }

    #[test]
    fn real_ssh_keygen_agrees_with_the_files_and_the_block() {
        if !have_ssh_keygen("real_ssh_keygen_agrees_with_the_files_and_the_block") {
            return;
        }
        let with_pub = tempfile::tempdir().expect("tempdir");
        let alone = tempfile::tempdir().expect("tempdir");
        for key in keys() {
            let t = key.key_type.name();
            let expected = block_line(key);
            let (private, public) = write_key(with_pub.path(), key, true);
            // Without a .pub beside it, ssh-keygen reads the public half and
            // the comment from inside the private key file.
            let (lone_private, _) = write_key(alone.path(), key, false);
            for file in [&private, &public, &lone_private] {
                let listed = ssh_keygen(&["-l", "-f"], file);
                eprintln!(
                    "{t}: ssh-keygen -l -f {}: {}",
                    file.display(),
                    listed.trim_end()
                );
                assert_eq!(listed.strip_suffix('\n'), Some(expected.as_str()), "{t}");
            }
            let derived = ssh_keygen(&["-y", "-f"], &private);
            assert_eq!(
                first_two_fields(&derived),
                first_two_fields(&key.public),
                "{t}: ssh-keygen -y"
            );
            assert_eq!(derived, key.public, "{t}: ssh-keygen -y, comment included");
        }
    }

    #[test]
    fn parallel_generation_takes_about_as_long_as_rsa_alone() {
        let time = |types: &[HostKeyType]| {
            let start = Instant::now();
            let keys = generate(types, RSA_BITS, COMMENT).expect("generate");
            assert_eq!(keys.len(), types.len());
            start.elapsed()
        };
        let rsa = time(&[HostKeyType::Rsa]);
        let ecdsa = time(&[HostKeyType::Ecdsa]);
        let ed25519 = time(&[HostKeyType::Ed25519]);
        let all = time(&HostKeyType::defaults());
        eprintln!(
            "host key generation: rsa {rsa:?}, ecdsa {ecdsa:?}, ed25519 {ed25519:?}, \
             all three in parallel {all:?} (RSA prime search time varies run to run)"
        );
    }

    #[test]
    fn rsa_keys_come_from_ssh_keygen_or_in_process_alike() {
        if !have_ssh_keygen("rsa_keys_come_from_ssh_keygen_or_in_process_alike") {
            return;
        }
        let own = rsa_in_process(2048, COMMENT).expect("in-process");
        let mut keys = vec![(own, 2048)];
        // Its private directory is on /run, root's.
        match rsa_from_ssh_keygen(3072, COMMENT) {
            Some(made) => keys.push((made, 3072)),
            None if nix::unistd::geteuid().is_root() => panic!("ssh-keygen made no key"),
            None => {
                assert_ne!(
                    std::env::var("CI").as_deref(),
                    Ok("true"),
                    "ssh-keygen's half needs root (/run), and under CI=true a skip is a failure"
                );
                eprintln!("ssh-keygen's half skipped: /run is root's");
            }
        }
        for (key, bits) in keys {
            assert!(matches!(key.algorithm(), Algorithm::Rsa { .. }));
            assert_eq!(key.comment(), COMMENT);
            assert_eq!(key_bits(key.public_key().key_data()), Some(bits));
        }
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        for key in keys() {
            let shown = format!("{key:?}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            let body = key.private.lines().nth(1).expect("a line of key material");
            assert!(!shown.contains(body), "{shown}");
            assert!(shown.contains(&key.fingerprint));
            assert!(shown.contains("<hidden>"));
        }
    }

    #[test]
    fn provided_key_made_in_the_test() {
        let mut made =
            PrivateKey::random(&mut OsRng, Algorithm::Ed25519).expect("generate ed25519");
        made.set_comment("root@elsewhere");
        let private = made.to_openssh(LineEnding::LF).expect("encode").to_string();
        // validate.rs hands the public line over trimmed.
        let public = made.public_key().to_openssh().expect("encode public");
        let given = ProvidedHostKey {
            key_type: HostKeyType::Ed25519,
            private: private.clone(),
            public: public.clone(),
            certificate: None,
        };
        let files = provided(&given).expect("provided");
        assert_eq!(files.key_type, HostKeyType::Ed25519);
        assert_eq!(files.private_path, "/etc/ssh/ssh_host_ed25519_key");
        assert_eq!(files.public_path, "/etc/ssh/ssh_host_ed25519_key.pub");
        assert_eq!(files.private, private);
        assert_eq!(files.public, format!("{public}\n"));
        assert_eq!(files.bits, 256);
        assert_eq!(
            files.fingerprint,
            made.fingerprint(HashAlg::Sha256).to_string()
        );
        assert_eq!(
            files.fingerprint_entry(),
            (
                256,
                files.fingerprint.clone(),
                "root@elsewhere".to_string(),
                "ED25519".to_string()
            )
        );

        let mut ecdsa = PrivateKey::random(
            &mut OsRng,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
        )
        .expect("generate ecdsa");
        ecdsa.set_comment("root@elsewhere");
        let given = ProvidedHostKey {
            key_type: HostKeyType::Ecdsa,
            // No final newline, and a public line with one: both come out
            // with exactly one.
            private: ecdsa
                .to_openssh(LineEnding::LF)
                .expect("encode")
                .trim_end()
                .to_string(),
            public: format!("{}\n", ecdsa.public_key().to_openssh().expect("encode")),
            certificate: None,
        };
        let files = provided(&given).expect("provided ecdsa");
        assert!(
            files
                .private
                .ends_with("-----END OPENSSH PRIVATE KEY-----\n")
        );
        assert_eq!(files.public, given.public);
        assert_eq!((files.bits, files.key_type), (256, HostKeyType::Ecdsa));
    }

    #[test]
    fn provided_reproduces_generated_keys() {
        for key in keys() {
            let given = ProvidedHostKey {
                key_type: key.key_type,
                private: key.private.clone(),
                public: key.public.trim_end().to_string(),
                certificate: None,
            };
            assert_eq!(&provided(&given).expect("provided"), key);
        }
    }

    #[test]
    fn provided_refuses_a_key_under_another_type_or_a_foreign_public_key() {
        let [rsa, ecdsa, ed25519] = keys() else {
            panic!("three keys")
        };
        let misplaced = ProvidedHostKey {
            key_type: HostKeyType::Ed25519,
            private: rsa.private.clone(),
            public: rsa.public.clone(),
            certificate: None,
        };
        let err = provided(&misplaced).expect_err("rsa key under ed25519");
        assert!(
            err.starts_with("ssh_keys.ed25519_private: this is an ssh-rsa key"),
            "{err}"
        );

        let foreign = ProvidedHostKey {
            key_type: HostKeyType::Ed25519,
            private: ed25519.private.clone(),
            public: ecdsa.public.clone(),
            certificate: None,
        };
        let err = provided(&foreign).expect_err("public key of another pair");
        assert!(err.contains("does not belong"), "{err}");

        let garbage = ProvidedHostKey {
            key_type: HostKeyType::Rsa,
            private: "not a key".to_string(),
            public: rsa.public.clone(),
            certificate: None,
        };
        let err = provided(&garbage).expect_err("not a key");
        assert!(
            err.starts_with("ssh_keys.rsa_private: not an OpenSSH private key"),
            "{err}"
        );
    }

    #[test]
    fn describes_public_keys_as_ssh_keygen_does() {
        // Each key was made by ssh-keygen and is followed by what
        // `ssh-keygen -l -f` printed for it.
        let golden = [
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPyNYclvkNLdd1h2N3gY6Oir3++7SzsjXhWnoAx9LnP root@golden\n",
                "256 SHA256:d0gzuhq5irhV/I9PxOxwfzmFJ7zHx2ZA4VLZjuEZtCc root@golden (ED25519)",
            ),
            (
                concat!(
                    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOq0",
                    "UV1nyvo6HUieWNvS2J6msfyg7iAI8GhoKGF9N++Y5eRvazy3ff0AqPG5A6Kjj+Fo440mU8DJ7h1l",
                    "EAZmZBI= root@golden\n"
                ),
                "256 SHA256:rtFuPQW0aQ3wQZ87eb6pLvlLDOIdizRlkQ08pVAJP3o root@golden (ECDSA)",
            ),
            (
                concat!(
                    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDqAsvl3pqZjIWCRcdfvEHXIkCox4a8U1IbHvKx",
                    "mPl36e7hbPpIhiYq7PVcHmak82xZktWAsXhu99eK1FCoO3nu6pSrn3ve1G239tA93T7bzk1WLq/H",
                    "r0Y5Cm6g8oUZQjDtqd+4FbEEkFfBkRExhknz9nYtoUZSRsnBf+gByeiz8Q== root@golden\n"
                ),
                "1024 SHA256:Vwjdh+c9hjaCXJsRB99qo5H63O/HZ9jTl3VQBxuAFKo root@golden (RSA)",
            ),
        ];
        for (text, listed) in golden {
            let (bits, fingerprint, label) = describe_public(text).expect("describe");
            let entry = (bits, fingerprint, "root@golden".to_string(), label);
            let block = fingerprint_block(&[entry]);
            assert_eq!(block.lines().nth(2), Some(listed));
        }

        let with_preamble = format!("# kept by batten\n\n{}", golden[0].0);
        assert_eq!(
            describe_public(&with_preamble).map(|d| d.0),
            Some(256),
            "comments and blank lines before the key are skipped"
        );
        assert_eq!(describe_public(""), None);
        assert_eq!(describe_public("ssh-ed25519 not-base64\n"), None);

        for key in keys() {
            let (bits, fingerprint, label) = describe_public(&key.public).expect("describe");
            let (b, f, _, l) = key.fingerprint_entry();
            assert_eq!((bits, fingerprint, label), (b, f, l));
        }
    }

    #[test]
    fn fingerprint_block_is_cloud_inits() {
        let block = fingerprint_block(&[
            (
                3072,
                "SHA256:aaaa".to_string(),
                "root@web1".to_string(),
                "RSA".to_string(),
            ),
            (
                256,
                "SHA256:bbbb".to_string(),
                String::new(),
                "ED25519".to_string(),
            ),
        ]);
        assert_eq!(
            block,
            "#############################################################\n\
             -----BEGIN SSH HOST KEY FINGERPRINTS-----\n\
             3072 SHA256:aaaa root@web1 (RSA)\n\
             256 SHA256:bbbb no comment (ED25519)\n\
             -----END SSH HOST KEY FINGERPRINTS-----\n\
             #############################################################\n"
        );
        assert_eq!(fingerprint_block(&[]).lines().count(), 4);
    }

    #[test]
    fn owners_and_modes() {
        assert_eq!(
            private_owner(None),
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o600
            }
        );
        assert_eq!(
            private_owner(Some(996)),
            Owner {
                uid: 0,
                gid: 996,
                mode: 0o640
            }
        );
        assert_eq!(
            public_owner(),
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o644
            }
        );
    }

    #[test]
    fn counts_bits_like_openssl() {
        let n = |bytes: &[u8]| Mpint::from_positive_bytes(bytes).expect("mpint");
        assert_eq!(mpint_bits(&n(&[0x01])), Some(1));
        assert_eq!(mpint_bits(&n(&[0x80])), Some(8));
        assert_eq!(mpint_bits(&n(&[0x01, 0x00])), Some(9));
        assert_eq!(mpint_bits(&n(&[0xff, 0xff])), Some(16));
    }
}
