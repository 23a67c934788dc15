//! Living beside cloud-init (DESIGN.md): when the root has cloud-init,
//! batten writes `/etc/cloud/cloud.cfg.d/90-batten.cfg` so that cloud-init
//! leaves host keys, root's and the default user's keys, and sshd's password
//! setting to batten, and runs every other module as before.
//!
//! Only the module lists do that reliably: every per-module setting in
//! cloud.cfg.d (`ssh_deletekeys`, `ssh_pwauth`) is overridden by the same
//! user-data batten reads. So the drop-in carries the image's own
//! `cloud_init_modules` and `cloud_config_modules` (lists replace when
//! cloud-init merges its configuration) minus `ssh` and `set_passwords`,
//! spelled as the image spells them, plus `ssh_deletekeys: false` as a
//! second guard. What that costs is in the README: `chpasswd:` and
//! `password:` are not applied, datasource keys for providers batten does
//! not know are not installed.

use crate::host::root::{Root, RootError};
use crate::input::validate::is_batten_module;
use crate::input::yaml::{self, Node, Value};
use crate::plan::{Action, PlanError};

/// batten's drop-in.
pub const DROPIN: &str = "/etc/cloud/cloud.cfg.d/90-batten.cfg";

/// The module lists batten rewrites (the final stage's modules only read).
const LISTS: &[&str] = &["cloud_init_modules", "cloud_config_modules"];

fn word_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// One entry of a module list, rendered back as YAML: a name, or a
/// `[name, frequency, ...]` list. `None` for entries batten cannot render
/// safely (they are reported and left out).
fn entry(node: &Node) -> Option<(String, String)> {
    match &node.value {
        Value::Str(name) if word_ok(name) => Some((name.clone(), name.clone())),
        Value::Seq(items) => {
            let words: Vec<String> = items.iter().filter_map(Node::scalar_text).collect();
            (words.len() == items.len() && !words.is_empty() && words.iter().all(|w| word_ok(w)))
                .then(|| (words[0].clone(), format!("[{}]", words.join(", "))))
        }
        _ => None,
    }
}

/// Whether cloud-init is installed and enabled in the root.
pub fn present(root: &Root) -> Result<bool, RootError> {
    Ok(root.metadata("/etc/cloud/cloud.cfg")?.is_some()
        && root.metadata("/etc/cloud/cloud-init.disabled")?.is_none())
}

/// The drop-in's text for this root, or `None` when its lists have neither
/// module (nothing to take over). Lists come from cloud.cfg and then
/// cloud.cfg.d/*.cfg in order, a later file's list replacing an earlier one.
pub fn dropin_text(root: &Root, notes: &mut Vec<String>) -> Result<Option<String>, RootError> {
    let mut files = vec!["/etc/cloud/cloud.cfg".to_string()];
    let mut names = root.list_dir("/etc/cloud/cloud.cfg.d")?.unwrap_or_default();
    names.sort();
    files.extend(
        names
            .into_iter()
            .filter(|n| n.ends_with(".cfg") && format!("/etc/cloud/cloud.cfg.d/{n}") != DROPIN)
            .map(|n| format!("/etc/cloud/cloud.cfg.d/{n}")),
    );
    let mut lists: Vec<(&str, Node)> = Vec::new();
    for file in &files {
        let Some(text) = root.read_to_string(file)? else {
            continue;
        };
        let Ok(node) = yaml::parse(&text) else {
            notes.push(format!(
                "{file} is not YAML batten can read; its module lists are ignored"
            ));
            continue;
        };
        let after_ours = file.as_str() > DROPIN;
        for list in LISTS {
            if let Some(v) = node.get(list) {
                let brings_back = matches!(&v.value, Value::Seq(items) if items.iter().any(|i| entry(i).is_some_and(|(n, _)| is_batten_module(&n))));
                if after_ours && brings_back {
                    notes.push(format!(
                        "WARNING: {file} sorts after {DROPIN} and its {list} runs ssh or set_passwords, so cloud-init will redo host keys or sshd's password setting; remove them from that file"
                    ));
                }
                lists.retain(|(l, _)| l != list);
                lists.push((list, v.clone()));
            }
        }
        // Render in cloud.cfg's order, whichever file set a list last.
        lists.sort_by_key(|(l, _)| LISTS.iter().position(|x| x == l));
    }
    let mut text = String::from(
        "#cloud-config\n\
         # Written by batten: the image's module lists without `ssh` and\n\
         # `set_passwords`, whose work (host keys, root's and the default user's\n\
         # keys, sshd's password setting) batten does. Everything else runs.\n",
    );
    let mut changed = false;
    for (list, node) in &lists {
        let Value::Seq(items) = &node.value else {
            continue;
        };
        let mut kept = Vec::new();
        for item in items {
            match entry(item) {
                Some((name, _)) if is_batten_module(&name) => changed = true,
                Some((_, rendered)) => kept.push(rendered),
                None => notes.push(format!(
                    "{list}: an entry batten cannot copy was left out of {DROPIN}"
                )),
            }
        }
        text.push_str(&format!("{list}:\n"));
        for k in kept {
            text.push_str(&format!("  - {k}\n"));
        }
    }
    text.push_str("ssh_deletekeys: false\n");
    Ok(changed.then_some(text))
}

