//! SHA-512 crypt (`$6$`) for passwords batten hashes itself: console
//! passwords given in plain text, and the proxy's generated ones.
//!
//! The hash must be one that the system's crypt(3) checks: glibc,
//! libxcrypt and musl read at most 16 salt characters, so the salt is 12
//! random bytes (16 characters once encoded) from the OS generator.

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

/// Whether `password` matches a `$6$` or `$5$` hash.
pub fn verifies(password: &str, hash: &str) -> bool {
    use sha_crypt::{PasswordVerifier, ShaCrypt};
    (hash.starts_with("$6$") || hash.starts_with("$5$"))
        && ShaCrypt::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
