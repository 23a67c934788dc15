//! The loaded ruleset in the baseline: at the seal, batten's table as the
//! kernel holds it (`nft -s -t list table inet batten`, or both families'
//! `iptables-save` filter tables) is recorded with its SHA-256, and each
//! drift check compares. The accepted ports alone miss a rule that drops
//! less, logs nothing or accepts from a wider source; the digest does not,
//! and the recorded text gives the evidence: the lines that changed.

use serde::{Deserialize, Serialize};

use crate::concerns::report::{Check, Status};

/// The check's id (its kind in the textfile: `firewall_ruleset`).
pub const ID: &str = "firewall.ruleset";
/// What it looks at, in words.
const WHAT: &str = "batten's loaded ruleset, against the seal's";
/// How many changed lines the evidence names before it only counts.
const SHOWN: usize = 8;

/// batten's rules as they were loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    /// SHA-256 of `text`, hex.
    pub digest: String,
    /// The listing (no counters, no set elements), for the evidence.
    pub text: String,
}

impl Loaded {
    /// The listing and its digest.
    pub fn of(text: String) -> Loaded {
        let digest = crate::crypt::sha256_hex(text.as_bytes());
        Loaded { digest, text }
    }

    /// The digest, short, for messages.
    fn short(&self) -> &str {
        &self.digest[..self.digest.len().min(12)]
    }
}

/// The check as the seal passed it: what the drift check's is compared
/// with.
pub fn sealed_check(sealed: &Loaded) -> Check {
    Check {
        id: ID.to_string(),
        status: Status::Pass,
        what: WHAT.to_string(),
        why: format!("sha256 {}", sealed.short()),
    }
}

/// The check now: passes while the digest is the seal's; fails with the
/// lines that changed, or with why the ruleset cannot be read (batten's
/// table deleted, say).
pub fn check_now(sealed: &Loaded, now: Result<Loaded, String>) -> Check {
    let (status, why) = match now {
        Ok(now) if now.digest == sealed.digest => return sealed_check(sealed),
        Ok(now) => (
            Status::Fail,
            format!(
                "changed since the seal (sha256 {} now {}): {}",
                sealed.short(),
                now.short(),
                changes(&sealed.text, &now.text)
            ),
        ),
        Err(e) => (
            Status::Fail,
            format!(
                "batten's rules are not loaded any more (sha256 {} at the seal): {}",
                sealed.short(),
                e.lines().next().unwrap_or_default().trim()
            ),
        ),
    };
    Check {
        id: ID.to_string(),
        status,
        what: WHAT.to_string(),
        why,
    }
}

/// The lines added (`+`) and removed (`-`), trimmed, the first few named.
pub fn changes(was: &str, now: &str) -> String {
    let diff = similar::TextDiff::from_lines(was, now);
    let lines: Vec<String> = diff
        .iter_all_changes()
        .filter_map(|c| {
            let sign = match c.tag() {
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Equal => return None,
            };
            let line = c.value().trim();
            (!line.is_empty()).then(|| format!("{sign} {line}"))
        })
        .collect();
    if lines.is_empty() {
        return "only whitespace changed".to_string();
    }
    let mut out = lines
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if lines.len() > SHOWN {
        out.push_str(&format!("; and {} more line(s)", lines.len() - SHOWN));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "table inet batten {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 accept\n\t}\n}\n";

    #[test]
    fn the_same_rules_pass_and_a_new_rule_is_named() {
        let sealed = Loaded::of(TABLE.to_string());
        assert_eq!(sealed.digest.len(), 64);
        let same = check_now(&sealed, Ok(Loaded::of(TABLE.to_string())));
        assert_eq!(
            (same.status, same.why.clone()),
            (Status::Pass, sealed_check(&sealed).why)
        );
        let added = TABLE.replace(
            "\t\ttcp dport 22 accept\n",
            "\t\ttcp dport 9999 accept\n\t\ttcp dport 22 accept\n",
        );
        let changed = check_now(&sealed, Ok(Loaded::of(added)));
        assert_eq!(changed.status, Status::Fail);
        assert!(
            changed.why.ends_with("): + tcp dport 9999 accept"),
            "{}",
            changed.why
        );
        let gone = check_now(
            &sealed,
            Err("nft -s -t list table inet batten: Error: No such file or directory\n".into()),
        );
        assert_eq!(gone.status, Status::Fail);
        assert!(gone.why.contains("not loaded any more"), "{}", gone.why);
        assert!(
            gone.why.ends_with("No such file or directory"),
            "{}",
            gone.why
        );
    }

    #[test]
    fn long_changes_are_counted_not_listed() {
        let now: String = (0..20).map(|i| format!("rule {i}\n")).collect();
        let said = changes("", &now);
        assert!(said.starts_with("+ rule 0; + rule 1;"), "{said}");
        assert!(said.ends_with("; and 12 more line(s)"), "{said}");
    }
}