/// With cloud-init in the root, the drop-in that leaves SSH to batten.
pub fn plan(
    root: &Root,
    ud: &crate::input::model::UserData,
    notes: &mut Vec<String>,
) -> Result<Option<Action>, PlanError> {
    if !present(root)? {
        return Ok(None);
    }
    for key in ["password", "chpasswd"] {
        if ud.left_to_cloud_init.iter().any(|k| k == key) {
            notes.push(format!(
                "`{key}` is NOT applied: it belongs to cloud-init's set_passwords module, which batten switches off so that sshd's password setting stays batten's; use per-user hashed_passwd"
            ));
        }
    }
    let Some(text) = dropin_text(root, notes)? else {
        return Ok(None);
    };
    Action::write_if_changed(
        root,
        DROPIN,
        text.into_bytes(),
        crate::host::root::Owner {
            uid: 0,
            gid: 0,
            mode: 0o644,
        },
        false,
        "cloud-init leaves host keys, SSH keys and sshd's password setting to batten",
    )
    .map_err(PlanError::Root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::validate::module_key;

    const DEBIAN_12: &str = "users:\n- default\ndisable_root: true\ncloud_init_modules:\n - migrator\n - seed_random\n - bootcmd\n - write-files\n - growpart\n - resizefs\n - disk_setup\n - mounts\n - set_hostname\n - update_hostname\n - update_etc_hosts\n - ca-certs\n - rsyslog\n - users-groups\n - ssh\ncloud_config_modules:\n - snap\n - ssh-import-id\n - keyboard\n - locale\n - set-passwords\n - grub-dpkg\n - apt-pipelining\n - apt-configure\n - ntp\n - timezone\n - disable-ec2-metadata\n - runcmd\n - byobu\ncloud_final_modules:\n - keys-to-console\n";

    use crate::host::root::scratch_root as root_with;

    #[test]
    fn debian_12_lists_lose_ssh_and_set_passwords() {
        let (_d, root) = root_with(&[("/etc/cloud/cloud.cfg", DEBIAN_12)]);
        assert!(present(&root).unwrap());
        let text = dropin_text(&root, &mut Vec::new()).unwrap().unwrap();
        assert!(text.starts_with("#cloud-config\n"));
        assert!(
            text.contains("  - users-groups\ncloud_config_modules:\n  - snap\n  - ssh-import-id\n"),
            "{text}"
        );
        assert!(
            !text.contains("  - ssh\n") && !text.contains("set-passwords"),
            "{text}"
        );
        assert!(
            !text.contains("keys-to-console"),
            "the final list is left alone"
        );
        assert!(text.ends_with("ssh_deletekeys: false\n"));
    }

    #[test]
    fn later_dropins_replace_lists_and_forms_are_kept() {
        let (_d, root) = root_with(&[
            ("/etc/cloud/cloud.cfg", DEBIAN_12),
            (
                "/etc/cloud/cloud.cfg.d/50-image.cfg",
                "cloud_init_modules:\n - [bootcmd, always]\n - cc_ssh.py\n - {name: weird}\n",
            ),
        ]);
        let mut notes = Vec::new();
        let text = dropin_text(&root, &mut notes).unwrap().unwrap();
        assert!(
            text.contains("cloud_init_modules:\n  - [bootcmd, always]\ncloud_config_modules:"),
            "{text}"
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    #[test]
    fn a_later_file_that_brings_ssh_back_is_reported() {
        let (_d, root) = root_with(&[
            ("/etc/cloud/cloud.cfg", DEBIAN_12),
            (
                "/etc/cloud/cloud.cfg.d/99_image.cfg",
                "cloud_init_modules: [bootcmd, ssh]\n",
            ),
        ]);
        let mut notes = Vec::new();
        dropin_text(&root, &mut notes).unwrap();
        assert!(
            notes.iter().any(|n| n.contains("99_image.cfg sorts after")),
            "{notes:?}"
        );
    }

    #[test]
    fn disabled_or_absent_cloud_init() {
        let (_d, root) = root_with(&[
            ("/etc/cloud/cloud.cfg", DEBIAN_12),
            ("/etc/cloud/cloud-init.disabled", ""),
        ]);
        assert!(!present(&root).unwrap());
        let (_d, root) = root_with(&[("/etc/cloud/cloud.cfg", "cloud_init_modules: [bootcmd]\n")]);
        assert_eq!(dropin_text(&root, &mut Vec::new()).unwrap(), None);
        assert_eq!(module_key("cc_set-passwords.py"), "set_passwords");
    }
}
