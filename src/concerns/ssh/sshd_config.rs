//! sshd's configuration as sshd itself reads it, and the edits that make
//! batten's settings the effective ones.
//!
//! sshd takes the *first* value it meets for most keywords, follows
//! `Include` globs in sorted order at the point where they appear, and
//! applies `Match` blocks per connection. A setting written "somewhere" can
//! therefore lose to an earlier line (Debian's main file includes
//! `sshd_config.d/*.conf` at the top; a cloud image may ship
//! `50-cloud-init.conf` with `PasswordAuthentication yes`). This module reads
//! the files in sshd's order, says which line is in effect, and plans the
//! smallest edits after which batten's values are the effective ones:
//! a drop-in that sorts first when the main file includes the directory
//! before setting any of the keywords, otherwise the main file edited in
//! place; conflicting lines elsewhere are commented out and reported.

use crate::host::root::{Root, RootError};

/// The main configuration file.
pub const MAIN: &str = "/etc/ssh/sshd_config";
/// The drop-in directory Debian, Ubuntu, Fedora and others include.
pub const DROPIN_DIR: &str = "/etc/ssh/sshd_config.d";
/// batten's drop-in; "00-" sorts before the distributions' and cloud-init's.
pub const DROPIN: &str = "/etc/ssh/sshd_config.d/00-batten.conf";
/// How deep `Include` may nest (sshd's own limit is 16).
const MAX_INCLUDE_DEPTH: usize = 16;

/// One keyword line, where it came from, and the context it applies in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// File (root-relative) and 1-based line number.
    pub file: String,
    /// 1-based line number in `file`.
    pub line: usize,
    /// Keyword in lower case (sshd keywords are case-insensitive).
    pub keyword: String,
    /// The arguments as written, quotes kept.
    pub args: String,
    /// The `Match` criteria this line is under, if any.
    pub within_match: Option<String>,
}

impl Directive {
    /// The first argument without quotes, lower-cased: `yes`, `no`, ...
    pub fn value(&self) -> String {
        self.args
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches('"')
            .to_ascii_lowercase()
    }
}

/// The text of every file sshd reads, and its directives in sshd's order.
#[derive(Clone, Debug, Default)]
pub struct SshdConfig {
    /// (root-relative path, text) of every file read, main file first.
    pub files: Vec<(String, String)>,
    /// Every directive in the order sshd meets them.
    pub directives: Vec<Directive>,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SshdConfigError {
    /// A file could not be read safely.
    #[error(transparent)]
    Root(#[from] RootError),
    /// Includes nest deeper than sshd allows (probably a loop).
    #[error("{file}: Include nests more than {MAX_INCLUDE_DEPTH} deep; check for an Include loop")]
    TooDeep {
        /// The file with the offending Include.
        file: String,
    },
}

/// Split a config line into keyword and arguments (`Key value` or
/// `Key=value`); `None` for blanks and comments.
pub fn split_line(line: &str) -> Option<(String, String)> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let end = t
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(t.len());
    let keyword = t[..end].to_ascii_lowercase();
    let rest = t[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    Some((keyword, rest.to_string()))
}

/// Match a file name against a glob with `*` and `?` (what sshd's
/// `Include` patterns use in practice).
fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Like glob(3), a leading dot is only matched explicitly.
    (pattern.starts_with('.') || !name.starts_with('.')) && go(&p, &n)
}

/// The files an `Include` argument names, sorted as glob(3) sorts them.
/// Relative paths are relative to /etc/ssh, as sshd reads them.
pub fn include_targets(root: &Root, arg: &str) -> Result<Vec<String>, RootError> {
    let mut out = Vec::new();
    for word in arg.split_whitespace() {
        let word = word.trim_matches('"');
        let path = if word.starts_with('/') {
            word.to_string()
        } else {
            format!("/etc/ssh/{word}")
        };
        let (dir, pattern) = path.rsplit_once('/').unwrap_or(("", &path));
        if !pattern.contains(['*', '?']) {
            if root.metadata(&path)?.is_some() {
                out.push(path.clone());
            }
            continue;
        }
        let dir = if dir.is_empty() { "/" } else { dir };
        let mut names = root.list_dir(dir)?.unwrap_or_default();
        names.sort();
        out.extend(
            names
                .into_iter()
                .filter(|n| glob_match(pattern, n))
                .map(|n| format!("{}/{n}", dir.trim_end_matches('/'))),
        );
    }
    Ok(out)
}

impl SshdConfig {
    /// Read the root's sshd configuration in sshd's order. A missing main
    /// file gives an empty configuration (sshd's defaults).
    pub fn load(root: &Root) -> Result<SshdConfig, SshdConfigError> {
        let mut config = SshdConfig::default();
        config.read_file(root, MAIN, None, 0)?;
        Ok(config)
    }

