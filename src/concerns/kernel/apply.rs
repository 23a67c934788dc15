//! Loading the sysctl file into the running kernel (live system only).
//!
//! procps' `sysctl -p FILE` sets every key it can, and exits 1 when one
//! failed, a key this kernel lacks included (procps-ng 4.0.2 prints
//! `sysctl: cannot stat /proc/sys/...: No such file or directory`; the `-`
//! prefix systemd-sysctl takes for "ignore a failure" does not change its
//! exit status). A key a kernel lacks (Yama not built in, an older kernel)
//! is therefore read from its message and reported, never a failed run;
//! the boot's systemd-sysctl skips it the same way. A key the kernel
//! refuses is reported too, and verify, which reads every value back, says
//! which ones are not as batten wants.
//!
//! Only `net.*` settings belong to a network namespace; the others
//! (`kernel.*`, `fs.*`, `dev.*`) are the one kernel's that everything on
//! the machine runs on. A
//! run whose network namespace is not PID 1's (`ip netns exec`, a test
//! harness, a container inside a host's namespaces) therefore sets only
//! the `net.*` ones, with `sysctl -w`, and leaves the rest to the machine
//! the kernel belongs to.

use std::path::Path;

use log::{info, warn};

use super::{SETTINGS, Setting};
use crate::host::exec::{Call, ExecError, Runner};
use crate::host::root::Root;
use crate::plan::StepError;

/// What `sysctl -p` said about the keys it could not set.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Keys this kernel has no setting for.
    pub missing: Vec<String>,
    /// Every other complaint, as sysctl worded it.
    pub refused: Vec<String>,
}

impl Loaded {
    /// Read sysctl's standard error.
    pub fn from_stderr(stderr: &str) -> Loaded {
        let mut loaded = Loaded::default();
        for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let missing = line
                .strip_prefix("sysctl: cannot stat /proc/sys/")
                .and_then(|rest| rest.strip_suffix(": No such file or directory"));
            match missing {
                Some(path) => loaded.missing.push(path.replace('/', ".")),
                None => loaded.refused.push(line.to_string()),
            }
        }
        loaded
    }
}

/// Whether every setting is batten's to load: this thread (sysctl is its
/// child) is in the machine's first network namespace and not in a
/// container; see [`crate::host::netns::machine_wide`].
pub fn own_machine() -> bool {
    crate::host::netns::machine_wide()
}

/// The settings that belong to a network namespace.
pub fn namespaced() -> Vec<Setting> {
    SETTINGS
        .iter()
        .copied()
        .filter(|s| s.key.starts_with("net."))
        .collect()
}

/// `sysctl -p FILE` (a host path) through `runner`. `Err` only when sysctl
/// could not run at all.
pub fn load_file(runner: &dyn Runner, file: &Path) -> Result<Loaded, ExecError> {
    let file = file.to_string_lossy();
    sysctl(runner, &["-p", &file])
}

/// `sysctl -w KEY=VALUE...` for `settings`, through `runner`.
pub fn load_settings(runner: &dyn Runner, settings: &[Setting]) -> Result<Loaded, ExecError> {
    let pairs: Vec<String> = settings
        .iter()
        .map(|s| format!("{}={}", s.key, s.value))
        .collect();
    let mut args = vec!["-w"];
    args.extend(pairs.iter().map(String::as_str));
    sysctl(runner, &args)
}

fn sysctl(runner: &dyn Runner, args: &[&str]) -> Result<Loaded, ExecError> {
    let call = Call {
        program: "sysctl",
        args,
        stdin: None,
    };
    let out = runner.run(&call)?;
    let loaded = Loaded::from_stderr(&out.stderr);
    if !out.success && loaded.missing.is_empty() && loaded.refused.is_empty() {
        return Ok(Loaded {
            refused: vec![format!("{} failed without saying why", call.line())],
            ..loaded
        });
    }
    Ok(loaded)
}

/// Carry out `Action::LoadSysctl`: load the file on the running system,
/// and say what the kernel did not take. Nothing for an image.
pub fn load(runner: &dyn Runner, root: &Root, path: &str) -> Result<bool, StepError> {
    if !root.is_host() {
        return Ok(false);
    }
    let own = own_machine();
    let loaded = if own {
        load_file(runner, &root.host_path(path))
    } else {
        info!(
            "this run is in a network namespace of its own: only the net.* settings are loaded; the others (kernel.*, fs.*, dev.*) belong to the machine's own kernel"
        );
        load_settings(runner, &namespaced())
    };
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(ExecError::Missing(_)) => {
            warn!(
                "sysctl is not installed, so {path} takes effect at the next boot (systemd-sysctl loads it)"
            );
            return Ok(false);
        }
        Err(e) => return Err(StepError::Failed(format!("sysctl -p {path}: {e}"))),
    };
    if !loaded.missing.is_empty() {
        info!(
            "this kernel has no {}: left as they are (verify names them)",
            loaded.missing.join(", ")
        );
    }
    for refused in &loaded.refused {
        warn!("{path}: {refused}; verify reads every value back");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::exec::fake::Fake;

    #[test]
    fn missing_keys_are_told_apart_from_refusals() {
        let l = Loaded::from_stderr(
            "sysctl: cannot stat /proc/sys/kernel/yama/ptrace_scope: No such file or directory\n\
             sysctl: permission denied on key \"kernel.kptr_restrict\"\n",
        );
        assert_eq!(l.missing, ["kernel.yama.ptrace_scope"]);
        assert_eq!(
            l.refused,
            ["sysctl: permission denied on key \"kernel.kptr_restrict\""]
        );
    }

    #[test]
    fn a_kernel_without_a_key_is_no_failure_and_an_image_loads_nothing() {
        let fake = Fake::new(|_| {
            Err(
                "sysctl: cannot stat /proc/sys/kernel/yama/ptrace_scope: No such file or directory"
                    .into(),
            )
        });
        let l = load_file(&fake, Path::new("/etc/sysctl.d/zz-batten.conf")).unwrap();
        assert_eq!(l.missing, ["kernel.yama.ptrace_scope"]);
        assert_eq!(fake.calls(), ["sysctl -p /etc/sysctl.d/zz-batten.conf"]);
        let (_d, root) = crate::host::root::scratch_root(&[]);
        assert!(!load(&fake, &root, super::super::SYSCTL_FILE).unwrap());
        assert_eq!(
            fake.calls().len(),
            1,
            "--root never touches the running kernel"
        );
    }
}
