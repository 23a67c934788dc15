//! The sealed baseline: what verify proved when the instance was sealed,
//! check by check, kept in batten's state directory.

use serde::{Deserialize, Serialize};

use crate::concerns::assure::ruleset::{self, Loaded};
use crate::concerns::report::{Check, Report};
use crate::host::root::Root;
use crate::state::StateError;

/// Where the baseline is kept.
pub const PATH: &str = "/var/lib/batten/sealed.json";

/// What the seal recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The instance sealed.
    pub instance_id: Option<String>,
    /// The batten that sealed it.
    pub version: String,
    /// Every check of the sealing verify, as it came out.
    pub checks: Vec<Check>,
    /// batten's ruleset as the kernel held it at the seal (live, with the
    /// firewall on), so that any change to it drifts, not only a port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset: Option<Loaded>,
}

impl Baseline {
    /// The baseline of `report`, now.
    pub fn of(report: &Report, instance_id: Option<String>, ruleset: Option<Loaded>) -> Baseline {
        Baseline {
            at: crate::state::now_utc(),
            instance_id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            checks: report.checks.clone(),
            ruleset,
        }
    }

    /// The checks the drift check compares with: the sealing verify's and,
    /// when the ruleset was recorded, its digest as a passed check.
    pub fn sealed_checks(&self) -> Vec<Check> {
        let mut checks = self.checks.clone();
        checks.extend(self.ruleset.as_ref().map(ruleset::sealed_check));
        checks
    }

    /// Keep it in the root (0600 root: the report names accounts).
    pub fn save(&self, root: &Root) -> Result<(), StateError> {
        crate::state::save_json(root, PATH, self)
    }

    /// The root's baseline, when it was sealed with one.
    pub fn load(root: &Root) -> Option<Baseline> {
        crate::state::load_json(root, PATH)
    }
}
