//! Planning the locks: every account of the root whose password is a known
//! default (or empty) gets its password field locked, in one account-files
//! transaction.

use log::{info, warn};

use crate::concerns::Planning;
use crate::concerns::accounts::Accounts;
use crate::crypt::defaults::{self, Verdict};
use crate::host::root::Root;
use crate::plan::{AccountStep, Action, PlanError, Secret};

/// The passwords' part of the plan. Accounts whose password an earlier
/// step sets from the user-data are left out: validation already refused
/// a known default there.
pub fn plan(cx: &Planning, notes: &mut Vec<String>) -> Result<Vec<Action>, PlanError> {
    let mut actions = super::login_defs::plan(cx.root)?;
    if cx.user_data.batten.passwords.allow_defaults {
        notes.push("batten.passwords.allow_defaults is true: known default passwords are not looked for, and stay where the image has them".into());
        return Ok(actions);
    }
    let set_by_user_data: Vec<&str> = cx
        .planned
        .iter()
        .filter_map(|a| match a {
            Action::Accounts { steps } => Some(steps),
            _ => None,
        })
        .flatten()
        .filter_map(|s| match s {
            AccountStep::SetPassword { user, .. } => Some(user.as_str()),
            _ => None,
        })
        .collect();
    actions.extend(plan_locks(cx.accounts, &set_by_user_data, notes));
    actions.extend(plan_userconf(cx.root, notes)?);
    Ok(actions)
}

/// Raspberry Pi OS's `userconf.txt` asking for a known default password
/// (`pi:` and the hash of `raspberry`, as old guides write it): Pi OS's
/// userconfig service would set it after batten has run, so the file is
/// removed, loudly. Pi OS then asks for a user on the console, and the
/// owner can give a password or a key in the user-data instead.
pub fn plan_userconf(root: &Root, notes: &mut Vec<String>) -> Result<Vec<Action>, PlanError> {
    let mut actions = Vec::new();
    for dir in crate::input::pi_os::BOOT_DIRS {
        let path = format!("{dir}/userconf.txt");
        let Some(text) = root.read_to_string(&path)? else {
            continue;
        };
        let Some((user, hash)) = text.lines().next().and_then(|l| l.split_once(':')) else {
            continue;
        };
        if let Verdict::Default(m) = defaults::check(user, hash.trim()) {
            let note = format!(
                "DEFAULT PASSWORD REFUSED: {path} asks Pi OS to give {user} the known default password {}; batten removed the file so that Pi OS never sets it. Give {user} a password or a key in the user-data, or write userconf.txt again with another password",
                m.describe()
            );
            warn!("{note}");
            notes.push(note);
            actions.push(Action::Remove {
                path,
                why: format!(
                    "it would give {user} the known default password {:?}",
                    m.password
                ),
            });
        }
    }
    Ok(actions)
}

