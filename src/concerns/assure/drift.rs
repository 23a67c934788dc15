//! Comparing the checks of now with the sealed baseline, and remembering
//! since when each drifted item has been so.

use serde::{Deserialize, Serialize};

use crate::concerns::report::{Check, Status};
use crate::host::root::Root;
use crate::state::StateError;

/// Where the last drift check's findings are kept.
pub const PATH: &str = "/var/lib/batten/drift.json";

/// How a check left the sealed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// It passed at the seal and no longer does.
    Drifted,
    /// It did not exist at the seal and is not safe now (a new listener on
    /// a public address, a new failing check).
    NewlyUnsafe,
}

/// One drifted item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The check's id.
    pub id: String,
    /// How it left the sealed state.
    pub kind: Kind,
    /// What is checked, in words.
    pub what: String,
    /// What the seal found, when it existed then.
    pub was: Option<String>,
    /// The evidence now.
    pub now: String,
    /// When a drift check first found it so, RFC 3339 UTC.
    pub since: String,
}

/// What the last drift check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    /// When it ran, RFC 3339 UTC.
    pub last_update: String,
    /// Every drifted item, in report order.
    pub items: Vec<Item>,
    /// The items a repair was tried on and left (see
    /// `repair::tried_key`): not tried again while they last, so a drift
    /// repair cannot undo never makes a run every timer period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repair_tried: Vec<String>,
    /// What kept the last drift check from running, or its repair from
    /// working: `batten status` says `error` while there is any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Findings {
    /// The last findings in the root, if a drift check ran.
    pub fn load(root: &Root) -> Option<Findings> {
        crate::state::load_json(root, PATH)
    }

    /// Keep them (0600 root).
    pub fn save(&self, root: &Root) -> Result<(), StateError> {
        crate::state::save_json(root, PATH, self)
    }
}

/// How bad an outcome is: a check drifts when this grows.
fn rank(s: Status) -> u8 {
    match s {
        Status::Pass | Status::Skip => 0,
        Status::Warn => 1,
        Status::Fail => 2,
    }
}

/// Every check of `now` that is worse than at the seal, or new and not
/// safe; `before` (the last findings) gives each its first sighting, and
/// `at` stamps the new ones.
pub fn compare(sealed: &[Check], now: &[Check], before: Option<&Findings>, at: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for check in now {
        let was = sealed.iter().find(|c| c.id == check.id);
        let kind = match was {
            Some(w) if rank(check.status) > rank(w.status) => Kind::Drifted,
            None if rank(check.status) >= 2
                || (check.id.starts_with("sockets.") && rank(check.status) >= 1) =>
            {
                Kind::NewlyUnsafe
            }
            _ => continue,
        };
        let since = before
            .and_then(|f| f.items.iter().find(|i| i.id == check.id && i.kind == kind))
            .map_or_else(|| at.to_string(), |i| i.since.clone());
        items.push(Item {
            id: check.id.clone(),
            kind,
            what: check.what.clone(),
            was: was.map(|w| format!("{:?}: {}", w.status, w.why).to_lowercase()),
            now: format!("{}: {}", status_word(check.status), check.why),
            since,
        });
    }
    items
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Warn => "warn",
        Status::Fail => "fail",
        Status::Skip => "skip",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, status: Status, why: &str) -> Check {
        Check {
            id: id.into(),
            status,
            what: format!("what of {id}"),
            why: why.into(),
        }
    }

    #[test]
    fn worse_is_drift_new_and_unsafe_is_flagged_the_rest_is_quiet() {
        let sealed = vec![
            check("sshd.passwordauthentication", Status::Pass, "no"),
            check("firewall.loaded", Status::Pass, "drops by default"),
            check("updates.last-run", Status::Warn, "not run yet"),
            check("sockets.tcp.0.0.0.0:22", Status::Pass, "public, allowed"),
        ];
        let now = vec![
            check(
                "sshd.passwordauthentication",
                Status::Fail,
                "yes, set in /etc/ssh/sshd_config.d/10-oops.conf",
            ),
            check("firewall.loaded", Status::Pass, "drops by default"),
            check("updates.last-run", Status::Pass, "ran"),
            check("sockets.tcp.0.0.0.0:22", Status::Pass, "public, allowed"),
            check(
                "sockets.tcp.0.0.0.0:9999",
                Status::Warn,
                "listens publicly, but the firewall drops it",
            ),
            check("sockets.tcp.127.0.0.1:6379", Status::Pass, "loopback only"),
        ];
        let items = compare(&sealed, &now, None, "T1");
        let got: Vec<(&str, Kind)> = items.iter().map(|i| (i.id.as_str(), i.kind)).collect();
        assert_eq!(
            got,
            [
                ("sshd.passwordauthentication", Kind::Drifted),
                ("sockets.tcp.0.0.0.0:9999", Kind::NewlyUnsafe)
            ]
        );
        assert_eq!(items[0].was.as_deref(), Some("pass: no"));
        assert!(items[0].now.contains("10-oops.conf"));
        // A second check keeps the first sighting.
        let before = Findings {
            last_update: "T1".into(),
            items: items.clone(),
            ..Findings::default()
        };
        let again = compare(&sealed, &now, Some(&before), "T2");
        assert!(again.iter().all(|i| i.since == "T1"), "{again:?}");
        // Undone: nothing left.
        assert!(compare(&sealed, &sealed, Some(&before), "T3").is_empty());
    }
}
