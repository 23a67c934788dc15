//! What a firewall tool must do for batten, so that the choice between
//! nftables and iptables is made once ([`super::of`]) and everything after
//! asks the backend instead of matching on which one it is.

use std::path::PathBuf;

use super::rules::Ruleset;
use crate::host::distro::Family;
use crate::host::exec::{Call, ExecError, Runner};

/// Where the distribution loads rules from at boot, and the unit that
/// does it.
pub struct Persist {
    /// (root-relative path, which text: "nft", "v4" or "v6").
    pub files: Vec<(&'static str, &'static str)>,
    /// The systemd unit that loads them at boot.
    pub unit: &'static str,
}

/// One firewall tool: its files, where they live, how an image's are
/// checked and how the live ones are loaded and read back.
pub trait Backend: Sync {
    /// The programs the root needs for this backend.
    fn programs(&self) -> &'static [&'static str];
    /// The package that loads the rules at boot, for the note that asks
    /// for it.
    fn boot_package(&self) -> &'static str;
    /// The text of each file: ("nft", text), or ("v4", ..) and ("v6", ..).
    fn render(&self, rules: &Ruleset) -> Vec<(&'static str, String)>;
    /// The distribution's place for the files.
    fn persist(&self, family: Family) -> Persist;
    /// For each file, in `persist`'s order, the check that reads it on
    /// standard input without loading it (an image's files).
    fn image_checks(&self) -> &'static [(&'static str, &'static [&'static str])];
    /// Load `files` on the live system with the previous rules kept, read
    /// the result back from the kernel, and put the previous rules back
    /// unless every SSH port is accepted. `Ok(true)` when the loaded rules
    /// differ from the previous ones.
    fn load(
        &self,
        runner: &dyn Runner,
        files: &[PathBuf],
        ssh_ports: &[u16],
    ) -> Result<bool, String>;
    /// Whether the loaded rules drop by default and accept every SSH port.
    fn loaded_accepts(&self, runner: &dyn Runner, ssh_ports: &[u16]) -> Result<bool, String>;
    /// Whether the loaded rules drop every proxy upstream port (safety
    /// rule 3).
    fn loaded_drops(&self, runner: &dyn Runner, ports: &[u16]) -> Result<bool, String>;
    /// Every port (protocol, first, last) a rule of the loaded input chain(s)
    /// accepts by destination port, read back from the kernel: what verify
    /// holds to the ports the user-data opens.
    fn loaded_accepted_ports(&self, runner: &dyn Runner)
    -> Result<Vec<(String, u16, u16)>, String>;
    /// batten's rules as the kernel holds them, as the tool prints them
    /// without counters or a dynamic set's addresses (which change with
    /// traffic): what the seal records a digest of, so the drift check sees
    /// any rule added, removed or changed, not only the accepted ports.
    fn loaded_listing(&self, runner: &dyn Runner) -> Result<String, String>;
    /// Modules of the other packet filter that this backend never uses but
    /// the boot loads anyway: kept from loading at boot
    /// (the plan's `modprobe_text`) and unloaded after a load when
    /// nothing holds them, so the kernel carries only the firewall that is
    /// really there, and an auditor sees that one (Lynis FIRE-4502,
    /// FIRE-4512).
    fn unused_modules(&self) -> &'static [&'static str];
}

/// Run a firewall tool of this machine's with `input` on its standard
/// input; its standard output, or its words on failure. `package` names
/// what installs it.
pub fn run_tool(
    runner: &dyn Runner,
    program: &str,
    args: &[&str],
    input: Option<&[u8]>,
    package: &str,
) -> Result<String, String> {
    let call = Call {
        program,
        args,
        stdin: input,
    };
    let out = runner.run(&call).map_err(|e| match e {
        ExecError::Missing(_) => format!("{program} is not installed here; install {package}"),
        e => e.to_string(),
    })?;
    if out.success {
        Ok(out.stdout)
    } else {
        Err(format!("{}: {}", call.line(), out.stderr))
    }
}
