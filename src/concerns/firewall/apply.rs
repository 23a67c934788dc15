//! The firewall's own step: loading the files on the live system (read
//! back, and undone unless SSH stays open), or checking an image's.

use super::backend::Backend;
use super::of;
use crate::host::exec::{self, ExecError, Runner};
use crate::host::root::Root;
use crate::plan::FirewallKind as Kind;
use crate::plan::StepError;

/// Carry out `Action::Firewall`: on the live system load the files with
/// the previous ruleset kept, read the result back from the kernel, and put
/// the previous one back unless every SSH port is accepted; for an image,
/// check the files with the tools.
pub fn apply(
    runner: &dyn Runner,
    root: &Root,
    kind: Kind,
    files: &[String],
    ssh_ports: &[u16],
) -> Result<bool, StepError> {
    let backend = of(kind);
    if !root.is_host() {
        return check(runner, root, backend, files).map(|()| false);
    }
    let paths: Vec<std::path::PathBuf> = files.iter().map(|f| root.host_path(f)).collect();
    let changed = backend.load(runner, &paths, ssh_ports)?;
    // Modules are the whole machine's: a run in a network namespace of its
    // own (a test harness) or in a container leaves them alone.
    if crate::host::netns::machine_wide() {
        let modules = backend.unused_modules();
        if !modules.is_empty() {
            let later = crate::host::after_sshd::Later::UnloadModules {
                modules: modules.iter().map(|m| m.to_string()).collect(),
            };
            let _ = crate::host::after_sshd::defer_or_do(runner, later);
        }
    } else {
        log::info!(
            "in a network namespace of its own or a container: the kernel's modules are the machine's, none is unloaded"
        );
    }
    Ok(changed)
}

/// Check an image's files with its own tools, without loading them (see
/// `exec`): `nft -c`, `iptables-restore --test`. A tool that cannot run
/// here leaves the check to the machine's first boot, which loads the files
/// and reads the result back before anything is final.
fn check(
    runner: &dyn Runner,
    root: &Root,
    backend: &dyn Backend,
    files: &[String],
) -> Result<(), StepError> {
    for ((program, args), file) in backend.image_checks().iter().zip(files) {
        let text = root
            .read(file)?
            .ok_or_else(|| format!("{file} is missing after it was written"))?;
        let run = exec::Check {
            program,
            args,
            stdin: Some(&text),
            config_dirs: &[],
        };
        match runner.check(root, &run) {
            Ok(_) => {}
            Err(ExecError::Foreign { why, .. }) => {
                exec::static_only(&format!("{program} {} < {file}", args.join(" ")), &why)
            }
            Err(e) => return Err(format!("{file}: {e}").into()),
        }
    }
    Ok(())
}
