//! Checking that no account opens with a known default password, on the
//! account files as they are now (something after batten may have set one).

use crate::concerns::accounts::Accounts;
use crate::concerns::report::{Inputs, Report, Status};
use crate::crypt::defaults::{self, Verdict};
use crate::state::State;

const ID: &str = "passwords.defaults";
const WHAT: &str = "no account has a known default password";

/// The check of the passwords' part: every password field of /etc/shadow
/// that is not locked, against its account's known defaults.
pub fn verify(inp: &Inputs, r: &mut Report) {
    verify_rounds(inp, r);
    if inp.user_data.batten.passwords.allow_defaults {
        r.add(
            ID,
            Status::Warn,
            WHAT,
            "not checked: batten.passwords.allow_defaults is true (for a lab only)",
        );
        return;
    }
    let accounts = match Accounts::load(inp.root) {
        Ok(a) => a,
        Err(e) => return r.add(ID, Status::Fail, WHAT, e.to_string()),
    };
    let mut open = Vec::new();
    let mut unchecked = Vec::new();
    let mut checked = 0;
    // Hashes a check found clean before are not hashed again: the drift
    // timer runs verify every few minutes, and yescrypt is slow by design.
    let mut cache = CleanCache::load(inp.root);
    let (known, fresh): (Vec<_>, Vec<_>) = accounts
        .shadow
        .iter()
        .cloned()
        .partition(|(user, field)| cache.has(user, field));
    checked += known.len();
    let verdicts = defaults::check_all(&fresh);
    for ((user, field), (_, verdict)) in fresh.iter().zip(&verdicts) {
        if matches!(verdict, Verdict::Clean) {
            cache.add(user, field);
        }
    }
    cache.save(inp.root);
    for (user, verdict) in verdicts {
        match verdict {
            Verdict::Default(m) => open.push(format!("{user} ({})", m.describe())),
            Verdict::Empty => open.push(format!("{user} (an empty password)")),
            Verdict::Unchecked(s) => unchecked.push(format!("{user} ({})", s.name())),
            Verdict::Clean => checked += 1,
            Verdict::Locked => {}
        }
    }
    let locked = State::load(inp.root)
        .map(|s| {
            s.default_passwords_locked
                .iter()
                .map(|l| l.user.clone())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let locked = if locked.is_empty() {
        String::new()
    } else {
        format!("; locked by batten: {}", locked.join(", "))
    };
    let (status, why) = if !open.is_empty() {
        (
            Status::Fail,
            format!(
                "{} still open with a known default password; `batten run --force` locks it",
                open.join(", ")
            ),
        )
    } else if !unchecked.is_empty() {
        (
            Status::Warn,
            format!(
                "hashes of a scheme batten cannot check: {}{locked}",
                unchecked.join(", ")
            ),
        )
    } else {
        (
            Status::Pass,
            format!("{checked} password(s) checked, none a known default{locked}"),
        )
    };
    r.add(ID, status, WHAT, why);
}

/// SHA-512 crypt's rounds for chpasswd and newusers (Lynis AUTH-9230).
fn verify_rounds(inp: &Inputs, r: &mut Report) {
    const ID: &str = "passwords.rounds";
    const WHAT: &str = "SHA-512 crypt rounds in /etc/login.defs";
    match inp.root.read_to_string(super::login_defs::LOGIN_DEFS) {
        Ok(None) => r.add(ID, Status::Skip, WHAT, "this root has no /etc/login.defs"),
        Ok(Some(text)) => match super::login_defs::shortfall(&text) {
            None => r.add(ID, Status::Pass, WHAT, "at least 5000 (Lynis AUTH-9230)"),
            Some(why) => r.add(ID, Status::Warn, WHAT, format!("{why} (Lynis AUTH-9230)")),
        },
        Err(e) => r.add(ID, Status::Fail, WHAT, e.to_string()),
    }
}

/// Digests of (account, password field) pairs found clean against this
/// list of defaults: no hash is copied, only a SHA-256 of the pair and the
/// list, so the file tells nothing of the passwords; a changed field (or
/// list) has another digest and is checked again.
struct CleanCache {
    digests: Vec<String>,
    changed: bool,
}

/// Where the digests are kept.
const CACHE: &str = "/var/lib/batten/passwords-checked.json";

impl CleanCache {
    fn load(root: &crate::host::root::Root) -> CleanCache {
        CleanCache {
            digests: crate::state::load_json(root, CACHE).unwrap_or_default(),
            changed: false,
        }
    }

    fn digest(user: &str, field: &str) -> String {
        // The list is part of it: a new batten with more defaults checks
        // every hash again.
        crate::crypt::sha256_hex(format!("{}\0{user}\0{field}", defaults::LIST).as_bytes())
    }

    fn has(&self, user: &str, field: &str) -> bool {
        self.digests.contains(&Self::digest(user, field))
    }

    fn add(&mut self, user: &str, field: &str) {
        self.digests.push(Self::digest(user, field));
        self.changed = true;
    }

    /// Keep the digests where batten keeps its state; a root batten cannot
    /// write (a read-only image) just checks again next time.
    fn save(&self, root: &crate::host::root::Root) {
        if self.changed && matches!(root.metadata("/var/lib/batten"), Ok(Some(_))) {
            let _ = crate::state::save_json(root, CACHE, &self.digests);
        }
    }
}