/// Lock every account of `accounts` (but those in `skip`) whose password is
/// a known default or empty; name each loudly in `notes` and the log, and
/// name the hashes batten cannot check.
pub fn plan_locks(accounts: &Accounts, skip: &[&str], notes: &mut Vec<String>) -> Vec<Action> {
    let fields: Vec<(String, String)> = accounts
        .shadow
        .iter()
        .filter(|(name, _)| !skip.contains(&name.as_str()))
        .cloned()
        .collect();
    let started = std::time::Instant::now();
    let verdicts = defaults::check_all(&fields);
    info!(
        "checked {} password field(s) for known default passwords in {} ms",
        fields.len(),
        started.elapsed().as_millis()
    );
    let mut steps = Vec::new();
    for ((user, field), (_, verdict)) in fields.iter().zip(verdicts) {
        let found = match verdict {
            Verdict::Default(m) => format!("the known default password {}", m.describe()),
            // Lynis AUTH-9283 (accounts without a password).
            Verdict::Empty => "empty (no password was asked at all)".to_string(),
            Verdict::Unchecked(scheme) => {
                let prefix: String = field.chars().take(4).collect();
                notes.push(format!(
                    "{user}'s password hash uses {} ({prefix}...), which batten cannot check for a known default password; it is left as it is",
                    scheme.name()
                ));
                continue;
            }
            Verdict::Clean | Verdict::Locked => continue,
        };
        let note = format!(
            "DEFAULT PASSWORD LOCKED: {user}'s password was {found}; batten locked it, so it no longer opens the account (its SSH keys still do). To log in with a password, give {user} a new one in the user-data (hashed_passwd, lock_passwd: false)"
        );
        warn!("{note}");
        notes.push(note);
        steps.push(AccountStep::LockDefault {
            user: user.clone(),
            field: Secret(format!("!{field}")),
            found,
        });
    }
    if steps.is_empty() {
        Vec::new()
    } else {
        vec![Action::Accounts { steps }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concerns::accounts::parse_shadow;
    use crate::host::root::scratch_root;

    #[test]
    fn a_userconf_with_a_default_password_is_removed_another_is_left_to_pi_os() {
        // `openssl passwd -6 -salt abcdefgh raspberry`, and `... 'correct horse battery'`.
        let default = "pi:$6$abcdefgh$4o4.L3tiGL1RD7BsjaaWYcCVs87zOlvZK7S6SXQETuFMA2ELLDwmf3YDHidZ3I4E/fXmmOOWhAJHUSMf.eA6c1\n";
        let own = "pi:$6$abcdefgh$dTmIYmW/LpvGK/iiDSK9zlcKIRJ33.7YE9DETLAR1zX9/2./Fv6/8dFZ1tCs/Kfp//7QeoJfyRWP7XdDzP87j1\n";
        let (_dir, root) = scratch_root(&[("/boot/firmware/userconf.txt", default)]);
        let mut notes = Vec::new();
        let actions = plan_userconf(&root, &mut notes).unwrap();
        assert!(
            matches!(actions.as_slice(), [Action::Remove { path, .. }] if path == "/boot/firmware/userconf.txt"),
            "{actions:?}"
        );
        assert!(notes[0].starts_with("DEFAULT PASSWORD REFUSED: /boot/firmware/userconf.txt asks Pi OS to give pi the known default password \"raspberry\""), "{notes:?}");
        let (_dir, root) = scratch_root(&[("/boot/firmware/userconf.txt", own)]);
        assert!(plan_userconf(&root, &mut Vec::new()).unwrap().is_empty());
    }

    fn accounts(shadow: &str) -> Accounts {
        Accounts {
            users: Vec::new(),
            groups: Vec::new(),
            shadow: parse_shadow(shadow),
        }
    }

    #[test]
    fn defaults_and_empty_passwords_are_locked_and_named() {
        // `openssl passwd -1 -salt saltsalt alarm`, `-6 ... correct horse battery`.
        let shadow = "root:*:19000:0:99999:7:::\n\
            alarm:$1$saltsalt$1.d7sA/ak0vsOYulqpLmB0:19000:0:99999:7:::\n\
            alice:$6$saltsalt$G9wFFnnUFCPffgjGaIp8t6onbqx3zGbMIn93ecLfBFGJpBV3/0HPLZ17qYbjb.WJDtXbmuMlQ9NnvzVms5ZXj.:19000:0:99999:7:::\n\
            guest::19000:0:99999:7:::\n\
            old:$2b$12$abcdefghijklmnopqrstuu8rT9rNTmsw5aLoA9yUGGIz/1kG5mq5e:19000::::::\n";
        let mut notes = Vec::new();
        let actions = plan_locks(&accounts(shadow), &[], &mut notes);
        let [Action::Accounts { steps }] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        let locked: Vec<(String, String)> = steps
            .iter()
            .map(|s| match s {
                AccountStep::LockDefault { user, field, .. } => (user.clone(), field.0.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            locked,
            [
                (
                    "alarm".to_string(),
                    "!$1$saltsalt$1.d7sA/ak0vsOYulqpLmB0".to_string()
                ),
                ("guest".to_string(), "!".to_string())
            ]
        );
        assert!(notes.iter().any(|n| n.starts_with("DEFAULT PASSWORD LOCKED: alarm's password was the known default password \"alarm\" (Arch Linux ARM images)")), "{notes:#?}");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("old's password hash uses an unknown scheme ($2b$...)")),
            "{notes:#?}"
        );
        // Skipped accounts (their password comes from user-data) and a
        // second run, once locked, plan nothing.
        assert!(plan_locks(&accounts(shadow), &["alarm", "guest"], &mut Vec::new()).is_empty());
        let locked_shadow = shadow
            .replace("alarm:$1$", "alarm:!$1$")
            .replace("guest::", "guest:!:");
        assert!(plan_locks(&accounts(&locked_shadow), &[], &mut Vec::new()).is_empty());
    }
}
