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
    // own (a test harness, a container) leaves them alone.
    if crate::host::netns::first_network_namespace() {
        unload_unused(runner, backend);
    } else {
        log::info!(
            "in a network namespace of its own: the kernel's modules are the machine's, none is unloaded"
        );
    }
    Ok(changed)
}

/// Unload the other packet filter's modules that the boot loaded and
/// nothing uses (Lynis FIRE-4502/FIRE-4512: see
/// [`Backend::unused_modules`]); from the next boot on the modprobe file
/// keeps them out. `modprobe -r` leaves a module that holds rules (another
/// program's legacy iptables tables) or is built in, and that is no
/// failure of the firewall's: it is only logged.
fn unload_unused(runner: &dyn Runner, backend: &dyn Backend) {
    for module in backend.unused_modules() {
        let call = exec::Call {
            program: "modprobe",
            args: &["-r", module],
            stdin: None,
        };
        match runner.run(&call) {
            Ok(out) if out.success => log::info!("unloaded the unused {module} module"),
            Ok(out) => log::info!("{module} stays loaded: {}", out.stderr.trim()),
            Err(e) => log::info!("{module} stays loaded: {e}"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::exec::fake::Fake;

    #[test]
    fn the_unused_legacy_module_is_unloaded_and_a_refusal_is_no_failure() {
        // Lynis FIRE-4512: ip_tables loaded by systemd, beside nftables.
        let fake = Fake::agreeing();
        unload_unused(&fake, of(Kind::Nftables));
        assert_eq!(fake.calls(), ["modprobe -r ip_tables"]);
        let busy = Fake::new(|_| Err("modprobe: FATAL: Module ip_tables is in use.".into()));
        unload_unused(&busy, of(Kind::Nftables));
        assert_eq!(busy.calls().len(), 1);
        let legacy = Fake::agreeing();
        unload_unused(&legacy, of(Kind::Iptables));
        assert!(legacy.calls().is_empty());
    }
}