    fn read_file(
        &mut self,
        root: &Root,
        path: &str,
        context: Option<String>,
        depth: usize,
    ) -> Result<(), SshdConfigError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(SshdConfigError::TooDeep {
                file: path.to_string(),
            });
        }
        let Some(text) = root.read_to_string(path)? else {
            return Ok(());
        };
        self.files.push((path.to_string(), text.clone()));
        let mut within = context.clone();
        for (i, line) in text.lines().enumerate() {
            let Some((keyword, args)) = split_line(line) else {
                continue;
            };
            if keyword == "match" {
                // `Match all` ends a block and returns to global settings.
                within = if args.eq_ignore_ascii_case("all") {
                    context.clone()
                } else {
                    Some(args.clone())
                };
                continue;
            }
            if keyword == "include" {
                for target in include_targets(root, &args)? {
                    self.read_file(root, &target, within.clone(), depth + 1)?;
                }
                continue;
            }
            self.directives.push(Directive {
                file: path.to_string(),
                line: i + 1,
                keyword,
                args,
                within_match: within.clone(),
            });
        }
        Ok(())
    }

    /// The directive sshd uses for `keyword` outside any Match block: the
    /// first one.
    pub fn effective(&self, keyword: &str) -> Option<&Directive> {
        let keyword = keyword.to_ascii_lowercase();
        self.directives
            .iter()
            .find(|d| d.keyword == keyword && d.within_match.is_none())
    }

    /// Every global directive for a keyword that accumulates (Port,
    /// AllowUsers, ...), in order.
    pub fn all(&self, keyword: &str) -> Vec<&Directive> {
        let keyword = keyword.to_ascii_lowercase();
        self.directives
            .iter()
            .filter(|d| d.keyword == keyword && d.within_match.is_none())
            .collect()
    }

    /// The ports sshd listens on: every `Port` line, or 22.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .all("port")
            .iter()
            .filter_map(|d| d.value().parse().ok())
            .collect();
        if ports.is_empty() {
            ports.push(22);
        }
        // `ListenAddress host:port` listens on that port whatever `Port` says.
        ports.extend(self.listen_address_ports());
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Ports named by `ListenAddress host:port` lines.
    pub fn listen_address_ports(&self) -> Vec<u16> {
        self.all("listenaddress")
            .iter()
            .filter_map(|d| {
                let addr = d.args.split_whitespace().next().unwrap_or("");
                let port = match addr.strip_prefix('[') {
                    Some(rest) => rest.split_once("]:").map(|(_, p)| p),
                    None if addr.matches(':').count() == 1 => addr.split_once(':').map(|(_, p)| p),
                    None => None,
                };
                port.and_then(|p| p.parse().ok())
            })
            .collect()
    }

    /// The text of a file that was read.
    pub fn text_of(&self, path: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.as_str())
    }

    /// Whether the main file includes batten's drop-in directory before it
    /// sets any of `keywords` (so a drop-in that sorts first wins).
    pub fn dropin_wins(&self, keywords: &[&str]) -> bool {
        let Some(main) = self.text_of(MAIN) else {
            return false;
        };
        for line in main.lines() {
            let Some((keyword, args)) = split_line(line) else {
                continue;
            };
            if keyword == "match" {
                return false;
            }
            if keyword == "include" {
                return args.split_whitespace().any(|w| {
                    let w = w.trim_matches('"');
                    let full = if w.starts_with('/') {
                        w.to_string()
                    } else {
                        format!("/etc/ssh/{w}")
                    };
                    full.rsplit_once('/').is_some_and(|(dir, pat)| {
                        dir == DROPIN_DIR && glob_match(pat, "00-batten.conf")
                    })
                });
            }
            if keywords.iter().any(|k| k.eq_ignore_ascii_case(&keyword)) {
                return false;
            }
        }
        false
    }
}

