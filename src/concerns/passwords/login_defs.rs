//! SHA-512 crypt's rounds in `/etc/login.defs` (Lynis AUTH-9230).
//!
//! Debian 12 writes `ENCRYPT_METHOD SHA512` there, which `chpasswd` and
//! `newusers` follow (cloud-init's `chpasswd` among them; `passwd` goes
//! through PAM and yescrypt instead), with shadow's 5000 rounds. batten
//! raises the rounds, so a password set that way costs a guesser about
//! thirteen times more, and setting one costs a few milliseconds. A file
//! that already sets either value is the owner's choice and stays; a root
//! without the file (Alpine's busybox) gets none.

use crate::host::root::Root;
use crate::plan::{Action, PlanError};

/// The file.
pub const LOGIN_DEFS: &str = "/etc/login.defs";
/// The rounds batten writes, for both the minimum and the maximum.
pub const ROUNDS: u32 = 65_536;
/// The fewest rounds Lynis AUTH-9230 credits (shadow's own default).
pub const FEWEST: u32 = 5_000;

const KEYS: [&str; 2] = ["SHA_CRYPT_MIN_ROUNDS", "SHA_CRYPT_MAX_ROUNDS"];

/// The rounds the file sets, as shadow reads it: the value of the last
/// uncommented line of each key.
pub fn rounds(text: &str) -> [Option<String>; 2] {
    KEYS.map(|key| crate::concerns::accounts::login_defs_value(text, key).map(str::to_string))
}

/// The file with batten's two lines appended, or `None` when it already
/// sets either key (the owner's choice).
pub fn edited(text: &str) -> Option<String> {
    if rounds(text).iter().any(Option::is_some) {
        return None;
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!(
        "\n# Added by batten (batten.passwords): SHA-512 crypt rounds for chpasswd\n\
         # and newusers, which follow ENCRYPT_METHOD (Lynis AUTH-9230).\n\
         {} {ROUNDS}\n{} {ROUNDS}\n",
        KEYS[0], KEYS[1]
    ));
    Some(out)
}

/// The file's plan: batten's lines appended where neither key is set,
/// owner and mode kept as the image has them.
pub fn plan(root: &Root) -> Result<Vec<Action>, PlanError> {
    let Some((bytes, owner)) = root.read_with_owner(LOGIN_DEFS)? else {
        return Ok(Vec::new());
    };
    let Some(text) = std::str::from_utf8(&bytes).ok().and_then(edited) else {
        return Ok(Vec::new());
    };
    Ok(Action::write_if_changed(
        root,
        LOGIN_DEFS,
        text.into_bytes(),
        owner,
        false,
        "SHA-512 crypt rounds for chpasswd and newusers (Lynis AUTH-9230)",
    )?
    .into_iter()
    .collect())
}

/// Why the file's rounds fall short, or `None` when both are at least
/// [`FEWEST`] or the root has no such file.
pub fn shortfall(text: &str) -> Option<String> {
    let found = rounds(text);
    let short: Vec<String> = KEYS
        .iter()
        .zip(found)
        .filter_map(|(key, value)| match value {
            None => Some(format!("{key} is not set")),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n >= FEWEST => None,
                _ => Some(format!("{key} is {v}, under {FEWEST}")),
            },
        })
        .collect();
    (!short.is_empty()).then(|| short.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::root::scratch_root;

    const DEBIAN: &str =
        "ENCRYPT_METHOD SHA512\n#SHA_CRYPT_MIN_ROUNDS 5000\n#SHA_CRYPT_MAX_ROUNDS 5000\n";

    #[test]
    fn debian_s_file_gets_both_lines_once() {
        let text = edited(DEBIAN).unwrap();
        assert!(text.starts_with(DEBIAN));
        assert!(text.ends_with("\nSHA_CRYPT_MIN_ROUNDS 65536\nSHA_CRYPT_MAX_ROUNDS 65536\n"));
        assert_eq!(shortfall(&text), None);
        assert_eq!(edited(&text), None, "a second run changes nothing");
        assert_eq!(
            shortfall(DEBIAN).as_deref(),
            Some("SHA_CRYPT_MIN_ROUNDS is not set; SHA_CRYPT_MAX_ROUNDS is not set")
        );
    }

    #[test]
    fn an_owner_s_value_stays_and_a_low_one_is_named() {
        let own = "SHA_CRYPT_MAX_ROUNDS 1000\n";
        assert_eq!(edited(own), None);
        assert_eq!(
            shortfall(own).as_deref(),
            Some("SHA_CRYPT_MIN_ROUNDS is not set; SHA_CRYPT_MAX_ROUNDS is 1000, under 5000")
        );
    }

    #[test]
    fn the_plan_keeps_the_file_s_owner_and_skips_a_root_without_it() {
        let (_d, root) = scratch_root(&[("/etc/login.defs", "ENCRYPT_METHOD SHA512")]);
        let actions = plan(&root).unwrap();
        let Some(Action::Write {
            contents, owner, ..
        }) = actions.first()
        else {
            panic!("{actions:?}");
        };
        assert!(
            String::from_utf8_lossy(contents)
                .starts_with("ENCRYPT_METHOD SHA512\n\n# Added by batten")
        );
        assert_eq!(
            owner.mode & 0o777,
            root.read_with_owner(LOGIN_DEFS).unwrap().unwrap().1.mode & 0o777
        );
        let (_d, bare) = scratch_root(&[]);
        assert!(plan(&bare).unwrap().is_empty());
    }
}
