//! Planning the locks: every account of the root whose password is a known
//! default (or empty) gets its password field locked, in one account-files
//! transaction.

use log::{info, warn};

use crate::concerns::Planning;
use crate::concerns::accounts::Accounts;
use crate::crypt::defaults::{self, Verdict};
use crate::plan::{AccountStep, Action, PlanError, Secret};

/// The passwords' part of the plan. Accounts whose password an earlier
/// step sets from the user-data are left out: validation already refused
/// a known default there.
pub fn plan(cx: &Planning, notes: &mut Vec<String>) -> Result<Vec<Action>, PlanError> {
    if cx.user_data.batten.passwords.allow_defaults {
        notes.push("batten.passwords.allow_defaults is true: known default passwords are not looked for, and stay where the image has them".into());
        return Ok(Vec::new());
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
    Ok(plan_locks(cx.accounts, &set_by_user_data, notes))
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