/// One setting batten wants in effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Keyword as the sshd_config manual spells it.
    pub keyword: &'static str,
    /// Value, already validated (a grammar-checked port or a fixed word).
    pub value: String,
}

/// A file's new text, with the reasons it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEdit {
    /// Root-relative path.
    pub path: String,
    /// Full new contents.
    pub text: String,
    /// What changed, one line each, for the plan and the report.
    pub changes: Vec<String>,
}

/// Whether a directive conflicts with what batten wants: a global line for
/// one of the keywords with another value (every `Port` when batten sets
/// ports), or a Match-block line that would give passwords back.
/// The keyword sshd means: since OpenSSH 8.7 `ChallengeResponseAuthentication`
/// is another name for `KbdInteractiveAuthentication`.
pub fn canonical(keyword: &str) -> String {
    match keyword.to_ascii_lowercase().as_str() {
        "challengeresponseauthentication" => "kbdinteractiveauthentication".to_string(),
        // Renamed in OpenSSH 8.5; the old name still works.
        "pubkeyacceptedkeytypes" => "pubkeyacceptedalgorithms".to_string(),
        k => k.to_string(),
    }
}

/// How much a `PermitRootLogin` value lets in (higher is looser).
fn root_login_rank(value: &str) -> u8 {
    match value {
        "no" => 0,
        "forced-commands-only" => 1,
        "prohibit-password" | "without-password" => 2,
        _ => 3,
    }
}

/// Keywords whose lines add up instead of the first one winning: batten's
/// lines are the whole list, so every other global line of the keyword
/// goes.
fn is_list(keyword: &str) -> bool {
    matches!(
        keyword.to_ascii_lowercase().as_str(),
        "port" | "hostcertificate" | "hostkey"
    )
}

fn conflicts(d: &Directive, settings: &[Setting]) -> bool {
    let wanted: Vec<&Setting> = settings
        .iter()
        .filter(|s| canonical(s.keyword) == canonical(&d.keyword))
        .collect();
    if wanted.is_empty() {
        return false;
    }
    if is_list(&d.keyword) {
        return d.within_match.is_none();
    }
    match &d.within_match {
        None => wanted
            .iter()
            .all(|s| s.value.to_ascii_lowercase() != d.value()),
        // In a Match block only lines that loosen matter.
        Some(_) if d.keyword == "permitrootlogin" => wanted
            .iter()
            .any(|s| root_login_rank(&d.value()) > root_login_rank(&s.value)),
        // The others loosen with `yes`; PubkeyAuthentication is not loosening.
        Some(_) => d.value() == "yes" && d.keyword != "pubkeyauthentication",
    }
}

