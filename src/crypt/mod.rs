//! Password hashes as crypt(3) writes them: SHA-512 crypt (`$6$`) for the
//! passwords batten hashes itself (console passwords given in plain text,
//! the proxy's generated ones), and checking a password against every
//! scheme an image's /etc/shadow holds, so that known default passwords
//! ([`defaults`]) can be found.
//!
//! The hash must be one that the system's crypt(3) checks: glibc,
//! libxcrypt and musl read at most 16 salt characters, so the salt is 12
//! random bytes (16 characters once encoded) from the OS generator.

pub mod defaults;
mod md5;

/// Bytes as lowercase hex: how batten's records write a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes` in hex: what batten's records name content by
/// (a program, a ruleset, a hash found clean).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// The scheme of a password field in /etc/shadow, which says how (and
/// whether) a password can be checked against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Empty: the account logs in without any password.
    Empty,
    /// `!` or `*` first (or a lone `x`): no password opens it.
    Locked,
    /// `$y$`: yescrypt, the default of Debian 11+ and Raspberry Pi OS.
    Yescrypt,
    /// `$6$`: SHA-512 crypt.
    Sha512,
    /// `$5$`: SHA-256 crypt.
    Sha256,
    /// `$1$`: MD5 crypt, still found in old images.
    Md5,
    /// Anything else (bcrypt, scrypt, DES, ...): batten cannot check it.
    Unknown,
}

impl Scheme {
    /// Read the scheme from a password field.
    pub fn of(field: &str) -> Scheme {
        if field.is_empty() {
            Scheme::Empty
        } else if field.starts_with(['!', '*']) || field == "x" {
            Scheme::Locked
        } else if field.starts_with("$y$") {
            Scheme::Yescrypt
        } else if field.starts_with("$6$") {
            Scheme::Sha512
        } else if field.starts_with("$5$") {
            Scheme::Sha256
        } else if field.starts_with("$1$") {
            Scheme::Md5
        } else {
            Scheme::Unknown
        }
    }

    /// Its name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Empty => "no password",
            Scheme::Locked => "locked",
            Scheme::Yescrypt => "yescrypt",
            Scheme::Sha512 => "SHA-512 crypt",
            Scheme::Sha256 => "SHA-256 crypt",
            Scheme::Md5 => "MD5 crypt",
            Scheme::Unknown => "an unknown scheme",
        }
    }
}

/// Hash `password` with a fresh random salt.
pub fn sha512_crypt(password: &str) -> Result<String, String> {
    use rand::TryRng;
    use sha_crypt::{PasswordHasher, ShaCrypt};
    let mut salt = [0u8; 12];
    rand::rngs::SysRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| format!("the operating system's random generator failed: {e}"))?;
    ShaCrypt::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.as_str().to_string())
        .map_err(|e| format!("cannot hash a password: {e}"))
}

/// Whether `password` matches `hash`, with the hash's own algorithm
/// (yescrypt, SHA-512, SHA-256 or MD5 crypt); false for any other scheme
/// and for a malformed hash.
pub fn verifies(password: &str, hash: &str) -> bool {
    use sha_crypt::PasswordVerifier;
    let pw = password.as_bytes();
    match Scheme::of(hash) {
        Scheme::Yescrypt => yescrypt::Yescrypt::default()
            .verify_password(pw, hash)
            .is_ok(),
        Scheme::Sha512 | Scheme::Sha256 => sha_crypt::ShaCrypt::default()
            .verify_password(pw, hash)
            .is_ok(),
        Scheme::Md5 => md5::verifies(pw, hash),
        Scheme::Empty | Scheme::Locked | Scheme::Unknown => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a program prints for `args`, or `None` where it is missing
    /// (a failure under CI, where test.sh installs it).
    fn tool(program: &str, args: &[&str]) -> Option<String> {
        match std::process::Command::new(program).args(args).output() {
            Ok(out) if out.status.success() => {
                Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
            }
            _ => {
                assert_ne!(
                    std::env::var("CI").as_deref(),
                    Ok("true"),
                    "{program} is needed under CI"
                );
                None
            }
        }
    }

    #[test]
    fn every_scheme_agrees_with_the_systems_tools_on_fresh_salts() {
        let password = format!("pw-{}", std::process::id());
        let made = [
            tool("mkpasswd", &["-m", "yescrypt", &password]),
            tool("mkpasswd", &["-m", "sha512crypt", "-R", "7000", &password]),
            tool("openssl", &["passwd", "-6", &password]),
            tool("openssl", &["passwd", "-5", &password]),
            tool("openssl", &["passwd", "-1", &password]),
        ];
        for hash in made.iter().flatten() {
            assert!(verifies(&password, hash), "{hash}");
            assert!(!verifies("other", hash), "{hash}");
        }
    }

    #[test]
    fn crypt3_checks_what_batten_makes() {
        let hash = sha512_crypt("correct horse").unwrap();
        let fields: Vec<&str> = hash.split('$').collect();
        let salt = fields[fields.len() - 2];
        assert!(salt.len() <= 16, "crypt(3) would cut the salt {salt:?}");
        assert!(verifies("correct horse", &hash) && !verifies("wrong", &hash));
        // The system's own implementation agrees (openssl uses crypt's rules).
        match std::process::Command::new("openssl")
            .args(["passwd", "-6", "-salt", salt, "correct horse"])
            .output()
        {
            Ok(out) if out.status.success() => {
                let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let ours = hash.replace("rounds=5000$", "");
                assert_eq!(theirs, ours);
            }
            _ => assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "openssl is needed under CI"
            ),
        }
    }
}
