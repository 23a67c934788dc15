//! Basic-auth users: the htpasswd file nginx checks, the random passwords
//! batten makes, and the credentials file that records them for root.
//!
//! Random passwords are 24 characters from a URL-safe alphabet, drawn from
//! the operating system's generator. They are written once to
//! `/var/lib/batten/credentials` (0600 root) and never logged; a later run
//! finds them there and keeps them, so nobody's password changes under
//! them.

/// Length of generated passwords.
pub const PASSWORD_LEN: usize = 24;

/// batten's record of generated passwords, root-only.
pub const CREDENTIALS: &str = "/var/lib/batten/credentials";

const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A new random password from the OS generator.
pub fn random_password() -> Result<String, String> {
    use rand::TryRng;
    let mut bytes = [0u8; PASSWORD_LEN];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("the operating system's random generator failed: {e}"))?;
    // 64 symbols: six bits of each byte, so every symbol is equally likely.
    Ok(bytes
        .iter()
        .map(|b| URL_SAFE[(b & 0x3f) as usize] as char)
        .collect())
}

/// htpasswd lines as (user, hash), in file order; malformed lines are kept
/// as they are by `merged`.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(u, h)| (u.to_string(), h.to_string()))
        .collect()
}

/// The file with each `(user, hash)` set: an existing line for the user is
/// replaced in place, others appended, everyone else's lines kept.
pub fn merged(existing: &str, users: &[(String, String)]) -> String {
    let mut lines: Vec<String> = existing.lines().map(str::to_string).collect();
    for (user, hash) in users {
        let line = format!("{user}:{hash}");
        match lines
            .iter()
            .position(|l| l.split_once(':').is_some_and(|(u, _)| u == user))
        {
            Some(i) => lines[i] = line,
            None => lines.push(line),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// One line of the credentials file: which site, which user, the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The site's file name (`batten-8081`).
    pub site: String,
    /// The basic-auth user.
    pub user: String,
    /// The password in clear, for root to read and hand on.
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("site", &self.site)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Parse the credentials file (`site user password` per line).
pub fn parse_credentials(text: &str) -> Vec<Credential> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some(Credential {
                site: w.next()?.into(),
                user: w.next()?.into(),
                password: w.next()?.into(),
            })
        })
        .collect()
}

/// The credentials file's text.
pub fn render_credentials(all: &[Credential]) -> String {
    let mut out = String::from(
        "# Passwords batten generated for the web proxies (site, user, password).\n\
         # Readable by root only. Hand them on, then change them if you like:\n\
         # batten keeps a password as long as it still matches the htpasswd file.\n",
    );
    for c in all {
        out.push_str(&format!("{} {} {}\n", c.site, c.user, c.password));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_url_safe_and_differ() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.bytes().all(|c| URL_SAFE.contains(&c)));
        assert_ne!(a, b);
        let h = crate::crypt::sha512_crypt(&a).unwrap();
        assert!(
            h.starts_with("$6$")
                && crate::crypt::verifies(&a, &h)
                && !crate::crypt::verifies(&b, &h)
        );
    }

    #[test]
    fn merge_keeps_other_users_and_updates_in_place() {
        let text = merged(
            "other:$apr1$x$y\nadmin:old\n",
            &[("admin".into(), "new".into()), ("ops".into(), "h".into())],
        );
        assert_eq!(text, "other:$apr1$x$y\nadmin:new\nops:h\n");
        assert_eq!(parse(&text)[1], ("admin".to_string(), "new".to_string()));
    }

    #[test]
    fn credentials_round_trip_and_hide_in_debug() {
        let c = vec![Credential {
            site: "batten-8081".into(),
            user: "admin".into(),
            password: "pw".into(),
        }];
        assert_eq!(parse_credentials(&render_credentials(&c)), c);
        assert!(!format!("{c:?}").contains("pw\""));
    }
}