/// Comment out `line` (1-based) of `text`, saying batten did it.
fn comment_out(text: &str, line: usize) -> String {
    text.split_inclusive('\n')
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                format!("# disabled by batten: {}", l.trim_start())
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// The drop-in's text.
fn render_dropin(settings: &[Setting]) -> String {
    let mut text = String::from(
        "# Written by batten. This file sorts first in sshd_config.d, so these\n\
         # values win (sshd takes the first value it reads). Edit the user-data\n\
         # and run `batten run --force` rather than this file.\n",
    );
    for s in settings {
        text.push_str(&format!("{} {}\n", s.keyword, s.value));
    }
    text
}

/// Plan the edits that make `settings` effective. Pure: works on the text
/// already read.
pub fn plan_edits(config: &SshdConfig, settings: &[Setting]) -> Vec<FileEdit> {
    let keywords: Vec<&str> = settings.iter().map(|s| s.keyword).collect();
    let use_dropin = config.dropin_wins(&keywords);
    let main_first_match = config
        .text_of(MAIN)
        .unwrap_or("")
        .lines()
        .position(|l| split_line(l).is_some_and(|(k, _)| k == "match"))
        .map(|i| i + 1)
        .unwrap_or(usize::MAX);
    let mut edits: Vec<FileEdit> = Vec::new();
    let edit_of = |path: &str, edits: &mut Vec<FileEdit>| -> usize {
        if let Some(i) = edits.iter().position(|e| e.path == path) {
            return i;
        }
        let text = config.text_of(path).unwrap_or("").to_string();
        edits.push(FileEdit {
            path: path.to_string(),
            text,
            changes: Vec::new(),
        });
        edits.len() - 1
    };
    // Lines in other files that would compete: commented out, and said so.
    for d in &config.directives {
        if d.file == DROPIN && use_dropin {
            continue;
        }
        if !conflicts(d, settings) {
            continue;
        }
        // In the main file (when edited in place) the global lines before
        // the first Match are changed in place instead, below; lines after
        // a `Match all` are global too and are commented out here.
        if !use_dropin && d.file == MAIN && d.within_match.is_none() && d.line < main_first_match {
            continue;
        }
        let i = edit_of(&d.file, &mut edits);
        edits[i].text = comment_out(&edits[i].text, d.line);
        let context = d
            .within_match
            .as_ref()
            .map(|m| format!(" (in Match {m})"))
            .unwrap_or_default();
        edits[i].changes.push(format!(
            "{}:{}: disabled `{} {}`{context}",
            d.file, d.line, d.keyword, d.args
        ));
    }
    if use_dropin {
        let text = render_dropin(settings);
        if config.text_of(DROPIN) != Some(text.as_str()) {
            let i = edit_of(DROPIN, &mut edits);
            edits[i].text = text;
            edits[i]
                .changes
                .push(format!("{DROPIN}: batten's settings"));
        }
    } else {
        let i = edit_of(MAIN, &mut edits);
        let (text, changes) = edit_main_in_place(&edits[i].text, settings);
        edits[i].text = text;
        edits[i].changes.extend(changes);
    }
    // Only files whose text really changes.
    edits.retain(|e| config.text_of(&e.path) != Some(e.text.as_str()));
    edits
}

/// Set each keyword in the main file: change its first global line (and
/// any later global duplicates), or insert it before the first Match block.
fn edit_main_in_place(text: &str, settings: &[Setting]) -> (String, Vec<String>) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let first_match = lines
        .iter()
        .position(|l| split_line(l).is_some_and(|(k, _)| k == "match"))
        .unwrap_or(lines.len());
    let mut changes = Vec::new();
    let mut inserts: Vec<String> = Vec::new();
    for s in settings {
        let key = s.keyword.to_ascii_lowercase();
        let wanted = format!("{} {}", s.keyword, s.value);
        let global: Vec<usize> = (0..first_match)
            .filter(|&i| split_line(&lines[i]).is_some_and(|(k, _)| k == key))
            .collect();
        if is_list(&key) {
            continue; // lists are written together below
        }
        match global.first() {
            Some(&i) => {
                if split_line(&lines[i]).map(|(_, a)| a.to_ascii_lowercase())
                    != Some(s.value.to_ascii_lowercase())
                {
                    changes.push(format!(
                        "{MAIN}:{}: `{}` -> `{wanted}`",
                        i + 1,
                        lines[i].trim()
                    ));
                    lines[i] = wanted.clone();
                }
                for &j in &global[1..] {
                    changes.push(format!(
                        "{MAIN}:{}: disabled duplicate `{}`",
                        j + 1,
                        lines[j].trim()
                    ));
                    lines[j] = format!("# disabled by batten: {}", lines[j].trim_start());
                }
            }
            None => {
                changes.push(format!("{MAIN}: added `{wanted}`"));
                inserts.push(wanted);
            }
        }
    }
    // An alias spelled differently (ChallengeResponseAuthentication for
    // KbdInteractiveAuthentication) takes the wanted value too, keeping its
    // own name, since sshd uses whichever comes first.
    for (i, line) in lines.iter_mut().enumerate().take(first_match) {
        let Some((k, args)) = split_line(line) else {
            continue;
        };
        for s in settings {
            let same_option =
                canonical(&k) == canonical(s.keyword) && k != s.keyword.to_ascii_lowercase();
            if same_option && !args.eq_ignore_ascii_case(&s.value) {
                let own = line
                    .trim()
                    .split(|c: char| c.is_whitespace() || c == '=')
                    .next()
                    .unwrap_or("")
                    .to_string();
                changes.push(format!(
                    "{MAIN}:{}: `{}` -> `{own} {}`",
                    i + 1,
                    line.trim(),
                    s.value
                ));
                *line = format!("{own} {}", s.value);
            }
        }
    }
    let mut lists: Vec<&'static str> = settings
        .iter()
        .map(|s| s.keyword)
        .filter(|k| is_list(k))
        .collect();
    lists.sort_unstable();
    lists.dedup();
    for keyword in lists {
        let key = keyword.to_ascii_lowercase();
        let existing: Vec<usize> = (0..first_match)
            .filter(|&i| split_line(&lines[i]).is_some_and(|(k, _)| k == key))
            .collect();
        let current: Vec<String> = existing
            .iter()
            .filter_map(|&i| split_line(&lines[i]).map(|(_, a)| a))
            .collect();
        let wanted: Vec<String> = settings
            .iter()
            .filter(|s| s.keyword == keyword)
            .map(|s| s.value.clone())
            .collect();
        if current != wanted {
            for &i in &existing {
                lines[i] = format!("# disabled by batten: {}", lines[i].trim_start());
            }
            changes.push(format!("{MAIN}: {keyword} {}", wanted.join(", ")));
            inserts.extend(wanted.iter().map(|v| format!("{keyword} {v}")));
        }
    }
    if !inserts.is_empty() {
        let mut block = vec!["# Added by batten".to_string()];
        block.extend(inserts);
        let at = first_match.min(lines.len());
        lines.splice(at..at, block);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    (out, changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::host::root::scratch_root as root_with;

    fn settings() -> Vec<Setting> {
        vec![
            Setting {
                keyword: "PasswordAuthentication",
                value: "no".into(),
            },
            Setting {
                keyword: "KbdInteractiveAuthentication",
                value: "no".into(),
            },
            Setting {
                keyword: "PermitRootLogin",
                value: "prohibit-password".into(),
            },
        ]
    }

    const DEBIAN_MAIN: &str = "Include /etc/ssh/sshd_config.d/*.conf\n\n#Port 22\nKbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n";

    #[test]
    fn order_first_value_and_match() {
        let (_d, root) = root_with(&[
            (MAIN, DEBIAN_MAIN),
            (
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
                "PasswordAuthentication yes\n",
            ),
            (
                "/etc/ssh/sshd_config.d/10-a.conf",
                "PasswordAuthentication=no\nMatch User bob\n  PasswordAuthentication yes\n",
            ),
            (
                "/etc/ssh/sshd_config.d/.hidden.conf",
                "PasswordAuthentication yes\n",
            ),
            (
                "/etc/ssh/sshd_config.d/README",
                "PasswordAuthentication yes\n",
            ),
        ]);
        let c = SshdConfig::load(&root).unwrap();
        let eff = c.effective("passwordauthentication").unwrap();
        assert_eq!(
            (eff.file.as_str(), eff.line, eff.value().as_str()),
            ("/etc/ssh/sshd_config.d/10-a.conf", 1, "no")
        );
        let in_match: Vec<_> = c
            .directives
            .iter()
            .filter(|d| d.within_match.is_some())
            .collect();
        assert_eq!(in_match.len(), 1, "the Match block ends with its file");
        assert_eq!(c.effective("usepam").unwrap().file, MAIN);
        assert_eq!(c.ports(), vec![22]);
        assert!(c.dropin_wins(&["PasswordAuthentication"]));
    }

    #[test]
    fn debian_layout_gets_a_dropin_and_cloud_init_file_neutralised() {
        let (_d, root) = root_with(&[
            (MAIN, DEBIAN_MAIN),
            (
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
                "PasswordAuthentication yes\n",
            ),
        ]);
        let c = SshdConfig::load(&root).unwrap();
        let edits = plan_edits(&c, &settings());
        let paths: Vec<&str> = edits.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/etc/ssh/sshd_config.d/50-cloud-init.conf", DROPIN]);
        assert_eq!(
            edits[0].text,
            "# disabled by batten: PasswordAuthentication yes\n"
        );
        assert!(edits[1].text.ends_with("PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"));
        // The main file's own `KbdInteractiveAuthentication no` agrees: untouched.
        assert!(!paths.contains(&MAIN));
    }

    #[test]
    fn main_file_without_include_is_edited_in_place() {
        let main = "# header\nPermitRootLogin yes\nPasswordAuthentication yes\nPasswordAuthentication no\nMatch Address 198.51.100.0/24\n    PasswordAuthentication yes\n    X11Forwarding no\n";
        let (_d, root) = root_with(&[(MAIN, main)]);
        let c = SshdConfig::load(&root).unwrap();
        let edits = plan_edits(&c, &settings());
        assert_eq!(edits.len(), 1);
        assert_eq!(
            edits[0].text,
            "# header\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n# disabled by batten: PasswordAuthentication no\n# Added by batten\nKbdInteractiveAuthentication no\nMatch Address 198.51.100.0/24\n# disabled by batten: PasswordAuthentication yes\n    X11Forwarding no\n"
        );
    }

    #[test]
    fn settings_before_the_include_mean_in_place_editing() {
        let main = "PasswordAuthentication yes\nInclude /etc/ssh/sshd_config.d/*.conf\n";
        let (_d, root) = root_with(&[(MAIN, main)]);
        let c = SshdConfig::load(&root).unwrap();
        assert!(!c.dropin_wins(&["PasswordAuthentication"]));
        let edits = plan_edits(&c, &settings());
        assert_eq!(edits[0].path, MAIN);
        assert!(
            edits[0].text.starts_with("PasswordAuthentication no\n"),
            "{}",
            edits[0].text
        );
    }

    #[test]
    fn ports_replace_every_other_port_line() {
        let (_d, root) = root_with(&[
            (MAIN, DEBIAN_MAIN),
            ("/etc/ssh/sshd_config.d/20-port.conf", "Port 2222\n"),
        ]);
        let c = SshdConfig::load(&root).unwrap();
        assert_eq!(c.ports(), vec![2222]);
        let mut s = settings();
        s.push(Setting {
            keyword: "Port",
            value: "22022".into(),
        });
        let edits = plan_edits(&c, &s);
        assert_eq!(edits[0].text, "# disabled by batten: Port 2222\n");
        assert!(edits[1].text.contains("Port 22022\n"));
    }

    #[test]
    fn converged_config_plans_nothing() {
        let (d, root) = root_with(&[(MAIN, DEBIAN_MAIN)]);
        let c = SshdConfig::load(&root).unwrap();
        let edits = plan_edits(&c, &settings());
        for e in &edits {
            let p = d.path().join(e.path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, &e.text).unwrap();
        }
        let c = SshdConfig::load(&root).unwrap();
        assert_eq!(plan_edits(&c, &settings()), vec![]);
    }

    #[test]
    fn aliases_match_all_and_looser_root_login_in_match() {
        let main = "ChallengeResponseAuthentication yes\nMatch Address 198.51.100.0/24\n  PermitRootLogin prohibit-password\nMatch all\nPasswordAuthentication yes\n";
        let (_d, root) = root_with(&[(MAIN, main)]);
        let c = SshdConfig::load(&root).unwrap();
        let mut s = settings();
        s[2].value = "no".into();
        let edits = plan_edits(&c, &s);
        let text = &edits[0].text;
        assert!(
            text.starts_with("ChallengeResponseAuthentication no\n"),
            "{text}"
        );
        assert!(
            text.contains("# disabled by batten: PermitRootLogin prohibit-password"),
            "{text}"
        );
        assert!(
            text.contains("# disabled by batten: PasswordAuthentication yes"),
            "{text}"
        );
    }

    #[test]
    fn in_place_ports_converge() {
        let (d, root) = root_with(&[(MAIN, "Port 22\nPasswordAuthentication yes\n")]);
        let mut s = settings();
        s.push(Setting {
            keyword: "Port",
            value: "2222".into(),
        });
        let edits = plan_edits(&SshdConfig::load(&root).unwrap(), &s);
        std::fs::write(d.path().join("etc/ssh/sshd_config"), &edits[0].text).unwrap();
        let c = SshdConfig::load(&root).unwrap();
        assert_eq!(c.ports(), vec![2222], "{}", edits[0].text);
        assert_eq!(plan_edits(&c, &s), vec![], "a second run changes nothing");
    }

    #[test]
    fn host_certificates_are_a_list_in_place_and_in_the_dropin() {
        let certs = [
            "/etc/ssh/ssh_host_ecdsa_key-cert.pub",
            "/etc/ssh/ssh_host_ed25519_key-cert.pub",
        ];
        let mut s = settings();
        s.extend(certs.iter().map(|c| Setting {
            keyword: "HostCertificate",
            value: c.to_string(),
        }));
        // In place: both lines, the image's own certificate line gone.
        let (d, root) = root_with(&[(
            MAIN,
            "HostCertificate /etc/ssh/old-cert.pub\nPasswordAuthentication yes\n",
        )]);
        let edits = plan_edits(&SshdConfig::load(&root).unwrap(), &s);
        std::fs::write(d.path().join("etc/ssh/sshd_config"), &edits[0].text).unwrap();
        let c = SshdConfig::load(&root).unwrap();
        let listed: Vec<String> = c
            .all("hostcertificate")
            .iter()
            .map(|d| d.args.clone())
            .collect();
        assert_eq!(listed, certs, "{}", edits[0].text);
        assert_eq!(plan_edits(&c, &s), vec![], "a second run changes nothing");
        // With the drop-in: both lines there, another file's line disabled.
        let (_d, root) = root_with(&[
            (MAIN, DEBIAN_MAIN),
            (
                "/etc/ssh/sshd_config.d/50-image.conf",
                "HostCertificate /etc/ssh/old-cert.pub\n",
            ),
        ]);
        let edits = plan_edits(&SshdConfig::load(&root).unwrap(), &s);
        let dropin = edits.iter().find(|e| e.path == DROPIN).unwrap();
        for cert in certs {
            assert!(
                dropin.text.contains(&format!("HostCertificate {cert}\n")),
                "{}",
                dropin.text
            );
        }
        let image = edits
            .iter()
            .find(|e| e.path.ends_with("50-image.conf"))
            .unwrap();
        assert_eq!(
            image.text,
            "# disabled by batten: HostCertificate /etc/ssh/old-cert.pub\n"
        );
    }

    #[test]
    fn listen_address_ports_count() {
        let (_d, root) = root_with(&[(
            MAIN,
            "ListenAddress 0.0.0.0:2200\nListenAddress [::]:2201\nListenAddress 198.51.100.1\n",
        )]);
        assert_eq!(
            SshdConfig::load(&root).unwrap().ports(),
            vec![22, 2200, 2201]
        );
    }

    #[test]
    fn lines_and_globs() {
        assert_eq!(
            split_line("  PasswordAuthentication=no # c"),
            Some(("passwordauthentication".into(), "no # c".into()))
        );
        assert_eq!(split_line("# PasswordAuthentication yes"), None);
        assert!(glob_match("*.conf", "50-cloud-init.conf"));
        assert!(!glob_match("*.conf", ".x.conf"));
        assert!(!glob_match("*.conf", "README"));
        assert!(glob_match("0?-*.conf", "00-batten.conf"));
    }
}
