//! MD5 crypt (`$1$`), Poul-Henning Kamp's scheme of 1994, as glibc and
//! libxcrypt still check it. Old images and old guides leave such hashes
//! in /etc/shadow; batten only ever checks them, never makes one. No
//! maintained crate implements it, and the scheme is short: an MD5 digest
//! (RustCrypto's `md-5`) stirred 1000 times.

use md5::{Digest, Md5};

/// The alphabet crypt(3) encodes hashes with.
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `password` matches the MD5 crypt hash `hash`.
pub fn verifies(password: &[u8], hash: &str) -> bool {
    let Some(rest) = hash.strip_prefix("$1$") else {
        return false;
    };
    let Some((salt, _)) = rest.split_once('$') else {
        return false;
    };
    hash_with_salt(password, salt.as_bytes()) == hash
}

/// The whole `$1$salt$hash` string for `password` and `salt` (at most 8
/// characters of it count, as in crypt(3)).
fn hash_with_salt(password: &[u8], salt: &[u8]) -> String {
    let salt = &salt[..salt.len().min(8)];
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(b"$1$")
        .chain_update(salt);
    for chunk in password.chunks(16) {
        ctx.update(&alternate[..chunk.len()]);
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(password);
        }
        digest = c.finalize();
    }
    let d = digest;
    let mut out = format!("$1${}$", String::from_utf8_lossy(salt));
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let v = (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]);
        encode(&mut out, v, 4);
    }
    encode(&mut out, u32::from(d[11]), 2);
    out
}

/// Append the low `n` six-bit groups of `v`, least significant first.
fn encode(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(ALPHABET[(v & 0x3f) as usize]));
        v >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // From `openssl passwd -1 -salt SALT PASSWORD`, which follows crypt(3).
        for (password, hash) in [
            ("raspberry", "$1$saltsalt$Gan9glI3ghan.hsfDW8RM1"),
            ("password", "$1$abc$BXBqpb9BZcZhXLgbee.0s/"),
            ("x", "$1$$LP5.V3ajGqHDdXW6XwZQy."),
            (
                "a very long password of more than sixteen bytes here",
                "$1$abcdefgh$BqPLvSn3H4g0dl892iQg50",
            ),
        ] {
            assert!(verifies(password.as_bytes(), hash), "{password} {hash}");
            assert!(!verifies(b"Raspberry", hash));
        }
        assert!(!verifies(b"raspberry", "$1$saltsalt"));
        assert!(!verifies(b"raspberry", "$6$saltsalt$x"));
    }
}
