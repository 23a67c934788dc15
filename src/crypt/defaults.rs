//! Known default passwords, and finding them behind the hashes of an
//! image's /etc/shadow.
//!
//! The list lives in `defaults.txt` beside this file, one account and
//! password per line with its source, so a reviewer reads it as it is.
//! Each account is checked only against the passwords listed for it, for
//! any account, and its own name: a handful of hashes per account, because
//! yescrypt is slow by design (tens of milliseconds each, far more on a
//! Pi Zero). The checks run in parallel, and a hash already checked in
//! this process is never checked again.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::Scheme;

/// The list, as kept in the source.
pub const LIST: &str = include_str!("defaults.txt");

/// One known default: an account (`*` for any) and its password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// The account the password belongs to, or `*` for any account.
    pub user: &'static str,
    /// The password.
    pub password: &'static str,
    /// Where it comes from, in words.
    pub source: &'static str,
}

/// Every entry of the list.
pub fn list() -> &'static [Known] {
    static PARSED: OnceLock<Vec<Known>> = OnceLock::new();
    PARSED.get_or_init(|| {
        LIST.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let (pair, source) = line.split_once('#').unwrap_or((line, ""));
                let mut words = pair.split_whitespace();
                Some(Known {
                    user: words.next()?,
                    password: words.next()?,
                    source: source.trim(),
                })
            })
            .collect()
    })
}

/// What a password matched: a listed default, or the account's own name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The password, which is public knowledge (never a user's secret).
    pub password: String,
    /// Where it comes from, in words.
    pub source: String,
}

impl Match {
    /// One line for messages: the password and its source.
    pub fn describe(&self) -> String {
        format!("{:?} ({})", self.password, self.source)
    }
}

/// The passwords to try for `user`, each once: those listed for it, its
/// own name, and those listed for any account. An empty `user` (an
/// account not yet named) gets every password of the list.
pub fn candidates(user: &str) -> Vec<Match> {
    let mut out: Vec<Match> = Vec::new();
    let mut add = |password: &str, source: &str| {
        if !out.iter().any(|m| m.password == password) {
            out.push(Match {
                password: password.to_string(),
                source: source.to_string(),
            });
        }
    };
    for k in list().iter().filter(|k| k.user == user || user.is_empty()) {
        add(k.password, k.source);
    }
    if !user.is_empty() {
        add(user, "the account's own name");
    }
    for k in list().iter().filter(|k| k.user == "*") {
        add(k.password, k.source);
    }
    out
}

/// The known default `password` is for `user` (any account when `None`),
/// if it is one: for a password the user-data gives in plain text.
pub fn plain_default(user: Option<&str>, password: &str) -> Option<Match> {
    match user {
        Some(u) => candidates(u).into_iter().find(|m| m.password == password),
        None => list()
            .iter()
            .find(|k| k.password == password)
            .map(|k| Match {
                password: k.password.to_string(),
                source: k.source.to_string(),
            }),
    }
}

/// What the password field of one account holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// None of the candidates opens it.
    Clean,
    /// A known default opens it.
    Default(Match),
    /// The field is empty: no password at all is asked.
    Empty,
    /// Locked (`!`, `*`): no password opens it.
    Locked,
    /// A scheme batten cannot check; said, never guessed.
    Unchecked(Scheme),
}

/// Check one account's password field; see [`check_all`].
pub fn check(user: &str, field: &str) -> Verdict {
    check_all(&[(user.to_string(), field.to_string())])
        .pop()
        .map_or(Verdict::Clean, |(_, v)| v)
}

/// Check every `(account, password field)` pair against the account's
/// candidates, in parallel over the machine's CPUs; the verdicts come back
/// in the order given. A hash this process checked before for the same
/// account is not hashed again.
pub fn check_all(fields: &[(String, String)]) -> Vec<(String, Verdict)> {
    static SEEN: OnceLock<Mutex<HashMap<(String, String), Verdict>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let remembered = |user: &str, field: &str| {
        seen.lock()
            .ok()
            .and_then(|m| m.get(&(user.to_string(), field.to_string())).cloned())
    };
    // The work: one (account, candidate) pair per hash to compute.
    let mut work: Vec<(usize, Match)> = Vec::new();
    let mut verdicts: Vec<Option<Verdict>> = fields
        .iter()
        .enumerate()
        .map(|(i, (user, field))| {
            if let Some(v) = remembered(user, field) {
                return Some(v);
            }
            match Scheme::of(field) {
                Scheme::Empty => Some(Verdict::Empty),
                Scheme::Locked => Some(Verdict::Locked),
                Scheme::Unknown => Some(Verdict::Unchecked(Scheme::Unknown)),
                _ => {
                    work.extend(candidates(user).into_iter().map(|m| (i, m)));
                    None
                }
            }
        })
        .collect();
    let found = verify_in_parallel(fields, &work);
    for (i, (user, field)) in fields.iter().enumerate() {
        if verdicts[i].is_none() {
            let v = found[i].clone().map_or(Verdict::Clean, Verdict::Default);
            if let Ok(mut m) = seen.lock() {
                m.insert((user.clone(), field.clone()), v.clone());
            }
            verdicts[i] = Some(v);
        }
    }
    fields
        .iter()
        .zip(verdicts)
        .map(|((user, _), v)| (user.clone(), v.unwrap_or(Verdict::Clean)))
        .collect()
}

