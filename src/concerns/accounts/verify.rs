//! Checking the accounts' part: the sudo rules as sudo itself reads them.

use crate::concerns::accounts::{self};
use crate::concerns::report::{Inputs, Report, Status};

/// The sudo rules as sudo reads them (`visudo -c`: the main file and what
/// it includes), where batten wrote any: a rule sudo refuses locks every
/// rule out.
fn sudo(inp: &Inputs, r: &mut Report) {
    let users = accounts::resolve_users(inp.user_data, inp.root, inp.distro, &mut Vec::new());
    if !users
        .iter()
        .any(|u| u.sudo.as_ref().is_some_and(|s| !s.is_empty()))
    {
        return;
    }
    // This machine's visudo would read this machine's /etc/sudoers.
    if let crate::host::exec::Found::Host(_) = crate::host::exec::locate(inp.root, "visudo")
        && !inp.root.is_host()
    {
        r.add(
            "sudo.config",
            Status::Skip,
            "visudo -c",
            "the image has no visudo",
        );
        return;
    }
    let check = crate::host::exec::Check {
        program: "visudo",
        args: &["-c"],
        stdin: None,
        config_dirs: &[],
    };
    let (status, why) = match inp.runner.check(inp.root, &check) {
        Ok(_) => (Status::Pass, "sudo accepts its rules".to_string()),
        Err(e @ crate::host::exec::ExecError::Foreign { .. }) => (
            Status::Warn,
            format!("{e}; the machine's first boot checks it live before the seal"),
        ),
        Err(crate::host::exec::ExecError::Missing(p)) => {
            (Status::Skip, format!("{p} is not installed here"))
        }
        Err(e) => (Status::Fail, e.to_string()),
    };
    r.add("sudo.config", status, "visudo -c", why);
}

/// Every check of the accounts' part.
pub fn verify(inp: &Inputs, r: &mut Report) {
    sudo(inp, r);
}