/// Run the hashes of `work` on every CPU; the first match per account.
fn verify_in_parallel(fields: &[(String, String)], work: &[(usize, Match)]) -> Vec<Option<Match>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let found: Mutex<Vec<Option<Match>>> = Mutex::new(vec![None; fields.len()]);
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(work.len());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some((i, m)) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let done = found.lock().map(|f| f[*i].is_some()).unwrap_or(false);
                    if !done
                        && super::verifies(&m.password, &fields[*i].1)
                        && let Ok(mut f) = found.lock()
                    {
                        f[*i].get_or_insert_with(|| m.clone());
                    }
                }
            });
        }
    });
    found.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_reads_and_every_entry_has_a_source() {
        let l = list();
        assert!(l.len() >= 20, "{l:?}");
        for k in l {
            assert!(
                !k.source.is_empty(),
                "{k:?} says nowhere where it comes from"
            );
            assert!(!k.password.contains(char::is_whitespace));
        }
        assert!(l.contains(&Known {
            user: "pi",
            password: "raspberry",
            source: "Raspberry Pi OS images before April 2022, and guides that recreate the user"
        }));
    }

    #[test]
    fn candidates_are_the_accounts_own_then_anyones_each_once() {
        let c: Vec<String> = candidates("pi").into_iter().map(|m| m.password).collect();
        assert_eq!(c[..2], ["raspberry".to_string(), "pi".to_string()]);
        assert!(c.contains(&"password".to_string()));
        assert!(!c.contains(&"toor".to_string()));
        let admin: Vec<String> = candidates("admin")
            .into_iter()
            .map(|m| m.password)
            .collect();
        assert_eq!(admin.iter().filter(|p| *p == "admin").count(), 1);
        assert_eq!(
            plain_default(Some("alice"), "alice").unwrap().source,
            "the account's own name"
        );
        assert_eq!(plain_default(Some("alice"), "raspberry"), None);
        assert!(plain_default(None, "raspberry").is_some());
    }

    #[test]
    fn every_scheme_is_checked_with_its_own_algorithm() {
        // yescrypt from Debian 12's `mkpasswd -m yescrypt raspberry`; the
        // others from `openssl passwd -6 / -5 / -1`.
        let fields = [
            ("pi", "$y$j9T$bueRBYFHX06XJDMnF8YUN1$we0SojwqKYp1AL5U.Vs4Ao4hfIjouUmD4qoYTlBQB94"),
            ("root", "$6$saltsalt$imNpoTToxg0uElWe0jkumPeYaSbMjdfpMltx4ujhl6fBM0Kbfp4goTvuYuH/9J.53A/DGQiRrlELi.Z/L.rQo/"),
            ("ubuntu", "$5$saltsalt$xJSCwtgUo6tV/oAgqtVurZ/UOH.gQR164BUiTMTn0U3"),
            ("alarm", "$1$saltsalt$1.d7sA/ak0vsOYulqpLmB0"),
            ("alice", "$6$saltsalt$G9wFFnnUFCPffgjGaIp8t6onbqx3zGbMIn93ecLfBFGJpBV3/0HPLZ17qYbjb.WJDtXbmuMlQ9NnvzVms5ZXj."),
            ("bob", ""),
            ("daemon", "*"),
            ("carol", "!$6$saltsalt$x"),
            ("dave", "$2b$12$abcdefghijklmnopqrstuu8rT9rNTmsw5aLoA9yUGGIz/1kG5mq5e"),
        ]
        .map(|(u, f)| (u.to_string(), f.to_string()));
        let got = check_all(&fields);
        let verdict = |u: &str| got.iter().find(|(n, _)| n == u).unwrap().1.clone();
        let password = |u: &str| match verdict(u) {
            Verdict::Default(m) => m.password,
            other => panic!("{u}: {other:?}"),
        };
        assert_eq!(password("pi"), "raspberry");
        assert_eq!(password("root"), "toor");
        assert_eq!(password("ubuntu"), "ubuntu");
        assert_eq!(password("alarm"), "alarm");
        assert_eq!(verdict("alice"), Verdict::Clean);
        assert_eq!(verdict("bob"), Verdict::Empty);
        assert_eq!(verdict("daemon"), Verdict::Locked);
        assert_eq!(verdict("carol"), Verdict::Locked);
        assert_eq!(verdict("dave"), Verdict::Unchecked(Scheme::Unknown));
        // Asked again, the answers come from memory, the same.
        assert_eq!(check_all(&fields), got);
    }
}
